"""A family judge that reads only a face's action units: the basic-emotion prototype whose core AUs overlap the face's
AUs best (Jaccard), so a generator is judged by what it drew, never by the concept it says it chose.

The prototypes are the seven basic concepts' core AUs in the knowledge base (EMFACS prototypes reconciled with Du et
al. 2014; see knowledge.py), less the AUs `active_aus` cannot decode. A face with no AU is "neutral"; a tie between the
best families is "ambiguous" (a miss for any label). Jaccard ignores side and intensity: a lone AU12 (one-sided or
not) is nearer contempt's 12+14 than happiness's 6+12+25.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import numpy as np

from ..knowledge import UNDECODABLE_AUS, active_aus, concept_aus

BASIC_CONCEPT_FOR_FAMILY: dict[str, str] = {
    "happy": "happy", "sad": "sad", "surprise": "surprised", "fear": "fearful", "anger": "angry",
    "disgust": "disgusted", "contempt": "contemptuous",
}
NEUTRAL = "neutral"
AMBIGUOUS = "ambiguous"


@lru_cache(maxsize=1)
def prototypes() -> dict[str, frozenset[int]]:
    """Family -> the core AUs of its basic concept."""
    return {family: concept_aus(concept) - UNDECODABLE_AUS for family, concept in BASIC_CONCEPT_FOR_FAMILY.items()}


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    a, b = frozenset(a), frozenset(b)
    return len(a & b) / len(a | b) if a | b else 0.0


def family_of_aus(aus: Iterable[int]) -> str:
    """The family whose prototype has the best Jaccard overlap with `aus`; "neutral" when no prototype AU is present,
    "ambiguous" when two or more families tie for the best."""
    scores = {family: jaccard(aus, proto) for family, proto in prototypes().items()}
    best = max(scores.values())
    if best == 0.0:
        return NEUTRAL
    winners = [family for family, score in scores.items() if score == best]
    return winners[0] if len(winners) == 1 else AMBIGUOUS


def family_of_weights(weights: np.ndarray) -> str:
    """The family a (52,) ARKit face shows, read through `active_aus`."""
    return family_of_aus(active_aus(weights))


__all__ = ["AMBIGUOUS", "BASIC_CONCEPT_FOR_FAMILY", "NEUTRAL", "family_of_aus", "family_of_weights", "jaccard",
           "prototypes"]
