"""The neutral, framework-free picture of a model file: :class:`ModelFile` and its :class:`LayerEntry` list.

Every format reader returns a :class:`ModelFile`; every writer takes one. Weights are NumPy arrays in
the layout of the file they came from (Keras ``kernel (I, 4u)``, MindSpore ``weight_ih_l0 (4H, I)``,
...); :meth:`ModelFile.lstm_layers` gives the LSTM entries as canonical
:class:`~lstm_bridge.recurrent.DirectionWeights` (gate order i, f, g, o) together with their semantics.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import activations as _act, weights as _w
from ..recurrent import CellKind, DirectionWeights, RecurrentLayer
from ..weights import family as _fam_w
from . import family as _fam

__all__ = ["FormatError", "LayerEntry", "ModelFile", "LSTMLayer", "RecurrentEntry", "keras_generation"]


class FormatError(ValueError):
    """A file that cannot be read or written: truncated, corrupt, hostile, encrypted or of an
    unsupported layout. The message names the file and what was wrong."""

    def __init__(self, path: Any, problem: str):
        self.path = None if path is None else os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path)
        self.problem = problem
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}")


def keras_generation(version: Optional[str]) -> int:
    """2 or 3: which Keras generation wrote a file whose ``keras_version`` is ``version``.

    ``None`` (no attribute) means Keras 1; ``"1.x"``, ``"2.x"`` and ``"2.x.x-tf"`` are the Keras-2
    family (hard_sigmoid = ``clip(0.2x + 0.5, 0, 1)``); ``"3.x"`` is Keras 3 (``relu6(x + 3) / 6``).
    """
    if version is None:
        return 2
    m = re.match(r"\s*(\d+)", str(version))
    if not m:
        raise ValueError(f"unrecognised keras_version {version!r}; expected e.g. '2.21.0', '2.3.0-tf' or '3.15.1'")
    major = int(m.group(1))
    return 3 if major >= 3 else 2


@dataclass
class LayerEntry:
    """One layer (or group of tensors) of a model file.

    Attributes:
        name: the layer's name in the file (Keras layer name; MindSpore/PyTorch key prefix without the
            trailing dot, ``""`` for a bare LSTM).
        kind: ``"LSTM"``, ``"Bidirectional"``, ``"LSTMCell"``, ``"Embedding"``, ``"Dense"``, the file's
            class name for other Keras layers, or ``"Tensor"`` for loose tensors.
        config: the layer's config dict as found in the file (Keras), or what the reader inferred.
        weights: ordered ``name -> np.ndarray`` in the file's own layout and order. Keras LSTMs use
            ``kernel``, ``recurrent_kernel``, ``bias`` (Bidirectional: ``forward/...`` then
            ``backward/...``); MindSpore/PyTorch entries use the key without the prefix.
        attrs: format details needed to write the same file back (original weight names, key prefix...).
    """

    name: str
    kind: str
    config: Dict[str, Any] = field(default_factory=dict)
    weights: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)
    attrs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class LSTMLayer:
    """An LSTM entry of a :class:`ModelFile` in canonical form.

    Attributes:
        name, kind: as in :class:`LayerEntry` (``"LSTM"``, ``"Bidirectional"`` or ``"LSTMCell"``).
        weights: ``weights[layer][direction]`` canonical :class:`~lstm_bridge.recurrent.DirectionWeights`
            (direction 0 = forward, 1 = reverse/backward), float arrays as stored (NumPy).
        input_size, hidden_size, num_layers, bidirectional, has_bias: the shape of the stack.
        semantics: ``activation`` and ``recurrent_activation`` as resolved activation names
            (``"hard_sigmoid"`` is the Keras-2 ``clip(0.2x+0.5)``, ``"hard_sigmoid_keras3"`` the
            Keras-3 ``relu6(x+3)/6``), ``go_backwards``, ``return_sequences``, ``return_state``,
            ``stateful``, ``time_major``, ``unroll``, ``zero_output_for_mask``, ``merge_mode``
            (Bidirectional), ``batch_first`` (MindSpore/PyTorch, None when the file does not say), ...
    """

    name: str
    kind: str
    weights: List[List[DirectionWeights]]
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    has_bias: bool
    semantics: Dict[str, Any] = field(default_factory=dict)
    cell: str = "LSTM"
    reset_after: bool = True

    @property
    def cell_kind(self) -> CellKind:
        """The entry's :class:`~lstm_bridge.recurrent.CellKind` (``cell`` is its value)."""
        return CellKind(self.cell)

    def recurrent_layers(self) -> List[RecurrentLayer]:
        """The entry as runnable :class:`~lstm_bridge.recurrent.RecurrentLayer` s, torch weights, in order:
        one per Keras layer, one per stacked MindSpore/PyTorch layer (named ``<name>.l<k>`` when stacked),
        and a cell as a forward layer (one step of a cell, repeated over time: how its weights are compared).

        MindSpore's LSTMCell computes sigmoid/tanh with its approximate CPU kernels (``ms_cpu_*``): the
        kernel's numerics (up to 1e-4), not another function (:mod:`lstm_bridge.targets` treats them as
        standard), so the layer runs the exact functions. A Keras Bidirectional keeps tf_keras's flip of a
        wrapped ``go_backwards`` layer (its "forward" half then runs backwards).

        Raises:
            ValueError: a Bidirectional whose backward layer has other activations than its forward layer.
        """
        sem = self.semantics or {}
        if self.kind.endswith("Cell"):
            gate = sem.get("recurrent_activation", "sigmoid")
            cand = sem.get("activation", "tanh")
            exact_gate = {"ms_cpu_sigmoid": "sigmoid"}.get(gate, gate)
            exact_cand = {"ms_cpu_tanh": "tanh"}.get(cand, cand)
            return [
                RecurrentLayer(
                    self.name,
                    [w.torch() for w in self.weights[0]],
                    [False],
                    exact_gate,
                    exact_cand,
                    zero_output_for_mask=True,
                    kind=self.cell_kind,
                    reset_after=self.reset_after,
                )
            ]
        gen = sem.get("keras_version")
        if gen is None:  # MindSpore / PyTorch: standard semantics, one layer per stacked layer
            # (an RNN's nonlinearity, tanh or relu, is the one choice such an entry records: its "activation")
            rnn_act = str(sem.get("activation", "tanh")) if self.cell_kind is CellKind.RNN else "tanh"
            return [
                RecurrentLayer(
                    f"{self.name}.l{l}" if self.name else f"l{l}",
                    [w.torch() for w in dirs],
                    [False, True][: len(dirs)],
                    candidate=rnn_act,
                    zero_output_for_mask=True,
                    kind=self.cell_kind,
                    reset_after=self.reset_after,
                )
                for l, dirs in enumerate(self.weights)
            ]
        dirs = [w.torch() for w in self.weights[0]]
        go_back = bool(sem.get("go_backwards", False))
        rs = bool(sem.get("return_sequences", False))
        gate, cand = sem.get("recurrent_activation", "sigmoid"), sem.get("activation", "tanh")
        if self.kind == "Bidirectional":
            back = sem.get("backward_semantics") or {}
            for key in ("recurrent_activation", "activation"):
                if back and back.get(key, sem.get(key)) != sem.get(key):
                    raise ValueError(
                        f"{self.name!r}: the backward layer's {key} {back.get(key)!r} differs from the "
                        f"forward layer's {sem.get(key)!r}; not supported"
                    )
            return [
                RecurrentLayer(
                    self.name,
                    dirs,
                    [go_back, not go_back],
                    gate,
                    cand,
                    merge_mode=sem.get("merge_mode", "concat"),
                    return_sequences=rs,
                    zero_output_for_mask=rs,
                    stateful=bool(sem.get("stateful") or back.get("stateful")),
                    keras_version=gen,
                    kind=self.cell_kind,
                    reset_after=self.reset_after,
                )
            ]
        return [
            RecurrentLayer(
                self.name,
                dirs,
                [go_back],
                gate,
                cand,
                processing_order=go_back,
                return_sequences=rs,
                zero_output_for_mask=bool(sem.get("zero_output_for_mask", False)),
                stateful=bool(sem.get("stateful")),
                keras_version=gen,
                kind=self.cell_kind,
                reset_after=self.reset_after,
            )
        ]


