"""File formats, in a registry keyed by format name; none of them needs TensorFlow or MindSpore.

Every format is a module offering the same verbs:

* ``load(path) -> ModelFile``
* ``save(model_file, path, **options) -> SaveReport`` (atomic: temp file in the same directory, then
  ``os.replace``; never overwrites the file being read)
* ``detect(path_or_head_bytes) -> bool`` (cheap: looks at the first bytes / the suffix)

and the attributes ``NAME`` (its registry name) and ``SUFFIXES`` (those it is registered with); the
registry checks all five when a format is registered or first imported.

=====================  ==========================================================  =====================
name                   what                                                        suffixes
=====================  ==========================================================  =====================
``keras-h5``           Keras legacy HDF5, full model or weights-only (TK/TF1/K3)   ``.h5``, ``.hdf5``
``keras-weights-h5``   new-style ``.weights.h5`` (``layers/<key>/.../vars/<i>``)   ``.weights.h5``
``keras``              ``.keras`` zip (config.json + model.weights.h5)             ``.keras``
``mindspore-ckpt``     MindSpore ``.ckpt`` (protobuf, CRC trailer, slices)         ``.ckpt``
``torch``              PyTorch ``.pt``/``.pth`` state dict (``weights_only=True``)  ``.pt``, ``.pth``
``safetensors``        ``.safetensors``                                            ``.safetensors``
``onnx``               ONNX export (module ``lstm_bridge.formats.onnx``, lazy)      ``.onnx``
=====================  ==========================================================  =====================

Every format holds the recurrent family too (issue 11): Keras GRU / SimpleRNN (and Bidirectional of each, TF1
CuDNNGRU, Keras 1 GRU), MindSpore / PyTorch GRU / RNN state dicts and cells; ``ModelFile.recurrent_entries()``
gives them all with their ``cell`` and GRU form (``reset_after``), ``ModelFile.lstm_layers()`` the LSTMs.

Formats are imported lazily on first use. Registering a name twice is an error; an unknown name
raises ``NotImplementedError`` naming it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Dict, List, Sequence, Tuple, Union

from .common import SaveReport
from .model import FormatError, LayerEntry, LSTMLayer, ModelFile, RecurrentEntry, keras_generation

__all__ = [
    "FormatError",
    "LayerEntry",
    "LSTMLayer",
    "RecurrentEntry",
    "ModelFile",
    "SaveReport",
    "keras_generation",
    "register",
    "register_lazy",
    "get_format",
    "available",
    "format_for_suffix",
    "detect_format",
]

PathLike = Union[str, "os.PathLike[str]"]

# name -> module (loaded) or dotted module path (not yet imported)
_REGISTRY: Dict[str, Union[ModuleType, Any, str]] = {}
_SUFFIXES: Dict[str, Tuple[str, ...]] = {}

#: what every format module offers
VERBS = ("load", "save", "detect")
ATTRIBUTES = ("NAME", "SUFFIXES")


def _missing_verbs(module: Any) -> List[str]:
    return [v for v in VERBS if not callable(getattr(module, v, None))]


def _attribute_problems(name: str, module: Any, suffixes: Tuple[str, ...]) -> List[str]:
    """How ``module``'s ``NAME`` / ``SUFFIXES`` differ from its registration (empty when they agree)."""
    problems = [f"no {a}" for a in ATTRIBUTES if not hasattr(module, a)]
    if hasattr(module, "NAME") and module.NAME != name:
        problems.append(f"NAME {module.NAME!r} (registered as {name!r})")
    if hasattr(module, "SUFFIXES") and tuple(s.lower() for s in module.SUFFIXES) != suffixes:
        problems.append(f"SUFFIXES {tuple(module.SUFFIXES)} (registered with {suffixes})")
    return problems


def register(name: str, module: Any, suffixes: Sequence[str] = ()) -> None:
    """Register a format object/module ``module`` (with ``load``, ``save``, ``detect``, ``NAME`` equal to
    ``name`` and ``SUFFIXES`` equal to ``suffixes``) under ``name``.

    Raises:
        ValueError: ``name`` is already registered.
        TypeError: ``module`` lacks one of the verbs, or its ``NAME`` / ``SUFFIXES`` differ.
    """
    if name in _REGISTRY:
        raise ValueError(f"format {name!r} is already registered")
    missing = _missing_verbs(module)
    if missing:
        raise TypeError(f"format {name!r} must offer load/save/detect; missing {missing}")
    declared = tuple(s.lower() for s in suffixes)
    problems = _attribute_problems(name, module, declared)
    if problems:
        raise TypeError(f"format {name!r} must declare NAME and SUFFIXES as registered; found {'; '.join(problems)}")
    _REGISTRY[name] = module
    _SUFFIXES[name] = declared


