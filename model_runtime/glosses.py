"""WordNet's definitions of a text's words (data/wordnet_glosses.tsv.gz, data/WORDNET_GLOSSES.md): the AU memory's
dictionary. A rare word ("chapfallen", "glowering") tells a small sentence encoder little; its definition, in common
words, tells it more. The memory reads each content word of a text with its gloss beside it (models/au_memory.py).
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from .actions import content_text, is_content_word
from .errors import WeightsError

GLOSSES = Path(__file__).resolve().parent / "data" / "wordnet_glosses.tsv.gz"

# Regular English endings, undone in this order until a word with a gloss appears ("smirking" -> "smirk",
# "sneered" -> "sneer", "scowls" -> "scowl", "happier" -> "happy"); irregular forms come from the file's "=" lines.
_ENDINGS = (("ies", "y"), ("ied", "y"), ("ier", "y"), ("iest", "y"), ("ing", "e"), ("ing", ""), ("ed", "e"), ("ed", ""),
            ("es", ""), ("s", ""), ("er", "e"), ("er", ""), ("est", "e"), ("est", ""))


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, int], tuple[str, ...], dict[str, str]]:
    """(word -> row, glosses by row, inflected form -> word), read once."""
    words, glosses, forms = {}, [], {}
    try:
        with gzip.open(GLOSSES, "rt", encoding="utf-8") as handle:
            for line in handle:
                word, _, gloss = line.rstrip("\n").partition("\t")
                if gloss.startswith("="):
                    forms[word] = gloss[1:]
                else:
                    words[word] = len(glosses)
                    glosses.append(gloss)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise WeightsError(f"The WordNet definitions the model reads ({GLOSSES}) cannot be read ({exc}); reinstall "
                           f"the runtime.") from None
    return words, tuple(glosses), forms


def vocabulary() -> tuple[str, ...]:
    """Every word with a gloss, in the file's order (the row of its vector in the memory's gloss table)."""
    words, _, _ = _table()
    return tuple(words)


def all_glosses() -> tuple[str, ...]:
    """The glosses in the same order as vocabulary()."""
    return _table()[1]


def lemma(word: str) -> str | None:
    """The form of `word` that has a gloss (itself, its exception-list lemma, or it less a regular ending), or None."""
    words, _, forms = _table()
    if word in words:
        return word
    if word in forms:
        return forms[word]
    for ending, replacement in _ENDINGS:
        if word.endswith(ending) and len(word) > len(ending) + 1:
            stem = word[:-len(ending)] + replacement
            if stem in words:
                return stem
            if ending in ("ing", "ed", "er", "est") and len(stem) > 2 and stem[-1] == stem[-2]:
                if stem[:-1] in words:  # a doubled consonant: "grinning" -> "grin"
                    return stem[:-1]
    return None


def gloss_rows(text: str) -> list[int]:
    """The gloss table's rows of `text`'s content words (actions.content_text, then actions.is_content_word), each
    word once; empty when none has a gloss."""
    words, _, _ = _table()
    rows = []
    for word in content_text(text).lower().split():
        word = word.strip(".,;:!?\"'()")
        found = lemma(word) if word and is_content_word(word) else None
        if found is not None and words[found] not in rows:
            rows.append(words[found])
    return rows


__all__ = ["GLOSSES", "all_glosses", "gloss_rows", "lemma", "vocabulary"]
