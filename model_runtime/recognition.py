"""Whether a text part of an instruction names anything facial, so that gibberish or off-topic English ("blorp the
flibber", "the quarterly tax report") is reported by name instead of being shown, without a word, as the nearest
concept.

A part the text encoder reads (not a direct action, not a return to neutral) is recognised when one of its content
words (closed-class words such as "the", "of" or "my" set aside: they name nothing) is

- a word of the knowledge base's phrases other than a light verb (make, give, start, look...): the project's own
  facial vocabulary, rare words included ("moue", "rictus", "blep"; literary ones such as "crestfallen" or "aghast"
  are rewritten to plain phrases before they get here, model_runtime.clauses), so "the avatar displays perplexed" is
  recognised however its sentence embedding falls; or
- a known word, and the part is as close to the knowledge base as the knowledge base is to itself. Known: an English
  dictionary word (SCOWL's size-80 lists, data/ENGLISH_WORDS.md: "gleeful", "smitten") or a whole token of the text
  encoder's vocabulary ("lol"). Close: the cosine of its sentence embedding to the nearest knowledge-base phrase is at
  least the floor, the lowest cosine any knowledge-base phrase has to its nearest other phrase (all-MiniLM-L6-v2:
  0.361, for "tut-tut"). A real phrasing missing from the knowledge base is no further from it than the knowledge
  base's loneliest phrase is from the rest; "the quarterly tax report" (0.19) is.

So a part is flagged when it has no knowledge-base word and either no known word ("blorp the flibber", "xyzzy": to
MiniLM "blorp" is b ##lor ##p, pieces with no meaning of their own, and no dictionary lists it) or no closeness to any
knowledge-base phrase. Known words alone cannot decide: the encoder splits real rare words into pieces as it splits
made-up ones ("gleeful" is glee ##ful) and gives them similar closeness ("smitten" 0.45, "blorp the flibber" 0.51).
The space is the encoder's sentence embedding, not the learned model's latent: that latent is trained to pull every
text onto some concept and puts "xyzzy" as close to one as real phrasings.

Parts with no Latin letter at all get the parser's own note ("no English word"), so they are left to it.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

# Closed-class English words: articles, determiners, pronouns, prepositions, conjunctions, auxiliaries. Direction
# words ("up", "down", "out", "away") are left out on purpose: on a face they say what moves.
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every either neither no all both such what which whose
i me my mine myself you your yours yourself yourselves he him his himself she her hers herself it its itself
we us our ours ourselves they them their theirs themselves one ones someone something somebody anyone anything
of in on at by for from with without within into onto upon about above below under over through across along
around among between behind beside besides beyond near toward towards to as than like via per off
and or but nor so yet if then else because while whereas although though unless until since when where how why
is am are was were be been being do does did doing done have has had having will would shall should can could
may might must ought not there here very just also too only s t
""".split())

# Light verbs: knowledge-base phrases use them ("make a frown", "give a wink", "start crying", "look happy"), but
# alone they name nothing facial ("give me the report", "start the car"), so they do not vouch for a text.
LIGHT_VERBS = frozenset("make makes made give gives gave get gets got take takes took start starts started keep keeps "
                        "kept turn turns turned set sets put puts find finds found go goes went come comes came let "
                        "lets show shows showed look looks looked".split())

_WORD_RE = re.compile(r"[a-z]+")
_LATIN_RE = re.compile(r"[A-Za-z]")  # the parser's test for "has an English word" (model_runtime.instructions)


def words(text: str) -> list[str]:
    """Lower-case Latin words, accents dropped and hyphens and apostrophes splitting, as the tokenizers split them."""
    plain = unicodedata.normalize("NFKD", text.lower())
    return _WORD_RE.findall("".join(ch for ch in plain if not unicodedata.combining(ch)))


ENGLISH_WORDS = Path(__file__).with_name("data") / "english_words.txt.gz"


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The shipped dictionary (285,704 lower-case words; data/ENGLISH_WORDS.md), read on first use."""
    with gzip.open(ENGLISH_WORDS, "rt", encoding="ascii") as handle:
        return frozenset(handle.read().split())


def vouching_words(concepts) -> frozenset[str]:
    """The words of the concepts' phrases, less the light verbs: each one names something facial."""
    return frozenset(w for c in concepts for p in (c.label, *c.phrases) for w in words(p)) - LIGHT_VERBS


def similarity_floor(embeddings: np.ndarray) -> float:
    """The lowest nearest-other-phrase cosine among unit-length phrase embeddings (N >= 2)."""
    sims = embeddings @ embeddings.T
    np.fill_diagonal(sims, -np.inf)
    return float(sims.max(axis=1).min())


class Recognition:
    """Recognised or not, for text parts read through `encoder` against the phrases of `index` (a ConceptIndex of the
    encoder's sentence embeddings); the floor and the word list are worked out on first use."""

    def __init__(self, encoder, index):
        self.encoder = encoder
        self.index = index

    @cached_property
    def floor(self) -> float:
        return similarity_floor(self.index.embeddings)

    @cached_property
    def vouching_words(self) -> frozenset[str]:
        return vouching_words(self.index.concepts)

    def recognised(self, text: str, similarity: float) -> bool:
        """Whether `text`, whose nearest knowledge-base phrase has cosine `similarity`, names something facial."""
        content = [w for w in words(text) if w not in FUNCTION_WORDS]
        if any(w in self.vouching_words for w in content):
            return True
        return similarity >= self.floor and any(w in english_words() or self.encoder.knows_word(w) for w in content)

    def warnings(self, readings: Iterable[tuple[str, str, float]]) -> list[str]:
        """One warning per unrecognised text among (text, label it was read as, similarity) readings; an empty label
        is a part left out because another part of its key names something facial."""
        out = []
        for text, label, similarity in readings:
            if _LATIN_RE.search(text) and not self.recognised(text, similarity):
                shown = (f"it was read as {label!r}, only its nearest guess." if label else
                         "it was left out, and the face follows the rest of that part of the instruction.")
                out.append(f"Nothing in {text!r} names a facial expression or action the model knows; {shown}")
        return list(dict.fromkeys(out))
