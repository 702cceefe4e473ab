"""The FACS knowledge base: named expressions ("concepts") as action-unit sets, their ARKit weights, and the phrases a
user might type for them.

Sources (cited per concept in `Concept.source`):
- EMFACS-style basic-emotion prototypes (Ekman & Friesen; as summarised for CK+ by Lucey et al. 2010): happiness 6+12,
  sadness 1+4+15, surprise 1+2+5B+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23, disgust 9+15+16, contempt R12A+R14A.
- Du, Tao & Martinez 2014, "Compound facial expressions of emotion", PNAS 111(15), Table 1: core AUs (used by >70% of
  subjects) and variant AUs (used by some) for 21 categories.
- GoEmotions (Demszky et al. 2020): 27 emotion categories and their grouping onto Ekman's six.
- WordNet 3.0 hyponyms of facial_expression.n.01 and CelebV-HQ's action labels for the everyday facial actions.

How the basic emotions reconcile the two sources: core = EMFACS prototype AUs together with Du's core AUs (both report
them as prototypical), variants = Du's variant AUs not already core. The GoEmotions categories that are Ekman's basic
emotions themselves (anger, disgust, fear, joy, sadness, surprise) are aliases of the basic concepts; the other 21 are
their own concepts whose AU sets are derived from their family's prototype (this project's interpretation, marked so
in `source`).

AU intensities use the FACS letters A..E = 0.2, 0.4, 0.6, 0.8, 1.0. A concept's weights are the sum over its AUs of
intensity x AU_TO_CHANNELS weight, clipped to [0, 1].
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import InputError
from .expression_space import (
    AU_TO_CHANNELS,
    CHANNEL_INDEX,
    LEFT_CHANNELS,
    NUM_CHANNELS,
    ONE_SIDED_CENTER_FACTOR,
    RIGHT_CHANNELS,
    au_channels_for_side,
    channel_side,
    mirror_weights,
)

FACS_LETTERS: dict[str, float] = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}
FAMILIES = ("neutral", "happy", "sad", "surprise", "fear", "anger", "disgust", "contempt", "other")
KINDS = ("neutral", "basic", "compound", "goemotions", "action")


@dataclass(frozen=True)
class AUActivation:
    """One action unit in a concept. `side` is the character's own side; `core` False marks a variant AU."""

    au: int
    intensity: float
    side: str = "both"
    core: bool = True


@dataclass(frozen=True)
class Concept:
    """A named expression or facial action: AUs, direct ARKit extras, phrases for text retrieval, and a citation."""

    name: str
    label: str
    family: str
    kind: str
    aus: tuple[AUActivation, ...]
    extra: tuple[tuple[str, float], ...]
    phrases: tuple[str, ...]
    source: str


# --------------------------------------------------------------------------------------------------------------------
# Category name lists (for coverage checks and for the dataset builders)
# --------------------------------------------------------------------------------------------------------------------
DU_CATEGORIES: tuple[str, ...] = (
    "happy", "sad", "fearful", "angry", "surprised", "disgusted",
    "happily_surprised", "happily_disgusted", "sadly_fearful", "sadly_angry", "sadly_surprised", "sadly_disgusted",
    "fearfully_angry", "fearfully_surprised", "fearfully_disgusted", "angrily_surprised", "angrily_disgusted",
    "disgustedly_surprised", "appalled", "hatred", "awed",
)
"""Du, Tao & Martinez 2014's 21 categories, as concept names."""

GOEMOTIONS_FAMILY: dict[str, str] = {
    "anger": "anger", "annoyance": "anger", "disapproval": "anger",
    "disgust": "disgust",
    "fear": "fear", "nervousness": "fear",
    "joy": "happy", "amusement": "happy", "approval": "happy", "excitement": "happy", "gratitude": "happy",
    "love": "happy", "optimism": "happy", "relief": "happy", "pride": "happy", "admiration": "happy",
    "desire": "happy", "caring": "happy",
    "sadness": "sad", "disappointment": "sad", "embarrassment": "sad", "grief": "sad", "remorse": "sad",
    "surprise": "surprise", "realization": "surprise", "confusion": "surprise", "curiosity": "surprise",
}
"""GoEmotions' 27 categories -> Ekman family (Demszky et al. 2020 grouping; joy's family is called "happy" here)."""
GOEMOTIONS_CATEGORIES: tuple[str, ...] = tuple(GOEMOTIONS_FAMILY)

ALIASES: dict[str, str] = {
    "joy": "happy", "happiness": "happy", "sadness": "sad", "fear": "fearful", "anger": "angry",
    "surprise": "surprised", "disgust": "disgusted", "contempt": "contemptuous",
}
"""Emotion nouns (GoEmotions, CK+, CelebV-HQ labels) -> concept name, for `get_concept`."""

