"""Scoring an Animation against a language case: the machine-checkable expectations of the held-out language set
(tests/data/language_heldout.jsonl) and the dev set.

A case is one JSON object per line: "id", "cat" (category), "text", and any of these expectations:

- "segments": number of segments, not counting the "release" segments between repeats; "segments_max": at most;
- "phases": a list of {"hi": [...], "lo": [...], "in": {...}} met at segment apexes in this order (each at a later
  apex than the one before). "hi" names channels that must reach 0.2 (or the value given as {"name": value}), "lo"
  channels that must stay at or below 0.1, "in" {"name": [low, high]}. A name without its Left/Right ending
  ("mouthSmile") means the mean of both sides;
- "peaks": [{"ch": name, "count": n} or {"ch": name, "min": n}]: separate peaks of the channel over the frames;
- "head_peaks": the same over head rotation ({"axis": "yaw"|"pitch"|"roll", "sign": -1|0|1, ...});
- "head_reach": {"yaw": 0.1} the axis must reach +0.1 rad, {"yaw_neg": -0.1} -0.1, {"yaw_abs": 0.1} either way;
- "head_still": the head does not move;
- "warn": true/false (any warning), "warn_has": [substrings that must appear in the warnings];
- "not_both": [a, b]: at no apex are both channels above 0.2;
- "refuse": the instruction must be refused with one sentence (InputError).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..expression_space import CHANNEL_INDEX

HI = 0.2
LO = 0.1
HEAD_STILL = 0.02
HEAD_PEAK = 0.1
_AXES = {"yaw": 0, "pitch": 1, "roll": 2}


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = [c["id"] for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: case ids repeat")
    return cases


def channel(frames: np.ndarray, name: str) -> np.ndarray:
    """Frames of one channel, or the mean of its Left/Right pair for a name without a side."""
    if name in CHANNEL_INDEX:
        return frames[..., CHANNEL_INDEX[name]]
    pair = [CHANNEL_INDEX[name + s] for s in ("Left", "Right") if name + s in CHANNEL_INDEX]
    if not pair:
        raise KeyError(f"unknown channel {name!r}")
    return frames[..., pair].mean(axis=-1)


def count_peaks(curve: np.ndarray, floor: float = HI) -> int:
    """Separate rises: above 60% of the curve's top after having dropped below 30% of it (top at least `floor`)."""
    top = float(np.max(curve, initial=0.0))
    if top < floor:
        return 0
    high, low = 0.6 * top, 0.3 * top
    peaks, armed = 0, True
    for v in curve:
        if armed and v >= high:
            peaks, armed = peaks + 1, False
        elif v <= low:
            armed = True
    return peaks


def _phase_ok(row: np.ndarray, phase: dict) -> bool:
    hi = phase.get("hi", [])
    for item in hi:
        for name, value in (item.items() if isinstance(item, dict) else [(item, HI)]):
            if channel(row, name) < value:
                return False
    for item in phase.get("lo", []):
        for name, value in (item.items() if isinstance(item, dict) else [(item, LO)]):
            if channel(row, name) > value:
                return False
    for name, (low, high) in phase.get("in", {}).items():
        if not low <= channel(row, name) <= high:
            return False
    return True


def check(case: dict, animation=None, error: Exception | None = None) -> list[str]:
    """The expectations of `case` that the result fails (empty when it passes)."""
    if case.get("refuse"):
        return [] if error is not None else ["was not refused"]
    if error is not None:
        return [f"refused: {error}"]
    failures = []
    segments = [s for s in animation.segments if s.get("kind") != "release"]
    apexes = [int(s.get("apex_frame", s["end_frame"])) for s in segments]
    frames = animation.frames
    if "segments" in case and len(segments) != case["segments"]:
        failures.append(f"segments {len(segments)} != {case['segments']}")
    if "segments_max" in case and len(segments) > case["segments_max"]:
        failures.append(f"segments {len(segments)} > {case['segments_max']}")
    position = 0
    for k, phase in enumerate(case.get("phases", [])):
        while position < len(apexes) and not _phase_ok(frames[apexes[position]], phase):
            position += 1
        if position == len(apexes):
            failures.append(f"phase {k + 1} {phase} not met in order")
            break
        position += 1
    for spec in case.get("peaks", []):
        n = count_peaks(channel(frames, spec["ch"]))
        if ("count" in spec and n != spec["count"]) or ("min" in spec and n < spec["min"]):
            failures.append(f"{spec['ch']} peaks {n} vs {spec}")
    head = animation.head_rotation
    for spec in case.get("head_peaks", []):
        curve = np.zeros(len(frames)) if head is None else head[:, _AXES[spec["axis"]]]
        curve = np.abs(curve) if spec.get("sign", 0) == 0 else curve * spec["sign"]
        n = count_peaks(curve, HEAD_PEAK)
        if ("count" in spec and n != spec["count"]) or ("min" in spec and n < spec["min"]):
            failures.append(f"head {spec['axis']} peaks {n} vs {spec}")
    for key, value in case.get("head_reach", {}).items():
        axis, _, how = key.partition("_")
        curve = np.zeros(len(frames)) if head is None else head[:, _AXES[axis]]
        reached = {"": curve.max(initial=0) >= value, "neg": curve.min(initial=0) <= value,
                   "abs": np.abs(curve).max(initial=0) >= value}[how]
        if not reached:
            failures.append(f"head {key} not reached")
    if case.get("head_still") and head is not None and np.abs(head).max(initial=0) > HEAD_STILL:
        failures.append("head moved")
    warnings = " ".join(animation.warnings).lower()
    if "warn" in case and bool(animation.warnings) != case["warn"]:
        failures.append(f"warnings {animation.warnings!r}")
    for fragment in case.get("warn_has", []):
        if fragment.lower() not in warnings:
            failures.append(f"no warning naming {fragment!r}")
    if "not_both" in case:
        a, b = case["not_both"]
        rows = frames[apexes] if apexes else frames
        if np.any((channel(rows, a) > HI) & (channel(rows, b) > HI)):
            failures.append(f"{a} and {b} both high")
    return failures


def score(runtime, cases: Iterable[dict]) -> dict[str, Any]:
    """Run every case through `runtime.generate`; pass rates overall and per category, and the failures."""
    from ..errors import InputError

    by_cat: dict[str, list[bool]] = defaultdict(list)
    failed = {}
    for case in cases:
        animation, error = None, None
        try:
            animation = runtime.generate(case["text"])
        except InputError as exc:
            error = exc
        problems = check(case, animation, error)
        by_cat[case["cat"]].append(not problems)
        if problems:
            failed[case["id"]] = {"text": case["text"], "problems": problems}
    every = [ok for oks in by_cat.values() for ok in oks]
    return {"overall": sum(every) / len(every), "n": len(every),
            "categories": {c: sum(v) / len(v) for c, v in sorted(by_cat.items())}, "failed": failed}
