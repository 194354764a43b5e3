"""ONNX export of the recurrent family (lstm_bridge.formats.onnx): ONNX ``GRU`` (linear_before_reset 1 / 0) and
``RNN`` nodes, run by onnxruntime against our front ends, the engine (``run_chain``) and recorded real-framework
outputs (tests/fixtures/family: tf_keras 2.21, Keras 3.15.1, MindSpore 2.10); what ONNX cannot hold is refused
naming the layer, with nothing left on disk."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstm_bridge.convert import chain_from  # noqa: E402
from lstm_bridge.formats import FormatError, onnx as lb_onnx  # noqa: E402
from lstm_bridge.keras import GRU, LSTM, Bidirectional, GRUCell, SimpleRNN, SimpleRNNCell, v1  # noqa: E402
from lstm_bridge.mindspore import GRU as MsGRU, LSTM as MsLSTM, RNN as MsRNN, GRUCell as MsGRUCell  # noqa: E402

from helpers import FIXTURES, max_abs, uneven  # noqa: E402

TOL = 1e-5
#: real MindSpore's CPU GRU / RNN (approximate sigmoid / tanh) against exact math (the graph's)
MS_CPU_TOL = 2e-4


def _run(path, feeds):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _randomize(module, rng, scale=0.7):
    """Uneven weights (biases included) so that a wrong gate order or form shows."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(uneven(rng, tuple(p.shape), scale).astype(np.float32)))
    return module


def _built(layer, rng, width=4, time_major=False):
    layer(np.zeros((6, 2, width) if time_major else (2, 6, width), np.float32))  # build
    return _randomize(layer, rng)


