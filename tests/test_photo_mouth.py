"""The mouth corners' place in an open mouth (photo/mouth.py) and the smile bound the calibration makes of it: on
landmarks built by hand (known gap and corner heights, turned and scaled as a photo shows them), on renders of the
default head at known weights, and on a real speaking face."""

import numpy as np
import pytest

from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.photo.mouth import CORNERS, LOWER_LIP, OPEN_FROM, OPEN_FULL, UPPER_LIP, mouth_measures, \
    smile_bound


def hand_made_face(gap: float, left: float, right: float, roll_deg: float = 0.0, scale: float = 140.0,
                   tilt_deg: float = 0.0) -> np.ndarray:
    """478 landmarks in image coordinates (y down) whose face, in its own axes (eye-corner distance 1, y up), has the
    given inner lip gap and corner heights above the lower lip; rolled in the image and tilted toward the camera."""
    face = np.zeros((478, 3))
    face[33], face[263] = (-0.5, 0.3, 0.0), (0.5, 0.3, 0.0)  # outer eye corners
    face[10], face[152] = (0.0, 0.9, 0.0), (0.0, -0.9, 0.0)  # forehead, chin
    face[1] = (0.0, 0.0, 0.3)  # nose tip
    lower = -0.45
    face[LOWER_LIP], face[UPPER_LIP] = (0.0, lower, 0.1), (0.0, lower + gap, 0.1)
    face[CORNERS["mouthSmileLeft"]] = (0.25, lower + left, 0.0)
    face[CORNERS["mouthSmileRight"]] = (-0.25, lower + right, 0.0)
    t, r = np.radians(tilt_deg), np.radians(roll_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    placed = face @ tilt.T @ roll.T * scale
    placed[:, 1] *= -1  # image y runs down
    return placed + np.array([320.0, 240.0, 0.0])


@pytest.mark.parametrize("roll, scale, tilt", [(0.0, 140.0, 0.0), (25.0, 60.0, 0.0), (-15.0, 300.0, 20.0)])
def test_measures_follow_the_face_not_the_picture(roll, scale, tilt):
    """Gap in eye-corner distances and each corner's place in it (0 lower lip, 1 upper lip), whatever the roll,
    size and tilt (the face frame is taken from the face itself)."""
    measures = mouth_measures(hand_made_face(0.3, left=0.27, right=0.15, roll_deg=roll, scale=scale, tilt_deg=tilt))
    assert measures[0] == pytest.approx(0.3, abs=1e-9)
    np.testing.assert_allclose(measures[1:], [0.9, 0.5], atol=1e-9)
    closed = mouth_measures(hand_made_face(0.0, left=0.01, right=0.0, roll_deg=roll, scale=scale))
    assert closed[0] == pytest.approx(0.0, abs=1e-9) and np.isnan(closed[1:]).all()
    assert np.isnan(mouth_measures(np.zeros((478, 3)))).all()  # no face frame: nothing measured, and no warning


def test_smile_bound():
    none, full = 0.55, 0.8
    wide = OPEN_FULL + 0.1
    bound = smile_bound(np.array([[wide, 0.5, 0.55], [wide, 0.8, 0.9], [wide, 0.675, 0.6]]), none, full)
    np.testing.assert_allclose(bound, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    assert np.all(smile_bound(np.array([0.0, np.nan, np.nan]), none, full) == 1.0)  # closed lips bound nothing
    assert np.all(smile_bound(np.full(3, np.nan), none, full) == 1.0)  # nor does a face with nothing measured
    halfway = smile_bound(np.array([(OPEN_FROM + OPEN_FULL) / 2, 0.5, 0.5]), none, full)  # fades in as lips part
    np.testing.assert_allclose(halfway, [0.5, 0.5])


def test_the_shipped_bound_sits_between_a_dropped_jaw_and_a_smile():
    """The calibration's two places, measured on renders: a jaw dropped without a smile and an open-mouthed smile of
    the default head (other weights than the calibration's) fall on either side."""
    from model_runtime.heads.render import render_expressions
    from model_runtime.photo.blendshapes import get_landmarker
    from model_runtime.photo.calibration import load_calibration

    none, full = load_calibration().smile_places
    assert 0.3 < none < full < 1.2
    landmarker = get_landmarker()

    def places(**channels):
        w = np.zeros(NUM_CHANNELS, np.float32)
        for name, value in channels.items():
            w[CHANNEL_INDEX[name]] = value
        measures = mouth_measures(landmarker.read_image(render_expressions(w, 288)).landmarks)
        assert measures[0] > OPEN_FULL
        return measures[1:]

    assert np.all(places(jawOpen=0.7) < none)
    assert np.all(places(jawOpen=0.4, mouthSmileLeft=1.0, mouthSmileRight=1.0) > (none + full) / 2)


def test_a_speaking_mouth_is_not_read_as_a_smile():
    """The landmarker scores mouthSmile 0.67 on this speaking face (expectations.json: smile quiet); the corners sit
    mid-way in the opening, so the reading stays below the judge's line, while open-mouthed smiles keep theirs."""
    from benchmarks.bench_photo_real import PHOTOS, load_expectations
    from model_runtime.photo import read_start_expression

    quiet_max = load_expectations()["quiet_max"]
    speaking = read_start_expression(PHOTOS / "speaking_obama.jpg")
    smiles = [CHANNEL_INDEX[name] for name in CORNERS]
    assert speaking.scores[smiles].max() > 0.6 and speaking.weights[smiles].max() < quiet_max
    for grin in ("grin_obama.jpg", "smile_open_collins.jpg"):
        assert read_start_expression(PHOTOS / grin).weights[smiles].min() > 0.5
