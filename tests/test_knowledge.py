import re

import numpy as np
import pytest

from model_runtime.errors import InputError
from model_runtime.expression_space import (
    AU_TO_CHANNELS,
    CHANNEL_INDEX,
    LEFT_CHANNELS,
    NUM_CHANNELS,
    RIGHT_CHANNELS,
    mirror_weights,
)
from model_runtime.knowledge import (
    DU_CATEGORIES,
    FAMILIES,
    GOEMOTIONS_CATEGORIES,
    GOEMOTIONS_FAMILY,
    KINDS,
    UNDECODABLE_AUS,
    Concept,
    active_aus,
    all_concepts,
    concept_aus,
    concept_weights,
    get_concept,
    sample_concept_weights,
)

CONCEPTS = all_concepts()
NAMES = [c.name for c in CONCEPTS]
ONE_SIDED = ["smirk", "wink", "contemptuous", "raise_one_eyebrow", "sneer", "confusion"]
BASIC = ["happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous"]


def _norm(text):
    return " ".join(text.lower().replace("-", " ").split())


def test_table_is_well_formed():
    assert all_concepts() is CONCEPTS  # cached
    assert len(set(NAMES)) == len(NAMES)
    for c in CONCEPTS:
        assert isinstance(c, Concept)
        assert re.fullmatch(r"[a-z][a-z_]*[a-z]", c.name), c.name
        assert c.family in FAMILIES and c.kind in KINDS, c.name
        assert c.label and "_" not in c.label and not re.search(r"\d", c.label), c.label
        assert len(c.phrases) >= 4, c.name
        assert c.source, c.name
        for a in c.aus:
            assert a.au in AU_TO_CHANNELS and 0 < a.intensity <= 1 and a.side in ("both", "left", "right")
        for ch, v in c.extra:
            assert ch in CHANNEL_INDEX and 0 < v <= 1


def test_labels_and_phrases_are_unique_across_concepts():
    owner = {}
    for c in CONCEPTS:
        for text in {_norm(c.label), *map(_norm, c.phrases)}:
            assert text not in owner, f"{text!r} in both {owner.get(text)} and {c.name}"
            owner[text] = c.name


@pytest.mark.parametrize("phrase, name", [("look shocked", "surprised"), ("break into a smile", "smile"),
                                          ("shy smile", "shy_smile"), ("gasp in surprise", "surprised"),
                                          ("astonished", "surprised"), ("weep", "cry"), ("keep a straight face",
                                                                                         "neutral"),
                                          ("grin from ear to ear", "grin"), ("raise one eyebrow",
                                                                             "raise_one_eyebrow")])
def test_key_phrases_belong_to_the_right_concept(phrase, name):
    assert phrase in get_concept(name).phrases


def test_coverage_counts():
    kinds = {k: sum(c.kind == k for c in CONCEPTS) for k in KINDS}
    assert kinds["neutral"] == 1 and kinds["basic"] == 7 and kinds["compound"] == 15
    assert kinds["goemotions"] == 21 and kinds["action"] >= 35
    for name in DU_CATEGORIES:
        assert get_concept(name).kind in ("basic", "compound")
    assert len(DU_CATEGORIES) == 21 and len(set(DU_CATEGORIES)) == 21


@pytest.mark.parametrize("name", GOEMOTIONS_CATEGORIES)
def test_all_27_goemotions_resolve_with_their_family(name):
    assert len(GOEMOTIONS_CATEGORIES) == 27
    assert get_concept(name).family == GOEMOTIONS_FAMILY[name]


@pytest.mark.parametrize("name", ["smile", "grin", "smirk", "simper", "beam", "frown", "scowl", "glare", "grimace",
                                  "pout", "sneer", "snarl", "wince", "gape", "wink", "blink", "squint", "yawn", "laugh",
                                  "cry", "sigh", "kiss", "puff_cheeks", "raise_eyebrows", "raise_one_eyebrow",
                                  "furrow_brows", "wrinkle_nose", "clench_jaw", "press_lips", "bite_lip",
                                  "tongue_out", "look_left", "look_right", "look_up", "look_down", "shy_smile"])
