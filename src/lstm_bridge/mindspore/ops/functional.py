"""``mindspore.ops`` functions (and ``mindspore.ops.functional``, imported as ``F`` in model-zoo code) on torch.

Each takes MindSpore Tensors / Parameters (or plain torch tensors), computes with torch and returns
:class:`~lstm_bridge.mindspore.common.tensor.Tensor`. Arguments are MindSpore's (``axis``, ``keep_dims``,
``dims``); values as MindSpore 2.10 computes them (tests/test_mindspore_ops.py compares with recorded
results). ``shape(x)`` returns a tuple of ints.
"""

from __future__ import annotations

import builtins
import typing
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..common import dtype as mstype
from ..common.tensor import Tensor, _w, plain, wrap


def _t(x: Any) -> torch.Tensor:
    """A plain torch tensor from a Tensor, Parameter, NumPy array or Python number (MindSpore's scalar rules)."""
    if isinstance(x, torch.Tensor):
        return typing.cast(torch.Tensor, plain(x))
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return typing.cast(torch.Tensor, plain(Tensor(x)))


def _pair(x: Any, y: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """Binary operands: a Python scalar takes the tensor's dtype, except a float with an integer tensor
    (float32), as MindSpore's implicit conversion does."""
    if isinstance(x, torch.Tensor) and not isinstance(y, torch.Tensor):
        a = plain(x)
        if isinstance(y, bool) or not isinstance(y, (int, float)):
            return a, _t(y)
        if isinstance(y, float) and not a.is_floating_point():
            return a, torch.tensor(y, dtype=torch.float32)
        return a, torch.tensor(y, dtype=a.dtype)
    if isinstance(y, torch.Tensor) and not isinstance(x, torch.Tensor):
        b, a = _pair(y, x)
        return a, b
    return _t(x), _t(y)


def _axes(axis: Any) -> Optional[Tuple[int, ...]]:
    if axis is None or axis == () or axis == []:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(int(a) for a in axis)
    return (int(axis),)


def _reduce(fn: Any, x: Any, axis: Any, keep: bool) -> Tensor:
    t = _t(x)
    dims = _axes(axis)
    if dims is None:
        out = fn(t)
        return _w(out.reshape([1] * t.dim()) if keep else out)
    return _w(fn(t, dim=dims, keepdim=keep))


# --- shape -----------------------------------------------------------------------------------------------
def shape(input_x: Any) -> Tuple[int, ...]:
    return tuple(_t(input_x).shape)


def rank(input_x: Any) -> int:
    return _t(input_x).dim()


def size(input_x: Any) -> int:
    return _t(input_x).numel()


def dtype(input_x: Any) -> torch.dtype:
    return _t(input_x).dtype


def reshape(input: Any, shape: Sequence[int]) -> Tensor:
    return _w(_t(input).reshape(tuple(shape)))


def transpose(input: Any, dims: Sequence[int]) -> Tensor:
    t = _t(input)
    if len(dims) != t.dim():
        raise ValueError(
            f"For 'Transpose', the length of 'input_perm' must equal the rank of x: expected {t.dim()}; "
            f"received {tuple(dims)}"
        )
    return _w(t.permute(tuple(dims)))


permute = transpose


def swapaxes(input: Any, axis0: int, axis1: int) -> Tensor:
    return _w(_t(input).transpose(axis0, axis1))


def expand_dims(input_x: Any, axis: int) -> Tensor:
    return _w(_t(input_x).unsqueeze(axis))


def unsqueeze(input: Any, dim: int) -> Tensor:
    return _w(_t(input).unsqueeze(dim))


def squeeze(input: Any, axis: Any = None) -> Tensor:
    t = _t(input)
    dims = _axes(axis)
    if dims is None:
        return _w(t.squeeze())
    for d in dims:
        if t.shape[d] != 1:
            raise ValueError(
                f"For 'Squeeze', the dimension {d} of x must be 1 to squeeze; x has shape {tuple(t.shape)}"
            )
    return _w(t.squeeze(dims))


def flatten(input: Any, order: str = "C", *, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    t = _t(input)
    return _w(t.reshape(1) if t.dim() == 0 else torch.flatten(t, start_dim, end_dim))


def tile(input: Any, dims: Sequence[int]) -> Tensor:
    return _w(_t(input).tile(tuple(dims)))


def broadcast_to(input: Any, shape: Sequence[int]) -> Tensor:
    t = _t(input)
    target = [t.shape[i - (len(shape) - t.dim())] if s == -1 else s for i, s in enumerate(shape)]
    return _w(t.expand(*target))


# --- joining and splitting ----------------------------------------------------------------------------------
def concat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return _w(torch.cat([_t(x) for x in tensors], dim=axis))


cat = concat


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return _w(torch.stack([_t(x) for x in tensors], dim=axis))


def unstack(input_x: Any, axis: int = 0) -> Tuple[Tensor, ...]:
    return tuple(wrap(v) for v in torch.unbind(_t(input_x), dim=axis))


def split(tensor: Any, split_size_or_sections: Any, axis: int = 0) -> Tuple[Tensor, ...]:
    """``ops.split``: an int is the size of each chunk (the last may be smaller); a list, the sizes."""
    sizes = (
        list(split_size_or_sections) if isinstance(split_size_or_sections, (list, tuple)) else split_size_or_sections
    )
    return tuple(wrap(v) for v in torch.split(_t(tensor), sizes, dim=axis))


def slice(input_x: Any, begin: Sequence[int], size: Sequence[int]) -> Tensor:  # noqa: A001 (MindSpore's name)
    t = _t(input_x)
    index = tuple(builtins.slice(b, t.shape[i] if s == -1 else b + s) for i, (b, s) in enumerate(zip(begin, size)))
    return _w(t[index])


def flip(input: Any, dims: Sequence[int]) -> Tensor:
    return _w(torch.flip(_t(input), tuple(dims)))


def reverse_sequence(x: Any, seq_lengths: Any, seq_dim: int, batch_dim: int = 0) -> Tensor:
    """Reverse the first ``seq_lengths[b]`` entries along ``seq_dim`` of each batch row ``b``."""
    t = _t(x)
    lengths = _t(seq_lengths).long()
    T = t.shape[seq_dim]
    steps = torch.arange(T).view(1, T)
    L = lengths.view(-1, 1)
    src = torch.where(steps < L, L - 1 - steps, steps)  # (B, T)
    moved = t.movedim((batch_dim, seq_dim), (0, 1))
    idx = src.view(src.shape + (1,) * (moved.dim() - 2)).expand(moved.shape)
    return _w(moved.gather(1, idx).movedim((0, 1), (batch_dim, seq_dim)))


# --- indexing ------------------------------------------------------------------------------------------------
def gather(input_params: Any, input_indices: Any, axis: int, batch_dims: int = 0) -> Tensor:
    """``params.shape[:axis] + indices.shape + params.shape[axis+1:]`` (MindSpore's Gather, batch_dims=0)."""
    if batch_dims:
        raise ValueError("For 'Gather', lstm-bridge supports batch_dims=0 only")
    p = _t(input_params)
    i = _t(input_indices).long()
    axis = axis % p.dim()
    out = p.index_select(axis, i.reshape(-1))
    return _w(out.reshape(p.shape[:axis] + i.shape + p.shape[axis + 1 :]))


def gather_nd(input_x: Any, indices: Any) -> Tensor:
    t = _t(input_x)
    i = _t(indices).long()
    k = i.shape[-1]
    return _w(t[tuple(i[..., j] for j in range(k))])


def masked_select(input: Any, mask: Any) -> Tensor:
    return _w(torch.masked_select(_t(input), _t(mask).bool()))


def select(condition: Any, input: Any, other: Any) -> Tensor:
    a, b = _pair(input, other)
    return _w(torch.where(_t(condition).bool(), a, b))


def sequence_mask(lengths: Any, maxlen: Optional[int] = None) -> Tensor:
    L = _t(lengths)
    n = int(L.max()) if maxlen is None else int(maxlen)
    return _w(torch.arange(n) < L.unsqueeze(-1))


def one_hot(indices: Any, depth: int, on_value: Any = 1, off_value: Any = 0, axis: int = -1) -> Tensor:
    i = _t(indices).long()
    on, off = _t(on_value), _t(off_value)
    hot = torch.nn.functional.one_hot(i.clamp(min=0), int(depth)).bool() & (i >= 0).unsqueeze(-1)
    out = torch.where(hot, on, off).to(on.dtype)
    if axis != -1:
        out = out.movedim(-1, axis)
    return _w(out)


# --- dtype and creation --------------------------------------------------------------------------------------
def cast(input: Any, dtype: Any) -> Tensor:
    return _w(_t(input).to(mstype.to_torch_dtype(dtype)))


def zeros(size: Any, dtype: Any = None) -> Tensor:
    shape_ = (size,) if isinstance(size, int) else tuple(size)
    return _w(torch.zeros(shape_, dtype=mstype.to_torch_dtype(dtype or mstype.float32)))


def ones(shape: Any, dtype: Any = None) -> Tensor:
    shape_ = (shape,) if isinstance(shape, int) else tuple(shape)
    return _w(torch.ones(shape_, dtype=mstype.to_torch_dtype(dtype or mstype.float32)))


def fill(type: Any, shape: Any, value: Any) -> Tensor:  # noqa: A002 (MindSpore's name)
    return _w(torch.full(tuple(shape), value, dtype=mstype.to_torch_dtype(type)))


def zeros_like(input: Any, *, dtype: Any = None) -> Tensor:
    t = _t(input)
    return _w(torch.zeros_like(t, dtype=None if dtype is None else mstype.to_torch_dtype(dtype)))


def ones_like(input: Any, *, dtype: Any = None) -> Tensor:
    t = _t(input)
    return _w(torch.ones_like(t, dtype=None if dtype is None else mstype.to_torch_dtype(dtype)))


# --- reductions ------------------------------------------------------------------------------------------------
def mean(x: Any, axis: Any = None, keep_dims: bool = False) -> Tensor:
    return _reduce(torch.mean, x, axis, keep_dims)


def sum(input: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001
    t = _t(input)
    if dtype is not None:
        t = t.to(mstype.to_torch_dtype(dtype))
    return _reduce(torch.sum, t, dim, keepdim)


def amax(input: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.amax, input, axis, keepdims)


def amin(input: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.amin, input, axis, keepdims)


def max(input: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """``ops.max``: the maximum (a 0-d Tensor) without ``axis``; ``(values, indices)`` along ``axis``."""
    t = _t(input)
    if axis is None:
        return wrap(t.max())
    values, indices = torch.max(t, dim=int(axis), keepdim=keepdims)
    return wrap(values), wrap(indices)


def min(input: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    t = _t(input)
    if axis is None:
        return wrap(t.min())
    values, indices = torch.min(t, dim=int(axis), keepdim=keepdims)
    return wrap(values), wrap(indices)


def argmax(input: Any, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
    return _w(torch.argmax(_t(input), dim=dim, keepdim=keepdim))


def prod(input: Any, axis: Any = None, keep_dims: bool = False) -> Tensor:
    t = _t(input)
    dims = _axes(axis)
    if dims is None:
        out = t.prod()
        return _w(out.reshape([1] * t.dim()) if keep_dims else out)
    for d in sorted((d % t.dim() for d in dims), reverse=True):
        t = t.prod(dim=d, keepdim=keep_dims)
    return _w(t)


# --- arithmetic and activations ------------------------------------------------------------------------------
def _promoted(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Matrix products of two float dtypes compute in the wider one (torch's matmul refuses mixed dtypes; a
    float16 activation meets a float32 Parameter under ``to_float``)."""
    if a.dtype == b.dtype:
        return a, b
    common = torch.promote_types(a.dtype, b.dtype)
    return a.to(common), b.to(common)


def matmul(input: Any, other: Any) -> Tensor:
    return _w(torch.matmul(*_promoted(_t(input), _t(other))))


def bmm(input_x: Any, mat2: Any) -> Tensor:
    return _w(torch.matmul(*_promoted(_t(input_x), _t(mat2))))


def softmax(input: Any, axis: int = -1, *, dtype: Any = None) -> Tensor:
    t = _t(input)
    if dtype is not None:
        t = t.to(mstype.to_torch_dtype(dtype))
    return _w(torch.softmax(t, dim=axis))


def log_softmax(logits: Any, axis: int = -1) -> Tensor:
    return _w(torch.log_softmax(_t(logits), dim=axis))


def _unary(fn: Any) -> Any:
    def op(input: Any) -> Tensor:
        return _w(fn(_t(input)))

    op.__name__ = fn.__name__
    op.__doc__ = f"``ops.{fn.__name__}``: torch.{fn.__name__} element-wise."
    return op


sigmoid = _unary(torch.sigmoid)
tanh = _unary(torch.tanh)
exp = _unary(torch.exp)
log = _unary(torch.log)
sqrt = _unary(torch.sqrt)
rsqrt = _unary(torch.rsqrt)
abs = _unary(torch.abs)  # noqa: A001
neg = _unary(torch.neg)
square = _unary(torch.square)
sin = _unary(torch.sin)
cos = _unary(torch.cos)
logical_not = _unary(torch.logical_not)


def relu(input: Any, inplace: bool = False) -> Tensor:
    return _w(torch.relu(_t(input)))


def gelu(input_x: Any, approximate: str = "none") -> Tensor:
    return _w(torch.nn.functional.gelu(_t(input_x), approximate=approximate))


def _binary(fn: Any, name: str) -> Any:
    def op(input: Any, other: Any) -> Tensor:
        a, b = _pair(input, other)
        return _w(fn(a, b))

    op.__name__ = name
    op.__doc__ = f"``ops.{name}``: element-wise, with broadcasting."
    return op


add = _binary(torch.add, "add")
sub = _binary(torch.sub, "sub")
mul = _binary(torch.mul, "mul")
div = _binary(torch.div, "div")
maximum = _binary(torch.maximum, "maximum")
minimum = _binary(torch.minimum, "minimum")
pow = _binary(torch.pow, "pow")  # noqa: A001
equal = _binary(torch.eq, "equal")
not_equal = _binary(torch.ne, "not_equal")
less = _binary(torch.lt, "less")
less_equal = _binary(torch.le, "less_equal")
greater = _binary(torch.gt, "greater")
greater_equal = _binary(torch.ge, "greater_equal")
logical_and = _binary(torch.logical_and, "logical_and")
logical_or = _binary(torch.logical_or, "logical_or")


def bias_add(input_x: Any, bias: Any) -> Tensor:
    t, b = _t(input_x), _t(bias)
    return _w(t + b.view((1, -1) + (1,) * (t.dim() - 2)))


def stop_gradient(value: Any) -> Any:
    return wrap(plain(value).detach()) if isinstance(value, torch.Tensor) else value


def depend(value: Any, expr: Any) -> Any:
    """MindSpore's execution-order hint: returns ``value`` (eager execution already runs in order)."""
    return value


def print_(*input_x: Any) -> None:
    print(*(plain(x) if isinstance(x, torch.Tensor) else x for x in input_x))


# --- more of the model zoo's forward passes ------------------------------------------------------------------
def strided_slice(
    input_x: Any,
    begin: Sequence[int],
    end: Sequence[int],
    strides: Sequence[int],
    begin_mask: int = 0,
    end_mask: int = 0,
    ellipsis_mask: int = 0,
    new_axis_mask: int = 0,
    shrink_axis_mask: int = 0,
) -> Tensor:
    """MindSpore's (= TensorFlow's) StridedSlice: bit ``i`` of a mask applies to the ``i``-th entry of ``begin``."""
    t = _t(input_x)
    index: List[Any] = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if ellipsis_mask & bit:
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(None)
        elif shrink_axis_mask & bit:
            index.append(int(b))
        else:
            index.append(builtins.slice(None if begin_mask & bit else b, None if end_mask & bit else e, s))
    if any(isinstance(s, int) and s < 0 for s in strides):
        raise ValueError(
            "For 'StridedSlice', lstm-bridge supports positive strides only; received " + str(tuple(strides))
        )
    return _w(t[tuple(index)])


def topk(
    input: Any, k: int, dim: Optional[int] = None, largest: bool = True, sorted: bool = True
) -> Tuple[Tensor, Tensor]:
    t = _t(input)
    values, indices = torch.topk(t, int(k), dim=-1 if dim is None else dim, largest=largest, sorted=sorted)
    return _w(values), _w(indices.to(torch.int32))  # int32 indices, as MindSpore 2.10


def addn(x: Sequence[Any]) -> Tensor:
    tensors = [_t(v) for v in x]
    out = tensors[0]
    for t in tensors[1:]:
        out = out + t
    return _w(out)


def floor_divide(input: Any, other: Any) -> Tensor:
    a, b = _pair(input, other)
    return _w(torch.floor_divide(a, b))


def cumsum(x: Any, axis: int, dtype: Any = None) -> Tensor:
    t = _t(x)
    return _w(torch.cumsum(t, dim=axis, dtype=None if dtype is None else mstype.to_torch_dtype(dtype)))


def pad(input_x: Any, padding: Sequence[int], mode: str = "constant", value: Any = None) -> Tensor:
    """torch's convention: ``padding`` pairs from the last axis backwards."""
    t = _t(input_x)
    if mode == "constant":
        return _w(torch.nn.functional.pad(t, tuple(padding), value=0 if value is None else value))
    return _w(torch.nn.functional.pad(t, tuple(padding), mode=mode))


def clip_by_value(x: Any, clip_value_min: Any = None, clip_value_max: Any = None) -> Tensor:
    t = _t(x)
    lo = None if clip_value_min is None else _t(clip_value_min).to(t.dtype)
    hi = None if clip_value_max is None else _t(clip_value_max).to(t.dtype)
    return _w(torch.clamp(t, lo, hi))


def nll_loss(
    inputs: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    if label_smoothing:
        raise ValueError("For 'nll_loss', lstm-bridge supports label_smoothing=0.0 only")
    w = None if weight is None else _t(weight)
    return _w(
        torch.nn.functional.nll_loss(_t(inputs), _t(target).long(), w, ignore_index=ignore_index, reduction=reduction)
    )


def tuple_to_array(input_x: Sequence[Any]) -> Tensor:
    """A tuple of numbers as a 1-D Tensor: int32 for ints, float32 for floats (MindSpore 2.10)."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in input_x)
    return _w(torch.tensor(tuple(input_x), dtype=torch.int32 if ints else torch.float32))


def scalar_to_tensor(input_x: Any, dtype: Any = mstype.float32) -> Tensor:
    return _w(torch.tensor(input_x, dtype=mstype.to_torch_dtype(dtype)))


def identity(x: Any) -> Any:
    return x


def dropout(input: Any, p: float = 0.5, training: bool = True, seed: Any = None) -> Tensor:
    return _w(torch.nn.functional.dropout(_t(input), p, training=training))


reciprocal = _unary(torch.reciprocal)
round = _unary(torch.round)  # noqa: A001 (half to even, as MindSpore's)
floor = _unary(torch.floor)
erf = _unary(torch.erf)
fmod = _binary(torch.fmod, "fmod")


# --- more functions (MindSpore 2.10 signatures) -----------------------------------------------------------------
def reduce_sum(x: Any, axis: Any = ()) -> Tensor:
    return _reduce(torch.sum, x, axis, False)


def reduce_mean(x: Any, axis: Any = ()) -> Tensor:
    return _reduce(torch.mean, x, axis, False)


def reduce_max(x: Any, axis: Any = ()) -> Tensor:
    return _reduce(torch.amax, x, axis, False)


def reduce_min(x: Any, axis: Any = ()) -> Tensor:
    return _reduce(torch.amin, x, axis, False)


def argmin(input: Any, axis: Optional[int] = None, keepdims: bool = False) -> Tensor:
    """int32 indices (MindSpore 2.10's argmin; its argmax gives int64)."""
    return _w(torch.argmin(_t(input), dim=axis, keepdim=keepdims).to(torch.int32))


def softplus(input: Any, beta: float = 1, threshold: float = 20) -> Tensor:
    return _w(torch.nn.functional.softplus(_t(input), beta=beta, threshold=threshold))


def leaky_relu(input: Any, alpha: float = 0.2) -> Tensor:
    return _w(torch.nn.functional.leaky_relu(_t(input), alpha))


def elu(input_x: Any, alpha: float = 1.0) -> Tensor:
    return _w(torch.nn.functional.elu(_t(input_x), alpha))


def silu(input: Any) -> Tensor:
    return _w(torch.nn.functional.silu(_t(input)))


def chunk(input: Any, chunks: int, axis: int = 0) -> Tuple[Tensor, ...]:
    return tuple(_w(v) for v in torch.chunk(_t(input), chunks, dim=axis))


def narrow(input: Any, axis: int, start: int, length: int) -> Tensor:
    return _w(_t(input).narrow(axis, start, length))


def einsum(equation: str, *operands: Any) -> Tensor:
    return _w(torch.einsum(equation, *[_t(o) for o in operands]))


def where(condition: Any, input: Any, other: Any) -> Tensor:
    return select(condition, input, other)


def logsumexp(input: Any, dim: Any, keepdim: bool = False) -> Tensor:
    return _w(torch.logsumexp(_t(input), dim=dim, keepdim=keepdim))


def cross_entropy(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    tgt = _t(target)
    tgt = tgt if tgt.is_floating_point() else tgt.long()
    w = None if weight is None else _t(weight)
    return _w(
        torch.nn.functional.cross_entropy(
            _t(input), tgt, w, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing
        )
    )


def binary_cross_entropy(logits: Any, labels: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    w = None if weight is None else _t(weight)
    return _w(torch.nn.functional.binary_cross_entropy(_t(logits), _t(labels), w, reduction=reduction))


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    return _w(torch.nn.functional.mse_loss(_t(input), _t(target), reduction=reduction))


def cumprod(input: Any, dim: int, dtype: Any = None) -> Tensor:
    return _w(torch.cumprod(_t(input), dim=dim, dtype=None if dtype is None else mstype.to_torch_dtype(dtype)))


def clamp(input: Any, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    t = _t(input)
    lo = None if min is None else (_t(min).to(t.dtype) if isinstance(min, torch.Tensor) else min)
    hi = None if max is None else (_t(max).to(t.dtype) if isinstance(max, torch.Tensor) else max)
    return _w(torch.clamp(t, lo, hi))


clip = clamp


def mm(input: Any, mat2: Any) -> Tensor:
    return _w(torch.mm(*_promoted(_t(input), _t(mat2))))


def roll(input: Any, shifts: Any, dims: Any = None) -> Tensor:
    return _w(torch.roll(_t(input), shifts, dims))


def triu(input: Any, diagonal: int = 0) -> Tensor:
    return _w(torch.triu(_t(input), diagonal))


def tril(input: Any, diagonal: int = 0) -> Tensor:
    return _w(torch.tril(_t(input), diagonal))


def arange(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None) -> Tensor:
    if end is None:
        start, end = 0, start
    out = torch.arange(start, end, step)
    return _w(out if dtype is None else out.to(mstype.to_torch_dtype(dtype)))


def repeat_interleave(input: Any, repeats: Any, axis: Optional[int] = None) -> Tensor:
    return _w(torch.repeat_interleave(_t(input), repeats, dim=axis))


def dense(input: Any, weight: Any, bias: Any = None) -> Tensor:
    return _w(torch.nn.functional.linear(_t(input), _t(weight), None if bias is None else _t(bias)))


def layer_norm(input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:
    w = None if weight is None else _t(weight)
    b = None if bias is None else _t(bias)
    return _w(torch.nn.functional.layer_norm(_t(input), tuple(normalized_shape), w, b, eps))


tensor_add = add
tensor_mul = mul
log1p = _unary(torch.log1p)
expm1 = _unary(torch.expm1)
ceil = _unary(torch.ceil)
sign = _unary(torch.sign)
isnan = _unary(torch.isnan)
erfc = _unary(torch.erfc)


NAMES = sorted(
    n
    for n, v in dict(globals()).items()
    if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == __name__
)
__all__ = NAMES
