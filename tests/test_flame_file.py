"""Reading users' FLAME files safely: 2020-style chumpy pickles, 2023-style plain pickles, npz, hostile pickles."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from flame_samples import S, V, tiny_flame_arrays
from model_runtime.errors import InputError, WeightsError
from model_runtime.rigs import load_flame
from model_runtime.rigs.flame_file import LICENCE_LINES, detect_edition



@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I2FET_CACHE_DIR", str(tmp_path / "cache"))


def tiny_model(seed=0):
    return {**tiny_flame_arrays(seed), "bs_style": "lbs", "bs_type": "lrotmin"}


def fake_chumpy_class():
    """A class that pickles the way chumpy.ch.Ch does (module chumpy.ch, name Ch, state dict with 'x')."""
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

        def __getstate__(self):
            return {"x": self.x, "_dirty_vars": self._dirty_vars, "dterms": ()}

        def __setstate__(self, state):
            self.__dict__.update(state)

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    module.Ch = Ch
    return module


def write_2020_pickle(path, model, protocol=2):
    module = fake_chumpy_class()
    parent = types.ModuleType("chumpy")
    parent.ch = module
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = parent, module
    try:
        data = dict(model)
        for key in ("v_template", "shapedirs", "posedirs", "weights"):
            data[key] = module.Ch(model[key])
        data["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    assert "chumpy.ch" not in sys.modules  # the loader must manage with its stand-in
    return path


def write_2023_pickle(path, model, protocol=pickle.DEFAULT_PROTOCOL):
    data = dict(model)
    data["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


def write_npz(path, model):
    np.savez(path, **{k: v for k, v in model.items() if isinstance(v, np.ndarray)})
    return path


def check_arrays(loaded, model):
    np.testing.assert_array_equal(loaded.v_template, model["v_template"])
    np.testing.assert_array_equal(loaded.shapedirs, model["shapedirs"][:, :, :S])
    np.testing.assert_array_equal(loaded.exprdirs, model["shapedirs"][:, :, S:])
    assert loaded.posedirs.shape == (36, V * 3)
    np.testing.assert_array_equal(loaded.posedirs.T.reshape(V, 3, 36), model["posedirs"])
    np.testing.assert_allclose(loaded.J_regressor, model["J_regressor"], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(loaded.kintree_table, model["kintree_table"])
    np.testing.assert_array_equal(loaded.weights, model["weights"])
    np.testing.assert_array_equal(loaded.f, model["f"].astype(np.int64))
    assert loaded.f.dtype == np.int64 and loaded.units == "metres"
    assert list(loaded.parents) == [-1, 0, 1, 1, 1]


@pytest.mark.parametrize("protocol", [0, 2])
def test_2020_chumpy_pickle_loads_without_chumpy(tmp_path, protocol):
    model = tiny_model()
    path = write_2020_pickle(tmp_path / "generic_model.pkl", model, protocol)
    loaded = load_flame(path)
    check_arrays(loaded, model)
    assert loaded.edition == "FLAME 2020"
    assert "non-commercial scientific research" in loaded.licence_line and "check" in loaded.licence_line
    assert len(loaded.sha256) == 64
    assert "chumpy" not in sys.modules


@pytest.mark.parametrize("protocol", [2, 5])
def test_2023_plain_pickle_and_editions_from_names(tmp_path, protocol):
    model = tiny_model(1)
    loaded = load_flame(write_2023_pickle(tmp_path / "flame2023.pkl", model, protocol))
    check_arrays(loaded, model)
    assert loaded.edition == "FLAME 2023"
    opened = load_flame(write_2023_pickle(tmp_path / "flame2023_Open.pkl", model, protocol))
    assert opened.edition == "FLAME 2023 Open" and "CC-BY-4.0" in opened.licence_line
    plain = load_flame(write_2023_pickle(tmp_path / "my_head.pkl", model, protocol))
    assert plain.edition == "unknown" and plain.licence_line == LICENCE_LINES["unknown"]


def test_edition_heuristic():
    assert detect_edition("chumpy", "generic_model.pkl") == "FLAME 2020"
    assert detect_edition("chumpy", "flame2023.pkl") == "unknown"  # contents and name disagree: do not guess
    assert detect_edition("pickle", "generic_model.pkl") == "FLAME 2020"
    assert detect_edition("npz", "head.npz") == "unknown"
    assert detect_edition("npz", "FLAME2023_open.npz") == "FLAME 2023 Open"


def test_npz_conversion_and_cache(tmp_path):
    model = tiny_model(2)
    path = write_npz(tmp_path / "flame.npz", model)
    first = load_flame(path)
    check_arrays(first, model)
    cached = tmp_path / "cache" / "flame" / f"{first.sha256}.npz"
    assert cached.is_file()
    second = load_flame(path)
    check_arrays(second, model)
    cached.write_bytes(b"PK\x03\x04 this is not a zip any more")
    third = load_flame(path)  # corrupt cache: rebuilt from the file
    check_arrays(third, model)
    with np.load(cached) as f:
        assert f["v_template"].shape == (V, 3)


def test_cache_with_wrong_shapes_is_rebuilt(tmp_path):
    model = tiny_model(3)
    path = write_npz(tmp_path / "flame.npz", model)
    first = load_flame(path)
    cached = tmp_path / "cache" / "flame" / f"{first.sha256}.npz"
    with np.load(cached) as f:
        arrays = dict(f)
    arrays["weights"] = arrays["weights"][:10]
    np.savez(cached, **arrays)
    check_arrays(load_flame(path), model)


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("kind", ["os.system", "eval", "subprocess", "partial"])
def test_malicious_pickle_is_refused_before_running(tmp_path, kind, protocol):
    import builtins
    import functools
    import subprocess

    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = _Evil(os.system, f"touch {marker}")
    elif kind == "eval":
        payload = _Evil(builtins.eval, f"open({str(marker)!r}, 'w').write('x')")
    elif kind == "subprocess":
        payload = _Evil(subprocess.call, ["touch", str(marker)])
    else:
        payload = _Evil(functools.partial(os.system, f"touch {marker}"), None)
    model = tiny_model()
    model["v_template"] = payload
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=protocol))
    with pytest.raises(WeightsError, match="refused: the file tries to load .*which a FLAME model never contains"):
        load_flame(path)
    assert not marker.exists()


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_flame(tmp_path / "nope.pkl")
    with pytest.raises(InputError, match="not a file"):
        load_flame(tmp_path)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(WeightsError, match="neither a readable pickle nor an npz"):
        load_flame(junk)
    bad_zip = tmp_path / "bad.npz"
    bad_zip.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(WeightsError, match="not a readable FLAME npz"):
        load_flame(bad_zip)
    listed = tmp_path / "list.pkl"
    listed.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(WeightsError, match="not a dictionary"):
        load_flame(listed)


def test_missing_keys_are_named(tmp_path):
    model = tiny_model()
    del model["weights"], model["f"]
    path = write_2023_pickle(tmp_path / "flame2023.pkl", model)
    with pytest.raises(WeightsError, match="lacks weights, f"):
        load_flame(path)
    npz = write_npz(tmp_path / "flame.npz", model)
    with pytest.raises(WeightsError, match="lacks weights, f"):
        load_flame(npz)


@pytest.mark.parametrize("key,value,message", [
    ("v_template", np.zeros((V, 2)), "v_template of shape"),
    ("weights", np.full((V - 1, 5), 0.2), "weights of shape"),
    ("shapedirs", np.zeros((V, 2, 310)), "shapedirs of shape"),
    ("posedirs", np.zeros((V, 3, 35)), "posedirs of shape"),
    ("J_regressor", np.zeros((4, V)), "J_regressor of shape"),
    ("kintree_table", np.array([[-1, 0, 3, 1, 1], [0, 1, 2, 3, 4]]), "not a joint tree"),
    ("f", np.full((4, 3), V), "outside"),
])
def test_wrong_shapes(tmp_path, key, value, message):
    model = tiny_model()
    model[key] = value
    with pytest.raises(WeightsError, match=message):
        load_flame(write_npz(tmp_path / "flame.npz", model))


def test_non_finite_values(tmp_path):
    model = tiny_model()
    model["shapedirs"][3, 1, 305] = np.nan
    with pytest.raises(WeightsError, match="non-finite values .* in exprdirs"):
        load_flame(write_2023_pickle(tmp_path / "flame2023.pkl", model))


def test_posedirs_layouts_and_no_expression(tmp_path):
    model = tiny_model()
    model["shapedirs"] = model["shapedirs"][:, :, :20]
    model["posedirs"] = model["posedirs"].reshape(V * 3, 36)
    loaded = load_flame(write_npz(tmp_path / "flame.npz", model))
    assert loaded.shapedirs.shape == (V, 3, 20) and loaded.exprdirs.shape == (V, 3, 0)
    np.testing.assert_array_equal(loaded.posedirs, model["posedirs"].T)
    model["posedirs"] = model["posedirs"].T.copy()
    again = load_flame(write_npz(tmp_path / "flame2.npz", model))
    np.testing.assert_array_equal(again.posedirs, loaded.posedirs)


@pytest.mark.parametrize("indices, message", [
    ([10**30] * 3, "indices that are not a one-dimensional array"),
    (np.full(3, 1e30), "indices that are not integers"),
    (np.full(3, 2**64 - 1, dtype=np.uint64), "inconsistent indices or shape"),
    (np.full(3, 10**18, dtype=np.int64), "inconsistent indices or shape"),
    (np.array([-1, 0, 1]), "inconsistent indices or shape"),
])
def test_sparse_indices_out_of_any_range_are_one_sentence(tmp_path, indices, message):
    from hostile_files import ForgedSparse

    model = tiny_model()
    regressor = scipy.sparse.csc_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=(5, V))  # three entries
    model["J_regressor"] = ForgedSparse(regressor, indices=indices)
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps(model, protocol=2))
    with pytest.raises(WeightsError, match=message) as info:
        load_flame(path)
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text


def sphere(radius=0.15, rings=40, segments=60):
    """A closed UV sphere the size of a head: vertices (N, 3) and triangles (F, 3)."""
    theta = np.linspace(0, np.pi, rings + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    points = radius * np.stack([np.sin(t) * np.cos(p), np.cos(t), np.sin(t) * np.sin(p)], -1).reshape(-1, 3)
    points = np.vstack([points, [[0, radius, 0], [0, -radius, 0]]])
    top, bottom = len(points) - 2, len(points) - 1
    faces = []
    for r in range(rings - 1):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            faces += [(a, a + segments, b), (b, a + segments, b + segments)]
    for s in range(segments):
        faces += [(top, (s + 1) % segments, s), (bottom, (rings - 1) * segments + s,
                                                 (rings - 1) * segments + (s + 1) % segments)]
    return points, np.array(faces, dtype=np.int64)


def test_head_sized_meshes_pass_the_plausibility_check():
    from model_runtime.rigs.flame_file import check_head_template

    points, faces = sphere()
    check_head_template(points, faces)
    check_head_template(points * [1.0, 1.3, 1.1], faces)  # elongated like a head


@pytest.mark.parametrize("variant, message", [
    ("sixty", "only 60 vertices"),
    ("random_triangles", "not a head mesh"),
    ("flat", "not a head mesh"),
    ("centimetres", "100 m across"),
    ("points_only", "not a surface"),
    ("collapsed", "not a head mesh"),
])
def test_implausible_head_templates_are_refused(variant, message):
    from model_runtime.rigs.flame_file import check_head_template

    points, faces = sphere()
    rng = np.random.default_rng(0)
    if variant == "sixty":
        points, faces = tiny_flame_arrays()["v_template"], tiny_flame_arrays()["f"].astype(np.int64)
    elif variant == "random_triangles":
        faces = rng.integers(0, len(points), faces.shape)
    elif variant == "flat":
        points = points * [1.0, 1.0, 0.02]
    elif variant == "centimetres":
        points = points * 100 / np.linalg.norm(np.ptp(points, 0)) * 1.0
    elif variant == "points_only":
        faces = faces[: len(points) // 2]
    else:
        points = points.copy()
        points[faces[: len(faces) // 2].ravel()] = 0.0  # half the triangles shrink to a point
        points[0] = [0.15, 0.15, 0.15]
    with pytest.raises(WeightsError, match=message) as info:
        check_head_template(points, faces)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_cli_refuses_a_tiny_random_model_instead_of_mapping_it(tmp_path, capsys):
    from model_runtime.cli import main

    path = write_npz(tmp_path / "flame.npz", tiny_model())
    assert main(["flame", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "only 60 vertices, too few for a head" in err and err.count("\n") == 1
