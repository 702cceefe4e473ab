"""Crafted FLAME models and sequences (issue 11, items 1 and 4): forged numpy state that would fault on reading,
gadgets from inside numpy and scipy, and files that would allocate gigabytes before their sizes were checked.
Each is answered with one sentence (exit 2 from the CLI), no signal, no code run, and little memory."""

import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from flame_samples import tiny_flame_arrays
from hostile_files import (OBJECT_FLAGS_CLEARED, ForgedArray, ForgedDtype, ForgedSparse, forged_pointer_array,
                           global_call, npz_with_header, npz_with_zeros, pickled)
from model_runtime.errors import I2FETError, InputError, WeightsError
from model_runtime.rigs import load_flame
from model_runtime.rigs.flame_sequence import load_flame_sequence

ROOT = Path(__file__).resolve().parents[1]
EXP = np.random.default_rng(5).normal(0, 1, (6, 50))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I2FET_CACHE_DIR", str(tmp_path / "cache"))


def one_sentence(text):
    return text.endswith(".") and "\n" not in text and "Traceback" not in text


def model_pickle(path, **replaced):
    model = {**tiny_flame_arrays(), "bs_style": "lbs"}
    model["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
    model.update(replaced)
    path.write_bytes(pickled(model))
    return path


def forged_sparse_model(path):
    """A model whose sparse J_regressor has an object array of forged pointers as its indices."""
    regressor = scipy.sparse.csc_matrix(tiny_flame_arrays()["J_regressor"])
    return model_pickle(path, J_regressor=ForgedSparse(regressor, indices=forged_pointer_array((regressor.nnz,))))


def cli(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), I2FET_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "model_runtime", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


# ----------------------------------------------------------------------------------------------------------------
# Forged object arrays: a memory fault before the fix


@pytest.mark.parametrize("entry", ["to_arkit", "model", "generate"])
def test_forged_pointer_arrays_are_refused_by_the_cli_without_a_signal(tmp_path, entry):
    sequence = tmp_path / "crafted.pkl"
    sequence.write_bytes(pickled({"exp": forged_pointer_array((6, 50))}))
    model = forged_sparse_model(tmp_path / "crafted_model.pkl")
    args = {"to_arkit": ["flame", model, "--to-arkit", sequence, "-o", tmp_path / "out.json"],
            "model": ["flame", model],
            "generate": ["generate", "smile", "-o", tmp_path / "a.json", "--flame-model", model, "--flame-output",
                         tmp_path / "a.npz"]}[entry]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli(args, tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])  # -11 was SIGSEGV
    message = result.stderr.strip()
    assert one_sentence(message) and result.stderr.count("\n") == 1, message
    assert "dtype object, not plain numbers" in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == [n for n in before if n != "cache"]


@pytest.mark.parametrize("where", ["chumpy", "plain", "sequence list"])
def test_forged_object_arrays_elsewhere_are_refused(tmp_path, where):
    from test_flame_file import write_2020_pickle  # the chumpy pickle writer

    path = tmp_path / "forged.pkl"
    if where == "chumpy":
        model = {**tiny_flame_arrays(), "v_template": forged_pointer_array((60, 3))}
        path = write_2020_pickle(path, model)
        load = load_flame
    elif where == "plain":
        model_pickle(path, weights=forged_pointer_array((60, 5)))
        load = load_flame
    else:
        path.write_bytes(pickled([{"exp": forged_pointer_array((1, 50))}] * 3))
        load = load_flame_sequence
    with pytest.raises(I2FETError, match="dtype object, not plain numbers") as info:
        load(path)
    assert one_sentence(str(info.value))


F8 = (3, "<", None, None, None, -1, -1, 0)


