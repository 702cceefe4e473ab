"""Fit 52 ARKit weights and a weak-perspective head pose to 2D landmarks.

Model: landmark k lands at  s * P R (X_k + shift_k(w)) + t  in the image, where X_k is where the detector puts it on the
neutral default head, shift_k(w) how the channels move it (piecewise linear in each weight, see correspondence.py),
R the head rotation, s the scale (pixels per metre), t the shift and P the front orthographic projection (image x =
head X, image y = -head Z). Residuals are measured on the head, in millimetres, each landmark weighted by how well it
tracked the head in the calibration renders, so the regularisers mean the same at any image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..expression_space import LEFT_CHANNELS, NUM_CHANNELS, RIGHT_CHANNELS

PROJECTION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])  # head axes -> image axes (x right, y down)
OUTER_ITERATIONS = 12
RIDGE = 0.5  # pulls every weight toward 0 (neutral), per unit of weight squared
SPARSITY = 0.5  # a linear cost per unit of weight: only channels the landmarks ask for switch on
SYMMETRY = 4.0  # keeps left/right channel pairs together unless the landmarks disagree
ORDER = 1.0  # extra cost per unit of weight in each later segment of a channel's range


@dataclass(frozen=True)
class FitResult:
    weights: np.ndarray  # (52,) float64 in [0, 1]
    rotation: np.ndarray  # (3,3)
    scale: float  # pixels per metre
    shift: np.ndarray  # (2,) pixels
    rms_mm: float  # weighted RMS landmark residual, millimetres on the head


def euler_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation built as `render.rotation_matrix(yaw, pitch, roll)`."""
    r = rotation
    pitch = -math.degrees(math.asin(float(np.clip(r[2, 1], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(-r[0, 1], r[1, 1]))
    roll = math.degrees(math.atan2(-r[2, 0], r[2, 2]))
    return yaw, pitch, roll


def _skew(v: np.ndarray) -> np.ndarray:
    """(K,3) -> (K,3,3) cross-product matrices."""
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def _rodrigues(delta: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(delta))
    if angle < 1e-12:
        return np.eye(3)
    k = _skew(delta / angle)
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _initial_pose(points0: np.ndarray, observed: np.ndarray, conf: np.ndarray):
    """Affine camera by weighted least squares, then its nearest scaled rotation (weak perspective)."""
    design = np.concatenate([points0, np.ones((points0.shape[0], 1))], axis=1) * np.sqrt(conf)[:, None]
    sol, *_ = np.linalg.lstsq(design, observed * np.sqrt(conf)[:, None], rcond=None)
    m = sol[:3].T  # (2,3): image = m @ X + t
    scale = float(np.sqrt(np.linalg.norm(m[0]) * np.linalg.norm(m[1])))
    row_x, row_z = m[0] / scale, -m[1] / scale
    rotation = _nearest_rotation(np.stack([row_x, np.cross(row_z, row_x), row_z]))
    return rotation, scale, sol[3]


def _solve_box_qp(h: np.ndarray, g: np.ndarray, w: np.ndarray, upper: np.ndarray, iterations: int = 60) -> np.ndarray:
    """min 1/2 w'Hw - g'w over 0 <= w <= upper: projected Newton on the free variables (Bertsekas), H pos. definite."""
    def cost(x):
        return 0.5 * x @ h @ x - g @ x

    w = np.clip(w, 0.0, upper)
    for _ in range(iterations):
        grad = h @ w - g
        bound = ((w <= 0.0) & (grad > 0.0)) | ((w >= upper) & (grad < 0.0))
        free = ~bound
        if not np.any(free) or np.max(np.abs(grad[free])) < 1e-9:
            break
        step = np.zeros_like(w)
        step[free] = np.linalg.solve(h[np.ix_(free, free)], -grad[free])
        base = cost(w)
        alpha = 1.0
        while True:
            trial = np.clip(w + alpha * step, 0.0, upper)
            if cost(trial) <= base + 1e-4 * grad @ (trial - w) or alpha < 1e-6:
                break
            alpha *= 0.5
        if np.max(np.abs(trial - w)) < 1e-7:
            w = trial
            break
        w = trial
    return w


def _symmetry_matrix() -> np.ndarray:
    pairs = np.zeros((len(LEFT_CHANNELS), NUM_CHANNELS))
    pairs[np.arange(len(LEFT_CHANNELS)), LEFT_CHANNELS] = 1.0
    pairs[np.arange(len(LEFT_CHANNELS)), RIGHT_CHANNELS] = -1.0
    return pairs.T @ pairs


_SYMMETRY = _symmetry_matrix()


def fit_landmarks(observed: np.ndarray, points0: np.ndarray, slopes: np.ndarray, segments: np.ndarray,
                  sigma_mm: np.ndarray) -> FitResult:
    """observed (K,2) pixels; points0 (K,3) metres; slopes (S,52,K,3) metres per unit of weight in each of S
    segments of the weight range, `segments` (S,) wide; sigma_mm (K,) expected landmark error in millimetres.

    Each channel's weight is split into S parts, one per segment (w = u_1 + ... + u_S, 0 <= u_s <= segments[s]),
    which keeps the model linear in the parts while the response bends (the detector's does, see
    correspondence.py); later segments cost a little more, so they fill in order. Gauss-Newton on pose and weights
    together: at each step the quadratic model's pose part is eliminated (Schur complement) and the weight parts are
    solved within their box. Solving them jointly matters: a pose fitted first and then held still would hand its
    error to the brow and eyelid channels (a slight pitch looks like raised brows).
    """
    num_seg = segments.shape[0]
    num_var = num_seg * NUM_CHANNELS
    flat_slopes = slopes.reshape(num_var, *slopes.shape[2:])  # (S*52, K, 3)
    upper = np.repeat(segments, NUM_CHANNELS)
    merge = np.tile(np.eye(NUM_CHANNELS), (1, num_seg))  # (52, S*52): parts -> weights
    reg = merge.T @ (RIDGE * np.eye(NUM_CHANNELS) + SYMMETRY * _SYMMETRY) @ merge
    linear = 0.5 * (SPARSITY + ORDER * np.repeat(np.arange(num_seg), NUM_CHANNELS))
    conf = 1.0 / np.square(sigma_mm)
    # Start from the landmarks that expressions move least (nose bridge, face outline), as if the face were neutral.
    motion_mm = np.max(np.linalg.norm(slopes.sum(axis=0)[:, :, [0, 2]], axis=2), axis=0) * 1000.0
    rotation, scale, shift = _initial_pose(points0, observed, conf / (1.0 + np.square(motion_mm / sigma_mm)))
    to_mm = 1000.0 / scale  # pixels -> millimetres on the head, fixed at the initial scale
    parts = np.zeros(num_var)
    root = np.sqrt(conf)[:, None, None]
    count = points0.shape[0]
    for _ in range(OUTER_ITERATIONS):
        shape = points0 + np.tensordot(parts, flat_slopes, axes=1)
        turned = shape @ rotation.T
        resid = (scale * turned @ PROJECTION.T + shift - observed) * to_mm  # (K,2)
        jac = np.empty((count, 2, 6 + num_var))
        jac[:, :, :3] = -scale * to_mm * np.einsum("ij,kjl->kil", PROJECTION, _skew(turned))
        jac[:, :, 3] = scale * to_mm * turned @ PROJECTION.T
        jac[:, :, 4:6] = to_mm * np.eye(2)
        jac[:, :, 6:] = scale * to_mm * np.einsum("ij,ckj->kic", PROJECTION @ rotation, flat_slopes)
        jw = (jac * root).reshape(-1, 6 + num_var)
        rhs = (resid * root[:, :, 0]).reshape(-1) - jw[:, 6:] @ parts  # residual with the weights' part removed
        h = jw.T @ jw
        q = jw.T @ rhs
        h[6:, 6:] += reg
        q[6:] += linear
        elim = np.linalg.solve(h[:6, :6] + 1e-6 * np.eye(6), np.concatenate([h[:6, 6:], q[:6, None]], axis=1))
        new_parts = _solve_box_qp(h[6:, 6:] - h[6:, :6] @ elim[:, :-1], -(q[6:] - h[6:, :6] @ elim[:, -1]),
                                  parts, upper)
        step = -(elim[:, -1] + elim[:, :-1] @ new_parts)
        rotation = _rodrigues(step[:3]) @ rotation
        scale *= math.exp(step[3])
        shift = shift + step[4:6]
        change = float(np.max(np.abs(new_parts - parts)))
        parts = new_parts
        if change < 1e-4 and float(np.max(np.abs(step[:4]))) < 1e-6:
            break
    shape = points0 + np.tensordot(parts, flat_slopes, axes=1)
    resid = (scale * (shape @ rotation.T) @ PROJECTION.T + shift - observed) * 1000.0 / scale
    rms = float(np.sqrt(np.sum(conf * np.sum(resid**2, axis=1)) / np.sum(conf)))
    return FitResult(weights=np.clip(merge @ parts, 0.0, 1.0), rotation=rotation, scale=scale, shift=shift,
                     rms_mm=rms)


__all__ = ["FitResult", "euler_deg", "fit_landmarks"]
