"""bfloat16: under ``torch.autocast("cpu", dtype=torch.bfloat16)`` and for bfloat16 inputs/modules, an LSTM
layer runs its GEMMs on bfloat16 operands with float32 accumulation and a float32 cell state, forward and
backward, on both engine paths, and returns bfloat16 as ``torch.nn.LSTM`` does under the same autocast.

Each comparison is against the same call in float32 (autocast off): outputs within 3e-2, gradients finite
and within a few percent of the float32 gradients' scale. With autocast off nothing changes, bit for bit.
"""

from __future__ import annotations

from typing import List, Optional

import pytest
import torch

from lstm_bridge import activations as A, keras, mindspore
from lstm_bridge.engine import backend, native, run_layer
from lstm_bridge.engine.precision import reduced_dtype
from lstm_bridge.engine.semantics import CellActivations, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

from helpers import require_native_kernel

BF16 = torch.bfloat16
OUT_TOL = 3e-2  # the bound on |bf16 result - float32 result|
GRAD_TOL = 3e-2  # ||bf16 gradient - float32 gradient|| / ||float32 gradient||, per tensor (a hard sigmoid's
# clamp makes single entries flip between 0 and full slope when the rounding moves a pre-activation across it)


def grad_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got - ref).norm() / ref.norm().clamp_min(1e-12)).item()


@pytest.fixture(autouse=True)
def _native_trains_standard_layers(monkeypatch):
    """The native cases run the kernel whatever the machine's thread count: on one thread the path policy
    hands standard LSTM training to oneDNN, which LSTM_BRIDGE_BACKEND=native refuses."""
    monkeypatch.setattr(backend, "NATIVE_STANDARD_TRAIN_MIN_THREADS", 1)


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    """Build (or load) the kernel once; a failed build with a toolchain present is a test failure."""
    require_native_kernel()


def autocast():
    return torch.autocast("cpu", dtype=BF16)


# --- engine-level cases: every variant, both paths ------------------------------------------------------

VARIANTS = {
    "standard": dict(acts=None, valid=None, rule=MaskedOutput.CARRY, dropout=0, reverse=[False]),
    "hard_sigmoid": dict(acts=A.hard_sigmoid_keras2, valid=None, rule=MaskedOutput.CARRY, dropout=0, reverse=[False]),
    "mask_carry": dict(acts=None, valid="holes", rule=MaskedOutput.CARRY, dropout=0, reverse=[False]),
    "seq_length_zero": dict(acts=None, valid="lengths", rule=MaskedOutput.ZERO, dropout=0, reverse=[False]),
    "recurrent_dropout_g1": dict(acts=None, valid=None, rule=MaskedOutput.CARRY, dropout=1, reverse=[False]),
    "recurrent_dropout_g4": dict(
        acts=A.hard_sigmoid_keras3, valid="holes", rule=MaskedOutput.CARRY, dropout=4, reverse=[False]
    ),
    "go_backwards": dict(acts=None, valid=None, rule=MaskedOutput.CARRY, dropout=0, reverse=[True]),
    "bidirectional": dict(
        acts=A.hard_sigmoid_keras2, valid="holes", rule=MaskedOutput.CARRY, dropout=0, reverse=[False, True]
    ),  # fmt: skip
}


def make_case(name: str, seed: int = 0, T: int = 12, B: int = 5, I: int = 9, H: int = 11):
    """Float32 leaves (x, per-direction weights, h0, c0), the step mask and dropout masks of a variant."""
    spec = VARIANTS[name]
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.5):
        return (torch.randn(*shape, generator=gen) * scale).requires_grad_()

    D = len(spec["reverse"])
    x = rnd(T, B, I, scale=1.0)
    dirs = [DirectionWeights(rnd(4 * H, I), rnd(4 * H, H), rnd(4 * H), rnd(4 * H)) for _ in range(D)]
    h0 = [rnd(B, H) for _ in range(D)]
    c0 = [rnd(B, H) for _ in range(D)]
    valid: Optional[torch.Tensor] = None
    if spec["valid"] == "holes":
        valid = torch.rand(T, B, generator=gen) > 0.3
        valid[:, 0] = True
    elif spec["valid"] == "lengths":
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        valid = torch.arange(T).unsqueeze(1) < lengths
    dropout: List[Optional[DropoutMasks]] = [None] * D
    if spec["dropout"]:
        g = spec["dropout"]
        dropout = [
            DropoutMasks(
                inputs=(torch.rand(g, B, I, generator=gen) > 0.25).float() / 0.75,
                recurrent=(torch.rand(g, B, H, generator=gen) > 0.25).float() / 0.75,
            )
            for _ in range(D)
        ]
    acts = CellActivations() if spec["acts"] is None else CellActivations(spec["acts"])
    sem = LayerSemantics(acts, masked_output=spec["rule"])
    return x, dirs, h0, c0, valid, dropout, sem, spec["reverse"]


