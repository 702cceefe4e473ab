"""The learned transition model: frames between two expressions that ease in and out and are not lock-step.

Every channel c follows  f_c(u) = start_c + (end_c - start_c) * S(u + k_c u (1 - u)),  u in [0, 1], where S is the
quadratic ease-in-out (zero velocity at both ends, least total |jerk| of rest-to-rest profiles; see features.ease) and
k_c in [-K, K] is a per-channel time warp
predicted by a small network from the start and end expressions and the segment's speed/manner words. The warp is
monotone and fixes 0 and 1, so f(0) = start and f(1) = end exactly, every frame lies between start and end (so
within [0, 1] for ARKit weights), and channels reach their half-way point at different times (k > 0 leads, k < 0 lags).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .features import MANNER_VOCAB, WARP_LIMIT, ease
from .functional import forward


@dataclass(frozen=True)
class TransitionConfig:
    expr_dim: int = 52
    hidden: int = 128
    manner_dim: int = len(MANNER_VOCAB)
    warp_limit: float = WARP_LIMIT


def ease_t(u: torch.Tensor) -> torch.Tensor:
    """Torch twin of features.ease (quadratic ease-in-out)."""
    u = u.clamp(0.0, 1.0)
    return torch.where(u < 0.5, 2.0 * u * u, 1.0 - 2.0 * (1.0 - u) * (1.0 - u))


class TransitionModel(nn.Module):
    def __init__(self, cfg: TransitionConfig):
        super().__init__()
        self.cfg = cfg
        e = cfg.expr_dim
        self.net = nn.Sequential(nn.Linear(3 * e + cfg.manner_dim, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, e))

    def warps(self, start: torch.Tensor, end: torch.Tensor, manner: torch.Tensor) -> torch.Tensor:
        """(B, E), (B, E), (B, M) -> per-channel warp coefficients (B, E) in [-K, K]."""
        x = torch.cat([start, end, end - start, manner], -1)
        return self.cfg.warp_limit * torch.tanh(forward(self.net, x))

    @staticmethod
    def progress(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """u (B, T) or (T,), k (B, E) -> per-channel progress (B, T, E) in [0, 1], 0 at u=0 and 1 at u=1."""
        if u.dim() == 1:
            u = u[None].expand(k.shape[0], -1)
        u = u[..., None]
        return ease_t(u + k[:, None, :] * u * (1.0 - u))

    def forward(self, start, end, manner, u):
        """Frames (B, T, E) at normalised times u."""
        k = self.warps(start, end, manner)
        return start[:, None] + (end - start)[:, None] * self.progress(u, k)


def fill_span(previous: np.ndarray, target: np.ndarray, length: int, k: np.ndarray) -> np.ndarray:
    """(length, E) frames 1..length of one transition (frame 0 is `previous`, frame `length` is exactly `target`)."""
    u = np.arange(1, length + 1, dtype=np.float64)[:, None] / length
    p = ease(u + k[None].astype(np.float64) * u * (1.0 - u))
    frames = previous[None].astype(np.float64) + (target - previous)[None].astype(np.float64) * p
    frames[-1] = target
    return frames.astype(np.float32)
