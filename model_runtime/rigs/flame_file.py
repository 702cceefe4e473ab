"""Load a user's own FLAME model file (.pkl or .npz) without running any code it might carry.

FLAME files cannot be redistributed, so users point the runtime at their own download:
  * FLAME 2020 (`generic_model.pkl`, ...) are Python 2 pickles whose arrays are chumpy `Ch` objects (the numpy array
    sits in the object's state under 'x'), plus numpy arrays and a scipy.sparse csc J_regressor;
  * FLAME 2023 / 2023 Open pickles hold numpy arrays and scipy.sparse matrices;
  * .npz conversions hold plain arrays.

Pickles are read with `_FlameUnpickler`, whose `find_class` admits only numpy array reconstruction, scipy.sparse
csc/csr matrices and chumpy `Ch` (plus copyreg._reconstructor limited to those stand-ins, _codecs.encode limited
to latin-1 text, which protocols 0-2 use for objects and bytes, and the containers set and frozenset, which chumpy's
pickled state holds). chumpy and scipy are never imported: both are replaced by small local stand-ins
that capture the pickled state and turn it into a numpy array. Any other global (os.system, builtins.eval, ...) is
refused before it can be called.

The converted arrays are cached as an .npz in `cache_dir()/flame/<sha256>.npz` (paths.NpzCache: a cache that does not
match its own hash, or fails the checks a fresh file gets, is rebuilt).

Normalised layout of `FlameModel` (all float arrays float64):
  v_template (V, 3); shapedirs (V, 3, S); exprdirs (V, 3, E) -- FLAME stores both in one `shapedirs`, the first 300
  components are shape and the rest (100 in FLAME 2020 and 2023) expression: the split is at 300 when the last
  dimension is larger than 300, otherwise every component is shape and E = 0;
  posedirs (36, V*3): row 9*(j-1) + 3*r + c is the corrective for entry (r, c) of (R_j - I) of non-root joint j,
  column 3*v + k is coordinate k of vertex v (the file's (V, 3, 36) or (V*3, 36) is reshaped and transposed; an
  npz that already holds (36, V*3) is kept);
  J_regressor (5, V) dense; kintree_table (2, 5) int64 (row 0 parents, root parent any value outside 0..4);
  weights (V, 5); f (F, 3) int64.

Edition heuristic (`edition`), from the contents first and the file name only as a fallback:
  * the pickle holds chumpy objects -> "FLAME 2020" (the 2023 releases carry no chumpy), unless the file name names
    another year (2017, 2019, 2023), in which case "unknown";
  * a plain-array pickle or an npz carries nothing that tells 2020, 2023 and 2023 Open apart, so the file name
    decides: "2023" and "open" -> "FLAME 2023 Open", "2023" -> "FLAME 2023", "2020" or "generic_model" -> "FLAME 2020",
    anything else -> "unknown".
The licence line always says that the edition was inferred and that the user must check the licence of their download.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from ..paths import NpzCache, sha256_file

SHAPE_COMPONENTS = 300
NUM_JOINTS = 5
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
CACHE_VERSION = 1

EDITION_2020 = "FLAME 2020"
EDITION_2023 = "FLAME 2023"
EDITION_2023_OPEN = "FLAME 2023 Open"
EDITION_UNKNOWN = "unknown"

_INFERRED = ("the edition was inferred from the file's contents and name, so check the licence that came with "
             "your download")
LICENCE_LINES = {
    EDITION_2020: "FLAME 2020 is licensed by the Max Planck Institute for Intelligent Systems under the FLAME licence "
                  f"for non-commercial scientific research only; {_INFERRED}.",
    EDITION_2023: "FLAME 2023 is licensed by the Max Planck Institute for Intelligent Systems under the FLAME licence "
                  f"for non-commercial scientific research only; {_INFERRED}.",
    EDITION_2023_OPEN: f"FLAME 2023 Open is released under CC-BY-4.0, which requires attribution; {_INFERRED}.",
    EDITION_UNKNOWN: "The FLAME edition could not be told from the file: FLAME 2020 and 2023 are under the MPI FLAME "
                     "licence for non-commercial scientific research only and FLAME 2023 Open is under CC-BY-4.0, so "
                     "check the licence that came with your download.",
}


@dataclass(frozen=True, eq=False)
class FlameModel:
    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, S)
    exprdirs: np.ndarray  # (V, 3, E)
    posedirs: np.ndarray  # (36, V*3)
    J_regressor: np.ndarray  # (5, V)
    kintree_table: np.ndarray  # (2, 5)
    weights: np.ndarray  # (V, 5)
    f: np.ndarray  # (F, 3)
    edition: str
    licence_line: str
    sha256: str
    units: str = "metres"

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def parents(self) -> np.ndarray:
        """(5,) parent index per joint, -1 for the root."""
        parents = self.kintree_table[0].astype(np.int64).copy()
        parents[0] = -1
        return parents


# ----------------------------------------------------------------------------------------------------------------
# Restricted unpickling


class _ChStandIn:
    """Takes the place of chumpy.ch.Ch: keeps the pickled state; the array is state['x']."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        x = self.state.get("x") if isinstance(self.state, dict) else None
        if not isinstance(x, np.ndarray):
            raise WeightsError("A chumpy array in the FLAME file holds no numpy array under 'x'.")
        return x


