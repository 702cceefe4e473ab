"""Roget's 1911 emotion vocabulary (data/roget_emotions.tsv, made by benchmarks/extract_roget_emotions.py): words the
knowledge base and the benchmarks never use, each under the concept whose face its Roget category names. The AU
memory may hold them beside the knowledge base's phrases ([memory] roget), so that a word no concept lists finds
neighbours that mean what it means."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

ROGET = Path(__file__).resolve().parents[1] / "data" / "roget_emotions.tsv"


@lru_cache(maxsize=1)
def roget_phrases() -> dict[str, tuple[str, ...]]:
    """concept -> its Roget phrases, in file order."""
    lines = ROGET.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["concept", "category", "phrase"]:
        raise ValueError(f"{ROGET} does not start with the header concept, category, phrase")
    out: dict[str, list[str]] = {}
    for line in lines[1:]:
        concept, _, phrase = line.split("\t")
        out.setdefault(concept, []).append(phrase)
    return {k: tuple(v) for k, v in out.items()}
