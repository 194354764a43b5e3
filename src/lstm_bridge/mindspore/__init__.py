"""The MindSpore API on the lstm-bridge engine and PyTorch.

* ``LSTM``, ``GRU``, ``RNN`` and their cells (``mindspore.nn.LSTM``/``GRU``/``RNN``, 2.x) as torch Modules.
* A network's source: ``import lstm_bridge.mindspore as ms``, ``import lstm_bridge.mindspore.nn as nn``,
  ``from lstm_bridge.mindspore import ops, Tensor, Parameter`` in place of MindSpore's imports
  (docs/porting-mindspore.md): ``nn`` (Cells), ``ops`` (primitives and functions), ``common`` (dtypes,
  ``Tensor``, ``Parameter``, initialisers), ``context``, and the checkpoint verbs ``load_checkpoint``,
  ``load_param_into_net``, ``save_checkpoint``.
"""

from typing import Any

from . import common
from .cell import LSTMCell
from .common.dtype import (
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)
from .common.tensor import Parameter, ParameterTuple, Tensor
from .context import GRAPH_MODE, PYNATIVE_MODE, get_context, jit, set_context, set_seed
from .gru import GRU, GRUCell
from .lstm import LSTM
from .rnn import RNN, RNNCell

dtype = common.dtype

__all__ = [
    "GRAPH_MODE",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "PYNATIVE_MODE",
    "Parameter",
    "ParameterTuple",
    "RNN",
    "RNNCell",
    "Tensor",
    "bfloat16",
    "bool_",
    "common",
    "context",
    "dtype",
    "float16",
    "float32",
    "float64",
    "get_context",
    "int16",
    "int32",
    "int64",
    "int8",
    "jit",
    "load_checkpoint",
    "load_param_into_net",
    "nn",
    "numpy",
    "ops",
    "save_checkpoint",
    "set_context",
    "set_seed",
    "uint8",
]

_LAZY_MODULES = ("nn", "ops", "context", "checkpoint", "numpy")
_CHECKPOINT_VERBS = ("load_checkpoint", "load_param_into_net", "save_checkpoint")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _CHECKPOINT_VERBS:
        return getattr(importlib.import_module(".checkpoint", __name__), name)
    from .ops._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore", name, __all__)
