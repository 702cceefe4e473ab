"""The options of a bake, declared once: `i2fet bake` and the Blender batch baker (`i2fet_blender/batch.py`) add them
to their parsers from here, check their values here, and take the FBX presets from here.

Without bpy, because `i2fet bake` parses and checks them before it starts the batch baker in Blender's Python (and
hands them on with `forward`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .device import DEVICE_CHOICES
from .errors import InputError
from .generators.registry import DEFAULT_MODEL, MODEL_NAMES
from .limits import (FPS_RANGE, MAX_DURATION_S, MAX_INTENSITY_SCALE, SAVE_FORMATS, check_duration, check_fps,
                     check_intensity_scale, check_seed)


@dataclass(frozen=True)
class FbxPreset:
    label: str
    description: str
    exporter: dict  # keyword arguments of Blender's FBX exporter


# Axes and scale per target engine. Unity: Y up, -Z forward, scale baked so objects import at 1.0 with no -90° X.
# Unreal: Z up, -Y forward (Unreal converts), Blender metres written as FBX centimetres (UnitScaleFactor 100).
FBX_PRESETS: dict[str, FbxPreset] = {
    "UNITY": FbxPreset("Unity", "Y up, -Z forward, unit scale applied", dict(
        axis_forward="-Z", axis_up="Y", apply_unit_scale=True, apply_scale_options="FBX_SCALE_ALL",
        bake_space_transform=True, global_scale=1.0)),
    "UNREAL": FbxPreset("Unreal", "Z up, -Y forward, centimetres", dict(
        axis_forward="-Y", axis_up="Z", apply_unit_scale=True, apply_scale_options="FBX_SCALE_NONE",
        bake_space_transform=False, global_scale=1.0)),
    "BLENDER": FbxPreset("Blender", "Blender axes and units", dict(
        axis_forward="-Z", axis_up="Y", apply_unit_scale=True, apply_scale_options="FBX_SCALE_NONE",
        bake_space_transform=False, global_scale=1.0)),
}
DEFAULT_PRESET = "UNITY"

# Blender's scene range (Scene.frame_start/frame_end): a start outside it would be clamped without a word.
START_FRAME_RANGE = (0, 1_048_574)

# What each output of a bake is written as, so its name must say so.
OUTPUT_SUFFIXES = {"out": (".blend",), "fbx": (".fbx",), "preview": (".png",), "animation": SAVE_FORMATS}


@dataclass(frozen=True)
class _Option:
    flag: str
    settings: dict
    is_path: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


_OPTIONS = (
    _Option("--blend", dict(help="bake onto a face in this .blend instead of the default head"), is_path=True),
    _Option("--object", dict(help="the face mesh in --blend")),
    _Option("--fps", dict(type=int, help=f"frames per second, {FPS_RANGE[0]}-{FPS_RANGE[1]} (default: the .blend's, "
                                         f"or 30)")),
    _Option("--start-frame", dict(type=int, default=1, help="the first frame of the animation (default 1)")),
    _Option("--seed", dict(type=int, default=0, help="random seed (default 0)")),
    _Option("--duration", dict(type=float, help=f"stretch the whole animation to this many seconds "
                                                f"(0-{MAX_DURATION_S:g}]")),
    _Option("--intensity", dict(type=float, default=1.0,
                                help=f"scale every expression (0-{MAX_INTENSITY_SCALE:g}, default 1)")),
    _Option("--preset", dict(default=DEFAULT_PRESET, choices=tuple(FBX_PRESETS), help="FBX axes/scale")),
    _Option("--device", dict(default="auto", choices=DEVICE_CHOICES, help="torch device")),
    _Option("--model", dict(default=DEFAULT_MODEL, choices=MODEL_NAMES, help=f"generator (default {DEFAULT_MODEL})")),
    _Option("--start-image", dict(help="start from the expression of the face in this photo (PNG, JPEG, ...)"),
            is_path=True),
    _Option("--neutral-image", dict(help="a photo of the same person's face at rest, whose reading is removed from "
                                         "--start-image's"), is_path=True),
    _Option("--life", dict(action=argparse.BooleanOptionalAction, default=False,
                           help="add natural idle motion: blinks and small gaze shifts (default off, so the same "
                                "instruction bakes the same)")),
    _Option("--flame-model", dict(help="your FLAME model file, for a --blend whose face is a FLAME head (default: "
                                       "I2FET_FLAME_MODEL)"), is_path=True),
)


def add_bake_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every bake shares (the face, timing, seed, intensity, FBX preset, device, photos, idle motion,
    FLAME file)."""
    for option in _OPTIONS:
        parser.add_argument(option.flag, **option.settings)


def check_bake_options(values: Mapping[str, Any]) -> None:
    """InputError (one sentence) for a value the bake would refuse later: before Blender starts or a job runs."""
    if values.get("fps") is not None:
        check_fps(values["fps"])
    check_seed(values.get("seed", 0))
    check_intensity_scale(values.get("intensity", 1.0))
    if values.get("duration") is not None:
        check_duration(values["duration"])
    check_fbx_preset(values.get("preset", DEFAULT_PRESET))
    if values.get("start_frame") is not None:
        check_start_frame(values["start_frame"])
    if values.get("device") is not None and values["device"] not in DEVICE_CHOICES:
        raise InputError(f"Unknown device {values['device']!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    for field, suffixes in OUTPUT_SUFFIXES.items():
        path = values.get(field)
        if path and Path(path).suffix.lower() not in suffixes:
            raise InputError(f"The {field} file {path} must end in {' or '.join(suffixes)}, the format written there.")


def check_start_frame(frame) -> None:
    low, high = START_FRAME_RANGE
    if isinstance(frame, bool) or not isinstance(frame, int) or not low <= frame <= high:
        raise InputError(f"The start frame must be a whole number from {low} to {high:,}, not {frame!r}.")


def slugify(text: str, limit: int = 48) -> str:
    """A file name for an instruction: its Latin words (accents dropped), plus a short hash of the whole text when
    any letter could not be spelled that way, so two different non-Latin instructions never share a name."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = "-".join(re.findall(r"[a-z0-9]+", folded))[:limit].strip("-")
    dropped = any(ch.isalnum() and not ch.isascii() and not unicodedata.normalize("NFKD", ch).encode("ascii", "ignore")
                  for ch in text)
    if dropped or not slug:
        digest = hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8")).hexdigest()[:8]
        slug = f"{slug or 'animation'}-{digest}"
    return slug


def bake_outputs(instruction: str, outdir: str | os.PathLike) -> dict[str, str]:
    """The files `i2fet bake` writes for `instruction`: OUTDIR/<slug>.blend, .fbx and .png."""
    base = os.path.join(os.fspath(outdir), slugify(instruction))
    return {"out": base + ".blend", "fbx": base + ".fbx", "preview": base + ".png"}


def check_fbx_preset(preset) -> None:
    if preset not in FBX_PRESETS:
        raise InputError(f"Unknown FBX preset {preset!r}; choose one of {', '.join(FBX_PRESETS)}.")


def forward(args: argparse.Namespace) -> list[str]:
    """The bake options of parsed `args` as command-line arguments again (files as absolute paths), for the baker."""
    out: list[str] = []
    for option in _OPTIONS:
        value = getattr(args, option.dest)
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(option.flag if value else "--no-" + option.flag[2:])
            continue
        out += [option.flag, str(Path(value).resolve()) if option.is_path else str(value)]
    return out
