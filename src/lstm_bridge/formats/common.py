"""Helpers shared by the format modules: atomic writes, save reports, input checks."""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Union

import numpy as np

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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success ``os.replace`` it onto ``path``,
    on any error remove it (no partial output is ever left behind)."""
    p = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(p))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(p) + ".", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def read_bytes(path: PathLike) -> bytes:
    """The whole file (FileNotFoundError if missing)."""
    with open(os.fspath(path), "rb") as fh:
        return fh.read()


def head_bytes(path_or_head: Union[PathLike, bytes, bytearray, memoryview], n: int = 64) -> bytes:
    """The first ``n`` bytes of a file, or of the given bytes."""
    if isinstance(path_or_head, (bytes, bytearray, memoryview)):
        return bytes(path_or_head[:n])
    try:
        with open(os.fspath(path_or_head), "rb") as fh:
            return fh.read(n)
    except OSError:
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


def tensor_state(model_file: Any, report: "SaveReport") -> "Dict[str, Any]":
    """The model's arrays as an ordered ``{PyTorch name: torch tensor}`` (own, contiguous copies), for
    the state-dict formats; strings are not tensors and are listed in ``report.skipped``."""
    import collections

    import torch

    from .model import flatten_state_dict

    state: "collections.OrderedDict[str, Any]" = collections.OrderedDict()
    for k, v in flatten_state_dict(model_file).items():
        arr = np.asarray(v)
        if arr.dtype.kind in "US":
            report.skipped[k] = "a string is not a tensor"
            continue
        state[k] = torch.from_numpy(np.array(as_numpy(arr), copy=True))
    return state
