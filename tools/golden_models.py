#!/usr/bin/env python3
"""Golden WHOLE Keras models (issue 13 item 6): real model files and their predictions.

Usage::

    python3 tools/golden_models.py                  # both generations, each in the TF golden venv (subprocess)
    python3 tools/golden_models.py --only keras3    # one generation
    <venv python> tools/golden_models.py --flavour tf_keras --out tests/golden/models   # what the driver runs

Without ``--flavour`` this is a standard-library-only driver (like ``tools/make_golden.py``): it runs itself
once per generation with ``.golden-venvs/tf/bin/python`` (``tf_keras`` 2.21 with ``TF_USE_LEGACY_KERAS=1``,
Keras 3.15.1 without), on the CPU, one thread, fixed seeds.

Each generation writes, under ``tests/golden/models/``:

* ``<flavour>/<model id>.keras`` and ``<flavour>/<model id>.h5``: the model saved by the real Keras
  (``model.save``) in its native zip format and in the legacy HDF5 format. The ``.keras`` zip is rewritten
  with fixed timestamps and ``metadata.json``'s ``date_saved`` fixed, so reruns give identical bytes;
* ``<flavour>.npz``: float32 / int32 arrays keyed ``<model id>/<name>``: the inputs ``in<k>`` (padded
  batches), Keras's predictions ``out<k>`` (``model(inputs, training=False)``, flattened in Keras's output
  order) and per-layer outputs ``layer/<key>/<j>`` (every output tensor of every call of every top-level
  layer, from one ``Model(model.inputs, [...])`` of the intermediate tensors);
* ``<flavour>.json``: the index (schema below).

Index schema::

    {"format": 1, "flavour": "tf_keras" | "keras3", "keras_version": 2 | 3, "generator": "tools/golden_models.py",
     "versions": {...}, "settings": {...},
     "models": [{"id": str, "description": str, "kind": "sequential" | "functional",
                 "files": {"keras": "<flavour>/<id>.keras", "h5": "<flavour>/<id>.h5"},  # those kept
                 "keras_cannot_reload": {format: Keras's error},  # files the real Keras cannot load back itself
                                                                 # (kept: the predictions are the in-memory model's)
                 "inputs": [{"name": str, "key": npz key, "dtype": "float32" | "int32", "shape": [...],
                             "lengths": npz key of the per-row valid lengths, "holes": bool}],
                 "outputs": [npz keys, Keras's output order],
                 "layer_outputs": {key: [npz keys]},   # key: layer name; "<name>@<k>" for the k-th call of a
                                                        # layer called several times (k in call order)
                 "layers": [{"name", "class", "calls"}],  # top-level layers (InputLayer excluded)
                 "classes": [every layer class in the model, nested ones included, sorted],
                 "reload_max_abs_diff": {"keras": float, "h5": float}}],   # the saved files reloaded in Keras
     "catalogue": [the catalogue classes (issue 13 item 2)], "covered": {class: [model ids]}}

Inputs are right-padded batches of ``B = 5`` rows of ``T = 7`` steps with per-row lengths (row 0 full, the
others 2..6): token ids ``0`` after the length (``Embedding(mask_zero=True)``), float steps all-zero after it,
and for models starting with ``Masking`` also one interior all-zero step in rows 0 and 2 (row 2 then has at
least 4 steps; ``lengths`` records the padding only, the holes are not subtracted). Weights are random
(``RandomState`` seeded by the model id), BatchNormalization moving statistics included, so nothing is an
identity.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).resolve().parent
OUT_DEFAULT = ROOT / "tests" / "golden" / "models"
FLAVOURS = {
    "tf_keras": {"TF_USE_LEGACY_KERAS": "1"},
    "keras3": {"TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow"},
}
COMMON_ENV = {
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_DETERMINISTIC_OPS": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "PYTHONWARNINGS": "ignore",
}
FORMAT_VERSION = 1
BATCH = 5
STEPS = 7

#: issue 13 item 2: the layer catalogue every golden set must cover (InputLayer is implicit in every model)
CATALOGUE = (
    "InputLayer Embedding Masking Dense Activation Dropout SpatialDropout1D GaussianNoise GaussianDropout "
    "AlphaDropout Flatten Reshape Permute RepeatVector TimeDistributed Bidirectional LSTM GRU SimpleRNN Conv1D "
    "MaxPooling1D AveragePooling1D GlobalMaxPooling1D GlobalAveragePooling1D BatchNormalization "
    "LayerNormalization ZeroPadding1D Cropping1D UpSampling1D Concatenate Add Subtract Multiply Average Maximum "
    "Minimum Dot"
).split()


# ------------------------------------------------------------------------------------------------
# The models (identical definitions for both generations; every layer named, so names match)


def _tokens(K: Any, name: str) -> Any:
    return K.Input(shape=(STEPS,), dtype="int32", name=name)


def m_embed_bilstm(K: Any) -> Any:
    """Embedding(mask_zero) -> Bidirectional(LSTM) -> LSTM -> Dense(softmax), Sequential."""
    L = K.layers
    return K.Sequential(
        [
            _tokens(K, "tokens"),
            L.Embedding(30, 6, mask_zero=True, name="embedding"),
            L.Bidirectional(L.LSTM(5, return_sequences=True), name="bilstm"),
            L.LSTM(4, name="lstm"),
            L.Dense(3, activation="softmax", name="dense"),
        ],
        name="embed_bilstm",
    )


def m_lstm_hard_td(K: Any) -> Any:
    """Masking -> LSTM(hard_sigmoid, dropout, recurrent_dropout) -> TimeDistributed(Dense) -> Activation."""
    L = K.layers
    return K.Sequential(
        [
            K.Input(shape=(STEPS, 4), name="x"),
            L.Masking(0.0, name="masking"),
            L.LSTM(
                6,
                recurrent_activation="hard_sigmoid",
                dropout=0.2,
                recurrent_dropout=0.1,
                return_sequences=True,
                name="lstm",
            ),
            L.TimeDistributed(L.Dense(3, activation="tanh"), name="td_dense"),
            L.Activation("softsign", name="softsign"),
            L.Bidirectional(
                L.LSTM(3, return_sequences=True, go_backwards=False, unit_forget_bias=False),
                merge_mode="mul",
                name="bilstm_mul",
            ),
        ],
        name="lstm_hard_td",
    )


def m_masking_gru_rnn(K: Any) -> Any:
    """Masking (holes) -> GRU(reset_after) -> Bidirectional(GRU(reset_after=False), ave) -> SimpleRNN -> Dense."""
    L = K.layers
    return K.Sequential(
        [
            K.Input(shape=(STEPS, 3), name="x"),
            L.Masking(0.0, name="masking"),
            L.GRU(6, return_sequences=True, reset_after=True, name="gru_after"),
            L.Bidirectional(
                L.GRU(4, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid"),
                merge_mode="ave",
                name="bigru_before",
            ),
            L.SimpleRNN(5, activation="relu", name="rnn"),
            L.Dense(2, name="dense"),
        ],
        name="masking_gru_rnn",
    )


def m_conv_norm_lstm(K: Any) -> Any:
    """Conv1D(causal, dilation) -> BatchNormalization -> Conv1D(same) -> MaxPooling1D -> LayerNormalization
    -> LSTM -> GlobalMaxPooling1D -> Dense."""
    L = K.layers
    return K.Sequential(
        [
            K.Input(shape=(STEPS, 3), name="x"),
            L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu", name="conv_causal"),
            L.BatchNormalization(name="batchnorm"),
            L.Conv1D(4, 2, padding="same", name="conv_same"),
            L.MaxPooling1D(2, padding="same", name="maxpool"),
            L.LayerNormalization(name="layernorm"),
            L.LSTM(4, return_sequences=True, name="lstm"),
            L.GlobalMaxPooling1D(name="globalmax"),
            L.Dense(2, activation="elu", name="dense"),
        ],
        name="conv_norm_lstm",
    )


def m_conv_shapes_rnn(K: Any) -> Any:
    """Conv1D(valid, strides) -> AveragePooling1D -> UpSampling1D -> ZeroPadding1D -> Cropping1D -> SimpleRNN
    -> Flatten -> Dense."""
    L = K.layers
    return K.Sequential(
        [
            K.Input(shape=(STEPS, 3), name="x"),
            L.Conv1D(4, 2, strides=2, padding="valid", name="conv_valid"),
            L.AveragePooling1D(2, strides=1, padding="valid", name="avgpool"),
            L.UpSampling1D(2, name="upsample"),
            L.ZeroPadding1D((1, 2), name="zeropad"),
            L.Cropping1D((2, 1), name="crop"),
            L.AveragePooling1D(2, padding="same", name="avgpool_same"),
            L.SimpleRNN(3, return_sequences=True, name="rnn"),
            L.Flatten(name="flatten"),
            L.Dense(2, name="dense"),
        ],
        name="conv_shapes_rnn",
    )


def m_merge_graph(K: Any) -> Any:
    """Two inputs, a shared LSTM, every merge layer with masks, GlobalAveragePooling1D with a mask, a nested
    Sequential model and Dot; two outputs."""
    L = K.layers
    tok = _tokens(K, "tokens")
    feats = K.Input(shape=(STEPS, 4), name="feats")
    ea = L.Embedding(20, 4, mask_zero=True, name="embedding")(tok)
    fb = L.Masking(0.0, name="masking")(feats)
    fb = L.Dense(4, activation="tanh", name="proj")(fb)
    shared = L.LSTM(5, return_sequences=True, name="shared_lstm")
    sa = shared(ea)
    sb = shared(fb)
    merged = [
        L.Add(name="add")([sa, sb]),
        L.Subtract(name="subtract")([sa, sb]),
        L.Multiply(name="multiply")([sa, sb]),
        L.Average(name="average")([sa, sb]),
        L.Maximum(name="maximum")([sa, sb]),
        L.Minimum(name="minimum")([sa, sb]),
    ]
    cat = L.Concatenate(name="concat")(merged)
    h = L.LSTM(4, name="lstm_top")(cat)
    pooled = L.GlobalAveragePooling1D(name="masked_mean")(ea)
    joined = L.Concatenate(axis=-1, name="concat_pool")([h, pooled])
    head = K.Sequential(
        [
            K.Input(shape=(8,), name="head_in"),
            L.Dense(6, activation="gelu", name="head_dense"),
            L.Dropout(0.3, name="head_dropout"),
            L.Dense(3, name="head_out"),
        ],
        name="head",
    )
    y1 = head(joined)
    g = L.Dense(8, name="dot_proj")(joined)
    y2 = L.Dot(axes=1, normalize=True, name="cosine")([joined, g])
    return K.Model([tok, feats], [y1, y2], name="merge_graph")


def m_shapes_dropouts(K: Any) -> Any:
    """Masking -> SpatialDropout1D -> GaussianNoise -> LSTM -> RepeatVector -> Permute -> Reshape ->
    GaussianDropout -> AlphaDropout -> GRU -> Dropout -> Dense(sigmoid), functional."""
    L = K.layers
    x = K.Input(shape=(STEPS, 3), name="x")
    y = L.Masking(0.0, name="masking")(x)
    y = L.SpatialDropout1D(0.2, name="spatial_dropout")(y)
    y = L.GaussianNoise(0.1, name="gaussian_noise")(y)
    y = L.LSTM(4, name="lstm")(y)
    y = L.RepeatVector(3, name="repeat")(y)
    y = L.Permute((2, 1), name="permute")(y)
    y = L.Reshape((3, 4), name="reshape")(y)
    y = L.GaussianDropout(0.2, name="gaussian_dropout")(y)
    y = L.AlphaDropout(0.1, name="alpha_dropout")(y)
    y = L.GRU(3, name="gru")(y)
    y = L.Dropout(0.5, name="dropout")(y)
    y = L.Dense(2, activation="sigmoid", name="dense")(y)
    return K.Model(x, y, name="shapes_dropouts")


def m_seq2seq(K: Any) -> Any:
    """The canonical Keras encoder-decoder: Embedding(mask_zero) -> LSTM(return_state) whose states start a
    decoder LSTM over its own masked Embedding -> TimeDistributed(Dense(softmax))."""
    L = K.layers
    enc_in = _tokens(K, "encoder_tokens")
    dec_in = _tokens(K, "decoder_tokens")
    e = L.Embedding(25, 6, mask_zero=True, name="encoder_embedding")(enc_in)
    _, h, c = L.LSTM(7, return_state=True, name="encoder_lstm")(e)
    d = L.Embedding(25, 6, mask_zero=True, name="decoder_embedding")(dec_in)
    d = L.LSTM(7, return_sequences=True, name="decoder_lstm")(d, initial_state=[h, c])
    y = L.TimeDistributed(L.Dense(25, activation="softmax"), name="decoder_dense")(d)
    return K.Model([enc_in, dec_in], y, name="seq2seq")


def m_input_shape_stack(K: Any) -> Any:
    """Sequential without an Input: GRU(input_shape=...) -> BatchNormalization -> SimpleRNN(go_backwards) ->
    Dense (the older Keras idiom; no mask)."""
    L = K.layers
    return K.Sequential(
        [
            L.GRU(5, return_sequences=True, input_shape=(STEPS, 3), name="gru"),
            L.BatchNormalization(name="batchnorm"),
            L.SimpleRNN(4, go_backwards=True, name="rnn_backwards"),
            L.Dense(2, name="dense"),
        ],
        name="input_shape_stack",
    )


def m_attention(K: Any) -> Any:
    """Luong-style attention over masked sequences: Bidirectional(LSTM, sum) encoder, LSTM decoder,
    Dot(axes=[2, 2]) -> softmax -> Dot(axes=[2, 1]) -> Concatenate -> TimeDistributed(Dense(softmax))."""
    L = K.layers
    enc_in = _tokens(K, "source")
    dec_in = _tokens(K, "target")
    e = L.Embedding(20, 6, mask_zero=True, name="source_embedding")(enc_in)
    e = L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum", name="encoder")(e)
    d = L.Embedding(20, 6, mask_zero=True, name="target_embedding")(dec_in)
    d = L.LSTM(4, return_sequences=True, name="decoder")(d)
    scores = L.Dot(axes=[2, 2], name="scores")([d, e])
    weights = L.Activation("softmax", name="attention")(scores)
    context = L.Dot(axes=[2, 1], name="context")([weights, e])
    joined = L.Concatenate(name="joined")([context, d])
    y = L.TimeDistributed(L.Dense(20, activation="softmax"), name="output")(joined)
    return K.Model([enc_in, dec_in], y, name="attention")


def m_bidir_states(K: Any) -> Any:
    """Masking -> Bidirectional(LSTM, merge_mode=None, return_sequences, return_state): both sequences and
    the four states used (GlobalMaxPooling1D, masked GlobalAveragePooling1D, LayerNormalization ->
    LSTM(go_backwards)), Concatenate -> Dense."""
    L = K.layers
    x = K.Input(shape=(STEPS, 3), name="x")
    y = L.Masking(0.0, name="masking")(x)
    fw, bw, hf, cf, hb, cb = L.Bidirectional(
        L.LSTM(3, return_sequences=True, return_state=True), merge_mode=None, name="bilstm"
    )(y)
    states = L.Concatenate(name="states")([hf, cf, hb, cb])
    s = L.Dense(3, activation="relu", name="state_proj")(states)
    g = L.GlobalMaxPooling1D(name="max_fw")(fw)
    m = L.GlobalAveragePooling1D(name="mean_bw")(bw)
    r = L.LayerNormalization(name="layernorm")(bw)
    r = L.LSTM(3, go_backwards=True, name="lstm_backwards")(r)
    out = L.Concatenate(name="joined")([s, g, m, r])
    out = L.Dense(2, activation="tanh", name="dense")(out)
    return K.Model(x, out, name="bidir_states")


def m_td_embed_stack(K: Any) -> Any:
    """Embedding(mask_zero) -> TimeDistributed(Dense(relu)) -> SpatialDropout1D -> GRU(reset_after=False) ->
    Dropout -> GRU(go_backwards) -> Dense(sigmoid), Sequential."""
    L = K.layers
    return K.Sequential(
        [
            _tokens(K, "tokens"),
            L.Embedding(25, 5, mask_zero=True, name="embedding"),
            L.TimeDistributed(L.Dense(6, activation="relu"), name="td_dense"),
            L.SpatialDropout1D(0.3, name="spatial_dropout"),
            L.GRU(4, return_sequences=True, reset_after=False, name="gru_before"),
            L.Dropout(0.2, name="dropout"),
            L.GRU(4, go_backwards=True, name="gru_backwards"),
            L.Dense(1, activation="sigmoid", name="dense"),
        ],
        name="td_embed_stack",
    )


def m_autoencoder(K: Any) -> Any:
    """Masking -> LSTM -> RepeatVector -> LSTM(return_sequences) -> TimeDistributed(Dense), the sequence
    autoencoder of the Keras examples."""
    L = K.layers
    return K.Sequential(
        [
            K.Input(shape=(STEPS, 3), name="x"),
            L.Masking(0.0, name="masking"),
            L.LSTM(5, name="encoder"),
            L.RepeatVector(STEPS, name="repeat"),
            L.LSTM(5, return_sequences=True, name="decoder"),
            L.TimeDistributed(L.Dense(3), name="reconstruction"),
        ],
        name="autoencoder",
    )


def m_masked_conv(K: Any) -> Any:
    """Masking -> Conv1D (which drops the mask) -> LSTM; and Masking -> Dense -> LSTM (which keeps it), Add."""
    L = K.layers
    x = K.Input(shape=(STEPS, 3), name="x")
    m = L.Masking(0.0, name="masking")(x)
    a = L.Conv1D(4, 3, padding="same", activation="tanh", name="conv")(m)
    a = L.LSTM(3, name="lstm_after_conv")(a)
    b = L.Dense(4, name="dense_in")(m)
    b = L.LSTM(3, name="lstm_masked")(b)
    y = L.Add(name="add")([a, b])
    return K.Model(x, y, name="masked_conv")


def m_float_token_input(K: Any) -> Any:
    """Sequential built with ``model.build((None, T))`` (no Input: a float32 input of token ids, which
    Embedding casts), a small vocabulary: Embedding(mask_zero) -> GRU -> Dense."""
    L = K.layers
    model = K.Sequential(
        [
            L.Embedding(6, 4, mask_zero=True, name="embedding"),
            L.GRU(3, name="gru"),
            L.Dense(1, name="dense"),
        ],
        name="float_token_input",
    )
    model.build((None, STEPS))
    return model


MODELS: Dict[str, Callable[[Any], Any]] = {
    "embed_bilstm": m_embed_bilstm,
    "lstm_hard_td": m_lstm_hard_td,
    "masking_gru_rnn": m_masking_gru_rnn,
    "conv_norm_lstm": m_conv_norm_lstm,
    "conv_shapes_rnn": m_conv_shapes_rnn,
    "merge_graph": m_merge_graph,
    "shapes_dropouts": m_shapes_dropouts,
    "seq2seq": m_seq2seq,
    "input_shape_stack": m_input_shape_stack,
    "attention": m_attention,
    "bidir_states": m_bidir_states,
    "td_embed_stack": m_td_embed_stack,
    "autoencoder": m_autoencoder,
    "masked_conv": m_masked_conv,
    "float_token_input": m_float_token_input,
}
#: models whose float input holds token ids (an Embedding reads it)
FLOAT_TOKENS = {"float_token_input"}
#: models whose first layer after an input is Masking: their float inputs get interior all-zero steps too
HOLES = {"lstm_hard_td", "masking_gru_rnn", "shapes_dropouts", "bidir_states", "autoencoder", "masked_conv"}


# ------------------------------------------------------------------------------------------------
# Data


def _rng(model_id: str, salt: str) -> Any:
    import numpy as np

    return np.random.RandomState(zlib.crc32(f"{model_id}|{salt}".encode()) & 0x7FFFFFFF)


def _lengths(rng: Any) -> Any:
    import numpy as np

    lengths = rng.randint(2, STEPS, size=BATCH).astype(np.int32)  # every row but the first is padded
    lengths[0] = STEPS
    return lengths


def make_inputs(model_id: str, model: Any) -> List[Tuple[str, Any, Any, bool]]:
    """``[(name, array, lengths, holes)]`` for each model input, in order: a right-padded batch."""
    import numpy as np

    out = []
    for k, t in enumerate(model.inputs):
        rng = _rng(model_id, f"input{k}")
        lengths = _lengths(rng)
        shape = (BATCH,) + tuple(STEPS if d is None else int(d) for d in t.shape[1:])
        name = _tensor_name(t)
        dtype = str(t.dtype.name if hasattr(t.dtype, "name") else t.dtype)
        if "int" in dtype or model_id in FLOAT_TOKENS:
            vocab = _vocab_of(model, name)
            x = rng.randint(1, vocab, size=shape).astype(np.int32 if "int" in dtype else np.float32)
            for b, n in enumerate(lengths):
                x[b, n:] = 0
            out.append((name, x, lengths, False))
            continue
        x = rng.normal(0.0, 1.0, size=shape).astype(np.float32)
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        holes = model_id in HOLES
        if holes:  # interior all-zero steps in rows 1 and 2 (Masking masks them, the sequence goes on)
            lengths[2] = max(int(lengths[2]), 4)
            x[2, lengths[2] :] = 0.0
            for b in (0, 2):  # row 0 (full) and row 2 (padded) get one interior all-zero step
                x[b, int(rng.randint(1, lengths[b] - 1))] = 0.0
        out.append((name, x, lengths, holes))
    return out


def _tensor_name(t: Any) -> str:
    name = getattr(t, "name", "")
    return str(name).split(":")[0]


def _vocab_of(model: Any, input_name: str) -> int:
    """The input_dim of the Embedding reading ``input_name`` (the smallest one when unsure)."""
    dims = [int(layer.input_dim) for layer in _all_layers(model) if type(layer).__name__ == "Embedding"]
    return min(dims)


def _all_layers(model: Any) -> List[Any]:
    """Every layer, nested models' and wrappers' inner layers included (depth first)."""
    out: List[Any] = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
        for attr in ("layer", "forward_layer", "backward_layer"):
            inner = getattr(layer, attr, None)
            if inner is not None and inner is not layer and hasattr(inner, "get_weights"):
                out.append(inner)
    return out


def randomise_weights(model_id: str, model: Any) -> None:
    """Random non-trivial weights for every variable of ``model`` (moving statistics included)."""
    import numpy as np

    rng = _rng(model_id, "weights")
    new = []
    for v in model.weights:
        path = str(getattr(v, "path", None) or v.name)
        shape = tuple(int(d) for d in v.shape)
        if "moving_variance" in path:
            a = rng.uniform(0.5, 2.0, size=shape)
        elif "gamma" in path:
            a = rng.uniform(0.5, 1.5, size=shape)
        elif "embeddings" in path:
            a = rng.uniform(-1.0, 1.0, size=shape)
        elif "seed_generator" in path or "int" in str(getattr(v.dtype, "name", v.dtype)):
            a = np.asarray(v.numpy())
        else:
            a = rng.uniform(-0.6, 0.6, size=shape)
        new.append(np.asarray(a, dtype=np.asarray(v.numpy()).dtype))
    for v, a in zip(model.weights, new):
        v.assign(a)


# ------------------------------------------------------------------------------------------------
# Running in the real Keras


def _layer_calls(model: Any) -> Dict[str, List[Any]]:
    """``{layer name: [node, ...]}`` for the nodes of ``model``'s own graph, each layer's in call order."""
    by_layer: Dict[str, List[Tuple[int, Any]]] = {}
    graph = getattr(model, "_functional", None) or model  # Keras 3's Sequential keeps its graph there
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            layer = getattr(node, "operation", None) or getattr(node, "layer", None)
            if type(layer).__name__ == "InputLayer":
                continue
            by_layer.setdefault(layer.name, []).append((layer._inbound_nodes.index(node), node))
    return {name: [n for _, n in sorted(pairs, key=lambda p: p[0])] for name, pairs in by_layer.items()}


def _flat(x: Any) -> List[Any]:
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in _flat(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flat(item)]
    return [x]


def _renumber_shared_ids(data: bytes) -> bytes:
    """``config.json`` with every ``shared_object_id`` (a Python ``id()`` in tf_keras) replaced by its
    order of first appearance (sharing is kept: equal ids stay equal)."""
    import re

    ids: Dict[str, str] = {}

    def sub(m: Any) -> str:
        return f'"shared_object_id": {ids.setdefault(m.group(1), str(len(ids) + 1))}'

    return re.sub(r'"shared_object_id": (\d+)', sub, data.decode()).encode()


def _normalise_keras_zip(path: Path) -> None:
    """Rewrite a ``.keras`` zip with fixed member timestamps and a fixed ``date_saved`` (byte-stable)."""
    with zipfile.ZipFile(path) as zf:
        members = [(info.filename, zf.read(info.filename)) for info in zf.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            if name == "metadata.json":
                meta = json.loads(data)
                if "date_saved" in meta:
                    meta["date_saved"] = "1980-01-01@00:00:00"
                data = json.dumps(meta).encode()
            elif name == "config.json":  # tf_keras writes id(obj) as shared_object_id: renumber in order
                data = _renumber_shared_ids(data)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compresslevel=9)
    path.write_bytes(buf.getvalue())


def run_model(model_id: str, flavour: str, K: Any, tf: Any, out_dir: Path) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Build, randomise, save (both formats), predict, reload; returns ``(index entry, arrays)``."""
    import numpy as np

    model = MODELS[model_id](K)
    randomise_weights(model_id, model)
    inputs = make_inputs(model_id, model)
    xs = [tf.constant(x) for _, x, _, _ in inputs]
    feed = xs if len(xs) > 1 else xs[0]
    preds = [np.asarray(p) for p in _flat(model(feed, training=False))]

    calls = _layer_calls(model)
    keys: List[str] = []
    tensors: List[Any] = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        nodes = calls.get(layer.name, [])
        for k, node in enumerate(nodes):
            key = layer.name if len(nodes) == 1 else f"{layer.name}@{k}"
            for j, t in enumerate(_flat(node.output_tensors)):
                keys.append(f"{key}/{j}")
                tensors.append(t)
    probe = K.Model(model.inputs, tensors)
    layer_vals = [np.asarray(v) for v in _flat(probe(feed, training=False))]

    arrays: Dict[str, Any] = {}
    entry_inputs = []
    for k, (name, x, lengths, holes) in enumerate(inputs):
        arrays[f"{model_id}/in{k}"] = x
        arrays[f"{model_id}/lengths{k}"] = lengths.astype(np.int32)
        entry_inputs.append(
            {
                "name": name,
                "key": f"{model_id}/in{k}",
                "dtype": str(x.dtype),
                "shape": list(x.shape),
                "lengths": f"{model_id}/lengths{k}",
                "holes": holes,
            }
        )
    out_keys = []
    for k, p in enumerate(preds):
        arrays[f"{model_id}/out{k}"] = p.astype(np.float32)
        out_keys.append(f"{model_id}/out{k}")
    layer_outputs: Dict[str, List[str]] = {}
    for key, v in zip(keys, layer_vals):
        npz_key = f"{model_id}/layer/{key}"
        arrays[npz_key] = v.astype(np.float32)
        layer_outputs.setdefault(key.rsplit("/", 1)[0], []).append(npz_key)

    sub = out_dir / flavour
    sub.mkdir(parents=True, exist_ok=True)
    files = {"keras": f"{flavour}/{model_id}.keras", "h5": f"{flavour}/{model_id}.h5"}
    reload_diff: Dict[str, float] = {}
    unloadable: Dict[str, str] = {}
    for fmt, rel in files.items():
        path = out_dir / rel
        if path.exists():
            path.unlink()
        model.save(str(path))
        if fmt == "keras":
            _normalise_keras_zip(path)
        try:
            again = K.models.load_model(str(path), compile=False)
        except Exception as exc:  # Keras 3's .h5 of a masked functional graph: its mask ops saved as layers
            unloadable[fmt] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            print(f"[{flavour}] {model_id}: Keras cannot reload its own {fmt} file (kept): {unloadable[fmt]}")
            continue
        got = [np.asarray(p) for p in _flat(again(feed, training=False))]
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(got, preds))
        if len(got) != len(preds) or diff > 1e-6:
            raise RuntimeError(f"{model_id}: {fmt} file reloaded in Keras predicts differently (max {diff})")
        reload_diff[fmt] = diff

    entry = {
        "id": model_id,
        "description": (MODELS[model_id].__doc__ or "").strip().replace("\n    ", " "),
        "kind": "sequential" if type(model).__name__ == "Sequential" else "functional",
        "files": files,
        "keras_cannot_reload": unloadable,
        "inputs": entry_inputs,
        "outputs": out_keys,
        "layer_outputs": layer_outputs,
        "layers": [
            {"name": layer.name, "class": type(layer).__name__, "calls": len(calls.get(layer.name, []))}
            for layer in model.layers
            if type(layer).__name__ != "InputLayer"
        ],
        "classes": sorted({type(layer).__name__ for layer in _all_layers(model)} | {"InputLayer"}),
        "reload_max_abs_diff": reload_diff,
    }
    return entry, arrays


