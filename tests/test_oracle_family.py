"""Validate the recurrent-family oracle (``tests/oracle.py``: Keras GRU/SimpleRNN, MindSpore GRU/RNN) against reality.

Ground truths, none of them the oracle itself:
* ``torch.nn.GRU`` / ``RNN`` / ``GRUCell`` / ``RNNCell`` in float64 (packed sequences for ``seq_length``), with the
  Keras -> PyTorch weight permutation of docs/spec/mindspore_gru_rnn.md §6;
* outputs of real tf_keras 2.21, Keras 3.15.1 and MindSpore 2.10 recorded by ``tools/probe_family.py`` in
  ``tests/fixtures/family`` (float32 frameworks: Keras within 1e-5 of float64 math; MindSpore CPU bit-exact
  with the emulated activations, see docs/spec/mindspore_gru_rnn.md §3);
* closed-form identities (reset_after=False vs True when r is the same for every unit; masks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
import torch

import oracle as R

FAMILY = Path(__file__).parent / "fixtures" / "family"


def _maxdiff(a: Any, b: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64))


def _keras_gru_weights(rng: np.random.Generator, F: int, u: int, reset_after: bool = True, scale: float = 0.7):
    W = rng.normal(size=(F, 3 * u)) * scale
    U = rng.normal(size=(u, 3 * u)) * scale
    b = rng.normal(size=(2, 3 * u) if reset_after else (3 * u,)) * scale
    return W, U, b


def _torch_gru_from_keras(W, U, b, **kw) -> torch.nn.GRU:
    F, u = W.shape[0], U.shape[0]
    m = torch.nn.GRU(F, u, batch_first=True, **kw).double()
    sd = R.keras_gru_to_torch(W, U, b)
    m.load_state_dict({k: _t(v) for k, v in sd.items()}, strict=False)
    return m


# =============================================================================================
# 1. against torch in float64
# =============================================================================================


@pytest.mark.parametrize("B,T,F,u", [(1, 1, 1, 1), (3, 7, 4, 5), (2, 12, 6, 3)])
@pytest.mark.parametrize("with_h0", [False, True])
def test_keras_gru_reset_after_matches_torch_gru(B, T, F, u, with_h0):
    rng = _rng(B * 100 + T)
    x = rng.normal(size=(B, T, F))
    W, U, b = _keras_gru_weights(rng, F, u)
    h0 = rng.normal(size=(B, u)) if with_h0 else None
    y, h = R.keras_gru(x, W, U, b, initial_state=None if h0 is None else [h0], return_sequences=True, return_state=True)
    m = _torch_gru_from_keras(W, U, b)
    yt, ht = m(_t(x), None if h0 is None else _t(h0)[None])
    assert _maxdiff(y, yt.detach()) < 1e-12
    assert _maxdiff(h, ht[0].detach()) < 1e-12


def test_keras_gru_permutation_matters():
    """Loading Keras z, r, h blocks into torch without the permutation is wrong (keras-team/keras#15915)."""
    rng = _rng(1)
    x = rng.normal(size=(2, 6, 3))
    W, U, b = _keras_gru_weights(rng, 3, 4)
    y = R.keras_gru(x, W, U, b, return_sequences=True)
    m = torch.nn.GRU(3, 4, batch_first=True).double()
    m.load_state_dict(
        {"weight_ih_l0": _t(W.T), "weight_hh_l0": _t(U.T), "bias_ih_l0": _t(b[0]), "bias_hh_l0": _t(b[1])}
    )
    assert _maxdiff(y, m(_t(x))[0].detach()) > 1e-2


def test_keras_gru_no_bias_and_go_backwards_match_torch():
    rng = _rng(2)
    x = rng.normal(size=(3, 5, 4))
    W, U, _ = _keras_gru_weights(rng, 4, 3)
    y, h = R.keras_gru(x, W, U, None, go_backwards=True, return_sequences=True, return_state=True)
    m = _torch_gru_from_keras(W, U, None)
    yt, ht = m(_t(x[:, ::-1].copy()))
    assert _maxdiff(y, yt.detach()) < 1e-12  # processing order, not flipped back
    assert _maxdiff(h, ht[0].detach()) < 1e-12


def test_keras_gru_time_major_and_last_output():
    rng = _rng(3)
    x = rng.normal(size=(4, 2, 3))  # (T, B, F)
    W, U, b = _keras_gru_weights(rng, 3, 5)
    y_tm = R.keras_gru(x, W, U, b, time_major=True, return_sequences=True)
    y_bm = R.keras_gru(x.transpose(1, 0, 2), W, U, b, return_sequences=True)
    assert _maxdiff(y_tm, y_bm.transpose(1, 0, 2)) == 0.0
    last = R.keras_gru(x.transpose(1, 0, 2), W, U, b)
    assert _maxdiff(last, y_bm[:, -1]) == 0.0


def test_keras_gru_reset_before_identity():
    """With a reset gate equal for every unit, (r*h)·U_h == r*(h·U_h): reset_after=False with bias b equals
    reset_after=True with bias rows [b, 0]. With a unit-dependent r the two forms differ."""
    rng = _rng(4)
    x = rng.normal(size=(2, 6, 3))
    W, U, _ = _keras_gru_weights(rng, 3, 4)
    u = 4
    b = rng.normal(size=3 * u)
    W1, U1, b1 = W.copy(), U.copy(), b.copy()
    W1[:, u : 2 * u] = 0.0
    U1[:, u : 2 * u] = 0.0
    b1[u : 2 * u] = 0.3  # r = σ(0.3) for every unit and step
    before = R.keras_gru(x, W1, U1, b1, reset_after=False, return_sequences=True)
    after = R.keras_gru(x, W1, U1, np.stack([b1, np.zeros(3 * u)]), reset_after=True, return_sequences=True)
    assert _maxdiff(before, after) < 1e-14
    general_before = R.keras_gru(x, W, U, b, reset_after=False, return_sequences=True)
    general_after = R.keras_gru(x, W, U, np.stack([b, np.zeros(3 * u)]), reset_after=True, return_sequences=True)
    assert _maxdiff(general_before, general_after) > 1e-3


def test_keras_gru_cell_equals_one_layer_step():
    rng = _rng(5)
    x = rng.normal(size=(3, 1, 4))
    h0 = rng.normal(size=(3, 2))
    for reset_after in (True, False):
        W, U, b = _keras_gru_weights(rng, 4, 2, reset_after)
        step = R.keras_gru_cell(x[:, 0], h0, W, U, b, reset_after=reset_after, recurrent_activation="hard_sigmoid")
        layer = R.keras_gru(
            x, W, U, b, reset_after=reset_after, recurrent_activation="hard_sigmoid", initial_state=[h0]
        )
        assert _maxdiff(step, layer) == 0.0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_keras_simple_rnn_matches_torch_rnn(activation):
    rng = _rng(6)
    B, T, F, u = 3, 6, 4, 5
    x = rng.normal(size=(B, T, F))
    W = rng.normal(size=(F, u)) * 0.5
    U = rng.normal(size=(u, u)) * 0.5
    b = rng.normal(size=u) * 0.5
    h0 = rng.normal(size=(B, u))
    y, h = R.keras_simple_rnn(
        x, W, U, b, activation=activation, initial_state=h0, return_sequences=True, return_state=True
    )
    m = torch.nn.RNN(F, u, nonlinearity=activation, batch_first=True).double()
    m.load_state_dict(
        {"weight_ih_l0": _t(W.T), "weight_hh_l0": _t(U.T), "bias_ih_l0": _t(b), "bias_hh_l0": _t(np.zeros(u))}
    )
    yt, ht = m(_t(x), _t(h0)[None])
    assert _maxdiff(y, yt.detach()) < 1e-12
    assert _maxdiff(h, ht[0].detach()) < 1e-12
    cell = R.keras_simple_rnn_cell(x[:, 0], h0, W, U, b, activation=activation)
    assert _maxdiff(cell, yt[:, 0].detach()) < 1e-12


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_keras_bidirectional_gru_matches_torch(merge_mode):
    rng = _rng(7)
    x = rng.normal(size=(2, 5, 3))
    fw = _keras_gru_weights(rng, 3, 4)
    bw = _keras_gru_weights(rng, 3, 4)
    out = R.keras_bidirectional_family(
        "gru", x, fw, bw, merge_mode=merge_mode, return_sequences=True, return_state=True
    )
    m = torch.nn.GRU(3, 4, batch_first=True, bidirectional=True).double()
    sd = {k: _t(v) for k, v in R.keras_gru_to_torch(*fw).items()}
    sd.update({k + "_reverse": _t(v) for k, v in R.keras_gru_to_torch(*bw).items()})
    m.load_state_dict(sd)
    yt, ht = m(_t(x))
    yf, yb = yt[..., :4].detach().numpy(), yt[..., 4:].detach().numpy()
    expected = {
        "concat": [np.concatenate([yf, yb], -1)],
        "sum": [yf + yb],
        "mul": [yf * yb],
        "ave": [(yf + yb) / 2],
        None: [yf, yb],
    }[merge_mode]
    n = len(expected)
    for got, exp in zip(out[:n], expected):
        assert _maxdiff(got, exp) < 1e-12
    assert _maxdiff(out[n], ht[0].detach()) < 1e-12
    assert _maxdiff(out[n + 1], ht[1].detach()) < 1e-12


def test_keras_bidirectional_simple_rnn_matches_torch():
    rng = _rng(16)
    x = rng.normal(size=(2, 5, 3))
    fw = [rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4) * 0.5]
    bw = [rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4, 4)) * 0.5, rng.normal(size=4) * 0.5]
    h0 = [rng.normal(size=(2, 4)), rng.normal(size=(2, 4))]
    y, h_f, h_b = R.keras_bidirectional_family(
        "simple_rnn", x, fw, bw, return_sequences=True, return_state=True, initial_state=h0
    )
    m = torch.nn.RNN(3, 4, batch_first=True, bidirectional=True).double()
    sd = {}
    for suffix, (W, U, b) in (("", fw), ("_reverse", bw)):
        sd.update(
            {
                f"weight_ih_l0{suffix}": _t(W.T),
                f"weight_hh_l0{suffix}": _t(U.T),
                f"bias_ih_l0{suffix}": _t(b),
                f"bias_hh_l0{suffix}": _t(np.zeros(4)),
            }
        )
    m.load_state_dict(sd)
    yt, ht = m(_t(x), _t(np.stack(h0)))
    assert _maxdiff(y, yt.detach()) < 1e-12
    assert _maxdiff(h_f, ht[0].detach()) < 1e-12 and _maxdiff(h_b, ht[1].detach()) < 1e-12