def _nodes(path):
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)
    return [n for n in model.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _as_list(res):
    return list(res) if isinstance(res, (list, tuple)) else [res]


KERAS_CASES = {
    "gru_reset_after_state": lambda: GRU(5, return_sequences=True, return_state=True),
    "gru_reset_before": lambda: GRU(5, reset_after=False, return_sequences=True, return_state=True),
    "gru_last_nobias": lambda: GRU(5, use_bias=False, return_state=True),
    "gru_reset_before_nobias": lambda: GRU(5, use_bias=False, reset_after=False, return_sequences=True),
    "gru_hard_sigmoid_keras2": lambda: GRU(5, recurrent_activation="hard_sigmoid", return_sequences=True),
    "gru_hard_sigmoid_keras3": lambda: GRU(
        5, recurrent_activation="hard_sigmoid", keras_version=3, reset_after=False, return_sequences=True
    ),
    "gru_relu_candidate": lambda: GRU(5, activation="relu", return_sequences=True),
    "gru_go_backwards": lambda: GRU(5, go_backwards=True, reset_after=False, return_sequences=True, return_state=True),
    "gru_v1_defaults": lambda: v1.GRU(5, return_sequences=True, return_state=True),
    "rnn_tanh_state": lambda: SimpleRNN(5, return_sequences=True, return_state=True),
    "rnn_relu": lambda: SimpleRNN(5, activation="relu", return_sequences=True),
    "rnn_linear_last": lambda: SimpleRNN(5, activation=None),
    "rnn_sigmoid": lambda: SimpleRNN(5, activation="sigmoid", return_sequences=True),
    "rnn_softsign": lambda: SimpleRNN(5, activation="softsign", return_sequences=True),
    "rnn_softplus": lambda: SimpleRNN(5, activation="softplus", return_sequences=True),
    "rnn_elu": lambda: SimpleRNN(5, activation="elu", return_sequences=True),
    "rnn_hard_sigmoid_keras2": lambda: SimpleRNN(5, activation="hard_sigmoid", return_sequences=True),
    "rnn_hard_sigmoid_keras3": lambda: SimpleRNN(5, activation="hard_sigmoid", keras_version=3, return_sequences=True),
    "rnn_go_backwards_nobias": lambda: SimpleRNN(5, go_backwards=True, use_bias=False, return_sequences=True),
    "bi_gru_concat_state": lambda: Bidirectional(GRU(5, return_sequences=True, return_state=True)),
    "bi_gru_reset_before_ave": lambda: Bidirectional(
        GRU(5, reset_after=False, return_sequences=True), merge_mode="ave"
    ),
    "bi_gru_mul_last": lambda: Bidirectional(GRU(5), merge_mode="mul"),
    "bi_rnn_sum": lambda: Bidirectional(SimpleRNN(5, activation="relu", return_sequences=True), merge_mode="sum"),
    "bi_rnn_none_state": lambda: Bidirectional(SimpleRNN(5, return_sequences=True, return_state=True), merge_mode=None),
}


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_family_export_matches_the_front_end(case, rng, tmp_path):
    layer = _built(KERAS_CASES[case](), rng)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    path = tmp_path / f"{case}.onnx"
    report = lb_onnx.save(layer, path, verify=True)
    assert report.written == [layer.name]
    (node,) = _nodes(path)
    assert node.op_type == ("GRU" if "gru" in case else "RNN")
    got = _run(path, {"input": x})
    expected = _as_list(layer(x))
    names = [o.name for o in onnx.load(os.fspath(path)).graph.output]
    # output(s), then h per direction (always there, as in the LSTM export): no c for GRU / SimpleRNN
    assert not [n for n in names if n.startswith("c")] and len(names) >= len(expected)
    for name, value in zip(names, expected):
        assert max_abs(got[name], value) <= TOL, name


def test_gru_graph_layout_and_forms(rng, tmp_path):
    """W/R/B are Keras's z, r, h blocks transposed; linear_before_reset says the form; HardSigmoid carries each
    generation's alpha."""
    for reset_after, generation, alpha in ((True, 2, 0.2), (False, 3, 1 / 6)):
        layer = _built(
            GRU(3, reset_after=reset_after, recurrent_activation="hard_sigmoid", keras_version=generation), rng, 2
        )
        lb_onnx.save(layer, tmp_path / "g.onnx")
        (node,) = _nodes(tmp_path / "g.onnx")
        inits = {
            i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(os.fspath(tmp_path / "g.onnx")).graph.initializer
        }
        W, R, B = (inits[node.input[k]] for k in (1, 2, 3))
        assert W.shape == (1, 9, 2) and R.shape == (1, 9, 3) and B.shape == (1, 18)
        kernel, recurrent, bias = layer.get_weights()
        assert np.array_equal(W[0], kernel.T) and np.array_equal(R[0], recurrent.T)  # both z, r, h
        assert np.array_equal(B[0], bias.reshape(-1)) if reset_after else np.array_equal(B[0], np.r_[bias, np.zeros(9)])
        attrs = _attrs(node)
        assert attrs["linear_before_reset"] == int(reset_after)
        assert attrs["activations"] == [b"HardSigmoid", b"Tanh"]
        assert attrs["activation_alpha"] == pytest.approx([alpha]) and attrs["activation_beta"] == pytest.approx([0.5])
        rnn = _built(SimpleRNN(3, activation="relu"), rng, 2)
        lb_onnx.save(rnn, tmp_path / "r.onnx")
        assert _attrs(_nodes(tmp_path / "r.onnx")[0])["activations"] == [b"Relu"]
        os.remove(tmp_path / "g.onnx")
        os.remove(tmp_path / "r.onnx")


def test_keras_stack_mixing_kinds_with_time_major_states_and_lengths(rng, tmp_path):
    """GRU -> Bidirectional(LSTM) -> Bidirectional(SimpleRNN) -> GRU(reset_after=False): one node each, h0 rows for
    every (layer, direction), c0 rows for the LSTM's two directions only."""
    layers = [
        _built(GRU(5, return_sequences=True, time_major=True), rng, 4, True),
        _built(Bidirectional(LSTM(5, return_sequences=True, time_major=True)), rng, 5, True),
        _built(Bidirectional(SimpleRNN(5, return_sequences=True, time_major=True), merge_mode="sum"), rng, 10, True),
        _built(GRU(5, reset_after=False, return_state=True, time_major=True), rng, 5, True),
    ]
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], bool)  # (B, T), right-padded
    h0 = rng.standard_normal((6, 3, 5)).astype(np.float32)
    c0 = rng.standard_normal((2, 3, 5)).astype(np.float32)
    path = tmp_path / "stack.onnx"
    lb_onnx.save(layers, path, lengths=True, initial_state=True, verify=True)
    assert [n.op_type for n in _nodes(path)] == ["GRU", "LSTM", "RNN", "GRU"]
    got = _run(path, {"input": x, "seq_length": mask.sum(1).astype(np.int32), "h0": h0, "c0": c0})
    m = mask.T.copy()  # time_major masks are (T, B)
    y = layers[0](x, mask=m, initial_state=[h0[0]])
    y = layers[1](y, mask=m, initial_state=[h0[1], c0[0], h0[2], c0[1]])
    y = layers[2](y, mask=m, initial_state=[h0[3], h0[4]])
    out, h = layers[3](y, mask=m, initial_state=[h0[5]])
    assert set(got) == {"output", "h"}
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h"], h) <= TOL


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("net_kind", ["gru", "rnn_tanh", "rnn_relu"])
def test_mindspore_family_export_with_hx_and_seq_length(rng, tmp_path, batch_first, net_kind):
    """MindSpore GRU / RNN (numerics="exact": the graph's math) with hx and seq_length, a row of length 0
    included: that row's h_n is its hx row, as MindSpore returns it (a bare ONNX node gives zeros)."""
    kw = dict(num_layers=2, batch_first=batch_first, bidirectional=True, numerics="exact")
    net = MsGRU(4, 5, **kw) if net_kind == "gru" else MsRNN(4, 5, nonlinearity=net_kind[4:], **kw)
    _randomize(net, rng)
    x = rng.standard_normal((3, 6, 4) if batch_first else (6, 3, 4)).astype(np.float32)
    h0 = rng.standard_normal((4, 3, 5)).astype(np.float32)
    seq = np.array([6, 0, 2], np.int32)
    path = tmp_path / "ms.onnx"
    lb_onnx.save(net, path, lengths=True, initial_state=True, verify=True)
    assert [n.op_type for n in _nodes(path)] == ["GRU" if net_kind == "gru" else "RNN"] * 2
    got = _run(path, {"input": x, "seq_length": seq, "h0": h0})
    assert set(got) == {"output", "h_n"}
    out, h_n = net(torch.from_numpy(x), torch.from_numpy(h0), seq_length=torch.from_numpy(seq))
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h_n"], h_n) <= TOL
    assert np.array_equal(got["h_n"][:, 1], h0[:, 1])
    # without lengths and states the graph takes only the input
    lb_onnx.save(net, tmp_path / "plain.onnx")
    got = _run(tmp_path / "plain.onnx", {"input": x})
    out, h_n = net(torch.from_numpy(x))
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h_n"], h_n) <= TOL


