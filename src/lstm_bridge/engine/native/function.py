"""One layer through the kernel as a ``torch.autograd.Function``.

``NativeLayer.apply(plan, masks, *LayerArgs.flat())`` returns ``(*outs, *h_n, *c_n)`` (per
direction ``(T, B, H)``, ``(B, H)``, ``(B, H)``). Forward: the input projection (:mod:`.projection`),
then the kernel's recurrence, which overwrites the projection with the activated gates. When the call
is recorded, every tensor backward reads goes through ``ctx.save_for_backward`` (:class:`.Saved`), so
``torch.autograd.graph.saved_tensors_hooks`` (offloading) and ``torch.utils.checkpoint`` see them all;
``ctx`` keeps only the tensor-free :class:`.Plan`.

Backward: the kernel returns ``dZ`` (pre-activation gradients) and ``dh0``/``dc0``; ``dW_hh``, ``dW_ih``,
``dx`` and the bias gradients are each one large GEMM / reduction over all steps.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch

from . import workspace
from .plan import LayerArgs, Masks, Plan, Saved
from .projection import input_gradients, input_projection

Tensor = torch.Tensor

__all__ = ["NativeLayer"]


def _recurrent_weight_grad(dz: Tensor, h_seq: Tensor, m: Optional[Tensor]) -> Tensor:
    """``dW_hh (4H, H)`` of one direction: one GEMM over all steps against the (masked) ``h_prev``
    sequence; ``dz (T*B, 4H)``, ``h_seq (T, B, H)``, ``m`` the recurrent dropout mask or None."""
    H = h_seq.shape[-1]
    rows = dz.shape[0]
    if m is None:
        return dz.t().mm(h_seq.view(rows, H))
    if m.shape[0] == 1:
        return dz.t().mm((h_seq * m[0]).view(rows, H))
    hm = (h_seq.unsqueeze(0) * m.unsqueeze(1)).view(4, rows, H)
    return torch.bmm(dz.view(rows, 4, H).permute(1, 2, 0), hm).reshape(4 * H, H)


class NativeLayer(torch.autograd.Function):
    """Inputs: ``plan``, ``masks`` (:class:`.Masks`: not differentiable, so one plain argument; its
    tensors are saved for backward like the rest), then :class:`.LayerArgs` flattened.
    Outputs: ``(*outs, *h_n, *c_n)``."""

    @staticmethod
    def forward(ctx: Any, plan: Plan, masks: Masks, *flat: Optional[Tensor]) -> Tuple[Tensor, ...]:
        args = LayerArgs.from_flat(flat, plan.D)
        x = args.x
        T, B, _ = x.shape
        # plan.record (= plan.cfg.save): autograd records this call, decided outside where grad mode is visible
        reuse = None if plan.record else workspace.inference_buffer(T * B * plan.S, x.dtype)
        xp, kernel_bias = input_projection(plan, x, args.w_ih, args.b_ih, args.b_hh, masks.inputs, out=reuse)
        xp = xp.contiguous()
        outs, hn, cn, cprev, hprev = plan.ext.forward(
            plan.cfg,
            xp,
            list(args.w_hh),
            list(args.h0),
            list(args.c0),
            masks.valid_arg(),
            masks.recurrent_args(plan),
            kernel_bias,
        )
        if plan.record:
            ctx.plan = plan
            # xp was overwritten in place by the kernel: the activated gates of every step
            ctx.save_for_backward(*Saved(x, args.w_ih, args.w_hh, xp, tuple(cprev), tuple(hprev), masks).flat())
        return (*outs, *hn, *cn)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor) -> Tuple[Optional[Tensor], ...]:
        plan: Plan = ctx.plan
        D = plan.D
        saved = Saved.from_flat(ctx.saved_tensors, D)
        need = LayerArgs.from_flat(ctx.needs_input_grad[2:], D)
        masks = saved.masks
        g_out = [g.contiguous() for g in grads[0:D]]
        g_hn, g_cn = list(grads[D : 2 * D]), list(grads[2 * D : 3 * D])
        (dZ,), dh0, dc0 = plan.ext.backward(
            plan.cfg,
            saved.gates,
            g_out,
            g_hn,
            g_cn,
            list(saved.c_prev),
            list(saved.w_hh),
            masks.valid_arg(),
            masks.recurrent_args(plan),
        )
        T, B, _ = saved.x.shape
        dZ2 = dZ.view(T * B, plan.S)
        d_w_hh: List[Optional[Tensor]] = [None] * D
        d_b_ih: List[Optional[Tensor]] = [None] * D
        d_b_hh: List[Optional[Tensor]] = [None] * D
        for d in range(D):
            dz = dZ2[:, plan.columns(d)]
            if need.w_hh[d]:
                d_w_hh[d] = _recurrent_weight_grad(dz, saved.h_prev[d], masks.recurrent[d])
            if need.b_ih[d] or need.b_hh[d]:
                db = dz.sum(0)
                both = need.b_ih[d] and need.b_hh[d]
                d_b_ih[d] = db if need.b_ih[d] else None
                d_b_hh[d] = (db.clone() if both else db) if need.b_hh[d] else None  # no shared .grad
        dx, d_w_ih = input_gradients(plan, dZ2, saved.x, saved.w_ih, masks.inputs, need.x, need.w_ih)
        grad_args = LayerArgs(dx, tuple(d_w_ih), tuple(d_w_hh), tuple(d_b_ih), tuple(d_b_hh), tuple(dh0), tuple(dc0))
        return (None, None, *grad_args.flat())


def apply(plan: Plan, args: LayerArgs, masks: Masks) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Run :class:`NativeLayer`; returns ``(outs, h_n, c_n)`` lists over directions."""
    D = plan.D
    results: Sequence[Tensor] = NativeLayer.apply(plan, masks, *args.flat())  # type: ignore[no-untyped-call]
    return list(results[0:D]), list(results[D : 2 * D]), list(results[2 * D : 3 * D])
