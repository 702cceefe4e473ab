"""FLAME-space data: a minimal FLAME expression layer and the sequence file format training accepts.

A FLAME model file here is an .npz with
  v_template (V, 3)   the template mesh,
  shapedirs  (V, 3, K) blendshape basis whose last `num_expression` (default 50) columns are the expression basis
                       (a full FLAME shapedirs has 300 shape + 100 expression columns; pass only what you have),
  jaw_joint  (3,)      the jaw joint's rest position,
  jaw_weights (V,)     the jaw's linear-blend-skinning weight per vertex (the rest goes to the fixed head/neck).
Users convert their own FLAME model to this (FLAME files cannot be redistributed); the tests build a random one.

A sequence file is an .npz with expression (T, 50), jaw_pose (T, 3) axis-angle, and text (a string array of one
or more instructions describing it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..rigs.flame_layer import rodrigues_torch

NUM_EXPRESSION = 50
FLAME_DIM = NUM_EXPRESSION + 3


class FlameExpressionLayer(nn.Module):
    """(B, 53) FLAME parameters (50 expression + 3 jaw axis-angle) -> (B, V, 3) vertices."""

    def __init__(self, v_template, shapedirs, jaw_joint, jaw_weights, num_expression: int = NUM_EXPRESSION):
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
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("v_template", "shapedirs", "jaw_joint", "jaw_weights")}
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"Cannot read the FLAME model {path} (needs v_template, shapedirs, jaw_joint, jaw_weights): "
                         f"{exc}.") from None
    return FlameExpressionLayer(**arrays)


@dataclass(frozen=True)
class FlameSequence:
    frames: np.ndarray  # (T, 53) float32
    texts: tuple[str, ...]


def load_flame_sequences(folder: str | Path) -> list[FlameSequence]:
    folder = Path(folder)
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise InputError(f"No FLAME sequence files (*.npz) in {folder}.")
    out = []
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as f:
                expr = np.asarray(f["expression"], dtype=np.float32)
                jaw = np.asarray(f["jaw_pose"], dtype=np.float32)
                texts = tuple(str(t) for t in np.atleast_1d(f["text"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"Cannot read the FLAME sequence {path} (needs expression, jaw_pose, text): {exc}.") from None
        if expr.ndim != 2 or expr.shape[1] != NUM_EXPRESSION or jaw.shape != (expr.shape[0], 3) or expr.shape[0] < 2:
            raise InputError(f"The FLAME sequence {path} must hold expression (T, {NUM_EXPRESSION}) and jaw_pose (T, 3)"
                             f" with T >= 2; got {expr.shape} and {jaw.shape}.")
        out.append(FlameSequence(np.concatenate([expr, jaw], 1), texts))
    return out


def apex_index(frames: np.ndarray, start: np.ndarray | None = None) -> int:
    """The frame farthest from the first one: where the expression peaks."""
    ref = frames[0] if start is None else start
    return int(np.argmax(np.abs(frames - ref).sum(-1)))
