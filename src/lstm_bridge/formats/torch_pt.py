"""PyTorch ``.pt`` / ``.pth`` state dicts, read with ``torch.load(..., weights_only=True)`` only.

No pickle is ever executed beyond torch's restricted ``weights_only`` unpickler, which admits only
tensors, primitive containers and numbers. A file that needs more (a whole pickled ``nn.Module``,
custom classes) is refused with :class:`~lstm_bridge.formats.FormatError`.

Accepted content: a flat ``{name: tensor}`` state dict (e.g. of ``torch.nn.LSTM`` or
``lstm_bridge.mindspore.LSTM``, same keys), or such a dict under ``"state_dict"``,
``"model_state_dict"`` or ``"model"``. Non-tensor values (epoch counters, ...) are carried in a
``Tensor`` entry as NumPy scalars.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Union

import numpy as np
import torch

from ..targets import check_model, state_dict_notes
from .common import PathLike, SaveReport, atomic_output, check_output_path, check_regular_file, head_bytes, tensor_state
from .model import FormatError, ModelFile, group_state_dict, validate

NAME = "torch"
SUFFIXES = (".pt", ".pth")
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")
#: tensor dtypes a weights file may hold (float8, complex, quantized and unsigned >8-bit types are refused)
_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bfloat16")
# Memory bound: tensors are views of storages stored uncompressed in the file, so their data cannot
# exceed the file unless views overlap (tied weights) or repeat one element (stride 0, e.g. a
# 4-byte storage viewed as 2**40 elements). All tensors together may hold at most
# ``_MAX_INFLATION`` times the file size plus ``_INFLATION_SLACK`` bytes.
_MAX_INFLATION = 4
_INFLATION_SLACK = 64 * 1024 * 1024


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """A zip archive (torch >= 1.6 format; not ``config.json`` inside) or a legacy pickle stream
    (``0x80`` protocol byte) — only plausible candidates: loading decides."""
    head = head_bytes(path_or_head, 4)
    if head == b"PK\x03\x04":
        if isinstance(path_or_head, (bytes, bytearray, memoryview)):
            return True
        import zipfile

        try:
            with zipfile.ZipFile(os.fspath(path_or_head)) as z:
                return any(n.endswith("data.pkl") for n in z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return False
    return len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)


def load(path: PathLike) -> ModelFile:
    """Read a PyTorch state dict (``weights_only=True``) into a :class:`ModelFile` (framework ``torch``)."""
    p = os.fspath(path)
    size = check_regular_file(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError...) here
        raise FormatError(
            p,
            f"not a loadable PyTorch weights file with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
        ) from None
    if isinstance(obj, dict):
        for k in _NESTED_KEYS:
            if k in obj and isinstance(obj[k], dict) and any(isinstance(v, torch.Tensor) for v in obj[k].values()):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj:
        raise FormatError(p, f"expected a non-empty state dict {{name: tensor}}; found {type(obj).__name__}")
    tensors: OrderedDict[str, Any] = OrderedDict()
    budget = size * _MAX_INFLATION + _INFLATION_SLACK
    for k, v in obj.items():
        if not isinstance(k, str):
            raise FormatError(p, f"state dict keys must be strings; found {k!r:.80}")
        if isinstance(v, torch.Tensor):
            _check_tensor(p, k, v)
            budget -= v.numel() * v.element_size()
            if budget < 0:
                raise FormatError(
                    p,
                    f"tensor {k!r} {tuple(v.shape)}: the tensors declare more data than a "
                    f"{size}-byte file can hold (at most {_MAX_INFLATION}x its size + "
                    f"{_INFLATION_SLACK // 2**20} MiB; overlapping or stride-0 views?)",
                )
            if v.dtype == torch.bfloat16:
                v = v.float()  # exact; NumPy has no bfloat16
            tensors[k] = v.detach().cpu().numpy().copy()
        elif isinstance(v, (bool, int, float, str)):
            if isinstance(v, int) and not -(2**63) <= v < 2**63:
                raise FormatError(p, f"state dict entry {k!r} is an integer outside int64 ({v.bit_length()} bits)")
            tensors[k] = np.array(v)
        else:
            raise FormatError(p, f"state dict entry {k!r} is a {type(v).__name__}, not a tensor or number")
    try:
        entries = group_state_dict(tensors)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    return validate(
        ModelFile(
            framework="torch",
            version=torch.__version__,
            layers=entries,
            format=NAME,
            path=p,
            meta={"key_order": list(tensors)},
        )
    )


def _check_tensor(p: str, key: str, v: torch.Tensor) -> None:
    """Refuse tensors that are not plain dense CPU arrays of a NumPy-representable dtype."""
    if v.device.type != "cpu":
        raise FormatError(
            p,
            f"tensor {key!r} is on device {v.device.type!r} (a meta tensor has no data); "
            "expected a CPU tensor with data",
        )
    if v.layout != torch.strided:
        raise FormatError(p, f"tensor {key!r} has layout {v.layout} (sparse); expected a dense tensor")
    if v.is_quantized:
        raise FormatError(p, f"tensor {key!r} is quantized ({v.dtype}); expected a float or integer tensor")
    if str(v.dtype).replace("torch.", "") not in _DTYPES:
        raise FormatError(p, f"tensor {key!r} has dtype {v.dtype}; expected one of {list(_DTYPES)}")
    if type(v) is not torch.Tensor and not isinstance(v, torch.nn.Parameter):
        raise FormatError(p, f"tensor {key!r} is a {type(v).__name__}; expected a plain tensor")


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write a flat state dict of tensors with ``torch.save`` (loads with ``weights_only=True``).

    LSTM entries keep (or get) PyTorch names (``<name>.weight_ih_l0`` ...); strings are skipped and
    reported (a state dict holds tensors)."""
    p = check_output_path(path, model_file)
    check_model(model_file, "torch", path=p)  # a semantic torch.nn.LSTM cannot hold: refused, nothing written
    report = SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    report.skipped.update(state_dict_notes(model_file, "torch"))
    state = tensor_state(model_file, report)
    with atomic_output(p) as tmp:
        torch.save(state, tmp)
    return report
