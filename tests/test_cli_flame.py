"""`i2fet flame` and `i2fet generate --flame-model/--flame-output` on the FLAME-format model built from the default
head: outputs, and one-sentence exit-2 errors that leave nothing behind."""

import json

import numpy as np
import pytest

from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.expression_space import CHANNEL_INDEX


@pytest.fixture(autouse=True)
def installed_map(head_flame, cache_root):
    head_flame.install()
    return head_flame


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_map_report(head_flame, capsys):
    code, out, err = run(["flame", str(head_flame.path)], capsys)
    assert code == 0, err
    assert "unknown" in out.splitlines()[0] and "licence" in out
    assert "jawForward" in out and "round trip" in out
    code, out, _ = run(["flame", str(head_flame.path), "--json"], capsys)
    report = json.loads(out)
    assert report["vertices"] == 5023 and report["from_cache"] is True
    assert report["residuals"]["browInnerUp"] == pytest.approx(float(head_flame.map.residuals[
        CHANNEL_INDEX["browInnerUp"]]), abs=1e-4)


def test_flame_sequence_to_arkit(head_flame, tmp_path, capsys):
    seq = tmp_path / "deca.npz"
    jaw = np.c_[np.linspace(0, 0.3, 6), np.zeros((6, 2))]
    np.savez(seq, exp=np.zeros((6, 50)), pose=np.c_[np.zeros((6, 3)), jaw])
    out = tmp_path / "arkit.json"
    code, stdout, err = run(["flame", str(head_flame.path), "--to-arkit", str(seq), "-o", str(out), "--fps", "25"],
                            capsys)
    assert code == 0, err
    anim = Animation.load(out)
    assert anim.fps == 25 and anim.num_frames == 6
    assert anim.frames[-1].argmax() == CHANNEL_INDEX["jawOpen"] and anim.frames[0].max() < 0.05


def test_generate_also_writes_flame_parameters(head_flame, tmp_path, capsys):
    out, flame_out = tmp_path / "a.json", tmp_path / "a.npz"
    code, stdout, err = run(["generate", "open the mouth wide", "-o", str(out), "--flame-model",
                             str(head_flame.path), "--flame-output", str(flame_out)], capsys)
    assert code == 0, err
    anim = Animation.load(out)
    with np.load(flame_out, allow_pickle=False) as f:
        assert f["expression"].shape == (anim.num_frames, 50) and f["jaw_pose"].shape == (anim.num_frames, 3)
        expected = head_flame.map.to_flame(anim.frames)
        np.testing.assert_allclose(f["jaw_pose"], expected[1], atol=1e-5)
        assert float(f["fps"]) == anim.fps


@pytest.mark.parametrize("args, message", [
    (["generate", "smile", "-o", "{tmp}/a.json", "--flame-output", "{tmp}/a.npz"], "together"),
    (["generate", "smile", "-o", "{tmp}/a.json", "--flame-model", "{model}", "--flame-output", "{tmp}/a.txt"],
     "must be an .npz"),
    (["generate", "smile", "-o", "{tmp}/a.json", "--flame-model", "{tmp}/missing.pkl", "--flame-output",
      "{tmp}/a.npz"], "does not exist"),
    (["flame", "{model}", "--to-arkit", "{tmp}/seq.npz"], "together"),
    (["flame", "{model}", "--to-arkit", "{tmp}/wide.npz", "-o", "{tmp}/x.json"], "only 50"),
    (["flame", "{model}", "--to-arkit", "{tmp}/seq.npz", "-o", "{tmp}/x.json"], "frame rate"),
    (["flame", "{tmp}/seq.npz"], "lacks"),
    (["generate", "smile", "-o", "{tmp}/same.npz", "--flame-model", "{model}", "--flame-output", "{tmp}/same.npz"],
     "two different files"),
])
def test_bad_flame_arguments(head_flame, tmp_path, capsys, args, message):
    np.savez(tmp_path / "seq.npz", expression=np.zeros((3, 50)))
    np.savez(tmp_path / "wide.npz", expression=np.zeros((3, 80)))
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(tmp=tmp_path, model=head_flame.path) for a in args]
    code, _, err = run(args, capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