# --------------------------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------------------------
_DU = "Du, Tao & Martinez 2014, PNAS 111(15), Table 1"
_EMFACS = "EMFACS basic-emotion prototype (Ekman & Friesen; Lucey et al. 2010, CK+)"
_GOEMO = "GoEmotions category (Demszky et al. 2020); AUs derived from the {family} prototype (this project)"
_WORDNET = "WordNet 3.0 facial_expression.n.01 hyponym; AUs per FACS (Ekman, Friesen & Hager 2002)"
_CELEBV = "CelebV-HQ action label (Zhu et al. 2022); AUs per FACS (Ekman, Friesen & Hager 2002)"
_ACTION = "facial action; AUs per FACS (Ekman, Friesen & Hager 2002)"
_PAIN = "pain expression AUs 4, 6/7, 9/10, 43 (Prkachin 1992)"

_TOKEN = re.compile(r"^([LR]?)(\d+)([A-E]?)$")


def _facs(code: str, core: bool = True, default: str = "C") -> tuple[AUActivation, ...]:
    """Parse FACS notation such as "1C+2C+5B+26" or "R12B+R14B" (L/R = one side, letter = intensity; AU25 and the
    blink/gaze AUs default to E because they are all-or-nothing, the rest to `default`)."""
    out = []
    for token in filter(None, code.replace(" ", "").split("+")):
        m = _TOKEN.match(token)
        if m is None:
            raise ValueError(f"bad FACS token {token!r}")
        side = {"": "both", "L": "left", "R": "right"}[m.group(1)]
        au = int(m.group(2))
        if au not in AU_TO_CHANNELS:
            raise ValueError(f"AU{au} has no ARKit mapping")
        letter = m.group(3) or ("E" if au in (25, 43, 45, 46, 61, 62, 63, 64) else default)
        out.append(AUActivation(au, FACS_LETTERS[letter], side, core))
    return tuple(out)


def _concept(name, label, family, kind, core, phrases, source, variants="", extra=()) -> Concept:
    return Concept(name=name, label=label, family=family, kind=kind,
                   aus=_facs(core) + _facs(variants, core=False, default="B"),
                   extra=tuple(extra), phrases=tuple(phrases), source=source)


def _basic() -> list[Concept]:
    b = "basic"
    return [
        _concept("neutral", "neutral", "neutral", "neutral", "",
                 ("neutral face", "neutral expression", "relaxed face", "expressionless", "blank expression",
                  "keep a straight face", "straight face", "poker face", "calm face", "resting face",
                  "no expression", "relax the face"),
                 "CK+/CelebV-HQ neutral label: all AUs at rest"),
        _concept("happy", "happy", "happy", b, "6C+12D+25",
                 ("look happy", "happiness", "joy", "joyful", "cheerful", "delighted", "glad", "pleased",
                  "feel happy", "be happy", "joyous"),
                 f"{_EMFACS} 6+12; {_DU} (core 12, 25; variant 6)"),
        _concept("sad", "sad", "sad", b, "1D+4B+15C",
                 ("look sad", "sadness", "unhappy", "sorrowful", "downcast", "gloomy", "melancholy", "feel sad",
                  "down in the dumps"),
                 f"{_EMFACS} 1+4+15; {_DU} (core 4, 15; variant 1, 6, 11, 17)", variants="6B+11B+17B"),
        _concept("surprised", "surprised", "surprise", b, "1D+2D+5B+25+26C",
                 ("look surprised", "surprise", "look shocked", "shocked", "astonished", "amazed",
                  "gasp in surprise", "taken aback", "startled"),
                 f"{_EMFACS} 1+2+5B+26; {_DU} (core 1, 2, 25, 26; variant 5)"),
        _concept("fearful", "afraid", "fear", b, "1D+2C+4C+5D+7B+20C+25+26B",
                 ("look afraid", "fear", "fearful", "scared", "frightened", "terrified", "look scared",
                  "panic", "in fear"),
                 f"{_EMFACS} 1+2+4+5+7+20+26; {_DU} (core 1, 4, 20, 25; variant 2, 5, 26)"),
        _concept("angry", "angry", "anger", b, "4D+5C+7C+23C+24C",
                 ("look angry", "anger", "furious", "mad", "enraged", "irate", "livid", "get angry", "fuming"),
                 f"{_EMFACS} 4+5+7+23; {_DU} (core 4, 7, 24; variant 10, 17, 23)", variants="10B+17B"),
        _concept("disgusted", "disgusted", "disgust", b, "9D+10C+15B+16B+17B",
                 ("look disgusted", "disgust", "grossed out", "repulsed", "revolted", "nauseated", "yuck",
                  "feel disgusted"),
                 f"{_EMFACS} 9+15+16; {_DU} (core 9, 10, 17; variant 4, 24)", variants="4B+24B"),
        _concept("contemptuous", "contemptuous", "contempt", b, "R12B+R14B",
                 ("look contemptuous", "contempt", "disdain", "disdainful", "scornful", "look down on someone",
                  "condescending look"),
                 f"{_EMFACS} R12A+R14A (one-sided); rendered at B so it reads on a rig"),
    ]


