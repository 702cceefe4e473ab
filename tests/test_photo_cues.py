"""The photo reader's geometric cues (photo/mouth.py drop_bound, photo/brows.py): a smile holds the mouth corners up
near the upper lip however far the jaw drops, a scream lets them fall with it; lowered brows (AU4) are measured at
the inner brow heads, against a neutral photo, while a smile's cheek raise (AU6) explains the landmarker's browDown.
Ground truth: landmarks built by hand, renders of the default head at known weights, and the real photos'
expectations written by eye."""

import numpy as np
import pytest

from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.photo.brows import INNER_BROWS, INNER_EYE_CORNERS, LOWERED_FROM, LOWERED_FULL, brow_down_bound, \
    brow_measures
from model_runtime.photo.mouth import CORNERS, DROP_NO_SMILE, DROP_SMILE, OPEN_FROM, OPEN_FULL, corner_drops, \
    drop_bound

SMILES = [CHANNEL_INDEX[name] for name in CORNERS]
DOWNS = [CHANNEL_INDEX["browDownLeft"], CHANNEL_INDEX["browDownRight"]]


def weights_of(**channels) -> np.ndarray:
    w = np.zeros(NUM_CHANNELS, np.float32)
    for name, value in channels.items():
        w[CHANNEL_INDEX[name]] = value
    return w


def test_corner_drop_is_the_gap_above_the_corner():
    """From mouth_measures (gap, place left, place right, width): the corners' distance below the upper lip."""
    drops = corner_drops(np.array([[0.4, 0.75, 0.5, 0.6], [0.0, np.nan, np.nan, 0.6]]))
    np.testing.assert_allclose(drops[0], [0.1, 0.2])
    assert np.isnan(drops[1]).all()


def test_drop_bound():
    """1 up to DROP_SMILE, 0 from DROP_NO_SMILE, linear between; a tall scream-like opening whose corners sit 0.65 of
    the way up (a place the place bound half allows) is bounded to 0, a laugh's corners near the upper lip are not;
    closed lips and faces with nothing measured bound nothing; the bound fades in as the lips part."""
    middle = (DROP_SMILE + DROP_NO_SMILE) / 2
    gap = 0.3
    places = [1 - DROP_SMILE / gap, 1 - middle / gap]
    bound = drop_bound(np.array([[gap, *places, 0.6], [0.5, 0.65, 0.65, 0.6], [0.22, 0.7, 0.75, 0.7]]))
    np.testing.assert_allclose(bound, [[1.0, 0.5], [0.0, 0.0], [1.0, 1.0]], atol=1e-9)
    assert np.all(drop_bound(np.array([0.0, np.nan, np.nan, 0.6])) == 1.0)
    assert np.all(drop_bound(np.full(4, np.nan)) == 1.0)
    halfway = drop_bound(np.array([(OPEN_FROM + OPEN_FULL) / 2, 0.0, 0.0, 0.6]))  # drop 0.075 < DROP_SMILE
    np.testing.assert_allclose(halfway, [1.0, 1.0])
    gap = (OPEN_FROM + OPEN_FULL) / 2
    deep = drop_bound(np.array([gap, 1 - 2 * DROP_NO_SMILE / gap, 1 - 2 * DROP_NO_SMILE / gap, 0.6]))
    np.testing.assert_allclose(deep, [0.5, 0.5])


def hand_made_brows(height: float, distance: float, roll_deg: float = 0.0, scale: float = 150.0) -> np.ndarray:
    """478 landmarks in image coordinates (y down) whose face, in its own axes (eye-corner distance 1, y up), has its
    inner brow heads `height` above the inner eye corners and `distance` apart, rolled in the image."""
    face = np.zeros((478, 3))
    face[33], face[263] = (-0.5, 0.3, 0.0), (0.5, 0.3, 0.0)  # outer eye corners
    face[10], face[152] = (0.0, 0.9, 0.0), (0.0, -0.9, 0.0)  # forehead, chin
    face[1] = (0.0, 0.0, 0.3)  # nose tip
    face[INNER_EYE_CORNERS[0]], face[INNER_EYE_CORNERS[1]] = (-0.15, 0.29, 0.0), (0.15, 0.31, 0.0)
    face[INNER_BROWS[0]] = (-distance / 2, 0.29 + height - 0.01, 0.05)
    face[INNER_BROWS[1]] = (distance / 2, 0.31 + height + 0.01, 0.05)
    r = np.radians(roll_deg)
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    placed = face @ roll.T * scale
    placed[:, 1] *= -1
    return placed + np.array([320.0, 240.0, 0.0])


