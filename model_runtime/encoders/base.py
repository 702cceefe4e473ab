"""The text-encoder interface every encoder implements, and the helpers they share.

An encoder turns instruction strings into a `TextEmbedding`: per-token hidden states with their mask, and one
L2-normalised sentence vector per text. Encoders are loaded from local files only and verify what they load.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError, WeightsError
from ..paths import sha256_file


@dataclass
class TextEmbedding:
    """What `TextEncoder.encode` returns; all tensors live on the encoder's device."""

    tokens: torch.Tensor  # (B, L, token_dim) float32 last hidden states; L = longest text in the batch
    mask: torch.Tensor  # (B, L) bool, True for real tokens (special tokens included), False for padding
    pooled: torch.Tensor  # (B, dim) float32, the model's sentence embedding, L2-normalised

    def to(self, device: torch.device | str) -> "TextEmbedding":
        return TextEmbedding(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))


class TextEncoder(abc.ABC):
    """A frozen text encoder. `encode` is batched, runs under torch.inference_mode and is deterministic."""

    name: str  # "minilm" | "openclip"
    model_name: str  # what the weights are, for model cards and animation files
    dim: int  # size of `pooled`
    token_dim: int  # size of `tokens` (equals `dim` for MiniLM; the text width for OpenCLIP)
    checksum: str  # sha256 of the weights file (several files: sha256 over their "name sha256" lines)
    device: torch.device

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> TextEmbedding:
        """Embed a batch of texts; an empty batch gives tensors with B == 0."""

    @abc.abstractmethod
    def knows_word(self, word: str) -> bool:
        """Whether a lower-case word is one token of the vocabulary: the encoder learned a meaning for the word itself
        instead of spelling it out of sub-word pieces (model_runtime.recognition)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device}, checksum={self.checksum[:12]}...)"


def check_texts(texts: Sequence[str]) -> list[str]:
    """Accept a sequence of str (a bare str is a common slip: it would be encoded character by character)."""
    if isinstance(texts, str):
        raise InputError("encode() takes a list of texts, not a single string; wrap it in a list.")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise InputError(f"encode() takes texts as str, got {type(t).__name__}.")
    return out


# --- checksum verification --------------------------------------------------------------------------------------
# Every load hashes the file it is about to read. A cache keyed by path, size and mtime was faster but could be fooled
# (flip bytes, restore the mtime), and hashing 90 MB costs about 50 ms.

def verify_sha256(path: str | os.PathLike, expected: str, what: str) -> str:
    """Raise WeightsError unless the file's sha256 equals `expected`; returns the digest."""
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"Cannot read the {what} weights file {path}: {exc.strerror or exc}.") from None
    if digest != expected:
        raise WeightsError(
            f"The {what} weights file {path} is corrupt or not the expected version "
            f"(sha256 {digest[:12]}... instead of {expected[:12]}...); reinstall it."
        )
    return digest


def load_safetensors(path: str | os.PathLike, device: torch.device, what: str) -> dict[str, torch.Tensor]:
    """Read every tensor of a .safetensors file onto `device`, turning format errors into one-sentence WeightsErrors."""
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        detail = str(exc).strip().rstrip(".") or type(exc).__name__
        raise WeightsError(f"The {what} weights file {path} cannot be read as safetensors ({detail}).") from None


def adopt_state_dict(module: torch.nn.Module, state: dict, mismatch: str) -> torch.nn.Module:
    """Make the loaded tensors the module's parameters (it was built on the meta device) and freeze it for inference;
    a shape or key mismatch becomes a WeightsError `mismatch` + the reason."""
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        raise WeightsError(f"{mismatch} ({lines[-1].strip() if lines else exc}).") from None
    module.requires_grad_(False)
    return module.eval()
