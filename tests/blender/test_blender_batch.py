"""Batch baking: jobs files, all-or-nothing outputs, exit codes, the `--bake` entry `i2fet bake` uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blender_helpers import FakeRuntime, bpy
from i2fet_blender import batch, runtime_cache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(monkeypatch):
    runtime_cache.release()
    fake = FakeRuntime()
    monkeypatch.setattr(runtime_cache, "_load", lambda settings: fake)
    yield fake
    runtime_cache.release()


def test_single_job_writes_blend_fbx_preview(tmp_path, fake, capsys):
    out = tmp_path / "face.blend"
    code = batch.main(["--instruction", "smile", "--start-frame", "10", "--out", str(out), "--fbx",
                       str(tmp_path / "face.fbx"), "--preview", str(tmp_path / "face.png"), "--fps", "24"])
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.blend", "face.fbx", "face.png"]
    assert "[1/1]" in capsys.readouterr().out
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    obj = bpy.data.objects["I2FET Head"]
    action = obj.data.shape_keys.animation_data.action
    assert action.get("i2fet") and action.frame_range[:] == pytest.approx((10, 58))
    assert scene.render.fps == 24 and (scene.frame_start, scene.frame_end) == (10, 58)


def test_jobs_file_reports_each_failure_and_writes_nothing_partial(tmp_path, fake, capsys):
    good = {"instruction": "smile", "out": "good.blend", "preview": "good.png"}
    missing_blend = {"instruction": "frown", "blend": "nope.blend", "out": "bad.blend"}
    bad_text = {"instruction": "\x00bad", "out": "bad2.blend", "preview": "bad2.png"}
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([good, missing_blend, bad_text]))
    code = batch.main(["--jobs", str(jobs)])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED job 2" in captured.err and "nope.blend" in captured.err and "FAILED job 3" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.blend", "good.png", "jobs.json"]


def test_csv_jobs_and_bad_arguments(tmp_path, fake):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("instruction,start_frame,fps,out\nsmile,5,30,a.blend\nfrown,1,60,b.blend\n")
    assert batch.main(["--jobs", str(jobs)]) == 0
    assert (tmp_path / "a.blend").is_file() and (tmp_path / "b.blend").is_file()
    assert [c["fps"] for c in fake.calls] == [30, 60]
    bad = tmp_path / "bad.csv"
    bad.write_text("instruction,colour\nsmile,red\n")
    assert batch.main(["--jobs", str(bad)]) == 2
    assert batch.main(["--instruction", "smile"]) == 1  # no outputs: the job fails


def test_bake_function_names_outputs_from_the_instruction(tmp_path, fake):
    paths = batch.bake("Slowly smile, then look shocked!", tmp_path / "out", fps=30)
    assert {Path(p).name for p in paths.values()} == {"slowly-smile-then-look-shocked.blend",
                                                     "slowly-smile-then-look-shocked.fbx",
                                                     "slowly-smile-then-look-shocked.png"}
    assert all(Path(p).is_file() for p in paths.values())


def test_script_arguments_after_double_dash():
    assert batch.script_args(["blender", "--background", "--python", "x.py", "--", "--bake", "s"]) == ["--bake", "s"]
    assert batch.script_args(["--bake", "s"]) == ["--bake", "s"]


@pytest.mark.slow
def test_bake_subprocess_with_the_real_model(tmp_path):
    """`python -m i2fet_blender.batch --bake ...`: the command `i2fet bake` runs, end to end in its own process."""
    proc = subprocess.run([sys.executable, "-m", "i2fet_blender.batch", "--bake", "smile, then frown", "-o",
                           str(tmp_path), "--fps", "30"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smile-then-frown.blend", "smile-then-frown.fbx",
                                                         "smile-then-frown.png"]
    bad = subprocess.run([sys.executable, "-m", "i2fet_blender.batch", "--bake", "   ", "-o", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


@pytest.mark.slow
def test_script_mode_like_blender_python(tmp_path):
    """`blender --background --python i2fet_blender/batch.py -- ARGS` runs the file as a script (no package); the
    same file run by this Python with `--` exercises that path."""
    proc = subprocess.run([sys.executable, str(ROOT / "i2fet_blender" / "batch.py"), "--", "--instruction", "smile",
                           "--animation", str(tmp_path / "a.json"), "--preview", str(tmp_path / "a.png")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/1]" in proc.stdout and "1 of 1 job(s) done." in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.png"]


def _flame_blend(head_flame, path):
    """A .blend whose only face is a FLAME head of the session's FLAME-format model."""
    from i2fet_blender.flame_head import add_flame_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    add_flame_head(bpy.context, head_flame.model, correctives=False)
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