def _ms_params_from_torch(m: torch.nn.Module) -> Dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("kind", ["gru", "tanh", "relu"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False), (2, True, True), (3, False, True)])
def test_mindspore_family_exact_matches_torch(kind, num_layers, bidirectional, batch_first):
    torch.manual_seed(num_layers * 10 + int(bidirectional))
    I, H, T, B = 4, 5, 6, 3
    D = 2 if bidirectional else 1
    if kind == "gru":
        m = torch.nn.GRU(I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional).double()
    else:
        m = torch.nn.RNN(
            I, H, num_layers, nonlinearity=kind, batch_first=batch_first, bidirectional=bidirectional
        ).double()
    params = _ms_params_from_torch(m)
    rng = _rng(8)
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I))
    hx = rng.normal(size=(num_layers * D, B, H))
    yt, ht = m(_t(x), _t(hx))
    if kind == "gru":
        o, h = R.mindspore_gru(
            x, params, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, hx=hx
        )
    else:
        o, h = R.mindspore_rnn(
            x,
            params,
            nonlinearity=kind,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            hx=hx,
        )
    assert _maxdiff(o, yt.detach()) < 1e-12
    assert _maxdiff(h, ht.detach()) < 1e-12


@pytest.mark.parametrize("kind", ["gru", "tanh"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_mindspore_family_seq_length_matches_packed_sequences(kind, bidirectional):
    torch.manual_seed(3)
    I, H, T, B = 3, 4, 6, 4
    D = 2 if bidirectional else 1
    cls = torch.nn.GRU if kind == "gru" else torch.nn.RNN
    extra = {} if kind == "gru" else {"nonlinearity": "tanh"}
    m = cls(I, H, 2, bidirectional=bidirectional, **extra).double()
    params = _ms_params_from_torch(m)
    rng = _rng(9)
    x = rng.normal(size=(T, B, I))
    hx = rng.normal(size=(2 * D, B, H))
    lengths = np.array([6, 2, 5, 1])
    packed = torch.nn.utils.rnn.pack_padded_sequence(_t(x), torch.tensor(lengths), enforce_sorted=False)
    yp, ht = m(packed, _t(hx))
    yt, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=T)
    fn = R.mindspore_gru if kind == "gru" else R.mindspore_rnn
    o, h = fn(x, params, num_layers=2, bidirectional=bidirectional, hx=hx, seq_length=lengths)
    assert _maxdiff(o, yt.detach()) < 1e-12
    assert _maxdiff(h, ht.detach()) < 1e-12
    assert np.all(o[2:, 1] == 0.0)  # exact zeros after the length


def test_mindspore_seq_length_zero_keeps_h0_and_rejects_bad_lengths():
    rng = _rng(10)
    m = torch.nn.GRU(2, 3, bidirectional=True).double()
    params = _ms_params_from_torch(m)
    x = rng.normal(size=(4, 2, 2))
    hx = rng.normal(size=(2, 2, 3))
    o, h = R.mindspore_gru(x, params, bidirectional=True, hx=hx, seq_length=[0, 4])
    assert np.all(o[:, 0] == 0.0)
    assert _maxdiff(h[:, 0], hx[:, 0]) == 0.0
    with pytest.raises(ValueError, match="Invalid seq_lengths"):
        R.mindspore_gru(x, params, bidirectional=True, seq_length=[5, 1])
    uni = _ms_params_from_torch(torch.nn.GRU(2, 3).double())
    clamped = R.mindspore_gru(x, uni, seq_length=[9, 4])  # unidirectional: clamped, as MindSpore does
    assert _maxdiff(clamped[0], R.mindspore_gru(x, uni)[0]) == 0.0


def test_mindspore_cells_match_torch_cells():
    torch.manual_seed(4)
    rng = _rng(11)
    x = rng.normal(size=(3, 4))
    h = rng.normal(size=(3, 5))
    g = torch.nn.GRUCell(4, 5).double()
    got = R.mindspore_gru_cell(x, h, _ms_params_from_torch(g))
    assert _maxdiff(got, g(_t(x), _t(h)).detach()) < 1e-12
    for nl in ("tanh", "relu"):
        c = torch.nn.RNNCell(4, 5, nonlinearity=nl).double()
        got = R.mindspore_rnn_cell(x, h, _ms_params_from_torch(c), nonlinearity=nl)
        assert _maxdiff(got, c(_t(x), _t(h)).detach()) < 1e-12


# =============================================================================================
# 2. masks and dropout masks (closed forms)
# =============================================================================================


def test_keras_family_mask_rule():
    """Masked steps keep the state and repeat the previous output (0 before any valid step); with
    zero_output_for_mask they emit 0. The state equals a run over the kept steps only."""
    rng = _rng(12)
    x = rng.normal(size=(1, 5, 3))
    W, U, b = _keras_gru_weights(rng, 3, 4)
    h0 = rng.normal(size=(1, 4))
    mask = np.array([[0, 1, 0, 1, 0]], dtype=bool)
    y, h = R.keras_gru(x, W, U, b, mask=mask, initial_state=[h0], return_sequences=True, return_state=True)
    kept, hk = R.keras_gru(x[:, [1, 3]], W, U, b, initial_state=[h0], return_sequences=True, return_state=True)
    assert np.all(y[0, 0] == 0.0)
    assert _maxdiff(y[0, 1], kept[0, 0]) == 0.0 and _maxdiff(y[0, 2], kept[0, 0]) == 0.0
    assert _maxdiff(y[0, 3], kept[0, 1]) == 0.0 and _maxdiff(y[0, 4], kept[0, 1]) == 0.0
    assert _maxdiff(h, hk) == 0.0
    yz = R.keras_gru(x, W, U, b, mask=mask, initial_state=[h0], return_sequences=True, zero_output_for_mask=True)
    assert np.all(yz[0, [0, 2, 4]] == 0.0)
    Ws, Us, bs = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)), rng.normal(size=4)
    _, hs = R.keras_simple_rnn(x, Ws, Us, bs, mask=np.zeros((1, 5)), initial_state=h0, return_state=True)
    assert _maxdiff(hs, h0) == 0.0  # fully masked: h = h0


