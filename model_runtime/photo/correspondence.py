"""Which detector landmarks to trust, where the detector puts each on the default head, and how each channel moves it.

Established by the project itself, by rendering the default head (heads/render.py) and running the same detector on the
renders, once per head and MediaPipe version (about 20 s on two cores; cached as .npz in `cache_dir()`):

1. Surface points. The neutral, mouth-open and smiling head is rendered from five views (front, +-14 deg yaw,
   +-9 deg pitch); every detected landmark is traced back to the surface under it (`render.surface_at`: triangle +
   barycentric weights). Each landmark keeps the candidate that best predicts its detections in all fifteen renders;
   its median error there (millimetres on the head) becomes its expected noise.
2. Dropping. A landmark whose 90th-percentile error exceeds KEEP_MM is dropped. Measured with mediapipe 0.10.21:
   87 of 478, among them 26 of the 36 face-outline points (a silhouette point slides over the surface as the head
   turns) and 4 of the 40 lip points; all iris points are kept. See `LandmarkModel.dropped`.
3. Neutral positions. Each kept landmark's 3D position is triangulated from where the detector put it in the five
   neutral views, so that a turned head moves it the way the detector reports (not the way the surface would).
4. Channel responses. The detector's landmark shifts are measured on `training_faces()` (every channel alone at
   each level of RESPONSE_LEVELS, random instances of the knowledge base's concepts, random mixes) and regressed on
   the weights, piecewise linear in each weight: on these renders the detector follows a channel's motion only in
   part (about 0.6 to 0.9 of it, eyeWide hardly at all) and less than additively in mixes, so the fit models what the
   detector reports rather than the mesh's exact motion. The shifts' depth part, which a front view cannot see,
   comes from the surface points of step 1.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..expression_space import CHANNEL_INDEX, NUM_CHANNELS
from ..heads.head import DefaultHead, load_default_head
from ..heads.render import project_points, render_expressions, surface_at
from ..knowledge import all_concepts, sample_concept_weights
from ..paths import NpzCache
from .landmarks import get_detector, mediapipe_version

BUILD_VERSION = "photo-landmarks-v5"  # bump when anything below changes, so old caches are ignored
RENDER_SIZE = 256
VIEWS = ((0.0, 0.0, 0.0), (14.0, 0.0, 0.0), (-14.0, 0.0, 0.0), (0.0, 9.0, 0.0), (0.0, -9.0, 0.0))
POSE_EXPRESSIONS = ({}, {"jawOpen": 0.5}, {"mouthSmileLeft": 0.7, "mouthSmileRight": 0.7})
RESPONSE_LEVELS = (0.5, 1.0)  # the detector's response is piecewise linear in each weight, bending at these
RESPONSE_MIXES = 60
RESPONSE_SEED = 0
RESPONSE_RIDGE = 1e-3
KEEP_MM = 4.0  # 90th-percentile tracking error above which a landmark is dropped
NOISE_FLOOR_MM = 0.5  # no landmark is trusted more than this


@dataclass(frozen=True, eq=False)
class LandmarkModel:
    """The landmarks the fit uses, in the detector's numbering, on the default head (metres, Blender axes)."""

    landmark_ids: np.ndarray  # (K,) int64 indices into the detector's 478 landmarks
    points0: np.ndarray  # (K,3) float64: each landmark on the neutral head, as the detector sees it
    slopes: np.ndarray  # (S,52,K,3) float64: its shift per unit of each channel's weight within segment s
    segments: np.ndarray  # (S,) float64: the segments' widths (they add up to 1)
    sigma_mm: np.ndarray  # (K,) float64: expected landmark error, millimetres on the head
    dropped: np.ndarray  # (M,) int64: landmarks left out, as measured unreliable


def segment_parts(weights: np.ndarray) -> np.ndarray:
    """(N,52) weights -> (N, S*52): how much of each segment of the weight range (see RESPONSE_LEVELS) each fills."""
    lows = np.concatenate([[0.0], RESPONSE_LEVELS[:-1]])
    widths = np.diff(np.concatenate([[0.0], RESPONSE_LEVELS]))
    w = np.asarray(weights, dtype=np.float64)
    parts = np.clip(w[:, None, :] - lows[None, :, None], 0.0, widths[None, :, None])
    return parts.reshape(len(weights), -1)


