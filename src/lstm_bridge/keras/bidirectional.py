"""``Bidirectional``: Keras's wrapper, composing a forward and a backward :class:`LSTM` (spec keras §6).

* ``forward_layer`` is a config copy of the wrapped layer named ``forward_<name>``; ``backward_layer``
  a copy with ``go_backwards`` flipped named ``backward_<name>`` (or the ``backward_layer`` given).
  Weights are fresh.
* Both get ``zero_output_for_mask = return_sequences``; the backward sequence is flipped back along
  time (a plain full reverse) so position t lines up with ``x[t]``.
* ``merge_mode``: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (a list
  ``[y_f, y_b]``).
* ``return_state``: ``[merged, h_f, c_f, h_b, c_b]`` (``[y_f, y_b, h_f, c_f, h_b, c_b]`` for None);
  ``initial_state = [h_f, c_f, h_b, c_b]``; ``get_weights()`` = forward's then backward's.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..engine import run_layer
from .cell import unique_name
from .layer import LSTM

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(torch.nn.Module):
    """Keras ``Bidirectional(layer, merge_mode='concat', backward_layer=None)`` over :class:`LSTM` layers."""

    def __init__(self, layer: LSTM, merge_mode: Optional[str] = "concat", backward_layer: Optional[LSTM] = None,
                 **kwargs: Any):
        super().__init__()
        if not isinstance(layer, LSTM):
            raise ValueError(f"Bidirectional expects an lstm_bridge.keras.LSTM layer; received {type(layer).__name__}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode!r}. "
                             f"Merge mode should be one of {{'sum', 'mul', 'ave', 'concat', None}}")
        unknown = set(kwargs) - {"name", "trainable", "dtype", "weights", "input_shape"}
        if unknown:
            raise TypeError(f"Unrecognized keyword arguments passed to Bidirectional: {sorted(unknown)}")
        self.name = kwargs.get("name") or unique_name("bidirectional")
        self.merge_mode = merge_mode
        self._layer_config = layer.get_config()
        self._backward_config = backward_layer.get_config() if backward_layer is not None else None
        # TK semantics: a wrapped layer with go_backwards=True makes the "forward" layer run backwards.
        self.forward_layer = self._recreate(layer, go_backwards=None, prefix="forward_")
        if backward_layer is None:
            self.backward_layer = self._recreate(layer, go_backwards=not layer.go_backwards, prefix="backward_")
        else:
            self._check_backward(layer, backward_layer)
            self.backward_layer = self._recreate(backward_layer, go_backwards=None, prefix="")
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.time_major = layer.time_major
        self.stateful = layer.stateful
        if kwargs.get("weights") is not None:
            self.set_weights(kwargs["weights"])
        self.train(False)

    @staticmethod
    def _recreate(layer: LSTM, go_backwards: Optional[bool], prefix: str) -> LSTM:
        config = layer.get_config()
        config["name"] = prefix + config["name"]
        if go_backwards is not None:
            config["go_backwards"] = go_backwards
        return type(layer).from_config(config, keras_version=layer.keras_version)

    @staticmethod
    def _check_backward(layer: LSTM, backward: LSTM) -> None:
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(layer, attr) != getattr(backward, attr):
                raise ValueError(f"Forward layer and backward layer should have the same {attr}: forward "
                                 f"{getattr(layer, attr)}, backward {getattr(backward, attr)}")
        if layer.go_backwards == backward.go_backwards:
            raise ValueError("Forward layer and backward layer should have different go_backwards values; both "
                             f"have go_backwards={layer.go_backwards}")

    # --- weights and config ----------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.forward_layer.built and self.backward_layer.built

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    @property
    def trainable_weights(self) -> List[torch.nn.Parameter]:
        return self.forward_layer.trainable_weights + self.backward_layer.trainable_weights

    @property
    def weights(self) -> List[torch.nn.Parameter]:
        return self.trainable_weights

    def get_weights(self) -> List[np.ndarray]:
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def set_weights(self, weights: Sequence[Any]) -> None:
        weights = list(weights)
        n_forward = 3 if self.forward_layer.cell.use_bias else 2
        n_backward = 3 if self.backward_layer.cell.use_bias else 2
        if len(weights) != n_forward + n_backward:
            raise ValueError(f"Bidirectional {self.name!r} expects {n_forward + n_backward} weights (forward's "
                             f"{n_forward}, then backward's {n_backward}); received {len(weights)}")
        self.forward_layer.set_weights(weights[:n_forward])
        self.backward_layer.set_weights(weights[n_forward:])

    @property
    def losses(self) -> List[torch.Tensor]:
        return self.forward_layer.losses + self.backward_layer.losses

    def apply_constraints(self) -> None:
        self.forward_layer.apply_constraints()
        self.backward_layer.apply_constraints()

    def reset_states(self, states: Optional[Sequence[Any]] = None) -> None:
        if states is None:
            self.forward_layer.reset_states()
            self.backward_layer.reset_states()
            return
        if len(states) != 4:
            raise ValueError(f"Bidirectional.reset_states expects [h_f, c_f, h_b, c_b]; received {len(states)} values")
        self.forward_layer.reset_states(states[:2])
        self.backward_layer.reset_states(states[2:])

    reset_state = reset_states

    def get_config(self) -> Dict[str, Any]:
        config = {"name": self.name, "trainable": True, "layer": dict(self._layer_config),
                  "merge_mode": self.merge_mode}
        if self._backward_config is not None:
            config["backward_layer"] = dict(self._backward_config)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> "Bidirectional":
        config = dict(config)
        layer_cfg = config.pop("layer")
        if isinstance(layer_cfg, dict) and "config" in layer_cfg and "class_name" in layer_cfg:
            layer_cfg = layer_cfg["config"]  # the {"class_name": "LSTM", "config": {...}} form in Keras files
        layer = LSTM.from_config(layer_cfg, keras_version)
        backward = config.pop("backward_layer", None)
        if isinstance(backward, dict) and "config" in backward and "class_name" in backward:
            backward = backward["config"]
        backward_layer = LSTM.from_config(backward, keras_version) if backward is not None else None
        config.pop("dtype", None)
        return cls(layer, merge_mode=config.pop("merge_mode", "concat"), backward_layer=backward_layer,
                   **{k: v for k, v in config.items() if k in ("name", "trainable")})

    # --- call ------------------------------------------------------------------------------------
    def _merge(self, y_f: torch.Tensor, y_b: torch.Tensor):
        if self.merge_mode == "concat":
            return torch.cat([y_f, y_b], dim=-1)
        if self.merge_mode == "sum":
            return y_f + y_b
        if self.merge_mode == "mul":
            return y_f * y_b
        if self.merge_mode == "ave":
            return (y_f + y_b) / 2
        return [y_f, y_b]

    def forward(self, inputs: Any, mask: Any = None, training: Optional[bool] = None,
                initial_state: Any = None):
        """Run both directions on the same inputs and mask; see the module docstring for the returns."""
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 4:
                got = len(initial_state) if isinstance(initial_state, (list, tuple)) else type(initial_state).__name__
                raise ValueError(f"Bidirectional initial_state must be [h_f, c_f, h_b, c_b]; received {got}")
            forward_state, backward_state = list(initial_state[:2]), list(initial_state[2:])
        fw, bw = self.forward_layer, self.backward_layer
        f_call = fw._prepare(inputs, mask, training, forward_state)
        b_call = bw._prepare(inputs, mask, training, backward_state)
        if f_call.semantics == b_call.semantics and not (f_call.unroll_quirk or b_call.unroll_quirk):
            # one engine call for both directions (oneDNN's bidirectional LSTM, or both directions
            # side by side in the native kernel)
            outs, hs, cs = run_layer(f_call.xt, [fw.cell.direction_weights(), bw.cell.direction_weights()],
                                     [f_call.h0, b_call.h0], [f_call.c0, b_call.c0],
                                     reverse=[fw.go_backwards, bw.go_backwards], valid=f_call.valid,
                                     semantics=f_call.semantics, dropout=[f_call.dropout, b_call.dropout])
            y_f = fw._finish(f_call, outs[0], hs[0], cs[0])
            y_b = bw._finish(b_call, outs[1], hs[1], cs[1])
        else:
            y_f, y_b = fw._run(f_call), bw._run(b_call)
        states: List[torch.Tensor] = []
        if self.return_state:
            states = list(y_f[1:]) + list(y_b[1:])
            y_f, y_b = y_f[0], y_b[0]
        if self.return_sequences:
            y_b = y_b.flip(0 if self.time_major else 1)
        merged = self._merge(y_f, y_b)
        if self.return_state:
            return (merged if isinstance(merged, list) else [merged]) + states
        return merged
