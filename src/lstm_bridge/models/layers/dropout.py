"""Regularisation layers: ``Dropout``, ``SpatialDropout1D``, ``GaussianNoise``, ``GaussianDropout``,
``AlphaDropout``. Identity in eval mode (Keras without ``training=True``); in ``train()`` mode (or with
``training=True``) each draws its noise as Keras does with ``training=True`` (same distribution, torch's
random stream). All pass the mask through.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from .base import KerasLayer, as_float

__all__ = ["Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout"]


def _check_rate(layer: KerasLayer, rate: Any) -> float:
    r = float(rate)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: rate must be in [0, 1]; received {rate!r}")
    return r


class Dropout(KerasLayer):
    """Keras ``Dropout(rate, noise_shape=None, seed=None)``: keeps each unit with probability ``1 - rate``
    and scales kept units by ``1 / (1 - rate)``. ``noise_shape`` entries None take the input's size."""

    keras_class = "Dropout"

    def __init__(self, rate: float, noise_shape: Optional[Sequence[Optional[int]]] = None, **config: Any):
        super().__init__(**config)
        self.rate = _check_rate(self, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def _noise_shape(self, x: torch.Tensor) -> Sequence[int]:
        if self.noise_shape is None:
            return tuple(x.shape)
        return tuple(x.shape[i] if d is None else int(d) for i, d in enumerate(self.noise_shape))

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        if not self._training(training) or self.rate <= 0.0:
            return x
        if self.rate >= 1.0:
            return x * 0.0
        keep = torch.rand(self._noise_shape(x), dtype=x.dtype, device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)


class SpatialDropout1D(Dropout):
    """Keras ``SpatialDropout1D(rate)``: drops whole channels of ``(B, T, C)`` (noise shape ``(B, 1, C)``)."""

    keras_class = "SpatialDropout1D"

    def __init__(self, rate: float, **config: Any):
        config.pop("noise_shape", None)
        super().__init__(rate, **config)

    def _noise_shape(self, x: torch.Tensor) -> Sequence[int]:
        return (x.shape[0], 1, x.shape[2])  # (sizes as they are: int() would make torch.compile specialise them)


class GaussianNoise(KerasLayer):
    """Keras ``GaussianNoise(stddev)``: adds N(0, stddev^2) noise when training."""

    keras_class = "GaussianNoise"

    def __init__(self, stddev: float, **config: Any):
        super().__init__(**config)
        self.stddev = float(stddev)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        if not self._training(training) or self.stddev <= 0:
            return x
        return x + torch.randn_like(x) * self.stddev


class GaussianDropout(KerasLayer):
    """Keras ``GaussianDropout(rate)``: multiplies by N(1, rate / (1 - rate)) noise when training."""

    keras_class = "GaussianDropout"

    def __init__(self, rate: float, **config: Any):
        super().__init__(**config)
        self.rate = _check_rate(self, rate)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        if not self._training(training) or not 0.0 < self.rate < 1.0:
            return x
        std = math.sqrt(self.rate / (1.0 - self.rate))
        return x * (1.0 + torch.randn_like(x) * std)


class AlphaDropout(KerasLayer):
    """Keras ``AlphaDropout(rate, noise_shape=None)``: dropped units become SELU's negative saturation,
    then the affine correction ``a x + b`` keeps mean and variance (Keras's formula)."""

    keras_class = "AlphaDropout"
    _ALPHA = 1.6732632423543772848170429916717
    _SCALE = 1.0507009873554804934193349852946

    def __init__(self, rate: float, noise_shape: Optional[Sequence[Optional[int]]] = None, **config: Any):
        super().__init__(**config)
        self.rate = _check_rate(self, rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def forward(self, x: torch.Tensor, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        x = as_float(x)
        if not self._training(training) or not 0.0 < self.rate < 1.0:
            return x
        shape = (
            tuple(x.shape)
            if self.noise_shape is None
            else tuple(x.shape[i] if d is None else int(d) for i, d in enumerate(self.noise_shape))
        )
        alpha_p = -self._ALPHA * self._SCALE
        kept = (torch.rand(shape, dtype=x.dtype, device=x.device) >= self.rate).to(x.dtype)
        a = ((1.0 - self.rate) * (1.0 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (x * kept + alpha_p * (1.0 - kept)) + b
