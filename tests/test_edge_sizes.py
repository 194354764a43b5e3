"""Empty batches, meta tensors and absurd sizes, on both front ends and both engine paths.

An empty batch (B = 0) has an obvious result: outputs (T, 0, H), states (0, H). Meta tensors (no
data) and sizes whose buffers cannot fit in memory are refused by the engine entry with a
ValueError / MemoryError that names the tensor or the size, never torch's raw RuntimeError.
"""

from __future__ import annotations

import pytest
import torch

from lstm_bridge import engine
from lstm_bridge.engine import DirectionWeights, LayerSemantics, MaskedOutput, backend as engine_backend, torch_path
from lstm_bridge.engine.semantics import CellActivations
from lstm_bridge.keras import LSTM as KerasLSTM
from lstm_bridge.mindspore import LSTM, LSTMCell


@pytest.fixture(params=["auto", "torch"])
def backend(request, monkeypatch):
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", request.param)
    return request.param


# --- empty batch ---------------------------------------------------------------------------------
def test_keras_mask_with_an_empty_batch(backend):
    layer = KerasLSTM(4, return_sequences=True, return_state=True)
    out, h, c = layer(torch.zeros(0, 5, 3), mask=torch.zeros(0, 5, dtype=torch.bool))
    assert tuple(out.shape) == (0, 5, 4) and tuple(h.shape) == (0, 4) and tuple(c.shape) == (0, 4)


def test_keras_hard_sigmoid_with_an_empty_batch(backend):
    layer = KerasLSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True, return_state=True)
    out, h, c = layer(torch.zeros(0, 5, 3))
    assert tuple(out.shape) == (0, 5, 4) and tuple(h.shape) == (0, 4) and tuple(c.shape) == (0, 4)


@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_mindspore_seq_length_with_an_empty_batch(backend, layers, bidirectional):
    net = LSTM(3, 4, layers, bidirectional=bidirectional)
    D = 2 if bidirectional else 1
    out, (h, c) = net(torch.zeros(5, 0, 3), None, torch.zeros(0, dtype=torch.int32))
    assert tuple(out.shape) == (5, 0, 4 * D)
    assert tuple(h.shape) == tuple(c.shape) == (layers * D, 0, 4)


def test_mindspore_cell_with_an_empty_batch(backend):
    h, c = LSTMCell(3, 4)(torch.zeros(0, 3), (torch.zeros(0, 4), torch.zeros(0, 4)))
    assert tuple(h.shape) == tuple(c.shape) == (0, 4)


def test_mindspore_empty_batch_still_checks_shapes():
    with pytest.raises(ValueError, match="must be equal to 3, but got 7"):
        LSTM(3, 4)(torch.zeros(5, 0, 7), None, torch.zeros(0, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"\(0, 4\).*received \(0, 8\)"):
        LSTMCell(3, 4)(torch.zeros(0, 3), (torch.zeros(0, 8), torch.zeros(0, 8)))


def _weights(I: int, H: int, dtype=torch.float32) -> DirectionWeights:
    g = torch.Generator().manual_seed(0)
    return DirectionWeights(
        torch.randn(4 * H, I, generator=g, dtype=dtype),
        torch.randn(4 * H, H, generator=g, dtype=dtype),
        torch.randn(4 * H, generator=g, dtype=dtype),
        None,
    )


def test_torch_path_input_projection_reshapes_an_empty_batch():
    """The cause: ``view(T, B, -1)`` of 0 elements is ambiguous; the path itself must handle B = 0."""
    w = _weights(3, 4)
    valid = torch.ones(5, 0, dtype=torch.bool)
    outs, hs, cs = torch_path.run_layer(
        torch.zeros(5, 0, 3),
        [w],
        [torch.zeros(0, 4)],
        [torch.zeros(0, 4)],
        reverse=[True],
        valid=valid,
        semantics=LayerSemantics(masked_output=MaskedOutput.ZERO),
        dropout=[None],
    )
    assert tuple(outs[0].shape) == (5, 0, 4) and tuple(hs[0].shape) == (0, 4)


def test_engine_empty_batch_never_reaches_a_backend(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an empty batch must not select a path")

    monkeypatch.setattr(engine_backend, "select", refuse)
    hard = CellActivations(gate=torch.nn.functional.hardsigmoid)
    outs, hs, cs = engine.run_layer(
        torch.zeros(6, 0, 3, dtype=torch.float64),
        [_weights(3, 4, torch.float64), _weights(3, 2, torch.float64)],
        [torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, 2, dtype=torch.float64)],
        [torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, 2, dtype=torch.float64)],
        reverse=[False, True],
        semantics=LayerSemantics(hard),
    )
    assert [tuple(o.shape) for o in outs] == [(6, 0, 4), (6, 0, 2)]
    assert [tuple(h.shape) for h in hs] == [(0, 4), (0, 2)] and all(o.dtype == torch.float64 for o in outs)


