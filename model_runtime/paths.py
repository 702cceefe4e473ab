"""Where the runtime keeps derived files, how it caches derived arrays, and how it writes files so no half-written
one is ever left behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import I2FETError, InputError, OutputError

log = logging.getLogger(__name__)


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
    block succeeds every temporary replaces its target, when it fails (an error, or an interruption: see
    `interrupts_raise`) every temporary is removed, and so is every folder `stage` had to create. Targets that already
    existed are left untouched on failure. An error whose message names a temporary names its target instead.
    """

    def __init__(self, create_folders: bool = False) -> None:
        self.create_folders = create_folders
        self._pending: list[tuple[Path, Path]] = []
        self._created: list[Path] = []

    def stage(self, path: str | os.PathLike) -> Path:
        target = Path(path)
        if self.create_folders:
            self._make_folder(target.parent)
        check_writable_folder(target)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
        except OSError as exc:
            raise OutputError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        os.close(fd)
        os.chmod(tmp_name, _new_file_mode())
        self._pending.append((Path(tmp_name), target))
        return Path(tmp_name)

    def _make_folder(self, folder: Path) -> None:
        missing = []
        while str(folder) and not folder.exists() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except OSError as exc:
                raise OutputError(f"Cannot create the folder {folder}: {exc.strerror or exc}.") from None
            self._created.append(folder)

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        names = ", ".join(str(target) for _, target in self._pending) or "the outputs"
        succeeded = False
        try:
            if exc_type is not None and issubclass(exc_type, OSError):  # a full disk while writing: one sentence
                raise OutputError(f"Cannot write {names}: {self._user_names(exc.strerror or str(exc))}.") from None
            if exc is not None:  # whatever the error, its message names the user's files
                exc.args = tuple(self._user_names(a) if isinstance(a, str) else a for a in exc.args)
            if exc_type is None:
                for tmp, target in self._pending:
                    try:
                        os.replace(tmp, target)
                    except OSError as err:
                        raise OutputError(f"Cannot write {target}: {err.strerror or err}.") from None
                succeeded = True
        finally:
            for tmp, _ in self._pending:  # after a success none is left; after any failure, all are removed
                for leftover in (tmp, Path(f"{tmp}@")):  # Blender saves a .blend through `name@`
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
            self._pending.clear()
            if not succeeded:
                for folder in reversed(self._created):  # only the ones this left empty
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            self._created.clear()

    def _user_names(self, message: str) -> str:
        """`message` with every temporary's name replaced by the path the user gave."""
        for tmp, target in self._pending:
            message = message.replace(str(tmp), str(target)).replace(tmp.name, str(target))
        return message


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl+C so that every `finally` (and StagedOutputs) cleans up on the way out."""


@contextlib.contextmanager
def _signal_handlers(handlers: dict) -> Iterator[None]:
    """`handlers` ({signal number: handler}) inside the block, the previous ones restored after it."""
    import signal

    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Inside the block SIGTERM raises `Interrupted` and SIGINT KeyboardInterrupt instead of ending the process on the
    spot, which would leave temporaries behind. Main thread only."""
    import signal

    def _raise(signum, _frame):
        raise Interrupted(f"signal {signum}")

    with _signal_handlers({signal.SIGTERM: _raise, signal.SIGINT: signal.default_int_handler}):
        yield


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM are held and raised when it ends: an exception inside a Blender operator
    would be printed as a traceback and half-done, so the operator finishes first. Main thread only."""
    import signal

    caught: list[int] = []

    def _hold(signum, _frame):
        caught.append(signum)

    with _signal_handlers({signal.SIGTERM: _hold, signal.SIGINT: _hold}):
        yield
    if caught:
        raise (Interrupted if caught[0] == signal.SIGTERM else KeyboardInterrupt)(f"signal {caught[0]}")


def check_input_name(path: str | os.PathLike, what: str) -> Path:
    """`path` as a Path, or InputError (one sentence) when the file system cannot even look it up (a name longer than
    it takes, a loop of links): `exists` and `is_file` would raise OSError for those instead of answering."""
    source = Path(path)
    try:
        os.stat(source)
    except (FileNotFoundError, NotADirectoryError):
        pass  # each loader says "does not exist" in its own words
    except OSError as exc:
        raise InputError(f"The {what} {source} cannot be looked up: {exc.strerror or exc}.") from None
    return source


def refuse_special_file(path: Path, what: str, give: str) -> None:
    """InputError (one sentence) when `path` is a pipe, a device or a socket: reading one waits forever or never
    ends. A folder or a missing file is left to each loader's own words."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(f"The {what} {path} is not a regular file (a pipe or a device); give {give}.")


def check_writable_folder(path: str | os.PathLike, create: bool = False) -> None:
    """Fail before any work is done when the folder of an output file cannot take it; with `create`, a missing folder
    is fine when the nearest folder that exists could hold it (it is made only when the outputs land)."""
    target = Path(path)
    try:
        _check_writable_folder(target, create)
    except OSError as exc:  # a name longer than the file system takes, a loop of links
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}.") from None


