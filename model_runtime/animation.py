"""The Animation object and its files: `i2fet.animation/1` JSON and npz, and a Live Link Face-style CSV.

Files are validated on load so that a hand-edited or truncated file fails with one clear sentence instead of
producing a broken animation downstream (Blender, FBX). npz files are read with `allow_pickle=False`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .expression_space import ARKIT_CHANNELS, CHANNEL_INDEX
from .limits import FPS_RANGE, SAVE_FORMATS
from .paths import atomic_output, check_input_name, refuse_special_file

SCHEMA = "i2fet.animation/1"
LOAD_FORMATS = (".json", ".npz")
SEGMENT_KEYS = ("text", "start_frame", "end_frame", "label", "intensity", "confidence")
_VALUE_TOLERANCE = 1e-4

# Live Link Face CSV: timecode, count, the 52 shapes in the app's own order and capitalisation, then head and eye
# rotations (head yaw/pitch/roll from `head_rotation` when the animation has one; eye rotations are zeros).
LIVE_LINK_ORDER = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
LIVE_LINK_EXTRA = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                   "RightEyeYaw", "RightEyePitch", "RightEyeRoll")


@dataclass
class Animation:
    """T frames of the 52 ARKit weights at an integer fps, with the timeline of instruction segments."""

    frames: np.ndarray
    fps: int
    segments: list[dict[str, Any]] = field(default_factory=list)
    instruction: str = ""
    channels: list[str] = field(default_factory=lambda: list(ARKIT_CHANNELS))
    rig: str = "arkit52"
    model: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Optional (T, 3) head yaw, pitch, roll in radians (yaw > 0 towards the character's own left, pitch > 0 chin up,
    # roll > 0 towards the left shoulder); None when the instruction does not move the head.
    head_rotation: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Checked on creation, so no path (a damaged model, a bad conversion) can save or key NaN or stray values."""
        self.frames = np.ascontiguousarray(self.frames, dtype=np.float32)
        if self.head_rotation is not None:
            self.head_rotation = np.ascontiguousarray(self.head_rotation, dtype=np.float32)
            if self.head_rotation.shape != (self.frames.shape[0], 3):
                raise InputError(f"The head rotation needs one (yaw, pitch, roll) row per frame "
                                 f"({self.frames.shape[0]} rows), not an array of shape {self.head_rotation.shape}.")
            if not np.isfinite(self.head_rotation).all() or np.abs(self.head_rotation).max(initial=0) > math.pi:
                raise InputError("The head rotation must hold finite angles between -pi and pi radians.")
        if self.frames.ndim != 2 or self.frames.shape[1] != len(self.channels):
            raise InputError(f"An animation needs one row of {len(self.channels)} weights per frame, not an array of "
                             f"shape {self.frames.shape}.")
        bad_rows = np.flatnonzero(~np.isfinite(self.frames).all(axis=1))
        if bad_rows.size:
            raise InputError(f"The animation holds NaN or infinite weights (first at frame {int(bad_rows[0])}); "
                             f"nothing was written.")
        if self.rig == "arkit52" and self.frames.size and (
                self.frames.min() < -_VALUE_TOLERANCE or self.frames.max() > 1 + _VALUE_TOLERANCE):
            raise InputError("ARKit weights must lie in [0, 1]; the animation holds values outside it.")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps if self.num_frames else 0.0

    # ----- dictionaries -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "instruction": self.instruction,
            "fps": int(self.fps),
            "rig": self.rig,
            "channels": list(self.channels),
            "frames": [[round(float(v), 6) for v in row] for row in self.frames],
            "segments": [dict(s) for s in self.segments],
            "model": dict(self.model),
            "warnings": list(self.warnings),
            **({} if self.head_rotation is None else
               {"head_rotation": [[round(float(v), 6) for v in row] for row in self.head_rotation]}),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "the animation") -> "Animation":
        """Validate a decoded `i2fet.animation/1` document; every problem becomes one InputError sentence."""

        def bad(reason: str) -> InputError:
            return InputError(f"{source} is not a valid i2fet animation: {reason}.")

        if not isinstance(data, dict):
            raise bad("the top level must be an object")
        if data.get("schema") != SCHEMA:
            raise bad(f"'schema' must be {SCHEMA!r}, found {data.get('schema')!r}")
        fps = data.get("fps")
        if isinstance(fps, bool) or not isinstance(fps, int) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise bad(f"'fps' must be an integer from {FPS_RANGE[0]} to {FPS_RANGE[1]}, found {fps!r}")
        channels = data.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise bad("'channels' must be a list of names")
        rig = data.get("rig", "arkit52")
        if rig == "arkit52":
            unknown = [c for c in channels if c not in CHANNEL_INDEX]
            if unknown or len(set(channels)) != len(ARKIT_CHANNELS):
                raise bad("'channels' must hold each of the 52 ARKit names once"
                          + (f" (unknown: {', '.join(unknown[:3])})" if unknown else ""))
        elif len(set(channels)) != len(channels) or not channels:
            raise bad("'channels' must be non-empty and without repeats")
        try:
            frames = np.asarray(data.get("frames"), dtype=np.float64)
        except (TypeError, ValueError):
            raise bad("'frames' must be a list of rows of numbers") from None
        if frames.ndim != 2 or frames.shape[0] < 1 or frames.shape[1] != len(channels):
            raise bad(f"'frames' must have one row per frame and {len(channels)} columns, found shape {frames.shape}")
        if not np.isfinite(frames).all():
            raise bad("'frames' contains NaN or infinite values")
        if rig == "arkit52":
            if frames.min() < -_VALUE_TOLERANCE or frames.max() > 1 + _VALUE_TOLERANCE:
                raise bad("ARKit weights must lie in [0, 1]")
            order = [channels.index(c) for c in ARKIT_CHANNELS]
            frames, channels = np.clip(frames[:, order], 0.0, 1.0), list(ARKIT_CHANNELS)
        segments = data.get("segments", [])
        if not isinstance(segments, list):
            raise bad("'segments' must be a list")
        for i, seg in enumerate(segments):
            _check_segment(seg, i, frames.shape[0], bad)
        model = data.get("model", {})
        instruction = data.get("instruction", "")
        warnings = data.get("warnings", [])
        if not isinstance(model, dict) or not isinstance(instruction, str):
            raise bad("'model' must be an object and 'instruction' a string")
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise bad("'warnings' must be a list of strings")
        head = data.get("head_rotation")
        if head is not None:
            try:
                head = np.asarray(head, dtype=np.float64)
            except (TypeError, ValueError):
                raise bad("'head_rotation' must be a list of [yaw, pitch, roll] rows") from None
            if head.shape != (frames.shape[0], 3):
                raise bad(f"'head_rotation' must have one [yaw, pitch, roll] row per frame, found shape {head.shape}")
            if not np.isfinite(head).all() or np.abs(head).max(initial=0) > math.pi:
                raise bad("'head_rotation' must hold finite angles between -pi and pi radians")
        return cls(frames=frames.astype(np.float32), fps=fps, segments=[dict(s) for s in segments],
                   instruction=instruction, channels=list(channels), rig=rig, model=dict(model),
                   warnings=list(warnings), head_rotation=None if head is None else head.astype(np.float32))

    # ----- files --------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write by extension (.json, .npz, .csv); atomic, so a failure leaves no file behind."""
        target = Path(path)
        suffix = check_output_suffix(target, SAVE_FORMATS, "animation")
        payload = {".json": self._json_bytes, ".npz": self._npz_bytes, ".csv": self._csv_bytes}[suffix]()
        with atomic_output(target) as handle:
            handle.write(payload)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Animation":
        source = check_input_name(path, "animation file")
        suffix = check_output_suffix(source, LOAD_FORMATS, "animation")
        refuse_special_file(source, "animation file", "a .json or .npz file")
        if source.is_dir():
            raise InputError(f"The animation file {source} is a folder, not a file.")
        if not source.is_file():
            raise InputError(f"The animation file {source} does not exist.")
        if suffix == ".json":
            try:
                data = json.loads(source.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # Recursion: nested 100k deep
                raise InputError(f"{source} is not valid JSON ({exc.__class__.__name__}).") from None
            return cls.from_dict(data, source=str(source))
        try:
            with np.load(source, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                meta["frames"] = archive["frames"]
                meta["channels"] = [str(c) for c in archive["channels"]]
                if "head_rotation" in archive.files:
                    meta["head_rotation"] = archive["head_rotation"]
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError,
                RecursionError) as exc:
            raise InputError(f"{source} is not a readable i2fet npz file ({exc.__class__.__name__}).") from None
        return cls.from_dict(meta, source=str(source))

    def _json_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def _npz_bytes(self) -> bytes:
        meta = self.to_dict()
        del meta["frames"], meta["channels"]
        meta.pop("head_rotation", None)
        arrays = {} if self.head_rotation is None else {"head_rotation": self.head_rotation}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, frames=self.frames, channels=np.array(self.channels),
                            meta=np.array(json.dumps(meta, ensure_ascii=False)), **arrays)
        return buffer.getvalue()

    def _csv_bytes(self) -> bytes:
        if self.rig != "arkit52":
            raise InputError("Only ARKit animations can be written as Live Link Face CSV.")
        columns = [CHANNEL_INDEX[c] for c in LIVE_LINK_ORDER]
        names = [c[0].upper() + c[1:] for c in LIVE_LINK_ORDER] + list(LIVE_LINK_EXTRA)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Timecode", "BlendShapeCount", *names])
        eyes = ["0"] * (len(LIVE_LINK_EXTRA) - 3)
        for index, row in enumerate(self.frames):
            values = [_csv_number(v) for v in row[columns]]
            head = ["0"] * 3 if self.head_rotation is None else [_csv_number(v) for v in self.head_rotation[index]]
            writer.writerow([live_link_timecode(index, self.fps), len(names), *values, *head, *eyes])
        return out.getvalue().encode("utf-8")


def _csv_number(value) -> str:
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def live_link_timecode(frame: int, fps: int) -> str:
    """HH:MM:SS:FF.mmm as Live Link Face writes it (FF the frame within the second, .mmm the sub-frame)."""
    seconds, ff = divmod(frame, fps)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{ff:02d}.000"


def check_output_suffix(path: Path, allowed: tuple[str, ...], what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise InputError(f"Unknown {what} file extension {path.suffix or '(none)'!r} for {path.name}; "
                         f"use one of {', '.join(allowed)}.")
    return suffix


def _check_segment(seg: Any, index: int, num_frames: int, bad) -> None:
    if not isinstance(seg, dict):
        raise bad(f"segment {index} must be an object")
    missing = [k for k in SEGMENT_KEYS if k not in seg]
    if missing:
        raise bad(f"segment {index} lacks {', '.join(missing)}")
    start, end = seg["start_frame"], seg["end_frame"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start <= end < num_frames:
        raise bad(f"segment {index} frames must be integers with 0 <= start_frame <= end_frame < {num_frames}")
    for key in ("intensity", "confidence"):
        value = seg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(f"segment {index} {key} must be a number")
