"""Each check of the FBX pre-flight and of the shape-key writer, on both sides of its condition: a removed or
flipped check makes one of these fail (scripts/mutation_test.py runs this file first against every mutant)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from blender_helpers import add_cube_with_keys, bpy, make_animation
from i2fet_blender import fbx_export, writer
from i2fet_blender.utils import action_compat as compat
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS

KEYS = ("jawOpen", "mouthSmileLeft", "mouthSmileRight")


@pytest.fixture
def face(factory_scene):
    obj = add_cube_with_keys(KEYS)
    factory_scene.frame_start, factory_scene.frame_end = 1, 31
    return obj


def keyed(face):
    return writer.write_animation(face, make_animation(num_frames=31), start_frame=1)


def test_a_clean_keyed_face_passes_with_no_problem_and_no_warning(face):
    keyed(face)
    check = fbx_export.preflight(face, bpy.context.scene)
    assert check.problems == [] and check.warnings == []


def test_nothing_selected_or_not_a_mesh(face):
    assert fbx_export.preflight(None, bpy.context.scene).problems == ["Select the face mesh to export."]
    empty = bpy.data.objects.new("Empty", None)
    assert fbx_export.preflight(empty, bpy.context.scene).problems == ["Select the face mesh to export."]


def test_no_shape_keys_or_only_the_basis(face):
    bare = bpy.data.objects.new("Bare", bpy.data.meshes.new("Bare"))
    assert "has no shape keys" in fbx_export.preflight(bare, bpy.context.scene).problems[0]
    basis_only = add_cube_with_keys((), name="BasisOnly")
    assert "has no shape keys" in fbx_export.preflight(basis_only, bpy.context.scene).problems[0]
    one_key = add_cube_with_keys(("jawOpen",), name="OneKey")
    assert "no animation" in fbx_export.preflight(one_key, bpy.context.scene).problems[0]


def test_absolute_shape_keys_are_refused(face):
    keyed(face)
    face.data.shape_keys.use_relative = False
    problems = fbx_export.preflight(face, bpy.context.scene).problems
    assert len(problems) == 1 and "absolute (not relative)" in problems[0]
    with pytest.raises(InputError, match="absolute"):
        fbx_export.export_face(bpy.context, face, "/tmp/never-absolute.fbx")


def test_all_curves_muted_is_refused_some_muted_is_not(face):
    keyed(face)
    curves = fbx_export._key_curves(face)
    assert len(curves) == len(KEYS)
    curves[0].mute = True
    assert fbx_export.preflight(face, bpy.context.scene).problems == []
    for fc in curves:
        fc.mute = True
    problems = fbx_export.preflight(face, bpy.context.scene).problems
    assert len(problems) == 1 and "is muted" in problems[0]


def test_nla_tweak_mode_is_refused(face):
    result = keyed(face)
    ad = face.data.shape_keys.animation_data
    compat.new_strip(ad.nla_tracks.new(), "gen", 1, result.action, compat.active_slot(ad))
    assert fbx_export.preflight(face, bpy.context.scene).problems == []
    ad.use_tweak_mode = True
    assert ad.use_tweak_mode
    problems = fbx_export.preflight(face, bpy.context.scene).problems
    assert problems and "tweak mode" in problems[-1]
    with pytest.raises(InputError, match="NLA tweak mode"):
        writer.check_target(face)
    ad.use_tweak_mode = False
    assert writer.check_target(face).mapping


def test_modifiers(face):
    keyed(face)
    scene = bpy.context.scene
    face.modifiers.new("Arm", "ARMATURE")
    assert fbx_export.preflight(face, scene).warnings == []  # an armature modifier is exported as a skin
    sub = face.modifiers.new("Sub", "SUBSURF")
    assert "Sub are not applied" in fbx_export.preflight(face, scene).warnings[0]
    assert fbx_export.preflight(face, scene).problems == []
    applied = fbx_export.preflight(face, scene, use_mesh_modifiers=True)
    assert "Applying the modifiers Sub" in applied.problems[0] and applied.warnings == []
    sub.show_render = False
    assert "Sub are not applied" in fbx_export.preflight(face, scene).warnings[0]  # still shown
    sub.show_viewport, sub.show_render = False, True
    assert "Sub are not applied" in fbx_export.preflight(face, scene).warnings[0]  # still rendered
    sub.show_render = False
    assert fbx_export.preflight(face, scene).warnings == []
    assert fbx_export.preflight(face, scene, use_mesh_modifiers=True).problems == []


def test_no_keyframes_in_the_active_action(face):
    ad = face.data.shape_keys.animation_data_create()
    action, slot = compat.new_action("Empty", face.data.shape_keys)
    compat.assign_action(ad, action, slot)
    assert "has no shape-key keyframes" in fbx_export.preflight(face, bpy.context.scene).problems[0]
    compat.writable_fcurves(action, slot).new('key_blocks["jawOpen"].value')
    assert "has no shape-key keyframes" in fbx_export.preflight(face, bpy.context.scene).problems[0]


def test_muted_nla_tracks_do_not_count(face):
    result = keyed(face)
    ad = face.data.shape_keys.animation_data
    track = ad.nla_tracks.new()
    compat.new_strip(track, "gen", 1, result.action, compat.active_slot(ad))
    compat.assign_action(ad, None)
    assert fbx_export.preflight(face, bpy.context.scene).problems == []
    track.mute = True
    assert "have no animation" in fbx_export.preflight(face, bpy.context.scene).problems[0]


def test_muted_curves_in_nla_strips_only_are_exported_as_played(face):
    result = keyed(face)
    ad = face.data.shape_keys.animation_data
    compat.new_strip(ad.nla_tracks.new(), "gen", 1, result.action, compat.active_slot(ad))
    compat.assign_action(ad, None)
    for fc in compat.iter_fcurves(result.action):
        fc.mute = True
    check = fbx_export.preflight(face, bpy.context.scene)
    assert check.problems == [] and "only in NLA strips" in check.warnings[0]


def test_nla_strips_need_keyed_shape_key_curves(face):
    ad = face.data.shape_keys.animation_data_create()
    action, slot = compat.new_action("Other", face.data.shape_keys)
    curves = compat.writable_fcurves(action, slot)
    curves.new("eval_time").keyframe_points.insert(1, 0.5)  # keyed, but not a shape key
    curves.new('key_blocks["jawOpen"].value')  # a shape key, but no keys
    compat.new_strip(ad.nla_tracks.new(), "other", 1, action, slot)
    assert "hold no shape-key keyframes" in fbx_export.preflight(face, bpy.context.scene).problems[0]


def test_scene_range_and_names(face):
    keyed(face)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 31
    assert fbx_export.preflight(face, scene).warnings == []
    scene.frame_start = 2
    assert "outside the scene range" in fbx_export.preflight(face, scene).warnings[0]
    scene.frame_start, scene.frame_end = 1, 30
    assert "outside the scene range" in fbx_export.preflight(face, scene).warnings[0]
    scene.frame_end = 31
    face.data.shape_keys.key_blocks["mouthSmileLeft"].name = "a::b"
    assert "contains '::'" in fbx_export.preflight(face, scene).warnings[0]


def test_key_curves_only_shape_keys(face):
    assert fbx_export._key_curves(face) == []
    keyed(face)
    action = face.data.shape_keys.animation_data.action
    compat.writable_fcurves(action, compat.active_slot(face.data.shape_keys.animation_data)).new("eval_time")
    assert sorted(fc.data_path for fc in fbx_export._key_curves(face)) == sorted(
        f'key_blocks["{k}"].value' for k in KEYS)


# ---------------------------------------------------------------------------------------------------------------
# the writer's input checks


def test_check_target_refusals(face):
    with pytest.raises(InputError, match="Select a mesh"):
        writer.check_target(None)
    with pytest.raises(InputError, match="not a mesh"):
        writer.check_target(bpy.data.objects.new("Empty", None))
    with pytest.raises(InputError, match="has no shape keys"):
        writer.check_target(add_cube_with_keys((), name="Bare"))
    with pytest.raises(InputError, match="None of the shape keys"):
        writer.check_target(add_cube_with_keys(("foo", "bar"), name="Odd"))
    split = writer.check_target(add_cube_with_keys(("browInnerUp_L", "browInnerUp_R"), name="Split"))
    assert writer.keys_for(split, "browInnerUp") == ("browInnerUp_L", "browInnerUp_R")
    assert set(writer.check_target(face).mapping) == set(KEYS)


def test_the_writer_refuses_non_finite_and_malformed_frames_and_writes_nothing(face):
    frames = np.full((4, 52), 0.5, np.float32)
    frames[2, ARKIT_CHANNELS.index("jawOpen")] = np.nan
    for bad in (frames, np.where(np.isnan(frames), np.inf, frames)):
        anim = SimpleNamespace(frames=bad, fps=30, channels=list(ARKIT_CHANNELS), instruction="x", segments=[],
                               warnings=[])
        with pytest.raises(InputError, match="non-finite weights"):
            writer.write_animation(face, anim)
    for shape in ((0, 52), (4, 51), (52,)):
        anim = SimpleNamespace(frames=np.zeros(shape, np.float32), fps=30, channels=list(ARKIT_CHANNELS),
                               instruction="x", segments=[], warnings=[])
        with pytest.raises(InputError, match="at least one frame of 52 weights"):
            writer.write_animation(face, anim)
    with pytest.raises(InputError, match="Interpolation must be one of"):
        writer.write_animation(face, make_animation(), interpolation="SPLINE")
    assert face.data.shape_keys.animation_data is None or face.data.shape_keys.animation_data.action is None


def test_the_writer_keeps_values_order_and_range(face):
    anim = make_animation(num_frames=5)
    reordered = SimpleNamespace(frames=anim.frames[:, ::-1].copy(), fps=30, channels=list(ARKIT_CHANNELS)[::-1],
                                instruction="x", segments=[], warnings=["w"])
    result = writer.write_animation(face, reordered, start_frame=3)
    assert (result.start_frame, result.end_frame, result.num_keys) == (3, 7, 5 * len(KEYS))
    assert result.warnings == ["w"] and result.unmatched_channels and "mouthSmileLeft" in result.matched
    fc = next(fc for fc in fbx_export._key_curves(face) if "jawOpen" in fc.data_path)
    got = [fc.evaluate(f) for f in range(3, 8)]
    np.testing.assert_allclose(got, anim.frames[:, ARKIT_CHANNELS.index("jawOpen")], atol=1e-6)
    mirrored = writer.write_animation(face, anim, mirror=True)
    fc = next(fc for fc in fbx_export._key_curves(face) if "mouthSmileLeft" in fc.data_path)
    np.testing.assert_allclose([fc.evaluate(f) for f in range(1, 6)],
                               anim.frames[:, ARKIT_CHANNELS.index("mouthSmileRight")], atol=1e-6)
    assert mirrored.fps == 30.0 and writer.write_animation(face, anim, fps=60).end_frame == 1 + 8
    assert writer.write_animation(face, anim, name="Mine").action.name == "Mine"
    assert mirrored.action.name == "I2FET test smile"
