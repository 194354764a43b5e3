"""The native GRU / simple-RNN kernel (``engine/native/family.cpp`` + ``family.py``) against the torch path,
the float64 oracle and finite differences.

* engine :func:`run_layer` under ``LSTM_BRIDGE_BACKEND=native`` (every native run asserts
  ``backend.last_used == "native"``) against the same call under ``LSTM_BRIDGE_BACKEND=torch``
  (``engine/family_torch.py``): outputs, final states and every gradient (x, h0, w_ih, w_hh, b_ih, b_hh), over
  cell (GRU reset_after True/False, RNN) x masks (none, right padding, holes, a fully masked row) x masked-output
  rule x directions (forward, reverse, bidirectional) x dtype, with the activations (both hard sigmoids,
  softsign, relu, linear), dropout masks (G = 1, G = 3, input only, recurrent only), bias forms and odd sizes
  (H not a multiple of 16, B = 1, T = 1, a layer large enough to run on several threads) cycled through;
* the float64 oracle (``tests/oracle.py``, Keras layouts) for the forward;
* ``torch.autograd.gradcheck`` in float64 through the native path;
* MindSpore's op order with its emulated CPU activations within 1e-6 of the torch path's emulation;
* routing: ``torch`` never runs the kernel, ``auto`` runs it for supported requests and keeps MindSpore's
  MatMul order and activations without a native id on the torch path, ``native`` refuses those;
* everything backward reads goes through ``save_for_backward`` (saved-tensor hooks see it).
"""

from __future__ import annotations

import itertools
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch

from lstm_bridge import activations as A
from lstm_bridge.engine import backend, native, run_layer
from lstm_bridge.engine.native import family as native_family
from lstm_bridge.engine.semantics import (
    CellActivations,
    CellKind,
    DirectionWeights,
    DropoutMasks,
    LayerSemantics,
    MaskedOutput,
)

import oracle as R
from helpers import require_native_kernel

