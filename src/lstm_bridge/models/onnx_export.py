"""ONNX export of whole Keras models (:func:`export_onnx`): the graph of a :class:`~.graph.KerasModel` as ONNX
nodes built with ``onnx.helper``, masks included, verified with onnxruntime before it is written.

How it works: the model is run once in torch on a padded batch, call by call in its own order, and every call
also emits its ONNX nodes; the torch values give each tensor's static widths and say which tensors carry a
Keras mask, and the ONNX side tracks every mask as a ``(batch, time)`` bool tensor computed IN the graph
(``ids != 0`` for ``Embedding(mask_zero=True)``, ``any(x != mask_value, -1)`` for ``Masking``, Keras 3's mask
op nodes, merge rules), never as a graph input.

Layer mapping (inference: the dropout family is the identity): Embedding -> ``Gather``; Dense -> ``MatMul``
(+ ``Add``); Activation and every ``activation=`` -> ONNX ops (Relu, Sigmoid, Tanh, Softmax, Elu, Selu,
Softplus, Softsign, Exp, HardSigmoid with each generation's slope, exact gelu via Erf, swish, relu6, ...);
Conv1D -> ``Conv`` (valid / same / causal, strides, dilation, groups); Max/AveragePooling1D -> ``MaxPool`` /
``AveragePool``; GlobalMax/GlobalAveragePooling1D -> reductions (masked mean when a mask comes);
BatchNormalization -> scale and shift; LayerNormalization -> ``LayerNormalization``; Flatten, Reshape,
Permute, RepeatVector, ZeroPadding1D, Cropping1D, UpSampling1D -> shape ops; merges -> ``Add`` / ``Sub`` /
``Mul`` / ``Max`` / ``Min`` / ``Concat`` / ``MatMul``; TimeDistributed: the inner layer on the last axis
(Dense, Activation, dropout, normalization) or with batch and time folded into one axis (Conv1D, pooling,
Flatten, ...); LSTM / GRU / SimpleRNN / Bidirectional -> one ONNX
``LSTM`` / ``GRU`` / ``RNN`` node each (:mod:`lstm_bridge.formats.onnx`'s node builder), nested models inline.

Masks at recurrent layers: ONNX's recurrent operators take ``sequence_lens`` (right-padding lengths), which
the graph computes from the mask (``ReduceSum`` of it per row). A mask with holes or left padding cannot be
expressed that way and an ONNX graph cannot raise at run time, so a model whose mask reaches a recurrent layer
is refused (naming the mask's producers) unless the caller states that every input row is right-padded
(``right_padded=True``, ``lstm-bridge convert --right-padded``); the graph then also compares each row's mask
with ``arange(T) < length`` and gives NaN outputs for a row that is not right-padded. A plain layer with
``return_sequences`` repeats its last valid output at padded steps, as Keras does (``zero_output_for_mask=False``).
A mask is never dropped silently: the masks that reach a layer that uses them are all in the graph.

Refused (:class:`ExportError`, naming the layer and its class): layers without a mapping here, activations ONNX
cannot hold in a recurrent node, ``stateful`` / ``time_major`` layers, channels_first layers.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..formats.model import FormatError
from .graph import Call, KerasModel, KerasOp, TensorRef

__all__ = ["export_onnx", "build_onnx", "is_whole_model", "ExportError", "ExportMismatch", "OnnxExport"]

OPSET = 17
IR_VERSION = 8
#: the time steps of the second verification batch of a model whose time axis is open (the first has 7)
OTHER_STEPS = 11


class ExportError(FormatError):
    """A model (or a layer of it) that an ONNX graph cannot hold exactly; the message names it and why."""

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(path, message)


class ExportMismatch(ExportError):
    """The built graph differs from :func:`lstm_bridge.load_model` by more than the tolerance."""


#: the classes the recurrent-chain export (:mod:`lstm_bridge.formats.onnx`) covers by itself
_CHAIN_CLASSES = frozenset({"InputLayer", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "CuDNNLSTM", "CuDNNGRU"})


def is_whole_model(path: Any) -> bool:
    """Whether ``path`` is a Keras full-model file (``.keras`` / ``.h5`` with a model config) holding layers
    besides recurrent ones (Embedding, Dense, ...): what ``lstm-bridge convert IN OUT.onnx`` exports as a whole
    model; files of recurrent layers only keep the recurrent-chain export."""
    from .files import read_keras_file

    try:
        kf = read_keras_file(path)
    except (ValueError, OSError):
        return False
    try:
        config = kf.model_config
    except (ValueError, KeyError, AttributeError):
        return False
    finally:
        kf.close()
    layers = ((config or {}).get("config") or {}).get("layers") or []
    return any(isinstance(e, dict) and str(e.get("class_name")) not in _CHAIN_CLASSES for e in layers)


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote: inputs / outputs of the graph, the masks turned into ``sequence_lens``,
    and the verification (max |difference| against ``load_model`` on a padded batch, lengths per row)."""

    path: Optional[str]
    inputs: List[str]
    outputs: List[str]
    masks: List[str] = field(default_factory=list)
    max_abs_diff: float = float("nan")
    lengths: List[List[int]] = field(default_factory=list)
    model: Any = None


@dataclass
class _T:
    """One tensor: its ONNX name, the torch value of the tracing batch, and its mask (ONNX name, torch value,
    the layers that produced it)."""

    name: str
    value: Any
    mask: Optional[str] = None
    mask_value: Any = None
    producers: Tuple[str, ...] = ()


