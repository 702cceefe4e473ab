"""The FLAME forward pass: numpy and torch agree with each other and with a slow loop-based reference."""

import dataclasses

import numpy as np
import pytest
import torch

from flame_samples import JAW, E, S, V, tiny_flame_arrays
from model_runtime.errors import InputError
from model_runtime.rigs import FlameLayer, flame_forward_np, load_flame



@pytest.fixture(scope="module")
def model(tmp_path_factory, cache_root):
    folder = tmp_path_factory.mktemp("flame")
    # posedirs larger than the file tests' so pose correctives matter; the first 20 vertices do not follow the jaw
    np.savez(folder / "flame.npz", **tiny_flame_arrays(seed=7, posedirs_scale=1e-2, jaw_free=20))
    return load_flame(folder / "flame.npz")


def random_params(batch, n_shape, n_expr, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, (batch, n_shape)), rng.normal(0, 1, (batch, n_expr)),
            rng.normal(0, scale, (batch, 15)), rng.normal(0, 0.05, (batch, 3)))


def reference(model, shape, expr, pose, trans):
    """Plain loops, float64: one batch item, one vertex and one joint at a time."""
    out_v, out_j = [], []
    parents = [-1] + [int(p) for p in model.kintree_table[0, 1:]]
    posedirs = model.posedirs.T.reshape(V, 3, 36)
    for b in range(pose.shape[0]):
        shaped = np.zeros((V, 3))
        for v in range(V):
            p = model.v_template[v].copy()
            for k in range(shape.shape[1]):
                p += model.shapedirs[v, :, k] * shape[b, k]
            for k in range(expr.shape[1]):
                p += model.exprdirs[v, :, k] * expr[b, k]
            shaped[v] = p
        joints = np.zeros((5, 3))
        for j in range(5):
            for v in range(V):
                joints[j] += model.J_regressor[j, v] * shaped[v]
        rots = []
        for j in range(5):
            w = pose[b, 3 * j:3 * j + 3]
            angle = np.linalg.norm(w)
            if angle < 1e-12:
                rots.append(np.eye(3))
                continue
            k = w / angle
            kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
            rots.append(np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx)
        feature = []
        for j in range(1, 5):
            d = rots[j] - np.eye(3)
            for r in range(3):
                for c in range(3):
                    feature.append(d[r, c])
        posed = shaped.copy()
        for v in range(V):
            for c in range(3):
                for i in range(36):
                    posed[v, c] += posedirs[v, c, i] * feature[i]
        world = []
        for j in range(5):
            local = np.eye(4)
            local[:3, :3] = rots[j]
            local[:3, 3] = joints[j] - (joints[parents[j]] if j else 0)
            world.append(local if j == 0 else world[parents[j]] @ local)
        skin = []
        for j in range(5):
            rest = np.eye(4)
            rest[:3, 3] = -joints[j]
            skin.append(world[j] @ rest)
        verts = np.zeros((V, 3))
        for v in range(V):
            m = np.zeros((4, 4))
            for j in range(5):
                m += model.weights[v, j] * skin[j]
            verts[v] = (m @ np.append(posed[v], 1.0))[:3] + trans[b]
        out_v.append(verts)
        out_j.append(np.array([world[j][:3, 3] + trans[b] for j in range(5)]))
    return np.array(out_v), np.array(out_j)


def test_numpy_torch_and_loop_reference_agree(model):
    shape, expr, pose, trans = random_params(3, 40, E, seed=1)
    verts, joints = flame_forward_np(model, shape, expr, pose, trans)
    assert verts.shape == (3, V, 3) and joints.shape == (3, 5, 3)
    ref_v, ref_j = reference(model, shape, expr, pose, trans)
    np.testing.assert_allclose(verts, ref_v, atol=1e-5, rtol=0)
    np.testing.assert_allclose(joints, ref_j, atol=1e-5, rtol=0)
    for dtype in (torch.float32, torch.float64):
        layer = FlameLayer(model, dtype=dtype)
        tv, tj = layer(*(torch.as_tensor(x, dtype=dtype) for x in (shape, expr, pose, trans)))
        np.testing.assert_allclose(tv.numpy(), verts, atol=1e-5, rtol=0)
        np.testing.assert_allclose(tj.numpy(), joints, atol=1e-5, rtol=0)
        np.testing.assert_allclose(tv.numpy(), ref_v, atol=1e-5, rtol=0)


