"""The native kernel as registered custom ops: opcheck, torch.compile(fullgraph), torch.export with dynamic
batch and time, torch.jit.trace, the dynamo ONNX exporter with onnxruntime, saved-tensor hooks and
checkpointing through the op, and what the exporters refuse.

Compiling costs tens of seconds on a small machine: the compile tests are few and small.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch.export import Dim

import lstm_bridge.keras as K
import lstm_bridge.mindspore as M
from lstm_bridge.engine import backend
from lstm_bridge.engine.guards import check_range
from lstm_bridge.engine.native import ops

from helpers import require_native_kernel, run_fresh


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    """Build (or load) the kernel once; a failed build with a toolchain present is a test failure."""
    require_native_kernel()


# --- modules under test ------------------------------------------------------------------------------


class KerasMasked(torch.nn.Module):
    """Keras LSTM, hard_sigmoid gates, a (B, T) mask, all three returns."""

    def __init__(self, units: int = 6, **kw):
        super().__init__()
        self.layer = K.LSTM(units, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True, **kw)

    def forward(self, x, mask):
        out, h, c = self.layer(x, mask=mask)
        return out, h, c


class KerasPlain(torch.nn.Module):
    def __init__(self, units: int = 6, **kw):
        super().__init__()
        self.layer = K.LSTM(units, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True, **kw)

    def forward(self, x):
        out, h, c = self.layer(x)
        return out, h, c


class MsLengths(torch.nn.Module):
    """MindSpore LSTM (default numerics) with seq_length, batch_first."""

    def __init__(self, bidirectional: bool = True, num_layers: int = 1):
        super().__init__()
        self.net = M.LSTM(3, 5, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, x, lengths):
        out, (h, c) = self.net(x, seq_length=lengths)
        return out, h, c


def _keras_inputs(B: int = 3, T: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 4, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - 2 :] = False
    mask[-1, 1] = False  # a hole: Keras masks need not be right padding
    return x, mask


def _ms_inputs(B: int = 3, T: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 3, generator=g)
    lengths = torch.tensor([T, 2, 0, T - 1, 1, 3][:B], dtype=torch.int32)
    return x, lengths


def _close(got, want, atol=1e-5):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=atol)


def _grads(module, outputs):
    loss = sum((o * (i + 1)).sum() for i, o in enumerate(outputs))
    params = [p for p in module.parameters()]
    return torch.autograd.grad(loss, params)


# --- opcheck ------------------------------------------------------------------------------------------


def _op_args(
    D: int = 2,
    masked: bool = True,
    bias: bool = True,
    dropout: bool = False,
    requires_grad: bool = True,
    dtype: torch.dtype = torch.float32,
):
    g = torch.Generator().manual_seed(3)
    T, B, I, H = 4, 3, 5, 6

    def r(*shape):
        return torch.randn(*shape, generator=g).to(dtype).requires_grad_(requires_grad)

    x = r(T, B, I)
    w_ih = [r(4 * H, I) for _ in range(D)]
    w_hh = [r(4 * H, H) for _ in range(D)]
    b_ih = [r(4 * H) for _ in range(D)] if bias else []
    b_hh = [r(4 * H) for _ in range(D)] if bias else []
    h0 = [r(B, H) for _ in range(D)]
    c0 = [r(B, H) for _ in range(D)]
    valid = None
    if masked:
        valid = torch.ones(T, B, dtype=torch.bool)
        valid[2:, 1] = False
    in_masks = [(torch.rand(1, B, I, generator=g) > 0.3).float() for _ in range(D)] if dropout else []
    rec_masks = [(torch.rand(4, B, H, generator=g) > 0.3).float() for _ in range(D)] if dropout else []
    has_bias = [int(bias)] * (2 * D)
    has_mask = [int(dropout)] * (2 * D)
    reverse = [0, 1][:D]
    save = requires_grad
    return (
        x,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        has_bias,
        h0,
        c0,
        valid,
        in_masks,
        rec_masks,
        has_mask,
        reverse,
        [2, 1, 6],
        True,
        save,
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(D=1, masked=False),
        dict(bias=False, dropout=True),
        dict(requires_grad=False),
        dict(dtype=torch.bfloat16),
        dict(dtype=torch.bfloat16, dropout=True),
    ],
    ids=["bi-masked", "uni", "nobias-dropout", "inference", "bf16", "bf16-dropout"],
)
def test_opcheck_lstm_layer(kw):
    """Schema, fake kernel, autograd registration and AOT dispatch (dynamic shapes) of the forward op, float32
    and a bf16 layer (bfloat16 outputs, float32 gates and saved states, in the fake kernel too)."""
    torch.library.opcheck(torch.ops.lstm_bridge.lstm_layer.default, _op_args(**kw))


def test_opcheck_backward_op_and_check_range():
    args = _op_args(requires_grad=False)
    x, w_ih, w_hh, b_ih, b_hh, has_bias, h0, c0, valid, in_masks, rec_masks, has_mask, reverse, acts, carry, _ = args
    res = torch.ops.lstm_bridge.lstm_layer(
        x, w_ih, w_hh, b_ih, b_hh, has_bias, h0, c0, valid, in_masks, rec_masks, has_mask, reverse, acts, carry, True
    )
    D = 2
    outs, gates, c_prev, h_prev = res[:D], res[3 * D], res[3 * D + 1 : 4 * D + 1], res[4 * D + 1 :]
    grads = [torch.ones_like(o) for o in outs]
    states = [torch.ones_like(h) for h in h0]
    need = [1] * (1 + 6 * D)
    bwd_args = (grads, states, states, x, w_ih, w_hh, gates, c_prev, h_prev, valid, in_masks, rec_masks, has_mask)
    torch.library.opcheck(torch.ops.lstm_bridge.lstm_layer_backward.default, (*bwd_args, reverse, acts, carry, need))
    torch.library.opcheck(torch.ops.lstm_bridge.check_range.default, (torch.tensor([0, 3, 5]), 0, 5, "{index}"))


def test_check_range_refuses_out_of_range_values_with_the_message():
    with pytest.raises(RuntimeError, match=r"seq_length\[1\] = 7 > 5"):
        check_range(torch.tensor([2, 7, 9]), 0, 5, "seq_length[{index}] = {value} > {high}")
    assert check_range(torch.tensor([2, 5], dtype=torch.int32), 0, 5, "").dtype == torch.int64


def _python_frames_of(call) -> set:
    """The source files of every Python frame entered while ``call()`` runs."""
    import sys

    files = set()

    def profile(frame, event, arg):
        if event == "call":
            files.add(frame.f_code.co_filename)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return files


@pytest.mark.parametrize("op_name", ["lstm_layer", "family_layer"])
def test_an_unrecorded_op_call_runs_the_kernel_without_torchs_python_wrappers(op_name):
    """What a compiled or exported program runs in inference: the op's autograd kernel calls the CPU kernel
    directly (no redispatch through torch.library's Python autograd wrapper and its per-call backend wrapper,
    ~12 us of the op's ~21 us of dispatch on the small bench config), and gives the same bits as the
    redispatched call a TorchDispatchMode forces."""
    if op_name == "lstm_layer":
        op, args = torch.ops.lstm_bridge.lstm_layer.default, _op_args(requires_grad=False)
    else:
        op, args = torch.ops.lstm_bridge.family_layer.default, _family_op_args(0, requires_grad=False)
    with torch.no_grad():
        files = _python_frames_of(lambda: op(*args))
        assert not [f for f in files if os.sep + "_library" + os.sep in f], sorted(files)
        direct = op(*args)

        class Seen(torch.utils._python_dispatch.TorchDispatchMode):
            ops: list = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                Seen.ops.append(func)
                return func(*args, **(kwargs or {}))

        with Seen():  # a mode below autograd still sees the op (the redispatch path)
            moded = op(*args)
    assert op in Seen.ops
    for a, b in zip(direct, moded):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch.no_grad():  # the lean inference entry == the general forward (save=True: gates and states kept)
        general = op(*args[:-1], True)
    D = 2
    n = 3 * D if op_name == "lstm_layer" else 2 * D
    for a, b in zip(direct[:n], general[:n]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch._subclasses.fake_tensor.FakeTensorMode() as mode:  # and fake tensors reach the fake kernel
        fake = op(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else
                    [mode.from_tensor(t) for t in a] if isinstance(a, list) and a and isinstance(a[0], torch.Tensor)
                    else a for a in args])  # fmt: skip
    assert [tuple(t.shape) for t in fake] == [tuple(t.shape) for t in direct]


def test_op_equals_the_eager_function_forward_and_backward():
    """The op path (what traced graphs run) and the eager autograd.Function give the same bits."""
    args = _op_args(dropout=True)
    x, w_ih, w_hh, b_ih, b_hh, _, h0, c0, valid, in_masks, rec_masks, _, reverse, acts, carry, _ = args
    leaves = [x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0]

    def via_op():
        return ops.run(x, w_ih, w_hh, b_ih, b_hh, h0, c0, valid=valid, in_masks=in_masks, rec_masks=rec_masks,
                       reverse=reverse, acts=acts, carry=carry)  # fmt: skip

    def via_function():
        from lstm_bridge.engine.native import function
        from lstm_bridge.engine.native.plan import LayerArgs

        plan = function.make_plan([6, 6], reverse, acts, carry, x.dtype, True)
        args = LayerArgs(x, tuple(w_ih), tuple(w_hh), tuple(b_ih), tuple(b_hh), tuple(h0), tuple(c0))
        return function.apply(plan, args, function.kernel_masks(valid, in_masks, rec_masks))

    results = []
    for run in (via_op, via_function):
        outs, hs, cs = run()
        loss = sum((t * (i + 1)).sum() for i, t in enumerate([*outs, *hs, *cs]))
        results.append(([*outs, *hs, *cs], torch.autograd.grad(loss, leaves)))
    for a, b in zip(results[0][0] + list(results[0][1]), results[1][0] + list(results[1][1])):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- saved tensors through the op ---------------------------------------------------------------------


def test_saved_tensors_hooks_see_every_tensor_the_op_saves():
    """Every tensor backward reads goes through save_for_backward: a pack hook that offloads (copies) them
    sees x, the weights, the gates, the per-step states, the step mask and the dropout masks, and the
    gradients are unchanged."""
    args = _op_args(dropout=True)
    x, w_ih, w_hh, b_ih, b_hh, _, h0, c0, valid, in_masks, rec_masks, _, reverse, acts, carry, _ = args
    leaves = [x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0]
    packed = []

    def pack(t):
        packed.append(t)
        return t.clone()  # offload: backward must use what unpack returns

    def run(hooks):
        if hooks:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                outs, hs, cs = ops.run(x, w_ih, w_hh, b_ih, b_hh, h0, c0, valid=valid, in_masks=in_masks,
                                       rec_masks=rec_masks, reverse=reverse, acts=acts, carry=carry)  # fmt: skip
        else:
            outs, hs, cs = ops.run(x, w_ih, w_hh, b_ih, b_hh, h0, c0, valid=valid, in_masks=in_masks,
                                   rec_masks=rec_masks, reverse=reverse, acts=acts, carry=carry)  # fmt: skip
        loss = sum((t * (i + 1)).sum() for i, t in enumerate([*outs, *hs, *cs]))
        return torch.autograd.grad(loss, leaves)

    want = run(False)
    got = run(True)
    D, T, B, H = 2, 4, 3, 6
    shapes = sorted(tuple(t.shape) for t in packed)
    expected = sorted(
        [(T, B, 5)] + [(4 * H, 5)] * D + [(4 * H, H)] * D + [(T, B, 4 * H * D)] + [(T, B, H)] * (2 * D)
        + [(T, B)] + [(1, B, 5)] * D + [(4, B, H)] * D
    )  # fmt: skip
    assert shapes == expected
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_checkpoint_recomputes_the_op():
    args = _op_args()
    x, w_ih, w_hh, b_ih, b_hh, _, h0, c0, valid, _, _, _, reverse, acts, carry, _ = args
    in_masks = rec_masks = [None, None]
    leaves = [x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0]
    calls = []

    def layer(*flat):
        calls.append(1)
        x, w1, w2, w3, w4, b1, b2, b3, b4, h1, h2, c1, c2 = flat
        ws = ([w1, w2], [w3, w4], [b1, b2], [b3, b4], [h1, h2], [c1, c2])
        outs, hs, cs = ops.run(x, *ws, valid=valid, in_masks=in_masks, rec_masks=rec_masks, reverse=reverse,
                               acts=acts, carry=carry)  # fmt: skip
        return sum((t * (i + 1)).sum() for i, t in enumerate([*outs, *hs, *cs]))

    want = torch.autograd.grad(layer(*leaves), leaves)
    calls.clear()
    loss = torch.utils.checkpoint.checkpoint(layer, *leaves, use_reentrant=False)
    assert len(calls) == 1
    got = torch.autograd.grad(loss, leaves)
    assert len(calls) == 2
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- torch.compile(fullgraph=True) ----------------------------------------------------------------------


def test_compile_fullgraph_keras_hard_sigmoid_mask_forward_and_backward():
    torch._dynamo.reset()
    m = KerasMasked()
    x, mask = _keras_inputs()
    want = m(x, mask)
    want_grads = _grads(m, want)
    compiled = torch.compile(m, fullgraph=True)
    got = compiled(x, mask)
    _close(got, want)
    _close(_grads(m, got), want_grads, atol=1e-4)


def test_compile_fullgraph_mindspore_seq_length_forward_and_backward():
    torch._dynamo.reset()
    m = MsLengths(bidirectional=True)
    x, lengths = _ms_inputs()
    want = m(x, lengths)
    want_grads = _grads(m, want)
    got = torch.compile(m, fullgraph=True, backend="aot_eager")(x, lengths)
    _close(got, want)
    _close(_grads(m, got), want_grads, atol=1e-4)


class _StatesGiven(torch.nn.Module):
    """A MindSpore net called with explicit initial states (``hx``), batch_first."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x, *hx):
        return self.net(x, hx[0] if len(hx) == 1 else hx)


def _states_case(net_type, rows: int):
    net = net_type(3, 5, num_layers=rows, batch_first=True)

    def inputs(B: int, T: int):
        x, _ = _ms_inputs(B, T)
        states = [torch.randn(rows, B, 5) for _ in range(2 if net_type is M.LSTM else 1)]
        return (x, *states)

    return _StatesGiven(net), inputs


@pytest.mark.parametrize("case", ["keras mask", "mindspore seq_length", "mindspore LSTM hx", "mindspore GRU hx"])
def test_compiled_layers_do_not_recompile_for_each_batch_size(case):
    """A second batch size makes dynamo recompile once with symbolic sizes; no size after that may recompile.
    (An error message formatted while tracing - "initial states of shape ({B}, ...)" - used to specialise the
    batch size: one compile per batch size, and after 8 a hard failure under fullgraph=True.)"""
    torch._dynamo.reset()
    if case == "keras mask":
        m, inputs = KerasMasked(), _keras_inputs
    elif case == "mindspore seq_length":
        m, inputs = MsLengths(bidirectional=True), _ms_inputs
    else:
        m, inputs = _states_case(M.LSTM if "LSTM" in case else M.GRU, rows=2)
    m(*inputs(3, 5))  # built
    compiled = torch.compile(m, fullgraph=True, backend="eager")
    with torch.no_grad():
        compiled(*inputs(3, 5))
        compiled(*inputs(4, 6))  # the one recompile: batch and time become symbolic
        torch.compiler.set_stance("fail_on_recompile")
        try:
            for B, T in ((5, 4), (2, 6), (6, 3)):
                args = inputs(B, T)
                _close(compiled(*args), m(*args))
        finally:
            torch.compiler.set_stance("default")


@pytest.mark.parametrize("layer_type", [K.LSTM, K.GRU])
def test_compiled_training_call_draws_dropout_masks_for_any_batch_size(layer_type):
    """dropout and recurrent_dropout in a compiled training call: masks drawn at symbolic sizes (torch.rand's
    generator overload refused them), no recompile per batch size, gradients reach the weights."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = layer_type(6, return_sequences=True, dropout=0.4, recurrent_dropout=0.3)
    layer(torch.randn(2, 3, 4))
    compiled = torch.compile(lambda x: layer(x, training=True), fullgraph=True, backend="eager")
    compiled(torch.randn(3, 5, 4))
    compiled(torch.randn(4, 6, 4))
    torch.compiler.set_stance("fail_on_recompile")
    try:
        x = torch.randn(5, 4, 4)
        out = compiled(x)
        assert out.shape == (5, 4, 6) and torch.isfinite(out).all()
        assert not torch.allclose(out, layer(x, training=False))  # the masks changed the result
        out.square().sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    finally:
        torch.compiler.set_stance("default")


def test_tracing_a_seeded_dropout_layer_names_the_remedy():
    torch._dynamo.reset()
    layer = K.LSTM(6, dropout=0.4, seed=3)
    layer(torch.randn(2, 3, 4))
    compiled = torch.compile(lambda x: layer(x, training=True), fullgraph=True, backend="eager")
    with pytest.raises(Exception, match=r"own torch.Generator.*without seed="):
        compiled(torch.randn(2, 3, 4))


# --- torch.export with dynamic batch and time ------------------------------------------------------------


def test_export_keras_mask_dynamic_batch_and_time():
    m = KerasMasked()
    x, mask = _keras_inputs()
    m(x, mask)  # built
    B, T = Dim("B"), Dim("T")
    ep = torch.export.export(m, (x, mask), dynamic_shapes=({0: B, 1: T}, {0: B, 1: T}))
    targets = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert torch.ops.lstm_bridge.lstm_layer.default in targets
    for B_, T_ in ((3, 5), (5, 9), (2, 3)):
        x2, mask2 = _keras_inputs(B_, T_, seed=B_ + T_)
        _close(ep.module()(x2, mask2), m(x2, mask2))


def test_export_mindspore_seq_length_dynamic_batch_and_time():
    m = MsLengths(bidirectional=True, num_layers=2)
    x, lengths = _ms_inputs()
    B, T = Dim("B"), Dim("T")
    ep = torch.export.export(m, (x, lengths), dynamic_shapes=({0: B, 1: T}, {0: B}))
    for B_, T_ in ((3, 6), (6, 8), (2, 4)):
        x2, lengths2 = _ms_inputs(B_, T_, seed=B_)
        _close(ep.module()(x2, lengths2), m(x2, lengths2))
    bad = torch.tensor([9, 1, 1], dtype=torch.int32)  # > T: MindSpore's bidirectional kernel refuses it
    with pytest.raises(RuntimeError, match=r"seq_length must be in \[0, 6\].*seq_length\[0\] = 9"):
        ep.module()(x, bad)


def test_export_bidirectional_and_standard_layers_take_the_op():
    """Standard semantics (which eager hands to oneDNN) and Keras Bidirectional are recorded as the op too."""
    bi = K.Bidirectional(K.LSTM(4, return_sequences=True))
    x = torch.randn(2, 5, 3)
    want = bi(x)
    ep = torch.export.export(bi, (x,), dynamic_shapes=({0: Dim("B"), 1: Dim("T")},))
    assert torch.ops.lstm_bridge.lstm_layer.default in [n.target for n in ep.graph.nodes]
    _close([ep.module()(x)], [want])
    x2 = torch.randn(4, 7, 3)
    _close([ep.module()(x2)], [bi(x2)])


# --- torch.jit.trace --------------------------------------------------------------------------------------


def test_jit_trace_keras_and_mindspore():
    km = KerasMasked()
    x, mask = _keras_inputs()
    km(x, mask)  # built before tracing
    traced = torch.jit.trace(km, (x, mask))  # with torch's check (a re-trace under no_grad: the same graph)
    assert "lstm_bridge::lstm_layer" in str(traced.inlined_graph)
    x2, mask2 = _keras_inputs(seed=7)  # new values, same shapes (a trace fixes shapes)
    _close(traced(x2, mask2), km(x2, mask2))
    mm = MsLengths()
    x, lengths = _ms_inputs()
    traced = torch.jit.trace(mm, (x, lengths))
    assert "lstm_bridge::lstm_layer" in str(traced.inlined_graph)
    x2, _ = _ms_inputs(seed=8)
    lengths2 = torch.tensor([1, 6, 3], dtype=torch.int32)
    _close(traced(x2, lengths2), mm(x2, lengths2))


@pytest.mark.parametrize("layer_type", [K.LSTM, K.GRU, K.SimpleRNN])
def test_jit_trace_passes_its_check_in_either_grad_mode_and_the_trace_trains(layer_type):
    """torch.jit.trace's check re-traces under no_grad, where a GRU's reordered weights stop requiring grad: the
    op's save flag is fixed under jit tracing, so both traces agree; a trace made under no_grad still trains."""
    layer = layer_type(5, return_sequences=True)
    x = torch.randn(3, 4, 2)
    layer(x)
    x2 = torch.randn(3, 4, 2)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            traced = torch.jit.trace(layer, (x,))
        with torch.no_grad():
            _close([traced(x2)], [layer(x2)])
        layer.zero_grad()
        layer(x2).square().sum().backward()
        want = [p.grad.clone() for p in layer.parameters()]
        layer.zero_grad()
        traced(x2).square().sum().backward()
        _close([p.grad for p in layer.parameters()], want, atol=1e-5)


def test_the_legacy_onnx_exporter_refuses_the_ops_naming_the_remedy():
    import io

    layer = K.LSTM(5, return_sequences=True)
    x = torch.randn(3, 4, 2)
    layer(x)
    with pytest.raises(Exception, match=r"dynamo=False.*export with dynamo=True"):
        torch.onnx.export(layer, (x,), io.BytesIO(), dynamo=False)


# --- dynamo ONNX export ---------------------------------------------------------------------------------


def _onnx_run(model, args, dynamic_shapes, feeds):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model(*args)  # a Keras layer builds its weights on the first call: before the capture
    program = torch.onnx.export(model, args, dynamo=True, dynamic_shapes=dynamic_shapes, verbose=False)
    ops_used = [n.op_type for n in program.model_proto.graph.node]
    session = ort.InferenceSession(program.model_proto.SerializeToString())
    names = [i.name for i in session.get_inputs()]
    return ops_used, session.run(None, {n: f.numpy() for n, f in zip(names, feeds)})


def test_onnx_export_mindspore_seq_length_runs_in_onnxruntime():
    m = MsLengths(bidirectional=True)
    x, lengths = _ms_inputs()
    x2, lengths2 = _ms_inputs(5, 8, seed=4)
    ops_used, got = _onnx_run(m, (x, lengths), ({0: Dim("B"), 1: Dim("T")}, {0: Dim("B")}), (x2, lengths2))
    assert ops_used.count("LSTM") == 2  # one standard ONNX LSTM node per direction, sequence_lens from seq_length
    for g, w in zip(got, m(x2, lengths2)):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_onnx_export_keras_hard_sigmoid_runs_in_onnxruntime():
    m = KerasPlain()
    x, _ = _keras_inputs()
    x2, _ = _keras_inputs(4, 7, seed=1)
    ops_used, got = _onnx_run(m, (x,), ({0: Dim("B"), 1: Dim("T")},), (x2,))
    assert "LSTM" in ops_used
    for g, w in zip(got, m(x2)):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_onnx_export_refuses_the_keras_mask_rule_naming_it():
    """Keras repeats the previous output on masked steps (and its masks may have holes): the ONNX LSTM
    operator cannot hold that; the error says what and why instead of exporting different numbers."""
    pytest.importorskip("onnxscript")
    m = KerasMasked()
    x, mask = _keras_inputs()
    m(x, mask)
    with pytest.raises(Exception, match="repeat the previous output has no ONNX LSTM equivalent"):
        torch.onnx.export(m, (x, mask), dynamo=True, verbose=False)


def test_traced_paths_take_the_native_op_unless_the_backend_is_torch(monkeypatch):
    """LSTM_BRIDGE_BACKEND=torch keeps the torch path under tracing (the user's explicit choice)."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")
    m = KerasMasked()
    x, mask = _keras_inputs()
    m(x, mask)  # built
    ep = torch.export.export(m, (x, mask))
    assert torch.ops.lstm_bridge.lstm_layer.default not in [n.target for n in ep.graph.nodes]
    assert backend.last_used == "torch"


# --- the GRU / simple-RNN family -------------------------------------------------------------------------


def _family_op_args(form: int, requires_grad: bool = True, dropout: bool = False):
    g = torch.Generator().manual_seed(5)
    T, B, I, H, D = 4, 3, 5, 6, 2
    G = 1 if form == 0 else 3

    def r(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(requires_grad)

    x = r(T, B, I)
    w_ih = [r(G * H, I) for _ in range(D)]
    w_hh = [r(G * H, H) for _ in range(D)]
    b_ih = [r(G * H) for _ in range(D)]
    b_hh = [r(G * H) for _ in range(D)]
    h0 = [r(B, H) for _ in range(D)]
    valid = torch.ones(T, B, dtype=torch.bool)
    valid[2:, 1] = False
    in_masks = [(torch.rand(1, B, I, generator=g) > 0.3).float() for _ in range(D)] if dropout else []
    rec_masks = [(torch.rand(G, B, H, generator=g) > 0.3).float() for _ in range(D)] if dropout else []
    has_mask = [int(dropout)] * (2 * D)
    return (x, w_ih, w_hh, b_ih, b_hh, [1] * (2 * D), h0, valid, in_masks, rec_masks, has_mask, [0, 1], form, [0, 1],
            False, False, requires_grad)  # fmt: skip


@pytest.mark.parametrize("form", [0, 1, 2], ids=["rnn", "gru-reset-after", "gru-reset-before"])
def test_opcheck_family_layer(form):
    torch.library.opcheck(torch.ops.lstm_bridge.family_layer.default, _family_op_args(form, dropout=form == 1))


def test_compile_fullgraph_keras_gru_mask_forward_and_backward():
    torch._dynamo.reset()
    m = K.GRU(5, return_sequences=True)
    x, mask = _keras_inputs()
    want = m(x, mask=mask)
    want_grads = _grads(m, [want])
    got = torch.compile(m, fullgraph=True, backend="aot_eager")(x, mask=mask)
    _close([got], [want])
    _close(_grads(m, [got]), want_grads, atol=1e-4)


def test_export_mindspore_gru_and_rnn_seq_length_dynamic_and_keras_simple_rnn():
    class Family(torch.nn.Module):
        def __init__(self, cls, **kw):
            super().__init__()
            self.net = cls(3, 5, batch_first=True, **kw)

        def forward(self, x, lengths):
            out, h = self.net(x, seq_length=lengths)
            return out, h

    for m in (Family(M.GRU, bidirectional=True), Family(M.RNN, nonlinearity="relu")):
        x, lengths = _ms_inputs()
        ep = torch.export.export(m, (x, lengths), dynamic_shapes=({0: Dim("B"), 1: Dim("T")}, {0: Dim("B")}))
        assert torch.ops.lstm_bridge.family_layer.default in [n.target for n in ep.graph.nodes]
        for B_, T_ in ((3, 6), (5, 9)):
            x2, lengths2 = _ms_inputs(B_, T_, seed=T_)
            _close(ep.module()(x2, lengths2), m(x2, lengths2))
    rnn = K.SimpleRNN(4, return_sequences=True, go_backwards=True)
    x, _ = _keras_inputs()
    rnn(x)
    ep = torch.export.export(rnn, (x,), dynamic_shapes=({0: Dim("B"), 1: Dim("T")},))
    x2, _ = _keras_inputs(4, 8, seed=2)
    _close([ep.module()(x2)], [rnn(x2)])
    traced = torch.jit.trace(rnn, (x,), check_trace=False)
    assert "lstm_bridge::family_layer" in str(traced.inlined_graph)


def test_onnx_export_family_runs_in_onnxruntime():
    """GRU (both reset forms) and simple-RNN layers become standard ONNX GRU / RNN nodes."""

    class GruLengths(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = M.GRU(3, 5, batch_first=True, bidirectional=True)

        def forward(self, x, lengths):
            out, h = self.net(x, seq_length=lengths)
            return out, h

    m = GruLengths()
    x, lengths = _ms_inputs()
    x2, lengths2 = _ms_inputs(5, 8, seed=4)
    ops_used, got = _onnx_run(m, (x, lengths), ({0: Dim("B"), 1: Dim("T")}, {0: Dim("B")}), (x2, lengths2))
    assert ops_used.count("GRU") == 2
    for g, w in zip(got, m(x2, lengths2)):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-5, atol=1e-5)
    for layer, op_type in ((K.GRU(4, reset_after=False, return_sequences=True), "GRU"), (K.SimpleRNN(4), "RNN")):
        x, _ = _keras_inputs()
        x2, _ = _keras_inputs(4, 7, seed=1)
        ops_used, got = _onnx_run(layer, (x,), ({0: Dim("B"), 1: Dim("T")},), (x2,))
        assert op_type in ops_used
        np.testing.assert_allclose(got[0], layer(x2).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_export_with_dynamic_time_of_a_python_loop_layer_names_the_remedy():
    """An activation the kernel lacks runs the torch path's Python loop: a dynamic T cannot be exported, and
    the error says why and what to do (a static T works)."""
    m = K.LSTM(4, activation="gelu", return_sequences=True)
    x = torch.randn(2, 5, 3)
    m(x)
    with pytest.raises(ValueError, match=r"activations <activation gelu> have no native kernel.*static time dimension"):
        torch.export.export(m, (x,), dynamic_shapes=({0: Dim("B"), 1: Dim("T")},))
    ep = torch.export.export(m, (x,), dynamic_shapes=({0: Dim("B")},))
    x2 = torch.randn(4, 5, 3)
    _close([ep.module()(x2)], [m(x2)])


def test_compile_before_any_eager_call_loads_the_kernel_at_compile_time():
    """In a fresh process the first native call may be the compiled one: loading the kernel (a build under a
    lock) happens when dynamo asks, not inside the traced code."""
    code = (
        "import torch, lstm_bridge.mindspore as M\n"
        "net = M.LSTM(4, 5, batch_first=True, bidirectional=True)\n"
        "x = torch.randn(3, 6, 4); L = torch.tensor([6, 2, 4], dtype=torch.int32)\n"
        "got = torch.compile(net, fullgraph=True, backend='aot_eager')(x, seq_length=L)\n"
        "want = net(x, seq_length=L)\n"
        "assert torch.allclose(got[0], want[0], atol=1e-6), (got[0] - want[0]).abs().max()\n"
        "print('ok')\n"
    )
    run_fresh(code)


def test_a_saved_exported_program_loads_in_a_fresh_process_after_import_lstm_bridge_ops(tmp_path):
    """torch.export.save of Keras GRU + LSTM layers; a new process that imports ``lstm_bridge.ops`` (and no
    layer) loads it and runs it (the family op loads the kernel on first use, as the LSTM op does)."""

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = K.GRU(6, return_sequences=True)
            self.lstm = K.LSTM(5, recurrent_activation="hard_sigmoid")

        def forward(self, x, mask):
            return self.lstm(self.gru(x, mask=mask), mask=mask)

    m = Stack()
    x, mask = _keras_inputs()
    want = m(x, mask)
    program = torch.export.export(m, (x, mask), dynamic_shapes=({0: Dim("B", min=2), 1: Dim("T", min=2)},) * 2)
    torch.export.save(program, tmp_path / "stack.pt2")
    torch.save({"x": x, "mask": mask, "want": want.detach()}, tmp_path / "io.pt")
    code = (
        "import sys, torch\n"
        "import lstm_bridge.ops\n"
        f"d = torch.load({str(tmp_path / 'io.pt')!r})\n"
        f"got = torch.export.load({str(tmp_path / 'stack.pt2')!r}).module()(d['x'], d['mask'])\n"
        "assert 'lstm_bridge.keras' not in sys.modules\n"
        "torch.testing.assert_close(got, d['want'], rtol=1e-5, atol=1e-6)\n"
        "print('ok')\n"
    )
    run_fresh(code)


def test_an_aot_inductor_package_runs_the_ops(tmp_path):
    """torch._inductor.aoti_compile_and_package of an exported program (Keras GRU and hard_sigmoid LSTM with a
    mask, a bidirectional MindSpore LSTM with seq_length): its C++ runtime calls the ops (an empty tensor list
    arrives as None, which the kernels take as empty) and reproduces eager at another batch size; the
    seq_length range check still raises."""

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = K.GRU(6, return_sequences=True)
            self.lstm = K.LSTM(5, recurrent_activation="hard_sigmoid", return_sequences=True)
            self.ms = M.LSTM(5, 4, batch_first=True, bidirectional=True)

        def forward(self, x, mask, lengths):
            y = self.lstm(self.gru(x, mask=mask), mask=mask)
            return self.ms(y, seq_length=lengths)[0]

    m = Net()
    x, mask = _keras_inputs(B=3, T=6)
    lengths = torch.tensor([6, 2, 4], dtype=torch.int32)
    with torch.no_grad():
        m(x, mask, lengths)
        dims = ({0: Dim("B", min=2), 1: Dim("T", min=2)},) * 2 + ({0: Dim("B", min=2)},)
        program = torch.export.export(m, (x, mask, lengths), dynamic_shapes=dims)
        package = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "net.pt2"))
        runner = torch._inductor.aoti_load_package(package)
        x2, mask2 = _keras_inputs(B=5, T=4, seed=3)
        lengths2 = torch.tensor([4, 1, 0, 3, 2], dtype=torch.int32)
        for args in ((x, mask, lengths), (x2, mask2, lengths2)):
            _close([runner(*args)], [m(*args)])
        with pytest.raises(RuntimeError, match=r"seq_length must be in \[0, 6\].*seq_length\[0\] = 9"):
            runner(x, mask, torch.tensor([9, 2, 4], dtype=torch.int32))


def test_tracing_an_unbuilt_keras_layer_says_to_call_it_first():
    with pytest.raises(ValueError, match="creates its weights on its first call.*call it once eagerly"):
        torch.export.export(K.LSTM(5), (torch.randn(3, 6, 4),))


_WITHOUT_PRIVATE_AUTOGRAD = """
import torch
del torch._C._after_ADInplaceOrView_keyset  # a torch without a private piece the lean Autograd kernel uses
import lstm_bridge.keras as K
from lstm_bridge.engine.native import ops
assert not ops._LEAN_AUTOGRAD
torch.manual_seed(0)
layer = K.LSTM(6, recurrent_activation="hard_sigmoid", return_sequences=True)
x = torch.randn(3, 5, 4, requires_grad=True)
want = layer(x)
leaves = [x, *layer.parameters()]
want_grads = torch.autograd.grad(want.square().sum(), leaves)
compiled = torch.compile(layer, backend="eager", fullgraph=True)
got = compiled(x)
grads = torch.autograd.grad(got.square().sum(), leaves)
assert torch.equal(got, want), (got - want).abs().max()
for a, b in zip(grads, want_grads):
    assert torch.equal(a, b), (a - b).abs().max()
with torch.no_grad():
    assert torch.equal(compiled(x), want)
print("ok")
"""


def test_ops_fall_back_to_register_autograd_without_torchs_private_wrapper():
    """On a torch without the private pieces of the lean ``Autograd`` kernel the ops register their formula
    through ``torch.library.register_autograd``: a traced layer still trains and infers as eager, bit for bit."""
    import subprocess
    import sys

    env = dict(os.environ, LSTM_BRIDGE_BACKEND="auto")
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PRIVATE_AUTOGRAD], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_compiled_mindspore_bits_layer_runs_the_op_within_rounding_of_eager():
    """``numerics="mindspore-cpu-bits"`` is MindSpore's bits in eager calls (oneDNN's training kind); a compiled
    program records the layer as the kernel's op (oneDNN's ``torch.lstm`` has no fake kernel): within float32
    rounding of eager, as the README's known gaps say. The default numerics compile to eager's bits."""
    torch.manual_seed(0)
    for numerics in ("mindspore-cpu-bits", "mindspore-cpu"):
        net = M.LSTM(8, 16, num_layers=2, batch_first=True, numerics=numerics)
        x = torch.randn(4, 7, 8)
        with torch.no_grad():
            eager = net(x)[0]
            got = torch.compile(net, fullgraph=True)(x)[0]
        if numerics == "mindspore-cpu":
            assert torch.equal(got, eager)
        else:
            torch.testing.assert_close(got, eager, rtol=1e-6, atol=1e-6)
