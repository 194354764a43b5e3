"""Every Keras recurrent option, declared once: name, default (per API generation), validation, config
key and meaning.

The public constructors (:class:`~lstm_bridge.keras.LSTMCell`, :class:`~lstm_bridge.keras.LSTM` and their
:mod:`~lstm_bridge.keras.v1` twins) keep explicit signatures for ``help()`` and IDEs; their bodies hand
their arguments to one shared initialiser that reads this table, ``get_config`` writes the keys it
declares, and ``tests/test_keras_structure.py`` checks that every signature's defaults are the declared
ones.

Scopes: ``"cell"`` options belong to the cell (``LSTMCell`` takes them, ``LSTM`` passes them on and
exposes them as attributes); ``"layer"`` options belong to the ``LSTM`` layer only.

Cell kinds: :data:`ALL_OPTIONS` declares the options of every Keras recurrent layer (``LSTM``, ``GRU``,
``SimpleRNN``), each with the kinds that take it (``unit_forget_bias`` is LSTM-only, ``reset_after``
GRU-only, ``SimpleRNN`` has no ``recurrent_activation`` and no ``implementation``);
:func:`options_for` gives one kind's tuple. :data:`OPTIONS` (and :data:`CELL_OPTIONS`,
:data:`LAYER_OPTIONS`) are the LSTM's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Tuple

import numpy as np

from .. import activations as _activations
from ..recurrent import CellKind
from . import constraints as _constraints, regularizers as _regularizers

__all__ = [
    "ALL_OPTIONS",
    "CELL_OPTIONS",
    "EXTRA_KWARGS",
    "LAYER_OPTIONS",
    "OPTIONS",
    "Option",
    "cell_options",
    "check_implementation",
    "check_rate",
    "check_units",
    "declared",
    "layer_options",
    "option",
    "options_for",
    "serialize_object",
]

#: ``Option.parse(value, name, keras_version) -> stored value``.
Parse = Callable[[Any, str, int], Any]


def _keep(value: Any, name: str = "", keras_version: int = 2) -> Any:
    return value


def _as_bool(value: Any, name: str, keras_version: int) -> bool:
    return bool(value)


def _activation(value: Any, name: str, keras_version: int) -> Any:
    return _activations.get(value, keras_version)


def _regularizer(value: Any, name: str, keras_version: int) -> Any:
    return _regularizers.get(value)


def _constraint(value: Any, name: str, keras_version: int) -> Any:
    return _constraints.get(value)


def check_units(value: Any, name: str = "units", keras_version: int = 2) -> int:
    """Keras's ``units``: a positive integer (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Received an invalid value for argument `units`, expected a positive integer, got {value!r}.")
    return int(value)


