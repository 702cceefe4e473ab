"""Progress and cancellation for runtime work that takes seconds (shape transfer, reading a video), so a caller with
a user interface can show how far it is and stop it.

A long function takes `progress(fraction, stage)`: it is called at each stage boundary with a fraction that only
rises, ending with (1.0, "done"). To stop the work, the callback raises `Cancelled`; it propagates out of the
function, which then produces nothing. Without a callback the function runs as it always did.
"""

from __future__ import annotations

from typing import Callable

Progress = Callable[[float, str], None]


class Cancelled(Exception):
    """The caller asked to stop; nothing was produced."""


def report(progress: Progress | None, fraction: float, stage: str) -> None:
    """Tell `progress` (if any) that `stage` starts at `fraction` of the work; it may raise Cancelled."""
    if progress is not None:
        progress(fraction, stage)


def within(progress: Progress | None, start: float, end: float) -> Progress | None:
    """`progress` for a part of the work: the part's fractions 0..1 land between `start` and `end` of the whole."""
    if progress is None:
        return None
    return lambda fraction, stage: progress(start + (end - start) * fraction, stage)
