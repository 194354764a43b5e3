"""Whole Keras models to ONNX (lstm_bridge.models.onnx_export, ``lstm-bridge convert model.keras model.onnx``):
every golden model exports and reproduces Keras's predictions in onnxruntime; masks are never dropped."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import golden_data as gd

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from lstm_bridge.cli import main  # noqa: E402
from lstm_bridge.models import load_model  # noqa: E402
from lstm_bridge.models.graph import model_from_config  # noqa: E402
from lstm_bridge.models.onnx_export import ExportError, build_onnx, export_onnx  # noqa: E402

CASES = gd.model_cases()


def _run(path: str, names, xs):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, xs)))


@pytest.mark.skipif(not CASES, reason="golden model files not generated")
@pytest.mark.parametrize("flavour,model_id,fmt", CASES)
def test_golden_model_in_onnxruntime_matches_keras(flavour, model_id, fmt, tmp_path):
    entry, arrays = gd.model_entry(flavour, model_id)
    out = tmp_path / "m.onnx"
    report = export_onnx(gd.model_path(flavour, model_id, fmt), out, right_padded=True)
    assert report.max_abs_diff <= 1e-5
    xs = [x.numpy() for x in gd.model_inputs(entry, arrays)]
    got = _run(str(out), report.inputs, xs)
    holes = any(spec.get("holes") for spec in entry["inputs"])
    assert len(got) == len(entry["outputs"])
    for g, key in zip(got, entry["outputs"]):
        expected = arrays[key]
        nan_rows = np.isnan(g).reshape(g.shape[0], -1).any(axis=1) & ~np.isnan(expected).reshape(g.shape[0], -1).any(
            axis=1
        )
        if not holes:
            assert not nan_rows.any(), f"{key}: NaN rows {nan_rows} on right-padded inputs"
        # rows with holes in a mask give NaN (the graph's guard), never a wrong number; the others match Keras
        assert gd.model_error(g[~nan_rows], expected[~nan_rows]) <= gd.MODEL_TOL, key


def test_mask_zero_model_is_refused_without_right_padded_and_nothing_is_written(tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"Embedding 'embedding' \(mask_zero=True\).*right_padded=True"):
        export_onnx(gd.model_path("keras3", "embed_bilstm", "keras"), out)
    assert os.listdir(tmp_path) == []


def test_mask_zero_model_on_padded_batches_is_never_silently_wrong(tmp_path):
    """The issue's 0.326: right-padded rows match load_model; a row with a hole gives NaN, not a number."""
    path = gd.model_path("tf_keras", "embed_bilstm", "h5")
    out = tmp_path / "m.onnx"
    report = export_onnx(path, out, right_padded=True)
    model = load_model(path)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 6, (6, 7), generator=g, dtype=torch.int32)
    for b, n in enumerate([7, 1, 4, 6, 2, 5]):
        ids[b, n:] = 0
    with torch.no_grad():
        ref = model(ids).numpy()
    got = _run(str(out), report.inputs, [ids.numpy()])[0]
    assert np.abs(got - ref).max() <= 1e-5
    holed = ids.clone()
    holed[0, 3] = 0  # a 0 token inside a row: Keras skips that step, ONNX's sequence_lens cannot
    got_h = _run(str(out), report.inputs, [holed.numpy()])[0]
    assert np.isnan(got_h[0]).all()
    with torch.no_grad():
        ref_h = model(holed).numpy()
    assert np.abs(got_h[1:] - ref_h[1:]).max() <= 1e-5


def test_layer_without_onnx_mapping_is_refused_naming_it():
    config = {
        "name": "m",
        "layers": [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 5, 2, 3], "dtype": "float32"}},
            {
                "class_name": "TimeDistributed",
                "config": {"name": "td_mask", "layer": {"class_name": "Masking", "config": {"name": "inner"}}},
            },
        ],
    }
    model = model_from_config({"class_name": "Sequential", "config": config}, 3).eval()
    with pytest.raises(ExportError, match=r"layer 'td_mask' \(TimeDistributed of Masking\)"):
        build_onnx(model, {"class_name": "Sequential", "config": config})


