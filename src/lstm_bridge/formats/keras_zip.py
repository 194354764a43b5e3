"""The ``.keras`` zip (Keras 3 ``model.save("m.keras")``; tf_keras writes the same container;
docs/spec/keras_lstm.md §7.4): ``metadata.json`` (``keras_version``), ``config.json`` (the model config) and
``model.weights.h5`` (the ``.weights.h5`` layout, keys = class-name counters in config order).

The writer produces a Keras 3.15 file (Functional ``Input -> LSTM/Bidirectional ...``; the original
config when the source was written by Keras 3).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
from typing import Any, Dict, List, Union

from ..targets import check_model
from .common import PathLike, SaveReport, atomic_output, check_output_path, check_regular_file, head_bytes
from .hdf5 import (
    INFLATION_SLACK,
    MAX_INFLATION,
    MAX_JSON_DEPTH,
    MAX_JSON_VALUES,
    ReadBudget,
    check_global_heaps,
    check_hdf5_tree,
    check_json_depth,
)
from .keras_config import K3_VERSION, class_counter_keys, layer_configs, layer_kind, layer_name
from .keras_h5 import _h5py
from .keras_plan import plan_keras
from .keras_weights import entry_from_layer, read_layers, write_weights_file
from .model import FormatError, LayerEntry, ModelFile, validate

NAME = "keras"
SUFFIXES = (".keras",)
# Memory bounds (zip and JSON bombs). A Keras config of a thousand layers is ~2 MB of JSON, so
# ``config.json``/``metadata.json`` may hold at most ``_MAX_JSON`` bytes, ``MAX_JSON_VALUES`` values
# (counted from the raw bytes before parsing: a JSON value costs ~20x its text in Python) and nest at
# most ``MAX_JSON_DEPTH`` deep (:mod:`.hdf5`). ``model.weights.h5`` may
# inflate to at most ``MAX_INFLATION`` times the archive size plus ``INFLATION_SLACK`` (the same
# budget then bounds the datasets read from it). Members are read streamed, never past their bound.
_MAX_JSON = 16 * 1024 * 1024


def detect(path_or_head: Union[PathLike, bytes]) -> bool:
    """A zip archive holding ``config.json`` (bytes: the zip signature only)."""
    head = head_bytes(path_or_head, 4)
    if head != b"PK\x03\x04":
        return False
    if isinstance(path_or_head, (bytes, bytearray, memoryview)):
        return True
    try:
        with zipfile.ZipFile(os.fspath(path_or_head)) as z:
            return "config.json" in z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _member(p: str, z: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Member ``name``, read streamed and never past ``limit`` bytes (FormatError beyond it)."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise FormatError(p, f"the .keras archive has no {name!r} (members: {z.namelist()[:20]})") from None
    if info.file_size > limit:
        raise FormatError(
            p,
            f"member {name!r} declares {info.file_size} bytes uncompressed, above the limit of "
            f"{limit} for this {os.path.getsize(p)}-byte archive",
        )
    with z.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FormatError(p, f"member {name!r} inflates past the limit of {limit} bytes")
    if len(data) != info.file_size:
        raise FormatError(p, f"member {name!r}: read {len(data)} bytes, the archive declares {info.file_size}")
    return data


def _json_member(p: str, z: zipfile.ZipFile, name: str) -> Any:
    raw = _member(p, z, name, _MAX_JSON)
    nodes = raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1
    if nodes > MAX_JSON_VALUES:
        raise FormatError(p, f"{name} holds about {nodes} JSON values, above the limit of {MAX_JSON_VALUES}")
    try:
        value = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise FormatError(p, f"{name} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(p, f"{name} is not valid UTF-8 JSON ({exc})") from None
    check_json_depth(p, value, name)
    return value


def load(path: PathLike) -> ModelFile:
    """Read a ``.keras`` archive (Keras 3 or tf_keras) into a :class:`ModelFile`."""
    p = os.fspath(path)
    size = check_regular_file(p)
    h5py = _h5py()
    try:
        with zipfile.ZipFile(p) as z:
            config = _json_member(p, z, "config.json")
            metadata = _json_member(p, z, "metadata.json") if "metadata.json" in z.namelist() else {}
            wbytes = _member(p, z, "model.weights.h5", size * MAX_INFLATION + INFLATION_SLACK)
        if not isinstance(config, dict) or not isinstance(metadata, dict):
            raise FormatError(p, "config.json and metadata.json must hold JSON objects")
        check_global_heaps(p, wbytes)  # before h5py reads any attribute (HDF5 can spin on a bad heap)
        with h5py.File(io.BytesIO(wbytes), "r") as f:
            check_hdf5_tree(p, f)
            # one budget for the whole archive: what it can hold, not what its members claim
            layers = read_layers(p, f, ReadBudget(len(wbytes), size * MAX_INFLATION + INFLATION_SLACK))
    except FormatError:
        raise
    except Exception as exc:  # zipfile/json/h5py raise many types on corrupt files; all mean "unreadable"
        raise FormatError(p, f"unreadable .keras file ({type(exc).__name__}: {exc})") from None
    try:
        return _build(p, config, metadata, layers)
    except FormatError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:  # a malformed config
        raise FormatError(p, f"malformed config.json ({type(exc).__name__}: {exc})") from None


def _build(p: str, config: Dict[str, Any], metadata: Dict[str, Any], layers: Any) -> ModelFile:
    version = metadata.get("keras_version")
    if version is not None and not isinstance(version, str):
        raise FormatError(p, f"metadata.json keras_version must be a string; found {version!r}")
    if version is None:
        version = "2" if str(config.get("module", "")).startswith("tf_keras") else "3"
    cfg_layers = layer_configs(config)
    real = [l for l in cfg_layers if not str(l.get("module", "")).startswith("keras.src.ops")]
    keys = class_counter_keys([str(l.get("class_name", "")) for l in real])
    key_of = {id(l): k for l, k in zip(real, keys)}
    entries: List[LayerEntry] = []
    used = set()
    for le in cfg_layers:
        name = layer_name(le)
        kind = layer_kind(str(le.get("class_name", "")), le.get("config"))
        key = key_of.get(id(le))
        if key is not None and key in layers:
            used.add(key)
            entries.append(entry_from_layer(name, kind, le.get("config", {}) or {}, key, layers[key]))
        else:
            entries.append(LayerEntry(name=name, kind=kind, config=le.get("config", {}) or {}))
    leftover = [k for k in layers if k not in used and layers[k][1]]
    if leftover:
        raise FormatError(p, f"model.weights.h5 holds weights for {leftover}, which match no layer of config.json")
    meta: Dict[str, Any] = {"metadata": metadata}
    return validate(
        ModelFile(
            framework="keras", version=version, layers=entries, format=NAME, path=p, model_config=config, meta=meta
        )
    )


def save(model_file: ModelFile, path: PathLike) -> SaveReport:
    """Write a Keras 3.15 ``.keras`` archive that ``keras.saving.load_model`` loads.

    Raises:
        FormatError: a layer whose semantics Keras 3 cannot express (tf_keras's hard_sigmoid,
            time_major, ...).
    """
    p = check_output_path(path, model_file)
    check_model(model_file, "keras3", path=p)  # what Keras 3 cannot hold: refused, nothing written
    h5py = _h5py()
    try:
        plan = plan_keras(model_file, 3, p, NAME)
    except FormatError as exc:
        raise FormatError(p, exc.problem) from None
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        write_weights_file(h5py, f, plan)
    metadata = {"keras_version": K3_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    with atomic_output(p) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(zipfile.ZipInfo("metadata.json", (1980, 1, 1, 0, 0, 0)), json.dumps(metadata))
            z.writestr(zipfile.ZipInfo("config.json", (1980, 1, 1, 0, 0, 0)), json.dumps(plan.model_config))
            z.writestr("model.weights.h5", buf.getvalue())
    return plan.report