def test_a_zero_length_row_keeps_its_initial_states_in_an_lstm_graph_too(rng, tmp_path):
    """The same rule for the LSTM export: MindSpore's seq_length 0 with hx returns (h0, c0); the graph did not."""
    net = _randomize(MsLSTM(3, 4, bidirectional=True), rng)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    h0, c0 = (rng.standard_normal((2, 2, 4)).astype(np.float32) for _ in range(2))
    seq = np.array([5, 0], np.int32)
    lb_onnx.save(net, tmp_path / "l.onnx", lengths=True, initial_state=True)
    got = _run(tmp_path / "l.onnx", {"input": x, "seq_length": seq, "h0": h0, "c0": c0})
    out, (h_n, c_n) = net(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)), torch.from_numpy(seq))
    assert max_abs(got["output"], out) <= TOL
    assert max_abs(got["h_n"], h_n) <= TOL and max_abs(got["c_n"], c_n) <= TOL
    assert np.array_equal(got["c_n"][:, 1], c0[:, 1])


def test_mindspore_default_numerics_export_the_true_math(rng, tmp_path):
    """A MindSpore GRU with its default numerics (MindSpore's approximate CPU sigmoid/tanh) exports exact math:
    the graph equals numerics="exact", and the emulation is within MindSpore's approximation of it."""
    emulated = _randomize(MsGRU(4, 6), rng)
    exact = MsGRU(4, 6, numerics="exact")
    exact.load_state_dict(emulated.state_dict())
    lb_onnx.save(emulated, tmp_path / "e.onnx")
    x = (2 * rng.standard_normal((7, 3, 4))).astype(np.float32)
    got = _run(tmp_path / "e.onnx", {"input": x})
    assert max_abs(got["output"], exact(torch.from_numpy(x))[0]) <= TOL
    assert max_abs(got["output"], emulated(torch.from_numpy(x))[0]) <= 2e-4


