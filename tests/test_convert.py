"""lstm_bridge.convert: Keras <-> MindSpore <-> torch.nn.LSTM with identical outputs and bit-exact weights."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from lstm_bridge import convert
from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.mindspore import LSTM as MsLSTM

from helpers import FIXTURES, keras_weights, max_abs

TOL = 1e-6


def _keras_stack(
    rng,
    *,
    bidi: bool,
    layers: int,
    bias: bool,
    time_major: bool,
    units: int = 5,
    features: int = 4,
    last_sequences: bool = True,
    return_state: bool = True,
):
    out = []
    width = features
    for l in range(layers):
        seq = True if l < layers - 1 else last_sequences
        base = LSTM(units, use_bias=bias, return_sequences=seq, return_state=return_state, time_major=time_major)
        layer = Bidirectional(base) if bidi else base
        layer.build((None, 6, width) if not time_major else (6, None, width))
        w = keras_weights(rng, width, units, bias)
        if bidi:
            w = w + keras_weights(rng, width, units, bias)
        layer.set_weights(w)
        out.append(layer)
        width = units * (2 if bidi else 1)
    return out


def _x(rng, time_major: bool, features: int = 4, B: int = 3, T: int = 6) -> np.ndarray:
    x = rng.standard_normal((B, T, features)).astype(np.float32)
    return x.transpose(1, 0, 2).copy() if time_major else x


def _weights_equal(a_layers, b_layers) -> bool:
    for a, b in zip(a_layers, b_layers):
        wa, wb = a.get_weights(), b.get_weights()
        if len(wa) != len(wb):
            return False
        for x, y in zip(wa, wb):
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
    return True


MATRIX = list(itertools.product([False, True], [1, 2], [True, False], [False, True]))


@pytest.mark.parametrize("bidi,layers,bias,time_major", MATRIX)
def test_keras_to_mindspore_and_torch_outputs_equal(rng, bidi, layers, bias, time_major):
    stack = _keras_stack(rng, bidi=bidi, layers=layers, bias=bias, time_major=time_major)
    x = _x(rng, time_major)
    k_out, (k_h, k_c) = convert.run_keras_stack(stack, x)

    ms = convert.keras_to_mindspore(stack)
    assert isinstance(ms, MsLSTM)
    assert (ms.num_layers, ms.bidirectional, ms.has_bias, ms.batch_first) == (layers, bidi, bias, not time_major)
    m_out, (m_h, m_c) = ms(torch.from_numpy(x))
    assert max_abs(m_out, k_out) <= TOL and max_abs(m_h, k_h) <= TOL and max_abs(m_c, k_c) <= TOL

    net = convert.to_torch(stack)
    assert isinstance(net, torch.nn.LSTM)
    with torch.no_grad():
        t_out, (t_h, t_c) = net(torch.from_numpy(x))
    assert max_abs(t_out, k_out) <= TOL and max_abs(t_h, k_h) <= TOL and max_abs(t_c, k_c) <= TOL

    # and back: torch -> Keras and MindSpore -> Keras reproduce the layers bit for bit
    back = convert.from_torch(net, "keras", time_major=time_major)
    assert _weights_equal(stack, back)
    back2 = convert.mindspore_to_keras(ms, time_major=time_major)
    assert _weights_equal(stack, back2)
    b_out, (b_h, b_c) = convert.run_keras_stack(back2, x)
    assert max_abs(b_out, k_out) == 0.0 and max_abs(b_h, k_h) == 0.0


def test_keras_mindspore_torch_keras_round_trip_is_bit_exact(rng):
    stack = _keras_stack(rng, bidi=True, layers=3, bias=True, time_major=False)
    ms = convert.keras_to_mindspore(stack)
    net = convert.to_torch(ms)
    back = convert.from_torch(net, "keras")
    assert _weights_equal(stack, back)
    # MindSpore state dict = torch state dict, value for value
    ms_state, torch_state = ms.state_dict(), net.state_dict()
    assert sorted(ms_state) == sorted(torch_state)
    assert all(torch.equal(v, torch_state[k]) for k, v in ms_state.items())
    ms2 = convert.from_torch(net, "mindspore")
    for k, v in ms.state_dict().items():
        assert torch.equal(v, ms2.state_dict()[k])


def test_return_sequences_false_and_states_mapping(rng):
    # Keras output for return_sequences=False is h_n[-1] (uni) / concat(h_n[-2], h_n[-1]) (bi)
    uni = _keras_stack(rng, bidi=False, layers=2, bias=True, time_major=False, last_sequences=False)
    x = _x(rng, False)
    out, h, c = uni[1](uni[0](x)[0])
    _, (h_n, c_n) = convert.keras_to_mindspore(uni)(torch.from_numpy(x))
    assert max_abs(out, h_n[-1]) <= TOL and max_abs(h, h_n[-1]) <= TOL and max_abs(c, c_n[-1]) <= TOL
    bi = _keras_stack(rng, bidi=True, layers=1, bias=True, time_major=False, last_sequences=False)
    out, h_f, c_f, h_b, c_b = bi[0](x)
    _, (h_n, c_n) = convert.keras_to_mindspore(bi)(torch.from_numpy(x))
    assert max_abs(out, torch.cat([h_n[-2], h_n[-1]], -1)) <= TOL
    assert max_abs(h_b, h_n[-1]) <= TOL and max_abs(c_f, c_n[-2]) <= TOL


def test_mindspore_to_keras_with_initial_state(rng):
    ms = MsLSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for p in ms.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.6, 0.6, tuple(p.shape)).astype(np.float32)))
    x = torch.from_numpy(_x(rng, False))
    h0 = torch.from_numpy(rng.standard_normal((4, 3, 5)).astype(np.float32))
    c0 = torch.from_numpy(rng.standard_normal((4, 3, 5)).astype(np.float32))
    m_out, (m_h, m_c) = ms(x, (h0, c0))
    layers = convert.mindspore_to_keras(ms)
    assert [type(l).__name__ for l in layers] == ["Bidirectional", "Bidirectional"]
    k_out, (k_h, k_c) = convert.run_keras_stack(layers, x, hx=(h0, c0))
    assert max_abs(m_out, k_out) <= TOL and max_abs(m_h, k_h) <= TOL and max_abs(m_c, k_c) <= TOL
    # the Keras bias is the float32 sum of MindSpore's two biases
    assert np.array_equal(layers[0].get_weights()[2], (ms.bias_ih_l0 + ms.bias_hh_l0).detach().numpy())


def test_real_mindspore_outputs_reproduced_through_keras():
    """Weights of a real MindSpore 2.10 net -> our Keras layers reproduce MindSpore's recorded outputs."""
    data = np.load(FIXTURES / "mindspore" / "lstm_2layer_bi_io.npz")
    ms = MsLSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True)
    ms.load_state_dict({k[len("param:") :]: torch.from_numpy(data[k]) for k in data.files if k.startswith("param:")})
    layers = convert.mindspore_to_keras(ms)
    out, (h_n, c_n) = convert.run_keras_stack(layers, data["x"], hx=(data["h0"], data["c0"]))
    assert max_abs(out, data["out_hx"]) <= 1e-5
    assert max_abs(h_n, data["hn_hx"]) <= 1e-5 and max_abs(c_n, data["cn_hx"]) <= 1e-5
    net = convert.to_torch(layers)
    with torch.no_grad():
        t_out, _ = net(torch.from_numpy(data["x"]))
    assert max_abs(t_out, data["out_nohx"]) <= 1e-5