def _compound() -> list[Concept]:
    c = "compound"
    return [
        _concept("happily_surprised", "happily surprised", "surprise", c, "1C+2C+12D+25",
                 ("happily surprised", "pleasantly surprised", "joyful surprise", "delighted surprise",
                  "surprised and happy"), _DU, variants="5B+26B"),
        _concept("happily_disgusted", "happily disgusted", "disgust", c, "10C+12C+25",
                 ("happily disgusted", "amused disgust", "grossed out but laughing", "disgusted but amused"),
                 _DU, variants="4B+6B+9B"),
        _concept("sadly_fearful", "sadly fearful", "fear", c, "1D+4C+20C+25",
                 ("sadly fearful", "sad and afraid", "fearful sadness", "scared and sad", "anxious dread"),
                 _DU, variants="2B+5B+6B+15B"),
        _concept("sadly_angry", "sadly angry", "anger", c, "4D+15C",
                 ("sadly angry", "sad and angry", "bitter", "resentful", "hurt and angry"),
                 _DU, variants="6B+7B+11B+17B"),
        _concept("sadly_surprised", "sadly surprised", "surprise", c, "1D+4B+25+26C",
                 ("sadly surprised", "sad surprise", "shocked and saddened", "dismayed", "stunned by bad news"),
                 _DU, variants="2B+6B"),
        _concept("sadly_disgusted", "sadly disgusted", "disgust", c, "4C+10C",
                 ("sadly disgusted", "sad and disgusted", "disheartened disgust", "sickened and sad"),
                 _DU, variants="1B+6B+9B+11B+15B+17B+25"),
        _concept("fearfully_angry", "fearfully angry", "anger", c, "4D+20C+25",
                 ("fearfully angry", "afraid and angry", "angry and scared", "defensive rage"),
                 _DU, variants="5B+7B+10B+11B"),
        _concept("fearfully_surprised", "fearfully surprised", "surprise", c, "1D+2D+5D+20C+25",
                 ("fearfully surprised", "scared and surprised", "alarmed", "frightened surprise", "jump scare"),
                 _DU, variants="4B+10B+11B+26C"),
        _concept("fearfully_disgusted", "fearfully disgusted", "disgust", c, "1C+4C+10C+20C+25",
                 ("fearfully disgusted", "afraid and disgusted", "horrified disgust", "creeped out"),
                 _DU, variants="2B+5B+6B+9B+15B"),
        _concept("angrily_surprised", "angrily surprised", "surprise", c, "4C+25+26C",
                 ("angrily surprised", "angry and surprised", "outraged", "indignant shock"),
                 _DU, variants="5B+7B+10B"),
        _concept("angrily_disgusted", "angrily disgusted", "disgust", c, "4D+10C+17C",
                 ("angrily disgusted", "angry and disgusted", "indignant disgust", "fed up and repulsed"),
                 _DU, variants="7B+9B+24B"),
        _concept("disgustedly_surprised", "disgustedly surprised", "surprise", c, "1C+2C+5C+10C",
                 ("disgustedly surprised", "disgusted and surprised", "shocked and grossed out",
                  "surprised disgust"), _DU, variants="4B+9B+17B+24B"),
        _concept("appalled", "appalled", "disgust", c, "4B+10D",
                 ("appalled", "look appalled", "aghast", "scandalized", "horrified"),
                 f"{_DU}; family assignment is this project's", variants="6B+9B+17B+24B"),
        _concept("hatred", "hateful", "anger", c, "4E+10C",
                 ("hatred", "hateful", "look hateful", "loathing", "full of hate", "detest"),
                 f"{_DU}; family assignment is this project's", variants="7B+9B+17B+24B"),
        _concept("awed", "awed", "surprise", c, "1C+2C+5B+25",
                 ("awed", "in awe", "awestruck", "look awed", "wonder", "marvel at something"),
                 f"{_DU}; family assignment is this project's", variants="4B+20B+26B"),
    ]


