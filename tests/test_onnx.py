"""ONNX export (lstm_bridge.formats.onnx): checked graphs that onnxruntime runs to our front ends' outputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstm_bridge.formats import FormatError, onnx as lb_onnx  # noqa: E402
from lstm_bridge.keras import LSTM, Bidirectional  # noqa: E402
from lstm_bridge.mindspore import LSTM as MsLSTM  # noqa: E402

from helpers import FIXTURES, keras_weights, max_abs  # noqa: E402

TOL = 1e-5


def _run(path, feeds):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _set(layer, rng, width, time_major=False):
    layer.build((6, None, width) if time_major else (None, 6, width))
    n = len(layer.get_weights())
    units = layer.get_weights()[1].shape[0]
    w = keras_weights(rng, width, units, n in (3, 6))
    if n >= 4:
        w = w + keras_weights(rng, width, units, n == 6)
    layer.set_weights(w)
    return layer


KERAS_CASES = {
    "uni_seq_state": lambda: LSTM(5, return_sequences=True, return_state=True),
    "uni_last_nobias": lambda: LSTM(5, use_bias=False, return_state=True),
    "hard_sigmoid_keras2": lambda: LSTM(5, recurrent_activation="hard_sigmoid", return_sequences=True),
    "hard_sigmoid_keras3": lambda: LSTM(
        5, recurrent_activation="hard_sigmoid", keras_version=3, return_sequences=True, return_state=True
    ),
    "relu_candidate": lambda: LSTM(5, activation="relu", return_sequences=True),
    "linear_candidate": lambda: LSTM(5, activation=None, return_sequences=True),
    "softsign": lambda: LSTM(5, activation="softsign", return_sequences=True),
    "go_backwards_seq": lambda: LSTM(5, go_backwards=True, return_sequences=True, return_state=True),
    "go_backwards_last": lambda: LSTM(5, go_backwards=True),
    "bi_concat_state": lambda: Bidirectional(LSTM(5, return_sequences=True, return_state=True)),
    "bi_sum": lambda: Bidirectional(LSTM(5, return_sequences=True), merge_mode="sum"),
    "bi_mul_last": lambda: Bidirectional(LSTM(5), merge_mode="mul"),
    "bi_ave": lambda: Bidirectional(
        LSTM(5, return_sequences=True, recurrent_activation="hard_sigmoid"), merge_mode="ave"
    ),
    "bi_none": lambda: Bidirectional(LSTM(5, return_sequences=True, return_state=True), merge_mode=None),
}


def _as_list(res):
    return [r for r in (res if isinstance(res, (list, tuple)) else [res])]


@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_keras_layer_export_matches_front_end(case, rng, tmp_path):
    layer = _set(KERAS_CASES[case](), rng, 4)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    path = tmp_path / f"{case}.onnx"
    report = lb_onnx.save(layer, path)
    assert report.format == "onnx" and path.exists()
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == 1
    got = _run(path, {"input": x})
    expected = _as_list(layer(x))
    names = [o.name for o in model.graph.output]
    assert len(names) >= len(expected)
    for name, value in zip(names, expected):  # output(s) first, then the states in Keras order
        assert max_abs(got[name], value) <= TOL, name


def test_gate_order_and_layout_in_the_graph(rng, tmp_path):
    layer = _set(Bidirectional(LSTM(3, return_sequences=True)), rng, 2)
    lb_onnx.save(layer, tmp_path / "g.onnx")
    model = onnx.load(os.fspath(tmp_path / "g.onnx"))
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    W, R, B = (inits[lstm.input[k]] for k in (1, 2, 3))
    assert W.shape == (2, 12, 2) and R.shape == (2, 12, 3) and B.shape == (2, 24)
    kernel, recurrent, bias = layer.forward_layer.get_weights()
    H = 3
    # ONNX gate order i, o, f, c; Keras i, f, c, o
    for onnx_block, keras_block in enumerate([0, 3, 1, 2]):
        assert np.array_equal(
            W[0, onnx_block * H : (onnx_block + 1) * H], kernel[:, keras_block * H : (keras_block + 1) * H].T
        )
        assert np.array_equal(
            R[0, onnx_block * H : (onnx_block + 1) * H], recurrent[:, keras_block * H : (keras_block + 1) * H].T
        )
        assert np.array_equal(
            B[0, onnx_block * H : (onnx_block + 1) * H], bias[keras_block * H : (keras_block + 1) * H]
        )
    assert not B[:, 12:].any()  # the Keras bias is Wb; Rb = 0
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in lstm.attribute}
    assert attrs["direction"] == b"bidirectional" and attrs["hidden_size"] == 3


def test_hard_sigmoid_attributes(rng, tmp_path):
    for version, alpha in ((2, 0.2), (3, 1 / 6)):
        layer = _set(LSTM(2, recurrent_activation="hard_sigmoid", keras_version=version), rng, 2)
        model, _ = lb_onnx.build_model(layer)
        node = next(n for n in model.graph.node if n.op_type == "LSTM")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["activations"] == [b"HardSigmoid", b"Tanh", b"Tanh"]
        assert attrs["activation_alpha"] == pytest.approx([alpha]) and attrs["activation_beta"] == pytest.approx([0.5])


def test_keras_stack_time_major_with_states_and_lengths(rng, tmp_path):
    layers = [
        _set(Bidirectional(LSTM(5, return_sequences=True, time_major=True)), rng, 4, True),
        _set(LSTM(5, return_sequences=False, return_state=True, time_major=True), rng, 10, True),
    ]
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], bool)  # (B, T), right-padded
    lengths = mask.sum(1).astype(np.int32)
    h0 = rng.standard_normal((3, 3, 5)).astype(np.float32)
    c0 = rng.standard_normal((3, 3, 5)).astype(np.float32)
    path = tmp_path / "stack.onnx"
    lb_onnx.save(layers, path, lengths=True, initial_state=True)
    got = _run(path, {"input": x, "seq_length": lengths, "h0": h0, "c0": c0})
    mask_tm = mask.T.copy()  # time_major masks are (T, B)
    y = layers[0](x, mask=mask_tm, initial_state=[h0[0], c0[0], h0[1], c0[1]])
    out, h, c = layers[1](y, mask=mask_tm, initial_state=[h0[2], c0[2]])
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h"], h) <= TOL and max_abs(got["c"], c) <= TOL


def test_plain_keras_lstm_with_lengths_and_carried_outputs_is_refused(rng, tmp_path):
    layer = _set(LSTM(4, return_sequences=True), rng, 3)
    with pytest.raises(FormatError, match="repeats its last valid output"):
        lb_onnx.save(layer, tmp_path / "x.onnx", lengths=True)
    assert not (tmp_path / "x.onnx").exists()
    lb_onnx.save(layer, tmp_path / "ok.onnx")  # without lengths it is exact


@pytest.mark.parametrize("batch_first", [False, True])
def test_mindspore_export_with_hx_and_seq_length(rng, tmp_path, batch_first):
    net = MsLSTM(4, 5, num_layers=2, batch_first=batch_first, bidirectional=True)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.6, 0.6, tuple(p.shape)).astype(np.float32)))
    x = rng.standard_normal((3, 6, 4) if batch_first else (6, 3, 4)).astype(np.float32)
    h0 = rng.standard_normal((4, 3, 5)).astype(np.float32)
    c0 = rng.standard_normal((4, 3, 5)).astype(np.float32)
    seq = np.array([6, 3, 1], np.int32)
    path = tmp_path / "ms.onnx"
    lb_onnx.save(net, path, lengths=True, initial_state=True)
    got = _run(path, {"input": x, "seq_length": seq, "h0": h0, "c0": c0})
    out, (h_n, c_n) = net(
        torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)), seq_length=torch.from_numpy(seq)
    )
    assert max_abs(got["output"], out) <= TOL
    assert max_abs(got["h_n"], h_n) <= TOL and max_abs(got["c_n"], c_n) <= TOL


def test_torch_lstm_export(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.LSTM(3, 4, num_layers=3, batch_first=True).eval()
    x = torch.randn(2, 5, 3)
    lb_onnx.save(net, tmp_path / "t.onnx")
    got = _run(tmp_path / "t.onnx", {"input": x.numpy()})
    with torch.no_grad():
        out, (h_n, c_n) = net(x)
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h_n"], h_n) <= TOL


def test_real_mindspore_checkpoint_reproduces_recorded_outputs(tmp_path):
    """A real MindSpore 2.10 .ckpt -> ONNX -> onnxruntime == MindSpore's own recorded outputs."""
    from lstm_bridge.io import load

    mf = load(FIXTURES / "mindspore" / "lstm_2layer_bi.ckpt")
    data = np.load(FIXTURES / "mindspore" / "lstm_2layer_bi_io.npz")
    path = tmp_path / "ms.onnx"
    lb_onnx.save(mf, path, batch_first=True, initial_state=True, lengths=True)
    full = np.full(3, 7, np.int32)
    got = _run(path, {"input": data["x"], "seq_length": full, "h0": data["h0"], "c0": data["c0"]})
    assert max_abs(got["output"], data["out_hx"]) <= TOL
    assert max_abs(got["h_n"], data["hn_hx"]) <= TOL and max_abs(got["c_n"], data["cn_hx"]) <= TOL
    # with seq_length MindSpore's CPU kernel uses its approximate sigmoid/tanh (spec §3; up to 1e-4 in
    # general); on this fixture the exact-activation graph is 4.2e-7 away
    got = _run(
        path,
        {"input": data["x"], "seq_length": data["seq_length"].astype(np.int32), "h0": data["h0"], "c0": data["c0"]},
    )
    assert max_abs(got["output"], data["out_hx_seqlen"]) <= TOL
    assert max_abs(got["h_n"], data["hn_hx_seqlen"]) <= TOL


