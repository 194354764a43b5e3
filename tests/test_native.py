"""The fused native CPU kernel: it runs, it equals the torch path (forward and gradients), gradcheck.

The baseline is :func:`lstm_bridge.engine.run_layer` under ``LSTM_BRIDGE_BACKEND=torch``; the
candidate is the same call under ``LSTM_BRIDGE_BACKEND=native`` (which raises rather than falling
back), and every native run asserts ``backend.last_used == "native"``.

If the kernel cannot be built while ninja and a C++ compiler are present, every test here fails
with the build error (never a silent skip).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import List, Optional, Sequence

import numpy as np
import pytest
import torch

from lstm_bridge import activations as A
from lstm_bridge.engine import backend, native, run_layer
from lstm_bridge.engine.native import build
from lstm_bridge.engine.semantics import CellActivations, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

from helpers import require_native_kernel

NATIVE_ACTS = [
    A.sigmoid,
    A.tanh,
    A.hard_sigmoid_keras2,
    A.hard_sigmoid_keras3,
    A.relu,
    A.linear,
    A.softsign,
    A.ms_cpu_sigmoid,
    A.ms_cpu_tanh,
]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}
GRAD_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    """Build (or load) the kernel once; a failed build with a toolchain present is a test failure."""
    require_native_kernel()


# --- case generation -------------------------------------------------------------------------------


def make_valid(kind: str, T: int, B: int, gen: torch.Generator) -> Optional[torch.Tensor]:
    """(T, B) step masks: right/left padding, random holes, one fully masked row, or None."""
    if kind == "none":
        return None
    t = torch.arange(T).unsqueeze(1)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    lengths[0] = T
    if kind == "right":
        return t < lengths
    if kind == "left":
        return t >= (T - lengths)
    if kind == "holes":
        valid = torch.rand(T, B, generator=gen) > 0.35
        valid[:, 0] = True
        return valid
    if kind == "full_row":  # batch row 1 never runs; others have holes
        valid = torch.rand(T, B, generator=gen) > 0.3
        valid[:, 1] = False
        return valid
    raise ValueError(kind)


def make_case(
    T: int,
    B: int,
    I: int,
    H: Sequence[int],
    dtype: torch.dtype,
    seed: int,
    *,
    dropout_g: int,
    valid_kind: str,
    with_h0: bool = True,
    bias: bool = True,
):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.4):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype).requires_grad_()

    x = rnd(T, B, I, scale=1.0)
    dirs = []
    for h in H:  # uneven random weights: constant ones would hide gate-order bugs
        dirs.append(
            DirectionWeights(rnd(4 * h, I), rnd(4 * h, h), rnd(4 * h) if bias else None, rnd(4 * h) if bias else None)
        )
    if with_h0:
        h0 = [rnd(B, h) for h in H]
        c0 = [rnd(B, h) for h in H]
    else:
        h0 = [torch.zeros(B, h, dtype=dtype) for h in H]
        c0 = [torch.zeros(B, h, dtype=dtype) for h in H]
    dropout: List[Optional[DropoutMasks]] = []
    for h in H:
        if dropout_g == 0:
            dropout.append(None)
            continue

        def mask(width):
            keep = (torch.rand(dropout_g, B, width, generator=gen) > 0.3).to(torch.float64)
            return (keep / 0.7).to(dtype)

        dropout.append(DropoutMasks(inputs=mask(I), recurrent=mask(h)))
    valid = make_valid(valid_kind, T, B, gen)
    return x, dirs, h0, c0, valid, dropout


def leaves(x, dirs, h0, c0) -> List[torch.Tensor]:
    out = [x]
    for w in dirs:
        out += [t for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh) if t is not None]
    return out + [t for t in h0 + c0 if t.requires_grad]


def run_and_grad(monkeypatch, which: str, x, dirs, h0, c0, reverse, valid, sem, dropout):
    """Forward through the public engine entry under LSTM_BRIDGE_BACKEND=which, then gradients of a
    random-weighted sum of every output (sequence outputs, h_n and c_n)."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", which)
    outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    assert backend.last_used == which
    results = list(outs) + list(hs) + list(cs)
    gen = torch.Generator().manual_seed(123)
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=torch.float64).to(r.dtype)).sum() for r in results)
    grads = torch.autograd.grad(loss, leaves(x, dirs, h0, c0))
    return [r.detach() for r in results], grads


def assert_matches(monkeypatch, case, reverse, sem, dtype):
    x, dirs, h0, c0, valid, dropout = case
    ref, ref_grads = run_and_grad(monkeypatch, "torch", x, dirs, h0, c0, reverse, valid, sem, dropout)
    got, got_grads = run_and_grad(monkeypatch, "native", x, dirs, h0, c0, reverse, valid, sem, dropout)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **TOL[dtype])
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b, **GRAD_TOL[dtype])


DIRECTIONS = {"fwd": ([False], [4]), "rev": ([True], [4]), "bidir": ([False, True], [4, 3])}
MASKS = ["none", "right", "left", "holes", "full_row"]
RULES = [MaskedOutput.CARRY, MaskedOutput.ZERO]
DROPOUT_G = [0, 1, 4]
DTYPES = [torch.float32, torch.float64]
# Activation triples (gate, candidate, cell) cycled through the matrix so that every built-in appears
# in every role; none is the exact standard triple with "none"/no dropout (that goes to oneDNN).
N_ACTS = len(NATIVE_ACTS)
TRIPLES = [(NATIVE_ACTS[i], NATIVE_ACTS[(i + 3) % N_ACTS], NATIVE_ACTS[(i + 5) % N_ACTS]) for i in range(N_ACTS)]

MATRIX = [
    pytest.param(
        d,
        m,
        r,
        g,
        dt,
        TRIPLES[n % N_ACTS],
        n % 2 == 0,
        n,
        id=f"{d}-{m}-{r.value}-G{g}-{str(dt)[6:]}-{TRIPLES[n % N_ACTS][0].name}-h0{int(n % 2 == 0)}",
    )
    for n, (d, m, r, g, dt) in enumerate(itertools.product(DIRECTIONS, MASKS, RULES, DROPOUT_G, DTYPES))
]


@pytest.mark.parametrize("direction, mask, rule, dropout_g, dtype, acts, with_h0, seed", MATRIX)
def test_matches_torch_path(monkeypatch, direction, mask, rule, dropout_g, dtype, acts, with_h0, seed):
    reverse, hidden = DIRECTIONS[direction]
    case = make_case(6, 5, 3, hidden, dtype, seed=seed, dropout_g=dropout_g, valid_kind=mask, with_h0=with_h0)
    sem = LayerSemantics(CellActivations(*acts), rule)
    assert_matches(monkeypatch, case, reverse, sem, dtype)