TOL = {torch.float32: dict(rtol=2e-5, atol=2e-5), torch.float64: dict(rtol=1e-11, atol=1e-11)}
GRAD_TOL = {torch.float32: dict(rtol=1e-4, atol=5e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}

CELLS = {"gru-after": (CellKind.GRU, True), "gru-before": (CellKind.GRU, False), "rnn": (CellKind.RNN, True)}
ACTS = [  # (gate, candidate)
    (A.sigmoid, A.tanh),
    (A.hard_sigmoid_keras2, A.tanh),
    (A.hard_sigmoid_keras3, A.softsign),
    (A.sigmoid, A.relu),
    (A.hard_sigmoid_keras2, A.linear),
]
SIZES = [(5, 3, 4, 7), (1, 1, 3, 17), (6, 1, 5, 33), (4, 9, 2, 1), (20, 8, 16, 40)]  # (T, B, I, H)
DROPS = [None, (1, 1), (3, 3), (0, 3), (3, 0), (1, 0)]  # (G input, G recurrent), 0 = absent


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    """Build (or load) the kernel once; a failed build with a toolchain present is a test failure."""
    require_native_kernel()


@contextmanager
def backend_env(value: str) -> Iterator[None]:
    saved = os.environ.get("LSTM_BRIDGE_BACKEND")
    os.environ["LSTM_BRIDGE_BACKEND"] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("LSTM_BRIDGE_BACKEND", None)
        else:
            os.environ["LSTM_BRIDGE_BACKEND"] = saved


# --- case generation -------------------------------------------------------------------------------


def make_valid(kind: str, T: int, B: int, gen: torch.Generator) -> Optional[torch.Tensor]:
    if kind == "none":
        return None
    t = torch.arange(T).unsqueeze(1)
    if kind == "right":
        lengths = torch.randint(0, T + 1, (B,), generator=gen)
        lengths[0] = T
        return t < lengths
    valid = torch.rand(T, B, generator=gen) > 0.35
    if kind == "full_row" and B > 1:
        valid[:, 1] = False
    return valid


def make_weights(
    kind: CellKind, I: int, H: int, dtype: torch.dtype, bias: str, gen: torch.Generator
) -> DirectionWeights:
    """Weights with a different scale per gate block (evenly scaled blocks hide block-order bugs)."""
    G = kind.gate_count
    scale = torch.rand(G, generator=gen).repeat_interleave(H).unsqueeze(1) * 0.6 + 0.3

    def rnd(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)

    # recurrent weights ~ 1/sqrt(H): a linear candidate stays bounded over the longest case
    w_ih, w_hh = rnd(G * H, I) * scale.to(dtype), rnd(G * H, H) * (scale * 1.5 / H**0.5).to(dtype)
    b_ih = rnd(G * H) if bias in ("both", "ih") else None
    b_hh = rnd(G * H) if bias in ("both", "hh") else None
    return DirectionWeights(w_ih, w_hh, b_ih, b_hh, kind=kind)


def make_dropout(
    drop: Optional[Tuple[int, int]], kind: CellKind, B: int, I: int, H: int, dtype: torch.dtype, gen: torch.Generator
) -> Optional[DropoutMasks]:
    if drop is None:
        return None
    gi, gr = drop
    if kind is CellKind.RNN:
        gi, gr = min(gi, 1), min(gr, 1)

    def mask(G: int, width: int) -> Optional[torch.Tensor]:
        if G == 0:
            return None
        return ((torch.rand(G, B, width, generator=gen) > 0.3).to(torch.float64) / 0.7).to(dtype)

    return DropoutMasks(mask(gi, I), mask(gr, H))


class Case:
    """One engine call: inputs as leaves, so both paths differentiate the same tensors."""

    def __init__(
        self,
        cell: str,
        mask: str,
        rule: MaskedOutput,
        dirs: str,
        dtype: torch.dtype,
        index: int,
        acts: Optional[Tuple[Any, Any]] = None,
        size: Optional[Tuple[int, int, int, int]] = None,
        drop: Any = "cycle",
        bias: Optional[str] = None,
        ms: bool = False,
    ) -> None:
        gen = torch.Generator().manual_seed(1000 + index)
        self.kind, reset_after = CELLS[cell]
        T, B, I, H = size or SIZES[index % len(SIZES)]
        gate, cand = acts or ACTS[index % len(ACTS)]
        bias = bias or ["both", "ih", "hh", "none"][index % 4]
        drop = DROPS[index % len(DROPS)] if drop == "cycle" else drop
        self.reverse = {"fwd": [False], "rev": [True], "bi": [False, True]}[dirs]
        D = len(self.reverse)
        self.directions = [make_weights(self.kind, I, H + d, dtype, bias, gen) for d in range(D)]  # unequal H
        self.x = (torch.randn(T, B, I, generator=gen, dtype=torch.float64)).to(dtype)
        self.h0 = [torch.randn(B, H + d, generator=gen, dtype=torch.float64).to(dtype) * 0.5 for d in range(D)]
        self.valid = make_valid(mask, T, B, gen)
        self.dropout = [make_dropout(drop, self.kind, B, I, H + d, dtype, gen) for d in range(D)]
        self.semantics = LayerSemantics(
            activations=CellActivations(gate=gate, candidate=cand),
            masked_output=rule,
            reset_after=reset_after,
            mindspore_cpu=ms,
        )
        self.dtype = dtype

    def leaves(self) -> List[torch.Tensor]:
        out = [self.x, *self.h0]
        for w in self.directions:
            out += [t for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh) if t is not None]
        return out

    def run(self, backend_name: str, grad: bool = True) -> Tuple[List[torch.Tensor], List[Optional[torch.Tensor]]]:
        """Outputs (outs + h_n) and the gradients of a fixed random projection of them w.r.t. every leaf."""
        leaves = [t.detach().clone().requires_grad_(grad) for t in self.leaves()]
        it = iter(leaves)
        x = next(it)
        h0 = [next(it) for _ in self.h0]
        dirs = []
        for w in self.directions:
            w_ih, w_hh = next(it), next(it)
            b_ih = next(it) if w.b_ih is not None else None
            b_hh = next(it) if w.b_hh is not None else None
            dirs.append(DirectionWeights(w_ih, w_hh, b_ih, b_hh, kind=w.kind))
        with backend_env(backend_name):
            outs, hn, cn = run_layer(
                x,
                dirs,
                h0,
                None,
                reverse=self.reverse,
                valid=self.valid,
                semantics=self.semantics,
                dropout=self.dropout,
            )
            assert backend.last_used == ("native" if backend_name == "native" else "torch")
        assert cn == []
        results = [*outs, *hn]
        if not grad:
            return [r.detach() for r in results], []
        gen = torch.Generator().manual_seed(7)
        loss = sum((r * torch.randn(r.shape, generator=gen, dtype=torch.float64).to(r.dtype)).sum() for r in results)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        return [r.detach() for r in results], list(grads)