def is_lstm_entry(entry: LayerEntry) -> bool:
    """An LSTM, LSTMCell or a Bidirectional wrapping an LSTM (a Bidirectional GRU/SimpleRNN is not one)."""
    if entry.kind in ("LSTM", "LSTMCell"):
        return True
    if entry.kind != "Bidirectional":
        return False
    inner = entry.config.get("layer") if isinstance(entry.config, dict) else None
    cls = inner.get("class_name") if isinstance(inner, dict) else None
    return cls is None or cls in ("LSTM", "CuDNNLSTM", "LSTMV1")


def is_recurrent_entry(entry: LayerEntry) -> bool:
    """An LSTM, GRU or simple-RNN layer or cell, or a Bidirectional wrapping one (:func:`.family.entry_cell`)."""
    return _fam.entry_cell(entry) is not None


#: The name of :class:`LSTMLayer` for what it is since issue 11: any recurrent entry (``cell`` LSTM, GRU, RNN).
RecurrentEntry = LSTMLayer


@dataclass
class ModelFile:
    """A model file's content, independent of any framework.

    Attributes:
        framework: ``"keras"``, ``"mindspore"``, ``"torch"`` or ``"onnx"``.
        version: the writer's version as found (``"2.21.0"``, ``"3.15.1"``, ...), or None.
        layers: ordered :class:`LayerEntry` list (model order for Keras; file order otherwise).
        format: the registry name of the format it was read from (None when built in memory).
        path: the file it was read from.
        model_config: the whole-model config (Keras ``model_config`` / ``config.json``), if any.
        meta: format details (ckpt entry order and extras, Keras backend, ...).
    """

    framework: str
    version: Optional[str] = None
    layers: List[LayerEntry] = field(default_factory=list)
    format: Optional[str] = None
    path: Optional[str] = None
    model_config: Optional[Dict[str, Any]] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def keras_version(self) -> Optional[int]:
        """2 or 3 for Keras files (the generation that decides what ``"hard_sigmoid"`` means), else None."""
        if self.framework != "keras":
            return None
        return keras_generation(self.version)

    @property
    def hard_sigmoid(self) -> Optional[str]:
        """What ``"hard_sigmoid"`` means in this file: ``"clip(0.2*x+0.5, 0, 1)"`` (Keras 1/2, TF 1.x,
        tf_keras; docs/spec/keras_lstm.md §2.2) or ``"relu6(x+3)/6"`` (Keras 3); None for non-Keras files."""
        gen = self.keras_version
        if gen is None:
            return None
        return "relu6(x+3)/6" if gen == 3 else "clip(0.2*x+0.5, 0, 1)"

    def entry(self, name: str) -> LayerEntry:
        """The layer entry called ``name`` (KeyError naming the available ones otherwise)."""
        for e in self.layers:
            if e.name == name:
                return e
        raise KeyError(f"no layer {name!r} in the model file; layers: {[e.name for e in self.layers]}")

    def lstm_layers(self) -> List[LSTMLayer]:
        """The LSTM entries (kinds LSTM, Bidirectional, LSTMCell) with canonical weights and semantics:
        :meth:`recurrent_entries` whose ``cell`` is ``"LSTM"``."""
        return [e for e in self.recurrent_entries() if e.cell == "LSTM"]

    def recurrent_entries(self) -> List[LSTMLayer]:
        """Every recurrent entry (LSTM, GRU, simple RNN: layers, Bidirectionals, stacks and cells) with
        canonical weights (``cell``, ``reset_after``) and semantics, in file order.

        Computed once: the result is kept and reused (a new list of the same :class:`LSTMLayer` objects:
        treat them as read-only) until what it was computed from changes: ``framework``, ``version``, the
        ``layers`` list or an entry in it, an entry's kind, name, config (by value) or weights (each array
        by identity: assign a new array rather than writing into one)."""
        key = self._lstm_key()
        cached = self.__dict__.get("_lstm_cache")
        if (
            cached is not None
            and len(cached[0]) == len(key)
            and all(a is b or (isinstance(a, str) and a == b) for a, b in zip(cached[0], key))
        ):
            return list(cached[1])
        result = [_to_lstm_layer(self, e) for e in self.layers if is_recurrent_entry(e)]
        self.__dict__["_lstm_cache"] = (key, result)
        return list(result)

    def _lstm_key(self) -> Tuple[Any, ...]:
        """What :meth:`lstm_layers` reads, as objects (compared by identity) and strings (by value)."""
        key: List[Any] = [self.framework, str(self.version), self.layers]
        for e in self.layers:
            key += [e, e.kind, e.name]
            if is_recurrent_entry(e):
                key += [e.config, repr(e.config), e.weights, *e.weights.keys(), *e.weights.values()]
        return tuple(key)

    def __getstate__(self) -> Dict[str, Any]:
        """Copies and pickles leave the :meth:`lstm_layers` cache behind."""
        state = dict(self.__dict__)
        state.pop("_lstm_cache", None)
        return state


