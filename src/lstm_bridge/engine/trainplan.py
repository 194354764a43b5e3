"""Call plans for recorded (training) LSTM calls on the native kernel: the counterpart of
:mod:`.callplan`, whose plans serve inference only.

A training step on a small layer paid ~70-90 us of per-call Python before the kernel ran (the front end's
argument checks, the engine's guards, the backend's selection, the native kernel's shape checks and
``Plan``), about a tenth of a small benchmark step. :func:`plan_training_layer` runs those checks once, on
the first call of a signature, and returns a :class:`TrainingPlan` whose ``run`` builds the autograd
Function's arguments and calls it: the same :func:`.native.function.apply` (same forward, same saved
tensors, same backward) as the full path, so planned and unplanned steps compute the same bits.

Planned: LSTM layers whose full path selected the native kernel, in grad mode, without autocast, not
tracing, full precision. What differs per call is taken per call: the step mask (``valid``), the dropout
masks (drawn by the front end exactly as its full path draws them) and the weight views (made in grad mode,
so autograd reaches the parameters). The front end keys a plan on everything else the checks read (see
:func:`plannable` and the Keras layer's ``_planned_training``).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch

from . import backend as _backend
from .guards import check_request, tracing
from .precision import reduced_dtype
from .semantics import CellKind, DirectionWeights, DropoutMasks, LayerSemantics

Tensor = torch.Tensor
Results = Tuple[List[Tensor], List[Tensor], List[Tensor]]

__all__ = ["TrainingPlan", "plan_training_layer", "plannable", "same_key"]


def plannable() -> bool:
    """Whether a call made now may use a training plan: grad mode on, no autocast, not tracing."""
    return torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu") and not tracing()


def same_key(a: Tuple[Any, ...], b: Tuple[Any, ...]) -> bool:
    """Whether two training-plan keys match: tensors (the Parameters a plan reads) by identity - ``==`` on
    tensors compares their elements - and everything else by equality."""
    return len(a) == len(b) and all(
        (x is y) if isinstance(x, Tensor) or isinstance(y, Tensor) else x == y for x, y in zip(a, b)
    )


class TrainingPlan:
    """One validated recorded LSTM layer call. ``run(x, directions, h0, c0, valid, dropout)`` takes the
    call's tensors (same shapes, dtypes, devices and ``requires_grad`` as the planned call; the same
    directions' parameters, as fresh views) and its dropout masks (per direction, or None), and returns
    what :func:`lstm_bridge.engine.run_layer` returns: ``(outs (T, B, H), h_n, c_n)`` lists over
    directions, differentiable as the full path's."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[..., Results]) -> None:
        self.run = run


def plan_training_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Optional[TrainingPlan]:
    """The plan of a recorded LSTM layer call (arguments as :func:`lstm_bridge.engine.run_layer`) after the
    same guards and selection, or None when the call is not planned (not the native kernel, not recorded,
    reduced precision, an empty batch, states of another dtype). Raises what ``run_layer`` raises."""
    if not plannable() or not directions or any(w.kind is not CellKind.LSTM for w in directions):
        return None
    if x.dim() != 3 or x.shape[1] == 0 or reduced_dtype(x) is not None:
        return None
    if any(h.dtype != x.dtype for h in h0) or any(c.dtype != x.dtype for c in c0):
        return None  # (run_layer_checked casts them per call)
    check_request(x, directions, h0, c0, valid=valid, dropout=dropout)
    impl = _backend.select(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    native = _backend._native_package()
    if native is None or impl is not native.run_layer_checked:
        return None
    from .native import checks, function  # noqa: WPS433 (select has imported the package)
    from .native.plan import LayerArgs  # noqa: WPS433

    checks.check_shapes(x, directions, h0, c0, list(reverse), valid, list(dropout))
    act_ids, carry = checks.kernel_semantics(semantics)
    if not _backend._records(x, directions):
        return None  # nothing to record: the inference paths serve it
    plan = function.make_plan([w.hidden_size for w in directions], list(reverse), act_ids, carry, x.dtype, True)
    apply, masks_of, backend = function.apply, function.dropout_kernel_masks, _backend

    def run(
        x: Tensor,
        directions: Sequence[DirectionWeights],
        h0: Sequence[Tensor],
        c0: Sequence[Tensor],
        valid: Optional[Tensor],
        dropout: Sequence[Optional[DropoutMasks]],
    ) -> Results:
        backend.last_used = "native"
        return apply(plan, LayerArgs.of(x, directions, h0, c0), masks_of(valid, dropout))

    return TrainingPlan(run)