@pytest.mark.parametrize("roll, scale", [(0.0, 150.0), (20.0, 60.0), (-12.0, 400.0)])
def test_brow_measures_follow_the_face(roll, scale):
    np.testing.assert_allclose(brow_measures(hand_made_brows(0.17, 0.28, roll, scale)), [0.17, 0.28], atol=1e-9)
    assert np.isnan(brow_measures(np.zeros((478, 3)))).all()


def test_brow_down_bound():
    """Without a neutral face: 1 - smile. With one: lifted to 1 once the brows are LOWERED_FULL lower and closer,
    not by brows as the neutral face's; lowering is counted in height and in distance alike."""
    rest = np.array([0.17, 0.28])
    np.testing.assert_allclose(brow_down_bound(np.array([0.0, 0.3, 0.9]), np.tile(rest, (3, 1)))[:, 0], [1.0, 0.7, 0.1])
    assert brow_down_bound(0.9, rest, rest)[0] == pytest.approx(0.1)
    assert brow_down_bound(0.9, rest - [LOWERED_FULL, 0.0], rest)[0] == pytest.approx(1.0)
    assert brow_down_bound(0.9, rest - [0.0, LOWERED_FULL], rest)[0] == pytest.approx(1.0)
    half = (LOWERED_FROM + LOWERED_FULL) / 2
    assert brow_down_bound(1.0, rest - [half / 2, half / 2], rest)[0] == pytest.approx(0.5)
    assert brow_down_bound(0.9, rest + [0.05, 0.0], rest)[0] == pytest.approx(0.1)  # raised brows lift nothing
    assert brow_down_bound(0.9, np.full(2, np.nan), rest)[0] == pytest.approx(0.1)  # nothing measured


@pytest.fixture(scope="module")
def read_render():
    from model_runtime.heads.render import render_expressions
    from model_runtime.photo.blendshapes import get_landmarker

    landmarker = get_landmarker()

    def read(weights, rotation=(4.0, -3.0, 2.0), size=288):
        return landmarker.read_image(render_expressions(weights, size, rotation_deg=rotation))

    return read


def test_renders_jaw_drops_fall_below_and_smiles_stay_above(read_render):
    """The default head at weights the threshold renders never had: wide open mouths without a smile (a dropped jaw,
    a scream's stretch) leave the corners past DROP_NO_SMILE below the upper lip; open-mouthed full smiles keep them
    within DROP_SMILE, so the drop bound leaves the smile whole."""
    from model_runtime.photo.mouth import mouth_measures

    for rotation, weights in [((6.0, 2.0, -3.0), weights_of(jawOpen=0.95)),
                              ((-5.0, -4.0, 5.0), weights_of(jawOpen=0.9, mouthStretchLeft=0.8, mouthStretchRight=0.8,
                                                             eyeBlinkLeft=0.7, eyeBlinkRight=0.7))]:
        measures = mouth_measures(read_render(weights, rotation).landmarks)
        assert np.all(corner_drops(measures) > DROP_NO_SMILE) and np.all(drop_bound(measures) == 0.0)
    for rotation, weights in [((-3.0, 5.0, 2.0), weights_of(jawOpen=0.6, mouthSmileLeft=0.95, mouthSmileRight=0.95)),
                              ((5.0, -2.0, -4.0), weights_of(jawOpen=0.5, mouthSmileLeft=1.0, mouthSmileRight=1.0,
                                                             cheekSquintLeft=0.8, cheekSquintRight=0.8))]:
        measures = mouth_measures(read_render(weights, rotation).landmarks)
        assert measures[0] > OPEN_FULL and np.all(corner_drops(measures) < DROP_SMILE)
        assert np.all(drop_bound(measures) == 1.0)


