"""Keras files: every real fixture (tf_keras 2.21 and Keras 3.15 writers, .h5 / legacy weights / .weights.h5 /
.keras) reads to weights that reproduce the framework's saved outputs; our writers produce the same layouts."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest
import torch

from lstm_bridge import activations
from lstm_bridge.formats import FormatError, keras_h5, keras_weights, keras_zip, mindspore_ckpt
from lstm_bridge.formats.keras_common import lstm_config

from helpers import FIXTURES

K = FIXTURES / "keras"
MODELS = ["bilstm_stacked", "emb_lstm_dense", "lstm_hard_sigmoid"]
WRITERS = ["tfkeras", "keras3"]


# --- a float64 NumPy forward of the fixture models (spec keras §1, §4, §6) ---------------------------


def _act(name):
    fn = activations.get(name, keras_version=2)  # names are already resolved by lstm_layers()
    return lambda a: fn(torch.from_numpy(a)).numpy()


def _run_lstm(w, sem, x, mask, go_backwards, zero_output):
    B, T, _ = x.shape
    rec, act = _act(sem["recurrent_activation"]), _act(sem["activation"])
    Wi, Wh = w.w_ih.astype(np.float64), w.w_hh.astype(np.float64)
    b = (w.b_ih + w.b_hh).astype(np.float64) if w.has_bias else 0.0
    H = Wh.shape[1]
    h, c, y = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, H))
    ys = []
    for k in range(T):
        t = T - 1 - k if go_backwards else k
        z = x[:, t] @ Wi.T + h @ Wh.T + b
        i, f, g, o = np.split(z, 4, axis=1)
        c2 = rec(f) * c + rec(i) * act(g)
        h2 = rec(o) * act(c2)
        m = mask[:, t : t + 1] if mask is not None else np.ones((B, 1), bool)
        h, c = np.where(m, h2, h), np.where(m, c2, c)
        y = np.where(m, h2, 0.0 if zero_output else y)
        ys.append(y)
    return np.stack(ys, axis=1)


def keras_forward(mf, x):
    lstm = {l.name: l for l in mf.lstm_layers()}
    mask = None
    for e in mf.layers:
        if e.kind == "Embedding":
            mask = (x != 0) if e.config.get("mask_zero") else None
            x = e.weights["embeddings"].astype(np.float64)[x]
        elif e.kind == "LSTM":
            l = lstm[e.name]
            sem = l.semantics
            seq = _run_lstm(l.weights[0][0], sem, x, mask, sem["go_backwards"], sem.get("zero_output_for_mask", False))
            x = seq if sem["return_sequences"] else seq[:, -1]
            if not sem["return_sequences"]:
                mask = None
        elif e.kind == "Bidirectional":
            l = lstm[e.name]
            sem = l.semantics
            rs = sem["return_sequences"]
            yf = _run_lstm(l.weights[0][0], sem, x, mask, False, rs)
            yb = _run_lstm(l.weights[0][1], sem, x, mask, True, rs)
            x = np.concatenate([yf, yb[:, ::-1]], -1) if rs else np.concatenate([yf[:, -1], yb[:, -1]], -1)
        elif e.kind == "Dense":
            x = x @ e.weights["kernel"].astype(np.float64) + e.weights["bias"]
    return x


def _load(path):
    mod = {".keras": keras_zip}.get(os.path.splitext(str(path))[1], None)
    if str(path).endswith(".weights.h5"):
        mod = keras_weights
    return (mod or keras_h5).load(path)


FULL_MODELS = [f"{w}_{m}{s}" for w in WRITERS for m in MODELS for s in (".h5", ".keras")]


@pytest.mark.parametrize("name", FULL_MODELS)
def test_full_model_files_reproduce_the_saved_outputs(name):
    mf = _load(K / name)
    stem = name.rsplit(".", 1)[0]
    x = np.load(K / f"{stem}_input.npy")
    expected = np.load(K / f"{stem}_output.npy")
    np.testing.assert_allclose(keras_forward(mf, x), expected, atol=1e-5)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("model", MODELS)
def test_all_variants_of_a_model_hold_the_same_weights(writer, model):
    files = [f"{writer}_{model}.h5", f"{writer}_{model}.keras", f"{writer}_{model}.weights.h5"]
    if writer == "tfkeras" and model != "lstm_hard_sigmoid":
        files.append(f"{writer}_{model}_weights_legacy.h5")
    ref = [a for e in _load(K / files[0]).layers for a in e.weights.values()]
    assert ref
    for f in files[1:]:
        mf = _load(K / f)
        arrays = sorted((a for e in mf.layers for a in e.weights.values()), key=lambda a: (a.shape, a.sum()))
        want = sorted(ref, key=lambda a: (a.shape, a.sum()))
        assert len(arrays) == len(want), f
        assert all(np.array_equal(a, b) for a, b in zip(arrays, want)), f


def test_hard_sigmoid_meaning_follows_the_writer_version():
    tk = keras_h5.load(K / "tfkeras_lstm_hard_sigmoid.h5")
    k3 = keras_zip.load(K / "keras3_lstm_hard_sigmoid.keras")
    k3_legacy = keras_h5.load(K / "keras3_lstm_hard_sigmoid.h5")
    assert tk.hard_sigmoid == "clip(0.2*x+0.5, 0, 1)" and tk.keras_version == 2
    assert k3.hard_sigmoid == k3_legacy.hard_sigmoid == "relu6(x+3)/6"
    assert tk.lstm_layers()[0].semantics["recurrent_activation"] == "hard_sigmoid"
    assert k3.lstm_layers()[0].semantics["recurrent_activation"] == "hard_sigmoid_keras3"
    assert k3_legacy.lstm_layers()[0].semantics["recurrent_activation"] == "hard_sigmoid_keras3"


def test_semantics_of_the_stacked_model():
    layers = keras_zip.load(K / "keras3_bilstm_stacked.keras").lstm_layers()
    assert [(l.name, l.kind, l.input_size, l.hidden_size, l.bidirectional) for l in layers] == [
        ("bidirectional", "Bidirectional", 5, 8, True),
        ("lstm_1", "LSTM", 16, 8, False),
        ("lstm_2", "LSTM", 8, 4, False),
    ]
    assert layers[0].semantics["merge_mode"] == "concat" and layers[0].semantics["return_sequences"]
    assert layers[0].semantics["backward_semantics"]["go_backwards"] is True
    assert not layers[2].semantics["return_sequences"]


def _tree(h5obj):
    out = {}

    def visit(name, obj):
        attrs = {k: (list(v) if isinstance(v, np.ndarray) else v) for k, v in obj.attrs.items() if k != "model_config"}
        out[name] = (
            getattr(obj, "shape", None),
            json.dumps(attrs, default=str),
            obj[()].tobytes() if hasattr(obj, "shape") else None,
        )

    h5obj.visititems(visit)
    return out


@pytest.mark.parametrize("model", MODELS)
def test_tf_keras_h5_rewrite_matches_the_real_file(tmp_path, model):
    src = K / f"tfkeras_{model}.h5"
    mf = keras_h5.load(src)
    keras_h5.save(mf, tmp_path / "out.h5")
    with h5py.File(src, "r") as a, h5py.File(tmp_path / "out.h5", "r") as b:
        assert json.loads(b.attrs["model_config"]) == json.loads(a.attrs["model_config"])
        assert b.attrs["keras_version"] == "2.21.0" and b.attrs["backend"] == "tensorflow"
        assert _tree(b) == _tree(a)


@pytest.mark.parametrize("model", MODELS)
def test_keras3_rewrite_matches_the_real_file(tmp_path, model):
    src = K / f"keras3_{model}.keras"
    keras_zip.save(keras_zip.load(src), tmp_path / "out.keras")
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(tmp_path / "out.keras") as b:
        assert b.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        assert json.loads(b.read("config.json")) == json.loads(a.read("config.json"))
        assert json.loads(b.read("metadata.json"))["keras_version"] == "3.15.1"
        with (
            h5py.File(io.BytesIO(a.read("model.weights.h5")), "r") as fa,
            h5py.File(io.BytesIO(b.read("model.weights.h5")), "r") as fb,
        ):
            assert _tree(fb) == _tree(fa)
    keras_weights.save(keras_zip.load(src), tmp_path / "out.weights.h5")
    with h5py.File(K / f"keras3_{model}.weights.h5", "r") as fa, h5py.File(tmp_path / "out.weights.h5", "r") as fb:
        assert _tree(fb) == _tree(fa)


def _lstm_keys(config, gen):
    """Per layer of the classes we generate: its class, entry keys and config keys (sorted)."""
    layers = config["config"]["layers"]
    return [
        (l["class_name"], sorted(l), sorted(l["config"]))
        for l in layers
        if l["class_name"] in ("LSTM", "Dense", "Embedding", "InputLayer", "Bidirectional")
    ]


@pytest.mark.parametrize("model", ["bilstm_stacked", "emb_lstm_dense"])
def test_cross_generation_writes_reproduce_outputs_with_that_generation_config_keys(tmp_path, model):
    x = np.load(K / f"tfkeras_{model}_input.npy")
    tk_cfg = json.loads(h5py.File(K / f"tfkeras_{model}.h5", "r").attrs["model_config"])
    k3_cfg = json.loads(zipfile.ZipFile(K / f"keras3_{model}.keras").read("config.json"))
    # tf_keras .h5 -> Keras 3 .keras
    keras_zip.save(keras_h5.load(K / f"tfkeras_{model}.h5"), tmp_path / "k3.keras")
    k3 = keras_zip.load(tmp_path / "k3.keras")
    np.testing.assert_allclose(keras_forward(k3, x), np.load(K / f"tfkeras_{model}_output.npy"), atol=1e-5)
    cfg = json.loads(zipfile.ZipFile(tmp_path / "k3.keras").read("config.json"))
    assert _lstm_keys(cfg, 3) == _lstm_keys(k3_cfg, 3)
    assert "time_major" not in json.dumps(cfg) and "implementation" not in json.dumps(cfg)
    # Keras 3 .keras -> tf_keras .h5
    keras_h5.save(keras_zip.load(K / f"keras3_{model}.keras"), tmp_path / "tk.h5", keras_version=2)
    tk = keras_h5.load(tmp_path / "tk.h5")
    np.testing.assert_allclose(keras_forward(tk, x), np.load(K / f"keras3_{model}_output.npy"), atol=1e-5)
    cfg = json.loads(h5py.File(tmp_path / "tk.h5", "r").attrs["model_config"])
    assert _lstm_keys(cfg, 2) == _lstm_keys(tk_cfg, 2)


def test_hard_sigmoid_cannot_cross_generations(tmp_path):
    with pytest.raises(FormatError, match="Keras-2 hard_sigmoid.*cannot be written for Keras 3"):
        keras_zip.save(keras_h5.load(K / "tfkeras_lstm_hard_sigmoid.h5"), tmp_path / "x.keras")
    with pytest.raises(FormatError, match="Keras-3 hard_sigmoid.*cannot be written for tf_keras"):
        keras_h5.save(keras_zip.load(K / "keras3_lstm_hard_sigmoid.keras"), tmp_path / "x.h5", keras_version=2)
    assert os.listdir(tmp_path) == []
    # weights-only targets carry no activation: allowed
    keras_weights.save(keras_h5.load(K / "tfkeras_lstm_hard_sigmoid.h5"), tmp_path / "w.weights.h5")


def test_mindspore_to_keras_files(tmp_path):
    mf = mindspore_ckpt.load(FIXTURES / "mindspore" / "lstm_2layer_bi.ckpt")
    for mod, name in ((keras_h5, "m.h5"), (keras_zip, "m.keras"), (keras_weights, "m.weights.h5")):
        mod.save(mf, tmp_path / name)
        back = mod.load(tmp_path / name).lstm_layers()
        assert [l.kind for l in back] == ["Bidirectional", "Bidirectional"]
        src = mf.lstm_layers()[0]
        for l in range(2):
            for d in range(2):
                got, want = back[l].weights[0][d], src.weights[l][d]
                np.testing.assert_array_equal(got.w_ih, want.w_ih)
                np.testing.assert_array_equal(got.w_hh, want.w_hh)
                np.testing.assert_array_equal(got.b_ih + got.b_hh, want.b_ih + want.b_hh)
        if mod is not keras_weights:  # a .weights.h5 holds no config
            assert back[0].semantics["return_sequences"] and back[1].semantics["return_sequences"]


def test_generated_lstm_config_keys_match_each_generation():
    tk = json.loads(h5py.File(K / "tfkeras_lstm_hard_sigmoid.h5", "r").attrs["model_config"])
    k3 = json.loads(zipfile.ZipFile(K / "keras3_lstm_hard_sigmoid.keras").read("config.json"))
    assert list(lstm_config(2, "a", 4)) == [list(l["config"]) for l in tk["config"]["layers"]][1]
    assert list(lstm_config(3, "a", 4)) == [list(l["config"]) for l in k3["config"]["layers"]][1]


def _write_legacy(path, version, layers, config=None):
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


def test_keras1_and_tf1_cudnn_legacy_files(tmp_path, rng):
    from helpers import keras_weights as kw

    kernel, rec, bias = kw(rng, 3, 2)
    ks, rs, bs = np.split(kernel, 4, 1), np.split(rec, 4, 1), np.split(bias, 4)
    twelve = []
    for g, k in zip("icfo", (0, 2, 1, 3)):
        twelve += [(f"lstm_1_W_{g}", ks[k]), (f"lstm_1_U_{g}", rs[k]), (f"lstm_1_b_{g}", bs[k])]
    _write_legacy(tmp_path / "k1.h5", None, [("lstm_1", twelve)])
    (l,) = keras_h5.load(tmp_path / "k1.h5").lstm_layers()
    np.testing.assert_array_equal(l.weights[0][0].w_ih, kernel.T)
    np.testing.assert_array_equal(l.weights[0][0].b_ih, bias)
    assert l.semantics["recurrent_activation"] == "hard_sigmoid"  # Keras 1/2.2 default
    raw_k = np.concatenate([b.reshape((2, 3), order="F").T for b in ks], 1)
    raw_r = np.concatenate([b.T for b in rs], 1)
    raw_b = np.concatenate([bias, np.zeros_like(bias)])
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [{"class_name": "CuDNNLSTM", "config": {"name": "cu", "units": 2, "return_sequences": False}}],
        },
    }
    _write_legacy(
        tmp_path / "cu.h5",
        "2.2.4-tf",
        [("cu", [("cu/kernel:0", raw_k), ("cu/recurrent_kernel:0", raw_r), ("cu/bias:0", raw_b)])],
        cfg,
    )
    mf = keras_h5.load(tmp_path / "cu.h5")
    (l,) = mf.lstm_layers()
    np.testing.assert_array_equal(l.weights[0][0].w_ih, kernel.T)
    np.testing.assert_array_equal(l.weights[0][0].w_hh, rec.T)
    np.testing.assert_array_equal(l.weights[0][0].b_ih + l.weights[0][0].b_hh, bias)
    assert mf.hard_sigmoid == "clip(0.2*x+0.5, 0, 1)"


def test_bytes_and_split_attributes_and_tf1_names(tmp_path):
    src = keras_h5.load(K / "tfkeras_emb_lstm_dense.h5")
    p = tmp_path / "old.h5"
    shutil.copy(K / "tfkeras_emb_lstm_dense.h5", p)
    with h5py.File(p, "a") as f:
        g = f["model_weights"]
        names = [n.encode() for n in g.attrs["layer_names"]]
        del g.attrs["layer_names"]
        g.attrs["layer_names0"] = np.array(names[:2])
        g.attrs["layer_names1"] = np.array(names[2:])
        f.attrs["keras_version"] = np.bytes_("2.3.0-tf")
        lg = g["lstm"]
        for old in list(lg.attrs["weight_names"]):  # TF 1.x / early TF 2 names: lstm/kernel:0
            new = old.replace("lstm_cell/", "")
            lg.move(old, new)
        lg.attrs["weight_names"] = np.array([n.replace("lstm_cell/", "").encode() for n in lg.attrs["weight_names"]])
    mf = keras_h5.load(p)
    assert mf.version == "2.3.0-tf" and mf.keras_version == 2
    assert [e.name for e in mf.layers] == [e.name for e in src.layers]
    assert mf.entry("lstm").attrs["weight_names"][0] == "lstm/lstm/kernel:0" or mf.entry("lstm").attrs["weight_names"][
        0
    ].endswith("kernel:0")
    for a, b in zip(mf.layers, src.layers):
        assert all(np.array_equal(x, y) for x, y in zip(a.weights.values(), b.weights.values()))


def test_weights_h5_and_zip_errors_name_the_problem(tmp_path):
    with pytest.raises(FormatError, match="no 'layer_names' attribute.*a .weights.h5 file"):
        keras_h5.load(K / "keras3_bilstm_stacked.weights.h5")
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(FormatError, match="has no 'config.json'"):
        keras_zip.load(bad)


def test_tf1_sequential_without_input_layer_converts_to_keras3(tmp_path):
    """A TF 1.15-style Sequential config (class "Sequential", layers as a list, the input shape on the first
    layer, names without the cell scope) is rebuilt as a Keras 3 Functional model with an int input."""
    src = keras_h5.load(K / "tfkeras_emb_lstm_dense.h5")
    emb, lstm, dense = (src.entry(n) for n in ("embedding", "lstm", "dense"))
    emb_cfg = dict(emb.config, batch_input_shape=[None, 6])
    cfg = {
        "class_name": "Sequential",
        "config": [
            {"class_name": "Embedding", "config": emb_cfg},
            {"class_name": "LSTM", "config": lstm.config},
            {"class_name": "Dense", "config": dense.config},
        ],
    }
    layers = [
        ("embedding", [("embedding/embeddings:0", emb.weights["embeddings"])]),
        ("lstm", [(f"lstm/{k}:0", v) for k, v in lstm.weights.items()]),
        ("dense", [(f"dense/{k}:0", v) for k, v in dense.weights.items()]),
    ]
    _write_legacy(tmp_path / "tf1.h5", "2.2.4-tf", layers, cfg)
    mf = keras_h5.load(tmp_path / "tf1.h5")
    x = np.load(K / "tfkeras_emb_lstm_dense_input.npy")
    np.testing.assert_allclose(keras_forward(mf, x), np.load(K / "tfkeras_emb_lstm_dense_output.npy"), atol=1e-5)
    keras_zip.save(mf, tmp_path / "k3.keras")
    cfg3 = json.loads(zipfile.ZipFile(tmp_path / "k3.keras").read("config.json"))
    first = cfg3["config"]["layers"][0]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, 6]
    assert first["config"]["dtype"] == "int32"
    k3 = keras_zip.load(tmp_path / "k3.keras")
    np.testing.assert_allclose(keras_forward(k3, x), np.load(K / "tfkeras_emb_lstm_dense_output.npy"), atol=1e-5)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["config"]["layers"][1].__setitem__("config", "oops"),
        lambda c: c["config"].__setitem__("layers", {"not": "a list"}),
        lambda c: c["config"]["layers"][1]["config"].__setitem__("units", "many"),
        lambda c: c["config"]["layers"][1]["config"].__setitem__("recurrent_activation", ["x"]),
        lambda c: c["config"]["layers"][1]["config"]["layer"].__setitem__("config", 7),
    ],
)
def test_hostile_keras_config_gives_format_error_or_loads(tmp_path, mutate):
    src = K / "keras3_bilstm_stacked.keras"
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    mutate(cfg)
    members["config.json"] = json.dumps(cfg).encode()
    p = tmp_path / "hostile.keras"
    with zipfile.ZipFile(p, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    try:
        mf = keras_zip.load(p)
    except FormatError as exc:
        assert str(exc).startswith(str(p))
    else:
        mf.lstm_layers()  # whatever loads must also canonicalise


def test_tf_keras_dot_keras_to_legacy_h5_uses_the_legacy_config_shape(tmp_path):
    keras_h5.save(keras_zip.load(K / "tfkeras_bilstm_stacked.keras"), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r") as f, h5py.File(K / "tfkeras_bilstm_stacked.h5", "r") as real:
        ours, theirs = json.loads(f.attrs["model_config"]), json.loads(real.attrs["model_config"])
    assert set(ours) == set(theirs) == {"class_name", "config"}
    assert [sorted(l) for l in ours["config"]["layers"]] == [sorted(l) for l in theirs["config"]["layers"]]
    x = np.load(K / "tfkeras_bilstm_stacked_input.npy")
    np.testing.assert_allclose(
        keras_forward(keras_h5.load(tmp_path / "m.h5"), x), np.load(K / "tfkeras_bilstm_stacked_output.npy"), atol=1e-5
    )


def test_custom_activation_is_kept_visible_and_not_rewritten(tmp_path):
    p = tmp_path / "custom.h5"
    shutil.copy(K / "tfkeras_lstm_hard_sigmoid.h5", p)
    with h5py.File(p, "a") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][1]["config"]["activation"] = "my_custom_act"
        f.attrs["model_config"] = json.dumps(cfg)
    mf = keras_h5.load(p)
    assert mf.lstm_layers()[0].semantics["activation"] == "unknown:my_custom_act"
    with pytest.raises(FormatError, match="activation 'unknown:my_custom_act' has no Keras name"):
        keras_zip.save(mf, tmp_path / "x.keras")
    keras_h5.save(mf, tmp_path / "same.h5")  # same generation: the config is copied as it is
    keras_weights.save(mf, tmp_path / "w.weights.h5")  # weights only: no activation is written


@pytest.mark.parametrize("model", MODELS)
def test_standalone_weights_h5_round_trip_keeps_its_layout(tmp_path, model):
    src = K / f"keras3_{model}.weights.h5"
    keras_weights.save(keras_weights.load(src), tmp_path / "w.weights.h5")
    with h5py.File(src, "r") as a, h5py.File(tmp_path / "w.weights.h5", "r") as b:
        assert _tree(b) == _tree(a)


def test_standalone_weights_h5_layers_are_ordered_by_shape_chain(tmp_path):
    names = [e.name for e in keras_weights.load(K / "keras3_bilstm_stacked.weights.h5").layers]
    assert names == ["features", "bidirectional", "lstm_1", "lstm_2", "dense"]
    names = [e.name for e in keras_weights.load(K / "tfkeras_emb_lstm_dense.weights.h5").layers]
    assert names == ["input_layer", "embedding", "lstm", "dense"]
    # an LSTM before a Bidirectional (class keys "lstm", "bidirectional", "lstm_1" sort the other way)
    from lstm_bridge import io, keras as LK

    layers = [
        LK.LSTM(5, return_sequences=True),
        LK.Bidirectional(LK.LSTM(3, return_sequences=True), merge_mode="ave"),
        LK.LSTM(2),
    ]
    for l, features in zip(layers, (4, 5, 3)):
        l.build((1, 4, features))  # no forward pass needed: only the weights are saved
    io.save(layers, tmp_path / "m.weights.h5")
    got = keras_weights.load(tmp_path / "m.weights.h5").lstm_layers()
    assert [(l.kind, l.input_size, l.hidden_size) for l in got] == [
        ("LSTM", 4, 5),
        ("Bidirectional", 5, 3),
        ("LSTM", 3, 2),
    ]


def test_legacy_weights_only_round_trip_keeps_names_and_order(tmp_path):
    for src in ("tfkeras_bilstm_stacked_weights_legacy.h5", "tfkeras_bilstm_stacked.h5"):
        keras_h5.save(keras_h5.load(K / src), tmp_path / "w.h5", weights_only=True)
        with (
            h5py.File(K / "tfkeras_bilstm_stacked_weights_legacy.h5", "r") as a,
            h5py.File(tmp_path / "w.h5", "r") as b,
        ):
            assert _tree(b) == _tree(a)
        os.remove(tmp_path / "w.h5")
