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
    for suffix, (k, r, b) in zip(["_l0", "_l0_reverse"], [weights[i : i + 3] for i in range(0, len(weights), 3)]):
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


def test_lstm_kernels_are_stored_in_torchs_layout_so_onednn_reads_them_without_a_copy(rng, monkeypatch):
    """Keras shapes over (4u, I) / (4u, u) row-major storage: kernel.T is contiguous, set_weights and
    load_state_dict keep that layout, get_weights still hands back C-ordered Keras arrays."""
    layer = LSTM(4, return_sequences=True)
    layer.build((None, 6, 3))
    weights = [rng.standard_normal(s).astype(np.float32) for s in ((3, 16), (4, 16), (16,))]
    layer.set_weights(weights)
    for p in (layer.cell.kernel, layer.cell.recurrent_kernel):
        assert p.t().is_contiguous() and not p.is_contiguous()
    got = layer.get_weights()
    assert all(a.flags["C_CONTIGUOUS"] for a in got)
    assert all(np.array_equal(a, w) for a, w in zip(got, weights))
    other = LSTM(4, return_sequences=True)
    other.build((None, 6, 3))
    other.load_state_dict({k: v.contiguous() for k, v in layer.state_dict().items()})
    assert other.cell.kernel.t().is_contiguous()
    x = torch.from_numpy(rng.standard_normal((2, 6, 3)).astype(np.float32))
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")  # torch.nn's oneDNN LSTM
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as prof:
        y = layer(x)
    copied = [e.input_shapes[0] for e in prof.events() if e.name == "aten::copy_"]
    assert [16, 3] not in copied and [16, 4] not in copied, copied
    torch.testing.assert_close(y, other(x), rtol=0, atol=0)


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


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 3), np.float32), "expected ndim=3"),
        (np.zeros((2, 3, 3), np.int64), "floating dtype"),
        ("text", "torch.Tensor or numpy.ndarray"),
    ],
)
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
    with pytest.raises(ValueError, match=r"dropout of layer .* must be a float in the range \[0, 1\) when training"):
        LSTM(4, dropout=1.0)(x, training=True)  # tf_keras: accepted at construction, refused when dropout runs
    w = keras_weights(rng, 3, 4)
    x1 = rng.standard_normal((2, 5, 3)).astype(np.float32)
    assert (
        max_abs(_layer(4, w, dropout=1.0, keras_version=3)(x1, training=True), _layer(4, w, keras_version=3)(x1)) == 0
    )  # Keras 3: rate 1 drops nothing
    assert LSTM(4, dropout=-0.5, recurrent_dropout=1.5).get_config()["dropout"] == 0.0  # clipped to [0, 1]
    assert LSTM(4, recurrent_dropout=1.5).recurrent_dropout == 1.0
    with pytest.raises(ValueError, match="expected a positive integer, got 0"):
        LSTM(0)


def test_config_round_trip_rebuilds_an_identical_layer(rng):
    layer = LSTM(
        4,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=True,
        kernel_regularizer="l2",
        activity_regularizer={"class_name": "L1", "config": {"l1": 0.5}},
        kernel_constraint=constraints.max_norm(2.0),
        dropout=0.1,
        recurrent_dropout=0.2,
        return_sequences=True,
        go_backwards=True,
        stateful=False,
        unroll=True,
        time_major=False,
        seed=7,
        zero_output_for_mask=True,
        name="enc",
    )
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
    k3 = {
        "name": "lstm",
        "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
        "units": 3,
        "activation": "tanh",
        "recurrent_activation": "hard_sigmoid",
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None}},
        "seed": None,
    }
    assert LSTM.from_config(k3).cell.recurrent_activation is activations.hard_sigmoid_keras3
    k2 = dict(k3, dtype="float32", kernel_initializer="glorot_uniform", time_major=False)
    assert LSTM.from_config(k2).cell.recurrent_activation is activations.hard_sigmoid_keras2


def test_hard_sigmoids_match_the_measured_keras_values():
    x = torch.tensor([-3, -2.9, -2.5, -2.4, -1, 0, 1, 2.4, 2.5, 2.9, 3], dtype=torch.float32)
    k2 = [0, 0, 0, 0.01999998, 0.3, 0.5, 0.7, 0.98, 1, 1, 1]
    k3 = [0, 0.01666665, 0.08333334, 0.09999999, 0.33333334, 0.5, 0.6666667, 0.90000004, 0.9166667, 0.98333335, 1]
    np.testing.assert_allclose(activations.hard_sigmoid_keras2(x).numpy(), k2, atol=1e-7)
    np.testing.assert_allclose(activations.hard_sigmoid_keras3(x).numpy(), k3, atol=1e-7)
    assert torch.equal(activations.hard_sigmoid_keras3(x), torch.nn.functional.hardsigmoid(x))


