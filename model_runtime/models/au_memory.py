"""The AU memory: which FACS AUs a text names, read from the training phrases it resembles and from a head on its
sentence embedding, for texts unlike anything the model was trained on.

The decoder reproduces trained phrasings well but draws erratic faces for words it never saw; a lookup of the nearest
phrase is steadier there but snaps to one whole concept. The memory holds the frozen sentence embeddings of every
training phrase and the core AUs of its concept. For a text it takes the `top_k` most similar concepts (each by its
best phrase), weights them by softmax(cosine / temperature), and averages their core AUs into an AU vote; a small
head on the same embedding (trained on the training phrases, `training/au_memory_stage.py`) gives a second opinion,
and the two are averaged. AUs above `present` then decide the key: the decoder's channels survive only where such an
AU drives them, and those AUs are united into it at their intensities.

It takes the key only for novel texts: those whose nearest training phrase is less similar than `novelty`, the
threshold that best tells a new concept from a new phrasing of a trained one on the training phrases themselves
(calibrated by the stage, stored with the weights). Everything else keeps the decoder's key (with the AU head's union),
and with `prune_known` only the channels of that key that a present AU drives: the decoder draws the AUs its samples
showed as variants (and, more rarely, AUs of neighbouring concepts) even for a trained phrase, which retrieval never
adds and the text did not ask for. With `prune_known` the channels no AU of the memory can speak for (a wink's one
closed eye, the jaw and mouth sideways: au_space.unspoken_channels) stay the decoder's, for novel texts too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .au_space import AUS, au_channel_matrix, unspoken_channels
from .functional import forward


@dataclass(frozen=True)
class MemoryConfig:
    enabled: bool = False
    phrases: int = 0  # training phrases held (rows of `keys`); this and the next three are set by the training stage
    concepts: int = 0  # training concepts they belong to
    longest: int = 0  # most phrases of one concept (columns of `groups`)
    text_dim: int = 384  # the sentence embedding's size
    temperature: float = 0.2
    top_k: int = 20
    present: float = 0.25
    hidden: int = 128
    content_words: bool = False  # read a segment's content words only (actions.content_text), for novelty and vote
    prune_known: bool = False  # known texts too keep only the channels a present AU drives (module docstring)


class AUMemory(nn.Module):
    def __init__(self, cfg: MemoryConfig):
        super().__init__()
        self.cfg = cfg
        a = len(AUS)
        self.register_buffer("keys", torch.zeros(cfg.phrases, cfg.text_dim))
        self.register_buffer("groups", torch.full((cfg.concepts, cfg.longest), -1, dtype=torch.long))
        self.register_buffer("core", torch.zeros(cfg.concepts, a))
        self.register_buffer("intensity", torch.zeros(cfg.concepts, a))
        self.register_buffer("novelty", torch.zeros(()))
        self.register_buffer("matrix", torch.as_tensor(au_channel_matrix()), persistent=False)
        self.register_buffer("unspoken", torch.as_tensor(unspoken_channels()), persistent=False)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(cfg.text_dim, cfg.hidden), nn.GELU(), nn.Dropout(0.5),
                                  nn.Linear(cfg.hidden, 2 * a))

    def problem(self) -> str | None:
        """What makes loaded buffers unusable (an index outside the phrases, a concept without a phrase, AU values
        outside [0, 1]), or None: shapes are checked by loading, these values are not."""
        g = self.groups
        if bool(((g < -1) | (g >= self.keys.shape[0])).any()) or bool((g[:, 0] < 0).any()):
            return "its concept-to-phrase table points outside its phrases"
        for name in ("core", "intensity"):
            values = getattr(self, name)
            if bool(((values < 0) | (values > 1)).any()):
                return f"its {name} table holds values outside 0..1"
        return None

    def head_predict(self, sentences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, text_dim) unit sentence embeddings -> presence logits and intensities in [0, 1], each (B, AUs)."""
        logits, raw = forward(self.head, sentences).chunk(2, -1)
        return logits, torch.sigmoid(raw)

    def concept_similarity(self, sentences: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) -> (B, concepts): each training concept's best cosine over its phrases."""
        sims = sentences @ self.keys.T
        per = sims[:, self.groups.clamp(min=0)]
        return per.masked_fill(self.groups < 0, float("-inf")).amax(-1)

    def predict(self, sentences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, text_dim) -> AU probabilities (B, AUs), intensities (B, AUs), and whether each text is novel (B,)."""
        scores = self.concept_similarity(sentences)
        top, idx = scores.topk(min(self.cfg.top_k, scores.shape[1]), dim=-1)
        weights = torch.softmax((top - top[:, :1]) / self.cfg.temperature, dim=-1)[..., None]
        core = self.core[idx]
        vote = (weights * core).sum(1)
        voted_intensity = (weights * core * self.intensity[idx]).sum(1) / vote.clamp_min(1e-6)
        logits, head_intensity = self.head_predict(sentences)
        prob = 0.5 * (vote + torch.sigmoid(logits))
        intensity = torch.where(vote > 0, 0.5 * (voted_intensity + head_intensity), head_intensity)
        return prob, intensity, top[:, 0] < self.novelty

    def compose(self, decoded: torch.Tensor, sentences: torch.Tensor, side: torch.Tensor,
                otherwise: torch.Tensor) -> torch.Tensor:
        """The key for each row: for novel texts, the decoder's channels that a present AU drives, united with those
        AUs on the row's side; for the others, `otherwise` (with `prune_known`, only its channels a present AU
        drives; with it, the unspoken channels are kept in both)."""
        prob, intensity, novel = self.predict(sentences)
        matrix = self.matrix[side]
        present = (prob > self.cfg.present).to(decoded.dtype)
        composed = torch.bmm((present * intensity)[:, None, :], matrix)[:, 0].clamp(0.0, 1.0)
        driven = (present[:, :, None] * (matrix > 0)).amax(1)
        if self.cfg.prune_known:
            driven = torch.maximum(driven, self.unspoken)
            otherwise = otherwise * driven
        return torch.where(novel[:, None], torch.maximum(decoded * driven, composed), otherwise)


__all__ = ["AUMemory", "MemoryConfig"]
