"""One layer through the kernel: the forward and backward computations, and the eager
``torch.autograd.Function`` around them.

:func:`forward_impl` / :func:`backward_impl` are the whole native computation of one layer, written
over plain tensors, lists and ints (no Python object of the call crosses them): the registered custom
ops (:mod:`.ops`, what ``torch.compile``/``torch.export``/tracing see) and the eager
:class:`NativeLayer` both run exactly these, so the two paths give the same bits.

Forward: the input projection (:mod:`.projection`), then the kernel's recurrence, which overwrites the
projection with the activated gates. When the call is recorded, every tensor backward reads goes
through ``ctx.save_for_backward`` (:class:`.Saved`), so ``torch.autograd.graph.saved_tensors_hooks``
(offloading) and ``torch.utils.checkpoint`` see them all.

Backward: the kernel returns ``dZ`` (pre-activation gradients), the bias gradients (summed from each row of
``dZ`` as it is formed) and ``dh0``/``dc0``; ``dW_hh``, ``dW_ih`` and ``dx`` are each one large GEMM over all
steps.
"""

from __future__ import annotations

import functools
from typing import Any, List, Optional, Sequence, Tuple

import torch

from ..semantics import DropoutMasks
from . import loader
from .gemm import TINY_MACS
from .plan import LayerArgs, Masks, Plan, Saved
from .projection import input_gradients, input_projection, matmul_nt, recurrent_weight_grad

Tensor = torch.Tensor

__all__ = [
    "NativeLayer",
    "apply",
    "backward_impl",
    "forward_impl",
    "infer",
    "kernel_bias",
    "dropout_kernel_masks",
    "kernel_masks",
    "lean_inference",
    "make_plan",
    "split_dropout",
]

ForwardResult = Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor, List[Tensor], List[Tensor]]
"""``(outs, h_n, c_n, gates, c_prev, h_prev)``: per direction ``(T, B, H)``, ``(B, H)``, ``(B, H)``;
``gates (T, B, S)`` and per direction ``c_prev``/``h_prev (T, B, H)`` when saved (else ``(0,)`` and ``[]``)."""


def _gemm_code(ext: Any, dtype: torch.dtype) -> int:
    from . import GEMM_PATH  # read per call: tests switch it

    if GEMM_PATH == "kernel":
        return int(ext.GEMM_KERNEL)
    if GEMM_PATH == "aten":
        return int(ext.GEMM_ATEN)
    if GEMM_PATH == "mkl":
        return int(ext.GEMM_MKL if ext.HAS_PACKED_GEMM and dtype == torch.float32 else ext.GEMM_KERNEL)
    raise ValueError(f"native.GEMM_PATH must be 'kernel', 'mkl' or 'aten'; received {GEMM_PATH!r}")


@functools.lru_cache(maxsize=256)
def _cached_plan(
    ext: Any,
    H: Tuple[int, ...],
    reverse: Tuple[bool, ...],
    acts: Tuple[int, int, int],
    carry: bool,
    gemm: int,
    dtype: torch.dtype,
    record: bool,
) -> Plan:
    offsets = []
    total = 0
    for h in H:
        offsets.append(total)
        total += 4 * h
    cfg = ext.LayerConfig()
    cfg.offsets = offsets
    cfg.reverse = list(reverse)
    cfg.gate_act, cfg.cand_act, cfg.cell_act = acts
    cfg.carry = carry
    cfg.gemm = gemm
    cfg.bf16 = dtype == torch.bfloat16  # a bf16 layer: bf16 GEMM operands, float32 state (Plan.lowp)
    cfg.save = record  # keep c_prev/h_prev for backward
    return Plan(ext, cfg, len(H), H, tuple(offsets), total, dtype, record)


def make_plan(
    H: Sequence[int], reverse: Sequence[bool], acts: Sequence[int], carry: bool, dtype: torch.dtype, record: bool
) -> Plan:
    """The :class:`.Plan` (and the kernel's ``LayerConfig``) of a call, cached per configuration: the
    kernel never mutates it, so calls with the same hidden sizes, directions and semantics share one."""
    ext = loader.require()
    a = tuple(int(v) for v in acts)
    return _cached_plan(
        ext,
        tuple(int(h) for h in H),
        tuple(bool(r) for r in reverse),
        (a[0], a[1], a[2]),
        bool(carry),
        _gemm_code(ext, dtype),
        dtype,
        bool(record),
    )


