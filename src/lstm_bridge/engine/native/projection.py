"""The input projection of every time step and direction, and its gradients (``dx``, ``dW_ih``).

Forward: ``xp (T, B, S) = x W_cat^T`` with ``W_cat`` the directions' ``w_ih`` stacked in column blocks
(:meth:`.Plan.columns`); one GEMM when no input dropout mask is present, else per direction (and per
gate for G = 4 masks) as the torch path computes it. Backward: ``dx`` and ``dW_ih`` from the kernel's
pre-activation gradients ``dZ (T*B, S)``, again one GEMM each without input masks.

Who computes each GEMM (the kernel's micro-kernel, oneDNN or ``torch.mm``) is :mod:`.gemm`'s choice.

A bf16 layer (:attr:`.Plan.lowp`) rounds every GEMM operand to bfloat16 and accumulates in float32: the
forward projection on the kernel's bf16 micro-kernel (``matmul_nt_bf16``, float32 straight into the
buffer the recurrence reads), the backward GEMMs (``dx``, ``dW_ih``, ``dW_hh``) through ``torch.mm`` on
bfloat16 tensors (oneDNN, AVX512_BF16 where the CPU has it); ``dZ`` comes from the kernel rounded once.
"""

from __future__ import annotations

from types import ModuleType
from typing import List, Optional, Sequence, Tuple

import torch

from .gemm import mm_nn, mm_nt, mm_tn
from .plan import Plan

Tensor = torch.Tensor

__all__ = [
    "gated_projection",
    "gated_projection_grads",
    "input_gradients",
    "input_projection",
    "matmul_nt",
    "recurrent_weight_grad",
]


def matmul_nt(ext: ModuleType, a: Tensor, b: Tensor) -> Tensor:
    """``a (M, K) @ b (N, K).T``, or ``a (T, B, K)``'s rows ``(t, b)`` (no autograd; :func:`.gemm.mm_nt`)."""
    return mm_nt(ext, a, b)


