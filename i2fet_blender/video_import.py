"""Import Face Video: every frame of a face video read (model_runtime.photo.video) and keyed onto the target face
(an ARKit face or a FLAME head, through `targets`) in a new action, at the scene's frame rate from the current frame.

The video is read in a worker thread with progress in the status bar, and Esc cancels with nothing written (`worker`);
in background mode (batch, tests) it runs inline. Every check runs before the first write; the face's existing
animation is kept (the new action is pushed like Generate's).
"""

from __future__ import annotations

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from . import targets
from .ops_base import scene_fps, target_object
from .preferences import flame_file
from .worker import WorkerOperator


class I2FET_OT_import_face_video(WorkerOperator, bpy.types.Operator, ImportHelper):
    """Read a face video frame by frame and key it onto the target face (a new action; nothing is lost)"""

    bl_idname = "i2fet.import_face_video"
    bl_label = "Import Face Video"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.mp4;*.mov;*.avi;*.mkv;*.webm;*.m4v", options={"HIDDEN"})
    neutral_image: StringProperty(name="Neutral Photo", subtype="FILE_PATH", default="",
                                  description="Optional: the same person's face at rest, whose reading is removed")

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.mode == "OBJECT"

    def invoke(self, context, event):
        if not self.neutral_image:  # the sidebar's neutral photo, when one is set
            self.neutral_image = context.scene.i2fet.neutral_image
        return super().invoke(context, event)

    def _check(self, context):
        return targets.face_target(target_object(context), flame_file(context))

    def prepare(self, context):
        self._check(context)
        return bpy.path.abspath(self.filepath), bpy.path.abspath(self.neutral_image) if self.neutral_image else None

    @staticmethod
    def compute(prepared, progress):
        from model_runtime.photo.video import track_video

        path, neutral = prepared
        return track_video(path, neutral_image=neutral,
                           progress=lambda done, total: progress(done / total, f"reading frame {done} of {total}"))

    def finish(self, context, prepared, result) -> set[str]:
        target = self._check(context)  # the scene may have changed while the video was read
        scene = context.scene
        anim = result.animation
        anim.instruction = f"Face video {bpy.path.basename(prepared[0])}"  # names the action
        written = target.write(anim, start_frame=scene.frame_current, fps=scene_fps(scene))
        scene.frame_end = max(scene.frame_end, written.end_frame)
        for warning in [*result.warnings, *written.warnings]:
            self.report({"WARNING"}, warning)
        message = (f"Keyed {anim.num_frames} video frames onto {target.obj.name!r} (frames {written.start_frame}-"
                   f"{written.end_frame}).")
        scene.i2fet.status = message
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (I2FET_OT_import_face_video,)