def training_faces() -> np.ndarray:
    """The faces the detector's response is measured on: every channel alone at each level, random instances of
    every knowledge-base concept (faces as they come), and random mixes of 3 to 8 channels (faces as they may)."""
    rng = np.random.default_rng(RESPONSE_SEED)
    singles = [np.eye(NUM_CHANNELS) * level for level in RESPONSE_LEVELS]
    concepts = [sample_concept_weights(c, rng) for c in all_concepts()]
    mixes = np.zeros((RESPONSE_MIXES, NUM_CHANNELS))
    for row in mixes:
        chosen = rng.choice(NUM_CHANNELS, rng.integers(3, 9), replace=False)
        row[chosen] = rng.uniform(0.3, 1.0, chosen.size)
    return np.concatenate([*singles, np.stack(concepts), mixes]).astype(np.float32)


def _weights(channels: dict[str, float]) -> np.ndarray:
    w = np.zeros(NUM_CHANNELS, dtype=np.float32)
    for name, value in channels.items():
        w[CHANNEL_INDEX[name]] = value
    return w


def model_key(head: DefaultHead) -> str:
    """The cache key: the head's content, the detector's version and this module's recipe."""
    digest = hashlib.sha256()
    for arr in (head.vertices, head.deltas, head.face_vertex_counts, head.face_vertex_indices):
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(f"{mediapipe_version()}|{BUILD_VERSION}|{RENDER_SIZE}|{VIEWS}|{POSE_EXPRESSIONS}|{RESPONSE_LEVELS}|"
                  f"{RESPONSE_MIXES}|{RESPONSE_SEED}|{RESPONSE_RIDGE}|{KEEP_MM}|{NOISE_FLOOR_MM}".encode())
    return digest.hexdigest()[:20]


def _detect_all(images: np.ndarray) -> np.ndarray:
    detector = get_detector()
    out = []
    for image in images:
        try:
            out.append(detector.detect(image).points)
        except InputError:
            raise RuntimeError("The face detector does not find the default head in its own calibration "
                               "render; the installed MediaPipe does not behave as this module expects.") from None
    return np.stack(out)


def _surface_points(head: DefaultHead, tri: np.ndarray, bary: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    corners = vertices[..., head.triangles().astype(np.int64)[tri], :]  # (..., K, 3, 3)
    return np.einsum("...kij,ki->...kj", corners, bary)


def build_landmark_model(head: DefaultHead) -> dict[str, np.ndarray]:
    """Render, detect and measure (about 20 s on two cores); returns the arrays that are cached."""
    pose_weights = np.stack([_weights(e) for e in POSE_EXPRESSIONS])
    shots = [(w, view) for view in VIEWS for w in pose_weights]
    images = np.concatenate([render_expressions(pose_weights, RENDER_SIZE, head, rotation_deg=view)
                             for view in VIEWS])
    detected = _detect_all(images)[:, :, :2]  # (J, L, 2)
    num_landmarks = detected.shape[1]

    # Candidates: each landmark traced back to the surface in every shot.
    cand_tri, cand_bary, cand_hit = zip(*(surface_at(w, det, RENDER_SIZE, head, rotation_deg=view)
                                          for (w, view), det in zip(shots, detected)))
    cand_tri = np.stack(cand_tri, axis=1)  # (L, C)
    cand_bary = np.stack(cand_bary, axis=1)  # (L, C, 3)
    cand_hit = np.stack(cand_hit, axis=1)
    px_per_mm = _pixels_per_metre(head) / 1000.0
    errors = np.full((num_landmarks, cand_tri.shape[1], len(shots)), np.inf)
    safe_tri = np.where(cand_hit, cand_tri, 0)
    for j, (w, view) in enumerate(shots):
        points = _surface_points(head, safe_tri.reshape(-1), cand_bary.reshape(-1, 3), head.deform(w))
        shown = project_points(points, RENDER_SIZE, head, rotation_deg=view).reshape(num_landmarks, -1, 2)
        err = np.linalg.norm(shown - detected[j][:, None, :], axis=-1) / px_per_mm
        errors[:, :, j] = np.where(cand_hit, err, np.inf)
    best = np.argmin(np.median(errors, axis=2), axis=1)
    rows = np.arange(num_landmarks)
    best_err = errors[rows, best]  # (L, J)
    p90 = np.percentile(best_err, 90, axis=1)
    keep = np.nonzero(np.isfinite(p90) & (p90 <= KEEP_MM))[0]
    tri, bary = cand_tri[rows, best][keep], cand_bary[rows, best][keep]
    sigma = np.sqrt(np.square(np.median(best_err[keep], axis=1)) + NOISE_FLOOR_MM**2)

    # Where the detector puts each landmark on the neutral head (triangulated from the five views), and how far each
    # channel moves it in the front view (image x is head X, image y, down, is -Z; metres by the renderer's framing).
    px_per_m = px_per_mm * 1000.0
    neutral_front = detected[0][keep]
    seen_neutral = _triangulate(head, detected[::len(POSE_EXPRESSIONS)][:, keep])
    faces = training_faces()
    shifted = _detect_all(render_expressions(faces, RENDER_SIZE, head))[:, keep, :2]
    seen = (shifted - neutral_front).reshape(len(faces), -1) / px_per_m  # (N, K*2) metres
    features = segment_parts(faces)  # (N, S*52)
    gram = features.T @ features + RESPONSE_RIDGE * np.eye(features.shape[1])
    slopes = np.linalg.solve(gram, features.T @ seen).reshape(len(RESPONSE_LEVELS), NUM_CHANNELS, keep.size, 2)
    seen_shift = slopes * np.array([1.0, -1.0])  # (S, 52, K, 2): metres per unit of weight in each segment
    return {"landmark_ids": keep.astype(np.int64), "tri": tri.astype(np.int64), "bary": bary,
            "seen_neutral": seen_neutral, "seen_shift": seen_shift, "sigma_mm": sigma,
            "dropped": np.setdiff1d(rows, keep).astype(np.int64)}


def _triangulate(head: DefaultHead, seen: np.ndarray) -> np.ndarray:
    """(K,3) head-space points that best explain where the detector put each landmark in the neutral renders from
    every view in VIEWS (seen: (views, K, 2) pixels): the landmarks' 3D positions as the detector sees them, depth
    included, so that a turned head moves them the way the detector reports."""
    basis = np.concatenate([np.zeros((1, 3)), np.eye(3)])
    rows, rhs = [], []
    for view, points in zip(VIEWS, seen):
        image = project_points(basis, RENDER_SIZE, head, rotation_deg=view)  # the renderer's affine camera
        rows.append((image[1:] - image[0]).T)  # (2,3)
        rhs.append(points - image[0])  # (K,2)
    design = np.concatenate(rows)  # (2*views, 3)
    targets = np.concatenate([r.T for r in rhs])  # (2*views, K)
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return solution.T


def _pixels_per_metre(head: DefaultHead) -> float:
    """The calibration renders' scale (the renderer's own framing), to turn render pixels into millimetres."""
    top, bottom = project_points(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0]]), RENDER_SIZE, head)[:, 1]
    return float(bottom - top)


