"""Add ARKit Shape Keys on real Blender: a head of another topology, pose and unit gets 52 working keys; refusals."""

import sys
from pathlib import Path

import numpy as np
import pytest

from blender_helpers import bpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mesh_variants import Y_UP, make_variant, relative_errors  # noqa: E402

from model_runtime.expression_space import ARKIT_CHANNELS  # noqa: E402


@pytest.fixture(scope="module")
def variant(cache_root):
    from model_runtime.heads.head import load_default_head

    return make_variant(load_default_head(), "remeshed, Y-up, cm", remesh="quads", rotation=Y_UP, scale=100.0,
                        translation=(3.0, 150.0, 0.0), seed=3)


def _mesh_object(vertices, triangles, name="Sculpt"):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.asarray(vertices).tolist(), [], np.asarray(triangles).tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def _key_deltas(obj):
    blocks = obj.data.shape_keys.key_blocks
    count = len(obj.data.vertices)
    basis = np.empty(count * 3, dtype=np.float32)
    blocks["Basis"].data.foreach_get("co", basis)
    out = []
    for channel in ARKIT_CHANNELS:
        co = np.empty(count * 3, dtype=np.float32)
        blocks[channel].data.foreach_get("co", co)
        out.append((co - basis).reshape(-1, 3))
    return np.stack(out)


def test_a_bare_head_gets_52_working_keys(addon, variant):
    obj = _mesh_object(variant.vertices, variant.triangles)
    assert bpy.ops.i2fet.add_arkit_shape_keys() == {"FINISHED"}
    names = [kb.name for kb in obj.data.shape_keys.key_blocks]
    assert names == ["Basis", *ARKIT_CHANNELS]
    # Shapes that do not move this skin at all (tongueOut) have no relative error to speak of; keys stored in float32
    # at 150 cm from the origin carry ~1e-5 cm of rounding, which must not count as a shape.
    moving = np.abs(variant.truth[:, variant.face]).max(axis=(1, 2)) > 1e-3
    errors = relative_errors(_key_deltas(obj).astype(np.float64), variant.truth, variant.face)[moving]
    assert moving.sum() >= 50 and errors.mean() <= 0.10, dict(zip(np.array(ARKIT_CHANNELS)[moving], errors.round(3)))
    # The new keys drive like any ARKit rig: Generate's writer matches all 52.
    from i2fet_blender import writer

    match = writer.check_target(obj)
    assert len(match.mapping) == 52


def _state(obj):
    key = obj.data.shape_keys
    return (len(obj.data.vertices), [kb.name for kb in key.key_blocks] if key else None, sorted(bpy.data.objects.keys()))


def test_refusals_change_nothing(addon, variant):
    from blender_helpers import add_cube_with_keys

    rigged = add_cube_with_keys(["jawOpen", "eyeBlinkLeft"], name="Rigged")
    before = _state(rigged)
    with pytest.raises(RuntimeError, match="already has 2 of the 52 ARKit shape keys"):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(rigged) == before

    bpy.ops.mesh.primitive_plane_add()
    tiny = bpy.context.active_object
    before = _state(tiny)
    with pytest.raises(RuntimeError, match="a head mesh needs at least"):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(tiny) == before

    bpy.ops.object.camera_add()
    with pytest.raises(RuntimeError, match="Select a head mesh"):
        bpy.ops.i2fet.add_arkit_shape_keys()


def test_a_shape_that_is_not_a_head_is_refused(addon):
    bpy.ops.mesh.primitive_torus_add(major_segments=48, minor_segments=24)
    torus = bpy.context.active_object
    before = _state(torus)
    with pytest.raises(RuntimeError, match="does not look like a head"):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(torus) == before


