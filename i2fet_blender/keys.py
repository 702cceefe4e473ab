"""Keyframe arithmetic for the writer, without bpy: resampling to the scene's frame rate, amplify, key reduction.

Kept free of `bpy` so it is unit-testable anywhere and reusable by the batch tools.
"""

from __future__ import annotations

import numpy as np


def resample(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """(T, C) samples at `src_fps` -> samples at `dst_fps` covering the same seconds (linear interpolation).

    The first sample stays at time 0 and the last new sample is the last whole destination frame inside the
    source duration (rounded, so 2.0 s at 30 fps -> 61 frames -> 2.0 s at 24 fps -> 49 frames).
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise ValueError(f"frames must be (T, C), got shape {frames.shape}")
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError("frame rates must be positive")
    count = frames.shape[0]
    if count <= 1 or abs(src_fps - dst_fps) < 1e-9:
        return frames.copy()
    duration = (count - 1) / float(src_fps)
    new_count = int(round(duration * dst_fps)) + 1
    src_pos = np.arange(new_count, dtype=np.float64) * (float(src_fps) / float(dst_fps))
    src_pos = np.clip(src_pos, 0.0, count - 1)
    lo = np.floor(src_pos).astype(np.int64)
    hi = np.minimum(lo + 1, count - 1)
    t = (src_pos - lo)[:, None].astype(np.float32)
    return (frames[lo] * (1.0 - t) + frames[hi] * t).astype(np.float32)


def amplify(frames: np.ndarray, scale: float, lo: np.ndarray | float = 0.0, hi: np.ndarray | float = 1.0) -> np.ndarray:
    """Multiply the weights by `scale` and clamp to [lo, hi] (per channel when arrays are given)."""
    out = np.asarray(frames, dtype=np.float32) * np.float32(scale)
    return np.clip(out, lo, hi).astype(np.float32)


def reduce_keys(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Indices of the samples to keep so that linear interpolation between kept keys reproduces every sample
    within `tolerance` (absolute value error). First and last samples are always kept.

    Ramer-Douglas-Peucker on the value axis: split a span at its worst sample until every span's chord fits.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.shape[0]
    if n <= 2 or tolerance < 0:
        return np.arange(n, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        idx = np.arange(a + 1, b)
        chord = v[a] + (v[b] - v[a]) * (idx - a) / float(b - a)
        err = np.abs(v[a + 1:b] - chord)
        worst = int(np.argmax(err))
        if err[worst] > tolerance:
            m = a + 1 + worst
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return np.flatnonzero(keep)


def interpolate_kept(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Linear interpolation through `values[kept]` at every sample index (what Blender plays back)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return np.interp(np.arange(v.shape[0]), kept, v[kept])
