"""The AU memory: which FACS AUs a text names, read from the training phrases it resembles and from a head on its
sentence embedding, for texts unlike anything the model was trained on.

The decoder reproduces trained phrasings well but draws erratic faces for words it never saw; a lookup of the nearest
phrase is steadier there but snaps to one whole concept. The memory holds the frozen sentence embeddings of every
training phrase and the core AUs of its concept. For a text it takes the `top_k` most similar concepts (each by its
best phrase), weights them by softmax(cosine / temperature), and averages their core AUs into an AU vote; `heads`
small heads on the same embedding (each trained on the training phrases from its own seed,
`training/au_memory_stage.py`) give a second opinion, their mean probability. The AU presence is the vote weighted by
`vote` plus the heads' mean weighted by the rest; AUs above `present` then decide the key: the decoder's channels
survive only where such an AU drives them, and those AUs are united into it at their intensities. A mean over several
heads is steadier on words no head was trained on than one head, whose errors on them follow its seed.

Every text the memory holds or reads is embedded in `frame` ("{}": the text alone). A bare rare word's sentence
embedding sits among words of every kind, the same word in a frame such as "a facial expression of {}" among
descriptions of faces, where the training phrases are, so the vote and the heads reach it from closer. Embedding the
frame at run time costs a warm generate an encoder row per segment (configs/i2fet-memory-frame.toml); with
`frame_map` the memory holds its phrases in the frame but reads a text's plain embedding through `frame_map`, a linear
map the training stage fits from plain to framed embeddings of some 21,000 English words and the training phrases
(ridge regression), so reading costs one small matrix product.

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
import torch.nn.functional as F
from torch import nn

from .au_space import AUS, au_channel_matrix, unspoken_channels


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
    heads: int = 1  # AU heads, each fitted from its own seed; their mean probability is the heads' opinion
    vote: float = 0.5  # the neighbours' vote's weight in the AU presence (the heads' mean takes 1 - vote)
    content_words: bool = False  # read a segment's content words only (actions.content_text), for novelty and vote
    frame: str = "{}"  # the words every text the memory holds or reads is embedded in, "{}" where the text goes
    frame_map: bool = False  # read the frame through a fitted linear map, not the encoder (module docstring)
    prune_known: bool = False  # known texts too keep only the channels a present AU drives (module docstring)
    fallback: float = 0.0  # a novel text with no AU above `present` shows those within this fraction of its strongest
    roget: bool = False  # also hold Roget's 1911 emotion words under their concepts (training/roget.py)


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
        if cfg.frame_map:
            self.register_buffer("frame_map", torch.zeros(cfg.text_dim, cfg.text_dim))
        self.register_buffer("matrix", torch.as_tensor(au_channel_matrix()), persistent=False)
        self.register_buffer("unspoken", torch.as_tensor(unspoken_channels()), persistent=False)
        if cfg.heads < 1 or not 0.0 <= cfg.vote <= 1.0:
            raise ValueError(f"the AU memory needs at least one head and a vote weight in 0..1, not {cfg.heads} "
                             f"and {cfg.vote}")
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Dropout(0.3), nn.Linear(cfg.text_dim, cfg.hidden), nn.GELU(), nn.Dropout(0.5),
                          nn.Linear(cfg.hidden, 2 * a)) for _ in range(cfg.heads))
        self._stack_key: tuple = ()
        self._stack: tuple[torch.Tensor, ...] = ()

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
        if self.cfg.frame_map and not bool(self.frame_map.any()):
            return "its frame map is all zeros, which would read every text as nothing"
        return None

    def in_frame(self, sentences: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) plain unit sentence embeddings -> where the memory's frame puts them: through the frame map
        with `frame_map`, else as they are (the run time embedded them in the frame itself, if it has one)."""
        if not self.cfg.frame_map:
            return sentences
        return F.normalize(sentences @ self.frame_map, dim=-1)

    def head_predict(self, sentences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, text_dim) unit sentence embeddings -> the heads' mean presence probabilities and mean intensities in
        [0, 1], each (B, AUs): every head in one pass of two stacked layers, without dropout (a run-time path; the
        training stage fits each head on its own)."""
        first, first_bias, last, last_bias = self._stacked_heads()
        hidden = F.gelu(F.linear(sentences, first, first_bias)).view(sentences.shape[0], len(self.heads), -1)
        outputs = torch.baddbmm(last_bias[:, None, :], hidden.transpose(0, 1), last.transpose(1, 2))
        return torch.sigmoid(outputs).mean(0).chunk(2, -1)

    def _stacked_heads(self) -> tuple[torch.Tensor, ...]:
        """The heads' first layers concatenated and last layers stacked, built again whenever a weight changes (a
        load, a fit, a move to another device): five heads one by one cost a warm generate 0.3 ms per segment."""
        key = tuple((p.data_ptr(), p._version) for p in self.heads.parameters())
        if self._stack_key != key:
            first, last = [head[1] for head in self.heads], [head[-1] for head in self.heads]
            self._stack = tuple(t.detach() for t in (
                torch.cat([layer.weight for layer in first]), torch.cat([layer.bias for layer in first]),
                torch.stack([layer.weight for layer in last]), torch.stack([layer.bias for layer in last])))
            self._stack_key = key
        return self._stack

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
        head_prob, head_intensity = self.head_predict(sentences)
        prob = self.cfg.vote * vote + (1.0 - self.cfg.vote) * head_prob
        intensity = torch.where(vote > 0, 0.5 * (voted_intensity + head_intensity), head_intensity)
        return prob, intensity, top[:, 0] < self.novelty

    def present(self, prob: torch.Tensor, novel: torch.Tensor) -> torch.Tensor:
        """(B, AUs) bool: the AUs above `present`; with `fallback`, a novel text that has none keeps its strongest
        (those at least `fallback` times its most probable AU) rather than reading as no face at all. A known text
        with none stays so: the phrases it resembles show no AU (neutral and its phrasings); so does an AU of probability
        0, which bench_memory_rules' rules give every AU they leave out."""
        present = prob > self.cfg.present
        if self.cfg.fallback > 0.0:
            empty = novel[:, None] & ~present.any(1, keepdim=True)
            strongest = (prob >= self.cfg.fallback * prob.amax(1, keepdim=True)) & (prob > 0)
            present = present | (empty & strongest)
        return present

    def read(self, sentences: torch.Tensor, side: torch.Tensor) -> "MemoryReading":
        """What the memory finds in each text, whatever key it will meet: read once for all of an instruction's
        segments, not once per segment position."""
        prob, intensity, novel = self.predict(self.in_frame(sentences))
        matrix = self.matrix[side]
        return self.reading(self.present(prob, novel), intensity, matrix, novel)

    def reading(self, present: torch.Tensor, intensity: torch.Tensor, matrix: torch.Tensor,
                novel: torch.Tensor) -> "MemoryReading":
        """The reading of (B, AUs) `present` AUs at `intensity` on each row's side (`matrix`, B x AUs x channels):
        also how bench_memory_rules builds one from AUs it chose."""
        present = present.to(matrix.dtype)
        composed = torch.bmm((present * intensity)[:, None, :], matrix)[:, 0].clamp(0.0, 1.0)
        driven = (present[:, :, None] * (matrix > 0)).amax(1)
        if self.cfg.prune_known:
            driven = torch.maximum(driven, self.unspoken)
        return MemoryReading(composed, driven, novel)

    def apply(self, reading: "MemoryReading", decoded: torch.Tensor, otherwise: torch.Tensor) -> torch.Tensor:
        """The key for each row: for novel texts, the decoder's channels that a present AU drives, united with those
        AUs on the row's side; for the others, `otherwise` (with `prune_known`, only its channels a present AU
        drives; with it, the unspoken channels are kept in both)."""
        if self.cfg.prune_known:
            otherwise = otherwise * reading.driven
        return torch.where(reading.novel[:, None], torch.maximum(decoded * reading.driven, reading.composed), otherwise)


@dataclass(frozen=True)
class MemoryReading:
    composed: torch.Tensor  # (B, channels): the present AUs at their intensities, on each row's side
    driven: torch.Tensor  # (B, channels): 1 where a present AU drives the channel (or, with prune_known, none speaks)
    novel: torch.Tensor  # (B,) bool: the text is unlike every training phrase

    def rows(self, index) -> "MemoryReading":
        return MemoryReading(self.composed[index], self.driven[index], self.novel[index])


__all__ = ["AUMemory", "MemoryConfig", "MemoryReading"]
