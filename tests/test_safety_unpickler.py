"""The restricted unpickler (model_runtime/rigs/untrusted_arrays.py) on both sides of each check: numpy's own
pickles of every plain dtype come back equal, and each forged state, argument or name is refused. Run first by
scripts/mutation_test.py against every mutant of the module; expected values come from numpy and the documented
limits, not from the code under test."""

import pickle

import numpy as np
import pytest
import scipy.sparse

from hostile_files import ForgedSparse, global_call, npz_with_header
from model_runtime.rigs import untrusted_arrays as ua
from model_runtime.rigs.untrusted_arrays import UntrustedFileError, UnreadableFile, restricted_unpickle


def unpickle(tmp_path, data: bytes):
    path = tmp_path / "file.pkl"
    path.write_bytes(data)
    return restricted_unpickle(path, "a FLAME model")


def refused(tmp_path, data: bytes, message: str):
    with pytest.raises(UntrustedFileError, match=message):
        unpickle(tmp_path, data)



@pytest.mark.parametrize("protocol", [0, 1, 2, 5])
def test_numpy_pickles_of_every_plain_dtype_round_trip(tmp_path, protocol):
    for dtype in ("?", "i1", "<i2", ">i4", "<i8", "u1", ">u2", "<u4", "u8", "<f2", ">f4", "<f8", ">f8"):
        round_trip(tmp_path, protocol, (np.arange(12) % 5).astype(dtype).reshape(3, 4))


def round_trip(tmp_path, protocol, array):
    for value in (array, np.asfortranarray(array), array[:0], np.asarray(array[1, 2])):
        data, chumpy = unpickle(tmp_path, pickle.dumps({"a": value, "n": value.dtype.type(3)}, protocol=protocol))
        assert data["a"].dtype.newbyteorder("=") == value.dtype.newbyteorder("=") and data["a"].shape == value.shape
        np.testing.assert_array_equal(data["a"], value)
        assert data["n"] == value.dtype.type(3).item() and chumpy is False


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_sparse_and_chumpy_stand_ins(tmp_path, protocol):
    dense = np.array([[0, 1.5, 0], [2, 0, 0], [0, 0, 3], [0, 4, 0]])
    for matrix in (scipy.sparse.csc_matrix(dense), scipy.sparse.csr_matrix(dense)):
        data, _ = unpickle(tmp_path, pickle.dumps({"m": ForgedSparse(matrix)}, protocol=protocol))
        assert ua.declared_shape(data["m"]) == (4, 3)
        np.testing.assert_array_equal(ua.to_plain_array(data["m"]), dense)
    stand_in = ua.ChumpyArray()
    stand_in.__setstate__({"x": np.ones((2, 3))})
    assert ua.declared_shape(stand_in) == (2, 3)
    np.testing.assert_array_equal(ua.to_plain_array(stand_in), np.ones((2, 3)))
    stand_in.__setstate__({"y": 1})
    with pytest.raises(UntrustedFileError, match="no numpy array under 'x'"):
        stand_in.to_array()
    stand_in.__setstate__([1])
    with pytest.raises(UntrustedFileError, match="no numpy array under 'x'"):
        stand_in.to_array()


def test_a_chumpy_global_is_reported(tmp_path):
    payload = b"\x80\x02cchumpy.ch\nCh\n)\x81}X\x01\x00\x00\x00x" + pickle.dumps(np.ones(2), 2)[2:-1] + b"sb."
    data, chumpy = unpickle(tmp_path, payload)
    assert chumpy is True and isinstance(data, ua.ChumpyArray)
    np.testing.assert_array_equal(data.to_array(), np.ones(2))
    data, chumpy = unpickle(tmp_path, pickle.dumps(np.ones(2), 2))
    assert chumpy is False



