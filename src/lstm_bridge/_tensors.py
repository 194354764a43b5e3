"""Input checking shared by the front ends: NumPy or torch in, a float tensor of the right dtype out."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """A torch tensor view/copy of ``value`` (torch tensor, NumPy array or nested sequence)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (list, tuple, float, int)):
        return torch.as_tensor(np.asarray(value))
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray; received {type(value).__name__}")


def as_float(value: Any, name: str, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """A floating tensor; ``dtype`` casts it (Keras autocasts inputs to the layer's dtype)."""
    t = as_tensor(value, name)
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must have a floating dtype (float16/32/64); received {t.dtype}")
    return t if dtype is None or t.dtype == dtype else t.to(dtype)


def cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype``: ``t`` itself when it already is, so a traced program (``torch.export``) records no
    cast node for it (an exported program runs every recorded node, a no-op ``to`` included)."""
    return t if t.dtype == dtype else t.to(dtype)


def check_shape(
    t: torch.Tensor, expected: Sequence[Optional[int]], name: str, hint: Union[str, Callable[[], str]] = ""
) -> None:
    """Raise ValueError unless ``t.shape`` matches ``expected`` (``None`` matches any size). ``hint``: text
    appended to the message, or a function returning it (called only on failure: a hint that formats a batch
    or time size must be one, or ``torch.compile`` specialises that size, a recompile for every new batch)."""
    ok = t.dim() == len(expected) and all(e is None or e == s for e, s in zip(expected, t.shape))
    if not ok:
        shown = tuple("?" if e is None else e for e in expected)
        text = hint if isinstance(hint, str) else hint()
        raise ValueError(f"{name} must have shape {shown}{text}; received {tuple(t.shape)}")