@pytest.mark.parametrize("cls", [torch.nn.GRU, torch.nn.RNN])
def test_torch_family_export(cls, tmp_path):
    torch.manual_seed(0)
    kw = {} if cls is torch.nn.GRU else {"nonlinearity": "relu"}
    net = cls(3, 4, num_layers=2, batch_first=True, bidirectional=True, **kw).eval()
    x = torch.randn(2, 5, 3)
    lb_onnx.save(net, tmp_path / "t.onnx")
    got = _run(tmp_path / "t.onnx", {"input": x.numpy()})
    with torch.no_grad():
        out, h_n = net(x)
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h_n"], h_n) <= TOL


# --- recorded real-framework cases --------------------------------------------------------------------------


def _fixture(name):
    z = np.load(FIXTURES / "family" / f"{name}.npz")
    return z, json.loads(str(z["config"])) if "config" in z.files else {}


def _keras_from_fixture(z, cfg, layer):
    n = len([k for k in z.files if k.startswith("w:")])
    layer(z["x"][:, :1])  # build
    layer.set_weights([z[f"w:{k}"] for k in range(n)])
    return layer


@pytest.mark.parametrize(
    "name, make, lengths, state",
    [
        ("tk_gru_v1_defaults", lambda: v1.GRU(4, return_sequences=True, return_state=True), False, False),
        ("tk_gru_default_h0", lambda: GRU(4, return_sequences=True, return_state=True), False, True),
        (
            "k3_gru_reset_before_backwards",
            lambda: GRU(
                4, go_backwards=True, reset_after=False, return_sequences=True, return_state=True, keras_version=3
            ),
            False,
            False,
        ),
        ("tk_bidirectional_gru_mask", lambda: Bidirectional(GRU(4, return_sequences=True)), True, False),
        (
            "tk_gru_reset_before_hs_backwards_mask",
            lambda: GRU(
                4,
                go_backwards=True,
                recurrent_activation="hard_sigmoid",
                reset_after=False,
                return_sequences=True,
                return_state=True,
            ),
            True,
            True,
        ),
    ],
)
def test_recorded_keras_cases_through_the_onnx_graph(name, make, lengths, state, tmp_path):
    """The recorded weights in our Keras layer -> ONNX -> onnxruntime == what tf_keras / Keras 3 returned (right-
    padded masks as seq_length)."""
    z, cfg = _fixture(name)
    layer = _keras_from_fixture(z, cfg, make())
    lb_onnx.save(layer, tmp_path / "k.onnx", lengths=lengths, initial_state=state)
    feeds = {"input": z["x"]}
    if lengths:
        feeds["seq_length"] = z["mask"].sum(1).astype(np.int32)
    if state:
        feeds["h0"] = z["h0"][None]
    got = _run(tmp_path / "k.onnx", feeds)
    outs = [k for k in z.files if k.startswith("out:")]
    names = [o.name for o in onnx.load(os.fspath(tmp_path / "k.onnx")).graph.output]
    for graph_name, key in zip(names, outs):
        assert max_abs(got[graph_name], z[key]) <= TOL, (graph_name, key)


@pytest.mark.parametrize("name", ["ms_gru_2layer_bi_batch_first_seq_hx", "ms_rnn_tanh_bi_seq", "ms_gru_wide_bi_seq"])
def test_recorded_mindspore_cases_through_the_onnx_graph(name, tmp_path):
    """Real MindSpore 2.10 GRU / RNN with seq_length (a row of length 0 with hx included): the graph is within
    MindSpore's approximate CPU activations of its outputs (up to 1.1e-4 here, MS_CPU_TOL;
    docs/spec/mindspore_gru_rnn.md §3), and equal to our numerics="exact" net."""
    z, cfg = _fixture(name)
    net = (MsGRU if cfg["cls"] == "GRU" else MsRNN)(cfg["input_size"], cfg["hidden_size"], **cfg["kw"])
    net.load_state_dict({k[len("param:") :]: torch.from_numpy(z[k]) for k in z.files if k.startswith("param:")})
    state = "hx" in z.files
    lb_onnx.save(net, tmp_path / "m.onnx", lengths=True, initial_state=state)
    feeds = {"input": z["x"], "seq_length": z["seq_length"].astype(np.int32)}
    if state:
        feeds["h0"] = z["hx"]
    got = _run(tmp_path / "m.onnx", feeds)
    assert max_abs(got["output"], z["out:0"]) <= MS_CPU_TOL and max_abs(got["h_n"], z["out:1"]) <= MS_CPU_TOL
    exact = type(net)(cfg["input_size"], cfg["hidden_size"], numerics="exact", **cfg["kw"])
    exact.load_state_dict(net.state_dict())
    args = (torch.from_numpy(z["x"]), torch.from_numpy(z["hx"]) if state else None)
    out, h_n = exact(*args, seq_length=torch.from_numpy(z["seq_length"]))
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h_n"], h_n) <= TOL


