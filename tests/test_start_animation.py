"""An instruction continues from the last frame of a saved animation (`--start-animation`, `start_animation=`): the
first generated frame is that frame, whatever the file's channel order; bad files are refused in one sentence and
nothing is written."""

import json

import numpy as np
import pytest

from model_runtime import Runtime
from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.errors import InputError
from model_runtime.expression_space import ARKIT_CHANNELS, CHANNEL_INDEX


def ramp(frames=12, fps=25):
    """An animation ending on a known expression: jaw open 0.7, left smile 0.4, right eye blink 0.9."""
    w = np.zeros((frames, len(ARKIT_CHANNELS)), dtype=np.float32)
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    for name, value in (("jawOpen", 0.7), ("mouthSmileLeft", 0.4), ("eyeBlinkRight", 0.9)):
        w[:, CHANNEL_INDEX[name]] = value * t
    return Animation(frames=w, fps=fps, instruction="tracked")


@pytest.fixture(scope="module")
def rt():
    return Runtime.load(model="baseline", device="cpu")


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_generation_starts_from_the_last_frame(rt, tmp_path, suffix):
    path = ramp().save(tmp_path / f"video{suffix}")
    anim = rt.generate("then smile", start_animation=path)
    expected = np.zeros(len(ARKIT_CHANNELS), dtype=np.float32)
    expected[[CHANNEL_INDEX["jawOpen"], CHANNEL_INDEX["mouthSmileLeft"], CHANNEL_INDEX["eyeBlinkRight"]]] = (
        0.7, 0.4, 0.9)
    np.testing.assert_allclose(anim.frames[0], expected, atol=1e-6)


def test_a_file_in_another_channel_order_is_read_by_name(rt, tmp_path):
    source = ramp()
    data = source.to_dict()
    order = list(reversed(range(len(ARKIT_CHANNELS))))
    data["channels"] = [ARKIT_CHANNELS[i] for i in order]
    data["frames"] = np.asarray(source.frames)[:, order].tolist()
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps(data))
    first = rt.generate("then smile", start_animation=path).frames[0]
    assert first[CHANNEL_INDEX["jawOpen"]] == pytest.approx(0.7, abs=1e-6)
    assert first[CHANNEL_INDEX["eyeBlinkRight"]] == pytest.approx(0.9, abs=1e-6)


def test_only_one_start_is_taken(rt, tmp_path):
    path = ramp().save(tmp_path / "a.json")
    with pytest.raises(InputError, match="not two of them"):
        rt.generate("smile", start=np.zeros(len(ARKIT_CHANNELS)), start_animation=path)


def test_cli_generate_continues_from_a_saved_animation(tmp_path, capsys):
    start = ramp().save(tmp_path / "video.npz")
    out = tmp_path / "next.json"
    code = main(["generate", "then smile", "-o", str(out), "--start-animation", str(start), "--model", "baseline",
                 "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    first = Animation.load(out).frames[0]
    np.testing.assert_allclose(first, Animation.load(start).frames[-1], atol=1e-6)


def _bad_files(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something else"}))
    (tmp_path / "track.csv").write_text("Timecode,BlendShapeCount\n")
    (tmp_path / "empty.npz").write_bytes(b"")
    deep = "[" * 100_000 + "]" * 100_000  # json.loads recurses once per bracket
    (tmp_path / "deep.json").write_text(deep)
    np.savez(tmp_path / "deep.npz", frames=np.zeros((2, 52), np.float32), channels=np.array(ARKIT_CHANNELS),
             meta=np.array(deep))
    flame = Animation(frames=np.zeros((3, 2), dtype=np.float32), fps=30, channels=["exp000", "exp001"], rig="flame")
    flame.save(tmp_path / "flame.json")
    photo = tmp_path / "me.png"
    photo.write_bytes(b"\x89PNG")
    return photo


@pytest.mark.parametrize("name, message", [
    ("missing.json", "does not exist"),
    ("broken.json", "not valid JSON"),
    ("other.json", "'schema' must be"),
    ("track.csv", "Unknown animation file extension"),
    ("empty.npz", "not a readable i2fet npz file"),
    ("deep.json", "not valid JSON"),
    ("deep.npz", "not a readable i2fet npz file"),
    ("flame.json", "not ARKit weights"),
    ("both", "not both"),
])
def test_bad_start_animations_are_refused_in_one_sentence(tmp_path, capsys, name, message):
    photo = _bad_files(tmp_path)
    work = tmp_path / "out"
    work.mkdir()
    args = ["generate", "smile", "-o", str(work / "a.json"), "--model", "baseline", "--device", "cpu"]
    if name == "both":
        args += ["--start-animation", str(ramp().save(tmp_path / "good.json")), "--start-image", str(photo)]
    else:
        args += ["--start-animation", str(tmp_path / name)]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("i2fet: error: ") and message in err and err.count("\n") == 1, err
    assert list(work.iterdir()) == []
