"""Shape-key and action primitives every writer builds on: read a mesh's keys and rest shape, write curves as a
new tagged action without losing the one that was there, clear what I2FET made, sample curves back.

Policy (never overwrite): a new action becomes the *active* action of its owner (shape keys, a rig), so it is what
the Dope Sheet shows for editing and what the FBX exporter bakes; the previously active action, if any, is pushed
down onto a new NLA track named ``"I2FET kept: <action>"`` with all its keys, where it keeps playing underneath
(channels the new action does not key still come from it). Existing NLA tracks are left alone. Every action made here
carries the custom property ``i2fet``, so clearing removes exactly what I2FET made and puts the kept action back.
Curves are written with `keyframe_points.add()` + `foreach_set("co", ...)`, then `fcurve.update()`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Euler, Matrix

from model_runtime.errors import InputError

from . import keys as keymath
from .utils import action_compat as compat

TAG = "i2fet"
KEPT_TRACK_PREFIX = "I2FET kept: "
DEFAULT_TOLERANCE = 0.002  # shape-key weight units; below what anyone sees on a face
INTERPOLATIONS = ("LINEAR", "BEZIER", "CONSTANT")


def is_linked(obj) -> bool:
    """True for data the user cannot edit in this file: linked from a library or a library override."""
    for id_block in (obj, getattr(obj, "data", None), getattr(getattr(obj, "data", None), "shape_keys", None)):
        if id_block is None:
            continue
        if getattr(id_block, "library", None) is not None or getattr(id_block, "override_library", None) is not None:
            return True
    return False


def shape_key_names(obj) -> list[str]:
    """Names of the object's shape keys, without the reference (Basis) key."""
    key = getattr(getattr(obj, "data", None), "shape_keys", None)
    if key is None:
        return []
    ref = key.reference_key
    return [kb.name for kb in key.key_blocks if ref is None or kb.name != ref.name]


def rest_coordinates(obj) -> np.ndarray:
    """(V,3) float64 rest positions: the reference (Basis) key where there are shape keys, else the mesh's own."""
    count = len(obj.data.vertices)
    coords = np.empty(count * 3, dtype=np.float32)
    key = obj.data.shape_keys
    source = key.reference_key.data if key is not None and key.reference_key is not None else obj.data.vertices
    source.foreach_get("co", coords)
    return coords.reshape(count, 3).astype(np.float64)


def _enum_index(struct_rna, prop: str, value: str) -> int:
    return struct_rna.properties[prop].enum_items.keys().index(value)


def shape_key_path(name: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


@dataclass
class CurvesWritten:
    action: bpy.types.Action
    num_keys: int
    kept_track: str | None


def write_curves(owner, curves, *, start_frame: int, name: str, anim=None, fps: float = 30.0, reduce: bool = False,
                 tolerance: float = DEFAULT_TOLERANCE, interpolation: str = "LINEAR") -> CurvesWritten:
    """Write `curves` [(data_path, array_index, values per frame)] as a new tagged action on `owner` (an ID with
    animation data: shape keys, an armature object), keys on consecutive frames from `start_frame`; the active action
    is pushed down (see the module docstring)."""
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"Interpolation must be one of {', '.join(INTERPOLATIONS)}, not {interpolation!r}.")
    ad = owner.animation_data or owner.animation_data_create()
    action, slot = compat.new_action(name, owner)
    action[TAG] = 1
    action["i2fet_instruction"] = str(getattr(anim, "instruction", ""))
    action["i2fet_fps"] = float(fps)
    segments_json = json.dumps(getattr(anim, "segments", []), default=str)
    if len(segments_json) <= 60000:  # the segment list, for tools that read the .blend later
        action["i2fet_segments"] = segments_json
    fcurves = compat.writable_fcurves(action, slot)
    interp_index = _enum_index(bpy.types.Keyframe.bl_rna, "interpolation", interpolation)
    num_keys = 0
    for data_path, index, values in curves:
        values = np.asarray(values, dtype=np.float32)
        count = values.shape[0]
        kept = keymath.reduce_keys(values, tolerance) if reduce and count > 2 else np.arange(count)
        co = np.empty((kept.shape[0], 2), dtype=np.float32)
        co[:, 0] = kept + int(start_frame)
        co[:, 1] = values[kept]
        fc = fcurves.new(data_path, index=index)
        points = fc.keyframe_points
        points.add(kept.shape[0])
        points.foreach_set("co", co.ravel())
        points.foreach_set("interpolation", np.full(kept.shape[0], interp_index, dtype=np.int32))
        fc.update()
        num_keys += int(kept.shape[0])
    kept_track = _push_down_active(ad)
    compat.assign_action(ad, action, slot)
    return CurvesWritten(action=action, num_keys=num_keys, kept_track=kept_track)


