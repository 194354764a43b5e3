"""``LSTM``: the Keras LSTM layer (``tf.keras.layers.LSTM`` / ``keras.layers.LSTM``) as a torch Module.

Shapes (``u = units``): inputs ``(B, T, F)`` (``(T, B, F)`` with ``time_major``); output ``(B, u)``, or
``(B, T, u)`` with ``return_sequences``; with ``return_state`` the list ``[output, h, c]``, states
``(B, u)``. Semantics follow Keras exactly (spec keras §3-§5):

* ``go_backwards``: steps run over ``x[T-1] .. x[0]`` and the returned sequence stays in that
  processing order (not flipped back).
* masks ``(B, T)`` (``(T, B)`` with time_major), non-zero = keep: a masked step leaves (h, c) unchanged
  and repeats the previous *output* (0 before the first valid step), or emits 0 with
  ``zero_output_for_mask=True``.
* dropout / recurrent_dropout: one mask per call reused at every step (implementation=1: one per gate),
  only in training.

The time loop itself lives in :mod:`lstm_bridge.engine`; this class only translates Keras's
arguments, shapes and return conventions.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._tensors import as_float, as_tensor, check_shape
from ..engine import DropoutMasks, LayerSemantics, MaskedOutput, run_layer
from . import options as _options, outputs as _outputs
from .cell import LSTMCell, allocation_errors, config_keras_version, unique_name

# The cell's options, exposed on the layer as Keras does (layer.activation, layer.dropout, ...).
_CELL_ATTRIBUTES = frozenset(o.name for o in _options.CELL_OPTIONS if o.name != "units") | {
    "kernel", "recurrent_kernel", "bias", "input_dim"}
# tf_keras's message when a stateful layer cannot know its batch size (base_rnn.py reset_states).
_NO_BATCH_SIZE = ("If a RNN is stateful, it needs to know its batch size. Specify the batch size of your input "
                  "tensors: pass batch_input_shape=(batch, time, features) to the layer, build it with a known "
                  "batch size, or call it once")

Output = Union[torch.Tensor, List[torch.Tensor], Tuple[torch.Tensor, ...]]


class LSTM(torch.nn.Module):
    """Keras ``LSTM(units, ...)`` — same arguments, defaults, weights, shapes and numbers.

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

    Example::

        >>> import numpy as np; from lstm_bridge.keras import LSTM
        >>> layer = LSTM(8, return_sequences=True, return_state=True)
        >>> out, h, c = layer(np.zeros((2, 5, 3), np.float32))
        >>> tuple(out.shape), tuple(h.shape)
        ((2, 5, 8), (2, 8))
    """

    _cell_class = LSTMCell
    # Set from the declared layer options (keras/options.py); the cell's are read through ``__getattr__``.
    activity_regularizer: Optional[Callable[[torch.Tensor], torch.Tensor]]
    return_sequences: bool
    return_state: bool
    go_backwards: bool
    stateful: bool
    unroll: bool
    time_major: bool

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
            raise TypeError(f"Keyword argument not understood: {sorted(unknown)[0]!r} "
                            f"(passed to {type(self).__name__})")
        self.name = kwargs.get("name") or unique_name(self._default_name())
        trainable = bool(kwargs.get("trainable", True))
        cell_args = {o.name: values[o.name] for o in _options.CELL_OPTIONS}
        self.cell = self._cell_class(name="lstm_cell", trainable=trainable, dtype=kwargs.get("dtype"),
                                     keras_version=self.keras_version, **cell_args)
        self.units = self.cell.units
        for opt in _options.LAYER_OPTIONS:
            # unroll gives the loop's numbers (spec §3); accepted for config fidelity and one masking quirk
            setattr(self, opt.name, opt.parse(values[opt.name], opt.name, self.keras_version))
        self.zero_output_for_mask = bool(kwargs.get("zero_output_for_mask", False))
        self.use_cudnn = kwargs.get("use_cudnn", "auto")
        self._activity_losses: List[torch.Tensor] = []
        self.states: List[Optional[torch.Tensor]] = [None, None]
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

    @staticmethod
    def _default_name() -> str:
        return "lstm"

    # --- Keras attribute surface ---------------------------------------------------------------
    def __getattr__(self, item: str) -> Any:
        # Keras exposes the cell's arguments on the layer (layer.activation, layer.dropout, ...).
        if item in _CELL_ATTRIBUTES:
            return getattr(self._modules["cell"], item)
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
            raise ValueError(f"LSTM expects a 3-D input shape (batch, time, features); received {input_shape!r}")
        with allocation_errors(f"building layer {self.name!r} (units={self.units}, input shape "
                               f"{tuple(input_shape)})"):
            self.cell.build(input_shape)
        batch = input_shape[1] if self.time_major else input_shape[0]
        if batch is not None:
            self._batch_size = int(batch)
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.cell.set_weights(weights)

    @property
    def trainable_weights(self) -> List[torch.nn.Parameter]:
        """``[kernel (I,4u), recurrent_kernel (u,4u), bias (4u,)]``: the Parameters themselves
        (empty when ``trainable`` is False)."""
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
        ``[output, (B, u), (B, u)]`` (a list as tf_keras returns, a tuple for keras_version=3)."""
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"LSTM expects a 3-D input shape (batch, time, features); received {shape}")
        time, batch = (shape[0], shape[1]) if self.time_major else (shape[1], shape[0])
        output: Tuple[Optional[int], ...]
        if self.return_sequences:
            output = (time, batch, self.units) if self.time_major else (batch, time, self.units)
        else:
            output = (batch, self.units)
        if not self.return_state:
            return output
        shapes = [output, (batch, self.units), (batch, self.units)]
        return _outputs.pack(shapes, self.keras_version)

    @property
    def losses(self) -> List[torch.Tensor]:
        """Weight regularisation terms (kernel, recurrent, bias), then the last call's activity terms."""
        return self.cell.weight_losses() + list(self._activity_losses)

    def apply_constraints(self) -> None:
        self.cell.apply_constraints()

    def reset_states(self, states: Optional[Sequence[Any]] = None) -> None:
        """Stateful layers: zero the carried (h, c), or set them to ``states = [h, c]`` (each ``(B, u)``)."""
        if not self.stateful:
            if self.keras_version >= 3 and states is None:
                return  # Keras 3: a no-op on a non-stateful layer
            raise AttributeError("Layer must be stateful (construct it with stateful=True) to reset its states")
        if states is None:
            if self._batch_size is None:
                if self.keras_version >= 3:  # Keras 3 leaves the states unset until the first call
                    self.states = [None, None]
                    return
                raise ValueError(_NO_BATCH_SIZE)
            self.states = [torch.zeros(self._batch_size, self.units, dtype=self.cell.dtype_) for _ in range(2)]
            return
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise ValueError(f"reset_states expects [h, c]; received {states!r:.80}")
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
        for opt in _options.LAYER_OPTIONS:  # Keras's key order: the layer's flags, units, the cell's, ...
            if opt.name != "activity_regularizer":
                config[opt.name] = opt.serialize(getattr(self, opt.name))
        config["zero_output_for_mask"] = self.zero_output_for_mask
        for opt in _options.CELL_OPTIONS:
            config[opt.name] = cell[opt.name]
        opt = _options.option("activity_regularizer")
        config[opt.name] = opt.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> LSTM:
        """``LSTM.from_config(cfg)`` equals ``LSTM(**cfg)``; Keras 3 configs are recognised (their
        ``"hard_sigmoid"`` means the Keras 3 function)."""
        config = dict(config)
        config.setdefault("keras_version", keras_version or config_keras_version(config))
        return cls(**config)

    # --- call ------------------------------------------------------------------------------------
    def _initial_state(self, initial_state: Any, batch: int, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h_stored, c_stored = self.states
        stored = self.stateful and h_stored is not None
        if stored and h_stored is not None and h_stored.shape[0] != batch:
            raise ValueError(f"stateful layer {self.name!r} was used with batch size "
                             f"{h_stored.shape[0]}; received batch size {batch}")
        # tf_keras (base_rnn.py _process_inputs): a stateful layer whose stored states are not all zeros
        # continues from them and ignores initial_state; Keras 3 always takes initial_state.
        if initial_state is not None and stored and self.keras_version < 3 and \
                any(s is not None and bool(torch.count_nonzero(s)) for s in self.states):
            initial_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                got = (f"a {type(initial_state).__name__} of length {len(initial_state)}"
                       if isinstance(initial_state, (list, tuple)) else type(initial_state).__name__)
                raise ValueError(f"initial_state of layer {self.name!r} must be a list [h, c] of two (batch, "
                                 f"{self.units}) tensors; received {got}")
            h0, c0 = (as_float(s, f"initial_state[{i}]", like.dtype) for i, s in enumerate(initial_state))
            check_shape(h0, (batch, self.units), "initial_state[0] (h)")
            check_shape(c0, (batch, self.units), "initial_state[1] (c)")
            return h0, c0
        if stored and h_stored is not None and c_stored is not None:
            return h_stored.to(like.dtype), c_stored.to(like.dtype)
        zeros = like.new_zeros(batch, self.units)
        return zeros, zeros

    def _valid_steps(self, mask: Any, T: int, B: int) -> Optional[torch.Tensor]:
        """The Keras mask as the engine's ``(T, B)`` bool.

        A list is either Keras's propagated ``[mask, None, None]`` (its first entry a tensor/array of
        2 or more dimensions, or None, and the rest None) or the mask itself as nested lists."""
        if mask is None:
            return None
        if isinstance(mask, (list, tuple)):
            if len(mask) == 0:
                raise ValueError(f"mask of layer {self.name!r} must be a (batch, time) boolean tensor; "
                                 "received an empty list")
            first = mask[0]
            keras_list = (first is None or (isinstance(first, (torch.Tensor, np.ndarray)) and first.ndim >= 2)) \
                and all(m is None for m in mask[1:])
            if keras_list:
                mask = first
                if mask is None:
                    return None
        m = as_tensor(mask, "mask")
        expected = (T, B) if self.time_major else (B, T)
        if m.dim() == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        check_shape(m, expected, "mask", " ((time, batch) with time_major)" if self.time_major else " (batch, time)")
        m = m != 0
        return m if self.time_major else m.t()

    def split_inputs(self, inputs: Any, initial_state: Any, n_states: int = 2) -> Tuple[Any, Any]:
        """tf_keras's ``layer([x, *states])`` form: the inputs list carries the initial states
        (Keras 3 refuses it). A nested Python list of numbers is data, not this form."""
        if not (isinstance(inputs, (list, tuple)) and len(inputs) > 1
                and isinstance(inputs[0], (torch.Tensor, np.ndarray))):
            return inputs, initial_state
        if self.keras_version >= 3:
            raise ValueError(f"Layer {self.name!r} expects 1 input(s), but it received {len(inputs)} input "
                             "tensors (pass the states as initial_state=...)")
        if initial_state is not None:
            raise ValueError(f"layer {self.name!r} received initial states both in the inputs list and as "
                             "initial_state; pass them once")
        if len(inputs) != 1 + n_states:
            raise ValueError(f"layer {self.name!r} expects the inputs list [x, {n_states} initial states]; "
                             f"received {len(inputs)} tensors")
        return inputs[0], list(inputs[1:])

    def _as_input(self, inputs: Any) -> torch.Tensor:
        """The input as a float tensor of the layer's dtype (Keras 3 casts integers; tf_keras refuses)."""
        kernel = self.cell.kernel
        dtype = kernel.dtype if kernel is not None else self.cell.dtype_
        if self.keras_version >= 3 and not isinstance(inputs, (torch.Tensor, np.ndarray)) and \
                isinstance(inputs, (list, tuple, int, float)):
            inputs = np.asarray(inputs)
        t = as_tensor(inputs, "inputs")
        if t.is_meta:
            raise ValueError(f"Input 0 of layer {self.name!r}: x is a meta tensor (shape {tuple(t.shape)}, no "
                             "data); expected a tensor with values")
        if self.keras_version >= 3 and not (t.is_floating_point() or t.is_complex()):
            return t.to(dtype)  # Keras 3 casts integer and bool inputs to the layer's float dtype
        if not t.is_floating_point():
            raise TypeError(f"Input 0 of layer {self.name!r} must have a floating dtype (float16/32/64); received "
                            f"{t.dtype} (tf_keras refuses integer inputs: cannot compute MatMul as input #1 was "
                            "expected to be an int tensor but is a float tensor; Keras 3 casts them: "
                            "keras_version=3)")
        return as_float(t, "inputs", dtype)

    def prepare(self, inputs: Any, mask: Any = None, training: Optional[bool] = None,
                initial_state: Any = None) -> LayerCall:
        """Check and translate one call's Keras arguments (as :meth:`forward` takes them) into the
        engine's terms; builds the layer on its first call."""
        inputs, initial_state = self.split_inputs(inputs, initial_state)
        x = self._as_input(inputs)
        if x.dim() != 3:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected ndim=3 "
                             f"(batch, time, features), found ndim={x.dim()}; full shape received: {tuple(x.shape)}")
        if not self.built:
            self.build(tuple(x.shape))
        self.cell._ensure_built(x.shape[-1])
        xt = x if self.time_major else x.transpose(0, 1)  # (T, B, F)
        T, B = xt.shape[0], xt.shape[1]
        if T == 0:
            raise ValueError(f"layer {self.name!r} received an input with 0 time steps; at least 1 is required")
        with allocation_errors(f"layer {self.name!r}: initial states of shape ({B}, {self.units})"):
            h0, c0 = self._initial_state(initial_state, B, xt)
        valid = self._valid_steps(mask, T, B)
        drop = self.cell.dropout_masks(B, xt, self.cell.resolve_training(training))
        # Keras's unrolled loop zeroes the processing-order outputs with the *un-reversed* mask when
        # go_backwards and zero_output_for_mask meet (Bidirectional + mask + unroll; spec keras §6).
        unroll_quirk = self.unroll and self.go_backwards and self.zero_output_for_mask and valid is not None
        rule = MaskedOutput.ZERO if self.zero_output_for_mask and not unroll_quirk else MaskedOutput.CARRY
        return LayerCall(xt, h0, c0, valid, drop, LayerSemantics(self.cell.cell_activations(), rule), unroll_quirk)

    # --- the runner interface (Bidirectional drives its two layers through it) ----------------------
    def run(self, call: LayerCall) -> DirectionRun:
        """The engine's pass over one prepared call (no Keras conventions yet): ``seq`` the ``(T, B, u)``
        outputs in original time order, ``h``/``c`` the final ``(B, u)`` states."""
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
        if self.stateful:
            self.states = [h.detach(), c.detach()]
            self._batch_size = B
        results = [output, *_outputs.state_list([h], [c])] if self.return_state else [output]
        self._activity_losses = []
        if self.activity_regularizer is not None:
            self._activity_losses = [self.activity_regularizer(r) / B for r in results]
        if not self.return_state:
            return output
        return _outputs.pack(results, self.keras_version)

    def forward(self, inputs: Any, mask: Any = None, training: Optional[bool] = None,
                initial_state: Any = None) -> Output:
        """Run the layer; see the class docstring for shapes and conventions."""
        call = self.prepare(inputs, mask, training, initial_state)
        return self.finish(call, self.run(call))


