"""The Keras model planner: turns any :class:`ModelFile` into the layer configs and weights of a Keras 2
(tf_keras) or Keras 3 model, for the Keras writers (:mod:`.keras_h5`, :mod:`.keras_weights`,
:mod:`.keras_zip`).

Configs written for a generation are those measured in docs/spec/keras_lstm.md §7.1 (tf_keras 2.21: ``time_major``
and ``implementation`` present, dtype a string) and §7.4 (Keras 3.15: no ``time_major`` /
``implementation``, dtype a ``DTypePolicy`` dict, ``seed``). ``"hard_sigmoid"`` means different functions
in both generations (docs/spec/keras_lstm.md §2.2), so a layer with one generation's hard sigmoid cannot be written for
the other: that is an error, never a silent change. What a generation can hold is decided by
:mod:`lstm_bridge.targets` (the writers ask it before planning); the planner only builds.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import activations as _act, weights as _w
from ..weights import family as _fam_w
from .common import SaveReport
from .keras_config import layer_configs, layer_name
from .model import FormatError, LayerEntry, LSTMLayer, ModelFile, is_recurrent_entry, keras_generation, sublayer_config

#: cell kind -> the Keras layer class written for it, and that class's cell name (weight paths)
KERAS_CLASS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}
CELL_NAME = {"LSTM": "lstm_cell", "GRU": "gru_cell", "RNN": "simple_rnn_cell"}
#: planned recurrent classes -> cell kind
_CLASS_CELL = {"LSTM": "LSTM", "CuDNNLSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}


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
        return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
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
            raise FormatError(
                None,
                f"{where}: uses the Keras-2 hard_sigmoid clip(0.2x+0.5, 0, 1); Keras 3 reads "
                "'hard_sigmoid' as relu6(x+3)/6, so it cannot be written for Keras 3 "
                "(write a tf_keras .h5 instead)",
            )
    elif resolved == "hard_sigmoid_keras3":
        raise FormatError(
            None,
            f"{where}: uses the Keras-3 hard_sigmoid relu6(x+3)/6; tf_keras reads "
            "'hard_sigmoid' as clip(0.2x+0.5, 0, 1), so it cannot be written for tf_keras "
            "(write a Keras 3 .keras instead)",
        )
    try:  # each generation's own names (activations.KERAS2_NAMES / KERAS3_NAMES)
        return _act.keras_name(_act.by_name(resolved), gen)
    except ValueError as exc:
        raise FormatError(None, f"{where}: {exc}") from None


def lstm_config(
    gen: int,
    name: str,
    units: int,
    *,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    use_bias: bool = True,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    stateful: bool = False,
    unroll: bool = False,
    zero_output_for_mask: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    implementation: int = 2,
    time_major: bool = False,
    unit_forget_bias: bool = True,
    where: str = "",
    cell: str = "LSTM",
    reset_after: bool = True,
) -> Dict[str, Any]:
    """An LSTM (``cell="LSTM"``), GRU (``"GRU"``) or SimpleRNN (``"RNN"``) layer ``config`` dict with exactly
    the keys (and key order) of generation ``gen`` (docs/spec/keras_lstm.md §7.1 / §7.4 for the LSTM; the GRU
    drops ``unit_forget_bias`` and adds ``reset_after`` (tf_keras after ``implementation``, Keras 3 before
    ``seed``); the SimpleRNN has neither, nor ``recurrent_activation``, ``implementation`` or a Keras 3
    ``seed``: what tf_keras 2.21 and Keras 3.15 write, measured with ``tools/golden_family_files.py``).
    Activations are *resolved* names (see :func:`target_activation`). What a generation cannot hold
    (``time_major`` in Keras 3, ...) is refused before, by :mod:`lstm_bridge.targets`."""
    where = where or f"layer {name!r}"
    act = target_activation(activation, gen, where)
    rec = target_activation(recurrent_activation, gen, where) if cell != "RNN" else ""
    cfg: Dict[str, Any] = {
        "name": name,
        "trainable": True,
        "dtype": _dtype_value(gen),
        "return_sequences": bool(return_sequences),
        "return_state": bool(return_state),
        "go_backwards": bool(go_backwards),
        "stateful": bool(stateful),
        "unroll": bool(unroll),
    }
    if gen == 3:  # no time_major: the writers asked lstm_bridge.targets, which refuses it for Keras 3
        cfg["zero_output_for_mask"] = bool(zero_output_for_mask)
    else:
        cfg["time_major"] = bool(time_major)
    cfg.update(
        {
            "units": int(units),
            "activation": act,
            "recurrent_activation": rec,
            "use_bias": bool(use_bias),
            "kernel_initializer": _initializer(gen, "GlorotUniform", {"seed": None}),
            "recurrent_initializer": _initializer(
                gen, "Orthogonal", {"gain": 1.0, "seed": None} if gen == 2 else {"seed": None, "gain": 1.0}
            ),
            "bias_initializer": _initializer(gen, "Zeros", {}),
            "unit_forget_bias": bool(unit_forget_bias),
            "kernel_regularizer": None,
            "recurrent_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "recurrent_constraint": None,
            "bias_constraint": None,
            "dropout": float(dropout),
            "recurrent_dropout": float(recurrent_dropout),
        }
    )
    if cell == "RNN":
        del cfg["recurrent_activation"]
    if cell != "LSTM":
        del cfg["unit_forget_bias"]
    if gen == 3:
        if cell == "GRU":
            cfg["reset_after"] = bool(reset_after)
        if cell != "RNN":
            cfg["seed"] = None
    else:
        if cell != "RNN":
            cfg["implementation"] = int(implementation)
        if cell == "GRU":
            cfg["reset_after"] = bool(reset_after)
        if zero_output_for_mask:
            cfg["zero_output_for_mask"] = True
    return cfg


def _layer_entry(gen: int, class_name: str, config: Dict[str, Any], input_shape: Optional[List[Any]]) -> Dict[str, Any]:
    e: Dict[str, Any] = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if gen == 3 or class_name != "InputLayer":
        if input_shape is not None and class_name != "InputLayer":
            e["build_config"] = {"input_shape": list(input_shape)}
    e["name"] = config["name"]
    return e


def _lstm_kwargs_from_semantics(sem: Dict[str, Any]) -> Dict[str, Any]:
    keys = (
        "return_sequences",
        "return_state",
        "go_backwards",
        "stateful",
        "unroll",
        "zero_output_for_mask",
        "dropout",
        "recurrent_dropout",
        "implementation",
        "time_major",
        "unit_forget_bias",
    )
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


_NOT_CARRIED_CFG = (
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
)


def _note_dropped_options(report: SaveReport, name: str, cfg: Dict[str, Any]) -> None:
    dropped = [k for k in _NOT_CARRIED_CFG if cfg.get(k) is not None]
    if dropped:
        report.skipped[f"{name} ({', '.join(dropped)})"] = (
            "regularizers/constraints are not carried between Keras generations"
        )


def plan_keras(mf: ModelFile, gen: int, path: str, format_name: str, weights_only: bool = False) -> KerasPlan:
    """Turn ``mf`` into a Keras generation-``gen`` model: the original configs when ``mf`` was written
    by that generation, otherwise a Functional chain ``Input -> layers`` with generated configs.

    Entries the target cannot hold (LSTM cells, loose tensors, layers of unknown classes from the
    other generation) are listed in ``report.skipped`` with the reason. With ``weights_only`` (the
    config is not written) activations are not checked against the target generation; the layers must
    still be Keras 3 layers for ``gen=3`` (:func:`check_weights_only`). Full models are checked by the
    writers (:func:`lstm_bridge.targets.check_model`) before they plan.
    """
    report = SaveReport(path=path, format=format_name)
    if weights_only and gen == 3:
        check_weights_only(mf, "keras3", path)
    if can_copy_config(mf, gen):
        return _plan_verbatim(mf, gen, report)
    return _plan_generated(mf, gen, report, weights_only)


def check_weights_only(mf: ModelFile, target: str, path: Optional[str]) -> None:
    """Ask :mod:`lstm_bridge.targets` whether ``target`` can hold the LSTM layers of ``mf`` in a weights-only
    file: such a file records no activations (the loading model supplies them), so only the layer structure
    counts (Keras 3: no ``time_major``, no flipped Bidirectional). FormatError naming ``path`` otherwise."""
    from .. import targets  # on use: targets asks formats (planner, FormatError) too

    neutral = [
        dataclasses.replace(d, gate="sigmoid", candidate="tanh")
        for d in targets.describe_model_file(mf)
        if d.kind != "LSTMCell"
    ]
    problems = targets.violations(neutral, target)
    if problems:
        raise FormatError(path, f"a weights-only {target} file cannot hold: " + "; ".join(problems))


def can_copy_config(mf: ModelFile, gen: int) -> bool:
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
        if e.kind in ("LSTM", "GRU") and not _standard_lstm_arrays(list(e.weights.values())):
            return False
        if e.kind in ("CuDNNGRU", "CuDNNLSTM"):
            return False
        if e.kind == "Bidirectional" and len(e.weights) not in (4, 6):
            return False
    return True


def _standard_lstm_arrays(arrays: List[Any]) -> bool:
    """Keras's LSTM / GRU arrays ``kernel, recurrent_kernel[, bias]`` (not CuDNNLSTM's / CuDNNGRU's doubled
    ``8H`` / ``6H`` bias, nor Keras 1's twelve / nine arrays)."""
    if len(arrays) == 2:
        return True
    if len(arrays) != 3:
        return False
    return not any(np.ndim(v) == 1 and np.shape(v)[0] == 2 * np.shape(arrays[1])[1] for v in arrays)


