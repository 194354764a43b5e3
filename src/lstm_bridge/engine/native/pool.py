"""The kernel's buffer pool (``buffer_pool.cpp``): its limit from ``LSTM_BRIDGE_POOL_MIB``, and its state.

The kernel's large per-call tensors (projections and gates, per-step states, outputs, ``dZ``, the products
of its GEMMs) take their memory from a pool that keeps freed blocks for the next call, so a training step
does not fault the same pages in again (glibc hands the top of its heap back to the system after every
step). ``LSTM_BRIDGE_POOL_MIB`` (default 512) caps what the pool keeps free; ``0`` turns pooling off.
:func:`lstm_bridge.engine.native.release_workspace` empties it.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

from . import loader

__all__ = ["ENV", "DEFAULT_MIB", "limit_bytes_from_env", "stats"]

ENV = "LSTM_BRIDGE_POOL_MIB"
DEFAULT_MIB = 512


def limit_bytes_from_env() -> int:
    """The pool's limit in bytes from ``LSTM_BRIDGE_POOL_MIB`` (whole MiB, >= 0; unset: 512 MiB).

    Raises:
        ValueError: the variable is set to anything but a whole number of MiB >= 0.
    """
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_MIB << 20
    try:
        mib = int(raw)
    except ValueError:
        mib = -1
    if mib < 0:
        raise ValueError(
            f"{ENV} must be a whole number of MiB >= 0 (the most the kernel's buffer pool keeps free; 0 turns "
            f"pooling off; unset: {DEFAULT_MIB}); received {raw!r}"
        )
    return mib << 20


def stats() -> Optional[Dict[str, int]]:
    """The pool's ``cached_bytes``, ``cached_blocks``, ``limit_bytes`` and request counts ``reused`` /
    ``fresh``; None while the kernel is not loaded (this never builds it)."""
    ext = loader.module()
    return None if ext is None else dict(ext.pool_stats())