def test_keras_gru_dropout_masks_per_gate_and_shared():
    rng = _rng(13)
    B, T, F, u = 2, 4, 3, 4
    x = rng.normal(size=(B, T, F))
    W, U, b = _keras_gru_weights(rng, F, u)
    shared = (rng.random((1, B, F)) > 0.3) / 0.7
    # one shared input mask (implementation 2) == running on x * mask
    y1 = R.keras_gru(x, W, U, b, input_masks=shared, return_sequences=True)
    y2 = R.keras_gru(x * shared[0][:, None, :], W, U, b, return_sequences=True)
    assert _maxdiff(y1, y2) < 1e-14
    # three masks (implementation 1) are really used per gate
    per_gate = (rng.random((3, B, F)) > 0.3) / 0.7
    y3 = R.keras_gru(x, W, U, b, input_masks=per_gate, return_sequences=True)
    y4 = R.keras_gru(x, W, U, b, input_masks=per_gate[[1, 0, 2]], return_sequences=True)
    assert _maxdiff(y3, y4) > 1e-3
    # the recurrent mask only enters the matmuls: an all-ones mask is a no-op, zeros on the h gate differ
    ones = np.ones((3, B, u))
    assert (
        _maxdiff(
            R.keras_gru(x, W, U, b, recurrent_masks=ones, return_sequences=True),
            R.keras_gru(x, W, U, b, return_sequences=True),
        )
        == 0.0
    )
    with pytest.raises(ValueError, match="input_masks must have shape"):
        R.keras_gru(x, W, U, b, input_masks=np.ones((4, B, F)))


