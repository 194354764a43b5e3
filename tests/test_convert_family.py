"""Module conversion for the recurrent family (issue 11 item 5): Keras GRU / SimpleRNN <-> MindSpore GRU / RNN
<-> torch.nn.GRU / RNN, with the same outputs, and refusals for what the other side cannot hold."""

from __future__ import annotations

import pytest
import torch

from lstm_bridge import convert, keras, mindspore

torch.manual_seed(0)
X = torch.randn(2, 5, 3)


def test_a_keras_gru_stack_becomes_a_mindspore_and_a_torch_gru():
    g1, g2 = keras.GRU(4, return_sequences=True), keras.GRU(4, return_sequences=True)
    y = g2(g1(X))
    net = convert.keras_to_mindspore([g1, g2])
    assert isinstance(net, mindspore.GRU) and net.num_layers == 2 and net.batch_first
    exact = mindspore.GRU(3, 4, num_layers=2, batch_first=True, numerics="exact")
    exact.load_state_dict(net.state_dict())
    assert (exact(X)[0] - y).abs().max().item() <= 1e-6
    t = convert.to_torch([g1, g2])
    assert isinstance(t, torch.nn.GRU)
    assert (t(X)[0] - y).abs().max().item() <= 1e-6


def test_a_relu_simple_rnn_round_trips_through_torch():
    r = keras.Bidirectional(keras.SimpleRNN(3, activation="relu", return_sequences=True, return_state=True))
    y = r(X)[0]
    t = convert.to_torch(r)
    assert isinstance(t, torch.nn.RNN) and t.nonlinearity == "relu" and t.bidirectional
    assert (t(X)[0] - y).abs().max().item() <= 1e-6
    (back,) = convert.from_torch(t, api="keras")
    out, h_n = convert.run_keras_stack([back], X)
    assert torch.equal(out, t(X)[0]) or (out - t(X)[0]).abs().max().item() <= 1e-6
    assert h_n.shape == (2, 2, 3)


def test_a_mindspore_gru_becomes_keras_layers():
    net = mindspore.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, numerics="exact")
    want, h = net(X)
    layers = convert.mindspore_to_keras(net)
    assert [type(l.forward_layer).__name__ for l in layers] == ["GRU", "GRU"]
    out, h_n = convert.run_keras_stack(layers, X)
    assert (out - want).abs().max().item() <= 1e-6 and (h_n - h).abs().max().item() <= 1e-6


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: keras.GRU(4, reset_after=False), "reset_after=False"),
        (lambda: keras.SimpleRNN(4, activation="sigmoid"), "nonlinearity='tanh' or 'relu' only"),
    ],
)
def test_what_mindspore_cannot_hold_is_refused(make, needle):
    layer = make()
    layer(X)
    with pytest.raises(ValueError, match=needle):
        convert.keras_to_mindspore(layer)


def test_a_stack_of_mixed_kinds_is_refused():
    g, l = keras.GRU(4, return_sequences=True), keras.LSTM(4)
    l(g(X))
    with pytest.raises(ValueError, match="one cell kind"):
        convert.to_torch([g, l])
