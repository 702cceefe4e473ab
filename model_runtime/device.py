"""The one place that decides which torch device the runtime uses."""

from __future__ import annotations

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