def test_landmark_groups_guide_the_registration(addon, variant):
    """Groups `I2FET <landmark>` placed where the default head's landmarks are on the variant are honoured."""
    from model_runtime.heads.head import load_default_head
    from model_runtime.heads.landmarks import default_head_landmarks

    head = load_default_head()
    obj = _mesh_object(variant.vertices, variant.triangles)
    # Where each default-head landmark sits on the variant: the variant's nearest vertex to its posed position.
    for name, index in default_head_landmarks(head).items():
        posed = variant.scale * head.vertices[index] @ variant.rotation.T + variant.translation
        nearest = int(np.argmin(np.linalg.norm(variant.vertices - posed, axis=1)))
        obj.vertex_groups.new(name=f"I2FET {name}").add([nearest], 1.0, "REPLACE")
    from i2fet_blender.shape_keys_transfer import add_arkit_shape_keys

    report = add_arkit_shape_keys(obj)
    assert "Guided by 8 landmarks" in report.summary
    moving = np.abs(variant.truth[:, variant.face]).max(axis=(1, 2)) > 1e-3
    errors = relative_errors(_key_deltas(obj).astype(np.float64), variant.truth, variant.face)[moving]
    assert errors.mean() <= 0.10


def test_lid_margin_groups_reach_the_transfer_as_margins(addon, variant):
    """The four groups `I2FET upper_lid_left`, ... are read as lid margins (every vertex, for `lids=`), and the upper-lid
    groups then stop being centre landmarks; an upper-lid group without lower lids stays a centre landmark."""
    from i2fet_blender.shape_keys_transfer import read_head_mesh

    obj = _mesh_object(variant.vertices, variant.triangles)
    margins = {"upper_lid_left": [10, 11, 12], "lower_lid_left": [20, 21], "upper_lid_right": [30, 31, 32, 33],
               "lower_lid_right": [40, 41]}
    for name, rows in margins.items():
        obj.vertex_groups.new(name=f"I2FET {name}").add(rows, 1.0, "REPLACE")
    obj.vertex_groups.new(name="I2FET nose_tip").add([50], 1.0, "REPLACE")
    head = read_head_mesh(obj)
    assert {name: rows.tolist() for name, rows in head.lids.items()} == margins
    assert len(head.landmarks) == 1 and np.allclose(head.landmarks[0][1], variant.vertices[50])

    plain = _mesh_object(variant.vertices, variant.triangles, name="Plain")
    plain.vertex_groups.new(name="I2FET upper_lid_left").add([10, 11, 12], 1.0, "REPLACE")
    head = read_head_mesh(plain)
    assert head.lids is None and len(head.landmarks) == 1
    assert np.allclose(head.landmarks[0][1], variant.vertices[[10, 11, 12]].mean(axis=0))


def test_a_lower_lid_group_alone_is_refused(addon, variant):
    obj = _mesh_object(variant.vertices, variant.triangles)
    obj.vertex_groups.new(name="I2FET lower_lid_left").add([0, 1, 2], 1.0, "REPLACE")
    before = _state(obj)
    with pytest.raises(RuntimeError, match="upper_lid_left, upper_lid_right, lower_lid_right missing"):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(obj) == before


@pytest.mark.parametrize("group, message", [("I2FET nose", "names no landmark"), ("I2FET chin", "has no vertices")])
def test_bad_landmark_groups_are_refused(addon, variant, group, message):
    obj = _mesh_object(variant.vertices, variant.triangles)
    obj.vertex_groups.new(name=group)
    before = _state(obj)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(obj) == before


# With a window the operator runs modal: the transfer in a worker thread, progress in the status bar, Esc cancels.
# Background Blender has no window, so these tests play the timer and the keys (blender_helpers.ModalPlay).

# The worker's stages on the variant (a head with eyeballs whose fit needs no correction, so no blink checks).
STAGES = ["finding the face", "fitting the heads together", "transferring the shapes",
          "smoothing inside-out triangles", "done"]


@pytest.fixture
def face(addon, variant):
    """The variant as an object with a Basis and one sculpted key of the artist's own, set to 0.3."""
    obj = _mesh_object(variant.vertices, variant.triangles, name="Head")
    obj.shape_key_add(name="Basis", from_mix=False)
    fix = obj.shape_key_add(name="Sculpt fix", from_mix=False)
    fix.data[0].co.z += 0.5
    fix.value = 0.3
    return obj