def test_real_keras_file_reproduces_recorded_outputs(tmp_path):
    """tf_keras bilstm_stacked.h5: ONNX LSTM chain + the file's Dense == tf_keras's recorded output."""
    from lstm_bridge.io import load

    mf = load(FIXTURES / "keras" / "tfkeras_bilstm_stacked.h5")
    report = lb_onnx.save(mf, tmp_path / "k.onnx")
    assert report.written == ["bidirectional", "lstm_1", "lstm_2"]
    assert "dense" in report.skipped  # never dropped silently
    x = np.load(FIXTURES / "keras" / "tfkeras_bilstm_stacked_input.npy")
    got = _run(tmp_path / "k.onnx", {"input": x})
    dense = mf.entry("dense").weights
    logits = got["output"] @ dense["kernel"] + dense["bias"]
    assert max_abs(logits, np.load(FIXTURES / "keras" / "tfkeras_bilstm_stacked_output.npy")) <= TOL


@pytest.mark.parametrize("name", ["tfkeras_lstm_hard_sigmoid.h5", "keras3_lstm_hard_sigmoid.keras"])
def test_real_hard_sigmoid_files(name, tmp_path):
    from lstm_bridge.io import load

    mf = load(FIXTURES / "keras" / name)
    lb_onnx.save(mf, tmp_path / "hs.onnx")
    stem = name.split(".")[0]
    got = _run(tmp_path / "hs.onnx", {"input": np.load(FIXTURES / "keras" / f"{stem}_input.npy")})
    assert max_abs(got["output"], np.load(FIXTURES / "keras" / f"{stem}_output.npy")) <= TOL


