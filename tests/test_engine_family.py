"""The engine's GRU / simple-RNN torch path (``lstm_bridge.engine.family_torch``) against independent references.

* the float64 NumPy oracle (``tests/oracle.py``: ``keras_gru``, ``keras_simple_rnn``, written from the specs) over an
  option matrix: kind x reset_after x activations (both hard sigmoids) x mask shapes x masked-output rule x reverse,
  with bias and dropout masks (none, G = 1, G = 3) cycled through the cases; float64 <= 1e-12, float32 <= 1e-5;
* ``torch.nn.GRU`` / ``torch.nn.RNN`` (tanh and relu) for the standard cases, loop and fused paths;
* ``torch.autograd.gradcheck`` in float64 on a representative subset (masks, reset_after=False, dropout);
* outputs of real MindSpore 2.10 recorded in ``tests/fixtures/family/ms_*.npz`` with ``numerics="mindspore-cpu"``:
  bit for bit (0 difference) with ``ms_matmul=True``, within 1e-6 with torch's GEMM.

Canonical weights are PyTorch's (gate blocks r, z, n); the Keras oracle gets them permuted to z, r, h.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch

from lstm_bridge import activations as A
from lstm_bridge.engine import lengths_to_valid
from lstm_bridge.engine.family_torch import run_family_direction, run_family_layer
from lstm_bridge.engine.semantics import CellActivations, CellKind, DirectionWeights, DropoutMasks, MaskedOutput

import oracle as R
from helpers import max_abs

FAMILY = Path(__file__).parent / "fixtures" / "family"
T, B, I, H = 6, 4, 3, 5
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}

# (candidate, gate): candidate = GRU n / RNN activation, gate = GRU recurrent_activation (r, z)
ACTIVATIONS = {
    "tanh/sigmoid": (A.tanh, A.sigmoid),
    "tanh/hard_sigmoid_k2": (A.tanh, A.hard_sigmoid_keras2),
    "relu/hard_sigmoid_k3": (A.relu, A.hard_sigmoid_keras3),
    "softsign/linear": (A.softsign, A.linear),
}
MASKS = {  # (B, T), 1 = valid
    "none": None,
    "right": np.array([[1] * 6, [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool),
    "left": np.array([[0, 0, 1, 1, 1, 1], [1] * 6, [0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1]], bool),
    "holes": np.array([[1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 0], [1] * 6], bool),
    "fully_masked_row": np.array([[0] * 6, [1, 1, 0, 1, 1, 1], [1] * 6, [0] * 6], bool),
}
CELLS = ["gru-reset-after", "gru-reset-before", "rnn"]


def _cell(name: str) -> Tuple[str, bool]:
    return ("rnn", True) if name == "rnn" else ("gru", name == "gru-reset-after")


def _weights(
    rng: np.random.Generator, kind: str, inp: int, hid: int, bias: bool, scale: float = 0.6
) -> DirectionWeights:
    """float64 NumPy weights with a different scale per gate block (evenly scaled blocks hide order bugs)."""
    G = 3 if kind == "gru" else 1
    gate_scale = np.repeat(rng.uniform(0.4, 1.3, G), hid)[:, None]
    w_ih = rng.uniform(-scale, scale, (G * hid, inp)) * gate_scale
    w_hh = rng.uniform(-scale, scale, (G * hid, hid)) * gate_scale
    b_ih = rng.uniform(-scale, scale, G * hid) if bias else None
    b_hh = rng.uniform(-scale, scale, G * hid) if bias else None
    return DirectionWeights(w_ih, w_hh, b_ih, b_hh, CellKind.GRU if kind == "gru" else CellKind.RNN)


def _keras_weights(w: DirectionWeights, kind: str, reset_after: bool) -> Tuple[np.ndarray, np.ndarray, Any]:
    """Canonical (r, z, n) -> Keras (z, r, h) kernel (I, G*H), recurrent_kernel (H, G*H), bias."""
    n = w.numpy()
    if kind == "rnn":
        return n.w_ih.T, n.w_hh.T, None if n.b_ih is None else n.b_ih + n.b_hh
    h = w.hidden_size
    perm = np.r_[h : 2 * h, 0:h, 2 * h : 3 * h]
    if n.b_ih is None:
        bias = None
    elif reset_after:
        bias = np.stack([n.b_ih[perm], n.b_hh[perm]])
    else:
        bias = (n.b_ih + n.b_hh)[perm]  # the brief's reset_after=False form: every recurrent bias outside
    return n.w_ih[perm].T, n.w_hh[perm].T, bias


def _dropout(
    rng: np.random.Generator, G: Optional[int], batch: int, inp: int, hid: int
) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    if G is None:
        return None
    keep = lambda shape, rate: rng.binomial(1, 1 - rate, shape) / (1 - rate)  # noqa: E731
    return keep((G, batch, inp), 0.3), keep((G, batch, hid), 0.4)


def _oracle(
    kind: str,
    reset_after: bool,
    x: np.ndarray,
    w: DirectionWeights,
    h0: np.ndarray,
    mask: Optional[np.ndarray],
    reverse: bool,
    zero: bool,
    acts: Tuple[Any, Any],
    drop: Optional[Tuple[np.ndarray, np.ndarray]],
) -> Tuple[np.ndarray, np.ndarray]:
    """The Keras float64 oracle on canonical inputs; returns (outputs (T, B, H) by original time, h_T)."""
    W, U, b = _keras_weights(w, kind, reset_after)
    xb = x.transpose(1, 0, 2)
    common = dict(
        mask=mask,
        initial_state=[h0],
        go_backwards=reverse,
        return_sequences=True,
        return_state=True,
        zero_output_for_mask=zero,
        activation=acts[0],
    )
    if kind == "gru":
        in_m = rec_m = None
        if drop is not None:
            order = [1, 0, 2] if drop[0].shape[0] == 3 else [0]
            in_m, rec_m = drop[0][order], drop[1][order]
        ys, h = R.keras_gru(
            xb,
            W,
            U,
            b,
            reset_after=reset_after,
            recurrent_activation=acts[1],
            input_masks=in_m,
            recurrent_masks=rec_m,
            **common,
        )
    else:
        ys, h = R.keras_simple_rnn(
            xb,
            W,
            U,
            b,
            input_mask=None if drop is None else drop[0],
            recurrent_mask=None if drop is None else drop[1],
            **common,
        )
    ys = ys.transpose(1, 0, 2)
    return (ys[::-1] if reverse else ys), h


MATRIX = [
    case
    for case in itertools.product(CELLS, ACTIVATIONS, MASKS, ["carry", "zero"], [False, True])
    if case[2] != "none" or case[3] == "carry"
]  # without a mask the rule does not apply


@pytest.mark.parametrize("cell, acts, mask_kind, rule, reverse", MATRIX)
def test_family_matches_oracle(cell, acts, mask_kind, rule, reverse):
    index = MATRIX.index((cell, acts, mask_kind, rule, reverse))
    kind, reset_after = _cell(cell)
    zero = rule == "zero"
    bias = index % 3 != 2  # bias and dropout cycled independently of each other and of the main axes
    G = [None, 1, 3][(index // 3) % 3] if kind == "gru" else [None, 1][(index // 3) % 2]
    rng = np.random.default_rng(1000 + index)
    w = _weights(rng, kind, I, H, bias)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((B, H))
    mask = MASKS[mask_kind]
    drop = _dropout(rng, G, B, I, H)
    act = CellActivations(gate=ACTIVATIONS[acts][1], candidate=ACTIVATIONS[acts][0])
    for dtype in (torch.float64, torch.float32):
        if dtype == torch.float32:  # compare float32 with the oracle on the float32-rounded inputs
            w = w.torch(torch.float32).numpy().torch(torch.float64).numpy()
            x, h0 = x.astype(np.float32).astype(np.float64), h0.astype(np.float32).astype(np.float64)
            if drop is not None:
                drop = tuple(d.astype(np.float32).astype(np.float64) for d in drop)
        want_y, want_h = _oracle(kind, reset_after, x, w, h0, mask, reverse, zero, ACTIVATIONS[acts], drop)
        masks = (
            None
            if drop is None
            else [DropoutMasks(torch.tensor(drop[0], dtype=dtype), torch.tensor(drop[1], dtype=dtype))]
        )
        outs, hs = run_family_layer(
            torch.tensor(x, dtype=dtype),
            [w.torch(dtype)],
            [torch.tensor(h0, dtype=dtype)],
            kind=kind,
            reverse=[reverse],
            valid=None if mask is None else torch.tensor(mask.T),
            activations=act,
            masked_output=MaskedOutput.ZERO if zero else MaskedOutput.CARRY,
            reset_after=reset_after,
            dropout=masks,
        )
        assert outs[0].dtype == dtype and tuple(outs[0].shape) == (T, B, H)
        # relative to the magnitude: a linear gate lets a GRU's state grow without bound (1e19 here)
        scale = max(1.0, float(np.abs(want_y).max()), float(np.abs(want_h).max()))
        err = max(max_abs(outs[0], want_y), max_abs(hs[0], want_h)) / scale
        assert err <= TOL[dtype], f"{dtype}: max |engine - oracle| / {scale:.3g} = {err:.3g} > {TOL[dtype]}"
        if mask_kind == "fully_masked_row":  # a row never valid keeps h0 and emits zeros
            assert torch.equal(hs[0][0], torch.tensor(h0[0], dtype=dtype))
            assert not outs[0][:, 0].any()


def test_reset_after_forms_differ_and_recurrent_dropout_skips_the_mix():
    """Non-hollow guards: the two GRU forms are different functions on the same weights, and a recurrent mask
    changes the result (it enters the products) while the oracle's undropped z ⊙ h mix is what we match."""
    rng = np.random.default_rng(5)
    w = _weights(rng, "gru", I, H, True).torch()
    x, h0 = torch.tensor(rng.standard_normal((T, B, I))), torch.tensor(rng.standard_normal((B, H)))
    after, _ = run_family_direction(x, w, h0, kind="gru", reverse=False, reset_after=True)
    before, _ = run_family_direction(x, w, h0, kind="gru", reverse=False, reset_after=False)
    assert max_abs(after, before) > 1e-3
    m = torch.tensor(rng.binomial(1, 0.5, (3, B, H)) * 2.0)
    dropped, _ = run_family_direction(x, w, h0, kind="gru", reverse=False, dropout=DropoutMasks(recurrent=m))
    assert max_abs(after, dropped) > 1e-3


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mask_kind", ["right", "holes", "fully_masked_row"])
def test_two_directions_match_keras_bidirectional(cell, mask_kind):
    """One two-direction layer (reverse [False, True], masked steps emit 0) = the oracle's Keras
    ``Bidirectional(..., return_sequences=True)`` with merge_mode concat, and its two final states."""
    kind, reset_after = _cell(cell)
    rng = np.random.default_rng(len(cell) + len(mask_kind))
    ws = [_weights(rng, kind, I, H, True) for _ in range(2)]
    x = rng.standard_normal((T, B, I))
    h0 = [rng.standard_normal((B, H)) for _ in range(2)]
    mask = MASKS[mask_kind]
    halves = [list(_keras_weights(w, kind, reset_after)) for w in ws]
    extra = dict(reset_after=reset_after, recurrent_activation=A.hard_sigmoid_keras2) if kind == "gru" else {}
    y, h_f, h_b = R.keras_bidirectional_family(
        "gru" if kind == "gru" else "simple_rnn",
        x.transpose(1, 0, 2),
        halves[0],
        halves[1],
        return_sequences=True,
        return_state=True,
        mask=mask,
        initial_state=h0,
        activation=A.softsign,
        **extra,
    )
    act = CellActivations(gate=A.hard_sigmoid_keras2, candidate=A.softsign)
    outs, hs = run_family_layer(
        torch.tensor(x),
        [w.torch() for w in ws],
        [torch.tensor(h) for h in h0],
        kind=kind,
        reverse=[False, True],
        valid=torch.tensor(mask.T),
        activations=act,
        masked_output=MaskedOutput.ZERO,
        reset_after=reset_after,
    )
    assert max_abs(torch.cat(outs, -1).transpose(0, 1), y) <= 1e-12
    assert max_abs(hs[0], h_f) <= 1e-12 and max_abs(hs[1], h_b) <= 1e-12