@pytest.mark.parametrize("module, name", [
    ("numpy.testing", "runstring"), ("numpy", "load"), ("numpy", "array"), ("numpy", "frombuffer"),
    ("numpy.core.multiarray", "fromstring"), ("numpy.core.numeric", "array"), ("numpy.lib.format", "read_array"),
    ("numpy", "memmap"), ("scipy.sparse", "coo_matrix"), ("chumpy", "Ch2"), ("builtins", "eval"),
    ("copyreg", "__newobj__"), ("_codecs", "decode"), ("builtins", "getattr"),
])
def test_names_outside_the_allow_list_are_refused(tmp_path, module, name):
    marker = tmp_path / "ran"
    payload = global_call(module, name, f"open({str(marker)!r}, 'w').close()", {})
    refused(tmp_path, payload, f"tries to load {module}.{name}, which a FLAME model never contains")
    assert not marker.exists()


def test_runstring_from_numpy_testing_is_a_live_gadget_that_is_refused(tmp_path):
    import numpy.testing

    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()"
    refused(tmp_path, global_call("numpy.testing", "runstring", code, {}), "numpy.testing.runstring")
    assert not marker.exists()
    numpy.testing.runstring(code, {})  # the payload works: only the allow-list kept it from running
    assert marker.exists()


def test_python2_module_names_are_mapped_and_external_objects_refused(tmp_path):
    data, _ = unpickle(tmp_path, b"c__builtin__\nset\n((lI1\naI2\natR.")
    assert data == {1, 2}
    refused(tmp_path, b"P1\n.", "refers to external objects, which a FLAME model never contains")


def test_files_that_are_not_pickles_or_are_too_large(tmp_path, monkeypatch):
    with pytest.raises(UnreadableFile):
        unpickle(tmp_path, b"not a pickle")
    with pytest.raises(UntrustedFileError) as info:
        restricted_unpickle(tmp_path / "missing.pkl", "a FLAME model")
    assert str(info.value) == "it cannot be read (No such file or directory)"  # the OS's words, not its errno dump
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(UntrustedFileError) as info:
        restricted_unpickle(tmp_path / "plain" / "x.pkl", "a FLAME model")
    assert str(info.value) == "it cannot be read (Not a directory)"
    payload = pickle.dumps(np.zeros(3), 2)
    monkeypatch.setattr(ua, "MAX_PICKLE_BYTES", len(payload))
    assert unpickle(tmp_path, payload)[0].shape == (3,)  # exactly at the limit
    monkeypatch.setattr(ua, "MAX_PICKLE_BYTES", len(payload) - 1)
    refused(tmp_path, payload, "far larger than a FLAME model")



def test_codecs_encode_only_for_latin1(tmp_path):
    for encoding in ("latin1", "latin-1", "LATIN_1", "l1", "iso-8859-1", "ISO8859_1"):
        assert ua._latin1_bytes("a\xe9", encoding) == b"a\xe9"
    assert ua._latin1_bytes("a\xe9") == b"a\xe9"
    for text, encoding in (("x", "utf8"), ("x", "rot13"), ("x", "utf-16"), ("x", "hex"), (b"x", "latin1"),
                           ("x", 1)):
        with pytest.raises(UntrustedFileError, match="encodes text in a way"):
            ua._latin1_bytes(text, encoding)
    refused(tmp_path, b"c_codecs\nencode\n(Vx\nVutf-16\ntR.", "encodes text in a way")
    assert unpickle(tmp_path, b"c_codecs\nencode\n(Vx\nVlatin1\ntR.")[0] == b"x"


def test_bytes_only_empty():
    assert ua._empty_bytes() == b""
    with pytest.raises(UntrustedFileError, match="builds bytes"):
        ua._empty_bytes(10**9)


def test_gates_and_the_ndarray_name_refuse_states_and_calls():
    gate = ua._Gate(lambda *a, **k: (a, k))
    assert gate(1, b=2) == ((1,), {"b": 2})
    with pytest.raises(UntrustedFileError, match="gives a function a state"):
        gate.__setstate__({})
    with pytest.raises(UntrustedFileError, match="calls numpy.ndarray directly"):
        ua._NDARRAY((10,))
    with pytest.raises(UntrustedFileError, match="gives numpy.ndarray a state"):
        ua._NDARRAY.__setstate__({})


