"""The large GEMMs around the native recurrences (input projection, ``dx``, ``dW_ih``, ``dW_hh``), one
place that picks who computes them.

Measured on the benchmark shapes (AMD EPYC with AVX-512, torch 2.13 CPU wheel, float32, one thread;
``docs/benchmarks.md`` "GEMM routing"): MKL's sgemm (``torch.mm``) reached ~80-105 GFLOP/s because MKL
does not use AVX-512 on AMD, the kernel's own micro-kernel (``ext.matmul_nt``, rows blocked to stay in
L2) ~200-240, and oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``) ~150-230, the best of the three
for the transposed products of the weight gradients, whose reduction runs over all ``T*B`` rows. Hence:

* ``a @ w.T`` (:func:`mm_nt`: the projection, and ``dx`` as ``dZ @ (W.T).T``): the micro-kernel, for
  float32 and float64; oneDNN for float32 products whose ``w`` has fewer than 128 rows (the micro-kernel's
  column panels are 64 wide, so a narrow output wastes them) unless ``a`` is a column block of a wider
  matrix (one gate's columns of ``dZ`` under per-gate input dropout), which oneDNN would copy first;
* ``a.T @ b`` (:func:`mm_tn`: ``dW_ih`` of inputs narrower than 64 features without per-gate masks):
  oneDNN for float32, ``torch.mm`` otherwise (``dW_hh``, and every other ``dW_ih``, are the kernel's own
  ``gate_weight_grad``: :mod:`.projection`);
* products below :data:`TINY_MACS` multiply-adds: ``torch.mm`` (set-up costs dominate there).

No autograd: every operand is detached by the callers (these run inside the layer's forward/backward).
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

import torch

Tensor = torch.Tensor

__all__ = ["mm_nn", "mm_nt", "mm_tn"]

# The micro-kernel's panel is 64 float32 columns (AVX-512: 4 vectors of 16); below two panels oneDNN wins.
_NT_MIN_COLUMNS = 128

TINY_MACS = 1 << 18
"""Below this many multiply-adds a product is one ``torch.mm``: oneDNN's matmul has a ~11 us set-up per call
and the micro-kernel packs ``W`` on every call (~1.3 us for 8x32, ~9-14 us for 64x124 or 128x96), while MKL's
small GEMM took 1.7-6 us there (one thread, CPU time, 17:43 UTC). Not for float32 under CPU autocast, which
would round ``torch.mm``'s operands to bfloat16 (float64 it leaves alone)."""


def _tiny(a: Tensor, macs: int) -> bool:
    return macs < TINY_MACS and (a.dtype == torch.float64 or not torch.is_autocast_enabled("cpu"))


def _onednn_linear_available() -> bool:
    built_with = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
    return built_with and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_ONEDNN = _onednn_linear_available()


def _dense(t: Tensor) -> Tensor:
    """``t`` (2-D) if it is row- or column-major, else a contiguous copy: oneDNN takes an operand with
    any other strides (a column slice) down a reference path ~600x slower."""
    return t if t.is_contiguous() or t.t().is_contiguous() else t.contiguous()


def _onednn_nt(a: Tensor, w: Tensor) -> Tensor:
    """``a (M, K) @ w (N, K).T`` on oneDNN (float32)."""
    result: Tensor = torch.ops.mkldnn._linear_pointwise(_dense(a), _dense(w), None, "none", [], "")
    return result


def mm_nt(ext: ModuleType, a: Tensor, w: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """``a (M, K) @ w (N, K).T -> (M, N)``; ``w`` may have any strides; into ``out`` when given: ``M*N``
    contiguous elements of ``a``'s dtype, or (float32/float64) an ``(M, N)`` view with unit column stride (a
    column block of a wider matrix: the kernel's GEMM writes it in place).

    ``a`` may also be ``(T, B, K)`` (rows ``(t, b)`` in that order, ``M = T*B``): the micro-kernel reads a
    time-major view of a batch-first input in place (``ext.matmul_nt``); the other routes take its
    ``reshape`` (contiguous rows)."""
    M, K, N = (a.shape[0] if a.dim() == 2 else a.shape[0] * a.shape[1]), a.shape[-1], w.shape[0]
    if out is not None and not out.is_contiguous():
        result: Tensor = ext.matmul_nt(a, w, out)
        return result
    if _tiny(a, M * K * N):
        rows = a.reshape(M, K)
        return torch.mm(rows, w.t(), out=out.view(M, N)) if out is not None else torch.mm(rows, w.t())
    dense_rows = a.dim() == 3 or a.is_contiguous()  # (a reshaped 3-D a is contiguous)
    if a.dtype == torch.float32 and _ONEDNN and N < _NT_MIN_COLUMNS and out is None and dense_rows:
        # (a column block of dZ goes to the kernel, which reads it without oneDNN's copy)
        return _onednn_nt(a.reshape(M, K), w)
    if a.dtype in (torch.float32, torch.float64) and a.dtype == w.dtype:
        result = ext.matmul_nt(a, w, out)
        return result
    rows = a.reshape(M, K)
    return torch.mm(rows, w.t(), out=out.view(M, N)) if out is not None else torch.mm(rows, w.t())


def mm_nn(ext: ModuleType, a: Tensor, b: Tensor) -> Tensor:
    """``a (M, K) @ b (K, N) -> (M, N)`` (``dx = dZ @ W_ih``)."""
    return mm_nt(ext, a, b.t())


def mm_tn(a: Tensor, b: Tensor) -> Tensor:
    """``a (R, M).T @ b (R, N) -> (M, N)`` (weight gradients: the reduction runs over ``R = T*B`` rows).
    float32: oneDNN's ``b.T @ a`` (faster than ``a.T @ b`` there) transposed back into a contiguous
    result (a copy of the small ``(M, N)`` matrix); tiny products and other dtypes: ``torch.mm``."""
    if a.dtype == torch.float32 and b.dtype == torch.float32 and _ONEDNN and not _tiny(a, a.numel() * b.shape[1]):
        # row-major operands first: oneDNN runs the transposed views of row-major matrices fastest
        a, b = a.contiguous(), b.contiguous()
        return _onednn_nt(b.t(), a.t()).t().contiguous()
    return a.t().mm(b)