@pytest.mark.parametrize("dropout_g", DROPOUT_G)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_wide_input_weight_gradients_match_torch_path(monkeypatch, dropout_g, dtype):
    """Inputs of 64+ features: dW_ih comes from the kernel's gate_weight_grad (one call per direction, its
    column block; input masks formed while packing), not oneDNN's product. Bidirectional of unequal widths."""
    case = make_case(5, 3, 70, [4, 3], dtype, seed=11, dropout_g=dropout_g, valid_kind="holes")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh))
    assert_matches(monkeypatch, case, [False, True], sem, dtype)


@pytest.mark.parametrize("role", ["gate", "candidate", "cell"])
@pytest.mark.parametrize("act", NATIVE_ACTS, ids=lambda a: a.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_activation_in_every_role(monkeypatch, role, act, dtype):
    base = dict(gate=A.sigmoid, candidate=A.tanh, cell=A.tanh)
    base[role] = act
    case = make_case(7, 4, 3, [5, 5], dtype, seed=7, dropout_g=0, valid_kind="holes")
    assert_matches(monkeypatch, case, [False, True], LayerSemantics(CellActivations(**base)), dtype)


@pytest.mark.parametrize("gemm", ["kernel", "mkl", "aten"])
@pytest.mark.parametrize("dropout_g", DROPOUT_G)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_gemm_path(monkeypatch, gemm, dropout_g, dtype):
    """The per-step GEMM: our micro-kernel (default), MKL packed (float32 MKL builds) and at::mm agree.
    Sizes exercise partial panels (4H = 36 columns), row blocks of 8 plus a remainder (B = 11) and
    one thread per direction (enough work to go parallel)."""
    if gemm == "mkl" and not (native.module().HAS_PACKED_GEMM and dtype == torch.float32):
        pytest.skip("MKL packed GEMM: float32 builds with MKL only (falls back to the micro-kernel)")
    monkeypatch.setattr(native, "GEMM_PATH", gemm)
    case = make_case(20, 11, 5, [9, 16], dtype, seed=3, dropout_g=dropout_g, valid_kind="holes")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras3, A.tanh, A.tanh), MaskedOutput.CARRY)
    assert_matches(monkeypatch, case, [False, True], sem, dtype)


def test_unknown_gemm_path_is_an_error(monkeypatch):
    monkeypatch.setattr(native, "GEMM_PATH", "cublas")
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    x, dirs, h0, c0, valid, _ = make_case(3, 2, 3, [4], torch.float32, seed=1, dropout_g=0, valid_kind="holes")
    with pytest.raises(ValueError, match="GEMM_PATH must be 'kernel', 'mkl' or 'aten'; received 'cublas'"):
        run_layer(x, dirs, h0, c0, reverse=[False], valid=valid, semantics=LayerSemantics(CellActivations(A.relu)))