def test_right_padded_mask_equals_seq_length(rng):
    stack = _keras_stack(rng, bidi=True, layers=1, bias=True, time_major=False)
    x = _x(rng, False)
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=bool)
    k_out, h_f, c_f, h_b, c_b = stack[0](x, mask=mask)
    seq_length = convert.keras_mask_to_seq_length(mask)
    assert seq_length.tolist() == [6, 3, 1] and seq_length.dtype == torch.int32
    m_out, (h_n, c_n) = convert.keras_to_mindspore(stack)(torch.from_numpy(x), seq_length=seq_length)
    assert max_abs(k_out, m_out) <= TOL
    assert max_abs(h_f, h_n[0]) <= TOL and max_abs(h_b, h_n[1]) <= TOL and max_abs(c_b, c_n[1]) <= TOL


@pytest.mark.parametrize("mask,why", [([[1, 0, 1, 1]], "holes"), ([[0, 0, 1, 1]], "left padding")])
def test_mask_without_seq_length_equivalent(mask, why):
    with pytest.raises(ValueError, match="holes or left padding"):
        convert.keras_mask_to_seq_length(np.array(mask))


def _built(layer, features=4):
    layer.build((None, 6, features))
    return layer


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: _built(LSTM(4, recurrent_activation="hard_sigmoid")), r"hard_sigmoid.*clip\(0.2x"),
        (lambda: _built(LSTM(4, recurrent_activation="hard_sigmoid", keras_version=3)), r"relu6\(x \+ 3\) / 6"),
        (lambda: _built(LSTM(4, activation="relu")), "activation='relu'"),
        (lambda: _built(LSTM(4, go_backwards=True)), "go_backwards=True alone"),
        (lambda: _built(LSTM(4, stateful=True)), "stateful=True"),
        (lambda: _built(Bidirectional(LSTM(4, return_sequences=True), merge_mode="sum")), "merge_mode='sum'"),
        (lambda: _built(Bidirectional(LSTM(4), merge_mode=None)), "merge_mode=None"),
        (lambda: [_built(LSTM(4)), _built(LSTM(4), 4)], "return_sequences=False in the middle"),
        (lambda: [_built(LSTM(4, return_sequences=True)), _built(LSTM(3), 4)], "mixed|same units"),
        (lambda: [_built(Bidirectional(LSTM(4, return_sequences=True))), _built(LSTM(4), 8)], "all unidirectional"),
        (lambda: LSTM(4), "not built"),
    ],
)
def test_inexpressible_semantics_raise_with_reason(make, match):
    layers = make()
    with pytest.raises(ValueError, match=match):
        convert.keras_to_mindspore(layers)
    with pytest.raises(ValueError, match=match):
        convert.to_torch(layers)


