"""Shared fixtures for the tests that run real Blender (the `bpy` wheel). Every test starts from factory settings."""

from __future__ import annotations

import os
import tempfile

# Keep Blender's user folders (extensions, config) out of the real home; must happen before `import bpy`.
_USER_RESOURCES = tempfile.mkdtemp(prefix="i2fet-blender-user-")
os.environ.setdefault("BLENDER_USER_RESOURCES", _USER_RESOURCES)

import pytest  # noqa: E402

import bpy  # noqa: E402 - a missing bpy must fail the run, never skip the Blender tests

from blender_helpers import FakeRuntime, make_animation  # noqa: E402


@pytest.fixture(autouse=True)
def factory_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene


@pytest.fixture
def animation():
    return make_animation()


@pytest.fixture
def head(factory_scene):
    from i2fet_blender.head_object import add_default_head

    return add_default_head(bpy.context)


@pytest.fixture(scope="session")
def addon():
    import i2fet_blender

    i2fet_blender.register()
    yield i2fet_blender
    i2fet_blender.unregister()


@pytest.fixture
def fake_runtime(addon, monkeypatch):
    from i2fet_blender import runtime_cache

    runtime_cache.release()
    fake = FakeRuntime()
    monkeypatch.setattr(runtime_cache, "_load", lambda settings: fake)
    yield fake
    runtime_cache.release()
