"""A per-thread buffer for large inference input projections, kept between calls.

glibc serves blocks above its largest mmap threshold (32 MiB) with fresh pages on every call: for the
large benchmark's 52 MB projection, page faults and zeroing cost ~15 ms of a ~180 ms forward. Inference
projections that big go into this buffer instead (training keeps its projection for backward, so it
cannot be reused).
"""

from __future__ import annotations

import threading
from typing import Optional

import torch

__all__ = ["MIN_BYTES", "current", "inference_buffer", "release"]

MIN_BYTES = 32 << 20
"""Projections of at least this many bytes use the buffer; smaller ones are allocated per call."""


class _Workspace(threading.local):
    buffer: Optional[torch.Tensor] = None


_workspace = _Workspace()


def inference_buffer(numel: int, dtype: torch.dtype) -> Optional[torch.Tensor]:
    """A reusable flat buffer of ``numel`` elements for an inference projection, or None when small."""
    if numel * torch.finfo(dtype).bits // 8 < MIN_BYTES:
        return None
    buf = _workspace.buffer
    if buf is None or buf.dtype != dtype or buf.numel() < numel:
        _workspace.buffer = None  # free the old one before allocating the new one
        buf = _workspace.buffer = torch.empty(numel, dtype=dtype)
    return buf[:numel]


def current() -> Optional[torch.Tensor]:
    """This thread's buffer (None when released or never needed); for tests."""
    return _workspace.buffer


def release() -> None:
    """Free this thread's inference workspace (it is kept between calls; see :data:`MIN_BYTES`)."""
    _workspace.buffer = None
