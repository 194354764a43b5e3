"""Record one call of every catalogue layer in the real frameworks, for ``tests/test_models_layers.py``.

Run with the golden environment's Python (``.golden-venvs/tf``): the script runs itself once per generation
(tf_keras 2.21 with ``TF_USE_LEGACY_KERAS=1``, Keras 3.15.1) and writes ``tests/golden/model_layers.json``:
per case and generation the layer's own ``get_config()``, its weights (``get_weights()``), the inputs, the
mask given, the output(s) of ``layer(x, mask=...)`` (``training=True`` where the case says so) and the output
mask of ``compute_mask`` (None when the layer does not support masking: Keras 3 drops the mask, tf_keras
refuses to build the model). Inputs and weights are drawn from ``numpy.random.RandomState`` seeded per case.

    .golden-venvs/tf/bin/python tools/golden_model_layers.py [--out tests/golden/model_layers.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import zlib
from typing import Any, Dict, List

import numpy as np

B, T, F = 2, 5, 3
LENGTHS = [5, 3]

# (case id, class name, constructor kwargs, input specs, mask?, training)
# input spec: "f:<shape>" float, "i:<shape>:<vocab>" int ids right-padded with 0 per LENGTHS
CASES: List[Any] = [
    ("embedding", "Embedding", {"input_dim": 7, "output_dim": 3}, ["i:2,5:7"], False, False),
    (
        "embedding_mask_zero",
        "Embedding",
        {"input_dim": 7, "output_dim": 3, "mask_zero": True},
        ["i:2,5:7"],
        False,
        False,
    ),
    ("masking", "Masking", {"mask_value": 0.0}, ["p:2,5,3"], False, False),
    ("dense_relu", "Dense", {"units": 4, "activation": "relu"}, ["f:2,5,3"], True, False),
    ("dense_nobias_gelu", "Dense", {"units": 2, "activation": "gelu", "use_bias": False}, ["f:2,3"], False, False),
    ("activation_hard_sigmoid", "Activation", {"activation": "hard_sigmoid"}, ["f:2,5,3"], True, False),
    ("activation_softmax", "Activation", {"activation": "softmax"}, ["f:2,5,3"], False, False),
    ("dropout", "Dropout", {"rate": 0.3}, ["f:2,5,3"], True, False),
    ("spatial_dropout1d", "SpatialDropout1D", {"rate": 0.3}, ["f:2,5,3"], True, False),
    ("gaussian_noise", "GaussianNoise", {"stddev": 0.5}, ["f:2,5,3"], True, False),
    ("gaussian_dropout", "GaussianDropout", {"rate": 0.3}, ["f:2,5,3"], True, False),
    ("alpha_dropout", "AlphaDropout", {"rate": 0.3}, ["f:2,5,3"], True, False),
    ("flatten", "Flatten", {}, ["f:2,5,3"], True, False),
    ("reshape", "Reshape", {"target_shape": [3, 5]}, ["f:2,5,3"], True, False),
    ("permute", "Permute", {"dims": [2, 1]}, ["f:2,5,3"], True, False),
    ("repeat_vector", "RepeatVector", {"n": 3}, ["f:2,3"], False, False),
    (
        "time_distributed_dense",
        "TimeDistributed",
        {"layer": ("Dense", {"units": 2, "activation": "tanh"})},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "bidirectional_lstm",
        "Bidirectional",
        {"layer": ("LSTM", {"units": 2, "return_sequences": True})},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "bidirectional_gru_sum",
        "Bidirectional",
        {"layer": ("GRU", {"units": 2}), "merge_mode": "sum"},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "lstm_hard_sigmoid",
        "LSTM",
        {"units": 3, "recurrent_activation": "hard_sigmoid", "return_sequences": True},
        ["f:2,5,3"],
        True,
        False,
    ),
    ("lstm_state", "LSTM", {"units": 2, "return_state": True}, ["f:2,5,3"], True, False),
    ("gru", "GRU", {"units": 3, "return_sequences": True}, ["f:2,5,3"], True, False),
    ("simple_rnn", "SimpleRNN", {"units": 3}, ["f:2,5,3"], True, False),
    ("conv1d_valid", "Conv1D", {"filters": 2, "kernel_size": 2}, ["f:2,5,3"], False, False),
    (
        "conv1d_same_stride2",
        "Conv1D",
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        ["f:2,5,3"],
        False,
        False,
    ),
    (
        "conv1d_causal_dilated",
        "Conv1D",
        {"filters": 2, "kernel_size": 2, "padding": "causal", "dilation_rate": 2, "activation": "relu"},
        ["f:2,5,3"],
        False,
        False,
    ),
    ("max_pooling1d_same", "MaxPooling1D", {"pool_size": 2, "padding": "same"}, ["f:2,5,3"], False, False),
    (
        "average_pooling1d_same",
        "AveragePooling1D",
        {"pool_size": 2, "strides": 2, "padding": "same"},
        ["f:2,5,3"],
        False,
        False,
    ),
    ("average_pooling1d_valid", "AveragePooling1D", {"pool_size": 3, "strides": 1}, ["f:2,5,3"], False, False),
    ("global_max_pooling1d", "GlobalMaxPooling1D", {}, ["f:2,5,3"], True, False),
    ("global_average_pooling1d_masked", "GlobalAveragePooling1D", {}, ["f:2,5,3"], True, False),
    ("global_average_pooling1d", "GlobalAveragePooling1D", {"keepdims": True}, ["f:2,5,3"], False, False),
    ("batch_normalization", "BatchNormalization", {"epsilon": 0.01}, ["f:2,5,3"], True, False),
    ("batch_normalization_training", "BatchNormalization", {"momentum": 0.9}, ["f:2,5,3"], False, True),
    ("layer_normalization", "LayerNormalization", {}, ["f:2,5,3"], True, False),
    ("zero_padding1d", "ZeroPadding1D", {"padding": [1, 2]}, ["f:2,5,3"], False, False),
    ("cropping1d", "Cropping1D", {"cropping": [1, 2]}, ["f:2,5,3"], False, False),
    ("up_sampling1d", "UpSampling1D", {"size": 2}, ["f:2,5,3"], False, False),
    ("concatenate", "Concatenate", {}, ["f:2,5,3", "f:2,5,2"], True, False),
    ("add", "Add", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("subtract", "Subtract", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("multiply", "Multiply", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("average", "Average", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("maximum", "Maximum", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("minimum", "Minimum", {}, ["f:2,5,3", "f:2,5,3"], True, False),
    ("dot", "Dot", {"axes": 2}, ["f:2,5,3", "f:2,4,3"], False, False),
    ("dot_normalize", "Dot", {"axes": 1, "normalize": True}, ["f:2,3", "f:2,3"], False, False),
    # masks that differ between the inputs of a merge (tf_keras ANDs them, Keras 3 ORs them)
    ("concatenate_two_masks", "Concatenate", {}, ["f:2,5,3", "f:2,5,2"], "two", False),
    ("concatenate_one_mask", "Concatenate", {}, ["f:2,5,3", "f:2,5,3"], "first", False),
    ("add_two_masks", "Add", {}, ["f:2,5,3", "f:2,5,3"], "two", False),
    ("add_one_mask", "Add", {}, ["f:2,5,3", "f:2,5,3"], "first", False),
    ("multiply_two_masks", "Multiply", {}, ["f:2,5,3", "f:2,5,3"], "two", False),
    ("multiply_one_mask", "Multiply", {}, ["f:2,5,3", "f:2,5,3"], "first", False),
    ("maximum_two_masks", "Maximum", {}, ["f:2,5,3", "f:2,5,3", "f:2,5,3"], "two", False),
    ("minimum_one_mask", "Minimum", {}, ["f:2,5,3", "f:2,5,3"], "first", False),
    ("average_two_masks", "Average", {}, ["f:2,5,3", "f:2,5,3"], "two", False),
    # more options of the catalogue
    ("masking_value", "Masking", {"mask_value": 0.5}, ["h:2,5,3"], False, False),
    ("dense_2d_softmax", "Dense", {"units": 3, "activation": "softmax"}, ["f:2,4"], False, False),
    ("activation_keras_names", "Activation", {"activation": "selu"}, ["f:2,5,3"], False, False),
    ("flatten_channels_first", "Flatten", {"data_format": "channels_first"}, ["f:2,5,3"], False, False),
    ("reshape_minus_one", "Reshape", {"target_shape": [-1]}, ["f:2,5,3"], False, False),
    (
        "time_distributed_conv1d",
        "TimeDistributed",
        {"layer": ("Conv1D", {"filters": 2, "kernel_size": 2})},
        ["f:2,5,4,3"],
        False,
        False,
    ),
    (
        "lstm_go_backwards",
        "LSTM",
        {"units": 2, "go_backwards": True, "return_sequences": True},
        ["f:2,5,3"],
        True,
        False,
    ),
    ("gru_reset_before", "GRU", {"units": 2, "reset_after": False, "return_state": True}, ["f:2,5,3"], True, False),
    (
        "simple_rnn_relu_seq",
        "SimpleRNN",
        {"units": 2, "activation": "relu", "return_sequences": True},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "bidirectional_none_state",
        "Bidirectional",
        {"layer": ("LSTM", {"units": 2, "return_sequences": True, "return_state": True}), "merge_mode": None},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "bidirectional_rnn_ave",
        "Bidirectional",
        {"layer": ("SimpleRNN", {"units": 2, "return_sequences": True}), "merge_mode": "ave"},
        ["f:2,5,3"],
        True,
        False,
    ),
    (
        "conv1d_channels_first",
        "Conv1D",
        {"filters": 2, "kernel_size": 2, "data_format": "channels_first"},
        ["f:2,3,5"],
        False,
        False,
    ),
    (
        "conv1d_groups",
        "Conv1D",
        {"filters": 4, "kernel_size": 2, "groups": 2, "use_bias": False},
        ["f:2,5,4"],
        False,
        False,
    ),
    ("max_pooling1d_stride1", "MaxPooling1D", {"pool_size": 3, "strides": 1}, ["f:2,5,3"], False, False),
    ("global_max_pooling1d_keepdims", "GlobalMaxPooling1D", {"keepdims": True}, ["f:2,5,3"], False, False),
    (
        "global_average_pooling1d_channels_first",
        "GlobalAveragePooling1D",
        {"data_format": "channels_first"},
        ["f:2,3,5"],
        False,
        False,
    ),
    ("batch_normalization_no_scale", "BatchNormalization", {"scale": False, "center": True}, ["f:2,3"], False, False),
    ("batch_normalization_training_masked", "BatchNormalization", {}, ["f:2,5,3"], True, True),
    ("layer_normalization_two_axes", "LayerNormalization", {"axis": [1, 2], "epsilon": 0.1}, ["f:2,5,3"], False, False),
    ("zero_padding1d_int", "ZeroPadding1D", {"padding": 2}, ["f:2,5,3"], False, False),
    ("up_sampling1d_3", "UpSampling1D", {"size": 3}, ["f:2,5,3"], False, False),
    ("dot_axes_pair", "Dot", {"axes": [1, 1]}, ["f:2,5,3", "f:2,5,2"], False, False),
]


def _rng(case: str) -> np.random.RandomState:
    return np.random.RandomState(zlib.crc32(case.encode()) & 0x7FFFFFFF)


def _input(spec: str, rng: np.random.RandomState) -> np.ndarray:
    kind, shape_s, *rest = spec.split(":")
    shape = tuple(int(d) for d in shape_s.split(","))
    if kind == "i":
        x = rng.randint(1, int(rest[0]), size=shape)
        for b, n in enumerate(LENGTHS):
            x[b, n:] = 0
        return x.astype(np.int32)
    x = rng.uniform(-2, 2, size=shape).astype(np.float32)
    if kind == "h":  # steps equal to 0.5 everywhere at the padded positions and one hole
        for b, n in enumerate(LENGTHS):
            x[b, n:] = 0.5
        x[0, 1] = 0.5
    if kind == "p":  # padded steps all zero (what Masking detects)
        for b, n in enumerate(LENGTHS):
            x[b, n:] = 0
    return x


def _mask(lengths: Any = None) -> np.ndarray:
    return np.array([[t < n for t in range(T)] for n in (lengths or LENGTHS)])


def _masks(with_mask: Any, n: int) -> Any:
    """The call's mask: one for a single input; per input for a merge ("two": the second input's has a
    hole and other lengths; "first": only the first input carries one)."""
    if not with_mask:
        return None
    if n == 1:
        return _mask()
    if with_mask == "two":
        other = _mask([2, 4])
        other[0, 0] = False
        return [_mask()] + [other] * (n - 1)
    if with_mask == "first":
        return [_mask()] + [None] * (n - 1)
    return [_mask()] * n


def _tolist(v: Any) -> Any:
    """An array as ``{"shape", "dtype", "b64"}``: its little-endian bytes in base64 (float32 stays exact)."""
    if v is None:
        return None
    a = np.ascontiguousarray(np.asarray(v))
    a = a.astype(a.dtype.newbyteorder("<"))
    return {
        "shape": list(a.shape),
        "dtype": str(a.dtype.newbyteorder("=")),
        "b64": base64.b64encode(a.tobytes()).decode(),
    }


def record(gen: int) -> Dict[str, Any]:
    if gen == 2:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tf_keras as keras
    else:
        import keras
    import tensorflow as tf

    out: Dict[str, Any] = {}
    for case, cls, kwargs, specs, with_mask, training in CASES:
        rng = _rng(case)
        kw = dict(kwargs)
        if "layer" in kw:
            inner_cls, inner_kw = kw["layer"]
            kw["layer"] = getattr(keras.layers, inner_cls)(**inner_kw)
        layer = getattr(keras.layers, cls)(**kw)
        xs = [_input(s, rng) for s in specs]
        masks: Any = _masks(with_mask, len(xs))
        mask = masks
        arg: Any = xs if len(xs) > 1 else xs[0]
        layer.build([x.shape for x in xs] if len(xs) > 1 else xs[0].shape)
        weights = [rng.uniform(-1, 1, size=w.shape).astype(np.float32) for w in layer.get_weights()]
        if cls == "BatchNormalization":  # positive moving variance
            weights[-1] = np.abs(weights[-1]) + 0.5
        layer.set_weights(weights)
        call_kwargs: Dict[str, Any] = {}
        if training:
            call_kwargs["training"] = True
        tensor_masks = (
            None
            if masks is None
            else [None if m is None else tf.constant(m) for m in masks]
            if isinstance(masks, list)
            else tf.constant(masks)
        )
        if masks is not None:
            import inspect

            if "mask" in inspect.signature(layer.call).parameters:
                call_kwargs["mask"] = tensor_masks
            elif len(xs) > 1:  # merge layers read the masks the inputs carry
                arg = [tf.constant(x) for x in xs]
                for t, m in zip(arg, tensor_masks):
                    if m is not None:
                        t._keras_mask = m
        y = layer(arg, **call_kwargs)
        ys = [np.asarray(v) for v in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]
        try:
            supports = bool(layer.supports_masking)
            out_mask = layer.compute_mask(arg, tensor_masks) if (supports or gen == 2) else None
            out_mask_err = None
        except Exception as exc:  # tf_keras refuses a mask on a layer that does not support masking
            out_mask, out_mask_err = None, f"{type(exc).__name__}: {str(exc)[:160]}"
        if isinstance(out_mask, (list, tuple)):
            out_mask = [None if m is None else np.asarray(m) for m in out_mask]
        elif out_mask is not None:
            out_mask = np.asarray(out_mask)
        config = layer.get_config()
        out[case] = {
            "class_name": cls,
            "config": json.loads(json.dumps(config, default=lambda o: None)),
            "inputs": [_tolist(x) for x in xs],
            "mask": [_tolist(m) for m in mask] if isinstance(mask, list) else _tolist(mask),
            "training": training,
            "weights": [_tolist(w) for w in weights],
            "outputs": [_tolist(v) for v in ys],
            "output_mask": [_tolist(m) for m in out_mask] if isinstance(out_mask, list) else _tolist(out_mask),
            "output_mask_error": out_mask_err,
            "supports_masking": bool(layer.supports_masking),
        }
    return out


def _graphs(keras: Any, gen: int) -> Dict[str, Any]:
    """Small models whose masks take every path: ``{id: (model, inputs)}``."""
    L = keras.layers
    rng = _rng("graphs")
    ids = rng.randint(1, 9, size=(3, 6)).astype(np.int32)
    ids[1, 4:] = 0
    ids[2, 2:] = 0
    feats = rng.uniform(-1, 1, size=(3, 6, 3)).astype(np.float32)
    feats[0, 5:] = 0
    feats[2, 3:] = 0
    out: Dict[str, Any] = {}

    # Masking -> Dropout -> LSTM(seq) -> TimeDistributed(Dense) -> BatchNormalization -> masked mean
    x = keras.Input((6, 3), name="feats")
    h = L.Masking(name="mask")(x)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.LSTM(4, return_sequences=True, name="lstm")(h)
    h = L.TimeDistributed(L.Dense(3, activation="tanh"), name="td")(h)
    h = L.BatchNormalization(name="bn")(h)
    out["masking_chain"] = (keras.Model(x, L.GlobalAveragePooling1D(name="mean")(h)), [feats])

    # two inputs, a concatenation of a masked and an unmasked sequence, Bidirectional GRU, two outputs
    t = keras.Input((6,), dtype="int32", name="tokens")
    f = keras.Input((6, 3), name="raw")
    e = L.Embedding(9, 3, mask_zero=True, name="emb")(t)
    c = L.Concatenate(name="cat")([e, f])
    b = L.Bidirectional(L.GRU(3, return_sequences=True), name="bigru")(c)
    last = L.SimpleRNN(2, name="rnn")(b)
    pooled = L.GlobalAveragePooling1D(name="pool")(b)
    out["two_inputs_two_outputs"] = (
        keras.Model([t, f], [L.Dense(2, name="head_a")(last), L.Dense(1, name="head_b")(pooled)]),
        [ids, feats],
    )

    # a nested functional model on a masked sequence, its output mask feeding a masked mean
    inner_in = keras.Input((6, 3))
    inner = keras.Model(inner_in, L.LayerNormalization()(L.LSTM(3, return_sequences=True)(inner_in)), name="inner")
    t2 = keras.Input((6,), dtype="int32", name="ids")
    e2 = L.Embedding(9, 3, mask_zero=True, name="emb2")(t2)
    out["nested_masked"] = (keras.Model(t2, L.GlobalAveragePooling1D(name="avg")(inner(e2))), [ids])

    # one LSTM shared by two inputs with their own masks, their states as another LSTM's initial state
    a = keras.Input((6,), dtype="int32", name="a")
    bq = keras.Input((6, 3), name="b")
    shared = L.LSTM(3, return_sequences=True, return_state=True, name="shared")
    ea = L.Embedding(9, 3, mask_zero=True, name="emb_a")(a)
    mb = L.Masking(name="mask_b")(bq)
    ya, ha, ca = shared(ea)
    yb, _, _ = shared(mb)
    dec = L.LSTM(3, name="dec")(yb, initial_state=[ha, ca])
    merged = L.Add(name="add")([ya, yb])
    out["shared_states"] = (
        keras.Model([a, bq], [dec, L.GlobalAveragePooling1D(name="mean_add")(merged)]),
        [ids, feats],
    )

    # Sequential: Embedding(mask_zero) -> SpatialDropout1D -> Bidirectional(LSTM, sum) -> Dense
    seq = keras.Sequential(
        [
            keras.Input((6,), dtype="int32"),
            L.Embedding(9, 4, mask_zero=True),
            L.SpatialDropout1D(0.3),
            L.Bidirectional(L.LSTM(3), merge_mode="sum"),
            L.Dense(2, activation="softmax"),
        ],
        name="seq",
    )
    out["sequential"] = (seq, [ids])

    if gen == 3:  # tf_keras refuses to build these (Conv1D / GlobalMaxPooling1D do not support masking)
        t3 = keras.Input((6,), dtype="int32", name="t3")
        e3 = L.Embedding(9, 3, mask_zero=True, name="emb3")(t3)
        c3 = L.Conv1D(3, 2, padding="same", name="conv")(e3)  # drops the mask
        out["mask_dropped_by_conv"] = (keras.Model(t3, L.LSTM(2, name="l3")(c3)), [ids])
    return out


def record_graphs(gen: int) -> Dict[str, Any]:
    if gen == 2:
        import tf_keras as keras
    else:
        import keras
    result: Dict[str, Any] = {}
    for gid, (model, inputs) in _graphs(keras, gen).items():
        rng = _rng(gid)
        model.set_weights([rng.uniform(-0.8, 0.8, size=w.shape).astype(np.float32) for w in model.get_weights()])
        for layer in model.layers:
            if type(layer).__name__ == "BatchNormalization":
                w = layer.get_weights()
                w[-1] = np.abs(w[-1]) + 0.5
                layer.set_weights(w)
        preds = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        preds = preds if isinstance(preds, list) else [preds]
        result[gid] = {
            "model_config": {"class_name": type(model).__name__, "config": model.get_config()},
            "weights": {layer.name: [_tolist(w) for w in layer.get_weights()] for layer in model.layers},
            "inputs": [_tolist(x) for x in inputs],
            "outputs": [_tolist(p) for p in preds],
        }
    return json.loads(json.dumps(result, default=lambda o: None))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "model_layers.json")
    )
    ap.add_argument("--gen", type=int, default=0)
    args = ap.parse_args()
    if args.gen:
        cases = record(args.gen)
        json.dump({"cases": cases, "graphs": record_graphs(args.gen)}, sys.stdout)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result: Dict[str, Any] = {"format": 1, "generations": {}}
    for gen, label in ((2, "tf_keras 2.21"), (3, "keras 3.15.1")):
        proc = subprocess.run([sys.executable, __file__, "--gen", str(gen)], env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(proc.returncode)
        result["generations"][str(gen)] = {"framework": label, **json.loads(proc.stdout)}
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, separators=(",", ":"), sort_keys=True)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
