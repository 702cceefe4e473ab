"""The frozen text encoder's token embeddings of every training text, computed once and cached by content."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..paths import NpzCache, content_key
from . import say


def encode_texts(encoder, texts: list[str], max_tokens: int, work_dir: Path, progress: bool = False):
    """(N, L, D) float16 token embeddings and (N, L) bool masks of `texts`, cached in work_dir by content."""
    key = content_key(encoder.model_name, encoder.checksum, max_tokens, texts)
    shape = (len(texts), max_tokens)
    cache = NpzCache(Path(work_dir) / f"text-cache-{key[:20]}.npz", key, fields=("tokens", "mask"),
                     check=lambda a: a["tokens"].shape == (*shape, encoder.token_dim) and a["mask"].shape == shape)

    def build() -> dict[str, np.ndarray]:
        tokens = torch.zeros(len(texts), max_tokens, encoder.token_dim, dtype=torch.float16)
        mask = torch.zeros(len(texts), max_tokens, dtype=torch.bool)
        t0 = time.time()
        for i in range(0, len(texts), 256):
            emb = encoder.encode(texts[i:i + 256])
            n = min(max_tokens, emb.tokens.shape[1])
            tokens[i:i + 256, :n] = emb.tokens[:, :n].to("cpu", torch.float16)
            mask[i:i + 256, :n] = emb.mask[:, :n].cpu()
            if progress and (i // 256) % 8 == 0:
                say(f"encoding training texts {min(i + 256, len(texts))}/{len(texts)} ({time.time() - t0:.0f}s)")
        return {"tokens": tokens.numpy(), "mask": mask.numpy()}

    arrays = cache.get(build)
    return torch.from_numpy(arrays["tokens"]), torch.from_numpy(arrays["mask"]).bool()
