"""Live tier: files written by lstm-bridge load in the real frameworks and reproduce the source outputs.

Marked ``live`` (excluded from ``make test``). Run inside the golden environments like
``tests/test_live.py``: with ``TF_USE_LEGACY_KERAS=1`` the Keras test checks tf_keras 2.21 ``load_model``
of our legacy ``.h5``; with ``TF_USE_LEGACY_KERAS=0`` it checks Keras 3.15 ``load_model`` of our
``.keras`` and ``load_weights`` of our ``.weights.h5``; in the MindSpore environment it checks
``mindspore.load_checkpoint`` (with ``crc_check=True``) + ``nn.LSTM``. Each skips cleanly when its
framework is not importable. Tolerance 1e-5 against the saved outputs (Keras fixtures) or against
``torch.nn.LSTM`` with the same weights (MindSpore/PyTorch sources).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm_bridge import io
from lstm_bridge.weights import to_torch_state_dict

pytestmark = pytest.mark.live

HERE = Path(__file__).resolve().parent
K = HERE / "fixtures" / "keras"
MS = HERE / "fixtures" / "mindspore"
TOL = 1e-5


def _flavour() -> str:
    return "tf_keras" if os.environ.get("TF_USE_LEGACY_KERAS", "0").lower() in ("1", "true") else "keras3"


def _torch_reference(ckpt: Path, x_btf: np.ndarray) -> np.ndarray:
    """torch.nn.LSTM (batch_first) with the checkpoint's one LSTM entry: the MindSpore output sequence."""
    (layer,) = io.load(ckpt).lstm_layers()
    net = torch.nn.LSTM(
        layer.input_size, layer.hidden_size, layer.num_layers, batch_first=True, bidirectional=layer.bidirectional
    )
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in to_torch_state_dict(layer.weights).items()})
    with torch.no_grad():
        return net(torch.from_numpy(x_btf))[0].numpy()


def _keras_cases(flavour: str):
    """(source file, target suffix, input, expected output)."""
    x = np.load(K / "tfkeras_bilstm_stacked_input.npy")
    ids = np.load(K / "tfkeras_emb_lstm_dense_input.npy")
    xm = np.random.default_rng(0).normal(size=(3, 7, 6)).astype(np.float32)
    ms_expected = _torch_reference(MS / "lstm_2layer_bi.ckpt", xm)
    suffix = ".h5" if flavour == "tf_keras" else ".keras"
    return [
        (K / "tfkeras_bilstm_stacked.h5", suffix, x, np.load(K / "tfkeras_bilstm_stacked_output.npy")),
        (K / "keras3_bilstm_stacked.keras", suffix, x, np.load(K / "keras3_bilstm_stacked_output.npy")),
        (K / "keras3_bilstm_stacked.h5", suffix, x, np.load(K / "keras3_bilstm_stacked_output.npy")),
        (K / "tfkeras_bilstm_stacked_weights_legacy.h5", suffix, x, np.load(K / "tfkeras_bilstm_stacked_output.npy")),
        (K / "tfkeras_emb_lstm_dense.h5", suffix, ids, np.load(K / "tfkeras_emb_lstm_dense_output.npy")),
        (K / "keras3_emb_lstm_dense.keras", suffix, ids, np.load(K / "keras3_emb_lstm_dense_output.npy")),
        (
            K / f"{'tfkeras' if flavour == 'tf_keras' else 'keras3'}_lstm_hard_sigmoid"
            f"{'.h5' if flavour == 'tf_keras' else '.keras'}",
            suffix,
            x,
            np.load(K / f"{'tfkeras' if flavour == 'tf_keras' else 'keras3'}_lstm_hard_sigmoid_output.npy"),
        ),
        (MS / "lstm_2layer_bi.ckpt", suffix, xm, ms_expected),
    ]


