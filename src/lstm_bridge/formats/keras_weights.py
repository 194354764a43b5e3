"""New-style Keras ``.weights.h5`` (Keras 3 ``save_weights``, tf_keras ``save_weights("*.weights.h5")``,
and the ``model.weights.h5`` inside a ``.keras`` zip; docs/spec/keras_lstm.md §7.3).

Paths are ``layers/<key>/.../vars/<i>`` where ``<key>`` is the snake-case **class name with a per-class
counter** in model order (``lstm``, ``lstm_1``, ``bidirectional``...), not the layer name. An LSTM keeps
``kernel, recurrent_kernel, bias`` in ``cell/vars/{0,1,2}``; a Bidirectional in
``forward_layer/cell/vars`` and ``backward_layer/cell/vars``. Keras 3 puts the real layer name in a
``name`` attribute of each ``vars`` group; tf_keras does not.

Without a model config the order of layers of *different* classes is unknown: a standalone file's
entries come sorted by key (class, then counter), which keeps every class's own order.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .atomic import hdf5_output
from .common import PathLike, SaveReport, atomic_output, check_output_path
from .family import entry_cell
from .hdf5 import ReadBudget, attr_value, decode, read_dataset
from .keras_config import class_counter_keys, infer_kind, weight_keys
from .keras_h5 import _h5py, detect_hdf5, read_hdf5
from .keras_plan import KerasPlan, plan_keras
from .model import FormatError, LayerEntry, ModelFile, validate

#: the ``cell/vars`` name Keras 3 gives each recurrent cell kind
CELL_VARS_NAME = {"LSTM": "lstm_cell", "GRU": "gru_cell", "RNN": "simple_rnn_cell"}
#: ``layers/<key>`` base -> entry kind, for the recurrent classes (``cu_dnngru`` is TF1's CuDNNGRU)
_RECURRENT_KEYS = {
    "lstm": "LSTM",
    "cu_dnnlstm": "LSTM",
    "cudnnlstm": "LSTM",
    "gru": "GRU",
    "cu_dnngru": "GRU",
    "cudnngru": "GRU",
    "simple_rnn": "SimpleRNN",
}

NAME = "keras-weights-h5"
SUFFIXES = (".weights.h5",)


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """An HDF5 file with a top-level ``layers`` group and no ``layer_names`` (bytes: signature only)."""
    return detect_hdf5(
        path_or_head, lambda f: "layers" in f and "layer_names" not in f.attrs and "model_weights" not in f
    )


def _natural_key(key: str) -> Tuple[str, int]:
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    if m is None:  # (the pattern matches every string)
        return (key, 0)
    return (m.group(1), int(m.group(2)) if m.group(2) else 0)


def _standalone_order(key: str) -> Tuple[int, str, int]:
    # Without a config the order across classes is unknown; inputs and embeddings usually come first
    # and dense heads last, and every class keeps its own counter order.
    base, n = _natural_key(key)
    return ({"input_layer": 0, "embedding": 1, "dense": 3}.get(base, 2), base, n)


def _vars(p: str, grp: Any, size: ReadBudget, rel: str) -> Tuple[List[np.ndarray], List[str]]:
    """Datasets ``0, 1, ...`` of a ``vars`` group, in index order, with their paths relative to the layer."""
    if grp is None:
        return [], []
    keys = []
    for k in grp.keys():
        if not k.isdigit():
            raise FormatError(p, f"{grp.name}: unexpected member {k!r} (vars are numbered 0, 1, ...)")
        keys.append(int(k))
    keys.sort()
    if keys != list(range(len(keys))):
        raise FormatError(p, f"{grp.name}: vars must be numbered 0..{len(keys) - 1}; found {keys}")
    return [read_dataset(p, grp[str(k)], size) for k in keys], [f"{rel}/{k}" for k in keys]


def _get(grp: Any, path: str) -> Any:
    return grp[path] if path in grp else None


def _name_attr(p: str, grp: Any) -> str:
    """The ``name`` attribute of a ``vars`` group, which must be a string."""
    value = decode(attr_value(grp, "name"))
    if not isinstance(value, str):
        raise FormatError(p, f"{grp.name}: attribute 'name' must be a string; found {value!r:.80}")
    return value


def read_layer(
    p: str, grp: Any, size: ReadBudget
) -> Tuple[str, List[np.ndarray], List[str], Optional[str], Dict[str, str]]:
    """One ``layers/<key>`` group: (structural kind, arrays in get_weights order, their relative paths,
    the K3 layer name attr, sub-layer names)."""
    name_attr = None
    v = _get(grp, "vars")
    if v is not None and "name" in v.attrs:
        name_attr = _name_attr(p, v)
    sub_names: Dict[str, str] = {}
    if "forward_layer" in grp and "backward_layer" in grp:
        arrays, paths = [], []
        for side in ("forward_layer", "backward_layer"):
            a, r = _vars(p, _get(grp, f"{side}/cell/vars"), size, f"{side}/cell/vars")
            a2, r2 = _vars(p, _get(grp, f"{side}/vars"), size, f"{side}/vars")
            arrays += a + a2
            paths += r + r2
            sv = _get(grp, f"{side}/vars")
            if sv is not None and "name" in sv.attrs:
                sub_names[side] = _name_attr(p, sv)
        return "Bidirectional", arrays, paths, name_attr, sub_names
    arrays, paths = [], []
    if "cell" in grp:
        a, r = _vars(p, _get(grp, "cell/vars"), size, "cell/vars")
        arrays += a
        paths += r
    a, r = _vars(p, v, size, "vars")
    arrays += a
    paths += r
    # other nested sub-objects (rare for the layers we care about): depth-first, sorted
    for k in sorted(grp.keys()):
        if k in ("vars", "cell"):
            continue
        sub = grp[k]
        if hasattr(sub, "keys"):
            for sk in sorted(sub.keys()):
                if sk == "vars":
                    a, r = _vars(p, sub["vars"], size, f"{k}/vars")
                    arrays += a
                    paths += r
    return ("Cell" if "cell" in grp else "Plain"), arrays, paths, name_attr, sub_names


def read_layers(p: str, f: Any, size: ReadBudget) -> OrderedDict[str, tuple]:
    """``key -> read_layer(...)`` for every ``layers/<key>`` group, in natural key order; every dataset
    read is charged to the file's :class:`~lstm_bridge.formats.hdf5.ReadBudget` ``size``."""
    if "layers" not in f:
        raise FormatError(p, "no 'layers' group: not a Keras .weights.h5 file")
    layers = f["layers"]
    out: OrderedDict[str, tuple] = OrderedDict()
    for key in sorted(layers.keys(), key=_standalone_order):
        grp = layers[key]
        if not hasattr(grp, "keys"):
            raise FormatError(p, f"layers/{key} must be a group")
        out[key] = read_layer(p, grp, size)
    return out


