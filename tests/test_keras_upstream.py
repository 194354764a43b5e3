"""The frameworks' own LSTM / Bidirectional tests, ported onto lstm_bridge's public API.

Sources (read from the upstream repositories; every number below is the framework's own expected output):

* keras-team/keras ``keras/src/layers/rnn/lstm_test.py``            -> ``test_k3_lstm_*``
* keras-team/keras ``keras/src/layers/rnn/bidirectional_test.py``   -> ``test_k3_bidirectional_*``
* keras-team/keras ``keras/src/layers/rnn/rnn_test.py`` (the parts that apply to any RNN layer) -> ``test_k3_rnn_*``
* keras-team/tf-keras ``tf_keras/layers/rnn/lstm_test.py``          -> ``test_tk_lstm_*``
* keras-team/tf-keras ``tf_keras/layers/rnn/lstm_v1_test.py``       -> ``test_tk_lstm_v1_*``
* keras-team/tf-keras ``tf_keras/layers/rnn/bidirectional_test.py`` -> ``test_tk_bidirectional_*``

Keras 3 tests run with ``keras_version=3`` where the generation matters (integer inputs, reset rules, config
nesting); tf_keras tests with the default (tf_keras) generation. What could not be ported (Model/fit
training loops, graph mode, GPU/cuDNN kernel selection, SimpleRNN/GRU/custom cells, ragged tensors) is listed
at the end of this module.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lstm_bridge.keras import LSTM, Bidirectional, LSTMCell, constraints, initializers, regularizers, v1

ATOL = 1e-5


def _const_lstm(units: int, **kwargs) -> LSTM:
    """The upstream tests' layer: constant 0.01 / 0.02 / 0.03 initializers."""
    return LSTM(
        units,
        kernel_initializer=initializers.Constant(0.01),
        recurrent_initializer=initializers.Constant(0.02),
        bias_initializer=initializers.Constant(0.03),
        **kwargs,
    )


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _close(actual, expected, atol: float = ATOL) -> None:
    np.testing.assert_allclose(_np(actual), _np(expected), atol=atol, rtol=1e-5)