def _snapshot(obj):
    """Everything the operator must leave as it was when it writes nothing."""
    key = obj.data.shape_keys
    blocks = []
    for kb in key.key_blocks if key else ():
        co = np.empty(len(kb.data) * 3, dtype=np.float32)
        kb.data.foreach_get("co", co)
        blocks.append((kb.name, kb.value, co.tobytes()))
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", co)
    return dict(co=co.tobytes(), blocks=blocks, data=obj.data.name, key=key.name if key else None, mode=obj.mode,
                active_key=obj.active_shape_key_index,
                meshes=sorted(bpy.data.meshes.keys()), keys=sorted(bpy.data.shape_keys.keys()),
                objects=sorted(bpy.data.objects.keys()), selected=sorted(o.name for o in bpy.context.selected_objects),
                active=bpy.context.view_layer.objects.active.name)


def _play():
    from blender_helpers import ModalPlay
    from i2fet_blender.flame_ops import I2FET_OT_add_arkit_shape_keys

    play = ModalPlay(I2FET_OT_add_arkit_shape_keys)
    assert play.start() == {"RUNNING_MODAL"}
    assert play.wm.handlers == [play.op] and len(play.wm.timers) == 1 and play.wm.progress == [("begin", 0, 100)]
    return play


def _assert_ended(play):
    """The timer is gone, the progress bar ended and the status bar is the scene's again, however the run ended."""
    assert play.wm.timers == [] and play.wm.progress[-1] == "end" and play.status_texts[-1] is None


@pytest.mark.parametrize("stage, key", [("finding the face", "RIGHTMOUSE"), ("done", "ESC"), (None, "ESC")],
                         ids=["early, right-click", "late, Esc", "after the work ended, Esc"])
def test_cancel_leaves_the_mesh_as_it_was(face, monkeypatch, stage, key):
    from blender_helpers import WorkerGate
    from model_runtime.progress import Cancelled

    before = _snapshot(face)
    gate = WorkerGate(monkeypatch, stage)
    play = _play()
    if stage is None:
        play.op._job.finished.wait(600)
    else:
        gate.wait(play)
        assert face.data.shape_keys.key_blocks.keys() == ["Basis", "Sculpt fix"]  # nothing written while it works
    assert play.send(key) == {"RUNNING_MODAL"}  # the worker stops at its next step; the operator waits for it
    assert play.status_texts[-1] == "Add ARKit Shape Keys: cancelling…"
    gate.release()
    assert play.tick_until_done() == {"CANCELLED"}
    if stage is not None:  # the worker stopped at its next step instead of working on
        assert isinstance(play.op._job.error, Cancelled) and gate.heard[-1][1] == stage
    _assert_ended(play)
    assert play.reports == [("INFO", "Add ARKit Shape Keys cancelled; nothing was changed.")]
    assert bpy.context.scene.i2fet.status == "Add ARKit Shape Keys cancelled; nothing was changed."
    assert _snapshot(face) == before


def test_progress_rises_in_order_and_the_keys_are_written_in_one_go_after_a_cancel(face, monkeypatch):
    """A run cancelled late, then a second run: progress in the status bar and the window manager in the worker's
    stage order up to 100%, the keys written once, on the main thread, after the worker ended."""
    import threading

    from blender_helpers import WorkerGate
    from i2fet_blender import shape_keys_transfer

    gate = WorkerGate(monkeypatch, "smoothing inside-out triangles")
    play = _play()
    gate.wait(play)
    assert play.send("ESC") == {"RUNNING_MODAL"}
    gate.release()
    assert play.tick_until_done() == {"CANCELLED"}

    writes = []
    write_keys = shape_keys_transfer.write_keys

    def recorded(obj, head, keys):
        writes.append((threading.current_thread() is threading.main_thread(), play.op._job.finished.is_set()))
        return write_keys(obj, head, keys)

    monkeypatch.setattr(shape_keys_transfer, "write_keys", recorded)
    gate = WorkerGate(monkeypatch)
    play = _play()
    assert play.tick_until_done(every=0.01) == {"FINISHED"}, play.reports
    _assert_ended(play)
    assert writes == [(True, True)]
    names = [kb.name for kb in face.data.shape_keys.key_blocks]
    assert names == ["Basis", "Sculpt fix", *ARKIT_CHANNELS]
    assert face.data.shape_keys.key_blocks["Sculpt fix"].value == pytest.approx(0.3)
    assert np.abs(_key_deltas(face)).max() > 0.1  # the keys move the face (centimetres)
    assert [name for i, (_, name) in enumerate(gate.heard) if i == 0 or gate.heard[i - 1][1] != name] == STAGES
    shown = [value for value in play.wm.progress[1:-1]]
    assert shown[-1] == 100 and all(a <= b for a, b in zip(shown, shown[1:])) and len(set(shown)) >= 3
    texts = [t for t in play.status_texts if t]
    seen = [t.split(": ", 1)[1].rsplit(" (", 1)[0] for t in texts]
    assert all(t.startswith("Add ARKit Shape Keys: ") and t.endswith("; Esc cancels)") for t in texts)
    order = ["starting", *STAGES]  # "starting": before the worker's first report
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen) and len(set(seen)) >= 3
    assert play.reports[-1][0] == "INFO" and play.reports[-1][1].startswith("Added 52 ARKit shape keys to 'Head'")


