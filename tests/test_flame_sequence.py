"""FLAME parameter sequences: the layouts DECA, EMOCA and SMIRK write, round trips, and refusals."""

import pickle

import numpy as np
import pytest

from model_runtime.errors import InputError
from model_runtime.rigs.flame_sequence import FlameSequence, load_flame_sequence, save_flame_sequence

RNG = np.random.default_rng(3)
T = 7
EXP = RNG.normal(0, 1, (T, 50))
JAW = np.abs(RNG.normal(0, 0.1, (T, 3)))
GLOBAL = RNG.normal(0, 0.1, (T, 3))


def _pickle(path, obj, protocol=4):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_deca_pickle_with_posecode(tmp_path):
    seq = load_flame_sequence(_pickle(tmp_path / "deca.pkl", {"exp": EXP, "pose": np.hstack([GLOBAL, JAW]),
                                                             "shape": np.zeros(100), "cam": np.ones(3)}))
    np.testing.assert_allclose(seq.expression, EXP, atol=1e-6)
    np.testing.assert_allclose(seq.jaw_pose, JAW, atol=1e-6)
    np.testing.assert_allclose(seq.global_pose, GLOBAL, atol=1e-6)
    assert seq.num_frames == T and seq.num_expression == 50


def test_emoca_per_frame_dicts_with_batch_axis(tmp_path):
    frames = [{"expcode": EXP[i][None], "posecode": np.hstack([GLOBAL[i], JAW[i]])[None]} for i in range(T)]
    seq = load_flame_sequence(_pickle(tmp_path / "emoca.pkl", frames, protocol=2))
    np.testing.assert_allclose(seq.expression, EXP, atol=1e-6)
    np.testing.assert_allclose(seq.jaw_pose, JAW, atol=1e-6)


def test_smirk_npz_separates_jaw_and_global(tmp_path):
    path = tmp_path / "smirk.npz"
    np.savez(path, expression_params=EXP, jaw_params=JAW, pose_params=GLOBAL, eyelid_params=np.zeros((T, 2)))
    seq = load_flame_sequence(path)
    np.testing.assert_allclose(seq.jaw_pose, JAW, atol=1e-6)
    np.testing.assert_allclose(seq.global_pose, GLOBAL, atol=1e-6)


def test_full_pose_is_split_into_its_joints(tmp_path):
    pose = RNG.normal(0, 0.1, (T, 15))
    path = tmp_path / "full.npz"
    np.savez(path, expression=EXP[:, :10], pose=pose, fps=np.float64(25))
    seq = load_flame_sequence(path)
    np.testing.assert_allclose(seq.neck_pose, pose[:, 3:6], atol=1e-6)
    np.testing.assert_allclose(seq.jaw_pose, pose[:, 6:9], atol=1e-6)
    np.testing.assert_allclose(seq.eye_pose, pose[:, 9:15], atol=1e-6)
    assert seq.fps == 25.0


def test_single_frame_and_missing_jaw(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, exp=EXP[0])
    seq = load_flame_sequence(path)
    assert seq.expression.shape == (1, 50)
    assert np.all(seq.jaw_pose == 0) and any("no jaw" in n for n in seq.notes)


def test_round_trip(tmp_path):
    seq = FlameSequence(expression=EXP.astype(np.float32), jaw_pose=JAW.astype(np.float32),
                        global_pose=GLOBAL.astype(np.float32), fps=30.0)
    path = save_flame_sequence(tmp_path / "out.npz", seq)
    with np.load(path, allow_pickle=False) as f:
        assert f["expression"].shape == (T, 50) and f["jaw_pose"].shape == (T, 3)
    back = load_flame_sequence(path)
    np.testing.assert_array_equal(back.expression, seq.expression)
    np.testing.assert_array_equal(back.jaw_pose, seq.jaw_pose)
    assert back.fps == 30.0


def test_save_refuses_other_extension_and_writes_nothing(tmp_path):
    seq = FlameSequence(expression=np.zeros((2, 3), np.float32), jaw_pose=np.zeros((2, 3), np.float32))
    with pytest.raises(InputError, match="npz"):
        save_flame_sequence(tmp_path / "out.pkl", seq)
    assert list(tmp_path.iterdir()) == []


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch should-not-exist",))


