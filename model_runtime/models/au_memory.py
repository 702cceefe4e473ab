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

With `glosses` every text it holds or reads is also read a second way, through a dictionary: the mean sentence
embedding of WordNet's definitions of its content words (glosses.py; the stage embeds the 26,200 definitions once and
stores them in `gloss_codes`) added to its own, so that a rare word meets the phrases its definition resembles. That
glossed reading has its own phrase keys (`gloss_keys`) and heads (`gloss_heads`), and the AU probabilities and
intensities are the means of the two readings': the plain reading is the memory without glosses, unchanged, and
each reading's errors on a new word are partly its own. A warm generate embeds no extra row for it.

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
    glosses: bool = False  # also read every text through the WordNet glosses of its words (module docstring)
    gloss_words: int = 0  # rows of the gloss table (glosses.vocabulary()); set by the training stage
    gloss_weight: float = 1.0  # in the glossed reading, the glosses' mean against the text's own embedding


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
        if cfg.glosses:  # the gloss embeddings, 8-bit with a scale per row: a quarter of float32's 40 MB
            self.register_buffer("gloss_codes", torch.zeros(cfg.gloss_words, cfg.text_dim, dtype=torch.int8))
            self.register_buffer("gloss_scale", torch.zeros(cfg.gloss_words))
            self.register_buffer("gloss_keys", torch.zeros(cfg.phrases, cfg.text_dim))
        self.register_buffer("matrix", torch.as_tensor(au_channel_matrix()), persistent=False)
        self.register_buffer("unspoken", torch.as_tensor(unspoken_channels()), persistent=False)
        if cfg.heads < 1 or not 0.0 <= cfg.vote <= 1.0:
            raise ValueError(f"the AU memory needs at least one head and a vote weight in 0..1, not {cfg.heads} "
                             f"and {cfg.vote}")
        self.heads = self._new_heads(cfg, a)
        self.gloss_heads = self._new_heads(cfg, a) if cfg.glosses else None
        self._stacks: dict[int, tuple] = {}

    @staticmethod
    def _new_heads(cfg: MemoryConfig, aus: int) -> nn.ModuleList:
        return nn.ModuleList(
            nn.Sequential(nn.Dropout(0.3), nn.Linear(cfg.text_dim, cfg.hidden), nn.GELU(), nn.Dropout(0.5),
                          nn.Linear(cfg.hidden, 2 * aus)) for _ in range(cfg.heads))

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
        if self.cfg.glosses:
            from ..glosses import vocabulary

            if self.cfg.gloss_words != len(vocabulary()):
                return (f"its gloss table has {self.cfg.gloss_words} rows but the dictionary beside the runtime has "
                        f"{len(vocabulary())} words")
            if not bool((self.gloss_scale > 0).all()):
                return "its gloss table holds empty rows"
        return None

    def in_frame(self, sentences: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) plain unit sentence embeddings -> where the memory's frame puts them: through the frame map
        with `frame_map`, else as they are (the run time embedded them in the frame itself, if it has one)."""
        if not self.cfg.frame_map:
            return sentences
        return F.normalize(sentences @ self.frame_map, dim=-1)

    def gloss_vectors(self, rows: list[list[int]]) -> torch.Tensor:
        """(B, text_dim): for each text, the unit mean of its words' gloss embeddings (rows of the gloss table,
        glosses.gloss_rows), or zeros when none of its words has a gloss."""
        out = torch.zeros(len(rows), self.cfg.text_dim, device=self.gloss_scale.device)
        for i, own in enumerate(rows):
            if own:
                index = torch.as_tensor(own, device=out.device)
                out[i] = F.normalize((self.gloss_codes[index].float() * self.gloss_scale[index, None]).mean(0), dim=-1)
        return out

    def with_glosses(self, sentences: torch.Tensor, glosses: torch.Tensor) -> torch.Tensor:
        """The glossed reading of (B, text_dim) unit embeddings (already in the memory's frame): each plus its text's
        gloss_vectors row, made unit again, as the training stage made `gloss_keys`."""
        return F.normalize(sentences + self.cfg.gloss_weight * glosses, dim=-1)

    def head_predict(self, sentences: torch.Tensor, heads: nn.ModuleList | None = None) -> tuple[torch.Tensor, ...]:
        """(B, text_dim) unit sentence embeddings -> the mean presence probabilities and mean intensities in [0, 1]
        of `heads` (default: `heads`), each (B, AUs): every head in one pass of two stacked layers, without dropout
        (a run-time path; the training stage fits each head on its own)."""
        heads = self.heads if heads is None else heads
        first, first_bias, last, last_bias = self._stacked(heads)
        hidden = F.gelu(F.linear(sentences, first, first_bias)).view(sentences.shape[0], len(heads), -1)
        outputs = torch.baddbmm(last_bias[:, None, :], hidden.transpose(0, 1), last.transpose(1, 2))
        return torch.sigmoid(outputs).mean(0).chunk(2, -1)

    def _stacked(self, heads: nn.ModuleList) -> tuple[torch.Tensor, ...]:
        """The heads' first layers concatenated and last layers stacked, built again whenever a weight changes (a
        load, a fit, a move to another device): five heads one by one cost a warm generate 0.3 ms per segment."""
        key = tuple((p.data_ptr(), p._version) for p in heads.parameters())
        cached = self._stacks.get(id(heads))
        if cached is None or cached[0] != key:
            first, last = [head[1] for head in heads], [head[-1] for head in heads]
            stack = tuple(t.detach() for t in (
                torch.cat([layer.weight for layer in first]), torch.cat([layer.bias for layer in first]),
                torch.stack([layer.weight for layer in last]), torch.stack([layer.bias for layer in last])))
            cached = self._stacks[id(heads)] = (key, stack)
        return cached[1]

    def concept_similarity(self, sentences: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_dim) -> (B, concepts): each training concept's best cosine over its phrases (`keys`, default
        `keys`)."""
        sims = sentences @ (self.keys if keys is None else keys).T
        per = sims[:, self.groups.clamp(min=0)]
        return per.masked_fill(self.groups < 0, float("-inf")).amax(-1)

    def predict(self, sentences: torch.Tensor,
                glossed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, text_dim) -> AU probabilities (B, AUs), intensities (B, AUs), and whether each text is novel (B,).
        With `glossed` (the same texts' glossed reading, for a memory with `glosses`) the probabilities and
        intensities are the means of the two readings'; novelty is the plain reading's."""
        prob, intensity, top = self._view(sentences, self.keys, self.heads)
        if glossed is not None:
            other_prob, other_intensity, _ = self._view(glossed, self.gloss_keys, self.gloss_heads)
            prob, intensity = 0.5 * (prob + other_prob), 0.5 * (intensity + other_intensity)
        return prob, intensity, top < self.novelty

    def _view(self, sentences: torch.Tensor, keys: torch.Tensor, heads: nn.ModuleList) -> tuple[torch.Tensor, ...]:
        """One reading's AU probabilities, intensities and best phrase cosine: the neighbours' vote over `keys`
        weighted by `vote`, and the mean of `heads`."""
        scores = self.concept_similarity(sentences, keys)
        top, idx = scores.topk(min(self.cfg.top_k, scores.shape[1]), dim=-1)
        weights = torch.softmax((top - top[:, :1]) / self.cfg.temperature, dim=-1)[..., None]
        core = self.core[idx]
        vote = (weights * core).sum(1)
        voted_intensity = (weights * core * self.intensity[idx]).sum(1) / vote.clamp_min(1e-6)
        head_prob, head_intensity = self.head_predict(sentences, heads)
        prob = self.cfg.vote * vote + (1.0 - self.cfg.vote) * head_prob
        intensity = torch.where(vote > 0, 0.5 * (voted_intensity + head_intensity), head_intensity)
        return prob, intensity, top[:, 0]

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

    def read_probabilities(self, sentences: torch.Tensor,
                           glosses: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`predict` of (B, text_dim) plain sentence embeddings as `read` takes them: put in the memory's frame, and
        with `glosses` (the texts' gloss_vectors) read the glossed way too, which a memory with glosses needs."""
        framed = self.in_frame(sentences)
        if self.cfg.glosses and glosses is None:
            raise ValueError("this AU memory reads every text with its glosses; pass gloss_vectors of the texts")
        return self.predict(framed, self.with_glosses(framed, glosses) if self.cfg.glosses else None)

    def read(self, sentences: torch.Tensor, side: torch.Tensor,
             glosses: torch.Tensor | None = None) -> "MemoryReading":
        """What the memory finds in each text, whatever key it will meet: read once for all of an instruction's
        segments, not once per segment position. `glosses`: the texts' gloss_vectors, when the memory reads them."""
        prob, intensity, novel = self.read_probabilities(sentences, glosses)
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