@pytest.mark.parametrize("gemm", ["kernel", "mkl", "aten"])
def test_larger_batch_runs_parallel_rows(monkeypatch, gemm):
    """Enough work for the batch to be split across threads (each block of rows runs the whole
    sequence on its own thread); no bias; only weights need gradients."""
    monkeypatch.setattr(native, "GEMM_PATH", gemm)
    x, dirs, h0, c0, valid, dropout = make_case(
        5, 70, 6, [16], torch.float32, seed=11, dropout_g=0, valid_kind="right", bias=False
    )
    x = x.detach()
    h0 = [h.detach() for h in h0]
    c0 = [c.detach() for c in c0]
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh))
    grads = {}
    for which in ("torch", "native"):
        monkeypatch.setenv("LSTM_BRIDGE_BACKEND", which)
        outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=[False], valid=valid, semantics=sem)
        assert backend.last_used == which
        grads[which] = (
            outs[0].detach(),
            torch.autograd.grad((outs[0] * outs[0]).sum() + cs[0].sum(), [dirs[0].w_ih, dirs[0].w_hh]),
        )
    torch.testing.assert_close(grads["native"][0], grads["torch"][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads["native"][1], grads["torch"][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# --- gradcheck in float64, one per option --------------------------------------------------------

GRADCHECK = [
    ("fwd-plain-hs2", [False], "none", MaskedOutput.CARRY, 0, (A.hard_sigmoid_keras2, A.tanh, A.tanh)),
    ("rev-right-carry", [True], "right", MaskedOutput.CARRY, 0, (A.sigmoid, A.tanh, A.tanh)),
    ("fwd-left-zero", [False], "left", MaskedOutput.ZERO, 0, (A.sigmoid, A.tanh, A.tanh)),
    ("bidir-holes-carry", [False, True], "holes", MaskedOutput.CARRY, 0, (A.hard_sigmoid_keras3, A.tanh, A.tanh)),
    ("bidir-fullrow-zero", [False, True], "full_row", MaskedOutput.ZERO, 0, (A.sigmoid, A.softsign, A.tanh)),
    ("fwd-dropout-g1", [False], "none", MaskedOutput.CARRY, 1, (A.sigmoid, A.tanh, A.tanh)),
    ("bidir-dropout-g4-holes", [False, True], "holes", MaskedOutput.CARRY, 4, (A.sigmoid, A.tanh, A.softsign)),
    ("fwd-relu-linear", [False], "holes", MaskedOutput.ZERO, 0, (A.sigmoid, A.relu, A.linear)),
    ("rev-softsign-gate", [True], "none", MaskedOutput.CARRY, 1, (A.softsign, A.tanh, A.relu)),
]


@pytest.mark.parametrize("name, reverse, mask, rule, dropout_g, acts", GRADCHECK, ids=[g[0] for g in GRADCHECK])
def test_gradcheck_float64(monkeypatch, name, reverse, mask, rule, dropout_g, acts):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    hidden = [3, 2][: len(reverse)]
    x, dirs, h0, c0, valid, dropout = make_case(
        4, 3, 2, hidden, torch.float64, seed=5, dropout_g=dropout_g, valid_kind=mask
    )
    sem = LayerSemantics(CellActivations(*acts), rule)
    D = len(dirs)
    inputs = leaves(x, dirs, h0, c0)

    def fn(*flat):
        xx = flat[0]
        ws = [DirectionWeights(*flat[1 + 4 * d : 5 + 4 * d]) for d in range(D)]
        hh = list(flat[1 + 4 * D : 1 + 5 * D])
        cc = list(flat[1 + 5 * D : 1 + 6 * D])
        outs, hs, cs = run_layer(xx, ws, hh, cc, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        assert backend.last_used == "native"
        return tuple(outs) + tuple(hs) + tuple(cs)

    assert torch.autograd.gradcheck(fn, tuple(inputs), eps=1e-6, atol=1e-7, rtol=1e-5)


# --- the kernel ran; what it declines; errors ------------------------------------------------------


def test_native_actually_ran(monkeypatch):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    x, dirs, h0, c0, valid, _ = make_case(5, 2, 3, [4], torch.float32, seed=1, dropout_g=0, valid_kind="none")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh))
    backend.last_used = None
    run_layer(x, dirs, h0, c0, reverse=[False], semantics=sem)
    assert backend.last_used == "native"
    # the standard LSTM in inference: small batch*hidden runs in the kernel, larger is left to oneDNN
    with torch.no_grad():
        run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "native"
        monkeypatch.setattr(backend, "NATIVE_STANDARD_MAX_BH", 2 * 4 - 1)
        run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "torch"
        # ... and from NATIVE_STANDARD_LARGE_BYTES of one direction's gates (T * B * 4H float32 values: oneDNN's
        # scratchpad faulted in on every call) on the kernel again (full precision only)
        monkeypatch.setattr(backend, "NATIVE_STANDARD_LARGE_BYTES", 5 * 2 * 4 * 4 * 4)
        run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "native"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "torch"
        monkeypatch.setattr(backend, "NATIVE_STANDARD_LARGE_BYTES", 5 * 2 * 4 * 4 * 4 + 1)
        run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "torch"
    # training (autograd records the call) has its own limit: the kernel's backward beats oneDNN's on 2+ threads
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MIN_THREADS", 1)
    run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
    assert backend.last_used == "native"
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MIN_THREADS", torch.get_num_threads() + 1)
    run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
    assert backend.last_used == "torch"
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MIN_THREADS", 1)
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MAX_BH", 2 * 4 - 1)
    run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
    assert backend.last_used == "torch"
    # MindSpore's CPU LSTM semantics keep oneDNN's bits, in inference and in training; under bf16 autocast
    # there are no bits to keep
    ms = LayerSemantics(onednn_bits=True)
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MAX_BH", 1 << 62)
    monkeypatch.setattr(backend, "NATIVE_STANDARD_MAX_BH", 1 << 62)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            run_layer(x, dirs, h0, c0, reverse=[False], semantics=ms)
            assert backend.last_used == "torch"
            with torch.autocast("cpu", dtype=torch.bfloat16):
                run_layer(x, dirs, h0, c0, reverse=[False], semantics=ms)
            assert backend.last_used == "native"


def test_small_standard_layer_with_a_large_w_hh_goes_to_onednn(monkeypatch):
    """Inference, float32, standard semantics, batch * hidden in the kernel's small band: a layer with fewer
    directions than threads and a W_hh of 1 MiB or more (H >= 256) goes to oneDNN, whose column split reads
    W_hh once per step (the kernel's row split would read it on every thread) - unless the kernel splits the
    hidden units itself (one direction, at most 4 rows, whole panels per thread: ``checks.column_split``);
    smaller W_hh, a bidirectional layer on two threads, float64 and training stay on the kernel."""
    from lstm_bridge.engine.native import checks

    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for B, H, D, dtype, grad in [
            (6, 256, 1, torch.float32, False),  # rows split: oneDNN
            (6, 320, 1, torch.float32, False),  # rows split: oneDNN
            (2, 320, 1, torch.float32, False),  # the column split, panels shared 2 / 3
            (2, 256, 1, torch.float32, False),  # the kernel's column split
            (1, 512, 1, torch.float32, False),
            (6, 128, 1, torch.float32, False),
            (2, 256, 2, torch.float32, False),
            (6, 256, 1, torch.float64, False),
            (6, 256, 1, torch.float32, True),
        ]:
            x, dirs, h0, c0, _, _ = make_case(3, B, 5, [H] * D, dtype, seed=2, dropout_g=0, valid_kind="none")
            with torch.set_grad_enabled(grad):
                run_layer(x, dirs, h0, c0, reverse=[False, True][:D], semantics=LayerSemantics())
            rows_split = D == 1 and H >= 256 and dtype == torch.float32 and not grad
            columns = checks.column_split(B, H, D, dtype, 2)
            path = "torch" if rows_split and not columns else "native"
            assert backend.last_used == path, (B, H, D, dtype, grad)
        monkeypatch.setattr(backend, "NATIVE_ROW_SPLIT_W_BYTES", 1 << 62)
        x, dirs, h0, c0, _, _ = make_case(3, 6, 5, [256], torch.float32, seed=2, dropout_g=0, valid_kind="none")
        with torch.no_grad():
            run_layer(x, dirs, h0, c0, reverse=[False], semantics=LayerSemantics())
        assert backend.last_used == "native"
    finally:
        torch.set_num_threads(threads)


def test_column_split_predicate_matches_the_kernel():
    """``checks.column_split`` (the routing's deterministic mirror) uses the kernel's own constants."""
    from lstm_bridge.engine.native import build, checks

    ext = native.module()
    assert ext is not None
    assert (
        checks.COLUMN_SPLIT_MAX_ROWS,
        checks.COLUMN_SPLIT_MIN_BYTES,
        checks.COLUMN_SPLIT_MID_MAX_ROWS,
        checks.COLUMN_SPLIT_MID_BYTES,
        checks.COLUMN_SPLIT_LARGE_MAX_ROWS,
        checks.COLUMN_SPLIT_LARGE_BYTES,
    ) == (
        ext.COLUMN_SPLIT_MAX_ROWS,
        ext.COLUMN_SPLIT_MIN_BYTES,
        ext.COLUMN_SPLIT_MID_MAX_ROWS,
        ext.COLUMN_SPLIT_MID_BYTES,
        ext.COLUMN_SPLIT_LARGE_MAX_ROWS,
        ext.COLUMN_SPLIT_LARGE_BYTES,
    )
    panel_bytes = checks._PANEL_BYTES.get(build.capability(), checks._DEFAULT_PANEL_BYTES)
    assert (panel_bytes // 4, panel_bytes // 8) == (ext.PANEL_WIDTH_FLOAT, ext.PANEL_WIDTH_DOUBLE)
    wide = 2 * ext.PANEL_WIDTH_FLOAT * max(1, 256 // (2 * ext.PANEL_WIDTH_FLOAT))
    assert checks.column_split(1, wide, 1, torch.float32, 2) == (bool(ext.OPENMP) and 16 * wide * wide >= 1 << 20)
    assert not checks.column_split(5, wide, 1, torch.float32, 2)
    # 5-6 rows from COLUMN_SPLIT_MID_BYTES (H = 448 is 3.06 MiB in float32, 384 2.25 MiB); oneDNN keeps the standard
    # layer there
    assert checks.column_split(6, 448, 1, torch.float32, 2) == bool(ext.OPENMP)
    assert not checks.column_split(6, 384, 1, torch.float32, 2) and not checks.column_split(7, 512, 1, torch.float32, 2)
    # the standard layer's routing leaves that tier to oneDNN by batch * hidden alone (backend._check_row_split)
    smallest = min(b * h for b in (5, 6) for h in range(64, 2048, 64) if checks.column_split(b, h, 1, torch.float32, 2))
    assert not ext.OPENMP or smallest > backend.NATIVE_STANDARD_MAX_BH
    # more rows from COLUMN_SPLIT_LARGE_BYTES of W_hh on (4 H^2 float32: H = 1024 is 16 MiB)
    assert checks.column_split(32, 1024, 1, torch.float32, 2) == bool(ext.OPENMP)
    assert not checks.column_split(33, 1024, 1, torch.float32, 2)
    assert not checks.column_split(8, 960, 1, torch.float32, 2)  # 14 MiB
    assert not checks.column_split(1, wide, 2, torch.float32, 2)
    assert not checks.column_split(1, wide, 1, torch.float32, 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_column_split_gives_the_row_splits_bits(dtype):
    """One direction on a batch of at most 4 rows with a W_hh of 1 MiB or more runs with the threads splitting the
    hidden units (one barrier a step, panels shared unevenly when their count is odd); every element is computed as
    the row split computes it, so the results are the same bits as on one thread (row split), with masks, carried
    or zeroed masked steps, recurrent dropout masks (shared or per gate), reverse and no bias."""
    ext = native.module()
    assert ext is not None
    if not ext.OPENMP:
        pytest.skip("the kernel was built without OpenMP: no column split")
    H = 320 if dtype == torch.float32 else 192  # (4 H^2 elements >= 1 MiB; 5 (or 6) panels on 2 threads)
    from lstm_bridge.engine.native import checks

    assert checks.column_split(3, H, 1, dtype, 2)
    threads = torch.get_num_threads()
    try:
        for B, valid_kind, G, reverse, rule in [
            (1, "none", 0, False, MaskedOutput.CARRY),
            (3, "holes", 1, True, MaskedOutput.CARRY),
            (4, "holes", 4, False, MaskedOutput.ZERO),
            (2, "none", 4, True, MaskedOutput.ZERO),
        ]:
            x, dirs, h0, c0, valid, dropout = make_case(
                16, B, 64, [H], dtype, seed=B + G, dropout_g=G, valid_kind=valid_kind
            )
            sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh), rule)
            results = []
            for n in (1, 2):
                torch.set_num_threads(n)
                with torch.no_grad():
                    results.append(
                        native.run_layer(
                            x, dirs, h0, c0, reverse=[reverse], valid=valid, semantics=sem, dropout=dropout
                        )
                    )
            for a, b in zip(*results):
                for u, v in zip(a, b):
                    assert torch.equal(u, v), (B, valid_kind, G, reverse, rule)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tier", ["mid", "large"])
def test_column_split_on_more_rows_with_a_large_w_hh(dtype, tier):
    """From COLUMN_SPLIT_LARGE_BYTES of W_hh on (16 MiB: H = 1024 in float32, 736 in float64) the threads split
    the hidden units for up to COLUMN_SPLIT_LARGE_MAX_ROWS rows, and from COLUMN_SPLIT_MID_BYTES (3 MiB: H = 448
    in float32, 320 in float64) for up to COLUMN_SPLIT_MID_MAX_ROWS, forward and backward: outputs and gradients
    (input, W_hh, biases) equal those on one thread (row split), with holes in the mask and per-gate dropout
    masks."""
    ext = native.module()
    assert ext is not None
    if not ext.OPENMP:
        pytest.skip("the kernel was built without OpenMP: no column split")
    from lstm_bridge.engine.native import checks

    if tier == "large":
        H, B = (1024 if dtype == torch.float32 else 736), 12
    else:
        H, B = (448 if dtype == torch.float32 else 320), checks.COLUMN_SPLIT_MID_MAX_ROWS
        assert not checks.column_split(B + 1, H, 1, dtype, 2)
    assert checks.column_split(B, H, 1, dtype, 2) and not checks.column_split(B, H - 64, 1, dtype, 2)
    threads = torch.get_num_threads()
    try:
        x, dirs, h0, c0, valid, dropout = make_case(3, B, 16, [H], dtype, seed=5, dropout_g=4, valid_kind="holes")
        sem = LayerSemantics(CellActivations(A.sigmoid, A.tanh, A.tanh), MaskedOutput.CARRY)
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.no_grad():
                inference = native.run_layer(
                    x, dirs, h0, c0, reverse=[False], valid=valid, semantics=sem, dropout=dropout
                )
            xs = x.detach().clone().requires_grad_(True)
            outs, hs, cs = native.run_layer(
                xs, dirs, h0, c0, reverse=[False], valid=valid, semantics=sem, dropout=dropout
            )
            loss = outs[0].square().sum() + hs[0].sum() + cs[0].sum()
            grads = torch.autograd.grad(loss, [xs, dirs[0].w_hh, dirs[0].b_ih, dirs[0].b_hh])
            results.append([*inference[0], outs[0].detach(), *grads])
        for a, b in zip(*results):
            assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)


def test_kernel_runs_on_torchs_threads():
    """The kernel is built with OpenMP when torch uses it: at::parallel_for is a header template that
    otherwise runs every item on the calling thread (a silent 2x loss on two cores)."""
    ext = native.module()
    assert ext is not None
    assert ext.OPENMP == torch.backends.openmp.is_available()
    if not ext.OPENMP:
        pytest.skip("torch's ATen does not run on OpenMP here")
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert ext.parallel_threads(2) == 2
        torch.set_num_threads(1)  # the kernel follows torch.set_num_threads (one shared OpenMP runtime)
        assert ext.parallel_threads(2) == 1
    finally:
        torch.set_num_threads(previous)


def test_declines_what_it_cannot_run(monkeypatch):
    x, dirs, h0, c0, valid, _ = make_case(5, 2, 3, [4], torch.float32, seed=1, dropout_g=0, valid_kind="holes")
    custom = LayerSemantics(CellActivations(lambda t: torch.sigmoid(t) * 0.9, A.tanh, A.tanh))
    with pytest.raises(NotImplementedError, match="no native implementation"):
        native.check_supported(x, dirs, valid=valid, semantics=custom, dropout=[None])
    # MindSpore's CPU activation emulations are native (ids 7, 8): supported
    native.check_supported(
        x, dirs, valid=valid, semantics=LayerSemantics(CellActivations(A.ms_cpu_sigmoid)), dropout=[None]
    )
    with pytest.raises(NotImplementedError, match="float16"):
        native.check_supported(x.half(), dirs, valid=valid, semantics=LayerSemantics(), dropout=[None])
    # the kernel can run the standard LSTM; the backend's policy leaves larger ones to oneDNN
    native.check_supported(x, dirs, valid=None, semantics=LayerSemantics(), dropout=[None])
    monkeypatch.setattr(backend, "NATIVE_STANDARD_MAX_BH", 7)
    with pytest.raises(NotImplementedError, match=r"standard LSTM semantics with batch\*hidden = 8 > 7"):
        backend.check_native_policy(x, dirs, valid=None, semantics=LayerSemantics(), dropout=[None])
    # auto falls back to the torch path for the custom activation; native refuses loudly
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    run_layer(x, dirs, h0, c0, reverse=[False], valid=valid, semantics=custom)
    assert backend.last_used == "torch"
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    with pytest.raises(NotImplementedError):
        run_layer(x, dirs, h0, c0, reverse=[False], valid=valid, semantics=custom)


def test_shape_errors_name_expected_and_received():
    x, dirs, h0, c0, valid, _ = make_case(5, 2, 3, [4], torch.float32, seed=1, dropout_g=0, valid_kind="holes")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2))
    with pytest.raises(ValueError, match=r"expected h0 \(2, 4\); received \(3, 4\)"):
        native.run_layer(x, dirs, [torch.zeros(3, 4)], c0, reverse=[False], valid=valid, semantics=sem, dropout=[None])
    with pytest.raises(ValueError, match=r"valid must be \(T, B\) = \(5, 2\); received \(4, 2\)"):
        native.run_layer(x, dirs, h0, c0, reverse=[False], valid=valid[:4], semantics=sem, dropout=[None])
    bad = DropoutMasks(recurrent=torch.ones(2, 2, 4))
    with pytest.raises(ValueError, match=r"G in \{1, 4\}"):
        native.run_layer(x, dirs, h0, c0, reverse=[False], valid=valid, semantics=sem, dropout=[bad])


