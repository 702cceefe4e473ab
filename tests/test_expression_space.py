import numpy as np
import pytest

from model_runtime.expression_space import (
    ARKIT_CHANNELS,
    AU_NAMES,
    AU_TO_CHANNELS,
    CENTER_CHANNELS,
    CHANNEL_INDEX,
    LEFT_CHANNELS,
    MIRROR_INDEX,
    NUM_CHANNELS,
    RIGHT_CHANNELS,
    au_channels_for_side,
    mirror_weights,
)


def test_mirror_index_is_an_involution_pairing_left_with_right():
    assert len(MIRROR_INDEX) == NUM_CHANNELS
    assert all(MIRROR_INDEX[MIRROR_INDEX[i]] == i for i in range(NUM_CHANNELS))
    for i, name in enumerate(ARKIT_CHANNELS):
        if name.endswith("Left"):
            assert ARKIT_CHANNELS[MIRROR_INDEX[i]] == name[:-4] + "Right"
        elif not name.endswith("Right"):
            assert MIRROR_INDEX[i] == i


@pytest.mark.parametrize("a, b", [("jawLeft", "jawRight"), ("mouthLeft", "mouthRight"),
                                  ("eyeLookInLeft", "eyeLookInRight"), ("eyeLookOutLeft", "eyeLookOutRight"),
                                  ("mouthSmileLeft", "mouthSmileRight")])
def test_specific_mirror_pairs(a, b):
    assert MIRROR_INDEX[CHANNEL_INDEX[a]] == CHANNEL_INDEX[b]


def test_side_tables_partition_the_channels():
    assert len(LEFT_CHANNELS) == len(RIGHT_CHANNELS) == 20 and len(CENTER_CHANNELS) == 12
    assert sorted(LEFT_CHANNELS + RIGHT_CHANNELS + CENTER_CHANNELS) == list(range(NUM_CHANNELS))
    assert all(ARKIT_CHANNELS[i].endswith("Left") for i in LEFT_CHANNELS)
    assert all(MIRROR_INDEX[l] == r for l, r in zip(LEFT_CHANNELS, RIGHT_CHANNELS))


def test_mirror_weights_swaps_sides_on_batches_and_keeps_dtype():
    rng = np.random.default_rng(0)
    w = rng.random((3, 4, NUM_CHANNELS)).astype(np.float32)
    m = mirror_weights(w)
    assert m.dtype == np.float32 and m.shape == w.shape
    assert np.array_equal(m[..., CHANNEL_INDEX["eyeBlinkLeft"]], w[..., CHANNEL_INDEX["eyeBlinkRight"]])
    assert np.array_equal(m[..., CHANNEL_INDEX["jawOpen"]], w[..., CHANNEL_INDEX["jawOpen"]])
    assert np.array_equal(mirror_weights(m), w)
    with pytest.raises(ValueError):
        mirror_weights(np.zeros(51))


def test_au_table_names_real_channels_with_positive_weights():
    assert set(AU_TO_CHANNELS) == set(AU_NAMES)
    for au, channels in AU_TO_CHANNELS.items():
        assert channels, au
        for name, weight in channels:
            assert name in CHANNEL_INDEX, (au, name)
            assert 0 < weight <= 1, (au, name)


def test_reference_correspondences():
    def names(au):
        return {n for n, _ in AU_TO_CHANNELS[au]}

    assert names(1) == {"browInnerUp"}
    assert names(12) == {"mouthSmileLeft", "mouthSmileRight"}
    assert names(45) == {"eyeBlinkLeft", "eyeBlinkRight"}
    assert names(61) == {"eyeLookOutLeft", "eyeLookInRight"}  # towards the character's own left
    jaw = {au: dict(AU_TO_CHANNELS[au])["jawOpen"] for au in (25, 26, 27)}
    assert jaw[25] < jaw[26] < jaw[27]


def test_one_sided_au_keeps_its_side_and_halves_unsided_channels():
    assert au_channels_for_side(12, "left") == (("mouthSmileLeft", 1.0),)
    assert au_channels_for_side(12, "both") == AU_TO_CHANNELS[12]
    left25 = dict(au_channels_for_side(25, "right"))
    assert set(left25) == {"jawOpen", "mouthLowerDownRight"}
    assert left25["jawOpen"] == pytest.approx(dict(AU_TO_CHANNELS[25])["jawOpen"] / 2)
    assert au_channels_for_side(30, "left") == (("jawLeft", 1.0),)
    with pytest.raises(ValueError):
        au_channels_for_side(12, "middle")
    with pytest.raises(KeyError):
        au_channels_for_side(99, "both")
