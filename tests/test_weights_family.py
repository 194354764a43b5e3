"""lstm_bridge.weights.family: GRU and simple-RNN layouts are exact, gate-order-correct permutations of the
canonical one; checked against the float64 oracle (tests/oracle.py, written from the Keras spec), torch.nn.GRU /
RNN, onnxruntime's GRU / RNN, the recorded tf_keras / Keras 3 / MindSpore cases of tests/fixtures/family, and
CuDNNGRU and TF1 rnn_cell cases recorded with real tf_keras 2.21 (inputs built here, outputs as literals)."""

from __future__ import annotations

from typing import List

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lstm_bridge.recurrent import CellKind, DirectionWeights
from lstm_bridge.weights import family as F
from lstm_bridge.weights.layouts import UnsupportedLayoutError

import oracle as R
from helpers import FIXTURES, max_abs, uneven

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _gru_keras(
    rng: np.random.Generator, i: int, u: int, reset_after: bool = True, use_bias: bool = True, dtype=np.float32
) -> List[np.ndarray]:
    """Keras GRU arrays with a different scale per gate block (z, r, h) so gate-order bugs show."""
    s = np.repeat(rng.uniform(0.4, 1.4, 3), u)
    w = [uneven(rng, (i, 3 * u), 0.8) * s, uneven(rng, (u, 3 * u), 0.8) * s]
    if use_bias:
        w.append(uneven(rng, (2, 3 * u) if reset_after else (3 * u,), 0.8) * s)
    return [a.astype(dtype) for a in w]


def _same(a, b) -> bool:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _torch_module(cls, layers: List[List[DirectionWeights]], dtype=torch.float64, **kw):
    w0 = layers[0][0]
    m = cls(
        w0.input_size,
        w0.hidden_size,
        num_layers=len(layers),
        bidirectional=len(layers[0]) == 2,
        batch_first=True,
        bias=w0.has_bias,
        **kw,
    ).to(dtype)
    sd = {k: torch.as_tensor(np.asarray(v)).to(dtype) for k, v in F.recurrent_to_torch_state_dict(layers).items()}
    m.load_state_dict(sd, strict=True)
    return m


def _ort(op: str, W, Rm, B, x_tbi, attrs, initial_h=None, sequence_lens=None):
    """Run a one-node ONNX ``op`` (GRU or RNN) graph on ``x`` (T, B, I) with onnxruntime; returns (Y, Y_h)."""
    d, gh, i = W.shape
    h = Rm.shape[2]
    t, b = x_tbi.shape[:2]
    inits = [
        onnx.numpy_helper.from_array(np.asarray(W, np.float32), "W"),
        onnx.numpy_helper.from_array(np.asarray(Rm, np.float32), "R"),
        onnx.numpy_helper.from_array(np.asarray(B, np.float32), "B"),
    ]
    inputs = ["X", "W", "R", "B", "", ""]
    if sequence_lens is not None:
        inits.append(onnx.numpy_helper.from_array(np.asarray(sequence_lens, np.int32), "sequence_lens"))
        inputs[4] = "sequence_lens"
    if initial_h is not None:
        inits.append(onnx.numpy_helper.from_array(np.asarray(initial_h, np.float32).reshape(d, b, h), "initial_h"))
        inputs[5] = "initial_h"
    while inputs[-1] == "":
        inputs.pop()
    direction = {1: "forward", 2: "bidirectional"}[d] if attrs.get("direction") is None else attrs.pop("direction")
    node = helper.make_node(op, inputs, ["Y", "Y_h"], hidden_size=h, direction=direction, **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [t, b, i])],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, [t, d, b, h]),
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [d, b, h]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    y, y_h = sess.run(None, {"X": np.asarray(x_tbi, np.float32)})
    return y, y_h


def _fixture(name: str):
    return np.load(FIXTURES / "family" / f"{name}.npz")


def _ms_state(z) -> dict:
    """The ``param:<name>`` arrays of a recorded MindSpore case, in the recorded (parameters_and_names) order."""
    return {k[len("param:") :]: z[k] for k in z.files if k.startswith("param:")}


# --- Keras GRU ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("as_torch", [False, True])
def test_gru_keras_round_trip_bit_exact(reset_after, use_bias, as_torch):
    rng = np.random.default_rng(1)
    arrays = _gru_keras(rng, 5, 4, reset_after, use_bias)
    # -0.0 must survive (the reset-before fold adds a zero b_hh only by skipping it)
    arrays[0][0, 0] = -0.0
    if use_bias:
        arrays[2].reshape(-1)[1] = -0.0
    src = [torch.from_numpy(a.copy()) for a in arrays] if as_torch else [a.copy() for a in arrays]
    w = (
        F.gru_from_keras(*src, reset_after=reset_after)
        if use_bias
        else F.gru_from_keras(*src, None, reset_after=reset_after)
    )
    assert w.kind is CellKind.GRU and w.hidden_size == 4 and w.input_size == 5
    assert isinstance(w.w_ih, torch.Tensor) == as_torch
    back = F.gru_to_keras(w, reset_after=reset_after)
    assert len(back) == len(arrays)
    for a, b in zip(arrays, back):
        assert _same(a, b)
    for a, s in zip(arrays, src):  # inputs untouched
        assert _same(a, s)