def test_inference_saves_nothing_and_matches_training_forward(monkeypatch):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    x, dirs, h0, c0, valid, dropout = make_case(6, 3, 4, [5, 5], torch.float32, seed=9, dropout_g=1, valid_kind="holes")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh), MaskedOutput.ZERO)
    with torch.no_grad():
        outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=[False, True], valid=valid, semantics=sem, dropout=dropout)
    assert not outs[0].requires_grad and outs[0].grad_fn is None
    outs2, hs2, cs2 = run_layer(x, dirs, h0, c0, reverse=[False, True], valid=valid, semantics=sem, dropout=dropout)
    assert outs2[0].grad_fn is not None
    for a, b in zip(outs + hs + cs, outs2 + hs2 + cs2):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    # a masked ZERO step is exactly zero in both directions
    assert torch.all(outs[0][~valid] == 0) and torch.all(outs[1][~valid] == 0)


def test_backend_torch_never_builds(tmp_path):
    """LSTM_BRIDGE_BACKEND=torch: a fresh process with an empty cache runs and leaves the cache empty."""
    code = (
        "import torch\n"
        "from lstm_bridge import activations as A\n"
        "from lstm_bridge.engine import run_layer, backend, native\n"
        "from lstm_bridge.engine.semantics import *\n"
        "x = torch.randn(3, 2, 2); w = DirectionWeights(torch.randn(8, 2), torch.randn(8, 2))\n"
        "z = torch.zeros(2, 2)\n"
        "run_layer(x, [w], [z], [z], reverse=[False], semantics=LayerSemantics(CellActivations(A.relu)))\n"
        "assert backend.last_used == 'torch'\n"
        "assert not native.available() and 'LSTM_BRIDGE_BACKEND=torch' in native.error()\n"
        "assert native.loader.attempted() is False\n"
    )
    env = dict(os.environ, LSTM_BRIDGE_BACKEND="torch", LSTM_BRIDGE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "building native kernel" not in proc.stderr
    assert not (tmp_path / "cache").exists()


def test_build_is_cached_and_named_by_content():
    name = build.module_name()
    assert name.startswith("lstm_bridge_native_") and name == build.module_name()
    assert (build.cache_root() / name / f"{name}.so").exists()
    module, built_now = build.load()
    assert built_now is False and hasattr(module, "forward")


# --- activations, one at a time ------------------------------------------------------------------


def _activation_grid(dtype: torch.dtype) -> torch.Tensor:
    """Dense and random points, the MindSpore cut-offs (+-5, -87.34, 88.72), signed zeros, inf and NaN;
    an odd length so that every vector loop also runs its tail."""
    gen = torch.Generator().manual_seed(5)
    special = torch.tensor(
        [
            5.0,
            -5.0,
            4.99,
            5.0000005,
            -5.0000005,
            0.0,
            -0.0,
            87.3365478515625,
            -87.3365478515625,
            88.72283935546875,
            -88.72283935546875,
            1e-38,
            -1e-38,
            100.0,
            -100.0,
            float("inf"),
            float("-inf"),
            float("nan"),
        ]
    )
    grid = torch.cat(
        [
            torch.linspace(-100, 100, 200001),
            torch.linspace(-6, 6, 120001),
            torch.randn(50001, generator=gen) * 8,
            special,
        ]
    )
    return grid.to(dtype)


@pytest.mark.parametrize("act", [A.ms_cpu_sigmoid, A.ms_cpu_tanh], ids=lambda a: a.name)
def test_mindspore_emulations_bit_exact_in_the_kernel(act):
    """The kernel's vectorised MindSpore Sigmoid/Tanh give the torch emulation's bits everywhere and
    the real MindSpore 2.10 outputs recorded in test_reference."""
    from test_reference import _MS_SIGMOID_BITS, _MS_TANH_BITS, _bits

    ext = native.module()
    grid = _activation_grid(torch.float32)
    got = ext.apply_activation(act.native_id, grid)
    want = act(grid)
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got[~got.isnan()].view(torch.int32), want[~want.isnan()].view(torch.int32))
    x, real = _bits(_MS_SIGMOID_BITS if act is A.ms_cpu_sigmoid else _MS_TANH_BITS)
    got_real = ext.apply_activation(act.native_id, torch.from_numpy(x.copy()))
    assert np.array_equal(got_real.numpy().view(np.uint32), real.view(np.uint32))
    # float64 inputs go through the float32 emulation, as in the torch path
    got64 = ext.apply_activation(act.native_id, grid.double())
    assert torch.equal(got64[~got64.isnan()], want.double()[~want.isnan()])


