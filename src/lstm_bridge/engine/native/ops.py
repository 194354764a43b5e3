"""The native kernel as registered PyTorch custom operators (``torch.library``).

``torch.ops.lstm_bridge.lstm_layer`` and ``torch.ops.lstm_bridge.lstm_layer_backward`` are what
``torch.compile(fullgraph=True)``, ``torch.export``, ``torch.jit.trace`` and the dynamo ONNX exporter
see of a native layer: each has a schema of tensors, tensor lists, ints and bools (no Python object of
the call), a fake implementation that propagates shapes (symbolic ``T`` and ``B`` included), and the
forward op an autograd formula (:func:`torch.library.register_autograd`) whose ``setup_context`` saves
every tensor backward reads through ``ctx.save_for_backward`` (so saved-tensor hooks and
``torch.utils.checkpoint`` see them) and whose backward calls the backward op. Their real kernels are
:func:`.function.forward_impl` / :func:`.function.backward_impl`, the computation the eager
:class:`.function.NativeLayer` runs too.

Schema of ``lstm_layer`` (``D`` directions; ``H_d`` from ``w_hh[d]``; ``S = sum 4 H_d``)::

    x (T, B, I); w_ih[d] (4H_d, I); w_hh[d] (4H_d, H_d); b_ih / b_hh: the present biases only,
    ``has_bias[d]`` / ``has_bias[D + d]`` (0/1) saying which directions have b_ih / b_hh; h0[d], c0[d] (B, H_d);
    valid (T, B) bool or None; in_masks / rec_masks: the present dropout masks (G, B, I) / (G, B, H_d),
    ``has_mask[d]`` / ``has_mask[D + d]`` (0/1) saying which directions have them;
    reverse[d] (0/1: torch.jit.trace holds no bool lists); acts = [gate, candidate, cell] kernel activation
    ids; carry (masked-output rule); save.
    -> (outs[d] (T, B, H_d), h_n[d], c_n[d] (B, H_d), gates (T, B, S) or (0,), c_prev[d], h_prev[d])

``save`` is True when autograd records the call: the op then also returns the activated gates and the
per-step states, which ``setup_context`` saves (they are outputs, never differentiated).

Registration (:func:`define_op`): the ops are defined on a ``torch.library.Library`` fragment with the
kernel registered for ``CPU`` as is, and a lean ``Autograd`` kernel: a call autograd does not record on
plain CPU tensors (a compiled or exported program in inference, ``torch.no_grad``) runs the kernel at
once; a call it records, or one under a mode, fake tensors or functionalization (tracing), takes torch's
own path (``torch.library.register_autograd``'s kernel, a redispatch). ``torch.library.custom_op`` gives
the same semantics with two Python round trips and a wrapper per call (~21 us against ~9 us on this
schema; docs/benchmarks.md, issue 12 section).
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

try:  # torch's own autograd wrapper for custom ops (private; present in the pinned torch 2.13)
    from torch._library import autograd as _torch_autograd
except ImportError:  # pragma: no cover - other torch versions
    _torch_autograd = None  # type: ignore[assignment]

from . import function, onnx_ops
from .plan import Masks, Plan

Tensor = torch.Tensor

__all__ = ["define_op", "lstm_layer", "lstm_layer_backward", "run", "saves_for_backward"]

LIBRARY = torch.library.Library("lstm_bridge", "FRAGMENT")  # type: ignore[no-untyped-call]
"""The fragment of the ``lstm_bridge`` op namespace that :func:`define_op` registers into."""

_BELOW_INPLACE_OR_VIEW = getattr(torch._C, "_after_ADInplaceOrView_keyset", None)
_CPU = torch._C.DispatchKey.CPU
_LEAN_AUTOGRAD = (
    _torch_autograd is not None
    and hasattr(_torch_autograd, "make_autograd_impl")
    and hasattr(_torch_autograd, "Info")
    and _BELOW_INPLACE_OR_VIEW is not None
)
"""Whether this torch has the private pieces the lean ``Autograd`` kernel uses; without them the ops take
``torch.library.register_autograd`` (the same semantics, torch's per-call wrapper)."""


def _empty_lists_for_none(kernel: Callable[..., List[Tensor]]) -> Callable[..., List[Tensor]]:
    """``kernel`` taking None for an empty list argument: AOTInductor's C++ runtime hands an empty ``Tensor[]``
    to a Python kernel as None. The schema's list parameters are read from ``kernel``'s annotations."""
    hints = typing.get_type_hints(kernel)
    names = [p for p in inspect.signature(kernel).parameters]
    lists = tuple(i for i, p in enumerate(names) if typing.get_origin(hints.get(p)) is list)

    @functools.wraps(kernel)
    def tolerant(*args: Any) -> List[Tensor]:
        if any(args[i] is None for i in lists if i < len(args)):
            args = tuple([] if a is None and i in lists else a for i, a in enumerate(args))
        return kernel(*args)

    return tolerant


def define_op(
    name: str,
    kernel: Callable[..., List[Tensor]],
    fake: Callable[..., List[Tensor]],
    backward: Optional[Callable[..., Any]] = None,
    setup_context: Optional[Callable[..., None]] = None,
) -> Any:
    """Define ``lstm_bridge::<name>`` (schema inferred from ``kernel``'s annotations, no mutated arguments,
    ``pt2_compliant``) with ``kernel`` for CPU, ``fake`` for shape propagation and an autograd formula
    (``backward``/``setup_context`` as :func:`torch.library.register_autograd` takes them; without one, a
    recorded call fails in backward, naming the op). Returns the op's default overload.

    The ``Autograd`` kernel: a call autograd records (grad mode on, an input requiring grad) goes through
    torch's autograd wrapper (saved tensors, ``needs_input_grad``, tensor lists); any other call whose
    remaining dispatch keys end at ``CPU`` (no ``TorchDispatchMode``, fake tensor, functionalization or
    other key in between) calls ``kernel`` directly; the rest redispatch below autograd as torch does."""
    schema = torch.library.infer_schema(kernel, mutates_args=())
    kernel = _empty_lists_for_none(kernel)
    LIBRARY.define(name + schema, tags=(torch.Tag.pt2_compliant_tag,))  # type: ignore[no-untyped-call]
    LIBRARY.impl(name, kernel, "CPU")  # type: ignore[no-untyped-call]
    torch.library.register_fake(f"lstm_bridge::{name}", fake, lib=LIBRARY)
    op = getattr(torch.ops.lstm_bridge, name).default
    if not _LEAN_AUTOGRAD:
        if backward is not None:
            torch.library.register_autograd(f"lstm_bridge::{name}", backward, setup_context=setup_context, lib=LIBRARY)
        return op
    recorded = _torch_autograd.make_autograd_impl(op, _torch_autograd.Info(backward, setup_context))
    below_autograd = torch._C._after_autograd_keyset

    def autograd_kernel(keyset: Any, *args: Any) -> Any:
        if torch.is_grad_enabled() and torch._C._any_requires_grad(*args):
            return recorded(keyset, *args)
        if (keyset & _BELOW_INPLACE_OR_VIEW).highestPriorityTypeId() == _CPU:
            return kernel(*args)  # a plain CPU call: nothing between autograd and the kernel
        with torch._C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & below_autograd, *args)

    LIBRARY.impl(name, autograd_kernel, "Autograd", with_keyset=True)  # type: ignore[no-untyped-call]
    return op