# ---------------------------------------------------------------------------------------------
# torch.nn.GRU / torch.nn.RNN
# ---------------------------------------------------------------------------------------------


def _torch_module(kind: str, nonlinearity: str, w: List[DirectionWeights], bias: bool, dtype) -> torch.nn.Module:
    inp, hid = w[0].input_size, w[0].hidden_size
    if kind == "gru":
        m = torch.nn.GRU(inp, hid, bias=bias, bidirectional=len(w) == 2)
    else:
        m = torch.nn.RNN(inp, hid, nonlinearity=nonlinearity, bias=bias, bidirectional=len(w) == 2)
    m = m.to(dtype)
    with torch.no_grad():
        for d, wd in enumerate(w):
            s = "_l0" + ("_reverse" if d else "")
            getattr(m, "weight_ih" + s).copy_(wd.w_ih)
            getattr(m, "weight_hh" + s).copy_(wd.w_hh)
            if bias:
                getattr(m, "bias_ih" + s).copy_(wd.b_ih)
                getattr(m, "bias_hh" + s).copy_(wd.b_hh)
    return m


@pytest.mark.parametrize("kind, nonlinearity", [("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_family_matches_torch_modules(kind, nonlinearity, bidirectional, bias, dtype):
    rng = np.random.default_rng(7 + bidirectional + 2 * bias)
    D = 2 if bidirectional else 1
    ws = [_weights(rng, kind, I, H, bias).torch(dtype) for _ in range(D)]
    x = torch.tensor(rng.standard_normal((T, B, I)), dtype=dtype)
    h0 = torch.tensor(rng.standard_normal((D, B, H)), dtype=dtype)
    y, h = _torch_module(kind, nonlinearity, ws, bias, dtype)(x, h0)
    act = CellActivations(candidate=A.relu if nonlinearity == "relu" else A.tanh)
    rev = [False, True][:D]
    tol = TOL[dtype]
    fused, fused_h = run_family_layer(x, ws, list(h0), kind=kind, reverse=rev, activations=act)
    assert max_abs(torch.cat(fused, -1), y) <= tol and max_abs(torch.stack(fused_h), h) <= tol
    # the Python loop (what masks, dropout and other activations take), forward and gradients
    leaves = [x.clone().requires_grad_(True), h0.clone().requires_grad_(True)]
    wl = [
        DirectionWeights(
            *(None if a is None else a.clone().requires_grad_(True) for a in (wd.w_ih, wd.w_hh, wd.b_ih, wd.b_hh)),
            kind=wd.kind,
        )
        for wd in ws
    ]
    loop = [
        run_family_direction(leaves[0], wl[d], leaves[1][d], kind=kind, reverse=rev[d], activations=act)
        for d in range(D)
    ]
    for d, (out, hn) in enumerate(loop):
        assert max_abs(out, y[..., d * H : (d + 1) * H]) <= tol
        assert max_abs(hn, h[d]) <= tol
    xm, hm = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    module = _torch_module(kind, nonlinearity, ws, bias, dtype)
    ym, hnm = module(xm, hm)
    probe = torch.tensor(np.random.default_rng(0).standard_normal(tuple(ym.shape)), dtype=dtype)
    ((ym * probe).sum() + hnm.sum()).backward()
    ((torch.cat([o for o, _ in loop], -1) * probe).sum() + sum(hn.sum() for _, hn in loop)).backward()
    gtol = 1e-12 if dtype == torch.float64 else 1e-4
    assert max_abs(leaves[0].grad, xm.grad) <= gtol and max_abs(leaves[1].grad, hm.grad) <= gtol
    for d, wd in enumerate(wl):
        s = "_l0" + ("_reverse" if d else "")
        assert max_abs(wd.w_hh.grad, getattr(module, "weight_hh" + s).grad) <= gtol
        assert max_abs(wd.w_ih.grad, getattr(module, "weight_ih" + s).grad) <= gtol
        if bias:
            assert max_abs(wd.b_hh.grad, getattr(module, "bias_hh" + s).grad) <= gtol


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------

GRAD_CASES = {
    # name: (kind, reset_after, (candidate, gate), mask kind, reverse, masked rule, dropout G)
    "gru_after_standard_fused": ("gru", True, (A.tanh, A.sigmoid), "none", False, "carry", None),
    "gru_after_holes_drop3_rev": ("gru", True, (A.tanh, A.sigmoid), "holes", True, "carry", 3),
    "gru_before_right_zero_drop1": ("gru", False, (A.tanh, A.sigmoid), "right", False, "zero", 1),
    "gru_before_left_drop3_softsign": ("gru", False, (A.softsign, A.sigmoid), "left", True, "carry", 3),
    "rnn_tanh_fully_masked_zero_drop1": ("rnn", True, (A.tanh, A.sigmoid), "fully_masked_row", True, "zero", 1),
    "rnn_softsign_holes": ("rnn", True, (A.softsign, A.sigmoid), "holes", False, "carry", None),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_family_gradcheck(name):
    kind, reset_after, acts, mask_kind, reverse, rule, G = GRAD_CASES[name]
    Tg, Bg, Ig, Hg = 4, 4, 3, 3
    rng = np.random.default_rng(len(name))
    w = _weights(rng, kind, Ig, Hg, True).torch()
    x = torch.tensor(rng.standard_normal((Tg, Bg, Ig)))
    h0 = torch.tensor(rng.standard_normal((Bg, Hg)))
    mask = MASKS[mask_kind]
    valid = None if mask is None else torch.tensor(mask[:, :Tg].T)
    drop = _dropout(rng, G, Bg, Ig, Hg)
    masks = None if drop is None else [DropoutMasks(torch.tensor(drop[0]), torch.tensor(drop[1]))]
    act = CellActivations(gate=acts[1], candidate=acts[0])
    rule_ = MaskedOutput.ZERO if rule == "zero" else MaskedOutput.CARRY
    leaves = [t.clone().requires_grad_(True) for t in (x, h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh)]

    def fn(x_, h_, wi, wh, bi, bh):
        dw = DirectionWeights(wi, wh, bi, bh, w.kind)
        outs, hs = run_family_layer(
            x_,
            [dw],
            [h_],
            kind=kind,
            reverse=[reverse],
            valid=valid,
            activations=act,
            masked_output=rule_,
            reset_after=reset_after,
            dropout=masks,
        )
        return outs[0], hs[0]

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_family_errors_name_expected_and_received():
    rng = np.random.default_rng(3)
    w = _weights(rng, "gru", I, H, True).torch()
    x, h0 = torch.zeros(T, B, I, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64)
    with pytest.raises(ValueError, match="kind must be 'gru' or 'rnn'; received 'lstm'"):
        run_family_layer(x, [w], [h0], kind="lstm", reverse=[False])
    with pytest.raises(ValueError, match="expected RNN weights; received GRU"):
        run_family_layer(x, [w], [h0], kind="rnn", reverse=[False])
    with pytest.raises(ValueError, match="h0 must have shape"):
        run_family_layer(x, [w], [h0[:2]], kind="gru", reverse=[False])
    with pytest.raises(ValueError, match=r"recurrent masks must have shape \(1, 4, 5\) or \(3, 4, 5\); received"):
        run_family_layer(
            x,
            [w],
            [h0],
            kind="gru",
            reverse=[False],
            dropout=[DropoutMasks(recurrent=torch.ones(2, B, H, dtype=torch.float64))],
        )
    with pytest.raises(ValueError, match="reset_after=True only; received reset_after=False"):
        run_family_layer(x, [w], [h0], kind="gru", reverse=[False], reset_after=False, numerics="mindspore-cpu")
    with pytest.raises(TypeError, match="x's dtype torch.float32"):
        run_family_layer(x.float(), [w], [h0.float()], kind="gru", reverse=[False])
    with pytest.raises(TypeError, match="h0 must have x's dtype torch.float64; received torch.float32"):
        run_family_layer(x, [w], [h0.float()], kind="gru", reverse=[False])
    out, hn = run_family_layer(x[:0], [w], [h0], kind="gru", reverse=[False])  # T = 0: no step, h0 back
    assert tuple(out[0].shape) == (0, B, H) and torch.equal(hn[0], h0)
    valid = torch.ones(T, 0, dtype=torch.bool)
    out, hn = run_family_layer(x[:, :0], [w], [h0[:0]], kind="gru", reverse=[True], valid=valid)  # B = 0
    assert tuple(out[0].shape) == (T, 0, H) and tuple(hn[0].shape) == (0, H)


# ---------------------------------------------------------------------------------------------
# recorded MindSpore 2.10 CPU cases (tools/probe_family.py --record), numerics="mindspore-cpu"
# ---------------------------------------------------------------------------------------------


def _load(path: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("config")))


def _ms_run(
    arrays: Dict[str, np.ndarray], config: Dict[str, Any], numerics: str, ms_matmul: bool = True
) -> List[torch.Tensor]:
    """The recorded net rebuilt from run_family_layer calls (layer by layer, direction 1 reverse)."""
    f32 = torch.float32
    cls = config["cls"]
    kind = "gru" if cls.startswith("GRU") else "rnn"
    nonlin = config["kw"].get("nonlinearity", "tanh")
    ms = numerics == "mindspore-cpu"
    act = CellActivations(
        gate=A.ms_cpu_sigmoid if ms else A.sigmoid,
        candidate=A.relu if nonlin == "relu" else (A.ms_cpu_tanh if ms else A.tanh),
    )
    p = {k[len("param:") :]: torch.tensor(v, dtype=f32) for k, v in arrays.items() if k.startswith("param:")}
    ck = CellKind.GRU if kind == "gru" else CellKind.RNN
    x = torch.tensor(arrays["x"], dtype=f32)
    if cls.endswith("Cell"):  # unrolled cell: the 5 recorded states are a 5-step layer's outputs
        w = DirectionWeights(p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), ck)
        outs, _ = run_family_layer(
            x,
            [w],
            [torch.tensor(arrays["hx"], dtype=f32)],
            kind=kind,
            reverse=[False],
            activations=act,
            numerics=numerics,
            ms_matmul=ms_matmul,
        )
        return [outs[0]]
    if config["kw"].get("batch_first"):
        x = x.transpose(0, 1)
    L = config["kw"].get("num_layers", 1)
    D = 2 if config["kw"].get("bidirectional") else 1
    Tm, Bm = x.shape[:2]
    hx = torch.tensor(arrays["hx"], dtype=f32) if "hx" in arrays else torch.zeros(L * D, Bm, config["hidden_size"])
    valid = lengths_to_valid(torch.tensor(arrays["seq_length"]), Tm) if "seq_length" in arrays else None
    h_n = []
    for layer in range(L):
        ws = []
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d else "")
            ws.append(
                DirectionWeights(p["weight_ih" + s], p["weight_hh" + s], p.get("bias_ih" + s), p.get("bias_hh" + s), ck)
            )
        outs, hs = run_family_layer(
            x,
            ws,
            [hx[layer * D + d] for d in range(D)],
            kind=kind,
            reverse=[False, True][:D],
            valid=valid,
            activations=act,
            masked_output=MaskedOutput.ZERO,
            numerics=numerics,
            ms_matmul=ms_matmul,
        )
        x = torch.cat(outs, -1)
        h_n.extend(hs)
    if config["kw"].get("batch_first"):
        x = x.transpose(0, 1)
    return [x, torch.stack(h_n)]


MS_FIXTURES = sorted(FAMILY.glob("ms_*.npz"))


def test_mindspore_fixtures_present():
    assert len(MS_FIXTURES) == 7


@pytest.mark.parametrize("path", MS_FIXTURES, ids=lambda p: p.stem)
def test_mindspore_fixture_emulated_numerics(path):
    """Bit for bit (0 difference) with MindSpore 2.10's CPU outputs with ms_matmul (its op order, approximate
    Sigmoid/Tanh and MatMul summation order); within 1e-6 with torch's GEMM (measured <= 4.5e-7); exact math is
    measurably off (except ReLU nets, exact in MindSpore too)."""
    arrays, config = _load(path)
    got = _ms_run(arrays, config, "mindspore-cpu")
    fast = _ms_run(arrays, config, "mindspore-cpu", ms_matmul=False)
    exact = _ms_run(arrays, config, "exact")
    for i, g in enumerate(got):
        want = arrays[f"out:{i}"]
        assert g.dtype == torch.float32
        err = max_abs(g, want)
        assert err == 0.0, f"{path.stem} out:{i}: max |engine - MindSpore| {err:.3g}, expected 0"
        assert max_abs(fast[i], want) <= 1e-6, f"{path.stem} out:{i}: torch GEMM"
        if config["kw"].get("nonlinearity") != "relu":
            assert max_abs(exact[i], want) > 1e-6, f"{path.stem} out:{i}: exact math as close"


def test_mindspore_emulation_needs_its_matmul_order():
    """With reductions of 20 and 16 torch's own GEMM leaves last-bit differences; the summation order closes them."""
    arrays, config = _load(FAMILY / "ms_gru_wide_bi_seq.npz")
    err = max_abs(_ms_run(arrays, config, "mindspore-cpu", ms_matmul=False)[0], arrays["out:0"])
    assert 0.0 < err <= 1e-6


@pytest.mark.parametrize("K", [1, 5, 8, 9, 16, 17, 40, 100])
def test_ms_cpu_matmul_nt_equals_the_oracle_bit_for_bit(K):
    from lstm_bridge.engine.family_torch import ms_cpu_matmul_nt

    rng = np.random.default_rng(K)
    a = (rng.standard_normal((3, K)) * 2).astype(np.float32)
    w = rng.standard_normal((7, K)).astype(np.float32)
    got = ms_cpu_matmul_nt(torch.tensor(a), torch.tensor(w))
    assert got.dtype == torch.float32
    assert np.array_equal(got.numpy(), R.ms_cpu_matmul_nt(a, w))


def test_mindspore_numerics_backward_runs():
    """The emulation is plain torch ops: gradients flow (float32, MindSpore's activations' own backward)."""
    arrays, config = _load(FAMILY / "ms_gru_plain_scale3.npz")
    p = {k[len("param:") :]: torch.tensor(v, requires_grad=True) for k, v in arrays.items() if k.startswith("param:")}
    w = DirectionWeights(p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"], CellKind.GRU)
    x = torch.tensor(arrays["x"], requires_grad=True)
    outs, hs = run_family_layer(
        x,
        [w],
        [torch.zeros(3, 4)],
        kind="gru",
        reverse=[False],
        numerics="mindspore-cpu",
        activations=CellActivations(gate=A.ms_cpu_sigmoid, candidate=A.ms_cpu_tanh),
    )
    (outs[0].sum() + hs[0].sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and p["weight_hh_l0"].grad.abs().sum() > 0