def test_plain_dtype():
    for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", ">f8", "<i4", ">u2"):
        assert ua.plain_dtype(np.dtype(code)), code
    union = np.dtype(("f8", [("a", "<f8")]))  # a float64 with a field over its bytes
    assert union == np.dtype("f8")  # numpy's == cannot tell it from a plain float64: the fields must be checked
    for dtype in (np.dtype("O"), np.dtype("U4"), np.dtype("c16"), np.dtype("f16"), np.dtype([("a", "f8")]),
                  np.dtype(("f8", (2,))), np.dtype(("f8", (1,))), np.dtype("V8"), np.dtype("M8[s]"), union, "f8",
                  None):
        assert not ua.plain_dtype(dtype), dtype


def test_counts_of_declared_shapes():
    assert ua._count((2, 3)) == 6 and ua._count(()) == 1 and ua._count((0, 5)) == 0
    assert ua._count((ua.MAX_DIMENSION - 1,)) == ua.MAX_DIMENSION - 1
    for shape in ([2, 3], (2.0,), (-1,), (True,), (ua.MAX_DIMENSION,), (3, "4"), None):
        with pytest.raises(UntrustedFileError, match="not a tuple of sizes"):
            ua._count(shape)


def test_array_bytes():
    assert ua._as_bytes("a\xff") == b"a\xff" and ua._as_bytes(bytearray(b"xy")) == b"xy" and ua._as_bytes(b"z") == b"z"
    assert type(ua._as_bytes(bytearray(b"xy"))) is bytes
    with pytest.raises(UntrustedFileError, match="not bytes"):
        ua._as_bytes(3)


def test_pickled_dtype_arguments():
    assert ua._pickled_dtype("f8", False, True).dtype == np.dtype("f8")
    assert ua._pickled_dtype(b"i4", 0, 1).dtype == np.dtype("i4")
    assert ua._pickled_dtype("f8").dtype == np.dtype("f8")
    assert ua._pickled_dtype("u8", False, False).dtype == np.dtype("u8")
    for args, message in ((("f8", True, True), "in a way"), (("f8", 1, True), "in a way"),
                          (("f8", False, 1.0), "in a way"), (("f8", 0.0, True), "in a way"),
                          (("<f8", False, True), "in a way"), (("f16xx", False, True), "in a way"),
                          ((8, False, True), "in a way"), (("zz", False, True), "unknown dtype"),
                          (("O8", False, True), "not plain numbers"), (("U4", False, True), "not plain numbers"),
                          (("c16", False, True), "not plain numbers")):
        with pytest.raises(UntrustedFileError, match=message):
            ua._pickled_dtype(*args)
    assert ua._pickled_dtype("f2", False, True).dtype == np.dtype("f2")  # a four-character limit, not fewer
    assert ua._pickled_dtype("bool", False, True).dtype == np.dtype("?")


def test_pickled_dtype_states():
    for order in "<>":
        wanted = np.dtype("f4").newbyteorder(order)
        made = ua._pickled_dtype("f4")
        made.__setstate__(wanted.__reduce__()[2])
        assert made.dtype == wanted and made.dtype.byteorder == wanted.byteorder
        with pytest.raises(UntrustedFileError, match="state twice"):
            made.__setstate__(wanted.__reduce__()[2])
    made = ua._pickled_dtype("u1")
    made.__setstate__(np.dtype("u1").__reduce__()[2])
    assert made.dtype == np.dtype("u1")
    state = np.dtype("<f8").__reduce__()[2]
    for forged in (list(state), state[:-1], state + (0,), (state[0], "?") + state[2:],
                   tuple(float(v) if type(v) is int else v for v in state), (3, "<", None, None, None, -1, -1, 63)):
        with pytest.raises(UntrustedFileError, match="state numpy never writes"):
            ua._pickled_dtype("f8").__setstate__(forged)
    with pytest.raises(UntrustedFileError, match="without a checked dtype"):
        ua._real_dtype(np.dtype("f8"))


def _array_state(shape=(2, 3), dtype="<f8", data=None, fortran=False, version=1):
    made = ua._pickled_dtype(np.dtype(dtype).str[1:] if np.dtype(dtype).str[1:] != "b1" else "?")
    made.__setstate__(np.dtype(dtype).__reduce__()[2])
    count = int(np.prod(shape))
    return (version, shape, made, fortran, bytes(count * np.dtype(dtype).itemsize) if data is None else data)


