"""Operators whose work would freeze Blender for seconds (Import Face Video, Add ARKit Shape Keys): the work runs in a
worker thread while the interface stays live.

An operator built on `WorkerOperator` is three steps: `prepare` (main thread) checks the scene and reads everything
the work needs; `compute` (worker thread) works from that alone and never touches bpy; `finish` (main thread) checks
the scene again and writes in one go. With a window, a timer polls the worker, the status bar and the window
manager's progress show the stage and how far it is, and Esc or right-click cancels: the worker stops at its next
step (`model_runtime.progress.Cancelled`) and nothing is written. In background mode (batch, tests) and without a
window the three steps run one after the other, synchronously. Errors are one sentence, with nothing changed.
"""

from __future__ import annotations

import threading

import bpy

from model_runtime.errors import I2FETError
from model_runtime.progress import Cancelled

from .ops_base import one_sentence

CANCEL_EVENTS = ("ESC", "RIGHTMOUSE")
POLL_SECONDS = 0.1


def _quiet(fraction: float, stage: str) -> None:
    """`compute`'s progress when it runs inline: nobody is watching."""


class Job:
    """One `compute` in a worker thread: how far it is, and its result or error once `finished` is set."""

    def __init__(self, compute, prepared) -> None:
        self.fraction, self.stage = 0.0, "starting"
        self.result = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._cancel = threading.Event()
        threading.Thread(target=self._run, args=(compute, prepared), daemon=True).start()

    def _run(self, compute, prepared) -> None:
        try:
            self.result = compute(prepared, self.progress)
        except BaseException as exc:  # reported on the main thread
            self.error = exc
        finally:
            self.finished.set()

    def progress(self, fraction: float, stage: str) -> None:
        """The worker's progress callback: records how far it is, or stops the work once cancelled."""
        if self._cancel.is_set():
            raise Cancelled()
        self.fraction, self.stage = max(self.fraction, float(fraction)), stage

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class WorkerOperator:
    """Put before `bpy.types.Operator` in an operator's bases and define `prepare`, `compute` (a staticmethod: it runs
    in the worker and gets nothing of the operator) and `finish`."""

    _timer = None
    _job: Job | None = None
    _prepared = None

    def prepare(self, context):
        """Main thread: check the scene (raise I2FETError to refuse) and return what `compute` needs."""
        raise NotImplementedError

    @staticmethod
    def compute(prepared, progress):
        """Worker thread, no bpy: the work, reporting `progress(fraction, stage)`, which may raise Cancelled."""
        raise NotImplementedError

    def finish(self, context, prepared, result) -> set[str]:
        """Main thread: check the scene again, write `result` in one go, report; return {'FINISHED'}."""
        raise NotImplementedError

    def execute(self, context):
        if bpy.app.background or context.window is None:
            return self.run_inline(context)
        return self.start(context)

    def run_inline(self, context) -> set[str]:
        """Background mode and scripts without a window: the three steps in one go."""
        try:
            prepared = self.prepare(context)
            return self.finish(context, prepared, self.compute(prepared, _quiet))
        except (I2FETError, ImportError) as exc:
            return self.fail(context, exc)

    def start(self, context) -> set[str]:
        """Prepare, start the worker and go modal."""
        try:
            self._prepared = self.prepare(context)
        except (I2FETError, ImportError) as exc:
            return self.fail(context, exc)
        self._job = Job(type(self).compute, self._prepared)
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type in CANCEL_EVENTS and event.value == "PRESS" and not job.cancelled:
            job.cancel()  # the worker stops at its next step; the timer sees it end
            context.workspace.status_text_set(f"{self.bl_label}: cancelling…")
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not job.finished.is_set():
            if not job.cancelled:
                context.window_manager.progress_update(int(100 * job.fraction))
                context.workspace.status_text_set(f"{self.bl_label}: {job.stage} ({job.fraction:.0%}; Esc "
                                                  f"cancels)")
            return {"RUNNING_MODAL"}
        if job.cancelled:  # Esc wins, even over work that had just finished
            self._stop(context)
            message = f"{self.bl_label} cancelled; nothing was changed."
            context.scene.i2fet.status = message
            self.report({"INFO"}, message)
            return {"CANCELLED"}
        if job.error is None:
            context.window_manager.progress_update(100)
        self._stop(context)
        if job.error is not None:
            return self.fail(context, job.error)
        try:
            return self.finish(context, self._prepared, job.result)
        except (I2FETError, ImportError) as exc:
            return self.fail(context, exc)

    def cancel(self, context) -> None:
        """Blender ends the operator (a file is loaded, the window closes): stop the worker, write nothing."""
        if self._job is not None:
            self._job.cancel()
        if self._timer is not None:
            self._stop(context)

    def _stop(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        self._timer = None

    def fail(self, context, exc: BaseException) -> set[str]:
        """`exc` in one sentence, in the status bar and the sidebar's status; nothing was changed."""
        message = one_sentence(exc, self.bl_label)
        context.scene.i2fet.status = message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}
