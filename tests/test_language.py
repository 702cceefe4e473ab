"""Issue 13, the instruction language: simultaneous layers, repeats, more ways to say "then", direct actions, gaze and
head motion, contradictions. Parser-level tests run without a model; the end-to-end ones use both generators."""

from __future__ import annotations

import numpy as np
import pytest

from model_runtime.actions import read_action
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.instructions import MAX_LAYERS, MAX_REPEATS, MIN_PERIOD_S, parse_instruction
from model_runtime.layers import combine, head_rotation
from model_runtime.timeline import KeyPart, frame_spans, plan_segments


def _layers(seg):
    return [(layer.text, layer.role) for layer in seg.layers]


# ---- simultaneity -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, main, layers", [
    ("smile while raising your eyebrows", "smile", [("raising your eyebrows", "with")]),
    ("smile whilst looking up", "smile", [("looking up", "with")]),
    ("frown as you look down", "frown", [("look down", "with")]),
    ("smile with your eyes closed", "smile", [("your eyes closed", "with")]),
    ("look left and smile at the same time", "look left", [("smile", "with")]),
    ("raise the eyebrows and open the mouth", "raise the eyebrows", [("open the mouth", "with")]),
    ("a sad smile", "smile", [("sad", "modifier")]),
    ("a tight-lipped smile", "smile", [("press lips", "modifier")]),
    ("a teary grin", "grin", [("tearful", "modifier")]),
])
def test_simultaneous_parts_become_layers_of_one_segment(text, main, layers):
    (seg,) = parse_instruction(text).segments
    assert seg.text == main and _layers(seg) == layers
    assert seg.source and seg.source in text


@pytest.mark.parametrize("text, count", [
    ("wink with the left eye", 1),          # "with" + a side is not a layer
    ("smile with intensity 40%", 1),        # nor is "with" + an intensity
    ("a sad and tired look", 1),            # one meaning for the encoder, not split
    ("smile and then frown", 2),
    ("smile and relax", 2),                 # a return is a step, not a layer
    ("smile and turn into a frown", 2),     # so is a change
])
def test_what_stays_whole_and_what_stays_a_sequence(text, count):
    parsed = parse_instruction(text)
    assert len(parsed.segments) == count and all(not s.layers for s in parsed.segments), parsed


def test_layers_are_limited_and_the_rest_reported():
    parsed = parse_instruction(" and ".join(["smile", "look up", "squint", "puff the cheeks", "raise the brows",
                                             "stick out the tongue", "wrinkle the nose"]))
    (seg,) = parsed.segments
    assert len(seg.layers) == MAX_LAYERS and "wrinkle the nose" in parsed.unplaced


# ---- more ways to say "then" ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, texts", [
    ("a smile melting into a frown", ["smile", "frown"]),
    ("a smile giving way to a frown", ["smile", "frown"]),
    ("a smile that fades into a frown", ["smile", "frown"]),
    ("a frown fading into a grin", ["frown", "grin"]),
    ("the smile becomes a frown", ["smile", "frown"]),
    ("first smile, next frown, finally laugh", ["smile", "frown", "laugh"]),
    ("before smiling, look down", ["look down", "smiling"]),
    ("after raising the eyebrows, smile", ["raising the eyebrows", "smile"]),
    ("slowly break into a shy smile", ["shy smile"]),  # nothing before the verb: not a cut
])
def test_sequence_words(text, texts):
    assert [s.text for s in parse_instruction(text).segments] == texts


def test_a_lone_adverb_before_melts_into_goes_with_the_next_face():
    first, second = parse_instruction("frown, which slowly melts into a smile").segments
    assert (first.text, first.speed) == ("frown", None) and (second.text, second.speed) == ("smile", "slow")


@pytest.mark.parametrize("text, word", [("smile while", "while"), ("smile, then", "then"), ("frown and", None)])
def test_dangling_connectives_are_reported(text, word):
    parsed = parse_instruction(text)
    assert len(parsed.segments) == 1
    if word:
        assert word in parsed.unplaced


# ---- repetition ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, repeat", [
    ("blink twice", 2), ("nod three times", 3), ("blink 4 times", 4), ("smile once", 1), ("frown a few times", 3),
    ("blink again and again", 4), ("blink over and over", 4), ("wink 3x", 3),
])
def test_counts_are_read(text, repeat):
    (seg,) = parse_instruction(text).segments
    assert seg.repeat == repeat and not parse_instruction(text).unplaced


@pytest.mark.parametrize("text, fragment, repeat", [
    ("blink 10,000 times", "10,000 times", MAX_REPEATS),
    ("blink a million times", "a million times", MAX_REPEATS),
    ("blink 0 times", "0 times", 1),
    ("nod -3 times", "-3 times", 1),
    ("blink 1.5 times", "1.5 times", 1),
    ("smile twice three times", "three times", 2),
])
def test_impossible_counts_are_capped_or_shown_once_and_reported(text, fragment, repeat):
    parsed = parse_instruction(text)
    assert fragment in parsed.unplaced and parsed.segments[0].repeat == repeat


@pytest.mark.parametrize("text, period", [("blink every 3 seconds", 3.0), ("nod every other second", 2.0),
                                          ("blink every second", 1.0), ("blink every few seconds", 3.0),
                                          ("blink every two seconds", 2.0)])
def test_a_stated_rate_is_read_as_ongoing_repetition(text, period):
    parsed = parse_instruction(text)
    (seg,) = parsed.segments
    assert seg.keep and seg.period == period and seg.hold_s is None and not parsed.unplaced


@pytest.mark.parametrize("text, texts", [
    ("blink every now and then", ["blink"]), ("every now and then blink", ["blink"]),
    ("blink every now and then for 10 seconds", ["blink"]), ("nod now and again", ["nod"]),
])
def test_every_now_and_then_repeats_and_is_not_a_step(text, texts):
    parsed = parse_instruction(text)
    assert [s.text for s in parsed.segments] == texts and parsed.segments[0].keep and not parsed.unplaced


