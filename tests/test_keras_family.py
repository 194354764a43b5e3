"""lstm_bridge.keras GRU / GRUCell / SimpleRNN / SimpleRNNCell / v1.GRU and Bidirectional of each (issue 11
item 2): the per-kind option declarations and signatures, config round trips, the v1 defaults, Keras's weight
layouts and their errors, and the numbers against the float64 oracle (tests/oracle.py, written from
docs/spec/keras_gru_simplernn.md) over a small option matrix, including dropout with the masks the layer drew.
The real-framework goldens run in tests/test_golden_family.py."""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Dict, List

import numpy as np
import pytest
import torch

import lstm_bridge.keras as K
from lstm_bridge.keras import options as O
from lstm_bridge.recurrent import CellKind
from lstm_bridge.weights import family as WF

import oracle as R

CELL_SIGNATURE_EXTRAS = ("name", "trainable", "dtype", "keras_version")
KINDS = {"GRU": CellKind.GRU, "SimpleRNN": CellKind.RNN}

# A value other than the default for every option of any kind.
NON_DEFAULT: Dict[str, Any] = {
    "units": 3,
    "activation": "relu",
    "recurrent_activation": "tanh",
    "use_bias": False,
    "kernel_initializer": "ones",
    "recurrent_initializer": "zeros",
    "bias_initializer": "ones",
    "unit_forget_bias": False,
    "kernel_regularizer": "l2",
    "recurrent_regularizer": "l1",
    "bias_regularizer": "l1_l2",
    "activity_regularizer": "l2",
    "kernel_constraint": "non_neg",
    "recurrent_constraint": "unit_norm",
    "bias_constraint": "max_norm",
    "dropout": 0.25,
    "recurrent_dropout": 0.5,
    "implementation": 1,
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "time_major": True,
    "reset_after": False,
    "seed": 7,
}
F64 = 1e-10  # float64 layer vs float64 oracle


def _params(cls: type) -> Dict[str, Any]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    return {p.name: p.default for p in params if p.kind is not p.VAR_KEYWORD and p.name not in CELL_SIGNATURE_EXTRAS}


# --- the declarations -------------------------------------------------------------------------------------
def test_every_option_is_declared_once_with_its_kinds():
    assert set(NON_DEFAULT) == {o.name for o in O.ALL_OPTIONS}
    assert len({o.name for o in O.ALL_OPTIONS}) == len(O.ALL_OPTIONS)
    only = {o.name: o.kinds for o in O.ALL_OPTIONS if o.kinds != O.ALL_KINDS}
    assert only == {
        "recurrent_activation": {CellKind.LSTM, CellKind.GRU},
        "unit_forget_bias": {CellKind.LSTM},
        "implementation": {CellKind.LSTM, CellKind.GRU},
        "reset_after": {CellKind.GRU},
    }
    assert O.OPTIONS == O.options_for(CellKind.LSTM)  # the LSTM's table is unchanged


@pytest.mark.parametrize(
    "cls, kind, scope, v1",
    [
        (K.GRUCell, CellKind.GRU, "cell", False),
        (K.GRU, CellKind.GRU, None, False),
        (K.v1.GRUCell, CellKind.GRU, "cell", True),
        (K.v1.GRU, CellKind.GRU, None, True),
        (K.SimpleRNNCell, CellKind.RNN, "cell", False),
        (K.SimpleRNN, CellKind.RNN, None, False),
    ],
)
def test_signatures_are_the_declared_options_of_the_kind(cls, kind, scope, v1):
    declared = [o for o in O.options_for(kind) if scope is None or o.scope == scope]
    params = _params(cls)
    assert list(params) == [o.name for o in declared]
    for o in declared:
        want = inspect.Parameter.empty if o.default is O.REQUIRED else o.default_for(v1)
        assert params[o.name] == want, (cls.__qualname__, o.name)
    if scope == "cell":
        assert list(inspect.signature(cls.__init__).parameters)[-4:] == list(CELL_SIGNATURE_EXTRAS)


def test_options_of_other_kinds_are_refused():
    with pytest.raises(TypeError, match="unit_forget_bias"):
        K.GRU(2, unit_forget_bias=False)
    with pytest.raises(TypeError, match="reset_after"):
        K.LSTM(2, reset_after=False)
    with pytest.raises(TypeError, match="recurrent_activation"):
        K.SimpleRNN(2, recurrent_activation="sigmoid")
    with pytest.raises(TypeError, match="implementation"):
        K.SimpleRNNCell(2, implementation=1)


# --- config -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls, name",
    [
        (c, o.name)
        for c, kind in ((K.GRU, CellKind.GRU), (K.SimpleRNN, CellKind.RNN), (K.v1.GRU, CellKind.GRU))
        for o in O.options_for(kind)
    ],
)
@pytest.mark.parametrize("keras_version", [2, 3])
def test_layer_config_round_trips_every_option(cls, name, keras_version):
    value = NON_DEFAULT[name]
    if cls is K.v1.GRU:  # TF 1.15's defaults are the other values
        value = {"reset_after": True, "implementation": 2}.get(name, value)
    layer = cls(**{"units": 2, name: value, "keras_version": keras_version})
    config = layer.get_config()
    assert {o.name for o in O.options_for(layer.kind)} <= set(config)
    assert "unit_forget_bias" not in config and ("reset_after" in config) == (layer.kind is CellKind.GRU)
    again = type(layer).from_config(config)
    assert again.get_config() == config and again.keras_version == keras_version
    assert config[name] != cls(2, keras_version=keras_version).get_config()[name]


@pytest.mark.parametrize(
    "cls, name",
    [
        (c, o.name)
        for c, kind in ((K.GRUCell, CellKind.GRU), (K.SimpleRNNCell, CellKind.RNN))
        for o in O.cell_options(kind)
    ],
)
def test_cell_config_round_trips_every_cell_option(cls, name):
    cell = cls(**{"units": 2, name: NON_DEFAULT[name]})
    config = cell.get_config()
    assert [k for k in config if k not in ("name", "trainable", "dtype")] == [o.name for o in O.cell_options(cls.kind)]
    assert cls.from_config(config).get_config() == config
    assert config[name] != cls(2).get_config()[name]


