"""Operators and sidebar on real Blender: registration, Add default head, Generate, history, Clear, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blender_helpers import add_cube_with_keys, bpy
from model_runtime.expression_space import ARKIT_CHANNELS


def _snapshot():
    """What a failed operator must leave alone."""
    return (sorted(bpy.data.actions.keys()), sorted(bpy.data.objects.keys()), bpy.context.scene.frame_end,
            [(o.name, o.data.shape_keys.animation_data.action.name
              if o.type == "MESH" and o.data.shape_keys and o.data.shape_keys.animation_data
              and o.data.shape_keys.animation_data.action else None) for o in bpy.data.objects])


def test_registration(addon):
    for op in ("add_default_head", "generate", "rerun", "clear_generated", "export_fbx", "check_environment",
               "copy_environment_log", "install_runtime", "release_memory", "import_face_video"):
        assert hasattr(bpy.ops.i2fet, op) and getattr(bpy.ops.i2fet, op).get_rna_type()
    panel = bpy.types.I2FET_PT_main
    assert panel.bl_category == "I2FET" and panel.bl_space_type == "VIEW_3D" and panel.bl_region_type == "UI"
    assert hasattr(bpy.context.scene, "i2fet")


def test_scene_changing_operators_are_single_undo_steps(addon):
    """Background Blender cannot run ed.undo (it needs a window), so this checks what makes one undo step: every
    operator that edits the scene is REGISTER+UNDO. Only Generate has a modal part, which waits for the model to load
    and then calls execute once, so its edits still land in one step."""
    from i2fet_blender import operators

    for cls in (operators.I2FET_OT_add_default_head, operators.I2FET_OT_generate, operators.I2FET_OT_rerun,
                operators.I2FET_OT_clear_generated):
        assert {"REGISTER", "UNDO"} <= set(cls.bl_options), cls.__name__
        assert cls is operators.I2FET_OT_generate or not hasattr(cls, "modal"), cls.__name__


def test_add_default_head(addon):
    bpy.context.scene.cursor.location = (1.0, 2.0, 0.5)
    assert bpy.ops.i2fet.add_default_head() == {"FINISHED"}
    obj = bpy.context.active_object
    assert obj.type == "MESH" and obj.select_get() and tuple(obj.location) == pytest.approx((1.0, 2.0, 0.5))
    names = [kb.name for kb in obj.data.shape_keys.key_blocks]
    assert names == ["Basis", *ARKIT_CHANNELS]
    assert [m.name for m in obj.data.materials] == ["I2FET Skin", "I2FET Eye", "I2FET Eye", "I2FET Teeth",
                                                    "I2FET Tongue"]
    mats = np.zeros(len(obj.data.polygons), dtype=np.int32)
    obj.data.polygons.foreach_get("material_index", mats)
    assert set(np.unique(mats)) == {0, 1, 2, 3, 4}
    assert any(m.type == "SUBSURF" for m in obj.modifiers)
    assert bpy.context.scene.i2fet.target == obj
    # jawOpen really moves the mesh (the shape keys carry the runtime's deltas)
    from model_runtime.heads.head import load_default_head

    head = load_default_head()
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.shape_keys.key_blocks["jawOpen"].points.foreach_get("co", co)
    jaw = ARKIT_CHANNELS.index("jawOpen")
    np.testing.assert_allclose(co.reshape(-1, 3), head.vertices + head.deltas[jaw], atol=1e-6)


def test_generate_writes_segments_and_history(fake_runtime):
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_current = 5
    scene.frame_end = 10
    bpy.ops.i2fet.add_default_head()
    settings = scene.i2fet
    settings.instruction = "smile, then frown"
    settings.seed = 4
    settings.intensity = 0.5
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert fake_runtime.calls[-1] == dict(instruction="smile, then frown", fps=24, seed=4, duration=None,
                                          intensity=0.5)
    ad = bpy.context.active_object.data.shape_keys.animation_data
    assert ad.action.get("i2fet") and ad.action.frame_range[0] == 5
    assert scene.frame_end == 5 + 48  # extended to show the whole animation
    assert [(s.label, s.start_frame, s.end_frame) for s in settings.segments] == [("happy", 5, 53)]
    assert settings.history[0].instruction == "smile, then frown" and settings.history[0].seed == 4
    settings.instruction = "look shocked"
    settings.use_current_frame = False
    settings.start_frame = 100
    settings.auto_duration = False
    settings.duration = 1.0
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert [h.instruction for h in settings.history] == ["look shocked", "smile, then frown"]
    assert ad.action.frame_range[:] == pytest.approx((100, 124))
    assert bpy.ops.i2fet.rerun(index=1) == {"FINISHED"}
    assert fake_runtime.calls[-1]["instruction"] == "smile, then frown" and fake_runtime.calls[-1]["seed"] == 4
    assert [h.instruction for h in settings.history] == ["smile, then frown", "look shocked"]
    generated = [a for a in bpy.data.actions if a.get("i2fet")]
    assert len(generated) == 3
    assert bpy.ops.i2fet.clear_generated() == {"FINISHED"}
    assert not any(a.get("i2fet") for a in bpy.data.actions) and ad.action is None


def test_generate_keeps_the_previous_action(fake_runtime):
    """Undo cannot run in background mode (ed.undo's poll needs a window), so the guarantee that makes one undo
    step sufficient is checked instead: the previous action and its keys are untouched and still evaluated."""
    bpy.ops.i2fet.add_default_head()
    obj = bpy.context.active_object
    block = obj.data.shape_keys.key_blocks["eyeBlinkLeft"]
    block.value = 1.0
    block.keyframe_insert("value", frame=1)
    previous = obj.data.shape_keys.animation_data.action
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert previous.name in bpy.data.actions and obj.data.shape_keys.animation_data.action != previous
    strips = [s for t in obj.data.shape_keys.animation_data.nla_tracks for s in t.strips]
    assert [s.action for s in strips] == [previous]


def test_bad_input_is_cancelled_with_the_scene_unchanged(fake_runtime):
    settings = bpy.context.scene.i2fet
    before = _snapshot()
    with pytest.raises(RuntimeError, match="Select a mesh"):
        bpy.ops.i2fet.generate()
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.view_layer.objects.active = camera
    before = _snapshot()
    with pytest.raises(RuntimeError, match="not a mesh"):
        bpy.ops.i2fet.generate()
    assert _snapshot() == before
    add_cube_with_keys(["Smile", "Frown"], name="Other")
    before = _snapshot()
    with pytest.raises(RuntimeError, match=r"missing browDownLeft.*Add default head"):
        bpy.ops.i2fet.generate()
    assert _snapshot() == before
    bpy.ops.i2fet.add_default_head()
    settings.instruction = "   "
    before = _snapshot()
    with pytest.raises(RuntimeError):
        bpy.ops.i2fet.generate()
    assert _snapshot() == before and not fake_runtime.calls


def test_generate_with_the_real_model(addon):
    """The whole path with the shipped model: instruction -> Runtime -> keys on the default head."""
    from i2fet_blender import runtime_cache

    runtime_cache.release()
    bpy.ops.i2fet.add_default_head()
    scene = bpy.context.scene
    scene.render.fps = 30
    scene.i2fet.instruction = "slowly break into a shy smile, then look shocked"
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    key = bpy.context.active_object.data.shape_keys
    action = key.animation_data.action
    assert action.get("i2fet") and len(scene.i2fet.segments) >= 2
    smile = key.key_blocks["mouthSmileLeft"]
    first = scene.i2fet.segments[0]
    scene.frame_set(first.end_frame)
    assert smile.value > 0.1


def test_model_loads_on_a_worker_thread(monkeypatch):
    """What Generate's invoke() uses in the UI: the load runs on a thread, the main thread polls state()."""
    import threading
    import time

    from i2fet_blender import runtime_cache

    runtime_cache.release()
    gate = threading.Event()
    loaded_on = []

    def slow_load(settings):
        loaded_on.append(threading.current_thread().name)
        gate.wait(5)
        return "runtime"

    monkeypatch.setattr(runtime_cache, "_load", slow_load)
    settings = runtime_cache.LoadSettings()
    runtime_cache.start_loading(settings)
    assert runtime_cache.state(settings) == "loading"
    gate.set()
    for _ in range(100):
        if runtime_cache.state(settings) == "loaded":
            break
        time.sleep(0.01)
    assert runtime_cache.state(settings) == "loaded" and loaded_on == ["i2fet-load"]
    assert runtime_cache.get_runtime(settings) == "runtime"
    assert runtime_cache.release() and runtime_cache.state(settings) == "idle"

    def failing(settings):
        raise ImportError("torch", name="torch")

    monkeypatch.setattr(runtime_cache, "_load", failing)
    runtime_cache.start_loading(settings)
    runtime_cache._thread.join()
    assert runtime_cache.state(settings) == "failed"
    assert isinstance(runtime_cache.take_error(), ImportError)


class _FakeLayout:
    """Records what a panel draws and checks every property and operator it names exists."""

    def __init__(self, seen):
        self.seen = seen
        self.enabled = True

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, name
        self.seen.append(("prop", name))

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        assert getattr(getattr(bpy.ops, module), name).get_rna_type(), idname
        self.seen.append(("operator", idname))

        class _Props:
            pass

        return _Props()

    def label(self, **kwargs):
        self.seen.append(("label", kwargs.get("text", "")))

    def row(self, **kwargs):
        return self

    column = box = row


def test_panels_draw(fake_runtime):
    from types import SimpleNamespace

    from i2fet_blender import panels

    bpy.ops.i2fet.add_default_head()
    bpy.context.scene.i2fet.instruction = "smile"
    bpy.ops.i2fet.generate()
    seen = []
    for panel in panels.CLASSES:
        assert panel.poll(bpy.context) if hasattr(panel, "poll") else True
        panel.draw(SimpleNamespace(layout=_FakeLayout(seen)), bpy.context)
    assert ("operator", "i2fet.generate") in seen and ("prop", "instruction") in seen
    assert ("operator", "i2fet.import_face_video") in seen and ("prop", "neutral_image") in seen
    assert ("operator", "i2fet.rerun") in seen and ("label", "happy") in seen
    from i2fet_blender.preferences import I2FET_AP_preferences

    prefs = SimpleNamespace(layout=_FakeLayout(seen), encoder="openclip", runtime_variant="wheels",
                            environment_log="[ok] numpy 1\n[MISSING] torch")
    prefs.bl_rna = I2FET_AP_preferences.bl_rna
    I2FET_AP_preferences.draw(prefs, bpy.context)
    assert ("operator", "i2fet.install_runtime") in seen and ("prop", "wheel_dir") in seen


def test_esc_stops_waiting_for_the_model_and_changes_nothing(fake_runtime):
    """Generate's modal step, driven directly (there is no window to send real events in background mode)."""
    from types import SimpleNamespace

    from i2fet_blender import operators

    removed = []
    scene = bpy.context.scene
    actions_before = len(bpy.data.actions)
    context = SimpleNamespace(scene=scene, window_manager=SimpleNamespace(event_timer_remove=removed.append))
    op = SimpleNamespace(_timer="timer", report=lambda *a: None, execute=lambda ctx: pytest.fail("must not run"))
    assert operators.I2FET_OT_generate.modal(op, context, SimpleNamespace(type="MOUSEMOVE")) == {"PASS_THROUGH"}
    assert operators.I2FET_OT_generate.modal(op, context, SimpleNamespace(type="ESC")) == {"CANCELLED"}
    assert removed == ["timer"] and op._timer is None and "Cancelled" in scene.i2fet.status
    assert len(bpy.data.actions) == actions_before


def test_generate_starts_from_the_chosen_photo(fake_runtime, tmp_path):
    from PIL import Image

    photo = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 150, 120)).save(photo)
    bpy.ops.i2fet.add_default_head()
    settings = bpy.context.scene.i2fet
    settings.use_start_image = True
    settings.start_image = str(photo)
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert fake_runtime.calls[-1]["start_image"] == str(photo)


PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


def test_generate_passes_the_neutral_photo_with_the_start_photo(fake_runtime):
    bpy.ops.i2fet.add_default_head()
    settings = bpy.context.scene.i2fet
    settings.use_start_image = True
    settings.start_image = str(PHOTOS / "smile_open_collins.jpg")
    settings.neutral_image = str(PHOTOS / "neutral_hopper.jpg")
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    call = fake_runtime.calls[-1]
    assert call["start_image"] == str(PHOTOS / "smile_open_collins.jpg")
    assert call["neutral_image"] == str(PHOTOS / "neutral_hopper.jpg")
    settings.use_start_image = False  # no start photo: the neutral photo alone is not used
    assert bpy.ops.i2fet.generate() == {"FINISHED"}
    assert "start_image" not in fake_runtime.calls[-1] and "neutral_image" not in fake_runtime.calls[-1]


def test_generate_refuses_a_neutral_photo_without_a_face_and_changes_nothing(addon, monkeypatch, tmp_path):
    """With the real photo reader (the runtime's generator stubbed): a blank neutral photo is refused in one
    sentence before anything is keyed."""
    from PIL import Image

    from i2fet_blender import runtime_cache
    from model_runtime import Runtime

    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    runtime_cache.release()
    monkeypatch.setattr(runtime_cache, "_load", lambda settings: Runtime(None, None, "cpu"))
    bpy.ops.i2fet.add_default_head()
    settings = bpy.context.scene.i2fet
    settings.instruction = "smile"
    settings.use_start_image = True
    settings.start_image = str(PHOTOS / "smile_open_collins.jpg")
    settings.neutral_image = str(blank)
    before = _snapshot()
    with pytest.raises(RuntimeError, match="No face was found in the neutral image"):
        bpy.ops.i2fet.generate()
    assert _snapshot() == before
    runtime_cache.release()


@pytest.mark.parametrize("path, message", [("", "Choose the photo"), ("missing.png", "missing.png")])
def test_generate_refuses_a_missing_photo_and_changes_nothing(fake_runtime, tmp_path, path, message):
    bpy.ops.i2fet.add_default_head()
    settings = bpy.context.scene.i2fet
    settings.use_start_image = True
    settings.start_image = str(tmp_path / path) if path else ""
    before = _snapshot()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.i2fet.generate()
    assert _snapshot() == before
