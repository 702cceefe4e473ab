"""Lowered brows (FACS AU4) told apart from a smile's cheek raise (AU6), on the Face Landmarker's own landmarks.

The landmarker's browDown fires on broad grins (0.84 on a toothy grin whose brows are relaxed): AU6, which comes
with a smile (FACS: happiness is AU6+12, and AU4 belongs to no smiling prototype), pushes the cheeks up and narrows
the eyes from below, and the landmarker reads that squeeze as lowered brows. AU4 itself lowers the inner brows and
draws them together, so it is measured where it acts: the inner brow heads' height above the inner eye corners and
their distance from each other, in eye-corner distances. How low a person's brows sit at rest differs between
people by more than AU4 moves them (0.13 to 0.19 eye-corner distances on the real neutral photos, 0.24 on the
default head), so the lowering is only measured against the same person's neutral photo.

The bound on browDown: what a smile explains is taken away (a smile of weight s leaves at most 1 - s of browDown),
unless the brows are measured lower and closer than on the neutral photo, from LOWERED_FROM (nothing to tell from
two neutral views: the 95th percentile of the lowering between renders of the default head's neutral face at
different sizes and rotations) to LOWERED_FULL (the median lowering of the default head's browDown at 0.75 or more,
against its neutral face), both measured by benchmarks/measure_photo_cues.py. Without a neutral photo a smiling
face's browDown is read as its cheek raise: a frown worn with a broad smile needs the neutral photo to be read.
"""

from __future__ import annotations

import numpy as np

from .mouth import face_frame

INNER_BROWS = (55, 285)  # the inner brow heads' lower edge, the character's right and left
INNER_EYE_CORNERS = (133, 362)
MEASURES = 2  # inner brow height above the inner eye corners, inner brow distance
LOWERED_FROM, LOWERED_FULL = 0.014, 0.035  # eye-corner distances (benchmarks/measure_photo_cues.py)


def brow_measures(landmarks: np.ndarray) -> np.ndarray:
    """(2,): the inner brow heads' height above the inner eye corners (both sides' mean) and their distance from each
    other, in eye-corner distances; NaN when the landmarks give no face frame."""
    frame = face_frame(landmarks)
    if frame is None:
        return np.full(MEASURES, np.nan)
    brows, eyes = frame[list(INNER_BROWS)], frame[list(INNER_EYE_CORNERS)]
    return np.array([float(np.mean(brows[:, 1] - eyes[:, 1])), float(abs(brows[1, 0] - brows[0, 0]))])


def lowering(brows: np.ndarray, neutral_brows: np.ndarray | None) -> np.ndarray:
    """(…,) how much lower plus closer the inner brows are than on the neutral face (eye-corner distances); 0 without
    a neutral face or where either was not measured."""
    b = np.asarray(brows, dtype=np.float64)
    if neutral_brows is None:
        return np.zeros(b.shape[:-1])
    n = np.asarray(neutral_brows, dtype=np.float64)
    return np.nan_to_num((n[..., 0] - b[..., 0]) + (n[..., 1] - b[..., 1]), nan=0.0)


def brow_down_bound(smile: np.ndarray, brows: np.ndarray, neutral_brows: np.ndarray | None = None) -> np.ndarray:
    """(…,1) the most browDown can be: 1 - `smile` (the smile's mean weight, (…,)), lifted back towards 1 as the
    inner brows are measured lowered against `neutral_brows` ((2,) brow_measures of the person's neutral face)."""
    lowered = lowering(brows, neutral_brows)
    measured = np.clip((lowered - LOWERED_FROM) / (LOWERED_FULL - LOWERED_FROM), 0.0, 1.0)
    return np.maximum(1.0 - np.clip(np.asarray(smile, dtype=np.float64), 0.0, 1.0), measured)[..., None]
