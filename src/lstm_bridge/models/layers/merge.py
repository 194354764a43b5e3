"""Merge layers: ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``,
``Dot``. ``forward(*inputs, mask=None)`` takes the tensors in Keras's list order; ``mask`` is a list of
per-input masks (or None).

Inputs of lower rank are expanded at axis 1 until the ranks agree (Keras's ``_Merge``), then broadcast.
Masks: the elementwise layers AND the masks that are present (None when none is); ``Concatenate``
expands each mask (ones for a missing one) and ANDs along the last axis (Keras's rule); ``Dot`` drops
the mask.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union, cast

import torch
import torch.nn.functional as F

from .base import KerasLayer, as_float

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot"]


def _inputs(layer: KerasLayer, inputs: Sequence[Any]) -> List[torch.Tensor]:
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    if len(inputs) < 1:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expected a list of tensors; received none")
    return [as_float(x) for x in inputs]


def _masks(mask: Any, n: int) -> List[Optional[torch.Tensor]]:
    if mask is None:
        return [None] * n
    if isinstance(mask, torch.Tensor):
        return [mask] * n
    return list(mask)


class _Merge(KerasLayer):
    def forward(self, *inputs: Any, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        xs = _inputs(self, inputs)
        if len(xs) < 2:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: a merge layer should be called on a list of at least 2 "
                f"inputs; received {len(xs)} input"
            )
        top = max(x.dim() for x in xs)
        ys = []
        for x in xs:
            while x.dim() < top:
                x = x.unsqueeze(1)
            ys.append(x)
        return self._merge(ys)

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        present = [m for m in _masks(mask, len(inputs) if isinstance(inputs, (list, tuple)) else 1) if m is not None]
        if not present:
            return None
        out = present[0].bool()
        for m in present[1:]:
            out = out & m.bool()
        return out


class Add(_Merge):
    keras_class = "Add"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    keras_class = "Subtract"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        if len(xs) != 2:
            raise ValueError(f"Subtract {self.name!r}: expected exactly 2 inputs; received {len(xs)}")
        return xs[0] - xs[1]


class Multiply(_Merge):
    keras_class = "Multiply"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    keras_class = "Average"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / len(xs)


class Maximum(_Merge):
    keras_class = "Maximum"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = torch.maximum(out, x)
        return out


class Minimum(_Merge):
    keras_class = "Minimum"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = torch.minimum(out, x)
        return out


class Concatenate(KerasLayer):
    """Keras ``Concatenate(axis=-1)``."""

    keras_class = "Concatenate"

    def __init__(self, axis: int = -1, **config: Any):
        super().__init__(**config)
        self.axis = int(axis)

    def forward(self, *inputs: Any, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        return torch.cat(_inputs(self, inputs), dim=self.axis)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        masks = _masks(mask, len(xs))
        if all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(xs, masks):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            elif m.dim() < x.dim():
                full.append(m.bool().unsqueeze(-1).expand(*m.shape, *x.shape[m.dim() :]))
            else:
                full.append(m.bool())
        return torch.all(torch.cat(full, dim=self.axis), dim=-1)


class Dot(KerasLayer):
    """Keras ``Dot(axes, normalize=False)`` of two inputs: the batched dot product over ``axes`` (one
    for both, or one per input; negative counts from the end), L2-normalised first when ``normalize``.
    2-D results get a trailing axis (``(B, 1)``) as in Keras."""

    keras_class = "Dot"

    def __init__(self, axes: Union[int, Sequence[int]], normalize: bool = False, **config: Any):
        super().__init__(**config)
        if isinstance(axes, (list, tuple)):
            self.axes: Tuple[int, int] = (int(axes[0]), int(axes[1]))
        else:
            self.axes = (int(cast(int, axes)), int(cast(int, axes)))
        self.normalize = bool(normalize)

    def forward(self, *inputs: Any, mask: Any = None, training: Optional[bool] = None) -> torch.Tensor:
        xs = _inputs(self, inputs)
        if len(xs) != 2:
            raise ValueError(f"Dot {self.name!r}: expected exactly 2 inputs; received {len(xs)}")
        x, y = xs
        ax = [a % t.dim() for a, t in zip(self.axes, (x, y))]
        if self.normalize:
            x = F.normalize(x, p=2.0, dim=ax[0], eps=1e-12)
            y = F.normalize(y, p=2.0, dim=ax[1], eps=1e-12)
        xm = torch.movedim(x, ax[0], -1)  # (B, ..., n)
        ym = torch.movedim(y, ax[1], 1)  # (B, n, ...)
        xf = xm.reshape(xm.shape[0], -1, xm.shape[-1])
        yf = ym.reshape(ym.shape[0], ym.shape[1], -1)
        out = torch.bmm(xf, yf).reshape(*xm.shape[:-1], *ym.shape[2:])
        if out.dim() == 1:
            out = out.unsqueeze(1)
        return out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None
