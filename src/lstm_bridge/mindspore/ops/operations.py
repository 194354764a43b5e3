"""``mindspore.ops.operations`` (``P`` in model-zoo code): MindSpore's primitives as callables.

A primitive is built with its attributes and called with its inputs, as in MindSpore:
``P.Concat(axis=1)((a, b))``, ``P.Transpose()(x, (1, 0, 2))``, ``P.ReduceMax(keep_dims=False)(x, axis)``,
``P.Squeeze(axis=0)(x)``, ``P.Split(axis, output_num)(x)``. Each delegates to :mod:`.functional`.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple, cast

import torch

from ..common import dtype as mstype
from ..common.tensor import Tensor, _w
from . import functional as F


class Primitive:
    """The base of the primitives: attributes at construction, inputs at call."""

    def __init__(self, name: str = "") -> None:
        self.name = name or type(self).__name__

    def __call__(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __call__")

    def __repr__(self) -> str:
        return f"Prim[{self.name}]"

    def add_prim_attr(self, name: str, value: Any) -> Primitive:
        setattr(self, name, value)
        return self

    def set_device(self, device_target: str) -> Primitive:
        return self


PrimitiveWithInfer = Primitive


class _Unary(Primitive):
    _fn: Any = None

    def __call__(self, x: Any) -> Any:
        return type(self)._fn(x)


class _Binary(Primitive):
    _fn: Any = None

    def __call__(self, x: Any, y: Any) -> Any:
        return type(self)._fn(x, y)


def _unary(name: str, fn: Any) -> type:
    return type(name, (_Unary,), {"_fn": staticmethod(fn), "__doc__": f"``ops.{name}()(x)``"})


def _binary(name: str, fn: Any) -> type:
    return type(name, (_Binary,), {"_fn": staticmethod(fn), "__doc__": f"``ops.{name}()(x, y)``"})


Sigmoid = _unary("Sigmoid", F.sigmoid)
Tanh = _unary("Tanh", F.tanh)
ReLU = _unary("ReLU", F.relu)
Exp = _unary("Exp", F.exp)
Log = _unary("Log", F.log)
Sqrt = _unary("Sqrt", F.sqrt)
Rsqrt = _unary("Rsqrt", F.rsqrt)
Abs = _unary("Abs", F.abs)
Neg = _unary("Neg", F.neg)
Square = _unary("Square", F.square)
Sin = _unary("Sin", F.sin)
Cos = _unary("Cos", F.cos)
LogicalNot = _unary("LogicalNot", F.logical_not)
ZerosLike = _unary("ZerosLike", F.zeros_like)
OnesLike = _unary("OnesLike", F.ones_like)
Add = _binary("Add", F.add)
TensorAdd = Add
Sub = _binary("Sub", F.sub)
Mul = _binary("Mul", F.mul)
Div = _binary("Div", F.div)
RealDiv = _binary("RealDiv", F.div)
Maximum = _binary("Maximum", F.maximum)
Minimum = _binary("Minimum", F.minimum)
Pow = _binary("Pow", F.pow)
Equal = _binary("Equal", F.equal)
NotEqual = _binary("NotEqual", F.not_equal)
Less = _binary("Less", F.less)
LessEqual = _binary("LessEqual", F.less_equal)
Greater = _binary("Greater", F.greater)
GreaterEqual = _binary("GreaterEqual", F.greater_equal)
LogicalAnd = _binary("LogicalAnd", F.logical_and)
LogicalOr = _binary("LogicalOr", F.logical_or)
BiasAdd = _binary("BiasAdd", F.bias_add)
GatherNd = _binary("GatherNd", F.gather_nd)
MaskedSelect = _binary("MaskedSelect", F.masked_select)


class Concat(Primitive):
    def __init__(self, axis: int = 0):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Sequence[Any]) -> Tensor:
        return F.concat(x, self.axis)


class Stack(Primitive):
    def __init__(self, axis: int = 0):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Sequence[Any]) -> Tensor:
        return F.stack(x, self.axis)


Pack = Stack


class Unstack(Primitive):
    def __init__(self, axis: int = 0, num: Any = None):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Any) -> Tuple[Tensor, ...]:
        return F.unstack(x, self.axis)


class Split(Primitive):
    """``Split(axis=0, output_num=1)(x)``: ``output_num`` equal parts (the axis must divide evenly)."""

    def __init__(self, axis: int = 0, output_num: int = 1):
        super().__init__()
        self.axis, self.output_num = axis, output_num

    def __call__(self, x: Any) -> Tuple[Tensor, ...]:
        n = F.shape(x)[self.axis]
        if n % self.output_num:
            raise ValueError(
                f"For 'Split', x.shape[{self.axis}] = {n} must be divisible by output_num = {self.output_num}"
            )
        return F.split(x, n // self.output_num, self.axis)


class Transpose(Primitive):
    def __call__(self, x: Any, input_perm: Sequence[int]) -> Tensor:
        return F.transpose(x, input_perm)


class Reshape(Primitive):
    def __call__(self, x: Any, shape: Sequence[int]) -> Tensor:
        return F.reshape(x, shape)


class ExpandDims(Primitive):
    def __call__(self, x: Any, axis: int) -> Tensor:
        return F.expand_dims(x, axis)


class Squeeze(Primitive):
    def __init__(self, axis: Any = ()):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Any) -> Tensor:
        return F.squeeze(x, self.axis)


class Flatten(Primitive):
    """``P.Flatten()(x)``: ``(N, ...)`` -> ``(N, prod(...))``."""

    def __call__(self, x: Any) -> Tensor:
        return F.reshape(x, (F.shape(x)[0], -1))


class _Reduce(Primitive):
    _fn: Any = None

    def __init__(self, keep_dims: bool = False, skip_mode: bool = False):
        super().__init__()
        self.keep_dims = keep_dims

    def __call__(self, x: Any, axis: Any = ()) -> Tensor:
        return cast(Tensor, type(self)._fn(x, axis, self.keep_dims))


class ReduceMean(_Reduce):
    _fn = staticmethod(F.mean)


class ReduceSum(_Reduce):
    _fn = staticmethod(lambda x, axis, keep: F.sum(x, axis, keep))


class ReduceMax(_Reduce):
    _fn = staticmethod(F.amax)


class ReduceMin(_Reduce):
    _fn = staticmethod(F.amin)


class ReduceProd(_Reduce):
    _fn = staticmethod(F.prod)


class ArgMaxWithValue(Primitive):
    """``(index, value)`` along ``axis`` (index int64, as MindSpore 2.10)."""

    def __init__(self, axis: int = 0, keep_dims: bool = False):
        super().__init__()
        self.axis, self.keep_dims = axis, keep_dims

    def __call__(self, x: Any) -> Tuple[Tensor, Tensor]:
        values, indices = F.max(x, self.axis, self.keep_dims)
        return indices, values


class ArgMinWithValue(ArgMaxWithValue):
    def __call__(self, x: Any) -> Tuple[Tensor, Tensor]:
        values, indices = F.min(x, self.axis, self.keep_dims)
        return indices, values


class Argmax(Primitive):
    def __init__(self, axis: int = -1, output_type: Any = mstype.int32):
        super().__init__()
        self.axis, self.output_type = axis, output_type

    def __call__(self, x: Any) -> Tensor:
        return F.cast(F.argmax(x, self.axis), self.output_type)


class Tile(Primitive):
    def __call__(self, x: Any, multiples: Sequence[int]) -> Tensor:
        return F.tile(x, multiples)


class BroadcastTo(Primitive):
    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = shape

    def __call__(self, x: Any) -> Tensor:
        return F.broadcast_to(x, self.shape)


class Gather(Primitive):
    def __init__(self, batch_dims: int = 0):
        super().__init__()
        self.batch_dims = batch_dims

    def __call__(self, input_params: Any, input_indices: Any, axis: int) -> Tensor:
        return F.gather(input_params, input_indices, axis, self.batch_dims)


GatherV2 = Gather


class Cast(Primitive):
    def __call__(self, x: Any, dtype: Any) -> Tensor:
        return F.cast(x, dtype)


class DType(Primitive):
    def __call__(self, x: Any) -> Any:
        return F.dtype(x)


class Shape(Primitive):
    def __call__(self, x: Any) -> Tuple[int, ...]:
        return F.shape(x)


class Rank(Primitive):
    def __call__(self, x: Any) -> int:
        return F.rank(x)


class Size(Primitive):
    def __call__(self, x: Any) -> int:
        return F.size(x)


class Softmax(Primitive):
    def __init__(self, axis: Any = -1):
        super().__init__()
        self.axis = axis[0] if isinstance(axis, (tuple, list)) else axis

    def __call__(self, x: Any) -> Tensor:
        return F.softmax(x, self.axis)


class LogSoftmax(Softmax):
    def __call__(self, x: Any) -> Tensor:
        return F.log_softmax(x, self.axis)


class MatMul(Primitive):
    """``MatMul(transpose_a=False, transpose_b=False)(a, b)``: 2-D matrices."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False):
        super().__init__()
        self.transpose_a, self.transpose_b = transpose_a, transpose_b

    def __call__(self, x: Any, y: Any) -> Tensor:
        a, b = F._t(x), F._t(y)
        if self.transpose_a:
            a = a.transpose(-1, -2)
        if self.transpose_b:
            b = b.transpose(-1, -2)
        return _w(torch.matmul(*F._promoted(a, b)))