def test_keras_gru_to_torch_refuses_reset_before():
    rng = _rng(14)
    W, U, b = _keras_gru_weights(rng, 3, 4, reset_after=False)
    with pytest.raises(ValueError, match="reset_after=False has no PyTorch equivalent"):
        R.keras_gru_to_torch(W, U, b)


# =============================================================================================
# 3. recorded real-framework outputs (tools/probe_family.py --record)
# =============================================================================================


def _fixtures(prefix: str) -> List[Path]:
    return sorted(p for p in FAMILY.glob("*.npz") if p.name.startswith(prefix))


def _load(path: Path):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays.pop("config")))
    return arrays, config


def _keras_case_oracle(arrays: Dict[str, np.ndarray], config: Dict[str, Any], hard_sigmoid: str) -> List[np.ndarray]:
    kw = {
        k: v
        for k, v in config["kw"].items()
        if k
        not in ("dropout", "recurrent_dropout", "implementation", "activation", "recurrent_activation", "reset_after")
    }
    rec_act = config.get("recurrent_activation")
    if rec_act == "hard_sigmoid":
        rec_act = hard_sigmoid
    w = [arrays[f"w:{i}"] for i in range(len(config["weight_shapes"]))]
    init = [arrays["h0"]] if "h0" in arrays else None
    if config["layer"] in ("gru", "gru_v1"):
        out = R.keras_gru(
            arrays["x"],
            w[0],
            w[1],
            w[2] if len(w) > 2 else None,
            reset_after=config["reset_after"],
            activation=config["activation"],
            recurrent_activation=rec_act,
            mask=arrays.get("mask"),
            initial_state=init,
            input_masks=arrays.get("input_masks"),
            recurrent_masks=arrays.get("recurrent_masks"),
            **kw,
        )
    elif config["layer"] == "simple_rnn":
        out = R.keras_simple_rnn(
            arrays["x"],
            w[0],
            w[1],
            w[2] if len(w) > 2 else None,
            activation=config["activation"],
            mask=arrays.get("mask"),
            initial_state=init,
            **kw,
        )
    else:
        out = R.keras_bidirectional_family(
            "gru",
            arrays["x"],
            w[:3],
            w[3:],
            reset_after=config["reset_after"],
            activation=config["activation"],
            recurrent_activation=rec_act,
            mask=arrays.get("mask"),
            **kw,
        )
    return list(out) if isinstance(out, list) else [out]


