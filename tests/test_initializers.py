"""Keras initializer seeds (issue 9): a seed makes the drawn weights reproducible within lstm-bridge.

TensorFlow's own values for a seed are not reproduced (Keras draws with TF's stateless Philox kernels);
what is pinned here is Keras's contract on our side: same seeded initializers -> same weights, and each
weight of a layer gets its own stream.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_bridge.keras import LSTM, LSTMCell, initializers as inits


def _seeded(seed, **extra):
    return dict(
        kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": seed}},
        recurrent_initializer={"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": seed}},
        bias_initializer={"class_name": "RandomUniform", "config": {"minval": -0.5, "maxval": 0.5, "seed": seed}},
        **extra,
    )


def _built(layer, features=4):
    layer.build((2, 3, features))
    return layer.get_weights()


@pytest.mark.parametrize("unit_forget_bias", [True, False])
def test_same_seeded_initializers_give_the_same_weights(unit_forget_bias):
    torch.manual_seed(0)
    a = _built(LSTM(4, unit_forget_bias=unit_forget_bias, **_seeded(7)))
    torch.manual_seed(1)  # the global generator must not matter
    b = _built(LSTM(4, unit_forget_bias=unit_forget_bias, **_seeded(7)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = _built(LSTM(4, unit_forget_bias=unit_forget_bias, **_seeded(8)))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))


def test_unseeded_initializers_differ_between_layers():
    a = _built(LSTM(4, bias_initializer="random_uniform"))
    b = _built(LSTM(4, bias_initializer="random_uniform"))
    assert not any(np.array_equal(x, y) for x, y in zip(a, b))


def test_one_seeded_initializer_gives_each_weight_its_own_stream():
    init = {"class_name": "GlorotUniform", "config": {"seed": 3}}
    kernel, recurrent, _ = _built(LSTM(4, kernel_initializer=init, recurrent_initializer=init), features=4)
    assert kernel.shape == recurrent.shape and not np.allclose(kernel, recurrent)


def test_seed_survives_the_config_round_trip_and_the_cell():
    layer = LSTM(3, **_seeded(11))
    weights = _built(layer)
    again = _built(LSTM.from_config(layer.get_config()))
    assert all(np.array_equal(x, y) for x, y in zip(weights, again))
    cell_a, cell_b = LSTMCell(3, **_seeded(11)), LSTMCell(3, **_seeded(11))
    cell_a.build((None, 4))
    cell_b.build((None, 4))
    assert all(np.array_equal(x, y) for x, y in zip(cell_a.get_weights(), cell_b.get_weights()))


def test_seeded_draws_keep_their_distribution():
    w = _built(LSTM(64, kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": 5}}), features=64)[0]
    limit = np.sqrt(6.0 / (64 + 256))
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit


@pytest.mark.parametrize("seed", ["1", 1.5, True, [1]])
def test_a_seed_must_be_an_integer(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer or None; received seed="):
        inits.get({"class_name": "GlorotUniform", "config": {"seed": seed}})


def test_variance_scaling_config_keeps_its_arguments():
    init = inits.get(
        {
            "class_name": "VarianceScaling",
            "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 4},
        }
    )
    again = inits.get(init.get_config())
    assert (again.scale, again.mode, again.distribution, again.seed) == (2.0, "fan_out", "uniform", 4)
    with pytest.raises(ValueError, match="mode must be"):
        inits.VarianceScaling(mode="fan_sum")
