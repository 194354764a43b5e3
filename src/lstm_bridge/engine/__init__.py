"""The lstm-bridge engine: one (bi)directional recurrent layer over canonical weights, and stacks of them.

Front ends call only :func:`run_layer` and :func:`run_stack` (and the vocabulary of
:mod:`lstm_bridge.recurrent`, re-exported by :mod:`.semantics` and here). The engine runs every
:class:`~lstm_bridge.recurrent.CellKind` (LSTM, GRU, RNN); one call takes weights of one kind.
For LSTM cells two interchangeable paths sit below, with the same numbers within float32 rounding:

* the native CPU kernel (``engine/native``), when it is built and supports the request;
* the portable pure-torch path (:mod:`.torch_path`).

GRU and RNN cells take the native kernel's family entry (``engine/native/family.py``) or their
pure-torch path (:mod:`.family_torch`), as :func:`.backend.select_family` decides (MindSpore's MatMul
summation order, ``mindspore_matmul``, stays on the torch path). For them ``c0`` is ignored (pass
None), ``c_n`` is ``[]`` from :func:`run_layer` and None from :func:`run_stack`;
``semantics.reset_after`` picks the GRU form and ``semantics.mindspore_cpu`` MindSpore's CPU op and
summation order.

``LSTM_BRIDGE_BACKEND`` chooses: ``auto`` (default: native where available, else torch, with a
one-line warning the first time native is unavailable), ``native`` (error if it cannot run) or
``torch``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from . import backend as _backend, family_torch as _family
from .guards import allocation_errors, check_allocation, check_request, tracing
from .precision import REDUCED, reduced_dtype
from .semantics import CellActivations, CellKind, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

try:  # defines the kernel's custom ops (building nothing, ~40 ms) and installs their ONNX translations, so an
    # export of a module none of whose layers has run yet (a loaded Keras model) finds them: the dynamo ONNX
    # exporter builds its function registry before it captures the model
    from . import native as _native  # noqa: F401
except ImportError:  # pragma: no cover - the native package is optional
    pass

Tensor = torch.Tensor

__all__ = [
    "CellActivations",
    "CellKind",
    "DirectionWeights",
    "DropoutMasks",
    "LayerSemantics",
    "MaskedOutput",
    "check_allocation",
    "layer_kind",
    "lengths_to_valid",
    "run_layer",
    "run_stack",
]


_LSTM = CellKind.LSTM
_STANDARD = LayerSemantics()  # the default semantics: sigmoid / tanh / tanh, masked steps carry


def layer_kind(directions: Sequence[DirectionWeights]) -> CellKind:
    """The one cell kind of a layer's directions; ``ValueError`` naming them when they mix kinds."""
    kinds = [w.kind for w in directions]
    if not kinds:
        raise ValueError("a layer needs at least one direction; received none")
    if any(k is not kinds[0] for k in kinds):
        raise ValueError(
            f"every direction of a layer must have the same cell kind; received {[k.value for k in kinds]}"
        )
    return kinds[0]


