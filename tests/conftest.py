import os

import pytest

from model_runtime import head as head_module


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