def test_a_mesh_edited_while_the_keys_are_computed_is_left_alone(face, monkeypatch):
    from blender_helpers import WorkerGate

    gate = WorkerGate(monkeypatch, "transferring the shapes")
    play = _play()
    gate.wait(play)
    face.data.shape_keys.key_blocks["Basis"].data[5].co.x += 1.0  # the artist sculpts meanwhile
    before = _snapshot(face)
    gate.release()
    assert play.tick_until_done() == {"CANCELLED"}
    _assert_ended(play)
    assert play.reports == [("ERROR", "'Head' was edited while its shape keys were computed; nothing was added, "
                                      "run Add ARKit Shape Keys again.")]
    assert _snapshot(face) == before


def test_errors_in_the_worker_are_one_sentence_and_change_nothing(face, monkeypatch):
    import model_runtime.rigs.shape_transfer as shape_transfer

    def breaks(vertices, triangles, landmarks=None, lids=None, progress=None):
        progress(0.0, "finding the face")
        raise RuntimeError("the solver broke")

    monkeypatch.setattr(shape_transfer, "transfer_default_head_shapes", breaks)
    before = _snapshot(face)
    play = _play()
    assert play.tick_until_done() == {"CANCELLED"}
    _assert_ended(play)
    message = "Add ARKit Shape Keys failed unexpectedly: RuntimeError: the solver broke"
    assert play.reports == [("ERROR", message)] and bpy.context.scene.i2fet.status == message
    assert _snapshot(face) == before


def test_a_refusal_found_by_the_worker_is_one_sentence_and_changes_nothing(addon, cache_root):
    bpy.ops.mesh.primitive_torus_add(major_segments=48, minor_segments=24)
    torus = bpy.context.active_object
    before = _snapshot(torus)
    play = _play()
    assert play.tick_until_done() == {"CANCELLED"}
    _assert_ended(play)
    [(kind, message)] = play.reports
    assert kind == "ERROR" and "does not look like a head" in message and message.count(". ") == 0, message
    assert _snapshot(torus) == before


def test_refusals_before_the_worker_starts_leave_no_timer(addon):
    from blender_helpers import ModalPlay, add_cube_with_keys
    from i2fet_blender.flame_ops import I2FET_OT_add_arkit_shape_keys

    add_cube_with_keys(["jawOpen"], name="Rigged")
    play = ModalPlay(I2FET_OT_add_arkit_shape_keys)
    assert play.start() == {"CANCELLED"}
    assert play.wm.timers == play.wm.handlers == play.wm.progress == []
    assert "already has 1 of the 52 ARKit shape keys" in play.reports[0][1]


@pytest.mark.parametrize("had_keys", [False, True])
def test_a_failed_write_leaves_no_partial_keys(face, had_keys):
    """Keys are written in one go: when one cannot be written, those written before it are removed again."""
    from i2fet_blender.shape_keys_transfer import ComputedKeys, TransferReport, read_head_mesh, write_keys

    if not had_keys:
        face.shape_key_clear()
    before = _snapshot(face)
    head = read_head_mesh(face)
    deltas = [np.zeros_like(head.rest)] * 10 + [np.zeros((3, 3))] + [np.zeros_like(head.rest)] * 41  # the 11th is bad
    with pytest.raises((ValueError, RuntimeError)):
        write_keys(face, head, ComputedKeys(deltas=deltas, report=TransferReport(summary="")))
    assert _snapshot(face) == before
