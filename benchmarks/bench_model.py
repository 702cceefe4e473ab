"""Model benchmark: warm generation latency (1-, 3-, 6-segment instructions) and batched throughput, each model beside
the baseline.

Run: .venv/bin/python benchmarks/bench_model.py [--models i2fet baseline] [--repeats 30] [--batch 256] [--device cpu]

Warm = `Runtime.generate` in a process that has already loaded the model and generated once. Throughput = one
`generate_batch` call on `--batch` instructions (held-out evaluation items and multi-part sequences built from
them), in instructions per second. Goals, for every model named (absolute, as claimed in the README; the load is
printed beside the verdicts): warm <= 30 ms per instruction, >= 50 instructions/s batched. A model that cannot be
loaded misses its goals. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import Gates, machine_load  # noqa: E402

INSTRUCTIONS = {
    1: "smile",
    3: "slowly smile, then look shocked, then relax",
    6: "slightly frown, then smile for 2 seconds, then look surprised, then wink with the left eye, "
       "then look disgusted, then back to neutral",
}
WARM_GOAL_MS = 30.0
THROUGHPUT_GOAL = 50.0


def batch_instructions(count: int, seed: int = 0) -> list[str]:
    """A realistic batch: held-out single items and 'X, then Y' sequences of them (about one in three)."""
    import numpy as np

    from model_runtime.training.arkit_data import heldout_items

    items = heldout_items("heldout_phrasings") + heldout_items("heldout_concepts")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        a = items[int(rng.integers(len(items)))].instruction
        if rng.random() < 0.33:
            b = items[int(rng.integers(len(items)))].instruction
            out.append(f"{a}, then {b}")
        else:
            out.append(a)
    return out


def bench(model: str, device: str, repeats: int, batch: int) -> dict:
    from model_runtime import Runtime

    try:
        runtime = Runtime.load(model=model, device=device)
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}
    warm = {}
    for count, text in INSTRUCTIONS.items():
        anim = runtime.generate(text)
        steps = [s for s in anim.segments if s.get("kind") != "release"]  # a wink's reopening is its own key
        if len(steps) != count:
            raise AssertionError(f"{text!r} gave {len(steps)} segments")
        samples = []
        for _ in range(repeats):
            begin = time.perf_counter()
            runtime.generate(text)
            samples.append(time.perf_counter() - begin)
        warm[count] = statistics.median(samples) * 1e3
    texts = batch_instructions(batch)
    runtime.generate_batch(texts[:16])  # warm the batch path
    runs = []
    for _ in range(3):
        begin = time.perf_counter()
        anims = runtime.generate_batch(texts)
        runs.append(time.perf_counter() - begin)
        assert len(anims) == len(texts)
    return {"warm_ms": warm, "throughput": len(texts) / statistics.median(runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["i2fet", "baseline"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}; {machine_load()}")
    results = {m: bench(m, args.device, args.repeats, args.batch) for m in args.models}
    base = results.get("baseline") if "baseline" in results and "error" not in results["baseline"] else None
    width = 14
    print(f"{'measure':40}" + "".join(f"{m:>{width}}" for m in results) + (f"{'ratio':>{width}}" if base else "")
          + "  goal")
    rows = [(f"warm latency, {c}-segment (median ms)", ("warm_ms", c), f"<= {WARM_GOAL_MS:g} ms")
            for c in INSTRUCTIONS]
    rows.append((f"batch throughput, {args.batch} (instr/s)", ("throughput", None), f">= {THROUGHPUT_GOAL:g}/s"))
    for label, (key, sub), goal in rows:
        cells, verdicts = [], []
        for m, r in results.items():
            if "error" in r:
                cells.append("-")
                continue
            v = r[key][sub] if sub is not None else r[key]
            cells.append(f"{v:.1f}")
            ok = v <= WARM_GOAL_MS if key == "warm_ms" else v >= THROUGHPUT_GOAL
            verdicts.append(f"{m} {'met' if ok else 'NOT met'}")
        ratio = ""
        if base is not None:
            first = next((m for m in results if m != "baseline" and "error" not in results[m]), None)
            if first is not None:
                a = results[first][key][sub] if sub is not None else results[first][key]
                b = base[key][sub] if sub is not None else base[key]
                ratio = f"{a / b:.2f}x" if b else "-"
        print(f"{label:40}" + "".join(f"{c:>{width}}" for c in cells) + (f"{ratio:>{width}}" if base else "")
              + f"  {goal}: {', '.join(verdicts)}")
    for m, r in results.items():
        if "error" in r:
            print(f"{m}: not benchmarked ({r['error']})")
    if base is not None:
        print("ratio = first other model / baseline")
    gates = Gates()
    for m, r in results.items():
        if "error" in r:
            gates.holds(f"{m} loads", False, r["error"])
            continue
        for count, ms in r["warm_ms"].items():
            gates.at_most(f"{m} warm, {count}-segment (median)", ms, WARM_GOAL_MS, " ms",
                          f"median of {args.repeats}, no allowance; {machine_load()}")
        gates.at_least(f"{m} batch throughput", r["throughput"], THROUGHPUT_GOAL, " instr/s",
                       f"median of 3 batches of {args.batch}, no allowance")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
