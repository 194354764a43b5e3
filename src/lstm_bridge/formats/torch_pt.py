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

from .common import PathLike, SaveReport, atomic_output, check_output_path, head_bytes, tensor_state
from .model import FormatError, ModelFile, group_state_dict, validate

NAME = "torch"
SUFFIXES = (".pt", ".pth")
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")


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
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such file: {p!r}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError...) here
        raise FormatError(p, f"not a loadable PyTorch weights file with weights_only=True "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(obj, dict):
        for k in _NESTED_KEYS:
            if k in obj and isinstance(obj[k], dict) and any(isinstance(v, torch.Tensor) for v in obj[k].values()):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj:
        raise FormatError(p, f"expected a non-empty state dict {{name: tensor}}; found {type(obj).__name__}")
    tensors: "OrderedDict[str, Any]" = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str):
            raise FormatError(p, f"state dict keys must be strings; found {k!r}")
        if isinstance(v, torch.Tensor):
            if v.dtype == torch.bfloat16:
                v = v.float()  # exact; NumPy has no bfloat16
            tensors[k] = v.detach().cpu().numpy().copy()
        elif isinstance(v, (bool, int, float, str)):
            tensors[k] = np.array(v)
        else:
            raise FormatError(p, f"state dict entry {k!r} is a {type(v).__name__}, not a tensor or number")
    try:
        entries = group_state_dict(tensors)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    return validate(ModelFile(framework="torch", version=torch.__version__, layers=entries, format=NAME, path=p,
                              meta={"key_order": list(tensors)}))


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write a flat state dict of tensors with ``torch.save`` (loads with ``weights_only=True``).

    LSTM entries keep (or get) PyTorch names (``<name>.weight_ih_l0`` ...); strings are skipped and
    reported (a state dict holds tensors)."""
    p = check_output_path(path, model_file)
    report = SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    state = tensor_state(model_file, report)
    with atomic_output(p) as tmp:
        torch.save(state, tmp)
    return report
