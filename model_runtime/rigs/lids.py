"""Eyelids that meet: after shape transfer, each blink brings the target's own upper lid down onto its own lower lid,
and no shape pushes an upper lid through the lower one.

A transferred blink closes the source's lid gap, carried through the correspondence; on a head whose eyes are
shaped otherwise (a narrower or wider gap, lids wrapping into the socket) it stops short or overshoots. Here the
target's lid contours (`face_detection` landmarks, in the default head's frame) are sampled along each eye from
corner to corner; at each sample the upper lid's landing point is the lower lid's point at the same place as the
shape moves it. Where the shape leaves a blink's upper lid more than CLOSURE_TOLERANCE of the gap short of it, or
carries any shape's upper lid past it, the difference (less its part along the eye, which only says the two samples'
vertices do not face each other exactly) is added to the upper lid: fully on the lid margin away from the corners,
fading smoothly to nothing FALLOFF eye widths above it and toward the corners, never on the lower lid or the other
eye.
"""

from __future__ import annotations

import numpy as np

from .face_detection import FaceLandmarks
from .openings import OPENINGS, contour_points, side_label

EYES = (("eye_left", "eyeBlinkLeft"), ("eye_right", "eyeBlinkRight"))
SAMPLES = 24  # contour samples per eye, between its corners
FALLOFF = 0.5  # eye widths above the margin where the correction has faded to nothing
CORNER_TAPER = 0.15  # eye widths from each corner over which the correction eases in
CLOSURE_TOLERANCE = 0.05  # share of the eye's gap left alone (the detector's noise); corrected fully from twice that


def _lid_contours(in_head: np.ndarray, marks: FaceLandmarks, sides: np.ndarray, eye: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]] | None:
    """(upper, lower) (SAMPLES,) target vertex rows along the eye's lid margins, paired by position across the eye,
    the samples' positions across the eye (x, default head frame) and the corners' (smaller x first); None where the
    eye's contours or corners were not found."""
    upper_groups, lower_groups, corners, _ = OPENINGS[eye]
    k = list(OPENINGS).index(eye)
    ends = [marks.point(c) for c in corners]
    upper = np.concatenate([marks.group(g) for g in upper_groups])
    lower = np.concatenate([marks.group(g) for g in lower_groups])
    if upper.shape[0] < 3 or lower.shape[0] < 3 or any(e is None for e in ends):
        return None
    ends = np.stack(ends)
    lo, hi = float(ends[:, 0].min()), float(ends[:, 0].max())
    width = hi - lo
    x = lo + width * (np.arange(SAMPLES) + 0.5) / SAMPLES
    rows = []
    for contour, label in ((upper, side_label(k, True)), (lower, side_label(k, False))):
        candidates = np.flatnonzero(sides == label)
        if candidates.size == 0:
            return None
        points = contour_points(np.vstack([contour, ends]), x)
        near = np.linalg.norm(in_head[candidates][None] - points[:, None], axis=2).argmin(axis=1)
        rows.append(candidates[near])
    return rows[0], rows[1], x, (lo, hi)


def meet_lids(vertices: np.ndarray, deltas: np.ndarray, in_head: np.ndarray, marks: FaceLandmarks,
              sides: np.ndarray, channels: tuple[str, ...]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(52, V, 3) deltas (target frame) with each eye's blink closing the target's own lid gap and no shape's upper
    lid crossing the lower one (see the module docstring), the names of the shapes changed, and (V,) the vertices it
    brings fully together (both eyes' upper and lower margin samples away from the corners): where the lids meet,
    which smoothing afterwards must keep (near the corners, where the correction eases in, it may still move them).
    `in_head` is the target in the default head's frame, where `marks` and `sides` (`openings.opening_sides`) are
    measured."""
    out = np.array(deltas, dtype=np.float64)
    changed = []
    margins = np.zeros(in_head.shape[0], dtype=bool)
    for k, (eye, blink) in enumerate(EYES):
        found = _lid_contours(in_head, marks, sides, eye)
        if found is None:
            continue
        upper, lower, x, (lo, hi) = found
        full = np.minimum(x - lo, hi - x) >= CORNER_TAPER * (hi - lo)
        margins[upper[full]] = margins[lower[full]] = True
        lid = np.flatnonzero(sides == side_label(k, True))
        weight = _falloff(in_head[lid], in_head[upper], FALLOFF * (hi - lo))
        across = in_head[lid, 0]
        at = np.concatenate([[lo], x, [hi]])
        taper = _ease(np.minimum(x - lo, hi - x) / (CORNER_TAPER * (hi - lo)))  # lids meet at the corners anyway
        sideways = vertices[upper[-1]] - vertices[upper[0]]  # across the eye, target frame
        sideways /= max(float(np.linalg.norm(sideways)), 1e-30)
        gap = vertices[upper] - vertices[lower]
        rest = np.linalg.norm(gap, axis=1)
        direction = gap / np.maximum(rest, 1e-30)[:, None]
        tolerance = CLOSURE_TOLERANCE * float(rest.max())
        for row, channel in enumerate(channels):
            shape = out[row]
            miss = (vertices[lower] + shape[lower]) - (vertices[upper] + shape[upper])
            miss -= (miss @ sideways)[:, None] * sideways  # the samples' vertices need not face each other exactly
            left = -(miss * direction).sum(axis=1)  # the gap the shape leaves at each sample; below 0: crossed
            excess = np.abs(left) if channel == blink else -left
            share = np.clip(excess / tolerance - 1.0, 0.0, 1.0)
            if not share.any():
                continue
            correction = np.vstack([np.zeros(3), miss * (share * taper)[:, None], np.zeros(3)])
            along = np.stack([np.interp(across, at, correction[:, i], left=0.0, right=0.0) for i in range(3)], axis=1)
            shape[lid] += weight[:, None] * along
            changed.append(channel)
    return out.astype(np.float32), changed, margins


def _falloff(points: np.ndarray, margin: np.ndarray, reach: float) -> np.ndarray:
    """1 on the polyline through `margin` (in order across the eye), easing to 0 at `reach` from it."""
    order = np.argsort(margin[:, 0])
    start, end = margin[order][:-1], margin[order][1:]
    seg = end - start
    t = np.clip(np.einsum("psd,sd->ps", points[:, None] - start[None], seg)
                / np.maximum((seg * seg).sum(axis=1), 1e-30)[None], 0.0, 1.0)
    distance = np.linalg.norm(points[:, None] - (start[None] + t[..., None] * seg[None]), axis=2).min(axis=1)
    return _ease(1.0 - distance / reach)


def _ease(u: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, smooth (smoothstep) between."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)