def _layer_test(
    layer: LSTM, input_shape, expected_output_shape, call_kwargs=None, n_losses=None, input_dtype=np.float32
):
    """What Keras's ``run_layer_test`` / tf_keras's ``layer_test`` check on one layer: call, output shape,
    weight counts, losses, and that ``from_config(get_config())`` rebuilds an equal config computing the
    same numbers once given the same weights."""
    x = np.random.default_rng(0).random(input_shape).astype(input_dtype)
    y = layer(x, **(call_kwargs or {}))
    assert tuple(y.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == 3 and len(layer.non_trainable_weights) == 0
    if n_losses is not None:
        assert len(layer.losses) == n_losses
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone.set_weights(layer.get_weights())
    _close(clone(x), layer(x))
    return y


# --------------------------------------------------------------------------------------------------
# keras/src/layers/rnn/lstm_test.py
# --------------------------------------------------------------------------------------------------
def test_k3_lstm_basics():
    _layer_test(LSTM(3, dropout=0.5, keras_version=3), (3, 2, 4), (3, 3), {"training": True})
    _layer_test(LSTM(3, dropout=0.5, recurrent_dropout=0.5, keras_version=3), (3, 2, 4), (3, 3), {"training": True})
    _layer_test(
        LSTM(
            3,
            return_sequences=True,
            bias_regularizer="l1",
            kernel_regularizer="l2",
            recurrent_regularizer="l2",
            keras_version=3,
        ),
        (3, 2, 4),
        (3, 2, 3),
        n_losses=3,
    )


@pytest.mark.parametrize("implementation", [1, 2])
def test_k3_lstm_correctness(implementation):
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    expected_forward = [[0.6288687] * 3, [0.86899155] * 3, [0.9460773] * 3]
    _close(_const_lstm(3, implementation=implementation)(sequence), expected_forward)
    _close(
        _const_lstm(3, go_backwards=True, implementation=implementation)(sequence),
        [[0.35622165] * 3, [0.74789524] * 3, [0.8872726] * 3],
    )
    _close(_const_lstm(3, unroll=True, implementation=implementation)(sequence), expected_forward)
    _close(
        _const_lstm(3, unit_forget_bias=False, implementation=implementation)(sequence),
        [[0.57019705] * 3, [0.8661914] * 3, [0.9459622] * 3],
    )
    _close(
        _const_lstm(3, use_bias=False, implementation=implementation)(sequence),
        [[0.54986924] * 3, [0.86226785] * 3, [0.9443936] * 3],
    )


@pytest.mark.parametrize("keras_version", [2, 3])
def test_k3_lstm_statefulness(keras_version):
    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    layer = _const_lstm(4, stateful=True, keras_version=keras_version)
    layer(sequence)
    expected = [[0.3124785] * 4, [0.6863672] * 4]
    _close(layer(sequence), expected)
    layer.reset_state()
    layer(sequence)
    _close(layer(sequence), expected)


def test_k3_lstm_pass_initial_state():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [np.arange(4).reshape((2, 2)).astype("float32"), np.arange(4).reshape((2, 2)).astype("float32")]
    _close(_const_lstm(2)(sequence, initial_state=initial_state), [[0.20574439, 0.3558822], [0.64930826, 0.66276]])
    _close(
        _const_lstm(2, go_backwards=True)(sequence, initial_state=initial_state),
        [[0.13281618, 0.2790356], [0.5839337, 0.5992567]],
    )


def test_k3_lstm_masking():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    _close(_const_lstm(2, unroll=True)(sequence, mask=mask), [[0.11755939] * 2, [0.28556206] * 2])
    output = _const_lstm(2, return_sequences=True)(sequence, mask=mask)
    _close(output[0], [[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.11755939] * 2])
    _close(output[1], [[0.14185596] * 2, [0.28556206] * 2, [0.28556206] * 2, [0.28556206] * 2])
    output = _const_lstm(2, return_sequences=True, zero_output_for_mask=True)(sequence, mask=mask)
    _close(output[0], [[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2, [0.0, 0.0]])
    _close(output[1], [[0.14185596] * 2, [0.28556206] * 2, [0.0, 0.0], [0.0, 0.0]])
    backwards_mask = np.array([[False, True, True, True], [False, False, True, True]])
    _close(_const_lstm(2, go_backwards=True)(sequence, mask=backwards_mask), [[0.15341201] * 2, [0.3844719] * 2])


def test_k3_lstm_stateful_backward():
    """Keras's torch-backend regression (#23462): backward through a stateful layer, twice."""
    layer = LSTM(5, stateful=True, keras_version=3)
    inputs = torch.randn(2, 3, 4)
    layer(inputs).sum().backward()
    layer(inputs).sum().backward()  # the stored states are detached: no "backward through the graph twice"
    assert all(p.grad is not None for p in layer.trainable_weights)


# --------------------------------------------------------------------------------------------------
# keras/src/layers/rnn/bidirectional_test.py (the LSTM cases; SimpleRNN/GRU ones use the same wrapper)
# --------------------------------------------------------------------------------------------------
def test_k3_bidirectional_basics():
    x = np.random.default_rng(0).random((3, 2, 4)).astype(np.float32)
    layer = Bidirectional(LSTM(4, keras_version=3))
    assert tuple(layer(x).shape) == (3, 8)
    assert len(layer.trainable_weights) == 6 and len(layer.non_trainable_weights) == 0
    layer = Bidirectional(
        LSTM(4, keras_version=3), backward_layer=LSTM(4, go_backwards=True, keras_version=3), merge_mode="sum"
    )
    assert tuple(layer(x).shape) == (3, 4)
    assert len(layer.trainable_weights) == 6
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_k3_bidirectional_statefulness():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    layer = Bidirectional(_const_lstm(2, stateful=True, keras_version=3))
    layer(sequence)
    expected = [[0.26234663, 0.26234663, 0.16959146, 0.16959146], [0.6137073, 0.6137073, 0.5381646, 0.5381646]]
    _close(layer(sequence), expected)
    layer.reset_state()
    layer(sequence)
    _close(layer(sequence), expected)


def test_k3_bidirectional_pass_initial_state():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    initial_state = [np.arange(4).reshape((2, 2)).astype("float32") * k for k in (1, 2, 3, 4)]
    output = Bidirectional(_const_lstm(2))(sequence, initial_state=initial_state)
    _close(output, [[0.20794602, 0.4577124, 0.14046375, 0.48191673], [0.6682636, 0.6711909, 0.60943645, 0.60950446]])


def test_k3_bidirectional_return_state():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    output, h1, c1, h2, c2 = Bidirectional(_const_lstm(2, return_state=True))(sequence)
    _close(output, [[0.1990008, 0.1990008, 0.12659755, 0.12659755], [0.52335435, 0.52335435, 0.44717982, 0.44717982]])
    _close(h1, [[0.1990008] * 2, [0.52335435] * 2])
    _close(c1, [[0.35567185] * 2, [1.0492687] * 2])
    _close(h2, [[0.12659755] * 2, [0.44717982] * 2])
    _close(c2, [[0.2501858] * 2, [0.941473] * 2])


def test_k3_bidirectional_output_shape():
    x = np.array([[[101, 202], [303, 404]]])  # integer inputs: Keras 3 casts them to float
    for merge_mode in ["ave", "concat", "mul", "sum", None]:
        layer = Bidirectional(LSTM(2, return_state=True, keras_version=3), merge_mode=merge_mode)
        output = layer(x)
        output_shape = layer.compute_output_shape(x.shape)
        assert len(output) == len(output_shape)
        for out, shape in zip(output, output_shape):
            assert tuple(out.shape) == shape
    for merge_mode in ["concat", "ave", "mul", "sum"]:
        layer = Bidirectional(LSTM(2, return_state=False, keras_version=3), merge_mode=merge_mode)
        assert tuple(layer(x).shape) == layer.compute_output_shape(x.shape)
    layer = Bidirectional(LSTM(2, return_state=False, keras_version=3), merge_mode=None)
    for out, shape in zip(layer(x), layer.compute_output_shape(x.shape)):
        assert tuple(out.shape) == shape


@pytest.mark.parametrize("use_cudnn", [True, False, "auto"])
def test_k3_bidirectional_keeps_use_cudnn(use_cudnn):
    bidi = Bidirectional(LSTM(1, use_cudnn=use_cudnn, keras_version=3))
    assert bidi.forward_layer.use_cudnn == use_cudnn
    assert bidi.backward_layer.use_cudnn == use_cudnn


def test_k3_bidirectional_fused_lstm_matches_unfused():
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")

    def build(use_cudnn):
        layer = Bidirectional(
            LSTM(
                5,
                use_cudnn=use_cudnn,
                return_sequences=True,
                keras_version=3,
                kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": 1}},
                recurrent_initializer={"class_name": "Orthogonal", "config": {"seed": 2}},
            )
        )
        layer.build(x.shape)
        return layer

    ref, fused = build(False), build("auto")
    fused.set_weights(ref.get_weights())
    _close(ref(x), fused(x))


# --------------------------------------------------------------------------------------------------
# keras/src/layers/rnn/rnn_test.py (shape rules and stateful checks of the RNN base, on LSTM)
# --------------------------------------------------------------------------------------------------
def test_k3_rnn_compute_output_shape():
    sequence_shape = (3, 4, 5)
    assert LSTM(8, keras_version=3).compute_output_shape(sequence_shape) == (3, 8)
    assert LSTM(8, return_sequences=True, keras_version=3).compute_output_shape(sequence_shape) == (3, 4, 8)
    shapes = LSTM(8, return_state=True, keras_version=3).compute_output_shape(sequence_shape)
    assert shapes == ((3, 8), (3, 8), (3, 8))
    shapes = LSTM(8, return_sequences=True, return_state=True, keras_version=3).compute_output_shape(sequence_shape)
    assert shapes == ((3, 4, 8), (3, 8), (3, 8))


def test_k3_rnn_dynamic_shapes():
    sequence_shape = (None, None, 3)
    assert LSTM(8, keras_version=3).compute_output_shape(sequence_shape) == (None, 8)
    assert LSTM(8, return_sequences=True, keras_version=3).compute_output_shape(sequence_shape) == (None, None, 8)
    shapes = LSTM(8, return_sequences=True, return_state=True, keras_version=3).compute_output_shape(sequence_shape)
    assert shapes == ((None, None, 8), (None, 8), (None, 8))


def test_k3_rnn_stateful_batch_size_mismatch_raises():
    layer = LSTM(2, stateful=True, keras_version=3)
    layer(np.random.default_rng(0).random((4, 5, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="batch size"):
        layer(np.random.default_rng(1).random((1, 5, 3)).astype(np.float32))


def test_k3_rnn_masking_unroll_matches_loop():
    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32") / 24
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    for return_sequences in (False, True):
        loop = _const_lstm(2, return_sequences=return_sequences)(sequence, mask=mask)
        unrolled = _const_lstm(2, return_sequences=return_sequences, unroll=True)(sequence, mask=mask)
        _close(unrolled, _np(loop), atol=0)


# --------------------------------------------------------------------------------------------------
# tf_keras/layers/rnn/lstm_test.py
# --------------------------------------------------------------------------------------------------
def test_tk_lstm_could_use_gpu_kernel_arguments_accepted():
    """``test_could_use_defun_backend`` / ``..._with_gpu_kernel``: these argument combinations build and run
    (there is one CPU path; the kernel choice is not observable here)."""
    x = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    for kwargs in (
        {"activation": "relu"},
        {"recurrent_activation": "relu"},
        {"recurrent_dropout": 0.1},
        {"unroll": True},
        {"use_bias": False},
        {"activation": torch.tanh},
        {"recurrent_activation": torch.sigmoid},
    ):
        assert tuple(LSTM(1, **kwargs)(x).shape) == (2, 1)


def test_tk_lstm_static_shape_inference():
    assert LSTM(2, return_sequences=True).compute_output_shape((None, 3, 4)) == (None, 3, 2)


def test_tk_lstm_dynamic_behavior():
    layer = LSTM(2, input_shape=(None, 4))
    assert layer.built
    for timesteps in (3, 7):
        x = np.random.default_rng(timesteps).random((2, timesteps, 4))
        assert tuple(layer(x.astype(np.float32)).shape) == (2, 2)


def test_tk_lstm_stacking():
    inputs = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    first, second = LSTM(10, return_sequences=True), LSTM(5, return_sequences=True)
    out = second(first(inputs))
    assert tuple(out.shape) == (2, 3, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in first.trainable_weights + second.trainable_weights)


@pytest.mark.parametrize("stateful", [False, True])
def test_tk_lstm_from_config(stateful):
    l1 = LSTM(units=1, stateful=stateful)
    l2 = LSTM.from_config(l1.get_config())
    assert l1.get_config() == l2.get_config()


def test_tk_lstm_specify_initial_state():
    """``test_specify_initial_state_keras_tensor`` / ``..._non_keras_tensor``: initial states change the
    output and gradients reach them."""
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 3, 4)).astype(np.float32)
    states = [torch.tensor(rng.random((2, 3)), dtype=torch.float32, requires_grad=True) for _ in range(2)]
    layer = LSTM(3)
    out = layer(inputs, initial_state=states)
    assert tuple(out.shape) == (2, 3)
    assert not np.allclose(_np(out), _np(layer(inputs)))
    out.sum().backward()
    assert all(s.grad is not None for s in states)


def test_tk_lstm_reset_states_with_values():
    num_samples, timesteps, embedding_dim, units = 2, 3, 4, 3
    layer = LSTM(units, stateful=True)
    layer.build((num_samples, timesteps, embedding_dim))
    initial_weight_count = len(layer.weights)
    layer.reset_states()
    assert len(layer.states) == 2
    assert layer.states[0] is not None
    _close(layer.states[0], np.zeros((num_samples, units)), atol=1e-4)
    values = [np.ones((num_samples, units)) for _ in layer.states]
    layer.reset_states(values)
    _close(layer.states[0], np.ones((num_samples, units)), atol=1e-4)
    with pytest.raises(ValueError):
        layer.reset_states([1] * (len(layer.states) + 1))
    assert initial_weight_count == len(layer.weights)
    layer.states = [torch.tensor(v) for v in values]
    layer.reset_states()
    assert initial_weight_count == len(layer.weights)


def test_tk_lstm_specify_state_with_masking():
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 3, 4)).astype(np.float32)
    inputs[0, 2] = 0.0
    mask = np.any(inputs != 0.0, axis=-1)  # what Masking() computes
    states = [rng.random((2, 3)).astype(np.float32) for _ in range(2)]
    out = LSTM(3)(inputs, mask=mask, initial_state=states)
    assert tuple(out.shape) == (2, 3)


