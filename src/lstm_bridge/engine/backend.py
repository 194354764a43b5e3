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
_warned = False  # the "kernel unavailable" warning is given once per process
last_used: Optional[str] = None  # "native" or "torch": which path ran most recently (for tests and bench)


def requested() -> str:
    value = os.environ.get("LSTM_BRIDGE_BACKEND", "auto").strip().lower() or "auto"
    if value not in _VALID:
        raise ValueError(f"LSTM_BRIDGE_BACKEND must be one of {_VALID}; received {value!r}")
    return value


def _native_package():
    """The native kernel package (importing it builds nothing), or None when it is not shipped."""
    try:
        from . import native  # noqa: WPS433 (optional component)
    except ImportError:
        return None
    return native


def _torch(reason_unavailable: Optional[str] = None) -> Callable:
    global _warned, last_used
    if reason_unavailable is not None and not _warned:
        warnings.warn("lstm-bridge: native CPU kernel unavailable, using the torch path (" + reason_unavailable
                      + ")", RuntimeWarning, stacklevel=4)
        _warned = True
    last_used = "torch"
    return torch_path.run_layer


def select(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid,
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Callable:
    """Return the ``run_layer`` implementation for this request.

    The cheap ``check_supported`` runs first, so a request the kernel would not take (the standard
    LSTM, which oneDNN runs, or a Python activation) never triggers the one-time build.
    """
    global last_used
    choice = requested()
    if choice == "torch":
        return _torch()
    native = _native_package()
    if native is None:
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is not installed")
        return _torch("not installed")
    try:
        native.check_supported(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    except NotImplementedError:
        if choice == "native":
            raise
        return _torch()
    if not native.available():
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is unavailable: "
                               + _native_error())
        return _torch(_native_error())
    last_used = "native"
    return native.run_layer_checked


def _native_error() -> str:
    try:
        from . import native
    except ImportError as exc:
        return f"not installed ({exc})"
    return native.error() or "unknown reason"
