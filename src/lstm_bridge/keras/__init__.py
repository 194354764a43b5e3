"""The Keras recurrent API (``tf.keras.layers.LSTM``, ``GRU``, ``SimpleRNN``, their cells, ``Bidirectional``
of each) on the lstm-bridge engine.

``lstm_bridge.keras.v1.LSTM`` / ``v1.GRU`` are the TF 1.15 signatures (hard_sigmoid gates, implementation 1;
GRU ``reset_after=False``). ``Recurrent`` / ``RecurrentCell`` are the generic layer and cell over the cell
kind that the public classes subclass.
Cell / runner / wrapper: ``LSTMCell`` is one step; ``LSTM`` runs it over time through the public runner
``prepare`` -> ``run`` -> ``finish``; ``Bidirectional`` drives two ``LSTM`` layers through that runner.
``options`` declares every constructor argument once; ``outputs`` holds Keras's output rules
(return_sequences, go_backwards order, state order, merge modes), which the converter's chain runner
also uses.
"""

from . import constraints, initializers, options, outputs, regularizers, v1
from .bidirectional import Bidirectional
from .cell import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from .layer import GRU, LSTM, Recurrent, SimpleRNN

__all__ = [
    "LSTM",
    "LSTMCell",
    "GRU",
    "GRUCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "Bidirectional",
    "Recurrent",
    "RecurrentCell",
    "v1",
    "constraints",
    "initializers",
    "options",
    "outputs",
    "regularizers",
]
