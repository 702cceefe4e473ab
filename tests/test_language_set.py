"""The held-out language set (issue 13) through both generators, the checker that scores it, and end-to-end checks
that both generators honour layers, repeats, direct actions and head motion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from model_runtime import Runtime
from model_runtime.animation import Animation
from model_runtime.evaluation.language import HEAD_PEAK, check, count_peaks, load_cases, score
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS

DATA = Path(__file__).parent / "data"
HELDOUT = DATA / "language_heldout.jsonl"
DEV = DATA / "language_dev.jsonl"
CATEGORIES = {"simultaneity", "repetition", "sequence", "direct", "gaze_head", "bad_input", "vocabulary"}


@pytest.fixture(scope="module", params=["baseline", "i2fet"])
def rt(request, cache_root):
    return Runtime.load(model=request.param, device="cpu")


def test_the_sets_are_large_separate_and_cover_every_category():
    heldout, dev = load_cases(HELDOUT), load_cases(DEV)
    assert len(heldout) >= 150 and {c["cat"] for c in heldout} == CATEGORIES
    assert not {c["text"] for c in heldout} & {c["text"] for c in dev}
    expectations = {"segments", "segments_max", "phases", "peaks", "head_peaks", "head_reach", "head_still", "warn",
                    "warn_has", "not_both", "refuse"}
    assert all(set(c) - {"id", "cat", "text"} and set(c) - {"id", "cat", "text"} <= expectations for c in heldout)


def test_heldout_language_set_meets_the_goals(rt):
    result = score(rt, load_cases(HELDOUT))
    assert result["overall"] >= 0.95, result
    assert all(rate >= 0.90 for rate in result["categories"].values()), result


# ---- the checker itself -------------------------------------------------------------------------------------------
def _animation(rows, head=None, warnings=(), kinds=None):
    frames = np.zeros((len(rows), NUM_CHANNELS), np.float32)
    for t, row in enumerate(rows):
        for name, value in row.items():
            frames[t, CHANNEL_INDEX[name]] = value
    kinds = kinds or ["expression"] * len(rows)
    segments = [{"text": "x", "start_frame": t, "end_frame": t, "apex_frame": t, "label": "x", "intensity": 1.0,
                 "confidence": 1.0, "kind": k} for t, k in enumerate(kinds)]
    return Animation(frames=frames, fps=30, segments=segments, warnings=list(warnings),
                     head_rotation=None if head is None else np.asarray(head, np.float32))


def test_checker_phases_must_come_in_order_and_sides_average():
    smile = {"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5}
    frown = {"browDownLeft": 0.6, "browDownRight": 0.6}
    case = {"phases": [{"hi": ["mouthSmile"]}, {"hi": ["browDown"], "lo": ["mouthSmile"]}], "segments": 2}
    assert check(case, _animation([smile, frown])) == []
    assert check(case, _animation([frown, smile]))  # wrong order
    one_sided = {"mouthSmileLeft": 0.3}
    assert check({"phases": [{"hi": ["mouthSmile"]}]}, _animation([one_sided]))  # mean of both sides is 0.15
    assert check({"segments": 1}, _animation([smile, {}], kinds=["expression", "release"])) == []


def test_checker_counts_separate_peaks():
    curve = np.array([0, 1, 0, 1, 0.9, 1, 0, 0.5, 0])
    assert count_peaks(curve) == 2  # 0.9 is no dip, 0.5 is below 60% of the top
    assert count_peaks(np.full(5, 0.1)) == 0
    blink = {"eyeBlinkLeft": 1, "eyeBlinkRight": 1}
    anim = _animation([{}, blink, {}, blink, {}])
    assert check({"peaks": [{"ch": "eyeBlink", "count": 2}]}, anim) == []
    assert check({"peaks": [{"ch": "eyeBlink", "count": 3}]}, anim)


def test_checker_head_warnings_and_refusals():
    head = [[0, 0, 0], [0.2, -0.2, 0], [0, 0, 0], [-0.2, -0.2, 0.0], [0, 0, 0]]
    anim = _animation([{}] * 5, head=head, warnings=["This part was not used: 'while'."])
    assert check({"head_reach": {"yaw": 0.1, "yaw_neg": -0.1}, "warn_has": ["while"]}, anim) == []
    assert check({"head_peaks": [{"axis": "pitch", "sign": -1, "count": 2}]}, anim) == []
    assert check({"head_peaks": [{"axis": "pitch", "sign": 1, "min": 1}]}, anim)
    assert check({"head_still": True}, anim) and check({"warn": False}, anim)
    assert check({"refuse": True}, anim) == ["was not refused"]
    assert check({"refuse": True}, None, ValueError("no")) == []


# ---- both generators honour the language ----------------------------------------------------------------------------
def _at(anim, name, frame):
    return float(anim.frames[frame, CHANNEL_INDEX[name]])


def test_open_the_mouth_wide_reaches_the_jaw(rt):
    anim = rt.generate("open the mouth wide")
    assert anim.frames[:, CHANNEL_INDEX["jawOpen"]].max() >= 0.6
    assert anim.segments[0]["label"] == "open mouth" and not anim.warnings


def test_layers_show_together_at_one_apex(rt):
    anim = rt.generate("smile while raising the eyebrows")
    (seg,) = anim.segments
    apex = seg["apex_frame"]
    assert _at(anim, "mouthSmileLeft", apex) > 0.2 and _at(anim, "browOuterUpLeft", apex) > 0.5


def test_repeats_are_visible_peaks_and_contradictions_are_named(rt):
    anim = rt.generate("blink three times")
    assert count_peaks(anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]) == 3
    anim = rt.generate("smile and frown at the same time")
    assert any("frown" in w for w in anim.warnings)
    corners = anim.frames[:, [CHANNEL_INDEX["mouthSmileLeft"], CHANNEL_INDEX["mouthFrownLeft"]]]
    assert not np.any((corners > 0.2).all(axis=1))


def _closed_runs(curve: np.ndarray, fps: int) -> list[float]:
    """Seconds each separate closure of an eye stays above half closed."""
    closed = np.concatenate([[False], curve > 0.5, [False]])
    edges = np.flatnonzero(np.diff(closed.astype(int)))
    return list((edges[1::2] - edges[::2]) / fps)


@pytest.mark.parametrize("text, seconds, peaks", [
    ("keep blinking for 10 seconds", 10.0, (15, 25)),  # an open count fills the time at a natural rate, 2 a second
    ("blink twice over 5 seconds", 5.0, (2, 2)),       # a stated count is spread over it
    ("blink again and again for 4 seconds", 4.0, (4, 12)),
    ("blink every second for 10 seconds", 10.0, (8, 20)),
    ("blink 3 times for 1 second", 1.0, (3, 3)),        # faster than natural: every phase compressed alike
    ("keep blinking for 60 seconds", 60.0, (100, 200)),  # an open count is not capped at a stated count's 12
])
def test_a_duration_given_to_a_repeated_blink_is_the_whole_repetition(rt, text, seconds, peaks):
    anim = rt.generate(text)
    assert anim.frames.shape[0] == pytest.approx(seconds * anim.fps + 1, abs=1)
    curve = anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    assert peaks[0] <= count_peaks(curve) <= peaks[1]
    assert max(_closed_runs(curve, anim.fps)) <= 0.5  # each is still a blink, not eyes held shut


def test_a_duration_given_to_repeated_held_or_head_actions(rt):
    anim = rt.generate("smile twice for 4 seconds")  # a stated count of a held expression: each smile held longer
    assert anim.frames.shape[0] == pytest.approx(4 * anim.fps + 1, abs=1)
    assert count_peaks(anim.frames[:, CHANNEL_INDEX["mouthSmileLeft"]], 0.2) == 2
    anim = rt.generate("nodding for 3 seconds")  # the progressive names an ongoing action: it repeats
    assert anim.frames.shape[0] == pytest.approx(3 * anim.fps + 1, abs=1)
    assert count_peaks(-anim.head_rotation[:, 1], HEAD_PEAK) >= 2
    for text in ("shaking the head for 4 seconds", "shake your head for 4 seconds"):  # a shake swings to and fro
        anim = rt.generate(text)
        assert anim.frames.shape[0] == pytest.approx(4 * anim.fps + 1, abs=1)
        assert count_peaks(np.abs(anim.head_rotation[:, 0]), HEAD_PEAK) >= 4
    anim = rt.generate("nod once for 3 seconds")
    assert count_peaks(-anim.head_rotation[:, 1], HEAD_PEAK) == 1
    anim = rt.generate("smile while blinking for 4 seconds")  # the smile's arrival is part of the 4 s
    assert anim.frames.shape[0] == pytest.approx(4 * anim.fps + 1, abs=1)
    assert count_peaks(anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]) >= 4
    assert anim.frames[anim.fps:, CHANNEL_INDEX["mouthSmileLeft"]].min() > 0.2  # held under every blink
    anim = rt.generate("smile while blinking for 1 second")  # the arrival takes at most half of the time given
    first_blink = int(np.argmax(anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]] > 0.5))
    assert 0 < first_blink <= 0.65 * anim.fps


@pytest.mark.parametrize("text, peaks, period", [
    ("blink every 2 seconds for 10 seconds", 5, 2.0), ("blink every 3 seconds", 4, 3.0),
    ("blink every other second for 6 seconds", 3, 2.0),
    ("blink and nod every 2 seconds for 6 seconds", 3, 2.0),  # a rate on the second pulsing part is the beat's
    ("blink 3 times every 2 seconds", 3, 2.0),
    ("blink twice a second for 3 seconds", 6, 0.5), ("blink every one and a half seconds for 6 seconds", 4, 1.5),
])
def test_a_stated_rate_spaces_the_peaks(rt, text, peaks, period):
    anim = rt.generate(text)
    curve = anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]
    assert count_peaks(curve) == peaks
    closed = np.flatnonzero(np.diff((curve > 0.5).astype(int)) == 1) / anim.fps  # each blink's closing moment
    assert np.allclose(np.diff(closed), period, atol=2 / anim.fps)


def test_two_pulses_in_one_segment_peak_together(rt):
    """"blink and nod": one beat of both, then rest, not a nod held down while a blink happens."""
    anim = rt.generate("blink and nod")
    pitch = -anim.head_rotation[:, 1]
    assert count_peaks(anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]]) == 1 and count_peaks(pitch, HEAD_PEAK) == 1
    assert (pitch > 0.5 * pitch.max()).sum() < 0.5 * anim.fps and abs(pitch[-1]) < 0.01
    anim = rt.generate("keep blinking and nodding for 4 seconds")
    assert count_peaks(-anim.head_rotation[:, 1], HEAD_PEAK) >= 4


def test_a_single_blink_wink_or_nod_given_a_time_holds_its_pose(rt):
    anim = rt.generate("wink and hold it for 3 seconds")
    closed = np.maximum(anim.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]], anim.frames[:, CHANNEL_INDEX["eyeBlinkRight"]])
    assert count_peaks(closed) == 1 and max(_closed_runs(closed, anim.fps)) >= 2.5
    anim = rt.generate("open and close the mouth for 4 seconds")
    assert count_peaks(anim.frames[:, CHANNEL_INDEX["jawOpen"]], 0.2) == 1
    assert (anim.frames[:, CHANNEL_INDEX["jawOpen"]] > 0.5 * anim.frames[:, CHANNEL_INDEX["jawOpen"]].max()).sum() \
        >= 3 * anim.fps
    anim = rt.generate("from blinking for 4 seconds to smiling")  # the 4 s are the blinks', not a wait before them
    assert anim.frames.shape[0] <= 7 * anim.fps


def test_head_motion_reaches_the_animation_and_its_files(rt, tmp_path):
    anim = rt.generate("nod twice, then shake the head")
    assert anim.head_rotation is not None and anim.head_rotation.shape == (anim.num_frames, 3)
    assert count_peaks(-anim.head_rotation[:, 1], 0.1) == 2
    for suffix in (".json", ".npz"):
        back = Animation.load(anim.save(tmp_path / f"a{suffix}"))
        np.testing.assert_allclose(back.head_rotation, anim.head_rotation, atol=1e-6)
    rows = (tmp_path / "a.csv").write_bytes(anim._csv_bytes()) and (tmp_path / "a.csv").read_text().splitlines()
    header = rows[0].split(",")
    yaw = [float(r.split(",")[header.index("HeadYaw")]) for r in rows[1:]]
    pitch = [float(r.split(",")[header.index("HeadPitch")]) for r in rows[1:]]
    np.testing.assert_allclose(yaw, anim.head_rotation[:, 0], atol=1e-5)
    assert min(pitch) < -0.2
    assert rt.generate("smile").head_rotation is None


@pytest.mark.parametrize("head, message", [
    (np.zeros((3, 3)), "one (yaw, pitch, roll) row per frame"),
    (np.full((5, 3), np.nan), "finite angles"),
    (np.full((5, 3), 4.0), "between -pi and pi"),
])
def test_bad_head_rotation_is_refused_in_one_sentence(head, message, tmp_path):
    from model_runtime.errors import InputError

    with pytest.raises(InputError, match=re.escape(message)):
        Animation(frames=np.zeros((5, NUM_CHANNELS)), fps=30, head_rotation=head)
    good = Animation(frames=np.zeros((5, NUM_CHANNELS)), fps=30, head_rotation=np.zeros((5, 3))).to_dict()
    good["head_rotation"] = head.tolist()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(good))
    with pytest.raises(InputError, match="head_rotation"):
        Animation.load(path)


def test_a_face_placed_on_the_clock_waits_there_and_a_place_it_cannot_keep_is_a_warning(rt):
    anim = rt.generate("smile from 2 to 5 seconds")
    smile = anim.frames[:, CHANNEL_INDEX["mouthSmileLeft"]]
    assert anim.frames.shape[0] == pytest.approx(5 * anim.fps + 1, abs=1)
    assert smile[:2 * anim.fps].max() < 0.05 and smile[3 * anim.fps:].min() > 0.3  # rest until 2 s, smiling after
    anim = rt.generate("smile, then at 4 seconds frown")
    assert anim.frames[int(3.8 * anim.fps), CHANNEL_INDEX["mouthSmileLeft"]] > 0.3  # the smile held until then
    assert anim.segments[1]["start_frame"] == 4 * anim.fps and not anim.warnings
    anim = rt.generate("smile, then at 0.5 seconds frown")
    assert any("start at 0.5 s" in w for w in anim.warnings)


def test_repeats_too_fast_for_the_frame_rate_are_a_warning_that_names_a_rate_that_shows_them(rt):
    anim = rt.generate("blink three times", fps=2)
    (warning,) = [w for w in anim.warnings if "fall between frames" in w]
    enough = int(warning.split("; ")[1].split()[0])
    shown = rt.generate("blink three times", fps=enough)
    closed = (shown.frames[:, CHANNEL_INDEX["eyeBlinkLeft"]] > 0.5).astype(int)
    assert int(np.diff(closed).clip(min=0).sum() + closed[0]) == 3 and not shown.warnings
    assert not rt.generate("blink three times", fps=24).warnings and not rt.generate("smile, then frown", fps=1).warnings
