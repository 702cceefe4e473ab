"""FLAME operators on real Blender: Add FLAME Head, Import/Export FLAME Sequence, and their refusals."""

import sys
from pathlib import Path

import numpy as np
import pytest

from blender_helpers import bpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flame_samples import head_flame_arrays  # noqa: E402


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory, cache_root):
    arrays, _ = head_flame_arrays()
    path = tmp_path_factory.mktemp("flame") / "head_flame.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture
def flame_pref(flame_file, monkeypatch, addon):
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(flame_file))
    return flame_file


def _state():
    return (sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys()), bpy.context.scene.frame_end)


def test_add_flame_head_needs_a_model_file(addon, monkeypatch):
    monkeypatch.delenv("I2FET_FLAME_MODEL", raising=False)
    before = _state()
    with pytest.raises(RuntimeError, match="Set the FLAME model file"):
        bpy.ops.i2fet.add_flame_head()
    assert _state() == before


def test_add_flame_head_from_the_preferences_file(flame_pref):
    assert bpy.ops.i2fet.add_flame_head(correctives=False) == {"FINISHED"}
    obj = bpy.context.active_object
    assert obj.name.startswith("FLAME Head") and bpy.context.scene.i2fet.target == obj
    assert len(obj.data.vertices) == 5023 and "Exp049" in obj.data.shape_keys.key_blocks


def _sequence(path, frames=9, **extra):
    rng = np.random.default_rng(0)
    data = {"exp": rng.normal(0, 0.8, (frames, 50)), "pose": np.c_[np.zeros((frames, 3)),
                                                                   np.linspace(0, 0.3, frames), np.zeros((frames, 2))]}
    data.update(extra)
    np.savez(path, **data)
    return data


def test_import_then_export_round_trips_on_a_flame_head(flame_pref, tmp_path):
    bpy.context.scene.render.fps = 25
    bpy.ops.i2fet.add_flame_head(correctives=True)
    data = _sequence(tmp_path / "deca.npz", fps=np.float64(25))
    bpy.context.scene.frame_current = 1
    assert bpy.ops.i2fet.import_flame_sequence(filepath=str(tmp_path / "deca.npz")) == {"FINISHED"}
    assert bpy.context.scene.frame_end >= 9
    assert bpy.ops.i2fet.export_flame_sequence(filepath=str(tmp_path / "out.npz")) == {"FINISHED"}
    with np.load(tmp_path / "out.npz", allow_pickle=False) as f:
        np.testing.assert_allclose(f["expression"], data["exp"], atol=1e-5)
        np.testing.assert_allclose(f["jaw_pose"], data["pose"][:, 3:6], atol=1e-4)
        assert float(f["fps"]) == 25.0


def test_import_resamples_to_the_scene_rate(flame_pref, tmp_path):
    bpy.context.scene.render.fps = 30
    bpy.ops.i2fet.add_flame_head(correctives=False)
    _sequence(tmp_path / "fifteen.npz", frames=16, fps=np.float64(15))  # 1 s at 15 fps
    bpy.context.scene.frame_current = 1
    bpy.ops.i2fet.import_flame_sequence(filepath=str(tmp_path / "fifteen.npz"))
    action = bpy.context.active_object.data.shape_keys.animation_data.action
    assert tuple(action.frame_range) == (1.0, 31.0)


@pytest.mark.parametrize("case", ["missing_expression", "too_many_components", "garbage"])
def test_bad_sequences_change_nothing(flame_pref, tmp_path, case):
    bpy.ops.i2fet.add_flame_head(correctives=False)
    path = tmp_path / "bad.npz"
    if case == "missing_expression":
        np.savez(path, jaw_pose=np.zeros((3, 3)))
        message = "no FLAME expression"
    elif case == "too_many_components":
        np.savez(path, expression=np.zeros((3, 80)))
        message = "only 50"
    else:
        path = tmp_path / "bad.pkl"
        path.write_bytes(b"\x80\x04garbage")
        message = "neither a readable pickle"
    before = _state()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.i2fet.import_flame_sequence(filepath=str(path))
    assert _state() == before
    assert bpy.context.active_object.data.shape_keys.animation_data is None


def test_export_without_animation_is_refused(flame_pref, tmp_path):
    bpy.ops.i2fet.add_flame_head(correctives=False)
    with pytest.raises(RuntimeError, match="no animation to export"):
        bpy.ops.i2fet.export_flame_sequence(filepath=str(tmp_path / "none.npz"))
    assert not (tmp_path / "none.npz").exists()


def test_generate_on_a_flame_head_keys_expression_and_jaw(head_flame, cache_root, fake_runtime, monkeypatch):
    head_flame.install()
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(head_flame.path))
    scene = bpy.context.scene
    scene.render.fps = 30
    scene.frame_current = 1
    assert bpy.ops.i2fet.add_flame_head(correctives=True) == {"FINISHED"}
    obj = bpy.context.active_object
    scene.i2fet.instruction = "open the mouth wide"
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    from blender_helpers import make_animation
    from i2fet_blender.flame_head import check_flame_target, read_flame_parameters

    anim = make_animation(num_frames=61, fps=30, instruction="open the mouth wide", seed=0)
    expression, jaw, _ = head_flame.map.to_flame(anim.frames)
    target = check_flame_target(obj, head_flame.model)
    got_exp, got_jaw, _ = read_flame_parameters(target, range(1, 62))
    np.testing.assert_allclose(got_exp, np.clip(expression, -5, 5), atol=2e-3)  # key reduction tolerance
    np.testing.assert_allclose(got_jaw, jaw, atol=2e-3)
    assert np.abs(got_jaw[:, 0]).max() > 0.05  # the jaw really moves
    assert bpy.ops.i2fet.clear_generated() == {"FINISHED"}
    assert obj.data.shape_keys.animation_data.action is None


