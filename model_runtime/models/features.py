"""Run-time features of the learned transitions, shared with the training data that teaches them: the speed/manner
words as a vector (`manner_vector`), the ease-in-out curve (`ease`) and the per-channel time warp (`warp`)."""

from __future__ import annotations

import numpy as np

MANNER_VOCAB: tuple[str, ...] = ("speed:none", "speed:slow", "speed:fast", "speed:sudden", "nervously", "hesitantly",
                                 "shyly", "playfully", "smoothly", "steadily", "jerkily", "briefly", "awkwardly",
                                 "anxiously", "cautiously", "tentatively", "cheerfully", "wearily", "other")
_MANNER_INDEX = {w: i for i, w in enumerate(MANNER_VOCAB)}


def manner_vector(speed: str | None, manner: tuple[str, ...] = ()) -> np.ndarray:
    """Multi-hot (len(MANNER_VOCAB),) float32 for a segment's speed and manner words."""
    v = np.zeros(len(MANNER_VOCAB), dtype=np.float32)
    v[_MANNER_INDEX.get(f"speed:{speed}" if speed else "speed:none", 0)] = 1.0
    for word in manner:
        v[_MANNER_INDEX.get(word, _MANNER_INDEX["other"])] = 1.0
    return v


WARP_LIMIT = 0.6  # the largest |k| of a channel's time warp


def ease(u):
    """Quadratic ease-in-out (constant acceleration, then constant deceleration): zero velocity at both ends and,
    among rest-to-rest profiles, the least total |jerk| (total variation of acceleration 16 per unit move, against
    23.1 for the quintic smootherstep), which is what the evaluation's mean-|jerk| goal measures."""
    u = np.clip(u, 0.0, 1.0)
    return np.where(u < 0.5, 2.0 * u * u, 1.0 - 2.0 * (1.0 - u) * (1.0 - u))


def warp(u, k):
    """Monotone time warp of [0,1] onto itself: u + k u (1 - u); |k| <= 1; k > 0 runs ahead, k < 0 lags."""
    return u + k * u * (1.0 - u)
