"""Training call plans (engine/trainplan.py, the Keras LSTM's ``_planned_training``): a recorded call after
the first of its signature skips the front end's and the engine's per-call checks, and must compute the same
bits - outputs and every gradient - with the same dropout draws, per-call masks and errors as the full path."""

from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np
import pytest
import torch

from lstm_bridge import mindspore as M
from lstm_bridge.engine import backend
from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.keras.layer import Recurrent

from helpers import assert_same_bits, require_native_kernel


@pytest.fixture(scope="module", autouse=True)
def kernel_built():
    """Build (or load) the kernel once; a failed build with a toolchain present is a test failure."""
    require_native_kernel()


def _layer(**kwargs: Any) -> LSTM:
    layer = LSTM(6, return_sequences=True, **kwargs)
    layer.build((None, 5, 4))
    return layer


def _step(layer: LSTM, x: torch.Tensor, **call: Any) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """One recorded call and its gradients (x and the three parameters)."""
    x = x.detach().requires_grad_(True)
    out = layer(x, **call)
    y = out[0] if isinstance(out, (list, tuple)) else out
    params = [p for p in (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias) if p is not None]
    grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), [x, *params])
    return y.detach(), [g.detach() for g in grads]


def _planned(layer: LSTM) -> bool:
    entry = layer.__dict__.get("_train_plan")
    return entry is not None and entry.entry is not None and entry.entry[1] is not None


def _forbid_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the planned call ran the full path (prepare)")

    monkeypatch.setattr(Recurrent, "prepare", refuse)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"recurrent_activation": "hard_sigmoid"},
        {"go_backwards": True, "return_state": True},
        {"activation": "relu", "use_bias": False},
    ],
)
def test_a_planned_training_call_gives_the_full_paths_bits(options, rng, monkeypatch):
    layer = _layer(**options)
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    full_y, full_g = _step(layer, x)  # first call of the signature: the full path, then planned
    assert _planned(layer) and backend.last_used == "native"
    _forbid_prepare(monkeypatch)
    y, g = _step(layer, x)
    assert backend.last_used == "native"
    torch.testing.assert_close(y, full_y, rtol=0, atol=0)
    assert len(g) == len(full_g)
    for a, b in zip(g, full_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_planned_dropout_draws_the_same_masks_as_the_full_path(rng, monkeypatch):
    layer = _layer(dropout=0.3, recurrent_dropout=0.25)
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    torch.manual_seed(7)
    full_y, full_g = _step(layer, x, training=True)
    assert _planned(layer)
    _forbid_prepare(monkeypatch)
    torch.manual_seed(7)
    y, g = _step(layer, x, training=True)
    torch.testing.assert_close(y, full_y, rtol=0, atol=0)
    for a, b in zip(g, full_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other, _ = _step(layer, x, training=True)  # a new draw: different masks
    assert not torch.equal(other, y)


def test_planned_calls_read_each_calls_mask_values(rng):
    layer, fresh = _layer(), _layer()
    fresh.load_state_dict(layer.state_dict())
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    first = torch.ones(3, 5, dtype=torch.bool)
    _step(layer, x, mask=first)
    assert _planned(layer)
    second = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    y, g = _step(layer, x, mask=second)
    ref_y, ref_g = _step(fresh, x, mask=second)  # fresh's first call: the full path
    torch.testing.assert_close(y, ref_y, rtol=0, atol=0)
    for a, b in zip(g, ref_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="mask"):
        layer(x.requires_grad_(True), mask=torch.ones(3, 4, dtype=torch.bool))  # wrong shape, planned signature


def test_freezing_a_weight_plans_again(rng):
    layer = _layer()
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    _step(layer, x)
    _step(layer, x)
    layer.cell.kernel.requires_grad_(False)
    y = layer(x.detach().requires_grad_(True))
    y.sum().backward()
    assert layer.cell.kernel.grad is None and layer.cell.recurrent_kernel.grad is not None


def test_a_replaced_parameter_is_not_read_through_a_stale_plan(rng):
    layer = _layer()
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    _step(layer, x)
    _step(layer, x)
    layer.cell.kernel = torch.nn.Parameter(torch.zeros_like(layer.cell.kernel))
    y, g = _step(layer, x)
    fresh = _layer()
    fresh.load_state_dict(layer.state_dict())
    ref_y, _ = _step(fresh, x)
    torch.testing.assert_close(y, ref_y, rtol=0, atol=0)


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
def test_a_planned_bidirectional_training_call_gives_the_full_paths_bits(merge_mode, rng, monkeypatch):
    layer = Bidirectional(LSTM(6, return_sequences=True, recurrent_dropout=0.2), merge_mode=merge_mode)
    layer.build((None, 5, 4))
    x = torch.from_numpy(rng.standard_normal((3, 5, 4)).astype(np.float32))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    params = list(layer.parameters())

    def step() -> Tuple[torch.Tensor, List[torch.Tensor]]:
        xg = x.detach().requires_grad_(True)
        y = layer(xg, mask=mask, training=True)
        grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), [xg, *params])
        return y.detach(), list(grads)

    torch.manual_seed(3)
    full_y, full_g = step()
    entry = layer.__dict__["_train_plan"].entry
    assert entry is not None and entry[1] is not None
    _forbid_prepare(monkeypatch)
    torch.manual_seed(3)
    y, g = step()
    torch.testing.assert_close(y, full_y, rtol=0, atol=0)
    for a, b in zip(g, full_g):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- MindSpore nets ------------------------------------------------------------------------------------------
