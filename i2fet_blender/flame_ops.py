"""Operators for FLAME and any head mesh: Add FLAME Head, Import/Export FLAME Sequence, Add ARKit Shape Keys (its
transfer runs in a worker thread with progress in the status bar and Esc to cancel: `worker`).

The FLAME model file comes from the add-on preferences (`preferences.flame_file`); which face takes the keys, and how,
is `targets`' business (a FLAME head directly, an ARKit face through the ARKit<->FLAME map).
"""

from __future__ import annotations

import os

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from model_runtime.errors import I2FETError, InputError

from . import flame_head, keys as keymath, shape_keys_transfer, targets
from .ops_base import ObjectModeOperator, cancel, scene_fps, target_object
from .preferences import flame_file
from .worker import WorkerOperator


class I2FET_OT_add_flame_head(ObjectModeOperator):
    """Add a FLAME head (Exp shape keys, jaw and eye bones) from your FLAME model file, in the scene's units"""

    bl_idname = "i2fet.add_flame_head"
    bl_label = "Add FLAME Head"
    bl_options = {"REGISTER", "UNDO"}

    correctives: BoolProperty(name="Pose Correctives", default=True,
                              description="Add FLAME's pose-corrective shape keys, driven by the neck, jaw and eyes")

    def execute(self, context):
        try:
            model = flame_file(context).model()
            obj = flame_head.add_flame_head(context, model, correctives=self.correctives)
        except I2FETError as exc:
            return cancel(self, exc)
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
        scene = context.scene
        obj = target_object(context)
        fps = scene_fps(scene)
        try:
            from model_runtime.rigs.flame_sequence import load_flame_sequence  # torch: only once the runtime is in

            sequence = load_flame_sequence(bpy.path.abspath(self.filepath))
            source_fps = sequence.fps or fps
            params = np.concatenate([sequence.expression, sequence.jaw_pose,
                                     sequence.eye_pose if sequence.eye_pose is not None else
                                     np.zeros((sequence.num_frames, 6), np.float32)], axis=1)
            params = keymath.resample(params, source_fps, fps)
            n = sequence.num_expression
            expression, jaw, eyes = params[:, :n], params[:, n:n + 3], params[:, n + 3:]
            start = scene.frame_current
            target = targets.face_target(obj, flame_file(context))
            result = target.write_flame(expression, jaw, eyes if sequence.eye_pose is not None else None,
                                        start_frame=start, fps=fps,
                                        name=f"I2FET FLAME {os.path.basename(self.filepath)}")
            end, warnings = result.end_frame, result.warnings
        except (I2FETError, ImportError) as exc:
            return cancel(self, exc)
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
        obj = target_object(context)
        try:
            from model_runtime.rigs.flame_sequence import FlameSequence, save_flame_sequence  # torch, as above

            frames = targets.animated_frames(obj)
            expression, jaw, eyes = targets.face_target(obj, flame_file(context)).read_flame(frames)
            path = save_flame_sequence(bpy.path.abspath(self.filepath), FlameSequence(
                expression=expression, jaw_pose=jaw, eye_pose=eyes, fps=scene_fps(context.scene)))
        except (I2FETError, ImportError) as exc:
            return cancel(self, exc)
        self.report({"INFO"}, f"Wrote {len(frames)} FLAME frames to {path}.")
        return {"FINISHED"}


class I2FET_OT_add_arkit_shape_keys(WorkerOperator, ObjectModeOperator):
    """Give the target head mesh the 52 ARKit shape keys, transferred from the default head by registering the two"""

    bl_idname = "i2fet.add_arkit_shape_keys"
    bl_label = "Add ARKit Shape Keys"
    bl_options = {"REGISTER", "UNDO"}

    def prepare(self, context):
        return shape_keys_transfer.read_head_mesh(target_object(context))

    @staticmethod
    def compute(prepared, progress):
        return shape_keys_transfer.compute_keys(prepared, progress)

    def finish(self, context, prepared, result) -> set[str]:
        obj = bpy.data.objects.get(prepared.name)
        if obj is None:
            raise InputError(f"{prepared.name!r} was removed while its shape keys were computed; nothing was added.")
        report = shape_keys_transfer.write_keys(obj, prepared, result)
        for warning in report.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, report.summary)
        return {"FINISHED"}


CLASSES = (I2FET_OT_add_flame_head, I2FET_OT_import_flame_sequence, I2FET_OT_export_flame_sequence,
           I2FET_OT_add_arkit_shape_keys)