def generate(flavour: str, out_dir: Path, only: Optional[List[str]] = None) -> None:
    """Inside the TF golden venv: build every model of ``flavour``, write the files and the index."""
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(TOOLS))
    from golden_common import write_json, write_npz

    tf.config.set_visible_devices([], "GPU")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.random.set_seed(0)
    np.random.seed(0)
    versions: Dict[str, str] = {"numpy": np.__version__, "python": sys.version.split()[0], "tensorflow": tf.__version__}
    if flavour == "tf_keras":
        import tf_keras

        K = tf.keras
        if not K.layers.LSTM.__module__.startswith("tf_keras"):
            raise RuntimeError(f"expected tf_keras's LSTM with TF_USE_LEGACY_KERAS=1, got {K.layers.LSTM.__module__}")
        versions["tf_keras"] = tf_keras.__version__
    else:
        import keras as K

        if not K.__version__.startswith("3."):
            raise RuntimeError(f"expected Keras 3, got {K.__version__}")
        K.utils.set_random_seed(0)
        versions.update(keras=K.__version__, keras_backend=K.backend.backend())
    t0 = time.time()
    entries = []
    arrays: Dict[str, Any] = {}
    for model_id in MODELS:
        if only and model_id not in only:
            continue
        entry, arr = run_model(model_id, flavour, K, tf, out_dir)
        entries.append(entry)
        arrays.update(arr)
        print(f"[{flavour}] {model_id}: {len(entry['layers'])} layers, {time.time() - t0:.1f}s", flush=True)
    covered: Dict[str, List[str]] = {c: [] for c in CATALOGUE}
    for e in entries:
        for c in e["classes"]:
            covered.setdefault(c, []).append(e["id"])
    missing = [c for c in CATALOGUE if not covered[c]]
    if missing and not only:
        raise RuntimeError(f"[{flavour}] catalogue classes no golden model covers: {missing}")
    write_npz(str(out_dir / f"{flavour}.npz"), arrays)
    write_json(
        str(out_dir / f"{flavour}.json"),
        {
            "format": FORMAT_VERSION,
            "flavour": flavour,
            "keras_version": 2 if flavour == "tf_keras" else 3,
            "generator": "tools/golden_models.py",
            "versions": versions,
            "settings": {k: v for k, v in sorted({**COMMON_ENV, **FLAVOURS[flavour]}.items()) if k != "PYTHONWARNINGS"},
            "models": entries,
            "catalogue": list(CATALOGUE),
            "covered": covered,
        },
    )
    print(f"[{flavour}] wrote {len(entries)} models in {time.time() - t0:.1f}s", flush=True)


