"""The MindSpore LSTM API (``mindspore.nn.LSTM``, ``mindspore.nn.LSTMCell``, 2.x) on the lstm-bridge engine."""
from .cell import LSTMCell
from .lstm import LSTM

__all__ = ["LSTM", "LSTMCell"]