#: largest size (units, dims, vocabulary, shape entry) a config may state: what every framework's int32
#: shapes hold; larger values (``2**200``) would only crash a later step
MAX_SIZE = 2**31 - 1
# config keys that state one size, and keys that state a shape (list of sizes / None)
_SIZE_KEYS = ("units", "output_dim", "input_dim", "hidden_size", "input_size", "num_layers")
_SHAPE_KEYS = ("batch_input_shape", "batch_shape", "input_shape", "shape", "target_shape")


def validate(mf: ModelFile) -> ModelFile:
    """Check a freshly read file so that a corrupt or hostile one fails at load time with
    :class:`FormatError` naming it, never in a later step: every recurrent entry (LSTM, GRU, RNN) has weights that fit
    together with input and hidden sizes >= 1 (a 0 would crash the kernels) and matching ``units``;
    Embedding and Dense weights have their ranks; names are strings; a Bidirectional wraps a layer
    config; sizes and shapes stated in configs are integers in ``[0, MAX_SIZE]``."""
    try:
        _check_entries(mf)
        _check_config_ints(mf.model_config, "model config")
        for layer in mf.recurrent_entries():
            _check_lstm_layer(mf, layer)
    except FormatError as exc:
        raise FormatError(mf.path, exc.problem) from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError) as exc:
        raise FormatError(mf.path, f"invalid recurrent layer: {exc}") from None
    return mf


