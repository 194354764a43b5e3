"""The front ends behave as torch Modules: torch.compile, .to(float64), state_dict round trips."""

from __future__ import annotations

import io

import numpy as np
import torch

from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.mindspore import LSTM as MindSporeLSTM

from helpers import keras_weights, max_abs


def test_torch_compile_gives_the_same_numbers(rng):
    layer = LSTM(3, recurrent_activation="hard_sigmoid", return_sequences=True)
    layer.set_weights(keras_weights(rng, 2, 3))
    x = torch.tensor(rng.standard_normal((2, 3, 2)), dtype=torch.float32)
    eager = layer(x)
    compiled = torch.compile(layer, backend="eager")
    assert max_abs(compiled(x), eager) < 1e-6


def test_to_float64_computes_in_float64(rng):
    layer = LSTM(3, return_sequences=True)
    layer.set_weights(keras_weights(rng, 2, 3))
    x = rng.standard_normal((2, 4, 2))
    y32 = layer(x)
    layer.to(torch.float64)
    y64 = layer(x)
    assert y64.dtype == torch.float64 and y32.dtype == torch.float32
    assert max_abs(y64, y32) < 1e-6
    net = MindSporeLSTM(2, 3).to(torch.float64)
    assert net(torch.tensor(x))[0].dtype == torch.float64


def test_state_dict_round_trips(rng):
    a = Bidirectional(LSTM(3, return_sequences=True))
    a.set_weights(keras_weights(rng, 2, 3) + keras_weights(rng, 2, 3))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    b = Bidirectional(LSTM(3, return_sequences=True))
    b.build((None, None, 2))
    b.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    assert max_abs(a(x), b(x)) == 0
    net = MindSporeLSTM(2, 3, 2, bidirectional=True)
    other = MindSporeLSTM(2, 3, 2, bidirectional=True)
    other.load_state_dict(net.state_dict())
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), other.parameters()))


def test_optimizer_updates_the_keras_shaped_parameters_in_place(rng):
    layer = LSTM(3)
    layer.set_weights(keras_weights(rng, 2, 3))
    params = layer.trainable_weights
    opt = torch.optim.SGD(params, lr=0.1)
    before = [p.detach().clone() for p in params]
    layer(rng.standard_normal((2, 4, 2)).astype(np.float32)).sum().backward()
    opt.step()
    assert all(p is q for p, q in zip(params, layer.trainable_weights))
    assert all(not torch.equal(p, b) for p, b in zip(layer.trainable_weights, before))
