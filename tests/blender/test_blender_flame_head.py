"""The FLAME head in real Blender: its evaluated mesh equals the FLAME forward pass, and keys land where they should."""

import sys
from pathlib import Path

import numpy as np
import pytest

import bpy  # noqa: E402 - a missing bpy must fail the run, never skip the Blender tests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flame_samples import head_flame_arrays  # noqa: E402

from model_runtime.errors import InputError  # noqa: E402
from model_runtime.rigs import flame_forward_np, load_flame  # noqa: E402


@pytest.fixture(scope="module")
def flame_model(tmp_path_factory, cache_root):
    arrays, _ = head_flame_arrays()
    arrays["posedirs"] = np.random.default_rng(1).normal(0, 2e-3, arrays["posedirs"].shape)  # visible correctives
    path = tmp_path_factory.mktemp("flame") / "head_flame.npz"
    np.savez(path, **arrays)
    return load_flame(path)


def _evaluated(obj):
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    coords = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", coords)
    evaluated.to_mesh_clear()
    world = np.array(obj.matrix_world)
    coords = coords.reshape(-1, 3)
    return coords @ world[:3, :3].T + world[:3, 3]


def _flame_in_blender(model, expression, pose):
    verts, _ = flame_forward_np(model, None, expression[None], pose[None])
    from i2fet_blender.flame_head import FLAME_TO_BLENDER
    return verts[0] @ FLAME_TO_BLENDER.T


def _set_pose(rig, obj, expression, pose):
    for i, value in enumerate(expression):
        obj.data.shape_keys.key_blocks[f"Exp{i:03d}"].value = float(value)
    from mathutils import Matrix
    from model_runtime.rigs.flame_layer import rodrigues_np
    for j, name in enumerate(("root", "neck", "jaw", "left_eye", "right_eye")):
        rig.pose.bones[name].rotation_euler = Matrix(rodrigues_np(pose[3 * j:3 * j + 3]).tolist()).to_euler("XYZ")
    bpy.context.view_layer.update()


def test_flame_head_matches_the_flame_forward_pass(flame_model):
    from i2fet_blender.flame_head import add_flame_head, find_rig

    obj = add_flame_head(bpy.context, flame_model, correctives=True)
    rig = find_rig(obj)
    names = [kb.name for kb in obj.data.shape_keys.key_blocks]
    assert names[1] == "Exp000" and f"Exp{flame_model.num_expression - 1:03d}" in names
    assert "Pose_jaw_00" in names and len(names) == 1 + flame_model.num_expression + 36
    assert obj.data.shape_keys.key_blocks["Exp000"].slider_min < 0
    assert [b.name for b in rig.data.bones] == ["root", "neck", "jaw", "left_eye", "right_eye"]
    rng = np.random.default_rng(0)
    # Pose only (joints at the template's): exact up to float32.
    pose = np.zeros(15)
    pose[3:6] = rng.normal(0, 0.1, 3)
    pose[6:9] = [0.3, 0.05, -0.04]
    pose[9:15] = rng.normal(0, 0.1, 6)
    zero = np.zeros(flame_model.num_expression)
    _set_pose(rig, obj, zero, pose)
    got, want = _evaluated(obj), _flame_in_blender(flame_model, zero, pose)
    assert np.abs(got - want).max() < 2e-5
    # The correctives matter: without their drivers the mesh would be off by more than the tolerance above.
    corrective_effect = np.abs(want - _flame_in_blender_without_correctives(flame_model, pose)).max()
    assert corrective_effect > 1e-4
    # Expression only: exact as well.
    expression = rng.normal(0, 1, flame_model.num_expression)
    _set_pose(rig, obj, expression, np.zeros(15))
    assert np.abs(_evaluated(obj) - _flame_in_blender(flame_model, expression, np.zeros(15))).max() < 2e-5


def _flame_in_blender_without_correctives(model, pose):
    from dataclasses import replace
    flat = replace(model, posedirs=np.zeros_like(model.posedirs))
    return _flame_in_blender(flat, np.zeros(model.num_expression), pose)


def test_scene_units_are_applied(flame_model):
    from i2fet_blender.flame_head import add_flame_head

    bpy.context.scene.unit_settings.scale_length = 0.01  # a centimetre scene
    obj = add_flame_head(bpy.context, flame_model, correctives=False)
    coords = np.empty(len(obj.data.vertices) * 3)
    obj.data.vertices.foreach_get("co", coords)
    height = np.ptp(coords.reshape(-1, 3)[:, 2])
    assert abs(height - 100 * np.ptp(flame_model.v_template[:, 1])) < 1e-3