def test_tf_keras_from_config_rules():
    """tf_keras's SimpleRNN.from_config drops ``implementation``; GRU.from_config reads 0 as 1."""
    cfg = K.SimpleRNN(2).get_config()
    assert K.SimpleRNN.from_config({**cfg, "implementation": 2}).get_config() == cfg
    assert K.GRU.from_config({**K.GRU(2).get_config(), "implementation": 0}).implementation == 1


def test_names_and_layer_attributes():
    g, s = K.GRU(2), K.SimpleRNN(2)
    assert g.name.startswith("gru") and g.cell.name == "gru_cell"
    assert s.name.startswith("simple_rnn") and s.cell.name == "simple_rnn_cell"
    assert g.reset_after is True and g.recurrent_activation.name == "sigmoid" and g.implementation == 2
    with pytest.raises(AttributeError):
        _ = s.recurrent_activation
    with pytest.raises(AttributeError):
        _ = g.unit_forget_bias
    assert K.GRUCell(3).state_size == 3 and K.SimpleRNNCell(3).state_size == 3 and K.LSTMCell(3).state_size == [3, 3]


# --- v1 ---------------------------------------------------------------------------------------------------
def test_v1_gru_defaults_are_tf_1_15s():
    layer = K.v1.GRU(2)
    assert layer.recurrent_activation.name == "hard_sigmoid" and layer.reset_after is False
    assert layer.implementation == 1 and layer.activation.name == "tanh"
    layer.build((None, 3, 4))
    assert [w.shape for w in layer.get_weights()] == [(4, 6), (2, 6), (6,)]
    assert isinstance(layer.cell, K.v1.GRUCell)
    # measured on tf_keras 2.21: gru_v1.GRUCell(recurrent_dropout=0.5, implementation=2).implementation == 1
    assert K.v1.GRUCell(2, recurrent_dropout=0.5, implementation=2).implementation == 1
    assert K.GRU(2, recurrent_dropout=0.5, implementation=2).implementation == 1
    assert K.v1.GRU(2, implementation=2).implementation == 2


# --- weights ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, shapes",
    [
        (lambda: K.GRU(4), [(3, 12), (4, 12), (2, 12)]),
        (lambda: K.GRU(4, reset_after=False), [(3, 12), (4, 12), (12,)]),
        (lambda: K.GRU(4, use_bias=False), [(3, 12), (4, 12)]),
        (lambda: K.SimpleRNN(4), [(3, 4), (4, 4), (4,)]),
        (lambda: K.SimpleRNN(4, use_bias=False), [(3, 4), (4, 4)]),
    ],
)
def test_weights_are_keras_shaped(layer, shapes):
    """docs/spec/keras_gru_simplernn.md §1.1: measured shapes for GRU(4) on F = 3 (K3 and TK)."""
    lay = layer()
    lay.build((None, 5, 3))
    assert [tuple(p.shape) for p in lay.trainable_weights] == shapes
    assert all(isinstance(p, torch.nn.Parameter) for p in lay.trainable_weights)


def test_gru_bias_initializer_fills_both_rows():
    lay = K.GRU(2, bias_initializer="ones")
    lay.build((None, 1, 3))
    np.testing.assert_array_equal(lay.get_weights()[2], np.ones((2, 6)))


def test_set_weights_errors_name_the_expected_shape():
    gru = K.GRU(4)
    with pytest.raises(ValueError, match=r"bias .* must have shape \(2, 12\); received \(12,\).*reset_after=True"):
        gru.set_weights([np.zeros((3, 12)), np.zeros((4, 12)), np.zeros(12)])
    with pytest.raises(ValueError, match=r"kernel must be 2-D \(input_dim, 12\)"):
        gru.set_weights([np.zeros(12), np.zeros((4, 12)), np.zeros((2, 12))])
    with pytest.raises(ValueError, match=r"recurrent_kernel .* must have shape \(4, 4\); received \(4, 12\)"):
        K.SimpleRNN(4).set_weights([np.zeros((3, 4)), np.zeros((4, 12)), np.zeros(4)])
    with pytest.raises(ValueError, match="expects 2 weights"):
        K.GRU(4, use_bias=False).set_weights([np.zeros((3, 12)), np.zeros((4, 12)), np.zeros((2, 12))])


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_engine_weights_are_weights_family_layout(rng, reset_after):
    """The cell hands the engine Keras's z, r, h blocks as r, z, n - the layout of weights.family."""
    u, F = 3, 2
    bias = rng.standard_normal((2, 3 * u) if reset_after else (3 * u,))
    k, r = rng.standard_normal((F, 3 * u)), rng.standard_normal((u, 3 * u))
    cell = K.GRUCell(u, reset_after=reset_after, dtype="float64")
    cell.set_weights([k, r, bias])
    got = cell.direction_weights()
    want = WF.gru_from_keras(k, r, bias, reset_after=reset_after)
    assert got.kind is CellKind.GRU
    for name in ("w_ih", "w_hh", "b_ih"):
        np.testing.assert_array_equal(getattr(got, name).detach().numpy(), getattr(want, name))
    if reset_after:
        np.testing.assert_array_equal(got.b_hh.detach().numpy(), want.b_hh)
    else:
        assert got.b_hh is None or not np.any(got.b_hh.detach().numpy())
    back = WF.gru_to_keras(got.numpy() if hasattr(got, "numpy") else got, reset_after=reset_after)
    for a, b in zip(back, [k, r, bias]):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_simple_rnn_engine_weights_are_views(rng):
    cell = K.SimpleRNNCell(3)
    cell.build((None, 2))
    w = cell.direction_weights()
    assert w.kind is CellKind.RNN and w.w_ih.data_ptr() == cell.kernel.data_ptr() and w.b_hh is None