def test_gru_from_keras_block_map():
    """The canonical r block is Keras's second column block, z the first, n the third; biases likewise."""
    u, i = 2, 3
    kernel = np.arange(i * 3 * u, dtype=np.float32).reshape(i, 3 * u)
    rec = 100 + np.arange(u * 3 * u, dtype=np.float32).reshape(u, 3 * u)
    bias = 1000 + np.arange(6 * u, dtype=np.float32).reshape(2, 3 * u)
    w = F.gru_from_keras(kernel, rec, bias, reset_after=True)
    np.testing.assert_array_equal(w.w_ih[:u], kernel[:, u : 2 * u].T)  # r
    np.testing.assert_array_equal(w.w_ih[u : 2 * u], kernel[:, :u].T)  # z
    np.testing.assert_array_equal(w.w_hh[2 * u :], rec[:, 2 * u :].T)  # n
    np.testing.assert_array_equal(w.b_ih, bias[0][[2, 3, 0, 1, 4, 5]])
    np.testing.assert_array_equal(w.b_hh, bias[1][[2, 3, 0, 1, 4, 5]])
    wb = F.gru_from_keras(kernel, rec, bias[0], reset_after=False)
    np.testing.assert_array_equal(wb.b_ih, bias[0][[2, 3, 0, 1, 4, 5]])
    assert wb.b_hh is not None and not wb.b_hh.any() and wb.b_hh.dtype == np.float32


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_from_keras_runs_as_torch_gru(bidirectional):
    """Keras reset_after=True weights through the layout = torch.nn.GRU computing the oracle's Keras GRU."""
    rng = np.random.default_rng(2)
    B, T, I, u = 3, 6, 5, 4
    x = rng.normal(size=(B, T, I))
    fw = _gru_keras(rng, I, u, dtype=np.float64)
    dirs = [F.gru_from_keras(*fw, reset_after=True)]
    if bidirectional:
        bw = _gru_keras(rng, I, u, dtype=np.float64)
        dirs.append(F.gru_from_keras(*bw, reset_after=True))
        want = R.keras_bidirectional_family(
            "gru", x, fw, bw, merge_mode="concat", return_sequences=True, reset_after=True
        )
    else:
        want = R.keras_gru(x, *fw, reset_after=True, return_sequences=True)
    got, _ = _torch_module(torch.nn.GRU, [dirs])(torch.from_numpy(x))
    assert max_abs(got, want) < 1e-12
    # and the permutation matters: unpermuted blocks are far off (keras-team/keras#15915)
    wrong = DirectionWeights(
        np.ascontiguousarray(fw[0].T), np.ascontiguousarray(fw[1].T), fw[2][0], fw[2][1], CellKind.GRU
    )
    bad, _ = _torch_module(torch.nn.GRU, [[wrong] + dirs[1:]])(torch.from_numpy(x))
    assert max_abs(bad, want) > 1e-2


def test_gru_reset_before_fold_and_form_refusal():
    """Reset-before weights with a recurrent bias (ONNX linear_before_reset=0) fold into Keras's one bias;
    a change of form is refused with the reason."""
    rng = np.random.default_rng(3)
    w = F.gru_from_keras(*_gru_keras(rng, 3, 4, reset_after=True), reset_after=True)
    kernel, rec, bias = F.gru_to_keras(w, reset_after=False)
    assert bias.shape == (12,)
    np.testing.assert_array_equal(bias, F.gru_to_keras(w, reset_after=True)[2].sum(axis=0))
    F.check_gru_form(True, True, "torch.nn.GRU")
    F.check_gru_form(False, False, "a Keras GRU(reset_after=False)")
    with pytest.raises(UnsupportedLayoutError, match=r"reset_after=False.*torch\.nn\.GRU.*different functions"):
        F.check_gru_form(False, True, "torch.nn.GRU")
    with pytest.raises(UnsupportedLayoutError, match=r"b_hn inside r"):
        F.check_gru_form(True, False, "a Keras GRU(reset_after=False)")


def test_gru_keras_shape_errors_name_expected_and_received():
    k, r, b = _gru_keras(np.random.default_rng(4), 3, 4, reset_after=True)
    with pytest.raises(ValueError, match=r"reset_after=False must be \(12,\); received shape \(2, 12\)"):
        F.gru_from_keras(k, r, b, reset_after=False)
    with pytest.raises(ValueError, match=r"reset_after=True must be \(2, 12\); received shape \(12,\)"):
        F.gru_from_keras(k, r, b[0], reset_after=True)
    with pytest.raises(ValueError, match=r"recurrent_kernel must be \(units, 3\*units\); received shape \(4, 16\)"):
        F.gru_from_keras(k, np.zeros((4, 16), np.float32), b)
    with pytest.raises(ValueError, match=r"kernel must be \(input_dim, 12\); received shape \(3, 9\)"):
        F.gru_from_keras(k[:, :9], r, b)
    lstm = DirectionWeights(np.zeros((16, 3)), np.zeros((16, 4)))
    with pytest.raises(ValueError, match="expects GRU weights; received LSTM"):
        F.gru_to_keras(lstm)


