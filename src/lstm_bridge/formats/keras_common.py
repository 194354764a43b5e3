"""Shared Keras file logic: safe HDF5 access, attribute decoding, layer naming, and the *plan* that
turns any :class:`ModelFile` into the layer configs and weights of a Keras 2 (tf_keras) or Keras 3 model.

Configs written for a generation are those measured in spec keras §7.1 (tf_keras 2.21: ``time_major``
and ``implementation`` present, dtype a string) and §7.4 (Keras 3.15: no ``time_major`` /
``implementation``, dtype a ``DTypePolicy`` dict, ``seed``). ``"hard_sigmoid"`` means different functions
in the two generations (spec §2.2), so a layer using one generation's hard sigmoid cannot be written for
the other: that is an error, never a silent change.
"""
from __future__ import annotations

import copy
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import activations as _act
from .. import weights as _w
from .common import SaveReport
from .model import FormatError, LayerEntry, LSTMLayer, ModelFile, keras_generation, sublayer_config

#: what our writers put in ``keras_version``
TK_VERSION = "2.21.0"
K3_VERSION = "3.15.1"

# classes whose layers own no weights in any Keras (matching order-based loading skips them)
_WEIGHTLESS = {"InputLayer", "NotEqual", "Dropout", "Masking", "Activation", "Flatten", "Reshape",
               "Permute", "RepeatVector", "Lambda", "SpatialDropout1D", "GaussianNoise", "Concatenate",
               "Add", "Multiply", "Average", "TFOpLambda", "SlicingOpLambda"}
_LSTM_KINDS = {"LSTM": "LSTM", "CuDNNLSTM": "LSTM", "Bidirectional": "Bidirectional"}


# --- reading helpers -------------------------------------------------------------------------------

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
    if not isinstance(t, (h5py.h5t.TypeStringID, h5py.h5t.TypeIntegerID, h5py.h5t.TypeFloatID,
                          h5py.h5t.TypeEnumID)):
        raise ValueError(f"{group.name}: attribute {name!r} has HDF5 type {type(t).__name__}; expected a string "
                         "or a number")
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
        raise FormatError(path, f"attribute {name!r} holds about {nodes} JSON values, above the limit of "
                                f"{MAX_JSON_VALUES}")
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
                raise FormatError(path, f"{where}: an external link to {link.filename!r}:{link.path!r}; expected "
                                        "a dataset or group inside the file (external links are refused)")
            if isinstance(link, h5py.SoftLink):
                raise FormatError(path, f"{where}: a soft link to {link.path!r}; expected a dataset or group "
                                        "stored at its own path (soft links are refused)")
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
        if i + 16 <= n and image[i + 4] == 1 and image[i + 5:i + 8] == b"\0\0\0":
            csize = int.from_bytes(image[i + 8:i + 16], "little")
            if 16 < csize and i + csize <= n:
                # walk the objects exactly as HDF5's H5HG__cache_heap_deserialize does
                end, pos = i + csize, i + 16
                while pos + 16 <= end:
                    idx, _, _, osize = struct.unpack_from("<HHIQ", image, pos)
                    need = osize if idx == 0 else 16 + ((osize + 7) & ~7)
                    if need == 0:
                        raise FormatError(path, f"corrupt HDF5 global heap at byte {i}: a free-space object of "
                                                f"size 0 at byte {pos} (HDF5 would loop on it forever)")
                    if pos + need > end:
                        raise FormatError(path, f"corrupt HDF5 global heap at byte {i}: object {idx} at byte {pos} "
                                                f"declares {osize} bytes, past the end of its collection")
                    pos += need
        i = image.find(b"GCOL", i + 1)


def check_plain_dataset(path: Optional[str], ds: Any, where: Optional[str] = None) -> None:
    """Refuse a virtual dataset or one with external raw storage (FormatError naming ``where``)."""
    import h5py

    where = where or ds.name
    if not isinstance(ds, h5py.Dataset):
        raise FormatError(path, f"{where}: a {type(ds).__name__}; expected a dataset")
    if ds.is_virtual:
        raise FormatError(path, f"{where}: a virtual dataset (its data lives in other files); expected a dataset "
                                "stored inside the file")
    if ds.external:
        files = sorted({e[0].decode("utf-8", "replace") if isinstance(e[0], bytes) else str(e[0])
                        for e in ds.external})
        raise FormatError(path, f"{where}: external raw storage in {files}; expected a dataset stored inside "
                                "the file (external storage is refused)")


