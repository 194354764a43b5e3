"""lstm-bridge: the Keras and MindSpore recurrent layers, exactly, on one fast PyTorch engine.

Front ends: :mod:`lstm_bridge.keras` (``LSTM``, ``GRU``, ``SimpleRNN``, their cells, ``Bidirectional``,
``v1.LSTM``, ``v1.GRU``) and :mod:`lstm_bridge.mindspore` (``LSTM``, ``GRU``, ``RNN`` and their cells).
Vocabulary: :mod:`lstm_bridge.recurrent`; engine: :mod:`lstm_bridge.engine`. Files: :func:`load` /
:func:`save` (format chosen from the file); what each target can hold: :mod:`lstm_bridge.targets`.
Conversion: :mod:`lstm_bridge.convert`. Whole Keras models: :func:`load_model` (:mod:`lstm_bridge.models`).
Custom operators: ``import lstm_bridge.ops`` registers them (before ``torch.export.load`` of a saved program).

Submodules and :func:`load` / :func:`save` are imported on first use (``import lstm_bridge;
lstm_bridge.keras.LSTM`` works), so ``import lstm_bridge`` itself stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any, List

__version__ = "0.1.0"

__all__ = ["__version__", "load", "save", "load_model"]

# Public submodules reachable as attributes of the package without an explicit import.
_SUBMODULES = (
    "keras",
    "mindspore",
    "engine",
    "recurrent",
    "targets",
    "convert",
    "explain",
    "activations",
    "formats",
    "weights",
    "io",
    "models",
    "cli",
    "bench",
    "demo",
    "ops",
)


def __getattr__(name: str) -> Any:
    if name in ("load", "save"):
        value = getattr(importlib.import_module(".io", __name__), name)
    elif name == "load_model":
        value = importlib.import_module(".models.load", __name__).load_model
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
