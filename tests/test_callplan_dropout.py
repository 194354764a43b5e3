"""Inference call plans of calls with dropout masks (issue 12: a Keras layer called with ``training=True``
under ``torch.no_grad()``): the planned calls draw their masks from the same generator in the same order as
the full path and compute the same bits, so a seeded sequence of calls gives the same results planned or
not; the plan key follows the cell's dropout options."""

from __future__ import annotations

import pytest
import torch

import lstm_bridge.keras as K
from lstm_bridge.engine import backend, callplan

from helpers import assert_same_bits, flat_tensors


def _sequence(layer, inputs, mask, seed, *, planned, monkeypatch):
    """The layer's results on ``inputs`` (one call each, ``training=True`` under no_grad) after seeding the
    global generator, and how many of the calls after the first ran the engine's selection (the full path).
    ``planned`` False: call plans disabled (every call the full path)."""
    selects: list = []
    real = backend.select

    def counting(*args, **kwargs):
        selects.append(1)
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(backend, "select", counting)
        if not planned:
            m.setattr(callplan, "plannable", lambda: False)
        torch.manual_seed(seed)
        with torch.no_grad():
            results = [layer(inputs[0], mask=mask, training=True)]
            selects.clear()
            results += [layer(x, mask=mask, training=True) for x in inputs[1:]]
    return results, len(selects)


def _twins(make):
    """Two layers with the same weights (and the same seeded generator where ``make`` gives one)."""
    a, b = make(), make()
    a(torch.zeros(1, 2, 5))  # builds them
    b(torch.zeros(1, 2, 5))
    b.set_weights(a.get_weights())
    return a, b


