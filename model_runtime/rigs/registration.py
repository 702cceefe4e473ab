"""Non-rigid registration of a source head onto a target mesh of another topology, pose and scale.

`register` runs three stages, all in the source's own frame and units so thresholds mean the same on every target:
  1. similarity (rotation, uniform scale, translation): 48 starting rotations (the 24 signed axis permutations of
     the world axes, which cover Y-up vs Z-up files exactly, and the same 24 between the two meshes' principal axes)
     each refined by a few trimmed ICP steps on area-uniform surface samples, the best by trimmed distance and normal
     agreement refined further; with three or more user landmarks their least-squares fit is the start instead;
  2. embedded deformation: a few hundred nodes (farthest-point samples of the source) each carry an affine map;
     every vertex follows the blend of its four nearest nodes. Non-rigid ICP with a decreasing stiffness (neighbouring
     nodes must agree on each other's positions and have similar linear parts) solves one small dense linear system
     per step for all nodes. Correspondences go both ways: source vertices to their closest target point, and target
     vertices to their closest source point (target features such as the nose tip and the lid and lip edges then pull
     the source along the surface, which one-way closest points do only slowly); a pair counts only when the normals
     agree and the point is not on the target's open border (so the source's mouth cavity and eye-socket folds,
     which a FLAME template lacks, are left to the stiffness instead of being dragged onto the hole's rim). Each step
     over-relaxes (goes 1.8 times the way to its solution; back to plain steps if the fit gets worse), which speeds up
     ICP's slow sliding along smooth surfaces;
  3. a per-vertex residual, smoothed by a graph Laplacian, puts the source onto the target surface;
  4. where the result misses landmarks by more than the nodes can resolve (lids and lip lines are millimetres apart,
     the nodes centimetres), Gaussians a few millimetres wide around the landmarks carry the misses to their
     neighbourhood, so each landmark lands on its target point. Detected landmarks (`guides`) are used here only
     when the fit misses them clearly, and only by the part of each miss beyond the detector's noise.
The node affines give a smooth deformation gradient per source vertex (`jacobian`), which shape transfer applies to
the deltas so a stretched region gets stretched motion.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..heads.geometry import vertex_normals
from ..progress import Progress, report
from .mesh_geometry import Surface, check_mesh, farthest_points, knn, mesh_edges, sample_surface

NODE_COUNT = 400
OVER_RELAXATION = 1.8
NODE_NEIGHBOURS = 4
STIFFNESS = (30.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.03)  # relative to the data term, from near-affine to local
ICP_STEPS = 3  # correspondence updates per stiffness
AFFINE_DAMPING = 1e-3  # pulls each node's linear part weakly toward identity, for nodes with little data
LANDMARK_WEIGHT = 20.0  # one landmark counts as much as this many matched vertices
MIN_NORMAL_COS = 0.5  # correspondences whose normals differ by more than 60 degrees are dropped
LANDING_WIDTH = 0.04  # stage 4's Gaussians: 4 mm on the default head
LANDING_RIDGE = 1e-3
# Detected landmarks correct the fit only when it misses them by more than this median share of the size (about
# 2 mm on the default head): closer, the fit is better than the detector, which does not see holed eyes or lips as
# it sees the default head's. `register(guided_miss=...)` sets another share.
GUIDED_MISS = 0.02
LANDING_TOLERANCE = 0.03  # misses up to this share of the size (3 mm on the default head) are the detector's noise
RESIDUAL_SMOOTHNESS = 2.0
RESIDUAL_ROUNDS = 3
_SAMPLE_SOURCE, _SAMPLE_TARGET = 600, 2500
_BACK_SAMPLES = 2000  # target vertices used for the target -> source pairs
_DATA_SAMPLES = 2500  # source vertices used for the source -> target pairs while fitting the nodes
FITTING = "fitting the heads together"  # the registration's stage name for `progress`


@dataclass(frozen=True, eq=False)
class Registration:
    """Source -> target: target ≈ scale * source @ rotation.T + translation, then the non-rigid part."""

    rotation: np.ndarray  # (3,3)
    scale: float
    translation: np.ndarray  # (3,)
    vertices: np.ndarray  # (Vs,3) the registered source vertices, target frame
    distance: np.ndarray  # (Vs,) distance of each registered vertex to the target surface, target units
    matched: np.ndarray  # (Vs,) bool: vertex had an accepted correspondence in the last step
    jacobian: np.ndarray  # (Vs,3,3) linear part of the non-rigid deformation at each source vertex, source frame
    source_mask: np.ndarray  # (Vs,) bool: the vertices that were registered (the rest follow the deformation)
    landmark_error: np.ndarray  # (L,) distance of each landmark's registered vertex to its target point
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    guided: bool = False  # the detected landmarks (`guides`) corrected the fit: it missed them clearly

    def to_target(self, points: np.ndarray) -> np.ndarray:
        """Apply the similarity (only) to source-frame points."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Undo the similarity: target-frame points into the source frame."""
        return (np.asarray(points, dtype=np.float64) - self.translation) @ self.rotation / self.scale

    def median_bending(self) -> float:
        """How far the source had to bend to fit: the median over registered vertices of the largest stretch or
        squash |σ − 1| of the non-rigid deformation's gradient. Measured: 0.01 to 0.06 on re-meshed, re-proportioned
        and holed variants of the default head, 0.59 when the target is a torus."""
        stretch = np.abs(np.linalg.svd(self.jacobian[self.source_mask], compute_uv=False) - 1.0).max(axis=1)
        return float(np.median(stretch))


