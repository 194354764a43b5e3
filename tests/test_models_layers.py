"""Every catalogue layer of :mod:`lstm_bridge.models.layers` against one call recorded in the real frameworks
(``tests/golden/model_layers.json``, written by ``tools/golden_model_layers.py`` from tf_keras 2.21 and
Keras 3.15.1): built from the layer's own Keras ``get_config()``, loaded with its ``get_weights()``, called on
the recorded inputs and mask; outputs within 1e-5 (+ 1e-5 relative), output masks exactly."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
import torch

from lstm_bridge.models.layers import CATALOGUE, layer_from_config

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "model_layers.json"
DATA: Dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
TOL = 1e-5


def _array(d: Any) -> Any:
    if d is None:
        return None
    dtype = np.dtype(d["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=dtype).astype(d["dtype"]).reshape(d["shape"])


def _cases() -> List[Tuple[str, str]]:
    return [(gen, case) for gen, g in sorted(DATA["generations"].items()) for case in sorted(g["cases"])]


def _run(gen: str, case: str) -> Tuple[Any, List[np.ndarray], Any, Dict[str, Any]]:
    rec = DATA["generations"][gen]["cases"][case]
    layer: Any = layer_from_config({"class_name": rec["class_name"], "config": rec["config"]}, int(gen))
    weights = [_array(w) for w in rec["weights"]]
    if weights:
        layer.load_keras_weights(weights)
    xs = [torch.from_numpy(_array(x)) for x in rec["inputs"]]
    masks: Any
    if isinstance(rec["mask"], list):  # one per input of a merge
        masks = [None if m is None else torch.from_numpy(_array(m)) for m in rec["mask"]]
    else:
        mask = _array(rec["mask"])
        m = None if mask is None else torch.from_numpy(mask)
        masks = None if m is None else ([m] * len(xs) if len(xs) > 1 else m)
    with torch.no_grad():
        y = layer(*xs, mask=masks, training=True if rec["training"] else None)
        out_mask = layer.compute_mask(xs if len(xs) > 1 else xs[0], masks)
    ys = [t.numpy() for t in (y if isinstance(y, (list, tuple)) else [y])]
    return layer, ys, out_mask, rec


@pytest.mark.parametrize("gen,case", _cases())
def test_layer_matches_keras(gen: str, case: str) -> None:
    _, ys, out_mask, rec = _run(gen, case)
    expected = [_array(o) for o in rec["outputs"]]
    assert len(ys) == len(expected), f"{case}: {len(ys)} outputs; Keras returns {len(expected)}"
    for got, want in zip(ys, expected):
        assert got.shape == want.shape, f"{case}: shape {got.shape}; Keras {want.shape}"
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL, err_msg=f"{case} (keras_version {gen})")
    want_mask = rec["output_mask"]
    if isinstance(want_mask, list):
        assert isinstance(out_mask, list) and len(out_mask) == len(want_mask)
        pairs = list(zip(out_mask, want_mask))
    else:
        pairs = [(out_mask, want_mask)]
    for got_m, want_m in pairs:
        if want_m is None:
            assert got_m is None, f"{case}: output mask {got_m}; Keras gives None"
        else:
            assert got_m is not None, f"{case}: no output mask; Keras gives one"
            np.testing.assert_array_equal(got_m.numpy(), _array(want_m))


def test_every_catalogue_class_has_a_recorded_case_in_both_generations() -> None:
    for gen, g in DATA["generations"].items():
        recorded = {rec["class_name"] for rec in g["cases"].values()} | {"InputLayer"}
        assert set(CATALOGUE) - recorded == set(), f"keras_version {gen}: no recorded case"


@pytest.mark.parametrize(
    "case", ["dropout", "spatial_dropout1d", "gaussian_noise", "gaussian_dropout", "alpha_dropout"]
)
def test_dropout_family_acts_only_in_train_mode(case: str) -> None:
    layer, ys, _, rec = _run("3", case)
    x = torch.from_numpy(_array(rec["inputs"][0])).repeat(400, 1, 1)
    assert torch.equal(layer(x), x)  # eval mode: identity, as Keras without training=True
    layer.train()
    torch.manual_seed(0)
    y = layer(x)
    assert not torch.equal(y, x)
    rel = float((y.mean() - x.mean()).abs() / x.abs().mean())
    assert rel < 0.1, f"{case}: train-mode output mean moved by {rel:.3f} of |x|"
    if case == "spatial_dropout1d":  # whole channels dropped: a dropped (batch, channel) is zero at every step
        zero = (y == 0).all(dim=1)
        assert zero.any() and ((y == 0).any(dim=1) == zero).all()
    if case == "dropout":
        kept = y != 0
        torch.testing.assert_close(y[kept], (x / 0.7)[kept])


def test_torch_native_state_dict_names() -> None:
    from lstm_bridge.models import layers as L

    d = L.Dense(units=4, in_features=8, activation="relu", use_bias=True, keras_version=3)
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == {"weight": (4, 8), "bias": (4,)}
    c = L.Conv1D(filters=5, kernel_size=3, in_channels=2, keras_version=3)
    assert tuple(c.state_dict()["weight"].shape) == (5, 2, 3)
    bn = L.BatchNormalization(num_features=3, keras_version=2)
    assert sorted(bn.state_dict()) == ["bias", "running_mean", "running_var", "weight"]
    e = L.Embedding(input_dim=10, output_dim=4, mask_zero=True, keras_version=3)
    assert list(e.state_dict()) == ["weight"]
    lstm = L.LSTM(units=3, keras_version=3)
    lstm.load_keras_weights([np.zeros((2, 12)), np.zeros((3, 12)), np.zeros(12)])
    assert list(lstm.state_dict()) == ["cell.kernel", "cell.recurrent_kernel", "cell.bias"]


def test_unknown_config_keys_are_refused() -> None:
    from lstm_bridge.models import layers as L

    with pytest.raises(ValueError, match="unsupported config keys"):
        L.Dense(units=2, surprise=1, keras_version=3)


def _graph_cases() -> List[Tuple[str, str]]:
    return [(gen, gid) for gen, g in sorted(DATA["generations"].items()) for gid in sorted(g.get("graphs", {}))]


@pytest.mark.parametrize("gen,gid", _graph_cases())
def test_mask_propagation_through_recorded_models(gen: str, gid: str) -> None:
    """Small models recorded in the real frameworks whose masks take every path (Masking, Dropout,
    TimeDistributed, BatchNormalization, masked mean; a masked and an unmasked input concatenated; a nested
    model; a shared LSTM on two differently masked inputs whose states start another LSTM; a Sequential; a
    Conv1D dropping the mask in Keras 3), built from their config and get_weights() per layer."""
    from lstm_bridge.models.graph import model_from_config

    rec = DATA["generations"][gen]["graphs"][gid]
    model = model_from_config(rec["model_config"], int(gen))
    for name, module in model.weighted_layers():
        module.load_keras_weights([_array(w) for w in rec["weights"][name]])
    with torch.no_grad():
        result = model(*[torch.from_numpy(_array(x)) for x in rec["inputs"]])
    got = [t.numpy() for t in (result if isinstance(result, list) else [result])]
    expected = [_array(o) for o in rec["outputs"]]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=TOL, atol=TOL, err_msg=f"{gid} (keras_version {gen})")


def test_input_layer_casts_as_keras_does() -> None:
    from lstm_bridge.models import layers as L

    ids = L.InputLayer(dtype="int32", keras_version=3)(torch.tensor([[1.9, -0.5]]))
    assert ids.dtype == torch.int64 and ids.tolist() == [[1, 0]]  # truncation, as tf.cast
    half = L.InputLayer(dtype="float16", keras_version=2)(torch.tensor([1.0001]))
    assert half.dtype == torch.float32 and half.item() == 1.0  # rounded to float16 first
    assert L.InputLayer(keras_version=3)(np.ones((1, 2))).dtype == torch.float32
