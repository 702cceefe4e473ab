"""Start from a photo, with the real MediaPipe Face Landmarker: renders of the default head at known expressions and
rotations go in, the fitted weights and rotation come out; bad images are refused in one sentence."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from model_runtime import Runtime
from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.errors import InputError
from model_runtime.expression_space import CHANNEL_INDEX, NUM_CHANNELS
from model_runtime.heads.head import load_default_head
from model_runtime.knowledge import get_concept, sample_concept_weights
from model_runtime.photo import read_start_expression
from model_runtime.photo.image import MAX_PIXELS
from model_runtime.heads.render import render_expressions

SIZE = 320


def weights(**channels):
    w = np.zeros(NUM_CHANNELS, dtype=np.float32)
    for name, value in channels.items():
        w[CHANNEL_INDEX[name]] = value
    return w


def _concept(name, seed):
    return sample_concept_weights(get_concept(name), np.random.default_rng(seed))


# Faces the calibration has not seen (other random instances than calibration.py's), 3 to 14
# active channels, plus the neutral face; the last two are turned.
CASES = {
    "happy": (_concept("happy", 11), (0.0, 0.0, 0.0)),
    "surprise": (_concept("surprise", 12), (0.0, 0.0, 0.0)),
    "sad": (_concept("sad", 13), (0.0, 0.0, 0.0)),
    "talk": (weights(jawOpen=0.6, mouthFunnel=0.5, eyeBlinkLeft=0.8), (0.0, 0.0, 0.0)),
    "smirk": (weights(mouthSmileLeft=0.8, mouthLeft=0.4, eyeSquintLeft=0.5, browDownRight=0.6), (0.0, 0.0, 0.0)),
    "happy turned": (_concept("happy", 14), (8.0, -5.0, 4.0)),
    "neutral turned": (weights(), (-10.0, 6.0, -3.0)),
}


def write_render(path, w, rotation=(0.0, 0.0, 0.0), size=SIZE):
    Image.fromarray(render_expressions(w, size, rotation_deg=rotation)).save(path)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return {name: (w, rot, read_start_expression(write_render(folder / f"{i}.png", w, rot)))
            for i, (name, (w, rot)) in enumerate(CASES.items())}


def test_result_shape(fitted):
    _, _, result = fitted["happy"]
    assert result.weights.shape == (NUM_CHANNELS,) and result.weights.dtype == np.float32
    assert result.weights.min() >= 0 and result.weights.max() <= 1
    assert result.faces_found == 1 and result.warnings == [] and not result.neutral_used
    assert result.scores.shape == (NUM_CHANNELS,) and result.scores.min() >= 0 and result.scores.max() <= 1
    assert result.scores[CHANNEL_INDEX["tongueOut"]] == 0 and result.weights[CHANNEL_INDEX["tongueOut"]] == 0
    assert result.image_size == (SIZE, SIZE)


def test_recovered_weights(fitted):
    """Renders of the default head at known weights, read by the Face Landmarker through the calibration. Measured
    (2 cores, mediapipe 0.10.21): 0.31 on the active channels over these faces (0.19 to 0.38 per face), under 0.04
    on the others. The landmark fit and regressor this reader replaced measured 0.13 here, on the renderer it was
    trained on, but 0.35 on another renderer and wrong on real photos (benchmarks/bench_photo_real.py), so it was
    dropped; the landmarker barely sees some of the default head's shapes (cheekSquint, noseSneer, mouthPress,
    mouthStretch, eyeWide), which is most of this error."""
    active_errors = []
    for name, (w, _, result) in fitted.items():
        assert result.warnings == [], name
        error = np.abs(result.weights - w)
        active = w > 0
        if active.any():
            active_errors.append(error[active].mean())
            assert error[active].mean() <= 0.45, name
        assert error[~active].mean() <= 0.08, name
    assert np.mean(active_errors) <= 0.38


def test_without_the_calibration_file_the_reader_says_so_in_one_sentence(fitted, tmp_path, monkeypatch):
    from model_runtime.errors import WeightsError
    from model_runtime.photo import calibration

    w, _, _ = fitted["talk"]
    photo = write_render(tmp_path / "talk.png", w)
    monkeypatch.setattr(calibration, "DEFAULT_PATH", tmp_path / "none.json")
    monkeypatch.setattr(calibration, "_MEMO", {})
    with pytest.raises(WeightsError) as info:
        read_start_expression(photo)
    message = str(info.value)
    assert "is missing" in message and message.endswith(".") and "\n" not in message


def test_neutral_stays_near_neutral_and_strong_channels_are_read(fitted):
    assert fitted["neutral turned"][2].weights.mean() < 0.15
    happy = fitted["happy"][2].weights
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        assert happy[CHANNEL_INDEX[name]] > 0.45
    talk = fitted["talk"][2].weights
    # eyeBlinkLeft 0.8 reads 0.22 (measured): the landmarker scores this renderer's half-closed lid low (0.35)
    assert abs(talk[CHANNEL_INDEX["jawOpen"]] - 0.6) < 0.2 and talk[CHANNEL_INDEX["eyeBlinkLeft"]] > 0.15
    assert talk[CHANNEL_INDEX["eyeBlinkRight"]] < talk[CHANNEL_INDEX["eyeBlinkLeft"]] / 2


def test_rotation_is_recovered(fitted):
    """From the landmarker's face transform, with the calibration's gain and offset; measured within 4.2 degrees
    (pitch, on a smiling face), within 1 degree on a neutral one."""
    for name, (_, rotation, result) in fitted.items():
        assert np.abs(np.subtract(result.rotation_deg, rotation)).max() < 5.0, (name, result.rotation_deg)
    assert np.abs(np.subtract(fitted["neutral turned"][2].rotation_deg, CASES["neutral turned"][1])).max() < 2.0


def test_the_largest_of_two_faces_is_used_with_a_warning(tmp_path):
    big = render_expressions(weights(jawOpen=0.7), 300)
    small = render_expressions(weights(mouthSmileLeft=1.0, mouthSmileRight=1.0), 180)
    canvas = np.empty((360, 640, 3), dtype=np.uint8)
    canvas[:] = big[0, 0]
    canvas[30:330, 20:320] = big
    canvas[90:270, 420:600] = small
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    result = read_start_expression(path)
    assert result.faces_found == 2 and result.warnings == ["The image shows 2 faces; the largest one was used."]
    assert result.weights[CHANNEL_INDEX["jawOpen"]] > 0.5  # the big face's open mouth, not the small one's smile
    assert result.weights[CHANNEL_INDEX["mouthSmileLeft"]] < 0.3


def test_exif_orientation_and_greyscale_are_handled(tmp_path):
    w, rotation = CASES["talk"]
    upright = render_expressions(w, SIZE, rotation_deg=rotation)
    turned = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with the EXIF orientation that says "rotate 90 degrees clockwise to view"
    path = tmp_path / "sideways.jpg"
    turned.save(path, exif=exif.tobytes(), quality=95)
    result = read_start_expression(path)
    assert abs(result.weights[CHANNEL_INDEX["jawOpen"]] - 0.6) < 0.2 and abs(result.rotation_deg[2]) < 5
    grey = tmp_path / "grey.png"
    Image.fromarray(upright).convert("L").save(grey)
    assert read_start_expression(grey).weights[CHANNEL_INDEX["jawOpen"]] > 0.4
    rgba = np.concatenate([upright, np.full(upright.shape[:2] + (1,), 255, np.uint8)], axis=2)
    rgba[np.all(upright == upright[0, 0], axis=2), 3] = 0  # transparent background
    cutout = tmp_path / "cutout.png"
    Image.fromarray(rgba).save(cutout)
    assert abs(read_start_expression(cutout).weights[CHANNEL_INDEX["jawOpen"]] - 0.6) < 0.2


def test_a_float_image_with_nan_pixels_is_read_without_numpy_warnings(tmp_path):
    import warnings

    from model_runtime.photo.image import load_image

    values = np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    values[:8] = np.nan
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would be a second line on the user's terminal
        rgb, _ = load_image(path)
    assert rgb.dtype == np.uint8 and np.all(rgb[:8] == 0) and rgb[-1, -1, 0] == 255


def huge_png_header(path, width, height):
    """A PNG whose header claims width x height pixels, with no image data: refused before anything is decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def bad_images(folder):
    blank = folder / "blank.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(blank)
    tiny = folder / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    text = folder / "notes.png"
    text.write_text("not an image")
    truncated = folder / "cut.png"
    write_render(truncated, weights(), size=64)
    truncated.write_bytes(truncated.read_bytes()[:200])
    return {
        "no face": (blank, "No face was found in the start image"),  # named: a neutral image may come with it
        "1x1": (tiny, "only 1x1 pixels"),
        "not an image": (text, "not an image file"),
        "missing": (folder / "missing.png", "does not exist"),
        "folder": (folder, "is a folder"),
        "huge": (huge_png_header(folder / "huge.png", 20000, 20000), "megapixels are refused"),
        "truncated": (truncated, "damaged or truncated"),
    }


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return bad_images(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("case", ["no face", "1x1", "not an image", "missing", "folder", "huge", "truncated"])
def test_bad_images_are_one_sentence(bad, case):
    path, fragment = bad[case]
    with pytest.raises(InputError) as info:
        read_start_expression(path)
    message = str(info.value)
    assert fragment in message and message.endswith(".") and "\n" not in message


def test_a_fifo_as_start_image_is_refused_without_blocking(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    probe = ("import sys\nfrom model_runtime.photo.image import load_image\nfrom model_runtime.errors import InputError\n"
             "try:\n    load_image(sys.argv[1])\nexcept InputError as exc:\n    print(exc)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    # Opening a FIFO with no writer blocks forever, so the reader runs in a child that a timeout can end.
    proc = subprocess.run([sys.executable, "-c", probe, str(fifo)], capture_output=True, text=True, env=env, timeout=60)
    assert "not a regular file" in proc.stdout, proc.stdout + proc.stderr


def test_limit_is_forty_megapixels(tmp_path):
    assert MAX_PIXELS == 40_000_000
    with pytest.raises(InputError, match="megapixels"):
        read_start_expression(huge_png_header(tmp_path / "big.png", 8000, 5001))


def test_runtime_takes_a_start_image_or_a_start_expression_not_both(fitted, tmp_path):
    runtime = Runtime.load(model="baseline", device="cpu")
    w, rotation, result = fitted["talk"]
    path = write_render(tmp_path / "talk.png", w, rotation)
    anim = runtime.generate("smile", start_image=path)
    np.testing.assert_allclose(anim.frames[0], result.weights, atol=1e-6)
    with pytest.raises(InputError, match="not two of them"):
        runtime.generate("smile", start=np.zeros(NUM_CHANNELS), start_image=path)


# ---------------------------------------------------------------------------------------------------------------------
# Command line

def test_cli_generate_starts_from_the_photo(fitted, tmp_path, capsys):
    w, rotation, result = fitted["smirk"]
    photo = write_render(tmp_path / "smirk.png", w, rotation)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["generate", "look surprised", "-o", str(out / "a.npz"), "--start-image", str(photo),
                 "--model", "baseline", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    anim = Animation.load(out / "a.npz")
    np.testing.assert_allclose(anim.frames[0], result.weights, atol=1e-6)
    assert anim.frames[-1].sum() > 0  # and then goes where the instruction says


def test_cli_prints_photo_warnings_to_stderr(tmp_path, capsys):
    canvas = np.empty((300, 520, 3), dtype=np.uint8)
    face = render_expressions(weights(), 260)
    canvas[:] = face[0, 0]
    canvas[20:280, 0:260] = face
    canvas[70:230, 330:490] = render_expressions(weights(), 160)
    photo = tmp_path / "two.png"
    Image.fromarray(canvas).save(photo)
    code = main(["generate", "smile", "-o", str(tmp_path / "a.json"), "--start-image", str(photo),
                 "--model", "baseline", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0 and err == "i2fet: warning: The image shows 2 faces; the largest one was used.\n"


@pytest.mark.parametrize("command, case", [
    *[("generate", case) for case in ("no face", "1x1", "not an image", "missing", "huge")],
    # bake refuses all of these, a photo without a face included, before it starts Blender.
    *[("bake", case) for case in ("no face", "1x1", "not an image", "missing", "huge")],
])
def test_cli_bad_start_image_exits_2_and_writes_nothing(bad, tmp_path, capsys, command, case):
    path, fragment = bad[case]
    work = tmp_path / "work"
    work.mkdir()
    if command == "generate":
        args = ["generate", "smile", "-o", str(work / "a.json"), "--preview", str(work / "a.png")]
    else:
        args = ["bake", "smile", "-o", str(work)]
    code = main(args + ["--start-image", str(path), "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("i2fet: error: ") and fragment in err and err.count("\n") == 1
    assert list(work.iterdir()) == []


def test_cli_bake_starts_from_the_photo(fitted, tmp_path, capsys):
    """The baked .blend's first keyed frame is the photo's expression (read in the Blender process)."""
    import subprocess
    import sys

    w, rotation, result = fitted["smirk"]
    photo = write_render(tmp_path / "smirk.png", w, rotation)
    code = main(["bake", "look surprised", "-o", str(tmp_path / "baked"), "--start-image", str(photo),
                 "--fps", "24", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    blend = tmp_path / "baked" / "look-surprised.blend"
    probe = ("import bpy, json, sys\n"
             f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r})\n"
             "obj = next(o for o in bpy.data.objects if o.type == 'MESH' and o.data.shape_keys)\n"
             "bpy.context.scene.frame_set(int(obj.data.shape_keys.animation_data.action.frame_range[0]))\n"
             "print('RESULT' + json.dumps({k.name: k.value for k in obj.data.shape_keys.key_blocks[1:]}))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    values = json.loads(line[len("RESULT"):])
    from model_runtime.expression_space import ARKIT_CHANNELS
    baked = np.array([values[c] for c in ARKIT_CHANNELS])
    np.testing.assert_allclose(baked, result.weights, atol=0.01)  # key reduction keeps within its tolerance