def test_family_fixture_counts():
    assert len(_fixtures("tk_")) == 8
    assert len(_fixtures("k3_")) == 3
    assert len(_fixtures("ms_")) == 7
    assert sum(p.stat().st_size for p in FAMILY.glob("*.npz")) < 200_000


@pytest.mark.parametrize("path", _fixtures("tk_") + _fixtures("k3_"), ids=lambda p: p.stem)
def test_keras_fixture_matches_oracle(path):
    arrays, config = _load(path)
    own = "hard_sigmoid" if config["generation"] == "tfkeras" else "hard_sigmoid_keras3"
    ref = _keras_case_oracle(arrays, config, own)
    n_out = len([k for k in arrays if k.startswith("out:")])
    assert len(ref) == n_out
    for i, r in enumerate(ref):
        assert _maxdiff(arrays[f"out:{i}"], r) < 1e-5, f"{path.stem} out:{i}"
    if config.get("recurrent_activation") == "hard_sigmoid":  # the other generation's hard_sigmoid is wrong
        other = "hard_sigmoid_keras3" if own == "hard_sigmoid" else "hard_sigmoid"
        wrong = _keras_case_oracle(arrays, config, other)
        assert max(_maxdiff(arrays[f"out:{i}"], r) for i, r in enumerate(wrong)) > 1e-3


