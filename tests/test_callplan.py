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

from helpers import assert_same_bits, flat_tensors


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


@pytest.mark.parametrize("backend_request", ["auto", "torch"])
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_keras_bidirectional_concat_sequences_planned_bit_for_bit(
    monkeypatch, backend_request, activation, masked, time_major
):
    """The planned concat fast path (no flips; oneDNN's (T, B, 2u) output returned without a copy) gives
    the full path's sequence bit for bit, on both engine paths, and feeds a second layer alike."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", backend_request)
    torch.manual_seed(2)
    stack = [
        K.Bidirectional(K.LSTM(6, recurrent_activation=activation, return_sequences=True, time_major=time_major))
        for _ in range(2)
    ]
    x = torch.randn(7, 3, 4) if time_major else torch.randn(3, 7, 4)
    mask = None
    if masked:
        mask = torch.ones(3, 7, dtype=torch.bool)
        mask[0, 5:] = False
        mask = mask.t() if time_major else mask

    def run(layers):
        y = x
        for lay in layers:
            y = lay(y, mask=mask)
        return y

    with torch.no_grad():
        run(stack)  # builds and runs the full path
        full = run(copy.deepcopy(stack))  # a copy's first call: the full path
        run(stack)
        selects = _count_selects(monkeypatch)
        planned = run(stack)
        assert selects == []
    assert planned.shape == full.shape == ((7, 3, 12) if time_major else (3, 7, 12))
    assert torch.equal(planned, full)


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


# --- the lean planned paths (issue 12: per-call overhead) -------------------------------------------------


def _full_path(module, *args, **kwargs):
    """The module's full path (every check, the engine's selection) for the same call: a copy's first call."""
    with torch.no_grad():
        return copy.deepcopy(module)(*args, **kwargs)


def test_native_lean_inference_matches_the_general_forward_bit_for_bit(monkeypatch):
    from lstm_bridge.engine.native import function
    from lstm_bridge.engine.native.plan import LayerArgs

    torch.manual_seed(3)
    T, B, I, H = 5, 3, 6, 7
    x = torch.randn(T, B, I)
    w = [(torch.randn(4 * H, I), torch.randn(4 * H, H), torch.randn(4 * H), torch.randn(4 * H)) for _ in range(2)]
    h0 = [torch.randn(B, H) for _ in range(2)]
    c0 = [torch.randn(B, H) for _ in range(2)]
    valid = torch.rand(T, B) > 0.3
    for D, with_valid, no_bias in ((1, False, False), (2, True, False), (1, True, True)):
        plan = function.make_plan([H] * D, [False, True][:D], [1, 1, 1], False, torch.float32, False)
        b_ih = tuple(None if no_bias else w[d][2] for d in range(D))
        args = LayerArgs(
            x, tuple(w[d][0] for d in range(D)), tuple(w[d][1] for d in range(D)), b_ih,
            tuple(w[d][3] for d in range(D)), tuple(h0[:D]), tuple(c0[:D]),
        )  # fmt: skip
        masks = function.kernel_masks(valid if with_valid else None, (None,) * D, (None,) * D)
        assert function.lean_inference(plan, masks)
        lean = function.apply(plan, args, masks)
        with monkeypatch.context() as m:
            m.setattr(function, "lean_inference", lambda *a: False)
            general = function.apply(plan, args, masks)
        assert_same_bits(lean, general)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True, "return_state": True},
        {"go_backwards": True, "return_state": True, "keras_version": 3},
        {"go_backwards": True, "return_sequences": True, "time_major": True},
    ],
)
def test_keras_planned_call_matches_full_path_bit_for_bit(options):
    torch.manual_seed(4)
    layer = K.LSTM(6, recurrent_activation="hard_sigmoid", **options)
    x = torch.randn(4, 3, 5) if options.get("time_major") else torch.randn(3, 4, 5)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[0, 2:] = False
    if options.get("time_major"):
        mask = mask.t()
    with torch.no_grad():
        for m in (None, mask):
            layer(x, mask=m)  # builds / plans the signature
            planned = layer(x, mask=m)
            assert_same_bits(planned, _full_path(layer, x, mask=m))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("lengths", [None, "int32", "int64"])
