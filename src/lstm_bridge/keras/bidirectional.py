"""``Bidirectional``: Keras's wrapper, composing a forward and a backward recurrent layer - ``LSTM``,
``GRU`` or ``SimpleRNN`` (docs/spec/keras_lstm.md §6, docs/spec/keras_gru_simplernn.md §6).

* ``forward_layer`` is a config copy of the wrapped layer named ``forward_<name>``; ``backward_layer``
  a copy with ``go_backwards`` flipped named ``backward_<name>`` (or the ``backward_layer`` given).
  Weights are fresh.
* Both get ``zero_output_for_mask = return_sequences``; the backward sequence is flipped back along
  time (a plain full reverse) so position t lines up with ``x[t]``.
* ``merge_mode``: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (a list
  ``[y_f, y_b]``).
* ``return_state``: ``[merged, h_f, c_f, h_b, c_b]`` (``[y_f, y_b, h_f, c_f, h_b, c_b]`` for None);
  ``initial_state = [h_f, c_f, h_b, c_b]``; GRU and SimpleRNN carry h only (``[merged, h_f, h_b]``,
  ``initial_state = [h_f, h_b]``); ``get_weights()`` = forward's then backward's.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence, Type, cast

import numpy as np
import torch

from ..engine import CellKind, callplan as _callplan, trainplan as _trainplan
from . import outputs as _outputs
from .cell import config_keras_version, unique_name
from .layer import GRU, LSTM, LayerCall, Output, Recurrent, SimpleRNN, run_directions

# The class a nested layer config names (Keras's "class_name").
_CLASSES: Dict[str, Type[Recurrent]] = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}


class Bidirectional(torch.nn.Module):
    """Keras ``Bidirectional(layer, merge_mode='concat', weights=None, backward_layer=None)`` over
    :class:`LSTM`, :class:`GRU` or :class:`SimpleRNN` layers (Keras's positional order; the backward layer
    must be of the wrapped layer's cell kind).

    The wrapped layer's ``keras_version`` picks the generation's rules: tf_keras (2) names a custom
    backward layer ``backward_<name>``, takes ``trainable`` from the wrapped layer and nests the original
    layer's config in ``get_config()``; Keras 3 keeps a custom backward layer's name and nests the forward
    and backward layers' configs. ``weights`` (forward's then backward's) are set when the layer is built
    (real Keras stores them on an attribute it never reads; here they are applied).
    """

    def __init__(
        self,
        layer: Recurrent,
        merge_mode: Optional[str] = "concat",
        weights: Optional[Sequence[Any]] = None,
        backward_layer: Optional[Recurrent] = None,
        **kwargs: Any,
    ):
        super().__init__()
        if not isinstance(layer, Recurrent):
            raise ValueError(
                "Please initialize `Bidirectional` layer with a `lstm_bridge.keras` recurrent layer "
                f"(LSTM, GRU, SimpleRNN) instance. Received: {type(layer).__name__}"
            )
        if backward_layer is not None and not isinstance(backward_layer, Recurrent):
            raise ValueError(
                "`backward_layer` need to be a `lstm_bridge.keras` recurrent layer (LSTM, GRU, "
                f"SimpleRNN) instance. Received: {type(backward_layer).__name__}"
            )
        if backward_layer is not None and backward_layer.kind is not layer.kind:
            raise ValueError(
                f"`backward_layer` must have the forward layer's cell kind; expected a "
                f"{layer.kind.value} layer (like {type(layer).__name__}), received "
                f"{type(backward_layer).__name__}"
            )
        _outputs.check_merge_mode(merge_mode)
        unknown = set(kwargs) - {"name", "trainable", "dtype", "input_shape", "batch_input_shape"}
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to Bidirectional: {sorted(unknown)}")
        self.keras_version = layer.keras_version
        self.name = kwargs.get("name") or unique_name("bidirectional")
        self.merge_mode = merge_mode
        # Keras's `layer` attribute: the instance passed in (kept out of the module tree: its
        # weights are not the wrapper's).
        object.__setattr__(self, "layer", layer)
        self._layer_config = layer.get_config()
        self._backward_config = backward_layer.get_config() if backward_layer is not None else None
        k3 = self.keras_version >= 3
        # TK semantics: a wrapped layer with go_backwards=True makes the "forward" layer run backwards.
        self.forward_layer = self._recreate(layer, go_backwards=None, prefix="forward_", strip=k3)
        if backward_layer is None:
            self.backward_layer = self._recreate(
                layer, go_backwards=not layer.go_backwards, prefix="backward_", strip=k3
            )
        else:
            # tf_keras names a custom backward layer backward_<name>; Keras 3 keeps its name.
            self.backward_layer = self._recreate(
                backward_layer, go_backwards=None, prefix="" if k3 else "backward_", strip=False
            )
        self._check_backward(self.forward_layer, self.backward_layer)
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.time_major = layer.time_major
        self.stateful = layer.stateful
        # tf_keras takes `trainable` from the wrapped layer unless given; Keras 3 defaults to True (the
        # sublayers keep their own flag either way).
        self._trainable = bool(kwargs.get("trainable", True if k3 else layer.trainable))
        if not self._trainable:
            self.trainable = False
        self._initial_weights = None if not weights else list(weights)
        shape = kwargs.get("batch_input_shape")
        if shape is None and kwargs.get("input_shape") is not None:
            shape = (None,) + tuple(kwargs["input_shape"])
        if shape is not None or (self._initial_weights is not None and self.built):
            self.build(shape if shape is not None else (None, None, self.forward_layer.cell.input_dim))
        self.train(False)

    @staticmethod
    def _recreate(layer: Recurrent, go_backwards: Optional[bool], prefix: str, strip: bool) -> Recurrent:
        config = layer.get_config()
        name = config["name"]
        if strip and name.startswith(prefix):  # Keras 3: forward_<name> without doubling the prefix
            name = name[len(prefix) :]
        config["name"] = prefix + name
        if go_backwards is not None:
            config["go_backwards"] = go_backwards
        config.pop("weights", None)
        copy_ = cast(Recurrent, type(layer).from_config(config, keras_version=layer.keras_version))
        copy_.use_cudnn = layer.use_cudnn  # not serialized; Keras keeps it on both copies
        return copy_

    @staticmethod
    def _check_backward(forward: Recurrent, backward: Recurrent) -> None:
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                "Forward layer and backward layer should have different `go_backwards` value. "
                f"Received: forward_layer.go_backwards {forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}"
            )
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(forward, attr) != getattr(backward, attr):
                raise ValueError(
                    f"Forward layer and backward layer are expected to have the same value for "
                    f'attribute "{attr}", got "{getattr(forward, attr)}" for forward layer and '
                    f'"{getattr(backward, attr)}" for backward layer'
                )

    # --- weights and config ----------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.forward_layer.built and self.backward_layer.built

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            self.set_weights(weights)

    @property
    def trainable(self) -> bool:
        """Keras's ``trainable``; setting it sets both sublayers' (``requires_grad`` follows)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self.forward_layer.trainable = self._trainable
        self.backward_layer.trainable = self._trainable

    @property
    def trainable_weights(self) -> List[torch.nn.Parameter]:
        if not self._trainable:
            return []
        return self.forward_layer.trainable_weights + self.backward_layer.trainable_weights

    @property
    def non_trainable_weights(self) -> List[torch.nn.Parameter]:
        if not self._trainable:
            return self.weights
        return self.forward_layer.non_trainable_weights + self.backward_layer.non_trainable_weights

    @property
    def weights(self) -> List[torch.nn.Parameter]:
        return self.forward_layer.weights + self.backward_layer.weights

    def get_weights(self) -> List[np.ndarray]:
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def compute_output_shape(self, input_shape: Sequence[Optional[int]]) -> Any:
        """Keras's output shapes: the merged output (last axis doubled for ``concat``; two outputs for
        ``merge_mode=None``), then with return_state the four ``(B, u)`` states; lists as tf_keras
        returns them, tuples for keras_version=3."""
        shapes = self.forward_layer.compute_output_shape(input_shape)
        output, states = (shapes[0], list(shapes[1:])) if self.return_state else (shapes, [])
        merged = _outputs.merge_shapes(output, self.merge_mode)
        if not self.return_state and self.merge_mode is not None:
            return merged[0]
        result = merged + states + states
        return _outputs.pack(result, self.keras_version)

    def set_weights(self, weights: Sequence[Any]) -> None:
        weights = list(weights)
        if not weights and not self.built:
            return  # Keras: an unbuilt layer has no weights
        n_forward = 3 if self.forward_layer.cell.use_bias else 2
        n_backward = 3 if self.backward_layer.cell.use_bias else 2
        if len(weights) != n_forward + n_backward:
            raise ValueError(
                f"Bidirectional {self.name!r} expects {n_forward + n_backward} weights (forward's "
                f"{n_forward}, then backward's {n_backward}); received {len(weights)}"
            )
        self.forward_layer.set_weights(weights[:n_forward])
        self.backward_layer.set_weights(weights[n_forward:])

    @property
    def losses(self) -> List[torch.Tensor]:
        return self.forward_layer.losses + self.backward_layer.losses

    def apply_constraints(self) -> None:
        self.forward_layer.apply_constraints()
        self.backward_layer.apply_constraints()

    def reset_states(self, states: Optional[Sequence[Any]] = None) -> None:
        """Stateful layers: zero both directions' states, or set them to ``[h_f, c_f, h_b, c_b]`` (LSTM) /
        ``[h_f, h_b]`` (GRU, SimpleRNN)."""
        if not self.stateful:
            if self.keras_version >= 3 and states is None:
                return
            raise AttributeError(
                "Layer must be stateful (construct the wrapped layer with stateful=True) to reset its states"
            )
        if states is not None and not isinstance(states, (list, tuple)):
            raise ValueError(
                "Unrecognized value for `states`. Expected `states` to be list or tuple of "
                f"[h_f, c_f, h_b, c_b]; received {type(states).__name__}"
            )
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        n = self.forward_layer.cell.n_states
        if len(states) != 2 * n:
            raise ValueError(f"Bidirectional.reset_states expects {self._states_text()}; received {len(states)} values")
        self.forward_layer.reset_states(states[:n])
        self.backward_layer.reset_states(states[n:])

    def _states_text(self) -> str:
        return "[h_f, c_f, h_b, c_b]" if self.forward_layer.cell.n_states == 2 else "[h_f, h_b]"

    reset_state = reset_states

    def get_config(self) -> Dict[str, Any]:
        """Keras's config: each wrapped layer nested as ``{"module", "class_name", "config",
        "registered_name"}``. tf_keras: the original layer's config, and ``backward_layer`` only when one was
        given; Keras 3: the forward layer's config and always ``backward_layer``."""
        class_name = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}[self.forward_layer.kind.value]

        def nest(config: Dict[str, Any]) -> Dict[str, Any]:
            return {"module": "keras.layers", "class_name": class_name, "config": dict(config), "registered_name": None}

        base = {"name": self.name, "trainable": self.trainable, "dtype": self._layer_config.get("dtype")}
        if self.keras_version >= 3:
            return {
                **base,
                "merge_mode": self.merge_mode,
                "layer": nest(self.forward_layer.get_config()),
                "backward_layer": nest(self.backward_layer.get_config()),
            }
        config = {**base, "layer": nest(self._layer_config), "merge_mode": self.merge_mode}
        if self._backward_config is not None:
            config["backward_layer"] = nest(self._backward_config)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> Bidirectional:
        config = dict(config)
        layer_cfg = config.pop("layer")
        layer_cls: Type[Recurrent] = LSTM
        if isinstance(layer_cfg, dict) and "config" in layer_cfg and "class_name" in layer_cfg:
            # the {"class_name": "LSTM" | "GRU" | "SimpleRNN", "config": {...}} form in Keras files
            layer_cls = _layer_class(layer_cfg["class_name"])
            layer_cfg = layer_cfg["config"]
        keras_version = keras_version or config_keras_version(layer_cfg)
        layer = layer_cls.from_config(layer_cfg, keras_version)
        backward = config.pop("backward_layer", None)
        backward_cls = layer_cls
        if isinstance(backward, dict) and "config" in backward and "class_name" in backward:
            backward_cls = _layer_class(backward["class_name"])
            backward = backward["config"]
        backward_layer = backward_cls.from_config(backward, keras_version) if backward is not None else None
        config.pop("dtype", None)
        return cls(
            layer,
            merge_mode=config.pop("merge_mode", "concat"),
            backward_layer=backward_layer,
            **{k: v for k, v in config.items() if k in ("name", "trainable")},
        )

    def __deepcopy__(self, memo: Dict[int, Any]) -> Bidirectional:
        # `layer` lives outside the module tree; copy it along with everything else.
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new

    # --- call ------------------------------------------------------------------------------------
    def forward(
        self, inputs: Any, mask: Any = None, training: Optional[bool] = None, initial_state: Any = None
    ) -> Output:
        """Run both directions on the same inputs and mask; see the module docstring for the returns."""
        if initial_state is None and type(inputs) is torch.Tensor:
            if _callplan.plannable():
                return self._planned(inputs, mask, training)
            if _trainplan.plannable():
                return self._planned_training(inputs, mask, training)
        return self._forward(inputs, mask, training, initial_state)

    def _apply(self, *args: Any, **kwargs: Any) -> Any:
        """``Module._apply`` (``.to``, ``.double()``, ...), forgetting the call plans first (as
        :meth:`Recurrent._apply`)."""
        self.__dict__.pop("_call_plan", None)
        self.__dict__.pop("_train_plan", None)
        return super()._apply(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _planned_training(self, x: torch.Tensor, mask: Any, training: Optional[bool]) -> Output:
        """A recorded (grad mode) call through the wrapper's cached training plan
        (:mod:`lstm_bridge.engine.trainplan`, as :meth:`Recurrent._planned_training`): the first call of a
        signature runs both layers' full paths and plans the next ones, which draw the forward layer's and
        then the backward layer's dropout masks (the full path's order) and run both directions in one
        call of the kernel's autograd Function."""
        modules = self._modules  # (not Module.__getattr__: ~0.5-0.9 us a name on every call)
        fw, bw = cast(Recurrent, modules["forward_layer"]), cast(Recurrent, modules["backward_layer"])
        f_planned, b_planned = fw.planned_weights(training), bw.planned_weights(training)
        if self._initial_weights is not None or f_planned is None or b_planned is None:
            return self._forward(x, mask, training, None)
        f_cell, b_cell = fw.cell, bw.cell
        params = fw.plan_parameters() + bw.plan_parameters()
        key = (
            _callplan.signature(x),
            x.requires_grad,
            mask is None,
            f_planned[1],
            b_planned[1],
            *params,
            *[p is not None and p.requires_grad for p in params],
        )
        slot = self.__dict__.get("_train_plan")
        if slot is None:
            slot = self.__dict__["_train_plan"] = _callplan.PlanSlot()  # (copies and pickles start empty)
        cached = slot.entry
        if cached is None or not _trainplan.same_key(cached[0], key):
            f_call, b_call = fw.prepare(x, mask, training), bw.prepare(x, mask, training)  # (what _forward does)
            f_run, b_run = run_directions([fw, bw], [f_call, b_call], f"Bidirectional {self.name!r}")
            result = self._combine(fw.finish(f_call, f_run), bw.finish(b_call, b_run))
            plan = None
            if (
                f_cell.kind is CellKind.LSTM
                and not (f_call.unroll_quirk or b_call.unroll_quirk)
                and f_call.semantics == b_call.semantics
                and (mask is None) == (f_call.valid is None)
                and f_call.xt.shape[1] > 0
                and x.dtype == f_call.xt.dtype
            ):
                plan = _trainplan.plan_training_layer(
                    f_call.xt, [f_planned[0], b_planned[0]], [f_call.h0, b_call.h0],
                    [cast(torch.Tensor, f_call.c0), cast(torch.Tensor, b_call.c0)],
                    reverse=[fw.go_backwards, bw.go_backwards], valid=f_call.valid, semantics=f_call.semantics,
                    dropout=[f_call.dropout, b_call.dropout],
                )  # fmt: skip
            slot.entry = (key, plan, [f_call.h0, b_call.h0], [f_call.c0, b_call.c0])
            return result
        plan = cached[1]
        if plan is None:
            return self._forward(x, mask, training, None)
        xt = x if self.time_major else x.transpose(0, 1)
        T, B = xt.shape[0], xt.shape[1]
        valid = None if mask is None else fw.valid_steps(mask, T, B)
        drops = [f_cell.dropout_masks(B, xt, f_planned[1]), b_cell.dropout_masks(B, xt, b_planned[1])]
        outs, hs, cs = plan.run(xt, [f_planned[0], b_planned[0]], cached[2], cached[3], valid, drops)
        if self._concat_planned(fw, bw):
            fw.clear_losses()  # (what planned_output does for each layer)
            bw.clear_losses()
            return self._concat_time_aligned(outs[0], outs[1])
        f_out = fw.planned_output(outs[0], hs[0], cs[0])
        b_out = bw.planned_output(outs[1], hs[1], cs[1])
        return self._combine(f_out, b_out)

    def _planned(self, x: torch.Tensor, mask: Any, training: Optional[bool]) -> Output:
        """An inference call through the wrapper's cached call plan (:mod:`lstm_bridge.engine.callplan`, as
        :meth:`Recurrent._planned`): the first call of a signature runs both layers' full paths (every check,
        as :meth:`_forward`) and plans the next ones, which run both directions in one planned engine call;
        with dropout (``training=True``) they draw the forward layer's and then the backward layer's masks
        (the full path's order) and hand them to the plan."""
        modules = self._modules  # (not Module.__getattr__: ~0.5-0.9 us a name on every call)
        fw, bw = cast(Recurrent, modules["forward_layer"]), cast(Recurrent, modules["backward_layer"])
        f_planned, b_planned = fw.planned_weights(training), bw.planned_weights(training)
        if self._initial_weights is not None or f_planned is None or b_planned is None:
            return self._forward(x, mask, training, None)
        weights = [f_planned[0], b_planned[0]]
        f_train, b_train = f_planned[1], b_planned[1]
        drops = (f_train, b_train, fw.dropout_key(f_train), bw.dropout_key(b_train))
        key = (_callplan.signature(x), mask is None, drops, id(weights[0]), id(weights[1]))
        slot = self.__dict__.get("_call_plan") or _callplan.PlanSlot.of(self)
        cached = slot.entry
        if cached is None or cached[0] != key:
            calls = [fw.prepare(x, mask, training), bw.prepare(x, mask, training)]  # (what _forward does)
            f_run, b_run = run_directions([fw, bw], calls, f"Bidirectional {self.name!r}")
            result = self._combine(fw.finish(calls[0], f_run), bw.finish(calls[1], b_run))
            slot.entry = (key, self._plan(x, mask, calls, weights), weights)
            return result
        if cached[1] is None:
            return self._forward(x, mask, training, None)
        plan, h0, c0 = cached[1]
        xt = x if self.time_major else x.transpose(0, 1)
        valid = None if mask is None else fw.valid_steps(mask, xt.shape[0], xt.shape[1])
        if plan.masked:  # (the key's dropout options give the planned masks' form)
            B = xt.shape[1]
            masks = [fw.draw_dropout_masks(B, xt, f_train), bw.draw_dropout_masks(B, xt, b_train)]
            outs, hs, cs = plan.run(xt, weights, h0, c0, valid, masks)
        else:
            outs, hs, cs = plan.run(xt, weights, h0, c0, valid)
        if self._concat_planned(fw, bw):
            fw.clear_losses()  # (what planned_output does for each layer)
            bw.clear_losses()
            return self._concat_time_aligned(outs[0], outs[1])
        lstm = bool(cs)
        f_out = fw.planned_output(outs[0], hs[0], cs[0] if lstm else None)
        b_out = bw.planned_output(outs[1], hs[1], cs[1] if lstm else None)
        return self._combine(f_out, b_out)

    def _concat_planned(self, fw: Recurrent, bw: Recurrent) -> bool:
        """Whether a planned call's return is the ``concat`` of the two time-aligned sequences alone
        (:meth:`_concat_time_aligned`): no states, the usual directions."""
        return (
            self.merge_mode == "concat"
            and self.return_sequences
            and not self.return_state
            and not fw.go_backwards
            and bw.go_backwards
        )

    def _concat_time_aligned(self, y_f: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
        """The planned ``merge_mode="concat"`` sequence output straight from the engine's time-aligned
        ``(T, B, u)`` halves: the backward layer's flip to processing order and the wrapper's flip back
        cancel, so neither is made; halves that are already the two sides of one ``(T, B, 2u)`` tensor
        (oneDNN's bidirectional call) are returned as that tensor, without the concatenation's copy."""
        T, B, u = y_f.shape
        stride = y_f.stride()
        if (
            y_b.shape == y_f.shape
            and y_b.stride() == stride
            and stride == (B * 2 * u, 2 * u, 1)
            and y_f.untyped_storage().data_ptr() == y_b.untyped_storage().data_ptr()
            and y_b.storage_offset() == y_f.storage_offset() + u
        ):  # (the two column halves of one (T, B, 2u) tensor: that tensor, as a view)
            merged = y_f.as_strided((T, B, 2 * u), stride, y_f.storage_offset())
        else:
            merged = torch.cat([y_f, y_b], dim=-1)
        return merged if self.time_major else merged.transpose(0, 1)

    def _plan(self, x: torch.Tensor, mask: Any, calls: List[LayerCall], weights: List[Any]) -> Any:
        """The plan of a signature whose prepared ``calls`` (forward, backward) have just run (None: run the
        full path): both directions in one engine call, with their zero initial states; a masked plan
        (:class:`~lstm_bridge.engine.callplan.LayerPlan`) where the calls have dropout masks."""
        fw, bw = self.forward_layer, self.backward_layer
        f_call = calls[0]
        if (
            fw.cell.kind is not CellKind.LSTM
            or any(c.unroll_quirk or c.semantics != f_call.semantics for c in calls)
            or (mask is None) != (f_call.valid is None)
            or f_call.xt.shape[1] == 0
            or x.dtype != f_call.xt.dtype
        ):
            return None
        h0 = [c.h0 for c in calls]
        c0 = [cast(torch.Tensor, c.c0) for c in calls]
        plan = _callplan.plan_layer(
            f_call.xt, weights, h0, c0, reverse=[fw.go_backwards, bw.go_backwards], valid=f_call.valid,
            semantics=f_call.semantics, dropout=[c.dropout for c in calls],
        )  # fmt: skip
        return None if plan is None else (plan, h0, c0)

    def _forward(self, inputs: Any, mask: Any, training: Optional[bool], initial_state: Any) -> Output:
        n = self.forward_layer.cell.n_states
        inputs, initial_state = self.forward_layer.split_inputs(inputs, initial_state, n_states=2 * n)
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2 * n:
                got = len(initial_state) if isinstance(initial_state, (list, tuple)) else type(initial_state).__name__
                raise ValueError(f"Bidirectional initial_state must be {self._states_text()}; received {got}")
            forward_state, backward_state = list(initial_state[:n]), list(initial_state[n:])
        fw, bw = self.forward_layer, self.backward_layer
        f_call = fw.prepare(inputs, mask, training, forward_state)
        b_call = bw.prepare(inputs, mask, training, backward_state)
        if self._initial_weights is not None:  # weights= given at construction: set once built
            weights, self._initial_weights = self._initial_weights, None
            self.set_weights(weights)
        # one engine call for both directions where their semantics agree
        f_run, b_run = run_directions([fw, bw], [f_call, b_call], f"Bidirectional {self.name!r}")
        return self._combine(fw.finish(f_call, f_run), bw.finish(b_call, b_run))

    def _combine(self, f_out: Output, b_out: Output) -> Output:
        """The wrapper's returns from its two layers' returns: the merged outputs, then the states."""
        n = cast(Recurrent, self._modules["forward_layer"]).state_count  # (no Module.__getattr__: every call)
        states: List[torch.Tensor] = []
        if isinstance(f_out, torch.Tensor) and isinstance(b_out, torch.Tensor):  # no return_state
            y_f, y_b = f_out, b_out
        else:  # return_state: each layer returned [output, h, c] (LSTM) or [output, h]
            states = _outputs.state_list([f_out[1], b_out[1]], [f_out[2], b_out[2]] if n == 2 else None)
            y_f, y_b = f_out[0], b_out[0]
        if self.return_sequences:
            y_b = _outputs.flip_back(y_b, 0 if self.time_major else 1)
        merged = _outputs.merge(y_f, y_b, self.merge_mode)
        if not self.return_state and self.merge_mode is not None:
            return merged[0]
        return _outputs.pack(merged + states, self.keras_version)


def _layer_class(class_name: Any) -> Type[Recurrent]:
    """The layer class a nested Keras config names (``LSTM``, ``GRU``, ``SimpleRNN``)."""
    if class_name not in _CLASSES:
        raise ValueError(
            f"Bidirectional wraps a recurrent layer: expected class_name one of {sorted(_CLASSES)}; "
            f"received {class_name!r}"
        )
    return _CLASSES[class_name]
