"""Reading a user's photo: one clear sentence for every way it can be unusable, and nothing else touched."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..paths import check_input_name, refuse_special_file

MAX_PIXELS = 40_000_000  # larger images are refused before decoding (a decompression bomb costs memory, not just time)
MIN_SIDE = 32  # smaller than this, no face can be found
ANALYSIS_SIDE = 1280  # larger images are scaled down to this longest side before detection; the detector's own
# inputs are 128 (face detection) and 256 (landmarks) pixels, so nothing is lost
_BACKDROP = (128, 128, 128)  # what transparent pixels are laid over


def load_image(path: str | os.PathLike, what: str = "start image") -> tuple[np.ndarray, float]:
    """The photo (named `what` in error messages) as (H,W,3) uint8 RGB, upright by its EXIF orientation and at most ANALYSIS_SIDE pixels long, and
    the factor it was scaled by (analysed pixels per original pixel)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"The {what} must be given as a file path (str or Path), not {type(path).__name__}.")
    source = check_input_name(path, what)
    if source.is_dir():
        raise InputError(f"The {what} {source} is a folder, not an image file.")
    refuse_special_file(source, what, "an image file")
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InputError(f"The {what} {source} is {width}x{height} pixels; images above "
                                 f"{MAX_PIXELS // 1_000_000} megapixels are refused, so scale it down first.")
            if min(width, height) < MIN_SIDE:
                raise InputError(f"The {what} {source} is only {width}x{height} pixels; a face needs at least "
                                 f"{MIN_SIDE}x{MIN_SIDE}.")
            image.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))  # JPEG: decode at a reduced size directly
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = _to_rgb(upright)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"The {what} {source} does not exist.") from None
    except PermissionError:
        raise InputError(f"The {what} {source} cannot be read: permission denied.") from None
    except UnidentifiedImageError:
        raise InputError(f"The {what} {source} is not an image file Pillow can read (PNG, JPEG, WebP, ...).") \
            from None
    except Image.DecompressionBombError:
        raise InputError(f"The {what} {source} is far larger than {MAX_PIXELS // 1_000_000} megapixels; images "
                         f"above {MAX_PIXELS // 1_000_000} megapixels are refused, so scale it down first.") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"The {what} {source} is damaged or truncated ({exc}).") from None
    scale = min(1.0, ANALYSIS_SIDE / max(rgb.width, rgb.height))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8), scale


def _to_rgb(image):
    """Any Pillow mode -> RGB: transparency over a neutral grey, 16-bit and float greyscale scaled to 8 bits."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)  # float TIFFs
        top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, _BACKDROP + (255,))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return image.convert("RGB")
