"""MindSpore ``.ckpt`` files, read and written without MindSpore (spec mindspore §6).

Layout: a concatenation of serialized ``Checkpoint`` messages holding one ``Value`` each (schema in
``ms_checkpoint.proto``, next to this module, parsed at import: no ``protoc`` needed), optionally
followed by the trailer ``b"crc_num"`` + 10-byte big-endian ``zlib.crc32`` of all preceding bytes.

* Tensors larger than the slice size are split over consecutive entries with the same tag, dims and
  type; the reader concatenates them (cut anywhere), the writer cuts at element boundaries.
* ``tensor_content`` is raw little-endian C-order data; ``dims`` are unpacked varints; scalars have no
  dims (2.x) or ``dims=[0]`` (1.x); strings are type ``str`` with UTF-32-LE content.
* Encrypted files (little-endian magic 0x7F3A5ED8/9/A) are refused with a clear error.
* The reader streams: one record at a time, never more than a record's declared length (which must fit
  in the file), the CRC accumulated on the way; a tag that is not UTF-8 is a FormatError.

The writer reproduces MindSpore 2.10's bytes exactly (``lstm_small.ckpt`` re-written is identical).
"""
from __future__ import annotations

import io
import os
import re
import zlib
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .common import (PathLike, SaveReport, atomic_output, check_output_path, check_regular_file, head_bytes,
                     open_regular)
from .model import FormatError, ModelFile, flatten_state_dict, group_state_dict, validate
from ..targets import check_model, mask_notes

NAME = "mindspore-ckpt"
SUFFIXES = (".ckpt",)

#: MindSpore 2.10's synchronous-save slice size (``1024 * SLICE_SIZE`` bytes).
DEFAULT_SLICE_BYTES = 512 * 1024 * 1024
CRC_MAGIC = b"crc_num"
_ENCRYPTION_MAGIC = {0x7F3A5ED8: "AES-GCM", 0x7F3A5ED9: "AES-CBC", 0x7F3A5EDA: "SM4-CBC"}

_DTYPES: Dict[str, str] = {
    "Float16": "<f2", "Float32": "<f4", "Float64": "<f8",
    "Int8": "i1", "Int16": "<i2", "Int32": "<i4", "Int64": "<i8",
    "UInt8": "u1", "UInt16": "<u2", "UInt32": "<u4", "UInt64": "<u8",
    "Bool": "?", "BFloat16": "<u2",
}
_TYPE_OF_KIND = {("f", 2): "Float16", ("f", 4): "Float32", ("f", 8): "Float64",
                 ("i", 1): "Int8", ("i", 2): "Int16", ("i", 4): "Int32", ("i", 8): "Int64",
                 ("u", 1): "UInt8", ("u", 2): "UInt16", ("u", 4): "UInt32", ("u", 8): "UInt64",
                 ("b", 1): "Bool"}


# --- schema: parse ms_checkpoint.proto (the proto2 subset it uses) into message classes -------------

_PROTO_PATH = os.path.join(os.path.dirname(__file__), "ms_checkpoint.proto")
_SCALAR_TYPES = {
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}
_LABELS = {
    "required": descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED,
    "optional": descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    "repeated": descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
}