def test_flame_sequence_drives_an_arkit_face_through_the_map(head_flame, cache_root, addon, monkeypatch, tmp_path):
    head_flame.install()
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(head_flame.path))
    bpy.ops.i2fet.add_default_head()
    obj = bpy.context.active_object
    frames = 5
    jaw = np.c_[np.linspace(0, 0.3, frames), np.zeros((frames, 2))]
    np.savez(tmp_path / "jaw.npz", expression=np.zeros((frames, 50)), jaw_pose=jaw, fps=np.float64(24))
    bpy.context.scene.render.fps = 24
    bpy.context.scene.frame_current = 1
    assert bpy.ops.i2fet.import_flame_sequence(filepath=str(tmp_path / "jaw.npz")) == {"FINISHED"}
    from i2fet_blender import shape_keys

    curves = shape_keys.sample_curves(obj, [1, 5])
    assert curves["jawOpen"][1] > 0.5 and curves["jawOpen"][0] < 0.05
    # A bare FLAME jaw rotation is jawOpen less the lip shaping ARKit's jawOpen carries, so a little of other mouth
    # channels comes with it; jawOpen must still dominate.
    assert max(v[1] for name, v in curves.items() if name != "jawOpen") < 0.5 * curves["jawOpen"][1]
    # Export reverses it: the ARKit animation becomes a FLAME sequence whose jaw opens as the file's did.
    assert bpy.ops.i2fet.export_flame_sequence(filepath=str(tmp_path / "back.npz")) == {"FINISHED"}
    with np.load(tmp_path / "back.npz", allow_pickle=False) as f:
        assert f["expression"].shape == (frames, 50) and f["jaw_pose"].shape == (frames, 3)
        assert abs(f["jaw_pose"][-1, 0] - 0.3) < 0.06


def test_generate_on_a_flame_head_of_another_model_changes_nothing(flame_pref, fake_runtime, tmp_path, monkeypatch):
    from flame_samples import tiny_flame_arrays

    bpy.ops.i2fet.add_flame_head(correctives=False)
    other = tmp_path / "other_flame.npz"
    np.savez(other, **tiny_flame_arrays())
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(other))
    before = _state()
    with pytest.raises(RuntimeError, match="5023 vertices but the FLAME model has 60"):
        bpy.ops.i2fet.generate()
    assert _state() == before and fake_runtime.calls == []
    assert bpy.context.active_object.data.shape_keys.animation_data is None


def test_an_arkit_face_with_a_stray_exp_key_stays_arkit(fake_runtime, monkeypatch):
    monkeypatch.delenv("I2FET_FLAME_MODEL", raising=False)
    bpy.ops.i2fet.add_default_head()
    obj = bpy.context.active_object
    obj.shape_key_add(name="Exp01", from_mix=False)
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert obj.data.shape_keys.animation_data.action.get("i2fet")


def test_import_at_a_fractional_scene_rate_resamples_once(flame_pref, tmp_path, head_flame, cache_root):
    head_flame.install()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001  # 29.97
    _sequence(tmp_path / "long.npz", frames=3001, fps=np.float64(30))  # 100 s
    scene.frame_current = 1
    bpy.ops.i2fet.add_flame_head(correctives=False)
    flame = bpy.context.active_object
    bpy.ops.i2fet.import_flame_sequence(filepath=str(tmp_path / "long.npz"))
    bpy.ops.i2fet.add_default_head()
    arkit = bpy.context.active_object
    bpy.ops.i2fet.import_flame_sequence(filepath=str(tmp_path / "long.npz"))
    expected = 1 + int(round(100.0 * 30 / 1.001))
    for obj in (flame, arkit):
        assert tuple(obj.data.shape_keys.animation_data.action.frame_range) == (1.0, float(expected)), obj.name


def test_exp_keys_are_matched_by_their_number_not_their_position(flame_pref, tmp_path):
    from i2fet_blender.flame_head import check_flame_target, write_flame_animation
    from model_runtime.rigs import load_flame

    bpy.ops.i2fet.add_flame_head(correctives=False)
    obj = bpy.context.active_object
    obj.shape_key_remove(obj.data.shape_keys.key_blocks["Exp001"])
    target = check_flame_target(obj, load_flame(flame_pref))
    expression = np.zeros((2, 50))
    expression[:, 1] = 1.0  # only the component whose key is gone
    expression[:, 2] = 0.5
    result = write_flame_animation(target, expression, np.zeros((2, 3)), start_frame=1)
    bpy.context.scene.frame_set(1)
    assert obj.data.shape_keys.key_blocks["Exp002"].value == pytest.approx(0.5)
    assert any("no Exp key" in w and "Exp001" in w for w in result.warnings)


def test_generate_then_export_keeps_the_gaze(head_flame, cache_root, fake_runtime, monkeypatch, tmp_path):
    head_flame.install()
    monkeypatch.setenv("I2FET_FLAME_MODEL", str(head_flame.path))
    bpy.context.scene.render.fps = 30
    bpy.context.scene.frame_current = 1
    bpy.ops.i2fet.add_flame_head(correctives=False)
    bpy.context.scene.i2fet.reduce_keys = False
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert bpy.ops.i2fet.export_flame_sequence(filepath=str(tmp_path / "gaze.npz")) == {"FINISHED"}
    from blender_helpers import make_animation

    _, _, eyes = head_flame.map.to_flame(make_animation(num_frames=61, fps=30, instruction="x", seed=0).frames)
    with np.load(tmp_path / "gaze.npz", allow_pickle=False) as f:
        np.testing.assert_allclose(f["eye_pose"], eyes, atol=1e-4)
    assert np.abs(eyes).max() > 0.01
