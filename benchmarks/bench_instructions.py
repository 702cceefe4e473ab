"""Parsing the longest allowed instruction (2,000 characters of a repeated pattern) against parsing a typical one, as
a ratio in one process so a loaded machine does not change the verdict. Guards against a regular expression that
backtracks without bound; the parser is not linear (4x the text costs 40-130x the time), so the goal is a ratio to a
typical instruction, not a scaling law.

    .venv/bin/python benchmarks/bench_instructions.py [--repeat 7]

Goal: each pattern's 2,000 characters <= 3,000x a typical instruction (measured worst 680-1,140x on a loaded
2-core machine: 'please ' repeated); backtracking without bound would be orders of magnitude above.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gates import Gates  # noqa: E402
from model_runtime.instructions import MAX_INSTRUCTION_CHARS, parse_instruction  # noqa: E402

TYPICAL = "slowly smile for 2 seconds, then look surprised and relax"
PATTERNS = ("slowly smile then frown, ", "from happy to sad ", "a", "and smile ", "please ", "1,")
GOAL_RATIO = 3000.0


def best_of(text: str, repeat: int) -> float:
    parse_instruction(text)  # warm the regex cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        parse_instruction(text)
        times.append(time.perf_counter() - start)
    return min(times)


def ratios(repeat: int = 7) -> dict[str, float]:
    """time(2,000 characters of each pattern) / time(TYPICAL), each the best of `repeat` runs."""
    typical = best_of(TYPICAL, repeat)
    return {pattern.strip(): best_of((pattern * MAX_INSTRUCTION_CHARS)[:MAX_INSTRUCTION_CHARS], repeat) / typical
            for pattern in PATTERNS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    gates = Gates()
    for name, ratio in ratios(args.repeat).items():
        gates.at_most(f"parse 2,000 characters of {name!r} vs a typical instruction", ratio, GOAL_RATIO, "x",
                      "about 3x above the measured worst")
    return gates.exit_code()


if __name__ == "__main__":
    sys.exit(main())
