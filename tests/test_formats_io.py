"""Registry, PyTorch .pt / .safetensors, and the public lstm_bridge.io.load/save round trips."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
import torch

from lstm_bridge import formats, io
from lstm_bridge.formats import FormatError, ModelFile

from helpers import FIXTURES


def test_registry_rules():
    assert formats.available()[:6] == [
        "keras-h5",
        "keras-weights-h5",
        "keras",
        "mindspore-ckpt",
        "torch",
        "safetensors",
    ]
    with pytest.raises(ValueError, match="'torch' is already registered"):
        formats.register("torch", formats.get_format("torch"))
    with pytest.raises(NotImplementedError, match="unknown file format 'tflite'"):
        formats.get_format("tflite")
    formats.register_lazy("test-missing", "lstm_bridge.formats.no_such_module", (".nosuch",))
    try:
        with pytest.raises(NotImplementedError, match="its module 'lstm_bridge.formats.no_such_module' does not exist"):
            formats.get_format("test-missing")
    finally:
        formats._REGISTRY.pop("test-missing")
        formats._SUFFIXES.pop("test-missing")
    bad = types.SimpleNamespace(load=lambda p: None)
    with pytest.raises(TypeError, match="missing \\['save', 'detect'\\]"):
        formats.register("test-bad", bad)


def test_every_registered_format_offers_the_same_verbs():
    """Each format module: load/save/detect, NAME = its registry name, SUFFIXES = the registered suffixes."""
    for name in formats.available():
        try:
            fmt = formats.get_format(name)
        except NotImplementedError:  # an optional format whose package is missing (onnx)
            continue
        assert [v for v in formats.VERBS if not callable(getattr(fmt, v, None))] == [], name
        assert fmt.NAME == name and tuple(fmt.SUFFIXES) == formats._SUFFIXES[name] and fmt.SUFFIXES, name
        for suffix in fmt.SUFFIXES:
            assert formats.format_for_suffix(f"model{suffix}") == name


def test_registry_refuses_a_format_whose_name_or_suffixes_differ():
    formats.register_lazy("test-misnamed", "lstm_bridge.formats.torch_pt", (".pt",))
    try:
        with pytest.raises(NotImplementedError, match="declares NAME 'torch' \\(registered as 'test-misnamed'\\)"):
            formats.get_format("test-misnamed")
    finally:
        formats._REGISTRY.pop("test-misnamed")
        formats._SUFFIXES.pop("test-misnamed")
    fake = types.SimpleNamespace(load=len, save=len, detect=len, NAME="test-fake", SUFFIXES=(".fake",))
    with pytest.raises(TypeError, match="SUFFIXES \\('.fake',\\) \\(registered with \\('.other',\\)\\)"):
        formats.register("test-fake", fake, (".other",))
    with pytest.raises(TypeError, match="no NAME"):
        formats.register("test-fake", types.SimpleNamespace(load=len, save=len, detect=len, SUFFIXES=()))
    assert "test-fake" not in formats.available()


def test_onnx_is_registered_lazily():
    assert "onnx" in formats.available()
    assert formats.format_for_suffix("m.onnx") == "onnx"
    try:
        fmt = formats.get_format("onnx")
    except NotImplementedError as exc:  # the ONNX module is someone else's; when absent the error names it
        assert "lstm_bridge.formats.onnx" in str(exc)
    else:
        assert callable(fmt.save)


@pytest.mark.parametrize(
    "path,name",
    [
        ("a.weights.h5", "keras-weights-h5"),
        ("A.H5", "keras-h5"),
        ("m.keras", "keras"),
        ("x.ckpt", "mindspore-ckpt"),
        ("s.pth", "torch"),
        ("s.safetensors", "safetensors"),
    ],
)
def test_format_for_suffix(path, name):
    assert formats.format_for_suffix(path) == name


def test_unknown_suffix_and_content():
    with pytest.raises(NotImplementedError, match="no file format for 'model.bin'"):
        formats.format_for_suffix("model.bin")


def test_detect_by_content_not_suffix(tmp_path):
    p = tmp_path / "renamed.bin"
    p.write_bytes((FIXTURES / "mindspore" / "lstm_small.ckpt").read_bytes())
    assert formats.detect_format(p) == "mindspore-ckpt"
    q = tmp_path / "junk.h5"
    q.write_bytes(b"\x00" * 64)
    with pytest.raises(FormatError, match="junk.h5: unrecognised file format"):
        io.load(q)


def test_torch_and_safetensors_round_trip_bit_exact(tmp_path):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
    sd = lstm.state_dict()
    for suffix in (".pt", ".safetensors"):
        report = io.save(lstm, tmp_path / f"m{suffix}")
        assert report.skipped == {}
        mf = io.load(tmp_path / f"m{suffix}")
        (entry,) = mf.layers
        assert entry.kind == "LSTM" and list(entry.weights) == list(sd)
        assert all(np.array_equal(entry.weights[k], v.numpy()) for k, v in sd.items())
        (layer,) = mf.lstm_layers()
        assert (layer.num_layers, layer.bidirectional) == (2, True)


def test_torch_nested_state_dict_and_extras(tmp_path):
    lstm = torch.nn.LSTM(2, 2)
    torch.save({"state_dict": {"rnn." + k: v for k, v in lstm.state_dict().items()}, "epoch": 3}, tmp_path / "c.pt")
    mf = io.load(tmp_path / "c.pt")
    assert [(e.name, e.kind) for e in mf.layers] == [("rnn", "LSTM")]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/lstm_bridge_pwned_by_pickle",))


def test_pickle_is_never_executed(tmp_path):
    marker = "/tmp/lstm_bridge_pwned_by_pickle"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"weight_ih_l0": torch.zeros(4, 1), "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(FormatError, match="weights_only=True"):
        io.load(tmp_path / "evil.pt")
    assert not os.path.exists(marker)


def test_ckpt_to_torch_to_ckpt_is_byte_identical(tmp_path):
    src = FIXTURES / "mindspore" / "embed_lstm_dense.ckpt"
    mf = io.load(src)
    io.save(mf, tmp_path / "m.pt")
    io.save(io.load(tmp_path / "m.pt"), tmp_path / "m.safetensors")
    back = io.load(tmp_path / "m.safetensors")
    io.save(back, tmp_path / "m.ckpt")
    assert (tmp_path / "m.ckpt").read_bytes() == src.read_bytes()


def test_keras_mindspore_torch_keras_round_trip_is_bit_exact(tmp_path):
    src = FIXTURES / "keras" / "tfkeras_bilstm_stacked.h5"
    mf = io.load(src)
    io.save(mf, tmp_path / "a.ckpt")
    io.save(io.load(tmp_path / "a.ckpt"), tmp_path / "b.pt")
    io.save(io.load(tmp_path / "b.pt"), tmp_path / "c.h5")
    back = io.load(tmp_path / "c.h5")
    orig = {l.name: l for l in mf.lstm_layers()}
    got = back.lstm_layers()
    assert [l.name for l in got] == list(orig)
    for l in got:
        for a, b in zip(l.weights[0], orig[l.name].weights[0]):
            for x, y in ((a.w_ih, b.w_ih), (a.w_hh, b.w_hh), (a.bias_sum(), b.bias_sum())):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_save_front_end_modules(tmp_path):
    from lstm_bridge import keras as K, mindspore as M

    torch.manual_seed(0)
    ms = M.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    io.save(ms, tmp_path / "ms.ckpt")
    tensors = io.load(tmp_path / "ms.ckpt").layers[0].weights
    assert list(tensors)[:2] == ["weight_ih_l0", "weight_ih_l0_reverse"]
    assert all(np.array_equal(tensors[k], v.detach().numpy()) for k, v in ms.state_dict().items())
    layer = K.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True)
    layer.build((1, 2, 3))
    io.save(layer, tmp_path / "k.h5")
    (got,) = io.load(tmp_path / "k.h5").lstm_layers()
    assert got.semantics["recurrent_activation"] == "hard_sigmoid"
    np.testing.assert_array_equal(got.weights[0][0].w_ih, layer.get_weights()[0].T)
    with pytest.raises(FormatError, match="cannot be written for Keras 3"):
        io.save(layer, tmp_path / "k.keras")
    assert not (tmp_path / "k.keras").exists()
    with pytest.raises(TypeError, match="cannot save a str"):
        io.save("nope", tmp_path / "x.pt")


def test_load_missing_file():
    with pytest.raises(FileNotFoundError):
        io.load("/nonexistent/x.ckpt")


def test_model_file_lstm_layers_for_a_cell():
    mf = io.load(FIXTURES / "mindspore" / "lstmcell.ckpt")
    (cell,) = mf.lstm_layers()
    assert cell.kind == "LSTMCell" and (cell.input_size, cell.hidden_size) == (3, 4)
    assert isinstance(mf, ModelFile) and mf.framework == "mindspore" and mf.hard_sigmoid is None


@pytest.mark.parametrize(
    "fixture,fmt",
    [
        ("mindspore/lstm_small.ckpt", "mindspore-ckpt"),
        ("keras/tfkeras_lstm_hard_sigmoid.h5", "keras-h5"),
        ("keras/keras3_lstm_hard_sigmoid.keras", "keras"),
    ],
)
def test_detect_accepts_head_bytes(fixture, fmt):
    head = (FIXTURES / fixture).read_bytes()[:64]
    assert formats.get_format(fmt).detect(head)
    assert not formats.get_format(fmt).detect(b"\x00" * 64)


def test_written_files_get_normal_permissions(tmp_path):
    io.save(torch.nn.LSTM(2, 2), tmp_path / "m.pt")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (os.stat(tmp_path / "m.pt").st_mode & 0o777) == (0o666 & ~mask)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_front_end_semantics_survive_keras_files(tmp_path, suffix):
    from lstm_bridge import keras as K

    torch.manual_seed(1)
    back = K.LSTM(3, go_backwards=True, return_sequences=True, use_bias=False)
    bi = K.Bidirectional(K.LSTM(2, return_sequences=False), merge_mode="sum")
    back.build((2, 5, 4))
    bi.build((2, 5, 3))
    io.save([back, bi], tmp_path / f"m{suffix}")
    got = io.load(tmp_path / f"m{suffix}").lstm_layers()
    assert [l.kind for l in got] == ["LSTM", "Bidirectional"]
    assert got[0].semantics["go_backwards"] and got[0].semantics["return_sequences"] and not got[0].has_bias
    assert got[1].semantics["merge_mode"] == "sum" and not got[1].semantics["return_sequences"]
    np.testing.assert_array_equal(got[0].weights[0][0].w_hh, back.get_weights()[1].T)
    np.testing.assert_array_equal(got[1].weights[0][1].w_ih, bi.get_weights()[3].T)