def read_dataset(path: str, ds: Any, budget: "ReadBudget | int") -> np.ndarray:
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
        raise FormatError(path, f"{ds.name}: declares {int(nbytes)} bytes of uncompressed data, more than the file "
                                f"holds ({budget.file_size} bytes)")
    if nbytes > budget.left:
        raise FormatError(path, f"{ds.name}: declares {int(nbytes)} bytes of data; the datasets of a "
                                f"{budget.file_size}-byte file may declare at most {budget.total} bytes in total "
                                f"({MAX_INFLATION}x its size + {INFLATION_SLACK // 2**20} MiB)")
    budget.left -= int(nbytes)
    out = np.empty(ds.shape, dtype=ds.dtype.newbyteorder("="))  # HDF5 converts big-endian data on read
    if out.size:
        ds.read_direct(out)
    return out


def snake_case(name: str) -> str:
    """Keras 3's ``to_snake_case`` (how ``.weights.h5`` keys are derived from class names)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def class_counter_keys(class_names: List[str]) -> List[str]:
    """The ``.weights.h5`` keys of layers of these classes, in model order (``lstm``, ``lstm_1``, ...)."""
    seen: Dict[str, int] = {}
    out = []
    for cn in class_names:
        base = snake_case(cn)
        n = seen.get(base, 0)
        out.append(base if n == 0 else f"{base}_{n}")
        seen[base] = n + 1
    return out


def weight_keys(kind: str, n: int, names: Optional[List[str]] = None) -> List[str]:
    """Neutral weight names for a Keras layer's arrays (Keras ``get_weights`` order)."""
    base = ["kernel", "recurrent_kernel", "bias"]
    if kind == "LSTM" and n in (2, 3):
        return base[:n]
    if kind == "Bidirectional" and n in (4, 6):
        half = n // 2
        return [f"forward/{k}" for k in base[:half]] + [f"backward/{k}" for k in base[:half]]
    if kind == "Dense" and n in (1, 2):
        return ["kernel", "bias"][:n]
    if kind == "Embedding" and n == 1:
        return ["embeddings"]
    keys: List[str] = []
    for i in range(n):
        leaf = (names[i] if names and i < len(names) else str(i)).rsplit("/", 1)[-1].split(":", 1)[0]
        keys.append(leaf if leaf not in keys else f"{i}:{leaf}")
    return keys


def layer_kind(class_name: str, config: Optional[Dict[str, Any]] = None) -> str:
    """``LSTM`` (also for ``CuDNNLSTM``), ``Bidirectional`` (only around an LSTM: a wrapped GRU gives
    ``Bidirectional(GRU)``) or the class name itself."""
    if class_name == "Bidirectional" and isinstance(config, dict):
        inner = config.get("layer")
        inner_cls = inner.get("class_name") if isinstance(inner, dict) else None
        if inner_cls and inner_cls not in ("LSTM", "CuDNNLSTM"):
            return f"Bidirectional({inner_cls})"
    return _LSTM_KINDS.get(class_name, class_name)


