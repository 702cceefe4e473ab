"""Scene settings of the I2FET sidebar (`scene.i2fet`): target, instruction, timing, options, results, history."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)
from model_runtime.limits import FPS_RANGE

from .shape_keys import DEFAULT_TOLERANCE

MAX_HISTORY = 12


def _is_mesh(_self, obj) -> bool:
    return obj.type == "MESH"


class I2FET_PG_segment(bpy.types.PropertyGroup):
    text: StringProperty(name="Text")
    label: StringProperty(name="Label")
    start_frame: IntProperty(name="Start")
    end_frame: IntProperty(name="End")
    confidence: FloatProperty(name="Confidence", min=0.0, max=1.0)


class I2FET_PG_history(bpy.types.PropertyGroup):
    instruction: StringProperty(name="Instruction")
    seed: IntProperty(name="Seed", min=0)


class I2FET_PG_settings(bpy.types.PropertyGroup):
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_mesh,
                            description="Mesh with ARKit-named shape keys (empty: the active object)")
    instruction: StringProperty(name="Instruction", default="slowly break into a shy smile, then look shocked",
                                description="What the face should do, in plain words")
    use_scene_fps: BoolProperty(name="Scene Frame Rate", default=True,
                                description="Key at the scene's frame rate (otherwise at the rate below)")
    fps: IntProperty(name="FPS", default=30, min=FPS_RANGE[0], max=FPS_RANGE[1])
    use_current_frame: BoolProperty(name="From Current Frame", default=True,
                                    description="Start at the current frame (otherwise at the frame below)")
    start_frame: IntProperty(name="Start Frame", default=1)
    auto_duration: BoolProperty(name="Automatic Duration", default=True,
                                description="Let the instruction decide the length")
    duration: FloatProperty(name="Duration", default=4.0, min=0.1, max=600.0, unit="TIME_ABSOLUTE",
                            description="Length of the whole animation in seconds")
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, max=2.0,
                             description="Scale of the generated expression weights")
    seed: IntProperty(name="Seed", default=0, min=0)
    use_start_image: BoolProperty(name="Start From Photo", default=False,
                                  description="Start from the expression of the face in a photo instead of neutral")
    start_image: StringProperty(name="Photo", subtype="FILE_PATH",
                                description="A photo of one face (PNG, JPEG, ...); the largest face is used")
    neutral_image: StringProperty(name="Neutral Photo", subtype="FILE_PATH",
                                  description="Optional: the same person's face at rest; what it already shows (a "
                                              "resting frown, wide eyes) is removed from the start photo's reading")
    life: BoolProperty(name="Natural Idle Motion", default=True,
                       description="Add blinks and small gaze shifts where the instruction leaves the eyes free")
    mirror: BoolProperty(name="Mirror", default=False, description="Swap the left and right sides")
    reduce_keys: BoolProperty(name="Reduce Keys", default=True,
                              description="Drop keys that their neighbours reproduce (easier to edit)")
    tolerance: FloatProperty(name="Tolerance", default=DEFAULT_TOLERANCE, min=0.0, max=0.1, precision=4,
                             description="Largest weight error allowed by key reduction")
    segments: CollectionProperty(type=I2FET_PG_segment)
    history: CollectionProperty(type=I2FET_PG_history)
    history_index: IntProperty(default=0)
    status: StringProperty(name="Status", default="")


def remember(settings, instruction: str, seed: int) -> None:
    """Put `instruction` at the top of the history (no duplicates, at most MAX_HISTORY)."""
    history = settings.history
    for i in reversed(range(len(history))):
        if history[i].instruction == instruction:
            history.remove(i)
    item = history.add()
    item.instruction, item.seed = instruction, seed
    history.move(len(history) - 1, 0)
    while len(history) > MAX_HISTORY:
        history.remove(len(history) - 1)


def show_segments(settings, segments, start_frame: int, frame_scale: float = 1.0) -> None:
    settings.segments.clear()
    for seg in segments:
        item = settings.segments.add()
        item.text = str(seg.get("text", ""))
        item.label = str(seg.get("label", ""))
        item.start_frame = start_frame + int(round(seg.get("start_frame", 0) * frame_scale))
        item.end_frame = start_frame + int(round(seg.get("end_frame", 0) * frame_scale))
        item.confidence = float(seg.get("confidence", 0.0) or 0.0)


CLASSES = (I2FET_PG_segment, I2FET_PG_history, I2FET_PG_settings)


def register_props():
    bpy.types.Scene.i2fet = PointerProperty(type=I2FET_PG_settings)


def unregister_props():
    del bpy.types.Scene.i2fet
