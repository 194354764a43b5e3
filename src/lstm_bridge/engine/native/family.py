"""The native GRU / simple-RNN layer (``family.cpp``): its plan, its pure forward and backward, and the
``torch.autograd.Function`` around them.

The computation is two pure functions over tensors and primitives (no Python object of the call), so a
custom operator can wrap them as ``ops.py`` wraps the LSTM's:

* :func:`forward_impl` ``(x, w_ih, w_hh, b_ih, b_hh, h0, valid, in_masks, rec_masks, reverse, form, acts,
  carry, ms_order, save) -> (outs, h_n, gates, h_prev, aux)``;
* :func:`backward_impl` ``(grad_outs, grad_hn, x, w_ih, w_hh, gates, h_prev, aux, valid, in_masks,
  rec_masks, reverse, form, acts, carry, ms_order, needs) -> (dx, dw_ih, dw_hh, db_ih, db_hh, dh0)``.

:class:`NativeFamilyLayer` saves every tensor backward reads through ``ctx.save_for_backward``.

Work shape (as the LSTM kernel): one GEMM projects every step of every direction (``x W_cat^T``; per
direction / per gate under input dropout); the kernel runs the steps (per step the recurrent GEMM(s) and
one fused pointwise pass that overwrites the projection with the activated gates); backward gets the
pre-activation gradients ``dZ`` from the kernel and forms ``dW_hh``, ``dW_ih``, ``dx`` and the bias
gradients as large GEMMs over all steps.

Bias placement follows :mod:`lstm_bridge.engine.family_torch` so both paths round alike: ``"exact"``
folds every bias outside a product into the projection's (``bias_x``) and keeps the GRU's ``b_hn`` on the
recurrent product (``bias_h``); MindSpore's order (``ms_order``) puts ``b_ih`` on the projection and
``b_hh`` on the recurrent product.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ..guards import tracing
from ..semantics import CellKind, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput
from . import loader
from .checks import native_activation_id
from .function import split_dropout
from .projection import gated_projection, gated_projection_grads

Tensor = torch.Tensor
OptTensor = Optional[Tensor]

__all__ = [
    "FORM_GRU_AFTER",
    "FORM_GRU_BEFORE",
    "FORM_RNN",
    "NativeFamilyLayer",
    "backward_impl",
    "forward_impl",
    "run_family_layer",
]

FORM_RNN, FORM_GRU_AFTER, FORM_GRU_BEFORE = 0, 1, 2  # enum FamilyForm in family.h

_EMPTY = {torch.float32: torch.empty(0), torch.float64: torch.empty(0, dtype=torch.float64)}
_NO_VALID = torch.empty(0, dtype=torch.uint8)


def form_of(kind: CellKind, reset_after: bool) -> int:
    """The kernel's form code for a cell kind (and the GRU's ``reset_after``)."""
    if kind is CellKind.RNN:
        return FORM_RNN
    if kind is CellKind.GRU:
        return FORM_GRU_AFTER if reset_after else FORM_GRU_BEFORE
    raise ValueError(f"the native family kernel runs GRU and RNN layers; received {kind.value}")


def _gates(form: int) -> int:
    return 1 if form == FORM_RNN else 3


def _ext() -> Any:
    """The kernel, built or loaded on first use (a saved program loaded in a fresh process calls the op before
    any layer has)."""
    return loader.require()


def _config(
    ext: Any,
    H: Sequence[int],
    form: int,
    reverse: Sequence[bool],
    acts: Sequence[int],
    carry: bool,
    ms_order: bool,
    save: bool,
) -> Tuple[Any, List[int], int]:
    """The kernel's ``FamilyConfig``, the column offset of each direction and the total width S."""
    G = _gates(form)
    offsets, total = [], 0
    for h in H:
        offsets.append(total)
        total += G * h
    cfg = ext.FamilyConfig()
    cfg.form = form
    cfg.offsets = offsets
    cfg.reverse = [bool(r) for r in reverse]
    cfg.gate_act = int(acts[0])
    cfg.cand_act = int(acts[1])
    cfg.carry = bool(carry)
    cfg.ms_order = bool(ms_order)
    cfg.save = bool(save)
    return cfg, offsets, total