def register(source_vertices, source_triangles, target_vertices, target_triangles, *, source_mask=None,
             landmarks=None, guides=None, guided_miss: float = GUIDED_MISS,
             progress: Progress | None = None) -> Registration:
    """Register the source mesh (its `source_mask` vertices) onto the target surface; see the module docstring.

    `landmarks` = [(source_vertex_index, target_point_xyz), ...] (target frame and units) are soft constraints of
    the non-rigid stages; three or more also give the starting pose. `guides` (same form: detected landmarks, which
    carry the detector's noise) give the starting pose when the landmarks do not, and correct the result in stage 4
    where it misses them by more than `guided_miss` (median, share of the source's RMS radius). `progress` hears
    each fitting step (`model_runtime.progress`).
    """
    began = time.perf_counter()
    src, src_tri = check_mesh(source_vertices, source_triangles, "source")
    tgt, tgt_tri = check_mesh(target_vertices, target_triangles, "target")
    mask = _check_mask(source_mask, src.shape[0])
    tri_mask = mask[src_tri].all(axis=1)
    if not tri_mask.any():
        raise InputError("The source mask selects no whole triangle of the source mesh.")
    lm_index, lm_target = _check_landmarks(landmarks, src.shape[0])
    guide_index, guide_target = _check_landmarks(guides, src.shape[0])

    reg_tri = src_tri[tri_mask]
    pose_index, pose_target = (lm_index, lm_target) if lm_index.size >= 3 else (guide_index, guide_target)
    report(progress, 0.0, FITTING)
    rotation, scale, translation = _align(src, reg_tri, tgt, tgt_tri, pose_index, pose_target)
    # The non-rigid stages run in the source's frame and units, so their thresholds mean the same on every target.
    target_surface = Surface((tgt - translation) @ rotation / scale, tgt_tri)
    lm_source_frame = (lm_target - translation) @ rotation / scale
    deformed, jacobian, distance, matched = _deform(src, reg_tri, mask, target_surface, lm_index, lm_source_frame,
                                                    progress)
    notes = []
    land_index, land_target = lm_index, lm_source_frame
    guided = False
    if guide_index.size:
        guide_source_frame = (guide_target - translation) @ rotation / scale
        size = float(np.sqrt(((src[mask] - src[mask].mean(0)) ** 2).sum(1).mean()))
        miss = float(np.median(np.linalg.norm(deformed[guide_index] - guide_source_frame, axis=1))) / size
        if miss > guided_miss:
            guided = True
            keep = ~np.isin(guide_index, lm_index)  # the user's landmarks decide where they are
            land_index = np.concatenate([lm_index, guide_index[keep]])
            land_target = np.concatenate([lm_source_frame, guide_source_frame[keep]])
            notes.append(f"The detected face landmarks corrected the fit (it missed them by a median "
                         f"{miss:.1%} of the head's size).")
    deformed = _land_exactly(src, deformed, mask, land_index, land_target)
    vertices = scale * deformed @ rotation.T + translation
    lm_error = np.linalg.norm(vertices[lm_index] - lm_target, axis=1) if lm_index.size else np.zeros(0)
    share = float(matched[mask].mean())
    if share < 0.5:
        notes.append(f"Only {share:.0%} of the source found matching target surface; check the target is a head.")
    return Registration(rotation=rotation, scale=float(scale), translation=translation, vertices=vertices,
                        distance=distance * scale, matched=matched, jacobian=jacobian, source_mask=mask,
                        landmark_error=lm_error, seconds=time.perf_counter() - began, notes=notes, guided=guided)


