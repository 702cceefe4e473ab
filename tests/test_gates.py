"""The quick claim gates, run with every test run (the rest: scripts/check-claims.sh). Each compares against a baseline
measured in the same process, so a loaded machine does not flip the verdict."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_instructions  # noqa: E402

pytestmark = pytest.mark.gate


def test_the_longest_instruction_costs_a_bounded_multiple_of_a_typical_one():
    worst = max(bench_instructions.ratios(repeat=5).values())
    assert worst <= bench_instructions.GOAL_RATIO, f"{worst:.0f}x a typical instruction"


def test_a_missed_goal_exits_non_zero(capsys):
    from gates import Gates

    gates = Gates()
    assert gates.at_most("a", 1.0, 2.0) and gates.exit_code() == 0
    assert not gates.at_least("b", 1.0, 2.0, "x", "tolerance 0") and gates.exit_code() == 1
    assert "GATE MISSED: b: 1x (goal >= 2x; tolerance 0)" in capsys.readouterr().out