def _check_entries(mf: ModelFile) -> None:
    for e in mf.layers:
        if not isinstance(e.name, str):
            raise FormatError(None, f"a layer name must be a string; found {e.name!r:.80}")
        if not isinstance(e.config, dict):
            raise FormatError(None, f"layer {e.name!r}: its config must be a dict; found {type(e.config).__name__}")
        where = f"layer {e.name!r} ({e.kind})"
        if isinstance(e.config.get("name"), (list, dict, int, float)) and not isinstance(e.config.get("name"), bool):
            raise FormatError(None, f"{where}: config 'name' must be a string; found {e.config['name']!r:.80}")
        _check_config_ints(e.config, where)
        arrays = list(e.weights.values())
        for k, a in e.weights.items():
            if not isinstance(a, np.ndarray):
                raise FormatError(None, f"{where}: weight {k!r} is a {type(a).__name__}, not an array")
        if e.kind == "Embedding" and arrays:
            if len(arrays) != 1 or arrays[0].ndim != 2:
                raise FormatError(
                    None,
                    f"{where}: expected one 2-D embeddings matrix (vocabulary, width); found "
                    f"shapes {[a.shape for a in arrays]}",
                )
            for key, dim in (("input_dim", 0), ("output_dim", 1)):
                v = e.config.get(key)
                if isinstance(v, int) and not isinstance(v, bool) and v != arrays[0].shape[dim]:
                    raise FormatError(None, f"{where}: config {key}={v} but the embeddings matrix is {arrays[0].shape}")
        if e.kind == "Dense" and arrays and mf.framework == "keras":
            if arrays[0].ndim != 2 or (len(arrays) == 2 and arrays[1].shape != (arrays[0].shape[1],)):
                raise FormatError(
                    None,
                    f"{where}: expected kernel (in, units) and bias (units,); found shapes {[a.shape for a in arrays]}",
                )
            v = e.config.get("units")
            if isinstance(v, int) and not isinstance(v, bool) and v != arrays[0].shape[1]:
                raise FormatError(None, f"{where}: config units={v} but the kernel is {arrays[0].shape}")
        if e.kind == "Bidirectional" and mf.framework == "keras":
            for key in ("layer", "backward_layer"):
                v = e.config.get(key)
                if (key == "layer" and e.config and v is None) or (
                    v is not None and not (isinstance(v, dict) and (isinstance(v.get("config"), dict) or "units" in v))
                ):
                    raise FormatError(
                        None,
                        f"{where}: config {key!r} must be a layer config {{'class_name', 'config'}}; found {v!r:.80}",
                    )


