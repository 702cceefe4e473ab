import pytest

from model_runtime.expression_space import ARKIT_CHANNELS
from model_runtime.heads.rig_names import ChannelMatch, match_channels, normalize_channel_name, parse_channel_name

POSITIVE = [
    # Apple / ICT-FaceKit / generic DCC spellings
    ("mouthSmileLeft", "mouthSmileLeft"),
    ("mouthSmile_L", "mouthSmileLeft"),
    ("mouthSmile_R", "mouthSmileRight"),
    ("MouthSmileLeft", "mouthSmileLeft"),
    ("mouth_smile_l", "mouthSmileLeft"),
    ("mouth_smile_right", "mouthSmileRight"),
    ("MOUTH_SMILE_LEFT", "mouthSmileLeft"),
    ("mouthsmileleft", "mouthSmileLeft"),
    ("mouthSmile.L", "mouthSmileLeft"),
    ("mouthSmile.R", "mouthSmileRight"),
    ("L_mouthSmile", "mouthSmileLeft"),
    ("mouthPressL", "mouthPressLeft"),
    ("eyeBlink_R", "eyeBlinkRight"),
    ("eyeLookIn_L", "eyeLookInLeft"),
    ("EyeLookOut_R", "eyeLookOutRight"),
    ("browDown_L", "browDownLeft"),
    ("jawOpen", "jawOpen"),
    ("JawOpen", "jawOpen"),
    ("jaw_open", "jawOpen"),
    ("tongueOut", "tongueOut"),
    ("mouth_roll_upper", "mouthRollUpper"),
    ("mouthLeft", "mouthLeft"),
    ("jawleft", "jawLeft"),
    ("EyeClosedLeft", "eyeBlinkLeft"),
    # prefixes, namespaces, Blender duplicates
    ("Face.mouthSmileLeft", "mouthSmileLeft"),
    ("Face.mouthSmile.L", "mouthSmileLeft"),
    ("BS_mouthSmileLeft", "mouthSmileLeft"),
    ("blendShape1.mouthSmileLeft", "mouthSmileLeft"),
    ("ARKit_eyeWideRight", "eyeWideRight"),
    ("A01_Brow_Inner_Up", "browInnerUp"),
    ("head|cheekPuff", "cheekPuff"),
    ("mouthSmileLeft.001", "mouthSmileLeft"),
    # Character Creator 4
    ("Mouth_Smile_L", "mouthSmileLeft"),
    ("Eye_Blink_L", "eyeBlinkLeft"),
    ("Eye_Wide_R", "eyeWideRight"),
    ("Eye_Squint_L", "eyeSquintLeft"),
    ("Brow_Drop_L", "browDownLeft"),
    ("Brow_Raise_Outer_R", "browOuterUpRight"),
    ("Cheek_Raise_L", "cheekSquintLeft"),
    ("Nose_Sneer_R", "noseSneerRight"),
    ("Mouth_Up_Upper_L", "mouthUpperUpLeft"),
    ("Mouth_Down_Lower_R", "mouthLowerDownRight"),
    ("Mouth_Frown_L", "mouthFrownLeft"),
    ("Mouth_Dimple_R", "mouthDimpleRight"),
    ("Mouth_Shrug_Upper", "mouthShrugUpper"),
    ("Mouth_Close", "mouthClose"),
    ("Mouth_L", "mouthLeft"),
    ("Jaw_R", "jawRight"),
    ("Jaw_Forward", "jawForward"),
    ("Eye_L_Look_L", "eyeLookOutLeft"),
    ("Eye_L_Look_R", "eyeLookInLeft"),
    ("Eye_R_Look_L", "eyeLookInRight"),
    ("Eye_R_Look_R", "eyeLookOutRight"),
    ("Eye_L_Look_Up", "eyeLookUpLeft"),
    ("Eye_R_Look_Down", "eyeLookDownRight"),
]

NEGATIVE = [
    "Basis", "mouthSmile", "eyeBlink", "Eye_Blink", "MouthSmile", "jaw", "mouth", "L", "", "Smile_L", "Key 1",
    "viseme_aa", "Brow_Compress_L", "Mouth_Smile_Sharp_L", "cheekPuffy", "eyeLook_L", "mouthSmileUp",
    # parts of an unsided channel are not the channel itself
    "browInnerUp_L", "Brow_Raise_Inner_R", "Cheek_Puff_L", "Mouth_Funnel_Up_L", "Mouth_Roll_In_Lower_R",
]


