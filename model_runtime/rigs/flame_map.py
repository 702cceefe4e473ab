"""The linear map between ARKit weights and FLAME parameters, derived from the user's own FLAME model.

Derivation (`derive_flame_map`):
  1. the default head's 52 ARKit shapes are transferred onto the FLAME template by non-rigid registration of the two
     neutral heads (`shape_transfer.transfer_default_head_shapes`; FLAME is Y up and looks toward +Z, so the template
     is first turned to Blender's axes, and the shapes are turned back);
  2. each transferred shape is projected onto FLAME's expression basis, jaw rotation and eye rotations: regularised
     least squares, started from the linearised problem and finished on the full FLAME forward pass (pose correctives
     and skinning included), all 52 shapes at once in torch;
  3. each shape's fit residual ‖FLAME(p_k) − target_k‖ / ‖target_k‖ is kept, so the user sees which ARKit shapes
     FLAME cannot make (jawForward, cheekPuff, ... depending on the model).

ARKit → FLAME is then p(w) = Σ_k w_k p_k. FLAME → ARKit (`to_arkit`) is the box-constrained least squares
w = argmin_{0≤w≤1} ‖A w − B p‖² + λ‖w‖², measured in vertex space on FLAME's linearised basis B, with A = B P the
columns of the forward map; it is solved for all frames at once by accelerated projected gradient. The round trip
w → p → w′ is measured on sampled expressions and reported.

The map is cached per FLAME file hash (and head and algorithm version) as an npz in `cache_dir()/flame_map`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..expression_space import ARKIT_CHANNELS, NUM_CHANNELS
from ..heads.head import load_default_head
from ..paths import NpzCache
from .flame_file import NUM_JOINTS, FlameModel, check_head_template
from .flame_layer import FlameLayer, axis_angle_np, flame_forward_np
from .registration import umeyama
from .shape_transfer import transfer_default_head_shapes

MAP_VERSION = 3  # part of the cache key: bump it whenever the registration, the transfer or the fit changes
JAW_JOINT, LEFT_EYE_JOINT, RIGHT_EYE_JOINT = 2, 3, 4
NUM_POSE_PARAMS = 9  # jaw (3) + left eye (3) + right eye (3), axis-angles
EXPRESSION_REG = 1e-4  # ridge on expression coefficients, relative to each shape's own squared size
POSE_REG = 1e-3  # ridge on the rotations (radians)
INVERSE_REG = 1e-4  # ridge on the ARKit weights of the inverse, relative to the mean diagonal of A^T A
REFINE_STEPS = 60
JAW_REFINE_RAD = 1e-3  # shapes whose linear fit turns the jaw less than this stay linear


def flame_to_blender(xyz: np.ndarray) -> np.ndarray:
    """FLAME axes (Y up, face toward +Z) -> Blender axes (Z up, face toward -Y): (x, y, z) -> (x, -z, y)."""
    xyz = np.asarray(xyz)
    return np.stack([xyz[..., 0], -xyz[..., 2], xyz[..., 1]], axis=-1)


def blender_to_flame(xyz: np.ndarray) -> np.ndarray:
    xyz = np.asarray(xyz)
    return np.stack([xyz[..., 0], xyz[..., 2], -xyz[..., 1]], axis=-1)


@dataclass(frozen=True, eq=False)
class FlameMap:
    expression: np.ndarray  # (52, N) FLAME expression coefficients of each ARKit channel at weight 1
    pose: np.ndarray  # (52, 9) jaw, left-eye and right-eye axis-angles of each channel at weight 1
    residuals: np.ndarray  # (52,) relative vertex residual of each channel's fit on the FLAME model
    inverse_gram: np.ndarray  # (52, 52) A^T A + λI of the inverse
    inverse_rhs: np.ndarray  # (52, N + 9) A^T B: maps FLAME parameters to the inverse's right-hand side
    roundtrip_weight_error: float  # mean |w - w'| over sampled expressions
    roundtrip_vertex_error: float  # mean relative vertex error of FLAME(p) vs the ARKit shapes of w'
    model_sha256: str
    seconds: float = 0.0  # time the derivation took (0 when read from the cache)
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def num_expression(self) -> int:
        return int(self.expression.shape[1])

    def params(self) -> np.ndarray:
        """(52, N + 9) the forward map's rows: expression, jaw, left eye, right eye."""
        return np.concatenate([self.expression, self.pose], axis=1)

    def to_flame(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ARKit weights (T, 52) -> FLAME expression (T, N), jaw_pose (T, 3), eye_pose (T, 6)."""
        w = _check_weights(weights)
        params = w @ self.params()
        n = self.num_expression
        return params[:, :n].astype(np.float32), params[:, n:n + 3].astype(np.float32), \
            params[:, n + 3:].astype(np.float32)

    def to_arkit(self, expression: np.ndarray, jaw_pose: np.ndarray | None = None,
                 eye_pose: np.ndarray | None = None, iterations: int = 300) -> np.ndarray:
        """FLAME parameters (T, N' <= N), (T, 3), (T, 6) -> ARKit weights (T, 52) in [0, 1]."""
        params = self._flame_params(expression, jaw_pose, eye_pose)
        return solve_box_qp(self.inverse_gram, params @ self.inverse_rhs.T, iterations)

    def _flame_params(self, expression, jaw_pose, eye_pose) -> np.ndarray:
        exp = np.asarray(expression, dtype=np.float64)
        if exp.ndim != 2 or exp.shape[1] > self.num_expression or exp.shape[0] == 0:
            raise InputError(f"FLAME expressions must be (frames, <= {self.num_expression}) for this model; got "
                             f"{exp.shape}.")
        frames = exp.shape[0]
        out = np.zeros((frames, self.num_expression + NUM_POSE_PARAMS))
        out[:, :exp.shape[1]] = exp
        for offset, value, width, name in ((0, jaw_pose, 3, "jaw_pose"), (3, eye_pose, 6, "eye_pose")):
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (frames, width):
                raise InputError(f"The FLAME {name} must be ({frames}, {width}); got {value.shape}.")
            out[:, self.num_expression + offset:self.num_expression + offset + width] = value
        if not np.all(np.isfinite(out)):
            raise InputError("The FLAME parameters hold non-finite values.")
        return out

    def worst_channels(self, count: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.residuals)[:count]
        return [(ARKIT_CHANNELS[i], float(self.residuals[i])) for i in order]

    def summary(self) -> str:
        worst = ", ".join(f"{name} {value:.0%}" for name, value in self.worst_channels(3))
        return (f"ARKit->FLAME map: median shape residual {np.median(self.residuals):.0%} (worst {worst}); round trip "
                f"weight error {self.roundtrip_weight_error:.3f}, vertex error {self.roundtrip_vertex_error:.0%}.")


def _check_weights(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != NUM_CHANNELS:
        raise InputError(f"ARKit weights must be (frames, {NUM_CHANNELS}); got {np.shape(weights)}.")
    if not np.all(np.isfinite(w)):
        raise InputError("The ARKit weights hold non-finite values.")
    return w


def solve_box_qp(gram: np.ndarray, rhs: np.ndarray, iterations: int = 300) -> np.ndarray:
    """argmin_{0<=w<=1} ½wᵀGw − rhsᵀw for every row of rhs (T, K): FISTA projected gradient, batched."""
    step = 1.0 / float(np.linalg.eigvalsh(gram).max())
    w = np.clip(np.linalg.solve(gram, rhs.T).T, 0.0, 1.0)
    y, t = w.copy(), 1.0
    for _ in range(int(iterations)):
        nxt = np.clip(y - (y @ gram - rhs) * step, 0.0, 1.0)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = nxt + ((t - 1.0) / t_next) * (nxt - w)
        w, t = nxt, t_next
    return w.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Derivation


def _linear_basis(model: FlameModel) -> np.ndarray:
    """(3V, N + 9): vertex displacement per unit expression coefficient and per radian of jaw/eye rotation at rest
    (rotations by central differences of the full forward pass, so pose correctives count)."""
    v, n = model.num_vertices, model.num_expression
    basis = np.empty((3 * v, n + NUM_POSE_PARAMS))
    basis[:, :n] = model.exprdirs.reshape(3 * v, n)
    eps = 1e-4
    poses = np.zeros((2 * NUM_POSE_PARAMS, 3 * NUM_JOINTS))
    for i in range(NUM_POSE_PARAMS):
        column = 3 * JAW_JOINT + i  # jaw, left eye and right eye are consecutive joints
        poses[2 * i, column], poses[2 * i + 1, column] = eps, -eps
    verts, _ = flame_forward_np(model, None, None, poses)
    basis[:, n:] = ((verts[0::2] - verts[1::2]) / (2 * eps)).reshape(NUM_POSE_PARAMS, 3 * v).T
    return basis


def eye_rotations(head) -> np.ndarray:
    """(52, 6) FLAME-axes rotations of the left and right eyeball in each of the default head's ARKit shapes.

    Gaze is a rotation of a rigid eyeball in both models, so it is measured on the default head (Kabsch fit of each
    eyeball's vertices before and after the shape) and given to FLAME's eye joints directly, instead of being
    transferred vertex by vertex."""
    out = np.zeros((NUM_CHANNELS, 6))
    for side, part in enumerate((1, 2)):  # eye_left, eye_right in head.PART_NAMES
        index = np.flatnonzero(head.vertex_parts == part)
        rest = head.vertices[index].astype(np.float64)
        for k in range(NUM_CHANNELS):
            rot, _, _ = umeyama(rest, rest + head.deltas[k, index])
            out[k, 3 * side:3 * side + 3] = blender_to_flame(axis_angle_np(rot))
    return out


def _fit(model: FlameModel, targets: np.ndarray, weight: np.ndarray, basis: np.ndarray, eyes: np.ndarray,
         device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Project targets (52, V, 3) (displacements from the template) onto FLAME's expression and jaw with the eyes
    fixed at `eyes` (52, 6); returns params (52, N + 9) and each shape's relative residual."""
    k, v = targets.shape[0], model.num_vertices
    n = model.num_expression
    free = n + 3
    w_rows = np.repeat(weight, 3)  # per coordinate
    scale = np.sqrt(np.einsum("kv,v->k", (targets ** 2).sum(-1), weight)) + 1e-12  # ‖target_k‖ in the metric
    # Linear start: per shape, minimise ‖B p − d_k‖²_W / s_k² + pᵀRp on the linearised basis (eyes fixed).
    bw = basis[:, :free] * w_rows[:, None]
    gram = basis[:, :free].T @ bw
    reg = np.r_[np.full(n, EXPRESSION_REG), np.full(3, POSE_REG)]
    rhs = bw.T @ (targets.reshape(k, 3 * v) - eyes @ basis[:, free:].T).T  # (free, 52)
    start = np.stack([np.linalg.solve(gram + np.diag(reg) * scale[i] ** 2, rhs[:, i]) for i in range(k)])

    layer = FlameLayer(model, dtype=torch.float64).to(device)
    target = torch.as_tensor(model.v_template[None] + targets, dtype=torch.float64, device=device)
    wt = torch.as_tensor(weight, dtype=torch.float64, device=device)[None, :, None]
    inv_scale2 = torch.as_tensor(1.0 / scale ** 2, dtype=torch.float64, device=device)
    reg_t = torch.as_tensor(reg, dtype=torch.float64, device=device)
    eyes_t = torch.as_tensor(eyes, dtype=torch.float64, device=device)

    def forward(p, rows):
        pose = torch.cat([torch.zeros(len(rows), 3 * JAW_JOINT, dtype=torch.float64, device=device), p[:, n:],
                          eyes_t[rows]], 1)
        verts, _ = layer(None, p[:, :n], pose)
        return verts

    def errors(p, rows):
        return (((forward(p, rows) - target[rows]) ** 2) * wt).sum((1, 2)) * inv_scale2[rows]

    # Only the jaw makes the problem non-linear (the eyeballs carry no weight): refine the shapes that move it.
    rows = np.flatnonzero(np.linalg.norm(start[:, n:], axis=1) > JAW_REFINE_RAD)
    params = start.copy()
    if rows.size:
        sub = torch.tensor(start[rows], dtype=torch.float64, device=device, requires_grad=True)
        optimiser = torch.optim.LBFGS([sub], lr=1.0, max_iter=REFINE_STEPS, history_size=20,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

        def closure():
            optimiser.zero_grad()
            loss = errors(sub, rows).sum() + (sub ** 2 * reg_t).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        params[rows] = sub.detach().cpu().numpy()
    with torch.no_grad():
        residual = torch.sqrt(errors(torch.as_tensor(params, dtype=torch.float64, device=device), np.arange(k)))
    return np.concatenate([params, eyes], axis=1), residual.cpu().numpy()


def _roundtrip(params: np.ndarray, gram: np.ndarray, rhs_map: np.ndarray, a_cols: np.ndarray,
               seed: int = 0) -> tuple[float, float]:
    """Sampled sparse ARKit expressions w -> FLAME p -> w'; mean |w - w'| and relative vertex error."""
    rng = np.random.default_rng(seed)
    count = 200
    w = np.zeros((count, NUM_CHANNELS))
    for row in w:
        active = rng.choice(NUM_CHANNELS, rng.integers(2, 7), replace=False)
        row[active] = rng.uniform(0.2, 1.0, active.shape[0])
    p = w @ params
    w_back = solve_box_qp(gram, p @ rhs_map.T)
    moved = w @ a_cols.T  # vertex displacement of FLAME(p) (linearised): A w
    back = w_back @ a_cols.T
    vertex = np.linalg.norm(moved - back, axis=1) / np.maximum(np.linalg.norm(moved, axis=1), 1e-12)
    return float(np.abs(w - w_back).mean()), float(vertex.mean())


def derive_flame_map(model: FlameModel, *, landmarks=None, device: str | torch.device = "cpu") -> FlameMap:
    """Derive the ARKit <-> FLAME map for `model` (see the module docstring); not cached (see `flame_map_for`)."""
    began = time.perf_counter()
    if model.num_expression == 0:
        raise InputError("This FLAME model has no expression components, so ARKit shapes cannot be mapped onto it.")
    check_head_template(model.v_template, model.f)
    template_b = flame_to_blender(model.v_template)
    transfer = transfer_default_head_shapes(template_b, np.asarray(model.f, dtype=np.int64), landmarks=landmarks,
                                            find_face=False)
    targets = blender_to_flame(np.asarray(transfer.deltas, dtype=np.float64))  # (52, V, 3)
    eyeball = model.weights[:, LEFT_EYE_JOINT] + model.weights[:, RIGHT_EYE_JOINT] > 0.5
    confidence = np.clip(np.asarray(transfer.confidence, dtype=np.float64), 0.0, 1.0)
    basis = _linear_basis(model)
    params, residuals = _fit(model, targets, np.where(eyeball, 0.0, confidence), basis, eye_rotations(
        load_default_head()), torch.device(device))

    # The inverse sees the eyeballs too, so FLAME's eye rotations come back as eyeLook weights.
    w_rows = np.repeat(np.where(eyeball, 1.0, confidence), 3)
    a_cols = basis @ params.T  # (3V, 52) columns of the forward map in vertex space
    aw = a_cols * w_rows[:, None]
    gram = a_cols.T @ aw
    gram = gram + np.eye(NUM_CHANNELS) * INVERSE_REG * np.trace(gram) / NUM_CHANNELS
    rhs_map = aw.T @ basis  # (52, P)
    weight_error, vertex_error = _roundtrip(params, gram, rhs_map, a_cols)
    n = model.num_expression
    return FlameMap(expression=params[:, :n], pose=params[:, n:], residuals=residuals, inverse_gram=gram,
                    inverse_rhs=rhs_map, roundtrip_weight_error=weight_error, roundtrip_vertex_error=vertex_error,
                    model_sha256=model.sha256, seconds=time.perf_counter() - began,
                    notes=list(getattr(transfer, "notes", [])))


def _head_key() -> str:
    head = load_default_head()
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(head.vertices).tobytes())
    digest.update(np.ascontiguousarray(head.deltas).tobytes())
    return digest.hexdigest()[:16]


def _cache(model: FlameModel) -> NpzCache:
    key = f"{model.sha256[:32]}-{_head_key()}-v{MAP_VERSION}"
    return NpzCache(Path("flame_map") / f"{key}.npz", key, fields=(*_FIELDS, "roundtrip", "notes"),
                    check=lambda arrays: arrays["expression"].shape == (NUM_CHANNELS, model.num_expression))


def map_cache_path(model: FlameModel) -> Path:
    return _cache(model).path


_FIELDS = ("expression", "pose", "residuals", "inverse_gram", "inverse_rhs")


def flame_map_for(model: FlameModel, *, landmarks=None, device: str | torch.device = "cpu") -> FlameMap:
    """The map for `model`, from the cache when it was derived before (user landmarks bypass the cache)."""
    cache = _cache(model)
    if landmarks is None:
        arrays = cache.read()
        if arrays is not None:
            errors = arrays["roundtrip"].astype(np.float64)
            return FlameMap(**{name: arrays[name] for name in _FIELDS}, roundtrip_weight_error=float(errors[0]),
                            roundtrip_vertex_error=float(errors[1]), model_sha256=model.sha256, from_cache=True,
                            notes=[str(n) for n in arrays["notes"]])
    fmap = derive_flame_map(model, landmarks=landmarks, device=device)
    if landmarks is None:
        cache.write({"roundtrip": np.array([fmap.roundtrip_weight_error, fmap.roundtrip_vertex_error]),
                     "notes": np.array(fmap.notes, dtype=np.str_).reshape(-1),
                     **{name: getattr(fmap, name) for name in _FIELDS}})
    return fmap
