"""Keras legacy HDF5: full model (``model.save("m.h5")``) and weights-only (``save_weights("w.h5")``).

Layout (docs/spec/keras_lstm.md §7.1/§7.2): root attrs ``keras_version``, ``backend``, ``model_config`` (JSON; full
model only); the weights live in group ``model_weights`` (full model) or at the root (weights-only),
which carries ``layer_names``; each layer group carries ``weight_names`` and holds the datasets at
those (slash-separated) paths. Attributes may be bytes or str and may be split (``name0``, ``name1``,
...). Loading is **order-based** like Keras's: the i-th config layer that has weights gets the i-th
``layer_names`` entry with non-empty ``weight_names`` (names are used when they all match). Weight names
differ between writers (``lstm/lstm_cell/kernel:0`` in tf_keras, ``lstm/kernel:0`` in TF 1.x and early
TF 2, no ``:0`` in Keras 3) and are only kept for information.

The writer produces the dialect of one Keras generation (``keras_version=`` 2 or 3; default: a
Keras 3 source gets Keras 3's, anything else tf_keras's): what tf_keras 2.21 writes (``keras_version``
"2.21.0", a Functional ``model_config`` with ``time_major``, ``lstm/lstm_cell/kernel:0`` names), or
what Keras 3.15 writes (``keras_version`` "3.15.1", Keras 3 layer configs, names without ``:0``),
which is the only one Keras 3 loads (it refuses tf_keras's ``time_major``). :func:`dialect` says
which one a model gets.
"""

from __future__ import annotations

import json
import mmap
import os
from collections import OrderedDict
from typing import Any, Callable, Dict, List, TypeVar, Union

import numpy as np

from .atomic import hdf5_output
from .common import PathLike, SaveReport, atomic_output, check_output_path, check_regular_file, head_bytes, open_regular
from .hdf5 import ReadBudget, check_global_heaps, check_hdf5_tree, read_attr, read_dataset, read_json_attr
from .keras_config import (
    K3_VERSION,
    TK_VERSION,
    WEIGHTLESS,
    infer_kind,
    layer_configs,
    layer_kind,
    layer_name,
    weight_keys,
)
from .keras_plan import KerasPlan, plan_keras
from .model import FormatError, LayerEntry, ModelFile, keras_generation, validate

T = TypeVar("T")

