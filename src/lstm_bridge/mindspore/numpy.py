"""``mindspore.numpy`` (``mnp``): the NumPy-style functions model-zoo networks call in ``construct``, on torch.

Each returns a :class:`~lstm_bridge.mindspore.common.tensor.Tensor`; defaults as MindSpore 2.10 (checked in
tests/test_mindspore_ops.py): ``zeros``/``ones``/``eye`` float32; ``arange`` of Python ints int32 and of floats
float32; ``sum``/``mean`` take ``axis``/``keepdims``. A name outside the subset raises
:class:`~lstm_bridge.mindspore.ops.UnsupportedError` naming it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from .common import dtype as mstype
from .common.tensor import Tensor, _w
from .ops import functional as F

_t = F._t


def _dtype(dtype: Any) -> Optional[torch.dtype]:
    return None if dtype is None else mstype.to_torch_dtype(dtype)


def _shape(shape: Any) -> Sequence[int]:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


def zeros(shape: Any, dtype: Any = mstype.float32) -> Tensor:
    return _w(torch.zeros(_shape(shape), dtype=_dtype(dtype)))


def ones(shape: Any, dtype: Any = mstype.float32) -> Tensor:
    return _w(torch.ones(_shape(shape), dtype=_dtype(dtype)))


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    if dtype is None:
        dtype = mstype.int32 if isinstance(fill_value, int) and not isinstance(fill_value, bool) else mstype.float32
    return _w(torch.full(_shape(shape), fill_value, dtype=_dtype(dtype)))


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype: Any = mstype.float32) -> Tensor:  # noqa: N803
    rows, cols = N, N if M is None else M
    return _w(torch.ones(rows, cols).triu(k).tril(k).to(_dtype(dtype)))


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> Tensor:
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step))
    if dtype is None:
        dtype = mstype.int32 if ints else mstype.float32
    return _w(torch.arange(start, stop, step).to(_dtype(dtype)))


def zeros_like(a: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    t = _t(a)
    return _w(torch.zeros(_shape(shape) if shape is not None else t.shape, dtype=_dtype(dtype) or t.dtype))


def ones_like(a: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    t = _t(a)
    return _w(torch.ones(_shape(shape) if shape is not None else t.shape, dtype=_dtype(dtype) or t.dtype))


def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None) -> Tensor:
    t = _t(a)
    return _w(torch.full(_shape(shape) if shape is not None else t.shape, fill_value, dtype=_dtype(dtype) or t.dtype))


def concatenate(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    return F.concat(arrays, axis)


def stack(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    return F.stack(arrays, axis)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return tuple(_w(i) for i in torch.nonzero(_t(condition), as_tuple=True))
    return F.select(condition, x, y)


def expand_dims(a: Any, axis: int) -> Tensor:
    return F.expand_dims(a, axis)


def reshape(x: Any, new_shape: Any) -> Tensor:
    return F.reshape(x, _shape(new_shape))


def transpose(a: Any, axes: Any = None) -> Tensor:
    t = _t(a)
    return _w(t.permute(tuple(range(t.dim() - 1, -1, -1)) if axes is None else tuple(axes)))


def squeeze(a: Any, axis: Any = None) -> Tensor:
    return F.squeeze(a, axis)


def tile(a: Any, reps: Any) -> Tensor:
    return F.tile(a, _shape(reps))


def flip(m: Any, axis: Any = None) -> Tensor:
    t = _t(m)
    dims = tuple(range(t.dim())) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    return _w(torch.flip(t, dims))


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, initial: Any = None) -> Tensor:  # noqa: A001
    out = F.sum(a, axis, keepdims, dtype=dtype)
    return out + initial if initial is not None else out


def mean(a: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tensor:
    t = _t(a) if dtype is None else _t(a).to(_dtype(dtype))
    return F.mean(t, axis, keepdims)


def amax(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return F.amax(a, axis, keepdims)


def amin(a: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return F.amin(a, axis, keepdims)


def argmax(a: Any, axis: Optional[int] = None) -> Tensor:
    t = _t(a)
    return _w(torch.argmax(t.reshape(-1) if axis is None else t, dim=0 if axis is None else axis))


def cumsum(a: Any, axis: Optional[int] = None, dtype: Any = None) -> Tensor:
    t = _t(a)
    if axis is None:
        t, axis = t.reshape(-1), 0
    return _w(torch.cumsum(t, dim=axis, dtype=_dtype(dtype)))


def dot(a: Any, b: Any) -> Tensor:
    x, y = _t(a), _t(b)
    if x.dim() == 1 and y.dim() == 1:
        return _w(torch.dot(x, y))
    return _w(torch.tensordot(x, y, dims=([x.dim() - 1], [max(y.dim() - 2, 0)])))


def matmul(x1: Any, x2: Any, dtype: Any = None) -> Tensor:
    out = torch.matmul(_t(x1), _t(x2))
    return _w(out if dtype is None else out.to(_dtype(dtype)))


def _unary(fn: Any) -> Any:
    def op(x: Any, dtype: Any = None) -> Tensor:
        out = fn(_t(x))
        return _w(out if dtype is None else out.to(_dtype(dtype)))

    op.__name__ = fn.__name__
    return op


exp = _unary(torch.exp)
log = _unary(torch.log)
sqrt = _unary(torch.sqrt)
tanh = _unary(torch.tanh)
abs = _unary(torch.abs)  # noqa: A001


def maximum(x1: Any, x2: Any, dtype: Any = None) -> Tensor:
    a, b = F._pair(x1, x2)
    return _w(torch.maximum(a, b))


def minimum(x1: Any, x2: Any, dtype: Any = None) -> Tensor:
    a, b = F._pair(x1, x2)
    return _w(torch.minimum(a, b))


def clip(x: Any, xmin: Any, xmax: Any, dtype: Any = None) -> Tensor:
    return _w(torch.clamp(_t(x), xmin, xmax))


__all__ = [
    "abs",
    "amax",
    "amin",
    "arange",
    "argmax",
    "clip",
    "concatenate",
    "cumsum",
    "dot",
    "exp",
    "expand_dims",
    "eye",
    "flip",
    "full",
    "full_like",
    "log",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "ones",
    "ones_like",
    "reshape",
    "sqrt",
    "squeeze",
    "stack",
    "sum",
    "tanh",
    "tile",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]


def __getattr__(name: str) -> Any:
    from .ops._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore.numpy", name, __all__)