def check_rate(value: Any, name: str, keras_version: int = 2) -> float:
    """Keras (both generations) clips rates to [0, 1]: a negative rate is 0; 1.0 is refused by tf_keras when
    dropout runs (training) and means no dropout in Keras 3 (its condition is ``0 < rate < 1``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value != value:
        raise ValueError(f"{name} must be a float in [0, 1); received {name}={value!r}")
    return min(1.0, max(0.0, float(value)))


def check_implementation(implementation: Any, name: str = "implementation", keras_version: int = 2) -> int:
    """Keras's ``implementation``: 1 (per-gate matmuls) or 2 (fused); 0 is accepted with tf_keras's
    deprecation warning and computes as the fused form (as tf_keras and Keras 3 do)."""
    if isinstance(implementation, bool) or implementation not in (0, 1, 2):
        raise ValueError(f"implementation must be 1 or 2; received implementation={implementation!r}")
    if implementation == 0:
        warnings.warn(
            "`implementation=0` has been deprecated, and now defaults to `implementation=1`. "
            "Please update your layer call.",
            stacklevel=4,
        )
    return int(implementation)


def serialize_object(value: Any) -> Any:
    """A regularizer's / constraint's config value: its ``get_config()`` when it has one, else itself."""
    return value.get_config() if hasattr(value, "get_config") else value


_SAME: Any = object()

#: Every Keras recurrent cell kind (``LSTM``, ``GRU``, ``SimpleRNN``).
ALL_KINDS: FrozenSet[CellKind] = frozenset(CellKind)
_LSTM_GRU: FrozenSet[CellKind] = frozenset({CellKind.LSTM, CellKind.GRU})


@dataclass(frozen=True)
class Option:
    """One Keras constructor argument.

    Attributes:
        name: the argument name, which is also the attribute and the ``get_config`` key.
        default: the tf_keras / Keras 3 default (``REQUIRED`` for ``units``).
        scope: ``"cell"`` or ``"layer"`` (see the module docstring).
        doc: one line on what it means.
        v1_default: the TF 1.15 (:mod:`lstm_bridge.keras.v1`) default when it differs.
        parse: validates and converts a given value into the stored one.
        serialize: the stored value back into its config value.
        kinds: the cell kinds whose layers and cells take it (all by default).
    """

    name: str
    default: Any
    scope: str
    doc: str
    v1_default: Any = _SAME
    parse: Parse = _keep
    serialize: Callable[[Any], Any] = _keep
    kinds: FrozenSet[CellKind] = ALL_KINDS

    def default_for(self, v1: bool = False) -> Any:
        """The default of the TF 1.15 signature (``v1=True``) or of tf_keras / Keras 3."""
        return self.default if not v1 or self.v1_default is _SAME else self.v1_default


#: The default of an argument that has none.
REQUIRED: Any = object()

#: The constructor arguments of every Keras recurrent layer, in Keras's signature order (tf_keras's, with
#: Keras 3's ``seed`` last); :func:`options_for` selects one kind's.
ALL_OPTIONS: Tuple[Option, ...] = (
    Option("units", REQUIRED, "cell", "positive integer: size of h and c", parse=check_units),
    Option(
        "activation",
        "tanh",
        "cell",
        "candidate and cell-output activation",
        parse=_activation,
        serialize=_activations.serialize,
    ),
    Option(
        "recurrent_activation",
        "sigmoid",
        "cell",
        "gate activation (LSTM: i, f, o; GRU: z, r)",
        v1_default="hard_sigmoid",
        parse=_activation,
        serialize=_activations.serialize,
        kinds=_LSTM_GRU,
    ),
    Option(
        "use_bias",
        True,
        "cell",
        "whether the cell has a bias (LSTM (4u,); GRU (2, 3u) or (3u,); SimpleRNN (u,))",
        parse=_as_bool,
    ),
    Option("kernel_initializer", "glorot_uniform", "cell", "initializer of kernel (input_dim, G*u)"),
    Option("recurrent_initializer", "orthogonal", "cell", "initializer of recurrent_kernel (u, G*u)"),
    Option("bias_initializer", "zeros", "cell", "initializer of bias"),
    Option(
        "unit_forget_bias",
        True,
        "cell",
        "forget-gate bias initialised to 1",
        parse=_as_bool,
        kinds=frozenset({CellKind.LSTM}),
    ),
    Option(
        "kernel_regularizer",
        None,
        "cell",
        "penalty on kernel, in losses",
        parse=_regularizer,
        serialize=serialize_object,
    ),
    Option(
        "recurrent_regularizer",
        None,
        "cell",
        "penalty on recurrent_kernel, in losses",
        parse=_regularizer,
        serialize=serialize_object,
    ),
    Option(
        "bias_regularizer", None, "cell", "penalty on bias, in losses", parse=_regularizer, serialize=serialize_object
    ),
    Option(
        "activity_regularizer",
        None,
        "layer",
        "penalty on the layer's outputs (divided by the batch size)",
        parse=_regularizer,
        serialize=serialize_object,
    ),
    Option(
        "kernel_constraint",
        None,
        "cell",
        "projection of kernel after an optimizer step",
        parse=_constraint,
        serialize=serialize_object,
    ),
    Option(
        "recurrent_constraint",
        None,
        "cell",
        "projection of recurrent_kernel after an optimizer step",
        parse=_constraint,
        serialize=serialize_object,
    ),
    Option(
        "bias_constraint",
        None,
        "cell",
        "projection of bias after an optimizer step",
        parse=_constraint,
        serialize=serialize_object,
    ),
    Option("dropout", 0.0, "cell", "input dropout rate, one mask per call (training only)", parse=check_rate),
    Option(
        "recurrent_dropout", 0.0, "cell", "recurrent dropout rate, one mask per call (training only)", parse=check_rate
    ),
    Option(
        "implementation",
        2,
        "cell",
        "1: per-gate matmuls, 2: fused (same numbers); 1 with recurrent_dropout",
        v1_default=1,
        parse=check_implementation,
        kinds=_LSTM_GRU,
    ),
    Option(
        "return_sequences", False, "layer", "return the whole sequence (B, T, u), else the last output", parse=_as_bool
    ),
    Option("return_state", False, "layer", "also return the final [h, c]", parse=_as_bool),
    Option(
        "go_backwards",
        False,
        "layer",
        "run from the last step to the first (outputs in processing order)",
        parse=_as_bool,
    ),
    Option("stateful", False, "layer", "carry the final states into the next call", parse=_as_bool),
    Option("unroll", False, "layer", "Keras's unrolled loop (same numbers; one masking quirk)", parse=_as_bool),
    Option("time_major", False, "layer", "inputs and outputs are (T, B, ...)", parse=_as_bool),
    Option(
        "reset_after",
        True,
        "cell",
        "GRU: reset gate applied after the recurrent matmul (bias (2, 3u)); False: before it (bias (3u,))",
        v1_default=False,
        parse=_as_bool,
        kinds=frozenset({CellKind.GRU}),
    ),
    Option("seed", None, "cell", "seed of the dropout masks and of unseeded initializers"),
)


def options_for(kind: CellKind) -> Tuple[Option, ...]:
    """The options of ``kind``'s layer, in Keras's signature order."""
    return tuple(o for o in ALL_OPTIONS if kind in o.kinds)


def cell_options(kind: CellKind) -> Tuple[Option, ...]:
    """The options of ``kind``'s cell (``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``)."""
    return tuple(o for o in options_for(kind) if o.scope == "cell")