@pytest.mark.parametrize("act", NATIVE_ACTS, ids=lambda a: a.name)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_activation_matches_its_torch_formula(act, dtype):
    grid = _activation_grid(dtype)
    got = native.module().apply_activation(act.native_id, grid)
    want = act(grid)
    rtol = 2e-7 if dtype == torch.float32 else 1e-15
    if act is A.tanh and dtype == torch.float32:
        rtol = 6e-7  # Sleef's 3.5-ulp tanh where libtorch exports it (torch.tanh: 1 ulp)
    torch.testing.assert_close(got, want, rtol=rtol, atol=0, equal_nan=True)


def test_float32_tanh_within_four_ulp_of_the_true_value():
    grid = _activation_grid(torch.float32)
    grid = grid[grid.isfinite()]
    got = native.module().apply_activation(A.tanh.native_id, grid).double()
    exact = torch.tanh(grid.double())
    ulp = torch.finfo(torch.float32).eps * exact.abs().clamp_min(torch.finfo(torch.float32).tiny)
    assert ((got - exact).abs() <= 4 * ulp).all()


def test_apply_activation_rejects_unknown_ids():
    with pytest.raises(RuntimeError, match="unknown activation id 99"):
        native.module().apply_activation(99, torch.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 3, 5), (37, 16, 70), (200, 33, 129)])
