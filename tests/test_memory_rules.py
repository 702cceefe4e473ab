"""benchmarks/bench_memory_rules.py: the presence rules it scores, the way it swaps them in, and how it chooses."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks import bench_memory_rules as br
from model_runtime.models.au_memory import AUMemory, MemoryConfig
from model_runtime.models.au_space import AUS


def _row(**probs: float) -> torch.Tensor:
    row = torch.zeros(1, len(AUS))
    for name, value in probs.items():
        row[0, AUS.index(int(name[2:]))] = value
    return row


def test_of_two_antagonists_present_only_the_more_probable_stays():
    prob = torch.cat([_row(au12=0.7, au15=0.4, au6=0.5), _row(au15=0.4), _row(au24=0.5, au25=0.5)])
    kept = br.resolve_antagonists(prob, prob > 0.25)
    shown = [{AUS[j] for j in np.flatnonzero(r.numpy())} for r in kept]
    assert shown[0] == {6, 12}  # the smile wins over the lip corner depressor; AU6 has no antagonist
    assert shown[1] == {15}  # alone, an antagonist is kept
    assert shown[2] == {24}  # a tie keeps the pair's first


def test_the_nearest_concept_in_au_space_is_the_one_sharing_the_likely_aus():
    core = torch.cat([_row(au1=1, au2=1, au5=1, au26=1), _row(au4=1, au7=1, au24=1), _row(au6=1, au12=1)])
    prob = torch.cat([_row(au4=0.8, au7=0.6, au12=0.3), _row(au6=0.4, au12=0.9, au25=0.3)])
    assert br.nearest_concept_by_aus(prob, core).tolist() == [1, 2]


def _memory() -> AUMemory:
    memory = AUMemory(MemoryConfig(enabled=True, phrases=2, concepts=2, longest=1, heads=1, vote=1.0))
    memory.keys.copy_(torch.eye(2, memory.cfg.text_dim))
    memory.groups.copy_(torch.tensor([[0], [1]]))
    memory.core.copy_(torch.cat([_row(au12=1, au6=1), _row(au4=1, au7=1)]))
    memory.intensity.copy_(torch.full_like(memory.core, 0.8))
    memory.novelty.fill_(2.0)  # every text is novel
    return memory.eval()


def test_a_rule_replaces_the_memorys_presence_inside_its_block_only():
    memory = _memory()
    sentences = torch.eye(2, memory.cfg.text_dim)
    before = memory.predict(sentences)[0]
    with br.presence_rule(memory, br.RULES["threshold 0.35"]):
        inside = memory.predict(sentences)[0]
    after = memory.predict(sentences)[0]
    assert torch.equal(before, after) and "predict" not in vars(memory)
    assert set(inside.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(inside.bool(), before > 0.35)
    # the key the memory builds then shows exactly the rule's AUs
    with br.presence_rule(memory, br.RULES["antagonists"]):
        reading = memory.read(sentences, torch.zeros(2, dtype=torch.long))
    assert bool((reading.composed[0] > 0).any()) and bool((reading.composed[1] > 0).any())


def test_a_rule_reaches_the_goal_only_with_both_margins_and_level_phrasings():
    def row(precision, recall, phrasing):
        return {"all": np.array([precision, recall, precision]), "phrasings": np.array([phrasing, 0.01, 0.0])}

    table = {"both": row(0.10, 0.12, 0.0), "precision only": row(0.15, 0.09, 0.01), "loses phrasings": row(0.3, 0.3, -0.001)}
    assert br.reaching_the_goal(table) == ["both"]


def test_the_11_concepts_of_i2fet_evaluate_are_told_apart_while_a_fold_is_held_out():
    from benchmarks import bench_concept_cv as cv
    from model_runtime.training import arkit_data

    original = arkit_data.HELDOUT_CONCEPTS
    evaluated = original[0]
    fold = next(k for k in range(cv.FOLDS) if evaluated not in cv.fold_concepts(k))
    other = cv.fold_concepts(fold)[0]
    rows = {"concept": [evaluated, other], "baseline": [[0.5, 0.5], [0.5, 0.5]], "r": [[0.9, 0.7], [0.5, 0.5]]}
    results = [{"splits": {"heldout_concepts": rows, "heldout_phrasings": rows}}]
    try:
        arkit_data.hold_out_concepts(cv.fold_concepts(fold))
        row = br.margins(results, ["r"])["r"]
    finally:
        arkit_data.hold_out_concepts(original)
    assert np.allclose(row["evaluated"], [0.4, 0.2, 0.4]) and np.allclose(row["other"], 0.0)
    assert np.allclose(row["all"], [0.2, 0.1, 0.2])


def test_unknown_rules_and_an_unscored_folder_are_refused_in_one_sentence(tmp_path, capsys):
    assert br.main(["--work", str(tmp_path), "--rules", "shipped,telepathy"]) == 2
    assert "Unknown rule 'telepathy'" in capsys.readouterr().err
    assert br.main(["--work", str(tmp_path)]) == 2
    assert "holds no fold-0.json" in capsys.readouterr().err


def test_the_shipped_rule_is_the_memorys_own_presence_fallback_included():
    from dataclasses import replace

    memory = _memory()
    memory.cfg = replace(memory.cfg, fallback=0.6)
    prob = torch.cat([_row(au12=0.2, au6=0.15, au4=0.05), _row(au12=0.5, au6=0.1)])
    novel = torch.tensor([True, True])
    keep, _ = br.RULES["shipped"](prob, memory, novel)
    assert torch.equal(keep, memory.present(prob, novel))
    assert {AUS[j] for j in np.flatnonzero(keep[0].numpy())} == {6, 12}  # nothing above 0.25: the strongest
    assert not torch.equal(keep, br.RULES["threshold 0.30"](prob, memory, novel)[0])


def test_a_key_shows_an_au_as_strongly_as_its_weakest_channel_allows():
    from model_runtime.knowledge import CHANNEL_INDEX

    memory = _memory()
    matrix = memory.matrix[torch.zeros(1, dtype=torch.long)]
    key = torch.zeros(1, matrix.shape[-1])
    key[0, CHANNEL_INDEX["browInnerUp"]] = 0.6
    strength = br.shown_by_key(key, matrix)[0]
    assert float(strength[AUS.index(1)]) > 0.15  # AU1 lives in browInnerUp alone
    assert float(strength[AUS.index(12)]) == 0.0  # the smile's channels are untouched


def test_settings_hold_inside_their_block_only_and_agreement_adds_what_the_decoder_shows():
    from types import SimpleNamespace

    from model_runtime.knowledge import CHANNEL_INDEX

    memory = _memory()
    learned = SimpleNamespace(generator=SimpleNamespace(model=SimpleNamespace(memory=memory)))
    before = memory.cfg
    with br.SETTINGS["temperature 0.05"](learned):
        assert memory.cfg.temperature == 0.05
    assert memory.cfg is before
    # a text halfway between the two concepts: the vote gives each of their AUs probability 0.5
    sentences = torch.nn.functional.normalize(torch.eye(2, memory.cfg.text_dim).sum(0, keepdim=True), dim=-1)
    side = torch.zeros(1, dtype=torch.long)
    prob = memory.predict(sentences)[0][0]
    assert all(0.2 < float(prob[AUS.index(au)]) < 0.99 for au in (4, 6, 7, 12))  # likely, none present
    decoded = torch.zeros(1, memory.matrix.shape[-1])
    decoded[0, CHANNEL_INDEX["browDownLeft"]] = decoded[0, CHANNEL_INDEX["browDownRight"]] = 0.9  # AU4 only
    with br._decoder_agreement(learned, present=0.99, likely=0.2):  # nothing passes on the memory's word alone
        reading = memory.read(sentences, side)
        key = memory.apply(reading.rows([0]), decoded, torch.zeros_like(decoded))
    assert "read" not in vars(memory) and "apply" not in vars(memory) and memory.cfg is before
    shown = {au for au in AUS if float(br.shown_by_key(key, memory.matrix[side])[0, AUS.index(au)]) >= 0.15}
    assert 4 in shown and 12 not in shown and 6 not in shown