_RANK_FREE = ("Dense", "Activation", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout")
#: inner layers of TimeDistributed exported with batch and time folded together
_TD_FOLDED = (
    "Conv1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "ZeroPadding1D",
    "Cropping1D",
    "UpSampling1D",
    "Embedding",
)
_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout")


class _Builder:
    def __init__(self, right_padded: bool):
        from ..formats.onnx import _Graph

        self.g = _Graph()
        self.right_padded = right_padded
        self.masks_used: List[str] = []
        self.rows_ok: List[str] = []  # (B,) bool per mask turned into sequence_lens: the row is right-padded

    # --- small helpers ------------------------------------------------------------------------------
    def c(self, value: Any, base: str, dtype: Any = np.float32) -> str:
        return self.g.const(np.asarray(value, dtype), base)

    def i64(self, values: Sequence[int], base: str = "ints") -> str:
        return self.g.const(np.asarray(list(values), np.int64), base)

    def n(self, op: str, inputs: Sequence[str], base: Optional[str] = None, **attrs: Any) -> str:
        return self.g.node(op, inputs, base=base, **attrs)[0]

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: int, base: Optional[str] = None) -> str:
        """``op`` over ``axes`` (opset 17: ReduceSum takes them as an input, the others as an attribute)."""
        if op == "ReduceSum":
            return self.n(op, [x, self.i64(axes)] if axes else [x], base, keepdims=keepdims)
        return self.n(op, [x], base, keepdims=keepdims, **({"axes": list(axes)} if axes else {}))

    def float_of(self, t: _T) -> str:
        v = t.value
        if isinstance(v, torch.Tensor) and v.dtype != torch.float32:
            return self.n("Cast", [t.name], "as_float", to=self.g.TP.FLOAT)
        return t.name

    def activation(self, x: str, act: Any, where: str) -> str:
        name = getattr(act, "name", None) or "linear"
        n = self.n
        if name == "linear":
            return x
        simple = {
            "relu": "Relu",
            "sigmoid": "Sigmoid",
            "tanh": "Tanh",
            "softplus": "Softplus",
            "softsign": "Softsign",
            "exponential": "Exp",
            "selu": "Selu",
        }
        if name in simple:
            return n(simple[name], [x], name)
        if name == "elu":
            return n("Elu", [x], name, alpha=1.0)
        if name == "softmax":
            return n("Softmax", [x], name, axis=-1)
        if name == "log_softmax":
            return n("LogSoftmax", [x], name, axis=-1)
        if name == "hard_sigmoid":  # Keras 2: clip(0.2x + 0.5, 0, 1)
            return n("HardSigmoid", [x], name, alpha=0.2, beta=0.5)
        if name == "hard_sigmoid_keras3":  # relu6(x + 3) / 6
            three, six = self.c(3.0, "three"), self.c(6.0, "six")
            lo, hi = self.c(0.0, "zero"), self.c(6.0, "six")
            return n("Div", [n("Clip", [n("Add", [x, three]), lo, hi]), six], name)
        if name in ("swish", "silu"):
            return n("Mul", [x, n("Sigmoid", [x])], name)
        if name == "relu6":
            return n("Clip", [x, self.c(0.0, "zero"), self.c(6.0, "six")], name)
        if name == "gelu":  # exact: x * (1 + erf(x / sqrt 2)) / 2
            half, one = self.c(0.5, "half"), self.c(1.0, "one")
            r2 = self.c(np.sqrt(2.0), "sqrt2")
            return n("Mul", [n("Mul", [x, half]), n("Add", [one, n("Erf", [n("Div", [x, r2])])])], name)
        if name == "leaky_relu":
            return n("LeakyRelu", [x], name, alpha=0.2)
        if name == "mish":
            return n("Mul", [x, n("Tanh", [n("Softplus", [x])])], name)
        raise ExportError(f"{where}: activation {name!r} has no ONNX mapping here")

    def bool_mask(self, t: _T) -> str:
        assert t.mask is not None
        return t.mask

    # --- masks ----------------------------------------------------------------------------------------
    def lengths(self, t: _T, where: str) -> str:
        """``sequence_lens`` (int32 ``(B,)``) from ``t``'s mask; refused unless inputs are said right-padded."""
        assert t.mask is not None
        producers = ", ".join(t.producers) or "a Keras mask op"
        if not self.right_padded:
            raise ExportError(
                f"{where} receives the mask of {producers}; ONNX's recurrent operators take right-padding lengths "
                "(sequence_lens) only, and this mask can have holes or left padding (a 0 token or an all-"
                "mask_value step inside a row), which ONNX cannot express and a graph cannot raise on at run "
                "time. Export with right_padded=True (lstm-bridge convert --right-padded) to state that every "
                "input row is right-padded: the graph then computes sequence_lens from the mask and gives NaN "
                "outputs for any row that is not right-padded"
            )
        self.masks_used.append(f"{producers} -> {where}")
        as_int = self.n("Cast", [t.mask], "mask_int", to=self.g.TP.INT32)
        lens = self.n("ReduceSum", [as_int, self.i64([1])], "seq_lens", keepdims=0)
        # the run-time guard: a row whose mask is not arange(T) < len (holes, left padding) is flagged
        T = self.n("Squeeze", [self.n("Slice", [self.n("Shape", [t.mask]), self.i64([1]), self.i64([2])])])
        steps = self.n(
            "Range",
            [self.c(0, "zero32", np.int32), self.n("Cast", [T], to=self.g.TP.INT32), self.c(1, "one32", np.int32)],
        )
        expected = self.n(
            "Less", [self.n("Unsqueeze", [steps, self.i64([0])]), self.n("Unsqueeze", [lens, self.i64([1])])]
        )
        wrong = self.n("Cast", [self.n("Xor", [expected, t.mask])], to=self.g.TP.INT32)
        self.rows_ok.append(
            self.n(
                "Not",
                [self.n("Cast", [self.reduce("ReduceMax", wrong, [1], 0)], to=self.g.TP.BOOL)],
                "row_right_padded",
            )
        )
        return lens


def _call_mask(model: KerasModel, call: Call, vals: Dict[Tuple[str, int], List[_T]]) -> Tuple[Any, Any]:
    """``(mask the layer receives, masks of its first argument)`` as :meth:`KerasModel._run_call` decides,
    with ``_T`` / lists of them in place of tensors."""
    from .graph import _refs_in

    def msk(v: Any) -> Any:
        if isinstance(v, TensorRef):
            return vals[(v.layer, v.call)][v.output]
        if isinstance(v, list):
            return [msk(x) for x in v]
        return None

    previous = msk(call.args[0])
    kwargs = dict(call.kwargs)
    if "mask" in kwargs:
        recorded = kwargs["mask"]
        mask = previous if recorded is None else msk(recorded)
        return ("recorded", mask), previous
    kwargs.pop("training", None)
    if model.keras_version >= 3 and (len(call.args) > 1 or _refs_in(Call(call.layer, [], kwargs))):
        return ("none", None), previous
    return ("previous", previous), previous


