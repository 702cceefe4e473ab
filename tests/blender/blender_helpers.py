"""Helpers shared by the Blender tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import numpy as np
import pytest

import bpy  # noqa: E402 - a missing bpy must fail the run, never skip the Blender tests


def make_animation(num_frames: int = 31, fps: int = 30, instruction: str = "test smile", seed: int = 0):
    """A deterministic Animation of smooth per-channel curves in [0, 1] (no model needed)."""
    from model_runtime.animation import Animation
    from model_runtime.expression_space import ARKIT_CHANNELS

    rng = np.random.default_rng(seed)
    t = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    phase = rng.uniform(0, np.pi, size=len(ARKIT_CHANNELS))
    amp = rng.uniform(0.2, 0.9, size=len(ARKIT_CHANNELS))
    frames = amp * (0.5 - 0.5 * np.cos(2 * np.pi * t[:, None] + phase))
    segments = [{"text": instruction, "start_frame": 0, "end_frame": num_frames - 1, "apex_frame": num_frames // 2,
                 "label": "happy", "intensity": 0.8, "confidence": 0.9, "concept": "smile", "kind": "expression"}]
    return Animation(frames=frames.astype(np.float32), fps=fps, segments=segments, instruction=instruction)


def add_cube_with_keys(names, name="Face"):
    """A mesh object with a Basis and the given shape keys (each moves a vertex a little)."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for i, key_name in enumerate(names):
        block = obj.shape_key_add(name=key_name, from_mix=False)
        block.data[0].co.z = 0.01 * (i + 1)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


class FakeRuntime:
    """Stands in for model_runtime.Runtime in operator tests (the model has its own tests); records its calls."""

    def __init__(self):
        self.calls = []
        self.life = []  # the `life` argument of each call

    def generate(self, instruction, fps=30, seed=0, duration=None, intensity=1.0, start=None, start_image=None,
                 neutral_image=None, life=False):
        from model_runtime.instructions import validate_instruction

        text = validate_instruction(instruction)
        call = dict(instruction=text, fps=fps, seed=seed, duration=duration, intensity=intensity)
        if start_image is not None:  # the real runtime's first step: read the photo (bad files raise InputError)
            from model_runtime.photo.image import load_image

            load_image(start_image)
            call["start_image"] = start_image
            if neutral_image is not None:
                load_image(neutral_image, what="neutral image")
                call["neutral_image"] = neutral_image
        self.calls.append(call)
        self.life.append(life)
        seconds = 2.0 if duration is None else duration
        anim = make_animation(num_frames=int(round(seconds * fps)) + 1, fps=fps, instruction=text, seed=seed)
        anim.frames *= intensity
        return anim


def use_fake_runtime(crash_on: str = "", marker: str = "") -> None:
    """A farm worker's setup (runs in the spawned process): the fake model instead of the real one. A job whose
    instruction is `crash_on` kills its worker after the first output is staged; with `marker`, only while that file
    does not exist yet (it is created just before), so the retry succeeds."""
    import os

    from i2fet_blender import runtime_cache

    class CrashingRuntime(FakeRuntime):
        def generate(self, instruction, **kwargs):
            anim = super().generate(instruction, **kwargs)
            if instruction == crash_on and not (marker and os.path.exists(marker)):
                if marker:
                    open(marker, "w").close()
                save = anim.save

                def save_then_die(path):
                    save(path)
                    os._exit(3)

                anim.save = save_then_die
            return anim

    runtime_cache._load = lambda settings: CrashingRuntime()


def use_slow_fake_runtime() -> None:
    """The fake model, with every row after a worker's first taking at least a second longer: a test can interrupt a
    run between rows however loaded the machine is (the fake's rows are otherwise fast enough to all finish first)."""
    import time

    from i2fet_blender import runtime_cache

    use_fake_runtime()
    fake = runtime_cache._load(None)
    generate = fake.generate
    calls = []

    def slow_generate(instruction, **kwargs):
        if calls:
            time.sleep(1.0)
        calls.append(instruction)
        return generate(instruction, **kwargs)

    fake.generate = slow_generate
    runtime_cache._load = lambda settings: fake


