"""MindSpore ``.ckpt`` files, read and written without MindSpore (docs/spec/mindspore_lstm.md §6).

Layout: a concatenation of serialized ``Checkpoint`` messages holding one ``Value`` each (schema in
``ms_checkpoint.proto``, next to this module, parsed at import: no ``protoc`` needed), optionally
followed by the trailer ``b"crc_num"`` + 10-byte big-endian ``zlib.crc32`` of all preceding bytes.

* Tensors larger than the slice size are split over consecutive entries with the same tag, dims and
  type; the reader concatenates them (cut anywhere), the writer cuts at element boundaries.
* ``tensor_content`` is raw little-endian C-order data; ``dims`` are unpacked varints; scalars have no
  dims (2.x) or ``dims=[0]`` (1.x); strings are type ``str`` with UTF-32-LE content.
* Encrypted files (little-endian magic 0x7F3A5ED8/9/A) are refused with a clear error.
* The reader streams with bounds: it scans the record structure (keys, lengths, tags, dims) without
  reading tensor data, checks the CRC in 1 MiB blocks, then reads each tensor straight into its array
  once its size matches its dims; a tag that is not UTF-8 is a FormatError.

The writer reproduces MindSpore 2.10's bytes exactly (``lstm_small.ckpt`` re-written is identical).
"""

from __future__ import annotations

import os
import re
import zlib
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ..targets import check_model, state_dict_notes
from .common import PathLike, SaveReport, atomic_output, check_output_path, check_regular_file, head_bytes, open_regular
from .model import FormatError, ModelFile, flatten_state_dict, group_state_dict, validate

NAME = "mindspore-ckpt"
SUFFIXES = (".ckpt",)

#: MindSpore 2.10's synchronous-save slice size (``1024 * SLICE_SIZE`` bytes).
DEFAULT_SLICE_BYTES = 512 * 1024 * 1024
CRC_MAGIC = b"crc_num"
_ENCRYPTION_MAGIC = {0x7F3A5ED8: "AES-GCM", 0x7F3A5ED9: "AES-CBC", 0x7F3A5EDA: "SM4-CBC"}

_DTYPES: Dict[str, str] = {
    "Float16": "<f2",
    "Float32": "<f4",
    "Float64": "<f8",
    "Int8": "i1",
    "Int16": "<i2",
    "Int32": "<i4",
    "Int64": "<i8",
    "UInt8": "u1",
    "UInt16": "<u2",
    "UInt32": "<u4",
    "UInt64": "<u8",
    "Bool": "?",
    "BFloat16": "<u2",
}
_TYPE_OF_KIND = {
    ("f", 2): "Float16",
    ("f", 4): "Float32",
    ("f", 8): "Float64",
    ("i", 1): "Int8",
    ("i", 2): "Int16",
    ("i", 4): "Int32",
    ("i", 8): "Int64",
    ("u", 1): "UInt8",
    ("u", 2): "UInt16",
    ("u", 4): "UInt32",
    ("u", 8): "UInt64",
    ("b", 1): "Bool",
}


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
    parser = _ProtoParser(text)
    fdp = parser.file()
    top = {m.name for m in fdp.message_type}
    for m in fdp.message_type:  # message type names: nested first (Checkpoint.Value), then top level
        _resolve_types(m, f"{fdp.package}.{m.name}", fdp.package, top)
    return fdp


