"""The fcurve writer on real Blender: bulk keys, never overwriting, fps handling, reduction, mirror, amplify."""

from __future__ import annotations

import numpy as np
import pytest

from blender_helpers import add_cube_with_keys, bpy, make_animation
from i2fet_blender import writer
from i2fet_blender.targets import clear_generated
from i2fet_blender.utils import action_compat as compat
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS


def _curve_values(action, slot=None):
    out = {}
    for fc in compat.iter_fcurves(action, slot):
        name = fc.data_path[len('key_blocks["'):-len('"].value')]
        co = np.empty(len(fc.keyframe_points) * 2, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[name] = co.reshape(-1, 2)
    return out


def test_writes_every_channel_on_integer_frames(head, animation):
    result = writer.write_animation(head, animation, start_frame=10)
    assert len(result.matched) == 52 and result.unmatched_channels == []
    assert (result.start_frame, result.end_frame) == (10, 10 + animation.num_frames - 1)
    key = head.data.shape_keys
    assert key.animation_data.action == result.action
    assert result.action["i2fet"] == 1 and result.action["i2fet_instruction"] == "test smile"
    curves = _curve_values(result.action)
    assert set(curves) == set(ARKIT_CHANNELS)
    for i, channel in enumerate(ARKIT_CHANNELS):
        co = curves[channel]
        np.testing.assert_array_equal(co[:, 0], np.arange(10, 10 + animation.num_frames))
        np.testing.assert_allclose(co[:, 1], animation.frames[:, i], atol=1e-6)
    # Blender plays it back: the shape-key values at a frame are the animation's weights.
    bpy.context.scene.frame_set(10 + 7)
    played = np.array([key.key_blocks[c].value for c in ARKIT_CHANNELS])
    np.testing.assert_allclose(played, animation.frames[7], atol=1e-5)


def test_previous_action_is_kept_on_an_nla_track(head, animation):
    key = head.data.shape_keys
    block = key.key_blocks["jawOpen"]
    for frame, value in ((1, 0.0), (5, 0.7), (9, 0.2)):
        block.value = value
        block.keyframe_insert("value", frame=frame)
    previous = key.animation_data.action
    previous_name = previous.name
    result = writer.write_animation(head, animation, start_frame=1)
    assert key.animation_data.action == result.action
    assert previous_name in bpy.data.actions
    kept = bpy.data.actions[previous_name]
    assert "i2fet" not in kept
    values = _curve_values(kept)
    np.testing.assert_allclose(values["jawOpen"], [[1, 0.0], [5, 0.7], [9, 0.2]], atol=1e-6)
    track = key.animation_data.nla_tracks[result.kept_track]
    assert track.strips[0].action == kept and track.strips[0].frame_start == 1
    # a second generation keeps the first one too; clearing removes both and restores the original action
    second = writer.write_animation(head, make_animation(seed=3), start_frame=1)
    assert result.action.name in bpy.data.actions and second.action != result.action
    removed = clear_generated(head)
    assert removed == 2
    assert key.animation_data.action == kept
    assert len(key.animation_data.nla_tracks) == 0
    assert not any(a.get("i2fet") for a in bpy.data.actions)
    np.testing.assert_allclose(_curve_values(kept)["jawOpen"][:, 1], [0.0, 0.7, 0.2], atol=1e-6)


def test_existing_nla_tracks_are_untouched(head, animation):
    key = head.data.shape_keys
    ad = key.animation_data_create()
    lipsync, slot = compat.new_action("LipSync", key)
    fc = compat.writable_fcurves(lipsync, slot).new('key_blocks["jawOpen"].value', index=0)
    fc.keyframe_points.add(2)
    fc.keyframe_points.foreach_set("co", [1, 0.0, 20, 1.0])
    track = ad.nla_tracks.new()
    track.name = "Lip sync"
    compat.new_strip(track, "LipSync", 1, lipsync, slot)
    writer.write_animation(head, animation)
    assert "Lip sync" in ad.nla_tracks and ad.nla_tracks["Lip sync"].strips[0].action == lipsync
    clear_generated(head)
    assert "Lip sync" in ad.nla_tracks and ad.action is None and "LipSync" in bpy.data.actions


@pytest.mark.parametrize("scene_fps", [24, 30, 60])
def test_durations_in_seconds_are_kept(head, scene_fps):
    scene = bpy.context.scene
    scene.render.fps = scene_fps
    scene.render.fps_base = 1.0
    anim = make_animation(num_frames=61, fps=30)  # 2.0 s
    result = writer.write_animation(head, anim, start_frame=1, fps=scene_fps)
    assert result.end_frame - result.start_frame == 2 * scene_fps
    curves = _curve_values(result.action)
    i = ARKIT_CHANNELS.index("mouthSmileLeft")
    # the value 1 s in is the source's frame 30, whatever the scene rate
    at_one_second = curves["mouthSmileLeft"][scene_fps, 1]
    assert abs(at_one_second - anim.frames[30, i]) < 1e-5
    assert curves["mouthSmileLeft"][scene_fps, 0] == 1 + scene_fps


def test_animation_at_scene_rate_is_not_resampled(head):
    anim = make_animation(num_frames=25, fps=24)
    result = writer.write_animation(head, anim, start_frame=0, fps=24)
    curves = _curve_values(result.action)
    np.testing.assert_allclose(curves["browInnerUp"][:, 1], anim.frames[:, ARKIT_CHANNELS.index("browInnerUp")],
                               atol=1e-6)


def test_key_reduction_stays_within_tolerance(head):
    anim = make_animation(num_frames=181, fps=30)
    anim.frames[:, 5] = 0.0  # a flat channel collapses to two keys
    tol = 0.004
    result = writer.write_animation(head, anim, start_frame=1, reduce=True, tolerance=tol)
    assert result.num_keys < 52 * 181 / 2
    curves = {fc.data_path: fc for fc in compat.iter_fcurves(result.action)}
    for i, channel in enumerate(ARKIT_CHANNELS):
        fc = curves[f'key_blocks["{channel}"].value']
        played = np.array([fc.evaluate(f) for f in range(1, 182)])
        assert np.max(np.abs(played - anim.frames[:, i])) <= tol + 1e-6, channel
    assert len(curves[f'key_blocks["{ARKIT_CHANNELS[5]}"].value'].keyframe_points) == 2


def test_mirror_swaps_sides_and_amplify_clamps(head, animation):
    result = writer.write_animation(head, animation, mirror=True, amplify=1.8)
    curves = _curve_values(result.action)
    left, right = ARKIT_CHANNELS.index("mouthSmileLeft"), ARKIT_CHANNELS.index("mouthSmileRight")
    np.testing.assert_allclose(curves["mouthSmileLeft"][:, 1], np.clip(animation.frames[:, right] * 1.8, 0, 1),
                               atol=1e-6)
    np.testing.assert_allclose(curves["mouthSmileRight"][:, 1], np.clip(animation.frames[:, left] * 1.8, 0, 1),
                               atol=1e-6)
    assert max(co[:, 1].max() for co in curves.values()) <= 1.0


def test_partial_rig_reports_matches_and_escapes_names(animation):
    obj = add_cube_with_keys(["jawOpen", "eyeBlinkLeft", 'my "odd" key'])
    result = writer.write_animation(obj, animation)
    assert set(result.matched) == {"jawOpen", "eyeBlinkLeft"}
    assert "eyeBlinkRight" in result.unmatched_channels and len(result.unmatched_channels) == 50
    assert 'my "odd" key' in result.unmatched_names
    assert len(list(compat.iter_fcurves(result.action))) == 2


def test_bad_targets_raise_one_sentence(animation):
    with pytest.raises(InputError, match="Select a mesh"):
        writer.check_target(None)
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    with pytest.raises(InputError, match="not a mesh"):
        writer.check_target(camera)
    plain = add_cube_with_keys([], name="Plain")
    plain.shape_key_clear()
    with pytest.raises(InputError, match="no shape keys"):
        writer.check_target(plain)
    other = add_cube_with_keys(["Smile", "Frown"], name="Other")
    with pytest.raises(InputError, match="Add default head"):
        writer.write_animation(other, animation)
    assert other.data.shape_keys.animation_data is None and not len(bpy.data.actions)


def test_linked_object_is_refused(tmp_path, animation):
    from i2fet_blender.head_object import add_default_head

    add_default_head(bpy.context)
    lib = tmp_path / "lib.blend"
    bpy.data.libraries.write(str(lib), {bpy.data.objects["I2FET Head"]})
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
        dst.objects = ["I2FET Head"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    with pytest.raises(InputError, match="linked"):
        writer.write_animation(obj, animation)


def test_rig_spellings_and_split_channels(animation):
    obj = add_cube_with_keys(["mouthSmile_L", "mouthSmile_R", "browInnerUp_L", "browInnerUp_R", "Unrelated"])
    result = writer.write_animation(obj, animation)
    assert result.matched == {"mouthSmileLeft": "mouthSmile_L", "mouthSmileRight": "mouthSmile_R"}
    assert set(result.split["browInnerUp"]) == {"browInnerUp_L", "browInnerUp_R"}
    curves = _curve_values(result.action)
    brow = animation.frames[:, ARKIT_CHANNELS.index("browInnerUp")]
    np.testing.assert_allclose(curves["browInnerUp_L"][:, 1], brow, atol=1e-6)
    np.testing.assert_allclose(curves["browInnerUp_R"][:, 1], brow, atol=1e-6)
    assert "Unrelated" not in curves


def test_legacy_action_api_path(head, animation, monkeypatch):
    """Blender 4.2 has no slots: force the compatibility layer's legacy branch (`action.fcurves`, no slot binding),
    which 4.4/4.5 still accept through their backward-compatible API, and run the write / keep / clear cycle."""
    if "fcurves" not in bpy.types.Action.bl_rna.properties:
        # Blender 5.0+ has no legacy API: the compatibility layer must then always take the slotted branch.
        assert compat.is_slotted(bpy.data.actions.new("probe"))
        return
    monkeypatch.setattr(compat, "is_slotted", lambda action: False)
    key = head.data.shape_keys
    block = key.key_blocks["jawOpen"]
    block.value = 0.5
    block.keyframe_insert("value", frame=3)
    previous = key.animation_data.action
    result = writer.write_animation(head, animation, start_frame=1)
    assert key.animation_data.action == result.action
    bpy.context.scene.frame_set(5)
    assert abs(key.key_blocks["cheekPuff"].value - animation.frames[4, ARKIT_CHANNELS.index("cheekPuff")]) < 1e-5
    assert key.animation_data.nla_tracks[result.kept_track].strips[0].action == previous
    assert clear_generated(head) == 1 and key.animation_data.action == previous
