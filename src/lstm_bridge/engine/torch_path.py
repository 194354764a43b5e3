"""The portable pure-PyTorch path: one layer direction at a time, the time loop in Python.

This is the fallback under :func:`lstm_bridge.engine.run_layer` and the path for arbitrary Python
activations. Autograd runs through it, in float32 and float64. When the semantics are exactly the
standard LSTM (sigmoid/tanh, no mask, no dropout masks) the layer is handed to ``torch.lstm``
(oneDNN on CPU) instead of looping.

Reduced precision (:mod:`.precision`: a bfloat16/float16 input, or float32 under CPU autocast to one):
the loop runs with autocast off and explicit casts, its GEMMs on 16-bit operands with float32 results,
the gates and the cell/hidden state in float32, and the outputs returned in the 16-bit dtype; the
standard LSTM in bfloat16 goes to ``torch.lstm`` in bfloat16 (what ``torch.nn.LSTM`` runs under autocast).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from .precision import reduced_dtype
from .semantics import DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

Tensor = torch.Tensor


def _gemm(a: Tensor, b: Tensor, gemm: torch.dtype) -> Tensor:
    """``a @ b`` (2-D, or batched 3-D) on operands rounded to ``gemm``, returned in float32."""
    return torch.matmul(a.to(gemm), b.to(gemm)).float()


def _bias_sum(w: DirectionWeights) -> Optional[Tensor]:
    bias: Optional[Tensor] = w.b_hh
    if w.b_ih is not None:
        bias = w.b_ih if w.b_hh is None else w.b_ih + w.b_hh
    return bias


def _input_projection_reduced(x: Tensor, w: DirectionWeights, masks: Optional[Tensor], gemm: torch.dtype) -> Tensor:
    """:func:`_input_projection` with 16-bit GEMM operands: float32 ``(T, B, 4H)``, bias added in float32."""
    T, B, I = x.shape
    H = w.hidden_size
    w_ih = w.w_ih.to(gemm)
    if masks is None:
        out = _gemm(x.reshape(T * B, I), w_ih.t(), gemm).view(T, B, 4 * H)
    elif masks.shape[0] == 1:
        out = _gemm((x * masks[0]).reshape(T * B, I), w_ih.t(), gemm).view(T, B, 4 * H)
    else:
        xm = (x.unsqueeze(0) * masks.unsqueeze(1)).reshape(4, T * B, I)
        out = _gemm(xm, w_ih.view(4, H, I).transpose(1, 2), gemm).permute(1, 0, 2).reshape(T, B, 4 * H)
    bias = _bias_sum(w)
    return out if bias is None else out + bias.float()


def _recurrent_projection_reduced(h: Tensor, w_hh: Tensor, masks: Optional[Tensor], gemm: torch.dtype) -> Tensor:
    """:func:`_recurrent_projection` with 16-bit GEMM operands (``w_hh`` already in ``gemm``); float32."""
    if masks is None:
        return _gemm(h, w_hh.t(), gemm)
    if masks.shape[0] == 1:
        return _gemm(h * masks[0], w_hh.t(), gemm)
    B, H = h.shape
    per_gate = _gemm(h.unsqueeze(0) * masks, w_hh.view(4, H, H).transpose(1, 2), gemm)
    return per_gate.permute(1, 0, 2).reshape(B, 4 * H)


def _input_projection(x: Tensor, w: DirectionWeights, masks: Optional[Tensor]) -> Tensor:
    """All time steps' ``W_ih x_t + b_ih + b_hh`` in one GEMM: ``(T, B, I) -> (T, B, 4H)``."""
    T, B, I = x.shape
    G = w.w_ih.shape[0]  # 4H, explicit so that an empty batch (B = 0) still reshapes
    bias = None
    if w.b_ih is not None:
        bias = w.b_ih if w.b_hh is None else w.b_ih + w.b_hh
    elif w.b_hh is not None:
        bias = w.b_hh
    if masks is None:
        flat = x.reshape(T * B, I)
        out = torch.addmm(bias, flat, w.w_ih.t()) if bias is not None else flat @ w.w_ih.t()
        return out.view(T, B, G)
    if masks.shape[0] == 1:
        xm = (x * masks[0]).reshape(T * B, I)
        out = torch.addmm(bias, xm, w.w_ih.t()) if bias is not None else xm @ w.w_ih.t()
        return out.view(T, B, G)
    # one mask per gate: (4, T*B, I) @ (4, I, H) -> (4, T*B, H) -> (T, B, 4H)
    H = w.hidden_size
    xm = (x.unsqueeze(0) * masks.unsqueeze(1)).reshape(4, T * B, I)
    per_gate = torch.bmm(xm, w.w_ih.view(4, H, I).transpose(1, 2))
    out = per_gate.permute(1, 0, 2).reshape(T, B, 4 * H)
    return out if bias is None else out + bias