def layer_configs(model_config: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The layer entries (``{"class_name", "config", "name", ...}``) of a Keras model config."""
    if not model_config:
        return []
    cfg = model_config.get("config", {})
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg
    if not isinstance(layers, list):
        return []
    out = []
    for l in layers:
        if isinstance(l, dict):
            if not isinstance(l.get("config", {}), dict):  # hostile or foreign: keep the layer, drop the config
                l = dict(l, config={})
            out.append(l)
    return out


def layer_name(entry: Dict[str, Any]) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name", ""))


def infer_kind(arrays: List[np.ndarray], names: List[str]) -> str:
    """A weights-only layer's kind, from its weight names and shapes."""
    joined = " ".join(names)
    shapes = [a.shape for a in arrays]
    if len(arrays) in (4, 6) and "forward" in joined and "backward" in joined and len(shapes[1]) == 2 \
            and shapes[1][1] == 4 * shapes[1][0]:
        return "Bidirectional"
    if len(arrays) in (2, 3) and len(shapes[1]) == 2 and shapes[1][1] == 4 * shapes[1][0] \
            and ("recurrent_kernel" in joined or not names) and len(shapes[0]) == 2 and shapes[0][1] == shapes[1][1]:
        return "LSTM"
    if len(arrays) == 12 and "lstm" in joined.lower():
        return "LSTM"
    if len(arrays) == 1 and "embeddings" in joined:
        return "Embedding"
    if len(arrays) in (1, 2) and "kernel" in joined and len(shapes[0]) == 2:
        return "Dense"
    return "Unknown"


# --- the plan: a Keras model of one generation ------------------------------------------------------

@dataclass
class PlannedLayer:
    """One layer of a Keras model to write: the layer entry (``class_name``, ``config``, ``name``,
    ...; without ``inbound_nodes`` for generated chains), its arrays in ``get_weights`` order, their
    legacy-HDF5 weight names, and the input shape ``(None, T, F)`` it sees (None when unknown)."""

    name: str
    class_name: str
    entry: Dict[str, Any]
    arrays: List[np.ndarray] = field(default_factory=list)
    weight_names: List[str] = field(default_factory=list)
    input_shape: Optional[List[Any]] = None
    output_dim: Optional[int] = None
    is_op: bool = False  # a Keras 3 functional op node (NotEqual): no weights, no .weights.h5 key


@dataclass
class KerasPlan:
    generation: int
    model_name: str
    layers: List[PlannedLayer]
    model_config: Dict[str, Any]  # {"class_name": "Functional", "config": {...}} (+ K3 keys)
    report: SaveReport


def _dtype_value(gen: int) -> Any:
    if gen == 3:
        return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                "registered_name": None}
    return "float32"


def _initializer(gen: int, class_name: str, cfg: Dict[str, Any]) -> Dict[str, Any]:
    c = dict(cfg)
    if gen == 3 and class_name == "GlorotUniform":
        c = {"seed": None, "input_axes": None, "output_axes": None}
    return {"module": "keras.initializers", "class_name": class_name, "config": c, "registered_name": None}


def target_activation(resolved: str, gen: int, where: str) -> str:
    """The config string that means the resolved activation ``resolved`` in Keras generation ``gen``."""
    if resolved.startswith(("unknown:", "ms_cpu_")):
        raise FormatError(None, f"{where}: activation {resolved!r} has no Keras name")
    if gen == 3:
        if resolved == "hard_sigmoid":
            raise FormatError(None, f"{where}: uses the Keras-2 hard_sigmoid clip(0.2x+0.5, 0, 1); Keras 3 reads "
                                    "'hard_sigmoid' as relu6(x+3)/6, so it cannot be written for Keras 3 "
                                    "(write a tf_keras .h5 instead)")
    elif resolved == "hard_sigmoid_keras3":
        raise FormatError(None, f"{where}: uses the Keras-3 hard_sigmoid relu6(x+3)/6; tf_keras reads "
                                "'hard_sigmoid' as clip(0.2x+0.5, 0, 1), so it cannot be written for tf_keras "
                                "(write a Keras 3 .keras instead)")
    try:  # each generation's own names (activations.KERAS2_NAMES / KERAS3_NAMES)
        return _act.keras_name(_act.by_name(resolved), gen)
    except ValueError as exc:
        raise FormatError(None, f"{where}: {exc}") from None


def lstm_config(gen: int, name: str, units: int, *, activation: str = "tanh",
                recurrent_activation: str = "sigmoid", use_bias: bool = True, return_sequences: bool = False,
                return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                unroll: bool = False, zero_output_for_mask: bool = False, dropout: float = 0.0,
                recurrent_dropout: float = 0.0, implementation: int = 2, time_major: bool = False,
                unit_forget_bias: bool = True, where: str = "") -> Dict[str, Any]:
    """An LSTM layer ``config`` dict with exactly the keys (and key order) of generation ``gen``
    (spec keras §7.1 / §7.4). Activations are *resolved* names (see :func:`target_activation`)."""
    where = where or f"layer {name!r}"
    act = target_activation(activation, gen, where)
    rec = target_activation(recurrent_activation, gen, where)
    cfg: Dict[str, Any] = {"name": name, "trainable": True, "dtype": _dtype_value(gen),
                           "return_sequences": bool(return_sequences), "return_state": bool(return_state),
                           "go_backwards": bool(go_backwards), "stateful": bool(stateful), "unroll": bool(unroll)}
    if gen == 3:
        if time_major:
            raise FormatError(None, f"{where}: time_major=True has no Keras 3 equivalent")
        cfg["zero_output_for_mask"] = bool(zero_output_for_mask)
    else:
        cfg["time_major"] = bool(time_major)
    cfg.update({"units": int(units), "activation": act, "recurrent_activation": rec, "use_bias": bool(use_bias),
                "kernel_initializer": _initializer(gen, "GlorotUniform", {"seed": None}),
                "recurrent_initializer": _initializer(gen, "Orthogonal", {"gain": 1.0, "seed": None}
                                                      if gen == 2 else {"seed": None, "gain": 1.0}),
                "bias_initializer": _initializer(gen, "Zeros", {}),
                "unit_forget_bias": bool(unit_forget_bias),
                "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
                "bias_constraint": None, "dropout": float(dropout), "recurrent_dropout": float(recurrent_dropout)})
    if gen == 3:
        cfg["seed"] = None
    else:
        cfg["implementation"] = int(implementation)
        if zero_output_for_mask:
            cfg["zero_output_for_mask"] = True
    return cfg


