"""Outputs that appear together or not at all: folders made only when they land, nothing left after an error or a
SIGTERM, messages that name the user's files, and the checks that protect existing files."""

from __future__ import annotations

import os
import signal

import pytest

from model_runtime.errors import InputError, OutputError
from model_runtime.paths import (Interrupted, StagedOutputs, check_distinct_outputs, check_new_output,
                                 check_writable_folder, interrupts_raise)


def _all(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_folders_are_made_when_the_outputs_land(tmp_path):
    target = tmp_path / "a" / "b" / "face.png"
    check_writable_folder(target, create=True)
    assert _all(tmp_path) == []
    with StagedOutputs(create_folders=True) as staged:
        staged.stage(target).write_bytes(b"png")
    assert _all(tmp_path) == ["a", "a/b", "a/b/face.png"] and target.read_bytes() == b"png"


def test_a_failure_removes_temporaries_and_the_folders_it_made_but_not_others(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError) as caught:
        with StagedOutputs(create_folders=True) as staged:
            staged.stage(tmp_path / "kept" / "face.fbx").write_bytes(b"")
            tmp = staged.stage(tmp_path / "new" / "deeper" / "face.png")
            raise RuntimeError(f"writing {tmp} failed (see {tmp.name})")
    assert _all(tmp_path) == ["kept"]
    message = str(caught.value)
    assert ".tmp" not in message and message.count(str(tmp_path / "new" / "deeper" / "face.png")) == 2


def test_an_output_error_names_the_users_file(tmp_path):
    with pytest.raises(OutputError, match="face.png: no space") as caught:
        with StagedOutputs() as staged:
            tmp = staged.stage(tmp_path / "face.png")
            raise OutputError(f"Cannot write {tmp}: no space.")
    assert ".tmp" not in str(caught.value) and _all(tmp_path) == []


def test_sigterm_unwinds_like_ctrl_c_and_cleans_up(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted):
        with interrupts_raise():
            with StagedOutputs(create_folders=True) as staged:
                staged.stage(tmp_path / "out" / "face.blend").write_bytes(b"half")
                os.kill(os.getpid(), signal.SIGTERM)
    assert _all(tmp_path) == [] and signal.getsignal(signal.SIGTERM) is before


def test_existing_files_need_force_and_special_files_are_refused(tmp_path):
    check_new_output(tmp_path / "new.png")
    existing = tmp_path / "old.png"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match="--force"):
        check_new_output(existing)
    check_new_output(existing, force=True)
    fifo = tmp_path / "pipe.fbx"
    os.mkfifo(fifo)
    for special in (fifo, "/dev/null"):
        with pytest.raises(OutputError, match="not a regular file"):
            check_new_output(special, force=True)
    with pytest.raises(OutputError, match="folder"):
        check_new_output(tmp_path, force=True)


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    check_distinct_outputs([("job 1 out", tmp_path / "a.blend"), ("job 2 out", tmp_path / "b.blend")])
    with pytest.raises(InputError, match="job 1 out and job 2 preview would both write"):
        check_distinct_outputs([("job 1 out", tmp_path / "a.png"), ("job 2 preview", tmp_path / "x" / ".." / "a.png")])


@pytest.mark.parametrize("create", [False, True])
@pytest.mark.parametrize("name, fragment", [
    ("a" * 300 + ".json", "File name too long"),
    ("a" * 300 + "/face.json", "File name too long"),
    ("notes.txt/face.json", "notes.txt is a file, not a folder"),
])
def test_output_names_the_file_system_cannot_take_are_one_sentence(tmp_path, create, name, fragment):
    (tmp_path / "notes.txt").write_text("x")
    if create and name.startswith("notes.txt"):
        fragment = "notes.txt is not a folder"
    with pytest.raises(OutputError) as caught:
        check_writable_folder(tmp_path / name, create=create)
    assert fragment in str(caught.value) and str(caught.value).endswith(".")
    assert _all(tmp_path) == ["notes.txt"]