def _goemotions() -> list[Concept]:
    g = "goemotions"

    def src(family):
        return _GOEMO.format(family=family)

    return [
        _concept("annoyance", "annoyed", "anger", g, "4B+7B+24B",
                 ("annoyance", "annoyed", "look annoyed", "irritated", "mildly irritated", "exasperated"),
                 src("anger"), variants="15A+17B"),
        _concept("disapproval", "disapproving", "anger", g, "4B+15B+17C+24B",
                 ("disapproval", "disapproving", "look disapproving", "disapproving look", "unimpressed",
                  "tut-tut"), src("anger"), variants="14B"),
        _concept("nervousness", "nervous", "fear", g, "1C+4B+20B+24B",
                 ("nervousness", "nervous", "look nervous", "anxious", "uneasy", "jittery", "apprehensive"),
                 src("fear"), variants="5B+12A+64B"),
        _concept("amusement", "amused", "happy", g, "6C+12D+25+26B",
                 ("amusement", "amused", "look amused", "entertained", "find it funny", "tickled"),
                 f"{src('happiness')}, with the open jaw of laughter"),
        _concept("approval", "approving", "happy", g, "6A+12B+17B",
                 ("approval", "approving", "look approving", "approving nod", "satisfied", "content"),
                 src("happiness")),
        _concept("excitement", "excited", "happy", g, "1B+2C+5B+6C+12E+25+26B",
                 ("excitement", "excited", "look excited", "thrilled", "elated", "eager", "pumped"),
                 src("happiness")),
        _concept("gratitude", "grateful", "happy", g, "1B+6B+12C",
                 ("gratitude", "grateful", "look grateful", "thankful", "appreciative", "touched"),
                 src("happiness"), variants="43A"),
        _concept("love", "loving", "happy", g, "6C+12C+43A",
                 ("love", "loving", "look loving", "affectionate", "adoring", "tender look", "in love"),
                 src("happiness")),
        _concept("optimism", "optimistic", "happy", g, "2B+6B+12C",
                 ("optimism", "optimistic", "look optimistic", "hopeful", "upbeat", "positive outlook"),
                 src("happiness")),
        _concept("relief", "relieved", "happy", g, "1B+12B+25+43B",
                 ("relief", "relieved", "look relieved", "sigh of relief", "phew", "breathe easy"),
                 src("happiness")),
        _concept("pride", "proud", "happy", g, "12B+17B+24A",
                 ("pride", "proud", "look proud", "smug", "self-satisfied", "triumphant"),
                 f"{src('happiness')}; small smile with raised chin (Tracy & Robins 2004)", variants="6A"),
        _concept("admiration", "admiring", "happy", g, "1B+2B+5A+6B+12C",
                 ("admiration", "admiring", "look admiring", "impressed", "look up to someone", "in admiration"),
                 src("happiness")),
        _concept("desire", "longing", "happy", g, "1A+12B+25+43B",
                 ("desire", "longing", "look longing", "yearning", "wistful desire", "craving", "flirtatious"),
                 src("happiness")),
        _concept("caring", "caring", "happy", g, "1C+6B+12B",
                 ("caring", "look caring", "compassionate", "kind look", "sympathetic", "warm concern"),
                 src("happiness")),
        _concept("disappointment", "disappointed", "sad", g, "1B+4B+15C+17B",
                 ("disappointment", "disappointed", "look disappointed", "let down", "crestfallen", "deflated"),
                 src("sadness")),
        _concept("embarrassment", "embarrassed", "sad", g, "12B+14A+24B+64C",
                 ("embarrassment", "embarrassed", "look embarrassed", "sheepish", "awkward", "blush with shame",
                  "mortified"),
                 f"{src('sadness')}; controlled smile and gaze down (Keltner 1995)", variants="6A+7A"),
        _concept("grief", "grieving", "sad", g, "1E+4C+6B+7B+15E+17C+25+43B",
                 ("grief", "grieving", "grief-stricken", "heartbroken", "devastated", "in mourning",
                  "anguished"), src("sadness")),
        _concept("remorse", "remorseful", "sad", g, "1C+4B+15C+24B+64B",
                 ("remorse", "remorseful", "look remorseful", "guilty", "apologetic", "regretful", "ashamed"),
                 src("sadness")),
        _concept("realization", "realizing", "surprise", g, "1B+2C+5B+25+26A",
                 ("realization", "realizing", "sudden realization", "aha moment", "it dawns on them",
                  "light bulb moment"), src("surprise")),
        _concept("confusion", "confused", "surprise", g, "4C+L1B+L2C+7A",
                 ("confusion", "confused", "look confused", "puzzled", "perplexed", "baffled", "bewildered"),
                 f"{src('surprise')}; lowered brows with one brow raised (asymmetric)", variants="24A"),
        _concept("curiosity", "curious", "surprise", g, "1B+2B+5A+L2B",
                 ("curiosity", "curious", "look curious", "intrigued", "inquisitive", "interested"),
                 f"{src('surprise')}; one brow a little higher (asymmetric)", variants="25"),
    ]