class _ProtoParser:
    """A token stream of a ``.proto`` text and the recursive-descent steps over it."""

    def __init__(self, text: str) -> None:
        text = re.sub(r"//[^\n]*", "", text)
        self.tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*|\d+|\"[^\"]*\"|[{};=]", text)
        self.pos = 0

    def take(self, expected: Optional[str] = None) -> str:
        tok = self.tokens[self.pos]
        if expected is not None and tok != expected:
            raise ValueError(f"ms_checkpoint.proto: expected {expected!r}, found {tok!r}")
        self.pos += 1
        return tok

    def file(self) -> descriptor_pb2.FileDescriptorProto:
        fdp = descriptor_pb2.FileDescriptorProto(name="lstm_bridge_ms_checkpoint.proto", syntax="proto2")
        while self.pos < len(self.tokens):
            tok = self.take()
            if tok == "syntax":
                self.take("=")
                self.take()
                self.take(";")
            elif tok == "package":
                fdp.package = self.take()
                self.take(";")
            elif tok == "message":
                self.message(fdp.message_type.add())
            else:
                raise ValueError(f"ms_checkpoint.proto: unexpected token {tok!r}")
        return fdp

    def message(self, msg: descriptor_pb2.DescriptorProto) -> None:
        msg.name = self.take()
        self.take("{")
        oneof_index: Optional[int] = None
        while True:
            tok = self.take()
            if tok == "}":
                if oneof_index is not None:  # the end of the oneof block, not of the message
                    oneof_index = None
                    continue
                return
            if tok == "message":
                self.message(msg.nested_type.add())
            elif tok == "oneof":
                msg.oneof_decl.add(name=self.take())
                self.take("{")
                oneof_index = len(msg.oneof_decl) - 1
            else:
                self.field(msg, tok, oneof_index)

    def field(self, msg: descriptor_pb2.DescriptorProto, tok: str, oneof_index: Optional[int]) -> None:
        """``[label] type name = number;`` (``tok`` is its first token); message types resolved later."""
        label = tok if tok in _LABELS else None
        ftype = self.take() if label else tok
        fname = self.take()
        self.take("=")
        number = int(self.take())
        self.take(";")
        f = msg.field.add(name=fname, number=number, label=_LABELS[label or "optional"])
        if ftype in _SCALAR_TYPES:
            f.type = _SCALAR_TYPES[ftype]
        else:
            f.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
            f.type_name = ftype
        if oneof_index is not None:
            f.oneof_index = oneof_index


def _resolve_types(msg: descriptor_pb2.DescriptorProto, scope: str, package: str, top: Set[str]) -> None:
    """Fully qualify the message type names of ``msg``'s fields (a nested type of ``msg`` first, then a
    top-level one), recursively."""
    nested = {n.name for n in msg.nested_type}
    for f in msg.field:
        if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE and not f.type_name.startswith("."):
            if f.type_name in nested:
                f.type_name = f".{scope}.{f.type_name}"
            elif f.type_name in top:
                f.type_name = f".{package}.{f.type_name}"
            else:
                raise ValueError(f"ms_checkpoint.proto: unknown type {f.type_name!r}")
    for n in msg.nested_type:
        _resolve_types(n, f"{scope}.{n.name}", package, top)


def _build_classes():
    with open(_PROTO_PATH, encoding="utf-8") as fh:
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


# Bounds for the streaming scanner: names and type strings are short, dims few; only tensor_content
# may be large, and it is never read before its size has been checked against the entry's dims.
_MAX_NAME = 64 * 1024
_MAX_DIMS_BYTES = 4096
_MAX_STR_TENSOR = 64 * 1024 * 1024


def _records(path: str, data: bytes, end: int):
    """Yield (offset, Value message) for each top-level ``Checkpoint.value`` record of ``data``, decoded
    by the protobuf library (a reference view of the records; :func:`read_tensors` uses the bounded
    streaming scanner :func:`_scan` instead)."""
    pos = 0
    while pos < end:
        start = pos
        if data[pos] != 0x0A:
            raise FormatError(
                path, f"corrupt checkpoint: byte {pos} is 0x{data[pos]:02x}, expected 0x0a (the start of an entry)"
            )
        try:
            length, pos = _varint(data, pos + 1, end)
        except ValueError as exc:
            raise FormatError(path, f"corrupt checkpoint: entry at byte {start}: {exc}") from None
        if pos + length > end:
            raise FormatError(
                path, f"truncated checkpoint: entry at byte {start} declares {length} bytes but only {end - pos} remain"
            )
        try:
            value = CheckpointValue.FromString(data[pos : pos + length])
        except (DecodeError, RuntimeError, ValueError, TypeError) as exc:
            raise FormatError(path, f"corrupt checkpoint entry at byte {start}: {exc}") from None
        pos += length
        yield start, value


