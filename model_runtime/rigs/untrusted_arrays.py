"""Read numeric arrays from files a user hands over (FLAME models, FLAME parameter sequences) without running code
they carry and without allocating more memory than their checked, declared shapes.

Pickles (`restricted_unpickle`): `find_class` admits only numpy's own array reconstruction, scipy.sparse csc/csr
matrices and chumpy `Ch` through local stand-ins (neither scipy nor chumpy is imported), copyreg._reconstructor for
those stand-ins, _codecs.encode for latin-1 text and bytes() (how protocols 0-2 carry bytes) and set/frozenset
(chumpy's state holds sets). The numpy pieces are gated too:
  * a dtype must be a plain number type (bool, fixed-size ints and floats, either byte order) and its pickled state
    must equal the state numpy itself writes for that type: a forged state could clear an object dtype's flags and
    let raw bytes become an object array of forged pointers (a memory fault when it is read);
  * `numpy.ndarray` cannot be called (a 1.7 KB pickle could otherwise allocate gigabytes); arrays are rebuilt only
    from their pickled state, whose bytes must match the declared shape, so an array never outgrows the file;
  * everything the file can call refuses to be given a state of its own.

npz (`NpzArrays`): a member's header (shape, dtype) is read before its data, so callers refuse oversized or unexpected
arrays before anything is decompressed, and only the members asked for are read.

Problems raise `UntrustedFileError` with a clause saying what is wrong; callers wrap it in their one-sentence error.
"""

from __future__ import annotations

import math
import pickle
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

PLAIN_DTYPES = frozenset(np.dtype(code) for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2",
                                                     "f4", "f8"))
MAX_PICKLE_BYTES = 1 << 30  # a FLAME 2020 pickle is about 50 MB
MAX_DIMENSION = 1 << 31


class UntrustedFileError(Exception):
    """Why a file was refused, as a clause ("it holds ..."); callers turn it into their own sentence."""


class UnreadableFile(UntrustedFileError):
    """The file is not a pickle (or not a zip) at all; the clause is the parser's exception name."""


def plain_dtype(dtype: np.dtype) -> bool:
    """Whether `dtype` is one of the number types a FLAME file holds (in either byte order)."""
    return (isinstance(dtype, np.dtype) and dtype.fields is None and dtype.subdtype is None
            and dtype.newbyteorder("=") in PLAIN_DTYPES)


def _count(shape) -> int:
    """The element count of a declared shape: a tuple of non-negative Python ints, each below MAX_DIMENSION."""
    if type(shape) is not tuple or not all(type(n) is int and 0 <= n < MAX_DIMENSION for n in shape):
        raise UntrustedFileError("it declares an array shape that is not a tuple of sizes")
    return math.prod(shape)


def _as_bytes(data) -> bytes:
    """Array bytes as pickled: bytes, a bytearray, or (Python 2 pickles read as latin-1) text."""
    if isinstance(data, str):
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise UntrustedFileError("it gives an array data that are not bytes")


# ----------------------------------------------------------------------------------------------------------------
# Pickles


class _Gate:
    """What `find_class` hands out instead of a function: callable, but a pickle cannot give it a state."""

    __slots__ = ("_func",)

    def __init__(self, func):
        self._func = func

    def __call__(self, *args, **kwargs):
        return self._func(*args, **kwargs)

    def __setstate__(self, state):
        raise UntrustedFileError("it gives a function a state")


class _NdarrayName:
    """Stands for numpy.ndarray, which numpy's pickles only name (as _reconstruct's first argument) and never call."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise UntrustedFileError("it calls numpy.ndarray directly, which numpy's own pickles never do")

    def __setstate__(self, state):
        raise UntrustedFileError("it gives numpy.ndarray a state")


_NDARRAY = _NdarrayName()


class _PickledDtype:
    """A dtype as a pickle builds it: `numpy.dtype(spec, align, copy)`, then `__setstate__(state)`.

    Only plain number types are admitted, and the state must be exactly what numpy writes for the type in one of
    the byte orders; the real dtype is then made by numpy, never from the pickled state."""

    __slots__ = ("dtype", "_state_set")

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self._state_set = False

    def __setstate__(self, state):
        if self._state_set:
            raise UntrustedFileError("it sets a dtype's state twice")
        for order in "<>|=":
            candidate = self.dtype.newbyteorder(order)
            expected = candidate.__reduce__()[2]
            if (type(state) is tuple and len(state) == len(expected)
                    and all(type(a) is type(b) and a == b for a, b in zip(state, expected))):
                self.dtype, self._state_set = candidate, True
                return
        raise UntrustedFileError("it gives a dtype a state numpy never writes")


def _pickled_dtype(spec, align=False, copy=True):
    """numpy.dtype as pickles call it: ('f8', False, True)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    if (not isinstance(spec, str) or len(spec) > 4 or not spec.isalnum() or type(align) not in (bool, int)
            or type(copy) not in (bool, int) or align):
        raise UntrustedFileError("it builds a dtype in a way numpy's pickles never do")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise UntrustedFileError(f"it holds the unknown dtype {spec!r}") from None
    if not plain_dtype(dtype):
        raise UntrustedFileError(f"it holds arrays of dtype {dtype}, not plain numbers")
    return _PickledDtype(dtype)