def _pair(b_ih: OptTensor, b_hh: OptTensor) -> Optional[Tuple[Tensor, Tensor]]:
    """``(b_ih, b_hh)`` with a missing half as zeros when the other exists (family_torch's rule)."""
    if b_ih is None:
        return None if b_hh is None else (torch.zeros_like(b_hh), b_hh)
    return b_ih, (torch.zeros_like(b_ih) if b_hh is None else b_hh)


def _kernel_biases(form: int, ms_order: bool, H: int, b_ih: OptTensor, b_hh: OptTensor) -> Tuple[OptTensor, OptTensor]:
    """``(bias_x, bias_h)`` of one direction (None = absent), detached, in family_torch's rounding order."""
    pair = _pair(b_ih, b_hh)
    if pair is None:
        return None, None
    bi, bh = pair[0].detach(), pair[1].detach()
    if ms_order and form != FORM_GRU_BEFORE:
        return bi, bh
    if form == FORM_GRU_AFTER:
        return torch.cat([bi[: 2 * H] + bh[: 2 * H], bi[2 * H :]]), torch.cat(
            [torch.zeros_like(bh[: 2 * H]), bh[2 * H :]]
        )
    return bi + bh, None


def forward_impl(
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    b_ih: Sequence[OptTensor],
    b_hh: Sequence[OptTensor],
    h0: Sequence[Tensor],
    valid: OptTensor,
    in_masks: Sequence[OptTensor],
    rec_masks: Sequence[OptTensor],
    reverse: Sequence[bool],
    form: int,
    acts: Sequence[int],
    carry: bool,
    ms_order: bool,
    save: bool,
) -> Tuple[List[Tensor], List[Tensor], Tensor, List[Tensor], List[Tensor]]:
    """One native GRU/RNN layer forward, no autograd.

    Args:
        x: ``(T, B, I)``; w_ih[d] ``(G*H_d, I)``, w_hh[d] ``(G*H_d, H_d)``, b_ih/b_hh[d] ``(G*H_d,)`` or
            None (G = 3 GRU, 1 RNN; gate blocks r, z, n); h0[d] ``(B, H_d)``.
        valid: ``(T, B)`` bool/uint8 or None. in_masks[d] ``(M, B, I)``, rec_masks[d] ``(M, B, H_d)``
            (M in {1, G}) or None.
        form: :data:`FORM_RNN`, :data:`FORM_GRU_AFTER` or :data:`FORM_GRU_BEFORE`.
        acts: kernel activation ids ``(gate, candidate)``. carry: the masked-output rule.
        ms_order: MindSpore's op order. save: keep what backward reads.

    Returns:
        ``(outs[d] (T, B, H_d), h_n[d] (B, H_d), gates (T, B, S), h_prev[d], aux[d])``; without
        ``save`` the last three are an empty tensor and empty lists.
    """
    ext = _ext()
    G = _gates(form)
    H = [int(w.shape[1]) for w in w_hh]
    cfg, offsets, S = _config(ext, H, form, reverse, acts, carry, ms_order, save)
    xp = gated_projection(ext, x, w_ih, in_masks, G, offsets, S)
    empty = _EMPTY[x.dtype]
    bias_x: List[Tensor] = []
    bias_h: List[Tensor] = []
    for d in range(len(H)):
        bx, bh = _kernel_biases(form, ms_order, H[d], b_ih[d], b_hh[d])
        bias_x.append(empty if bx is None else bx)
        bias_h.append(empty if bh is None else bh)
    outs, hn, hprev, aux = ext.family_forward(
        cfg,
        xp,
        [w.detach() for w in w_hh],
        [h.detach().to(x.dtype) for h in h0],
        _NO_VALID if valid is None else valid.detach().to(torch.uint8).contiguous(),
        [empty if m is None else m.detach().contiguous() for m in rec_masks],
        bias_x,
        bias_h,
    )
    if not save:
        return list(outs), list(hn), empty, [], []
    return list(outs), list(hn), xp, list(hprev), list(aux)


