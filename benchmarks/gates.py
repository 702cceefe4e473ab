"""Benchmarks as gates: each claimed number is checked against its goal with the tolerance stated beside it, and the
benchmark exits 1 when a goal is missed (scripts/check-claims.sh runs them all)."""

from __future__ import annotations


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

    def exit_code(self) -> int:
        if self.missed:
            print(f"{len(self.missed)} goal(s) missed: {', '.join(self.missed)}")
        return 1 if self.missed else 0
