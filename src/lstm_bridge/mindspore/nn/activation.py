"""MindSpore's activation Cells (``nn.ReLU``, ``nn.Tanh``, ``nn.GELU`` ...) and ``get_activation(name)``.

``nn.GELU(approximate=True)`` is the tanh form by default, as MindSpore's; ``nn.LeakyReLU(alpha=0.2)``;
``nn.HSigmoid`` is ``relu6(x + 3) / 6``; ``nn.PReLU(channel=1, w=0.25)`` holds the parameter ``w``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

import torch
import torch.nn.functional as F

from ..common.tensor import Parameter
from .cell import Cell


class _Activation(Cell):
    _plain_inputs = True

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def construct(self, x: Any) -> Any:
        return self._fn(x)


class ReLU(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class ReLU6(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x)


class Tanh(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class Sigmoid(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class SiLU(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


class HSigmoid(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardsigmoid(x)


class HSwish(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


class LogSigmoid(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.logsigmoid(x)


class Softsign(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.softsign(x)


class Softmax(_Activation):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=self.axis)


class LogSoftmax(_Activation):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=self.axis)


class LeakyReLU(_Activation):
    def __init__(self, alpha: float = 0.2):
        super().__init__()
        self.alpha = alpha

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.alpha)


class ELU(_Activation):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)


class GELU(_Activation):
    def __init__(self, approximate: bool = True):
        super().__init__()
        self.approximate = approximate

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh" if self.approximate else "none")


class FastGelu(_Activation):
    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        # MindSpore's FastGelu: x / (1 + exp(-1.702 |x|)) * exp(0.851 (x - |x|))
        return x / (1 + torch.exp(-1.702 * x.abs())) * torch.exp(0.851 * (x - x.abs()))


class PReLU(_Activation):
    def __init__(self, channel: int = 1, w: Any = 0.25):
        super().__init__()
        values = torch.full((channel,), float(w)) if isinstance(w, (int, float)) else torch.as_tensor(w).float()
        self.w = Parameter(values, name="a")

    def _fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.w.to(x.dtype))


_BY_NAME: Dict[str, Type[Cell]] = {
    "relu": ReLU,
    "relu6": ReLU6,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "silu": SiLU,
    "hsigmoid": HSigmoid,
    "hswish": HSwish,
    "logsigmoid": LogSigmoid,
    "softsign": Softsign,
    "softmax": Softmax,
    "logsoftmax": LogSoftmax,
    "leakyrelu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "fast_gelu": FastGelu,
    "prelu": PReLU,
}


def get_activation(name: Optional[str], prim_name: Optional[str] = None) -> Optional[Cell]:
    """The activation Cell MindSpore builds for ``name`` (``Dense(activation="relu")``); None for None."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"The activation name must be a str; received {type(name).__name__}")
    cls = _BY_NAME.get(name.lower())
    if cls is None:
        raise KeyError(f"Unknown activation type '{name}': lstm-bridge knows {sorted(_BY_NAME)}")
    return cls()


def resolve_activation(activation: Any, where: str) -> Optional[Any]:
    """``activation=`` of a layer: None, a name, a Cell or a primitive/callable."""
    if activation is None or isinstance(activation, torch.nn.Module) or callable(activation):
        return activation
    if isinstance(activation, str):
        return get_activation(activation)
    raise TypeError(f"For '{where}', activation must be a str, a Cell or None; received {type(activation).__name__}")