def test_now_followed_by_and_then_is_still_a_sequence():
    assert [s.text for s in parse_instruction("smile now and then frown").segments] == ["smile", "frown"]


def test_an_impossible_rate_is_reported():
    parsed = parse_instruction("blink every 0.01 seconds")  # too fast: reported, shown at the fastest rate
    assert "every 0.01 seconds" in parsed.unplaced and parsed.segments[0].period == MIN_PERIOD_S
    parsed = parse_instruction("blink ten times a second")
    assert "ten times a second" in parsed.unplaced and parsed.segments[0].period == MIN_PERIOD_S
    parsed = parse_instruction("blink zero times a second")
    assert "zero times a second" in parsed.unplaced and parsed.segments[0].period is None
    parsed = parse_instruction("blink every 0 seconds")
    assert "every 0 seconds" in parsed.unplaced and parsed.segments[0].period is None


@pytest.mark.parametrize("text, repeat, keep, period", [
    ("blink every 2 minutes", 4, True, 120.0),
    ("blink once every 2 seconds", 4, True, 2.0),          # "once every": the plain rate
    ("blink 3 times every 2 seconds", 3, False, 2.0),      # a count beside a rate keeps the count
    ("blink every 2 seconds 3 times", 3, False, 2.0),
    ("blink from time to time", 4, True, 3.0),             # the sparse loop words: every few seconds
    ("blink every now and then", 4, True, 3.0),
    ("blink twice a second", 4, True, 0.5),                # a count per unit is a rate
    ("nod three times a minute", 4, True, 20.0),
    ("blink once per second", 4, True, 1.0),
    ("blink every half a second", 4, True, 0.5),
    ("blink every half second", 4, True, 0.5),
    ("blink every two and a half seconds", 4, True, 2.5),
    ("blink every one and a half minutes", 4, True, 90.0),
])
def test_rates_with_counts_units_and_sparse_words(text, repeat, keep, period):
    parsed = parse_instruction(text)
    (seg,) = parsed.segments
    assert (seg.repeat, seg.keep, seg.period) == (repeat, keep, period) and not parsed.unplaced


def test_keep_repeats_a_pulse_but_holds_a_smile():
    assert parse_instruction("keep blinking").segments[0].repeat == 4
    assert parse_instruction("keep smiling").segments[0].repeat == 1


def test_alternation_gives_alternating_segments():
    texts = [s.text for s in parse_instruction("alternate between smiling and frowning three times").segments]
    assert texts == ["smiling", "frowning"] * 3
    parsed = parse_instruction("alternate between smiling")
    assert [s.text for s in parsed.segments] == ["smiling"] and "alternate between" in parsed.unplaced


@pytest.mark.parametrize("text, seconds, steps", [
    ("alternate between smiling and frowning for 6 seconds", 6.0, 4),
    ("alternate between smiling and frowning three times over 3 seconds", 3.0, 6),
])
def test_a_time_closing_an_alternation_is_the_whole_alternations(text, seconds, steps):
    plan = plan_segments(parse_instruction(text).segments, fps=30)
    assert len(plan) == steps and plan[-1].end_s == pytest.approx(seconds)
    assert len({round(s.end_s - s.start_s, 6) for s in plan}) == 1  # shared evenly


def test_a_time_inside_an_alternation_stays_with_its_face():
    segs = parse_instruction("alternate between smiling for 2 seconds and frowning").segments
    assert [s.hold_s for s in segs] == [2.0, None, 2.0, None]


def test_repeats_become_peaks_with_natural_spacing():
    plan = plan_segments(parse_instruction("blink three times").segments, fps=30)
    peaks = [s for s in plan if s.kind == "expression"]
    assert len(peaks) == 3 and len([s for s in plan if s.kind == "release"]) == 3
    gaps = np.diff([s.apex_s for s in peaks])
    assert np.all(gaps >= 0.3) and np.all(gaps <= 1.0)  # voluntary repeated blinks: 2-3 per second
    assert all(0.05 <= s.transition_s <= 0.15 for s in peaks)  # a blink closes in about 0.1 s


def test_a_repeated_layer_repeats_over_the_held_main_part():
    plan = plan_segments(parse_instruction("smile while blinking twice").segments, fps=30)
    assert [s.kind for s in plan].count("expression") == 2
    assert all(any(p.text == "smile" for p in s.parts) for s in plan)  # the smile is held throughout
    assert [any(p.text == "blinking" for p in s.parts) for s in plan] == [False, True, False, True, False]


# ---- direct actions -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, channels", [
    ("open the mouth", {"jawOpen"}), ("move the jaw to the left", {"jawLeft"}), ("jut the jaw forward", {"jawForward"}),
    ("purse the lips", {"mouthPucker"}), ("funnel the lips", {"mouthFunnel", "jawOpen"}),
    ("press the lips together", {"mouthPressLeft", "mouthPressRight"}),
    ("roll the lips in", {"mouthRollLower", "mouthRollUpper"}), ("puff the cheeks", {"cheekPuff", "mouthClose"}),
    ("raise the inner brows", {"browInnerUp"}), ("raise the outer brows", {"browOuterUpLeft", "browOuterUpRight"}),
    ("lower the right eyebrow", {"browDownRight"}), ("widen the eyes", {"eyeWideLeft", "eyeWideRight"}),
    ("look up", {"eyeLookUpLeft", "eyeLookUpRight"}), ("glance to the left", {"eyeLookOutLeft", "eyeLookInRight"}),
    ("stick out the tongue", {"tongueOut", "jawOpen"}), ("sneer on the right side", {"noseSneerRight", "mouthUpperUpRight"}),
    ("show a dimple on the left cheek", {"mouthDimpleLeft"}), ("close the left eye", {"eyeBlinkLeft"}),
])
def test_plain_words_name_their_channels(text, channels):
    action = read_action(text)
    assert action is not None and set(action.channels) == channels


@pytest.mark.parametrize("text", ["look surprised", "smile", "look happy", "a sad and tired look", "look relaxed"])
def test_expressions_are_left_to_the_encoder(text):
    assert read_action(text) is None


