"""The canonical expression space: Apple ARKit's 52 blendshapes, in the order every array in the project uses, their
left/right mirror, and the FACS action units they express.

Source: Apple ARKit `ARFaceAnchor.BlendShapeLocation` (names, [0, 1] range, sides are the character's own).
"""

from __future__ import annotations

import numpy as np

ARKIT_CHANNELS: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
NUM_CHANNELS = len(ARKIT_CHANNELS)
CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_CHANNELS)}
assert NUM_CHANNELS == 52

# --------------------------------------------------------------------------------------------------------------------
# Sides and mirroring
# --------------------------------------------------------------------------------------------------------------------


def _mirror_name(name: str) -> str:
    """Swap the trailing side word. ARKit's sides are the character's own, so a mirror image of the face swaps every
    *Left with its *Right: eyeLookInLeft <-> eyeLookInRight (both eyes looking towards the nose stay so),
    jawLeft <-> jawRight and mouthLeft <-> mouthRight (a shift to one side becomes a shift to the other)."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


MIRROR_INDEX: tuple[int, ...] = tuple(CHANNEL_INDEX[_mirror_name(name)] for name in ARKIT_CHANNELS)
"""Index of each channel's left/right mirror (itself for the 10 unsided channels); an involution."""

LEFT_CHANNELS: tuple[int, ...] = tuple(i for i, name in enumerate(ARKIT_CHANNELS) if name.endswith("Left"))
"""Channels on the character's own left (including the directional jawLeft and mouthLeft)."""
RIGHT_CHANNELS: tuple[int, ...] = tuple(MIRROR_INDEX[i] for i in LEFT_CHANNELS)
"""Right counterparts, aligned with LEFT_CHANNELS element by element."""
CENTER_CHANNELS: tuple[int, ...] = tuple(i for i, j in enumerate(MIRROR_INDEX) if i == j)
"""Unsided channels (browInnerUp, cheekPuff, jawForward, jawOpen, mouthClose, mouthFunnel, ...)."""

_MIRROR_ARRAY = np.asarray(MIRROR_INDEX, dtype=np.int64)


def mirror_weights(weights: np.ndarray) -> np.ndarray:
    """Left/right mirror image of weights shaped (..., 52); returns a new array of the same dtype."""
    w = np.asarray(weights)
    if w.shape[-1:] != (NUM_CHANNELS,):
        raise ValueError(f"expected weights shaped (..., {NUM_CHANNELS}), got {w.shape}")
    return w[..., _MIRROR_ARRAY].copy()


# --------------------------------------------------------------------------------------------------------------------
# FACS action units -> ARKit channels
# --------------------------------------------------------------------------------------------------------------------
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser", 6: "cheek raiser",
    7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser", 11: "nasolabial deepener",
    12: "lip corner puller", 13: "sharp lip puller", 14: "dimpler", 15: "lip corner depressor",
    16: "lower lip depressor", 17: "chin raiser", 18: "lip pucker", 19: "tongue show", 20: "lip stretcher",
    22: "lip funneler", 23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop", 27: "mouth stretch",
    28: "lip suck", 29: "jaw thrust", 30: "jaw sideways", 32: "lip bite", 33: "cheek blow", 34: "cheek puff",
    43: "eyes closed", 45: "blink", 46: "wink", 61: "eyes turn left", 62: "eyes turn right", 63: "eyes up",
    64: "eyes down",
}
"""FACS action-unit names (Ekman, Friesen & Hager 2002, FACS manual) for the AUs this project can express."""