def _recurrent_grads(
    ext: Any, form: int, dZ2: Tensor, off: int, daux: OptTensor, h_prev: Tensor, aux: OptTensor, m: OptTensor, H: int
) -> Tensor:
    """``dW_hh (G*H, H)`` of one direction from its columns ``[off, off + G*H)`` of ``dZ2 (T*B, S)``: the
    kernel's ``gate_weight_grad`` over the gate blocks that multiply ``h_prev * m_q`` (the masks formed while
    packing), the GRU's n block against its own operand (reset_after: ``daux``; reset_before: ``r * hm_n``,
    saved as ``aux``). ``dZ2``: the kernel's contiguous float32/float64 ``dZ``."""
    rows = dZ2.shape[0]
    h = h_prev.contiguous()
    none = h.new_empty(0)

    def masks(q0: int, count: int) -> Tensor:  # gates q0 .. q0 + count - 1 (a single mask is shared)
        if m is None:
            return none
        return (m if m.shape[0] == 1 else m[q0 : q0 + count]).to(h.dtype).contiguous()

    if form == FORM_RNN:
        result: Tensor = ext.gate_weight_grad(dZ2, off, 1, H, h, masks(0, 1))
        return result
    rz = ext.gate_weight_grad(dZ2, off, 2, H, h, masks(0, 2))
    if form == FORM_GRU_AFTER:
        assert daux is not None
        n = ext.gate_weight_grad(daux.reshape(rows, H).contiguous(), 0, 1, H, h, masks(2, 1))
    else:  # reset_before: the n product's input was r ⊙ hm_n, saved as aux
        assert aux is not None
        n = ext.gate_weight_grad(dZ2, off + 2 * H, 1, H, aux.reshape(rows, H).contiguous(), none)
    return torch.cat([rz, n], 0)


def backward_impl(
    grad_outs: Sequence[Tensor],
    grad_hn: Sequence[Tensor],
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    gates: Tensor,
    h_prev: Sequence[Tensor],
    aux: Sequence[Tensor],
    valid: OptTensor,
    in_masks: Sequence[OptTensor],
    rec_masks: Sequence[OptTensor],
    reverse: Sequence[bool],
    form: int,
    acts: Sequence[int],
    carry: bool,
    ms_order: bool,
    needs: Sequence[bool],
) -> Tuple[OptTensor, List[OptTensor], List[OptTensor], List[OptTensor], List[OptTensor], List[OptTensor]]:
    """The gradients of :func:`forward_impl`'s differentiable inputs.

    ``needs`` flattens ``(x, w_ih[D], w_hh[D], b_ih[D], b_hh[D], h0[D])``; a gradient not needed is None.
    Returns ``(dx, dw_ih[d], dw_hh[d], db_ih[d], db_hh[d], dh0[d])``.
    """
    ext = _ext()
    D = len(w_hh)
    G = _gates(form)
    H = [int(w.shape[1]) for w in w_hh]
    cfg, offsets, S = _config(ext, H, form, reverse, acts, carry, ms_order, True)
    dtype = gates.dtype
    empty = _EMPTY[dtype]
    (dZ,), dh0, daux = ext.family_backward(
        cfg,
        gates,
        [g.contiguous() for g in grad_outs],
        list(grad_hn),
        list(h_prev),
        list(aux) if form != FORM_RNN else [],
        [w.detach() for w in w_hh],
        _NO_VALID if valid is None else valid,
        [empty if m is None else m for m in rec_masks],
    )
    need_x = bool(needs[0])
    need_w_ih = [bool(n) for n in needs[1 : 1 + D]]
    need_w_hh = [bool(n) for n in needs[1 + D : 1 + 2 * D]]
    need_b_ih = [bool(n) for n in needs[1 + 2 * D : 1 + 3 * D]]
    need_b_hh = [bool(n) for n in needs[1 + 3 * D : 1 + 4 * D]]
    T, B, _ = x.shape
    dZ2 = dZ.view(T * B, S)
    d_w_hh: List[OptTensor] = [None] * D
    d_b_ih: List[OptTensor] = [None] * D
    d_b_hh: List[OptTensor] = [None] * D
    for d in range(D):
        dz = dZ2[:, offsets[d] : offsets[d] + G * H[d]]
        da = daux[d] if form == FORM_GRU_AFTER else None
        if need_w_hh[d]:
            d_w_hh[d] = _recurrent_grads(
                ext, form, dZ2, offsets[d], da, h_prev[d], aux[d] if form != FORM_RNN else None, rec_masks[d], H[d]
            )
        if need_b_ih[d] or need_b_hh[d]:
            db = dz.sum(0)
            if need_b_ih[d]:
                d_b_ih[d] = db
            if need_b_hh[d]:
                if da is not None:  # reset_after: b_hn sits on the recurrent product, inside r ⊙ (.)
                    d_b_hh[d] = torch.cat([db[: 2 * H[d]], da.reshape(T * B, H[d]).sum(0)])
                else:
                    d_b_hh[d] = db.clone() if need_b_ih[d] else db  # never one tensor as two .grad
    dx, d_w_ih = gated_projection_grads(ext, dZ2, x, w_ih, in_masks, G, offsets, need_x, need_w_ih)
    need_h0 = [bool(n) for n in needs[1 + 4 * D : 1 + 5 * D]]
    d_h0: List[OptTensor] = [dh0[d] if need_h0[d] else None for d in range(D)]
    return dx, d_w_ih, d_w_hh, d_b_ih, d_b_hh, d_h0