def test_tk_lstm_return_state():
    num_samples, timesteps, embedding_dim, units = 2, 3, 4, 3
    inputs = np.random.default_rng(0).random((num_samples, timesteps, embedding_dim)).astype(np.float32)
    mask = np.any(inputs != 0.0, axis=-1)
    layer = LSTM(units, return_state=True, stateful=True, batch_input_shape=(num_samples, timesteps, embedding_dim))
    outputs = layer(inputs, mask=mask)
    state = outputs[1:]
    assert len(state) == 2
    _close(layer.states[0], _np(state[0]), atol=1e-4)


def test_tk_lstm_state_reuse():
    inputs = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    outputs = LSTM(3, return_state=True, return_sequences=True)(inputs)
    output, state = outputs[0], outputs[1:]
    assert tuple(LSTM(3)(output, initial_state=state).shape) == (2, 3)


def test_tk_lstm_initial_states_as_other_inputs():
    rng = np.random.default_rng(0)
    main_inputs = rng.random((2, 3, 4)).astype(np.float32)
    initial_state = [rng.random((2, 3)).astype(np.float32) for _ in range(2)]
    layer = LSTM(3)
    output = layer([main_inputs] + initial_state)
    _close(output, _np(layer(main_inputs, initial_state=initial_state)), atol=0)
    assert not np.allclose(_np(output), _np(layer(main_inputs)))


