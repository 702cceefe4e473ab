"""The key-expression generator: text (+ start expression, + side) -> one key expression, with a CVAE latent.

Query tokens (a learned output query, the start expression, the side, the latent sample) go through IFED's
cross-attention stack over the text tokens; the output query becomes the expression. ARKit outputs are weights in
[0, 1] (sigmoid); FLAME outputs are 50 signed expression coefficients and 3 jaw axis-angle values (scaled tanh).

The latent: a posterior q(z | text, target expression) during training, a prior p(z | text, start) at run time,
KL(q || p) between them. Sampling z = mu_p + sigma_p * eps with eps from a seeded torch.Generator gives plausible
variants per seed and exactly the same output for the same seed.

The AU head (ARKit only, `au_head`): from the pooled text, which FACS AUs are present (sigmoid) and how strongly.
Trained on the concepts' AU tables, it lets a word never seen in training compose its face from the AUs its meaning
shares with trained words. With `au_compose` "union" the generated key keeps the decoder's sample and adds every AU
the head finds present at the head's intensity (faces unite AUs; they do not average them); "gate" also fades the
decoder's channels that no likely AU drives; "off" uses the decoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from .au_space import AUS, au_channel_matrix
from .functional import forward
from .ifed import IFED, IFEDConfig

SIDE_INDEX = {None: 0, "both": 0, "left": 1, "right": 2}
FLAME_EXPR_SCALE = 3.0
FLAME_JAW_SCALE = 0.6
AU_COMPOSE = ("off", "union", "gate")
AU_PRESENT = 0.5  # head probability above which an AU is composed into the key


@dataclass(frozen=True)
class GeneratorConfig:
    z_dim: int = 16
    free_bits: float = 0.0  # nats per latent dimension the KL term does not charge for (keeps the latent in use)
    output: str = "arkit"  # "arkit" (sigmoid weights) | "flame" (50 expression + 3 jaw)
    au_head: bool = False  # predict the text's FACS AUs (presence, intensity) beside the key; ARKit only
    au_compose: str = "off"  # how the AU head enters the generated key: "off" | "union" | "gate" (module docstring)


class KeyGenerator(nn.Module):
    def __init__(self, ifed_cfg: IFEDConfig, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.ifed = IFED(ifed_cfg)
        d, e = ifed_cfg.d, ifed_cfg.expr_dim
        self.query = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.start_in = nn.Linear(e, d)
        self.side_emb = nn.Embedding(3, d)
        self.z_in = nn.Linear(cfg.z_dim, d)
        self.prior = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 2 * cfg.z_dim))
        self.posterior = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 2 * cfg.z_dim))
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, e))
        if cfg.au_compose not in AU_COMPOSE:
            raise ValueError(f"au_compose must be one of {AU_COMPOSE}, not {cfg.au_compose!r}")
        self.au = None
        if cfg.au_head and cfg.output == "arkit":
            self.au = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2 * len(AUS)))
            self.register_buffer("au_matrix", torch.as_tensor(au_channel_matrix()), persistent=False)

    # ---- pieces -----------------------------------------------------------------------------------------------
    def prior_params(self, pooled_text, start):
        return self._prior(pooled_text, forward(self.start_in, start))

    def _prior(self, pooled_text, start_query):
        mu, logvar = forward(self.prior, torch.cat([pooled_text, start_query], -1)).chunk(2, -1)
        return mu, logvar.clamp(-8.0, 4.0)

    def posterior_params(self, pooled_text, target):
        pooled_expr, _ = self.ifed.encode_expression(target[:, None, :])
        mu, logvar = self.posterior(torch.cat([pooled_text, pooled_expr], -1)).chunk(2, -1)
        return mu, logvar.clamp(-8.0, 4.0)

    def decode(self, text, mask, start, side, z):
        """text features (B, L, d), mask (B, L), start (B, E), side (B,) long, z (B, z_dim) -> (B, E) output."""
        return self._decode(text, mask, forward(self.start_in, start), side, z)

    def _decode(self, text, mask, start_query, side, z):
        b = start_query.shape[0]
        queries = torch.cat([self.query.expand(b, -1, -1), start_query[:, None],
                             forward(self.side_emb, side)[:, None], forward(self.z_in, z)[:, None]], 1)
        h = self.ifed.attend(queries, text, mask)[:, 0]
        return self.activate(forward(self.out, h))

    def activate(self, raw):
        if self.cfg.output == "arkit":
            return torch.sigmoid(raw)
        expr, jaw = raw[..., :-3], raw[..., -3:]
        return torch.cat([FLAME_EXPR_SCALE * torch.tanh(expr / FLAME_EXPR_SCALE),
                          FLAME_JAW_SCALE * torch.tanh(jaw / FLAME_JAW_SCALE)], -1)

    def au_predict(self, pooled_text):
        """(B, d) pooled text -> presence logits (B, len(AUS)) and intensities in [0, 1] (B, len(AUS))."""
        logits, raw = forward(self.au, pooled_text).chunk(2, -1)
        return logits, torch.sigmoid(raw)

    def compose(self, decoded, pooled_text, side):
        """The decoder's key combined with the AUs the head finds in the text (`au_compose`, module docstring)."""
        if self.au is None or self.cfg.au_compose == "off":
            return decoded
        logits, intensity = self.au_predict(pooled_text)
        prob = torch.sigmoid(logits)
        matrix = self.au_matrix[side]  # (B, AUs, channels) for each row's side
        present = (prob > AU_PRESENT).to(decoded.dtype) * intensity
        composed = torch.bmm(present[:, None, :], matrix)[:, 0].clamp(0.0, 1.0)  # what einsum("ba,bac->bc") runs
        if self.cfg.au_compose == "gate":
            support = (prob[:, :, None] * (matrix > 0)).amax(1)  # the likeliest AU driving each channel
            decoded = decoded * (support / AU_PRESENT).clamp(max=1.0)
        return torch.maximum(decoded, composed)

    # ---- training and inference -------------------------------------------------------------------------------
    def forward_train(self, tokens, mask, start, side, target, noise):
        """Returns dict with prediction from the posterior sample, from the prior mean, KL, and the text latents."""
        text, pooled, z_t = self.ifed.encode_text(tokens, mask)
        mu_p, lv_p = self.prior_params(pooled, start)
        mu_q, lv_q = self.posterior_params(pooled, target)
        z = mu_q + (0.5 * lv_q).exp() * noise
        pred = self.decode(text, mask, start, side, z)
        pred_prior = self.decode(text, mask, start, side, mu_p)
        kl_dims = 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1.0).mean(0)
        kl_loss = kl_dims.clamp_min(self.cfg.free_bits).sum()
        out = {"pred": pred, "pred_prior": pred_prior, "kl": kl_dims.sum(), "kl_loss": kl_loss, "z_t": z_t,
               "pooled": pooled}
        if self.au is not None:
            out["au_logits"], out["au_intensity"] = self.au_predict(pooled)
        return out

    @torch.no_grad()
    def generate(self, tokens, mask, start, side, eps, temperature: float = 1.0):
        """Sample from the prior: eps (B, z_dim) standard normal noise (seeded by the caller)."""
        text, pooled, z_t = self.ifed.encode_text(tokens, mask)
        return self.sample(text, pooled, mask, start, side, eps, temperature), z_t

    @torch.no_grad()
    def sample(self, text, pooled, mask, start, side, eps, temperature: float = 1.0, memory=None, reading=None):
        """`generate` from text already through `ifed.encode_text` (features, pooled): the run time encodes all
        segments at once and samples one segment position at a time. The start is projected once for the prior
        and the decoder's query alike. With an AU memory (models/au_memory.py) and what it read in the texts
        (`memory.read`), novel texts take the memory's key."""
        start_query = forward(self.start_in, start)
        mu_p, lv_p = self._prior(pooled, start_query)
        z = mu_p + temperature * (0.5 * lv_p).exp() * eps
        decoded = self._decode(text, mask, start_query, side, z)
        composed = self.compose(decoded, pooled, side)
        return composed if memory is None else memory.apply(reading, decoded, composed)


def gram_matrix(deltas) -> torch.Tensor:
    """G = D D^T for deltas (C, V, 3): ||D^T (w - w*)||^2 = (w - w*)^T G (w - w*) exactly, in metres^2."""
    d = torch.as_tensor(np.array(deltas, dtype=np.float64)).reshape(deltas.shape[0], -1)
    return (d @ d.T).float()


def vertex_loss(pred: torch.Tensor, target: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Batch mean of (w - w*)^T G (w - w*): the squared distance between the two meshes, in the units of `gram`
    (training normalises G to mean diagonal 1 so this loss is on the scale of the summed squared weight error)."""
    diff = pred - target
    return ((diff @ gram) * diff).sum(-1).mean()


def weight_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target) * pred.shape[-1]
