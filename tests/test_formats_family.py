"""GRU and SimpleRNN (and their Bidirectionals, stacks mixing LSTM/GRU/RNN) in files (issue 11 item 5).

Truth is the real framework: ``tests/fixtures/family_files/`` holds files written by tf_keras 2.21, Keras 3.15
and MindSpore 2.10 with the framework's outputs (``tools/golden_family_files.py``, ``make golden-family-files``).
Each file loads and runs to those outputs (forward <= 1e-5), goes to every target that can hold it and back
with the same weights, and is refused with the reason by the targets that cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

import lstm_bridge
from lstm_bridge import keras, mindspore, targets
from lstm_bridge.convert import chain_from_model_file, run_chain
from lstm_bridge.formats import FormatError

F = Path(__file__).parent / "fixtures" / "family_files"
TOL = 1e-5


def _npz(name: str) -> Dict[str, np.ndarray]:
    with np.load(F / f"{name}.npz") as d:
        return {k: d[k] for k in d.files}


def _run_file(mf) -> np.ndarray:
    """The file's recurrent chain on the recorded input (batch-first in, batch-first out)."""
    data = _npz(Path(mf.path).name.split(".")[0])
    res = run_chain(chain_from_model_file(mf), torch.as_tensor(data["x"]).transpose(0, 1))
    out = res.outputs[0].detach()
    return (out.transpose(0, 1) if out.dim() == 3 else out).numpy()


def _weights(mf) -> List[tuple]:
    """(cell, reset_after, arrays) per (stacked layer, direction) of every recurrent entry, in file order: the
    arrays that decide the function (a folded bias where the layout folds it: Keras LSTM / SimpleRNN / reset-
    before GRU keep ``b_ih + b_hh``; a reset-after GRU keeps both)."""
    out = []
    for e in mf.recurrent_entries():
        for dirs in e.weights:
            for w in dirs:
                w = w.numpy()
                if e.cell == "GRU" and e.reset_after and w.has_bias:
                    biases = [w.b_ih, w.b_hh]
                else:
                    biases = [w.bias_sum()] if w.has_bias else []
                out.append((e.cell, e.reset_after, [np.asarray(a) for a in [w.w_ih, w.w_hh, *biases]]))
    return out


def _same_weights(a, b) -> None:
    assert [(c, r) for c, r, _ in a] == [(c, r) for c, r, _ in b]
    for (_, _, xs), (_, _, ys) in zip(a, b):
        assert len(xs) == len(ys)
        for x, y in zip(xs, ys):
            np.testing.assert_array_equal(x, y)


# --- real files run to the framework's outputs ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, cells",
    [
        ("tk_family.h5", [("GRU", False), ("RNN", True), ("GRU", True)]),
        ("tk_cudnn_gru.h5", [("GRU", True)]),
        ("tk_cudnn_lstm.h5", [("LSTM", True)]),
        ("k3_family.keras", [("LSTM", True), ("GRU", True), ("GRU", False), ("RNN", True)]),
        ("k3_family.h5", [("LSTM", True), ("GRU", True), ("GRU", False), ("RNN", True)]),
    ],
)
def test_a_real_keras_family_file_reproduces_the_framework(name, cells):
    mf = lstm_bridge.load(F / name)
    assert [(e.cell, e.reset_after) for e in mf.recurrent_entries()] == cells
    got = _run_file(mf)
    want = _npz(name.split(".")[0])["y"]
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOL


def test_the_activations_each_file_states_are_read_with_its_generation():
    tk = {e.name: e.semantics for e in lstm_bridge.load(F / "tk_family.h5").recurrent_entries()}
    assert tk["gru_before"]["recurrent_activation"] == "hard_sigmoid"  # Keras 2: clip(0.2x + 0.5)
    assert tk["bi_rnn"]["activation"] == "relu"
    k3 = {e.name: e.semantics for e in lstm_bridge.load(F / "k3_family.keras").recurrent_entries()}
    assert k3["gru_hs"]["recurrent_activation"] == "hard_sigmoid_keras3"  # Keras 3: relu6(x + 3) / 6
    (cudnn,) = lstm_bridge.load(F / "tk_cudnn_gru.h5").recurrent_entries()
    assert (cudnn.semantics["recurrent_activation"], cudnn.semantics.get("cudnn")) == ("sigmoid", True)


