"""The fused native CPU path of the engine: :func:`run_layer` with the torch path's exact contract.

Layers (haste-style): ``lstm.h`` (shape contract) / ``lstm.cpp`` (the recurrence, forward and
backward) -> this package -> :func:`lstm_bridge.engine.run_layer`. One job per module:

* :mod:`.build` compiles ``lstm.cpp`` once per content into the cache and installs it atomically;
  :mod:`.filelock` is the inter-process lock around that build; :mod:`.loader` holds the process's
  one imported copy (thread-safe first load);
* :mod:`.checks`: what the kernel can run (device, dtype, activations) and shape errors;
* :mod:`.plan`: the named records of one call; :mod:`.projection`: the input projection GEMM and its
  gradients; :mod:`.function`: the ``torch.autograd.Function``; :mod:`.pool`: the limit and state of the
  kernel's buffer pool (``buffer_pool.cpp``: the large per-call tensors, projections included, reuse freed
  blocks instead of faulting fresh pages in on every call);
* this module: the public entry points, tying them together.

Which requests go native at all (standard semantics above a size go to oneDNN) is the engine's
policy, in :mod:`lstm_bridge.engine.backend`. The kernel is built on first use;
``LSTM_BRIDGE_BACKEND=torch`` never builds it.

Work shape per layer call:

* one GEMM projects all time steps of all directions: ``xp = x W_cat^T + b`` with ``W_cat`` the
  directions' ``w_ih`` stacked (per direction / per gate when input dropout masks are present);
* the kernel runs the steps: per step and direction one recurrent GEMM + one fused pointwise pass,
  overwriting ``xp`` with the activated gates (kept for backward, so training memory stays small);
* backward: the kernel returns ``dZ`` (pre-activation gradients) and the bias gradients (summed from each
  row of ``dZ`` as it is formed); ``dW_hh``, ``dW_ih`` and ``dx`` are each one large GEMM over all steps.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from ..guards import tracing
from ..semantics import DirectionWeights, DropoutMasks, LayerSemantics
from . import family_ops as family_ops, function, ops  # (importing the ops modules registers the ops)
from .checks import check_shapes, check_supported, kernel_semantics, native_activation_id
from .loader import available, error, module
from .plan import LayerArgs

Tensor = torch.Tensor

__all__ = [
    "available",
    "error",
    "module",
    "check_supported",
    "run_layer",
    "run_layer_checked",
    "native_activation_id",
    "release_workspace",
    "GEMM_PATH",
]

# The per-step recurrent GEMM: "kernel" (our register-blocked micro-kernel over W_hh packed once per
# call; the default), "mkl" (MKL's packed-GEMM API, float32 and MKL builds only; otherwise "kernel"),
# or "aten" (at::mm per step). Tests switch it to cover every path.
GEMM_PATH = "kernel"


def release_workspace() -> None:
    """Hand every free block of the kernel's buffer pool (:mod:`.pool`) back to the system allocator; memory a
    live tensor holds returns once it is freed. Never builds the kernel."""
    ext = module()
    if ext is not None:
        ext.pool_release()


def run_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Native implementation of :func:`lstm_bridge.engine.run_layer` (same arguments and results).

    Args:
        x: ``(T, B, I)`` float32/float64 CPU.  h0, c0: per direction ``(B, H_d)``.
        reverse: per direction, time runs T-1 .. 0.  valid: ``(T, B)`` bool or None.
        semantics: activations (each with a ``native_id``) and the masked-output rule.
        dropout: per direction :class:`DropoutMasks` (``(G, B, I)`` / ``(G, B, H)``, G in {1, 4}) or None.

    Returns:
        ``(outputs, h_n, c_n)`` lists over directions; ``outputs[d]`` is ``(T, B, H_d)`` indexed by
        original time.

    Raises:
        NotImplementedError: see :func:`check_supported`.  RuntimeError: the kernel is not built.
    """
    if dropout is None:
        dropout = [None] * len(directions)
    check_supported(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    return run_layer_checked(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout)


def run_layer_checked(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """:func:`run_layer` for a request :func:`check_supported` has already accepted (the backend's
    selection runs it; a second pass costs ~10 us per call on small layers)."""
    check_shapes(x, directions, h0, c0, reverse, valid, dropout)
    act_ids, carry = kernel_semantics(semantics)  # (ids: check_supported accepted every activation)
    dtype = x.dtype
    w_ih = [w.w_ih for w in directions]
    w_hh = [w.w_hh for w in directions]
    b_ih = [w.b_ih for w in directions]
    b_hh = [w.b_hh for w in directions]
    hs = [h if h.dtype == dtype else h.to(dtype) for h in h0]
    cs = [c if c.dtype == dtype else c.to(dtype) for c in c0]
    in_masks, rec_masks = function.split_dropout(dropout)
    if tracing():  # torch.compile / torch.export / jit.trace record the registered custom op
        return ops.run(
            x, w_ih, w_hh, b_ih, b_hh, hs, cs, valid=valid, in_masks=in_masks, rec_masks=rec_masks,
            reverse=reverse, acts=act_ids, carry=carry,
        )  # fmt: skip
    args = LayerArgs(x, tuple(w_ih), tuple(w_hh), tuple(b_ih), tuple(b_hh), tuple(hs), tuple(cs))
    record = torch.is_grad_enabled() and any([t is not None and t.requires_grad for t in args.flat()])
    plan = function.make_plan([w.hidden_size for w in directions], reverse, act_ids, carry, dtype, record)
    return function.apply(plan, args, function.kernel_masks(valid, in_masks, rec_masks))
