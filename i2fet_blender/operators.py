"""Operators: Add default head, Generate (+ re-run from history), Clear generated animation, Export Face FBX, and the
runtime tools of the preferences (check environment, copy log, install runtime, release memory).

Bad input ends with one sentence in the status bar (`report({'ERROR'}, ...)`) and {'CANCELLED'}, before anything in
the scene has changed: every check runs before the first write.
"""

from __future__ import annotations

import subprocess
import tempfile

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from model_runtime.bake_options import DEFAULT_PRESET, FBX_PRESETS
from model_runtime.errors import I2FETError, InputError
from model_runtime.instructions import validate_instruction

from . import properties, runtime_cache, runtime_env, shape_keys, targets
from .head_object import add_default_head
from .ops_base import ObjectModeOperator, cancel, generation_fps, one_sentence, scene_fps, target_object
from .preferences import PACKAGE, flame_file, get_prefs, load_settings

_last_log = ""


def run_generate(op, context, instruction: str | None = None, seed: int | None = None) -> set[str]:
    """Validate, generate and write; the body of Generate and of re-running a history entry."""
    scene = context.scene
    settings = scene.i2fet
    try:
        text = validate_instruction(instruction if instruction is not None else settings.instruction)
        target = targets.face_target(target_object(context), flame_file(context))
        fps_exact = scene_fps(scene) if settings.use_scene_fps else float(settings.fps)
        start = scene.frame_current if settings.use_current_frame else settings.start_frame
        seed = settings.seed if seed is None else seed
        runtime = runtime_cache.get_runtime(load_settings(context))
        start_image = neutral_image = None
        if settings.use_start_image:
            if not settings.start_image:
                raise InputError("Choose the photo to start from, or turn Start From Photo off.")
            start_image = bpy.path.abspath(settings.start_image)
            neutral_image = bpy.path.abspath(settings.neutral_image) if settings.neutral_image else None
        anim = runtime.generate(text, fps=generation_fps(fps_exact), seed=seed,
                                duration=None if settings.auto_duration else settings.duration,
                                intensity=settings.intensity, start_image=start_image, neutral_image=neutral_image,
                                life=settings.life)
        result = target.write(anim, start_frame=start, fps=fps_exact, mirror=settings.mirror,
                              reduce=settings.reduce_keys, tolerance=settings.tolerance)
    except (I2FETError, ImportError) as exc:
        return cancel(op, exc)
    obj = target.obj
    if result.end_frame > scene.frame_end:
        scene.frame_end = result.end_frame
    properties.show_segments(settings, anim.segments, start, fps_exact / anim.fps)
    properties.remember(settings, text, seed)
    parts = ", ".join(f"{s.label} ({s.start_frame}-{s.end_frame})" for s in settings.segments)
    settings.status = f"{obj.name}: frames {result.start_frame}-{result.end_frame}, {parts}"
    op.report({"INFO"}, f"Generated frames {result.start_frame}-{result.end_frame} on {obj.name!r}: {parts}.")
    if getattr(result, "unmatched_channels", None):
        op.report({"WARNING"}, f"{len(result.unmatched_channels)} ARKit channels have no shape key on {obj.name!r} "
                               f"(e.g. {', '.join(result.unmatched_channels[:3])}); they were skipped.")
    for warning in result.warnings:
        op.report({"WARNING"}, warning)
    return {"FINISHED"}


class I2FET_OT_add_default_head(ObjectModeOperator):
    """Add the default head (52 ARKit shape keys) at the 3D cursor"""

    bl_idname = "i2fet.add_default_head"
    bl_label = "Add Default Head"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        try:
            obj = add_default_head(context)
        except I2FETError as exc:
            return cancel(self, exc)
        context.scene.i2fet.target = obj
        return {"FINISHED"}


