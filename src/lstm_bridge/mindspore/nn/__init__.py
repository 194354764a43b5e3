"""``mindspore.nn`` on PyTorch: the subset model-zoo recurrent networks use (docs/porting-mindspore.md).

``import lstm_bridge.mindspore.nn as nn`` in place of ``import mindspore.nn as nn``. A name outside the subset
raises :class:`~lstm_bridge.mindspore.ops.UnsupportedError` (an ``AttributeError``) naming it.
"""

from typing import Any

from .activation import (
    ELU,
    GELU,
    FastGelu,
    HSigmoid,
    HSwish,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softsign,
    Tanh,
    get_activation,
)
from .basic import Dense, Dropout, Embedding, Flatten, Identity, Pad
from .cell import Cell, CellList, SequentialCell
from .conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SoftmaxCrossEntropyWithLogits
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "AvgPool1d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Cell",
    "CellList",
    "Conv1d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "ELU",
    "Embedding",
    "FastGelu",
    "Flatten",
    "GELU",
    "GRU",
    "GRUCell",
    "HSigmoid",
    "HSwish",
    "Identity",
    "LSTM",
    "L1Loss",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "LogSigmoid",
    "LogSoftmax",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "NLLLoss",
    "PReLU",
    "Pad",
    "RNN",
    "RNNCell",
    "ReLU",
    "ReLU6",
    "SequentialCell",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropyWithLogits",
    "Softsign",
    "Tanh",
    "get_activation",
]


def __getattr__(name: str) -> Any:
    from ..ops._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore.nn", name, __all__)