def test_tfkeras_v1_gru_defaults_recorded():
    arrays, config = _load(FAMILY / "tk_gru_v1_defaults.npz")
    assert (config["recurrent_activation"], config["reset_after"], config["implementation"]) == (
        "hard_sigmoid",
        False,
        1,
    )
    assert config["weight_shapes"][2] == [12]  # one bias row


def test_tfkeras_dropout_fixture_needs_the_per_gate_masks():
    arrays, config = _load(FAMILY / "tk_gru_dropout_impl1.npz")
    assert arrays["input_masks"].shape[0] == 3 and arrays["recurrent_masks"].shape[0] == 3
    assert np.any(arrays["input_masks"] == 0) and np.any(arrays["recurrent_masks"] == 0)
    shared = dict(arrays, input_masks=arrays["input_masks"][:1], recurrent_masks=arrays["recurrent_masks"][:1])
    assert _maxdiff(arrays["out:0"], _keras_case_oracle(shared, config, "hard_sigmoid")[0]) > 1e-3


def _ms_case(arrays: Dict[str, np.ndarray], config: Dict[str, Any], numerics: str):
    params = {k[len("param:") :]: v for k, v in arrays.items() if k.startswith("param:")}
    kw = {k: v for k, v in config["kw"].items() if k != "has_bias"}
    if config["cls"] in ("GRUCell", "RNNCell"):
        fn = R.mindspore_gru_cell if config["cls"] == "GRUCell" else R.mindspore_rnn_cell
        h = arrays["hx"].astype(np.float64)
        outs = []
        for t in range(arrays["x"].shape[0]):
            h = fn(arrays["x"][t], h, params, numerics=numerics)
            outs.append(h)
        return [np.stack(outs)]
    fn = R.mindspore_gru if config["cls"] == "GRU" else R.mindspore_rnn
    o, h = fn(arrays["x"], params, hx=arrays.get("hx"), seq_length=arrays.get("seq_length"), numerics=numerics, **kw)
    return [o, h]