def test_mindspore_planned_call_matches_full_path_bit_for_bit(bidirectional, num_layers, lengths):
    torch.manual_seed(5)
    net = M.LSTM(5, 6, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(3, 4, 5)
    kwargs = {}
    if lengths is not None:
        kwargs["seq_length"] = torch.tensor([4, 0, 2], dtype=getattr(torch, lengths))
    with torch.no_grad():
        net(x, **kwargs)
        planned = net(x, **kwargs)
    assert callplan_entry(net)[1] is not None  # (the call was planned)
    assert_same_bits(planned, _full_path(net, x, **kwargs))


def callplan_entry(module):
    from lstm_bridge.engine import callplan

    return callplan.PlanSlot.of(module).entry


def test_mindspore_planned_seq_length_errors_and_clamping_as_the_full_path():
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        net(x, seq_length=torch.tensor([3, 2], dtype=torch.int32))  # plans the signature
        net(x, seq_length=torch.tensor([3, 2], dtype=torch.int32))
        with pytest.raises(TypeError, match=r"should be one of \[int32, int64\], but got torch.float32"):
            net(x, seq_length=torch.tensor([3.0, 2.0]))
        with pytest.raises(ValueError, match="batch size of x and seq_length must be equal, but got 2 of x and 3"):
            net(x, seq_length=torch.tensor([3, 2, 1], dtype=torch.int32))
        with pytest.raises(ValueError, match="seq_length must have shape"):
            net(x, seq_length=torch.tensor([[3, 2]], dtype=torch.int32))
        with pytest.raises(TypeError, match="'seq_length' must be a"):
            net(x, seq_length=[3, 2])
        # a unidirectional net treats lengths > T as T and negative lengths as 0, planned or not
        odd = torch.tensor([9, -4], dtype=torch.int64)
        planned = net(x, seq_length=odd)
    assert_same_bits(planned, _full_path(net, x, seq_length=odd))
    assert torch.equal(planned[0][1], torch.zeros(3, 5))


def test_planned_calls_follow_parameter_writes_through_data():
    # .data writes keep a Parameter's version: the planned call must still read the current values (views;
    # MindSpore's b_ih + b_hh is summed per call, not kept in the plan)
    torch.manual_seed(6)
    net = M.LSTM(4, 5, batch_first=True)
    layer = K.LSTM(5)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 1], dtype=torch.int32)
    with torch.no_grad():
        for module, kwargs in ((net, {}), (net, {"seq_length": lengths}), (layer, {})):
            module(x, **kwargs)
            before = module(x, **kwargs)
            bias = net.bias_hh_l0 if module is net else layer.cell.bias
            bias.data.add_(0.5)
            after = module(x, **kwargs)
            assert not torch.equal(flat_tensors(before)[0], flat_tensors(after)[0])
            assert_same_bits(after, _full_path(module, x, **kwargs))


def test_planned_calls_follow_optimizer_steps_load_state_dict_and_the_backend(monkeypatch):
    from lstm_bridge.engine import backend

    torch.manual_seed(7)
    net = M.LSTM(4, 5, batch_first=True)
    layer = K.LSTM(5, return_sequences=True)
    x = torch.randn(2, 3, 4)
    layer(x)
    for module in (net, layer):
        with torch.no_grad():
            module(x)
            module(x)
        out = module(x)
        flat_tensors(out)[0].square().sum().backward()
        torch.optim.SGD(module.parameters(), lr=0.5).step()
        with torch.no_grad():
            assert_same_bits(module(x), _full_path(module, x))
    state = {k: v * 0.5 for k, v in net.state_dict().items()}
    with torch.no_grad():
        net(x)
        net.load_state_dict(state)
        assert_same_bits(net(x), _full_path(net, x))
        layer(x)
        assert backend.last_used == "native"
        monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")
        on_torch = layer(x)
        assert backend.last_used == "torch"
        again = layer(x)  # planned on the torch path
        assert backend.last_used == "torch"
    assert torch.equal(on_torch, again)
    torch.testing.assert_close(on_torch, _full_path(layer, x), rtol=0, atol=0)