# --- Keras SimpleRNN ----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_keras_round_trip_and_torch_rnn(activation):
    rng = np.random.default_rng(5)
    B, T, I, u = 3, 7, 4, 5
    arrays = [uneven(rng, (I, u), 0.9), uneven(rng, (u, u), 0.9), uneven(rng, (u,), 0.9)]
    w = F.rnn_from_keras(*arrays)
    assert w.kind is CellKind.RNN and not w.b_hh.any()
    for a, b in zip(arrays, F.rnn_to_keras(w)):
        assert _same(a, b)
    tw = F.rnn_from_keras(*[torch.from_numpy(a) for a in arrays])
    assert isinstance(tw.w_ih, torch.Tensor) and tw.equal(w)
    x = rng.normal(size=(B, T, I))
    want = R.keras_simple_rnn(x, *arrays, activation=activation, return_sequences=True)
    got, _ = _torch_module(torch.nn.RNN, [[w.numpy()]], nonlinearity=activation)(torch.from_numpy(x))
    assert max_abs(got, want) < 1e-12
    # two torch biases fold into the one Keras bias
    two = DirectionWeights(w.w_ih, w.w_hh, arrays[2] * 0.5, arrays[2] * 0.5, CellKind.RNN)
    np.testing.assert_array_equal(F.rnn_to_keras(two)[2], arrays[2])
    with pytest.raises(ValueError, match=r"bias must be \(5,\); received shape \(4,\)"):
        F.rnn_from_keras(arrays[0], arrays[1], arrays[2][:4])


# --- PyTorch / MindSpore state dicts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,kind", [(torch.nn.GRU, CellKind.GRU), (torch.nn.RNN, CellKind.RNN), (torch.nn.LSTM, CellKind.LSTM)]
)
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_round_trip_any_gate_count(cls, kind, bias):
    torch.manual_seed(0)
    m = cls(5, 4, num_layers=2, bidirectional=True, bias=bias)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    for explicit in (None, kind, kind.value.lower()):
        layers = F.recurrent_from_torch_state_dict({"enc." + k: v for k, v in sd.items()}, explicit, prefix="enc.")
        assert [len(d) for d in layers] == [2, 2]
        assert all(w.kind is kind for d in layers for w in d)
        assert layers[1][0].input_size == 8
    back = F.recurrent_to_torch_state_dict(layers)
    assert set(back) == set(sd)
    for k in sd:
        assert _same(back[k], sd[k])
    m2 = cls(5, 4, num_layers=2, bidirectional=True, bias=bias)
    m2.load_state_dict(back, strict=True)
    # MindSpore's parameters_and_names order: all weight_ih, all weight_hh, all bias_ih, all bias_hh
    first = list(back)[:4]
    assert first == ["weight_ih_l0", "weight_ih_l0_reverse", "weight_ih_l1", "weight_ih_l1_reverse"]


def test_state_dict_errors():
    sd = dict(torch.nn.GRU(3, 2).state_dict())
    with pytest.raises(ValueError, match=r"unexpected keys .*'extra'"):
        F.recurrent_from_torch_state_dict({**sd, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"\(RNN\): w_hh must be \(H, H\); received shape \(6, 2\)"):
        F.recurrent_from_torch_state_dict(sd, "RNN")
    with pytest.raises(ValueError, match="bias_ih_l0 and bias_hh_l0 must both be present"):
        F.recurrent_from_torch_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match=r"weight_hh_l0 must be \(G\*H, H\) with G = 1 \(RNN\), 3 \(GRU\) or 4"):
        F.recurrent_from_torch_state_dict({**sd, "weight_hh_l0": torch.zeros(4, 2)})
    with pytest.raises(ValueError, match="expected a cell kind LSTM, GRU or RNN; received 'conv'"):
        F.recurrent_from_torch_state_dict(sd, "conv")
    gru = F.recurrent_from_torch_state_dict(sd)[0][0]
    rnn = DirectionWeights(torch.zeros(2, 3), torch.zeros(2, 2), kind=CellKind.RNN)
    with pytest.raises(ValueError, match="one cell kind; layer 0 is GRU, layer 1 direction 0 is RNN"):
        F.recurrent_to_torch_state_dict([[gru], [rnn]])


# --- ONNX GRU / RNN, checked by onnxruntime -----------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_onnx_gru_linear_before_reset_1_is_torch_gru(bidirectional):
    rng = np.random.default_rng(6)
    B, T, I, H = 3, 5, 4, 6
    dirs = [F.gru_from_keras(*_gru_keras(rng, I, H), reset_after=True) for _ in range(1 + bidirectional)]
    W, Rm, Bias = F.gru_to_onnx(dirs)
    assert W.shape == (len(dirs), 3 * H, I) and Rm.shape == (len(dirs), 3 * H, H) and Bias.shape == (len(dirs), 6 * H)
    back = F.gru_from_onnx(W, Rm, Bias)
    assert all(a.equal(b) for a, b in zip(back, dirs))
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    y, y_h = _ort("GRU", W, Rm, Bias, x.transpose(1, 0, 2), {"linear_before_reset": 1})
    m = _torch_module(torch.nn.GRU, [[d.numpy() for d in dirs]], dtype=torch.float64)
    want, h_n = m(torch.from_numpy(x.astype(np.float64)))
    got = y.transpose(2, 0, 1, 3).reshape(B, T, -1)  # [T, D, B, H] -> [B, T, D*H]
    assert max_abs(got, want) < 2e-6
    assert max_abs(y_h, h_n) < 2e-6