def _to_model(head: DefaultHead, arrays: dict[str, np.ndarray]) -> LandmarkModel:
    tri, bary = arrays["tri"], arrays["bary"]
    surface = _surface_points(head, tri, bary, head.deltas.astype(np.float64))  # (52, K, 3) per unit of weight
    # The image-plane parts (X, Z) as the detector saw them; the depth (Y) from the surface. The response is
    # piecewise linear in each channel's weight, one slope per segment between the measured levels.
    points0 = arrays["seen_neutral"].copy()
    levels = np.concatenate([[0.0], RESPONSE_LEVELS])
    seen = np.concatenate([np.zeros((1,) + arrays["seen_shift"].shape[1:]), arrays["seen_shift"]])
    slopes = np.repeat(surface[None], len(RESPONSE_LEVELS), axis=0)
    slopes[..., [0, 2]] = np.diff(seen, axis=0) / np.diff(levels)[:, None, None, None]
    return LandmarkModel(landmark_ids=arrays["landmark_ids"], points0=points0, slopes=slopes,
                         segments=np.diff(levels),
                         sigma_mm=arrays["sigma_mm"], dropped=arrays["dropped"])


_FIELDS = ("landmark_ids", "tri", "bary", "seen_neutral", "seen_shift", "sigma_mm", "dropped")
_MEMO: "weakref.WeakKeyDictionary[DefaultHead, LandmarkModel]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _fits(arrays: dict[str, np.ndarray], head: DefaultHead) -> bool:
    k = arrays["landmark_ids"].shape[0]
    return (k > 0 and arrays["tri"].shape == (k,) and arrays["bary"].shape == (k, 3)
            and arrays["seen_neutral"].shape == (k, 3)
            and arrays["seen_shift"].shape == (len(RESPONSE_LEVELS), NUM_CHANNELS, k, 2)
            and arrays["sigma_mm"].shape == (k,)
            and 0 <= arrays["tri"].min() and arrays["tri"].max() < head.triangles().shape[0])


def load_landmark_model(head: DefaultHead | None = None) -> LandmarkModel:
    """The landmark model for `head` (the default head): from memory, the cache, or built and cached."""
    head = head if head is not None else load_default_head()
    with _LOCK:
        model = _MEMO.get(head)
        if model is not None:
            return model
        key = model_key(head)
        cache = NpzCache(f"photo_landmarks_{key}.npz", key, fields=_FIELDS, compress=True,
                         check=lambda arrays: _fits(arrays, head))
        arrays = cache.get(lambda: build_landmark_model(head))
        model = _to_model(head, arrays)
        _MEMO[head] = model
        return model
