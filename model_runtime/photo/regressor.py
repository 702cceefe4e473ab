"""The photo regressor: a small learned inverse from what the detector reports to the weights that made it.

The landmark fit (fit.py) models the detector's response to each channel as piecewise linear and additive; it is
neither (channels the detector follows only in part, lip shapes it mixes up, mixes it sees less than additively), so
the fit alone misreads weights by about 0.27 on average. The regressor learns the rest from renders of the default
head (train.py), as a correction to the fit's weights: its input is the fit's weights and every used landmark's offset from where the fitted pose puts the
neutral head (millimetres on the head, so any image size and small turn look the same), its output the 52 weights.

Stored as weights/photo-regressor.safetensors (float32 tensors) with photo-regressor.json beside it (its sha256, the
training recipe and the accuracy measured at training time). A file that is missing, damaged, from another landmark
model (another MediaPipe version or head) or that does not match its checksum is not used: the fit then reads the
expression without it, and says so in one warning.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from ..expression_space import NUM_CHANNELS
from ..paths import WEIGHTS_DIR, sha256_file
from .fit import PROJECTION

FORMAT = "i2fet.photo-regressor/1"
DEFAULT_PATH = WEIGHTS_DIR / "photo-regressor.safetensors"
OFFSET_SCALE_MM = 5.0  # landmark offsets enter the network in units of 5 mm (about the spread of a strong channel)
_LAYERS = ("layer0", "layer1", "layer2")


def features(model, observed: np.ndarray, fit) -> np.ndarray:
    """The regressor's input for one face: the fit's 52 weights, then each used landmark's (x, y) offset from the
    fitted neutral head (observed: (K,2) pixels of the used landmarks; fit: fit.FitResult)."""
    neutral = fit.scale * (model.points0 @ fit.rotation.T) @ PROJECTION.T + fit.shift
    offsets = (observed - neutral) * (1000.0 / fit.scale / OFFSET_SCALE_MM)
    return np.concatenate([fit.weights, offsets.reshape(-1)])


def _gelu(x: np.ndarray) -> np.ndarray:  # torch's GELU(approximate="tanh"), which the network is trained with
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@dataclass(frozen=True, eq=False)
class PhotoRegressor:
    landmark_ids: np.ndarray  # (K,) the landmarks it was trained on, in the detector's numbering
    mean: np.ndarray  # (F,) input standardisation
    std: np.ndarray  # (F,)
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weight (out,in), bias (out,)) per layer

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(F,) or (N,F) features -> (52,) or (N,52) weights in [0, 1]: the fit's weights (the features' first 52)
        corrected by the network."""
        x = np.asarray(x, dtype=np.float32)
        h = (x - self.mean) / self.std
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight.T + bias
            if i < len(self.layers) - 1:
                h = _gelu(h)
        return np.clip(x[..., :NUM_CHANNELS] + h, 0.0, 1.0)


class RegressorUnavailable(Exception):
    """Why the regressor file cannot be used (one sentence)."""


def _sha256(path: Path) -> str:
    return sha256_file(path)


def read_regressor(path: Path, landmark_ids: np.ndarray) -> PhotoRegressor:
    """The regressor stored at `path`, checked against its .json and the landmark model's landmarks; raises
    RegressorUnavailable (one sentence) when it cannot be used."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        raise RegressorUnavailable(f"{path.name} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegressorUnavailable(f"its description {meta_path.name} cannot be read ({type(exc).__name__})") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RegressorUnavailable(f"{meta_path.name} is not a {FORMAT} description")
    try:
        if _sha256(path) != meta.get("sha256"):
            raise RegressorUnavailable(f"{path.name} does not match the checksum in {meta_path.name}")

        tensors = load_file(str(path))
    except RegressorUnavailable:
        raise
    except Exception as exc:
        raise RegressorUnavailable(f"{path.name} cannot be read ({type(exc).__name__})") from None
    try:
        ids = tensors["landmark_ids"].astype(np.int64)
        mean, std = tensors["mean"].astype(np.float32), tensors["std"].astype(np.float32)
        layers = tuple((tensors[f"{n}.weight"].astype(np.float32), tensors[f"{n}.bias"].astype(np.float32))
                       for n in _LAYERS)
    except KeyError as exc:
        raise RegressorUnavailable(f"{path.name} lacks the tensor {exc}") from None
    if not np.array_equal(ids, np.asarray(landmark_ids, dtype=np.int64)):
        raise RegressorUnavailable(f"{path.name} was trained on another landmark model (another MediaPipe version "
                                   f"or head); retrain it with `python -m model_runtime.training.photo`")
    width = NUM_CHANNELS + 2 * ids.size
    ok = mean.shape == (width,) and std.shape == (width,) and np.all(std > 0)
    inputs = width
    for weight, bias in layers:
        ok = ok and weight.ndim == 2 and weight.shape[1] == inputs and bias.shape == (weight.shape[0],)
        inputs = weight.shape[0] if weight.ndim == 2 else -1
    ok = ok and inputs == NUM_CHANNELS
    ok = ok and all(np.isfinite(a).all() for a in (mean, std, *(t for pair in layers for t in pair)))
    if not ok:
        raise RegressorUnavailable(f"{path.name} holds tensors of the wrong shape or non-finite values")
    return PhotoRegressor(landmark_ids=ids, mean=mean, std=std, layers=layers)


_CACHE: dict[tuple, PhotoRegressor | str] = {}
_LOCK = threading.Lock()


def load_regressor(landmark_ids: np.ndarray, path: Path | None = None) -> PhotoRegressor | str:
    """The regressor, or why it cannot be used (a sentence fragment); read once per file version."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    key = (str(path), stamp, landmark_ids.tobytes())
    with _LOCK:
        if key not in _CACHE:
            try:
                _CACHE[key] = read_regressor(path, landmark_ids)
            except RegressorUnavailable as exc:
                _CACHE[key] = str(exc)
        return _CACHE[key]


__all__ = ["PhotoRegressor", "RegressorUnavailable", "features", "load_regressor", "read_regressor"]
