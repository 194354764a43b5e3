"""What each target can hold: the one rule for "can this recurrent layer be expressed there?".

Targets (:data:`TARGETS`):

==============  ===================================================================================
``mindspore``   ``mindspore.nn.LSTM`` / ``GRU`` / ``RNN`` and their cells (and a MindSpore ``.ckpt``)
``torch``       ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` and their cells (and a ``.pt`` / ``.safetensors``)
``onnx``        the ONNX ``LSTM`` / ``GRU`` / ``RNN`` operators (opset 17), one node per layer
``keras2``      tf_keras / tf.keras 2.x (a legacy ``.h5``): names resolve as Keras 2
``keras3``      Keras 3 (a ``.keras``): names resolve as Keras 3, no ``time_major``
==============  ===================================================================================

A layer is described by a :class:`LayerDescription` (:func:`describe` builds them from a Keras
front-end layer, a :class:`~lstm_bridge.formats.LSTMLayer` of a model file, or a
:class:`~lstm_bridge.recurrent.RecurrentLayer` such as a converter chain's layers). A description
holds no weights and can say what a :class:`~lstm_bridge.recurrent.RecurrentLayer` cannot hold (a
Bidirectional whose halves differ, a layer not built yet, a parsed call in
:mod:`lstm_bridge.explain`). :func:`violations` lists why a layer cannot be held by a target (empty
when it can); :func:`check_expressible` raises :class:`ValueError` with those reasons;
:func:`model_violations` / :func:`check_model` do the same for a whole
:class:`~lstm_bridge.formats.ModelFile`, including mask producers (a Keras
``Embedding(mask_zero=True)`` or ``Masking`` layer) that an ONNX LSTM graph cannot carry. Every
writer (:func:`lstm_bridge.save`, each format's ``save``), :mod:`lstm_bridge.convert`,
:mod:`lstm_bridge.explain` and the CLI ask this module; the reasons are the sentences of
:data:`UNSUPPORTED`.

Activation names are *resolved* names (:mod:`lstm_bridge.activations`): ``"hard_sigmoid"`` is the
Keras-2 ``clip(0.2x + 0.5, 0, 1)`` and ``"hard_sigmoid_keras3"`` the Keras-3 ``relu6(x + 3) / 6``;
both are ONNX ``HardSigmoid`` (alpha 0.2 resp. 1/6, beta 0.5), neither is a MindSpore/PyTorch gate.

The recurrent family (issue 11): a description's ``cell`` is ``"LSTM"``, ``"GRU"`` or ``"RNN"``. A GRU's
``reset_after`` is its form: ``torch.nn.GRU`` and MindSpore ``nn.GRU`` compute only ``reset_after=True``
(:func:`lstm_bridge.weights.family.check_gru_form` says why no weights turn one form into the other); ONNX
holds both (``linear_before_reset`` 1 / 0). A simple RNN's one activation (``candidate``) must be tanh or
relu for ``torch.nn.RNN`` / MindSpore ``nn.RNN`` (``nonlinearity``). What a target cannot hold is carried
by lstm-bridge's own modules (``lstm_bridge.keras.GRU`` / ``SimpleRNN`` in a Keras file), and every
refusal says so (:func:`exact_module_hint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # (imported on use: this module, and explain with it, load without torch)
    from .recurrent import RecurrentLayer

__all__ = [
    "TARGETS",
    "FORMAT_TARGETS",
    "UNSUPPORTED",
    "ONNX_ACTIVATIONS",
    "EXACT_MODULE_HINT",
    "LayerDescription",
    "describe",
    "describe_model_file",
    "reasons",
    "violations",
    "check_expressible",
    "mask_producers",
    "mask_lengths",
    "lengths_violations",
    "mask_notes",
    "model_violations",
    "check_model",
    "target_for_format",
    "exact_module_hint",
    "state_dict_notes",
]

#: the targets this module knows
TARGETS: Tuple[str, ...] = ("mindspore", "torch", "onnx", "keras2", "keras3")

#: file format (registry name) -> the target its content must be expressible in. ``None``: the
#: format writes weights only (no semantics are recorded; the reader supplies them).
FORMAT_TARGETS: Dict[str, Optional[str]] = {
    "mindspore-ckpt": "mindspore",
    "torch": "torch",
    "safetensors": "torch",
    "onnx": "onnx",
    "keras-h5": "keras2",
    "keras": "keras3",
    "keras-weights-h5": None,
}

#: The sentence every refusal of a Keras layer by MindSpore/PyTorch/ONNX ends with (user friction:
#: the PyTorch module that computes such a layer exactly exists).
EXACT_MODULE_HINT = (
    "lstm_bridge.keras.LSTM (a torch.nn.Module) computes this layer exactly: "
    "keep it in a Keras file (.h5 / .keras) and run it with lstm_bridge.keras.LSTM "
    "(or Bidirectional) in PyTorch"
)

#: The torch / MindSpore module of each cell kind (refusals name the one the layer would become).
MODULES: Dict[str, Tuple[str, str]] = {
    "LSTM": ("torch.nn.LSTM", "mindspore.nn.LSTM"),
    "GRU": ("torch.nn.GRU", "mindspore.nn.GRU"),
    "RNN": ("torch.nn.RNN", "mindspore.nn.RNN"),
}
#: The lstm-bridge Keras class that computes each cell kind exactly.
KERAS_MODULES: Dict[str, str] = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}


def exact_module_hint(cells: Sequence[str] = ("LSTM",)) -> str:
    """:data:`EXACT_MODULE_HINT` for the cell kinds refused (only ``"LSTM"``: that very sentence)."""
    names = [KERAS_MODULES.get(c, "LSTM") for c in dict.fromkeys(cells)] or ["LSTM"]
    if names == ["LSTM"]:
        return EXACT_MODULE_HINT
    classes = " / ".join(f"lstm_bridge.keras.{n}" for n in names)
    return (
        f"{classes} (a torch.nn.Module) computes this layer exactly: keep it in a Keras file (.h5 / .keras) "
        f"and run it with {classes} (or Bidirectional) in PyTorch"
    )


#: Why a semantic has no ``mindspore.nn.LSTM`` / ``torch.nn.LSTM`` equivalent (and a few other
#: targets'). Keys are stable identifiers; :mod:`lstm_bridge.convert` and :mod:`lstm_bridge.explain`
#: use these sentences.
UNSUPPORTED: Dict[str, str] = {
    "recurrent_activation": (
        "mindspore.nn.LSTM and torch.nn.LSTM hard-code sigmoid for the i, f, o gates; "
        "recurrent_activation={value!r} ({meaning}) has no equivalent, and substituting sigmoid would change "
        "the outputs (by about 0.05 for hard_sigmoid)"
    ),
    "activation": (
        "mindspore.nn.LSTM and torch.nn.LSTM hard-code tanh for the candidate and the cell output; "
        "activation={value!r} has no equivalent"
    ),
    "go_backwards": (
        "go_backwards=True alone (outside Bidirectional) has no mindspore.nn.LSTM equivalent: MindSpore only "
        "has a reverse direction paired with a forward one; reverse the time axis of the input yourself and run a "
        "forward LSTM (the Keras output is in processing order, so it needs no flip back)"
    ),
    "stateful": (
        "stateful=True has no mindspore.nn.LSTM equivalent: MindSpore keeps no state between calls; pass "
        "hx=(h_n, c_n) from the previous call yourself"
    ),
    "merge_mode": (
        "Bidirectional merge_mode={value!r} has no mindspore.nn.LSTM equivalent: MindSpore always concatenates "
        "[forward | reverse] on the last axis; compute it from out[..., :H] and out[..., H:] yourself"
    ),
    "flipped_bidirectional": (
        "a Bidirectional whose forward half runs backwards (a wrapped go_backwards layer, which tf_keras "
        "flips) has no {target} equivalent"
    ),
    "mask_holes": (
        "a Keras mask with holes or left padding has no seq_length equivalent: MindSpore seq_length only "
        "expresses right padding (each row valid for t < length)"
    ),
    "mask_carry": (
        "a right-padded Keras mask on a plain LSTM with return_sequences=True repeats the last valid output at "
        "padded steps, while MindSpore seq_length writes zeros there; set zero_output_for_mask=True on the Keras "
        "side (Bidirectional does) or ignore the padded steps"
    ),
    "middle_return_sequences": (
        "return_sequences=False in the middle of a stack: the next layer would receive one vector, not a "
        "sequence; a mindspore.nn.LSTM stack feeds every layer the full sequence"
    ),
    "mixed_stack": (
        "a stack must be all unidirectional or all Bidirectional with the same units to become one "
        "mindspore.nn.LSTM (num_layers=L); got {value}"
    ),
    "backward_layer": (
        "Bidirectional with a backward_layer that differs from the forward layer ({value}) has no "
        "mindspore.nn.LSTM equivalent (both directions share hidden_size, bias and activations)"
    ),
    "time_major_mismatch": (
        "the layers of a stack disagree on time_major ({value}); one mindspore.nn.LSTM has one batch_first"
    ),
    "dropout_training": (
        "Keras dropout/recurrent_dropout (per-step masks reused over time) has no mindspore.nn.LSTM "
        "equivalent in training; inference (training=False) is unaffected"
    ),
    "cell_activation": (
        "MindSpore's LSTM/LSTMCell with seq_length use MindSpore's approximate CPU sigmoid/tanh (error up to "
        "1e-4); an exact-activation target agrees only to that level"
    ),
    "gru_reset_before": (
        "reset_after=False (Keras <= 2.3 / TF 1.x GRU: the reset gate multiplies h before the recurrent matmul, "
        "n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)) has no {module} equivalent: {module} computes only "
        "reset_after=True (n = tanh(W_in x + b_in + r * (W_hn h + b_hn))); the two forms are different functions "
        "and no weights turn one into the other"
    ),
    "gru_gate": (
        "{module} hard-codes sigmoid for the r and z gates; recurrent_activation={value!r} ({meaning}) has no "
        "equivalent, and substituting sigmoid would change the outputs"
    ),
    "gru_candidate": "{module} hard-codes tanh for the candidate n; activation={value!r} has no equivalent",
    "rnn_activation": "{module} offers nonlinearity='tanh' or 'relu' only; activation={value!r} has no equivalent",
    "rnn_nonlinearity_unknown": (
        "a MindSpore / PyTorch state dict does not record nn.RNN's nonlinearity (tanh or relu), and a {target} "
        "SimpleRNN must name its activation; say which: mf.entry({name!r}).config['nonlinearity'] = 'tanh' or "
        "'relu' (lstm-bridge convert --rnn-nonlinearity tanh|relu), or save the net itself "
        "(lstm_bridge.mindspore.RNN / torch.nn.RNN)"
    ),
    "mask_generated": (
        "{producer}: its mask reaches the LSTM layers, but the {target} model generated from this file holds "
        "Input, Embedding, Dense and LSTM layers only, so the LSTM layers would run the masked steps as data; "
        "write the model for the Keras generation that made it"
    ),
    "onnx_activation": (
        "{which}={value!r} has no ONNX LSTM equivalent (the ONNX LSTM operator's activations: {supported})"
    ),
    "onnx_stateful": (
        "stateful=True has no ONNX equivalent: an ONNX graph keeps no state between runs; feed the final "
        "states back as the initial_state inputs yourself"
    ),
    "onnx_cell": (
        "an LSTMCell (one step) is not exported to ONNX: the ONNX LSTM operator runs sequences; export the "
        "LSTM layer that uses it, or convert the cell to .ckpt / .pt / .safetensors"
    ),
    "keras_cell": (
        "an LSTMCell is not a layer of a Keras model file (Keras only holds it inside RNN(LSTMCell(...))); "
        "convert the cell to .ckpt / .pt / .safetensors"
    ),
    "keras3_time_major": "time_major=True has no Keras 3 equivalent (Keras 3 inputs are (batch, time, features))",
    "keras_activation": "{reason}",
    "mask_onnx": (
        "{producer}: its mask reaches the LSTM layers, but the ONNX export holds the LSTM chain only, so the "
        "padded steps would run as data (the Keras model skips them) and the outputs would differ on padded "
        "batches; export with lstm_bridge.save(..., lengths=True) and feed seq_length = the number of unpadded "
        "steps per row (right padding only)"
    ),
}

#: resolved activation name -> (ONNX LSTM activation, alpha or None, beta or None). Keras 2's
#: hard_sigmoid is exactly HardSigmoid(0.2, 0.5); Keras 3's relu6(x + 3) / 6 is HardSigmoid(1/6, 0.5)
#: (equal within 3e-8 in float32).
ONNX_ACTIVATIONS: Dict[str, Tuple[str, Optional[float], Optional[float]]] = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "linear": ("Affine", 1.0, 0.0),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "elu": ("Elu", 1.0, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
    "hard_sigmoid": ("HardSigmoid", 0.2, 0.5),
    "hard_sigmoid_keras3": ("HardSigmoid", 1.0 / 6.0, 0.5),
}

_TARGET_TEXT = {
    "mindspore": "mindspore.nn.LSTM",
    "torch": "torch.nn.LSTM",
    "onnx": "ONNX LSTM",
    "keras2": "tf_keras",
    "keras3": "Keras 3",
}

# MindSpore's CPU kernels approximate sigmoid/tanh in its LSTMCell: the same function as far as a
# MindSpore/PyTorch file is concerned (numerics differ by up to 1e-4, see UNSUPPORTED["cell_activation"]).
_STANDARD_GATES = ("sigmoid", "ms_cpu_sigmoid")
_STANDARD_CANDIDATES = ("tanh", "ms_cpu_tanh")


@dataclass(frozen=True)
class LayerDescription:
    """The semantics of one recurrent layer that decide where it can be expressed.

    ``name``: the layer's name (for messages); ``kind``: ``"LSTM"``, ``"Bidirectional"`` or
    ``"LSTMCell"``; ``gate`` / ``candidate``: resolved activation names (the candidate is also the
    cell-output activation); ``reverse``: per direction, whether it runs from the last step to the
    first (``(True,)`` a Keras ``go_backwards`` layer, ``(False, True)`` a Bidirectional,
    ``(True, False)`` a Bidirectional around a go_backwards layer, which tf_keras flips);
    ``merge_mode`` of a Bidirectional; ``stateful``; ``time_major``; ``backward_differs``: options in
    which a Bidirectional's backward layer differs from its forward layer; ``keras``: the layer comes
    from Keras (refusals then point at :mod:`lstm_bridge.keras`); ``generation``: the Keras generation
    whose names were used (2 or 3), None when unknown (then ``"hard_sigmoid"`` is ambiguous); ``cell``: the
    cell kind (``"LSTM"``, ``"GRU"``, ``"RNN"``; a Bidirectional's ``kind`` is ``"Bidirectional"`` whatever it
    wraps); ``reset_after``: the GRU form (ignored for other cells); ``activation_known``: False for a simple
    RNN read from a MindSpore / PyTorch state dict, which does not record its nonlinearity. A simple RNN's one
    activation is its ``candidate`` (its ``gate`` is unused).
    """

    name: str
    kind: str = "LSTM"
    gate: str = "sigmoid"
    candidate: str = "tanh"
    reverse: Tuple[bool, ...] = (False,)
    merge_mode: Optional[str] = "concat"
    stateful: bool = False
    time_major: bool = False
    backward_differs: Tuple[str, ...] = ()
    keras: bool = False
    generation: Optional[int] = None
    cell: str = "LSTM"
    reset_after: bool = True
    activation_known: bool = True

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}" if self.name else self.kind


# --- descriptions ------------------------------------------------------------------------------


def _act_name(fn: Any) -> str:
    return getattr(fn, "name", None) or repr(fn)


#: a Keras cell kind's layer class name (``CellKind.value`` -> Keras class)
_KERAS_CLASS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}


def _keras_cell_facts(cell: Any) -> Tuple[str, str, str, bool]:
    """``(cell kind, gate, candidate, reset_after)`` of a Keras front-end cell (a SimpleRNN has no gate)."""
    kind = getattr(getattr(cell, "kind", None), "value", "LSTM")
    gate = _act_name(cell.recurrent_activation) if hasattr(cell, "recurrent_activation") else "sigmoid"
    return kind, gate, _act_name(cell.activation), bool(getattr(cell, "reset_after", True))


def _from_keras_module(layer: Any) -> LayerDescription:
    from .keras import Bidirectional

    if isinstance(layer, Bidirectional):
        fwd, bwd = layer.forward_layer, layer.backward_layer
        differs = tuple(a for a in ("units", "use_bias", "time_major") if getattr(fwd, a) != getattr(bwd, a))
        differs += tuple(
            a
            for a in ("activation", "recurrent_activation", "reset_after")
            if hasattr(fwd.cell, a) and _act_name(getattr(fwd.cell, a)) != _act_name(getattr(bwd.cell, a))
        )
        cell_kind, gate, candidate, reset_after = _keras_cell_facts(fwd.cell)
        return LayerDescription(
            str(layer.name),
            "Bidirectional",
            gate,
            candidate,
            (bool(fwd.go_backwards), bool(bwd.go_backwards)),
            layer.merge_mode,
            bool(fwd.stateful or bwd.stateful),
            bool(fwd.time_major),
            differs,
            True,
            getattr(fwd, "keras_version", None),
            cell_kind,
            reset_after,
        )
    cell = getattr(layer, "cell", layer)
    cell_kind, gate, candidate, reset_after = _keras_cell_facts(cell)
    kind = _KERAS_CLASS.get(cell_kind, cell_kind) + ("Cell" if cell is layer else "")
    return LayerDescription(
        str(getattr(layer, "name", "")),
        kind,
        gate,
        candidate,
        (bool(getattr(layer, "go_backwards", False)),),
        "concat",
        bool(getattr(layer, "stateful", False)),
        bool(getattr(layer, "time_major", False)),
        (),
        True,
        getattr(layer, "keras_version", None),
        cell_kind,
        reset_after,
    )


def _from_lstm_layer(e: Any) -> List[LayerDescription]:
    sem = e.semantics or {}
    gate = str(sem.get("recurrent_activation", "sigmoid"))
    cand = str(sem.get("activation", "tanh"))
    gen = sem.get("keras_version")
    cell = str(getattr(e, "cell", "LSTM"))
    reset_after = bool(getattr(e, "reset_after", True))
    if gen is None:  # MindSpore / PyTorch: one description per stacked layer
        known = bool(sem.get("nonlinearity_recorded", True))
        if e.kind.endswith("Cell"):
            return [
                LayerDescription(e.name, e.kind, gate, cand, cell=cell, reset_after=reset_after, activation_known=known)
            ]
        rev = (False, True) if e.bidirectional else (False,)
        kind = "Bidirectional" if e.bidirectional else e.kind
        names = (
            [e.name] if e.num_layers == 1 else [f"{e.name}.l{l}" if e.name else f"l{l}" for l in range(e.num_layers)]
        )
        return [
            LayerDescription(n, kind, gate, cand, rev, cell=cell, reset_after=reset_after, activation_known=known)
            for n in names
        ]
    go_back = bool(sem.get("go_backwards", False))
    stateful = bool(sem.get("stateful", False))
    time_major = bool(sem.get("time_major", False))
    if e.kind == "Bidirectional":
        back = sem.get("backward_semantics") or {}
        keys = ("activation", "use_bias", "units", "time_major") + (("recurrent_activation",) if cell != "RNN" else ())
        differs = tuple(k for k in keys if back and k in back and back.get(k) != sem.get(k))
        if cell == "GRU" and back and "reset_after" in back and bool(back["reset_after"]) != reset_after:
            differs += ("reset_after",)
        return [
            LayerDescription(
                e.name,
                "Bidirectional",
                gate,
                cand,
                (go_back, not go_back),
                sem.get("merge_mode", "concat"),
                stateful or bool(back.get("stateful")),
                time_major,
                differs,
                True,
                gen,
                cell,
                reset_after,
            )
        ]
    return [
        LayerDescription(
            e.name, e.kind, gate, cand, (go_back,), "concat", stateful, time_major, (), True, gen, cell, reset_after
        )
    ]


def _from_recurrent(layer: RecurrentLayer) -> LayerDescription:
    D = len(layer.directions)
    # a RecurrentLayer's activation names are resolved: "hard_sigmoid" is Keras 2's (generation=2 says so)
    return LayerDescription(
        layer.name,
        "Bidirectional" if D == 2 else layer.kind.value,
        layer.gate,
        layer.candidate,
        tuple(bool(r) for r in layer.reverse),
        layer.merge_mode,
        stateful=layer.stateful,
        generation=2,
        cell=layer.kind.value,
        reset_after=bool(layer.reset_after),
    )


def describe(obj: Any) -> List[LayerDescription]:
    """The descriptions of ``obj``: a Keras front-end layer (``LSTM``, ``Bidirectional``, ``LSTMCell``)
    or a list of them, a model file's :class:`~lstm_bridge.formats.LSTMLayer` (one description per
    stacked layer), a :class:`~lstm_bridge.recurrent.RecurrentLayer` or a :class:`~lstm_bridge.convert.Chain`,
    a :class:`~lstm_bridge.formats.ModelFile`, or a :class:`LayerDescription` (returned as is).
    MindSpore / PyTorch modules hold standard semantics only and describe as such.

    Raises:
        TypeError: an object of another kind.
    """
    if isinstance(obj, LayerDescription):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [d for o in obj for d in describe(o)]
    if hasattr(obj, "lstm_layers") and hasattr(obj, "framework"):
        return describe_model_file(obj)
    from .recurrent import RecurrentLayer

    if isinstance(obj, RecurrentLayer):
        return [_from_recurrent(obj)]
    if hasattr(obj, "layers") and hasattr(obj, "api") and hasattr(obj, "batch_first"):  # convert.Chain
        return [_from_recurrent(l) for l in obj.layers]
    if hasattr(obj, "semantics") and hasattr(obj, "weights") and hasattr(obj, "num_layers"):  # formats.LSTMLayer
        return _from_lstm_layer(obj)
    from .keras import GRU, LSTM, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell

    if isinstance(obj, (LSTM, GRU, SimpleRNN, Bidirectional, LSTMCell, GRUCell, SimpleRNNCell)):
        return [_from_keras_module(obj)]
    try:
        import torch

        torch_modules = (torch.nn.RNNBase, torch.nn.LSTMCell, torch.nn.GRUCell, torch.nn.RNNCell)
        if isinstance(obj, torch_modules) or (
            isinstance(obj, torch.nn.Module) and hasattr(obj, "hidden_size") and hasattr(obj, "has_bias")
        ):
            cell_kind, candidate = _module_cell(obj)
            name = type(obj).__name__
            if name.endswith("Cell"):
                return [LayerDescription("", cell_kind + "Cell", candidate=candidate, cell=cell_kind)]
            bidi = bool(getattr(obj, "bidirectional", False))
            return [
                LayerDescription(
                    f"l{l}",
                    "Bidirectional" if bidi else cell_kind,
                    candidate=candidate,
                    reverse=(False, True) if bidi else (False,),
                    cell=cell_kind,
                )
                for l in range(int(getattr(obj, "num_layers", 1)))
            ]
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    raise TypeError(
        f"cannot describe a {type(obj).__name__} as a recurrent layer; expected a Keras/MindSpore/"
        "PyTorch LSTM, a model file or one of its LSTM layers"
    )


def _module_cell(obj: Any) -> Tuple[str, str]:
    """``(cell kind, candidate activation)`` of a MindSpore / PyTorch recurrent module or cell: ``GRU``,
    ``RNN`` (``nonlinearity`` or torch's ``mode`` ``RNN_RELU``), else ``LSTM``."""
    name = type(obj).__name__
    mode = str(getattr(obj, "mode", ""))
    if name.startswith("GRU") or mode == "GRU":
        return "GRU", "tanh"
    if name.startswith("RNN") or mode.startswith("RNN_"):
        relu = getattr(obj, "nonlinearity", "tanh") == "relu" or mode == "RNN_RELU"
        return "RNN", "relu" if relu else "tanh"
    return "LSTM", "tanh"


def describe_model_file(mf: Any, layer: Optional[str] = None) -> List[LayerDescription]:
    """The descriptions of every recurrent entry (LSTM, GRU, simple RNN) of a
    :class:`~lstm_bridge.formats.ModelFile` (or of the one called ``layer``)."""
    out: List[LayerDescription] = []
    entries = mf.recurrent_entries() if hasattr(mf, "recurrent_entries") else mf.lstm_layers()
    for e in entries:
        if layer is None or e.name == layer:
            out.extend(_from_lstm_layer(e))
    return out


# --- the rule ----------------------------------------------------------------------------------


def _meaning(gate: str, generation: Optional[int]) -> str:
    if gate == "hard_sigmoid":
        if generation is None:
            return "clip(0.2x + 0.5, 0, 1) in Keras 2 / tf_keras / TF 1.x, relu6(x + 3) / 6 in Keras 3"
        return "Keras 2 hard_sigmoid = clip(0.2x + 0.5, 0, 1)"
    if gate == "hard_sigmoid_keras3":
        return "Keras 3 hard_sigmoid = relu6(x + 3) / 6"
    return "not sigmoid"


def _shown(name: str) -> str:
    """The activation as the user wrote it (``hard_sigmoid_keras3`` is Keras 3's ``hard_sigmoid``)."""
    return name[len("unknown:") :] if name.startswith("unknown:") else name


def _family_standard(d: LayerDescription, target: str) -> List[str]:
    """The torch / MindSpore rules of a GRU or simple RNN (layer, Bidirectional or cell)."""
    module = MODULES[d.cell][0 if target == "torch" else 1]
    if d.kind.endswith("Cell"):
        module += "Cell"
    out: List[str] = []
    if d.cell == "GRU":
        if d.gate not in _STANDARD_GATES:
            out.append(
                UNSUPPORTED["gru_gate"].format(
                    module=module, value=_shown(d.gate), meaning=_meaning(d.gate, d.generation)
                )
            )
        if d.candidate not in _STANDARD_CANDIDATES:
            out.append(UNSUPPORTED["gru_candidate"].format(module=module, value=_shown(d.candidate)))
        if not d.reset_after:
            out.append(UNSUPPORTED["gru_reset_before"].format(module=module))
    elif d.candidate not in _STANDARD_CANDIDATES + ("relu",):
        out.append(UNSUPPORTED["rnn_activation"].format(module=module, value=_shown(d.candidate)))
    if d.kind.endswith("Cell"):
        return out
    lstm_module = MODULES["LSTM"][1]
    structural = [r.replace(lstm_module, module) for r in _structure(d, target)]
    return out + structural


def _structure(d: LayerDescription, target: str) -> List[str]:
    """The direction / state / merge rules every torch / MindSpore recurrent module shares."""
    out: List[str] = []
    if d.stateful:
        out.append(UNSUPPORTED["stateful"])
    if len(d.reverse) == 1 and d.reverse[0]:
        out.append(UNSUPPORTED["go_backwards"])
    if len(d.reverse) == 2:
        if list(d.reverse) != [False, True]:
            out.append(UNSUPPORTED["flipped_bidirectional"].format(target=_TARGET_TEXT[target]))
        if d.merge_mode != "concat":
            out.append(UNSUPPORTED["merge_mode"].format(value=d.merge_mode))
        if d.backward_differs:
            out.append(UNSUPPORTED["backward_layer"].format(value=", ".join(d.backward_differs)))
    return out


def _standard(d: LayerDescription, target: str) -> List[str]:
    if d.cell != "LSTM":
        return _family_standard(d, target)
    out: List[str] = []
    if d.kind == "LSTMCell":
        if d.gate not in _STANDARD_GATES:
            out.append(
                UNSUPPORTED["recurrent_activation"].format(value=_shown(d.gate), meaning=_meaning(d.gate, d.generation))
            )
        if d.candidate not in _STANDARD_CANDIDATES:
            out.append(UNSUPPORTED["activation"].format(value=_shown(d.candidate)))
        return out
    if d.gate not in _STANDARD_GATES:
        out.append(
            UNSUPPORTED["recurrent_activation"].format(value=_shown(d.gate), meaning=_meaning(d.gate, d.generation))
        )
    if d.candidate not in _STANDARD_CANDIDATES:
        out.append(UNSUPPORTED["activation"].format(value=_shown(d.candidate)))
    return out + _structure(d, target)


def _onnx(d: LayerDescription) -> List[str]:
    # one ONNX operator per cell kind: LSTM, GRU (linear_before_reset 1 = reset_after, 0 = reset-before),
    # RNN (one activation); every activation of ONNX_ACTIVATIONS is one of the operators' named functions
    if d.kind == "LSTMCell":
        return [UNSUPPORTED["onnx_cell"]]
    if d.kind.endswith("Cell"):
        return [UNSUPPORTED["onnx_cell"].replace("an LSTMCell", f"a {d.kind}").replace("LSTM", d.cell)]
    op = f"ONNX {d.cell}"
    out: List[str] = []
    supported = ", ".join(sorted(ONNX_ACTIVATIONS))
    roles = (
        (("activation", d.candidate),)
        if d.cell == "RNN"
        else (("recurrent_activation", d.gate), ("activation", d.candidate))
    )
    for which, value in roles:
        if value not in ONNX_ACTIVATIONS:
            out.append(
                UNSUPPORTED["onnx_activation"]
                .format(which=which, value=_shown(value), supported=supported)
                .replace("ONNX LSTM", op)
            )
    if d.stateful:
        out.append(UNSUPPORTED["onnx_stateful"])
    if len(d.reverse) == 2 and list(d.reverse) != [False, True]:
        out.append(UNSUPPORTED["flipped_bidirectional"].format(target=op))
    if len(d.reverse) == 2 and {"activation", "recurrent_activation", "reset_after"} & set(d.backward_differs):
        out.append(
            UNSUPPORTED["backward_layer"].format(value=", ".join(d.backward_differs)).replace("mindspore.nn.LSTM", op)
        )
    return out


def _keras(d: LayerDescription, gen: int) -> List[str]:
    if d.kind == "LSTMCell":
        return [UNSUPPORTED["keras_cell"]]
    if d.kind.endswith("Cell"):
        layer = KERAS_MODULES.get(d.cell, d.cell)
        return [
            UNSUPPORTED["keras_cell"]
            .replace("an LSTMCell", f"a {d.kind}")
            .replace("RNN(LSTMCell(...))", f"RNN({layer}Cell(...))")
        ]
    from .formats.keras_plan import target_activation  # the Keras naming rule of each generation
    from .formats.model import FormatError

    out: List[str] = []
    if d.cell == "RNN" and not d.activation_known:
        name = d.name.rsplit(".l", 1)[0] if ".l" in d.name else d.name
        out.append(UNSUPPORTED["rnn_nonlinearity_unknown"].format(target=_TARGET_TEXT[f"keras{gen}"], name=name))
    roles = (
        (("activation", d.candidate),)
        if d.cell == "RNN"
        else (("recurrent_activation", d.gate), ("activation", d.candidate))
    )
    for which, value in roles:
        if value.startswith("unknown:") and d.generation == gen and d.keras:
            continue  # a custom name from a file of the same generation is copied as it is
        try:
            target_activation(value, gen, which)
        except FormatError as exc:
            out.append(UNSUPPORTED["keras_activation"].format(reason=exc.problem))
    if gen == 3:
        if d.time_major:
            out.append(UNSUPPORTED["keras3_time_major"])
        if len(d.reverse) == 2 and list(d.reverse) != [False, True]:
            out.append(UNSUPPORTED["flipped_bidirectional"].format(target="Keras 3"))
    return out


def reasons(description: LayerDescription, target: str) -> List[str]:
    """Why the one layer ``description`` cannot be held by ``target`` (empty when it can), without
    the layer's name in front (:func:`violations` adds it)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {list(TARGETS)}")
    if target in ("mindspore", "torch"):
        return _standard(description, target)
    if target == "onnx":
        return _onnx(description)
    return _keras(description, 2 if target == "keras2" else 3)


def violations(layer: Any, target: str) -> List[str]:
    """Why ``layer`` cannot be held by ``target`` (one of :data:`TARGETS`); empty when it can.

    ``layer`` is anything :func:`describe` accepts (a list gives the reasons of all its layers).
    Each reason starts with the layer (``"LSTM 'hs': ..."``).

    Raises:
        ValueError: an unknown target.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {list(TARGETS)}")
    return [f"{d.label}: {r}" for d in describe(layer) for r in reasons(d, target)]


def _message(
    problems: Sequence[str], target: str, keras: bool, what: str = "", cells: Sequence[str] = ("LSTM",)
) -> str:
    text_target = _TARGET_TEXT[target]
    if target in ("mindspore", "torch", "onnx") and list(cells) != ["LSTM"]:
        base = {"mindspore": "mindspore.nn.", "torch": "torch.nn.", "onnx": "ONNX "}[target]
        text_target = base + " / ".join(dict.fromkeys(cells))
    head = f"{what} cannot be expressed as {text_target}" if what else f"cannot be expressed as {text_target}"
    text = head + ":\n  - " + "\n  - ".join(problems)
    if keras and target in ("mindspore", "torch", "onnx"):
        text += "\n" + exact_module_hint(cells)
    return text


def _refused_cells(descriptions: Sequence[LayerDescription], target: str) -> List[str]:
    """The cell kinds of the descriptions ``target`` refuses (which lstm-bridge modules the hint names)."""
    return list(dict.fromkeys(d.cell for d in descriptions if reasons(d, target))) or ["LSTM"]


def check_expressible(layer: Any, target: str) -> None:
    """Raise :class:`ValueError` naming the layer and every reason when ``layer`` cannot be held by
    ``target`` (see :func:`violations`); Keras layers refused by MindSpore/PyTorch/ONNX also get
    :data:`EXACT_MODULE_HINT`."""
    problems = violations(layer, target)
    if problems:
        described = describe(layer)
        keras = any(d.keras for d in described)
        cells = _refused_cells(described, target)
        if len(problems) == 1:
            message = problems[0] + (
                "\n" + exact_module_hint(cells) if keras and target in ("mindspore", "torch", "onnx") else ""
            )
            raise ValueError(message)
        raise ValueError(_message(problems, target, keras, cells=cells))


# --- masks and whole model files ---------------------------------------------------------------


def _mask_producers(mf: Any) -> List[Tuple[str, str]]:
    if getattr(mf, "framework", None) != "keras":
        return []
    out = []
    for e in mf.layers:
        cfg = e.config if isinstance(e.config, dict) else {}
        if e.kind == "Embedding" and cfg.get("mask_zero"):
            out.append((e.name, f"Embedding {e.name!r} has mask_zero=True"))
        elif e.kind == "Masking":
            out.append((e.name, f"Masking {e.name!r} (mask_value={cfg.get('mask_value', 0.0)!r})"))
    return out


def mask_producers(mf: Any) -> List[str]:
    """The layers of a Keras :class:`~lstm_bridge.formats.ModelFile` that produce a mask for the layers
    after them, as text (``"Embedding 'emb' has mask_zero=True"``, ``"Masking 'm' (mask_value=0.0)"``)."""
    return [text for _, text in _mask_producers(mf)]


def mask_lengths(mask: Any) -> Any:
    """The right-padding lengths ``(B,)`` (int32 tensor) of a Keras ``(B, T)`` mask (non-zero = keep):
    what ONNX ``sequence_lens`` and MindSpore ``seq_length`` can hold of a mask.

    Raises:
        ValueError: not ``(batch, time)``, or a row with holes or left padding (:data:`UNSUPPORTED`
            ``mask_holes``), naming the rows.
    """
    import numpy as np
    import torch

    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask) != 0
    if m.dim() != 2:
        raise ValueError(f"mask must be (batch, time); received shape {tuple(m.shape)}")
    lengths = m.sum(dim=1)
    expected = torch.arange(m.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    bad = (expected != m).any(dim=1).nonzero().flatten().tolist()
    if bad:
        raise ValueError(UNSUPPORTED["mask_holes"] + f"; rows {bad} are not right-padded")
    return lengths.to(torch.int32)


def lengths_violations(chain: Any) -> List[str]:
    """Why right-padding lengths (ONNX ``sequence_lens``, MindSpore ``seq_length``), which write zeros at
    padded steps and give the last valid state, cannot stand for the Keras mask of a
    :class:`~lstm_bridge.convert.Chain`'s last layer (empty when they can)."""
    if chain.api != "keras":
        return []
    out = []
    lay = chain.layers[-1]
    # (a go_backwards layer meets right padding first: its carried outputs there are the initial 0)
    if len(lay.directions) == 1 and not lay.reverse[0]:
        if lay.return_sequences and not lay.zero_output_for_mask:
            out.append(
                f"layer {lay.name!r}: a plain Keras {_KERAS_CLASS.get(lay.kind.value, 'LSTM')} with "
                "return_sequences repeats its last valid "
                "output at padded steps, but ONNX sequence_lens writes zeros; set zero_output_for_mask=True "
                "or export without lengths"
            )
        if not lay.return_sequences and lay.zero_output_for_mask:
            out.append(
                f"layer {lay.name!r}: zero_output_for_mask with return_sequences=False gives 0 for "
                "right-padded rows in Keras, but ONNX gives the last valid h"
            )
    return out


def state_dict_notes(mf: Any, target: str) -> Dict[str, str]:
    """``{entry: note}`` for a save report of a state-dict target (``mindspore`` / ``torch``): what such a
    file holds but cannot say: :func:`mask_notes`, and a simple RNN's ``relu`` (a ``torch.nn.RNN`` /
    MindSpore ``nn.RNN`` state dict has no nonlinearity: whoever loads it must pass ``nonlinearity="relu"``;
    lstm-bridge reads such a file as tanh)."""
    notes = mask_notes(mf, target)
    if target not in ("mindspore", "torch"):
        return notes
    module = MODULES["RNN"][0 if target == "torch" else 1]
    for d in describe_model_file(mf):
        if d.cell == "RNN" and d.candidate == "relu":
            notes[f"{d.name or '<root>'} (nonlinearity)"] = (
                f"a {target} state dict holds the weights, not the nonlinearity: build {module}(..., "
                "nonlinearity='relu') to load it (lstm-bridge reads a state dict's RNN as tanh)"
            )
    return notes


def mask_notes(mf: Any, target: str) -> Dict[str, str]:
    """``{entry: note}`` for a save report: the mask producers of a Keras model written to a state-dict
    target (``mindspore`` / ``torch``), whose files hold tensors but no model graph, so the mask is
    not in them (the weights are)."""
    if target not in ("mindspore", "torch"):
        return {}
    how = (
        "pass seq_length (right padding only)"
        if target == "mindspore"
        else "pack the padded batch (torch.nn.utils.rnn.pack_padded_sequence; right padding only)"
    )
    return {
        f"{name} (mask)": f"{text}: a {target} state dict holds tensors, not the model graph that applies "
        f"the mask; the model that loads it must {how}"
        for name, text in _mask_producers(mf)
    }


def model_violations(mf: Any, target: str, *, layer: Optional[str] = None, lengths: bool = False) -> List[str]:
    """Why the recurrent entries (LSTM, GRU, simple RNN) of a :class:`~lstm_bridge.formats.ModelFile` (or
    the one named ``layer``) cannot be held by ``target``, plus, for ``onnx`` without ``lengths``, the mask
    producers whose mask the graph would drop."""
    descriptions = describe_model_file(mf, layer)
    if target in ("keras2", "keras3") and any(not d.kind.endswith("Cell") for d in descriptions):
        # beside recurrent layers, cells are left out and listed in the save report (not a refusal)
        descriptions = [d for d in descriptions if not d.kind.endswith("Cell")]
    problems = violations(descriptions, target)
    if target == "onnx" and not lengths:
        problems += [UNSUPPORTED["mask_onnx"].format(producer=p) for p in mask_producers(mf)]
    if target in ("keras2", "keras3") and layer is None:
        from .formats.keras_plan import can_copy_config

        if not can_copy_config(mf, 2 if target == "keras2" else 3):  # a generated model: Masking is not carried
            problems += [
                UNSUPPORTED["mask_generated"].format(producer=text, target=_TARGET_TEXT[target])
                for _, text in _mask_producers(mf)
                if text.startswith("Masking")
            ]
    return problems


def check_model(
    mf: Any, target: Optional[str], *, path: Any = None, layer: Optional[str] = None, lengths: bool = False
) -> None:
    """Raise :class:`~lstm_bridge.formats.FormatError` (a ``ValueError``) naming ``path``, the layers and
    the reasons when ``mf`` cannot be held by ``target``; ``target=None`` (a weights-only format)
    accepts everything but LSTM cells in Keras weight files."""
    if target is None:
        return
    problems = model_violations(mf, target, layer=layer, lengths=lengths)
    if problems:
        from .formats.model import FormatError

        keras = getattr(mf, "framework", None) == "keras"
        src = getattr(mf, "path", None)
        what = f"{src}" if src else ""
        cells = _refused_cells(describe_model_file(mf, layer), target)
        raise FormatError(path, _message(problems, target, keras, what, cells))


def target_for_format(format_name: str) -> Optional[str]:
    """The target a file format's content must be expressible in (``None``: weights only).

    Raises:
        ValueError: a format this module does not know.
    """
    if format_name not in FORMAT_TARGETS:
        raise ValueError(f"no target known for file format {format_name!r}; known: {sorted(FORMAT_TARGETS)}")
    return FORMAT_TARGETS[format_name]