def lengths_to_valid(lengths: Tensor, steps: int) -> Tensor:
    """``(B,)`` integer lengths -> ``(T, B)`` bool, True where ``t < length`` (the comparison promotes any
    integer dtype: no cast, so a traced program records none)."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return t < lengths.unsqueeze(0)


def run_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Optional[Sequence[Tensor]],
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor] = None,
    semantics: LayerSemantics = _STANDARD,
    dropout: Optional[Sequence[Optional[DropoutMasks]]] = None,
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """Run one layer: each direction reads the same input ``x``.

    Args:
        x: ``(T, B, I)`` time-major input.
        directions: canonical weights per direction (usually 1 or 2), all of one cell kind.
        h0, c0: per direction ``(B, H_d)``; ``c0`` is ignored for GRU/RNN weights (pass None).
        reverse: per direction, whether time runs from T-1 down to 0.
        valid: ``(T, B)`` bool step mask shared by all directions, or None.
        semantics: activations, the masked-output rule, and for GRU/RNN ``reset_after`` and
            ``mindspore_cpu``.
        dropout: per direction masks (see :class:`DropoutMasks`; G = 1 or the kind's gate count), or None.

    Returns:
        ``(outputs, h_n, c_n)``, lists over directions; ``outputs[d]`` is ``(T, B, H_d)`` indexed by
        original time (a reverse direction's output for ``x[t]`` is at ``[t]``); ``c_n`` is ``[]`` for
        GRU/RNN. An empty batch (``B = 0``) returns empty outputs and states without running a path.

    Raises:
        ValueError: directions of different cell kinds (naming them), a meta tensor, or tensors on
            different devices (see :mod:`.guards`); for GRU/RNN also shapes that do not fit and
            ``mindspore_cpu`` with ``reset_after=False``.
        MemoryError: buffers that cannot fit in this machine's memory, naming the sizes.
    """
    kind = layer_kind(directions)
    if kind is not _LSTM:
        return _run_family_layer(
            x, directions, h0, kind, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout
        )
    if c0 is None:
        raise ValueError("an LSTM layer needs c0 (one (B, H) cell state per direction); received None")
    if dropout is None:
        dropout = [None] * len(directions)
    check_request(x, directions, h0, c0, valid=valid, dropout=dropout)
    if x.dim() == 3 and x.shape[1] == 0:
        return _empty_batch(x, directions, h0, c0)
    impl = _traced(x, directions, valid, semantics, dropout) if tracing() else None
    if impl is None:
        impl = _backend.select(x, directions, valid=valid, semantics=semantics, dropout=dropout)
        if tracing() and not (valid is None and semantics.activations.is_standard and _no_dropout(dropout)):
            _check_loop_exportable(x, "an LSTM layer", semantics)  # the torch path's Python loop over steps
    with allocation_errors(
        lambda: (
            f"an LSTM layer over x of shape {tuple(x.shape)} with hidden sizes {[w.hidden_size for w in directions]}"
        )
    ):
        return impl(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout)


def _traced(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Optional[_backend.RunLayer]:
    """While torch.compile / torch.export / jit.trace record the call: the native kernel (its registered
    custom op) for every request it can run, standard semantics included (oneDNN's ``torch.lstm`` does not
    compile whole: its fake kernel is missing, and PyTorch graph-breaks on RNNs); None to let
    :func:`.backend.select` decide (``LSTM_BRIDGE_BACKEND=torch``, or a request the kernel cannot run)."""
    if _backend.requested() == "torch":
        return None
    native = _backend._native_package()
    if native is None:
        return None
    reduced = reduced_dtype(x)  # under bf16 autocast the op records the bf16 layer (float16: torch path)
    if reduced not in (None, torch.bfloat16):
        return None
    try:
        native.check_supported(x, directions, valid=valid, semantics=semantics, dropout=dropout)
    except NotImplementedError:
        return None
    if not native.available():
        return None
    _backend.last_used = "native"
    impl: _backend.RunLayer = native.run_layer_checked
    return impl if reduced is None or x.dtype == reduced else _backend._native_autocast_bf16


def _no_dropout(dropout: Sequence[Optional[DropoutMasks]]) -> bool:
    return all(d is None or d.is_empty() for d in dropout)


def _check_loop_exportable(x: Tensor, what: str, semantics: LayerSemantics) -> None:
    """``torch.export`` with a dynamic time dimension cannot hold the torch path's Python loop over the
    steps: say so, and what to do, instead of torch's constraint violation."""
    if not torch.compiler.is_exporting() or isinstance(x.shape[0], int):
        return
    requested = _backend.requested()
    if requested == "torch":
        why = "LSTM_BRIDGE_BACKEND=torch is set (unset it to record the native kernel's custom op)"
    else:
        native = _backend._native_package()
        reason = None if native is None else native.error()
        acts = semantics.activations
        fns = (acts.gate, acts.candidate, acts.cell)
        python_acts = list(dict.fromkeys(repr(fn) for fn in fns if getattr(fn, "native_id", 0) is None))
        if python_acts:
            why = f"the activations {', '.join(python_acts)} have no native kernel implementation"
        elif reason:
            why = f"the native kernel is unavailable ({reason})"
        else:
            why = "the native kernel does not take this request"
    raise ValueError(
        f"{what} runs on the portable torch path here, whose Python loop over the time steps cannot be exported "
        f"with a dynamic time dimension: {why}. Export with a static time dimension (Dim.STATIC for T, or no "
        "dynamic_shapes entry for it), or give the layer activations the native kernel implements"
    )


def _reduced_family_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    kind: CellKind,
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Sequence[Optional[DropoutMasks]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """A bfloat16/float16 GRU or RNN layer (a 16-bit module and input): its float32 twin run under that
    dtype's CPU autocast - the family's torch path, whose products follow autocast as ``torch.nn.GRU``'s do
    (the native GRU/RNN kernel has no 16-bit layer) - with the results in the 16-bit dtype. Gradients flow
    back through the casts into the 16-bit weights and input."""
    dtype = x.dtype

    def up(t: Optional[Tensor]) -> Optional[Tensor]:
        return None if t is None else t.float()

    weights = [w.to(torch.float32) for w in directions]
    masks = [None if d is None else DropoutMasks(up(d.inputs), up(d.recurrent)) for d in dropout]
    with torch.autocast(x.device.type, dtype=dtype):
        outs, hs, _ = _run_family_layer(
            x.float(), weights, [h.float() for h in h0], kind,
            reverse=reverse, valid=valid, semantics=semantics, dropout=masks,
        )  # fmt: skip
    return [o.to(dtype) for o in outs], [h.to(dtype) for h in hs], []


def _run_family_layer(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    kind: CellKind,
    *,
    reverse: Sequence[bool],
    valid: Optional[Tensor],
    semantics: LayerSemantics,
    dropout: Optional[Sequence[Optional[DropoutMasks]]],
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """A GRU or RNN layer on :func:`.family_torch.run_family_layer` (the engine's guards first)."""
    if dropout is None:
        dropout = [None] * len(directions)
    check_request(x, directions, h0, h0, valid=valid, dropout=dropout)  # (no c0: h0 stands in for it)
    if x.dtype in REDUCED:
        return _reduced_family_layer(
            x, directions, h0, kind, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout
        )
    numerics = "mindspore-cpu" if semantics.mindspore_cpu else "exact"
    native = None
    if x.dim() == 3 and x.shape[0] > 0 and x.shape[1] > 0:
        _family.check_layer(
            x, directions, h0, kind=kind, reverse=reverse, valid=valid, dropout=dropout,
            numerics=numerics, reset_after=semantics.reset_after,
        )  # fmt: skip
        native = _backend.select_family(x, directions, kind=kind, valid=valid, semantics=semantics, dropout=dropout)
    if native is not None:  # the native GRU/RNN kernel (engine/native/family.py)
        with allocation_errors(
            lambda: (
                f"a {kind.value} layer over x of shape {tuple(x.shape)} with hidden sizes "
                f"{[w.hidden_size for w in directions]}"
            )
        ):
            outs, hs = native(
                x, directions, h0, kind=kind, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout
            )
        return outs, hs, []
    _backend.last_used = "torch"
    if tracing():
        _check_loop_exportable(x, f"a {kind.value} layer", semantics)
    with allocation_errors(
        lambda: (
            f"a {kind.value} layer over x of shape {tuple(x.shape)} with hidden sizes "
            f"{[w.hidden_size for w in directions]}"
        )
    ):
        outs, hs = _family.run_family_layer(
            x,
            directions,
            h0,
            kind=kind,
            reverse=reverse,
            valid=valid,
            activations=semantics.activations,
            masked_output=semantics.masked_output,
            reset_after=semantics.reset_after,
            dropout=dropout,
            numerics=numerics,
            ms_matmul=semantics.mindspore_cpu and semantics.mindspore_matmul,
        )
    return outs, hs, []


def _empty_batch(
    x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor]
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """B = 0: outputs ``(T, 0, H_d)``; the final states are the (empty) initial states ``(0, H_d)``."""
    T = x.shape[0]
    for d, (w, h, c) in enumerate(zip(directions, h0, c0)):
        for name, t in (("h0", h), ("c0", c)):
            if tuple(t.shape) != (0, w.hidden_size):
                raise ValueError(
                    f"direction {d} {name} must have shape (0, {w.hidden_size}) for an empty batch; "
                    f"received {tuple(t.shape)}"
                )
        if w.input_size != x.shape[2]:
            raise ValueError(
                f"direction {d} w_ih expects input size {w.input_size}; received x of shape {tuple(x.shape)}"
            )
    outs = [x.new_zeros((T, 0, w.hidden_size)) for w in directions]
    return outs, [h.to(x.dtype) for h in h0], [c.to(x.dtype) for c in c0]


def run_stack(
    x: Tensor,
    layers: Sequence[Sequence[DirectionWeights]],
    h0: Tensor,
    c0: Optional[Tensor],
    *,
    valid: Optional[Tensor] = None,
    semantics: LayerSemantics = _STANDARD,
    between_layers: Optional[torch.nn.Module] = None,
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """A PyTorch/MindSpore-style stack: direction 0 forward, direction 1 (if any) reverse.

    Args:
        x: ``(T, B, I)``.
        layers: ``layers[l][d]`` canonical weights, all of one cell kind.
        h0, c0: ``(L*D, B, H)``, row ``l*D + d``; ``c0`` may be None for GRU/RNN (it is ignored).
        valid: ``(T, B)`` step mask for every layer, or None.
        between_layers: applied to each layer's output before the next layer (e.g. dropout).

    Returns:
        ``output (T, B, D*H)`` (forward then reverse features), ``h_n``, ``c_n`` ``(L*D, B, H)``
        (``c_n`` None for GRU/RNN).
    """
    kind = layer_kind([w for dirs in layers for w in dirs])
    if kind is _LSTM and c0 is None:
        raise ValueError("an LSTM stack needs c0 of shape (L*D, B, H); received None")
    D = len(layers[0])
    reverse = [False, True][:D]
    out = x
    h_n: List[Tensor] = []
    c_n: List[Tensor] = []
    for index, dirs in enumerate(layers):
        if index > 0 and between_layers is not None:
            out = between_layers(out)
        rows = range(index * D, index * D + D)
        outs, hs, cs = run_layer(
            out,
            dirs,
            [h0[r] for r in rows],
            None if kind is not _LSTM or c0 is None else [c0[r] for r in rows],
            reverse=reverse,
            valid=valid,
            semantics=semantics,
        )
        out = outs[0] if D == 1 else torch.cat(outs, dim=-1)
        h_n.extend(hs)
        c_n.extend(cs)
    return out, _stacked(h_n), (_stacked(c_n) if kind is _LSTM else None)


def _stacked(states: Sequence[Tensor]) -> Tensor:
    """``(L * D, B, H)`` from the layers' and directions' final states; one state as a view (no copy, and a
    traced program records no ``stack`` that export would keep although nothing reads it)."""
    return states[0].unsqueeze(0) if len(states) == 1 else torch.stack(list(states))