@pytest.mark.parametrize("source", ["option", "job field", "environment"])
def test_batch_bakes_onto_a_flame_head(head_flame, cache_root, fake, tmp_path, monkeypatch, source):
    """The FLAME model file comes from --flame-model, a job's field or I2FET_FLAME_MODEL; the keys are the
    instruction's ARKit frames through the ARKit<->FLAME map (expected values from the map itself)."""
    head_flame.install()
    blend = _flame_blend(head_flame, tmp_path / "flame.blend")
    out = tmp_path / "baked.blend"
    monkeypatch.delenv("I2FET_FLAME_MODEL", raising=False)
    if source == "option":
        args = ["--instruction", "open the mouth wide", "--blend", str(blend), "--out", str(out),
                "--flame-model", str(head_flame.path)]
    elif source == "job field":
        jobs = tmp_path / "jobs.json"
        jobs.write_text(json.dumps([{"instruction": "open the mouth wide", "blend": str(blend), "out": str(out),
                                     "flame_model": str(head_flame.path)}]))
        args = ["--jobs", str(jobs)]
    else:
        monkeypatch.setenv("I2FET_FLAME_MODEL", str(head_flame.path))
        args = ["--instruction", "open the mouth wide", "--blend", str(blend), "--out", str(out)]
    assert batch.main(args) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out))
    from blender_helpers import make_animation
    from i2fet_blender.flame_head import check_flame_target, read_flame_parameters

    obj = bpy.data.objects["FLAME Head"]
    anim = make_animation(num_frames=61, fps=30, instruction="open the mouth wide", seed=0)
    expression, jaw, _ = head_flame.map.to_flame(anim.frames)
    got_exp, got_jaw, _ = read_flame_parameters(check_flame_target(obj, head_flame.model), range(1, 62))
    np.testing.assert_allclose(got_exp, np.clip(expression, -5, 5), atol=1e-4)
    np.testing.assert_allclose(got_jaw, jaw, atol=1e-4)
    assert np.abs(got_jaw[:, 0]).max() > 0.05  # the jaw really moves


def test_batch_onto_a_flame_head_without_a_model_file_writes_nothing(head_flame, fake, tmp_path, monkeypatch, capsys):
    blend = _flame_blend(head_flame, tmp_path / "flame.blend")
    monkeypatch.delenv("I2FET_FLAME_MODEL", raising=False)
    code = batch.main(["--instruction", "smile", "--blend", str(blend), "--out", str(tmp_path / "baked.blend")])
    assert code == 1
    assert "--flame-model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flame.blend"]


def test_bake_options_reach_the_batch_baker_unchanged(tmp_path):
    """`i2fet bake` declares its options once with the batch baker and hands them on as given (files absolute)."""
    from model_runtime.bake_options import forward
    from model_runtime.cli import build_parser

    given = ["--blend", "face.blend", "--object", "Face", "--fps", "24", "--seed", "7", "--duration", "2.5",
             "--intensity", "0.5", "--preset", "UNREAL", "--device", "cpu", "--start-image", "me.png",
             "--flame-model", "flame2023.pkl"]
    cli_args = build_parser().parse_args(["bake", "smile", "-o", str(tmp_path), *given])
    baker_args = batch.build_parser().parse_args(["--bake", "smile", "-o", str(tmp_path), *forward(cli_args)])
    assert (baker_args.object, baker_args.fps, baker_args.seed, baker_args.duration, baker_args.intensity,
            baker_args.preset, baker_args.device) == ("Face", 24, 7, 2.5, 0.5, "UNREAL", "cpu")
    for dest, name in (("blend", "face.blend"), ("start_image", "me.png"), ("flame_model", "flame2023.pkl")):
        assert Path(getattr(baker_args, dest)) == Path.cwd() / name


def test_bad_job_fields_are_refused_before_any_job_runs(tmp_path, fake, capsys):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("instruction,preset,out\nsmile,UNITY,a.blend\nfrown,MAYA,b.blend\n")
    assert batch.main(["--jobs", str(jobs)]) == 2
    assert "Job 2" in capsys.readouterr().err and fake.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.csv"]


# --- interrupted and failing bakes, clashing and existing outputs, bad job files (issue 11) ---------------------