def saves_for_backward(tensors: Sequence[Tensor]) -> bool:
    """The ``save`` argument of a layer op: grad mode on and an input requiring grad; always under
    ``torch.jit.trace``. A trace bakes the flag into its graph as a constant, and its check re-traces under
    ``torch.no_grad()``, where the weights a front end derives (a GRU's reordered gate blocks) no longer
    require grad: the two graphs must agree, and the traced module may later train. (A traced module's
    inference then also returns the saved states, which it drops.)"""
    if torch.jit.is_tracing():  # type: ignore[no-untyped-call]
        return True
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


_FwdOut = List[Tensor]
"""Flat (one ``Tensor[]``, which every exporter maps output by output): ``[*outs, *h_n, *c_n, gates,
*c_prev, *h_prev]`` (``c_prev``/``h_prev`` only when saved)."""


def _present(present: Sequence[Tensor], flags: Sequence[int]) -> List[Optional[Tensor]]:
    """Per direction the tensor or None, from the present ones and their 0/1 flags."""
    it = iter(present)
    return [next(it) if f else None for f in flags]


def _unaliased(results: List[Tensor], inputs: Sequence[Optional[Tensor]]) -> List[Tensor]:
    """``results`` with every one that shares memory with an input or an earlier result copied: a custom
    op's outputs may not alias (the directions' ``dW_ih`` are column blocks of one GEMM's result, and a
    kernel may hand back a buffer it was given). The common case, no alias, is one check in C++."""
    any_alias = getattr(torch._C, "_any_output_is_alias_to_input_or_output", None)
    if any_alias is not None and not any_alias(tuple(inputs), {}, tuple(results)):
        return results
    seen = {t.untyped_storage().data_ptr() for t in inputs if t is not None and t.numel()}
    out = []
    for r in results:
        if r.numel():
            if r.untyped_storage().data_ptr() in seen:
                r = r.clone()
            seen.add(r.untyped_storage().data_ptr())
        out.append(r)
    return out


