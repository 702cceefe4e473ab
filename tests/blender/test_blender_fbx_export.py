"""FBX export on real Blender: pre-flight checks, and a round trip (export, re-import, compare names, values, fps)."""

from __future__ import annotations

import numpy as np
import pytest

from blender_helpers import bpy, make_animation
from i2fet_blender import batch, fbx_export, targets, writer
from i2fet_blender.utils import action_compat as compat
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS


def test_preflight_names_what_would_drop_the_animation(head):
    scene = bpy.context.scene
    problems = fbx_export.preflight(head, scene).problems
    assert problems and "no animation" in problems[0]
    result = writer.write_animation(head, make_animation(num_frames=50), start_frame=1)
    scene.frame_start, scene.frame_end = 1, 20
    check = fbx_export.preflight(head, scene)
    assert not check.problems and "outside the scene range" in check.warnings[-1]
    assert not any("modifiers" in w for w in check.warnings)  # the default head's own display Subdivision
    head.modifiers.new("Bevel", "BEVEL")  # one the user added is named
    assert any("Bevel are not applied" in w for w in fbx_export.preflight(head, scene).warnings)
    assert "Bevel" in fbx_export.preflight(head, scene, use_mesh_modifiers=True).problems[0]
    head.modifiers.remove(head.modifiers["Bevel"])
    head.data.shape_keys.key_blocks["jawOpen"].name = "JAWOPEN"
    head.data.shape_keys.key_blocks["tongueOut"].name = "jawopen"
    assert any("differ only in case" in w for w in fbx_export.preflight(head, scene).warnings)
    # NLA-only (no active action): still exported as the scene plays it, with a warning
    ad = head.data.shape_keys.animation_data
    track = ad.nla_tracks.new()
    strip = compat.new_strip(track, "gen", 1, result.action, compat.active_slot(ad))
    compat.assign_action(ad, None)
    check = fbx_export.preflight(head, scene)
    assert not check.problems and any("only in NLA strips" in w for w in check.warnings)
    track.strips.remove(strip)
    empty, slot = compat.new_action("Empty", head.data.shape_keys)
    compat.new_strip(track, "empty", 1, empty, slot)
    assert "hold no shape-key keyframes" in fbx_export.preflight(head, scene).problems[0]
    with pytest.raises(InputError, match="no shape-key keyframes"):
        fbx_export.export_face(bpy.context, head, "/tmp/never.fbx")


def test_nla_only_animation_round_trips(tmp_path, head):
    scene = bpy.context.scene
    anim = make_animation(num_frames=31)
    result = writer.write_animation(head, anim, start_frame=1)
    ad = head.data.shape_keys.animation_data
    compat.new_strip(ad.nla_tracks.new(), "gen", 1, result.action, compat.active_slot(ad))
    compat.assign_action(ad, None)
    path = tmp_path / "nla.fbx"
    report = fbx_export.export_face(bpy.context, head, str(path), preset="BLENDER", frame_range=(1, 31))
    assert report.warnings and (scene.frame_start, scene.frame_end) == (1, 250)  # the scene range is restored
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    imported = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    curves = {fc.data_path: fc for fc in compat.iter_fcurves(imported.data.shape_keys.animation_data.action)}
    fc = curves['key_blocks["jawOpen"].value']
    got = np.array([fc.evaluate(f) for f in range(1, 32)])
    np.testing.assert_allclose(got, anim.frames[:, ARKIT_CHANNELS.index("jawOpen")], atol=2e-3)


@pytest.mark.parametrize("fps,preset", [(24, "UNITY"), (60, "UNREAL")])
def test_round_trip(tmp_path, head, fps, preset):
    scene = bpy.context.scene
    scene.render.fps = fps
    anim = make_animation(num_frames=fps + 1, fps=fps)  # 1 second
    result = writer.write_animation(head, anim, start_frame=1, fps=fps)
    scene.frame_start, scene.frame_end = result.start_frame, result.end_frame
    path = tmp_path / "face.fbx"
    report = fbx_export.export_face(bpy.context, head, str(path), preset=preset)
    assert path.is_file() and report.frame_range == (1, fps + 1)
    assert not list(tmp_path.glob(".*tmp*"))  # the staged temporary was moved into place

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path))  # anim_offset defaults to 1.0: keys come back one frame later
    imported = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    key = imported.data.shape_keys
    assert [kb.name for kb in key.key_blocks][1:] == list(ARKIT_CHANNELS)
    assert bpy.context.scene.render.fps == fps  # the importer sets the scene rate from the file
    action = key.animation_data.action
    curves = {fc.data_path: fc for fc in compat.iter_fcurves(action)}
    for i in (ARKIT_CHANNELS.index("jawOpen"), ARKIT_CHANNELS.index("mouthSmileLeft"), 0, 51):
        fc = curves[f'key_blocks["{ARKIT_CHANNELS[i]}"].value']
        lo, hi = fc.range()
        assert (lo, hi) == (2, fps + 2)  # exported frames 1..N+1 come back shifted by anim_offset
        got = np.array([fc.evaluate(f + 1) for f in range(1, fps + 2)])
        np.testing.assert_allclose(got, anim.frames[:, i], atol=2e-3)


