"""``mindspore.common``: dtypes (``common.dtype``), ``Tensor``, ``Parameter`` and the initialisers."""

from . import dtype, initializer
from .tensor import Parameter, ParameterTuple, Tensor

__all__ = ["Parameter", "ParameterTuple", "Tensor", "dtype", "initializer"]