# --- numbers against the float64 oracle -------------------------------------------------------------------
def _weights(rng, kind, F, u, reset_after=True, use_bias=True):
    g = 3 if kind == "gru" else 1
    w = [rng.standard_normal((F, g * u)) * 0.6, rng.standard_normal((u, g * u)) * 0.6]
    if use_bias:
        w.append(rng.standard_normal((2, g * u) if (kind == "gru" and reset_after) else (g * u,)) * 0.4)
    return w


def _mask(B, T):
    m = np.ones((B, T), bool)
    m[0, 3:] = False  # right padding
    m[1, :2] = False  # left padding
    m[2, 1] = m[2, 3] = False  # holes
    if B > 3:
        m[3] = False  # all masked
    return m


def _as_list(out):
    return [o.detach().numpy() for o in out] if isinstance(out, (list, tuple)) else [out.detach().numpy()]


def _oracle_act(name, kv):
    return "hard_sigmoid_keras3" if (name == "hard_sigmoid" and kv == 3) else name


GRU_MATRIX = list(
    itertools.product(
        [True, False],  # reset_after
        [("tanh", "sigmoid"), ("relu", "hard_sigmoid")],
        [2, 3],  # keras_version
        [
            (False, False, False),
            (True, True, False),
            (True, False, True),
        ],  # return_sequences, go_backwards, zero_output
        [False, True],
    )
)  # mask + h0


