"""The action units the learned model can name, as matrices: which AUs a concept shows, and how AUs become weights.

The key generator's AU head predicts, from the text alone, which of these AUs are present and how strongly; an
unseen word then gets the AUs its meaning shares with the words the model was trained on, composed through the same
FACS -> ARKit table the knowledge base uses (expression_space.AU_TO_CHANNELS), instead of an average of whole faces.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..expression_space import AU_TO_CHANNELS, CHANNEL_INDEX, NUM_CHANNELS, au_channels_for_side
from ..knowledge import SAME_POSE_AU, get_concept

AUS: tuple[int, ...] = tuple(au for au in sorted(AU_TO_CHANNELS) if au not in (30, 45, 46))
"""AUs with a head output: not AU30 (its unsided channels cancel), AU45 (reported as AU43: one pose) or AU46 (a wink
is one eye, which the side words carry)."""
AU_INDEX = {au: i for i, au in enumerate(AUS)}
SIDES = ("both", "left", "right")  # indexed like models.generator.SIDE_INDEX


@lru_cache(maxsize=1)
def au_channel_matrix() -> np.ndarray:
    """(3 sides, len(AUS), 52) float32: the weights one unit of each AU gives, for both sides or one side."""
    out = np.zeros((len(SIDES), len(AUS), NUM_CHANNELS), dtype=np.float32)
    for s, side in enumerate(SIDES):
        for k, au in enumerate(AUS):
            for name, weight in au_channels_for_side(au, side):
                out[s, k, CHANNEL_INDEX[name]] = weight
    return out


@lru_cache(maxsize=1)
def unspoken_channels() -> np.ndarray:
    """(52,) float32: 1 for the channels the AUs of AUS cannot speak for: driven by none of them (mouthClose, the
    mouth and jaw sideways) or also by an AU left out (AU30's jaw sideways, AU45's and AU46's blinks: a wink)."""
    out = (au_channel_matrix()[0] <= 0).all(0).astype(np.float32)
    for au in set(AU_TO_CHANNELS) - set(AUS):
        for name, _ in AU_TO_CHANNELS[au]:
            out[CHANNEL_INDEX[name]] = 1.0
    return out


def concept_au_targets(concept, variant_presence: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """(presence, intensity), each (len(AUS),) float32: presence 1 for core AUs, `variant_presence` for variant AUs
    (the rate training samples show them at), else 0; intensity the FACS intensity of core AUs (0 elsewhere)."""
    concept = get_concept(concept)
    presence = np.zeros(len(AUS), dtype=np.float32)
    intensity = np.zeros(len(AUS), dtype=np.float32)
    for act in concept.aus:
        k = AU_INDEX.get(SAME_POSE_AU.get(act.au, act.au))
        if k is None:
            continue
        if act.core:
            presence[k] = 1.0
            intensity[k] = max(intensity[k], act.intensity)
        else:
            presence[k] = max(presence[k], variant_presence)
    return presence, intensity


__all__ = ["AUS", "AU_INDEX", "au_channel_matrix", "concept_au_targets", "unspoken_channels"]