def test_matmul_nt_matches_torch(shape, dtype):
    """The micro-kernel GEMM used for small input projections: every row tail, panel tail and K."""
    M, K, N = shape
    gen = torch.Generator().manual_seed(M * 1000 + N)
    a = torch.randn(M, K, generator=gen, dtype=dtype)
    w = torch.randn(N, K, generator=gen, dtype=dtype)
    got = native.module().matmul_nt(a, w)
    torch.testing.assert_close(got, a @ w.t(), **TOL[dtype])
    # a strided weight (Keras's kernel arrives transposed) packs without a copy
    got_t = native.module().matmul_nt(a, w.t().contiguous().t())
    torch.testing.assert_close(got_t, got, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matmul_nt_reads_and_writes_column_blocks_in_place(dtype):
    """A column block of a wider matrix as ``a`` (dZ's gate columns) and as ``out`` (one gate's columns of the
    projection): read and written with their row strides; the columns around the block stay untouched."""
    gen = torch.Generator().manual_seed(5)
    wide = torch.randn(37, 90, generator=gen, dtype=dtype)
    a = wide[:, 10:80]  # (37, 70), row stride 90
    w = torch.randn(20, 70, generator=gen, dtype=dtype)
    out = torch.full((37, 50), 7.0, dtype=dtype)
    got = native.module().matmul_nt(a, w, out[:, 5:25])
    assert got.data_ptr() == out[:, 5:25].data_ptr()
    torch.testing.assert_close(out[:, 5:25], a @ w.t(), **TOL[dtype])
    assert bool((out[:, :5] == 7).all()) and bool((out[:, 25:] == 7).all())
    with pytest.raises(RuntimeError, match=r"view with unit column stride"):
        native.module().matmul_nt(a, w, out.t()[:20])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("G, H, K", [(4, 5, 3), (3, 70, 33), (4, 64, 130)])
def test_gated_products_match_float64(dtype, G, H, K):
    """Per-gate input dropout inside the kernel: the projection block (x * m_q) W_q^T written in place into a
    wider matrix (its neighbours untouched), and dx = sum_q (dZ_q W_q) * m_q read from dZ's column block,
    against float64 products; more rows (300) than one row block, batch 3."""
    M, B = 300, 3
    gen = torch.Generator().manual_seed(G * 1000 + H + K)
    x = torch.randn(M, K, generator=gen, dtype=dtype)
    w = torch.randn(G * H, K, generator=gen, dtype=dtype)
    mask = (torch.rand(G, B, K, generator=gen) > 0.3).to(dtype) / 0.7
    rows = torch.arange(M) % B
    wide = torch.full((M, G * H + 9), 5.0, dtype=dtype)
    native.module().gated_matmul_nt(x, w, mask, wide[:, 4 : 4 + G * H])
    want = torch.cat([(x.double() * mask[q].double()[rows]) @ w[q * H : (q + 1) * H].double().t() for q in range(G)], 1)
    torch.testing.assert_close(wide[:, 4 : 4 + G * H], want.to(dtype), **TOL[dtype])
    assert bool((wide[:, :4] == 5).all()) and bool((wide[:, 4 + G * H :] == 5).all())
    dz = torch.randn(M, G * H + 7, generator=gen, dtype=dtype)
    got = native.module().gated_matmul_nn(dz, 7, w, mask)
    want_dx = sum(
        (dz[:, 7 + q * H : 7 + (q + 1) * H].double() @ w[q * H : (q + 1) * H].double()) * mask[q].double()[rows]
        for q in range(G)
    )
    torch.testing.assert_close(got, want_dx.to(dtype), **TOL[dtype])


def test_per_gate_input_dropout_with_a_strided_input(monkeypatch):
    """An input whose features are not adjacent (every other column of a wider tensor: its (T*B, I) view has
    a column stride of 2) goes through the per-gate masked projection too, as the torch path computes it."""
    gen = torch.Generator().manual_seed(3)
    T, B, I, H = 5, 3, 6, 4
    x = torch.randn(T, B, 2 * I, generator=gen, dtype=torch.float64)[..., ::2]
    w = DirectionWeights(
        torch.randn(4 * H, I, generator=gen, dtype=torch.float64),
        torch.randn(4 * H, H, generator=gen, dtype=torch.float64),
    )
    masks = DropoutMasks(
        inputs=(torch.rand(4, B, I, generator=gen) > 0.3).double() / 0.7,
        recurrent=(torch.rand(4, B, H, generator=gen) > 0.3).double() / 0.7,
    )
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh))
    h0 = torch.zeros(B, H, dtype=torch.float64)
    outs = {}
    for which in ("native", "torch"):
        monkeypatch.setenv("LSTM_BRIDGE_BACKEND", which)
        outs[which] = run_layer(x, [w], [h0], [h0], reverse=[False], semantics=sem, dropout=[masks])[0][0]
    torch.testing.assert_close(outs["native"], outs["torch"], **TOL[torch.float64])


def test_gated_products_reject_mismatched_masks():
    ext = native.module()
    x, w = torch.zeros(6, 3), torch.zeros(8, 3)
    with pytest.raises(RuntimeError, match=r"gated_matmul_nt needs a contiguous \(4, B, 3\)"):
        ext.gated_matmul_nt(x, w, torch.ones(4, 4, 3), torch.zeros(6, 8))
    with pytest.raises(RuntimeError, match=r"out must be an \(6, 8\)"):
        ext.gated_matmul_nt(x, w, torch.ones(4, 2, 3), torch.zeros(8, 6).t())
    with pytest.raises(RuntimeError, match=r"columns \[col0, col0 \+ G H\) inside dz's 8"):
        ext.gated_matmul_nn(torch.zeros(6, 8), 2, w, torch.ones(4, 2, 3))


