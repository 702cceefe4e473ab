"""Import Face Video: every frame of a face video read (model_runtime.photo.video) and keyed onto the target face
(an ARKit face or a FLAME head, through `targets`) in a new action, at the scene's frame rate from the current frame.

The video is read in a worker thread (it never touches bpy); the operator polls it on a timer, shows progress in the
status bar, and Esc cancels with nothing written. Every check runs before the first write; the face's existing
animation is kept (the new action is pushed like Generate's). In background mode (batch, tests) it runs inline.
"""

from __future__ import annotations

import threading

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper

from . import targets
from .ops_base import one_sentence, scene_fps, target_object
from .preferences import flame_file


class _Job:
    """The worker's state, shared with the operator's timer."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.result = None
        self.error: BaseException | None = None
        self.cancel = threading.Event()
        self.finished = threading.Event()


def _run(job: _Job, path: str, neutral: str | None) -> None:
    from model_runtime.photo.video import track_video

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        job.result = track_video(path, neutral_image=neutral, progress=progress, cancel=job.cancel.is_set)
    except BaseException as exc:  # reported on the main thread
        job.error = exc
    finally:
        job.finished.set()


class I2FET_OT_import_face_video(bpy.types.Operator, ImportHelper):
    """Read a face video frame by frame and key it onto the target face (a new action; nothing is lost)"""

    bl_idname = "i2fet.import_face_video"
    bl_label = "Import Face Video"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.mp4;*.mov;*.avi;*.mkv;*.webm;*.m4v", options={"HIDDEN"})
    neutral_image: StringProperty(name="Neutral Photo", subtype="FILE_PATH", default="",
                                  description="Optional: the same person's face at rest, whose reading is removed")

    _timer = None
    _job: _Job | None = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.mode == "OBJECT"

    def invoke(self, context, event):
        if not self.neutral_image:  # the sidebar's neutral photo, when one is set
            self.neutral_image = context.scene.i2fet.neutral_image
        return super().invoke(context, event)

    def _check(self, context):
        return targets.face_target(target_object(context), flame_file(context))

    def _write(self, context, target, result) -> set[str]:
        scene = context.scene
        anim = result.animation
        anim.instruction = f"Face video {bpy.path.basename(self.filepath)}"  # names the action
        written = target.write(anim, start_frame=scene.frame_current, fps=scene_fps(scene))
        scene.frame_end = max(scene.frame_end, written.end_frame)
        for warning in [*result.warnings, *written.warnings]:
            self.report({"WARNING"}, warning)
        message = (f"Keyed {anim.num_frames} video frames onto {target.obj.name!r} (frames {written.start_frame}-"
                   f"{written.end_frame}).")
        scene.i2fet.status = message
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def _fail(self, context, exc: BaseException) -> set[str]:
        message = one_sentence(exc)
        context.scene.i2fet.status = message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _neutral(self) -> str | None:
        return bpy.path.abspath(self.neutral_image) if self.neutral_image else None

    def execute(self, context):
        if not bpy.app.background and context.window is not None:
            return self._start(context)
        return self._inline(context)

    def _inline(self, context):
        """Background mode and scripts without a window: read, then write, in one go."""
        from model_runtime.errors import I2FETError
        from model_runtime.photo.video import track_video

        try:
            target = self._check(context)
            result = track_video(bpy.path.abspath(self.filepath), neutral_image=self._neutral())
            return self._write(context, target, result)
        except (I2FETError, ImportError) as exc:
            return self._fail(context, exc)

    def _start(self, context):
        from model_runtime.errors import I2FETError

        try:
            self._check(context)
        except (I2FETError, ImportError) as exc:
            return self._fail(context, exc)
        self._job = _Job()
        threading.Thread(target=_run, args=(self._job, bpy.path.abspath(self.filepath), self._neutral()),
                         daemon=True).start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def _stop(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        self._timer = None

    def modal(self, context, event):
        from model_runtime.photo.video import Cancelled

        job = self._job
        if event.type == "ESC":
            job.cancel.set()
            job.finished.wait()
            self._stop(context)
            context.scene.i2fet.status = "Import Face Video cancelled; nothing was changed."
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not job.finished.is_set():
            if job.total:
                context.window_manager.progress_update(100 * job.done // job.total)
                context.workspace.status_text_set(f"Reading the face video: frame {job.done} of {job.total} "
                                                  f"(Esc cancels)")
            return {"RUNNING_MODAL"}
        self._stop(context)
        if isinstance(job.error, Cancelled):
            return {"CANCELLED"}
        if job.error is not None:
            return self._fail(context, job.error)
        try:
            target = self._check(context)  # the scene may have changed while the video was read
            return self._write(context, target, job.result)
        except Exception as exc:
            return self._fail(context, exc)


CLASSES = (I2FET_OT_import_face_video,)
