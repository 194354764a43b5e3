"""Keras weight initializers on torch tensors (names, classes and dict configs of Keras 2 and 3).

An initializer is called as ``init(shape, dtype, generator) -> Tensor``. Strings, Keras config dicts
(``{"class_name": "GlorotUniform", "config": {"seed": 1}}``, with or without Keras 3's ``module``) and
any callable ``f(shape, dtype=None)`` returning an array are accepted.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

Shape = Sequence[int]


def _fans(shape: Shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _uniform(shape, limit, dtype, gen):
    return (torch.rand(tuple(shape), dtype=dtype, generator=gen) * 2 - 1) * limit


def _normal(shape, std, dtype, gen, truncated=False):
    out = torch.randn(tuple(shape), dtype=dtype, generator=gen) * std
    if truncated:  # Keras truncates at 2 standard deviations by redrawing
        while True:
            bad = out.abs() > 2 * std
            if not bad.any():
                break
            out[bad] = torch.randn(int(bad.sum()), dtype=dtype, generator=gen) * std
    return out


class VarianceScaling:
    """``keras.initializers.VarianceScaling`` (glorot/he/lecun are instances of it)."""

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: Optional[int] = None, class_name: str = "VarianceScaling"):
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed
        self.class_name = class_name

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            return _uniform(shape, math.sqrt(3.0 * variance), dtype, generator)
        if self.distribution in ("truncated_normal", "normal"):
            # the 0.879... factor is Keras's std correction for truncation at 2 sigma
            return _normal(shape, math.sqrt(variance) / 0.87962566103423978, dtype, generator, truncated=True)
        return _normal(shape, math.sqrt(variance), dtype, generator)

    def get_config(self) -> dict:
        return {"class_name": self.class_name, "config": {"seed": self.seed}}


class Orthogonal:
    def __init__(self, gain: float = 1.0, seed: Optional[int] = None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = torch.randn((max(rows, cols), min(rows, cols)), dtype=torch.float64, generator=generator)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.t()
        return (self.gain * q[:rows, :cols]).reshape(tuple(shape)).to(dtype)

    def get_config(self) -> dict:
        return {"class_name": "Orthogonal", "config": {"gain": self.gain, "seed": self.seed}}


class Constant:
    def __init__(self, value: float = 0.0):
        self.value = value

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        return torch.full(tuple(shape), float(self.value), dtype=dtype)

    def get_config(self) -> dict:
        return {"class_name": "Constant", "config": {"value": self.value}}


class RandomUniform:
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        return torch.rand(tuple(shape), dtype=dtype, generator=generator) * (self.maxval - self.minval) + self.minval

    def get_config(self) -> dict:
        return {"class_name": "RandomUniform", "config": {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}}


class RandomNormal:
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None, truncated: bool = False):
        self.mean, self.stddev, self.seed, self.truncated = mean, stddev, seed, truncated

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        return _normal(shape, self.stddev, dtype, generator, truncated=self.truncated) + self.mean

    def get_config(self) -> dict:
        name = "TruncatedNormal" if self.truncated else "RandomNormal"
        return {"class_name": name, "config": {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}}


class Identity:
    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape: Shape, dtype=torch.float32, generator=None) -> torch.Tensor:
        return self.gain * torch.eye(shape[0], shape[1], dtype=dtype)

    def get_config(self) -> dict:
        return {"class_name": "Identity", "config": {"gain": self.gain}}


def _variance(scale, mode, distribution, name):
    return lambda seed=None, **_: VarianceScaling(scale, mode, distribution, seed, name)


_FACTORIES = {
    "glorotuniform": _variance(1.0, "fan_avg", "uniform", "GlorotUniform"),
    "glorotnormal": _variance(1.0, "fan_avg", "truncated_normal", "GlorotNormal"),
    "heuniform": _variance(2.0, "fan_in", "uniform", "HeUniform"),
    "henormal": _variance(2.0, "fan_in", "truncated_normal", "HeNormal"),
    "lecununiform": _variance(1.0, "fan_in", "uniform", "LecunUniform"),
    "lecunnormal": _variance(1.0, "fan_in", "truncated_normal", "LecunNormal"),
    "orthogonal": lambda gain=1.0, seed=None, **_: Orthogonal(gain, seed),
    "zeros": lambda **_: Constant(0.0),
    "ones": lambda **_: Constant(1.0),
    "constant": lambda value=0.0, **_: Constant(value),
    "randomuniform": lambda minval=-0.05, maxval=0.05, seed=None, **_: RandomUniform(minval, maxval, seed),
    "randomnormal": lambda mean=0.0, stddev=0.05, seed=None, **_: RandomNormal(mean, stddev, seed),
    "truncatednormal": lambda mean=0.0, stddev=0.05, seed=None, **_: RandomNormal(mean, stddev, seed, True),
    "identity": lambda gain=1.0, **_: Identity(gain),
    "variancescaling": lambda scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, **_:
        VarianceScaling(scale, mode, distribution, seed),
}


def get(identifier: Any) -> Callable:
    """Resolve a Keras initializer identifier (name, config dict, instance or callable)."""
    if identifier is None:
        return Constant(0.0)
    if isinstance(identifier, str):
        key = identifier.replace("_", "").lower()
        if key not in _FACTORIES:
            raise ValueError(f"Unknown initializer: {identifier!r}; known: {sorted(_FACTORIES)}")
        return _FACTORIES[key]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if not isinstance(name, str):
            raise ValueError(f"initializer config needs a 'class_name'; received {identifier!r}")
        key = name.replace("_", "").lower()
        if key not in _FACTORIES:
            raise ValueError(f"Unknown initializer class: {name!r}")
        return _FACTORIES[key](**(identifier.get("config") or {}))
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer must be a name, a config dict or a callable; received {identifier!r}")


def call(init: Callable, shape: Shape, dtype: torch.dtype, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Run an initializer; foreign callables (``f(shape, dtype=None)``) may return NumPy arrays."""
    if isinstance(init, (VarianceScaling, Orthogonal, Constant, RandomUniform, RandomNormal, Identity)):
        return init(shape, dtype, generator)
    value = init(tuple(shape), dtype=None)
    out = torch.as_tensor(np.asarray(value), dtype=dtype)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"initializer {init!r} returned shape {tuple(out.shape)}; expected {tuple(shape)}")
    return out