def _check_config_ints(cfg: Any, where: str) -> None:
    """Sizes in a (nested) config must be integers in [0, MAX_SIZE] (shapes may hold None)."""
    stack = [cfg]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, x in v.items():
                if k in _SIZE_KEYS and x is not None:
                    _check_size(x, f"{where}: {k}")
                elif k in _SHAPE_KEYS and isinstance(x, (list, tuple)):
                    for d in x:
                        if d is not None and not isinstance(d, (list, tuple, dict)):
                            _check_size(d, f"{where}: {k}")
                stack.append(x)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            raise FormatError(None, f"{where}: an integer outside int64 ({v.bit_length()} bits)")


def _check_size(x: Any, where: str) -> None:
    if isinstance(x, bool) or not isinstance(x, int):
        raise FormatError(None, f"{where} must be an integer; found {x!r:.40}")
    if not 0 <= x <= MAX_SIZE:
        raise FormatError(
            None,
            f"{where} must be in [0, {MAX_SIZE}]; found {x if abs(x) < 2**64 else f'a {x.bit_length()}-bit integer'}",
        )


def _check_lstm_layer(mf: ModelFile, layer: LSTMLayer) -> None:
    where = f"layer {layer.name!r} ({layer.kind})"
    if layer.hidden_size < 1:
        raise FormatError(None, f"{where}: hidden size (units) must be >= 1; the weights give {layer.hidden_size}")
    if layer.input_size < 1:
        raise FormatError(None, f"{where}: input size must be >= 1; the weights give {layer.input_size}")
    units = layer.semantics.get("units")
    if units is not None and (isinstance(units, bool) or not isinstance(units, int) or units != layer.hidden_size):
        raise FormatError(
            None, f"{where}: config units={units!r:.40} but the weights give hidden size {layer.hidden_size}"
        )


# --- canonicalisation -----------------------------------------------------------------------------

_KERAS_SEMANTIC_KEYS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "time_major",
    "zero_output_for_mask",
    "use_bias",
    "dropout",
    "recurrent_dropout",
    "implementation",
    "units",
    "reset_after",
)


def _activation_name(value: Any, generation: int) -> str:
    try:
        fn = _act.get(value, keras_version=generation)
    except (ValueError, TypeError, NotImplementedError):
        # a custom or unsupported activation: kept visible; running or converting the layer reports it
        return f"unknown:{value}"
    return getattr(fn, "name", repr(fn))


def _keras_semantics(cfg: Dict[str, Any], generation: int, old_default: bool = False) -> Dict[str, Any]:
    # Keras 1 names the gate activation `inner_activation`; Keras < 2.3 / TF 1.x default to hard_sigmoid.
    rec = cfg.get("recurrent_activation", cfg.get("inner_activation", "hard_sigmoid" if old_default else "sigmoid"))
    sem: Dict[str, Any] = {
        "activation": _activation_name(cfg.get("activation", "tanh"), generation),
        "recurrent_activation": _activation_name(rec, generation),
        "keras_version": generation,
    }
    if "units" not in cfg and "output_dim" in cfg:  # Keras 1
        sem["units"] = cfg["output_dim"]
    for k in _KERAS_SEMANTIC_KEYS:
        if k in cfg:
            sem[k] = cfg[k]
    sem.setdefault("go_backwards", False)
    sem.setdefault("return_sequences", False)
    sem.setdefault("return_state", False)
    return sem