class FakeWindowManager:
    """What a modal operator asks of the window manager, recorded: background Blender has no window to run one in."""

    def __init__(self):
        self.timers, self.handlers, self.progress = [], [], []

    def event_timer_add(self, step, window=None):
        self.timers.append(object())
        return self.timers[-1]

    def event_timer_remove(self, timer):
        self.timers.remove(timer)

    def modal_handler_add(self, op):
        self.handlers.append(op)

    def progress_begin(self, low, high):
        self.progress.append(("begin", low, high))

    def progress_update(self, value):
        self.progress.append(value)

    def progress_end(self):
        self.progress.append("end")


class ModalPlay:
    """A worker operator (i2fet_blender.worker) played by hand: its own Python methods on a plain object with `props`
    as its properties, a context with a fake window manager and status bar, and TIMER / key events sent by the test.
    The scene, the objects and bpy.data are real."""

    def __init__(self, cls, **props):
        namespace = {}
        for base in reversed(cls.__mro__):
            if base.__module__.startswith("i2fet_blender"):
                namespace.update({k: v for k, v in vars(base).items() if not k.startswith("__")})
        self.op = type(f"Plain{cls.__name__}", (), namespace)()
        for name, value in props.items():
            setattr(self.op, name, value)
        self.reports = []
        self.op.report = lambda kind, message: self.reports.append((next(iter(kind)), message))
        self.status_texts = []
        workspace = type("Workspace", (), {"status_text_set": lambda _, text: self.status_texts.append(text)})()
        self.wm = FakeWindowManager()
        self.context = _PlayContext(self.wm, workspace)

    def start(self):
        return self.op.start(self.context)

    def send(self, event_type, value="PRESS"):
        from types import SimpleNamespace

        return self.op.modal(self.context, SimpleNamespace(type=event_type, value=value))

    def tick_until_done(self, timeout=600.0, every=0.02):
        """TIMER events until the operator ends; its result."""
        import time

        deadline = time.monotonic() + timeout
        while (result := self.send("TIMER", "NOTHING")) == {"RUNNING_MODAL"}:
            assert time.monotonic() < deadline, "the worker did not end"
            time.sleep(every)
        return result


class _PlayContext:
    """bpy.context's scene, objects and mode, with a fake window manager and workspace."""

    def __init__(self, wm, workspace):
        self.window_manager, self.workspace, self.window = wm, workspace, object()

    def __getattr__(self, name):
        return getattr(bpy.context, name)


class WorkerGate:
    """Holds a worker (i2fet_blender.worker.Job) at the first progress call of `stage` until `release`, so a test acts
    at a known step whatever the machine's speed; records every stage the worker reports, in order."""

    def __init__(self, monkeypatch, stage=None):
        import threading

        from i2fet_blender import worker

        self.stage, self.heard = stage, []
        self.reached, self.released = threading.Event(), threading.Event()
        original = worker.Job.progress

        def progress(job, fraction, name):
            self.heard.append((fraction, name))
            if name == self.stage and not self.reached.is_set():
                self.reached.set()
                assert self.released.wait(600), "the test never released the worker"
            original(job, fraction, name)

        monkeypatch.setattr(worker.Job, "progress", progress)

    def wait(self, play, timeout=600.0):
        """TIMER events (the operator must keep running) until the worker is held at the stage."""
        import time

        deadline = time.monotonic() + timeout
        while not self.reached.is_set():
            assert play.send("TIMER", "NOTHING") == {"RUNNING_MODAL"}
            assert time.monotonic() < deadline, f"the worker never reached {self.stage!r}"
            time.sleep(0.02)

    def release(self):
        self.released.set()