def _mask_of(item: Any) -> Tuple[Optional[str], Any, Tuple[str, ...]]:
    """The mask of a ``_T`` (for ``recorded`` masks the tensor itself is the mask)."""
    if isinstance(item, _T):
        return item.mask, item.mask_value, item.producers
    return None, None, ()


class _Exporter:
    def __init__(self, b: _Builder):
        self.b = b

    def run_model(self, model: KerasModel, inputs: List[_T], where: str) -> List[_T]:
        vals: Dict[Tuple[str, int], List[_T]] = {}
        for ref, t in zip(model.inputs, inputs):
            vals[(ref.layer, 0)] = [t]
        for name, k in model.order:
            vals[(name, k)] = self.call(model, model._calls[name][k], vals, f"{where}layer {name!r}")
        return [vals[(r.layer, r.call)][r.output] for r in model.outputs]

    def call(self, model: KerasModel, call: Call, vals: Dict[Tuple[str, int], List[_T]], where: str) -> List[_T]:
        module: Any = model.module(call.layer)

        def val(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return vals[(v.layer, v.call)][v.output]
            if isinstance(v, list):
                return [val(x) for x in v]
            if isinstance(v, dict):
                return {k: val(x) for k, x in v.items()}
            return v

        if isinstance(module, KerasOp):
            return [self.op(module, [val(a) for a in call.args], where, _mask_layer(model, call.args[0]))]
        (how, mask_in), previous = _call_mask(model, call, vals)
        x = val(call.args[0])
        if how == "recorded" and call.kwargs.get("mask") is not None:
            # a Keras 3 file records the mask tensors (mask op outputs) themselves, one or a list
            mask_in = _as_mask(mask_in)
        if isinstance(module, KerasModel):
            xs = x if isinstance(x, list) else [x]
            ms = mask_in if isinstance(mask_in, list) else [mask_in] * len(xs)
            fed = [_with_mask(t, m) for t, m in zip(xs, ms)]
            return self.run_model(module, fed, f"{where} > ")
        cls = type(module).__name__
        try:
            outs = self.layer(module, cls, x, mask_in, call, val, where)
        except ExportError:
            raise
        except FormatError as exc:
            raise ExportError(f"{where} ({cls}): {exc.args[-1] if exc.args else exc}") from exc
        # the output masks: Keras's rule evaluated in torch says which outputs carry one; the graph side follows
        prev_t = previous if isinstance(previous, _T) else None
        x_val = [t.value for t in x] if isinstance(x, list) else x.value
        prev_val = (
            [p.mask_value if isinstance(p, _T) else None for p in previous]
            if isinstance(previous, list)
            else (previous.mask_value if isinstance(previous, _T) else None)
        )
        given_val = (
            [p.mask_value if isinstance(p, _T) else None for p in mask_in]
            if isinstance(mask_in, list)
            else (mask_in.mask_value if isinstance(mask_in, _T) else None)
        )
        out_mask = module.compute_mask(x_val, prev_val if model.keras_version >= 3 else given_val)
        out_masks = list(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask]
        out_masks = (out_masks + [None] * len(outs))[: len(outs)]
        result = []
        for t, m in zip(outs, out_masks):
            if m is None:
                result.append(_T(t.name, t.value))
                continue
            result.append(self.out_mask(module, cls, x, m, prev_t, previous, mask_in, t, where, model.keras_version))
        return result

    # --- output masks -----------------------------------------------------------------------------------
    def out_mask(
        self,
        module: Any,
        cls: str,
        x: Any,
        m: Any,
        prev_t: Any,
        previous: Any,
        mask_in: Any,
        t: _T,
        where: str,
        kv: int,
    ) -> _T:
        b = self.b
        if cls == "Embedding":
            ids = x.name
            zero = b.c(0, "zero_id", x.value.numpy().dtype)
            name = b.n("Not", [b.n("Equal", [ids, zero], "is_pad")], "mask")
            return _T(t.name, t.value, name, m, (f"Embedding {module.name!r} (mask_zero=True)",))
        if cls == "Masking":
            return _T(t.name, t.value, t.__dict__.get("_mask_name"), m, (f"Masking {module.name!r}",))
        sources = [p for p in (previous if isinstance(previous, list) else [previous]) if isinstance(p, _T)]
        sources += [p for p in (mask_in if isinstance(mask_in, list) else [mask_in]) if isinstance(p, _T)]
        for s in sources:  # a mask passed through unchanged
            if s.mask is not None and s.mask_value is not None and _same(s.mask_value, m):
                return _T(t.name, t.value, s.mask, m, s.producers)
        if cls in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"):
            ms = [p for p in (previous if isinstance(previous, list) else [previous])]
            present = [p for p in ms if isinstance(p, _T) and p.mask is not None]
            names = [str(p.mask) for p in present]
            producers = tuple(dict.fromkeys(q for p in present for q in p.producers))
            if cls == "Concatenate" and module.axis % t.value.dim() == 1:
                parts = []
                for p, xv in zip(ms, x):
                    if isinstance(p, _T) and p.mask is not None:
                        parts.append(p.mask)
                    else:  # ones of that input's (batch, time)
                        shape = b.n("Slice", [b.n("Shape", [xv.name]), b.i64([0]), b.i64([2])])
                        parts.append(b.n("ConstantOfShape", [shape], "ones", value=_bool_tensor(b, True)))
                name = b.n("Concat", parts, "mask", axis=1)
                return _T(t.name, t.value, name, m, producers)
            if cls == "Concatenate" and kv >= 3 and len(present) < len(ms):  # Keras 3: any(ones, ...) = ones
                shape = b.n("Slice", [b.n("Shape", [x[0].name]), b.i64([0]), b.i64([2])])
                name = b.n("ConstantOfShape", [shape], "mask", value=_bool_tensor(b, True))
                if bool(m.all()):
                    return _T(t.name, t.value, name, m, producers)
            if names:
                op = "Or" if kv >= 3 else "And"
                name = names[0]
                for other in names[1:]:
                    name = b.n(op, [name, other], "mask")
                if torch.equal(_eval_combined([p.mask_value for p in present], op), m.bool()):
                    return _T(t.name, t.value, name, m, producers)
        raise ExportError(f"{where} ({cls}): its output mask has no ONNX mapping here")

    # --- Keras 3 mask op nodes ----------------------------------------------------------------------------
    def op(self, module: KerasOp, args: List[Any], where: str, mask_layer: Optional[str] = None) -> _T:
        b, op, c = self.b, module.op, module.config
        torch_args = [
            a.value if isinstance(a, _T) else ([x.value for x in a] if isinstance(a, list) else a) for a in args
        ]
        value = module(*torch_args)
        names = [a.name for a in args if isinstance(a, _T)]
        producers = tuple(dict.fromkeys(p for a in args if isinstance(a, _T) for p in a.producers))
        if op in ("NotEqual", "Equal"):
            a = args[0]
            other = args[1] if len(args) > 1 else 0
            other_name = other.name if isinstance(other, _T) else b.c(other, "const", a.value.numpy().dtype)
            eq = b.n("Equal", [a.name, other_name])
            name = b.n("Not", [eq], "not_equal") if op == "NotEqual" else eq
            if op == "NotEqual" and not isinstance(other, _T):  # the op an Embedding / Masking layer left
                what = (
                    "ids != 0: an Embedding's mask_zero"
                    if a.value.dim() == 2 and not a.value.is_floating_point()
                    else f"x != {float(other):g}: a Masking layer's mask or an Embedding's mask_zero"
                )
                if mask_layer:
                    what = f"{mask_layer}'s mask, recorded as {what.split(':')[0]}"
                producers = producers or (f"the Keras op {module.name!r} ({what})",)
        elif op in ("Any", "All"):
            axis = c.get("axis")
            keep = int(bool(c.get("keepdims", False)))
            rank = args[0].value.dim()
            axes = [int(a) % rank for a in (axis if isinstance(axis, list) else [axis])] if axis is not None else []
            as_int = b.n("Cast", [names[0]], to=b.g.TP.INT32)
            red = "ReduceMax" if op == "Any" else "ReduceMin"
            name = b.n("Cast", [b.reduce(red, as_int, axes, keep)], op.lower(), to=b.g.TP.BOOL)
        elif op in ("LogicalOr", "LogicalAnd"):
            name = b.n("Or" if op == "LogicalOr" else "And", names[:2])
        elif op == "LogicalNot":
            name = b.n("Not", names[:1])
        elif op == "ExpandDims":
            axis = int(c.get("axis", -1))
            name = b.n("Unsqueeze", [names[0], b.i64([axis if axis >= 0 else args[0].value.dim() + 1 + axis])])
        elif op == "Squeeze":
            axis = c.get("axis")
            name = b.n("Squeeze", [names[0]] + ([b.i64([int(axis)])] if axis is not None else []))
        elif op in ("ZerosLike", "OnesLike"):
            shape = b.n("Shape", [names[0]])
            dt = value.dtype
            fill = _fill_tensor(b, 0 if op == "ZerosLike" else 1, dt)
            name = b.n("ConstantOfShape", [shape], op.lower(), value=fill)
        elif op == "Cast":
            name = b.n("Cast", [names[0]], to=_onnx_type(b, value.dtype))
        elif op == "Concatenate":
            parts = [x.name for x in args[0]]
            producers = tuple(dict.fromkeys(p for x in args[0] for p in x.producers))
            name = b.n("Concat", parts, axis=int(c.get("axis", 0)))
        else:
            raise ExportError(f"{where}: the Keras op {op!r} has no ONNX mapping here")
        return _T(name, value, None, None, producers)

    # --- layers ---------------------------------------------------------------------------------------------
    def layer(self, module: Any, cls: str, x: Any, mask_in: Any, call: Call, val: Any, where: str) -> List[_T]:
        mask_t = mask_in if isinstance(mask_in, _T) and mask_in.mask is not None else None
        kwargs = dict(call.kwargs)
        init = kwargs.get("initial_state")
        # the torch value, computed exactly as load_model does
        xv = [t.value for t in x] if isinstance(x, list) else x.value
        mv = (
            [m.mask_value if isinstance(m, _T) else None for m in mask_in]
            if isinstance(mask_in, list)
            else (mask_in.mask_value if isinstance(mask_in, _T) else None)
        )
        if init is not None:
            init_v = val(init)
            out = module(
                xv, mask=mv, initial_state=[t.value for t in init_v] if isinstance(init_v, list) else init_v.value
            )
        elif isinstance(xv, list) and not hasattr(module, "cell") and not hasattr(module, "forward_layer"):
            out = module(*xv, mask=mv)
        else:
            out = module(xv, mask=mv)
        values = list(out) if isinstance(out, (list, tuple)) else [out]
        if cls in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
            states = val(init) if init is not None else None
            if isinstance(x, list):  # tf_keras records layer([x, h, c]): the input, then the initial states
                x, states = x[0], x[1:]
                if isinstance(mask_in, list):
                    mask_t = mask_in[0] if isinstance(mask_in[0], _T) and mask_in[0].mask is not None else None
            names = self.recurrent(module, cls, x, mask_t, states, where)
        elif cls == "TimeDistributed":
            inner = module.layer
            icls = type(inner).__name__
            if icls in _RANK_FREE + _IDENTITY + ("BatchNormalization", "LayerNormalization"):
                names = [self.simple(inner, icls, x, None, where)]  # they act on the last axis: any rank
            elif icls in _TD_FOLDED:
                names = [self.time_folded(inner, icls, x, values[0], where)]
            else:
                raise ExportError(
                    f"{where} (TimeDistributed of {icls}): only layers without masks or states are exported inside "
                    f"TimeDistributed ({', '.join(sorted(_TD_FOLDED + _RANK_FREE))}, normalization)"
                )
        else:
            names = [self.simple(module, cls, x, mask_t, where)]
        if len(names) != len(values):
            raise ExportError(f"{where} ({cls}): {len(names)} graph outputs for {len(values)} layer outputs")
        outs = [_T(n, v) for n, v in zip(names, values)]
        if cls == "Masking":
            outs[0].__dict__["_mask_name"] = self._masking_mask
        return outs

    _masking_mask: Optional[str] = None

    def time_folded(self, inner: Any, icls: str, x: _T, y_value: torch.Tensor, where: str) -> str:
        """``TimeDistributed(inner)`` of a layer that needs its own rank (Conv1D, pooling, Flatten, ...): batch and
        time folded into one axis ``(B*T, ...)``, the inner layer, and ``(B, T, ...)`` again."""
        b, n = self.b, self.b.n
        v = x.value
        folded = n("Reshape", [x.name, b.i64([-1, *[int(d) for d in v.shape[2:]]])], "td_fold")
        inner_t = _T(folded, v.reshape(v.shape[0] * v.shape[1], *v.shape[2:]))
        y = self.simple(inner, icls, inner_t, None, f"{where} (TimeDistributed of {icls})")
        bt = n("Slice", [n("Shape", [x.name]), b.i64([0]), b.i64([2])])
        shape = n("Concat", [bt, b.i64([int(d) for d in y_value.shape[2:]])], axis=0) if y_value.dim() > 2 else bt
        return n("Reshape", [y, shape], "td_unfold")

    def simple(self, module: Any, cls: str, x: Any, mask_t: Optional[_T], where: str) -> str:
        b, n = self.b, self.b.n
        if cls in _IDENTITY or cls == "InputLayer":
            return x.name
        if cls == "Embedding":
            ids = n("Cast", [x.name], "ids", to=b.g.TP.INT64)
            return n(
                "Gather", [b.c(module.weight.detach().numpy(), f"{module.name}_embeddings"), ids], "embedded", axis=0
            )
        if cls == "Masking":
            xf = b.float_of(x)
            v = b.c(module.mask_value, "mask_value")
            keep = n("Not", [n("Equal", [xf, v])])
            keep_f = b.reduce("ReduceMax", n("Cast", [keep], to=b.g.TP.FLOAT), [-1], 1, "keep")
            self._masking_mask = n("Cast", [n("Squeeze", [keep_f, b.i64([-1])])], "mask", to=b.g.TP.BOOL)
            return n("Mul", [xf, keep_f], "masked")
        if cls == "Dense":
            y = n("MatMul", [b.float_of(x), b.c(module.weight.detach().numpy().T, f"{module.name}_kernel")])
            if module.bias is not None:
                y = n("Add", [y, b.c(module.bias.detach().numpy(), f"{module.name}_bias")])
            return b.activation(y, module.activation, where)
        if cls == "Activation":
            return b.activation(b.float_of(x), module.activation, where)
        if cls == "Flatten":
            return n("Flatten", [b.float_of(x)], "flat", axis=1)
        if cls == "Reshape":
            return n("Reshape", [x.name, b.i64([0, *module.target_shape])], "reshaped")
        if cls == "Permute":
            return n("Transpose", [x.name], "permuted", perm=[0, *module.dims])
        if cls == "RepeatVector":
            u = n("Unsqueeze", [x.name, b.i64([1])])
            return n("Tile", [u, b.i64([1, module.n, 1])], "repeated")
        if cls in ("Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            if getattr(module, "data_format", "channels_last") != "channels_last":
                raise ExportError(f"{where} ({cls}): data_format {module.data_format!r} is not exported")
            return self.temporal(module, cls, b.float_of(x), mask_t, where)
        if cls == "BatchNormalization":
            if len(module.axis) != 1 or module.axis[0] % x.value.dim() != x.value.dim() - 1:
                raise ExportError(f"{where} (BatchNormalization): only axis=-1 is exported; axis is {module.axis}")
            inv = 1.0 / np.sqrt(module.running_var.detach().double().numpy() + module.epsilon)
            if module.weight is not None:
                inv = inv * module.weight.detach().double().numpy()
            shift = -module.running_mean.detach().double().numpy() * inv
            if module.bias is not None:
                shift = shift + module.bias.detach().double().numpy()
            y = n("Mul", [b.float_of(x), b.c(inv, f"{module.name}_scale")])
            return n("Add", [y, b.c(shift, f"{module.name}_shift")], "normalized")
        if cls == "LayerNormalization":
            rank = x.value.dim()
            axes = sorted(a % rank for a in module.axis)
            if axes != list(range(axes[0], rank)) or module.rms_scaling:
                raise ExportError(f"{where} (LayerNormalization): only trailing axes without rms_scaling are exported")
            shape = tuple(x.value.shape[axes[0] :])
            scale = module.weight.detach().numpy().reshape(shape) if module.weight is not None else np.ones(shape)
            bias = module.bias.detach().numpy().reshape(shape) if module.bias is not None else np.zeros(shape)
            return n(
                "LayerNormalization",
                [b.float_of(x), b.c(scale, f"{module.name}_gamma"), b.c(bias, f"{module.name}_beta")],
                "normalized",
                axis=axes[0],
                epsilon=float(module.epsilon),
            )
        if cls == "ZeroPadding1D":
            left, right = module.padding
            return n("Pad", [b.float_of(x), b.i64([0, left, 0, 0, right, 0])], "padded")
        if cls == "Cropping1D":
            left, right = module.cropping
            end = -right if right else np.iinfo(np.int64).max
            return n("Slice", [x.name, b.i64([left]), b.i64([end]), b.i64([1])], "cropped")
        if cls == "UpSampling1D":
            C = int(x.value.shape[-1])
            u = n("Unsqueeze", [x.name, b.i64([2])])
            t = n("Tile", [u, b.i64([1, 1, module.size, 1])])
            return n("Reshape", [t, b.i64([0, -1, C])], "upsampled")
        if cls in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"):
            return self.merge(module, cls, x, where)
        raise ExportError(f"{where} of class {cls!r} has no ONNX mapping in lstm-bridge's whole-model export")

    def temporal(self, module: Any, cls: str, x: str, mask_t: Optional[_T], where: str) -> str:
        b, n = self.b, self.b.n
        if cls in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            keep = int(module.keepdims)
            if cls == "GlobalMaxPooling1D":
                return b.reduce("ReduceMax", x, [1], keep, "pooled")
            if mask_t is None:
                return b.reduce("ReduceMean", x, [1], keep, "pooled")
            m = n("Unsqueeze", [n("Cast", [str(mask_t.mask)], to=b.g.TP.FLOAT), b.i64([2])])
            s = n("ReduceSum", [n("Mul", [x, m]), b.i64([1])], keepdims=keep)
            cnt = n("ReduceSum", [m, b.i64([1])], keepdims=keep)
            self.b.masks_used.append(f"{', '.join(mask_t.producers)} -> {where} (masked mean)")
            return n("Div", [s, cnt], "pooled")
        xt = n("Transpose", [x], "nct", perm=[0, 2, 1])
        if cls == "Conv1D":
            k, s, d = module.kernel_size, module.strides, module.dilation_rate
            attrs: Dict[str, Any] = {"kernel_shape": [k], "strides": [s], "dilations": [d], "group": module.groups}
            if module.padding == "causal":
                attrs["pads"] = [(k - 1) * d, 0]
            elif module.padding == "same":
                attrs["auto_pad"] = "SAME_UPPER"
            elif module.padding != "valid":
                raise ExportError(f"{where} (Conv1D): padding {module.padding!r} is not exported")
            ins = [xt, b.c(module.weight.detach().numpy(), f"{module.name}_weight")]
            if module.bias is not None:
                ins.append(b.c(module.bias.detach().numpy(), f"{module.name}_bias"))
            y = n("Conv", ins, "conv", **attrs)
            return b.activation(n("Transpose", [y], "ntc", perm=[0, 2, 1]), module.activation, where)
        p, s = module.pool_size, module.strides
        attrs = {"kernel_shape": [p], "strides": [s]}
        if module.padding == "same":
            attrs["auto_pad"] = "SAME_UPPER"
        op = "MaxPool" if cls == "MaxPooling1D" else "AveragePool"
        y = n(op, [xt], "pool", **attrs)
        return n("Transpose", [y], "ntc", perm=[0, 2, 1])

    def merge(self, module: Any, cls: str, xs: Any, where: str) -> str:
        b, n = self.b, self.b.n
        items = xs if isinstance(xs, list) else [xs]
        top = max(t.value.dim() for t in items)
        names = []
        for t in items:
            name = b.float_of(t)
            for _ in range(top - t.value.dim()):
                name = n("Unsqueeze", [name, b.i64([1])])
            names.append(name)
        if cls == "Concatenate":
            return n("Concat", names, "concat", axis=module.axis)
        if cls == "Dot":
            a, c = names[0], names[1]
            rank = top
            ax = [int(v) % rank for v in module.axes]
            if module.normalize:
                a = n("LpNormalization", [a], axis=ax[0], p=2)
                c = n("LpNormalization", [c], axis=ax[1], p=2)
            if rank == 2:
                return n("ReduceSum", [n("Mul", [a, c]), b.i64([1])], "dot", keepdims=1)
            if rank == 3:
                if ax[0] == 2:
                    left = a
                else:
                    left = n("Transpose", [a], perm=[0, 2, 1])
                right = c if ax[1] == 1 else n("Transpose", [c], perm=[0, 2, 1])
                return n("MatMul", [left, right], "dot")
            raise ExportError(f"{where} (Dot): inputs of rank {rank} are not exported")
        op = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "Maximum": "Max", "Minimum": "Min", "Average": "Sum"}
        masks = [t.mask for t in items]
        if cls in ("Maximum", "Minimum", "Multiply") and any(masks) and module.keras_version >= 3:
            return self._merge_masked(cls, names, masks)
        if cls in ("Add", "Subtract", "Multiply"):
            out = names[0]
            for other in names[1:]:
                out = n(op[cls], [out, other], cls.lower())
            return out
        y = n(op[cls], names, cls.lower())
        if cls == "Average":
            y = n("Div", [y, b.c(float(len(names)), "count")], "average")
        return y

    def _merge_masked(self, cls: str, names: List[str], masks: List[Optional[str]]) -> str:
        """Keras 3's Multiply / Maximum / Minimum of inputs that carry masks (keras/src/layers/merging)."""
        b, n = self.b, self.b.n
        ms = [None if m is None else n("Unsqueeze", [m, b.i64([-1])], "mask_e") for m in masks]
        if cls == "Multiply":
            one = b.c(1.0, "one")
            out = ""
            for x, m in zip(names, ms):
                x = n("Where", [m, x, one]) if m is not None else x
                out = x if not out else n("Mul", [out, x])
            present = [str(m) for m in ms if m is not None]
            if len(present) == len(ms):
                any_m = present[0]
                for m in present[1:]:
                    any_m = n("Or", [any_m, m])
                out = n("Where", [any_m, out, b.c(0.0, "zero")], "multiply")
            return out
        op = "Max" if cls == "Maximum" else "Min"
        out, out_m = names[0], ms[0]
        for x, m in zip(names[1:], ms[1:]):
            if m is not None:
                x = n("Where", [m, x, out])
            if out_m is not None:
                out = n("Where", [out_m, out, x])
            out_m = n("Or", [out_m, m]) if (m is not None and out_m is not None) else None
            out = n(op, [out, x])
        return out

    def recurrent(self, module: Any, cls: str, x: _T, mask_t: Optional[_T], init: Any, where: str) -> List[str]:
        from ..formats.onnx import _checked_chain, _layer_output, _recurrent_node

        b, n = self.b, self.b.n
        if getattr(module, "stateful", False):
            raise ExportError(f"{where} ({cls}): stateful layers are not exported")
        inner = module.forward_layer if cls == "Bidirectional" else module
        if getattr(inner, "time_major", False):
            raise ExportError(f"{where} ({cls}): time_major layers are not exported")
        # the layer's chain as the recurrent export sees it, after lstm_bridge.targets said ONNX can hold it
        chain = _checked_chain(module, None, False, None)
        if len(chain.layers) != 1:
            raise ExportError(f"{where} ({cls}): expected one recurrent layer; the chain has {len(chain.layers)}")
        lay = chain.layers[0]
        op = str(getattr(lay.kind, "value", "LSTM"))
        D = len(lay.directions)
        xt = n("Transpose", [b.float_of(x)], "x_tbf", perm=[1, 0, 2])
        seq_lens = b.lengths(mask_t, where) if mask_t is not None else ""
        h_in = c_in = ""
        if init is not None:
            states = init if isinstance(init, list) else [init]
            per = 2 if op == "LSTM" else 1
            if len(states) != per * D:
                raise ExportError(f"{where} ({cls}): expected {per * D} initial states; received {len(states)}")
            hs = [n("Unsqueeze", [b.float_of(states[d * per]), b.i64([0])]) for d in range(D)]
            h_in = hs[0] if D == 1 else n("Concat", hs, "h0", axis=0)
            if op == "LSTM":
                cs = [n("Unsqueeze", [b.float_of(states[d * per + 1]), b.i64([0])]) for d in range(D)]
                c_in = cs[0] if D == 1 else n("Concat", cs, "c0", axis=0)
        outs = _recurrent_node(b.g, lay, xt, seq_lens, h_in, c_in, np.dtype(np.float32))
        Y, Y_h = outs[0], outs[1]
        Y_c = outs[2] if op == "LSTM" else ""
        if seq_lens and h_in:  # a row of length 0 keeps its initial state (ONNX gives zeros)
            from ..formats.onnx import _empty_rows

            empty = _empty_rows(b.g, seq_lens)
            Y_h = n("Where", [empty, h_in, Y_h], "h_last")
            if Y_c:
                Y_c = n("Where", [empty, c_in, Y_c], "c_last")
        idx = (b.g.lazy_const(np.array(0, np.int64), "index0"), b.g.lazy_const(np.array(1, np.int64), "index1"))
        reshape_seq = b.g.lazy_const(np.array([0, 0, -1], np.int64), "shape_t_b_feat")
        if seq_lens and D == 1 and not lay.return_sequences and lay.zero_output_for_mask:
            raise ExportError(
                f"{where} ({cls}): zero_output_for_mask with return_sequences=False gives 0 for right-padded rows "
                "in Keras, but ONNX gives the last valid h"
            )
        merged = _layer_output(b.g, lay, Y, Y_h, idx, reshape_seq, np.dtype(np.float32))
        result = []
        for m in merged:
            if lay.return_sequences:
                m = n("Transpose", [m], "y_btf", perm=[1, 0, 2])
                if seq_lens and D == 1 and not lay.zero_output_for_mask and not lay.reverse[0]:
                    m = self._repeat_last(m, seq_lens)
            result.append(m)
        if getattr(module, "return_state", False):
            for d in range(D):
                result.append(n("Gather", [Y_h, idx[d]], "h", axis=0))
                if Y_c:
                    result.append(n("Gather", [Y_c, idx[d]], "c", axis=0))
        return result

    def _repeat_last(self, y: str, seq_lens: str) -> str:
        """Keras's plain layer with a mask repeats its last valid output at padded steps: ``y[b, min(t,
        len_b - 1)]`` (a row of length 0 keeps the zeros ONNX wrote)."""
        b, n = self.b, self.b.n
        shape = n("Shape", [y])
        T = n("Gather", [shape, b.i64([1])], axis=0)
        t = n("Range", [b.c(0, "zero64", np.int64), n("Squeeze", [T, b.i64([0])]), b.c(1, "one64", np.int64)])
        last = n("Sub", [n("Cast", [seq_lens], to=b.g.TP.INT64), b.c(1, "one64", np.int64)])
        last = n("Max", [last, b.c(0, "zero64", np.int64)])
        idx = n("Min", [n("Unsqueeze", [t, b.i64([0])]), n("Unsqueeze", [last, b.i64([1])])])  # (B, T)
        idx3 = n("Expand", [n("Unsqueeze", [idx, b.i64([2])]), shape])
        return n("GatherElements", [y, idx3], "y_repeat_last", axis=1)


def _mask_layer(model: KerasModel, ref: Any) -> Optional[str]:
    """The Embedding(mask_zero=True) or Masking layer that reads the tensor ``ref`` (the input of a Keras 3
    ``NotEqual`` mask op), as text naming it; None when there is none."""
    if not isinstance(ref, TensorRef):
        return None
    for name, k in model.order:
        call = model._calls[name][k]
        m = model.module(name)
        if call.args and call.args[0] == ref:
            if type(m).__name__ == "Embedding" and getattr(m, "mask_zero", False):
                return f"Embedding {name!r} (mask_zero=True)"
            if type(m).__name__ == "Masking":
                return f"Masking {name!r} (mask_value={m.mask_value:g})"
    return None


def _as_mask(v: Any) -> Any:
    """A recorded mask tensor (or a list of them; None entries stay None) as a ``_T`` carrying itself as mask."""
    if isinstance(v, list):
        return [_as_mask(x) for x in v]
    if isinstance(v, _T):
        return _T(v.name, v.value, v.name, v.value.bool(), v.producers)
    return v


def _with_mask(t: _T, m: Any) -> _T:
    if isinstance(m, _T) and m.mask is not None:
        return _T(t.name, t.value, m.mask, m.mask_value, m.producers)
    return _T(t.name, t.value)


def _same(a: Any, b: Any) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and torch.equal(a.bool(), b.bool())
    )


