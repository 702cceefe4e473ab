"""Head motion on real Blender: "nod" as rotation curves of the head in an action of their own (object, parent
armature bone), cleared with the rest, exported in the FBX; and the sidebar's natural idle motion switch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blender_helpers import bpy, make_animation
from i2fet_blender import targets
from i2fet_blender.utils import action_compat as compat
from model_runtime.errors import InputError

NO_FLAME = targets.FlameFile("", "in the test")


@pytest.fixture(scope="module")
def nod():
    """ "nod twice" from the shipped model: the ground truth is its head_rotation, not the Blender code."""
    from model_runtime.runtime import Runtime

    anim = Runtime.load(device="cpu").generate("nod twice", fps=30)
    assert anim.head_rotation is not None
    return anim


def _curve(owner, path, index):
    ad = owner.animation_data
    return next(fc for fc in compat.iter_fcurves(ad.action, compat.active_slot(ad))
                if fc.data_path == path and fc.array_index == index)


def _peaks(values, below):
    """Separate runs of frames under `below` (each nod is one)."""
    under = np.asarray(values) < below
    return int(np.sum(under[1:] & ~under[:-1]) + under[0])


def _nose_height(obj, nose_index, frame):
    bpy.context.scene.frame_set(frame)
    bpy.context.view_layer.update()
    return (obj.matrix_world @ obj.data.vertices[nose_index].co).z


def test_nod_turns_the_head_object_on_top_of_its_rest_rotation(head, nod):
    head.rotation_euler = (0.1, 0.0, 0.2)
    pitch = nod.head_rotation[:, 1]
    count = len(pitch)
    result = targets.face_target(head, NO_FLAME).write(nod, start_frame=1, fps=30)
    assert result.end_frame == count
    action = head.animation_data.action
    assert action.get("i2fet") and action is not head.data.shape_keys.animation_data.action
    frames = range(1, count + 1)
    x = np.array([_curve(head, "rotation_euler", 0).evaluate(f) for f in frames])
    # Chin down (pitch < 0) turns the face, which looks along -Y, downwards: +X on top of the rest 0.1.
    np.testing.assert_allclose(x, 0.1 - pitch, atol=1e-5)
    assert x.max() == pytest.approx(0.1 - pitch.min(), abs=1e-5) and x.min() == pytest.approx(0.1, abs=1e-5)
    assert _peaks(pitch, pitch.min() / 2) == 2 and _peaks(-x, -0.1 - (x.max() - 0.1) / 2) == 2
    for index, rest in ((1, 0.0), (2, 0.2)):
        values = [_curve(head, "rotation_euler", index).evaluate(f) for f in frames]
        np.testing.assert_allclose(values, rest, atol=1e-5)
    # the nose really goes down at the deepest nod
    nose = int(np.argmin([v.co.y for v in head.data.vertices]))
    deepest = int(np.argmin(pitch)) + 1
    assert _nose_height(head, nose, deepest) < _nose_height(head, nose, 1) - 0.005
    assert targets.animated_frames(head)[-1] == count
    # generating again mid-nod still starts from the rest rotation, not from that frame's
    bpy.context.scene.frame_set(deepest)
    targets.face_target(head, NO_FLAME).write(nod, start_frame=1, fps=30)
    x = np.array([_curve(head, "rotation_euler", 0).evaluate(f) for f in frames])
    np.testing.assert_allclose(x, 0.1 - pitch, atol=1e-5)
    # Clear removes all the actions and puts the head back at its rest rotation
    bpy.context.scene.frame_set(deepest)
    assert targets.clear_generated(head) == 4
    assert tuple(head.rotation_euler) == pytest.approx((0.1, 0.0, 0.2), abs=1e-6)
    assert head.animation_data.action is None and head.data.shape_keys.animation_data.action is None
    assert not [a for a in bpy.data.actions if a.get("i2fet")]


def test_no_head_motion_leaves_the_object_animation_alone(head):
    head.keyframe_insert("location", frame=1)
    user_action = head.animation_data.action
    anim = make_animation()
    assert anim.head_rotation is None
    targets.face_target(head, NO_FLAME).write(anim, start_frame=1, fps=30)
    assert head.animation_data.action is user_action and not len(head.animation_data.nla_tracks)
    assert targets.clear_generated(head) == 1 and head.animation_data.action is user_action


def test_a_face_parented_to_a_rig_turns_its_head_bone(head, nod):
    armature = bpy.data.armatures.new("Body")
    rig = bpy.data.objects.new("Body", armature)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head_at, tail in (("Spine", (0, 0, -1), (0, 0, -0.5)), ("Head", (0, 0, -0.5), (0, 0, 0.3))):
        bone = armature.edit_bones.new(name)
        bone.head, bone.tail = head_at, tail
    armature.edit_bones["Head"].parent = armature.edit_bones["Spine"]
    bpy.ops.object.mode_set(mode="OBJECT")
    head.parent = rig
    rig.pose.bones["Head"].rotation_mode = "XYZ"
    targets.face_target(head, NO_FLAME).write(nod, start_frame=1, fps=30)
    assert head.animation_data is None or head.animation_data.action is None
    assert rig.animation_data.action.get("i2fet")
    bone_rest = np.array(armature.bones["Head"].matrix_local.to_3x3())
    deepest = int(np.argmin(nod.head_rotation[:, 1])) + 1
    bpy.context.scene.frame_set(deepest)
    turned = bone_rest @ np.array(rig.pose.bones["Head"].matrix_basis.to_3x3()) @ bone_rest.T  # armature space
    angle = -nod.head_rotation[deepest - 1, 1]
    expected = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    np.testing.assert_allclose(turned, expected, atol=1e-5)  # about the armature's X, chin down
    assert targets.clear_generated(head) == 2 and rig.animation_data.action is None
    np.testing.assert_allclose(np.array(rig.pose.bones["Head"].matrix_basis), np.eye(4), atol=1e-6)  # back at rest


def test_fbx_carries_the_head_rotation(tmp_path, head, nod):
    pitch = nod.head_rotation[:, 1]
    result = targets.face_target(head, NO_FLAME).write(nod, start_frame=1, fps=30)
    path = tmp_path / "nod.fbx"
    targets.export_fbx(bpy.context, head, str(path), preset="BLENDER", frame_range=(1, result.end_frame))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    imported = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    assert imported.data.shape_keys.animation_data.action is not None
    x = np.array([_curve(imported, "rotation_euler", 0).evaluate(f) for f in range(1, result.end_frame + 1)])
    assert x.max() - x.min() == pytest.approx(pitch.max() - pitch.min(), abs=2e-3)
    np.testing.assert_allclose(x - x[0], pitch[0] - pitch, atol=2e-3)


def test_natural_idle_motion_is_on_in_the_sidebar_and_reaches_the_runtime(fake_runtime):
    scene = bpy.context.scene
    assert scene.i2fet.life is True
    bpy.ops.i2fet.add_default_head()
    assert bpy.ops.i2fet.generate(instruction="smile") == {"FINISHED"}
    scene.i2fet.life = False
    assert bpy.ops.i2fet.generate(instruction="smile") == {"FINISHED"}
    assert fake_runtime.life == [True, False]


def _rx(angle):
    return np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])


def test_a_flame_head_nods_on_its_neck_bone(head_flame, cache_root, nod):
    from i2fet_blender.flame_head import add_flame_head, find_rig

    head_flame.install()
    obj = add_flame_head(bpy.context, head_flame.model, correctives=False)
    rig = find_rig(obj)
    target = targets.face_target(obj, targets.FlameFile(str(head_flame.path), "in the test"))
    target.write(nod, start_frame=1, fps=30)
    action = rig.animation_data.action
    paths = {fc.data_path for fc in compat.iter_fcurves(action, compat.active_slot(rig.animation_data))}
    assert 'pose.bones["neck"].rotation_euler' in paths and 'pose.bones["jaw"].rotation_euler' in paths
    deepest = int(np.argmin(nod.head_rotation[:, 1])) + 1
    bpy.context.scene.frame_set(deepest)
    bone_rest = np.array(rig.data.bones["neck"].matrix_local.to_3x3())
    turned = bone_rest @ np.array(rig.pose.bones["neck"].matrix_basis.to_3x3()) @ bone_rest.T
    axes = target.head.flame_axes / np.linalg.norm(target.head.flame_axes, axis=0)
    # FLAME's x is the character's left: chin down is a positive turn about it
    np.testing.assert_allclose(turned, axes @ _rx(-nod.head_rotation[deepest - 1, 1]) @ axes.T, atol=1e-5)
    assert obj.animation_data is None or obj.animation_data.action is None
    assert targets.clear_generated(obj) == 2 and rig.animation_data.action is None


def test_yaw_and_roll_turn_towards_the_characters_left(head):
    anim = make_animation(num_frames=3)
    anim.head_rotation = np.array([[0, 0, 0], [0.3, 0, 0], [0, 0, 0.3]], dtype=np.float32)
    targets.face_target(head, NO_FLAME).write(anim, start_frame=1, fps=anim.fps)
    nose = int(np.argmin([v.co.y for v in head.data.vertices]))
    top = int(np.argmax([v.co.z for v in head.data.vertices]))

    def world(index, frame):
        bpy.context.scene.frame_set(frame)
        bpy.context.view_layer.update()
        return np.array(head.matrix_world @ head.data.vertices[index].co)

    # the default head looks along -Y, so the character's own left is +X
    assert world(nose, 2)[0] > world(nose, 1)[0] + 0.01  # yaw > 0: the nose turns to the left
    assert world(top, 3)[0] > world(top, 1)[0] + 0.01  # roll > 0: the crown leans to the left
    # mirrored, both go the other way
    targets.face_target(head, NO_FLAME).write(anim, start_frame=1, fps=anim.fps, mirror=True)
    assert world(nose, 2)[0] < world(nose, 1)[0] - 0.01 and world(top, 3)[0] < world(top, 1)[0] - 0.01


def test_a_linked_rig_is_refused_before_anything_is_written(head, nod, monkeypatch):
    from i2fet_blender import head_motion

    monkeypatch.setattr(head_motion, "is_linked", lambda owner: owner is head)
    with pytest.raises(InputError, match="linked from another file"):
        targets.face_target(head, NO_FLAME).write(nod, start_frame=1, fps=30)
    assert head.data.shape_keys.animation_data is None or head.data.shape_keys.animation_data.action is None