# ---- combination ----------------------------------------------------------------------------------------------------
def _w(**channels):
    w = np.zeros(NUM_CHANNELS, np.float32)
    for name, value in channels.items():
        w[CHANNEL_INDEX[name]] = value
    return w


def _part(index, role="with", action=None):
    return KeyPart(index, "x", "expression", None, None, action, role)


def test_parts_unite_by_the_largest_weight_not_the_sum():
    out = combine([(_part(0, "main"), _w(jawOpen=0.5, browInnerUp=0.4)), (_part(1), _w(jawOpen=0.6, eyeWideLeft=0.3))])
    assert out[CHANNEL_INDEX["jawOpen"]] == pytest.approx(0.6)
    assert out[CHANNEL_INDEX["browInnerUp"]] == pytest.approx(0.4) and out[CHANNEL_INDEX["eyeWideLeft"]] == pytest.approx(0.3)


def test_antagonists_follow_the_higher_priority_part():
    smile = _w(mouthSmileLeft=0.6, mouthSmileRight=0.6)
    frown = _w(mouthFrownLeft=0.7, mouthFrownRight=0.7, browDownLeft=0.8)
    out = combine([(_part(0, "main"), smile), (_part(1), frown)])
    assert out[CHANNEL_INDEX["mouthFrownLeft"]] == 0 and out[CHANNEL_INDEX["mouthSmileLeft"]] == pytest.approx(0.6)
    assert out[CHANNEL_INDEX["browDownLeft"]] == pytest.approx(0.8)  # the rest of the frown stays
    out = combine([(_part(0, "main"), frown), (_part(1), smile)])
    assert out[CHANNEL_INDEX["mouthSmileLeft"]] == 0 and out[CHANNEL_INDEX["mouthFrownLeft"]] == pytest.approx(0.7)


def test_a_modifier_only_fills_regions_the_noun_leaves_free():
    smile = _w(mouthSmileLeft=0.6, mouthSmileRight=0.6, cheekSquintLeft=0.4)
    sad = _w(browInnerUp=0.8, mouthFrownLeft=0.6, mouthPressLeft=0.3, eyeSquintLeft=0.2)
    out = combine([(_part(0, "main"), smile), (_part(1, "modifier"), sad)])
    assert out[CHANNEL_INDEX["browInnerUp"]] == pytest.approx(0.8)
    assert out[CHANNEL_INDEX["mouthPressLeft"]] == 0 and out[CHANNEL_INDEX["eyeSquintLeft"]] == 0


def test_an_action_holds_its_zero_channels_shut():
    close_eyes = read_action("close the eyes")
    out = combine([(_part(0, "main"), _w(eyeWideLeft=0.5, browInnerUp=0.5)),
                   (_part(1, action=close_eyes), _w(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))])
    assert out[CHANNEL_INDEX["eyeWideLeft"]] == 0 and out[CHANNEL_INDEX["eyeBlinkLeft"]] == 1.0


@pytest.mark.parametrize("text, kept, fragment", [
    ("smile and frown at the same time", "smile", "frown"),
    ("look up and look down at the same time", "look up", "look down"),
    ("close the eyes while widening the eyes", "close the eyes", "widening the eyes"),
])
def test_contradictions_keep_the_first_and_name_the_other(text, kept, fragment):
    parsed = parse_instruction(text)
    assert parsed.segments[0].text == kept and any(fragment in note for note in parsed.notes)


@pytest.mark.parametrize("text, guessed", [
    ("😀😀😀", ["😀😀😀"]),
    ("微笑", ["微笑"]),
    ("🙂 then 😢", ["🙂", "😢"]),
    ("smile while 😀", ["😀"]),
])
def test_parts_without_an_english_word_are_read_with_a_warning_naming_them(text, guessed):
    parsed = parse_instruction(text)
    assert parsed.segments  # still a reading: the model's nearest guess
    named = [note for note in parsed.notes if "no English word" in note]
    assert len(named) == len(guessed) and all(repr(g) in note for g, note in zip(guessed, named))


@pytest.mark.parametrize("text", ["smile", "a sad smile, then blink twice", "raise the left brow 50%"])
def test_english_instructions_get_no_such_warning(text):
    assert not any("no English word" in note for note in parse_instruction(text).notes)


# ---- head -----------------------------------------------------------------------------------------------------------
def _head(text, fps=30):
    plan = plan_segments(parse_instruction(text).segments, fps=fps)
    return head_rotation(plan, frame_spans(plan, fps))


def test_nods_pitch_the_chin_down_once_per_nod():
    track = _head("nod twice")
    pitch = -track[:, 1]
    rises = np.flatnonzero((pitch[1:] >= 0.15) & (pitch[:-1] < 0.15))
    assert len(rises) == 2 and track[-1].tolist() == [0, 0, 0] and np.abs(track[:, [0, 2]]).max() == 0


def test_head_turns_and_tilts_follow_the_characters_sides():
    assert _head("turn the head to the left")[:, 0].max() > 0.3
    assert _head("turn the head to the right")[:, 0].min() < -0.3
    assert _head("tilt the head to the right")[:, 2].min() < -0.2
    shake = _head("shake the head")[:, 0]
    assert shake.max() > 0.2 and shake.min() < -0.2
    assert _head("smile") is None and _head("look up") is None  # the eyes move, not the head


@pytest.mark.parametrize("text, repeat, keep, period", [
    ("every now and then, blink", 4, True, 3.0),         # a rate before a comma belongs to what follows
    ("every 2 seconds, blink", 4, True, 2.0),
    ("from time to time, nod", 4, True, 3.0),
    ("twice, blink", 2, False, None),
    ("blink, twice", 2, False, None),                     # and a count after one to what precedes
])
def test_a_count_or_rate_set_off_by_a_comma_still_applies(text, repeat, keep, period):
    parsed = parse_instruction(text)
    (seg,) = parsed.segments
    assert (seg.repeat, seg.keep, seg.period) == (repeat, keep, period) and not parsed.unplaced


