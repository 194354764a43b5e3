"""lstm_bridge.keras: contract behaviour (weights, config, states, dropout, regularizers, errors)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_bridge import activations
from lstm_bridge.keras import LSTM, Bidirectional, LSTMCell, constraints, v1
from helpers import keras_weights, max_abs


def _torch_lstm_from_keras(weights, input_dim, units, bidirectional=False):
    ref = torch.nn.LSTM(input_dim, units, batch_first=True, bidirectional=bidirectional)
    state = {}
    for suffix, (k, r, b) in zip(["_l0", "_l0_reverse"], [weights[i:i + 3] for i in range(0, len(weights), 3)]):
        state["weight_ih" + suffix] = torch.tensor(k.T)
        state["weight_hh" + suffix] = torch.tensor(r.T)
        state["bias_ih" + suffix] = torch.tensor(b)
        state["bias_hh" + suffix] = torch.zeros(4 * units)
    ref.load_state_dict(state)
    return ref


def _layer(units, weights, **kwargs):
    layer = LSTM(units, **kwargs)
    layer.set_weights(weights)
    return layer


def test_matches_torch_nn_lstm_with_the_seed_mapping(rng):
    w = keras_weights(rng, 3, 5)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    out, h, c = _layer(5, w, return_sequences=True, return_state=True)(x)
    ref_out, (ref_h, ref_c) = _torch_lstm_from_keras(w, 3, 5)(torch.tensor(x))
    assert max_abs(out, ref_out) < 1e-6
    assert max_abs(h, ref_h[0]) < 1e-6 and max_abs(c, ref_c[0]) < 1e-6


def test_weights_are_keras_shaped_parameters_in_keras_order(rng):
    layer = LSTM(4)
    layer.build((None, 6, 3))
    shapes = [tuple(p.shape) for p in layer.trainable_weights]
    assert shapes == [(3, 16), (4, 16), (16,)]
    assert all(isinstance(p, torch.nn.Parameter) for p in layer.trainable_weights)
    assert [w.shape for w in layer.get_weights()] == [(3, 16), (4, 16), (16,)]
    no_bias = LSTM(4, use_bias=False)
    no_bias.build((None, 6, 3))
    assert len(no_bias.get_weights()) == 2


def test_unit_forget_bias_sets_the_forget_block_to_one():
    layer = LSTM(3)
    layer.build((None, 2, 2))
    np.testing.assert_array_equal(layer.get_weights()[2], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    ones = LSTM(3, bias_initializer="ones")
    ones.build((None, 2, 2))
    np.testing.assert_array_equal(ones.get_weights()[2], np.ones(12))  # set, not incremented


def test_default_initializers_are_glorot_and_orthogonal():
    layer = LSTM(8, seed=3)
    layer.build((None, 2, 5))
    k, r, _ = layer.get_weights()
    assert np.abs(k).max() <= np.sqrt(6 / (5 + 32)) + 1e-7
    np.testing.assert_allclose(r @ r.T, np.eye(8), atol=1e-5)  # orthonormal rows


def test_lazy_build_fixes_the_feature_size(rng):
    layer = LSTM(2)
    layer(rng.standard_normal((1, 3, 4)).astype(np.float32))
    with pytest.raises(ValueError, match="expected last dimension 4, received 5"):
        layer(rng.standard_normal((1, 3, 5)).astype(np.float32))


def test_go_backwards_is_a_forward_lstm_on_the_reversed_input_not_flipped_back(rng):
    w = keras_weights(rng, 3, 4)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    back = _layer(4, w, return_sequences=True, go_backwards=True)(x)
    fwd = _layer(4, w, return_sequences=True)(x[:, ::-1].copy())
    assert max_abs(back, fwd) < 1e-6


def test_time_major_transposes_inputs_outputs_and_mask(rng):
    w = keras_weights(rng, 3, 4)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 1, 1]], bool)
    batch = _layer(4, w, return_sequences=True)(x, mask=mask)
    time = _layer(4, w, return_sequences=True, time_major=True)(x.transpose(1, 0, 2).copy(), mask=mask.T.copy())
    assert max_abs(batch, time.transpose(0, 1)) == 0.0


def test_mask_rules_repeat_previous_output_and_freeze_state(rng):
    w = keras_weights(rng, 2, 3)
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    h0 = rng.standard_normal((4, 3)).astype(np.float32)
    c0 = rng.standard_normal((4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]], bool)
    layer = _layer(3, w, return_sequences=True, return_state=True)
    out, h, c = layer(x, mask=mask, initial_state=[h0, c0])
    out = out.detach().numpy()
    assert np.array_equal(out[0, 3], out[0, 2]) and np.array_equal(out[0, 4], out[0, 2])  # right padding repeats
    assert np.all(out[1, :2] == 0)  # left padding: zeros, not h0
    assert np.array_equal(out[2, 1], out[2, 0]) and np.array_equal(out[2, 3], out[2, 2])  # holes repeat
    assert np.all(out[3] == 0)  # fully masked row: outputs 0 ...
    assert max_abs(h[3], h0[3]) == 0 and max_abs(c[3], c0[3]) == 0  # ... and the state stays the initial one
    assert max_abs(h[0], out[0, 2]) == 0
    zero = _layer(3, w, return_sequences=True, zero_output_for_mask=True)(x, mask=mask, initial_state=[h0, c0])
    assert np.all(zero.detach().numpy()[~mask] == 0)
    assert max_abs(zero.detach().numpy()[mask], out[mask]) == 0


def test_float_and_bool_masks_are_equivalent(rng):
    w = keras_weights(rng, 2, 3)
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    mask = np.array([[1, 0, 1, 1], [1, 1, 0, 0]])
    layer = _layer(3, w, return_sequences=True)
    assert max_abs(layer(x, mask=mask.astype(bool)), layer(x, mask=mask.astype(np.float32))) == 0


def test_stateful_carries_state_across_calls_and_resets(rng):
    w = keras_weights(rng, 3, 4)
    x = rng.standard_normal((2, 8, 3)).astype(np.float32)
    whole = _layer(4, w, return_sequences=True)(x)
    layer = _layer(4, w, return_sequences=True, stateful=True)
    first, second = layer(x[:, :4]), layer(x[:, 4:])
    assert max_abs(torch.cat([first, second], 1), whole) < 1e-6
    layer.reset_states()
    assert max_abs(layer(x[:, :4]), first) == 0
    h = rng.standard_normal((2, 4)).astype(np.float32)
    layer.reset_states([h, h])
    assert max_abs(layer.states[0], h) == 0
    with pytest.raises(ValueError, match="batch size"):
        layer(x[:1, :4])


def test_initial_state_overrides_and_is_checked(rng):
    layer = _layer(4, keras_weights(rng, 3, 4))
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    assert max_abs(layer(x, initial_state=[h0, h0]), layer(x)) > 1e-3
    with pytest.raises(ValueError, match=r"\[h, c\]"):
        layer(x, initial_state=h0)
    with pytest.raises(ValueError, match=r"\(2, 4\).*received \(3, 4\)"):
        layer(x, initial_state=[np.zeros((3, 4), np.float32), h0])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 3), np.float32), "expected ndim=3"),
    (np.zeros((2, 3, 3), np.int64), "floating dtype"),
    ("text", "torch.Tensor or numpy.ndarray"),
])
def test_bad_inputs_raise_clear_errors(bad, message):
    layer = LSTM(2)
    with pytest.raises((ValueError, TypeError), match=message):
        layer(bad)


def test_bad_mask_and_weights_raise_clear_errors(rng):
    layer = _layer(4, keras_weights(rng, 3, 4))
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 5\)"):
        layer(x, mask=np.ones((5, 2), bool))
    with pytest.raises(ValueError, match=r"recurrent_kernel .* must have shape \(4, 16\); received \(4, 12\)"):
        layer.set_weights([np.zeros((3, 16)), np.zeros((4, 12)), np.zeros(16)])
    with pytest.raises(ValueError, match="expects 3 weights"):
        layer.set_weights([np.zeros((3, 16))])
    with pytest.raises(TypeError, match="Keyword argument not understood: 'bogus'"):  # tf_keras's wording
        LSTM(4, bogus=1)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to LSTM"):  # Keras 3's
        LSTM(4, bogus=1, keras_version=3)
    with pytest.raises(ValueError, match="dropout must be in"):
        LSTM(4, dropout=1.0)


def test_config_round_trip_rebuilds_an_identical_layer(rng):
    layer = LSTM(4, activation="relu", recurrent_activation="hard_sigmoid", use_bias=True,
                 kernel_regularizer="l2", activity_regularizer={"class_name": "L1", "config": {"l1": 0.5}},
                 kernel_constraint=constraints.max_norm(2.0), dropout=0.1, recurrent_dropout=0.2,
                 return_sequences=True, go_backwards=True, stateful=False, unroll=True, time_major=False,
                 seed=7, zero_output_for_mask=True, name="enc")
    config = layer.get_config()
    clone = LSTM.from_config(config)
    assert clone.get_config() == config
    assert clone.cell.recurrent_activation is activations.hard_sigmoid_keras2
    import inspect
    params = set(inspect.signature(LSTM.__init__).parameters) - {"self", "units", "kwargs"}
    assert params <= set(config)  # every constructor argument is in the config
    w = keras_weights(rng, 3, 4)
    layer.set_weights(w)
    clone.set_weights(w)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    assert max_abs(layer(x), clone(x)) == 0


def test_keras3_config_means_the_keras3_hard_sigmoid():
    k3 = {"name": "lstm", "trainable": True, "dtype": {"module": "keras", "class_name": "DTypePolicy",
                                                      "config": {"name": "float32"}},
          "units": 3, "activation": "tanh", "recurrent_activation": "hard_sigmoid",
          "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                 "config": {"seed": None}}, "seed": None}
    assert LSTM.from_config(k3).cell.recurrent_activation is activations.hard_sigmoid_keras3
    k2 = dict(k3, dtype="float32", kernel_initializer="glorot_uniform", time_major=False)
    assert LSTM.from_config(k2).cell.recurrent_activation is activations.hard_sigmoid_keras2


def test_hard_sigmoids_match_the_measured_keras_values():
    x = torch.tensor([-3, -2.9, -2.5, -2.4, -1, 0, 1, 2.4, 2.5, 2.9, 3], dtype=torch.float32)
    k2 = [0, 0, 0, 0.01999998, 0.3, 0.5, 0.7, 0.98, 1, 1, 1]
    k3 = [0, 0.01666665, 0.08333334, 0.09999999, 0.33333334, 0.5, 0.6666667, 0.90000004, 0.9166667,
          0.98333335, 1]
    np.testing.assert_allclose(activations.hard_sigmoid_keras2(x).numpy(), k2, atol=1e-7)
    np.testing.assert_allclose(activations.hard_sigmoid_keras3(x).numpy(), k3, atol=1e-7)
    assert torch.equal(activations.hard_sigmoid_keras3(x), torch.nn.functional.hardsigmoid(x))


def test_regularizer_losses_and_activity_regularizer(rng):
    w = keras_weights(rng, 3, 4)
    layer = _layer(4, w, kernel_regularizer="l2", recurrent_regularizer={"class_name": "L1", "config": {"l1": 0.1}},
                   activity_regularizer="l2", return_state=True)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out, h, c = layer(x)
    losses = [float(v.detach()) for v in layer.losses]
    expected = [0.01 * float((w[0].astype(np.float64) ** 2).sum()), 0.1 * float(np.abs(w[1]).sum())]
    expected += [0.01 * float((t.detach().double() ** 2).sum()) / 2 for t in (out, h, c)]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    sum(layer.losses).backward()
    assert layer.trainable_weights[0].grad is not None


def test_apply_constraints_projects_like_keras_max_norm(rng):
    layer = _layer(4, [v * 10 for v in keras_weights(rng, 3, 4)], kernel_constraint=constraints.max_norm(1.0))
    before = layer.get_weights()[0]
    y_before = layer(np.ones((1, 2, 3), np.float32))
    assert max_abs(y_before, layer(np.ones((1, 2, 3), np.float32))) == 0  # never in the forward pass
    layer.apply_constraints()
    after = layer.get_weights()[0]
    norms = np.sqrt((before.astype(np.float64) ** 2).sum(0))
    np.testing.assert_allclose(after, before * (np.minimum(norms, 1.0) / (1e-7 + norms)), rtol=1e-5)
    assert np.sqrt((after ** 2).sum(0)).max() <= 1.0 + 1e-5


def test_dropout_only_in_training_with_masks_reused_over_time(rng):
    w = keras_weights(rng, 3, 4)
    x = rng.standard_normal((64, 5, 3)).astype(np.float32)
    layer = _layer(4, w, dropout=0.5, recurrent_dropout=0.3, seed=0, return_sequences=True)
    eval_out = layer(x)
    assert max_abs(layer(x, training=False), eval_out) == 0
    assert max_abs(layer(x, training=True), eval_out) > 1e-3
    layer.train()
    assert max_abs(layer(x), eval_out) > 1e-3
    # implementation 1 (forced by recurrent_dropout): one mask per gate, values 0 or 1/(1-rate)
    masks = layer.cell.dropout_masks(2000, torch.zeros(1), True)
    assert tuple(masks.inputs.shape) == (4, 2000, 3) and tuple(masks.recurrent.shape) == (4, 2000, 4)
    assert set(np.unique(masks.inputs.numpy())) == {0.0, 2.0}
    assert abs(float(masks.inputs.mean()) - 1.0) < 0.05 and abs(float((masks.recurrent == 0).float().mean()) - 0.3) < 0.03
    single = LSTM(4, dropout=0.2)
    single.build((None, 5, 3))
    assert tuple(single.cell.dropout_masks(8, torch.zeros(1), True).inputs.shape) == (1, 8, 3)


def test_dropout_masks_are_constant_over_time():
    # Input dropout with an identity-like kernel: a dropped feature is dropped at every step.
    layer = LSTM(1, dropout=0.5, seed=1, use_bias=False, return_sequences=True)
    k = np.zeros((2, 4), np.float32)
    k[0, :] = 5.0  # only feature 0 drives the cell
    layer.set_weights([k, np.zeros((1, 4), np.float32)])
    x = np.ones((200, 6, 2), np.float32)
    out = layer(x, training=True).detach().numpy()[..., 0]
    dropped = np.abs(out) < 1e-6
    assert np.all(dropped.all(1) | (~dropped).all(1))  # each row: all steps dropped or none
    assert 0.3 < dropped.all(1).mean() < 0.7


def test_lstm_cell_matches_one_step_of_the_layer(rng):
    w = keras_weights(rng, 3, 4)
    cell = LSTMCell(4)
    cell.set_weights(w)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    c0 = rng.standard_normal((2, 4)).astype(np.float32)
    h, (h2, c) = cell(x, [h0, c0])
    _, lh, lc = _layer(4, w, return_state=True)(x[:, None], initial_state=[h0, c0])
    assert h is h2 and max_abs(h, lh) == 0 and max_abs(c, lc) == 0
    with pytest.raises(ValueError, match=r"states"):
        cell(x, h0)


def test_v1_lstm_has_tf115_defaults(rng):
    layer = v1.LSTM(4)
    assert layer.cell.recurrent_activation is activations.hard_sigmoid_keras2
    assert layer.cell.implementation == 1
    w = keras_weights(rng, 3, 4)
    layer.set_weights(w)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    same = _layer(4, w, recurrent_activation="hard_sigmoid")
    assert max_abs(layer(x), same(x)) == 0
    tf115 = v1.LSTM(4, recurrent_dropout=0.3, implementation=2)
    tf115.build((None, 5, 3))
    assert tf115.cell.implementation == 2
    assert tuple(tf115.cell.dropout_masks(8, torch.zeros(1), True).recurrent.shape) == (1, 8, 4)


class TestBidirectional:
    def test_unmasked_concat_equals_torch_bidirectional(self, rng):
        w = keras_weights(rng, 3, 4) + keras_weights(rng, 3, 4)
        layer = Bidirectional(LSTM(4, return_sequences=True, return_state=True))
        layer.set_weights(w)
        x = rng.standard_normal((2, 6, 3)).astype(np.float32)
        out, h_f, c_f, h_b, c_b = layer(x)
        ref_out, (ref_h, ref_c) = _torch_lstm_from_keras(w, 3, 4, bidirectional=True)(torch.tensor(x))
        assert max_abs(out, ref_out) < 1e-6
        assert max_abs(torch.stack([h_f, h_b]), ref_h) < 1e-6 and max_abs(torch.stack([c_f, c_b]), ref_c) < 1e-6

    @pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
    def test_merge_modes_combine_forward_and_flipped_backward(self, rng, mode):
        wf, wb = keras_weights(rng, 3, 4), keras_weights(rng, 3, 4)
        layer = Bidirectional(LSTM(4, return_sequences=True), merge_mode=mode)
        layer.set_weights(wf + wb)
        x = rng.standard_normal((2, 5, 3)).astype(np.float32)
        y_f = _layer(4, wf, return_sequences=True)(x)
        y_b = _layer(4, wb, return_sequences=True, go_backwards=True)(x).flip(1)
        expected = {"concat": torch.cat([y_f, y_b], -1), "sum": y_f + y_b, "mul": y_f * y_b,
                    "ave": (y_f + y_b) / 2}
        got = layer(x)
        if mode is None:
            assert max_abs(got[0], y_f) == 0 and max_abs(got[1], y_b) == 0
        else:
            assert max_abs(got, expected[mode]) < 1e-6

    def test_masks_zero_both_halves_and_states_in_keras_order(self, rng):
        layer = Bidirectional(LSTM(3, return_sequences=True, return_state=True), merge_mode=None)
        layer.set_weights(keras_weights(rng, 2, 3) + keras_weights(rng, 2, 3))
        x = rng.standard_normal((2, 5, 2)).astype(np.float32)
        mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
        init = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(4)]
        y_f, y_b, h_f, c_f, h_b, c_b = layer(x, mask=mask, initial_state=init)
        assert np.all(y_f.detach().numpy()[~mask] == 0) and np.all(y_b.detach().numpy()[~mask] == 0)
        assert max_abs(h_b, y_b[:, 0]) == 0  # backward's final state is its output at x[:, 0]
        assert max_abs(h_f[0], y_f[0, 2]) == 0  # forward's state freezes at the last valid step

    def test_custom_backward_layer_and_weight_order(self, rng):
        back = LSTM(5, go_backwards=True, return_sequences=True, activation="relu")
        layer = Bidirectional(LSTM(4, return_sequences=True), backward_layer=back)
        wf, wb = keras_weights(rng, 3, 4), keras_weights(rng, 3, 5)
        layer.set_weights(wf + wb)
        assert [w.shape for w in layer.get_weights()] == [(3, 16), (4, 16), (16,), (3, 20), (5, 20), (20,)]
        assert layer(np.ones((2, 4, 3), np.float32)).shape == (2, 4, 9)
        with pytest.raises(ValueError, match="go_backwards"):
            Bidirectional(LSTM(4), backward_layer=LSTM(4))
        with pytest.raises(ValueError, match="merge mode"):
            Bidirectional(LSTM(4), merge_mode="max")

    def test_config_round_trip(self, rng):
        layer = Bidirectional(LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid"), merge_mode="ave")
        clone = Bidirectional.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        w = keras_weights(rng, 3, 4) + keras_weights(rng, 3, 4)
        layer.set_weights(w)
        clone.set_weights(w)
        x = rng.standard_normal((2, 5, 3)).astype(np.float32)
        assert max_abs(layer(x), clone(x)) == 0


def test_unroll_replicates_keras_unrolled_zeroing_with_the_unreversed_mask(rng):
    # spec keras §6: unroll + go_backwards + zero_output_for_mask zeroes processing-order outputs with the
    # un-reversed mask; the loop path (unroll=False) zeroes the right positions.
    w = keras_weights(rng, 2, 3)
    x = rng.standard_normal((2, 5, 2)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)
    kwargs = dict(return_sequences=True, go_backwards=True, zero_output_for_mask=True)
    loop = _layer(3, w, **kwargs)(x, mask=mask).detach().numpy()
    unrolled = _layer(3, w, unroll=True, **kwargs)(x, mask=mask).detach().numpy()
    assert np.all(loop[~mask[:, ::-1]] == 0)  # loop: zeros where the processed step was masked
    carry = _layer(3, w, return_sequences=True, go_backwards=True, unroll=True)(x, mask=mask).detach().numpy()
    np.testing.assert_array_equal(unrolled, np.where(mask[..., None], carry, 0))  # unroll: un-reversed mask
    assert not np.array_equal(unrolled, loop)


@pytest.mark.parametrize("backward_activation", ["tanh", "relu"])  # one engine call / two engine calls
def test_bidirectional_equals_its_two_layers_run_separately(rng, backward_activation):
    back = LSTM(4, go_backwards=True, return_sequences=True, return_state=True, activation=backward_activation)
    layer = Bidirectional(LSTM(4, return_sequences=True, return_state=True), backward_layer=back)
    wf, wb = keras_weights(rng, 3, 4), keras_weights(rng, 3, 4)
    layer.set_weights(wf + wb)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 0, 0]], bool)
    out, h_f, c_f, h_b, c_b = layer(x, mask=mask)
    kw = dict(return_sequences=True, return_state=True, zero_output_for_mask=True)
    y_f, fh, fc = _layer(4, wf, **kw)(x, mask=mask)
    y_b, bh, bc = _layer(4, wb, go_backwards=True, activation=backward_activation, **kw)(x, mask=mask)
    assert max_abs(out, torch.cat([y_f, y_b.flip(1)], -1)) < 1e-6
    assert max(max_abs(h_f, fh), max_abs(c_f, fc), max_abs(h_b, bh), max_abs(c_b, bc)) < 1e-6
