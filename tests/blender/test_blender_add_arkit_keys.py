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


@pytest.mark.parametrize("group, message", [("I2FET nose", "names no landmark"), ("I2FET chin", "has no vertices")])
def test_bad_landmark_groups_are_refused(addon, variant, group, message):
    obj = _mesh_object(variant.vertices, variant.triangles)
    obj.vertex_groups.new(name=group)
    before = _state(obj)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.i2fet.add_arkit_shape_keys()
    assert _state(obj) == before
