"""Instruction structure: split a typed instruction into a timeline of expression segments.

The parser handles STRUCTURE only; what an expression *means* is left to the text encoder.  For every
segment it pulls out intensity, timing, speed/manner and side words and leaves the meaning text
("slowly break into a shy smile" -> text "shy smile", speed "slow", manner ("slowly",)).

Pipeline (each step is a small set of named regular expressions):

1. ``_normalise``: a same-length, lower-case copy of the text with odd whitespace and control characters
   turned into spaces, so every offset found in it is an offset into the original instruction.
2. ``_split``: cut the text into fragments at sequence separators.  Hard separators: ``then``, ``and then``,
   ``after that``, ``afterwards``, ``followed by``, ``before``, ``next``, ``finally``, ``;`` ``.`` ``!`` ``?``,
   new lines, arrows and spaced dashes.  Soft separator: ``,`` (not inside a decimal like ``1,5``).
   ``X after Y`` is a reversing separator (Y plays first).
   **The "and" rule:** ``and`` separates only when the next word (after at most three adverbs such as
   ``slowly`` or ``then``) is a verb-like expression start from ``_VERB_STARTS`` (``smile``, ``frown``,
   ``look``, ``raise``, ``relax``, ``hold``...); ``open``/``close``/``shut``/``lower`` count only when a face
   part or determiner follows.  So "smile and then frown" and "smile and look shocked" are sequences while
   "a sad and tired look" stays one segment.  Past participles (``relaxed``) never count.
3. ``_transition_parts``: "from X to Y", "go/change/transform (this face) from X to Y", "turn X into Y":
   X becomes a starting face (``is_start``), Y a normal segment; "from A to B to C" chains.
4. ``_analyse``: take out numeric intensities, durations, hold words, speed words, manner words and
   intensity words (in that order, never overlapping), then strip filler ("please", "make the face",
   "break into", articles) and decide whether what is left is a return to neutral.
5. ``_assemble``: fragments with modifiers but no expression are attached to a neighbour: hold/pause/wait
   and "for N s" go to the previous segment's hold (a pause before any expression holds neutral), other
   modifiers move across a comma to the next (or previous) expression; anything that cannot be attached
   is reported in ``unplaced``.  Nothing meaningful is dropped silently.

Conventions: a bare duration ("smile 2s") is a hold; "after N s" adds N to the previous face's hold; "a few
seconds" is 3 s; frames go to ``transition_frames``/``hold_frames`` (the runtime knows the fps).  Durations are
kept as written, negative or huge included; intensities are clamped to [0, 1] and the phrase is listed in
``unplaced``.  Known limits: a comma always separates ("a sad, tired look" gives two segments); "and"
before a verb always separates ("raise and lower the brows"); "for a moment" has no number and is reported.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field, replace

from model_runtime.actions import Action, read_action
from model_runtime.clauses import KEEP_REPEATS, SHOWN_NOUNS, Layer, build_layers
from model_runtime.errors import InputError
from model_runtime.limits import MAX_DURATION_S, MAX_REPEATS, repeat_count
from model_runtime.number_words import NUMBER_WORDS

MAX_INSTRUCTION_CHARS = 2000

_ALLOWED_CONTROL = frozenset("\t\n\r")


def validate_instruction(text: object) -> str:
    """Check a user instruction before any work is done; return it stripped or raise InputError."""
    if not isinstance(text, str):
        raise InputError(f"The instruction must be text, but a {type(text).__name__} was given.")
    if "\x00" in text:
        raise InputError(f"The instruction contains a NUL character at position {text.index(chr(0))}, which is not allowed.")
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if cat == "Cc" and ch not in _ALLOWED_CONTROL:
            raise InputError(
                f"The instruction contains the control character U+{ord(ch):04X} at position {i}, which is not allowed."
            )
        if cat == "Cs":
            raise InputError(f"The instruction contains an unpaired surrogate U+{ord(ch):04X} at position {i}, which is not valid text.")
    stripped = text.strip()
    if not stripped:
        raise InputError("The instruction is empty, so type what the face should do, for example 'smile, then frown'.")
    if len(stripped) > MAX_INSTRUCTION_CHARS:
        raise InputError(
            f"The instruction is {len(stripped):,} characters long, but at most {MAX_INSTRUCTION_CHARS:,} are allowed."
        )
    return stripped


@dataclass(frozen=True)
class Segment:
    text: str
    source: str
    span: tuple[int, int]
    kind: str
    intensity: float | None
    transition_s: float | None
    hold_s: float | None
    speed: str | None
    manner: tuple[str, ...]
    side: str | None
    is_start: bool = False
    # Durations given in frames need the scene's fps; the runtime converts them.
    transition_frames: int | None = None
    hold_frames: int | None = None
    # Issue 13: the direct action the text names (None: the text encoder reads it), how often it peaks, whether it
    # repeats for as long as it is shown, and the layers shown at the same time ("smile while looking up").
    action: Action | None = None
    repeat: int = 1
    keep: bool = False
    layers: tuple["Layer", ...] = ()
    period: float | None = None  # "every 3 seconds": seconds from one repeat's peak to the next
    at_s: float | None = None  # "at 2 seconds", "from 2 to 5 seconds": when it starts on the clock
    until_s: float | None = None  # "from 2 to 5 seconds", "until 5 seconds": when it ends on the clock


@dataclass(frozen=True)
class ParsedInstruction:
    text: str
    segments: tuple[Segment, ...]
    unplaced: tuple[str, ...]
    notes: tuple[str, ...] = ()  # whole-sentence warnings (contradictions, capped counts)


# --------------------------------------------------------------------------------------------------
# Regex building blocks
# --------------------------------------------------------------------------------------------------

_B = r"(?<![\w-])"  # word start; a hyphen counts as part of a word so "wide-eyed" / "one-sided" stay intact
_E = r"(?![\w-])"   # word end


def _alt(words) -> str:
    """Alternation of literal phrases (spaces match any whitespace), longest first so phrases win."""
    parts = sorted(set(words), key=len, reverse=True)
    return "(?:" + "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in parts) + ")"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


_NUMWORD = _alt(NUMBER_WORDS)
# Digits only in ASCII; a comma followed by exactly three digits is a thousands separator ("1,500 ms").
_NUM = r"-?(?:[0-9]+(?:,[0-9]{3}(?![0-9]))+|[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)(?:e[+-]?[0-9]+)?"
_QTY_WORDS = (
    rf"(?:(?:{_NUMWORD}|an?)\s+and\s+a\s+half|half\s+an?|a\s+half|an?\s+couple(?:\s+of)?|a\s+few|{_NUMWORD}|an?)"
)
_UNIT_SECONDS = ("s", "sec", "secs", "second", "seconds")
_UNIT_MS = ("ms", "msec", "msecs", "millisecond", "milliseconds", "millisec", "millisecs")
_UNIT_MIN = ("min", "mins", "minute", "minutes")
_UNIT_HOURS = ("h", "hr", "hrs", "hour", "hours")  # read so that "over 2 hours" meets the length limit, not the encoder
_UNIT_FRAMES = ("frame", "frames", "fr", "frm")
_UNIT_ANY = _alt(_UNIT_SECONDS + _UNIT_MS + _UNIT_MIN + _UNIT_HOURS + _UNIT_FRAMES)
_UNIT_LONG = _alt(("sec", "secs", "second", "seconds", "millisecond", "milliseconds", "min", "mins",
                   "minute", "minutes", "hour", "hours", "frame", "frames"))
_DURATION = (
    rf"(?:(?P<num>{_NUM})\s*-?\s*(?P<unit>{_UNIT_ANY})|(?P<qty>{_QTY_WORDS})[\s-]+(?P<wunit>{_UNIT_LONG}))"
    rf"(?P<half>\s+and\s+a\s+half)?{_E}"
)
_APPROX = _alt(("about", "around", "roughly", "approximately", "approx", "~", "just", "only", "exactly",
                "another", "under", "less than", "more than", "at least", "at most", "nearly", "almost",
                "maybe", "some", "a good", "up to", "no more than", "no longer than", "a full"))
_OBJ = (r"(?:(?:the|this|that|his|her|their|its|your|my|our)\s+(?:face|expression|look|pose|character|avatar|head)"
        r"|it|that|this|him|her|them|me|there|still|like\s+(?:that|this))")
_HOLD_WORD = rf"(?:hold(?:s|ing)?|held|keep(?:s|ing)?\s+{_OBJ}|stay(?:s|ing)?|remain(?:s|ing)?|pause(?:s|d)?|wait(?:s|ing)?|freeze)"
_PREP_TRANSITION = r"(?:over(?:\s+the\s+course\s+of|\s+a\s+period\s+of)?|in|within|across|tak(?:e|es|ing)|take\s+it)"
_PREP_HOLD = rf"(?:{_HOLD_WORD}(?:\s+{_OBJ})?(?:\s+for)?|for|lasting|lasts?)"
_PREP_DELAY = r"(?:after)"
_TIMING_RE = _rx(
    rf"{_B}(?:(?P<prep>{_PREP_TRANSITION}|{_PREP_HOLD}|{_PREP_DELAY})\s+)?(?:{_APPROX}\s+)?{_DURATION}"
    rf"(?:\s+(?P<suffix>transition|fade|blend|ramp|change|ease|move|hold|pause|delay|wait){_E})?"
)
# A timing phrase whose number could not be read ("for banana seconds", "for a moment"): consumed and reported.
_BAD_TIMING_RE = _rx(
    rf"{_B}(?:(?:{_PREP_TRANSITION}|{_PREP_HOLD}|{_PREP_DELAY})\s+(?:[^\s,;]+\s+){{0,2}}?{_UNIT_LONG}{_E}"
    rf"|(?:for|after)\s+(?:a\s+)?(?:moment|while|beat|sec)"
    rf"|{_UNIT_LONG})(?![\w-])"
)
_HOLD_ALONE_RE = _rx(rf"{_B}{_HOLD_WORD}(?:\s+{_OBJ})?{_E}")
# A point or window on the clock: "at 2 seconds", "from 2 to 5 seconds", "between second 2 and second 5",
# "until 5 seconds". The planner waits for the start (holding the face before) and ends the part at the end.
_CLOCK_VALUE = rf"(?:second\s+(?P<{{g}}s>{_NUM}|{_NUMWORD})|(?P<{{g}}n>{_NUM}|{_NUMWORD})\s*(?:-\s*)?(?P<{{g}}u>{_UNIT_ANY}){_E})"
_CLOCK_FIRST = rf"(?:second\s+(?P<as>{_NUM}|{_NUMWORD})|(?P<an>{_NUM}|{_NUMWORD})(?:\s*(?P<au>{_UNIT_ANY}){_E})?)"
_CLOCK_RE = _rx(
    rf"{_B}(?:(?:(?:starting|beginning|start|begin)\s+)?at\s+(?:the\s+)?{_CLOCK_VALUE.replace('{g}', 'b')}(?:\s+mark)?"
    rf"|(?P<window>from|between)\s+{_CLOCK_FIRST}\s+(?:to|and|until|till|through)\s+(?:the\s+)?"
    rf"{_CLOCK_VALUE.replace('{g}', 'c')}"
    rf"|(?P<until>until|till)\s+(?:the\s+)?{_CLOCK_VALUE.replace('{g}', 'd')}(?:\s+mark)?)"
)

# Repetition: "twice", "3 times", "a few times", "again and again", "keep blinking".  Counts are limited to
# MAX_REPEATS; larger, zero, negative or unreadable counts are reported and the action is shown once (or capped).
_REPEAT_RE = _rx(
    rf"{_B}(?:(?P<freq>(?P<freq_n>once|twice|thrice|{_NUM}|{_NUMWORD})\s+(?:times?\s+)?(?:a|an|per|each|every)\s+"
    rf"(?P<freq_s>seconds?|secs?|minutes?|mins?))"
    rf"|(?P<once>once|twice|thrice)"
    rf"|(?P<count>{_NUM}|{_NUMWORD}|a\s+couple(?:\s+of)?|a\s+few|several|many|multiple|countless|a\s+(?:hundred|thousand|million|billion)"
    rf"|(?:a\s+)?[^\s,;.]+)\s*(?:x\s+)?times"
    rf"|(?P<x>[0-9]+)\s*x"
    rf"|(?P<loop>again\s+and\s+again|over\s+and\s+over(?:\s+again)?|repeatedly|time\s+after\s+time|on\s+repeat"
    rf"|non-?stop|constantly|continually|regularly)"
    rf"|(?P<sparse>periodically|occasionally|from\s+time\s+to\s+time|every\s+so\s+often"
    rf"|every\s+now\s+and\s+(?:then|again)|now\s+and\s+again)"
    rf"|(?P<every>every\s+(?:(?P<every_n>{_NUM}|{_NUMWORD}|other|few|couple\s+of|half(?:\s+an?)?)"
    rf"(?P<every_half>\s+and\s+a\s+half)?\s+)?"
    rf"(?:(?P<every_s>seconds?|secs?)|minutes?|mins?))"
    rf"|(?P<keep>keeps?(?:\s+on)?)(?=\s+[a-z]+ing{_E}))(?![\w-])"
)
_EVERY_WORDS = {"other": 2.0, "few": 3.0, "couple of": 2.0, "half": 0.5, "half a": 0.5, "half an": 0.5}
MIN_PERIOD_S = 0.2  # "blink every 0.01 seconds" is reported and shown at this rate: a blink needs that long
SPARSE_PERIOD_S = 3.0  # "from time to time", "every now and then": as "every few seconds"
_COUNT_WORDS = {"once": 1, "twice": 2, "thrice": 3, "a couple": 2, "a couple of": 2, "a few": 3, "several": 3,
                "many": KEEP_REPEATS, "multiple": 3}


def _repeat(piece: "_Piece", m: re.Match[str]) -> None:
    phrase = " ".join(m.group(0).split())
    if m.group("every") or m.group("sparse") or m.group("freq"):
        _rate(piece, m, phrase)
        return
    if piece.period is not None and piece.keep:  # an open rate so far
        if m.group("keep") or m.group("loop"):
            piece.problems.append(phrase)
            return
        piece.repeat, piece.keep = None, False  # "blink every 2 seconds 3 times": the count closes the rate
    elif piece.repeat is not None or (piece.keep and not m.group("keep")):
        piece.problems.append(phrase)  # "smile twice three times": the second count is not used
        return
    if m.group("keep"):
        piece.keep = True  # "keep blinking": a blink repeats, a smile is simply held
        return
    if m.group("loop"):
        piece.repeat, piece.keep = KEEP_REPEATS, True
        return
    raw = " ".join((m.group("once") or m.group("count") or m.group("x")).split())
    value = _COUNT_WORDS.get(raw)
    if value is None:
        value = NUMBER_WORDS.get(raw)
    if value is None:
        value = _number(raw)
    if value is None:
        value = {"a hundred": 100, "a thousand": 1000, "a million": 1e6, "a billion": 1e9, "countless": 1e9}.get(raw)
    piece.repeat, as_asked = repeat_count(value)
    if not as_asked:
        piece.problems.append(phrase)

def _rate(piece: "_Piece", m: re.Match[str], phrase: str) -> None:
    """"every 3 seconds", "twice a second", "from time to time": one peak each period, for as long as the part is
    shown. A rate beside a count keeps the count ("blink 3 times every 2 seconds", "once every 2 seconds" is the plain
    rate)."""
    if piece.period is not None:
        piece.problems.append(phrase)
        return
    if m.group("sparse"):
        period = SPARSE_PERIOD_S
    else:
        if m.group("freq"):  # "twice a second": the unit divided by the count
            raw = " ".join(m.group("freq_n").split())
            count = _COUNT_WORDS.get(raw) or NUMBER_WORDS.get(raw) or _number(raw)
            period = 1.0 / count if count and math.isfinite(count) and count > 0 else None
            unit = m.group("freq_s")
        else:
            raw = " ".join((m.group("every_n") or "1").split())
            period = _EVERY_WORDS.get(raw) or NUMBER_WORDS.get(raw) or _number(raw)
            if period is not None and m.group("every_half"):
                period += 0.5
            unit = m.group("every_s") or "min"
        if period is not None and not unit.lower().startswith("s"):
            period *= 60.0  # minutes
        if period is None or not math.isfinite(period) or period <= 0 or period > MAX_DURATION_S:
            piece.problems.append(phrase)
            return
        if period < MIN_PERIOD_S:  # faster than a blink can close and open: the fastest rate, reported
            piece.problems.append(phrase)
            period = MIN_PERIOD_S
    piece.period = float(period)
    if piece.repeat is None or piece.repeat == 1:
        piece.repeat, piece.keep = KEEP_REPEATS, True


_PCT = r"(?:%|percent|per\s*cent|pct)"
_INT_KEY = r"(?:intensity|strength|level|power|amount)"
_WITH_AT = r"(?:(?:with|at)\s+(?:an?\s+)?)?"
_NUMERIC_INTENSITY_RES = (
    _rx(rf"{_B}{_WITH_AT}{_INT_KEY}\s*(?:of|at|=|:|to)?\s*(?P<num>{_NUM})\s*(?P<pct>{_PCT})?(?![\w-])"),
    _rx(rf"(?<![\w-]){_WITH_AT}(?P<num>{_NUM})\s*(?P<pct>{_PCT})(?:\s+{_INT_KEY})?(?![\w-])"),
    _rx(rf"(?<![\w-]){_WITH_AT}(?P<num>{_NUM})\s+{_INT_KEY}{_E}"),
)

_INTENSITY_WORDS: dict[float, tuple[str, ...]] = {
    0.2: ("faint", "faintly", "a trace of", "trace of", "trace", "a hint of", "hint of", "barely", "tiny",
          "the faintest", "a tiny bit"),
    0.35: ("slight", "slightly", "a little", "a little bit", "a bit", "a tad", "subtle", "subtly",
           "a touch of", "lightly", "small"),
    0.5: ("somewhat", "moderate", "moderately", "mild", "mildly", "medium", "fairly", "kind of", "kinda",
          "sort of", "rather", "halfway", "half-way", "partway", "part way", "part of the way", "partly", "partially"),
    0.85: ("very", "really", "strong", "strongly", "big", "wide", "widely", "broad", "broadly", "deep",
           "deeply", "huge", "super", "a lot"),
    1.0: ("extremely", "extreme", "intensely", "intense", "hugely", "maximum", "max", "maximally", "full",
          "fully", "completely", "totally", "as much as possible", "all the way", "as wide as possible",
          "as far as possible", "as high as possible", "as hard as possible", "as big as possible",
          "exaggerated", "exaggeratedly", "theatrical", "theatrically", "over-the-top"),
}
_INTENSITY_VALUE = {w: v for v, ws in _INTENSITY_WORDS.items() for w in ws}
_INTENSITY_WORD_RE = _rx(
    rf"{_B}(?:(?:at|with)\s+)?(?P<w>{_alt(_INTENSITY_VALUE)}){_E}(?:\s+{_INT_KEY}{_E})?"
)
# "smile, but not too much", "open the mouth, though not all the way": a denied degree is a moderate one
_DENIED_DEGREE_INTENSITY = 0.5
_DENIED_DEGREE_RE = _rx(
    rf"{_B}(?:(?:but|though|although|yet|and)\s+)?not\s+(?:too|so|very|that|quite|overly|fully|completely"
    rf"|all\s+the\s+way|as|much)"
    rf"(?:\s+(?:much|wide|widely|big|broad|broadly|strong|strongly|far|high|hard|intense|intensely))?{_E}")
# "without a hint of fear", "no trace of a smile": intensity words after a negation describe what is not shown
_NEGATION_WORD_RE = _rx(rf"{_B}(?:without|no){_E}")
# "half-close the eyes", "half open the mouth": half before a verb of opening, closing, raising or lowering is its degree
_HALF_VERB_RE = _rx(rf"{_B}half(?:-|\s+)(?=(?:close|closes|closed|closing|shut|shuts|shutting|open|opens|opened|opening"
                    rf"|raise|raises|raised|raising|lower|lowers|lowered|lowering){_E})")
# "at half strength", "with low intensity": level words that only mean intensity next to the keyword.
_LEVEL_INTENSITY = {"half": 0.5, "low": 0.2, "weak": 0.2, "high": 0.85, "medium": 0.5}
_LEVEL_INTENSITY_RE = _rx(rf"{_B}{_WITH_AT}(?P<w>{_alt(_LEVEL_INTENSITY)})\s+{_INT_KEY}{_E}")

_SPEED_WORDS = {
    "slow": ("slowly", "gradually", "gently", "softly", "lazily", "leisurely", "progressively",
             "little by little", "bit by bit", "slow", "gradual", "gentle", "unhurriedly"),
    "fast": ("quickly", "rapidly", "fast", "briskly", "swiftly", "quick", "rapid", "speedily", "hastily"),
    "sudden": ("suddenly", "instantly", "abruptly", "immediately", "in a flash", "all at once", "at once",
               "right away", "sudden", "instant", "abrupt", "snap", "snaps", "snapping"),
}
_SPEED_OF = {w: s for s, ws in _SPEED_WORDS.items() for w in ws}
_SPEED_RE = _rx(
    rf"{_B}(?:(?:very|really|so|quite|super|extra|more|a\s+bit|a\s+little)\s+)?(?P<w>{_alt(_SPEED_OF)}){_E}"
    rf"(?:\s+(?:back\s+)?(?:in)?to{_E}|\s+back{_E})?"
)
# Manner words describing only the motion: recorded in `manner` and removed from the meaning text.
_MOTION_MANNER = ("smoothly", "steadily", "evenly", "fluidly", "jerkily", "briefly", "gracefully",
                  "naturally", "continuously", "momentarily", "repeatedly", "slowly but surely")
# Manner words that also colour the expression: recorded in `manner` AND kept in the meaning text.
_AFFECT_MANNER = ("nervously", "shyly", "hesitantly", "playfully", "sheepishly", "awkwardly", "coyly",
                  "timidly", "bashfully", "reluctantly", "mischievously", "smugly", "proudly", "confidently",
                  "anxiously", "dreamily", "flirtatiously", "sleepily", "wearily", "tiredly", "cheerfully",
                  "gleefully", "sweetly", "warmly", "coldly", "bitterly", "sadly", "happily", "angrily",
                  "sarcastically", "wistfully", "knowingly", "innocently", "seductively", "menacingly",
                  "cautiously", "tentatively", "uncertainly", "excitedly", "joyfully", "fearfully",
                  "suspiciously", "skeptically", "sceptically", "curiously", "politely", "kindly",
                  "sternly", "grimly", "dramatically", "theatrically", "softly-spoken")
_AFFECT_SET = frozenset(_AFFECT_MANNER) | {"and"}
_MOTION_MANNER_RE = _rx(rf"{_B}(?P<w>{_alt(_MOTION_MANNER)}){_E}")
_AFFECT_MANNER_RE = _rx(rf"{_B}(?P<w>{_alt(_AFFECT_MANNER)}){_E}")

_SIDE_RE = _rx(
    r"(?<![\w])(?P<w>left|right)(?![\w])(?!\s+(?:away|now|after|then|before|there|here|on|so|enough)\b)"
)

# --- sequence separators -------------------------------------------------------------------------
_ADVERBS_BEFORE_VERB = _alt(
    ("then", "also", "just", "now", "finally", "next", "again", "back") + tuple(_SPEED_OF)
    + tuple(_MOTION_MANNER) + tuple(_AFFECT_MANNER) + tuple(w for w in _INTENSITY_VALUE if " " not in w)
)
_VERB_STARTS = (
    "smile", "frown", "grin", "smirk", "pout", "scowl", "squint", "wink", "blink", "grimace", "sneer",
    "laugh", "cry", "gasp", "yawn", "glare", "stare", "sigh", "wince", "beam", "giggle", "chuckle", "weep",
    "sob", "snarl", "cringe", "flinch", "raise", "furrow", "purse", "bite", "clench", "wrinkle", "narrow",
    "widen", "tighten", "relax", "return", "go", "come", "turn", "become", "break", "burst", "look",
    "appear", "seem", "get", "grow", "switch", "change", "transform", "morph", "shift", "move", "snap",
    "melt", "fade", "ease", "end", "finish", "hold", "pause", "wait", "stay", "keep", "show", "make",
    "pull", "puff", "roll", "curl", "flare", "drop", "lift", "tilt", "lick", "stick", "nod", "shake",
    "pucker", "scrunch", "arch", "bare", "grit", "tremble", "quiver", "reset", "revert", "settle", "let",
)
# "smile and give a wink", "she smiled and gave a nod": an action given (actions.read_offered_action); not their
# progressives, which are adjectives too ("a happy and giving face")
_GIVING_VERBS = ("give", "flash", "throw", "shoot", "gave", "flashed", "threw")
_VERB_NEEDS_OBJECT = ("open", "close", "shut", "lower")
_FACE_PARTS = ("mouth", "eyes", "eye", "eyelids", "eyelid", "lids", "jaw", "lips", "lip", "brows", "brow",
               "eyebrows", "eyebrow", "cheeks", "cheek", "nose", "nostrils", "nostril", "tongue", "teeth",
               "forehead", "chin", "face", "head")
_DETERMINERS = ("the", "a", "an", "both", "one", "his", "her", "their", "its", "your", "my", "our", "this", "that")
_VERB_ING = tuple(f for v in _VERB_STARTS for f in (v + "ing", v[:-1] + "ing", v + v[-1] + "ing")
                  if not (v.endswith("e") and f == v + "ing" and not v.endswith("ee")))
# "I bit my lip and nodded", "she smiled and winked": a sentence that tells joins its actions in the past tense.
_VERB_PAST = (  # not those that are also adjectives ("a happy and relaxed face", "raised and furrowed brows")
    "smiled", "frowned", "grinned", "smirked", "pouted", "scowled", "squinted", "winked", "blinked", "grimaced",
    "sneered", "laughed", "cried", "gasped", "yawned", "glared", "stared", "sighed", "winced", "beamed", "giggled",
    "chuckled", "wept", "sobbed", "snarled", "cringed", "flinched", "looked", "nodded", "shook",
)
_VERB_START = (
    rf"(?:{_alt(_VERB_STARTS)}(?:s|es)?{_E}|{_alt(_GIVING_VERBS)}(?:s|es)?{_E}|{_alt(_VERB_ING)}{_E}|{_alt(_VERB_PAST)}{_E}"
    rf"|{_alt(_VERB_NEEDS_OBJECT)}s?\s+(?:{_alt(_DETERMINERS)}|{_alt(_FACE_PARTS)}){_E})"
)
# "A melting into B", "A that fades into B": verbs of gradual change followed by "into" start the next segment.
_INTO_STEMS = ("turn", "melt", "fade", "dissolve", "morph", "change", "shift", "blend", "transform", "slide", "drift",
               "ease", "soften", "break", "burst", "settle", "relax", "warm", "harden", "sour", "crumple", "collapse",
               "twist", "contort", "evolve", "transition", "switch", "flip", "segue")
_INTO_FORMS = tuple(f for v in _INTO_STEMS for f in (v, v + "s", v + "es", v + "d", v + "ed", v + "ing",
                                                       v[:-1] + "ing" if v.endswith("e") else v + "ing"))
_INTO_VERB = rf"{_alt(_INTO_FORMS)}(?:\s+back)?\s+(?:in)?to"
_DURATION_AHEAD = rf"(?:{_APPROX}\s+)?(?:[-0-9.,]|{_NUMWORD}{_E}|a\s+(?:couple|few){_E}|half{_E}|an?\s+(?:{_UNIT_LONG}|moment|while|beat|bit){_E})"
_SEPARATOR_RE = _rx(
    "|".join((
        r"(?P<soft>,(?![0-9])|(?<![0-9]),)",
        r"(?P<punct>;|\.(?![0-9])|(?<![0-9])\.|[!?…\n\r]|->|=>|[→⟶➔]|\s[-–—]+\s|[–—])",
        rf"(?P<seq>{_B}(?<!every\snow\s)(?<!every\snow\sand\s)(?:and\s+)?(?:then|after\s+(?:that|this|which|those|these)|afterwards?|next(?!\s+to{_E})"
        rf"|finally|lastly|eventually|subsequently|followed\s+by|before(?!\s+{_DURATION_AHEAD})){_E})",
        rf"(?P<after>{_B}(?:and\s+)?after(?!\s+{_DURATION_AHEAD}){_E})",
        rf"(?P<into>{_B}(?:(?:that|which)\s+)?(?:{_INTO_VERB}|giv(?:e|es|ing)\s+way\s+to|gave\s+way\s+to"
        rf"|becom(?:e|es|ing)|became|(?:turn|turns|turning|turned)\s+to){_E})",
        rf"(?P<and>{_B}(?<!every\snow\s)and(?=\s+(?:{_ADVERBS_BEFORE_VERB}\s+){{0,3}}{_VERB_START}))",
        rf"(?P<with>{_B}(?:while|whilst|meanwhile|at\s+the\s+same\s+time(?:\s+as)?|simultaneously(?:\s+with)?"
        rf"|as(?=\s+(?:you|he|she|they|we|i|it|the|his|her|their|your|its|my)\s)"
        rf"|with(?!\s+(?:(?:the|his|her|their|your|my|its|one|both)\s+)?(?:left|right|both|one|each|other){_E})"
        rf"(?!\s+(?:an?\s+)?(?:{_INT_KEY}|low|high|half|medium|weak|strong|great|full|maximum|max|little|[-0-9.,]"
        rf"|{_APPROX}\s|{_NUMWORD}\s+{_UNIT_LONG}|{_NUMWORD}-)))){_E}",
    ))
)

# --- filler, transitions, returns ----------------------------------------------------------------
_SUBJECT = (r"(?:him|her|them|it|me|us|he|she|they|(?:the|this|that|his|her|their|its|your|my|our)\s+"
            r"(?:face|character|model|avatar|head|person|guy|girl|man|woman|boy|expression|mouth|eyes))")
_TVERB = r"(?:go|goes|going|change|changes|changing|transform|transforms|transforming|turn|turns|turning|transition|transitions|transitioning|morph|morphs|morphing|shift|shifts|shifting|move|moves|moving|switch|switches|switching|blend|blends|blending|fade|fades|fading|slide|slides|sliding|drift|drifts|drifting|convert|converts|return|returns|returning|come|comes|coming|get|gets|getting|break|breaks|breaking|burst|bursts|bursting|slip|slips|slipping|ease|eases|easing|melt|melts|melting|settle|settles|settling|shift)"
_LEADING_FILLER_RE = _rx(
    r"^(?:"
    r"please|kindly|now|and|then|so|ok|okay|also|first|firstly|to\s+start|to\s+begin|just|simply|again|"
    r"(?:start|starting|begin|beginning|end|ending|finish|finishing)(?:\s+(?:off|up))?(?:\s+(?:with|by|on|in))?|"
    r"(?:can|could|would|will)\s+you|i\s+(?:want|need|would\s+like|'d\s+like|’d\s+like)(?:\s+" + _SUBJECT + r")?\s+to|"
    r"(?:make|have|let|get)\s+" + _SUBJECT + r"(?!(?<=head)\s+(?:fall|drop|droop|sink|sag|loll)(?:\s|$))(?:\s+to)?|"
    + _SUBJECT + r"\s+(?:should|must|will|shall|needs\s+to|has\s+to|is\s+going\s+to|to)|"
    r"(?:the\s+)?act\s+of|to|a|an|the|some|into|with|by|that|which|you|he|she|they|we|i|while|as|keeps?\s+on"
    r")(?:\s+|$)"
)
# The face as a whole ("turn the face to a smile"), not a part of it ("turn the head to the left" is an action).
_WHOLE_SUBJECT = (r"(?:him|her|them|it|me|us|he|she|they|(?:the|this|that|his|her|their|its|your|my|our)\s+"
                  r"(?:face|character|model|avatar|person|guy|girl|man|woman|boy|expression))")
_TRANSITION_VERB_FILLER_RE = _rx(
    rf"^{_TVERB}(?:\s+{_WHOLE_SUBJECT})?(?:\s+back)?\s+(?:in)?to(?:wards?)?(?:\s+|$)"
)
# "right" as an adverb of time ("smile right after blinking"), not a side.
_RIGHT_ADVERB_RE = _rx(rf"{_B}right(?=\s+(?:after|away|now|then|before|there|here|so|enough){_E})")
_TRAILING_FILLER_RE = _rx(
    r"(?:^|\s+)(?:and|then|with|at|for|over|in|to|of|a|an|the|it|please|now|just|shortly|soon|so|by|from|again"
    r"|that|which|while|as)$"
)
_RETURN_RE = _rx(
    r"(?:(?:look|be|become|stay|go|get)\s+)?"
    r"(?:relax(?:es|ing)?|reset|rest)(?:\s+(?:the|your|his|her|their|its)\s+(?:face|expression|features|muscles))?"
    r"|(?:(?:go|goes|come|comes|get|gets|return|returns|revert|reverts|fade|settle|ease|drift|slide|snap|relax|look|be|become|stay)\s+)?"
    r"(?:back\s*)?(?:(?:to|into)\s+)?(?:(?:a|the|your|his|her|their|its)\s+)?"
    r"(?:neutral|rest|resting|normal|default|blank|calm\s+neutral)(?:\s+(?:face|expression|state|pose|position|look|again))?"
    r"|(?:go|come|get)\s+back|return(?:s)?|back|go\s+back\s+to\s+(?:normal|neutral|rest)"
)
_TRANSITION_PREFIX_OK_RE = _rx(rf"(?:{_TVERB}(?:\s+{_SUBJECT})?)?")
_FROM_TO_RE = _rx(rf"{_B}from\s+(?P<x>\S.*?)\s+(?:to|into){_E}\s*(?P<y>\S.*)")
_TURN_INTO_RE = _rx(
    rf"{_B}(?:turn|turns|turning|change|changes|changing|transform|transforms|transforming|morph|morphs|morphing|convert|converts)"
    rf"\s+(?P<x>\S.*?)\s+into{_E}\s*(?P<y>\S.*)"
)
_TO_AHEAD_RE = _rx(rf"\s*(?:to|into){_E}")
_FROM_WORD_RE = _rx(rf"{_B}from{_E}")
_SCENE_AHEAD_RE = _rx(rf"\s*(?:as\s+(?:when|if|though|to)|when|whenever|because|since|so\s+as\s+to|so\s+that){_E}")
_CHAIN_TO_RE = _rx(rf"\s+to{_E}\s+")


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------

_EDGE_TRIM = " ,;:.!?…\t\n\r"


def _normalise(text: str) -> str:
    """Same-length lower-case copy: offsets found in it are offsets into `text`."""
    out = []
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(" " if ch not in "\n\r" else "\n")
            continue
        low = ch.lower()
        out.append(low if len(low) == 1 else ch)
    return "".join(out)


def _trim(work: str, start: int, end: int) -> tuple[int, int]:
    while start < end and work[start] in _EDGE_TRIM:
        start += 1
    while end > start and work[end - 1] in _EDGE_TRIM:
        end -= 1
    return start, end


@dataclass
class _Fragment:
    start: int
    end: int
    sep_before: str  # "none" | "soft" | "hard" | "after"
    sep_after: str = "none"
    explicit: bool = False  # next to "at the same time" / "simultaneously"


_RANK = {"none": 0, "soft": 1, "and": 1, "with": 1.5, "hard": 2, "into": 2, "after": 3}
_ALTERNATE_RE = _rx(rf"{_B}(?P<keep>keeps?\s+(?:on\s+)?)?alternat(?:e|es|ing|ely)\s+(?:between\s+)?")
_SAME_TIME_RE = _rx(r"at\s+the\s+same\s+time|simultaneously")
_FILLER_WORDS = frozenset(("that", "which", "then", "and", "the", "a", "an", "it", "this", "so", "just"))


_ADVERB_RE = _rx(rf"{_B}{_ADVERBS_BEFORE_VERB}{_E}")


def _has_content(text: str) -> bool:
    """True when text holds more than adverbs and filler (so "slowly break into a smile" is not cut)."""
    return any(w not in _FILLER_WORDS for w in _ADVERB_RE.sub(" ", text).split() if any(c.isalnum() for c in w))


def _split(work: str, dangling: list[str] | None = None) -> list[_Fragment]:
    """Cut at separators; runs of separators (",,, then then") collapse into one, hard beating soft.

    Kinds: "soft" (comma), "hard" (then, punctuation), "after" (X after Y), "into" (A melting into B), "and" (and
    before a facial action: the two happen together), "with" (while, as, with, at the same time: together). Word
    separators left hanging at the end ("smile while") are reported in `dangling`. A leading "before X, Y" marks its
    first fragment "lead_before" (Y plays first). Inside "alternate between A and B" the "and" does not cut."""
    frags: list[_Fragment] = []
    pos = 0
    pending_sep = "none"
    alt_end = -1
    lead_before = False
    same_time_next = False
    last_word: str | None = None
    alternations = [m.start() for m in _ALTERNATE_RE.finditer(work)]
    for m in _SEPARATOR_RE.finditer(work):
        if m.group("soft") or m.group("punct"):
            kind = "soft" if m.group("soft") else "hard"
        else:
            kind = next(k for k in ("and", "with", "into", "after") if m.group(k)) if any(
                m.group(k) for k in ("and", "with", "into", "after")) else "hard"
        if m.group("soft") and _TO_AHEAD_RE.match(work, m.end()) and _FROM_WORD_RE.search(work, pos, m.start()):
            continue  # "from a smile, to a frown" stays one transition
        if m.group("soft") and _SCENE_AHEAD_RE.match(work, m.end()):
            continue  # "squint, as when hit by light": the clause tells the scene, not a next step
        if any(pos <= a < m.start() for a in alternations):
            alt_end = len(work)
        if kind in ("and", "with") and alt_end > m.start():
            continue  # "alternate between smiling and frowning" stays one fragment
        if kind not in ("and", "with"):
            alt_end = -1
        if kind == "into" and not frags and not _has_content(work[pos:m.start()]):
            continue  # "slowly break into a smile": nothing before the verb to turn into something else
        if not frags and not work[:m.start()].strip(_EDGE_TRIM) and m.group("seq") \
                and m.group("seq").split()[-1] == "before":
            lead_before = True
        s, e = _trim(work, pos, m.start())
        if s < e:
            frags.append(_Fragment(s, e, pending_sep, explicit=same_time_next))
            pending_sep = kind
            same_time_next = False
        else:
            pending_sep = max(pending_sep, kind, key=_RANK.__getitem__)
        if _SAME_TIME_RE.match(m.group(0).strip()):
            if frags:
                frags[-1].explicit = True
            same_time_next = True
        last_word = None if (m.group("soft") or m.group("punct") or _SAME_TIME_RE.fullmatch(m.group(0).strip())) \
            else m.group(0).strip()
        pos = m.end()
    s, e = _trim(work, pos, len(work))
    if s < e:
        frags.append(_Fragment(s, e, pending_sep, explicit=same_time_next))
    elif last_word and frags and dangling is not None:
        dangling.append(last_word)
    if lead_before and frags:
        frags[0].sep_before = "lead_before"
    for a, b in zip(frags, frags[1:]):
        a.sep_after = b.sep_before
    return frags


@dataclass
class _Piece:
    """One analysed stretch of text: a candidate segment, or only modifiers."""

    start: int
    end: int
    text: str = ""
    kind: str = "expression"
    intensity: float | None = None
    transition_s: float | None = None
    hold_s: float | None = None
    transition_frames: int | None = None
    hold_frames: int | None = None
    delay_s: float | None = None
    delay_frames: int | None = None
    delay_span: tuple[int, int] | None = None  # where the "after N s" phrase was, for the neutral it may create
    speed: str | None = None
    manner: list[str] = field(default_factory=list)
    side: str | None = None
    hold_word: bool = False
    is_start: bool = False
    junk: bool = False  # leftover text with no letters ("123", "%%")
    problems: list[str] = field(default_factory=list)
    layers: list["_Piece"] = field(default_factory=list)  # simultaneous pieces ("while", "with", "and")
    explicit: bool = False  # its fragment sits next to "at the same time"
    own_end: int | None = None  # where its own words end once layers have widened the span
    join: str = ""  # "and" or "with": how a layer was joined to the piece before it
    repeat: int | None = None
    keep: bool = False  # "keep blinking", "again and again": repeat for as long as it is shown
    period: float | None = None  # "every 3 seconds": seconds from one peak to the next
    at_s: float | None = None  # "at 2 seconds": its start on the clock
    until_s: float | None = None  # "until 5 seconds": its end on the clock

    _TIMING_FIELDS = ("transition_s", "hold_s", "transition_frames", "hold_frames", "delay_s", "delay_frames")

    def has_modifiers(self) -> bool:
        return (self.intensity is not None or self.speed is not None or bool(self.manner) or self.side is not None
                or self.hold_word or any(getattr(self, f) is not None for f in self._TIMING_FIELDS)
                or self.repeat is not None or self.keep or self.period is not None or self.at_s is not None
                or self.until_s is not None)

    def only_hold(self) -> bool:
        """True when this piece says nothing but how long to stay ("hold for 2 s", "pause", "for 1 s")."""
        return (self.intensity is None and self.speed is None and not self.manner and self.side is None
                and self.transition_s is None and self.transition_frames is None
                and (self.hold_word or self.hold_s is not None or self.hold_frames is not None
                     or self.delay_s is not None or self.delay_frames is not None))


def _quantity(qty: str) -> float:
    """Value of a spelled-out quantity: "two", "a", "half a", "a couple of", "one and a half"."""
    words = qty.split()
    half = 0.5 if words[-3:] == ["and", "a", "half"] else 0.0
    if half:
        words = words[:-3]
    head = words[0] if words else "a"
    if head == "half":
        return 0.5
    if head in ("a", "an"):
        if len(words) > 1 and words[1] == "half":
            return 0.5
        if len(words) > 1 and words[1] == "couple":
            return 2.0
        if len(words) > 1 and words[1] == "few":
            return 3.0
        return 1.0 + half
    return float(NUMBER_WORDS.get(head, 1)) + half


def _number(raw: str) -> float | None:
    if re.fullmatch(r"-?[0-9]+(?:,[0-9]{3})+(?:e[+-]?[0-9]+)?", raw):
        raw = raw.replace(",", "")
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        return None


class _Consumer:
    """Marks which characters of a piece have been explained, so later patterns cannot reuse them."""

    def __init__(self, sub: str):
        self.sub = sub
        self.used = bytearray(len(sub))

    def take(self, pattern: re.Pattern[str]):
        for m in pattern.finditer(self.sub):
            if m.start() == m.end() or any(self.used[m.start():m.end()]):
                continue
            self.used[m.start():m.end()] = b"\x01" * (m.end() - m.start())
            yield m


def _set_once(piece: _Piece, name: str, value, phrase: str) -> None:
    if getattr(piece, name) is None:
        setattr(piece, name, value)
    else:
        piece.problems.append(phrase)


def _timing(piece: _Piece, m: re.Match[str], offset: int) -> None:
    phrase = m.group(0).strip()
    prep = (m.group("prep") or "").split()
    role = "hold"
    if prep and prep[0] in ("over", "in", "within", "across", "take", "takes", "taking"):
        role = "transition"
    elif prep and prep[0] == "after":
        role = "delay"
        piece.delay_span = (offset + m.start(), offset + m.end())
    if prep and re.match(_HOLD_WORD, prep[0]):
        piece.hold_word = True
    suffix = m.group("suffix")
    if suffix:  # "a 2-second transition", "a 1 s hold"
        role = "transition" if suffix in ("transition", "fade", "blend", "ramp", "change", "ease", "move") else "hold"
    if m.group("num") is not None:
        value, unit = _number(m.group("num")), m.group("unit")
    else:
        if m.group("qty").split()[0] in ("a", "an") and not prep:
            piece.problems.append(phrase)  # "a second" with no preposition is too ambiguous to use
            return
        value, unit = _quantity(m.group("qty")), m.group("wunit")
    if value is None:
        piece.problems.append(phrase)
        return
    if m.group("half"):
        value += 0.5
    if unit in _UNIT_FRAMES:
        if not math.isfinite(value) or value != int(value):
            piece.problems.append(phrase)
            return
        _set_once(piece, role + "_frames", int(value), phrase)
        return
    if unit in _UNIT_MS:
        value /= 1000.0
    elif unit in _UNIT_MIN:
        value *= 60.0
    elif unit in _UNIT_HOURS:
        value *= 3600.0
    _set_once(piece, role + "_s", value, phrase)


def _clock_value(m: re.Match[str], g: str, fallback_unit: str | None = None) -> float | None:
    """Seconds on the clock from group set `g` of _CLOCK_RE ("second 3", "3 s", "500 ms"); None when unreadable."""
    raw = m.group(f"{g}s") or m.group(f"{g}n")
    unit = None if m.group(f"{g}s") else (m.group(f"{g}u") or fallback_unit)
    value = NUMBER_WORDS.get(raw.lower()) if raw.lower() in NUMBER_WORDS else _number(raw)
    if value is None or not math.isfinite(value) or value < 0 or (unit is not None and unit in _UNIT_FRAMES):
        return None
    if unit in _UNIT_MS:
        value /= 1000.0
    elif unit in _UNIT_MIN:
        value *= 60.0
    elif unit in _UNIT_HOURS:
        value *= 3600.0
    return float(value)


def _clock(piece: _Piece, m: re.Match[str]) -> None:
    """ "at 2 seconds" / "from 2 to 5 seconds" / "until 5 seconds": where the part sits on the clock."""
    phrase = " ".join(m.group(0).split())
    if m.group("window"):
        at, until = _clock_value(m, "a", m.group("cu")), _clock_value(m, "c")
    elif m.group("until"):
        at, until = None, _clock_value(m, "d")
    else:
        at, until = _clock_value(m, "b"), None
    values = [v for v in (at, until) if v is not None]
    if (m.group("window") and len(values) < 2) or not values or any(v > MAX_DURATION_S for v in values) \
            or (at is not None and until is not None and until <= at) or piece.at_s is not None \
            or piece.until_s is not None:
        piece.problems.append(phrase)
        return
    piece.at_s, piece.until_s = at, until


def _clean(chars: str) -> str:
    """Meaning text from the unexplained characters: punctuation out, filler stripped, spaces collapsed."""
    out = []
    n = len(chars)
    for i, ch in enumerate(chars):
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        if cat.startswith("P"):
            inner = ch in "-'’" and 0 < i < n - 1 and chars[i - 1].isalnum() and chars[i + 1].isalnum()
            out.append(ch if inner else " ")
        else:
            out.append(ch)
    text = " ".join("".join(out).split())
    while True:  # terminates: every pass that changes the text makes it shorter
        before = text
        text = _LEADING_FILLER_RE.sub("", text, count=1)
        text = _TRANSITION_VERB_FILLER_RE.sub("", text, count=1)
        text = _TRAILING_FILLER_RE.sub("", text, count=1)
        text = text.strip()
        if text == before:
            break
    return text


def _analyse(work: str, start: int, end: int) -> _Piece:
    """Pull modifiers out of work[start:end] and leave the meaning text."""
    piece = _Piece(start, end)
    sub = work[start:end]
    c = _Consumer(sub)
    for pattern in _NUMERIC_INTENSITY_RES:
        for m in c.take(pattern):
            value = _number(m.group("num"))
            if value is None:
                piece.problems.append(m.group(0).strip())
                continue
            if m.groupdict().get("pct"):
                value /= 100.0  # "intensity 40" without "%" is simply out of range, not a guess at 40%
            if not 0.0 <= value <= 1.0:
                piece.problems.append(m.group(0).strip())
                value = min(1.0, max(0.0, value))
            _set_once(piece, "intensity", value, m.group(0).strip())
    for m in c.take(_CLOCK_RE):
        _clock(piece, m)
    for m in c.take(_REPEAT_RE):
        _repeat(piece, m)
    for m in c.take(_TIMING_RE):
        _timing(piece, m, start)
    for m in c.take(_BAD_TIMING_RE):
        piece.problems.append(m.group(0).strip())
    for _ in c.take(_HOLD_ALONE_RE):
        piece.hold_word = True
    manner: list[tuple[int, str]] = []
    for m in c.take(_SPEED_RE):
        word = " ".join(m.group("w").split())
        if piece.speed is None:
            piece.speed = _SPEED_OF[word]
        manner.append((m.start("w"), word))
    for m in c.take(_MOTION_MANNER_RE):
        manner.append((m.start("w"), " ".join(m.group("w").split())))
    for m in _AFFECT_MANNER_RE.finditer(sub):
        if not any(c.used[m.start():m.end()]):
            manner.append((m.start("w"), m.group("w")))
    piece.manner = [w for _, w in sorted(manner)]
    before_intensity = bytes(c.used)
    word_level: float | None = None
    for m in c.take(_LEVEL_INTENSITY_RE):
        word_level = _LEVEL_INTENSITY[m.group("w")]
    for m in c.take(_DENIED_DEGREE_RE):
        word_level = _DENIED_DEGREE_INTENSITY
    for m in c.take(_HALF_VERB_RE):
        word_level = _LEVEL_INTENSITY["half"]
    negated = next((m.start() for m in _NEGATION_WORD_RE.finditer(sub)), len(sub))
    for m in c.take(_INTENSITY_WORD_RE):
        if m.start() > negated:
            c.used[m.start():m.end()] = bytes(m.end() - m.start())
            continue
        word_level = _INTENSITY_VALUE[" ".join(m.group("w").split())]  # the last word wins: "very slight" -> slight
    if piece.intensity is None:
        piece.intensity = word_level
    # Look a little past the piece so "right" in "smile right after blinking" still sees its "after".
    sides = {m.group("w") for m in _SIDE_RE.finditer(work[start:end + 16]) if m.start() < len(sub)}
    piece.side = sides.pop() if len(sides) == 1 else None

    for m in _RIGHT_ADVERB_RE.finditer(work[start:end + 16]):
        if m.end() <= len(sub):
            c.used[m.start():m.end()] = b"\x01" * (m.end() - m.start())
    text = _clean("".join(" " if u else ch for ch, u in zip(sub, c.used)))
    if text and set(text.split()) <= set(_FACE_PARTS) | set(_DETERMINERS) | {"left", "right", "and", "side"}:
        # "wide eyes" / "big smile" with only a body part left: keep the adjective, it carries the meaning.
        text = _clean("".join(" " if u else ch for ch, u in zip(sub, before_intensity)))
    if text and set(text.split()) <= _AFFECT_SET:
        text = ""  # only manner adverbs ("shyly"): already recorded, nothing for the encoder on its own
    if text and not any(unicodedata.category(ch)[0] in "LS" for ch in text):
        piece.junk = True
    if text and _RETURN_RE.fullmatch(text):
        piece.kind, text = "return", "neutral"
    piece.text = text
    return piece


def _transition_parts(work: str, frag: _Fragment) -> list[_Piece] | None:
    """Split "from X to Y" / "turn X into Y" fragments; None when the fragment is not one."""
    sub = work[frag.start:frag.end]
    m = _FROM_TO_RE.search(sub)
    if m is not None and _CLOCK_RE.match(sub, m.start()):
        m = None  # "from 1 to 3 seconds": a window on the clock, not two faces
    if m is not None:
        prefix = _analyse(work, frag.start, frag.start + m.start())
        if not _TRANSITION_PREFIX_OK_RE.fullmatch(prefix.text) and prefix.kind != "return":
            m = None
    if m is None:
        m = _TURN_INTO_RE.search(sub)
        if m is None:
            return None
        prefix = _analyse(work, frag.start, frag.start + m.start())
        if prefix.text or re.fullmatch(_SUBJECT, m.group("x")):
            return None
    if " ".join(m.group("x").split()) == " ".join(m.group("y").split()):
        return None  # "from ear to ear", "from side to side"
    x_s, x_e = _trim(work, frag.start + m.start("x"), frag.start + m.end("x"))
    pieces = [replace(_analyse(work, x_s, x_e), is_start=True)]
    y_off = frag.start + m.start("y")
    y_sub = m.group("y")
    cuts = [0] + [p for mm in _CHAIN_TO_RE.finditer(y_sub) for p in (mm.start(), mm.end())] + [len(y_sub)]
    for a, b in zip(cuts[::2], cuts[1::2]):
        s, e = _trim(work, y_off + a, y_off + b)
        if s < e:
            pieces.append(_analyse(work, s, e))
    # Modifiers before "from" ("slowly go from ...") describe the move into the first target.
    if len(pieces) == 1:
        pieces.append(prefix)
    elif not _merge_into(pieces[1], prefix):
        pieces[0].problems.append(work[prefix.start:prefix.end].strip())
    pieces[0].problems.extend(prefix.problems)
    return pieces


_MERGE_FIELDS = ("intensity", "transition_s", "hold_s", "transition_frames", "hold_frames", "speed", "side", "repeat",
                 "period", "at_s", "until_s")


def _merge_into(target: _Piece, extra: _Piece) -> bool:
    """Copy extra's modifiers into target's empty fields; on any clash nothing moves and False is returned."""
    for name in _MERGE_FIELDS:
        a, b = getattr(target, name), getattr(extra, name)
        if a is not None and b is not None and a != b:
            return False
    for name in _MERGE_FIELDS:
        if getattr(target, name) is None:
            setattr(target, name, getattr(extra, name))
    new = [w for w in extra.manner if w not in target.manner]
    earlier = extra.start < target.start
    target.manner = new + target.manner if earlier else target.manner + new
    # Affective adverbs from a neighbouring fragment ("smile, nervously") still colour the meaning.
    affect = " ".join(w for w in new if w in _AFFECT_SET)
    if affect and target.text and target.kind == "expression":
        target.text = f"{affect} {target.text}" if earlier else f"{target.text} {affect}"
    target.hold_word = target.hold_word or extra.hold_word
    target.keep = target.keep or extra.keep  # "every now and then, blink": the rate's repeat comes with it
    for name in ("delay_s", "delay_frames"):
        if getattr(extra, name) is not None:
            setattr(target, name, (getattr(target, name) or 0) + getattr(extra, name))
            target.delay_span = (extra.start, extra.end)
    return True


def _add_hold(target: _Piece, extra: _Piece) -> bool:
    """Add a later hold/pause/delay to target's hold; seconds and frames are never mixed."""
    secs = [v for v in (extra.hold_s, extra.delay_s) if v is not None]
    frames = [v for v in (extra.hold_frames, extra.delay_frames) if v is not None]
    if secs and frames:
        return False
    if secs:
        if target.hold_frames is not None:
            return False
        target.hold_s = (target.hold_s or 0.0) + sum(secs)
    if frames:
        if target.hold_s is not None:
            return False
        target.hold_frames = (target.hold_frames or 0) + sum(frames)
    return True


