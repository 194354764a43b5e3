"""The Keras LSTM API (``tf.keras.layers.LSTM``, ``LSTMCell``, ``Bidirectional``) on the lstm-bridge engine.

``lstm_bridge.keras.v1.LSTM`` is the TF 1.15 signature (hard_sigmoid gates, implementation 1).
"""
from . import constraints, initializers, regularizers, v1
from .bidirectional import Bidirectional
from .cell import LSTMCell
from .layer import LSTM

__all__ = ["LSTM", "LSTMCell", "Bidirectional", "v1", "constraints", "initializers", "regularizers"]