def test_zero_parameters_give_the_template(model):
    verts, joints = flame_forward_np(model, np.zeros((2, S)), np.zeros((2, E)), np.zeros((2, 15)))
    np.testing.assert_allclose(verts, np.broadcast_to(model.v_template, (2, V, 3)), atol=1e-12)
    np.testing.assert_allclose(joints[0], model.J_regressor @ model.v_template, atol=1e-12)
    tv, _ = FlameLayer(model)(None, None, torch.zeros(2, 15))
    np.testing.assert_allclose(tv.numpy(), verts, atol=1e-6)


def test_pure_expression_adds_the_expression_basis(model):
    _, expr, _, _ = random_params(2, 0, E, seed=2)
    verts, _ = flame_forward_np(model, None, expr, np.zeros((2, 15)))
    expected = model.v_template + np.einsum("vck,bk->bvc", model.exprdirs, expr)
    np.testing.assert_allclose(verts, expected, atol=1e-12)
    tv, _ = FlameLayer(model, torch.float64)(torch.zeros(2, 0), torch.as_tensor(expr), torch.zeros(2, 15))
    np.testing.assert_allclose(tv.numpy(), expected, atol=1e-12)


def test_jaw_rotation_moves_only_jaw_weighted_vertices(model):
    still = dataclasses.replace(model, posedirs=np.zeros_like(model.posedirs))  # no correctives: pure skinning
    pose = np.zeros((1, 15))
    pose[0, 3 * JAW] = 0.3
    verts, joints = flame_forward_np(still, None, None, pose)
    moved = np.linalg.norm(verts[0] - still.v_template, axis=1) > 1e-9
    assert not moved[:20].any()
    assert moved[20:].all()
    rest_joints = still.J_regressor @ still.v_template
    np.testing.assert_allclose(joints[0, :JAW], rest_joints[:JAW], atol=1e-12)
    tv, _ = FlameLayer(still, torch.float64)(None, None, torch.as_tensor(pose))
    np.testing.assert_allclose(tv.numpy(), verts, atol=1e-12)


def test_global_rotation_is_rigid(model):
    shape, expr, _, trans = random_params(1, S, E, seed=3)
    rest, rest_joints = flame_forward_np(model, shape, expr, np.zeros((1, 15)))
    pose = np.zeros((1, 15))
    pose[0, :3] = [0.2, -0.5, 0.9]
    verts, joints = flame_forward_np(model, shape, expr, pose, trans)
    angle = np.linalg.norm(pose[0, :3])
    k = pose[0, :3] / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx
    root = rest_joints[0, 0]
    expected = (rest[0] - root) @ rot.T + root + trans[0]
    np.testing.assert_allclose(verts[0], expected, atol=1e-12)
    np.testing.assert_allclose(joints[0], (rest_joints[0] - root) @ rot.T + root + trans[0], atol=1e-12)


def test_small_angles_and_gradients_are_finite(model):
    layer = FlameLayer(model, torch.float64)
    pose = torch.zeros(2, 15, dtype=torch.float64)
    pose[1, 6:9] = 1e-7
    pose.requires_grad_(True)
    verts, _ = layer(None, torch.zeros(2, E, dtype=torch.float64), pose)
    verts.sum().backward()
    assert torch.isfinite(pose.grad).all()
    np_verts, _ = flame_forward_np(model, None, None, pose.detach().numpy())
    np.testing.assert_allclose(verts.detach().numpy(), np_verts, atol=1e-12)


def test_bad_parameter_shapes(model):
    with pytest.raises(InputError, match="pose must be"):
        flame_forward_np(model, None, None, np.zeros((1, 12)))
    with pytest.raises(InputError, match="expression coefficients"):
        flame_forward_np(model, None, np.zeros((1, E + 1)), np.zeros((1, 15)))
    with pytest.raises(InputError, match="shape coefficients"):
        FlameLayer(model)(torch.zeros(2, 3), None, torch.zeros(1, 15))
    with pytest.raises(InputError, match="translation"):
        flame_forward_np(model, None, None, np.zeros((1, 15)), np.zeros((1, 2)))


def test_axis_angle_inverts_rodrigues_at_all_angles():
    from model_runtime.rigs.flame_layer import axis_angle_np, rodrigues_np

    rng = np.random.default_rng(4)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.r_[0.0, 1e-9, 1e-6, 1e-3, rng.uniform(0, np.pi - 1e-3, 196)]
    aa = axes * angles[:, None]
    np.testing.assert_allclose(axis_angle_np(rodrigues_np(aa)), aa, atol=1e-9)
    # a rotation held in float32 (as Blender holds bone matrices) still reads small angles to ~1e-7, not ~1e-4
    small = np.array([[2e-4, -1e-4, 5e-5]])
    np.testing.assert_allclose(axis_angle_np(rodrigues_np(small).astype(np.float32)), small, atol=1e-6)