def test_dropout_is_not_carried_but_warned(rng):
    layer = _built(LSTM(4, dropout=0.3, return_sequences=True))
    with pytest.warns(UserWarning, match="act only in training"):
        ms = convert.keras_to_mindspore(layer)
    x = _x(rng, False)
    assert max_abs(layer(x), ms(torch.from_numpy(x))[0]) <= TOL


def test_torch_options_and_errors():
    with pytest.raises(ValueError, match="proj_size"):
        convert.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="api must be"):
        convert.from_torch(torch.nn.LSTM(3, 4), api="tensorflow")
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        convert.from_torch(object())
    net = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.25, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = convert.from_torch(net, "mindspore")
    assert ms.dropout == 0.25 and ms.batch_first
    x = torch.randn(2, 5, 3)
    net.eval()
    with torch.no_grad():
        assert max_abs(net(x)[0], ms(x)[0]) <= TOL


def test_chain_run_matches_front_ends(rng):
    """run_chain (used by the CLI and the ONNX verifier) equals the Keras front end, incl. hard_sigmoid,
    go_backwards and non-concat merges."""
    layers = [
        _built(Bidirectional(LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid"), merge_mode="ave")),
        _built(LSTM(3, go_backwards=True, return_sequences=True, return_state=True), 5),
    ]
    for l in layers:
        l.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in l.get_weights()])
    x = _x(rng, False)
    expected, h, c = layers[1](layers[0](x))
    chain = convert.chain_from(layers)
    res = convert.run_chain(chain, torch.from_numpy(x).transpose(0, 1).contiguous())
    assert max_abs(res.outputs[0].transpose(0, 1), expected) <= TOL
    assert max_abs(res.h[-1], h) <= TOL and max_abs(res.c[-1], c) <= TOL
    assert convert.standard_violations(chain)  # hard_sigmoid, ave, go_backwards
    diffs = convert.compare_chains(chain, convert.chain_from(layers))
    assert all(d.worst == 0.0 for d in diffs)


@pytest.mark.parametrize(
    "merge_mode, expected",
    [
        ("concat", lambda f, b: [torch.cat([f, b], -1)]),
        ("sum", lambda f, b: [f + b]),
        ("mul", lambda f, b: [f * b]),
        ("ave", lambda f, b: [(f + b) / 2]),
        (None, lambda f, b: [f, b]),
    ],
)
def test_keras_outputs_merge_rules(merge_mode, expected):
    """The chain runner's output rules live in one function: merges, the last processed step of each
    direction without return_sequences, and processing order for a lone go_backwards layer."""
    f, b = torch.randn(4, 2, 3), torch.randn(4, 2, 3)
    layer = convert.ChainLayer("bi", [], [False, True], merge_mode=merge_mode)  # the rules need no weights
    for got, want in zip(convert.keras_outputs(layer, [f, b]), expected(f, b)):
        assert torch.equal(got, want)
    layer.return_sequences = False
    for got, want in zip(convert.keras_outputs(layer, [f, b]), expected(f[-1], b[0])):
        assert torch.equal(got, want)


def test_keras_outputs_processing_order_and_unknown_merge():
    out = torch.randn(4, 2, 3)
    back = convert.ChainLayer("gb", [], [True], processing_order=True)
    assert torch.equal(convert.keras_outputs(back, [out])[0], out.flip(0))
    back.return_sequences = False
    assert torch.equal(convert.keras_outputs(back, [out])[0], out[0])
    with pytest.raises(ValueError, match="unknown merge_mode 'max'"):
        convert.keras_outputs(convert.ChainLayer("m", [], [False, True], merge_mode="max"), [out, out])


def test_chain_of_a_weights_only_file_leaves_the_model_file_unchanged():
    """A weights-only Keras file records no return_sequences: its chain runs full sequences, on copies of
    the (shared, read-only) entries ModelFile.lstm_layers() returns."""
    import lstm_bridge

    mf = lstm_bridge.load(FIXTURES / "keras" / "tfkeras_bilstm_stacked.weights.h5")
    before = [dict(e.semantics) for e in mf.lstm_layers()]
    chain = convert.chain_from_model_file(mf, validate=False)
    assert all(l.return_sequences for l in chain.layers)
    assert [dict(e.semantics) for e in mf.lstm_layers()] == before
    assert not any("return_sequences_unknown" in s for s in before)
