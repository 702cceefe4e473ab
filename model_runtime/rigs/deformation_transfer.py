"""Deformation transfer (Sumner and Popović, "Deformation Transfer for Triangle Meshes", SIGGRAPH 2004).

Copying each target vertex's motion from the matched source point keeps the motion's size but not its shape: where
the two heads' surfaces differ (a thicker lid, a lip line at another height), neighbouring target vertices copy
from places that move differently, and the surface creases or tears. Deformation transfer carries how each piece of
the source surface deforms instead, and solves for the target motion that deforms each target triangle most alike:

* each triangle (v1, v2, v3) gets a fourth vertex v4 = v1 + n / sqrt(|n|), n = (v2 − v1) × (v3 − v1), so its frame
  V = [v2 − v1, v3 − v1, v4 − v1] is invertible and bending out of the surface is seen; a source shape's gradient
  is S = Ṽ V⁻¹ (Ṽ the frame of the moved triangle);
* each target triangle is paired with one source triangle (`pair_triangles`) and asked to deform by that triangle's
  S, rotated into the target's frame;
* the target's offsets (its vertices and each triangle's fourth vertex) minimise
  Σ area · ‖T − S‖²_F + Σ PULL · area · ‖d − p‖² over one sparse linear system, with still vertices anchored at
  zero; `p` is the motion copied point by point, a weak pull that keeps parts the gradients do not tie down (a
  face mask with no still border, the jaw's overall drop) where the copy puts them. The system's matrix depends only
  on the target, so it is factored once and every shape is one back-substitution.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .mesh_geometry import Surface

PULL_LENGTH = 0.03  # the point-wise copy pulls on motion over this distance (source-frame units) and beyond


def triangle_frames(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(..., T, 3, 3) frames [e1, e2, n/sqrt|n|] as columns, for vertices (..., V, 3)."""
    a, b, c = (vertices[..., triangles[:, i], :] for i in range(3))
    e1, e2 = b - a, c - a
    n = np.cross(e1, e2)
    n = n / np.sqrt(np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-300))
    return np.stack([e1, e2, n], axis=-1)


