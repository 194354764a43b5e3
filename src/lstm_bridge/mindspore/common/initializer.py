"""``mindspore.common.initializer``: MindSpore's initialisers by their names and formulas.

``initializer(init, shape, dtype)`` returns a filled :class:`~lstm_bridge.mindspore.common.tensor.Tensor` (MindSpore
fills lazily; the values are drawn here at once). ``init``: an :class:`Initializer`, a name (case-insensitive:
``"zeros"``/``"zero"``, ``"ones"``/``"one"``, ``"normal"``, ``"uniform"``, ``"truncatednormal"``, ``"xavier_uniform"``,
``"xavier_normal"``, ``"he_uniform"``, ``"he_normal"``, ``"orthogonal"``, ``"identity"``), a number (constant) or a
Tensor of that shape. Formulas (fan in/out as MindSpore 2.10 computes them: ``(shape[1], shape[0])`` times the
receptive field): ``Normal(sigma=0.01, mean=0)``, ``Uniform(scale=0.07)`` on ``[-scale, scale]``,
``TruncatedNormal(sigma=0.01, mean=0, a=-2, b=2)``, ``XavierUniform(gain=1)`` bound ``gain*sqrt(6/(in+out))``,
``HeUniform(negative_slope=0, mode='fan_in', nonlinearity='leaky_relu')`` bound ``sqrt(3)*gain/sqrt(fan)``.
Random draws use NumPy's global generator (MindSpore seeds its C++ generator from it: the distributions
match, the values do not - load a checkpoint to get a network's values).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Sequence, Type

import numpy as np
import torch

from . import dtype as mstype
from .tensor import Tensor

_ALIAS: Dict[str, Type[Initializer]] = {}


def _register(*aliases: str) -> Any:
    def deco(cls: Type[Initializer]) -> Type[Initializer]:
        for name in (cls.__name__.lower(), *aliases):
            _ALIAS.setdefault(name, cls)
        return cls

    return deco


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            f"'fan_in' and 'fan_out' can not be computed for tensor with fewer than 2 dimensions, "
            f"but got dimensions {len(shape)}."
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity: str, param: Any = None) -> float:
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(
        f"For 'HeUniform', the argument 'nonlinearity' should be one of ['sigmoid', 'tanh', 'relu' or "
        f"'leaky_relu'], but got {nonlinearity}."
    )


class Initializer:
    """The base: ``init(arr)`` fills a float NumPy array in place (``_initialize``)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs

    def _initialize(self, arr: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _initialize")

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        self._initialize(arr)
        return arr


@_register("zeros")
class Zero(Initializer):
    def _initialize(self, arr: np.ndarray) -> None:
        arr.fill(0)


@_register("ones")
class One(Initializer):
    def _initialize(self, arr: np.ndarray) -> None:
        arr.fill(1)


class Constant(Initializer):
    def __init__(self, value: Any):
        super().__init__(value=value)
        self.value = value

    def _initialize(self, arr: np.ndarray) -> None:
        arr.fill(self.value)


@_register()
class Normal(Initializer):
    def __init__(self, sigma: float = 0.01, mean: float = 0.0):
        super().__init__(sigma=sigma, mean=mean)
        self.sigma, self.mean = sigma, mean

    def _initialize(self, arr: np.ndarray) -> None:
        arr[...] = np.random.normal(self.mean, self.sigma, arr.shape)


@_register()
class Uniform(Initializer):
    def __init__(self, scale: float = 0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _initialize(self, arr: np.ndarray) -> None:
        arr[...] = np.random.uniform(-self.scale, self.scale, arr.shape)


@_register()
class TruncatedNormal(Initializer):
    def __init__(self, sigma: float = 0.01, mean: float = 0.0, a: float = -2.0, b: float = 2.0):
        super().__init__(sigma=sigma, mean=mean, a=a, b=b)
        self.sigma, self.mean, self.a, self.b = sigma, mean, a, b

    def _initialize(self, arr: np.ndarray) -> None:
        values = np.random.normal(self.mean, self.sigma, arr.size)
        bad = (values < self.a) | (values > self.b)
        while bad.any():  # redraw outside [a, b] (the bounds are absolute, as MindSpore's)
            values[bad] = np.random.normal(self.mean, self.sigma, int(bad.sum()))
            bad = (values < self.a) | (values > self.b)
        arr[...] = values.reshape(arr.shape)


@_register("xavier_uniform")
class XavierUniform(Initializer):
    def __init__(self, gain: float = 1):
        super().__init__(gain=gain)
        self.gain = gain

    def _initialize(self, arr: np.ndarray) -> None:
        n_in, n_out = _fans(arr.shape)
        bound = self.gain * math.sqrt(6.0 / (n_in + n_out))
        arr[...] = np.random.uniform(-bound, bound, arr.shape)


@_register("xavier_normal")
class XavierNormal(Initializer):
    def __init__(self, gain: float = 1):
        super().__init__(gain=gain)
        self.gain = gain

    def _initialize(self, arr: np.ndarray) -> None:
        n_in, n_out = _fans(arr.shape)
        arr[...] = np.random.normal(0, self.gain * math.sqrt(2.0 / (n_in + n_out)), arr.shape)


class _He(Initializer):
    def __init__(self, negative_slope: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        super().__init__(negative_slope=negative_slope, mode=mode, nonlinearity=nonlinearity)
        if mode.lower() not in ("fan_in", "fan_out"):
            raise ValueError(f"'mode' {mode} not supported, please use one of ['fan_in', 'fan_out']")
        self.negative_slope, self.mode, self.nonlinearity = negative_slope, mode.lower(), nonlinearity

    def _std(self, shape: Sequence[int]) -> float:
        fan_in, fan_out = _fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return _gain(self.nonlinearity, self.negative_slope) / math.sqrt(fan)


@_register("he_uniform")
class HeUniform(_He):
    def _initialize(self, arr: np.ndarray) -> None:
        bound = math.sqrt(3.0) * self._std(arr.shape)
        arr[...] = np.random.uniform(-bound, bound, arr.shape)


@_register("he_normal")
class HeNormal(_He):
    def _initialize(self, arr: np.ndarray) -> None:
        arr[...] = np.random.normal(0, self._std(arr.shape), arr.shape)


@_register()
class Orthogonal(Initializer):
    def __init__(self, gain: float = 1.0):
        super().__init__(gain=gain)
        self.gain = gain

    def _initialize(self, arr: np.ndarray) -> None:
        if arr.ndim < 2:
            raise ValueError(f"For Orthogonal initializer, the dimension should be greater than 1, but got {arr.ndim}.")
        rows, cols = arr.shape[0], int(np.prod(arr.shape[1:]))
        flat = np.random.normal(0, 1, (rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        arr[...] = (self.gain * q).reshape(arr.shape)


@_register()
class Identity(Initializer):
    def _initialize(self, arr: np.ndarray) -> None:
        if arr.ndim != 2:
            raise ValueError(
                f"For Identity initializer, the dimension of the initialized tensor should be 2, but got {arr.ndim}."
            )
        arr[...] = np.eye(arr.shape[0], arr.shape[1])


def initializer(init: Any, shape: Any = None, dtype: Any = mstype.float32) -> Tensor:
    """A :class:`Tensor` of ``shape`` and ``dtype`` filled by ``init`` (see the module docstring)."""
    torch_dtype = mstype.to_torch_dtype(dtype)
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    if isinstance(init, torch.Tensor):
        if shape is not None and tuple(init.shape) != tuple(shape):
            raise ValueError(
                f"For 'initializer', the shape of the 'init' argument should be same as the argument 'shape', "
                f"but got the 'init' shape {list(init.shape)} and the 'shape' {list(shape)}."
            )
        return Tensor(init, dtype=torch_dtype)
    if isinstance(init, np.ndarray):
        return initializer(Tensor(init), shape, dtype)
    if shape is None:
        raise ValueError("For 'initializer', the argument 'shape' is required unless 'init' is a Tensor")
    shape = tuple(int(s) for s in shape)
    if any(s <= 0 for s in shape):
        raise ValueError(
            f"For 'initializer', the argument 'shape' is invalid, the value of 'shape' must be positive integer, "
            f"but got {shape}"
        )
    obj: Optional[Initializer]
    if isinstance(init, str):
        cls = _ALIAS.get(init.lower())
        if cls is None:
            raise ValueError(
                f"For 'initializer', the class corresponding to '{init}' was not found; known names: {sorted(_ALIAS)}"
            )
        obj = cls()
    elif isinstance(init, bool) or not isinstance(init, (numbers.Number, Initializer)):
        raise TypeError(
            f"For 'initializer', the type of the 'init' argument should be 'Tensor', 'number', 'string' or "
            f"'initializer', but got {type(init)}."
        )
    elif isinstance(init, numbers.Number):
        obj = Constant(init)
    else:
        obj = init
    arr = np.zeros(shape, dtype=np.float64 if torch_dtype == torch.float64 else np.float32)
    obj(arr)
    return Tensor(torch.from_numpy(arr).to(torch_dtype))


__all__ = [
    "Constant",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "Normal",
    "One",
    "Orthogonal",
    "TruncatedNormal",
    "Uniform",
    "XavierNormal",
    "XavierUniform",
    "Zero",
    "initializer",
]
