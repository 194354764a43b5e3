"""The MindSpore recurrent API (``mindspore.nn.LSTM``/``GRU``/``RNN`` and their cells, 2.x) on the
lstm-bridge engine."""

from .cell import LSTMCell
from .gru import GRU, GRUCell
from .lstm import LSTM
from .rnn import RNN, RNNCell

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]
