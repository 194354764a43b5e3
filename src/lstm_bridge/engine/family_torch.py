"""The portable pure-PyTorch path for the GRU and simple-RNN cell kinds (issue 11, step 1).

The family counterpart of :mod:`.torch_path` (LSTM), with the same conventions as
:func:`lstm_bridge.engine.run_layer`: ``x`` is ``(T, B, I)`` time-major, ``valid`` a ``(T, B)`` bool
step mask shared by every direction, ``reverse`` per direction, and ``outputs[d][t]`` is the output
after consuming ``x[t]`` in both directions (indexed by original time). Masked steps keep h and emit
the previous output in processing order (``MaskedOutput.CARRY``, Keras; 0 before the first valid step)
or exact zeros (``MaskedOutput.ZERO``: Keras ``zero_output_for_mask``, MindSpore ``seq_length``; with
right padding, a reverse direction then reads each row's valid prefix backwards, which is MindSpore's
``ReverseSequence``).

Canonical weights (:class:`DirectionWeights` with ``kind`` GRU or RNN; PyTorch/MindSpore layout):

=======  ==========================================================  =======================================
kind     shapes                                                      one step (column convention)
=======  ==========================================================  =======================================
GRU      ``w_ih (3H, I)``, ``w_hh (3H, H)``, ``b_ih``/``b_hh (3H,)``  gate blocks **r, z, n**, see below
RNN      ``w_ih (H, I)``, ``w_hh (H, H)``, ``b_ih``/``b_hh (H,)``    ``h' = φ(W_ih x + b_ih + W_hh h + b_hh)``
=======  ==========================================================  =======================================

GRU (σ = ``activations.gate``, φ = ``activations.candidate``; a None bias is 0)::

    r = σ(W_ir x + b_ir + W_hr h + b_hr)          z = σ(W_iz x + b_iz + W_hz h + b_hz)
    reset_after=True  (PyTorch, MindSpore, Keras TF2 default):  n = φ(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    reset_after=False (Keras <= 2.3 / TF 1.x, ONNX linear_before_reset=0):
                                                   n = φ(W_in x + b_in + W_hn (r ⊙ h) + b_hn)
    h' = z ⊙ h + (1 − z) ⊙ n

A Keras ``reset_after=False`` bias ``(3u,)`` is ``b_ih`` (permuted to r, z, n) with ``b_hh`` None or 0.

Dropout (:class:`DropoutMasks`, already scaled, reused at every step): ``inputs (G, B, I)`` multiply
x_t, ``recurrent (G, B, H)`` multiply h_{t-1} **inside the matmuls only** (Keras: the ``z ⊙ h`` mix
uses the undropped h; with reset_after=False the candidate's product is ``(r ⊙ (h ⊙ m_n)) W_hn``).
G = 1 (one mask for every gate) or 3 (r, z, n order) for GRU; G = 1 for RNN.

``numerics``:

* ``"exact"``: true math in the dtype of ``x`` (float32 or float64). Exactly-standard layers (GRU with
  sigmoid/tanh and reset_after=True, RNN with tanh or relu; no mask, no dropout) are handed to
  ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu`` (oneDNN on CPU) instead of looping.
* ``"mindspore-cpu"``: MindSpore 2.10's CPU op order (docs/spec/mindspore_gru_rnn.md §2.2): each bias
  added to its own product (``gi = x W_ih^T + b_ih``, ``gh = h W_hh^T + b_hh``), ``n = φ(gi_n + r·gh_n)``,
  ``h' = n + z·(h − n)``, one rounding per op; the activations stay the caller's: pass
  :data:`lstm_bridge.activations.ms_cpu_sigmoid` / :data:`~lstm_bridge.activations.ms_cpu_tanh` to
  emulate MindSpore's CPU kernels. The products are torch's GEMM (within ~1e-6 of MindSpore: at most
  4.5e-7 on the 7 recorded cases); with ``ms_matmul=True`` and float32 with a batch of at least 2 they
  are summed in MindSpore's CPU MatMul order (:func:`ms_cpu_matmul_nt`, §3.3): bit for bit with the
  recorded MindSpore cases, at ~20x the time (an emulation for checks, not a fast path). A batch of 1
  (MindSpore's GEMV, order unknown) and float64 always use torch's GEMM. reset_after=False is refused
  (MindSpore has no such GRU).

Shape of work: one GEMM for the input projection of every step, then per step the ``h W_hh^T`` product:
one GEMM for the RNN, two for the GRU (the r, z blocks with the step's input projection as addend, and
the n block: fewer torch calls than one GEMM and a split; reset_after=False needs ``r`` before the n
product anyway), one per gate with per-gate recurrent dropout masks. Plain torch ops, so autograd runs
through it; the step's inputs are unbound once (not indexed per step, which would give every step a
zero-filled ``(T, B, G*H)`` gradient in the backward pass), and masked-step outputs are formed after the
loop in one op.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from .. import activations as _act
from .semantics import CellActivations, CellKind, DirectionWeights, DropoutMasks, MaskedOutput

Tensor = torch.Tensor

__all__ = ["NUMERICS", "check_layer", "ms_cpu_matmul_nt", "run_family_direction", "run_family_layer"]

#: accepted values of ``numerics``
NUMERICS = ("exact", "mindspore-cpu")
_KINDS = {"gru": CellKind.GRU, "rnn": CellKind.RNN}
_DEFAULT_ACTIVATIONS = CellActivations()


def _kind(kind: Union[str, CellKind]) -> CellKind:
    if isinstance(kind, CellKind):
        if kind is CellKind.LSTM:
            raise ValueError("kind must be 'gru' or 'rnn' (LSTM layers run through engine.run_layer); received LSTM")
        return kind
    if not isinstance(kind, str) or kind.lower() not in _KINDS:
        raise ValueError(f"kind must be 'gru' or 'rnn'; received {kind!r}")
    return _KINDS[kind.lower()]


def _split_bias(w: DirectionWeights) -> Optional[Tuple[Tensor, Tensor]]:
    """``(b_ih, b_hh)`` with a missing half as zeros when the other exists; None without bias."""
    b_ih: Optional[Tensor] = w.b_ih
    b_hh: Optional[Tensor] = w.b_hh
    if b_ih is None:
        return None if b_hh is None else (torch.zeros_like(b_hh), b_hh)
    return b_ih, (torch.zeros_like(b_ih) if b_hh is None else b_hh)


_LANES = 16
_CHUNK = 1 << 22  # float64 products held at once by ms_cpu_matmul_nt


def ms_cpu_matmul_nt(a: Tensor, w: Tensor) -> Tensor:
    """``a @ w.T`` summed in MindSpore 2.10's CPU float32 ``MatMul(transpose_b=True)`` order
    (docs/spec/mindspore_gru_rnn.md §3.3; the torch twin of ``tests/oracle.py::ms_cpu_matmul_nt``).

    a ``(M, K)``, w ``(N, K)`` float32 -> ``(M, N)`` float32, every row independently: K <= 8 one FMA chain
    over k; K >= 9 16 FMA lanes (lane ``k mod 16``) then a halving tree of float32 adds. An FMA is the
    exact float64 product-sum rounded once to float32. MindSpore's one-row (GEMV) kernel has an order not
    found: callers with a batch of 1 use torch's product (last-bit differences there). Differentiable.
    """
    M, K = a.shape
    N = w.shape[0]
    if M == 0 or K == 0:
        return a @ w.t()
    a64, w64 = a.double(), w.double()
    lanes = 1 if K <= 8 else _LANES
    steps = -(-K // lanes)
    pad = steps * lanes - K
    rows = max(1, _CHUNK // max(1, N * K))
    pieces = []
    for lo in range(0, M, rows):
        prod = a64[lo : lo + rows].unsqueeze(1) * w64.unsqueeze(0)  # (m, N, K), exact
        if pad:
            prod = torch.nn.functional.pad(prod, (0, pad))
        prod = prod.view(prod.shape[0], N, steps, lanes)
        acc = prod.new_zeros((prod.shape[0], N, lanes)).float()
        for j in range(steps):
            acc = (prod[:, :, j] + acc.double()).float()
        while acc.shape[-1] > 1:
            half = acc.shape[-1] // 2
            acc = acc[..., :half] + acc[..., half:]
        pieces.append(acc[..., 0])
    return torch.cat(pieces, 0)


def _matmul_nt(a: Tensor, w: Tensor, ms_order: bool) -> Tensor:
    return ms_cpu_matmul_nt(a, w) if ms_order else a @ w.t()


def _project_gates(a: Tensor, w: Tensor, masks: Optional[Tensor], gates: int, ms_order: bool = False) -> Tensor:
    """``(a ⊙ m_g) W_g^T`` for every gate block: a ``(N, K)``, w ``(gates*H, K)``, masks ``(1|gates, N, K)``
    broadcastable, or None -> ``(N, gates*H)``. ``ms_order``: MindSpore's CPU summation order."""
    if masks is None:
        return _matmul_nt(a, w, ms_order)
    if masks.shape[0] == 1:
        return _matmul_nt(a * masks[0], w, ms_order)
    N, K = a.shape
    H = w.shape[0] // gates
    if ms_order:
        return torch.cat([ms_cpu_matmul_nt(a * masks[g], w[g * H : (g + 1) * H]) for g in range(gates)], 1)
    per_gate = torch.bmm(a.unsqueeze(0) * masks, w.view(gates, H, K).transpose(1, 2))  # (gates, N, H)
    return per_gate.permute(1, 0, 2).reshape(N, gates * H)