class _SparseStandIn:
    """Takes the place of a scipy.sparse csc/csr matrix: keeps the pickled state and densifies it with numpy."""

    compressed_columns = True

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state

    def to_array(self) -> np.ndarray:
        s = self.state if isinstance(self.state, dict) else {}
        shape = s.get("_shape", s.get("shape"))
        try:
            data = np.asarray(s["data"])
            indices = np.asarray(s["indices"], dtype=np.int64)
            indptr = np.asarray(s["indptr"], dtype=np.int64)
            rows, cols = (int(shape[0]), int(shape[1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise WeightsError("A sparse matrix in the FLAME file is incomplete (needs data, indices, indptr, "
                               "shape).") from None
        if data.dtype == object or data.ndim != 1 or indices.shape != data.shape:
            raise WeightsError("A sparse matrix in the FLAME file has inconsistent data and indices.")
        outer, inner = (cols, rows) if self.compressed_columns else (rows, cols)
        if (rows < 0 or cols < 0 or rows * cols > 10**9 or indptr.shape != (outer + 1,) or indptr[0] != 0
                or indptr[-1] != data.size or np.any(np.diff(indptr) < 0)
                or (indices.size and (indices.min() < 0 or indices.max() >= inner))):
            raise WeightsError("A sparse matrix in the FLAME file has inconsistent indices or shape.")
        dense = np.zeros((outer, inner), dtype=np.float64)
        major = np.repeat(np.arange(outer), np.diff(indptr))
        np.add.at(dense, (major, indices), data.astype(np.float64))
        return dense.T if self.compressed_columns else dense


class _CsrStandIn(_SparseStandIn):
    compressed_columns = False


def _numpy_core():
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


def _allowed_globals() -> dict[tuple[str, str], object]:
    multiarray, numeric = _numpy_core()
    allowed: dict[tuple[str, str], object] = {}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        # numpy's own reconstruction for pickle protocol 5 (the Python 3 default), an array from a byte buffer.
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr",
                   "scipy.sparse._csr", "scipy.sparse.compressed", "scipy.sparse._compressed"):
        for name, stand_in in (("csc_matrix", _SparseStandIn), ("csc_array", _SparseStandIn),
                               ("csr_matrix", _CsrStandIn), ("csr_array", _CsrStandIn)):
            allowed[(module, name)] = stand_in
    allowed[("chumpy.ch", "Ch")] = _ChStandIn
    allowed[("chumpy", "Ch")] = _ChStandIn
    return allowed


_STAND_IN_CLASSES = (_ChStandIn, _SparseStandIn, _CsrStandIn)


def _latin1_bytes(text, encoding="latin1"):
    """_codecs.encode as Python 3 uses it to pickle bytes at protocols 0-2; only the latin-1 form is accepted."""
    if not isinstance(text, str) or str(encoding).lower().replace("-", "").replace("_", "") not in ("latin1", "l1",
                                                                                                   "iso88591"):
        raise WeightsError("The FLAME file was refused: it encodes text in a way a FLAME model never does.")
    return text.encode("latin1")


def _safe_reconstructor(cls, base, state):
    """copyreg._reconstructor (pickle protocols 0 and 1), limited to the stand-in classes on a plain object base."""
    if cls not in _STAND_IN_CLASSES or base is not object or state is not None:
        raise WeightsError("The FLAME file was refused: it rebuilds an object a FLAME model never contains.")
    return cls()


_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}
# chumpy's pickled state holds sets (e.g. '_dirty_vars'); object is the base copyreg._reconstructor names.
_SAFE_BUILTINS = {"object": object, "set": set, "frozenset": frozenset}


class _FlameUnpickler(pickle.Unpickler):
    def __init__(self, handle):
        super().__init__(handle, encoding="latin1", fix_imports=True)
        self._allowed = _allowed_globals()
        self.saw_chumpy = False

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)  # what fix_imports would do for Python 2 pickles
        found = self._allowed.get((module, name))
        if found is _ChStandIn:
            self.saw_chumpy = True
        if found is not None:
            return found
        if (module, name) == ("copyreg", "_reconstructor"):
            return _safe_reconstructor
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if module == "builtins" and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        raise WeightsError(f"The FLAME file was refused: the file tries to load {module}.{name}, which a FLAME model "
                           "never contains.")

    def persistent_load(self, pid):
        raise WeightsError("The FLAME file was refused: it refers to external objects, which a FLAME model never "
                           "contains.")


