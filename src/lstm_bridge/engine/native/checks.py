"""What the native kernel accepts: dtypes, devices, activations (:func:`check_supported`) and shapes
(:func:`check_shapes`). Speed policy (which accepted requests go native) lives in
:mod:`lstm_bridge.engine.backend`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch

from ..precision import reduced_dtype
from ..semantics import DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

Tensor = torch.Tensor

__all__ = [
    "check_family_supported",
    "check_shapes",
    "check_supported",
    "column_split",
    "kernel_semantics",
    "native_activation_id",
]

#: The kernel's column split of a recurrence (lstm.cpp ``column_split``, its exported ``COLUMN_SPLIT_*`` /
#: ``PANEL_WIDTH_*``; a test holds them together): up to MAX_ROWS rows from MIN_BYTES of ``W_hh``, up to
#: MID_MAX_ROWS from MID_BYTES, up to LARGE_MAX_ROWS rows from LARGE_BYTES.
COLUMN_SPLIT_MAX_ROWS = 4
COLUMN_SPLIT_MIN_BYTES = 1 << 20
COLUMN_SPLIT_MID_MAX_ROWS = 6
COLUMN_SPLIT_MID_BYTES = 3 << 20
COLUMN_SPLIT_LARGE_MAX_ROWS = 32
COLUMN_SPLIT_LARGE_BYTES = 16 << 20
# kPanelVecs * kVecBytes of the build's capability (kernel_common.h): the micro-kernel's panel, in bytes
_PANEL_BYTES = {"AVX512": 4 * 64, "AVX2": 2 * 32}
_DEFAULT_PANEL_BYTES = 2 * 16
_ELEMENT_BYTES = {torch.float32: 4, torch.float64: 8}


def column_split(batch: int, hidden: int, directions: int, dtype: torch.dtype, threads: int) -> bool:
    """Whether the kernel runs a call of these sizes with its threads splitting the hidden units (one barrier a
    step) instead of the batch rows: one direction on 2+ threads, at most :data:`COLUMN_SPLIT_MAX_ROWS` rows with a
    ``W_hh`` of :data:`COLUMN_SPLIT_MIN_BYTES` or more, at most :data:`COLUMN_SPLIT_MID_MAX_ROWS` with
    :data:`COLUMN_SPLIT_MID_BYTES`, or at most :data:`COLUMN_SPLIT_LARGE_MAX_ROWS` rows with
    :data:`COLUMN_SPLIT_LARGE_BYTES` or more (the row split would have every thread stream all of a ``W_hh``
    larger than L2 every step), hidden units in whole micro-kernel
    panels (at least one per thread), the kernel's own GEMM (``native.GEMM_PATH == "kernel"``) and a build with OpenMP.
    Deterministic (no kernel loaded): the backend's routing reads it."""
    from . import GEMM_PATH, build  # noqa: WPS433 (GEMM_PATH is read per call: tests switch it)

    if GEMM_PATH != "kernel" or not build.openmp_flags() or directions != 1 or threads < 2:
        return False
    size = _ELEMENT_BYTES.get(dtype)
    if batch > COLUMN_SPLIT_LARGE_MAX_ROWS or size is None:
        return False
    w_bytes = 4 * hidden * hidden * size
    fits = w_bytes >= _column_split_bytes(batch)
    panel = _PANEL_BYTES.get(build.capability(), _DEFAULT_PANEL_BYTES) // size
    return fits and hidden % panel == 0 and hidden // panel >= threads


def _column_split_bytes(batch: int) -> int:
    """The least ``W_hh`` (bytes) from which :func:`column_split` takes ``batch`` rows (of at most
    :data:`COLUMN_SPLIT_LARGE_MAX_ROWS`)."""
    if batch <= COLUMN_SPLIT_MAX_ROWS:
        return COLUMN_SPLIT_MIN_BYTES
    return COLUMN_SPLIT_MID_BYTES if batch <= COLUMN_SPLIT_MID_MAX_ROWS else COLUMN_SPLIT_LARGE_BYTES


# Activation ids shared with lstm.h (enum Act); the lstm_bridge.activations registry carries them.
_MAX_ID = 8  # enum Act in lstm.h


def native_activation_id(fn: Any) -> Optional[int]:
    """The kernel's code for an activation (``Activation.native_id``; raw torch.sigmoid/tanh too)."""
    if fn is torch.sigmoid:
        return 0
    if fn is torch.tanh:
        return 1
    native_id = getattr(fn, "native_id", None)
    if isinstance(native_id, int) and 0 <= native_id <= _MAX_ID:
        return native_id
    return None


def kernel_semantics(semantics: LayerSemantics) -> Tuple[List[int], bool]:
    """An LSTM request's kernel arguments: the gate, candidate and cell activation ids (a request
    :func:`check_supported` accepted has one for each) and ``carry`` (the masked-output rule)."""
    acts = semantics.activations
    ids = [int(native_activation_id(fn) or 0) for fn in (acts.gate, acts.candidate, acts.cell)]
    return ids, semantics.masked_output is MaskedOutput.CARRY


