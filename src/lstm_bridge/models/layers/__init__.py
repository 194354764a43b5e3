"""The layer catalogue of :mod:`lstm_bridge.models` (see its docstring for the contract), one
``torch.nn.Module`` class per Keras layer class, grouped by family: :mod:`.core`, :mod:`.dropout`,
:mod:`.embedding`, :mod:`.conv`, :mod:`.normalization`, :mod:`.merge`, :mod:`.recurrent` (the
:mod:`lstm_bridge.keras` front end's layers), :mod:`.wrappers`; :mod:`.catalogue` maps Keras class names
to them."""

from .base import KerasLayer, WeightSlot
from .catalogue import CATALOGUE, UnsupportedLayerError, layer_from_config
from .conv import (
    AveragePooling1D,
    Conv1D,
    Cropping1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    UpSampling1D,
    ZeroPadding1D,
)
from .core import Activation, Dense, Flatten, InputLayer, Permute, RepeatVector, Reshape
from .dropout import AlphaDropout, Dropout, GaussianDropout, GaussianNoise, SpatialDropout1D
from .embedding import Embedding, Masking
from .merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from .wrappers import TimeDistributed

__all__ = [
    "InputLayer",
    "Embedding",
    "Masking",
    "Dense",
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "TimeDistributed",
    "Bidirectional",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
    "BatchNormalization",
    "LayerNormalization",
    "ZeroPadding1D",
    "Cropping1D",
    "UpSampling1D",
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Dot",
    "CATALOGUE",
    "KerasLayer",
    "UnsupportedLayerError",
    "WeightSlot",
    "layer_from_config",
]
