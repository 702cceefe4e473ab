"""The FLAME file's declared-shape checks on both sides of each limit (run first by scripts/mutation_test.py)."""

import pytest

from model_runtime.errors import WeightsError
from model_runtime.rigs import flame_file



def _shapes(v=10, k=7, **replaced):
    shapes = {"v_template": (v, 3), "shapedirs": (v, 3, k), "posedirs": (v, 3, flame_file.NUM_POSE_FEATURES),
              "J_regressor": (flame_file.NUM_JOINTS, v), "kintree_table": (2, flame_file.NUM_JOINTS),
              "weights": (v, flame_file.NUM_JOINTS), "f": (16, 3)}
    shapes.update(replaced)
    return shapes


def test_flame_shape_checks_accept_each_documented_layout():
    v, p = 10, flame_file.NUM_POSE_FEATURES
    for replaced in ({}, {"shapedirs": (v * 3, 7)}, {"posedirs": (v * 3, p)}, {"posedirs": (p, v * 3)},
                     {"shapedirs": (v, 3, flame_file.MAX_COMPONENTS)}, {"f": (flame_file.MAX_FACES, 3)}):
        flame_file._check_shapes(_shapes(**replaced), "x")
    big = flame_file.MAX_VERTICES
    flame_file._check_shapes(_shapes(v=big), "x")
    flame_file._check_shapes(_shapes(v=1), "x")


@pytest.mark.parametrize("name, shape", [
    ("v_template", (10, 3, 1)), ("v_template", (10, 2)), ("v_template", (0, 3)),
    ("shapedirs", (10, 2, 7)), ("shapedirs", (9, 3, 7)), ("shapedirs", (10, 3)), ("shapedirs", (31, 7)),
    ("shapedirs", (10, 3, flame_file.MAX_COMPONENTS + 1)), ("shapedirs", (10, 3, 7, 1)), ("shapedirs", (30,)),
    ("shapedirs", (30, 7, 1)),
    ("posedirs", (10, 3, 35)), ("posedirs", (30, 35)), ("posedirs", (36, 31)),
    ("J_regressor", (5, 9)), ("J_regressor", (4, 10)), ("kintree_table", (2, 4)), ("kintree_table", (3, 5)),
    ("weights", (9, 5)), ("weights", (10, 4)), ("f", (16, 4)), ("f", (16,)), ("f", (16, 3, 1)),
    ("f", (flame_file.MAX_FACES + 1, 3)),
])
def test_flame_shape_checks_refuse_each_wrong_shape(name, shape):
    with pytest.raises(WeightsError, match=f"has {name} of shape"):
        flame_file._check_shapes(_shapes(**{name: shape}), "x")


def test_flame_shape_checks_refuse_too_many_vertices():
    with pytest.raises(WeightsError, match="v_template of shape"):
        flame_file._check_shapes(_shapes(v=flame_file.MAX_VERTICES + 1), "x")
