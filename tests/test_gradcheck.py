"""float64 ``torch.autograd.gradcheck`` through every option, front ends and engine (fixed dropout masks)."""

from __future__ import annotations

import itertools

import pytest
import torch

from lstm_bridge import activations
from lstm_bridge.engine import CellActivations, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput, run_layer
from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.mindspore import LSTM as MindSporeLSTM

torch.manual_seed(0)
B, T, I, H = 2, 4, 3, 2
MASK = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)


def _weights(requires_grad=True):
    g = torch.Generator().manual_seed(1)
    make = lambda *s: (torch.rand(*s, generator=g, dtype=torch.float64) - 0.5).requires_grad_(requires_grad)  # noqa: E731
    return make(4 * H, I), make(4 * H, H), make(4 * H), make(4 * H)


ACTS = {
    "standard": CellActivations(),
    "hard_sigmoid_k2": CellActivations(gate=activations.hard_sigmoid_keras2),
    "hard_sigmoid_k3_relu": CellActivations(
        gate=activations.hard_sigmoid_keras3, candidate=activations.relu, cell=activations.softsign
    ),
}
# the masked-output rule only matters with a mask
CASES = [
    c
    for c in itertools.product(ACTS, [None, "mask"], list(MaskedOutput), [False, True], [None, 1, 4])
    if c[1] is not None or c[2] is MaskedOutput.CARRY
]


@pytest.mark.parametrize("acts, mask, rule, reverse, dropout_gates", CASES)
def test_engine_gradcheck(acts, mask, rule, reverse, dropout_gates):
    w_ih, w_hh, b_ih, b_hh = _weights()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    valid = MASK.t() if mask else None
    drop = None
    if dropout_gates:
        g = torch.Generator().manual_seed(2)
        drop = DropoutMasks(
            inputs=(torch.rand(dropout_gates, B, I, generator=g) > 0.3).double() / 0.7,
            recurrent=(torch.rand(dropout_gates, B, H, generator=g) > 0.3).double() / 0.7,
        )
    sem = LayerSemantics(ACTS[acts], rule)

    def fn(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        outs, hs, cs = run_layer(
            x,
            [DirectionWeights(w_ih, w_hh, b_ih, b_hh)],
            [h0],
            [c0],
            reverse=[reverse],
            valid=valid,
            semantics=sem,
            dropout=[drop],
        )
        return outs[0], hs[0], cs[0]

    assert torch.autograd.gradcheck(fn, (x, h0, c0, w_ih, w_hh, b_ih, b_hh), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(return_sequences=True, go_backwards=True),
        dict(return_sequences=False, zero_output_for_mask=True),
        dict(return_sequences=True, recurrent_activation="hard_sigmoid"),
    ],
)
def test_keras_layer_gradcheck(kwargs):
    layer = LSTM(H, dtype="float64", **kwargs)
    layer.build((B, T, I))

    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x, mask=MASK), (x,), eps=1e-6, atol=1e-5)
    # gradients w.r.t. the Parameters themselves (Keras shapes) against finite differences
    out = layer(x, mask=MASK)
    out.sum().backward()
    kernel = layer.trainable_weights[0]
    analytic = kernel.grad[0, 1].item()
    with torch.no_grad():
        kernel[0, 1] += 1e-6
        plus = layer(x, mask=MASK).sum().item()
        kernel[0, 1] -= 2e-6
        minus = layer(x, mask=MASK).sum().item()
        kernel[0, 1] += 1e-6
    assert abs(analytic - (plus - minus) / 2e-6) < 1e-5


def test_bidirectional_gradcheck():
    layer = Bidirectional(LSTM(H, return_sequences=True, dtype="float64"), merge_mode="mul")
    layer.build((B, T, I))
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x, mask=MASK), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mindspore_seq_length_gradcheck(bidirectional):
    net = MindSporeLSTM(I, H, 2, bidirectional=bidirectional, dtype=torch.float64)
    D = 2 if bidirectional else 1
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * D, B, H, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 0])

    def fn(x, h0):
        out, (hn, cn) = net(x, (h0, h0 * 0.5), lengths)
        return out, hn, cn

    assert torch.autograd.gradcheck(fn, (x, h0), eps=1e-6, atol=1e-5)
