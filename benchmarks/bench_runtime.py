"""Runtime benchmark: cold start, warm latency by segment count, peak memory.

Run: .venv/bin/python benchmarks/bench_runtime.py [--model i2fet|baseline] [--repeats 50] [--cold-runs 5]

Cold start = a new process that runs `i2fet generate` until the animation file is written (Python start, torch
import, encoder load, generation, atomic write). Warm = `Runtime.generate` in a process that has already loaded.
The parse-and-plan step alone is timed too, as the in-process baseline the encoder and generator costs add to.
Goals on the 2-core CPU this project is developed on (issues 2 and 13; absolute, as claimed, so a busy machine can
miss them: the load is printed beside the verdicts): cold <= 3 s; warm <= 15 ms for one segment, <= 30 ms for three
and six; peak RSS <= 700 MB. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gates import Gates, machine_load

INSTRUCTIONS = {
    1: "smile",
    3: "slowly smile, then look shocked, then relax",
    6: "slightly frown, then smile for 2 seconds, then look surprised, then wink with the left eye, "
       "then look disgusted, then back to neutral",
}
COLD_GOAL_S = 3.0
WARM_GOAL_MS = {1: 15.0, 3: 30.0, 6: 30.0}
RSS_GOAL_MB = 700.0


def cold_start(runs: int, model: str) -> tuple[list[float], float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            out = Path(tmp) / f"cold{i}.json"
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-m", "model_runtime", "generate", INSTRUCTIONS[3], "-o", str(out),
                            "--model", model], check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - begin)
            assert out.is_file()
    peak_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return times, peak_children_mb


def warm(runtime, repeats: int) -> dict[int, list[float]]:
    results = {}
    for count, text in INSTRUCTIONS.items():
        anim = runtime.generate(text)
        steps = [s for s in anim.segments if s.get("kind") != "release"]  # a wink's reopening is its own key
        assert len(steps) == count, (text, [s["text"] for s in anim.segments])
        samples = []
        for _ in range(repeats):
            begin = time.perf_counter()
            runtime.generate(text)
            samples.append(time.perf_counter() - begin)
        results[count] = samples
    return results


def parse_and_plan(repeats: int) -> dict[int, list[float]]:
    from model_runtime.instructions import parse_instruction
    from model_runtime.timeline import plan_segments

    results = {}
    for count, text in INSTRUCTIONS.items():
        samples = []
        for _ in range(repeats):
            begin = time.perf_counter()
            plan_segments(parse_instruction(text).segments, 30)
            samples.append(time.perf_counter() - begin)
        results[count] = samples
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="i2fet", choices=("i2fet", "baseline"))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; {machine_load()}")
    gates = Gates()

    cold, cold_rss = cold_start(args.cold_runs, args.model)
    print(f"cold start (new process -> animation written), median of {len(cold)}: {statistics.median(cold):.3f} s "
          f"(min {min(cold):.3f}, max {max(cold):.3f}); peak RSS of those processes {cold_rss:.0f} MB")
    gates.at_most("cold start (median)", statistics.median(cold), COLD_GOAL_S, " s",
                  f"median of {len(cold)}, no allowance; {machine_load()}")
    gates.at_most("peak RSS, cold-start processes", cold_rss, RSS_GOAL_MB, " MB", "no allowance")

    from model_runtime import Runtime

    begin = time.perf_counter()
    runtime = Runtime.load(model=args.model, device="cpu")
    print(f"in-process load: {time.perf_counter() - begin:.3f} s")
    base = parse_and_plan(args.repeats)
    results = warm(runtime, args.repeats)
    print(f"{'segments':>8} {'warm median ms':>15} {'p90 ms':>8} {'parse+plan ms':>14} {'ratio':>7}")
    for count, samples in results.items():
        med = statistics.median(samples) * 1e3
        p90 = sorted(samples)[int(0.9 * len(samples))] * 1e3
        plan_ms = statistics.median(base[count]) * 1e3
        print(f"{count:>8} {med:>15.2f} {p90:>8.2f} {plan_ms:>14.3f} {med / plan_ms:>6.0f}x")
    for count, samples in results.items():
        gates.at_most(f"warm generate, {count} segment(s) (median)", statistics.median(samples) * 1e3,
                      WARM_GOAL_MS[count], " ms", f"median of {len(samples)}, no allowance; {machine_load()}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")
    gates.at_most("peak RSS, benchmark process", peak, RSS_GOAL_MB, " MB", "no allowance")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
