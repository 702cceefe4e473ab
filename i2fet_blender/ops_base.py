"""What every I2FET operator shares: the Object-Mode base, which object is the target, the scene's frame rate, and how
a refusal reaches the user (one sentence in the status bar, {'CANCELLED'}, nothing changed)."""

from __future__ import annotations

import bpy

from model_runtime.limits import FPS_RANGE
from model_runtime.errors import I2FETError


class ObjectModeOperator(bpy.types.Operator):
    """Operators that add or rebuild objects: only in Object Mode."""

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"


def one_sentence(exc: BaseException, what: str = "Generation") -> str:
    """The user's view of an error: ours as written, a missing runtime as an install hint, anything else named as
    `what` failing."""
    if isinstance(exc, I2FETError):
        return str(exc)
    if isinstance(exc, ImportError):
        return (f"The I2FET runtime is not installed ({exc.name or exc} cannot be imported); install it from the "
                f"add-on preferences.")
    return f"{what} failed unexpectedly: {type(exc).__name__}: {exc}"


def cancel(op, exc: BaseException) -> set[str]:
    """Report `exc` on `op` in one sentence and end the operator (callers raise before changing anything)."""
    op.report({"ERROR"}, one_sentence(exc))
    return {"CANCELLED"}


def target_object(context):
    """The sidebar's target, or the active object when none is set."""
    settings = context.scene.i2fet
    return settings.target or context.active_object


def scene_fps(scene) -> float:
    """The scene's exact frame rate (29.97 stays 29.97): where keys are placed."""
    return scene.render.fps / (scene.render.fps_base or 1.0)


def generation_fps(fps: float) -> int:
    """The whole frame rate to generate at for keys placed at `fps` (the writer resamples the difference)."""
    return max(FPS_RANGE[0], min(FPS_RANGE[1], int(round(fps))))
