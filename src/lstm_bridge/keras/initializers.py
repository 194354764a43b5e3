"""Keras weight initializers on torch tensors (names, classes and dict configs of Keras 2 and 3).

An initializer is called as ``init(shape, dtype, generator) -> Tensor``. Strings, Keras config dicts
(``{"class_name": "GlorotUniform", "config": {"seed": 1}}``, with or without Keras 3's ``module``) and
any callable ``f(shape, dtype=None)`` returning an array are accepted.

Seeds (issue 9). A seeded initializer (``GlorotUniform(seed=1)``, ``{"class_name": ..., "config":
{"seed": 1}}``) draws from its own ``torch.Generator``, seeded from the seed and the weight it
initialises (:func:`generator_for`: ``kernel``, ``recurrent_kernel``, ``bias``), so two layers built with
the same seeded initializers get the same weights, while a layer's kernel and recurrent kernel still
differ. Unseeded initializers draw from the layer's generator (its own ``seed`` argument) or torch's
global one: two layers differ. The values are NOT those TensorFlow draws for the same seed: Keras draws
with TF's stateless Philox kernels (and its own seed mixing), which torch's generators do not
reproduce; load the real weights (``set_weights``, ``lstm_bridge.load``) when the exact values matter.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

Shape = Sequence[int]


def _fans(shape: Shape) -> Tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _uniform(shape: Shape, limit: float, dtype: torch.dtype, gen: Optional[torch.Generator]) -> torch.Tensor:
    return (torch.rand(tuple(shape), dtype=dtype, generator=gen) * 2 - 1) * limit


def _normal(
    shape: Shape, std: float, dtype: torch.dtype, gen: Optional[torch.Generator], truncated: bool = False
) -> torch.Tensor:
    out = torch.randn(tuple(shape), dtype=dtype, generator=gen) * std
    if truncated:  # Keras truncates at 2 standard deviations by redrawing
        while True:
            bad = out.abs() > 2 * std
            if not bad.any():
                break
            out[bad] = torch.randn(int(bad.sum()), dtype=dtype, generator=gen) * std
    return out


def _check_seed(seed: Any, owner: str) -> Optional[int]:
    """``None`` or an integer (Keras 2 and 3 both take an int seed)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{owner}: seed must be an integer or None; received seed={seed!r}")
    return int(seed)


