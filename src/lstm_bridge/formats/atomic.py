"""Atomic output files: write a temporary file beside the target, then move it into place in one step.

Conventions:

* The temporary file is ``.<target name>.<tag><random hex><suffix>`` in the target's directory (same
  file system, so the final move is a rename or a hard link, never a copy). It is created with
  ``O_CREAT | O_EXCL`` and mode ``0o666``: the kernel applies the process umask, so the finished file
  has the usual ``0666 & ~umask`` permissions without anyone calling ``os.umask`` (process-wide, racy).
* :func:`commit` moves it onto the target: ``replace=True`` is ``os.replace`` (an existing target is
  replaced; a symlink at the target is replaced itself, never followed); ``replace=False`` claims the
  target atomically with ``os.link`` (fails with ``FileExistsError`` when anything, even a dangling
  symlink, is there), so of two writers racing for one new name exactly one wins.
* Creation, commit and clean-up run with SIGINT/SIGTERM/SIGHUP blocked in the main thread
  (:func:`signals_deferred`): a signal arriving then is delivered right after, so a temporary file is
  never left behind between its creation and the ``try`` that removes it, nor half-moved.
* A caller that already owns a temporary file (the CLI's ``convert``, which verifies the file before it
  moves it onto OUT) marks it with :func:`writing_into`: an :func:`atomic_output` for that path inside
  yields the path itself, so a writer called on it writes there directly (one temporary file, one move).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import os
import secrets
import signal
import threading
from typing import Any, Callable, FrozenSet, Iterator, Optional, Union

from .model import FormatError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "same_file",
    "check_output_path",
    "atomic_output",
    "temp_name",
    "create_new",
    "create_temp",
    "commit",
    "remove_quietly",
    "signals_deferred",
    "hdf5_output",
    "writing_into",
    "DEFERRED_SIGNALS",
]

#: the signals held back while a temporary file is created, moved or removed (those this platform has)
DEFERRED_SIGNALS = frozenset(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))

#: errno values of file systems that cannot make hard links (then a placeholder claims the name)
_NO_HARD_LINKS = frozenset(
    getattr(errno, n) for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK", "EXDEV") if hasattr(errno, n)
)


def same_file(a: PathLike, b: PathLike) -> bool:
    """True if ``a`` and ``b`` name the same existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: PathLike, model_file: Any) -> str:
    """Refuse to write over the file the model was read from; returns the path as ``str``."""
    p = os.fspath(path)
    src = getattr(model_file, "path", None)
    if src and same_file(src, p):
        raise FormatError(p, "refusing to overwrite the input file it was read from; write elsewhere")
    if os.path.isdir(p):
        raise FormatError(p, "is a directory; expected a file path")
    return p


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold back :data:`DEFERRED_SIGNALS` for the body (main thread, POSIX); a signal that arrives
    meanwhile is delivered when the body ends. Elsewhere (other threads, no ``pthread_sigmask``)
    a no-op: Python runs signal handlers in the main thread only."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def temp_name(path: PathLike, suffix: str = ".tmp", tag: str = "") -> str:
    """A fresh hidden name beside ``path``: ``.<name>.<tag><12 hex digits><suffix>`` (not created)."""
    p = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(p))
    return os.path.join(directory, f".{base}.{tag}{secrets.token_hex(6)}{suffix}")