class _Call(NamedTuple):
    """The non-tensor description of a call plus its non-differentiable tensors (valid, masks)."""

    D: int
    form: int
    acts: Tuple[int, int]
    carry: bool
    ms_order: bool
    reverse: Tuple[bool, ...]
    valid: OptTensor
    in_masks: Tuple[OptTensor, ...]
    rec_masks: Tuple[OptTensor, ...]


class NativeFamilyLayer(torch.autograd.Function):
    """Inputs: ``call`` (:class:`_Call`), then ``x, *w_ih, *w_hh, *b_ih, *b_hh, *h0``.
    Outputs: ``(*outs, *h_n)``. Backward reads only what ``ctx.save_for_backward`` holds."""

    @staticmethod
    def forward(ctx: Any, call: _Call, *flat: OptTensor) -> Tuple[Tensor, ...]:
        D = call.D
        x = flat[0]
        assert x is not None
        w_ih = [w for w in flat[1 : 1 + D] if w is not None]
        w_hh = [w for w in flat[1 + D : 1 + 2 * D] if w is not None]
        b_ih, b_hh = list(flat[1 + 2 * D : 1 + 3 * D]), list(flat[1 + 3 * D : 1 + 4 * D])
        h0 = [h for h in flat[1 + 4 * D : 1 + 5 * D] if h is not None]
        # only applied when autograd records the call (run_family_layer runs inference without it)
        outs, hn, gates, h_prev, aux = forward_impl(
            x, w_ih, w_hh, b_ih, b_hh, h0, call.valid, call.in_masks, call.rec_masks, call.reverse, call.form,
            call.acts, call.carry, call.ms_order, True
        )  # fmt: skip
        ctx.call = call._replace(valid=None, in_masks=(), rec_masks=())  # its tensors go through save_for_backward
        ctx.has = (
            call.valid is not None,
            [m is not None for m in call.in_masks],
            [m is not None for m in call.rec_masks],
        )
        present = [t for t in (call.valid, *call.in_masks, *call.rec_masks) if t is not None]
        ctx.save_for_backward(x, *w_ih, *w_hh, gates, *h_prev, *aux, *present)
        return (*outs, *hn)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor) -> Tuple[OptTensor, ...]:
        call: _Call = ctx.call
        D = call.D
        saved = list(ctx.saved_tensors)
        x, w_ih, w_hh, gates = saved[0], saved[1 : 1 + D], saved[1 + D : 1 + 2 * D], saved[1 + 2 * D]
        at = 2 + 2 * D
        h_prev = saved[at : at + D]
        at += D
        n_aux = D if call.form != FORM_RNN else 0
        aux = saved[at : at + n_aux]
        at += n_aux
        rest = iter(saved[at:])
        has_valid, has_in, has_rec = ctx.has
        valid = next(rest) if has_valid else None
        in_masks = [next(rest) if h else None for h in has_in]
        rec_masks = [next(rest) if h else None for h in has_rec]
        g_out, g_hn = list(grads[:D]), list(grads[D : 2 * D])  # materialised: zeros for unused outputs
        dx, dw_ih, dw_hh, db_ih, db_hh, dh0 = backward_impl(
            g_out, g_hn, x, w_ih, w_hh, gates, h_prev, aux, valid, in_masks, rec_masks, call.reverse, call.form,
            call.acts, call.carry, call.ms_order, ctx.needs_input_grad[1:]
        )  # fmt: skip
        return (None, dx, *dw_ih, *dw_hh, *db_ih, *db_hh, *dh0)


