"""The generators `Runtime.load(model=...)` can pick, by name; each loader imports its module on first use so that
naming the choices (the CLI's --help) does not import torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import InputError

if TYPE_CHECKING:
    from .base import Generator


def _learned(encoder, device, weights) -> Generator:
    from .learned import load_learned  # torch-heavy: only when this generator is chosen

    return load_learned(weights_path=weights, encoder=encoder, device=device)


def _baseline(encoder, device, weights) -> Generator:
    from .baseline import RetrievalBaseline

    return RetrievalBaseline(encoder)


LOADERS: dict[str, Callable[..., Generator]] = {"i2fet": _learned, "baseline": _baseline}
TAKES_WEIGHTS = frozenset({"i2fet"})
MODEL_NAMES = tuple(LOADERS)
DEFAULT_MODEL = "i2fet"


def check_choice(model, weights) -> None:
    """Refuse an unknown model name, or a weights file for a model that has none, before anything is loaded."""
    if model not in LOADERS:
        raise InputError(f"Unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}.")
    if weights is not None and model not in TAKES_WEIGHTS:
        raise InputError(f"A weights file can only be given for the {' or '.join(sorted(TAKES_WEIGHTS))} model.")


def load_generator(model: str, encoder, device, weights: str | None = None) -> Generator:
    """The generator named `model` over a loaded text encoder, on `device` (a torch.device)."""
    check_choice(model, weights)
    return LOADERS[model](encoder, device, weights)
