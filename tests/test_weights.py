"""lstm_bridge.weights: every foreign layout is a bit-exact, gate-order-correct permutation of the canonical one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_bridge import weights as W

from helpers import keras_weights, uneven


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _canonical_step(w: W.LSTMWeights, x, h, c):
    """One step in the canonical (PyTorch) convention, float64."""
    z = w.w_ih.astype(np.float64) @ x + w.w_hh.astype(np.float64) @ h
    if w.b_ih is not None:
        z = z + w.b_ih + w.b_hh
    i, f, g, o = np.split(z, 4)
    c = _sig(f) * c + _sig(i) * np.tanh(g)
    return _sig(o) * np.tanh(c), c


def _keras_step(kernel, rec, bias, x, h, c):
    """One step in Keras's row convention (spec keras §1), float64, gates i, f, c, o."""
    z = x @ kernel.astype(np.float64) + h @ rec.astype(np.float64)
    if bias is not None:
        z = z + bias
    i, f, g, o = np.split(z, 4)
    c = _sig(f) * c + _sig(i) * np.tanh(g)
    return _sig(o) * np.tanh(c), c


def _onnx_step(Wd, Rd, Bd, x, h, c):
    """One step of the ONNX LSTM operator's equations (gate order i, o, f, c; B = Wb || Rb)."""
    H = Rd.shape[1]
    z = Wd.astype(np.float64) @ x + Rd.astype(np.float64) @ h + Bd[: 4 * H] + Bd[4 * H :]
    i, o, f, g = np.split(z, 4)
    c = _sig(f) * c + _sig(i) * np.tanh(g)
    return _sig(o) * np.tanh(c), c


def _bits_equal(a, b) -> bool:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_round_trip_bit_exact_and_same_step(rng, use_bias):
    kw = keras_weights(rng, 5, 3, use_bias)
    if use_bias:
        kw[2][1] = -0.0  # negative zero must survive the b_ih + b_hh = bias round trip
    w = W.from_keras(*kw) if use_bias else W.from_keras(kw[0], kw[1])
    assert w.w_ih.shape == (12, 5) and w.w_hh.shape == (12, 3)
    assert w.has_bias == use_bias
    back = W.to_keras(w)
    assert len(back) == len(kw)
    assert all(_bits_equal(a, b) for a, b in zip(back, kw))
    x, h, c = rng.normal(size=5), rng.normal(size=3), rng.normal(size=3)
    hk, ck = _keras_step(kw[0], kw[1], kw[2] if use_bias else None, x, h, c)
    hc, cc = _canonical_step(w, x, h, c)
    np.testing.assert_allclose(hc, hk, atol=1e-12)
    np.testing.assert_allclose(cc, ck, atol=1e-12)


def test_keras_torch_tensors_stay_torch(rng):
    kw = [torch.from_numpy(a) for a in keras_weights(rng, 4, 2)]
    w = W.from_keras(*kw)
    assert isinstance(w.w_ih, torch.Tensor) and isinstance(w.b_hh, torch.Tensor)
    assert torch.equal(w.b_hh, torch.zeros(8))
    back = W.to_keras(w)
    assert all(torch.equal(a, b) for a, b in zip(back, kw))


def test_keras_bias_sum_of_two_biases(rng):
    w = W.LSTMWeights(uneven(rng, (8, 3)), uneven(rng, (8, 2)), uneven(rng, (8,)), uneven(rng, (8,)))
    kernel, rec, bias = W.to_keras(w)
    np.testing.assert_array_equal(bias, w.b_ih + w.b_hh)
    x, h, c = rng.normal(size=3), rng.normal(size=2), rng.normal(size=2)
    np.testing.assert_allclose(_keras_step(kernel, rec, bias, x, h, c)[0], _canonical_step(w, x, h, c)[0], atol=1e-6)


def test_keras_shape_errors_name_expected_and_received(rng):
    with pytest.raises(ValueError, match=r"recurrent_kernel must be \(units, 4\*units\); received shape \(3, 10\)"):
        W.from_keras(np.zeros((5, 12), np.float32), np.zeros((3, 10), np.float32))
    with pytest.raises(ValueError, match=r"kernel must be \(input_dim, 12\); received shape \(5, 8\)"):
        W.from_keras(np.zeros((5, 8), np.float32), np.zeros((3, 12), np.float32))
    with pytest.raises(ValueError, match=r"w_ih must be \(4H, I\)"):
        W.LSTMWeights(np.zeros((8, 3)), np.zeros((12, 3)))


def test_torch_state_dict_round_trip_and_order():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, num_layers=2, bidirectional=True)
    sd = {k: v.detach().clone() for k, v in lstm.state_dict().items()}
    layers = W.from_torch_state_dict(sd)
    assert len(layers) == 2 and len(layers[0]) == 2 and layers[1][0].input_size == 10
    back = W.to_torch_state_dict(layers, prefix="lstm.")
    # MindSpore's parameters_and_names order: all weight_ih, then weight_hh, bias_ih, bias_hh
    assert list(back)[:4] == [
        "lstm.weight_ih_l0",
        "lstm.weight_ih_l0_reverse",
        "lstm.weight_ih_l1",
        "lstm.weight_ih_l1_reverse",
    ]
    assert list(back)[-1] == "lstm.bias_hh_l1_reverse"
    assert set(back) == {"lstm." + k for k in sd}
    assert all(_bits_equal(back["lstm." + k], v) for k, v in sd.items())
    with pytest.raises(ValueError, match="unexpected keys"):
        W.from_torch_state_dict(dict(sd, extra=torch.zeros(1)))
    missing = dict(sd)
    del missing["weight_hh_l1"]
    with pytest.raises(ValueError, match="missing keys weight_ih_l1 / weight_hh_l1"):
        W.from_torch_state_dict(missing)


