"""The FLAME forward pass, in numpy (`flame_forward_np`) and torch (`FlameLayer`), with the same math:

  shaped  = v_template + shapedirs . shape + exprdirs . expression
  joints0 = J_regressor @ shaped                                   (rest joints of this identity and expression)
  R_j     = Rodrigues(pose[3j:3j+3])                               j = global, neck, jaw, left eye, right eye
  posed   = shaped + posedirs^T . flatten(R_1..R_4 - I)            (pose correctives, 36 values)
  G_j     = G_parent(j) @ [R_j | joints0_j - joints0_parent(j)]    (forward kinematics along kintree_table)
  A_j     = G_j with translation G_j.t - G_j.R @ joints0_j         (rest pose -> posed pose)
  vertex  = sum_j weights[v, j] A_j @ [posed_v; 1] + translation   (linear blend skinning)
  joint_j = G_j.t + translation

Inputs are batched: shape (B, S') and expression (B, E') with S' <= S and E' <= E (missing coefficients are zero;
None means all zero), pose (B, 15) axis-angles, translation (B, 3) or None. Outputs: vertices (B, V, 3), joints
(B, 5, 3), in the model's units (metres).

Training's vertex loss in FLAME space uses `FlameExpressionLayer`: (B, 53) parameters (50 expression + 3 jaw) ->
vertices, jaw-only skinning about a fixed joint. `load_flame_model` builds it from a compact npz (v_template,
shapedirs, jaw_joint, jaw_weights) or from any FLAME file `load_flame` reads.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .flame_file import NUM_JOINTS, FlameModel, load_flame
from .flame_sequence import PARAM_EXPRESSION

JAW_JOINT = 2  # global, neck, jaw, left eye, right eye
COMPACT_KEYS = ("v_template", "shapedirs", "jaw_joint", "jaw_weights")

_SMALL_ANGLE = 1e-4


def _check_inputs(model: FlameModel, shape, expression, pose, translation) -> int:
    if pose is None or tuple(pose.shape[1:]) != (3 * NUM_JOINTS,) or len(pose.shape) != 2:
        got = None if pose is None else tuple(pose.shape)
        raise InputError(f"The FLAME pose must be (B, {3 * NUM_JOINTS}) axis-angles (global, neck, jaw, left eye, "
                         f"right eye); got {got}.")
    batch = int(pose.shape[0])
    for name, value, limit in (("shape", shape, model.num_shape), ("expression", expression, model.num_expression)):
        if value is None:
            continue
        if len(value.shape) != 2 or int(value.shape[0]) != batch or int(value.shape[1]) > limit:
            raise InputError(f"The FLAME {name} coefficients must be ({batch}, <= {limit}); got {tuple(value.shape)}.")
    if translation is not None and tuple(translation.shape) != (batch, 3):
        raise InputError(f"The FLAME translation must be ({batch}, 3); got {tuple(translation.shape)}.")
    return batch


# ----------------------------------------------------------------------------------------------------------------
# numpy


def rodrigues_np(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices; exact (Taylor series) near zero angle."""
    aa = np.asarray(aa, dtype=np.float64)
    theta2 = np.sum(aa * aa, axis=-1)
    theta = np.sqrt(theta2)
    small = theta < _SMALL_ANGLE
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, 2.0 * np.sin(safe / 2.0) ** 2 / (safe * safe))  # (1 - cos) / theta^2
    x, y, z = aa[..., 0], aa[..., 1], aa[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    return np.eye(3) + a[..., None, None] * k + b[..., None, None] * (k @ k)


def axis_angle_np(rot: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angles (angles below pi); the inverse of `rodrigues_np`. The angle comes
    from atan2 of the sine and cosine parts, which stays accurate for small angles (arccos of the trace does not)."""
    rot = np.asarray(rot, dtype=np.float64)
    vee = 0.5 * np.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0],
                          rot[..., 1, 0] - rot[..., 0, 1]], axis=-1)
    sin = np.linalg.norm(vee, axis=-1)
    cos = 0.5 * (np.trace(rot, axis1=-2, axis2=-1) - 1.0)
    angle = np.arctan2(sin, cos)
    factor = np.where(sin > 1e-12, angle / np.maximum(sin, 1e-12), 1.0)
    return vee * factor[..., None]


def flame_forward_np(model: FlameModel, shape, expression, pose, translation=None) -> tuple[np.ndarray, np.ndarray]:
    """Batched FLAME in float64 numpy: returns vertices (B, V, 3) and joints (B, 5, 3)."""
    pose = None if pose is None else np.asarray(pose, dtype=np.float64)
    shape = None if shape is None else np.asarray(shape, dtype=np.float64)
    expression = None if expression is None else np.asarray(expression, dtype=np.float64)
    translation = None if translation is None else np.asarray(translation, dtype=np.float64)
    batch = _check_inputs(model, shape, expression, pose, translation)
    v = model.num_vertices

    shaped = np.broadcast_to(model.v_template, (batch, v, 3)).astype(np.float64)
    if shape is not None and shape.shape[1]:
        shaped = shaped + np.einsum("vck,bk->bvc", model.shapedirs[:, :, :shape.shape[1]], shape)
    if expression is not None and expression.shape[1]:
        shaped = shaped + np.einsum("vck,bk->bvc", model.exprdirs[:, :, :expression.shape[1]], expression)
    rest_joints = np.einsum("jv,bvc->bjc", model.J_regressor, shaped)

    rot = rodrigues_np(pose.reshape(batch, NUM_JOINTS, 3))  # (B, 5, 3, 3)
    features = (rot[:, 1:] - np.eye(3)).reshape(batch, -1)  # (B, 36)
    posed = shaped + (features @ model.posedirs).reshape(batch, v, 3)

    parents = model.parents
    world = np.zeros((batch, NUM_JOINTS, 4, 4))
    for j in range(NUM_JOINTS):
        local = np.zeros((batch, 4, 4))
        local[:, :3, :3] = rot[:, j]
        local[:, :3, 3] = rest_joints[:, j] - (rest_joints[:, parents[j]] if j else 0.0)
        local[:, 3, 3] = 1.0
        world[:, j] = local if j == 0 else world[:, parents[j]] @ local
    joints = world[:, :, :3, 3].copy()
    skin = world.copy()
    skin[:, :, :3, 3] -= np.einsum("bjrc,bjc->bjr", world[:, :, :3, :3], rest_joints)

    blended = np.einsum("vj,bjrc->bvrc", model.weights, skin)  # (B, V, 4, 4)
    vertices = np.einsum("bvrc,bvc->bvr", blended[:, :, :3, :3], posed) + blended[:, :, :3, 3]
    if translation is not None:
        vertices = vertices + translation[:, None, :]
        joints = joints + translation[:, None, :]
    return vertices, joints


# ----------------------------------------------------------------------------------------------------------------
# torch


def rodrigues_torch(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3); the same formula as `rodrigues_np`, with finite gradients at zero."""
    theta2 = (aa * aa).sum(-1)
    small = theta2 < _SMALL_ANGLE ** 2
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    safe = torch.sqrt(safe2)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta2 / 24.0, 2.0 * torch.sin(safe / 2.0) ** 2 / safe2)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


class FlameLayer(nn.Module):
    """FLAME as a torch module; `forward(shape, expression, pose, translation=None) -> (vertices, joints)`."""

    def __init__(self, model: FlameModel, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.model_info = {"edition": model.edition, "sha256": model.sha256, "units": model.units}
        self.num_shape = model.num_shape
        self.num_expression = model.num_expression
        self._model = model  # for input checks only

        def buf(name, array, as_dtype=dtype):
            self.register_buffer(name, torch.as_tensor(np.array(array), dtype=as_dtype))

        buf("v_template", model.v_template)
        buf("shapedirs", model.shapedirs)
        buf("exprdirs", model.exprdirs)
        buf("posedirs", model.posedirs)
        buf("J_regressor", model.J_regressor)
        buf("lbs_weights", model.weights)
        buf("faces", model.f, torch.int64)
        self.parents = [int(p) for p in model.parents]

    def forward(self, shape, expression, pose, translation=None):
        _check_inputs(self._model, shape, expression, pose, translation)
        dtype = self.v_template.dtype
        pose = pose.to(dtype)
        batch = pose.shape[0]
        v = self.v_template.shape[0]

        shaped = self.v_template.expand(batch, v, 3)
        if shape is not None and shape.shape[1]:
            shaped = shaped + torch.einsum("vck,bk->bvc", self.shapedirs[:, :, :shape.shape[1]], shape.to(dtype))
        if expression is not None and expression.shape[1]:
            shaped = shaped + torch.einsum("vck,bk->bvc", self.exprdirs[:, :, :expression.shape[1]],
                                           expression.to(dtype))
        rest_joints = torch.einsum("jv,bvc->bjc", self.J_regressor, shaped)

        rot = rodrigues_torch(pose.reshape(batch, NUM_JOINTS, 3))
        eye = torch.eye(3, dtype=dtype, device=pose.device)
        features = (rot[:, 1:] - eye).reshape(batch, -1)
        posed = shaped + (features @ self.posedirs).reshape(batch, v, 3)

        bottom = torch.zeros(batch, 1, 4, dtype=dtype, device=pose.device)
        bottom[:, 0, 3] = 1.0
        world = []
        for j, parent in enumerate(self.parents):
            offset = rest_joints[:, j] - (rest_joints[:, parent] if j else 0.0)
            local = torch.cat([torch.cat([rot[:, j], offset[:, :, None]], 2), bottom], 1)
            world.append(local if j == 0 else world[parent] @ local)
        world = torch.stack(world, 1)  # (B, 5, 4, 4)
        joints = world[:, :, :3, 3]
        skin_t = world[:, :, :3, 3] - torch.einsum("bjrc,bjc->bjr", world[:, :, :3, :3], rest_joints)

        rot_blend = torch.einsum("vj,bjrc->bvrc", self.lbs_weights, world[:, :, :3, :3])
        t_blend = torch.einsum("vj,bjr->bvr", self.lbs_weights, skin_t)
        vertices = torch.einsum("bvrc,bvc->bvr", rot_blend, posed) + t_blend
        if translation is not None:
            vertices = vertices + translation.to(dtype)[:, None, :]
            joints = joints + translation.to(dtype)[:, None, :]
        return vertices, joints


class FlameExpressionLayer(nn.Module):
    """(B, 53) FLAME parameters (50 expression + 3 jaw axis-angle) -> (B, V, 3) vertices.

    The jaw turns the vertices it skins (`jaw_weights`) about the fixed `jaw_joint`; the rest of the head stays.
    `shapedirs` (V, 3, K) ends with the expression basis: its last `num_expression` columns are used.
    """

    def __init__(self, v_template, shapedirs, jaw_joint, jaw_weights, num_expression: int = PARAM_EXPRESSION):
        super().__init__()
        shapedirs = np.asarray(shapedirs, dtype=np.float32)
        if shapedirs.ndim != 3 or shapedirs.shape[2] < num_expression:
            raise InputError(f"The FLAME shapedirs must be (V, 3, >= {num_expression}), got {shapedirs.shape}.")
        self.register_buffer("v_template", torch.as_tensor(np.asarray(v_template, dtype=np.float32)))
        self.register_buffer("expr_dirs", torch.as_tensor(shapedirs[:, :, -num_expression:].copy()))
        self.register_buffer("jaw_joint", torch.as_tensor(np.asarray(jaw_joint, dtype=np.float32)))
        self.register_buffer("jaw_weights", torch.as_tensor(np.asarray(jaw_weights, dtype=np.float32)))
        v = self.v_template.shape[0]
        if self.v_template.shape != (v, 3) or self.expr_dirs.shape[0] != v or self.jaw_weights.shape != (v,) \
                or self.jaw_joint.shape != (3,):
            raise InputError("The FLAME model arrays disagree in their number of vertices or shapes.")
        self.num_expression = num_expression

    @classmethod
    def from_model(cls, model: FlameModel) -> "FlameExpressionLayer":
        """The layer of a full FLAME model: its template, its first 50 expression directions, its jaw joint at rest
        and its jaw skinning weights (pose correctives and the joint's shift with expression are left out)."""
        if model.num_expression < PARAM_EXPRESSION:
            raise InputError(f"The FLAME model has {model.num_expression} expression directions; training needs "
                             f"{PARAM_EXPRESSION}.")
        joint = np.asarray(model.J_regressor, dtype=np.float64)[JAW_JOINT] @ model.v_template
        return cls(model.v_template, model.exprdirs[:, :, :PARAM_EXPRESSION], joint, model.weights[:, JAW_JOINT])

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        expr, jaw = params[..., :self.num_expression], params[..., self.num_expression:self.num_expression + 3]
        shaped = self.v_template + torch.einsum("bk,vck->bvc", expr, self.expr_dirs)
        rot = rodrigues_torch(jaw)  # (B, 3, 3)
        local = shaped - self.jaw_joint
        rotated = torch.einsum("bij,bvj->bvi", rot, local) + self.jaw_joint
        w = self.jaw_weights[None, :, None]
        return w * rotated + (1.0 - w) * shaped


def load_flame_model(path: str | Path) -> FlameExpressionLayer:
    """Training's FLAME layer from a compact npz (COMPACT_KEYS) or from any FLAME file `load_flame` reads."""
    path = Path(path)
    if not zipfile.is_zipfile(path):  # a pickled FLAME model (or no file: load_flame says which)
        return FlameExpressionLayer.from_model(load_flame(path))
    try:
        with np.load(path, allow_pickle=False) as f:
            compact = {k: f[k] for k in COMPACT_KEYS} if "jaw_joint" in f.files else None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"Cannot read the FLAME model {path} (needs {', '.join(COMPACT_KEYS)}): {exc}.") from None
    if compact is None:
        return FlameExpressionLayer.from_model(load_flame(path))
    return FlameExpressionLayer(**compact)
