"""lstm_bridge.mindspore GRU / RNN / GRUCell / RNNCell: MindSpore 2.10's API (docs/spec/mindspore_gru_rnn.md).

Errors are checked against the messages and types measured with real MindSpore 2.10 (spec §1.1, §4, §7);
numerics against the recorded MindSpore cases (tests/fixtures/family/ms_*.npz, spec §8) and, with
``numerics="exact"``, against torch.nn.GRU / RNN / GRUCell / RNNCell.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_bridge import mindspore as msb

FIXTURES = Path(__file__).parent / "fixtures" / "family"
KINDS = [
    ("GRU", torch.nn.GRU, {}),
    ("RNN", torch.nn.RNN, {"nonlinearity": "tanh"}),
    ("RNN", torch.nn.RNN, {"nonlinearity": "relu"}),
]


def _net(name: str, *args, **kwargs):
    return getattr(msb, name)(*args, **kwargs)


# --- construction ---------------------------------------------------------------------------------


def test_exported_with_the_lstm():
    for name in ("GRU", "RNN", "GRUCell", "RNNCell", "LSTM", "LSTMCell"):
        assert name in msb.__all__ and hasattr(msb, name)


@pytest.mark.parametrize("name", ["GRU", "RNN"])
def test_argument_checks_name_the_class(name):
    with pytest.raises(TypeError, match=f"For '{name}', the type of 'dropout' must be 'float', but got 'int'"):
        _net(name, 2, 3, dropout=0)
    with pytest.raises(ValueError, match=f"For '{name}', the 'dropout' must be a number in range"):
        _net(name, 2, 3, dropout=1.0)
    with pytest.raises(ValueError, match=f"For '{name}', the 'hidden_size' must be int and must > 0, but got '0'"):
        _net(name, 2, 0)
    with pytest.raises(TypeError, match=f"For '{name}', the type of 'bidirectional' should be 'bool'"):
        _net(name, 2, 3, bidirectional=1)


def test_rnn_nonlinearity_is_keyword_only_and_checked():
    with pytest.raises(
        ValueError,
        match=r"For 'RNN', the 'nonlinearity' must be in \['tanh', 'relu'\], but got "
        r"sigmoid\.",
    ):
        msb.RNN(2, 3, nonlinearity="sigmoid")
    # MindSpore: an 8th positional argument is dtype -> TypeError
    with pytest.raises(TypeError, match="dtype"):
        msb.RNN(2, 3, 1, True, False, 0.0, False, "relu")
    assert msb.RNN(2, 3, nonlinearity="relu").nonlinearity == "relu"
    # the cell takes it as its 4th positional argument, with nn.RNNCell's message
    assert msb.RNNCell(2, 3, True, "relu").nonlinearity == "relu"
    with pytest.raises(
        ValueError,
        match=r"For 'RNNCell', the 'nonlinearity' must be str and must be in "
        r"'\['tanh', 'relu'\]', but got 'sigmoid'\.",
    ):
        msb.RNNCell(2, 3, nonlinearity="sigmoid")


def test_parameter_names_order_and_shapes_are_mindspores():
    net = msb.GRU(5, 4, 2, bidirectional=True)
    got = [(n, tuple(p.shape)) for n, p in net.named_parameters()]
    want = []
    for group, shape in (("weight_ih", None), ("weight_hh", (12, 4)), ("bias_ih", (12,)), ("bias_hh", (12,))):
        for layer in range(2):
            for suffix in ("", "_reverse"):
                want.append((f"{group}_l{layer}{suffix}", shape or (12, 5 if layer == 0 else 8)))
    assert got == want
    rnn = msb.RNN(3, 2, has_bias=False)
    assert [(n, tuple(p.shape)) for n, p in rnn.named_parameters()] == [
        ("weight_ih_l0", (2, 3)),
        ("weight_hh_l0", (2, 2)),
    ]
    cell = msb.GRUCell(3, 2)
    assert [(n, tuple(p.shape)) for n, p in cell.named_parameters()] == [
        ("weight_ih", (6, 3)),
        ("weight_hh", (6, 2)),
        ("bias_ih", (6,)),
        ("bias_hh", (6,)),
    ]
    assert not net.training and not cell.training  # MindSpore Cells start in eval mode


# --- hx and x errors (spec §1.1) ---------------------------------------------------------------------


def test_hx_errors_follow_mindspore():
    net = msb.GRU(3, 4, 2)
    x = torch.randn(5, 3, 3)
    with pytest.raises(TypeError, match=r"For 'GRU', the 'h' must be a Tensor .* but got 'tuple'"):
        net(x, (torch.zeros(2, 3, 4),))
    with pytest.raises(IndexError, match=r"only 1 of 2 rows"):
        net(x, torch.zeros(1, 3, 4))
    with pytest.raises(
        TypeError,
        match="For 'GRU', the type of 'hx' should be same as 'x', but got 'x' with type "
        "Float32 and 'hx' with type Float16.",
    ):
        net(x, torch.zeros(2, 3, 4, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 3, 4\).*received \(2, 1, 4\)"):
        net(x, torch.zeros(2, 1, 4))  # MindSpore: the final reshape fails (ValueError)
    with pytest.raises(ValueError, match="x_shape.size\\(\\) must be equal to 3"):
        net(torch.randn(3, 3))
    with pytest.raises(ValueError, match=r"x_shape\[2\] \(input_size\) must be equal to 3, but got 5"):
        net(torch.randn(5, 3, 5))
    with pytest.raises(ValueError, match="at least one time step"):
        net(torch.randn(0, 3, 3))
    # float64 x: accepted without hx (float64 out), refused with one
    out, h_n = net(x.double())
    assert out.dtype == h_n.dtype == torch.float64
    with pytest.raises(TypeError, match="For 'GRU', the element of 'x' must be one of Float32, Float16"):
        net(x.double(), torch.zeros(2, 3, 4, dtype=torch.float64))


def test_cell_errors_follow_mindspore():
    cell = msb.GRUCell(3, 4)
    with pytest.raises(
        ValueError, match="For 'GRUCell', MatMul inputs should have the same dimension size and equal to 2"
    ):
        cell(torch.randn(3), torch.zeros(1, 4))
    with pytest.raises(TypeError, match=r"For 'GRUCell', the 'hx' must be a Tensor, but got 'tuple'"):
        cell(torch.randn(2, 3), (torch.zeros(2, 4),))
    with pytest.raises(
        TypeError,
        match=r"For 'GRUCell', the 'x' should be one of \[float32, float16\], but got "
        r"'float64'",
    ):
        cell(torch.randn(2, 3, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="parameters' dtype"):
        cell(torch.randn(2, 3), torch.zeros(2, 4, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"x must have shape \('\?', 3\).*received \(2, 5\)"):
        cell(torch.randn(2, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'hx'"):
        cell(torch.randn(2, 3))  # type: ignore[call-arg]
    # a batch-1 hx is broadcast over x's batch (MindSpore's op-by-op cell does)
    x = torch.randn(3, 3)
    h1 = torch.randn(1, 4)
    torch.testing.assert_close(cell(x, h1), cell(x, h1.expand(3, 4).contiguous()), rtol=0, atol=1e-7)


# --- seq_length (spec §4) -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GRU", "RNN"])
def test_seq_length_rule(name):
    torch.manual_seed(0)
    net = _net(name, 3, 4, bidirectional=True)
    x = torch.randn(5, 3, 3)
    h0 = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match=f"For '{name}', the 'seq_length' should be one of \\[int32, int64\\]"):
        net(x, h0, torch.tensor([5.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=f"For '{name}' batch size of x and seq_length must be equal"):
        net(x, h0, torch.tensor([5, 2]))
    with pytest.raises(RuntimeError, match=r"seq_length must be in \[0, 5\].*seq_length\[1\] = 6"):
        net(x, h0, torch.tensor([5, 6, 1]))
    out, h_n = net(x, h0, torch.tensor([5, 2, 0], dtype=torch.int32))
    assert (out[2:, 1] == 0).all() and (out[:, 2] == 0).all()  # zeros after each length
    assert torch.equal(h_n[:, 2], h0[:, 2])  # length 0: h_n = h0 in both directions
    # row 1 equals the net run on its 2-step prefix alone (the reverse direction reads the prefix backwards)
    alone, h_alone = net(x[:2, 1:2], h0[:, 1:2])
    torch.testing.assert_close(out[:2, 1:2], alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(h_n[:, 1:2], h_alone, rtol=0, atol=1e-6)
    # full lengths are bitwise the same as no seq_length (no fused kernel on CPU, spec §3.1)
    full, h_full = net(x, h0, torch.tensor([5, 5, 5]))
    plain, h_plain = net(x, h0)
    assert torch.equal(full, plain) and torch.equal(h_full, h_plain)
    # a unidirectional net accepts lengths outside [0, T]: > T acts as T, < 0 as 0
    uni = _net(name, 3, 4)
    a, ha = uni(x, None, torch.tensor([9, -1, 2]))
    b, hb = uni(x, None, torch.tensor([5, 0, 2]))
    assert torch.equal(a, b) and torch.equal(ha, hb)


# --- dropout between layers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GRU", "RNN"])
def test_set_train_applies_dropout_between_layers_only(name):
    torch.manual_seed(1)
    net = _net(name, 3, 4, 2, dropout=0.5, numerics="exact")
    x = torch.randn(6, 2, 3)
    eval_out, _ = net(x)
    assert torch.equal(eval_out, net(x)[0])  # eval: deterministic, no dropout
    net.set_train(True)
    assert net.training
    torch.manual_seed(7)
    out, h_n = net(x)
    assert not torch.equal(out, eval_out)
    # the same by hand: layer 0, dropout of its output (the same RNG draw), layer 1
    first = _net(name, 3, 4, numerics="exact")
    second = _net(name, 4, 4, numerics="exact")
    state = net.state_dict()
    first.load_state_dict({k: v for k, v in state.items() if "_l0" in k})
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in state.items() if "_l1" in k})
    torch.manual_seed(7)
    mid, h0 = first(x)
    want, h1 = second(torch.nn.functional.dropout(mid, 0.5, training=True))
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    torch.testing.assert_close(h_n, torch.cat([h0, h1]), rtol=0, atol=0)
    # one layer: nothing between layers, so training changes nothing
    single = _net(name, 3, 4, dropout=0.5)
    before = single(x)[0]
    single.set_train(True)
    assert torch.equal(single(x)[0], before)


# --- weights and exact numerics -------------------------------------------------------------------


@pytest.mark.parametrize("name, cls, kw", KINDS)
def test_load_state_dict_of_mindspore_names_equals_torch_modules(name, cls, kw):
    torch.manual_seed(2)
    ref = cls(3, 5, num_layers=2, batch_first=True, bidirectional=True, **kw).double()
    net = _net(name, 3, 5, 2, batch_first=True, bidirectional=True, numerics="exact", **kw)
    net.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})  # NumPy values accepted
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    h0 = torch.randn(4, 4, 5, dtype=torch.float64)
    # float64 x without hx: true math in float64
    out, h_n = net(x)
    want, want_h = ref(x)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n, want_h, rtol=0, atol=1e-12)
    # float32 with hx
    ref32 = ref.float()
    net32 = _net(name, 3, 5, 2, batch_first=True, bidirectional=True, numerics="exact", **kw)
    net32.load_state_dict(ref32.state_dict())
    out, h_n = net32(x.float(), h0.float())
    want, want_h = ref32(x.float(), h0.float())
    torch.testing.assert_close(out, want, rtol=0, atol=2e-6)
    torch.testing.assert_close(h_n, want_h, rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1_reverse'\]"):
        net.load_state_dict({k: v for k, v in ref.state_dict().items() if k != "bias_hh_l1_reverse"})


@pytest.mark.parametrize(
    "name, cls, kw",
    [
        ("GRUCell", torch.nn.GRUCell, {}),
        ("RNNCell", torch.nn.RNNCell, {"nonlinearity": "relu"}),
        ("RNNCell", torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    ],
)
def test_exact_cells_equal_torch_cells(name, cls, kw):
    torch.manual_seed(3)
    ref = cls(3, 4, **kw)
    cell = _net(name, 3, 4, numerics="exact", **kw)
    cell.load_state_dict(ref.state_dict())
    x, h = torch.randn(5, 3), torch.randn(5, 4)
    torch.testing.assert_close(cell(x, h), ref(x, h), rtol=0, atol=2e-6)


def test_gradients_flow_to_inputs_and_parameters():
    net = msb.GRU(3, 4, 2, bidirectional=True)  # default numerics: the emulated CPU activations
    x = torch.randn(5, 3, 3, requires_grad=True)
    h0 = torch.randn(4, 3, 4, requires_grad=True)
    out, h_n = net(x, h0, torch.tensor([5, 3, 1]))
    (out.sum() + h_n.sum()).backward()
    assert x.grad is not None and h0.grad is not None
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())


# --- MindSpore's CPU numerics (spec §3, §8) -------------------------------------------------------------


def _fixture(path: Path):
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    return json.loads(str(data.pop("config"))), data


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("ms_*.npz")), ids=lambda p: p.stem)
def test_recorded_mindspore_cases_bit_for_bit(path):
    """Every recorded MindSpore 2.10 case (batch 3, incl. reductions of 20 and 16 that need MindSpore's MatMul
    order) is reproduced exactly by numerics="mindspore-cpu-bits" and within 1e-6 by the default (torch's GEMM);
    exact math is measurably off."""
    cfg, data = _fixture(path)
    params = {k[len("param:") :]: torch.from_numpy(v) for k, v in data.items() if k.startswith("param:")}
    results = {}
    for numerics in ("mindspore-cpu-bits", "mindspore-cpu", "exact"):
        net = _net(cfg["cls"], cfg["input_size"], cfg["hidden_size"], numerics=numerics, **cfg["kw"])
        net.load_state_dict(params)
        x = torch.from_numpy(data["x"])
        hx = torch.from_numpy(data["hx"]) if "hx" in data else None
        if cfg["cls"].endswith("Cell"):
            h, states = hx, []
            for t in range(x.shape[0]):
                h = net(x[t], h)
                states.append(h)
            got = [torch.stack(states)]
        else:
            seq = torch.from_numpy(data["seq_length"]) if "seq_length" in data else None
            got = list(net(x, hx, seq))
        results[numerics] = max(
            float((g.detach() - torch.from_numpy(data[f"out:{i}"])).abs().max()) for i, g in enumerate(got)
        )
    assert results["mindspore-cpu-bits"] == 0.0, results
    assert results["mindspore-cpu"] <= 1e-6, results
    if cfg["kw"].get("nonlinearity") != "relu":  # ReLU is exact; with small weights so is everything else
        assert results["exact"] > 1e-7, results


@pytest.mark.parametrize("name", ["GRU", "RNN"])
def test_float16_inputs_compute_in_float32_and_return_float16(name):
    """MindSpore casts its parameters to a float16 x; lstm-bridge computes in float32 and rounds the result
    (measured against MindSpore 2.10: within 7.3e-4, a few float16 ulps)."""
    torch.manual_seed(4)
    net = _net(name, 3, 4, 2)
    x, h0 = torch.randn(5, 2, 3), torch.randn(2, 2, 4)
    out, h_n = net(x.half(), h0.half())
    assert out.dtype == h_n.dtype == torch.float16
    want, want_h = net(x.half().float(), h0.half().float())
    assert torch.equal(out, want.half()) and torch.equal(h_n, want_h.half())