class BatchMatMul(MatMul):
    """``BatchMatMul(transpose_a=False, transpose_b=False)(a, b)``: ``(..., n, m) @ (..., m, p)``."""


class OneHot(Primitive):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def __call__(self, indices: Any, depth: int, on_value: Any, off_value: Any) -> Tensor:
        return F.one_hot(indices, depth, on_value, off_value, self.axis)


class Zeros(Primitive):
    def __call__(self, size: Any, type: Any = None) -> Tensor:  # noqa: A002
        return F.zeros(size, type)


class Ones(Primitive):
    def __call__(self, size: Any, type: Any = None) -> Tensor:  # noqa: A002
        return F.ones(size, type)


class Fill(Primitive):
    def __call__(self, type: Any, shape: Any, value: Any) -> Tensor:  # noqa: A002
        return F.fill(type, shape, value)


class Select(Primitive):
    def __call__(self, cond: Any, x: Any, y: Any) -> Tensor:
        return F.select(cond, x, y)


class ReverseV2(Primitive):
    def __init__(self, axis: Sequence[int]):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Any) -> Tensor:
        return F.flip(x, self.axis)


class ReverseSequence(Primitive):
    def __init__(self, seq_dim: int, batch_dim: int = 0):
        super().__init__()
        self.seq_dim, self.batch_dim = seq_dim, batch_dim

    def __call__(self, x: Any, seq_lengths: Any) -> Tensor:
        return F.reverse_sequence(x, seq_lengths, self.seq_dim, self.batch_dim)