def _eval_combined(masks: List[Any], op: str) -> torch.Tensor:
    out = masks[0].bool()
    for m in masks[1:]:
        out = (out | m.bool()) if op == "Or" else (out & m.bool())
    return out


def _onnx_type(b: _Builder, dtype: torch.dtype) -> int:
    TP = b.g.TP
    table = {
        torch.bool: TP.BOOL,
        torch.float32: TP.FLOAT,
        torch.float64: TP.DOUBLE,
        torch.int32: TP.INT32,
        torch.int64: TP.INT64,
    }
    if dtype not in table:
        raise ExportError(f"tensor dtype {dtype} is not exported")
    return table[dtype]


def _fill_tensor(b: _Builder, v: int, dtype: torch.dtype) -> Any:
    np_dtype = {
        torch.bool: np.bool_,
        torch.float32: np.float32,
        torch.float64: np.float64,
        torch.int32: np.int32,
        torch.int64: np.int64,
    }[dtype]
    return b.g.numpy_helper.from_array(np.array([v], np_dtype))


def _bool_tensor(b: _Builder, v: bool) -> Any:
    return b.g.numpy_helper.from_array(np.array([v], np.bool_))


def _elem_type(b: _Builder, value: torch.Tensor) -> int:
    return _onnx_type(b, value.dtype if value.dtype != torch.bool else torch.bool)


