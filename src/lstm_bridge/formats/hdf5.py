"""Safe reading of HDF5 files (the Keras ``.h5`` / ``.weights.h5`` readers and the ``.keras`` archive's
``model.weights.h5`` use it): attribute decoding and type checks, bounded JSON attributes, the checks that
refuse hostile files before anything is read (links, external storage, corrupt global heaps), and dataset
reads charged to a per-file memory budget.

Every refusal is a :class:`~lstm_bridge.formats.FormatError` naming the file and the offending path.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .model import FormatError

__all__ = [
    "decode",
    "attr_value",
    "read_attr",
    "MAX_JSON_DEPTH",
    "MAX_JSON_VALUES",
    "check_json_depth",
    "read_json_attr",
    "MAX_INFLATION",
    "INFLATION_SLACK",
    "MAX_HDF5_LINKS",
    "ReadBudget",
    "check_hdf5_tree",
    "check_global_heaps",
    "check_plain_dataset",
    "read_dataset",
]


def decode(value: Any) -> Any:
    """Decode an HDF5 attribute value: bytes -> str, arrays of bytes/str -> list of str."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return []
        if value.dtype.kind in ("S", "O", "U"):
            return [decode(v) for v in value.reshape(-1).tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def attr_value(group: Any, name: str) -> Any:
    """``group.attrs[name]`` after checking its HDF5 datatype is a string or a number: HDF5 2.0 crashes
    (segfault) reading a variable-length *sequence* attribute whose base type is corrupt, and Keras
    writes none. ValueError (a FormatError in the HDF5 readers' frame) for any other type."""
    import h5py

    t = h5py.h5a.open(group.id, name.encode("utf-8")).get_type()
    if not isinstance(t, (h5py.h5t.TypeStringID, h5py.h5t.TypeIntegerID, h5py.h5t.TypeFloatID, h5py.h5t.TypeEnumID)):
        raise ValueError(
            f"{group.name}: attribute {name!r} has HDF5 type {type(t).__name__}; expected a string or a number"
        )
    return group.attrs[name]


def read_attr(group: Any, name: str) -> Any:
    """Attribute ``name`` of an h5py group, joining Keras's split attributes ``name0, name1, ...``
    (used above 64 KiB). None when absent."""
    if name in group.attrs:
        return decode(attr_value(group, name))
    if f"{name}0" in group.attrs:
        parts: List[Any] = []
        k = 0
        while f"{name}{k}" in group.attrs:
            v = decode(attr_value(group, f"{name}{k}"))
            parts.extend(v if isinstance(v, list) else [v])
            k += 1
        return parts
    return None


#: deepest nesting a Keras config may have (Keras nests ~5 levels per nested model); deeper JSON would
#: only exhaust the recursion of later steps (copying, planning)
MAX_JSON_DEPTH = 200
#: most JSON values a Keras config may hold, counted from the text before parsing (a value costs ~20x
#: its text in Python; a thousand-layer config has ~200k)
MAX_JSON_VALUES = 2_000_000


def check_json_depth(path: Optional[str], value: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """FormatError if the parsed JSON ``value`` nests deeper than ``max_depth`` (checked iteratively)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > max_depth:
            raise FormatError(path, f"{what} nests deeper than {max_depth} levels")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def read_json_attr(path: str, group: Any, name: str) -> Optional[Dict[str, Any]]:
    raw = read_attr(group, name)
    if raw is None:
        return None
    if isinstance(raw, list):
        raw = "".join(raw)
    if not isinstance(raw, str):
        raise FormatError(path, f"attribute {name!r} must hold JSON text; found {type(raw).__name__}")
    nodes = raw.count(",") + raw.count("[") + raw.count("{") + 1
    if nodes > MAX_JSON_VALUES:
        raise FormatError(
            path, f"attribute {name!r} holds about {nodes} JSON values, above the limit of {MAX_JSON_VALUES}"
        )
    try:
        value = json.loads(raw)
    except RecursionError:
        raise FormatError(path, f"attribute {name!r} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (TypeError, ValueError) as exc:
        raise FormatError(path, f"attribute {name!r} is not valid JSON: {exc}") from None
    check_json_depth(path, value, f"attribute {name!r}")
    if not isinstance(value, dict):
        raise FormatError(path, f"attribute {name!r} must hold a JSON object; found {type(value).__name__}")
    return value


# Memory bounds for HDF5 contents. Uncompressed data must lie in the file, so an unfiltered dataset may
# not declare more bytes than the file has (4 KiB of slack for tiny files). Compressed (filtered)
# datasets can legitimately inflate (zero biases compress ~1000x), so all datasets read from one file
# together may declare at most ``MAX_INFLATION`` times the file's size plus ``INFLATION_SLACK``: a 1 MB
# file can make us allocate at most 128 MiB, never gigabytes.
MAX_INFLATION = 64
INFLATION_SLACK = 64 * 1024 * 1024
#: most links an HDF5 file may hold (each costs a Python object while the tree is checked)
MAX_HDF5_LINKS = 200_000


class ReadBudget:
    """The bytes of dataset contents a reader may still allocate for one file (see ``MAX_INFLATION``);
    ``file_size`` is the size of the HDF5 image (uncompressed data must fit in it), ``total`` the
    budget (default ``file_size * MAX_INFLATION + INFLATION_SLACK``)."""

    def __init__(self, file_size: int, total: Optional[int] = None):
        self.file_size = int(file_size)
        self.left = int(total) if total is not None else self.file_size * MAX_INFLATION + INFLATION_SLACK
        self.total = self.left


def check_hdf5_tree(path: Optional[str], f: Any) -> None:
    """Refuse an HDF5 file holding anything but plain groups and datasets stored inside the file.

    Walks every link *without following* soft or external links (``getlink=True``) and refuses, naming
    the object's path: external links, soft links, user-defined links, committed datatypes, virtual
    datasets (their data lives in other files) and datasets with external raw storage (``external``:
    their bytes are read from another local file, or a FIFO that would hang us). Hard-link cycles are
    visited once. Must run before any data or member is read.

    Raises:
        FormatError: naming the file and the offending path.
    """
    import h5py

    seen = set()
    count = 0
    stack = [("", f)]
    while stack:
        prefix, grp = stack.pop()
        info = h5py.h5o.get_info(grp.id)
        key = (info.fileno, info.addr)
        if key in seen:
            continue
        seen.add(key)
        for name in grp.keys():
            count += 1
            if count > MAX_HDF5_LINKS:
                raise FormatError(path, f"the HDF5 file holds more than {MAX_HDF5_LINKS} links; refusing to walk it")
            where = f"{prefix}/{name}"
            link = grp.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise FormatError(
                    path,
                    f"{where}: an external link to {link.filename!r}:{link.path!r}; expected "
                    "a dataset or group inside the file (external links are refused)",
                )
            if isinstance(link, h5py.SoftLink):
                raise FormatError(
                    path,
                    f"{where}: a soft link to {link.path!r}; expected a dataset or group "
                    "stored at its own path (soft links are refused)",
                )
            if not isinstance(link, h5py.HardLink):
                raise FormatError(path, f"{where}: a {type(link).__name__}; expected a dataset or group")
            obj = grp[name]
            if isinstance(obj, h5py.Group):
                stack.append((where, obj))
            elif isinstance(obj, h5py.Dataset):
                check_plain_dataset(path, obj, where)
            else:
                raise FormatError(path, f"{where}: a {type(obj).__name__}; expected a dataset or group")


def check_global_heaps(path: Optional[str], image: Any) -> None:
    """Refuse an HDF5 image (bytes or mmap) whose global heap collections (where variable-length
    strings such as Keras's attributes live) are inconsistent in a way the HDF5 C library does not
    survive: HDF5 2.0 spins forever on a collection whose walk reaches a free-space object of size 0
    (one corrupted object size is enough), so that is checked here, before h5py reads any attribute.

    A collection is ``"GCOL"``, version 1, 3 reserved zero bytes, its 8-byte size, then objects
    ``(index u16, refcount u16, reserved u32, size u64, data padded to 8)``; index 0 is the free space,
    whose size is the rest of the collection.

    Raises:
        FormatError: naming the byte offset of the bad collection.
    """
    n = len(image)
    i = image.find(b"GCOL")
    while i != -1:
        if i + 16 <= n and image[i + 4] == 1 and image[i + 5 : i + 8] == b"\0\0\0":
            csize = int.from_bytes(image[i + 8 : i + 16], "little")
            if 16 < csize and i + csize <= n:
                # walk the objects exactly as HDF5's H5HG__cache_heap_deserialize does
                end, pos = i + csize, i + 16
                while pos + 16 <= end:
                    idx, _, _, osize = struct.unpack_from("<HHIQ", image, pos)
                    need = osize if idx == 0 else 16 + ((osize + 7) & ~7)
                    if need == 0:
                        raise FormatError(
                            path,
                            f"corrupt HDF5 global heap at byte {i}: a free-space object of "
                            f"size 0 at byte {pos} (HDF5 would loop on it forever)",
                        )
                    if pos + need > end:
                        raise FormatError(
                            path,
                            f"corrupt HDF5 global heap at byte {i}: object {idx} at byte {pos} "
                            f"declares {osize} bytes, past the end of its collection",
                        )
                    pos += need
        i = image.find(b"GCOL", i + 1)


def check_plain_dataset(path: Optional[str], ds: Any, where: Optional[str] = None) -> None:
    """Refuse a virtual dataset or one with external raw storage (FormatError naming ``where``)."""
    import h5py

    where = where or ds.name
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(path, f"{where}: a {type(ds).__name__}; expected a dataset")
    if ds.is_virtual:
        raise FormatError(
            path,
            f"{where}: a virtual dataset (its data lives in other files); expected a dataset stored inside the file",
        )
    if ds.external:
        files = sorted({e[0].decode("utf-8", "replace") if isinstance(e[0], bytes) else str(e[0]) for e in ds.external})
        raise FormatError(
            path,
            f"{where}: external raw storage in {files}; expected a dataset stored inside "
            "the file (external storage is refused)",
        )


def read_dataset(path: str, ds: Any, budget: Union[ReadBudget, int]) -> np.ndarray:
    """Read an HDF5 dataset (one copy, native byte order) after checking that it is a plain dataset
    inside the file and that its declared size is plausible: unfiltered data must fit in the file,
    and every read is charged to ``budget`` (a :class:`ReadBudget`, or a file size for a fresh one)."""
    if not isinstance(budget, ReadBudget):
        budget = ReadBudget(int(budget))
    if not hasattr(ds, "shape") or not hasattr(ds, "dtype"):
        raise FormatError(path, f"{getattr(ds, 'name', ds)}: expected a dataset; found a {type(ds).__name__}")
    check_plain_dataset(path, ds)
    if ds.shape is None:
        raise FormatError(path, f"{ds.name}: expected a dataset with a shape; found an empty (null) dataspace")
    if ds.dtype.kind not in "fiub" or ds.dtype.fields is not None or ds.dtype.subdtype is not None:
        raise FormatError(path, f"{ds.name}: expected a numeric array; found dtype {ds.dtype}")
    nbytes = float(np.prod(ds.shape, dtype=np.float64)) * ds.dtype.itemsize
    filtered = ds.id.get_create_plist().get_nfilters() > 0
    if not filtered and nbytes > budget.file_size + 4096:
        raise FormatError(
            path,
            f"{ds.name}: declares {int(nbytes)} bytes of uncompressed data, more than the file "
            f"holds ({budget.file_size} bytes)",
        )
    if nbytes > budget.left:
        raise FormatError(
            path,
            f"{ds.name}: declares {int(nbytes)} bytes of data; the datasets of a "
            f"{budget.file_size}-byte file may declare at most {budget.total} bytes in total "
            f"({MAX_INFLATION}x its size + {INFLATION_SLACK // 2**20} MiB)",
        )
    budget.left -= int(nbytes)
    out = np.empty(ds.shape, dtype=ds.dtype.newbyteorder("="))  # HDF5 converts big-endian data on read
    if out.size:
        ds.read_direct(out)
    return out
