"""Cached call plans (engine/callplan.py): a repeated inference call skips the engine's per-call checks and
selection, and gives the full path's results; data checks still run, new signatures are checked again."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import lstm_bridge.keras as K
import lstm_bridge.mindspore as M
from lstm_bridge.engine import backend


def _count_selects(monkeypatch: pytest.MonkeyPatch) -> list:
    calls: list = []
    real = backend.select

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "select", counting)
    return calls


def test_keras_repeated_inference_call_skips_selection_and_matches(monkeypatch):
    torch.manual_seed(0)
    layer = K.LSTM(8, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True)
    x = torch.randn(3, 5, 4)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    with torch.no_grad():
        first = layer(x, mask=mask)  # builds the layer, plans the signature
        selects = _count_selects(monkeypatch)
        second = layer(x, mask=mask)
        assert selects == []  # the planned call went straight to the kernel
        mask2 = mask.clone()
        mask2[0, 2:] = False  # the mask's values are read per call
        planned = layer(x, mask=mask2)
        full = copy.deepcopy(layer)(x, mask=mask2)  # a copy plans again: its first call is the full path
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    for a, b in zip(planned, full):
        assert torch.equal(a, b)


def test_keras_plan_follows_weights_and_new_shapes():
    layer = K.LSTM(6, go_backwards=True)
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        layer(x)
        layer(x)
        layer.set_weights([w * 0.5 for w in layer.get_weights()])
        after = layer(x)
        with pytest.raises(ValueError, match="incompatible|expects|input size"):
            layer(torch.randn(2, 4, 5))  # a new signature is checked again
        longer = layer(torch.randn(2, 7, 3))
    torch.testing.assert_close(after, layer(x).detach(), rtol=0, atol=1e-6)
    assert tuple(longer.shape) == (2, 6)


def test_mindspore_seq_length_values_checked_on_planned_calls():
    net = M.LSTM(4, 5, batch_first=True, bidirectional=True)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 2], dtype=torch.int32)
    with torch.no_grad():
        out1, (h1, c1) = net(x, seq_length=lengths)
        out2, (h2, c2) = net(x, seq_length=lengths)
        assert torch.equal(out1, out2) and torch.equal(h1, h2) and torch.equal(c1, c2)
        with pytest.raises(RuntimeError, match=r"seq_length\[1\] = 9"):
            net(x, seq_length=torch.tensor([3, 9], dtype=torch.int32))
        short = net(x, seq_length=torch.tensor([1, 2], dtype=torch.int32))
    full = net(x, seq_length=torch.tensor([1, 2], dtype=torch.int32))
    torch.testing.assert_close(short[0], full[0].detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(short[1][0], full[1][0].detach(), rtol=0, atol=1e-6)


def test_mindspore_two_layers_planned_matches_full_path(monkeypatch):
    net = M.LSTM(4, 5, num_layers=2)
    x = torch.randn(3, 2, 4)
    with torch.no_grad():
        ref, (rh, rc) = net(x)  # the full path, planning the signature
        selects = _count_selects(monkeypatch)
        out, (h, c) = net(x)
        assert selects == []
    assert torch.equal(out, ref) and torch.equal(h, rh) and torch.equal(c, rc)


def test_planned_modules_copy_and_pickle():
    layer, net = K.LSTM(4), M.LSTM(3, 4)
    with torch.no_grad():
        layer(torch.randn(1, 2, 3))
        net(torch.randn(2, 1, 3))
    for module, x in ((layer, torch.randn(1, 2, 3)), (net, torch.randn(2, 1, 3))):
        buffer = io.BytesIO()
        torch.save(module, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        twin = copy.deepcopy(module)
        with torch.no_grad():
            ref = module(x)
            for other in (loaded, twin):
                got = other(x)
                a = got if isinstance(got, torch.Tensor) else got[0]
                b = ref if isinstance(ref, torch.Tensor) else ref[0]
                assert torch.equal(a, b)


def test_keras_bidirectional_planned_matches_full_path(monkeypatch):
    torch.manual_seed(1)
    layer = K.Bidirectional(K.LSTM(5, return_sequences=True, return_state=True), merge_mode="concat")
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        layer(x, mask=mask)  # builds
        ref = layer(x, mask=mask)  # the full path, planning the signature
        selects = _count_selects(monkeypatch)
        got = layer(x, mask=mask)
        assert selects == []
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        assert torch.equal(a, b)


def test_keras_layer_built_under_inference_mode():
    layer = K.LSTM(4, return_state=True)
    x = torch.randn(2, 3, 3)
    with torch.inference_mode():  # inference-tensor weights have no version counter to key a cache on
        first = layer(x)
        again = layer(x)
    with torch.no_grad():
        later = layer(x)
    for a, b, c in zip(first, again, later):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_mindspore_net_built_under_inference_mode():
    with torch.inference_mode():
        net = M.LSTM(3, 4)
        x = torch.randn(2, 1, 3)
        first = net(x)
        again = net(x)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1][0], again[1][0])