def test_onnx_gru_linear_before_reset_0_is_keras_reset_before():
    """Keras reset_after=False -> canonical -> ONNX (linear_before_reset=0) runs the oracle's Keras GRU; and
    ONNX reset-before weights with a recurrent bias fold into the Keras bias (Rb_h adds outside r in ONNX)."""
    rng = np.random.default_rng(7)
    B, T, I, u = 3, 6, 4, 5
    arrays = _gru_keras(rng, I, u, reset_after=False)
    w = F.gru_from_keras(*arrays, reset_after=False)
    W, Rm, Bias = F.gru_to_onnx([w])
    assert not Bias[0, 3 * u :].any()
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    y, _ = _ort("GRU", W, Rm, Bias, x.transpose(1, 0, 2), {"linear_before_reset": 0})
    want = R.keras_gru(x, *arrays, reset_after=False, return_sequences=True)
    assert max_abs(y[:, 0].transpose(1, 0, 2), want) < 2e-6
    # a different function from linear_before_reset=1 on the same arrays (the attribute carries the form)
    y1, _ = _ort("GRU", W, Rm, Bias, x.transpose(1, 0, 2), {"linear_before_reset": 1})
    assert max_abs(y1, y) > 1e-3
    # a non-zero recurrent bias (all three gates) folds exactly into Keras's input-side bias
    Bias2 = Bias.copy()
    Bias2[0, 3 * u :] = uneven(rng, (3 * u,), 0.8)
    y2, _ = _ort("GRU", W, Rm, Bias2, x.transpose(1, 0, 2), {"linear_before_reset": 0})
    (w2,) = F.gru_from_onnx(W, Rm, Bias2)
    k2 = F.gru_to_keras(w2, reset_after=False)
    want2 = R.keras_gru(x, *k2, reset_after=False, return_sequences=True)
    assert max_abs(y2[:, 0].transpose(1, 0, 2), want2) < 2e-6
    assert max_abs(want2, want) > 1e-3