AU_TO_CHANNELS: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("browInnerUp", 1.0),),
    2: (("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)),
    4: (("browDownLeft", 1.0), ("browDownRight", 1.0)),
    5: (("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)),
    6: (("cheekSquintLeft", 1.0), ("cheekSquintRight", 1.0)),
    7: (("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)),
    # The nose wrinkler also lifts the upper lip a little.
    9: (("noseSneerLeft", 1.0), ("noseSneerRight", 1.0), ("mouthUpperUpLeft", 0.3), ("mouthUpperUpRight", 0.3)),
    10: (("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)),
    # No dedicated shape: a deepened nasolabial furrow is a slight upper-lip lift with a slight cheek raise.
    11: (("mouthUpperUpLeft", 0.4), ("mouthUpperUpRight", 0.4), ("cheekSquintLeft", 0.2), ("cheekSquintRight", 0.2)),
    # Sharp lip puller (the old "cheek puffer"): a narrow corner pull that fills the cheeks.
    13: (("mouthSmileLeft", 0.6), ("mouthSmileRight", 0.6), ("cheekPuff", 0.3)),
    12: (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)),
    14: (("mouthDimpleLeft", 1.0), ("mouthDimpleRight", 1.0)),
    15: (("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)),
    16: (("mouthLowerDownLeft", 1.0), ("mouthLowerDownRight", 1.0)),
    17: (("mouthShrugLower", 1.0), ("mouthShrugUpper", 0.4)),
    18: (("mouthPucker", 1.0),),
    19: (("tongueOut", 1.0), ("jawOpen", 0.25)),
    20: (("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)),
    22: (("mouthFunnel", 1.0),),
    # No dedicated shape: lips pressed and slightly rolled in are the nearest (reference table).
    23: (("mouthPressLeft", 0.5), ("mouthPressRight", 0.5), ("mouthRollLower", 0.25), ("mouthRollUpper", 0.25)),
    24: (("mouthPressLeft", 1.0), ("mouthPressRight", 1.0)),
    # No dedicated shape: a small jaw opening plus a lowered lower lip (reference table).
    25: (("jawOpen", 0.12), ("mouthLowerDownLeft", 0.3), ("mouthLowerDownRight", 0.3)),
    26: (("jawOpen", 0.5),),
    27: (("jawOpen", 1.0),),
    28: (("mouthRollLower", 1.0), ("mouthRollUpper", 1.0)),
    29: (("jawForward", 1.0),),
    # Direction comes from the side: L30 = jawLeft, R30 = jawRight; unsided it names both (they cancel on a rig).
    30: (("jawLeft", 1.0), ("jawRight", 1.0)),
    32: (("mouthRollLower", 0.7),),
    33: (("cheekPuff", 0.8), ("mouthFunnel", 0.3)),
    34: (("cheekPuff", 1.0),),
    43: (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    45: (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    46: (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    # Gaze, towards the character's own left/right: the left eye turns out and the right eye in for AU61.
    61: (("eyeLookOutLeft", 1.0), ("eyeLookInRight", 1.0)),
    62: (("eyeLookInLeft", 1.0), ("eyeLookOutRight", 1.0)),
    63: (("eyeLookUpLeft", 1.0), ("eyeLookUpRight", 1.0)),
    64: (("eyeLookDownLeft", 1.0), ("eyeLookDownRight", 1.0)),
}
"""AU -> ARKit channels with relative weights (channel value = AU intensity x weight).

Built from the AU <-> ARKit correspondence in FACS (Ekman, Friesen & Hager 2002) and Apple's ARKit blend-shape
descriptions. Where ARKit has no dedicated shape (AU11, 13, 23, 25, 32, 33) the weights pick the nearest shapes and are
this project's choice. AU25/26/27 form one jawOpen continuum (small, moderate, large)."""

SIDES = ("both", "left", "right")
ONE_SIDED_CENTER_FACTOR = 0.5
"""An unsided channel (browInnerUp, jawOpen, cheekPuff...) moves both halves of the face, so a one-sided AU drives it
at half strength: half of the face contributes."""


def channel_side(name: str) -> str:
    """"left", "right" or "both" for a channel name (directional jawLeft/mouthLeft count as left)."""
    if name.endswith("Left"):
        return "left"
    if name.endswith("Right"):
        return "right"
    return "both"


def au_channels_for_side(au: int, side: str = "both") -> tuple[tuple[str, float], ...]:
    """The AU's channels for one side of the face (FACS "L"/"R" prefix): channels of the other side are dropped and
    unsided channels are kept at ONE_SIDED_CENTER_FACTOR of their weight. Raises KeyError for an unknown AU."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    channels = AU_TO_CHANNELS[au]
    if side == "both":
        return channels
    out = []
    for name, weight in channels:
        s = channel_side(name)
        if s == side:
            out.append((name, weight))
        elif s == "both":
            out.append((name, weight * ONE_SIDED_CENTER_FACTOR))
    return tuple(out)
