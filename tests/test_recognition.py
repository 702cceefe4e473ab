"""Text that names nothing facial (gibberish, off-topic English) is read with a warning naming it; real instructions,
rare words and the knowledge base's own phrases never are (model_runtime.recognition)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_runtime import Runtime
from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.errors import InputError
from model_runtime.knowledge import all_concepts

DATA = Path(__file__).parent / "data"
FLAG = "names a facial expression or action"


@pytest.fixture(scope="module", params=["baseline", "i2fet"])
def rt(request, cache_root):
    return Runtime.load(model=request.param, device="cpu")


def _flags(anim: Animation) -> list[str]:
    return [w for w in anim.warnings if FLAG in w]


@pytest.mark.parametrize("text, fragments", [
    ("asdf qwerty", ["asdf qwerty"]),  # no word MiniLM knows as a word
    ("blorp the flibber", ["blorp the flibber"]),  # "the" is a word, but names nothing
    ("the quarterly tax report", ["quarterly tax report"]),  # English words, far from every expression
    ("xyzzy then plugh", ["xyzzy", "plugh"]),
    ("please file my taxes, then smile", ["file my taxes"]),
    ("give me the quarterly report", ["give me the quarterly report"]),  # a light verb of the knowledge base
    ("make a sandwich", ["make a sandwich"]),  # ("give a wink", "make a frown") vouches for nothing alone
])
def test_gibberish_and_off_topic_text_is_read_with_a_warning_naming_it(rt, text, fragments):
    anim = rt.generate(text)
    flags = _flags(anim)
    assert len(flags) == len(fragments), anim.warnings
    labels = {label for seg in anim.segments for label in seg["label"].split(" + ")}
    for fragment, flag in zip(fragments, flags):
        assert f"Nothing in {fragment!r}" in flag
        assert any(f"read as {label!r}" in flag for label in labels), (flag, labels)
    assert anim.num_frames > 1 and np.isfinite(anim.frames).all()  # still a reading: the nearest guess


@pytest.mark.parametrize("text", ["smile while blorping", "he had to take the rebuke with a smile on his face"])
def test_a_part_naming_nothing_beside_one_that_does_is_left_out_with_a_warning(rt, text):
    anim = rt.generate(text)
    flags = _flags(anim)
    assert len(flags) == 1 and "left out" in flags[0], anim.warnings
    peaks = dict(zip(anim.channels, anim.frames.max(axis=0)))
    assert min(peaks["mouthSmileLeft"], peaks["mouthSmileRight"]) >= 0.3  # the smile, not a guess fighting it
    assert max(peaks["mouthFrownLeft"], peaks["mouthFrownRight"], peaks["browDownLeft"]) < 0.1


@pytest.mark.parametrize("text", [
    "look crestfallen", "lour", "make a moue", "look aghast", "rictus", "blep", "tut-tut", "the avatar displays perplexed",
    # expression words the knowledge base does not list, which MiniLM splits into pieces as it splits made-up words
    # (glee ##ful): the dictionary and the similarity floor keep them unflagged
    "gleeful", "sullen", "smitten", "flustered", "nostalgic", "dreamy", "bored", "a mischievous look",
    "make a face", "give a wink", "start crying", "look riled",  # light verbs with a word that names something
])
def test_rare_literary_and_unlisted_expression_words_are_not_flagged(rt, text):
    assert _flags(rt.generate(text)) == []


def _generate_each(rt, texts):
    """Animations of the texts the runtime accepts (a few language cases are meant to be refused)."""
    out = {}
    for text in texts:
        try:
            out[text] = rt.generate(text)
        except InputError:
            pass
    return out


def test_no_instruction_of_the_language_sets_is_flagged(rt):
    texts = [json.loads(line)["text"] for name in ("language_heldout.jsonl", "language_dev.jsonl")
             for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    anims = _generate_each(rt, texts)
    assert len(anims) >= len(texts) - 5
    assert {t: _flags(a) for t, a in anims.items() if _flags(a)} == {}


def test_no_knowledge_base_phrase_typed_as_an_instruction_is_flagged(rt):
    phrases = sorted({p for c in all_concepts() for p in (c.label, *c.phrases)})
    anims = _generate_each(rt, phrases)
    assert len(anims) == len(phrases)
    assert {t: _flags(a) for t, a in anims.items() if _flags(a)} == {}


def test_real_emotion_words_the_project_did_not_write_are_rarely_flagged(rt):
    """WordNet 3.0's emotion adjectives (tests/data/wordnet_emotions), typed alone: rare and old words are real words,
    so at most 4 of 155 may be reported as naming nothing (a size-50 dictionary flagged 25)."""
    words = [json.loads(line)["word"] for line in
             (DATA / "wordnet_emotions" / "items.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    anims = _generate_each(rt, words)
    assert len(anims) == len(words) == 155
    flagged = sorted(t for t, a in anims.items() if _flags(a))
    assert len(flagged) <= 4, flagged


def test_the_floor_is_the_loneliest_knowledge_base_phrase(rt):
    """The floor, worked out here from a fresh encoding: the lowest cosine of any phrase to its nearest other one."""
    index = rt.generator.phrase_index
    phrases = [p for c in index.concepts for p in dict.fromkeys((c.label, *c.phrases))]
    vectors = rt.encoder.encode(phrases).pooled.float().cpu().numpy().astype(np.float64)
    nearest = []
    for i, v in enumerate(vectors):
        others = np.delete(vectors, i, axis=0)
        nearest.append(float((others @ v).max()))
    assert rt.recognition.floor == pytest.approx(min(nearest), abs=1e-4)
    assert 0.0 < rt.recognition.floor < 1.0


def test_the_encoder_knows_whole_words_not_their_pieces(rt):
    assert all(rt.encoder.knows_word(w) for w in ("smile", "tax", "report", "the"))
    assert not any(rt.encoder.knows_word(w) for w in ("blorp", "qwerty", "xyzzy", "flibber", "gleeful"))


def test_the_dictionary_lists_real_words_and_no_made_up_ones():
    from model_runtime.recognition import english_words

    assert {"gleeful", "smitten", "crestfallen", "tax", "quarterly"} <= english_words()
    assert not {"blorp", "flibber", "xyzzy", "plugh", "asdf"} & english_words()


def test_cli_warns_on_stderr_and_still_writes_the_animation(tmp_path, capsys):
    out = tmp_path / "a.json"
    code = main(["generate", "blorp the flibber", "-o", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert f"i2fet: warning: Nothing in 'blorp the flibber' {FLAG}" in stderr
    assert Animation.load(out).warnings == [line.split("i2fet: warning: ", 1)[1] for line in stderr.splitlines()
                                            if "i2fet: warning: " in line]


UNSHOWN = "Nothing was shown for"


@pytest.mark.parametrize("text", ["look ireful", "look goggle-eyed", "look snide", "look riant", "smile",
                                  "barely smile", "look blank", "a deadpan face", "slightly frown"])
def test_a_recognised_text_that_shows_nothing_says_so_and_a_neutral_reading_does_not(rt, text):
    anim = rt.generate(text)
    seg = anim.segments[0]  # one segment: a return to rest for "look blank"
    blank = seg["kind"] != "return" and anim.frames[seg["apex_frame"]].max() < 0.1 and seg["label"] != "neutral"
    assert any(UNSHOWN in w and repr(text) in w for w in anim.warnings) == blank, (anim.warnings, seg)


def test_the_learned_model_warns_of_a_word_it_shows_nothing_for(cache_root):
    from dataclasses import replace

    runtime = Runtime.load(model="i2fet", device="cpu")
    shown = runtime.generate("look goggle-eyed")
    assert shown.frames.max() >= 0.1 and not any(UNSHOWN in w for w in shown.warnings)  # the memory's fallback
    memory = runtime.generator.model.memory
    # a memory that finds no AU in this novel word and has no fallback (no AU can pass a threshold of 1): its key is
    # empty, and the part must be reported, not rested silently
    memory.cfg = replace(memory.cfg, fallback=0.0, present=1.0)
    anim = runtime.generate("look goggle-eyed")
    assert anim.frames.max() < 0.1
    assert sum(UNSHOWN in w for w in anim.warnings) == 1 and not _flags(anim)


def test_a_key_shows_nothing_only_below_a_visible_weight_at_the_intensity_asked():
    from model_runtime.generators.base import key_expression
    from model_runtime.knowledge import get_concept
    from model_runtime.layers import _shows_nothing
    from model_runtime.timeline import TimedSegment

    smile, neutral = get_concept("smile"), get_concept("neutral")
    def seg(intensity=None):
        return TimedSegment(text="x", kind="expression", start_s=0.0, transition_s=0.5, hold_s=0.5,
                            intensity=intensity, side=None, speed=None, manner=(), is_start=False)
    faint = np.zeros(52, np.float32)
    faint[0] = 0.3
    assert _shows_nothing(key_expression(np.zeros(52, np.float32), smile, seg(), 1.0, 1.0))
    assert not _shows_nothing(key_expression(np.zeros(52, np.float32), neutral, seg(), 1.0, 1.0))
    assert not _shows_nothing(key_expression(faint, smile, seg(), 1.0, 1.0))
    assert not _shows_nothing(key_expression(faint, smile, seg(0.1), 1.0, 1.0))  # "barely": faint as asked
    assert _shows_nothing(key_expression(faint * 0.2, smile, seg(), 1.0, 1.0))
