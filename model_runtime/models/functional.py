"""`forward(module, x)`: a module's output through its functional form, for the run time's hot paths.

A run-time generate pushes one or a few rows through dozens of small layers; `Module.__call__` (hook bookkeeping,
attribute lookups) then costs more than the arithmetic. For the plain layers these models are built of, the functional
call below is exactly what the module's own forward runs (the same kernel on the same tensors, so the same bits);
anything else is called as a module. Hooks are not run, and the run time attaches none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` without `Module.__call__` for the plain layer types; any other module called as usual."""
    kind = type(module)
    if kind is nn.Linear:
        return F.linear(x, module.weight, module.bias)
    if kind is nn.Sequential:
        for layer in module:
            x = forward(layer, x)
        return x
    if kind is nn.LayerNorm:
        return F.layer_norm(x, module.normalized_shape, module.weight, module.bias, module.eps)
    if kind is nn.GELU:
        return F.gelu(x, approximate=module.approximate)
    if kind is nn.Embedding:
        return F.embedding(x, module.weight, module.padding_idx, module.max_norm, module.norm_type,
                           module.scale_grad_by_freq, module.sparse)
    return module(x)
