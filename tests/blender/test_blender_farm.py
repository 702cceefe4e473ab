"""Batch baking on a pool of workers (`i2fet_blender.farm`): same outputs as one process, a resumable manifest,
crashed workers, bad jobs files, and the Open Job Description template run locally by `openjd`."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from blender_helpers import FakeRuntime, use_fake_runtime
from i2fet_blender import batch, farm, runtime_cache

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "farm" / "i2fet-bake.openjd.yaml"
OPENJD = Path(sys.executable).with_name("openjd")
ROWS = [{"instruction": "smile", "seed": 0, "animation": "a.json", "preview": "a.png"},
        {"instruction": "frown, then smile", "seed": 3, "animation": "b.json"},
        {"instruction": "wink with the left eye", "seed": 1, "animation": "c.json"},
        {"instruction": "look surprised", "seed": 2, "animation": "d.json"}]


def jobs_file(folder: Path, rows=ROWS, name="jobs.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(rows))
    return path


def bytes_of(folder: Path, names) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in names}


def test_two_workers_match_one_process_and_rerun_skips(tmp_path, capsys, monkeypatch):
    # ground truth: the sequential baker of `i2fet_blender.batch`, in this process
    runtime_cache.release()
    monkeypatch.setattr(runtime_cache, "_load", lambda settings: FakeRuntime())
    assert batch.main(["--jobs", str(jobs_file(tmp_path / "one"))]) == 0
    runtime_cache.release()
    jobs = jobs_file(tmp_path / "two")
    capsys.readouterr()
    assert farm.main(["--jobs", str(jobs), "--workers", "2"], setup=use_fake_runtime) == 0
    out = capsys.readouterr().out
    names = ["a.json", "a.png", "b.json", "c.json", "d.json"]
    assert bytes_of(tmp_path / "two", names) == bytes_of(tmp_path / "one", names)
    assert "chunk 4 row(s): 4 to bake, 0 skipped" in out and "[4/4]" in out and "baked 4, skipped 0, failed 0" in out
    summary = json.loads((tmp_path / "two" / "jobs.summary.json").read_text())
    assert summary["counts"] == {"baked": 4, "skipped": 0, "failed": 0} and summary["workers"] == 2
    manifest = json.loads((tmp_path / "two" / "jobs.manifest.json").read_text())
    assert sorted(e["row"] for e in manifest["rows"].values()) == [1, 2, 3, 4]

    # a rerun skips every row; an output changed since is baked again (and only that row)
    (tmp_path / "two" / "c.json").write_text("{}")
    before = (tmp_path / "two" / "a.json").stat().st_mtime_ns
    assert farm.main(["--jobs", str(jobs), "--workers", "2"], setup=use_fake_runtime) == 0
    out = capsys.readouterr().out
    assert "1 to bake, 3 skipped" in out
    assert (tmp_path / "two" / "c.json").read_bytes() == (tmp_path / "one" / "c.json").read_bytes()
    assert (tmp_path / "two" / "a.json").stat().st_mtime_ns == before
    summary = json.loads((tmp_path / "two" / "jobs.summary.json").read_text())
    assert [r["status"] for r in summary["rows"]] == ["skipped", "skipped", "baked", "skipped"]

    # a row whose settings changed is baked again; --force bakes every row
    changed = [dict(ROWS[0], seed=9), *ROWS[1:]]
    jobs_file(tmp_path / "two", changed)
    assert farm.main(["--jobs", str(jobs), "--workers", "1"], setup=use_fake_runtime) == 0
    assert "1 to bake, 3 skipped" in capsys.readouterr().out
    assert farm.main(["--jobs", str(jobs), "--workers", "2", "--force"], setup=use_fake_runtime) == 0
    assert "4 to bake, 0 skipped" in capsys.readouterr().out


def test_a_row_whose_worker_crashes_is_retried_once_then_reported(tmp_path, capsys):
    rows = [{"instruction": "smile", "animation": "a.json"}, {"instruction": "crash", "animation": "x.json",
                                                               "preview": "x.png"},
            {"instruction": "frown", "animation": "c.json"}]
    jobs = jobs_file(tmp_path / "always", rows)
    code = farm.main(["--jobs", str(jobs), "--workers", "2"], setup=functools.partial(use_fake_runtime, "crash"))
    captured = capsys.readouterr()
    assert code == 1
    assert "row 2: its worker stopped (exit code 3); trying the row once more" in captured.out
    assert "FAILED row 2 job 2 ('crash'): its worker stopped twice" in captured.err
    assert captured.err.count("FAILED") == 1
    # the other rows are baked; the crashed row left nothing (not even its staged temporaries)
    assert sorted(p.name for p in (tmp_path / "always").iterdir()) == ["a.json", "c.json", "jobs.json",
                                                                      "jobs.manifest.json", "jobs.summary.json"]
    summary = json.loads((tmp_path / "always" / "jobs.summary.json").read_text())
    assert [r["status"] for r in summary["rows"]] == ["baked", "failed", "baked"]

    jobs = jobs_file(tmp_path / "once", rows)
    marker = tmp_path / "crashed-once"
    code = farm.main(["--jobs", str(jobs), "--workers", "1"],
                     setup=functools.partial(use_fake_runtime, "crash", str(marker)))
    assert code == 0 and marker.exists()
    assert {"a.json", "x.json", "x.png", "c.json"} <= {p.name for p in (tmp_path / "once").iterdir()}
    assert not [p for p in (tmp_path / "once").iterdir() if p.name.startswith(".")]


def test_failing_row_does_not_stop_the_others(tmp_path, capsys):
    rows = [{"instruction": "smile", "animation": "a.json"}, {"instruction": "frown", "blend": "nope.blend",
                                                               "animation": "b.json"}]
    code = farm.main(["--jobs", str(jobs_file(tmp_path, rows)), "--workers", "2"], setup=use_fake_runtime)
    captured = capsys.readouterr()
    assert code == 1 and "FAILED row 2" in captured.err and "nope.blend" in captured.err
    assert (tmp_path / "a.json").is_file() and not (tmp_path / "b.json").exists()


def test_rows_bakes_one_chunk_with_its_own_manifest(tmp_path, capsys):
    jobs = jobs_file(tmp_path)
    assert farm.main(["--jobs", str(jobs), "--rows", "2+2"], setup=use_fake_runtime) == 0
    assert "chunk rows 2-3: 2 to bake" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "c.json", "jobs.json",
                                                         "jobs.rows-2-3.manifest.json", "jobs.rows-2-3.summary.json"]


@pytest.mark.parametrize("content, fragment", [
    ("[]", "holds no jobs"),
    ("[{\"instruction\": \"smile\", \"animation\": \"a.json\"", "is not valid JSON"),
    (json.dumps([{"instruction": "smile", "animation": "a.json"}, {"instruction": "frown", "animation": "a.json"}]),
     "Jobs 1 and 2 both write"),
    (json.dumps([{"instruction": "smile", "animation": "a.json", "colour": "red"}]), "unknown field(s) 'colour'"),
])
def test_bad_jobs_files_one_sentence_nothing_written(tmp_path, capsys, content, fragment):
    jobs = tmp_path / "jobs.json"
    jobs.write_text(content)
    assert farm.main(["--jobs", str(jobs), "--workers", "2"], setup=use_fake_runtime) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.strip().count("\n") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.json"]


@pytest.mark.parametrize("args, fragment", [
    (["--rows", "5-6"], "only 4 row(s)"),
    (["--rows", "3-1"], "cannot run backwards"),
    (["--rows", "x"], "--rows takes A-B"),
    (["--workers", "0"], "--workers must be 1 or more"),
])
def test_bad_rows_and_workers(tmp_path, capsys, args, fragment):
    jobs = jobs_file(tmp_path)
    assert farm.main(["--jobs", str(jobs), *args], setup=use_fake_runtime) == 2
    assert fragment in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.json"]


def test_unreadable_manifest_is_refused_unless_forced(tmp_path, capsys):
    jobs = jobs_file(tmp_path, ROWS[:1])
    (tmp_path / "jobs.manifest.json").write_text("{not json")
    assert farm.main(["--jobs", str(jobs)], setup=use_fake_runtime) == 2
    assert "delete it or rerun with --force" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()
    assert farm.main(["--jobs", str(jobs), "--force"], setup=use_fake_runtime) == 0
    assert json.loads((tmp_path / "jobs.manifest.json").read_text())["version"] == 1


@pytest.mark.slow
def test_openjd_template_matches_the_local_batch(tmp_path):
    """`openjd check` accepts the template; `openjd run` (chunks of 2 rows, the real model) writes byte-identical
    animation JSON to `i2fet bake --jobs --workers 2` and to the one-process baker `i2fet_blender.batch --jobs`."""
    check = subprocess.run([str(OPENJD), "check", str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = [{k: v for k, v in row.items() if k != "preview"} for row in ROWS[:3]]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = {}
    for name, command in {
        "single": [sys.executable, "-m", "i2fet_blender.batch", "--jobs", "{jobs}", "--model", "baseline"],
        "workers": [sys.executable, "-m", "model_runtime", "bake", "--jobs", "{jobs}", "--workers", "2", "--model",
                    "baseline"],
        "openjd": [str(OPENJD), "run", str(TEMPLATE), "--step", "Bake", "-p", "JobsFile={jobs}", "-p", "RowCount=3",
                   "-p", "ChunkSize=2", "-p", "Model=baseline", "-p", f"Python={sys.executable}",
                   "-p", f"ProjectDir={ROOT}"],
    }.items():
        jobs = jobs_file(tmp_path / name, rows)
        proc = subprocess.run([part.replace("{jobs}", str(jobs)) for part in command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        runs[name] = bytes_of(tmp_path / name, ["a.json", "b.json", "c.json"])
    assert runs["workers"] == runs["single"]
    assert runs["openjd"] == runs["single"]
    assert sorted(p.name for p in (tmp_path / "openjd").glob("*.summary.json")) == ["jobs.rows-1-2.summary.json",
                                                                                    "jobs.rows-3-3.summary.json"]


def test_each_row_is_claimed_in_the_manifest_before_its_outputs_are_written(tmp_path, monkeypatch):
    from model_runtime.jobs import Manifest

    seen, claim = [], Manifest.claim

    def watched(self, key, row, outputs):  # the real claim, watched: were the row's outputs there yet?
        seen.append((row, any(os.path.exists(p) for p in outputs)))
        claim(self, key, row, outputs)

    monkeypatch.setattr(Manifest, "claim", watched)
    assert farm.main(["--jobs", str(jobs_file(tmp_path))], setup=use_fake_runtime) == 0
    assert sorted(seen) == [(1, False), (2, False), (3, False), (4, False)]


def test_outputs_written_but_not_yet_recorded_are_the_reruns_to_replace(tmp_path, capsys):
    """A stop between a worker writing a row's files and the manifest recording them (the row's claim, no digest,
    still in the manifest) leaves files the rerun bakes again without --force; a file no row claimed is refused."""
    jobs = jobs_file(tmp_path)
    assert farm.main(["--jobs", str(jobs)], setup=use_fake_runtime) == 0
    path = tmp_path / "jobs.manifest.json"
    manifest = json.loads(path.read_text())
    key = next(k for k, e in manifest["rows"].items() if e["row"] == 2)
    manifest["rows"][key]["outputs"] = dict.fromkeys(manifest["rows"][key]["outputs"], "")  # claimed, not done
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert farm.main(["--jobs", str(jobs)], setup=use_fake_runtime) == 0
    assert "1 to bake, 3 skipped" in capsys.readouterr().out
    assert json.loads(path.read_text())["rows"][key]["outputs"][str(tmp_path / "b.json")] != ""

    other = tmp_path / "other"
    jobs = jobs_file(other)
    (other / "b.json").write_text("{}")  # someone else's file where row 2 writes
    assert farm.main(["--jobs", str(jobs)], setup=use_fake_runtime) == 1
    assert (other / "b.json").read_text() == "{}" and "already exists" in capsys.readouterr().out


def test_interrupted_run_resumes_without_losing_rows(tmp_path):
    """Ctrl-C mid-run: exit 130 with one sentence, no staged files left; the rerun skips what was done."""
    rows = [{"instruction": text, "seed": i, "animation": f"r{i}.json", "preview": f"r{i}.png"}
            for i, text in enumerate(["smile", "frown", "wink with the left eye", "look surprised", "look sad",
                                      "look angry", "smile, then frown", "raise the right eyebrow"])]
    jobs = jobs_file(tmp_path, rows)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import blender_helpers; "
              "from i2fet_blender import farm; "
              "sys.exit(farm.main(['--jobs', sys.argv[2]], setup=getattr(blender_helpers, sys.argv[3])))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Ctrl-C's default action in the farm, even when the suite runs from a background shell that ignores SIGINT
    # (a child would inherit the ignoring, and the farm would finish every row)
    proc = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent), str(jobs),
                             "use_slow_fake_runtime"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("[1/8]"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted; rows already baked are in the manifest" in err and err.strip().count("\n") == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    done = json.loads((tmp_path / "jobs.manifest.json").read_text())["rows"]
    assert 1 <= len(done) < 8
    proc = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(jobs), "use_fake_runtime"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{8 - len(done)} to bake, {len(done)} skipped" in proc.stdout
    assert all((tmp_path / f"r{i}.json").is_file() and (tmp_path / f"r{i}.png").is_file() for i in range(8))
