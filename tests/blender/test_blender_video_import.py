"""Import Face Video (i2fet_blender/video_import.py) on the default head and on a FLAME head: a clip made from the
real photos is keyed in a new action at the scene's rate, through the face's target; a bad video changes nothing."""

import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_photo_video import GREY, frame, write_clip  # noqa: E402


@pytest.fixture
def operator(addon):
    """The operator as the extension registers it (i2fet_blender.register), not registered by the test."""
    assert bpy.ops.i2fet.import_face_video.get_rna_type()


def _grin_then_speech(tmp_path):
    return write_clip(tmp_path / "clip.avi", [frame("grin_obama.jpg")] * 5 + [frame("speaking_obama.jpg")] * 5)


def test_a_video_is_keyed_onto_the_face(operator, head, tmp_path):
    from blender_helpers import make_animation
    from i2fet_blender import writer

    earlier = writer.write_animation(head, make_animation(num_frames=5), name="earlier").action
    clip = _grin_then_speech(tmp_path)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 10, 1
    assert bpy.ops.i2fet.import_face_video(filepath=str(clip)) == {"FINISHED"}
    action = head.data.shape_keys.animation_data.action
    assert action is not None and action != earlier and "Face video clip.avi" in action.name
    assert earlier.name in bpy.data.actions  # the face's earlier animation is kept
    smile = head.data.shape_keys.key_blocks["mouthSmileLeft"]
    jaw = head.data.shape_keys.key_blocks["jawOpen"]
    scene.frame_set(3)
    grin = (smile.value, jaw.value)
    scene.frame_set(10)
    assert grin[0] > 0.4 and smile.value < grin[0] and jaw.value > grin[1]


def test_a_video_without_a_face_changes_nothing(operator, head, tmp_path):
    clip = write_clip(tmp_path / "grey.avi", [GREY] * 4)
    with pytest.raises(RuntimeError, match="No face was found in any of the 4 frames"):
        bpy.ops.i2fet.import_face_video(filepath=str(clip))
    assert head.data.shape_keys.animation_data is None or head.data.shape_keys.animation_data.action is None
    assert np.allclose([k.value for k in head.data.shape_keys.key_blocks[1:]], 0.0)


def test_a_video_is_keyed_onto_a_flame_head_through_the_map(operator, head_flame, cache_root, monkeypatch, tmp_path):
    """On a FLAME head the frames go through the ARKit<->FLAME map onto its Exp keys and jaw, in their own action."""
    from i2fet_blender.flame_head import check_flame_target, read_flame_parameters
    from model_runtime.photo.video import track_video

    head_flame.install()
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(head_flame.path))
    clip = _grin_then_speech(tmp_path)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 10, 1
    assert bpy.ops.i2fet.add_flame_head(correctives=False) == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.i2fet.import_face_video(filepath=str(clip)) == {"FINISHED"}
    assert "Face video clip.avi" in obj.data.shape_keys.animation_data.action.name
    expected = track_video(clip).animation.frames  # the same reading, outside Blender
    expression, jaw, _ = head_flame.map.to_flame(expected)
    got_exp, got_jaw, _ = read_flame_parameters(check_flame_target(obj, head_flame.model), range(1, 11))
    np.testing.assert_allclose(got_exp, np.clip(expression, -5, 5), atol=2e-3)
    np.testing.assert_allclose(got_jaw, jaw, atol=2e-3)
    assert abs(got_jaw[9, 0]) > abs(got_jaw[2, 0])  # speech opens the jaw more than the grin


def test_a_video_onto_an_object_without_face_keys_changes_nothing(operator, tmp_path):
    bpy.ops.mesh.primitive_cube_add()
    clip = _grin_then_speech(tmp_path)
    actions = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="shape key"):
        bpy.ops.i2fet.import_face_video(filepath=str(clip))
    assert len(bpy.data.actions) == actions


def test_with_a_window_the_video_is_read_in_a_worker_and_esc_cancels(operator, head, tmp_path, monkeypatch):
    """The modal path (i2fet_blender.worker), played by hand: Esc while frame 3 is read writes nothing; a second run
    reads every frame in order, with progress to 100%, then keys the face."""
    from blender_helpers import ModalPlay, WorkerGate
    from i2fet_blender.video_import import I2FET_OT_import_face_video

    clip = _grin_then_speech(tmp_path)
    actions = sorted(bpy.data.actions.keys())
    gate = WorkerGate(monkeypatch, "reading frame 3 of 10")
    play = ModalPlay(I2FET_OT_import_face_video, filepath=str(clip), neutral_image="")
    assert play.start() == {"RUNNING_MODAL"}
    gate.wait(play)
    assert play.send("ESC") == {"RUNNING_MODAL"}
    gate.release()
    assert play.tick_until_done() == {"CANCELLED"}
    assert play.reports == [("INFO", "Import Face Video cancelled; nothing was changed.")]
    assert sorted(bpy.data.actions.keys()) == actions and gate.heard[-1][1] == "reading frame 3 of 10"
    assert head.data.shape_keys.animation_data is None or head.data.shape_keys.animation_data.action is None

    gate = WorkerGate(monkeypatch)
    play = ModalPlay(I2FET_OT_import_face_video, filepath=str(clip), neutral_image="")
    assert play.start() == {"RUNNING_MODAL"}
    assert play.tick_until_done() == {"FINISHED"}
    assert [stage for _, stage in gate.heard] == [f"reading frame {k} of 10" for k in range(1, 11)]
    shown = play.wm.progress[1:-1]
    assert play.wm.progress[-1] == "end" and shown[-1] == 100 and all(a <= b for a, b in zip(shown, shown[1:]))
    assert "Face video clip.avi" in head.data.shape_keys.animation_data.action.name


@pytest.mark.parametrize("name, message", [
    ("notes.mp4", "not a video file OpenCV can read"),
    ("folder", "is a folder"),
    ("", "No video was given"),
])
def test_a_bad_video_keeps_the_faces_animation(operator, head, tmp_path, name, message):
    from blender_helpers import make_animation
    from i2fet_blender import writer

    earlier = writer.write_animation(head, make_animation(num_frames=5), name="earlier").action
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "folder").mkdir()
    path = str(tmp_path / name) if name else ""
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.i2fet.import_face_video(filepath=path)
    assert head.data.shape_keys.animation_data.action == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.mp4"]