def assert_close(
    native_: Sequence[Optional[torch.Tensor]],
    torch_: Sequence[Optional[torch.Tensor]],
    tol: Dict[str, float],
    what: str,
) -> None:
    assert len(native_) == len(torch_)
    for i, (a, b) in enumerate(zip(native_, torch_)):
        if b is None:
            assert a is None or not a.abs().max().item(), f"{what}[{i}]: native has a gradient the torch path has not"
            continue
        assert a is not None, f"{what}[{i}]: native gave no gradient"
        torch.testing.assert_close(a, b, **tol, msg=lambda m, i=i: f"{what}[{i}]: {m}")  # type: ignore[misc]


# --- native == torch path, forward and gradients ------------------------------------------------------

MATRIX = [
    c
    for c in itertools.product(
        CELLS,
        ["none", "right", "holes", "full_row"],
        [MaskedOutput.CARRY, MaskedOutput.ZERO],
        ["fwd", "rev", "bi"],
        [torch.float64, torch.float32],
    )  # fmt: skip
    if c[1] != "none" or c[2] is MaskedOutput.CARRY
]


@pytest.mark.parametrize("cell, mask, rule, dirs, dtype", MATRIX, ids=lambda v: getattr(v, "value", str(v)))
def test_native_matches_torch_path(cell, mask, rule, dirs, dtype):
    case = Case(cell, mask, rule, dirs, dtype, MATRIX.index((cell, mask, rule, dirs, dtype)))
    out_n, grad_n = case.run("native")
    out_t, grad_t = case.run("torch")
    assert_close(out_n, out_t, TOL[dtype], "outputs")
    assert_close(grad_n, grad_t, GRAD_TOL[dtype], "gradients")


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("drop", [None, (1, 0), (3, 0)])
def test_wide_inputs_weight_gradients(cell, drop):
    """64+ input features: dW_ih from the kernel's gate_weight_grad (G = 3 or 1 gate blocks per direction,
    shared or per-gate input masks formed while packing), both directions of unequal widths (float64)."""
    if CELLS[cell][0] is CellKind.RNN and drop == (3, 0):
        pytest.skip("the RNN has one gate: G = 1 only")
    case = Case(
        cell,
        "holes",
        MaskedOutput.CARRY,
        "bi",
        torch.float64,
        5,
        acts=(A.sigmoid, A.tanh),
        drop=drop,
        size=(4, 3, 70, 5),
    )
    out_n, grad_n = case.run("native")
    out_t, grad_t = case.run("torch")
    assert_close(out_n, out_t, TOL[torch.float64], "outputs")
    assert_close(grad_n, grad_t, GRAD_TOL[torch.float64], "gradients")


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("drop", [(1, 1), (3, 3), (0, 3), (3, 0)])
def test_dropout_masks_every_form(cell, drop):
    """Per-gate and shared dropout masks, with a mask and both directions (float64)."""
    if CELLS[cell][0] is CellKind.RNN and 3 in drop:
        pytest.skip("the RNN has one gate: G = 1 only")
    case = Case(cell, "holes", MaskedOutput.CARRY, "bi", torch.float64, 3, acts=(A.sigmoid, A.tanh), drop=drop)
    out_n, grad_n = case.run("native")
    out_t, grad_t = case.run("torch")
    assert_close(out_n, out_t, TOL[torch.float64], "outputs")
    assert_close(grad_n, grad_t, GRAD_TOL[torch.float64], "gradients")


@pytest.mark.parametrize("cell", list(CELLS))
def test_inference_without_autograd(cell):
    """No leaf requires grad: the kernel runs without saving anything and gives the same numbers."""
    case = Case(cell, "right", MaskedOutput.ZERO, "bi", torch.float32, 5)
    out_n, _ = case.run("native", grad=False)
    out_t, _ = case.run("torch", grad=False)
    assert_close(out_n, out_t, TOL[torch.float32], "outputs")


# --- the float64 oracle -----------------------------------------------------------------------------


