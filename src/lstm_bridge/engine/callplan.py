"""Validated call plans: what :func:`lstm_bridge.engine.run_layer` decides per call, decided once per signature.

A front end that calls the same layer again and again with inputs of one shape (inference on small batches)
pays the engine's per-call Python - the request's guards, the backend's selection, the native kernel's shape
checks and plan - on every call, several times the kernel's own time on tiny layers. :func:`plan_layer` runs
exactly those checks once and returns a :class:`LayerPlan` whose :meth:`LayerPlan.run` goes straight to the
selected implementation. The front end keeps the plan keyed on everything the checks read
(:func:`signature` plus its own options and the identity of its cached weight views) and calls
:func:`run_layer` as before for a signature it has not seen, so errors still come from the first call of a
new signature with the same messages.

Only LSTM inference is planned: no grad mode, not tracing, a non-empty batch (under CPU autocast too: the
key holds the autocast dtype, and the plan runs the selected implementation's reduced call); every other
call returns None (run the full path). Data-dependent checks (mask and length values) stay with the caller:
a plan takes ``valid`` per call. A call with dropout masks (a Keras layer called with ``training=True``
under ``torch.no_grad()``) is planned for the masks' form - which directions have input and recurrent
masks, of which shapes - and its plan takes the masks per call (the front end draws them as its full path
does and keys the plan on what decides their form).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import backend as _backend, torch_path
from .guards import check_request
from .precision import reduced_dtype
from .semantics import CellKind, DirectionWeights, DropoutMasks, LayerSemantics

Tensor = torch.Tensor
Results = Tuple[List[Tensor], List[Tensor], List[Tensor]]
Stacked = Tuple[Tensor, Tensor, Tensor]


# ``os.environ.get`` encodes its key on every call (~0.6 us of a tiny call's ~10 us overhead): the plan key
# reads the process environment's own mapping with the key encoded once (CPython's ``os._Environ``; any other
# mapping falls back to ``os.environ.get``). The raw value is only compared, never interpreted.
_ENVIRON = os.environ
_ENV_DATA: Any = getattr(_ENVIRON, "_data", None)
_ENV_KEY: Any = _ENVIRON.encodekey("LSTM_BRIDGE_BACKEND") if hasattr(_ENVIRON, "encodekey") else None


def backend_request() -> Any:
    """The raw ``LSTM_BRIDGE_BACKEND`` value (None when unset), as cheaply as the platform allows (the
    fallback also serves a process whose ``os.environ`` was replaced by another mapping); a plan key holds
    it (:func:`signature`)."""
    if os.environ is _ENVIRON and _ENV_KEY is not None and isinstance(_ENV_DATA, dict):
        return _ENV_DATA.get(_ENV_KEY)
    return os.environ.get("LSTM_BRIDGE_BACKEND")


def signature(x: Tensor) -> Tuple[Any, ...]:
    """What the engine's checks and selection read from a call besides the weights and the front end's
    options: the input's shape, dtype and device, the requested backend and the CPU autocast dtype (False
    without autocast: a plan made under autocast runs its reduced-precision path, see :func:`plan_layer`).
    Grad mode is not in it: a plan is only used without it (:func:`plannable`)."""
    # (autocast_state() written out: this runs on every planned call)
    return (x.shape, x.dtype, x.device, backend_request(), _autocast_enabled("cpu") and _autocast_dtype("cpu"))


def autocast_state() -> Any:
    """``torch.get_autocast_dtype("cpu")`` under CPU autocast, else False (a plan key's part: a plan made with
    or without autocast, or for another autocast dtype, is not used for the other)."""
    return _autocast_enabled("cpu") and _autocast_dtype("cpu")


# plannable() runs on every front-end call: guards.tracing()'s two checks are called here directly (the same
# functions - torch.compile recognises is_compiling by identity -, 0.1 us fewer; a test checks they agree)
_grad_enabled, _autocast_enabled, _autocast_dtype = (
    torch.is_grad_enabled,
    torch.is_autocast_enabled,
    torch.get_autocast_dtype,
)
_compiling, _jit_tracing = torch.compiler.is_compiling, torch.jit.is_tracing


def plannable() -> bool:
    """Whether a call made now may use a plan: inference (no grad mode), not tracing
    (:func:`lstm_bridge.engine.guards.tracing`: ``torch.compile``, ``torch.export``, ``torch.jit.trace``).
    Under CPU autocast too: the plan keys hold :func:`autocast_state`."""
    return not _grad_enabled() and not _compiling() and not _jit_tracing()  # type: ignore[no-untyped-call]


class PlanSlot:
    """Where a module keeps its plan entry (``entry``: the front end's ``(key, ...)`` tuple or None). A copy
    or an unpickled module gets an empty slot, so it plans again (plans hold closures and the weights' ids).

    A front end whose calls alternate between signatures (a MindSpore net called with and without
    ``seq_length``) also keeps the entries of its recent signatures (:meth:`keep`, :meth:`recall`): up to
    :data:`KEPT` of them, for one set of weight objects (``weights``: an entry made for other ones drops
    the rest, so replaced parameters are not kept alive)."""

    __slots__ = ("entry", "kept", "weights")

    #: how many signatures' entries :meth:`keep` holds (then it starts again from the newest)
    KEPT = 8

    def __init__(self) -> None:
        self.entry: Optional[Tuple[Any, ...]] = None
        self.kept: Dict[Any, Tuple[Any, ...]] = {}
        self.weights: Sequence[Any] = ()

    def keep(self, entry: Tuple[Any, ...], weights: Sequence[Any]) -> None:
        """Make ``entry`` (``entry[0]``: its hashable key) current and keep it for :meth:`recall`; ``weights``
        the objects its plan reads (compared by identity with the kept entries')."""
        if len(self.kept) >= self.KEPT or not _same_objects(self.weights, weights):
            self.kept = {}
            self.weights = tuple(weights)
        self.kept[entry[0]] = entry
        self.entry = entry

    def recall(self, key: Any) -> Optional[Tuple[Any, ...]]:
        """The kept entry of ``key`` made current, or None."""
        entry = self.kept.get(key)
        if entry is not None:
            self.entry = entry
        return entry

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
    """One validated LSTM layer call. ``run(x, directions, h0, c0, valid)`` takes the call's tensors (same
    shapes, dtypes and devices as the planned call, the same directions' weights) and returns what
    :func:`lstm_bridge.engine.run_layer` returns: lists over directions ``(outs (T, B, H), h_n, c_n (B, H))``.
    ``run_stacked`` (same arguments) returns the directions joined as the stacked nets want them: ``out
    (T, B, D*H)`` (features ``[forward | reverse]``), ``h_n``/``c_n (D, B, H)``, without splitting and
    re-joining what one kernel call returned joined. Both record the backend in
    :data:`lstm_bridge.engine.backend.last_used` as the full path does.

    ``valid`` is the ``(T, B)`` bool step mask or None; where ``byte_mask`` is True (the native kernel's
    plans) it may also be a contiguous ``uint8`` ``(T, B)`` tensor of 0/1, the kernel's own form, which is
    passed on without a conversion.

    ``run_one`` (None unless the plan is one direction on the native kernel's lean entry, without dropout) is
    ``run_stacked`` with the planned direction's weights: ``run_one(x, h0, c0, valid)`` with ``valid`` None or
    in the kernel's own form only (a contiguous ``uint8`` ``(T, B)`` tensor of 0/1, unchecked: the kernel
    checks its shape, dtype and contiguity); what a one-layer MindSpore net runs on every call.

    ``masked``: the plan was made for a call with dropout masks; then ``run`` and ``run_stacked`` take the
    call's masks as a sixth argument, ``dropout`` (per direction :class:`DropoutMasks` or None, of the
    planned form: the same directions with input / recurrent masks of the same shapes, unchecked); a plan
    made without masks takes five arguments."""

    __slots__ = ("run", "run_stacked", "backend", "byte_mask", "run_one", "masked")

    def __init__(
        self,
        run: Callable[..., Results],
        run_stacked: Callable[..., Stacked],
        used: str,
        byte_mask: bool = False,
        masked: bool = False,
    ) -> None:
        self.run = run
        self.run_stacked = run_stacked
        self.backend = used
        self.byte_mask = byte_mask
        self.masked = masked
        self.run_one: Optional[Callable[[Tensor, Sequence[Tensor], Sequence[Tensor], Optional[Tensor]], Stacked]]
        self.run_one = None


def _stacked(run: Callable[..., Results]) -> Callable[..., Stacked]:
    """``run_stacked`` from a ``run`` that returns the directions apart (``dropout``: a masked plan's)."""

    def run_stacked(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor], *dropout: Sequence[Optional[DropoutMasks]],
    ) -> Stacked:  # fmt: skip
        outs, hs, cs = run(x, directions, h0, c0, valid, *dropout)
        if len(outs) == 1:
            return outs[0], hs[0][None], cs[0][None]
        return torch.cat(outs, dim=-1), torch.stack(hs), torch.stack(cs)

    return run_stacked


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
    ``run_layer`` raises for a bad request. With ``dropout`` masks (any direction's not empty) the plan is
    ``masked``: it takes each call's masks, of the same form as these (see :class:`LayerPlan`)."""
    if not plannable() or any(w.kind is not CellKind.LSTM for w in directions) or not directions:
        return None
    if x.dim() != 3 or x.shape[1] == 0:
        return None
    # a reduced call (a bfloat16/float16 input, or float32 under CPU autocast) is planned as the selected
    # implementation's full call, which casts as it does in the full path: only the guards and the selection
    # are done once
    reduced = reduced_dtype(x)
    masked = dropout is not None and any(d is not None and not d.is_empty() for d in dropout)
    drops: List[Optional[DropoutMasks]] = list(dropout) if dropout is not None and masked else [None] * len(directions)
    check_request(x, directions, h0, c0, valid=valid, dropout=drops)
    impl = _backend.select(x, directions, valid=valid, semantics=semantics, dropout=drops)
    used = _backend.last_used or "torch"
    native = _backend._native_package()
    if native is not None and impl is native.run_layer_checked and reduced is None:
        dropped = drops if masked else None
        return _native_plan(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics, dropout=dropped)
    rev = list(reverse)
    if masked:
        return _masked_plan(impl, rev, semantics, used)
    if impl is torch_path.run_layer and valid is None and semantics.activations.is_standard and reduced is None:
        # what torch_path.run_layer would decide per call (oneDNN's bits: its training kind, see there)
        if x.dtype in (torch.float32, torch.float64) and not (semantics.onednn_bits and x.dtype == torch.float32):
            return _standard_plan(directions, rev, used)

    def run_selected(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        _backend.last_used = used
        return impl(x, directions, h0, c0, reverse=rev, valid=valid, semantics=semantics, dropout=drops)

    return LayerPlan(run_selected, _stacked(run_selected), used)


def _masked_plan(impl: Callable[..., Results], reverse: List[bool], semantics: LayerSemantics, used: str) -> LayerPlan:
    """A masked plan on the selected implementation (the torch path): the full path's call with the call's
    masks, without its guards and selection."""
    backend = _backend

    def run_masked(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor], dropout: Sequence[Optional[DropoutMasks]],
    ) -> Results:  # fmt: skip
        backend.last_used = used
        return impl(x, directions, h0, c0, reverse=reverse, valid=valid, semantics=semantics, dropout=dropout)

    return LayerPlan(run_masked, _stacked(run_masked), used, masked=True)


def _same_objects(a: Optional[Sequence[Any]], b: Sequence[Any]) -> bool:
    """Whether two sequences hold the same objects (identity, never ``==``: tensors compare elementwise)."""
    if a is None or len(a) != len(b):
        return False
    if len(b) == 1:  # (one direction: no generator on every call)
        return a[0] is b[0]
    return all(x is y for x, y in zip(a, b))


def _standard_plan(planned: Sequence[DirectionWeights], reverse: List[bool], used: str) -> LayerPlan:
    """The standard LSTM on the torch path (oneDNN's ``torch.lstm`` in its inference kind): what
    ``torch_path._standard_layer`` does per call, with ``torch.lstm``'s weight list built once for the
    planned directions' weights (views of the parameters, so their current values; a missing bias is
    zeros) and, for one direction or a (forward, reverse) pair, straight to ``torch.lstm``."""
    standard = torch_path._standard_layer
    params = [torch_path._torch_lstm_weights(w) for w in planned]
    pair = (
        len(planned) == 2
        and reverse == [False, True]
        and params[0][1] == params[1][1]
        and planned[0].hidden_size == planned[1].hidden_size
    )
    lstm = torch.lstm

    def same(directions: Sequence[DirectionWeights]) -> bool:
        return _same_objects(directions, planned)

    def run_standard(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        _backend.last_used = used
        return standard(x, directions, h0, c0, reverse)

    # the last (h0, c0) objects and the stacked hx built from them (views: their current values); a repeated
    # call passes the same zero states, so torch.lstm's (D, B, H) hx is built once. One tuple: thread-safe.
    memo: List[Tuple[Any, Any, Tuple[Tensor, Tensor]]] = [(None, None, (torch.empty(0), torch.empty(0)))]
    # (the pair's stacked hx is a copy: the front ends' zero states are their own, never written)

    if len(planned) == 1 and not reverse[0]:
        flat, has_bias = params[0]

        def run_one(
            x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
            valid: Optional[Tensor],
        ) -> Stacked:  # fmt: skip
            if not same(directions):
                return _stacked(run_standard)(x, directions, h0, c0, valid)
            _backend.last_used = used
            last, h_init, c_init = memo[0], h0[0], c0[0]
            if last[0] is not h_init or last[1] is not c_init:
                last = memo[0] = (h_init, c_init, (h_init.unsqueeze(0), c_init.unsqueeze(0)))
            out, h, c = lstm(x, last[2], flat, has_bias, 1, 0.0, False, False, False)
            return out, h, c

        return LayerPlan(run_standard, run_one, used)
    if pair:
        flat, has_bias = params[0][0] + params[1][0], params[0][1]

        def run_pair(
            x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
            valid: Optional[Tensor],
        ) -> Stacked:  # fmt: skip
            if not same(directions):
                return _stacked(run_standard)(x, directions, h0, c0, valid)
            _backend.last_used = used
            last = memo[0]
            if not (_same_objects(last[0], h0) and _same_objects(last[1], c0)):
                last = memo[0] = (tuple(h0), tuple(c0), (torch.stack(list(h0)), torch.stack(list(c0))))
            out, h, c = lstm(x, last[2], flat, has_bias, 1, 0.0, False, True, False)
            return out, h, c

        return LayerPlan(run_standard, run_pair, used)
    return LayerPlan(run_standard, _stacked(run_standard), used)


def _native_plan(
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
    """The native kernel's inference call with its shape checks and ``Plan`` done now (what
    ``native.run_layer_checked`` does per call); when the native entry's lean inference applies
    (``function.lean_inference``: no input masks, float32/float64),
    straight to ``function.infer`` with its argument lists built once for the planned weights.

    ``dropout`` (a masked plan, see :class:`LayerPlan`): the planned call's masks, whose form the plan
    takes per call. Recurrent masks are the kernel's arguments (``Masks.recurrent_args``: detached,
    contiguous, in the kernel's dtype); input masks make the projection per gate, so a call with them goes
    through ``function.apply`` with ``function.kernel_masks`` of the call's masks, as the full path does."""
    from .native import checks, function  # noqa: WPS433 (select has imported the package)
    from .native.plan import LayerArgs  # noqa: WPS433

    D = len(directions)
    if any(h.dtype != x.dtype for h in h0) or any(c.dtype != x.dtype for c in c0):
        return None  # (run_layer_checked casts them per call)
    no_masks: Tuple[Optional[Tensor], ...] = (None,) * D
    drops: Sequence[Optional[DropoutMasks]] = [None] * D if dropout is None else dropout
    checks.check_shapes(x, directions, h0, c0, list(reverse), valid, list(drops))
    act_ids, carry = checks.kernel_semantics(semantics)
    plan = function.make_plan([w.hidden_size for w in directions], list(reverse), act_ids, carry, x.dtype, False)
    masked = dropout is not None
    fixed = function.kernel_masks(None, no_masks, no_masks)
    apply, masks_of, dropout_masks_of, args = (
        function.apply,
        function.kernel_masks,
        function.dropout_kernel_masks,
        LayerArgs.of,
    )
    backend = _backend

    def run_native(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor],
    ) -> Results:  # fmt: skip
        backend.last_used = "native"
        masks = fixed if valid is None else masks_of(valid, no_masks, no_masks)
        return apply(plan, args(x, directions, h0, c0), masks)

    def run_native_masked(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor], dropout: Sequence[Optional[DropoutMasks]],
    ) -> Results:  # fmt: skip
        backend.last_used = "native"
        return apply(plan, args(x, directions, h0, c0), dropout_masks_of(valid, dropout))

    if not function.lean_inference(plan, dropout_masks_of(None, drops) if masked else fixed):
        if masked:
            return LayerPlan(run_native_masked, _stacked(run_native_masked), "native", byte_mask=True, masked=True)
        return LayerPlan(run_native, _stacked(run_native), "native", byte_mask=True)  # (kernel_masks: any dtype)
    infer, bias_of, uint8, boolean = function.infer, function.kernel_bias, torch.uint8, torch.bool
    no_valid, recurrent = fixed.valid_arg(), fixed.recurrent_args(plan)
    w_ih, w_hh = tuple([w.w_ih for w in directions]), [w.w_hh for w in directions]
    # a bias sum is formed per call (a parameter written through .data keeps its version); one bias as is
    summed = any(w.b_ih is not None and w.b_hh is not None for w in directions)
    bias = [bias_of(plan, w.b_ih, w.b_hh) for w in directions]
    planned = tuple(directions)

    def run_lean(
        x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
        valid: Optional[Tensor], *, masks: Sequence[Tensor] = recurrent,
    ) -> Results:  # fmt: skip
        backend.last_used = "native"
        if valid is None:
            kernel_valid = no_valid
        elif valid.dtype is uint8 and valid.is_contiguous():  # (the kernel's form: see LayerPlan)
            kernel_valid = valid
        else:  # (kernel_masks' .to(uint8), as a view of a bool mask: a third of the cost)
            kernel_valid = (valid.view(uint8) if valid.dtype == boolean else valid.to(uint8)).contiguous()
        if _same_objects(directions, planned):
            b = [bias_of(plan, w.b_ih, w.b_hh) for w in directions] if summed else bias
            return infer(plan, x, w_ih, w_hh, b, h0, c0, kernel_valid, masks)
        return infer(
            plan, x, [w.w_ih for w in directions], [w.w_hh for w in directions],
            [bias_of(plan, w.b_ih, w.b_hh) for w in directions], h0, c0, kernel_valid, masks,
        )  # fmt: skip

    if masked:  # (lean: no input masks) the call's recurrent masks as the kernel reads them

        def run_lean_masked(
            x: Tensor, directions: Sequence[DirectionWeights], h0: Sequence[Tensor], c0: Sequence[Tensor],
            valid: Optional[Tensor], dropout: Sequence[Optional[DropoutMasks]],
        ) -> Results:  # fmt: skip
            return run_lean(x, directions, h0, c0, valid, masks=dropout_masks_of(None, dropout).recurrent_args(plan))

        return LayerPlan(run_lean_masked, _stacked(run_lean_masked), "native", byte_mask=True, masked=True)

    result = LayerPlan(run_lean, _stacked(run_lean), "native", byte_mask=True)  # (masks: keyword only)
    if D == 1:
        one = directions[0]
        b_ih, b_hh = one.b_ih, one.b_hh

        def run_one(x: Tensor, h0: Sequence[Tensor], c0: Sequence[Tensor], valid: Optional[Tensor]) -> Stacked:
            backend.last_used = "native"
            b = [bias_of(plan, b_ih, b_hh)] if summed else bias
            outs, hs, cs = infer(plan, x, w_ih, w_hh, b, h0, c0, no_valid if valid is None else valid, recurrent)
            return outs[0], hs[0][None], cs[0][None]  # (h[None]: unsqueeze(0)'s view, 0.2 us fewer)

        result.run_one = run_one
    return result
