"""The retrieval baseline: nearest knowledge-base concept by text embedding, then that concept's prototype.

It makes the whole pipeline work without learned weights, and it is the yardstick the learned I2FET model must beat,
so it stays selectable (`Runtime.load(model="baseline")`). It is deterministic: seeds do not change its output.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dynamics import eased_frames
from ..knowledge import Concept, concept_weights, get_concept
from ..timeline import FrameSpan, TimedSegment
from .base import ConceptIndex, KeyExpression, key_expression, pooled_embeddings, softmax_confidence

CONFIDENCE_TEMPERATURE = 0.05


class RetrievalBaseline:
    name = "baseline"
    description = "retrieval baseline (nearest knowledge-base concept, eased lock-step transitions)"

    def __init__(self, encoder, concepts: Sequence[Concept] | None = None):
        self.encoder = encoder
        self.index = self.phrase_index = ConceptIndex(encoder, concepts)
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
                    keys.append(key_expression(concept_weights(self.neutral), self.neutral, seg, 1.0, 1.0))
                    continue
                row = scores[cursor]
                cursor += 1
                best = int(np.argmax(row))
                concept = self.index.concepts[best]
                keys.append(key_expression(concept_weights(concept, side=seg.side), concept, seg,
                                           softmax_confidence(row, best, 1.0 / CONFIDENCE_TEMPERATURE), row[best]))
            results.append(keys)
        return results

    def transition_frames(self, spans: Sequence[FrameSpan], targets: np.ndarray, start: np.ndarray,
                          plan: Sequence[TimedSegment] | None = None) -> np.ndarray:
        """Every channel eases in and out together (lock-step): the yardstick for the learned transitions."""
        return eased_frames(spans, targets, start)