def _check_mask(source_mask, count: int) -> np.ndarray:
    if source_mask is None:
        return np.ones(count, dtype=bool)
    mask = np.asarray(source_mask)
    if mask.shape != (count,) or mask.dtype != bool:
        raise InputError(f"The source mask must be a boolean array of shape ({count},); got {mask.dtype} {mask.shape}.")
    return mask


def _check_landmarks(landmarks, count: int) -> tuple[np.ndarray, np.ndarray]:
    if landmarks is None or len(landmarks) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    try:
        index = np.asarray([int(i) for i, _ in landmarks], dtype=np.int64)
        points = np.asarray([np.asarray(p, dtype=np.float64).reshape(3) for _, p in landmarks])
    except (TypeError, ValueError):
        raise InputError("Landmarks must be pairs (source vertex index, target point x y z).") from None
    bad = index[(index < 0) | (index >= count)]
    if bad.size:
        raise InputError(f"A landmark names source vertex {int(bad[0])}, outside 0..{count - 1}.")
    if not np.all(np.isfinite(points)):
        raise InputError("A landmark's target point holds non-finite values.")
    return index, points


# ----------------------------------------------------------------------------------------------------------------
# Stage 1: similarity


def _rotations24() -> list[np.ndarray]:
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            if np.linalg.det(m) > 0:
                out.append(m)
    return out


def _principal_frame(points: np.ndarray) -> np.ndarray:
    _, vecs = np.linalg.eigh(np.cov(points.T))
    vecs = vecs[:, ::-1]
    if np.linalg.det(vecs) < 0:
        vecs[:, 2] *= -1
    return vecs