class _Entry:
    """One ``Checkpoint.Value`` as located by :func:`_scan`: its tag, dims, tensor type, and where its
    ``tensor_content`` bytes lie in the file (``(offset, length)``; not read yet)."""

    __slots__ = ("tag", "dims", "ttype", "content")

    def __init__(self) -> None:
        self.tag: Optional[str] = None
        self.dims: List[int] = []
        self.ttype: Optional[str] = None
        self.content: Optional[Tuple[int, int]] = None


class _Reader:
    """Bounded protobuf field reader over an open file: every read stays inside ``[pos, end)``."""

    def __init__(self, path: str, fh: Any):
        self.path, self.fh = path, fh

    def bytes_at(self, pos: int, n: int, end: int, what: str) -> bytes:
        if pos + n > end:
            raise FormatError(self.path, f"corrupt checkpoint: {what} at byte {pos} runs past its entry")
        self.fh.seek(pos)
        data = self.fh.read(n)
        if len(data) != n:
            raise FormatError(self.path, f"truncated checkpoint: the file ends inside {what} at byte {pos}")
        return data

    def varint(self, pos: int, end: int, what: str) -> Tuple[int, int]:
        self.fh.seek(pos)
        head = self.fh.read(min(10, end - pos))
        try:
            value, q = _varint(head, 0, len(head))
        except ValueError as exc:
            raise FormatError(self.path, f"corrupt checkpoint: {what} at byte {pos}: {exc}") from None
        return value, pos + q

    def fields(self, pos: int, end: int, what: str):
        """Yield (field number, wire type, value or (offset, length) for length-delimited, next pos)."""
        while pos < end:
            key, pos = self.varint(pos, end, f"a field key of {what}")
            number, wire = key >> 3, key & 7
            if number == 0:
                raise FormatError(self.path, f"corrupt checkpoint: field number 0 in {what} at byte {pos}")
            if wire == 0:
                value, pos = self.varint(pos, end, f"field {number} of {what}")
                yield number, wire, value, pos
            elif wire == 2:
                length, pos = self.varint(pos, end, f"the length of field {number} of {what}")
                if pos + length > end:
                    raise FormatError(
                        self.path,
                        f"corrupt checkpoint: field {number} of {what} at byte {pos} "
                        f"declares {length} bytes, past the end of its entry",
                    )
                yield number, wire, (pos, length), pos + length
                pos += length
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
                if pos > end:
                    raise FormatError(self.path, f"corrupt checkpoint: field {number} of {what} runs past its entry")
                yield number, wire, None, pos
            else:
                raise FormatError(
                    self.path,
                    f"corrupt checkpoint: wire type {wire} of field {number} in {what} "
                    f"at byte {pos} (groups are not used by checkpoints)",
                )

    def text(self, span: Tuple[int, int], end: int, what: str) -> str:
        off, n = span
        if n > _MAX_NAME:
            raise FormatError(
                self.path, f"corrupt checkpoint: {what} at byte {off} is {n} bytes long (limit {_MAX_NAME})"
            )
        raw = self.bytes_at(off, n, end, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(
                self.path, f"corrupt checkpoint: {what} at byte {off} is not valid UTF-8 ({raw[:40]!r})"
            ) from None


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scan_tensor(r: _Reader, e: _Entry, span: Tuple[int, int], where: str) -> None:
    off, n = span
    end = off + n
    for number, wire, value, _ in r.fields(off, end, f"the tensor of {where}"):
        if number == 1 and wire == 0:
            e.dims.append(_signed64(value))
        elif number == 1 and wire == 2:  # packed dims
            if value[1] > _MAX_DIMS_BYTES:
                raise FormatError(r.path, f"corrupt checkpoint: {where} declares {value[1]} bytes of dims")
            packed = r.bytes_at(value[0], value[1], end, f"the dims of {where}")
            q = 0
            while q < len(packed):
                try:
                    d, q = _varint(packed, q, len(packed))
                except ValueError as exc:
                    raise FormatError(r.path, f"corrupt checkpoint: the dims of {where}: {exc}") from None
                e.dims.append(_signed64(d))
        elif number == 2 and wire == 2:
            e.ttype = r.text(value, end, f"the tensor_type of {where}")
        elif number == 3 and wire == 2:
            e.content = value
        elif number in (1, 2, 3):
            raise FormatError(
                r.path, f"corrupt checkpoint: field {number} of the tensor of {where} has wire type {wire}"
            )
        if len(e.dims) > 64:
            raise FormatError(r.path, f"corrupt checkpoint: {where} has more than 64 dims")


def _scan(path: str, fh: Any, end: int):
    """Yield (offset, :class:`_Entry`) for each top-level ``Checkpoint.value`` record of the open file,
    reading only field keys, lengths, names and dims (bounded), never tensor data."""
    r = _Reader(path, fh)
    pos = 0
    while pos < end:
        start = pos
        first = r.bytes_at(pos, 1, end, "an entry")
        if first != b"\x0a":
            raise FormatError(
                path, f"corrupt checkpoint: byte {pos} is 0x{first.hex()}, expected 0x0a (the start of an entry)"
            )
        length, body = r.varint(pos + 1, end, f"the length of the entry at byte {start}")
        if body + length > end:
            raise FormatError(
                path,
                f"truncated checkpoint: entry at byte {start} declares {length} bytes but only {end - body} remain",
            )
        where = f"the entry at byte {start}"
        e = _Entry()
        for number, wire, value, _ in r.fields(body, body + length, where):
            if number == 1 and wire == 2:
                e.tag = r.text(value, body + length, f"the tag of {where}")
            elif number == 2 and wire == 2:
                _scan_tensor(r, e, value, where if e.tag is None else f"entry {e.tag!r}")
            elif number == 3:
                raise FormatError(
                    path,
                    f"entry {e.tag!r} at byte {start} holds a maptensor instead of a tensor "
                    "(MapParameter entries are unsupported)",
                )
            elif number in (1, 2):
                raise FormatError(path, f"corrupt checkpoint: field {number} of {where} has wire type {wire}")
        if e.tag is None:
            raise FormatError(path, f"corrupt checkpoint: {where} has no tag")
        if e.ttype is None and e.content is None and not e.dims:
            raise FormatError(path, f"entry {e.tag!r} at byte {start} holds nothing instead of a tensor")
        if e.ttype is None or e.content is None:
            raise FormatError(
                path,
                f"corrupt checkpoint: entry {e.tag!r} at byte {start} lacks its "
                f"{'tensor_type' if e.ttype is None else 'tensor_content'}",
            )
        pos = body + length
        yield start, e


def _crc(fh: Any, end: int) -> int:
    """zlib.crc32 of the first ``end`` bytes, read in 1 MiB blocks."""
    fh.seek(0)
    crc, left = 0, end
    while left:
        block = fh.read(min(left, 1 << 20))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        left -= len(block)
    return crc & 0xFFFFFFFF


def _decode(path: str, tag: str, dims: List[int], ttype: str, parts: List[Tuple[int, int]], fh: Any) -> Any:
    """The array of one entry, read from its content spans ``parts`` after checking their total
    length against ``dims`` (nothing is read for a size mismatch); one copy, into the result."""
    total = sum(n for _, n in parts)
    if ttype == "str":
        if total % 4:
            raise FormatError(
                path,
                f"entry {tag!r}: a 'str' tensor holds UTF-32-LE text, but its {total} bytes are not a multiple of 4",
            )
        if total > _MAX_STR_TENSOR:
            raise FormatError(path, f"entry {tag!r}: a {total}-byte string (limit {_MAX_STR_TENSOR})")
        content = b"".join(_read_span(fh, off, n) for off, n in parts)
        try:
            text = content.decode("utf-32-le")
        except UnicodeDecodeError as exc:
            raise FormatError(path, f"entry {tag!r}: invalid UTF-32-LE string: {exc}") from None
        return np.array(text)
    if ttype not in _DTYPES:
        raise FormatError(
            path, f"entry {tag!r}: unsupported tensor_type {ttype!r}; expected one of {sorted(_DTYPES) + ['str']}"
        )
    if any(d < 0 for d in dims):
        raise FormatError(path, f"entry {tag!r}: negative dimension in dims {dims}")
    dtype = np.dtype(_DTYPES[ttype])
    shape: Tuple[int, ...] = () if dims in ([], [0]) else tuple(dims)
    count = 1
    for d in shape:
        count *= d
    expected = count * dtype.itemsize
    if expected != total:
        raise FormatError(path, f"entry {tag!r}: dims {dims} of {ttype} need {expected} bytes, found {total}")
    out = np.empty(count, dtype=dtype)
    view = out.data.cast("B")
    q = 0
    for off, n in parts:
        fh.seek(off)
        if fh.readinto(view[q : q + n]) != n:
            raise FormatError(path, f"entry {tag!r}: the file ends inside its data")
        q += n
    return out.reshape(shape)


def _read_span(fh: Any, off: int, n: int) -> bytes:
    fh.seek(off)
    return fh.read(n)


def read_tensors(path: PathLike, verify_crc: bool = True) -> Tuple[OrderedDict[str, Any], Dict[str, Any]]:
    """The checkpoint's tensors ``tag -> np.ndarray`` in file order (slices joined), and format facts
    (``crc``: whether a trailer was present, ``types``: MindSpore type per tag, ``sliced``: tags that
    were split).

    Streams the file: first the record structure (keys, lengths, tags, dims; never tensor data), then
    the CRC (when a trailer is present and ``verify_crc``), then each tensor straight into its array
    once its size is checked. Memory is what the tensors hold, never the whole file at once.

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


def _read_tensors(p: str, fh: Any, size: int, verify_crc: bool) -> Tuple[OrderedDict[str, Any], Dict[str, Any]]:
    enc = _encryption(fh.read(4))
    if enc:
        raise FormatError(
            p,
            f"encrypted checkpoint ({enc}): decrypt it with MindSpore first "
            "(mindspore.load_checkpoint(..., dec_key=..., dec_mode=...) then save_checkpoint)",
        )
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
    pieces: OrderedDict[str, Tuple[List[int], str, List[Tuple[int, int]]]] = OrderedDict()
    sliced = set()
    last_tag = None
    for start, e in _scan(p, fh, end):
        tag = e.tag
        if tag == last_tag:
            prev_dims, prev_type, parts = pieces[tag]
            if prev_dims != e.dims or prev_type != e.ttype:
                raise FormatError(
                    p,
                    f"entry {tag!r} at byte {start}: a slice with dims {e.dims} / "
                    f"{e.ttype} follows one with {prev_dims} / {prev_type}",
                )
            parts.append(e.content)
            sliced.add(tag)
        else:
            # a later, non-consecutive duplicate overwrites the earlier one (as MindSpore does)
            pieces[tag] = (e.dims, e.ttype, [e.content])
        last_tag = tag
    if stored is not None and verify_crc:
        actual = _crc(fh, end)
        if stored != actual:
            raise FormatError(
                p,
                f"CRC mismatch: the trailer says 0x{stored:08x}, the data gives 0x{actual:08x} "
                "(the file is corrupt or was modified)",
            )
    tensors: OrderedDict[str, Any] = OrderedDict()
    types: Dict[str, str] = {}
    for tag, (dims, ttype, parts) in pieces.items():
        tensors[tag] = _decode(p, tag, dims, ttype, parts, fh)
        types[tag] = ttype
    return tensors, {"crc": stored is not None, "types": types, "sliced": sorted(sliced)}


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


def encode_tensors(
    tensors: OrderedDict[str, Any],
    slice_bytes: int = DEFAULT_SLICE_BYTES,
    types: Optional[Dict[str, str]] = None,
    skipped: Optional[Dict[str, str]] = None,
) -> bytes:
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
        ttype = "BFloat16" if (types or {}).get(tag) == "BFloat16" else _TYPE_OF_KIND[key]
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
                out.append(_entry_bytes(tag, dims, ttype, raw[k : k + step]))
        else:
            out.append(_entry_bytes(tag, dims, ttype, raw))
    return b"".join(out)


def save(
    model_file: ModelFile, path: PathLike, crc: bool = False, slice_bytes: int = DEFAULT_SLICE_BYTES
) -> SaveReport:
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
    report.skipped.update(state_dict_notes(model_file, "mindspore"))
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
