"""Core layers: ``InputLayer``, ``Dense``, ``Activation``, ``Flatten``, ``Reshape``, ``Permute``,
``RepeatVector``.

Masks (tf_keras 2.21 / Keras 3.15.1, recorded in tests/golden/model_layers.json): Dense and Activation
pass the mask through; Flatten, Reshape, Permute and RepeatVector drop it.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .base import KerasLayer, WeightSlot, activation_fn, as_float

__all__ = ["InputLayer", "Dense", "Activation", "Flatten", "Reshape", "Permute", "RepeatVector"]


class InputLayer(KerasLayer):
    """A model input: casts to its dtype (``int*`` / ``bool`` stay integral, floats become float32)."""

    keras_class = "InputLayer"

    def __init__(self, *, dtype: Any = "float32", optional: bool = False, ragged: bool = False, **config: Any):
        super().__init__(**config)
        if ragged:
            raise ValueError(f"InputLayer {self.name!r}: ragged inputs are not supported")
        name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        self.input_dtype = str(name or "float32")

    def forward(self, x: Any, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if self.input_dtype.startswith(("int", "uint")):
            return x.to(torch.int64) if x.is_floating_point() or x.dtype == torch.bool else x
        if self.input_dtype == "bool":
            return x.to(torch.bool)
        if self.input_dtype in ("float16", "bfloat16"):  # Keras casts to the input's dtype first
            x = x.to(torch.float16 if self.input_dtype == "float16" else torch.bfloat16)
        return as_float(x, torch.float64 if self.input_dtype == "float64" else torch.float32)


class Dense(KerasLayer):
    """Keras ``Dense(units, activation=None, use_bias=True)`` on the last axis; torch parameters
    ``weight (units, in_features)`` (Keras ``kernel`` transposed) and ``bias (units,)``."""

    keras_class = "Dense"

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        in_features: Optional[int] = None,
        **config: Any,
    ):
        super().__init__(**config)
        self.units = int(units)
        self.activation_name = activation
        self.activation = activation_fn(activation, self.keras_version)
        self.use_bias = bool(use_bias)
        self.in_features = None if in_features is None else int(in_features)
        self.slots = [WeightSlot(("kernel", True))] + ([WeightSlot(("bias", True))] if self.use_bias else [])
        self.weight: Optional[torch.nn.Parameter] = None
        self.bias: Optional[torch.nn.Parameter] = None
        if self.in_features is not None:
            self._create(self.in_features)

    def _create(self, in_features: int) -> None:
        self.in_features = in_features
        self.weight = torch.nn.Parameter(torch.zeros(self.units, in_features))
        self.bias = torch.nn.Parameter(torch.zeros(self.units)) if self.use_bias else None

    def _load(self, arrays: List[np.ndarray]) -> None:
        kernel = arrays[0]
        if self.weight is None:
            if kernel.ndim != 2:
                raise ValueError(f"Dense {self.name!r}: kernel must be 2-D (in, units); received {kernel.shape}")
            self._create(int(kernel.shape[0]))
        assert self.weight is not None and self.in_features is not None
        self.weight.copy_(self._check_shape("kernel", kernel, (self.in_features, self.units)).t())
        if self.use_bias:
            assert self.bias is not None
            self.bias.copy_(self._check_shape("bias", arrays[1], (self.units,)))

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if self.weight is None:
            raise RuntimeError(f"Dense {self.name!r} has no weights yet: call load_keras_weights first")
        y = F.linear(as_float(x), self.weight, self.bias)
        return self.activation(y)


class Activation(KerasLayer):
    """Keras ``Activation(activation)``, the name read as the generation reads it."""

    keras_class = "Activation"

    def __init__(self, activation: Any, **config: Any):
        super().__init__(**config)
        self.activation_name = activation
        self.activation = activation_fn(activation, self.keras_version)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        return self.activation(as_float(x))


class Flatten(KerasLayer):
    """Keras ``Flatten(data_format=None)``: ``(B, ...) -> (B, prod)``; ``channels_first`` moves axis 1 last
    first (as Keras does)."""

    keras_class = "Flatten"
    supports_masking = False

    def __init__(self, data_format: Optional[str] = None, **config: Any):
        super().__init__(**config)
        self.data_format = data_format or "channels_last"

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if self.data_format == "channels_first" and x.dim() >= 3:
            x = x.permute(0, *range(2, x.dim()), 1)
        if x.dim() == 1:
            return x.unsqueeze(1)
        return x.reshape(x.shape[0], -1)


class Reshape(KerasLayer):
    """Keras ``Reshape(target_shape)`` (without the batch axis; one entry may be -1)."""

    keras_class = "Reshape"
    supports_masking = False

    def __init__(self, target_shape: Sequence[int], **config: Any):
        super().__init__(**config)
        self.target_shape = tuple(int(d) for d in target_shape)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.target_shape)


class Permute(KerasLayer):
    """Keras ``Permute(dims)``: a permutation of the non-batch axes, numbered from 1."""

    keras_class = "Permute"
    supports_masking = False

    def __init__(self, dims: Sequence[int], **config: Any):
        super().__init__(**config)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"Permute {self.name!r}: dims must be a permutation of 1..{len(self.dims)}; received {dims}"
            )

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        return x.permute(0, *self.dims)


class RepeatVector(KerasLayer):
    """Keras ``RepeatVector(n)``: ``(B, F) -> (B, n, F)``."""

    keras_class = "RepeatVector"
    supports_masking = False

    def __init__(self, n: int, **config: Any):
        super().__init__(**config)
        self.n = int(n)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        return x.unsqueeze(1).expand(x.shape[0], self.n, *x.shape[1:]).contiguous()