def _kernel_valid(valid: Optional[Tensor]) -> Optional[Tensor]:
    """The step mask as the kernel reads it, uint8 ``(T, B)``: a bool tensor's bytes, no conversion when
    :func:`run` passed it contiguous (:func:`.function.kernel_masks` then keeps it as is)."""
    return None if valid is None else valid.contiguous().view(torch.uint8)


_NO_VALID = torch.empty(0, dtype=torch.uint8)
_INFERENCE_PLANS: Dict[Tuple[Any, ...], Plan] = {}


def _inference_plan(
    x: Tensor, w_hh: Sequence[Tensor], reverse: Sequence[int], acts: Sequence[int], carry: bool
) -> Optional[Plan]:
    """The :class:`.Plan` of an unrecorded call without dropout masks when it takes the lean inference entry
    (:func:`.function.lean_inference`: float32/float64, no input masks), else None.

    Plans are kept per hashable signature - dtype, hidden sizes, directions, activations, masked-output rule,
    ``native.GEMM_PATH`` - so a repeated call skips :func:`.function.make_plan`'s argument normalisation."""
    from . import GEMM_PATH  # read per call: tests switch it

    H = tuple([int(w.shape[1]) for w in w_hh])
    key = (x.dtype, H, tuple(reverse), tuple(acts), carry, GEMM_PATH)
    plan = _INFERENCE_PLANS.get(key)
    if plan is None:
        plan = function.make_plan(H, [bool(r) for r in reverse], acts, carry, x.dtype, False)
        if len(_INFERENCE_PLANS) > 256:
            _INFERENCE_PLANS.clear()
        _INFERENCE_PLANS[key] = plan
    return plan if function.lean_inference(plan, _no_masks(plan.D)) else None


@functools.lru_cache(maxsize=8)
def _no_masks(D: int) -> Masks:
    return Masks(None, (None,) * D, (None,) * D)