def test_standard_plan_builds_hx_for_new_initial_states(monkeypatch):
    # the torch.lstm plan keeps the hx it built for the last (h0, c0) objects: other states get their own
    from lstm_bridge.engine import callplan, torch_path

    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")  # (the default numerics' small layer runs natively)

    torch.manual_seed(8)
    net = M.LSTM(4, 5, bidirectional=True)
    x = torch.randn(3, 2, 4)
    with torch.no_grad():
        dirs = net.layer_weights(torch.float32)[0]
        semantics = net._semantics(False, torch.float32)
        zeros = [torch.zeros(2, 5)] * 2
        for pair in (True, False):
            use = dirs if pair else dirs[:1]
            rev = [False, True] if pair else [False]
            plan = callplan.plan_layer(x, use, zeros[: len(use)], zeros[: len(use)], reverse=rev, valid=None,
                                       semantics=semantics)  # fmt: skip
            assert plan is not None
            for _ in range(2):
                h0 = [torch.randn(2, 5) for _ in use]
                c0 = [torch.randn(2, 5) for _ in use]
                out, h, c = plan.run_stacked(x, use, h0, c0, None)
                ref_o, ref_h, ref_c = torch_path._standard_layer(x, use, h0, c0, rev)
                assert torch.equal(out, torch.cat(ref_o, -1))
                assert torch.equal(h, torch.stack(ref_h)) and torch.equal(c, torch.stack(ref_c))


def test_plan_key_reads_the_backend_request_as_os_environ_does(monkeypatch):
    import os

    from lstm_bridge.engine import callplan

    x = torch.zeros(1, 1, 1)
    monkeypatch.delenv("LSTM_BRIDGE_BACKEND", raising=False)
    unset = callplan.signature(x)
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")
    on_torch = callplan.signature(x)
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "native")
    on_native = callplan.signature(x)
    assert len({unset, on_torch, on_native}) == 3
    monkeypatch.setattr(os, "environ", {"LSTM_BRIDGE_BACKEND": "auto"})  # a replaced mapping is read too
    assert callplan.signature(x)[3] == "auto"


def test_tiny_inference_projection_skips_the_gemm_routing(monkeypatch):
    # below gemm.TINY_MACS the lean entry's projection is the torch.mm that the routing would pick, called
    # directly (oneDNN's ~11 us set-up per call and the micro-kernel's per-call packing cost more than the
    # product); larger ones go through projection.matmul_nt
    from lstm_bridge.engine.native import function, gemm

    routed: list = []
    real = function.matmul_nt

    def counting(*args):
        routed.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(function, "matmul_nt", counting)
    tiny, large = K.LSTM(8), K.LSTM(64)
    x_tiny, x_large = torch.randn(1, 1, 8), torch.randn(16, 8, 64)
    assert 8 * 64 * 4 * 64 * 16 >= gemm.TINY_MACS
    with torch.no_grad():
        for layer, x in ((tiny, x_tiny), (large, x_large)):
            layer(x)
            layer(x)  # planned
            assert_same_bits(layer(x), _full_path(layer, x))
    assert all(shape == (8, 16, 64) for shape in routed) and routed  # only the large layer's (T, B, I) inputs


@pytest.mark.parametrize("units, batch", [(8, 1), (5, 3), (64, 16)])
def test_inference_and_recorded_forwards_agree_bit_for_bit(units, batch):
    # the lean entry's own tiny-product rule is gemm.mm_nt's: an inference call computes the training forward's bits
    torch.manual_seed(9)
    layer = K.LSTM(units, return_sequences=True, return_state=True, recurrent_activation="hard_sigmoid")
    x = torch.randn(batch, 4, 8)
    layer(x)
    with torch.no_grad():
        layer(x)
        inference = layer(x)  # planned
    recorded = layer(x)  # grad mode: autograd records the native call
    assert recorded[0].requires_grad
    assert_same_bits(inference, [r.detach() for r in recorded])