def run_directions(layers: Sequence[LSTM], calls: Sequence[LayerCall], where: str) -> List[DirectionRun]:
    """Run layers prepared (:meth:`LSTM.prepare`) on the same inputs and mask - ``Bidirectional``'s two
    halves, or one layer - in one engine call when they share their semantics (oneDNN's bidirectional
    LSTM, or the directions side by side in the native kernel), else each on its own. ``where`` names
    the caller in memory errors."""
    first = calls[0]
    if first.xt.shape[1] == 0:  # an empty batch: Keras returns empty outputs of the right shapes
        return [DirectionRun(c.h0.new_zeros(c.xt.shape[0], 0, layer.units), c.h0, c.c0)
                for layer, c in zip(layers, calls)]
    if len(calls) > 1 and any(c.semantics != first.semantics or c.unroll_quirk for c in calls):
        return [layer.run(call) for layer, call in zip(layers, calls)]
    with allocation_errors(f"{where} on input shape {tuple(first.xt.shape)} (time, batch, features) with "
                           f"units={layers[0].units}"):
        outs, hs, cs = run_layer(first.xt, [layer.cell.direction_weights() for layer in layers],
                                 [c.h0 for c in calls], [c.c0 for c in calls],
                                 reverse=[layer.go_backwards for layer in layers], valid=first.valid,
                                 semantics=first.semantics, dropout=[c.dropout for c in calls])
    return [DirectionRun(o, h, c) for o, h, c in zip(outs, hs, cs)]


class LayerCall(NamedTuple):
    """One prepared call (:meth:`LSTM.prepare`): time-major input ``xt (T, B, F)``, initial state
    ``h0``/``c0 (B, u)``, step mask ``valid (T, B)`` (None: every step), dropout masks, the engine
    semantics, and whether Keras's unrolled-loop masking quirk applies (spec keras §6)."""

    xt: torch.Tensor
    h0: torch.Tensor
    c0: torch.Tensor
    valid: Optional[torch.Tensor]
    dropout: Optional[DropoutMasks]
    semantics: LayerSemantics
    unroll_quirk: bool


class DirectionRun(NamedTuple):
    """:meth:`LSTM.run`'s result: ``seq (T, B, u)`` in original time order, final ``h``, ``c (B, u)``."""

    seq: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