def _keras_weights(w: DirectionWeights, reset_after: bool) -> Tuple[np.ndarray, np.ndarray, Any]:
    """Canonical (r, z, n) -> Keras (z, r, h) kernel, recurrent_kernel, bias (the oracle's layouts)."""
    n = w.numpy()
    b_ih = None if n.b_ih is None else n.b_ih
    b_hh = None if n.b_hh is None else n.b_hh
    if w.kind is CellKind.RNN:
        bias = None if b_ih is None else b_ih + b_hh
        return n.w_ih.T, n.w_hh.T, bias
    h = w.hidden_size
    perm = np.r_[h : 2 * h, 0:h, 2 * h : 3 * h]
    if b_ih is None:
        bias = None
    elif reset_after:
        bias = np.stack([b_ih[perm], b_hh[perm]])
    else:
        bias = (b_ih + b_hh)[perm]
    return n.w_ih[perm].T, n.w_hh[perm].T, bias


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize(
    "mask, rule", [("none", MaskedOutput.CARRY), ("holes", MaskedOutput.CARRY), ("right", MaskedOutput.ZERO)]
)
@pytest.mark.parametrize("acts", [0, 1, 2], ids=["sigmoid-tanh", "hard_sigmoid_k2-tanh", "hard_sigmoid_k3-softsign"])
def test_native_matches_oracle(cell, mask, rule, acts):
    kind, reset_after = CELLS[cell]
    index = list(CELLS).index(cell) * 7 + acts
    drop = (3, 3) if kind is CellKind.GRU else (1, 1)
    case = Case(
        cell, mask, rule, "bi", torch.float64, index, acts=ACTS[acts], size=(6, 4, 3, 5), drop=drop, bias="both"
    )
    outs, _ = case.run("native", grad=False)
    D = len(case.reverse)
    for d in range(D):
        w = case.directions[d]
        W, U, b = _keras_weights(w, reset_after)
        drop_d = case.dropout[d]
        assert drop_d is not None and drop_d.inputs is not None and drop_d.recurrent is not None
        order = [1, 0, 2] if drop_d.inputs.shape[0] == 3 else [0]
        common: Dict[str, Any] = dict(
            mask=None if case.valid is None else case.valid.numpy().T,
            initial_state=[case.h0[d].numpy()],
            go_backwards=case.reverse[d],
            return_sequences=True,
            return_state=True,
            zero_output_for_mask=rule is MaskedOutput.ZERO,
            activation=ACTS[acts][1],
        )
        xb = case.x.numpy().transpose(1, 0, 2)
        if kind is CellKind.GRU:
            ys, h = R.keras_gru(
                xb, W, U, b, reset_after=reset_after, recurrent_activation=ACTS[acts][0],
                input_masks=drop_d.inputs.numpy()[order], recurrent_masks=drop_d.recurrent.numpy()[order], **common,
            )  # fmt: skip
        else:
            ys, h = R.keras_simple_rnn(
                xb, W, U, b, input_mask=drop_d.inputs.numpy(), recurrent_mask=drop_d.recurrent.numpy(), **common
            )  # fmt: skip
        ys = ys.transpose(1, 0, 2)
        if case.reverse[d]:
            ys = ys[::-1]
        np.testing.assert_allclose(outs[d].numpy(), ys, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(outs[D + d].numpy(), h, rtol=1e-12, atol=1e-12)


# --- gradcheck --------------------------------------------------------------------------------------

GRAD_CASES = {
    "gru_after_holes_carry_drop3_bi": ("gru-after", "holes", MaskedOutput.CARRY, "bi", (3, 3), (A.sigmoid, A.tanh)),
    "gru_after_right_zero_rev": ("gru-after", "right", MaskedOutput.ZERO, "rev", None, (A.sigmoid, A.tanh)),
    "gru_before_full_row_carry_drop1": (
        "gru-before",
        "full_row",
        MaskedOutput.CARRY,
        "bi",
        (1, 1),
        (A.sigmoid, A.softsign),
    ),
    "gru_before_drop3_rec_only": ("gru-before", "none", MaskedOutput.CARRY, "fwd", (0, 3), (A.sigmoid, A.tanh)),
    "rnn_tanh_holes_zero_drop1_bi": ("rnn", "holes", MaskedOutput.ZERO, "bi", (1, 1), (A.sigmoid, A.tanh)),
    "rnn_softsign_right_carry": ("rnn", "right", MaskedOutput.CARRY, "rev", None, (A.sigmoid, A.softsign)),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_native_gradcheck(name):
    cell, mask, rule, dirs, drop, acts = GRAD_CASES[name]
    case = Case(cell, mask, rule, dirs, torch.float64, len(name), acts=acts, size=(4, 3, 3, 3), drop=drop, bias="both")
    leaves = [t.detach().clone().requires_grad_(True) for t in case.leaves()]
    D = len(case.reverse)

    def fn(*args: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        it = iter(args)
        x = next(it)
        h0 = [next(it) for _ in range(D)]
        dirs_ = [DirectionWeights(next(it), next(it), next(it), next(it), kind=case.kind) for _ in range(D)]
        with backend_env("native"):
            outs, hn, _ = run_layer(
                x, dirs_, h0, None, reverse=case.reverse, valid=case.valid, semantics=case.semantics,
                dropout=case.dropout,
            )  # fmt: skip
            assert backend.last_used == "native"
        return (*outs, *hn)

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


# --- MindSpore's op order, emulated activations ------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru-after", "rnn"])
@pytest.mark.parametrize("bias", ["both", "ih", "hh", "none"])
def test_mindspore_numerics_within_1e6_of_torch_path(cell, bias):
    case = Case(
        cell, "right", MaskedOutput.ZERO, "bi", torch.float32, 2, acts=(A.ms_cpu_sigmoid, A.ms_cpu_tanh),
        size=(12, 5, 8, 24), drop=None, bias=bias, ms=True,
    )  # fmt: skip
    out_n, grad_n = case.run("native")
    out_t, grad_t = case.run("torch")
    assert_close(out_n, out_t, dict(rtol=0, atol=1e-6), "outputs")
    assert_close(grad_n, grad_t, GRAD_TOL[torch.float32], "gradients")


def test_mindspore_matmul_order_stays_on_the_torch_path():
    case = Case("gru-after", "none", MaskedOutput.ZERO, "fwd", torch.float32, 1, drop=None, ms=True)
    semantics = LayerSemantics(
        activations=CellActivations(gate=A.ms_cpu_sigmoid, candidate=A.ms_cpu_tanh),
        masked_output=MaskedOutput.ZERO,
        mindspore_cpu=True,
        mindspore_matmul=True,
    )
    case.semantics = semantics
    case.run("auto")  # asserts last_used == "torch"
    with pytest.raises(NotImplementedError, match="mindspore-cpu-bits"):
        case.run("native")


# --- routing -----------------------------------------------------------------------------------------


def test_backend_choice_for_the_family():
    case = Case("gru-after", "none", MaskedOutput.CARRY, "fwd", torch.float32, 0, acts=(A.sigmoid, A.tanh), drop=None)
    with backend_env("auto"):
        chosen = backend.select_family(
            case.x, case.directions, kind=case.kind, valid=None, semantics=case.semantics, dropout=[None]
        )
    assert chosen is native_family.run_family_layer
    case.run("torch")  # asserts last_used == "torch": the torch setting never runs the kernel
    elu = Case("rnn", "none", MaskedOutput.CARRY, "fwd", torch.float32, 0, acts=(A.sigmoid, A.get("elu")), drop=None)
    elu.run("auto")  # no native id: the torch path, in auto
    with pytest.raises(NotImplementedError, match="has no native implementation"):
        elu.run("native")


# --- what backward reads is saved through save_for_backward -----------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
def test_saved_tensor_hooks_see_everything_backward_reads(cell):
    """Packing every saved tensor into a copy and poisoning the originals after forward must not change
    the gradients: backward reads nothing that bypassed ``save_for_backward``."""
    case = Case(cell, "holes", MaskedOutput.CARRY, "bi", torch.float64, 4, drop=(1, 1))
    _, expected = case.run("native")
    packed: List[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(t)
        return t.clone()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        leaves = [t.detach().clone().requires_grad_(True) for t in case.leaves()]
        it = iter(leaves)
        x = next(it)
        h0 = [next(it) for _ in case.h0]
        dirs = [DirectionWeights(next(it), next(it), next(it), next(it), kind=case.kind) for _ in case.directions]
        with backend_env("native"):
            outs, hn, _ = run_layer(
                x, dirs, h0, None, reverse=case.reverse, valid=case.valid, semantics=case.semantics,
                dropout=case.dropout,
            )  # fmt: skip
    for t in packed:  # the kernel's own buffers (gates, h_prev, aux) and the masks
        if not t.requires_grad and t.dtype.is_floating_point and t.data_ptr() not in {p.data_ptr() for p in leaves}:
            t.fill_(float("nan"))
    gen = torch.Generator().manual_seed(7)
    results = [*outs, *hn]
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=torch.float64)).sum() for r in results)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    assert len(packed) >= 5
    assert_close(list(grads), expected, GRAD_TOL[torch.float64], "gradients")


# --- the kernel's own argument checks -----------------------------------------------------------------


def test_kernel_refuses_inconsistent_arguments():
    ext = native.module()
    assert ext is not None
    cfg = ext.FamilyConfig()
    cfg.form = native_family.FORM_GRU_AFTER
    cfg.offsets = [0]
    cfg.reverse = [False]
    xp = torch.zeros(3, 2, 12)
    empty = torch.empty(0)
    with pytest.raises(RuntimeError, match=r"w_hh\[0\] must be a CPU \(3H, H\) tensor"):
        ext.family_forward(
            cfg,
            xp,
            [torch.zeros(8, 4)],
            [torch.zeros(2, 4)],
            torch.empty(0, dtype=torch.uint8),
            [empty],
            [empty],
            [empty],
        )
    with pytest.raises(RuntimeError, match=r"rec_mask\[0\] must be contiguous \(M in \{1, 3\}, 2, 4\)"):
        ext.family_forward(
            cfg,
            xp,
            [torch.zeros(12, 4)],
            [torch.zeros(2, 4)],
            torch.empty(0, dtype=torch.uint8),
            [torch.ones(2, 2, 4)],
            [empty],
            [empty],
        )
    cfg.form = native_family.FORM_GRU_BEFORE
    with pytest.raises(RuntimeError, match="reset_after=False GRU takes its whole bias in bias_x"):
        ext.family_forward(
            cfg,
            xp,
            [torch.zeros(12, 4)],
            [torch.zeros(2, 4)],
            torch.empty(0, dtype=torch.uint8),
            [empty],
            [empty],
            [torch.zeros(12)],
        )
    cfg.form = 7
    with pytest.raises(RuntimeError, match="family form must be 0"):
        ext.family_forward(
            cfg,
            xp,
            [torch.zeros(12, 4)],
            [torch.zeros(2, 4)],
            torch.empty(0, dtype=torch.uint8),
            [empty],
            [empty],
            [empty],
        )


# --- recorded MindSpore 2.10 CPU outputs (tests/fixtures/family/ms_*.npz) ----------------------------

MS_FIXTURES = sorted((Path(__file__).parent / "fixtures" / "family").glob("ms_*.npz"))


def _ms_native(arrays: Dict[str, np.ndarray], config: Dict[str, Any]) -> List[torch.Tensor]:
    """The recorded net rebuilt from native engine calls (numerics="mindspore-cpu": emulated CPU
    activations, MindSpore's op order, the kernel's own GEMM)."""
    f32 = torch.float32
    cls = config["cls"]
    kind = CellKind.GRU if cls.startswith("GRU") else CellKind.RNN
    relu = config["kw"].get("nonlinearity", "tanh") == "relu"
    semantics = LayerSemantics(
        activations=CellActivations(gate=A.ms_cpu_sigmoid, candidate=A.relu if relu else A.ms_cpu_tanh),
        masked_output=MaskedOutput.ZERO,
        mindspore_cpu=True,
    )
    p = {k[len("param:") :]: torch.tensor(v, dtype=f32) for k, v in arrays.items() if k.startswith("param:")}
    x = torch.tensor(arrays["x"], dtype=f32)

    def layer(x_: torch.Tensor, ws: List[DirectionWeights], h0: List[torch.Tensor], valid: Any) -> Any:
        with backend_env("native"):
            outs, hs, _ = run_layer(
                x_, ws, h0, None, reverse=[False, True][: len(ws)], valid=valid, semantics=semantics
            )  # fmt: skip
            assert backend.last_used == "native"
        return outs, hs

    if cls.endswith("Cell"):  # unrolled cell: the recorded states are a layer's outputs
        w = DirectionWeights(p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), kind)
        outs, _ = layer(x, [w], [torch.tensor(arrays["hx"], dtype=f32)], None)
        return [outs[0]]
    if config["kw"].get("batch_first"):
        x = x.transpose(0, 1)
    L = config["kw"].get("num_layers", 1)
    D = 2 if config["kw"].get("bidirectional") else 1
    Tm, Bm = x.shape[:2]
    hx = torch.tensor(arrays["hx"], dtype=f32) if "hx" in arrays else torch.zeros(L * D, Bm, config["hidden_size"])
    valid = None
    if "seq_length" in arrays:
        valid = torch.arange(Tm).unsqueeze(1) < torch.tensor(arrays["seq_length"]).unsqueeze(0)
    h_n = []
    for index in range(L):
        ws = []
        for d in range(D):
            s = f"_l{index}" + ("_reverse" if d else "")
            ws.append(
                DirectionWeights(
                    p["weight_ih" + s], p["weight_hh" + s], p.get("bias_ih" + s), p.get("bias_hh" + s), kind
                )
            )
        outs, hs = layer(x, ws, [hx[index * D + d] for d in range(D)], valid)
        x = torch.cat(outs, -1)
        h_n.extend(hs)
    if config["kw"].get("batch_first"):
        x = x.transpose(0, 1)
    return [x, torch.stack(h_n)]