# --- MindSpore's planned seq_length calls (issue 12, item 3) ----------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("steps, batch", [(1, 1), (1, 3), (5, 1), (5, 3), (300, 2)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mindspore_planned_seq_length_values_read_on_every_call(bidirectional, num_layers, steps, batch, batch_first):
    # one signature, new seq_length values on every call: each planned call gives the full path's bits, or its
    # error (a bidirectional net's out-of-range length, on every repeated call); T = 300 reads no mask table
    from lstm_bridge.mindspore._checks import KernelRuntimeError

    torch.manual_seed(10)
    net = M.LSTM(3, 4, num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional)
    x = torch.randn(batch, steps, 3) if batch_first else torch.randn(steps, batch, 3)
    gen = torch.Generator().manual_seed(11)
    values = [torch.randint(0, steps + 1, (batch,), generator=gen) for _ in range(3)]
    values += [torch.full((batch,), steps), torch.zeros(batch, dtype=torch.int64), torch.full((batch,), steps + 2)]
    values.append(torch.arange(batch) - 1)  # a negative length (batch 1: -1 alone)
    with torch.no_grad():
        net(x, seq_length=values[0])  # plans the signature
        assert callplan_entry(net)[1] is not None
        for lengths in values:
            for dtype in (torch.int64, torch.int32):
                seq = lengths.to(dtype)
                in_range = bool(((seq >= 0) & (seq <= steps)).all())
                if bidirectional and not in_range:
                    for _ in range(2):
                        with pytest.raises(KernelRuntimeError, match=rf"seq_length must be in \[0, {steps}\]"):
                            net(x, seq_length=seq)
                    continue
                assert_same_bits(net(x, seq_length=seq), _full_path(net, x, seq_length=seq))


def test_mindspore_planned_seq_length_mask_skips_the_length_checks_in_range(monkeypatch):
    # an in-range (B,) int32/int64 seq_length is read from the plan's mask table (index_select checks the range);
    # anything else goes through _check_lengths, on every call
    from lstm_bridge.mindspore import base

    net = M.LSTM(4, 5, batch_first=True, bidirectional=True)
    x = torch.randn(2, 3, 4)
    checked = []
    real = base.RecurrentNet._check_lengths

    def counting(self, *args):
        checked.append(1)
        return real(self, *args)

    monkeypatch.setattr(base.RecurrentNet, "_check_lengths", counting)
    with torch.no_grad():
        net(x, seq_length=torch.tensor([3, 2]))  # the full path: checked
        checked.clear()
        for lengths in ([3, 2], [0, 1], [2, 3]):
            net(x, seq_length=torch.tensor(lengths, dtype=torch.int32))
        assert checked == []
        for bad in (torch.tensor([3, 4]), torch.tensor([-1, 2]), torch.tensor([3, 2], dtype=torch.int16)):
            with pytest.raises((RuntimeError, TypeError)):
                net(x, seq_length=bad)
        assert len(checked) == 3


def test_mindspore_planned_call_after_a_dtype_conversion():
    # .double() / .float() convert the Parameters in place (same objects, same versions): the cached weight
    # views and plans are dropped, and a float32 input on the float64 net computes as a fresh net does
    torch.manual_seed(12)
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 1])
    with torch.no_grad():
        for kwargs in ({}, {"seq_length": lengths}):
            net(x, **kwargs)
            net(x, **kwargs)  # planned
        net.double()
        for kwargs in ({}, {"seq_length": lengths}):
            for inp in (x, x.double(), x):
                assert_same_bits(net(inp, **kwargs), _full_path(net, inp, **kwargs))
        net.float()
        assert_same_bits(net(x, seq_length=lengths), _full_path(net, x, seq_length=lengths))