@pytest.mark.parametrize("spec, state, message", [
    ("O8", (3, "|", None, None, None, -1, -1, 63), "dtype object"),  # numpy's own state, but an object dtype
    ("O8", OBJECT_FLAGS_CLEARED, "dtype object"),
    ("V8", (3, "|", None, None, None, 8, 1, 0), "dtype \\|V8"),
    ("U4", (3, "<", None, None, None, 16, 4, 8), "dtype <U4"),
    ("M8", (3, "<", None, None, None, -1, -1, 0), "dtype datetime64"),
    ("c16", (3, "<", None, None, None, -1, -1, 0), "dtype complex128"),
    ("f8", (3, "<", None, None, None, -1, -1, 63), "a state numpy never writes"),  # flags of an object dtype
    ("f8", (3, "<", None, None, None, 16, 16, 0), "a state numpy never writes"),  # element size and alignment
    ("f8", (3, "<", None, ("a",), {"a": (np.dtype("f8"), 0)}, 8, 8, 16), "a state numpy never writes"),  # fields
    ("f8", (3, "<", (np.dtype("f8"), (1,)), None, None, -1, -1, 0), "a state numpy never writes"),  # subarray
    ("f8", (4, "<", None, None, None, -1, -1, 0, {"m": 1}), "a state numpy never writes"),  # metadata
    ("f8", (3, "x", None, None, None, -1, -1, 0), "a state numpy never writes"),
    ("f8", (3, "<", None, None, None, -1.0, -1, 0), "a state numpy never writes"),  # same value, other type
    ("f8", [3, "<", None, None, None, -1, -1, 0], "a state numpy never writes"),
])
def test_dtypes_other_than_plain_numbers_and_forged_dtype_states_are_refused(tmp_path, spec, state, message):
    itemsize = 8 if spec in ("O8", "f8", "V8", "M8") else 16
    forged = ForgedArray((1, (2, 50), ForgedDtype(spec, state), False, b"\x00" * (100 * itemsize)))
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickled({"exp": forged}))
    with pytest.raises(InputError, match=message) as info:
        load_flame_sequence(path)
    assert one_sentence(str(info.value))


@pytest.mark.parametrize("state, message", [
    ((1, (2, 50), ForgedDtype("f8", F8), False, b"\x00" * 8), "do not match its declared shape"),
    ((1, (10**6, 10**6), ForgedDtype("f8", F8), False, b""), "do not match its declared shape"),
    ((1, (-1, 50), ForgedDtype("f8", F8), False, b""), "not a tuple of sizes"),
    ((1, (2**40, 0), ForgedDtype("f8", F8), False, b""), "not a tuple of sizes"),
    ((1, [2, 50], ForgedDtype("f8", F8), False, b"\x00" * 800), "not a tuple of sizes"),
    ((1, (2, 50), "f8", False, b"\x00" * 800), "without a checked dtype"),
    ((1, (2, 50), ForgedDtype("f8", F8), 1, b"\x00" * 800), "do not match its declared shape"),
    ((2, (2, 50), ForgedDtype("f8", F8), False, b"\x00" * 800), "a state numpy never writes"),
    (((2, 50), ForgedDtype("f8", F8), False, b"\x00" * 800), "a state numpy never writes"),
    ((1, (2, 50), ForgedDtype("f8", F8), False, [0.0] * 100), "data that are not bytes"),
])
def test_array_states_numpy_never_writes_are_refused(tmp_path, state, message):
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickled({"exp": ForgedArray(state)}))
    with pytest.raises(InputError, match=message) as info:
        load_flame_sequence(path)
    assert one_sentence(str(info.value))


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_big_endian_and_small_plain_dtypes_still_load(tmp_path, protocol):
    model = tiny_flame_arrays()
    model["v_template"] = model["v_template"].astype(">f8")
    model["shapedirs"] = model["shapedirs"].astype(">f4")
    model["f"] = model["f"].astype(">u2")
    model["kintree_table"] = model["kintree_table"].astype(">i8")
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps(model, protocol=protocol))
    loaded = load_flame(path)
    np.testing.assert_array_equal(loaded.v_template, model["v_template"].astype(np.float64))
    np.testing.assert_array_equal(loaded.exprdirs, model["shapedirs"][:, :, 300:].astype(np.float64))
    np.testing.assert_array_equal(loaded.f, model["f"].astype(np.int64))
    seq = tmp_path / "seq.pkl"
    seq.write_bytes(pickle.dumps({"exp": EXP.astype(">f4"), "fps": np.float64(25.0)}, protocol=protocol))
    read = load_flame_sequence(seq)
    np.testing.assert_array_equal(read.expression, EXP.astype(np.float32))
    assert read.fps == 25.0


