"""``.safetensors`` files via the ``safetensors`` package (its header is validated against the file
length by the library before any tensor is materialised).

Tensors are stored under their PyTorch names (``<name>.weight_ih_l0`` ...); the ``__metadata__`` header
records ``{"format": "pt", "source_framework": ..., "source_version": ...}``.
"""
from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict
from typing import Union

from .common import PathLike, SaveReport, atomic_output, check_output_path, head_bytes, tensor_state
from .model import FormatError, ModelFile, group_state_dict, validate

NAME = "safetensors"
SUFFIXES = (".safetensors",)


def _lib():
    try:
        import safetensors.torch as st
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError("safetensors files need the safetensors package: "
                                  "pip install 'lstm-bridge[safetensors]'") from exc
    return st


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """An 8-byte little-endian header length followed by a JSON object."""
    head = head_bytes(path_or_head, 9)
    if len(head) < 9:
        return False
    n = struct.unpack("<Q", head[:8])[0]
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def load(path: PathLike) -> ModelFile:
    """Read a ``.safetensors`` file into a :class:`ModelFile` (framework ``torch``)."""
    p = os.fspath(path)
    st = _lib()
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such file: {p!r}")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(8)
            n = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
            if n < 0 or n > os.path.getsize(p) - 8:
                raise FormatError(p, f"safetensors header length {n} does not fit in the file")
            header = json.loads(fh.read(n).decode("utf-8"))
        tensors_t = st.load_file(p, device="cpu")
    except FormatError:
        raise
    except Exception as exc:  # safetensors raises SafetensorError/ValueError/...: all mean "unreadable"
        raise FormatError(p, f"unreadable safetensors file ({type(exc).__name__}: {exc})") from None
    # keep the writer's order (data offsets), not the header's sorted keys
    names = [k for k in header if k != "__metadata__" and isinstance(header[k], dict)]
    names.sort(key=lambda k: tuple(header[k].get("data_offsets", [0, 0])))
    meta = header.get("__metadata__") or {}
    try:  # our writer records the original order (safetensors itself sorts the tensors)
        order = json.loads(meta.get("key_order", "null"))
    except ValueError:
        order = None
    if isinstance(order, list) and sorted(order) == sorted(names):
        names = order
    tensors = OrderedDict()
    for k in names:
        t = tensors_t[k]
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        tensors[k] = t.numpy().copy()
    try:
        entries = group_state_dict(tensors)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    return validate(ModelFile(framework="torch", version=meta.get("source_version"), layers=entries, format=NAME,
                              path=p, meta={"metadata": meta, "key_order": list(tensors)}))


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write the model's tensors (PyTorch naming) as ``.safetensors``; strings are skipped and reported."""
    p = check_output_path(path, model_file)
    st = _lib()
    report = SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    state = tensor_state(model_file, report)
    metadata = {"format": "pt", "source_framework": model_file.framework,
                "source_version": str(model_file.version or ""), "key_order": json.dumps(list(state))}
    with atomic_output(p) as tmp:
        st.save_file(state, tmp, metadata=metadata)
    return report
