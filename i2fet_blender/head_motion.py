"""Head motion: an `Animation`'s head rotation (yaw, pitch, roll) as rotation curves on the head, in a generated action
of its own, so Clear Generated Animation removes it and the shape-key action stays what it was.

Where it goes (`head_mover`):
* a FLAME head: its rig's neck bone (else root), in FLAME's frame through the head's measured axes
  (`FlameTarget.flame_axes`), written with the rig's other generated curves;
* an ARKit face whose rig (its armature parent or Armature modifier) has a head (else neck) bone: that bone;
* otherwise the face object itself.
The motion is applied on top of the rotation the object or bone has when generating (its rest), in its own rotation
mode. Outside FLAME, the face is taken to look along -Y with Z up (Blender's front view, as the default head does) in
its object's (or armature's) space; the Animation's signs are those of `model_runtime.actions` (yaw > 0 towards the
character's own left, pitch > 0 chin up, roll > 0 towards the left shoulder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Euler

from model_runtime.errors import InputError

from . import keys as keymath
from .flame_head import find_rig
from .shape_keys import is_generated, is_linked, rotation_mode_curves, write_curves

REST = "i2fet_rest"  # on a head-motion action: JSON [[data_path, index, value], ...], the rotation before I2FET's
HEAD_BONES = ("head", "neck")  # a rig's bone that turns an ARKit face parented to it, first found wins
FLAME_HEAD_BONES = ("neck", "root")


@dataclass
class HeadMover:
    owner: object  # the ID that takes the action: the face object or an armature object
    bone: str | None  # the pose bone that turns, or None for the object itself
    axes: np.ndarray  # (3, 3): columns are the face's left, up and forward axes in the owner's space


def _axes_blender() -> np.ndarray:
    # Face looks along -Y, up +Z: the character's left is +X.
    return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _find_bone(rig, names) -> str | None:
    if rig is None or rig.type != "ARMATURE":
        return None
    lowered = {bone.name.lower(): bone.name for bone in rig.pose.bones}
    return next((lowered[n] for n in names if n in lowered), None)


def head_mover(obj, flame_target=None) -> HeadMover:
    """What turns `obj`'s head: the FLAME rig's neck, its rig's head/neck bone, or the object itself; InputError if
    that cannot take keys."""
    if flame_target is not None:
        bone = _find_bone(flame_target.rig, FLAME_HEAD_BONES)
        if bone is not None:
            # FLAME's frame: x to the character's left, y up, z forward (where the face looks).
            return _checked(HeadMover(flame_target.rig, bone, np.asarray(flame_target.flame_axes, dtype=np.float64)))
        return _checked(HeadMover(obj, None, _axes_blender()))
    rig = find_rig(obj)
    bone = _find_bone(rig, HEAD_BONES)
    if bone is not None:
        return _checked(HeadMover(rig, bone, _axes_blender()))
    return _checked(HeadMover(obj, None, _axes_blender()))


def _checked(mover: HeadMover) -> HeadMover:
    """InputError (one sentence) for an owner that cannot take a new action, before anything is written."""
    if is_linked(mover.owner):
        raise InputError(f"{mover.owner.name!r} is linked from another file or overridden; make it local so the head "
                         f"motion can be keyed.")
    ad = mover.owner.animation_data
    if ad is not None and ad.use_tweak_mode:
        raise InputError(f"{mover.owner.name!r} is in NLA tweak mode; leave tweak mode first.")
    return mover


def _face_rotations(ypr: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations in the face's own frame (columns left, up, forward) from yaw, pitch, roll."""
    out = np.empty((ypr.shape[0], 3, 3))
    for t, (yaw, pitch, roll) in enumerate(np.asarray(ypr, dtype=np.float64)):
        # chin up turns forward towards up: -pitch about left; yaw turns forward towards left: +yaw about up;
        # roll brings up towards left: -roll about forward. Applied roll, then pitch, then yaw (head on the neck).
        out[t] = np.array(Euler((-pitch, yaw, -roll), "ZXY").to_matrix())
    return out


def rotation_curves(mover: HeadMover, ypr: np.ndarray) -> list:
    """Curves [(data_path, index, values)] turning the mover by `ypr` (T, 3) on top of its current rotation."""
    restore_rest(mover.owner)  # relative to the head's own rotation, not to a frame of an earlier generation
    axes = mover.axes / np.linalg.norm(mover.axes, axis=0)
    delta = np.einsum("ij,tjk,lk->til", axes, _face_rotations(ypr), axes)  # in the owner's space
    if mover.bone is None:
        target = mover.owner
        path = ""
        rest = np.array(target.matrix_basis.to_3x3().normalized())
        local = np.einsum("ij,tjk->tik", rest, delta)  # the face's axes are the object's own
    else:
        target = mover.owner.pose.bones[mover.bone]
        path = f'pose.bones["{bpy.utils.escape_identifier(mover.bone)}"].'
        bone_rest = np.array(target.bone.matrix_local.to_3x3().normalized())
        basis = np.array(target.matrix_basis.to_3x3().normalized())
        local = np.einsum("ij,tjk->tik", basis, np.einsum("ji,tjk,kl->til", bone_rest, delta, bone_rest))
    return rotation_mode_curves(target, path, local)


def frames_at(anim, fps: float, mirror: bool = False) -> np.ndarray | None:
    """The animation's head rotation resampled to `fps` (yaw and roll negated when mirrored), or None if it has none."""
    head = getattr(anim, "head_rotation", None)
    if head is None:
        return None
    head = np.asarray(head, dtype=np.float32)
    if mirror:
        head = head * np.array([-1.0, 1.0, -1.0], dtype=np.float32)
    return keymath.resample(head, float(anim.fps), float(fps))


def write_head_motion(mover: HeadMover, curves: list, **common) -> int:
    """Write `rotation_curves` as a new generated action on the mover's owner (see `shape_keys.write_curves`);
    returns the number of keys. The rotation it starts from is kept on the action for `restore_rest`."""
    owner = mover.owner
    rest = _rest_record(owner) or [[path, index, float(owner.path_resolve(path, False)[index])]
                                   for path, index, _ in curves]
    written = write_curves(owner, curves, **common)
    written.action[REST] = json.dumps(rest)
    return written.num_keys


def _rest_record(owner) -> list | None:
    ad = owner.animation_data
    if ad is None:
        return None
    actions = [strip.action for track in ad.nla_tracks for strip in track.strips] + [ad.action]
    for action in actions:  # bottom track first: the rotation from before the first generation
        if is_generated(action) and REST in action:
            return json.loads(action[REST])
    return None


def restore_rest(owner) -> None:
    """Put back the rotation the head had before I2FET moved it (without an action, Blender keeps the last frame's)."""
    for path, index, value in _rest_record(owner) or ():
        owner.path_resolve(path, False)[index] = value
