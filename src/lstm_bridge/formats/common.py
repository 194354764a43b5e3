"""Helpers shared by the format modules: atomic writes, save reports, input checks."""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .atomic import atomic_output, check_output_path, same_file  # noqa: F401  (moved; re-exported)
from .model import FormatError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class SaveReport:
    """What a writer did: ``path`` written, ``format`` name, ``written`` layer names, and ``skipped``
    ``{layer name: reason}`` for entries the target format cannot hold (never dropped silently)."""

    path: str
    format: str
    written: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)


def _kind_of_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular_file(path: PathLike) -> int:
    """Check that ``path`` names an existing, readable regular file (symlinks followed); returns its size.

    Never opens the file, so a FIFO cannot block the caller.

    Raises:
        FileNotFoundError: no such file (or a symlink whose target does not exist, said so).
        IsADirectoryError: a directory.
        PermissionError: the file exists but is not readable.
        FormatError: a FIFO, a device, a socket, or a symlink loop ("expected a regular file").
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise FileNotFoundError(
                errno.ENOENT, f"dangling symlink (its target {os.readlink(p)!r} does not exist)", p
            ) from None
        raise FileNotFoundError(errno.ENOENT, "no such file", p) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FormatError(p, "symlink loop (too many levels of symbolic links); expected a regular file") from None
        if exc.errno == errno.ENAMETOOLONG:
            raise FormatError(p, "file name too long") from None
        raise
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory; expected a model file", p)
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(p, f"is {_kind_of_mode(st.st_mode)}, expected a regular file")
    if not os.access(p, os.R_OK):
        raise PermissionError(errno.EACCES, "permission denied: the file is not readable", p)
    return int(st.st_size)


def open_regular(path: PathLike) -> io.BufferedReader:
    """Open ``path`` for binary reading, refusing anything but a regular file *after* opening it
    (``O_NONBLOCK``: opening a FIFO never blocks), so a file swapped after :func:`check_regular_file`
    is still caught. Errors as :func:`check_regular_file`."""
    p = os.fspath(path)
    check_regular_file(p)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(p, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(p, f"is {_kind_of_mode(mode)}, expected a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: PathLike, limit: Optional[int] = None) -> bytes:
    """The whole regular file (errors as :func:`check_regular_file`); with ``limit``, a FormatError if
    the file is larger than ``limit`` bytes (checked before reading)."""
    with open_regular(path) as fh:
        if limit is not None:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise FormatError(os.fspath(path), f"is {size} bytes, above this reader's limit of {limit}")
        return fh.read()


def head_bytes(path_or_head: Union[PathLike, bytes, bytearray, memoryview], n: int = 64) -> bytes:
    """The first ``n`` bytes of a regular file, or of the given bytes (``b""`` for anything unreadable,
    a FIFO or a device: detection never blocks or raises)."""
    if isinstance(path_or_head, (bytes, bytearray, memoryview)):
        return bytes(path_or_head[:n])
    try:
        with open_regular(path_or_head) as fh:
            return fh.read(n)
    except (OSError, FormatError):
        return b""


def as_numpy(value: Any, where: str = "") -> np.ndarray:
    """A NumPy copy of a NumPy array / torch tensor / scalar (CPU, detached)."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.dtype == torch.bfloat16:
                raise TypeError(f"{where}: bfloat16 tensors have no NumPy dtype; cast them first")
            return t.numpy().copy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return np.array(value, copy=True)


def tensor_state(model_file: Any, report: SaveReport) -> Dict[str, Any]:
    """The model's arrays as an ordered ``{PyTorch name: torch tensor}`` (own, contiguous copies), for
    the state-dict formats; strings are not tensors and are listed in ``report.skipped``."""
    import collections

    import torch

    from .model import flatten_state_dict

    state: collections.OrderedDict[str, Any] = collections.OrderedDict()
    for k, v in flatten_state_dict(model_file).items():
        arr = np.asarray(v)
        if arr.dtype.kind in "US":
            report.skipped[k] = "a string is not a tensor"
            continue
        state[k] = torch.from_numpy(np.array(as_numpy(arr), copy=True))
    return state
