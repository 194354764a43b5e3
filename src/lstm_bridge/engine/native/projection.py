"""The input projection of every time step and direction, and its gradients (``dx``, ``dW_ih``).

Forward: ``xp (T, B, S) = x W_cat^T`` with ``W_cat`` the directions' ``w_ih`` stacked in column blocks
(:meth:`.Plan.columns`); one GEMM when no input dropout mask is present, else per direction (and per
gate for G = 4 masks) as the torch path computes it. Backward: ``dx`` and ``dW_ih`` from the kernel's
pre-activation gradients ``dZ (T*B, S)``, again one GEMM each without input masks.

The GEMM for the one-GEMM case (:func:`matmul_nt`) is chosen by size: the kernel's own micro-kernel
below ``_ONEDNN_MIN_MACS`` multiply-adds, oneDNN's matmul above it (float32), else ``torch.mm``.
"""

from __future__ import annotations

from types import ModuleType
from typing import List, Optional, Sequence, Tuple

import torch

from .plan import Plan

Tensor = torch.Tensor

__all__ = ["input_gradients", "input_projection", "matmul_nt"]

# Below this many multiply-adds the projection runs on the kernel's own micro-kernel (oneDNN's and
# MKL's per-call set-up cost more than they save); above it, oneDNN's matmul measured 0.73-0.90x MKL's
# time on the benchmark shapes (AMD EPYC, 2 threads; MKL does not use AVX-512 there).
_ONEDNN_MIN_MACS = 1 << 24


def _onednn_linear_available() -> bool:
    built_with = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
    return built_with and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_ONEDNN_LINEAR = _onednn_linear_available()


def matmul_nt(ext: ModuleType, a: Tensor, b: Tensor) -> Tensor:
    """``a @ b.T`` for ``a (M, K)``, ``b (N, K)`` (no autograd): oneDNN's matmul for large float32
    products, the kernel's own micro-kernel for small ones (the small benchmark's 800x32x256 took
    ~95 us in MKL between two kernel calls), else torch.mm."""
    M, K = a.shape
    macs = M * K * b.shape[0]
    result: Tensor
    if macs < _ONEDNN_MIN_MACS:
        result = ext.matmul_nt(a, b)
    elif _ONEDNN_LINEAR and a.dtype == torch.float32:
        result = torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    else:
        result = torch.mm(a, b.t())
    return result


def _bias(b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Optional[Tensor]:
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def input_projection(
    plan: Plan,
    x: Tensor,
    w_ih: Sequence[Tensor],
    b_ih: Sequence[Optional[Tensor]],
    b_hh: Sequence[Optional[Tensor]],
    in_masks: Sequence[Optional[Tensor]],
    out: Optional[Tensor] = None,
) -> Tuple[Tensor, List[Tensor]]:
    """``(T, B, I) -> (T, B, S)``: every direction's ``W_ih x_t`` in column blocks per direction, and
    the per-direction biases ``b_ih + b_hh`` the kernel still has to add (empty when xp holds them).

    Without input dropout the bias is left to the kernel's pointwise pass: ``torch.addmm`` with a
    broadcast bias first copies it into the whole ``(T*B, S)`` output, a pass over memory as long as
    the GEMM's own output write. ``out`` (flat, ``T*B*S`` elements) receives the projection when given.
    """
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    biases = [_bias(bi, bh) for bi, bh in zip(b_ih, b_hh)]
    if all(m is None for m in in_masks):
        weight = w_ih[0] if plan.D == 1 else torch.cat(list(w_ih), 0)
        kernel_bias = [plan.empty() if b is None else b.detach() for b in biases]
        if out is not None:
            return torch.mm(x2, weight.detach().t(), out=out.view(T * B, plan.S)).view(T, B, plan.S), kernel_bias
        return matmul_nt(plan.ext, x2, weight.detach()).view(T, B, plan.S), kernel_bias
    xp = x.new_empty(T, B, plan.S)
    for d in range(plan.D):
        H, m, bias = plan.H[d], in_masks[d], biases[d]
        block = xp[..., plan.columns(d)]
        if m is None:
            block.copy_(
                (torch.mm(x2, w_ih[d].t()) if bias is None else torch.addmm(bias, x2, w_ih[d].t())).view(T, B, 4 * H)
            )
        elif m.shape[0] == 1:
            xm = (x * m[0]).reshape(T * B, I)
            block.copy_(
                (torch.mm(xm, w_ih[d].t()) if bias is None else torch.addmm(bias, xm, w_ih[d].t())).view(T, B, 4 * H)
            )
        else:  # one mask per gate, as the torch path: bmm then bias
            xm = (x.unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
            per_gate = torch.bmm(xm, w_ih[d].view(4, H, I).transpose(1, 2))
            gates = per_gate.permute(1, 0, 2).reshape(T, B, 4 * H)
            block.copy_(gates if bias is None else gates + bias)
    return xp, [plan.empty()] * plan.D


def input_gradients(
    plan: Plan,
    dZ2: Tensor,
    x: Tensor,
    w_ih: Sequence[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    need_x: bool,
    need_w_ih: Sequence[bool],
) -> Tuple[Optional[Tensor], List[Optional[Tensor]]]:
    """``(dx (T, B, I) or None, [dW_ih (4H, I) or None per direction])`` from ``dZ2 (T*B, S)``."""
    D = plan.D
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    d_w_ih: List[Optional[Tensor]] = [None] * D
    dx: Optional[Tensor] = None
    if all(m is None for m in in_masks):
        if need_x:
            weight = w_ih[0] if D == 1 else torch.cat(list(w_ih), 0)
            dx = dZ2.mm(weight).view(T, B, I)
        if any(need_w_ih):
            d_w = dZ2.t().mm(x2)  # (S, I): all directions in one GEMM
            for d in range(D):
                if need_w_ih[d]:
                    d_w_ih[d] = d_w[plan.columns(d)]
        return dx, d_w_ih
    dx = x.new_zeros(T, B, I) if need_x else None
    for d in range(D):
        H, m = plan.H[d], in_masks[d]
        dz = dZ2[:, plan.columns(d)]
        if m is None:
            if dx is not None:
                dx += dz.mm(w_ih[d]).view(T, B, I)
            if need_w_ih[d]:
                d_w_ih[d] = dz.t().mm(x2)
        elif m.shape[0] == 1:
            if dx is not None:
                dx += dz.mm(w_ih[d]).view(T, B, I) * m[0]
            if need_w_ih[d]:
                d_w_ih[d] = dz.t().mm((x * m[0]).reshape(T * B, I))
        else:
            dz4 = dz.view(T * B, 4, H).transpose(0, 1)  # (4, T*B, H)
            if dx is not None:
                dxm = torch.bmm(dz4, w_ih[d].view(4, H, I))  # (4, T*B, I)
                dx += (dxm.view(4, T, B, I) * m.unsqueeze(1)).sum(0)
            if need_w_ih[d]:
                xm = (x.unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
                d_w_ih[d] = torch.bmm(dz4.transpose(1, 2), xm).reshape(4 * H, I)
    return dx, d_w_ih
