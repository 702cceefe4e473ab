"""The retrieval baseline: nearest knowledge-base concept by text embedding, then that concept's prototype.

It makes the whole pipeline work without learned weights, and it is the yardstick the learned I2FET model must beat,
so it stays selectable (`Runtime.load(model="baseline")`). It is deterministic: seeds do not change its output.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .knowledge import Concept, all_concepts, concept_weights, get_concept
from .paths import atomic_output, cache_dir
from .timeline import DEFAULT_INTENSITY, TimedSegment

CONFIDENCE_TEMPERATURE = 0.05
MAX_WORD_INTENSITY_SCALE = 1.0 / DEFAULT_INTENSITY  # "extremely" (1.0) may lift a key this far; see runtime for the user scale


@dataclass(frozen=True)
class KeyExpression:
    """The expression a segment arrives at, and why."""

    weights: np.ndarray
    concept: str
    label: str
    intensity: float
    confidence: float


class ConceptIndex:
    """Unit-length embeddings of every concept phrase (labels included) and the best-phrase score per concept.

    `embed` maps a list of phrases to (N, D) unit vectors: by default the encoder's pooled sentence embedding (the
    baseline); the learned model passes its IFED text latent. The embeddings are cached on disk under `identity`
    (default: the encoder's name and checksum) with the phrase list, unless `cache` is False.
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
        embed = embed or (lambda texts: pooled_embeddings(encoder, texts))
        identity = list(identity) if identity is not None else [encoder.name, encoder.checksum]
        self.embeddings = self._load_or_embed(embed, phrases, identity if cache else None, chunk)

    @staticmethod
    def _load_or_embed(embed, phrases: list[str], identity: list[str] | None, chunk: int) -> np.ndarray:
        path = None
        if identity is not None:
            key = hashlib.sha256(json.dumps([*identity, phrases]).encode()).hexdigest()[:20]
            path = cache_dir() / f"concept-index-{key}.npz"
            try:
                with np.load(path, allow_pickle=False) as cached:
                    embeddings = cached["embeddings"]
                if embeddings.shape[0] == len(phrases):
                    return embeddings
            except (OSError, KeyError, ValueError, zipfile.BadZipFile):
                pass
        embeddings = np.concatenate([embed(phrases[i:i + chunk]) for i in range(0, len(phrases), chunk)])
        if path is not None:
            try:
                with atomic_output(path) as handle:
                    np.savez(handle, embeddings=embeddings)
            except OSError:
                pass  # a read-only cache only costs speed
        return embeddings

    def concept_scores(self, vectors: np.ndarray) -> np.ndarray:
        """(B, D) unit vectors -> (B, concepts): each concept's best cosine similarity over its phrases."""
        sims = vectors @ self.embeddings.T
        scores = np.full((sims.shape[0], len(self.concepts)), -np.inf, dtype=np.float32)
        np.maximum.at(scores.T, self.owners, sims.T)
        return scores


def pooled_embeddings(encoder, texts: list[str]) -> np.ndarray:
    """The encoder's unit-length sentence embeddings as a float32 numpy array."""
    return encoder.encode(texts).pooled.float().cpu().numpy()


def key_expression(weights: np.ndarray, concept: Concept, seg: TimedSegment, confidence: float) -> KeyExpression:
    """A segment's key: `weights` at the default intensity, scaled by the intensity its words asked for."""
    intensity = DEFAULT_INTENSITY if seg.intensity is None else float(seg.intensity)
    scale = min(intensity / DEFAULT_INTENSITY, MAX_WORD_INTENSITY_SCALE)
    return KeyExpression(weights=np.clip(weights * scale, 0.0, 1.0).astype(np.float32), concept=concept.name,
                         label=concept.label, intensity=intensity, confidence=confidence)


def softmax_confidence(scores: np.ndarray, best: int, scale: float) -> float:
    """Softmax probability of the winning concept at logit `scale`: how clearly the text picks it over the others."""
    z = (scores - scores[best]) * scale
    return float(1.0 / np.exp(z).sum())


class RetrievalBaseline:
    name = "baseline"
    description = "retrieval baseline (nearest knowledge-base concept, eased lock-step transitions)"

    def __init__(self, encoder, concepts: Sequence[Concept] | None = None):
        self.encoder = encoder
        self.index = ConceptIndex(encoder, concepts)
        self.neutral = get_concept("neutral")

    def key_expressions(self, plans: Sequence[Sequence[TimedSegment]], seed: int = 0) -> list[list[KeyExpression]]:
        """Key expressions for several instructions at once (one encoder pass for all their segment texts)."""
        texts = [seg.text for plan in plans for seg in plan if seg.kind != "return"]
        scores = self.index.concept_scores(pooled_embeddings(self.encoder, texts)) if texts else np.zeros((0, len(self.index.concepts)))
        cursor = 0
        results = []
        for plan in plans:
            keys = []
            for seg in plan:
                if seg.kind == "return":
                    keys.append(key_expression(concept_weights(self.neutral), self.neutral, seg, 1.0))
                    continue
                row = scores[cursor]
                cursor += 1
                best = int(np.argmax(row))
                concept = self.index.concepts[best]
                keys.append(key_expression(concept_weights(concept, side=seg.side), concept, seg,
                                           softmax_confidence(row, best, 1.0 / CONFIDENCE_TEMPERATURE)))
            results.append(keys)
        return results
