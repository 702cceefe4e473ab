"""The options of a bake, declared once: `i2fet bake` and the Blender batch baker (`i2fet_blender/batch.py`) add them
to their parsers from here, check their values here, and take the FBX presets from here.

Without bpy, because `i2fet bake` parses and checks them before it starts the batch baker in Blender's Python (and
hands them on with `forward`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .device import DEVICE_CHOICES
from .errors import InputError
from .limits import FPS_RANGE, MAX_INTENSITY_SCALE, check_fps, check_intensity_scale, check_seed
from .timeline import MAX_DURATION_S, check_duration


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
    _Option("--seed", dict(type=int, default=0, help="random seed (default 0)")),
    _Option("--duration", dict(type=float, help=f"stretch the whole animation to this many seconds "
                                                f"(0-{MAX_DURATION_S:g}]")),
    _Option("--intensity", dict(type=float, default=1.0,
                                help=f"scale every expression (0-{MAX_INTENSITY_SCALE:g}, default 1)")),
    _Option("--preset", dict(default=DEFAULT_PRESET, choices=tuple(FBX_PRESETS), help="FBX axes/scale")),
    _Option("--device", dict(default="auto", choices=DEVICE_CHOICES, help="torch device")),
    _Option("--start-image", dict(help="start from the expression of the face in this photo (PNG, JPEG, ...)"),
            is_path=True),
    _Option("--flame-model", dict(help="your FLAME model file, for a --blend whose face is a FLAME head (default: "
                                       "I2FET_FLAME_MODEL)"), is_path=True),
)


def add_bake_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every bake shares (the face, timing, seed, intensity, FBX preset, device, photo, FLAME file)."""
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
        out += [option.flag, str(Path(value).resolve()) if option.is_path else str(value)]
    return out