def source_gradients(vertices: np.ndarray, triangles: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """(K, T, 3, 3) each shape's deformation gradient minus identity, (Ṽ − V) V⁻¹, per triangle."""
    rest = triangle_frames(vertices, triangles)
    inverse = np.linalg.pinv(rest)  # degenerate triangles get the least-squares frame
    moved = triangle_frames(vertices[None] + deltas, triangles)
    return np.einsum("ktij,tjl->ktil", moved - rest[None], inverse)


def vertex_gradients(vertices: np.ndarray, triangles: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """(K, V, 3, 3) per-vertex gradients: the area-weighted mean over the triangles around each vertex."""
    frames = triangle_frames(vertices, triangles)
    area = 0.5 * np.linalg.norm(np.cross(frames[:, :, 0], frames[:, :, 1]), axis=1)
    total = np.bincount(triangles.ravel(), weights=np.repeat(area, 3), minlength=vertices.shape[0])
    out = np.zeros((gradients.shape[0], vertices.shape[0], 9))
    flat = (gradients * area[None, :, None, None]).reshape(gradients.shape[0], -1, 9)
    for corner in range(3):
        for k in range(gradients.shape[0]):
            np.add.at(out[k], triangles[:, corner], flat[k])
    return (out / np.maximum(total, 1e-300)[None, :, None]).reshape(gradients.shape[0], -1, 3, 3)


def pair_triangles(registered_source: np.ndarray, source_triangles: np.ndarray, target_points: np.ndarray,
                   target_triangles: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """Source triangle (-1: none) each target triangle's centroid corresponds to, and its distance (source frame).

    `target_points` are the target's vertices in the source frame; `groups` [(target triangle rows, source triangle
    rows)] say which source triangles each target triangle may pair with (its side of each opening); the source
    surface must face the same way as the target triangle.
    """
    corners = target_points[target_triangles]
    centroids = corners.mean(axis=1)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    pair = np.full(target_triangles.shape[0], -1, dtype=np.int64)
    distance = np.full(target_triangles.shape[0], np.inf)
    for rows, tri_rows in groups:
        if len(rows) == 0 or len(tri_rows) == 0:
            continue
        hits = Surface(registered_source, source_triangles[tri_rows]).closest(centroids[rows], normals[rows], 0.0)
        hit = hits.triangle >= 0
        pair[rows[hit]] = tri_rows[hits.triangle[hit]]
        distance[rows[hit]] = hits.distance[hit]
    return pair, distance


class GradientSolver:
    """The target side of deformation transfer: factored once for a target mesh and its anchored vertices, then
    `solve` turns wanted per-triangle gradients into vertex offsets.

    `vertices` are in the frame (and units) the gradients and `pull_length` are given in; `anchored` (V,) vertices
    stay still; only `triangles` with a free corner take part. Vertices no such triangle touches keep their
    point-wise offsets.
    """

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, anchored: np.ndarray,
                 pull_length: float | None = None):
        pull_length = PULL_LENGTH if pull_length is None else pull_length
        vertices = np.asarray(vertices, dtype=np.float64)
        count = vertices.shape[0]
        free = np.zeros(count, dtype=bool)
        self.used = np.flatnonzero(~anchored[triangles].all(axis=1))  # rows of `triangles` that take part
        triangles = triangles[self.used]
        free[triangles.ravel()] = True
        free &= ~anchored
        self.free = np.flatnonzero(free)
        self.anchored = np.flatnonzero(anchored)
        column = np.full(count, -1, dtype=np.int64)
        column[self.free] = np.arange(self.free.size)
        t = triangles.shape[0]
        frames = triangle_frames(vertices, triangles)
        inverse = np.linalg.pinv(frames)  # (T, 3, 3): rows 0, 1, 2 go with corners 2, 3 and the fourth vertex
        area = 0.5 * np.linalg.norm(np.cross(frames[:, :, 0], frames[:, :, 1]), axis=1)
        self._weight = np.sqrt(area)
        # Row (j, m) of one coordinate: Σ_k δ_k W[k, m] with δ = (d2 − d1, d3 − d1, d4 − d1) should be G[c, m].
        row_of = np.arange(3 * t).reshape(t, 3)
        corner_cols = (column[triangles[:, 0]], column[triangles[:, 1]], column[triangles[:, 2]],
                       self.free.size + np.arange(t))
        coefficients = (-inverse.sum(axis=1), inverse[:, 0, :], inverse[:, 1, :], inverse[:, 2, :])
        rows, cols, vals = [], [], []
        for corner, coefficient in zip(corner_cols, coefficients):
            keep = np.broadcast_to((corner >= 0)[:, None], (t, 3))
            rows.append(row_of[keep])
            cols.append(np.broadcast_to(corner[:, None], (t, 3))[keep])
            vals.append((coefficient * self._weight[:, None])[keep])
        a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(3 * t, self.free.size + t))
        self._at = a.T.tocsr()
        vertex_area = np.bincount(triangles.ravel(), weights=np.repeat(area / 3.0, 3), minlength=count)
        self._pull = vertex_area[self.free] / pull_length ** 2
        # A vanishing pull on the fourth vertices keeps the matrix definite whatever the triangles.
        tiny = np.full(t, 1e-9 * float(area.mean()))
        # The matrix is symmetric positive definite: a symmetric ordering and no pivoting keep the factor sparse.
        self._lu = splu((self._at @ a + sp.diags(np.concatenate([self._pull, tiny]))).tocsc(),
                        permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def solve(self, gradients: np.ndarray, pointwise: np.ndarray) -> np.ndarray:
        """(K, V, 3) offsets: `gradients` (K, U, 3, 3) the wanted gradient minus identity of each triangle that takes
        part (rows `used` of the constructor's `triangles`), `pointwise` (K, V, 3) the offsets copied point by point."""
        g = gradients * self._weight[None, :, None, None]
        b = g.transpose(1, 3, 0, 2).reshape(-1, g.shape[0] * 3)  # rows (j, m), columns (shape, coordinate)
        rhs = self._at @ b
        pull = pointwise[:, self.free].transpose(1, 0, 2).reshape(self.free.size, -1)
        rhs[:self.free.size] += self._pull[:, None] * pull
        solved = self._lu.solve(rhs)[:self.free.size].reshape(self.free.size, -1, 3)
        out = np.array(pointwise, dtype=np.float64)
        out[:, self.anchored] = 0.0
        out[:, self.free] = solved.transpose(1, 0, 2)
        return out
