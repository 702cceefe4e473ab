"""Ending a plain-Python process that has imported `bpy`."""

from __future__ import annotations

import os
import sys


def exit_after_bpy(code: int) -> None:
    """Flush and end the process without Python's interpreter teardown. Blender's module has deadlocked in that
    teardown (every thread waiting, long after the work and its output were done), which would hang a batch bake or a
    farm task that had already succeeded. Everything the caller wrote is complete by then: outputs land atomically."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