def _source(text: str, piece: _Piece) -> str:
    return text[piece.start:piece.end]


def _assemble(text: str, work: str, groups: list[tuple[_Fragment, list[_Piece]]]) -> ParsedInstruction:
    unplaced: list[str] = []
    # "X after Y": Y plays first.  Only when both sides hold expressions; the gap becomes a hard separator.
    for i in range(1, len(groups)):
        frag, pieces = groups[i]
        prev_frag, prev_pieces = groups[i - 1]
        if frag.sep_before == "after" and all(p.text for p in pieces) and all(p.text for p in prev_pieces):
            groups[i - 1], groups[i] = groups[i], groups[i - 1]
            prev_frag.sep_before, frag.sep_before = frag.sep_before, prev_frag.sep_before
    # "before X, Y": Y plays first.
    if len(groups) > 1 and groups[0][0].sep_before == "lead_before":
        groups[0], groups[1] = groups[1], groups[0]
        groups[0][0].sep_before, groups[1][0].sep_before = "none", "hard"
    before_map = {"after": "hard", "into": "hard", "lead_before": "hard"}
    after_map = {"after": "hard", "into": "soft", "lead_before": "hard"}  # a lone "slowly" before "melts into" goes on
    flat: list[tuple[_Piece, str, str]] = []
    for frag, pieces in groups:
        for j, p in enumerate(pieces):
            before = frag.sep_before if j == 0 else "hard"
            after = frag.sep_after if j == len(pieces) - 1 else "hard"
            flat.append((p, before_map.get(before, before), after_map.get(after, after)))

    segs: list[_Piece] = []
    pending: _Piece | None = None

    def delay_before(p: _Piece) -> None:
        """A delay ("after 2 seconds frown") lengthens the previous face's hold, or holds neutral first."""
        if p.delay_s is None and p.delay_frames is None:
            return
        carrier = _Piece(p.start, p.start, hold_s=p.delay_s, hold_frames=p.delay_frames)
        ds, de = p.delay_span or (p.start, p.end)
        if segs and _add_hold(segs[-1], carrier):
            pass
        elif not segs and (de <= p.start or ds >= p.end or _cut_out(work, p, ds, de)):
            segs.append(_Piece(ds, de, text="neutral", kind="return", hold_s=p.delay_s, hold_frames=p.delay_frames))
        else:
            unplaced.append(text[ds:de] if p.start <= ds < de <= p.end else _source(text, p))
        p.delay_s = p.delay_frames = None

    for idx, (p, sep_before, sep_after) in enumerate(flat):
        unplaced.extend(p.problems)
        if p.text in ("not", "never", "no"):  # "smile, not": a denial of nothing
            unplaced.append(_source(text, p))
            continue
        contrast = _CONTRAST_RE.match(p.text) if p.text and sep_before == "soft" and segs else None
        if contrast is not None:  # "smile, not a grin": what is denied is held at rest in the face before it
            p.text = contrast.group("negated")
            p.join = "with"
            _add_layer(segs[-1], p, unplaced, text)
            continue
        if p.text and not p.junk and sep_before in ("and", "with") and segs and _joins(work, p, sep_before):
            if pending is not None:
                if not _merge_into(p, pending):
                    unplaced.append(_source(text, pending))
                pending = None
            p.join = sep_before
            _add_layer(segs[-1], p, unplaced, text)
            continue
        if sep_before in ("and", "with"):
            sep_before = "soft"
        if sep_after in ("and", "with"):
            sep_after = "soft"
        if p.text and not p.junk:
            if pending is not None and not p.is_start:  # a starting face is shown at once: no speed to give
                if not _merge_into(p, pending):
                    unplaced.append(_source(text, pending))
                pending = None
            delay_before(p)
            segs.append(p)
            continue
        if p.junk:
            unplaced.append(_source(text, p))
        if not p.has_modifiers():
            continue
        has_next = any(q.text and not q.junk for q, _, _ in flat[idx + 1:idx + 2])
        if p.only_hold() and (p.hold_word or p.delay_s is not None or p.delay_frames is not None or segs):
            if p.is_start and not segs:
                segs.append(replace(p, text="neutral", kind="return"))
            elif segs and _add_hold(segs[-1], p):
                pass
            elif not segs:  # "pause for 1 second, then smile": hold the neutral face first
                segs.append(_Piece(p.start, p.end, text="neutral", kind="return",
                                   hold_s=_sum_or_none(p.hold_s, p.delay_s),
                                   hold_frames=_sum_or_none(p.hold_frames, p.delay_frames)))
            else:
                unplaced.append(_source(text, p))
        elif sep_after == "soft" and has_next:
            if pending is None:
                pending = p
            elif not _merge_into(pending, p):
                unplaced.append(_source(text, p))
        elif sep_before == "soft" and segs and _merge_into(segs[-1], p):
            pass
        else:
            unplaced.append(_source(text, p))
    if pending is not None:
        unplaced.append(_source(text, pending))

    notes: list[str] = []
    segments = tuple(_segment(text, p, segs[i - 1] if i else None, unplaced, notes) for i, p in enumerate(segs))
    seen: set[str] = set()
    unique = tuple(u for u in unplaced if u and not (u in seen or seen.add(u)))
    seen_notes: set[str] = set()
    return ParsedInstruction(text=text, segments=segments, unplaced=unique,
                             notes=tuple(n for n in notes if not (n in seen_notes or seen_notes.add(n))))


