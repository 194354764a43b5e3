"""``lstm-bridge inspect`` / ``verify`` on whole Keras models (lstm_bridge.models.summary / models.verify)."""

from __future__ import annotations

import json
import shutil

import pytest

from lstm_bridge.cli import main

import golden_data as gd

pytestmark = pytest.mark.skipif(not gd.model_cases(), reason="golden model files not generated")


def test_inspect_shows_every_layer_of_a_whole_model(capsys):
    path = str(gd.model_path("keras3", "merge_graph", "keras"))
    assert main(["inspect", path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    model = info["model"]
    assert model["keras_generation"] == 3
    by_name = {item["name"]: item for item in model["layers"]}
    entry, _ = gd.model_entry("keras3", "merge_graph")
    for layer in entry["layers"]:  # every Keras layer of the model, with its class
        assert by_name[layer["name"]]["class"] == layer["class"], layer
    assert by_name["embedding"]["settings"]["mask_zero"] is True
    assert by_name["embedding"]["masked_output"] is True
    assert by_name["masking"]["settings"]["mask_value"] == 0.0
    assert by_name["proj"]["settings"]["activation"] == "tanh"
    assert by_name["proj"]["output_shape"] == [[4, 7, 4]]


def test_inspect_text_table_of_model_layers(capsys):
    path = str(gd.model_path("tf_keras", "lstm_hard_td", "h5"))
    assert main(["inspect", path]) == 0
    text = capsys.readouterr().out
    assert "whole model (Keras generation 2)" in text
    assert "model layers" in text and "TimeDistributed" in text and "merge_mode=mul" in text


def _port(tmp_path, capsys, flavour="keras3", model_id="embed_bilstm"):
    src = str(gd.model_path(flavour, model_id, "keras"))
    out = tmp_path / "port"
    assert main(["port", src, str(out)]) == 0
    capsys.readouterr()
    return src, out


def test_verify_keras_model_against_its_port_per_layer(tmp_path, capsys):
    src, out = _port(tmp_path, capsys)
    assert main(["verify", src, str(out)]) == 0
    text = capsys.readouterr().out
    for name in ("output 0", "layer embedding", "layer bilstm", "layer lstm", "layer dense"):
        assert name in text
    assert "lengths per row" in text and "OK: max |difference|" in text


def test_verify_exits_1_above_tol_naming_the_layer(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    src, out = _port(tmp_path, capsys)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    state = load_file(str(broken / "weights.safetensors"))
    state["dense.weight"] = state["dense.weight"] * 1.01
    save_file(state, str(broken / "weights.safetensors"))
    assert main(["verify", src, str(broken)]) == 1
    text = capsys.readouterr().out
    assert "FAILED" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") >= 3}
    assert rows["layer embedding"].split("│")[2].strip() == "0"
    assert rows["layer dense"].split("│")[2].strip() != "0"


def test_verify_two_generations_of_a_model(capsys):
    a = str(gd.model_path("keras3", "conv_norm_lstm", "keras"))
    b = str(gd.model_path("keras3", "conv_norm_lstm", "h5"))
    assert main(["verify", a, b]) == 0
    assert "layer " in capsys.readouterr().out


def test_verify_keras_model_against_its_onnx_export(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    src = str(gd.model_path("keras3", "embed_bilstm", "keras"))
    onnx_path = tmp_path / "m.onnx"
    assert main(["convert", src, str(onnx_path), "--right-padded"]) == 0
    capsys.readouterr()
    assert main(["verify", src, str(onnx_path)]) == 0
    text = capsys.readouterr().out
    assert "final predictions only" in text and "OK" in text


@pytest.mark.parametrize("flavour,model_id,fmt", gd.model_cases())
def test_inspect_lists_every_layer_of_each_golden_model(flavour, model_id, fmt):
    from lstm_bridge.models.summary import summarize

    entry, _ = gd.model_entry(flavour, model_id)
    info = summarize(str(gd.model_path(flavour, model_id, fmt)))
    classes = {item["name"]: item["class"] for item in info["layers"]}
    for layer in entry["layers"]:
        assert classes.get(layer["name"]) == layer["class"], (layer, sorted(classes))


def test_verify_two_different_models_exits_1(capsys):
    a = str(gd.model_path("keras3", "embed_bilstm", "keras"))
    b = str(gd.model_path("keras3", "lstm_hard_td", "keras"))
    assert main(["verify", a, b]) == 1
    assert "are not the same model" in capsys.readouterr().err