def test_array_states():
    array = ua._reconstruct(ua._NDARRAY, (0,), b"b")
    array.__setstate__(_array_state())
    assert array.shape == (2, 3) and array.dtype == np.dtype("<f8") and not array.any()
    with pytest.raises(UntrustedFileError, match="state twice"):
        array.__setstate__(_array_state())
    fortran = ua._reconstruct(ua._NDARRAY, (0,), "b")
    fortran.__setstate__(_array_state(fortran=True, data=np.arange(6.0).tobytes()))
    np.testing.assert_array_equal(fortran, np.arange(6.0).reshape(2, 3, order="F"))
    for state, message in ((_array_state()[:4], "never writes"), (list(_array_state()), "never writes"),
                           (_array_state(version=2), "never writes"), ((1.0,) + _array_state()[1:], "never writes"),
                           (_array_state(data=bytes(47)), "do not match"), (_array_state(data=bytes(49)), "do not match"),
                           (_array_state()[:3] + (0,) + _array_state()[4:], "do not match"),
                           (_array_state()[:2] + (np.dtype("f8"),) + _array_state()[3:], "checked dtype"),
                           (_array_state()[:1] + ([2, 3],) + _array_state()[2:], "tuple of sizes"),
                           (_array_state()[:4] + (7,), "not bytes")):
        with pytest.raises(UntrustedFileError, match=message):
            ua._reconstruct(ua._NDARRAY, (0,), b"b").__setstate__(state)


def test_reconstruct_arguments():
    for args in ((np.ndarray, (0,), b"b"), (ua._NDARRAY, (1,), b"b"), (ua._NDARRAY, [0], b"b"),
                 (ua._NDARRAY, (0,), b"B"), (ua._NDARRAY, (0,), "c"),
                 # a one-element array compares falsy with != (0,): only the type tells it from numpy's tuple
                 (ua._NDARRAY, np.zeros(1, np.int64), b"b"), (ua._NDARRAY, np.zeros((1, 1), np.int8), b"b")):
        with pytest.raises(UntrustedFileError, match="rebuilds an array"):
            ua._reconstruct(*args)