def _segment(text: str, p: _Piece, previous: _Piece | None, unplaced: list[str], notes: list[str]) -> Segment:
    """The public Segment for an assembled piece: its layers read, direct actions recognised, repeats checked."""
    main, layers = build_layers(text, p, previous, unplaced, notes)
    return Segment(
        text=main.text, source=_source(text, p), span=(p.start, p.end), kind=main.kind, intensity=p.intensity,
        transition_s=p.transition_s, hold_s=p.hold_s, speed=p.speed, manner=tuple(p.manner), side=p.side,
        is_start=p.is_start, transition_frames=p.transition_frames, hold_frames=p.hold_frames,
        action=main.action, repeat=main.repeat, keep=main.keep, layers=tuple(layers), period=main.period,
        at_s=p.at_s, until_s=p.until_s,
    )


_SEQUENCE_START_RE = _rx(
    r"(?:go|goes|return|returns|turn|turns|become|becomes|switch|switches|change|changes|transform|transforms|morph"
    r"|morphs|fade|fades|melt|melts|come|comes|end|ends|finish|finishes|settle|settles|break|breaks|burst|bursts"
    r"|snap|snaps|revert|reverts|reset|resets)(?![\w-])"
)
_LAYER_TIMING = ("transition_s", "hold_s", "transition_frames", "hold_frames", "speed", "at_s", "until_s")


