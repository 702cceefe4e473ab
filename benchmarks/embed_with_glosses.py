"""all-MiniLM-L6-v2 sentence embeddings read through WordNet's definitions, as the AU memory reads texts with
`[memory] glosses` (glosses.py): each text's own embedding plus the unit mean of its content words' gloss embeddings,
made unit again (texts with no glossed word stay as they are). The second half of benchmarks/probe_encoders.py for
the dictionary, so that retrieval and the neighbours' vote can be compared with and without it on the same items.

Run:
    .venv/bin/python benchmarks/probe_encoders.py texts OUT/texts.json
    .venv/bin/python benchmarks/embed_with_glosses.py OUT/texts.json OUT/glosses.npy
    .venv/bin/python benchmarks/probe_encoders.py score OUT/texts.json OUT/glosses.npy --name glosses
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(texts_path: str, out_path: str) -> None:
    from model_runtime.encoders import load_text_encoder
    from model_runtime.glosses import all_glosses, gloss_rows
    from model_runtime.training.au_memory_stage import _embed, _with_glosses

    encoder = load_text_encoder("minilm")
    texts = json.loads(Path(texts_path).read_text(encoding="utf-8"))
    table = _embed(encoder, list(all_glosses()))  # unquantized: the probe asks what the definitions add, not the codes
    read = _with_glosses(_embed(encoder, texts), texts, table, np.ones(len(table), dtype=np.float32), 1.0)
    np.save(out_path, read)
    print(f"{len(texts)} texts -> {out_path}; {sum(bool(gloss_rows(t)) for t in texts)} with a glossed word")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
