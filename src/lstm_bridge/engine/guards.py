"""Requests the engine refuses before computing: meta tensors, mixed devices and absurd sizes.

:func:`check_request` runs once at the engine entry (:func:`lstm_bridge.engine.run_layer`), so every
front end gets the same clear errors instead of torch's device errors or a bare allocator failure:

* a tensor on the ``meta`` device (no data) -> ``ValueError`` naming the tensor;
* tensors on different devices -> ``ValueError`` naming both devices;
* buffers that cannot fit in this machine's memory -> ``MemoryError`` naming the sizes and bytes.

:func:`check_allocation` is the same size rule for constructors (parameters about to be allocated),
and :func:`allocation_errors` turns an allocator failure during a run into that ``MemoryError``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from .semantics import DirectionWeights, DropoutMasks

Tensor = torch.Tensor

# Allocator failures as torch reports them (CPU and CUDA), lower case, and the size overflows it raises for a
# tensor whose byte count does not fit in 64 bits ("Storage size calculation overflowed", "numel: integer
# multiplication overflow"); anything else propagates unchanged.
_ALLOCATOR_MESSAGES = (
    "can't allocate memory",
    "cannot allocate memory",
    "out of memory",
    "not enough memory",
    "bad_alloc",
    "storage size calculation overflowed",
    "integer multiplication overflow",
)


class SizeError(MemoryError):
    """The ``MemoryError`` these guards raise: it names the request and its sizes already, so an enclosing
    :func:`allocation_errors` (a front end's around the engine's) passes it on unchanged."""


@functools.lru_cache(maxsize=1)
def memory_limit() -> Optional[int]:
    """This machine's physical memory in bytes, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(count: int) -> str:
    """``1536 -> '1.5 KiB'``."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_allocation(what: Union[str, Callable[[], str]], elements: int, dtype: torch.dtype) -> None:
    """Raise ``MemoryError`` when ``elements`` values of ``dtype`` cannot fit in physical memory.

    ``what`` names the request, e.g. ``"the parameters of LSTM(input_size=10, hidden_size=2147483648)"``, or is
    a function returning that text, called only on failure: a message that formats a batch or time size must
    be one, or ``torch.compile`` specialises that size (a recompile for every new batch size).
    """
    if tracing():
        return  # sizes may be symbolic; the check is an eager-mode courtesy
    itemsize = torch.empty((), dtype=dtype).element_size()
    needed = int(elements) * itemsize
    limit = memory_limit()
    if limit is not None and needed > limit:
        raise SizeError(
            f"{_text(what)} need {format_bytes(needed)} ({int(elements)} {str(dtype).replace('torch.', '')} "
            f"values); this machine has {format_bytes(limit)} of memory"
        )


def _named_tensors(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    valid: Optional[Tensor],
    dropout: Sequence[Optional[DropoutMasks]],
) -> Iterator[Tuple[str, Tensor]]:
    yield "x", x
    for d, w in enumerate(directions):
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            t = getattr(w, name)
            if t is not None:
                yield f"direction {d} {name}", t
    for d, (h, c) in enumerate(zip(h0, c0)):
        yield f"direction {d} h0", h
        yield f"direction {d} c0", c
    if valid is not None:
        yield "the step mask", valid
    for d, masks in enumerate(dropout):
        if masks is not None:
            for name in ("inputs", "recurrent"):
                t = getattr(masks, name)
                if t is not None:
                    yield f"direction {d} dropout mask ({name})", t


def check_request(
    x: Tensor,
    directions: Sequence[DirectionWeights],
    h0: Sequence[Tensor],
    c0: Sequence[Tensor],
    *,
    valid: Optional[Tensor],
    dropout: Sequence[Optional[DropoutMasks]],
) -> None:
    """Refuse meta tensors, mixed devices and layers whose buffers cannot fit in memory.

    ``x`` is ``(T, B, I)``; the estimate counts the input projection ``(T, B, 4H)`` and the output
    ``(T, B, H)`` of every direction, in ``x``'s dtype. The common case costs a few microseconds: the
    messages are built only when a check fails.
    """
    device = x.device
    tensors: List[Optional[Tensor]] = [x, *h0, *c0]
    for w in directions:
        tensors += (w.w_ih, w.w_hh, w.b_ih, w.b_hh)
    if valid is not None:
        tensors.append(valid)
    for masks in dropout:
        if masks is not None:
            tensors += (masks.inputs, masks.recurrent)
    if all(t is None or (isinstance(t, Tensor) and not t.is_meta and t.device == device) for t in tensors):
        _check_buffers(x, directions)
        return
    for name, t in _named_tensors(x, directions, h0, c0, valid, dropout):  # name the offending tensor
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; received {type(t).__name__}")
        if t.is_meta:
            raise ValueError(
                f"{name} is a meta tensor (shape {tuple(t.shape)}, no data): lstm-bridge computes "
                f"values, so inputs, states and weights must hold data (e.g. on cpu)"
            )
        if t.device != device:
            raise ValueError(f"all tensors of a layer must be on one device: x is on {device}, {name} is on {t.device}")
    _check_buffers(x, directions)


def _check_buffers(x: Tensor, directions: Sequence[DirectionWeights]) -> None:
    """MemoryError when the layer's buffers for ``x (T, B, I)`` cannot fit in physical memory."""
    if x.dim() != 3 or tracing():
        return  # the shape checks of the path report a wrong rank; traced sizes may be symbolic
    T, B = int(x.shape[0]), int(x.shape[1])
    values = T * B * sum(5 * int(w.w_hh.shape[-1]) for w in directions)
    limit = memory_limit()
    if limit is not None and values * x.element_size() > limit:
        check_allocation(
            f"an LSTM layer over x of shape {tuple(x.shape)} (T={T}, B={B}) with hidden sizes "
            f"{[int(w.w_hh.shape[-1]) for w in directions]}: its buffers (T, B, 4H) and (T, B, H)",
            values,
            x.dtype if x.is_floating_point() else torch.float32,
        )


