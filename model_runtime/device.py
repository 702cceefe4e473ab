"""The one place that decides which torch device the runtime uses, and how many CPU threads its inference takes."""

from __future__ import annotations

import contextlib

from .errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(requested: str = "auto"):
    """Map 'auto' | 'cpu' | 'cuda' (or 'cuda:N') to a torch.device; 'auto' prefers CUDA when it is usable."""
    import torch  # only when a device is chosen: naming the choices (the CLI's --help) needs no torch

    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError("CUDA was requested but this torch build or machine has no usable CUDA device; use --device cpu or auto.")
        return torch.device(name)
    raise InputError(f"Unknown device {requested!r}; choose one of auto, cpu, cuda.")


@contextlib.contextmanager
def single_intra_op_thread():
    """Run the block with one torch intra-op thread, then restore the caller's setting.

    A generate is many tiny ops (a few short sequences through a small network): torch's default of one thread per
    core only adds hand-offs, and in a busy process (Blender's UI, a bake worker, other jobs on the machine) those
    threads wait on each other. Measured on 2 cores under load: a two-segment 7 s generate took 320 ms with 2 threads
    and 21-25 ms with one, in and out of Blender."""
    import torch

    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if previous != 1:
            torch.set_num_threads(previous)
