"""Farm benchmark: rows per minute of `i2fet bake --jobs` with 1 worker against 2 on this machine.

Run: .venv/bin/python benchmarks/bench_farm.py [--rows 12] [--model i2fet|baseline] [--outputs fbx,animation]

Each run is the whole command, as a user starts it: Python and Blender start-up, the model loaded once per worker, then
every row (a fresh scene with the default head, generate, key, write the outputs). Rows per minute = rows / wall time.
Goal (issue 15): 2 workers >= 1.6x the rows per minute of 1 worker on 2 cores; exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.6
SUFFIXES = {"out": "blend", "fbx": "fbx", "preview": "png", "animation": "json"}
INSTRUCTIONS = ["smile", "slowly frown, then relax", "wink with the left eye", "look surprised, then smile",
                "raise the right eyebrow", "look disgusted", "smile for 2 seconds, then look sad", "look angry"]


def run(rows: int, workers: int, model: str, outputs: list[str]) -> float:
    """Rows per minute of one `i2fet bake --jobs FILE --workers N` run, from a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [{"instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)], "seed": i,
                 **{kind: f"row{i}.{SUFFIXES[kind]}" for kind in outputs}}
                for i in range(rows)]
        path = Path(tmp) / "jobs.json"
        path.write_text(json.dumps(jobs))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-m", "model_runtime", "bake", "--jobs", str(path), "--workers", str(workers),
                        "--model", model], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        seconds = time.perf_counter() - begin
        counts = json.loads((Path(tmp) / "jobs.summary.json").read_text())["counts"]
        assert counts == {"baked": rows, "skipped": 0, "failed": 0}, counts
    return rows * 60.0 / seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=12)
    p.add_argument("--model", default="i2fet")
    p.add_argument("--outputs", default="fbx,animation", help="per row, comma-separated: out, fbx, preview, animation")
    args = p.parse_args()
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    print(f"{args.rows} rows, model {args.model}, outputs {', '.join(outputs)}, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f} at start")
    one = run(args.rows, 1, args.model, outputs)
    print(f"1 worker : {one:6.1f} rows/min")
    two = run(args.rows, 2, args.model, outputs)
    print(f"2 workers: {two:6.1f} rows/min")
    ratio = two / one
    print(f"speed-up {ratio:.2f}x (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'MISSED'}; "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