def test_keys_flame_parameters_and_reads_them_back(flame_model):
    from i2fet_blender.targets import clear_generated
    from i2fet_blender.flame_head import add_flame_head, check_flame_target, read_flame_parameters, \
        write_flame_animation

    obj = add_flame_head(bpy.context, flame_model, correctives=True)
    target = check_flame_target(obj, flame_model)
    frames = 12
    t = np.linspace(0, 1, frames)[:, None]
    expression = np.sin(3 * t + np.arange(flame_model.num_expression)[None] * 0.1)
    jaw = np.c_[0.35 * t[:, 0], 0.02 * t[:, 0], np.zeros(frames)]
    result = write_flame_animation(target, expression, jaw, start_frame=5)
    assert result.end_frame == 5 + frames - 1
    exp_back, jaw_back, eyes_back = read_flame_parameters(target, range(5, 5 + frames))
    assert np.abs(eyes_back).max() < 1e-6  # no eye keys were written
    np.testing.assert_allclose(exp_back, expression, atol=1e-5)
    np.testing.assert_allclose(jaw_back, jaw, atol=1e-4)
    bpy.context.scene.frame_set(5 + frames - 1)
    assert obj.data.shape_keys.key_blocks["Pose_jaw_22"].value == pytest.approx(np.cos(0.35) * np.cos(0.02) - 1,
                                                                                  abs=1e-3)
    assert clear_generated(obj) == 2
    assert obj.data.shape_keys.animation_data.action is None and find_rig_action(obj) is None


def find_rig_action(obj):
    from i2fet_blender.flame_head import find_rig
    ad = find_rig(obj).animation_data
    return None if ad is None else ad.action


def test_heads_made_elsewhere_are_measured_not_assumed(flame_model):
    """A FLAME-add-on-style head: mesh data in FLAME's own axes, the object turned 90 degrees, a jaw bone with another
    rest orientation. Keyed jaw rotation must still open the jaw the way FLAME does."""
    from mathutils import Matrix
    from i2fet_blender.flame_head import check_flame_target, write_flame_animation

    mesh = bpy.data.meshes.new("addon")
    mesh.from_pydata(flame_model.v_template.tolist(), [], flame_model.f.tolist())
    obj = bpy.data.objects.new("addon", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.rotation_euler = (np.pi / 2, 0, 0)
    obj.shape_key_add(name="Basis")
    for i in range(3):
        obj.shape_key_add(name=f"Exp{i:03d}")
    arm = bpy.data.armatures.new("rig")
    rig = bpy.data.objects.new("rig", arm)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    jaw_joint = (flame_model.J_regressor @ flame_model.v_template)[2]
    bone = arm.edit_bones.new("Jaw")
    world_joint = np.array(Matrix.Rotation(np.pi / 2, 3, "X")) @ jaw_joint
    bone.head = world_joint.tolist()
    bone.tail = (world_joint + [0, -0.03, 0.0]).tolist()  # pointing forward, not up
    bone.roll = 0.4
    bpy.ops.object.mode_set(mode="OBJECT")
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = rig
    group = obj.vertex_groups.new(name="Jaw")
    jaw_weights = flame_model.weights[:, 2]
    for index in np.flatnonzero(jaw_weights > 0.999):
        group.add([int(index)], 1.0, "REPLACE")
    bpy.context.view_layer.update()
    target = check_flame_target(obj, flame_model)
    assert target.jaw_bone == "Jaw" and target.expression_keys == {0: "Exp000", 1: "Exp001", 2: "Exp002"}
    write_flame_animation(target, np.zeros((2, 3)), np.array([[0, 0, 0], [0.3, 0, 0]]), start_frame=1)
    bpy.context.scene.frame_set(2)
    moved = _evaluated(obj)
    rigid = np.flatnonzero(jaw_weights > 0.999)
    # This head has no corrective keys; the object maps FLAME axes (Y up, +Z forward) onto Blender's, so world
    # coordinates compare directly.
    want = _flame_in_blender_without_correctives(flame_model, np.r_[np.zeros(6), 0.3, 0, 0, np.zeros(6)])
    assert np.abs(moved[rigid] - want[rigid]).max() < 1e-4


@pytest.mark.parametrize("case", ["vertex_count", "other_file", "no_exp_keys"])
def test_wrong_heads_are_refused_with_nothing_changed(flame_model, case):
    from dataclasses import replace
    from i2fet_blender.flame_head import add_flame_head, check_flame_target

    obj = add_flame_head(bpy.context, flame_model, correctives=False)
    model = flame_model
    if case == "vertex_count":
        bpy.context.view_layer.objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        bpy.ops.mesh.subdivide()
        bpy.ops.object.mode_set(mode="OBJECT")
        message = "vertices but the FLAME model has"
    elif case == "other_file":
        model = replace(flame_model, sha256="0" * 64)
        message = "another FLAME file"
    else:
        for block in list(obj.data.shape_keys.key_blocks)[1:]:
            block.name = "Smile" + block.name
        message = "no Exp### shape keys"
    names_before = [kb.name for kb in obj.data.shape_keys.key_blocks]
    with pytest.raises(InputError, match=message):
        check_flame_target(obj, model)
    assert [kb.name for kb in obj.data.shape_keys.key_blocks] == names_before
    assert obj.data.shape_keys.animation_data is None