def _read_back(path):
    """Import `path` into an empty scene at the file's own times; returns {data_path: F-curve} of the shape keys."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    imported = next(o for o in bpy.context.scene.objects if o.type == "MESH")
    return {fc.data_path: fc for fc in compat.iter_fcurves(imported.data.shape_keys.animation_data.action)}


def _keys(fc):
    co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def test_default_export_is_the_animation_as_a_clip_from_time_0(tmp_path, head):
    """A 37-frame animation at frame 10 of a 1-250 scene: 37 frames from time 0, not 250 of held pose."""
    scene = bpy.context.scene
    scene.render.fps = 24
    anim = make_animation(num_frames=37, fps=24)
    result = writer.write_animation(head, anim, start_frame=10, fps=24)
    jaw_curve = next(fc for fc in compat.iter_fcurves(result.action) if "jawOpen" in fc.data_path)
    before = _keys(jaw_curve).copy()
    report = targets.export_fbx(bpy.context, head, str(tmp_path / "clip.fbx"), preset="BLENDER")
    assert report.frame_range == (10, 46) and report.clip_start == 0
    assert np.array_equal(_keys(jaw_curve), before)  # the keys moved for the export are back, exactly
    assert (scene.frame_start, scene.frame_end) == (1, 250)
    scene_report = targets.export_fbx(bpy.context, head, str(tmp_path / "scene.fbx"), preset="BLENDER",
                                      use_scene_range=True)
    assert scene_report.frame_range == (1, 250) and scene_report.clip_start == 1

    curves = _read_back(tmp_path / "clip.fbx")
    jaw = curves['key_blocks["jawOpen"].value']
    assert jaw.range()[:] == pytest.approx((0, 36)) and len(jaw.keyframe_points) == 37
    np.testing.assert_allclose([jaw.evaluate(f) for f in range(37)],
                               anim.frames[:, ARKIT_CHANNELS.index("jawOpen")], atol=2e-3)
    jaw = _read_back(tmp_path / "scene.fbx")['key_blocks["jawOpen"].value']
    assert jaw.range()[:] == pytest.approx((1, 250)) and len(jaw.keyframe_points) == 250


def test_export_operator_and_batch_bake_write_the_same_clip(tmp_path, fake_runtime):
    scene = bpy.context.scene
    scene.render.fps = 24
    bpy.ops.i2fet.add_default_head()
    scene.i2fet.instruction = "smile"
    scene.i2fet.use_current_frame = False
    scene.i2fet.start_frame = 10
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert bpy.ops.i2fet.export_fbx(filepath=str(tmp_path / "operator.fbx")) == {"FINISHED"}
    assert batch.main(["--instruction", "smile", "--start-frame", "10", "--fps", "24",
                       "--fbx", str(tmp_path / "batch.fbx")]) == 0
    from_operator = _read_back(tmp_path / "operator.fbx")
    operator_keys = {path: _keys(fc).copy() for path, fc in from_operator.items()}
    from_batch = _read_back(tmp_path / "batch.fbx")
    assert sorted(operator_keys) == sorted(from_batch) and len(operator_keys) == len(ARKIT_CHANNELS)
    for path, fc in from_batch.items():
        np.testing.assert_allclose(_keys(fc), operator_keys[path], atol=2e-3)  # the sidebar reduces keys, the bake not
    assert operator_keys['key_blocks["jawOpen"].value'][0, 0] == 0  # both start at time 0
    assert len(operator_keys['key_blocks["jawOpen"].value']) == 49  # 2 s at 24 fps, every frame keyed
