"""Reading Keras full-model files for :func:`~lstm_bridge.models.load.load_model`, through the safe readers
of :mod:`lstm_bridge.formats` (regular files only, bounded JSON and zip members, HDF5 trees checked for
links and external storage before anything is read, every dataset charged to a memory budget; nothing is
unpickled or executed).

* ``.keras`` (Keras 3 and tf_keras): ``config.json``, ``metadata.json``, ``model.weights.h5`` whose groups
  follow the object tree: ``layers/<key>`` per layer (``key`` = snake-case class name with a per-class
  counter, in model order), ``vars/<i>`` its own variables, ``cell/vars`` a recurrent layer's,
  ``forward_layer/cell/vars`` and ``backward_layer/cell/vars`` a Bidirectional's, ``layer/...`` a
  TimeDistributed's inner layer, ``layers/...`` a nested model's.
* legacy ``.h5``: ``model_config`` attribute; ``model_weights/<layer name>`` with ``weight_names`` in the
  layer's legacy order (its trainable weights, then the others).
"""

from __future__ import annotations

import io
import mmap
import os
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from ..formats.common import PathLike, check_regular_file, open_regular
from ..formats.hdf5 import (
    INFLATION_SLACK,
    MAX_INFLATION,
    ReadBudget,
    check_global_heaps,
    check_hdf5_tree,
    read_attr,
    read_dataset,
    read_json_attr,
)
from ..formats.keras_config import snake_case
from ..formats.keras_h5 import HDF5_SIGNATURE, _h5py
from ..formats.keras_zip import _json_member, _member
from ..formats.model import FormatError, keras_generation

__all__ = ["KerasFile", "read_keras_file"]


@dataclass
class KerasFile:
    """A full-model file's content: its model config, generation, version, and an open HDF5 weights tree."""

    path: str
    format: str  # "keras" or "keras-h5"
    model_config: Dict[str, Any]
    version: Optional[str]
    generation: int
    h5: Any  # the open h5py.File (the .keras archive's weights, or the legacy file itself)
    budget: ReadBudget

    def close(self) -> None:
        try:
            self.h5.close()
        except Exception:  # pragma: no cover - closing a broken file
            pass


def read_keras_file(path: PathLike) -> KerasFile:
    """Open a Keras full-model file (``.keras`` zip or legacy ``.h5``); FormatError for anything else."""
    p = os.fspath(path)
    size = check_regular_file(p)
    with open_regular(p) as fh:
        head = fh.read(8)
    if head[:4] == b"PK\x03\x04":
        return _read_archive(p, size)
    if head == HDF5_SIGNATURE:
        return _read_legacy(p, size)
    raise FormatError(p, f"expected a Keras full-model file (.keras zip or .h5); the file starts with {head!r}")


def _read_archive(p: str, size: int) -> KerasFile:
    h5py = _h5py()
    try:
        with zipfile.ZipFile(p) as z:
            config = _json_member(p, z, "config.json")
            metadata = _json_member(p, z, "metadata.json") if "metadata.json" in z.namelist() else {}
            wbytes = _member(p, z, "model.weights.h5", size * MAX_INFLATION + INFLATION_SLACK)
    except FormatError:
        raise
    except Exception as exc:  # zipfile raises many types on corrupt archives
        raise FormatError(p, f"unreadable .keras file ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or not isinstance(metadata, dict):
        raise FormatError(p, "config.json and metadata.json must hold JSON objects")
    version = metadata.get("keras_version")
    if version is not None and not isinstance(version, str):
        raise FormatError(p, f"metadata.json keras_version must be a string; found {version!r}")
    if version is None:
        version = "2" if str(config.get("module", "")).startswith("tf_keras") else "3"
    check_global_heaps(p, wbytes)
    try:
        f = h5py.File(io.BytesIO(wbytes), "r")
        check_hdf5_tree(p, f)
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(p, f"unreadable model.weights.h5 in the archive ({type(exc).__name__}: {exc})") from None
    budget = ReadBudget(len(wbytes), size * MAX_INFLATION + INFLATION_SLACK)
    return KerasFile(p, "keras", config, version, _generation(p, version), f, budget)


def _read_legacy(p: str, size: int) -> KerasFile:
    h5py = _h5py()
    with open_regular(p) as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as image:
        check_global_heaps(p, image)
    try:
        f = h5py.File(p, "r")
        check_hdf5_tree(p, f)
        config = read_json_attr(p, f, "model_config")
        version = read_attr(f, "keras_version")
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(p, f"unreadable Keras HDF5 file ({type(exc).__name__}: {exc})") from None
    if config is None or "model_weights" not in f:
        f.close()
        raise FormatError(
            p,
            "expected a full-model .h5 (model_config and model_weights); this is a weights-only file: "
            "load it with lstm_bridge.load, or save the whole model with model.save('m.h5')",
        )
    if version is not None and not isinstance(version, str):
        f.close()
        raise FormatError(p, f"keras_version must be a string; found {version!r}")
    return KerasFile(p, "keras-h5", config, version, _generation(p, version), f, ReadBudget(size))


def _generation(p: str, version: Optional[str]) -> int:
    try:
        return keras_generation(version)
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None


# --- the weights of one layer ----------------------------------------------------------------------


def vars_of(kf: KerasFile, group: Any) -> List[np.ndarray]:
    """The datasets ``vars/0, 1, ...`` of a ``.keras`` object group, in index order (none when absent)."""
    if group is None or "vars" not in group:
        return []
    v = group["vars"]
    keys = []
    for k in v.keys():
        if not str(k).isdigit():
            raise FormatError(kf.path, f"{v.name}: unexpected member {k!r} (vars are numbered 0, 1, ...)")
        keys.append(int(k))
    keys.sort()
    if keys != list(range(len(keys))):
        raise FormatError(kf.path, f"{v.name}: vars must be numbered 0..{len(keys) - 1}; found {keys}")
    return [read_dataset(kf.path, v[str(k)], kf.budget) for k in keys]


def child(group: Any, name: str) -> Any:
    return group[name] if group is not None and name in group else None


def counter_keys(class_names: List[str]) -> List[str]:
    """``.keras`` keys of a container's objects: snake-case class names with per-class counters."""
    seen: Dict[str, int] = {}
    out = []
    for cn in class_names:
        base = snake_case(cn)
        n = seen.get(base, 0)
        out.append(base if n == 0 else f"{base}_{n}")
        seen[base] = n + 1
    return out


def legacy_arrays(kf: KerasFile, layer_name: str) -> List[np.ndarray]:
    """A legacy ``.h5`` layer group's arrays in its ``weight_names`` order (none when the layer has no group)."""
    g = kf.h5["model_weights"]
    if layer_name not in g:
        return []
    grp = g[layer_name]
    names = read_attr(grp, "weight_names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise FormatError(
            kf.path, f"layer {layer_name!r}: 'weight_names' must be a list of strings; found {names!r:.200}"
        )
    out = []
    for wn in names:
        if wn not in grp:
            raise FormatError(kf.path, f"layer {layer_name!r}: weight {wn!r} is listed but missing")
        out.append(read_dataset(kf.path, grp[wn], kf.budget))
    return out
