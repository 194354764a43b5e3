"""``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their cells as Cells: the front end's classes
(:mod:`lstm_bridge.mindspore.lstm`, ``gru``, ``rnn``, ``cell``) with Cell behaviour - MindSpore parameter
names (``weight_ih_l0`` ..., prefixed by the holder's attribute path), ``construct``, ``trainable_params``
(parameters with ``requires_grad``) - so a network's ``self.encoder = nn.LSTM(...)`` loads the checkpoint
entries ``encoder.weight_ih_l0`` ... Calls and numerics are the front end's (docs/spec/mindspore_lstm.md,
docs/spec/mindspore_gru_rnn.md).
"""

from __future__ import annotations

from typing import Any, List

from .. import cell as _cell, gru as _gru, lstm as _lstm, rnn as _rnn
from ..common.tensor import Parameter
from .cell import Cell


class _RecurrentCell(Cell):
    """Mixin placed before the front-end class: Cell's call path, MindSpore parameters."""

    _plain_inputs = True

    def _named_parameters_to_ms(self) -> None:
        """Finish what ``Cell.__init__`` does (the front end's ``__init__`` ran instead) and make the
        registered parameters MindSpore Parameters named by their keys, in their order."""
        self._auto_prefix = True
        self._cast_type = None
        self._flags = {}
        for key, value in list(self._parameters.items()):
            if value is not None and not isinstance(value, Parameter):
                self._parameters[key] = Parameter(value.detach(), name=key, requires_grad=value.requires_grad)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        # MindSpore 2.10's recurrent Cells under to_float(float16) take their inputs as given and return float32
        # (measured; their float16 internals differ from float32 math by ~6e-4, docs/porting-mindspore.md)
        cast, self._cast_type = self._cast_type, None
        try:
            return Cell.forward(self, *args, **kwargs)
        finally:
            self._cast_type = cast

    def trainable_params(self, recurse: bool = True) -> List[Any]:
        return Cell.trainable_params(self, recurse)

    def set_train(self, mode: bool = True) -> Any:
        return Cell.set_train(self, mode)


class LSTM(_RecurrentCell, _lstm.LSTM):
    """``nn.LSTM(input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, dtype=None)``: ``output, (h_n, c_n) = lstm(x, hx=None, seq_length=None)``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _lstm.LSTM.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any = None, seq_length: Any = None) -> Any:
        return _lstm.LSTM.forward(self, x, hx, seq_length)


class GRU(_RecurrentCell, _gru.GRU):
    """``nn.GRU(...)``: ``output, h_n = gru(x, hx=None, seq_length=None)``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _gru.GRU.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any = None, seq_length: Any = None) -> Any:
        return _gru.GRU.forward(self, x, hx, seq_length)


class RNN(_RecurrentCell, _rnn.RNN):
    """``nn.RNN(..., nonlinearity='tanh')``: ``output, h_n = rnn(x, hx=None, seq_length=None)``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _rnn.RNN.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any = None, seq_length: Any = None) -> Any:
        return _rnn.RNN.forward(self, x, hx, seq_length)


class LSTMCell(_RecurrentCell, _cell.LSTMCell):
    """``nn.LSTMCell(input_size, hidden_size, has_bias=True)``: ``h, c = cell(x, (h, c))``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _cell.LSTMCell.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any) -> Any:
        return _cell.LSTMCell.forward(self, x, hx)


class GRUCell(_RecurrentCell, _gru.GRUCell):
    """``nn.GRUCell(input_size, hidden_size, has_bias=True)``: ``h = cell(x, h)``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _gru.GRUCell.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any) -> Any:
        return _gru.GRUCell.forward(self, x, hx)


class RNNCell(_RecurrentCell, _rnn.RNNCell):
    """``nn.RNNCell(input_size, hidden_size, has_bias=True, nonlinearity='tanh')``: ``h = cell(x, h)``."""

    def __init__(self, *args: Any, **kwargs: Any):
        _rnn.RNNCell.__init__(self, *args, **kwargs)
        self._named_parameters_to_ms()

    def construct(self, x: Any, hx: Any) -> Any:
        return _rnn.RNNCell.forward(self, x, hx)


__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]
