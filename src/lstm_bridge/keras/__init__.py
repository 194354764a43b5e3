"""The Keras LSTM API (``tf.keras.layers.LSTM``, ``LSTMCell``, ``Bidirectional``) on the lstm-bridge engine.

``lstm_bridge.keras.v1.LSTM`` is the TF 1.15 signature (hard_sigmoid gates, implementation 1).
Cell / runner / wrapper: ``LSTMCell`` is one step; ``LSTM`` runs it over time through the public runner
``prepare`` -> ``run`` -> ``finish``; ``Bidirectional`` drives two ``LSTM`` layers through that runner.
``options`` declares every constructor argument once; ``outputs`` holds Keras's output rules
(return_sequences, go_backwards order, state order, merge modes), which the converter's chain runner
also uses.
"""
from . import constraints, initializers, options, outputs, regularizers, v1
from .bidirectional import Bidirectional
from .cell import LSTMCell
from .layer import LSTM

__all__ = ["LSTM", "LSTMCell", "Bidirectional", "v1", "constraints", "initializers", "options", "outputs",
           "regularizers"]
