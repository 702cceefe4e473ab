"""Start-from-a-photo benchmark: image -> starting expression latency (cold and warm) and accuracy on renders.

Run: .venv/bin/python benchmarks/bench_photo.py [--repeats 20] [--faces 24]

Cold = a new process that imports the runtime and runs `read_start_expression` once (Python start, MediaPipe import
and graph set-up, landmark model from the cache, fit); the landmark model is built into the cache first if it is not
there yet, and that one-off build is timed separately. Warm = `read_start_expression` again in a process that has done
it once. The detector alone (MediaPipe on the same image) is timed as the in-process baseline.
Accuracy: mean absolute error of the recovered weights on renders of the default head at known expressions (random
instances of the knowledge base's concepts, random head rotations up to 8 degrees), on the active and on the inactive
channels, and the rotation error (the issue's bar: active-channel MAE <= 0.15). Goal on the 2-core CPU this project is developed on: warm <= 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COLD = ("import sys, time; t = time.perf_counter(); from model_runtime.photo import read_start_expression; "
        "read_start_expression(sys.argv[1]); print(time.perf_counter() - t)")


def faces(count: int, seed: int = 2):
    from model_runtime.knowledge import all_concepts, sample_concept_weights

    rng = np.random.default_rng(seed)
    concepts = all_concepts()
    for _ in range(count):
        weights = sample_concept_weights(concepts[rng.integers(len(concepts))], rng)
        yield weights, tuple(float(a) for a in rng.uniform(-8, 8, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--faces", type=int, default=24)
    parser.add_argument("--seed", type=int, default=2,
                        help="the faces' seed; the regressor's training faces come from another (training/photo.py)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")

    from PIL import Image

    from model_runtime.heads.head import load_default_head
    from model_runtime.photo import read_start_expression
    from model_runtime.photo.correspondence import load_landmark_model
    from model_runtime.photo.image import load_image
    from model_runtime.photo.landmarks import get_detector
    from model_runtime.heads.render import render_expressions

    begin = time.perf_counter()
    load_landmark_model(load_default_head())
    print(f"landmark model ready (built once per head and MediaPipe version, then cached): "
          f"{time.perf_counter() - begin:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        samples = list(faces(args.faces, args.seed))
        paths = []
        for i, (weights, rotation) in enumerate(samples):
            path = Path(tmp) / f"face{i}.png"
            Image.fromarray(render_expressions(weights, 480, rotation_deg=rotation)).save(path)
            paths.append(path)

        cold = []
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", COLD, str(paths[0])], check=True, capture_output=True,
                                 text=True)
            cold.append(float(out.stdout.strip().splitlines()[-1]))
        print(f"cold (new process, import + first read incl. MediaPipe set-up), median of 3: "
              f"{statistics.median(cold) * 1e3:.0f} ms")

        read_start_expression(paths[0])
        warm = []
        for i in range(args.repeats):
            begin = time.perf_counter()
            read_start_expression(paths[i % len(paths)])
            warm.append(time.perf_counter() - begin)
        detector = get_detector()
        rgb, _ = load_image(paths[0])
        detect = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            detector.detect(rgb)
            detect.append(time.perf_counter() - begin)
        print(f"warm read_start_expression (480x480 PNG), median of {len(warm)}: "
              f"{statistics.median(warm) * 1e3:.0f} ms (p90 {sorted(warm)[int(0.9 * len(warm))] * 1e3:.0f} ms); "
              f"MediaPipe detection alone {statistics.median(detect) * 1e3:.1f} ms")

        active_err, inactive_err, rot_err = [], [], []
        for (weights, rotation), path in zip(samples, paths):
            result = read_start_expression(path)
            error = np.abs(result.weights - weights)
            on = weights > 0
            active_err.append(error[on].mean())
            inactive_err.append(error[~on].mean())
            rot_err.append(np.abs(np.subtract(result.rotation_deg, rotation)).max())
        print(f"accuracy on {len(samples)} renders: MAE active channels {np.mean(active_err):.3f} "
              f"(per face {min(active_err):.2f}-{max(active_err):.2f}), inactive {np.mean(inactive_err):.3f}; "
              f"rotation error (largest angle) median {np.median(rot_err):.1f} deg, max {max(rot_err):.1f} deg")


if __name__ == "__main__":
    main()
