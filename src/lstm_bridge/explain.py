"""What a Keras or MindSpore LSTM, GRU or simple-RNN call means on the other side, as data and functions.

``explain("tf.keras.layers.LSTM(16, return_sequences=True, return_state=True)")`` parses the call
safely (:mod:`ast`, literal arguments only, nothing is evaluated), and returns an
:class:`Explanation`: the equivalent call in the other framework, how outputs, states and inputs
must be rearranged, and, when there is no equivalent, why. ``lstm-bridge explain`` prints it; the
README's table is :func:`markdown_table`. Whether a layer can be expressed is decided by
:mod:`lstm_bridge.targets` (the one rule; its sentences are :data:`UNSUPPORTED`, re-exported here), which
every writer, :mod:`lstm_bridge.convert` and the CLI ask too.

Conventions used in the texts: Keras inputs are ``(B, T, F)`` (``(T, B, F)`` with ``time_major``),
MindSpore inputs ``(T, B, I)`` or ``(B, T, I)`` with ``batch_first``; MindSpore states are
``(L*D, B, H)`` with row ``layer*D + direction``; Keras states are ``(B, units)``.
Weights: Keras ``kernel (I, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``; MindSpore
``weight_ih_l{k} (4H, I)`` = ``kernel.T``, ``weight_hh_l{k} (4H, H)`` = ``recurrent_kernel.T``,
``bias_ih_l{k}`` = ``bias``, ``bias_hh_l{k}`` = 0 (back: ``bias = bias_ih + bias_hh``). Gate order i, f, g, o
on both sides.

The recurrent family (issue 11): Keras ``GRU`` / ``SimpleRNN`` (and ``Bidirectional`` of each, TF 1.15's
``tf.compat.v1.keras.layers.GRU`` with ``reset_after=False`` and ``hard_sigmoid`` by default) <->
``mindspore.nn.GRU`` / ``nn.RNN``. A Keras GRU's gate blocks are z, r, h; MindSpore's (= PyTorch's) r, z, n;
``reset_after=False`` has no MindSpore / PyTorch equivalent (:func:`lstm_bridge.weights.family.check_gru_form`).
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import targets as _targets

__all__ = [
    "ExplainError",
    "ParsedCall",
    "Explanation",
    "ArgumentRule",
    "UNSUPPORTED",
    "KERAS_RULES",
    "MINDSPORE_RULES",
    "parse_call",
    "explain",
    "format_explanation",
    "markdown_table",
]


class ExplainError(ValueError):
    """The text is not a call we can explain (not a literal-only LSTM call)."""


# --- the knowledge, as data ---------------------------------------------------------------------

#: Why a Keras semantic has no ``mindspore.nn.LSTM`` / ``torch.nn.LSTM`` equivalent: the sentences of
#: :data:`lstm_bridge.targets.UNSUPPORTED` (re-exported here), the one rule of what can be expressed where.
UNSUPPORTED: Dict[str, str] = _targets.UNSUPPORTED


@dataclass(frozen=True)
class ArgumentRule:
    """How one constructor argument crosses over.

    ``argument``: name on the source side; ``default``: its default there (as text); ``target``: what
    to write on the other side (``—`` when nothing); ``blocking``: the case that has no equivalent
    (empty when there is none); ``note``: the rearrangement or caveat.
    """

    argument: str
    default: str
    target: str
    blocking: str = ""
    note: str = ""


#: Keras ``LSTM`` / ``Bidirectional`` arguments -> ``mindspore.nn.LSTM``.
KERAS_RULES: Tuple[ArgumentRule, ...] = (
    ArgumentRule("units", "(required)", "hidden_size=units"),
    ArgumentRule(
        "(input features)",
        "inferred at build",
        "input_size=F",
        note="Keras infers the feature size F on the first call; MindSpore needs it up front",
    ),
    ArgumentRule("activation", "'tanh'", "— (tanh is fixed)", blocking="anything but 'tanh'"),
    ArgumentRule(
        "recurrent_activation",
        "'sigmoid' ('hard_sigmoid' in TF 1.15 / tf.compat.v1)",
        "— (sigmoid is fixed)",
        blocking="anything but 'sigmoid', e.g. 'hard_sigmoid'",
        note="'hard_sigmoid' is clip(0.2x+0.5, 0, 1) in Keras 2 / tf_keras / TF 1.x and relu6(x+3)/6 in Keras 3",
    ),
    ArgumentRule(
        "use_bias",
        "True",
        "has_bias=use_bias",
        note="bias -> bias_ih_l0; bias_hh_l0 = 0 (back: bias = bias_ih + bias_hh)",
    ),
    ArgumentRule(
        "kernel / recurrent_kernel",
        "weights",
        "weight_ih_l0 = kernel.T, weight_hh_l0 = recurrent_kernel.T",
        note="gate order i, f, g, o on both sides: no reordering",
    ),
    ArgumentRule(
        "*_initializer, unit_forget_bias",
        "glorot_uniform / orthogonal / zeros, True",
        "—",
        note="initialisation only; converted weights carry the values",
    ),
    ArgumentRule(
        "*_regularizer, *_constraint",
        "None",
        "—",
        note="training-time only: add the penalty to the loss / apply the constraint after each step yourself",
    ),
    ArgumentRule(
        "dropout, recurrent_dropout",
        "0.0",
        "—",
        blocking="> 0 when training",
        note="no effect at inference (training=False)",
    ),
    ArgumentRule("implementation, unroll", "2, False", "—", note="numerics only (identical to ~1e-7)"),
    ArgumentRule(
        "return_sequences",
        "False",
        "— (MindSpore always returns the sequence)",
        note="False: Keras output = output[-1] (time-major) or output[:, -1] (batch_first); "
        "Bidirectional: concat(h_n[-2], h_n[-1])",
    ),
    ArgumentRule(
        "return_state",
        "False",
        "— (MindSpore always returns (h_n, c_n))",
        note="Keras [output, h, c] = [output, h_n[-1], c_n[-1]]; Bidirectional [out, h_f, c_f, h_b, c_b] = "
        "[out, h_n[-2], c_n[-2], h_n[-1], c_n[-1]] (h_n is (L*D, B, H), Keras states are (B, units))",
    ),
    ArgumentRule("go_backwards", "False", "—", blocking="True outside Bidirectional"),
    ArgumentRule("stateful", "False", "—", blocking="True"),
    ArgumentRule(
        "time_major",
        "False (tf_keras only)",
        "batch_first = not time_major",
        note="Keras 3 has no time_major: inputs are (B, T, F) -> batch_first=True",
    ),
    ArgumentRule(
        "initial_state (call)",
        "None",
        "hx=(h0[None], c0[None])",
        note="Bidirectional [h_f, c_f, h_b, c_b] -> hx=(stack([h_f, h_b]), stack([c_f, c_b]))",
    ),
    ArgumentRule(
        "mask (call)",
        "None",
        "seq_length=mask.sum(1)",
        blocking="holes or left padding",
        note="right padding only; padded outputs: Keras repeats the last output (plain LSTM) or writes 0 "
        "(Bidirectional / zero_output_for_mask), MindSpore writes 0; MindSpore's CPU seq_length path "
        "uses approximate sigmoid/tanh (differences up to 1e-4)",
    ),
    ArgumentRule(
        "Bidirectional(merge_mode)",
        "'concat'",
        "bidirectional=True",
        blocking="'sum', 'mul', 'ave', None",
        note="output[..., :H] is forward, output[..., H:] is backward (flipped back to input time)",
    ),
    ArgumentRule(
        "stack of L layers",
        "—",
        "num_layers=L",
        blocking="return_sequences=False or a different units/direction in the middle",
        note="Keras Dropout layers between LSTMs -> dropout=p (between layers, training only)",
    ),
)

#: ``mindspore.nn.LSTM`` / ``LSTMCell`` arguments -> Keras.
MINDSPORE_RULES: Tuple[ArgumentRule, ...] = (
    ArgumentRule("input_size", "(required)", "— (Keras infers it; input_shape=(T, input_size) if you want)"),
    ArgumentRule("hidden_size", "(required)", "units=hidden_size"),
    ArgumentRule(
        "num_layers",
        "1",
        "a stack of num_layers LSTM layers, each return_sequences=True",
        note="h_n[l*D + d] is layer l's (direction d's) final h: take return_state=True on each layer",
    ),
    ArgumentRule("has_bias", "True", "use_bias=has_bias", note="bias = bias_ih + bias_hh (float32 sum)"),
    ArgumentRule(
        "batch_first",
        "False",
        "inputs (B, T, F): transpose x to batch-major when batch_first=False",
        note="or time_major=True in tf_keras (not in Keras 3); h_n/c_n are (L*D, B, H) either way",
    ),
    ArgumentRule(
        "dropout",
        "0.0",
        "tf.keras.layers.Dropout(dropout) between the stacked layers",
        note="MindSpore applies it to every layer's output except the last, only in training "
        "(Cells start in eval mode); LSTM(dropout=) in Keras is a different, per-step input mask",
    ),
    ArgumentRule(
        "bidirectional",
        "False",
        "Bidirectional(LSTM(...), merge_mode='concat')",
        note="output[..., :H] forward, output[..., H:] reverse, as Keras's concat",
    ),
    ArgumentRule("dtype", "float32", "dtype=", note="float16 parameters are cast up to x's dtype in MindSpore"),
    ArgumentRule("hx (call)", "zeros", "initial_state=[h0[l*D], c0[l*D]] (+ [h0[l*D+1], c0[l*D+1]]) for layer l"),
    ArgumentRule(
        "seq_length (call)",
        "None",
        "mask = arange(T) < seq_length[:, None], zero_output_for_mask=True",
        note="MindSpore reverses only the valid prefix; Keras Bidirectional does the same with a right-padded "
        "mask. MindSpore's CPU seq_length path uses approximate sigmoid/tanh (up to 1e-4)",
    ),
)


# --- parsing ------------------------------------------------------------------------------------

_KERAS_LSTM = {
    "tf.keras.layers.LSTM",
    "keras.layers.LSTM",
    "tf_keras.layers.LSTM",
    "tf.keras.layers.LSTMV2",
    "layers.LSTM",
    "tf.compat.v2.keras.layers.LSTM",
}
_KERAS_V1_LSTM = {"tf.compat.v1.keras.layers.LSTM", "tf.keras.layers.LSTMV1"}
_KERAS_BIDI = {
    "tf.keras.layers.Bidirectional",
    "keras.layers.Bidirectional",
    "tf_keras.layers.Bidirectional",
    "layers.Bidirectional",
    "Bidirectional",
    "tf.compat.v1.keras.layers.Bidirectional",
}
_KERAS_CELL = {"tf.keras.layers.LSTMCell", "keras.layers.LSTMCell", "tf_keras.layers.LSTMCell", "layers.LSTMCell"}
_MS_LSTM = {"mindspore.nn.LSTM", "ms.nn.LSTM", "nn.LSTM"}
#: the recurrent family: dotted names -> parsed kind (a bare ``GRU`` / ``RNN`` is decided by its arguments)
_FAMILY_CALLS: Dict[str, str] = {
    **{f"{m}.GRU": "keras.GRU" for m in ("tf.keras.layers", "keras.layers", "tf_keras.layers", "layers")},
    **{f"{m}.SimpleRNN": "keras.SimpleRNN" for m in ("tf.keras.layers", "keras.layers", "tf_keras.layers", "layers")},
    "SimpleRNN": "keras.SimpleRNN",
    "tf.compat.v1.keras.layers.GRU": "keras.v1.GRU",
    "tf.keras.layers.GRUV1": "keras.v1.GRU",
    **{f"{m}.GRU": "mindspore.GRU" for m in ("mindspore.nn", "ms.nn", "nn")},
    **{f"{m}.RNN": "mindspore.RNN" for m in ("mindspore.nn", "ms.nn", "nn")},
}
_KERAS_FAMILY = ("keras.GRU", "keras.v1.GRU", "keras.SimpleRNN")
_MS_CELL = {"mindspore.nn.LSTMCell", "ms.nn.LSTMCell", "nn.LSTMCell"}

_KERAS_SIGNATURE = ("units", "activation", "recurrent_activation", "use_bias")
_MS_SIGNATURE = ("input_size", "hidden_size", "num_layers", "has_bias", "batch_first", "dropout", "bidirectional")
_MS_CELL_SIGNATURE = ("input_size", "hidden_size", "has_bias")
_FAMILY_SIGNATURE = {
    "keras.GRU": _KERAS_SIGNATURE,
    "keras.v1.GRU": _KERAS_SIGNATURE,
    "keras.SimpleRNN": ("units", "activation", "use_bias"),
}


@dataclass
class ParsedCall:
    """A literal-only layer call: ``kind`` is one of ``keras.LSTM``, ``keras.v1.LSTM``,
    ``keras.Bidirectional``, ``keras.LSTMCell``, ``mindspore.LSTM``, ``mindspore.LSTMCell``;
    ``kwargs`` holds every argument by name (positional ones bound to the signature); ``inner`` is the
    wrapped layer of a ``Bidirectional``; ``callee`` is the name as written."""

    kind: str
    callee: str
    kwargs: Dict[str, Any]
    inner: Optional[ParsedCall] = None
    backward: Optional[ParsedCall] = None

    @property
    def framework(self) -> str:
        return self.kind.split(".")[0]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    raise ExplainError(f"expected a dotted name such as tf.keras.layers.LSTM; received {ast.dump(node)}")


def _literal(node: ast.AST, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ExplainError(
            f"{where}: only literal arguments (numbers, strings, True/False/None, tuples, lists, dicts) can be "
            f"explained; received {ast.unparse(node) if hasattr(ast, 'unparse') else ast.dump(node)!r}"
        ) from exc


def _bind(callee: str, node: ast.Call, signature: Sequence[str]) -> Dict[str, Any]:
    if len(node.args) > len(signature):
        raise ExplainError(
            f"{callee} takes at most {len(signature)} positional arguments "
            f"({', '.join(signature)}); received {len(node.args)}"
        )
    kwargs: Dict[str, Any] = {}
    for name, arg in zip(signature, node.args):
        if isinstance(arg, ast.Starred):
            raise ExplainError(f"{callee}: *args cannot be explained; write the arguments out")
        kwargs[name] = _literal(arg, f"{callee} argument {name!r}")
    for kw in node.keywords:
        if kw.arg is None:
            raise ExplainError(f"{callee}: **kwargs cannot be explained; write the arguments out")
        if kw.arg in kwargs:
            raise ExplainError(f"{callee}: argument {kw.arg!r} given twice")
        if kw.arg in ("layer", "backward_layer"):
            continue
        kwargs[kw.arg] = _literal(kw.value, f"{callee} argument {kw.arg!r}")
    return kwargs


def _parse_node(node: ast.AST) -> ParsedCall:
    if not isinstance(node, ast.Call):
        raise ExplainError(
            "expected a layer call such as tf.keras.layers.LSTM(16) or mindspore.nn.LSTM(10, 16); "
            f"received {type(node).__name__}"
        )
    callee = _dotted(node.func)
    if callee in _KERAS_BIDI:
        args = list(node.args)
        kws = {kw.arg: kw.value for kw in node.keywords}
        layer_node = kws.pop("layer", None) or (args.pop(0) if args else None)
        if layer_node is None:
            raise ExplainError(f"{callee} needs the wrapped layer, e.g. {callee}(tf.keras.layers.LSTM(8))")
        inner = _parse_node(layer_node)
        if inner.kind not in ("keras.LSTM", "keras.v1.LSTM") + _KERAS_FAMILY:
            raise ExplainError(f"{callee} must wrap a Keras LSTM, GRU or SimpleRNN here; received {inner.callee}")
        backward = None
        back_node = kws.pop("backward_layer", None)
        if back_node is None and len(args) >= 2:
            back_node = args[1]
        if back_node is not None and not (isinstance(back_node, ast.Constant) and back_node.value is None):
            backward = _parse_node(back_node)
        kwargs: Dict[str, Any] = {"merge_mode": "concat"}
        if args:
            kwargs["merge_mode"] = _literal(args[0], f"{callee} argument 'merge_mode'")
        for key, value in kws.items():
            if key is None:
                raise ExplainError(f"{callee}: **kwargs cannot be explained")
            kwargs[key] = _literal(value, f"{callee} argument {key!r}")
        return ParsedCall("keras.Bidirectional", callee, kwargs, inner=inner, backward=backward)
    family = _FAMILY_CALLS.get(callee) or (
        {"GRU": "keras.GRU", "RNN": "mindspore.RNN"}.get(callee) if callee in ("GRU", "RNN") else None
    )
    if callee == "GRU" and _looks_mindspore(node):
        family = "mindspore.GRU"
    if family is not None:
        signature = _MS_SIGNATURE if family.startswith("mindspore.") else _FAMILY_SIGNATURE[family]
        return ParsedCall(family, callee, _bind(callee, node, signature))
    if callee in _KERAS_LSTM or callee == "LSTM" and not _looks_mindspore(node):
        return ParsedCall("keras.LSTM", callee, _bind(callee, node, _KERAS_SIGNATURE))
    if callee in _KERAS_V1_LSTM:
        return ParsedCall("keras.v1.LSTM", callee, _bind(callee, node, _KERAS_SIGNATURE))
    if callee in _KERAS_CELL or callee == "LSTMCell" and not _looks_mindspore(node):
        return ParsedCall("keras.LSTMCell", callee, _bind(callee, node, _KERAS_SIGNATURE))
    if callee in _MS_LSTM or callee == "LSTM":
        return ParsedCall("mindspore.LSTM", callee, _bind(callee, node, _MS_SIGNATURE))
    if callee in _MS_CELL or callee == "LSTMCell":
        return ParsedCall("mindspore.LSTMCell", callee, _bind(callee, node, _MS_CELL_SIGNATURE))
    known = sorted(_KERAS_LSTM | _KERAS_V1_LSTM | _KERAS_BIDI | _KERAS_CELL | _MS_LSTM | _MS_CELL | set(_FAMILY_CALLS))
    raise ExplainError(f"unknown layer {callee!r}; expected one of {', '.join(known)}")


def _looks_mindspore(node: ast.Call) -> bool:
    """A bare ``LSTM(...)``: MindSpore when it names MindSpore arguments or has two leading ints."""
    names = {kw.arg for kw in node.keywords}
    if names & {"input_size", "hidden_size", "num_layers", "has_bias", "batch_first", "bidirectional"}:
        return True
    return len(node.args) >= 2 and all(isinstance(a, ast.Constant) and type(a.value) is int for a in node.args[:2])


#: keyword arguments each kind accepts beyond its constructor's signature (Keras base-layer arguments)
_KERAS_LAYER_EXTRA = (
    "name",
    "trainable",
    "dtype",
    "zero_output_for_mask",
    "input_shape",
    "batch_input_shape",
    "batch_size",
    "input_dim",
    "use_cudnn",
    "input_length",
    "weights",
    "activity_regularizer",
)
_BIDI_ARGS = ("layer", "merge_mode", "weights", "backward_layer", "name", "trainable", "dtype", "input_shape")
#: sizes that must be positive integers, per kind
_SIZES = {
    "keras.GRU": ("units",),
    "keras.v1.GRU": ("units",),
    "keras.SimpleRNN": ("units",),
    "mindspore.GRU": ("input_size", "hidden_size", "num_layers"),
    "mindspore.RNN": ("input_size", "hidden_size", "num_layers"),
    "keras.LSTM": ("units",),
    "keras.v1.LSTM": ("units",),
    "keras.LSTMCell": ("units",),
    "mindspore.LSTM": ("input_size", "hidden_size", "num_layers"),
    "mindspore.LSTMCell": ("input_size", "hidden_size"),
}
_MAX_SIZE = 2**31 - 1


def _accepted(kind: str) -> Tuple[str, ...]:
    """The keyword arguments the real constructor of ``kind`` accepts (from the lstm-bridge front end,
    whose signatures are the frameworks')."""
    import inspect

    if kind == "keras.Bidirectional":
        return _BIDI_ARGS
    cls: Any
    extra: Tuple[str, ...]
    if kind in _FAMILY_KINDS:
        cls, extra = _family_class(kind), (_KERAS_LAYER_EXTRA if kind.startswith("keras.") else ())
    elif kind.startswith("keras."):
        from .keras import LSTM, LSTMCell

        cls = LSTMCell if kind == "keras.LSTMCell" else LSTM
        extra = _KERAS_LAYER_EXTRA
    else:
        from .mindspore import LSTM as MsLSTM, LSTMCell as MsCell

        cls = MsCell if kind == "mindspore.LSTMCell" else MsLSTM
        extra = ()
    params = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in ("self", "numerics")
    ]
    return tuple(params) + tuple(e for e in extra if e not in params)