def _actions() -> list[Concept]:
    a = "action"
    return [
        _concept("smile", "smile", "happy", a, "6B+12C",
                 ("smile", "break into a smile", "crack a smile", "give a smile", "smile warmly", "smiling",
                  "gentle smile"), _WORDNET),
        _concept("grin", "grin", "happy", a, "6C+10B+12E+16B+25",
                 ("grin", "grin broadly", "grin from ear to ear", "toothy grin", "big grin", "grinning"),
                 _WORDNET),
        _concept("smirk", "smirk", "happy", a, "L6A+L12C+L14A",
                 ("smirk", "smirking", "sly smile", "half smile", "lopsided smile", "crooked smile"),
                 _WORDNET, extra=(("mouthLeft", 0.1),)),
        _concept("simper", "simper", "happy", a, "1B+6A+12B+24A",
                 ("simper", "simpering", "simpering smile", "smile coyly", "coy smile", "affected smile"),
                 _WORDNET),
        _concept("beam", "beam", "happy", a, "1B+6D+12E+25+26A",
                 ("beam", "beaming", "beam with joy", "radiant smile", "beaming smile", "light up with joy"),
                 _WORDNET),
        _concept("shy_smile", "shy smile", "happy", a, "6A+12B+14A+64C",
                 ("shy smile", "smile shyly", "bashful smile", "timid smile", "smile bashfully"),
                 f"{_ACTION}; gaze down as in embarrassment (Keltner 1995)"),
        _concept("laugh", "laugh", "happy", a, "6E+12E+25+26C",
                 ("laugh", "laughing", "laugh out loud", "burst out laughing", "chuckle", "giggle", "crack up"),
                 f"{_WORDNET}; {_CELEBV}"),
        _concept("frown", "frown", "sad", a, "4D+15B",
                 ("frown", "frowning", "frown deeply", "make a frown", "turn the smile upside down"),
                 f"{_WORDNET}; {_CELEBV}"),
        _concept("scowl", "scowl", "anger", a, "4E+7C+9A+15B+24B",
                 ("scowl", "scowling", "scowl angrily", "dark look", "black look", "lour"), _WORDNET),
        _concept("glare", "glare", "anger", a, "4C+5C+7B+24B",
                 ("glare", "glaring", "glare at someone", "stare daggers", "angry stare", "give a dirty look"),
                 _CELEBV),
        _concept("grimace", "grimace", "other", a, "4C+6C+7C+10C+20D+25",
                 ("grimace", "grimacing", "make a grimace", "contorted face", "rictus", "pained expression"),
                 f"{_WORDNET}; {_PAIN}"),
        _concept("wince", "wince", "other", a, "4C+6C+7E+20B+43B",
                 ("wince", "wincing", "wince in pain", "flinch", "cringe", "ouch"), f"{_WORDNET}; {_PAIN}"),
        _concept("pout", "pout", "sad", a, "15B+17D+18C",
                 ("pout", "pouting", "sulk", "sulky pout", "moue", "stick out lower lip", "make a moue"),
                 _WORDNET),
        _concept("sneer", "sneer", "contempt", a, "4A+L9B+L10D",
                 ("sneer", "sneering", "curl lip", "curl upper lip", "lip curl", "mocking sneer"),
                 f"{_WORDNET}; {_CELEBV}"),
        _concept("snarl", "snarl", "anger", a, "4D+7C+9D+10E+16C+25",
                 ("snarl", "snarling", "bare teeth", "show teeth angrily", "growl"), _WORDNET),
        _concept("shout", "shout", "anger", a, "4C+5B+10C+20B+25+27C",
                 ("shout", "shouting", "yell", "scream angrily", "holler", "bellow"), _CELEBV),
        _concept("gape", "gape", "surprise", a, "1B+2B+5C+27C",
                 ("gape", "gaping", "mouth agape", "jaw drops", "stare open-mouthed", "drop jaw"), _WORDNET),
        _concept("wink", "wink", "other", a, "L6B+L12A+L46",
                 ("wink", "winking", "give a wink", "wink an eye", "wink playfully", "cheeky wink"),
                 f"{_WORDNET}; {_CELEBV}; AU46"),
        _concept("blink", "blink", "other", a, "45",
                 ("blink", "blinking", "blink eyes", "blink both eyes", "bat eyelids", "flutter eyelids"),
                 f"{_ACTION}; AU45"),
        _concept("close_eyes", "close eyes", "other", a, "43",
                 ("close eyes", "shut eyes", "eyes closed", "close both eyes", "fall asleep", "sleep"),
                 f"{_CELEBV} close_eyes/sleep; AU43"),
        _concept("squint", "squint", "other", a, "6B+7D",
                 ("squint", "squinting", "narrow eyes", "squint eyes", "peer", "screw up eyes"), _ACTION),
        _concept("yawn", "yawn", "other", a, "1B+4A+6B+27E+43C",
                 ("yawn", "yawning", "big yawn", "tired yawn", "stifle a yawn"), _CELEBV),
        _concept("cry", "cry", "sad", a, "1E+4C+6B+15D+17C+20B+25+43B",
                 ("cry", "crying", "weep", "weeping", "burst into tears", "sob", "start crying", "tearful"),
                 f"{_CELEBV} cry/weep; sadness AUs (Ekman & Friesen)"),
        _concept("sigh", "sigh", "sad", a, "1B+22A+25+26A+43B",
                 ("sigh", "sighing", "heave a sigh", "deep sigh", "exhale wearily"), _CELEBV),
        _concept("kiss", "kiss", "other", a, "18E+22B",
                 ("kiss", "blow a kiss", "pucker up", "pucker lips", "purse lips", "kissy face"),
                 f"{_CELEBV}; AU18 lip pucker"),
        _concept("puff_cheeks", "puff cheeks", "other", a, "24A+34E",
                 ("puff cheeks", "puff out cheeks", "blow up cheeks", "cheeks full of air", "hold breath"),
                 f"{_CELEBV} blow; AU34 cheek puff", extra=(("mouthClose", 0.2),)),
        _concept("raise_eyebrows", "raise eyebrows", "surprise", a, "1D+2D",
                 ("raise eyebrows", "raise both eyebrows", "lift eyebrows", "eyebrows up", "arch eyebrows"),
                 f"{_ACTION}; AU1+2"),
        _concept("raise_one_eyebrow", "raise one eyebrow", "other", a, "L1B+L2E+R4A",
                 ("raise one eyebrow", "raise an eyebrow", "arch one eyebrow", "skeptical look", "quizzical look",
                  "one brow up"), f"{_ACTION}; unilateral AU2 with the other brow slightly lowered"),
        _concept("furrow_brows", "furrow brows", "anger", a, "4D",
                 ("furrow brows", "knit brows", "furrow the brow", "brows together", "concentrate hard",
                  "lower eyebrows"), f"{_ACTION}; AU4"),
        _concept("wrinkle_nose", "wrinkle nose", "disgust", a, "9D",
                 ("wrinkle nose", "scrunch nose", "crinkle nose", "screw up nose", "sniff", "turn up nose"),
                 f"{_ACTION}; AU9; {_CELEBV} sniff"),
        _concept("clench_jaw", "clench jaw", "anger", a, "17B+20B+24C",
                 ("clench jaw", "clench teeth", "grit teeth", "set jaw", "tense jaw"),
                 f"{_ACTION}; no ARKit shape for AU31, nearest lip press and stretch", extra=(("mouthClose", 0.3),)),
        _concept("press_lips", "press lips", "other", a, "24E",
                 ("press lips together", "press lips", "tighten lips", "compress lips", "thin lips",
                  "lips pressed"), f"{_ACTION}; AU24"),
        _concept("bite_lip", "bite lip", "other", a, "32D",
                 ("bite lip", "bite lower lip", "nibble lip", "chew on lip", "lip bite"), f"{_ACTION}; AU32"),
        _concept("tongue_out", "tongue out", "other", a, "19E+25",
                 ("stick tongue out", "tongue out", "poke tongue out", "show tongue", "blep", "stick out tongue"),
                 f"{_ACTION}; AU19 tongue show"),
        _concept("look_left", "look left", "other", a, "61",
                 ("look left", "glance left", "look to the left", "eyes left", "turn eyes left"),
                 f"{_ACTION}; AU61, towards the character's own left"),
        _concept("look_right", "look right", "other", a, "62",
                 ("look right", "glance right", "look to the right", "eyes right", "turn eyes right"),
                 f"{_ACTION}; AU62, towards the character's own right"),
        _concept("look_up", "look up", "other", a, "63",
                 ("look up", "glance up", "look upward", "eyes up", "gaze upward", "look at the sky"),
                 f"{_ACTION}; AU63"),
        _concept("look_down", "look down", "other", a, "64",
                 ("look down", "glance down", "look downward", "eyes down", "lower gaze", "cast eyes down"),
                 f"{_ACTION}; AU64"),
    ]