class I2FET_OT_generate(bpy.types.Operator):
    """Generate facial animation from the instruction onto the target's shape keys (a new action; nothing is lost)"""

    bl_idname = "i2fet.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    instruction: StringProperty(name="Instruction", default="", options={"SKIP_SAVE"},
                                description="Overrides the sidebar's instruction when set")
    _timer = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.mode == "OBJECT"

    def execute(self, context):
        return run_generate(self, context, self.instruction or None)

    def invoke(self, context, event):
        settings = load_settings(context)
        if runtime_cache.cached(settings) is not None or bpy.app.background:
            return self.execute(context)
        runtime_cache.start_loading(settings)  # the thread only loads the model; bpy stays on this thread
        context.scene.i2fet.status = "Loading the model…"
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.2, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":  # stop waiting; the load finishes in the background and is kept for next time
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
            context.scene.i2fet.status = "Cancelled while the model was loading; nothing was changed."
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = runtime_cache.state(load_settings(context))
        if state == "loading":
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        self._timer = None
        if state != "loaded":
            error = runtime_cache.take_error()
            message = one_sentence(error) if error else "The model could not be loaded."
            context.scene.i2fet.status = message
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        return self.execute(context)


class I2FET_OT_rerun(bpy.types.Operator):
    """Generate again from an instruction in the history"""

    bl_idname = "i2fet.rerun"
    bl_label = "Re-run"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(default=0, min=0)

    def execute(self, context):
        settings = context.scene.i2fet
        if self.index >= len(settings.history):
            self.report({"ERROR"}, "That history entry no longer exists.")
            return {"CANCELLED"}
        item = settings.history[self.index]
        text, seed = item.instruction, item.seed
        settings.instruction = text
        return run_generate(self, context, text, seed)


class I2FET_OT_clear_generated(bpy.types.Operator):
    """Remove the animation I2FET generated on the target (and restore the action that was active before)"""

    bl_idname = "i2fet.clear_generated"
    bl_label = "Clear Generated Animation"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        obj = target_object(context)
        if obj is None or obj.type != "MESH":
            self.report({"ERROR"}, "Select the mesh whose generated animation should be removed.")
            return {"CANCELLED"}
        if shape_keys.is_linked(obj):
            self.report({"ERROR"}, f"{obj.name!r} is linked from another file; make it local first.")
            return {"CANCELLED"}
        removed = targets.clear_generated(obj)
        context.scene.i2fet.segments.clear()
        self.report({"INFO"}, f"Removed {removed} generated action(s) from {obj.name!r}.")
        return {"FINISHED"}


class I2FET_OT_export_fbx(bpy.types.Operator, ExportHelper):
    """Export the target face with its shape-key animation as FBX (checks first what would drop the animation)"""

    bl_idname = "i2fet.export_fbx"
    bl_label = "Export Face FBX"
    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", default=DEFAULT_PRESET, items=[
        (name, preset.label, preset.description) for name, preset in FBX_PRESETS.items()])
    use_scene_range: BoolProperty(name="Scene Frame Range", default=False,
                                  description="Export the scene's frame range at the scene's times instead of the "
                                              "generated animation's frames as a clip from time 0")

    def execute(self, context):
        try:
            report = targets.export_fbx(context, target_object(context), self.filepath, preset=self.preset,
                                        use_scene_range=self.use_scene_range)
        except I2FETError as exc:
            return cancel(self, exc)
        for warning in report.warnings:
            self.report({"WARNING"}, warning)
        first, last = report.frame_range
        self.report({"INFO"}, f"Exported {report.path} (frames {first}-{last}, {last - first + 1} frames).")
        return {"FINISHED"}


class I2FET_OT_check_environment(bpy.types.Operator):
    """Check Blender, Python, the runtime's packages, the device and the text encoder"""

    bl_idname = "i2fet.check_environment"
    bl_label = "Check Environment"

    def execute(self, context):
        global _last_log
        prefs = get_prefs(context)
        runtime_env.activate(runtime_env.runtime_folder(PACKAGE))
        checks = runtime_env.check_environment(prefs.device)
        _last_log = runtime_env.format_log(checks)
        if hasattr(prefs, "bl_rna"):
            prefs.environment_log = _last_log
        missing = [c.name for c in checks if not c.ok]
        if missing:
            self.report({"WARNING"}, f"Missing or failing: {', '.join(missing)}.")
        else:
            self.report({"INFO"}, "The I2FET runtime is ready.")
        return {"FINISHED"}