def _input_projection(x: Tensor, w_ih: Tensor, masks: Optional[Tensor], gates: int, ms_order: bool = False) -> Tensor:
    """All steps' ``(x_t ⊙ m_g) W_ih^T`` in one GEMM (one batched GEMM with per-gate masks): ``(T, B, G*H)``."""
    T, B, I = x.shape
    flat = x.reshape(T * B, I)
    fm = None
    if masks is not None:
        fm = masks.unsqueeze(1).expand(masks.shape[0], T, B, I).reshape(masks.shape[0], T * B, I)
    return _project_gates(flat, w_ih, fm, gates, ms_order).view(T, B, w_ih.shape[0])


def _mask_for(masks: Optional[Tensor], lo: int, hi: int) -> Optional[Tensor]:
    """The masks of gate blocks ``lo:hi`` (a G = 1 mask is shared)."""
    if masks is None or masks.shape[0] == 1:
        return masks
    return masks[lo:hi]


def _check_masks(what: str, m: Optional[Tensor], allowed: Tuple[int, ...], B: int, width: int, d: int) -> None:
    if m is None:
        return
    if m.dim() != 3 or m.shape[0] not in allowed or tuple(m.shape[1:]) != (B, width):
        shapes = " or ".join(f"({g}, {B}, {width})" for g in allowed)
        raise ValueError(f"direction {d} dropout {what} masks must have shape {shapes}; received {tuple(m.shape)}")