@pytest.mark.parametrize(
    "weights_file, full", [("tk_family_weights.h5", "tk_family.h5"), ("tk_family.weights.h5", "tk_family.h5")]
)
def test_weights_only_family_files_hold_the_full_models_weights(weights_file, full):
    """No config: the GRU form comes from the bias shape ((3u,) reset-before, (2, 3u) reset-after)."""
    _same_weights(_weights(lstm_bridge.load(F / weights_file)), _weights(lstm_bridge.load(F / full)))


def test_keras3_weights_h5_holds_the_keras_files_weights():
    by_name = {e.name: e for e in lstm_bridge.load(F / "k3_family.weights.h5").recurrent_entries()}
    for e in lstm_bridge.load(F / "k3_family.keras").recurrent_entries():
        w = by_name[e.name]
        assert (w.cell, w.reset_after) == (e.cell, e.reset_after)
        for a, b in zip(w.weights[0], e.weights[0]):
            assert a.equal(b)


def _ms_modules(mf):
    """lstm_bridge.mindspore.GRU / RNN built from the checkpoint's entries (MindSpore's CPU numerics)."""
    gru_e, rnn_e = mf.layers[0], mf.layers[1]
    gru = mindspore.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    gru.load_state_dict({k: torch.as_tensor(v) for k, v in gru_e.weights.items()})
    rnn = mindspore.RNN(8, 3, batch_first=True, nonlinearity="relu")
    rnn.load_state_dict({k: torch.as_tensor(v) for k, v in rnn_e.weights.items()})
    return gru, rnn


def test_a_real_mindspore_checkpoint_runs_to_mindspores_outputs():
    mf = lstm_bridge.load(F / "ms_family.ckpt")
    assert [(e.name, e.kind) for e in mf.layers] == [("gru", "GRU"), ("rnn", "RNN")]
    data = _npz("ms_family")
    gru, rnn = _ms_modules(mf)
    g, _ = gru(torch.as_tensor(data["x"]))
    y, _ = rnn(g)
    assert np.abs(g.detach().numpy() - data["y_gru"]).max() <= TOL
    assert np.abs(y.detach().numpy() - data["y"]).max() <= TOL


# --- round trips through every target that can hold a file ---------------------------------------------

ROUND_TRIPS = [
    ("tk_family.h5", [".h5", ".weights.h5"]),
    ("tk_cudnn_gru.h5", [".h5", ".keras", ".weights.h5", ".pt", ".ckpt", ".safetensors"]),
    ("k3_family.keras", [".keras", ".h5", ".weights.h5"]),
    ("ms_family.ckpt", [".ckpt", ".pt", ".safetensors", ".h5", ".keras", ".weights.h5"]),
]


def _load_relu(name: str):
    """A file, with the MindSpore checkpoint's RNN told its nonlinearity (a state dict does not record it;
    tools/golden_family_files.py built it with nonlinearity="relu")."""
    mf = lstm_bridge.load(F / name)
    if name == "ms_family.ckpt":
        mf.entry("rnn").config = dict(mf.entry("rnn").config, nonlinearity="relu")
    return mf


@pytest.mark.parametrize("name, suffixes", ROUND_TRIPS)
def test_family_files_round_trip_through_every_target_that_holds_them(tmp_path, name, suffixes):
    src = _load_relu(name)
    for suffix in suffixes:
        out = tmp_path / f"out{suffix}"
        lstm_bridge.save(src, out)
        back = lstm_bridge.load(out)
        if suffix == ".weights.h5" and src.framework == "keras" and name.startswith("k3"):
            continue  # a standalone Keras 3 .weights.h5 of a 3->4->3->4 chain cannot say its order (test above)
        _same_weights(_weights(back), _weights(src))
        if src.framework == "keras" and suffix in (".h5", ".keras"):
            assert np.array_equal(_run_file_as(back, name), _run_file(src)), suffix