def build_onnx(
    model: KerasModel, model_config: Dict[str, Any], *, right_padded: bool = False, seed: int = 0
) -> Tuple[Any, OnnxExport, List[torch.Tensor]]:
    """Build (do not write) the ONNX graph of ``model``; returns ``(ModelProto, report, padded batch)``."""
    from .. import __version__
    from ..formats.onnx import _onnx
    from .port import _input_specs, padded_batch

    onnx, TP, helper, _ = _onnx()
    specs = _input_specs(model, model_config)
    xs, lengths = padded_batch(specs, seed)
    b = _Builder(right_padded)
    ins = []
    graph_inputs = []
    for (name, shape, _dtype, _vocab), x in zip(specs, xs):
        elem = _onnx_type(b, x.dtype)
        dims = ["batch"] + [("time" if i == 0 else f"dim{i}") if d is None else int(d) for i, d in enumerate(shape[1:])]
        graph_inputs.append(helper.make_tensor_value_info(name, elem, dims))
        ins.append(_T(name, x))
    with torch.no_grad():
        outs = _Exporter(b).run_model(model, ins, "")
    out_names = [f"output_{i}" if len(outs) > 1 else "output" for i in range(len(outs))]
    graph_outputs = []
    ok = ""
    for r in b.rows_ok:
        ok = r if not ok else b.n("And", [ok, r])
    for t, name in zip(outs, out_names):
        src = t.name
        if ok and t.value.is_floating_point():  # rows that are not right-padded give NaN, never a wrong number
            cond = b.n("Unsqueeze", [ok, b.i64(list(range(1, t.value.dim())))]) if t.value.dim() > 1 else ok
            src = b.n("Where", [cond, src, b.c(np.nan, "nan")], "guarded")
        b.g.node("Identity", [src], outputs=[name])
        v = t.value
        out_dims: List[Any] = ["batch"] + [int(d) for d in v.shape[1:]]
        if any(None in shape[1:2] for _, shape, _, _ in specs):  # an open time axis: any width may follow it
            out_dims = ["batch"] + [f"{name}_dim{i}" for i in range(1, v.dim())]
        graph_outputs.append(helper.make_tensor_value_info(name, _onnx_type(b, v.dtype), out_dims))
    b.g.finish()
    graph = helper.make_graph(b.g.nodes, _safe_name(model), graph_inputs, graph_outputs, initializer=b.g.inits)
    proto = helper.make_model(
        graph, producer_name="lstm-bridge", producer_version=__version__, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    proto.ir_version = IR_VERSION
    proto.doc_string = "lstm-bridge export of a whole Keras model" + (
        "; masks as sequence_lens (inputs stated right-padded): " + "; ".join(b.masks_used) if b.masks_used else ""
    )
    helper.set_model_props(proto, {"lstm_bridge.right_padded": str(bool(right_padded))})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"internal error: the generated ONNX graph fails onnx.checker: {exc}") from exc
    report = OnnxExport(None, [s[0] for s in specs], out_names, list(b.masks_used), lengths=lengths, model=proto)
    return proto, report, xs