def _real_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, _PickledDtype):
        raise UntrustedFileError("it builds an array without a checked dtype")
    return dtype.dtype


class _PickledArray(np.ndarray):
    """An array rebuilt by numpy's `_reconstruct`; its state is checked before numpy sees it."""

    def __setstate__(self, state):
        if getattr(self, "_state_set", False):
            raise UntrustedFileError("it sets an array's state twice")
        if type(state) is not tuple or len(state) != 5 or type(state[0]) is not int or state[0] != 1:
            raise UntrustedFileError("it gives an array a state numpy never writes")
        _, shape, dtype, fortran, data = state
        dtype = _real_dtype(dtype)
        count = _count(shape)
        data = _as_bytes(data)
        if type(fortran) is not bool or len(data) != count * dtype.itemsize:
            raise UntrustedFileError("it holds an array whose data do not match its declared shape")
        super().__setstate__((1, shape, dtype, fortran, data))
        self._state_set = True


def _reconstruct(subtype, shape, typecode):
    """numpy's multiarray._reconstruct as its pickles call it: (ndarray, (0,), b'b'), an empty array to fill."""
    if subtype is not _NDARRAY or shape != (0,) or type(shape) is not tuple or typecode not in (b"b", "b"):
        raise UntrustedFileError("it rebuilds an array in a way numpy's pickles never do")
    return np.empty(0, np.int8).view(_PickledArray)


def _frombuffer(buffer, dtype, shape, order):
    """numpy's _frombuffer (pickle protocol 5): the bytes must match the declared shape."""
    dtype = _real_dtype(dtype)
    count = _count(shape)
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise UntrustedFileError("it rebuilds an array from something other than its bytes")
    if len(buffer) != count * dtype.itemsize:
        raise UntrustedFileError("it holds an array whose data do not match its declared shape")
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order).view(_PickledArray)
    array._state_set = True
    return array


def _scalar(dtype, data=None):
    """numpy's multiarray.scalar: one plain number, returned as a Python number."""
    dtype = _real_dtype(dtype)
    data = _as_bytes(data)
    if len(data) != dtype.itemsize:
        raise UntrustedFileError("it holds a number whose bytes do not match its dtype")
    return np.frombuffer(data, dtype=dtype)[0].item()


class ChumpyArray:
    """Takes the place of chumpy.ch.Ch: keeps the pickled state; the array is state['x']."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state

    @property
    def declared_shape(self) -> tuple:
        return self.to_array().shape

    def to_array(self) -> np.ndarray:
        x = self.state.get("x") if isinstance(self.state, dict) else None
        if not isinstance(x, np.ndarray):
            raise UntrustedFileError("a chumpy array in it holds no numpy array under 'x'")
        return np.asarray(x)


class SparseMatrix:
    """Takes the place of a scipy.sparse csc/csr matrix: keeps the pickled state; `to_array` densifies it with numpy
    once the caller has accepted `declared_shape`."""

    compressed_columns = True

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state

    @property
    def declared_shape(self) -> tuple[int, int]:
        s = self.state if isinstance(self.state, dict) else {}
        shape = s.get("_shape", s.get("shape"))
        if type(shape) is not tuple or len(shape) != 2:
            raise UntrustedFileError("a sparse matrix in it has no shape")
        _count(shape)
        return shape

    def to_array(self) -> np.ndarray:
        rows, cols = self.declared_shape
        s = self.state
        data, indices, indptr = (s.get(k) for k in ("data", "indices", "indptr"))
        for name, value in (("data", data), ("indices", indices), ("indptr", indptr)):
            if not isinstance(value, np.ndarray) or value.ndim != 1:
                raise UntrustedFileError(f"a sparse matrix in it has {name} that are not a one-dimensional array")
        if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
            raise UntrustedFileError("a sparse matrix in it has indices that are not integers")
        if indices.shape != data.shape:
            raise UntrustedFileError("a sparse matrix in it has inconsistent data and indices")
        outer, inner = (cols, rows) if self.compressed_columns else (rows, cols)
        if (indptr.shape != (outer + 1,) or indptr[0] != 0 or indptr[-1] != data.size or np.any(indptr[1:] <
                                                                                                   indptr[:-1])
                or (indices.size and (indices.min() < 0 or indices.max() >= inner))):
            raise UntrustedFileError("a sparse matrix in it has inconsistent indices or shape")
        dense = np.zeros((outer, inner), dtype=np.float64)
        major = np.repeat(np.arange(outer), np.diff(indptr.astype(np.int64)))
        np.add.at(dense, (major, indices.astype(np.int64)), data.astype(np.float64))
        return dense.T if self.compressed_columns else dense


class _CsrMatrix(SparseMatrix):
    compressed_columns = False


STAND_INS = (ChumpyArray, SparseMatrix, _CsrMatrix)


def _latin1_bytes(text, encoding="latin1"):
    """_codecs.encode as Python 3 uses it to pickle bytes at protocols 0-2; only the latin-1 form is accepted."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower().replace("-", "").replace(
            "_", "") not in ("latin1", "l1", "iso88591"):
        raise UntrustedFileError("it encodes text in a way a FLAME file never does")
    return text.encode("latin1")