@pytest.mark.parametrize("activation", ["Tanh", "Relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_onnx_rnn_is_torch_rnn(activation, bidirectional):
    rng = np.random.default_rng(8)
    B, T, I, H = 2, 5, 3, 4
    dirs = [
        DirectionWeights(
            uneven(rng, (H, I), 0.9),
            uneven(rng, (H, H), 0.9),
            uneven(rng, (H,), 0.9),
            uneven(rng, (H,), 0.9),
            CellKind.RNN,
        )
        for _ in range(1 + bidirectional)
    ]
    W, Rm, Bias = F.rnn_to_onnx(dirs)
    assert Bias.shape == (len(dirs), 2 * H)
    assert all(a.equal(b) for a, b in zip(F.rnn_from_onnx(W, Rm, Bias), dirs))
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    y, y_h = _ort("RNN", W, Rm, Bias, x.transpose(1, 0, 2), {"activations": [activation] * len(dirs)})
    m = _torch_module(torch.nn.RNN, [dirs], nonlinearity=activation.lower())
    want, h_n = m(torch.from_numpy(x.astype(np.float64)))
    assert max_abs(y.transpose(2, 0, 1, 3).reshape(B, T, -1), want) < 2e-6
    assert max_abs(y_h, h_n) < 2e-6
    # and against the oracle's Keras SimpleRNN, forward direction (two biases fold into one)
    keras = F.rnn_to_keras(dirs[0])
    want_k = R.keras_simple_rnn(x, *keras, activation=activation.lower(), return_sequences=True)
    assert max_abs(y[:, 0].transpose(1, 0, 2), want_k) < 2e-6


def test_onnx_shape_errors():
    with pytest.raises(ValueError, match=r"ONNX GRU R must be \[D, 3H, H\]; received shape \(1, 8, 2\)"):
        F.gru_from_onnx(np.zeros((1, 8, 3)), np.zeros((1, 8, 2)))
    with pytest.raises(ValueError, match=r"ONNX RNN B must be \[1, 4\]; received shape \(1, 2\)"):
        F.rnn_from_onnx(np.zeros((1, 2, 3)), np.zeros((1, 2, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="ONNX GRU takes 1 or 2 directions; received 3"):
        F.gru_to_onnx([F.gru_from_keras(np.zeros((2, 6)), np.zeros((2, 6)))] * 3)


# --- legacy: TF1 CuDNNGRU and Keras 1 -------------------------------------------------------------------


# Recorded 2026-11-27 with tf_keras 2.21 (TF 2.21 CPU): a Sequential [tf.compat.v1.keras.layers.CuDNNGRU(2,
# return_sequences=True)] on I = 3 got the weights below (set_weights, save_weights to .h5), which
# tf_keras.layers.GRU(2, reset_after=True, return_sequences=True).load_weights(...) read back through its
# legacy converter (_convert_rnn_weights) as _CUDNN_AS_KERAS and computed _CUDNN_Y on _cudnn_x().
# (CuDNNGRU itself only runs on a GPU; its own forward is checked at source level in gru_from_cudnn's docstring.)
def _cudnn_inputs():
    I, u = 3, 2
    k = (np.arange(I * 3 * u, dtype=np.float32).reshape(I, 3 * u) - 8) / 16
    r = (np.arange(u * 3 * u, dtype=np.float32).reshape(u, 3 * u) - 5) / 13
    b = (np.arange(6 * u, dtype=np.float32) - 6) / 10
    return k, r, b


def _cudnn_x():
    return (np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3) - 12) / 7


_CUDNN_AS_KERAS = [
    np.array(
        [
            [-0.5, -0.0625, -0.375, 0.0625, -0.25, 0.1875],
            [-0.4375, 0.25, -0.3125, 0.375, -0.1875, 0.5],
            [-0.125, 0.3125, 0.0, 0.4375, 0.125, 0.5625],
        ],
        np.float32,
    ),
    np.array(
        [
            [-0.3846154, 0.07692308, -0.23076923, 0.23076923, -0.07692308, 0.3846154],
            [-0.30769232, 0.15384616, -0.15384616, 0.30769232, 0.0, 0.46153846],
        ],
        np.float32,
    ),
    np.array([[-0.6, -0.5, -0.4, -0.3, -0.2, -0.1], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], np.float32),
]
_CUDNN_Y = np.array(
    [
        [
            [0.1372571438550949, -0.7234886884689331],
            [0.2287735641002655, -0.8458141088485718],
            [0.25696244835853577, -0.7481557130813599],
            [0.19630920886993408, -0.45470377802848816],
        ],
        [
            [-0.01029280386865139, 0.2180711179971695],
            [-0.1399342119693756, 0.5049782991409302],
            [-0.29758748412132263, 0.6969467401504517],
            [-0.43984150886535645, 0.8072293400764465],
        ],
    ]
)


@pytest.mark.parametrize("as_torch", [False, True])
def test_cudnn_gru_matches_tf_keras_legacy_loader(as_torch):
    k, r, b = _cudnn_inputs()
    src = [torch.from_numpy(a) for a in (k, r, b)] if as_torch else [k, r, b]
    w = F.gru_from_cudnn(*src)
    assert w.kind is CellKind.GRU and isinstance(w.w_ih, torch.Tensor) == as_torch
    # the very arrays tf_keras's loader produced, after the Keras -> canonical permutation
    for a, e in zip(F.gru_to_keras(w.numpy(), reset_after=True), _CUDNN_AS_KERAS):
        assert _same(a, e)
    got, _ = _torch_module(torch.nn.GRU, [[w.numpy()]], dtype=torch.float32)(torch.from_numpy(_cudnn_x()))
    assert max_abs(got, _CUDNN_Y) < 1e-6


def test_cudnn_gru_source_level_layout():
    """cudnn_gru.py hands cuDNN each stored (I, u) kernel block flattened in C order as a (u, I) matrix (no
    transpose), the recurrent blocks as they are, and biases r, z, h = stored [u:2u], [:u], [2u:3u] (+3u)."""
    k, r, b = _cudnn_inputs()
    u, i = 2, 3
    w = F.gru_from_cudnn(k, r, b)
    for canon, stored in enumerate((1, 0, 2)):
        cols = slice(stored * u, (stored + 1) * u)
        rows = slice(canon * u, (canon + 1) * u)
        np.testing.assert_array_equal(w.w_ih[rows], k[:, cols].reshape(-1).reshape(u, i))
        np.testing.assert_array_equal(w.w_hh[rows], r[:, cols])
        np.testing.assert_array_equal(w.b_ih[rows], b[cols])
        np.testing.assert_array_equal(w.b_hh[rows], b[3 * u :][cols])
    with pytest.raises(
        ValueError,
        match=r"bias must be \(6\*units,\) = \(12,\); received shape \(2, 6\) "
        r"\(that is a Keras GRU bias",
    ):
        F.gru_from_cudnn(k, r, b.reshape(2, 6))


def test_keras1_gru_is_reset_before_keras2():
    rng = np.random.default_rng(9)
    I, u = 3, 4
    arrays = _gru_keras(rng, I, u, reset_after=False)
    per_gate = []
    for g in range(3):
        cols = slice(g * u, (g + 1) * u)
        per_gate += [arrays[0][:, cols], arrays[1][:, cols], arrays[2][cols]]
    w = F.gru_from_keras1(per_gate)
    assert w.equal(F.gru_from_keras(*arrays, reset_after=False))
    x = rng.normal(size=(2, 5, I))
    want = R.keras_gru(x, *arrays, reset_after=False, return_sequences=True)
    got = R.keras_gru(x, *F.gru_to_keras(w, reset_after=False), reset_after=False, return_sequences=True)
    assert max_abs(got, want) == 0.0
    with pytest.raises(ValueError, match="a Keras 1 GRU has 9 weight arrays .*received 3"):
        F.gru_from_keras1(arrays)


# --- recorded real-framework cases (tests/fixtures/family, tools/probe_family.py) ---------------------------


def test_recorded_tf_keras_gru_runs_in_torch_and_onnx():
    """tf_keras 2.21 ``GRU`` (reset_after=True, h0): its weights through the layout run in torch.nn.GRU and in
    onnxruntime's GRU (linear_before_reset=1) to the recorded outputs."""
    z = _fixture("tk_gru_default_h0")
    w = F.gru_from_keras(z["w:0"], z["w:1"], z["w:2"], reset_after=True)
    y, h = _torch_module(torch.nn.GRU, [[w]], dtype=torch.float32)(
        torch.from_numpy(z["x"]), torch.from_numpy(z["h0"])[None]
    )
    assert max_abs(y, z["out:0"]) < 1e-6 and max_abs(h[0], z["out:1"]) < 1e-6
    W, Rm, Bias = F.gru_to_onnx([w])
    y, y_h = _ort("GRU", W, Rm, Bias, z["x"].transpose(1, 0, 2), {"linear_before_reset": 1}, initial_h=z["h0"])
    assert max_abs(y[:, 0].transpose(1, 0, 2), z["out:0"]) < 1e-6 and max_abs(y_h[0], z["out:1"]) < 1e-6


def test_recorded_tf1_style_gru_v1_is_onnx_linear_before_reset_0():
    """tf_keras ``gru_v1.GRU`` defaults (TF 1.15's: reset_after=False, Keras-2 hard_sigmoid): ONNX GRU with
    linear_before_reset=0 and HardSigmoid(alpha=0.2, beta=0.5) on the converted weights gives the recorded
    outputs."""
    z = _fixture("tk_gru_v1_defaults")
    w = F.gru_from_keras(z["w:0"], z["w:1"], z["w:2"], reset_after=False)
    W, Rm, Bias = F.gru_to_onnx([w])
    attrs = {
        "linear_before_reset": 0,
        "activations": ["HardSigmoid", "Tanh"],
        "activation_alpha": [0.2],
        "activation_beta": [0.5],
    }
    y, y_h = _ort("GRU", W, Rm, Bias, z["x"].transpose(1, 0, 2), attrs)
    assert max_abs(y[:, 0].transpose(1, 0, 2), z["out:0"]) < 1e-6 and max_abs(y_h[0], z["out:1"]) < 1e-6


def test_recorded_keras3_gru_reset_before_backwards_is_onnx_reverse():
    """Keras 3.15.1 ``GRU(reset_after=False, go_backwards=True)``: ONNX direction="reverse" (outputs in time
    order; Keras returns processing order, so flipped) with linear_before_reset=0."""
    z = _fixture("k3_gru_reset_before_backwards")
    w = F.gru_from_keras(z["w:0"], z["w:1"], z["w:2"], reset_after=False)
    W, Rm, Bias = F.gru_to_onnx([w])
    y, y_h = _ort("GRU", W, Rm, Bias, z["x"].transpose(1, 0, 2), {"linear_before_reset": 0, "direction": "reverse"})
    assert max_abs(y[::-1, 0].transpose(1, 0, 2), z["out:0"]) < 1e-6 and max_abs(y_h[0], z["out:1"]) < 1e-6


def test_recorded_mindspore_gru_stack_names_order_and_onnx():
    """MindSpore 2.10 ``nn.GRU(3, 4, 2, bidirectional, batch_first)`` with hx and seq_length: the recorded
    parameters (in ``parameters_and_names`` order) read into canonical layers and write back in that order;
    two onnxruntime GRU nodes (sequence_lens, initial_h) give MindSpore's outputs within its approximate CPU
    activations (docs/spec/mindspore_gru_rnn.md §3)."""
    z = _fixture("ms_gru_2layer_bi_batch_first_seq_hx")
    state = _ms_state(z)
    layers = F.recurrent_from_torch_state_dict(state)
    assert [[w.kind for w in d] for d in layers] == [[CellKind.GRU] * 2] * 2
    back = F.recurrent_to_torch_state_dict(layers)
    assert list(back) == list(state) and all(_same(back[k], state[k]) for k in state)
    x = z["x"].transpose(1, 0, 2)  # batch_first -> (T, B, I)
    hx, lens = z["hx"], z["seq_length"]
    h_n = []
    for layer, dirs in enumerate(layers):
        W, Rm, Bias = F.gru_to_onnx(dirs)
        y, y_h = _ort(
            "GRU",
            W,
            Rm,
            Bias,
            x,
            {"linear_before_reset": 1},
            initial_h=hx[2 * layer : 2 * layer + 2],
            sequence_lens=lens,
        )
        x = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)  # [T, D, B, H] -> [T, B, D*H]
        h_n.append(y_h)
    assert max_abs(x.transpose(1, 0, 2), z["out:0"]) < 1e-5
    h_n = np.concatenate(h_n)
    valid = lens > 0
    assert max_abs(h_n[:, valid], z["out:1"][:, valid]) < 1e-5
    # a length-0 row: MindSpore returns h0 (spec §4), onnxruntime zeros - a semantic, not a layout, difference
    assert list(lens) == [5, 3, 0] and max_abs(z["out:1"][:, ~valid], hx[:, ~valid]) == 0.0
    assert not h_n[:, ~valid].any()


def test_recorded_mindspore_rnn_relu_without_bias_is_torch_rnn():
    """MindSpore 2.10 ``nn.RNN(relu, has_bias=False, num_layers=2)``: no bias keys, torch.nn.RNN(bias=False)."""
    z = _fixture("ms_rnn_relu_2layer")
    state = _ms_state(z)
    layers = F.recurrent_from_torch_state_dict(state, "RNN")
    assert not layers[0][0].has_bias and list(F.recurrent_to_torch_state_dict(layers)) == list(state)
    m = _torch_module(torch.nn.RNN, layers, nonlinearity="relu")
    y, h = m(torch.from_numpy(z["x"].transpose(1, 0, 2).astype(np.float64)))
    assert max_abs(y.transpose(0, 1), z["out:0"]) < 1e-5 and max_abs(h, z["out:1"]) < 1e-5


def test_recorded_mindspore_rnn_tanh_bidirectional_seq_length_is_onnx_rnn():
    """MindSpore 2.10 ``nn.RNN(tanh, bidirectional)`` with hx and seq_length [5, 2, 4]: onnxruntime's RNN
    (sequence_lens reverses only the valid prefix, as MindSpore's ReverseSequence does) on the converted weights."""
    z = _fixture("ms_rnn_tanh_bi_seq")
    (dirs,) = F.recurrent_from_torch_state_dict(_ms_state(z), CellKind.RNN)
    W, Rm, Bias = F.rnn_to_onnx(dirs)
    y, y_h = _ort("RNN", W, Rm, Bias, z["x"], {}, initial_h=z["hx"], sequence_lens=z["seq_length"])
    # MindSpore's CPU tanh is approximate: exact math is 1.1e-4 off here (spec §3.2 measures up to 1.2e-4 at
    # this scale); a layout slip is off by O(0.1)
    assert max_abs(y.transpose(0, 2, 1, 3).reshape(*z["out:0"].shape), z["out:0"]) < 2e-4
    assert max_abs(y_h, z["out:1"]) < 2e-4


# --- TF 1.x rnn_cell.GRUCell / BasicRNNCell -----------------------------------------------------------------


# Recorded 2026-11-27 with tf_keras 2.21 (TF 2.21 CPU, eager): tf.compat.v1.nn.rnn_cell.GRUCell(2) /
# BasicRNNCell(2) built on I = 3 (variables gru_cell/gates/kernel (5, 4), gates/bias (4,), candidate/kernel (5, 2),
# candidate/bias (2,); basic_rnn_cell/kernel (5, 2), bias (2,)), set to _tf1_inputs(), called step by step on
# _tf1_x() from h = 0; the outputs per step.
def _tf1_inputs():
    I, H = 3, 2
    gk = (np.arange((I + H) * 2 * H, dtype=np.float32).reshape(I + H, 2 * H) - 9.5) / 11
    gb = (np.arange(2 * H, dtype=np.float32) - 1.5) / 4
    ck = (np.arange((I + H) * H, dtype=np.float32).reshape(I + H, H) - 4.5) / 7
    cb = (np.arange(H, dtype=np.float32) - 0.5) / 3
    rk = (np.arange((I + H) * H, dtype=np.float32).reshape(I + H, H) - 4.5) / 6
    rb = (np.arange(H, dtype=np.float32) - 0.5) / 5
    return (gk, gb, ck, cb), (rk, rb)


def _tf1_x():
    return (np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) - 8.5) / 6


_TF1_GRU_Y = np.array(
    [
        [
            [0.1635095775127411, 0.16236978769302368],
            [0.2859049439430237, 0.2837121784687042],
            [0.2941117286682129, 0.3491297960281372],
        ],
        [
            [-0.16280080378055573, 0.04228224232792854],
            [-0.5004054307937622, -0.09307503700256348],
            [-0.8023086786270142, -0.3724053204059601],
        ],
    ]
)
_TF1_RNN_Y = np.array(
    [
        [
            [0.9175982475280762, 0.8172934055328369],
            [0.929508626461029, 0.9434902667999268],
            [0.8027711510658264, 0.9039710760116577],
        ],
        [
            [-0.2925831079483032, 0.02360672503709793],
            [-0.7555503249168396, -0.42648598551750183],
            [-0.9632465243339539, -0.8766400814056396],
        ],
    ]
)


@pytest.mark.parametrize("as_torch", [False, True])
def test_tf1_gru_cell_round_trip_and_recorded_outputs(as_torch):
    gru, _ = _tf1_inputs()
    src = [torch.from_numpy(a) for a in gru] if as_torch else list(gru)
    w = F.gru_from_tf1(*src)
    assert w.kind is CellKind.GRU and w.input_size == 3 and w.hidden_size == 2
    for a, b in zip(gru, F.gru_to_tf1(w)):
        assert _same(torch.as_tensor(a) if as_torch else a, b)
    w = w.numpy()
    # reset-before form: ONNX linear_before_reset=0 and the oracle's Keras GRU(reset_after=False) both give
    # the recorded TF1 outputs
    W, Rm, Bias = F.gru_to_onnx([w])
    y, _ = _ort("GRU", W, Rm, Bias, _tf1_x().transpose(1, 0, 2), {"linear_before_reset": 0})
    assert max_abs(y[:, 0].transpose(1, 0, 2), _TF1_GRU_Y) < 1e-6
    keras = F.gru_to_keras(w, reset_after=False)
    assert max_abs(R.keras_gru(_tf1_x(), *keras, reset_after=False, return_sequences=True), _TF1_GRU_Y) < 1e-6
    # reading r and z the wrong way round is visible
    gk, gb, ck, cb = gru
    swapped = F.gru_from_tf1(np.concatenate([gk[:, 2:], gk[:, :2]], 1), np.r_[gb[2:], gb[:2]], ck, cb)
    y2, _ = _ort("GRU", *F.gru_to_onnx([swapped]), _tf1_x().transpose(1, 0, 2), {"linear_before_reset": 0})
    assert max_abs(y2[:, 0].transpose(1, 0, 2), _TF1_GRU_Y) > 1e-2


def test_tf1_basic_rnn_cell_round_trip_and_recorded_outputs():
    _, (rk, rb) = _tf1_inputs()
    w = F.rnn_from_tf1(rk, rb, input_size=3)
    assert w.kind is CellKind.RNN and w.hidden_size == 2
    for a, b in zip((rk, rb), F.rnn_to_tf1(w)):
        assert _same(a, b)
    y, _ = _torch_module(torch.nn.RNN, [[w]], dtype=torch.float32)(torch.from_numpy(_tf1_x()))
    assert max_abs(y, _TF1_RNN_Y) < 1e-6
    with pytest.raises(ValueError, match=r"= \(4 \+ H, H\); received shape \(5, 2\)"):
        F.rnn_from_tf1(rk, rb, input_size=4)


def test_tf1_errors_and_bias_free_weights():
    (gk, gb, ck, cb), _ = _tf1_inputs()
    with pytest.raises(ValueError, match=r"gates/kernel must be \(5, 4\); received shape \(5, 3\)"):
        F.gru_from_tf1(gk[:, :3], gb, ck, cb)
    with pytest.raises(ValueError, match="must both be given or both be None"):
        F.gru_from_tf1(gk, gb, ck, None)
    no_bias = F.gru_from_tf1(gk, None, ck, None)
    assert not no_bias.has_bias
    out = F.gru_to_tf1(no_bias)
    assert out[1].shape == (4,) and not out[1].any() and out[3].shape == (2,) and not out[3].any()


# --- every layout round-trips bit for bit over sizes and dtypes ---------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    i=st.integers(1, 6),
    h=st.integers(1, 5),
    d=st.integers(1, 2),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    as_torch=st.booleans(),
)
def test_every_layout_round_trips_bit_exact(i, h, d, seed, dtype, as_torch):
    rng = np.random.default_rng(seed)

    def arr(*shape):
        a = rng.normal(size=shape).astype(dtype)
        return torch.from_numpy(a) if as_torch else a

    def same_w(a: DirectionWeights, b: DirectionWeights) -> bool:
        return a.equal(b) and isinstance(b.w_ih, torch.Tensor) == as_torch

    k, r = arr(i, 3 * h), arr(h, 3 * h)
    for reset_after, b in ((True, arr(2, 3 * h)), (False, arr(3 * h))):
        back = F.gru_to_keras(F.gru_from_keras(k, r, b, reset_after=reset_after), reset_after=reset_after)
        assert all(_same(x, y) for x, y in zip([k, r, b], back))
    grus = [DirectionWeights(arr(3 * h, i), arr(3 * h, h), arr(3 * h), arr(3 * h), CellKind.GRU) for _ in range(d)]
    rnns = [DirectionWeights(arr(h, i), arr(h, h), arr(h), arr(h), CellKind.RNN) for _ in range(d)]
    assert all(same_w(a, b) for a, b in zip(grus, F.gru_from_onnx(*F.gru_to_onnx(grus))))
    assert all(same_w(a, b) for a, b in zip(rnns, F.rnn_from_onnx(*F.rnn_to_onnx(rnns))))
    for layers in (
        [
            grus,
            [
                DirectionWeights(arr(3 * h, d * h), arr(3 * h, h), arr(3 * h), arr(3 * h), CellKind.GRU)
                for _ in range(d)
            ],
        ],
        [rnns],
    ):
        again = F.recurrent_from_torch_state_dict(F.recurrent_to_torch_state_dict(layers))
        assert all(same_w(a, b) for la, lb in zip(layers, again) for a, b in zip(la, lb))
    simple = [arr(i, h), arr(h, h), arr(h)]
    assert all(_same(x, y) for x, y in zip(simple, F.rnn_to_keras(F.rnn_from_keras(*simple))))
    tf1 = [arr(i + h, 2 * h), arr(2 * h), arr(i + h, h), arr(h)]
    assert all(_same(x, y) for x, y in zip(tf1, F.gru_to_tf1(F.gru_from_tf1(*tf1))))
    cell = [arr(i + h, h), arr(h)]
    assert all(_same(x, y) for x, y in zip(cell, F.rnn_to_tf1(F.rnn_from_tf1(*cell, input_size=i))))
    cudnn = F.gru_from_cudnn(arr(i, 3 * h), arr(h, 3 * h), arr(6 * h))
    assert cudnn.w_ih.dtype == k.dtype and isinstance(cudnn.w_ih, torch.Tensor) == as_torch