@contextlib.contextmanager
def allocation_errors(what: Union[str, Callable[[], str]]) -> Iterator[None]:
    """Re-raise an allocator failure inside the block - a bare ``MemoryError``, or torch's ``RuntimeError``
    for a failed allocation or a byte count that overflows - as a :class:`SizeError` naming ``what`` (a
    string, or a function returning it, called only on failure). A :class:`SizeError` from inside (a size
    check, a nested block) passes unchanged: the innermost names the request; other errors keep their type."""
    try:
        yield
    except SizeError:
        raise
    except MemoryError as exc:
        raise SizeError(f"not enough memory for {_text(what)}: {exc}") from exc
    except RuntimeError as exc:
        if any(m in str(exc).lower() for m in _ALLOCATOR_MESSAGES):
            raise SizeError(f"not enough memory for {_text(what)}: {str(exc).splitlines()[0]}") from exc
        raise


def _text(what: Union[str, Callable[[], str]]) -> str:
    return what if isinstance(what, str) else what()


def tracing() -> bool:
    """True while ``torch.compile``, ``torch.export`` (strict or not, the dynamo ONNX exporter too) or
    ``torch.jit.trace`` records the call: the engine then takes the paths built of registered ops and skips
    checks that would read tensor values or guard on symbolic sizes."""
    return torch.compiler.is_compiling() or bool(torch.jit.is_tracing())  # type: ignore[no-untyped-call]


@torch.library.custom_op("lstm_bridge::check_range", mutates_args=())
def check_range(values: Tensor, low: int, high: int, message: str) -> Tensor:
    """``values`` as int64 (a new tensor), after checking every entry lies in ``[low, high]``.

    A registered op, so the check on tensor *values* runs inside a compiled or exported graph instead of
    a Python branch that tracing cannot hold. ``message`` is formatted with ``high``, ``index`` and
    ``value`` (the first offending entry) for the ``RuntimeError`` it raises.
    """
    out = values.to(torch.int64, copy=True)
    bad = ((out < low) | (out > high)).nonzero()
    if bad.numel():
        index = int(bad[0, 0])
        raise RuntimeError(message.format(high=high, index=index, value=int(out.view(-1)[index])))
    return out


@check_range.register_fake
def _check_range_fake(values: Tensor, low: int, high: int, message: str) -> Tensor:
    return values.new_empty(values.shape, dtype=torch.int64)
