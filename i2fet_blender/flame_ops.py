"""Operators for FLAME and any head mesh: Add FLAME Head, Import/Export FLAME Sequence, Add ARKit Shape Keys, and
the FLAME branch of Generate.

The FLAME model file comes from the add-on preferences (`flame_model_path`; the I2FET_FLAME_MODEL environment
variable when the add-on is not enabled, e.g. in batch runs). The loaded model and its ARKit<->FLAME map are kept
per file (path, size, mtime) for the session; the map itself is cached on disk by the runtime.
"""

from __future__ import annotations

import os

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import flame_head, keys as keymath, writer
from .operators import ObjectModeOperator, one_sentence, scene_fps, target_object
from .preferences import get_prefs

_memo: dict = {}


def flame_model_path(context) -> str:
    prefs = get_prefs(context)
    path = getattr(prefs, "flame_model_path", "") or os.environ.get("I2FET_FLAME_MODEL", "")
    return bpy.path.abspath(path) if path else ""


def flame_model(context):
    """The user's FLAME model (InputError when no file is set)."""
    from model_runtime.errors import InputError
    from model_runtime.rigs import load_flame

    path = flame_model_path(context)
    if not path:
        raise InputError("Set the FLAME model file in the I2FET add-on preferences first (FLAME files cannot be "
                         "shipped; use your own download).")
    try:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = (path, None, None)
    if key not in _memo:
        _memo.clear()
        _memo[key] = {"model": load_flame(path)}
    return _memo[key]["model"]


def flame_map(context):
    """The ARKit<->FLAME map of the preferences' FLAME model (derived once per model, then read from the cache)."""
    from model_runtime.rigs.flame_map import flame_map_for

    model = flame_model(context)
    entry = next(iter(_memo.values()))
    if "map" not in entry:
        entry["map"] = flame_map_for(model)
    return entry["map"]


def _fail(op, exc) -> set[str]:
    op.report({"ERROR"}, one_sentence(exc))
    return {"CANCELLED"}


def write_generated_flame(context, target, anim, *, start: int, fps: float, mirror: bool, reduce: bool,
                          tolerance: float):
    """Generate's FLAME branch: ARKit frames -> FLAME expression, jaw and eyes through the map -> keys on the head
    (`target`: what `flame_head.check_flame_target` returned, before anything was generated)."""
    from model_runtime.expression_space import mirror_weights
    from model_runtime.rigs.flame_convert import canonical_frames

    fmap = flame_map(context)
    frames = canonical_frames(anim)
    if mirror:
        frames = np.asarray(mirror_weights(frames), dtype=np.float32)
    frames = keymath.resample(frames, float(anim.fps), float(fps))
    expression, jaw, eyes = fmap.to_flame(frames)
    return flame_head.write_flame_animation(target, expression, jaw, eyes, start_frame=start,
                                            name=f"I2FET {anim.instruction[:40]}".strip(), anim=anim, fps=fps,
                                            reduce=reduce, tolerance=tolerance)


class I2FET_OT_add_flame_head(ObjectModeOperator):
    """Add a FLAME head (Exp shape keys, jaw and eye bones) from your FLAME model file, in the scene's units"""

    bl_idname = "i2fet.add_flame_head"
    bl_label = "Add FLAME Head"
    bl_options = {"REGISTER", "UNDO"}

    correctives: BoolProperty(name="Pose Correctives", default=True,
                              description="Add FLAME's pose-corrective shape keys, driven by the neck, jaw and eyes")

    def execute(self, context):
        from model_runtime.errors import I2FETError

        try:
            model = flame_model(context)
            obj = flame_head.add_flame_head(context, model, correctives=self.correctives)
        except I2FETError as exc:
            return _fail(self, exc)
        context.scene.i2fet.target = obj
        self.report({"INFO"}, f"Added a {model.edition} head ({model.num_vertices} vertices, "
                              f"{model.num_expression} expression keys). {model.licence_line}")
        return {"FINISHED"}