def test_regularizer_losses_and_activity_regularizer(rng):
    w = keras_weights(rng, 3, 4)
    layer = _layer(
        4,
        w,
        kernel_regularizer="l2",
        recurrent_regularizer={"class_name": "L1", "config": {"l1": 0.1}},
        activity_regularizer="l2",
        return_state=True,
    )
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
    assert np.sqrt((after**2).sum(0)).max() <= 1.0 + 1e-5


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
    assert abs(float(masks.inputs.mean()) - 1.0) < 0.05
    assert abs(float((masks.recurrent == 0).float().mean()) - 0.3) < 0.03
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
        expected = {"concat": torch.cat([y_f, y_b], -1), "sum": y_f + y_b, "mul": y_f * y_b, "ave": (y_f + y_b) / 2}
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


# --- issue 9: each generation's own rules, measured on tf_keras 2.21 (TK) and Keras 3.15.1 (K3) ----------------
def _const_layer(keras_version, **kwargs):
    from lstm_bridge.keras import initializers

    return LSTM(
        2,
        kernel_initializer=initializers.Constant(0.01),
        recurrent_initializer=initializers.Constant(0.02),
        bias_initializer=initializers.Constant(0.03),
        keras_version=keras_version,
        **kwargs,
    )


_SEQ = np.arange(24).reshape((2, 4, 3)).astype(np.float32) / 10
_H0 = np.arange(4).reshape((2, 2)).astype(np.float32) / 4
_C0 = np.arange(4).reshape((2, 2)).astype(np.float32) / 2
# Real outputs (TF 2.21 CPU) of LSTM(2, stateful=True, constant 0.01/0.02/0.03 initializers) called twice with
# initial_state=[_H0, _C0] on _SEQ: tf_keras continues from the stored (non-zero) states on the second call and
# ignores initial_state (base_rnn.py _process_inputs); Keras 3 takes initial_state every time.
_FIRST = [[0.0378741, 0.11143683], [0.22235247, 0.28433248]]
_TK_SECOND = [[0.04796917, 0.0696147], [0.13815208, 0.16072524]]


@pytest.mark.parametrize("keras_version, second", [(2, _TK_SECOND), (3, _FIRST)])
def test_stateful_initial_state_rule_per_generation(keras_version, second):
    layer = _const_layer(keras_version, stateful=True)
    first = layer(_SEQ, initial_state=[_H0, _C0])
    np.testing.assert_allclose(first.detach().numpy(), _FIRST, atol=1e-6)
    np.testing.assert_allclose(layer(_SEQ, initial_state=[_H0, _C0]).detach().numpy(), second, atol=1e-6)
    layer.reset_states()  # zero states again: initial_state is taken (both generations)
    np.testing.assert_allclose(layer(_SEQ, initial_state=[_H0, _C0]).detach().numpy(), _FIRST, atol=1e-6)
    v1_layer = v1.LSTM(2, stateful=True, recurrent_activation="sigmoid")
    v1_layer.set_weights(layer.get_weights())
    v1_layer(_SEQ, initial_state=[_H0, _C0])
    np.testing.assert_allclose(v1_layer(_SEQ, initial_state=[_H0, _C0]).detach().numpy(), _TK_SECOND, atol=1e-6)


def test_initial_states_in_the_inputs_list_tf_keras_only():
    layer = _const_layer(2)
    np.testing.assert_allclose(layer([torch.tensor(_SEQ), _H0, _C0]).detach().numpy(), _FIRST, atol=1e-6)
    with pytest.raises(ValueError, match="expects 1 input\\(s\\), but it received 3 input tensors"):
        _const_layer(3)([torch.tensor(_SEQ), _H0, _C0])
    nested = _SEQ.tolist()  # a nested Python list is data, not [x, h0, c0]
    assert tuple(_const_layer(2)(np.asarray(nested)).shape) == (2, 2)
    bidi = Bidirectional(_const_layer(2))
    assert max_abs(bidi([torch.tensor(_SEQ), _H0, _C0, _H0, _C0]), bidi(_SEQ, initial_state=[_H0, _C0, _H0, _C0])) == 0


def test_integer_inputs_cast_in_keras3_refused_in_tf_keras():
    ints = np.array([[[101, 202], [303, 404]]])
    assert _const_layer(3)(ints).dtype == torch.float32
    assert max_abs(_const_layer(3)(ints), _const_layer(3)(ints.astype(np.float32))) == 0
    with pytest.raises(TypeError, match="floating dtype.*received torch.int64"):
        _const_layer(2)(ints)


