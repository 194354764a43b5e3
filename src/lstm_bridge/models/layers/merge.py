"""Merge layers: ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``,
``Dot``. ``forward(*inputs, mask=None)`` takes the tensors in Keras's list order; ``mask`` is a list of
per-input masks (or None).

Inputs of lower rank are expanded at axis 1 until the ranks agree (Keras's ``_Merge``), then broadcast.
Masks differ between the generations (tf_keras 2.21 ``merging/base_merge.py``, ``concatenate.py``; Keras
3.15.1 the same files):

* output mask of the elementwise layers: tf_keras ANDs the masks that are present (None when none is);
  Keras 3 ORs them, and gives None as soon as one input has no mask;
* ``Concatenate``: each mask expanded (ones for a missing one) and concatenated, then reduced over the last
  axis with ``all`` (tf_keras) or ``any`` (Keras 3);
* values (Keras 3 only, when masks come with the inputs): ``Maximum`` / ``Minimum`` replace a masked
  element by the running result (and the running result by the element where only it is masked);
  ``Multiply`` treats masked elements as 1 and, when every input has a mask, zeroes the elements masked in
  all of them; ``Add``, ``Subtract``, ``Average`` ignore masks;
* ``Dot`` drops the mask.
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
        if self.keras_version >= 3:
            masks = _masks(mask, len(ys))
            if any(m is not None for m in masks):
                return self._merge_masked(ys, masks)
        return self._merge(ys)

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _merge_masked(self, xs: List[torch.Tensor], masks: List[Optional[torch.Tensor]]) -> torch.Tensor:
        """Keras 3's merge of inputs that carry masks (only Maximum, Minimum, Multiply look at them)."""
        return self._merge(xs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        n = len(inputs) if isinstance(inputs, (list, tuple)) else 1
        masks = _masks(mask, n)
        if self.keras_version >= 3:
            if mask is None or any(m is None for m in masks):
                return None
            out = cast(torch.Tensor, masks[0]).bool()
            for m in masks[1:]:
                out = out | cast(torch.Tensor, m).bool()
            return out
        present = [m for m in masks if m is not None]
        if not present:
            return None
        out = present[0].bool()
        for m in present[1:]:
            out = out & m.bool()
        return out


def _expand(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A ``(B, T)`` mask broadcast to ``x``'s shape (Keras 3's ``broadcast_to(expand_dims(mask, -1))``)."""
    return mask.bool().unsqueeze(-1).expand(x.shape)


class _MinMax(_Merge):
    def _op(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = self._op(out, x)
        return out

    def _merge_masked(self, xs: List[torch.Tensor], masks: List[Optional[torch.Tensor]]) -> torch.Tensor:
        # keras/src/layers/merging/base_merge.py _apply_merge_op_and_or_mask
        output: Optional[torch.Tensor] = None
        output_mask: Optional[torch.Tensor] = None
        for x, m in zip(xs, masks):
            mask = None if m is None else _expand(m, x)
            if output is None:
                output, output_mask = x, mask
                continue
            if mask is not None:
                x = torch.where(mask, x, output)
            if output_mask is not None:
                output = torch.where(output_mask, output, x)
            output_mask = output_mask | mask if mask is not None and output_mask is not None else None
            output = self._op(output, x)
        assert output is not None
        return output


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

    def _merge_masked(self, xs: List[torch.Tensor], masks: List[Optional[torch.Tensor]]) -> torch.Tensor:
        # keras/src/layers/merging/multiply.py
        has_output_mask = all(m is not None for m in masks)
        output: Optional[torch.Tensor] = None
        output_mask: Optional[torch.Tensor] = None
        for x, m in zip(xs, masks):
            if m is not None:
                mask = _expand(m, x)
                x = torch.where(mask, x, torch.ones_like(x))
                if has_output_mask:
                    output_mask = mask if output_mask is None else output_mask | mask
            output = x if output is None else output * x
        assert output is not None
        if has_output_mask and output_mask is not None:
            output = torch.where(output_mask, output, torch.zeros_like(output))
        return output


class Average(_Merge):
    keras_class = "Average"

    def _merge(self, xs: List[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / len(xs)


class Maximum(_MinMax):
    keras_class = "Maximum"

    def _op(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)


class Minimum(_MinMax):
    keras_class = "Minimum"

    def _op(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.minimum(a, b)


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
        if mask is None or all(m is None for m in masks):
            return None
        full = []
        for x, m in zip(xs, masks):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            elif m.dim() < x.dim():
                full.append(m.bool().unsqueeze(-1).expand(*m.shape, *x.shape[m.dim() :]))
            else:
                full.append(m.bool())
        cat = torch.cat(full, dim=self.axis)
        return torch.any(cat, dim=-1) if self.keras_version >= 3 else torch.all(cat, dim=-1)


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