class I2FET_OT_import_flame_sequence(bpy.types.Operator, ImportHelper):
    """Key a FLAME parameter sequence (DECA, EMOCA, SMIRK: .npz or .pkl) onto the target: directly on a FLAME head,
    through the ARKit<->FLAME map on an ARKit face"""

    bl_idname = "i2fet.import_flame_sequence"
    bl_label = "Import FLAME Sequence"
    bl_options = {"REGISTER", "UNDO"}
    filter_glob: StringProperty(default="*.npz;*.pkl", options={"HIDDEN"})

    def execute(self, context):
        from model_runtime.animation import Animation
        from model_runtime.errors import I2FETError
        from model_runtime.rigs.flame_sequence import load_flame_sequence

        scene = context.scene
        obj = target_object(context)
        fps = scene_fps(scene)
        try:
            sequence = load_flame_sequence(bpy.path.abspath(self.filepath))
            source_fps = sequence.fps or fps
            params = np.concatenate([sequence.expression, sequence.jaw_pose,
                                     sequence.eye_pose if sequence.eye_pose is not None else
                                     np.zeros((sequence.num_frames, 6), np.float32)], axis=1)
            params = keymath.resample(params, source_fps, fps)
            n = sequence.num_expression
            expression, jaw, eyes = params[:, :n], params[:, n:n + 3], params[:, n + 3:]
            name = f"I2FET FLAME {os.path.basename(self.filepath)}"
            start = scene.frame_current
            if flame_head.is_flame_head(obj):
                model = flame_model(context)
                target = flame_head.check_flame_target(obj, model)
                if n > model.num_expression:
                    raise I2FETError(f"The sequence has {n} expression components but the FLAME model only "
                                     f"{model.num_expression}.")
                result = flame_head.write_flame_animation(
                    target, expression, jaw, eyes if sequence.eye_pose is not None else None, start_frame=start,
                    name=name, fps=fps)
                end, warnings = result.end_frame, result.warnings
            else:
                writer.check_target(obj)
                weights = flame_map(context).to_arkit(expression, jaw, eyes)
                anim = Animation(frames=weights, fps=max(1, int(round(fps))), instruction=name)
                # Already at the scene's exact rate: keyed frame by frame, not resampled a second time.
                result = writer.write_animation(obj, anim, start_frame=start, fps=anim.fps, name=name)
                end, warnings = result.end_frame, result.warnings
        except I2FETError as exc:
            return _fail(self, exc)
        if end > scene.frame_end:
            scene.frame_end = end
        ignored = [name for name, value in (("global", sequence.global_pose), ("neck", sequence.neck_pose))
                   if value is not None and np.any(value)]
        if ignored:
            warnings.append(f"The sequence's {' and '.join(ignored)} rotation was not keyed (only expression, jaw and "
                            f"eyes are).")
        for note in sequence.notes + warnings:
            self.report({"WARNING"}, note)
        self.report({"INFO"}, f"Keyed {sequence.num_frames} FLAME frames on {obj.name!r} as frames {start}-{end}.")
        return {"FINISHED"}


class I2FET_OT_export_flame_sequence(bpy.types.Operator, ExportHelper):
    """Write the target's current animation as a FLAME parameter sequence (.npz: expression [T,N], jaw_pose [T,3])"""

    bl_idname = "i2fet.export_flame_sequence"
    bl_label = "Export FLAME Sequence"
    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def execute(self, context):
        from model_runtime.errors import I2FETError
        from model_runtime.rigs.flame_sequence import FlameSequence, save_flame_sequence

        scene = context.scene
        obj = target_object(context)
        try:
            frames = _animated_range(obj)
            if flame_head.is_flame_head(obj):
                target = flame_head.check_flame_target(obj, flame_model(context))
                expression, jaw, eyes = flame_head.read_flame_parameters(target, frames)
            else:
                writer.check_target(obj)
                weights = arkit_weights(obj, frames)
                expression, jaw, eyes = flame_map(context).to_flame(weights)
            path = save_flame_sequence(bpy.path.abspath(self.filepath), FlameSequence(
                expression=expression, jaw_pose=jaw, eye_pose=eyes, fps=scene_fps(scene)))
        except I2FETError as exc:
            return _fail(self, exc)
        self.report({"INFO"}, f"Wrote {len(frames)} FLAME frames to {path}.")
        return {"FINISHED"}


def _animated_range(obj) -> list[int]:
    """Whole frames spanned by the active actions of the object's shape keys and FLAME rig."""
    from model_runtime.errors import InputError

    if obj is None or obj.type != "MESH":
        raise InputError("Select the animated face mesh to export.")
    lo, hi = None, None
    for owner in (getattr(obj.data, "shape_keys", None), flame_head.find_rig(obj)):
        ad = getattr(owner, "animation_data", None)
        if ad is not None and ad.action is not None:
            start, end = ad.action.frame_range
            lo = start if lo is None else min(lo, start)
            hi = end if hi is None else max(hi, end)
    if lo is None:
        raise InputError(f"{obj.name!r} has no animation to export.")
    return list(range(int(np.floor(lo)), int(np.ceil(hi)) + 1))


def arkit_weights(obj, frames) -> np.ndarray:
    """(T, 52) ARKit weights of an ARKit face at `frames`, from its active shape-key action (split keys averaged)."""
    from model_runtime.expression_space import ARKIT_CHANNELS

    match = writer.check_target(obj)
    sampled = writer.sample_curves(obj, frames)
    key = obj.data.shape_keys
    out = np.zeros((len(frames), len(ARKIT_CHANNELS)), dtype=np.float32)
    for c, channel in enumerate(ARKIT_CHANNELS):
        names = writer.keys_for(match, channel)
        if names:
            out[:, c] = np.mean([sampled.get(n, np.full(len(frames), key.key_blocks[n].value)) for n in names], axis=0)
    return out


class I2FET_OT_add_arkit_shape_keys(ObjectModeOperator):
    """Give the target head mesh the 52 ARKit shape keys, transferred from the default head by registering the two"""

    bl_idname = "i2fet.add_arkit_shape_keys"
    bl_label = "Add ARKit Shape Keys"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from model_runtime.errors import I2FETError

        from . import shape_keys_transfer

        try:
            obj = target_object(context)
            report = shape_keys_transfer.add_arkit_shape_keys(obj)
        except I2FETError as exc:
            return _fail(self, exc)
        for warning in report.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, report.summary)
        return {"FINISHED"}


CLASSES = (I2FET_OT_add_flame_head, I2FET_OT_import_flame_sequence, I2FET_OT_export_flame_sequence,
           I2FET_OT_add_arkit_shape_keys)