@pytest.mark.parametrize("reset_after, acts, kv, flags, masked", GRU_MATRIX)
def test_gru_matches_the_oracle(rng, reset_after, acts, kv, flags, masked):
    B, T, F, u = 4, 5, 3, 4
    return_sequences, go_backwards, zero = flags
    x = rng.standard_normal((B, T, F))
    w = _weights(rng, "gru", F, u, reset_after)
    h0 = rng.standard_normal((B, u)) if masked else None
    mask = _mask(B, T) if masked else None
    layer = K.GRU(
        u,
        activation=acts[0],
        recurrent_activation=acts[1],
        reset_after=reset_after,
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero,
        dtype="float64",
        keras_version=kv,
    )
    layer.set_weights(w)
    out = layer(x, mask=mask, initial_state=None if h0 is None else [h0])
    assert isinstance(out, tuple if kv == 3 else list) and len(out) == 2
    want = R.keras_gru(
        x,
        *w,
        reset_after=reset_after,
        activation=acts[0],
        recurrent_activation=_oracle_act(acts[1], kv),
        mask=mask,
        initial_state=h0,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        return_state=True,
        zero_output_for_mask=zero,
    )
    for got, ref in zip(_as_list(out), want):
        np.testing.assert_allclose(got, ref, atol=F64, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu", None, "hard_sigmoid"])
@pytest.mark.parametrize(
    "go_backwards, masked, time_major", [(False, False, False), (True, True, False), (False, True, True)]
)
def test_simple_rnn_matches_the_oracle(rng, activation, go_backwards, masked, time_major):
    B, T, F, u = 4, 5, 3, 2
    x = rng.standard_normal((T, B, F) if time_major else (B, T, F))
    w = _weights(rng, "rnn", F, u)
    h0 = rng.standard_normal((B, u))
    mask = _mask(B, T) if masked else None
    if mask is not None and time_major:
        mask = mask.T
    layer = K.SimpleRNN(
        u,
        activation=activation,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        time_major=time_major,
        dtype="float64",
    )
    layer.set_weights(w)
    out = layer(x, mask=mask, initial_state=torch.tensor(h0))  # a bare state tensor is accepted
    want = R.keras_simple_rnn(
        x,
        *w,
        activation=activation,
        mask=mask,
        initial_state=h0,
        go_backwards=go_backwards,
        return_sequences=True,
        return_state=True,
        time_major=time_major,
    )
    for got, ref in zip(_as_list(out), want):
        np.testing.assert_allclose(got, ref, atol=F64, rtol=0)


@pytest.mark.parametrize("kind", ["gru", "simple_rnn"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_the_oracle(rng, kind, merge_mode, return_sequences):
    B, T, F, u = 4, 5, 3, 3
    x = rng.standard_normal((B, T, F))
    cell_kind = "gru" if kind == "gru" else "rnn"
    wf, wb = _weights(rng, cell_kind, F, u), _weights(rng, cell_kind, F, u)
    mask = _mask(B, T)
    init = [rng.standard_normal((B, u)), rng.standard_normal((B, u))]
    cls = K.GRU if kind == "gru" else K.SimpleRNN
    bi = K.Bidirectional(
        cls(u, return_sequences=return_sequences, return_state=True, dtype="float64"), merge_mode=merge_mode
    )
    bi.set_weights(wf + wb)
    out = bi(x, mask=mask, initial_state=init)
    want = R.keras_bidirectional_family(
        kind,
        x,
        wf,
        wb,
        merge_mode=merge_mode,
        return_sequences=return_sequences,
        return_state=True,
        mask=mask,
        initial_state=init,
    )
    got = _as_list(out)
    assert len(got) == len(want) == (4 if merge_mode is None else 3)
    for g, ref in zip(got, want):
        np.testing.assert_allclose(g, ref, atol=F64, rtol=0)


def test_bidirectional_of_v1_gru_and_its_config(rng):
    bi = K.Bidirectional(K.v1.GRU(2, return_sequences=True))
    assert isinstance(bi.forward_layer, K.v1.GRU) and bi.backward_layer.go_backwards
    assert bi.forward_layer.reset_after is False
    bi.build((None, 3, 2))
    assert [w.shape for w in bi.get_weights()] == [(2, 6), (2, 6), (6,)] * 2
    cfg = bi.get_config()
    assert cfg["layer"]["class_name"] == "GRU"
    again = K.Bidirectional.from_config(cfg)
    assert type(again.forward_layer) is K.GRU and again.forward_layer.reset_after is False
    cfg3 = K.Bidirectional(K.SimpleRNN(2, keras_version=3)).get_config()
    assert cfg3["layer"]["class_name"] == cfg3["backward_layer"]["class_name"] == "SimpleRNN"
    assert type(K.Bidirectional.from_config(cfg3).backward_layer) is K.SimpleRNN


def test_bidirectional_refuses_mixed_kinds_and_wrong_state_counts():
    with pytest.raises(ValueError, match="cell kind; expected a GRU layer .* received SimpleRNN"):
        K.Bidirectional(K.GRU(2), backward_layer=K.SimpleRNN(2, go_backwards=True))
    bi = K.Bidirectional(K.GRU(2))
    with pytest.raises(ValueError, match=r"must be \[h_f, h_b\]; received 4"):
        bi(np.zeros((1, 3, 2), np.float32), initial_state=[np.zeros((1, 2), np.float32)] * 4)
    with pytest.raises(ValueError, match="Please initialize `Bidirectional`"):
        K.Bidirectional(K.GRUCell(2))


@pytest.mark.parametrize("cls, oracle_cell", [(K.GRUCell, "gru"), (K.v1.GRUCell, "gru_v1"), (K.SimpleRNNCell, "rnn")])
def test_cells_match_the_oracle_and_keep_the_state_form(rng, cls, oracle_cell):
    B, F, u = 3, 2, 4
    cell = cls(u, dtype="float64")
    kind = "rnn" if oracle_cell == "rnn" else "gru"
    w = _weights(rng, kind, F, u, reset_after=oracle_cell == "gru")
    cell.set_weights(w)
    x, h = rng.standard_normal((B, F)), rng.standard_normal((B, u))
    out, states = cell(x, [h])
    assert isinstance(states, list) and len(states) == 1 and states[0] is out
    bare_out, bare = cell(torch.tensor(x), torch.tensor(h))  # a bare h in, a bare h out (as Keras)
    assert isinstance(bare, torch.Tensor)
    if oracle_cell == "rnn":
        want = R.keras_simple_rnn_cell(x, h, *w)
    elif oracle_cell == "gru":
        want = R.keras_gru_cell(x, h, *w)
    else:
        want = R.keras_gru_cell(x, h, *w, reset_after=False, recurrent_activation="hard_sigmoid")
    np.testing.assert_allclose(out.detach().numpy(), want, atol=F64, rtol=0)
    np.testing.assert_allclose(bare_out.detach().numpy(), want, atol=F64, rtol=0)
    with pytest.raises(ValueError, match=r"states must be a list \[h\]; received list of length 2"):
        cell(x, [h, h])


# --- dropout ----------------------------------------------------------------------------------------------
def _record_masks(monkeypatch, cell):
    drawn: List[Any] = []
    original = cell.dropout_masks

    def record(*args, **kwargs):
        m = original(*args, **kwargs)
        drawn.append(m)
        return m

    monkeypatch.setattr(cell, "dropout_masks", record)
    return drawn


@pytest.mark.parametrize("implementation, n_input", [(1, 3), (2, 1)])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_dropout_draws_keras_mask_counts_and_matches_the_oracle(
    rng, monkeypatch, implementation, n_input, reset_after
):
    """docs/spec/keras_gru_simplernn.md §5: implementation 1 draws 3 masks per kind (z, r, h), implementation
    2 one input mask; recurrent dropout forces implementation 1 (3 recurrent masks). The recurrent masks
    enter the matmuls only."""
    B, T, F, u = 3, 4, 3, 2
    layer = K.GRU(
        u,
        dropout=0.3,
        recurrent_dropout=0.4 if implementation == 1 else 0.0,
        reset_after=reset_after,
        implementation=implementation,
        return_sequences=True,
        return_state=True,
        dtype="float64",
        seed=3,
    )
    w = _weights(rng, "gru", F, u, reset_after)
    layer.set_weights(w)
    drawn = _record_masks(monkeypatch, layer.cell)
    x = rng.standard_normal((B, T, F))
    out = layer(x, training=True)
    masks = drawn[0]
    assert masks.inputs.shape == (n_input, B, F)
    back = [1, 0, 2]  # the engine's r, z, n back to Keras's z, r, h
    in_m = masks.inputs.numpy()[back] if n_input == 3 else masks.inputs.numpy()
    rec_m = None
    if implementation == 1:
        assert masks.recurrent.shape == (3, B, u)
        rec_m = masks.recurrent.numpy()[back]
    else:
        assert masks.recurrent is None
    want = R.keras_gru(
        x,
        *w,
        reset_after=reset_after,
        return_sequences=True,
        return_state=True,
        input_masks=in_m,
        recurrent_masks=rec_m,
    )
    for g, ref in zip(_as_list(out), want):
        np.testing.assert_allclose(g, ref, atol=F64, rtol=0)
    assert not np.allclose(_as_list(out)[0], _as_list(layer(x, training=False))[0])


def test_simple_rnn_dropout_draws_one_mask_per_kind(rng, monkeypatch):
    B, T, F, u = 3, 4, 3, 2
    layer = K.SimpleRNN(u, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, dtype="float64", seed=1)
    w = _weights(rng, "rnn", F, u)
    layer.set_weights(w)
    drawn = _record_masks(monkeypatch, layer.cell)
    x = rng.standard_normal((B, T, F))
    out = layer(x, training=True)
    m = drawn[0]
    assert m.inputs.shape == (1, B, F) and m.recurrent.shape == (1, B, u)
    want = R.keras_simple_rnn(
        x, *w, return_sequences=True, input_mask=m.inputs.numpy()[0], recurrent_mask=m.recurrent.numpy()[0]
    )
    np.testing.assert_allclose(out.detach().numpy(), want, atol=F64, rtol=0)


# --- states ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_stateful_calls_continue_and_reset(rng, cls):
    B, T, F, u = 2, 6, 3, 3
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    whole = cls(u, return_sequences=True)
    whole.build(x.shape)
    w = whole.get_weights()
    layer = cls(u, return_sequences=True, stateful=True)
    layer.build(x.shape)
    layer.set_weights(w)
    first, second = layer(x[:, :3]), layer(x[:, 3:])
    np.testing.assert_allclose(torch.cat([first, second], 1).detach().numpy(), whole(x).detach().numpy(), atol=1e-6)
    assert len(layer.states) == 1 and layer.states[0].shape == (B, u)
    layer.reset_states()
    assert not torch.count_nonzero(layer.states[0])
    h = np.ones((B, u), np.float32)
    layer.reset_states(h)  # a bare h
    np.testing.assert_array_equal(layer.states[0].numpy(), h)
    with pytest.raises(ValueError, match=r"reset_states expects \[h\]"):
        layer.reset_states([h, h])


def test_initial_state_rules_and_return_types(rng):
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    tk = K.GRU(4, return_state=True)
    out, h = tk([x, h0])  # tf_keras's inputs-list form: [x, h0]
    assert isinstance(tk(x, initial_state=[h0]), list)
    np.testing.assert_allclose(h.detach().numpy(), tk(x, initial_state=h0)[1].detach().numpy(), atol=1e-7)
    k3 = K.GRU(4, return_state=True, keras_version=3)
    assert isinstance(k3(x), tuple)
    assert k3.compute_output_shape((2, 3, 2)) == ((2, 4), (2, 4))
    assert tk.compute_output_shape((2, 3, 2)) == [(2, 4), (2, 4)]
    with pytest.raises(
        ValueError,
        match=r"must be a list \[h\] of one \(batch, 4\) tensor; received a list of "
        "length 2",
    ):
        tk(x, initial_state=[h0, h0])
    with pytest.raises(ValueError, match=r"initial_state\[0\] \(h\)"):
        tk(x, initial_state=[h0[:, :3]])


# --- regularizers, constraints, gradients -----------------------------------------------------------------
def test_regularizers_and_constraints_apply_to_keras_shaped_weights():
    layer = K.GRU(
        2,
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l2",
        activity_regularizer="l1",
        bias_constraint="non_neg",
        kernel_initializer="ones",
        bias_initializer="ones",
    )
    x = np.ones((1, 2, 3), np.float32)
    layer(x)
    assert len(layer.losses) == 4
    np.testing.assert_allclose(layer.losses[0].item(), 0.01 * 3 * 6, rtol=1e-6)  # l2 on the (3, 6) kernel of ones
    np.testing.assert_allclose(layer.losses[2].item(), 0.01 * 12, rtol=1e-6)  # l2 on the (2, 6) bias of ones
    with torch.no_grad():
        layer.cell.bias.fill_(-1.0)
    layer.apply_constraints()
    assert not torch.any(layer.cell.bias)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradients_reach_every_keras_weight(rng, reset_after):
    """float64 gradients through the z, r, h -> r, z, n permutation agree with finite differences of the oracle."""
    B, T, F, u = 2, 3, 2, 2
    w = _weights(rng, "gru", F, u, reset_after)
    x = rng.standard_normal((B, T, F))
    layer = K.GRU(u, reset_after=reset_after, return_sequences=True, dtype="float64")
    layer.set_weights(w)
    proj = rng.standard_normal((B, T, u))
    loss = (layer(x) * torch.tensor(proj)).sum()
    grads = torch.autograd.grad(loss, layer.trainable_weights)
    eps = 1e-6
    for i, g in enumerate(grads):
        d = rng.standard_normal(w[i].shape)
        plus = [a + eps * d if j == i else a for j, a in enumerate(w)]
        minus = [a - eps * d if j == i else a for j, a in enumerate(w)]
        fd = (
            np.sum(proj * R.keras_gru(x, *plus, reset_after=reset_after, return_sequences=True))
            - np.sum(proj * R.keras_gru(x, *minus, reset_after=reset_after, return_sequences=True))
        ) / (2 * eps)
        assert abs(fd - float(np.sum(g.numpy() * d))) < 1e-6, i


# --- the frameworks' own GRU / SimpleRNN tests, ported (every number is the framework's expected output) ------
# keras-team/keras keras/src/layers/rnn/gru_test.py        -> test_k3_gru_*
# keras-team/keras keras/src/layers/rnn/simple_rnn_test.py -> test_k3_simple_rnn_*
# keras-team/tf-keras tf_keras/layers/rnn/gru_test.py, gru_v1_test.py, simple_rnn_test.py -> test_tk_*
# Not ported: Model/fit/train_on_batch loops, graph rewrites and GPU/cuDNN kernel selection (runtime outputs),
# tf.function / symbolic batch sizes, h5 model saving through tf_keras models, random-generator variable names.
UP_ATOL = 1e-5


def _const(cls, units, **kwargs):
    """The upstream tests' layer: constant 0.01 / 0.02 / 0.03 initializers."""
    return cls(
        units,
        kernel_initializer=K.initializers.Constant(0.01),
        recurrent_initializer=K.initializers.Constant(0.02),
        bias_initializer=K.initializers.Constant(0.03),
        **kwargs,
    )


def _close(got, want):
    np.testing.assert_allclose(
        got.detach().numpy() if isinstance(got, torch.Tensor) else got, np.asarray(want), atol=UP_ATOL, rtol=UP_ATOL
    )


@pytest.mark.parametrize(
    "cls, kwargs, n_losses",
    [
        (K.GRU, {"dropout": 0.5}, 0),
        (K.GRU, {"dropout": 0.5, "recurrent_dropout": 0.5}, 0),
        (
            K.GRU,
            {
                "return_sequences": True,
                "bias_regularizer": "l1",
                "kernel_regularizer": "l2",
                "recurrent_regularizer": "l2",
            },
            3,
        ),
        (K.SimpleRNN, {"dropout": 0.5, "recurrent_dropout": 0.5}, 0),
        (
            K.SimpleRNN,
            {
                "return_sequences": True,
                "bias_regularizer": "l1",
                "kernel_regularizer": "l2",
                "recurrent_regularizer": "l2",
            },
            3,
        ),
    ],
)
def test_k3_basics(cls, kwargs, n_losses):
    layer = cls(3, keras_version=3, **kwargs)
    out = layer(np.ones((3, 2, 4), np.float32), training=True)
    assert tuple(out.shape) == ((3, 2, 3) if kwargs.get("return_sequences") else (3, 3))
    assert len(layer.trainable_weights) == 3 and len(layer.non_trainable_weights) == 0
    assert len(layer.losses) == n_losses


@pytest.mark.parametrize("implementation", [1, 2])
def test_k3_gru_correctness(implementation):
    seq = np.arange(72).reshape((3, 6, 4)).astype("float32")
    plain = [[0.5217289] * 3, [0.6371659] * 3, [0.39384964] * 3]
    _close(_const(K.GRU, 3, implementation=implementation, keras_version=3)(seq), plain)
    _close(
        _const(K.GRU, 3, go_backwards=True, keras_version=3)(seq), [[0.24406259] * 3, [0.611516] * 3, [0.3928808] * 3]
    )
    _close(_const(K.GRU, 3, unroll=True, keras_version=3)(seq), plain)
    _close(
        _const(K.GRU, 3, reset_after=False, keras_version=3)(seq), [[0.51447755] * 3, [0.6426879] * 3, [0.40208298] * 3]
    )
    _close(
        _const(K.GRU, 3, use_bias=False, keras_version=3)(seq), [[0.49988455] * 3, [0.64701194] * 3, [0.4103359] * 3]
    )


def test_k3_gru_statefulness():
    seq = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = _const(K.GRU, 4, stateful=True, keras_version=3)
    want = [[0.29542392] * 4, [0.5885018] * 4]
    layer(seq)
    _close(layer(seq), want)
    layer.reset_state()
    layer(seq)
    _close(layer(seq), want)


def test_k3_gru_pass_initial_state_and_return_state():
    seq = np.arange(24).reshape((2, 4, 3)).astype("float32")
    h0 = np.arange(4).reshape((2, 2)).astype("float32")
    fwd, bwd = [[0.23774096, 0.33508456], [0.83659905, 1.0227708]], [[0.13486053, 0.23261218], [0.78257304, 0.9691353]]
    _close(_const(K.GRU, 2, keras_version=3)(seq, initial_state=h0), fwd)
    _close(_const(K.GRU, 2, go_backwards=True, keras_version=3)(seq, initial_state=h0), bwd)
    for go_backwards, want in ((False, fwd), (True, bwd)):
        output, state = _const(K.GRU, 2, return_state=True, go_backwards=go_backwards, keras_version=3)(
            seq, initial_state=h0
        )
        _close(output, want)
        _close(state, output.detach().numpy())


def test_k3_gru_masking():
    seq = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    _close(_const(K.GRU, 2, unroll=True, keras_version=3)(seq, mask=mask), [[0.19393763] * 2, [0.30818558] * 2])
    out = _const(K.GRU, 2, return_sequences=True, keras_version=3)(seq, mask=mask)
    _close(out[0], [[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2, [0.19393763] * 2])
    _close(out[1], [[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2, [0.30818558] * 2])
    out = _const(K.GRU, 2, return_sequences=True, zero_output_for_mask=True, keras_version=3)(seq, mask=mask)
    _close(out[0], [[0.03606692] * 2, [0.09497581] * 2, [0.0] * 2, [0.19393763] * 2])
    _close(out[1], [[0.16051409] * 2, [0.0] * 2, [0.0] * 2, [0.30818558] * 2])
    _close(_const(K.GRU, 2, go_backwards=True, keras_version=3)(seq, mask=mask), [[0.11669192] * 2, [0.28380975] * 2])


def test_k3_gru_legacy_implementation_argument():
    seq = np.arange(72).reshape((3, 6, 4)).astype("float32")
    config = _const(K.GRU, 3, keras_version=3).get_config()
    config["implementation"] = 0  # the legacy argument
    layer = K.GRU.from_config(config)
    _close(layer(seq), [[0.5217289] * 3, [0.6371659] * 3, [0.39384964] * 3])


def test_k3_simple_rnn_correctness():
    seq = np.arange(24).reshape((2, 3, 4)).astype("float32")
    plain, back = [[0.405432] * 4, [0.73605347] * 4], [[0.11144729] * 4, [0.5528889] * 4]
    for unroll in (False, True):
        _close(_const(K.SimpleRNN, 4, unroll=unroll, keras_version=3)(seq), plain)
        _close(_const(K.SimpleRNN, 4, go_backwards=True, unroll=unroll, keras_version=3)(seq), back)


def test_k3_simple_rnn_statefulness():
    seq = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = _const(K.SimpleRNN, 4, stateful=True, keras_version=3)
    want = [[0.40559256] * 4, [0.7361247] * 4]
    layer(seq)
    _close(layer(seq), want)
    layer.reset_state()
    layer(seq)
    _close(layer(seq), want)


def test_k3_simple_rnn_pass_initial_state():
    seq = np.arange(24).reshape((2, 4, 3)).astype("float32")
    h0 = np.arange(8).reshape((2, 4)).astype("float32")
    _close(_const(K.SimpleRNN, 4, keras_version=3)(seq, initial_state=h0), [[0.33621645] * 4, [0.6262637] * 4])
    _close(
        _const(K.SimpleRNN, 4, go_backwards=True, keras_version=3)(seq, initial_state=h0),
        [[0.07344437] * 4, [0.43043602] * 4],
    )


def test_k3_simple_rnn_masking():
    seq = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, True], [True, False, False, True]])
    _close(_const(K.SimpleRNN, 4, unroll=True, keras_version=3)(seq, mask=mask), [[0.32951632] * 4, [0.61799484] * 4])
    out = _const(K.SimpleRNN, 2, return_sequences=True, keras_version=3)(seq, mask=mask)
    _close(out[0], [[0.0599281] * 2, [0.15122814] * 2, [0.15122814] * 2, [0.32394567] * 2])
    _close(out[1], [[0.3969304] * 2, [0.3969304] * 2, [0.3969304] * 2, [0.608085] * 2])
    out = _const(K.SimpleRNN, 2, return_sequences=True, zero_output_for_mask=True, keras_version=3)(seq, mask=mask)
    _close(out[0], [[0.0599281] * 2, [0.15122814] * 2, [0.0] * 2, [0.32394567] * 2])
    _close(out[1], [[0.3969304] * 2, [0.0] * 2, [0.0] * 2, [0.608085] * 2])
    _close(
        _const(K.SimpleRNN, 4, go_backwards=True, keras_version=3)(seq, mask=mask), [[0.07376196] * 4, [0.43645123] * 4]
    )


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN, K.v1.GRU])
@pytest.mark.parametrize("stateful", [False, True])
def test_tk_from_config(cls, stateful):
    l1 = cls(units=1, stateful=stateful)
    assert cls.from_config(l1.get_config()).get_config() == l1.get_config()


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_tk_regularizers(cls):
    layer = cls(
        5,
        kernel_regularizer=K.regularizers.l1(0.01),
        recurrent_regularizer=K.regularizers.l1(0.01),
        bias_regularizer="l2",
        activity_regularizer="l1",
    )
    layer.build((None, None, 2))
    assert len(layer.losses) == 3
    layer(np.ones((2, 3, 2), np.float32))
    assert len(layer.losses) == 4


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_tk_constraints(cls):
    k, r, b = (K.constraints.max_norm(0.01) for _ in range(3))
    layer = cls(
        5,
        return_sequences=False,
        weights=None,
        input_shape=(None, 4),
        kernel_constraint=k,
        recurrent_constraint=r,
        bias_constraint=b,
    )
    layer.build((None, None, 4))
    cell = layer.cell
    assert cell.kernel_constraint is k and cell.recurrent_constraint is r and cell.bias_constraint is b
    layer.apply_constraints()
    norms = [torch.linalg.vector_norm(p.detach(), dim=0) for p in (layer.cell.kernel, layer.cell.recurrent_kernel)]
    assert all(float(n.max()) <= 0.01 + 1e-6 for n in norms)