def _recurrent_projection(h: Tensor, w_hh: Tensor, masks: Optional[Tensor]) -> Tensor:
    """``W_hh h`` for one step: ``(B, H) -> (B, 4H)``, with optional recurrent dropout masks."""
    if masks is None:
        return h @ w_hh.t()
    if masks.shape[0] == 1:
        return (h * masks[0]) @ w_hh.t()
    B, H = h.shape
    hm = h.unsqueeze(0) * masks  # (4, B, H)
    per_gate = torch.bmm(hm, w_hh.view(4, H, H).transpose(1, 2))  # (4, B, H)
    return per_gate.permute(1, 0, 2).reshape(B, 4 * H)


def run_direction(
    x: Tensor,
    w: DirectionWeights,
    h0: Tensor,
    c0: Tensor,
    *,
    reverse: bool,
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Optional[DropoutMasks],
    gemm: Optional[torch.dtype] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Run one direction over a time-major sequence with the Python loop.

    Args:
        x: ``(T, B, I)``.  h0, c0: ``(B, H)``.
        reverse: process t = T-1 .. 0 instead of 0 .. T-1.
        valid: ``(T, B)`` bool, or None for all steps valid.
        semantics: activations and the masked-output rule.
        dropout: masks reused at every step, or None.
        gemm: None (every operation in ``x``'s dtype), or a 16-bit dtype: the GEMMs take operands rounded
            to it and return float32; everything else, and the results, is float32 (see :mod:`.precision`).

    Returns:
        ``(out, h_T, c_T)``; ``out`` is ``(T, B, H)`` indexed by *original* time (the output after
        consuming ``x[t]`` sits at ``out[t]`` in both directions).
    """
    T = x.shape[0]
    act = semantics.activations
    in_masks = dropout.inputs if dropout is not None else None
    rec_masks = dropout.recurrent if dropout is not None else None
    if gemm is None:
        xp = _input_projection(x, w, in_masks)
        h, c = h0, c0
    else:
        xp = _input_projection_reduced(x, w, in_masks, gemm)
        w_hh_gemm = w.w_hh.to(gemm)  # rounded once, not per step
        h, c = h0.float(), c0.float()
    carry = semantics.masked_output is MaskedOutput.CARRY
    y_prev = torch.zeros_like(h)  # the first "previous output" of the CARRY rule
    zero = torch.zeros((), dtype=h.dtype, device=x.device)
    outputs: List[Tensor] = [zero] * T
    steps = range(T - 1, -1, -1) if reverse else range(T)
    xs = xp.unbind(0)  # one view per step up front: indexing xp[t] per step cost ~25% of a training step
    for t in steps:
        if gemm is None:
            z = xs[t] + _recurrent_projection(h, w.w_hh, rec_masks)
        else:
            z = xs[t] + _recurrent_projection_reduced(h, w_hh_gemm, rec_masks, gemm)
        zi, zf, zg, zo = z.chunk(4, dim=1)
        i = act.gate(zi)
        f = act.gate(zf)
        g = act.candidate(zg)
        o = act.gate(zo)
        c_new = f * c + i * g
        h_new = o * act.cell(c_new)
        if valid is None:
            h, c = h_new, c_new
            outputs[t] = h_new
            continue
        keep = valid[t].unsqueeze(1)
        h = torch.where(keep, h_new, h)
        c = torch.where(keep, c_new, c)
        y = torch.where(keep, h_new, y_prev if carry else zero)
        if carry:
            y_prev = y
        outputs[t] = y
    if T == 0:
        return h.new_zeros((0,) + h0.shape), h, c
    return torch.stack(outputs, 0), h, c


def _torch_lstm_weights(w: DirectionWeights) -> Tuple[List[Tensor], bool]:
    if w.b_ih is None and w.b_hh is None:
        return [w.w_ih, w.w_hh], False
    b_ih = w.b_ih if w.b_ih is not None else torch.zeros_like(w.w_hh[:, 0])
    b_hh = w.b_hh if w.b_hh is not None else torch.zeros_like(b_ih)
    return [w.w_ih, w.w_hh, b_ih, b_hh], True


def _standard_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    reverse: Sequence[bool],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Standard semantics through ``torch.lstm`` (oneDNN): one call for a (forward, reverse) pair."""
    params = [_torch_lstm_weights(w) for w in directions]
    if (
        len(directions) == 2
        and list(reverse) == [False, True]
        and params[0][1] == params[1][1]
        and directions[0].hidden_size == directions[1].hidden_size
    ):
        flat = params[0][0] + params[1][0]
        out, h, c = torch.lstm(
            x, (torch.stack(list(h0)), torch.stack(list(c0))), flat, params[0][1], 1, 0.0, False, True, False
        )
        H = directions[0].hidden_size
        return [out[..., :H], out[..., H:]], [h[0], h[1]], [c[0], c[1]]
    outs, hs, cs = [], [], []
    for (p, has_bias), h_init, c_init, rev in zip(params, h0, c0, reverse):
        xin = x.flip(0) if rev else x
        out, h, c = torch.lstm(
            xin, (h_init.unsqueeze(0), c_init.unsqueeze(0)), p, has_bias, 1, 0.0, False, False, False
        )
        outs.append(out.flip(0) if rev else out)
        hs.append(h[0])
        cs.append(c[0])
    return outs, hs, cs


def _training_kind_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    reverse: Sequence[bool],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """:func:`_standard_layer` in oneDNN's *training* kind, for a call autograd does not record.

    ``torch.lstm`` asks oneDNN for its forward_training primitive whenever grad mode is on, and for
    forward_inference otherwise; the two sum in different orders (results up to ~1e-7 apart in float32)
    and MindSpore's CPU LSTM computes the training kind in inference too (the golden fused cases). So the
    call runs under grad mode on detached inputs: no graph is recorded, the results need no grad. It costs
    what the training kind costs (~2x forward_inference's time at B*H = 8192, ~1.5x at 32768)."""
    detached = [
        DirectionWeights(
            w.w_ih.detach(),
            w.w_hh.detach(),
            None if w.b_ih is None else w.b_ih.detach(),
            None if w.b_hh is None else w.b_hh.detach(),
            kind=w.kind,
        )
        for w in directions
    ]
    with torch.enable_grad():
        return _standard_layer(x.detach(), detached, [h.detach() for h in h0], [c.detach() for c in c0], reverse)


def run_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Torch-path implementation of :func:`lstm_bridge.engine.run_layer`."""
    no_dropout = all(d is None or d.is_empty() for d in dropout)
    gemm = reduced_dtype(x)
    if gemm is not None:
        with torch.autocast(x.device.type, enabled=False):
            return _run_layer_reduced(x, directions, h0, c0, reverse, valid, semantics, dropout, gemm, no_dropout)
    if (
        valid is None
        and no_dropout
        and semantics.activations.is_standard
        and x.shape[0] > 0
        and x.dtype in (torch.float32, torch.float64)
    ):
        if semantics.onednn_bits and x.dtype == torch.float32 and not torch.is_grad_enabled():
            return _training_kind_layer(x, directions, h0, c0, reverse)
        return _standard_layer(x, directions, h0, c0, reverse)
    outs, hs, cs = [], [], []
    for w, h_init, c_init, rev, drop in zip(directions, h0, c0, reverse, dropout):
        out, h, c = run_direction(x, w, h_init, c_init, reverse=rev, valid=valid, semantics=semantics, dropout=drop)
        outs.append(out)
        hs.append(h)
        cs.append(c)
    return outs, hs, cs


def _run_layer_reduced(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
    gemm: torch.dtype,
    no_dropout: bool,
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """:func:`run_layer` for a reduced call (autocast already off): results in ``gemm``'s dtype."""
    if valid is None and no_dropout and semantics.activations.is_standard and gemm == torch.bfloat16:
        # torch.nn.LSTM's own bfloat16 path (oneDNN), as autocast would run it
        cast = [
            DirectionWeights(
                *[None if t is None else t.to(gemm) for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh)]  # type: ignore[arg-type]
            )
            for w in directions
        ]
        # x cast and made contiguous in one copy (oneDNN would copy a time-major view of a batch-first input again)
        xr = x.to(gemm, memory_format=torch.contiguous_format)
        return _standard_layer(xr, cast, [h.to(gemm) for h in h0], [c.to(gemm) for c in c0], reverse)
    outs, hs, cs = [], [], []
    for w, h_init, c_init, rev, drop in zip(directions, h0, c0, reverse, dropout):
        out, h, c = run_direction(
            x, w, h_init, c_init, reverse=rev, valid=valid, semantics=semantics, dropout=drop, gemm=gemm
        )
        outs.append(out.to(gemm))
        hs.append(h.to(gemm))
        cs.append(c.to(gemm))
    return outs, hs, cs