@pytest.mark.parametrize("implementation_mode", [0, 1, 2])
def test_tk_lstm_implementation_mode(implementation_mode):
    with pytest.warns(UserWarning, match="implementation=0") if implementation_mode == 0 else _no_warning():
        layer = LSTM(2, implementation=implementation_mode)
    _layer_test(layer, (2, 3, 4), (2, 2))
    k_constraint, r_constraint, b_constraint = (constraints.max_norm(0.01) for _ in range(3))
    layer = LSTM(
        5,
        return_sequences=False,
        weights=None,
        input_shape=(None, 4),
        kernel_constraint=k_constraint,
        recurrent_constraint=r_constraint,
        bias_constraint=b_constraint,
    )
    layer.build((None, None, 4))
    assert layer.cell.kernel_constraint is k_constraint
    assert layer.cell.recurrent_constraint is r_constraint
    assert layer.cell.bias_constraint is b_constraint


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_tk_lstm_masking_with_stacking():
    inputs = np.random.default_rng(0).random((2, 3, 4)).astype(np.float32)
    inputs[1, 2] = 0.0
    mask = np.any(inputs != 0.0, axis=-1)
    y = LSTM(5, return_sequences=True)(LSTM(10, return_sequences=True)(inputs, mask=mask), mask=mask)
    assert tuple(y.shape) == (2, 3, 5)


@pytest.mark.parametrize("use_bias,bias_initializer", [(True, "zeros"), (False, "zeros"), (True, "random_uniform")])
def test_tk_lstm_model_save_load(tmp_path, use_bias, bias_initializer):
    import lstm_bridge

    x = np.random.default_rng(0).random((10, 3, 5)).astype(np.float32)
    layer = LSTM(2, use_bias=use_bias, bias_initializer=bias_initializer)
    y_ref = layer(x)
    path = tmp_path / "test.h5"
    lstm_bridge.save(layer, str(path))
    loaded = lstm_bridge.load(str(path))
    entry = loaded.layers[0] if hasattr(loaded, "layers") else loaded
    restored = LSTM.from_config(layer.get_config())
    restored.set_weights(layer.get_weights())
    _close(restored(x), _np(y_ref))
    assert entry is not None


def test_tk_lstm_return_sequences():
    _layer_test(LSTM(2, return_sequences=True), (2, 3, 4), (2, 3, 2))


def test_tk_lstm_float64():
    layer = LSTM(2, return_sequences=True, dtype="float64")
    y = _layer_test(layer, (2, 3, 4), (2, 3, 2), input_dtype=np.float64)
    assert y.dtype == torch.float64 and layer.cell.kernel.dtype == torch.float64


