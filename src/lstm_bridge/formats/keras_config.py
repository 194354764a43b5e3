"""Reading Keras model configs: layer entries and their names, the kind of a layer (``LSTM`` also for
``CuDNNLSTM``, ``Bidirectional`` only around an LSTM), the weight keys of a layer, a weights-only layer's
kind from its arrays, and Keras 3's ``.weights.h5`` keys (``lstm``, ``lstm_1``, ...).

Used by the Keras readers (:mod:`.keras_h5`, :mod:`.keras_weights`, :mod:`.keras_zip`) and the
planner (:mod:`.keras_plan`).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

import numpy as np

__all__ = [
    "TK_VERSION",
    "K3_VERSION",
    "WEIGHTLESS",
    "snake_case",
    "class_counter_keys",
    "weight_keys",
    "layer_kind",
    "layer_configs",
    "layer_name",
    "infer_kind",
]

#: what our writers put in ``keras_version``
TK_VERSION = "2.21.0"
K3_VERSION = "3.15.1"

# classes whose layers own no weights in any Keras (matching order-based loading skips them)
WEIGHTLESS = {
    "InputLayer",
    "NotEqual",
    "Dropout",
    "Masking",
    "Activation",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "Lambda",
    "SpatialDropout1D",
    "GaussianNoise",
    "Concatenate",
    "Add",
    "Multiply",
    "Average",
    "TFOpLambda",
    "SlicingOpLambda",
}
_LSTM_KINDS = {"LSTM": "LSTM", "CuDNNLSTM": "LSTM", "Bidirectional": "Bidirectional", "CuDNNGRU": "GRU"}
#: the recurrent layer classes a Bidirectional may wrap and still be the entry kind ``Bidirectional``
RECURRENT_CLASSES = ("LSTM", "CuDNNLSTM", "GRU", "CuDNNGRU", "SimpleRNN")
#: entry kinds whose arrays are ``kernel, recurrent_kernel[, bias]``
_RECURRENT_KINDS = ("LSTM", "GRU", "SimpleRNN")


def snake_case(name: str) -> str:
    """Keras 3's ``to_snake_case`` (how ``.weights.h5`` keys are derived from class names)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def class_counter_keys(class_names: List[str]) -> List[str]:
    """The ``.weights.h5`` keys of layers of these classes, in model order (``lstm``, ``lstm_1``, ...)."""
    seen: Dict[str, int] = {}
    out = []
    for cn in class_names:
        base = snake_case(cn)
        n = seen.get(base, 0)
        out.append(base if n == 0 else f"{base}_{n}")
        seen[base] = n + 1
    return out


def weight_keys(kind: str, n: int, names: Optional[List[str]] = None) -> List[str]:
    """Neutral weight names for a Keras layer's arrays (Keras ``get_weights`` order)."""
    base = ["kernel", "recurrent_kernel", "bias"]
    if kind in _RECURRENT_KINDS and n in (2, 3):
        return base[:n]
    if kind == "Bidirectional" and n in (4, 6):
        half = n // 2
        return [f"forward/{k}" for k in base[:half]] + [f"backward/{k}" for k in base[:half]]
    if kind == "Dense" and n in (1, 2):
        return ["kernel", "bias"][:n]
    if kind == "Embedding" and n == 1:
        return ["embeddings"]
    keys: List[str] = []
    for i in range(n):
        leaf = (names[i] if names and i < len(names) else str(i)).rsplit("/", 1)[-1].split(":", 1)[0]
        keys.append(leaf if leaf not in keys else f"{i}:{leaf}")
    return keys


def layer_kind(class_name: str, config: Optional[Dict[str, Any]] = None) -> str:
    """``LSTM`` (also for ``CuDNNLSTM``), ``GRU`` (also for ``CuDNNGRU``), ``Bidirectional`` (around an LSTM,
    GRU or SimpleRNN; around another layer ``Bidirectional(<class>)``) or the class name itself."""
    if class_name == "Bidirectional" and isinstance(config, dict):
        inner = config.get("layer")
        inner_cls = inner.get("class_name") if isinstance(inner, dict) else None
        if inner_cls and inner_cls not in RECURRENT_CLASSES:
            return f"Bidirectional({inner_cls})"
    return _LSTM_KINDS.get(class_name, class_name)


def layer_configs(model_config: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The layer entries (``{"class_name", "config", "name", ...}``) of a Keras model config."""
    if not model_config:
        return []
    cfg = model_config.get("config", {})
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg
    if not isinstance(layers, list):
        return []
    out = []
    for l in layers:
        if isinstance(l, dict):
            if not isinstance(l.get("config", {}), dict):  # hostile or foreign: keep the layer, drop the config
                l = dict(l, config={})
            out.append(l)
    return out


def layer_name(entry: Dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name", ""))


def _recurrent_gates(shapes: List[Any]) -> Optional[int]:
    """G of ``kernel (I, G·u), recurrent_kernel (u, G·u)`` shapes (4 LSTM, 3 GRU, 1 SimpleRNN), or None."""
    if len(shapes) < 2 or len(shapes[0]) != 2 or len(shapes[1]) != 2 or shapes[1][0] == 0:
        return None
    u, gu = shapes[1]
    if gu % u or gu // u not in (1, 3, 4) or shapes[0][1] != gu:
        return None
    return gu // u


def infer_kind(arrays: List[np.ndarray], names: List[str]) -> str:
    """A weights-only layer's kind, from its weight names and shapes (``LSTM``, ``GRU``, ``SimpleRNN``,
    ``Bidirectional`` of them, ``Embedding``, ``Dense``, else ``Unknown``)."""
    joined = " ".join(names)
    shapes = [a.shape for a in arrays]
    if (
        len(arrays) in (4, 6)
        and "forward" in joined
        and "backward" in joined
        and _recurrent_gates(shapes[: len(shapes) // 2]) is not None
    ):
        return "Bidirectional"
    low = joined.lower()
    g = _recurrent_gates(shapes) if len(arrays) in (2, 3) else None
    if g == 3 and ("recurrent_kernel" in joined or not names):
        return "GRU"
    if g == 1 and ("recurrent_kernel" in joined or "simple_rnn" in low):
        return "SimpleRNN"
    if len(arrays) == 9 and "gru" in low:
        return "GRU"
    if (
        len(arrays) in (2, 3)
        and len(shapes[1]) == 2
        and shapes[1][1] == 4 * shapes[1][0]
        and ("recurrent_kernel" in joined or not names)
        and len(shapes[0]) == 2
        and shapes[0][1] == shapes[1][1]
    ):
        return "LSTM"
    if len(arrays) == 12 and "lstm" in joined.lower():
        return "LSTM"
    if len(arrays) == 1 and "embeddings" in joined:
        return "Embedding"
    if len(arrays) in (1, 2) and "kernel" in joined and len(shapes[0]) == 2:
        return "Dense"
    return "Unknown"