def test_mindspore_cast_weights_are_not_kept_across_calls():
    # a float64 input on a float32 net casts the weights: a copy of their values, which a write through .data
    # (no version bump) would make stale; such calls read the current values on every call
    torch.manual_seed(13)
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        for kwargs in ({}, {"seq_length": torch.tensor([3, 2])}):
            net(x, **kwargs)
            before = net(x, **kwargs)
            net.bias_ih_l0.data.add_(0.25)
            after = net(x, **kwargs)
            assert not torch.equal(before[0], after[0])
            assert_same_bits(after, _full_path(net, x, **kwargs))


def test_mindspore_planned_one_step_one_sample_batch_first():
    # T = B = 1 with batch_first: the plan skips the two transposes (the identity on two size-1 dimensions)
    torch.manual_seed(14)
    net = M.LSTM(8, 8, batch_first=True)
    x = torch.randn(1, 1, 8)
    with torch.no_grad():
        for lengths in (torch.tensor([1], dtype=torch.int32), torch.tensor([0]), None):
            kwargs = {} if lengths is None else {"seq_length": lengths}
            net(x, **kwargs)
            planned = net(x, **kwargs)
            full = _full_path(net, x, **kwargs)
            assert_same_bits(planned, full)
            assert planned[0].stride() == full[0].stride()


def _module_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Counts torch's Module._call_impl (what nn.Module.__call__ runs before forward)."""
    calls: list = []
    real = torch.nn.Module._call_impl

    def counting(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "_call_impl", counting)
    return calls


def test_mindspore_lstm_call_shortcut_skips_module_call_only_when_it_would_only_call_forward(monkeypatch):
    # a planned net(x) / net(x, seq_length=...) goes straight to the plan; anything nn.Module.__call__ would
    # act on (hooks, an instance or subclass forward, hx, grad mode) takes nn.Module.__call__ as before
    torch.manual_seed(15)
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 1])
    calls = _module_calls(monkeypatch)
    with torch.no_grad():
        for kwargs in ({}, {"seq_length": lengths}):
            net(x, **kwargs)
            calls.clear()
            assert_same_bits(net(x, **kwargs), _full_path(net, x, **kwargs))
            assert calls == []  # (the shortcut)
        net(x, None, lengths)  # positional hx / seq_length: through nn.Module.__call__
        net(x, hx=None, seq_length=lengths)
        assert calls == ["LSTM", "LSTM"]
    calls.clear()
    net(x, seq_length=lengths)  # grad mode
    assert calls == ["LSTM"]


def test_mindspore_lstm_call_shortcut_keeps_hooks_and_overrides():
    torch.manual_seed(16)
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 1])
    seen: list = []
    with torch.no_grad():
        net(x, seq_length=lengths)
        net(x, seq_length=lengths)  # planned

        def pre(module, args, kwargs):
            seen.append(("pre", len(args), sorted(kwargs)))

        handles = [
            net.register_forward_pre_hook(pre, with_kwargs=True),
            net.register_forward_hook(lambda m, args, out: seen.append(("post", len(args)))),
        ]
        result = net(x, seq_length=lengths)
        assert seen == [("pre", 1, ["seq_length"]), ("post", 1)]
        assert_same_bits(result, _full_path(net, x, seq_length=lengths))
        for h in handles:
            h.remove()
        seen.clear()
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda m, args, out: seen.append(type(m).__name__)
        )
        try:
            net(x, seq_length=lengths)
        finally:
            handle.remove()
        assert seen == ["LSTM"]
        seen.clear()
        real = net.forward
        net.forward = lambda *a, **k: seen.append("instance") or real(*a, **k)
        net(x, seq_length=lengths)
        del net.forward
        assert seen == ["instance"]

        class Sub(M.LSTM):
            def forward(self, x, hx=None, seq_length=None):
                seen.append("subclass")
                return super().forward(x, hx, seq_length)

        sub = Sub(4, 5, batch_first=True)
        sub.load_state_dict(net.state_dict())
        seen.clear()
        for _ in range(3):
            assert_same_bits(sub(x, seq_length=lengths), _full_path(net, x, seq_length=lengths))
        assert seen == ["subclass"] * 3