_FAMILY_KINDS = ("keras.GRU", "keras.v1.GRU", "keras.SimpleRNN", "mindspore.GRU", "mindspore.RNN")


def _family_class(kind: str) -> Any:
    """The lstm-bridge front-end class whose signature is the real constructor's."""
    if kind.startswith("keras."):
        from . import keras as _keras

        return {"keras.GRU": _keras.GRU, "keras.v1.GRU": _keras.v1.GRU, "keras.SimpleRNN": _keras.SimpleRNN}[kind]
    from . import mindspore as _ms

    return _ms.GRU if kind == "mindspore.GRU" else _ms.RNN


def _validate(call: ParsedCall) -> None:
    """Refuse what the real constructor refuses: unknown keyword arguments and sizes that are not
    positive integers (Keras: "Received an invalid value for argument `units`, expected a positive
    integer")."""
    accepted = _accepted(call.kind)
    unknown = [k for k in call.kwargs if k not in accepted]
    if unknown:
        raise ExplainError(
            f"{call.callee}: unknown keyword argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; accepted: {', '.join(accepted)}"
        )
    for name in _SIZES.get(call.kind, ()):
        if name not in call.kwargs:
            continue
        value = call.kwargs[name]
        if type(value) is not int or not 1 <= value <= _MAX_SIZE:
            raise ExplainError(
                f"{call.callee}: received an invalid value for argument `{name}`, expected a "
                f"positive integer (at most {_MAX_SIZE}); received {value!r}"
            )
    for sub in (call.inner, call.backward):
        if sub is not None:
            _validate(sub)