def _lstm_layer_kernel(
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    b_ih: List[Tensor],
    b_hh: List[Tensor],
    has_bias: List[int],
    h0: List[Tensor],
    c0: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    acts: List[int],
    carry: bool,
    save: bool,
) -> _FwdOut:
    """One native LSTM layer forward (see the module docstring for the schema)."""
    D = len(w_hh)
    if not save and not in_masks and not rec_masks:
        plan = _inference_plan(x, w_hh, reverse, acts, carry)
        if plan is not None:  # what a compiled or exported program runs in inference
            bias = [
                function.kernel_bias(plan, bi, bh)
                for bi, bh in zip(_present(b_ih, has_bias[:D]), _present(b_hh, has_bias[D:]))
            ]
            kernel_valid = _NO_VALID if valid is None else valid.contiguous().view(torch.uint8)
            outs, hn, cn = function.infer(plan, x, w_ih, w_hh, bias, h0, c0, kernel_valid, [plan.empty()] * D)
            # fresh tensors of the kernel (at::empty): nothing aliases an input or another output
            return [*outs, *hn, *cn, x.new_empty((0,))]
    outs, hn, cn, gates, c_prev, h_prev = function.forward_impl(
        x,
        w_ih,
        w_hh,
        _present(b_ih, has_bias[:D]),
        _present(b_hh, has_bias[D:]),
        h0,
        c0,
        _kernel_valid(valid),
        _present(in_masks, has_mask[:D]),
        _present(rec_masks, has_mask[D:]),
        [bool(r) for r in reverse],
        acts,
        carry,
        save,
    )
    return _unaliased([*outs, *hn, *cn, gates, *c_prev, *h_prev], [x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0])


def _lstm_layer_fake(
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    b_ih: List[Tensor],
    b_hh: List[Tensor],
    has_bias: List[int],
    h0: List[Tensor],
    c0: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    acts: List[int],
    carry: bool,
    save: bool,
) -> _FwdOut:
    T, B = x.shape[0], x.shape[1]
    hidden = [w.shape[1] for w in w_hh]
    outs = [x.new_empty((T, B, h)) for h in hidden]
    hn = [x.new_empty((B, h)) for h in hidden]
    cn = [x.new_empty((B, h)) for h in hidden]
    if not save:
        return [*outs, *hn, *cn, x.new_empty((0,))]
    S = sum(w.shape[0] for w in w_hh)
    kd = torch.float32 if x.dtype == torch.bfloat16 else x.dtype  # a bf16 layer keeps float32 state (Plan)
    saved = [x.new_empty((T, B, h), dtype=kd) for h in hidden] + [x.new_empty((T, B, h), dtype=kd) for h in hidden]
    return [*outs, *hn, *cn, x.new_empty((T, B, S), dtype=kd), *saved]


def _lstm_layer_backward_kernel(
    grad_outs: List[Tensor],
    grad_hn: List[Tensor],
    grad_cn: List[Tensor],
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    gates: Tensor,
    c_prev: List[Tensor],
    h_prev: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    acts: List[int],
    carry: bool,
    need: List[int],
) -> List[Tensor]:
    """One native LSTM layer backward: the gradients of ``x, w_ih[d], w_hh[d], b_ih[d], b_hh[d], h0[d],
    c0[d]`` (that flat order) for which ``need`` is True, in that order."""
    grads = function.backward_impl(
        grad_outs,
        grad_hn,
        grad_cn,
        x,
        w_ih,
        w_hh,
        gates,
        c_prev,
        h_prev,
        _kernel_valid(valid),
        _present(in_masks, has_mask[: len(w_hh)]),
        _present(rec_masks, has_mask[len(w_hh) :]),
        [bool(r) for r in reverse],
        acts,
        carry,
        [bool(n) for n in need],
    ).flat()
    results = [g if g is not None else x.new_empty((0,)) for g, n in zip(grads, need) if n]
    return _unaliased(results, [*grad_outs, *grad_hn, *grad_cn, x, *w_ih, *w_hh, gates, *c_prev, *h_prev])


def _grad_shapes(x: Tensor, w_ih: Sequence[Tensor], w_hh: Sequence[Tensor], states: int = 2) -> List[Tuple[Any, ...]]:
    """The flat shapes of the gradients of ``x, w_ih, w_hh, b_ih, b_hh`` and ``states`` initial states per
    direction (``h0, c0`` for the LSTM: ``1DDDDDD``; ``h0`` for the GRU/RNN: ``1DDDDD``)."""
    B = x.shape[1]
    return [
        tuple(x.shape),
        *[tuple(w.shape) for w in w_ih],
        *[tuple(w.shape) for w in w_hh],
        *[(w.shape[0],) for w in w_hh],
        *[(w.shape[0],) for w in w_hh],
        *[(B, w.shape[1]) for _ in range(states) for w in w_hh],
    ]


