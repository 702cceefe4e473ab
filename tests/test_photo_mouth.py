"""The mouth corners' place in an open mouth and the mouth's width (photo/mouth.py), the smile bound and the closed
lips' smile floor the calibration makes of them: on landmarks built by hand (known gap, corner heights and width,
turned and scaled as a photo shows them), on renders of the default head at known weights, and on real faces."""

import numpy as np
import pytest

from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.photo.mouth import CORNERS, LOWER_LIP, OPEN_FROM, OPEN_FULL, OUTER_CORNERS, UPPER_LIP, \
    mouth_measures, smile_bound, smile_floor


def hand_made_face(gap: float, left: float, right: float, roll_deg: float = 0.0, scale: float = 140.0,
                   tilt_deg: float = 0.0, width: float = 0.6) -> np.ndarray:
    """478 landmarks in image coordinates (y down) whose face, in its own axes (eye-corner distance 1, y up), has the
    given inner lip gap, corner heights above the lower lip and mouth width; rolled in the image and tilted toward
    the camera."""
    face = np.zeros((478, 3))
    face[33], face[263] = (-0.5, 0.3, 0.0), (0.5, 0.3, 0.0)  # outer eye corners
    face[10], face[152] = (0.0, 0.9, 0.0), (0.0, -0.9, 0.0)  # forehead, chin
    face[1] = (0.0, 0.0, 0.3)  # nose tip
    lower = -0.45
    face[LOWER_LIP], face[UPPER_LIP] = (0.0, lower, 0.1), (0.0, lower + gap, 0.1)
    face[CORNERS["mouthSmileLeft"]] = (0.25, lower + left, 0.0)
    face[CORNERS["mouthSmileRight"]] = (-0.25, lower + right, 0.0)
    face[OUTER_CORNERS[0]], face[OUTER_CORNERS[1]] = (width / 2, lower, -0.05), (-width / 2, lower, -0.05)
    t, r = np.radians(tilt_deg), np.radians(roll_deg)
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    placed = face @ tilt.T @ roll.T * scale
    placed[:, 1] *= -1  # image y runs down
    return placed + np.array([320.0, 240.0, 0.0])


@pytest.mark.parametrize("roll, scale, tilt", [(0.0, 140.0, 0.0), (25.0, 60.0, 0.0), (-15.0, 300.0, 20.0)])
def test_measures_follow_the_face_not_the_picture(roll, scale, tilt):
    """Gap in eye-corner distances, each corner's place in it (0 lower lip, 1 upper lip) and the mouth's width,
    whatever the roll, size and tilt (the face frame is taken from the face itself)."""
    measures = mouth_measures(hand_made_face(0.3, left=0.27, right=0.15, roll_deg=roll, scale=scale, tilt_deg=tilt,
                                             width=0.7))
    assert measures[0] == pytest.approx(0.3, abs=1e-9)
    np.testing.assert_allclose(measures[1:], [0.9, 0.5, 0.7], atol=1e-9)
    closed = mouth_measures(hand_made_face(0.0, left=0.01, right=0.0, roll_deg=roll, scale=scale, width=0.55))
    assert closed[0] == pytest.approx(0.0, abs=1e-9) and np.isnan(closed[1:3]).all()
    assert closed[3] == pytest.approx(0.55, abs=1e-9)
    assert np.isnan(mouth_measures(np.zeros((478, 3)))).all()  # no face frame: nothing measured, and no warning


def test_smile_bound():
    none, full = 0.55, 0.8
    wide = OPEN_FULL + 0.1
    bound = smile_bound(np.array([[wide, 0.5, 0.55, 0.6], [wide, 0.8, 0.9, 0.6], [wide, 0.675, 0.6, 0.6]]), none, full)
    np.testing.assert_allclose(bound, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    assert np.all(smile_bound(np.array([0.0, np.nan, np.nan, 0.6]), none, full) == 1.0)  # closed lips bound nothing
    assert np.all(smile_bound(np.full(4, np.nan), none, full) == 1.0)  # nor does a face with nothing measured
    halfway = smile_bound(np.array([(OPEN_FROM + OPEN_FULL) / 2, 0.5, 0.5, 0.6]), none, full)  # fades in as lips part
    np.testing.assert_allclose(halfway, [0.5, 0.5])


def test_smile_floor():
    """Closed lips: the width above the neutral one through the map; parted lips fade it out; narrower than neutral,
    or nothing measured, gives none."""
    kx, ky = np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.4, 1.0])
    floor = smile_floor(np.array([[0.0, np.nan, np.nan, 0.65], [0.0, np.nan, np.nan, 0.75],
                                  [0.0, np.nan, np.nan, 0.5], [OPEN_FULL, 0.9, 0.9, 0.75],
                                  [(OPEN_FROM + OPEN_FULL) / 2, 0.9, 0.9, 0.75]]), 0.6, kx, ky)
    np.testing.assert_allclose(floor[:, 0], [0.2, 0.7, 0.0, 0.0, 0.35])
    assert smile_floor(np.full(4, np.nan), 0.6, kx, ky) == 0.0


