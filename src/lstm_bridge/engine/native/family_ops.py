"""The native GRU / simple-RNN kernel as registered custom operators, as :mod:`.ops` registers the LSTM's.

``torch.ops.lstm_bridge.family_layer`` / ``family_layer_backward`` wrap :func:`.family.forward_impl` /
:func:`.family.backward_impl` (schemas of tensors, tensor lists, ints and bools; fake kernels with symbolic
``T`` and ``B``; an autograd formula saving through ``ctx.save_for_backward``), registered by
:func:`.ops.define_op` like the LSTM's. Traced calls (``torch.compile``, ``torch.export``, ``torch.jit.trace``)
record these ops; eager calls keep :class:`.family.NativeFamilyLayer`.

Schema of ``family_layer`` (``D`` directions, ``G`` = 3 GRU / 1 RNN, ``H_d`` from ``w_hh[d]``, ``S = sum G H_d``)::

    x (T, B, I); w_ih[d] (G H_d, I); w_hh[d] (G H_d, H_d); b_ih / b_hh: the present biases, has_bias[d] /
    has_bias[D + d] (0/1) saying which; h0[d] (B, H_d); valid (T, B) bool or None; in_masks / rec_masks: the
    present dropout masks, has_mask[d] / has_mask[D + d]; reverse[d] (0/1); form (family.FORM_*); acts =
    [gate, candidate]; carry; ms_order; save
    -> [*outs (T, B, H_d), *h_n (B, H_d), gates (T, B, S) or (0,), *h_prev (T, B, H_d), *aux (T, B, H_d)]
       (h_prev only when saved; aux for the GRU forms only)
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch

from . import family
from .ops import _expand, _grad_shapes, _per_direction, _present, _unaliased, define_op, saves_for_backward

Tensor = torch.Tensor

__all__ = ["family_layer", "family_layer_backward", "run"]


def _gate_count(form: int) -> int:
    return 1 if form == family.FORM_RNN else 3


def _family_layer_kernel(
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    b_ih: List[Tensor],
    b_hh: List[Tensor],
    has_bias: List[int],
    h0: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    form: int,
    acts: List[int],
    carry: bool,
    ms_order: bool,
    save: bool,
) -> List[Tensor]:
    """One native GRU/RNN layer forward (see the module docstring for the schema)."""
    D = len(w_hh)
    outs, hn, gates, h_prev, aux = family.forward_impl(
        x,
        w_ih,
        w_hh,
        _present(b_ih, has_bias[:D]),
        _present(b_hh, has_bias[D:]),
        h0,
        valid,
        _present(in_masks, has_mask[:D]),
        _present(rec_masks, has_mask[D:]),
        [bool(r) for r in reverse],
        form,
        acts,
        carry,
        ms_order,
        save,
    )
    if not save:
        gates = x.new_empty((0,))
    return _unaliased([*outs, *hn, gates, *h_prev, *aux], [x, *w_ih, *w_hh, *b_ih, *b_hh, *h0])


def _family_layer_fake(
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    b_ih: List[Tensor],
    b_hh: List[Tensor],
    has_bias: List[int],
    h0: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    form: int,
    acts: List[int],
    carry: bool,
    ms_order: bool,
    save: bool,
) -> List[Tensor]:
    T, B = x.shape[0], x.shape[1]
    hidden = [w.shape[1] for w in w_hh]
    outs = [x.new_empty((T, B, h)) for h in hidden]
    hn = [x.new_empty((B, h)) for h in hidden]
    if not save:
        return [*outs, *hn, x.new_empty((0,))]
    S = sum(w.shape[0] for w in w_hh)
    h_prev = [x.new_empty((T, B, h)) for h in hidden]
    aux = [] if form == family.FORM_RNN else [x.new_empty((T, B, h)) for h in hidden]
    return [*outs, *hn, x.new_empty((T, B, S)), *h_prev, *aux]


def _family_layer_backward_kernel(
    grad_outs: List[Tensor],
    grad_hn: List[Tensor],
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    gates: Tensor,
    h_prev: List[Tensor],
    aux: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    form: int,
    acts: List[int],
    carry: bool,
    ms_order: bool,
    need: List[int],
) -> List[Tensor]:
    """The gradients of ``x, w_ih[d], w_hh[d], b_ih[d], b_hh[d], h0[d]`` (that flat order) for which ``need``
    is 1, in that order."""
    D = len(w_hh)
    dx, dw_ih, dw_hh, db_ih, db_hh, dh0 = family.backward_impl(
        grad_outs,
        grad_hn,
        x,
        w_ih,
        w_hh,
        gates,
        h_prev,
        aux,
        None if valid is None else valid.to(torch.uint8).contiguous(),
        _present(in_masks, has_mask[:D]),
        _present(rec_masks, has_mask[D:]),
        [bool(r) for r in reverse],
        form,
        acts,
        carry,
        ms_order,
        [bool(n) for n in need],
    )
    flat = [dx, *dw_ih, *dw_hh, *db_ih, *db_hh, *dh0]
    results = [g if g is not None else x.new_empty((0,)) for g, n in zip(flat, need) if n]
    return _unaliased(results, [*grad_outs, *grad_hn, x, *w_ih, *w_hh, gates, *h_prev, *aux])


def _family_layer_backward_fake(
    grad_outs: List[Tensor],
    grad_hn: List[Tensor],
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    gates: Tensor,
    h_prev: List[Tensor],
    aux: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    form: int,
    acts: List[int],
    carry: bool,
    ms_order: bool,
    need: List[int],
) -> List[Tensor]:
    return [x.new_empty(shape) for shape, n in zip(_grad_shapes(x, w_ih, w_hh, states=1), need) if n]


def _setup_context(ctx: Any, inputs: Tuple[Any, ...], output: Any) -> None:
    (x, w_ih, w_hh, b_ih, b_hh, has_bias, h0, valid, in_masks, rec_masks, has_mask, reverse, form, acts, carry,
     ms_order, save) = inputs  # fmt: skip
    if not save:
        raise RuntimeError(
            "lstm_bridge::family_layer was recorded by autograd with save=False: pass save=True when grad mode "
            "is on and an input requires grad (lstm_bridge.engine.native.family_ops.run decides it)"
        )
    D = len(w_hh)
    n_aux = 0 if form == family.FORM_RNN else D
    gates = output[2 * D]
    h_prev = output[2 * D + 1 : 3 * D + 1]
    aux = output[3 * D + 1 : 3 * D + 1 + n_aux]
    ctx.D, ctx.n_aux = D, n_aux
    ctx.meta = ([bool(b) for b in has_bias], list(has_mask), list(reverse), int(form), list(acts), bool(carry),
                bool(ms_order))  # fmt: skip
    ctx.n_masks = (len(in_masks), len(rec_masks))
    ctx.save_for_backward(x, *w_ih, *w_hh, gates, *h_prev, *aux, valid, *in_masks, *rec_masks)


def _backward(ctx: Any, grads: Sequence[Optional[Tensor]]) -> Tuple[Any, ...]:
    D, n_aux = ctx.D, ctx.n_aux
    has_bias, has_mask, reverse, form, acts, carry, ms_order = ctx.meta
    n_in, n_rec = ctx.n_masks
    saved = list(ctx.saved_tensors)
    x, w_ih, w_hh, gates = saved[0], saved[1 : 1 + D], saved[1 + D : 1 + 2 * D], saved[1 + 2 * D]
    at = 2 + 2 * D
    h_prev = saved[at : at + D]
    aux = saved[at + D : at + D + n_aux]
    at += D + n_aux
    valid = saved[at]
    in_masks = saved[at + 1 : at + 1 + n_in]
    rec_masks = saved[at + 1 + n_in : at + 1 + n_in + n_rec]
    need_x, need_w_ih, need_w_hh, need_b_ih, need_b_hh, _, need_h0 = ctx.needs_input_grad[:7]
    need = [
        bool(need_x),
        *_per_direction(need_w_ih, D),
        *_per_direction(need_w_hh, D),
        *_expand(_per_direction(need_b_ih, sum(has_bias[:D])), has_bias[:D]),
        *_expand(_per_direction(need_b_hh, sum(has_bias[D:])), has_bias[D:]),
        *_per_direction(need_h0, D),
    ]
    g_out = [torch.zeros_like(h) if g is None else g for g, h in zip(grads[:D], h_prev)]
    g_hn = [torch.zeros_like(h[0]) if g is None else g for g, h in zip(grads[D : 2 * D], h_prev)]
    result = torch.ops.lstm_bridge.family_layer_backward(
        g_out, g_hn, x, w_ih, w_hh, gates, h_prev, aux, valid, in_masks, rec_masks, has_mask, reverse, form, acts,
        carry, ms_order, [int(n) for n in need],
    )  # fmt: skip
    it = iter(result)
    flat = [next(it) if n else None for n in need]
    d_b_ih = [g for g, h in zip(flat[1 + 2 * D : 1 + 3 * D], has_bias[:D]) if h]
    d_b_hh = [g for g, h in zip(flat[1 + 3 * D : 1 + 4 * D], has_bias[D:]) if h]
    return (
        flat[0],
        flat[1 : 1 + D],
        flat[1 + D : 1 + 2 * D],
        d_b_ih,
        d_b_hh,
        None,
        flat[1 + 4 * D : 1 + 5 * D],
        None,
        [None] * n_in,
        [None] * n_rec,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )


family_layer = define_op("family_layer", _family_layer_kernel, _family_layer_fake, _backward, _setup_context)
family_layer_backward = define_op("family_layer_backward", _family_layer_backward_kernel, _family_layer_backward_fake)


def run(
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    b_ih: Sequence[Optional[Tensor]],
    b_hh: Sequence[Optional[Tensor]],
    h0: Sequence[Tensor],
    *,
    valid: Optional[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    rec_masks: Sequence[Optional[Tensor]],
    reverse: Sequence[bool],
    form: int,
    acts: Sequence[int],
    carry: bool,
    ms_order: bool,
) -> Tuple[List[Tensor], List[Tensor]]:
    """One GRU/RNN layer through ``torch.ops.lstm_bridge.family_layer``: ``(outs, h_n)`` lists over directions."""
    present_b = [b for b in (*b_ih, *b_hh) if b is not None]
    tensors = [x, *w_ih, *w_hh, *h0, *present_b]
    save = saves_for_backward(tensors)
    D = len(w_hh)
    results = torch.ops.lstm_bridge.family_layer(
        x,
        list(w_ih),
        list(w_hh),
        [b for b in b_ih if b is not None],
        [b for b in b_hh if b is not None],
        [int(b is not None) for b in b_ih] + [int(b is not None) for b in b_hh],
        list(h0),
        valid,
        [m for m in in_masks if m is not None],
        [m for m in rec_masks if m is not None],
        [int(m is not None) for m in in_masks] + [int(m is not None) for m in rec_masks],
        [int(bool(r)) for r in reverse],
        int(form),
        [int(a) for a in acts],
        bool(carry),
        bool(ms_order),
        save,
    )
    return list(results[:D]), list(results[D : 2 * D])