def test_mindspore_lstm_call_shortcut_follows_a_replaced_module_call_and_compile(monkeypatch):
    torch.manual_seed(17)
    net = M.LSTM(4, 5, batch_first=True)
    x = torch.randn(2, 3, 4)
    lengths = torch.tensor([3, 1])
    seen: list = []
    real = torch.nn.Module.__call__

    def wrapper(self, *args, **kwargs):  # what torch.fx's tracer and other instrumentation do
        seen.append(type(self).__name__)
        return real(self, *args, **kwargs)

    with torch.no_grad():
        net(x, seq_length=lengths)
        with monkeypatch.context() as m:
            m.setattr(torch.nn.Module, "__call__", wrapper)
            net(x, seq_length=lengths)
        assert seen == ["LSTM"]
    graphs: list = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    with torch.no_grad():
        ref = net(x, seq_length=lengths)
    net.compile(backend=backend, fullgraph=True)
    with torch.no_grad():
        out = net(x, seq_length=lengths)
        assert graphs  # (Module.compile()'s program ran, not the shortcut)
        graphs.clear()
        net(x, seq_length=lengths)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_plannable_agrees_with_guards_tracing():
    # plannable() calls tracing()'s checks itself: both say the same in eager, under torch.jit.trace and
    # inside torch.compile
    from lstm_bridge.engine import callplan, guards

    seen: dict = {}
    phase = ["eager"]

    def record(x):
        seen.setdefault(phase[0], set()).add((callplan.plannable(), torch.is_grad_enabled() or guards.tracing()))
        return x * 2

    with torch.no_grad():
        record(torch.ones(2))
        phase[0] = "jit"
        torch.jit.trace(record, torch.ones(2), check_trace=False)
        phase[0] = "compile"
        torch.compile(record, backend="eager", fullgraph=True)(torch.ones(2))
    phase[0] = "grad"
    record(torch.ones(2))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert callplan.plannable()  # (autocast calls are planned: their keys hold the autocast dtype)
        assert callplan.signature(torch.ones(2))[4] == torch.bfloat16
    assert callplan.signature(torch.ones(2))[4] is False
    assert seen == {
        "eager": {(True, False)},
        "jit": {(False, True)},
        "compile": {(False, True)},
        "grad": {(False, True)},
    }


def test_mindspore_alternating_signatures_keep_their_plans(monkeypatch):
    # a net called with and without seq_length (and at two shapes) in turn plans each signature once
    torch.manual_seed(18)
    net = M.LSTM(4, 5, batch_first=True)
    calls = [
        (torch.randn(2, 3, 4), {}),
        (torch.randn(2, 3, 4), {"seq_length": torch.tensor([3, 1])}),
        (torch.randn(1, 1, 4), {"seq_length": torch.tensor([1], dtype=torch.int32)}),
        (torch.randn(1, 1, 4), {}),
    ]
    with torch.no_grad():
        for x, kwargs in calls:
            net(x, **kwargs)
        refs = [_full_path(net, x, **kwargs) for x, kwargs in calls]
        selects = _count_selects(monkeypatch)
        for _ in range(3):
            for (x, kwargs), ref in zip(calls, refs):
                assert_same_bits(net(x, **kwargs), ref)
        assert selects == []
        monkeypatch.undo()
        # new weight objects: the kept plans are dropped (not kept alive), the signatures planned again
        net.load_state_dict({k: v.clone() for k, v in net.state_dict().items()}, assign=True)
        for x, kwargs in calls:
            assert_same_bits(net(x, **kwargs), _full_path(net, x, **kwargs))
    from lstm_bridge.engine import callplan

    kept = callplan.PlanSlot.of(net)
    assert len(kept.kept) == len(calls)
    assert all(p is q for p, q in zip(kept.weights, net.parameters()))