def _parse_proto(text: str) -> descriptor_pb2.FileDescriptorProto:
    """Parse the proto2 subset of ``ms_checkpoint.proto`` (package, nested messages, labelled
    scalar/message fields, oneof) into a FileDescriptorProto."""
    text = re.sub(r"//[^\n]*", "", text)
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*|\d+|\"[^\"]*\"|[{};=]", text)
    fdp = descriptor_pb2.FileDescriptorProto(name="lstm_bridge_ms_checkpoint.proto", syntax="proto2")
    pos = 0

    def take(expected: Optional[str] = None) -> str:
        nonlocal pos
        tok = tokens[pos]
        if expected is not None and tok != expected:
            raise ValueError(f"ms_checkpoint.proto: expected {expected!r}, found {tok!r}")
        pos += 1
        return tok

    def message(msg: descriptor_pb2.DescriptorProto, scope: List[str]) -> None:
        msg.name = take()
        take("{")
        oneof_index: Optional[int] = None
        oneof_depth = 0
        while True:
            tok = take()
            if tok == "}":
                if oneof_index is not None and oneof_depth:
                    oneof_index, oneof_depth = None, 0
                    continue
                return
            if tok == "message":
                message(msg.nested_type.add(), scope + [msg.name])
            elif tok == "oneof":
                msg.oneof_decl.add(name=take())
                take("{")
                oneof_index, oneof_depth = len(msg.oneof_decl) - 1, 1
            else:
                label = tok if tok in _LABELS else None
                ftype = take() if label else tok
                fname = take()
                take("=")
                number = int(take())
                take(";")
                f = msg.field.add(name=fname, number=number,
                                  label=_LABELS[label or "optional"])
                if ftype in _SCALAR_TYPES:
                    f.type = _SCALAR_TYPES[ftype]
                else:
                    f.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                    f.type_name = ftype  # resolved below
                if oneof_index is not None:
                    f.oneof_index = oneof_index

    while pos < len(tokens):
        tok = take()
        if tok == "syntax":
            take("=")
            take()
            take(";")
        elif tok == "package":
            fdp.package = take()
            take(";")
        elif tok == "message":
            message(fdp.message_type.add(), [])
        else:
            raise ValueError(f"ms_checkpoint.proto: unexpected token {tok!r}")

    # resolve message type names: nested first (Checkpoint.Value), then top level
    top = {m.name for m in fdp.message_type}

    def resolve(msg: descriptor_pb2.DescriptorProto, scope: str) -> None:
        nested = {n.name for n in msg.nested_type}
        for f in msg.field:
            if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE and not f.type_name.startswith("."):
                if f.type_name in nested:
                    f.type_name = f".{scope}.{f.type_name}"
                elif f.type_name in top:
                    f.type_name = f".{fdp.package}.{f.type_name}"
                else:
                    raise ValueError(f"ms_checkpoint.proto: unknown type {f.type_name!r}")
        for n in msg.nested_type:
            resolve(n, f"{scope}.{n.name}")

    for m in fdp.message_type:
        resolve(m, f"{fdp.package}.{m.name}")
    return fdp


def _build_classes():
    with open(_PROTO_PATH, "r", encoding="utf-8") as fh:
        fdp = _parse_proto(fh.read())
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(fdp)
    pkg = fdp.package
    checkpoint = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.Checkpoint"))
    value = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.Checkpoint.Value"))
    tensor = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{pkg}.TensorProto"))
    return fd, checkpoint, value, tensor


FILE_DESCRIPTOR, Checkpoint, CheckpointValue, TensorProto = _build_classes()


# --- detection ------------------------------------------------------------------------------------

def _encryption(head: bytes) -> Optional[str]:
    if len(head) >= 4:
        return _ENCRYPTION_MAGIC.get(int.from_bytes(head[:4], "little"))
    return None


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """True for a plain (first byte ``0x0a``, then a tag string) or encrypted MindSpore checkpoint."""
    head = head_bytes(path_or_head, 64)
    if _encryption(head):
        return True
    if len(head) < 4 or head[0] != 0x0A:
        return False
    try:
        _, p = _varint(head, 1, len(head))
        if head[p] != 0x0A:  # Value.tag
            return False
        tag_len, q = _varint(head, p + 1, len(head))
        return 0 < tag_len < 4096
    except (IndexError, ValueError):
        return False


# --- reading --------------------------------------------------------------------------------------