def drive(flavours: List[str], out_dir: Path, models: Optional[List[str]]) -> int:
    """Run each generation's generator in the TF golden venv (subprocess)."""
    py = ROOT / ".golden-venvs" / "tf" / "bin" / "python"
    if not py.exists():
        print(f"missing {py}: run `make golden-envs`", file=sys.stderr)
        return 2
    for flavour in flavours:
        env = dict(os.environ)
        env.update(COMMON_ENV)
        env.update(FLAVOURS[flavour])
        env.pop("PYTHONPATH", None)
        cmd = [str(py), str(Path(__file__).resolve()), "--flavour", flavour, "--out", str(out_dir)]
        for m in models or []:
            cmd += ["--model", m]
        rc = subprocess.call(cmd, env=env, cwd=str(ROOT))
        if rc != 0:
            print(f"[{flavour}] generator failed with exit code {rc}", file=sys.stderr)
            return rc
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flavour", choices=sorted(FLAVOURS), help="generate one generation in THIS interpreter")
    ap.add_argument("--only", choices=sorted(FLAVOURS), action="append", help="driver: restrict to generation(s)")
    ap.add_argument("--model", choices=sorted(MODELS), action="append", help="only these models (debugging)")
    ap.add_argument("--out", default=str(OUT_DEFAULT), help="output folder (default tests/golden/models)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.flavour:
        generate(args.flavour, out_dir, args.model)
        return 0
    return drive(args.only or list(FLAVOURS), out_dir, args.model)


if __name__ == "__main__":
    sys.exit(main())