def _check_writable_folder(target: Path, create: bool) -> None:
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"Cannot write {target}: it is a folder; give a file name.")
    if create:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputError(f"Cannot write {target}: {parent} is not a folder.")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"Cannot write {target}: {parent} is a file, not a folder.")
    if not parent.is_dir():
        raise OutputError(f"Cannot write {target}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write {target}: the folder {parent} is not writable.")


def check_new_output(path: str | os.PathLike, force: bool = False) -> None:
    """Refuse to replace an existing output unless `force`, and never replace anything but a regular file (a device
    node, FIFO or socket stays as it is)."""
    target = Path(path)
    if not os.path.lexists(target):
        return
    if target.is_dir():
        raise OutputError(f"Cannot write {target}: it is a folder; give a file name.")
    if not target.is_file():
        raise OutputError(f"Cannot write {target}: it is not a regular file (a device, FIFO or socket).")
    if not force:
        raise OutputError(f"{target} already exists; give --force to replace it.")


def output_clash(outputs: Iterable[tuple[object, str | os.PathLike]]) -> tuple[object, object, str] | None:
    """The first two `(owner, path)` pairs of different owners whose paths name one file (through `..` or links), as
    (first owner, second owner, second path), or None."""
    seen: dict[str, object] = {}
    for owner, path in outputs:
        key = os.path.normcase(os.path.realpath(path))
        if key in seen and seen[key] != owner:
            return seen[key], owner, str(path)
        seen[key] = owner
    return None


def check_distinct_outputs(outputs: list[tuple[str, str | os.PathLike]]) -> None:
    """Refuse two outputs (`(who, path)` pairs) that name one file, before either is written."""
    clash = output_clash(outputs)
    if clash:
        raise InputError(f"{clash[0]} and {clash[1]} would both write {clash[2]}; give each output its own file.")


# ----------------------------------------------------------------------------------------------------------------
# Derived-array caches

_SOURCE_FIELD = "cache_source_key"
_CONTENT_FIELD = "cache_content_sha256"


def content_key(*parts) -> str:
    """A short stable hash of JSON-able `parts` (names, versions, file hashes, phrase lists): a cache key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of `arrays` (in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class NpzCache:
    """One cache file of named arrays at `relative` under `cache_dir()` (an absolute path is used as it is), trusted
    only after checking.

    The file records `source_key` (the hash of what the arrays were built from) and the sha256 of the arrays
    themselves. `read()` returns the arrays only when the file loads without pickles, both hashes match, every
    field in `fields` is there, no float array holds NaN or inf and `check(arrays)` (the owner's shape test) is
    true; anything else means None, and the caller rebuilds. Writing is atomic; a cache that cannot be written only
    costs time, so `write()` never fails.
    """

    def __init__(self, relative: str | os.PathLike, source_key: str, *, fields: tuple[str, ...] = (),
                 check: Callable[[dict[str, np.ndarray]], bool] | None = None, compress: bool = False):
        self.relative = Path(relative)
        self.source_key = source_key
        self.fields = tuple(fields)
        self.check = check
        self.compress = compress

    @property
    def path(self) -> Path:
        return cache_dir() / self.relative

    def read(self) -> dict[str, np.ndarray] | None:
        try:
            path = self.path
            if not path.is_file():
                return None
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, OutputError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            return self._reject(f"unreadable ({exc})")
        source = arrays.pop(_SOURCE_FIELD, None)
        content = arrays.pop(_CONTENT_FIELD, None)
        if source is None or content is None or str(source) != self.source_key:
            return self._reject("made from other data")
        if str(content) != arrays_sha256(arrays):
            return self._reject("its content does not match its hash")
        missing = [name for name in self.fields if name not in arrays]
        if missing:
            return self._reject(f"{missing[0]!r} is missing")
        if any(a.dtype.kind in "fc" and not np.isfinite(a).all() for a in arrays.values()):
            return self._reject("it holds non-finite values")
        try:
            fits = self.check is None or bool(self.check(arrays))
        except (I2FETError, ValueError, TypeError, IndexError, KeyError):
            fits = False
        if not fits:
            return self._reject("its arrays have the wrong shapes")
        return arrays

    def write(self, arrays: dict[str, np.ndarray]) -> None:
        stored = {name: np.asarray(value) for name, value in arrays.items()}
        stored[_CONTENT_FIELD] = np.str_(arrays_sha256(stored))
        stored[_SOURCE_FIELD] = np.str_(self.source_key)
        try:
            path = self.path
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as handle:
                (np.savez_compressed if self.compress else np.savez)(handle, **stored)
        except (OSError, OutputError) as exc:
            log.debug("cache %s not written: %s", self.relative, exc)

    def get(self, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The cached arrays, or `build()`'s, which are then cached."""
        arrays = self.read()
        if arrays is None:
            arrays = build()
            self.write(arrays)
        return arrays

    def _reject(self, why: str) -> None:
        log.debug("cache %s rebuilt: %s", self.relative, why)
        return None