def _files(folder: Path) -> list[str]:
    """Every file and folder under `folder`, hidden ones included, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_sigterm_while_outputs_are_staged_leaves_no_temporaries_and_no_folder(tmp_path, fake, monkeypatch, capsys):
    import signal

    def export_then_get_stopped(context, obj, path, preset, frame_range, staged_path):
        Path(staged_path).write_bytes(b"half an FBX")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(batch.targets, "export_fbx", export_then_get_stopped)
    code = batch.main(["--bake", "smile", "-o", str(tmp_path / "out")])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert _files(tmp_path) == []


def test_a_failing_bake_leaves_no_folder_and_names_the_users_path(tmp_path, fake, monkeypatch, capsys):
    from model_runtime.errors import OutputError

    def preview_fails(anim, path):
        raise OutputError(f"Cannot write {path}: the disk is full.")

    monkeypatch.setattr(batch, "write_animation_preview", preview_fails)
    code = batch.main(["--bake", "smile", "-o", str(tmp_path / "deep" / "out")])
    err = capsys.readouterr().err
    assert code == 2 and _files(tmp_path) == []
    assert str(tmp_path / "deep" / "out" / "smile.png") in err and ".tmp" not in err


def test_non_latin_instructions_get_their_own_files(tmp_path, fake):
    first = batch.bake("улыбнись широко", tmp_path, fps=30)
    second = batch.bake("微笑", tmp_path, fps=30)
    assert len(_files(tmp_path)) == 6 and set(first.values()).isdisjoint(second.values())


def test_existing_outputs_need_force_and_special_files_are_never_replaced(tmp_path, fake, capsys):
    from model_runtime.errors import OutputError

    out = tmp_path / "face.blend"
    out.write_bytes(b"the user's own work")
    args = ["--instruction", "smile", "--out", str(out), "--preview", str(tmp_path / "face.png")]
    assert batch.main(args) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"the user's own work"
    assert _files(tmp_path) == ["face.blend"] and fake.calls == []
    (tmp_path / "smile.png").write_bytes(b"an older preview")
    with pytest.raises(OutputError, match="--force"):
        batch.bake("smile", tmp_path, fps=30)
    assert _files(tmp_path) == ["face.blend", "smile.png"]
    assert batch.main([*args, "--force"]) == 0 and out.read_bytes()[:7] == b"BLENDER"
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert batch.main(["--instruction", "smile", "--preview", str(fifo), "--force"]) == 2
    assert "not a regular file" in capsys.readouterr().err and fifo.is_fifo()


def _jobs_file(folder: Path, rows, name="jobs.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(rows) if name.endswith(".json") else rows, encoding="utf-8")
    return path


@pytest.mark.parametrize("rows, fragment", [
    ([{"instruction": "smile", "out": "a.blend"}, {"instruction": "frown", "out": "a.blend"}], "both write"),
    ([{"instruction": "smile", "out": "a.blend", "fbx": "a.blend"}], "must end in .fbx"),
    ([{"instruction": "smile", "preview": "a.png"}, {"instruction": "frown", "preview": "./a.png"}], "both write"),
    ([{"instruction": ["smile", "frown"], "out": "a.blend"}], "instruction must be text"),
    ([{"instruction": "smile", "out": "a.txt"}], "must end in .blend"),
    ([{"instruction": "smile", "preview": "a.jpg"}], "must end in .png"),
    ([{"instruction": "smile", "out": "a.blend", "start_frame": -100000000}], "start frame"),
    ([{"instruction": "smile", "out": "a.blend", "fps": 0}], "frame rate"),
    ([{"instruction": "smile", "out": "a.blend", "fps": 29.97}], "fps must be a whole number"),
    ([{"instruction": "smile", "out": "a.blend", "mirror": [1]}], "mirror must be true or false"),
    ("instruction,out\nsmile,a.blend,b.blend,extra\n", "'b.blend', 'extra'"),
    ("instruction,out,colour\nsmile,a.blend,red\n", "'colour'"),
])
def test_bad_jobs_files_are_one_sentence_before_any_job_runs(tmp_path, fake, capsys, rows, fragment):
    jobs = _jobs_file(tmp_path, rows, "jobs.csv" if isinstance(rows, str) else "jobs.json")
    assert batch.main(["--jobs", str(jobs)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Error" not in err.replace("i2fet batch: ", "")
    assert fake.calls == [] and _files(tmp_path) == [jobs.name]


def test_a_jobs_file_nested_too_deeply_for_json_is_one_sentence(tmp_path, fake, capsys):
    jobs = tmp_path / "jobs.json"
    jobs.write_text("[" * 100_000 + "]" * 100_000)  # json.loads recurses once per bracket
    assert batch.main(["--jobs", str(jobs)]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and err.count("\n") == 1 and "Traceback" not in err
    assert fake.calls == [] and _files(tmp_path) == [jobs.name]


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path, fake):
    jobs = tmp_path / "jobs.csv"
    jobs.write_bytes("\ufeffinstruction,out\nsmile,a.blend\n".encode("utf-8"))
    assert batch.main(["--jobs", str(jobs)]) == 0 and (tmp_path / "a.blend").is_file()


@pytest.mark.parametrize("content", [b"not a blend at all\n" * 50, "truncated"])
def test_a_bad_blend_is_one_sentence(tmp_path, fake, capsys, content):
    blend = tmp_path / "face.blend"
    if content == "truncated":
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=False)
        data = blend.read_bytes()
        blend.write_bytes(data[: len(data) // 3])
    else:
        blend.write_bytes(content)
    code = batch.main(["--bake", "smile", "-o", str(tmp_path / "out"), "--blend", str(blend)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a .blend file Blender can open" in err and err.count("\n") == 1
    assert "unexpectedly" not in err and not (tmp_path / "out").exists()
