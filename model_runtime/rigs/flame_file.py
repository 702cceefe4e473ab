"""Load a user's own FLAME model file (.pkl or .npz) without running any code it might carry.

FLAME files cannot be redistributed, so users point the runtime at their own download:
  * FLAME 2020 (`generic_model.pkl`, ...) are Python 2 pickles whose arrays are chumpy `Ch` objects (the numpy array
    sits in the object's state under 'x'), plus numpy arrays and a scipy.sparse csc J_regressor;
  * FLAME 2023 / 2023 Open pickles hold numpy arrays and scipy.sparse matrices;
  * .npz conversions hold plain arrays.

Pickles and npz files are read by untrusted_arrays.py: no code a file carries runs (chumpy and scipy are never
imported; small stand-ins turn their pickled state into numpy arrays), only plain numeric dtypes are admitted, and the
declared shapes are checked against each other and against the caps below before any data are read or densified.

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

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from ..paths import NpzCache, check_input_name, sha256_file
from .untrusted_arrays import (NpzArrays, UnreadableFile, UntrustedFileError, declared_shape, restricted_unpickle,
                               to_plain_array)

SHAPE_COMPONENTS = 300
NUM_JOINTS = 5
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
CACHE_VERSION = 1
# Caps on declared sizes, checked before data are read: FLAME has 5023 vertices, 9976 faces and 400 components.
MAX_VERTICES = 50_000
MAX_FACES = 4 * MAX_VERTICES
MAX_COMPONENTS = 500
# What makes a template a plausible head for fitting ARKit shapes (FLAME's: 5023 vertices, about 0.35 m across,
# median edge about 1% of that): fewer vertices, another scale, triangles across the head or a flat cloud are refused.
MIN_HEAD_VERTICES = 1_000
HEAD_DIAGONAL_M = (0.1, 1.0)
MAX_MEDIAN_EDGE_SHARE = 0.05

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
# Reading (see untrusted_arrays.py for what a pickle or npz may hold)


def _check_shapes(shapes: dict[str, tuple], where: str) -> None:
    """Check the declared shapes of the required arrays against each other and FLAME's sizes, before their data are
    read or densified, so an oversized or inconsistent file is refused without allocating it."""
    v_template = shapes["v_template"]
    if len(v_template) != 2 or v_template[1] != 3 or not 1 <= v_template[0] <= MAX_VERTICES:
        raise WeightsError(f"The FLAME file {where} has v_template of shape {v_template}; it must be (V, 3) with V "
                           f"at most {MAX_VERTICES:,}.")
    v = v_template[0]
    dirs = shapes["shapedirs"]
    components = dirs[-1] if len(dirs) == 3 and dirs[:2] == (v, 3) or len(dirs) == 2 and dirs[0] == v * 3 else None
    if components is None or components > MAX_COMPONENTS:
        raise WeightsError(f"The FLAME file {where} has shapedirs of shape {dirs}; it must be ({v}, 3, K) with K at "
                           f"most {MAX_COMPONENTS}.")
    if shapes["posedirs"] not in ((v, 3, NUM_POSE_FEATURES), (v * 3, NUM_POSE_FEATURES), (NUM_POSE_FEATURES, v * 3)):
        raise WeightsError(f"The FLAME file {where} has posedirs of shape {shapes['posedirs']}; it must be ({v}, 3, "
                           f"{NUM_POSE_FEATURES}), ({v * 3}, {NUM_POSE_FEATURES}) or ({NUM_POSE_FEATURES}, {v * 3}).")
    if shapes["J_regressor"] != (NUM_JOINTS, v):
        raise WeightsError(f"The FLAME file {where} has J_regressor of shape {shapes['J_regressor']}; it must be "
                           f"({NUM_JOINTS}, {v}).")
    if shapes["kintree_table"] != (2, NUM_JOINTS):
        raise WeightsError(f"The FLAME file {where} has kintree_table of shape {shapes['kintree_table']}; it must be "
                           f"(2, {NUM_JOINTS}).")
    if shapes["weights"] != (v, NUM_JOINTS):
        raise WeightsError(f"The FLAME file {where} has weights of shape {shapes['weights']}; it must be ({v}, "
                           f"{NUM_JOINTS}), one row per vertex.")
    faces = shapes["f"]
    if len(faces) != 2 or faces[1] != 3 or faces[0] > MAX_FACES:
        raise WeightsError(f"The FLAME file {where} has f of shape {faces}; it must be (F, 3) with F at most "
                           f"{MAX_FACES:,}.")


def _read_pickle(path: Path) -> tuple[dict, bool]:
    try:
        data, saw_chumpy = restricted_unpickle(path, "a FLAME model")
        if not isinstance(data, dict):
            raise WeightsError(f"{path} is not a FLAME model: the pickle holds a {type(data).__name__}, not a "
                               f"dictionary.")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise WeightsError(f"The FLAME file {path} lacks {', '.join(missing)}.")
        shapes = {}
        for key in REQUIRED_KEYS:
            try:
                shapes[key] = declared_shape(data[key])
            except UntrustedFileError:
                raise WeightsError(f"The FLAME file's '{key}' is not an array (found {type(data[key]).__name__}).") \
                    from None
        _check_shapes(shapes, str(path))
        return {k: to_plain_array(data[k]) for k in REQUIRED_KEYS}, saw_chumpy
    except UnreadableFile as exc:
        raise WeightsError(f"{path} is not a FLAME model: it is neither a readable pickle nor an npz ({exc}).") \
            from None
    except UntrustedFileError as exc:
        raise WeightsError(f"The FLAME file {path} was refused: {exc}.") from None


def _read_npz(path: Path) -> dict:
    try:
        with NpzArrays(path) as npz:
            missing = [k for k in REQUIRED_KEYS if k not in npz.names]
            if missing:
                raise WeightsError(f"The FLAME file {path} lacks {', '.join(missing)}.")
            _check_shapes({k: npz.header(k)[0] for k in REQUIRED_KEYS}, str(path))
            return {k: npz.read(k) for k in REQUIRED_KEYS}
    except UnreadableFile as exc:
        raise WeightsError(f"{path} is not a readable FLAME npz file ({exc}).") from None
    except UntrustedFileError as exc:
        raise WeightsError(f"The FLAME file {path} was refused: {exc}.") from None


# ----------------------------------------------------------------------------------------------------------------
# Normalisation and checks


def _normalise(raw: dict, where: str) -> dict:
    _check_shapes({k: np.shape(raw[k]) for k in REQUIRED_KEYS}, where)
    v_template = np.asarray(raw["v_template"], dtype=np.float64)
    v = v_template.shape[0]
    dirs = np.asarray(raw["shapedirs"], dtype=np.float64).reshape(v, 3, -1)
    split = SHAPE_COMPONENTS if dirs.shape[2] > SHAPE_COMPONENTS else dirs.shape[2]
    shapedirs, exprdirs = dirs[:, :, :split], dirs[:, :, split:]

    pose = np.asarray(raw["posedirs"], dtype=np.float64)
    posedirs = pose if pose.shape == (NUM_POSE_FEATURES, v * 3) else pose.reshape(v * 3, NUM_POSE_FEATURES).T
    regressor = np.asarray(raw["J_regressor"], dtype=np.float64)

    kintree = np.asarray(raw["kintree_table"])
    if kintree.dtype.kind not in "iuf" or not np.all(np.abs(kintree) < 2**62):
        raise WeightsError(f"The FLAME file {where} has a kintree_table that is not a joint tree rooted at joint 0.")
    kintree = kintree.astype(np.int64)
    if list(kintree[1]) != list(range(NUM_JOINTS)) or any(
            not 0 <= kintree[0, j] < j for j in range(1, NUM_JOINTS)) or 0 <= kintree[0, 0] < NUM_JOINTS:
        raise WeightsError(f"The FLAME file {where} has a kintree_table that is not a joint tree rooted at joint 0.")

    weights = np.asarray(raw["weights"], dtype=np.float64)
    faces = np.asarray(raw["f"])
    if faces.dtype.kind not in "iu":
        raise WeightsError(f"The FLAME file {where} has f of shape {faces.shape} ({faces.dtype}); it must be integer "
                           "(F, 3).")
    if faces.size and (faces.min() < 0 or faces.max() >= v):
        raise WeightsError(f"The FLAME file {where} has faces that index vertices outside 0..{v - 1}.")
    faces = faces.astype(np.int64)

    out = {"v_template": v_template, "shapedirs": np.ascontiguousarray(shapedirs),
           "exprdirs": np.ascontiguousarray(exprdirs), "posedirs": np.ascontiguousarray(posedirs),
           "J_regressor": regressor, "kintree_table": kintree, "weights": weights, "f": faces}
    for key, value in out.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise WeightsError(f"The FLAME file {where} has non-finite values (NaN or infinity) in {key}.")
    return out


_ARRAY_FIELDS = ("v_template", "shapedirs", "exprdirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")


def check_head_template(v_template: np.ndarray, faces: np.ndarray) -> None:
    """Refuse a template that is not a plausible head mesh before ARKit shapes are fitted to it: a random 60-vertex
    "FLAME" model would otherwise get a map with residuals of 10^12 %."""
    v = v_template.shape[0]
    if v < MIN_HEAD_VERTICES:
        raise WeightsError(f"The FLAME model has only {v} vertices, too few for a head (FLAME has 5023), so ARKit "
                           f"shapes cannot be fitted to it.")
    used = np.unique(faces).size if faces.size else 0
    if faces.shape[0] < v or used < 0.9 * v:
        raise WeightsError(f"The FLAME model's template is not a surface: {faces.shape[0]} triangles cover {used} of "
                           f"its {v} vertices.")
    diagonal = float(np.linalg.norm(np.ptp(v_template, axis=0)))
    if not HEAD_DIAGONAL_M[0] <= diagonal <= HEAD_DIAGONAL_M[1]:
        raise WeightsError(f"The FLAME model's template is {diagonal:.3g} m across, not a head in metres (FLAME's is "
                           f"about 0.35 m).")
    corners = v_template[faces]
    edges = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)
    areas = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    spread = np.linalg.svd(v_template - v_template.mean(axis=0), compute_uv=False)
    if (np.median(edges) > MAX_MEDIAN_EDGE_SHARE * diagonal or np.mean(areas <= 1e-12 * diagonal**2) > 0.01
            or spread[2] < 0.1 * spread[0]):
        raise WeightsError("The FLAME model's template is not a head mesh (its triangles span the head, are "
                           "degenerate, or the vertices lie nearly in a plane), so ARKit shapes cannot be fitted to "
                           "it.")


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
    path = check_input_name(path, "FLAME model file")
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
        with np.errstate(all="ignore"):  # overflowing values are refused by the checks, not reported as warnings
            arrays = _normalise(raw, str(path))
        _cache(sha).write({**arrays, "source": np.str_(source)})

    edition = detect_edition(source, path.name)
    for value in arrays.values():
        value.setflags(write=False)
    return FlameModel(**arrays, edition=edition, licence_line=LICENCE_LINES[edition], sha256=sha)
