"""The Keras front end's structure (issue 10 item 2): every option declared once (keras/options.py) and
matching each public signature and ``get_config``; ``Bidirectional`` drives its layers through the public
runner (``LSTM.prepare`` / ``run`` / ``finish``); the output rules live once (keras/outputs.py) and the
converter's chain runner follows them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch

import lstm_bridge.keras as K
from lstm_bridge import convert
from lstm_bridge.keras import options as O, outputs as outputs_
from lstm_bridge.keras.layer import DirectionRun, LayerCall

CELL_SIGNATURE_EXTRAS = ("name", "trainable", "dtype", "keras_version")

# A value other than the default for every declared option (the config round-trip below needs one each).
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
    "seed": 7,
}


def _declared_parameters(cls: type) -> Dict[str, Any]:
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    return {p.name: p.default for p in params if p.kind is not p.VAR_KEYWORD and p.name not in CELL_SIGNATURE_EXTRAS}


@pytest.mark.parametrize(
    "cls, scope, v1",
    [(K.LSTMCell, "cell", False), (K.LSTM, None, False), (K.v1.LSTMCell, "cell", True), (K.v1.LSTM, None, True)],
)
def test_signatures_are_the_declared_options_and_defaults(cls, scope, v1):
    """Each public constructor lists the declared options in Keras's order with the declared defaults
    (TF 1.15's for the v1 classes), and nothing else."""
    declared = [o for o in O.OPTIONS if scope is None or o.scope == scope]
    params = _declared_parameters(cls)
    assert list(params) == [o.name for o in declared]
    for o in declared:
        want = inspect.Parameter.empty if o.default is O.REQUIRED else o.default_for(v1)
        assert params[o.name] == want, (cls.__qualname__, o.name)
    if scope == "cell":
        names = list(inspect.signature(cls.__init__).parameters)
        assert names[-len(CELL_SIGNATURE_EXTRAS) :] == list(CELL_SIGNATURE_EXTRAS)
    assert cls.__init__.__doc__ is None or "units" not in cls.__init__.__doc__  # documented on the class


def test_v1_differs_only_by_declared_defaults():
    diffs = {o.name: (o.default, o.v1_default) for o in O.OPTIONS if o.default_for(True) != o.default}
    assert diffs == {"recurrent_activation": ("sigmoid", "hard_sigmoid"), "implementation": (2, 1)}
    layer = K.v1.LSTM(2)
    assert layer.implementation == 1 and layer.recurrent_activation.name == "hard_sigmoid"
    # TF 1.15 keeps implementation 2 with recurrent dropout; Keras 2/3 force 1
    assert K.v1.LSTM(2, implementation=2, recurrent_dropout=0.5).implementation == 2
    assert K.LSTM(2, implementation=2, recurrent_dropout=0.5).implementation == 1


def test_every_declared_option_has_a_test_value():
    assert set(NON_DEFAULT) == {o.name for o in O.OPTIONS}
    for o in O.OPTIONS:
        assert o.doc and o.scope in ("cell", "layer")
        assert o.default is O.REQUIRED or NON_DEFAULT[o.name] != o.default


@pytest.mark.parametrize("name", [o.name for o in O.OPTIONS])
def test_layer_config_round_trips_every_option(name):
    """``get_config`` writes every declared option, and ``from_config`` restores a non-default value."""
    layer = K.LSTM(**{"units": 2, name: NON_DEFAULT[name]})
    config = layer.get_config()
    assert {o.name for o in O.OPTIONS} <= set(config)
    again = K.LSTM.from_config(config)
    assert again.get_config() == config
    assert config[name] != K.LSTM(2).get_config()[name]


@pytest.mark.parametrize("name", [o.name for o in O.CELL_OPTIONS])
def test_cell_config_round_trips_every_cell_option(name):
    cell = K.LSTMCell(**{"units": 2, name: NON_DEFAULT[name]})
    config = cell.get_config()
    assert [k for k in config if k not in ("name", "trainable", "dtype")] == [o.name for o in O.CELL_OPTIONS]
    assert K.LSTMCell.from_config(config).get_config() == config
    assert config[name] != K.LSTMCell(2).get_config()[name]


def test_layer_exposes_every_cell_option_and_accepts_every_extra_kwarg():
    layer = K.LSTM(**NON_DEFAULT)
    for o in O.CELL_OPTIONS:
        assert getattr(layer, o.name) is getattr(layer.cell, o.name)
    values = {
        "name": "x",
        "trainable": False,
        "dtype": "float64",
        "keras_version": 2,
        "zero_output_for_mask": True,
        "input_shape": (4, 3),
        "batch_input_shape": (2, 4, 3),
        "batch_size": 2,
        "input_dim": 3,
        "input_length": 4,
        "use_cudnn": False,
        "weights": [np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)],
    }
    assert set(values) == set(O.EXTRA_KWARGS)
    for key, value in values.items():
        K.LSTM(2, **{key: value})
    with pytest.raises(TypeError, match="Keyword argument not understood: 'bogus'"):
        K.LSTM(2, bogus=1)