def sublayer_config(value: Any) -> Dict[str, Any]:
    """The LSTM config inside a Bidirectional config's ``layer``/``backward_layer`` value, which is
    either ``{"class_name": "LSTM", "config": {...}}`` (files) or the config itself (front ends)."""
    if not isinstance(value, dict):
        return {}
    if "class_name" in value and isinstance(value.get("config"), dict):
        return value["config"]
    return value


def _keras_direction(weights: List[np.ndarray], where: str) -> _w.LSTMWeights:
    if len(weights) == 3:
        k, r, b = weights
        if np.ndim(b) == 1 and np.ndim(r) == 2 and np.shape(b)[0] == 2 * np.shape(r)[1]:
            return _w.from_cudnn_lstm(k, r, b)  # TF 1.x CuDNNLSTM: bias (8u,)
        return _w.from_keras(k, r, b)
    if len(weights) == 2:
        return _w.from_keras(weights[0], weights[1], None)
    if len(weights) == 12:
        return _w.from_keras1(weights)
    raise ValueError(f"{where}: a Keras LSTM has 2 or 3 weight arrays (12 for Keras 1); found {len(weights)}")


def _keras_family_entry(mf: ModelFile, e: LayerEntry, cell: str) -> LSTMLayer:
    """A Keras GRU / SimpleRNN / Bidirectional-of-them entry in canonical form (:mod:`.family`)."""
    arrays = list(e.weights.values())
    where = f"layer {e.name!r}"
    gen = keras_generation(mf.version)
    has_config = bool(e.config)
    old = mf.version is None or bool(re.match(r"\s*(1\.|2\.[0-2]\.)", str(mf.version)))
    if e.kind == "Bidirectional" or e.kind.startswith("Bidirectional("):
        fwd = [v for k, v in e.weights.items() if k.startswith("forward/")]
        bwd = [v for k, v in e.weights.items() if k.startswith("backward/")]
        if not fwd or len(fwd) != len(bwd):
            half = len(arrays) // 2
            fwd, bwd = arrays[:half], arrays[half:]
        first = fwd
        inner = sublayer_config(e.config.get("layer"))
        cls = _fam.keras_inner_class(e.config)
        reset = _fam.keras_reset_after(inner, fwd, bool(inner))
        w_f, reset = _fam.keras_direction(cell, fwd, reset, where + " (forward)")
        w_b, _ = _fam.keras_direction(cell, bwd, reset, where + " (backward)")
        dirs = [w_f, w_b]
        sem = _keras_semantics(inner, gen, old_default=old and cell == "GRU" and bool(inner))
        sem["merge_mode"] = e.config.get("merge_mode", "concat")
        back_cfg = sublayer_config(e.config.get("backward_layer")) or None
        sem["backward_semantics"] = _keras_semantics(back_cfg, gen) if back_cfg else None
    else:
        cls, first = e.kind, arrays
        reset = _fam.keras_reset_after(e.config, arrays, has_config)
        w0, reset = _fam.keras_direction(cell, arrays, reset, where)
        dirs = [w0]
        sem = _keras_semantics(e.config, gen, old_default=old and cell == "GRU" and has_config)
    if cls == "CuDNNGRU" or (cell == "GRU" and _fam.is_cudnn_gru(first)):
        # cuDNN computes sigmoid / tanh (its config names no activations)
        sem["activation"], sem["recurrent_activation"] = "tanh", "sigmoid"
        sem["cudnn"] = True
    if cell == "RNN":
        sem["recurrent_activation"] = "sigmoid"  # a simple RNN has no gates; the neutral name
    sem["cell"] = cell
    if cell == "GRU":
        sem["reset_after"] = reset
    w = dirs[0]
    return LSTMLayer(
        e.name, e.kind, [dirs], w.input_size, w.hidden_size, 1, len(dirs) == 2, w.has_bias, sem, cell, reset
    )


