"""Tests for the instruction-structure parser (model_runtime.instructions)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_runtime.errors import InputError
from model_runtime.instructions import (
    MAX_INSTRUCTION_CHARS,
    ParsedInstruction,
    Segment,
    _parse,
    parse_instruction,
    validate_instruction,
)

settings.register_profile(
    "instructions", max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = settings.get_profile("instructions")

# Each case: instruction, then one dict per expected segment.  Only the keys given are checked; "text"
# is compared exactly.  Keys not given are not asserted (except that the segment count must match).
CASES = [
    ("slowly break into a shy smile, then look shocked",
     [dict(text="shy smile", speed="slow", manner=("slowly",)), dict(text="look shocked", speed=None)]),
    ("Transform this face from disgust to sadness",
     [dict(text="disgust", is_start=True), dict(text="sadness", is_start=False)]),
    ("smile slightly for 2 seconds then relax",
     [dict(text="smile", intensity=0.35, hold_s=2.0), dict(text="neutral", kind="return")]),
    ("smile and then frown", [dict(text="smile"), dict(text="frown")]),
    ("a sad and tired look", [dict(text="sad and tired look", kind="expression")]),
    ("a happy and relaxed face", [dict(text="happy and relaxed face")]),
    # Issue 13: "and" between two facial actions shows them together (one segment, the second a layer).
    ("smile and look surprised", [dict(text="smile", layer_texts=("look surprised",))]),
    ("smile and then look surprised", [dict(text="smile"), dict(text="look surprised")]),
    ("smile before frowning", [dict(text="smile"), dict(text="frowning")]),
    ("smile after frowning", [dict(text="frowning"), dict(text="smile")]),
    ("look happy, followed by sad", [dict(text="look happy"), dict(text="sad")]),
    ("smile; afterwards frown", [dict(text="smile"), dict(text="frown")]),
    ("smile, after that frown", [dict(text="smile"), dict(text="frown")]),
    ("smile, next frown, finally laugh", [dict(text="smile"), dict(text="frown"), dict(text="laugh")]),
    ("smile; frown. laugh!", [dict(text="smile"), dict(text="frown"), dict(text="laugh")]),
    ("smile -> frown → cry", [dict(text="smile"), dict(text="frown"), dict(text="cry")]),
    ("smile,,, then then frown", [dict(text="smile"), dict(text="frown")]),
    ("SMILE THEN FROWN", [dict(text="smile"), dict(text="frown")]),
    ("go from happy to sad", [dict(text="happy", is_start=True), dict(text="sad")]),
    ("change this face from anger to joy over 2 seconds",
     [dict(text="anger", is_start=True, transition_s=None), dict(text="joy", transition_s=2.0)]),
    ("change from a slight smile to a big frown",
     [dict(text="smile", is_start=True, intensity=0.35), dict(text="frown", intensity=0.85)]),
    ("slowly change this face from a smile to a frown",
     [dict(text="smile", is_start=True, speed=None), dict(text="frown", speed="slow")]),
    ("turn the frown into a smile", [dict(text="frown", is_start=True), dict(text="smile")]),
    ("from happy to sad to angry",
     [dict(text="happy", is_start=True), dict(text="sad", is_start=False), dict(text="angry")]),
    ("from neutral to a smile", [dict(text="neutral", kind="return", is_start=True), dict(text="smile")]),
    ("smile from ear to ear", [dict(text="smile from ear to ear", is_start=False)]),
    ("a faint smile", [dict(text="smile", intensity=0.2)]),
    ("a trace of a smile", [dict(text="smile", intensity=0.2)]),
    ("smile a little", [dict(text="smile", intensity=0.35)]),
    ("a bit sad", [dict(text="sad", intensity=0.35)]),
    ("a subtle frown", [dict(text="frown", intensity=0.35)]),
    ("somewhat sad", [dict(text="sad", intensity=0.5)]),
    ("mildly annoyed", [dict(text="annoyed", intensity=0.5)]),
    ("very happy", [dict(text="happy", intensity=0.85)]),
    ("a big smile", [dict(text="smile", intensity=0.85)]),
    ("extremely angry", [dict(text="angry", intensity=1.0)]),
    ("maximum surprise", [dict(text="surprise", intensity=1.0)]),
    ("wide eyes", [dict(text="wide eyes", intensity=0.85)]),
    ("smile at 40%", [dict(text="smile", intensity=0.4)]),
    ("smile 40 percent", [dict(text="smile", intensity=0.4)]),
    ("intensity 0.4 smile", [dict(text="smile", intensity=0.4)]),
    ("frown with 0.4 intensity", [dict(text="frown", intensity=0.4)]),
    ("happy at full intensity", [dict(text="happy", intensity=1.0)]),
    ("smile at half strength", [dict(text="smile", intensity=0.5)]),
    ("smile over 2 seconds", [dict(text="smile", transition_s=2.0, hold_s=None)]),
    ("smile for 1.5 s", [dict(text="smile", hold_s=1.5, transition_s=None)]),
    ("smile in 500 ms", [dict(text="smile", transition_s=0.5)]),
    ("smile within 1s", [dict(text="smile", transition_s=1.0)]),
    ("frown over 1,5 s", [dict(text="frown", transition_s=1.5)]),
    ("frown over 1 minute", [dict(text="frown", transition_s=60.0)]),
    ("smile for two seconds", [dict(text="smile", hold_s=2.0)]),
    ("smile for a second", [dict(text="smile", hold_s=1.0)]),
    ("frown for half a second", [dict(text="frown", hold_s=0.5)]),
    ("smile for a couple of seconds", [dict(text="smile", hold_s=2.0)]),
    ("sad for a second and a half", [dict(text="sad", hold_s=1.5)]),
    ("smile 2s", [dict(text="smile", hold_s=2.0)]),
    ("smile with a 2-second transition", [dict(text="smile", transition_s=2.0, hold_s=None)]),
    ("take 3 seconds to smile", [dict(text="smile", transition_s=3.0)]),
    ("smile over 12 frames and hold for 24 frames",
     [dict(text="smile", transition_frames=12, hold_frames=24, transition_s=None, hold_s=None)]),
    ("smile for -2 s then frown for 0 s", [dict(text="smile", hold_s=-2.0), dict(text="frown", hold_s=0.0)]),
    ("smile 1e9 s", [dict(text="smile", hold_s=1e9)]),
    ("smile in 500 ms, hold it 2 seconds, back to neutral",
     [dict(text="smile", transition_s=0.5, hold_s=2.0), dict(text="neutral", kind="return")]),
    ("smile, hold for 2 seconds, then frown", [dict(text="smile", hold_s=2.0), dict(text="frown", hold_s=None)]),
    ("smile and hold for 1 s", [dict(text="smile", hold_s=1.0)]),
    ("frown for 1 s, pause for 1 second, smile", [dict(text="frown", hold_s=2.0), dict(text="smile")]),
    ("pause for 1 second, then smile",
     [dict(text="neutral", kind="return", hold_s=1.0), dict(text="smile", hold_s=None)]),
    ("wait 2 seconds and then wink with the right eye",
     [dict(text="neutral", kind="return", hold_s=2.0), dict(text="wink with the right eye", side="right")]),
    ("smile, then after 2 seconds frown", [dict(text="smile", hold_s=2.0), dict(text="frown", hold_s=None)]),
    ("over 2 seconds, smile", [dict(text="smile", transition_s=2.0)]),
    ("smile, slowly", [dict(text="smile", speed="slow")]),
    ("gradually frown at 60% intensity over 3 seconds, hold for 1.5 s, then relax",
     [dict(text="frown", intensity=0.6, transition_s=3.0, hold_s=1.5, speed="slow", manner=("gradually",)),
      dict(text="neutral", kind="return")]),
    ("suddenly look surprised, then slowly return to a neutral face",
     [dict(text="look surprised", speed="sudden"), dict(text="neutral", kind="return", speed="slow")]),
    ("quickly grin", [dict(text="grin", speed="fast", manner=("quickly",))]),
    ("smile very quickly", [dict(text="smile", speed="fast", intensity=None)]),
    ("in a flash look angry", [dict(text="look angry", speed="sudden", manner=("in a flash",))]),
    ("the character should snap into a grin", [dict(text="grin", speed="sudden")]),
    ("gently smile", [dict(text="smile", speed="slow", manner=("gently",))]),
    ("nervously smile then sheepishly grin",
     [dict(text="nervously smile", manner=("nervously",), speed=None),
      dict(text="sheepishly grin", manner=("sheepishly",))]),
    ("smoothly raise the eyebrows", [dict(text="raise the eyebrows", manner=("smoothly",), speed=None)]),
    ("shyly and slowly smile", [dict(text="shyly smile", speed="slow", manner=("shyly", "slowly"))]),
    ("relax the face", [dict(text="neutral", kind="return")]),
    ("go back to rest", [dict(text="neutral", kind="return")]),
    ("return to a neutral face", [dict(text="neutral", kind="return")]),
    ("neutral", [dict(text="neutral", kind="return")]),
    ("smile, then snap back to neutral", [dict(text="smile"), dict(text="neutral", kind="return", speed="sudden")]),
    ("look relaxed", [dict(text="look relaxed", kind="expression")]),
    ("wink with the left eye", [dict(text="wink with the left eye", side="left")]),
    ("raise the right eyebrow quickly", [dict(text="raise the right eyebrow", side="right", speed="fast")]),
    ("smirk on the left", [dict(side="left")]),
    ("a one-sided smirk", [dict(text="one-sided smirk", side=None)]),
    ("raise the left and right eyebrows", [dict(side=None)]),
    ("raise both eyebrows, then lower the left one", [dict(side=None), dict(side="left")]),
    ("Please make the face look shocked", [dict(text="look shocked")]),
    ("make him smile", [dict(text="smile")]),
    ("the character should frown", [dict(text="frown")]),
    ("smile and open the mouth", [dict(text="smile", layer_texts=("open the mouth",))]),
    ("smile 😀 then 😢", [dict(text="smile 😀"), dict(text="😢")]),
    ("  smile\u00a0\u2003then\tfrown\n", [dict(text="smile"), dict(text="frown")]),
    ("smile right after blinking", [dict(text="blinking"), dict(text="smile", side=None)]),
    ("smile after 40 s", [dict(text="neutral", kind="return", hold_s=40.0), dict(text="smile", hold_s=None)]),
    ("quickly go from a smile, to a frown",
     [dict(text="smile", is_start=True, speed=None), dict(text="frown", speed="fast")]),
    ("smile, nervously", [dict(text="smile nervously", manner=("nervously",))]),
    ("Start with a neutral face, then gradually smile over 3 seconds, hold it for 2 seconds, "
     "and finally look surprised",
     [dict(text="neutral", kind="return"),
      dict(text="smile", transition_s=3.0, hold_s=2.0, speed="slow"),
      dict(text="look surprised", transition_s=None, hold_s=None)]),
    ("look disgusted for 3 seconds then slowly go back to neutral over 2 seconds",
     [dict(text="look disgusted", hold_s=3.0), dict(kind="return", transition_s=2.0, speed="slow")]),
]


def _check_segment(seg: Segment, expected: dict) -> None:
    for key, want in expected.items():
        got = tuple(layer.text for layer in seg.layers) if key == "layer_texts" else getattr(seg, key)
        if isinstance(want, float):
            assert got == pytest.approx(want), (key, seg)
        else:
            assert got == want, (key, seg)


@pytest.mark.parametrize("instruction, expected", CASES, ids=[c[0][:48] for c in CASES])
def test_real_instructions(instruction, expected):
    parsed = parse_instruction(instruction)
    assert len(parsed.segments) == len(expected), parsed
    for seg, exp in zip(parsed.segments, expected):
        _check_segment(seg, exp)
        assert instruction[seg.span[0]:seg.span[1]] == seg.source


def test_case_table_is_large_enough():
    assert len(CASES) >= 40


def test_spans_point_at_the_right_substrings():
    text = "Slowly break into a shy smile, then look shocked"
    a, b = parse_instruction(text).segments
    assert a.source == "Slowly break into a shy smile" and a.span == (0, 29)
    assert b.source == "look shocked" and text[b.span[0]:b.span[1]] == "look shocked"
    x, y = parse_instruction("Transform this face from disgust to sadness").segments
    assert (x.source, y.source) == ("disgust", "sadness")


def test_reordered_after_keeps_each_span_on_its_own_words():
    first, second = parse_instruction("smile after frowning").segments
    assert first.source == "frowning" and second.source == "smile"


def test_segment_text_is_lower_case_but_source_keeps_the_user_spelling():
    (seg,) = parse_instruction("Look SHOCKED").segments
    assert seg.text == "look shocked" and seg.source == "Look SHOCKED"


@pytest.mark.parametrize("instruction, fragment", [
    ("smile for banana seconds", "for banana seconds"),
    ("smile then over 2 seconds", "over 2 seconds"),
    ("smile at 150%", "at 150%"),
    ("intensity 40 smile", "intensity 40"),
    ("frown at -20%", "at -20%"),
    ("smile over 1.5 frames", "over 1.5 frames"),
    ("smile over 2 s over 3 s", "over 3 s"),
    ("smile. 123", "123"),
    ("smile for a moment", "for a moment"),
])
def test_unplaced_fragments_are_reported(instruction, fragment):
    parsed = parse_instruction(instruction)
    assert fragment in parsed.unplaced, parsed
    assert parsed.segments, parsed  # the expression itself is still there


def test_out_of_range_intensities_are_clamped():
    assert parse_instruction("smile at 150%").segments[0].intensity == 1.0
    assert parse_instruction("frown at -20%").segments[0].intensity == 0.0


def test_filler_only_input_gives_nothing():
    assert parse_instruction("please").segments == ()
    assert parse_instruction("").segments == () and parse_instruction("").unplaced == ()
    assert parse_instruction(" ,,, ;; ").segments == ()


def test_parse_rejects_non_strings_with_type_error():
    with pytest.raises(TypeError):
        parse_instruction(None)  # type: ignore[arg-type]


def test_result_types():
    parsed = parse_instruction("smile")
    assert isinstance(parsed, ParsedInstruction) and parsed.text == "smile"
    assert isinstance(parsed.segments, tuple) and isinstance(parsed.unplaced, tuple)
    with pytest.raises(Exception):
        parsed.segments[0].text = "x"  # frozen


@pytest.mark.parametrize("text", [
    "slowly smile then frown, " * 80,
    "from happy to sad " * 110,
    "a" * 2000,
    "and smile " * 200,
    "please " * 285,
    "1," * 1000,
])
def test_long_inputs_parse(text):
    """How long they take is a gate (tests/test_gates.py, benchmarks/bench_instructions.py), not a wall-clock assert."""
    text = text[:MAX_INSTRUCTION_CHARS]
    assert _parse(text).text == text


# --- property tests ------------------------------------------------------------------------------

_VOCAB = st.sampled_from([
    "smile", "frown", "then", "and", "slowly", "very", "slightly", "for", "over", "2", "1,5", "s", "seconds",
    "ms", "frames", "%", "40", "from", "to", "into", "turn", "after", "before", "hold", "pause", "relax",
    "neutral", "left", "right", "eye", ",", ";", ".", "->", "look", "shocked", "a", "the", "intensity",
    "-3", "1e9", "😀", "\x00", "\x07", "\u200b", "\n", "half", "couple", "of", "back", "wait",
])
_TEXTS = st.one_of(
    st.text(max_size=MAX_INSTRUCTION_CHARS),
    st.lists(_VOCAB, max_size=60).map(" ".join),
    st.lists(_VOCAB, max_size=60).map("".join),
)


def _check_invariants(text: str, parsed: ParsedInstruction) -> None:
    assert parsed.text == text
    previous_end = 0
    spans = sorted(s.span for s in parsed.segments)
    for s in parsed.segments:
        assert s.text.strip() and s.text == s.text.strip()
        assert 0 <= s.span[0] < s.span[1] <= len(text)
        assert text[s.span[0]:s.span[1]] == s.source
        assert s.kind in ("expression", "return")
        assert s.intensity is None or 0.0 <= s.intensity <= 1.0
        assert s.speed in (None, "slow", "fast", "sudden")
        assert s.side in (None, "left", "right")
        assert all(isinstance(w, str) and w == w.lower() for w in s.manner)
        for frames in (s.transition_frames, s.hold_frames):
            assert frames is None or isinstance(frames, int)
    for a, b in zip(spans, spans[1:]):
        assert a[1] <= b[0], spans  # never overlapping
    if "after" not in text.lower():
        assert [s.span for s in parsed.segments] == spans  # timeline order follows the text
    assert all(isinstance(u, str) and u for u in parsed.unplaced)


@PROFILE
@given(_TEXTS)
def test_parse_never_raises_and_keeps_invariants(text):
    parsed = _parse(text)  # the unguarded parser: a crash here is a real bug, not hidden by the safety net
    _check_invariants(text, parsed)
    assert parse_instruction(text) == parsed


# --- validate_instruction ------------------------------------------------------------------------

_ONE_SENTENCE = re.compile(r"[A-Z][^\n]*[.!?]")


def _assert_one_sentence(message: str) -> None:
    assert _ONE_SENTENCE.fullmatch(message), message
    # exactly one sentence end: no ". X" inside (quoted examples may use commas)
    assert not re.search(r"[.!?]\s+[A-Z]", message), message


@pytest.mark.parametrize("bad", [
    None, 3, 1.5, b"smile", ["smile"],
    "", "   ", "\n\t \r",
    "x" * (MAX_INSTRUCTION_CHARS + 1),
    "smile\x00", "smi\x07le", "smile\x1b[31m", "\x0csmile", "smile\x7f", "smile\x85",
    "smile\ud800",
])
def test_validate_rejects_bad_input_with_one_sentence(bad):
    with pytest.raises(InputError) as info:
        validate_instruction(bad)
    _assert_one_sentence(str(info.value))


def test_validate_accepts_and_strips():
    assert validate_instruction("  smile, then frown\n") == "smile, then frown"
    assert validate_instruction("smile\tthen\r\nfrown") == "smile\tthen\r\nfrown"
    assert validate_instruction("sourire 😀 ünïcödé") == "sourire 😀 ünïcödé"
    exact = "y" * MAX_INSTRUCTION_CHARS
    assert validate_instruction(exact) == exact
    assert validate_instruction("  " + exact + "  ") == exact


def test_validate_mentions_the_problem():
    with pytest.raises(InputError, match="NUL"):
        validate_instruction("a\x00b")
    with pytest.raises(InputError, match="U\\+0007"):
        validate_instruction("a\x07b")
    with pytest.raises(InputError, match="2,000"):
        validate_instruction("z" * 2500)
    with pytest.raises(InputError, match="empty"):
        validate_instruction(" ")


@PROFILE
@given(st.text(max_size=300))
def test_validate_either_accepts_or_raises_input_error(text):
    bad_char = any(
        unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in text
    )
    try:
        out = validate_instruction(text)
    except InputError as exc:
        _assert_one_sentence(str(exc))
        assert bad_char or not text.strip()
    else:
        assert not bad_char and out == text.strip() and out