def test_required_actions_exist(name):
    assert get_concept(name).kind == "action"


def test_get_concept_aliases_labels_and_errors():
    assert get_concept("anger").name == "angry" and get_concept("Joy").name == "happy"
    assert get_concept("happily surprised").name == "happily_surprised"
    assert get_concept("afraid").name == "fearful"  # by label
    with pytest.raises(KeyError, match="happy"):
        get_concept("hapy")


@pytest.mark.parametrize("concept", CONCEPTS, ids=NAMES)
def test_weights_are_bounded_float32_and_nonzero(concept):
    for kwargs in ({}, {"include_variants": True}, {"side": "left"}, {"side": "right"}, {"intensity": 3.0}):
        w = concept_weights(concept, **kwargs)
        assert w.shape == (NUM_CHANNELS,) and w.dtype == np.float32
        assert w.min() >= 0 and w.max() <= 1
        assert (w.max() == 0) == (concept.name == "neutral"), kwargs


def test_intensity_scales_and_is_validated():
    full, half = concept_weights("sad"), concept_weights("sad", intensity=0.5)
    assert np.allclose(half, full * 0.5, atol=1e-6)
    with pytest.raises(InputError):
        concept_weights("sad", intensity=-1)
    with pytest.raises(InputError):
        concept_weights("sad", side="up")


@pytest.mark.parametrize("name", ONE_SIDED)
def test_one_sided_concepts_are_asymmetric_and_mirror(name):
    w = concept_weights(name)
    left, right = w[list(LEFT_CHANNELS)], w[list(RIGHT_CHANNELS)]
    assert not np.allclose(left, right)
    m = mirror_weights(w)
    assert np.array_equal(m[list(LEFT_CHANNELS)], right) and np.array_equal(m[list(RIGHT_CHANNELS)], left)
    on_left, on_right = concept_weights(name, side="left"), concept_weights(name, side="right")
    assert np.array_equal(on_right, mirror_weights(on_left))
    assert on_left[list(LEFT_CHANNELS)].sum() > on_left[list(RIGHT_CHANNELS)].sum()


def test_sided_defaults_follow_the_sources():
    contempt = concept_weights("contemptuous")  # R12A + R14A
    assert contempt[CHANNEL_INDEX["mouthSmileRight"]] > 0 and contempt[CHANNEL_INDEX["mouthSmileLeft"]] == 0
    wink = concept_weights("wink")
    assert wink[CHANNEL_INDEX["eyeBlinkLeft"]] == 1 and wink[CHANNEL_INDEX["eyeBlinkRight"]] == 0


def test_symmetric_concept_made_one_sided():
    w = concept_weights("smile", side="right")
    assert w[CHANNEL_INDEX["mouthSmileRight"]] > 0 and w[CHANNEL_INDEX["mouthSmileLeft"]] == 0
    s = concept_weights("surprised", side="left")
    assert s[CHANNEL_INDEX["jawOpen"]] == pytest.approx(concept_weights("surprised")[CHANNEL_INDEX["jawOpen"]] / 2)


def test_gaze_is_the_characters_own_side():
    w = concept_weights("look_left")
    assert w[CHANNEL_INDEX["eyeLookOutLeft"]] == 1 and w[CHANNEL_INDEX["eyeLookInRight"]] == 1
    assert np.array_equal(concept_weights("look_right"), mirror_weights(w))


def test_basic_emotion_prototypes_hold_the_emfacs_aus():
    expected = {"happy": {6, 12}, "sad": {1, 4, 15}, "surprised": {1, 2, 5, 26}, "fearful": {1, 2, 4, 5, 7, 20, 26},
                "angry": {4, 5, 7, 23}, "disgusted": {9, 15, 16}, "contemptuous": {12, 14}}
    for name, aus in expected.items():
        assert aus <= concept_aus(name), name
    assert {a.side for a in get_concept("contemptuous").aus} == {"right"}


