"""Blender-side timings: the bulk fcurve writer vs keyframe_insert, Generate with a warm model, FBX export.

    .venv/bin/python benchmarks/bench_blender.py [--frames 1000] [--repeat 3]

Goals (exit 1 when one is missed): writer >= 100x faster than keyframe_insert, a ratio measured in this process
(README: 152x); Generate (6-second instruction, warm model) <= 150 ms, an absolute time (README: 58.6 ms, so a
2.5x margin for a loaded machine). The Generate operator is also timed with torch's default intra-op threads (the
runtime's single-thread setting patched out) as the baseline in the same process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from gates import Gates  # noqa: E402


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fresh_head():
    from i2fet_blender.head_object import add_default_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    return add_default_head(bpy.context)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gates = Gates()
    from model_runtime.animation import Animation
    from model_runtime.expression_space import ARKIT_CHANNELS

    import i2fet_blender
    from i2fet_blender import runtime_cache, writer

    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, size=(args.frames, 52)).astype(np.float32)
    anim = Animation(frames=frames, fps=30, instruction="bench")

    def bulk():
        obj = fresh_head()
        t0 = time.perf_counter()
        writer.write_animation(obj, anim, start_frame=1)
        return time.perf_counter() - t0

    def insert():
        obj = fresh_head()
        blocks = [obj.data.shape_keys.key_blocks[c] for c in ARKIT_CHANNELS]
        t0 = time.perf_counter()
        for f in range(args.frames):
            row = frames[f]
            for i, kb in enumerate(blocks):
                kb.value = float(row[i])
                kb.keyframe_insert("value", frame=f + 1)
        return time.perf_counter() - t0

    t_bulk = min(bulk() for _ in range(args.repeat))
    t_insert = insert()
    print(f"writer (keyframe_points.add + foreach_set), 52 x {args.frames}: {t_bulk * 1e3:.1f} ms")
    print(f"keyframe_insert, 52 x {args.frames}:                          {t_insert * 1e3:.1f} ms")
    gates.at_least("writer speed-up over keyframe_insert", t_insert / t_bulk, 100, "x", "README 152x")

    obj = fresh_head()
    t0 = time.perf_counter()
    red = writer.write_animation(obj, Animation(frames=np.repeat(frames[::10], 10, axis=0), fps=30),
                                 reduce=True)
    print(f"writer with key reduction (52 x {args.frames}, piecewise-constant input): "
          f"{(time.perf_counter() - t0) * 1e3:.1f} ms, {red.num_keys} keys kept of {52 * args.frames}")

    i2fet_blender.register()
    try:
        t0 = time.perf_counter()
        from i2fet_blender.preferences import load_settings

        runtime = runtime_cache.get_runtime(load_settings(bpy.context))  # the settings the operator uses
        print(f"model load (cold, once per session): {(time.perf_counter() - t0):.2f} s")
        instruction = "smile for 3 seconds, then look surprised for 3 seconds"
        anim6 = runtime.generate(instruction, fps=30)
        print(f"instruction {instruction!r}: {anim6.num_frames} frames ({anim6.duration_s:.2f} s)")
        t_gen = best_of(lambda: runtime.generate(instruction, fps=30), args.repeat)
        print(f"runtime.generate (warm): {t_gen * 1e3:.1f} ms")

        def operator():
            fresh_head()
            scene = bpy.context.scene
            scene.i2fet.instruction = instruction
            scene.render.fps = 30
            t0 = time.perf_counter()
            assert bpy.ops.i2fet.generate() == {"FINISHED"}
            return time.perf_counter() - t0

        import contextlib
        from unittest import mock

        from model_runtime import runtime as runtime_module

        with mock.patch.object(runtime_module, "single_intra_op_thread", contextlib.nullcontext):
            t_default = min(operator() for _ in range(args.repeat))
        op_times = [operator() for _ in range(args.repeat)]
        print("Generate operator runs: " + ", ".join(f"{t * 1e3:.1f}" for t in op_times) + " ms")
        t_op = min(op_times)
        print(f"Generate operator with torch's default threads: {t_default * 1e3:.1f} ms "
              f"(ratio to the runtime's single thread {t_default / t_op:.2f})")
        gates.at_most("Generate operator, warm model (generate + write + UI lists)", t_op * 1e3, 150, " ms",
                      "README 58.6 ms")

        from i2fet_blender import fbx_export

        with tempfile.TemporaryDirectory() as tmp:
            def export():
                t0 = time.perf_counter()
                fbx_export.export_face(bpy.context, bpy.context.active_object, str(Path(tmp) / "face.fbx"),
                                       frame_range=(1, anim6.num_frames))
                return time.perf_counter() - t0

            t_fbx = min(export() for _ in range(args.repeat))
        print(f"FBX export (default head, 52 animated shape keys, {anim6.num_frames} frames): {t_fbx * 1e3:.0f} ms")
    finally:
        i2fet_blender.unregister()
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