def umeyama(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares similarity y ≈ s R x + t with a proper rotation (Umeyama 1991)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    u, sing, vt = np.linalg.svd(yc.T @ xc / x.shape[0])
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    r = (u * d) @ vt
    var = float((xc ** 2).sum(1).mean())
    s = float((sing * d).sum() / var) if var > 0 else 1.0
    return r, s, my - s * r @ mx


def _icp_similarity(src_pts, src_nrm, tgt_pts, tgt_nrm, rotation, scale, translation, steps: int, trim: float = 0.8):
    """Trimmed similarity ICP from a start; returns the transform and its score (lower is better)."""
    tgt_t = torch.as_tensor(tgt_pts, dtype=torch.float32)
    for step in range(steps + 1):
        moved = scale * src_pts @ rotation.T + translation
        d, i = torch.cdist(torch.as_tensor(moved, dtype=torch.float32), tgt_t).min(dim=1)
        d, i = d.numpy().astype(np.float64), i.numpy()
        keep = d <= np.quantile(d, trim)
        if step == steps:
            break
        rotation, scale, translation = umeyama(src_pts[keep], tgt_pts[i[keep]])
    cos = np.einsum("nd,nd->n", src_nrm @ rotation.T, tgt_nrm[i])
    score = float(d[keep].mean() / scale) + 0.05 * float((1.0 - cos[keep]).mean())
    return rotation, scale, translation, score


def similarity(source_vertices, source_triangles, target_vertices, target_triangles
               ) -> tuple[np.ndarray, float, np.ndarray]:
    """Stage 1 alone, without landmarks: rotation, scale and translation taking the source onto the target."""
    src, src_tri = check_mesh(source_vertices, source_triangles, "source")
    tgt, tgt_tri = check_mesh(target_vertices, target_triangles, "target")
    return _align(src, src_tri, tgt, tgt_tri, np.zeros(0, dtype=np.int64), np.zeros((0, 3)))


def _align(src, src_tri, tgt, tgt_tri, lm_index, lm_target):
    """Rotation, scale, translation taking the source onto the target (see the module docstring, stage 1)."""
    rng = np.random.default_rng(0)
    sp, sn = sample_surface(src, src_tri, _SAMPLE_SOURCE, rng)
    tp, tn = sample_surface(tgt, tgt_tri, _SAMPLE_TARGET, rng)
    ms, mt = sp.mean(0), tp.mean(0)
    rs = np.sqrt(((sp - ms) ** 2).sum(1).mean())
    rt = np.sqrt(((tp - mt) ** 2).sum(1).mean())
    if lm_index.size >= 3:
        r, s, t = umeyama(src[lm_index], lm_target)
        starts = [(r, s, t)]
    else:
        fs, ft = _principal_frame(sp), _principal_frame(tp)
        rots = [ft @ p @ fs.T for p in _rotations24()] + _rotations24()
        starts = [(r, rt / rs, mt - (rt / rs) * r @ ms) for r in rots]
    coarse = sp[::2], sn[::2]
    scored = []
    for r, s, t in starts:
        r, s, t, score = _icp_similarity(*coarse, tp, tn, r, s, t, steps=6)
        scored.append((score, r, s, t))
    scored.sort(key=lambda item: item[0])
    best = None
    for _, r, s, t in scored[:3]:
        result = _icp_similarity(sp, sn, tp, tn, r, s, t, steps=20)
        if best is None or result[3] < best[3]:
            best = result
    return best[0], best[1], best[2]


# ----------------------------------------------------------------------------------------------------------------
# Stages 2 and 3: embedded deformation, then a smooth per-vertex residual


class _Deformation:
    """Vertices as blends of node affines: y_i = Σ_j w_ij (A_j (x_i − g_j) + g_j + t_j), parameters X (4K, 3)
    with block j = [A_jᵀ; t_jᵀ]."""

    def __init__(self, points: np.ndarray, nodes: np.ndarray, data_rows: np.ndarray):
        self.nodes = nodes
        k = nodes.shape[0]
        near, dist = knn(points, nodes, NODE_NEIGHBOURS + 1)
        w = np.clip(1.0 - dist[:, :NODE_NEIGHBOURS] / np.maximum(dist[:, NODE_NEIGHBOURS:], 1e-12), 0.0, None) ** 2
        w = w + 1e-9
        self.weights = w / w.sum(1, keepdims=True)
        self.near = near[:, :NODE_NEIGHBOURS]
        local = points[:, None, :] - nodes[self.near]  # (V, n, 3)
        homog = np.concatenate([local, np.ones(local.shape[:2] + (1,))], axis=2) * self.weights[..., None]
        self.values = homog.reshape(points.shape[0], -1)  # (V, 4n)
        self.columns = (4 * self.near[..., None] + np.arange(4)).reshape(points.shape[0], -1)
        self.offset = np.einsum("vn,vnd->vd", self.weights, nodes[self.near])
        self.size = 4 * k
        # Node graph: nodes that share a data vertex, plus each node's nearest nodes.
        pairs = [np.stack([self.near[data_rows, a], self.near[data_rows, b]], 1)
                 for a in range(NODE_NEIGHBOURS) for b in range(a + 1, NODE_NEIGHBOURS)]
        nn, _ = knn(nodes, nodes, NODE_NEIGHBOURS + 1)
        pairs += [np.stack([nn[:, 0], nn[:, c]], 1) for c in range(1, NODE_NEIGHBOURS + 1)]
        pairs = np.sort(np.concatenate(pairs), axis=1)
        self.edges = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
        self.spacing = float(np.median(np.linalg.norm(nodes[self.edges[:, 0]] - nodes[self.edges[:, 1]], axis=1)))

    def apply(self, params: np.ndarray, rows=slice(None)) -> np.ndarray:
        return np.einsum("vc,vcd->vd", self.values[rows], params[self.columns[rows]]) + self.offset[rows]

    def jacobians(self, params: np.ndarray) -> np.ndarray:
        linear = params.reshape(-1, 4, 3)[:, :3, :].transpose(0, 2, 1)  # (K, 3, 3) = A_j
        return np.einsum("vn,vnij->vij", self.weights, linear[self.near])

    def prepare(self, rows: np.ndarray) -> None:
        """Fix the data vertices: the sparsity of their normal equations is computed once."""
        self.rows = rows
        cols = self.columns[rows]
        flat = (cols[:, :, None] * self.size + cols[:, None, :]).reshape(-1)
        self._keys, self._inverse = np.unique(flat, return_inverse=True)

    def normal_equations(self, weights: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """HᵀWH and HᵀW(goal − offset) of the data term Σ_v w_v ‖y_v − goal_v‖² over the prepared vertices."""
        vals, cols, n = self.values[self.rows], self.columns[self.rows], self.size
        outer = (weights[:, None, None] * vals[:, :, None] * vals[:, None, :]).reshape(-1)
        gram = np.zeros(n * n)
        gram[self._keys] = np.bincount(self._inverse, weights=outer, minlength=self._keys.size)
        resid = (goals - self.offset[self.rows]) * weights[:, None]
        rhs = np.stack([np.bincount(cols.reshape(-1), weights=(vals * resid[:, d:d + 1]).reshape(-1), minlength=n)
                        for d in range(3)], axis=1)
        return gram.reshape(n, n), rhs

    def regulariser(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadratic form of the stiffness: each node predicts its neighbours' positions, linear parts agree."""
        both = np.concatenate([self.edges, self.edges[:, ::-1]])
        j, m = both[:, 0], both[:, 1]
        delta = self.nodes[m] - self.nodes[j]
        # Residual row of pair (j, m): [δᵀ, 1] on node j's block, −1 on node m's translation; rhs δ.
        coef = np.concatenate([delta, np.ones((both.shape[0], 1)), -np.ones((both.shape[0], 1))], axis=1)
        cols = np.concatenate([4 * j[:, None] + np.arange(4), 4 * m[:, None] + 3], axis=1)
        n = self.size
        gram = np.bincount((cols[:, :, None] * n + cols[:, None, :]).reshape(-1),
                           weights=(coef[:, :, None] * coef[:, None, :]).reshape(-1), minlength=n * n).reshape(n, n)
        rhs = np.stack([np.bincount(cols.reshape(-1), weights=(coef * delta[:, d:d + 1]).reshape(-1), minlength=n)
                        for d in range(3)], axis=1)
        # Neighbouring linear parts agree (a graph Laplacian on A, scaled to lengths by the node spacing).
        lin = 4 * self.edges[:, :, None] + np.arange(3)  # (E, 2, 3)
        a, b = lin[:, 0].reshape(-1), lin[:, 1].reshape(-1)
        weight = self.spacing ** 2
        np.add.at(gram, (a, a), weight)
        np.add.at(gram, (b, b), weight)
        np.add.at(gram, (a, b), -weight)
        np.add.at(gram, (b, a), -weight)
        return gram, rhs

    def identity(self) -> np.ndarray:
        return np.tile(np.vstack([np.eye(3), np.zeros((1, 3))]), (self.nodes.shape[0], 1))


def _correspond(surface: Surface, points: np.ndarray, normals: np.ndarray, floor: float, near=None):
    """Closest target points and which to accept: normal-compatible, off the target's border, not outliers."""
    hits = surface.closest(points, normals, MIN_NORMAL_COS, near=near)
    ok = np.isfinite(hits.distance) & ~hits.on_boundary
    if ok.any():
        ok &= hits.distance <= max(3.0 * float(np.median(hits.distance[ok])), floor)
    return hits, ok


def _deform(src, reg_tri, mask, surface: Surface, lm_index, lm_target, progress=None):
    data_rows = np.flatnonzero(mask)
    size = float(np.sqrt(((src[data_rows] - src[data_rows].mean(0)) ** 2).sum(1).mean()))
    floor = 0.02 * size
    nodes = src[data_rows[farthest_points(src[data_rows], min(NODE_COUNT, max(data_rows.size // 8, 4)))]]
    model = _Deformation(src, nodes, data_rows)
    # Target -> source pairs too: target features (nose tip, lid and lip edges) pull the source along the surface,
    # which closest points from the source side alone do only slowly. Each pulls the source vertex nearest to its
    # foot point by the pair's offset.
    back = np.unique(surface.triangles)
    back = back[:: max(1, back.size // _BACK_SAMPLES)]
    back_points = surface.vertices[back]
    back_normals = vertex_normals(surface.vertices, surface.triangles)[back]
    source_surface = Surface(src, reg_tri)
    fit_rows = data_rows[:: max(1, data_rows.size // _DATA_SAMPLES)]  # the nodes need far fewer than all
    slot = np.full(src.shape[0], -1, dtype=np.int64)
    rows = np.union1d(np.union1d(fit_rows, lm_index), np.unique(reg_tri))
    slot[rows] = np.arange(rows.size)
    model.prepare(rows)
    lm_weight = np.zeros(rows.size)
    lm_goal = np.zeros((rows.size, 3))
    np.add.at(lm_weight, slot[lm_index], LANDMARK_WEIGHT)
    np.add.at(lm_goal, slot[lm_index], LANDMARK_WEIGHT * lm_target)
    reg_gram, reg_rhs = model.regulariser()
    damp = np.zeros(model.size)
    damp[np.arange(model.size) % 4 != 3] = AFFINE_DAMPING * model.spacing ** 2
    identity = model.identity()
    params = identity.copy()
    omega, last_gap = OVER_RELAXATION, np.inf
    for i, alpha in enumerate(STIFFNESS):
        near = back_near = None  # nearest vertices are searched afresh once per stiffness, then reused
        for step in range(ICP_STEPS):
            report(progress, (i * ICP_STEPS + step + 1) / (len(STIFFNESS) * ICP_STEPS + 1), FITTING)
            y = model.apply(params)
            normals = vertex_normals(y, reg_tri)
            weight, goal = lm_weight.copy(), lm_goal.copy()
            hits, ok = _correspond(surface, y[fit_rows], normals[fit_rows], floor, near)
            near = hits.near
            gap = float(hits.distance[ok].mean()) if ok.any() else np.inf
            if gap > 1.5 * last_gap:  # overshooting: plain steps from here on
                omega = 1.0
            last_gap = gap
            weight[slot[fit_rows]] += ok
            goal[slot[fit_rows]] += ok[:, None] * hits.point
            bhits, bok = _correspond(source_surface.with_vertices(y), back_points, back_normals, floor, back_near)
            back_near = bhits.near
            corner = reg_tri[bhits.triangle[bok], np.argmax(bhits.bary[bok], axis=1)]
            np.add.at(weight, slot[corner], 1.0)
            np.add.at(goal, slot[corner], y[corner] + back_points[bok] - bhits.point[bok])
            goal = goal / np.maximum(weight, 1e-12)[:, None]
            gram, rhs = model.normal_equations(weight, goal)
            scale = max(float(ok.sum() + bok.sum()), 1.0) / max(model.edges.shape[0], 1)  # stiffness vs data
            lhs = gram + alpha * scale * reg_gram
            lhs[np.diag_indices(model.size)] += damp
            right = rhs + alpha * scale * reg_rhs + damp[:, None] * identity
            chol = torch.linalg.cholesky(torch.as_tensor(lhs))
            new = torch.cholesky_solve(torch.as_tensor(right), chol).numpy()
            params = params + omega * (new - params)
    deformed = model.apply(params)
    deformed[data_rows] = _residual(deformed, reg_tri, data_rows, surface, floor)
    hits, ok = _correspond(surface, deformed, vertex_normals(deformed, reg_tri), floor)
    return deformed, model.jacobians(params), hits.distance, ok & mask


def _land_exactly(src, deformed, mask, lm_index, lm_target) -> np.ndarray:
    """Stage 4: what the smooth stages leave between each landmark and its target (millimetres, where the nodes are
    centimetres apart) is spread by Gaussians of LANDING_WIDTH (share of the source's size) around the landmarks, so
    lids and lip lines land where they must without moving what lies farther away."""
    if lm_index.size == 0:
        return deformed
    index, first = np.unique(lm_index, return_index=True)
    miss = lm_target[first] - deformed[index]
    size = float(np.sqrt(((src[mask] - src[mask].mean(0)) ** 2).sum(1).mean()))
    length = np.linalg.norm(miss, axis=1, keepdims=True)
    miss = miss * np.clip(1.0 - LANDING_TOLERANCE * size / np.maximum(length, 1e-30), 0.0, None)
    width = LANDING_WIDTH * size
    centres = src[index]
    kernel = np.exp(-((centres[:, None] - centres[None]) ** 2).sum(-1) / (2 * width ** 2))
    weights = np.linalg.solve(kernel + LANDING_RIDGE * np.eye(index.size), miss)
    out = deformed.copy()
    for start in range(0, src.shape[0], 4096):
        rows = slice(start, start + 4096)
        near = np.exp(-((src[rows, None] - centres[None]) ** 2).sum(-1) / (2 * width ** 2))
        out[rows] += near @ weights
    return out


def _residual(deformed, reg_tri, data_rows, surface, floor) -> np.ndarray:
    """Move the data vertices onto the surface by a displacement smoothed over the mesh (CG on (W + λL) r = W e)."""
    index = np.full(deformed.shape[0], -1, dtype=np.int64)
    index[data_rows] = np.arange(data_rows.size)
    edges, _ = mesh_edges(reg_tri)
    a, b = index[edges[:, 0]], index[edges[:, 1]]
    degree = np.bincount(np.concatenate([a, b]), minlength=data_rows.size).astype(np.float64)
    base = deformed[data_rows]
    offset = np.zeros_like(base)

    def laplacian(r):
        out = degree[:, None] * r
        np.subtract.at(out, a, r[b])
        np.subtract.at(out, b, r[a])
        return out

    for _ in range(RESIDUAL_ROUNDS):
        points = base + offset
        normals = vertex_normals(_scatter(deformed, data_rows, points), reg_tri)[data_rows]
        hits, ok = _correspond(surface, points, normals, floor)
        w = ok.astype(np.float64)
        goal = np.where(ok[:, None], hits.point - base, 0.0)
        op = lambda r: w[:, None] * r + RESIDUAL_SMOOTHNESS * laplacian(r)  # noqa: E731
        offset = _conjugate_gradient(op, w[:, None] * goal, offset)
    return base + offset


def _scatter(full: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = full.copy()
    out[rows] = values
    return out


def _conjugate_gradient(op, rhs: np.ndarray, x: np.ndarray, iterations: int = 60) -> np.ndarray:
    r = rhs - op(x)
    p = r.copy()
    rs = (r * r).sum(0)
    for _ in range(iterations):
        ap = op(p)
        step = rs / np.maximum((p * ap).sum(0), 1e-300)
        x = x + p * step
        r = r - ap * step
        rs_new = (r * r).sum(0)
        if np.all(rs_new <= 1e-20 * np.maximum((rhs * rhs).sum(0), 1e-300)):
            break
        p = r + p * (rs_new / np.maximum(rs, 1e-300))
        rs = rs_new
    return x