# --- the runner interface ------------------------------------------------------------------------------
def test_bidirectional_uses_only_public_members_of_other_objects():
    """No ``other._private`` access in keras/bidirectional.py: the wrapped layers are driven through
    ``LSTM.prepare`` / ``run`` / ``finish``."""
    source = Path(K.bidirectional.__file__).read_text()
    private = [
        (node.lineno, ast.unparse(node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        and not (  # super()._apply: the wrapper's own Module machinery
            isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "super"
        )
    ]
    assert private == []


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_prepare_run_finish_is_forward(go_backwards, return_state):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = K.LSTM(4, return_sequences=True, return_state=return_state, go_backwards=go_backwards)
    want = layer(x, mask=mask)
    call = layer.prepare(x, mask)
    assert isinstance(call, LayerCall) and tuple(call.xt.shape) == (5, 2, 3)
    run = layer.run(call)
    assert isinstance(run, DirectionRun) and tuple(run.seq.shape) == (5, 2, 4)
    got = layer.finish(call, run)
    for a, b in zip(got if return_state else [got], want if return_state else [want]):
        assert torch.equal(a, b)
    # run's sequence is in original time order; finish returns a go_backwards layer's in processing order
    seq = got[0] if return_state else got
    assert torch.equal(seq.transpose(0, 1), run.seq.flip(0) if go_backwards else run.seq)


# --- the output rules ----------------------------------------------------------------------------------
def test_output_rules():
    seq = torch.arange(24.0).reshape(4, 2, 3)
    assert torch.equal(outputs_.direction_output(seq, reverse=True, return_sequences=True), seq.flip(0))
    assert torch.equal(outputs_.direction_output(seq, reverse=True, return_sequences=False), seq[0])
    assert torch.equal(outputs_.direction_output(seq, reverse=False, return_sequences=False), seq[-1])
    assert torch.equal(outputs_.direction_output(seq, reverse=True, return_sequences=True, processing_order=False), seq)
    f, b = torch.randn(4, 2, 3), torch.randn(4, 2, 3)
    # a standard Bidirectional: both halves in original time order
    [y] = outputs_.merged_outputs([f, b], [False, True], return_sequences=True, merge_mode="concat")
    assert torch.equal(y, torch.cat([f, b], -1))
    # a wrapped go_backwards layer: both halves reversed (tf_keras and Keras 3 flip the backward half only)
    y_f, y_b = outputs_.merged_outputs([f, b], [True, False], return_sequences=True, merge_mode=None)
    assert torch.equal(y_f, f.flip(0)) and torch.equal(y_b, b.flip(0))
    h_f, c_f, h_b, c_b = (torch.full((2, 3), float(i)) for i in range(4))
    assert outputs_.state_list([h_f, h_b], [c_f, c_b]) == [h_f, c_f, h_b, c_b]
    assert isinstance(outputs_.pack([f], 3), tuple) and isinstance(outputs_.pack([f], 2), list)
    assert outputs_.merge_shapes((2, 5, 4), "concat") == [(2, 5, 8)]
    assert outputs_.merge_shapes((2, 4), None) == [(2, 4), (2, 4)]
    with pytest.raises(ValueError, match="Invalid merge mode. Received: 'max'"):
        outputs_.merge(f, b, "max")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", None])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_chain_runner_follows_keras_bidirectional(merge_mode, go_backwards):
    """``convert.run_chain`` returns what ``keras.Bidirectional`` returns, also for a wrapped
    ``go_backwards`` layer (whose halves Keras returns both reversed; checked against tf_keras 2.21)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    layer = K.Bidirectional(K.LSTM(4, return_sequences=True, go_backwards=go_backwards), merge_mode=merge_mode)
    with torch.no_grad():
        want = layer(x)
        got = convert.run_chain(convert.chain_from(layer), torch.from_numpy(x).transpose(0, 1)).outputs
    want = want if isinstance(want, list) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.transpose(0, 1), w, rtol=0, atol=1e-6)
    if go_backwards and merge_mode is None:  # Keras: y_f is the forward layer's own (processing-order) output
        with torch.no_grad():
            assert torch.equal(want[0], layer.forward_layer(x))
            assert torch.equal(want[1], layer.backward_layer(x).flip(1))


@pytest.mark.parametrize("unroll, engine_calls", [(False, [2]), (True, [1, 1])])
def test_bidirectional_runs_both_directions_in_one_engine_call(monkeypatch, unroll, engine_calls):
    """``run_directions``: one engine call with both directions when their semantics agree; each on its
    own where Keras's unrolled masking quirk applies to one of them (spec keras §6)."""
    import lstm_bridge.keras.layer as layer_module

    seen = []
    real = layer_module.run_layer

    def counting(x, directions, *args, **kwargs):
        seen.append(len(directions))
        return real(x, directions, *args, **kwargs)

    monkeypatch.setattr(layer_module, "run_layer", counting)
    layer = K.Bidirectional(K.LSTM(3, return_sequences=True, unroll=unroll))
    x = np.random.default_rng(2).standard_normal((2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    with torch.no_grad():
        fused = layer(x, mask=mask)
    assert seen == engine_calls
    # the same numbers as the two layers run one by one
    f_call, b_call = layer.forward_layer.prepare(x, mask), layer.backward_layer.prepare(x, mask)
    with torch.no_grad():
        y_f = layer.forward_layer.finish(f_call, layer.forward_layer.run(f_call))
        y_b = layer.backward_layer.finish(b_call, layer.backward_layer.run(b_call))
    torch.testing.assert_close(fused, torch.cat([y_f, y_b.flip(1)], -1), rtol=0, atol=1e-6)