@pytest.mark.parametrize(
    "name,cls,kind",
    [("ms_grucell_unrolled", torch.nn.GRUCell, CellKind.GRU), ("ms_rnncell_unrolled", torch.nn.RNNCell, CellKind.RNN)],
)
def test_recorded_mindspore_cells_are_torch_cells(name, cls, kind):
    """MindSpore 2.10 ``nn.GRUCell`` / ``nn.RNNCell`` (tanh) unrolled 5 steps: its parameters through the cell
    codec into the torch cell give the recorded states within MindSpore's approximate CPU activations (spec §3.2
    measures exact math up to 9.0e-5 / 3.8e-4 on these cases; a layout slip is off by O(0.1))."""
    z = _fixture(name)
    state = _ms_state(z)
    w = F.cell_from_torch_state_dict({"cell." + k: v for k, v in state.items()}, kind.value, prefix="cell.")
    assert w.kind is kind
    back = F.cell_to_torch_state_dict(w)
    assert list(back) == list(state) and all(_same(back[k], state[k]) for k in state)
    m = cls(w.input_size, w.hidden_size).double()
    m.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in back.items()}, strict=True)
    h = torch.from_numpy(z["hx"].astype(np.float64))
    outs = []
    for t in range(z["x"].shape[0]):
        h = m(torch.from_numpy(z["x"][t].astype(np.float64)), h)
        outs.append(h)
    assert max_abs(torch.stack(outs), z["out:0"]) < 5e-4


def test_cell_state_dict_errors():
    sd = dict(torch.nn.GRUCell(3, 2).state_dict())
    with pytest.raises(ValueError, match=r"unexpected keys for a GRU cell state dict .*'weight_ih_l0'"):
        F.cell_from_torch_state_dict({**sd, "weight_ih_l0": sd["weight_ih"]}, "GRU")
    with pytest.raises(ValueError, match=r"missing keys \['weight_hh'\]"):
        F.cell_from_torch_state_dict({k: v for k, v in sd.items() if k != "weight_hh"}, "GRU")
    with pytest.raises(ValueError, match=r"\(LSTM cell\): w_hh must be \(4H, H\)"):
        F.cell_from_torch_state_dict(sd, CellKind.LSTM)
    no_bias = F.cell_from_torch_state_dict({k: sd[k] for k in ("weight_ih", "weight_hh")}, "GRU")
    assert list(F.cell_to_torch_state_dict(no_bias)) == ["weight_ih", "weight_hh"]