def run_family_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    *,
    kind: CellKind,
    reverse: Sequence[bool],
    valid: OptTensor,
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor]]:
    """One GRU/RNN layer on the kernel, with :func:`lstm_bridge.engine.family_torch.run_family_layer`'s
    results (``(outputs, h_n)`` lists over directions, outputs indexed by original time). The request must
    have passed ``checks.check_family_supported`` and the engine's shape checks."""
    loader.require()
    D = len(directions)
    acts = semantics.activations
    gate_id = native_activation_id(acts.gate) if kind is CellKind.GRU else 0
    cand_id = native_activation_id(acts.candidate)
    assert gate_id is not None and cand_id is not None  # check_family_supported
    ms_order = bool(semantics.mindspore_cpu)
    call = _Call(
        D=D,
        form=form_of(kind, semantics.reset_after),
        acts=(gate_id, cand_id),
        carry=semantics.masked_output is MaskedOutput.CARRY,
        ms_order=ms_order,
        reverse=tuple(bool(r) for r in reverse),
        valid=None if valid is None else valid.detach().to(torch.uint8).contiguous(),
        in_masks=tuple(None if d is None or d.inputs is None else d.inputs.detach().contiguous() for d in dropout),
        rec_masks=tuple(
            None if d is None or d.recurrent is None else d.recurrent.detach().contiguous() for d in dropout
        ),
    )
    if tracing():  # torch.compile / torch.export / jit.trace record the registered custom op (family_ops)
        from . import family_ops

        in_masks, rec_masks = split_dropout(dropout)
        return family_ops.run(
            x, [w.w_ih for w in directions], [w.w_hh for w in directions], [w.b_ih for w in directions],
            [w.b_hh for w in directions], [h if h.dtype == x.dtype else h.to(x.dtype) for h in h0], valid=valid,
            in_masks=in_masks, rec_masks=rec_masks, reverse=call.reverse, form=call.form, acts=call.acts,
            carry=call.carry, ms_order=call.ms_order,
        )  # fmt: skip
    flat = (
        x,
        *[w.w_ih for w in directions],
        *[w.w_hh for w in directions],
        *[w.b_ih for w in directions],
        *[w.b_hh for w in directions],
        *[h.to(x.dtype) for h in h0],
    )
    record = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in flat)
    if not record:
        outs, hn, _, _, _ = forward_impl(
            x, [w.w_ih for w in directions], [w.w_hh for w in directions], [w.b_ih for w in directions],
            [w.b_hh for w in directions], list(flat[1 + 4 * D :]), call.valid, call.in_masks, call.rec_masks,
            call.reverse, call.form, call.acts, call.carry, call.ms_order, False
        )  # fmt: skip
        return outs, hn
    results = NativeFamilyLayer.apply(call, *flat)  # type: ignore[no-untyped-call]
    return list(results[:D]), list(results[D:])
