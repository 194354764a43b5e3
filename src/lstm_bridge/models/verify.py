"""``lstm-bridge verify A B`` for whole Keras models (:func:`compare_models`): final predictions and every
layer's outputs on padded batches (right-padded, lengths drawn per row with a seed).

``A`` is a Keras full-model file (``.keras`` / ``.h5``), run with :func:`lstm_bridge.load_model`. ``B`` is:

* another Keras full-model file (the same model saved by another generation or format): final predictions
  and the outputs of every layer the two share by name (each call of a shared layer);
* the folder ``lstm-bridge port`` wrote (``model.py`` + ``weights.safetensors``): its ``load()`` is run;
  final predictions and the outputs of every layer attribute (named after the Keras layer);
* an ``.onnx`` file (a whole-model export, ``lstm-bridge convert model.keras model.onnx``) run with
  onnxruntime: final predictions only (an ONNX graph has no per-layer outputs to compare).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

__all__ = ["ModelComparison", "ModelMismatch", "compare_models", "is_port_folder"]


class ModelMismatch(ValueError):
    """B is not the same model as A: it does not run on A's inputs, or returns another number of outputs."""


@dataclass
class ModelComparison:
    """Max |difference| per model output (``outputs``) and per layer (``layers``: name -> value; inf when the
    shapes differ), the padded batch's lengths per input row, and what B was."""

    kind: str
    outputs: List[float]
    layers: Dict[str, float] = field(default_factory=dict)
    lengths: List[List[int]] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.outputs + list(self.layers.values()), default=0.0)


def is_port_folder(path: str) -> bool:
    """A folder written by ``lstm-bridge port`` (``model.py`` beside ``weights.safetensors``)."""
    from .port import MODEL_FILE, WEIGHTS_FILE

    return os.path.isdir(path) and all(os.path.isfile(os.path.join(path, f)) for f in (MODEL_FILE, WEIGHTS_FILE))


def _diff(a: Any, b: Any) -> float:
    x = np.asarray(a.detach().numpy() if isinstance(a, torch.Tensor) else a, np.float64)
    y = np.asarray(b.detach().numpy() if isinstance(b, torch.Tensor) else b, np.float64)
    if x.shape != y.shape:
        return float("inf")
    if not x.size:
        return 0.0
    d = np.abs(x - y)
    d[np.isnan(x) & np.isnan(y)] = 0.0
    return float(np.max(np.where(np.isnan(d), np.inf, d)))


def _flat(v: Any) -> List[Any]:
    if isinstance(v, (list, tuple)):
        return [y for x in v for y in _flat(x)]
    return [v]


def _recorded(model: torch.nn.Module, modules: Dict[str, Any], xs: List[torch.Tensor]) -> Tuple[List[Any], Dict]:
    """``(final outputs, {name: [outputs of each call]})`` of ``model(*xs)`` with hooks on ``modules``."""
    from .port import _record

    seen, handles = _record(modules)
    try:
        with torch.no_grad():
            out = model(*xs)
    finally:
        for h in handles:
            h.remove()
    return _flat(out), seen


def _layer_modules(model: Any) -> Dict[str, Any]:
    """Every layer of a KerasModel by Keras name (nested models' layers included)."""
    from .port import _all_modules

    return {name: m for name, m, _ in _all_modules(model)}


def compare_models(a: str, b: str, seed: int = 0) -> ModelComparison:
    """Compare the whole Keras model ``a`` with ``b`` (a Keras file, a port folder or an ``.onnx``) on a padded
    batch drawn with ``seed``.

    Raises:
        ModelMismatch: B does not run on A's inputs or returns another number of outputs.
        ValueError: a file cannot be read (FormatError, UnsupportedLayerError, ...).
    """
    from .files import read_keras_file
    from .load import load_model
    from .port import _import_source, _input_specs, padded_batch
    from .port_source import _ident

    model_a = load_model(a)
    kf = read_keras_file(a)
    try:
        config = kf.model_config
    finally:
        kf.close()
    specs = _input_specs(model_a, config)
    xs, lengths = padded_batch(specs, seed)
    mods_a = _layer_modules(model_a)
    out_a, seen_a = _recorded(model_a, mods_a, xs)
    layers: Dict[str, float] = {}
    if os.fspath(b).lower().endswith(".onnx") and os.path.isfile(b):
        import onnxruntime as ort

        sess = ort.InferenceSession(os.fspath(b), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        if len(names) != len(xs):
            raise ModelMismatch(f"{b} takes {len(names)} inputs {names}; {a} takes {len(xs)}")
        try:
            out_b: List[Any] = list(sess.run(None, {n: x.numpy() for n, x in zip(names, xs)}))
        except Exception as exc:  # onnxruntime's own error types
            raise ModelMismatch(f"{b} does not run on {a}'s inputs: {exc}") from exc
        kind = "onnx (onnxruntime; final predictions only)"
    elif is_port_folder(b):
        from .port import MODEL_FILE, WEIGHTS_FILE

        mod = _import_source(os.path.join(b, MODEL_FILE), "verify_" + _ident(os.path.basename(os.path.abspath(b))))
        model_b = mod.load(os.path.join(b, WEIGHTS_FILE)).eval()
        mods_b = {name: getattr(model_b, _ident(name)) for name in mods_a if hasattr(model_b, _ident(name))}
        out_b, seen_b = _run_b(model_b, mods_b, xs, a, b)
        layers = _layer_diffs(seen_a, seen_b)
        kind = "port folder (model.py + weights.safetensors)"
    else:
        model_b = load_model(b)
        mods_b = _layer_modules(model_b)
        out_b, seen_b = _run_b(model_b, {n: m for n, m in mods_b.items() if n in mods_a}, xs, a, b)
        layers = _layer_diffs(seen_a, seen_b)
        kind = "Keras model file"
    if len(out_b) != len(out_a):
        raise ModelMismatch(f"{b} returns {len(out_b)} outputs; {a} returns {len(out_a)}")
    return ModelComparison(kind, [_diff(x, y) for x, y in zip(out_a, out_b)], layers, lengths)


def _run_b(model: Any, modules: Dict[str, Any], xs: List[torch.Tensor], a: str, b: str) -> Tuple[List[Any], Dict]:
    try:
        return _recorded(model, modules, xs)
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise ModelMismatch(f"{b} does not run on {a}'s inputs: {exc}") from exc


def _layer_diffs(seen_a: Dict[str, List[List[Any]]], seen_b: Dict[str, List[List[Any]]]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for name, calls_a in seen_a.items():
        calls_b = seen_b.get(name)
        if calls_b is None:
            continue
        for k, (ta, tb) in enumerate(zip(calls_a, calls_b)):
            key = name if len(calls_a) == 1 else f"{name}@{k}"
            if len(ta) != len(tb):
                out[key] = float("inf")
                continue
            out[key] = max((_diff(x, y) for x, y in zip(ta, tb)), default=0.0)
        if len(calls_a) != len(calls_b):
            out[f"{name} (calls)"] = float("inf")
    return out


def describe_b(path: str) -> Optional[str]:
    """What kind of B ``path`` is for a whole-model comparison, or None when it is not one."""
    if is_port_folder(path):
        return "port"
    if os.fspath(path).lower().endswith(".onnx"):
        return "onnx"
    return None
