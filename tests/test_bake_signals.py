"""Stopping `i2fet bake` (SIGTERM, SIGINT) stops its Blender process too and leaves nothing: no outputs, no
temporaries, no output folder, not even after the time the bake would have needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(work: Path, name: str):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "model_runtime", "bake", "smile, then frown", "-o",
                             str(work / name), "--device", "cpu"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the baker's first line: Blender's Python is running and baking
    assert line.startswith("Baking "), line + proc.stderr.read()
    children = _children(proc.pid)
    assert children and all(_alive(c) for c in children)
    return proc, children


@pytest.mark.slow
def test_a_stopped_bake_stops_blender_and_leaves_nothing(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    started = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        started[sig] = _start(work, f"out_{sig.name}")
        time.sleep(0.5)  # into the model load (torch's import alone takes longer): a whole bake takes a few seconds
        started[sig][0].send_signal(sig)
    for sig, (proc, children) in started.items():
        err = proc.communicate(timeout=20)[1]
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        deadline = time.monotonic() + 5
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), f"{sig.name}: the Blender process outlived i2fet bake"
    assert list(work.iterdir()) == []
    time.sleep(30)  # longer than a whole bake takes on this machine, even loaded: an orphan would have written by now
    assert list(work.iterdir()) == []
