"""The process's one copy of the native kernel: loaded (built if needed) on first use, once.

State: the imported extension, or the reason it could not be had. The first :func:`available` call
builds or imports the kernel while holding a process-wide lock; threads arriving meanwhile wait for
that outcome and share it (never a spurious "unavailable"). Inter-process safety is :mod:`.build`'s.
``LSTM_BRIDGE_BACKEND=torch`` never builds or imports anything.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Optional, TypeVar

import torch

__all__ = ["attempted", "available", "error", "module", "require"]

_lock = threading.Lock()
_module: Optional[ModuleType] = None
_error: Optional[str] = None
_tried = False  # a build/import was attempted in this process (its outcome is in _module / _error)

_F = TypeVar("_F", bound=Callable[..., Any])


def _backend_disabled() -> bool:
    return os.environ.get("LSTM_BRIDGE_BACKEND", "auto").strip().lower() == "torch"


def _assume_constant_result(fn: _F) -> _F:
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo`` (~0.9 s) when it is not
    loaded yet: that decorator only sets the marker dynamo reads when it meets ``fn`` (a test holds the two
    together)."""
    if "torch._dynamo" in sys.modules:
        marked: _F = torch.compiler.assume_constant_result(fn)  # type: ignore[no-untyped-call]
        return marked
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


@_assume_constant_result  # dynamo calls it (a build, a lock) instead of tracing it
def available() -> bool:
    """True when the kernel is built and imported; builds it on the first call (once, cached).

    Returns False (reason in :func:`error`) when the toolchain is missing, the build or import
    failed, or ``LSTM_BRIDGE_BACKEND=torch`` (which never builds). Thread-safe: concurrent first
    calls wait for one build/import and all see its outcome.
    """
    global _module, _error, _tried
    if _module is not None:
        return True
    if _backend_disabled():
        return False
    with _lock:
        if _module is not None:
            return True
        if _tried:
            return False
        from . import pool

        pool_limit = pool.limit_bytes_from_env()  # a bad LSTM_BRIDGE_POOL_MIB raises here, every call
        try:
            from . import build

            loaded, _ = build.load()
            loaded.pool_set_limit(pool_limit)
        except (RuntimeError, OSError, ImportError) as exc:  # a failed build/load: recorded, shown by backend
            _error = f"native kernel build/load failed: {exc}"
            return False
        finally:
            _tried = True
        _module, _error = loaded, None
        return True


def error() -> Optional[str]:
    """Why the kernel is unavailable, or None."""
    if _module is None and _backend_disabled():
        return "disabled by LSTM_BRIDGE_BACKEND=torch"
    return _error


def module() -> Optional[ModuleType]:
    """The imported extension, or None when :func:`available` has not (successfully) run."""
    return _module


def require() -> ModuleType:
    """The extension, built or imported on first use (:func:`available`); RuntimeError with the reason and
    the remedy when it is unavailable."""
    if not available() or _module is None:
        raise RuntimeError(
            "lstm-bridge native kernel unavailable: "
            + (error() or "unknown reason")
            + " (set LSTM_BRIDGE_BACKEND=torch to run the portable torch path)"
        )
    return _module


def attempted() -> bool:
    """Whether this process has tried to build/import the kernel (``LSTM_BRIDGE_BACKEND=torch`` never does)."""
    return _tried