# ----------------------------------------------------------------------------------------------------------------
# Gadgets from inside the packages the unpickler knows


def evil_npy(tmp_path, marker):
    """A .npy whose object array unpickles to os.system: harmless unless numpy.load(..., allow_pickle=True) runs."""
    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.npy"
    array = np.empty(1, dtype=object)
    array[0] = Evil()
    np.save(path, array, allow_pickle=True)
    return path


@pytest.mark.parametrize("module, name, args", [
    ("numpy.testing", "runstring", ("open({marker!r}, 'w').close()", {})),
    ("numpy.testing._private.utils", "runstring", ("open({marker!r}, 'w').close()", {})),
    ("numpy", "load", ("{npy}", "r", True)),
    ("numpy.lib.npyio", "load", ("{npy}", "r", True)),
    ("numpy.lib.format", "read_array", ("{npy}",)),
    ("numpy", "fromfile", ("/etc/passwd", "u1")),
    ("numpy", "memmap", ("{marker}", "w+", 0, (1000,))),
    ("numpy", "save", ("{marker}", 1)),
    ("numpy.lib.utils", "safe_eval", ("1",)),
    ("numpy.core.multiarray", "fromstring", ("1 2", "f8", -1, " ")),
    ("numpy.core._multiarray_umath", "_reconstruct", ("{marker}", (0,), "b")),
    ("numpy.distutils.exec_command", "exec_command", ("touch {marker}",)),
    ("numpy.f2py", "compile", ("x", "mod")),
    ("scipy.io", "loadmat", ("{npy}",)),
    ("scipy.sparse", "load_npz", ("{npy}",)),
    ("scipy.sparse", "coo_matrix", ((10**6, 10**6),)),
    ("scipy._lib._ccallback", "LowLevelCallable", ("x",)),
])
@pytest.mark.parametrize("loader", ["model", "sequence"])
def test_gadgets_inside_numpy_and_scipy_are_refused(tmp_path, module, name, args, loader):
    marker = tmp_path / "pwned"
    npy = evil_npy(tmp_path, marker)
    args = [a.format(marker=str(marker), npy=str(npy)) if isinstance(a, str) else a for a in args]
    path = tmp_path / "crafted.pkl"
    path.write_bytes(global_call(module, name, *args))
    load = load_flame if loader == "model" else load_flame_sequence
    with pytest.raises(I2FETError, match=f"refused: the file tries to load {module}.{name}, which a FLAME") as info:
        load(path)
    assert one_sentence(str(info.value))
    assert not marker.exists()
    np.load(npy, allow_pickle=True)  # the payload is live: the refusal, not a dud, kept the marker away
    assert marker.exists()


