"""Language benchmark: pass rate on the held-out language set (issue 13), overall and per category.

Run: .venv/bin/python benchmarks/bench_language.py [--model i2fet|baseline] [--set heldout|dev] [--show-failures]
         [--encoder NAME] [--weights FILE]    (weights trained with another text encoder, e.g. paraphrase-l3)

The held-out set (tests/data/language_heldout.jsonl) was written before the parser work and is not tuned on; the dev
set (tests/data/language_dev.jsonl) is for iterating. Exits 1 below the goals: >= 95% overall, every category >= 90%.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {"heldout": ROOT / "tests" / "data" / "language_heldout.jsonl",
        "dev": ROOT / "tests" / "data" / "language_dev.jsonl"}
GOAL_OVERALL = 0.95
GOAL_CATEGORY = 0.90


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("i2fet", "baseline"), default="i2fet")
    parser.add_argument("--set", choices=tuple(SETS), default="heldout")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--encoder", default="minilm", help="text encoder (the one --weights was trained with)")
    parser.add_argument("--weights", help="the learned model's weights file (default: the shipped one)")
    args = parser.parse_args(argv)

    from model_runtime import Runtime
    from model_runtime.evaluation.language import load_cases, score

    runtime = Runtime.load(model=args.model, device="cpu", encoder=args.encoder,
                           weights=args.weights if args.model == "i2fet" else None)
    result = score(runtime, load_cases(SETS[args.set]))
    print(f"{args.model} ({args.encoder}{', ' + args.weights if args.weights else ''}) on {args.set} "
          f"({result['n']} instructions): {result['overall']:.1%} pass")
    for category, rate in result["categories"].items():
        print(f"  {category:14s} {rate:.1%}")
    if args.show_failures:
        for case_id, info in result["failed"].items():
            print(f"  FAIL {case_id}: {info['text']!r}: {'; '.join(info['problems'])}")
    ok = result["overall"] >= GOAL_OVERALL and all(r >= GOAL_CATEGORY for r in result["categories"].values())
    print("goals met" if ok else f"below the goals (>= {GOAL_OVERALL:.0%} overall, >= {GOAL_CATEGORY:.0%} per category)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