NAME = "keras-h5"
SUFFIXES = (".h5", ".hdf5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is in the keras extra
        raise NotImplementedError("Keras HDF5 files need h5py: pip install 'lstm-bridge[keras]'") from exc
    return h5py


def is_hdf5(path_or_head: Union[PathLike, bytes]) -> bool:
    """True when the bytes start with the HDF5 signature (at offset 0; user blocks are not supported)."""
    return head_bytes(path_or_head, 8) == HDF5_SIGNATURE


def detect_hdf5(path_or_head: Union[PathLike, bytes], layout: Callable[[Any], bool]) -> bool:
    """The shared ``detect`` of the HDF5 formats: the signature, then ``layout(open h5py.File)`` on a
    path (given bytes, the signature alone decides). Detection never raises: an unreadable file is
    simply "not this format"."""
    if not is_hdf5(path_or_head):
        return False
    if isinstance(path_or_head, (bytes, bytearray, memoryview)):
        return True
    h5py = _h5py()
    try:
        with h5py.File(os.fspath(path_or_head), "r") as f:
            try:
                check_hdf5_tree(None, f)  # membership tests could follow a hostile link: look first
            except FormatError:
                return True  # an HDF5 file the loader must refuse, saying why
            return bool(layout(f))
    except Exception:
        return False


def _has_layer_names(f: Any) -> bool:
    g = f["model_weights"] if "model_weights" in f else f
    return any(k == "layer_names" or k == "layer_names0" for k in g.attrs)


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """An HDF5 file with ``layer_names`` at the root or in ``model_weights`` (bytes: the signature only)."""
    return detect_hdf5(path_or_head, _has_layer_names)


def read_hdf5(path: PathLike, what: str, reader: Callable[[str, Any, ReadBudget], T]) -> T:
    """The shared ``load`` frame of the HDF5 formats: check that the path is a regular file with the
    signature, open it read-only, refuse links, virtual datasets and external storage
    (:func:`~lstm_bridge.formats.hdf5.check_hdf5_tree`) before anything is read, and return
    ``reader(path, open h5py.File, ReadBudget for the file)``. Any h5py error (it raises many types on
    corrupt files) becomes a :class:`FormatError` naming ``what`` the file was read as."""
    p = os.fspath(path)
    size = check_regular_file(p)
    if not is_hdf5(p):
        raise FormatError(p, "not an HDF5 file (missing the \\x89HDF signature)")
    h5py = _h5py()
    with open_regular(p) as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as image:
        check_global_heaps(p, image)  # before h5py reads any attribute (HDF5 can spin on a bad heap)
    try:
        with h5py.File(p, "r") as f:
            check_hdf5_tree(p, f)
            return reader(p, f, ReadBudget(size))
    except FormatError:
        raise
    except Exception as exc:  # h5py raises many types on corrupt files; all mean "unreadable file" here
        raise FormatError(p, f"unreadable {what} file ({type(exc).__name__}: {exc})") from None


def load(path: PathLike) -> ModelFile:
    """Read a Keras legacy HDF5 file (full model or weights-only) into a :class:`ModelFile`."""
    return read_hdf5(path, "Keras HDF5", _load)


def _load(p: str, f: Any, size: ReadBudget) -> ModelFile:
    full = "model_weights" in f
    g = f["model_weights"] if full else f
    version = read_attr(f, "keras_version")
    if version is None:
        version = read_attr(g, "keras_version")
    if version is not None and not isinstance(version, str):
        raise FormatError(p, f"keras_version must be a string; found {version!r}")
    backend = read_attr(f, "backend") or read_attr(g, "backend")
    model_config = read_json_attr(p, f, "model_config") if full else None
    layer_names = read_attr(g, "layer_names")
    if layer_names is None:
        hint = " (it has 'layers/': a .weights.h5 file)" if "layers" in f else ""
        raise FormatError(p, f"no 'layer_names' attribute: not a Keras legacy HDF5 weights file{hint}")
    if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
        raise FormatError(p, f"'layer_names' must be a list of strings; found {layer_names!r}")
    h5_layers = _read_layer_groups(p, g, layer_names, size)
    entries = _entries(p, layer_configs(model_config), h5_layers)
    meta: Dict[str, Any] = {"backend": backend, "weights_only": not full, "layer_names": list(layer_names)}
    return validate(
        ModelFile(
            framework="keras",
            version=version,
            layers=entries,
            format=NAME,
            path=p,
            model_config=model_config,
            meta=meta,
        )
    )


def _read_layer_groups(p: str, g: Any, layer_names: List[str], size: ReadBudget) -> OrderedDict[str, tuple]:
    """``layer name -> (weight names, arrays)`` for the groups ``layer_names`` lists, read and checked."""
    h5_layers: OrderedDict[str, tuple] = OrderedDict()
    for name in layer_names:
        if name not in g:
            raise FormatError(p, f"layer {name!r} is listed in layer_names but has no group")
        grp = g[name]
        wnames = read_attr(grp, "weight_names") or []
        if not isinstance(wnames, list) or not all(isinstance(n, str) for n in wnames):
            raise FormatError(p, f"layer {name!r}: 'weight_names' must be a list of strings; found {wnames!r}")
        if len(set(wnames)) != len(wnames):
            dup = sorted({n for n in wnames if wnames.count(n) > 1})
            raise FormatError(
                p, f"layer {name!r}: 'weight_names' lists {dup} more than once; expected each weight once"
            )
        arrays = []
        for wn in wnames:
            if wn not in grp:
                raise FormatError(p, f"layer {name!r}: weight {wn!r} is listed but missing")
            arrays.append(read_dataset(p, grp[wn], size))
        h5_layers[name] = (wnames, arrays)
    return h5_layers


def _entries(p: str, cfg_layers: List[Dict[str, Any]], h5_layers: OrderedDict[str, tuple]) -> List[LayerEntry]:
    """One entry per layer of the model config, its weights matched by name or, as Keras loads, by order
    among the layers that have weights; without a config, one per weight group (kind from its arrays)."""
    weighted = [n for n, (wn, _) in h5_layers.items() if wn]
    entries: List[LayerEntry] = []
    if cfg_layers:
        cfg_names = [layer_name(l) for l in cfg_layers]
        if all(n in cfg_names for n in weighted):
            match = {n: n for n in weighted}
        else:  # order-based, as Keras loads
            cands = [layer_name(l) for l in cfg_layers if l.get("class_name") not in WEIGHTLESS]
            if len(cands) != len(weighted):
                raise FormatError(
                    p,
                    f"the model config has {len(cands)} layers with weights ({cands}) but the file "
                    f"has weights for {len(weighted)} ({weighted})",
                )
            match = dict(zip(cands, weighted))
        for le in cfg_layers:
            n = layer_name(le)
            wnames, arrays = h5_layers.get(match.get(n, ""), ([], []))
            kind = layer_kind(str(le.get("class_name", "")), le.get("config"))
            entries.append(_entry(n, kind, le.get("config", {}) or {}, wnames, arrays))
    else:
        for n, (wnames, arrays) in h5_layers.items():
            kind = infer_kind(arrays, wnames) if arrays else "Unknown"
            if n == "top_level_model_weights" and not arrays:
                continue
            entries.append(_entry(n, kind, {}, wnames, arrays))
    return entries


def _entry(name: str, kind: str, config: Dict[str, Any], wnames: List[str], arrays: List[np.ndarray]) -> LayerEntry:
    keys = weight_keys(kind, len(arrays), wnames)
    return LayerEntry(
        name=name,
        kind=kind,
        config=config,
        weights=OrderedDict(zip(keys, arrays)),
        attrs={"weight_names": list(wnames)},
    )


# --- writing --------------------------------------------------------------------------------------


def write_weights_group(h5py: Any, g: Any, plan: KerasPlan, version: str) -> None:
    """Fill ``g`` (``model_weights`` or the root) with the legacy layout for ``plan``."""
    names = [pl.name for pl in plan.layers if not pl.is_op]
    str_dt = h5py.string_dtype("utf-8")
    g.attrs["layer_names"] = np.array(names, dtype=str_dt)
    g.attrs["backend"] = "tensorflow"
    g.attrs["keras_version"] = version
    for pl in plan.layers:
        if pl.is_op:
            continue
        grp = g.create_group(pl.name)
        if pl.arrays:
            if len(set(pl.weight_names)) != len(pl.arrays):
                raise FormatError(
                    None, f"layer {pl.name!r}: {len(pl.arrays)} arrays but weight names {pl.weight_names}"
                )
            grp.attrs["weight_names"] = np.array(pl.weight_names, dtype=str_dt)
            for wn, arr in zip(pl.weight_names, pl.arrays):
                grp.create_dataset(wn, data=np.ascontiguousarray(arr))
        else:
            grp.attrs["weight_names"] = np.array([], dtype=np.float64)  # what tf_keras writes for no weights
    if "top_level_model_weights" not in g:
        g.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], dtype=np.float64)


