"""Choosing the engine path for a layer: the native CPU kernel or the portable torch path.

The choice is deliberate and visible: ``LSTM_BRIDGE_BACKEND=auto|native|torch``. In ``auto`` the
native kernel is used when it is importable and supports the request; otherwise the torch path runs
(with a one-line warning, once, when the kernel itself is unavailable). ``native`` raises instead
of falling back. Only ``NotImplementedError`` from the kernel's ``supports`` check means "not
supported"; nothing else is caught.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Optional, Sequence

import torch

from . import torch_path
from .semantics import DirectionWeights, DropoutMasks, LayerSemantics

_VALID = ("auto", "native", "torch")
_warned = False
last_used: Optional[str] = None  # "native" or "torch": which path ran most recently (for tests and bench)


def requested() -> str:
    value = os.environ.get("LSTM_BRIDGE_BACKEND", "auto").strip().lower() or "auto"
    if value not in _VALID:
        raise ValueError(f"LSTM_BRIDGE_BACKEND must be one of {_VALID}; received {value!r}")
    return value


def _native_module():
    """The native kernel module, or None when it is not built/loadable (reason in ``native.error``)."""
    try:
        from . import native  # noqa: WPS433 (optional component)
    except ImportError:
        return None
    return native if native.available() else None


def select(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid,
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Callable:
    """Return the ``run_layer`` implementation for this request."""
    global _warned, last_used
    choice = requested()
    if choice == "torch":
        last_used = "torch"
        return torch_path.run_layer
    native = _native_module()
    if native is None:
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is unavailable: "
                               + _native_error())
        if not _warned:
            warnings.warn("lstm-bridge: native CPU kernel unavailable, using the torch path ("
                          + _native_error() + ")", RuntimeWarning, stacklevel=3)
            _warned = True
        last_used = "torch"
        return torch_path.run_layer
    try:
        native.check_supported(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    except NotImplementedError:
        if choice == "native":
            raise
        last_used = "torch"
        return torch_path.run_layer
    last_used = "native"
    return native.run_layer


def _native_error() -> str:
    try:
        from . import native
    except ImportError as exc:
        return f"not installed ({exc})"
    return native.error() or "unknown reason"
