"""MindSpore-style argument checks shared by ``LSTM`` and ``LSTMCell`` (spec mindspore §1.1)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch


def check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"For 'LSTM', the '{name}' must be int, but got '{type(value).__name__}'")
    if value <= 0:
        raise ValueError(f"For 'LSTM', the '{name}' must be int and must > 0, but got {value}")


def check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"For 'LSTM', the type of '{name}' should be 'bool', but got type '{type(value).__name__}'")


def check_dtype_arg(dtype: Any) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in (torch.float16, torch.float32, torch.float64):
        return dtype
    table = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}
    if str(dtype) in table:
        return table[str(dtype)]
    raise TypeError(f"dtype must be float16, float32 or float64; received {dtype!r}")


def check_numerics(numerics: str) -> str:
    if numerics not in ("exact", "mindspore-cpu"):
        raise ValueError(f"numerics must be 'exact' or 'mindspore-cpu'; received {numerics!r}")
    return numerics


def load_strict(module: torch.nn.Module, loader: Callable, state_dict: Mapping[str, Any], strict: bool,
                assign: bool):
    """``load_state_dict`` with MindSpore names, NumPy values accepted, and a ValueError that lists
    missing keys, unexpected keys and shape mismatches when ``strict``."""
    own = dict(module.named_parameters())
    tensors = {k: (torch.from_numpy(np.asarray(v)) if not isinstance(v, torch.Tensor) else v)
               for k, v in state_dict.items()}
    if strict:
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        shapes = [f"{k}: expected {tuple(own[k].shape)}, received {tuple(tensors[k].shape)}"
                  for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or shapes:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            if shapes:
                parts.append("shape mismatches: " + "; ".join(shapes))
            raise ValueError(f"Error loading state_dict into {type(module).__name__}: " + ", ".join(parts))
    tensors = {k: v.to(own[k].dtype) if k in own else v for k, v in tensors.items()}
    return loader(tensors, strict=strict, assign=assign)
