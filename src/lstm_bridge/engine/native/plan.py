"""The named records of one native layer call: what is fixed (:class:`Plan`), the differentiable
inputs (:class:`LayerArgs`), the non-differentiable tensors (:class:`Masks`) and what backward needs
(:class:`Saved`).

``torch.autograd.Function.apply`` takes and ``needs_input_grad`` / ``saved_tensors`` give flat tuples;
each record flattens in one fixed field order (directions innermost, written once as a layout string
next to its ``flat``) and is rebuilt from a flat sequence with the same layout, so no caller indexes
``flat[2 + 3 * D + d]`` by hand.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch

Tensor = torch.Tensor

__all__ = ["LayerArgs", "Masks", "Plan", "Saved"]

# The kernel's "absent" argument (no bias, no mask, no valid): it reads only numel(), never writes.
# A bfloat16 layer's kernel tensors are float32 (see Plan.kernel_dtype).
_EMPTY = {
    torch.float32: torch.empty(0),
    torch.float64: torch.empty(0, dtype=torch.float64),
    torch.bfloat16: torch.empty(0),
}


@functools.cache
def _layout(spec: str, D: int) -> Tuple[Tuple[Union[int, slice], ...], int]:
    """Index of each field of a flat layout: ``spec`` has ``1`` for a single item, ``D`` for one per
    direction (``"1DD"``: one item then two groups of ``D``). Returns (indices, total length)."""
    fields: List[Union[int, slice]] = []
    at = 0
    for kind in spec:
        if kind == "1":
            fields.append(at)
            at += 1
        else:
            fields.append(slice(at, at + D))
            at += D
    return tuple(fields), at


def _split(flat: Sequence[Any], D: int, spec: str) -> Tuple[Any, ...]:
    """``flat`` cut into the fields of ``spec`` (see :func:`_layout`); groups come back as tuples."""
    fields, length = _layout(spec, D)
    if len(flat) != length:
        raise ValueError(f"expected {length} items for layout {spec!r} with D = {D}; received {len(flat)}")
    return tuple(map(tuple(flat).__getitem__, fields))


class Plan(NamedTuple):
    """Everything about one call that is neither a tensor nor differentiable.

    ``D`` directions; ``H[d]`` hidden size of direction d; its gate columns in the stacked projection are
    ``offsets[d] .. offsets[d] + 4 H[d]`` of ``S`` in all; ``cfg`` the kernel's ``LayerConfig``
    (``cfg.save`` is ``record``); ``record``: autograd records this call (grad mode on and some input
    requires grad), decided outside the Function where grad mode is visible.

    ``dtype`` is the input's. ``torch.bfloat16`` makes a *bf16 layer* (:attr:`lowp`, ``cfg.bf16``): every
    GEMM rounds its operands to bfloat16 and accumulates in float32, while the kernel's tensors (the
    projection, gates, states, saved ``c_prev``/``h_prev``) are float32 (:attr:`kernel_dtype`) and the
    outputs are returned in bfloat16 (docs/benchmarks.md, "bfloat16").
    """

    ext: ModuleType
    cfg: Any
    D: int
    H: Tuple[int, ...]
    offsets: Tuple[int, ...]
    S: int
    dtype: torch.dtype
    record: bool

    def columns(self, d: int) -> slice:
        """Direction ``d``'s gate columns in the stacked ``(.., S)`` projection."""
        return slice(self.offsets[d], self.offsets[d] + 4 * self.H[d])

    @property
    def lowp(self) -> bool:
        """A bf16 layer: bf16 GEMM operands, float32 accumulation and state."""
        return self.dtype == torch.bfloat16

    @property
    def kernel_dtype(self) -> torch.dtype:
        """The dtype of the kernel's tensors: float32 for a bf16 layer, else the input's."""
        return torch.float32 if self.dtype == torch.bfloat16 else self.dtype

    def empty(self) -> Tensor:
        """The kernel's "absent" tensor argument (no bias, no mask)."""
        return _EMPTY[self.dtype]