def test_the_width_map_is_fitted_on_closed_lips():
    """Renders made up so that closed lips widen by 0.1 per unit of smile (and open ones by anything): the map reads
    a smile of 0.5 from a mouth 0.05 wider than at rest."""
    from model_runtime.photo.calibration import fit_width_map

    rng = np.random.default_rng(5)
    weights = np.zeros((400, NUM_CHANNELS), np.float32)
    smile = rng.uniform(0.0, 1.0, 400)
    weights[:, [CHANNEL_INDEX[name] for name in CORNERS]] = smile[:, None]
    gap = np.where(np.arange(400) % 4 == 0, 0.3, 0.0)
    width = np.where(gap > 0, 0.9, 0.6 + 0.1 * smile)
    mouth = np.stack([gap, np.full(400, np.nan), np.full(400, np.nan), width], axis=1)
    kx, ky = fit_width_map(weights, mouth, 0.6)
    assert np.interp(0.05, kx, ky) == pytest.approx(0.5, abs=0.03)
    assert np.interp(0.0, kx, ky) == 0.0 and np.interp(0.1, kx, ky) == pytest.approx(1.0, abs=0.03)


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


def test_closed_lips_smile_by_their_width():
    """The default head's closed-lip smile at 0.3 (weights the calibration never rendered) reads a smile from the
    width alone; at rest it reads none."""
    from model_runtime.heads.render import render_expressions
    from model_runtime.photo.blendshapes import get_landmarker
    from model_runtime.photo.calibration import load_calibration

    calibration = load_calibration()
    landmarker = get_landmarker()
    smiles = [CHANNEL_INDEX[name] for name in CORNERS]
    w = np.zeros(NUM_CHANNELS, np.float32)
    rest = mouth_measures(landmarker.read_image(render_expressions(w, 288, rotation_deg=(5.0, -3.0, 4.0))).landmarks)
    w[smiles] = 0.3
    smile = mouth_measures(landmarker.read_image(render_expressions(w, 288, rotation_deg=(5.0, -3.0, 4.0))).landmarks)
    assert rest[0] < OPEN_FROM and smile[0] < OPEN_FROM
    kx, ky = calibration.width_x, calibration.width_y
    assert smile_floor(rest, calibration.neutral_width, kx, ky) < 0.05
    assert 0.1 < smile_floor(smile, calibration.neutral_width, kx, ky) < 0.5
    assert smile_floor(smile, smile[3], kx, ky) == 0.0  # against its own width: no smile


def test_a_closed_lip_smile_is_read_and_closed_neutral_mouths_are_not():
    """expectations.json: a slight closed-lip smile (the landmarker scores its mouthSmile 0.04) reads as a smile,
    while the closed mouths of the neutral photos stay quiet; against its own photo as the neutral one, the smile
    is gone."""
    from benchmarks.bench_photo_real import PHOTOS, load_expectations
    from model_runtime.photo import read_start_expression

    spec = load_expectations()
    smiles = [CHANNEL_INDEX[name] for name in CORNERS]
    photo = PHOTOS / "smile_closed_obama.jpg"
    reading = read_start_expression(photo)
    assert reading.scores[smiles].max() < 0.1 and reading.weights[smiles].mean() >= spec["active_min"]
    for neutral in ("neutral_biden.jpg", "neutral_hopper.jpg", "carphone_f000.png"):
        assert read_start_expression(PHOTOS / neutral).weights[smiles].max() < spec["quiet_max"]
    assert read_start_expression(photo, neutral_image=photo).weights[smiles].max() == 0.0