# --- meta tensors --------------------------------------------------------------------------------
def test_meta_input_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"x is a meta tensor \(shape \(5, 2, 3\)"):
        LSTM(3, 4)(torch.zeros(5, 2, 3, device="meta"))
    with pytest.raises(ValueError, match="meta tensor"):
        LSTM(3, 4)(torch.zeros(5, 2, 3, device="meta"), None, torch.tensor([5, 3]))
    with pytest.raises(ValueError, match="x is a meta tensor"):
        KerasLSTM(4)(torch.zeros(2, 5, 3, device="meta"))


def test_meta_weights_are_a_value_error_naming_them():
    with pytest.raises(ValueError, match=r"w_ih is a meta tensor \(shape \(16, 3\)"):
        LSTM(3, 4).to("meta")(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match="w_ih is a meta tensor"):
        LSTMCell(3, 4).to("meta")(torch.zeros(2, 3), (torch.zeros(2, 4), torch.zeros(2, 4)))


def test_meta_state_is_a_value_error():
    meta = torch.zeros(1, 2, 4, device="meta")
    with pytest.raises(ValueError, match="h0 is a meta tensor"):
        LSTM(3, 4)(torch.zeros(5, 2, 3), (meta, meta))


# --- absurd sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda: LSTM(10, 2**31), lambda: LSTM(10, 4, num_layers=2**40), lambda: LSTMCell(10, 2**31)]
)
def test_mindspore_constructors_refuse_parameters_that_cannot_fit(make):
    with pytest.raises(
        MemoryError,
        match=r"the parameters of LSTM(Cell)?\(input_size=10, hidden_size=.* need .*B \("
        r"\d+ float32 values\); this machine has",
    ):
        make()


def test_engine_refuses_buffers_that_cannot_fit_naming_the_shape():
    x = torch.zeros(1, 1, 3).expand(2**24, 2**14, 3)  # a view: 12 bytes of data, 2**38 steps*rows
    with pytest.raises(MemoryError, match=r"x of shape \(16777216, 16384, 3\).*need .*TiB"):
        LSTM(3, 4)(x)
    with pytest.raises(MemoryError, match=r"x of shape \(16777216, 16384, 3\)"):
        KerasLSTM(4)(x.transpose(0, 1))  # Keras is batch-major: (B, T, I)


def test_an_allocator_failure_during_a_run_becomes_a_memory_error(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 103079215104 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(engine_backend, "select", lambda *a, **k: failing)
    with pytest.raises(
        MemoryError,
        match=r"not enough memory for an LSTM layer over x of shape \(5, 2, 3\).*"
        r"103079215104 bytes",
    ):
        LSTM(3, 4)(torch.zeros(5, 2, 3))


def test_a_size_overflow_during_a_keras_run_is_the_same_memory_error(monkeypatch):
    """One ``allocation_errors`` for every front end: torch's byte-count overflow in a Keras layer's run reads
    as the engine's does, naming the layer and sizes; a RuntimeError of another kind keeps its type."""

    def overflowing(*args, **kwargs):
        raise RuntimeError("Storage size calculation overflowed with sizes=[1099511627776, 4398046511104]")

    layer = KerasLSTM(4)
    layer(torch.zeros(2, 5, 3))
    monkeypatch.setattr(engine_backend, "select", lambda *a, **k: overflowing)
    with pytest.raises(
        MemoryError, match=r"^not enough memory for an LSTM layer over x of shape \(5, 2, 3\).*: Storage size calc"
    ):  # (the engine's message, innermost: not wrapped again by the layer's)
        layer(torch.zeros(2, 5, 3))
    monkeypatch.setattr(
        engine_backend, "select", lambda *a, **k: lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x"))
    )
    with pytest.raises(RuntimeError, match="^x$"):
        layer(torch.zeros(2, 5, 3))


def test_other_runtime_errors_are_not_relabelled(monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(engine_backend, "select", lambda *a, **k: failing)
    with pytest.raises(RuntimeError, match="^something else$"):
        LSTM(3, 4)(torch.zeros(5, 2, 3))


def test_engine_empty_batch_still_checks_state_and_input_sizes():
    w = _weights(3, 4)
    with pytest.raises(ValueError, match=r"h0 must have shape \(0, 4\).*received \(0, 8\)"):
        engine.run_layer(torch.zeros(5, 0, 3), [w], [torch.zeros(0, 8)], [torch.zeros(0, 4)], reverse=[False])
    with pytest.raises(ValueError, match=r"expects input size 3; received x of shape \(5, 0, 7\)"):
        engine.run_layer(torch.zeros(5, 0, 7), [w], [torch.zeros(0, 4)], [torch.zeros(0, 4)], reverse=[False])


def test_mindspore_default_state_for_an_absurd_batch_is_a_memory_error():
    x = torch.zeros(1, 1, 3).expand(1, 2**40, 3)  # a view: no data behind the 2**40 rows
    with pytest.raises(MemoryError, match=r"default initial state of shape \(1, 1099511627776, 4\)"):
        LSTM(3, 4)(x)
