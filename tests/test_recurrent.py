"""lstm_bridge.recurrent: the one typed description of a recurrent layer (cell kind, weights, semantics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_bridge import activations, convert, engine, recurrent, weights
from lstm_bridge.engine import semantics as engine_semantics
from lstm_bridge.recurrent import CellKind, DirectionWeights, MaskedOutput, RecurrentLayer

from helpers import uneven


def _weights(kind: CellKind, I: int = 3, H: int = 2, seed: int = 0) -> DirectionWeights:
    g = torch.Generator().manual_seed(seed)
    G = kind.gate_count
    return DirectionWeights(
        torch.randn(G * H, I, generator=g),
        torch.randn(G * H, H, generator=g),
        torch.randn(G * H, generator=g),
        torch.randn(G * H, generator=g),
        kind,
    )


def test_one_record_behind_every_old_name():
    assert weights.LSTMWeights is recurrent.DirectionWeights
    assert weights.DirectionWeights is recurrent.DirectionWeights
    assert engine.DirectionWeights is recurrent.DirectionWeights
    assert engine_semantics.DirectionWeights is recurrent.DirectionWeights
    for name in ("CellActivations", "MaskedOutput", "DropoutMasks", "LayerSemantics", "CellKind"):
        assert getattr(engine, name) is getattr(recurrent, name)
        assert getattr(engine_semantics, name) is getattr(recurrent, name)
    assert convert.ChainLayer is recurrent.RecurrentLayer
    # what a reader produces is what the engine takes
    w = weights.from_keras(np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32))
    assert isinstance(w, engine.DirectionWeights) and w.kind is CellKind.LSTM


def test_convert_keeps_every_public_name_and_its_rooms():
    from lstm_bridge.convert import chain, compare, modules

    for name in convert.__all__:
        assert hasattr(convert, name), name
    assert convert.LSTMStack is modules.LSTMStack and convert.run_chain is chain.run_chain
    assert convert.compare_chains is compare.compare_chains and convert.keras_outputs is chain.keras_outputs


@pytest.mark.parametrize(
    "kind, G, gates",
    [(CellKind.LSTM, 4, ("i", "f", "g", "o")), (CellKind.GRU, 3, ("r", "z", "n")), (CellKind.RNN, 1, ())],
)
def test_cell_kind_gate_counts_shape_the_weights(kind, G, gates):
    assert kind.gate_count == G and kind.gates == gates
    w = _weights(kind, I=5, H=3)
    assert (w.hidden_size, w.input_size, w.has_bias) == (3, 5, True)
    for other in CellKind:
        if other.gate_count != G:
            with pytest.raises(
                ValueError,
                match=r"w_hh must be \(" + ("H" if other.gate_count == 1 else f"{other.gate_count}H") + r", H\)",
            ):
                DirectionWeights(w.w_ih, w.w_hh, kind=other)


def test_copies_keep_the_kind_and_equal_compares_it():
    w = _weights(CellKind.GRU)
    assert w.numpy().kind is CellKind.GRU and w.torch(torch.float64).kind is CellKind.GRU
    assert w.to(torch.float64).w_ih.dtype == torch.float64 and w.to(torch.float64).kind is CellKind.GRU
    assert w.equal(w.numpy()) and w.numpy().equal(w.torch())
    rnn = DirectionWeights(w.w_ih[:2], w.w_hh[:2, :], kind=CellKind.RNN)  # (2, 3) / (2, 2): an RNN with H=2
    assert rnn.hidden_size == 2 and not rnn.equal(w)


def test_mixed_numpy_and_torch_refused_for_every_kind():
    w = _weights(CellKind.GRU)
    with pytest.raises(TypeError, match="GRU weight arrays .* a mix"):
        DirectionWeights(w.w_ih.numpy(), w.w_hh, kind=CellKind.GRU)
    with pytest.raises(TypeError, match="mix"):
        DirectionWeights(w.w_ih, w.w_hh, w.b_ih.numpy(), kind=CellKind.GRU)


def _torch_module(kind: CellKind, dirs, nonlinearity: str = "tanh") -> torch.nn.Module:
    """torch.nn.GRU / RNN (one layer) holding ``dirs`` (forward, reverse)."""
    w = dirs[0]
    cls = torch.nn.GRU if kind is CellKind.GRU else torch.nn.RNN
    kw = {} if kind is CellKind.GRU else {"nonlinearity": nonlinearity}
    mod = cls(w.input_size, w.hidden_size, bidirectional=len(dirs) == 2, **kw).to(w.w_ih.dtype)
    with torch.no_grad():
        for d, suffix in zip(dirs, ["", "_reverse"]):
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                getattr(mod, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0" + suffix).copy_(
                    getattr(d, name)
                )
    return mod


@pytest.mark.parametrize("kind", [CellKind.GRU, CellKind.RNN])
def test_engine_runs_family_kinds_like_torch_modules(kind):
    dirs = [_weights(kind, I=3, H=2, seed=s).to(torch.float64) for s in (1, 2)]
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4, 2, dtype=torch.float64)
    outs, hs, cs = engine.run_layer(x, dirs, [h0[0], h0[1]], None, reverse=[False, True])
    assert cs == []
    want, want_h = _torch_module(kind, dirs)(x, h0)
    torch.testing.assert_close(torch.cat(outs, -1), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.stack(hs), want_h, rtol=0, atol=1e-12)
    # a stack: c0 None in, c_n None out; equals torch's 2-layer bidirectional module
    layer2 = [
        DirectionWeights(
            torch.randn(kind.gate_count * 2, 4, dtype=torch.float64),
            torch.randn(kind.gate_count * 2, 2, dtype=torch.float64),
            kind=kind,
        )
        for _ in dirs
    ]
    h0s = torch.randn(4, 4, 2, dtype=torch.float64)
    out, h_n, c_n = engine.run_stack(x, [dirs, layer2], h0s, None)
    assert c_n is None and out.shape == (5, 4, 4) and h_n.shape == (4, 4, 2)
    cls = torch.nn.GRU if kind is CellKind.GRU else torch.nn.RNN
    mod = cls(3, 2, num_layers=2, bidirectional=True, bias=True).double()
    with torch.no_grad():
        for layer, ws in enumerate([dirs, layer2]):
            for d, suffix in zip(ws, ["", "_reverse"]):
                getattr(mod, f"weight_ih_l{layer}{suffix}").copy_(d.w_ih)
                getattr(mod, f"weight_hh_l{layer}{suffix}").copy_(d.w_hh)
                getattr(mod, f"bias_ih_l{layer}{suffix}").copy_(d.b_ih if d.b_ih is not None else 0)
                getattr(mod, f"bias_hh_l{layer}{suffix}").copy_(d.b_hh if d.b_hh is not None else 0)
    want, want_h = mod(x, h0s)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n, want_h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", [CellKind.GRU, CellKind.RNN])
@pytest.mark.parametrize("mindspore_cpu", [False, True])
def test_engine_family_equals_family_torch_with_every_option(kind, mindspore_cpu, monkeypatch):
    """Masks, dropout masks, activations, reset_after and mindspore_cpu/mindspore_matmul reach family_torch
    unchanged (on the torch path; tests/test_native_family.py holds the native kernel to it)."""
    from lstm_bridge.engine import family_torch

    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")

    dirs = [_weights(kind, I=3, H=2, seed=s) for s in (3, 4)]
    x = torch.randn(6, 3, 3)
    h0 = [torch.randn(3, 2), torch.randn(3, 2)]
    valid = engine.lengths_to_valid(torch.tensor([6, 2, 0]), 6)
    G = kind.gate_count
    drop = [recurrent.DropoutMasks(torch.rand(G, 3, 3) * 2, torch.rand(G, 3, 2) * 2), None]
    for reset_after in [True, False] if kind is CellKind.GRU and not mindspore_cpu else [True]:
        if mindspore_cpu:
            acts = recurrent.CellActivations(gate=activations.ms_cpu_sigmoid, candidate=activations.ms_cpu_tanh)
        else:
            acts = recurrent.CellActivations(gate=activations.by_name("hard_sigmoid"), candidate=activations.relu)
        sem = recurrent.LayerSemantics(
            acts,
            MaskedOutput.ZERO,
            reset_after=reset_after,
            mindspore_cpu=mindspore_cpu,
            mindspore_matmul=mindspore_cpu,
        )
        outs, hs, cs = engine.run_layer(
            x, dirs, h0, None, reverse=[False, True], valid=valid, semantics=sem, dropout=drop
        )
        want, want_h = family_torch.run_family_layer(
            x,
            dirs,
            h0,
            kind=kind,
            reverse=[False, True],
            valid=valid,
            activations=acts,
            masked_output=MaskedOutput.ZERO,
            reset_after=reset_after,
            dropout=drop,
            numerics="mindspore-cpu" if mindspore_cpu else "exact",
            ms_matmul=mindspore_cpu,
        )
        assert cs == []
        for a, b in zip(outs + hs, want + want_h):
            assert torch.equal(a, b)
        assert (outs[0][:, 2] == 0).all() and torch.equal(hs[0][2], h0[0][2])  # length 0: zeros, h0


def test_engine_refuses_mixed_cell_kinds_by_name():
    lstm, gru, rnn = (_weights(k, I=3, H=2) for k in (CellKind.LSTM, CellKind.GRU, CellKind.RNN))
    x = torch.randn(4, 2, 3)
    h = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=r"same cell kind.*\['LSTM', 'GRU'\]"):
        engine.run_layer(x, [lstm, gru], [h, h], [h, h], reverse=[False, True])
    with pytest.raises(ValueError, match=r"\['GRU', 'RNN'\]"):
        engine.run_layer(x, [gru, rnn], [h, h], None, reverse=[False, True])
    with pytest.raises(ValueError, match=r"\['RNN', 'LSTM'\]"):
        engine.run_stack(x, [[rnn], [_weights(CellKind.LSTM, I=2, H=2)]], torch.zeros(2, 2, 2), None)
    with pytest.raises(ValueError, match="LSTM .* needs c0"):
        engine.run_layer(x, [lstm], [h], None, reverse=[False])


def test_recurrent_layer_semantics_maps_names_and_mask_rule():
    w = _weights(CellKind.LSTM)
    layer = RecurrentLayer("l", [w], [False], gate="hard_sigmoid", candidate="softsign")
    sem = layer.semantics()
    assert sem.activations.gate is activations.by_name("hard_sigmoid")
    assert sem.activations.candidate is activations.by_name("softsign")
    assert sem.activations.cell is activations.by_name("softsign")  # the candidate is also the cell activation
    assert sem.masked_output is MaskedOutput.CARRY and not sem.onednn_bits
    assert not sem.activations.is_standard
    layer.zero_output_for_mask = True
    assert layer.masked_output is MaskedOutput.ZERO and layer.semantics().masked_output is MaskedOutput.ZERO
    assert layer.semantics(MaskedOutput.CARRY).masked_output is MaskedOutput.CARRY  # a runner's override
    std = RecurrentLayer("s", [w], [False]).semantics()
    assert std.activations.is_standard and std == engine.LayerSemantics()
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        RecurrentLayer("bad", [w], [False], gate="nope").semantics()


def test_recurrent_layer_sizes_and_defaults():
    rng = np.random.default_rng(0)
    fwd = DirectionWeights(uneven(rng, (20, 3)), uneven(rng, (20, 5)))
    layer = RecurrentLayer("bi", [fwd, fwd], [False, True])
    assert (layer.input_size, layer.hidden_size, layer.output_size) == (3, 5, 10)
    assert (layer.kind, layer.stateful, layer.keras_version) == (CellKind.LSTM, False, None)
    layer.merge_mode = "sum"
    assert layer.output_size == 5


def test_gru_layer_semantics_carry_reset_after_to_the_engine():
    w = _weights(CellKind.GRU, I=3, H=2)
    layer = RecurrentLayer("g", [w], [False], gate="hard_sigmoid", kind=CellKind.GRU, reset_after=False)
    sem = layer.semantics()
    assert sem.reset_after is False and sem.mindspore_cpu is False
    assert RecurrentLayer("g", [w], [False], kind=CellKind.GRU).semantics().reset_after is True
    x, h = torch.randn(4, 2, 3), torch.randn(2, 2)
    before, _, _ = engine.run_layer(x, [w], [h], None, reverse=[False], semantics=sem)
    after, _, _ = engine.run_layer(
        x,
        [w],
        [h],
        None,
        reverse=[False],
        semantics=recurrent.LayerSemantics(sem.activations, sem.masked_output, reset_after=True),
    )
    assert not torch.allclose(before[0], after[0])  # the two GRU forms differ (b_hn != 0, r != 1)
    with pytest.raises(ValueError, match="reset_after=False"):
        engine.run_layer(
            x,
            [w],
            [h],
            None,
            reverse=[False],
            semantics=recurrent.LayerSemantics(reset_after=False, mindspore_cpu=True),
        )


def test_semantics_run_on_the_engine_like_the_keras_front_end():
    """RecurrentLayer.semantics() is what run_chain hands the engine: a hard_sigmoid go_backwards layer run
    through it equals lstm_bridge.keras.LSTM."""
    from lstm_bridge.keras import LSTM

    rng = np.random.default_rng(1)
    k = LSTM(4, recurrent_activation="hard_sigmoid", go_backwards=True, return_sequences=True)
    k.build((None, 5, 3))
    k.set_weights([uneven(rng, (3, 16)), uneven(rng, (4, 16)), uneven(rng, (16,))])
    x = torch.from_numpy(uneven(rng, (2, 5, 3), 1.0))
    chain = convert.chain_from(k)
    layer = chain.layers[0]
    assert (layer.gate, layer.processing_order, layer.keras_version) == ("hard_sigmoid", True, 2)
    res = convert.run_chain(chain, x.transpose(0, 1).contiguous())
    with torch.no_grad():
        expected = k(x)
    assert torch.equal(res.outputs[0].transpose(0, 1), expected)


def test_a_file_entry_gives_typed_recurrent_layers():
    """formats.LSTMLayer.recurrent_layers(): the one reading of a file entry's semantics for running it."""
    import lstm_bridge
    from lstm_bridge.io import to_model_file
    from lstm_bridge.keras import LSTM, Bidirectional

    bi = Bidirectional(
        LSTM(4, recurrent_activation="hard_sigmoid", go_backwards=True, return_sequences=True),
        merge_mode="sum",
        name="bi",
    )
    bi(torch.zeros(2, 3, 5))
    (entry,) = to_model_file(bi).lstm_layers()
    (layer,) = entry.recurrent_layers()
    assert isinstance(layer, RecurrentLayer) and all(isinstance(w.w_ih, torch.Tensor) for w in layer.directions)
    assert (layer.name, layer.gate, layer.merge_mode, layer.keras_version) == ("bi", "hard_sigmoid", "sum", 2)
    assert layer.reverse == [True, False]  # tf_keras flips a wrapped go_backwards layer
    assert layer.directions[0].equal(weights.from_keras(*bi.forward_layer.get_weights()).torch())
    net = lstm_bridge.mindspore.LSTM(3, 2, num_layers=2, bidirectional=True)
    (stack,) = to_model_file(net).lstm_layers()
    names = [(l.name.rsplit(".", 1)[-1], l.reverse, l.masked_output, l.keras_version) for l in stack.recurrent_layers()]
    assert names == [("l0", [False, True], MaskedOutput.ZERO, None), ("l1", [False, True], MaskedOutput.ZERO, None)]
    cell = lstm_bridge.mindspore.LSTMCell(3, 2)
    (c,) = to_model_file(cell).lstm_layers()
    assert c.semantics["recurrent_activation"] == "ms_cpu_sigmoid"
    (run,) = c.recurrent_layers()
    assert (run.gate, run.candidate, run.reverse) == ("sigmoid", "tanh", [False])  # the exact functions