def _varint(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _records(path: str, fh: Any, end: int, crc: Optional[List[int]] = None):
    """Yield (offset, Value message) for each top-level ``Checkpoint.value`` record, reading the open
    file ``fh`` (or bytes) one record at a time (never more than the record's declared length, which
    must fit before ``end``); ``crc[0]`` accumulates the zlib.crc32 of the bytes consumed. A tag or
    tensor type that is not UTF-8 text is a FormatError."""
    if isinstance(fh, (bytes, bytearray, memoryview)):
        fh = io.BytesIO(fh)
    crc = crc if crc is not None else [0]
    pos = 0
    fh.seek(0)
    while pos < end:
        start = pos
        head = fh.read(min(11, end - pos))  # 0x0a + a varint of at most 10 bytes
        if head[:1] != b"\x0a":
            raise FormatError(path, f"corrupt checkpoint: byte {pos} is 0x{head[:1].hex() or '??'}, expected 0x0a "
                                    "(the start of an entry)")
        try:
            length, q = _varint(head, 1, len(head))
        except ValueError as exc:
            raise FormatError(path, f"corrupt checkpoint: entry at byte {start}: {exc}") from None
        if pos + q + length > end:
            raise FormatError(path, f"truncated checkpoint: entry at byte {start} declares {length} bytes but "
                                    f"only {end - pos - q} remain")
        fh.seek(pos + q)
        body = fh.read(length)
        if len(body) != length:
            raise FormatError(path, f"truncated checkpoint: the file ends inside the entry at byte {start}")
        crc[0] = zlib.crc32(body, zlib.crc32(head[:q], crc[0]))
        try:
            value = CheckpointValue.FromString(body)
            tag = value.tag
            ttype = value.tensor.tensor_type
        except (DecodeError, RuntimeError, ValueError, TypeError) as exc:
            raise FormatError(path, f"corrupt checkpoint entry at byte {start}: {type(exc).__name__}: {exc}") \
                from None
        del body
        if not isinstance(tag, str) or not isinstance(ttype, str):  # proto2 strings need not be valid UTF-8
            raise FormatError(path, f"corrupt checkpoint entry at byte {start}: its tag or tensor_type is not "
                                    f"valid UTF-8 ({tag!r:.80}, {ttype!r:.40})")
        pos += q + length
        yield start, value


def _decode(path: str, tag: str, dims: List[int], ttype: str, content: bytes) -> Any:
    if ttype == "str":
        if len(content) % 4:
            raise FormatError(path, f"entry {tag!r}: a 'str' tensor holds UTF-32-LE text, but its {len(content)} "
                                    "bytes are not a multiple of 4")
        try:
            text = content.decode("utf-32-le")
        except UnicodeDecodeError as exc:
            raise FormatError(path, f"entry {tag!r}: invalid UTF-32-LE string: {exc}") from None
        return np.array(text)
    if ttype not in _DTYPES:
        raise FormatError(path, f"entry {tag!r}: unsupported tensor_type {ttype!r}; expected one of "
                                f"{sorted(_DTYPES) + ['str']}")
    if any(d < 0 for d in dims):
        raise FormatError(path, f"entry {tag!r}: negative dimension in dims {dims}")
    dtype = np.dtype(_DTYPES[ttype])
    shape: Tuple[int, ...] = () if dims in ([], [0]) else tuple(dims)
    count = 1
    for d in shape:
        count *= d
    expected = count * dtype.itemsize
    if expected != len(content):
        raise FormatError(path, f"entry {tag!r}: dims {dims} of {ttype} need {expected} bytes, "
                                f"found {len(content)}")
    return np.frombuffer(content, dtype=dtype).reshape(shape).copy()


def read_tensors(path: PathLike, verify_crc: bool = True) -> Tuple["OrderedDict[str, Any]", Dict[str, Any]]:
    """The checkpoint's tensors ``tag -> np.ndarray`` in file order (slices joined), and format facts
    (``crc``: whether a trailer was present, ``types``: MindSpore type per tag, ``sliced``: tags that
    were split).

    Raises:
        FormatError: encrypted, truncated or corrupt files, or a CRC mismatch.
    """
    p = os.fspath(path)
    size = check_regular_file(p)
    try:
        with open_regular(p) as fh:
            return _read_tensors(p, fh, size, verify_crc)
    except MemoryError:
        raise FormatError(p, "not enough memory to hold its tensors") from None


def _read_tensors(p: str, fh: Any, size: int, verify_crc: bool) -> Tuple["OrderedDict[str, Any]", Dict[str, Any]]:
    enc = _encryption(fh.read(4))
    if enc:
        raise FormatError(p, f"encrypted checkpoint ({enc}): decrypt it with MindSpore first "
                             "(mindspore.load_checkpoint(..., dec_key=..., dec_mode=...) then save_checkpoint)")
    end = size
    stored = None
    if size >= 17:
        fh.seek(size - 17)
        tail = fh.read(17)
        if tail[:7] == CRC_MAGIC:
            stored = int.from_bytes(tail[7:], "big")
            end -= 17
    if end == 0:
        raise FormatError(p, "empty checkpoint: no entries")
    pieces: "OrderedDict[str, Tuple[List[int], str, List[bytes]]]" = OrderedDict()
    sliced = set()
    last_tag = None
    crc = [0]
    for start, value in _records(p, fh, end, crc):
        tag = value.tag
        which = value.WhichOneof("value")
        if which != "tensor":
            raise FormatError(p, f"entry {tag!r} at byte {start} holds a "
                                 f"{which or 'nothing'} instead of a tensor (MapParameter entries are unsupported)")
        t = value.tensor
        dims = list(t.dims)
        if tag == last_tag:
            prev_dims, prev_type, parts = pieces[tag]
            if prev_dims != dims or prev_type != t.tensor_type:
                raise FormatError(p, f"entry {tag!r} at byte {start}: a slice with dims {dims} / "
                                     f"{t.tensor_type} follows one with {prev_dims} / {prev_type}")
            parts.append(t.tensor_content)
            sliced.add(tag)
        else:
            # a later, non-consecutive duplicate overwrites the earlier one (as MindSpore does)
            pieces[tag] = (dims, t.tensor_type, [t.tensor_content])
        last_tag = tag
        del value, t
    if stored is not None and verify_crc:
        actual = crc[0] & 0xFFFFFFFF
        if stored != actual:
            raise FormatError(p, f"CRC mismatch: the trailer says 0x{stored:08x}, the data gives 0x{actual:08x} "
                                 "(the file is corrupt or was modified)")
    crc_present = stored is not None
    tensors: "OrderedDict[str, Any]" = OrderedDict()
    types: Dict[str, str] = {}
    for tag in list(pieces):
        dims, ttype, parts = pieces.pop(tag)  # free each tensor's raw bytes once decoded
        tensors[tag] = _decode(p, tag, dims, ttype, parts[0] if len(parts) == 1 else b"".join(parts))
        types[tag] = ttype
    return tensors, {"crc": crc_present, "types": types, "sliced": sorted(sliced)}


def load(path: PathLike) -> ModelFile:
    """Read a MindSpore checkpoint into a :class:`ModelFile` (framework ``"mindspore"``).

    LSTM layers are grouped by the ``weight_ih_l0 ...`` suffix pattern under any prefix, LSTM cells
    by ``weight_ih``/``weight_hh``; other tensors (embedding, dense, ``append_dict`` extras) are
    carried by name.
    """
    p = os.fspath(path)
    tensors, facts = read_tensors(p)
    try:
        entries = group_state_dict(tensors)
    except FormatError:
        raise
    except ValueError as exc:  # includes UnsupportedLayoutError
        raise FormatError(p, str(exc)) from None
    meta = dict(facts)
    meta["key_order"] = list(tensors)
    return validate(ModelFile(framework="mindspore", version=None, layers=entries, format=NAME, path=p, meta=meta))


# --- writing --------------------------------------------------------------------------------------

def _entry_bytes(tag: str, dims: List[int], ttype: str, content: bytes) -> bytes:
    msg = Checkpoint()
    v = msg.value.add()
    v.tag = tag
    v.tensor.dims.extend(dims)
    v.tensor.tensor_type = ttype
    v.tensor.tensor_content = content
    return msg.SerializeToString()


def encode_tensors(tensors: "OrderedDict[str, Any]", slice_bytes: int = DEFAULT_SLICE_BYTES,
                   types: Optional[Dict[str, str]] = None,
                   skipped: Optional[Dict[str, str]] = None) -> bytes:
    """Serialize ``tag -> array`` like MindSpore 2.10's ``save_checkpoint``: unpacked dims, no dims
    for scalars, strings as ``str`` with ``dims=[0]``, tensors above ``slice_bytes`` cut into
    element-aligned consecutive entries. Empty tensors are left out (as MindSpore does) and named in
    ``skipped``. ``types`` may name ``BFloat16`` for uint16 arrays holding bfloat16 bits."""
    if slice_bytes <= 0:
        raise ValueError(f"slice_bytes must be positive; received {slice_bytes}")
    out = []
    for tag, value in tensors.items():
        if isinstance(value, str):
            value = np.array(value)
        arr = np.asarray(value)
        if arr.dtype.kind == "U":
            out.append(_entry_bytes(tag, [0], "str", str(arr.reshape(()).item()).encode("utf-32-le")))
            continue
        key = (arr.dtype.kind, arr.dtype.itemsize)
        if key not in _TYPE_OF_KIND:
            raise ValueError(f"tensor {tag!r}: dtype {arr.dtype} has no MindSpore checkpoint type")
        ttype = (types or {}).get(tag) if (types or {}).get(tag) == "BFloat16" else _TYPE_OF_KIND[key]
        if arr.size == 0:
            if skipped is not None:
                skipped[tag] = "empty tensor (MindSpore's writer leaves those out too)"
            continue
        le = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False)
        raw = le.tobytes()
        dims = list(arr.shape)
        step = slice_bytes - slice_bytes % arr.dtype.itemsize or arr.dtype.itemsize
        if len(raw) > slice_bytes:
            for k in range(0, len(raw), step):
                out.append(_entry_bytes(tag, dims, ttype, raw[k:k + step]))
        else:
            out.append(_entry_bytes(tag, dims, ttype, raw))
    return b"".join(out)


