"""The Keras recurrent layers ``LSTM``, ``GRU`` and ``SimpleRNN`` (``tf.keras.layers.*`` /
``keras.layers.*``) as torch Modules: one generic :class:`Recurrent` over the cell kind, with thin public
subclasses that keep Keras's explicit signatures.

Shapes (``u = units``): inputs ``(B, T, F)`` (``(T, B, F)`` with ``time_major``); output ``(B, u)``, or
``(B, T, u)`` with ``return_sequences``; with ``return_state`` ``[output, h, c]`` (LSTM) or
``[output, h]`` (GRU, SimpleRNN), states ``(B, u)``. Semantics follow Keras exactly (docs/spec/keras_lstm.md §3-§5,
docs/spec/keras_gru_simplernn.md):

* ``go_backwards``: steps run over ``x[T-1] .. x[0]`` and the returned sequence stays in that
  processing order (not flipped back).
* masks ``(B, T)`` (``(T, B)`` with time_major), non-zero = keep: a masked step leaves the states unchanged
  and repeats the previous *output* (0 before the first valid step), or emits 0 with
  ``zero_output_for_mask=True``.
* dropout / recurrent_dropout: one mask per call reused at every step (implementation=1: one per gate,
  LSTM 4, GRU 3; SimpleRNN always 1), only in training.

The time loop itself lives in :mod:`lstm_bridge.engine`; this class only translates Keras's
arguments, shapes and return conventions.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple, Type, Union, cast

import numpy as np
import torch

from .._tensors import as_float, as_tensor, check_shape
from ..engine import (
    DirectionWeights,
    DropoutMasks,
    LayerSemantics,
    MaskedOutput,
    callplan as _callplan,
    run_layer,
    trainplan as _trainplan,
)
from ..engine.guards import allocation_errors, tracing
from ..recurrent import CellKind
from . import options as _options, outputs as _outputs
from .cell import (
    GRUCell,
    LSTMCell,
    RecurrentCell,
    SimpleRNNCell,
    config_keras_version,
    state_names,
    unique_name,
)


def _cell_attributes(kind: CellKind) -> FrozenSet[str]:
    """The cell's options, exposed on the layer as Keras does (layer.activation, layer.dropout, ...)."""
    return frozenset(o.name for o in _options.cell_options(kind) if o.name != "units") | {
        "kernel",
        "recurrent_kernel",
        "bias",
        "input_dim",
    }


_CELL_ATTRIBUTES = {kind: _cell_attributes(kind) for kind in CellKind}
_LAYER_NAMES = {CellKind.LSTM: "lstm", CellKind.GRU: "gru", CellKind.RNN: "simple_rnn"}
# tf_keras's message when a stateful layer cannot know its batch size (base_rnn.py reset_states).
_NO_BATCH_SIZE = (
    "If a RNN is stateful, it needs to know its batch size. Specify the batch size of your input "
    "tensors: pass batch_input_shape=(batch, time, features) to the layer, build it with a known "
    "batch size, or call it once"
)

Output = Union[torch.Tensor, List[torch.Tensor], Tuple[torch.Tensor, ...]]