def _joins(work: str, p: _Piece, sep: str) -> bool:
    """Whether a piece after "and"/"while"/"with" is a layer of the previous face (not the next step)."""
    if p.kind == "return" or p.is_start:
        return sep == "with" and p.kind != "return"
    return sep == "with" or not _SEQUENCE_START_RE.match(work, p.start)


MAX_LAYERS = 5  # simultaneous parts beyond the main one; more are reported, not shown
# "smile, not a grin", "frown, but not angrily": a denial after a comma belongs to the face before it (a denied
# degree, "but not too much", is taken earlier as an intensity: _DENIED_DEGREE_RE)
_CONTRAST_RE = _rx(r"^(?:(?:but|and|yet)\s+)?(?P<negated>(?:not|never)\s+\S.*)$")


def _add_layer(main: _Piece, layer: _Piece, unplaced: list[str], text: str) -> None:
    """Attach a simultaneous piece to `main`: its timing and speed belong to the segment, the rest stays its own."""
    if len(main.layers) >= MAX_LAYERS:
        unplaced.append(_source(text, layer))
        return
    for name in _LAYER_TIMING:
        value = getattr(layer, name)
        if value is None:
            continue
        if getattr(main, name) is None:
            setattr(main, name, value)
        elif getattr(main, name) != value:
            unplaced.append(_source(text, layer))
        setattr(layer, name, None)
    main.manner.extend(w for w in layer.manner if w not in main.manner)
    main.hold_word = main.hold_word or layer.hold_word
    main.layers.append(layer)
    if main.own_end is None:
        main.own_end = main.end
    main.end = max(main.end, layer.end)


