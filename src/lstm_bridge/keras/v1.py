"""``lstm_bridge.keras.v1``: the TF 1.15 ``tf.keras.layers.LSTM`` / ``GRU`` (v1 API) signatures and defaults.

``GRU`` / ``GRUCell`` (TF 1.15 ``tf.keras.layers.GRU``, tf_keras ``gru_v1``): ``recurrent_activation=
'hard_sigmoid'`` (Keras 2's), ``reset_after=False`` (bias ``(3u,)``) and ``implementation=1`` by default;
recurrent dropout forces implementation 1 as in TF2 (measured on tf_keras 2.21's ``gru_v1.GRUCell``).

LSTM differences from :class:`lstm_bridge.keras.LSTM` (docs/spec/keras_lstm.md §2.1, §5):

* ``recurrent_activation='hard_sigmoid'`` (Keras 2's ``clip(0.2 x + 0.5, 0, 1)``) and
  ``implementation=1`` by default;
* ``implementation=2`` stays allowed with ``recurrent_dropout`` and then uses one recurrent mask
  shared by the four gates (TF 1.15 ``LSTMCell``), where Keras 2/3 force implementation 1.
"""

from __future__ import annotations

from typing import Any, Optional

from . import cell as _cell, options as _options
from .layer import GRU as _GRU, LSTM as _LSTM

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell"]


class LSTMCell(_cell.LSTMCell):
    """TF 1.15 ``LSTMCell``: hard_sigmoid gates and implementation 1 by default; ``implementation=2``
    stays with ``recurrent_dropout`` (one recurrent mask shared by the four gates)."""

    _keeps_implementation_with_recurrent_dropout = True

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "hard_sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 1,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        trainable: bool = True,
        dtype: Any = None,
        keras_version: int = 2,
    ):
        super().__init__(
            **_options.declared(locals(), "cell"),
            name=name,
            trainable=trainable,
            dtype=dtype,
            keras_version=keras_version,
        )

    def _recurrent_mask_count(self) -> int:
        return 4 if self.implementation == 1 else 1


class LSTM(_LSTM):
    """TF 1.15 ``tf.keras.layers.LSTM(units, activation='tanh', recurrent_activation='hard_sigmoid', ...,
    implementation=1, ...)``; everything else as :class:`lstm_bridge.keras.LSTM`."""

    _cell_class = LSTMCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "hard_sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 1,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        super().__init__(**_options.declared(locals()), **kwargs)


class GRUCell(_cell.GRUCell):
    """TF 1.15 ``GRUCell``: hard_sigmoid gates, ``reset_after=False`` and implementation 1 by default."""

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "hard_sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 1,
        reset_after: bool = False,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        trainable: bool = True,
        dtype: Any = None,
        keras_version: int = 2,
    ):
        super(_cell.GRUCell, self).__init__()
        self._configure(
            _options.declared(locals(), "cell"),
            name=name,
            trainable=trainable,
            dtype=dtype,
            keras_version=keras_version,
        )


class GRU(_GRU):
    """TF 1.15 ``tf.keras.layers.GRU(units, activation='tanh', recurrent_activation='hard_sigmoid', ...,
    implementation=1, ..., reset_after=False)``; everything else as :class:`lstm_bridge.keras.GRU`."""

    _cell_class = GRUCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "hard_sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 1,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        reset_after: bool = False,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        super(_GRU, self).__init__()
        self._configure(_options.declared(locals()), kwargs)