def test_errors_and_atomicity(rng, tmp_path, monkeypatch):
    with pytest.raises(FormatError, match="no ONNX LSTM equivalent"):
        lb_onnx.build_model(_set(LSTM(3, activation="selu"), rng, 2))
    with pytest.raises(FormatError, match="stateful"):
        lb_onnx.build_model(_set(LSTM(3, stateful=True), rng, 2))
    with pytest.raises(NotImplementedError, match="exports ONNX only"):
        lb_onnx.load(tmp_path / "any.onnx")
    layer = _set(LSTM(3), rng, 2)
    assert lb_onnx.verify(lb_onnx.save(layer, tmp_path / "v.onnx").path, layer) <= TOL
    # a failed verification leaves nothing behind
    monkeypatch.setattr(lb_onnx, "_verify_file", lambda *a, **k: 1.0)
    with pytest.raises(FormatError, match="differs from the lstm-bridge engine"):
        lb_onnx.save(layer, tmp_path / "bad.onnx", verify=True)
    assert sorted(os.listdir(tmp_path)) == ["v.onnx"]
    assert lb_onnx.detect(tmp_path / "v.onnx") and not lb_onnx.detect(FIXTURES / "mindspore" / "lstm_small.ckpt")


@pytest.mark.parametrize("seq", [True, False])
def test_keras_go_backwards_with_right_padded_lengths(rng, tmp_path, seq):
    layer = _set(LSTM(4, go_backwards=True, return_sequences=seq, return_state=True), rng, 3)
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    mask = np.array([[1] * 6, [1] * 2 + [0] * 4, [1] * 5 + [0]], bool)
    lb_onnx.save(layer, tmp_path / "gb.onnx", lengths=True)
    got = _run(tmp_path / "gb.onnx", {"input": x, "seq_length": mask.sum(1).astype(np.int32)})
    out, h, c = layer(x, mask=mask)
    assert max_abs(got["output"], out) <= TOL and max_abs(got["h"], h) <= TOL and max_abs(got["c"], c) <= TOL
