"""What limits the transfer's agreement with ICT-FaceKit's artist-made shapes: per shape, the transfer's relative error
and cosine beside two upper bounds that share its correspondence (default head -> ICT), so the gap between them says
whether the correspondence or the default head's own shapes hold the numbers back.

Run: .venv/bin/python benchmarks/transfer_limits.py [--iterations N]

* "3x3 map": the transferred shape after the best single linear map of its deltas (3x3, least squares against ICT's
  shape): what a per-shape change of direction and size (a jaw opening more downward than forward, a stronger blink)
  could reach, with the default head's spatial pattern of motion kept.
* "any source": ICT's shape projected onto everything the correspondence can produce (least squares over every
  possible set of default-head deltas, carried by the same matches, barycentrics, deformation gradients and
  confidence): what a default head with ICT's own shapes could reach through this correspondence. The gap between it
  and the transfer is the default head's shapes differing from ICT's artists'; its own error is the correspondence's.
No gate: this prints measurements for the README and the issue.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from transfer_heads import ict_scores, load_ict  # noqa: E402
from model_runtime.expression_space import ARKIT_CHANNELS  # noqa: E402
from model_runtime.heads.head import load_default_head  # noqa: E402
from model_runtime.rigs.shape_transfer import transfer_default_head_shapes  # noqa: E402


def correspondence(result, source_count: int):
    """The transfer's linear map F (source deltas (K, Vs, 3) -> target deltas (K, Vt, 3)) and its transpose."""
    reg = result.registration
    found = result.source_triangle >= 0
    corners = load_default_head().triangles().astype(np.int64)[np.maximum(result.source_triangle, 0)]  # (Vt, 3)
    weight = np.where(found[:, None], result.bary, 0.0) * result.confidence[:, None]  # (Vt, 3)
    rows = np.repeat(np.arange(corners.shape[0]), 3)
    matrix = torch.sparse_coo_tensor(np.stack([rows, corners.ravel()]), weight.ravel(),
                                     (corners.shape[0], source_count), check_invariants=True).coalesce()
    transposed = matrix.t().coalesce()
    jac = reg.jacobian  # (Vs, 3, 3)
    frame = reg.scale * reg.rotation  # source -> target directions

    def spread(m, x):  # (K, n, 3) through an (m, n) sparse matrix
        k, n, _ = x.shape
        flat = torch.as_tensor(np.ascontiguousarray(x.transpose(1, 0, 2).reshape(n, k * 3)))
        return torch.sparse.mm(m, flat).numpy().reshape(-1, k, 3).transpose(1, 0, 2)

    def forward(d):
        return spread(matrix, np.einsum("vij,kvj->kvi", jac, d)) @ frame.T

    def backward(t):
        return np.einsum("vji,kvj->kvi", jac, spread(transposed, t @ frame))

    return forward, backward


def project(forward, backward, truth, face, source_count, iterations: int, ridge: float = 1e-6):
    """argmin_D ‖F(D) − truth‖² on the face vertices + ridge‖D‖² by conjugate gradients; returns F(D)."""
    mask = face[None, :, None].astype(np.float64)

    def normal(d):
        return backward(forward(d) * mask) + ridge * d

    rhs = backward(truth * mask)
    x = np.zeros((truth.shape[0], source_count, 3))
    r = rhs - normal(x)
    p = r.copy()
    rs = (r * r).sum(axis=(1, 2))
    for _ in range(iterations):
        ap = normal(p)
        step = rs / np.maximum((p * ap).sum(axis=(1, 2)), 1e-300)
        x += step[:, None, None] * p
        r -= step[:, None, None] * ap
        new = (r * r).sum(axis=(1, 2))
        p = r + (new / np.maximum(rs, 1e-300))[:, None, None] * p
        rs = new
    return forward(x)


def best_linear(pred, truth, face):
    """Each shape after its own least-squares 3x3 map onto the truth (face vertices)."""
    out = np.empty_like(pred)
    for k in range(pred.shape[0]):
        a, b = pred[k][face], truth[k][face]
        m, *_ = np.linalg.lstsq(a, b, rcond=None)
        out[k] = pred[k] @ m
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="conjugate-gradient steps of the projection")
    args = parser.parse_args()
    head = load_ict(whole=True)
    result = transfer_default_head_shapes(head.vertices, head.triangles)
    rows = [ARKIT_CHANNELS.index(c) for c in head.channels]
    ours = result.deltas.astype(np.float64)
    source_count = load_default_head().num_vertices
    forward, backward = correspondence(result, source_count)
    plain = np.zeros_like(ours)
    plain[rows] = forward(load_default_head().deltas[rows].astype(np.float64))
    mapped = np.zeros_like(ours)
    mapped[rows] = best_linear(ours[rows], head.truth, head.face)
    bound = np.zeros_like(ours)
    bound[rows] = project(forward, backward, head.truth, head.face, source_count, args.iterations)
    table = {}
    for label, deltas in (("transfer", ours), ("correspondence alone", plain), ("3x3 map", mapped),
                          ("any source", bound)):
        table[label] = ict_scores(deltas, head)
        err, cos = table[label]
        print(f"{label:22s} mean relative error {err.mean():.3f}, mean cosine {cos.mean():.3f}")
    err, cos = table["transfer"]
    print("\nworst shapes (transfer error / cosine; 3x3 map cosine; any-source error / cosine):")
    for k in np.argsort(-err)[:12]:
        print(f"  {head.channels[k]:20s} {err[k]:.2f} / {cos[k]:.2f}; {table['3x3 map'][1][k]:.2f}; "
              f"{table['any source'][0][k]:.2f} / {table['any source'][1][k]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
