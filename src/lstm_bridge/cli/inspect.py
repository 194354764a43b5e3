"""``lstm-bridge inspect FILE``: layers, shapes, gate layout, framework and version, semantics."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

import numpy as np

from ._common import EXIT_OK, Output, load_model

HELP = (
    "show a model file's layers (with mask_zero / Masking and activations), weight shapes, gate layout, "
    "framework/version and the semantics of its LSTM, GRU and simple-RNN layers"
)
DESCRIPTION = (
    HELP
    + """.

Reads Keras .h5 / .weights.h5 / .keras, MindSpore .ckpt, PyTorch .pt/.pth and .safetensors without
TensorFlow or MindSpore. For Keras files it says which hard_sigmoid the file means (decided by the
writer's keras_version: 1.x / 2.x -> clip(0.2x+0.5, 0, 1), 3.x -> relu6(x+3)/6), and each GRU's form
(reset_after=True: PyTorch / MindSpore's; reset_after=False: Keras <= 2.3 / TF 1.x, which they cannot hold).
Exit code 3 when the file cannot be read."""
)

_LAYOUT = {
    "keras": "Keras: kernel (I, 4u), recurrent_kernel (u, 4u), bias (4u,); gates i, f, c, o",
    "torch": "PyTorch = MindSpore: weight_ih_l{k} (4H, I), weight_hh_l{k} (4H, H), bias_ih/bias_hh (4H,); "
    "gates i, f, g, o",
}
#: the same for the other cells of the recurrent family
_FAMILY_LAYOUT = {
    ("keras", "GRU"): "Keras GRU: kernel (I, 3u), recurrent_kernel (u, 3u), bias (2, 3u) if reset_after else (3u,); "
    "gates z, r, h",
    ("keras", "RNN"): "Keras SimpleRNN: kernel (I, u), recurrent_kernel (u, u), bias (u,)",
    ("torch", "GRU"): "GRU (PyTorch = MindSpore): weight_ih_l{k} (3H, I), weight_hh_l{k} (3H, H), bias_ih/bias_hh "
    "(3H,); gates r, z, n",
    ("torch", "RNN"): "RNN (PyTorch = MindSpore): weight_ih_l{k} (H, I), weight_hh_l{k} (H, H), bias_ih/bias_hh (H,)",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "inspect", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("file", help="the model file")
    p.add_argument("--json", action="store_true", help="print a JSON document instead of tables")
    p.set_defaults(run=run)


def describe(mf: Any) -> Dict[str, Any]:
    """A JSON-able description of a loaded ModelFile (what ``inspect`` prints)."""
    entries = mf.recurrent_entries() if hasattr(mf, "recurrent_entries") else mf.lstm_layers()
    lstm = {e.name: e for e in entries}
    layers: List[Dict[str, Any]] = []
    for e in mf.layers:
        item: Dict[str, Any] = {
            "name": e.name,
            "kind": e.kind,
            "weights": {
                k: {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for k, v in e.weights.items()
            },
        }
        details = _layer_details(e)
        if e.name in lstm:
            l = lstm[e.name]
            sem = {k: v for k, v in (l.semantics or {}).items() if k != "backward_semantics" and _jsonable(v)}
            cell = str(getattr(l, "cell", "LSTM"))
            if cell == "GRU":
                sem["reset_after"] = bool(l.reset_after)
            record = {
                "cell": cell,
                "input_size": l.input_size,
                "hidden_size": l.hidden_size,
                "num_layers": l.num_layers,
                "bidirectional": l.bidirectional,
                "has_bias": l.has_bias,
                "semantics": sem,
            }
            item["recurrent"] = record
            if cell == "LSTM":
                item["lstm"] = record
            for key in ("activation", "recurrent_activation"):  # as this file means them (resolved names)
                if key in sem:
                    details[key] = sem[key]
        if details:
            item["details"] = details
        layers.append(item)
    side = "keras" if mf.framework == "keras" else "torch"
    cells = list(dict.fromkeys(str(getattr(e, "cell", "LSTM")) for e in entries))
    layout = _LAYOUT[side]
    family = [_FAMILY_LAYOUT[(side, c)] for c in cells if c != "LSTM"]
    if family:
        layout = "; ".join(([layout] if "LSTM" in cells else []) + family)
    info = {
        "file": mf.path,
        "format": mf.format,
        "framework": mf.framework,
        "version": mf.version,
        "gate_layout": layout,
        "layers": layers,
    }
    if mf.framework == "keras":
        info["keras_generation"] = mf.keras_version
        info["hard_sigmoid"] = mf.hard_sigmoid
    return info


#: per-layer settings that change what a non-LSTM layer computes or which steps count (``inspect`` shows them)
_DETAIL_KEYS = ("mask_zero", "mask_value", "activation", "recurrent_activation")


def _layer_details(e: Any) -> Dict[str, Any]:
    """The settings of :data:`_DETAIL_KEYS` a layer's config records (an Embedding's ``mask_zero``, a
    Masking layer's ``mask_value``, a Dense layer's ``activation``), JSON-able (a serialized object as its
    ``class_name``/registered name)."""
    cfg = e.config if isinstance(getattr(e, "config", None), dict) else {}
    out: Dict[str, Any] = {}
    for key in _DETAIL_KEYS:
        if key not in cfg:
            continue
        value = cfg[key]
        if isinstance(value, dict):  # Keras 3 serializes a custom activation as {"class_name": ..., ...}
            value = value.get("registered_name") or value.get("class_name") or str(value)
        out[key] = value if _jsonable(value) else str(value)
    if e.kind == "Masking" and "mask_value" not in out:
        out["mask_value"] = 0.0  # Keras's default
    return out


def _details_text(details: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items()) or "-"


_QUIET = {"keras_version", "framework", "units", "use_bias", "implementation", "return_sequences_unknown"}
_SHOW_FALSE = {"return_sequences", "reset_after"}


def _worth_showing(key: str, value: Any) -> bool:
    """Options that change what the layer computes or returns (defaults that do not are left out)."""
    if key in _QUIET or value is None:
        return False
    if value is False or value == 0.0:
        return key in _SHOW_FALSE
    return True


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str, list, dict))


def run(args: argparse.Namespace, out: Output) -> int:
    mf = load_model(args.file)
    info = describe(mf)
    whole = _whole_model(args.file)
    if whole is not None:
        info["model"] = whole
    if args.json:
        out.line(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    out.line(f"file: {info['file']}")
    out.line(f"format: {info['format']}   framework: {info['framework']}   version: {info['version'] or 'unknown'}")
    if "hard_sigmoid" in info:
        out.line(f"keras generation: {info['keras_generation']}   'hard_sigmoid' means {info['hard_sigmoid']}")
    masking = [
        f"{item['name']} ({_details_text(item['details'])})"
        for item in info["layers"]
        if {"mask_zero", "mask_value"} & set(item.get("details", {})) and item["details"].get("mask_zero", True)
    ]
    if masking:
        out.line("masking: " + "; ".join(masking) + " - padded steps are skipped by the layers after it")
    out.line(f"gate layout: {info['gate_layout']}")
    rows = []
    for item in info["layers"]:
        shapes = ", ".join(f"{k} {tuple(v['shape'])}" for k, v in item["weights"].items()) or "-"
        rows.append((item["name"] or "(root)", item["kind"], _details_text(item.get("details", {})), shapes))
    out.table("layers", ("name", "kind", "settings", "weights"), rows)
    if whole is not None:
        _print_whole_model(whole, out)
    lstm_rows = []
    cells = set()
    for item in info["layers"]:
        if "recurrent" not in item:
            continue
        l = item["recurrent"]
        cells.add(l["cell"])
        sem = dict(l["semantics"])
        sem.pop("cell", None)
        gate = sem.pop("recurrent_activation", "sigmoid")
        acts = f"{gate} / {sem.pop('activation', 'tanh')}" if l["cell"] != "RNN" else f"- / {sem.pop('activation')}"
        flags = ", ".join(f"{k}={v}" for k, v in sem.items() if _worth_showing(k, v)) or "-"
        lstm_rows.append(
            (
                item["name"] or "(root)",
                l["input_size"],
                l["hidden_size"],
                l["num_layers"],
                "yes" if l["bidirectional"] else "no",
                "yes" if l["has_bias"] else "no",
                acts,
                flags,
            )
        )
    if lstm_rows and cells == {"LSTM"}:
        out.table(
            "LSTM semantics",
            ("name", "input", "hidden", "layers", "bidirectional", "bias", "gate / cell activation", "options"),
            lstm_rows,
        )
    elif lstm_rows:
        cell_of = {
            item["name"] or "(root)": item["recurrent"]["cell"] for item in info["layers"] if "recurrent" in item
        }
        out.table(
            "recurrent semantics (LSTM, GRU, simple RNN)",
            ("name", "cell", "input", "hidden", "layers", "bidirectional", "bias", "gate / activation", "options"),
            [(row[0], cell_of[row[0]], *row[1:]) for row in lstm_rows],
        )
    else:
        out.line("no LSTM, GRU or simple-RNN layers")
    return EXIT_OK


def _whole_model(path: str) -> Any:
    """Every layer of a whole Keras model (:func:`lstm_bridge.models.summary.summarize`), or None for other
    files (and for models load_model cannot build: the file's own layer list above still shows)."""
    from ..models.onnx_export import is_whole_model

    if not is_whole_model(path):
        return None
    from ..models.summary import summarize

    try:
        return summarize(path)
    except (ValueError, KeyError, IndexError, RuntimeError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _print_whole_model(whole: Dict[str, Any], out: Output) -> None:
    if "error" in whole:
        out.line(f"whole model: not loadable by lstm_bridge.load_model ({whole['error']})")
        return
    ins = ", ".join(f"{i['name']} {tuple(i['shape'])} {i['dtype']}" for i in whole["inputs"])
    out.line(f"whole model (Keras generation {whole['keras_generation']}): inputs {ins}")
    rows = []
    for item in whole["layers"]:
        settings = ", ".join(f"{k}={v}" for k, v in item["settings"].items()) or "-"
        rows.append(
            (item["name"], item["class"], str(item["output_shape"]), settings, "yes" if item["masked_output"] else "no")
        )
    out.table(
        "model layers (output shapes on a padded batch of 4 rows)",
        ("name", "class", "output shape", "settings", "mask out"),
        rows,
    )
