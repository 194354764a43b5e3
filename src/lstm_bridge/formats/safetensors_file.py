"""``.safetensors`` files: written with the ``safetensors`` package, read by our own bounded reader
(header length, entries, offsets and ``__metadata__`` validated against the file before any tensor
is read; each tensor read once).

Tensors are stored under their PyTorch names (``<name>.weight_ih_l0`` ...); the ``__metadata__`` header
records ``{"format": "pt", "source_framework": ..., "source_version": ...}``.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections import OrderedDict
from typing import Any, Dict, Tuple, Union

import numpy as np

from ..targets import check_model, state_dict_notes
from .common import (
    PathLike,
    SaveReport,
    atomic_output,
    check_output_path,
    check_regular_file,
    head_bytes,
    open_regular,
    tensor_state,
)
from .model import FormatError, ModelFile, group_state_dict, validate

NAME = "safetensors"
SUFFIXES = (".safetensors",)


def _lib():
    try:
        import safetensors.torch as st
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError(
            "safetensors files need the safetensors package: pip install 'lstm-bridge[safetensors]'"
        ) from exc
    return st


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """An 8-byte little-endian header length followed by a JSON object."""
    head = head_bytes(path_or_head, 9)
    if len(head) < 9:
        return False
    n = struct.unpack("<Q", head[:8])[0]
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


# Bounds on untrusted headers: the safetensors format caps its JSON header at 100 MB (the library
# refuses more); an LSTM file has a handful of tensors, so more than ``MAX_TENSORS`` entries or
# ``MAX_HEADER_VALUES`` JSON values (each costs Python objects ~20x its JSON text) is refused, and
# ``__metadata__`` must be the spec's flat ``{str: str}`` map.
MAX_HEADER = 100_000_000
MAX_TENSORS = 100_000
#: JSON values (counted from the raw bytes before parsing) a header may hold: ~8 per tensor entry
MAX_HEADER_VALUES = 16 * MAX_TENSORS
#: safetensors dtype -> NumPy dtype (``BF16`` is read as its uint16 bits, then widened to float32);
#: float8/float4/complex tensors are refused
_DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "U16": "<u2",
    "I32": "<i4",
    "U32": "<u4",
    "I64": "<i8",
    "U64": "<u8",
    "F16": "<f2",
    "F32": "<f4",
    "F64": "<f8",
    "BF16": "<u2",
}


def _read_header(p: str, fh: io.BufferedReader, size: int) -> Tuple[int, Dict[str, Any]]:
    raw = fh.read(8)
    if len(raw) < 8:
        raise FormatError(p, f"too short for a safetensors file ({size} bytes; the header length takes 8)")
    n = struct.unpack("<Q", raw)[0]
    if n > MAX_HEADER:
        raise FormatError(p, f"safetensors header length {n} is above the format's limit of {MAX_HEADER} bytes")
    if n < 2 or n > size - 8:
        raise FormatError(p, f"safetensors header length {n} does not fit in the {size}-byte file")
    text = fh.read(n)
    nodes = text.count(b",") + text.count(b"{") + text.count(b"[") + 1  # bound before parsing
    if nodes > MAX_HEADER_VALUES:
        raise FormatError(
            p,
            f"the safetensors header holds about {nodes} JSON values, above the limit of "
            f"{MAX_HEADER_VALUES} ({MAX_TENSORS} tensors)",
        )
    try:
        header = json.loads(text.decode("utf-8"))
    except RecursionError:
        raise FormatError(p, "the safetensors header nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(p, f"the safetensors header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(p, f"the safetensors header must be a JSON object; found {type(header).__name__}")
    return n, header


def _check_metadata(p: str, meta: Any) -> Dict[str, str]:
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise FormatError(
            p,
            "__metadata__ must map strings to strings (safetensors spec); found "
            f"{json.dumps(meta)[:120] if isinstance(meta, (dict, list)) else repr(meta)[:120]}",
        )
    return meta


def _check_entry(p: str, name: str, info: Any, data_len: int) -> Tuple[np.dtype, Tuple[int, ...], int, int]:
    """(NumPy dtype, shape, begin, end) of one header entry, after checking it against the file."""
    if not isinstance(info, dict):
        raise FormatError(p, f"tensor {name!r}: header entry must be an object; found {type(info).__name__}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _DTYPES:
        raise FormatError(p, f"tensor {name!r} has dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise FormatError(p, f"tensor {name!r}: shape must be a list of non-negative integers; found {shape!r:.80}")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise FormatError(
            p, f"tensor {name!r}: data_offsets {offsets!r:.80} must be [begin, end] within the {data_len} data bytes"
        )
    dt = np.dtype(_DTYPES[dtype])
    count = 1
    for d in shape:
        count *= d
    if count * dt.itemsize != offsets[1] - offsets[0]:
        raise FormatError(
            p,
            f"tensor {name!r}: shape {shape} of {dtype} needs {count * dt.itemsize} bytes; "
            f"data_offsets span {offsets[1] - offsets[0]}",
        )
    return dt, tuple(shape), offsets[0], offsets[1]


def load(path: PathLike) -> ModelFile:
    """Read a ``.safetensors`` file into a :class:`ModelFile` (framework ``torch``).

    The header is checked entry by entry against the file (dtype, shape, offsets covering the data
    without holes or overlaps, as the spec requires) before any tensor is read; each tensor is then
    read once into its array."""
    p = os.fspath(path)
    size = check_regular_file(p)
    tensors: OrderedDict[str, Any] = OrderedDict()
    try:
        with open_regular(p) as fh:
            n, header = _read_header(p, fh, size)
            meta = _check_metadata(p, header.get("__metadata__"))
            data_len = size - 8 - n
            items = [(k, v) for k, v in header.items() if k != "__metadata__"]
            if len(items) > MAX_TENSORS:
                raise FormatError(p, f"the header lists {len(items)} tensors, above the limit of {MAX_TENSORS}")
            checked = {k: _check_entry(p, k, v, data_len) for k, v in items}
            spans = sorted((c[2], c[3], k) for k, c in checked.items())
            pos = 0
            for b, e, k in spans:
                if b != pos:
                    raise FormatError(
                        p,
                        f"tensor {k!r}: data starts at byte {b}, expected {pos} (the data must be "
                        "covered without holes or overlaps)",
                    )
                pos = e
            if pos != data_len:
                raise FormatError(p, f"the tensors cover {pos} data bytes; the file has {data_len}")
            # keep the writer's order (data offsets), not the header's sorted keys
            names = [k for _, _, k in spans]
            try:  # our writer records the original order (safetensors itself sorts the tensors)
                order = json.loads(meta.get("key_order", "null"))
            except (ValueError, RecursionError):
                order = None
            if isinstance(order, list) and all(isinstance(k, str) for k in order) and sorted(order) == sorted(names):
                names = order
            for k in names:
                dt, shape, b, e = checked[k]
                buf = bytearray(e - b)
                fh.seek(8 + n + b)
                if fh.readinto(buf) != e - b:
                    raise FormatError(p, f"tensor {k!r}: the file ends inside its data")
                arr = np.frombuffer(buf, dtype=dt).reshape(shape)
                if header[k]["dtype"] == "BF16":  # exact: bfloat16 is the top half of a float32
                    arr = (arr.astype(np.uint32) << 16).view(np.float32)
                tensors[k] = arr.astype(dt.newbyteorder("="), copy=False)
    except FormatError:
        raise
    except (OSError, ValueError, MemoryError) as exc:
        raise FormatError(p, f"unreadable safetensors file ({type(exc).__name__}: {exc})") from None
    try:
        entries = group_state_dict(tensors)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    return validate(
        ModelFile(
            framework="torch",
            version=meta.get("source_version"),
            layers=entries,
            format=NAME,
            path=p,
            meta={"metadata": meta, "key_order": list(tensors)},
        )
    )


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write the model's tensors (PyTorch naming) as ``.safetensors``; strings are skipped and reported."""
    p = check_output_path(path, model_file)
    check_model(model_file, "torch", path=p)  # a semantic torch.nn.LSTM cannot hold: refused, nothing written
    st = _lib()
    report = SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    report.skipped.update(state_dict_notes(model_file, "torch"))
    state = tensor_state(model_file, report)
    metadata = {
        "format": "pt",
        "source_framework": model_file.framework,
        "source_version": str(model_file.version or ""),
        "key_order": json.dumps(list(state)),
    }
    with atomic_output(p) as tmp:
        st.save_file(state, tmp, metadata=metadata)
    return report