def _ms_step(net: Any, x: torch.Tensor, seq_length: Any) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    xg = x.detach().requires_grad_(True)
    out, (h, c) = net(xg, seq_length=seq_length)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + (h * 0.5).sum() + (c * 0.25).sum()
    grads = torch.autograd.grad(loss, [xg, *net.parameters()])
    return [out.detach(), h.detach(), c.detach()], list(grads)


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_a_planned_mindspore_training_call_gives_the_full_paths_bits(layers, bidirectional, monkeypatch):
    torch.manual_seed(5)
    net = M.LSTM(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    fresh = M.LSTM(4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    fresh.load_state_dict(net.state_dict())
    x = torch.randn(3, 5, 4)
    _ms_step(net, x, torch.tensor([5, 3, 1]))  # the full path; plans the signature
    entry = net.__dict__["_train_plan"].entry
    assert entry is not None and entry[1] is not None
    lengths = torch.tensor([2, 5, 4])  # new values: checked and read on the planned call

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the planned call ran the full path")

    results, grads = _ms_step(fresh, x, lengths)  # fresh's first call: the full path
    monkeypatch.setattr(type(net), "_forward", refuse)
    got, got_grads = _ms_step(net, x, lengths)
    for a, b in zip(got + got_grads, results + grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="seq_length"):
        net(x.requires_grad_(True), seq_length=torch.tensor([1, 2]))


def test_mindspore_standard_training_is_planned_on_the_kernel():
    """Without seq_length the default numerics train the standard layer on the native kernel (issue 12): the
    second recorded call is planned, and its results and gradients are within float32 rounding of MindSpore's
    bits (``numerics="mindspore-cpu-bits"``: oneDNN's primitive, as MindSpore computes it)."""
    torch.manual_seed(3)
    net = M.LSTM(4, 6, batch_first=True)
    bits = M.LSTM(4, 6, batch_first=True, numerics="mindspore-cpu-bits")
    bits.load_state_dict(net.state_dict())
    x = torch.randn(3, 5, 4)
    with torch.no_grad():
        inference, _ = bits(x)
    results = []
    for module in (net, net, bits):
        xg = x.clone().requires_grad_(True)
        out, (h_n, c_n) = module(xg)
        (out.sum() + h_n.square().sum() + c_n.sum()).backward()
        results.append([out, h_n, c_n, xg.grad, *[p.grad.clone() for p in module.parameters()]])
        module.zero_grad()
    assert backend.last_used == "torch"  # (the bits net's call)
    plan = net.__dict__["_train_plan"].entry[1]
    assert plan is not None
    for a, b in zip(results[1], results[2]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert_same_bits(results[0], results[1])  # planned == the full path's first call
    torch.testing.assert_close(results[1][0].detach(), inference, rtol=1e-5, atol=1e-6)


def test_mindspore_cpu_bits_training_is_not_planned_and_keeps_onednn():
    """``numerics="mindspore-cpu-bits"``: the full path hands the standard layer to oneDNN in training too
    (MindSpore's bits with grad enabled): no plan."""
    net = M.LSTM(4, 6, batch_first=True, numerics="mindspore-cpu-bits")
    x = torch.randn(3, 5, 4, requires_grad=True)
    net(x)
    net(x)
    assert net.__dict__["_train_plan"].entry[1] is None and backend.last_used == "torch"


def test_a_replaced_mindspore_parameter_plans_again():
    """A new Parameter object of the same shape (``net.weight_ih_l0 = Parameter(...)``): the key compares the
    Parameters by identity (never elementwise), so the next call replans and reads the new weights."""
    torch.manual_seed(6)
    net = M.LSTM(4, 6, batch_first=True)
    x, lengths = torch.randn(3, 5, 4), torch.tensor([5, 3, 1])
    _ms_step(net, x, lengths)
    _ms_step(net, x, lengths)
    net.weight_ih_l0 = torch.nn.Parameter(torch.zeros_like(net.weight_ih_l0))
    got, _ = _ms_step(net, x, lengths)
    fresh = M.LSTM(4, 6, batch_first=True)
    fresh.load_state_dict(net.state_dict())
    expected, _ = _ms_step(fresh, x, lengths)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