def test_time_distributed_of_a_rank_bound_layer_folds_batch_and_time(tmp_path):
    """TimeDistributed(Flatten) / (MaxPooling1D) of (B, T, steps, C), as CNN-LSTM models use them."""
    model, entry = _in_memory(
        [
            {
                "class_name": "InputLayer",
                "config": {"name": "x", "batch_shape": [None, None, 4, 3], "dtype": "float32"},
            },
            {
                "class_name": "TimeDistributed",
                "config": {"name": "td_pool", "layer": {"class_name": "MaxPooling1D", "config": {"name": "p"}}},
            },
            {
                "class_name": "TimeDistributed",
                "config": {"name": "td_flat", "layer": {"class_name": "Flatten", "config": {"name": "f"}}},
            },
        ]
    )
    proto, report, _ = build_onnx(model, entry)
    path = tmp_path / "td.onnx"
    path.write_bytes(proto.SerializeToString())
    x = np.random.default_rng(2).standard_normal((2, 5, 4, 3)).astype(np.float32)
    got = _run(str(path), report.inputs, [x])[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (2, 5, 6)
    assert np.abs(got - ref).max() == 0.0


def test_cli_convert_whole_model(tmp_path, capsys):
    src = str(gd.model_path("keras3", "conv_norm_lstm", "keras"))
    out = tmp_path / "m.onnx"
    assert main(["convert", src, str(out)]) == 0
    text = capsys.readouterr().out
    assert "whole model" in text and "OK: max |difference|" in text
    refused = tmp_path / "r.onnx"
    masked = str(gd.model_path("keras3", "embed_bilstm", "keras"))
    assert main(["convert", masked, str(refused)]) == 3
    assert "mask_zero=True" in capsys.readouterr().err
    assert not refused.exists()
    assert main(["convert", masked, str(refused), "--right-padded"]) == 0
    assert "mask as sequence_lens" in capsys.readouterr().out


def test_api_exports_a_loaded_and_changed_model(tmp_path):
    """lstm_bridge.models.export_onnx takes the module load_model returned (e.g. after fine-tuning)."""
    from lstm_bridge.models import export_onnx as api_export

    path = gd.model_path("keras3", "conv_norm_lstm", "keras")
    model = load_model(path)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.9)
    report = api_export(model, tmp_path / "m.onnx")
    entry, arrays = gd.model_entry("keras3", "conv_norm_lstm")
    xs = [x for x in gd.model_inputs(entry, arrays)]
    got = _run(str(tmp_path / "m.onnx"), report.inputs, [x.numpy() for x in xs])[0]
    with torch.no_grad():
        ref = model(*xs).numpy()
    assert np.abs(got - ref).max() <= 1e-5
    assert gd.model_error(got, arrays[entry["outputs"][0]]) > 1e-5  # the changed weights, not the file's


TF_PYTHON = gd.ROOT / ".golden-venvs" / "tf" / "bin" / "python"

_BUILD = r"""
import os, sys, numpy as np
gen, folder = sys.argv[1], sys.argv[2]
if gen == "tf_keras":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
else:
    import keras
L = keras.layers
rng = np.random.default_rng(0)
ids = rng.integers(1, 30, (5, 9)).astype("int32")
x = rng.standard_normal((5, 9, 3)).astype("float32")
for b, n in enumerate([9, 3, 5, 1, 8]):
    ids[b, n:] = 0
    x[b, n:] = 0
i = keras.Input((None,), dtype="int32")
h = L.Embedding(30, 6, mask_zero=True)(i)
h = L.GRU(5, return_sequences=True, reset_after=False)(h)
h = L.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu")(h)
h = L.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid")(h)
o1 = L.GlobalAveragePooling1D()(L.TimeDistributed(L.Dense(3, activation="gelu"))(h))
f = keras.Input((None, 3))
m = L.Masking()(f)
s, hh, cc = L.LSTM(4, return_sequences=True, return_state=True)(m)
bi = L.Bidirectional(L.GRU(2, return_sequences=True))(m)
last = L.LSTM(4)(L.Concatenate()([s, bi]), initial_state=[hh, cc])
c = L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="swish")(f)
c = L.MaxPooling1D(2, padding="same")(L.Conv1D(5, 3, strides=2, padding="same")(c))
c = L.GlobalMaxPooling1D()(L.LayerNormalization()(L.BatchNormalization()(c)))
o2 = L.Dense(2, activation="softmax")(L.Concatenate()([last, c, L.Dot(axes=1, normalize=True)([last, hh])]))
model = keras.Model([i, f], [o1, o2])
model.save(os.path.join(folder, "m.keras"))
ys = model.predict([ids, x], verbose=0)
np.savez(os.path.join(folder, "m.npz"), ids=ids, x=x, y0=ys[0], y1=ys[1])
# CNN-LSTM: TimeDistributed Conv1D / pooling / Flatten over (B, T, steps, C), then an LSTM
v = keras.Input((None, 6, 2))
t = L.TimeDistributed(L.Conv1D(3, 2, activation="relu"))(v)
t = L.TimeDistributed(L.MaxPooling1D(2))(t)
t = L.TimeDistributed(L.Flatten())(t)
cnn = keras.Model(v, L.Dense(2)(L.LSTM(4)(t)))
cnn.save(os.path.join(folder, "cnn.keras"))
xv = rng.standard_normal((3, 5, 6, 2)).astype("float32")
np.savez(os.path.join(folder, "cnn.npz"), x=xv, y=cnn.predict(xv, verbose=0))
"""


