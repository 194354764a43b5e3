"""An exclusive lock on a file, shared by every process that builds the native kernel.

``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. A platform with neither still builds: the
lock then covers only this process's threads and :func:`exclusive` warns once (``RuntimeWarning``),
since two processes may then compile the same kernel at once. That costs time, never correctness:
the build installs its library by an atomic rename (see :mod:`.build`), so a loader only ever sees a
complete file.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator, Optional

__all__ = ["KIND", "exclusive"]


def _optional(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_fcntl = _optional("fcntl")
_msvcrt = None if _fcntl is not None else _optional("msvcrt")
KIND = "fcntl" if _fcntl is not None else ("msvcrt" if _msvcrt is not None else "none")
"""Which inter-process lock this platform gives: ``"fcntl"``, ``"msvcrt"`` or ``"none"`` (threads only)."""

_thread_lock = threading.Lock()  # the fallback when no inter-process lock exists
_warned = False


def _warn_unlocked() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "lstm-bridge: no inter-process file lock on this platform (neither fcntl nor msvcrt "
            "imports): concurrent first builds of the native kernel may each compile it; each "
            "installs a complete library atomically",
            RuntimeWarning,
            stacklevel=3,
        )


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block; blocks until free."""
    if KIND == "none":
        _warn_unlocked()
        with _thread_lock:
            yield
        return
    with open(path, "a+b") as handle:
        fd = handle.fileno()
        if _fcntl is not None:
            _fcntl.flock(fd, _fcntl.LOCK_EX)
            try:
                yield
            finally:
                _fcntl.flock(fd, _fcntl.LOCK_UN)
            return
        assert _msvcrt is not None
        os.lseek(fd, 0, os.SEEK_SET)
        while True:  # LK_LOCK gives up after ~10 s; a build takes longer, so poll the non-blocking form
            try:
                _msvcrt.locking(fd, _msvcrt.LK_NBLCK, 1)
                break
            except OSError:
                time.sleep(0.2)
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            _msvcrt.locking(fd, _msvcrt.LK_UNLCK, 1)