def layer_options(kind: CellKind) -> Tuple[Option, ...]:
    """The options that belong to ``kind``'s layer only."""
    return tuple(o for o in options_for(kind) if o.scope == "layer")


#: The Keras LSTM constructor arguments, in Keras's signature order.
OPTIONS: Tuple[Option, ...] = options_for(CellKind.LSTM)
CELL_OPTIONS: Tuple[Option, ...] = cell_options(CellKind.LSTM)
LAYER_OPTIONS: Tuple[Option, ...] = layer_options(CellKind.LSTM)
_BY_NAME: Dict[str, Option] = {o.name: o for o in ALL_OPTIONS}

#: Keyword arguments a Keras layer accepts beyond its signature (``LSTM(**kwargs)``), with their meaning;
#: ``LSTMCell`` takes ``name``, ``trainable``, ``dtype`` and ``keras_version`` in its signature.
EXTRA_KWARGS: Mapping[str, str] = {
    "name": "the layer name (default: lstm, lstm_1, ...)",
    "trainable": "whether the weights are trained (requires_grad)",
    "dtype": '"float32" (default), "float64", "float16", or a Keras 3 DTypePolicy config',
    "keras_version": "2 (tf_keras, default) or 3: the generation's rules",
    "zero_output_for_mask": "a masked step outputs 0 instead of repeating the previous output",
    "input_shape": "(time, features): build the weights now",
    "batch_input_shape": "(batch, time, features): build the weights now",
    "batch_size": "the batch size that goes with input_shape / input_dim",
    "input_dim": "features: build the weights now",
    "input_length": "accepted (tf_keras's legacy argument); no effect",
    "use_cudnn": "accepted (one CPU/GPU path here); kept on the layer",
    "weights": "tf_keras only: [kernel, recurrent_kernel, bias] set when the layer is built",
}


def option(name: str) -> Option:
    """The declaration of ``name``."""
    return _BY_NAME[name]


def declared(values: Mapping[str, Any], scope: Optional[str] = None) -> Dict[str, Any]:
    """The declared options of ``scope`` among ``values`` (a constructor's ``locals()``), in declared order
    (options of any kind: a constructor's locals hold only its own kind's)."""
    return {o.name: values[o.name] for o in ALL_OPTIONS if (scope is None or o.scope == scope) and o.name in values}
