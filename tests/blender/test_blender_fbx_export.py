"""FBX export on real Blender: pre-flight checks, and a round trip (export, re-import, compare names, values, fps)."""

from __future__ import annotations

import numpy as np
import pytest

from blender_helpers import bpy, make_animation
from i2fet_blender import fbx_export, writer
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
    assert "Subdivision are not applied" in check.warnings[0]
    assert "Subdivision" in fbx_export.preflight(head, scene, use_mesh_modifiers=True).problems[0]
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