def test_frombuffer_and_scalar():
    f8 = _array_state()[2]
    array = ua._frombuffer(np.arange(6.0).tobytes(), f8, (2, 3), "C")
    np.testing.assert_array_equal(array, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(ua._frombuffer(bytearray(np.arange(6.0).tobytes()), f8, (2, 3), "F"),
                                  np.arange(6.0).reshape(2, 3, order="F"))
    with pytest.raises(UntrustedFileError, match="state twice"):
        array.__setstate__(_array_state())
    for args, message in (((np.arange(6.0).tobytes(), f8, (2, 3), "K"), "other than its bytes"),
                          ((memoryview(np.arange(6.0).tobytes()), f8, (2, 3), "C"), "other than its bytes"),
                          ((bytes(47), f8, (2, 3), "C"), "do not match"), ((bytes(56), f8, (2, 3), "C"), "do not match"),
                          ((bytes(48), np.dtype("f8"), (2, 3), "C"), "checked dtype"),
                          ((bytes(48), f8, [2, 3], "C"), "tuple of sizes")):
        with pytest.raises(UntrustedFileError, match=message):
            ua._frombuffer(*args)
    assert ua._scalar(f8, np.float64(2.5).tobytes()) == 2.5
    assert ua._scalar(f8, np.float64(2.5).tobytes().decode("latin1")) == 2.5
    for data in (bytes(7), bytes(9)):
        with pytest.raises(UntrustedFileError, match="do not match its dtype"):
            ua._scalar(f8, data)


def test_stand_in_reconstructor():
    assert isinstance(ua._stand_in_reconstructor(ua.SparseMatrix, object, None), ua.SparseMatrix)
    for args in ((set, object, None), (ua.SparseMatrix, int, None), (ua.SparseMatrix, object, 0),
                 (ua.ChumpyArray, object, {})):
        with pytest.raises(UntrustedFileError, match="rebuilds an object"):
            ua._stand_in_reconstructor(*args)


def _sparse(state, compressed_columns=True):
    matrix = ua.SparseMatrix() if compressed_columns else ua._CsrMatrix()
    matrix.__setstate__(state)
    return matrix


def _csc_state(**replaced):
    m = scipy.sparse.csc_matrix(np.array([[0, 1.5, 0], [2, 0, 0], [0, 0, 3], [0, 4, 0]]))
    state = {"_shape": (4, 3), "data": m.data, "indices": m.indices, "indptr": m.indptr}
    state.update(replaced)
    return {k: v for k, v in state.items() if v is not None}


def test_sparse_stand_in_checks():
    assert _sparse(_csc_state()).declared_shape == (4, 3)
    assert _sparse({**_csc_state(_shape=None), "shape": (4, 3)}).declared_shape == (4, 3)
    np.testing.assert_array_equal(_sparse(_csc_state()).to_array()[:, 1], [1.5, 0, 0, 4])
    empty = _sparse({"_shape": (2, 2), "data": np.zeros(0), "indices": np.zeros(0, np.int32),
                     "indptr": np.zeros(3, np.int32)})
    np.testing.assert_array_equal(empty.to_array(), np.zeros((2, 2)))
    csr = scipy.sparse.csr_matrix(np.array([[0, 1.0], [2, 0], [0, 3]]))
    np.testing.assert_array_equal(_sparse({"_shape": (3, 2), "data": csr.data, "indices": csr.indices,
                                           "indptr": csr.indptr}, compressed_columns=False).to_array(),
                                  [[0, 1], [2, 0], [0, 3]])
    for state in ([], {"_shape": [4, 3]}, {"_shape": (4, 3, 1)}, {"_shape": (-1, 3)}, {}):
        with pytest.raises(UntrustedFileError):
            _sparse(state).declared_shape
    good = _csc_state()
    bad_states = [
        (_csc_state(data=list(good["data"])), "data that are not"),
        (_csc_state(indices=good["indices"][None]), "indices that are not"),
        (_csc_state(indptr=None), "indptr that are not"),
        (_csc_state(indices=good["indices"].astype(float)), "not integers"),
        (_csc_state(indptr=good["indptr"].astype(float)), "not integers"),
        (_csc_state(data=good["data"][:-1]), "inconsistent data and indices"),
        (_csc_state(indptr=good["indptr"][:-1]), "inconsistent indices or shape"),
        (_csc_state(indptr=np.concatenate([good["indptr"], [4]])), "inconsistent indices or shape"),
        (_csc_state(indptr=good["indptr"] + 1), "inconsistent indices or shape"),
        (_csc_state(indptr=np.array([0, 3, 1, 4])), "inconsistent indices or shape"),
        (_csc_state(indptr=np.array([0, 1, 2, 3])), "inconsistent indices or shape"),
        (_csc_state(indptr=np.array([-1, 1, 2, 4])), "inconsistent indices or shape"),  # numpy would fail to broadcast
        (_csc_state(indices=np.array([0, -1, 2, 3])), "inconsistent indices or shape"),
        (_csc_state(indices=np.array([1, 0, 2, 4])), "inconsistent indices or shape"),
    ]
    for state, message in bad_states:
        with pytest.raises(UntrustedFileError, match=message):
            _sparse(state).to_array()
    # indptr from 1: one stored entry, no column owning it; without the check it silently becomes a zero matrix
    one = {"_shape": (2, 2), "data": np.array([5.0]), "indices": np.array([0]), "indptr": np.array([1, 1, 1])}
    with pytest.raises(UntrustedFileError, match="inconsistent indices or shape"):
        _sparse(one).to_array()
    np.testing.assert_array_equal(_sparse({**one, "indptr": np.array([0, 1, 1])}).to_array(), [[5, 0], [0, 0]])
    edge = _csc_state(indices=np.array([1, 0, 3, 3]))  # the last row is a row
    assert _sparse(edge).to_array()[3, 2] == 3


def test_declared_shape_and_plain_array():
    assert ua.declared_shape(np.zeros((2, 5))) == (2, 5)
    for value in ([1, 2], 3, None):
        with pytest.raises(UntrustedFileError, match="where an array belongs"):
            ua.declared_shape(value)
        with pytest.raises(UntrustedFileError, match="where an array belongs"):
            ua.to_plain_array(value)
    with pytest.raises(UntrustedFileError, match="not plain numbers"):
        ua.to_plain_array(np.array(["a"]))
    np.testing.assert_array_equal(ua.to_plain_array(np.arange(3)), [0, 1, 2])


def test_nested_size():
    assert ua.nested_size([1, 2, [3, 4]], 4) == 4
    assert ua.nested_size(np.zeros((2, 3)), 10) == 6 and ua.nested_size(7, 1) == 1
    shared = [1, 2, 3]
    assert ua.nested_size([shared, shared, (shared,)], 9) == 9
    with pytest.raises(UntrustedFileError, match="more than 8 numbers"):
        ua.nested_size([shared, shared, shared], 8)
    loop = [1]
    loop.append(loop)
    with pytest.raises(UntrustedFileError, match="contains itself"):
        ua.nested_size(loop, 100)
    deep = [1]
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(UntrustedFileError, match="nested too deeply"):
        ua.nested_size(deep, 10)


def test_npz_headers_and_reads(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, a=np.arange(6.0).reshape(2, 3), t=np.array(["ab", "c"]), o=np.array([1, None], dtype=object),
             f=np.asfortranarray(np.arange(6).reshape(2, 3)), e=np.zeros((0, 3)))
    with ua.NpzArrays(path) as npz:
        assert sorted(npz.names) == ["a", "e", "f", "o", "t"]
        assert npz.header("a") == ((2, 3), np.dtype("<f8"))
        np.testing.assert_array_equal(npz.read("a"), np.arange(6.0).reshape(2, 3))
        np.testing.assert_array_equal(npz.read("f"), np.arange(6).reshape(2, 3))
        assert npz.read("e").shape == (0, 3)
        np.testing.assert_array_equal(npz.read("t", text=True), ["ab", "c"])
        with pytest.raises(UntrustedFileError, match="not plain numbers"):
            npz.header("t")
        with pytest.raises(UntrustedFileError, match="not plain numbers"):
            npz.header("o", text=True)
        with pytest.raises(UntrustedFileError, match="cannot be read"):
            npz.header("missing")
    with pytest.raises(UnreadableFile):
        ua.NpzArrays(tmp_path / "a.pkl")


@pytest.mark.parametrize("shape, data", [
    ((-1, 3), bytes(24)),
    ((-2, -3), bytes(48)),  # the product is positive: read() would take 48 bytes, then reshape would raise
    ((True, 3), bytes(24)),  # numpy's header parser admits bools as ints; numpy never writes them
    ((2, 3.0), bytes(48)),
])
def test_npz_headers_declaring_shapes_numpy_never_writes(tmp_path, shape, data):
    path = npz_with_header(tmp_path / "h.npz", "m", "<f8", shape, data)
    with ua.NpzArrays(path) as npz:
        with pytest.raises(UntrustedFileError, match="'m' (declares the shape|cannot be read)"):
            npz.header("m")
        with pytest.raises(UntrustedFileError, match="'m' (declares the shape|cannot be read)"):
            npz.read("m")


@pytest.mark.parametrize("descr, size", [
    (("<U3", [("a", "<i4"), ("b", "<i4"), ("c", "<i4")]), 12),  # kind 'U' with integer fields over the characters
    (("<f8", [("a", "<f8")]), 8),  # kind 'f' with a field; == float64 in numpy
    (("<f8", (2,)), 16),  # a subarray
    ([("a", "<f8")], 8),
])
def test_npz_headers_with_fields_or_subarrays_are_refused_even_as_text(tmp_path, descr, size):
    path = npz_with_header(tmp_path / "h.npz", "m", descr, (2,), bytes(2 * size), {"t": np.array(["ab", "c"])})
    with ua.NpzArrays(path) as npz:
        np.testing.assert_array_equal(npz.read("t", text=True), ["ab", "c"])  # real text still reads
        for text in (False, True):
            with pytest.raises(UntrustedFileError, match="'m' holds .* values, not plain numbers"):
                npz.header("m", text=text)