def test_trainable_false_settable_and_propagating():
    layer = LSTM(3, trainable=False)
    layer.build((None, 5, 4))
    assert (len(layer.trainable_weights), len(layer.non_trainable_weights), len(layer.weights)) == (0, 3, 3)
    assert not any(p.requires_grad for p in layer.weights)
    layer.trainable = True
    assert len(layer.trainable_weights) == 3 and all(p.requires_grad for p in layer.weights)
    bidi = Bidirectional(LSTM(3))
    bidi.build((None, 5, 4))
    bidi.trainable = False
    assert (len(bidi.trainable_weights), len(bidi.non_trainable_weights)) == (0, 6)
    assert not bidi.forward_layer.trainable and not bidi.backward_layer.cell.kernel.requires_grad
    # tf_keras takes trainable from the wrapped layer; Keras 3 keeps True (its sublayers stay untrainable)
    assert Bidirectional(LSTM(3, trainable=False)).trainable is False
    k3 = Bidirectional(LSTM(3, trainable=False, keras_version=3))
    k3.build((None, 5, 4))
    assert k3.trainable is True and not k3.trainable_weights


def test_weights_constructor_argument_is_tf_keras_only():
    w = [np.full((3, 8), 0.1, np.float32), np.full((2, 8), 0.2, np.float32), np.full((8,), 0.3, np.float32)]
    layer = LSTM(2, weights=w)
    assert not layer.built  # tf_keras sets them when the layer is built
    layer(_SEQ)
    assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), w))
    assert np.array_equal(LSTM(2, weights=w, input_shape=(4, 3)).get_weights()[1], w[1])
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to LSTM: \\['weights'\\]"):
        LSTM(2, weights=w, keras_version=3)
    bidi = Bidirectional(LSTM(2), "sum", w + w)  # Keras's positional order: layer, merge_mode, weights
    bidi(_SEQ)
    assert bidi.merge_mode == "sum" and np.array_equal(bidi.get_weights()[3], w[0])


def test_unbuilt_layer_weights_and_lazy_load_state_dict():
    layer = LSTM(3)
    assert layer.get_weights() == []
    layer.set_weights([])  # a no-op, as Keras
    assert not layer.built
    source = LSTM(3)
    source.build((None, None, 4))
    layer.load_state_dict(source.state_dict())
    assert layer.built and all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), source.get_weights()))
    bidi, built = Bidirectional(LSTM(3)), Bidirectional(LSTM(3))
    built.build((None, None, 4))
    bidi.load_state_dict(built.state_dict())
    assert max_abs(bidi(_SEQ[..., :3].repeat(2, -1)[..., :4]), built(_SEQ[..., :3].repeat(2, -1)[..., :4])) == 0
    with pytest.raises(RuntimeError, match="size mismatch.*kernel"):
        LSTM(5).load_state_dict(source.state_dict())


def test_implementation_zero_warns_like_tf_keras():
    with pytest.warns(UserWarning, match="`implementation=0` has been deprecated"):
        layer = LSTM(2, implementation=0)
    assert layer.get_config()["implementation"] == 0
    ref = LSTM(2)
    ref.set_weights(keras_weights(np.random.default_rng(0), 3, 2))
    layer.set_weights(ref.get_weights())
    assert max_abs(layer(_SEQ), ref(_SEQ)) < 1e-6
    with pytest.raises(ValueError, match="implementation must be 1 or 2; received implementation=3"):
        LSTM(2, implementation=3)


def test_reset_states_rules_per_generation():
    with pytest.raises(ValueError, match="stateful, it needs to know its batch size"):
        LSTM(3, stateful=True).reset_states()  # tf_keras
    LSTM(3, stateful=True, keras_version=3).reset_states()  # Keras 3: states stay unset until the first call
    with pytest.raises(AttributeError, match="Layer must be stateful"):
        LSTM(3).reset_states()
    LSTM(3, keras_version=3).reset_states()  # Keras 3: a no-op
    with pytest.raises(AttributeError, match="Layer must be stateful"):
        Bidirectional(LSTM(3)).reset_states()


def test_compute_output_shape_as_keras_returns_it():
    assert LSTM(3).compute_output_shape((2, 5, 4)) == (2, 3)
    assert LSTM(3, return_sequences=True, time_major=True).compute_output_shape((5, 2, 4)) == (5, 2, 3)
    assert LSTM(3, return_state=True).compute_output_shape((2, 5, 4)) == [(2, 3), (2, 3), (2, 3)]  # TK: a list
    assert LSTM(3, return_sequences=True, return_state=True, keras_version=3).compute_output_shape((2, 5, 4)) == (
        (2, 5, 3),
        (2, 3),
        (2, 3),
    )  # K3: a tuple
    bidi = Bidirectional(LSTM(3, return_sequences=True, return_state=True), merge_mode=None)
    assert bidi.compute_output_shape((2, 5, 4)) == [(2, 5, 3), (2, 5, 3), (2, 3), (2, 3), (2, 3), (2, 3)]
    bidi = Bidirectional(LSTM(3, return_state=True, keras_version=3))
    assert bidi.compute_output_shape((2, 5, 4)) == ((2, 6), (2, 3), (2, 3), (2, 3), (2, 3))


