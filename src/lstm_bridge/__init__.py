"""lstm-bridge: the Keras and MindSpore LSTM layers, exactly, on one fast PyTorch engine.

Front ends: :mod:`lstm_bridge.keras` (``LSTM``, ``LSTMCell``, ``Bidirectional``, ``v1.LSTM``) and
:mod:`lstm_bridge.mindspore` (``LSTM``, ``LSTMCell``). Engine: :mod:`lstm_bridge.engine`.
Files: :func:`load` / :func:`save` (format chosen from the file). Conversion: :mod:`lstm_bridge.convert`.
"""
from .io import load, save

__version__ = "0.1.0"

__all__ = ["__version__", "load", "save"]