@pytest.mark.parametrize("name, channel", POSITIVE)
def test_real_spellings_normalize(name, channel):
    assert normalize_channel_name(name) == channel


@pytest.mark.parametrize("name", NEGATIVE)
def test_non_channels_do_not_match(name):
    assert normalize_channel_name(name) is None


@pytest.mark.parametrize("channel", ARKIT_CHANNELS)
def test_every_canonical_name_is_itself(channel):
    assert normalize_channel_name(channel) == channel
    assert normalize_channel_name(channel.upper()) == channel


@pytest.mark.parametrize("name, channel", [("browInnerUp_L", "browInnerUp"), ("Cheek_Puff_R", "cheekPuff"),
                                           ("Mouth_Pucker_Down_L", "mouthPucker"),
                                           ("Mouth_Roll_In_Upper_L", "mouthRollUpper")])
def test_parts_of_unsided_channels(name, channel):
    assert parse_channel_name(name) == (channel, True)


def test_full_arkit_rig_matches_completely():
    m = match_channels(["Basis", *ARKIT_CHANNELS])
    assert isinstance(m, ChannelMatch)
    assert m.mapping == {c: c for c in ARKIT_CHANNELS}
    assert m.unmatched_channels == () and m.unmatched_names == ("Basis",) and m.ambiguous == {} and m.split == {}


def test_ict_style_rig_and_unmatched_reporting():
    names = ["Neutral", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R", "jawOpen", "mouthSmile"]
    m = match_channels(names)
    assert m.mapping == {"eyeBlinkLeft": "eyeBlink_L", "eyeBlinkRight": "eyeBlink_R", "jawOpen": "jawOpen",
                         "mouthSmileLeft": "mouthSmile_L", "mouthSmileRight": "mouthSmile_R"}
    assert m.unmatched_names == ("Neutral", "mouthSmile")
    assert len(m.unmatched_channels) == 47
    assert list(m.unmatched_channels) == [c for c in ARKIT_CHANNELS if c not in m.mapping]


def test_ambiguity_prefers_exact_spelling_then_shortest():
    m = match_channels(["Mouth_Smile_L", "mouthSmileLeft", "BS_mouthSmileLeft", "mouthSmile_R", "Mouth_Smile_R"])
    assert m.mapping["mouthSmileLeft"] == "mouthSmileLeft"
    assert m.ambiguous["mouthSmileLeft"] == ("mouthSmileLeft", "Mouth_Smile_L", "BS_mouthSmileLeft")
    assert m.mapping["mouthSmileRight"] == "mouthSmile_R"  # shortest
    assert set(m.ambiguous["mouthSmileRight"]) == {"mouthSmile_R", "Mouth_Smile_R"}
    # deterministic whatever the input order
    again = match_channels(reversed(["Mouth_Smile_L", "mouthSmileLeft", "BS_mouthSmileLeft", "mouthSmile_R",
                                     "Mouth_Smile_R"]))
    assert again.mapping == m.mapping and again.ambiguous == m.ambiguous


def test_character_creator_split_channels():
    names = ["Brow_Raise_Inner_L", "Brow_Raise_Inner_R", "Cheek_Puff_L", "Cheek_Puff_R", "Mouth_Funnel_Up_L",
             "Mouth_Funnel_Up_R", "Mouth_Funnel_Down_L", "Mouth_Funnel_Down_R", "Mouth_Smile_L"]
    m = match_channels(names)
    assert m.split["browInnerUp"] == ("Brow_Raise_Inner_L", "Brow_Raise_Inner_R")
    assert len(m.split["mouthFunnel"]) == 4
    assert m.keys_for("cheekPuff") == ("Cheek_Puff_L", "Cheek_Puff_R")
    assert m.keys_for("mouthSmileLeft") == ("Mouth_Smile_L",)
    assert m.keys_for("jawOpen") == ()
    assert "browInnerUp" not in m.unmatched_channels and "jawOpen" in m.unmatched_channels
    # a whole key wins; the parts become spare names
    m2 = match_channels(["browInnerUp", "browInnerUp_L", "browInnerUp_R"])
    assert m2.mapping["browInnerUp"] == "browInnerUp" and m2.split == {}
    assert m2.unmatched_names == ("browInnerUp_L", "browInnerUp_R")
