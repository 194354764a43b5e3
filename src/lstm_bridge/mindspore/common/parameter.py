"""``mindspore.common.parameter``: :class:`Parameter` (see :mod:`.tensor`)."""

from .tensor import PARAMETER_NAME_DEFAULT, Parameter, ParameterTuple

__all__ = ["PARAMETER_NAME_DEFAULT", "Parameter", "ParameterTuple"]
