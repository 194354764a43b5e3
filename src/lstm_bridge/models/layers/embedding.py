"""``Embedding`` and ``Masking``: the two layers that create masks.

* ``Embedding(input_dim, output_dim, mask_zero=False)``: torch parameter ``weight (input_dim, output_dim)``
  (Keras ``embeddings``); the mask is ``inputs != 0`` when ``mask_zero``, else None.
* ``Masking(mask_value=0.0)``: a step is kept when any feature differs from ``mask_value``; masked steps
  are zeroed; the mask is that test.
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ...engine.guards import check_range, tracing
from .base import KerasLayer, WeightSlot, as_float

__all__ = ["Embedding", "Masking"]


class Embedding(KerasLayer):
    keras_class = "Embedding"

    def __init__(self, input_dim: int, output_dim: int, mask_zero: bool = False, **config: Any):
        super().__init__(**config)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.mask_zero = bool(mask_zero)
        self.weight = torch.nn.Parameter(torch.zeros(self.input_dim, self.output_dim))
        self.slots = [WeightSlot(("embeddings", True))]

    def _load(self, arrays: List[np.ndarray]) -> None:
        self.weight.copy_(self._check_shape("embeddings", arrays[0], (self.input_dim, self.output_dim)))

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        idx = x.to(torch.int64)  # Keras casts float indices to int32 (truncation)
        if tracing():  # the value check as a registered op inside the compiled or exported graph
            name = repr(self.name).replace("{", "{{").replace("}", "}}")
            message = (
                f"Embedding {name}: indices must be in [0, {self.input_dim}); received {{value}} "
                "at flat position {index}"
            )
            return F.embedding(
                check_range(idx.reshape(-1), 0, self.input_dim - 1, message).view(idx.shape), self.weight
            )
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.input_dim):
            raise IndexError(
                f"Embedding {self.name!r}: indices must be in [0, {self.input_dim}); received values in "
                f"[{int(idx.min())}, {int(idx.max())}]"
            )
        return F.embedding(idx, self.weight)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
        return x != 0


class Masking(KerasLayer):
    keras_class = "Masking"

    def __init__(self, mask_value: float = 0.0, **config: Any):
        super().__init__(**config)
        self.mask_value = float(mask_value)

    def _keep(self, x: torch.Tensor) -> torch.Tensor:
        return torch.any(x != self.mask_value, dim=-1, keepdim=True)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        return x * self._keep(x).to(x.dtype)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self._keep(as_float(inputs))[..., 0]