def _lstm_layer_backward_fake(
    grad_outs: List[Tensor],
    grad_hn: List[Tensor],
    grad_cn: List[Tensor],
    x: Tensor,
    w_ih: List[Tensor],
    w_hh: List[Tensor],
    gates: Tensor,
    c_prev: List[Tensor],
    h_prev: List[Tensor],
    valid: Optional[Tensor],
    in_masks: List[Tensor],
    rec_masks: List[Tensor],
    has_mask: List[int],
    reverse: List[int],
    acts: List[int],
    carry: bool,
    need: List[int],
) -> List[Tensor]:
    kd = torch.float32 if x.dtype == torch.bfloat16 else x.dtype  # a bf16 layer: float32 gradients but dx
    shapes = _grad_shapes(x, w_ih, w_hh)
    return [x.new_empty(s, dtype=x.dtype if i == 0 else kd) for i, (s, n) in enumerate(zip(shapes, need)) if n]


def _setup_context(ctx: Any, inputs: Tuple[Any, ...], output: Any) -> None:
    x, w_ih, w_hh, b_ih, b_hh, has_bias, h0, c0, valid, in_masks, rec_masks, has_mask, reverse, acts, carry, save = (
        inputs
    )
    if not save:
        raise RuntimeError(
            "lstm_bridge::lstm_layer was recorded by autograd with save=False: pass save=True when grad mode is "
            "on and an input requires grad (lstm_bridge.engine.native.ops.run decides it)"
        )
    D = len(w_hh)
    gates, c_prev, h_prev = output[3 * D], output[3 * D + 1 : 4 * D + 1], output[4 * D + 1 : 5 * D + 1]
    ctx.D = D
    ctx.meta = ([bool(b) for b in has_bias], list(has_mask), list(reverse), list(acts), bool(carry))
    ctx.n_masks = (len(in_masks), len(rec_masks))
    ctx.save_for_backward(x, *w_ih, *w_hh, gates, *c_prev, *h_prev, valid, *in_masks, *rec_masks)


def _zeros_if_none(grads: Sequence[Optional[Tensor]], like: Sequence[Tensor]) -> List[Tensor]:
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like)]


def _backward(ctx: Any, grads: Sequence[Optional[Tensor]]) -> Tuple[Any, ...]:
    D = ctx.D
    grad_outs, grad_hn, grad_cn = grads[0:D], grads[D : 2 * D], grads[2 * D : 3 * D]
    has_bias, has_mask, reverse, acts, carry = ctx.meta
    n_in, n_rec = ctx.n_masks
    saved = ctx.saved_tensors
    x = saved[0]
    w_ih, w_hh = list(saved[1 : 1 + D]), list(saved[1 + D : 1 + 2 * D])
    gates = saved[1 + 2 * D]
    c_prev = list(saved[2 + 2 * D : 2 + 3 * D])
    h_prev = list(saved[2 + 3 * D : 2 + 4 * D])
    valid = saved[2 + 4 * D]
    in_masks = list(saved[3 + 4 * D : 3 + 4 * D + n_in])
    rec_masks = list(saved[3 + 4 * D + n_in : 3 + 4 * D + n_in + n_rec])
    need_x, need_w_ih, need_w_hh, need_b_ih, need_b_hh, _, need_h0, need_c0 = ctx.needs_input_grad[:8]
    # a list input comes back as a list of booleans; an empty (bias-free) list as one boolean
    n_w_ih = _per_direction(need_w_ih, D)
    n_w_hh = _per_direction(need_w_hh, D)
    n_b_ih = _expand(_per_direction(need_b_ih, sum(has_bias[:D])), has_bias[:D])
    n_b_hh = _expand(_per_direction(need_b_hh, sum(has_bias[D:])), has_bias[D:])
    n_h0, n_c0 = _per_direction(need_h0, D), _per_direction(need_c0, D)
    need = [int(n) for n in (bool(need_x), *n_w_ih, *n_w_hh, *n_b_ih, *n_b_hh, *n_h0, *n_c0)]
    outs_like = [h for h in h_prev]
    states_like = [h[0] for h in h_prev]
    grads = torch.ops.lstm_bridge.lstm_layer_backward(
        _zeros_if_none(grad_outs, outs_like),
        _zeros_if_none(grad_hn, states_like),
        _zeros_if_none(grad_cn, states_like),
        x,
        w_ih,
        w_hh,
        gates,
        c_prev,
        h_prev,
        valid,
        in_masks,
        rec_masks,
        has_mask,
        reverse,
        acts,
        carry,
        need,
    )
    it = iter(grads)
    flat = [next(it) if n else None for n in need]
    d_x = flat[0]
    d_w_ih, d_w_hh = flat[1 : 1 + D], flat[1 + D : 1 + 2 * D]
    d_b_ih = [g for g, h in zip(flat[1 + 2 * D : 1 + 3 * D], has_bias[:D]) if h]
    d_b_hh = [g for g, h in zip(flat[1 + 3 * D : 1 + 4 * D], has_bias[D:]) if h]
    d_h0, d_c0 = flat[1 + 4 * D : 1 + 5 * D], flat[1 + 5 * D : 1 + 6 * D]
    return (
        d_x,
        d_w_ih,
        d_w_hh,
        d_b_ih,
        d_b_hh,
        None,
        d_h0,
        d_c0,
        None,  # valid
        [None] * n_in,  # the dropout masks: lists keep their structure
        [None] * n_rec,
        None,
        None,
        None,
        None,
        None,
    )