def test_torch_names():
    assert W.torch_param_names(1, reverse=True) == [
        "weight_ih_l1_reverse",
        "weight_hh_l1_reverse",
        "bias_ih_l1_reverse",
        "bias_hh_l1_reverse",
    ]
    assert W.torch_param_names(0, cell=True, has_bias=False) == ["weight_ih", "weight_hh"]


def test_onnx_round_trip_and_gate_order(rng):
    dirs = [
        W.LSTMWeights(uneven(rng, (16, 3)), uneven(rng, (16, 4)), uneven(rng, (16,)), uneven(rng, (16,)))
        for _ in range(2)
    ]
    Wo, Ro, Bo = W.to_onnx(dirs)
    assert Wo.shape == (2, 16, 3) and Ro.shape == (2, 16, 4) and Bo.shape == (2, 32)
    back = W.from_onnx(Wo, Ro, Bo)
    assert all(a.equal(b) for a, b in zip(back, dirs))
    x, h, c = rng.normal(size=3), rng.normal(size=4), rng.normal(size=4)
    for d in range(2):
        ho, co = _onnx_step(Wo[d], Ro[d], Bo[d], x, h, c)
        hc, cc = _canonical_step(dirs[d], x, h, c)
        np.testing.assert_allclose(ho, hc, atol=1e-12)
        np.testing.assert_allclose(co, cc, atol=1e-12)
    # named blocks: ONNX block 1 is "o", canonical block 3
    np.testing.assert_array_equal(Wo[0][4:8], dirs[0].w_ih[12:16])
    assert W.GATES_ONNX == ("i", "o", "f", "g")


def test_onnx_without_bias_gives_zero_B(rng):
    w = W.LSTMWeights(uneven(rng, (8, 3)), uneven(rng, (8, 2)))
    _, _, B = W.to_onnx([w])
    assert B.shape == (1, 16) and not B.any()


def test_cudnn_lstm_legacy_layout(rng):
    """TF1.x CuDNNLSTM: each gate's kernel block is the raw cuDNN matrix; recurrent blocks transposed; bias 8u."""
    I, u = 5, 3
    kernel, rec, bias = keras_weights(rng, I, u)
    raw_k = np.concatenate([blk.reshape((u, I), order="F").T for blk in np.split(kernel, 4, axis=1)], axis=1)
    raw_r = np.concatenate([blk.T for blk in np.split(rec, 4, axis=1)], axis=1)
    b_in = uneven(rng, (4 * u,))
    raw_b = np.concatenate([b_in, bias - b_in])
    w = W.from_cudnn_lstm(raw_k, raw_r, raw_b)
    expected = W.from_keras(kernel, rec, bias)
    np.testing.assert_array_equal(w.w_ih, expected.w_ih)
    np.testing.assert_array_equal(w.w_hh, expected.w_hh)
    np.testing.assert_allclose(w.b_ih + w.b_hh, bias, atol=1e-6)
    with pytest.raises(ValueError, match=r"bias must be \(8\*units,\) = \(24,\)"):
        W.from_cudnn_lstm(raw_k, raw_r, bias)


def test_keras1_twelve_arrays(rng):
    kernel, rec, bias = keras_weights(rng, 4, 2)
    ks, rs, bs = np.split(kernel, 4, axis=1), np.split(rec, 4, axis=1), np.split(bias, 4)
    per_gate = {"i": 0, "f": 1, "c": 2, "o": 3}
    arrays = []
    for g in ("i", "c", "f", "o"):  # Keras 1 stores W, U, b gate-wise in the order i, c, f, o
        k = per_gate[g]
        arrays += [ks[k], rs[k], bs[k]]
    assert W.from_keras1(arrays).equal(W.from_keras(kernel, rec, bias))
    with pytest.raises(ValueError, match="12 weight arrays"):
        W.from_keras1(arrays[:9])


@pytest.mark.parametrize(
    "keys,which",
    [
        (["lstm.weight"], "flat fused LSTM 'weight'"),
        (["rnn.weight_fw0", "rnn.bias_fw0"], "Ascend DynamicRNN"),
    ],
)
def test_mindspore_old_layouts_are_refused_by_name(keys, which):
    with pytest.raises(W.UnsupportedLayoutError, match=f"unsupported layout.*{which}"):
        W.check_mindspore_layout(keys)
    with pytest.raises(W.UnsupportedLayoutError):
        W.from_torch_state_dict({k: np.zeros((4, 1, 1), np.float32) for k in keys})


def test_dense_weight_is_not_mistaken_for_flat_lstm():
    W.check_mindspore_layout(["lstm.weight_ih_l0", "dense.weight"])  # no error
    W.check_mindspore_layout({"fc.weight": np.zeros((3, 4)), "fc.bias": np.zeros(3)})
    with pytest.raises(W.UnsupportedLayoutError, match="r1.5"):
        W.check_mindspore_layout({"net.weight": np.zeros((448, 1, 1), np.float32)})


def test_mixed_numpy_torch_refused(rng):
    with pytest.raises(TypeError, match="mix"):
        W.LSTMWeights(uneven(rng, (8, 3)), torch.zeros(8, 2))


def test_float16_biases_are_summed_in_float32():
    import numpy as np

    from lstm_bridge.weights import LSTMWeights

    rng = np.random.default_rng(0)
    b_ih, b_hh = (rng.uniform(-1, 1, 8).astype(np.float16) for _ in range(2))
    w = LSTMWeights(np.zeros((8, 3), np.float16), np.zeros((8, 2), np.float16), b_ih, b_hh)
    total = w.bias_sum()
    assert total.dtype == np.float32
    np.testing.assert_array_equal(total, b_ih.astype(np.float32) + b_hh.astype(np.float32))
