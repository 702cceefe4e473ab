"""The ARKit writer: an `Animation`'s 52 channels onto the ARKit-named shape keys of a mesh, as a new action (the
never-overwrite policy of `shape_keys`).

Keys sit on integer frames from `start_frame`. If the scene's frame rate differs from the animation's, the frames are
resampled so that durations in seconds are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS, mirror_weights
from model_runtime.heads.rig_names import match_channels

from . import keys as keymath
from .shape_keys import DEFAULT_TOLERANCE, INTERPOLATIONS, is_linked, shape_key_names, shape_key_path, write_curves


@dataclass
class WriteResult:
    action: bpy.types.Action
    matched: dict[str, str]  # ARKit channel -> shape-key name
    split: dict[str, tuple]  # unsided ARKit channel -> the shape keys that each hold a part of it
    unmatched_channels: list[str]  # ARKit channels with no shape key on the mesh
    unmatched_names: list[str]  # shape keys that are not ARKit channels (untouched)
    start_frame: int
    end_frame: int
    fps: float
    num_keys: int
    kept_track: str | None = None
    warnings: list[str] = field(default_factory=list)


def check_target(obj):
    """Raise InputError (one sentence) unless `obj` can take generated animation; returns the ChannelMatch."""
    if obj is None:
        raise InputError("Select a mesh with ARKit shape keys first (or use Add default head).")
    if obj.type != "MESH":
        raise InputError(f"{obj.name!r} is a {obj.type.lower()}, not a mesh; select a mesh with ARKit shape keys.")
    if is_linked(obj):
        raise InputError(f"{obj.name!r} is linked from another file or overridden; make it local before generating.")
    names = shape_key_names(obj)
    if not names:
        raise InputError(f"{obj.name!r} has no shape keys; use Add default head or add ARKit-named shape keys.")
    match = match_channels(names)
    if not match.mapping and not getattr(match, "split", None):
        missing = ", ".join(list(match.unmatched_channels)[:3])
        raise InputError(f"None of the shape keys of {obj.name!r} matches an ARKit channel (missing {missing}, ...); "
                         f"rename them to ARKit names or use Add default head.")
    ad = obj.data.shape_keys.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise InputError(f"The shape keys of {obj.name!r} are in NLA tweak mode; leave tweak mode first.")
    return match


def keys_for(match, channel: str) -> tuple[str, ...]:
    """The shape keys one ARKit channel drives: its whole key, or every part of it (e.g. browInnerUp_L and _R)."""
    if hasattr(match, "keys_for"):
        return tuple(match.keys_for(channel))
    return (match.mapping[channel],) if channel in match.mapping else ()


def write_animation(obj, anim, *, start_frame: int = 1, fps: float | None = None, mirror: bool = False,
                    amplify: float = 1.0, reduce: bool = False, tolerance: float = DEFAULT_TOLERANCE,
                    interpolation: str = "LINEAR", name: str | None = None) -> WriteResult:
    """Write `anim` (an `Animation`) onto `obj`'s shape keys; see the module docstring for the policy.

    `fps`: the frame rate keys are placed at (the scene's; default: the animation's own). `mirror` swaps left and
    right; `amplify` scales the weights (clamped to each shape key's slider range); `reduce` drops keys that linear
    interpolation of the kept neighbours reproduces within `tolerance`.
    """
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"Interpolation must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}.")
    match = check_target(obj)
    frames = np.asarray(anim.frames, dtype=np.float32)
    channels = list(getattr(anim, "channels", ARKIT_CHANNELS))
    if frames.ndim != 2 or frames.shape[1] != len(channels) or frames.shape[0] == 0:
        raise InputError(f"The animation must have at least one frame of {len(channels)} weights.")
    if not np.all(np.isfinite(frames)):
        raise InputError("The animation holds non-finite weights.")
    if channels != list(ARKIT_CHANNELS):  # bring to canonical order for mirror_weights
        order = [channels.index(c) for c in ARKIT_CHANNELS]
        frames = frames[:, order]
    if mirror:
        frames = np.asarray(mirror_weights(frames), dtype=np.float32)
    target_fps = float(fps) if fps else float(anim.fps)
    frames = keymath.resample(frames, float(anim.fps), target_fps)

    key = obj.data.shape_keys
    start = int(start_frame)
    index_of = {c: i for i, c in enumerate(ARKIT_CHANNELS)}
    curves = []
    for channel in ARKIT_CHANNELS:
        for rig_name in keys_for(match, channel):
            block = key.key_blocks[rig_name]
            values = keymath.amplify(frames[:, index_of[channel]], amplify, block.slider_min, block.slider_max)
            curves.append((shape_key_path(rig_name), 0, values))
    written = write_curves(key, curves, start_frame=start, name=name or f"I2FET {anim.instruction[:40]}".strip(),
                           anim=anim, fps=target_fps, reduce=reduce, tolerance=tolerance, interpolation=interpolation)
    return WriteResult(action=written.action, matched=dict(match.mapping),
                       split=dict(getattr(match, "split", {}) or {}),
                       unmatched_channels=list(match.unmatched_channels),
                       unmatched_names=list(match.unmatched_names), start_frame=start,
                       end_frame=start + frames.shape[0] - 1, fps=target_fps, num_keys=written.num_keys,
                       kept_track=written.kept_track, warnings=list(getattr(anim, "warnings", [])))
