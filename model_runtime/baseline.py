"""The retrieval baseline: nearest knowledge-base concept by text embedding, then that concept's prototype.

It makes the whole pipeline work without learned weights, and it is the yardstick the learned I2FET model must beat,
so it stays selectable (`Runtime.load(model="baseline")`). It is deterministic: seeds do not change its output.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .knowledge import Concept, all_concepts, concept_weights, get_concept
from .paths import atomic_output, cache_dir
from .timeline import DEFAULT_INTENSITY, TimedSegment

CONFIDENCE_TEMPERATURE = 0.05
MAX_INTENSITY_SCALE = 1.0 / DEFAULT_INTENSITY


@dataclass(frozen=True)
class KeyExpression:
    """The expression a segment arrives at, and why."""

    weights: np.ndarray
    concept: str
    label: str
    intensity: float
    confidence: float


class ConceptIndex:
    """Unit-length embeddings of every concept phrase, cached on disk per encoder and knowledge-base version."""

    def __init__(self, encoder, concepts: Sequence[Concept] | None = None):
        self.concepts = tuple(concepts or all_concepts())
        phrases, owners = [], []
        for ci, concept in enumerate(self.concepts):
            for phrase in dict.fromkeys((concept.label, *concept.phrases)):
                phrases.append(phrase)
                owners.append(ci)
        self.owners = np.asarray(owners, dtype=np.int64)
        self.embeddings = self._load_or_encode(encoder, phrases)

    def _load_or_encode(self, encoder, phrases: list[str]) -> np.ndarray:
        key = hashlib.sha256(json.dumps([encoder.name, encoder.checksum, phrases]).encode()).hexdigest()[:20]
        path = cache_dir() / f"concept-index-{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as cached:
                embeddings = cached["embeddings"]
            if embeddings.shape == (len(phrases), encoder.dim):
                return embeddings
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass
        embeddings = np.concatenate([encoder.encode(phrases[i:i + 64]).pooled.float().cpu().numpy()
                                     for i in range(0, len(phrases), 64)])
        try:
            with atomic_output(path) as handle:
                np.savez(handle, embeddings=embeddings)
        except OSError:
            pass  # a read-only cache only costs speed
        return embeddings

    def concept_scores(self, pooled: np.ndarray) -> np.ndarray:
        """(B, D) unit vectors -> (B, concepts): each concept's best cosine similarity over its phrases."""
        sims = pooled @ self.embeddings.T
        scores = np.full((sims.shape[0], len(self.concepts)), -np.inf, dtype=np.float32)
        np.maximum.at(scores.T, self.owners, sims.T)
        return scores


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
        scores = self.index.concept_scores(self._embed(texts)) if texts else np.zeros((0, len(self.index.concepts)))
        cursor = 0
        results = []
        for plan in plans:
            keys = []
            for seg in plan:
                if seg.kind == "return":
                    keys.append(self._key(self.neutral, seg, confidence=1.0))
                    continue
                row = scores[cursor]
                cursor += 1
                best = int(np.argmax(row))
                keys.append(self._key(self.index.concepts[best], seg, confidence=_confidence(row, best)))
            results.append(keys)
        return results

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts).pooled.float().cpu().numpy()

    @staticmethod
    def _key(concept: Concept, seg: TimedSegment, confidence: float) -> KeyExpression:
        intensity = DEFAULT_INTENSITY if seg.intensity is None else float(seg.intensity)
        scale = min(intensity / DEFAULT_INTENSITY, MAX_INTENSITY_SCALE)
        weights = np.clip(concept_weights(concept, side=seg.side) * scale, 0.0, 1.0).astype(np.float32)
        return KeyExpression(weights=weights, concept=concept.name, label=concept.label, intensity=intensity,
                             confidence=confidence)


def _confidence(scores: np.ndarray, best: int) -> float:
    """Softmax probability of the winning concept: how clearly the text picks it over the others."""
    z = (scores - scores[best]) / CONFIDENCE_TEMPERATURE
    return float(1.0 / np.exp(z).sum())