def _check_numerics(numerics: str, cell: CellKind, reset_after: bool) -> None:
    if numerics not in NUMERICS:
        raise ValueError(f"numerics must be one of {NUMERICS}; received {numerics!r}")
    if numerics == "mindspore-cpu" and cell is CellKind.GRU and not reset_after:
        raise ValueError(
            "numerics='mindspore-cpu' describes MindSpore's nn.GRU, which computes reset_after=True "
            "only; received reset_after=False"
        )


def _check(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    kind: CellKind,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    if x.dim() != 3:
        raise ValueError(f"x must be (T, B, I); received shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must be float32 or float64; received {x.dtype}")
    T, B, I = x.shape
    n = len(directions)
    if not (len(h0) == len(reverse) == len(dropout) == n):
        raise ValueError(
            f"expected one h0, reverse flag and dropout entry per direction ({n}); received "
            f"{len(h0)}, {len(reverse)} and {len(dropout)}"
        )
    allowed = (1, 3) if kind is CellKind.GRU else (1,)
    for d, (w, h, drop) in enumerate(zip(directions, h0, dropout)):
        if w.kind is not kind:
            raise ValueError(f"direction {d}: expected {kind.value} weights; received {w.kind.value} weights")
        for name, a in (("w_ih", w.w_ih), ("w_hh", w.w_hh), ("b_ih", w.b_ih), ("b_hh", w.b_hh)):
            if a is not None and (not isinstance(a, torch.Tensor) or a.dtype != x.dtype):
                got = a.dtype if isinstance(a, torch.Tensor) else type(a).__name__
                raise TypeError(f"direction {d} {name} must be a torch tensor of x's dtype {x.dtype}; received {got}")
        if w.input_size != I:
            raise ValueError(
                f"direction {d} w_ih expects input size {w.input_size}; received x of shape {tuple(x.shape)}"
            )
        if tuple(h.shape) != (B, w.hidden_size):
            raise ValueError(f"direction {d} h0 must have shape ({B}, {w.hidden_size}); received {tuple(h.shape)}")
        if h.dtype != x.dtype:
            raise TypeError(f"direction {d} h0 must have x's dtype {x.dtype}; received {h.dtype}")
        if drop is not None:
            _check_masks("input", drop.inputs, allowed, B, I, d)
            _check_masks("recurrent", drop.recurrent, allowed, B, w.hidden_size, d)
    if valid is not None and (tuple(valid.shape) != (T, B) or valid.dtype != torch.bool):
        raise ValueError(f"valid must be a ({T}, {B}) bool tensor; received {tuple(valid.shape)} {valid.dtype}")


def check_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    *,
    kind: Union[str, CellKind],
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    dropout: Sequence[Optional[DropoutMasks]],
    numerics: str,
    reset_after: bool,
) -> None:
    """The checks :func:`run_family_layer` starts with (same errors), for a caller that may run the layer
    elsewhere (the engine, before handing it to the native kernel)."""
    cell = _kind(kind)
    _check_numerics(numerics, cell, reset_after)
    _check(x, directions, h0, cell, reverse, valid, dropout)


