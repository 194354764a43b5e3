"""Keras weight constraints as torch functions: ``w -> constrained w`` (Keras shapes, axis as in Keras).

Keras never applies them in the forward pass; its optimizer applies them after each update, which is
what ``layer.apply_constraints()`` does here.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, cast

import torch

EPSILON = 1e-7  # keras.backend.epsilon()


class MaxNorm:
    def __init__(self, max_value: float = 2.0, axis: int = 0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = torch.sqrt((w * w).sum(dim=self.axis, keepdim=True))
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "MaxNorm", "config": {"max_value": self.max_value, "axis": self.axis}}


class NonNeg:
    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w * (w >= 0).to(w.dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "NonNeg", "config": {}}


class UnitNorm:
    def __init__(self, axis: int = 0):
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w / (EPSILON + torch.sqrt((w * w).sum(dim=self.axis, keepdim=True)))

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "UnitNorm", "config": {"axis": self.axis}}


class MinMaxNorm:
    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: int = 0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = torch.sqrt((w * w).sum(dim=self.axis, keepdim=True))
        desired = self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> Dict[str, Any]:
        return {
            "class_name": "MinMaxNorm",
            "config": {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis},
        }


#: Keras's constraint names (both spellings) -> class
_CLASSES: Dict[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = {
    "maxnorm": MaxNorm,
    "max_norm": MaxNorm,
    "nonneg": NonNeg,
    "non_neg": NonNeg,
    "unitnorm": UnitNorm,
    "unit_norm": UnitNorm,
    "minmaxnorm": MinMaxNorm,
    "min_max_norm": MinMaxNorm,
}


def max_norm(max_value: float = 2.0, axis: int = 0) -> MaxNorm:
    return MaxNorm(max_value, axis)


def get(identifier: Any) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """Resolve ``None``, a name (``"max_norm"``, ``"non_neg"``, ...), a Keras config dict, or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _CLASSES:
            raise ValueError(f"Unknown constraint: {identifier!r}; known: {sorted(set(_CLASSES))}")
        return _CLASSES[key]()
    if isinstance(identifier, dict):
        key = str(identifier.get("class_name", "")).lower()
        if key not in _CLASSES:
            raise ValueError(f"Unknown constraint class: {identifier.get('class_name')!r}")
        return _CLASSES[key](**(identifier.get("config") or {}))
    if callable(identifier):
        return cast(Callable[[torch.Tensor], torch.Tensor], identifier)
    raise TypeError(f"constraint must be a name, a config dict or a callable; received {identifier!r}")
