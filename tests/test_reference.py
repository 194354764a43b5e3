"""Validate the NumPy float64 oracle (``tests/oracle.py``) against reality.

Ground truths, none of them the oracle itself:
* ``torch.nn.LSTM`` / ``LSTMCell`` in float64 (and packed sequences for ``seq_length``);
* outputs written by real MindSpore 2.10 and real Keras (K3 3.15.1, tf_keras 2.21) in ``tests/fixtures``;
* the spec's measured values and closed-form hand computations for the masking table.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_bridge import activations as A

import oracle as R

FIX = Path(__file__).parent / "fixtures"
MS = FIX / "mindspore"
KERAS = FIX / "keras"


def _maxdiff(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# =============================================================================================
# 1. against torch.nn.LSTM in float64
# =============================================================================================


def _torch_lstm(I, H, L, bi, bias, batch_first, seed):
    torch.manual_seed(seed)
    net = torch.nn.LSTM(I, H, L, bias=bias, batch_first=batch_first, bidirectional=bi).double()
    with torch.no_grad():  # uneven weights: default init is too small to expose gate-order bugs
        for p in net.parameters():
            p.uniform_(-0.9, 0.9)
    params = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return net, params


@pytest.mark.parametrize(
    "layers,bi,bias,batch_first,with_hx",
    list(itertools.product([1, 2, 3], [False, True], [True, False], [False, True], [False, True])),
)
def test_mindspore_lstm_matches_torch_float64(layers, bi, bias, batch_first, with_hx):
    I, H, T, B = 3, 4, 5, 3
    seed = hash((layers, bi, bias, batch_first, with_hx)) % 1000
    net, params = _torch_lstm(I, H, layers, bi, bias, batch_first, seed)
    rng = _rng(seed)
    x = rng.normal(size=(B, T, I) if batch_first else (T, B, I)) * 1.5
    D = 2 if bi else 1
    hx = None
    if with_hx:
        hx = (rng.normal(size=(layers * D, B, H)), rng.normal(size=(layers * D, B, H)))
    with torch.no_grad():
        if hx is None:
            y_t, (h_t, c_t) = net(torch.from_numpy(x))
        else:
            y_t, (h_t, c_t) = net(torch.from_numpy(x), tuple(torch.from_numpy(a) for a in hx))
    y, (h, c) = R.mindspore_lstm(x, params, num_layers=layers, bidirectional=bi, batch_first=batch_first, hx=hx)
    assert y.dtype == np.float64
    assert _maxdiff(y, y_t.numpy()) <= 1e-12
    assert _maxdiff(h, h_t.numpy()) <= 1e-12
    assert _maxdiff(c, c_t.numpy()) <= 1e-12


@pytest.mark.parametrize("bi", [False, True])
def test_mindspore_seq_length_matches_torch_packed_sequence(bi):
    """seq_length = PyTorch packed-sequence semantics (docs/spec/mindspore_lstm.md §4), float64."""
    I, H, L, T = 3, 4, 2, 6
    net, params = _torch_lstm(I, H, L, bi, True, False, 7 + bi)
    rng = _rng(11)
    lengths = np.array([6, 3, 1, 4])
    B = len(lengths)
    x = rng.normal(size=(T, B, I))
    D = 2 if bi else 1
    h0, c0 = rng.normal(size=(L * D, B, H)), rng.normal(size=(L * D, B, H))
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), enforce_sorted=False
    )
    with torch.no_grad():
        out_p, (h_t, c_t) = net(packed, (torch.from_numpy(h0), torch.from_numpy(c0)))
    y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=T)
    y, (h, c) = R.mindspore_lstm(x, params, num_layers=L, bidirectional=bi, hx=(h0, c0), seq_length=lengths)
    assert _maxdiff(y, y_t.numpy()) <= 1e-12
    assert _maxdiff(h, h_t.numpy()) <= 1e-12
    assert _maxdiff(c, c_t.numpy()) <= 1e-12
    for b, Lb in enumerate(lengths):  # padded outputs are exactly 0
        assert np.all(y[Lb:, b] == 0.0)


@pytest.mark.parametrize("bias", [True, False])
def test_mindspore_lstm_cell_matches_torch(bias):
    torch.manual_seed(3)
    cell = torch.nn.LSTMCell(3, 5, bias=bias).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-1.0, 1.0)
    params = {k: v.detach().numpy() for k, v in cell.state_dict().items()}
    rng = _rng(5)
    x, h0, c0 = rng.normal(size=(4, 3)), rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    with torch.no_grad():
        h_t, c_t = cell(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    h, c = R.mindspore_lstm_cell(x, (h0, c0), params)
    assert _maxdiff(h, h_t.numpy()) <= 1e-12
    assert _maxdiff(c, c_t.numpy()) <= 1e-12


def _keras_from_torch(params, suffix=""):
    """torch weights -> Keras [kernel (I,4H), recurrent_kernel (H,4H), bias (4H,)] (docs/spec/keras_lstm.md §1)."""
    w_ih, w_hh = params["weight_ih_l0" + suffix], params["weight_hh_l0" + suffix]
    b = params.get("bias_ih_l0" + suffix)
    bias = None if b is None else b + params["bias_hh_l0" + suffix]
    return [w_ih.T.copy(), w_hh.T.copy(), bias]


@pytest.mark.parametrize(
    "bias,go_backwards,time_major,with_state",
    list(itertools.product([True, False], [False, True], [False, True], [False, True])),
)
def test_keras_lstm_matches_torch(bias, go_backwards, time_major, with_state):
    I, H, T, B = 4, 3, 6, 2
    net, params = _torch_lstm(I, H, 1, False, bias, True, 21)
    rng = _rng(22)
    x = rng.normal(size=(B, T, I))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    x_run = x[:, ::-1].copy() if go_backwards else x  # go_backwards == forward LSTM on x[:, ::-1]
    with torch.no_grad():
        if with_state:
            y_t, (h_t, c_t) = net(torch.from_numpy(x_run), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
        else:
            y_t, (h_t, c_t) = net(torch.from_numpy(x_run))
    k = _keras_from_torch(params)
    xin = x.transpose(1, 0, 2) if time_major else x
    seq, h, c = R.keras_lstm(
        xin,
        *k,
        initial_state=[h0, c0] if with_state else None,
        go_backwards=go_backwards,
        return_sequences=True,
        return_state=True,
        time_major=time_major,
    )
    if time_major:
        seq = seq.transpose(1, 0, 2)
    assert _maxdiff(seq, y_t.numpy()) <= 1e-12
    assert _maxdiff(h, h_t.numpy()[0]) <= 1e-12
    assert _maxdiff(c, c_t.numpy()[0]) <= 1e-12
    last = R.keras_lstm(
        xin, *k, initial_state=[h0, c0] if with_state else None, go_backwards=go_backwards, time_major=time_major
    )
    assert _maxdiff(last, h_t.numpy()[0]) <= 1e-12  # output == h without return_sequences


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_keras_bidirectional_matches_torch(merge_mode, return_sequences):
    I, H, T, B = 3, 4, 5, 2
    net, params = _torch_lstm(I, H, 1, True, True, True, 31)
    rng = _rng(32)
    x = rng.normal(size=(B, T, I))
    init = [rng.normal(size=(B, H)) for _ in range(4)]  # [h_f, c_f, h_b, c_b]
    h0 = torch.from_numpy(np.stack([init[0], init[2]]))
    c0 = torch.from_numpy(np.stack([init[1], init[3]]))
    with torch.no_grad():
        y_t, (h_t, c_t) = net(torch.from_numpy(x), (h0, c0))
    y_t = y_t.numpy()
    if return_sequences:
        yf, yb = y_t[..., :H], y_t[..., H:]
    else:  # forward's last output; backward's output after x[:, 0]
        yf, yb = y_t[:, -1, :H], y_t[:, 0, H:]
    expected = {"concat": np.concatenate([yf, yb], -1), "sum": yf + yb, "mul": yf * yb, "ave": (yf + yb) / 2}
    res = R.keras_bidirectional(
        x,
        _keras_from_torch(params),
        _keras_from_torch(params, "_reverse"),
        merge_mode=merge_mode,
        return_sequences=return_sequences,
        return_state=True,
        initial_state=init,
    )
    if merge_mode is None:
        assert len(res) == 6
        assert _maxdiff(res[0], yf) <= 1e-12 and _maxdiff(res[1], yb) <= 1e-12
        states = res[2:]
    else:
        assert len(res) == 5
        assert _maxdiff(res[0], expected[merge_mode]) <= 1e-12
        states = res[1:]
    h_t, c_t = h_t.numpy(), c_t.numpy()
    for got, want in zip(states, [h_t[0], c_t[0], h_t[1], c_t[1]]):  # [h_f, c_f, h_b, c_b]
        assert _maxdiff(got, want) <= 1e-12


# =============================================================================================
# 2. against real MindSpore 2.10 outputs
# =============================================================================================


def _ms_params(npz, prefix="param:"):
    return {k[len(prefix) :]: npz[k] for k in npz.files if k.startswith(prefix)}


def _check_ms(got, npz, keys) -> float:
    """max |oracle - MindSpore| over output, h_n and c_n."""
    out, (h, c) = got
    return max(_maxdiff(out, npz[keys[0]]), _maxdiff(h, npz[keys[1]]), _maxdiff(c, npz[keys[2]]))


@pytest.mark.parametrize("tag", ["nohx", "hx"])
def test_ms_fixture_small_fused_path(tag):
    d = np.load(MS / "lstm_small_io.npz")
    hx = (d["h0"], d["c0"]) if tag == "hx" else None
    err = _check_ms(R.mindspore_lstm(d["x"], _ms_params(d), hx=hx), d, [f"out_{tag}", f"hn_{tag}", f"cn_{tag}"])
    assert err <= 1e-6  # measured 5.2e-8


@pytest.mark.parametrize("tag", ["nohx", "hx", "seqlen", "hx_seqlen"])
def test_ms_fixture_2layer_bidirectional(tag):
    d = np.load(MS / "lstm_2layer_bi_io.npz")
    kw = dict(num_layers=2, bidirectional=True, batch_first=True)
    if tag.startswith("hx"):
        kw["hx"] = (d["h0"], d["c0"])
    if tag.endswith("seqlen"):
        kw["seq_length"] = d["seq_length"]
    keys = [f"out_{tag}", f"hn_{tag}", f"cn_{tag}"]
    exact = _check_ms(R.mindspore_lstm(d["x"], _ms_params(d), **kw), d, keys)
    emu = _check_ms(R.mindspore_lstm(d["x"], _ms_params(d), numerics="mindspore-cpu", **kw), d, keys)
    if tag.endswith("seqlen"):
        assert exact <= 2e-4
        assert emu <= 1e-6  # measured 4.5e-8 (exact activations: 4.6e-7)
        assert emu < 0.5 * exact  # the CPU activation model is what closes the gap
    else:
        assert exact <= 1e-6 and emu == exact  # fused path: mindspore-cpu numerics do not apply


def test_ms_fixture_small_seq_length_bit_exact():
    d = np.load(MS / "lstm_small_io.npz")
    kw = dict(hx=(d["h0"], d["c0"]), seq_length=d["seq_length"])
    keys = ["out_hx_seqlen", "hn_hx_seqlen", "cn_hx_seqlen"]
    assert _check_ms(R.mindspore_lstm(d["x"], _ms_params(d), numerics="mindspore-cpu", **kw), d, keys) == 0.0
    exact = _check_ms(R.mindspore_lstm(d["x"], _ms_params(d), **kw), d, keys)
    assert 0.0 < exact <= 2e-4


def test_ms_fixture_seq_length_demo():
    d = np.load(MS / "seq_length_demo.npz")
    p = _ms_params(d, "param/")
    out, (h, c) = R.mindspore_lstm(d["x"], p, bidirectional=True, seq_length=d["seq_length"], numerics="mindspore-cpu")
    assert _maxdiff(out, d["output"]) == 0.0 and _maxdiff(h, d["h_n"]) == 0.0 and _maxdiff(c, d["c_n"]) == 0.0
    # docs/spec/mindspore_lstm.md §4: its printed numbers for batch 1 (length 2)
    np.testing.assert_allclose(out[:, 1, 3:][0], [0.281298, 0.034244, -0.138574], atol=1e-6)
    np.testing.assert_allclose(h[:, 1], [[0.04442, -0.118961, -0.059799], [0.281298, 0.034244, -0.138574]], atol=1e-6)
    assert np.all(out[2:, 1] == 0.0)
    out_x, (h_x, _) = R.mindspore_lstm(d["x"], p, bidirectional=True, seq_length=d["seq_length"])
    assert _maxdiff(out_x, d["output"]) <= 2e-4
    # a reverse direction run over the full padded sequence would give the spec's counter-example
    _, (h_full, _) = R.mindspore_lstm(d["x"], p, bidirectional=True)
    np.testing.assert_allclose(h_full[1, 1], [0.325546, 0.03117, -0.18439], atol=2e-4)


@pytest.mark.parametrize("numerics,tol", [("mindspore-cpu", 0.0), ("exact", 2e-4)])
def test_ms_fixture_lstmcell(numerics, tol):
    d = np.load(MS / "lstmcell_io.npz")
    p = _ms_params(d)
    h, c = d["h0"], d["c0"]
    errs = []
    for t in range(d["x"].shape[0]):
        h, c = R.mindspore_lstm_cell(d["x"][t], (h, c), p, numerics=numerics)
        errs += [_maxdiff(h, d["h_seq"][t]), _maxdiff(c, d["c_seq"][t])]
    assert max(errs) <= tol
    if numerics == "exact":
        assert max(errs) > 1e-7  # exact activations are measurably not what MindSpore's cell computes


def test_ms_fixture_long_stacked():
    d = np.load(MS / "lstm_long_io.npz")
    p = _ms_params(d)
    kw = dict(num_layers=2, bidirectional=True)
    fused = _check_ms(R.mindspore_lstm(d["x"], p, **kw), d, ["out_nohx", "hn_nohx", "cn_nohx"])
    assert fused <= 1e-6  # measured 1.8e-7
    keys = ["out_seqlen", "hn_seqlen", "cn_seqlen"]
    emu = _check_ms(R.mindspore_lstm(d["x"], p, seq_length=d["seq_length"], numerics="mindspore-cpu", **kw), d, keys)
    exact = _check_ms(R.mindspore_lstm(d["x"], p, seq_length=d["seq_length"], **kw), d, keys)
    assert emu <= 1e-6  # measured 1.8e-7
    assert exact <= 2e-4


@pytest.mark.parametrize("numerics,tol", [("mindspore-cpu", 1e-6), ("exact", 2e-4)])
def test_ms_fixture_embedding_bilstm_dense(numerics, tol):
    d = np.load(MS / "embed_lstm_dense_io.npz")
    p = _ms_params(d)
    emb = p["embedding.embedding_table"][d["ids"]]  # (B, T, 8)
    lstm_p = {k[len("lstm.") :]: v for k, v in p.items() if k.startswith("lstm.")}
    out, (h, _) = R.mindspore_lstm(
        emb, lstm_p, bidirectional=True, batch_first=True, seq_length=d["seq_length"], numerics=numerics
    )
    feat = np.concatenate([h[0], h[1]], axis=1)
    logits = feat @ p["dense.weight"].astype(np.float64).T + p["dense.bias"]
    assert _maxdiff(out, d["lstm_out"]) <= tol
    assert _maxdiff(logits, d["logits"]) <= tol


# =============================================================================================
# 3. MindSpore edge cases (docs/spec/mindspore_lstm.md §4), checked by hand
# =============================================================================================


def test_ms_seq_length_edge_cases():
    _, params = _torch_lstm(3, 4, 1, False, True, False, 41)
    rng = _rng(42)
    x = rng.normal(size=(5, 3, 3))
    h0, c0 = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 3, 4))
    out, (h, c) = R.mindspore_lstm(x, params, hx=(h0, c0), seq_length=np.array([0, 9, -2]))
    ref, (hr, cr) = R.mindspore_lstm(x, params, hx=(h0, c0))
    assert np.all(out[:, 0] == 0) and np.all(out[:, 2] == 0)  # length 0 (and negative -> 0)
    assert np.array_equal(h[0, 0], h0[0, 0]) and np.array_equal(c[0, 0], c0[0, 0])
    assert np.array_equal(h[0, 2], h0[0, 2]) and np.array_equal(c[0, 2], c0[0, 2])
    assert _maxdiff(out[:, 1], ref[:, 1]) <= 1e-15 and _maxdiff(h[0, 1], hr[0, 1]) <= 1e-15  # 9 > T clamps to T
    _, pbi = _torch_lstm(3, 4, 1, True, True, False, 43)
    for bad in ([6, 1, 1], [1, -1, 1]):
        with pytest.raises(ValueError, match="Invalid seq_lengths"):
            R.mindspore_lstm(x, pbi, bidirectional=True, seq_length=np.array(bad))
    # bidirectional length 0: zeros and h0/c0 in both directions
    h0b, c0b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    out, (h, c) = R.mindspore_lstm(x, pbi, bidirectional=True, hx=(h0b, c0b), seq_length=np.array([0, 5, 2]))
    assert np.all(out[:, 0] == 0) and np.array_equal(h[:, 0], h0b[:, 0]) and np.array_equal(c[:, 0], c0b[:, 0])


def test_ms_errors_name_expected_and_received():
    _, params = _torch_lstm(3, 4, 1, True, True, False, 44)
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"\(2, 2, 4\).*\(1, 2, 4\)"):
        R.mindspore_lstm(x, params, bidirectional=True, hx=(np.zeros((1, 2, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(ValueError, match="numerics"):
        R.mindspore_lstm(x, params, bidirectional=True, numerics="fast")
    with pytest.raises(ValueError, match=r"seq_length must have shape \(2,\)"):
        R.mindspore_lstm(x, params, bidirectional=True, seq_length=np.array([1, 2, 3]))
    with pytest.raises(KeyError, match="weight_ih_l0_reverse"):
        R.mindspore_lstm(x, {k: v for k, v in params.items() if "reverse" not in k}, bidirectional=True)


# =============================================================================================
# 4. against real Keras outputs (weights read from the .weights.h5 files with h5py)
# =============================================================================================

h5py = pytest.importorskip("h5py")


def _vars(f, path):
    g = f[path]
    return [np.asarray(g[str(i)]) for i in range(len(g.keys()))]


@pytest.mark.parametrize(
    "prefix,rec_act,wrong",
    [("keras3", "hard_sigmoid_keras3", "hard_sigmoid"), ("tfkeras", "hard_sigmoid", "hard_sigmoid_keras3")],
)
def test_keras_fixture_hard_sigmoid(prefix, rec_act, wrong):
    x = np.load(KERAS / f"{prefix}_lstm_hard_sigmoid_input.npy")
    y = np.load(KERAS / f"{prefix}_lstm_hard_sigmoid_output.npy")
    with h5py.File(KERAS / f"{prefix}_lstm_hard_sigmoid.weights.h5", "r") as f:
        w = _vars(f, "layers/lstm/cell/vars")
    assert _maxdiff(R.keras_lstm(x, *w, recurrent_activation=rec_act), y) <= 1e-5
    assert _maxdiff(R.keras_lstm(x, *w, recurrent_activation=wrong), y) > 1e-3  # the other definition is wrong


@pytest.mark.parametrize("prefix", ["keras3", "tfkeras"])
def test_keras_fixture_embedding_mask_zero(prefix):
    ids = np.load(KERAS / f"{prefix}_emb_lstm_dense_input.npy")
    y = np.load(KERAS / f"{prefix}_emb_lstm_dense_output.npy")
    with h5py.File(KERAS / f"{prefix}_emb_lstm_dense.weights.h5", "r") as f:
        (table,) = _vars(f, "layers/embedding/vars")
        lstm_w = _vars(f, "layers/lstm/cell/vars")
        dk, db = _vars(f, "layers/dense/vars")
    assert (ids == 0).any()  # the fixture really exercises the mask
    h = R.keras_lstm(table[ids], *lstm_w, mask=ids != 0)
    assert _maxdiff(h @ dk.astype(np.float64) + db, y) <= 1e-5
    h_nomask = R.keras_lstm(table[ids], *lstm_w)
    assert _maxdiff(h_nomask @ dk.astype(np.float64) + db, y) > 1e-4  # and the mask matters


@pytest.mark.parametrize("prefix", ["keras3", "tfkeras"])
def test_keras_fixture_bidirectional_stacked(prefix):
    x = np.load(KERAS / f"{prefix}_bilstm_stacked_input.npy")
    y = np.load(KERAS / f"{prefix}_bilstm_stacked_output.npy")
    with h5py.File(KERAS / f"{prefix}_bilstm_stacked.weights.h5", "r") as f:
        fw = _vars(f, "layers/bidirectional/forward_layer/cell/vars")
        bw = _vars(f, "layers/bidirectional/backward_layer/cell/vars")
        l1 = _vars(f, "layers/lstm/cell/vars")
        l2 = _vars(f, "layers/lstm_1/cell/vars")
        dk, db = _vars(f, "layers/dense/vars")
    s = R.keras_bidirectional(x, fw, bw, merge_mode="concat", return_sequences=True)
    s = R.keras_lstm(s, *l1, return_sequences=True)
    h = R.keras_lstm(s, *l2)
    assert _maxdiff(h @ dk.astype(np.float64) + db, y) <= 1e-5


# =============================================================================================
# 5. Keras masking table (docs/spec/keras_lstm.md §4), closed form
# =============================================================================================
# With kernel = recurrent_kernel = 0 and bias b, every step computes the same gates
# i, f, g, o = σ(b_i), σ(b_f), tanh(b_c), σ(b_o), so after n valid steps from c0:
#   c_n = f^n c0 + i g (1 - f^n) / (1 - f),   h_n = o tanh(c_n).

_B = np.array([0.3, -0.2, 0.7, 0.1])  # u = 1
_I, _F, _G, _O = 1 / (1 + np.exp(-0.3)), 1 / (1 + np.exp(0.2)), np.tanh(0.7), 1 / (1 + np.exp(-0.1))


def _closed_c(n, c0):
    return _F**n * c0 + _I * _G * (1 - _F**n) / (1 - _F)


def _closed_h(n, c0):
    return _O * np.tanh(_closed_c(n, c0))


def _run_table(mask_row, h0, c0, **kw):
    x = np.random.default_rng(0).normal(size=(1, len(mask_row), 2))  # ignored by a zero kernel
    return R.keras_lstm(
        x,
        np.zeros((2, 4)),
        np.zeros((1, 4)),
        _B,
        mask=np.array([mask_row]),
        initial_state=[np.array([[h0]]), np.array([[c0]])],
        return_sequences=True,
        return_state=True,
        **kw,
    )


@pytest.mark.parametrize("zero_output", [False, True])
@pytest.mark.parametrize("row", [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]])
def test_keras_masking_table_closed_form(row, zero_output):
    h0, c0 = 0.4, -0.6
    seq, h, c = _run_table(row, h0, c0, zero_output_for_mask=zero_output)
    expected, prev, n = [], 0.0, 0  # y_{-1} = 0, not h0
    for keep in row:
        if keep:
            n += 1
            y = _closed_h(n, c0)
        else:
            y = 0.0 if zero_output else prev
        expected.append(y)
        prev = y
    np.testing.assert_allclose(seq[0, :, 0], expected, atol=1e-14)
    n_valid = sum(row)
    want_h = h0 if n_valid == 0 else _closed_h(n_valid, c0)
    want_c = c0 if n_valid == 0 else _closed_c(n_valid, c0)
    assert abs(h[0, 0] - want_h) <= 1e-14 and abs(c[0, 0] - want_c) <= 1e-14
    if row == [0, 0, 0, 0, 0]:
        assert np.all(seq == 0) and h[0, 0] == h0  # fully masked: output 0 but h = h0 != 0
    if row == [0, 0, 1, 1, 1]:
        assert seq[0, 0, 0] == 0.0 and seq[0, 1, 0] == 0.0  # leading outputs are 0, not h0
    if row == [1, 1, 1, 0, 0] and not zero_output:
        assert seq[0, 3, 0] == seq[0, 2, 0] == seq[0, 4, 0]


def test_keras_masking_go_backwards_is_forward_on_flipped_input():
    rng = _rng(51)
    x = rng.normal(size=(3, 6, 2))
    w = [rng.normal(size=(2, 12)), rng.normal(size=(3, 12)), rng.normal(size=(12,))]
    mask = np.array([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    init = [rng.normal(size=(3, 3)), rng.normal(size=(3, 3))]
    a = R.keras_lstm(x, *w, mask=mask, initial_state=init, go_backwards=True, return_sequences=True, return_state=True)
    b = R.keras_lstm(x[:, ::-1], *w, mask=mask[:, ::-1], initial_state=init, return_sequences=True, return_state=True)
    for p, q in zip(a, b):
        assert np.array_equal(p, q)
    # right padding forward: outputs at padded steps repeat the last valid output; h = that output
    seq, h, _ = R.keras_lstm(x, *w, mask=mask, return_sequences=True, return_state=True)
    assert np.array_equal(seq[0, 4], seq[0, 3]) and np.array_equal(seq[0, 5], seq[0, 3])
    assert np.array_equal(h[0], seq[0, 3])


@pytest.mark.parametrize("row", [[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0]])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_keras_masking_matches_torch_on_valid_steps(row, go_backwards):
    """Spec §4 table with a real recurrence and h0 != 0: the valid steps, in processing order, are an
    unmasked torch run from (h0, c0); masked steps repeat the previous output (0 before the first)."""
    net, params = _torch_lstm(2, 3, 1, False, True, True, 61)
    rng = _rng(62)
    x = rng.normal(size=(1, 6, 2))
    h0, c0 = rng.normal(size=(1, 3)), rng.normal(size=(1, 3))
    seq, h, c = R.keras_lstm(
        x,
        *_keras_from_torch(params),
        mask=np.array([row]),
        initial_state=[h0, c0],
        go_backwards=go_backwards,
        return_sequences=True,
        return_state=True,
    )
    order = list(range(5, -1, -1)) if go_backwards else list(range(6))
    valid = [t for t in order if row[t]]
    if not valid:
        assert np.all(seq == 0) and np.array_equal(h, h0) and np.array_equal(c, c0)
        return
    with torch.no_grad():
        y_t, (h_t, c_t) = net(torch.from_numpy(x[:, valid]), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
    y_t = y_t.numpy()[0]
    expected, prev, j = [], np.zeros(3), 0
    for t in order:
        if row[t]:
            prev = y_t[j]
            j += 1
        expected.append(prev)
    assert _maxdiff(seq[0], np.array(expected)) <= 1e-12
    assert _maxdiff(h, h_t.numpy()[0]) <= 1e-12 and _maxdiff(c, c_t.numpy()[0]) <= 1e-12


def test_keras_bidirectional_masked_zeros_and_backward_skips_padding():
    net, params = _torch_lstm(2, 3, 1, True, True, True, 71)
    rng = _rng(72)
    x = rng.normal(size=(1, 6, 2))
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    out = R.keras_bidirectional(
        x, _keras_from_torch(params), _keras_from_torch(params, "_reverse"), mask=mask, return_sequences=True
    )
    with torch.no_grad():
        y_t, _ = net(torch.from_numpy(x[:, :4]))  # the valid prefix, both directions
    assert _maxdiff(out[:, :4], y_t.numpy()) <= 1e-12
    assert np.all(out[:, 4:] == 0.0)  # masked positions are 0 in both halves


# =============================================================================================
# 6. dropout masks (docs/spec/keras_lstm.md §5): a per-gate mask equal across the batch scales kernel rows
# =============================================================================================


def test_keras_dropout_masks_equal_scaled_kernel_blocks():
    rng = _rng(81)
    B, T, F, u = 3, 4, 5, 2
    x = rng.normal(size=(B, T, F))
    W, U, b = rng.normal(size=(F, 4 * u)), rng.normal(size=(u, 4 * u)), rng.normal(size=(4 * u,))
    vin = rng.uniform(0.0, 2.0, size=(4, F))
    vrec = rng.uniform(0.0, 2.0, size=(4, u))
    in_masks = np.broadcast_to(vin[:, None, :], (4, B, F))
    rec_masks = np.broadcast_to(vrec[:, None, :], (4, B, u))
    W2, U2 = W.copy(), U.copy()
    for g in range(4):  # (x*v)·W_g == x·(diag(v) W_g)
        W2[:, g * u : (g + 1) * u] *= vin[g][:, None]
        U2[:, g * u : (g + 1) * u] *= vrec[g][:, None]
    got = R.keras_lstm(x, W, U, b, input_masks=in_masks, recurrent_masks=rec_masks, return_sequences=True)
    want = R.keras_lstm(x, W2, U2, b, return_sequences=True)
    assert _maxdiff(got, want) <= 1e-13
    # one shared input mask == the same mask on every step of x
    m = rng.uniform(0.0, 2.0, size=(1, B, F))
    got1 = R.keras_lstm(x, W, U, b, input_masks=m, return_sequences=True)
    assert _maxdiff(got1, R.keras_lstm(x * m[0][:, None, :], W, U, b, return_sequences=True)) <= 1e-13
    assert _maxdiff(got1, R.keras_lstm(x, W, U, b, input_masks=np.repeat(m, 4, 0), return_sequences=True)) == 0
    with pytest.raises(ValueError, match=r"input_masks must have shape \(1 or 4, 3, 5\)"):
        R.keras_lstm(x, W, U, b, input_masks=np.ones((2, B, F)))


# =============================================================================================
# 7. activations
# =============================================================================================

_GRID = np.concatenate([np.linspace(-12.0, 12.0, 4801), [0.0, -2.5, 2.5, -3.0, 3.0]])

_TORCH_TWINS = [
    "sigmoid",
    "tanh",
    "relu",
    "linear",
    "softsign",
    "elu",
    "selu",
    "softplus",
    "exponential",
    "swish",
    "mish",
    "relu6",
    "leaky_relu",
    "gelu",
    "gelu_tanh",
    "hard_silu",
    "hard_tanh",
    "log_sigmoid",
    "celu",
    "tanh_shrink",
    "soft_shrink",
    "hard_shrink",
    "squareplus",
    "sparse_plus",
    "sparse_sigmoid",
    "softmax",
    "log_softmax",
]


@pytest.mark.parametrize("name", _TORCH_TWINS + ["hard_sigmoid", "hard_sigmoid_keras3"])
def test_np_activation_matches_torch_float64(name):
    tfn = A._BUILTINS[name]
    x = _GRID[:4800].reshape(-1, 6) if name in ("softmax", "log_softmax") else _GRID
    want = tfn(torch.from_numpy(x)).numpy()
    got = R.np_activation(name)(x)
    assert _maxdiff(got, want) <= 1e-12 * max(1.0, float(np.max(np.abs(want))))
    assert R.np_activation(tfn) is R.np_activation(name)  # Activation objects map by name


def test_np_activation_keras_hard_sigmoid_spot_values():
    x = np.array([-3, -2.9, -2.5, -2.4, -1, 0, 1, 2.4, 2.5, 2.9, 3])
    k2 = [0, 0, 0, 0.02, 0.3, 0.5, 0.7, 0.98, 1, 1, 1]
    k3 = [0, 0.01666665, 0.08333334, 0.09999999, 0.33333334, 0.5, 0.6666667, 0.90000004, 0.9166667, 0.98333335, 1]
    np.testing.assert_allclose(R.np_activation("hard_sigmoid")(x), k2, atol=1e-7)
    np.testing.assert_allclose(R.np_activation("hard_sigmoid_keras3")(x), k3, atol=1e-7)
    np.testing.assert_allclose(R.np_activation(None)(x), x)
    f = lambda v: 2 * v  # noqa: E731
    assert R.np_activation(f) is f
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        R.np_activation("nope")


def _f32_grid():
    return np.concatenate(
        [
            np.linspace(-100, 100, 400001, dtype=np.float32),
            np.linspace(-6, 6, 240001, dtype=np.float32),
            (_rng(91).standard_normal(100000) * 8).astype(np.float32),
            np.array([5.0, -5.0, 4.99, 5.0000005, 0.0, -0.0], dtype=np.float32),
        ]
    )


def test_ms_cpu_tanh_bit_exact_vs_torch_emulation():
    g = _f32_grid()
    got = R.ms_cpu_tanh(g)
    want = A.ms_cpu_tanh(torch.from_numpy(g)).numpy()
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.int32), want.view(np.int32))


# Real MindSpore 2.10 CPU (x86-64, AVX-512) outputs, float32 bit patterns (x, f(x)). The sigmoid
# points were chosen where an emulation with float64 constants is 1-2 ulp off.
_MS_SIGMOID_BITS = [
    (0xC13F851F, 0x36D47134),
    (0xC1351893, 0x374BC67B),
    (0xC12A47AE, 0x37C84EFE),
    (0xC128999A, 0x37DE7BED),
    (0xC1256666, 0x3807DEE3),
    (0xC1220000, 0x382809FA),
    (0xC101B22D, 0x399E2455),
    (0xC0EC6E98, 0x3A21FD38),
    (0xC0CE20C5, 0x3AD09905),
    (0xC091BE77, 0x3C2A8FBB),
    (0xC05C5A1D, 0x3CFDC626),
    (0xC0BACF42, 0x3B3E7F8F),
    (0xC0B57525, 0x3B610F2A),
    (0xC0B25E35, 0x3B77C939),
    (0xC0B14189, 0x3B8041BF),
    (0xC0B07B4A, 0x3B8362CA),
    (0xC09DD639, 0x3BEA8A0D),
    (0xC09B41F2, 0x3BFE12C2),
    (0xC096C505, 0x3C11FE33),
    (0xC091DF3B, 0x3C29E33E),
    (0xC08B2EB2, 0x3C50E242),
    (0xC08359B4, 0x3C84EF13),
    (0xC078E7D5, 0x3CA444EE),
    (0xC05C425B, 0x3CFE217F),
    (0xC02F59B4, 0x3D787926),
    (0xC02DBB30, 0x3D7E71BF),
    (0xC00DD7DC, 0x3DC94F87),
    (0xC000A64C, 0x3DF1F411),
    (0xBFF77319, 0x3E016E27),
    (0xBFF08E8A, 0x3E07A484),
    (0xBFB71C43, 0x3E45A530),
    (0x40586C54, 0x3F77957F),
    (0xBFA1C548, 0x3E619A2E),
    (0xC0F02E1C, 0x3A10182D),
    (0xC09EF06C, 0x3BE2A6FF),
    (0xC04C35DB, 0x3D21D952),
    (0xC1023296, 0x39994331),
    (0xC11F4C4E, 0x3846F37E),
    (0xC0FA5210, 0x39D1F397),
    (0xC13C8153, 0x37003EEA),
    (0xBF4F3B64, 0x3E9DB1C9),
    (0xC0A71CAC, 0x3BAFD72F),
    (0xC07F1759, 0x3C956961),
    (0x3BDED289, 0x3F006F69),
    (0x401D923A, 0x3F6BE362),
    (0x40962268, 0x3F7DAC6C),
    (0xC0964E29, 0x3C141B7C),
    (0xBF276075, 0x3EAF2BB0),
]
_MS_TANH_BITS = [
    (0xC0A00000, 0xBF800052),
    (0xC09FFBE7, 0xBF800050),
    (0xC09FF7CF, 0xBF80004F),
    (0xC09FF3B6, 0xBF80004D),
    (0xC06B9581, 0xBF7FAD4A),
    (0xC0BA978D, 0xBF800000),
    (0xC05BB15B, 0xBF7F77A3),
    (0xC00C76C9, 0xBF79B9BC),
    (0xBFAA8241, 0xBF5EA8B4),
    (0x3CF5C28F, 0x3CF5AFB1),
    (0x40A19E84, 0x3F800000),
    (0x402F978F, 0x3F7DE3BA),
    (0x3F68DB1B, 0x3F388F53),
    (0xBEEAFE94, 0xBEDBC64B),
    (0xBFE60F5D, 0xBF724FCF),
    (0xBF158D5A, 0xBF069475),
]


def _bits(pairs):
    a = np.array(pairs, dtype=np.uint32)
    return a[:, 0].view(np.float32), a[:, 1].view(np.float32)


@pytest.mark.parametrize("fn,pairs", [(R.ms_cpu_sigmoid, _MS_SIGMOID_BITS), (R.ms_cpu_tanh, _MS_TANH_BITS)])
def test_ms_cpu_activations_bit_exact_vs_real_mindspore(fn, pairs):
    x, want = _bits(pairs)
    got = fn(x)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_ms_cpu_sigmoid_bit_exact_vs_torch_emulation():
    g = _f32_grid()
    got = R.ms_cpu_sigmoid(g)
    want = A.ms_cpu_sigmoid(torch.from_numpy(g)).numpy()
    assert np.array_equal(got.view(np.int32), want.view(np.int32)), (
        f"{int(np.sum(got != want))} of {g.size} points differ"
    )


def test_ms_cpu_activation_spot_values_from_spec():
    t = R.ms_cpu_tanh(np.array([5.0, 4.99, -5.0, 5.01, -5.01, 0.0], dtype=np.float32))
    assert t[0] == np.float32(1.0000098) and t[1] == np.float32(1.0000064) and t[2] == np.float32(-1.0000098)
    assert t[3] == 1.0 and t[4] == -1.0 and t[5] == 0.0
    x = np.linspace(-20, 20, 200001).astype(np.float32)
    x64 = x.astype(np.float64)
    err_t = np.max(np.abs(R.ms_cpu_tanh(x) - np.tanh(x64)))
    err_s = np.max(np.abs(R.ms_cpu_sigmoid(x) - 1 / (1 + np.exp(-x64))))
    assert 0.9e-4 <= err_t <= 1.01e-4  # spec: max error 1.0e-4
    assert 1e-7 <= err_s <= 8.3e-7  # spec: max error 8.2e-7
    s = R.ms_cpu_sigmoid(np.array([-100.0, 100.0, 0.0], dtype=np.float32))
    assert s[0] == 0.0 and s[1] == 1.0 and s[2] == 0.5


def test_keras_time_major_is_a_transpose():
    rng = _rng(101)
    x = rng.normal(size=(2, 5, 3))
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)
    fw = [rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), rng.normal(size=(8,))]
    bw = [rng.normal(size=(3, 8)), rng.normal(size=(2, 8)), None]
    a = R.keras_lstm(x, *fw, mask=mask, return_sequences=True)
    b = R.keras_lstm(x.transpose(1, 0, 2), *fw, mask=mask.T, return_sequences=True, time_major=True)
    assert np.array_equal(a, b.transpose(1, 0, 2))
    a = R.keras_bidirectional(x, fw, bw, mask=mask, return_sequences=True, merge_mode="sum")
    b = R.keras_bidirectional(
        x.transpose(1, 0, 2), fw, bw, mask=mask.T, return_sequences=True, merge_mode="sum", time_major=True
    )
    assert np.array_equal(a, b.transpose(1, 0, 2))
    # separate backward activations are honoured
    c = R.keras_bidirectional(
        x, fw, bw, mask=mask, return_sequences=True, merge_mode=None, backward_recurrent_activation="hard_sigmoid"
    )
    y_b = R.keras_lstm(
        x,
        *bw,
        mask=mask,
        recurrent_activation="hard_sigmoid",
        go_backwards=True,
        return_sequences=True,
        zero_output_for_mask=True,
    )[:, ::-1]
    assert np.array_equal(c[1], y_b)


def test_keras_errors_name_expected_and_received():
    x = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match=r"kernel must have shape \(3, 8\); received \(4, 8\)"):
        R.keras_lstm(x, np.zeros((4, 8)), np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"initial_state\[0\] \(h0\) must have shape \(2, 2\)"):
        R.keras_lstm(x, np.zeros((3, 8)), np.zeros((2, 8)), initial_state=[np.zeros((1, 2)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="merge_mode"):
        R.keras_bidirectional(
            x, [np.zeros((3, 8)), np.zeros((2, 8))], [np.zeros((3, 8)), np.zeros((2, 8))], merge_mode="max"
        )
