"""Face landmarks found automatically on any head mesh, so shape transfer knows where lids, lips, nose, brows and jaw
are on a head the project did not make.

The mesh, brought into the default head's frame by the registration's similarity, is rendered from the front (the
project's rasteriser, grey Lambert shading, every part of the mesh so eyeballs and teeth read as they should),
MediaPipe's face mesh (the detector the photo feature uses) finds its 478 landmarks, and each landmark is lifted back
onto the surface under its pixel (the rasteriser's visible triangle there: ray casting along the view), then onto the
nearest point of the skin. The default head goes through the same steps, so a pair is "where the detector puts
landmark k" on both heads. The detector's habits cancel out only where both renders look alike: it places the lids of
a mesh without eyeballs, or lips sewn shut, differently, which is why the registration trusts these landmarks only
where it clearly misses them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..heads.geometry import vertex_normals
from .mesh_geometry import Surface

RENDER_SIZE = 384
FRAMINGS = (1.0, 0.7, 1.4)  # zooms tried in turn until the detector finds a face
SKIN_SNAP = 0.004  # lifted points farther than this (default-head metres) from the skin are not trusted

# MediaPipe landmark numbers by feature; "left" and "right" are the character's own.
GROUPS: dict[str, tuple[int, ...]] = {
    "upper_lid_left": (398, 384, 385, 386, 387, 388, 466),
    "lower_lid_left": (382, 381, 380, 374, 373, 390, 249),
    "upper_lid_right": (173, 157, 158, 159, 160, 161, 246),
    "lower_lid_right": (155, 154, 153, 145, 144, 163, 7),
    "eye_corners": (33, 133, 263, 362),
    "upper_lip_inner": (191, 80, 81, 82, 13, 312, 311, 310, 415),
    "lower_lip_inner": (95, 88, 178, 87, 14, 317, 402, 318, 324),
    "upper_lip_outer": (185, 40, 39, 37, 0, 267, 269, 270, 409),
    "lower_lip_outer": (146, 91, 181, 84, 17, 314, 405, 321, 375),
    "mouth_corners": (61, 291, 78, 308),
    "nose": (1, 2, 4, 5, 6, 168, 195, 197, 98, 327, 64, 294, 129, 358),
    "brows": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
    "jaw": (152, 175, 199, 200, 18, 148, 377, 176, 400, 149, 378),
}
USED = np.array(sorted({i for ids in GROUPS.values() for i in ids}), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """Landmarks on a mesh's skin, in the mesh's own frame and units."""

    ids: np.ndarray  # (K,) MediaPipe landmark numbers found (a subset of USED)
    points: np.ndarray  # (K,3) points on the skin

    def group(self, name: str) -> np.ndarray:
        """(n,3) points of one of GROUPS (those found)."""
        return self.points[np.isin(self.ids, GROUPS[name])]

    def point(self, landmark: int) -> np.ndarray | None:
        hit = np.flatnonzero(self.ids == landmark)
        return self.points[hit[0]] if hit.size else None


def render_in_head_frame(vertices: np.ndarray, triangles: np.ndarray, zoom: float = 1.0):
    """Grey front view of a mesh already in the default head's frame: (image (S,S,3) uint8, screen (V,3) pixel
    coordinates at the super-sampled size, owner (S²·4,) visible triangle per super-sampled pixel or -1)."""
    from ..heads.render import BACKGROUND, SUPERSAMPLE, rasterize, project_points

    size = RENDER_SIZE
    ss = size * SUPERSAMPLE
    flat = project_points(vertices, size)
    screen = np.empty((vertices.shape[0], 3))
    screen[:, :2] = (size / 2.0 + (flat - size / 2.0) * zoom) * SUPERSAMPLE
    screen[:, 2] = vertices[:, 1]  # the face looks toward -Y: smaller is nearer
    pix, _, tri, w1, w2 = rasterize(screen, triangles, ss, ss, cull=True)
    image = np.empty((ss * ss, 3), dtype=np.float32)
    image[:] = BACKGROUND
    normals = vertex_normals(vertices, triangles)
    corners = triangles[tri]
    n = (normals[corners[:, 0]] * (1.0 - w1 - w2)[:, None] + normals[corners[:, 1]] * w1[:, None]
         + normals[corners[:, 2]] * w2[:, None])
    light = np.array([-0.25, -1.0, 0.35]) / np.linalg.norm([-0.25, -1.0, 0.35])
    lambert = np.clip(n @ light / np.maximum(np.linalg.norm(n, axis=1), 1e-12), 0.0, 1.0)
    image[pix] = np.array([0.86, 0.66, 0.55], dtype=np.float32) * (0.22 + 0.85 * lambert)[:, None]
    owner = np.full(ss * ss, -1, dtype=np.int64)
    owner[pix] = tri
    small = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8), screen, owner


def _lift(pixels: np.ndarray, screen: np.ndarray, owner: np.ndarray, vertices, triangles) -> np.ndarray:
    """3D points under image positions (K,2) (NaN where nothing was hit): the visible triangle's point there."""
    from ..heads.render import SUPERSAMPLE

    ss = int(round(np.sqrt(owner.size)))
    pts = pixels * SUPERSAMPLE
    col = np.clip(np.floor(pts[:, 0]).astype(np.int64), 0, ss - 1)
    row = np.clip(np.floor(pts[:, 1]).astype(np.int64), 0, ss - 1)
    found = owner[row * ss + col]
    out = np.full((pixels.shape[0], 3), np.nan)
    hit = found >= 0
    if hit.any():
        corners = screen[triangles[found[hit]]][:, :, :2]
        a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
        v0, v1, v2 = b - a, c - a, pts[hit] - a
        det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
        w1 = (v2[:, 0] * v1[:, 1] - v2[:, 1] * v1[:, 0]) / det
        w2 = (v0[:, 0] * v2[:, 1] - v0[:, 1] * v2[:, 0]) / det
        bary = np.clip(np.stack([1.0 - w1 - w2, w1, w2], axis=1), 0.0, 1.0)
        bary /= bary.sum(axis=1, keepdims=True)
        out[hit] = np.einsum("kc,kcd->kd", bary, vertices[triangles[found[hit]]])
    return out