def _kind_for_key(key: str, structural: str, arrays: List[np.ndarray]) -> str:
    base = _natural_key(key)[0]
    if structural == "Bidirectional":
        return "Bidirectional"
    if base in _RECURRENT_KEYS:
        return _RECURRENT_KEYS[base]
    if structural == "Cell" and infer_kind(arrays, []) in ("LSTM", "GRU"):
        return infer_kind(arrays, [])
    return {"dense": "Dense", "embedding": "Embedding", "input_layer": "InputLayer"}.get(
        base, "".join(w.capitalize() for w in base.split("_"))
    )


def entry_from_layer(name: str, kind: str, config: Dict[str, Any], key: str, data: tuple) -> LayerEntry:
    _, arrays, paths, vars_name, sub_names = data
    keys = weight_keys(kind, len(arrays), paths)
    return LayerEntry(
        name=name,
        kind=kind,
        config=config,
        weights=OrderedDict(zip(keys, arrays)),
        attrs={"h5_key": key, "h5_paths": paths, "sub_names": sub_names, "vars_name": vars_name},
    )


def _dims(e: LayerEntry) -> Optional[Tuple[Optional[int], List[int]]]:
    """(input width or None, possible output widths) of a weighted layer, from its shapes."""
    a = list(e.weights.values())
    try:
        if e.kind in ("LSTM", "GRU", "SimpleRNN") and len(a) in (2, 3):
            return int(a[0].shape[0]), [int(a[1].shape[0])]
        if e.kind == "Bidirectional" and len(a) in (4, 6):
            u = int(a[1].shape[0])
            return int(a[0].shape[0]), [2 * u, u]  # concat, or sum/mul/ave
        if e.kind == "Dense" and a and a[0].ndim == 2:
            return int(a[0].shape[0]), [int(a[0].shape[1])]
        if e.kind == "Embedding" and a and a[0].ndim == 2:
            return None, [int(a[0].shape[1])]
    except (IndexError, TypeError):
        return None
    return None