def test_keras_loads_files_written_by_lstm_bridge(tmp_path):
    flavour = _flavour()
    if flavour == "tf_keras":
        if importlib.util.find_spec("tf_keras") is None:
            pytest.skip("tf_keras is not installed")
        import tf_keras as keras_mod

        load_model = keras_mod.models.load_model
    else:
        if importlib.util.find_spec("keras") is None:
            pytest.skip("keras is not installed")
        import keras as keras_mod

        if not keras_mod.__version__.startswith("3."):
            pytest.skip(f"keras {keras_mod.__version__} is not Keras 3")
        load_model = keras_mod.saving.load_model
    failures = []
    for n, (src, suffix, x, expected) in enumerate(_keras_cases(flavour)):
        out = tmp_path / f"case{n}{suffix}"
        # a .h5 is written in the dialect of the source's generation unless told: here tf_keras's
        io.save(io.load(src), out, **({"keras_version": 2} if suffix == ".h5" else {}))
        model = load_model(str(out), compile=False)
        got = np.asarray(model.predict(x, verbose=0))
        diff = float(np.max(np.abs(got - expected)))
        if not diff <= TOL:
            failures.append(f"{src.name} -> {out.name}: max |diff| {diff:.3g}")
        # the weights-only file of the same model loads into it: Keras 3 .weights.h5, tf_keras legacy .h5
        w = tmp_path / (f"case{n}.weights.h5" if flavour == "keras3" else f"case{n}_weights.h5")
        io.save(io.load(src), w, **({} if flavour == "keras3" else {"weights_only": True, "keras_version": 2}))
        model.set_weights([np.zeros_like(a) for a in model.get_weights()])  # so that loading must do the work
        model.load_weights(str(w))
        diff = float(np.max(np.abs(np.asarray(model.predict(x, verbose=0)) - expected)))
        if not diff <= TOL:
            failures.append(f"{src.name} -> {w.name} (load_weights): max |diff| {diff:.3g}")
        if flavour == "keras3" and "keras3_emb" not in src.name:  # (Keras 3 cannot load its own .h5 with a
            # NotEqual mask op.) Keras 3's own legacy .h5 dialect, which Keras 3 load_model reads
            h5 = tmp_path / f"case{n}_k3.h5"
            io.save(io.load(src), h5, keras_version=3)
            diff = float(
                np.max(np.abs(np.asarray(load_model(str(h5), compile=False).predict(x, verbose=0)) - expected))
            )
            if not diff <= TOL:
                failures.append(f"{src.name} -> {h5.name} (Keras 3 .h5): max |diff| {diff:.3g}")
    assert not failures, "\n".join(failures)


def test_mindspore_loads_checkpoints_written_by_lstm_bridge(tmp_path):
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("mindspore is not installed")
    import mindspore as ms

    x = np.load(K / "tfkeras_bilstm_stacked_input.npy")
    src = io.load(K / "tfkeras_bilstm_stacked.h5")
    for kw in ({}, {"crc": True}, {"slice_bytes": 1000}):
        out = tmp_path / f"bilstm_{'_'.join(map(str, kw.values())) or 'plain'}.ckpt"
        io.save(src, out, **kw)
        params = ms.load_checkpoint(str(out), crc_check=bool(kw.get("crc")))
        prefix = "bidirectional."
        net = ms.nn.LSTM(5, 8, 1, has_bias=True, batch_first=True, bidirectional=True)
        not_loaded, _ = ms.load_param_into_net(
            net, {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}, strict_load=True
        )
        assert not not_loaded, not_loaded
        got = net(ms.Tensor(x))[0].asnumpy()
        (layer,) = [l for l in io.load(out).lstm_layers() if l.name == "bidirectional"]
        ref = torch.nn.LSTM(5, 8, 1, batch_first=True, bidirectional=True)
        ref.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in to_torch_state_dict(layer.weights).items()})
        with torch.no_grad():
            expected = ref(torch.from_numpy(x))[0].numpy()
        assert float(np.max(np.abs(got - expected))) <= TOL
    # a PyTorch stack through .pt -> .ckpt, loaded into a bare nn.LSTM (MindSpore's own prefix rules)
    torch.manual_seed(0)
    t = torch.nn.LSTM(4, 6, 2, batch_first=True, bidirectional=True)
    io.save(t, tmp_path / "t.pt")
    io.save(io.load(tmp_path / "t.pt"), tmp_path / "t.ckpt", crc=True, slice_bytes=512)
    net = ms.nn.LSTM(4, 6, 2, has_bias=True, batch_first=True, bidirectional=True)
    not_loaded, _ = ms.load_param_into_net(
        net, ms.load_checkpoint(str(tmp_path / "t.ckpt"), crc_check=True), strict_load=True
    )
    assert not not_loaded, not_loaded
    xt = np.random.default_rng(1).normal(size=(2, 5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = t(torch.from_numpy(xt))[0].numpy()
    assert float(np.max(np.abs(net(ms.Tensor(xt))[0].asnumpy() - expected))) <= TOL


def _keras_module(flavour: str):
    if flavour == "tf_keras":
        if importlib.util.find_spec("tf_keras") is None:
            pytest.skip("tf_keras is not installed")
        import tf_keras as keras_mod

        return keras_mod, keras_mod.models.load_model
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed")
    import keras as keras_mod

    if not keras_mod.__version__.startswith("3."):
        pytest.skip(f"keras {keras_mod.__version__} is not Keras 3")
    return keras_mod, keras_mod.saving.load_model


def test_keras_real_sequential_models_round_trip(tmp_path):
    """A Sequential built by the real framework (go_backwards, Bidirectional merge 'mul', hard_sigmoid,
    use_bias=False, Dense): every file it saves converts through lstm-bridge and loads back exactly;
    the hard_sigmoid model refuses the other generation's format."""
    from lstm_bridge.formats import FormatError

    flavour = _flavour()
    keras_mod, load_model = _keras_module(flavour)
    L = keras_mod.layers
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 7, 4)).astype(np.float32)
    model = keras_mod.Sequential(
        [
            L.InputLayer(input_shape=(7, 4)) if flavour == "tf_keras" else keras_mod.Input((7, 4)),
            L.LSTM(5, go_backwards=True, return_sequences=True, recurrent_activation="hard_sigmoid"),
            L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="mul"),
            L.LSTM(2, use_bias=False),
            L.Dense(3, activation="tanh"),
        ]
    )
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.5 for w in model.get_weights()])
    expected = np.asarray(model.predict(x, verbose=0))
    if flavour == "tf_keras":
        model.save(str(tmp_path / "src.h5"))
        model.save_weights(str(tmp_path / "src_w.h5"))
        pairs = [("src.h5", "out.h5")]
        weights = [("src_w.h5", "out_w.h5", {"weights_only": True})]
        other = "out.keras"
    else:
        model.save(str(tmp_path / "src.keras"))
        model.save(str(tmp_path / "src.h5"))
        model.save_weights(str(tmp_path / "src.weights.h5"))
        pairs = [("src.keras", "out.keras"), ("src.h5", "out2.keras")]
        weights = [("src.weights.h5", "out.weights.h5", {})]
        other = "out.h5"
    for src, dst in pairs:
        io.save(io.load(tmp_path / src), tmp_path / dst)
        got = np.asarray(load_model(str(tmp_path / dst), compile=False).predict(x, verbose=0))
        assert float(np.max(np.abs(got - expected))) <= TOL, (src, dst)
    for src, dst, kw in weights:
        io.save(io.load(tmp_path / src), tmp_path / dst, **kw)
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(str(tmp_path / dst))
        assert float(np.max(np.abs(np.asarray(model.predict(x, verbose=0)) - expected))) <= TOL, (src, dst)
    with pytest.raises(FormatError, match="hard_sigmoid"):
        io.save(io.load(tmp_path / pairs[0][0]), tmp_path / other)
    assert not (tmp_path / other).exists()