class Recurrent(torch.nn.Module):
    """A Keras recurrent layer of one cell kind (``_cell_class.kind``): ``LSTM``, ``GRU`` or ``SimpleRNN``,
    with Keras's arguments, defaults, weights, shapes and numbers.

    Extra keyword arguments Keras accepts: ``name``, ``trainable``, ``dtype`` ("float32"/"float64"),
    ``zero_output_for_mask``, ``input_shape``/``batch_input_shape``/``input_dim`` (build eagerly),
    ``use_cudnn`` (accepted; there is one CPU path), ``weights`` (tf_keras only: set when built), and
    ``keras_version`` (2 or 3, default 2: what ambiguous activation names such as ``"hard_sigmoid"`` mean,
    and the generation's rules).

    tf_keras (2) vs Keras 3 (3), as measured on tf_keras 2.21 / Keras 3.15.1: a stateful layer whose stored
    states are non-zero ignores ``initial_state`` in tf_keras (always takes it in Keras 3);
    ``layer([x, h0, c0])`` works in tf_keras only; integer inputs are cast in Keras 3 and refused by tf_keras;
    several outputs are a list in tf_keras and a tuple in Keras 3; ``reset_states()`` without a known batch
    size (or on a non-stateful layer) raises in tf_keras and is a no-op in Keras 3; dropout rate 1.0 raises
    in tf_keras when training and drops nothing in Keras 3.

    Every argument is declared once in :mod:`lstm_bridge.keras.options` (default, validation, config key).

    Runner interface (what ``Bidirectional`` uses; any wrapper may): ``call = layer.prepare(inputs, mask,
    training, initial_state)`` checks and translates one call (:class:`LayerCall`); ``layer.run(call)`` runs
    the engine (:class:`DirectionRun`: original-time outputs, final states); ``layer.finish(call, result)``
    applies Keras's return conventions (:mod:`lstm_bridge.keras.outputs`). ``forward`` is exactly these three.
    """

    _cell_class: Type[RecurrentCell] = LSTMCell
    # Set from the declared layer options (keras/options.py); the cell's are read through ``__getattr__``.
    activity_regularizer: Optional[Callable[[torch.Tensor], torch.Tensor]]
    return_sequences: bool
    return_state: bool
    go_backwards: bool
    stateful: bool
    unroll: bool
    time_major: bool

    def _configure(self, values: Dict[str, Any], kwargs: Dict[str, Any]) -> None:
        """The one initialiser behind every layer signature: the declared options (keras/options.py) in
        ``values``, the extra Keras keyword arguments (``options.EXTRA_KWARGS``) in ``kwargs``."""
        self.keras_version = int(kwargs.get("keras_version", 2))
        unknown = set(kwargs) - set(_options.EXTRA_KWARGS)
        if self.keras_version >= 3 and "weights" in kwargs:
            unknown.add("weights")  # Keras 3 dropped the weights= constructor argument
        if unknown:
            if self.keras_version >= 3:
                raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {sorted(unknown)}")
            raise TypeError(
                f"Keyword argument not understood: {sorted(unknown)[0]!r} (passed to {type(self).__name__})"
            )
        self.name = kwargs.get("name") or unique_name(self._default_name())
        trainable = bool(kwargs.get("trainable", True))
        kind = self._cell_class.kind
        cell_args = {o.name: values[o.name] for o in _options.cell_options(kind)}
        self.cell: RecurrentCell = self._cell_class(
            name=self._cell_class._default_name(),
            trainable=trainable,
            dtype=kwargs.get("dtype"),
            keras_version=self.keras_version,
            **cell_args,
        )
        self.units = self.cell.units
        for opt in _options.layer_options(kind):
            # unroll gives the loop's numbers (docs/spec/keras_lstm.md §3); kept for config fidelity and one
            # masking quirk
            setattr(self, opt.name, opt.parse(values[opt.name], opt.name, self.keras_version))
        self.zero_output_for_mask = bool(kwargs.get("zero_output_for_mask", False))
        self.use_cudnn = kwargs.get("use_cudnn", "auto")
        self._activity_losses: List[torch.Tensor] = []
        self.states: List[Optional[torch.Tensor]] = [None] * self.cell.n_states
        self._batch_size: Optional[int] = None
        # tf_keras's weights=[kernel, recurrent_kernel, bias]: set when the layer is built.
        self._initial_weights = None if kwargs.get("weights") is None else list(kwargs["weights"])
        shape = kwargs.get("batch_input_shape")
        if shape is None and kwargs.get("input_shape") is not None:
            shape = (kwargs.get("batch_size"),) + tuple(kwargs["input_shape"])
        if shape is None and kwargs.get("input_dim") is not None:
            shape = (kwargs.get("batch_size"), None, kwargs["input_dim"])
        if shape is not None:
            self.build(shape)
        self.train(False)

    @classmethod
    def _default_name(cls) -> str:
        return _LAYER_NAMES[cls._cell_class.kind]

    @property
    def kind(self) -> CellKind:
        """The cell kind (LSTM, GRU or RNN for SimpleRNN)."""
        return self.cell.kind

    def _state_text(self) -> str:
        return "[" + ", ".join(state_names(self.cell.kind)) + "]"

    # --- Keras attribute surface ---------------------------------------------------------------
    def __getattr__(self, item: str) -> Any:
        # Keras exposes the cell's arguments on the layer (layer.activation, layer.dropout, ...).
        cell = self._modules.get("cell")
        if isinstance(cell, RecurrentCell) and item in _CELL_ATTRIBUTES[cell.kind]:
            return getattr(cell, item)
        return super().__getattr__(item)

    @property
    def built(self) -> bool:
        return self.cell.built

    @property
    def trainable(self) -> bool:
        """Keras's ``trainable``: False moves the weights to ``non_trainable_weights`` and turns
        ``requires_grad`` off; it can be set at any time."""
        return self.cell.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.cell.trainable = bool(value)

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Create the weights for ``(batch, time, features)`` (``(time, batch, features)`` if time_major)."""
        if not isinstance(input_shape, (list, tuple, torch.Size)) or len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects a 3-D input shape (batch, time, features); received {input_shape!r}"
            )
        with allocation_errors(f"building layer {self.name!r} (units={self.units}, input shape {tuple(input_shape)})"):
            self.cell.build(input_shape)
        batch = input_shape[1] if self.time_major else input_shape[0]
        if batch is not None:
            self._batch_size = int(batch)
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.cell.set_weights(weights)

    @property
    def trainable_weights(self) -> List[torch.nn.Parameter]:
        """``[kernel, recurrent_kernel, bias]`` in Keras's shapes (LSTM ``(I,4u), (u,4u), (4u,)``): the
        Parameters themselves (empty when ``trainable`` is False)."""
        return self.cell.trainable_weights

    @property
    def non_trainable_weights(self) -> List[torch.nn.Parameter]:
        return self.cell.non_trainable_weights

    @property
    def weights(self) -> List[torch.nn.Parameter]:
        return self.cell.weights

    def get_weights(self) -> List[np.ndarray]:
        return self.cell.get_weights()

    def set_weights(self, weights: Sequence[Any]) -> None:
        self.cell.set_weights(weights)

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> Any:
        """Keras's output shapes for ``input_shape``: ``(B, u)`` or ``(B, T, u)``; with return_state
        ``[output, (B, u), (B, u)]`` (LSTM; ``[output, (B, u)]`` for GRU and SimpleRNN) (a list as tf_keras
        returns, a tuple for keras_version=3)."""
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects a 3-D input shape (batch, time, features); received {shape}"
            )
        time, batch = (shape[0], shape[1]) if self.time_major else (shape[1], shape[0])
        output: Tuple[Optional[int], ...]
        if self.return_sequences:
            output = (time, batch, self.units) if self.time_major else (batch, time, self.units)
        else:
            output = (batch, self.units)
        if not self.return_state:
            return output
        shapes = [output] + [(batch, self.units)] * self.cell.n_states
        return _outputs.pack(shapes, self.keras_version)

    @property
    def losses(self) -> List[torch.Tensor]:
        """Weight regularisation terms (kernel, recurrent, bias), then the last call's activity terms."""
        return self.cell.weight_losses() + list(self._activity_losses)

    def apply_constraints(self) -> None:
        self.cell.apply_constraints()

    def reset_states(self, states: Optional[Sequence[Any]] = None) -> None:
        """Stateful layers: zero the carried states, or set them to ``states = [h, c]`` (LSTM) / ``[h]``
        (GRU, SimpleRNN; also a bare ``h``), each ``(B, u)``."""
        if not self.stateful:
            if self.keras_version >= 3 and states is None:
                return  # Keras 3: a no-op on a non-stateful layer
            raise AttributeError("Layer must be stateful (construct it with stateful=True) to reset its states")
        if states is None:
            if self._batch_size is None:
                if self.keras_version >= 3:  # Keras 3 leaves the states unset until the first call
                    self.states = [None] * self.cell.n_states
                    return
                raise ValueError(_NO_BATCH_SIZE)
            self.states = [
                torch.zeros(self._batch_size, self.units, dtype=self.cell.dtype_) for _ in range(self.cell.n_states)
            ]
            return
        if self.cell.n_states == 1 and not isinstance(states, (list, tuple)):
            states = [states]
        if not isinstance(states, (list, tuple)) or len(states) != self.cell.n_states:
            raise ValueError(f"reset_states expects {self._state_text()}; received {states!r:.80}")
        values = [as_float(s, f"states[{i}]", self.cell.dtype_).detach().clone() for i, s in enumerate(states)]
        batch = values[0].shape[0] if values[0].dim() == 2 else None
        for i, v in enumerate(values):
            check_shape(v, (self._batch_size or batch, self.units), f"states[{i}]")
        self._batch_size = batch
        self.states = list(values)

    reset_state = reset_states

    # --- config ------------------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Every constructor argument, with Keras's key names (a superset of TK's and K3's keys)."""
        cell = self.cell.get_config()
        dtype: Any = cell["dtype"]
        if self.keras_version >= 3:  # Keras 3 writes a DTypePolicy (which also marks the generation)
            dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}
        config: Dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": dtype}
        kind = self.cell.kind
        for opt in _options.layer_options(kind):  # Keras's key order: the layer's flags, units, the cell's, ...
            if opt.name != "activity_regularizer":
                config[opt.name] = opt.serialize(getattr(self, opt.name))
        config["zero_output_for_mask"] = self.zero_output_for_mask
        for opt in _options.cell_options(kind):
            config[opt.name] = cell[opt.name]
        opt = _options.option("activity_regularizer")
        config[opt.name] = opt.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> Any:
        """``LSTM.from_config(cfg)`` equals ``LSTM(**cfg)``; Keras 3 configs are recognised (their
        ``"hard_sigmoid"`` means the Keras 3 function). tf_keras's ``SimpleRNN.from_config`` drops an
        ``implementation`` key, and its ``GRU.from_config`` reads a stored ``implementation=0`` as 1."""
        config = dict(config)
        config.setdefault("keras_version", keras_version or config_keras_version(config))
        kind = cls._cell_class.kind
        if kind is CellKind.RNN:
            config.pop("implementation", None)
        elif kind is CellKind.GRU and config.get("implementation") == 0:
            config["implementation"] = 1
        return cls(**config)

    # --- call ------------------------------------------------------------------------------------
    def _initial_state(self, initial_state: Any, batch: int, like: torch.Tensor) -> List[torch.Tensor]:
        """The call's initial states ``[h]`` / ``[h, c]`` (each ``(B, u)``): ``initial_state``, a stateful
        layer's stored states, or zeros."""
        n = self.cell.n_states
        names = state_names(self.cell.kind)
        h_stored = self.states[0]
        stored = self.stateful and h_stored is not None
        if stored and h_stored is not None and h_stored.shape[0] != batch:
            raise ValueError(
                f"stateful layer {self.name!r} was used with batch size "
                f"{h_stored.shape[0]}; received batch size {batch}"
            )
        # tf_keras (base_rnn.py _process_inputs): a stateful layer whose stored states are not all zeros
        # continues from them and ignores initial_state; Keras 3 always takes initial_state.
        if (
            initial_state is not None
            and stored
            and self.keras_version < 3
            and any(s is not None and bool(torch.count_nonzero(s)) for s in self.states)
        ):
            initial_state = None
        if initial_state is not None:
            if n == 1 and isinstance(initial_state, (torch.Tensor, np.ndarray)):
                initial_state = [initial_state]  # Keras takes a single state tensor bare
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != n:
                got = (
                    f"a {type(initial_state).__name__} of length {len(initial_state)}"
                    if isinstance(initial_state, (list, tuple))
                    else type(initial_state).__name__
                )
                raise ValueError(
                    f"initial_state of layer {self.name!r} must be a list {self._state_text()} of "
                    f"{'two' if n == 2 else 'one'} (batch, {self.units}) tensor{'s' if n > 1 else ''}; "
                    f"received {got}"
                )
            values = [as_float(s, f"initial_state[{i}]", like.dtype) for i, s in enumerate(initial_state)]
            for i, (v, name) in enumerate(zip(values, names)):
                check_shape(v, (batch, self.units), f"initial_state[{i}] ({name})")
            return values
        if stored and all(s is not None for s in self.states):
            return [cast(torch.Tensor, s).to(like.dtype) for s in self.states]
        zeros = like.new_zeros(batch, self.units)
        return [zeros] * n

    def _valid_steps(self, mask: Any, T: int, B: int) -> Optional[torch.Tensor]:
        """The Keras mask as the engine's ``(T, B)`` bool.

        A list is either Keras's propagated ``[mask, None, None]`` (its first entry a tensor/array of
        2 or more dimensions, or None, and the rest None) or the mask itself as nested lists."""
        if mask is None:
            return None
        if isinstance(mask, (list, tuple)):
            if len(mask) == 0:
                raise ValueError(
                    f"mask of layer {self.name!r} must be a (batch, time) boolean tensor; received an empty list"
                )
            first = mask[0]
            keras_list = (first is None or (isinstance(first, (torch.Tensor, np.ndarray)) and first.ndim >= 2)) and all(
                m is None for m in mask[1:]
            )
            if keras_list:
                mask = first
                if mask is None:
                    return None
        m = as_tensor(mask, "mask")
        expected = (T, B) if self.time_major else (B, T)
        if m.dim() == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        check_shape(m, expected, "mask", " ((time, batch) with time_major)" if self.time_major else " (batch, time)")
        if m.dtype != torch.bool:  # (a bool mask as it is: no copy, and no node in a traced program)
            m = m != 0
        return m if self.time_major else m.t()

    def split_inputs(self, inputs: Any, initial_state: Any, n_states: Optional[int] = None) -> Tuple[Any, Any]:
        """tf_keras's ``layer([x, *states])`` form: the inputs list carries the initial states
        (``n_states``: the layer's own count by default; Bidirectional passes both directions').
        Keras 3 refuses it. A nested Python list of numbers is data, not this form."""
        if n_states is None:
            n_states = self.cell.n_states
        if not (
            isinstance(inputs, (list, tuple)) and len(inputs) > 1 and isinstance(inputs[0], (torch.Tensor, np.ndarray))
        ):
            return inputs, initial_state
        if self.keras_version >= 3:
            raise ValueError(
                f"Layer {self.name!r} expects 1 input(s), but it received {len(inputs)} input "
                "tensors (pass the states as initial_state=...)"
            )
        if initial_state is not None:
            raise ValueError(
                f"layer {self.name!r} received initial states both in the inputs list and as "
                "initial_state; pass them once"
            )
        if len(inputs) != 1 + n_states:
            raise ValueError(
                f"layer {self.name!r} expects the inputs list [x, {n_states} initial states]; "
                f"received {len(inputs)} tensors"
            )
        return inputs[0], list(inputs[1:])

    def _as_input(self, inputs: Any) -> torch.Tensor:
        """The input as a float tensor of the layer's dtype (Keras 3 casts integers; tf_keras refuses)."""
        kernel = self.cell.kernel
        dtype = kernel.dtype if kernel is not None else self.cell.dtype_
        if (
            self.keras_version >= 3
            and not isinstance(inputs, (torch.Tensor, np.ndarray))
            and isinstance(inputs, (list, tuple, int, float))
        ):
            inputs = np.asarray(inputs)
        t = as_tensor(inputs, "inputs")
        if t.is_meta:
            raise ValueError(
                f"Input 0 of layer {self.name!r}: x is a meta tensor (shape {tuple(t.shape)}, no "
                "data); expected a tensor with values"
            )
        if self.keras_version >= 3 and not (t.is_floating_point() or t.is_complex()):
            return t.to(dtype)  # Keras 3 casts integer and bool inputs to the layer's float dtype
        if not t.is_floating_point():
            raise TypeError(
                f"Input 0 of layer {self.name!r} must have a floating dtype (float16/32/64); received "
                f"{t.dtype} (tf_keras refuses integer inputs: cannot compute MatMul as input #1 was "
                "expected to be an int tensor but is a float tensor; Keras 3 casts them: "
                "keras_version=3)"
            )
        return as_float(t, "inputs", dtype)

    def prepare(
        self, inputs: Any, mask: Any = None, training: Optional[bool] = None, initial_state: Any = None
    ) -> LayerCall:
        """Check and translate one call's Keras arguments (as :meth:`forward` takes them) into the
        engine's terms; builds the layer on its first call."""
        inputs, initial_state = self.split_inputs(inputs, initial_state)
        x = self._as_input(inputs)
        if x.dim() != 3:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim=3 "
                f"(batch, time, features), found ndim={x.dim()}; full shape received: {tuple(x.shape)}"
            )
        if not self.built:
            if tracing():
                raise ValueError(
                    f"layer {self.name!r} creates its weights on its first call, which torch.compile / torch.export "
                    f"cannot record: call it once eagerly (or layer.build({tuple(x.shape)})) before tracing it"
                )
            self.build(tuple(x.shape))
        self.cell._ensure_built(x.shape[-1])
        xt = x if self.time_major else x.transpose(0, 1)  # (T, B, F)
        T, B = xt.shape[0], xt.shape[1]
        if T == 0:
            raise ValueError(f"layer {self.name!r} received an input with 0 time steps; at least 1 is required")
        # (a lambda: formatting B here would make torch.compile specialise the batch size: a recompile per batch)
        with allocation_errors(lambda: f"layer {self.name!r}: initial states of shape ({B}, {self.units})"):
            states = self._initial_state(initial_state, B, xt)
        h0, c0 = states[0], (states[1] if len(states) > 1 else None)
        valid = self._valid_steps(mask, T, B)
        drop = self.cell.dropout_masks(B, xt, self.cell.resolve_training(training))
        # Keras's unrolled loop zeroes the processing-order outputs with the *un-reversed* mask when
        # go_backwards and zero_output_for_mask meet (Bidirectional + mask + unroll; docs/spec/keras_lstm.md §6).
        unroll_quirk = self.unroll and self.go_backwards and self.zero_output_for_mask and valid is not None
        rule = MaskedOutput.ZERO if self.zero_output_for_mask and not unroll_quirk else MaskedOutput.CARRY
        return LayerCall(xt, h0, c0, valid, drop, self.cell.semantics(rule), unroll_quirk)

    # --- the runner interface (Bidirectional drives its two layers through it) ----------------------
    def run(self, call: LayerCall) -> DirectionRun:
        """The engine's pass over one prepared call (no Keras conventions yet): ``seq`` the ``(T, B, u)``
        outputs in original time order, ``h``/``c`` the final ``(B, u)`` states (``c`` None but for LSTM)."""
        return run_directions([self], [call], f"layer {self.name!r}")[0]

    def finish(self, call: LayerCall, result: DirectionRun) -> Output:
        """Keras's returns (keras/outputs.py) from :meth:`run`'s result; also stores a stateful layer's
        states and the call's activity-regularizer losses."""
        seq, h, c = result
        valid, B = call.valid, call.xt.shape[1]
        output = _outputs.direction_output(seq, reverse=self.go_backwards, return_sequences=self.return_sequences)
        if call.unroll_quirk and valid is not None:
            keep = valid if self.return_sequences else valid[0]
            output = torch.where(keep.unsqueeze(-1), output, torch.zeros_like(output))
        if self.return_sequences and not self.time_major:
            output = output.transpose(0, 1)
        finals = [h] if c is None else [h, c]
        if self.stateful:
            self.states = [s.detach() for s in finals]
            self._batch_size = B
        results = [output, *_outputs.state_list([h], None if c is None else [c])] if self.return_state else [output]
        self._activity_losses = []
        if self.activity_regularizer is not None:
            self._activity_losses = [self.activity_regularizer(r) / B for r in results]
        if not self.return_state:
            return output
        return _outputs.pack(results, self.keras_version)

    def forward(
        self, inputs: Any, mask: Any = None, training: Optional[bool] = None, initial_state: Any = None
    ) -> Output:
        """Run the layer; see the class docstring for shapes and conventions."""
        if initial_state is None and type(inputs) is torch.Tensor:
            if _callplan.plannable():
                return self._planned(inputs, mask, training)
            if _trainplan.plannable():
                return self._planned_training(inputs, mask, training)
        call = self.prepare(inputs, mask, training, initial_state)
        return self.finish(call, self.run(call))

    def _apply(self, *args: Any, **kwargs: Any) -> Any:
        """``Module._apply`` (``.to``, ``.double()``, ...), forgetting the call plans first: a conversion swaps
        the Parameters' data in place, keeping the objects the plans are keyed on."""
        self.__dict__.pop("_call_plan", None)
        self.__dict__.pop("_train_plan", None)
        return super()._apply(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _planned_training(self, x: torch.Tensor, mask: Any, training: Optional[bool]) -> Output:
        """A recorded (grad mode) call through the layer's cached training plan
        (:mod:`lstm_bridge.engine.trainplan`): the first call of a signature - input shape/dtype/device and
        ``requires_grad``, mask presence, training flag, the parameters and their ``requires_grad``,
        backend - runs the full path (every check and error) and plans the next ones, which draw the
        dropout masks and read the mask exactly as the full path does, then go straight to the kernel's
        autograd Function with fresh weight views."""
        cell = cast(RecurrentCell, self._modules["cell"])  # (not Module.__getattr__: ~0.9 us a call)
        kernel, recurrent, bias = self.plan_parameters()
        if kernel is None or recurrent is None or self.stateful or self.activity_regularizer is not None:
            return self.finish(*self._run_prepared(x, mask, training))
        train = cell.training if training is None else bool(training)  # (cell.resolve_training)
        key = (
            _callplan.signature(x),
            x.requires_grad,
            mask is None,
            train,
            kernel,
            kernel.requires_grad,
            recurrent,
            recurrent.requires_grad,
            bias,
            bias is not None and bias.requires_grad,
        )
        slot = self.__dict__.get("_train_plan")
        if slot is None:
            slot = self.__dict__["_train_plan"] = _callplan.PlanSlot()  # (copies and pickles start empty)
        cached = slot.entry
        if cached is None or not _trainplan.same_key(cached[0], key):
            call, result = self._run_prepared(x, mask, training)
            plan = None
            if (
                cell.kind is CellKind.LSTM
                and call.c0 is not None
                and not call.unroll_quirk
                and (mask is None) == (call.valid is None)
                and call.xt.shape[1] > 0
                and x.dtype == call.xt.dtype
            ):
                plan = _trainplan.plan_training_layer(
                    call.xt, [cell.direction_weights()], [call.h0], [call.c0], reverse=[self.go_backwards],
                    valid=call.valid, semantics=call.semantics, dropout=[call.dropout],
                )  # fmt: skip
            slot.entry = (key, plan, [call.h0], [call.c0])
            return self.finish(call, result)
        plan = cached[1]
        if plan is None:
            return self.finish(*self._run_prepared(x, mask, training))
        xt = x if self.time_major else x.transpose(0, 1)
        T, B = xt.shape[0], xt.shape[1]
        valid = None if mask is None else self._valid_steps(mask, T, B)
        dropout = cell.dropout_masks(B, xt, train)
        outs, hs, cs = plan.run(xt, [cell.direction_weights()], cached[2], cached[3], valid, [dropout])
        return self.planned_output(outs[0], hs[0], cs[0])

    def _planned(self, x: torch.Tensor, mask: Any, training: Optional[bool]) -> Output:
        """An inference call through the layer's cached call plan (:mod:`lstm_bridge.engine.callplan`): the
        first call of a signature - input shape/dtype/device, mask presence, training flag and with it the
        dropout options (:meth:`dropout_key`), weight views, backend - runs :meth:`prepare` / :meth:`run` /
        :meth:`finish` (every check and error) and plans the next ones, which skip to the engine's selected
        kernel. The mask's values are read on every call; a call with dropout (``training=True``) draws its
        masks as :meth:`prepare` does (same generator, same order) and hands them to the plan."""
        cell = cast(RecurrentCell, self._modules["cell"])  # (not Module.__getattr__: ~0.9 us a call)
        if self.stateful or self.activity_regularizer is not None:
            return self.finish(*self._run_prepared(x, mask, training))
        built = cell._parameters.get("kernel") is not None  # (cell.built, without Module.__getattr__)
        first = None if built else self._run_prepared(x, mask, training)  # (builds the layer)
        weights = cell.direction_weights()
        train = cell.training if training is None else bool(training)  # (cell.resolve_training)
        key = (
            _callplan.signature(x),
            mask is None,
            train,
            id(weights),
            (cell.dropout, cell.recurrent_dropout, cell.implementation) if train else None,  # (dropout_key)
        )
        slot = self.__dict__.get("_call_plan") or _callplan.PlanSlot.of(self)
        cached = slot.entry
        if first is None and cached is not None and cached[0] != key:
            cached = slot.recall(key)  # a recent signature's entry (calls alternating between shapes or masks)
        if first is not None or cached is None or cached[0] != key:
            call, result = first or self._run_prepared(x, mask, training)
            plan = None
            if (
                not call.unroll_quirk
                and (mask is None) == (call.valid is None)
                and call.xt.shape[1] > 0
                and x.dtype == call.xt.dtype
            ):
                plan = _callplan.plan_layer(
                    call.xt, [weights], [call.h0], [call.c0] if call.c0 is not None else [call.h0],
                    reverse=[self.go_backwards], valid=call.valid, semantics=call.semantics, dropout=[call.dropout],
                )  # fmt: skip
            # (weights kept alive with the plan: the key holds their id); the argument lists built once
            h0 = [call.h0]
            slot.keep((key, plan, [weights], h0, h0 if call.c0 is None else [call.c0], call.c0 is None), [weights])
            return self.finish(call, result)
        plan = cached[1]
        if plan is None:
            return self.finish(*self._run_prepared(x, mask, training))
        xt = x if self.time_major else x.transpose(0, 1)
        valid = None if mask is None else self._valid_steps(mask, xt.shape[0], xt.shape[1])
        if plan.masked:  # (the key's dropout options give the planned masks' form)
            outs, hs, cs = plan.run(
                xt, cached[2], cached[3], cached[4], valid, [cell.dropout_masks(xt.shape[1], xt, True)]
            )
        else:
            outs, hs, cs = plan.run(xt, cached[2], cached[3], cached[4], valid)
        return self.planned_output(outs[0], hs[0], None if cached[5] else cs[0])

    def plan_parameters(self) -> List[Optional[torch.Tensor]]:
        """The cell's ``[kernel, recurrent_kernel, bias]`` Parameters (None where absent), for a training
        plan's key (identity and ``requires_grad``); read without ``Module.__getattr__`` (every call)."""
        params = cast(RecurrentCell, self._modules["cell"])._parameters
        return [params.get("kernel"), params.get("recurrent_kernel"), params.get("bias")]

    def planned_weights(self, training: Optional[bool]) -> Optional[Tuple[DirectionWeights, bool]]:
        """For a wrapper's planned call: the cell's inference weight views (``cell.direction_weights()``) and
        the resolved training flag, or None when the layer's calls take the full path (not built, stateful,
        an activity regularizer). Reads the cell without ``Module.__getattr__`` (this runs on every call)."""
        cell = cast(RecurrentCell, self._modules["cell"])
        if cell._parameters.get("kernel") is None or self.stateful or self.activity_regularizer is not None:
            return None
        return cell.direction_weights(), cell.training if training is None else bool(training)

    def dropout_key(self, train: bool) -> Any:
        """What a call plan's key holds of the cell's dropout options: with ``train`` (the resolved training
        flag) its rates and ``implementation``, which decide the form of the masks a call draws
        (:meth:`RecurrentCell.dropout_masks`); None without (no masks)."""
        cell = cast(RecurrentCell, self._modules["cell"])
        return (cell.dropout, cell.recurrent_dropout, cell.implementation) if train else None

    def draw_dropout_masks(self, batch: int, like: torch.Tensor, train: bool) -> Optional[DropoutMasks]:
        """One call's dropout masks for ``batch`` samples (``like``: the time-major input, their dtype and
        device), drawn from the cell's generator as :meth:`prepare` draws them (None without ``train``);
        a wrapper's planned call draws its layers' masks through this."""
        return cast(RecurrentCell, self._modules["cell"]).dropout_masks(batch, like, train)

    def clear_losses(self) -> None:
        """Forget the last call's activity-regularizer losses, as a call without a regularizer leaves them
        (``losses`` empty); a wrapper's planned call does this for the layers whose returns it assembles."""
        if self._activity_losses:  # (Module.__setattr__ only when there is something to clear)
            self._activity_losses = []

    @property
    def state_count(self) -> int:
        """How many states the cell carries (LSTM 2: ``h``, ``c``; GRU and SimpleRNN 1)."""
        return cast(RecurrentCell, self._modules["cell"]).n_states

    def valid_steps(self, mask: Any, steps: int, batch: int) -> Optional[torch.Tensor]:
        """A call's Keras ``mask`` as the engine's ``(T, B)`` bool step mask (None: every step), checked
        against ``(batch, steps)``; what :meth:`prepare` does with it (wrappers use it on planned calls)."""
        return self._valid_steps(mask, steps, batch)

    def planned_output(self, seq: torch.Tensor, h: torch.Tensor, c: Optional[torch.Tensor]) -> Output:
        """:meth:`finish` for a planned call (not stateful, no activity regularizer, no unroll quirk):
        Keras's returns from the engine's ``seq (T, B, u)`` and final states (``outputs.direction_output``
        written out: this runs on every planned call)."""
        self.clear_losses()
        if self.return_sequences:
            output = seq.flip(0) if self.go_backwards else seq
            if not self.time_major:
                output = output.transpose(0, 1)
        else:
            output = seq[0] if self.go_backwards else seq[-1]
        if not self.return_state:
            return output
        return _outputs.pack([output, h] if c is None else [output, h, c], self.keras_version)

    def _run_prepared(self, x: Any, mask: Any, training: Optional[bool]) -> Tuple[LayerCall, DirectionRun]:
        call = self.prepare(x, mask, training)
        return call, self.run(call)


def run_directions(layers: Sequence[Recurrent], calls: Sequence[LayerCall], where: str) -> List[DirectionRun]:
    """Run layers prepared (:meth:`Recurrent.prepare`, all of one cell kind) on the same inputs and
    mask - ``Bidirectional``'s two halves, or one layer - in one engine call when they share their
    semantics (oneDNN's bidirectional LSTM, or the directions side by side in the native kernel), else
    each on its own. ``where`` names the caller in memory errors."""
    first = calls[0]
    if first.xt.shape[1] == 0:  # an empty batch: Keras returns empty outputs of the right shapes
        return [
            DirectionRun(c.h0.new_zeros(c.xt.shape[0], 0, layer.units), c.h0, c.c0) for layer, c in zip(layers, calls)
        ]
    if len(calls) > 1 and any(c.semantics != first.semantics or c.unroll_quirk for c in calls):
        return [layer.run(call) for layer, call in zip(layers, calls)]
    with allocation_errors(
        lambda: f"{where} on input shape {tuple(first.xt.shape)} (time, batch, features) with units={layers[0].units}"
    ):
        lstm = layers[0].cell.kind is CellKind.LSTM
        outs, hs, cs = run_layer(
            first.xt,
            [layer.cell.direction_weights() for layer in layers],
            [c.h0 for c in calls],
            [cast(torch.Tensor, c.c0) for c in calls] if lstm else None,
            reverse=[layer.go_backwards for layer in layers],
            valid=first.valid,
            semantics=first.semantics,
            dropout=[c.dropout for c in calls],
        )
    if not lstm:
        return [DirectionRun(o, h, None) for o, h in zip(outs, hs)]
    return [DirectionRun(o, h, c) for o, h, c in zip(outs, hs, cs)]


class LayerCall(NamedTuple):
    """One prepared call (:meth:`Recurrent.prepare`): time-major input ``xt (T, B, F)``, initial state
    ``h0``/``c0 (B, u)`` (``c0`` None but for LSTM), step mask ``valid (T, B)`` (None: every step),
    dropout masks, the engine
    semantics, and whether Keras's unrolled-loop masking quirk applies (docs/spec/keras_lstm.md §6)."""

    xt: torch.Tensor
    h0: torch.Tensor
    c0: Optional[torch.Tensor]
    valid: Optional[torch.Tensor]
    dropout: Optional[DropoutMasks]
    semantics: LayerSemantics
    unroll_quirk: bool


class DirectionRun(NamedTuple):
    """:meth:`Recurrent.run`'s result: ``seq (T, B, u)`` in original time order, final ``h``, ``c (B, u)``
    (``c`` None but for LSTM)."""

    seq: torch.Tensor
    h: torch.Tensor
    c: Optional[torch.Tensor]


class LSTM(Recurrent):
    """Keras ``LSTM(units, ...)`` — same arguments, defaults, weights, shapes and numbers (see
    :class:`Recurrent` for the extra keyword arguments, the tf_keras / Keras 3 rules and the runner
    interface). ``return_state`` gives ``[output, h, c]``.

    Example::

        >>> import numpy as np; from lstm_bridge.keras import LSTM
        >>> layer = LSTM(8, return_sequences=True, return_state=True)
        >>> out, h, c = layer(np.zeros((2, 5, 3), np.float32))
        >>> tuple(out.shape), tuple(h.shape)
        ((2, 5, 8), (2, 8))
    """

    _cell_class = LSTMCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
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
        implementation: int = 2,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        super().__init__()
        self._configure(_options.declared(locals()), kwargs)


class GRU(Recurrent):
    """Keras ``GRU(units, ...)`` (TF2 / tf_keras / Keras 3 signature and defaults: sigmoid gates,
    ``reset_after=True``, implementation 2) — same arguments, weights, shapes and numbers.

    Weights ``kernel (I, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (2, 3u)`` (``reset_after=False``:
    ``(3u,)``), blocks z, r, h; ``return_state`` gives ``[output, h]``; ``initial_state=[h0]``. The TF 1.15
    signature (hard_sigmoid, reset_after=False, implementation 1) is :class:`lstm_bridge.keras.v1.GRU`.
    See :class:`Recurrent` for the extra keyword arguments and the tf_keras / Keras 3 rules.

    Example::

        >>> import numpy as np; from lstm_bridge.keras import GRU
        >>> out, h = GRU(8, return_sequences=True, return_state=True)(np.zeros((2, 5, 3), np.float32))
        >>> tuple(out.shape), tuple(h.shape)
        ((2, 5, 8), (2, 8))
    """

    _cell_class = GRUCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
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
        implementation: int = 2,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        reset_after: bool = True,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        super().__init__()
        self._configure(_options.declared(locals()), kwargs)


class SimpleRNN(Recurrent):
    """Keras ``SimpleRNN(units, ...)``: ``h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)``
    — same arguments, defaults, weights, shapes and numbers.

    Weights ``kernel (I, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)``; ``return_state`` gives
    ``[output, h]``; one dropout mask per kind. See :class:`Recurrent` for the extra keyword arguments
    and the tf_keras / Keras 3 rules.
    """

    _cell_class = SimpleRNNCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
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
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        time_major: bool = False,
        seed: Optional[int] = None,
        **kwargs: Any,
    ):
        super().__init__()
        if "implementation" in kwargs and int(kwargs.get("keras_version", 2)) < 3:
            # tf_keras drops it with a warning (simple_rnn.py); Keras 3 refuses it as an unknown argument
            kwargs.pop("implementation")
            warnings.warn(
                "The `implementation` argument in `SimpleRNN` has been deprecated. Please remove it from "
                "your layer call.",
                stacklevel=2,
            )
        self._configure(_options.declared(locals()), kwargs)