def chain_order(entries: List[LayerEntry]) -> List[LayerEntry]:
    """Order a standalone file's layers into the chain their shapes imply (the file does not say the
    order across classes): start from an embedding or the layer whose input width no other layer
    produces, then repeatedly take the layer that consumes the previous output width (Dense last on a
    tie). Layers that fit nowhere keep their key order at the end; weightless ones go first."""
    dims = {id(e): d for e in entries if (d := _dims(e)) is not None}
    weighted = [e for e in entries if id(e) in dims]
    if len(weighted) < 2:
        return entries
    produced = {w for e in weighted for w in dims[id(e)][1]}
    order: List[LayerEntry] = []
    remaining = list(weighted)
    outs: Optional[List[int]] = None
    while remaining:
        if outs is None:
            cands = [e for e in remaining if dims[id(e)][0] is None or dims[id(e)][0] not in produced]
            if not cands:  # a Bidirectional's sum/mul/ave width may equal the first input's: concat first
                primary = {dims[id(e)][1][0] for e in weighted}
                cands = [e for e in remaining if dims[id(e)][0] not in primary]
        else:
            cands = [e for e in remaining if dims[id(e)][0] in outs]
        if not cands:
            break
        cands.sort(key=lambda e: (dims[id(e)][0] is not None, e.kind == "Dense"))
        pick = cands[0]
        order.append(pick)
        remaining.remove(pick)
        outs = dims[id(pick)][1]
    order += remaining
    return [e for e in entries if id(e) not in dims] + order


def load(path: PathLike) -> ModelFile:
    """Read a standalone ``.weights.h5`` file (no config: default LSTM semantics, shapes from weights)."""

    def read(p: str, f: Any, size: ReadBudget) -> Tuple[OrderedDict[str, tuple], Optional[str]]:
        layers = read_layers(p, f, size)
        root_vars = f["vars"] if "vars" in f else None
        name = _name_attr(p, root_vars) if root_vars is not None and "name" in root_vars.attrs else None
        return layers, name

    p = os.fspath(path)
    layers, model_name = read_hdf5(p, "Keras .weights.h5", read)
    k3 = any(d[3] is not None for d in layers.values())
    entries = []
    for key, data in layers.items():
        kind = _kind_for_key(key, data[0], data[1])
        entries.append(entry_from_layer(data[3] or key, kind, {}, key, data))
    entries = chain_order(entries)
    meta = {"weights_only": True, "model_name": model_name, "version_inferred": True, "k3_names": k3}
    # no version attribute exists: Keras 3 names its vars groups, tf_keras does not
    return validate(
        ModelFile(framework="keras", version="3" if k3 else "2", layers=entries, format=NAME, path=p, meta=meta)
    )


# --- writing --------------------------------------------------------------------------------------


