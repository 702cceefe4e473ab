"""Between ARKit animations and FLAME parameter sequences, through a model's `FlameMap`."""

from __future__ import annotations

import numpy as np

from ..animation import Animation
from ..limits import FPS_RANGE
from ..errors import InputError
from ..expression_space import ARKIT_CHANNELS
from .flame_map import FlameMap
from .flame_sequence import FlameSequence


def canonical_frames(anim: Animation) -> np.ndarray:
    """The animation's (T, 52) weights in ARKIT_CHANNELS order, whatever order it stores them in."""
    frames = np.asarray(anim.frames, dtype=np.float32)
    channels = list(anim.channels)
    if channels != list(ARKIT_CHANNELS):
        missing = [c for c in ARKIT_CHANNELS if c not in channels]
        if missing:
            raise InputError(f"The animation lacks the ARKit channel {missing[0]}.")
        frames = frames[:, [channels.index(c) for c in ARKIT_CHANNELS]]
    return frames


def animation_to_flame(anim: Animation, fmap: FlameMap) -> FlameSequence:
    """An ARKit animation as FLAME expression, jaw and eye rotations per frame, at the animation's frame rate."""
    expression, jaw, eyes = fmap.to_flame(canonical_frames(anim))
    return FlameSequence(expression=expression, jaw_pose=jaw, eye_pose=eyes, fps=float(anim.fps))


def flame_to_animation(sequence: FlameSequence, fmap: FlameMap, fps: int | None = None,
                       name: str = "FLAME sequence") -> Animation:
    """A FLAME sequence as ARKit weights (box-constrained least squares per frame); `fps` when the file has none."""
    rate = sequence.fps if sequence.fps is not None else fps
    if rate is None:
        raise InputError("The FLAME sequence does not say its frame rate; give one (--fps).")
    if abs(rate - round(rate)) > 1e-6 or not FPS_RANGE[0] <= round(rate) <= FPS_RANGE[1]:
        raise InputError(f"ARKit animations need a whole frame rate from {FPS_RANGE[0]} to {FPS_RANGE[1]}; the sequence "
                         f"has {rate:g}.")
    weights = fmap.to_arkit(sequence.expression, sequence.jaw_pose, sequence.eye_pose)
    return Animation(frames=weights, fps=int(round(rate)), instruction=name, warnings=list(sequence.notes),
                     segments=[{"text": name, "label": "FLAME", "start_frame": 0,
                                "end_frame": sequence.num_frames - 1, "intensity": float(weights.max(initial=0.0)),
                                "confidence": 1.0}])