def _layer_entry(gen: int, class_name: str, config: Dict[str, Any], input_shape: Optional[List[Any]]) -> Dict[str, Any]:
    e: Dict[str, Any] = {"module": "keras.layers", "class_name": class_name, "config": config,
                         "registered_name": None}
    if gen == 3 or class_name != "InputLayer":
        if input_shape is not None and class_name != "InputLayer":
            e["build_config"] = {"input_shape": list(input_shape)}
    e["name"] = config["name"]
    return e


def _lstm_kwargs_from_semantics(sem: Dict[str, Any]) -> Dict[str, Any]:
    keys = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
            "dropout", "recurrent_dropout", "implementation", "time_major", "unit_forget_bias")
    out = {k: sem[k] for k in keys if k in sem and sem[k] is not None}
    out["activation"] = sem.get("activation", "tanh")
    out["recurrent_activation"] = sem.get("recurrent_activation", "sigmoid")
    return out


def _unique(name: str, used: set) -> str:
    base, n = name, 1
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


_NOT_CARRIED_CFG = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint")


def _note_dropped_options(report: SaveReport, name: str, cfg: Dict[str, Any]) -> None:
    dropped = [k for k in _NOT_CARRIED_CFG if cfg.get(k) is not None]
    if dropped:
        report.skipped[f"{name} ({', '.join(dropped)})"] = "regularizers/constraints are not carried between " \
                                                           "Keras generations"


def plan_keras(mf: ModelFile, gen: int, path: str, format_name: str, weights_only: bool = False) -> KerasPlan:
    """Turn ``mf`` into a Keras generation-``gen`` model: the original configs when ``mf`` was written
    by that generation, otherwise a Functional chain ``Input -> layers`` with generated configs.

    Entries the target cannot hold (LSTM cells, loose tensors, layers of unknown classes from the
    other generation) are listed in ``report.skipped`` with the reason. With ``weights_only`` (the
    config is not written) activations are not checked against the target generation.
    """
    report = SaveReport(path=path, format=format_name)
    if _can_copy_config(mf, gen):
        return _plan_verbatim(mf, gen, report)
    return _plan_generated(mf, gen, report, weights_only)


def _can_copy_config(mf: ModelFile, gen: int) -> bool:
    """The source's own model config can be written for generation ``gen``: same generation, a Keras
    2.x/3.x writer (not Keras 1's config schema), and only standard LSTM weight layouts (CuDNNLSTM and
    Keras 1's 12 arrays need converting)."""
    if mf.framework != "keras" or not mf.model_config or keras_generation(mf.version) != gen:
        return False
    if not re.match(r"\s*[23]\.", str(mf.version)):
        return False
    if gen == 3 and "module" not in mf.model_config:
        return False  # Keras 3's legacy-.h5 config lacks the saving_lib keys a .keras needs: regenerate
    for e in mf.layers:
        if e.kind == "LSTM" and (len(e.weights) not in (2, 3) or any(
                np.ndim(v) == 1 and len(e.weights) == 3 and np.shape(v)[0] == 2 * np.shape(list(e.weights.values())[1])[1]
                for v in e.weights.values())):
            return False
        if e.kind == "Bidirectional" and len(e.weights) not in (4, 6):
            return False
    return True


def _arrays_and_names(e: LayerEntry) -> Tuple[List[np.ndarray], List[str]]:
    return [np.asarray(v) for v in e.weights.values()], list(e.attrs.get("weight_names") or [])