@pytest.mark.parametrize("backend_request", ["auto", "native", "torch"])
@pytest.mark.parametrize(
    "options",
    [
        {"recurrent_dropout": 0.25},  # recurrent masks only: the native kernel's lean entry
        {"dropout": 0.3},  # input masks only (implementation 2: one mask shared by the gates)
        {"dropout": 0.3, "recurrent_dropout": 0.25, "return_sequences": True, "return_state": True},
        {"dropout": 0.3, "implementation": 1, "go_backwards": True, "return_sequences": True},  # one per gate
        {"recurrent_dropout": 0.4, "recurrent_activation": "hard_sigmoid", "return_state": True, "seed": 7},
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_keras_dropout_calls_planned_draw_and_compute_as_the_full_path(monkeypatch, backend_request, options, masked):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", backend_request)
    torch.manual_seed(0)
    planned_layer, full_layer = _twins(lambda: K.LSTM(6, **options))
    inputs = [torch.randn(3, 4, 5) for _ in range(4)]
    mask = None
    if masked:
        mask = torch.ones(3, 4, dtype=torch.bool)
        mask[1, 2:] = False
    planned, planned_selects = _sequence(planned_layer, inputs, mask, 11, planned=True, monkeypatch=monkeypatch)
    full, full_selects = _sequence(full_layer, inputs, mask, 11, planned=False, monkeypatch=monkeypatch)
    assert full_selects == len(inputs) - 1
    assert planned_selects == 0  # the first call planned the signature; the others went straight to the kernel
    slot = planned_layer.__dict__["_call_plan"]
    assert slot.entry[1] is not None and slot.entry[1].masked
    for a, b in zip(planned, full):
        assert_same_bits(a, b)
    # masks were drawn: two calls on the same input differ
    assert not torch.equal(
        flat_tensors(planned[0])[0], flat_tensors(planned_layer(inputs[0], mask=mask, training=True))[0]
    )


@pytest.mark.parametrize("backend_request", ["auto", "torch"])
@pytest.mark.parametrize("options", [{"recurrent_dropout": 0.25}, {"dropout": 0.2, "return_state": True}])
def test_keras_bidirectional_dropout_calls_planned_as_the_full_path(monkeypatch, backend_request, options):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", backend_request)
    torch.manual_seed(1)
    planned_layer, full_layer = _twins(lambda: K.Bidirectional(K.LSTM(6, return_sequences=True, **options)))
    inputs = [torch.randn(3, 4, 5) for _ in range(3)]
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[2, 1:] = False
    for m in (None, mask):
        planned, planned_selects = _sequence(planned_layer, inputs, m, 5, planned=True, monkeypatch=monkeypatch)
        full, full_selects = _sequence(full_layer, inputs, m, 5, planned=False, monkeypatch=monkeypatch)
        assert full_selects == len(inputs) - 1 and planned_selects == 0
        assert planned_layer.__dict__["_call_plan"].entry[1][0].masked
        for a, b in zip(planned, full):
            assert_same_bits(a, b)


def test_keras_bidirectional_one_direction_with_dropout(monkeypatch):
    torch.manual_seed(2)

    def make():
        return K.Bidirectional(
            K.LSTM(6, recurrent_dropout=0.3), backward_layer=K.LSTM(6, go_backwards=True)
        )  # (dropout in the forward layer only)

    planned_layer, full_layer = _twins(make)
    inputs = [torch.randn(2, 5, 5) for _ in range(3)]
    planned, selects = _sequence(planned_layer, inputs, None, 3, planned=True, monkeypatch=monkeypatch)
    full, _ = _sequence(full_layer, inputs, None, 3, planned=False, monkeypatch=monkeypatch)
    assert selects == 0
    for a, b in zip(planned, full):
        assert_same_bits(a, b)


def _cells(layer):
    if isinstance(layer, K.Bidirectional):
        return [layer.forward_layer.cell, layer.backward_layer.cell]
    return [layer.cell]


@pytest.mark.parametrize(
    "make",
    [
        lambda: K.LSTM(6, return_sequences=True),
        lambda: K.GRU(6, return_sequences=True),
        lambda: K.Bidirectional(K.LSTM(6, return_sequences=True)),
    ],
    ids=["LSTM", "GRU", "Bidirectional"],
)
def test_keras_plan_key_follows_the_dropout_options(monkeypatch, make):
    """A plan made without dropout is not used once the cells' rates or implementation change: the call
    draws the masks the new options ask for (GRU: never planned, its calls are the full path)."""
    torch.manual_seed(3)
    planned_layer, full_layer = _twins(make)
    inputs = [torch.randn(3, 4, 5) for _ in range(3)]
    _sequence(planned_layer, inputs, None, 0, planned=True, monkeypatch=monkeypatch)  # planned, no masks
    for cell in _cells(planned_layer) + _cells(full_layer):
        cell.recurrent_dropout = 0.3
        cell.dropout = 0.2
    planned, _ = _sequence(planned_layer, inputs, None, 4, planned=True, monkeypatch=monkeypatch)
    full, _ = _sequence(full_layer, inputs, None, 4, planned=False, monkeypatch=monkeypatch)
    for a, b in zip(planned, full):
        assert_same_bits(a, b)
    for cell in _cells(planned_layer) + _cells(full_layer):
        cell.implementation = 3 - cell.implementation  # input masks per gate <-> shared
    planned, _ = _sequence(planned_layer, inputs, None, 5, planned=True, monkeypatch=monkeypatch)
    full, _ = _sequence(full_layer, inputs, None, 5, planned=False, monkeypatch=monkeypatch)
    for a, b in zip(planned, full):
        assert_same_bits(a, b)


def test_masked_plan_takes_the_masks_and_an_unmasked_plan_refuses_them():
    """``LayerPlan.masked``: a masked plan's ``run`` takes the call's masks (a sixth argument), an unmasked
    plan's takes five; its ``run_one`` (the lean single-direction entry) is unset."""
    from lstm_bridge.engine import DropoutMasks, run_layer
    from lstm_bridge.engine.semantics import DirectionWeights, LayerSemantics

    torch.manual_seed(6)
    T, B, I, H = 4, 3, 5, 6
    x = torch.randn(T, B, I)
    w = DirectionWeights(torch.randn(4 * H, I), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H))
    h0, c0 = torch.zeros(B, H), torch.zeros(B, H)
    sem = LayerSemantics()
    drop = DropoutMasks(recurrent=(torch.rand(4, B, H) > 0.3).float() / 0.7)
    with torch.no_grad():
        plan = callplan.plan_layer(x, [w], [h0], [c0], reverse=[False], valid=None, semantics=sem, dropout=[drop])
        assert plan is not None and plan.masked and plan.run_one is None
        other = DropoutMasks(recurrent=(torch.rand(4, B, H) > 0.3).float() / 0.7)
        assert_same_bits(
            plan.run(x, [w], [h0], [c0], None, [other]),
            run_layer(x, [w], [h0], [c0], reverse=[False], semantics=sem, dropout=[other]),
        )
        out, h, c = plan.run_stacked(x, [w], [h0], [c0], None, [other])
        assert out.shape == (T, B, H) and h.shape == c.shape == (1, B, H)
        unmasked = callplan.plan_layer(x, [w], [h0], [c0], reverse=[False], valid=None, semantics=sem)
        assert unmasked is not None and not unmasked.masked
        with pytest.raises(TypeError):
            unmasked.run(x, [w], [h0], [c0], None, [other])
