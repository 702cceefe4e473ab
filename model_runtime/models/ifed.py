"""IFED: the Instruction-driven Facial Expression Decomposer (a dual-branch transformer).

- Text branch: a small transformer over the frozen encoder's token embeddings (projected to `d`).
- Expression branch: a transformer over per-frame expression vectors (52 ARKit weights, or 53 FLAME parameters:
  50 expression + 3 jaw), with learned frame positions.
- Cross-attention: expression-side query tokens attend to the text tokens (`IFED.cross`); the generator decodes key
  expressions through it.
- Shared latent: the pooled text and pooled expression features are projected to one unit sphere and aligned with a
  contrastive (InfoNCE) loss whose positives are all pairs of the same concept in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .functional import forward


def _padding_bias(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, L) additive attention bias of a (B, L) token mask: 0 on tokens, -inf on padding, in `like`'s dtype and
    device (the form attention turns a boolean padding mask into anyway)."""
    return torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill(~mask, float("-inf"))


def _fastpath_enabled() -> bool:
    """torch's switch for its fused transformer kernels; torch before 2.3 has no switch and always takes them."""
    mha = getattr(torch.backends, "mha", None)
    return mha is None or mha.get_fastpath_enabled()


@dataclass(frozen=True)
class IFEDConfig:
    text_dim: int = 384
    expr_dim: int = 52
    d: int = 128
    heads: int = 4
    text_layers: int = 2
    expr_layers: int = 2
    cross_layers: int = 2
    latent: int = 64
    max_frames: int = 64
    dropout: float = 0.1


def _encoder(cfg: IFEDConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d, cfg.heads, dim_feedforward=cfg.d * 2, dropout=cfg.dropout,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, d), (B, L) bool True = real -> (B, d)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


