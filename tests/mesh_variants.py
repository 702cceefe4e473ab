"""Variants of the default head's skin whose true ARKit deltas are known, for testing shape transfer.

* remeshed: the dual mesh (one vertex at a jittered point inside each original quad or triangle, one polygon around
  each original interior vertex), so no vertex and no edge is shared with the original; the truth at a new vertex is
  the barycentric interpolation of the original deltas at its point;
* warped: a smooth non-linear warp f (bigger head, wider jaw, longer nose, a gentle wave); truth f(x + d) − f(x);
* posed: any rotation, uniform scale and translation; truth s R d;
* with holes: the mouth cavity and the eye sockets cut away, leaving a single skin surface with open eye and mouth
  holes, as a FLAME template is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_runtime.heads.head import DefaultHead
from model_runtime.heads.geometry import vertex_normals
from model_runtime.rigs.mesh_geometry import Surface

FACE_MOTION_M = 5e-4  # a vertex is "face" when some shape moves it at least this much on the default head


@dataclass(frozen=True)
class Variant:
    name: str
    vertices: np.ndarray  # (V,3) in the variant's own frame and units
    triangles: np.ndarray  # (T,3)
    truth: np.ndarray  # (52,V,3) true deltas in the variant's frame and units
    face: np.ndarray  # (V,) bool: vertices the error is measured on
    rotation: np.ndarray  # the pose applied after remeshing and warping: x -> scale * x @ R.T + translation
    scale: float
    translation: np.ndarray


def skin(head: DefaultHead) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The skin alone: vertices, quads (F,4), triangles, deltas, re-indexed."""
    keep = head.vertex_parts == 0
    remap = np.full(head.num_vertices, -1, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    counts = head.face_vertex_counts
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    quads = np.stack([head.face_vertex_indices[starts + i] for i in range(4)], axis=1)[head.face_parts == 0]
    quads = remap[quads]
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return head.vertices[keep].astype(np.float64), quads, tris, head.deltas[:, keep].astype(np.float64)


def cut_cavities(head: DefaultHead, vertices: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """The quads left once the mouth cavity (behind the lips) and the eye sockets (behind the lids) are removed."""
    inside = (np.abs(vertices[:, 0]) < 0.035) & (np.abs(vertices[:, 2] - 0.665) < 0.035) & (vertices[:, 1] > -0.13)
    for part in (1, 2):
        eye = head.vertices[head.vertex_parts == part].astype(np.float64).mean(0)
        inside |= (np.linalg.norm(vertices - eye, axis=1) < 0.02) & (vertices[:, 1] > eye[1] - 0.002)
    return quads[~inside[quads].any(axis=1)]


def dual_remesh(vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dual mesh of a closed-but-for-borders polygon mesh (faces (F, n), n = 3 or 4).

    Returns the new vertices' host triangle corners (F,3) and barycentrics (F,3) on the original, and the new
    triangles. Each new vertex is a jittered point inside its face; quads are split along a random diagonal first.
    """
    num_f, n = faces.shape
    if n == 4:
        diag = rng.random(num_f) < 0.5
        first = np.where(diag[:, None], faces[:, [0, 1, 2]], faces[:, [1, 2, 3]])
        second = np.where(diag[:, None], faces[:, [0, 2, 3]], faces[:, [1, 3, 0]])
        use_second = rng.random(num_f) < 0.5
        host = np.where(use_second[:, None], second, first)
    else:
        host = faces.copy()
    bary = 1.0 / 3.0 + rng.uniform(-0.15, 0.15, size=(num_f, 3))
    bary /= bary.sum(1, keepdims=True)
    points = np.einsum("fk,fkd->fd", bary, vertices[host])

    # Faces around each vertex in cyclic order: walk across the edge (v, next corner of the face).
    across: dict[tuple[int, int], int] = {}
    for f in range(num_f):
        for i in range(n):
            across[(int(faces[f, i]), int(faces[f, (i + 1) % n]))] = f
    ring_start: dict[int, int] = {}
    for f in range(num_f):
        for i in range(n):
            ring_start.setdefault(int(faces[f, i]), f)
    normals = vertex_normals(vertices, np.concatenate([faces[:, [0, i, i + 1]] for i in range(1, n - 1)]))
    tris = []
    for v, f0 in ring_start.items():
        ring, f = [], f0
        while True:
            ring.append(f)
            row = faces[f].tolist()
            nxt = row[(row.index(v) + 1) % n]
            f = across.get((nxt, v), -1)
            if f < 0 or f == f0 or len(ring) > 16:
                break
        if f != f0 or len(ring) < 3:
            continue  # a border vertex: its ring is open, it gets no polygon
        poly = np.asarray(ring)
        area = np.cross(points[poly[1:-1]] - points[poly[0]], points[poly[2:]] - points[poly[0]]).sum(0)
        if area @ normals[v] < 0:
            poly = poly[::-1]
        tris.extend([poly[0], poly[i], poly[i + 1]] for i in range(1, poly.size - 1))
    return host, bary, np.asarray(tris, dtype=np.int64)


def warp(x: np.ndarray) -> np.ndarray:
    """A smooth re-proportioning of the default head (metres, Blender axes): bigger, wider jaw, longer nose."""
    centre = np.array([0.0, -0.06, 0.72])
    y = centre + 1.08 * (x - centre)
    jaw = 1.0 + 0.12 / (1.0 + np.exp(-(0.67 - x[..., 2]) / 0.02))
    y[..., 0] = y[..., 0] * jaw
    nose_tip = np.array([0.0, -0.165, 0.715])
    bump = np.exp(-((x - nose_tip) ** 2).sum(-1) / (2 * 0.025 ** 2))
    y[..., 1] -= 0.012 * bump
    y[..., 2] += 0.004 * np.sin(x[..., 0] / 0.04)
    return y


def rotation_about(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # Blender (Z up, -Y front) -> FLAME axes


def make_variant(head: DefaultHead, name: str, *, remesh: str | None = None, warped: bool = False,
                 holes: bool = False, rotation=None, scale: float = 1.0, translation=(0.0, 0.0, 0.0),
                 seed: int = 0) -> Variant:
    """One variant; `remesh` is None, "quads" (dual of the quads, ~4k vertices) or "triangles" (~8k)."""
    v, quads, tris, deltas = skin(head)
    if holes:
        quads = cut_cavities(head, v, quads)
        used = np.unique(quads)
        remap = np.full(v.shape[0], -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        v, quads, deltas = v[used], remap[quads], deltas[:, used]
        tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    rng = np.random.default_rng(seed)
    if remesh is None:
        points, truth, new_tris = v, deltas, tris
    else:
        host, bary, new_tris = dual_remesh(v, quads if remesh == "quads" else tris, rng)
        points = np.einsum("fk,fkd->fd", bary, v[host])
        truth = np.einsum("fk,sfkd->sfd", bary, deltas[:, host])
    face = np.linalg.norm(truth, axis=2).max(axis=0) >= FACE_MOTION_M
    if warped:
        truth = warp(points[None] + truth) - warp(points)[None]
        points = warp(points)
    r = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64)
    return Variant(name=name, vertices=scale * points @ r.T + t, triangles=new_tris, truth=scale * truth @ r.T,
                   face=face, rotation=r, scale=scale, translation=t)


STANDARD: dict[str, dict] = {
    "remeshed (quad dual)": dict(remesh="quads"),
    "remeshed (triangle dual)": dict(remesh="triangles"),
    "re-proportioned": dict(warped=True),
    "rotated 90deg, tilted axis": dict(rotation=rotation_about([1.0, 2.0, 0.5], 90.0), translation=(0.3, -1.0, 0.2)),
    "Y-up, cm, translated": dict(rotation=Y_UP, scale=100.0, translation=(5.0, 160.0, -3.0)),
    "holes, remeshed, Y-up": dict(remesh="quads", holes=True, rotation=Y_UP, seed=2),
    "all: remesh+warp+rotate+x0.01": dict(remesh="quads", warped=True, rotation=rotation_about([-0.3, 0.4, 1.0], 150.0),
                                          scale=0.01, translation=(0.01, 0.0, -0.02), seed=1),
}


def standard_variants(head: DefaultHead) -> list[Variant]:
    """The families the tests and the benchmark measure, each alone, with holes, and all combined."""
    return [make_variant(head, name, **kwargs) for name, kwargs in STANDARD.items()]


def relative_errors(pred: np.ndarray, truth: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(52,) per-shape ‖pred − truth‖_F / ‖truth‖_F over the face vertices."""
    diff = np.linalg.norm((pred - truth)[:, face].reshape(truth.shape[0], -1), axis=1)
    size = np.linalg.norm(truth[:, face].reshape(truth.shape[0], -1), axis=1)
    return diff / np.maximum(size, 1e-30)


def closest_point_copy(registration, source_triangles: np.ndarray, source_deltas: np.ndarray,
                       target_vertices: np.ndarray) -> np.ndarray:
    """The baseline transfer: each target vertex copies the delta of its closest point on the registered source (no
    normal check, no deformation gradient), rotated and scaled into the target's frame."""
    reg = registration
    hits = Surface(reg.to_source(reg.vertices), source_triangles).closest(reg.to_source(target_vertices))
    copied = np.einsum("tc,ktcd->ktd", hits.bary, source_deltas[:, source_triangles[hits.triangle]])
    return reg.scale * copied @ reg.rotation.T