def test_du_core_and_variant_aus():
    c = get_concept("fearfully_surprised")
    assert concept_aus(c) == {1, 2, 5, 20, 25}
    assert concept_aus(c, include_variants=True) == {1, 2, 4, 5, 10, 11, 20, 25, 26}
    assert concept_aus("sad", include_variants=True) - concept_aus("sad") == {6, 11, 17}


@pytest.mark.parametrize("name", BASIC)
def test_active_aus_recovers_basic_emotions(name):
    assert concept_aus(name) <= active_aus(concept_weights(name))


@pytest.mark.parametrize("concept", CONCEPTS, ids=NAMES)
def test_active_aus_recovers_core_aus_exactly(concept):
    """Stricter than required: the decoder reads back exactly the core AUs of every concept."""
    assert active_aus(concept_weights(concept)) == concept_aus(concept) - UNDECODABLE_AUS


def test_active_aus_separates_overlapping_aus():
    def w(**channels):
        v = np.zeros(NUM_CHANNELS)
        for k, x in channels.items():
            v[CHANNEL_INDEX[k]] = x
        return v

    assert active_aus(w(jawOpen=0.5)) == {26}
    assert active_aus(w(jawOpen=0.9)) == {27}
    assert active_aus(w(mouthPressLeft=1.0, mouthPressRight=1.0)) == {24}
    assert active_aus(w(mouthRollLower=1.0, mouthRollUpper=1.0)) == {28}
    assert active_aus(w(eyeBlinkLeft=1.0)) == {46}
    assert active_aus(w(eyeBlinkLeft=1.0, eyeBlinkRight=1.0)) == {43}
    assert active_aus(w(mouthSmileRight=0.3)) == {12}
    assert active_aus(w(mouthSmileRight=0.1)) == frozenset()
    assert active_aus(np.zeros(NUM_CHANNELS)) == frozenset()


def test_sampling_is_deterministic_varied_and_bounded():
    for name in ("angry", "sad", "smirk", "fearfully_disgusted"):
        a = sample_concept_weights(name, np.random.default_rng(7))
        b = sample_concept_weights(name, np.random.default_rng(7))
        c = sample_concept_weights(name, np.random.default_rng(8))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert a.dtype == np.float32 and a.shape == (NUM_CHANNELS,) and a.min() >= 0 and a.max() <= 1


def test_sampling_keeps_core_and_sometimes_adds_variants():
    rng = np.random.default_rng(0)
    samples = [sample_concept_weights("sad", rng) for _ in range(200)]
    for s in samples:
        assert {1, 4, 15} <= active_aus(s)
    chin = np.array([s[CHANNEL_INDEX["mouthShrugLower"]] > 0 for s in samples])  # AU17 is a variant of sad
    assert 0.2 < chin.mean() < 0.5
    never = [sample_concept_weights("sad", rng, variant_prob=0.0) for _ in range(20)]
    assert all(s[CHANNEL_INDEX["mouthShrugLower"]] == 0 for s in never)
    mean = np.mean(samples, axis=0)  # jitter is centred: core channels average to the prototype
    assert abs(mean[CHANNEL_INDEX["browInnerUp"]] - concept_weights("sad")[CHANNEL_INDEX["browInnerUp"]]) < 0.05


def test_sampling_asymmetry_is_slight():
    rng = np.random.default_rng(1)
    for _ in range(50):
        s = sample_concept_weights("smile", rng, jitter=0.0, variant_prob=0.0)
        l, r = s[CHANNEL_INDEX["mouthSmileLeft"]], s[CHANNEL_INDEX["mouthSmileRight"]]
        assert abs(l - r) <= 0.2 * max(l, r) + 1e-6
    flat = sample_concept_weights("smile", rng, jitter=0.0, asymmetry=0.0)
    assert np.allclose(flat, concept_weights("smile"))
