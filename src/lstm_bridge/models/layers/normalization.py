"""``BatchNormalization`` and ``LayerNormalization`` (both pass the mask through).

BatchNormalization in eval mode uses the moving statistics: ``x * inv + (beta - mean * inv)`` with
``inv = gamma / sqrt(var + epsilon)`` (TensorFlow's ``batch_normalization`` order); in ``train()`` mode the
batch's own statistics (over the unmasked steps when a mask comes, as Keras does) and the moving
statistics move by ``momentum``. Torch names: ``weight`` (gamma), ``bias`` (beta), ``running_mean``,
``running_var`` (buffers), for the channel axis (the last one, Keras's default).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch

from .base import KerasLayer, WeightSlot, as_float

__all__ = ["BatchNormalization", "LayerNormalization"]


def _axes(value: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(a) for a in value)
    return (int(cast(int, value)),)


class BatchNormalization(KerasLayer):
    keras_class = "BatchNormalization"
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(
        self,
        axis: Union[int, Sequence[int]] = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        num_features: Optional[int] = None,
        renorm: bool = False,
        virtual_batch_size: Optional[int] = None,
        synchronized: bool = False,
        **config: Any,
    ):
        for k in ("renorm_clipping", "renorm_momentum", "fused", "adjustment"):
            v = config.pop(k, None)
            if k == "adjustment" and v is not None:
                raise ValueError(f"BatchNormalization: adjustment is not supported; received {v!r}")
        super().__init__(**config)
        if renorm or virtual_batch_size:
            raise ValueError(
                f"BatchNormalization {self.name!r}: renorm / virtual_batch_size are not supported; "
                f"received renorm={renorm!r}, virtual_batch_size={virtual_batch_size!r}"
            )
        self.axis = _axes(axis)
        if len(self.axis) != 1:
            raise ValueError(f"BatchNormalization {self.name!r}: expected one axis; received {axis!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.slots = (
            ([WeightSlot(("gamma", True))] if self.scale else [])
            + ([WeightSlot(("beta", True))] if self.center else [])
            + [WeightSlot(("moving_mean", False)), WeightSlot(("moving_variance", False))]
        )
        self.num_features: Optional[int] = None
        self.weight: Optional[torch.nn.Parameter] = None
        self.bias: Optional[torch.nn.Parameter] = None
        if num_features is not None:
            self._create(int(num_features))

    def _create(self, n: int) -> None:
        self.num_features = n
        self.weight = torch.nn.Parameter(torch.ones(n)) if self.scale else None
        self.bias = torch.nn.Parameter(torch.zeros(n)) if self.center else None
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def _load(self, arrays: List[np.ndarray]) -> None:
        if self.num_features is None:
            self._create(int(np.asarray(arrays[0]).reshape(-1).shape[0]))
        n = self.num_features
        assert n is not None
        it = iter(arrays)
        if self.scale:
            assert self.weight is not None
            self.weight.copy_(self._check_shape("gamma", next(it), (n,)))
        if self.center:
            assert self.bias is not None
            self.bias.copy_(self._check_shape("beta", next(it), (n,)))
        self.running_mean.copy_(self._check_shape("moving_mean", next(it), (n,)))
        self.running_var.copy_(self._check_shape("moving_variance", next(it), (n,)))

    def _shape(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        axis = self.axis[0] % x.dim()
        shape = [1] * x.dim()
        shape[axis] = -1
        return v.reshape(shape)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if self.num_features is None:
            raise RuntimeError(f"BatchNormalization {self.name!r} has no weights yet: call load_keras_weights first")
        x = as_float(x)
        axis = self.axis[0] % x.dim()
        if self._training(training) and self.keras_trainable:
            reduce = [d for d in range(x.dim()) if d != axis]
            if mask is not None:
                w = mask.to(x.dtype).reshape(*mask.shape, *([1] * (x.dim() - mask.dim())))
                w = w.expand_as(x)
                count = w.sum(dim=reduce, keepdim=True)
                mean = (x * w).sum(dim=reduce, keepdim=True) / count
                var = (((x - mean) ** 2) * w).sum(dim=reduce, keepdim=True) / count
            else:
                mean = x.mean(dim=reduce, keepdim=True)
                var = x.var(dim=reduce, unbiased=False, keepdim=True)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(m).add_(mean.reshape(-1) * (1 - m))
                self.running_var.mul_(m).add_(var.reshape(-1) * (1 - m))
        else:
            mean = self._shape(x, self.running_mean)
            var = self._shape(x, self.running_var)
        inv = torch.rsqrt(var + self.epsilon)
        if self.weight is not None:
            inv = inv * self._shape(x, self.weight)
        offset = -mean * inv
        if self.bias is not None:
            offset = offset + self._shape(x, self.bias)
        return x * inv + offset


class LayerNormalization(KerasLayer):
    """Keras ``LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False)``;
    torch names ``weight`` (gamma), ``bias`` (beta)."""

    keras_class = "LayerNormalization"

    def __init__(
        self,
        axis: Union[int, Sequence[int]] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        normalized_shape: Optional[Sequence[int]] = None,
        **config: Any,
    ):
        super().__init__(**config)
        self.axis = _axes(axis)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self.slots = ([WeightSlot(("gamma", True))] if self.scale else []) + (
            [WeightSlot(("beta", True))] if self.center and not self.rms_scaling else []
        )
        self.weight: Optional[torch.nn.Parameter] = None
        self.bias: Optional[torch.nn.Parameter] = None
        self.normalized_shape: Optional[Tuple[int, ...]] = None
        if normalized_shape is not None:
            self._create(tuple(int(d) for d in normalized_shape))

    def _create(self, shape: Tuple[int, ...]) -> None:
        self.normalized_shape = shape
        self.weight = torch.nn.Parameter(torch.ones(shape)) if self.scale else None
        self.bias = torch.nn.Parameter(torch.zeros(shape)) if self.center and not self.rms_scaling else None

    def _load(self, arrays: List[np.ndarray]) -> None:
        if self.normalized_shape is None:
            self._create(tuple(int(d) for d in np.asarray(arrays[0]).shape))
        shape = self.normalized_shape
        assert shape is not None
        it = iter(arrays)
        if self.weight is not None:
            self.weight.copy_(self._check_shape("gamma", next(it), shape))
        if self.bias is not None:
            self.bias.copy_(self._check_shape("beta", next(it), shape))

    def _param(self, x: torch.Tensor, p: torch.Tensor, axes: List[int]) -> torch.Tensor:
        shape = [1] * x.dim()
        for a, n in zip(axes, p.shape):
            shape[a] = n
        return p.reshape(shape)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        axes = sorted(a % x.dim() for a in self.axis)
        if self.rms_scaling:
            var = torch.mean(x * x, dim=axes, keepdim=True)
            y = x * torch.rsqrt(var + self.epsilon)
            if self.weight is not None:
                y = y * self._param(x, self.weight, axes)
            return y
        mean = torch.mean(x, dim=axes, keepdim=True)
        var = torch.mean((x - mean) ** 2, dim=axes, keepdim=True)
        inv = torch.rsqrt(var + self.epsilon)
        if self.weight is not None:
            inv = inv * self._param(x, self.weight, axes)
        offset = -mean * inv
        if self.bias is not None:
            offset = offset + self._param(x, self.bias, axes)
        return x * inv + offset