# --- refusals -----------------------------------------------------------------------------------------------


REFUSED = {
    "selu_rnn": (lambda: SimpleRNN(3, activation="selu"), r"SimpleRNN 'rnn_x'.*activation='selu' has no ONNX RNN"),
    "gelu_gru": (lambda: GRU(3, activation="gelu"), r"GRU 'rnn_x'.*activation='gelu' has no ONNX GRU"),
    "swish_gate_gru": (lambda: GRU(3, recurrent_activation="swish"), r"recurrent_activation='swish' has no ONNX GRU"),
    "stateful_gru": (
        lambda: GRU(3, stateful=True, batch_input_shape=(2, 6, 4)),
        r"GRU 'rnn_x'.*stateful=True has no ONNX",
    ),
    "flipped_bidirectional": (
        lambda: Bidirectional(GRU(3, go_backwards=True, return_sequences=True)),
        r"flipped|runs backwards.*no ONNX GRU",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_onnx_cannot_hold_is_refused_naming_the_layer(case, rng, tmp_path):
    make, pattern = REFUSED[case]
    layer = make()
    layer.name = "rnn_x" if not isinstance(layer, Bidirectional) else layer.name
    _built(layer, rng)
    with pytest.raises(FormatError, match=pattern):
        lb_onnx.save(layer, tmp_path / "x.onnx", verify=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "cell",
    [lambda: GRUCell(3), lambda: SimpleRNNCell(3), lambda: MsGRUCell(4, 3)],
    ids=["GRUCell", "SimpleRNNCell", "ms.GRUCell"],
)
def test_family_cells_are_refused(cell, tmp_path):
    c = cell()
    if hasattr(c, "build"):
        c.build((None, 4))
    with pytest.raises((FormatError, TypeError, ValueError), match="GRUCell|SimpleRNNCell|RNNCell|cell"):
        lb_onnx.save(c, tmp_path / "c.onnx")
    assert os.listdir(tmp_path) == []


def test_masks_that_seq_length_cannot_carry_are_refused(tmp_path):
    """Real Keras 3 SimpleRNN with a right-padded mask repeats its last output at padded steps: ONNX writes zeros,
    so lengths=True is refused (without lengths the graph is exact for unpadded input)."""
    z, cfg = _fixture("k3_simplernn_relu_mask_h0")
    layer = _keras_from_fixture(z, cfg, SimpleRNN(4, activation="relu", return_sequences=True, return_state=True))
    with pytest.raises(FormatError, match="plain Keras SimpleRNN with return_sequences repeats"):
        lb_onnx.save(layer, tmp_path / "m.onnx", lengths=True)
    z, cfg = _fixture("tk_gru_reset_before_zero_output_last")
    layer = _keras_from_fixture(z, cfg, GRU(4, reset_after=False, return_state=True, zero_output_for_mask=True))
    with pytest.raises(FormatError, match="zero_output_for_mask with return_sequences=False"):
        lb_onnx.save(layer, tmp_path / "z.onnx", lengths=True)
    assert os.listdir(tmp_path) == []


def test_a_failed_verification_leaves_nothing(rng, tmp_path, monkeypatch):
    layer = _built(GRU(3, reset_after=False), rng)
    assert lb_onnx.verify(lb_onnx.save(layer, tmp_path / "v.onnx").path, layer) <= TOL
    monkeypatch.setattr(lb_onnx, "_verify_file", lambda *a, **k: 1.0)
    with pytest.raises(FormatError, match="differs from the lstm-bridge engine"):
        lb_onnx.save(layer, tmp_path / "bad.onnx", verify=True)
    assert sorted(os.listdir(tmp_path)) == ["v.onnx"]


def test_chain_of_family_modules_runs_like_the_modules(rng):
    """convert.chain_from of family modules: the kinds, forms and activations the export writes."""
    chain = chain_from(
        [_built(GRU(3, reset_after=False, return_sequences=True), rng), _built(SimpleRNN(2, activation="relu"), rng, 3)]
    )
    assert [(l.kind.value, l.reset_after, l.candidate) for l in chain.layers] == [
        ("GRU", False, "tanh"),
        ("RNN", True, "relu"),
    ]
    net = MsRNN(3, 4, nonlinearity="relu", bidirectional=True)
    layers = chain_from(net).layers
    assert [(l.kind.value, l.candidate, l.reverse) for l in layers] == [("RNN", "relu", [False, True])]


# --- files holding family layers (tests/fixtures/family_files, written by the real frameworks) -------------


@pytest.mark.parametrize("name", ["tk_family.h5", "tk_cudnn_gru.h5", "k3_family.keras", "k3_family.h5"])
def test_real_family_model_files_through_the_onnx_graph(name, tmp_path):
    """tf_keras / Keras 3 model files (GRU reset_after both ways, hard_sigmoid, Bidirectional SimpleRNN(relu),
    go_backwards SimpleRNN, TF1 CuDNNGRU, an LSTM in front) -> ONNX -> onnxruntime == the framework's output."""
    from lstm_bridge.io import load

    z = np.load(FIXTURES / "family_files" / f"{name.split('.')[0]}.npz")
    mf = load(FIXTURES / "family_files" / name)
    report = lb_onnx.save(mf, tmp_path / "f.onnx", verify=True)
    assert report.written == [e.name for e in mf.recurrent_entries()]
    got = _run(tmp_path / "f.onnx", {"input": z["x"]})
    assert max_abs(got["output"], z["y"]) <= TOL


def test_a_state_dict_rnn_needs_its_nonlinearity_and_nets_of_other_sizes_keep_their_own_h_n(tmp_path):
    """MindSpore 2.10 ms_family.ckpt (nn.GRU(3, 4, 2 layers, bidirectional) -> nn.RNN(8, 3, relu)): the .ckpt does
    not record the RNN's nonlinearity, so exporting it (tanh would be a guess: 0.38 off) is refused; the GRU alone
    exports; told the nonlinearity, the two nets export with one h_n per net (their hidden sizes differ)."""
    from lstm_bridge.io import load

    z = np.load(FIXTURES / "family_files" / "ms_family.npz")
    mf = load(FIXTURES / "family_files" / "ms_family.ckpt")
    with pytest.raises(FormatError, match="RNN 'rnn'.*does not record nn.RNN's nonlinearity"):
        lb_onnx.save(mf, tmp_path / "all.onnx", batch_first=True)
    assert os.listdir(tmp_path) == []
    lb_onnx.save(mf, tmp_path / "gru.onnx", layer="gru", batch_first=True)
    got = _run(tmp_path / "gru.onnx", {"input": z["x"]})
    assert max_abs(got["output"], z["y_gru"]) <= MS_CPU_TOL
    mf.entry("rnn").config["nonlinearity"] = "relu"
    lb_onnx.save(mf, tmp_path / "both.onnx", batch_first=True, verify=True)
    got = _run(tmp_path / "both.onnx", {"input": z["x"]})
    assert max_abs(got["output"], z["y"]) <= MS_CPU_TOL
    assert got["h_n.gru"].shape == (4, 2, 4) and got["h_n.rnn"].shape == (1, 2, 3)
    assert max_abs(got["h_n.rnn"][0], z["y"][:, -1]) <= MS_CPU_TOL  # (relu RNN: h_n is the last output)


def test_a_weights_only_file_of_several_layers_is_not_chained_by_guess(tmp_path):
    """Keras 3's .weights.h5 stores layers by name: k3_family's storage order (bi_gru_before, gru_hs, lstm,
    rnn_back) even chains by sizes, but it is not the model's (lstm first). Refused; one layer exports."""
    from lstm_bridge.io import load

    mf = load(FIXTURES / "family_files" / "k3_family.weights.h5")
    with pytest.raises(FormatError, match="records neither the order of its layers"):
        lb_onnx.save(mf, tmp_path / "w.onnx")
    assert os.listdir(tmp_path) == []
    assert lb_onnx.save(mf, tmp_path / "one.onnx", layer="gru_hs", verify=True).written == ["gru_hs"]