def kernel_masks(
    valid: Optional[Tensor], in_masks: Sequence[Optional[Tensor]], rec_masks: Sequence[Optional[Tensor]]
) -> Masks:
    """The call's non-differentiable tensors as the kernel reads them: ``valid`` uint8, masks contiguous."""
    return Masks(
        valid=None if valid is None else valid.detach().to(torch.uint8).contiguous(),
        inputs=tuple([None if m is None else m.detach().contiguous() for m in in_masks]),
        recurrent=tuple([None if m is None else m.detach().contiguous() for m in rec_masks]),
    )


def split_dropout(
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Optional[Tensor]], List[Optional[Tensor]]]:
    """Per-direction :class:`DropoutMasks` (or None) as the kernel's two lists: the input masks and the
    recurrent masks per direction (None where a direction has none)."""
    return [None if d is None else d.inputs for d in dropout], [None if d is None else d.recurrent for d in dropout]


def dropout_kernel_masks(valid: Optional[Tensor], dropout: Sequence[Optional[DropoutMasks]]) -> Masks:
    """:func:`kernel_masks` of a call's ``valid`` and per-direction :class:`DropoutMasks`."""
    in_masks, rec_masks = split_dropout(dropout)
    return kernel_masks(valid, in_masks, rec_masks)


_LEAN_DTYPES = (torch.float32, torch.float64)


def lean_inference(plan: Plan, masks: Masks) -> bool:
    """Whether a call goes through :func:`infer`: not recorded, float32/float64, no input dropout mask (its
    projection, of any size, takes its memory from the kernel's buffer pool)."""
    return not plan.record and plan.dtype in _LEAN_DTYPES and all(m is None for m in masks.inputs)


