"""Where the mouth corners sit, measured on the Face Landmarker's own 478 landmarks.

A smile lifts the corners up to the upper lip; speech and a dropped jaw leave them half-way down the opening. The
landmarker's mouthSmile score confuses a wide open mouth with a smile (0.67 on a man speaking), while the corners'
place in the opening is a ratio within the face's own mouth, so neither the person's build nor the face's size or
pose changes it much. The calibration measures this ratio on renders of the default head at known weights and turns
it into a bound on the smile (calibration.py); closed lips (a gap too small to measure a place in) bound nothing.

A ratio alone does not tell a scream from a laugh: a jaw dropped far (FACS AU27, with the lips stretched wide, AU20)
leaves the corners at 0.63 to 0.66 of a tall opening, where a laugh's sit at 0.69. What does tell them apart is how
far the corners hang below the upper lip: zygomaticus major (AU12) holds them up near the upper lip however far the
jaw drops, while without it they follow the lower lip down by about half the opening (0.14 to 0.20 eye-corner
distances in the screams and shouts, 0.05 to 0.07 in the laughs). A second bound, `drop_bound`, runs from 1 with
the corners DROP_SMILE below the upper lip (the most that full smiles of the default head lower them: the 95th
percentile of its open-mouth renders with a smile of 0.75 or more) to 0 at DROP_NO_SMILE (where its open mouths
without a smile leave them: their median), both measured by benchmarks/measure_photo_cues.py.

On closed lips the landmarker barely scores a slight smile (0.04 on a closed-lip smile that the default head makes
at about 0.3), while the smile still pulls the corners apart: the mouth's width, in eye-corner distances, above the
same person's neutral width (or the default head's, without a neutral photo) is turned into a least smile by a map
the calibration fits on renders (`smile_floor`). A wide mouth at rest therefore reads as a slight smile unless a
neutral photo of the person is given.
"""

from __future__ import annotations

import numpy as np

UPPER_LIP, LOWER_LIP = 13, 14  # inner lip midpoints
CORNERS = {"mouthSmileLeft": 308, "mouthSmileRight": 78}  # inner lip corners, the character's own left and right
OUTER_CORNERS = (291, 61)  # the lips' outer corners: the mouth's width
EYE_CORNERS = (33, 263)  # outer eye corners: the face's x axis and its unit of length
FOREHEAD, CHIN = 10, 152
NOSE_TIP = 1
OPEN_FROM, OPEN_FULL = 0.05, 0.10  # lip gap, in eye-corner distances: the bound fades in between these
MEASURES = 4  # gap, corner place left, corner place right, width
DROP_SMILE, DROP_NO_SMILE = 0.087, 0.124  # corners below the upper lip, eye-corner distances (drop_bound)


def face_frame(landmarks: np.ndarray) -> np.ndarray | None:
    """(478,3) landmarks (x right, y down, as the landmarker gives them) in the face's own axes: x along the eye
    corners, y up the face, origin at the nose tip, in units of the eye-corner distance; None when the points give
    no frame (eye corners or forehead and chin on top of each other)."""
    p = np.asarray(landmarks, dtype=np.float64) * np.array([1.0, -1.0, 1.0])
    across = p[EYE_CORNERS[1]] - p[EYE_CORNERS[0]]
    unit = float(np.linalg.norm(across))
    if not unit > 1e-9:
        return None
    x = across / unit
    up = p[FOREHEAD] - p[CHIN]
    up = up - x * (up @ x)
    if not np.linalg.norm(up) > 1e-9 * unit:
        return None
    up /= np.linalg.norm(up)
    axes = np.stack([x, up, np.cross(x, up)])
    return (p - p[NOSE_TIP]) @ axes.T / unit


def mouth_measures(landmarks: np.ndarray) -> np.ndarray:
    """(4,): the inner lip gap (eye-corner distances), where the left and right corners sit in it (0 at the lower
    lip, 1 at the upper lip; NaN where the lips are closed), and the mouth's width across the face (eye-corner
    distances); all NaN when the landmarks give no face frame."""
    frame = face_frame(landmarks)
    if frame is None:
        return np.full(MEASURES, np.nan)
    y = frame[:, 1]
    gap = y[UPPER_LIP] - y[LOWER_LIP]
    places = [(y[c] - y[LOWER_LIP]) / gap if gap > OPEN_FROM / 2 else np.nan for c in CORNERS.values()]
    width = abs(frame[OUTER_CORNERS[0], 0] - frame[OUTER_CORNERS[1], 0])
    return np.array([gap, *places, width])


def closed(measures: np.ndarray) -> np.ndarray:
    """(…,1) how closed the lips are: 1 up to a gap of OPEN_FROM, 0 from OPEN_FULL (or where nothing was
    measured: no face frame)."""
    gap = np.nan_to_num(np.asarray(measures, dtype=np.float64)[..., :1], nan=np.inf)
    return 1.0 - np.clip((gap - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0)


def smile_bound(measures: np.ndarray, place_none: float, place_full: float) -> np.ndarray:
    """(…,2) the most each side's mouthSmile can be, from (…,4) mouth_measures: 0 with the corners at `place_none`
    or lower, 1 at `place_full` or higher, faded out to 1 (no bound) as the lips close or where nothing was
    measured."""
    m = np.asarray(measures, dtype=np.float64)
    opened = np.clip((np.nan_to_num(m[..., :1], nan=0.0) - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0)
    bound = np.clip((np.nan_to_num(m[..., 1:3], nan=place_full) - place_none) / (place_full - place_none), 0.0, 1.0)
    return opened * bound + (1.0 - opened)


def corner_drops(measures: np.ndarray) -> np.ndarray:
    """(…,2) how far each inner lip corner sits below the upper lip (eye-corner distances), from (…,4)
    mouth_measures; NaN where the lips are closed or nothing was measured."""
    m = np.asarray(measures, dtype=np.float64)
    return m[..., :1] * (1.0 - m[..., 1:3])


def drop_bound(measures: np.ndarray, drop_smile: float = DROP_SMILE,
               drop_no_smile: float = DROP_NO_SMILE) -> np.ndarray:
    """(…,2) the most each side's mouthSmile can be, from (…,4) mouth_measures: 1 with the corner up to
    `drop_smile` below the upper lip, 0 from `drop_no_smile` down, faded out to 1 (no bound) as the lips close or
    where nothing was measured."""
    m = np.asarray(measures, dtype=np.float64)
    opened = np.clip((np.nan_to_num(m[..., :1], nan=0.0) - OPEN_FROM) / (OPEN_FULL - OPEN_FROM), 0.0, 1.0)
    drops = np.nan_to_num(corner_drops(m), nan=drop_smile)
    bound = np.clip((drop_no_smile - drops) / (drop_no_smile - drop_smile), 0.0, 1.0)
    return opened * bound + (1.0 - opened)


def smile_floor(measures: np.ndarray, neutral_width, knots_x: np.ndarray, knots_y: np.ndarray) -> np.ndarray:
    """(…,1) the least mouthSmile of closed lips, from (…,4) mouth_measures: the width above `neutral_width` through
    the piecewise-linear map (knots_x, knots_y), faded out as the lips part; 0 where nothing was measured."""
    m = np.asarray(measures, dtype=np.float64)
    above = np.nan_to_num(m[..., 3:4] - np.asarray(neutral_width, dtype=np.float64)[..., None], nan=0.0)
    return closed(m) * np.interp(np.maximum(above, 0.0), knots_x, knots_y)