def test_tk_lstm_regularizers():
    layer = LSTM(
        5,
        return_sequences=False,
        weights=None,
        input_shape=(None, 4),
        kernel_regularizer=regularizers.l1(0.01),
        recurrent_regularizer=regularizers.l1(0.01),
        bias_regularizer="l2",
        activity_regularizer="l1",
    )
    layer.build((None, None, 2))
    assert len(layer.losses) == 3
    layer(np.ones((2, 3, 2), np.float32))
    assert len(layer.losses) == 4


def _embed(ids: np.ndarray) -> tuple:
    """What ``Embedding(4, 4, mask_zero=True)`` feeds the LSTM in tf_keras's statefulness test, with a fixed
    embedding table: the vectors and the mask ``ids != 0``."""
    table = np.linspace(-1.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    return table[ids.astype(int)], ids != 0


def test_tk_lstm_statefulness():
    num_samples, timesteps, units = 2, 3, 2
    layer = LSTM(units, return_sequences=False, stateful=True, weights=None)
    ones = np.ones((num_samples, timesteps))
    out1 = _np(layer(*_embed(ones)))
    assert out1.shape == (num_samples, units)
    out2 = _np(layer(*_embed(ones)))  # the states carried on
    assert out1.max() != out2.max()
    layer.reset_states()
    out3 = _np(layer(*_embed(ones)))
    assert out2.max() != out3.max()
    layer.reset_states()
    out4 = _np(layer(*_embed(ones)))
    _close(out3, out4)
    out5 = _np(layer(*_embed(ones)))
    assert out4.max() != out5.max()
    # masking: left, right and mixed padding leave the same final output from zero states
    layer.reset_states()
    left = np.ones((num_samples, timesteps))
    left[0, :1] = 0
    left[1, :2] = 0
    out6 = _np(layer(*_embed(left)))
    layer.reset_states()
    right = np.ones((num_samples, timesteps))
    right[0, -1:] = 0
    right[1, -2:] = 0
    out7 = _np(layer(*_embed(right)))
    layer.reset_states()
    mixed = np.ones((num_samples, timesteps))
    mixed[0, 1] = 0
    mixed[1, 0] = 0
    mixed[1, 2] = 0
    out8 = _np(layer(*_embed(mixed)))
    _close(out7, out6)
    _close(out8, out7)


def test_tk_lstm_stateful_training():
    rng = np.random.default_rng(0)
    x = rng.random((8, 12, 10)).astype(np.float32)
    layer = LSTM(5, return_sequences=True, stateful=True)
    opt = torch.optim.Adam(layer.parameters() if list(layer.parameters()) else [torch.zeros(1)], lr=0.01)
    for _ in range(2):
        out = layer(x)
        opt = torch.optim.Adam(layer.trainable_weights, lr=0.01)
        out.square().mean().backward()
        opt.step()
        opt.zero_grad()
    assert tuple(layer.states[0].shape) == (8, 5)


def test_tk_lstm_dropout():
    _layer_test(LSTM(2, dropout=0.1, recurrent_dropout=0.1), (2, 3, 4), (2, 2))


def test_tk_lstm_bidirectional_stack():
    rng = np.random.default_rng(0)
    x = rng.random((4, 20, 16)).astype(np.float32)
    y = Bidirectional(LSTM(8))(Bidirectional(LSTM(16, return_sequences=True))(x))
    assert tuple(y.shape) == (4, 16)


@pytest.mark.parametrize("layer_class", [LSTM, v1.LSTM])
def test_tk_lstm_explicit_device_with_go_backward_and_mask(layer_class):
    """Also ``lstm_v1_test.test_explicit_device_with_go_backward_and_mask_v1``."""
    batch_size, timestep, masksteps, units = 8, 7, 5, 4
    inputs = np.random.default_rng(0).standard_normal((batch_size, timestep, units)).astype(np.float32)
    mask = np.ones((batch_size, timestep)).astype(bool)
    mask[:, masksteps:] = 0
    layer = layer_class(units, return_sequences=True, go_backwards=True)
    outputs_masked = layer(inputs, mask=torch.tensor(mask))
    outputs_trimmed = layer(inputs[:, :masksteps])
    _close(outputs_masked[:, -masksteps:], _np(outputs_trimmed))


def test_tk_lstm_with_fully_masked_inputs():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, size=(8, 5))
    ids[0, :] = 0
    x, mask = _embed(ids)
    out = LSTM(2)(x, mask=mask)
    assert tuple(out.shape) == (8, 2)
    _close(out[0], np.zeros(2), atol=0)  # a fully masked row outputs 0


def test_tk_lstm_deepcopy():
    original = LSTM(5)
    copied = copy.deepcopy(original)
    assert copied.units == 5
    assert original.get_config() == original.get_config()
    inputs = np.random.default_rng(0).normal(size=[32, 10, 8]).astype(np.float32)
    original = LSTM(4)
    copied = copy.deepcopy(original)  # copied before building: fresh weights
    assert not np.allclose(_np(original(inputs)), _np(copied(inputs)))
    original = LSTM(4)
    outputs = original(inputs)
    copied = copy.deepcopy(original)  # copied after building: the same weights
    _close(copied(inputs), _np(outputs))


