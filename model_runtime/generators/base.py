"""What every generator is: the `Generator` protocol the runtime drives, and the types and helpers they share.

A generator turns planned segments into key expressions (`key_expressions`) and fills the frames between them
(`transition_frames`). Labels and confidences come from a `ConceptIndex`: the nearest knowledge-base phrase to each
segment's text in the generator's own embedding space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from ..knowledge import Concept, all_concepts
from ..paths import NpzCache, content_key
from ..timeline import DEFAULT_INTENSITY, FrameSpan, TimedSegment

MAX_WORD_INTENSITY_SCALE = 1.0 / DEFAULT_INTENSITY  # "extremely" (1.0) may lift a key this far; see runtime for the user scale


@dataclass(frozen=True)
class KeyExpression:
    """The expression a segment arrives at, and why."""

    weights: np.ndarray
    concept: str
    label: str
    intensity: float
    confidence: float
    similarity: float  # cosine of the text's sentence embedding to its nearest knowledge-base phrase (1 for a return)


class Generator(Protocol):
    name: str
    description: str
    phrase_index: "ConceptIndex"  # the knowledge-base phrases in the encoder's sentence embedding (`similarity`'s space)

    def key_expressions(self, plans: Sequence[Sequence[TimedSegment]], seed: int = 0) -> list[list[KeyExpression]]:
        """One key per segment of each plan (several instructions at once)."""

    def transition_frames(self, spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray,
                          plan: Sequence[TimedSegment] | None = None) -> np.ndarray:
        """(T, 52) frames from `start` into each target over its span, then holding it."""


class ConceptIndex:
    """Unit-length embeddings of every concept phrase (labels included) and the best-phrase score per concept.

    `embed` maps a list of phrases to (N, D) unit vectors: by default the encoder's pooled sentence embedding (the
    baseline); the learned model passes its IFED text latent. The embeddings are cached on disk, keyed by `identity`
    (default: the encoder's name and checksum) and the phrase list, unless `cache` is False.
    """

    def __init__(self, encoder, concepts: Sequence[Concept] | None = None, *,
                 embed: Callable[[list[str]], np.ndarray] | None = None, identity: Sequence[str] | None = None,
                 cache: bool = True, chunk: int = 64):
        self.concepts = tuple(concepts or all_concepts())
        phrases, owners = [], []
        for ci, concept in enumerate(self.concepts):
            for phrase in dict.fromkeys((concept.label, *concept.phrases)):
                phrases.append(phrase)
                owners.append(ci)
        self.owners = np.asarray(owners, dtype=np.int64)
        # Each concept's phrases are consecutive and every concept has one (its label): `concept_scores` takes the
        # best of each run with one reduceat instead of an unbuffered maximum.at over all of them.
        self._firsts = np.flatnonzero(np.r_[True, self.owners[1:] != self.owners[:-1]])
        embed = embed or (lambda texts: pooled_embeddings(encoder, texts))

        def build() -> dict:
            return {"embeddings": np.concatenate([embed(phrases[i:i + chunk])
                                                  for i in range(0, len(phrases), chunk)])}

        if not cache:
            self.embeddings = build()["embeddings"]
            return
        identity = list(identity) if identity is not None else [encoder.name, encoder.checksum]
        key = content_key(*identity, phrases)
        store = NpzCache(f"concept-index-{key}.npz", key, fields=("embeddings",),
                         check=lambda arrays: arrays["embeddings"].shape[0] == len(phrases))
        self.embeddings = store.get(build)["embeddings"]

    def nearest_similarity(self, vectors: np.ndarray) -> np.ndarray:
        """(B, D) unit vectors -> (B,): the cosine of each to its nearest phrase."""
        return (vectors @ self.embeddings.T).max(axis=1, initial=-1.0).astype(np.float32, copy=False)

    def concept_scores(self, vectors: np.ndarray) -> np.ndarray:
        """(B, D) unit vectors -> (B, concepts): each concept's best cosine similarity over its phrases."""
        sims = vectors @ self.embeddings.T
        return np.maximum.reduceat(sims, self._firsts, axis=1).astype(np.float32, copy=False)


def pooled_embeddings(encoder, texts: list[str]) -> np.ndarray:
    """The encoder's unit-length sentence embeddings as a float32 numpy array."""
    return encoder.encode(texts).pooled.float().cpu().numpy()


def word_intensity_scale(intensity: float) -> float:
    """How far the intensity a segment's words asked for ("slightly" 0.35, none 0.75) scales its key."""
    return min(intensity / DEFAULT_INTENSITY, MAX_WORD_INTENSITY_SCALE)


def key_expression(weights: np.ndarray, concept: Concept, seg: TimedSegment, confidence: float,
                   similarity: float) -> KeyExpression:
    """A segment's key: `weights` at the default intensity, scaled by the intensity its words asked for."""
    intensity = DEFAULT_INTENSITY if seg.intensity is None else float(seg.intensity)
    return KeyExpression(weights=np.clip(weights * word_intensity_scale(intensity), 0.0, 1.0).astype(np.float32),
                         concept=concept.name, label=concept.label, intensity=intensity, confidence=confidence,
                         similarity=float(similarity))


def softmax_confidence(scores: np.ndarray, best: int, scale: float) -> float:
    """Softmax probability of the winning concept at logit `scale`: how clearly the text picks it over the others."""
    z = (scores - scores[best]) * scale
    return float(1.0 / np.exp(z).sum())
