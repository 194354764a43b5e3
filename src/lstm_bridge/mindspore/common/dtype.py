"""``mindspore.common.dtype`` (``mstype``): MindSpore's dtype names, bound to the torch dtypes they mean.

``mstype.float32 is torch.float32``, so ``Tensor(x, mstype.float32)``, ``ops.cast(x, mstype.float16)`` and
``x.dtype == mstype.float32`` work as in MindSpore. ``dtype_to_nptype`` / ``pytype_to_dtype`` convert as
MindSpore's helpers of the same names do.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

float16 = half = torch.float16
float32 = single = float_ = torch.float32
float64 = double = torch.float64
bfloat16 = torch.bfloat16
int8 = torch.int8
int16 = short = torch.int16
int32 = intc = torch.int32
int64 = intp = torch.int64
uint8 = torch.uint8
bool_ = torch.bool
complex64 = torch.complex64
complex128 = torch.complex128

_NUMPY: Dict[torch.dtype, Any] = {
    float16: np.float16,
    float32: np.float32,
    float64: np.float64,
    int8: np.int8,
    int16: np.int16,
    int32: np.int32,
    int64: np.int64,
    uint8: np.uint8,
    bool_: np.bool_,
    complex64: np.complex64,
    complex128: np.complex128,
}
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY.items()}

number_type = (int8, int16, int32, int64, uint8, float16, float32, float64, bfloat16)
int_type = (int8, int16, int32, int64)
uint_type = (uint8,)
float_type = (float16, float32, float64, bfloat16)


def dtype_to_nptype(type_: torch.dtype) -> Any:
    """The NumPy scalar type of a MindSpore (= torch) dtype."""
    if type_ not in _NUMPY:
        raise TypeError(f"dtype_to_nptype: expected one of {sorted(str(k) for k in _NUMPY)}; received {type_!r}")
    return _NUMPY[type_]


def pytype_to_dtype(obj: Any) -> torch.dtype:
    """The dtype of a Python type, a NumPy dtype or a dtype (``bool`` -> bool_, ``int`` -> int64, ``float`` ->
    float32, as MindSpore)."""
    return to_torch_dtype(obj)


def to_torch_dtype(obj: Any) -> torch.dtype:
    """``obj`` as a torch dtype: a dtype itself, a NumPy dtype or type, a Python type, or a name (``"float32"``)."""
    if isinstance(obj, torch.dtype):
        return obj
    if obj is bool:
        return bool_
    if obj is int:
        return int64
    if obj is float:
        return float32
    try:
        return _FROM_NUMPY[np.dtype(obj)]
    except (TypeError, KeyError):
        pass
    raise TypeError(
        f"expected a MindSpore dtype (mstype.float32, ...), a NumPy dtype or a Python type; received {obj!r}"
    )
