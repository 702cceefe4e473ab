"""The suite's own guard (tests/conftest.py): a skipped test or a whole run that collects too few tests fails."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _run_suite(tmp_path, body: str, floor: int, *args: str) -> subprocess.CompletedProcess:
    folder = tmp_path / "tests"
    folder.mkdir()
    shutil.copy(TESTS / "conftest.py", folder / "conftest.py")
    (folder / "collected_floor.txt").write_text(f"{floor}\n")
    (folder / "test_sample.py").write_text(body)
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent))
    return subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", *args],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)


def test_a_skipped_test_fails_the_run(tmp_path):
    proc = _run_suite(tmp_path, "import pytest\ndef test_a(): pass\ndef test_b(): pytest.skip('no')\n", floor=2)
    assert proc.returncode == 1 and "1 test(s) were skipped" in proc.stdout


def test_a_module_level_skip_of_a_missing_dependency_fails_the_run(tmp_path):
    body = "import pytest\npytest.importorskip('no_such_package_i2fet')\ndef test_a(): pass\n"
    proc = _run_suite(tmp_path, body, floor=1)
    assert proc.returncode == 1 and "skipped" in proc.stdout


def test_a_whole_run_below_the_recorded_floor_fails(tmp_path):
    proc = _run_suite(tmp_path, "def test_a(): pass\ndef test_b(): pass\n", floor=3)
    assert proc.returncode == 1 and "only 2 tests were collected, fewer than the 3" in proc.stdout


@pytest.mark.parametrize("extra", [(), ("-k", "test_a")])
def test_a_clean_run_passes_and_a_selection_is_not_held_to_the_floor(tmp_path, extra):
    floor = 99 if extra else 2  # a selection (-k) is not a whole run, so the floor does not apply
    proc = _run_suite(tmp_path, "def test_a(): pass\ndef test_b(): pass\n", floor, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