def _run_file_as(mf, source_name: str) -> np.ndarray:
    data = _npz(source_name.split(".")[0])
    res = run_chain(chain_from_model_file(mf), torch.as_tensor(data["x"]).transpose(0, 1))
    out = res.outputs[0].detach()
    return (out.transpose(0, 1) if out.dim() == 3 else out).numpy()


def test_a_keras_file_written_from_a_checkpoint_runs_like_mindspore(tmp_path):
    """nn.GRU (reset-after, r z n) -> Keras Bidirectional(GRU) layers (z r h, bias (2, 3u)), nn.RNN(relu) ->
    SimpleRNN(activation="relu") -> the same outputs (exact math; MindSpore's CPU numerics differ by < 2e-4)."""
    with pytest.raises(FormatError, match="does not record nn.RNN's nonlinearity"):
        lstm_bridge.save(lstm_bridge.load(F / "ms_family.ckpt"), tmp_path / "m.keras")  # tanh? relu? say it
    lstm_bridge.save(_load_relu("ms_family.ckpt"), tmp_path / "m.keras")
    mf = lstm_bridge.load(tmp_path / "m.keras")
    assert [(e.kind, e.cell, e.semantics["activation"]) for e in mf.recurrent_entries()] == [
        ("Bidirectional", "GRU", "tanh"),
        ("Bidirectional", "GRU", "tanh"),
        ("SimpleRNN", "RNN", "relu"),
    ]
    data = _npz("ms_family")
    res = run_chain(chain_from_model_file(mf), torch.as_tensor(data["x"]).transpose(0, 1))
    y = res.outputs[0].transpose(0, 1).detach().numpy()
    assert np.abs(y - data["y"]).max() <= 2e-4


def test_a_state_dict_of_a_relu_rnn_says_what_it_cannot_hold(tmp_path):
    net = mindspore.RNN(3, 2, nonlinearity="relu")
    report = lstm_bridge.save(net, tmp_path / "r.pt")
    assert any("nonlinearity='relu'" in v for v in report.skipped.values()), report.skipped
    (e,) = lstm_bridge.load(tmp_path / "r.pt").recurrent_entries()
    assert e.semantics["activation"] == "tanh"


# --- refusals: what a target cannot hold, with the reason, nothing written -----------------------------


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".safetensors"])
def test_a_tf_keras_gru_of_the_reset_before_form_is_refused_by_state_dicts(tmp_path, suffix):
    out = tmp_path / f"m{suffix}"
    with pytest.raises(FormatError) as info:
        lstm_bridge.save(lstm_bridge.load(F / "tk_family.h5"), out)
    text = str(info.value)
    assert "reset_after=False" in text and "no weights turn one into the other" in text
    assert "hard-codes sigmoid for the r and z gates" in text  # the hard_sigmoid gates too
    assert "lstm_bridge.keras.GRU" in text  # the module that carries it
    assert not out.exists()


def test_keras2_hard_sigmoid_gru_cannot_go_to_keras3_and_keras3_to_keras2(tmp_path):
    with pytest.raises(FormatError, match="Keras 3 reads 'hard_sigmoid' as relu6"):
        lstm_bridge.save(lstm_bridge.load(F / "tk_family.h5"), tmp_path / "m.keras")
    with pytest.raises(FormatError, match="tf_keras reads 'hard_sigmoid' as clip"):
        lstm_bridge.save(lstm_bridge.load(F / "k3_family.keras"), tmp_path / "m.h5", keras_version=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: keras.GRU(3, reset_after=False), "reset_after=False"),
        (lambda: keras.GRU(3, recurrent_activation="hard_sigmoid"), "hard-codes sigmoid for the r and z gates"),
        (lambda: keras.SimpleRNN(3, activation="softsign"), "nonlinearity='tanh' or 'relu' only"),
        (lambda: keras.GRU(3, go_backwards=True), "go_backwards=True alone"),
        (lambda: keras.Bidirectional(keras.GRU(3), merge_mode="sum"), "merge_mode='sum'"),
    ],
)
@pytest.mark.parametrize("suffix, module", [(".pt", "torch.nn."), (".ckpt", "mindspore.nn.")])
def test_what_torch_and_mindspore_cannot_hold_is_refused_with_the_reason(tmp_path, make, needle, suffix, module):
    layer = make()
    layer(torch.zeros(2, 4, 5))
    with pytest.raises(FormatError) as info:
        lstm_bridge.save(layer, tmp_path / f"m{suffix}")
    text = str(info.value)
    assert needle in text and module in text
    assert "lstm_bridge.keras.GRU" in text or "lstm_bridge.keras.SimpleRNN" in text
    assert list(tmp_path.iterdir()) == []
    # the same layer goes to a Keras file, and comes back as what it was
    lstm_bridge.save(layer, tmp_path / "m.h5")
    (e,) = lstm_bridge.load(tmp_path / "m.h5").recurrent_entries()
    assert e.cell in ("GRU", "RNN")