def _empty_bytes(*args):
    """builtins.bytes as Python 3 uses it to pickle b'' at protocols 0-2 (an empty array's data)."""
    if args:
        raise UntrustedFileError("it builds bytes in a way pickles never do")
    return b""


def _stand_in_reconstructor(cls, base, state):
    """copyreg._reconstructor (pickle protocols 0 and 1), limited to the stand-in classes on a plain object base."""
    if cls not in STAND_INS or base is not object or state is not None:
        raise UntrustedFileError("it rebuilds an object a FLAME file never contains")
    return cls()


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _Gate(_pickled_dtype),
                                              ("copyreg", "_reconstructor"): _Gate(_stand_in_reconstructor),
                                              ("_codecs", "encode"): _Gate(_latin1_bytes),
                                              ("builtins", "bytes"): _Gate(_empty_bytes),
                                              # chumpy's pickled state holds sets; object is copyreg's base class
                                              ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
                                              ("builtins", "object"): object}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _Gate(_reconstruct)
        allowed[(f"{core}.multiarray", "scalar")] = _Gate(_scalar)
        allowed[(f"{core}.numeric", "_frombuffer")] = _Gate(_frombuffer)
    for module in ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
                   "scipy.sparse._csr", "scipy.sparse.compressed", "scipy.sparse._compressed"):
        for name, stand_in in (("csc_matrix", SparseMatrix), ("csc_array", SparseMatrix),
                               ("csr_matrix", _CsrMatrix), ("csr_array", _CsrMatrix)):
            allowed[(module, name)] = stand_in
    allowed[("chumpy.ch", "Ch")] = ChumpyArray
    allowed[("chumpy", "Ch")] = ChumpyArray
    return allowed


_ALLOWED = _allowed_globals()
_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle, what: str):
        super().__init__(handle, encoding="latin1", fix_imports=True)
        self.what = what
        self.saw_chumpy = False

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)  # what fix_imports would do for Python 2 pickles
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UntrustedFileError(f"the file tries to load {module}.{name}, which {self.what} never contains")
        if found is ChumpyArray:
            self.saw_chumpy = True
        return found

    def persistent_load(self, pid):
        raise UntrustedFileError(f"it refers to external objects, which {self.what} never contains")


