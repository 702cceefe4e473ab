"""Crafted FLAME files for the hardening tests: pickles that forge numpy state, and npz files whose members
decompress to far more than the file's size. Nothing here is loaded by the code under test except as bytes."""

import io
import pickle
import struct
import zipfile
import zlib

import numpy as np


class ForgedDtype:
    """Pickles as numpy does for a dtype: numpy.dtype(spec, False, True), then __setstate__(state)."""

    def __init__(self, spec, state):
        self.spec, self.state = spec, state

    def __reduce__(self):
        return np.dtype, (self.spec, False, True), self.state


class ForgedArray:
    """Pickles as numpy does for an array: _reconstruct(ndarray, (0,), b'b'), then __setstate__(state); `args`
    replaces _reconstruct's arguments."""

    def __init__(self, state, args=(np.ndarray, (0,), b"b")):
        self.state, self.args = state, args

    def __reduce__(self):
        return np.core.multiarray._reconstruct, self.args, self.state


OBJECT_FLAGS_CLEARED = (3, "|", None, None, None, -1, -1, 0)  # numpy writes flags 63 for object dtypes


def forged_pointer_array(shape=(4, 50)):
    """An object array whose elements are raw bytes, i.e. pointers to 0x4141414141414141: reading it faults."""
    count = int(np.prod(shape))
    return ForgedArray((1, shape, ForgedDtype("O8", OBJECT_FLAGS_CLEARED), False, b"\x41" * (8 * count)))


def pickled(obj, protocol=2) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


def global_call(module, name, *args, key=None) -> bytes:
    """A protocol-0 pickle of the call module.name(*args) (str, int, tuple and empty-dict arguments); with `key`, the
    call's result is the value of `key` in a dictionary."""
    parts = []
    for arg in args:
        if isinstance(arg, str):
            parts.append(b"V" + arg.encode("raw_unicode_escape") + b"\n")
        elif isinstance(arg, bool):
            parts.append(b"I01\n" if arg else b"I00\n")
        elif isinstance(arg, int):
            parts.append(b"I%d\n" % arg)
        elif isinstance(arg, tuple):
            parts.append(b"(" + b"".join(b"I%d\n" % n for n in arg) + b"t")
        elif arg == {}:
            parts.append(b"(d")
        else:
            raise TypeError(arg)
    call = b"c%s\n%s\n(%stR" % (module.encode(), name.encode(), b"".join(parts))
    return call + b"." if key is None else b"(dV%s\n%ss." % (key.encode(), call)


def _zip(members) -> bytes:
    """A zip file from (name, method, stored_bytes, crc, uncompressed_size) members (method 0 stored, 8 deflate)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, method, data, crc, size in members:
        name = name.encode()
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(name), 0))
        out.write(name + data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                                  len(name), 0, 0, 0, 0, 0, offset))
        central.write(name)
    start = out.tell()
    out.write(central.getvalue())
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central.getvalue()), start,
                          0))
    return out.getvalue()


def _npy_member(name, array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    raw = buffer.getvalue()
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return f"{name}.npy", 8, packer.compress(raw) + packer.flush(), zlib.crc32(raw), len(raw)


def _zeros_member(name, shape, descr="<f8"):
    """A deflated .npy member of zeros declaring `shape`: a few KB per GB, built without ever holding the GB."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    header = header.getvalue()
    total = int(np.prod(shape)) * np.dtype(descr).itemsize
    chunk = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(header) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH) == block  # a full flush restarts the stream
    whole, rest = divmod(total, len(chunk))
    tail = packer.compress(bytes(rest)) + packer.flush()
    crc = zlib.crc32(header)
    for _ in range(whole):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return f"{name}.npy", 8, head + block * whole + tail, crc, len(header) + total


def npz_with_header(path, name, descr, shape, data: bytes, arrays: dict = None):
    """Write an npz holding `arrays` plus a member `name` whose .npy header declares any `descr` and `shape` (numpy's
    writer checks neither), followed by `data`."""
    with zipfile.ZipFile(path, "w") as dst:
        for key, value in (arrays or {}).items():
            with dst.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
        with dst.open(f"{name}.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False, "shape": shape})
            member.write(data)
    return path


def npz_with_zeros(path, arrays: dict, zeros: dict):
    """Write an npz holding `arrays` plus, for each name -> shape in `zeros`, a deflated member of zeros."""
    members = [_npy_member(k, v) for k, v in arrays.items()] + [_zeros_member(k, s) for k, s in zeros.items()]
    path.write_bytes(_zip(members))
    return path


class ForgedSparse:
    """Pickles as a scipy.sparse matrix does at protocols 0 and 1 (copyreg._reconstructor + state), with some of its
    state replaced."""

    def __init__(self, matrix, **replaced):
        self.cls, self.state = type(matrix), {**matrix.__dict__, **replaced}

    def __reduce_ex__(self, protocol):
        import copyreg

        return copyreg._reconstructor, (self.cls, object, None), self.state
