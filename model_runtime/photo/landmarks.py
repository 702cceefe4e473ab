"""Face landmarks with MediaPipe's face mesh (the legacy `solutions.face_mesh` graph, fully offline).

The graph and both models it runs (face_detection_short_range.tflite, face_landmark_with_attention.tflite) ship inside
the `mediapipe==0.10.21` wheel; nothing is downloaded. With refined landmarks it gives 478 points per face: the 468
points of the canonical face mesh plus 5 per iris.
"""

from __future__ import annotations

import importlib.metadata
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, WeightsError
from .blendshapes import NO_FACE, quiet_native_stderr

MAX_FACES = 5  # faces looked for; the largest one is used
MIN_DETECTION_CONFIDENCE = 0.5
_HINT = "pip install --no-deps -r requirements/photo.txt"


@dataclass(frozen=True)
class Detection:
    points: np.ndarray  # (478,3) float64: x, y in pixels of the analysed image, z (depth, same scale as x)
    faces_found: int


def mediapipe_version() -> str:
    try:
        return importlib.metadata.version("mediapipe")
    except Exception:
        return "unknown"


class FaceMeshDetector:
    """One MediaPipe face-mesh graph, reused across images; `detect` is serialised (the graph is not re-entrant)."""

    def __init__(self) -> None:
        try:
            with quiet_native_stderr():
                from mediapipe.python.solutions import face_mesh

                self._graph = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=MAX_FACES,
                                                 refine_landmarks=True,
                                                 min_detection_confidence=MIN_DETECTION_CONFIDENCE)
                # the graph loads its models on its own threads after the constructor returns, and their log lines
                # would reach the terminal then; one blank frame waits for them here, where stderr is hidden
                self._graph.process(np.zeros((64, 64, 3), np.uint8))
        except ImportError as exc:
            raise WeightsError(f"Starting from a photo needs MediaPipe's face mesh ({_HINT}); "
                               f"it cannot be imported ({exc}).") from None
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> Detection:
        """Landmarks of the largest face in an (H,W,3) uint8 RGB image; InputError when there is none."""
        height, width = rgb.shape[:2]
        with self._lock, quiet_native_stderr():
            result = self._graph.process(np.ascontiguousarray(rgb))
        faces = result.multi_face_landmarks or []
        if not faces:
            raise InputError(NO_FACE)
        clouds = [np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark]) for face in faces]
        areas = [np.prod(c[:, :2].max(axis=0) - c[:, :2].min(axis=0)) for c in clouds]
        return Detection(points=clouds[int(np.argmax(areas))], faces_found=len(faces))


_DETECTOR: FaceMeshDetector | None = None
_DETECTOR_LOCK = threading.Lock()


def get_detector() -> FaceMeshDetector:
    """The process's detector, created on first use (about 0.6 s: importing MediaPipe and building the graph)."""
    global _DETECTOR
    with _DETECTOR_LOCK:
        if _DETECTOR is None:
            _DETECTOR = FaceMeshDetector()
        return _DETECTOR
