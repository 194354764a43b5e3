"""Keras weight/activity regularizers (``l1``, ``l2``, ``l1_l2``) as torch functions.

A regularizer maps a tensor to a scalar penalty: ``L1(l1)(x) = l1 * sum|x|``,
``L2(l2)(x) = l2 * sum(x^2)`` (over the whole fused matrix, all four gates at once).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, cast

import torch


class L1L2:
    """``l1 * sum(|x|) + l2 * sum(x^2)``."""

    class_name = "L1L2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(())
        if self.l1:
            out = out + self.l1 * x.abs().sum()
        if self.l2:
            out = out + self.l2 * (x * x).sum()
        return out

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": self.class_name, "config": {"l1": self.l1, "l2": self.l2}}

    def __repr__(self) -> str:
        return f"{self.class_name}(l1={self.l1}, l2={self.l2})"


class L1(L1L2):
    class_name = "L1"

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "L1", "config": {"l1": self.l1}}


class L2(L1L2):
    class_name = "L2"

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "L2", "config": {"l2": self.l2}}


# Keras's lower-case spellings: ``regularizers.l1(0.01)``, ``regularizers.l2(...)``, ``regularizers.l1_l2(...)``.
l1 = L1
l2 = L2


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:  # noqa: F811 - Keras's signature
    return L1L2(l1=l1, l2=l2)


def get(identifier: Any) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """Resolve ``None``, ``"l1"``, ``"l2"``, ``"l1_l2"``, a Keras config dict, or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        table: Dict[str, Callable[[], L1L2]] = {
            "l1": lambda: L1(0.01),
            "l2": lambda: L2(0.01),
            "l1_l2": lambda: L1L2(0.01, 0.01),
            "l1l2": lambda: L1L2(0.01, 0.01),
        }
        if identifier.lower() not in table:
            raise ValueError(f"Unknown regularizer: {identifier!r}; known: l1, l2, l1_l2")
        return table[identifier.lower()]()
    if isinstance(identifier, dict):
        name = str(identifier.get("class_name", "")).lower()
        cfg = identifier.get("config") or {}
        if name in ("l1", "l1l2", "l2", "l1_l2"):
            if name == "l1":
                return L1(cfg.get("l1", 0.01))
            if name == "l2":
                return L2(cfg.get("l2", 0.01))
            return L1L2(cfg.get("l1", 0.0), cfg.get("l2", 0.0))
        raise ValueError(f"Unknown regularizer class: {identifier.get('class_name')!r}")
    if callable(identifier):
        return cast(Callable[[torch.Tensor], torch.Tensor], identifier)
    raise TypeError(f"regularizer must be a name, a config dict or a callable; received {identifier!r}")
