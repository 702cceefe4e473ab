"""Export a face with its shape-key animation to FBX, after checking what would silently drop that animation.

Always exported with `bake_anim_use_nla_strips=False` and `bake_anim_use_all_actions=False`: the exporter then bakes
what the scene plays (active action over the NLA), one take (per-strip and per-action takes only cover objects, not
shape-key datablocks, so they would drop the face's animation). That take keeps the scene's times, so a clip is made
to start at time 0 by moving the active actions to frame 0 for the export (and back after): an engine then gets the
animation's own length, not the scene's 250 frames of held pose. Modifiers are not
applied (`use_mesh_modifiers=False`) because an evaluated mesh carries no shape keys. The presets (axes and scale per
engine) are `model_runtime.bake_options.FBX_PRESETS`, shared with the command line.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field

import bpy
import numpy as np

from model_runtime.bake_options import DEFAULT_PRESET, FBX_PRESETS, check_fbx_preset
from model_runtime.errors import InputError, OutputError
from model_runtime.paths import StagedOutputs

from .utils import action_compat as compat

@dataclass
class Preflight:
    problems: list[str] = field(default_factory=list)  # the export would lose the animation: refused
    warnings: list[str] = field(default_factory=list)  # exported, but something is worth knowing


@dataclass
class ExportReport:
    path: str
    preset: str
    warnings: list[str]
    frame_range: tuple[int, int]  # the scene frames exported
    clip_start: int  # the FBX take's first frame: 0 for a clip, else the scene's start


def _key_curves(obj):
    key = obj.data.shape_keys
    ad = key.animation_data if key else None
    if ad is None or ad.action is None:
        return []
    return [fc for fc in compat.iter_fcurves(ad.action, compat.active_slot(ad)) if fc.data_path.startswith("key_blocks[")]


def _display_smoothing(obj, modifier) -> bool:
    """The Subdivision the default head gets for the viewport: engines smooth the base mesh themselves, so leaving it
    out of the FBX is the intended result, not something to warn about."""
    return bool(obj.get("i2fet_head")) and modifier.type == "SUBSURF"


def preflight(obj, scene, use_mesh_modifiers: bool = False) -> Preflight:
    """Name everything that would make the FBX lose the face's shape-key animation (problems) or change it (warnings)."""
    result = Preflight()
    if obj is None or obj.type != "MESH":
        result.problems.append("Select the face mesh to export.")
        return result
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        result.problems.append(f"{obj.name!r} has no shape keys, so there is no facial animation to export.")
        return result
    if not key.use_relative:
        result.problems.append(f"The shape keys of {obj.name!r} are absolute (not relative); FBX exports only "
                               f"relative shape keys.")
    dropping = [m.name for m in obj.modifiers if (m.show_viewport or m.show_render) and m.type != "ARMATURE"
                and not _display_smoothing(obj, m)]
    if dropping and not use_mesh_modifiers:
        result.warnings.append(f"The modifiers {', '.join(dropping)} are not applied in the FBX (an evaluated mesh "
                               f"has no shape keys); the engine gets the base mesh.")
    if use_mesh_modifiers:
        if dropping:
            result.problems.append(f"Applying the modifiers {', '.join(dropping)} would export a mesh without shape "
                                   f"keys; export without applying modifiers.")
    ad = key.animation_data
    curves = _key_curves(obj)
    strips = [s for t in ad.nla_tracks if not t.mute for s in t.strips] if ad else []
    if ad is None or (ad.action is None and not strips):
        result.problems.append(f"The shape keys of {obj.name!r} have no animation; generate some first.")
        return result
    if ad.action is None:
        # Verified on 4.5: with nla_strips/all_actions off the exporter bakes what the scene plays, NLA included.
        strip_curves = [fc for s in strips if s.action is not None
                        for fc in compat.iter_fcurves(s.action, compat.strip_slot(s))
                        if fc.data_path.startswith("key_blocks[") and len(fc.keyframe_points)]
        if not strip_curves:
            result.problems.append(f"The NLA strips on the shape keys of {obj.name!r} hold no shape-key keyframes.")
            return result
        result.warnings.append(f"The shape-key animation of {obj.name!r} lives only in NLA strips (no active action); "
                               f"it is exported as the scene plays it, all unmuted tracks baked into one take.")
        curves = strip_curves
    elif not any(len(fc.keyframe_points) for fc in curves):
        result.problems.append(f"The active action {ad.action.name!r} has no shape-key keyframes.")
        return result
    if all(fc.mute for fc in curves) and ad.action is not None:
        result.problems.append(f"Every shape-key curve of {ad.action.name!r} is muted.")
    first = min(fc.range()[0] for fc in curves if len(fc.keyframe_points))
    last = max(fc.range()[1] for fc in curves if len(fc.keyframe_points))
    if first < scene.frame_start or last > scene.frame_end:
        result.warnings.append(f"Keys from frame {first:g} to {last:g} reach outside the scene range "
                               f"{scene.frame_start}-{scene.frame_end}; only the scene range is exported.")
    seen: dict[str, str] = {}
    for block in key.key_blocks:
        folded = block.name.casefold()
        if folded in seen:
            result.warnings.append(f"Shape keys {seen[folded]!r} and {block.name!r} differ only in case; engines "
                                   f"that ignore case will merge them.")
        seen[folded] = block.name
        if "::" in block.name:
            result.warnings.append(f"Shape key {block.name!r} contains '::', which FBX reads as a namespace.")
    if ad.use_tweak_mode:
        result.problems.append("The shape keys are in NLA tweak mode; leave tweak mode before exporting.")
    return result


