"""The learned I2FET model: data split, generator and transition behaviour, weights loading and checks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model_runtime.errors import WeightsError
from model_runtime.instructions import parse_instruction
from model_runtime.knowledge import all_concepts, get_concept
from model_runtime.training import arkit_data as D
from model_runtime.models.au_space import au_channel_matrix, unspoken_channels
from model_runtime.models.config import config_from_dict
from model_runtime.generators.learned import (DEFAULT_WEIGHTS, I2FETModel, LearnedGenerator, load_learned,
                                          save_weights)
from model_runtime.paths import sha256_file
from model_runtime.timeline import FrameSpan, frame_spans, plan_segments

TINY = {"name": "tiny", "ifed": {"d": 32, "heads": 2, "text_layers": 1, "expr_layers": 1, "cross_layers": 1,
                                  "latent": 16}, "transition": {"hidden": 32}}


# --------------------------------------------------------------------------------------------------------------------
# data split
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def train_items():
    return D.training_items(0, n_single=600, n_sequence=200)


def test_heldout_concepts_are_spread_and_not_basic():
    names = set(D.HELDOUT_CONCEPTS)
    assert 10 <= len(names) <= 12
    assert not names & {"neutral", "happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous"}
    families = {get_concept(n).family for n in names}
    kinds = {get_concept(n).kind for n in names}
    assert len(families) >= 6 and {"compound", "goemotions"} <= kinds


def test_heldout_items_api():
    for split in D.SPLITS:
        items = D.heldout_items(split)
        assert items and all(isinstance(i, D.EvalItem) and i.split == split for i in items)
        for item in items[:: max(1, len(items) // 40)]:
            assert len(parse_instruction(item.instruction).segments) == 1
            assert get_concept(item.concept).family == item.family
        sample = D.heldout_items(split, n=25, seed=3)
        assert len(sample) == 25 and sample == D.heldout_items(split, n=25, seed=3)
        assert sample != D.heldout_items(split, n=25, seed=4)
    assert {i.concept for i in D.heldout_items("heldout_concepts")} == set(D.HELDOUT_CONCEPTS)
    with pytest.raises(ValueError):
        D.heldout_items("train")


def test_training_never_sees_heldout_concepts_phrases_or_templates(train_items):
    heldout_phrases = set(D.heldout_phrases().values())
    concept_phrases = {p for n in D.HELDOUT_CONCEPTS for p in (get_concept(n).label, *get_concept(n).phrases)}
    eval_texts = {i.instruction for s in D.SPLITS for i in D.heldout_items(s)}
    for item in train_items:
        assert not {s.concept for s in item.segments} & set(D.HELDOUT_CONCEPTS)
        assert not set(item.phrases) & (heldout_phrases | concept_phrases)
        assert not set(item.templates) & set(D.HELDOUT_TEMPLATES)
        assert item.instruction not in eval_texts
    # the phrase tables themselves
    for phrases in D.training_phrases().values():
        assert not set(phrases) & (heldout_phrases | concept_phrases)
    # every held-out phrasing item uses a held-out phrase or a held-out template
    for item in D.heldout_items("heldout_phrasings"):
        assert item.concept not in D.HELDOUT_CONCEPTS
        assert any(t.format(p="").strip(" ,") and item.instruction.startswith(t.split("{p}")[0])
                   for t in D.HELDOUT_TEMPLATES) or D.heldout_phrases().get(item.concept, "\0") in item.instruction


def test_training_items_deterministic_and_varied(train_items):
    one = D.training_items(0, n_single=300, n_sequence=100, n_plain_templates=1)
    again = D.training_items(0, n_single=300, n_sequence=100, n_plain_templates=1)
    assert [i.instruction for i in again] == [i.instruction for i in one]
    other = D.training_items(1, n_single=300, n_sequence=100, n_plain_templates=1)
    assert [i.instruction for i in other] != [i.instruction for i in one]
    assert any(len(i.segments) == 2 for i in train_items)
    assert any(s.side in ("left", "right") for i in train_items for s in i.segments)
    assert any(s.is_start for i in train_items for s in i.segments)


def test_dynamics_model_not_lock_step():
    rng = np.random.default_rng(0)
    start, end = np.zeros(52, np.float32), np.full(52, 0.8, np.float32)
    frames, k = D.synth_transition(start, end, 30, D.manner_vector(None), rng, blink_prob=0.0)
    assert np.allclose(frames[0], start) and np.allclose(frames[-1], end, atol=1e-6)
    half = np.argmax(frames >= 0.4, axis=0)
    assert half.max() - half.min() >= 3


# --------------------------------------------------------------------------------------------------------------------
# a tiny random model, for behaviour that does not depend on training
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    from model_runtime.encoders import load_text_encoder

    return load_text_encoder("minilm", device="cpu")


@pytest.fixture(scope="module")
def tiny(encoder, tmp_path_factory):
    torch.manual_seed(0)
    model = I2FETModel(config_from_dict(TINY))
    with torch.no_grad():  # give the transition model clearly non-zero warps, as training would
        model.transition.net[-1].bias.copy_(torch.as_tensor(D.REGION_LEAD * 3.0))
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(model, path, encoder)
    return path


@pytest.fixture(scope="module")
def tiny_gen(tiny, encoder):
    return load_learned(tiny, encoder=encoder, device="cpu")


def _plans(texts, fps=30):
    return [plan_segments(parse_instruction(t).segments, fps) for t in texts]


TEXTS = ["slowly break into a shy smile, then look shocked", "from disgust to sadness, then return to neutral",
         "a very slight smile on the left", "look awestruck"]


def test_keys_deterministic_per_seed_and_vary_across_seeds(tiny_gen):
    plans = _plans(TEXTS)
    a = tiny_gen.key_expressions(plans, seed=0)
    b = tiny_gen.key_expressions(plans, seed=0)
    c = tiny_gen.key_expressions(plans, seed=1)
    flat = lambda keys: np.stack([k.weights for p in keys for k in p])  # noqa: E731
    assert np.array_equal(flat(a), flat(b))
    assert np.abs(flat(a) - flat(c)).max() > 1e-4
    assert [len(p) for p in a] == [len(p) for p in plans]
    for keys in a:
        for k in keys:
            assert k.weights.shape == (52,) and k.weights.dtype == np.float32
            assert 0.0 <= k.weights.min() and k.weights.max() <= 1.0
            assert 0.0 <= k.confidence <= 1.0 and get_concept(k.concept).label == k.label
    assert a[1][2].concept == "neutral" and not a[1][2].weights.any()
    # an instruction alone gives the same keys as inside a batch (up to float rounding from padding)
    alone = tiny_gen.key_expressions(plans[3:4], seed=0)
    assert np.allclose(alone[0][0].weights, a[3][0].weights, atol=1e-5)


def test_transition_exact_endpoints_range_and_not_lock_step(tiny_gen):
    rng = np.random.default_rng(1)
    start = rng.uniform(0, 1, 52).astype(np.float32)
    targets = rng.uniform(0, 1, (2, 52)).astype(np.float32)
    spans = [FrameSpan(0, 20, 30), FrameSpan(30, 45, 60)]
    frames = tiny_gen.transition_frames(spans, targets, start, plan=None)
    assert frames.shape == (61, 52) and frames.dtype == np.float32
    assert np.array_equal(frames[0], start)
    assert np.array_equal(frames[20], targets[0]) and np.array_equal(frames[45], targets[1])
    assert np.array_equal(frames[30], targets[0]) and np.array_equal(frames[60], targets[1])
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    seg = frames[0:21]
    lo, hi = np.minimum(start, targets[0]) - 1e-6, np.maximum(start, targets[0]) + 1e-6
    assert ((seg >= lo) & (seg <= hi)).all()
    moving = np.abs(targets[0] - start) > 0.2
    frac = (seg[:, moving] - start[moving]) / (targets[0] - start)[moving]
    half = np.argmax(frac >= 0.5, axis=0)
    assert half.max() - half.min() >= 2


def test_transition_frames_follow_plan_lengths(tiny_gen):
    plan = _plans(["smile over 1 second, then frown suddenly"], fps=24)[0]
    spans = frame_spans(plan, 24)
    keys = tiny_gen.key_expressions([plan], seed=0)[0]
    frames = tiny_gen.transition_frames(spans, np.stack([k.weights for k in keys]), np.zeros(52, np.float32), plan)
    assert frames.shape[0] == spans[-1].end_frame + 1


# --------------------------------------------------------------------------------------------------------------------
# weights files
# --------------------------------------------------------------------------------------------------------------------
def _copy(src: Path, dst_dir: Path, name="w.safetensors") -> Path:
    dst = dst_dir / name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def _write_checksum(path: Path) -> None:
    """A sidecar that matches the file, so the checks after the checksum are the ones under test."""
    path.with_suffix(".json").write_text(json.dumps({"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))


def test_corrupt_weights_raise_weights_error(tiny, encoder, tmp_path):
    # truncated, with a sidecar naming the truncated file's own hash, so the format check itself must catch it
    p = _copy(tiny, tmp_path, "trunc.safetensors")
    p.write_bytes(p.read_bytes()[:-1000])
    _write_checksum(p)
    with pytest.raises(WeightsError, match="cannot be read"):
        load_learned(p, encoder=encoder, device="cpu")
    # a flipped byte with the checksum beside it
    p = _copy(tiny, tmp_path, "flip.safetensors")
    raw = bytearray(p.read_bytes())
    raw[-10] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupt"):
        load_learned(p, encoder=encoder, device="cpu")
    # missing
    with pytest.raises(WeightsError, match="does not exist"):
        load_learned(tmp_path / "nope.safetensors", encoder=encoder, device="cpu")


def test_weights_without_their_checksum_file_are_refused(tiny, encoder, tmp_path):
    p = _copy(tiny, tmp_path)
    load_learned(p, encoder=encoder, device="cpu")
    p.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="no checksum file"):
        load_learned(p, encoder=encoder, device="cpu")


def test_tampered_weights_with_the_mtime_restored_are_refused(tiny, encoder, tmp_path):
    p = _copy(tiny, tmp_path)
    load_learned(p, encoder=encoder, device="cpu")
    st = p.stat()
    raw = bytearray(p.read_bytes())
    raw[-10] ^= 0xFF
    p.write_bytes(bytes(raw))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(WeightsError, match="corrupt"):
        load_learned(p, encoder=encoder, device="cpu")


def test_mismatched_weights_raise_weights_error(encoder, tmp_path):
    from safetensors.torch import load_file, save_file

    model = I2FETModel(config_from_dict(TINY))
    path = tmp_path / "m.safetensors"
    save_weights(model, path, encoder)
    state = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    # wrong shapes: a tensor of another size under the same name
    key = next(k for k in state if k.endswith("out.3.weight"))
    state[key] = torch.zeros(52, 7)
    bad = tmp_path / "shape.safetensors"
    save_file(state, str(bad), metadata=meta)
    _write_checksum(bad)
    with pytest.raises(WeightsError, match="does not fit"):
        load_learned(bad, encoder=encoder, device="cpu")
    # made for another encoder width
    state = load_file(str(path))
    other = dict(meta, encoder_dim="512")
    bad2 = tmp_path / "enc.safetensors"
    save_file(state, str(bad2), metadata=other)
    _write_checksum(bad2)
    with pytest.raises(WeightsError, match="text encoder"):
        load_learned(bad2, encoder=encoder, device="cpu")
    # made with other weights of the same encoder (a tampered or swapped encoder file)
    bad4 = tmp_path / "sha.safetensors"
    save_file(state, str(bad4), metadata=dict(meta, encoder_sha256="0" * 64))
    _write_checksum(bad4)
    with pytest.raises(WeightsError, match="trained with other"):
        load_learned(bad4, encoder=encoder, device="cpu")
    # not an I2FET file at all
    bad3 = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(bad3))
    _write_checksum(bad3)
    with pytest.raises(WeightsError):
        load_learned(bad3, encoder=encoder, device="cpu")


@pytest.mark.parametrize("name, value, message", [("memory.groups", 99, "outside its phrases"),
                                                   ("memory.core", 2.0, "core table"),
                                                   ("memory.novelty", float("nan"), "non-finite")])
def test_weights_with_an_unusable_au_memory_are_refused(encoder, tmp_path, name, value, message):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    cfg = dict(TINY, memory={"enabled": True, "phrases": 3, "concepts": 2, "longest": 2})
    model = I2FETModel(config_from_dict(cfg))
    with torch.no_grad():
        model.memory.groups.copy_(torch.tensor([[0, 1], [2, -1]]))
    good = tmp_path / "good.safetensors"
    save_weights(model, good, encoder)
    assert load_learned(good, encoder=encoder, device="cpu").model.memory is not None
    state = load_file(str(good))
    with safe_open(str(good), "pt") as f:
        meta = f.metadata()
    state[name] = state[name].clone()
    state[name].view(-1)[-1] = value
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata=meta)
    _write_checksum(bad)
    with pytest.raises(WeightsError, match=message):
        load_learned(bad, encoder=encoder, device="cpu")


def test_shipped_weights_load_and_match_card(encoder):
    digest = sha256_file(DEFAULT_WEIGHTS)
    sidecar = json.loads(DEFAULT_WEIGHTS.with_suffix(".json").read_text())
    assert sidecar["sha256"] == digest
    card = (DEFAULT_WEIGHTS.parent / "MODEL_CARD.md").read_text()
    assert digest in card
    assert DEFAULT_WEIGHTS.stat().st_size <= 30 * 1024 * 1024
    gen = load_learned(encoder=encoder, device="cpu")
    assert isinstance(gen, LearnedGenerator) and gen.name == "i2fet" and gen.weights_sha256 == digest
    keys = gen.key_expressions(_plans(["look happy", "look surprised"]), seed=0)
    families = [get_concept(k[0].concept).family for k in keys]
    assert families == ["happy", "surprise"]
    assert len(all_concepts()) == len(gen.concepts)


@pytest.mark.parametrize("training", [False, True])
def test_attention_over_padded_text_matches_torchs_key_padding_mask(training):
    """IFED.attend passes the padding as an additive memory mask (torch's key-padding check imports sympy, 0.57 s of a
    cold generate); the attention must be exactly what torch's own key-padding mask gives, padded tokens ignored."""
    from model_runtime.models.ifed import IFED, IFEDConfig

    torch.manual_seed(0)
    model = IFED(IFEDConfig()).train(training)
    queries, text = torch.randn(3, 5, model.cfg.d), torch.randn(3, 7, model.cfg.d)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, 4:], mask[2, 2:] = False, False
    torch.manual_seed(1)
    ours = model.attend(queries, text, mask)
    torch.manual_seed(1)
    reference = model.cross(queries, text, memory_key_padding_mask=~mask)
    assert torch.equal(ours, reference)
    changed = text.clone()
    changed[0, 4:] += 100.0  # what sits under the padding never reaches the output
    torch.manual_seed(1)
    assert torch.equal(model.attend(queries, changed, mask)[0], ours[0])