def leaves(x, dirs, h0, c0) -> List[torch.Tensor]:
    out = [x]
    for w in dirs:
        out += [w.w_ih, w.w_hh, w.b_ih, w.b_hh]
    return out + list(h0) + list(c0)


def run_case(case, reduced: bool):
    """Outputs (concatenated over directions, h_n, c_n) and the gradients of every leaf."""
    x, dirs, h0, c0, valid, dropout, sem, reverse = case
    for t in leaves(x, dirs, h0, c0):
        t.grad = None
    if reduced:
        with autocast():
            outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    else:
        outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    results = [*outs, *hs, *cs]
    loss = sum((r.float() * torch.linspace(-1, 1, r.numel()).view(r.shape)).sum() for r in results)
    loss.backward()
    return results, [t.grad.clone() for t in leaves(x, dirs, h0, c0)]


@pytest.mark.parametrize("path", ["native", "torch"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_autocast_runs_bf16_close_to_float32(monkeypatch, path, name):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    case = make_case(name)
    ref, ref_grads = run_case(case, reduced=False)
    got, got_grads = run_case(case, reduced=True)
    assert backend.last_used == path
    for r, g in zip(ref, got):
        assert r.dtype == torch.float32 and g.dtype == BF16  # torch.nn.LSTM's rule under autocast
        err = (g.float() - r).abs().max().item()
        assert err <= OUT_TOL, f"{name}/{path}: max |bf16 - float32| = {err}"
    # the GEMMs really ran in bf16 (float32 operands would agree to ~1e-6)
    assert max((g.float() - r).abs().max().item() for r, g in zip(ref, got)) > 1e-4
    for i, (r, g) in enumerate(zip(ref_grads, got_grads)):
        assert g.dtype == r.dtype == torch.float32  # the leaves' dtype
        assert torch.isfinite(g).all()
        assert grad_error(g, r) <= GRAD_TOL, f"{name}/{path}: gradient {i}: relative error {grad_error(g, r)}"


@pytest.mark.parametrize("path", ["native", "torch"])
def test_bf16_inputs_without_autocast(monkeypatch, path):
    """A bfloat16 input and weights (a module moved to bf16): the same numerics, results in bf16."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case("bidirectional", seed=5)
    with torch.no_grad():
        ref, _, _ = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        bdirs = [DirectionWeights(*[t.to(BF16) for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh)]) for w in dirs]
        outs, hs, cs = run_layer(
            x.to(BF16), bdirs, [h.to(BF16) for h in h0], [c.to(BF16) for c in c0],
            reverse=reverse, valid=valid, semantics=sem, dropout=dropout,
        )  # fmt: skip
    assert backend.last_used == path
    assert all(t.dtype == BF16 for t in outs + hs + cs)
    for r, g in zip(ref, outs):
        assert (g.float() - r).abs().max().item() <= OUT_TOL


@pytest.mark.parametrize("path", ["native", "torch"])
def test_cell_state_stays_float32_over_long_sequences(monkeypatch, path):
    """c_t += i*g with i = f = 1 and g = 0.01 for 1000 steps reaches 10: a bf16 cell state would stall at 4
    (0.01 is below half of bf16's spacing there); the bf16 GEMM operands are exact here (zeros, 0.01 bias)."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    T, B, I, H = 1000, 2, 3, 4
    bias = torch.cat([torch.full((H,), 30.0), torch.full((H,), 30.0), torch.full((H,), 0.01), torch.zeros(H)])
    w = DirectionWeights(torch.zeros(4 * H, I), torch.zeros(4 * H, H), bias, None)
    x = torch.randn(T, B, I)
    sem = LayerSemantics(CellActivations(A.sigmoid, A.linear, A.tanh))  # g = 0.01 exactly (linear candidate)
    zeros = torch.zeros(B, H)
    with torch.no_grad(), autocast():
        _, _, (c_n,) = run_layer(x, [w], [zeros], [zeros], reverse=[False], semantics=sem)
    assert backend.last_used == path
    assert c_n.dtype == BF16
    expected = T * 0.01
    assert abs(c_n.float().mean().item() - expected) <= 0.01 * expected  # bf16 rounding of the result only


def test_autocast_off_leaves_float32_bits_unchanged(monkeypatch):
    """A float32 call gives the same bits before and after bf16 calls (no plan or workspace carried over),
    and with autocast explicitly disabled."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case("hard_sigmoid", seed=7, T=40, B=24, I=64, H=48)
    with torch.no_grad():
        first = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        with autocast():
            reduced = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        again = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        with torch.autocast("cpu", dtype=BF16, enabled=False):
            off = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    for a, b, c, r in zip(sum(first, []), sum(again, []), sum(off, []), sum(reduced, [])):
        assert a.dtype == torch.float32 and r.dtype == BF16
        assert torch.equal(a, b) and torch.equal(a, c)
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")
    with torch.no_grad():
        ref = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    for a, r in zip(sum(first, []), sum(ref, [])):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)  # float32 precision, not bf16's


# --- dtype rules -----------------------------------------------------------------------------------------


def test_reduced_dtype_rules():
    x = torch.zeros(2, 3, 4)
    assert reduced_dtype(x) is None
    assert reduced_dtype(x.to(BF16)) is BF16 and reduced_dtype(x.half()) is torch.float16
    with autocast():
        assert reduced_dtype(x) is BF16
        assert reduced_dtype(x.double()) is None  # autocast leaves float64 alone
    with torch.autocast("cpu", dtype=torch.float16):
        assert reduced_dtype(x) is torch.float16


def test_float16_autocast_takes_the_torch_path_and_returns_float16(monkeypatch):
    """No float16 dot product here: auto runs the torch path (float16 GEMMs, float32 state); native refuses."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case("hard_sigmoid", seed=2)
    with torch.no_grad():
        ref, _, _ = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        with torch.autocast("cpu", dtype=torch.float16):
            outs, hs, cs = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    assert backend.last_used == "torch"
    assert all(t.dtype == torch.float16 for t in outs + hs + cs)
    assert (outs[0].float() - ref[0]).abs().max().item() <= 5e-3
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    with pytest.raises(NotImplementedError, match="bfloat16 only; received torch.float16"):
        with torch.autocast("cpu", dtype=torch.float16):
            run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)


def test_float64_is_never_reduced(monkeypatch):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case("hard_sigmoid", seed=2)
    d64 = [DirectionWeights(*[t.double() for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh)]) for w in dirs]
    args = (x.double(), d64, [h.double() for h in h0], [c.double() for c in c0])
    with torch.no_grad():
        ref = run_layer(*args, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        with autocast():
            got = run_layer(*args, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    for a, b in zip(sum(ref, []), sum(got, [])):
        assert b.dtype == torch.float64 and torch.equal(a, b)


# --- the front ends ---------------------------------------------------------------------------------------


def keras_layers(variant: str, torch_lstm: torch.nn.LSTM):
    """A Keras-front-end layer with torch_lstm's weights (canonical i, f, g, o)."""
    options = {"hard_sigmoid": {"recurrent_activation": "hard_sigmoid"}, "go_backwards": {"go_backwards": True}}
    inner = keras.LSTM(torch_lstm.hidden_size, return_sequences=True, **options.get(variant, {}))
    layer = keras.Bidirectional(inner) if variant == "bidirectional" else inner
    x = torch.zeros(1, 1, torch_lstm.input_size)
    layer(x)  # build
    return layer


@pytest.mark.parametrize("path", ["native", "torch"])
@pytest.mark.parametrize("variant", ["standard", "hard_sigmoid", "mask", "go_backwards", "bidirectional"])
def test_keras_front_end_under_autocast(monkeypatch, path, variant):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    torch.manual_seed(11)
    layer = keras_layers(variant, torch.nn.LSTM(10, 16))
    x = torch.randn(6, 15, 10)
    mask = torch.rand(6, 15) > 0.25 if variant == "mask" else None
    ref = layer(x, mask=mask)
    with autocast():
        got = layer(x, mask=mask)
    assert got.dtype == BF16
    assert (got.float() - ref).abs().max().item() <= OUT_TOL
    with autocast():
        loss = layer(x, mask=mask).float().square().sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    layer.zero_grad()
    layer(x, mask=mask).square().sum().backward()
    for n, p in layer.named_parameters():
        assert torch.isfinite(grads[n]).all()
        assert grad_error(grads[n], p.grad) <= GRAD_TOL, n


def test_keras_standard_lstm_matches_torch_nn_lstm_dtype_under_autocast():
    """The dtype torch.nn.LSTM returns under autocast is what the layer returns (bf16 for all results)."""
    reference = torch.nn.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    layer = keras.LSTM(5, return_sequences=True, return_state=True)
    with autocast():
        y, (h, c) = reference(x)
        ours = layer(x)
    assert [t.dtype for t in ours] == [y.dtype, h.dtype, c.dtype] == [BF16] * 3


@pytest.mark.parametrize("path", ["native", "torch"])
@pytest.mark.parametrize("variant", ["standard", "seq_length", "bidirectional_2_layers"])
def test_mindspore_front_end_under_autocast(monkeypatch, path, variant):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    torch.manual_seed(3)
    layers, bidir = (2, True) if variant == "bidirectional_2_layers" else (1, False)
    net = mindspore.LSTM(8, 12, num_layers=layers, batch_first=True, bidirectional=bidir)
    x = torch.randn(4, 10, 8)
    lengths = torch.tensor([10, 7, 3, 9], dtype=torch.int32) if variant == "seq_length" else None
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")  # float32 standard: oneDNN's bits, whatever the path
    ref = net(x, seq_length=lengths) if lengths is not None else net(x)
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    with autocast():
        got = net(x, seq_length=lengths) if lengths is not None else net(x)
    assert backend.last_used == path
    out, (h, c) = got
    assert out.dtype == h.dtype == c.dtype == BF16
    for r, g in zip((ref[0], *ref[1]), (out, h, c)):
        assert (g.float() - r).abs().max().item() <= OUT_TOL


def test_mindspore_bf16_input_keeps_its_float32_compute_rule():
    """MindSpore's LSTM computes bfloat16/float16 inputs in float32 (its own rule, unchanged): results are
    the float32 ones rounded to the input's dtype."""
    net = mindspore.LSTM(8, 12, batch_first=True)
    x = torch.randn(3, 6, 8).to(BF16)
    out, (h, c) = net(x)
    ref, _ = net(x.float())
    assert out.dtype == BF16
    assert torch.equal(out, ref.to(BF16))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize(
    "make", [lambda: keras.GRU(7, return_sequences=True), lambda: keras.SimpleRNN(7)], ids=["gru", "rnn"]
)
def test_keras_gru_and_simple_rnn_modules_in_16_bits_run_as_their_float32_twin_under_autocast(make, dtype):
    """A Keras GRU/SimpleRNN converted with ``.to(bfloat16/float16)`` (was: TypeError "x must be float32"):
    the float32 layer holding the same (rounded) weights, called under that dtype's CPU autocast, results
    rounded to the 16-bit dtype - bit for bit; gradients reach the 16-bit weights and input."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    low = make()
    low(x)
    low = low.to(dtype)
    twin = make()
    twin(x)
    twin.load_state_dict({k: v.float() for k, v in low.state_dict().items()})
    x16 = x.to(dtype).requires_grad_(True)
    got = low(x16)
    with torch.autocast("cpu", dtype=dtype):
        want = twin(x16.detach().float())
    assert got.dtype == dtype
    assert torch.equal(got, want.to(dtype))
    got.float().square().sum().backward()
    assert x16.grad is not None and x16.grad.dtype == dtype
    assert all(p.grad is not None and p.grad.dtype == dtype for p in low.parameters())


# --- the kernel's bf16 GEMM -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (130, 67, 129), (64, 512, 256)])
def test_bf16_matmul_rounds_operands_and_accumulates_in_float32(shape):
    """The kernel's bf16 GEMM equals float64 products of the bf16-rounded operands up to float32 summation
    (each product of two bf16 values is exact in float32)."""
    ext = native.module()
    M, K, N = shape
    gen = torch.Generator().manual_seed(M + K + N)
    a, w = torch.randn(M, K, generator=gen), torch.randn(N, K, generator=gen)
    got = ext.matmul_nt_bf16(a, w)
    exact = a.to(BF16).double() @ w.to(BF16).double().t()
    bound = (a.to(BF16).double().abs() @ w.to(BF16).double().abs().t()) * (K * 2.0**-23) + 1e-30
    assert got.dtype == torch.float32
    assert ((got.double() - exact).abs() <= bound).all()
    assert not torch.equal(got, a @ w.t()) or K == 1  # not a float32 GEMM
    out = torch.empty(M * N)
    assert ext.matmul_nt_bf16(a.to(BF16), w, out) is not None and torch.equal(out.view(M, N), got)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (130, 67, 129), (64, 512, 256), (33, 0, 10)])
def test_bf16_matmul_adds_the_bias_to_the_float32_product(shape):
    """``bias`` joins as the product is stored: bit for bit ``(a w^T) + bias`` in float32 (the kernel's own
    order when it adds the bias itself), float32 or bfloat16 bias, into ``out`` or a new tensor."""
    ext = native.module()
    M, K, N = shape
    gen = torch.Generator().manual_seed(M + K + N)
    a, w, b = torch.randn(M, K, generator=gen), torch.randn(N, K, generator=gen), torch.randn(N, generator=gen)
    assert torch.equal(ext.matmul_nt_bf16(a, w, None, b), ext.matmul_nt_bf16(a, w) + b)
    out = torch.empty(M * N)
    ext.matmul_nt_bf16(a.to(BF16), w, out, b.to(BF16))
    assert torch.equal(out.view(M, N), ext.matmul_nt_bf16(a, w) + b.to(BF16).float())
    with pytest.raises(
        RuntimeError, match=rf"bias must be a CPU float32/bfloat16 \({N}\) tensor; received \[{N + 1}\]"
    ):
        ext.matmul_nt_bf16(a, w, None, torch.zeros(N + 1))


@pytest.mark.parametrize("B, T, I, N", [(32, 6, 40, 200), (12, 3, 9, 64), (11, 4, 8, 130), (2, 5, 6, 70)])
def test_bf16_matmul_reads_time_major_views_in_place(B, T, I, N):
    """A float32 ``(T, B, K)`` view (a batch-first input seen time-major) gives rows ``(t, b)``, bit for bit the
    product of its contiguous ``(T*B, K)`` copy, with and without a bias, into a new tensor or ``out``, read in
    place; a bfloat16 view too where its rows are the micro-kernel's pairs (K even), else copied."""
    ext = native.module()
    gen = torch.Generator().manual_seed(B + T)
    x, w, b = torch.randn(B, T, I, generator=gen), torch.randn(N, I, generator=gen), torch.randn(N, generator=gen)
    xt = x.transpose(0, 1)
    rows = xt.reshape(T * B, I)
    assert torch.equal(ext.matmul_nt_bf16(xt, w), ext.matmul_nt_bf16(rows, w))
    out = torch.full((T * B * N,), float("nan"))
    ext.matmul_nt_bf16(xt, w, out, b)
    assert torch.equal(out.view(T * B, N), ext.matmul_nt_bf16(rows, w, None, b))
    assert torch.equal(ext.matmul_nt_bf16(xt.to(BF16), w), ext.matmul_nt_bf16(rows.to(BF16), w))
    with pytest.raises(RuntimeError, match=r"a \(M, K\) or \(T, B, K\) and w \(N, K\)"):
        ext.matmul_nt_bf16(x[None], w)


def test_bf16_matmul_large_fresh_output():
    """A new output of 32 MiB or more (a training forward's projection) is asked for in huge pages (advice
    only): the values are the same as written into a given buffer."""
    ext = native.module()
    M, K, N = 4100, 3, 2048  # 33.6 MB of float32
    gen = torch.Generator().manual_seed(4)
    a, w, b = torch.randn(M, K, generator=gen), torch.randn(N, K, generator=gen), torch.randn(N, generator=gen)
    got = ext.matmul_nt_bf16(a, w, None, b)
    out = torch.empty(M * N)
    ext.matmul_nt_bf16(a, w, out, b)
    assert got.shape == (M, N) and torch.equal(got, out.view(M, N))
    exact = a.to(BF16).double() @ w.to(BF16).double().t() + b.double()
    assert (got.double() - exact).abs().max().item() <= 1e-4


def _rounding_probe(K: int, N: int, seed: int) -> torch.Tensor:
    """(N, K) float32 values over many binades, with exact bf16 ties (both parities) and zeros (a -0.0 weight
    would read back as +0.0: the accumulator starts at +0.0)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(N, K, generator=gen) * torch.pow(2.0, torch.randint(-60, 60, (N, K), generator=gen).float())
    base = torch.randn(N, K, generator=gen).to(BF16).float()
    ties = (base.view(torch.int32) + 0x8000).view(torch.float32)  # halfway between two bf16 values
    pick = torch.randint(0, 3, (N, K), generator=gen)
    w = torch.where(pick == 1, ties, w)
    w[0, :] = 0.0
    return w


@pytest.mark.parametrize("K, N", [(1, 1), (7, 5), (129, 67), (256, 130), (64, 1024)])
def test_bf16_weight_packing_rounds_like_torch_in_every_layout(K, N):
    """The bf16 pack of W (vectorised for unit-stride rows or columns, scalar otherwise) rounds exactly as
    ``Tensor.to(torch.bfloat16)``: eye(K) @ W^T returns W rounded, for W contiguous, transposed (a Keras
    kernel seen as W) and with no unit stride; the recurrence's packs share the code."""
    ext = native.module()
    w = _rounding_probe(K, N, seed=K * N)
    expected = w.to(BF16).float().t()
    eye = torch.eye(K)
    wide = torch.zeros(N, 2 * K)
    wide[:, ::2] = w
    for layout in (w, w.t().contiguous().t(), wide[:, ::2]):
        assert torch.equal(layout, w)
        got = ext.matmul_nt_bf16(eye, layout)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), "bf16 rounding differs"


@pytest.mark.parametrize("name", ["hard_sigmoid", "recurrent_dropout_g4", "bidirectional"])
def test_bf16_kernel_is_layout_independent(monkeypatch, name):
    """The same weights as contiguous tensors, transposed views (the Keras layout) and views without a unit
    stride give the same bits in every output and gradient (the forward and backward packs of W_hh, the
    projection's pack of W_ih)."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case(name, seed=3, T=9, B=13, I=21, H=70)

    def transposed(w: torch.Tensor) -> torch.Tensor:
        return w.detach().t().contiguous().t().requires_grad_()

    def strided(w: torch.Tensor) -> torch.Tensor:
        wide = torch.zeros(w.shape[0], 3 * w.shape[1])
        wide[:, ::3] = w.detach()
        return wide.requires_grad_()[:, ::3]

    def run(layout):
        ws = [(layout(w.w_ih), layout(w.w_hh)) for w in dirs]
        d = [DirectionWeights(wi, wh, w.b_ih, w.b_hh) for (wi, wh), w in zip(ws, dirs)]
        with autocast():
            outs, hs, cs = run_layer(x, d, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        results = [*outs, *hs, *cs]
        loss = sum((r.float() * torch.linspace(-1, 1, r.numel()).view(r.shape)).sum() for r in results)
        inputs = [x, *h0, *c0, *[t for pair in ws for t in pair]]
        assert backend.last_used == "native"
        return results + list(torch.autograd.grad(loss, inputs))

    reference = run(lambda w: w)
    for layout in (transposed, strided):
        for r, g in zip(reference, run(layout)):
            assert torch.equal(r, g)


@pytest.mark.parametrize("path", ["native", "torch"])
def test_bf16_bias_of_one_direction_only(monkeypatch, path):
    """Biases on one direction of a bidirectional layer (the kernel adds them as the projection is stored,
    zeros for the other direction): close to float32 and to the other engine path."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", path)
    x, dirs, h0, c0, valid, dropout, sem, reverse = make_case("bidirectional", seed=9)
    dirs = [dirs[0], DirectionWeights(dirs[1].w_ih, dirs[1].w_hh, None, None)]
    with torch.no_grad():
        ref = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
        with autocast():
            got = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    assert backend.last_used == path
    for r, g in zip(sum(ref, []), sum(got, [])):
        assert g.dtype == BF16 and (g.float() - r).abs().max().item() <= OUT_TOL
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch" if path == "native" else "native")
    with torch.no_grad(), autocast():
        other = run_layer(x, dirs, h0, c0, reverse=reverse, valid=valid, semantics=sem, dropout=dropout)
    for a, b in zip(sum(got, []), sum(other, [])):
        assert (a.float() - b.float()).abs().max().item() <= 1e-2


# --- the bench's bf16 rows ---------------------------------------------------------------------------------


def test_bench_bf16_rows_smoke(tmp_path):
    """``python -m lstm_bridge.bench.bf16 --quick``: one row per (config, variant, mode) with the four
    participants, the ratios and the forward error (a smoke test: toy sizes, timings meaningless)."""
    from lstm_bridge.bench import bf16 as bench_bf16

    argv = ["--quick", "--configs", "small", "--variants", "hard_sigmoid,seq_length", "--out", str(tmp_path)]
    assert bench_bf16.main(argv) == 0
    text = (tmp_path / "bf16.md").read_text()
    assert "| small | hard_sigmoid | forward |" in text and "| small | seq_length | train |" in text
    import json

    rows = json.loads((tmp_path / "bf16.json").read_text())
    assert len(rows) == 4
    for row in rows:
        assert set(row["ms"]) == {"ours f32", "ours bf16", "torch f32", "torch bf16"}
        assert row["speedup"]["median"] > 0 and row["vs_torch_bf16"]["median"] > 0
        if row["mode"] == "forward":
            assert 0 < row["error"] <= OUT_TOL
    shaped = tmp_path / "shape"
    argv = ["--quick", "--shape", "5,3,4,6", "--variants", "mask", "--modes", "forward", "--out", str(shaped)]
    assert bench_bf16.main(argv) == 0
    assert [r["config"] for r in json.loads((shaped / "bf16.json").read_text())] == ["5,3,4,6"]
    with pytest.raises(SystemExit):
        bench_bf16.main(["--quick", "--configs", "huge"])


def test_compiled_and_exported_layers_honour_autocast(monkeypatch):
    """Traced calls (torch.compile fullgraph, torch.export) record the bf16 layer under autocast: bf16
    results equal to eager's under the same autocast, gradients in the leaves' float32."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    torch.manual_seed(4)
    layer = keras.LSTM(8, return_sequences=True, recurrent_activation="hard_sigmoid")
    x = torch.randn(2, 5, 4)
    with autocast():
        eager = layer(x)
        exported = torch.export.export(layer, (x,)).module()(x)
        compiled = torch.compile(layer, fullgraph=True)
        xr = x.clone().requires_grad_()
        got = compiled(xr)
    assert eager.dtype == exported.dtype == got.dtype == BF16
    torch.testing.assert_close(exported, eager, rtol=0, atol=0)
    torch.testing.assert_close(got, eager, rtol=2e-2, atol=1e-2)  # inductor may fuse the casts differently
    got.float().sum().backward()
    assert xr.grad is not None and xr.grad.dtype == torch.float32 and torch.isfinite(xr.grad).all()


@pytest.mark.parametrize("G, H, D", [(0, 6, 1), (1, 6, 1), (4, 6, 1), (4, 5, 1), (0, 6, 2), (4, 5, 2)])
def test_bf16_backward_returns_rounded_dz_and_float32_bias_sums(G, H, D):
    """A bf16 layer's kernel backward returns ``[dZ, db]``: dZ rounded once to bfloat16 (what the GEMMs after
    the loop read) and the bias gradients summed in float32 from the unrounded dZ. For one step (T = 1: the
    float32 kernel's dZ is the same numbers) dZ is bit for bit the float32 kernel's rounded, db its column
    sums, masked rows zeros, and dh0 the bf16 GEMM of the rounded dZ (per-gate masks: an odd H splits the
    pairs and takes the float32 rows instead, to the same values)."""
    from lstm_bridge.engine.native.function import make_plan

    ext = native.module()
    B, S = 7, 4 * H * D
    gen = torch.Generator().manual_seed(G * 100 + H * 10 + D)
    gates = torch.rand(1, B, S, generator=gen)
    valid = torch.ones(1, B, dtype=torch.uint8)
    valid[0, 2] = 0
    gout = [torch.randn(1, B, H, generator=gen) for _ in range(D)]
    ghn = [torch.randn(B, H, generator=gen) for _ in range(D)]
    gcn = [torch.randn(B, H, generator=gen) for _ in range(D)]
    cprev = [torch.randn(1, B, H, generator=gen) for _ in range(D)]
    w = [torch.randn(4 * H, H, generator=gen) for _ in range(D)]
    masks = [(torch.rand(G, B, H, generator=gen) > 0.3).float() / 0.7 if G else torch.empty(0) for _ in range(D)]
    args = (gates, gout, ghn, gcn, cprev, w, valid, masks)
    reverse, acts = [False, True][:D], [0, 1, 1]
    (dz32, db32), _, _ = ext.backward(make_plan([H] * D, reverse, acts, True, torch.float32, True).cfg, *args)
    (dz16, db), dh0, _ = ext.backward(make_plan([H] * D, reverse, acts, True, BF16, True).cfg, *args)
    assert dz16.dtype == BF16 and db.dtype == torch.float32 and db.shape == (S,)
    assert torch.equal(dz16.view(torch.int16), dz32.to(BF16).view(torch.int16))
    assert not dz16[0, 2].any()
    torch.testing.assert_close(db, dz32.sum((0, 1)), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(db32, dz32.sum((0, 1)), rtol=1e-6, atol=1e-6)  # the float32 layer's own sums
    keep = valid[0].bool().unsqueeze(1)
    for d in range(D):
        dz = dz16[0, :, 4 * H * d : 4 * H * (d + 1)].double().view(B, 4, H)
        wq = w[d].to(BF16).double().view(4, H, H)
        per_gate = torch.stack([dz[:, q] @ wq[q] for q in range(4)])  # (4, B, H)
        m = masks[d].double()
        dh = (per_gate * m).sum(0) if G == 4 else per_gate.sum(0) * (m[0] if G == 1 else 1.0)
        expected = torch.where(keep, dh, ghn[d].double())  # a masked step passes dh through
        torch.testing.assert_close(dh0[d].double(), expected, rtol=1e-5, atol=1e-5)


def test_bf16_layer_tanh_and_sigmoid_are_the_rational_approximation():
    """A bf16 layer's tanh and sigmoid (0.5 tanh(x/2) + 0.5) are a rational approximation within 3e-7 of the
    exact functions (bf16's GEMM operands carry 2^-9), not the float32 layer's: ``apply_activation(.., bf16=True)``
    is that function, and the kernel's bf16 recurrence applies it (W_hh = 0 and h0 = 0, so the step GEMM
    adds exact zeros: the outputs equal the recurrence written out in float32 with it, bit for bit, the
    per-step outputs rounded to bfloat16 by the kernel, h_n/c_n float32)."""
    ext = native.module()
    grid = torch.cat([torch.linspace(-20, 20, 40001), torch.tensor([0.0, -0.0, 1e-5, -3e-4, 7.9, 7.91, -8.0])])
    for act, exact in ((A.tanh, torch.tanh), (A.sigmoid, torch.sigmoid)):
        got = ext.apply_activation(act.native_id, grid, True)
        assert (got.double() - exact(grid.double())).abs().max().item() <= 3e-7
        assert not torch.equal(got, ext.apply_activation(act.native_id, grid))  # a different function
    specials = ext.apply_activation(A.tanh.native_id, torch.tensor([float("nan"), float("inf"), -float("inf")]), True)
    assert specials[0].isnan() and abs(specials[1].item() - 1) <= 3e-7 and abs(specials[2].item() + 1) <= 3e-7
    from lstm_bridge.engine.native.function import make_plan

    T, B, H = 4, 3, 21
    gen = torch.Generator().manual_seed(8)
    xp = torch.randn(T, B, 4 * H, generator=gen) * 3
    c0 = torch.randn(B, H, generator=gen)
    sig, tanh = A.sigmoid.native_id, A.tanh.native_id
    plan = make_plan([H], [False], [sig, tanh, tanh], True, BF16, False)
    zeros, empty = torch.zeros(B, H), torch.empty(0)
    no_valid = torch.empty(0, dtype=torch.uint8)
    (out,), _, (c_n,), _, _ = ext.forward(
        plan.cfg, xp.clone(), [torch.zeros(4 * H, H)], [zeros], [c0], no_valid, [empty], [empty]
    )

    def act(i: int, v: torch.Tensor) -> torch.Tensor:
        return ext.apply_activation(i, v.contiguous(), True)

    c = c0
    for t in range(T):
        z = xp[t]
        i, f, g, o = (
            act(sig, z[:, :H]),
            act(sig, z[:, H : 2 * H]),
            act(tanh, z[:, 2 * H : 3 * H]),
            act(sig, z[:, 3 * H :]),
        )
        c = f * c + i * g
        assert torch.equal(out[t], (o * act(tanh, c)).to(BF16))  # the outputs come rounded to bf16
    assert out.dtype == BF16 and c_n.dtype == torch.float32 and torch.equal(c_n, c)


def test_bf16_layer_hard_sigmoids_keep_the_float32_values():
    """A bf16 layer's Keras 2/3 hard sigmoids (plain compares instead of at::vec's NaN-propagating clamps)
    are the float32 layer's values bit for bit, NaN kept, at every vector position (tail included)."""
    ext = native.module()
    grid = torch.cat(
        [torch.linspace(-10, 10, 20011), torch.tensor([float("inf"), -float("inf"), -0.0, 2.5, -2.5, 3.0])]
    )
    for act in (A.hard_sigmoid_keras2, A.hard_sigmoid_keras3):
        got = ext.apply_activation(act.native_id, grid, True)
        assert torch.equal(got.view(torch.int32), ext.apply_activation(act.native_id, grid).view(torch.int32))
        assert ext.apply_activation(act.native_id, torch.full((19,), float("nan")), True).isnan().all()
