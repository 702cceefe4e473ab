"""Start from a photo: read a starting expression (52 ARKit weights) and head rotation from a picture of a face.

    from model_runtime.photo import read_start_expression
    start = read_start_expression("me.jpg", neutral_image="me-neutral.jpg")  # the neutral photo is optional
    start.weights        # (52,) float32 in [0, 1]
    start.rotation_deg   # (yaw, pitch, roll) of the head, degrees (render.rotation_matrix's convention)

Pipeline: load the image (image.py) -> MediaPipe's Face Landmarker, largest face: 51 blendshape scores and the head's
transform (blendshapes.py) -> each score above the neutral face's score mapped onto the default head's weight by the
per-channel calibration measured on renders of the default head (calibration.py), the smile of an open mouth bounded
by where its corners sit and how far they hang below the upper lip, the smile of closed lips given a floor by the
mouth's width (mouth.py), and browDown bounded by the smile (a smile's cheek raise is what the landmarker reads as
lowered brows) unless the inner brows are measured lowered against the neutral photo (brows.py). The neutral face's
score, mouth width and brows are the person's own when a neutral photo of them is given, else the default head's (a
per-channel dead zone).

Never imports bpy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

TURNED_DEG = 30.0  # beyond this the expression read is less reliable (a warning says so)


@dataclass(frozen=True)
class StartExpression:
    """What a photo says about the face in it."""

    weights: np.ndarray  # (52,) float32 ARKit weights in [0, 1], canonical channel order
    rotation_deg: tuple[float, float, float]  # head yaw, pitch, roll in degrees
    warnings: list[str]  # things the user should know, each one sentence
    scores: np.ndarray  # (52,) float32: the landmarker's own scores before calibration (tongueOut 0: not read)
    neutral_used: bool  # whether a neutral photo's reading was removed
    faces_found: int
    image_size: tuple[int, int]  # (width, height) as analysed (after EXIF rotation and any downscaling)


def read_start_expression(path: str | os.PathLike,
                          neutral_image: str | os.PathLike | None = None) -> StartExpression:
    """The starting expression of the largest face in the image at `path`, less what the same person's neutral face
    in `neutral_image` already shows; InputError (one sentence) when a file cannot be used: missing, not an image,
    too large or small, or no face in it."""
    from ..errors import InputError
    from .blendshapes import get_landmarker, read_neutral
    from .calibration import load_calibration
    from .image import load_image

    rgb, _ = load_image(path)
    calibration = load_calibration()
    reading = get_landmarker().read(rgb)
    if reading is None:  # named, since a neutral image may come with it
        raise InputError(f"No face was found in the start image {path}; use a clear, well-lit photo of one face seen "
                         f"from the front.")
    neutral = read_neutral(neutral_image) if neutral_image is not None else None
    warnings = []
    weights = calibration.read(reading, neutral)
    rotation = calibration.rotation(reading.rotation_deg)
    if reading.faces_found > 1:
        warnings.append(f"The image shows {reading.faces_found} faces; the largest one was used.")
    if max(abs(a) for a in rotation) > TURNED_DEG:
        warnings.append(f"The head is turned far from the camera (yaw {rotation[0]:.0f}, pitch {rotation[1]:.0f}, "
                        f"roll {rotation[2]:.0f} degrees); the expression read from it is less reliable.")
    return StartExpression(weights=weights.astype(np.float32), rotation_deg=tuple(round(a, 2) for a in rotation),
                           warnings=warnings, scores=reading.scores.astype(np.float32),
                           neutral_used=neutral is not None, faces_found=reading.faces_found,
                           image_size=(int(rgb.shape[1]), int(rgb.shape[0])))


__all__ = ["StartExpression", "read_start_expression"]
