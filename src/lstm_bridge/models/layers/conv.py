"""Temporal convolution and pooling: ``Conv1D``, ``MaxPooling1D``, ``AveragePooling1D``,
``GlobalMaxPooling1D``, ``GlobalAveragePooling1D``, ``ZeroPadding1D``, ``Cropping1D``, ``UpSampling1D``.

Inputs are ``(B, T, C)`` (``data_format="channels_last"``, Keras's default) or ``(B, C, T)``
(``"channels_first"``). Padding ``"same"`` is TensorFlow's: total ``max((ceil(T/s) - 1) s + (k - 1) d + 1 - T, 0)``,
the smaller half on the left; ``"causal"`` pads ``(k - 1) d`` on the left. Average pooling with
``"same"`` divides by the number of real (unpadded) steps in each window, as TensorFlow does.
Masks: ``GlobalAveragePooling1D`` averages over the unmasked steps only (``sum(x m) / sum(m)``) and drops the
mask; the others ignore and drop it.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .base import KerasLayer, WeightSlot, activation_fn, as_float, expect_rank

__all__ = [
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
    "ZeroPadding1D",
    "Cropping1D",
    "UpSampling1D",
]


def _one(value: Any, what: str, layer: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(f"layer {layer!r}: {what} must be one integer; received {value!r}")
        value = value[0]
    return int(value)


def _data_format(layer: KerasLayer, value: Optional[str]) -> str:
    fmt = value or "channels_last"
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: data_format must be 'channels_last' or 'channels_first'; "
            f"received {value!r}"
        )
    return fmt


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """TensorFlow's SAME padding (left, right) along one axis."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + effective - length, 0)
    return total // 2, total - total // 2


class _Temporal(KerasLayer):
    """Shared: ``(B, T, C)`` <-> torch's ``(B, C, T)``."""

    data_format = "channels_last"

    def _to_nct(self, x: torch.Tensor) -> torch.Tensor:
        expect_rank(self, x, (3,))
        return x.transpose(1, 2) if self.data_format == "channels_last" else x

    def _from_nct(self, y: torch.Tensor) -> torch.Tensor:
        return y.transpose(1, 2) if self.data_format == "channels_last" else y