def _cut_out(work: str, p: _Piece, ds: int, de: int) -> bool:
    """Shrink p's span to leave out [ds, de) when that phrase sits at either end; False if it is inside."""
    if not work[p.start:ds].strip(_EDGE_TRIM):
        s, e = _trim(work, de, p.end)
    elif not work[de:p.end].strip(_EDGE_TRIM):
        s, e = _trim(work, p.start, ds)
    else:
        return False
    if s >= e:
        return False
    p.start, p.end = s, e
    return True


def _sum_or_none(a, b):
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


# "the nodding (or napping) grandmother": a bracketed alternative or gloss is an aside, not a second thing to show
_BRACKET_RE = re.compile(r"[()\[\]]")
_ASIDE_RE = _rx(r"[(\[]\s*(?:or|i\.?\s?e\.?|e\.?\s?g\.?|aka|that\s+is|namely|sic)(?![\w-])[^()\[\]]*[)\]]")


# "a weak, watery smile": a comma between two adjectives of one facial noun does not end a step
_DETERMINER = r"(?:a|an|the|his|her|their|my|your|one's)"
_NOUN = rf"(?:{_alt(SHOWN_NOUNS)})s?"
_LISTED_ADJECTIVE_RE = _rx(rf"{_B}{_DETERMINER}\s+(?!{_NOUN}{_E})[a-z][a-z-]*(?P<comma>\s*,)\s*(?!{_DETERMINER}\s)"
                           rf"[a-z][a-z-]*\s+{_NOUN}{_E}")