def create_new(name: str) -> None:
    """Create ``name`` empty, failing (``FileExistsError``) if anything is there, a dangling symlink
    included; mode ``0o666`` minus the umask (applied by the kernel)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    os.close(os.open(name, flags, 0o666))


def create_temp(path: PathLike, suffix: str = ".tmp", tag: str = "") -> str:
    """Create and return a new empty temporary file beside ``path`` (see :func:`temp_name`).

    Raises:
        OSError: the directory does not exist or is not writable (read-only file system, permissions).
    """
    for _ in range(16):
        name = temp_name(path, suffix, tag)
        try:
            create_new(name)
        except FileExistsError:
            continue
        return name
    raise FileExistsError(errno.EEXIST, "could not find a free temporary name", os.fspath(path))


def remove_quietly(path: Optional[str]) -> None:
    """Remove ``path`` if it is there (errors ignored)."""
    if path:
        with contextlib.suppress(OSError):
            os.remove(path)


def commit(tmp: str, path: PathLike, *, replace: bool = True) -> None:
    """Move the finished file ``tmp`` onto ``path`` in one step.

    ``replace=True``: ``os.replace`` (whatever is at ``path`` is replaced; a symlink there is replaced
    itself, not followed). ``replace=False``: claim ``path`` only if nothing is there: ``os.link`` then
    remove ``tmp`` (on a file system without hard links, an ``O_EXCL`` placeholder then ``os.replace``).

    Raises:
        FileExistsError: ``replace=False`` and ``path`` exists (a dangling symlink counts).
        OSError: the move failed; ``tmp`` is left for the caller to remove.
    """
    p = os.fspath(path)
    if replace:
        os.replace(tmp, p)
        return
    try:
        os.link(tmp, p, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), p) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:
            create_new(p)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), p) from None
        try:
            os.replace(tmp, p)
        except BaseException:
            remove_quietly(p)  # our own empty placeholder
            raise
        return
    remove_quietly(tmp)


#: absolute paths of temporary files whose owner writes into them directly (see :func:`writing_into`)
_OWNED: contextvars.ContextVar[FrozenSet[str]] = contextvars.ContextVar("lstm_bridge_owned_temps", default=frozenset())


@contextlib.contextmanager
def writing_into(tmp: PathLike) -> Iterator[None]:
    """For the body, ``tmp`` is a temporary file its caller owns (created, committed and removed by the
    caller): :func:`atomic_output` on ``tmp`` yields ``tmp`` itself, with no second temporary file."""
    token = _OWNED.set(_OWNED.get() | {os.path.abspath(os.fspath(tmp))})
    try:
        yield
    finally:
        _OWNED.reset(token)


@contextlib.contextmanager
def atomic_output(
    path: PathLike,
    suffix: str = ".tmp",
    *,
    exclusive: bool = False,
    tag: str = "",
    before_commit: Optional[Callable[[], None]] = None,
) -> Iterator[str]:
    """Yield a new temporary path in ``path``'s directory (created empty, mode ``0666 & ~umask``);
    when the body succeeds, :func:`commit` it onto ``path`` (``exclusive=True``: only if ``path`` does
    not exist, else ``FileExistsError``); on any exit path (error, KeyboardInterrupt, a signal turned
    into an exception) the temporary file is removed: no partial output is ever left behind.

    ``before_commit`` runs with signals held back right before the move (an exception from it stops
    the move). Inside :func:`writing_into` for ``path``, ``path`` itself is yielded (its owner commits)."""
    p = os.fspath(path)
    if os.path.abspath(p) in _OWNED.get():
        yield p
        return
    tmp: Optional[str] = None
    try:
        with signals_deferred():
            for _ in range(16):
                tmp = temp_name(p, suffix, tag)  # named before it exists: a signal cannot orphan it
                try:
                    create_new(tmp)
                except FileExistsError:  # someone else's file: never ours to remove
                    tmp = None
                    continue
                break
        if tmp is None:
            raise FileExistsError(errno.EEXIST, "could not find a free temporary name", p)
        yield tmp
        with signals_deferred():
            if before_commit is not None:
                before_commit()
            commit(tmp, p, replace=not exclusive)
    finally:
        if tmp is not None:
            with signals_deferred():
                remove_quietly(tmp)


@contextlib.contextmanager
def hdf5_output(h5py: Any, path: str) -> Iterator[Any]:
    """A new ``h5py.File`` built in memory; when the body succeeds its image is written to ``path`` with
    one ordinary file write. HDF5 itself never writes to disk, so a failed write (disk full, ``ulimit -f``)
    is a plain ``OSError`` naming ``path``: HDF5's own write errors leave objects that crash the process
    when they are freed (seen with h5py 3 on EFBIG), before any clean-up could run."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    with open(path, "wb") as fh:
        fh.write(buffer.getbuffer())
