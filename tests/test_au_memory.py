"""The AU memory (models/au_memory.py) and its training stage: what it votes, when it acts, and how it composes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model_runtime.errors import InputError
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.knowledge import concept_aus, get_concept
from model_runtime.models.au_memory import AUMemory, MemoryConfig
from model_runtime.models.au_space import AU_INDEX, AUS, au_channel_matrix
from model_runtime.models.config import config_from_dict
from model_runtime.training import arkit_data as D
from model_runtime.training import au_memory_stage as S


def hand_memory(novelty: float = 0.9, prune_known: bool = False) -> AUMemory:
    """Two concepts on orthogonal axes: 'a' shows AU12, 'b' AU4; the head says nothing (presence logit -30)."""
    mem = AUMemory(MemoryConfig(enabled=True, phrases=3, concepts=2, longest=2, text_dim=4, top_k=2,
                                temperature=0.05, present=0.25, prune_known=prune_known))
    with torch.no_grad():
        mem.keys.copy_(torch.eye(4)[:3])
        mem.groups.copy_(torch.tensor([[0, 1], [2, -1]]))
        mem.core.zero_()
        mem.core[0, AU_INDEX[12]] = 1.0
        mem.core[1, AU_INDEX[4]] = 1.0
        mem.intensity.copy_(mem.core * 0.8)
        mem.novelty.fill_(novelty)
        last = mem.heads[0][-1]
        last.weight.zero_()
        last.bias.zero_()
        last.bias[:len(AUS)] = -30.0
    return mem.eval()


def test_concepts_score_by_their_best_phrase_and_padding_never_wins():
    mem = hand_memory()
    scores = mem.concept_similarity(torch.tensor([[0.0, 0.6, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0]]))
    assert torch.allclose(scores[0], torch.tensor([0.6, 0.0]))
    assert torch.allclose(scores[1], torch.tensor([1.0, 0.0]))  # 'b''s padding slot must not read phrase 0


def test_the_vote_follows_the_nearest_concept_and_novelty_is_the_nearest_cosine_below_the_threshold():
    mem = hand_memory(novelty=0.9)
    with torch.no_grad():
        prob, intensity, novel = mem.predict(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.6, 0.8]]))
    assert prob[0, AU_INDEX[12]] > 0.49 and prob[0, AU_INDEX[4]] < 0.01
    assert prob[1, AU_INDEX[4]] > 0.49 and prob[1, AU_INDEX[12]] < 0.01
    assert torch.isclose(intensity[0, AU_INDEX[12]], torch.tensor(0.5 * (0.8 + 0.5)))
    assert novel.tolist() == [False, True]


def _set_head(head, presence_logit: float, intensity_logit: float) -> None:
    with torch.no_grad():
        head[-1].weight.zero_()
        head[-1].bias[:len(AUS)] = presence_logit
        head[-1].bias[len(AUS):] = intensity_logit


def test_the_heads_opinion_is_the_mean_probability_of_its_heads_weighted_against_the_vote():
    mem = AUMemory(MemoryConfig(enabled=True, phrases=3, concepts=2, longest=2, text_dim=4, top_k=2,
                                temperature=0.05, heads=2, vote=0.25)).eval()
    with torch.no_grad():
        mem.keys.copy_(torch.eye(4)[:3])
        mem.groups.copy_(torch.tensor([[0, 1], [2, -1]]))
        mem.core[0, AU_INDEX[12]] = 1.0
    _set_head(mem.heads[0], 30.0, 0.0)  # says every AU is present, intensity 0.5
    _set_head(mem.heads[1], -30.0, 30.0)  # says none is, intensity 1
    with torch.no_grad():
        head_prob, head_intensity = mem.head_predict(torch.eye(4)[:1])
        prob, _, _ = mem.predict(torch.eye(4)[:1])  # phrase 0: concept 'a', AU12
    assert torch.allclose(head_prob, torch.full_like(head_prob, 0.5))
    assert torch.allclose(head_intensity, torch.full_like(head_intensity, 0.75))
    assert prob[0, AU_INDEX[12]] == pytest.approx(0.25 * 1.0 + 0.75 * 0.5, abs=1e-4)
    assert prob[0, AU_INDEX[4]] == pytest.approx(0.75 * 0.5, abs=1e-4)


def test_the_heads_run_together_give_each_heads_own_output_and_follow_a_changed_weight():
    torch.manual_seed(0)
    mem = AUMemory(MemoryConfig(enabled=True, phrases=1, concepts=1, longest=1, text_dim=8, hidden=16, heads=3)).eval()
    x = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)

    def one_by_one():
        outputs = torch.sigmoid(torch.stack([head(x) for head in mem.heads])).mean(0)
        return outputs[:, :len(AUS)], outputs[:, len(AUS):]

    with torch.no_grad():
        for got, expected in zip(mem.head_predict(x), one_by_one()):
            assert torch.allclose(got, expected, atol=1e-6)
        mem.heads[1][-1].bias += 2.0  # as a load or a fit changes a weight in place
        for got, expected in zip(mem.head_predict(x), one_by_one()):
            assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("settings", [{"heads": 0}, {"vote": 1.5}, {"vote": -0.1}])
def test_a_memory_without_a_head_or_with_a_vote_weight_outside_0_to_1_is_refused(settings):
    with pytest.raises(ValueError, match="head"):
        AUMemory(MemoryConfig(enabled=True, phrases=1, concepts=1, longest=1, text_dim=4, **settings))


def test_novel_texts_keep_only_decoder_channels_a_present_au_drives_and_unite_those_aus():
    mem = hand_memory(novelty=0.9)
    decoded = torch.zeros(2, NUM_CHANNELS)
    decoded[:, CHANNEL_INDEX["jawOpen"]] = 0.7  # no present AU drives it
    decoded[:, CHANNEL_INDEX["browDownLeft"]] = 0.9  # AU4 drives it
    otherwise = torch.full((2, NUM_CHANNELS), 0.123)
    sentences = torch.tensor([[0.0, 0.0, 0.6, 0.8], [0.0, 0.0, 1.0, 0.0]])  # nearest 'b': novel, then known
    with torch.no_grad():
        out = mem.apply(mem.read(sentences, torch.tensor([0, 0])), decoded, otherwise)
    assert out[0, CHANNEL_INDEX["jawOpen"]] == 0.0
    assert out[0, CHANNEL_INDEX["browDownLeft"]] == pytest.approx(0.9)
    expected = float(au_channel_matrix()[0, AU_INDEX[4], CHANNEL_INDEX["browDownRight"]]) * 0.5 * (0.8 + 0.5)
    assert out[0, CHANNEL_INDEX["browDownRight"]] == pytest.approx(expected, rel=1e-5)
    assert out[0, CHANNEL_INDEX["mouthSmileLeft"]] == 0.0
    assert torch.equal(out[1], otherwise[1])


@pytest.mark.parametrize("prune_known", [True, False])
def test_a_known_text_keeps_its_key_or_with_prune_known_only_the_channels_a_present_au_drives(prune_known):
    mem = hand_memory(novelty=0.9, prune_known=prune_known)
    otherwise = torch.full((1, NUM_CHANNELS), 0.3)
    sentences = torch.tensor([[0.0, 0.0, 1.0, 0.0]])  # 'b''s own phrase: known, AU4 present
    with torch.no_grad():
        out = mem.apply(mem.read(sentences, torch.tensor([0])), torch.zeros(1, NUM_CHANNELS), otherwise)
    for channel in ("browDownLeft", "browDownRight"):  # AU4's channels keep the key's value, not the memory's
        assert out[0, CHANNEL_INDEX[channel]] == pytest.approx(0.3)
    for channel in ("jawOpen", "mouthSmileLeft", "noseSneerLeft"):
        assert out[0, CHANNEL_INDEX[channel]] == (0.0 if prune_known else pytest.approx(0.3))
    for channel in ("eyeBlinkLeft", "mouthLeft", "jawRight"):  # no AU of the memory speaks for these
        assert out[0, CHANNEL_INDEX[channel]] == pytest.approx(0.3)


@pytest.mark.parametrize("prune_known", [True, False])
def test_pruning_keeps_the_decoders_wink_for_novel_texts_too(prune_known):
    mem = hand_memory(novelty=0.9, prune_known=prune_known)
    decoded = torch.zeros(1, NUM_CHANNELS)
    decoded[0, CHANNEL_INDEX["eyeBlinkLeft"]] = 0.8  # a wink: AU46 has no place in the memory's AUs
    with torch.no_grad():
        out = mem.apply(mem.read(torch.tensor([[0.0, 0.0, 0.6, 0.8]]), torch.tensor([0])), decoded, decoded)  # novel
    assert out[0, CHANNEL_INDEX["eyeBlinkLeft"]] == (pytest.approx(0.8) if prune_known else 0.0)


def test_the_unspoken_channels_are_those_of_aus_the_memory_leaves_out_or_of_none():
    from model_runtime.expression_space import AU_TO_CHANNELS
    from model_runtime.models.au_space import unspoken_channels

    unspoken = {name for name, k in CHANNEL_INDEX.items() if unspoken_channels()[k]}
    assert {name for name, _ in AU_TO_CHANNELS[46]} | {name for name, _ in AU_TO_CHANNELS[30]} <= unspoken
    assert "mouthClose" in unspoken and "mouthLeft" in unspoken  # no AU drives them
    assert not unspoken & {name for name, _ in AU_TO_CHANNELS[12]} and "jawOpen" not in unspoken


def test_a_one_sided_text_gets_the_memory_aus_on_its_side_only():
    mem = hand_memory(novelty=0.9)
    sentences = torch.tensor([[0.6, 0.0, 0.0, 0.8]])  # nearest 'a' (AU12), novel
    with torch.no_grad():
        nothing = torch.zeros(1, NUM_CHANNELS)
        out = mem.apply(mem.read(sentences, torch.tensor([1])), nothing, nothing)
    assert out[0, CHANNEL_INDEX["mouthSmileLeft"]] > 0.2 and out[0, CHANNEL_INDEX["mouthSmileRight"]] == 0.0


@pytest.fixture(scope="module")
def stage():
    from model_runtime.encoders import load_text_encoder

    encoder = load_text_encoder("minilm", device="cpu")
    data = S.memory_data(encoder)
    cfg = S.sized(config_from_dict({"memory": {"enabled": True}}), data)
    memory = AUMemory(cfg.memory)
    stats = S.fit_au_memory(memory, data, seed=0)
    return encoder, data, memory.eval(), stats


def test_the_memory_holds_the_training_phrases_and_never_a_held_out_one(stage):
    _, data, memory, stats = stage
    phrases = D.training_phrases()
    assert stats["phrases"] == len(data.keys) == sum(len(v) for v in phrases.values() if v)
    forbidden = {p for n in D.HELDOUT_CONCEPTS for p in (get_concept(n).label, *get_concept(n).phrases)}
    forbidden |= set(D.heldout_phrases().values())
    held = [p for v in phrases.values() for p in v if p in forbidden]
    assert not held
    assert memory.core.shape == (len(data.groups), len(AUS)) and torch.equal(memory.keys, torch.as_tensor(data.keys))


def test_the_novelty_threshold_separates_new_concepts_from_new_phrasings_better_than_chance(stage):
    _, data, memory, stats = stage
    threshold, accuracy = S.novelty_threshold(data)
    assert float(memory.novelty) == pytest.approx(threshold) and stats["novelty"] == pytest.approx(threshold, abs=1e-4)
    assert 0.3 < threshold < 0.95 and accuracy > 0.6
    assert accuracy >= S.novelty_threshold(data)[1]  # the search returns its best


@pytest.mark.parametrize("concept", ["happy", "angry", "surprised", "disgusted"])
def test_a_trained_word_reads_as_its_own_concepts_aus_and_is_not_novel(stage, concept):
    encoder, _, memory, _ = stage
    emb = encoder.encode([get_concept(concept).label]).pooled.float()
    with torch.no_grad():
        prob, _, novel = memory.predict(emb)
    present = {au for au, p in zip(AUS, prob[0].tolist()) if p > memory.cfg.present}
    core = {a.au for a in get_concept(concept).aus if a.core} & set(AUS)
    assert not bool(novel[0])
    assert core <= present, (concept, sorted(present), sorted(core))


def test_the_stage_is_deterministic(stage):
    encoder, data, memory, _ = stage
    again = AUMemory(memory.cfg)
    S.fit_au_memory(again, data, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(memory.state_dict().values(), again.state_dict().values()))


def test_each_head_of_an_ensemble_is_fitted_from_its_own_seed_and_the_first_as_a_lone_head(stage):
    _, data, memory, _ = stage
    pair = AUMemory(replace(memory.cfg, heads=2))
    S.fit_au_memory(pair, data, seed=0)
    first, second = (list(head.state_dict().values()) for head in pair.heads)
    assert all(torch.equal(a, b) for a, b in zip(first, memory.heads[0].state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first, second))


def test_memory_needs_the_arkit_space():
    with pytest.raises(InputError, match="arkit"):
        config_from_dict({"memory": {"enabled": True}, "data": {"space": "flame"}})
    with pytest.raises(InputError, match="memory"):
        config_from_dict({"memory": {"enabled": True, "radius": 2}})


def test_held_out_concepts_can_be_swapped_for_cross_validation():
    original = D.HELDOUT_CONCEPTS
    try:
        swapped = tuple(c.name for c in D.training_concepts() if c.name != "neutral")[:3]
        D.hold_out_concepts(swapped)
        held = D.HELDOUT_CONCEPTS
        assert held == swapped
        assert {i.concept for i in D.heldout_items("heldout_concepts")} == set(held)
        assert not set(held) & {c.name for c in D.training_concepts()}
        assert set(original) - set(held) <= {c.name for c in D.training_concepts()}
        with pytest.raises(ValueError):
            D.hold_out_concepts(("neutral",))
        with pytest.raises(ValueError):
            D.hold_out_concepts(("no-such-concept",))
    finally:
        D.hold_out_concepts(original)
    assert {i.concept for i in D.heldout_items("heldout_concepts")} == set(original)


def test_cross_validation_folds_cover_every_non_anchor_concept_once():
    from benchmarks.bench_concept_cv import FOLDS, fold_concepts

    folds = [set(fold_concepts(k)) for k in range(FOLDS)]
    union = set().union(*folds)
    assert sum(len(f) for f in folds) == len(union)
    anchors = {"neutral", "happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous"}
    assert union == {c.name for c in D.all_concepts()} - anchors
    assert set(D.HELDOUT_CONCEPTS) <= union and max(map(len, folds)) - min(map(len, folds)) <= 1


def test_concept_aus_are_what_the_memory_holds(stage):
    _, data, memory, _ = stage
    concepts = [c for c in D.training_concepts() if D.training_phrases()[c.name]]
    for row, concept in enumerate(concepts[:20]):
        core = {AUS[k] for k in np.flatnonzero(memory.core[row].numpy())}
        assert core <= concept_aus(concept.name)


@pytest.mark.parametrize("text, content", [
    ("convey happy", "happy"),
    ("the avatar displays big grin", "big grin"),
    ("put on shy smile face", "shy smile"),
    ("the character: gaping", "gaping"),
    ("raise eyebrows", "raise eyebrows"),
    ("show it", "show it"),  # nothing left: the text itself
])
def test_content_text_leaves_out_instruction_and_template_words(text, content):
    from model_runtime.actions import content_text

    assert content_text(text) == content


def test_content_word_probes_calibrate_the_novelty_on_what_the_run_time_reads(stage):
    from model_runtime.actions import content_text

    encoder, data, _, _ = stage
    content = S.memory_data(encoder, content_words=True)
    assert np.array_equal(content.keys, data.keys) and np.array_equal(content.probe_rows, data.probe_rows)
    row = int(content.probe_rows[0])
    phrase = [p for v in D.training_phrases().values() for p in v][row]
    expected = encoder.encode([content_text(D.probe_text(phrase))]).pooled.float().numpy()[0]
    assert np.allclose(content.probes[0], expected, atol=1e-5)
    assert not np.allclose(content.probes, data.probes)


def test_the_sample_pool_shows_variants_at_the_rate_asked_with_the_same_draws():
    concept = get_concept("sad")
    variants = [a.au for a in concept.aus if not a.core and a.au != 11]  # AU11 is never decoded (knowledge.py)
    assert variants  # the check needs a concept with variant AUs
    never = D.sample_pool((concept,), per=8, seed=0, variant_prob=0.0)
    always = D.sample_pool((concept,), per=8, seed=0, variant_prob=1.0)
    from model_runtime.knowledge import active_aus

    assert not any(set(variants) & active_aus(w) for w in never.reshape(-1, NUM_CHANNELS))
    assert all(set(variants) & active_aus(w) for w in always[:, 0].reshape(-1, NUM_CHANNELS))
    core_only = [CHANNEL_INDEX["browInnerUp"]]
    assert np.array_equal(never[..., core_only], always[..., core_only])  # the rng's draws did not move


def test_the_memory_holds_its_phrases_and_probes_in_its_frame(stage):
    encoder, data, _, _ = stage
    framed = S.memory_data(encoder, content_words=True, frame="a face showing {}")
    phrases = [p for v in D.training_phrases().values() for p in v]
    assert np.allclose(framed.keys[0], encoder.encode([f"a face showing {phrases[0]}"]).pooled.float().numpy()[0],
                       atol=1e-5)
    from model_runtime.actions import content_text

    probe = content_text(D.probe_text(phrases[int(framed.probe_rows[0])]))
    assert np.allclose(framed.probes[0], encoder.encode([f"a face showing {probe}"]).pooled.float().numpy()[0],
                       atol=1e-5)
    assert np.array_equal(framed.probe_rows, data.probe_rows) and np.array_equal(framed.presence, data.presence)


@pytest.mark.parametrize("frame", ["no place for the text", "{} and {}", "a {face} showing {}", "{0}", 3])
def test_a_frame_without_one_place_for_the_text_is_refused_in_one_sentence(frame):
    with pytest.raises(InputError, match="frame must hold"):
        config_from_dict({"memory": {"enabled": True, "frame": frame}})


def test_the_generator_reads_the_memory_s_texts_in_its_frame(stage):
    from model_runtime.generators.learned import I2FETModel, LearnedGenerator

    encoder, data, _, _ = stage
    cfg = S.sized(config_from_dict({"generator": {"au_head": True},
                                    "memory": {"enabled": True, "content_words": True,
                                               "frame": "a face showing {}"}}), data)
    gen = LearnedGenerator(I2FETModel(cfg).eval(), encoder, "cpu", weights_name="test", sha256="")
    texts = ["convey happy", "happy"]
    tokens, mask, sentences, out = gen._encode_with_memory(texts)
    expected = encoder.encode(["a face showing happy"]).pooled.float().numpy()[0]
    assert np.allclose(out[0], expected, atol=1e-5) and np.allclose(out[1], expected, atol=1e-5)
    assert np.allclose(sentences, encoder.encode(texts).pooled.float().numpy(), atol=1e-5)


@pytest.mark.parametrize("content_words", [True, False])
def test_the_generator_gives_the_memory_content_word_embeddings_only_when_configured(stage, content_words):
    from model_runtime.generators.learned import I2FETModel, LearnedGenerator

    encoder, data, _, _ = stage
    cfg = S.sized(config_from_dict({"generator": {"au_head": True},
                                    "memory": {"enabled": True, "content_words": content_words}}), data)
    gen = LearnedGenerator(I2FETModel(cfg).eval(), encoder, "cpu", weights_name="test", sha256="")
    texts = ["convey happy", "happy"]
    pooled = encoder.encode(texts).pooled.float().numpy()
    tokens, mask, sentences, out = gen._encode_with_memory(texts)
    happy = encoder.encode(["happy"]).pooled.float().numpy()[0]
    # One pass, the texts' own rows as when encoded alone, but for the last bits: a padded batch runs packed, and the
    # extra rows change how many rows the encoder's matrix products see (encoders.minilm._MiniBert.forward).
    assert np.allclose(sentences, pooled, atol=1e-6, rtol=0)
    assert torch.allclose(tokens, gen.embed(texts)[0], atol=1e-5, rtol=0) and torch.equal(mask, gen.embed(texts)[1])
    assert np.allclose(out[1], pooled[1], atol=1e-6, rtol=0)  # nothing to leave out: the text's own embedding
    assert np.allclose(out[0], happy, atol=1e-5) is content_words


def test_the_model_card_names_a_frame_only_when_the_memory_has_one():
    from model_runtime.training.model_card import _memory_lines

    facts = {"phrases": 10, "concepts": 2, "novelty": 0.7, "novelty_balanced_accuracy": 0.7}
    plain = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True}}), facts))
    framed = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True, "frame": "a {} face"}}), facts))
    assert "frame" not in plain
    assert "embedded in the frame 'a {} face'" in framed


FRAME = "a facial expression of {}"


def test_the_frame_map_predicts_what_the_frame_does_to_words_it_was_not_fitted_on(stage, monkeypatch):
    from model_runtime.encoders.minilm import english_words

    encoder = stage[0]
    words = english_words()
    monkeypatch.setattr(S, "english_words", lambda: words[::8])  # a tenth of the fit's words, for time
    fitted = set(words[::8])
    unseen = [w for w in ("optimistic", "horrified", "crestfallen", "aghast", "upbeat", "gleeful", "sullen",
                          "bewildered", "wistful", "smug", "indignant", "serene") if w not in fitted]
    assert len(unseen) >= 8
    frame_map = S.fit_frame_map(encoder, FRAME, [])
    plain = encoder.encode(unseen).pooled.float().numpy()
    framed = encoder.encode([FRAME.format(w) for w in unseen]).pooled.float().numpy()
    mapped = S._in_frame(plain, frame_map)
    assert np.allclose(np.linalg.norm(mapped, axis=1), 1.0, atol=1e-5)
    as_is, through = (plain * framed).sum(1).mean(), (mapped * framed).sum(1).mean()
    assert through > 0.9 and through > as_is + 0.1


def test_memory_data_with_a_frame_map_holds_framed_phrases_and_mapped_probes(stage, monkeypatch):
    from model_runtime.actions import content_text
    from model_runtime.encoders.minilm import english_words

    encoder, data, _, _ = stage
    monkeypatch.setattr(S, "english_words", lambda: english_words()[::40])
    mapped = S.memory_data(encoder, content_words=True, frame=FRAME, frame_map=True)
    framed = S.memory_data(encoder, content_words=True, frame=FRAME)
    assert framed.frame_map is None and mapped.frame_map.shape == (384, 384)
    assert np.allclose(mapped.keys, framed.keys, atol=1e-6)  # phrases in the frame itself, as training embeds them
    phrases = [p for v in D.training_phrases().values() for p in v]
    probe = content_text(D.probe_text(phrases[int(mapped.probe_rows[0])]))
    plain = encoder.encode([probe]).pooled.float().numpy()
    assert np.allclose(mapped.probes[0], S._in_frame(plain, mapped.frame_map)[0], atol=1e-5)  # as the run time reads
    assert not np.allclose(mapped.probes, framed.probes, atol=1e-3)

    with_map = AUMemory(replace(S.sized(config_from_dict({"memory": {"enabled": True, "frame": FRAME,
                                                                     "frame_map": True}}), mapped).memory))
    S.fit_au_memory(with_map, mapped, seed=0)
    assert np.array_equal(with_map.frame_map.numpy(), mapped.frame_map)
    without = AUMemory(S.sized(config_from_dict({"memory": {"enabled": True}}), mapped).memory)
    with pytest.raises(ValueError, match="frame map"):
        S.fit_au_memory(without, mapped, seed=0)


def test_a_memory_with_a_frame_map_reads_the_mapped_embedding():
    plain = hand_memory()
    mem = AUMemory(replace(plain.cfg, frame_map=True))
    mem.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        mem.frame_map.copy_(torch.eye(4)[[1, 2, 3, 0]])  # axis 3 -> axis 0, where concept 'a' (AU12) lies
    mem.eval()
    text, side = torch.tensor([[0.0, 0.0, 0.0, 1.0]]), torch.tensor([0])
    with torch.no_grad():
        mapped, unmapped = mem.read(text, side), plain.read(text, side)
        direct = plain.read(mem.in_frame(text), side)
    smile = CHANNEL_INDEX["mouthSmileLeft"]
    assert torch.allclose(mem.in_frame(text), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert torch.equal(mapped.composed, direct.composed) and torch.equal(mapped.novel, direct.novel)
    assert mapped.composed[0, smile] > 0.2 and unmapped.composed[0, smile] < mapped.composed[0, smile]
    assert mem.problem() is None
    with torch.no_grad():
        mem.frame_map.zero_()
    assert "frame map" in mem.problem()


def test_the_generator_gives_a_frame_mapped_memory_plain_rows(stage):
    from model_runtime.generators.learned import I2FETModel, LearnedGenerator

    encoder, data, _, _ = stage
    cfg = S.sized(config_from_dict({"generator": {"au_head": True},
                                    "memory": {"enabled": True, "content_words": True, "frame": FRAME,
                                               "frame_map": True}}), data)
    gen = LearnedGenerator(I2FETModel(cfg).eval(), encoder, "cpu", weights_name="test", sha256="")
    texts = ["convey happy", "happy"]
    _, _, _, out = gen._encode_with_memory(texts)
    happy = encoder.encode(["happy"]).pooled.float().numpy()[0]
    assert np.allclose(out[0], happy, atol=1e-5) and np.allclose(out[1], happy, atol=1e-5)  # the map frames them


def test_a_frame_map_without_a_frame_is_refused_in_one_sentence():
    with pytest.raises(InputError, match="frame_map reads texts in its frame"):
        config_from_dict({"memory": {"enabled": True, "frame_map": True}})
    assert config_from_dict({"memory": {"enabled": True, "frame": FRAME, "frame_map": True}}).memory.frame_map


def test_the_model_card_names_the_frame_map_only_when_the_memory_reads_through_one():
    from model_runtime.training.model_card import _memory_lines

    facts = {"phrases": 10, "concepts": 2, "novelty": 0.7, "novelty_balanced_accuracy": 0.7}
    framed = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True, "frame": FRAME}}), facts))
    mapped = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True, "frame": FRAME,
                                                                 "frame_map": True}}), facts))
    assert "linear map" not in framed and "linear map fitted from their plain to their framed embeddings" in mapped


def test_a_novel_text_with_no_au_present_shows_its_strongest_with_a_fallback():
    prob = torch.zeros(4, len(AUS))
    prob[:3, AU_INDEX[12]], prob[:3, AU_INDEX[6]], prob[:3, AU_INDEX[4]] = 0.2, 0.13, 0.05
    prob[2, AU_INDEX[4]] = 0.6
    novel = torch.tensor([True, False, True, True])
    off = hand_memory()
    on = AUMemory(replace(off.cfg, fallback=0.6))

    def shown(memory):
        return [{AUS[j] for j in np.flatnonzero(r.numpy())} for r in memory.present(prob, novel)]

    assert shown(off) == [set(), set(), {4}, set()]
    # the novel text with none present keeps its strongest (>= 0.6 x 0.2); the known one stays empty (a neutral
    # phrasing shows no AU); a text with an AU present is left as the threshold has it; no AU of probability 0 is
    # ever the strongest
    assert shown(on) == [{12, 6}, set(), {4}, set()]
    on.load_state_dict(off.state_dict())
    sentences = torch.tensor([[0.0, 0.0, 0.0, 1.0]])  # far from every phrase: novel, its vote split, 0.25 each
    with torch.no_grad():
        assert not bool(off.read(sentences, torch.tensor([0])).composed.any())  # no face at all
        face = on.eval().read(sentences, torch.tensor([0])).composed[0]
    assert face[CHANNEL_INDEX["mouthSmileLeft"]] > 0 and face[CHANNEL_INDEX["browDownLeft"]] > 0


@pytest.mark.parametrize("value", [-0.1, 1.5, "half", True])
def test_a_fallback_outside_0_to_1_is_refused_in_one_sentence(value):
    with pytest.raises(InputError, match="fallback is a fraction"):
        config_from_dict({"memory": {"enabled": True, "fallback": value}})


def test_the_model_card_names_the_fallback_only_when_the_memory_has_one():
    from model_runtime.training.model_card import _memory_lines

    facts = {"phrases": 10, "concepts": 2, "novelty": 0.7, "novelty_balanced_accuracy": 0.7}
    off = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True}}), facts))
    on = " ".join(_memory_lines(config_from_dict({"memory": {"enabled": True, "fallback": 0.6}}), facts))
    assert "strongest" not in off and "those at least 0.6 times the strongest" in on
