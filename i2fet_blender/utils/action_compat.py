"""One way to create, fill, assign and read actions on Blender 4.2 (legacy actions) and 4.4+ (slotted actions).

Blender 4.4 introduced slotted (layered) actions: F-curves live in `action.layers[i].strips[j].channelbag(slot)`, and
an action is bound to an ID through `anim_data.action_slot`. Blender 5.0 removed the legacy `action.fcurves`.
Everything here checks for the slotted API (`action.slots`) first and falls back to the legacy one.
"""

from __future__ import annotations

from typing import Iterator

import bpy


def is_slotted(action: bpy.types.Action) -> bool:
    return hasattr(action, "slots") and hasattr(action, "layers")


def new_action(name: str, owner: bpy.types.ID) -> tuple[bpy.types.Action, object]:
    """A new action meant for `owner` (its id_type); returns (action, slot or None on legacy Blender)."""
    action = bpy.data.actions.new(name)
    if is_slotted(action):
        slot = action.slots.new(id_type=owner.id_type, name=owner.name)
        return action, slot
    action.id_root = owner.id_type
    return action, None


def writable_fcurves(action: bpy.types.Action, slot=None):
    """The F-curve collection new curves go into: the slot's channelbag (slotted) or `action.fcurves` (legacy)."""
    if is_slotted(action):
        if slot is None:
            slot = action.slots[0] if len(action.slots) else None
        if slot is None:
            raise ValueError(f"Action {action.name!r} has no slot to write into.")
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True).fcurves
    return action.fcurves


def iter_fcurves(action: bpy.types.Action, slot=None) -> Iterator[bpy.types.FCurve]:
    """Every F-curve of the action (of one slot, when given)."""
    if action is None:
        return
    if is_slotted(action) and len(action.layers):
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    if slot is None or bag.slot_handle == slot.handle:
                        yield from bag.fcurves
        return
    if hasattr(action, "fcurves"):
        yield from action.fcurves


def assign_action(anim_data, action: bpy.types.Action, slot=None) -> None:
    """Make `action` the active action of `anim_data`, bound to `slot` (or the first slot) where slots exist."""
    anim_data.action = action
    # Bind a slot wherever slots exist (also for an action filled through the legacy `action.fcurves` proxy of
    # 4.4+, whose automatic slot is not bound when its name differs from the ID's last slot).
    if action is not None and hasattr(action, "slots") and hasattr(anim_data, "action_slot"):
        if slot is None and len(action.slots):
            slot = anim_data.action_slot or action.slots[0]
        if slot is not None:
            anim_data.action_slot = slot


def active_slot(anim_data):
    return getattr(anim_data, "action_slot", None)


def new_strip(track, name: str, start: int, action: bpy.types.Action, slot=None):
    """An NLA action strip at `start`, bound to `slot` when slots exist."""
    strip = track.strips.new(name, int(start), action)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    return strip


def strip_slot(strip):
    return getattr(strip, "action_slot", None)
