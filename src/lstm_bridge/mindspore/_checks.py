"""MindSpore-style argument checks shared by ``LSTM`` and ``LSTMCell`` (docs/spec/mindspore_lstm.md §1.1)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch


class KernelRuntimeError(RuntimeError, ValueError):
    """A bad argument that MindSpore 2.10's kernels report as ``RuntimeError`` (a zero-length time
    axis: "could not execute a primitive"; an out-of-range bidirectional ``seq_length``). It is also a
    ``ValueError``, lstm-bridge's type for bad arguments, so both ``except`` clauses catch it."""


class HxRowsError(ValueError, IndexError):
    """``h0``/``c0`` with fewer than ``num_layers * num_directions`` rows: MindSpore 2.10 raises
    ``IndexError`` ("index 1 is out of bounds ..."); also a ``ValueError`` like every other hx shape error."""


class NotATensorError(TypeError, AttributeError):
    """A Python list where MindSpore expects a Tensor (``seq_length``): MindSpore raises
    ``AttributeError`` ("'list' object has no attribute 'dtype'"); also a ``TypeError``."""


def check_positive_int(value: Any, name: str, cell: str = "LSTM") -> None:
    """MindSpore's ``Validator.check_positive_int``: a Python int (not bool) > 0."""
    if isinstance(value, bool):
        raise TypeError(f"For '{cell}', the '{name}' must be int and must > 0, but got '{value}' with type 'bool'.")
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"For '{cell}', the '{name}' must be int, but got '{type(value).__name__}'")
    if value <= 0:
        raise ValueError(f"For '{cell}', the '{name}' must be int and must > 0, but got '{value}' with type 'int'.")


def check_bool(value: Any, name: str, cell: str = "LSTM") -> None:
    if not isinstance(value, bool):
        raise TypeError(f"For '{cell}', the type of '{name}' should be 'bool', but got type '{type(value).__name__}'")


def check_dtype_arg(dtype: Any) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in (torch.float16, torch.float32, torch.float64):
        return dtype
    table = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        name = np.dtype(dtype).name
    else:
        name = str(dtype).lower().replace("mindspore.", "")
    if name in table:  # "float16", MindSpore's mstype.float16 (str "Float16"), numpy's float16
        return table[name]
    raise TypeError(f"dtype must be float16, float32 or float64; received {dtype!r}")


#: ``"mindspore-cpu"`` (default): MindSpore's CPU numerics (approximate Sigmoid/Tanh, op order) with torch's
#: GEMM; the standard LSTM layer on the faster of the native kernel and oneDNN (within float32 rounding).
#: ``"mindspore-cpu-bits"``: also MindSpore's MatMul summation order, bit for bit for the GRU/RNN family
#: (batch >= 2) and ~20-70x slower; for the standard LSTM layer oneDNN's training kind, as MindSpore runs it
#: (bit for bit, in inference too, at ~2x oneDNN's inference time). ``"exact"``: true math.
NUMERICS = ("mindspore-cpu", "mindspore-cpu-bits", "exact")


def check_numerics(numerics: str) -> str:
    if numerics not in NUMERICS:
        raise ValueError(f"numerics must be one of {', '.join(repr(n) for n in NUMERICS)}; received {numerics!r}")
    return numerics


def load_strict(
    module: torch.nn.Module, loader: Callable[..., Any], state_dict: Mapping[str, Any], strict: bool, assign: bool
) -> Any:
    """``load_state_dict`` with MindSpore names, NumPy values accepted, and a ValueError that lists
    missing keys, unexpected keys and shape mismatches when ``strict``."""
    own = dict(module.named_parameters())
    tensors = {
        k: (torch.from_numpy(np.asarray(v)) if not isinstance(v, torch.Tensor) else v) for k, v in state_dict.items()
    }
    if strict:
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        shapes = [
            f"{k}: expected {tuple(own[k].shape)}, received {tuple(tensors[k].shape)}"
            for k in own
            if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)
        ]
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
