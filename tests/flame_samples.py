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