@lru_cache(maxsize=1)
def all_concepts() -> tuple[Concept, ...]:
    """Every concept: neutral, basic, Du compound, GoEmotions, then actions."""
    concepts = tuple(_basic() + _compound() + _goemotions() + _actions())
    for c in concepts:  # cheap structural checks; a broken table must fail at import of the first caller
        if c.family not in FAMILIES or c.kind not in KINDS:
            raise AssertionError(f"concept {c.name}: bad family/kind")
        for ch, _ in c.extra:
            if ch not in CHANNEL_INDEX:
                raise AssertionError(f"concept {c.name}: unknown channel {ch}")
    return concepts


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Concept]:
    table = {c.name: c for c in all_concepts()}
    if len(table) != len(all_concepts()):
        raise AssertionError("duplicate concept names")
    return table


def get_concept(name: str) -> Concept:
    """Concept by name, alias ("anger", "joy", ...) or label; KeyError naming close matches otherwise."""
    if isinstance(name, Concept):
        return name
    table = _by_name()
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    if key in table:
        return table[key]
    if key in ALIASES:
        return table[ALIASES[key]]
    for c in all_concepts():
        if c.label.replace(" ", "_") == key:
            return c
    close = difflib.get_close_matches(key, list(table) + list(ALIASES), n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no expression concept named {name!r}{hint}")


# --------------------------------------------------------------------------------------------------------------------
# AUs -> weights
# --------------------------------------------------------------------------------------------------------------------
_SIDE_VALUES = (None, "both", "left", "right")


def _accumulate(w: np.ndarray, au: int, intensity: float, side: str) -> None:
    for ch, weight in au_channels_for_side(au, side):
        w[CHANNEL_INDEX[ch]] += intensity * weight


def _add_extra(w: np.ndarray, extra, scale: float, side: str = "both") -> None:
    for ch, value in extra:
        s = channel_side(ch)
        if side == "both" or s == side:
            w[CHANNEL_INDEX[ch]] += value * scale
        elif s == "both":
            w[CHANNEL_INDEX[ch]] += value * scale * ONE_SIDED_CENTER_FACTOR


def _check(intensity: float, side) -> None:
    if not (isinstance(intensity, (int, float, np.floating)) and math.isfinite(intensity) and intensity >= 0):
        raise InputError(f"Intensity must be a non-negative number, got {intensity!r}.")
    if side not in _SIDE_VALUES:
        raise InputError(f"Side must be 'left', 'right' or 'both', got {side!r}.")


def _is_one_sided(concept: Concept) -> bool:
    return any(a.side != "both" for a in concept.aus) or any(channel_side(ch) != "both" for ch, _ in concept.extra)


def _orient(w: np.ndarray, side: str) -> np.ndarray:
    """Mirror an asymmetric face so that its stronger half is on `side`."""
    left, right = float(w[list(LEFT_CHANNELS)].sum()), float(w[list(RIGHT_CHANNELS)].sum())
    dominant = "left" if left >= right else "right"
    return w if dominant == side else mirror_weights(w)


def concept_weights(concept, intensity: float = 1.0, side: str | None = None,
                    include_variants: bool = False) -> np.ndarray:
    """(52,) float32 ARKit weights in [0, 1] for a concept (or its name).

    side None/"both": as defined (a one-sided concept keeps its own side: smirk and wink on the left, contempt on the
    right). side "left"/"right": a one-sided concept is mirrored so its active half is that side; a symmetric one is
    made one-sided (the other side's channels dropped, unsided channels at half strength).
    """
    concept = get_concept(concept)
    _check(intensity, side)
    w = np.zeros(NUM_CHANNELS, dtype=np.float64)
    one_sided = _is_one_sided(concept)
    target = "both" if (side in (None, "both") or one_sided) else side
    for act in concept.aus:
        if act.core or include_variants:
            _accumulate(w, act.au, act.intensity * intensity, act.side if target == "both" else target)
    _add_extra(w, concept.extra, intensity, target)
    w = np.clip(w, 0.0, 1.0)
    if one_sided and side in ("left", "right"):
        w = _orient(w, side)
    return w.astype(np.float32)


def sample_concept_weights(concept, rng: np.random.Generator, intensity: float = 1.0, variant_prob: float = 0.35,
                           jitter: float = 0.15, asymmetry: float = 0.1, side: str | None = None) -> np.ndarray:
    """A random plausible instance of a concept, for training data: core AUs always (intensity x U(1-jitter,
    1+jitter) each), each variant AU with probability `variant_prob` at 60-100% of its listed intensity, extras
    jittered, then a slight left/right imbalance (one global factor U(-asymmetry, asymmetry) making one side stronger).
    Deterministic for a given rng state; clipped to [0, 1]; float32 (52,)."""
    concept = get_concept(concept)
    _check(intensity, side)
    one_sided = _is_one_sided(concept)
    target = "both" if (side in (None, "both") or one_sided) else side
    w = np.zeros(NUM_CHANNELS, dtype=np.float64)
    for act in concept.aus:
        factor = rng.uniform(1.0 - jitter, 1.0 + jitter)
        if not act.core:
            keep = rng.random() < variant_prob
            factor *= rng.uniform(0.6, 1.0)
            if not keep:
                continue
        _accumulate(w, act.au, act.intensity * intensity * factor, act.side if target == "both" else target)
    for ch, value in concept.extra:
        _add_extra(w, ((ch, value),), intensity * rng.uniform(1.0 - jitter, 1.0 + jitter), target)
    tilt = rng.uniform(-asymmetry, asymmetry)
    w[list(LEFT_CHANNELS)] *= 1.0 + tilt
    w[list(RIGHT_CHANNELS)] *= 1.0 - tilt
    w = np.clip(w, 0.0, 1.0)
    if one_sided and side in ("left", "right"):
        w = _orient(w, side)
    return w.astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Weights -> AUs (for AU precision/recall evaluation)
# --------------------------------------------------------------------------------------------------------------------
SAME_POSE_AU: dict[int, int] = {45: 43}
"""A blink (AU45) is a brief AU43: one pose cannot tell them apart, so both are reported as 43."""
UNDECODABLE_AUS: frozenset[int] = frozenset({11})
"""AU11's nearest shapes are AU10's and AU6's, so a pose showing 6+10 cannot be told from 11; active_aus never
reports it."""

# Decoding order: AUs whose channel pattern is a superset/mixture of others come first, so that their share can be
# explained away before the simpler AUs read the remainder (e.g. 23 = press + roll before 24 = press and 28 = roll).
_DECODE_ORDER: tuple[int, ...] = (
    13, 33, 19, 9, 23, 25, 28, 32,
    1, 2, 4, 5, 6, 7, 10, 12, 14, 15, 16, 17, 18, 20, 22, 24, 29, 30, 34, 61, 62, 63, 64,
)
_AU27_JAW = 0.55  # residual jawOpen above AU26's full 0.5 (plus margin) reads as AU27 (mouth stretch)
_AU26_JAW = 0.5


def active_aus(weights: np.ndarray, threshold: float = 0.15) -> frozenset[int]:
    """AUs a (52,) ARKit vector expresses, with estimated intensity >= threshold (0..1 scale of FACS A..E).

    Each AU in `_DECODE_ORDER` reads its intensity per side as the smallest ratio residual/weight over its channels
    (all of its channels must be present in the right proportion), takes the stronger side, and removes its share from
    the residual. jawOpen is then read as AU26 (moderate) or AU27 (large) by level, and eyeBlink as AU43 (both eyes)
    or AU46 (one eye). AU11 is not decoded (see UNDECODABLE_AUS): its share reads as AU10/AU6.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (NUM_CHANNELS,):
        raise ValueError(f"expected weights shaped ({NUM_CHANNELS},), got {w.shape}")
    residual = np.clip(w, 0.0, 1.0).copy()
    found: set[int] = set()
    for au in _DECODE_ORDER:
        channels = [(CHANNEL_INDEX[ch], weight, channel_side(ch)) for ch, weight in AU_TO_CHANNELS[au]]
        est = {}
        for side in ("left", "right"):
            ratios = [min(residual[i] / weight, 1.0) for i, weight, s in channels if s in (side, "both")]
            est[side] = min(ratios) if ratios else 0.0
        strength = max(est.values())
        if strength < threshold:
            continue
        found.add(au)
        for i, weight, s in channels:
            share = strength if s == "both" else est[s]
            residual[i] = max(0.0, residual[i] - share * weight)
    jaw = residual[CHANNEL_INDEX["jawOpen"]]
    if jaw > _AU27_JAW:
        found.add(27)
    elif jaw / _AU26_JAW >= threshold:
        found.add(26)
    left, right = residual[CHANNEL_INDEX["eyeBlinkLeft"]], residual[CHANNEL_INDEX["eyeBlinkRight"]]
    if min(left, right) >= threshold:
        found.add(43)
    elif max(left, right) >= threshold:
        found.add(46)
    return frozenset(found)


def concept_aus(concept, include_variants: bool = False) -> frozenset[int]:
    """The concept's AU numbers (core, plus variants if asked), with 45 reported as 43 (see SAME_POSE_AU)."""
    concept = get_concept(concept)
    return frozenset(SAME_POSE_AU.get(a.au, a.au) for a in concept.aus if a.core or include_variants)


__all__ = [
    "ALIASES", "AUActivation", "Concept", "DU_CATEGORIES", "FACS_LETTERS", "FAMILIES", "GOEMOTIONS_CATEGORIES",
    "GOEMOTIONS_FAMILY", "KINDS", "SAME_POSE_AU", "UNDECODABLE_AUS", "active_aus", "all_concepts", "concept_aus",
    "concept_weights", "get_concept", "sample_concept_weights",
]