def _arrays_and_names(e: LayerEntry) -> Tuple[List[np.ndarray], List[str]]:
    return [np.asarray(v) for v in e.weights.values()], list(e.attrs.get("weight_names") or [])


def _tk_weight_names(pl: PlannedLayer, inner_name: Optional[str] = None) -> List[str]:
    n, k = pl.name, len(pl.arrays)
    if pl.class_name in _CLASS_CELL and k in (2, 3):
        cell = CELL_NAME[_CLASS_CELL[pl.class_name]]
        return [f"{n}/{cell}/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")[:k]]
    if pl.class_name == "Bidirectional" and k in (4, 6):
        inner_cls = str((pl.entry.get("config", {}).get("layer") or {}).get("class_name", "LSTM"))
        cell = CELL_NAME[_CLASS_CELL.get(inner_cls, "LSTM")]
        inner = inner_name or {"lstm_cell": "lstm", "gru_cell": "gru", "simple_rnn_cell": "simple_rnn"}[cell]
        names = []
        for side in ("forward", "backward"):
            names += [f"{n}/{side}_{inner}/{cell}/{w}:0" for w in ("kernel", "recurrent_kernel", "bias")[: k // 2]]
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
        pl = PlannedLayer(
            name=name, class_name=le.get("class_name", ""), entry=le, arrays=arrays, weight_names=[], is_op=is_op
        )
        inner = sublayer_config(le.get("config", {}).get("layer")).get("name")
        pl.weight_names = names if len(names) == len(arrays) and names else _tk_weight_names(pl, inner)
        planned.append(pl)
        report.written.append(name)
    model_config: Dict[str, Any] = copy.deepcopy(mf.model_config or {})
    if gen == 2:
        # a legacy .h5 model_config holds {class_name, config} and layer entries without the saving_lib
        # keys that a tf_keras-written .keras adds (module, registered_name, build_config)
        model_config = {
            "class_name": model_config.get("class_name", "Functional"),
            "config": model_config.get("config"),
        }
        for le in layer_configs(model_config):
            for k in ("module", "registered_name", "build_config"):
                le.pop(k, None)
    mc = model_config.get("config", {})
    model_name = mc.get("name", "model") if isinstance(mc, dict) else "model"
    return KerasPlan(gen, model_name, planned, model_config, report)


def _input_layer(gen: int, name: str, shape: List[Any], dtype: str) -> PlannedLayer:
    cfg: Dict[str, Any] = {
        ("batch_shape" if gen == 3 else "batch_input_shape"): list(shape),
        "dtype": dtype,
        "sparse": False,
        "ragged": False,
        "name": name,
        "optional": False,
    }
    return PlannedLayer(
        name=name,
        class_name="InputLayer",
        entry=_layer_entry(gen, "InputLayer", cfg, None),
        input_shape=None,
        output_dim=shape[-1] if len(shape) == 3 else None,
    )


@dataclass
class _Chain:
    """The state of a generated chain while it is planned: names taken, the layers so far (``body``, no
    InputLayer yet), the sequence length and feature size flowing between them, the source's input."""

    gen: int
    report: SaveReport
    weights_only: bool
    used: set = field(default_factory=set)
    body: List[PlannedLayer] = field(default_factory=list)
    seq_len: Any = None
    prev_dim: Optional[int] = None
    first_input: Optional[Tuple[List[Any], str, str]] = None


def _plan_generated(mf: ModelFile, gen: int, report: SaveReport, weights_only: bool = False) -> KerasPlan:
    """A Functional chain ``Input -> layers`` with configs generated for generation ``gen``."""
    chain = _Chain(gen, report, weights_only)
    lstm_by_entry = _lstm_layers_by_entry(mf)
    for e in mf.layers:
        _plan_entry(mf, e, lstm_by_entry.get(id(e)), chain)
    if not chain.body:
        raise FormatError(report.path, "nothing to write: the model file has no LSTM layer a Keras model can hold")
    if _holds_weights_only(mf):
        _chain_sequences(chain.body, report)  # a config would have kept the source's options
    planned = [_chain_input(chain)] + chain.body
    mc = (mf.model_config or {}).get("config")
    model_name = mc.get("name") if isinstance(mc, dict) else None
    model_name = model_name or "lstm_bridge_model"
    return KerasPlan(gen, model_name, planned, functional_config(gen, model_name, planned), report)


def _lstm_layers_by_entry(mf: ModelFile) -> Dict[int, LSTMLayer]:
    """``id(entry) -> LSTMLayer`` for the recurrent entries of ``mf`` (the order of ``mf.recurrent_entries()``)."""
    entries = [e for e in mf.layers if is_recurrent_entry(e)]
    if not entries:
        return {}
    return {id(e): layer for e, layer in zip(entries, mf.recurrent_entries())}


def _holds_weights_only(mf: ModelFile) -> bool:
    """A Keras source without layer configs (a weights file): its LSTM options are Keras's defaults."""
    return (
        mf.framework == "keras"
        and not mf.model_config
        and any(
            "return_sequences"
            not in (sublayer_config(e.config.get("layer")) if e.kind == "Bidirectional" else e.config or {})
            for e in mf.layers
            if e.kind in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")
        )
    )


def _plan_entry(mf: ModelFile, e: LayerEntry, layer: Optional[LSTMLayer], chain: _Chain) -> None:
    """Add what entry ``e`` becomes to ``chain`` (an LSTM, a Dense/Embedding, the input shape), or list
    it in the report as not carried."""
    bis = e.config.get("batch_input_shape") if isinstance(e.config, dict) else None
    if chain.first_input is None and not chain.body and isinstance(bis, list) and len(bis) >= 2:
        chain.seq_len = bis[1]  # a Sequential without InputLayer: the first layer carries the input shape
    if e.kind == "InputLayer" and mf.framework == "keras":
        _note_input(e, chain)
        return
    if layer is not None:
        _plan_lstm_entry(mf, e, layer, chain)
        return
    if mf.framework == "keras" and e.kind in ("Dense", "Embedding"):
        pl = _convert_simple_layer(e, chain.gen, chain.used, chain.seq_len, chain.prev_dim, chain.report)
        if pl is not None:
            chain.body.append(pl)
            chain.prev_dim = pl.output_dim
            chain.report.written.append(e.name)
        return
    if not e.weights:
        # weightless layers: inputs and mask ops are regenerated; others (Dropout, ...) are reported
        if e.config and e.kind not in ("NotEqual", "InputLayer"):
            chain.report.skipped[e.name] = f"{e.kind} layer is not carried into a generated Keras model"
        return
    chain.report.skipped[e.name or "<root>"] = (
        f"{e.kind} tensors {list(e.weights)} have no place in a Keras model generated from LSTM weights"
    )


def _note_input(e: LayerEntry, chain: _Chain) -> None:
    """Keep the first Keras InputLayer's shape, dtype and name (and its sequence length)."""
    c = e.config
    shape = c.get("batch_input_shape") or c.get("batch_shape")
    if chain.first_input is None and isinstance(shape, list):
        chain.first_input = (shape, str(c.get("dtype", "float32")), c.get("name", e.name))
        if len(shape) >= 2:
            chain.seq_len = shape[1]


def _chain_input(chain: _Chain) -> PlannedLayer:
    """The InputLayer in front of the chain: the source's, else one that fits the first layer."""
    if chain.first_input is not None:
        shape, dtype, in_name = chain.first_input
    elif chain.body[0].class_name == "Embedding":
        shape, dtype, in_name = [None, chain.seq_len], "int32", "tokens"
    else:
        first_shape = chain.body[0].input_shape or [None]
        shape, dtype, in_name = [None, chain.seq_len, first_shape[-1]], "float32", "features"
    return _input_layer(chain.gen, _unique(in_name, chain.used), list(shape), dtype)


def _plan_lstm_entry(mf: ModelFile, e: LayerEntry, layer: LSTMLayer, chain: _Chain) -> None:
    """Add the LSTM / Bidirectional layers of one entry (one per stacked layer) to ``chain``."""
    report = chain.report
    if layer.kind.endswith("Cell"):
        report.skipped[e.name or "<root>"] = f"an {layer.kind} is not a Keras model layer"
        return
    where = f"layer {e.name!r}"
    _check_fits_chain(mf, layer, chain, where)
    for l in range(layer.num_layers):
        pl = _plan_lstm_sublayer(mf, e, layer, l, chain, where)
        chain.body.append(pl)
        chain.prev_dim = pl.output_dim
        if mf.framework == "keras" and keras_generation(mf.version) is not None:
            _note_dropped_options(
                report, e.name, sublayer_config(e.config.get("layer")) if e.kind == "Bidirectional" else e.config
            )
    report.written.append(e.name or "<root>")


def _check_fits_chain(mf: ModelFile, layer: LSTMLayer, chain: _Chain, where: str) -> None:
    """FormatError unless ``layer`` takes the features the chain gives so far."""
    if chain.prev_dim is None or layer.input_size == chain.prev_dim:
        return
    body = chain.body
    if (
        mf.framework == "keras"
        and not mf.model_config
        and body
        and body[-1].class_name == "Bidirectional"
        and 2 * layer.input_size == chain.prev_dim
    ):
        raise FormatError(
            chain.report.path,
            f"{where}: the file holds weights only, and the Bidirectional "
            f"{body[-1].name!r} before it merges with an unknown mode other "
            "than concat; convert the full model file instead",
        )
    raise FormatError(
        chain.report.path,
        f"{where}: takes {layer.input_size} features but the layer before "
        f"it gives {chain.prev_dim}; the layers do not form a chain (pick one)",
    )


def _plan_lstm_sublayer(
    mf: ModelFile, e: LayerEntry, layer: LSTMLayer, l: int, chain: _Chain, where: str
) -> PlannedLayer:
    """Stacked layer ``l`` of ``layer`` as a Keras LSTM (one direction) or Bidirectional (two)."""
    dirs = layer.weights[l]
    sem = dict(layer.semantics)
    kw = _lstm_kwargs_from_semantics(sem)
    if mf.framework != "keras":
        kw["return_sequences"] = True  # MindSpore/PyTorch give the whole sequence
    if chain.weights_only:  # no config is written: the generation's activation names do not matter
        kw["activation"], kw["recurrent_activation"] = "tanh", "sigmoid"
    base = e.name or {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}[layer.cell]
    if layer.num_layers > 1:
        base = f"{base}_l{l}"
    name = _unique(base.replace(".", "_"), chain.used)
    arrays: List[np.ndarray] = []
    for d in dirs:
        arrays += [np.asarray(a) for a in _keras_arrays(layer, d)]
    shape = [None, chain.seq_len, dirs[0].input_size]
    h = dirs[0].hidden_size
    cls = KERAS_CLASS[layer.cell]
    kw["cell"], kw["reset_after"] = layer.cell, layer.reset_after
    if layer.cell != "LSTM":
        kw.pop("unit_forget_bias", None)
    if len(dirs) == 1:
        cfg = lstm_config(chain.gen, name, h, use_bias=layer.has_bias, where=where, **kw)
        pl = PlannedLayer(name, cls, _layer_entry(chain.gen, cls, cfg, shape), arrays, input_shape=shape, output_dim=h)
        pl.weight_names = _tk_weight_names(pl)
        return pl
    inner_name = sublayer_config(e.config.get("layer")).get("name") if mf.framework == "keras" else None
    inner_name = inner_name or f"{cls.lower() if cls != 'SimpleRNN' else 'simple_rnn'}_{name}"
    for prefix in ("forward_", "backward_"):
        if inner_name.startswith(prefix):
            inner_name = inner_name[len(prefix) :]
    merge = sem.get("merge_mode", "concat")
    if mf.framework != "keras":
        kw["go_backwards"] = False
    bcfg = _bidirectional_config(chain.gen, name, inner_name, h, layer.has_bias, merge, shape, kw, where)
    pl = PlannedLayer(
        name,
        "Bidirectional",
        _layer_entry(chain.gen, "Bidirectional", bcfg, shape),
        arrays,
        input_shape=shape,
        output_dim=2 * h if merge in ("concat", None) else h,
    )
    pl.weight_names = _tk_weight_names(pl, inner_name)
    if merge is None:
        raise FormatError(
            chain.report.path, f"{where}: merge_mode=None gives two outputs; it cannot be chained in a generated model"
        )
    return pl


def _keras_arrays(layer: LSTMLayer, d: Any) -> List[Any]:
    """One direction's canonical weights in the Keras layout of the entry's cell (GRU: of its form)."""
    w = d.numpy()
    if layer.cell == "GRU":
        return _fam_w.gru_to_keras(w, reset_after=layer.reset_after)
    if layer.cell == "RNN":
        return _fam_w.rnn_to_keras(w)
    return _w.to_keras(w)


def _bidirectional_config(
    gen: int,
    name: str,
    inner_name: str,
    units: int,
    use_bias: bool,
    merge: Any,
    shape: List[Any],
    kw: Dict[str, Any],
    where: str,
) -> Dict[str, Any]:
    """A Bidirectional layer's ``config`` in generation ``gen``: Keras 3 writes both halves (the backward
    one with ``go_backwards`` flipped), tf_keras the wrapped layer only."""
    cls = KERAS_CLASS[kw.get("cell", "LSTM")]
    if gen == 3:
        kw_f = dict(kw, zero_output_for_mask=bool(kw.get("return_sequences")))
        fwd = lstm_config(3, f"forward_{inner_name}", units, use_bias=use_bias, where=where, **kw_f)
        kw_b = dict(kw_f, go_backwards=not kw_f.get("go_backwards", False))
        bwd = lstm_config(3, f"backward_{inner_name}", units, use_bias=use_bias, where=where, **kw_b)
        bcfg = {
            "name": name,
            "trainable": True,
            "dtype": _dtype_value(3),
            "merge_mode": merge,
            "layer": _layer_entry(3, cls, fwd, shape),
            "backward_layer": _layer_entry(3, cls, bwd, shape),
        }
        for sub in ("layer", "backward_layer"):
            bcfg[sub].pop("name", None)
        return bcfg
    kw_f = dict(kw)
    kw_f.pop("zero_output_for_mask", None)
    inner = lstm_config(2, inner_name, units, use_bias=use_bias, where=where, **kw_f)
    wrapped = {"module": "keras.layers", "class_name": cls, "config": inner, "registered_name": None}
    return {"name": name, "trainable": True, "dtype": "float32", "layer": wrapped, "merge_mode": merge}


def _chain_sequences(body: List[PlannedLayer], report: SaveReport) -> None:
    """A weights-only source has no layer options: a recurrent layer followed by another one must return
    sequences for the chain to be valid, so set that; every other option keeps Keras's default."""
    recurrent = [i for i, pl in enumerate(body) if pl.class_name in ("LSTM", "GRU", "SimpleRNN", "Bidirectional")]
    for i in recurrent[:-1]:
        cfg = body[i].entry["config"]
        subs = (
            [cfg]
            if body[i].class_name != "Bidirectional"
            else [sublayer_config(cfg.get(k)) for k in ("layer", "backward_layer") if cfg.get(k)]
        )
        for sub in subs:
            sub["return_sequences"] = True
            if body[i].class_name == "Bidirectional" and "zero_output_for_mask" in sub:
                sub["zero_output_for_mask"] = True
    report.skipped["(layer options)"] = (
        "the source holds weights only: LSTM options are Keras's defaults, "
        "except return_sequences=True where another recurrent layer follows"
    )


def _convert_simple_layer(
    e: LayerEntry, gen: int, used: set, seq_len: Any, prev_dim: Optional[int], report: SaveReport
) -> Optional[PlannedLayer]:
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
        cfg: Dict[str, Any] = {
            "name": name,
            "trainable": True,
            "dtype": _dtype_value(gen),
            "units": int(c["units"]),
            "activation": act_name,
            "use_bias": bool(c.get("use_bias", True)),
            "kernel_initializer": _initializer(gen, "GlorotUniform", {"seed": None}),
            "bias_initializer": _initializer(gen, "Zeros", {}),
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        }
        if gen == 3:  # the keys Keras 3.15 writes (docs/spec/keras_lstm.md §7.4 fixtures)
            del cfg["activity_regularizer"]
            cfg["quantization_config"] = None
        in_dim = int(arrays[0].shape[0])
        pl = PlannedLayer(
            name,
            "Dense",
            _layer_entry(gen, "Dense", cfg, [None, in_dim]),
            arrays,
            input_shape=[None, in_dim],
            output_dim=int(c["units"]),
        )
    else:
        if "input_dim" not in c:
            c = dict(c, input_dim=int(arrays[0].shape[0]), output_dim=int(arrays[0].shape[1]))
        cfg = {"name": name, "trainable": True, "dtype": _dtype_value(gen)}
        if gen == 2:
            cfg["batch_input_shape"] = [None, seq_len]
        cfg.update(
            {
                "input_dim": int(c["input_dim"]),
                "output_dim": int(c["output_dim"]),
                "embeddings_initializer": _initializer(
                    gen, "RandomUniform", {"minval": -0.05, "maxval": 0.05, "seed": None}
                ),
                "embeddings_regularizer": None,
                "activity_regularizer": None,
                "embeddings_constraint": None,
                "mask_zero": bool(c.get("mask_zero", False)),
            }
        )
        if gen == 2:
            cfg["input_length"] = c.get("input_length")
        else:
            cfg["quantization_config"] = None
        pl = PlannedLayer(
            name,
            "Embedding",
            _layer_entry(gen, "Embedding", cfg, [None, seq_len]),
            arrays,
            input_shape=[None, seq_len],
            output_dim=int(c["output_dim"]),
        )
    pl.weight_names = _tk_weight_names(pl)
    _note_dropped_options(report, e.name, c)
    return pl


def functional_config(gen: int, model_name: str, planned: List[PlannedLayer]) -> Dict[str, Any]:
    """A Functional model config chaining ``planned`` (first = the InputLayer)."""
    layers = []
    prev: Optional[PlannedLayer] = None
    prev_shape: List[Any] = []
    for pl in planned:
        entry = copy.deepcopy(pl.entry)
        if prev is None:
            entry["inbound_nodes"] = []
            cfg = entry["config"]
            prev_shape = list(cfg.get("batch_shape") or cfg.get("batch_input_shape") or [])
            in_dtype = cfg.get("dtype", "float32")
        else:
            if gen == 3:
                kwargs = (
                    {"mask": None}
                    if pl.class_name == "Bidirectional"
                    else ({"training": False, "mask": None} if pl.class_name in _CLASS_CELL else {})
                )
                entry["inbound_nodes"] = [
                    {
                        "args": [
                            {
                                "class_name": "__keras_tensor__",
                                "config": {"shape": prev_shape, "dtype": in_dtype, "keras_history": [prev.name, 0, 0]},
                            }
                        ],
                        "kwargs": kwargs,
                    }
                ]
            else:
                entry["inbound_nodes"] = [[[prev.name, 0, 0, {}]]]
            seq = entry["config"].get(
                "return_sequences", (entry["config"].get("layer") or {}).get("config", {}).get("return_sequences")
            )
            if pl.class_name == "Embedding":
                prev_shape = list(prev_shape) + [pl.output_dim]
            elif pl.class_name in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
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
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": cfg,
            "registered_name": "Functional",
            "build_config": {"input_shape": None},
            "compile_config": {},
        }
    cfg["input_layers"] = [[first, 0, 0]]
    cfg["output_layers"] = [[last, 0, 0]]
    return {"class_name": "Functional", "config": cfg}
