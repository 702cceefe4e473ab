"""Small parts that hang on a head's skin (eyelashes, lash and brow cards, caruncles, eye-occlusion shells) follow the
skin they hang on, not the source part they happen to lie near.

A head brought by an artist has parts the default head lacks. Copied from the nearest source part (an eyeball, which
only turns with eyeLook) a lash row stays put while the lid closes over it and pokes through it. So each separate
part of the target that is not skin is first judged (`hanging_parts`): one as thick as the source part it lies
nearest (an eyeball, a tongue) or lying nearer to that part than to the skin (teeth) is of the part's kind and copies
from it; a thin one nearer to the skin than to any source part hangs on the skin. Then (`hang_on_skin`) each vertex
of a hanging part takes the motion of the skin point under its nearest root (the part's vertices closest to the
skin: where it is attached), so a lash swings with the lid margin it grows from rather than with the skin it
happens to be near. Measured on ICT-FaceKit's lashes moved by ICT's own skin shapes, this rule came closest to ICT's
own lash shapes (relative error 0.23, cosine 0.97 over eyeBlink, eyeWide and eyeSquint; each vertex's own nearest
skin point 0.33; either of those with the local rotation of the skin added 0.31-0.38).
"""

from __future__ import annotations

import numpy as np

from .mesh_geometry import Surface, knn

HANG_THIN = 0.5  # a hanging part is thinner than this share of the source part it lies nearest (lashes: 0.4-0.46)
# ... and its median distance to the skin is under this share of that to the part (ICT's lashes 0.38-0.63, its teeth
# 0.97 and more).
HANG_NEARER = 0.8
SAMPLED = 32  # the medians are read from up to this many vertices of each part
ROOT_SPAN = 0.1  # a part's roots: its vertices this share of its span of distances to the skin from the closest


def hanging_parts(points: np.ndarray, skin_triangles: np.ndarray, parts: list[np.ndarray],
                  source_vertices: np.ndarray, source_parts: list[np.ndarray]) -> list[np.ndarray]:
    """The `parts` (rows of `points`, each a connected part of the target that is not skin) that hang on the skin.

    `points` are the target's vertices in the registered source's frame, `skin_triangles` the target's skin;
    `source_parts` the triangles (rows into `source_vertices`, registered) of each source part that is not skin.
    With no source part to compare with, nothing is judged to hang (the parts stay as the caller leaves them).
    """
    source_parts = [tri for tri in source_parts if len(tri)]
    if not source_parts or not parts:
        return []
    sampled = [rows[::max(1, rows.size // SAMPLED)] for rows in parts]
    at = points[np.concatenate(sampled)]
    ends = np.cumsum([rows.size for rows in sampled])[:-1]
    to_skin = np.split(Surface(points, skin_triangles).closest(at).distance, ends)
    to_parts = [np.split(Surface(source_vertices, tri).closest(at).distance, ends) for tri in source_parts]
    thick = [_thickness(source_vertices[np.unique(tri)]) for tri in source_parts]
    out = []
    for k, rows in enumerate(parts):
        to_part, part = min((float(np.median(d[k])), j) for j, d in enumerate(to_parts))
        if _thickness(points[rows]) < HANG_THIN * thick[part] and np.median(to_skin[k]) < HANG_NEARER * to_part:
            out.append(rows)
    return out


def hang_on_skin(vertices: np.ndarray, skin_triangles: np.ndarray, deltas: np.ndarray,
                 parts: list[np.ndarray]) -> np.ndarray:
    """(K, V, 3) `deltas` with each of `parts`' vertices moved as the skin point under its nearest root (see the
    module docstring); the skin's own deltas are what the parts follow."""
    out = np.array(deltas, copy=True)
    if not parts:
        return out
    rows = np.concatenate(parts)
    hits = Surface(vertices, skin_triangles).closest(vertices[rows])
    anchors, start = [], 0  # each vertex's nearest root, as a position in `rows`
    for part in parts:
        distance = hits.distance[start:start + part.size]
        roots = start + np.flatnonzero(distance <= distance.min() + ROOT_SPAN * (distance.max() - distance.min()))
        anchors.append(roots[knn(vertices[part], vertices[rows[roots]], 1)[0][:, 0]])
        start += part.size
    anchor = np.concatenate(anchors)
    corners = skin_triangles[hits.triangle[anchor]]  # (N, 3)
    out[:, rows] = np.einsum("nc,kncd->knd", hits.bary[anchor], np.asarray(deltas)[:, corners]).astype(out.dtype)
    return out


def _thickness(points: np.ndarray) -> float:
    """Extent along the points' direction of least spread (a card's or shell's thickness, a ball's diameter)."""
    centred = points - points.mean(axis=0)
    axes = np.linalg.eigh(centred.T @ centred)[1]
    along = centred @ axes[:, 0]
    return float(along.max() - along.min())
