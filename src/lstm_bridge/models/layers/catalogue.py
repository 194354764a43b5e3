"""The layer catalogue: Keras class name -> catalogue module, and :func:`layer_from_config`, which builds
one from a Keras layer entry or refuses it (``UnsupportedLayerError`` naming the layer and its class)."""

from __future__ import annotations

from typing import Any, Dict, Type

import torch

from . import conv, core, dropout, embedding, merge, normalization, recurrent, wrappers

__all__ = ["CATALOGUE", "UnsupportedLayerError", "layer_from_config", "check_builtin"]


class UnsupportedLayerError(ValueError):
    """A Keras layer outside the catalogue (``Lambda``, custom classes, ...): never guessed."""


CATALOGUE: Dict[str, Type[torch.nn.Module]] = {
    "InputLayer": core.InputLayer,
    "Embedding": embedding.Embedding,
    "Masking": embedding.Masking,
    "Dense": core.Dense,
    "Activation": core.Activation,
    "Dropout": dropout.Dropout,
    "SpatialDropout1D": dropout.SpatialDropout1D,
    "GaussianNoise": dropout.GaussianNoise,
    "GaussianDropout": dropout.GaussianDropout,
    "AlphaDropout": dropout.AlphaDropout,
    "Flatten": core.Flatten,
    "Reshape": core.Reshape,
    "Permute": core.Permute,
    "RepeatVector": core.RepeatVector,
    "TimeDistributed": wrappers.TimeDistributed,
    "Bidirectional": recurrent.Bidirectional,
    "LSTM": recurrent.LSTM,
    "GRU": recurrent.GRU,
    "SimpleRNN": recurrent.SimpleRNN,
    "Conv1D": conv.Conv1D,
    "MaxPooling1D": conv.MaxPooling1D,
    "AveragePooling1D": conv.AveragePooling1D,
    "GlobalMaxPooling1D": conv.GlobalMaxPooling1D,
    "GlobalAveragePooling1D": conv.GlobalAveragePooling1D,
    "BatchNormalization": normalization.BatchNormalization,
    "LayerNormalization": normalization.LayerNormalization,
    "ZeroPadding1D": conv.ZeroPadding1D,
    "Cropping1D": conv.Cropping1D,
    "UpSampling1D": conv.UpSampling1D,
    "Concatenate": merge.Concatenate,
    "Add": merge.Add,
    "Subtract": merge.Subtract,
    "Multiply": merge.Multiply,
    "Average": merge.Average,
    "Maximum": merge.Maximum,
    "Minimum": merge.Minimum,
    "Dot": merge.Dot,
}
#: Keras's other names for catalogue classes (Keras 3 / tf_keras aliases)
ALIASES = {
    "Convolution1D": "Conv1D",
    "MaxPool1D": "MaxPooling1D",
    "AvgPool1D": "AveragePooling1D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
}
_BUILTIN_MODULES = ("keras", "tf_keras")


def check_builtin(entry: Dict[str, Any], where: str) -> str:
    """The catalogue class name of a Keras layer entry, or :class:`UnsupportedLayerError`: a class outside
    the catalogue, or a custom (registered, or from a non-Keras module) class that borrows a catalogue name."""
    cls = str(entry.get("class_name", ""))
    cfg = entry.get("config")
    name = entry.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
    module = entry.get("module")
    registered = entry.get("registered_name")
    custom = (isinstance(module, str) and module.split(".")[0] not in _BUILTIN_MODULES) or (
        registered not in (None, cls) and isinstance(registered, str)
    )
    key = ALIASES.get(cls, cls)
    if custom or key not in CATALOGUE:
        what = f"a custom class ({registered or module})" if custom else "not in the catalogue"
        hint = " (Lambda layers hold Python code, which is never run)" if cls == "Lambda" else ""
        raise UnsupportedLayerError(
            f"{where}: layer {name!r} of class {cls!r} is {what}{hint}; expected one of {sorted(CATALOGUE)}"
        )
    return key


def layer_from_config(entry: Dict[str, Any], keras_version: int, where: str = "model") -> torch.nn.Module:
    """The catalogue module for a Keras layer entry ``{"class_name", "config", ...}``."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a layer entry (a JSON object); received {type(entry).__name__}")
    key = check_builtin(entry, where)
    config = dict(entry.get("config") or {})
    cls = CATALOGUE[key]
    dtype = config.get("dtype")
    dtype_name = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else dtype
    if key != "InputLayer" and dtype_name not in (None, "float32"):
        raise UnsupportedLayerError(
            f"{where}: layer {config.get('name')!r} of class {key!r} computes in dtype {dtype_name!r}; the catalogue "
            "computes in float32 only (expected dtype 'float32')"
        )
    try:
        if key in recurrent.RECURRENT_CLASSES:
            return cls.from_config(config, keras_version)  # type: ignore[attr-defined]
        return cls(**config, keras_version=keras_version)
    except TypeError as exc:  # a missing or malformed config value
        raise ValueError(f"{where}: layer {config.get('name')!r} of class {key!r}: bad config ({exc})") from None
