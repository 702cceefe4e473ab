"""Triangle-mesh helpers shared by registration and shape transfer: checks, normals, adjacency, closest points.

Everything is vectorised numpy (nearest-neighbour search in chunked torch), so a 5k-vertex head answers a
closest-point query for all of its vertices in a fraction of a second without scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError

MIN_VERTICES = 10
_CHUNK = 2048


def check_mesh(vertices, triangles, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (V,3) vertices and int64 (T,3) triangles with at least one non-degenerate triangle."""
    try:
        v = np.asarray(vertices, dtype=np.float64)
        t = np.asarray(triangles)
    except (TypeError, ValueError):
        raise InputError(f"The {name} mesh must be numeric arrays of vertices and triangles.") from None
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(f"The {name} vertices must have shape (V, 3); got {v.shape}.")
    if v.shape[0] < MIN_VERTICES:
        raise InputError(f"The {name} mesh needs at least {MIN_VERTICES} vertices; it has {v.shape[0]}.")
    if not np.all(np.isfinite(v)):
        raise InputError(f"The {name} vertices hold non-finite values (NaN or infinity).")
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] == 0:
        raise InputError(f"The {name} triangles must have shape (T, 3) with T > 0; got {t.shape}.")
    if not np.issubdtype(t.dtype, np.integer):
        if not (np.issubdtype(t.dtype, np.floating) and np.all(np.isfinite(t)) and np.all(t == np.round(t))):
            raise InputError(f"The {name} triangles must hold integer vertex indices.")
    t = t.astype(np.int64)
    if t.min() < 0 or t.max() >= v.shape[0]:
        raise InputError(f"The {name} triangles index vertices outside 0..{v.shape[0] - 1}.")
    _, areas = triangle_normals(v, t)
    if not np.any(areas > 1e-12 * max(float(np.ptp(v, axis=0).max()), 1e-300) ** 2):
        raise InputError(f"The {name} mesh has only degenerate (zero-area) triangles.")
    return v, t


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (T,3) (zero for degenerate triangles) and areas (T,)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    cross = np.cross(b - a, c - a)
    length = np.linalg.norm(cross, axis=1)
    normals = cross / np.where(length > 0, length, 1.0)[:, None]
    return normals, 0.5 * length


def mesh_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E,2) and how many triangles use each (E,)."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    e = np.sort(e, axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    return edges, counts


def vertex_triangle_table(triangles: np.ndarray, num_vertices: int) -> np.ndarray:
    """(V, max valence) triangles around each vertex, padded with -1."""
    tri_ids = np.repeat(np.arange(triangles.shape[0]), 3)
    verts = triangles.reshape(-1)
    order = np.argsort(verts, kind="stable")
    verts, tri_ids = verts[order], tri_ids[order]
    counts = np.bincount(verts, minlength=num_vertices)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(verts.shape[0]) - starts[verts]
    table = np.full((num_vertices, max(int(counts.max()), 1)), -1, dtype=np.int64)
    table[verts, slot] = tri_ids
    return table