@pytest.mark.parametrize("implementation_mode", [0, 1, 2])
def test_tk_gru_implementation_mode(implementation_mode):
    if implementation_mode == 0:
        with pytest.warns(UserWarning, match="implementation=0"):
            layer = K.GRU(2, implementation=implementation_mode)
    else:
        layer = K.GRU(2, implementation=implementation_mode)
    out = layer(np.random.default_rng(0).random((2, 3, 4)).astype(np.float32))
    assert tuple(out.shape) == (2, 2)


def test_tk_simple_rnn_implementation_argument_is_dropped_with_a_warning():
    """tf_keras simple_rnn.py: ``implementation`` is popped with a deprecation warning."""
    with pytest.warns(UserWarning, match="implementation` argument in `SimpleRNN` has been deprecated"):
        layer = K.SimpleRNN(2, implementation=1)
    assert "implementation" not in layer.get_config()


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_tk_float64_and_return_sequences(cls):
    layer = cls(2, return_sequences=True, dtype="float64")
    out = layer(np.random.default_rng(0).random((2, 3, 4)))
    assert out.dtype == torch.float64 and tuple(out.shape) == (2, 3, 2)


def test_tk_gru_recurrent_dropout_with_implementation_restriction():
    assert K.GRU(2, recurrent_dropout=0.1, implementation=2).implementation == 1


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_tk_statefulness_with_padding(cls):
    """tf_keras test_statefulness_*: left, right and mixed padding of the same ones give the same output."""
    layer = cls(2, stateful=True)
    x = np.ones((2, 3, 4), np.float32)
    out1 = layer(x)
    out2 = layer(x)
    assert not np.isclose(out1.max().item(), out2.max().item())  # the states carry over
    layer.reset_states()
    out3 = layer(x)
    np.testing.assert_allclose(out3.detach().numpy(), out1.detach().numpy(), atol=1e-5)
    outs = []
    for masked in ([(0, 0), (1, 0), (1, 1)], [(0, 2), (1, 1), (1, 2)], [(0, 1), (1, 0), (1, 2)]):
        mask = np.ones((2, 3), bool)
        for b, t in masked:
            mask[b, t] = False
        layer.reset_states()
        outs.append(layer(x, mask=mask).detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-5)
    np.testing.assert_allclose(outs[2], outs[1], atol=1e-5)


