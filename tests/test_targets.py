"""lstm_bridge.targets: the one rule of what each target can hold, and every writer asking it.

Regression tests for issue 9 (silent wrong results 1 and 2: a hard_sigmoid Keras LSTM written as a
plain LSTM by ``lstm_bridge.save``; a Keras mask dropped by the ONNX export) and issue 10 item 1
(one module owns "what can be expressed where")."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import torch

import lstm_bridge
from lstm_bridge import targets
from lstm_bridge.cli import main
from lstm_bridge.explain import ExplainError, explain, format_explanation
from lstm_bridge.formats import FormatError, get_format
from lstm_bridge.io import to_model_file
from lstm_bridge.keras import LSTM, Bidirectional
from lstm_bridge.mindspore import LSTMCell as MsLSTMCell

from helpers import FIXTURES

KERAS = FIXTURES / "keras"
D = targets.LayerDescription


def _built(layer, width=5):
    layer(torch.zeros(2, 3, width))
    return layer


# --- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "desc,holds",
    [
        # Keras 2's hard_sigmoid: ONNX HardSigmoid(0.2, 0.5) and tf_keras hold it; MindSpore/torch/Keras 3 do not
        (D("a", gate="hard_sigmoid", generation=2), {"onnx", "keras2"}),
        # Keras 3's relu6(x + 3) / 6: ONNX HardSigmoid(1/6, 0.5) and Keras 3 hold it
        (D("a", gate="hard_sigmoid_keras3", generation=3), {"onnx", "keras3"}),
        (D("a", candidate="relu"), {"onnx", "keras2", "keras3"}),
        (D("a", candidate="selu"), {"keras2", "keras3"}),
        (D("a", reverse=(True,)), {"onnx", "keras2", "keras3"}),  # go_backwards alone
        (D("a", "Bidirectional", reverse=(True, False)), {"keras2"}),  # tf_keras's flipped wrap
        (D("a", "Bidirectional", reverse=(False, True), merge_mode="sum"), {"onnx", "keras2", "keras3"}),
        (D("a", stateful=True), {"keras2", "keras3"}),
        (D("a", time_major=True), {"mindspore", "torch", "onnx", "keras2"}),
        (D("c", "LSTMCell"), {"mindspore", "torch"}),
        (D("c", "LSTMCell", gate="ms_cpu_sigmoid", candidate="ms_cpu_tanh"), {"mindspore", "torch"}),
        (D("a", "Bidirectional", reverse=(False, True)), set(targets.TARGETS)),
    ],
)
def test_what_each_target_holds(desc, holds):
    for target in targets.TARGETS:
        problems = targets.violations(desc, target)
        assert (not problems) == (target in holds), (target, problems)
        if problems:
            assert all(p.startswith(f"{desc.kind} 'a'") or p.startswith(f"{desc.kind} 'c'") for p in problems)


def test_reasons_name_the_meaning_and_unknown_targets_are_refused():
    (k2,) = targets.violations(D("hs", gate="hard_sigmoid", generation=2), "mindspore")
    assert "clip(0.2x + 0.5, 0, 1)" in k2 and k2.startswith("LSTM 'hs':")
    (k3,) = targets.violations(D("hs", gate="hard_sigmoid_keras3", generation=3), "torch")
    assert "relu6(x + 3) / 6" in k3
    (k3_in_tk,) = targets.violations(D("hs", gate="hard_sigmoid_keras3", generation=3), "keras2")
    assert "cannot be written for tf_keras" in k3_in_tk
    with pytest.raises(ValueError, match="unknown target 'tflite'"):
        targets.violations(D("a"), "tflite")


def test_check_expressible_points_at_the_exact_pytorch_module():
    layer = _built(LSTM(4, recurrent_activation="hard_sigmoid", name="hs"))
    with pytest.raises(ValueError, match="LSTM 'hs'.*hard_sigmoid") as info:
        targets.check_expressible(layer, "torch")
    assert "lstm_bridge.keras.LSTM" in str(info.value)
    targets.check_expressible(layer, "onnx")  # HardSigmoid(0.2, 0.5)
    targets.check_expressible(layer, "keras2")


def test_descriptions_of_front_end_and_file_layers_agree():
    layer = _built(Bidirectional(LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True), name="bi"))
    (d_module,) = targets.describe(layer)
    (d_file,) = targets.describe(to_model_file(layer))
    for field in ("kind", "gate", "candidate", "reverse", "merge_mode", "stateful"):
        assert getattr(d_module, field) == getattr(d_file, field), field


def test_a_recurrent_layer_is_described_by_its_typed_fields():
    """A converter chain's layers are recurrent.RecurrentLayer: their description agrees with the front-end
    layer's, including stateful (which a chain of a stateful Bidirectional used to drop)."""
    from lstm_bridge.convert import chain_from
    from lstm_bridge.recurrent import RecurrentLayer

    layer = _built(
        Bidirectional(LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True, stateful=True), name="bi")
    )
    (d_module,) = targets.describe(layer)
    (chain_layer,) = chain_from(layer).layers
    assert isinstance(chain_layer, RecurrentLayer) and chain_layer.stateful
    (d_chain,) = targets.describe(chain_layer)
    for field in ("kind", "gate", "candidate", "reverse", "merge_mode", "stateful"):
        assert getattr(d_module, field) == getattr(d_chain, field), field
    assert any("stateful=True" in r for r in targets.violations(chain_layer, "mindspore"))
    (plain,) = chain_from(_built(LSTM(3))).layers
    assert targets.describe(plain)[0].kind == "LSTM" and targets.violations(plain, "torch") == []


