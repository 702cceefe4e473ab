import os

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