def test_targets_describe_the_family_rules():
    d = targets.LayerDescription("g", "GRU", cell="GRU", reset_after=False)
    assert any("reset_after=False" in r for r in targets.reasons(d, "torch"))
    assert targets.reasons(d, "onnx") == [] and targets.reasons(d, "keras2") == []
    relu = targets.LayerDescription("r", "RNN", candidate="relu", cell="RNN")
    assert targets.reasons(relu, "mindspore") == []
    cell = targets.LayerDescription("c", "GRUCell", cell="GRU")
    assert "a GRUCell is not a layer of a Keras model file" in targets.reasons(cell, "keras3")[0]
    assert "lstm_bridge.keras.SimpleRNN" in targets.exact_module_hint(["RNN"])


# --- lstm-bridge's own modules saved and loaded -------------------------------------------------------


def _keras_modules():
    x = torch.as_tensor(np.random.RandomState(0).uniform(-1, 1, (2, 5, 3)).astype(np.float32))
    layers = [
        keras.GRU(4, return_sequences=True, name="g"),
        keras.Bidirectional(keras.SimpleRNN(2, activation="relu", return_sequences=True), name="b"),
        keras.Bidirectional(keras.GRU(3, reset_after=False), name="bg"),
    ]
    h = x
    for layer in layers:
        h = layer(h)
    return layers, x, h


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_keras_family_modules_save_and_load_to_the_same_outputs(tmp_path, suffix):
    layers, x, y = _keras_modules()
    lstm_bridge.save(layers, tmp_path / f"m{suffix}")
    mf = lstm_bridge.load(tmp_path / f"m{suffix}")
    assert [(e.name, e.cell, e.reset_after) for e in mf.recurrent_entries()] == [
        ("g", "GRU", True),
        ("b", "RNN", True),
        ("bg", "GRU", False),
    ]
    got = run_chain(chain_from_model_file(mf), x.transpose(0, 1)).outputs[0]
    assert (got - y.detach()).abs().max().item() <= 1e-6


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".safetensors"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: mindspore.GRU(3, 4, num_layers=2, bidirectional=True),
        lambda: mindspore.RNN(3, 4, has_bias=False),
        lambda: mindspore.GRUCell(3, 4),
        lambda: mindspore.RNNCell(3, 4),
        lambda: torch.nn.GRU(3, 4, batch_first=True),
    ],
)
def test_mindspore_and_torch_family_modules_save_and_load(tmp_path, suffix, make):
    net = make()
    lstm_bridge.save(net, tmp_path / f"m{suffix}")
    (e,) = lstm_bridge.load(tmp_path / f"m{suffix}").layers
    state = net.state_dict()
    assert list(e.weights) == list(state)
    for k, v in state.items():
        np.testing.assert_array_equal(e.weights[k], v.detach().numpy())
    twin = make()
    twin.load_state_dict({k: torch.as_tensor(v) for k, v in e.weights.items()})


def test_a_keras_gru_becomes_a_mindspore_gru_through_a_checkpoint(tmp_path):
    """Keras z, r, h with bias (2, 3u) -> MindSpore r, z, n: the same function (exact numerics)."""
    g = keras.GRU(4, return_sequences=True)
    x = torch.as_tensor(np.random.RandomState(1).uniform(-1, 1, (2, 5, 3)).astype(np.float32))
    y = g(x)
    lstm_bridge.save(g, tmp_path / "g.ckpt")
    (e,) = lstm_bridge.load(tmp_path / "g.ckpt").layers
    net = mindspore.GRU(3, 4, batch_first=True, numerics="exact")
    assert e.name.startswith("gru") and list(e.weights)[0] == "weight_ih_l0"
    net.load_state_dict({k: torch.as_tensor(v) for k, v in e.weights.items()})
    out, _ = net(x)
    assert (out - y).abs().max().item() <= TOL


