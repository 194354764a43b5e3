"""``mindspore.common``: dtypes (``common.dtype``), ``Tensor``, ``Parameter`` and the initialisers."""

from . import dtype, initializer
from .tensor import Parameter, Tensor

__all__ = ["Parameter", "Tensor", "dtype", "initializer"]