def test_matmul_nt_rejects_mismatched_operands():
    expected = r"matmul_nt needs CPU float32/float64 a \(M, K\) or \(T, B, K\) and w \(N, K\)"
    with pytest.raises(RuntimeError, match=expected):
        native.module().matmul_nt(torch.zeros(3, 4), torch.zeros(5, 6))
    with pytest.raises(RuntimeError, match=expected):
        native.module().matmul_nt(torch.zeros(2, 3, 4, 6), torch.zeros(5, 6))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "B, T, I, N", [(32, 9, 40, 200), (12, 5, 8, 64), (11, 4, 7, 130), (300, 3, 17, 70), (2, 6, 9, 64), (3, 4, 5, 3)]
)
def test_matmul_nt_reads_time_major_views_in_place(dtype, B, T, I, N):
    """A (T, B, K) operand - the time-major view of a batch-first input - gives rows (t, b), bit for bit the
    product of its contiguous (T*B, K) copy: read step by step in place (B rows a step: whole micro-kernel tiles,
    short ones, or many blocks), into a fresh result, contiguous ``out`` or a column block of a wider one."""
    ext = native.module()
    g = torch.Generator().manual_seed(B * T)
    x = torch.randn(B, T, I, generator=g, dtype=dtype)
    w = torch.randn(N, I, generator=g, dtype=dtype)
    xt = x.transpose(0, 1)
    expected = ext.matmul_nt(xt.reshape(T * B, I), w)
    torch.testing.assert_close(expected, xt.reshape(T * B, I) @ w.t(), rtol=1e-4, atol=1e-4)
    assert torch.equal(ext.matmul_nt(xt, w), expected)
    out = torch.full((T * B, N), float("nan"), dtype=dtype)
    ext.matmul_nt(xt, w, out)
    assert torch.equal(out, expected)
    wide = torch.full((T * B, N + 20), float("nan"), dtype=dtype)
    ext.matmul_nt(xt, w, wide[:, 7 : 7 + N])
    assert torch.equal(wide[:, 7 : 7 + N], expected)
    assert wide[:, :7].isnan().all() and wide[:, 7 + N :].isnan().all()
    assert torch.equal(ext.matmul_nt(xt.contiguous(), w), expected)  # contiguous: one (T*B, K) block
    assert torch.equal(
        ext.matmul_nt(x[:, ::2].transpose(0, 1), w), ext.matmul_nt(x[:, ::2].transpose(0, 1).reshape(-1, I), w)
    )
    broadcast = x[:1].expand(B, T, I).transpose(0, 1)  # (a batch stride of 0: copied, then multiplied)
    assert torch.equal(ext.matmul_nt(broadcast, w), ext.matmul_nt(broadcast.reshape(T * B, I), w))
    steps = x[:, :1].expand(B, T, I).transpose(0, 1)  # (a step stride of 0: every step reads the same rows)
    assert torch.equal(ext.matmul_nt(steps, w), ext.matmul_nt(steps.reshape(T * B, I), w))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("G", [0, 1, 4])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 3, 5, 1), (37, 4, 70, 2), (300, 3, 129, 1), (3, 2, 200, 2)])
def test_gate_weight_grad_matches_float64_products(shape, G, dtype):
    """dW_hh's kernel GEMM: gate block q = dZ_q^T (h * m_q) (m_q: G = 4 per gate, 1 shared, 0 none) against
    float64 products, for every direction's column block, row/panel tails (H = 5, 70, 129, 200; H > 128
    copies dZ's rows into strips) and more rows than one packed block (T*B = 900 > 256)."""
    T, B, H, D = shape
    gen = torch.Generator().manual_seed(T * 100 + H + G)
    dz = torch.randn(T * B, 4 * H * D + 3, generator=gen, dtype=dtype)  # 3 extra columns: S != 4 H D
    h = torch.randn(T, B, H, generator=gen, dtype=dtype)
    mask = (torch.rand(max(G, 1), B, H, generator=gen) > 0.3).to(dtype) / 0.7
    for d in range(D):
        col0 = 4 * H * d
        blocks = []
        for q in range(4):
            hm = h if G == 0 else h * mask[q if G == 4 else 0]
            blocks.append(dz[:, col0 + q * H : col0 + (q + 1) * H].double().t() @ hm.double().reshape(T * B, H))
        want = torch.cat(blocks, 0).to(dtype)
        got = native.module().gate_weight_grad(dz, col0, 4, H, h, mask[:G] if G else torch.empty(0, dtype=dtype))
        assert got.shape == (4 * H, H) and got.dtype == dtype
        # float32: sums of up to 900 products of magnitude ~1.4 round to ~1e-5 of their ~40
        torch.testing.assert_close(got, want, **(TOL[dtype] if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-4)))


@pytest.mark.parametrize("G", [3, 4])
def test_gate_weight_grad_with_input_masks_of_another_width(G):
    """The same GEMM for dW_ih under per-gate input dropout: gate width H = 6, src x of width N = 70."""
    R, B, H, N = 40, 4, 6, 70
    gen = torch.Generator().manual_seed(G)
    dz = torch.randn(R, G * H + 5, generator=gen)
    x = torch.randn(R // B, B, N, generator=gen)
    mask = (torch.rand(G, B, N, generator=gen) > 0.5).float() * 2
    want = torch.cat(
        [dz[:, 5 + q * H : 5 + (q + 1) * H].double().t() @ (x * mask[q]).double().reshape(R, N) for q in range(G)]
    )
    got = native.module().gate_weight_grad(dz, 5, G, H, x, mask)
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5)


def test_gate_weight_grad_rejects_mismatched_operands():
    ext = native.module()
    with pytest.raises(RuntimeError, match=r"columns \[col0, col0 \+ G H\) inside dz's 16"):
        ext.gate_weight_grad(torch.zeros(6, 16), 4, 4, 4, torch.zeros(6, 4), torch.empty(0))
    with pytest.raises(RuntimeError, match=r"mask must be a contiguous \(1 or 4, B, 4\)"):
        ext.gate_weight_grad(torch.zeros(6, 16), 0, 4, 4, torch.zeros(6, 4), torch.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match=r"B dividing 6 rows"):
        ext.gate_weight_grad(torch.zeros(6, 16), 0, 4, 4, torch.zeros(6, 4), torch.ones(4, 4, 4))
    with pytest.raises(RuntimeError, match=r"contiguous src of dz's dtype"):
        ext.gate_weight_grad(torch.zeros(6, 16), 0, 4, 4, torch.zeros(6, 4, dtype=torch.float64), torch.empty(0))


# --- autograd: every saved tensor is visible to saved-tensor hooks and checkpointing ---------------