def _unwrap(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """A built-in :class:`~lstm_bridge.activations.Activation`'s own function (one Python call less per use)."""
    return fn.fn if isinstance(fn, _act.Activation) else fn


Step = Callable[..., Tensor]


def _step_function(
    cell: CellKind,
    xp: Tensor,
    w_hh: Tensor,
    b_step: Optional[Tensor],
    rec_masks: Optional[Tensor],
    reset_after: bool,
    ms: bool,
    ms_order: bool,
    gate: Callable[[Tensor], Tensor],
    cand: Callable[[Tensor], Tensor],
) -> Tuple[Step, Tuple[Tensor, ...]]:
    """The step ``h' = step(*inputs_t, h)`` specialised once for this configuration (no branching in the time
    loop, as few torch calls per step as the form allows), and the ``(T, B, ·)`` parts of ``xp`` it reads."""
    H = w_hh.shape[1]
    w_hh_t = w_hh.t()
    G = w_hh.shape[0] // H

    def recurrent(h: Tensor) -> Tensor:
        """``(h ⊙ m_g) W_hh^T (+ b_step)``."""
        if rec_masks is None and not ms:
            return torch.addmm(b_step, h, w_hh_t) if b_step is not None else h @ w_hh_t
        gh = _project_gates(h, w_hh, rec_masks, G, ms_order)
        return gh + b_step if b_step is not None else gh

    if cell is CellKind.RNN:
        if rec_masks is None and not ms:
            return (lambda x_t, h: cand(torch.addmm(x_t, h, w_hh_t))), (xp,)
        return (lambda x_t, h: cand(x_t + recurrent(h))), (xp,)

    if ms:  # MindSpore's op order (§2.2), one rounding per op

        def ms_step(x_t: Tensor, h: Tensor) -> Tensor:
            gh = recurrent(h)
            r = gate(x_t[:, :H] + gh[:, :H])
            z = gate(x_t[:, H : 2 * H] + gh[:, H : 2 * H])
            n = cand(x_t[:, 2 * H :] + r * gh[:, 2 * H :])
            return n + z * (h - n)

        return ms_step, (xp,)

    parts = (xp[..., : 2 * H], xp[..., 2 * H :])
    if not reset_after:
        w_rz, w_n_t = w_hh[: 2 * H], w_hh[2 * H :].t()
        w_rz_t = w_rz.t()
        m_rz, m_n = _mask_for(rec_masks, 0, 2), _mask_for(rec_masks, 2, 3)

        def before_step(x_rz: Tensor, x_n: Tensor, h: Tensor) -> Tensor:
            if m_rz is None:
                rz = gate(torch.addmm(x_rz, h, w_rz_t))
            else:
                rz = gate(x_rz + _project_gates(h, w_rz, m_rz, 2))
            r, z = rz.chunk(2, 1)
            n = cand(torch.addmm(x_n, r * h if m_n is None else r * (h * m_n[0]), w_n_t))
            return torch.lerp(n, h, z)

        return before_step, parts

    if rec_masks is None:
        # two GEMMs, each with its addend fused: x_rz + h W_rz^T, and b_hn + h W_hn^T (fewer calls than one
        # GEMM + split + add, and measured faster at B = 32, H = 256)
        w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()
        b_hn = b_step[2 * H :] if b_step is not None else None

        def after_step_two(x_rz: Tensor, x_n: Tensor, h: Tensor) -> Tensor:
            r, z = gate(torch.addmm(x_rz, h, w_rz_t)).chunk(2, 1)
            gh_n = torch.addmm(b_hn, h, w_n_t) if b_hn is not None else h @ w_n_t
            return torch.lerp(cand(torch.addcmul(x_n, r, gh_n)), h, z)

        return after_step_two, parts

    def after_step(x_rz: Tensor, x_n: Tensor, h: Tensor) -> Tensor:
        gh_rz, gh_n = torch.split(recurrent(h), [2 * H, H], 1)
        r, z = gate(x_rz + gh_rz).chunk(2, 1)
        return torch.lerp(cand(torch.addcmul(x_n, r, gh_n)), h, z)

    return after_step, parts


def run_family_direction(
    x: Tensor,
    w: DirectionWeights,
    h0: Tensor,
    *,
    kind: Union[str, CellKind],
    reverse: bool,
    valid: Optional[Tensor] = None,
    activations: CellActivations = _DEFAULT_ACTIVATIONS,
    masked_output: MaskedOutput = MaskedOutput.CARRY,
    reset_after: bool = True,
    dropout: Optional[DropoutMasks] = None,
    numerics: str = "exact",
    ms_matmul: bool = False,
) -> Tuple[Tensor, Tensor]:
    """One direction with the Python time loop (never the oneDNN hand-off); arguments as
    :func:`run_family_layer` for one direction. Returns ``(out (T, B, H), h_T (B, H))``."""
    cell = _kind(kind)
    _check_numerics(numerics, cell, reset_after)
    ms = numerics == "mindspore-cpu"
    T = x.shape[0]
    H = w.hidden_size
    G = cell.gate_count
    in_masks = dropout.inputs if dropout is not None else None
    rec_masks = dropout.recurrent if dropout is not None else None
    biases = _split_bias(w)

    # MindSpore's summation order where it is known: float32, a batch of at least 2 rows (§3.3)
    ms_order = ms and ms_matmul and x.dtype == torch.float32 and x.shape[1] >= 2
    xp = _input_projection(x, w.w_ih, in_masks, G, ms_order)
    # Bias placement. exact: every recurrent bias outside a product is folded into the one input GEMM's
    # bias, and the GRU's b_hn (inside r ⊙ (…)) rides on the per-step addmm. mindspore-cpu: each bias on
    # its own product, as MindSpore adds them.
    b_step: Optional[Tensor] = None
    if biases is not None:
        b_ih, b_hh = biases
        if ms:
            xp = xp + b_ih
            b_step = b_hh
        elif cell is CellKind.RNN or not reset_after:
            xp = xp + (b_ih + b_hh)
        else:
            xp = xp + torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
            b_step = torch.cat([torch.zeros_like(b_hh[: 2 * H]), b_hh[2 * H :]])

    step, parts = _step_function(
        cell,
        xp,
        w.w_hh,
        b_step,
        rec_masks,
        reset_after,
        ms,
        ms_order,
        _unwrap(activations.gate),
        _unwrap(activations.candidate),
    )
    if T == 0:
        return x.new_zeros((0,) + tuple(h0.shape)), h0
    # unbind, not xp[t]: one backward node for all steps instead of a zero-filled (T, B, G*H) gradient per step
    inputs = list(zip(*(p.unbind(0) for p in parts)))
    keeps = valid.unsqueeze(2).unbind(0) if valid is not None else None
    h = h0
    states: List[Tensor] = []
    for t in range(T - 1, -1, -1) if reverse else range(T):
        h_new = step(*inputs[t], h)
        h = h_new if keeps is None else torch.where(keeps[t], h_new, h)
        states.append(h)
    out = torch.stack(states[::-1] if reverse else states, 0)
    if valid is None:
        return out, h
    # The masked-step outputs, after the loop in one op each. ZERO: valid steps emit their state, others 0.
    # CARRY: the previous output equals the kept state once a row has seen a valid step (both take h_new on
    # valid steps and stay otherwise); before that it is 0.
    if masked_output is MaskedOutput.CARRY:
        seen = valid.flip(0).cumsum(0).flip(0) if reverse else valid.cumsum(0)
        emit = seen > 0
    else:
        emit = valid
    return torch.where(emit.unsqueeze(2), out, torch.zeros((), dtype=out.dtype, device=out.device)), h


_Fused = Callable[..., Tuple[Tensor, Tensor]]


def _standard_call(cell: CellKind, candidate: Callable[[Tensor], Tensor]) -> Optional[_Fused]:
    """The fused torch function computing this kind with these activations exactly, or None."""
    if cell is CellKind.GRU:
        return torch.gru
    if _act.is_exact_tanh(candidate):
        return torch.rnn_tanh
    if candidate is _act.relu or candidate is torch.relu:
        return torch.rnn_relu
    return None


def _fused_params(w: DirectionWeights) -> Tuple[List[Tensor], bool]:
    biases = _split_bias(w)
    if biases is None:
        return [w.w_ih, w.w_hh], False
    return [w.w_ih, w.w_hh, biases[0], biases[1]], True


def _standard_layer(
    fn: _Fused, x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], reverse: Sequence[bool]
) -> Tuple[List[Tensor], List[Tensor]]:
    """Standard semantics through ``torch.gru`` / ``torch.rnn_*`` (oneDNN): one call for a (forward, reverse)
    pair of the same hidden size and bias presence."""
    params = [_fused_params(w) for w in directions]
    if (
        len(directions) == 2
        and list(reverse) == [False, True]
        and params[0][1] == params[1][1]
        and directions[0].hidden_size == directions[1].hidden_size
    ):
        out, h = fn(x, torch.stack(list(h0)), params[0][0] + params[1][0], params[0][1], 1, 0.0, False, True, False)
        H = directions[0].hidden_size
        return [out[..., :H], out[..., H:]], [h[0], h[1]]
    outs, hs = [], []
    for (p, has_bias), h_init, rev in zip(params, h0, reverse):
        out, h = fn(x.flip(0) if rev else x, h_init.unsqueeze(0), p, has_bias, 1, 0.0, False, False, False)
        outs.append(out.flip(0) if rev else out)
        hs.append(h[0])
    return outs, hs