class I2FET_OT_copy_environment_log(bpy.types.Operator):
    """Copy the environment check to the clipboard (for bug reports)"""

    bl_idname = "i2fet.copy_environment_log"
    bl_label = "Copy Log"

    def execute(self, context):
        if not _last_log:
            bpy.ops.i2fet.check_environment()
        context.window_manager.clipboard = _last_log
        self.report({"INFO"}, "Environment log copied to the clipboard.")
        return {"FINISHED"}


class I2FET_OT_install_runtime(bpy.types.Operator):
    """Install torch and the runtime's other packages into this extension's own folder (not the user site)"""

    bl_idname = "i2fet.install_runtime"
    bl_label = "Install Runtime"

    _timer = None
    _proc = None

    def _commands(self, context):
        """The runtime folder, and the pip commands that install into its staging folder."""
        prefs = get_prefs(context)
        folder = runtime_env.runtime_folder(PACKAGE)
        wheel_dir = bpy.path.abspath(prefs.wheel_dir) if prefs.wheel_dir else None
        return folder, runtime_env.pip_commands(runtime_env.staging_folder(folder), prefs.runtime_variant, wheel_dir)

    def execute(self, context):  # synchronous (background / scripts)
        prefs = get_prefs(context)
        try:
            folder = runtime_env.runtime_folder(PACKAGE)
            runtime_env.run_install(folder, prefs.runtime_variant,
                                    bpy.path.abspath(prefs.wheel_dir) if prefs.wheel_dir else None, log=print)
        except (RuntimeError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Installed the runtime into {folder}.")
        return {"FINISHED"}

    def invoke(self, context, event):
        try:
            self._folder, commands = self._commands(context)
            self._staging = runtime_env.begin_install(self._folder)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, f"The extension's runtime folder cannot be written to ({exc.strerror}).")
            return {"CANCELLED"}
        self._pending = list(commands)
        self._output = ""
        self._start_next()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.5, window=context.window)
        wm.modal_handler_add(self)
        self.report({"INFO"}, "Installing the runtime (this can take several minutes)…")
        return {"RUNNING_MODAL"}

    def _start_next(self):
        cmd = self._pending.pop(0)
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: pip's output can exceed a pipe buffer
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, text=True,
                                      env=runtime_env.pip_environment())

    def modal(self, context, event):
        if event.type != "TIMER" or self._proc.poll() is None:
            return {"PASS_THROUGH"}
        self._log.seek(0)
        self._output += self._log.read()
        self._log.close()
        if self._proc.returncode != 0 or not self._pending:
            context.window_manager.event_timer_remove(self._timer)
            if self._proc.returncode != 0:
                print(self._output)
                runtime_env.abandon_install(self._staging)
                self.report({"ERROR"}, runtime_env.explain_pip_failure(self._output))
                return {"CANCELLED"}
            try:
                runtime_env.finish_install(self._folder, self._staging)
            except RuntimeError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
            self.report({"INFO"}, f"Installed the runtime into {self._folder}.")
            return {"FINISHED"}
        self._start_next()
        return {"PASS_THROUGH"}


class I2FET_OT_release_memory(bpy.types.Operator):
    """Unload the model (it loads again on the next Generate)"""

    bl_idname = "i2fet.release_memory"
    bl_label = "Release Memory"

    def execute(self, context):
        released = runtime_cache.release()
        self.report({"INFO"}, "Released the model." if released else "No model was loaded.")
        return {"FINISHED"}


CLASSES = (I2FET_OT_add_default_head, I2FET_OT_generate, I2FET_OT_rerun, I2FET_OT_clear_generated,
           I2FET_OT_export_fbx, I2FET_OT_check_environment, I2FET_OT_copy_environment_log, I2FET_OT_install_runtime,
           I2FET_OT_release_memory)