class Conv1D(_Temporal):
    """Keras ``Conv1D(filters, kernel_size, strides=1, padding="valid", data_format="channels_last",
    dilation_rate=1, groups=1, activation=None, use_bias=True)``; torch parameters ``weight (filters,
    in_channels / groups, kernel_size)`` (Keras ``kernel (k, in / groups, filters)`` permuted) and ``bias``."""

    keras_class = "Conv1D"
    supports_masking = False

    def __init__(
        self,
        filters: int,
        kernel_size: Union[int, Sequence[int]],
        strides: Union[int, Sequence[int]] = 1,
        padding: str = "valid",
        data_format: Optional[str] = "channels_last",
        dilation_rate: Union[int, Sequence[int]] = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        in_channels: Optional[int] = None,
        **config: Any,
    ):
        super().__init__(**config)
        self.filters = int(filters)
        self.kernel_size = _one(kernel_size, "kernel_size", self.name)
        self.strides = _one(strides, "strides", self.name)
        self.dilation_rate = _one(dilation_rate, "dilation_rate", self.name)
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same", "causal"):
            raise ValueError(f"Conv1D {self.name!r}: padding must be 'valid', 'same' or 'causal'; received {padding!r}")
        self.data_format = _data_format(self, data_format)
        self.groups = int(groups)
        self.activation_name = activation
        self.activation = activation_fn(activation, self.keras_version)
        self.use_bias = bool(use_bias)
        self.slots = [WeightSlot(("kernel", True))] + ([WeightSlot(("bias", True))] if self.use_bias else [])
        self.weight: Optional[torch.nn.Parameter] = None
        self.bias: Optional[torch.nn.Parameter] = None
        self.in_channels: Optional[int] = None
        if in_channels is not None:
            self._create(int(in_channels))

    def _create(self, in_channels: int) -> None:
        if in_channels % self.groups:
            raise ValueError(
                f"Conv1D {self.name!r}: {in_channels} input channels do not split into {self.groups} groups"
            )
        self.in_channels = in_channels
        self.weight = torch.nn.Parameter(torch.zeros(self.filters, in_channels // self.groups, self.kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(self.filters)) if self.use_bias else None

    def _load(self, arrays: List[np.ndarray]) -> None:
        kernel = arrays[0]
        if self.weight is None:
            if kernel.ndim != 3:
                raise ValueError(f"Conv1D {self.name!r}: kernel must be 3-D (k, in, filters); received {kernel.shape}")
            self._create(int(kernel.shape[1]) * self.groups)
        assert self.weight is not None and self.in_channels is not None
        k = self._check_shape("kernel", kernel, (self.kernel_size, self.in_channels // self.groups, self.filters))
        self.weight.copy_(k.permute(2, 1, 0))
        if self.use_bias:
            assert self.bias is not None
            self.bias.copy_(self._check_shape("bias", arrays[1], (self.filters,)))

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        if self.weight is None:
            raise RuntimeError(f"Conv1D {self.name!r} has no weights yet: call load_keras_weights first")
        xt = self._to_nct(as_float(x))
        if self.padding == "causal":
            xt = F.pad(xt, ((self.kernel_size - 1) * self.dilation_rate, 0))
        elif self.padding == "same":
            xt = F.pad(xt, same_padding(xt.shape[-1], self.kernel_size, self.strides, self.dilation_rate))
        y = F.conv1d(xt, self.weight, self.bias, stride=self.strides, dilation=self.dilation_rate, groups=self.groups)
        return self.activation(self._from_nct(y))


class _Pooling1D(_Temporal):
    supports_masking = False

    def __init__(
        self,
        pool_size: Union[int, Sequence[int]] = 2,
        strides: Union[None, int, Sequence[int]] = None,
        padding: str = "valid",
        data_format: Optional[str] = "channels_last",
        **config: Any,
    ):
        super().__init__(**config)
        self.pool_size = _one(pool_size, "pool_size", self.name)
        self.strides = self.pool_size if strides is None else _one(strides, "strides", self.name)
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: padding must be 'valid' or 'same'; received {padding!r}"
            )
        self.data_format = _data_format(self, data_format)

    def _pads(self, length: int) -> Tuple[int, int]:
        return same_padding(length, self.pool_size, self.strides) if self.padding == "same" else (0, 0)


class MaxPooling1D(_Pooling1D):
    """Keras ``MaxPooling1D(pool_size=2, strides=None, padding="valid")`` (``"same"`` pads with -inf)."""

    keras_class = "MaxPooling1D"

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        xt = self._to_nct(as_float(x))
        left, right = self._pads(xt.shape[-1])
        if left or right:
            xt = F.pad(xt, (left, right), value=float("-inf"))
        return self._from_nct(F.max_pool1d(xt, self.pool_size, self.strides))


class AveragePooling1D(_Pooling1D):
    """Keras ``AveragePooling1D(pool_size=2, strides=None, padding="valid")`` (``"same"``: padded steps are
    not counted)."""

    keras_class = "AveragePooling1D"

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        xt = self._to_nct(as_float(x))
        left, right = self._pads(xt.shape[-1])
        if not (left or right):
            return self._from_nct(F.avg_pool1d(xt, self.pool_size, self.strides))
        ones = torch.ones_like(xt[:1, :1])
        sums = F.avg_pool1d(F.pad(xt, (left, right)), self.pool_size, self.strides) * self.pool_size
        counts = F.avg_pool1d(F.pad(ones, (left, right)), self.pool_size, self.strides) * self.pool_size
        return self._from_nct(sums / counts)


class _GlobalPooling1D(_Temporal):
    def __init__(self, data_format: Optional[str] = "channels_last", keepdims: bool = False, **config: Any):
        super().__init__(**config)
        self.data_format = _data_format(self, data_format)
        self.keepdims = bool(keepdims)

    @property
    def _axis(self) -> int:
        return 1 if self.data_format == "channels_last" else 2

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Keras ``GlobalMaxPooling1D(data_format, keepdims=False)``: max over time (the mask is ignored)."""

    keras_class = "GlobalMaxPooling1D"
    supports_masking = False  # tf_keras refuses a masked input; Keras 3 drops the mask

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        expect_rank(self, x, (3,))
        return torch.amax(x, dim=self._axis, keepdim=self.keepdims)


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Keras ``GlobalAveragePooling1D(data_format, keepdims=False)``: the mean over time, over the unmasked
    steps only when a mask comes (a row with every step masked gives 0/0 = NaN, as in Keras)."""

    keras_class = "GlobalAveragePooling1D"

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        expect_rank(self, x, (3,))
        if mask is None:
            return torch.mean(x, dim=self._axis, keepdim=self.keepdims)
        m = mask.to(x.dtype).unsqueeze(2 if self.data_format == "channels_last" else 1)
        return torch.sum(x * m, dim=self._axis, keepdim=self.keepdims) / torch.sum(
            m, dim=self._axis, keepdim=self.keepdims
        )


def _pair(value: Any, layer: str, what: str) -> Tuple[int, int]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"layer {layer!r}: {what} must be an integer or a pair; received {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


class ZeroPadding1D(KerasLayer):
    """Keras ``ZeroPadding1D(padding=1)``: zeros before / after along time of ``(B, T, C)``."""

    keras_class = "ZeroPadding1D"
    supports_masking = False

    def __init__(self, padding: Any = 1, data_format: Optional[str] = None, **config: Any):
        super().__init__(**config)
        self.padding = _pair(padding, self.name, "padding")
        self.data_format = data_format or "channels_last"

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        expect_rank(self, x, (3,))
        if self.data_format == "channels_first":
            return F.pad(x, self.padding)
        return F.pad(x, (0, 0) + self.padding)


class Cropping1D(KerasLayer):
    """Keras ``Cropping1D(cropping=(1, 1))``: drops steps at the start / end of ``(B, T, C)``."""

    keras_class = "Cropping1D"
    supports_masking = False

    def __init__(self, cropping: Any = (1, 1), **config: Any):
        super().__init__(**config)
        self.cropping = _pair(cropping, self.name, "cropping")

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        expect_rank(self, x, (3,))
        start, end = self.cropping
        return x[:, start : x.shape[1] - end]


class UpSampling1D(KerasLayer):
    """Keras ``UpSampling1D(size=2)``: repeats each step ``size`` times along time."""

    keras_class = "UpSampling1D"
    supports_masking = False

    def __init__(self, size: int = 2, **config: Any):
        super().__init__(**config)
        self.size = int(size)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        expect_rank(self, x, (3,))
        return torch.repeat_interleave(as_float(x), self.size, dim=1)
