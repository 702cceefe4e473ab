"""The repository's promises about itself: the README's two commands, CI running the same one, exact pins."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_UP = "/".join(("..", "shared"))  # spelled this way so this file does not match its own check
SHARED_REFERENCE = "/".join(("shared", "reference"))


def readme_commands():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S)
    return [line for line in blocks[0].splitlines() if line.strip() and not line.startswith("#")]


def test_readme_starts_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "scripts/setup.sh" in main_job and ".venv/bin/i2fet" in main_job
    assert tests.startswith("bash scripts/setup.sh --test") and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_every_requirement_is_pinned_exactly():
    for path in (ROOT / "requirements").glob("*.txt"):
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+]*", line), (path.name, line)
    assert "numpy==1." in (ROOT / "requirements" / "runtime.txt").read_text()


def test_project_code_never_reaches_into_shared():
    for folder in ("model_runtime", "i2fet_blender", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert SHARED_UP not in text and SHARED_REFERENCE not in text, path


def test_model_runtime_never_imports_bpy():
    for path in (ROOT / "model_runtime").rglob("*.py"):
        assert not re.search(r"^\s*(import bpy|from bpy)", path.read_text(), flags=re.M), path
