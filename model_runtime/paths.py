"""Where the runtime keeps derived files, and how it writes files so no half-written one is ever left behind."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError


# A checkout keeps the shipped weights in the repository's weights/; an installed runtime (the Blender extension's
# bundled wheel, see build.py) carries them inside the package as model_runtime/_weights.
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
WEIGHTS_DIR = _CHECKOUT_WEIGHTS if _CHECKOUT_WEIGHTS.is_dir() else Path(__file__).resolve().parent / "_weights"


def cache_dir() -> Path:
    """The per-user cache folder (I2FET_CACHE_DIR overrides); created on demand."""
    root = os.environ.get("I2FET_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "i2fet"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"The cache folder {path} cannot be used ({exc.strerror or exc}); set I2FET_CACHE_DIR to a "
                          f"writable folder.") from None
    return path


def _new_file_mode() -> int:
    """The mode an ordinary new file gets under the current umask (mkstemp would make it owner-only)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside `path` and move it into place only if the block finishes without error."""
    target = Path(path)
    check_writable_folder(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    os.chmod(tmp_name, _new_file_mode())
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):  # a full disk, a quota, a file-size limit: one sentence, nothing left behind
            raise OutputError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        raise


class StagedOutputs:
    """Several output files that appear together or not at all.

    Each `stage(path)` returns a temporary name beside `path` (same suffix, so format detection still works); when the
    block succeeds every temporary replaces its target, when it fails every temporary is removed. Targets that already
    existed are left untouched on failure.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def stage(self, path: str | os.PathLike) -> Path:
        target = Path(path)
        check_writable_folder(target)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        except OSError as exc:
            raise OutputError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        os.close(fd)
        os.chmod(tmp_name, _new_file_mode())
        self._pending.append((Path(tmp_name), target))
        return Path(tmp_name)

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        names = ", ".join(str(target) for _, target in self._pending) or "the outputs"
        try:
            if exc_type is not None and issubclass(exc_type, OSError):  # a full disk while writing: one sentence
                raise OutputError(f"Cannot write {names}: {exc.strerror or exc}.") from None
            if exc_type is None:
                for tmp, target in self._pending:
                    try:
                        os.replace(tmp, target)
                    except OSError as err:
                        raise OutputError(f"Cannot write {target}: {err.strerror or err}.") from None
        finally:
            for tmp, _ in self._pending:  # after a success none is left; after any failure, all are removed
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self._pending.clear()


def check_writable_folder(path: str | os.PathLike) -> None:
    """Fail before any work is done when the folder of an output file cannot take it."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"Cannot write {target}: it is a folder; give a file name.")
    if not parent.is_dir():
        raise OutputError(f"Cannot write {target}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write {target}: the folder {parent} is not writable.")