def _to_lstm_layer(mf: ModelFile, e: LayerEntry) -> LSTMLayer:
    cell = _fam.entry_cell(e) or "LSTM"
    if mf.framework == "keras" and cell != "LSTM":
        return _keras_family_entry(mf, e, cell)
    arrays = list(e.weights.values())
    where = f"layer {e.name!r}"
    if mf.framework == "keras":
        gen = keras_generation(mf.version)
        if e.kind == "Bidirectional":
            fwd = [v for k, v in e.weights.items() if k.startswith("forward/")]
            bwd = [v for k, v in e.weights.items() if k.startswith("backward/")]
            if not fwd or len(fwd) != len(bwd):
                half = len(arrays) // 2
                fwd, bwd = arrays[:half], arrays[half:]
            dirs = [_keras_direction(fwd, where + " (forward)"), _keras_direction(bwd, where + " (backward)")]
            inner = sublayer_config(e.config.get("layer"))
            sem = _keras_semantics(inner, gen)
            sem["merge_mode"] = e.config.get("merge_mode", "concat")
            back_cfg = sublayer_config(e.config.get("backward_layer")) or None
            sem["backward_semantics"] = _keras_semantics(back_cfg, gen) if back_cfg else None
        else:
            dirs = [_keras_direction(arrays, where)]
            old = mf.version is None or bool(re.match(r"\s*(1\.|2\.[0-2]\.)", str(mf.version)))
            sem = _keras_semantics(e.config, gen, old_default=old)
        w0 = dirs[0]
        return LSTMLayer(e.name, e.kind, [dirs], w0.input_size, w0.hidden_size, 1, len(dirs) == 2, w0.has_bias, sem)
    # MindSpore / PyTorch / safetensors: the PyTorch naming
    sem = {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "batch_first": e.config.get("batch_first"),
        "framework": mf.framework,
    }
    if cell == "RNN":  # a state dict does not record the nonlinearity: tanh unless the entry's config says it
        sem["activation"] = str(e.config.get("nonlinearity", "tanh"))
        sem["nonlinearity_recorded"] = "nonlinearity" in e.config
    if mf.framework == "mindspore" and cell == "LSTM":
        # MindSpore's CPU seq_length path and LSTMCell use approximate Sigmoid/Tanh (docs/spec/mindspore_lstm.md §3)
        sem["seq_length_activations"] = ("ms_cpu_sigmoid", "ms_cpu_tanh")
        if e.kind == "LSTMCell":
            sem["activation"], sem["recurrent_activation"] = "ms_cpu_tanh", "ms_cpu_sigmoid"
    if e.kind.endswith("Cell"):
        w = _fam.torch_cell(e.weights, cell)
        return LSTMLayer(e.name, e.kind, [[w]], w.input_size, w.hidden_size, 1, False, w.has_bias, sem, cell)
    layers = _fam.torch_layers(e.weights, cell)
    w0 = layers[0][0]
    return LSTMLayer(
        e.name,
        e.kind,
        layers,
        w0.input_size,
        w0.hidden_size,
        len(layers),
        len(layers[0]) == 2,
        w0.has_bias,
        sem,
        cell,
    )


# --- grouping flat state dicts into layer entries (MindSpore .ckpt, PyTorch, safetensors) ---------

_LSTM_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<leaf>(?:weight|bias)_(?:ih|hh)_l\d+(?:_reverse)?)$")
_CELL_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<leaf>(?:weight|bias)_(?:ih|hh))$")


