"""Batch baking with a pool of worker processes, resumable through a manifest; what `i2fet bake --jobs` runs.

    python -m i2fet_blender.farm --jobs JOBS.csv|JOBS.json [--workers N] [--rows A-B|A+N] [--force]
                                 [--model NAME] [the bake options of `i2fet bake`, as defaults for every row]

Each worker is a spawned process that imports Blender and loads the model once, then takes rows one at a time; a row
starts from a fresh scene and its own seed, so its outputs do not depend on the worker or the order. A row whose
outputs exist and match the manifest (`model_runtime.jobs.Manifest`, beside the jobs file) is skipped unless --force.
A worker that dies mid-row is replaced and the row retried once, then reported; its staged files are removed.
`--rows` bakes one chunk of the file (one farm task; `farm/i2fet-bake.openjd.yaml`) with its own manifest and summary.
Exit status: 0 every row baked or skipped, 1 some row failed (each named on stderr), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from model_runtime.bake_options import add_bake_options, check_bake_options
from model_runtime.errors import I2FETError, InputError
from model_runtime.jobs import (Manifest, check_distinct_outputs, fingerprint, parse_rows, rows_label, sidecar,
                                stale_temporaries)
from model_runtime.paths import atomic_output, sha256_file

from .batch import Job, read_jobs, run_job
from .runtime_cache import LoadSettings
from .utils.process_exit import exit_after_bpy

MAX_ATTEMPTS = 2  # a row whose worker crashes is tried once more, then reported


def _worker(conn, load: LoadSettings, setup: Callable[[], None] | None, threads: int, cpus: set[int] | None) -> None:
    """Take (row, job, replace) until None; answer ("done", row, {path: sha256}, log) or ("failed", row, message, log).
    Ctrl-C is the coordinator's to handle: it stops the workers and removes what the rows in flight had staged."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus:
        os.sched_setaffinity(0, cpus)  # Blender sized its thread pool at import; now let the OS place this worker
    import torch

    torch.set_num_threads(threads)  # N workers share the cores: torch's own pool would oversubscribe them
    if setup is not None:
        setup()
    while True:
        task = conn.recv()
        if task is None:
            return
        row, job, replace = task
        log: list[str] = []
        try:
            written = run_job(job, load, log=log.append, force=replace)
            conn.send(("done", row, {path: sha256_file(path) for path in written}, log))
        except I2FETError as exc:
            conn.send(("failed", row, str(exc), log))
        except Exception as exc:  # noqa: BLE001 - one row's bug never stops the others
            conn.send(("failed", row, f"{type(exc).__name__}: {exc}", log))


@dataclass
class _Slot:
    process: multiprocessing.Process
    conn: object
    row: int | None = None
    started: float = 0.0


@dataclass
class Outcome:
    row: int  # 1-based, as in the jobs file
    name: str
    status: str  # baked, skipped, failed
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""


class Pool:
    """N spawned workers fed one row at a time, so the coordinator always knows which row a dead worker held."""

    def __init__(self, workers: int, load: LoadSettings, setup: Callable[[], None] | None = None):
        self.context = multiprocessing.get_context("spawn")
        self.load, self.setup, self.size = load, setup, workers
        self.slots: list[_Slot] = []

    def _start(self) -> _Slot:
        ours, theirs = self.context.Pipe()
        threads = max(1, (os.cpu_count() or 1) // self.size)
        cpus = _cpus()
        process = self.context.Process(target=_worker, args=(theirs, self.load, self.setup, threads, cpus),
                                       daemon=True)
        with _path_without_blender_scripts(), _started_on_one_cpu(cpus):
            process.start()
        theirs.close()
        slot = _Slot(process, ours)
        self.slots.append(slot)
        return slot

    def idle(self) -> _Slot | None:
        for slot in self.slots:
            if slot.row is None:
                return slot
        return self._start() if len(self.slots) < self.size else None

    def busy(self) -> list[_Slot]:
        return [slot for slot in self.slots if slot.row is not None]

    def finished(self):
        """Wait for any busy worker; yield (slot, message) with message None when the worker died."""
        busy = self.busy()
        ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy]))
        for slot in busy:
            if slot.conn in ready or slot.process.sentinel in ready:
                try:
                    message = slot.conn.recv() if slot.conn.poll() else None
                except (EOFError, OSError):
                    message = None
                if message is None:
                    slot.process.join(5)
                    self.slots.remove(slot)
                yield slot, message

    def close(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError, BrokenPipeError):
                slot.conn.send(None)
        for slot in self.slots:
            slot.process.join(10)
            if slot.process.is_alive():
                slot.process.terminate()
                slot.process.join(5)
        self.slots.clear()

    def terminate(self) -> None:
        for slot in self.slots:
            slot.process.terminate()
        for slot in self.slots:
            slot.process.join(5)
        self.slots.clear()