class Slice(Primitive):
    def __call__(self, x: Any, begin: Sequence[int], size: Sequence[int]) -> Tensor:
        return F.slice(x, begin, size)


class Depend(Primitive):
    def __call__(self, value: Any, expr: Any) -> Any:
        return F.depend(value, expr)


class StopGradient(Primitive):
    def __call__(self, x: Any) -> Any:
        return F.stop_gradient(x)


class GeLU(Primitive):
    """``P.GeLU()``: MindSpore's primitive is the tanh approximation."""

    def __call__(self, x: Any) -> Tensor:
        return F.gelu(x, "tanh")


class Print(Primitive):
    def __call__(self, *x: Any) -> None:
        F.print_(*x)


Reciprocal = _unary("Reciprocal", F.reciprocal)
Round = _unary("Round", F.round)
Floor = _unary("Floor", F.floor)
Erf = _unary("Erf", F.erf)
FloorDiv = _binary("FloorDiv", F.floor_divide)
Mod = _binary("Mod", F.fmod)


class AddN(Primitive):
    def __call__(self, x: Sequence[Any]) -> Tensor:
        return F.addn(x)


class StridedSlice(Primitive):
    """``StridedSlice(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0)(x, begin,
    end, strides)``."""

    def __init__(
        self,
        begin_mask: int = 0,
        end_mask: int = 0,
        ellipsis_mask: int = 0,
        new_axis_mask: int = 0,
        shrink_axis_mask: int = 0,
    ):
        super().__init__()
        self.masks = (begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask)

    def __call__(self, x: Any, begin: Sequence[int], end: Sequence[int], strides: Sequence[int]) -> Tensor:
        return F.strided_slice(x, begin, end, strides, *self.masks)


class TopK(Primitive):
    """``TopK(sorted=True)(x, k)`` along the last axis: ``(values, indices int32)``."""

    def __init__(self, sorted: bool = True):  # noqa: A002 (MindSpore's name)
        super().__init__()
        self.sorted = sorted

    def __call__(self, x: Any, k: int) -> Tuple[Tensor, Tensor]:
        values, indices = F.topk(x, k, sorted=self.sorted)
        return values, indices


class CumSum(Primitive):
    def __init__(self, exclusive: bool = False, reverse: bool = False):
        super().__init__()
        self.exclusive, self.reverse = exclusive, reverse

    def __call__(self, x: Any, axis: int) -> Tensor:
        t = F._t(x)
        if self.reverse:
            t = t.flip(axis)
        out = torch.cumsum(t, dim=axis)
        if self.exclusive:
            out = out - t
        if self.reverse:
            out = out.flip(axis)
        return _w(out)


class Pad(Primitive):
    """``Pad(paddings)(x)``: ``paddings[i] = (before, after)`` for axis ``i``, zeros."""

    def __init__(self, paddings: Sequence[Sequence[int]]):
        super().__init__()
        self.paddings = tuple(tuple(p) for p in paddings)

    def __call__(self, x: Any) -> Tensor:
        flat: List[int] = []
        for before, after in reversed(self.paddings):
            flat += [before, after]
        return F.pad(x, flat)


class L2Normalize(Primitive):
    """``L2Normalize(axis=0, epsilon=1e-4)(x)``: ``x / sqrt(max(sum(x^2, axis), epsilon))``."""

    def __init__(self, axis: Any = 0, epsilon: float = 1e-4):
        super().__init__()
        self.axis = axis[0] if isinstance(axis, (tuple, list)) else axis
        self.epsilon = epsilon

    def __call__(self, x: Any) -> Tensor:
        t = F._t(x)
        norm = torch.sqrt(torch.clamp((t * t).sum(dim=self.axis, keepdim=True), min=self.epsilon))
        return _w(t / norm)


class ScalarToTensor(Primitive):
    def __call__(self, x: Any, dtype: Any = mstype.float32) -> Tensor:
        return F.scalar_to_tensor(x, dtype)


class TupleToArray(Primitive):
    def __call__(self, x: Sequence[Any]) -> Tensor:
        return F.tuple_to_array(x)


NAMES = sorted(
    n for n, v in dict(globals()).items() if isinstance(v, type) and issubclass(v, Primitive) and not n.startswith("_")
)
__all__ = NAMES


def __getattr__(name: str) -> Any:
    from ._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore.ops.operations", name, NAMES)