def _join_listed_adjectives(work: str) -> str:
    for m in _LISTED_ADJECTIVE_RE.finditer(work):
        work = work[:m.end("comma") - 1] + " " + work[m.end("comma"):]
    return work


# "nod, as in agreement": an example after a comma illustrates the step before it; it is not a step of its own
_EXAMPLE_RE = _rx(r",\s*as\s+in\s+[^,;:.!?()\[\]]*[^,;:.!?()\[\]\s]")
# "lower or bend the head", "bow or nod the head", "smile or frown": two actions or two looks offered; the first is read
_CHOICE_RE = _rx(r"(?<![\w'-])(?P<first>[a-z]+)(?P<choice>\s+or\s+(?P<second>[a-z]+))(?![\w'-])(?P<rest>[a-z' ]*)")
_CHOICE_OBJECT_WORDS = 4
# "nod two or three times", "blink once or twice": a range of counts or lengths; the first is read
_RANGE_RE = _rx(rf"(?<![\w'-])(?P<first>once|twice|thrice|{_NUM}|{_NUMWORD})"
                rf"(?P<choice>\s+or\s+(?P<second>twice|thrice|{_NUM}|{_NUMWORD}))(?![\w'-])")
# "look left or right", "lower the head or upper body": a direct action, then "or" and a few more words to the end
# of its clause offer another object or direction; the action before "or" is read
_OR_STOPS = r"(?:and|then|while|with|as|before|after|until|but|not|never|[a-z]+ly)"
_OR_TAIL_RE = _rx(rf"(?P<choice>\s+or\s+(?P<second>(?!{_OR_STOPS}{_E})[a-z'-]+(?:\s+(?!{_OR_STOPS}{_E})[a-z'-]+){{0,2}}))"
                  rf"(?=\s*$|\s*[,;:.!?]|\s+{_OR_STOPS}{_E})")