@pytest.mark.parametrize("path", MS_FIXTURES, ids=lambda p: p.stem)
def test_mindspore_recorded_outputs_within_1e6(path):
    """The default numerics="mindspore-cpu" on the native kernel: within 1e-6 of real MindSpore 2.10's CPU
    outputs (its MatMul summation order is the torch path's opt-in "mindspore-cpu-bits")."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays.pop("config")))
    got = _ms_native(arrays, config)
    for i, g in enumerate(got):
        err = float((g.double() - torch.tensor(arrays[f"out:{i}"]).double()).abs().max())
        assert err <= 1e-6, f"{path.stem} out:{i}: max |native - MindSpore| = {err:.3g}"


def test_mindspore_fixtures_present():
    assert len(MS_FIXTURES) == 7


@pytest.mark.parametrize("cell", list(CELLS))
def test_transposed_weight_views(cell):
    """Keras hands ``kernel.T`` / ``recurrent_kernel.T`` views (any strides) to the engine: the kernel packs
    them as they are; results equal those of contiguous copies on the torch path (per-gate masks included)."""
    case = Case(cell, "holes", MaskedOutput.CARRY, "bi", torch.float64, 6, drop=(3, 3) if cell != "rnn" else (1, 1))
    _, grad_t = case.run("torch")
    out_t, _ = case.run("torch", grad=False)
    case.directions = [
        DirectionWeights(w.w_ih.t().contiguous().t(), w.w_hh.t().contiguous().t(), w.b_ih, w.b_hh, kind=w.kind)
        for w in case.directions
    ]
    assert not case.directions[0].w_ih.is_contiguous() and not case.directions[0].w_hh.is_contiguous()
    out_n, _ = case.run("native", grad=False)
    assert_close(out_n, out_t, TOL[torch.float64], "outputs")
    leaves = [t.detach().clone().requires_grad_(True) for t in case.leaves()]
    it = iter(leaves)
    x = next(it)
    h0 = [next(it) for _ in case.h0]
    dirs = []
    for w in case.directions:  # the leaves as transposed views, as a Keras layer's parameters are
        w_ih, w_hh = next(it), next(it)
        b_ih = next(it) if w.b_ih is not None else None
        b_hh = next(it) if w.b_hh is not None else None
        dirs.append(DirectionWeights(w_ih.t().contiguous().t(), w_hh.t().contiguous().t(), b_ih, b_hh, kind=w.kind))
    with backend_env("native"):
        outs, hn, _ = run_layer(
            x, dirs, h0, None, reverse=case.reverse, valid=case.valid, semantics=case.semantics, dropout=case.dropout
        )  # fmt: skip
        assert backend.last_used == "native"
    gen = torch.Generator().manual_seed(7)
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=torch.float64)).sum() for r in [*outs, *hn])
    assert_close(
        list(torch.autograd.grad(loss, leaves, allow_unused=True)), grad_t, GRAD_TOL[torch.float64], "gradients"
    )


def test_autocast_calls_take_the_torch_path():
    """Under a bfloat16 CPU autocast the torch path's products follow autocast (as torch.nn.GRU's do); the
    float32-only kernel leaves those calls to it in auto and refuses them when forced."""
    case = Case("gru-after", "none", MaskedOutput.CARRY, "fwd", torch.float32, 0, acts=(A.sigmoid, A.tanh), drop=None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        case.run("auto", grad=False)  # asserts last_used == "torch"
        with pytest.raises(NotImplementedError, match="autocast"):
            case.run("native", grad=False)
    case.run("native", grad=False)  # autocast off: native again
