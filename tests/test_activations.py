"""Activation names per Keras generation (issue 9): the exact erf gelu, names one generation lacks, and
what each generation's files may name. The real frameworks' lists are pinned by tests/test_golden.py."""

from __future__ import annotations

import math

import pytest
import torch

from lstm_bridge import activations as A
from lstm_bridge.formats.keras_common import target_activation
from lstm_bridge.formats.model import FormatError
from lstm_bridge.keras import LSTM


@pytest.mark.parametrize("kv", [2, 3])
def test_keras_gelu_is_the_exact_erf_form(kv):
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    want = 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))
    fn = A.get("gelu", keras_version=kv)
    assert fn.name == "gelu"
    assert torch.max(torch.abs(fn(x) - want)) < 1e-15
    assert LSTM(2, activation="gelu", keras_version=kv).cell.activation is fn


@pytest.mark.parametrize(
    "name",
    [
        "celu",
        "hard_silu",
        "hard_swish",
        "hard_tanh",
        "log_sigmoid",
        "sparse_plus",
        "sparsemax",
        "squareplus",
        "tanh_shrink",
        "soft_shrink",
        "hard_shrink",
        "sparse_sigmoid",
    ],
)
def test_tf_keras_rejects_keras3_only_names_with_its_message(name):
    text = f"^Unknown activation function '{name}' cannot be deserialized.*keras_version=3"
    with pytest.raises(ValueError, match=text):
        LSTM(3, activation=name)
    with pytest.raises(ValueError, match="cannot be deserialized"):
        LSTM(3, recurrent_activation=name, keras_version=2)
    assert LSTM(3, activation=name, keras_version=3).cell.activation is A.get(name, keras_version=3)


def test_keras3_unknown_name_uses_keras3_message():
    with pytest.raises(ValueError, match="^Could not interpret activation function identifier: nope"):
        A.get("nope", keras_version=3)
    with pytest.raises(NotImplementedError, match="glu"):
        A.get("glu", keras_version=3)


def test_keras_name_is_the_inverse_of_get():
    for kv, table in ((2, A.KERAS2_NAMES), (3, A.KERAS3_NAMES)):
        for name in table:
            assert A.get(A.keras_name(A.get(name, kv), kv), kv) is A.get(name, kv)
    assert A.keras_name(A.hard_sigmoid_keras3, 3) == "hard_sigmoid"
    with pytest.raises(ValueError, match="no Keras 3 name"):
        A.keras_name(A.hard_sigmoid_keras2, 3)
    with pytest.raises(ValueError, match="no tf_keras 2.x name"):
        A.keras_name(A.by_name("gelu_tanh"), 2)


def test_by_name_resolves_recorded_names_of_any_generation():
    assert A.by_name("celu") is A.get("celu", keras_version=3)
    assert A.by_name("hard_sigmoid") is A.hard_sigmoid_keras2
    with pytest.raises(ValueError, match="unknown activation 'unknown:x'"):
        A.by_name("unknown:x")


def test_writers_name_only_what_the_generation_reads():
    assert target_activation("gelu", 3, "x") == "gelu"
    assert target_activation("gelu", 2, "x") == "gelu"
    assert target_activation("hard_sigmoid_keras3", 3, "x") == "hard_sigmoid"
    for gen in (2, 3):
        with pytest.raises(FormatError, match="gelu_tanh"):
            target_activation("gelu_tanh", gen, "x")
    for name in ("celu", "hard_silu", "hard_tanh", "sparsemax"):
        assert target_activation(name, 3, "x") == name
        with pytest.raises(FormatError, match="no tf_keras 2.x name"):
            target_activation(name, 2, "x")


def test_sparsemax_follows_keras3():
    # Keras 3's TF backend: tau = (sum of the supported cumulative sums - 1) / k (values from keras 3.15.1)
    fn = A.get("sparsemax", keras_version=3)
    got = fn(torch.tensor([[1.0, 2.0, 0.5], [0.1, 0.1, 0.1]]))
    want = torch.tensor([[0.0, 1.0, 0.0], [0.7 / 3, 0.7 / 3, 0.7 / 3]])
    assert torch.allclose(got, want, atol=1e-6)