def test_a_count_or_rate_with_nothing_to_apply_to_is_reported():
    for text in ("twice", "every 2 seconds", "blink twice, three times"):
        assert parse_instruction(text).unplaced, text


@pytest.mark.parametrize("text, steps, each", [
    ("alternate between smiling and frowning every 2 seconds", 6, 2.0),             # a rate sets each step
    ("alternate between smiling and frowning every 2 seconds for 20 seconds", 10, 2.0),  # a time, the steps
    ("alternate between smiling and frowning twice every 3 seconds", 4, 3.0),       # a count, the cycles
    ("keep alternating between smiling and frowning", 6, 1.5),
])
def test_an_alternation_takes_its_rate_and_keep(text, steps, each):
    parsed = parse_instruction(text)
    plan = plan_segments(parsed.segments, fps=30)
    assert [s.text for s in parsed.segments] == ["smiling", "frowning"] * (steps // 2) and not parsed.unplaced
    assert [round(s.end_s - s.start_s, 6) for s in plan] == [each] * steps


@pytest.mark.parametrize("text, texts, at, until", [
    ("smile from 2 to 5 seconds", ["smile"], 2.0, 5.0),
    ("smile between 2 and 5 seconds", ["smile"], 2.0, 5.0),
    ("smile from 500 ms to 2 s", ["smile"], 0.5, 2.0),
    ("smile at 2 seconds", ["smile"], 2.0, None),
    ("smile at the 3 second mark", ["smile"], 3.0, None),
    ("smile until 3 seconds, then frown", ["smile", "frown"], None, 3.0),
    ("from 1 to 3 seconds, blink", ["blink"], 1.0, 3.0),              # across the comma, not a transition
    ("smile from second 2 to second 5, then frown", ["smile", "frown"], 2.0, 5.0),
])
def test_a_point_or_window_on_the_clock_is_read_as_such_not_as_a_duration(text, texts, at, until):
    parsed = parse_instruction(text)
    first = parsed.segments[0]
    assert [s.text for s in parsed.segments] == texts and not parsed.unplaced
    assert (first.at_s, first.until_s, first.hold_s, first.transition_s) == (at, until, None, None)


@pytest.mark.parametrize("text, reported", [
    ("smile from 5 to 2 seconds", "from 5 to 2 seconds"),   # ends before it starts
    ("smile at 2 seconds at 3 seconds", "at 3 seconds"),    # two places
    ("smile at 900 seconds", "at 900 seconds"),             # past the length limit
    ("blink at 2 frames", "at 2 frames"),
])
def test_a_place_on_the_clock_that_cannot_be_kept_is_reported(text, reported):
    assert reported in parse_instruction(text).unplaced


def test_the_planner_waits_for_a_start_and_fills_a_window():
    plan = plan_segments(parse_instruction("smile from 2 to 5 seconds").segments, fps=30)
    assert plan[0].start_s == pytest.approx(2.0) and plan[-1].end_s == pytest.approx(5.0)
    plan = plan_segments(parse_instruction("smile, then at 4 seconds frown").segments, fps=30)
    assert plan[0].start_s == 0.0 and plan[1].start_s == pytest.approx(4.0)  # the smile held meanwhile
    notes: list[str] = []
    plan = plan_segments(parse_instruction("smile, then at 0.5 seconds frown").segments, fps=30, notes=notes)
    assert plan[1].start_s == pytest.approx(plan[0].end_s) and plan[1].start_s > 0.5 and "start at 0.5 s" in notes[0]


@pytest.mark.parametrize("text", ["smile at him", "look at the camera", "go from a smile to a frown",
                                  "from happy to sad in 2 seconds"])
def test_at_and_from_without_a_clock_time_keep_their_meaning(text):
    assert not parse_instruction(text).unplaced


@pytest.mark.parametrize("text, hold", [("smile for up to 5 seconds", 5.0), ("frown for no more than 2 seconds", 2.0),
                                        ("smile for a full 3 seconds", 3.0)])
def test_hedged_durations_are_durations(text, hold):
    parsed = parse_instruction(text)
    assert [(s.text, s.hold_s) for s in parsed.segments] == [(text.split()[0], hold)] and not parsed.unplaced


def test_a_window_on_an_alternation_is_the_whole_alternations():
    plan = plan_segments(parse_instruction("alternate between smiling and frowning from 2 to 8 seconds").segments, 30)
    assert len(plan) == 4 and plan[0].start_s == pytest.approx(2.0) and plan[-1].end_s == pytest.approx(8.0)
    assert len({round(s.end_s - s.start_s, 6) for s in plan}) == 1


# ---- sentences that tell of an action (WordNet's glosses and examples read this way; these sentences are not theirs)
@pytest.mark.parametrize("text, action, layers", [
    ("the nurse blinked at the patient", "blink", []),
    ("my brother was winking at me across the table", "wink", []),
    ("the old woman kept nodding in her chair", "nod", []),
    ("the girl stuck out her tongue at him", "tongue out", []),
    ("he puffed his cheeks", "puff cheeks", []),
    ("he opened his mouth in surprise", "open mouth", [("in surprise", "with")]),
    ("a polite nod", "nod", []),
    ("an unfriendly nod", "nod", []),                          # an -ly adjective, not a manner adverb
    ("a sly wink", "wink", [("sly", "with")]),
    ("the boy nodded at the waiter", "nod", []),
    ("she squinted when the lights came on", "squint", []),
])
def test_a_sentence_telling_of_an_action_is_that_action(text, action, layers):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action
    assert _layers(seg) == layers


@pytest.mark.parametrize("text", ["she didn't nod", "he never winked at anyone", "they refused to nod",
                                  "the dog barked at him", "smile at him"])
def test_negated_or_actionless_sentences_are_left_to_the_encoder(text):
    assert all(seg.action is None for seg in parse_instruction(text).segments)


def test_a_clause_after_a_comma_that_tells_the_scene_is_not_a_next_step():
    seg, = parse_instruction("squint, as if the sun were in your eyes").segments
    assert seg.action is not None and seg.action.name == "squint" and _layers(seg) == []
    assert len(parse_instruction("squint, then frown").segments) == 2


@pytest.mark.parametrize("text, channels", [
    ("cross your eyes", {"eyeLookInLeft", "eyeLookInRight"}), ("go cross-eyed", {"eyeLookInLeft", "eyeLookInRight"}),
    ("close one eye", {"eyeBlinkLeft"}), ("close one eye on the right", {"eyeBlinkRight"}),
    ("draw the lips into a round shape", {"mouthPucker"}), ("close one's eyes", {"eyeBlinkLeft", "eyeBlinkRight"}),
])
def test_more_plain_words_name_their_channels(text, channels):
    action = read_action(text)
    assert action is not None and set(action.channels) == channels


def test_partly_is_a_degree():
    assert parse_instruction("partly open the mouth").segments[0].intensity == pytest.approx(0.5)


@pytest.mark.parametrize("text, action", [
    ("half-close the eyes", "close eyes"), ("half close the eyes", "close eyes"), ("eyes half-closed", "close eyes"),
    ("with her eyes half shut", "close eyes"), ("half open the mouth", "open mouth"),
])
def test_half_before_a_verb_of_opening_or_closing_is_its_degree(text, action):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action and seg.intensity == pytest.approx(0.5)
    assert "half" not in seg.text


@pytest.mark.parametrize("text", ["a half smile", "smile for half a second", "smile at half strength"])
def test_half_elsewhere_keeps_its_meaning(text):
    seg, = parse_instruction(text).segments
    assert seg.action is None and ("half" in seg.text) is (text == "a half smile")


@pytest.mark.parametrize("text", ["bend the head", "bend your head forward", "she bent her head"])
def test_bending_the_head_bows_it(text):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == "bow head"


@pytest.mark.parametrize("text, action, offered", [
    ("lower or bend the head", "bow head", "'bend'"), ("bow or nod the head", "bow head", "'nod'"),
    ("blink or wink", "blink", "'wink'"), ("raise or lower the brows", "raise brows", "'lower'"),
])
def test_two_verbs_offered_for_one_action_read_the_first_with_a_note(text, action, offered):
    parsed = parse_instruction(text)
    seg, = parsed.segments
    assert seg.action is not None and seg.action.name == action and " or " not in seg.text
    assert any(offered in note and "choice" in note for note in parsed.notes)


@pytest.mark.parametrize("text, shown", [("smile or frown", "smile"), ("grin or smirk, then relax", "grin")])
def test_two_looks_offered_read_the_first_with_a_note(text, shown):
    parsed = parse_instruction(text)
    assert parsed.segments[0].text == shown
    assert any("choice" in note for note in parsed.notes)


@pytest.mark.parametrize("text, action, kept, offered", [
    ("look left or right", "look left", "look left", "'right'"),
    ("lower the head or upper body", "bow head", "lower the head", "'upper body'"),
    ("tilt the head or body slightly", "tilt head left", "tilt the head", "'body'"),
    ("raise your brows or eyes and smile", "raise brows", "raise your brows", "'eyes'"),
])
def test_an_action_with_another_object_offered_reads_the_first_with_a_note(text, action, kept, offered):
    parsed = parse_instruction(text)
    seg = parsed.segments[0]
    assert seg.action is not None and seg.action.name == action and seg.text == kept
    assert any(offered in note and "choice" in note for note in parsed.notes)


def test_an_object_in_brackets_is_read_as_written_and_its_choices_noted():
    parsed = parse_instruction("lower or bend (the head or upper body), as in a nod or bow")
    seg, = parsed.segments
    assert seg.action is not None and seg.action.name == "bow head" and seg.text == "lower the head"
    assert sum("choice" in note for note in parsed.notes) == 2
    assert [s.text for s in parse_instruction("smile (slightly), then frown").segments] == ["smile", "frown"]


def test_an_offered_object_keeps_the_manner_and_layers_after_it():
    assert parse_instruction("tilt the head or body slightly").segments[0].intensity < 1.0
    assert [layer.text for layer in parse_instruction("raise your brows or eyes and smile").segments[0].layers] == [
        "smile"]


@pytest.mark.parametrize("text", ["be cross-eyed; have a squint or strabismus", "give a wink or two"])
def test_a_noun_after_a_determiner_is_not_an_action_offered_as_a_choice(text):
    assert not any("choice" in note for note in parse_instruction(text).notes)


@pytest.mark.parametrize("text, action, repeat, hold_s, first", [
    ("blink once or twice", "blink", 1, None, "'once'"), ("nod two or three times", "nod", 2, None, "'two'"),
    ("blink 2 or 3 times", "blink", 2, None, "'2'"), ("smile for two or three seconds", None, 1, 2.0, "'two'"),
])
def test_a_range_of_counts_or_lengths_reads_the_first_with_a_note(text, action, repeat, hold_s, first):
    parsed = parse_instruction(text)
    seg, = parsed.segments
    assert (seg.action.name if seg.action else None) == action and seg.repeat == repeat and seg.hold_s == hold_s
    assert " or " not in seg.text and not parsed.unplaced
    assert any(first in note and "range" in note for note in parsed.notes)


@pytest.mark.parametrize("text", ["happy or sad", "nod or not", "open your mouth or not"])
def test_or_between_words_that_are_not_both_actions_is_left_to_the_reader(text):
    parsed = parse_instruction(text)
    assert parsed.segments[0].text == text and not any("choice" in note for note in parsed.notes)


@pytest.mark.parametrize("text, steps", [("nod, as in agreement", ["nod"]), ("smile, as in greeting", ["smile"]),
                                         ("smile, as in greeting, then frown", ["smile", "frown"])])
def test_an_example_after_as_in_is_left_out_with_a_note(text, steps):
    parsed = parse_instruction(text)
    assert [seg.text for seg in parsed.segments] == steps
    assert any("as in" in note and "example" in note for note in parsed.notes)
    assert parse_instruction("grin as in a toothpaste ad").notes == ()  # no comma: part of the description


def test_raising_and_lowering_the_head_is_one_movement_that_comes_back():
    pitch = _head("raise and lower the head")[:, 1]
    assert pitch.max() > 0.2 and abs(pitch[-1]) < 1e-6


@pytest.mark.parametrize("text, action, layers", [
    ("the waiter nodded politely", "nod", []),
    ("the old judge shook his head sadly", "shake head", [("sadly", "with")]),
])
def test_a_manner_adverb_after_a_told_action_is_its_complement(text, action, layers):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action and _layers(seg) == layers


@pytest.mark.parametrize("text, action", [
    ("a person who winks", "wink"), ("a boy that winks", "wink"), ("she winks at him", "wink"),
    ("he purses his lips", "pucker lips"), ("the character that blinks", "blink"),
])
def test_a_third_person_verb_after_a_subject_pronoun_or_a_relative_tells_of_the_action(text, action):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action


@pytest.mark.parametrize("text, action, layers", [
    ("give a nod", "nod", []), ("she gave a quick nod", "nod", []), ("give him a wink", "wink", []),
    ("give a sly wink", "wink", [("sly", "with")]), ("give a polite nod", "nod", []),  # "polite" names nothing facial
    ("show a squint", "squint", []), ("put on a sneer", "sneer", []), ("show sneering", "sneer", []),
    ("the avatar displays a squint", "squint", []), ("let the face show narrow eyes", "squint", []),
    ("give a shake of the head", "shake head", []), ("show an open mouth", "open mouth", []),
    ("the character nods", "nod", []), ("the avatar winks", "wink", []),
    ("throw a wink at the camera", "wink", []), ("give a nod of approval", "nod", [("of approval", "with")]),
    ("give a wink at him in surprise", "wink", [("at him in surprise", "with")]),
    ("give a wink sadly", "wink", [("sadly", "with")]),
])
def test_an_action_given_or_shown_is_the_action_and_its_words_stay_as_written(text, action, layers):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action and _layers(seg) == layers
    assert len(seg.text.split()) >= 2  # not cut to the action: the learned model was trained on such templates as text


@pytest.mark.parametrize("text", ["show mocking sneer", "give me a smile", "show who winks", "make a face",
                                  "show happiness", "give a nod or not", "the character never nods"])
def test_what_is_given_or_shown_must_be_a_direct_action_by_itself(text):
    seg, = parse_instruction(text).segments
    assert seg.action is None


@pytest.mark.parametrize("text, main, action, layers", [
    ("a nod and a smile", "nod", "nod", [("smile", None)]),
    ("give a big smile and a wink", "give a smile", None, [("give a wink", "wink")]),
    ("smile with a nod and a wink", "smile", None, [("nod", "nod"), ("wink", "wink")]),
    ("smile and give a wink", "smile", None, [("give a wink", "wink")]),
    ("she smiled and gave a nod", "smiled", None, [("gave a nod", "nod")]),
])
def test_an_action_given_beside_another_look_is_a_layer_of_it(text, main, action, layers):
    seg, = parse_instruction(text).segments
    assert seg.text == main and (seg.action.name if seg.action else None) == action
    assert [(layer.text, layer.action.name if layer.action else None) for layer in seg.layers] == layers


@pytest.mark.parametrize("text", ["a sad and a tired look", "a happy and giving face"])
def test_looks_joined_by_and_without_an_action_stay_one_meaning(text):
    assert parse_instruction(text).segments[0].layers == ()


@pytest.mark.parametrize("text, repeat", [("give two nods", 2), ("give a couple of quick winks", 2),
                                          ("give three blinks", 3), ("give 4 nods", 4), ("give a nod", 1),
                                          ("give one nod", 1), ("give eleven winks", 11)])
def test_a_count_of_actions_given_is_that_many_peaks(text, repeat):
    parsed = parse_instruction(text)
    assert parsed.segments[0].action is not None and parsed.segments[0].repeat == repeat and not parsed.notes


@pytest.mark.parametrize("text, repeat", [("give 100 nods", MAX_REPEATS), ("give 0 nods", 1), ("give zero nods", 1),
                                          ("give twenty nods", MAX_REPEATS),
                                          ("give " + "9" * 5000 + " winks", MAX_REPEATS)])
def test_a_count_of_actions_given_out_of_range_is_capped_with_a_note(text, repeat):
    parsed = parse_instruction(text)
    assert parsed.segments[0].repeat == repeat
    assert len(parsed.notes) == 1 and f"not from 1 to {MAX_REPEATS}" in parsed.notes[0]


def test_giving_a_nod_nods_the_head():
    pitch = -_head("give a nod")[:, 1]
    assert pitch.max() > 0.15 and abs(pitch[-1]) < 1e-6


def test_a_plural_face_part_is_not_a_third_person_verb():
    from model_runtime.actions import read_told_action

    assert read_told_action("brows together with a frown") is None
    assert read_told_action("eyes down rapidly") is None


@pytest.mark.parametrize("text, segment_text", [
    ("eyes closes", "eyes closes"),                           # no pronoun or relative before it: not told
    ("show who winks", "show who winks"),                     # an instruction verb is not a subject
    ("show sneering", "show sneering"),                       # an order with an instruction verb, not a subject
    ("look down on someone", "look down on someone"),         # an idiom of the knowledge base means what it says
    ("man blink at her", "man blink at her"),                 # a subject needs a told verb after it
    ("coldly gape", "coldly gape"),                           # an adverb says how, not who: the encoder reads it
    ("look down on someone face", "look down on someone face"),  # an order keeps its words
    ("the character: gaping", "character gaping"),            # the parser's own template, as the model was trained
    ("lip pucker", "lip pucker"),                             # a face part before the verb is its object
    ("mocking sneer", "mocking sneer"),                     # a knowledge-base phrase
])
def test_orders_and_noun_phrases_are_not_read_as_told_sentences(text, segment_text):
    seg, = parse_instruction(text).segments
    assert seg.text == segment_text


def test_actions_told_in_the_past_are_joined_like_orders():
    seg, = parse_instruction("the old sailor frowned and winked").segments
    assert [(layer.text, layer.action.name if layer.action else None) for layer in seg.layers] == [("winked", "wink")]
    assert parse_instruction("a happy and relaxed face").segments[0].layers == ()  # adjectives stay one meaning


# ---- negation: "without X", "with no X" ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind, main, held", [
    ("look surprised without opening the mouth", "expression", "look surprised", ("opening the mouth", "open mouth")),
    ("frown without squinting", "expression", "frown", ("squinting", "squint")),
    ("a straight face with no smile", "return", "neutral", ("smile", None)),
    ("without smiling", "return", "neutral", ("smiling", None)),
])
def test_what_follows_without_is_held_at_rest_not_shown(text, kind, main, held):
    seg, = parse_instruction(text).segments
    assert (seg.kind, seg.text) == (kind, main)
    assert [(layer.text, layer.action.name if layer.action else None) for layer in seg.layers
            if layer.role == "without"] == [held]


