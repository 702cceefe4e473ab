"""The ARKit <-> FLAME map, derived on a FLAME-format model built from the default head, where the truth is known:
its expression basis spans the head's non-jaw shapes, its jaw hinges where jawOpen rotates, its eyeballs are the
head's own."""

import numpy as np
import pytest

from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX
from model_runtime.rigs.flame_map import flame_map_for, map_cache_path, solve_box_qp

NON_JAW = [c for c in ARKIT_CHANNELS if not c.startswith("jaw") and c != "tongueOut"]


@pytest.fixture(scope="module")
def fmap(head_flame):
    return head_flame.map


def test_shapes_the_basis_spans_are_fitted_closely(fmap):
    residuals = fmap.residuals[[CHANNEL_INDEX[c] for c in NON_JAW]]
    assert np.median(residuals) < 0.02 and residuals.max() < 0.10, fmap.summary()


def test_jaw_open_becomes_a_jaw_rotation_about_the_hinge(fmap, head_flame):
    jaw = fmap.pose[CHANNEL_INDEX["jawOpen"], :3]
    theta = head_flame.facts["theta_jaw_open"]
    assert abs(jaw[0] - abs(theta)) < 0.15 * abs(theta)  # opening is a rotation about FLAME's X axis
    assert np.abs(jaw[1:]).max() < 0.01
    for name in NON_JAW:  # no other shape opens the jaw
        assert np.abs(fmap.pose[CHANNEL_INDEX[name], :3]).max() < 0.01, name


def test_gaze_turns_the_matching_eye(fmap):
    eyes = fmap.pose[:, 3:]
    out_left, in_left = eyes[CHANNEL_INDEX["eyeLookOutLeft"]], eyes[CHANNEL_INDEX["eyeLookInLeft"]]
    assert abs(out_left[1]) > 0.1 and np.sign(out_left[1]) == -np.sign(in_left[1])  # opposite turns about Y
    assert np.abs(out_left[3:]).max() < 1e-3  # the right eye stays
    up, down = eyes[CHANNEL_INDEX["eyeLookUpRight"]], eyes[CHANNEL_INDEX["eyeLookDownRight"]]
    assert np.sign(up[3]) == -np.sign(down[3]) and abs(up[3]) > 0.1
    # left and right gaze mirror each other: same pitch, opposite yaw
    out_right = eyes[CHANNEL_INDEX["eyeLookOutRight"]]
    assert out_right[4] == pytest.approx(-out_left[1], abs=0.02)


def test_round_trip_recovers_sparse_expressions(fmap):
    rng = np.random.default_rng(5)
    weights = np.zeros((40, 52), np.float32)
    for row in weights:
        active = rng.choice([CHANNEL_INDEX[c] for c in NON_JAW + ["jawOpen"]], 4, replace=False)
        row[active] = rng.uniform(0.3, 1.0, 4)
    expression, jaw, eyes = fmap.to_flame(weights)
    back = fmap.to_arkit(expression, jaw, eyes)
    assert np.abs(back - weights).mean() < 0.03
    assert fmap.roundtrip_weight_error < 0.03 and fmap.roundtrip_vertex_error < 0.10


def test_flame_jaw_rotation_reads_as_jaw_open(fmap):
    weights = fmap.to_arkit(np.zeros((1, 10)), np.array([[0.2, 0.0, 0.0]]))
    assert np.argmax(weights[0]) == CHANNEL_INDEX["jawOpen"]
    assert weights[0, CHANNEL_INDEX["jawOpen"]] == pytest.approx(0.2 / fmap.pose[CHANNEL_INDEX["jawOpen"], 0], abs=0.15)


def test_box_qp_matches_the_unconstrained_solution_inside_the_box():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(20, 6))
    gram = m.T @ m
    inside = rng.uniform(0.2, 0.8, (3, 6))
    np.testing.assert_allclose(solve_box_qp(gram, inside @ gram), inside, atol=1e-4)
    outside = solve_box_qp(gram, np.full((1, 6), 50.0) @ gram)
    assert outside.max() <= 1.0 and outside.min() >= 0.0


def test_cache_is_used_and_a_corrupt_cache_is_rebuilt(head_flame, cache_root, monkeypatch):
    head_flame.install()
    cached = flame_map_for(head_flame.model)
    assert cached.from_cache
    np.testing.assert_array_equal(cached.expression, head_flame.map.expression)
    assert cached.notes == head_flame.map.notes
    map_cache_path(head_flame.model).write_bytes(b"not an npz")
    import model_runtime.rigs.flame_map as module
    calls = []
    monkeypatch.setattr(module, "derive_flame_map", lambda model, **kw: calls.append(1) or head_flame.map)
    rebuilt = flame_map_for(head_flame.model)
    assert calls == [1] and rebuilt is head_flame.map


@pytest.mark.parametrize("call, message", [
    (lambda m: m.to_flame(np.zeros((3, 51))), "ARKit weights must be"),
    (lambda m: m.to_flame(np.full((2, 52), np.nan)), "non-finite"),
    (lambda m: m.to_arkit(np.zeros((2, 80))), "FLAME expressions must be"),
    (lambda m: m.to_arkit(np.zeros((2, 10)), np.zeros((3, 3))), "jaw_pose must be"),
])
def test_bad_parameters_are_refused(fmap, call, message):
    with pytest.raises(InputError, match=message):
        call(fmap)