# --- the recurrent family (issue 11 item 5): written GRU / SimpleRNN files in the real frameworks ---------

FAMILY = HERE / "fixtures" / "family_files"


def _family_reference(mf, x: np.ndarray) -> np.ndarray:
    """What lstm-bridge computes for a model file's recurrent chain (batch-first in and out)."""
    from lstm_bridge.convert import chain_from_model_file, run_chain

    out = run_chain(chain_from_model_file(mf), torch.from_numpy(x).transpose(0, 1)).outputs[0].detach()
    return (out.transpose(0, 1) if out.dim() == 3 else out).numpy()


@pytest.mark.parametrize("source", ["ms_family.ckpt", "tk_cudnn_gru.h5", "tk_family.h5", "k3_family.keras"])
def test_written_family_keras_files_load_in_keras(tmp_path, source):
    """tf_keras load_model of our legacy .h5 / Keras 3 load_model of our .keras: GRU (both forms), SimpleRNN,
    Bidirectional of each, from Keras, TF1 CuDNNGRU and MindSpore sources."""
    flavour = _flavour()
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed here")
    if source.startswith({"keras3": "tk_family", "tf_keras": "k3_family"}[flavour]):
        pytest.skip(f"{source} holds the other generation's hard_sigmoid")
    if flavour == "tf_keras":
        import tf_keras as keras  # type: ignore[import-not-found]
    else:
        import keras  # type: ignore[import-not-found]
    mf = io.load(FAMILY / source)
    out = tmp_path / ("m.h5" if flavour == "tf_keras" else "m.keras")
    io.save(mf, out, **({"keras_version": 2} if flavour == "tf_keras" else {}))
    x = np.random.default_rng(1).uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    model = keras.models.load_model(str(out), compile=False)
    got = np.asarray(model.predict(x, verbose=0))
    assert np.abs(got - _family_reference(io.load(out), x)).max() <= TOL


def test_a_written_family_checkpoint_loads_in_mindspore(tmp_path):
    """A Keras GRU + Bidirectional(SimpleRNN(relu)) written as .ckpt loads strictly into nn.GRU / nn.RNN
    (MindSpore's CPU kernels: within 1e-4 of exact math)."""
    if importlib.util.find_spec("mindspore") is None:
        pytest.skip("MindSpore is not installed here")
    import mindspore as ms  # type: ignore[import-not-found]
    from mindspore import nn  # type: ignore[import-not-found]

    from lstm_bridge import keras

    x = np.random.default_rng(2).uniform(-1, 1, (2, 5, 3)).astype(np.float32)
    g = keras.GRU(4, return_sequences=True, name="g")
    b = keras.Bidirectional(keras.SimpleRNN(2, activation="relu", return_sequences=True), name="b")
    y = b(g(torch.from_numpy(x))).detach().numpy()
    io.save([g, b], tmp_path / "m.ckpt", crc=True)

    class Net(nn.Cell):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.g = nn.GRU(3, 4, batch_first=True)
            self.b = nn.RNN(4, 2, batch_first=True, bidirectional=True, nonlinearity="relu")

        def construct(self, t):  # type: ignore[no-untyped-def]
            return self.b(self.g(t)[0])[0]

    net = Net()
    params = ms.load_checkpoint(str(tmp_path / "m.ckpt"), crc_check=True)
    assert ms.load_param_into_net(net, params, strict_load=True) == ([], [])
    assert np.abs(net(ms.Tensor(x)).asnumpy() - y).max() <= 1e-4