def _cpus() -> set[int] | None:
    """The CPUs this process may run on, where the OS says (Linux); None elsewhere."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None


@contextlib.contextmanager
def _started_on_one_cpu(cpus: set[int] | None):
    """Start a worker on one CPU: Blender sizes its depsgraph thread pool (and the FBX exporter its own) from the CPUs
    it may use when `bpy` is imported, and in a pool of workers those threads only wait on each other. Measured on 2
    cores, 12 rows in one process: 4.0 s wall and 5.3 s CPU with Blender's threads, 3.3 s and 3.3 s without. The
    worker widens its affinity again once Blender is up (`_worker`)."""
    if not cpus:
        yield
        return
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)


@contextlib.contextmanager
def _path_without_blender_scripts():
    """A spawned child starts with this process's sys.path; once `bpy` is imported that path begins with Blender's
    scripts folders, whose `bpy` package would shadow the module itself in the child (`No module named '_bpy'`)."""
    import bpy

    roots = [os.path.abspath(root) for root in map(bpy.utils.resource_path, ("LOCAL", "USER", "SYSTEM")) if root]
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if not any(os.path.abspath(p).startswith(r + os.sep) for r in roots)]
    try:
        yield
    finally:
        sys.path[:] = saved


def _job_key(job: Job, load: LoadSettings) -> str:
    settings = asdict(job)
    settings.pop("name")
    return fingerprint({"job": settings, "model": load.key()})


def _remove_partial(job: Job) -> None:
    for output in job.outputs():
        for path in stale_temporaries(output):
            with contextlib.suppress(OSError):
                os.unlink(path)


def run_farm(jobs: list[Job], rows: range, workers: int, load: LoadSettings, manifest: Manifest, force: bool = False,
             setup: Callable[[], None] | None = None, out=print) -> list[Outcome]:
    """Bake `jobs[rows]` on `workers` processes; every row ends baked, skipped or failed (never silently lost)."""
    label = f"rows {rows.start + 1}-{rows.stop}" if len(rows) != len(jobs) else f"{len(jobs)} row(s)"
    outcomes: dict[int, Outcome] = {}
    todo: deque[int] = deque()
    for i in rows:
        key = _job_key(jobs[i], load)
        if not force and manifest.is_done(key):
            outcomes[i] = Outcome(i + 1, jobs[i].name, "skipped", outputs=jobs[i].outputs(),
                                  message="outputs match the manifest")
        else:
            todo.append(i)
    out(f"chunk {label}: {len(todo)} to bake, {len(outcomes)} skipped (outputs match the manifest), "
        f"{min(workers, len(todo)) or 0} worker(s)")
    attempts: dict[int, int] = {}
    pool = Pool(workers, load, setup)
    total = len(rows)

    def finish(outcome: Outcome) -> None:
        outcomes[outcome.row - 1] = outcome
        detail = ", ".join(outcome.outputs) if outcome.status == "baked" else outcome.message
        out(f"[{len(outcomes)}/{total}] row {outcome.row} {outcome.status} in {outcome.seconds:.1f} s: {detail}")

    try:
        while todo or pool.busy():
            while todo:
                slot = pool.idle()
                if slot is None:
                    break
                i = todo.popleft()
                attempts[i] = attempts.get(i, 0) + 1
                slot.row, slot.started = i, time.perf_counter()
                # Outputs an earlier run of these rows wrote may be replaced; anyone else's need --force.
                replace = force or all(manifest.owns(p) for p in jobs[i].outputs() if os.path.exists(p))
                if replace:
                    manifest.claim(_job_key(jobs[i], load), i + 1, jobs[i].outputs())
                slot.conn.send((i, jobs[i], replace))
            for slot, message in pool.finished():
                i, seconds = slot.row, time.perf_counter() - slot.started
                slot.row = None
                job = jobs[i]
                if message is None:
                    _remove_partial(job)
                    code = slot.process.exitcode
                    if attempts[i] < MAX_ATTEMPTS:
                        out(f"  row {i + 1}: its worker stopped (exit code {code}); trying the row once more")
                        todo.appendleft(i)
                    else:
                        finish(Outcome(i + 1, job.name, "failed", seconds,
                                       message=f"its worker stopped twice (exit code {code}); nothing was written"))
                    continue
                status, _, result, log = message
                for line in log:
                    out(line)
                if status == "done":
                    manifest.record(_job_key(job, load), i + 1, result)
                    finish(Outcome(i + 1, job.name, "baked", seconds, outputs=list(result)))
                else:
                    manifest.forget(_job_key(job, load))
                    finish(Outcome(i + 1, job.name, "failed", seconds, message=result))
        pool.close()
    except BaseException:
        pool.terminate()
        for slot_row in [i for i in rows if i not in outcomes]:
            _remove_partial(jobs[slot_row])
        raise
    return [outcomes[i] for i in rows]


def summary_table(outcomes: list[Outcome]) -> str:
    lines = [f"{'row':>5}  {'status':8} {'seconds':>8}  job", f"{'-' * 5}  {'-' * 8} {'-' * 8}  {'-' * 40}"]
    for o in outcomes:
        lines.append(f"{o.row:>5}  {o.status:8} {o.seconds:8.1f}  {o.name}" + (f": {o.message}" if o.status == "failed"
                                                                                 else ""))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("baked", "skipped", "failed")}
    lines.append(f"baked {counts['baked']}, skipped {counts['skipped']}, failed {counts['failed']} "
                 f"of {len(outcomes)} row(s)")
    return "\n".join(lines)


def write_summary(path: Path, outcomes: list[Outcome], workers: int, seconds: float) -> None:
    payload = {"workers": workers, "seconds": round(seconds, 3),
               "counts": {s: sum(o.status == s for o in outcomes) for s in ("baked", "skipped", "failed")},
               "rows": [asdict(o) for o in outcomes]}
    with atomic_output(path, "w") as handle:
        handle.write(json.dumps(payload, indent=1) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2fet_blender.farm", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", required=True, help="a .json list or a .csv table, one job per row")
    p.add_argument("--workers", type=int, default=1, help="worker processes, each loading the model once (default 1)")
    p.add_argument("--rows", help="bake only these rows: A-B or A+N (from 1; one farm task's chunk)")
    p.add_argument("--force", action="store_true", help="bake rows again even when the manifest says they are done")
    add_bake_options(p)
    return p


def main(argv: list[str] | None = None, setup: Callable[[], None] | None = None) -> int:
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    shared = dict(blend=args.blend, object=args.object, fps=args.fps, seed=args.seed, duration=args.duration,
                  intensity=args.intensity, preset=args.preset, start_image=args.start_image,
                  flame_model=args.flame_model)
    load = LoadSettings(model=args.model, device=args.device)
    started = time.perf_counter()
    try:
        if args.workers < 1:
            raise InputError(f"--workers must be 1 or more, not {args.workers}.")
        check_bake_options(shared)
        jobs = read_jobs(args.jobs, {k: v for k, v in shared.items() if v is not None})
        check_distinct_outputs(job.outputs() for job in jobs)
        rows = parse_rows(args.rows, len(jobs)) if args.rows else range(len(jobs))
        label = rows_label(rows, len(jobs))
        try:
            manifest = Manifest.load(sidecar(args.jobs, "manifest", label))
        except InputError:
            if not args.force:
                raise
            manifest = Manifest(sidecar(args.jobs, "manifest", label))  # --force: an unreadable manifest is rebuilt
        summary_path = sidecar(args.jobs, "summary", label)
        outcomes = run_farm(jobs, rows, args.workers, load, manifest, force=args.force, setup=setup,
                            out=lambda line: print(line, flush=True))
        write_summary(summary_path, outcomes, args.workers, time.perf_counter() - started)
    except I2FETError as exc:
        print(f"i2fet bake: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("i2fet bake: interrupted; rows already baked are in the manifest and a rerun skips them; a rerun "
              "bakes the rows that were in flight again.", file=sys.stderr, flush=True)
        return 130
    print(summary_table(outcomes), flush=True)
    print(f"summary: {summary_path}; manifest: {manifest.path}", flush=True)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        print(f"i2fet bake: FAILED row {o.row} {o.name}: {o.message}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    exit_after_bpy(main())