def test_bidirectional_config_nesting_and_backward_names_per_generation():
    nested = {"module", "class_name", "config", "registered_name"}
    tk = Bidirectional(LSTM(2, name="fw"), backward_layer=LSTM(2, go_backwards=True, name="bw"))
    cfg = tk.get_config()
    assert list(cfg) == ["name", "trainable", "dtype", "layer", "merge_mode", "backward_layer"]
    assert set(cfg["layer"]) == nested and cfg["layer"]["class_name"] == "LSTM"
    assert cfg["layer"]["config"]["name"] == "fw" and cfg["backward_layer"]["config"]["name"] == "bw"
    assert (tk.layer.name, tk.forward_layer.name, tk.backward_layer.name) == ("fw", "forward_fw", "backward_bw")
    assert "backward_layer" not in Bidirectional(LSTM(2, name="fw")).get_config()
    k3 = Bidirectional(
        LSTM(2, name="fw", keras_version=3), backward_layer=LSTM(2, go_backwards=True, name="bw", keras_version=3)
    )
    cfg = k3.get_config()
    assert list(cfg) == ["name", "trainable", "dtype", "merge_mode", "layer", "backward_layer"]
    assert cfg["layer"]["config"]["name"] == "forward_fw" and cfg["backward_layer"]["config"]["name"] == "bw"
    assert k3.backward_layer.name == "bw"
    again = Bidirectional.from_config(cfg)
    assert again.get_config() == cfg and again.forward_layer.name == "forward_fw"
    assert Bidirectional.from_config(tk.get_config()).get_config() == tk.get_config()


@pytest.mark.parametrize("keras_version", [2, 3])
def test_list_masks_empty_batches_and_hostile_sizes(keras_version):
    layer = _const_layer(keras_version, return_sequences=True)
    nested = [[True, True, False, False], [True, True, True, True]]
    assert max_abs(layer(_SEQ, mask=nested), layer(_SEQ, mask=np.array(nested))) == 0
    three = np.random.default_rng(0).random((3, 5, 3)).astype(np.float32)
    assert tuple(layer(three, mask=[[1, 1, 1, 0, 0]] * 3).shape) == (3, 5, 2)  # a (3, 5) list mask
    assert max_abs(layer(_SEQ, mask=[torch.tensor(nested), None, None]), layer(_SEQ, mask=np.array(nested))) == 0
    with pytest.raises(ValueError, match="received an empty list"):
        layer(_SEQ, mask=[])
    empty, empty_mask = np.zeros((0, 4, 3), np.float32), np.zeros((0, 4), bool)
    out, h, c = _const_layer(keras_version, return_sequences=True, return_state=True, activation="relu")(
        empty, mask=empty_mask
    )
    assert (tuple(out.shape), tuple(h.shape), tuple(c.shape)) == ((0, 4, 2), (0, 2), (0, 2))
    out = Bidirectional(_const_layer(keras_version, return_sequences=True))(empty, mask=empty_mask)
    assert tuple(out.shape) == (0, 4, 4)
    with pytest.raises(ValueError, match="meta tensor"):
        layer(torch.zeros(2, 4, 3, device="meta"))
    with pytest.raises(MemoryError, match="units=1099511627776"):
        LSTM(2**40, keras_version=keras_version)(_SEQ)


def test_package_submodules_import_lazily():
    import subprocess
    import sys

    code = (
        "import sys, lstm_bridge; assert 'lstm_bridge.formats' not in sys.modules; "
        "assert lstm_bridge.keras.LSTM and lstm_bridge.mindspore.LSTM and callable(lstm_bridge.load); "
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_several_outputs_are_a_list_in_tf_keras_and_a_tuple_in_keras3():
    x = np.ones((2, 3, 4), np.float32)
    for keras_version, kind in ((2, list), (3, tuple)):
        assert type(LSTM(2, return_state=True, keras_version=keras_version)(x)) is kind
        assert type(Bidirectional(LSTM(2, keras_version=keras_version), merge_mode=None)(x)) is kind
        out = Bidirectional(LSTM(2, return_state=True, keras_version=keras_version), merge_mode=None)(x)
        assert type(out) is kind and len(out) == 6