def test_renders_brows_lowered_against_the_neutral_face(read_render):
    """The default head smiling broadly: against its neutral render, browDown at 1 measures as lowered (the bound
    lifted well above what the smile leaves: its browDown lowers the inner brows by 0.026 to 0.034, about
    LOWERED_FULL), browDown at 0 does not (the bound is what the smile leaves); different views of each."""
    rest = brow_measures(read_render(weights_of(), (-4.0, 3.0, -2.0), 256).landmarks)
    smile = dict(mouthSmileLeft=0.9, mouthSmileRight=0.9)
    down = brow_measures(read_render(weights_of(browDownLeft=1.0, browDownRight=1.0, **smile),
                                     (5.0, -3.0, 3.0)).landmarks)
    up = brow_measures(read_render(weights_of(**smile), (5.0, -3.0, 3.0)).landmarks)
    assert brow_down_bound(0.9, down, rest)[0] > 0.5
    assert brow_down_bound(0.9, up, rest)[0] == pytest.approx(0.1)
    assert brow_down_bound(0.9, down)[0] == pytest.approx(0.1)  # without the neutral face, the smile explains it


def test_renders_read_through_the_cues(read_render):
    """The whole calibration on renders: a scream-like face (jaw dropped, lips stretched, eyes shut) reads no smile
    and keeps its jaw; an open-mouthed smile keeps its smile."""
    from model_runtime.photo.calibration import load_calibration
    from model_runtime.photo.mouth import mouth_measures

    calibration = load_calibration()

    def weights(w):
        reading = read_render(w)
        return calibration.weights(reading.scores, mouth=mouth_measures(reading.landmarks),
                                   brows=brow_measures(reading.landmarks))

    scream = weights(weights_of(jawOpen=1.0, mouthStretchLeft=1.0, mouthStretchRight=1.0, mouthUpperUpLeft=0.6,
                                mouthUpperUpRight=0.6))
    assert scream[SMILES].max() < 0.1 and scream[CHANNEL_INDEX["jawOpen"]] > 0.5
    smile = weights(weights_of(jawOpen=0.7, mouthSmileLeft=1.0, mouthSmileRight=1.0))
    assert smile[SMILES].min() > 0.5


@pytest.fixture(scope="module")
def real():
    from benchmarks.bench_photo_real import PHOTOS, load_expectations
    from model_runtime.photo import read_start_expression

    spec = load_expectations()
    return spec, {name: read_start_expression(PHOTOS / name) for name in spec["cases"]}


def test_real_open_mouths_without_a_smile_read_none(real):
    """Every real photo judged by eye with an open mouth and its smile quiet (screams, shouts, speech, surprise)
    reads no smile, though the landmarker scores some of them 0.5 to 0.7; every open-mouthed smile or laugh keeps
    its smile."""
    spec, readings = real
    quiet = [name for name, case in spec["cases"].items() if "smile" in case["quiet"] and "jawOpen" in case["active"]]
    assert len(quiet) >= 6 and max(readings[name].scores[SMILES].max() for name in quiet) > 0.5
    for name in quiet:
        assert readings[name].weights[SMILES].max() < spec["quiet_max"], name
    laughing = [name for name, case in spec["cases"].items() if "smile" in case["active"]
                and readings[name].scores[SMILES].min() > 0.5]
    assert len(laughing) >= 6
    for name in laughing:
        assert readings[name].weights[SMILES].mean() >= spec["active_min"], name


def test_real_grins_read_no_brow_down_and_frowns_keep_it(real):
    """The broad grins judged by eye with relaxed brows read browDown quiet (the landmarker scores them 0.6 to 0.84);
    the faces judged with lowered brows and no smile (glare, scowl, pout, shouts, scream) keep it."""
    spec, readings = real
    grins = [name for name, case in spec["cases"].items() if "smile" in case["active"] and "browDown" in case["quiet"]]
    assert max(readings[name].scores[DOWNS].max() for name in grins) > 0.6
    for name in grins:
        assert readings[name].weights[DOWNS].max() < spec["quiet_max"], name
    frowns = [name for name, case in spec["cases"].items() if "browDown" in case["active"]]
    assert len(frowns) >= 6
    for name in frowns:
        assert readings[name].weights[DOWNS].mean() >= spec["active_min"], name
