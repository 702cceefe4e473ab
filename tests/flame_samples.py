"""A tiny random model in FLAME's file layout, for tests that must not depend on a real (licensed) FLAME file."""

import numpy as np

V, S, E = 60, 300, 10
JAW = 2  # joint order: global, neck, jaw, left eye, right eye


def tiny_flame_arrays(seed=0, posedirs_scale=1e-3, jaw_free=0):
    """FLAME's arrays for V vertices, 300 shape + E expression components; the first `jaw_free` vertices get no
    jaw weight."""
    rng = np.random.default_rng(seed)
    weights = rng.random((V, 5))
    weights[:jaw_free, JAW] = 0.0
    weights /= weights.sum(1, keepdims=True)
    regressor = np.zeros((5, V))
    for j in range(5):
        idx = rng.choice(V, 6, replace=False)
        regressor[j, idx] = rng.random(6)
        regressor[j] /= regressor[j].sum()
    return {
        "v_template": rng.normal(0, 0.1, (V, 3)),
        "shapedirs": rng.normal(0, 1e-3, (V, 3, S + E)),
        "posedirs": rng.normal(0, posedirs_scale, (V, 3, 36)),
        "J_regressor": regressor,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights,
        "f": rng.integers(0, V, (80, 3)).astype(np.uint32),
    }


HEAD_FLAME_VERTICES = 5023  # FLAME's vertex count
HEAD_FLAME_EXPRESSION = 50
NON_JAW_EXCLUDED = ("jawOpen", "jawLeft", "jawRight", "jawForward")


def _affine_regressor_row(vertices, point, count=12):
    """Minimum-norm affine weights over the `count` nearest vertices that reproduce `point` exactly."""
    nearest = np.argsort(np.linalg.norm(vertices - point, axis=1))[:count]
    system = np.vstack([vertices[nearest].T, np.ones(count)])
    weights = np.linalg.lstsq(system, np.r_[point, 1.0], rcond=None)[0]
    row = np.zeros(vertices.shape[0])
    row[nearest] = weights
    return row


def head_flame_arrays(num_vertices=HEAD_FLAME_VERTICES, num_expression=HEAD_FLAME_EXPRESSION):
    """A FLAME-format model made from the default head, in FLAME's axes (Y up, face toward +Z), so that the truth of
    the ARKit -> FLAME map is known: the expression basis spans the head's non-jaw ARKit shapes, the jaw joint sits at
    the hinge that best explains jawOpen as a rotation, and the eyeballs are skinned to the eye joints.

    Returns (arrays for an npz, dict of facts: the jaw pivot, skin vertex count, ...)."""
    from model_runtime.expression_space import ARKIT_CHANNELS
    from model_runtime.heads.head import load_default_head
    from model_runtime.rigs.flame_map import blender_to_flame

    head = load_default_head()
    parts = head.vertex_parts
    keep = np.flatnonzero(np.isin(parts, (0, 1, 2)))  # skin and eyes
    remap = -np.ones(head.num_vertices, dtype=np.int64)
    remap[keep] = np.arange(keep.shape[0])
    tris = head.triangles()
    tris = remap[tris[np.all(remap[tris] >= 0, axis=1)]]
    verts = head.vertices[keep].astype(np.float64)
    deltas = head.deltas[:, keep].astype(np.float64)
    vparts = parts[keep]

    # Grow to num_vertices by splitting the largest triangles at their centroid (no new edges cross old ones).
    extra = num_vertices - verts.shape[0]
    area = np.linalg.norm(np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]]), axis=1)
    split = np.argsort(-area * (vparts[tris[:, 0]] == 0))[:extra]
    new_ids = verts.shape[0] + np.arange(extra)
    verts = np.vstack([verts, verts[tris[split]].mean(1)])
    deltas = np.concatenate([deltas, deltas[:, tris[split]].mean(2)], axis=1)
    vparts = np.r_[vparts, np.zeros(extra, dtype=vparts.dtype)]
    a, b, c = tris[split].T
    kept_tris = np.delete(tris, split, axis=0)
    tris = np.vstack([kept_tris, np.stack([a, b, new_ids], 1), np.stack([b, c, new_ids], 1),
                      np.stack([c, a, new_ids], 1)])

    # Jaw hinge: jawOpen ≈ rotation by θ about the X axis through (y_c, z_c): d_y = -θ(z - z_c), d_z = θ(y - y_c).
    jaw_open = deltas[ARKIT_CHANNELS.index("jawOpen")]
    moving = np.linalg.norm(jaw_open, axis=1) > 0.5 * np.linalg.norm(jaw_open, axis=1).max()
    ys, zs = verts[moving, 1], verts[moving, 2]
    lhs = np.vstack([np.c_[-zs, np.zeros_like(zs), np.ones_like(zs)], np.c_[ys, -np.ones_like(ys), np.zeros_like(ys)]])
    theta, theta_yc, theta_zc = np.linalg.lstsq(lhs, np.r_[jaw_open[moving, 1], jaw_open[moving, 2]], rcond=None)[0]
    pivot = np.array([0.0, theta_yc / theta, theta_zc / theta])
    rigid = np.abs(theta) * np.hypot(verts[:, 1] - pivot[1], verts[:, 2] - pivot[2])
    jaw_weight = np.clip(np.linalg.norm(jaw_open, axis=1) / np.maximum(rigid, 1e-6), 0.0, 1.0) * (vparts == 0)

    skin = vparts == 0
    weights = np.zeros((num_vertices, 5))
    weights[:, 2] = jaw_weight
    weights[:, 1] = np.where(skin, 1.0 - jaw_weight, 0.0)
    weights[vparts == 1, 3] = 1.0
    weights[vparts == 2, 4] = 1.0
    centre = verts[skin].mean(0)
    joints = np.array([[0.0, centre[1], verts[:, 2].min()], [0.0, centre[1], centre[2] - 0.05], pivot,
                       verts[vparts == 1].mean(0), verts[vparts == 2].mean(0)])
    regressor = np.stack([_affine_regressor_row(verts, joint) for joint in joints])

    names = [n for n in ARKIT_CHANNELS if n not in NON_JAW_EXCLUDED]
    stack = np.stack([deltas[ARKIT_CHANNELS.index(n)] for n in names]).reshape(len(names), -1)
    _, sing, vt = np.linalg.svd(stack, full_matrices=False)
    comps = min(num_expression, vt.shape[0])
    exprdirs = np.zeros((num_vertices, 3, num_expression))
    exprdirs[:, :, :comps] = (vt[:comps] * (sing[:comps, None] / 2.0)).T.reshape(num_vertices, 3,
                                                                                                      comps)
    flame = blender_to_flame  # Blender axes -> FLAME axes, for points and for displacement vectors alike
    exprdirs = np.moveaxis(flame(np.moveaxis(exprdirs, 1, -1)), -1, 1)
    rng = np.random.default_rng(0)
    arrays = {
        "v_template": flame(verts),
        "shapedirs": np.concatenate([np.zeros((num_vertices, 3, 300)), exprdirs], axis=2).astype(np.float32),
        "posedirs": rng.normal(0, 1e-5, (num_vertices, 3, 36)),
        "J_regressor": regressor,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights,
        "f": tris.astype(np.uint32),
    }
    facts = {"pivot_flame": flame(pivot), "theta_jaw_open": float(theta), "deltas_flame": flame(deltas),
             "skin": skin, "parts": vparts}
    return arrays, facts
