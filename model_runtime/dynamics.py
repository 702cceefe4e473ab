"""Frames between key expressions for the baseline: every channel eases in and out together.

Easing (zero velocity and acceleration at both ends) removes the velocity jumps that plain linear interpolation has;
moving all channels in lock-step is what the learned transition model is meant to improve on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .timeline import FrameSpan


def smootherstep(u: np.ndarray) -> np.ndarray:
    """Perlin's quintic: 0 -> 1 with zero first and second derivatives at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (u * (6.0 * u - 15.0) + 10.0)


def eased_frames(spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(T, C) frames: from `start`, ease into each target over its span's transition, then hold it."""
    return np.clip(eased_track(spans, targets, start), 0.0, 1.0)


def eased_track(spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray) -> np.ndarray:
    """eased_frames without the [0, 1] clip, for signed tracks such as head rotation in radians."""
    targets = np.asarray(targets, dtype=np.float32)
    num_frames = spans[-1].end_frame + 1
    frames = np.empty((num_frames, targets.shape[1]), dtype=np.float32)
    frames[:] = start
    previous = np.asarray(start, dtype=np.float32)
    for span, target in zip(spans, targets):
        length = span.apex_frame - span.start_frame
        if length > 0:
            u = np.arange(1, length + 1, dtype=np.float32) / length
            frames[span.start_frame + 1: span.apex_frame + 1] = previous + (target - previous) * smootherstep(u)[:, None]
        frames[span.apex_frame: span.end_frame + 1] = target
        previous = target
    return frames
