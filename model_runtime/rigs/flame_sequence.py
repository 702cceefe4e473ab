"""FLAME parameter sequences on disk: read what DECA, EMOCA, SMIRK and FLAME fitting tools write, write a plain npz.

Reading accepts an .npz (never with pickles inside) or a .pkl read through the FLAME loader's restricted unpickler
(arrays only), holding a dictionary -- or a list of per-frame dictionaries -- with

  expression  one of `expression`, `exp`, `expcode`, `expression_params`, `exp_params`      (T, N) or (N,)
  jaw         `jaw_pose`, `jaw`, `jaw_params`                                                (T, 3)
  pose        `pose`, `posecode`, `full_pose`: 6 values per frame are global + jaw (DECA/EMOCA's posecode),
              15 are global, neck, jaw, left eye, right eye (FLAME's full pose); `pose_params` (SMIRK) and
              `global_pose`, `global_orient` are the global rotation alone
  neck, eyes  `neck_pose` (T, 3), `eye_pose` (T, 6)
  fps         `fps` or `frame_rate` (a number), optional
  text        `text`: one or more instructions describing the sequence, optional (training reads them)

Only the first key of each kind is read (an npz member's header is checked before its data), and an array may hold
at most MAX_VALUES numbers. Leading batch axes of size one (EMOCA saves (1, N) per frame) are dropped. A 3-value
`pose` next to no jaw key is refused, since it could be either rotation. Writing produces `expression` (T, N) and
`jaw_pose` (T, 3) float32, plus `fps`, `text` and the other rotations when known. `load_flame_sequences` reads a
folder of described sequences for training.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..paths import atomic_output, check_input_name
from .untrusted_arrays import NpzArrays, UnreadableFile, UntrustedFileError, nested_size, restricted_unpickle

EXPRESSION_KEYS = ("expression", "exp", "expcode", "expression_params", "exp_params")
JAW_KEYS = ("jaw_pose", "jaw", "jaw_params")
POSE_KEYS = ("pose", "posecode", "full_pose")
GLOBAL_KEYS = ("global_pose", "global_orient", "pose_params")
NECK_KEYS = ("neck_pose",)
EYE_KEYS = ("eye_pose", "eyes_pose")
FPS_KEYS = ("fps", "frame_rate")
TEXT_KEY = "text"
MAX_EXPRESSION = 20.0  # FLAME coefficients are in standard deviations; beyond this the file holds something else
MAX_ANGLE = np.pi  # radians; an axis-angle beyond half a turn is not a face pose
MAX_FRAMES = 1_000_000
MAX_VALUES = 20_000_000  # per array: 100 expression values per frame for over 2 hours at 25 fps
KEY_GROUPS = (EXPRESSION_KEYS, JAW_KEYS, POSE_KEYS, GLOBAL_KEYS, NECK_KEYS, EYE_KEYS, FPS_KEYS, (TEXT_KEY,))
PARAM_EXPRESSION = 50  # expression coefficients in the parameter frames of the I2FET model's FLAME space
FLAME_DIM = PARAM_EXPRESSION + 3  # ... followed by the jaw's axis-angle


@dataclass(frozen=True)
class FlameSequence:
    expression: np.ndarray  # (T, N) float32
    jaw_pose: np.ndarray  # (T, 3) float32 axis-angle, radians
    global_pose: np.ndarray | None = None  # (T, 3)
    neck_pose: np.ndarray | None = None  # (T, 3)
    eye_pose: np.ndarray | None = None  # (T, 6) left then right
    fps: float | None = None
    notes: list[str] = field(default_factory=list)  # what the reader assumed, for the user's report
    texts: tuple[str, ...] = ()  # instructions describing the sequence (training data)

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])

    @property
    def frames(self) -> np.ndarray:
        """(T, FLAME_DIM) float32: the first PARAM_EXPRESSION expression coefficients and the jaw (training's space)."""
        expression = self.expression[:, :PARAM_EXPRESSION]
        if expression.shape[1] < PARAM_EXPRESSION:
            expression = np.pad(expression, ((0, 0), (0, PARAM_EXPRESSION - expression.shape[1])))
        return np.concatenate([expression, self.jaw_pose], 1).astype(np.float32)

    @property
    def num_expression(self) -> int:
        return int(self.expression.shape[1])


def _first(data: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in data and data[key] is not None:
            return key, data[key]
    return None, None


def _numbers(value, key: str, where: str, checked: bool = False) -> np.ndarray:
    """`value` as a float64 array, its size checked before numpy builds it (a pickle can repeat one list many times)
    unless the caller `checked` it."""
    try:
        if not checked:
            nested_size(value, MAX_VALUES)
        return np.asarray(value, dtype=np.float64)
    except UntrustedFileError as exc:
        raise InputError(f"'{key}' in {where} was refused: {exc}.") from None
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"'{key}' in {where} is not an array of ordinary numbers.") from None


def _frames(value, key: str, where: str, width: int | None = None) -> np.ndarray:
    """An (T, width) float array from (T, width), (width,) or with extra axes of size one."""
    array = _numbers(value, key, where)
    if array.ndim == 0:
        raise InputError(f"'{key}' in {where} is a single number, not per-frame values.")
    squeezed = array.reshape([n for n in array.shape[:-1] if n != 1] + [array.shape[-1]])
    if squeezed.ndim == 1:
        squeezed = squeezed[None, :]
    if squeezed.ndim != 2 or (width is not None and squeezed.shape[1] != width):
        want = f"(frames, {width})" if width is not None else "(frames, values)"
        raise InputError(f"'{key}' in {where} has shape {array.shape}; expected {want}.")
    if squeezed.shape[0] == 0:
        raise InputError(f"'{key}' in {where} has shape {array.shape}: it holds no frames.")
    if squeezed.shape[0] > MAX_FRAMES or squeezed.shape[1] == 0:
        raise InputError(f"'{key}' in {where} has shape {array.shape}, which is not a FLAME parameter sequence.")
    if not np.all(np.isfinite(squeezed)):
        raise InputError(f"'{key}' in {where} holds non-finite values.")
    return squeezed


def _stack_frames(items: list, where: str) -> dict:
    """A list of per-frame dictionaries -> one dictionary of stacked arrays."""
    if len(items) > MAX_FRAMES:
        raise InputError(f"{where} holds {len(items):,} frames, more than the {MAX_FRAMES:,} a sequence may have.")
    if not items or not all(isinstance(item, dict) for item in items):
        raise InputError(f"{where} holds a list that is not a list of per-frame dictionaries of FLAME parameters.")
    keys = set(items[0])
    if any(set(item) != keys for item in items):
        raise InputError(f"The per-frame dictionaries in {where} do not all have the same keys.")
    stacked = {}
    wanted = {_first(items[0], group)[0] for group in KEY_GROUPS} - {None}
    for key in keys & wanted:
        if key in FPS_KEYS or key == TEXT_KEY:
            stacked[key] = items[0][key]
            continue
        try:
            nested_size([item[key] for item in items], MAX_VALUES)
        except UntrustedFileError as exc:
            raise InputError(f"'{key}' in {where} was refused: {exc}.") from None
        rows = [_numbers(item[key], str(key), where, checked=True).reshape(-1) for item in items]
        if any(row.size != rows[0].size for row in rows):
            raise InputError(f"'{key}' in {where} does not have the same size in every frame.")
        stacked[key] = np.stack(rows)
    return stacked


def _read_npz(path: Path) -> tuple[dict, list[str]]:
    """The first key of each kind from an npz (headers checked before data); also every array name, for messages."""
    where = str(path)
    try:
        with NpzArrays(path) as npz:
            data = {}
            for group in KEY_GROUPS:
                key = next((k for k in group if k in npz.names), None)
                if key is None:
                    continue
                shape, _ = npz.header(key, text=key == TEXT_KEY)
                if math.prod(shape) > MAX_VALUES:
                    raise InputError(f"'{key}' in {where} has shape {shape}, more than the {MAX_VALUES:,} values a "
                                     f"FLAME parameter sequence may hold.")
                data[key] = npz.read(key, text=key == TEXT_KEY)
            return data, npz.names
    except UnreadableFile as exc:
        raise InputError(f"{where} is not a readable npz file ({exc}).") from None
    except UntrustedFileError as exc:
        if "not plain numbers" in str(exc):
            raise InputError(f"{where} holds pickled objects or other non-numbers inside the npz ({exc}); save "
                             f"plain numeric arrays.") from None
        raise InputError(f"The FLAME sequence {where} was refused: {exc}.") from None


def _read_raw(path: Path) -> tuple[dict, list[str]]:
    """The file's parameters by key (npz: only the keys that will be used) and the names of every key it holds."""
    where = str(path)
    if not path.is_file():
        raise InputError(f"The FLAME sequence file {path} does not exist." if not path.exists()
                         else f"The FLAME sequence path {path} is not a file.")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise InputError(f"Cannot read the FLAME sequence file {path}: {exc.strerror or exc}.") from None
    if magic.startswith(b"PK"):
        return _read_npz(path)
    try:
        data, _ = restricted_unpickle(path, "a FLAME parameter sequence")
    except UnreadableFile as exc:
        raise InputError(f"{where} is not a FLAME parameter sequence: it is neither a readable pickle nor an npz "
                         f"({exc}).") from None
    except UntrustedFileError as exc:
        raise InputError(f"The FLAME sequence {where} was refused: {exc}.") from None
    names = [str(k)[:40] for k in (data[0] if isinstance(data, list) and data and isinstance(data[0], dict)
                                    else data if isinstance(data, dict) else ())]
    if isinstance(data, list):
        data = _stack_frames(data, where)
    if not isinstance(data, dict):
        raise InputError(f"{where} holds a {type(data).__name__}, not a dictionary of FLAME parameters.")
    return data, names


def _pose_parts(data: dict, jaw_key, where: str) -> tuple[dict, list[str]]:
    """Global/neck/jaw/eye rotations from a combined pose array; the explicit keys are read by the caller."""
    key, value = _first(data, POSE_KEYS)
    if key is None:
        return {}, []
    pose = _frames(value, key, where)
    width = pose.shape[1]
    if width == 15:
        return {"global": pose[:, 0:3], "neck": pose[:, 3:6], "jaw": pose[:, 6:9], "eyes": pose[:, 9:15]}, [
            f"'{key}' read as FLAME's full pose (global, neck, jaw, eyes)."]
    if width == 6:
        return {"global": pose[:, 0:3], "jaw": pose[:, 3:6]}, [f"'{key}' read as global + jaw rotation (DECA)."]
    if width == 3 and jaw_key is not None:
        return {"global": pose}, [f"'{key}' read as the global rotation."]
    if width == 3:
        raise InputError(f"'{key}' in {where} has 3 values per frame, which could be the global or the jaw rotation; "
                         f"save it as 'jaw_pose' or 'global_pose'.")
    raise InputError(f"'{key}' in {where} has {width} values per frame; expected 6 (global + jaw) or 15 (FLAME's "
                     f"full pose).")


def load_flame_sequence(path: str | Path) -> FlameSequence:
    """Read a FLAME parameter sequence; bad files raise InputError with one sentence naming the problem."""
    with np.errstate(all="ignore"):  # overflowing values are refused by the checks, not reported as warnings
        return _load(check_input_name(path, "FLAME sequence file"))


def _load(path: Path) -> FlameSequence:
    where = str(path)
    data, names = _read_raw(path)
    exp_key, exp_value = _first(data, EXPRESSION_KEYS)
    if exp_key is None:
        raise InputError(f"{where} has no FLAME expression ({' / '.join(EXPRESSION_KEYS)}); it has "
                         f"{', '.join(sorted(names)[:8]) or 'no keys'}.")
    expression = _frames(exp_value, exp_key, where)
    frames = expression.shape[0]
    if np.abs(expression).max() > MAX_EXPRESSION:
        raise InputError(f"'{exp_key}' in {where} has values up to {np.abs(expression).max():.3g}, far beyond FLAME "
                         f"expression coefficients (|x| <= {MAX_EXPRESSION:g}).")
    jaw_key, jaw_value = _first(data, JAW_KEYS)
    parts, notes = _pose_parts(data, jaw_key, where)
    if jaw_key is not None:
        jaw = _frames(jaw_value, jaw_key, where, 3)
        if "jaw" in parts and not np.allclose(parts["jaw"], jaw, atol=1e-6):
            raise InputError(f"{where} gives the jaw rotation twice ('{jaw_key}' and the pose array) with different "
                             f"values.")
        parts["jaw"] = jaw
    for name, keys, width in (("global", GLOBAL_KEYS, 3), ("neck", NECK_KEYS, 3), ("eyes", EYE_KEYS, 6)):
        key, value = _first(data, keys)
        if key is not None:
            parts[name] = _frames(value, key, where, width)
    if "jaw" not in parts:
        parts["jaw"] = np.zeros((frames, 3))
        notes.append("The file has no jaw rotation; the jaw stays closed.")
    for name, value in parts.items():
        if value.shape[0] != frames:
            raise InputError(f"{where} has {frames} expression frames but {value.shape[0]} {name} rotations.")
        angle = np.linalg.norm(value.reshape(frames, -1, 3), axis=-1).max()
        if angle > MAX_ANGLE:
            raise InputError(f"The {name} rotation in {where} reaches {angle:.3g} radians, beyond a half turn; it is "
                             f"not an axis-angle face pose.")
    fps = None
    fps_key, fps_value = _first(data, FPS_KEYS)
    if fps_key is not None:
        fps_values = _numbers(fps_value, fps_key, where).reshape(-1)
        if fps_values.size == 0:
            raise InputError(f"'{fps_key}' in {where} is empty, not a number.")
        fps = float(fps_values[0])
        if not np.isfinite(fps) or not 1.0 <= fps <= 1000.0:
            raise InputError(f"'{fps_key}' in {where} is {fps!r}; a frame rate is between 1 and 1000.")

    texts: tuple[str, ...] = ()
    if data.get(TEXT_KEY) is not None:
        value = data[TEXT_KEY]
        items = list(value) if isinstance(value, (list, tuple)) else list(np.atleast_1d(value))
        if not items or not all(isinstance(t, str) and t.strip() for t in items):
            raise InputError(f"'{TEXT_KEY}' in {where} must be one or more non-empty instructions.")
        texts = tuple(str(t) for t in items)

    def f32(name):
        return None if name not in parts else np.ascontiguousarray(parts[name], dtype=np.float32)

    return FlameSequence(expression=expression.astype(np.float32), jaw_pose=f32("jaw"), global_pose=f32("global"),
                         neck_pose=f32("neck"), eye_pose=f32("eyes"), fps=fps, notes=notes, texts=texts)


def load_flame_sequences(folder: str | Path) -> list[FlameSequence]:
    """Every sequence file (.npz, .pkl) in `folder`, each with its `text`: FLAME-space training data."""
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".npz", ".pkl"))
    if not files:
        raise InputError(f"No FLAME sequence files (*.npz, *.pkl) in {folder}.")
    sequences = []
    for path in files:
        sequence = load_flame_sequence(path)
        if not sequence.texts or sequence.num_frames < 2:
            raise InputError(f"The FLAME training sequence {path} needs a '{TEXT_KEY}' describing it and at least two "
                             f"frames.")
        sequences.append(sequence)
    return sequences


def save_flame_sequence(path: str | Path, sequence: FlameSequence) -> Path:
    """Write `sequence` as a plain npz (written whole or not at all)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise InputError(f"FLAME sequences are written as .npz; {path.name} has another extension.")
    arrays = {"expression": np.asarray(sequence.expression, dtype=np.float32),
              "jaw_pose": np.asarray(sequence.jaw_pose, dtype=np.float32)}
    for name in ("global_pose", "neck_pose", "eye_pose"):
        value = getattr(sequence, name)
        if value is not None:
            arrays[name] = np.asarray(value, dtype=np.float32)
    if sequence.fps is not None:
        arrays["fps"] = np.float32(sequence.fps)
    if sequence.texts:
        arrays[TEXT_KEY] = np.array(sequence.texts, dtype=np.str_)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with atomic_output(path) as handle:
        handle.write(buffer.getvalue())
    return path
