"""The one model per Blender session: loaded lazily, optionally on a worker thread, released on request.

No `bpy` here: the worker thread only imports and loads `model_runtime`; everything that touches Blender data stays
on the main thread (the operators poll `state()` from a modal timer).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

_lock = threading.Lock()
_runtime = None
_runtime_key: tuple | None = None
_thread: threading.Thread | None = None
_error: BaseException | None = None


@dataclass(frozen=True)
class LoadSettings:
    model: str = "i2fet"
    device: str = "auto"
    encoder: str = "minilm"
    encoder_path: str | None = None

    def key(self) -> tuple:
        return (self.model, self.device, self.encoder, self.encoder_path or None)


def _load(settings: LoadSettings):
    from model_runtime import Runtime

    return Runtime.load(model=settings.model, device=settings.device, encoder=settings.encoder,
                        encoder_path=settings.encoder_path or None)


def cached(settings: LoadSettings):
    """The loaded runtime for these settings, or None."""
    with _lock:
        return _runtime if _runtime is not None and _runtime_key == settings.key() else None


def get_runtime(settings: LoadSettings):
    """The runtime for `settings`, loading it on this thread if needed (waits for a load already running)."""
    global _runtime, _runtime_key
    thread = _thread
    if thread is not None and thread.is_alive():
        thread.join()
    with _lock:
        if _runtime is not None and _runtime_key == settings.key():
            return _runtime
    runtime = _load(settings)
    with _lock:
        _runtime, _runtime_key = runtime, settings.key()
    return runtime


def start_loading(settings: LoadSettings) -> None:
    """Begin loading on a daemon thread (no-op when loaded or already loading)."""
    global _thread, _error
    if cached(settings) is not None or (_thread is not None and _thread.is_alive()):
        return
    _error = None

    def work():
        global _runtime, _runtime_key, _error
        try:
            runtime = _load(settings)
        except BaseException as exc:  # reported on the main thread
            _error = exc
            return
        with _lock:
            _runtime, _runtime_key = runtime, settings.key()

    _thread = threading.Thread(target=work, name="i2fet-load", daemon=True)
    _thread.start()


def state(settings: LoadSettings) -> str:
    """'loaded', 'loading', 'failed' or 'idle'."""
    if cached(settings) is not None:
        return "loaded"
    if _thread is not None and _thread.is_alive():
        return "loading"
    return "failed" if _error is not None else "idle"


def take_error() -> BaseException | None:
    global _error
    err, _error = _error, None
    return err


def release() -> bool:
    """Forget the loaded model (and free GPU memory where torch is loaded). True if something was released."""
    global _runtime, _runtime_key
    with _lock:
        had = _runtime is not None
        _runtime, _runtime_key = None, None
    if had:
        import gc
        import sys

        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and getattr(torch, "cuda", None) is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    return had