@pytest.mark.parametrize("case, message", [
    ("missing_expression", "no FLAME expression"),
    ("ambiguous_pose", "could be the global or the jaw"),
    ("frame_mismatch", "expression frames but"),
    ("wrong_jaw_width", "expected \\(frames, 3\\)"),
    ("nan", "non-finite"),
    ("huge", "far beyond"),
    ("conflicting_jaw", "twice"),
    ("not_a_dict", "not a dictionary"),
    ("evil", "refused"),
    ("garbage", "neither a readable pickle"),
    ("object_npz", "pickled objects"),
    ("bad_fps", "frame rate"),
    ("big_angle", "half turn"),
])
def test_bad_files_are_refused_with_one_sentence(tmp_path, monkeypatch, case, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "seq.pkl"
    if case == "missing_expression":
        _pickle(path, {"shape": np.zeros(100)})
    elif case == "ambiguous_pose":
        _pickle(path, {"exp": EXP, "pose": JAW})
    elif case == "frame_mismatch":
        _pickle(path, {"exp": EXP, "jaw_pose": JAW[:3]})
    elif case == "wrong_jaw_width":
        _pickle(path, {"exp": EXP, "jaw_pose": np.zeros((T, 4))})
    elif case == "nan":
        bad = EXP.copy()
        bad[2, 3] = np.nan
        _pickle(path, {"exp": bad})
    elif case == "huge":
        _pickle(path, {"exp": EXP * 1000})
    elif case == "conflicting_jaw":
        _pickle(path, {"exp": EXP, "jaw_pose": JAW, "pose": np.hstack([GLOBAL, JAW + 0.1])})
    elif case == "not_a_dict":
        _pickle(path, (1, 2, 3))
    elif case == "evil":
        _pickle(path, {"exp": _Evil()})
    elif case == "garbage":
        path.write_bytes(b"this is not a pickle at all")
    elif case == "object_npz":
        path = tmp_path / "seq.npz"
        np.savez(path, exp=np.array([{"a": 1}], dtype=object))
    elif case == "bad_fps":
        _pickle(path, {"exp": EXP, "fps": -3.0})
    elif case == "big_angle":
        _pickle(path, {"exp": EXP, "jaw_pose": np.full((T, 3), 3.0)})
    with pytest.raises(InputError, match=message) as info:
        load_flame_sequence(path)
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text
    assert not (tmp_path / "should-not-exist").exists()


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_flame_sequence(tmp_path / "nope.npz")


@pytest.mark.parametrize("content, message", [
    ({"exp": np.zeros((0, 50))}, "holds no frames"),
    ({"exp": np.zeros((1, 0, 50))}, "holds no frames"),
    ({"exp": [[10**400] * 50] * 3}, "not an array of ordinary numbers"),
    ({"exp": EXP, "fps": 10**400}, "'fps' in .* is not an array of ordinary numbers"),
    ({"exp": EXP, "fps": 1e300}, "a frame rate is between 1 and 1000"),
    ({"exp": EXP, "fps": np.zeros(0)}, "'fps' in .* is empty"),
    ({"exp": EXP, "jaw_pose": [[10**400, 0, 0]] * T}, "not an array of ordinary numbers"),
    ({"exp": [1j] * 50}, "tries to load builtins.complex"),
    ({"exp": "abc"}, "not an array of ordinary numbers"),
    ([{"exp": EXP[0]}] * 3 + [{"exp": EXP[0, :10]}], "not have the same size in every frame"),
])
def test_edge_cases_are_one_sentence(tmp_path, content, message):
    path = _pickle(tmp_path / "seq.pkl", content)
    with pytest.raises(InputError, match=message) as info:
        load_flame_sequence(path)
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text


def test_sparse_matrix_as_expression_is_one_sentence(tmp_path):
    import scipy.sparse

    from hostile_files import ForgedSparse

    matrix = scipy.sparse.csc_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=(T, 50))
    path = _pickle(tmp_path / "seq.pkl", {"exp": ForgedSparse(matrix, indices=[10**30] * 3)}, protocol=2)
    with pytest.raises(InputError, match="not an array of ordinary numbers"):
        load_flame_sequence(path)


def test_empty_npz_expression_is_one_sentence(tmp_path):
    path = tmp_path / "seq.npz"
    np.savez(path, exp=np.zeros((0, 50)))
    with pytest.raises(InputError, match="holds no frames"):
        load_flame_sequence(path)
