"""Real tf_keras 2.21 / Keras 3.15.1 models rebuilt from their own configs through lstm_bridge.keras.

Each ``.keras`` file's config.json is turned into our layers with ``from_config``; the weights are read
by hand from its ``model.weights.h5`` (layers/<key>/.../vars/<i>); the output must match the output the
real framework wrote (``*_output.npy``) within 1e-5.
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from lstm_bridge import activations  # noqa: E402
from lstm_bridge.keras import LSTM, Bidirectional  # noqa: E402

from helpers import FIXTURES, max_abs  # noqa: E402

KERAS = FIXTURES / "keras"


def _open(name):
    archive = zipfile.ZipFile(KERAS / f"{name}.keras")
    config = json.loads(archive.read("config.json"))
    version = json.loads(archive.read("metadata.json"))["keras_version"]
    weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    return config, version, weights


def _vars(group):
    return [group[str(i)][()] for i in range(len(group))]


def _run_model(name):
    config, version, weights = _open(name)
    major = int(version.split(".")[0])
    x = np.load(KERAS / f"{name}_input.npy")
    counters = {}
    value, mask = x, None
    for entry in config["config"]["layers"]:
        cls, cfg = entry["class_name"], entry["config"]
        key_base = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", cls)).lower()
        n = counters.get(key_base, 0)
        counters[key_base] = n + 1
        key = key_base if n == 0 else f"{key_base}_{n}"
        group = weights["layers"][key] if key in weights["layers"] else None
        if cls == "Embedding":
            table = _vars(group["vars"])[0]
            if cfg.get("mask_zero"):
                mask = value != 0
            value = table[value]
        elif cls == "LSTM":
            layer = LSTM.from_config(cfg, keras_version=major)
            layer.set_weights(_vars(group["cell"]["vars"]))
            value = layer(value, mask=mask).detach().numpy()
            if not layer.return_sequences:
                mask = None
        elif cls == "Bidirectional":
            layer = Bidirectional.from_config(cfg, keras_version=major)
            layer.set_weights(
                _vars(group["forward_layer"]["cell"]["vars"]) + _vars(group["backward_layer"]["cell"]["vars"])
            )
            value = layer(value, mask=mask).detach().numpy()
        elif cls == "Dense":
            kernel, bias = _vars(group["vars"])
            value = value @ kernel + bias
            assert cfg["activation"] == "linear"
    return value, np.load(KERAS / f"{name}_output.npy"), layer


@pytest.mark.parametrize(
    "name",
    [
        f"{flavour}_{model}"
        for flavour in ("tfkeras", "keras3")
        for model in ("bilstm_stacked", "emb_lstm_dense", "lstm_hard_sigmoid")
    ],
)
def test_real_keras_model_outputs_are_reproduced(name):
    got, expected, last_layer = _run_model(name)
    assert got.shape == expected.shape
    assert max_abs(got, expected) <= 1e-5


def test_the_file_version_decides_which_hard_sigmoid():
    _, _, tk_layer = _run_model("tfkeras_lstm_hard_sigmoid")
    _, _, k3_layer = _run_model("keras3_lstm_hard_sigmoid")
    assert tk_layer.cell.recurrent_activation is activations.hard_sigmoid_keras2
    assert k3_layer.cell.recurrent_activation is activations.hard_sigmoid_keras3
    # and the two really differ on the same weights (spec §2.2: ~0.05)
    x = np.load(KERAS / "keras3_lstm_hard_sigmoid_input.npy")
    assert max_abs(tk_layer(x), k3_layer(x)) > 1e-3
