"""``TimeDistributed(layer)``: the inner layer applied to every time step, as one call on the
``(B * T, ...)`` reshaped input (the inner layer's ``training`` passed on; its weights are the wrapper's:
``layer.weight``, ...). The inner layer receives no mask (the catalogue's layers compute the same without it
on the steps Keras would pass).

Output mask: Keras 3 passes the input mask through; tf_keras asks the inner layer's ``compute_mask`` on the
reshaped input and mask, and reduces what comes back to ``(B, T)`` with ``any`` (the input mask when the
inner layer gives None).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .base import KerasLayer, WeightSlot

__all__ = ["TimeDistributed"]


def _reduce(mask: torch.Tensor) -> torch.Tensor:
    while mask.dim() > 2:
        mask = torch.any(mask, dim=-1)
    return mask


class TimeDistributed(KerasLayer):
    keras_class = "TimeDistributed"

    def __init__(self, layer: Union[Dict[str, Any], torch.nn.Module], **config: Any):
        gen = int(config.get("keras_version", 3))
        super().__init__(**config)
        if isinstance(layer, dict):
            from .catalogue import layer_from_config

            layer = layer_from_config(layer, gen, f"TimeDistributed {self.name!r}")
        if not isinstance(layer, torch.nn.Module):
            raise ValueError(f"TimeDistributed {self.name!r}: expected a layer; received {type(layer).__name__}")
        self.layer: Any = layer

    def keras_weight_slots(self) -> List[WeightSlot]:
        slots = self.layer.keras_weight_slots()
        return [WeightSlot((n, t and self.keras_trainable)) for n, t in slots]

    def load_keras_weights(self, arrays: Sequence[Any]) -> None:
        self.layer.load_keras_weights([np.asarray(a) for a in arrays])

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"TimeDistributed {self.name!r}: expected an input of rank >= 3 (batch, time, ...); received "
                f"shape {tuple(x.shape)}"
            )
        b, t = x.shape[0], x.shape[1]
        y = self.layer(x.reshape(b * t, *x.shape[2:]), training=training)
        if not isinstance(y, torch.Tensor):
            raise ValueError(f"TimeDistributed {self.name!r}: the inner layer must return one tensor")
        return y.reshape(b, t, *y.shape[1:])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if self.keras_version >= 3:
            return mask
        x = inputs
        b, t = x.shape[0], x.shape[1]
        inner_mask = None if mask is None else mask.reshape(b * t, *mask.shape[2:])
        out = self.layer.compute_mask(x.reshape(b * t, *x.shape[2:]), inner_mask)
        if isinstance(out, (list, tuple)):
            out = out[0] if out else None
        if out is None:
            return None if mask is None else _reduce(mask)
        return _reduce(out.reshape(b, t, *out.shape[1:]))