def _push_down_active(ad) -> str | None:
    """Move the active action (if any) onto a new NLA track on top, keeping its keys; returns the track name."""
    previous = ad.action
    if previous is None:
        return None
    slot = compat.active_slot(ad)
    track = ad.nla_tracks.new()
    track.name = KEPT_TRACK_PREFIX + previous.name
    start = int(np.floor(previous.frame_range[0]))
    strip = compat.new_strip(track, previous.name, start, previous, slot)
    strip.blend_type = ad.action_blend_type
    compat.assign_action(ad, None)
    return track.name


def is_generated(action) -> bool:
    return action is not None and bool(action.get(TAG, 0))


def clear_generated_on(owner) -> int:
    """Remove the I2FET actions (and their strips and tracks) of one animated ID and make the action it pushed down
    active again. Returns the number of I2FET actions removed."""
    ad = owner.animation_data
    if ad is None:
        return 0
    doomed = set()
    if is_generated(ad.action):
        doomed.add(ad.action)
        compat.assign_action(ad, None)
    for track in list(ad.nla_tracks):
        for strip in list(track.strips):
            if is_generated(strip.action):
                doomed.add(strip.action)
                track.strips.remove(strip)
        if not len(track.strips) and track.name.startswith("I2FET"):
            ad.nla_tracks.remove(track)
    if ad.action is None:
        kept = [t for t in ad.nla_tracks if t.name.startswith(KEPT_TRACK_PREFIX) and len(t.strips) == 1]
        if kept:
            track = kept[-1]  # the topmost one is the action that was active before the first generation
            strip = track.strips[0]
            action, slot = strip.action, compat.strip_slot(strip)
            ad.nla_tracks.remove(track)
            compat.assign_action(ad, action, slot)
    for action in doomed:
        if action.users == 0:
            bpy.data.actions.remove(action)
    return len(doomed)


def sample_curves(obj, frames) -> dict[str, np.ndarray]:
    """Evaluate the active action's shape-key curves at `frames`: {shape-key name: values} (used by tests/checks)."""
    key = obj.data.shape_keys
    ad = key.animation_data
    out: dict[str, np.ndarray] = {}
    if ad is None or ad.action is None:
        return out
    for fc in compat.iter_fcurves(ad.action, compat.active_slot(ad)):
        path = fc.data_path
        if path.startswith('key_blocks["') and path.endswith('"].value'):
            name = path[len('key_blocks["'):-len('"].value')].replace('\\"', '"').replace("\\\\", "\\")
            out[name] = np.array([fc.evaluate(f) for f in frames], dtype=np.float32)
    return out


def rotation_mode_curves(target, path: str, local: np.ndarray) -> list:
    """(data path, index, values) curves that give `target` (an object or pose bone) the (T,3,3) rotations `local`
    in its own rotation mode; `path` is the prefix of its rotation properties ("" or 'pose.bones["jaw"].').
    Quaternion signs and Euler angles are kept continuous from frame to frame, so interpolation takes the short way."""
    mode = target.rotation_mode
    if mode == "QUATERNION":
        values = np.array([list(Matrix(m.tolist()).to_quaternion()) for m in local])
        for t in range(1, len(values)):
            if np.dot(values[t], values[t - 1]) < 0:
                values[t] = -values[t]
        return [(f"{path}rotation_quaternion", i, values[:, i]) for i in range(4)]
    if mode == "AXIS_ANGLE":
        values = []
        for m in local:
            axis, angle = Matrix(m.tolist()).to_quaternion().to_axis_angle()
            values.append([angle, *axis])
        values = np.array(values)
        return [(f"{path}rotation_axis_angle", i, values[:, i]) for i in range(4)]
    values, previous = [], Euler(target.rotation_euler, mode)
    for m in local:
        previous = Matrix(m.tolist()).to_euler(mode, previous)
        values.append(list(previous))
    values = np.array(values)
    return [(f"{path}rotation_euler", i, values[:, i]) for i in range(3)]