def _keys_through_torchs_modules(gen, plans, seed):
    """The run-time keys computed the plain way, as a reference for the optimised `key_expressions`: one decoder pass
    per segment position through torch's own TransformerDecoder (key-padding mask), the start projected twice; the
    AU memory, when the weights have one, reads each text once (with its glosses, when it reads them) and composes
    the key as its module docstring says."""
    from model_runtime.expression_space import NUM_CHANNELS
    from model_runtime.generators.learned import segment_seed
    from model_runtime.models.generator import SIDE_INDEX

    kg, memory = gen.model.generator, gen.model.memory
    rows = [(pi, si) for pi, plan in enumerate(plans) for si, seg in enumerate(plan) if seg.kind != "return"]
    keys = {}
    with torch.inference_mode():
        texts = [plans[pi][si].text for pi, si in rows]
        tokens, mask = gen.embed(texts)
        text, pooled, _ = kg.ifed.encode_text(tokens, mask)
        if memory is not None:  # the AU memory reads sentence embeddings (of content words, as the recipe says)
            sentences = torch.as_tensor(gen._encode_with_memory(texts)[3])
            sides = torch.as_tensor([SIDE_INDEX.get(plans[pi][si].side, 0) for pi, si in rows])
            if memory.cfg.frame_map:  # read in the memory's frame through its map, renormalised
                mapped = sentences @ memory.frame_map
                sentences = mapped / mapped.norm(dim=1, keepdim=True)
            glossed = None
            if memory.cfg.glosses:  # the glossed reading: each text plus the unit mean of its words' definitions
                from model_runtime.glosses import gloss_rows

                glossed = sentences.clone()
                for i, t in enumerate(texts):
                    own = gloss_rows(t)
                    if own:
                        table = memory.gloss_codes[own].float() * memory.gloss_scale[own][:, None]
                        mean = table.mean(0)
                        glossed[i] = glossed[i] + memory.cfg.gloss_weight * mean / mean.norm()
                glossed = glossed / glossed.norm(dim=1, keepdim=True)
            # once per text: it does not depend on the position
            prob, intensity, novel = memory.predict(sentences, glossed)
        previous = torch.zeros(len(plans), NUM_CHANNELS)
        for position in range(max(len(plan) for plan in plans)):
            live = []
            for pi, plan in enumerate(plans):
                if position < len(plan):
                    if (pi, position) in rows:
                        live.append((pi, rows.index((pi, position))))
                    else:
                        previous[pi] = 0.0
            if not live:
                continue
            pis, idx = [pi for pi, _ in live], [r for _, r in live]
            start = previous[pis]
            side = torch.as_tensor([SIDE_INDEX.get(plans[pi][position].side, 0) for pi in pis])
            eps = torch.randn(1, kg.cfg.z_dim, generator=torch.Generator().manual_seed(segment_seed(seed, position)))
            mu, logvar = kg.prior_params(pooled[idx], start)
            z = mu + (0.5 * logvar).exp() * eps.expand(len(live), -1)
            queries = torch.cat([kg.query.expand(len(live), -1, -1), kg.start_in(start)[:, None],
                                 kg.side_emb(side)[:, None], kg.z_in(z)[:, None]], 1)
            h = kg.ifed.cross(queries, text[idx], memory_key_padding_mask=~mask[idx])[:, 0]
            decoded = kg.activate(kg.out(h))
            out = kg.compose(decoded, pooled[idx], side)
            if memory is not None:
                out = _memory_key(memory, prob[idx], intensity[idx], novel[idx], side, decoded, out)
            for j, pi in enumerate(pis):
                keys[(pi, position)] = out[j].numpy().copy()
            previous[pis] = out
    return keys