def test_no_expression_stays_the_knowledge_base_phrase():
    seg, = parse_instruction("no expression face").segments
    assert seg.layers == () and seg.text == "no expression face"


def test_a_without_part_zeroes_its_channels_and_nothing_else():
    blink = read_action("blink")
    surprise = _w(eyeWideLeft=0.6, eyeBlinkLeft=0.4, jawOpen=0.5)
    out = combine([(_part(0, "main"), surprise), (KeyPart(1, "blinking", "expression", None, None, blink, "without"),
                                                  _w(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))])
    assert out[CHANNEL_INDEX["eyeBlinkLeft"]] == 0.0  # held at rest
    assert out[CHANNEL_INDEX["eyeWideLeft"]] == pytest.approx(0.6)  # a blink's own zero channels are not applied
    assert out[CHANNEL_INDEX["jawOpen"]] == pytest.approx(0.5)
    text_part = KeyPart(1, "showing teeth", "expression", None, None, None, "without")
    surprise = _w(eyeWideLeft=0.6, eyeBlinkLeft=0.4, jawOpen=0.25)  # the jaw at 0.42 of its peak: the teeth's own
    out = combine([(_part(0, "main"), surprise), (text_part, _w(jawOpen=0.3, mouthSmileLeft=0.1))])
    assert out[CHANNEL_INDEX["jawOpen"]] == 0.0 and out[CHANNEL_INDEX["eyeWideLeft"]] == pytest.approx(0.6)


