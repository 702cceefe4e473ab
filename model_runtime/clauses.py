"""Reading one segment's clauses: the layers shown together, everyday and literary vocabulary, direct actions,
repeats and contradictions.

The parser (instructions.py) finds the structure; this module decides what each simultaneous part *is*:

- vocabulary: idioms and rare words the text encoder misreads are rewritten to plain phrases of the knowledge base
  ("gobsmacked" -> "astonished", "her face falls" -> "crestfallen", "deadpan" -> the neutral face). Sources: WordNet
  3.0 synsets (Princeton; e.g. dumbfounded/flabbergasted/thunderstruck/dumbstruck "as if struck dumb with
  astonishment", deadpan/poker-faced "deliberately impassive", glower "look angry or sullen", crestfallen/
  chapfallen, downcast/dejected/glum, serious/solemn/grave "dignified and somber") and the Cambridge Dictionary's
  idioms ("someone's face falls", "look daggers at", "pull a long face", "over the moon", "on cloud nine", "tickled
  pink").
- a shared object: "raise and lower the eyebrows" -> "raise the eyebrows" + "lower the eyebrows"; "close it" after
  "open the mouth" -> "close the mouth".
- adjective + noun: "a sad smile" -> "smile" with a "sad" modifier layer that yields to the smile where they clash;
  any other English adjective before a facial noun ("an uncertain smile") is such a modifier too, read by the
  generator; phrases the knowledge base knows as a whole ("shy smile", "toothy grin") are kept whole.
- negation: what follows "without", "with no", "giving no evidence of", or a leading "no", "not", "don't" is held at
  rest, not shown.
- direct actions (model_runtime.actions) for every part whose whole text names one.
- contradictions asked for at the same time ("smile and frown at the same time", "look left and right at the same
  time"): the first-named part wins where they clash and a note names the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from .actions import (OFFER_VERBS, SCENE_STARTS, Action, adverb_base, is_content_word, is_manner_adverb,
                      read_action, read_offered_action, read_told_action)
from .limits import MAX_REPEATS, repeat_count
from .recognition import FUNCTION_WORDS, english_words, vouching_words, words

_VOCABULARY: tuple[tuple[str, str], ...] = (
    # (pattern over a part's whole text, plain phrase; "neutral" means the resting face)
    (r"(?:look\s+|be\s+|feel\s+|get\s+)?(?:utterly\s+)?(?:gobsmacked|flabbergasted|dumbfounded|dumfounded|thunderstruck"
     r"|dumbstruck|dumbstricken|stupefied|agog|stunned|floored|speechless)", "astonished"),
    (r"(?:(?:her|his|their|the|my|your)\s+)?face\s+(?:falls|fell|drops|dropped|falling)", "crestfallen"),
    (r"(?:look\s+|be\s+|feel\s+)?(?:crestfallen|chapfallen|downcast|dejected|glum|morose|despondent|forlorn"
     r"|woebegone|downhearted|disconsolate|doleful|lugubrious|mournful)", "sad"),
    (r"(?:pull|pulls|make|makes|wear|wears|have|has)?\s*(?:a\s+)?long\s+face|down\s+in\s+the\s+mouth", "sad"),
    (r"(?:keep\s+|keeps\s+|wear\s+|with\s+|make\s+)?(?:a\s+)?(?:deadpan|poker(?:-|\s+)faced?|stony-faced|stone-faced"
     r"|straight\s+face|impassive|expressionless|blank\s+face|blank\s+stare|wooden\s+face)(?:\s+(?:face|look|expression))?",
     "neutral"),
    (r"(?:look\s+)?(?:deadpan|stony-faced|stone-faced|impassive|expressionless|poker-faced)", "neutral"),
    (r"(?:look\s+|keep\s+|wear\s+|with\s+)?(?:an?\s+)?(?:serious|solemn|grave)"
     r"(?:\s+(?:facial\s+)?(?:face|expression|look))?", "neutral"),
    (r"(?:glower|glowers|glowering|glowered|look\s+daggers(?:\s+at\s+\S+)?|stare\s+daggers|seethe|seethes|seething"
     r"|seethe\s+with\s+(?:rage|anger|fury)|fume|fumes|fuming|bristle|bristles|bristling|lour|lours|louring|lower\s+darkly)"
     r"(?:\s+with\s+(?:rage|anger|fury))?", "furious"),
    (r"(?:look\s+|be\s+|feel\s+)?(?:over\s+the\s+moon|on\s+cloud\s+nine|tickled\s+pink|in\s+seventh\s+heaven"
     r"|walking\s+on\s+air|jubilant|ecstatic|overjoyed|elated)", "delighted"),
    (r"(?:look\s+)?(?:aghast|horror-struck|horror-stricken|horrorstruck|petrified|panic-stricken)", "fearfully surprised"),
    (r"(?:give\s+|with\s+)?(?:an?\s+)?(?:sheepish|bashful|abashed)\s+(?:grin|smile)", "shy smile"),
    (r"(?:let\s+(?:the\s+)?air\s+out|breathe\s+out|exhale|let\s+it\s+out|let\s+go)", "neutral"),
    (r"(?:look\s+|be\s+|stay\s+|in\s+an\s+)?unsmiling(?:ly)?(?:\s+(?:manner|way|face|look|expression))?", "neutral"),
)
_VOCABULARY_RES = tuple((re.compile(rf"^(?:{p})$"), phrase) for p, phrase in _VOCABULARY)

# Adjectives that colour an expression noun as their own layer ("a sad smile": sad brows, a smiling mouth).
_MODIFIER_ADJECTIVES = {
    "sad": "sad", "sorrowful": "sad", "melancholy": "sad", "wistful": "sad", "rueful": "sad", "bittersweet": "sad",
    "teary": "tearful", "tearful": "tearful", "weepy": "tearful", "watery": "tearful",
    "angry": "angry", "furious": "angry", "bitter": "angry", "cruel": "angry", "menacing": "angry",
    "nervous": "nervous", "anxious": "nervous", "worried": "nervous", "uneasy": "nervous", "fearful": "afraid",
    "scared": "afraid", "frightened": "afraid", "surprised": "surprised", "astonished": "surprised",
    "shocked": "surprised", "disgusted": "disgusted", "tired": "tired", "sleepy": "sleepy", "weary": "tired",
    "pained": "pained expression", "guilty": "guilty", "embarrassed": "embarrassed",
    "tight-lipped": "press lips", "thin-lipped": "press lips", "wide-eyed": "widen eyes",
    "open-mouthed": "open mouth", "narrow-eyed": "squint", "squinting": "squint", "pursed-lipped": "purse lips",
}
_GENERIC_NOUNS = ("stare", "look", "face", "expression", "gaze")  # name a look, not what it shows
_EXPRESSION_NOUNS = ("smile", "grin", "smirk", "frown", "scowl", "stare", "look", "pout", "grimace", "glare",
                     "face", "expression", "laugh", "gaze", "sneer", "simper")
_ADJ_NOUN_RE = re.compile(
    r"^(?P<adj>" + "|".join(sorted(map(re.escape, _MODIFIER_ADJECTIVES), key=len, reverse=True)) + r")"
    r"(?:\s*,?\s*(?:and\s+)?(?P<adj2>" + "|".join(sorted(map(re.escape, _MODIFIER_ADJECTIVES), key=len, reverse=True))
    + r"))?\s+(?P<noun>(?:" + "|".join(_EXPRESSION_NOUNS) + r")s?)$")

# Expression words whose mouth corners pull opposite ways: asked for at the same time they contradict.
_UP_WORDS = re.compile(r"(?<![\w-])(?:smil\w*|grin\w*|beam\w*|laugh\w*|happy|joy\w*|cheerful|delighted)(?![\w-])")
_DOWN_WORDS = re.compile(r"(?<![\w-])(?:frown\w*|scowl\w*|pout\w*|sad\w*|sulk\w*|grimac\w*|unhappy|gloomy)(?![\w-])")

_BARE_VERBS = frozenset(("raise", "lower", "open", "close", "shut", "widen", "narrow", "purse", "tilt", "lift",
                         "drop", "press", "furrow", "wrinkle", "roll", "shake", "bow", "turn"))
_PARTS_RE = re.compile(r"(?<![\w-])(?P<part>mouth|jaw|lips?|eyes?|eyelids?|(?:eye)?brows?|cheeks?|nose|tongue|head)"
                       r"(?![\w-])")
_PRONOUN_RE = re.compile(r"^(?P<verb>\S+(?:\s+(?:up|down|out|in))?)\s+(?P<pro>it|them|that|this)(?P<rest>\s+.*)?$")


@dataclass(frozen=True)
class Layer:
    """A part of a segment shown at the same time as its main text: "looking up" in "smile while looking up", or
    "sad" in "a sad smile" (role "modifier": it colours the head noun and yields to it where they clash)."""

    text: str
    source: str
    kind: str
    intensity: float | None
    side: str | None
    action: Action | None
    repeat: int = 1
    keep: bool = False
    role: str = "with"
    period: float | None = None  # "every 3 seconds": seconds from one peak to the next


KEEP_REPEATS = 4  # "keep blinking", "again and again": enough peaks to read as ongoing


@dataclass
class Part:
    """One simultaneous part while it is being read."""

    text: str
    source: str
    kind: str
    intensity: float | None
    side: str | None
    repeat: int | None
    keep: bool
    role: str = "main"
    action: Action | None = None
    period: float | None = None


def _added_part(text: str, role: str, intensity: float | None = None, side: str | None = None,
                source: str | None = None, action: Action | None = None) -> Part:
    """An expression part a reading adds beside the one it came from (a held part, a manner, a complement, a
    modifier); its repeat is left for build_layers to decide."""
    return Part(text=text, source=text if source is None else source, kind="expression", intensity=intensity,
                side=side, repeat=None, keep=False, role=role, action=action)


@lru_cache(maxsize=1)
def _whole_phrases() -> frozenset[str]:
    from .knowledge import all_concepts

    return frozenset(p for c in all_concepts() for p in (c.label, *c.phrases))


@lru_cache(maxsize=4096)
def vocabulary(text: str) -> tuple[str, str] | None:
    """(plain phrase, kind) for an idiom or rare word the whole text is, else None."""
    for pattern, phrase in _VOCABULARY_RES:
        if pattern.match(text):
            return (phrase, "return") if phrase == "neutral" else (phrase, "expression")
    return None


def build_layers(source_text: str, piece, previous, unplaced: list[str], notes: list[str]):
    """(main Part, [Layer...]) for an assembled parser piece; see the module docstring for the rules."""
    pieces = [piece, *piece.layers]
    parts = [Part(text=p.text, source=source_text[p.start:p.own_end or p.end].strip(), kind=p.kind, intensity=p.intensity, side=p.side,
                  repeat=p.repeat, keep=p.keep, role="main" if i == 0 else "with", period=p.period)
             for i, p in enumerate(pieces)]
    explicit = any(p.explicit for p in pieces) or any(p.join == "with" for p in pieces[1:])
    bare_first = parts[0].text in _BARE_VERBS
    parts = _split_given_pairs(_split_manner_phrases(_split_negations(parts)))
    _share_objects(parts)
    _resolve_pronouns(parts, previous)
    told: list[Part] = []
    for part in parts:
        found = vocabulary(part.text)
        if found is not None:
            part.text, part.kind = found
        if part.kind == "expression":
            part.action = read_action(part.text, part.side)
            if part.role == "without":
                part.action = part.action and replace(part.action, pulse=False, head=None, poses=())
            elif part.action is None:
                told.extend(_read_told(part, notes))
    _split_adjectives(parts)
    if bare_first:
        _open_and_close(parts, explicit)
    parts.extend(told)
    parts = _drop_contradictions(parts, notes)
    main = parts[0]
    if parts[0].keep:  # "keep smiling and blinking": keep reaches every part joined to the first
        for part in parts[1:]:
            part.keep = part.keep or part.role == "with"
    for part in parts:
        pulse = part.action is not None and part.action.pulse
        # "blinking", "nodding": the progressive names an ongoing action, so a time given to it is filled with
        # repeats ("smile while blinking for 4 seconds"); a bare "wink ... for 3 seconds" holds the wink
        ongoing = pulse and part.repeat is None and part.text.split(maxsplit=1)[0].endswith("ing")
        part.repeat = part.repeat or (KEEP_REPEATS if part.keep and pulse else 1)
        part.keep = part.keep or ongoing
    layers = [Layer(text=p.text, source=p.source, kind=p.kind, intensity=p.intensity, side=p.side, action=p.action,
                    repeat=p.repeat, keep=p.keep, role=p.role, period=p.period) for p in parts[1:]]
    return main, layers


# "with no smile", "giving no evidence of interest", "without a hint of a smile": what is held is after the trace words
_TRACE = r"(?:(?:any|a|the)\s+)?(?:(?:sign|signs|evidence|hint|trace|suggestion|flicker|glimmer|bit)\s+of\s+)?"
_NEGATION_RE = re.compile(
    rf"^(?:(?P<kept>.+?)\s+)?(?:without|(?:with|showing|giving|betraying|revealing|displaying)\s+no)\s+{_TRACE}"
    rf"(?P<held>\S.*)$|^(?:no|not|never|don't|do\s+not)\s+{_TRACE}(?P<none>\S.*)$")


def _split_negations(parts: list[Part]) -> list[Part]:
    """"look surprised without opening the mouth", "a straight face with no smile": what follows "without" or "no" is
    a part whose channels the key holds at rest (role "without"), not a part to show."""
    out = []
    for part in parts:
        m = _NEGATION_RE.match(part.text) if part.kind == "expression" and not _names_a_phrase(part.text) else None
        if m is None:
            out.append(part)
            continue
        held = m.group("held") or m.group("none")
        if m.group("kept"):
            out.append(replace(part, text=m.group("kept")))
        out.append(_added_part(held, "without", side=part.side))
    if out and out[0].role == "without":  # "without smiling" alone: nothing is asked, so the face rests
        out.insert(0, Part(text="neutral", source=parts[0].source, kind="return", intensity=None, side=None,
                           repeat=None, keep=False))
    return out


_NOUNS_AND_RE = re.compile(r"^(?P<first>.+?)\s+and\s+(?:an?|the|some)\s+(?P<second>.+)$")


def _split_given_pairs(parts: list[Part]) -> list[Part]:
    """"a nod and a smile", "give a big smile and a wink": two things given or shown at once, one of them a direct
    action, are two parts (the second given by the same verb); "a sad and a tired look" names no action and stays
    whole."""
    out = []
    for part in parts:
        m = _NOUNS_AND_RE.match(part.text) if part.kind == "expression" and not _names_a_phrase(part.text) else None
        if m is None:
            out.append(part)
            continue
        first, verb = m.group("first"), m.group("first").split()[0]
        second = f"{verb} a {m.group('second')}" if verb in OFFER_VERBS else m.group("second")
        if not any(read_action(text, part.side) or read_offered_action(text, part.side) for text in (first, second)):
            out.append(part)
            continue
        out += [replace(part, text=first), _added_part(second, "with", part.intensity, part.side)]
    return out


# "nod in a friendly way", "spoke in a sneering manner": the manner is a part shown with the action it describes
_MANNER_PHRASE_RE = re.compile(r"^(?:(?P<kept>.+?)\s+(?:(?:or|and)\s+)?)?in\s+an?\s+(?:(?P<how>[a-z][a-z' -]*?)\s+)?"
                               r"(?:manner|way|fashion)$")


def _split_manner_phrases(parts: list[Part]) -> list[Part]:
    out = []
    for part in parts:
        m = _MANNER_PHRASE_RE.match(part.text) if part.kind == "expression" and part.role != "without" else None
        if m is None or part.text in _whole_phrases() or not (m.group("kept") or m.group("how")):
            out.append(part)
        elif m.group("how") is None:  # "smile in a slow way": the parser has already taken the speed
            out.append(replace(part, text=m.group("kept")))
        elif m.group("kept") is None:
            out.append(replace(part, text=m.group("how")))
        else:
            out += [replace(part, text=m.group("kept")), _added_part(m.group("how"), "with", part.intensity)]
    return out


def _names_a_phrase(text: str) -> bool:
    """Whether `text` is, or begins with, a knowledge-base phrase that says "no" ("no expression face")."""
    return text in _whole_phrases() or any(text.startswith(p + " ") for p in _negative_phrases())


@lru_cache(maxsize=1)
def _negative_phrases() -> tuple[str, ...]:
    return tuple(p for p in _whole_phrases() if _NEGATION_RE.match(p))


def _read_told(part: Part, notes: list[str]) -> list[Part]:
    """"The teacher nodded when the student gave the right answer", "he nodded his approval", "a sly wink": the
    action becomes the part; the rest stays as a layer only when it names something facial ("in surprise", "his
    approval", "sly"), not when it is the scene ("at him", "in his chair") or a clause ("when the student ...")."""
    whole = part.text in _whole_phrases()  # "mocking sneer": a knowledge-base phrase means what it says whole
    told = None if whole else read_told_action(part.text, part.side)
    if told is None:
        return _read_offered(part, notes)  # "give a wink", a whole phrase of the wink concept, is the wink action
    part.action, part.text, complement = told
    return [_added_part(complement, "with", part.intensity)] if _names_facial_rest(complement) else []


def _read_offered(part: Part, notes: list[str]) -> list[Part]:
    """"give a sly nod", "show a squint", "throw a wink in agreement", "give two nods": the part is the action (as
    many times as given, unless a count was written elsewhere); its adjectives and what follows it are layers when
    they name something facial, as for a told action. Its text stays as written, as the segment's: the learned model
    was trained on such templates as text ("show wink"), and an action part's text is only shown, never read."""
    offered = read_offered_action(part.text, part.side)
    if offered is None or offered.adjectives and f"{offered.adjectives} {offered.core}" in _whole_phrases():
        return []  # "show mocking sneer": a knowledge-base phrase with adjectives means what it says whole
    part.action = offered.action
    if offered.count is not None and part.repeat is None:
        part.repeat, as_asked = repeat_count(offered.count)
        if not as_asked:
            notes.append(f"The count in {part.text!r} is not from 1 to {MAX_REPEATS}; {part.repeat} shown.")
    return [_added_part(extra, "with", part.intensity) for extra in (offered.adjectives, offered.after)
            if _names_facial_rest(extra)]


def _names_facial_rest(text: str) -> bool:
    """Whether the words around a told or given action are kept as a layer: only when they name something facial
    ("in surprise", "sly", "sadly"), not when they are the scene ("at him", "when the student ...") or empty."""
    return bool(text) and text.split()[0] not in SCENE_STARTS and \
        names_a_facial_word(" ".join(adverb_base(w) for w in words(text)))


_SIDE_WORDS = frozenset(("left", "right"))  # "the right answer": a side only beside a face part


def names_a_facial_word(text: str) -> bool:
    """Whether `text` has a word of the whole knowledge base's phrases (light verbs and sides set aside)."""
    return any(w in _facial_words() for w in words(text) if w not in FUNCTION_WORDS | _SIDE_WORDS)


@lru_cache(maxsize=1)
def _facial_words() -> frozenset[str]:
    from .knowledge import all_concepts

    return vouching_words(all_concepts())


def _share_objects(parts: list[Part]) -> None:
    """"raise and lower the eyebrows": a bare verb borrows the face part of the next part."""
    for i, part in enumerate(parts[:-1]):
        if part.text in _BARE_VERBS:
            words = parts[i + 1].text.split(maxsplit=1)
            if len(words) == 2 and _PARTS_RE.search(words[1]):
                part.text = f"{part.text} {words[1]}"


def _resolve_pronouns(parts: list[Part], previous) -> None:
    """"open the mouth, then close it": the pronoun is the face part named just before."""
    if previous is None:
        return
    before = " ".join([previous.text, *(p.text for p in previous.layers)])
    found = _PARTS_RE.findall(before)
    if not found:
        return
    for part in parts:
        m = _PRONOUN_RE.match(part.text)
        if m is not None:
            part.text = f"{m.group('verb')} the {found[-1]}{m.group('rest') or ''}"
        elif part.text in _BARE_VERBS:  # "close it": the parser has already dropped the trailing "it"
            part.text = f"{part.text} the {found[-1]}"


def _split_adjectives(parts: list[Part]) -> None:
    """"a tight-lipped smile", "a sad smile": the adjective becomes a modifier layer of the noun."""
    main = parts[0]
    if main.action is not None or main.kind != "expression" or main.text in _whole_phrases():
        return
    m = _ADJ_NOUN_RE.match(main.text)
    if m is None:
        _split_other_adjectives(main, parts)
        return
    noun = m.group("noun")
    adjectives = [a for a in (m.group("adj"), m.group("adj2")) if a]
    generic = noun in (*_GENERIC_NOUNS, "looks", "faces", "expressions")
    if generic and not all(read_action(_MODIFIER_ADJECTIVES[a]) for a in adjectives):
        return  # "a sad and tired look" is one meaning for the encoder
    parts.extend(_modifiers(main, adjectives))
    if generic:
        # "an open-mouthed stare", "a sad face": the adjective is the whole expression
        first = parts.pop(1)
        main.text, main.action, main.source = first.text, first.action, main.source
        return
    main.text = noun


# Any other adjectives before a facial noun that shows something of its own ("an uncertain smile", "his mad contorted
# smile", "flash a cocky grin"): the noun is the expression, each adjective a modifier read by the generator.
SHOWN_NOUNS = tuple(n for n in _EXPRESSION_NOUNS if n not in _GENERIC_NOUNS)
_OTHER_ADJ_NOUN_RE = re.compile(
    r"^(?:(?:give|gives|flash|flashes|crack|cracks|wear|wears|offer|offers|force|forces|manage|manages)\s+)?"
    r"(?:(?:a|an|the|his|her|their|my|your|its|one's)\s+)?(?P<adjs>[a-z][a-z-]*(?:\s+[a-z][a-z-]*)?)\s+"
    rf"(?P<noun>(?:{'|'.join(SHOWN_NOUNS)})s?)$")


def _split_other_adjectives(main: Part, parts: list[Part]) -> None:
    m = _OTHER_ADJ_NOUN_RE.match(main.text)
    if m is None:
        return
    adjectives, noun = m.group("adjs").split(), m.group("noun")
    whole = _whole_phrases()
    if any(f"{a} {noun}" in whole or not is_content_word(a) or is_manner_adverb(a) or a not in english_words()
           for a in adjectives):
        return  # "shy smile" is a phrase of its own; "show smile" has no adjective
    parts.extend(_modifiers(main, adjectives))
    main.text = noun


def _modifiers(main: Part, adjectives: list[str]) -> list[Part]:
    """A modifier part of `main` for each adjective: the table's reading where it has one ("a weak, watery smile":
    watery is tearful there too), else the adjective itself."""
    return [_added_part(text, "modifier", main.intensity, source=adj, action=read_action(text))
            for adj in adjectives for text in [_MODIFIER_ADJECTIVES.get(adj, adj)]]


def _open_and_close(parts: list[Part], explicit: bool) -> None:
    """"open and close the mouth (three times)" is one repeated opening, unless asked "at the same time"."""
    if explicit or len(parts) != 2 or parts[0].action is None or parts[1].action is None:
        return
    a, b = parts[0].action, parts[1].action
    if b.name in a.opposes and not parts[0].repeat:
        parts[0].repeat = parts[1].repeat or 1
        parts[0].keep = parts[0].keep or parts[1].keep
        parts[0].source = f"{parts[0].source} {parts[1].source}"
        parts[0].action = _pulsed(a)
        del parts[1]


def _pulsed(action: Action) -> Action:
    return replace(action, pulse=True)


def _drop_contradictions(parts: list[Part], notes: list[str]) -> list[Part]:
    """Parts that contradict an earlier one are left out where they clash, with a note naming them."""
    kept: list[Part] = []
    for part in parts:
        clash = next((k for k in kept if k.role != "without" and _contradicts(k, part)), None)
        if clash is None or part.role in ("modifier", "without"):  # what is held at rest pulls nothing
            kept.append(part)
            continue
        if part.action is not None and clash.action is not None:
            notes.append(f"'{part.source}' contradicts '{clash.source}' at the same time, so it was left out.")
            continue
        notes.append(f"'{part.source}' and '{clash.source}' pull the mouth corners opposite ways at the same time; "
                     f"the mouth follows '{clash.source}'.")
        part.role = "yield"
        kept.append(part)
    return kept


def _contradicts(a: Part, b: Part) -> bool:
    if a.action is not None and b.action is not None:
        return b.action.name in a.action.opposes or a.action.name in b.action.opposes
    if a.action is None and b.action is None and a.kind == b.kind == "expression":
        return bool((_UP_WORDS.search(a.text) and _DOWN_WORDS.search(b.text))
                    or (_DOWN_WORDS.search(a.text) and _UP_WORDS.search(b.text)))
    return False