def knn(query: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (Q,k) and distances (Q,k) of the k nearest `points`, nearest first (chunked brute force)."""
    k = min(k, points.shape[0])
    p = torch.as_tensor(points, dtype=torch.float32)
    idx = np.empty((query.shape[0], k), dtype=np.int64)
    dist = np.empty((query.shape[0], k), dtype=np.float64)
    for start in range(0, query.shape[0], _CHUNK):
        q = torch.as_tensor(query[start:start + _CHUNK], dtype=torch.float32)
        d, i = torch.cdist(q, p).topk(k, dim=1, largest=False)
        idx[start:start + _CHUNK] = i.numpy()
        dist[start:start + _CHUNK] = d.numpy()
    return idx, dist


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (...,3) of the point of each triangle (a,b,c) closest to p (Ericson's regions)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in = vb / denom
        w_in = vc / denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    # Start with the interior solution and overwrite by region, most specific last.
    v = np.where(np.isfinite(v_in), v_in, 0.0)
    w = np.where(np.isfinite(w_in), w_in, 0.0)
    region_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    v, w = np.where(region_bc, 1 - np.nan_to_num(t_bc), v), np.where(region_bc, np.nan_to_num(t_bc), w)
    region_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    v, w = np.where(region_ac, 0.0, v), np.where(region_ac, np.nan_to_num(t_ac), w)
    region_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    v, w = np.where(region_ab, np.nan_to_num(t_ab), v), np.where(region_ab, 0.0, w)
    region_c = (d6 >= 0) & (d5 <= d6)
    v, w = np.where(region_c, 0.0, v), np.where(region_c, 1.0, w)
    region_b = (d3 >= 0) & (d4 <= d3)
    v, w = np.where(region_b, 1.0, v), np.where(region_b, 0.0, w)
    region_a = (d1 <= 0) & (d2 <= 0)
    v, w = np.where(region_a, 0.0, v), np.where(region_a, 0.0, w)
    return np.stack([1.0 - v - w, v, w], axis=-1)


@dataclass(frozen=True)
class Hits:
    """Closest surface points: triangle (-1 = none acceptable), barycentrics, point, distance (inf = none), whether
    the point lies on the surface's open border, and the nearest vertices searched (reusable as `near`)."""

    triangle: np.ndarray
    bary: np.ndarray
    point: np.ndarray
    distance: np.ndarray
    on_boundary: np.ndarray
    near: np.ndarray


class Surface:
    """A triangle mesh prepared for closest-point queries with an optional normal-compatibility test.

    Candidates are the triangles around the `neighbours` nearest vertices of each query, which contain the true
    closest point on the reasonably even meshes this is used with.
    """

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray):
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int64)
        self.normals, self.areas = triangle_normals(self.vertices, self.triangles)
        used = np.unique(self.triangles)
        self._used = used  # vertices in some triangle: the only ones worth searching
        self._table = vertex_triangle_table(self.triangles, self.vertices.shape[0])
        # Per triangle and corner: is the edge opposite that corner on the open border (used by one triangle only).
        edges, counts = mesh_edges(self.triangles)
        border = edges[counts == 1]
        num_v = self.vertices.shape[0]
        border_keys = border[:, 0] * num_v + border[:, 1]
        t = self.triangles
        self._opposite_boundary = np.stack(
            [np.isin(np.minimum(t[:, i], t[:, j]) * num_v + np.maximum(t[:, i], t[:, j]), border_keys)
             for i, j in ((1, 2), (2, 0), (0, 1))], axis=1)

    def with_vertices(self, vertices: np.ndarray) -> "Surface":
        """The same triangles at new vertex positions (adjacency and borders are reused)."""
        moved = object.__new__(Surface)
        moved.__dict__.update(self.__dict__)
        moved.vertices = np.asarray(vertices, dtype=np.float64)
        moved.normals, moved.areas = triangle_normals(moved.vertices, self.triangles)
        return moved

    def closest(self, points: np.ndarray, normals: np.ndarray | None = None, min_cos: float = -1.0,
                neighbours: int = 4, near: np.ndarray | None = None) -> Hits:
        """Closest point on the surface to each of `points`; with `normals`, only triangles whose normal makes
        cos >= min_cos with the query's normal count (so a lid or lip never matches the surface facing it).

        `near` (the `near` of an earlier query of nearly the same points, as in successive ICP steps) skips the
        nearest-vertex search, the costly part.
        """
        points = np.asarray(points, dtype=np.float64)
        if near is None:
            near = self._used[knn(points, self.vertices[self._used], neighbours)[0]]
        # Triangles around the nearest vertices, each once: neighbouring rings overlap, so dropping repeats (and the
        # table's padding) leaves about a third of the slots to test.
        cand = np.sort(self._table[near].reshape(points.shape[0], -1), axis=1)
        cand[:, 1:][cand[:, 1:] == cand[:, :-1]] = -1
        cand = -np.sort(-cand, axis=1)
        cand = cand[:, :max(int((cand >= 0).sum(1).max()), 1)]
        valid = cand >= 0
        cand_safe = np.where(valid, cand, 0)
        tri = self.triangles[cand_safe]  # (Q, C, 3)
        a, b, c = (self.vertices[tri[..., i]] for i in range(3))
        bary = closest_point_on_triangles(points[:, None, :], a, b, c)
        closest = bary[..., 0:1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
        dist = np.linalg.norm(closest - points[:, None, :], axis=-1)
        dist = np.where(valid & (self.areas[cand_safe] > 0), dist, np.inf)
        if normals is not None:
            cos = np.einsum("qcd,qd->qc", self.normals[cand_safe], normals)
            dist = np.where(cos >= min_cos, dist, np.inf)
        best = np.argmin(dist, axis=1)
        rows = np.arange(points.shape[0])
        best_dist = dist[rows, best]
        found = np.isfinite(best_dist)
        triangle = np.where(found, cand_safe[rows, best], -1)
        best_bary = bary[rows, best]
        on_boundary = found & np.any(
            (best_bary < 1e-9) & self._opposite_boundary[np.maximum(triangle, 0)], axis=1)
        return Hits(triangle=triangle, bary=best_bary, point=closest[rows, best], distance=best_dist,
                    on_boundary=on_boundary, near=near)


def components(triangles: np.ndarray, num_vertices: int) -> np.ndarray:
    """(V,) label of each vertex's connected component (vertices in no triangle get their own)."""
    label = np.arange(num_vertices)
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]]])
    while True:  # label propagation: every vertex takes the smallest label among its edges, until nothing changes
        low = np.minimum(label[edges[:, 0]], label[edges[:, 1]])
        new = label.copy()
        np.minimum.at(new, edges[:, 0], low)
        np.minimum.at(new, edges[:, 1], low)
        new = new[new]  # pointer jumping speeds up long chains
        if np.array_equal(new, label):
            return label
        label = new


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, count: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """`count` points spread uniformly by area (so vertex density does not bias them), with their triangle normals."""
    normals, areas = triangle_normals(vertices, triangles)
    tri = rng.choice(triangles.shape[0], size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    corners = vertices[triangles[tri]]
    return np.einsum("nk,nkd->nd", bary, corners), normals[tri]


def farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` points spread evenly by farthest-point sampling (deterministic: starts at point 0)."""
    count = min(count, points.shape[0])
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = 0
    dist = np.linalg.norm(points - points[0], axis=1)
    for i in range(1, count):
        chosen[i] = int(np.argmax(dist))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[i]], axis=1))
    return chosen
