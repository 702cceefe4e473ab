"""The extension package: build.py builds and validates the zip; Blender installs and enables it.

The install runs in a fresh Python process with its own Blender user folder, so the installed extension's classes
never meet the ones this test session registers from the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import build  # noqa: E402

INSTALL_SCRIPT = r"""
import json, os, sys
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != REPO]  # model_runtime must come from the wheel
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
import addon_utils
import model_runtime
out = {
    "enabled": "bl_ext.user_default.i2fet" in bpy.context.preferences.addons,
    "ops": [op for op in ("add_default_head", "generate", "clear_generated", "export_fbx", "install_runtime",
                          "import_face_video")
            if hasattr(bpy.ops.i2fet, op) and getattr(bpy.ops.i2fet, op).get_rna_type()],
    "panel": getattr(bpy.types, "I2FET_PT_main", None) is not None,
    "scene_props": hasattr(bpy.context.scene, "i2fet"),
    "runtime_from": model_runtime.__file__,
    "prefs": type(bpy.context.preferences.addons["bl_ext.user_default.i2fet"].preferences).__name__,
}
from model_runtime.generators import learned
out["weights_from"] = str(learned.load_learned(device="cpu") and learned.DEFAULT_WEIGHTS)
from model_runtime.photo import calibration
out["photo_calibration"] = [str(calibration.DEFAULT_PATH), type(calibration.load_calibration()).__name__]
out["flame_ops"] = [op for op in ("add_flame_head", "import_flame_sequence", "export_flame_sequence",
                                  "add_arkit_shape_keys") if hasattr(bpy.ops.i2fet, op)]
bpy.ops.i2fet.add_default_head()
out["head_keys"] = len(bpy.context.active_object.data.shape_keys.key_blocks)
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build.build(tmp_path_factory.mktemp("dist"))


def test_zip_layout(built):
    with zipfile.ZipFile(built) as zf:
        names = set(zf.namelist())
        manifest = zf.read("blender_manifest.toml").decode()
    assert {"__init__.py", "blender_manifest.toml", "writer.py", "utils/action_compat.py"} <= names
    wheel = next(n for n in names if n.startswith("wheels/") and n.endswith(".whl"))
    assert f'wheels = ["./{wheel}"]' in manifest and 'id = "i2fet"' in manifest
    assert not any("__pycache__" in n or n.startswith("model_runtime/") for n in names)


@pytest.mark.slow
def test_install_and_enable(built, tmp_path):
    script = tmp_path / "install.py"
    script.write_text(f"REPO = {str(ROOT)!r}\nZIP = {str(built)!r}\n" + INSTALL_SCRIPT)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"), PYTHONPATH="")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(line[len("RESULT"):])
    assert out["enabled"] and out["panel"] and out["scene_props"]
    assert out["ops"] == ["add_default_head", "generate", "clear_generated", "export_fbx", "install_runtime",
                          "import_face_video"]
    assert out["prefs"] == "I2FET_AP_preferences"
    assert str(tmp_path / "user") in out["runtime_from"], out["runtime_from"]  # imported from the bundled wheel
    assert out["head_keys"] == 53
    assert str(tmp_path / "user") in out["weights_from"]  # the learned weights travel inside the bundled wheel
    path, loaded = out["photo_calibration"]  # so does the photo calibration, and it loads
    assert str(tmp_path / "user") in path and loaded == "Calibration"
    assert len(out["flame_ops"]) == 4
