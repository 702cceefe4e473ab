from dataclasses import dataclass

import numpy as np
import pytest

from model_runtime.dynamics import eased_frames, smootherstep
from model_runtime.errors import InputError
from model_runtime.instructions import parse_instruction
from model_runtime.timeline import HOLD_S, TRANSITION_S, frame_spans, plan_segments


@dataclass(frozen=True)
class Seg:
    text: str = "smile"
    kind: str = "expression"
    intensity: float | None = None
    transition_s: float | None = None
    hold_s: float | None = None
    speed: str | None = None
    manner: tuple = ()
    side: str | None = None
    is_start: bool = False


def test_segments_are_laid_end_to_end_with_defaults():
    plan = plan_segments([Seg(), Seg(text="frown", speed="slow")], fps=30)
    assert plan[0].start_s == 0 and plan[0].transition_s == TRANSITION_S[None] and plan[0].hold_s == HOLD_S[None]
    assert plan[1].start_s == pytest.approx(plan[0].end_s) and plan[1].transition_s == TRANSITION_S["slow"]


def test_explicit_times_win_and_start_faces_appear_at_once():
    plan = plan_segments([Seg(is_start=True), Seg(transition_s=2.0, hold_s=0.25)], fps=24)
    assert plan[0].transition_s == 0 and plan[0].is_start
    assert plan[1].transition_s == 2.0 and plan[1].hold_s == 0.25


@pytest.mark.parametrize("fps", [24, 30, 60, 25, 7])
def test_frames_keep_seconds_within_one_frame(fps):
    plan = plan_segments([Seg(transition_s=0.37, hold_s=1.13), Seg(transition_s=1.91, hold_s=0.4)], fps=fps)
    spans = frame_spans(plan, fps)
    assert spans[0].end_frame == spans[1].start_frame
    total_s = 0.37 + 1.13 + 1.91 + 0.4
    assert abs(spans[-1].end_frame - total_s * fps) <= 0.5
    assert abs((spans[1].apex_frame - spans[1].start_frame) - 1.91 * fps) <= 1


def test_duration_rescales_the_whole_plan():
    plan = plan_segments([Seg(), Seg(), Seg()], fps=30, duration_s=6.0)
    assert plan[-1].end_s == pytest.approx(6.0)
    assert plan[1].start_s == pytest.approx(2.0)


@pytest.mark.parametrize("segments, duration, fragment", [
    ([], None, "names no expression"),
    ([Seg(hold_s=-1.0)], None, "between 0 and 600"),
    ([Seg(transition_s=float("nan"))], None, "between 0 and 600"),
    ([Seg(hold_s=400.0), Seg(hold_s=300.0)], None, "limit is 600"),
    ([Seg()], 0.0, "more than 0"),
    ([Seg()], 601.0, "at most 600"),
    ([Seg(transition_s=0.0, hold_s=0.001)], None, "less than one frame"),
])
def test_bad_timings_are_refused(segments, duration, fragment):
    with pytest.raises(InputError, match=fragment):
        plan_segments(segments, fps=30, duration_s=duration)


def test_smootherstep_eases_in_and_out():
    u = np.linspace(0, 1, 101)
    s = smootherstep(u)
    assert s[0] == 0 and s[-1] == 1 and np.all(np.diff(s) >= 0)
    velocity = np.diff(s)
    assert velocity[0] < 1e-4 and velocity[-1] < 1e-4 and velocity.max() > 1.5 / 100


def test_eased_frames_hit_every_target_exactly_and_stay_in_range():
    plan = plan_segments([Seg(transition_s=0.5, hold_s=0.5), Seg(transition_s=1.0, hold_s=0.2)], fps=30)
    spans = frame_spans(plan, 30)
    targets = np.zeros((2, 52), np.float32)
    targets[0, 3], targets[1, 7] = 1.0, 0.6
    frames = eased_frames(spans, targets, start=np.zeros(52, np.float32))
    assert frames.shape == (spans[-1].end_frame + 1, 52)
    np.testing.assert_array_equal(frames[0], 0)
    np.testing.assert_array_equal(frames[spans[0].apex_frame:spans[0].end_frame + 1], np.repeat(targets[:1], 16, 0))
    np.testing.assert_array_equal(frames[-1], targets[1])
    assert frames.min() >= 0 and frames.max() <= 1
    mid = (spans[1].start_frame + spans[1].apex_frame) // 2
    assert 0.2 < frames[mid, 3] < 0.8


@pytest.mark.parametrize("text, what", [("smile over 2 hours", "transition"), ("smile for 0.5 h", "hold"),
                                        ("smile over 9999 hours", "transition"),
                                        ("frown over half an hour", "transition")])
def test_hours_are_read_and_meet_the_length_limit(text, what):
    parsed = parse_instruction(text)
    assert not parsed.unplaced and parsed.segments[0].text in ("smile", "frown")
    with pytest.raises(InputError, match=f"The {what} time of .* must be between 0 and 600 seconds"):
        plan_segments(parsed.segments, 30, None)


def test_a_fraction_of_an_hour_within_the_limit_is_used():
    plan = plan_segments(parse_instruction("smile in 0.001 hours").segments, 30, None)
    assert plan[0].transition_s == pytest.approx(3.6)


@pytest.mark.parametrize("text, duration", [("keep blinking", 10.0), ("blink 7 times, then smile", 3.3),
                                            ("nod twice while smiling", None)])
def test_adjacent_segments_share_their_boundary_frame(text, duration):
    spans = frame_spans(plan_segments(parse_instruction(text).segments, fps=30, duration_s=duration), 30)
    assert all(a.end_frame == b.start_frame for a, b in zip(spans, spans[1:]))
    assert all(s.start_frame <= s.apex_frame <= s.end_frame for s in spans)
