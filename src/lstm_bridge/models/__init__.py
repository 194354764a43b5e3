"""Whole Keras models on PyTorch: :func:`load_model` and the layer catalogue :mod:`lstm_bridge.models.layers`.

``load_model(path)`` reads a Keras full-model file (``.keras`` from Keras 3 or tf_keras; legacy ``.h5`` from
Keras 2.x / tf_keras / Keras 3) with the safe readers of :mod:`lstm_bridge.formats` (bounded reads, no
pickle, no code) and returns a ``torch.nn.Module`` in eval mode whose ``forward(*inputs)`` takes the Keras
inputs in order and returns what Keras returns (one tensor, or a list for several outputs), with each
layer's numerics as its Keras generation defines them and masks propagated as Keras's ``compute_mask`` does.
``train()`` makes the Dropout-family layers act as Keras does with ``training=True``.

The catalogue contract (every class in :mod:`lstm_bridge.models.layers`; ``lstm-bridge port`` generates
source against it, so it stays stable):

(a) the constructor takes the layer's Keras config values as keyword arguments, plus ``keras_version`` (2:
    tf_keras / Keras 2, 3: Keras 3 - what ambiguous names such as ``"hard_sigmoid"`` mean) and, for layers
    whose weight shapes depend on the input, the input width (``Dense(units=4, in_features=8,
    activation="relu", use_bias=True, keras_version=3)``, ``Conv1D(..., in_channels=)``,
    ``BatchNormalization(..., num_features=)``, ``LayerNormalization(..., normalized_shape=)``; left out,
    the parameters are created by ``load_keras_weights``). Nested layers (``TimeDistributed(layer=...)``,
    ``Bidirectional(layer=..., backward_layer=...)``) take a module or the nested ``{"class_name",
    "config"}`` dict of a Keras file. Config keys that do not change the computation (initializers,
    regularizers, constraints, shapes) are accepted and ignored; unknown keys are refused.
(b) ``state_dict()`` holds torch-native names and layouts: Dense ``weight (out, in)``, ``bias``; Embedding
    ``weight (input_dim, output_dim)``; Conv1D ``weight (filters, in / groups, k)``, ``bias``;
    BatchNormalization ``weight``, ``bias``, ``running_mean``, ``running_var``; LayerNormalization
    ``weight``, ``bias``; recurrent layers keep :mod:`lstm_bridge.keras`'s names (``cell.kernel``, ...,
    ``forward_layer.cell.kernel``, ...); TimeDistributed nests its layer's under ``layer.``.
(c) ``load_keras_weights(arrays)`` takes the NumPy arrays in Keras's ``get_weights()`` order and layouts.
(d) ``forward(*inputs, mask=None, training=None)`` computes what Keras's ``call`` computes (merge layers
    take their inputs as separate arguments and ``mask`` as a list; recurrent layers also take
    ``initial_state=``); ``training=None`` follows the module's ``train()`` / ``eval()`` mode.
    ``compute_mask(inputs, mask)`` returns the output mask as Keras's ``compute_mask`` does (a boolean
    ``(batch, time)`` tensor, None, or a list for several outputs).

Layers outside the catalogue (``Lambda``, custom classes, and any other class) are refused with
:class:`~lstm_bridge.models.layers.UnsupportedLayerError` naming the layer and its class.
"""

from __future__ import annotations

from typing import Any

from . import layers
from .layers import CATALOGUE, UnsupportedLayerError

__all__ = ["load_model", "export_onnx", "layers", "CATALOGUE", "UnsupportedLayerError", "KerasModel"]


def __getattr__(name: str) -> Any:
    if name == "export_onnx":  # whole models to ONNX (models/onnx_export.py)
        from .onnx_export import export_onnx

        return export_onnx
    if name in ("load_model", "KerasModel"):
        from . import graph, load

        return load.load_model if name == "load_model" else graph.KerasModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