def check_supported(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    *,
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    """Raise ``NotImplementedError`` when the kernel cannot run this request.

    Not supported: non-CPU tensors, dtypes other than float32/float64/bfloat16, mixed dtypes (except a
    bfloat16 input with float32 weights/masks: a bf16 layer, ``Plan.lowp``), activations without a
    ``native_id`` (arbitrary Python callables), empty sequences or batches. Which supported
    requests should run here (standard semantics go to oneDNN above a size) is
    :func:`lstm_bridge.engine.backend.check_native_policy`'s decision, not the kernel's.
    """
    if x.device.type != "cpu":
        raise NotImplementedError(f"native kernel runs on CPU only; received x on {x.device}")
    if x.dtype not in (torch.float32, torch.float64, torch.bfloat16):
        raise NotImplementedError(f"native kernel supports float32/float64/bfloat16; received {x.dtype}")
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise NotImplementedError(f"native kernel needs a non-empty (T, B, I) input; received {tuple(x.shape)}")
    tensors: List[Tensor] = []
    for w in directions:
        tensors += [t for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh) if t is not None]
    for d in dropout:
        if d is not None:
            tensors += [t for t in (d.inputs, d.recurrent) if t is not None]
    allowed = (torch.bfloat16, torch.float32) if x.dtype == torch.bfloat16 else (x.dtype,)
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in allowed:
            raise NotImplementedError(
                f"native kernel needs all weights/masks on CPU in {x.dtype}; received {t.dtype} on {t.device}"
            )
    acts = semantics.activations
    for role, fn in (("gate", acts.gate), ("candidate", acts.candidate), ("cell", acts.cell)):
        if native_activation_id(fn) is None:
            raise NotImplementedError(f"{role} activation {fn!r} has no native implementation")


def check_shapes(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    """Raise ``ValueError`` naming the expected and received shape of the first inconsistent argument."""
    T, B, I = x.shape
    D = len(directions)
    if not (len(h0) == len(c0) == len(reverse) == len(dropout) == D):
        raise ValueError(
            f"run_layer needs one h0, c0, reverse flag and dropout entry per direction ({D}); "
            f"received {len(h0)}, {len(c0)}, {len(reverse)}, {len(dropout)}"
        )
    for d, w in enumerate(directions):
        H = w.hidden_size
        if tuple(w.w_ih.shape) != (4 * H, I) or tuple(w.w_hh.shape) != (4 * H, H):
            raise ValueError(
                f"direction {d}: expected w_ih (4H, I) = {(4 * H, I)} and w_hh (4H, H) = "
                f"{(4 * H, H)}; received {tuple(w.w_ih.shape)} and {tuple(w.w_hh.shape)}"
            )
        for name, b in (("b_ih", w.b_ih), ("b_hh", w.b_hh)):
            if b is not None and tuple(b.shape) != (4 * H,):
                raise ValueError(f"direction {d}: expected {name} ({4 * H},); received {tuple(b.shape)}")
        for name, s in (("h0", h0[d]), ("c0", c0[d])):
            if tuple(s.shape) != (B, H):
                raise ValueError(f"direction {d}: expected {name} {(B, H)}; received {tuple(s.shape)}")
        drop = dropout[d]
        if drop is not None:
            for name, m, width in (("inputs", drop.inputs, I), ("recurrent", drop.recurrent, H)):
                if m is not None and (m.dim() != 3 or m.shape[0] not in (1, 4) or tuple(m.shape[1:]) != (B, width)):
                    raise ValueError(
                        f"direction {d}: dropout {name} mask must be (G in {{1, 4}}, {B}, {width}); "
                        f"received {tuple(m.shape)}"
                    )
    if valid is not None and tuple(valid.shape) != (T, B):
        raise ValueError(f"valid must be (T, B) = {(T, B)}; received {tuple(valid.shape)}")


def check_family_supported(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    *,
    gru: bool,
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    """Raise ``NotImplementedError`` when the GRU/RNN kernel (``family.cpp``) cannot run this request.

    Not supported: non-CPU tensors, dtypes other than float32/float64, weights or masks of another
    dtype or device, empty sequences or batches, activations without a ``native_id`` (the GRU's gate and
    candidate, the RNN's candidate), MindSpore's CPU MatMul summation order
    (``semantics.mindspore_matmul``: an emulation kept on the torch path), and float32 calls under a 16-bit
    CPU autocast (the torch path's products follow autocast, as ``torch.nn.GRU``'s do).
    """
    if x.device.type != "cpu":
        raise NotImplementedError(f"native kernel runs on CPU only; received x on {x.device}")
    if x.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(f"native kernel supports float32/float64; received {x.dtype}")
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise NotImplementedError(f"native kernel needs a non-empty (T, B, I) input; received {tuple(x.shape)}")
    if semantics.mindspore_cpu and semantics.mindspore_matmul:
        raise NotImplementedError(
            "MindSpore's CPU MatMul summation order (numerics='mindspore-cpu-bits') runs on the torch path only"
        )
    reduced = reduced_dtype(x)
    if reduced is not None:  # float32 under CPU autocast: the torch path's products are autocast's
        raise NotImplementedError(
            f"native GRU/RNN kernel runs float32/float64 only; received a {reduced} autocast call "
            "(the torch path's GEMMs follow autocast)"
        )
    tensors: List[Tensor] = []
    for w in directions:
        tensors += [t for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh) if t is not None]
    for d in dropout:
        if d is not None:
            tensors += [t for t in (d.inputs, d.recurrent) if t is not None]
    for t in tensors:
        if t.device.type != "cpu" or t.dtype != x.dtype:
            raise NotImplementedError(
                f"native kernel needs all weights/masks on CPU in {x.dtype}; received {t.dtype} on {t.device}"
            )
    acts = semantics.activations
    roles = (("gate", acts.gate), ("candidate", acts.candidate)) if gru else (("candidate", acts.candidate),)
    for role, fn in roles:
        if native_activation_id(fn) is None:
            raise NotImplementedError(f"{role} activation {fn!r} has no native implementation")