def _to_array(value, key: str) -> np.ndarray:
    if isinstance(value, _STAND_IN_CLASSES):
        value = value.to_array()
    if not isinstance(value, np.ndarray):
        raise WeightsError(f"The FLAME file's '{key}' is not an array (found {type(value).__name__}).")
    if value.dtype == object or value.dtype.kind not in "biuf":
        raise WeightsError(f"The FLAME file's '{key}' is not a numeric array (dtype {value.dtype}).")
    return value


def safe_unpickle(path: Path, what: str = "a FLAME model") -> tuple[object, bool]:
    """Unpickle `path` admitting only arrays (see the module docstring); returns (object, whether chumpy was seen).

    Also used for FLAME parameter sequences, which DECA-style tools save as pickles of numpy arrays."""
    try:
        with open(path, "rb") as handle:
            unpickler = _FlameUnpickler(handle)
            data = unpickler.load()
    except WeightsError:
        raise
    except Exception as exc:  # any malformed pickle: the message names the file, not the parser's internals
        raise WeightsError(f"{path} is not {what}: it is neither a readable pickle nor an npz "
                           f"({type(exc).__name__}).") from None
    return data, unpickler.saw_chumpy


def _read_pickle(path: Path) -> tuple[dict, bool]:
    data, saw_chumpy = safe_unpickle(path)
    if not isinstance(data, dict):
        raise WeightsError(f"{path} is not a FLAME model: the pickle holds a {type(data).__name__}, not a dictionary.")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise WeightsError(f"The FLAME file {path} lacks {', '.join(missing)}.")
    return {k: _to_array(data[k], k) for k in REQUIRED_KEYS}, saw_chumpy


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in REQUIRED_KEYS if k not in f.files]
            if missing:
                raise WeightsError(f"The FLAME file {path} lacks {', '.join(missing)}.")
            return {k: _to_array(f[k], k) for k in REQUIRED_KEYS}
    except WeightsError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise WeightsError(f"{path} is not a readable FLAME npz file ({exc}).") from None


# ----------------------------------------------------------------------------------------------------------------
# Normalisation and checks


def _normalise(raw: dict, where: str) -> dict:
    v_template = np.asarray(raw["v_template"], dtype=np.float64)
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        raise WeightsError(f"The FLAME file {where} has v_template of shape {v_template.shape}; it must be (V, 3).")
    v = v_template.shape[0]

    dirs = np.asarray(raw["shapedirs"], dtype=np.float64)
    if dirs.ndim == 2 and dirs.shape[0] == v * 3:
        dirs = dirs.reshape(v, 3, -1)
    if dirs.ndim != 3 or dirs.shape[:2] != (v, 3):
        raise WeightsError(f"The FLAME file {where} has shapedirs of shape {dirs.shape}; it must be ({v}, 3, K).")
    split = SHAPE_COMPONENTS if dirs.shape[2] > SHAPE_COMPONENTS else dirs.shape[2]
    shapedirs, exprdirs = dirs[:, :, :split], dirs[:, :, split:]

    pose = np.asarray(raw["posedirs"], dtype=np.float64)
    if pose.shape == (v, 3, NUM_POSE_FEATURES):
        posedirs = pose.reshape(v * 3, NUM_POSE_FEATURES).T
    elif pose.shape == (v * 3, NUM_POSE_FEATURES):
        posedirs = pose.T
    elif pose.shape == (NUM_POSE_FEATURES, v * 3):
        posedirs = pose
    else:
        raise WeightsError(f"The FLAME file {where} has posedirs of shape {pose.shape}; it must be ({v}, 3, "
                           f"{NUM_POSE_FEATURES}), ({v * 3}, {NUM_POSE_FEATURES}) or ({NUM_POSE_FEATURES}, {v * 3}).")

    regressor = np.asarray(raw["J_regressor"], dtype=np.float64)
    if regressor.shape != (NUM_JOINTS, v):
        raise WeightsError(f"The FLAME file {where} has J_regressor of shape {regressor.shape}; it must be "
                           f"({NUM_JOINTS}, {v}).")

    kintree = np.asarray(raw["kintree_table"])
    if kintree.shape != (2, NUM_JOINTS):
        raise WeightsError(f"The FLAME file {where} has kintree_table of shape {kintree.shape}; it must be "
                           f"(2, {NUM_JOINTS}).")
    kintree = kintree.astype(np.int64)
    if list(kintree[1]) != list(range(NUM_JOINTS)) or any(
            not 0 <= kintree[0, j] < j for j in range(1, NUM_JOINTS)) or 0 <= kintree[0, 0] < NUM_JOINTS:
        raise WeightsError(f"The FLAME file {where} has a kintree_table that is not a joint tree rooted at joint 0.")

    weights = np.asarray(raw["weights"], dtype=np.float64)
    if weights.shape != (v, NUM_JOINTS):
        raise WeightsError(f"The FLAME file {where} has weights of shape {weights.shape}; it must be ({v}, "
                           f"{NUM_JOINTS}), one row per vertex.")

    faces = np.asarray(raw["f"])
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in "iu":
        raise WeightsError(f"The FLAME file {where} has f of shape {faces.shape} ({faces.dtype}); it must be integer "
                           "(F, 3).")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= v):
        raise WeightsError(f"The FLAME file {where} has faces that index vertices outside 0..{v - 1}.")

    out = {"v_template": v_template, "shapedirs": np.ascontiguousarray(shapedirs),
           "exprdirs": np.ascontiguousarray(exprdirs), "posedirs": np.ascontiguousarray(posedirs),
           "J_regressor": regressor, "kintree_table": kintree, "weights": weights, "f": faces}
    for key, value in out.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise WeightsError(f"The FLAME file {where} has non-finite values (NaN or infinity) in {key}.")
    return out


