"""Validated call plans: what :func:`lstm_bridge.engine.run_layer` decides per call, decided once per signature.

A front end that calls the same layer again and again with inputs of one shape (inference on small batches)
pays the engine's per-call Python - the request's guards, the backend's selection, the native kernel's shape
checks and plan - on every call, several times the kernel's own time on tiny layers. :func:`plan_layer` runs
exactly those checks once and returns a :class:`LayerPlan` whose :meth:`LayerPlan.run` goes straight to the
selected implementation. The front end keeps the plan keyed on everything the checks read
(:func:`signature` plus its own options and the identity of its cached weight views) and calls
:func:`run_layer` as before for a signature it has not seen, so errors still come from the first call of a
new signature with the same messages.

Only LSTM inference is planned: no grad mode, no autocast, no dropout, not tracing, a non-empty batch;
every other call returns None (run the full path). Data-dependent checks (mask and length values) stay
with the caller: a plan takes ``valid`` per call.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch

from . import backend as _backend, torch_path
from .guards import check_request, tracing
from .precision import reduced_dtype
from .semantics import CellKind, DirectionWeights, DropoutMasks, LayerSemantics

Tensor = torch.Tensor
Results = Tuple[List[Tensor], List[Tensor], List[Tensor]]


def signature(x: Tensor) -> Tuple[Any, ...]:
    """What the engine's checks and selection read from a call besides the weights and the front end's
    options: the input's shape, dtype and device, and the requested backend (grad mode and autocast are
    not in it: a plan is only used without them, see :func:`plannable`)."""
    return (x.shape, x.dtype, x.device, os.environ.get("LSTM_BRIDGE_BACKEND"))


def plannable() -> bool:
    """Whether a call made now may use a plan: inference (no grad mode), no autocast, not tracing."""
    return not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu") and not tracing()


class PlanSlot:
    """Where a module keeps its plan entry (``entry``: the front end's ``(key, ...)`` tuple or None). A copy
    or an unpickled module gets an empty slot, so it plans again (plans hold closures and the weights' ids)."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: Optional[Tuple[Any, ...]] = None

    def __reduce__(self) -> Tuple[Any, Tuple[()]]:
        return (PlanSlot, ())

    def __deepcopy__(self, memo: Any) -> PlanSlot:
        return PlanSlot()

    @staticmethod
    def of(module: torch.nn.Module) -> PlanSlot:
        """The module's slot (created on first use, outside the Module's attribute registry)."""
        slot = module.__dict__.get("_call_plan")
        if slot is None:
            slot = module.__dict__["_call_plan"] = PlanSlot()
        return slot


class LayerPlan:
    """One validated LSTM layer call: :meth:`run` takes the call's tensors (same shapes, dtypes and devices
    as the planned call, the same directions' weights) and returns what :func:`lstm_bridge.engine.run_layer`
    returns."""

    __slots__ = ("_run", "_backend")

    def __init__(self, run: Callable[..., Results], used: str) -> None:
        self._run = run
        self._backend = used

    def run(
        self, x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        _backend.last_used = self._backend
        return self._run(x, directions, h0, c0, valid)


def plan_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Optional[Sequence[Optional[DropoutMasks]]] = None,
) -> Optional[LayerPlan]:
    """The plan of an LSTM layer call (arguments as :func:`lstm_bridge.engine.run_layer`), after the same
    guards and selection; None when the call is not planned (see the module docstring). Raises what
    ``run_layer`` raises for a bad request."""
    if not plannable() or any(w.kind is not CellKind.LSTM for w in directions) or not directions:
        return None
    if dropout is not None and any(d is not None and not d.is_empty() for d in dropout):
        return None
    if x.dim() != 3 or x.shape[1] == 0 or reduced_dtype(x) is not None:
        return None
    none: List[Optional[DropoutMasks]] = [None] * len(directions)
    check_request(x, directions, h0, c0, valid=valid, dropout=none)
    impl = _backend.select(x, directions, valid=valid, semantics=semantics, dropout=none)
    used = _backend.last_used or "torch"
    native = _backend._native_package()
    if native is not None and impl is native.run_layer_checked:
        return _native_plan(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics)
    rev = list(reverse)
    if impl is torch_path.run_layer and valid is None and semantics.activations.is_standard:
        if x.dtype in (torch.float32, torch.float64):  # what torch_path.run_layer would decide per call
            standard = torch_path._standard_layer

            def run_standard(
                x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
                valid: Optional[Tensor],
            ) -> Results:  # fmt: skip
                return standard(x, directions, h0, c0, rev)

            return LayerPlan(run_standard, used)

    def run_selected(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        return impl(x, directions, h0, c0, reverse=rev, valid=valid, semantics=semantics, dropout=none)

    return LayerPlan(run_selected, used)


def _native_plan(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
) -> Optional[LayerPlan]:
    """The native kernel's inference call with its shape checks and ``Plan`` done now (what
    ``native.run_layer_checked`` does per call)."""
    from .native import checks, function  # noqa: WPS433 (select has imported the package)
    from .native.plan import LayerArgs  # noqa: WPS433
    from .semantics import MaskedOutput  # noqa: WPS433

    D = len(directions)
    if any(h.dtype != x.dtype for h in h0) or any(c.dtype != x.dtype for c in c0):
        return None  # (run_layer_checked casts them per call)
    checks.check_shapes(x, directions, h0, c0, list(reverse), valid, [None] * D)
    acts = semantics.activations
    act_ids = [int(checks.native_activation_id(fn) or 0) for fn in (acts.gate, acts.candidate, acts.cell)]
    carry = semantics.masked_output is MaskedOutput.CARRY
    plan = function.make_plan([w.hidden_size for w in directions], list(reverse), act_ids, carry, x.dtype, False)
    no_masks = (None,) * D
    fixed = function.kernel_masks(None, no_masks, no_masks)
    apply, masks_of, args = function.apply, function.kernel_masks, LayerArgs

    def run_native(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        masks = fixed if valid is None else masks_of(valid, no_masks, no_masks)
        if D == 1:
            w = directions[0]
            layer = args(x, (w.w_ih,), (w.w_hh,), (w.b_ih,), (w.b_hh,), tuple(h0), tuple(c0))
        else:
            layer = args(
                x, tuple([w.w_ih for w in directions]), tuple([w.w_hh for w in directions]),
                tuple([w.b_ih for w in directions]), tuple([w.b_hh for w in directions]), tuple(h0), tuple(c0),
            )  # fmt: skip
        return apply(plan, layer, masks)

    return LayerPlan(run_native, "native")