def _mm(plan: Plan, a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` (2-D, or batched 3-D): as is, or for a bf16 layer on bfloat16-rounded operands with the
    product returned in float32 (oneDNN accumulates in float32)."""
    if not plan.lowp:
        return torch.matmul(a, b)
    return torch.matmul(a.to(torch.bfloat16), b.to(torch.bfloat16)).float()


def _bias(b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Optional[Tensor]:
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def gated_projection(
    ext: ModuleType,
    x: Tensor,
    w_ih: Sequence[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    G: int,
    offsets: Sequence[int],
    S: int,
    out: Optional[Tensor] = None,
) -> Tensor:
    """``xp (T, B, S)``: every direction's ``(x ⊙ m_q) W_ih^T`` in its column block ``offsets[d] ..
    offsets[d] + G*H_d``, no bias; ``G`` gate blocks per direction (4 LSTM, 3 GRU, 1 RNN), ``in_masks[d]``
    ``(M, B, I)`` with M in {1, G} or None. One GEMM (into ``out``, ``T*B*S`` elements, when given) without
    masks, else per direction (the kernel's ``gated_matmul_nt`` for G masks). The LSTM's and the GRU/RNN's
    float32/float64 projection (the native checks admit no other dtype here; ``x`` and ``w_ih`` share it)."""
    x = x.detach()
    T, B, I = x.shape
    if all(m is None for m in in_masks):
        weight = w_ih[0] if len(w_ih) == 1 else torch.cat(list(w_ih), 0)
        return mm_nt(ext, x, weight.detach(), out).view(T, B, S)  # (x as it is: see gemm.mm_nt)
    x2 = x.reshape(T * B, I)
    xp: Tensor = ext.pooled_empty([T, B, S], x.dtype)  # (the kernel's buffer pool: no fresh pages per call)
    xp2 = xp.view(T * B, S)  # each direction's (and gate's) product is written into its column block in place
    for d, (w, m) in enumerate(zip(w_ih, in_masks)):
        w = w.detach()
        off, GH = offsets[d], w.shape[0]
        if m is None or m.shape[0] == 1:
            xm = x2 if m is None else (x * m[0]).reshape(T * B, I)
            mm_nt(ext, xm, w, xp2[:, off : off + GH])
        else:  # one mask per gate, applied per row block inside the kernel
            rows = x2 if x2.stride(1) == 1 else x2.contiguous()  # (the kernel reads rows with unit stride)
            ext.gated_matmul_nt(rows, w, m.to(x.dtype).contiguous(), xp2[:, off : off + GH])
    return xp


_NATIVE_WGRAD_MIN_COLUMNS = 64
"""``dW_ih``'s input width from which the kernel's ``gate_weight_grad`` replaces oneDNN's product: its column
panels are 64 wide, so narrower inputs leave most of a panel empty (I = 32, H = 128: 1.13-1.31x oneDNN's time), while
from 64 on it took 0.67-0.98x on ten shapes (2 threads, docs/benchmarks.md) and skips oneDNN's transposed copy
of the input."""


def gated_projection_grads(
    ext: ModuleType,
    dZ2: Tensor,
    x: Tensor,
    w_ih: Sequence[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    G: int,
    offsets: Sequence[int],
    need_x: bool,
    need_w: Sequence[bool],
) -> Tuple[Optional[Tensor], List[Optional[Tensor]]]:
    """The gradients of :func:`gated_projection` from ``dZ2 (T*B, S)`` (contiguous, float32/float64, as the
    kernels return it): ``dx (T, B, I)`` (None unless ``need_x``) and ``dW_ih (G*H_d, I)`` per direction (None
    where not needed). ``dW_ih`` is the kernel's ``gate_weight_grad`` (input masks formed while packing), or
    oneDNN's product for inputs narrower than :data:`_NATIVE_WGRAD_MIN_COLUMNS` without per-gate masks; ``dx``
    under per-gate masks the kernel's ``gated_matmul_nn``."""
    T, B, I = x.shape
    D = len(w_ih)
    widths = [int(w.shape[0]) for w in w_ih]
    d_w: List[Optional[Tensor]] = [None] * D
    if all(m is None for m in in_masks):
        dx = None
        if need_x:
            weight = w_ih[0] if D == 1 else torch.cat(list(w_ih), 0)
            dx = mm_nn(ext, dZ2, weight).view(T, B, I)
        if any(need_w) and I >= _NATIVE_WGRAD_MIN_COLUMNS:
            # (a contiguous copy: the packing read in place from a batch-first input's time-major view, one page
            # a row, ran 2 % slower on the large config than this copy)
            rows, none = x.contiguous(), x.new_empty(0)
            for d in range(D):
                if need_w[d]:
                    d_w[d] = ext.gate_weight_grad(dZ2, offsets[d], G, widths[d] // G, rows, none)
        elif any(need_w):
            full = mm_tn(dZ2, x.reshape(T * B, I))  # (S, I): all directions in one GEMM
            for d in range(D):
                if need_w[d]:
                    d_w[d] = full[offsets[d] : offsets[d] + widths[d]]
        return dx, d_w
    dx = x.new_zeros(T, B, I) if need_x else None
    for d in range(D):
        m, GH = in_masks[d], widths[d]
        H = GH // G
        dz = dZ2[:, offsets[d] : offsets[d] + GH]
        if m is None or m.shape[0] == 1:
            if dx is not None:
                dxd = mm_nn(ext, dz, w_ih[d]).view(T, B, I)
                dx += dxd if m is None else dxd * m[0]
            if need_w[d] and m is not None and I >= _NATIVE_WGRAD_MIN_COLUMNS:  # x * m formed while packing
                d_w[d] = ext.gate_weight_grad(dZ2, offsets[d], G, H, x.contiguous(), m[:1].to(x.dtype).contiguous())
            elif need_w[d]:
                d_w[d] = mm_tn(dz, (x if m is None else x * m[0]).reshape(T * B, I))
        else:  # one mask per gate, applied inside the kernel (per row block for dx, while packing x for dW_ih)
            masks = m.to(x.dtype).contiguous()
            if dx is not None:
                dx += ext.gated_matmul_nn(dZ2, offsets[d], w_ih[d].detach(), masks).view(T, B, I)
            if need_w[d]:
                d_w[d] = ext.gate_weight_grad(dZ2, offsets[d], G, H, x.contiguous(), masks)
    return dx, d_w


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
    biases = [_bias(bi, bh) for bi, bh in zip(b_ih, b_hh)]
    if plan.lowp:
        return _input_projection_lowp(plan, x, w_ih, biases, in_masks, out)
    xp = gated_projection(plan.ext, x, w_ih, in_masks, 4, plan.offsets, plan.S, out)
    if all(m is None for m in in_masks):
        return xp, [plan.empty() if b is None else b.detach() for b in biases]
    for d, bias in enumerate(biases):
        if bias is not None:
            xp[..., plan.columns(d)].add_(bias)
    return xp, [plan.empty()] * plan.D


def _input_projection_lowp(
    plan: Plan,
    x: Tensor,
    w_ih: Sequence[Tensor],
    biases: Sequence[Optional[Tensor]],
    in_masks: Sequence[Optional[Tensor]],
    out: Optional[Tensor],
) -> Tuple[Tensor, List[Tensor]]:
    """:func:`input_projection` of a bf16 layer: float32 ``(T, B, S)`` from bfloat16-rounded operands.
    The float32 biases are added to the float32 product as the GEMM stores it (``(x W^T) + b``, the
    kernel's order, without the kernel's second pass over the projection); with one input dropout mask per
    gate (a batched GEMM) the kernel adds them."""
    T, B, I = x.shape
    if all(m is None for m in in_masks):
        weight = w_ih[0] if plan.D == 1 else torch.cat(list(w_ih), 0)
        bias: Optional[Tensor] = None  # the directions' biases in their column blocks (zeros where absent)
        if any(b is not None for b in biases):
            parts = [torch.zeros(4 * h) if b is None else b.detach().float() for h, b in zip(plan.H, biases)]
            bias = parts[0] if plan.D == 1 else torch.cat(parts)
        xp = plan.ext.matmul_nt_bf16(x.detach(), weight.detach(), out, bias)  # (T, B, I) as it is, like matmul_nt
        return xp.view(T, B, plan.S), [plan.empty()] * plan.D
    x2 = x.reshape(T * B, I)
    kernel_bias = [plan.empty() if b is None else b.detach().float() for b in biases]
    xp = plan.ext.pooled_empty([T, B, plan.S], torch.float32)
    for d in range(plan.D):
        H, m, b = plan.H[d], in_masks[d], biases[d]
        block = xp[..., plan.columns(d)]
        w = w_ih[d].detach()
        if m is None or m.shape[0] == 1:  # the bias joins as the product is stored
            xm = x2.detach() if m is None else (x.detach() * m[0]).reshape(T * B, I)
            bias = None if b is None else b.detach().float()
            block.copy_(plan.ext.matmul_nt_bf16(xm, w, None, bias).view(T, B, 4 * H))
            kernel_bias[d] = plan.empty()
        else:  # one mask per gate: (4, T*B, I) @ (4, I, H)
            xm = (x.detach().unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
            per_gate = _mm(plan, xm, w.view(4, H, I).transpose(1, 2))
            block.copy_(per_gate.permute(1, 0, 2).reshape(T, B, 4 * H))
    return xp, kernel_bias


def recurrent_weight_grad(plan: Plan, dZ2: Tensor, d: int, h_seq: Tensor, m: Optional[Tensor]) -> Tensor:
    """``dW_hh (4H, H)`` of direction ``d``: gate block ``q`` is ``dZ_q^T (h_prev * m_q)`` over all steps, from
    ``dZ2 (T*B, S)`` (the direction's columns :meth:`.Plan.columns`), ``h_seq (T, B, H)`` (the ``h_prev``
    sequence) and ``m`` the recurrent dropout mask ``(G, B, H)`` (G = 4: one per gate, 1: shared) or None.

    float32/float64: the kernel's ``gate_weight_grad`` (the micro-kernel reading ``dZ`` in place and forming
    ``h * m_q`` while packing; 1.0-1.7x faster than oneDNN's one product without masks on nine shapes,
    1.6-4.8x faster than four per-gate products with them, docs/benchmarks.md). A bf16 layer (``dZ2`` may
    already be bfloat16; the result is float32): bf16 GEMMs, one per gate under per-gate masks."""
    H = h_seq.shape[-1]
    if not plan.lowp:  # (dZ2: the kernel's contiguous float32/float64 dZ)
        mask = plan.empty() if m is None else m.to(dZ2.dtype)
        result: Tensor = plan.ext.gate_weight_grad(dZ2, plan.offsets[d], 4, H, h_seq.contiguous(), mask)
        return result
    rows = dZ2.shape[0]
    dz = dZ2[:, plan.columns(d)]
    if m is None:
        return _mm(plan, dz.t(), h_seq.reshape(rows, H))
    if m.shape[0] == 1:
        return _mm(plan, dz.t(), (h_seq * m[0]).reshape(rows, H))
    hm = (h_seq.unsqueeze(0) * m.unsqueeze(1)).view(4, rows, H)
    return _mm(plan, dz.reshape(rows, 4, H).permute(1, 2, 0), hm).reshape(4 * H, H)


def input_gradients(
    plan: Plan,
    dZ2: Tensor,
    x: Tensor,
    w_ih: Sequence[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    need_x: bool,
    need_w_ih: Sequence[bool],
) -> Tuple[Optional[Tensor], List[Optional[Tensor]]]:
    """``(dx (T, B, I) or None, [dW_ih (4H, I) or None per direction])`` from ``dZ2 (T*B, S)``
    (a bf16 layer: ``dZ2`` may be bfloat16; ``dx`` comes back in ``x``'s dtype, ``dW_ih`` in float32)."""
    if plan.lowp:
        return _input_gradients_lowp(plan, dZ2, x, w_ih, in_masks, need_x, need_w_ih)
    return gated_projection_grads(plan.ext, dZ2, x, w_ih, in_masks, 4, plan.offsets, need_x, need_w_ih)


def _input_gradients_lowp(
    plan: Plan,
    dZ2: Tensor,
    x: Tensor,
    w_ih: Sequence[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    need_x: bool,
    need_w_ih: Sequence[bool],
) -> Tuple[Optional[Tensor], List[Optional[Tensor]]]:
    """:func:`input_gradients` of a bf16 layer: every GEMM on bfloat16-rounded operands."""
    D = plan.D
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    d_w_ih: List[Optional[Tensor]] = [None] * D
    if all(m is None for m in in_masks):
        dx = None
        if need_x:
            weight = w_ih[0] if D == 1 else torch.cat(list(w_ih), 0)
            dx = _mm(plan, dZ2, weight).view(T, B, I).to(x.dtype)
        if any(need_w_ih):
            d_w = _mm(plan, dZ2.t(), x2)  # (S, I): all directions in one GEMM
            for d in range(D):
                if need_w_ih[d]:
                    d_w_ih[d] = d_w[plan.columns(d)]
        return dx, d_w_ih
    acc = torch.zeros(T, B, I, dtype=torch.float32) if need_x else None
    for d in range(D):
        H, m = plan.H[d], in_masks[d]
        dz = dZ2[:, plan.columns(d)]
        if m is None:
            if acc is not None:
                acc += _mm(plan, dz, w_ih[d]).view(T, B, I)
            if need_w_ih[d]:
                d_w_ih[d] = _mm(plan, dz.t(), x2)
        elif m.shape[0] == 1:
            if acc is not None:
                acc += _mm(plan, dz, w_ih[d]).view(T, B, I) * m[0]
            if need_w_ih[d]:
                d_w_ih[d] = _mm(plan, dz.t(), (x * m[0]).reshape(T * B, I))
        else:
            dz4 = dz.reshape(T * B, 4, H).transpose(0, 1)  # (4, T*B, H)
            if acc is not None:
                dxm = _mm(plan, dz4, w_ih[d].view(4, H, I))  # (4, T*B, I)
                acc += (dxm.view(4, T, B, I) * m.unsqueeze(1)).sum(0)
            if need_w_ih[d]:
                xm = (x.unsqueeze(0) * m.unsqueeze(1)).reshape(4, T * B, I)
                d_w_ih[d] = _mm(plan, dz4.transpose(1, 2), xm).reshape(4 * H, I)
    return (None if acc is None else acc.to(x.dtype)), d_w_ih