def generator_for(init: Any, role: str, fallback: Optional[torch.Generator]) -> Optional[torch.Generator]:
    """The generator ``init`` draws ``role``'s values from: a fresh one seeded from ``(init.seed, role)``
    when ``init`` has a seed, else ``fallback`` (the layer's generator or None for torch's global one).

    ``role`` names the weight (``"kernel"``, ``"recurrent_kernel"``, ``"bias"``), so one seeded
    initializer used for two weights does not give them the same values.
    """
    seed = getattr(init, "seed", None)
    if seed is None:
        return fallback
    digest = hashlib.sha256(f"lstm_bridge/{int(seed)}/{role}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)


class VarianceScaling:
    """``keras.initializers.VarianceScaling`` (glorot/he/lecun are instances of it)."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Optional[int] = None,
        class_name: str = "VarianceScaling",
    ):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg'; received {mode!r}")
        if distribution not in ("truncated_normal", "normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling: distribution must be 'truncated_normal', 'untruncated_normal' or "
                f"'uniform'; received {distribution!r}"
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.seed = _check_seed(seed, class_name)
        self.class_name = class_name

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            return _uniform(shape, math.sqrt(3.0 * variance), dtype, generator)
        if self.distribution in ("truncated_normal", "normal"):
            # the 0.879... factor is Keras's std correction for truncation at 2 sigma
            return _normal(shape, math.sqrt(variance) / 0.87962566103423978, dtype, generator, truncated=True)
        return _normal(shape, math.sqrt(variance), dtype, generator)

    def get_config(self) -> Dict[str, Any]:
        if self.class_name == "VarianceScaling":  # the named subclasses fix scale/mode/distribution
            return {
                "class_name": "VarianceScaling",
                "config": {
                    "scale": self.scale,
                    "mode": self.mode,
                    "distribution": self.distribution,
                    "seed": self.seed,
                },
            }
        return {"class_name": self.class_name, "config": {"seed": self.seed}}


class Orthogonal:
    def __init__(self, gain: float = 1.0, seed: Optional[int] = None):
        self.gain, self.seed = gain, _check_seed(seed, "Orthogonal")

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = torch.randn((max(rows, cols), min(rows, cols)), dtype=torch.float64, generator=generator)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.t()
        out: torch.Tensor = (self.gain * q[:rows, :cols]).reshape(tuple(shape)).to(dtype)
        return out

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Orthogonal", "config": {"gain": self.gain, "seed": self.seed}}


class Constant:
    def __init__(self, value: float = 0.0):
        self.value = value

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        return torch.full(tuple(shape), float(self.value), dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Constant", "config": {"value": self.value}}


class RandomUniform:
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None):
        self.minval, self.maxval, self.seed = minval, maxval, _check_seed(seed, "RandomUniform")

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        return torch.rand(tuple(shape), dtype=dtype, generator=generator) * (self.maxval - self.minval) + self.minval

    def get_config(self) -> Dict[str, Any]:
        return {
            "class_name": "RandomUniform",
            "config": {"minval": self.minval, "maxval": self.maxval, "seed": self.seed},
        }


class RandomNormal:
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None, truncated: bool = False):
        self.mean, self.stddev, self.truncated = mean, stddev, truncated
        self.seed = _check_seed(seed, "TruncatedNormal" if truncated else "RandomNormal")

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        return _normal(shape, self.stddev, dtype, generator, truncated=self.truncated) + self.mean

    def get_config(self) -> Dict[str, Any]:
        name = "TruncatedNormal" if self.truncated else "RandomNormal"
        return {"class_name": name, "config": {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}}


class Identity:
    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(
        self, shape: Shape, dtype: torch.dtype = torch.float32, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        return self.gain * torch.eye(shape[0], shape[1], dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Identity", "config": {"gain": self.gain}}


Initializer = Callable[..., Any]


def _variance(scale: float, mode: str, distribution: str, name: str) -> Callable[..., VarianceScaling]:
    def make(seed: Optional[int] = None, **_: Any) -> VarianceScaling:
        return VarianceScaling(scale, mode, distribution, seed, name)

    return make


_FACTORIES: Dict[str, Callable[..., Initializer]] = {
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
    "variancescaling": lambda scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, **_: (
        VarianceScaling(scale, mode, distribution, seed)
    ),
}


def get(identifier: Any) -> Initializer:
    """Resolve a Keras initializer identifier (name, config dict, instance or callable)."""
    if identifier is None:
        return Constant(0.0)
    if isinstance(identifier, str):
        key = identifier.replace("_", "").lower()
        if key not in _FACTORIES:
            raise ValueError(f"Unknown initializer: {identifier!r}; known: {sorted(_FACTORIES)}")
        named: Initializer = _FACTORIES[key]()
        return named
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if not isinstance(name, str):
            raise ValueError(f"initializer config needs a 'class_name'; received {identifier!r}")
        key = name.replace("_", "").lower()
        if key not in _FACTORIES:
            raise ValueError(f"Unknown initializer class: {name!r}")
        configured: Initializer = _FACTORIES[key](**(identifier.get("config") or {}))
        return configured
    if callable(identifier):
        foreign: Initializer = identifier
        return foreign
    raise TypeError(f"initializer must be a name, a config dict or a callable; received {identifier!r}")


def call(init: Initializer, shape: Shape, dtype: torch.dtype, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Run an initializer; foreign callables (``f(shape, dtype=None)``) may return NumPy arrays."""
    if isinstance(init, (VarianceScaling, Orthogonal, Constant, RandomUniform, RandomNormal, Identity)):
        return init(shape, dtype, generator)
    value = init(tuple(shape), dtype=None)
    out = torch.as_tensor(np.asarray(value), dtype=dtype)
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"initializer {init!r} returned shape {tuple(out.shape)}; expected {tuple(shape)}")
    return out
