"""Farm benchmark: rows per minute of `i2fet bake --jobs` with 1 worker against 2 on this machine.

Run: .venv/bin/python benchmarks/bench_farm.py [--rows 48] [--model i2fet|baseline] [--outputs fbx,animation]

Each run is the whole command, as a user starts it: Python and Blender start-up, the model loaded once per worker, then
every row (a fresh scene with the default head, generate, key, write the outputs). Two rates are printed per run:
- steady: rows per minute once every worker is up, timed from the moment the last worker finished its first row to the
  moment the last row finished (the rate a batch of hundreds of lines runs at);
- whole: rows / wall time of the whole command, start-up included (about 4 s here, which a short batch cannot hide).
Goal (issue 15): 2 workers >= 1.6x the steady rows per minute of 1 worker on 2 cores; exit status 1 when missed.
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


def run(rows: int, workers: int, model: str, outputs: list[str]) -> tuple[float, float]:
    """(steady, whole) rows per minute of one `i2fet bake --jobs FILE --workers N` run, from a fresh folder."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [{"instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)], "seed": i,
                 **{kind: f"row{i}.{SUFFIXES[kind]}" for kind in outputs}}
                for i in range(rows)]
        path = Path(tmp) / "jobs.json"
        path.write_text(json.dumps(jobs))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        begin = time.perf_counter()
        finished: list[float] = []  # when each "[k/N] row ..." progress line arrived
        with subprocess.Popen([sys.executable, "-m", "model_runtime", "bake", "--jobs", str(path), "--workers",
                               str(workers), "--model", model], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True) as proc:
            for line in proc.stdout:
                if line.startswith("["):
                    finished.append(time.perf_counter())
        seconds = time.perf_counter() - begin
        if proc.returncode != 0:
            raise SystemExit(f"the bake with {workers} worker(s) failed (exit status {proc.returncode})")
        counts = json.loads((Path(tmp) / "jobs.summary.json").read_text())["counts"]
        assert counts == {"baked": rows, "skipped": 0, "failed": 0}, counts
    assert len(finished) == rows, f"{len(finished)} progress lines for {rows} rows"
    warm = finished[workers - 1]  # every worker has finished a row by the time `workers` rows are done
    steady = (rows - workers) * 60.0 / (finished[-1] - warm)
    return steady, rows * 60.0 / seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=48)
    p.add_argument("--model", default="i2fet")
    p.add_argument("--outputs", default="fbx,animation", help="per row, comma-separated: out, fbx, preview, animation")
    args = p.parse_args()
    outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    print(f"{args.rows} rows, model {args.model}, outputs {', '.join(outputs)}, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if args.rows < 8:
        raise SystemExit("--rows must be at least 8: the steady rate needs rows after every worker is up")
    one, one_whole = run(args.rows, 1, args.model, outputs)
    print(f"1 worker : {one:6.1f} rows/min steady, {one_whole:6.1f} whole")
    two, two_whole = run(args.rows, 2, args.model, outputs)
    print(f"2 workers: {two:6.1f} rows/min steady, {two_whole:6.1f} whole")
    ratio = two / one
    print(f"speed-up {ratio:.2f}x steady (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'MISSED'}; "
          f"{two_whole / one_whole:.2f}x whole; load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