_CLAUSE_END_RE = _rx(r".*[,;:.!?]")  # brackets are blanked by then
_ACTION_WORDS = 6


def _blank(work: str, start: int, end: int) -> str:
    return work[:start] + " " * (end - start) + work[end:]


def _offered_choice(m: re.Match[str]) -> bool:
    """Whether `m` offers two looks ("smile or frown") or two verbs that name a direct action with the same few words
    after them ("lower or bend the head")."""
    if m.group("first") in SHOWN_NOUNS and m.group("second") in SHOWN_NOUNS:
        return True
    words = m.group("rest").split()
    return any(read_action(" ".join([m.group("first"), *words[:n]])) is not None
               and read_action(" ".join([m.group("second"), *words[:n]])) is not None
               for n in range(min(len(words), _CHOICE_OBJECT_WORDS) + 1))


def _action_before(work: str, end: int) -> tuple[int, int] | None:
    """The span of the longest run of words (at most _ACTION_WORDS) ending at `end` within its clause that names a
    direct action, or None; a run after a determiner is a noun ("have a squint or strabismus"), not an action."""
    clause = _CLAUSE_END_RE.match(work, 0, end)
    start = clause.end() if clause else 0
    words = list(re.finditer(r"[^\s]+", work[start:end]))
    for first in range(max(0, len(words) - _ACTION_WORDS), len(words)):
        if first and re.fullmatch(_DETERMINER, words[first - 1].group()):
            continue
        if read_action(work[start + words[first].start():end]) is not None:
            return start + words[first].start(), end
    return None