def detect_in_head_frame(vertices: np.ndarray, triangles: np.ndarray, skin_triangles: np.ndarray
                         ) -> FaceLandmarks | None:
    """Landmarks of a mesh in the default head's frame and units, on its skin; None when no face is found."""
    from ..photo.landmarks import get_detector

    detector = get_detector()
    for zoom in FRAMINGS:
        image, screen, owner = render_in_head_frame(vertices, triangles, zoom)
        try:
            detected = detector.detect(image).points[:, :2]
        except InputError:
            continue
        lifted = _lift(detected[USED], screen, owner, vertices, triangles)
        ok = np.all(np.isfinite(lifted), axis=1)
        hits = Surface(vertices, skin_triangles).closest(np.where(ok[:, None], lifted, 0.0))
        ok &= hits.distance <= SKIN_SNAP
        return FaceLandmarks(ids=USED[ok], points=hits.point[ok])
    return None


_DEFAULT: dict[tuple[int, bool], FaceLandmarks] = {}
_LOCK = threading.Lock()


def default_head_face_landmarks(with_parts: bool = True) -> FaceLandmarks:
    """The same landmarks on the default head (metres, Blender axes), found once per process (about 1 s each way).

    `with_parts` False renders the skin alone: the detector then sees the default head as it sees a mesh without
    eyeballs and teeth (open sockets, an empty mouth), and places the lids and lips as it does on that mesh.
    """
    from ..heads.head import load_default_head

    head = load_default_head()
    with _LOCK:
        key = (id(head), with_parts)
        found = _DEFAULT.get(key)
        if found is None:
            tris = head.triangles().astype(np.int64)
            skin = tris[(head.vertex_parts[tris] == 0).all(axis=1)]
            found = detect_in_head_frame(head.vertices.astype(np.float64), tris if with_parts else skin, skin)
            if found is None:
                raise RuntimeError("The face detector does not find the default head in its own render; the "
                                   "installed MediaPipe does not behave as this module expects.")
            if any(k[0] != id(head) for k in _DEFAULT):
                _DEFAULT.clear()
            _DEFAULT[key] = found
        return found