def run_family_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    *,
    kind: Union[str, CellKind],
    reverse: Sequence[bool],
    valid: Optional[Tensor] = None,
    activations: CellActivations = _DEFAULT_ACTIVATIONS,
    masked_output: MaskedOutput = MaskedOutput.CARRY,
    reset_after: bool = True,
    dropout: Optional[Sequence[Optional[DropoutMasks]]] = None,
    numerics: str = "exact",
    ms_matmul: bool = False,
) -> Tuple[List[Tensor], List[Tensor]]:
    """Run one GRU or simple-RNN layer; each direction reads the same input ``x`` (see the module docstring).

    Args:
        x: ``(T, B, I)`` time-major, float32 or float64 (weights and h0 of the same dtype).
        directions: canonical weights per direction, ``kind`` GRU or RNN as ``kind`` says.
        h0: per direction ``(B, H_d)``.
        kind: ``"gru"`` or ``"rnn"`` (or the :class:`CellKind`).
        reverse: per direction, whether time runs from T-1 down to 0.
        valid: ``(T, B)`` bool step mask, or None.
        activations: ``gate`` = the GRU's r and z activation (Keras ``recurrent_activation``);
            ``candidate`` = the GRU's n activation / the RNN's activation; ``cell`` is unused.
        masked_output: what a masked step emits (CARRY or ZERO).
        reset_after: the GRU form (ignored for RNN).
        dropout: per direction :class:`DropoutMasks` (G = 1 or 3 for GRU, 1 for RNN), or None.
        numerics: ``"exact"`` or ``"mindspore-cpu"`` (MindSpore's op order; see the module docstring).
        ms_matmul: with ``"mindspore-cpu"``, also sum every product in MindSpore's CPU MatMul order
            (:func:`ms_cpu_matmul_nt`): bit for bit with MindSpore for float32 and B >= 2, but about 20x the
            time of the torch-GEMM emulation (T=100, B=32, I=128, H=256, 2 threads on a loaded machine:
            10 s against 0.5 s; torch.nn.GRU 0.016-0.1 s). Off: torch's GEMM, within ~1e-6 of MindSpore.

    Returns:
        ``(outputs, h_n)``, lists over directions: ``outputs[d]`` ``(T, B, H_d)`` indexed by original
        time, ``h_n[d]`` ``(B, H_d)`` (the state after the last valid step; h0 for a fully masked row).

    Raises:
        ValueError: an unknown kind or numerics, weights of another kind, shapes that do not fit (the
            message names the expected and received shapes), reset_after=False with "mindspore-cpu".
        TypeError: a dtype other than float32/float64, or weights not in x's dtype.
    """
    cell = _kind(kind)
    _check_numerics(numerics, cell, reset_after)
    if dropout is None:
        dropout = [None] * len(directions)
    _check(x, directions, h0, cell, reverse, valid, dropout)
    no_dropout = all(d is None or d.is_empty() for d in dropout)
    if (
        numerics == "exact"
        and valid is None
        and no_dropout
        and x.shape[0] > 0
        and x.shape[1] > 0
        and (
            cell is CellKind.RNN
            or (reset_after and _act.is_exact_sigmoid(activations.gate) and _act.is_exact_tanh(activations.candidate))
        )
    ):
        fn = _standard_call(cell, activations.candidate)
        if fn is not None:
            return _standard_layer(fn, x, directions, h0, reverse)
    outs, hs = [], []
    for w, h_init, rev, drop in zip(directions, h0, reverse, dropout):
        out, h = run_family_direction(
            x,
            w,
            h_init,
            kind=cell,
            reverse=rev,
            valid=valid,
            activations=activations,
            masked_output=masked_output,
            reset_after=reset_after,
            dropout=None if drop is None or drop.is_empty() else drop,
            numerics=numerics,
            ms_matmul=ms_matmul,
        )
        outs.append(out)
        hs.append(h)
    return outs, hs
