"""lstm_bridge.mindspore: outputs of real MindSpore 2.10 (spec files), seq_length rule, checks, modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_bridge.mindspore import LSTM, LSTMCell

from helpers import FIXTURES, max_abs

MS = FIXTURES / "mindspore"


def _params(npz):
    return {k[len("param:") :]: npz[k] for k in npz.files if k.startswith(("param:", "param/"))}


CASES = [
    ("lstm_small", dict(input_size=3, hidden_size=4)),
    ("lstm_2layer_bi", dict(input_size=6, hidden_size=5, num_layers=2, batch_first=True, bidirectional=True)),
    ("lstm_long", dict(input_size=32, hidden_size=64, num_layers=2, bidirectional=True)),
]


@pytest.mark.parametrize("numerics", ["exact", "mindspore-cpu"])
@pytest.mark.parametrize("name, ctor", CASES, ids=[c[0] for c in CASES])
def test_reproduces_real_mindspore_outputs(name, ctor, numerics):
    data = np.load(MS / f"{name}_io.npz")
    net = LSTM(**ctor, numerics=numerics)
    net.load_state_dict(_params(data))
    x = torch.tensor(data["x"])
    hx = (torch.tensor(data["h0"]), torch.tensor(data["c0"])) if "h0" in data.files else None
    lengths = torch.tensor(data["seq_length"]) if "seq_length" in data.files else None
    calls = {"nohx": (None, None), "hx": (hx, None), "seqlen": (None, lengths), "hx_seqlen": (hx, lengths)}
    checked = 0
    for tag, (h, s) in calls.items():
        if f"out_{tag}" not in data.files:
            continue
        out, (hn, cn) = net(x, h, s)
        err = max(max_abs(out, data[f"out_{tag}"]), max_abs(hn, data[f"hn_{tag}"]), max_abs(cn, data[f"cn_{tag}"]))
        if s is None:
            assert err <= 2e-6, (tag, err)  # the fused path: exact activations
        elif numerics == "mindspore-cpu":
            assert err <= 1e-6, (tag, err)  # emulated approximate activations
        else:
            assert err <= 2e-4, (tag, err)  # spec §3: exact activations vs MindSpore's approximations
        checked += 1
    assert checked >= 2


def test_seq_length_demo_numbers_from_the_spec():
    data = np.load(MS / "seq_length_demo.npz")
    net = LSTM(2, 3, 1, bidirectional=True, numerics="mindspore-cpu")
    net.load_state_dict(_params(data))
    out, (hn, cn) = net(torch.tensor(data["x"]), None, torch.tensor(data["seq_length"]))
    assert max(max_abs(out, data["output"]), max_abs(hn, data["h_n"]), max_abs(cn, data["c_n"])) < 1e-6
    assert np.all(out.detach().numpy()[2:, 1] == 0)  # padded outputs exactly 0
    np.testing.assert_allclose(
        hn.detach().numpy()[:, 1], [[0.04442, -0.118961, -0.059799], [0.281298, 0.034244, -0.138574]], atol=1e-6
    )
    # reverse direction's h_n is its output at t = 0; forward's is the output at t = L-1
    assert max_abs(hn[1, 1], out[0, 1, 3:]) == 0 and max_abs(hn[0, 1], out[1, 1, :3]) == 0


def test_lstm_cell_reproduces_real_mindspore_steps():
    data = np.load(MS / "lstmcell_io.npz")
    for numerics, tol in (("mindspore-cpu", 1e-6), ("exact", 2e-4)):
        cell = LSTMCell(3, 4, numerics=numerics)
        cell.load_state_dict(_params(data))
        h, c = torch.tensor(data["h0"]), torch.tensor(data["c0"])
        for t in range(data["x"].shape[0]):
            h, c = cell(torch.tensor(data["x"][t]), (h, c))
            assert max_abs(h, data["h_seq"][t]) <= tol and max_abs(c, data["c_seq"][t]) <= tol


def test_seq_length_zero_and_full_and_packed_sequence_semantics(rng):
    torch.manual_seed(0)
    net = LSTM(3, 4, 2, bidirectional=True, numerics="exact")
    x = torch.tensor(rng.standard_normal((6, 4, 3)), dtype=torch.float32)
    h0 = torch.tensor(rng.standard_normal((4, 4, 4)), dtype=torch.float32)
    lengths = torch.tensor([6, 3, 0, 1], dtype=torch.int32)
    out, (hn, cn) = net(x, (h0, h0.clone()), lengths)
    assert np.all(out.detach().numpy()[3:, 1] == 0) and np.all(out.detach().numpy()[:, 2] == 0)
    assert max_abs(hn[:, 2], h0[:, 2]) == 0  # length 0 keeps h0 in every layer and direction
    ref = torch.nn.LSTM(3, 4, 2, bidirectional=True)
    ref.load_state_dict(net.state_dict())
    keep = [0, 1, 3]
    packed = torch.nn.utils.rnn.pack_padded_sequence(x[:, keep], lengths[keep], enforce_sorted=False)
    ref_out, (ref_h, ref_c) = ref(packed, (h0[:, keep].contiguous(), h0[:, keep].contiguous()))
    ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, total_length=6)
    assert max_abs(out[:, keep], ref_out) < 1e-6 and max_abs(hn[:, keep], ref_h) < 1e-6


def test_the_seeds_wrong_h0_raises_a_clear_value_error():
    net = LSTM(10, 16, 1, has_bias=True, batch_first=True, bidirectional=True)
    wrong = torch.ones(1, 3, 16)
    with pytest.raises(ValueError, match=r"\(2, 3, 16\).*received \(1, 3, 16\)"):
        net(torch.ones(3, 5, 10), (wrong, wrong))
    out, (hn, cn) = net(torch.ones(3, 5, 10), (torch.ones(2, 3, 16), torch.ones(2, 3, 16)))
    assert tuple(out.shape) == (3, 5, 32) and tuple(hn.shape) == (2, 3, 16)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda n: n(torch.ones(5, 3)), ValueError, "3-D"),
        (lambda n: n(torch.ones(5, 2, 7)), ValueError, "must be equal to 10, but got 7"),
        (lambda n: n(torch.ones(5, 2, 10, dtype=torch.int32)), TypeError, "floating"),
        (lambda n: n(torch.ones(5, 2, 10), [torch.zeros(1, 2, 4)] * 2), TypeError, "tuple"),
        (lambda n: n(torch.ones(5, 2, 10), (torch.zeros(1, 2, 4),) * 3), TypeError, "length of 'hx' must be '2'"),
        (lambda n: n(torch.ones(5, 2, 10), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))), ValueError, r"\(1, 2, 4\)"),
        (lambda n: n(torch.ones(5, 2, 10), (torch.zeros(1, 2, 4, dtype=torch.float16),) * 2), TypeError, "float16"),
        (lambda n: n(torch.ones(5, 2, 10), None, torch.tensor([1.0, 2.0])), TypeError, "int32, int64"),
        (
            lambda n: n(torch.ones(5, 2, 10), None, torch.tensor([1, 2, 3])),
            ValueError,
            r"seq_length must have shape \(2,\)",
        ),
        (lambda n: n(torch.ones(5, 2, 10), None, [1, 2]), TypeError, "seq_length"),
    ],
)
def test_bad_calls_raise_errors_naming_expected_and_received(call, error, message):
    net = LSTM(10, 4)
    with pytest.raises(error, match=message):
        call(net)


def test_constructor_checks_follow_mindspore():
    with pytest.raises(TypeError, match="'input_size' must be int"):
        LSTM(3.0, 4)
    with pytest.raises(ValueError, match="must > 0"):
        LSTM(3, 0)
    with pytest.raises(TypeError, match="'has_bias' should be 'bool'"):
        LSTM(3, 4, has_bias=1)
    with pytest.raises(TypeError, match="'dropout' must be 'float'"):
        LSTM(3, 4, 2, dropout=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        LSTM(3, 4, 2, dropout=1.0)


def test_bidirectional_rejects_out_of_range_lengths_unidirectional_clamps():
    x = torch.ones(4, 2, 3)
    with pytest.raises(ValueError, match=r"seq_length\[0\] = 7"):
        LSTM(3, 4, bidirectional=True)(x, None, torch.tensor([7, 2]))
    uni = LSTM(3, 4)
    a, (ha, _) = uni(x, None, torch.tensor([7, -1]))
    b, (hb, _) = uni(x, None, torch.tensor([4, 0]))
    assert max_abs(a, b) == 0 and max_abs(ha, hb) == 0


def test_parameter_names_and_checkpoint_order():
    net = LSTM(3, 4, 2, bidirectional=True)
    names = [n for n, _ in net.named_parameters()]
    groups = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert names == [g + s for g in groups for s in ["_l0", "_l0_reverse", "_l1", "_l1_reverse"]]
    assert tuple(net.weight_ih_l1.shape) == (16, 8)
    assert [n for n, _ in LSTM(3, 4, has_bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l0'\]"):
        LSTM(3, 4).load_state_dict({k: v for k, v in LSTM(3, 4).state_dict().items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match=r"weight_ih_l0: expected \(16, 3\), received \(16, 2\)"):
        LSTM(3, 4).load_state_dict(dict(LSTM(2, 4).state_dict()))


def test_initial_weights_come_from_numpys_global_rng_like_mindspore():
    np.random.seed(5)
    net = LSTM(3, 4)
    np.random.seed(5)
    expected = np.random.uniform(-0.5, 0.5, (16, 3)).astype(np.float32)
    assert max_abs(net.weight_ih_l0, expected) == 0


def test_eval_by_default_dropout_only_between_layers_in_training(rng):
    torch.manual_seed(0)
    net = LSTM(3, 4, 2, dropout=0.5)
    x = torch.tensor(rng.standard_normal((5, 8, 3)), dtype=torch.float32)
    assert not net.training
    out_eval, (h_eval, _) = net(x)
    assert max_abs(net(x)[0], out_eval) == 0
    net.set_train(True)
    out_train, (h_train, _) = net(x)
    assert max_abs(h_train[0], h_eval[0]) == 0  # layer 0 is before any dropout
    assert max_abs(out_train, out_eval) > 1e-3  # layer 1 sees dropped inputs
    single = LSTM(3, 4, 1, dropout=0.5).set_train(True)
    assert max_abs(single(x)[0], single.set_train(False)(x)[0]) == 0  # one layer: no effect


def test_dtypes_float64_and_float16(rng):
    net = LSTM(3, 4, batch_first=True)
    x = rng.standard_normal((2, 5, 3))
    out64, (hn64, _) = net(torch.tensor(x))
    assert out64.dtype == torch.float64 and hn64.dtype == torch.float64
    out32, _ = net(torch.tensor(x, dtype=torch.float32))
    assert max_abs(out64, out32) < 1e-6
    out16, (hn16, _) = net(torch.tensor(x, dtype=torch.float16))
    assert out16.dtype == torch.float16 and max_abs(out16.float(), out32) < 5e-3
    cell = LSTMCell(3, 4)
    assert cell.numerics == "mindspore-cpu"  # MindSpore's CPU LSTMCell always uses its approximations
    assert LSTM(3, 4).numerics == "mindspore-cpu"  # ... and so does its seq_length path
    with pytest.raises(TypeError, match="does not cast"):
        cell(torch.ones(2, 3, dtype=torch.float64), (torch.zeros(2, 4), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        cell(torch.ones(3), (torch.zeros(2, 4), torch.zeros(2, 4)))


# Exception types as MindSpore 2.10 raises them (PyNative, CPU; checked with the real framework):
# our messages stay clearer, the types are MindSpore's (where MindSpore's type is accidental, e.g. an
# IndexError for missing hx rows, ours is also the ValueError lstm-bridge uses for bad arguments).
@pytest.mark.parametrize(
    "call, ms_error, message",
    [
        # T = 0: MindSpore "RuntimeError: could not execute a primitive" (fused path)
        (lambda: LSTM(10, 16)(torch.zeros(0, 3, 10)), RuntimeError, r"at least one time step.*\(0, 3, 10\)"),
        (lambda: LSTM(10, 16, batch_first=True)(torch.zeros(3, 0, 10)), RuntimeError, r"\(3, 0, 10\)"),
        # with seq_length: "ValueError: For primitive[Stack], the stack element num must be ... >= 1"
        (
            lambda: LSTM(10, 16)(torch.zeros(0, 3, 10), None, torch.zeros(3, dtype=torch.int32)),
            ValueError,
            r"\(0, 3, 10\)",
        ),
        (lambda: LSTM(10, 16)(torch.zeros(5, 10)), ValueError, r"x_shape.size\(\) must be equal to 3.*\(5, 10\)"),
        (
            lambda: LSTM(10, 16)(torch.zeros(5, 3, 7)),
            ValueError,
            "x_shape.2. .input_size. must be equal to 10, but got 7",
        ),
        (lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), (torch.zeros(1, 3, 8),) * 2), ValueError, r"received \(1, 3, 8\)"),
        (lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), (torch.zeros(3, 16),) * 2), ValueError, r"received \(3, 16\)"),
        (
            lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), (torch.zeros(2, 3, 16),) * 2),
            ValueError,
            r"received \(2, 3, 16\)",
        ),
        # the documented bidirectional example with h0 (1, 3, 16): MindSpore IndexError
        (
            lambda: LSTM(10, 16, bidirectional=True)(torch.zeros(5, 3, 10), (torch.zeros(1, 3, 16),) * 2),
            IndexError,
            r"\(2, 3, 16\).*received \(1, 3, 16\)",
        ),
        (lambda: LSTM(10, 16, 2)(torch.zeros(5, 3, 10), (torch.zeros(1, 3, 16),) * 2), IndexError, "only 1 of 2 rows"),
        (lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), [torch.zeros(1, 3, 16)] * 2), TypeError, "'hx' must be a tuple"),
        (lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), None, torch.zeros(3)), TypeError, "'seq_length' should be one of"),
        (
            lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), None, torch.zeros(2, dtype=torch.int32)),
            ValueError,
            "batch size of x and seq_length must be equal, but got 3 of x and 2 of seq_length",
        ),
        (
            lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), None, torch.zeros(3, 1, dtype=torch.int32)),
            ValueError,
            r"received \(3, 1\)",
        ),
        # a Python list: MindSpore "AttributeError: 'list' object has no attribute 'dtype'"
        (lambda: LSTM(10, 16)(torch.zeros(5, 3, 10), None, [5, 5, 5]), AttributeError, "received list"),
        (
            lambda: LSTM(10, 16, bidirectional=True)(torch.zeros(4, 2, 10), None, torch.tensor([7, 2])),
            RuntimeError,
            r"seq_length\[0\] = 7",
        ),
        (lambda: LSTM(10, 16, dropout=1.0), ValueError, r"'dropout' must be a number in range \[0, 1\) representing"),
        (lambda: LSTM(10, 16, dropout=-0.1), ValueError, r"range \[0, 1\).*but got -0.1"),
        (lambda: LSTM(10, 16, dropout=0), TypeError, "the type of 'dropout' must be 'float', but got 'int'"),
        (
            lambda: LSTM(10, 16, num_layers=0),
            ValueError,
            "'num_layers' must be int and must > 0, but got '0' with type 'int'",
        ),
        (lambda: LSTM(10, 0), ValueError, "'hidden_size' must be int and must > 0, but got '0'"),
        (lambda: LSTM(10, -1), ValueError, "but got '-1' with type 'int'"),
        (lambda: LSTM(10, 2.0), TypeError, "'hidden_size' must be int, but got 'float'"),
        (lambda: LSTM(10, 16, num_layers=True), TypeError, "but got 'True' with type 'bool'"),
        (lambda: LSTMCell(10, 0), ValueError, "For 'LSTMCell', the 'hidden_size' must be int and must > 0"),
        (lambda: LSTMCell(10, 16, has_bias=1), TypeError, "For 'LSTMCell', the type of 'has_bias' should be 'bool'"),
        (lambda: LSTMCell(10, 16)(torch.zeros(10), (torch.zeros(16),) * 2), ValueError, "equal to 2"),
        (lambda: LSTMCell(10, 16)(torch.zeros(3, 7), (torch.zeros(3, 16),) * 2), ValueError, r"received \(3, 7\)"),
        (lambda: LSTMCell(10, 16)(torch.zeros(3, 10), (torch.zeros(2, 16),) * 2), ValueError, r"received \(2, 16\)"),
        (
            lambda: LSTMCell(10, 16)(torch.zeros(3, 10), [torch.zeros(3, 16)] * 2),
            TypeError,
            "For 'LSTMCell', the 'hx' must be a tuple",
        ),
        (
            lambda: LSTMCell(10, 16)(torch.zeros(3, 10), (torch.zeros(3, 16),) * 3),
            TypeError,
            "For 'LSTMCell', the length of 'hx' must be '2'",
        ),
        (
            lambda: LSTMCell(10, 16)(torch.zeros(3, 10, dtype=torch.float64), (torch.zeros(3, 16),) * 2),
            TypeError,
            "does not cast",
        ),
    ],
)
def test_error_types_are_mindspores(call, ms_error, message):
    with pytest.raises(ms_error, match=message):
        call()


def test_framework_typed_errors_are_also_lstm_bridge_argument_errors():
    """A zero-length axis, missing hx rows and a list seq_length keep the ValueError/TypeError contract."""
    with pytest.raises(ValueError):
        LSTM(10, 16)(torch.zeros(0, 3, 10))
    with pytest.raises(ValueError):
        LSTM(10, 16, bidirectional=True)(torch.zeros(5, 3, 10), (torch.zeros(1, 3, 16),) * 2)
    with pytest.raises(TypeError):
        LSTM(10, 16)(torch.zeros(5, 3, 10), None, [5, 5, 5])


@pytest.mark.parametrize(
    "dtype, want",
    [
        ("Float16", torch.float16),
        ("float64", torch.float64),
        (np.float16, torch.float16),
        (np.dtype("float64"), torch.float64),
        (torch.float16, torch.float16),
    ],
)
def test_dtype_accepts_mindspore_numpy_and_torch_spellings(dtype, want):
    """``str(mindspore.float16)`` is ``"Float16"``; NumPy and torch dtypes name the same types."""
    assert LSTMCell(3, 4, dtype=dtype).weight_ih.dtype == want
    assert LSTM(3, 4, dtype=dtype).weight_hh_l0.dtype == want


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((10, 16, True, torch.float32, 0), {}, ValueError),
        ((10, 16), {"batch_size": 3}, ValueError),
        ((10, 16), {"dropout": 0.0}, ValueError),
        ((10, 16), {"bidirectional": False}, ValueError),
        ((10, 16), {"bias": True}, TypeError),
        ((10, 16), {"foo": 1}, TypeError),
    ],
)
def test_lstmcell_rejects_pre_1_6_arguments_as_mindspore(args, kwargs, error):
    """MindSpore 2.10: more than 4 positional arguments or the old layer keywords -> ValueError naming the
    old API; any other unknown keyword (``bias=``) -> TypeError."""
    with pytest.raises(error, match="old MindSpore version" if error is ValueError else "unexpected keyword"):
        LSTMCell(*args, **kwargs)


def test_bits_numerics_inference_records_nothing_and_equals_the_recorded_forward():
    """``numerics="mindspore-cpu-bits"`` runs oneDNN's training kind under ``torch.no_grad()`` by switching grad
    mode on around ``torch.lstm`` with detached inputs: nothing is recorded (no grad_fn, even for an input that
    requires grad), and the values are those of the recorded call (the kind MindSpore computes)."""
    torch.manual_seed(5)
    net = LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True, numerics="mindspore-cpu-bits")
    x = torch.randn(2, 6, 3, requires_grad=True)
    h0, c0 = torch.randn(4, 2, 5), torch.randn(4, 2, 5)
    with torch.no_grad():
        out, (h_n, c_n) = net(x, (h0, c0))
    assert all(t.grad_fn is None and not t.requires_grad for t in (out, h_n, c_n))
    recorded, (rh, rc) = net(x, (h0, c0))
    assert recorded.grad_fn is not None
    for a, b in ((out, recorded), (h_n, rh), (c_n, rc)):
        assert torch.equal(a, b.detach())
