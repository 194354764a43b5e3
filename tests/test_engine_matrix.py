"""Front ends (and so the engine under them) vs the independent NumPy float64 reference, over a
generated option matrix. Tolerances: float64 <= 1e-10, float32 <= 1e-5.

Every axis value appears in the product of the main axes; secondary options are cycled through the
cases by index so that each value of each is exercised too (and the run stays small).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lstm_bridge import activations
from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.mindspore import LSTM as MindSporeLSTM, LSTMCell as MindSporeCell

import oracle as reference
from helpers import MAX_ERRORS, keras_weights, max_abs

B, T, F, U = 4, 6, 3, 5
TOL = {"float32": 1e-5, "float64": 1e-10}

# (activation, recurrent_activation) as our layer takes them; the reference resolves the same objects.
ACTIVATIONS = {
    "tanh/sigmoid": ("tanh", "sigmoid"),
    "tanh/hard_sigmoid_k2": ("tanh", "hard_sigmoid"),
    "relu/hard_sigmoid_k3": ("relu", activations.hard_sigmoid_keras3),
    "softsign/linear": ("softsign", "linear"),
}
MASKS = {
    "none": None,
    "right": np.array([[1] * 6, [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool),
    "left": np.array([[0, 0, 1, 1, 1, 1], [1] * 6, [0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1]], bool),
    "holes": np.array([[1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 0], [1] * 6], bool),
    "fully_masked_row": np.array([[0] * 6, [1, 1, 0, 1, 1, 1], [1] * 6, [0] * 6], bool),
}


def _cycle(index, *options):
    return [opts[index % len(opts)] for opts in options]


def _np(value):
    if isinstance(value, (list, tuple)):
        return [_np(v) for v in value]
    return value.detach().numpy() if isinstance(value, torch.Tensor) else value


def _compare(got, expected, dtype, family):
    got, expected = _np(got), expected
    if isinstance(expected, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected)
        return max(_compare(g, e, dtype, family) for g, e in zip(got, expected))
    err = max_abs(got, expected)
    key = f"{family} {dtype}"
    MAX_ERRORS[key] = max(MAX_ERRORS.get(key, 0.0), err)  # summarised at the end of the run (conftest)
    assert err <= TOL[dtype], f"max |diff| {err:.3g} > {TOL[dtype]}"
    return err


KERAS_CASES = list(itertools.product(ACTIVATIONS, MASKS, [False, True], ["float32", "float64"]))


@pytest.mark.parametrize("acts, mask_kind, go_backwards, dtype", KERAS_CASES)
def test_keras_lstm_matches_reference(acts, mask_kind, go_backwards, dtype):
    index = KERAS_CASES.index((acts, mask_kind, go_backwards, dtype))
    with_state, return_sequences, zero_output, use_bias, time_major, return_state = _cycle(
        index,
        [True, False],
        [True, False, False],
        [False, True],
        [True, True, False],
        [False, False, True],
        [True, False],
    )
    rng = np.random.default_rng(index)
    activation, recurrent = ACTIVATIONS[acts]
    weights = keras_weights(rng, F, U, use_bias)
    x = rng.standard_normal((B, T, F))
    mask = MASKS[mask_kind]
    init = [rng.standard_normal((B, U)) for _ in range(2)] if with_state else None
    layer = LSTM(
        U,
        activation=activation,
        recurrent_activation=recurrent,
        use_bias=use_bias,
        dtype=dtype,
        return_sequences=return_sequences,
        return_state=return_state,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output,
        time_major=time_major,
    )
    layer.set_weights(weights)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    xin = x.transpose(1, 0, 2) if time_major else x
    min_ = None if mask is None else (mask.T if time_major else mask)
    got = layer(
        xin.astype(np_dtype), mask=min_, initial_state=None if init is None else [s.astype(np_dtype) for s in init]
    )
    expected = reference.keras_lstm(
        xin.astype(np_dtype).astype(np.float64),
        *[w.astype(np.float64) for w in weights[:2]],
        weights[2].astype(np.float64) if use_bias else None,
        activation=layer.cell.activation,
        recurrent_activation=layer.cell.recurrent_activation,
        mask=min_,
        initial_state=init,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        return_state=return_state,
        zero_output_for_mask=zero_output,
        time_major=time_major,
    )
    _compare(got, expected, dtype, "keras.LSTM")


@pytest.mark.parametrize("gates", [1, 4])
def test_keras_lstm_with_injected_dropout_masks_matches_reference(gates, monkeypatch):
    from lstm_bridge.engine import DropoutMasks

    rng = np.random.default_rng(gates)
    weights = keras_weights(rng, F, U)
    x = rng.standard_normal((B, T, F))
    in_masks = (rng.random((gates, B, F)) > 0.4) / 0.6
    rec_masks = (rng.random((gates, B, U)) > 0.3) / 0.7
    layer = LSTM(U, dtype="float64", return_sequences=True, dropout=0.4, recurrent_dropout=0.3)
    layer.set_weights(weights)
    monkeypatch.setattr(
        layer.cell, "dropout_masks", lambda *a, **k: DropoutMasks(torch.tensor(in_masks), torch.tensor(rec_masks))
    )
    got = layer(x, mask=MASKS["holes"], training=True)
    expected = reference.keras_lstm(
        x, *weights, return_sequences=True, mask=MASKS["holes"], input_masks=in_masks, recurrent_masks=rec_masks
    )
    _compare(got, expected, "float64", "keras.LSTM dropout masks")


BIDI_CASES = list(itertools.product(["concat", "sum", "mul", "ave", None], MASKS, ["float32", "float64"]))


@pytest.mark.parametrize("merge_mode, mask_kind, dtype", BIDI_CASES)
def test_bidirectional_matches_reference(merge_mode, mask_kind, dtype):
    index = BIDI_CASES.index((merge_mode, mask_kind, dtype))
    return_sequences, return_state, with_state, acts = _cycle(
        index, [True, False], [False, True, True], [True, False], list(ACTIVATIONS)
    )
    rng = np.random.default_rng(100 + index)
    activation, recurrent = ACTIVATIONS[acts]
    wf, wb = keras_weights(rng, F, U), keras_weights(rng, F, U)
    x = rng.standard_normal((B, T, F))
    mask = MASKS[mask_kind]
    init = [rng.standard_normal((B, U)) for _ in range(4)] if with_state else None
    layer = Bidirectional(
        LSTM(
            U,
            activation=activation,
            recurrent_activation=recurrent,
            dtype=dtype,
            return_sequences=return_sequences,
            return_state=return_state,
        ),
        merge_mode=merge_mode,
    )
    layer.set_weights(wf + wb)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    got = layer(
        x.astype(np_dtype), mask=mask, initial_state=None if init is None else [s.astype(np_dtype) for s in init]
    )
    cell = layer.forward_layer.cell
    expected = reference.keras_bidirectional(
        x.astype(np_dtype).astype(np.float64),
        [w.astype(np.float64) for w in wf],
        [w.astype(np.float64) for w in wb],
        merge_mode=merge_mode,
        return_sequences=return_sequences,
        return_state=return_state,
        mask=mask,
        initial_state=init,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
    )
    _compare(got, expected, dtype, "keras.Bidirectional")


MS_CASES = list(
    itertools.product(
        [1, 2, 3], [False, True], [True, False], [False, True], ["none", "mixed", "full"], ["float32", "float64"]
    )
)


@pytest.mark.parametrize("layers, bidirectional, has_bias, batch_first, lengths, dtype", MS_CASES)
def test_mindspore_lstm_matches_reference(layers, bidirectional, has_bias, batch_first, lengths, dtype):
    index = MS_CASES.index((layers, bidirectional, has_bias, batch_first, lengths, dtype))
    (with_hx,) = _cycle(index, [True, False, True])
    rng = np.random.default_rng(200 + index)
    torch_dtype = torch.float32 if dtype == "float32" else torch.float64
    net = MindSporeLSTM(
        F,
        U,
        layers,
        has_bias=has_bias,
        batch_first=batch_first,
        bidirectional=bidirectional,
        dtype=torch_dtype,
        numerics="exact",
    )
    params = {
        name: rng.uniform(-0.6, 0.6, tuple(p.shape)) * rng.uniform(0.5, 1.5, tuple(p.shape))
        for name, p in net.named_parameters()
    }
    net.load_state_dict({k: v.astype(np.float32 if dtype == "float32" else np.float64) for k, v in params.items()})
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, F) if batch_first else (T, B, F))
    hx = tuple(rng.standard_normal((layers * D, B, U)) for _ in range(2)) if with_hx else None
    seq = {"none": None, "mixed": np.array([6, 0, 3, 1]), "full": np.array([6, 6, 6, 6])}[lengths]
    np_dtype = np.float32 if dtype == "float32" else np.float64
    got = net(
        torch.tensor(x.astype(np_dtype)),
        None if hx is None else tuple(torch.tensor(h.astype(np_dtype)) for h in hx),
        None if seq is None else torch.tensor(seq),
    )
    cast = {k: v.astype(np_dtype).astype(np.float64) for k, v in params.items()}
    expected = reference.mindspore_lstm(
        x.astype(np_dtype).astype(np.float64),
        cast,
        num_layers=layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        hx=hx,
        seq_length=seq,
    )
    _compare([got[0], got[1][0], got[1][1]], [expected[0], expected[1][0], expected[1][1]], dtype, "mindspore.LSTM")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mindspore_cpu_numerics_match_the_emulating_reference(bidirectional):
    rng = np.random.default_rng(7)
    net = MindSporeLSTM(F, U, 2, bidirectional=bidirectional, numerics="mindspore-cpu")
    params = {n: (rng.uniform(-1, 1, tuple(p.shape)) * 2).astype(np.float32) for n, p in net.named_parameters()}
    net.load_state_dict(params)
    x = rng.standard_normal((T, B, F)).astype(np.float32)
    seq = np.array([6, 2, 0, 5])
    out, (hn, cn) = net(torch.tensor(x), None, torch.tensor(seq))
    ref_out, (ref_h, ref_c) = reference.mindspore_lstm(
        x, params, num_layers=2, bidirectional=bidirectional, seq_length=seq, numerics="mindspore-cpu"
    )
    assert max(max_abs(out, ref_out), max_abs(hn, ref_h), max_abs(cn, ref_c)) <= 1e-5


@pytest.mark.parametrize("has_bias, numerics", list(itertools.product([True, False], ["exact", "mindspore-cpu"])))
def test_mindspore_cell_matches_reference(has_bias, numerics):
    rng = np.random.default_rng(9)
    dtype = np.float64 if numerics == "exact" else np.float32  # the emulation is a float32 kernel
    cell = MindSporeCell(
        F, U, has_bias=has_bias, numerics=numerics, dtype=torch.float64 if dtype == np.float64 else torch.float32
    )
    params = {n: rng.uniform(-1, 1, tuple(p.shape)).astype(dtype) for n, p in cell.named_parameters()}
    cell.load_state_dict(params)
    x, h0, c0 = (rng.standard_normal(s).astype(dtype) for s in ((B, F), (B, U), (B, U)))
    h, c = cell(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    ref_h, ref_c = reference.mindspore_lstm_cell(x, (h0, c0), params, numerics=numerics)
    tol = 1e-10 if numerics == "exact" else 1e-6  # the emulation rounds to float32 by design
    assert max(max_abs(h, ref_h), max_abs(c, ref_c)) <= tol