def _per_direction(flag: Any, n: int) -> List[bool]:
    if isinstance(flag, (list, tuple)):
        return [bool(f) for f in flag]
    return [bool(flag)] * n


def _expand(flags: Sequence[bool], present: Sequence[bool]) -> List[bool]:
    it = iter(flags)
    return [next(it) if p else False for p in present]


lstm_layer = define_op("lstm_layer", _lstm_layer_kernel, _lstm_layer_fake, _backward, _setup_context)
lstm_layer_backward = define_op("lstm_layer_backward", _lstm_layer_backward_kernel, _lstm_layer_backward_fake)


def run(
    x: Tensor,
    w_ih: Sequence[Tensor],
    w_hh: Sequence[Tensor],
    b_ih: Sequence[Optional[Tensor]],
    b_hh: Sequence[Optional[Tensor]],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    valid: Optional[Tensor],
    in_masks: Sequence[Optional[Tensor]],
    rec_masks: Sequence[Optional[Tensor]],
    reverse: Sequence[bool],
    acts: Sequence[int],
    carry: bool,
) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
    """One layer through ``torch.ops.lstm_bridge.lstm_layer``: ``(outs, h_n, c_n)`` lists over directions.

    ``save`` (what backward needs) is decided here, where grad mode is visible: grad mode on and some
    differentiable input requiring grad."""
    tensors = [x, *w_ih, *w_hh, *h0, *c0, *[b for b in b_ih if b is not None], *[b for b in b_hh if b is not None]]
    save = saves_for_backward(tensors)
    has_bias = [int(b is not None) for b in b_ih] + [int(b is not None) for b in b_hh]
    D = len(w_hh)
    results = torch.ops.lstm_bridge.lstm_layer(
        x,
        list(w_ih),
        list(w_hh),
        [b for b in b_ih if b is not None],
        [b for b in b_hh if b is not None],
        has_bias,
        list(h0),
        list(c0),
        None if valid is None else valid.contiguous(),  # (compiled: the producer writes it in the kernel's layout)
        [m for m in in_masks if m is not None],
        [m for m in rec_masks if m is not None],
        [int(m is not None) for m in in_masks] + [int(m is not None) for m in rec_masks],
        [int(bool(r)) for r in reverse],
        [int(a) for a in acts],
        bool(carry),
        save,
    )
    return list(results[0:D]), list(results[D : 2 * D]), list(results[2 * D : 3 * D])


onnx_ops.install()  # torch.onnx.export(..., dynamo=True) translates lstm_layer to ONNX LSTM nodes