@pytest.mark.parametrize("text, facial", [("show beam", True), ("in surprise", True), ("had to take the rebuke", False),
                                          ("the right answer", False), ("blorp the flibber", False)])
def test_a_facial_word_is_any_word_of_the_whole_knowledge_base(text, facial):
    from model_runtime.clauses import names_a_facial_word

    assert names_a_facial_word(text) is facial


# ---- stop 25: what WordNet's sentences and glosses showed ------------------------------------------------------------
@pytest.mark.parametrize("text, modifiers", [
    ("an uncertain smile", ["uncertain"]),
    ("his mad contorted smile", ["mad", "contorted"]),
    ("give a knowing smile", ["knowing"]),
    ("a roguish grin", ["roguish"]),
])
def test_other_adjectives_before_a_facial_noun_colour_it_as_modifiers(text, modifiers):
    seg, = parse_instruction(text).segments
    assert seg.text in ("smile", "grin")
    assert [(layer.text, layer.role) for layer in seg.layers] == [(m, "modifier") for m in modifiers]


@pytest.mark.parametrize("text, segment_text", [
    ("shy smile", "shy smile"),                     # a knowledge-base phrase stays whole
    ("show smile", "show smile"),                   # an instruction verb is not an adjective
    ("calmly grin", "calmly grin"),                 # a manner adverb is not an adjective
    ("the character: smile", "character smile"),   # the name of the face is not an adjective (a training template)
    ("a xyzzy smile", "xyzzy smile"),               # a word no English list has is left to the encoder whole
])
def test_what_is_not_an_adjective_before_a_facial_noun(text, segment_text):
    seg, = parse_instruction(text).segments
    assert seg.text == segment_text and seg.layers == ()