class IFED(nn.Module):
    def __init__(self, cfg: IFEDConfig):
        super().__init__()
        self.cfg = cfg
        self.text_in = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, cfg.d))
        self.text_branch = _encoder(cfg, cfg.text_layers)
        self.expr_in = nn.Linear(cfg.expr_dim, cfg.d)
        self.expr_pos = nn.Parameter(torch.zeros(cfg.max_frames, cfg.d))
        self.expr_branch = _encoder(cfg, cfg.expr_layers)
        layer = nn.TransformerDecoderLayer(cfg.d, cfg.heads, dim_feedforward=cfg.d * 2, dropout=cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.cross = nn.TransformerDecoder(layer, cfg.cross_layers)
        self.text_norm = nn.LayerNorm(cfg.d)
        self.expr_norm = nn.LayerNorm(cfg.d)
        self.text_proj = nn.Linear(cfg.d, cfg.latent)
        self.expr_proj = nn.Linear(cfg.d, cfg.latent)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1/0.07), as in CLIP
        nn.init.normal_(self.expr_pos, std=0.02)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (B, L, text_dim), mask (B, L) -> text features (B, L, d), pooled (B, d), latent z_t (B, latent)."""
        x = forward(self.text_in, tokens.float())
        if self._fused_inference():
            h = self._text_branch_inference(x, mask)
        else:
            h = self.text_branch(x, src_key_padding_mask=~mask)
        h = forward(self.text_norm, h)
        pooled = masked_mean(h, mask)
        return h, pooled, F.normalize(forward(self.text_proj, pooled), dim=-1)

    def encode_expression(self, frames: torch.Tensor, mask: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, expr_dim), mask (B, T) -> pooled (B, d), latent z_e (B, latent)."""
        b, t, _ = frames.shape
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=frames.device)
        x = self.expr_in(frames) + self.expr_pos[:t]
        x = self.expr_norm(self.expr_branch(x, src_key_padding_mask=~mask))
        pooled = masked_mean(x, mask)
        return pooled, F.normalize(self.expr_proj(pooled), dim=-1)

    def _fused_inference(self) -> bool:
        """Whether torch's transformer modules take their fused inference kernels now (eval mode, no autograd, no
        autocast, the fast path left on, an even head count): only then may those kernels be called directly and give
        the modules' bits."""
        return (not self.training and not torch.is_grad_enabled() and not torch.is_autocast_enabled()
                and _fastpath_enabled() and self.cfg.heads % 2 == 0)

    def _text_branch_inference(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`self.text_branch` under inference, bit for bit: the fused layer kernel torch's encoder layers call on this
        path, with the padding mask in the form they give it, without their per-call checks (they walk every
        submodule looking for hooks), which cost more than the arithmetic on the run time's few short texts."""
        padding = _padding_bias(mask, x)
        for layer in self.text_branch.layers:
            attn = layer.self_attn
            x = torch._transformer_encoder_layer_fwd(
                x, attn.embed_dim, attn.num_heads, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight,
                attn.out_proj.bias, layer.activation_relu_or_gelu == 2, layer.norm_first, layer.norm1.eps,
                layer.norm1.weight, layer.norm1.bias, layer.norm2.weight, layer.norm2.bias, layer.linear1.weight,
                layer.linear1.bias, layer.linear2.weight, layer.linear2.bias, padding, 1)
        return x

    def attend(self, queries: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Expression-side query tokens (B, Q, d) attend to text features (B, L, d) -> (B, Q, d).

        The padding goes in as an additive memory mask, which is what attention makes of a key-padding mask anyway:
        torch's key-padding shape check imports sympy on its first call, 0.57 s of a cold `i2fet generate`."""
        b, q, heads, length = queries.shape[0], queries.shape[1], self.cfg.heads, mask.shape[1]
        blocked = _padding_bias(mask, queries)
        memory_mask = blocked[:, None, None, :].expand(b, heads, q, length)
        if self.training:
            return self.cross(queries, text, memory_mask=memory_mask.reshape(b * heads, q, length))
        return self._attend_eval(queries, text, memory_mask)  # the same values, without the copy

    def _attend_eval(self, queries: torch.Tensor, text: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """`self.cross` in eval mode, bit for bit: the same operations as torch's pre-norm decoder layers (its
        attention's packed projections, in its (length, batch, d) layout) without their per-call checks and
        identity dropouts, which cost as much as the arithmetic on the run time's few short rows."""
        b, q, d = queries.shape
        length, heads = text.shape[1], self.cfg.heads
        memory = text.transpose(0, 1)
        x = queries
        fast = self._fused_inference()
        for layer in self.cross.layers:
            h = forward(layer.norm1, x)
            if fast:  # the kernel the self-attention module calls here, without its per-call checks
                sa = layer.self_attn
                x = x + torch._native_multi_head_attention(
                    h, h, h, sa.embed_dim, sa.num_heads, sa.in_proj_weight, sa.in_proj_bias, sa.out_proj.weight,
                    sa.out_proj.bias, None, False, True, None)[0]
            else:
                x = x + layer.self_attn(h, h, h, need_weights=False)[0]
            attn = layer.multihead_attn
            w_q, w_kv = attn.in_proj_weight.split([d, 2 * d])
            b_q, b_kv = attn.in_proj_bias.split([d, 2 * d])
            h = F.linear(forward(layer.norm2, x).transpose(0, 1), w_q, b_q)
            kv = F.linear(memory, w_kv, b_kv).unflatten(-1, (2, d)).unsqueeze(0).transpose(0, -2).squeeze(-2)
            kv = kv.contiguous()
            h, k, v = (t.view(n, b * heads, d // heads).transpose(0, 1).view(b, heads, n, d // heads)
                       for t, n in ((h, q), (kv[0], length), (kv[1], length)))
            h = F.scaled_dot_product_attention(h, k, v, memory_mask)
            h = F.linear(h.permute(2, 0, 1, 3).reshape(b * q, d), attn.out_proj.weight, attn.out_proj.bias)
            x = x + h.view(q, b, d).transpose(0, 1)
            x = x + forward(layer.linear2, layer.activation(forward(layer.linear1, forward(layer.norm3, x))))
        return x

    def similarity(self, z_t: torch.Tensor, z_e: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities (B_t, B_e)."""
        return self.logit_scale.clamp(0.0, 4.6052).exp() * z_t @ z_e.T


def info_nce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with every same-label pair counted as positive (labels (B,) ints; logits (B, B))."""
    pos = (labels[:, None] == labels[None, :]).to(logits.dtype)
    target_rows = pos / pos.sum(1, keepdim=True)
    target_cols = pos / pos.sum(0, keepdim=True)
    loss_t = -(target_rows * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_e = -(target_cols * F.log_softmax(logits, dim=0)).sum(0).mean()
    return 0.5 * (loss_t + loss_e)