@pytest.mark.live
@pytest.mark.skipif(not TF_PYTHON.exists(), reason="the TensorFlow golden environment (.golden-venvs/tf) is absent")
@pytest.mark.parametrize("gen", ["keras3", "tf_keras"])
def test_live_open_time_axis_masked_model_in_onnxruntime_matches_keras(gen, tmp_path):
    """A real Keras model with open time axes, both mask producers, GRU reset_after=False, go_backwards,
    hard_sigmoid, return_state + initial_state, Conv1D causal/strided, pooling, normalization, Dot; and a
    CNN-LSTM (TimeDistributed Conv1D / MaxPooling1D / Flatten)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    subprocess.run([str(TF_PYTHON), "-c", _BUILD, gen, str(tmp_path)], check=True, env=env, timeout=600)
    data = np.load(tmp_path / "m.npz")
    report = export_onnx(tmp_path / "m.keras", tmp_path / "m.onnx", right_padded=True)
    got = _run(str(tmp_path / "m.onnx"), report.inputs, [data["ids"], data["x"]])
    for g, key in zip(got, ("y0", "y1")):
        assert gd.model_error(g, data[key]) <= gd.MODEL_TOL, key
    cnn = np.load(tmp_path / "cnn.npz")
    report = export_onnx(tmp_path / "cnn.keras", tmp_path / "cnn.onnx")
    got = _run(str(tmp_path / "cnn.onnx"), report.inputs, [cnn["x"]])[0]
    assert gd.model_error(got, cnn["y"]) <= gd.MODEL_TOL


def _in_memory(layers, keras_version=3):
    config = {"name": "m", "layers": layers}
    entry = {"class_name": "Sequential", "config": config}
    return model_from_config(entry, keras_version).eval(), entry


def test_recurrent_activation_onnx_cannot_hold_is_refused_naming_the_layer():
    model, entry = _in_memory(
        [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, 5, 3], "dtype": "float32"}},
            {"class_name": "LSTM", "config": {"name": "lstm_selu", "units": 2, "activation": "selu"}},
        ]
    )
    rng = np.random.default_rng(0)
    model.module("lstm_selu").load_keras_weights(
        [rng.standard_normal((3, 8)), rng.standard_normal((2, 8)), rng.standard_normal(8)]
    )
    with pytest.raises(ExportError, match=r"layer 'lstm_selu'.*'selu'"):
        build_onnx(model, entry)


def test_mask_reaching_only_masked_pooling_needs_no_flag_and_holes_stay_exact(tmp_path):
    """GlobalAveragePooling1D's masked mean holds any mask (holes too): no right-padding statement needed."""
    model, entry = _in_memory(
        [
            {"class_name": "InputLayer", "config": {"name": "x", "batch_shape": [None, None, 3], "dtype": "float32"}},
            {"class_name": "Masking", "config": {"name": "masking", "mask_value": 0.0}},
            {"class_name": "GlobalAveragePooling1D", "config": {"name": "gap"}},
        ]
    )
    proto, report, _ = build_onnx(model, entry)
    assert report.masks == ["Masking 'masking' -> layer 'gap' (masked mean)"]
    x = np.random.default_rng(1).standard_normal((3, 6, 3)).astype(np.float32)
    x[0, 2] = 0  # a hole
    x[1, :3] = 0  # left padding
    x[2, 4:] = 0
    path = tmp_path / "gap.onnx"
    path.write_bytes(proto.SerializeToString())
    got = _run(str(path), report.inputs, [x])[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() <= 1e-6
    unmasked = x.mean(axis=1)
    assert np.abs(unmasked - ref).max() > 1e-2  # the mask matters here


def test_torch_onnx_export_of_a_loaded_model_in_a_fresh_process_finds_the_translations(tmp_path):
    """The dynamo ONNX exporter builds its function registry before it captures the model; a loaded model's
    layers have not run yet, so the ops' translations must be registered when the engine is imported (they
    were not: "No ONNX function found for lstm_bridge.lstm_layer")."""
    pytest.importorskip("onnxscript")
    import pathlib

    from helpers import run_fresh

    fixture = pathlib.Path(__file__).parent / "fixtures" / "keras" / "tfkeras_bilstm_stacked"
    code = (
        "import numpy as np, torch, onnxruntime as ort\n"
        "from torch.export import Dim\n"
        "from lstm_bridge.models import load_model\n"
        f"m = load_model({str(fixture) + '.h5'!r})\n"
        f"x = torch.from_numpy(np.load({str(fixture) + '_input.npy'!r}))\n"
        "dims = (({0: Dim('B', min=2), 1: Dim('T', min=2)},),)\n"
        "program = torch.onnx.export(m, (x,), dynamo=True, dynamic_shapes=dims, verbose=False)\n"
        "assert 'LSTM' in {n.op_type for n in program.model_proto.graph.node}\n"
        "session = ort.InferenceSession(program.model_proto.SerializeToString())\n"
        "x3 = torch.cat([x, x[:1]]).contiguous()\n"
        "for v in (x, x3):\n"
        "    got = session.run(None, {session.get_inputs()[0].name: v.numpy()})[0]\n"
        "    np.testing.assert_allclose(got, m(v).detach().numpy(), rtol=1e-4, atol=1e-5)\n"
        "print('ok')\n"
    )
    run_fresh(code)