def _same_layout_possible(mf: ModelFile) -> bool:
    return mf.format == NAME and all(len(e.attrs.get("weight_names") or []) == len(e.weights) for e in mf.layers)


def _write_same_layout(h5py: Any, g: Any, mf: ModelFile) -> None:
    """Weights-only legacy layout from a model read from a legacy .h5: same layer and weight names,
    same order (what Keras's order-based loading needs), whatever the source's config said."""
    str_dt = h5py.string_dtype("utf-8")
    names = list(mf.meta.get("layer_names") or [e.name for e in mf.layers])
    by_name = {e.name: e for e in mf.layers}
    g.attrs["layer_names"] = np.array(names, dtype=str_dt)
    g.attrs["backend"] = mf.meta.get("backend") or "tensorflow"
    g.attrs["keras_version"] = mf.version or TK_VERSION
    for n in names:
        grp = g.create_group(n)
        e = by_name.get(n)
        wnames = list(e.attrs.get("weight_names") or []) if e is not None else []
        grp.attrs["weight_names"] = np.array(wnames, dtype=str_dt) if wnames else np.array([], dtype=np.float64)
        for wn, arr in zip(wnames, e.weights.values() if e is not None else []):
            grp.create_dataset(wn, data=np.ascontiguousarray(arr))
    if "top_level_model_weights" not in g:
        g.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], dtype=np.float64)