def _memory_key(memory, prob, intensity, novel, side, decoded, otherwise):
    """The AU memory's key as models/au_memory.py's docstring defines it, written out with torch's own ops."""
    matrix = torch.as_tensor(au_channel_matrix())[side]
    present = prob > memory.cfg.present
    for row in range(len(prob)):  # the fallback: a novel text with none present shows its strongest
        if memory.cfg.fallback and novel[row] and not present[row].any():
            present[row] = (prob[row] >= memory.cfg.fallback * prob[row].max()) & (prob[row] > 0)
    present = present.float()
    composed = torch.einsum("ba,bac->bc", present * intensity, matrix).clamp(0.0, 1.0)
    driven = (present[:, :, None] * (matrix > 0)).amax(1)
    if memory.cfg.prune_known:
        driven = torch.maximum(driven, torch.as_tensor(unspoken_channels()))
        otherwise = otherwise * driven
    return torch.where(novel[:, None], torch.maximum(decoded * driven, composed), otherwise)


def test_run_time_keys_equal_torchs_module_path_bit_for_bit(encoder):
    """key_expressions attends through IFED's own eval path (no per-call checks) and projects the start once: the
    shipped model's keys must be exactly those of torch's modules, for one instruction and for a batch."""
    from model_runtime.device import single_intra_op_thread
    from model_runtime.generators.base import key_expression

    gen = load_learned(encoder=encoder, device="cpu")
    plans = _plans(["slightly frown, then smile for 2 seconds, then look surprised, then wink with the left eye, "
                    "then look disgusted, then back to neutral",
                    "a sad smile while raising the left eyebrow, then frown twice",
                    "from disgust to sadness, then return to neutral, then grin",
                    "smirk on the right, then sneer, then slowly break into a shy smile"])
    compared = 0
    with single_intra_op_thread():
        for seed in (0, 5):
            for batch in [[plan] for plan in plans] + [plans]:
                ours = gen.key_expressions(batch, seed=seed)
                for (pi, si), weights in _keys_through_torchs_modules(gen, batch, seed).items():
                    expected = key_expression(weights, gen.neutral, batch[pi][si], 1.0, 1.0).weights
                    np.testing.assert_array_equal(ours[pi][si].weights, expected)
                    compared += 1
    assert compared >= 40