def kernel_bias(plan: Plan, b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tensor:
    """One direction's bias as the kernel adds it to the projection: ``b_ih + b_hh``, the one present, or
    the empty "absent" tensor (the sum as :func:`.projection.input_projection` forms it)."""
    if b_ih is None:
        return plan.empty() if b_hh is None else b_hh
    return b_ih if b_hh is None else b_ih + b_hh


def infer(
    plan: Plan,
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    bias: Sequence[Tensor],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    valid: Tensor,
    recurrent: Sequence[Tensor],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """The lean inference forward (:func:`lean_inference` holds; no autograd records it): ``(outs, h_n, c_n)``
    per direction from ``x (T, B, I)``, the directions' weights, their :func:`kernel_bias`, states, the
    kernel's ``valid`` (:meth:`.Masks.valid_arg`) and recurrent mask arguments (:meth:`.Masks.recurrent_args`).
    The general path's bias and GEMM (:func:`.projection.matmul_nt`; below :data:`.gemm.TINY_MACS` the same
    ``torch.mm`` that routing picks, called directly), without its per-call records: call plans
    (engine/callplan.py) build these arguments once. Every unrecorded call of these dtypes takes it, so a
    planned call and the full path agree bit for bit, and with the recorded forward too."""
    T, B, I = x.shape
    weight = w_ih[0] if plan.D == 1 else torch.cat(list(w_ih), 0)
    tiny = T * B * I * plan.S < TINY_MACS  # gemm.mm_nt's own rule, written out here (0.6 us fewer per call)
    if tiny and (x.dtype == torch.float64 or not torch.is_autocast_enabled("cpu")):
        if x.is_contiguous():  # one call for reshape, mm and view: the same torch.mm underneath (~1.5 us fewer)
            xp = torch.nn.functional.linear(x, weight)
        else:
            xp = torch.mm(x.reshape(T * B, I), weight.t()).view(T, B, plan.S)
    else:
        xp = matmul_nt(plan.ext, x, weight).view(T, B, plan.S).contiguous()  # (x as it is: see gemm.mm_nt)
    outs, hn, cn, _, _ = plan.ext.forward(plan.cfg, xp, w_hh, h0, c0, valid, recurrent, bias)
    return outs, hn, cn


def _infer_args(plan: Plan, args: LayerArgs, masks: Masks) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """:func:`infer` on :func:`_run_forward`'s records."""
    bias = [kernel_bias(plan, bi, bh) for bi, bh in zip(args.b_ih, args.b_hh)]
    return infer(
        plan, args.x, args.w_ih, args.w_hh, bias, args.h0, args.c0, masks.valid_arg(), masks.recurrent_args(plan)
    )


def _run_forward(plan: Plan, args: LayerArgs, masks: Masks) -> ForwardResult:
    x = args.x
    if lean_inference(plan, masks):
        outs, hn, cn = _infer_args(plan, args, masks)
        return list(outs), list(hn), list(cn), x.new_empty(0), [], []
    # The projection's memory comes from the kernel's buffer pool (a training call keeps it as the gates; an
    # inference call's block returns to the pool when the call ends) - plan.record (= plan.cfg.save): autograd
    # records this call, decided outside where grad mode is visible.
    xp, kernel_bias = input_projection(plan, x, args.w_ih, args.b_ih, args.b_hh, masks.inputs)
    xp = xp.contiguous()
    w_hh, h0, c0 = list(args.w_hh), list(args.h0), list(args.c0)
    if plan.lowp:  # the kernel's tensors are float32 (it rounds W_hh to bf16 when packing it)
        w_hh, h0, c0 = [w.float() for w in w_hh], [h.float() for h in h0], [c.float() for c in c0]
    outs, hn, cn, cprev, hprev = plan.ext.forward(
        plan.cfg,
        xp,
        w_hh,
        h0,
        c0,
        masks.valid_arg(),
        masks.recurrent_args(plan),
        kernel_bias,
    )
    # xp was overwritten in place by the kernel: the activated gates of every step
    gates = xp if plan.record else x.new_empty(0)  # (the op's fake kernel: x's dtype)
    if plan.lowp:  # results in the layer's dtype, as torch.nn.LSTM returns them under autocast
        outs, hn, cn = [o.to(x.dtype) for o in outs], [h.to(x.dtype) for h in hn], [c.to(x.dtype) for c in cn]
    return list(outs), list(hn), list(cn), gates, list(cprev), list(hprev)


def forward_impl(
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    b_ih: Sequence[Optional[Tensor]],
    b_hh: Sequence[Optional[Tensor]],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    valid: Optional[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    rec_masks: Sequence[Optional[Tensor]],
    reverse: Sequence[bool],
    acts: Sequence[int],
    carry: bool,
    save: bool,
) -> ForwardResult:
    """One layer forward (shapes in :data:`ForwardResult`); ``acts`` the kernel's gate, candidate and cell
    activation ids, ``carry`` the masked-output rule, ``save``: also return what backward reads."""
    plan = make_plan([int(w.shape[1]) for w in w_hh], reverse, acts, carry, x.dtype, save)
    args = LayerArgs(x, tuple(w_ih), tuple(w_hh), tuple(b_ih), tuple(b_hh), tuple(h0), tuple(c0))
    return _run_forward(plan, args, kernel_masks(valid, in_masks, rec_masks))


def _run_backward(
    plan: Plan,
    saved: Saved,
    need: LayerArgs,
    g_out: Sequence[Tensor],
    g_hn: Sequence[Tensor],
    g_cn: Sequence[Tensor],
) -> LayerArgs:
    """The gradients of :class:`.LayerArgs` (None where ``need`` is False)."""
    D = plan.D
    masks = saved.masks
    kd = plan.kernel_dtype  # a bf16 layer: float32 gradients into the kernel, float32 W_hh to pack
    dZ_out, dh0, dc0 = plan.ext.backward(
        plan.cfg,
        saved.gates,
        [g.to(kd).contiguous() for g in g_out],
        [g.to(kd) for g in g_hn],
        [g.to(kd) for g in g_cn],
        list(saved.c_prev),
        [w.to(kd) for w in saved.w_hh],
        masks.valid_arg(),
        masks.recurrent_args(plan),
    )
    T, B, _ = saved.x.shape
    # dZ_out: dZ (a bf16 layer's already rounded to bfloat16: what the three GEMMs below read) and every
    # direction's bias gradients, summed by the kernel from each dz row as it formed it (no pass over dZ)
    dZ2 = dZ_out[0].view(T * B, plan.S)
    d_w_hh: List[Optional[Tensor]] = [None] * D
    d_b_ih: List[Optional[Tensor]] = [None] * D
    d_b_hh: List[Optional[Tensor]] = [None] * D
    db_all = dZ_out[1] if any(need.b_ih) or any(need.b_hh) else None
    for d in range(D):
        if need.w_hh[d]:
            d_w_hh[d] = recurrent_weight_grad(plan, dZ2, d, saved.h_prev[d], masks.recurrent[d])
        if db_all is not None and (need.b_ih[d] or need.b_hh[d]):
            db = db_all[plan.columns(d)] if D > 1 else db_all
            both = need.b_ih[d] and need.b_hh[d]
            d_b_ih[d] = db if need.b_ih[d] else None
            d_b_hh[d] = (db.clone() if both else db) if need.b_hh[d] else None  # no shared .grad
    dx, d_w_ih = input_gradients(plan, dZ2, saved.x, saved.w_ih, masks.inputs, need.x, need.w_ih)
    return LayerArgs(
        dx,
        tuple(d_w_ih),
        tuple(d_w_hh),
        tuple(d_b_ih),
        tuple(d_b_hh),
        tuple(dh0),
        tuple(dc0),
    )


def backward_impl(
    grad_outs: Sequence[Tensor],
    grad_hn: Sequence[Tensor],
    grad_cn: Sequence[Tensor],
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    gates: Tensor,
    c_prev: Sequence[Tensor],
    h_prev: Sequence[Tensor],
    valid: Optional[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    rec_masks: Sequence[Optional[Tensor]],
    reverse: Sequence[bool],
    acts: Sequence[int],
    carry: bool,
    need: Sequence[bool],
) -> LayerArgs:
    """One layer backward: gradients of :class:`.LayerArgs` (``need`` is its flat layout of booleans,
    ``1DDDDDD``; an entry not needed comes back None). The ``grad_*`` are dense (zeros where unused)."""
    D = len(w_hh)
    plan = make_plan([int(w.shape[1]) for w in w_hh], reverse, acts, carry, x.dtype, True)
    masks = kernel_masks(valid, in_masks, rec_masks)
    saved = Saved(x, tuple(w_ih), tuple(w_hh), gates, tuple(c_prev), tuple(h_prev), masks)
    return _run_backward(plan, saved, LayerArgs.from_flat(need, D), grad_outs, grad_hn, grad_cn)


class NativeLayer(torch.autograd.Function):
    """The eager path (no tracing): the same computation as :mod:`.ops` without the dispatcher's
    per-call cost. Inputs: ``plan``, ``masks`` (:class:`.Masks`: not differentiable, so one plain
    argument; its tensors are saved for backward like the rest), then :class:`.LayerArgs` flattened.
    Outputs: ``(*outs, *h_n, *c_n)``."""

    @staticmethod
    def forward(ctx: Any, plan: Plan, masks: Masks, *flat: Optional[Tensor]) -> Tuple[Tensor, ...]:
        args = LayerArgs.from_flat(flat, plan.D)
        outs, hn, cn, gates, cprev, hprev = _run_forward(plan, args, masks)
        if plan.record:
            ctx.plan = plan
            ctx.save_for_backward(*Saved(args.x, args.w_ih, args.w_hh, gates, tuple(cprev), tuple(hprev), masks).flat())
        return (*outs, *hn, *cn)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor) -> Tuple[Optional[Tensor], ...]:
        plan: Plan = ctx.plan
        D = plan.D
        saved = Saved.from_flat(ctx.saved_tensors, D)
        need = LayerArgs.from_flat(ctx.needs_input_grad[2:], D)
        grad_args = _run_backward(plan, saved, need, grads[0:D], grads[D : 2 * D], grads[2 * D : 3 * D])
        return (None, None, *grad_args.flat())


def apply(plan: Plan, args: LayerArgs, masks: Masks) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Run :class:`NativeLayer`; returns ``(outs, h_n, c_n)`` lists over directions. A call autograd does not
    record (``plan.record`` False: inference) runs the same forward without the Function's per-call cost."""
    D = plan.D
    if not plan.record:
        if lean_inference(plan, masks):
            return _infer_args(plan, args, masks)
        outs, hn, cn, _, _, _ = _run_forward(plan, args, masks)
        return outs, hn, cn
    results: Sequence[Tensor] = NativeLayer.apply(plan, masks, *args.flat())  # type: ignore[no-untyped-call]
    return list(results[0:D]), list(results[D : 2 * D]), list(results[2 * D : 3 * D])