def export_face(context, obj, filepath: str, preset: str = DEFAULT_PRESET, frame_range: tuple[int, int] | None = None,
                owners=(), staged_path: str | None = None) -> ExportReport:
    """Export `obj` alone with its shape-key animation. Raises InputError naming what would drop the animation.

    `frame_range`: (start, end) exported as a clip from time 0 (the active actions of the shape keys and of `owners`,
    e.g. a rig driving them, are moved to start at frame 0 during the export); None: the scene's range at the scene's
    times. Shape keys animated only through NLA strips keep the scene's times. The scene is restored after.
    `staged_path`: write here instead of `filepath` (the caller moves it into place, see model_runtime.paths).
    """
    check_fbx_preset(preset)
    if not filepath:
        raise InputError("Choose a file to export to.")
    scene = context.scene
    saved_range, saved_frame = (scene.frame_start, scene.frame_end), scene.frame_current
    if frame_range is not None:
        scene.frame_start, scene.frame_end = int(frame_range[0]), int(frame_range[1])
    try:
        check = preflight(obj, scene)
        if check.problems:
            raise InputError(check.problems[0])
        exported_range = (scene.frame_start, scene.frame_end)
        actions = _active_actions([obj.data.shape_keys, *owners]) if frame_range is not None else []
        offset = exported_range[0] if actions else 0
        with _moved(actions, offset):
            scene.frame_start, scene.frame_end = exported_range[0] - offset, exported_range[1] - offset
            _export_selected(context, obj, filepath, preset, staged_path)
    finally:
        scene.frame_start, scene.frame_end = saved_range
        scene.frame_set(saved_frame)
    return ExportReport(path=os.fspath(filepath), preset=preset, warnings=check.warnings, frame_range=exported_range,
                        clip_start=exported_range[0] - offset)


def _export_selected(context, obj, filepath: str, preset: str, staged_path: str | None) -> None:
    selection = [o for o in context.view_layer.objects if o.select_get()]
    active = context.view_layer.objects.active
    for o in selection:
        o.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    try:
        if staged_path is not None:
            _run_exporter(staged_path, preset)
        else:
            with StagedOutputs() as staged:
                _run_exporter(str(staged.stage(filepath)), preset)
    except RuntimeError as exc:
        raise OutputError(f"The FBX exporter failed: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        obj.select_set(False)
        for o in selection:
            o.select_set(True)
        context.view_layer.objects.active = active


def _active_actions(owners) -> list:
    """The active actions of `owners` (each once), or none when the first (the shape keys) has no active action."""
    found = {}
    for owner in owners:
        ad = getattr(owner, "animation_data", None)
        if ad is None or ad.action is None:
            if not found:
                return []
            continue
        found.setdefault(ad.action.as_pointer(), ad.action)
    return list(found.values())


@contextlib.contextmanager
def _moved(actions, offset: int):
    """Every key of `actions` `offset` frames earlier while the block runs; the exact original keys restored after."""
    saved = []
    try:
        for action in actions if offset else ():
            for fc in compat.iter_fcurves(action):
                points = fc.keyframe_points
                original = {}
                for prop in ("co", "handle_left", "handle_right"):
                    values = np.empty(2 * len(points), dtype=np.float32)
                    points.foreach_get(prop, values)
                    original[prop] = values
                saved.append((fc, original))
                for prop, values in original.items():
                    moved = values.copy()
                    moved[0::2] -= offset
                    points.foreach_set(prop, moved)
                fc.update()
        yield
    finally:
        for fc, original in saved:
            for prop, values in original.items():
                fc.keyframe_points.foreach_set(prop, values)
            fc.update()


def _run_exporter(path: str, preset: str) -> None:
    """The exporter prints its progress and the staged file's temporary name: not the user's business."""
    with contextlib.redirect_stdout(io.StringIO()):
        bpy.ops.export_scene.fbx(
            filepath=path, check_existing=False, use_selection=True, object_types={"MESH"},
            use_mesh_modifiers=False, mesh_smooth_type="FACE", add_leaf_bones=False, use_custom_props=False,
            bake_anim=True, bake_anim_use_all_bones=False, bake_anim_use_nla_strips=False,
            bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True, bake_anim_step=1.0,
            bake_anim_simplify_factor=0.0, path_mode="AUTO", **FBX_PRESETS[preset].exporter)