class LayerArgs(NamedTuple):
    """The differentiable inputs: ``x (T, B, I)``, then per direction ``w_ih (4H, I)``, ``w_hh (4H, H)``,
    ``b_ih``/``b_hh (4H,)`` or None, ``h0``/``c0 (B, H)``. Also used for the matching booleans of
    ``ctx.needs_input_grad`` and the gradients returned by backward."""

    x: Any
    w_ih: Tuple[Any, ...]
    w_hh: Tuple[Any, ...]
    b_ih: Tuple[Any, ...]
    b_hh: Tuple[Any, ...]
    h0: Tuple[Any, ...]
    c0: Tuple[Any, ...]

    def flat(self) -> Tuple[Any, ...]:
        return (self.x, *self.w_ih, *self.w_hh, *self.b_ih, *self.b_hh, *self.h0, *self.c0)

    @classmethod
    def from_flat(cls, flat: Sequence[Any], D: int) -> LayerArgs:
        return cls(*_split(flat, D, "1DDDDDD"))

    @classmethod
    def of(cls, x: Any, directions: Sequence[Any], h0: Sequence[Any], c0: Sequence[Any]) -> LayerArgs:
        """The call's arguments from ``directions`` (:class:`DirectionWeights`) and the per-direction states."""
        return cls(
            x,
            tuple([w.w_ih for w in directions]),
            tuple([w.w_hh for w in directions]),
            tuple([w.b_ih for w in directions]),
            tuple([w.b_hh for w in directions]),
            tuple(h0),
            tuple(c0),
        )


class Masks(NamedTuple):
    """The non-differentiable tensors of the call (detached, contiguous): ``valid (T, B)`` uint8 or None,
    per direction the dropout masks ``inputs (G, B, I)`` and ``recurrent (G, B, H)`` or None."""

    valid: Optional[Tensor]
    inputs: Tuple[Optional[Tensor], ...]
    recurrent: Tuple[Optional[Tensor], ...]

    def flat(self) -> Tuple[Optional[Tensor], ...]:
        return (self.valid, *self.inputs, *self.recurrent)

    def valid_arg(self) -> Tensor:
        """``valid`` as the kernel takes it (an empty tensor for "no mask")."""
        return _EMPTY[torch.float32] if self.valid is None else self.valid

    def recurrent_args(self, plan: Plan) -> List[Tensor]:
        kd = plan.kernel_dtype  # a bf16 layer's masks may be bfloat16: the kernel reads float32
        return [plan.empty() if m is None else (m if m.dtype == kd else m.to(kd)) for m in self.recurrent]


class Saved(NamedTuple):
    """What backward reads, all through ``ctx.save_for_backward`` (so saved-tensor hooks and activation
    checkpointing see every one): the inputs ``x``, ``w_ih``, ``w_hh``; the kernel's ``gates (T, B, S)``
    (the projection buffer, overwritten with the activated gates) and per direction ``c_prev``/``h_prev
    (T, B, H)``; and the call's :class:`Masks`."""

    x: Tensor
    w_ih: Tuple[Tensor, ...]
    w_hh: Tuple[Tensor, ...]
    gates: Tensor
    c_prev: Tuple[Tensor, ...]
    h_prev: Tuple[Tensor, ...]
    masks: Masks

    def flat(self) -> Tuple[Optional[Tensor], ...]:
        return (self.x, *self.w_ih, *self.w_hh, self.gates, *self.c_prev, *self.h_prev, *self.masks.flat())

    @classmethod
    def from_flat(cls, flat: Sequence[Any], D: int) -> Saved:
        x, w_ih, w_hh, gates, c_prev, h_prev, valid, inputs, recurrent = _split(flat, D, "1DD1DD1DD")
        return cls(x, w_ih, w_hh, gates, c_prev, h_prev, Masks(valid, inputs, recurrent))