def _blank_asides(work: str, text: str) -> tuple[str, list[str]]:
    """`work` with each aside blanked (same length, so offsets hold) and a note naming each: a bracketed alternative
    or gloss, an example after "as in", and the second of two actions or looks offered as a choice."""
    notes = []
    for m in _ASIDE_RE.finditer(work):
        notes.append(f"{text[m.start():m.end()]!r} is an aside in brackets, so it was left out.")
        work = _blank(work, m.start(), m.end())
    work = _BRACKET_RE.sub(" ", work)  # "bend (the head or upper body)": what is left in brackets is read as written
    for m in _EXAMPLE_RE.finditer(work):
        aside = text[m.start():m.end()].lstrip(", ")
        notes.append(f"{aside!r} gives an example, so it was left out.")
        work = _blank(work, m.start(), m.end())
    for m in _CHOICE_RE.finditer(work):
        if _offered_choice(m):
            first, second = text[m.start("first"):m.end("first")], text[m.start("second"):m.end("second")]
            notes.append(f"{first!r} or {second!r} offers a choice; the first, {first!r}, was read.")
            work = _blank(work, m.start("choice"), m.end("choice"))
    for m in _RANGE_RE.finditer(work):
        first = text[m.start("first"):m.end("first")]
        notes.append(f"{text[m.start():m.end()]!r} gives a range; the first, {first!r}, was read.")
        work = _blank(work, m.start("choice"), m.end("choice"))
    for m in _OR_TAIL_RE.finditer(work):
        action = _action_before(work, m.start())
        if action is not None and read_action(work[action[0]:m.end()]) is None:
            first = " ".join(work[action[0]:action[1]].split())
            notes.append(f"{first!r} or {text[m.start('second'):m.end('second')]!r} offers a choice; "
                         f"the first, {first!r}, was read.")
            work = _blank(work, m.start("choice"), m.end("choice"))
    return work, notes


def _parse(text: str) -> ParsedInstruction:
    work, asides = _blank_asides(_join_listed_adjectives(_normalise(text)), text)
    groups = []
    dangling: list[str] = []
    for frag in _split(work, dangling):
        pieces = (_alternation_parts(work, frag) or _transition_parts(work, frag)
                  or [_analyse(work, frag.start, frag.end)])
        for piece in pieces:
            piece.explicit = frag.explicit
        groups.append((frag, pieces))
    parsed = _assemble(text, work, groups)
    if dangling:
        parsed = replace(parsed, unplaced=parsed.unplaced + tuple(d for d in dangling if d not in parsed.unplaced))
    if asides:
        parsed = replace(parsed, notes=tuple(asides) + parsed.notes)
    guessed = [part.text for seg in parsed.segments for part in (seg, *seg.layers) if not _LATIN_RE.search(part.text)]
    if guessed:
        parsed = replace(parsed, notes=parsed.notes + tuple(
            f"{part!r} has no English word in it, so the face shown for it is only the model's nearest guess."
            for part in dict.fromkeys(guessed)))
    return parsed


# the vocabulary, the grammar and the text encoder's training are English: emoji or another script is read blind
_LATIN_RE = re.compile(r"[A-Za-z]")


ALTERNATION_CYCLES = 2
_ALTERNATION_BODY_RE = _rx(rf"(?:keeps?\s+(?:on\s+)?)?alternat(?:e|es|ing|ely)\s+(?:between\s+)?(?P<a>\S.*?)\s+"
                           rf"(?:and|with)\s+(?P<b>\S.*)")


def _alternation_parts(work: str, frag: _Fragment) -> list[_Piece] | None:
    """"(keep) alternate between A and B (N times, every N seconds)": A, B, A, B...; None when the fragment is not
    one."""
    sub = work[frag.start:frag.end]
    head = _ALTERNATE_RE.match(sub)
    if head is None:
        return None
    m = _ALTERNATION_BODY_RE.match(sub)
    if m is None:  # "alternate between smiling": one face, the word reported
        piece = _analyse(work, frag.start + head.end(), frag.end)
        piece.problems.append(sub[:head.end()].strip())
        return [piece]
    a = _analyse(work, *_trim(work, frag.start + m.start("a"), frag.start + m.end("a")))
    b = _analyse(work, *_trim(work, frag.start + m.start("b"), frag.start + m.end("b")))
    period = b.period or a.period
    open_rate = period is not None and (a.keep or b.keep)  # the rate's open repeat is not a count of cycles
    cycles = (None if open_rate else a.repeat or b.repeat) or ALTERNATION_CYCLES
    a.repeat = b.repeat = a.period = b.period = None
    if a.keep or b.keep or head.group("keep"):  # "keep alternating": more than the default two cycles
        cycles, a.keep, b.keep = max(cycles, 3), False, False
    at, until = b.at_s if b.at_s is not None else a.at_s, b.until_s if b.until_s is not None else a.until_s
    a.at_s = a.until_s = b.at_s = b.until_s = None  # a place on the clock is the whole alternation's
    if at is not None and until is not None and b.transition_s is None and b.hold_s is None:
        b.hold_s, at_only = until - at, True  # "... from 2 to 8 seconds": the window shared like a closing time
    else:
        at_only = False
    if period is None:
        _share_trailing_time(a, b, 2 * cycles)
    else:
        cycles = _step_every(a, b, period, None if open_rate else cycles) or cycles
    pieces = []
    for _ in range(cycles):
        pieces += [replace(a, problems=[]), replace(b, problems=[])]
    pieces[0].problems, pieces[1].problems = a.problems, b.problems
    pieces[0].at_s = at
    if not at_only:
        pieces[-1].until_s = until
    return pieces


def _step_every(a: _Piece, b: _Piece, period: float, cycles: int | None) -> int | None:
    """"alternate between smiling and frowning every 2 seconds": each step lasts the period (arriving in at most the
    default half second). A time closing the alternation gives the number of steps when no count did."""
    given = [v for v in (b.transition_s, b.hold_s) if v is not None]
    if given and not b.hold_word and cycles is None:
        cycles = max(1, min(MAX_REPEATS, round(sum(given) / (2 * period))))
    arrive = min(0.5, period / 2)
    for piece in (a, b):
        piece.transition_s, piece.hold_s = arrive, period - arrive
    return cycles


def _share_trailing_time(a: _Piece, b: _Piece, steps: int) -> None:
    """"alternate between smiling and frowning for 6 seconds": a time closing the alternation is the whole
    alternation's, shared by its steps (each arriving in at most the default half second), not every frown's."""
    given = [v for v in (b.transition_s, b.hold_s) if v is not None]
    if not given or b.hold_word or a.transition_s is not None or a.hold_s is not None:
        return
    each = sum(given) / steps
    arrive = min(0.5, each / 2)
    for piece in (a, b):
        piece.transition_s, piece.hold_s = arrive, each - arrive


def parse_instruction(text: str) -> ParsedInstruction:
    """Split an instruction into timeline segments; never raises for a str (bad parts land in `unplaced`)."""
    if not isinstance(text, str):
        raise TypeError(f"parse_instruction expects a str, got {type(text).__name__}")
    try:
        return _parse(text)
    except Exception:  # pragma: no cover - a safety net; the property tests call _parse directly
        stripped = text.strip()
        return ParsedInstruction(text=text, segments=(), unplaced=(stripped,) if stripped else ())