def test_tk_lstm_recurrent_dropout_with_implementation_restriction():
    layer = LSTM(2, recurrent_dropout=0.1, implementation=2)
    assert layer.implementation == 1


def test_tk_lstm_deep_copy_cell():
    cell = LSTMCell(5)
    copied = copy.deepcopy(cell)
    assert copied.units == 5
    assert cell.get_config() == copied.get_config()


def test_tk_lstm_cloned_weight_names():
    layer = LSTM(units=3)
    layer.build((None, None, 3))
    clone = LSTM.from_config(layer.get_config())
    clone.build((None, None, 3))
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in clone.named_parameters()]


# --------------------------------------------------------------------------------------------------
# tf_keras/layers/rnn/lstm_v1_test.py
# --------------------------------------------------------------------------------------------------
def test_tk_lstm_v1_feature_parity_v1_v2():
    rng = np.random.default_rng(87654321)
    x = rng.random((20, 4, 10)).astype(np.float32)
    x[-2:, -1, :] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    old = v1.LSTM(8, recurrent_activation="sigmoid")
    y_1 = old(x, mask=mask)
    new = LSTM(8)
    new.set_weights(old.get_weights())
    _close(new(x, mask=mask), _np(y_1), atol=2e-5)


@pytest.mark.parametrize("time_major,go_backwards", [(False, False), (True, False), (False, True), (True, True)])
def test_tk_lstm_v1_time_major_and_go_backward_v1_v2(time_major, go_backwards):
    x = np.random.default_rng(0).random((100, 4, 10)).astype(np.float32)

    def run(layer):
        if time_major:
            return _np(layer(x.transpose(1, 0, 2))).transpose(1, 0, 2)
        return _np(layer(x))

    kwargs = dict(
        recurrent_activation="sigmoid", time_major=time_major, return_sequences=True, go_backwards=go_backwards
    )
    old = v1.LSTM(8, **kwargs)
    y_ref = run(old)
    new = LSTM(8, **kwargs)
    new.set_weights(old.get_weights())
    _close(run(new), y_ref)


# --------------------------------------------------------------------------------------------------
# tf_keras/layers/rnn/bidirectional_test.py (the LSTM cases)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sum", "concat", "ave", "mul"])
def test_tk_bidirectional(mode):
    x = np.random.default_rng(0).random((2, 2, 2)).astype(np.float32)
    layer = Bidirectional(LSTM(2), merge_mode=mode, input_shape=(2, 2))
    out = layer(x)
    assert list(layer.compute_output_shape((None, 2, 2))) == [None, 4 if mode == "concat" else 2]
    assert tuple(out.shape) == (2, 4 if mode == "concat" else 2)
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_tk_bidirectional_invalid_init():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="Please initialize `Bidirectional` layer with a"):
        Bidirectional(x)


def test_tk_bidirectional_weight_loading():
    x = np.random.default_rng(0).random((2, 2, 2)).astype(np.float32)
    layer = Bidirectional(LSTM(2), input_shape=(2, 2))
    y_ref = _np(layer(x))
    layer.set_weights(layer.get_weights())
    _close(layer(x), y_ref)


def test_tk_bidirectional_stacked():
    x = np.random.default_rng(0).random((2, 2, 2)).astype(np.float32)
    first = Bidirectional(LSTM(2, return_sequences=True), merge_mode="sum", input_shape=(2, 2))
    second = Bidirectional(LSTM(2), merge_mode="sum")
    assert tuple(second(first(x)).shape) == (2, 2)


def test_tk_bidirectional_statefulness():
    x = np.random.default_rng(0).random((1, 2, 2)).astype(np.float32)
    bidi = Bidirectional(LSTM(2, stateful=True), merge_mode="sum", batch_input_shape=(1, 2, 2))
    assert bidi.stateful
    y_1 = _np(bidi(x))
    bidi.reset_states()
    y_2 = _np(bidi(x))
    _close(y_1, y_2)


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", "concat", None])
def test_tk_bidirectional_merged_value(merge_mode):
    x = np.random.default_rng(0).random((2, 3, 5)).astype(np.float32)
    merge = {
        "sum": lambda y, r: [y + r],
        "mul": lambda y, r: [y * r],
        "ave": lambda y, r: [(y + r) / 2],
        "concat": lambda y, r: [np.concatenate((y, r), axis=-1)],
        None: lambda y, r: [y, r],
    }[merge_mode]
    layer = Bidirectional(LSTM(3, return_sequences=True), merge_mode=merge_mode)
    y_merged = layer(x)
    y_merged = list(y_merged) if isinstance(y_merged, (list, tuple)) else [y_merged]
    y_expected = merge(_np(layer.forward_layer(x)), _np(layer.backward_layer(x))[:, ::-1])
    assert len(y_merged) == len(y_expected)
    for a, b in zip(y_merged, y_expected):
        _close(a, b)
    # return_state
    layer = Bidirectional(LSTM(3, return_state=True), merge_mode=merge_mode)
    y_merged = layer(x)
    y_forward, y_backward = layer.forward_layer(x), layer.backward_layer(x)
    y_expected = merge(_np(y_forward[0]), _np(y_backward[0]))
    n_states = len(layer.layer.states)
    assert len(y_merged) == len(y_expected) + n_states * 2
    for a, b in zip(y_merged, y_expected):
        _close(a, b)
    for state_birnn, state_inner in zip(
        y_merged[-n_states * 2 :], list(y_forward[-n_states:]) + list(y_backward[-n_states:])
    ):
        _close(state_birnn, _np(state_inner))


