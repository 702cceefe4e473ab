"""The one cache helper (paths.NpzCache) and the caches built on it: a cache is trusted only when it was made from
the same data and still holds what was written (issue 11, item 3)."""

import numpy as np
import pytest

from model_runtime.paths import NpzCache, arrays_sha256, content_key


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("I2FET_CACHE_DIR", str(tmp_path / "cache"))


def _arrays():
    return {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array([3, 1, 2]), "name": np.str_("a")}


def _cache_of(key="k1", **kw):
    return NpzCache("sub/thing.npz", key, fields=("x", "ids"), **kw)


def test_round_trip_and_build_once(tmp_path):
    calls = []
    first = _cache_of().get(lambda: calls.append(1) or _arrays())
    second = _cache_of().get(lambda: calls.append(1) or _arrays())
    assert calls == [1]
    assert (tmp_path / "cache" / "sub" / "thing.npz").is_file()
    for name, value in _arrays().items():
        np.testing.assert_array_equal(second[name], value)
        np.testing.assert_array_equal(first[name], value)


def _rewrite(path, **changes):
    with np.load(path) as data:
        arrays = dict(data)
    arrays.update(changes)
    np.savez(path, **arrays)


@pytest.mark.parametrize("change", [
    {"x": np.full((3, 4), 7.0, np.float32)},  # edited, hash kept
    {"extra": np.zeros(2)},  # an array added
])
def test_content_that_does_not_match_its_hash_is_refused(change):
    cache = _cache_of()
    cache.write(_arrays())
    _rewrite(cache.path, **change)
    assert cache.read() is None


def test_non_finite_missing_field_wrong_source_and_failed_check_are_refused():
    cache = _cache_of()
    bad = {**_arrays(), "x": np.full((3, 4), np.nan, np.float32)}
    cache.write(bad)  # even with a matching hash
    assert cache.read() is None
    cache.write({"x": np.zeros((3, 4), np.float32)})
    assert cache.read() is None  # 'ids' missing
    cache.write(_arrays())
    assert _cache_of("k2").read() is None  # made from other data
    assert _cache_of(check=lambda a: a["x"].shape == (4, 3)).read() is None
    assert _cache_of(check=lambda a: a["x"].shape == (3, 4)).read() is not None
    for garbage in (b"not a zip", cache.path.read_bytes()[:100]):
        cache.path.write_bytes(garbage)
        assert cache.read() is None


def test_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("I2FET_CACHE_DIR", str(blocker))
    arrays = _cache_of().get(_arrays)
    np.testing.assert_array_equal(arrays["ids"], [3, 1, 2])


def test_keys_and_hashes_are_stable_and_sensitive():
    assert content_key("a", [1, 2]) == content_key("a", [1, 2]) != content_key("a", [2, 1])
    a = _arrays()
    assert arrays_sha256(a) == arrays_sha256(dict(reversed(list(a.items()))))
    assert arrays_sha256(a) != arrays_sha256({**a, "x": a["x"].reshape(4, 3)})
    assert arrays_sha256(a) != arrays_sha256({**a, "ids": a["ids"].astype(np.int32)})


def _poison(path, name, fill):
    with np.load(path) as data:
        arrays = dict(data)
    arrays[name] = np.full_like(arrays[name], fill)
    np.savez(path, **arrays)


def test_concept_index_cache_filled_with_nan_is_rebuilt(tmp_path):
    from model_runtime import Runtime
    from model_runtime.knowledge import get_concept

    first = Runtime.load(model="baseline", device="cpu").generate("look disgusted").segments[0]
    [path] = (tmp_path / "cache").glob("concept-index-*.npz")
    _poison(path, "embeddings", np.nan)  # same shape, same keys
    again = Runtime.load(model="baseline", device="cpu").generate("look disgusted").segments[0]
    assert get_concept(again["concept"]).family == "disgust"
    assert again["label"] == first["label"] and again["confidence"] == first["confidence"] > 0


def test_flame_cache_with_a_changed_v_template_is_not_returned_as_the_model(tmp_path):
    from flame_samples import tiny_flame_arrays
    from model_runtime.rigs import load_flame

    arrays = tiny_flame_arrays(4)
    np.savez(tmp_path / "flame.npz", **arrays)
    first = load_flame(tmp_path / "flame.npz")
    [cached] = (tmp_path / "cache" / "flame").glob("*.npz")
    with np.load(cached) as data:
        stored = dict(data)
    stored["v_template"] = stored["v_template"] + 0.05  # plausible, finite, same shape; the stored hashes kept
    np.savez(cached, **stored)
    second = load_flame(tmp_path / "flame.npz")
    np.testing.assert_allclose(second.v_template, arrays["v_template"])
    np.testing.assert_array_equal(second.v_template, first.v_template)


def test_default_head_files_are_keyed_by_content(tmp_path, monkeypatch):
    """An edit to a head data file that keeps its size and modification time still changes the key of what is built
    from it (the head, the render masks)."""
    import os

    from model_runtime.heads import head as head_module

    root = tmp_path / "default_head_data"
    target = root / "faceunits" / "x.target"
    target.parent.mkdir(parents=True)
    target.write_text("12 0.1 0.2 0.3\n")
    monkeypatch.setattr(head_module, "_DATA_DIR", root)
    before = head_module.source_key([target])
    assert head_module.source_key([target]) == before
    stat = target.stat()
    target.write_text("12 0.1 0.2 0.4\n")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    assert head_module.source_key([target]) != before
