"""The bpy-free keyframe arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from i2fet_blender import keys


def test_resample_keeps_seconds():
    frames = np.linspace(0, 1, 61, dtype=np.float32)[:, None]  # 2 s at 30 fps
    for fps, count in ((24, 49), (30, 61), (60, 121)):
        out = keys.resample(frames, 30, fps)
        assert out.shape == (count, 1)
        assert out[0, 0] == 0 and abs(out[-1, 0] - 1) < 1e-6
        assert abs(out[fps, 0] - 0.5) < 1e-6  # 1 s in


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=200), st.floats(0, 0.2))
def test_reduce_keys_is_within_tolerance(values, tol):
    v = np.array(values)
    kept = keys.reduce_keys(v, tol)
    assert kept[0] == 0 and kept[-1] == len(v) - 1 and np.all(np.diff(kept) > 0)
    assert np.max(np.abs(keys.interpolate_kept(v, kept) - v)) <= tol + 1e-9


def test_reduce_keys_drops_lines():
    v = np.concatenate([np.linspace(0, 1, 50), np.ones(30), np.linspace(1, 0, 20)])
    assert list(keys.reduce_keys(v, 1e-6)) == [0, 49, 80, 99]  # the plateau runs to 80, where the ramp down starts


def test_amplify_clamps_per_channel():
    out = keys.amplify(np.array([[0.4, 0.8]]), 2.0, np.array([0, 0]), np.array([1.0, 1.5]))
    np.testing.assert_allclose(out, [[0.8, 1.5]])