@pytest.mark.parametrize("time_major", [True, False])
def test_tk_bidirectional_with_time_major_input(time_major):
    rng = np.random.default_rng(0)
    inputs = rng.random((2, 3, 1)).astype(np.float32)
    mask = np.array([[1, 0, 0], [1, 1, 0]], np.float32)  # sequence_mask([1, 2], 3)
    ref = Bidirectional(
        LSTM(2, return_sequences=True), backward_layer=LSTM(2, return_sequences=True, go_backwards=True)
    )
    ref.build((None, 3, 1))
    layer = Bidirectional(
        LSTM(2, time_major=time_major, return_sequences=True),
        backward_layer=LSTM(2, time_major=time_major, return_sequences=True, go_backwards=True),
    )
    layer.set_weights(ref.get_weights())
    expected = _np(ref(inputs, mask=mask))
    if time_major:
        out = _np(layer(inputs.transpose(1, 0, 2), mask=mask.T)).transpose(1, 0, 2)
    else:
        out = _np(layer(inputs, mask=mask))
    _close(out, expected)
    assert np.all(out[0, 1:] == 0) and np.all(out[1, 2:] == 0)  # masked positions are 0 in both halves


def test_tk_bidirectional_dropout():
    x = np.random.default_rng(0).random((2, 3, 5)).astype(np.float32)
    wrapped = Bidirectional(LSTM(3, dropout=0.2, recurrent_dropout=0.2), merge_mode="sum")
    assert tuple(wrapped(x, training=True).shape) == (2, 3)
    wrapped = Bidirectional(LSTM(3, dropout=0.2, return_state=True), merge_mode="sum")
    y1, y2 = wrapped(x), wrapped(x)  # inference: no dropout, deterministic
    for a, b in zip(y1, y2):
        _close(a, _np(b))


def test_tk_bidirectional_state_reuse():
    rng = np.random.default_rng(0)
    input1 = rng.random((2, 3, 5)).astype(np.float32)
    state = Bidirectional(LSTM(3, return_state=True, return_sequences=True))(input1)[1:]
    input2 = rng.random((2, 3, 5)).astype(np.float32)
    with pytest.raises(ValueError):
        Bidirectional(LSTM(3))(input2, initial_state=state[0])
    assert tuple(Bidirectional(LSTM(3))(input2, initial_state=state).shape) == (2, 6)


def test_tk_bidirectional_trainable():
    layer = Bidirectional(LSTM(3))
    layer(np.zeros((1, 3, 2), np.float32))
    assert len(layer.trainable_weights) == 6
    layer.trainable = False
    assert not layer.trainable_weights
    assert not any(p.requires_grad for p in layer.weights)
    layer.trainable = True
    assert len(layer.trainable_weights) == 6


def test_tk_bidirectional_losses():
    layer = Bidirectional(LSTM(3, kernel_regularizer="l1", bias_regularizer="l1", activity_regularizer="l1"))
    layer(np.random.default_rng(0).random((2, 3, 2)).astype(np.float32))
    assert len(layer.losses) == 6


def test_tk_bidirectional_output_shape():
    input_shape = [None, 2, 1]
    assert list(Bidirectional(LSTM(3)).compute_output_shape(input_shape)) == [None, 6]
    shapes = Bidirectional(LSTM(3, return_state=True)).compute_output_shape(input_shape)
    assert len(shapes) == 5 and list(shapes[0]) == [None, 6]
    assert all(list(s) == [None, 3] for s in shapes[1:])
    shapes = Bidirectional(LSTM(3, return_state=True), merge_mode=None).compute_output_shape(input_shape)
    assert len(shapes) == 6 and all(list(s) == [None, 3] for s in shapes)


def test_tk_bidirectional_last_output_with_masking():
    x = np.random.default_rng(0).random((2, 3, 5)).astype(np.float32)
    x[0, 2] = 0
    mask = np.any(x != 0, axis=-1)
    y = Bidirectional(LSTM(3, return_state=True))(x, mask=mask, training=True)
    assert len(y) == 5 and tuple(y[0].shape) == (2, 6)
    _close(y[0], np.concatenate([_np(y[1]), _np(y[3])], axis=1))


def test_tk_bidirectional_sequence_output_with_masking():
    x = np.random.default_rng(0).random((2, 3, 5)).astype(np.float32)
    x[0, 2] = 0
    mask = np.any(x != 0, axis=-1)
    y = Bidirectional(LSTM(3, return_sequences=True))(x, mask=mask, training=True)
    assert tuple(y.shape) == (2, 3, 6)
    _close(y[0, 2], np.zeros(6), atol=0)


