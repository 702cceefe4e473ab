"""WordNet's facial-action texts (tests/data/wordnet_face_actions) and the judge bench_language_wordnet.py scores them
with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_language_wordnet import judge
from benchmarks.extract_wordnet_face_actions import EXPECT, SYNSETS
from model_runtime.animation import Animation
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX

DATA = Path(__file__).resolve().parent / "data" / "wordnet_face_actions"


def _items() -> list[dict]:
    return [json.loads(line) for line in (DATA / "items.jsonl").read_text(encoding="utf-8").splitlines() if line]


def test_every_item_names_a_known_expectation_and_sense():
    items = _items()
    assert len(items) == 81 and len({i["text"] for i in items}) == len(items)
    assert {i["expect"] for i in items} <= set(EXPECT)
    assert {i["synset"] for i in items} <= {name for name, _, _ in SYNSETS.values()}
    assert {i["kind"] for i in items} == {"gloss", "example"}


def test_every_channel_an_expectation_names_exists():
    for rule in EXPECT.values():
        for prefix in rule.get("any", []) + rule.get("all", []):
            assert any(c.startswith(prefix) for c in ARKIT_CHANNELS), prefix


def test_the_data_carries_its_licence_and_source():
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in (DATA / "LICENSE").read_text(encoding="utf-8")
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "wn` 0.0.23" in readme and "extract_wordnet_face_actions.py" in readme


def _animation(frames=10, head=None, **peaks):
    weights = np.zeros((frames, len(ARKIT_CHANNELS)), np.float32)
    for name, value in peaks.items():
        weights[frames // 2, CHANNEL_INDEX[name]] = value
    return Animation(frames=weights, fps=30, head_rotation=head)


@pytest.mark.parametrize("rule, animation, ok", [
    ("smile", _animation(mouthSmileLeft=0.3), True),
    ("smile", _animation(mouthSmileLeft=0.29, browDownLeft=0.9), False),
    ("cross_eyes", _animation(eyeLookInLeft=0.5, eyeLookInRight=0.5), True),
    ("cross_eyes", _animation(eyeLookInLeft=0.5), False),
    ("wink", _animation(eyeBlinkLeft=0.9), True),
    ("wink", _animation(eyeBlinkLeft=0.9, eyeBlinkRight=0.9), False),
    ("calm", _animation(browInnerUp=0.2), True),
    ("calm", _animation(mouthSmileRight=0.31), False),
    ("nod", _animation(), False),
])
def test_the_judge_reads_what_each_rule_asks_for(rule, animation, ok):
    assert judge(animation, EXPECT[rule])[0] is ok


def test_the_judge_reads_the_heads_pitch():
    pitch = np.zeros((10, 3), np.float32)
    pitch[5, 1] = -0.12
    assert judge(_animation(head=pitch), EXPECT["nod"])[0]
    pitch[5, 1] = -0.05
    assert not judge(_animation(head=pitch), EXPECT["nod"])[0]


@pytest.mark.parametrize("name, count", [("sentences.jsonl", 133), ("glosses.jsonl", 27)])
def test_the_later_sets_are_whole_and_name_known_expectations(name, count):
    rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line]
    assert len(rows) == count and len({r["text"] for r in rows}) == count
    assert {r["expect"] for r in rows} <= set(EXPECT)
    assert not {r["text"] for r in rows} & {i["text"] for i in _items()}  # none is a first-set text
