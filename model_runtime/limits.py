"""The ranges every entry point checks numbers against (frame rate, seed, intensity scale, duration), without numpy: the command
line names them in its --help and checks them before anything heavy loads."""

from __future__ import annotations

import math

from .errors import InputError

FPS_RANGE = (1, 240)
MAX_INTENSITY_SCALE = 2.0
MAX_DURATION_S = 600.0
MAX_REPEATS = 12  # repeats of one action ("blink 12 times", "give 12 nods"); more are capped and reported
SAVE_FORMATS = (".json", ".npz", ".csv")  # the animation file types


def check_fps(fps) -> int:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps != int(fps) \
            or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise InputError(f"The frame rate must be a whole number from {FPS_RANGE[0]} to {FPS_RANGE[1]}, not {fps!r}.")
    return int(fps)


def check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"The seed must be a whole number from 0 to 2**63-1, not {seed!r}.")


def check_intensity_scale(scale) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
            or not 0 <= scale <= MAX_INTENSITY_SCALE:
        raise InputError(f"The intensity scale must be between 0 and {MAX_INTENSITY_SCALE:g}, not {scale!r}.")


def check_duration(duration_s: float) -> None:
    if not isinstance(duration_s, (int, float)) or not math.isfinite(duration_s) or not 0 < duration_s <= MAX_DURATION_S:
        raise InputError(f"The duration must be more than 0 and at most {MAX_DURATION_S:g} seconds, not {duration_s!r}.")


def repeat_count(value) -> tuple[int, bool]:
    """(repeats shown, whether the count was shown as asked): a count that is not a whole number from 1 to
    MAX_REPEATS is shown once, or MAX_REPEATS times when larger; the parser reports it."""
    if value is None or not math.isfinite(value) or value < 1 or value != int(value):
        return 1, False
    if value > MAX_REPEATS:
        return MAX_REPEATS, False
    return int(value), True