def test_tk_gru_explicit_device_with_go_backward_and_mask(rng):
    inputs = rng.standard_normal((8, 7, 4)).astype(np.float32)
    mask = np.ones((8, 7), bool)
    mask[:, 5:] = False
    layer = K.GRU(4, return_sequences=True, go_backwards=True)
    masked = layer(inputs, mask=mask)
    trimmed = layer(inputs[:, :5])
    np.testing.assert_allclose(masked[:, -5:].detach().numpy(), trimmed.detach().numpy(), atol=1e-5)


def test_tk_gru_with_fully_masked_inputs(rng):
    mask = np.ones((8, 5), bool)
    mask[0] = False
    out = K.GRU(2)(rng.standard_normal((8, 5, 4)).astype(np.float32), mask=mask)
    assert torch.isfinite(out).all() and not torch.count_nonzero(out[0])


def test_tk_gru_deepcopy(rng):
    import copy

    original = K.GRU(5)
    assert copy.deepcopy(original).units == 5
    inputs = rng.standard_normal((4, 10, 8)).astype(np.float32)
    original = K.GRU(4)
    copied = copy.deepcopy(original)
    assert not np.allclose(original(inputs).detach().numpy(), copied(inputs).detach().numpy())
    original = K.GRU(4)
    out = original(inputs)
    np.testing.assert_allclose(copy.deepcopy(original)(inputs).detach().numpy(), out.detach().numpy())