#: planned class -> cell kind (the classes whose weights live in ``cell/vars``)
_PLANNED_CELLS = {"LSTM": "LSTM", "CuDNNLSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


def write_weights_file(h5py: Any, f: Any, plan: KerasPlan) -> None:
    """Write the Keras 3 ``.weights.h5`` layout for ``plan`` into the open h5py file ``f``."""
    layers = f.create_group("layers")
    planned = [pl for pl in plan.layers if not pl.is_op]
    keys = class_counter_keys([pl.class_name for pl in planned])
    for key, pl in zip(keys, planned):
        grp = layers.create_group(key)
        grp.create_group("vars").attrs["name"] = pl.name
        arrays = [np.ascontiguousarray(a) for a in pl.arrays]
        cell = _PLANNED_CELLS.get(pl.class_name)
        if cell is not None and len(arrays) in (2, 3):
            cv = grp.create_group("cell").create_group("vars")
            cv.attrs["name"] = CELL_VARS_NAME[cell]
            for i, a in enumerate(arrays):
                cv.create_dataset(str(i), data=a)
        elif pl.class_name == "Bidirectional" and len(arrays) in (4, 6):
            cfg = pl.entry.get("config", {})
            inner_cell = _PLANNED_CELLS.get(str((cfg.get("layer") or {}).get("class_name", "LSTM")), "LSTM")
            base = {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}[inner_cell]
            names = {
                "forward_layer": (cfg.get("layer") or {}).get("config", {}).get("name", f"forward_{base}"),
                "backward_layer": (cfg.get("backward_layer") or {}).get("config", {}).get("name", f"backward_{base}"),
            }
            half = len(arrays) // 2
            for side, part in (("forward_layer", arrays[:half]), ("backward_layer", arrays[half:])):
                sg = grp.create_group(side)
                sg.create_group("vars").attrs["name"] = names[side]
                cv = sg.create_group("cell").create_group("vars")
                cv.attrs["name"] = CELL_VARS_NAME[inner_cell]
                for i, a in enumerate(part):
                    cv.create_dataset(str(i), data=a)
        else:
            vg = grp["vars"]
            for i, a in enumerate(arrays):
                vg.create_dataset(str(i), data=a)
    f.create_group("vars").attrs["name"] = plan.model_name


def _write_same_layout(f: Any, mf: ModelFile) -> SaveReport:
    """A ``.weights.h5`` read from a file goes back to the same keys and paths (its layer order across
    classes is not known, so it is not re-derived)."""
    layers = f.create_group("layers")
    named = bool(mf.meta.get("k3_names"))
    report = SaveReport(path="", format=NAME)
    for e in mf.layers:
        grp = layers.create_group(e.attrs["h5_key"])
        vg = grp.create_group("vars")
        if e.attrs.get("vars_name") is not None:
            vg.attrs["name"] = e.attrs["vars_name"]
        for rel, arr in zip(e.attrs["h5_paths"], e.weights.values()):
            grp.create_dataset(rel, data=np.ascontiguousarray(arr))
        for side, name in (e.attrs.get("sub_names") or {}).items():
            grp.require_group(f"{side}/vars").attrs["name"] = name
        if named:
            cell_name = CELL_VARS_NAME.get(entry_cell(e) or "LSTM", "lstm_cell")
            for sub in ("cell/vars", "forward_layer/cell/vars", "backward_layer/cell/vars"):
                if sub in grp:
                    grp[sub].attrs["name"] = cell_name
        report.written.append(e.name)
    rv = f.create_group("vars")
    if mf.meta.get("model_name") is not None:
        rv.attrs["name"] = mf.meta["model_name"]
    return report


def _same_layout_possible(mf: ModelFile) -> bool:
    return mf.format == NAME and all(
        "h5_key" in e.attrs and len(e.attrs.get("h5_paths", [])) == len(e.weights) for e in mf.layers
    )


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write a Keras 3 ``.weights.h5`` (what ``keras.Model.save_weights`` writes) for the model that
    :func:`~lstm_bridge.formats.keras_plan.plan_keras` derives from ``model_file``; a model read from
    a ``.weights.h5`` is written back with its own keys and paths."""
    p = check_output_path(path, model_file)
    h5py = _h5py()
    if _same_layout_possible(model_file):
        with atomic_output(p) as tmp:
            with hdf5_output(h5py, tmp) as f:  # built in memory: see hdf5_output
                report = _write_same_layout(f, model_file)
        report.path = p
        return report
    try:
        plan = plan_keras(model_file, 3, p, NAME, weights_only=True)
    except FormatError as exc:
        raise FormatError(p, exc.problem) from None
    with atomic_output(p) as tmp:
        with hdf5_output(h5py, tmp) as f:  # built in memory: see hdf5_output
            write_weights_file(h5py, f, plan)
    return plan.report