def register_lazy(name: str, module_path: str, suffixes: Sequence[str] = ()) -> None:
    """Register ``name`` to be imported from ``module_path`` on first use (ValueError if taken)."""
    if name in _REGISTRY:
        raise ValueError(f"format {name!r} is already registered")
    _REGISTRY[name] = module_path
    _SUFFIXES[name] = tuple(s.lower() for s in suffixes)


def available() -> List[str]:
    """The registered format names, in registration order."""
    return list(_REGISTRY)


def get_format(name: str) -> Any:
    """The format module registered as ``name``.

    Raises:
        NotImplementedError: unknown name (listing the known ones), or a lazily registered module
            that does not exist (naming it).
    """
    if name not in _REGISTRY:
        raise NotImplementedError(f"unknown file format {name!r}; known formats: {available()}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        try:
            module = importlib.import_module(entry)
        except ModuleNotFoundError as exc:
            if exc.name and (exc.name == entry or entry.startswith(exc.name + ".")):
                raise NotImplementedError(
                    f"format {name!r} is not available: its module {entry!r} does not exist"
                ) from exc
            raise NotImplementedError(
                f"format {name!r} is not available: importing {entry!r} needs the missing package {exc.name!r}"
            ) from exc
        missing = _missing_verbs(module)
        if missing:
            raise NotImplementedError(f"format {name!r}: module {entry!r} lacks {missing}")
        problems = _attribute_problems(name, module, _SUFFIXES[name])
        if problems:
            raise NotImplementedError(f"format {name!r}: module {entry!r} declares {'; '.join(problems)}")
        _REGISTRY[name] = module
        entry = module
    return entry


def format_for_suffix(path: PathLike) -> str:
    """The format name for ``path``'s suffix (longest match wins: ``.weights.h5`` before ``.h5``).

    Raises:
        NotImplementedError: no format claims the suffix (naming it and the known suffixes).
    """
    low = os.fspath(path).lower()
    best, best_len = None, -1
    for name, suffixes in _SUFFIXES.items():
        for s in suffixes:
            if low.endswith(s) and len(s) > best_len:
                best, best_len = name, len(s)
    if best is None:
        known = sorted({s for ss in _SUFFIXES.values() for s in ss})
        raise NotImplementedError(f"no file format for {os.fspath(path)!r} (by its suffix); known suffixes: {known}")
    return best


def detect_format(path: PathLike) -> str:
    """The format of an existing file, by content first (each format's ``detect``), then by suffix.

    Raises:
        FileNotFoundError: the file does not exist.
        FormatError: no format recognises it.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"no such file: {p!r}")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    # The suffix's own format gets the first look (it disambiguates .h5 vs .weights.h5).
    order = list(_REGISTRY)
    try:
        first = format_for_suffix(p)
        order.remove(first)
        order.insert(0, first)
    except NotImplementedError:
        pass
    for name in order:
        try:
            fmt = get_format(name)
        except NotImplementedError:
            continue
        try:
            if fmt.detect(p):
                return name
        except Exception:  # a format's detect must never break the detection of the others
            continue
    raise FormatError(p, f"unrecognised file format (first bytes {head[:8].hex(' ')}); known formats: {available()}")


register_lazy("keras-h5", "lstm_bridge.formats.keras_h5", (".h5", ".hdf5"))
register_lazy("keras-weights-h5", "lstm_bridge.formats.keras_weights", (".weights.h5",))
register_lazy("keras", "lstm_bridge.formats.keras_zip", (".keras",))
register_lazy("mindspore-ckpt", "lstm_bridge.formats.mindspore_ckpt", (".ckpt",))
register_lazy("torch", "lstm_bridge.formats.torch_pt", (".pt", ".pth"))
register_lazy("safetensors", "lstm_bridge.formats.safetensors_file", (".safetensors",))
register_lazy("onnx", "lstm_bridge.formats.onnx", (".onnx",))
