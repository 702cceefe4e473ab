"""benchmarks/outside_embedding.py: what the scripts embedding texts with an outside encoder save and time."""

from __future__ import annotations

import numpy as np

from benchmarks.outside_embedding import TIMED, WARM_UP, save_and_time


def test_every_text_is_saved_in_order_and_only_the_timed_calls_after_the_warm_up_count(tmp_path):
    calls = []

    def embed(batch):
        calls.append(list(batch))
        return np.array([[len(t), 1.0] for t in batch]) / np.sqrt(1.0 + np.array([[len(t)] for t in batch]) ** 2)

    texts = [f"text {'x' * k}" for k in range(130)]  # three batches of 64
    out = tmp_path / "vectors.npy"
    median = save_and_time(embed, texts, str(out), "one sentence")
    saved = np.load(out)
    assert saved.shape == (130, 2) and saved.dtype == np.float32
    assert np.allclose(saved[:, 0] / saved[:, 1], [len(t) for t in texts])  # row k is text k
    assert [len(c) for c in calls[:3]] == [64, 64, 2]
    assert calls[3:] == [["one sentence"]] * (WARM_UP + TIMED) and median >= 0.0
