"""``mindspore.Tensor`` and ``mindspore.Parameter`` on torch.

:class:`Tensor` is a ``torch.Tensor`` subclass: every torch function and operator works on it and returns a
``Tensor`` again, and the methods where MindSpore's meaning differs from torch's follow MindSpore
(``asnumpy``, ``astype``, ``transpose(*perm)``, ``expand_dims``, ``mean(axis, keep_dims)``,
``sum(axis, dtype, keepdims)``, ``max/min(axis, keepdims)`` returning values, ``size`` as the element count).
Network code (a Cell's ``construct``) sees ``Tensor``; the built-in Cells and ops work on plain torch tensors
(:func:`plain`) and hand ``Tensor`` back (:func:`wrap`).

:class:`Parameter` is a ``torch.nn.Parameter`` with MindSpore's ``name`` (set by the Cell that holds it, as
MindSpore does: the attribute name, prefixed with the path of each parent Cell), ``set_data``, ``asnumpy``.

Constructor rules checked against MindSpore 2.10: ``Tensor(1.0)`` is float32, ``Tensor(1)`` int64,
``Tensor([1.0, 2.0])`` float32, ``Tensor(np.zeros(2))`` keeps NumPy's float64, ``Tensor(True)`` bool.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch

from . import dtype as mstype

PARAMETER_NAME_DEFAULT = "Parameter"


def _from_python(data: Any, dtype: Optional[torch.dtype]) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        t = data.detach().as_subclass(torch.Tensor)
    elif isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.asarray(data)
        t = torch.from_numpy(np.array(arr, order="C"))  # (np.ascontiguousarray makes 0-d arrays 1-d)
    elif isinstance(data, bool):
        t = torch.tensor(data, dtype=torch.bool)
    elif isinstance(data, int):
        t = torch.tensor(data, dtype=torch.int64)
    elif isinstance(data, float):
        t = torch.tensor(data, dtype=torch.float32)
    elif isinstance(data, (list, tuple)):
        arr = np.array([plain(v).numpy() if isinstance(v, torch.Tensor) else v for v in data])
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # MindSpore: a Python float list is float32
        t = torch.from_numpy(arr)
    else:
        raise TypeError(
            f"For 'Tensor', input_data must be a Tensor, NumPy array, list, tuple, int, float or bool; "
            f"received {type(data).__name__}"
        )
    if dtype is not None:
        t = t.to(mstype.to_torch_dtype(dtype))
    return t


class Tensor(torch.Tensor):
    """``mindspore.Tensor(input_data=None, dtype=None, shape=None, init=None)``.

    ``input_data``: a NumPy array, a Python scalar/list/tuple, or a tensor; ``dtype`` a ``mstype`` dtype.
    ``Tensor(shape=(2, 3), dtype=mstype.float32, init=One())`` fills from an initializer.
    """

    @staticmethod
    def __new__(
        cls,
        input_data: Any = None,
        dtype: Any = None,
        shape: Any = None,
        init: Any = None,
        internal: bool = False,
        const_arg: bool = False,
        device: Any = None,
    ) -> Tensor:
        if input_data is None:
            if shape is None:
                raise ValueError("For 'Tensor', expected input_data or shape (with init); received neither")
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            if init is not None:
                from .initializer import initializer

                return initializer(init, shape, dtype if dtype is not None else mstype.float32)
            return torch.zeros(shape, dtype=mstype.to_torch_dtype(dtype or mstype.float32)).as_subclass(cls)
        return _from_python(input_data, dtype).as_subclass(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the work is in __new__
        pass

    def __deepcopy__(self, memo: Any) -> Tensor:
        if id(self) in memo:
            return cast(Tensor, memo[id(self)])
        t = plain(self).detach().clone()
        out = _w(t.requires_grad_(self.requires_grad) if self.is_leaf else t)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, proto: Any) -> Any:
        return (_rebuild_tensor, (plain(self).detach().cpu().numpy(),))

    # --- MindSpore's methods -------------------------------------------------------------------
    def asnumpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy, detached from autograd)."""
        values: np.ndarray = plain(self).detach().cpu().numpy().copy()
        return values

    def astype(self, dtype: Any, copy: bool = True) -> Tensor:
        return _w(plain(self).to(mstype.to_torch_dtype(dtype)))

    def transpose(self, *axes: Any) -> Tensor:
        """MindSpore 2.10 takes both forms: two axes swap them (torch's ``transpose(dim0, dim1)``); a permutation
        (``transpose(2, 0, 1)`` or ``transpose((2, 0, 1))``) reorders them; none reverses them."""
        if len(axes) == 2 and all(isinstance(a, int) for a in axes):
            return _w(plain(self).transpose(axes[0], axes[1]))
        return _w(plain(self).permute(_axes(axes, self.dim())))

    def expand_dims(self, axis: int) -> Tensor:
        return _w(plain(self).unsqueeze(axis))

    def mean(  # type: ignore[override]
        self, axis: Any = None, keep_dims: bool = False, *, dim: Any = None, keepdim: Any = None, dtype: Any = None
    ) -> Tensor:
        """``mean(axis=None, keep_dims=False)`` or torch's ``mean(dim, keepdim, dtype=)`` (both MindSpore 2.10)."""
        t = plain(self) if dtype is None else plain(self).to(mstype.to_torch_dtype(dtype))
        return _w(_reduce(torch.mean, t, axis if dim is None else dim, keep_dims if keepdim is None else keepdim))

    def sum(  # type: ignore[override]
        self,
        axis: Any = None,
        dtype: Any = None,
        keepdims: bool = False,
        initial: Any = None,
        *,
        dim: Any = None,
        keepdim: Any = None,
    ) -> Tensor:
        """NumPy's ``sum(axis, dtype, keepdims, initial)`` or torch's ``sum(dim, keepdim, dtype=)``: a bool second
        argument is ``keepdim`` (``x.sum(1, True)``), a dtype is ``dtype`` (both MindSpore 2.10)."""
        if isinstance(dtype, bool):
            keepdims, dtype = dtype, None
        t = plain(self)
        if dtype is not None:
            t = t.to(mstype.to_torch_dtype(dtype))
        out = _reduce(torch.sum, t, axis if dim is None else dim, keepdims if keepdim is None else keepdim)
        return _w(out + initial if initial is not None else out)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        """MindSpore 2.10: ``max()`` and ``max(axis=, keepdims=)`` give the values; an axis given positionally or
        as ``dim=`` gives torch's ``(values, indices)``."""
        return _extreme(torch.max, torch.amax, self, args, kwargs)

    def min(self, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`max`."""
        return _extreme(torch.min, torch.amin, self, args, kwargs)

    def argmax(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:  # type: ignore[override]
        """int64 indices (MindSpore 2.10)."""
        d = axis if dim is None else dim
        return _w(torch.argmax(plain(self), dim=d, keepdim=keepdims if keepdim is None else keepdim))

    def argmin(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, keepdim: Any = None) -> Tensor:  # type: ignore[override]
        """int32 indices (MindSpore 2.10's argmin, unlike its argmax)."""
        d = axis if dim is None else dim
        out = torch.argmin(plain(self), dim=d, keepdim=keepdims if keepdim is None else keepdim)
        return _w(out.to(torch.int32))

    def std(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:  # type: ignore[override]
        """NumPy's convention: ``ddof=0`` (population) by default (MindSpore 2.10; torch divides by n - 1)."""
        return _w(_reduce(lambda t, **kw: torch.std(t, correction=ddof, **kw), plain(self), axis, keepdims))

    def var(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:  # type: ignore[override]
        """As :meth:`std`."""
        return _w(_reduce(lambda t, **kw: torch.var(t, correction=ddof, **kw), plain(self), axis, keepdims))

    def all(self, axis: Any = None, keep_dims: bool = False) -> Tensor:
        return _w(_reduce(lambda t, **kw: _all_any(torch.all, t, **kw), plain(self).bool(), axis, keep_dims))

    def any(self, axis: Any = None, keep_dims: bool = False) -> Tensor:
        return _w(_reduce(lambda t, **kw: _all_any(torch.any, t, **kw), plain(self).bool(), axis, keep_dims))

    def copy(self) -> Tensor:
        return _w(plain(self).clone())

    def __getitem__(self, key: Any) -> Any:
        """Indexing as NumPy / MindSpore, negative slice steps included (``x[::-1]``; torch refuses them)."""
        if _has_negative_step(key):
            return _w(_negative_step_index(plain(self), key))
        return super().__getitem__(key)

    @property
    def size(self) -> _Size:
        """MindSpore: the number of elements (an int); also callable like torch's ``size(dim=None)``."""
        return _Size(plain(self))

    def init_data(self) -> Tensor:
        """MindSpore's lazy initialisation: our tensors hold their values already."""
        return self

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
        return f"Tensor(shape={list(self.shape)}, dtype={_dtype_name(self.dtype)}, value=\n{self.asnumpy()})"


class _Size(int):
    """An element count that can also be called like ``torch.Tensor.size(dim=None)``."""

    def __new__(cls, t: torch.Tensor) -> _Size:
        obj = super().__new__(cls, t.numel())
        obj._shape = t.shape  # type: ignore[attr-defined]
        return obj

    def __call__(self, dim: Optional[int] = None) -> Any:
        shape = self._shape  # type: ignore[attr-defined]
        return shape if dim is None else shape[dim]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "").capitalize()


def _axes(axes: Sequence[Any], ndim: int) -> Tuple[int, ...]:
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        return tuple(range(ndim - 1, -1, -1))
    if len(axes) != ndim:
        raise ValueError(f"For 'transpose', the permutation must have {ndim} axes (the rank); received {tuple(axes)}")
    return tuple(int(a) for a in axes)


def _has_negative_step(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, slice) and k.step is not None and k.step < 0 for k in items)


def _negative_step_index(t: torch.Tensor, key: Any) -> torch.Tensor:
    """Apply ``key`` with each negative-step slice first taken whole, then select that axis's positions (in the
    slice's order) with ``index_select``: the result NumPy gives."""
    items = list(key) if isinstance(key, tuple) else [key]
    explicit = sum(1 for k in items if k is not None and k is not Ellipsis)
    if Ellipsis not in items:
        items.append(Ellipsis)
    pending = []  # (output axis, input axis size, slice)
    out_axis, in_axis, whole = 0, 0, []
    for k in items:
        if k is Ellipsis:
            span = t.dim() - explicit
            whole.append(Ellipsis)
            out_axis += span
            in_axis += span
            explicit = t.dim()  # a second Ellipsis would be an error in torch too
        elif k is None:
            whole.append(None)
            out_axis += 1
        elif isinstance(k, slice) and k.step is not None and k.step < 0:
            pending.append((out_axis, t.shape[in_axis], k))
            whole.append(slice(None))
            out_axis += 1
            in_axis += 1
        elif isinstance(k, slice):
            whole.append(k)
            out_axis += 1
            in_axis += 1
        else:  # an integer (or a tensor index: one axis in, one out)
            whole.append(k)
            in_axis += 1
            if isinstance(k, torch.Tensor) and k.dim() > 0:
                out_axis += k.dim()
    out = t[tuple(whole)]
    for axis, size, k in pending:
        positions = torch.arange(*k.indices(size), device=t.device)
        out = out.index_select(axis, positions)
    return out


def _reduce(fn: Any, t: torch.Tensor, axis: Any, keep: bool) -> Any:
    if axis is None or axis == ():
        out = fn(t)
        return out.reshape([1] * t.dim()) if keep else out
    dims = tuple(axis) if isinstance(axis, (tuple, list)) else (int(axis),)
    return fn(t, dim=dims, keepdim=keep)


def _extreme(torch_fn: Any, reduce_fn: Any, self: torch.Tensor, args: Any, kwargs: Any) -> Any:
    t = plain(self)
    torch_style = bool(args) or "dim" in kwargs
    if torch_style:
        dim = args[0] if args else kwargs.pop("dim")
        keep = args[1] if len(args) > 1 else kwargs.pop("keepdim", kwargs.pop("keepdims", False))
        values, indices = torch_fn(t, dim=int(dim), keepdim=bool(keep))
        return _w(values), _w(indices)
    axis = kwargs.pop("axis", None)
    keep = kwargs.pop("keepdims", False)
    if kwargs.pop("return_indices", False):
        values, indices = torch_fn(t, dim=int(axis), keepdim=bool(keep))
        return _w(values), _w(indices)
    return _w(_reduce(reduce_fn, t, axis, keep))


def _all_any(fn: Any, t: torch.Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    if dim is None:
        return fn(t)
    out = t
    for d in sorted((d % t.dim() for d in dim), reverse=True):
        out = fn(out, dim=d, keepdim=keepdim)
    return out


class Parameter(torch.nn.Parameter):
    """``mindspore.Parameter(default_input, name=None, requires_grad=True, layerwise_parallel=False,
    parallel_optimizer=True)``: ``default_input`` a Tensor, NumPy array, number or initializer result.

    ``name`` is MindSpore's: the given one, else ``"Parameter"`` until a Cell takes it as an attribute (then the
    attribute name), prefixed with each parent Cell's attribute path (``encoder.weight_ih_l0``).
    """

    def __new__(
        cls,
        default_input: Any = None,
        name: Optional[str] = None,
        requires_grad: bool = True,
        layerwise_parallel: bool = False,
        parallel_optimizer: bool = True,
        storage_format: str = "",
        device: Any = None,
    ) -> Parameter:
        if default_input is None:
            raise ValueError("For 'Parameter', default_input must be a Tensor, NumPy array or number; received None")
        data = _from_python(default_input, None)
        grad = requires_grad and (data.is_floating_point() or data.is_complex())  # torch: no int gradients
        p = torch.Tensor._make_subclass(cls, data, grad)
        p.name = name if name is not None else PARAMETER_NAME_DEFAULT
        return p

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @property
    def name(self) -> str:
        """MindSpore's parameter name (torch's own ``Tensor.name`` slot is read-only, so it lives here)."""
        return str(self.__dict__.get("_ms_name", PARAMETER_NAME_DEFAULT))

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Parameter name must be a str; received {type(value).__name__}")
        self.__dict__["_ms_name"] = value

    def __deepcopy__(self, memo: Any) -> Parameter:
        if id(self) in memo:
            return cast(Parameter, memo[id(self)])
        result = Parameter(self.data.clone(), name=self.name, requires_grad=self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto: Any) -> Any:
        return (_rebuild_parameter, (self.data.detach().cpu().numpy(), self.name, self.requires_grad))

    def __repr__(self) -> str:  # type: ignore[override]
        return (
            f"Parameter (name={self.name}, shape={tuple(self.shape)}, dtype={_dtype_name(self.dtype)}, "
            f"requires_grad={self.requires_grad})"
        )

    def asnumpy(self) -> np.ndarray:
        values: np.ndarray = self.detach().cpu().numpy().copy()
        return values

    def set_data(self, data: Any, slice_shape: bool = False) -> Parameter:
        """Replace the values (MindSpore's ``set_data``): same shape copies in place (cast to this dtype);
        another shape replaces the storage."""
        t = _from_python(data, None)
        with torch.no_grad():
            if tuple(t.shape) == tuple(self.shape):
                self.copy_(t.to(self.dtype))
            else:
                self.data = t.to(self.dtype)
        return self

    def init_data(self, *args: Any, **kwargs: Any) -> Parameter:
        return self

    def clone(self, init: str = "same") -> Parameter:  # type: ignore[override]
        return Parameter(self.data.clone(), name=self.name, requires_grad=self.requires_grad)

    @property
    def inited_param(self) -> None:
        return None


class ParameterTuple(tuple):  # type: ignore[type-arg]
    """``mindspore.ParameterTuple(iterable)``: a tuple of :class:`Parameter`. A Cell holding one as an attribute
    registers each member under its own ``name`` (MindSpore 2.10: ``self.ws = ParameterTuple([w0, w1])`` gives the
    parameters ``w0``, ``w1``, prefixed by the parent Cells' attribute paths)."""

    def __new__(cls, iterable: Any) -> ParameterTuple:
        items = tuple(iterable)
        for p in items:
            if not isinstance(p, Parameter):
                raise TypeError(f"For 'ParameterTuple', each element must be a Parameter; received {type(p).__name__}")
        names = [p.name for p in items]
        if len(set(names)) != len(names):
            raise ValueError(f"For 'ParameterTuple', the names of the parameters must be unique; received {names}")
        return super().__new__(cls, items)


def _rebuild_tensor(values: np.ndarray) -> Tensor:
    return Tensor(values)


def _rebuild_parameter(values: np.ndarray, name: str, requires_grad: bool) -> Parameter:
    return Parameter(values, name=name, requires_grad=requires_grad)


def plain(x: Any) -> Any:
    """A ``Tensor``/``Parameter`` (or any torch tensor subclass) as a plain ``torch.Tensor`` view; other
    values unchanged. Tuples and lists are converted element by element."""
    if isinstance(x, torch.Tensor):
        return x if type(x) is torch.Tensor or type(x) is torch.nn.Parameter else x.as_subclass(torch.Tensor)
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x


def _w(t: torch.Tensor) -> Tensor:
    """One torch tensor as :class:`Tensor` (typed form of :func:`wrap`)."""
    return cast(Tensor, wrap(t))


def wrap(x: Any) -> Any:
    """Torch tensors as :class:`Tensor` (parameters stay parameters); tuples and lists element by element."""
    if isinstance(x, torch.Tensor):
        if isinstance(x, (Tensor, torch.nn.Parameter)):
            return x
        return x.as_subclass(Tensor)
    if isinstance(x, tuple):
        return tuple(wrap(v) for v in x)
    if isinstance(x, list):
        return [wrap(v) for v in x]
    return x


TensorLike = Union[torch.Tensor, np.ndarray]