def dialect(model_file: ModelFile, keras_version: Any = None) -> int:
    """The Keras generation (2 or 3) whose ``.h5`` dialect :func:`save` writes for ``model_file``.

    Raises:
        ValueError: ``keras_version`` other than None, 2 or 3.
    """
    if keras_version is not None:
        if keras_version not in (2, 3) or isinstance(keras_version, bool):
            raise ValueError(f"keras_version must be 2 (tf_keras) or 3 (Keras 3); received {keras_version!r}")
        return int(keras_version)
    if model_file.framework == "keras" and keras_generation(model_file.version) == 3:
        return 3
    return 2


def _keras3_legacy_config(model_config: Dict[str, Any]) -> Dict[str, Any]:
    """Keras 3's ``model.save("m.h5")`` config: ``{class_name, config}``, layer entries without the
    saving-lib keys ``module``, ``registered_name`` and ``build_config``."""
    import copy

    cfg = {
        "class_name": model_config.get("class_name", "Functional"),
        "config": copy.deepcopy(model_config.get("config")),
    }
    for le in layer_configs(cfg):
        for k in ("module", "registered_name", "build_config"):
            le.pop(k, None)
    return cfg


def save(model_file: ModelFile, path: PathLike, weights_only: bool = False, keras_version: Any = None) -> SaveReport:
    """Write a legacy HDF5 file in the dialect of Keras generation :func:`dialect` (``keras_version=``
    2: tf_keras 2.21, 3: Keras 3.15; default: the source's generation for Keras sources, else 2): a
    full model (``model_config`` + ``model_weights``) that ``load_model`` of that generation loads, or
    with ``weights_only=True`` the ``save_weights("w.h5")`` layout. Non-Keras sources become a
    Functional ``Input -> LSTM/Bidirectional ...`` chain. Nothing is written when the model cannot be
    held (:func:`lstm_bridge.targets.check_model`).

    Raises:
        FormatError: a layer whose semantics that generation cannot express (e.g. Keras 3's hard_sigmoid
            for tf_keras, ``time_major`` for Keras 3).
    """
    from ..targets import check_model

    p = check_output_path(path, model_file)
    gen = dialect(model_file, keras_version)
    version = TK_VERSION if gen == 2 else K3_VERSION
    h5py = _h5py()
    if weights_only and _same_layout_possible(model_file):
        with atomic_output(p) as tmp:
            with hdf5_output(h5py, tmp) as f:  # built in memory: see hdf5_output
                _write_same_layout(h5py, f, model_file)
        return SaveReport(path=p, format=NAME, written=[e.name for e in model_file.layers])
    if not weights_only:  # a weights-only file records no semantics: the loading model supplies them
        check_model(model_file, "keras2" if gen == 2 else "keras3", path=p)
    try:
        plan = plan_keras(model_file, gen, p, NAME, weights_only=weights_only)
    except FormatError as exc:
        raise FormatError(p, exc.problem) from None
    if gen == 3:  # Keras 3 names weights without the ":0" suffix
        for pl in plan.layers:
            pl.weight_names = [w[:-2] if w.endswith(":0") else w for w in pl.weight_names]
    with atomic_output(p) as tmp:
        with hdf5_output(h5py, tmp) as f:  # built in memory: see hdf5_output
            if weights_only:
                write_weights_group(h5py, f, plan, version)
            else:
                f.attrs["backend"] = "tensorflow"
                f.attrs["keras_version"] = version
                config = plan.model_config if gen == 2 else _keras3_legacy_config(plan.model_config)
                f.attrs["model_config"] = json.dumps(config)
                write_weights_group(h5py, f.create_group("model_weights"), plan, version)
    return plan.report
