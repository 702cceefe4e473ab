"""What a face object is, and how animation goes onto it, comes off it, is read back and is exported.

Two kinds of face today, told apart here and nowhere else (`face_target`):
* an ARKit face: a mesh whose shape keys carry ARKit names (`writer`); FLAME parameters reach it through the
  ARKit<->FLAME map;
* a FLAME head: `Exp###` keys and a jaw bone (`flame_head`); ARKit animation reaches it through the same map.
The map belongs to the user's FLAME model file (`FlameFile`), which an ARKit face needs only for FLAME sequences.
Generate, batch baking and the FLAME operators all key through a target, so another kind of head is another class here.
`model_runtime.rigs` needs torch, so it is imported where a FLAME file is used, never when the extension registers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from model_runtime.animation import Animation
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS, mirror_weights

from . import fbx_export, flame_head, head_motion, keys as keymath, shape_keys, writer
from .ops_base import generation_fps

_memo: dict = {}  # (path, size, mtime) -> {"model": FlameModel, "map": FlameMap}; one file at a time


@dataclass(frozen=True)
class FlameFile:
    """The user's FLAME model file (empty: not set) and where the user sets it, for the sentence asking for it."""

    path: str
    how_to_set: str

    def _entry(self) -> dict:
        from model_runtime.rigs import load_flame

        if not self.path:
            raise InputError(f"Set the FLAME model file {self.how_to_set} first (FLAME files cannot be shipped; use "
                             f"your own download).")
        try:
            stat = os.stat(self.path)
            key = (self.path, stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = (self.path, None, None)
        if key not in _memo:
            _memo.clear()
            _memo[key] = {"model": load_flame(self.path)}
        return _memo[key]

    def model(self):
        """The loaded `FlameModel` (read once per file and session)."""
        return self._entry()["model"]

    def map(self):
        """The model's ARKit<->FLAME map (derived once per model, then read from the runtime's cache)."""
        from model_runtime.rigs.flame_map import flame_map_for

        entry = self._entry()
        if "map" not in entry:
            entry["map"] = flame_map_for(entry["model"])
        return entry["map"]


@dataclass
class ArkitFace:
    """A mesh with ARKit-named shape keys (checked by `writer.check_target`)."""

    obj: object
    match: object  # the rig_names ChannelMatch: which shape keys hold which channel
    flame: FlameFile
    kind: ClassVar[str] = "ARKit face"

    def write(self, anim, *, start_frame: int, fps: float, mirror: bool = False, reduce: bool = False,
              tolerance: float = shape_keys.DEFAULT_TOLERANCE) -> writer.WriteResult:
        """Key `anim` (ARKit) at `fps` from `start_frame`, as a new action; its head motion, if any, as another
        (`head_motion`)."""
        head = head_motion.frames_at(anim, fps, mirror)
        mover = head_motion.head_mover(self.obj) if head is not None else None
        head_curves = head_motion.rotation_curves(mover, head) if head is not None else []
        result = writer.write_animation(self.obj, anim, start_frame=start_frame, fps=fps, mirror=mirror,
                                        reduce=reduce, tolerance=tolerance)
        if head_curves:
            result.num_keys += head_motion.write_head_motion(
                mover, head_curves, start_frame=start_frame, name=f"I2FET head {anim.instruction[:35]}".strip(),
                anim=anim, fps=result.fps, reduce=reduce, tolerance=tolerance)
        return result

    def write_flame(self, expression, jaw, eyes, *, start_frame: int, fps: float, name: str) -> writer.WriteResult:
        """Key FLAME parameters already at `fps` (eyes may be None), through the map, frame by frame."""
        weights = self.flame.map().to_arkit(expression, jaw, eyes)
        anim = Animation(frames=weights, fps=generation_fps(fps), instruction=name)
        # Already at the scene's exact rate: keyed frame by frame, not resampled a second time.
        return writer.write_animation(self.obj, anim, start_frame=start_frame, fps=anim.fps, name=name)

    def read_arkit(self, frames) -> np.ndarray:
        """(T, 52) weights at `frames` from the active shape-key action (the parts of a split channel averaged)."""
        sampled = shape_keys.sample_curves(self.obj, frames)
        blocks = self.obj.data.shape_keys.key_blocks
        out = np.zeros((len(frames), len(ARKIT_CHANNELS)), dtype=np.float32)
        for c, channel in enumerate(ARKIT_CHANNELS):
            names = writer.keys_for(self.match, channel)
            if names:
                out[:, c] = np.mean([sampled.get(n, np.full(len(frames), blocks[n].value)) for n in names], axis=0)
        return out

    def read_flame(self, frames):
        """FLAME expression (T, N), jaw (T, 3), eyes (T, 6) at `frames`, through the map."""
        return self.flame.map().to_flame(self.read_arkit(frames))


@dataclass
class FlameHead:
    """A FLAME head of the user's FLAME model (checked by `flame_head.check_flame_target`)."""

    head: flame_head.FlameTarget
    flame: FlameFile
    kind: ClassVar[str] = "FLAME head"

    @property
    def obj(self):
        return self.head.obj

    def write(self, anim, *, start_frame: int, fps: float, mirror: bool = False, reduce: bool = False,
              tolerance: float = shape_keys.DEFAULT_TOLERANCE) -> flame_head.FlameWriteResult:
        """ARKit frames -> FLAME expression, jaw and eyes through the map -> keys on the head and its rig."""
        from model_runtime.rigs.flame_convert import canonical_frames

        frames = canonical_frames(anim)
        if mirror:
            frames = np.asarray(mirror_weights(frames), dtype=np.float32)
        frames = keymath.resample(frames, float(anim.fps), float(fps))
        expression, jaw, eyes = self.flame.map().to_flame(frames)
        head = head_motion.frames_at(anim, fps, mirror)
        mover = head_motion.head_mover(self.obj, self.head) if head is not None else None
        head_curves = head_motion.rotation_curves(mover, head) if head is not None else []
        on_rig = head_curves if mover is not None and mover.owner is self.head.rig else []
        name = f"I2FET {anim.instruction[:40]}".strip()
        result = flame_head.write_flame_animation(self.head, expression, jaw, eyes, start_frame=start_frame,
                                                  name=name, anim=anim, fps=fps, reduce=reduce, tolerance=tolerance,
                                                  rig_curves=on_rig)
        if head_curves and not on_rig:  # no neck or root bone: the head object turns
            result.num_keys += head_motion.write_head_motion(mover, head_curves, start_frame=start_frame,
                                                             name=f"I2FET head {anim.instruction[:35]}".strip(),
                                                             anim=anim, fps=fps, reduce=reduce, tolerance=tolerance)
        return result

    def write_flame(self, expression, jaw, eyes, *, start_frame: int, fps: float,
                    name: str) -> flame_head.FlameWriteResult:
        """Key FLAME parameters already at `fps` directly (eyes may be None)."""
        model = self.flame.model()
        if expression.shape[1] > model.num_expression:
            raise InputError(f"The sequence has {expression.shape[1]} expression components but the FLAME model only "
                             f"{model.num_expression}.")
        return flame_head.write_flame_animation(self.head, expression, jaw, eyes, start_frame=start_frame, name=name,
                                                fps=fps)

    def read_flame(self, frames):
        """The head's evaluated FLAME expression, jaw and eyes (or None) at `frames`."""
        return flame_head.read_flame_parameters(self.head, frames)


def face_target(obj, flame: FlameFile) -> ArkitFace | FlameHead:
    """`obj` as a face that can take keys, or InputError (one sentence) saying why not; nothing is changed."""
    if flame_head.is_flame_head(obj):
        return FlameHead(flame_head.check_flame_target(obj, flame.model()), flame)
    return ArkitFace(obj, writer.check_target(obj), flame)


def clear_generated(obj) -> int:
    """Remove what I2FET made on `obj`'s shape keys, on the object (head motion) and on its rig, if it has one;
    returns the actions removed."""
    owners = [getattr(getattr(obj, "data", None), "shape_keys", None), obj, flame_head.find_rig(obj)]
    for owner in owners[1:]:
        if owner is not None:
            head_motion.restore_rest(owner)
    return sum(shape_keys.clear_generated_on(owner) for owner in owners if owner is not None)


def animated_frames(obj) -> list[int]:
    """Whole frames spanned by the active actions of the object's shape keys, the object itself and its rig."""
    if obj is None or obj.type != "MESH":
        raise InputError("Select the animated face mesh to export.")
    lo, hi = None, None
    for owner in (getattr(obj.data, "shape_keys", None), obj, flame_head.find_rig(obj)):
        ad = getattr(owner, "animation_data", None)
        if ad is not None and ad.action is not None:
            start, end = ad.action.frame_range
            lo = start if lo is None else min(lo, start)
            hi = end if hi is None else max(hi, end)
    if lo is None:
        raise InputError(f"{obj.name!r} has no animation to export.")
    return list(range(int(np.floor(lo)), int(np.ceil(hi)) + 1))


def export_fbx(context, obj, filepath: str, preset: str, frame_range: tuple[int, int] | None = None,
               use_scene_range: bool = False, staged_path: str | None = None) -> fbx_export.ExportReport:
    """Export the face with its shape-key animation (see `fbx_export`) as a clip from time 0 over `frame_range`, by
    default the frames its active actions span (`use_scene_range`: the scene's range at the scene's times); says so
    when its rig (a FLAME head's jaw and eyes) is animated too: the FBX carries the mesh and its shape keys only."""
    rig = flame_head.find_rig(obj) if obj is not None and obj.type == "MESH" else None
    if frame_range is None and not use_scene_range and _has_active_action(obj):
        frames = animated_frames(obj)
        frame_range = (frames[0], frames[-1])
    report = fbx_export.export_face(context, obj, filepath, preset=preset, frame_range=frame_range,
                                    owners=[rig] if rig is not None else [], staged_path=staged_path)
    if rig is not None and rig.animation_data is not None and rig.animation_data.action is not None:
        report.warnings.append(f"The FBX holds {obj.name!r} and its shape keys but not the animation of its rig "
                               f"{rig.name!r} (only the mesh is exported).")
    return report


def _has_active_action(obj) -> bool:
    key = getattr(getattr(obj, "data", None), "shape_keys", None) if obj is not None and obj.type == "MESH" else None
    return key is not None and key.animation_data is not None and key.animation_data.action is not None
