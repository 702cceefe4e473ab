"""Start from a photo: read a starting expression (52 ARKit weights) and head rotation from a picture of a face.

    from model_runtime.photo import read_start_expression
    start = read_start_expression("me.jpg")
    start.weights        # (52,) float32 in [0, 1]
    start.rotation_deg   # (yaw, pitch, roll) of the head, degrees (render.rotation_matrix's convention)

Pipeline: load the image (image.py) -> MediaPipe face mesh, largest face (landmarks.py) -> the landmarks the
project has measured as reliable, with their measured response to each channel (correspondence.py) -> a joint fit of
weights and a weak-perspective pose (fit.py) -> the photo regressor's correction of the fitted weights (regressor.py,
trained by training/photo.py). Without a usable regressor file the fit's weights are refined instead by
FIT_ONLY_REFINE_STEPS rounds of render-and-compare (the default head is rendered with the current estimate, the
detector is run on that render, and the estimate is moved by the difference between the two readings), with a
warning.

Never imports bpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..heads.head import load_default_head
from ..heads.render import render_expressions
from .correspondence import load_landmark_model
from .fit import euler_deg, fit_landmarks
from .image import load_image
from .landmarks import get_detector
from .regressor import features, load_regressor

REFINE_STEPS = 0  # with the regressor: measured, a render-and-compare round made it worse (0.110 -> 0.145)
FIT_ONLY_REFINE_STEPS = 2  # without it (its file missing or unusable)
REFINE_SIZE = 256  # the render-and-compare renders' size (the calibration renders' size)


@dataclass(frozen=True)
class StartExpression:
    """What a photo says about the face in it."""

    weights: np.ndarray  # (52,) float32 ARKit weights in [0, 1], canonical channel order
    rotation_deg: tuple[float, float, float]  # head yaw, pitch, roll in degrees
    warnings: list[str]  # things the user should know, each one sentence
    landmarks_used: int  # detector landmarks the fit used
    residual_mm: float  # RMS landmark misfit of the first fit, millimetres on the default head
    faces_found: int
    image_size: tuple[int, int]  # (width, height) as analysed (after EXIF rotation and any downscaling)


def read_start_expression(path: str | os.PathLike) -> StartExpression:
    """The starting expression of the largest face in the image at `path`; InputError (one sentence) when the file
    cannot be used: missing, not an image, too large or small, or no face in it."""
    rgb, _ = load_image(path)
    detector = get_detector()
    detection = detector.detect(rgb)
    head = load_default_head()
    model = load_landmark_model(head)
    regressor = load_regressor(model.landmark_ids)
    warnings = []
    if isinstance(regressor, str):
        warnings.append(f"The photo regressor cannot be used ({regressor}); the expression was read by the landmark "
                        f"fit alone, which is less accurate.")
        regressor = None
    first = _fit(model, detection.points)
    observed = _estimate(model, regressor, detection.points, first)
    weights = observed.copy()
    rotation = euler_deg(first.rotation)
    for _ in range(REFINE_STEPS if regressor is not None else FIT_ONLY_REFINE_STEPS):
        weights = _refined(weights, observed, rotation, model, regressor, head, detector)
    if detection.faces_found > 1:
        warnings.append(f"The image shows {detection.faces_found} faces; the largest one was used.")
    if max(abs(a) for a in rotation) > 30.0:
        warnings.append(f"The head is turned far from the camera (yaw {rotation[0]:.0f}, pitch {rotation[1]:.0f}, "
                        f"roll {rotation[2]:.0f} degrees); the expression read from it is less reliable.")
    return StartExpression(weights=weights.astype(np.float32), rotation_deg=tuple(round(a, 2) for a in rotation),
                           warnings=warnings, landmarks_used=int(model.landmark_ids.size),
                           residual_mm=round(first.rms_mm, 3), faces_found=detection.faces_found,
                           image_size=(int(rgb.shape[1]), int(rgb.shape[0])))


def _fit(model, points: np.ndarray):
    return fit_landmarks(points[model.landmark_ids, :2], model.points0, model.slopes, model.segments, model.sigma_mm)


def _estimate(model, regressor, points: np.ndarray, fit) -> np.ndarray:
    """The weights read from one detection: the regressor's, or the fit's where there is no regressor."""
    if regressor is None:
        return fit.weights
    return regressor.predict(features(model, points[model.landmark_ids, :2], fit)).astype(np.float64)


def _refined(weights, observed, rotation, model, regressor, head, detector) -> np.ndarray:
    """One render-and-compare step: weights + (reading of the photo - reading of the head rendered with weights)."""
    image = render_expressions(weights.astype(np.float32), REFINE_SIZE, head, rotation_deg=rotation)
    try:
        rendered = detector.detect(image)
    except InputError:  # the detector loses our own head at this estimate: keep the estimate as it is
        return weights
    again = _estimate(model, regressor, rendered.points, _fit(model, rendered.points))
    return np.clip(weights + (observed - again), 0.0, 1.0)


__all__ = ["StartExpression", "read_start_expression"]
