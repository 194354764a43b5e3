"""Public file entry points: :func:`load` and :func:`save` (re-exported as ``lstm_bridge.load/save``).

``load(path)`` picks the format from the file's content (then its suffix) and returns a neutral
:class:`~lstm_bridge.formats.ModelFile`. ``save(obj, path)`` picks the format from the suffix
(``.h5`` tf_keras legacy model, ``.keras`` / ``.weights.h5`` Keras 3, ``.ckpt`` MindSpore, ``.pt``/``.pth``
PyTorch, ``.safetensors``, ``.onnx``) or from ``format=``; ``obj`` may be a ModelFile, a state dict, a
``torch.nn.LSTM``/``GRU``/``RNN`` or one of their cells, or an lstm-bridge front-end module (Keras
``LSTM``/``GRU``/``SimpleRNN``/``Bidirectional`` or a list of them, MindSpore ``LSTM``/``GRU``/``RNN`` and
their cells). Writes are atomic and never overwrite the input file; what a target cannot hold (a Keras
``GRU(reset_after=False)`` in ``.pt``, a ``SimpleRNN(activation="softsign")`` in ``.ckpt``...) is refused
by :mod:`lstm_bridge.targets` with the reason, and nothing is written.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from . import formats as _formats
from .formats import LayerEntry, ModelFile, SaveReport
from .formats.common import as_numpy, check_regular_file
from .formats.model import group_state_dict

__all__ = ["load", "save", "to_model_file"]


def load(path: os.PathLike[str] | str, format: Optional[str] = None) -> ModelFile:
    """Read a model file.

    Args:
        path: the file.
        format: a registry name (see :mod:`lstm_bridge.formats`) to skip detection.

    Raises:
        FileNotFoundError: no such file (or a dangling symlink, said so).
        IsADirectoryError: a directory. PermissionError: an unreadable file.
        FormatError: not a regular file (a FIFO, a device such as ``/dev/zero``, a symlink loop: never
            opened), or unrecognised, truncated, corrupt, encrypted, hostile or unsupported content.
        NotImplementedError: an unknown ``format`` name.
    """
    p = os.fspath(path)
    check_regular_file(p)  # before detection opens anything: a FIFO must not block us
    name = format or _formats.detect_format(p)
    return _formats.get_format(name).load(p)


def save(obj: Any, path: os.PathLike[str] | str, format: Optional[str] = None, **options: Any) -> SaveReport:
    """Write ``obj`` to ``path`` (format from ``format=`` or the suffix); returns the
    :class:`~lstm_bridge.formats.SaveReport` (entries written, entries skipped with the reason).

    ``options`` go to the format's writer (e.g. ``crc=True`` / ``slice_bytes`` for ``.ckpt``,
    ``weights_only=True`` and ``keras_version=2|3`` (the dialect; default: the source's generation) for
    the legacy ``.h5``, ``batch_first=`` / ``lengths=`` / ``layer=`` for ``.onnx``).

    Raises:
        FormatError: (a ValueError) the target cannot hold the model, as :mod:`lstm_bridge.targets`
            decides for every writer (e.g. a hard_sigmoid Keras LSTM into ``.ckpt``/``.pt``/``.safetensors``,
            Keras-2 hard_sigmoid into Keras 3, a Keras mask into ONNX without ``lengths=True``); nothing is
            written; or ``path`` is the file the model was read from.
        NotImplementedError: an unknown format or suffix.
        TypeError: an object of a kind this function does not know.
    """
    p = os.fspath(path)
    name = format or _formats.format_for_suffix(p)
    fmt = _formats.get_format(name)
    if name == "onnx":
        return fmt.save(obj, p, **options)
    return fmt.save(to_model_file(obj), p, **options)


# --- objects -> ModelFile --------------------------------------------------------------------------


def _state_entries(state: Mapping[str, Any], where: str) -> list:
    tensors: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state.items():
        if not isinstance(k, str):
            raise TypeError(f"{where}: state dict keys must be strings; received {k!r}")
        tensors[k] = as_numpy(v, k)
    return group_state_dict(tensors)


def _keras_entry(layer: Any) -> LayerEntry:
    cls = type(layer).__name__
    cfg = dict(layer.get_config())
    arrays = [np.asarray(a) for a in layer.get_weights()]
    if not arrays:
        raise ValueError(f"Keras layer {cfg.get('name', cls)!r} is not built (no weights); call it once first")
    if cls.endswith("Cell"):
        kind = {"GRUCell": "GRUCell", "SimpleRNNCell": "RNNCell"}.get(cls, "LSTMCell")
        cfg.setdefault("reset_after", bool(getattr(layer, "reset_after", True)))
    else:
        kind = cls if cls in ("Bidirectional", "GRU", "SimpleRNN") else "LSTM"
    if kind == "Bidirectional":
        half = len(arrays) // 2
        keys = [f"forward/{k}" for k in ("kernel", "recurrent_kernel", "bias")[:half]]
        keys += [f"backward/{k}" for k in ("kernel", "recurrent_kernel", "bias")[:half]]
    else:
        keys = ["kernel", "recurrent_kernel", "bias"][: len(arrays)]
    return LayerEntry(
        name=str(cfg.get("name", cls.lower())), kind=kind, config=cfg, weights=OrderedDict(zip(keys, arrays))
    )


def _is_keras_layer(obj: Any) -> bool:
    return (
        callable(getattr(obj, "get_weights", None))
        and callable(getattr(obj, "get_config", None))
        and isinstance(obj, torch.nn.Module)
    )


def to_model_file(obj: Any) -> ModelFile:
    """A :class:`ModelFile` for ``obj`` (see :func:`save` for the accepted kinds).

    Keras front-end layers give a ``keras`` model file whose activation names are our resolved ones
    (``"hard_sigmoid"`` = Keras-2 clip, ``"hard_sigmoid_keras3"`` = Keras-3 relu6), so they keep their
    meaning in either Keras generation.
    """
    if isinstance(obj, ModelFile):
        return obj
    if isinstance(obj, Mapping):
        return ModelFile(framework="torch", version=torch.__version__, layers=_state_entries(obj, "state dict"))
    if _is_keras_layer(obj) or (isinstance(obj, Sequence) and obj and all(_is_keras_layer(o) for o in obj)):
        items = list(obj) if isinstance(obj, Sequence) else [obj]
        # "2.21.0": names resolve like tf_keras, and our "hard_sigmoid_keras3" keeps its own meaning
        return ModelFile(
            framework="keras",
            version="2.21.0",
            layers=[_keras_entry(o) for o in items],
            meta={"source": "lstm_bridge.keras"},
        )
    if isinstance(obj, (torch.nn.RNNBase, torch.nn.RNNCellBase)):  # torch.nn.LSTM / GRU / RNN and cells
        if getattr(obj, "proj_size", 0):
            raise ValueError("torch.nn.LSTM with proj_size > 0 has no Keras/MindSpore equivalent")
        entries = _state_entries(obj.state_dict(), f"torch.nn.{type(obj).__name__}")
        relu = str(getattr(obj, "mode", "")) == "RNN_RELU" or getattr(obj, "nonlinearity", "tanh") == "relu"
        for e in entries:
            e.config["batch_first"] = bool(getattr(obj, "batch_first", False))
            if e.kind in ("RNN", "RNNCell"):  # the module knows its nonlinearity (a state dict would not)
                e.config["nonlinearity"] = "relu" if relu else "tanh"
        return ModelFile(framework="torch", version=torch.__version__, layers=entries)
    if isinstance(obj, torch.nn.Module) and hasattr(obj, "hidden_size") and hasattr(obj, "has_bias"):
        # lstm_bridge.mindspore.LSTM / GRU / RNN and their cells: MindSpore parameter names
        entries = _state_entries(obj.state_dict(), type(obj).__name__)
        for e in entries:
            if hasattr(obj, "batch_first"):
                e.config["batch_first"] = bool(obj.batch_first)
            if e.kind in ("RNN", "RNNCell"):
                e.config["nonlinearity"] = str(getattr(obj, "nonlinearity", "tanh"))
        return ModelFile(framework="mindspore", version=None, layers=entries)
    raise TypeError(
        f"cannot save a {type(obj).__name__}; expected a ModelFile, a state dict, a torch.nn.LSTM / GRU / RNN, "
        "or an lstm_bridge Keras/MindSpore layer"
    )