# --- silent wrong result 1: every writer asks the rule -------------------------------------------


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".safetensors"])
@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: LSTM(4, recurrent_activation="hard_sigmoid", name="hs"), "hard_sigmoid"),
        (lambda: LSTM(4, recurrent_activation="hard_sigmoid", keras_version=3, name="hs"), "relu6"),
        (lambda: LSTM(4, activation="relu", name="hs"), "activation='relu'"),
        (lambda: LSTM(4, go_backwards=True, name="hs"), "go_backwards=True alone"),
    ],
)
def test_save_refuses_what_a_state_dict_cannot_hold_and_writes_nothing(tmp_path, suffix, make, needle):
    layer = _built(make())
    path = tmp_path / f"x{suffix}"
    with pytest.raises(ValueError, match=needle) as info:
        lstm_bridge.save(layer, path)
    text = str(info.value)
    assert "'hs'" in text and "lstm_bridge.keras.LSTM" in text
    # the format module's own save refuses too (no way around the rule)
    fmt = get_format({".ckpt": "mindspore-ckpt", ".pt": "torch", ".safetensors": "safetensors"}[suffix])
    with pytest.raises(ValueError, match=needle):
        fmt.save(to_model_file(layer), path)
    assert os.listdir(tmp_path) == []  # no file, no temporary file


