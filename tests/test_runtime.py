"""End to end through the real MiniLM encoder and the retrieval baseline."""

import numpy as np
import pytest

from model_runtime import Runtime
from model_runtime.errors import InputError
from model_runtime.expression_space import CHANNEL_INDEX
from model_runtime.knowledge import concept_weights, get_concept


@pytest.fixture(scope="module")
def rt():
    return Runtime.load(model="baseline", device="cpu")


def family(segment):
    return get_concept(segment["concept"]).family


def test_smile_then_shocked_gives_happy_then_surprise(rt):
    anim = rt.generate("slowly smile, then look shocked", fps=30, seed=0)
    assert [family(s) for s in anim.segments] == ["happy", "surprise"]
    assert anim.frames.shape == (anim.num_frames, 52) and anim.frames.dtype == np.float32
    assert anim.frames.min() >= 0 and anim.frames.max() <= 1
    smile = anim.frames[anim.segments[0]["apex_frame"], CHANNEL_INDEX["mouthSmileLeft"]]
    jaw = anim.frames[anim.segments[1]["apex_frame"], CHANNEL_INDEX["jawOpen"]]
    assert smile > 0.3 and jaw > 0.2
    np.testing.assert_array_equal(anim.frames[0], 0)  # starts from neutral


@pytest.mark.parametrize("text, expected", [
    ("look disgusted", "disgust"), ("an angry scowl", "anger"), ("look terrified", "fear"),
    ("burst into tears", "sad"), ("grin from ear to ear", "happy"),
])
def test_retrieval_finds_the_family(rt, text, expected):
    assert family(rt.generate(text).segments[0]) == expected


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_asked_durations_are_kept_in_seconds(rt, fps):
    anim = rt.generate("smile over 2 seconds and hold for 1 second, then frown over 0.5 s", fps=fps)
    first, second = anim.segments
    assert abs((first["apex_frame"] - first["start_frame"]) - 2.0 * fps) <= 1
    assert abs((first["end_frame"] - first["apex_frame"]) - 1.0 * fps) <= 1
    assert abs((second["apex_frame"] - second["start_frame"]) - 0.5 * fps) <= 1


def test_duration_option_stretches_everything(rt):
    anim = rt.generate("smile, then frown, then relax", duration=6.0, fps=24)
    assert abs(anim.duration_s - 6.0) <= 1 / 24


def test_transition_starts_from_the_first_face(rt):
    anim = rt.generate("Transform this face from disgust to sadness")
    assert anim.segments[0]["start_frame"] == 0 and [family(s) for s in anim.segments] == ["disgust", "sad"]
    np.testing.assert_allclose(anim.frames[0], anim.frames[anim.segments[0]["apex_frame"]])
    assert anim.frames[0].sum() > 0.5


def test_return_to_neutral_ends_at_rest(rt):
    anim = rt.generate("smile, then relax")
    assert anim.segments[-1]["kind"] == "return"
    np.testing.assert_array_equal(anim.frames[-1], 0)


def test_intensity_words_order_the_apex(rt):
    def apex_smile(text):
        anim = rt.generate(text)
        return anim.frames[anim.segments[0]["apex_frame"], CHANNEL_INDEX["mouthSmileRight"]]

    assert apex_smile("a slight smile") < apex_smile("a smile") < apex_smile("an extremely big smile")


def test_intensity_scale_multiplies(rt):
    full = rt.generate("smile").frames
    half = rt.generate("smile", intensity=0.5).frames
    np.testing.assert_allclose(half, full * 0.5, atol=1e-6)


def test_sides_are_the_characters_own(rt):
    anim = rt.generate("wink with the left eye")
    apex = anim.frames[anim.segments[0]["apex_frame"]]
    assert apex[CHANNEL_INDEX["eyeBlinkLeft"]] > apex[CHANNEL_INDEX["eyeBlinkRight"]] + 0.3
    right = rt.generate("raise the right eyebrow")
    apex = right.frames[right.segments[0]["apex_frame"]]
    assert apex[CHANNEL_INDEX["browOuterUpRight"]] > apex[CHANNEL_INDEX["browOuterUpLeft"]]


def test_start_expression_is_the_first_frame(rt):
    start = concept_weights(get_concept("angry"))
    anim = rt.generate("smile", start=start)
    np.testing.assert_allclose(anim.frames[0], start, atol=1e-6)


def test_batch_equals_one_by_one(rt):
    texts = ["smile", "frown then relax", "look surprised, then wink"]
    for single, batched in zip([rt.generate(t) for t in texts], rt.generate_batch(texts)):
        np.testing.assert_array_equal(single.frames, batched.frames)
        assert single.segments == batched.segments


def test_unplaced_fragments_become_warnings(rt):
    anim = rt.generate("smile for banana seconds")
    assert anim.warnings and "banana" in anim.warnings[0]


def test_model_info_names_the_encoder(rt):
    info = rt.generate("smile").model
    assert info["name"] == "baseline" and info["text_encoder"] == "all-MiniLM-L6-v2"
    assert len(info["text_encoder_sha256"]) == 64


@pytest.mark.parametrize("kwargs, fragment", [
    ({"fps": 0}, "frame rate"), ({"fps": 241}, "frame rate"), ({"fps": 29.97}, "frame rate"),
    ({"seed": -1}, "seed"), ({"duration": 0}, "duration"), ({"duration": 601}, "duration"),
    ({"intensity": -0.1}, "intensity"), ({"intensity": float("nan")}, "intensity"),
    ({"start": np.zeros(51)}, "start expression"),
    ({"start": "abc"}, "start expression"), ({"start": [object()] * 52}, "start expression"),
    ({"start_image": 5}, "file path"), ({"life": "no"}, "life must be True or False"),
])
def test_bad_arguments_raise_one_sentence(rt, kwargs, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        rt.generate("smile", **kwargs)
    assert str(info.value).endswith(".")


def test_a_batch_given_as_one_string_is_refused_not_read_letter_by_letter(rt):
    with pytest.raises(InputError, match="list of instructions"):
        rt.generate_batch("smile")


@pytest.mark.parametrize("text", ["", "   \n", "x" * 2001, "smile\x00", "smile\x1b[31m"])
def test_bad_instructions_raise(rt, text):
    with pytest.raises(InputError):
        rt.generate(text)


def test_unknown_model_and_missing_cuda_are_refused():
    import torch

    with pytest.raises(InputError, match="Unknown model"):
        Runtime.load(model="gpt")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            Runtime.load(device="cuda")


def test_inference_runs_on_one_intra_op_thread_and_restores_the_callers(rt, monkeypatch):
    import torch

    seen = []
    key_expressions = rt.generator.key_expressions
    monkeypatch.setattr(rt.generator, "key_expressions",
                        lambda *a, **k: seen.append(torch.get_num_threads()) or key_expressions(*a, **k))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rt.generate("smile, then frown")
        assert seen == [1] and torch.get_num_threads() == 2
        with pytest.raises(InputError):
            rt.generate("smile", fps=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