def test_tk_gru_in_tape():
    """tf_keras GRULayerGradientTapeTest: gradients of a loss on the returned state reach every weight."""
    layer = K.GRU(
        12,
        return_sequences=True,
        return_state=True,
        recurrent_activation="sigmoid",
        recurrent_initializer="glorot_uniform",
    )
    x = torch.rand(1, 10, 11)
    _, state = layer(x, initial_state=torch.zeros(1, 12))
    loss = ((state - torch.rand(1, 12)) ** 2).mean()
    grads = torch.autograd.grad(loss, layer.trainable_weights)
    assert all(g is not None and torch.count_nonzero(g) for g in grads)


def test_tk_gru_v1_feature_parity_v1_v2(rng):
    """tf_keras gru_v1_test: v1.GRU with reset_after=True and sigmoid equals the v2 GRU with the same weights."""
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    v2 = K.GRU(3, return_sequences=True)
    v2.build(x.shape)
    v1_ = K.v1.GRU(3, return_sequences=True, reset_after=True, recurrent_activation="sigmoid")
    v1_.build(x.shape)
    v1_.set_weights(v2.get_weights())
    np.testing.assert_allclose(v1_(x).detach().numpy(), v2(x).detach().numpy(), atol=1e-6)
    # ...and the v1 defaults (hard_sigmoid, reset_after=False) are a different function
    assert not np.allclose(K.v1.GRU(3)(x).detach().numpy(), K.GRU(3)(x).detach().numpy(), atol=1e-3)