def test_save_refuses_a_real_hard_sigmoid_file_into_a_checkpoint(tmp_path):
    mf = lstm_bridge.load(KERAS / "tfkeras_lstm_hard_sigmoid.h5")
    with pytest.raises(FormatError, match=r"clip\(0.2x \+ 0.5, 0, 1\)"):
        lstm_bridge.save(mf, tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []
    lstm_bridge.save(mf, tmp_path / "x.onnx")  # ONNX's HardSigmoid(0.2, 0.5) holds it


# --- silent wrong result 2: ONNX and Keras masks -------------------------------------------------


@pytest.mark.parametrize("name", ["keras3_emb_lstm_dense.keras", "tfkeras_emb_lstm_dense.h5"])
def test_onnx_export_refuses_to_drop_a_mask(tmp_path, name, capsys):
    pytest.importorskip("onnx")
    mf = lstm_bridge.load(KERAS / name)
    with pytest.raises(FormatError, match="Embedding 'embedding' has mask_zero=True"):
        lstm_bridge.save(mf, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []
    assert main(["convert", str(KERAS / name), str(tmp_path / "m.onnx")]) == 3
    assert "mask_zero=True" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
    # the mask carried as seq_length (right padding): allowed
    report = lstm_bridge.save(mf, tmp_path / "m.onnx", lengths=True)
    assert report.written == ["lstm"]


def test_onnx_batch_first_option_and_no_mutation(tmp_path):
    onnx = pytest.importorskip("onnx")
    from lstm_bridge.convert import chain_from
    from lstm_bridge.formats import onnx as lb_onnx

    net = lstm_bridge.mindspore.LSTM(3, 4)
    lstm_bridge.save(net, tmp_path / "n.ckpt")
    mf = lstm_bridge.load(tmp_path / "n.ckpt")  # a .ckpt does not record batch_first
    lstm_bridge.save(mf, tmp_path / "bf.onnx", batch_first=True)
    dims = onnx.load(str(tmp_path / "bf.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "time", 3]
    chain = chain_from(net)
    lb_onnx.build_model(chain, batch_first=True)
    assert chain.batch_first is False  # the caller's chain is not changed


# --- writer dialects -----------------------------------------------------------------------------


def test_h5_from_a_keras3_source_is_written_in_keras3s_dialect(tmp_path):
    src = lstm_bridge.load(KERAS / "keras3_bilstm_stacked.keras")
    lstm_bridge.save(src, tmp_path / "k3.h5")
    with h5py.File(tmp_path / "k3.h5", "r") as f:
        assert str(f.attrs["keras_version"]).startswith("3.")
        config = f.attrs["model_config"]
        names = list(f["model_weights/lstm_1"].attrs["weight_names"])
    assert "time_major" not in config and "batch_shape" in config
    assert not any(str(n).endswith(":0") for n in names)
    back = lstm_bridge.load(tmp_path / "k3.h5")
    assert back.keras_version == 3
    for a, b in zip(src.lstm_layers(), back.lstm_layers()):
        for da, db in zip(a.weights[0], b.weights[0]):
            assert np.array_equal(da.w_ih, db.w_ih) and np.array_equal(da.w_hh, db.w_hh)
    # asked for explicitly: tf_keras's dialect
    lstm_bridge.save(src, tmp_path / "tk.h5", keras_version=2)
    with h5py.File(tmp_path / "tk.h5", "r") as f:
        assert f.attrs["keras_version"] == "2.21.0" and "time_major" in f.attrs["model_config"]
    with pytest.raises(ValueError, match="keras_version must be 2"):
        lstm_bridge.save(src, tmp_path / "bad.h5", keras_version=4)


def test_keras3_hard_sigmoid_front_end_layer_can_go_to_a_keras3_h5(tmp_path):
    layer = _built(LSTM(4, recurrent_activation="hard_sigmoid", keras_version=3, name="k3hs"))
    with pytest.raises(FormatError, match="cannot be written for tf_keras"):
        lstm_bridge.save(layer, tmp_path / "tk.h5")
    lstm_bridge.save(layer, tmp_path / "k3.h5", keras_version=3)
    (back,) = lstm_bridge.load(tmp_path / "k3.h5").lstm_layers()
    assert back.semantics["recurrent_activation"] == "hard_sigmoid_keras3"


def test_defaults_note_only_when_options_were_dropped(tmp_path):
    layer = _built(LSTM(4, return_sequences=True, go_backwards=True, name="a"))
    report = lstm_bridge.save(layer, tmp_path / "a.h5")
    assert "(layer options)" not in report.skipped
    cfg = json.loads(h5py.File(tmp_path / "a.h5", "r").attrs["model_config"])
    lstm_cfg = [l for l in cfg["config"]["layers"] if l["class_name"] == "LSTM"][0]["config"]
    assert lstm_cfg["return_sequences"] and lstm_cfg["go_backwards"]
    weights_only = lstm_bridge.load(KERAS / "keras3_bilstm_stacked.weights.h5")
    assert "(layer options)" in lstm_bridge.save(weights_only, tmp_path / "w.h5").skipped


# --- MindSpore LSTMCell --------------------------------------------------------------------------


def test_mindspore_lstmcell_checkpoint_converts_where_a_cell_can_be_held(tmp_path, capsys):
    cell = MsLSTMCell(3, 4)
    lstm_bridge.save(cell, tmp_path / "cell.ckpt")
    for out in ("cell.pt", "cell.safetensors", "cell2.ckpt"):
        assert main(["convert", str(tmp_path / "cell.ckpt"), str(tmp_path / out)]) == 0, capsys.readouterr().err
        (layer,) = lstm_bridge.load(tmp_path / out).lstm_layers()
        assert layer.kind == "LSTMCell"
        assert np.array_equal(layer.weights[0][0].w_ih, cell.weight_ih.detach().numpy())
    capsys.readouterr()
    for out in ("cell.h5", "cell.keras"):
        assert main(["convert", str(tmp_path / "cell.ckpt"), str(tmp_path / out)]) == 3
        assert "LSTMCell" in capsys.readouterr().err
    with pytest.raises(FormatError, match="LSTMCell"):
        lstm_bridge.save(lstm_bridge.load(tmp_path / "cell.ckpt"), tmp_path / "cell.onnx")
    assert sorted(os.listdir(tmp_path)) == ["cell.ckpt", "cell.pt", "cell.safetensors", "cell2.ckpt"]


# --- explain -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,needle",
    [
        ("tf.keras.layers.LSTM(-16)", "positive integer"),
        ("tf.keras.layers.LSTM('x')", "positive integer"),
        ("tf.keras.layers.LSTM(1e999)", "positive integer"),
        ("tf.keras.layers.LSTM(0)", "positive integer"),
        ("tf.keras.layers.LSTM(True)", "positive integer"),
        ("mindspore.nn.LSTM(10, -1)", "hidden_size"),
        ("tf.keras.layers.LSTM(4, foo=1)", "unknown keyword argument 'foo'; accepted: units, activation"),
        ("mindspore.nn.LSTM(10, 16, bogus=True)", "unknown keyword argument 'bogus'; accepted: input_size"),
        ("tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(4, nope=1))", "'nope'"),
    ],
)
def test_explain_refuses_what_the_constructor_refuses(text, needle):
    with pytest.raises(ExplainError, match=needle):
        explain(text)


def test_explain_of_a_non_expressible_layer_names_the_exact_module():
    out = format_explanation(explain("tf.keras.layers.LSTM(4, recurrent_activation='hard_sigmoid')", 2))
    assert "NOT expressible" in out and "lstm_bridge.keras.LSTM" in out
    assert "lstm_bridge.keras.LSTM" not in format_explanation(explain("tf.keras.layers.LSTM(4)"))


def _with_masking(path):
    """A copy of the tf_keras bilstm fixture with a Masking layer in front of the LSTMs."""
    import shutil

    shutil.copy(KERAS / "tfkeras_bilstm_stacked.h5", path)
    with h5py.File(path, "a") as f:
        cfg = json.loads(f.attrs["model_config"])
        layers = cfg["config"]["layers"]
        layers.insert(
            1,
            {
                "class_name": "Masking",
                "name": "masking",
                "inbound_nodes": [[["features", 0, 0, {}]]],
                "config": {"name": "masking", "trainable": True, "dtype": "float32", "mask_value": 0.0},
            },
        )
        layers[2]["inbound_nodes"] = [[["masking", 0, 0, {}]]]
        f.attrs["model_config"] = json.dumps(cfg)
        g = f["model_weights"]
        g.create_group("masking").attrs["weight_names"] = np.array([], dtype=np.float64)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["layer_names"]]
        g.attrs["layer_names"] = np.array(names[:1] + ["masking"] + names[1:], dtype=h5py.string_dtype("utf-8"))


def test_a_masking_layer_is_not_dropped_by_a_generated_keras_model(tmp_path):
    _with_masking(tmp_path / "m.h5")
    mf = lstm_bridge.load(tmp_path / "m.h5")
    assert "masking" in [e.name for e in mf.layers]
    with pytest.raises(FormatError, match="Masking 'masking'"):
        lstm_bridge.save(mf, tmp_path / "m.keras")  # Keras 3: a generated model has no Masking layer
    with pytest.raises(FormatError, match="Masking 'masking'"):
        lstm_bridge.save(mf, tmp_path / "m.onnx")
    lstm_bridge.save(mf, tmp_path / "same.h5")  # the same generation copies the config, mask included
    assert "Masking" in h5py.File(tmp_path / "same.h5", "r").attrs["model_config"]
    assert sorted(os.listdir(tmp_path)) == ["m.h5", "same.h5"]


def test_mask_lengths_only_for_right_padding():
    assert targets.mask_lengths([[1, 1, 0], [1, 1, 1]]).tolist() == [2, 3]
    with pytest.raises(ValueError, match=r"holes or left padding.*rows \[0, 1\]"):
        targets.mask_lengths([[1, 0, 1], [0, 1, 1]])
