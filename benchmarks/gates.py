"""Benchmarks as gates: each claimed number is checked against its goal with the tolerance stated beside it, and the
benchmark exits 1 when a goal is missed (scripts/check-claims.sh runs them all)."""

from __future__ import annotations

import os


def machine_load() -> str:
    """The load the numbers were measured under, printed beside absolute-time verdicts (which a busy machine can
    miss while ratios measured in one process hold)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} CPUs"


class Gates:
    """Collects the verdicts of one benchmark run; `exit_code()` is 1 when any goal was missed."""

    def __init__(self):
        self.missed: list[str] = []

    def _verdict(self, name: str, ok: bool, text: str) -> bool:
        print(f"GATE {'met' if ok else 'MISSED'}: {name}: {text}", flush=True)
        if not ok:
            self.missed.append(name)
        return ok

    def at_most(self, name: str, value: float, goal: float, unit: str = "", tolerance: str = "") -> bool:
        return self._verdict(name, value <= goal, f"{value:.4g}{unit} (goal <= {goal:g}{unit}"
                             + (f"; {tolerance}" if tolerance else "") + ")")

    def at_least(self, name: str, value: float, goal: float, unit: str = "", tolerance: str = "") -> bool:
        return self._verdict(name, value >= goal, f"{value:.4g}{unit} (goal >= {goal:g}{unit}"
                             + (f"; {tolerance}" if tolerance else "") + ")")

    def holds(self, name: str, ok: bool, text: str) -> bool:
        """A claim that is not one number against a goal (an ordering, a model that must load)."""
        return self._verdict(name, bool(ok), text)

    def close_to(self, name: str, value: float, claimed: float, tolerance: float, unit: str = "") -> bool:
        """A published number reproduced: |value - claimed| <= tolerance."""
        return self._verdict(name, abs(value - claimed) <= tolerance,
                             f"{value:.4g}{unit} (claimed {claimed:g}{unit}; tolerance +-{tolerance:g}{unit})")

    def exit_code(self) -> int:
        if self.missed:
            print(f"{len(self.missed)} goal(s) missed: {', '.join(self.missed)}")
        return 1 if self.missed else 0