_ARRAY_FIELDS = ("v_template", "shapedirs", "exprdirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


def detect_edition(source: str, filename: str) -> str:
    """`source` is 'chumpy' (a pickle holding chumpy arrays), 'pickle' (plain arrays) or 'npz'. See the module doc."""
    name = filename.lower()
    years = set(re.findall(r"(?<!\d)(2017|2019|2020|2023)(?!\d)", name))
    if source == "chumpy":
        return EDITION_2020 if years <= {"2020"} else EDITION_UNKNOWN
    if years == {"2023"}:
        return EDITION_2023_OPEN if "open" in name else EDITION_2023
    if years == {"2020"} or (not years and "generic_model" in name):
        return EDITION_2020
    return EDITION_UNKNOWN


def _cache(sha: str) -> NpzCache:
    return NpzCache(Path("flame") / f"{sha}.npz", f"{sha}-v{CACHE_VERSION}", fields=(*_ARRAY_FIELDS, "source"))


def _read_cache(sha: str, where: str) -> tuple[dict, str] | None:
    arrays = _cache(sha).read()
    if arrays is None:
        return None
    source = str(arrays.pop("source"))
    # The cache gets the same checks as a fresh file, so a damaged one is caught and rebuilt.
    raw = dict(arrays)
    try:
        raw["shapedirs"] = np.concatenate([arrays["shapedirs"], arrays["exprdirs"]], axis=2)
        normalised = _normalise(raw, where)
    except Exception:  # noqa: BLE001 -- any damage to the cache just means it is rebuilt
        return None
    if source not in ("chumpy", "pickle", "npz") or normalised["exprdirs"].shape != arrays["exprdirs"].shape:
        return None
    return normalised, source


def load_flame(path: str | Path) -> FlameModel:
    """Read a FLAME model (.pkl from any edition, or an .npz conversion) into a validated `FlameModel`."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"The FLAME model file {path} does not exist.")
    if not path.is_file():
        raise InputError(f"The FLAME model path {path} is not a file.")
    try:
        sha = sha256_file(path)
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise WeightsError(f"Cannot read the FLAME model file {path}: {exc.strerror or exc}.") from None
    if not magic:
        raise WeightsError(f"The FLAME model file {path} is empty.")

    cached = _read_cache(sha, str(path))
    if cached is not None:
        arrays, source = cached
    else:
        if magic.startswith(b"PK"):
            raw, source = _read_npz(path), "npz"
        else:
            raw, saw_chumpy = _read_pickle(path)
            source = "chumpy" if saw_chumpy else "pickle"
        arrays = _normalise(raw, str(path))
        _cache(sha).write({**arrays, "source": np.str_(source)})

    edition = detect_edition(source, path.name)
    for value in arrays.values():
        value.setflags(write=False)
    return FlameModel(**arrays, edition=edition, licence_line=LICENCE_LINES[edition], sha256=sha)