# --- layouts without a real file: Keras 1, generated configs, hostile shapes ---------------------------


def _write_legacy(path, layers, version=None, config=None):
    import json

    import h5py

    with h5py.File(path, "w") as f:
        if version is not None:
            f.attrs["keras_version"] = np.bytes_(version)
        g = f
        if config is not None:
            f.attrs["model_config"] = json.dumps(config).encode()
            g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, weights in layers:
            grp = g.create_group(name)
            grp.attrs["weight_names"] = np.array([wn.encode() for wn, _ in weights])
            for wn, arr in weights:
                grp.create_dataset(wn, data=arr)


def test_a_keras1_gru_file_is_read_as_the_reset_before_form(tmp_path):
    """Keras 1 stores W, U, b per gate z, r, h; tf_keras's legacy loader concatenates them into a
    GRU(reset_after=False) (saving/legacy/hdf5_format.py)."""
    from lstm_bridge.weights import family

    rng = np.random.default_rng(0)
    kernel, rec, bias = (rng.normal(size=s).astype(np.float32) for s in ((3, 6), (2, 6), (6,)))
    nine = []
    for k, gate in enumerate("zrh"):
        cols = slice(2 * k, 2 * k + 2)
        nine += [
            (f"gru_1_W_{gate}", kernel[:, cols]),
            (f"gru_1_U_{gate}", rec[:, cols]),
            (f"gru_1_b_{gate}", bias[cols]),
        ]
    _write_legacy(tmp_path / "k1.h5", [("gru_1", nine)])
    (e,) = lstm_bridge.load(tmp_path / "k1.h5").recurrent_entries()
    assert (e.cell, e.reset_after) == ("GRU", False)
    assert e.weights[0][0].equal(family.gru_from_keras(kernel, rec, bias, reset_after=False))


def test_generated_family_configs_have_the_keys_of_each_generation():
    """The GRU / SimpleRNN configs the planner writes have exactly the keys (and order) tf_keras 2.21 and
    Keras 3.15 wrote into the fixture files."""
    import json
    import zipfile

    import h5py

    from lstm_bridge.formats.keras_plan import lstm_config

    tk = json.loads(h5py.File(F / "tk_family.h5", "r").attrs["model_config"])["config"]["layers"]
    k3 = json.loads(zipfile.ZipFile(F / "k3_family.keras").read("config.json"))["config"]["layers"]
    tk_by = {l["config"]["name"]: l for l in tk}
    k3_by = {l["config"]["name"]: l for l in k3}
    assert list(lstm_config(2, "a", 4, cell="GRU")) == list(tk_by["gru_before"]["config"])
    assert list(lstm_config(2, "a", 4, cell="RNN")) == list(tk_by["bi_rnn"]["config"]["layer"]["config"])
    assert list(lstm_config(3, "a", 4, cell="GRU")) == list(k3_by["gru_hs"]["config"])
    assert list(lstm_config(3, "a", 4, cell="RNN")) == list(k3_by["rnn_back"]["config"])


@pytest.mark.parametrize(
    "bias_shape, needle", [((5,), "bias with reset_after=True must be"), ((2, 9), "bias with reset_after=False")]
)
def test_a_gru_whose_bias_does_not_fit_its_form_is_refused_at_load(tmp_path, bias_shape, needle):
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [{"class_name": "GRU", "config": {"name": "g", "units": 3, "reset_after": len(bias_shape) == 1}}],
        },
    }
    weights = [("g/kernel:0", np.zeros((2, 9), np.float32)), ("g/recurrent_kernel:0", np.zeros((3, 9), np.float32))]
    weights.append(("g/bias:0", np.zeros(bias_shape, np.float32)))
    _write_legacy(tmp_path / "bad.h5", [("g", weights)], "2.21.0", cfg)
    with pytest.raises(FormatError, match=needle):
        lstm_bridge.load(tmp_path / "bad.h5")