# --- Keras: the inference caches follow the Parameters' data, whatever wrote it ----------------------------
@pytest.mark.parametrize("layer_class", [K.LSTM, K.GRU, K.SimpleRNN])
def test_keras_planned_inference_reads_weights_written_through_data(layer_class):
    """``p.data = t`` (no version change) and ``p.data.mul_()`` after planned calls: the next call reads the new
    values (the cached views follow the memory; GRU's permuted copies are not kept)."""
    torch.manual_seed(0)
    layer = layer_class(4, return_sequences=True)
    x = torch.randn(2, 3, 5)

    def fresh_result() -> torch.Tensor:
        fresh = layer_class(4, return_sequences=True)
        fresh(x)
        fresh.load_state_dict({k: v.clone() for k, v in layer.state_dict().items()})
        out: torch.Tensor = fresh(x)
        return out

    with torch.no_grad():
        layer(x)
        layer(x)  # planned
        layer.cell.kernel.data = torch.randn_like(layer.cell.kernel)
        torch.testing.assert_close(layer(x), fresh_result(), rtol=0, atol=0)
        layer.cell.recurrent_kernel.data.mul_(0.5)
        torch.testing.assert_close(layer(x), fresh_result(), rtol=0, atol=0)


@pytest.mark.parametrize("layer_class", [K.LSTM, K.GRU])
@pytest.mark.parametrize("grad", [False, True])
def test_keras_calls_after_a_dtype_conversion_use_the_converted_weights(layer_class, grad):
    torch.manual_seed(0)
    layer = layer_class(4, return_sequences=True)
    x = torch.randn(2, 3, 5)
    with torch.set_grad_enabled(grad):
        layer(x.requires_grad_(grad))
        layer(x)  # planned
        layer.double()
        got = layer(x.double())
        got_float_input = layer(x)  # cast to the layer's dtype, as the full path does
    fresh = layer_class(4, return_sequences=True, dtype="float64")
    fresh.build((None, 3, 5))
    fresh.load_state_dict(layer.state_dict())
    with torch.no_grad():
        expected = fresh(x.double())
    assert got.dtype == torch.float64 and got_float_input.dtype == torch.float64
    torch.testing.assert_close(got.detach(), expected, rtol=0, atol=0)
    torch.testing.assert_close(got_float_input.detach(), expected, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 1, 8), (3, 2, 5), (7, 4, 16)])
def test_lean_inference_on_a_contiguous_input_matches_the_recorded_forward(shape):
    """A time-major (contiguous) input takes ``function.infer``'s one-call projection (``F.linear``): the same
    bits as the recorded forward's ``torch.mm`` projection."""
    torch.manual_seed(1)
    layer = K.LSTM(8, return_sequences=True, time_major=True, recurrent_activation="hard_sigmoid")
    x = torch.randn(*shape)
    with torch.no_grad():
        layer(x)
        planned = layer(x)
    recorded = layer(x.clone().requires_grad_(True))
    torch.testing.assert_close(planned, recorded.detach(), rtol=0, atol=0)