def parse_call(text: str) -> ParsedCall:
    """Parse ``text`` (one Python call expression) without evaluating anything.

    Raises:
        ExplainError: not a single call, a non-literal argument, or an unknown layer name.
    """
    if len(text) > 10_000:
        raise ExplainError(f"call text too long ({len(text)} characters; at most 10000)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExplainError(f"not a Python expression: {exc.msg} (column {exc.offset}) in {text!r}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise ExplainError(f"not a Python expression we can parse: {type(exc).__name__}: {exc}") from exc
    try:
        call = _parse_node(tree.body)
    except RecursionError as exc:
        raise ExplainError("the call is nested too deeply") from exc
    _validate(call)
    return call


# --- explaining ---------------------------------------------------------------------------------


@dataclass
class Explanation:
    """The result of :func:`explain`.

    ``source`` is the parsed call; ``target`` the equivalent call on the other side (a code string,
    possibly several lines), or ``None`` when there is none; ``blocking`` the reasons it is not
    expressible; ``rearrange`` how inputs/outputs/states/weights map; ``notes`` caveats that do not
    block (training-only options, numerics).
    """

    source: ParsedCall
    target: Optional[str]
    blocking: List[str] = field(default_factory=list)
    rearrange: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def expressible(self) -> bool:
        return not self.blocking


def _resolved_gate(value: Any, kind: str, keras_version: Optional[int]) -> str:
    """The resolved activation name (:mod:`lstm_bridge.targets`) of a Keras name as written."""
    name = value if isinstance(value, str) else repr(value)
    if name == "hard_sigmoid" and keras_version == 3 and kind != "keras.v1.LSTM":
        return "hard_sigmoid_keras3"
    return name


def _description(
    call: ParsedCall,
    keras_version: Optional[int],
    *,
    kind: str = "LSTM",
    reverse: Optional[Tuple[bool, ...]] = None,
    merge_mode: Optional[str] = "concat",
    backward_differs: Tuple[str, ...] = (),
) -> _targets.LayerDescription:
    kw = call.kwargs
    default_rec = "hard_sigmoid" if call.kind == "keras.v1.LSTM" else "sigmoid"
    generation = 2 if call.kind == "keras.v1.LSTM" else keras_version
    return _targets.LayerDescription(
        name=str(kw.get("name", "")),
        kind=kind,
        gate=_resolved_gate(kw.get("recurrent_activation", default_rec), call.kind, keras_version),
        candidate=_resolved_gate(kw.get("activation", "tanh"), call.kind, keras_version),
        reverse=reverse if reverse is not None else (bool(kw.get("go_backwards", False)),),
        merge_mode=merge_mode,
        stateful=bool(kw.get("stateful", False)),
        time_major=bool(kw.get("time_major", False)),
        backward_differs=backward_differs,
        keras=True,
        generation=generation,
    )


def _keras_blocking(
    call: ParsedCall, keras_version: Optional[int], desc: Optional[_targets.LayerDescription] = None
) -> Tuple[List[str], List[str]]:
    """The reasons (from :func:`lstm_bridge.targets.reasons`) and notes for a Keras layer call."""
    kw = call.kwargs
    desc = desc or _description(call, keras_version, kind="LSTMCell" if call.kind == "keras.LSTMCell" else "LSTM")
    blocking = _targets.reasons(desc, "mindspore")
    if "recurrent_activation" not in kw and call.kind == "keras.v1.LSTM":
        blocking = [b + " (the TF 1.15 default)" if "recurrent_activation=" in b else b for b in blocking]
    notes: List[str] = []
    if kw.get("dropout", 0) or kw.get("recurrent_dropout", 0):
        notes.append(UNSUPPORTED["dropout_training"])
    for name in (
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
    ):
        if kw.get(name) is not None:
            notes.append(
                f"{name}={kw[name]!r} is training-time only and has no layer argument in MindSpore; "
                "apply it in your training loop"
            )
    if kw.get("unroll"):
        notes.append("unroll=True is fine: the same numbers as the loop")
    return blocking, notes


def _ms_call(
    units: Any, input_size: str, num_layers: int, has_bias: bool, batch_first: bool, bidirectional: bool
) -> str:
    return (
        f"mindspore.nn.LSTM(input_size={input_size}, hidden_size={units!r}, num_layers={num_layers}, "
        f"has_bias={has_bias}, batch_first={batch_first}, bidirectional={bidirectional})"
    )


def _input_size_text(kw: Dict[str, Any]) -> str:
    shape = kw.get("input_shape")
    if isinstance(shape, (tuple, list)) and shape and isinstance(shape[-1], int):
        return str(shape[-1])
    if isinstance(kw.get("input_dim"), int):
        return str(kw["input_dim"])
    return "F"


def _explain_keras(call: ParsedCall, keras_version: Optional[int]) -> Explanation:
    bidi = call.kind == "keras.Bidirectional"
    layer = call.inner if bidi else call
    assert layer is not None
    kw = layer.kwargs
    if layer.kind == "keras.LSTMCell":
        return _explain_keras_cell(call, keras_version)
    units = kw.get("units", "units")
    if bidi:
        merge = call.kwargs.get("merge_mode", "concat")
        go_back = bool(kw.get("go_backwards", False))
        diffs: Tuple[str, ...] = ()
        back_go = not go_back
        if call.backward is not None:
            b = call.backward.kwargs
            diffs = tuple(
                k
                for k in ("units", "activation", "recurrent_activation", "use_bias")
                if b.get(k, _KERAS_DEFAULTS[k]) != kw.get(k, _KERAS_DEFAULTS[k])
            )
            back_go = bool(b.get("go_backwards", False))
        desc = _description(
            layer,
            keras_version,
            kind="Bidirectional",
            reverse=(go_back, back_go),
            merge_mode=merge,
            backward_differs=diffs,
        )
        blocking, notes = _keras_blocking(layer, keras_version, desc)
        if call.backward is not None:
            b_desc = _description(call.backward, keras_version, reverse=(False,))
            b_block, _ = _keras_blocking(call.backward, keras_version, b_desc)
            blocking.extend(x for x in b_block if x not in blocking)
            if not call.backward.kwargs.get("go_backwards", False):
                blocking.append(
                    "Bidirectional's backward_layer must have go_backwards=True (Keras requires "
                    "the two layers' go_backwards to differ)"
                )
    else:
        blocking, notes = _keras_blocking(layer, keras_version)
    if blocking:
        notes.append(_targets.EXACT_MODULE_HINT)
    time_major = bool(kw.get("time_major", False))
    batch_first = not time_major
    has_bias = bool(kw.get("use_bias", True))
    target = None if blocking else _ms_call(units, _input_size_text(kw), 1, has_bias, batch_first, bidi)
    rs = bool(kw.get("return_sequences", False))
    st = bool(kw.get("return_state", False))
    D = 2 if bidi else 1
    seq_ax = "output[-1]" if time_major else "output[:, -1]"
    re: List[str] = []
    re.append(
        f"inputs: Keras x is {'(T, B, F)' if time_major else '(B, T, F)'}; pass it unchanged "
        f"(batch_first={batch_first})"
    )
    re.append(
        f"call: output, (h_n, c_n) = net(x, hx)  with h_n, c_n of shape ({D}, B, {units}) (rows: layer*D + direction)"
    )
    if bidi:
        keras_out = (
            "output (both halves concatenated: [:H] forward, [H:] backward)"
            if rs
            else "concat(h_n[-2], h_n[-1]) (the forward final h, then the backward final h)"
        )
    else:
        keras_out = "output" if rs else f"{seq_ax}  (== h_n[-1])"
    re.append(f"Keras output = {keras_out}")
    if st:
        if bidi:
            re.append("Keras states [h_f, c_f, h_b, c_b] = [h_n[-2], c_n[-2], h_n[-1], c_n[-1]], each (B, units)")
        else:
            re.append("Keras states [h, c] = [h_n[-1], c_n[-1]], each (B, units) (h first, then c)")
    if bidi:
        re.append("initial_state=[h_f, c_f, h_b, c_b] -> hx=(stack([h_f, h_b]), stack([c_f, c_b]))")
    else:
        re.append("initial_state=[h0, c0] -> hx=(h0[None], c0[None])")
    suffix = ["l0", "l0_reverse"] if bidi else ["l0"]
    for d, s in enumerate(suffix):
        who = "" if not bidi else (" (forward layer)" if d == 0 else " (backward layer)")
        re.append(
            f"weights{who}: weight_ih_{s} = kernel.T (4H, F), weight_hh_{s} = recurrent_kernel.T (4H, H)"
            + (f", bias_ih_{s} = bias, bias_hh_{s} = 0" if has_bias else "")
        )
    re.append(
        "masks: a right-padded mask (B, T) -> seq_length = mask.sum(1); holes/left padding: no equivalent. "
        + (
            "Padded outputs are 0 on both sides."
            if bidi and rs
            else "Keras repeats the last valid output at padded steps (0 with zero_output_for_mask=True), "
            "MindSpore writes 0."
        )
        + " MindSpore's CPU seq_length path uses approximate sigmoid/tanh (up to 1e-4)."
    )
    if kw.get("time_major") is not None:
        notes.append("time_major exists only in tf_keras / tf.keras 2.x; Keras 3 rejects it")
    return Explanation(call, target, blocking, re, notes)


_KERAS_DEFAULTS = {"units": None, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}


def _explain_keras_cell(call: ParsedCall, keras_version: Optional[int]) -> Explanation:
    kw = call.kwargs
    blocking, notes = _keras_blocking(call, keras_version)
    if blocking:
        notes.append(_targets.EXACT_MODULE_HINT.replace("keras.LSTM (a", "keras.LSTMCell (a"))
    units = kw.get("units", "units")
    has_bias = bool(kw.get("use_bias", True))
    target = None if blocking else f"mindspore.nn.LSTMCell(input_size=F, hidden_size={units!r}, has_bias={has_bias})"
    re = [
        "call: Keras h, [h, c] = cell(x, [h0, c0]) -> MindSpore h, c = cell(x, (h0, c0)); x (B, F), states (B, H)",
        "MindSpore LSTMCell has no default state: pass zeros for a fresh start",
        "weights: weight_ih = kernel.T, weight_hh = recurrent_kernel.T"
        + (", bias_ih = bias, bias_hh = 0" if has_bias else ""),
    ]
    notes.append("MindSpore's LSTMCell uses its approximate CPU sigmoid/tanh: results agree to ~1e-4, not 1e-6")
    return Explanation(call, target, blocking, re, notes)


def _explain_mindspore(call: ParsedCall) -> Explanation:
    kw = call.kwargs
    blocking: List[str] = []
    notes: List[str] = []
    if call.kind == "mindspore.LSTMCell":
        H = kw.get("hidden_size", "H")
        has_bias = bool(kw.get("has_bias", True))
        target = f"tf.keras.layers.LSTMCell({H!r}, use_bias={has_bias})"
        re = [
            "call: MindSpore h, c = cell(x, (h0, c0)) -> Keras h, [h, c] = cell(x, [h0, c0]); x (B, I), states (B, H)",
            "weights: kernel = weight_ih.T (I, 4H), recurrent_kernel = weight_hh.T (H, 4H)"
            + (", bias = bias_ih + bias_hh" if has_bias else ""),
        ]
        notes.append("MindSpore's LSTMCell uses its approximate CPU sigmoid/tanh (up to 1e-4 from Keras's exact ones)")
        return Explanation(call, target, blocking, re, notes)
    for name in ("input_size", "hidden_size"):
        if name not in kw:
            raise ExplainError(f"{call.callee} needs {name}; received arguments {sorted(kw)}")
    I, H = kw["input_size"], kw["hidden_size"]
    L = kw.get("num_layers", 1)
    has_bias = bool(kw.get("has_bias", True))
    batch_first = bool(kw.get("batch_first", False))
    bidi = bool(kw.get("bidirectional", False))
    dropout = kw.get("dropout", 0.0)
    if not isinstance(L, int) or isinstance(L, bool) or not 1 <= L <= 1000:
        raise ExplainError(f"num_layers must be an int in [1, 1000]; received {L!r}")
    D = 2 if bidi else 1
    lines = ["import tensorflow as tf", f"x = tf.keras.Input(shape=(None, {I!r}))  # (B, T, I)"]
    if not batch_first:
        lines[-1] += ": transpose MindSpore's (T, B, I) input with tf.transpose(x, [1, 0, 2])"
    lines.append("y, states = x, []")
    for layer in range(L):
        lstm = (
            f"tf.keras.layers.LSTM({H!r}, return_sequences=True, return_state=True"
            + ("" if has_bias else ", use_bias=False")
            + ")"
        )
        if bidi:
            lines.append(f"y, h_f, c_f, h_b, c_b = tf.keras.layers.Bidirectional({lstm})(y)  # layer {layer}")
            lines.append("states += [(h_f, c_f), (h_b, c_b)]")
        else:
            lines.append(f"y, h, c = {lstm}(y)  # layer {layer}")
            lines.append("states.append((h, c))")
        if dropout and layer < L - 1:
            lines.append(f"y = tf.keras.layers.Dropout({dropout!r})(y)  # MindSpore dropout between layers")
    target = "\n".join(lines)
    re = [
        f"inputs: MindSpore x {'(B, T, I)' if batch_first else '(T, B, I)'} -> Keras (B, T, I)"
        + ("" if batch_first else ": x.transpose(1, 0, 2) (or time_major=True in tf_keras)"),
        "output = y"
        + ("" if batch_first else ", transposed back to (T, B, D*H)")
        + (f" ([..., :{H}] forward, [..., {H}:] reverse)" if bidi else ""),
        f"h_n = stack([h for h, c in states]) and c_n = stack([c for h, c in states]): shape ({L * D}, B, {H}), "
        "row layer*D + direction",
        "hx=(h0, c0) -> layer l gets initial_state=[h0[l*D], c0[l*D]]"
        + (" + [h0[l*D+1], c0[l*D+1]] for its backward half" if bidi else ""),
        "weights (layer l"
        + (", direction suffix '' or '_reverse' = forward / backward layer" if bidi else "")
        + "): kernel = weight_ih_l{l}.T, recurrent_kernel = weight_hh_l{l}.T"
        + (", bias = bias_ih_l{l} + bias_hh_l{l}" if has_bias else ""),
        "seq_length -> mask = tf.sequence_mask(seq_length, T) with zero_output_for_mask=True on plain LSTMs "
        "(Bidirectional already zeroes padded outputs); the reverse direction then skips the padding like "
        "MindSpore. MindSpore's CPU seq_length path uses approximate sigmoid/tanh (up to 1e-4)",
    ]
    if dropout:
        notes.append("dropout acts only in training (MindSpore Cells start in eval mode; set_train(True))")
    if not batch_first:
        notes.append("Keras 3 has no time_major: inputs must be batch-major")
    return Explanation(call, target, blocking, re, notes)


def explain(text: str, keras_version: Optional[int] = None) -> Explanation:
    """Explain one layer call (see the module docstring).

    Args:
        text: e.g. ``"tf.keras.layers.LSTM(16, return_sequences=True)"`` or
            ``"mindspore.nn.LSTM(10, 16, 2, bidirectional=True, batch_first=True)"``.
        keras_version: 2 or 3 to say which ``hard_sigmoid`` is meant; ``None`` mentions both.

    Raises:
        ExplainError: the text is not a literal-only call of a known LSTM layer.
    """
    call = parse_call(text)
    layer = call.inner if call.kind == "keras.Bidirectional" else call
    if layer is not None and layer.kind in _FAMILY_KINDS:
        if call.framework == "keras":
            return _explain_keras_family(call, keras_version)
        return _explain_mindspore_family(call)
    if call.framework == "keras":
        return _explain_keras(call, keras_version)
    return _explain_mindspore(call)


# --- the recurrent family: Keras GRU / SimpleRNN <-> mindspore.nn.GRU / RNN ------------------------------

_GRU_WEIGHTS = (
    "weights{who}: Keras blocks z, r, h -> MindSpore r, z, n: with P = [u:2u, 0:u, 2u:3u] (swap the first two "
    "blocks), weight_ih_{s} = kernel[:, P].T (3H, F), weight_hh_{s} = recurrent_kernel[:, P].T (3H, H)"
)


def _family_description(call: ParsedCall, keras_version: Optional[int], **kw: Any) -> _targets.LayerDescription:
    """The :class:`~lstm_bridge.targets.LayerDescription` of a Keras GRU / SimpleRNN call (TF 1.15 defaults for
    ``keras.v1.GRU``: hard_sigmoid, reset_after=False)."""
    v1 = call.kind == "keras.v1.GRU"
    args = call.kwargs
    cell = "RNN" if call.kind == "keras.SimpleRNN" else "GRU"
    gate = "sigmoid"
    if cell == "GRU":
        gate = _resolved_gate(
            args.get("recurrent_activation", "hard_sigmoid" if v1 else "sigmoid"), call.kind, keras_version
        )
    base = _description(call, keras_version, **kw)
    return dataclasses.replace(
        base,
        gate=gate,
        generation=2 if v1 else keras_version,
        cell=cell,
        reset_after=bool(args.get("reset_after", not v1)) if cell == "GRU" else True,
    )


def _explain_keras_family(call: ParsedCall, keras_version: Optional[int]) -> Explanation:
    bidi = call.kind == "keras.Bidirectional"
    layer = call.inner if bidi else call
    assert layer is not None
    kw = layer.kwargs
    cell = "RNN" if layer.kind == "keras.SimpleRNN" else "GRU"
    if bidi:
        go_back = bool(kw.get("go_backwards", False))
        back_go = not go_back
        diffs: Tuple[str, ...] = ()
        if call.backward is not None:
            b = call.backward.kwargs
            defaults = dict(_KERAS_DEFAULTS, reset_after=layer.kind != "keras.v1.GRU")
            diffs = tuple(
                k
                for k in ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
                if b.get(k, defaults.get(k)) != kw.get(k, defaults.get(k))
            )
            back_go = bool(b.get("go_backwards", False))
        desc = _family_description(
            layer,
            keras_version,
            kind="Bidirectional",
            reverse=(go_back, back_go),
            merge_mode=call.kwargs.get("merge_mode", "concat"),
            backward_differs=diffs,
        )
    else:
        desc = _family_description(layer, keras_version, kind="GRU" if cell == "GRU" else "SimpleRNN")
    blocking, notes = _keras_blocking(layer, keras_version, desc)
    if blocking:
        notes.append(_targets.exact_module_hint([cell]))
    units = kw.get("units", "units")
    has_bias = bool(kw.get("use_bias", True))
    time_major = bool(kw.get("time_major", False))
    module = "mindspore.nn.GRU" if cell == "GRU" else "mindspore.nn.RNN"
    extra = "" if cell == "GRU" else f", nonlinearity={desc.candidate!r}"
    target = None
    if not blocking:
        target = (
            f"{module}(input_size={_input_size_text(kw)}, hidden_size={units!r}, num_layers=1, has_bias={has_bias}, "
            f"batch_first={not time_major}, bidirectional={bidi}{extra})"
        )
    D = 2 if bidi else 1
    rs, st = bool(kw.get("return_sequences", False)), bool(kw.get("return_state", False))
    re = [
        f"inputs: Keras x is {'(T, B, F)' if time_major else '(B, T, F)'}; pass it unchanged "
        f"(batch_first={not time_major})",
        f"call: output, h_n = net(x, hx)  with h_n of shape ({D}, B, {units}) (one state: no c)",
        "Keras output = "
        + (
            ("output" if rs else "concat(h_n[-2], h_n[-1])")
            if bidi
            else ("output" if rs else ("output[-1]" if time_major else "output[:, -1]") + "  (== h_n[-1])")
        ),
    ]
    if st:
        re.append("Keras states [h_f, h_b] = [h_n[-2], h_n[-1]]" if bidi else "Keras state [h] = [h_n[-1]], (B, units)")
    re.append("initial_state=[h_f, h_b] -> hx=stack([h_f, h_b])" if bidi else "initial_state=[h0] -> hx=h0[None]")
    for d, suffix in enumerate(["l0", "l0_reverse"][:D]):
        who = "" if not bidi else (" (forward layer)" if d == 0 else " (backward layer)")
        if cell == "GRU":
            line = _GRU_WEIGHTS.format(who=who, s=suffix)
            if has_bias:
                line += (
                    f"; bias (2, 3u): bias_ih_{suffix} = bias[0][P], bias_hh_{suffix} = bias[1][P]"
                    if desc.reset_after
                    else "; bias (3u,) (reset_after=False has no such module: see above)"
                )
        else:
            line = f"weights{who}: weight_ih_{suffix} = kernel.T (H, F), weight_hh_{suffix} = recurrent_kernel.T (H, H)"
            if has_bias:
                line += f", bias_ih_{suffix} = bias, bias_hh_{suffix} = 0"
        re.append(line)
    re.append("masks: a right-padded mask (B, T) -> seq_length = mask.sum(1); holes/left padding: no equivalent")
    if cell == "GRU" and not desc.reset_after:
        notes.append(
            "reset_after=False is the Keras <= 2.3 / TF 1.x GRU (and ONNX GRU linear_before_reset=0); "
            "torch.nn.GRU and mindspore.nn.GRU compute reset_after=True only"
        )
    notes.append("MindSpore's CPU GRU/RNN kernels use approximate sigmoid/tanh: agreement ~1e-4, not 1e-6")
    return Explanation(call, target, blocking, re, notes)


def _explain_mindspore_family(call: ParsedCall) -> Explanation:
    kw = call.kwargs
    for name in ("input_size", "hidden_size"):
        if name not in kw:
            raise ExplainError(f"{call.callee} needs {name}; received arguments {sorted(kw)}")
    I, H = kw["input_size"], kw["hidden_size"]
    L = kw.get("num_layers", 1)
    if not isinstance(L, int) or isinstance(L, bool) or not 1 <= L <= 1000:
        raise ExplainError(f"num_layers must be an int in [1, 1000]; received {L!r}")
    has_bias, batch_first = bool(kw.get("has_bias", True)), bool(kw.get("batch_first", False))
    bidi = bool(kw.get("bidirectional", False))
    gru = call.kind == "mindspore.GRU"
    nonlinearity = kw.get("nonlinearity", "tanh")
    if not gru and nonlinearity not in ("tanh", "relu"):
        raise ExplainError(f"{call.callee}: nonlinearity must be 'tanh' or 'relu'; received {nonlinearity!r}")
    lines = ["import tensorflow as tf", f"x = tf.keras.Input(shape=(None, {I!r}))  # (B, T, I)"]
    layer = (
        (
            f"tf.keras.layers.GRU({H!r}, reset_after=True, return_sequences=True, return_state=True"
            if gru
            else f"tf.keras.layers.SimpleRNN({H!r}, activation={nonlinearity!r}, "
            "return_sequences=True, return_state=True"
        )
        + ("" if has_bias else ", use_bias=False")
        + ")"
    )
    lines.append("y, states = x, []")
    for l in range(L):
        if bidi:
            lines.append(f"y, h_f, h_b = tf.keras.layers.Bidirectional({layer})(y)  # layer {l}")
            lines.append("states += [h_f, h_b]")
        else:
            lines.append(f"y, h = {layer}(y)  # layer {l}")
            lines.append("states.append(h)")
    D = 2 if bidi else 1
    re = [
        f"inputs: MindSpore x {'(B, T, I)' if batch_first else '(T, B, I)'} -> Keras (B, T, I)"
        + ("" if batch_first else ": x.transpose(1, 0, 2)"),
        f"h_n = stack(states): shape ({L * D}, B, {H}), row layer*D + direction (one state: no c)",
        "hx -> layer l gets initial_state=[hx[l*D]]" + (" + [hx[l*D+1]] for its backward half" if bidi else ""),
    ]
    if gru:
        re.append(
            "weights: MindSpore r, z, n -> Keras z, r, h: kernel = weight_ih_l{l}[P].T, recurrent_kernel = "
            "weight_hh_l{l}[P].T with P swapping the first two H-row blocks"
            + ("; bias (2, 3H) = [bias_ih_l{l}[P], bias_hh_l{l}[P]] (reset_after=True keeps both)" if has_bias else "")
        )
    else:
        re.append(
            "weights: kernel = weight_ih_l{l}.T, recurrent_kernel = weight_hh_l{l}.T"
            + (", bias = bias_ih_l{l} + bias_hh_l{l}" if has_bias else "")
        )
    re.append("seq_length -> mask = tf.sequence_mask(seq_length, T) with zero_output_for_mask=True")
    notes = [
        "MindSpore's CPU GRU/RNN kernels use approximate sigmoid/tanh (up to ~1e-4 from exact math); "
        "lstm_bridge.mindspore.GRU / RNN emulate them (numerics='mindspore-cpu') or compute exactly ('exact')"
    ]
    return Explanation(call, "\n".join(lines), [], re, notes)


def format_explanation(expl: Explanation) -> str:
    """Plain-text rendering used by ``lstm-bridge explain``."""
    other = "MindSpore" if expl.source.framework == "keras" else "Keras"
    out = [f"source ({expl.source.framework}): {expl.source.callee}({_args_text(expl.source)})"]
    if expl.expressible:
        out.append(f"{other} equivalent:")
        out.extend("    " + line for line in (expl.target or "").splitlines())
    else:
        out.append(f"NOT expressible as {other}:")
        out.extend(f"  - {reason}" for reason in expl.blocking)
    if expl.rearrange:
        out.append("rearrangement:")
        out.extend(f"  - {line}" for line in expl.rearrange)
    if expl.notes:
        out.append("notes:")
        out.extend(f"  - {line}" for line in expl.notes)
    return "\n".join(out)


def _args_text(call: ParsedCall) -> str:
    parts = []
    if call.inner is not None:
        parts.append(f"{call.inner.callee}({_args_text(call.inner)})")
    parts.extend(f"{k}={v!r}" for k, v in call.kwargs.items())
    return ", ".join(parts)


def markdown_table(rules: Sequence[ArgumentRule] = KERAS_RULES) -> str:
    """The rules as a Markdown table (README)."""
    rows = ["| argument | default | other side | no equivalent when | note |", "|---|---|---|---|---|"]
    for r in rules:
        cells = [r.argument, r.default, r.target, r.blocking or "—", r.note or ""]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