@pytest.mark.parametrize("text, action, segment_text", [
    ("express or signify by nodding", "nod", "nodding"),
    ("show surprise by opening the mouth", "open mouth", "opening the mouth"),
    ("the nodding grandmother in her rocking chair", "nod", "nodding"),
    ("a winking man", "wink", "winking"),
    ("let the head fall forward through drowsiness", "bow head", "let the head fall forward"),
    ("his head drooped", "bow head", "his head drooped"),
    ("the act of nodding the head", "nod", "nodding the head"),
])
def test_an_action_done_by_gerund_named_before_a_noun_or_let_happen_is_that_action(text, action, segment_text):
    seg, = parse_instruction(text).segments
    assert seg.action is not None and seg.action.name == action and seg.text == segment_text


@pytest.mark.parametrize("text", ["startled by a wink", "reassured by nods", "a gaping face", "gaping expression", "let the face fall"])
def test_a_cause_or_a_look_is_not_read_as_an_action(text):
    assert all(seg.action is None for seg in parse_instruction(text).segments)


def test_a_bracketed_alternative_is_an_aside_left_out_with_a_note():
    parsed = parse_instruction("the nodding (or napping) grandmother")
    seg, = parsed.segments
    assert seg.action is not None and seg.action.name == "nod"
    assert any("(or napping)" in note and "aside" in note for note in parsed.notes)
    plain = parse_instruction("smile (slowly)")
    assert plain.segments[0].speed == "slow" and plain.notes == ()  # a bracketed modifier is still read


