import os
import sys

import pytest

from model_runtime.heads import head as head_module


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """A private cache folder for the module, so its tests neither use nor disturb the user's cache."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("I2FET_CACHE_DIR")
    os.environ["I2FET_CACHE_DIR"] = str(path)
    head_module.clear_memo()
    yield path
    head_module.clear_memo()
    if old is None:
        os.environ.pop("I2FET_CACHE_DIR", None)
    else:
        os.environ["I2FET_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def head_flame(tmp_path_factory):
    """The FLAME-format model built from the default head (tests/flame_samples.py) and its ARKit<->FLAME map, derived
    once per session in a private cache; `install(cache)` copies the map into another cache folder."""
    import shutil
    from types import SimpleNamespace

    import numpy as np

    from flame_samples import head_flame_arrays
    from model_runtime.rigs import load_flame
    from model_runtime.rigs.flame_map import flame_map_for, map_cache_path

    root = tmp_path_factory.mktemp("head-flame")
    old = os.environ.get("I2FET_CACHE_DIR")
    os.environ["I2FET_CACHE_DIR"] = str(root / "cache")
    head_module.clear_memo()
    try:
        arrays, facts = head_flame_arrays()
        path = root / "head_flame.npz"
        np.savez(path, **arrays)
        model = load_flame(path)
        fmap = flame_map_for(model)
        map_file = map_cache_path(model)
    finally:
        head_module.clear_memo()
        if old is None:
            os.environ.pop("I2FET_CACHE_DIR", None)
        else:
            os.environ["I2FET_CACHE_DIR"] = old

    def install():
        """Copy the derived map into the current cache folder (call with the module's cache_root active)."""
        target = map_cache_path(model)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(map_file, target)

    return SimpleNamespace(path=path, model=model, map=fmap, facts=facts, install=install)


# --- the suite guards itself: no skipped test, and a whole run collects at least the recorded number of tests -----
# A skipped test proves nothing, and a missing dependency (bpy, mediapipe) that makes a folder of tests vanish must
# fail the run rather than pass it with fewer tests. tests/collected_floor.txt holds the number of tests a whole run
# collected when it was last raised; raise it when tests are added.
_SESSION: list = []  # the finished session, for its final exit status
_FLOOR_FILE = os.path.join(os.path.dirname(__file__), "collected_floor.txt")


def _whole_run(config) -> bool:
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    args = [os.path.abspath(str(a)) for a in config.args]
    return (args in ([tests_dir], [os.path.dirname(tests_dir)]) and not config.option.keyword
            and not config.option.markexpr and not config.getoption("lf", False)
            and not config.getoption("deselect", None))


def pytest_sessionfinish(session, exitstatus):
    _SESSION[:] = [session]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    problems = []
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        problems.append(f"{skipped} test(s) were skipped; a skipped test proves nothing: make it run or remove it")
    if _whole_run(session.config) and exitstatus in (0, 1):
        with open(_FLOOR_FILE, encoding="utf-8") as handle:
            floor = int(handle.read().split()[0])
        if session.testscollected < floor:
            problems.append(f"only {session.testscollected} tests were collected, fewer than the {floor} recorded in "
                            f"tests/collected_floor.txt (a missing dependency hides tests)")
    if problems:
        if reporter:
            reporter.ensure_newline()
            reporter.write_sep("=", "suite guard", red=True)
            for problem in problems:
                reporter.write_line(f"{problem}.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A run that imported `bpy` ends here, after the summary, without Python's interpreter teardown, in which
    Blender's module has deadlocked (i2fet_blender.utils.process_exit says more)."""
    if "bpy" in sys.modules and _SESSION:
        from i2fet_blender.utils.process_exit import exit_after_bpy

        exit_after_bpy(int(_SESSION[0].exitstatus))