@pytest.mark.parametrize("payload, message", [
    (b"cnumpy\ndtype\n(dVx\nI1\nsb.", "gives a function a state"),
    (b"c_codecs\nencode\n(N}V__defaults__\n(Vutf8\ntstb.", "gives a function a state"),
    (b"cnumpy.core.multiarray\n_reconstruct\n(dVx\nI1\nsb.", "gives a function a state"),
    (b"cnumpy\nndarray\n(dVx\nI1\nsb.", "gives numpy.ndarray a state"),
    (b"cnumpy\nndarray\n((I100000\nI10000\nttR.", "calls numpy.ndarray directly"),
    (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I10\ntVb\ntR.", "rebuilds an array in a way"),
    (b"cnumpy\ndtype\n(VO\nI00\nI01\ntR.", "dtype object"),
    (b"cnumpy\ndtype\n((lI00\nI01\ntR.", "builds a dtype in a way"),
    (b"cnumpy.core.multiarray\nscalar\n(cnumpy\ndtype\n(Vf8\nI00\nI01\ntRVabc\ntR.", "bytes do not match"),
    (b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "encodes text"),
    (b"ccopy_reg\n_reconstructor\n(c__builtin__\nset\nc__builtin__\nobject\nNtR.", "rebuilds an object"),
    (b"\x80\x02cnumpy\nndarray\n)\x81.", "neither a readable pickle"),
])
def test_allowed_names_cannot_be_misused(tmp_path, payload, message):
    path = tmp_path / "crafted.pkl"
    path.write_bytes(payload)
    with pytest.raises(WeightsError, match=message) as info:
        load_flame(path)
    assert one_sentence(str(info.value))


def test_reconstruct_given_a_numpy_array_for_its_shape_is_refused(tmp_path):
    # numpy passes the tuple (0,); a one-element array of 0, itself rebuilt by numpy's pickle code, compares falsy with
    # != (0,), so only the type check tells the two apart
    state = EXP.__reduce__()[2]
    path = tmp_path / "seq.pkl"
    path.write_bytes(pickled({"exp": ForgedArray(state, (np.ndarray, np.zeros(1, np.int64), b"b"))}))
    with pytest.raises(InputError, match="rebuilds an array in a way numpy's pickles never do") as info:
        load_flame_sequence(path)
    assert one_sentence(str(info.value))
    path.write_bytes(pickled({"exp": ForgedArray(state)}))  # the same state through numpy's own arguments loads
    np.testing.assert_allclose(load_flame_sequence(path).expression, EXP, rtol=1e-6)


@pytest.mark.parametrize("first", [-1, 1])
def test_sparse_regressor_whose_indptr_does_not_start_at_zero(tmp_path, first):
    regressor = scipy.sparse.csc_matrix(tiny_flame_arrays()["J_regressor"])
    indptr = regressor.indptr.copy()
    indptr[0] = first
    indptr = np.maximum.accumulate(indptr)  # still non-decreasing and ending at nnz: only the start is wrong
    assert indptr[0] == first and indptr[-1] == regressor.nnz
    path = model_pickle(tmp_path / "flame.pkl", J_regressor=ForgedSparse(regressor, indptr=indptr))
    with pytest.raises(WeightsError) as info:
        load_flame(path)
    assert "inconsistent indices or shape" in str(info.value) and one_sentence(str(info.value))


def test_npz_sequence_headers_numpy_never_writes(tmp_path):
    # (-2, -25): 50 values by product, so 400 bytes would be read, then reshape raises numpy's own ValueError
    path = npz_with_header(tmp_path / "neg.npz", "exp", "<f8", (-2, -25), bytes(400))
    with pytest.raises(InputError) as info:
        load_flame_sequence(path)
    assert str(info.value) == f"The FLAME sequence {path} was refused: its 'exp' declares the shape (-2, -25)."
    # a text member whose characters overlay integer fields is not text
    union = ("<U3", [("a", "<i4"), ("b", "<i4"), ("c", "<i4")])
    path = npz_with_header(tmp_path / "text.npz", "text", union, (6,), bytes(72), {"exp": EXP})
    with pytest.raises(InputError, match="holds pickled objects or other non-numbers") as info:
        load_flame_sequence(path)
    assert one_sentence(str(info.value))


# ----------------------------------------------------------------------------------------------------------------
# Sizes checked before memory is spent

# One process per file, so each peak is its own; the rigs package is entered without its __init__ (which imports
# torch), so the baseline is small.
MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys, types
    from pathlib import Path
    import model_runtime
    rigs = types.ModuleType("model_runtime.rigs")
    rigs.__path__ = [str(Path(model_runtime.__file__).parent / "rigs")]
    sys.modules["model_runtime.rigs"] = rigs
    from model_runtime.errors import I2FETError
    from model_runtime.rigs.flame_file import load_flame
    from model_runtime.rigs.flame_sequence import load_flame_sequence

    kind, path = sys.argv[1:]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        (load_flame if kind == "model" else load_flame_sequence)(Path(path))
        message = "loaded"
    except I2FETError as exc:
        message = str(exc)
    print(json.dumps([message, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024]))
""")


def test_declared_sizes_are_checked_before_memory_is_spent(tmp_path):
    model = tiny_flame_arrays()
    big = 8_000  # (60, 3, 8000) would be fine in memory; the caps are what refuse it, before any data are read
    cases = {
        # FLAME npz of 1 MB whose shapedirs inflates to 960 MB
        "npz_bomb": ("model", npz_with_zeros(tmp_path / "bomb.npz", {k: v for k, v in model.items()
                                                                   if k != "shapedirs"},
                                             {"shapedirs": (5000, 3, big)})),
        # a sequence npz with an unused 'junk' member that inflates to 960 MB
        "junk_key": ("sequence", npz_with_zeros(tmp_path / "junk.npz", {"exp": EXP},
                                                {"junk": (120_000_000,)})),
        # a sequence whose expression alone declares 960 MB
        "big_exp": ("sequence", npz_with_zeros(tmp_path / "big_exp.npz", {}, {"exp": (2_400_000, 50)})),
        # a 60-byte pickle whose 'exp' asks numpy.ndarray for 3.2 GB
        "ndarray_call": ("sequence", tmp_path / "ndarray.pkl"),
        # a pickle list repeating one list: a few KB that would become 800 MB of float64
        "repeated_lists": ("sequence", tmp_path / "repeat.pkl"),
        # a sparse J_regressor declaring a (5, 10^8) dense matrix with no entries
        "sparse_shape": ("model", model_pickle(tmp_path / "sparse.pkl", J_regressor=ForgedSparse(
            scipy.sparse.csc_matrix((5, 60)), _shape=(5, 10**8)))),
    }
    (tmp_path / "ndarray.pkl").write_bytes(global_call("numpy", "ndarray", (40_000, 10_000), key="exp"))
    row = [0.5] * 1000
    block = [row] * 1000
    (tmp_path / "repeat.pkl").write_bytes(pickled({"exp": [block] * 100}))
    env = dict(os.environ, PYTHONPATH=str(ROOT), I2FET_CACHE_DIR=str(tmp_path / "cache"))
    report = {}
    for name, (kind, path) in cases.items():
        result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, kind, str(path)], capture_output=True,
                                text=True, env=env, timeout=300)
        assert result.returncode == 0, (name, result.stderr[-3000:])
        report[name] = json.loads(result.stdout)
    expected = {"npz_bomb": "shapedirs of shape (5000, 3, 8000)", "junk_key": "loaded",
                "big_exp": "more than the 20,000,000 values", "ndarray_call": "calls numpy.ndarray directly",
                "repeated_lists": "a list of more than 20,000,000 numbers",
                "sparse_shape": "J_regressor of shape (5, 100000000)"}
    for name, (message, peak_mb) in report.items():
        assert expected[name] in message, (name, message)
        assert message == "loaded" or one_sentence(message), (name, message)
        assert peak_mb < 100, (name, peak_mb)


def test_headers_declaring_a_trillion_values_are_refused(tmp_path):
    def header(member, descr, shape):
        np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False, "shape": shape})

    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as dst:
        for key, value in tiny_flame_arrays().items():
            with dst.open(f"{key}.npy", "w") as member:
                if key == "v_template":
                    header(member, "<f8", (10**12, 3))
                else:
                    np.lib.format.write_array(member, value)
    with pytest.raises(WeightsError, match=r"v_template of shape \(1000000000000, 3\)") as info:
        load_flame(path)
    assert one_sentence(str(info.value))
    seq = tmp_path / "seq.npz"
    with zipfile.ZipFile(seq, "w") as dst, dst.open("exp.npy", "w") as member:
        header(member, "<f4", (10**12,))
    with pytest.raises(InputError, match="more than the 20,000,000 values") as info:
        load_flame_sequence(seq)
    assert one_sentence(str(info.value))


def test_truncated_and_non_numeric_npz_members(tmp_path):
    seq = tmp_path / "seq.npz"
    with zipfile.ZipFile(seq, "w") as dst, dst.open("exp.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (5, 50)})
        member.write(b"\x00" * 80)
    with pytest.raises(InputError, match="'exp' is truncated"):
        load_flame_sequence(seq)
    np.savez(seq, exp=np.array(["a", "b"]))
    with pytest.raises(InputError, match="holds <U1 values, not plain numbers") as info:
        load_flame_sequence(seq)
    assert one_sentence(str(info.value))
