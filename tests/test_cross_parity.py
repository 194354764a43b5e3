"""Front-end cross-parity: Keras LSTM/Bidirectional stacks <-> MindSpore LSTM <-> torch.nn.LSTM.

Weights are mapped by the seed's rule (``kernel = W_ih.T``, ``recurrent_kernel = W_hh.T``,
``bias = b_ih + b_hh``); the matrix runs over layers x directions x bias x batch_first x lengths.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lstm_bridge.keras import LSTM as KerasLSTM, Bidirectional
from lstm_bridge.mindspore import LSTM as MindSporeLSTM

from helpers import max_abs

MATRIX = list(itertools.product([1, 2, 3], [False, True], [True, False], [False, True], [False, True]))


def _keras_stack(ms_net, bidirectional, has_bias):
    params = {k: v.detach().numpy() for k, v in ms_net.named_parameters()}
    layers = []
    for layer in range(ms_net.num_layers):

        def weights(suffix):
            w = [params["weight_ih" + suffix].T, params["weight_hh" + suffix].T]
            return w + [params["bias_ih" + suffix] + params["bias_hh" + suffix]] if has_bias else w

        base = KerasLSTM(ms_net.hidden_size, use_bias=has_bias, return_sequences=True, return_state=True)
        if bidirectional:
            keras_layer = Bidirectional(base)
            keras_layer.set_weights(weights(f"_l{layer}") + weights(f"_l{layer}_reverse"))
        else:
            keras_layer = base
            keras_layer.set_weights(weights(f"_l{layer}"))
        layers.append(keras_layer)
    return layers


@pytest.mark.parametrize("layers, bidirectional, has_bias, batch_first, lengths", MATRIX)
def test_keras_mindspore_and_torch_agree(layers, bidirectional, has_bias, batch_first, lengths):
    torch.manual_seed(layers * 7 + bidirectional)
    np.random.seed(layers)
    net = MindSporeLSTM(
        4, 5, layers, has_bias=has_bias, batch_first=batch_first, bidirectional=bidirectional, numerics="exact"
    )
    with torch.no_grad():  # uneven, larger weights than the default init
        for p in net.parameters():
            p.mul_(torch.empty_like(p).uniform_(0.5, 3.0))
    B, T, D = 3, 6, 2 if bidirectional else 1
    x = torch.randn(B, T, 4) if batch_first else torch.randn(T, B, 4)
    h0, c0 = torch.randn(layers * D, B, 5), torch.randn(layers * D, B, 5)
    seq = torch.tensor([6, 4, 1], dtype=torch.int64) if lengths else None
    out, (hn, cn) = net(x, (h0, c0), seq)

    ref = torch.nn.LSTM(4, 5, layers, bias=has_bias, batch_first=batch_first, bidirectional=bidirectional)
    ref.load_state_dict(net.state_dict())
    if lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, seq, batch_first=batch_first, enforce_sorted=False)
        ref_out, (ref_h, ref_c) = ref(packed, (h0, c0))
        ref_out, _ = torch.nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=batch_first, total_length=T)
    else:
        ref_out, (ref_h, ref_c) = ref(x, (h0, c0))
    assert max(max_abs(out, ref_out), max_abs(hn, ref_h), max_abs(cn, ref_c)) < 2e-6

    # Keras: batch-major, masks for lengths (right padding: the same final states, zeros at padding
    # for Bidirectional; a plain LSTM repeats its last output there, so compare valid steps only).
    value = x if batch_first else x.transpose(0, 1)
    mask = (torch.arange(T)[None, :] < seq[:, None]) if lengths else None
    keras_h, keras_c = [], []
    for index, layer in enumerate(_keras_stack(net, bidirectional, has_bias)):
        init = [t for r in range(index * D, index * D + D) for t in (h0[r], c0[r])]
        result = layer(value, mask=mask, initial_state=init)
        value = result[0]
        if mask is not None:
            value = value * mask[..., None]  # what MindSpore passes on: zeros after the length
        keras_h += result[1::2]
        keras_c += result[2::2]
    expected = out if batch_first else out.transpose(0, 1)
    assert max_abs(value, expected) < 2e-6
    assert max_abs(torch.stack(keras_h), hn) < 2e-6 and max_abs(torch.stack(keras_c), cn) < 2e-6
