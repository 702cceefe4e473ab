"""Direct facial actions: plain words for single channels ("open the mouth wide", "look up", "nod") read into ARKit
weights and head rotation without the text encoder, so every generator honours them exactly.

An action is recognised only when the whole meaning text of a layer is one of the phrasings below (after the parser
has taken out intensity, side and timing words); anything else goes to the text encoder as before. Weights are given
at full strength and scaled by the degree the words asked for ("slightly" 0.35, "wide" 0.85, "as wide as possible"
1.0), or by the action's own default. Sides are the character's own, as everywhere in the project.

Head rotation is (yaw, pitch, roll) in radians: yaw > 0 turns the face towards the character's own left, pitch > 0
tilts the head back (chin up), roll > 0 tilts the head towards the character's own left shoulder. Amplitudes follow
observed conversational head gestures: nods of about 10-20 degrees and turns/tilts of 15-25 degrees (Hadar et al.
1983, "Head movement correlates of juncture and stress at sentence level", Language and Speech 26(2)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from .expression_space import CHANNEL_INDEX, channel_side
from .number_words import NUMBER_WORDS
from .recognition import FUNCTION_WORDS, LIGHT_VERBS

HeadPose = tuple[float, float, float]


@dataclass(frozen=True)
class Action:
    """One recognised direct action.

    `channels` are full-strength weights, `zero` channels this action holds shut (closing the eyes holds eyeWide at
    0), `head` a head pose target, `poses` extra head poses played in turn (a head shake swings both ways), `pulse`
    True when the action comes back by itself after its peak (blink, wink, nod), `timing` the (onset, hold,
    release) seconds of one peak, `opposes` the names of actions it contradicts when asked for at the same time."""

    name: str
    channels: dict[str, float] = field(default_factory=dict)
    zero: tuple[str, ...] = ()
    head: HeadPose | None = None
    poses: tuple[HeadPose, ...] = ()
    pulse: bool = False
    timing: tuple[float, float, float] = (0.3, 0.25, 0.3)
    default_degree: float = 0.75
    opposes: tuple[str, ...] = ()
    kind: str = "expression"  # "return" for "look straight ahead"-like resets of one part


# Voluntary blinks close in ~70-100 ms and reopen in ~150-200 ms (Kwon et al. 2013, "High-speed camera
# characterization of voluntary eye blinking kinematics", J R Soc Interface 10(85)).
BLINK_TIMING = (0.08, 0.05, 0.17)
WINK_TIMING = (0.12, 0.12, 0.2)
NOD_TIMING = (0.22, 0.06, 0.28)
SHAKE_TIMING = (0.22, 0.04, 0.26)

NOD_PITCH = 0.26
SHAKE_YAW = 0.26
TURN_YAW = 0.4
TILT_ROLL = 0.26
BOW_PITCH = 0.3

_BOTH = ("Left", "Right")


def _pair(base: str, weight: float = 1.0) -> dict[str, float]:
    return {base + s: weight for s in _BOTH}


def _sided(channels: dict[str, float], side: str | None) -> dict[str, float]:
    """Keep one side's channels (the other side's dropped, unsided ones at half strength) when a side is given."""
    if side not in ("left", "right"):
        return dict(channels)
    out = {}
    for name, w in channels.items():
        s = channel_side(name)
        if s == side:
            out[name] = w
        elif s == "both":
            out[name] = w * 0.5
    return out


_D = r"(?:(?:the|your|his|her|their|its|my|both|one|one's|ones's|an?|of)\s+)*"
_EYES = r"(?:eyes?|eyelids?|lids?)"
_BROWS = r"(?:eye)?brows?"
_LIPS = r"lips?"
_MOUTH = r"(?:mouth|jaw|lips)"
_SIDEW = r"(?:\s+(?:on\s+)?(?:the\s+)?(?:left|right)(?:\s+(?:side|one|eye|cheek|corner))?)?"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:{pattern})$")


_GAZE_VERB = (r"(?:look(?:s|ing|ed)?|glanc(?:e|es|ing|ed)|gaz(?:e|es|ing|ed)|peer(?:s|ing)?|star(?:e|es|ing)|"
              r"turn(?:s|ing)?\s+(?:the\s+|your\s+)?eyes|eyes|cast(?:s|ing)?\s+(?:the\s+|your\s+)?eyes|"
              r"shift(?:s|ing)?\s+(?:the\s+|your\s+)?(?:eyes|gaze)|gaze)")
_DIR_WORD = r"(?:up(?:wards?)?|down(?:wards?)?|left|right|to|the|and|side|at|ceiling|sky|floor|ground|feet|heaven|heavens|upward|downward|over|off|toward|towards)"
_GAZE_RE = re.compile(rf"^{_GAZE_VERB}\s+(?P<dirs>(?:{_DIR_WORD}\s*)+)$")
_STRAIGHT_RE = _rx(rf"{_GAZE_VERB}\s+(?:straight(?:\s+ahead)?|ahead|forward|at\s+the\s+(?:camera|viewer)|center|centre)")


def _gaze(dirs: str, degree_default: float = 0.8) -> Action | None:
    words = set(dirs.split())
    up = bool(words & {"up", "upward", "upwards", "ceiling", "sky", "heaven", "heavens"})
    down = bool(words & {"down", "downward", "downwards", "floor", "ground", "feet"})
    left, right = "left" in words, "right" in words
    if (up and down) or (left and right) or not (up or down or left or right):
        return None
    ch: dict[str, float] = {}
    parts = []
    if up:
        ch.update(_pair("eyeLookUp"))
        parts.append("up")
    if down:
        ch.update(_pair("eyeLookDown"))
        parts.append("down")
    if left:  # towards the character's own left: the left eye turns out, the right eye in
        ch.update({"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0})
        parts.append("left")
    if right:
        ch.update({"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0})
        parts.append("right")
    name = "look " + " ".join(parts)
    opposite = {"up": "down", "down": "up", "left": "right", "right": "left"}
    opposes = tuple(f"look {opposite[p]}" for p in parts)
    return Action(name, ch, default_degree=degree_default, opposes=opposes)


# (pattern, builder(side) -> Action); tried in order, the first whole-text match wins.
def _table():
    lips_open = r"(?:open|part|drop|lower|opens|opening|parting|dropping)"
    t = [
        (rf"(?:{lips_open}\s+{_D}(?:mouth|jaw)|{_D}(?:mouth|jaw)\s+(?:open|opens|wide\s+open|agape|dropped|drops|falls\s+open)"
         rf"|open-mouthed(?:\s+(?:stare|look|face|expression))?|gape|gaping|agape|(?:with\s+)?{_D}jaw\s+dropped"
         rf"|(?:with\s+)?{_D}mouth\s+open|open\s+wide|drop\s+{_D}jaw|jaw\s+drop)",
         lambda s: Action("open mouth", {"jawOpen": 1.0}, zero=("mouthClose", "mouthPressLeft", "mouthPressRight"),
                          default_degree=0.55, opposes=("close mouth",))),
        (rf"(?:part|parting)\s+{_D}lips",
         lambda s: Action("part lips", {"jawOpen": 0.3, "mouthLowerDownLeft": 0.5, "mouthLowerDownRight": 0.5},
                          default_degree=0.75, opposes=("close mouth",))),
        (rf"(?:close|shut|closes|closing|shutting)\s+{_D}(?:mouth|jaw|lips)|{_D}mouth\s+(?:closed|shut)",
         lambda s: Action("close mouth", {}, zero=("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight",
                                                     "mouthFunnel", "tongueOut"), opposes=("open mouth", "part lips"))),
        (rf"(?:(?:move|moves|moving|shift|shifts|shifting|slide|slides|sliding|push|pushes|pushing|swing|swings)\s+)?"
         rf"{_D}jaw\s+(?:to\s+)?(?:{_D})?(?:left|right)(?:\s+side)?",
         lambda s: Action(f"jaw {s or 'left'}", {f"jaw{(s or 'left').capitalize()}": 1.0}, default_degree=0.6,
                          opposes=(f"jaw {'right' if s == 'left' else 'left'}",))),
        (rf"(?:(?:push|pushes|pushing|thrust|thrusts|thrusting|jut|juts|jutting|stick|sticks|sticking|move|moves)\s+"
         rf"(?:out\s+)?{_D}(?:jaw|chin)\s+(?:forward|forwards|out)|{_D}jaw\s+(?:forward|forwards|out)|underbite)",
         lambda s: Action("jaw forward", {"jawForward": 1.0}, default_degree=0.65)),
        (rf"(?:(?:purse|purses|pursing|pucker|puckers|puckering)(?:\s+up)?\s+{_D}{_LIPS}|pucker(?:\s+up)?|"
         rf"(?:with\s+)?pursed\s+lips|kissy\s+(?:face|lips)|"
         rf"(?:contract|contracts|draw|draws|gather|gathers|shape|shapes|form|forms)\s+{_D}{_LIPS}\s+into\s+{_D}"
         rf"(?:rounded|round|circular)\s+shape|rounded\s+lips)",
         lambda s: Action("pucker lips", {"mouthPucker": 1.0}, default_degree=0.75)),
        (rf"(?:funnel|funnels|funnelling|funneling|round|rounds|rounding)\s+{_D}{_LIPS}|"
         rf"(?:make|makes|making|form|forms|forming)\s+{_D}o(?:\s+shape)?(?:\s+with\s+{_D}(?:lips|mouth))?|"
         rf"o-shaped\s+(?:mouth|lips)",
         lambda s: Action("funnel lips", {"mouthFunnel": 1.0, "jawOpen": 0.15}, default_degree=0.75)),
        (rf"(?:press|presses|pressing|compress|compresses|tighten|tightens|tightening)\s+{_D}{_LIPS}(?:\s+together)?|"
         rf"(?:with\s+)?{_D}lips\s+(?:pressed|tight)(?:\s+together)?|tight-lipped|thin-lipped",
         lambda s: Action("press lips", _sided(_pair("mouthPress"), s), zero=("jawOpen",), default_degree=0.75)),
        (rf"(?:roll|rolls|rolling|suck|sucks|sucking|tuck|tucks|tucking)\s+(?:in\s+)?{_D}{_LIPS}(?:\s+(?:in|inward|inwards))?",
         lambda s: Action("roll lips in", {"mouthRollLower": 1.0, "mouthRollUpper": 1.0}, default_degree=0.75)),
        (rf"(?:bite|bites|biting|nibble|nibbles)\s+{_D}(?:lower\s+|bottom\s+)?lip",
         lambda s: Action("bite lower lip", {"mouthRollLower": 1.0, "mouthShrugUpper": 0.2}, default_degree=0.7)),
        (rf"(?:(?:puff|puffs|puffing|blow|blows|blowing|fill|fills)\s+(?:out\s+|up\s+)?{_D}cheeks?(?:\s+(?:out|up|with\s+air))?|"
         rf"{_D}cheeks\s+(?:puffed|full\s+of\s+air)|puffed\s+cheeks)",
         lambda s: Action("puff cheeks", {"cheekPuff": 1.0, "mouthClose": 0.2}, zero=("jawOpen",),
                          default_degree=0.75)),
        (rf"(?:raise|raises|raising|lift|lifts|lifting)\s+{_D}inner\s+{_BROWS}|{_D}inner\s+{_BROWS}\s+up",
         lambda s: Action("raise inner brows", {"browInnerUp": 1.0}, default_degree=0.75,
                          opposes=("lower brows",))),
        (rf"(?:raise|raises|raising|lift|lifts|lifting)\s+{_D}outer\s+{_BROWS}|{_D}outer\s+{_BROWS}\s+up",
         lambda s: Action("raise outer brows", _sided(_pair("browOuterUp"), s), default_degree=0.75,
                          opposes=("lower brows",))),
        (rf"(?:raise|raises|raising|lift|lifts|lifting|arch|arches|arching)\s+{_D}{_BROWS}|{_D}{_BROWS}\s+(?:go\s+|goes\s+|going\s+)?up|"
         rf"(?:with\s+)?raised\s+{_BROWS}",
         lambda s: Action("raise brows", _sided({"browInnerUp": 0.8, **_pair("browOuterUp")}, s),
                          default_degree=0.75, opposes=("lower brows",))),
        (rf"(?:lower|lowers|lowering|furrow|furrows|furrowing|knit|knits|knitting|drop|drops|draw|draws)\s+{_D}(?:inner\s+)?{_BROWS}(?:\s+together)?|"
         rf"{_D}{_BROWS}\s+(?:down|together|lowered|furrowed)|(?:with\s+)?furrowed\s+{_BROWS}",
         lambda s: Action("lower brows", _sided(_pair("browDown"), s), default_degree=0.75,
                          opposes=("raise brows", "raise inner brows", "raise outer brows"))),
        (rf"(?:squint|squints|squinting|squinted)(?:\s+{_D}{_EYES})?|(?:narrow|narrows|narrowing|screw|screws)\s+(?:up\s+)?{_D}{_EYES}|"
         rf"narrow-eyed|(?:with\s+)?narrowed\s+eyes",
         lambda s: Action("squint", _sided({**_pair("eyeSquint"), **_pair("cheekSquint", 0.3)}, s),
                          zero=("eyeWideLeft", "eyeWideRight"), default_degree=0.75, opposes=("widen eyes",))),
        (rf"(?:widen|widens|widening)\s+{_D}{_EYES}|open\s+{_D}eyes(?:\s+wide)?|{_D}eyes\s+(?:wide|wide\s+open)|"
         rf"wide-eyed|(?:with\s+)?wide\s+eyes",
         lambda s: Action("widen eyes", _sided(_pair("eyeWide"), s),
                          zero=("eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight"),
                          default_degree=0.75, opposes=("close eyes", "squint"))),
        (rf"(?:close|closes|closing|closed|shut|shuts|shutting)\s+one\s+eye",
         lambda s: Action("close one eye", {f"eyeBlink{(s or 'left').capitalize()}": 1.0},
                          zero=(f"eyeWide{(s or 'left').capitalize()}",), default_degree=1.0)),
        (rf"(?:close|closes|closing|shut|shuts|shutting)\s+{_D}{_EYES}|(?:with\s+)?{_D}eyes\s+(?:closed|shut)|"
         rf"closed\s+eyes|eyes-closed",
         lambda s: Action("close eyes", _sided(_pair("eyeBlink"), s), zero=("eyeWideLeft", "eyeWideRight"),
                          default_degree=1.0, opposes=("widen eyes",))),
        (rf"blink(?:s|ing|ed)?(?:\s+{_D}{_EYES})?",
         lambda s: Action("blink", _sided(_pair("eyeBlink"), s), zero=("eyeWideLeft", "eyeWideRight"),
                          pulse=True, timing=BLINK_TIMING, default_degree=1.0)),
        (rf"wink(?:s|ing|ed)?(?:\s+(?:with\s+)?{_D}{_EYES})?",
         lambda s: Action("wink", {f"eyeBlink{(s or 'left').capitalize()}": 1.0,
                                   f"cheekSquint{(s or 'left').capitalize()}": 0.3},
                          pulse=True, timing=WINK_TIMING, default_degree=1.0)),
        (rf"(?:cross|crosses|crossing|crossed)\s+{_D}eyes|(?:go|goes|going|be|is|are)?\s*cross-eyed",
         lambda s: Action("cross eyes", {"eyeLookInLeft": 1.0, "eyeLookInRight": 1.0}, default_degree=0.8,
                          opposes=("look left", "look right"))),
        (rf"(?:roll|rolls|rolling)\s+{_D}eyes|eye\s+roll",
         lambda s: Action("roll eyes", {**_pair("eyeLookUp"), "eyeLookOutLeft": 0.3, "eyeLookInRight": 0.3},
                          default_degree=0.85)),
        (rf"(?:(?:stick|sticks|sticking|poke|pokes|poking|put|puts|show|shows)\s+(?:out\s+)?{_D}tongue(?:\s+out)?|"
         rf"(?:with\s+)?{_D}tongue\s+(?:out|sticking\s+out)|blep)",
         lambda s: Action("tongue out", {"tongueOut": 1.0, "jawOpen": 0.25}, default_degree=0.85)),
        (rf"(?:sneer|sneers|sneering|sneered)|(?:curl|curls|curling)\s+{_D}(?:upper\s+)?lip|{_D}(?:upper\s+)?lip\s+curl",
         lambda s: Action("sneer", {f"noseSneer{(s or 'left').capitalize()}": 1.0,
                                    f"mouthUpperUp{(s or 'left').capitalize()}": 0.8}, default_degree=0.7)),
        (rf"(?:show|shows|showing|make|makes|flash)?\s*{_D}dimples?(?:\s+{_D}(?:cheeks?|corners?))?|dimple\s+{_D}cheeks?",
         lambda s: Action("dimple", _sided(_pair("mouthDimple"), s), default_degree=0.75)),
        (rf"(?:wrinkle|wrinkles|wrinkling|scrunch|scrunches|scrunching|crinkle|crinkles|crinkling)\s+(?:up\s+)?{_D}nose|"
         rf"(?:flare|flares|flaring)\s+{_D}nostrils?",
         lambda s: Action("wrinkle nose", _sided(_pair("noseSneer"), s), default_degree=0.75)),
        (rf"(?:raise|raises|raising|lift|lifts|lifting)\s+{_D}upper\s+lip",
         lambda s: Action("raise upper lip", _sided(_pair("mouthUpperUp"), s), default_degree=0.75)),
        (rf"(?:lower|lowers|lowering|drop|drops|pull\s+down)\s+{_D}(?:lower|bottom)\s+lip(?:\s+down)?|show\s+{_D}bottom\s+teeth",
         lambda s: Action("lower lower lip", _sided(_pair("mouthLowerDown"), s), default_degree=0.75)),
        (rf"(?:pull|pulls|pulling|turn|turns|draw|draws)\s+{_D}(?:(?:mouth\s+)?corners?(?:\s+of\s+{_D}(?:mouth|lips))?|mouth)\s+down(?:wards?)?|"
         rf"{_D}(?:mouth\s+)?corners?\s+(?:of\s+{_D}mouth\s+)?down(?:wards?)?",
         lambda s: Action("mouth corners down", _sided(_pair("mouthFrown"), s), default_degree=0.75)),
        (rf"(?:pull|pulls|pulling|turn|turns|draw|draws)\s+{_D}(?:(?:mouth\s+)?corners?(?:\s+of\s+{_D}(?:mouth|lips))?|mouth)\s+up(?:wards?)?",
         lambda s: Action("mouth corners up", _sided(_pair("mouthSmile"), s), default_degree=0.75)),
        (rf"(?:stretch|stretches|stretching|pull|pulls|pulling|spread|spreads)\s+{_D}(?:lips|mouth)(?:\s+(?:sideways|wide|back|apart|out))?",
         lambda s: Action("stretch lips", _sided(_pair("mouthStretch"), s), default_degree=0.75)),
        (rf"(?:(?:move|moves|moving|shift|shifts|shifting|pull|pulls|slide|slides|twist|twists)\s+)?{_D}mouth\s+(?:to\s+)?{_D}(?:left|right)(?:\s+side)?",
         lambda s: Action(f"mouth {s or 'left'}", {f"mouth{(s or 'left').capitalize()}": 1.0}, default_degree=0.7,
                          opposes=(f"mouth {'right' if s == 'left' else 'left'}",))),
        (rf"(?:raise|raises|raising|push|pushes|pushing)\s+(?:up\s+)?{_D}chin(?:\s+up)?",
         lambda s: Action("raise chin", {"mouthShrugLower": 1.0, "mouthShrugUpper": 0.4}, default_degree=0.7)),
        # ---- head ----
        (rf"nod(?:s|ding|ded)?(?:\s+{_D}head)?(?:\s+(?:yes|in\s+agreement))?",
         lambda s: Action("nod", head=(0.0, -NOD_PITCH, 0.0), pulse=True, timing=NOD_TIMING, default_degree=1.0)),
        (rf"(?:shake|shakes|shaking|shook)\s+{_D}head(?:\s+(?:no|in\s+disagreement))?|head\s+shake",
         lambda s: Action("shake head", head=(SHAKE_YAW, 0.0, 0.0), poses=((-SHAKE_YAW, 0.0, 0.0),), pulse=True,
                          timing=SHAKE_TIMING, default_degree=1.0)),
        (rf"(?:tilt|tilts|tilting|cock|cocks|cocking|lean|leans)\s+{_D}head(?:\s+(?:to\s+)?{_D}(?:left|right)(?:\s+side)?)?(?:\s+to\s+one\s+side)?",
         lambda s: Action(f"tilt head {s or 'left'}", head=(0.0, 0.0, TILT_ROLL if s != "right" else -TILT_ROLL),
                          default_degree=1.0)),
        (rf"(?:tilt|tilts|tilting|throw|throws|lean|leans|tip|tips)\s+{_D}head\s+back(?:wards?)?|(?:lift|lifts|raise|raises)\s+{_D}head",
         lambda s: Action("head back", head=(0.0, BOW_PITCH, 0.0), default_degree=1.0, opposes=("bow head",))),
        (rf"(?:bow|bows|bowing|bend|bends|bending|bent|hang|hangs|hanging|lower|lowers|lowering|drop|drops|dropping|tilt|tilts|tip|tips)\s+{_D}head(?:\s+(?:down|forward|forwards))?"
         rf"|(?:let|lets|letting)\s+{_D}head\s+(?:fall|drop|droop|sink|sag|hang|loll)(?:\s+(?:down|forward|forwards))?"
         rf"|{_D}head\s+(?:falls|fell|falling|drops|dropped|dropping|droops|drooped|drooping|sinks|sank|sinking|sags|sagged"
         rf"|sagging|lolls|lolled|lolling)(?:\s+(?:down|forward|forwards))?",
         lambda s: Action("bow head", head=(0.0, -BOW_PITCH, 0.0), default_degree=1.0, opposes=("head back",))),
        (rf"(?:turn|turns|turning|rotate|rotates|swivel|swivels)\s+{_D}head\s+(?:to\s+)?{_D}(?:left|right)(?:\s+side)?",
         lambda s: Action(f"turn head {s or 'left'}", head=(TURN_YAW if s != "right" else -TURN_YAW, 0.0, 0.0),
                          default_degree=1.0)),
        (rf"(?:look|looks|looking|turn|turns|turning|glance|glances)\s+away(?:\s+(?:to\s+)?{_D}(?:left|right)(?:\s+side)?)?"
         rf"|avert\s+{_D}(?:gaze|eyes)",
         lambda s: Action("look away", {"eyeLookOutLeft": 0.4, "eyeLookInRight": 0.4} if s != "right" else
                          {"eyeLookInLeft": 0.4, "eyeLookOutRight": 0.4},
                          head=(TURN_YAW if s != "right" else -TURN_YAW, 0.0, 0.0), default_degree=1.0)),
    ]
    return [(_rx(p), b) for p, b in t]


_TABLE = _table()


@lru_cache(maxsize=4096)
def read_action(text: str, side: str | None = None) -> Action | None:
    """The direct action the whole text names, or None when it is not one (it then goes to the text encoder)."""
    text = " ".join(text.lower().replace("’", "'").split())
    if not text:
        return None
    if _STRAIGHT_RE.match(text):
        return Action("look ahead", {}, zero=tuple(n for n in CHANNEL_INDEX if n.startswith("eyeLook")),
                      default_degree=1.0)
    m = _GAZE_RE.match(text)
    if m is not None:
        return _gaze(m.group("dirs"))
    chosen = side if side in ("left", "right") else _text_side(text)
    bare = " ".join(_SIDE_PHRASE_RE.sub(" ", text).split())  # "close the left eye" -> "close the eye"
    for candidate in dict.fromkeys((text, bare)):
        for pattern, build in _TABLE:
            if pattern.match(candidate):
                return build(chosen)
    return None


# A sentence about an action rather than an order ("The teacher nodded when the student gave the right answer", "She
# winked at him", "The old man was nodding in his chair"): a subject of a few words before it, an auxiliary or a told
# verb form, and a complement after it that starts with one of COMPLEMENT_STARTS or a manner adverb ("approvingly").
# An order keeps its words ("look down on someone" is an idiom) unless what follows is a scene clause (SCENE_STARTS:
# "squint, as when hit by light"). Two more shapes tell of an action: a means ("express agreement by nodding") and a
# participle before a noun ("the nodding grandmother"). A negation anywhere leaves the text to the encoder.
SUBJECT_WORDS = 4
_AUXILIARIES = frozenset("was is were are am be been keeps kept began begins started starts".split())
_NEGATIONS = frozenset("not never no nor don't doesn't didn't won't can't cannot without refuse refuses refused "
                       "avoid avoids avoided stop stops stopped".split())
_FACE_PART_NOUNS = frozenset("face lip lips mouth jaw chin cheek cheeks nose brow brows eyebrow eyebrows eye eyes "
                              "lid lids eyelid eyelids head tongue corner corners".split())
_THE_FACE = frozenset("character avatar model person expression".split())
_PRONOUNS = frozenset("i you he she we they it someone somebody everyone everybody".split())
_RELATIVES = frozenset("who that which".split())
_THIRD_PERSON = frozenset("he she it someone somebody everyone everybody".split()) | _RELATIVES
_DETERMINERS = frozenset("the a an my his her their our your its this that".split())
INSTRUCTION_VERBS = LIGHT_VERBS | frozenset("express expresses portray portrays convey conveys display displays act "
                                             "acts do does try tries want wants please now just switch".split())
_FRAME_WORDS = FUNCTION_WORDS | INSTRUCTION_VERBS | _THE_FACE  # words that frame an expression, not describe it
SCENE_STARTS = frozenset("when whenever as because since so if while after before through during".split())
COMPLEMENT_STARTS = frozenset("at to in on into onto toward towards with from for when whenever as because while "
                              "through during since so if like by his her their my your our its him them me us one's "
                              "after before".split())


@lru_cache(maxsize=4096)
def read_told_action(text: str, side: str | None = None) -> tuple[Action, str, str] | None:
    """(action, the words that name it, the rest) when `text` tells of a direct action with a subject, an auxiliary
    or a complement around it, or names it with adjectives ("a polite nod": the rest is the adjectives); None when it
    does not (or is an action as it stands: `read_action`)."""
    words = text.lower().replace("’", "'").replace(",", " ").split()
    if len(words) < 2 or _NEGATIONS.intersection(words):
        return None
    found = _by_doing(words, side) or _attributive(words, side)
    if found is not None:
        return found
    for start in range(min(SUBJECT_WORDS, len(words) - 1) + 1):
        if not _is_subject(words[:start]):
            continue
        rest = words[start:]
        while len(rest) > 1 and rest[0] in _AUXILIARIES:
            rest = rest[1:]
        # "she winks", "a man who nods", "winks at him" (the parser drops a leading pronoun): orders use the bare verb
        third = rest[0].endswith("s") and rest[0] not in _FACE_PART_NOUNS and (
            not start or words[start - 1] in _THIRD_PERSON)
        told = len(rest) < len(words) - start or _is_told(rest[0]) or third
        if start and len(rest) == 1 and not told:  # "a cold unfriendly nod": the words before are the action's
            action = read_action(rest[0], side)
            if action is not None:
                return action, rest[0], " ".join(words[:start])
        if start and not told:
            continue  # "show sneering": an order, not a subject and its verb
        for end in range(len(rest), 0, -1):
            complement = rest[end:]
            if complement and not (complement[0] in SCENE_STARTS or told and (
                    complement[0] in COMPLEMENT_STARTS or is_manner_adverb(complement[0]))):
                continue  # an order keeps its words ("look down on someone"), but not a scene clause
            for verb in _present_forms(rest[0]):
                core = " ".join((verb, *rest[1:end]))
                action = read_action(core, side)
                if action is not None:
                    return action, core, " ".join(complement)
    return None


# "give a nod", "show a squint", "put on a sneer", "throw him a wink", "the avatar displays a squint": a verb that
# gives or shows, then the action named as a noun or a progressive, perhaps with adjectives ("give a polite nod").
OFFER_VERBS = frozenset("give gives gave giving do does did make makes made show shows showed display displays "
                        "displayed express expresses expressed portray portrays portrayed convey conveys conveyed pull "
                        "pulls pulled flash flashes flashed wear wears wore throw throws threw offer offers offered "
                        "shoot shoots shot".split())
_PUT_ON = frozenset("put puts".split())
_OBJECT_PRONOUNS = frozenset("him her them me us you everyone everybody someone somebody".split())


class Offered(NamedTuple):
    """An action given or shown: the words that name it, its adjectives, what follows it, and how many were given
    ("give two nods": 2; None when no count is written)."""

    action: Action
    core: str
    adjectives: str
    after: str
    count: int | None


_GIVEN_COUNTS = {**NUMBER_WORDS, "couple": 2, "few": 3, "several": 3}  # after its article: "a couple of nods"


@lru_cache(maxsize=4096)
def read_offered_action(text: str, side: str | None = None) -> Offered | None:
    """The action `text` gives or shows ("give a quick nod", "show sneering", "throw a wink at the camera", "give two
    nods") or the face does ("the character nods"); None otherwise, or when the action alone is the whole text
    (`read_action`). What follows must start as a complement, a scene or a manner does ("at the camera", "of
    approval", "when ...", "sadly"): an order keeps its words."""
    words = text.lower().replace("’", "'").replace(",", " ").split()
    if _NEGATIONS.intersection(words):
        return None
    subject = 0
    while len(words) > 1 + (words[0] in _DETERMINERS) and (
            words[0] in _DETERMINERS or words[0] in _THE_FACE or words[0] in _PRONOUNS):
        words, subject = words[1:], subject + 1  # "the avatar displays", "she gives", "the character nods"
    if subject and words[0] not in OFFER_VERBS and (action := read_action(" ".join(words), side)) is not None:
        return Offered(action, " ".join(words), "", "", None)
    put_on = len(words) > 2 and words[0] in _PUT_ON and words[1] == "on"
    if len(words) < 2 or (words[0] not in OFFER_VERBS and not put_on):
        return None
    rest = words[2:] if put_on else words[1:]
    if len(rest) > 1 and rest[0] in _OBJECT_PRONOUNS:
        rest = rest[1:]
    while len(rest) > 1 and rest[0] in _DETERMINERS:
        rest = rest[1:]
    count = None
    if len(rest) > 1 and (rest[0] in _GIVEN_COUNTS or rest[0].isascii() and rest[0].isdigit()):  # "two nods"
        count = _GIVEN_COUNTS[rest[0]] if rest[0] in _GIVEN_COUNTS else int(rest[0]) if len(rest[0]) <= 7 else 10 ** 7
        rest = rest[2:] if rest[1] == "of" and len(rest) > 2 else rest[1:]
    for start in range(len(rest)):
        adjectives = rest[:start]
        if not all(is_content_word(w) and not is_manner_adverb(w) and w not in _RELATIVES for w in adjectives):
            break
        for end in range(len(rest), start, -1):
            after = rest[end:]
            if after and after[0] not in COMPLEMENT_STARTS and after[0] not in SCENE_STARTS and after[0] != "of" \
                    and not is_manner_adverb(after[0]):
                continue
            for form in _base_forms(rest[start]):
                core = " ".join((form, *rest[start + 1:end]))
                action = read_action(core, side)
                if action is not None:
                    return Offered(action, core, " ".join(adjectives), " ".join(after), count)
    return None


def _base_forms(word: str) -> tuple[str, ...]:
    """The word and, for a progressive ("sneering", "nodding", "squinting"), the verbs it may come from."""
    if not word.endswith("ing") or len(word) < 6:
        return (word,)
    stem = word[:-3]
    return tuple(dict.fromkeys((word, stem, stem + "e", stem[:-1] if stem[-1] == stem[-2] else stem)))


def _by_doing(words: list[str], side: str | None) -> tuple[Action, str, str] | None:
    """"express or signify by nodding", "agree by nodding the head": the action after "by" is what is done; the words
    before it are its purpose (the rest)."""
    if "by" not in words[1:-1]:
        return None
    at = words.index("by", 1)
    done = words[at + 1:]
    if not done[0].endswith("ing"):
        return None  # "startled by a wink": the cause, not the action
    action = read_action(" ".join(done), side)
    if action is None:
        return None
    return action, " ".join(done), " ".join(words[:at])


def _attributive(words: list[str], side: str | None) -> tuple[Action, str, str] | None:
    """"the nodding grandmother in her chair", "a winking man": an action's participle before a noun is what that
    one does; the noun and what follows are the rest."""
    body = words[1:] if words[0] in _DETERMINERS else words
    if len(body) < 2 or not body[0].endswith("ing") or body[1] in COMPLEMENT_STARTS or is_manner_adverb(body[1]) \
            or not is_content_word(body[1]):
        return None  # "a gaping face" is a look, not someone gaping
    action = read_action(body[0], side)
    return None if action is None else (action, body[0], " ".join(body[1:]))


_LY_ADJECTIVES = frozenset("only early daily likely friendly unfriendly lovely silly ugly lonely elderly curly holy "
                           "jolly surly burly sickly deadly lively manly womanly costly smelly wily oily".split())


def is_manner_adverb(word: str) -> bool:
    """"nodded approvingly", "shook his head doubtfully": an -ly word after the action says how it was done."""
    return len(word) > 4 and word.endswith("ly") and word not in _LY_ADJECTIVES


def adverb_base(word: str) -> str:
    """The adjective an -ly adverb is made from ("approvingly" approving, "miserably" miserable), else the word."""
    if not is_manner_adverb(word):
        return word
    return word[:-1] + "e" if word.endswith("bly") else word[:-3] + "y" if word.endswith("ily") else word[:-2]


def _is_subject(words: list[str]) -> bool:
    """Nothing, a pronoun, or a noun phrase ("the old man", "Gerald") with no function word, manner adverb ("coldly":
    it says how, not who), instruction verb ("show", "express", "put"), face part ("lip pucker": the part is the
    verb's object) or name of the face itself in it ("the character: gaping" is the parser's own template; the
    shipped model was trained on its reading)."""
    if not words or (len(words) == 1 and words[0] in _PRONOUNS):
        return True
    relative = len(words) > 1 and words[-1] in _RELATIVES  # "a person who winks": the clause tells what one does
    if relative:
        words = words[:-1]
    body = words[1:] if words[0] in _DETERMINERS else words
    fits = (lambda w: w not in FUNCTION_WORDS and w not in INSTRUCTION_VERBS) if relative else is_content_word
    return bool(body) and all(fits(w) and not is_manner_adverb(w) for w in body)


def content_text(text: str) -> str:
    """The words of a segment text that say what the face shows, with instruction and template words ("convey",
    "the avatar displays", "put on ... face") left out; the text itself when nothing is left. The AU memory reads it
    so that a known phrase in a new frame is not taken for a new concept."""
    kept = [w for w in text.lower().replace(",", " ").replace(":", " ").split()
            if w not in _FRAME_WORDS and w != "face"]
    return " ".join(kept) or text


def is_content_word(word: str) -> bool:
    """A word that says something of its own beside an expression: not a function word, an instruction verb, a face
    part or a name of the face itself."""
    return word not in _FRAME_WORDS and word not in _FACE_PART_NOUNS


def _is_told(word: str) -> bool:
    """A verb form that tells rather than orders: a past tense or a progressive ("nodded", "nodding"); an order uses
    the bare verb. (A third person "nods" is not told apart from a plural noun: "eyes closed".)"""
    if "-" in word:
        return False  # "open-mouthed": an adjective
    return word in _IRREGULAR_PAST or word.endswith(("ed", "ing"))


_IRREGULAR_PAST = {"stuck": "stick", "shook": "shake", "bit": "bite", "threw": "throw", "drew": "draw",
                   "blew": "blow", "hung": "hang", "swung": "swing", "held": "hold", "made": "make"}


def _present_forms(word: str) -> tuple[str, ...]:
    """The word and, for a past tense the table does not list ("opened", "closed", "puffed"), the forms it may
    come from: a sentence tells of what happened, an order names what to do. (The table lists third persons.)"""
    if word in _IRREGULAR_PAST:
        return word, _IRREGULAR_PAST[word]
    if not word.endswith("ed") or len(word) < 5:
        return (word,)
    return tuple(dict.fromkeys((word, word[:-2], word[:-1], word[:-3])))


_SIDE_PHRASE_RE = re.compile(r"(?:\b(?:on|with|of|to)\s+)?(?:\bthe\s+)?\b(?:left|right)\b(?:\s+side\b)?(?:\s+of\s+the\s+face\b)?")


def _text_side(text: str) -> str | None:
    words = set(text.split())
    if "left" in words and "right" not in words:
        return "left"
    if "right" in words and "left" not in words:
        return "right"
    return None


def action_weights(action: Action, degree: float | None) -> dict[str, float]:
    """Channel -> weight at the asked degree (or the action's default), clipped to [0, 1]."""
    d = action.default_degree if degree is None else float(degree)
    return {name: min(1.0, max(0.0, w * d)) for name, w in action.channels.items()}


def action_head(action: Action, degree: float | None) -> HeadPose | None:
    if action.head is None:
        return None
    d = 1.0 if degree is None else min(1.0, max(0.0, float(degree)) / 0.75)
    return tuple(v * d for v in action.head)  # type: ignore[return-value]
