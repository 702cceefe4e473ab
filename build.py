"""Build the Blender extension zip and validate it with Blender's own validator.

    python build.py [--output-dir dist] [--blender-ext PATH/TO/blender_ext.py]

Layout of the zip (Blender's extension format): the contents of `i2fet_blender/` at the root, `blender_manifest.toml`
beside them, and the pure-Python runtime packed as a wheel `wheels/i2fet_runtime-<version>-py3-none-any.whl` listed
in the manifest's `wheels`. Blender installs bundled wheels when the extension is enabled, so `import model_runtime`
works inside Blender exactly as in development. (torch and the other binary dependencies are not bundled: the
preferences' Install Runtime button puts them into the extension's user folder.)

The build and the validation use `blender_ext.py`, which ships inside Blender and inside the `bpy` wheel
(`bpy/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py`), so no Blender binary is needed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "i2fet_blender"
RUNTIME_DIR = ROOT / "model_runtime"
WEIGHTS_DIR = ROOT / "weights"
PACKAGED_WEIGHTS = "_weights"  # model_runtime.paths.WEIGHTS_DIR points here when there is no checkout's weights/
MANIFEST = ROOT / "blender_manifest.toml"
WHEEL_NAME = "i2fet_runtime"
SKIP_PARTS = {"__pycache__", ".pytest_cache"}


def find_blender_ext() -> Path:
    """`blender_ext.py` from the installed `bpy` wheel (located without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build.py: the bpy package is not installed; pass --blender-ext PATH/TO/blender_ext.py.")
    for base in spec.submodule_search_locations:
        hits = sorted(Path(base).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    raise SystemExit("build.py: blender_ext.py was not found in the bpy package; pass --blender-ext.")


def runtime_version() -> str:
    text = (RUNTIME_DIR / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    return match.group(1) if match else "0.0.0"


def _files(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not SKIP_PARTS.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_runtime_wheel(out_dir: Path) -> Path:
    """A py3-none-any wheel holding only `model_runtime/` (no dependencies declared: Blender installs wheels as-is)."""
    version = runtime_version()
    dist_info = f"{WHEEL_NAME}-{version}.dist-info"
    path = out_dir / f"{WHEEL_NAME}-{version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            records.append(f"{name},{_record_hash(data)},{len(data)}")

        for file in _files(RUNTIME_DIR):
            add(file.relative_to(ROOT).as_posix(), file.read_bytes())
        for file in sorted(WEIGHTS_DIR.glob("*")):  # the shipped weights travel inside the package
            if file.suffix in (".safetensors", ".json", ".md", ".txt"):
                add(f"model_runtime/{PACKAGED_WEIGHTS}/{file.name}", file.read_bytes())
        add(f"{dist_info}/METADATA", (f"Metadata-Version: 2.1\nName: {WHEEL_NAME}\nVersion: {version}\n"
                                      f"Summary: I2FET runtime (instruction to ARKit-52 facial animation)\n"
                                      f"License: GPL-3.0-or-later\n").encode())
        add(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: i2fet build.py\nRoot-Is-Purelib: true\n"
                                  b"Tag: py3-none-any\n")
        records.append(f"{dist_info}/RECORD,,")
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, "\n".join(records) + "\n")
    return path


def stage(staging: Path) -> Path:
    """Copy the add-on, write the wheel and the manifest (with its `wheels` entry) into `staging`."""
    for file in _files(ADDON_DIR):
        target = staging / file.relative_to(ADDON_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
    wheels = staging / "wheels"
    wheels.mkdir()
    wheel = build_runtime_wheel(wheels)
    manifest = MANIFEST.read_text(encoding="utf-8")
    manifest = re.sub(r'^version = "[^"]*"', f'version = "{runtime_version()}"', manifest, count=1, flags=re.M)
    manifest = manifest.replace("[permissions]", f'wheels = ["./wheels/{wheel.name}"]\n\n[permissions]', 1)
    (staging / "blender_manifest.toml").write_text(manifest, encoding="utf-8")
    return wheel


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"build.py: {' '.join(cmd[1:3])} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def build(output_dir: Path, blender_ext: Path | None = None) -> Path:
    blender_ext = blender_ext or find_blender_ext()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="i2fet-ext-") as tmp:
        staging = Path(tmp) / "i2fet"
        staging.mkdir()
        stage(staging)
        _run([sys.executable, str(blender_ext), "validate", str(staging)])
        zip_path = output_dir / f"i2fet-{runtime_version()}.zip"
        if zip_path.exists():
            zip_path.unlink()
        _run([sys.executable, str(blender_ext), "build", "--source-dir", str(staging),
              "--output-filepath", str(zip_path)])
    _run([sys.executable, str(blender_ext), "validate", str(zip_path)])
    return zip_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build and validate the I2FET Blender extension zip.")
    parser.add_argument("--output-dir", default=str(ROOT / "dist"))
    parser.add_argument("--blender-ext", default=None, help="path to Blender's blender_ext.py")
    args = parser.parse_args(argv)
    path = build(Path(args.output_dir), Path(args.blender_ext) if args.blender_ext else None)
    print(f"Built and validated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
