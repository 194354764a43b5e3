"""Every layer of a whole Keras model for ``lstm-bridge inspect`` (:func:`summarize`): name, class, output
shape (measured on a padded batch with :func:`lstm_bridge.load_model`), the settings that change what it
computes or which steps count (activations, ``mask_zero``, Masking's ``mask_value``, merge modes, ...),
whether its output carries a Keras mask, and the Keras generation of the file."""

from __future__ import annotations

from typing import Any, Dict, List

import torch

__all__ = ["summarize"]

_SETTINGS = (
    "activation",
    "recurrent_activation",
    "mask_zero",
    "mask_value",
    "merge_mode",
    "return_sequences",
    "return_state",
    "go_backwards",
    "reset_after",
    "padding",
    "strides",
    "dilation_rate",
    "pool_size",
    "axis",
    "axes",
    "rate",
    "units",
    "filters",
    "kernel_size",
    "input_dim",
    "output_dim",
    "target_shape",
    "dims",
    "n",
    "size",
    "cropping",
    "keepdims",
)


def _settings(cfg: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key in _SETTINGS:
        if key not in cfg:
            continue
        v = cfg[key]
        if isinstance(v, dict):  # a serialized activation / nested object
            v = v.get("config", v.get("class_name")) if not isinstance(v.get("config"), dict) else v.get("class_name")
        out[key] = v
    if isinstance(cfg.get("layer"), dict):  # Bidirectional / TimeDistributed: the wrapped layer
        inner = cfg["layer"]
        inner_settings = ", ".join(f"{k}={v}" for k, v in _settings(inner.get("config") or {}).items())
        out["layer"] = f"{inner.get('class_name')}({inner_settings})"
    return out


def _entries(config: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for e in (config.get("config") or {}).get("layers") or []:
        if not isinstance(e, dict):
            continue
        name = e.get("name") or (e.get("config") or {}).get("name")
        out[str(name)] = e
        if e.get("class_name") in ("Functional", "Model", "Sequential"):
            out.update(_entries(e))
    return out


def _every_layer(model: Any) -> List[Any]:
    """``(name, module, class)`` of every layer in model order, a nested model followed by its own layers."""
    from .graph import KerasModel

    out: List[Any] = []
    for name, key, cls in model.entries:
        m = model.modules_by_name[key]
        out.append((name, m, cls))
        if isinstance(m, KerasModel):
            out += _every_layer(m)
    return out


def summarize(path: str, seed: int = 0) -> Dict[str, Any]:
    """``{"generation", "keras_version", "inputs", "layers": [{name, class, output_shape, settings, masked}]}``
    of the Keras full-model file ``path``; output shapes are ``None``-free shapes of a padded batch (batch 4),
    one list per call (``[]`` for a nested model, whose own layers follow it)."""
    from .files import read_keras_file
    from .load import load_model
    from .port import _all_modules, _input_specs, _record, padded_batch

    model = load_model(path)
    kf = read_keras_file(path)
    try:
        config, generation, version = kf.model_config, kf.generation, kf.version
    finally:
        kf.close()
    specs = _input_specs(model, config)
    xs, lengths = padded_batch(specs, seed)
    mods = {name: m for name, m, _ in _all_modules(model)}
    masked: Dict[str, bool] = {}
    originals = {}
    for name, m in mods.items():
        if hasattr(m, "compute_mask"):
            fn = m.compute_mask

            def wrapped(inputs: Any, mask: Any = None, fn: Any = fn, name: str = name) -> Any:
                r = fn(inputs, mask)
                masked[name] = masked.get(name, False) or any(
                    isinstance(x, torch.Tensor) for x in (r if isinstance(r, (list, tuple)) else [r])
                )
                return r

            originals[name] = m
            m.compute_mask = wrapped
    seen, handles = _record(mods)
    try:
        with torch.no_grad():
            model(*xs)
    finally:
        for h in handles:
            h.remove()
        for m in originals.values():
            del m.compute_mask
    entries = _entries(config)
    layers: List[Dict[str, Any]] = []
    for name, _m, cls in _every_layer(model):
        calls = seen.get(name) or []
        shapes = [[list(t.shape) for t in outs] for outs in calls]
        entry = entries.get(name) or {}
        layers.append(
            {
                "name": name,
                "class": str(entry.get("class_name") or cls),
                "output_shape": shapes[0] if len(shapes) == 1 else shapes,
                "settings": _settings(entry.get("config") or {}),
                "masked_output": bool(masked.get(name, False)),
            }
        )
    return {
        "keras_generation": generation,
        "keras_version": version,
        "inputs": [{"name": n, "shape": list(s), "dtype": d} for n, s, d, _ in specs],
        "padded_batch_lengths": lengths,
        "layers": layers,
    }
