"""Mean-pooled, unit-length sentence embeddings of a list of texts from a sentence-transformers folder, with Hugging
Face `transformers`: the outside half of benchmarks/probe_encoders.py, for encoders the runtime has no forward for.

Run it in its own virtual environment (the project does not depend on transformers):
    python3.11 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install torch==2.13.0 'transformers==4.57.6' 'numpy<2'
    /tmp/tvenv/bin/python benchmarks/embed_with_transformers.py MODEL_DIR TEXTS.json OUT.npy
Prints the median time of one short sentence on one thread.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from outside_embedding import save_and_time
from transformers import AutoModel, AutoTokenizer


def main(model_dir: str, texts_path: str, out_path: str) -> None:
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    texts = json.load(open(texts_path, encoding="utf-8"))

    def embed(batch: list[str]) -> np.ndarray:
        tokens = tokenizer(batch, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            states = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()

    torch.set_num_threads(1)
    median = save_and_time(embed, texts, out_path, "slowly break into a shy smile")
    print(f"{len(texts)} texts -> {out_path}; one sentence, one thread: {median:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