@pytest.mark.parametrize("path", _fixtures("ms_"), ids=lambda p: p.stem)
def test_mindspore_fixture_matches_emulated_numerics(path):
    arrays, config = _load(path)
    emulated = _ms_case(arrays, config, "mindspore-cpu")
    exact = _ms_case(arrays, config, "exact")
    for i, (e, x) in enumerate(zip(emulated, exact)):
        got = arrays[f"out:{i}"]
        assert _maxdiff(got, e) == 0.0, f"{path.stem} out:{i} vs mindspore-cpu (bit-exact on B >= 2)"
        # exact math is only close: up to 3.8e-4 here (RNNCell, tanh cut at ±5 compounding over 5 steps)
        assert _maxdiff(got, x) < 1e-3, f"{path.stem} out:{i} vs exact"


def test_mindspore_cpu_gru_without_seq_length_is_approximate():
    """MindSpore's CPU nn.GRU runs its op-by-op loop even without seq_length (unlike nn.LSTM): exact math is
    off by ~1e-4 on this case, the emulated Sigmoid/Tanh reproduce it bit for bit."""
    arrays, config = _load(FAMILY / "ms_gru_plain_scale3.npz")
    assert "seq_length" not in arrays
    emulated = _ms_case(arrays, config, "mindspore-cpu")
    exact = _ms_case(arrays, config, "exact")
    assert _maxdiff(arrays["out:0"], emulated[0]) == 0.0
    assert _maxdiff(arrays["out:0"], exact[0]) > 1e-5


def test_mindspore_emulation_needs_its_matmul_order(monkeypatch):
    """With reductions longer than 8 (I = 20, H = 16) MindSpore's CPU MatMul sums in 16 FMA lanes: the oracle's
    ms_cpu_matmul_nt reproduces it bit for bit, NumPy's float32 GEMM does not."""
    arrays, config = _load(FAMILY / "ms_gru_wide_bi_seq.npz")
    assert _maxdiff(arrays["out:0"], _ms_case(arrays, config, "mindspore-cpu")[0]) == 0.0
    monkeypatch.setattr(R, "_ms_matmul", lambda a, w: (a @ w.T).astype(a.dtype))
    assert _maxdiff(arrays["out:0"], _ms_case(arrays, config, "mindspore-cpu")[0]) > 0.0


def test_ms_cpu_matmul_nt_rule():
    """K <= 8: one FMA chain; K >= 9: 16 lanes + halving tree (docs/spec/mindspore_gru_rnn.md §3.3)."""
    rng = _rng(15)
    a = rng.normal(size=(3, 8)).astype(np.float32)
    w = rng.normal(size=(5, 8)).astype(np.float32)
    chain = np.zeros((3, 5), np.float32)
    for k in range(8):
        chain = (a[:, k : k + 1].astype(np.float64) * w[:, k].astype(np.float64) + chain).astype(np.float32)
    assert np.array_equal(R.ms_cpu_matmul_nt(a, w), chain)
    a = rng.normal(size=(3, 40)).astype(np.float32)
    w = rng.normal(size=(5, 40)).astype(np.float32)
    got = R.ms_cpu_matmul_nt(a, w)
    assert got.dtype == np.float32
    assert _maxdiff(got, a.astype(np.float64) @ w.T.astype(np.float64)) < 1e-5


def test_package_ms_cpu_activations_equal_the_oracle_bit_for_bit():
    """The emulation the engine will use for numerics="mindspore-cpu" (lstm_bridge.activations) is the oracle's."""
    from lstm_bridge import activations as A

    x = np.concatenate(
        [np.linspace(-100, 100, 40001, dtype=np.float32), _rng(17).normal(0, 4, 20000).astype(np.float32)]
    )
    assert np.array_equal(A.ms_cpu_sigmoid(torch.tensor(x)).numpy(), R.ms_cpu_sigmoid(x))
    assert np.array_equal(A.ms_cpu_tanh(torch.tensor(x)).numpy(), R.ms_cpu_tanh(x))