def test_keras_calls_alternating_between_signatures_keep_their_plans(monkeypatch):
    """Bucketed inference (two sequence lengths, with and without a mask) reuses each signature's plan: after
    the first call of each, no call runs the full path."""
    torch.manual_seed(2)
    layer = K.LSTM(8, return_sequences=True)
    inputs = [(torch.randn(3, 5, 4), None), (torch.randn(3, 9, 4), None), (torch.randn(3, 5, 4), torch.ones(3, 5))]
    with torch.no_grad():
        expected = [layer(x, mask=m) for x, m in inputs]
        calls = []
        original = K.LSTM.prepare
        monkeypatch.setattr(K.LSTM, "prepare", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
        for _ in range(2):
            for (x, m), want in zip(inputs, expected):
                torch.testing.assert_close(layer(x, mask=m), want, rtol=0, atol=0)
    assert calls == []


def _autocast_calls(call, x):
    """The full path's call (the first of a signature), the planned one, and a float32 call after them."""
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            first = call(x)
            used_first = backend.last_used
            planned = call(x)
            used_planned = backend.last_used
            slot = call.__dict__["_call_plan"]
            entries = [e for e in (slot.entry, *slot.kept.values()) if e is not None]  # (before the float32 call)
        plain = call(x)
    return first, planned, plain, used_first, used_planned, entries


@pytest.mark.parametrize(
    "make, shape, path",
    [
        (
            lambda: K.LSTM(24, return_sequences=True, return_state=True, recurrent_activation="hard_sigmoid"),
            (3, 5, 7),
            "native",
        ),
        (lambda: K.LSTM(256, return_sequences=True, return_state=True), (16, 4, 8), "torch"),
        (lambda: K.Bidirectional(K.LSTM(12, return_sequences=True)), (3, 5, 7), "native"),
        (lambda: M.LSTM(7, 24, batch_first=True), (3, 5, 7), "native"),
        (lambda: M.LSTM(8, 256, batch_first=True, bidirectional=True), (16, 4, 8), "torch"),
    ],
    ids=["keras-native-bf16", "keras-onednn-bf16", "bidirectional", "mindspore", "mindspore-onednn-bf16"],
)
def test_autocast_calls_are_planned_with_the_full_paths_results(make, shape, path):
    """Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` an inference call is planned (the key holds the
    autocast dtype): the planned call returns the full path's tensors bit for bit, in bfloat16, on the path
    the full path took; a float32 call after it is not served by the autocast plan."""
    torch.manual_seed(4)
    layer = make()
    x = torch.randn(*shape)
    first, planned, plain, used_first, used_planned, entries = _autocast_calls(layer, x)
    assert used_first == used_planned == path
    assert_same_bits(first, planned)
    assert all(t.dtype == torch.bfloat16 for t in flat_tensors(planned))
    assert all(t.dtype == torch.float32 for t in flat_tensors(plain))

    def parts(key):  # (the key's items, its nested signature tuple flattened)
        return [p for item in key for p in (item if type(item) is tuple else (item,))]

    assert any(torch.bfloat16 in parts(e[0]) and e[1] is not None for e in entries)  # (the autocast call's plan)


def test_autocast_plan_keeps_seq_length_and_mask_checks():
    """A planned autocast call still reads and checks the mask / seq_length values on every call."""
    torch.manual_seed(5)
    net = M.LSTM(6, 10, batch_first=True)
    x = torch.randn(3, 5, 6)
    lengths = torch.tensor([5, 2, 0])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        first = net(x, seq_length=lengths)
        planned = net(x, seq_length=lengths)
        assert_same_bits(first, planned)
        with pytest.raises(ValueError, match="batch size of x and seq_length must be equal"):
            net(x, seq_length=torch.tensor([1, 2]))
        with pytest.raises(TypeError, match="seq_length"):
            net(x, seq_length=torch.tensor([1.5, 2.0, 0.0]))
        assert_same_bits(net(x, seq_length=torch.tensor([6, 2, 0])), first)  # (> T: every step, as 5)
    layer = K.LSTM(10, return_sequences=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a = layer(x, mask=mask)
        b = layer(x, mask=mask)
        c = layer(x, mask=~mask)
    assert_same_bits(a, b)
    assert not torch.equal(a, c)


def test_autocast_call_with_dropout_masks_is_planned_with_the_full_paths_masks():
    """``training=True`` under ``torch.no_grad()`` and bf16 autocast: the planned call draws the masks as the full
    path does (same RNG state, same results), in bfloat16 like it."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5)
    layer = K.LSTM(8, return_sequences=True, dropout=0.3, recurrent_dropout=0.2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x, training=True)
        layer(x, training=True)
        fresh = copy.deepcopy(layer)  # (a copy's plan slot starts empty: its call runs the full path)
        torch.manual_seed(7)
        planned = layer(x, training=True)
        torch.manual_seed(7)
        full = fresh(x, training=True)
    assert layer.__dict__["_call_plan"].entry[1] is not None
    assert planned.dtype == torch.bfloat16
    assert_same_bits(planned, full)