def _safe_name(model: KerasModel) -> str:
    return str(getattr(model, "name", None) or "keras_model")


def verify_onnx(proto: Any, model: KerasModel, xs: List[torch.Tensor], names: List[str]) -> float:
    """Max |difference| of onnxruntime's outputs against ``model``'s (load_model) on the batch ``xs``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: x.numpy() for n, x in zip(names, xs)})
    with torch.no_grad():
        ref = model(*xs)
    refs = list(ref) if isinstance(ref, (list, tuple)) else [ref]
    worst = 0.0
    for g, r in zip(got, refs):
        r = r.detach().numpy()
        if g.shape != r.shape:
            raise ExportError(f"the ONNX graph's output has shape {g.shape}; load_model gives {r.shape}")
        if g.size:
            d = np.abs(g.astype(np.float64) - r.astype(np.float64))
            both_nan = np.isnan(g) & np.isnan(r)
            d[both_nan] = 0.0
            worst = max(worst, float(np.nanmax(np.where(np.isnan(d), np.inf, d))))
    return worst


def export_onnx(source: Any, path: Any, *, right_padded: bool = False, tol: float = 1e-5, seed: int = 0) -> OnnxExport:
    """Export a whole Keras model (a ``.keras`` / ``.h5`` path, or the module :func:`lstm_bridge.load_model`
    returned, whose weights may since have been fine-tuned) to ONNX at ``path``: built, checked with
    ``onnx.checker``, run with onnxruntime on a padded batch (lengths drawn per row, ``seed``) against
    :func:`lstm_bridge.load_model` and written atomically only when the max |difference| is within ``tol``
    (nothing is left behind on a refusal).

    Args:
        right_padded: state that every input row is right-padded, so a mask that reaches a recurrent layer
            becomes ``sequence_lens`` computed in the graph; without it such a model is refused (the mask could
            have holes or left padding, which ONNX's recurrent operators cannot express).

    Raises:
        ExportError: a layer or mask the graph cannot hold (named), or a verification above ``tol``.
    """
    from .files import read_keras_file
    from .load import load_model
    from .port import _input_specs, padded_batch

    if isinstance(source, KerasModel):  # a model from load_model: its file gives the input specs
        origin = (getattr(source, "source", None) or {}).get("path")
        if not origin:
            raise ExportError(
                "expected a model returned by lstm_bridge.load_model (it records its file); received one without"
            )
        src = str(origin)
        model = source.eval()
    else:
        src = os.fspath(source)
        model = load_model(src)
    kf = read_keras_file(src)
    try:
        model_config = kf.model_config
    finally:
        kf.close()
    proto, report, xs = build_onnx(model, model_config, right_padded=right_padded, seed=seed)
    batches = [(xs, report.lengths)]
    specs = _input_specs(model, model_config)
    if any(None in shape[1:2] for _, shape, _, _ in specs):  # an open time axis: a second length too
        other = [(n, (s[0], OTHER_STEPS, *s[2:]) if s[1:2] == (None,) else s, d, v) for n, s, d, v in specs]
        batches.append(padded_batch(other, seed + 1))
    worst = 0.0
    for batch, lengths in batches:
        diff = verify_onnx(proto, model, batch, report.inputs)
        worst = max(worst, diff)
        if not diff <= tol:
            raise ExportMismatch(
                f"verification failed: the ONNX graph differs from load_model by {diff:.3g} > tol {tol:g} on a "
                f"padded batch (time steps {batch[0].shape[1] if batch[0].dim() > 1 else 1}, lengths {lengths}); "
                "nothing was written",
                src,
            )
    report.max_abs_diff = worst
    dst = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".lstm_bridge_", suffix=".onnx.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(proto.SerializeToString())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    report.path = dst
    return report