def restricted_unpickle(path: Path, what: str) -> tuple[object, bool]:
    """Unpickle `path` admitting only what is listed above; returns (object, whether chumpy arrays were seen).

    `what` names what the file should be ("a FLAME model"). Raises UntrustedFileError, or UnreadableFile for a file
    that is not a pickle at all."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UntrustedFileError(f"it cannot be read ({exc.strerror or exc})") from None
    if size > MAX_PICKLE_BYTES:
        raise UntrustedFileError(f"it is {size / 2**20:.0f} MB, far larger than {what}")
    try:
        with open(path, "rb") as handle:
            unpickler = _RestrictedUnpickler(handle, what)
            data = unpickler.load()
    except UntrustedFileError:
        raise
    except MemoryError:
        raise UntrustedFileError("it needs more memory than this computer has") from None
    except Exception as exc:  # any malformed pickle: the message names the problem, not the parser's internals
        raise UnreadableFile(type(exc).__name__) from None
    return data, unpickler.saw_chumpy


def declared_shape(value) -> tuple:
    """The shape an unpickled value declares (arrays, chumpy and sparse stand-ins), before anything is densified."""
    if isinstance(value, np.ndarray):
        return value.shape
    if isinstance(value, STAND_INS):
        return value.declared_shape
    raise UntrustedFileError(f"it holds a {type(value).__name__} where an array belongs")


def to_plain_array(value) -> np.ndarray:
    """A plain numeric numpy array from an unpickled value (call after checking `declared_shape`)."""
    if isinstance(value, STAND_INS):
        value = value.to_array()
    if not isinstance(value, np.ndarray):
        raise UntrustedFileError(f"it holds a {type(value).__name__} where an array belongs")
    value = np.asarray(value)
    if not plain_dtype(value.dtype):
        raise UntrustedFileError(f"it holds an array of dtype {value.dtype}, not plain numbers")
    return value


def nested_size(value, limit: int) -> int:
    """How many numbers `value` (nested lists/tuples of numbers and arrays, as a pickle may hold) would give as an
    array, counted without building it; shared sub-lists are counted once per use but walked once, and cycles or
    more than `limit` numbers are refused. Protects np.asarray from a small pickle that repeats one list."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def walk(item) -> int:
        if isinstance(item, np.ndarray):
            return item.size
        if not isinstance(item, (list, tuple)):
            return 1
        key = id(item)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise UntrustedFileError("it holds a list that contains itself")
        active.add(key)
        total = 0
        for child in item:
            total += walk(child)
            if total > limit:
                raise UntrustedFileError(f"it holds a list of more than {limit:,} numbers")
        active.discard(key)
        sizes[key] = total
        return total

    try:
        return walk(value)
    except RecursionError:
        raise UntrustedFileError("it holds lists nested too deeply") from None


# ----------------------------------------------------------------------------------------------------------------
# npz


class NpzArrays:
    """The arrays of an npz file, each read only when asked for and only after its header was checked.

    `header(name)` gives (shape, dtype) without reading data, for the caller to check (the sizes are not capped
    here); `read(name)` reads exactly the declared bytes."""

    def __init__(self, path: Path):
        try:
            self._zip = zipfile.ZipFile(path)
            self.names = [info.filename[:-4] for info in self._zip.infolist() if info.filename.endswith(".npy")]
        except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
            raise UnreadableFile(type(exc).__name__) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()

    def _open(self, name: str):
        handle = self._zip.open(f"{name}.npy")
        version = np.lib.format.read_magic(handle)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"npy version {version}")
        with warnings.catch_warnings():  # numpy warns about headers it had to repair; the user gets one sentence
            warnings.simplefilter("ignore")
            shape, fortran, dtype = readers[version](handle)
        return handle, shape, fortran, dtype

    def header(self, name: str, text: bool = False) -> tuple[tuple, np.dtype]:
        """(shape, dtype) of member `name`, refusing anything but plain numbers (or, with `text`, fixed-width
        unicode strings, which hold characters and no pointers)."""
        try:
            handle, shape, _, dtype = self._open(name)
            handle.close()
        except Exception as exc:  # noqa: BLE001 -- numpy's header parser raises what its tokenizer raises
            raise UntrustedFileError(f"its '{name}' cannot be read ({type(exc).__name__})") from None
        is_text = text and dtype.kind == "U" and dtype.fields is None and dtype.subdtype is None
        if not (plain_dtype(dtype) or is_text):
            raise UntrustedFileError(f"its '{name}' holds {dtype} values, not plain numbers")
        if not all(type(n) is int and n >= 0 for n in shape):
            raise UntrustedFileError(f"its '{name}' declares the shape {shape}")
        return shape, dtype

    def read(self, name: str, text: bool = False) -> np.ndarray:
        """Member `name` as a read-only array (check `header` first: this reads what the header declares)."""
        shape, dtype = self.header(name, text)
        size = math.prod(shape) * dtype.itemsize
        try:
            handle, _, fortran, _ = self._open(name)
            with handle:
                data = handle.read(size)
        except MemoryError:
            raise UntrustedFileError(f"its '{name}' needs more memory than this computer has") from None
        except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError, NotImplementedError,
                zlib.error) as exc:
            raise UntrustedFileError(f"its '{name}' cannot be read ({type(exc).__name__})") from None
        if len(data) != size:
            raise UntrustedFileError(f"its '{name}' is truncated")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
