"""Two ``load_model`` regressions on real Keras files (tests/golden/models_extra/, written by
tools/golden_models_extra.py with tf_keras 2.21 and Keras 3.15.1; Keras's predictions in <flavour>.npz):

* ``nested_twice``: a nested functional model called twice whose FIRST call is a model output. Keras 3 writes
  that output ``["inner", 1, 0]`` (``output_layers`` count a nested Functional's nodes from 1) while call
  arguments say ``["inner", 0, 0]``; read as call 1 it was the second call's output (off by up to 3.2).
* ``attr_names``: layers named ``to``, ``forward``, ``training``, ``state_dict``, ``keys`` (torch.nn.Module /
  ModuleDict attribute names) made load_model fail with ``KeyError: "attribute 'forward' already exists"``.

Both load (``.keras`` and ``.h5``, both generations) and port (PyTorch and MindSpore source) to Keras's
predictions."""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent / "golden" / "models_extra"
FLAVOURS = ("tf_keras", "keras3")
MODELS = ("nested_twice", "attr_names")
CASES = [(fl, m, fmt) for fl in FLAVOURS for m in MODELS for fmt in ("keras", "h5")]
TOL = 1e-5


def _golden(flavour: str, model_id: str):
    with np.load(HERE / f"{flavour}.npz") as z:
        ins = [z[k] for k in sorted(k for k in z.files if k.startswith(f"{model_id}/in"))]
        outs = [z[k] for k in sorted(k for k in z.files if k.startswith(f"{model_id}/out"))]
    assert ins and outs, f"{flavour}/{model_id}: run tools/golden_models_extra.py"
    return ins, outs


def _check(got, outs, what: str) -> None:
    got = got if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(outs), f"{what}: expected {len(outs)} outputs; received {len(got)}"
    for k, (g, o) in enumerate(zip(got, outs)):
        g = g.detach().cpu().numpy() if isinstance(g, torch.Tensor) else np.asarray(g)
        err = float(np.max(np.abs(g - o) / (1.0 + np.abs(o))))
        assert err <= TOL, f"{what}: output {k} differs from Keras by {err:.3g}"


@pytest.mark.parametrize("flavour,model_id,fmt", CASES, ids=["/".join(c) for c in CASES])
def test_load_model_reproduces_keras(flavour, model_id, fmt):
    from lstm_bridge import load_model

    ins, outs = _golden(flavour, model_id)
    model = load_model(str(HERE / flavour / f"{model_id}.{fmt}"))
    with torch.no_grad():
        got = model(*[torch.from_numpy(x) for x in ins])
    _check(got, outs, f"{flavour}/{model_id}.{fmt}")


def test_keras3_output_layers_of_a_nested_functional_count_its_nodes_from_one():
    from lstm_bridge import load_model
    from lstm_bridge.models.graph import TensorRef

    path = HERE / "keras3" / "nested_twice.keras"
    with zipfile.ZipFile(path) as zf:
        config = json.load(io.BytesIO(zf.read("config.json")))["config"]
    # what the real Keras 3.15.1 wrote: outputs by 1-based node, call arguments by 0-based call
    assert config["output_layers"] == [["inner", 1, 0], ["lstm", 0, 0], ["inner", 2, 0]]
    lstm = next(e for e in config["layers"] if e["name"] == "lstm")
    assert lstm["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["inner", 1, 0]
    model = load_model(str(path))
    assert model.outputs == [TensorRef("inner", 0, 0), TensorRef("lstm", 0, 0), TensorRef("inner", 1, 0)]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_layers_named_like_module_attributes(flavour):
    from lstm_bridge import load_model

    model = load_model(str(HERE / flavour / "attr_names.keras"))
    names = [n for n, _, _ in model.entries]
    assert {"to", "forward", "training", "state_dict", "keys"} <= set(names), names
    assert type(model.module("forward")).__name__ == "LSTM"
    assert type(model.module("training")).__name__ == "Dense"
    # the Module itself is untouched: its mode flag, methods and state_dict still work
    assert model.training is False and callable(model.forward) and callable(model.to)
    assert len(model.state_dict()) == sum(len(m.state_dict()) for _, m in model.weighted_layers())


@pytest.mark.parametrize("model_id", MODELS)
def test_port_to_torch(model_id, tmp_path):
    from lstm_bridge.models.port import write_port

    ins, outs = _golden("keras3", model_id)
    out = tmp_path / "port"
    write_port(str(HERE / "keras3" / f"{model_id}.keras"), str(out))
    spec = importlib.util.spec_from_file_location(f"m5_port_{model_id}", out / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with torch.no_grad():
        got = mod.load()(*[torch.from_numpy(x) for x in ins])
    _check(got, outs, f"port of keras3/{model_id}")


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("model_id", MODELS)
def test_port_to_mindspore(flavour, model_id, tmp_path):
    from lstm_bridge.models.port_mindspore import write_port_mindspore

    p = write_port_mindspore(str(HERE / flavour / f"{model_id}.keras"), str(tmp_path / "port"))
    assert p.outputs_max_diff <= 2e-4  # MS_TOL of tests/test_port_mindspore.py (MindSpore 2.10 CPU tanh)
