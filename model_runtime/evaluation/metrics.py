"""Metric functions of `i2fet evaluate`: plain numpy, no model, each checkable on hand-made inputs.

- AU precision/recall: the AUs an apex expression shows (`knowledge.active_aus`) against the concept's core AUs.
- Smoothness: mean |3rd| and |2nd| finite differences of a transition, against linear interpolation between the same
  endpoints over the same frames (linear has a velocity jump at each end, see the FACS reference's dynamics notes).
- Duration error: |asked - produced| in frames.
- Diversity: mean pairwise L2 distance between expressions generated for one text with different seeds.
- R-precision: whether the true match ranks in the top k of a pool by similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# AU precision / recall

def au_precision_recall(predicted: Iterable[int], reference: Iterable[int]) -> tuple[float, float]:
    """Precision and recall of a predicted AU set against a reference set.

    Conventions for empty sets: nothing predicted -> precision 1.0 (no false positives); empty reference -> recall
    1.0 (nothing to miss). So a neutral face predicted for a neutral reference scores (1, 1).
    """
    pred, ref = set(predicted), set(reference)
    hits = len(pred & ref)
    precision = hits / len(pred) if pred else 1.0
    recall = hits / len(ref) if ref else 1.0
    return float(precision), float(recall)


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def micro_precision_recall(pairs: Sequence[tuple[Iterable[int], Iterable[int]]]) -> tuple[float, float]:
    """Pooled precision/recall over (predicted, reference) pairs: total hits over total predicted / referenced."""
    hits = n_pred = n_ref = 0
    for pred, ref in pairs:
        p, r = set(pred), set(ref)
        hits += len(p & r)
        n_pred += len(p)
        n_ref += len(r)
    return (hits / n_pred if n_pred else 1.0), (hits / n_ref if n_ref else 1.0)


# ----------------------------------------------------------------------------------------------------------------
# Smoothness of transitions

CONTEXT_FRAMES = 3
"""Frames of context on each side of a transition: a 3rd difference needs 3 to see the corner of a linear ramp."""


@dataclass(frozen=True)
class TransitionSmoothness:
    """Sums of |2nd| and |3rd| finite differences (per channel and frame) of generated frames and of the linear
    reference over one window; `count` is the number of (frame, channel) terms each mean divides by."""

    jerk: float
    accel: float
    linear_jerk: float
    linear_accel: float
    jerk_count: int
    accel_count: int

    @property
    def mean_jerk(self) -> float:
        return self.jerk / max(self.jerk_count, 1)

    @property
    def mean_accel(self) -> float:
        return self.accel / max(self.accel_count, 1)

    @property
    def mean_linear_jerk(self) -> float:
        return self.linear_jerk / max(self.jerk_count, 1)

    @property
    def mean_linear_accel(self) -> float:
        return self.linear_accel / max(self.accel_count, 1)


def linear_reference(frames: np.ndarray, start: int, end: int) -> np.ndarray:
    """Copy of `frames` (T, C) with frames start..end replaced by a straight line from frames[start] to frames[end]."""
    frames = np.asarray(frames, dtype=np.float64)
    ref = frames.copy()
    if end > start:
        u = np.linspace(0.0, 1.0, end - start + 1)[:, None]
        ref[start:end + 1] = frames[start] + (frames[end] - frames[start]) * u
    return ref


def transition_smoothness(frames: np.ndarray, start: int, end: int,
                          context: int = CONTEXT_FRAMES) -> TransitionSmoothness:
    """|jerk| and |acceleration| of the frames of one transition (start..end, with `context` frames either side,
    clipped to the animation) and of linear interpolation between frames[start] and frames[end] over the same frames,
    the context frames being the animation's own in both. Finite differences are per frame (units: weight/frame^k).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2:
        raise ValueError(f"frames must be (T, C), got shape {frames.shape}")
    if not 0 <= start <= end < frames.shape[0]:
        raise ValueError(f"bad transition span {start}..{end} for {frames.shape[0]} frames")
    lo, hi = max(0, start - context), min(frames.shape[0] - 1, end + context)
    window = frames[lo:hi + 1]
    ref = linear_reference(frames, start, end)[lo:hi + 1]
    d3, r3 = np.diff(window, n=3, axis=0), np.diff(ref, n=3, axis=0)
    d2, r2 = np.diff(window, n=2, axis=0), np.diff(ref, n=2, axis=0)
    return TransitionSmoothness(jerk=float(np.abs(d3).sum()), accel=float(np.abs(d2).sum()),
                                linear_jerk=float(np.abs(r3).sum()), linear_accel=float(np.abs(r2).sum()),
                                jerk_count=int(d3.size), accel_count=int(d2.size))


def pooled_smoothness(items: Sequence[TransitionSmoothness]) -> dict[str, float]:
    """Means over all (frame, channel) terms of all transitions, and generated/linear ratios (NaN when empty)."""
    jc = sum(t.jerk_count for t in items)
    ac = sum(t.accel_count for t in items)
    jerk = sum(t.jerk for t in items) / jc if jc else float("nan")
    accel = sum(t.accel for t in items) / ac if ac else float("nan")
    lin_jerk = sum(t.linear_jerk for t in items) / jc if jc else float("nan")
    lin_accel = sum(t.linear_accel for t in items) / ac if ac else float("nan")
    return {
        "mean_jerk": jerk, "mean_accel": accel, "linear_mean_jerk": lin_jerk, "linear_mean_accel": lin_accel,
        "jerk_ratio": jerk / lin_jerk if lin_jerk > 0 else float("nan"),
        "accel_ratio": accel / lin_accel if lin_accel > 0 else float("nan"),
        "transitions": len(items),
    }


# ----------------------------------------------------------------------------------------------------------------
# Timing, diversity, retrieval

def duration_error(asked_frames: int | float, produced_frames: int | float) -> float:
    """|asked - produced| in frames."""
    return float(abs(float(asked_frames) - float(produced_frames)))


def seconds_to_frames(seconds: float, fps: int) -> int:
    """The frame count an artist expects for a duration: nearest whole frame."""
    return int(round(seconds * fps))


def mean_pairwise_l2(vectors: np.ndarray) -> float:
    """Mean L2 distance over all unordered pairs of rows of (N, D); 0.0 for fewer than two rows."""
    v = np.asarray(vectors, dtype=np.float64)
    n = v.shape[0]
    if n < 2:
        return 0.0
    d = np.sqrt(np.maximum(((v[:, None, :] - v[None, :, :]) ** 2).sum(-1), 0.0))
    return float(d[np.triu_indices(n, k=1)].mean())


def rank_of_true(similarities: np.ndarray, true_index: int = 0) -> int:
    """0-based rank of the true candidate among the pool (ties count against it: a tie is not a win)."""
    s = np.asarray(similarities, dtype=np.float64)
    return int((s >= s[true_index]).sum() - 1)


def r_precision(ranks: Sequence[int], k: int) -> float:
    """Share of queries whose true candidate ranks within the top k (ranks are 0-based)."""
    ranks = list(ranks)
    return float(np.mean([r < k for r in ranks])) if ranks else float("nan")


__all__ = [
    "CONTEXT_FRAMES", "TransitionSmoothness", "au_precision_recall", "duration_error", "f1", "linear_reference",
    "mean_pairwise_l2", "micro_precision_recall", "pooled_smoothness", "r_precision", "rank_of_true",
    "seconds_to_frames", "transition_smoothness",
]