@pytest.mark.parametrize("text, kind, main, held", [
    ("a sad face giving no evidence of interest or amusement", "expression", "sad face", "interest or amusement"),
    ("a serious facial expression giving no evidence of interest", "return", "neutral", "interest"),
    ("look surprised without a hint of fear", "expression", "look surprised", "fear"),
    ("not smiling", "return", "neutral", "smiling"),
    ("don't smile", "return", "neutral", "smile"),
    ("no sign of a smile", "return", "neutral", "a smile"),
])
def test_more_ways_of_saying_no_hold_their_part_at_rest(text, kind, main, held):
    seg, = parse_instruction(text).segments
    assert (seg.kind, seg.text) == (kind, main)
    assert [layer.text for layer in seg.layers if layer.role == "without"] == [held]
    assert seg.intensity is None  # "a hint of" inside the negation is not the face's intensity


def test_an_intensity_word_outside_the_negation_still_counts():
    assert parse_instruction("a very big smile without blinking").segments[0].intensity == pytest.approx(0.85)
    assert parse_instruction("a hint of a smile").segments[0].intensity == pytest.approx(0.2)


@pytest.mark.parametrize("text", ["unsmiling", "in an unsmiling manner", "look unsmiling", "look serious",
                                  "a serious facial expression", "a solemn face"])
def test_unsmiling_and_serious_faces_are_the_resting_face(text):
    seg, = parse_instruction(text).segments
    assert seg.kind == "return"


@pytest.mark.parametrize("text, main, held", [
    ("smile, not frown", "smile", "frown"),
    ("a smile, not a grin", "smile", "grin"),
    ("frown, but not angrily", "frown", "angrily"),
])
def test_a_denial_after_a_comma_is_held_in_the_face_before_it(text, main, held):
    parsed = parse_instruction(text)
    seg, = parsed.segments
    assert seg.text == main and [(layer.text, layer.role) for layer in seg.layers] == [(held, "without")]
    assert parsed.notes == ()  # what is held at rest contradicts nothing


@pytest.mark.parametrize("text", ["smile, but not too much", "smile, but not much", "grin, not all the way",
                                  "smile but not too much", "open the mouth, though not fully", "smile, not too wide",
                                  "smile, but not quite"])
def test_a_denied_degree_is_a_moderate_intensity_not_a_step_or_a_held_part(text):
    parsed = parse_instruction(text)
    seg, = parsed.segments
    assert seg.intensity == pytest.approx(0.5) and seg.layers == () and parsed.unplaced == ()


def test_a_part_held_at_rest_is_not_contradicted_by_a_later_part():
    parsed = parse_instruction("look calm without smiling while frowning")
    seg, = parsed.segments
    assert [(layer.text, layer.role) for layer in seg.layers] == [("smiling", "without"), ("frowning", "with")]
    assert parsed.notes == ()


@pytest.mark.parametrize("text, main, action, layers", [
    ("nod in a friendly way", "nod", "nod", [("friendly", "with")]),
    ("smile in a friendly manner", "smile", None, [("friendly", "with")]),
    ("in a menacing or scowling way", "menacing or scowling", None, []),
    ("with a pout or in a pouting manner", "pout", None, [("pouting", "with")]),
])
def test_a_manner_phrase_is_a_part_shown_with_what_it_describes(text, main, action, layers):
    seg, = parse_instruction(text).segments
    assert seg.text == main and (seg.action.name if seg.action else None) == action
    assert [(layer.text, layer.role) for layer in seg.layers] == layers


def test_a_denial_of_nothing_is_reported_not_read():
    parsed = parse_instruction("smile, not")
    assert [seg.text for seg in parsed.segments] == ["smile"] and parsed.unplaced == ("not",)


def test_a_held_text_part_keeps_what_a_shown_text_part_shows_too():
    smile = _w(mouthSmileLeft=0.6, cheekSquintLeft=0.4)
    grin = _w(mouthSmileLeft=0.7, mouthStretchLeft=0.5)
    held_grin = KeyPart(1, "grin", "expression", None, None, None, "without")
    out = combine([(_part(0, "main"), smile + _w(mouthStretchLeft=0.3)), (held_grin, grin)])
    assert out[CHANNEL_INDEX["mouthSmileLeft"]] == pytest.approx(0.6)  # the smile asked for stays
    assert out[CHANNEL_INDEX["mouthStretchLeft"]] == pytest.approx(0.3)  # shown by the main part too
    out = combine([(_part(0, "main"), smile), (held_grin, grin)])
    assert out[CHANNEL_INDEX["mouthSmileLeft"]] == pytest.approx(0.6) and out[CHANNEL_INDEX["mouthStretchLeft"]] == 0
    jaw = KeyPart(1, "opening the mouth", "expression", None, None, read_action("open the mouth"), "without")
    out = combine([(_part(0, "main"), _w(jawOpen=0.5, eyeWideLeft=0.4)), (jaw, _w(jawOpen=1.0))])
    assert out[CHANNEL_INDEX["jawOpen"]] == 0.0  # an action held at rest is held whatever the text shows


@pytest.mark.parametrize("text, main, intensity, speed", [
    ("roll your eyes in an exaggerated manner", "roll your eyes", 1.0, None),
    ("smile in a slow way", "smile", None, "slow"),
    ("smile in a subtle way", "smile", 0.35, None),
])
def test_a_manner_phrase_of_degree_or_speed_is_that_modifier_not_a_part(text, main, intensity, speed):
    seg, = parse_instruction(text).segments
    assert (seg.text, seg.intensity, seg.speed, seg.layers) == (main, intensity, speed, ())


@pytest.mark.parametrize("text, segments, modifiers", [
    ("a weak, watery smile", ["smile"], ["weak", "tearful"]),
    ("a warm, friendly smile, then a frown", ["smile", "frown"], ["warm", "friendly"]),
    ("a smile, a frown", ["smile", "frown"], []),          # two faces: the comma still separates them
    ("frown at the man, a smile", ["frown at the man", "smile"], []),  # a noun phrase ends before the comma
])
def test_a_comma_between_adjectives_of_one_facial_noun_does_not_end_a_step(text, segments, modifiers):
    parsed = parse_instruction(text)
    assert [seg.text for seg in parsed.segments] == segments
    assert [layer.text for layer in parsed.segments[0].layers] == modifiers
