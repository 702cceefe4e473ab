"""Turn a face video into keyframes: every frame read by the Face Landmarker (VIDEO running mode), calibrated like a
photo (calibration.py), frames without a face filled from their neighbours, smoothed by a One Euro filter (blinks
left sharp), as an Animation at the video's frame rate.

    from model_runtime.photo.video import track_video
    result = track_video("me.mp4")          # result.animation, result.missing_frames, result.warnings

OpenCV (opencv-python-headless, requirements/photo.txt) decodes the video. Never imports bpy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..expression_space import CHANNEL_INDEX, NUM_CHANNELS
from ..paths import check_input_name, refuse_special_file

MAX_SIDE = 640  # frames are scaled down to this longest side before reading (the landmarker looks at 256 pixels)
MAX_SOURCE_PIXELS = 7680 * 4320  # larger frames are refused (8K is the largest accepted)
VFR_TOLERANCE = 0.5  # a frame's timestamp may be off its constant-rate place by this share of a frame
MIN_CUTOFF_HZ = 1.5  # One Euro filter: smoothing of slow movement (lower: smoother, more lag)
BETA = 0.5  # One Euro filter: how fast the cut-off rises with speed (higher: less lag on fast movement)
D_CUTOFF_HZ = 1.0
SHARP = ("eyeBlinkLeft", "eyeBlinkRight")  # left unfiltered: a blink lasts 3 to 5 frames
# FFmpeg's own complaints ("moov atom not found") would come before the one sentence a bad video gets; read when the
# process opens its first video, so set here; a user's own setting wins
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@dataclass
class TrackResult:
    animation: object  # model_runtime.animation.Animation
    missing_frames: list[int]  # frames without a face, filled from their neighbours
    warnings: list[str] = field(default_factory=list)
    source_fps: float = 0.0
    size: tuple[int, int] = (0, 0)  # (width, height) as read, after any scaling down


def one_euro(values: np.ndarray, fps: float, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA,
             d_cutoff: float = D_CUTOFF_HZ) -> np.ndarray:
    """The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) along axis 0 of (T, C) values sampled at `fps`:
    a low-pass filter whose cut-off rises with the signal's speed, so that slow jitter is removed and fast movement
    is followed without lag."""
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    if not len(x):
        return out
    rate = float(fps)

    def alpha(cutoff):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    out[0] = x[0]
    speed = np.zeros(x.shape[1:])
    a_d = alpha(d_cutoff)
    for t in range(1, len(x)):
        speed = a_d * (x[t] - out[t - 1]) * rate + (1.0 - a_d) * speed
        a = alpha(min_cutoff + beta * np.abs(speed))
        out[t] = a * x[t] + (1.0 - a) * out[t - 1]
    return out


def fill_missing(frames: np.ndarray) -> np.ndarray:
    """(T, C) with NaN rows -> linearly interpolated between the nearest read frames (held at the ends)."""
    found = np.all(np.isfinite(frames), axis=1)
    index = np.arange(len(frames))
    out = frames.copy()
    for c in range(frames.shape[1]):
        out[:, c] = np.interp(index, index[found], frames[found, c])
    return out


def _open(path: Path):
    import cv2

    if path.is_dir():
        raise InputError(f"The video {path} is a folder, not a video file.")
    if not path.exists():
        raise InputError(f"The video {path} does not exist.")
    refuse_special_file(path, "video", "a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"The video {path} cannot be read: permission denied.")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"The video {path} is not a video file OpenCV can read (MP4, AVI, MOV, MKV, WebM, ...).")
    return capture


# Leading bytes of image formats FFmpeg also decodes as a "video": one frame of them is a renamed photo, while
# several (a Motion-JPEG stream, an animated PNG, GIF or WebP) are a real clip.
_IMAGE_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"),
                     (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"))


def _image_kind(path: Path) -> str | None:
    with open(path, "rb") as handle:
        head = handle.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for signature, kind in _IMAGE_SIGNATURES if head.startswith(signature)), None)


def _frames(capture, path: Path):
    """(index, rgb, timestamp_ms) of every frame, scaled down to MAX_SIDE; refuses a variable frame rate."""
    import cv2

    from ..animation import FPS_RANGE

    fps = capture.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0:
        raise InputError(f"The video {path} does not say its frame rate; re-encode it at a constant frame rate.")
    if not FPS_RANGE[0] <= round(fps) <= FPS_RANGE[1]:
        raise InputError(f"The video {path} runs at {fps:g} fps; frame rates from {FPS_RANGE[0]} to "
                         f"{FPS_RANGE[1]} are supported.")
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        stamp = capture.get(cv2.CAP_PROP_POS_MSEC)
        if index > 0 and stamp > 0 and abs(stamp - index * 1000.0 / fps) > VFR_TOLERANCE * 1000.0 / fps:
            raise InputError(f"The video {path} has a variable frame rate (frame {index} is at {stamp:.0f} ms, not "
                             f"{index * 1000.0 / fps:.0f} ms); re-encode it at a constant frame rate.")
        height, width = bgr.shape[:2]
        if width * height > MAX_SOURCE_PIXELS:
            raise InputError(f"The video {path} is {width}x{height} pixels; videos above 8K (7680x4320) are "
                             f"refused, so scale it down first.")
        scale = MAX_SIDE / max(width, height)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA)
        yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index * 1000.0 / fps, fps
        index += 1


def track_video(path: str | os.PathLike, neutral_image: str | os.PathLike | None = None,
                progress: Callable[[int, int], None] | None = None) -> TrackResult:
    """Read every frame of the video at `path`; InputError (one sentence) when it cannot be used: missing,
    unreadable, no frames, a variable frame rate, larger than 8K, or no face in any frame. `progress(done, total)`
    is called as frames are read; raising Cancelled from it stops the reading."""
    import cv2

    from ..animation import Animation
    from .blendshapes import FaceLandmarker, read_neutral
    from .calibration import load_calibration

    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"The video must be given as a file path (str or Path), not {type(path).__name__}.")
    if not os.fspath(path).strip():
        raise InputError("No video was given; name a video file (MP4, AVI, MOV, ...).")
    source = check_input_name(path, "video")
    neutral = read_neutral(neutral_image) if neutral_image is not None else None
    calibration = load_calibration()
    capture = _open(source)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    landmarker = FaceLandmarker(video=True)
    rows, fps, size = [], 0.0, (0, 0)
    try:
        for index, rgb, stamp, fps in _frames(capture, source):
            reading = landmarker.read(rgb, timestamp_ms=round(stamp))
            rows.append(calibration.read(reading, neutral) if reading is not None else np.full(NUM_CHANNELS, np.nan))
            size = (int(rgb.shape[1]), int(rgb.shape[0]))
            if progress is not None:
                progress(index + 1, max(total, index + 1))
    finally:
        capture.release()
        landmarker.close()
    if not rows:
        raise InputError(f"The video {source} has no frames that OpenCV can decode.")
    still = _image_kind(source) if len(rows) == 1 else None
    if still is not None:
        raise InputError(f"The video {source} is a still {still} image, not a video; read a photo with "
                         f"'i2fet generate --start-image' or Start from Photo.")
    frames = np.array(rows)
    missing = np.nonzero(~np.all(np.isfinite(frames), axis=1))[0]
    if missing.size == len(frames):
        raise InputError(f"No face was found in any of the {len(frames)} frames of {source}; use a video of one "
                         f"face seen from the front.")
    filled = fill_missing(frames)
    smooth = one_euro(filled, fps)
    for name in SHARP:
        smooth[:, CHANNEL_INDEX[name]] = filled[:, CHANNEL_INDEX[name]]
    rate = int(round(fps))
    warnings = []
    if missing.size:
        warnings.append(f"No face was found in {missing.size} of {len(frames)} frames "
                        f"({_spans(missing.tolist())}); they were filled from the frames around them.")
    if abs(rate - fps) > 1e-3:
        warnings.append(f"The video's {fps:.3f} fps is stored as {rate} fps (the animation's rate is whole), "
                        f"{abs(rate / fps - 1) * 100:.1f}% {'faster' if rate > fps else 'slower'}.")
    animation = Animation(frames=np.clip(smooth, 0.0, 1.0), fps=rate, instruction="", warnings=warnings,
                          model={"source": "video", "video": source.name, "frames_without_face": int(missing.size)})
    return TrackResult(animation=animation, missing_frames=missing.tolist(), warnings=warnings, source_fps=fps,
                       size=size)


def _spans(frames: list[int]) -> str:
    """[3, 4, 5, 9] -> 'frames 3-5, 9' (at most five spans shown)."""
    spans, start = [], frames[0]
    for previous, current in zip(frames, frames[1:] + [None]):
        if current != previous + 1 if current is not None else True:
            spans.append(f"{start}-{previous}" if previous != start else f"{start}")
            start = current
    shown = ", ".join(spans[:5]) + (f" and {len(spans) - 5} more" if len(spans) > 5 else "")
    return f"frame{'s' if len(frames) > 1 else ''} {shown}"
