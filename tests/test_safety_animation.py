"""The Animation validator (__post_init__, from_dict, segments) on both sides of each check: every non-finite
weight is refused, the [0, 1] range at its documented 1e-4 tolerance (run first by scripts/mutation_test.py)."""

import numpy as np
import pytest

from model_runtime.animation import Animation
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS



def _doc(frames=None, **replaced):
    frames = np.full((3, 52), 0.5) if frames is None else frames
    doc = {"schema": "i2fet.animation/1", "fps": 30, "channels": list(ARKIT_CHANNELS),
           "frames": np.asarray(frames).tolist(), "segments": [], "instruction": "x"}
    doc.update(replaced)
    return {k: v for k, v in doc.items() if v is not None}


def test_animation_refuses_any_non_finite_weight():
    for value in (np.nan, np.inf, -np.inf):
        frames = np.full((3, 52), 0.5)
        frames[1, 7] = value
        with pytest.raises(InputError, match="NaN or infinite weights \\(first at frame 1\\)"):
            Animation(frames=frames, fps=30)
        with pytest.raises(InputError, match="NaN or infinite"):
            Animation(frames=frames, fps=30, rig="flame")
        with pytest.raises(InputError, match="contains NaN or infinite"):
            Animation.from_dict(_doc(frames))


def test_animation_range_is_checked_at_its_tolerance():
    for value in (-0.01, 1.01):
        frames = np.full((2, 52), 0.5)
        frames[1, 3] = value
        with pytest.raises(InputError, match="must lie in \\[0, 1\\]"):
            Animation(frames=frames, fps=30)
        with pytest.raises(InputError, match="must lie in \\[0, 1\\]"):
            Animation.from_dict(_doc(frames))
    frames = np.full((2, 52), 0.5)
    frames[0, 0], frames[1, 1] = -5e-5, 1 + 5e-5  # within the documented 1e-4 tolerance: accepted, then clipped
    loaded = Animation.from_dict(_doc(frames))
    assert loaded.frames.min() == 0.0 and loaded.frames.max() == 1.0
    edge = frames.copy()
    edge[0, 0], edge[1, 1] = -1e-4, 1 + 1e-4  # the tolerance itself is inside
    assert Animation.from_dict(_doc(edge)).frames.max() == 1.0
    assert Animation(frames=frames, fps=30).frames[0, 0] < 0
    assert Animation(frames=np.full((2, 52), -3.0), fps=30, rig="flame").frames.min() == -3.0
    assert Animation(frames=np.zeros((0, 52)), fps=30).num_frames == 0


def test_animation_shape_is_checked():
    for frames in (np.zeros((3, 51)), np.zeros(52), np.zeros((2, 52, 1))):
        with pytest.raises(InputError, match="one row of 52 weights"):
            Animation(frames=frames, fps=30)


def test_from_dict_refusals():
    cases = [
        ([1], "top level must be an object"),
        (_doc(schema="i2fet.animation/2"), "'schema' must be"),
        (_doc(fps=0), "'fps' must be an integer"), (_doc(fps=241), "'fps' must be an integer"),
        (_doc(fps=True), "'fps' must be an integer"), (_doc(fps=30.0), "'fps' must be an integer"),
        (_doc(channels="jawOpen"), "'channels' must be a list"), (_doc(channels=[1] * 52), "'channels' must be a list"),
        (_doc(channels=list(ARKIT_CHANNELS[:51]) + ["nope"]), "each of the 52 ARKit names once \\(unknown: nope\\)"),
        (_doc(channels=list(ARKIT_CHANNELS[:51]) + [ARKIT_CHANNELS[0]]), "each of the 52 ARKit names once"),
        (_doc(rig="flame", channels=["a", "a"], frames=np.zeros((2, 2))), "without repeats"),
        (_doc(rig="flame", channels=[], frames=np.zeros((2, 0))), "without repeats"),
        (_doc(frames=None) | {"frames": "x"}, "'frames' must"),
        (_doc() | {"frames": [[0.5] * 52, [0.5] * 51]}, "'frames' must be a list of rows"),
        (_doc(frames=np.zeros((0, 52))), "'frames' must have one row per frame"),
        (_doc() | {"frames": np.zeros((0, 52))}, "'frames' must have one row per frame"),  # as an npz holds it
        (_doc(frames=np.zeros((2, 51))), "'frames' must have one row per frame"),
        (_doc() | {"frames": [0.5] * 52}, "'frames' must have one row per frame"),
        (_doc(frames=np.zeros((2, 52, 1))), "'frames' must have one row per frame"),
        (_doc(segments={}), "'segments' must be a list"),
        (_doc(model=[]), "'model' must be an object"), (_doc(instruction=3), "'instruction' a string"),
        (_doc(warnings="w"), "'warnings' must be a list"), (_doc(warnings=[1]), "'warnings' must be a list"),
    ]
    for doc, message in cases:
        with pytest.raises(InputError, match=message):
            Animation.from_dict(doc, source="f.json")
    ok = Animation.from_dict(_doc(fps=1, warnings=["w"], model={"m": 1}))
    assert ok.fps == 1 and ok.warnings == ["w"] and ok.model == {"m": 1}
    assert Animation.from_dict(_doc(fps=240)).fps == 240
    flame = Animation.from_dict(_doc(rig="flame", channels=["a", "b"], frames=np.full((2, 2), -2.0)))
    assert flame.channels == ["a", "b"] and flame.frames.min() == -2.0


def test_from_dict_reorders_channels_by_name():
    frames = np.zeros((1, 52))
    frames[0, 0] = 1.0
    reversed_doc = _doc(frames=frames[:, ::-1], channels=list(ARKIT_CHANNELS)[::-1])
    np.testing.assert_array_equal(Animation.from_dict(reversed_doc).frames, frames)


def _segment(**replaced):
    seg = {"text": "smile", "start_frame": 0, "end_frame": 2, "label": "smile", "intensity": 1.0, "confidence": 0.5}
    seg.update(replaced)
    return seg


def test_segment_checks():
    assert Animation.from_dict(_doc(segments=[_segment(), _segment(start_frame=2, intensity=1)])).segments[1][
        "start_frame"] == 2
    for seg, message in (("s", "segment 0 must be an object"), ({"text": "x"}, "segment 0 lacks start_frame"),
                         (_segment(start_frame=-1), "frames must be integers"),
                         (_segment(end_frame=3), "frames must be integers"),
                         (_segment(start_frame=2, end_frame=1), "frames must be integers"),
                         (_segment(start_frame=True), "frames must be integers"),
                         (_segment(end_frame=2.0), "frames must be integers"),
                         (_segment(intensity=float("nan")), "intensity must be a number"),
                         (_segment(intensity=True), "intensity must be a number"),
                         (_segment(confidence="1"), "confidence must be a number")):
        with pytest.raises(InputError, match=message):
            Animation.from_dict(_doc(segments=[seg]))
