"""Parametric face rigs the runtime can drive; FLAME is read from the user's own model file."""

from .flame_file import FlameModel, load_flame
from .flame_layer import FlameLayer, flame_forward_np

__all__ = ["FlameModel", "FlameLayer", "flame_forward_np", "load_flame"]