def save(model_file: ModelFile, path: PathLike, crc: bool = False,
         slice_bytes: int = DEFAULT_SLICE_BYTES) -> SaveReport:
    """Write ``model_file`` as a MindSpore 2.x checkpoint (atomically: ``<name>.tmp`` then rename).

    MindSpore/PyTorch model files keep their keys and order; Keras files get PyTorch/MindSpore names
    (``<layer>.weight_ih_l0``, ``..._reverse`` for a Bidirectional's backward layer) for their LSTMs and
    their other arrays under ``<layer>.<weight name>``.

    Args:
        crc: append the ``crc_num`` trailer (``save_checkpoint(..., crc_check=True)``).
        slice_bytes: tensors larger than this are split over consecutive entries (MindSpore: 512 MiB).
    """
    p = check_output_path(path, model_file)
    check_model(model_file, "mindspore", path=p)  # a semantic MindSpore cannot hold: refused, nothing written
    tensors = flatten_state_dict(model_file)
    order = model_file.meta.get("key_order") if model_file.framework == "mindspore" else None
    if order and set(order) == set(tensors):
        tensors = OrderedDict((k, tensors[k]) for k in order)
    report = SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    report.skipped.update(mask_notes(model_file, "mindspore"))
    try:
        data = encode_tensors(tensors, slice_bytes, model_file.meta.get("types"), report.skipped)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    if crc:
        data += CRC_MAGIC + (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(10, "big")
    with atomic_output(p) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return report