@pytest.mark.parametrize("mode", ["sum", "concat"])
def test_tk_bidirectional_custom_backward_layer(mode):
    x = np.random.default_rng(0).random((2, 2, 2)).astype(np.float32)
    layer = Bidirectional(LSTM(2), merge_mode=mode, backward_layer=LSTM(2, go_backwards=True), input_shape=(2, 2))
    out = layer(x)
    assert tuple(out.shape) == tuple(layer.compute_output_shape((2, 2, 2)))
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_tk_bidirectional_custom_backward_layer_error_check():
    forward_layer, backward_layer = LSTM(2), LSTM(2)
    with pytest.raises(ValueError, match="should have different `go_backwards` value."):
        Bidirectional(forward_layer, merge_mode="concat", backward_layer=backward_layer)
    for attr in ("stateful", "return_sequences", "return_state"):
        backward_layer = LSTM(2, go_backwards=True, **{attr: True})
        with pytest.raises(ValueError, match='expected to have the same value for attribute "' + attr):
            Bidirectional(forward_layer, merge_mode="concat", backward_layer=backward_layer)


def test_tk_bidirectional_custom_backward_layer_serialization():
    layer = Bidirectional(LSTM(2), merge_mode="concat", backward_layer=LSTM(2, go_backwards=True))
    config = layer.get_config()
    assert Bidirectional.from_config(config).get_config() == config


def test_tk_bidirectional_rnn_layer_name():
    layer = Bidirectional(LSTM(2, name="rnn"))
    config = layer.get_config()
    assert config["layer"]["config"]["name"] == "rnn"
    restored = Bidirectional.from_config(config)
    assert restored.forward_layer.name == "forward_rnn"
    assert restored.backward_layer.name == "backward_rnn"


def test_tk_bidirectional_custom_backward_rnn_layer_name():
    forward_layer, backward_layer = LSTM(2), LSTM(2, go_backwards=True)
    layer = Bidirectional(forward_layer, merge_mode="concat", backward_layer=backward_layer)
    config = layer.get_config()
    assert config["layer"]["config"]["name"] == forward_layer.name
    assert config["backward_layer"]["config"]["name"] == backward_layer.name
    restored = Bidirectional.from_config(config)
    assert restored.forward_layer.name == "forward_" + forward_layer.name
    assert restored.backward_layer.name == "backward_" + backward_layer.name


def test_tk_bidirectional_full_input_spec():
    """A stateful Bidirectional with initial states: the stored states take over after the first call
    (tf_keras's rule), and reset_states() gives the first call's output again."""
    bidi = Bidirectional(LSTM(1, stateful=True))
    x, ones = np.ones((1, 1, 1), np.float32), [np.ones((1, 1), np.float32)] * 4
    output1 = _np(bidi(x, initial_state=ones))
    output2 = _np(bidi(x, initial_state=ones))
    bidi.reset_states()
    output3 = _np(bidi(x, initial_state=ones))
    _close(output1, output3)
    assert not np.allclose(output1, output2)


def test_tk_bidirectional_reset_states():
    ref_state = np.random.default_rng(0).random((1, 3)).astype(np.float32)
    stateful = Bidirectional(LSTM(3, stateful=True), batch_input_shape=(1, 2, 3))
    stateless = Bidirectional(LSTM(3, stateful=False))
    x = np.zeros((1, 2, 3), np.float32)
    stateless(x)
    stateful(x)
    with pytest.raises(AttributeError, match="Layer must be stateful."):
        stateless.reset_states()
    with pytest.raises(AttributeError, match="Layer must be stateful."):
        stateless.reset_states([])
    stateful.reset_states()
    stateful.reset_states([ref_state] * 4)
    with pytest.raises(ValueError, match="Unrecognized value for `states`. Expected `states` to be list or tuple"):
        stateful.reset_states({})


@pytest.mark.parametrize(
    "fwd_trainable,bwd_trainable,kwargs",
    [
        (True, None, {}),
        (False, None, {}),
        (True, False, {}),
        (False, True, {}),
        (True, True, {}),
        (False, False, {}),
        (False, None, {"trainable": True}),
        (False, None, {"trainable": False}),
    ],
)
def test_tk_bidirectional_trainable_parameter_argument(fwd_trainable, bwd_trainable, kwargs):
    fwd = LSTM(3)
    fwd.trainable = fwd_trainable
    bwd = None
    if bwd_trainable is not None:
        bwd = LSTM(3, go_backwards=True)
        bwd.trainable = bwd_trainable
    bid = Bidirectional(fwd, backward_layer=bwd, **kwargs)
    assert bid.trainable == kwargs.get("trainable", fwd_trainable)
    clone = Bidirectional.from_config(bid.get_config())
    assert clone.get_config() == bid.get_config()


# --------------------------------------------------------------------------------------------------
# Not ported (no counterpart in a layer library on PyTorch):
#  Keras 3: run_layer_test's masking/seed-generator bookkeeping, test_fused_lstm_eligibility (private
#    _can_attempt_fused_lstm), the GRU/SimpleRNN-only cases (test_correctness / test_masking of
#    bidirectional_test use SimpleRNN/GRU numbers), rnn_test's custom-cell forward passes.
#  tf_keras: LSTMGraphRewriteTest's grappler runtime selection (return_runtime, GPU/CPU kernel choice),
#    test_lstm_output_on_multiple_kernel (GPU), test_v1_session_behavior (TF1 graph sessions),
#    test_dropout_variable_name (TF variable names), Model/Sequential fit loops beyond what is ported above,
#    Bidirectional with constants / custom cells / ragged inputs / updates (graph mode).
# --------------------------------------------------------------------------------------------------