def _tk_weight_names(pl: PlannedLayer, inner_name: Optional[str] = None) -> List[str]:
    n, k = pl.name, len(pl.arrays)
    if pl.class_name in ("LSTM", "CuDNNLSTM") and k in (2, 3):
        return [f"{n}/lstm_cell/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")[:k]]
    if pl.class_name == "Bidirectional" and k in (4, 6):
        inner = inner_name or "lstm"
        names = []
        for side in ("forward", "backward"):
            names += [f"{n}/{side}_{inner}/lstm_cell/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")[:k // 2]]
        return names
    if pl.class_name == "Embedding" and k == 1:
        return [f"{n}/embeddings:0"]
    if pl.class_name == "Dense" and k in (1, 2):
        return [f"{n}/kernel:0", f"{n}/bias:0"][:k]
    return [f"{n}/{key}:0" for key in range(k)]


def _plan_verbatim(mf: ModelFile, gen: int, report: SaveReport) -> KerasPlan:
    cfg_layers = layer_configs(mf.model_config)
    by_name = {e.name: e for e in mf.layers}
    planned: List[PlannedLayer] = []
    for le in cfg_layers:
        name = layer_name(le)
        e = by_name.get(name)
        arrays, names = _arrays_and_names(e) if e is not None else ([], [])
        is_op = str(le.get("module", "")).startswith("keras.src.ops")
        pl = PlannedLayer(name=name, class_name=le.get("class_name", ""), entry=le, arrays=arrays,
                          weight_names=[], is_op=is_op)
        inner = sublayer_config(le.get("config", {}).get("layer")).get("name")
        pl.weight_names = names if len(names) == len(arrays) and names else _tk_weight_names(pl, inner)
        planned.append(pl)
        report.written.append(name)
    model_config = copy.deepcopy(mf.model_config)
    if gen == 2:
        # a legacy .h5 model_config holds {class_name, config} and layer entries without the saving_lib
        # keys that a tf_keras-written .keras adds (module, registered_name, build_config)
        model_config = {"class_name": model_config.get("class_name", "Functional"),
                        "config": model_config.get("config")}
        for le in layer_configs(model_config):
            for k in ("module", "registered_name", "build_config"):
                le.pop(k, None)
    mc = model_config.get("config", {})
    model_name = mc.get("name", "model") if isinstance(mc, dict) else "model"
    return KerasPlan(gen, model_name, planned, model_config, report)


def _input_layer(gen: int, name: str, shape: List[Any], dtype: str) -> PlannedLayer:
    cfg: Dict[str, Any] = {("batch_shape" if gen == 3 else "batch_input_shape"): list(shape), "dtype": dtype,
                           "sparse": False, "ragged": False, "name": name, "optional": False}
    return PlannedLayer(name=name, class_name="InputLayer", entry=_layer_entry(gen, "InputLayer", cfg, None),
                        input_shape=None, output_dim=shape[-1] if len(shape) == 3 else None)


def _plan_generated(mf: ModelFile, gen: int, report: SaveReport, weights_only: bool = False) -> KerasPlan:
    used: set = set()
    planned: List[PlannedLayer] = []
    lstm_by_entry = {}
    if any(e.kind in ("LSTM", "Bidirectional", "LSTMCell") for e in mf.layers):
        lstm_entries = [e for e in mf.layers if e.kind in ("LSTM", "Bidirectional", "LSTMCell")]
        lstm_by_entry = {id(e): l for e, l in zip(lstm_entries, mf.lstm_layers())}
    src_gen = keras_generation(mf.version) if mf.framework == "keras" else None
    seq_len = None
    prev_dim: Optional[int] = None
    body: List[PlannedLayer] = []
    first_input: Optional[Tuple[List[Any], str, str]] = None
    for e in mf.layers:
        where = f"layer {e.name!r}"
        bis = e.config.get("batch_input_shape") if isinstance(e.config, dict) else None
        if first_input is None and not body and isinstance(bis, list) and len(bis) >= 2:
            seq_len = bis[1]  # a Sequential without InputLayer: the first layer carries the input shape
        if e.kind == "InputLayer" and mf.framework == "keras":
            c = e.config
            shape = c.get("batch_input_shape") or c.get("batch_shape")
            if first_input is None and isinstance(shape, list):
                first_input = (shape, str(c.get("dtype", "float32")), c.get("name", e.name))
                if len(shape) >= 2:
                    seq_len = shape[1]
            continue
        if id(e) in lstm_by_entry:
            layer: LSTMLayer = lstm_by_entry[id(e)]
            if layer.kind == "LSTMCell":
                report.skipped[e.name or "<root>"] = "an LSTM cell is not a Keras model layer"
                continue
            if prev_dim is not None and layer.input_size != prev_dim:
                if mf.framework == "keras" and not mf.model_config and body and \
                        body[-1].class_name == "Bidirectional" and 2 * layer.input_size == prev_dim:
                    raise FormatError(report.path, f"{where}: the file holds weights only, and the Bidirectional "
                                                   f"{body[-1].name!r} before it merges with an unknown mode other "
                                                   "than concat; convert the full model file instead")
                raise FormatError(report.path, f"{where}: takes {layer.input_size} features but the layer before "
                                               f"it gives {prev_dim}; the layers do not form a chain (pick one)")
            for l in range(layer.num_layers):
                dirs = layer.weights[l]
                sem = dict(layer.semantics)
                kw = _lstm_kwargs_from_semantics(sem)
                if mf.framework != "keras":
                    kw["return_sequences"] = True  # MindSpore/PyTorch give the whole sequence
                if weights_only:  # no config is written: the generation's activation names do not matter
                    kw["activation"], kw["recurrent_activation"] = "tanh", "sigmoid"
                base = e.name or "lstm"
                if layer.num_layers > 1:
                    base = f"{base}_l{l}"
                in_dim = dirs[0].input_size
                h = dirs[0].hidden_size
                arrays = []
                for d in dirs:
                    arrays += [np.asarray(a) for a in _w.to_keras(d.numpy())]
                if len(dirs) == 1:
                    name = _unique(base.replace(".", "_"), used)
                    cfg = lstm_config(gen, name, h, use_bias=layer.has_bias, where=where, **kw)
                    pl = PlannedLayer(name, "LSTM", _layer_entry(gen, "LSTM", cfg, [None, seq_len, in_dim]), arrays,
                                      input_shape=[None, seq_len, in_dim], output_dim=h)
                    pl.weight_names = _tk_weight_names(pl)
                else:
                    name = _unique(base.replace(".", "_"), used)
                    inner_name = sublayer_config(e.config.get("layer")).get("name") \
                        if mf.framework == "keras" else None
                    inner_name = inner_name or f"lstm_{name}"
                    for prefix in ("forward_", "backward_"):
                        if inner_name.startswith(prefix):
                            inner_name = inner_name[len(prefix):]
                    merge = sem.get("merge_mode", "concat")
                    kw_f = dict(kw)
                    if mf.framework != "keras":
                        kw_f["go_backwards"] = False
                    elif kw_f.get("go_backwards") and gen == 3:
                        # tf_keras flips a wrapped go_backwards layer (its "forward" half runs backwards)
                        raise FormatError(report.path, f"{where}: a Bidirectional around a go_backwards=True LSTM "
                                                       "(tf_keras flips it) has no Keras 3 equivalent")
                    if gen == 3:
                        kw_f["zero_output_for_mask"] = bool(kw.get("return_sequences"))
                        fwd = lstm_config(3, f"forward_{inner_name}", h, use_bias=layer.has_bias, where=where, **kw_f)
                        kw_b = dict(kw_f)
                        kw_b["go_backwards"] = not kw_f.get("go_backwards", False)
                        bwd = lstm_config(3, f"backward_{inner_name}", h, use_bias=layer.has_bias, where=where, **kw_b)
                        bcfg = {"name": name, "trainable": True, "dtype": _dtype_value(3), "merge_mode": merge,
                                "layer": _layer_entry(3, "LSTM", fwd, [None, seq_len, in_dim]),
                                "backward_layer": _layer_entry(3, "LSTM", bwd, [None, seq_len, in_dim])}
                        for sub in ("layer", "backward_layer"):
                            bcfg[sub].pop("name", None)
                    else:
                        kw_f.pop("zero_output_for_mask", None)
                        inner = lstm_config(2, inner_name, h, use_bias=layer.has_bias, where=where, **kw_f)
                        sub = {"module": "keras.layers", "class_name": "LSTM", "config": inner, "registered_name": None}
                        bcfg = {"name": name, "trainable": True, "dtype": "float32", "layer": sub, "merge_mode": merge}
                    pl = PlannedLayer(name, "Bidirectional",
                                      _layer_entry(gen, "Bidirectional", bcfg, [None, seq_len, in_dim]), arrays,
                                      input_shape=[None, seq_len, in_dim],
                                      output_dim=2 * h if merge in ("concat", None) else h)
                    pl.weight_names = _tk_weight_names(pl, inner_name)
                    if merge is None:
                        raise FormatError(report.path, f"{where}: merge_mode=None gives two outputs; it cannot be "
                                                       "chained in a generated model")
                body.append(pl)
                prev_dim = pl.output_dim
                if mf.framework == "keras" and src_gen is not None:
                    _note_dropped_options(report, e.name, sublayer_config(e.config.get("layer"))
                                          if e.kind == "Bidirectional" else e.config)
            report.written.append(e.name or "<root>")
            continue
        if mf.framework == "keras" and e.kind in ("Dense", "Embedding"):
            pl = _convert_simple_layer(e, gen, used, seq_len, prev_dim, report)
            if pl is not None:
                body.append(pl)
                prev_dim = pl.output_dim
                report.written.append(e.name)
            continue
        if not e.weights:
            # weightless layers: inputs and mask ops are regenerated; others (Dropout, ...) are reported
            if e.config and e.kind not in ("NotEqual", "InputLayer"):
                report.skipped[e.name] = f"{e.kind} layer is not carried into a generated Keras model"
            continue
        report.skipped[e.name or "<root>"] = (f"{e.kind} tensors {list(e.weights)} have no place in a Keras model "
                                              "generated from LSTM weights")
    if not body:
        raise FormatError(report.path, "nothing to write: the model file has no LSTM layer a Keras model can hold")
    if mf.framework == "keras" and not mf.model_config and any(
            "return_sequences" not in (sublayer_config(e.config.get("layer")) if e.kind == "Bidirectional"
                                       else e.config or {})
            for e in mf.layers if e.kind in ("LSTM", "Bidirectional")):
        # weights-only source (no layer config): options are Keras's defaults; a config kept them
        _chain_sequences(body, report)
    # input layer
    if first_input is not None:
        shape, dtype, in_name = first_input
    elif body[0].class_name == "Embedding":
        shape, dtype, in_name = [None, seq_len], "int32", "tokens"
    else:
        shape, dtype, in_name = [None, seq_len, body[0].input_shape[-1]], "float32", "features"
    inp = _input_layer(gen, _unique(in_name, used), list(shape), dtype)
    planned = [inp] + body
    mc = (mf.model_config or {}).get("config")
    model_name = mc.get("name") if isinstance(mc, dict) else None
    model_name = model_name or "lstm_bridge_model"
    return KerasPlan(gen, model_name, planned, functional_config(gen, model_name, planned), report)


def _chain_sequences(body: List[PlannedLayer], report: SaveReport) -> None:
    """A weights-only source has no layer options: a recurrent layer followed by another one must return
    sequences for the chain to be valid, so set that; every other option keeps Keras's default."""
    recurrent = [i for i, pl in enumerate(body) if pl.class_name in ("LSTM", "Bidirectional")]
    for i in recurrent[:-1]:
        cfg = body[i].entry["config"]
        subs = [cfg] if body[i].class_name == "LSTM" else \
            [sublayer_config(cfg.get(k)) for k in ("layer", "backward_layer") if cfg.get(k)]
        for sub in subs:
            sub["return_sequences"] = True
            if body[i].class_name == "Bidirectional" and "zero_output_for_mask" in sub:
                sub["zero_output_for_mask"] = True
    report.skipped["(layer options)"] = ("the source holds weights only: LSTM options are Keras's defaults, "
                                         "except return_sequences=True where another recurrent layer follows")


def _convert_simple_layer(e: LayerEntry, gen: int, used: set, seq_len: Any, prev_dim: Optional[int],
                          report: SaveReport) -> Optional[PlannedLayer]:
    c = e.config
    arrays = [np.asarray(v) for v in e.weights.values()]
    name = _unique(e.name, used)
    if e.kind == "Dense":
        if "units" not in c:  # weights-only source: the shapes say it
            c = dict(c, units=int(arrays[0].shape[1]), use_bias=len(arrays) > 1)
        act = c.get("activation", "linear")
        try:
            act_res = getattr(_act.get(act, keras_version=keras_generation("3" if "seed" in c else "2")), "name", act)
            act_name = target_activation(act_res, gen, f"layer {e.name!r}")
        except (FormatError, ValueError, NotImplementedError) as exc:
            report.skipped[e.name] = str(exc)
            return None
        cfg: Dict[str, Any] = {"name": name, "trainable": True, "dtype": _dtype_value(gen), "units": int(c["units"]),
                               "activation": act_name, "use_bias": bool(c.get("use_bias", True)),
                               "kernel_initializer": _initializer(gen, "GlorotUniform", {"seed": None}),
                               "bias_initializer": _initializer(gen, "Zeros", {}),
                               "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                               "kernel_constraint": None, "bias_constraint": None}
        if gen == 3:  # the keys Keras 3.15 writes (spec keras §7.4 fixtures)
            del cfg["activity_regularizer"]
            cfg["quantization_config"] = None
        in_dim = int(arrays[0].shape[0])
        pl = PlannedLayer(name, "Dense", _layer_entry(gen, "Dense", cfg, [None, in_dim]), arrays,
                          input_shape=[None, in_dim], output_dim=int(c["units"]))
    else:
        if "input_dim" not in c:
            c = dict(c, input_dim=int(arrays[0].shape[0]), output_dim=int(arrays[0].shape[1]))
        cfg = {"name": name, "trainable": True, "dtype": _dtype_value(gen)}
        if gen == 2:
            cfg["batch_input_shape"] = [None, seq_len]
        cfg.update({"input_dim": int(c["input_dim"]), "output_dim": int(c["output_dim"]),
               "embeddings_initializer": _initializer(gen, "RandomUniform", {"minval": -0.05, "maxval": 0.05,
                                                                           "seed": None}),
               "embeddings_regularizer": None, "activity_regularizer": None, "embeddings_constraint": None,
               "mask_zero": bool(c.get("mask_zero", False))})
        if gen == 2:
            cfg["input_length"] = c.get("input_length")
        else:
            cfg["quantization_config"] = None
        pl = PlannedLayer(name, "Embedding", _layer_entry(gen, "Embedding", cfg, [None, seq_len]), arrays,
                          input_shape=[None, seq_len], output_dim=int(c["output_dim"]))
    pl.weight_names = _tk_weight_names(pl)
    _note_dropped_options(report, e.name, c)
    return pl


def functional_config(gen: int, model_name: str, planned: List[PlannedLayer]) -> Dict[str, Any]:
    """A Functional model config chaining ``planned`` (first = the InputLayer)."""
    layers = []
    prev: Optional[PlannedLayer] = None
    prev_shape: Optional[List[Any]] = None
    for pl in planned:
        entry = copy.deepcopy(pl.entry)
        if prev is None:
            entry["inbound_nodes"] = []
            cfg = entry["config"]
            prev_shape = list(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
            in_dtype = cfg.get("dtype", "float32")
        else:
            if gen == 3:
                kwargs = {"mask": None} if pl.class_name == "Bidirectional" else (
                    {"training": False, "mask": None} if pl.class_name == "LSTM" else {})
                entry["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__", "config": {
                    "shape": prev_shape, "dtype": in_dtype, "keras_history": [prev.name, 0, 0]}}],
                    "kwargs": kwargs}]
            else:
                entry["inbound_nodes"] = [[[prev.name, 0, 0, {}]]]
            seq = entry["config"].get("return_sequences",
                                      (entry["config"].get("layer") or {}).get("config", {}).get("return_sequences"))
            if pl.class_name == "Embedding":
                prev_shape = list(prev_shape) + [pl.output_dim]
            elif pl.class_name in ("LSTM", "Bidirectional"):
                prev_shape = [None, prev_shape[1], pl.output_dim] if seq else [None, pl.output_dim]
            else:
                prev_shape = list(prev_shape[:-1]) + [pl.output_dim]
            in_dtype = "float32"
        if gen == 2:
            entry.pop("module", None)
            entry.pop("registered_name", None)
            entry.pop("build_config", None)
        layers.append(entry)
        prev = pl
    first, last = planned[0].name, planned[-1].name
    cfg = {"name": model_name, "trainable": True, "layers": layers}
    if gen == 3:
        cfg["input_layers"] = [first, 0, 0]
        cfg["output_layers"] = [last, 0, 0]
        return {"module": "keras.src.models.functional", "class_name": "Functional", "config": cfg,
                "registered_name": "Functional", "build_config": {"input_shape": None}, "compile_config": {}}
    cfg["input_layers"] = [[first, 0, 0]]
    cfg["output_layers"] = [[last, 0, 0]]
    return {"class_name": "Functional", "config": cfg}
