"""Choosing the engine path for a layer: the native CPU kernel or the portable torch path.

The choice is deliberate and visible: ``LSTM_BRIDGE_BACKEND=auto|native|torch``. In ``auto`` the
native kernel is used when it is importable and supports the request; otherwise the torch path runs
(with a one-line warning, once, when the kernel itself is unavailable). ``native`` raises instead
of falling back. Only ``NotImplementedError`` from the kernel's ``check_supported`` or from
:func:`check_native_policy` means "not supported"; nothing else is caught.

The path policy lives here, not in the kernel package: the kernel says what it *can* run
(``native.check_supported``); :func:`check_native_policy` says which of those requests it *should*
run (standard semantics are oneDNN's when the call asks for oneDNN's bits - MindSpore's
``numerics="mindspore-cpu-bits"`` - or, in inference, where oneDNN's fused ``torch.lstm`` is faster).

Reduced precision (:mod:`.precision`): a bfloat16 input, or a float32 input under
``torch.autocast("cpu", dtype=torch.bfloat16)``, runs the kernel as a *bf16 layer* (bf16 GEMM operands,
float32 accumulation and state, bfloat16 results; under autocast the input is cast to bfloat16 first and
autocast is off inside). float16 (no native support: this CPU has no float16 dot product) takes the
torch path, which honours it the same way.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from . import torch_path
from .precision import reduced_dtype
from .semantics import CellKind, DirectionWeights, DropoutMasks, LayerSemantics

_VALID = ("auto", "native", "torch")
RunLayer = Callable[..., Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]]
"""The signature of :func:`lstm_bridge.engine.run_layer`, shared by both paths."""
_warned = False  # the "kernel unavailable" warning is given once per process
last_used: Optional[str] = None  # "native" or "torch": which path ran most recently (for tests and bench)

# Standard semantics (sigmoid/tanh/tanh, no masks, no dropout) in *inference* with batch * hidden units
# at most this run in the kernel; larger ones go to oneDNN through the torch path. Measured with
# `lstm-bridge bench` (AMD EPYC, 2 threads, ratios to torch.nn.LSTM, forward/train): small (B*H = 1024)
# kernel 1.15/1.02 vs oneDNN 1.19/1.13, small Bidirectional train 0.98 vs 1.24, long (1024) 1.05/0.91 vs
# 1.05/1.05; oneDNN won the forward at medium (8192: 1.06 vs 1.18) and large (32768: 1.02 vs 1.06) in that
# (2026-11-25) run; the kernel leads again where oneDNN's per-call scratchpad is large (NATIVE_STANDARD_LARGE_BYTES).
NATIVE_STANDARD_MAX_BH = 2048
# ... and (full precision) from this many bytes of one direction's gate pre-activations on, T * B * 4H elements:
# about the size of the scratchpad torch's oneDNN LSTM allocates per direction and call, which from glibc's
# largest mmap threshold (32 MiB) on is mapped afresh and faulted in page by page on every call, while the
# kernel's inference reuses its projection block (the kernel's buffer pool). With an allocator that keeps memory
# (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ at 4 GiB) oneDNN leads there too: (270, 32, 128, 256) kernel
# 1.05 / oneDNN 1.00, bidirectional (300, 32, 128, 256) 1.04 / 1.00. Measured with glibc's defaults (2 threads,
# ratio to torch.nn.LSTM, kernel / oneDNN through our front end, 2026-11-28 01:15 UTC; T, B, I, H, the bytes):
# below: (200, 32, 128, 256) 25 MiB 1.06 / 1.00, (220, 32, 128, 256) 27.5 MiB 1.06 / 1.01, (50, 256, 32, 128)
# 25 MiB 1.18 / 1.01, (30, 128, 64, 256) 15 MiB 1.12 / 1.00, (20, 128, 256, 256) 10 MiB 1.05-1.07 / 0.99-1.01,
# (10, 256, 32, 128) 5 MiB 1.09 / 1.00, (10, 64, 512, 512) 5 MiB 1.03-1.06 / 1.00, bidirectional (100, 64, 256,
# 256) 25 MiB a direction 1.04 / 1.01; above: (250, 32, 128, 256) 31 MiB 0.91 / 0.97, (270, 32, 128, 256)
# 34 MiB 0.87 / 0.98, (300, 32, 128, 256) 38 MiB 0.87 / 0.99, (400, 32, 128, 256) 50 MiB 0.86 / 1.02, (300, 16,
# 64, 512) 38 MiB 0.91 / 1.01, (100, 256, 32, 128) 50 MiB 0.83-0.85 / 1.00, (100, 64, 512, 512) 50 MiB 0.88 /
# 0.97, (100, 32, 768, 768) 38 MiB 0.82 / 0.95, bidirectional (300, 32, 128, 256) 38 MiB a direction 0.78 /
# 1.01. (Until stop 21 the bound was batch * hidden >= 24576, measured at T = 100 only, where it meant >= 38
# MiB; at T <= 50 it sent layers to the kernel that lost 5-18 %.) Under bf16 oneDNN's own bf16 layer stays
# faster, so this bound is for float32/float64 only.
NATIVE_STANDARD_LARGE_BYTES = 30 << 20
# ... except (float32 inference, batch * hidden at most NATIVE_STANDARD_MAX_BH) where the kernel's row split
# streams W_hh badly: it gives each thread a block of one direction's batch rows, so with fewer directions than
# threads a small batch leaves a thread idle or has every thread read all of the direction's W_hh each step,
# where oneDNN splits W_hh's columns between the threads. Measured (2 threads, planned Keras calls, forward
# ratio to torch.nn.LSTM, kernel / oneDNN; T, B, I, H; the machine's fast state, 2026-11-28 00:10 UTC, and its
# slow state, 00:00): W_hh of 1 MiB and more (H >= 256): (50, 1, 64, 256) 1.20 / 1.01, (50, 2, 64, 256)
# 1.02 / 1.00, (50, 4, 64, 256) 1.18-1.21 / 1.00 (slow state 0.95 / 0.99), (50, 8, 64, 256) 0.99 / 1.01
# (slow 0.83 / 1.01), (50, 4, 64, 320) 1.32 / 1.01, (50, 1, 128, 512) 1.21-1.39 / 1.03-1.06, (200, 4, 256,
# 512) 1.35 / 1.01; below it the kernel leads: (50, 1, 64, 128) 0.68 / 1.01, (50, 4, 64, 128) 0.76 / 0.99,
# (50, 16, 64, 128) 0.93 / 1.01, (50, 8, 64, 192) 0.89 / 1.00, (100, 2, 32, 192) 0.73 / 1.00. So oneDNN takes
# those layers from this W_hh size on (a bidirectional layer on two threads gives each direction a thread),
# except where the kernel splits the hidden units between its threads instead (native.checks.column_split: one
# direction, at most 4 rows), which leads there (see _check_row_split).
NATIVE_ROW_SPLIT_W_BYTES = 1 << 20
# Training (autograd records the call) of the standard LSTM runs in the kernel up to this batch * hidden,
# with at least NATIVE_STANDARD_TRAIN_MIN_THREADS threads: every size. Since the GEMMs around the
# recurrence left MKL (engine/native/gemm.py: MKL does not use AVX-512 on AMD), the kernel trains the
# standard layer faster than oneDNN's own: one thread, CPU time, ratios to torch.nn.LSTM (kernel / oneDNN
# through our front end): medium 0.76 / 1.03, large 0.81 / 1.00, medium_2l_bidir 0.84 / 1.04; small 1.39 /
# 1.26 and long 1.08 / 1.06 (there the per-call work is small and both lose to torch.nn.LSTM's own call).
NATIVE_STANDARD_TRAIN_MAX_BH = 1 << 62
NATIVE_STANDARD_TRAIN_MIN_THREADS = 1


def requested() -> str:
    value = os.environ.get("LSTM_BRIDGE_BACKEND", "auto").strip().lower() or "auto"
    if value not in _VALID:
        raise ValueError(f"LSTM_BRIDGE_BACKEND must be one of {_VALID}; received {value!r}")
    return value


def _native_package() -> Optional[ModuleType]:
    """The native kernel package (importing it builds nothing), or None when it is not shipped."""
    try:
        from . import native  # noqa: WPS433 (optional component)
    except ImportError:
        return None
    return native


def _torch(reason_unavailable: Optional[str] = None) -> RunLayer:
    global _warned, last_used
    if reason_unavailable is not None and not _warned:
        warnings.warn(
            "lstm-bridge: native CPU kernel unavailable, using the torch path (" + reason_unavailable + ")",
            RuntimeWarning,
            stacklevel=4,
        )
        _warned = True
    last_used = "torch"
    return torch_path.run_layer


def check_native_policy(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid: Optional[torch.Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
    training: bool = False,
    reduced: Optional[torch.dtype] = None,
) -> None:
    """Raise ``NotImplementedError`` for a request the kernel can run but should leave to oneDNN.

    That is exactly standard semantics (sigmoid/tanh/tanh, no mask, no dropout) when

    * the call asks for oneDNN's bits (``semantics.onednn_bits``: MindSpore's
      ``numerics="mindspore-cpu-bits"``) in full precision: the torch path hands them to oneDNN, bit for
      bit with MindSpore's CPU LSTM, in inference and in training (the golden tests pin both); under
      bfloat16 there are no bits to keep and speed decides;
    * or by speed: ``batch * hidden`` above :data:`NATIVE_STANDARD_MAX_BH` and (in full precision) one
      direction's gate pre-activations (``T * batch * 4 * hidden`` elements) below
      :data:`NATIVE_STANDARD_LARGE_BYTES` in inference, above
      :data:`NATIVE_STANDARD_TRAIN_MAX_BH` in training (by default none: the kernel trains every size),
      or training on fewer than :data:`NATIVE_STANDARD_TRAIN_MIN_THREADS` threads (by default 1).

    ``reduced``: the call's 16-bit dtype (:func:`.precision.reduced_dtype`) or None.
    """
    no_dropout = all(d is None or d.is_empty() for d in dropout)
    if valid is None and no_dropout and semantics.activations.is_standard:
        if semantics.onednn_bits and reduced is None:
            raise NotImplementedError(
                "standard LSTM semantics computed by oneDNN in the source framework: "
                "the torch path hands these to oneDNN, bit for bit"
            )
        limit = NATIVE_STANDARD_MAX_BH
        if training:
            limit = NATIVE_STANDARD_TRAIN_MAX_BH if torch.get_num_threads() >= NATIVE_STANDARD_TRAIN_MIN_THREADS else 0
        bh = x.shape[1] * max(w.hidden_size for w in directions)
        gate_bytes = x.shape[0] * bh * 4 * x.element_size()
        large = not training and reduced is None and gate_bytes >= NATIVE_STANDARD_LARGE_BYTES
        if bh > limit and not large:
            band = "" if training else f", and {gate_bytes} bytes of gates a direction < {NATIVE_STANDARD_LARGE_BYTES}"
            raise NotImplementedError(
                f"standard LSTM semantics with batch*hidden = {bh} > {limit} (the "
                f"{'training' if training else 'inference'} limit{band}): the torch path hands these to oneDNN"
            )
        if not training and reduced is None and x.dtype == torch.float32 and not large:
            _check_row_split(x.shape[1], directions)


def _check_row_split(batch: int, directions: Sequence[DirectionWeights]) -> None:
    """Raise ``NotImplementedError`` for a small float32 standard layer in inference whose ``W_hh`` the
    kernel's row split would stream badly (see :data:`NATIVE_ROW_SPLIT_W_BYTES`): oneDNN splits its columns.
    A layer the kernel runs with its threads splitting the hidden units instead (``native.checks.column_split``:
    one direction, at most 4 rows) stays: there the kernel leads ((50, 1, 64, 256) 0.64 against oneDNN's 1.01,
    (50, 1, 128, 512) 0.85 / 1.02, (200, 4, 256, 512) 0.97 / 0.99, (50, 4, 64, 256) 0.92 / 1.02, (50, 2, 64, 384)
    0.87 / 1.07; 2 threads, forward ratio to torch.nn.LSTM). The column split's middle tier (5-6 rows from 3 MiB,
    where oneDNN's standard layer ran faster: stop 23, (50, 6, 64, 512) kernel 1.135 / oneDNN 1.003) never gets
    here: its batch * hidden is above :data:`NATIVE_STANDARD_MAX_BH` (5 x 448 at the least; a test holds it)."""
    from .native import checks  # noqa: WPS433 (the caller has found the package; nothing is built)

    threads = torch.get_num_threads()
    hidden = max(w.hidden_size for w in directions)
    w_bytes = 4 * hidden * hidden * 4
    if checks.column_split(batch, hidden, len(directions), torch.float32, threads):
        return
    if len(directions) < threads and w_bytes >= NATIVE_ROW_SPLIT_W_BYTES:
        raise NotImplementedError(
            f"standard LSTM semantics with batch {batch}, {len(directions)} direction(s) on {threads} threads and "
            f"W_hh of {w_bytes >> 10} KiB: the kernel's threads would each read all of W_hh (or idle) every step; "
            "the torch path hands these to oneDNN, which splits W_hh's columns"
        )


def _records(x: torch.Tensor, directions: Sequence[DirectionWeights]) -> bool:
    """Whether autograd records a layer call on these tensors (grad mode on and an input requires grad)."""
    if not torch.is_grad_enabled():
        return False
    if x.requires_grad:
        return True
    return any(t is not None and t.requires_grad for w in directions for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh))


def _native_autocast_bf16(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[torch.Tensor],
    c0: Sequence[torch.Tensor],
    **kwargs: object,
) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
    """The kernel on a float32 input under bfloat16 autocast: the input cast to bfloat16 (a bf16 layer;
    ``dx`` flows back in float32 through the cast), autocast off inside; results in bfloat16."""
    from . import native  # noqa: WPS433 (imported by select before this runs)

    with torch.autocast(x.device.type, enabled=False):
        return native.run_layer_checked(x.to(torch.bfloat16), directions, h0, c0, **kwargs)  # type: ignore[arg-type]


def select(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid: Optional[torch.Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> RunLayer:
    """Return the ``run_layer`` implementation for this request.

    The cheap checks (the kernel's ``check_supported``, then :func:`check_native_policy`) run first,
    so a request the kernel would not take (a Python activation, or the standard LSTM that oneDNN
    runs) never triggers the one-time build.
    """
    global last_used
    choice = requested()
    if choice == "torch":
        return _torch()
    native = _native_package()
    if native is None:
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is " + _native_error())
        return _torch(_native_error())
    reduced = reduced_dtype(x)
    try:
        if reduced not in (None, torch.bfloat16):
            raise NotImplementedError(f"native kernel computes reduced precision in bfloat16 only; received {reduced}")
        # under autocast the kernel sees the input cast to bfloat16: check that request (shape, no data)
        probe = x if reduced is None or x.dtype == reduced else torch.empty((), dtype=reduced).expand(x.shape)
        native.check_supported(probe, directions, valid=valid, semantics=semantics, dropout=dropout)
        training = _records(x, directions)
        check_native_policy(
            x, directions, valid=valid, semantics=semantics, dropout=dropout, training=training, reduced=reduced
        )
    except NotImplementedError:
        if choice == "native":
            raise
        return _torch()
    if not native.available():
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is unavailable: " + _native_error())
        return _torch(_native_error())
    last_used = "native"
    impl: RunLayer = native.run_layer_checked if reduced is None or x.dtype == reduced else _native_autocast_bf16
    return impl


def _native_error() -> str:
    try:
        from . import native
    except ImportError as exc:
        return f"not installed ({exc})"
    return native.error() or "unknown reason"


# --- the recurrent family (GRU, simple RNN) -------------------------------------------------------------

FamilyRun = Callable[..., Tuple[List[torch.Tensor], List[torch.Tensor]]]
"""The signature of ``engine.native.family.run_family_layer``: ``(outputs, h_n)`` lists over directions."""


def select_family(
    x: torch.Tensor,
    directions: Sequence[DirectionWeights],
    *,
    kind: CellKind,
    valid: Optional[torch.Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Optional[FamilyRun]:
    """The native GRU/RNN layer for this request, or None for ``engine/family_torch.py``.

    ``torch``: always None. ``auto``: the kernel when it supports the request
    (``native.checks.check_family_supported``) and is built (else None, with the one-time warning when the
    kernel itself is unavailable). ``native``: the kernel or an error (``NotImplementedError`` for an
    unsupported request, ``RuntimeError`` when it is unavailable). The cheap checks run first, so an
    unsupported request never triggers the build.

    Unlike the LSTM there is no speed policy: ``torch.gru`` / ``torch.rnn_*`` do not use oneDNN on CPU, and
    the kernel measured 0.30-0.52x of their forward and 0.25-0.61x of their training time on the bench's
    small and medium configs, standard layers included (docs/benchmarks.md, Recurrent family).
    """
    global last_used
    choice = requested()
    if choice == "torch":
        return None
    try:
        from .native import checks as native_checks, family as native_family, loader as native_loader
    except ImportError as exc:
        if choice == "native":
            raise RuntimeError(f"LSTM_BRIDGE_BACKEND=native but the native kernel is not installed ({exc})") from exc
        _torch(f"not installed ({exc})")
        return None
    gru = kind is CellKind.GRU
    try:
        native_checks.check_family_supported(x, directions, gru=gru, valid=valid, semantics=semantics, dropout=dropout)
    except NotImplementedError:
        if choice == "native":
            raise
        return None
    if not native_loader.available():
        if choice == "native":
            raise RuntimeError("LSTM_BRIDGE_BACKEND=native but the native kernel is unavailable: " + _native_error())
        _torch(_native_error())
        return None
    last_used = "native"
    run: FamilyRun = native_family.run_family_layer
    return run