def group_state_dict(tensors: OrderedDict[str, Any]) -> List[LayerEntry]:
    """Group flat ``name -> array`` tensors into layer entries.

    Recurrent stacks are recognised by the ``weight_ih_l0 ...`` suffix pattern with any prefix
    (``lstm.``, ``encoder.rnn.``), cells by ``weight_ih``/``weight_hh``; the kind is ``LSTM``, ``GRU`` or
    ``RNN`` (``LSTMCell``, ``GRUCell``, ``RNNCell``) by ``weight_hh``'s gate count G = 4, 3, 1 (an RNN's
    nonlinearity is not in a state dict: tanh unless ``config["nonlinearity"]`` says so); every other tensor is
    carried in an entry named by its prefix (kind ``Embedding`` for ``embedding_table``, ``Dense`` for
    a ``weight``/``bias`` pair with a 2-D weight, else ``Tensor``). Entries come in order of first key.
    """
    _w.check_mindspore_layout(tensors)
    groups: OrderedDict[tuple, LayerEntry] = OrderedDict()
    for key, value in tensors.items():
        m = _LSTM_KEY.match(key)
        kind = "LSTM"
        if not m:
            m = _CELL_KEY.match(key)
            kind = "LSTMCell"
        if m:
            prefix, leaf = m.group("prefix"), m.group("leaf")
        else:
            prefix, _, leaf = key.rpartition(".")
            prefix = prefix + "." if prefix else ""
            kind = "Tensor"
        gk = (prefix, kind)
        if gk not in groups:
            groups[gk] = LayerEntry(name=prefix[:-1] if prefix else "", kind=kind, attrs={"prefix": prefix})
        groups[gk].weights[leaf] = value
    entries = list(groups.values())
    for e in entries:
        if e.kind == "LSTMCell" and not {"weight_ih", "weight_hh"} <= set(e.weights):
            e.kind = "Tensor"  # a lone `bias_ih` is not a cell
        if e.kind == "Tensor":
            keys = set(e.weights)
            if keys == {"embedding_table"} or keys == {"embeddings"}:
                e.kind = "Embedding"
            elif "weight" in keys and keys <= {"weight", "bias"} and np.ndim(e.weights["weight"]) == 2:
                e.kind = "Dense"
        if e.kind in ("LSTM", "LSTMCell"):
            is_cell = e.kind == "LSTMCell"
            cell = _fam.state_dict_cell(e.weights, is_cell)
            e.kind = _fam.cell_entry_kind(cell, is_cell)
        if e.kind in ("LSTM", "GRU", "RNN"):
            layers = _fam.torch_layers(e.weights, e.kind)
            e.config = {
                "input_size": layers[0][0].input_size,
                "hidden_size": layers[0][0].hidden_size,
                "num_layers": len(layers),
                "bidirectional": len(layers[0]) == 2,
                "has_bias": layers[0][0].has_bias,
            }
        elif e.kind in ("LSTMCell", "GRUCell", "RNNCell"):
            w = _fam.torch_cell(e.weights, _fam.CELL_CLASSES[e.kind])
            e.config = {
                "input_size": w.input_size,
                "hidden_size": w.hidden_size,
                "has_bias": "bias_ih" in e.weights,
            }
    return entries


def flatten_state_dict(mf: ModelFile) -> OrderedDict[str, Any]:
    """The inverse of :func:`group_state_dict` for MindSpore / PyTorch style model files; for other
    files, the LSTM entries converted to PyTorch naming (``<name>.weight_ih_l0`` ...) and the other
    entries' arrays under ``<name>.<weight name>``."""
    out: OrderedDict[str, Any] = OrderedDict()  # NumPy arrays (torch tensors from torch state dicts)
    if mf.framework in ("mindspore", "torch"):
        for e in mf.layers:
            prefix = e.attrs.get("prefix", e.name + "." if e.name else "")
            for k, v in e.weights.items():
                out[prefix + k] = v
        return out
    recurrent = {id(e): l for e, l in zip([e for e in mf.layers if is_recurrent_entry(e)], mf.recurrent_entries())}
    for e in mf.layers:
        prefix = e.name + "." if e.name else ""
        if id(e) in recurrent:
            layer = recurrent[id(e)]
            if layer.kind.endswith("Cell"):
                out.update(_fam_w.cell_to_torch_state_dict(layer.weights[0][0], prefix=prefix))
            else:
                out.update(_fam_w.recurrent_to_torch_state_dict(layer.weights, prefix=prefix))
        else:
            for k, v in e.weights.items():
                out[prefix + k.replace("/", ".")] = v
    return out