def _contains_tensor(value, depth: int = 0) -> bool:
    """Whether ``value`` holds a tensor (through tuples, lists, dicts and plain objects' attributes)."""
    if isinstance(value, torch.Tensor):
        return True
    if depth > 4 or isinstance(value, (str, bytes, int, float, bool, type(None), torch.dtype)):
        return False
    if isinstance(value, (tuple, list)):
        return any(_contains_tensor(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_contains_tensor(v, depth + 1) for v in value.values())
    if type(value).__module__ == "builtins" or isinstance(value, type(os)):  # modules: the extension
        return False
    return _contains_tensor(getattr(value, "__dict__", {}), depth + 1)


def _hook_case():
    """Bidirectional, step mask and both dropout masks: every kind of saved tensor is present."""
    case = make_case(6, 3, 4, [5, 3], torch.float32, seed=21, dropout_g=1, valid_kind="holes")
    sem = LayerSemantics(CellActivations(A.hard_sigmoid_keras3, A.tanh, A.softsign), MaskedOutput.ZERO)
    return case, sem


def _loss_and_grads(x, dirs, h0, c0, valid, dropout, sem, hooks=None):
    def forward():
        outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=[False, True], valid=valid, semantics=sem, dropout=dropout)
        assert backend.last_used == "native"
        return outs, hs, cs

    if hooks is None:
        outs, hs, cs = forward()
    else:
        with torch.autograd.graph.saved_tensors_hooks(*hooks):
            outs, hs, cs = forward()
    loss = sum((r * (i + 1)).sum() for i, r in enumerate(list(outs) + list(hs) + list(cs)))
    return outs, loss


def test_no_tensor_is_kept_as_a_ctx_attribute(monkeypatch):
    """Backward reads tensors only from ctx.saved_tensors; the ctx keeps the tensor-free plan."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    (x, dirs, h0, c0, valid, dropout), sem = _hook_case()
    outs, _ = _loss_and_grads(x, dirs, h0, c0, valid, dropout, sem)
    ctx = outs[0].grad_fn
    attributes = {k: v for k, v in vars(ctx).items()}
    assert attributes, "expected the plan on the ctx"
    assert not [k for k, v in attributes.items() if _contains_tensor(v)]


def test_saved_tensors_hooks_see_every_saved_tensor(monkeypatch):
    """An offloading hook (pack: a copy; unpack: the copy) sees all 15 tensors backward needs for this
    bidirectional masked, dropped-out call (x, 2 w_ih, 2 w_hh, the gates, 2 c_prev, 2 h_prev, valid,
    2 input and 2 recurrent masks); backward reads the unpacked copies: after forward the originals
    made inside the call (the kernel's outputs to NaN, the uint8 step mask inverted) are spoiled and
    the gradients stay equal to the hook-free ones."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    (x, dirs, h0, c0, valid, dropout), sem = _hook_case()
    inputs = leaves(x, dirs, h0, c0)
    _, loss = _loss_and_grads(x, dirs, h0, c0, valid, dropout, sem)
    want = torch.autograd.grad(loss, inputs)

    originals: List[torch.Tensor] = []
    unpacked: List[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        originals.append(t)
        return t.detach().clone()

    def unpack(copy: torch.Tensor) -> torch.Tensor:
        unpacked.append(copy)
        return copy

    _, loss = _loss_and_grads(x, dirs, h0, c0, valid, dropout, sem, hooks=(pack, unpack))
    assert len(originals) == 15
    user = {
        t.untyped_storage().data_ptr() for t in inputs + [valid] + [m for d in dropout for m in (d.inputs, d.recurrent)]
    }
    intermediates = [t for t in originals if t.untyped_storage().data_ptr() not in user]
    assert len(intermediates) == 1 + 2 * 2 + 1  # gates, c_prev and h_prev per direction, valid as uint8
    with torch.no_grad():
        for t in intermediates:
            if t.is_floating_point():
                t.fill_(float("nan"))
            else:
                t.copy_(1 - t)  # the step mask inverted
    got = torch.autograd.grad(loss, inputs)
    assert len(unpacked) == len(originals)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_checkpoint_recomputes_and_gives_the_same_gradients(monkeypatch):
    """torch.utils.checkpoint (non-reentrant) drops the saved tensors, reruns the kernel in backward
    and gives bit-identical gradients."""
    from lstm_bridge.engine.native import function

    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    (x, dirs, h0, c0, valid, dropout), sem = _hook_case()
    inputs = leaves(x, dirs, h0, c0)
    _, loss = _loss_and_grads(x, dirs, h0, c0, valid, dropout, sem)
    want = torch.autograd.grad(loss, inputs)

    calls = []
    real_apply = function.apply

    def counting_apply(*args):
        calls.append(1)
        return real_apply(*args)

    monkeypatch.setattr(function, "apply", counting_apply)

    def layer(*flat):
        return _loss_and_grads(*rebuild(flat), valid, dropout, sem)[1]

    def rebuild(flat):
        ws = [DirectionWeights(*flat[1 + 4 * d : 5 + 4 * d]) for d in range(2)]
        return flat[0], ws, list(flat[9:11]), list(flat[11:13])

    loss = torch.utils.checkpoint.checkpoint(layer, *inputs, use_reentrant=False)
    assert len(calls) == 1
    got = torch.autograd.grad(loss, inputs)
    assert len(calls) == 2  # recomputed in backward
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_column_split_in_training_gives_the_row_splits_gradients():
    """A recorded call (training) on one direction and a small batch runs its forward and its backward with the
    column split too (the forward saving the states entering each step as the row split does; the backward's one
    barrier a step between dZ_t and dZ_t W_hh): outputs and gradients equal those on one thread (row split)."""
    ext = native.module()
    assert ext is not None
    if not ext.OPENMP:
        pytest.skip("the kernel was built without OpenMP: no column split")
    from lstm_bridge.engine.native import checks

    assert checks.column_split(3, 320, 1, torch.float32, 2)
    threads = torch.get_num_threads()
    try:
        x, dirs, h0, c0, valid, dropout = make_case(
            16, 3, 64, [320], torch.float32, seed=4, dropout_g=4, valid_kind="holes"
        )
        sem = LayerSemantics(CellActivations(A.sigmoid, A.tanh, A.tanh), MaskedOutput.CARRY)
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            xs = x.detach().clone().requires_grad_(True)
            outs, hs, cs = native.run_layer(
                xs, dirs, h0, c0, reverse=[True], valid=valid, semantics=sem, dropout=dropout
            )
            loss = outs[0].square().sum() + hs[0].sum() + cs[0].sum()
            grads = torch.autograd.grad(loss, [xs, dirs[0].w_hh, dirs[0].b_ih, dirs[0].b_hh])
            results.append([outs[0].detach(), hs[0].detach(), cs[0].detach(), *grads])
        for a, b in zip(*results):
            assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)
