"""Import Face Video (i2fet_blender/video_import.py) on the default head: a clip made from the real photos is keyed
in a new action at the scene's rate; a bad video changes nothing."""

import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_photo_video import GREY, frame, write_clip  # noqa: E402


@pytest.fixture
def operator(addon):
    from i2fet_blender.video_import import I2FET_OT_import_face_video

    bpy.utils.register_class(I2FET_OT_import_face_video)
    yield
    bpy.utils.unregister_class(I2FET_OT_import_face_video)


def test_a_video_is_keyed_onto_the_face(operator, head, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", [frame("grin_obama.jpg")] * 5 + [frame("speaking_obama.jpg")] * 5)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_current = 10, 1
    assert bpy.ops.i2fet.import_face_video(filepath=str(clip)) == {"FINISHED"}
    action = head.data.shape_keys.animation_data.action
    assert action is not None and "Face video clip.avi" in action.name
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