def test_tk_bidirectional_of_each_kind_return_state_shapes():
    """docs/spec/keras_gru_simplernn.md §3 [V]: [merged, h_f, h_b] shapes [[2,8],[2,4],[2,4]], and
    [[2,4]]*4 with merge_mode=None (u = 4)."""
    x = np.ones((2, 5, 3), np.float32)
    for cls in (K.GRU, K.SimpleRNN, K.v1.GRU):
        out = K.Bidirectional(cls(4, return_state=True))(x)
        assert [tuple(o.shape) for o in out] == [(2, 8), (2, 4), (2, 4)]
        out = K.Bidirectional(cls(4, return_state=True), merge_mode=None)(x)
        assert [tuple(o.shape) for o in out] == [(2, 4)] * 4


# --- the runner interface, shared with LSTM -------------------------------------------------------------------
@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_prepare_run_finish_is_forward_for_one_state_kinds(cls, go_backwards):
    from lstm_bridge.keras.layer import DirectionRun, LayerCall

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = cls(4, return_sequences=True, return_state=True, go_backwards=go_backwards)
    want = layer(x, mask=mask)
    call = layer.prepare(x, mask)
    assert isinstance(call, LayerCall) and call.c0 is None
    run = layer.run(call)
    assert isinstance(run, DirectionRun) and run.c is None and tuple(run.seq.shape) == (5, 2, 4)
    got = layer.finish(call, run)
    assert len(got) == len(want) == 2 and all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("cls", [K.GRU, K.SimpleRNN])
def test_bidirectional_of_one_state_kinds_runs_in_one_engine_call(monkeypatch, cls):
    import lstm_bridge.keras.layer as layer_module

    seen = []
    real = layer_module.run_layer

    def counting(x, directions, h0, c0, **kwargs):
        seen.append((len(directions), c0))
        return real(x, directions, h0, c0, **kwargs)

    monkeypatch.setattr(layer_module, "run_layer", counting)
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    K.Bidirectional(cls(3, return_sequences=True))(x, mask=np.ones((2, 4), bool))
    assert seen == [(2, None)]


def _tf_keras_221_init(class_name: str, config: Dict[str, Any]) -> Dict[str, Any]:
    return {"module": "keras.initializers", "class_name": class_name, "config": config, "registered_name": None}


# get_config() of real tf_keras 2.21 layers: initializers carry Keras 3's ``module`` key, dtype is a string.
TF_KERAS_221_INITS = {
    "kernel_initializer": _tf_keras_221_init("GlorotUniform", {"seed": None}),
    "recurrent_initializer": _tf_keras_221_init("Orthogonal", {"gain": 1.0, "seed": None}),
    "bias_initializer": _tf_keras_221_init("Zeros", {}),
}


def test_tf_keras_221_config_is_generation_2() -> None:
    """A tf_keras 2.21 config (``module`` keys in its initializers) is tf_keras's: ``"hard_sigmoid"`` is
    ``clip(0.2 x + 0.5, 0, 1)``. Values from real tf_keras 2.21 (SimpleRNN(3, activation="hard_sigmoid"))."""
    cfg = {
        "name": "simple_rnn", "trainable": True, "dtype": "float32", "return_sequences": True,
        "return_state": False, "go_backwards": False, "stateful": False, "unroll": False, "time_major": False,
        "units": 3, "activation": "hard_sigmoid", "use_bias": True, **TF_KERAS_221_INITS,
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
        "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0,
    }  # fmt: skip
    layer = K.SimpleRNN.from_config(cfg)
    assert layer.keras_version == 2
    x = np.array([[[1.5, -2.0], [0.5, 3.0]]], np.float32)
    layer.build(x.shape)
    layer.set_weights(
        [
            np.array([[1.0, -0.5, 2.0], [0.25, 1.0, -1.5]], np.float32),
            np.array([[0.5, 0.0, -1.0], [1.0, 0.5, 0.0], [0.0, -0.5, 1.5]], np.float32),
            np.array([0.1, -0.2, 0.3], np.float32),
        ]
    )
    want = np.array([[[0.72, 0.0, 1.0], [0.842, 0.90999997, 0.01599997]]], np.float32)
    np.testing.assert_allclose(layer(torch.as_tensor(x)).detach().numpy(), want, atol=1e-6)
    cell_cfg = {
        "name": "gru_cell", "trainable": True, "dtype": "float32", "units": 2, "activation": "tanh",
        "recurrent_activation": "hard_sigmoid", "use_bias": True, **TF_KERAS_221_INITS,
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
        "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2, "reset_after": True,
    }  # fmt: skip
    assert K.GRUCell.from_config(cell_cfg).keras_version == 2
    # the same config as Keras 3 (< 3.6) writes it: a string dtype but a ``seed`` and no ``time_major``
    k3 = {k: v for k, v in cfg.items() if k not in ("time_major",)}
    assert K.SimpleRNN.from_config({**k3, "seed": None}).keras_version == 3
