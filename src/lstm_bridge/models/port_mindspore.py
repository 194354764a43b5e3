"""``lstm-bridge port IN OUT_DIR --to mindspore``: a Keras full-model file as readable MindSpore source.

:func:`write_port_mindspore` loads the file with :func:`lstm_bridge.load_model`, walks its graph call by call
and writes

* ``model.py``: one ``mindspore.nn.Cell`` class (``import mindspore``, ``from mindspore import nn, ops``), one
  attribute per Keras layer that holds weights, a ``construct`` that reads like the Keras graph; ``build()``
  returns the Cell (``set_train(False)``), ``load(path=None)`` the Cell with ``model.ckpt`` loaded through
  ``mindspore.load_checkpoint`` / ``load_param_into_net`` (every parameter must come from the file);
* ``model.ckpt``: the weights in MindSpore's names and layouts, written by
  :func:`lstm_bridge.mindspore.save_checkpoint` (Dense ``weight (out, in)``, Embedding ``embedding_table``,
  Conv1d ``weight (out, in / group, 1, k)``, BatchNorm ``gamma`` / ``beta`` / ``moving_mean`` /
  ``moving_variance``, LSTM / GRU / RNN ``weight_ih_l0`` ... in MindSpore's = torch's gate order);
* ``PORT.md``: what was ported, how it was checked, what was not carried.

Masks. MindSpore's recurrent Cells take ``seq_length`` (a right-padded length per row), not a mask. A Keras
mask made by ``Embedding(mask_zero=True)`` (token id 0) or ``Masking`` (all-``mask_value`` rows) becomes a
length in the generated ``construct`` (``right_padded_lengths``); a mask with holes (a masked step before an
unmasked one) raises ``ValueError`` there, naming the layer that made it: MindSpore cannot skip a step in the
middle as Keras does. Keras's rules past a row's length are written out: a standalone layer with
``return_sequences`` repeats the last valid output (Keras's carry; MindSpore writes zeros: ``keep_last_valid``),
``Bidirectional`` keeps zeros (Keras sets ``zero_output_for_mask`` there), a layer without
``return_sequences`` returns ``h_n`` (the state at the last valid step), ``go_backwards`` reverses each row
within its length (``ops.reverse_sequence``).

Refused (:class:`PortError`, naming the layer and why; nothing is silently changed): gates MindSpore does not
compute (``hard_sigmoid`` recurrent activations, other activations, ``GRU(reset_after=False)``; the reasons are
those of :func:`lstm_bridge.targets.violations`), ``stateful`` layers, activations outside the written table,
nested models, and every class outside :data:`WRITERS`.

Before anything is written the source is executed with its imports rewritten to :mod:`lstm_bridge.mindspore`
(MindSpore's API on PyTorch, MindSpore's CPU numerics), ``load()`` reads the written checkpoint back, and the
predictions are compared with :func:`~lstm_bridge.load_model`'s on a padded random batch: ``|ms - keras| <=
tol * (1 + |keras|)``, ``tol`` = :data:`DEFAULT_TOL` (2e-4) by default: the margin real MindSpore needs on
CPU (its ``ops.tanh`` differs from exact tanh by up to 1.0e-4, and the issue measured up to ~1e-4 for recurrent
layers given ``seq_length``); the golden models agree to 4e-7 in both. Files are written into a temporary
folder beside ``OUT_DIR`` and moved into place only after the check (:func:`lstm_bridge.models.port.write_port`'s
rules: never over a non-empty ``OUT_DIR`` without ``force``).
"""

from __future__ import annotations

import builtins
import dataclasses
import keyword
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .port import _input_specs, _shape_text, check_out_dir, padded_batch, write_folder
from .port_source import PortError, PortMismatch, _class_name, _ident

__all__ = ["MindSporePort", "port_mindspore", "write_port_mindspore", "rewrite_imports", "WRITERS", "DEFAULT_TOL"]

MODEL_FILE, CKPT_FILE, REPORT_FILE = "model.py", "model.ckpt", "PORT.md"
#: verification tolerance: ``|ms - keras| <= tol * (1 + |keras|)`` (MindSpore's CPU sigmoid / tanh)
DEFAULT_TOL = 2e-4

#: Keras activation name -> the MindSpore expression (``{x}`` the tensor)
ACTIVATIONS: Dict[str, str] = {
    "linear": "{x}",
    "relu": "ops.relu({x})",
    "tanh": "ops.tanh({x})",
    "sigmoid": "ops.sigmoid({x})",
    "softmax": "ops.softmax({x}, -1)",
    "log_softmax": "ops.log_softmax({x}, -1)",
    "softsign": "{x} / (1 + ops.abs({x}))",
    "swish": "{x} * ops.sigmoid({x})",
    "silu": "{x} * ops.sigmoid({x})",
    "exponential": "ops.exp({x})",
    "gelu": "0.5 * {x} * (1 + ops.erf({x} / 1.4142135623730951))",  # Keras's exact gelu (not MindSpore's tanh form)
    "elu": "ops.select({x} > 0, {x}, ops.exp({x}) - 1)",
    "selu": "1.0507009873554805 * ops.select({x} > 0, {x}, 1.6732632423543772 * (ops.exp({x}) - 1))",
    "softplus": "ops.softplus({x})",
    "hard_sigmoid_keras2": "ops.clip_by_value(0.2 * {x} + 0.5, 0.0, 1.0)",  # tf_keras: clip(0.2x + 0.5, 0, 1)
    "hard_sigmoid_keras3": "ops.clip_by_value({x} / 6 + 0.5, 0.0, 1.0)",  # Keras 3: relu6(x + 3) / 6
}

_DROPOUTS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout")
_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_MERGE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
_MS_CELL = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}

#: the Keras classes written (everything else is refused naming the layer)
WRITERS: Tuple[str, ...] = (
    ("InputLayer", "Embedding", "Masking", "Dense", "Activation", "TimeDistributed", "RepeatVector", "Flatten")
    + ("Reshape", "Permute", "Conv1D", "MaxPooling1D", "AveragePooling1D", "BatchNormalization")
    + ("LayerNormalization", "GlobalMaxPooling1D", "GlobalAveragePooling1D", "Concatenate", "Bidirectional")
    + ("ZeroPadding1D", "Cropping1D", "UpSampling1D", "Dot")
    + _DROPOUTS
    + _RECURRENT
    + _MERGE
)

_HELPERS = '''

def right_padded_lengths(mask, layer):
    """A Keras mask ``(batch, time)`` as MindSpore's ``seq_length`` ``(batch,)`` int32. MindSpore's recurrent
    Cells skip only the steps past a row's length: a mask with a hole (a masked step before an unmasked one)
    is refused, naming the layer that made it."""
    lengths = ops.cast(ops.cast(mask, mindspore.int32).sum(axis=1), mindspore.int32)
    if not bool(ops.equal(ops.sequence_mask(lengths, mask.shape[1]), mask).all()):
        raise ValueError(
            f"{layer}: the mask has a masked step before an unmasked one; MindSpore's seq_length holds "
            "right-padded lengths only (pad each row at its end)"
        )
    return lengths


def keep_last_valid(output, h, lengths):
    """Keras repeats a layer's last valid output past a row's length (MindSpore writes zeros there)."""
    valid = ops.expand_dims(ops.sequence_mask(lengths, output.shape[1]), -1)
    last = ops.broadcast_to(ops.expand_dims(h, 1), output.shape)
    return ops.select(ops.broadcast_to(valid, output.shape), output, last)
'''


@dataclasses.dataclass
class MindSporePort:
    """What :func:`port_mindspore` produced."""

    source: str
    params: Dict[str, np.ndarray]
    class_name: str
    keras_path: str
    keras_format: str
    keras_version: Optional[str]
    generation: int
    inputs: List[Tuple[str, Tuple[Optional[int], ...], str]]
    lengths: List[List[int]]
    layers: List[Tuple[str, str, str]]  # (keras name, class, how it was written)
    outputs_max_diff: float = float("nan")
    report: str = ""
    reference: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


def rewrite_imports(source: str) -> str:
    """The generated source with ``mindspore`` imports pointing at :mod:`lstm_bridge.mindspore` (the same
    rule as docs/porting-mindspore.md: only import lines change)."""
    out = []
    for line in source.splitlines():
        line = re.sub(r"^import mindspore$", "import lstm_bridge.mindspore as mindspore", line)
        line = re.sub(r"^from mindspore(\.| )", r"from lstm_bridge.mindspore\1", line)
        out.append(line)
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------


class _Value(tuple):
    """``(variable, lengths variable or None)`` of one Keras tensor in the generated construct."""

    @property
    def var(self) -> str:
        return str(self[0])

    @property
    def lengths(self) -> Optional[str]:
        return self[1]  # type: ignore[no-any-return]


def _v(var: str, lengths: Optional[str] = None) -> _Value:
    return _Value((var, lengths))


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


class _Gen:
    def __init__(self, model: Any, generation: int, ranks: Dict[int, int]):
        self.model = model
        self.generation = generation
        self.ranks = ranks  # id(module) -> rank of its first input
        self.init: List[str] = []
        self.body: List[str] = []
        self.params: Dict[str, np.ndarray] = {}
        self.names: set = {"self", "mindspore", "nn", "ops", "os", "build", "load"}
        self.attrs: Dict[int, str] = {}
        self.layers: List[Tuple[str, str, str]] = []
        #: attribute names: the Cell's own names are taken (construct, training, cells, ...)
        self.attr_names: set = set(dir(_cell_class())) | set(vars(_cell_class()()))  # instance ones too
        self.mask_vars: Dict[str, Optional[str]] = {}  # boolean mask variable -> its lengths token
        #: lengths token -> [mask expression, label, variable name, the variable once written]
        self.lazy: Dict[str, List[Any]] = {}
        self.shown: Dict[str, str] = {}  # mask op variable -> its expression over the graph's tensors

    def fresh(self, base: str) -> str:
        name = _ident(base)
        while name in self.names or keyword.iskeyword(name) or name in _BUILTINS:
            name += "_"
        self.names.add(name)
        return name

    def attr(self, module: Any, name: str, ctor: str) -> Tuple[str, bool]:
        """The Cell attribute of ``module`` (``(attr, new)``)."""
        if id(module) in self.attrs:
            return self.attrs[id(module)], False
        a = _ident(name)
        while a in self.attr_names or keyword.iskeyword(a):
            a += "_"
        self.attr_names.add(a)
        self.attrs[id(module)] = a
        self.init.append(f"        self.{a} = {ctor}")
        return a, True

    def emit(self, line: str) -> None:
        self.body.append("        " + line)

    def act(self, name: str, cls: str, activation: Any, x: str) -> str:
        act = str(getattr(activation, "name", activation) or "linear")
        if act == "hard_sigmoid":  # the name means what the file's Keras generation says
            act = "hard_sigmoid_keras3" if self.generation >= 3 else "hard_sigmoid_keras2"
        if act not in ACTIVATIONS:
            raise PortError(
                f"layer {name!r} ({cls}): activation {act!r} has no MindSpore expression written here; expected one "
                f"of {sorted(ACTIVATIONS)}"
            )
        if act == "linear":
            return x
        out = self.fresh(f"{name}_{act}")
        self.emit(f"{out} = {ACTIVATIONS[act].format(x=x)}")
        return out

    # --- graph -----------------------------------------------------------------------------------
    def run(self) -> Tuple[List[str], List[_Value]]:
        """Write the construct: ``(its argument names, the output values)``."""
        from .port import _all_modules

        held = [
            self.cannot_hold(n, c, m) for n, m, c in _all_modules(self.model) if c in _RECURRENT + ("Bidirectional",)
        ]
        if any(held):
            raise PortError("MindSpore cannot hold " + "; ".join(h for h in held if h))
        args = [self.fresh(ref.layer) for ref in self.model.inputs]
        return args, self.graph(self.model, [_v(a) for a in args])

    def graph(self, model: Any, inputs: List[_Value]) -> List[_Value]:
        """Write ``model``'s calls (a nested model's inline) for ``inputs``; returns its output values."""
        from .graph import KerasModel, KerasOp, TensorRef

        values: Dict[Tuple[str, int], List[_Value]] = {}
        for ref, given in zip(model.inputs, inputs):
            values[(ref.layer, 0)] = [given]
        classes = {n: c for n, _, c in model.entries}

        def val(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return values[(v[0], v[1])][v[2]]
            if isinstance(v, list):
                return [val(x) for x in v]
            if isinstance(v, (int, float, bool)):
                return _v(repr(v))
            raise PortError(f"a constant call argument {v!r:.60} is not written")

        for name, k in model.order:
            call = model._calls[name][k]
            cls = classes[name]
            module = model.module(name)
            kwargs = dict(call.kwargs)
            kwargs.pop("training", None)
            if isinstance(module, KerasOp):
                values[(name, k)] = [self.op(name, module, [val(a) for a in call.args])]
                continue
            if cls not in WRITERS and not isinstance(module, KerasModel):
                raise PortError(
                    f"layer {name!r} ({cls}): no MindSpore equivalent written; expected one of {sorted(WRITERS)}"
                )
            x = val(call.args[0])
            previous = x.lengths if isinstance(x, _Value) else [v.lengths for v in x]
            if "mask" in kwargs:
                recorded = kwargs.pop("mask")
                if recorded is None:
                    lengths: Any = previous
                elif isinstance(recorded, list):  # a nested model's call: one mask per input, None for none
                    lengths = [None if v is None else self.mask_lengths(val(v)) for v in recorded]
                else:
                    lengths = self.mask_lengths(val(recorded))
            elif self.generation >= 3 and (len(call.args) > 1 or kwargs.get("initial_state") is not None):
                lengths = None
            else:
                lengths = previous
            if isinstance(module, KerasModel):  # a nested model: its calls inline, its inputs with their masks
                xs = x if isinstance(x, list) else [x]
                lens = lengths if isinstance(lengths, list) else [lengths] * len(xs)
                self.emit(f"# nested model {name!r}")
                values[(name, k)] = self.graph(module, [_v(xv.var, ln) for xv, ln in zip(xs, lens)])
                continue
            initial = kwargs.pop("initial_state", None)
            if kwargs or len(call.args) > 1:
                raise PortError(f"layer {name!r} ({cls}) is called with arguments {sorted(kwargs)}; not written")
            init_vals = None if initial is None else val(initial)
            if init_vals is not None and isinstance(init_vals, _Value):
                init_vals = [init_vals]
            out = self.layer(name, cls, module, x, lengths, init_vals)
            values[(name, k)] = out
        return [values[(r[0], r[1])][r[2]] for r in model.outputs]

    def lazy_mask(self, mask_expr: str, label: str, base: str) -> str:
        """A token for the lengths of a boolean ``(batch, time)`` mask: ``right_padded_lengths`` is written
        only where a layer uses the mask (:meth:`need`), so a mask nothing reads is never checked for holes."""
        tok = f"@{len(self.lazy)}"
        self.lazy[tok] = [mask_expr, label, base, None]
        return tok

    def need(self, lengths: Optional[str]) -> Optional[str]:
        """The lengths variable of ``lengths`` (a token of :meth:`lazy_mask` is written here, once)."""
        if lengths is None or not lengths.startswith("@"):
            return lengths
        entry = self.lazy[lengths]
        if entry[3] is None:
            ln = self.fresh(entry[2])
            self.emit(f'{ln} = right_padded_lengths({entry[0]}, "{entry[1]}")')
            entry[3] = ln
        return str(entry[3])

    def mask_lengths(self, v: _Value) -> str:
        """The lengths token of a mask value (an op node's boolean tensor)."""
        if v.lengths is not None:
            return v.lengths
        if v.var not in self.mask_vars:
            raise PortError(f"a recorded mask {v.var!r} is not a boolean mask written here")
        tok = self.mask_vars[v.var]
        if tok is None:
            label = f"the mask Keras 3 saved as op nodes, {self.shown.get(v.var, v.var)}".replace('"', "'")
            tok = self.lazy_mask(v.var, label, f"{v.var}_len")
            self.mask_vars[v.var] = tok
        return tok

    def op(self, name: str, module: Any, args: List[Any]) -> _Value:
        """Keras 3 saves mask computations as op nodes (``NotEqual``, ``Any``): boolean tensors here, turned
        into lengths where a layer takes them as its mask."""
        op, c = module.op, module.config
        m = self.fresh(name)
        a = args[0].var if args and isinstance(args[0], _Value) else ""
        if op in ("NotEqual", "Equal") and args:
            other = args[1].var if len(args) > 1 else "0"
            expr = f"{a} {'!=' if op == 'NotEqual' else '=='} {other}"
        elif op in ("Any", "All") and args:
            axis, keep = c.get("axis"), bool(c.get("keepdims", False))
            if not (axis is None or isinstance(axis, int)):
                raise PortError(f"op node {name!r} ({op}): axis {axis!r} is not written")
            expr = f"{a}.{op.lower()}(axis={axis!r}, keep_dims={keep})"
        elif op in ("LogicalOr", "LogicalAnd") and len(args) == 2:
            expr = f"ops.{'logical_or' if op == 'LogicalOr' else 'logical_and'}({a}, {args[1].var})"
        elif op == "LogicalNot" and args:
            expr = f"ops.logical_not({a})"
        elif op == "ExpandDims" and args:
            expr = f"ops.expand_dims({a}, {int(c.get('axis', -1))})"
        elif op == "Squeeze" and args:
            expr = f"ops.squeeze({a})" if c.get("axis") is None else f"ops.squeeze({a}, {int(c['axis'])})"
        elif op in ("ZerosLike", "OnesLike") and args:
            fn = "zeros_like" if op == "ZerosLike" else "ones_like"
            dt = c.get("dtype")
            expr = f"ops.{fn}({a})" if dt is None else f"ops.cast(ops.{fn}({a}), {_ms_dtype(dt, name)})"
        elif op == "Cast" and args:
            expr = f"ops.cast({a}, {_ms_dtype(c.get('dtype'), name)})"
        elif op == "Concatenate" and args and isinstance(args[0], list):
            expr = f"ops.concat(({', '.join(t.var for t in args[0])},), {int(c.get('axis', 0))})"
        else:
            raise PortError(f"op node {name!r} ({op}): no MindSpore source written for it")
        self.emit(f"{m} = {expr}  # a Keras 3 mask op")
        shown = expr
        for arg in args if not (args and isinstance(args[0], list)) else args[0]:
            if isinstance(arg, _Value) and arg.var in self.shown:
                sub = self.shown[arg.var]
                sub = f"({sub})" if " " in sub else sub
                shown = re.sub(rf"\b{re.escape(arg.var)}\b", sub.replace("\\", "\\\\"), shown)
        self.shown[m] = shown
        self.mask_vars[m] = None
        self.layers.append((name, op, "ops (a mask)"))
        return _v(m)

    # --- layers ----------------------------------------------------------------------------------
    def layer(self, name: str, cls: str, m: Any, x: Any, lengths: Any, init: Optional[List[_Value]]) -> List[_Value]:
        where = f"layer {name!r} ({cls})"
        if cls in _MERGE or cls == "Concatenate":
            return [self.merge(name, cls, m, x, lengths)]
        if cls == "Dot":
            return [self.dot(name, m, x)]
        if str(getattr(m, "data_format", "channels_last") or "channels_last") != "channels_last":
            raise PortError(f"{where}: data_format={m.data_format!r} is not written (channels_last only)")
        if (cls in _RECURRENT or cls == "Bidirectional") and isinstance(x, list):
            x, init = x[0], list(x[1:]) or init  # tf_keras records [inputs, *initial_state]
            lengths = lengths[0] if isinstance(lengths, list) else lengths
        if cls in _RECURRENT or cls == "Bidirectional":
            return self.recurrent(name, cls, m, x, lengths, init)
        if isinstance(x, list):
            raise PortError(f"{where}: called on {len(x)} tensors; expected one")
        if isinstance(lengths, list):
            lengths = lengths[0]
        v = x.var
        if cls == "InputLayer":
            return [x]
        if cls in _DROPOUTS:
            self.layers.append((name, cls, "identity at inference (Keras draws noise only in training)"))
            return [_v(v, lengths)]
        if cls == "Embedding":
            vocab, dim = (int(s) for s in m.weight.shape)
            a, new = self.attr(m, name, f"nn.Embedding({vocab}, {dim})")
            if new:
                self.params[f"{a}.embedding_table"] = _np(m.weight)
            ids = self.fresh(f"{v}_ids")
            self.emit(f"{ids} = ops.cast({v}, mindspore.int32)")
            out = self.fresh(name)
            self.emit(f"{out} = self.{a}({ids})")
            self.layers.append((name, cls, f"nn.Embedding({vocab}, {dim})"))
            if getattr(m, "mask_zero", False):
                label = f"Embedding {name!r} (mask_zero)"
                return [_v(out, self.lazy_mask(f"{ids} != 0", label, f"{name}_len"))]
            return [_v(out)]
        if cls == "Masking":
            mv = float(getattr(m, "mask_value", 0.0))
            keep = self.fresh(f"{name}_keep")
            self.emit(f"{keep} = ({v} != {mv!r}).any(axis=-1, keep_dims=True)")
            out = self.fresh(name)
            self.emit(f"{out} = {v} * ops.cast({keep}, {v}.dtype)")
            self.layers.append((name, cls, "zeroes masked steps; its mask becomes seq_length"))
            return [_v(out, self.lazy_mask(f"ops.squeeze({keep}, -1)", f"Masking {name!r}", f"{name}_len"))]
        if cls in ("Dense", "TimeDistributed"):
            dense = m.layer if cls == "TimeDistributed" else m
            if type(dense).__name__ != "Dense":
                raise PortError(f"{where}: wraps {type(dense).__name__}; only TimeDistributed(Dense) is written")
            out_f, in_f = (int(s) for s in dense.weight.shape)
            bias = getattr(dense, "bias", None)
            a, new = self.attr(m, name, f"nn.Dense({in_f}, {out_f}, has_bias={bias is not None})")
            if new:
                self.params[f"{a}.weight"] = _np(dense.weight)
                if bias is not None:
                    self.params[f"{a}.bias"] = _np(bias)
            out = self.fresh(name)
            self.emit(f"{out} = self.{a}({v})")
            out = self.act(name, cls, getattr(dense, "activation_name", None) or _act_of(dense), out)
            self.layers.append((name, cls, f"nn.Dense({in_f}, {out_f})"))
            return [_v(out, lengths)]
        if cls == "Activation":
            out = self.act(name, cls, _act_of(m), v)
            self.layers.append((name, cls, "ops"))
            return [_v(out, lengths)]
        if cls == "RepeatVector":
            n = int(m.n)
            out = self.fresh(name)
            self.emit(f"{out} = ops.tile(ops.expand_dims({v}, 1), (1, {n}, 1))")
            self.layers.append((name, cls, "ops.tile"))
            return [_v(out)]
        if cls == "Flatten":
            out = self.fresh(name)
            self.emit(f"{out} = ops.reshape({v}, ({v}.shape[0], -1))")
            self.layers.append((name, cls, "ops.reshape"))
            return [_v(out)]
        if cls == "Reshape":
            target = tuple(int(d) for d in m.target_shape)
            out = self.fresh(name)
            self.emit(f"{out} = ops.reshape({v}, ({v}.shape[0],) + {target!r})")
            self.layers.append((name, cls, "ops.reshape"))
            return [_v(out)]
        if cls == "Permute":
            dims = tuple(int(d) for d in m.dims)
            out = self.fresh(name)
            self.emit(f"{out} = ops.transpose({v}, (0,) + {dims!r})")
            self.layers.append((name, cls, "ops.transpose"))
            return [_v(out)]
        if cls == "Conv1D":
            return [self.conv(name, cls, m, v)]
        if cls == "ZeroPadding1D":
            left, right = (int(p) for p in m.padding)
            out = self.fresh(name)
            self.emit(f"{out} = ops.pad({v}, (0, 0, {left}, {right}))  # zeros before / after along time")
            self.layers.append((name, cls, "ops.pad"))
            return [_v(out)]
        if cls == "Cropping1D":
            start, end = (int(p) for p in m.cropping)
            out = self.fresh(name)
            self.emit(f"{out} = {v}[:, {start} : {v}.shape[1] - {end}]")
            self.layers.append((name, cls, "slicing"))
            return [_v(out)]
        if cls == "UpSampling1D":
            n = int(m.size)
            out = self.fresh(name)
            self.emit(
                f"{out} = ops.reshape(ops.tile(ops.expand_dims({v}, 2), (1, 1, {n}, 1)), "
                f"({v}.shape[0], {v}.shape[1] * {n}, {v}.shape[2]))  # each step {n} times"
            )
            self.layers.append((name, cls, "ops.tile"))
            return [_v(out)]
        if cls in ("MaxPooling1D", "AveragePooling1D"):
            return [self.pool(name, cls, m, v)]
        if cls == "BatchNormalization":
            return [_v(self.batchnorm(name, cls, m, v), lengths)]
        if cls == "LayerNormalization":
            return [_v(self.layernorm(name, cls, m, v), lengths)]
        if cls == "GlobalMaxPooling1D":
            if getattr(m, "keepdims", False):
                raise PortError(f"{where}: keepdims=True is not written")
            out = self.fresh(name)
            self.emit(f"{out} = ops.amax({v}, 1)")
            self.layers.append((name, cls, "ops.amax"))
            return [_v(out)]
        if cls == "GlobalAveragePooling1D":
            if getattr(m, "keepdims", False):
                raise PortError(f"{where}: keepdims=True is not written")
            out = self.fresh(name)
            if lengths is None:
                self.emit(f"{out} = ops.mean({v}, 1)")
            else:
                lengths = self.need(lengths)
                w = self.fresh(f"{name}_valid")
                self.emit(f"{w} = ops.cast(ops.expand_dims(ops.sequence_mask({lengths}, {v}.shape[1]), -1), {v}.dtype)")
                self.emit(f"{out} = ops.sum({v} * {w}, 1) / ops.sum({w}, 1)  # Keras averages the unmasked steps")
            self.layers.append((name, cls, "ops.mean" if lengths is None else "masked mean"))
            return [_v(out)]
        raise PortError(f"{where}: no MindSpore equivalent written")  # pragma: no cover - WRITERS is checked

    def merge(self, name: str, cls: str, m: Any, x: Any, lengths: Any) -> _Value:
        xs = x if isinstance(x, list) else [x]
        lens = lengths if isinstance(lengths, list) else [lengths] * len(xs)
        vs = [t.var for t in xs]
        out = self.fresh(name)
        present = [ln for ln in lens if ln is not None]
        if cls == "Concatenate":
            axis = int(getattr(m, "axis", -1))
            rank = self.ranks.get(id(m), 3)
            if present and axis % rank != rank - 1:
                raise PortError(f"layer {name!r} (Concatenate): masked inputs joined along axis {axis}; not written")
            self.emit(f"{out} = ops.concat(({', '.join(vs)}{',' if len(vs) == 1 else ''}), {axis})")
            # tf_keras: all() over the joined masks (ones for a missing one); Keras 3: any()
            if not present:
                return _v(out)
            if self.generation >= 3:
                return _v(
                    out,
                    present[0]
                    if len(present) == len(lens) and len(set(present)) == 1
                    else (self._merge_lengths(name, present, "maximum") if len(present) == len(lens) else None),
                )
            return _v(out, present[0] if len(set(present)) == 1 else self._merge_lengths(name, present, "minimum"))
        if present and cls in ("Maximum", "Minimum", "Multiply") and self.generation >= 3:
            self.masked_merge(name, cls, out, vs, lens)
            return self._merged_mask(name, out, lens, present)
        expr = {
            "Add": " + ".join(vs),
            "Subtract": " - ".join(vs),
            "Multiply": " * ".join(vs),
            "Average": f"({' + '.join(vs)}) / {len(vs)}",
        }.get(cls)
        if expr is None:
            fn = "ops.maximum" if cls == "Maximum" else "ops.minimum"
            expr = vs[0]
            for other in vs[1:]:
                expr = f"{fn}({expr}, {other})"
        self.emit(f"{out} = {expr}")
        self.layers.append((name, cls, "ops"))
        return self._merged_mask(name, out, lens, present)

    def _merged_mask(self, name: str, out: str, lens: List[Any], present: List[str]) -> _Value:
        """The output mask of a merge: Keras 3 ORs the masks (None when an input has none), tf_keras ANDs those
        present; right-padded masks give the longest / shortest length."""
        if not present:
            return _v(out)
        if self.generation >= 3:
            if len(present) < len(lens):
                return _v(out)
            return _v(out, present[0] if len(set(present)) == 1 else self._merge_lengths(name, present, "maximum"))
        return _v(out, present[0] if len(set(present)) == 1 else self._merge_lengths(name, present, "minimum"))

    def masked_merge(self, name: str, cls: str, out: str, vs: List[str], lens: List[Any]) -> None:
        """Keras 3's Maximum / Minimum / Multiply over masked inputs (keras/src/layers/merging): a masked element
        is replaced (Multiply: by 1, and the product is 0 where every input is masked; Maximum / Minimum: by the
        running result, and the running result by the element where only it is masked)."""
        masks: List[Optional[str]] = []
        for v, ln in zip(vs, lens):
            if ln is None:
                masks.append(None)
                continue
            m = self.fresh(f"{v}_valid")
            ln = self.need(ln)
            self.emit(f"{m} = ops.broadcast_to(ops.expand_dims(ops.sequence_mask({ln}, {v}.shape[1]), -1), {v}.shape)")
            masks.append(m)
        if cls == "Multiply":
            factors = [v if m is None else f"ops.select({m}, {v}, ops.ones_like({v}))" for v, m in zip(vs, masks)]
            self.emit(f"{out} = {' * '.join(factors)}  # Keras 3: a masked element counts as 1")
            if all(m is not None for m in masks):
                anym = str(masks[0])
                for other in masks[1:]:
                    anym = f"ops.logical_or({anym}, {other})"
                self.emit(f"{out} = ops.select({anym}, {out}, ops.zeros_like({out}))  # 0 where every input is masked")
        else:
            fn = "ops.maximum" if cls == "Maximum" else "ops.minimum"
            self.emit(f"{out} = {vs[0]}")
            out_mask: Optional[str] = masks[0]
            for v, vm in zip(vs[1:], masks[1:]):
                x = v
                if vm is not None:
                    x = self.fresh(f"{v}_or_running")
                    self.emit(f"{x} = ops.select({vm}, {v}, {out})  # Keras 3: a masked element is the running result")
                if out_mask is not None:
                    self.emit(f"{out} = ops.select({out_mask}, {out}, {x})")
                out_mask = f"ops.logical_or({out_mask}, {vm})" if vm is not None and out_mask is not None else None
                self.emit(f"{out} = {fn}({out}, {x})")
        self.layers.append((name, cls, "ops (Keras 3 masked merge)"))

    def dot(self, name: str, m: Any, x: Any) -> _Value:
        xs = x if isinstance(x, list) else [x]
        if len(xs) != 2:
            raise PortError(f"layer {name!r} (Dot): expected 2 inputs; received {len(xs)}")
        rank = self.ranks.get(id(m), 3)
        a, b = xs[0].var, xs[1].var
        ax = [int(k) % rank for k in m.axes]
        if getattr(m, "normalize", False):  # l2-normalised along the summed axes first (cosine proximity)
            na, nb = self.fresh(f"{name}_left"), self.fresh(f"{name}_right")
            for var, src, k in ((na, a, ax[0]), (nb, b, ax[1])):
                norm = f"ops.sqrt(({src} * {src}).sum(axis={k}, keepdims=True))"
                self.emit(f"{var} = {src} / ops.maximum({norm}, 1e-12)")
            a, b = na, nb
        out = self.fresh(name)
        if rank == 2 and ax == [1, 1]:
            self.emit(f"{out} = ({a} * {b}).sum(axis=1, keepdims=True)")
        elif rank == 3 and all(k in (1, 2) for k in ax):
            left = a if ax[0] == 2 else f"ops.transpose({a}, (0, 2, 1))"
            right = b if ax[1] == 1 else f"ops.transpose({b}, (0, 2, 1))"
            self.emit(f"{out} = ops.bmm({left}, {right})  # Keras's batch_dot over axes {tuple(m.axes)}")
        else:
            raise PortError(f"layer {name!r} (Dot): axes {tuple(m.axes)} on rank-{rank} inputs are not written")
        self.layers.append((name, "Dot", "ops.bmm" if rank == 3 else "ops"))
        return _v(out)

    def _merge_lengths(self, name: str, lens: Sequence[str], fn: str) -> str:
        lens = [str(self.need(ln)) for ln in lens]
        out = self.fresh(f"{name}_len")
        expr = lens[0]
        for other in lens[1:]:
            expr = f"ops.{fn}({expr}, {other})"
        self.emit(f"{out} = {expr}")
        return out

    def conv(self, name: str, cls: str, m: Any, v: str) -> _Value:
        w = m.weight  # (filters, in / groups, k)
        filters, in_g, k = (int(s) for s in w.shape)
        groups = int(getattr(m, "groups", 1) or 1)
        stride = _one(getattr(m, "strides", 1))
        dil = _one(getattr(m, "dilation_rate", 1))
        padding = str(getattr(m, "padding", "valid"))
        bias = getattr(m, "bias", None)
        if padding == "same" and stride != 1:
            raise PortError(f"layer {name!r} (Conv1D): padding='same' with strides {stride} is not written")
        if padding not in ("valid", "same", "causal"):
            raise PortError(f"layer {name!r} (Conv1D): padding {padding!r} is not written")
        a, new = self.attr(
            m,
            name,
            f'nn.Conv1d({in_g * groups}, {filters}, {k}, stride={stride}, pad_mode="valid", dilation={dil}, '
            f"group={groups}, has_bias={bias is not None})",
        )
        if new:
            self.params[f"{a}.weight"] = _np(w)[:, :, None, :]
            if bias is not None:
                self.params[f"{a}.bias"] = _np(bias)
        t = self.fresh(f"{name}_in")
        self.emit(f"{t} = ops.transpose({v}, (0, 2, 1))  # (batch, channels, time) for nn.Conv1d")
        total = dil * (k - 1)
        if padding == "causal" and total:
            self.emit(f"{t} = ops.pad({t}, ({total}, 0))  # Keras's causal padding: all on the left")
        elif padding == "same" and total:
            self.emit(f"{t} = ops.pad({t}, ({total // 2}, {total - total // 2}))  # Keras's 'same'")
        out = self.fresh(name)
        self.emit(f"{out} = ops.transpose(self.{a}({t}), (0, 2, 1))")
        out = self.act(name, cls, _act_of(m), out)
        self.layers.append((name, cls, f"nn.Conv1d (padding {padding})"))
        return _v(out)

    def pool(self, name: str, cls: str, m: Any, v: str) -> _Value:
        size = _one(getattr(m, "pool_size", 2))
        stride = _one(getattr(m, "strides", None) or size)
        padding = str(getattr(m, "padding", "valid"))
        if padding not in ("valid", "same"):
            raise PortError(f"layer {name!r} ({cls}): padding {padding!r} is not written")
        kind = "MaxPool1d" if cls == "MaxPooling1D" else "AvgPool1d"
        a, _ = self.attr(m, name, f'nn.{kind}(kernel_size={size}, stride={stride}, pad_mode="{padding}")')
        out = self.fresh(name)
        self.emit(f"{out} = ops.transpose(self.{a}(ops.transpose({v}, (0, 2, 1))), (0, 2, 1))")
        self.layers.append((name, cls, f"nn.{kind}"))
        return _v(out)

    def batchnorm(self, name: str, cls: str, m: Any, v: str) -> str:
        axis = getattr(m, "axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = self.ranks.get(id(m), 3)
        if not isinstance(axis, int) or axis % rank != rank - 1:
            raise PortError(f"layer {name!r} (BatchNormalization): axis {axis!r} is not the last; not written")
        mean, var = m.running_mean, m.running_var
        c = int(mean.shape[0])
        eps = float(getattr(m, "epsilon", 1e-3))
        momentum = float(getattr(m, "momentum", 0.99))
        a, new = self.attr(m, name, f"nn.BatchNorm1d({c}, eps={eps!r}, momentum={momentum!r})")
        if new:
            w = getattr(m, "weight", None)
            b = getattr(m, "bias", None)
            self.params[f"{a}.gamma"] = _np(w) if w is not None else np.ones(c, np.float32)
            self.params[f"{a}.beta"] = _np(b) if b is not None else np.zeros(c, np.float32)
            self.params[f"{a}.moving_mean"] = _np(mean)
            self.params[f"{a}.moving_variance"] = _np(var)
        out = self.fresh(name)
        if rank == 2:
            self.emit(f"{out} = self.{a}({v})")
        else:
            self.emit(f"{out} = ops.reshape(self.{a}(ops.reshape({v}, (-1, {c}))), {v}.shape)")
        self.layers.append((name, cls, f"nn.BatchNorm1d({c})"))
        return out

    def layernorm(self, name: str, cls: str, m: Any, v: str) -> str:
        axis = getattr(m, "axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = self.ranks.get(id(m), 3)
        if not isinstance(axis, int) or axis % rank != rank - 1 or getattr(m, "rms_scaling", False):
            raise PortError(f"layer {name!r} (LayerNormalization): axis {axis!r} / rms_scaling is not written")
        w, b = getattr(m, "weight", None), getattr(m, "bias", None)
        shaped = w if w is not None else b
        if shaped is None:
            raise PortError(f"layer {name!r} (LayerNormalization): without scale and center is not written")
        c = int(shaped.shape[0])
        eps = float(getattr(m, "epsilon", 1e-3))
        a, new = self.attr(m, name, f"nn.LayerNorm(({c},), begin_norm_axis=-1, begin_params_axis=-1, epsilon={eps!r})")
        if new:
            self.params[f"{a}.gamma"] = _np(w) if w is not None else np.ones(c, np.float32)
            self.params[f"{a}.beta"] = _np(b) if b is not None else np.zeros(c, np.float32)
        out = self.fresh(name)
        self.emit(f"{out} = self.{a}({v})")
        self.layers.append((name, cls, f"nn.LayerNorm(({c},))"))
        return out

    # --- recurrent -------------------------------------------------------------------------------
    @staticmethod
    def cannot_hold(name: str, cls: str, m: Any) -> str:
        """Why MindSpore's recurrent Cell cannot hold layer ``m`` ("" when it can): the one rule,
        :mod:`lstm_bridge.targets`. A lone ``go_backwards`` (written with ``ops.reverse_sequence``) and the
        merge modes (ops on the two halves) are written around the Cell, so they are not asked about."""
        from ..targets import describe, reasons as target_reasons

        found: List[str] = []
        for d in describe(m):
            reverse = (False,) if d.reverse == (True,) else d.reverse
            found += target_reasons(dataclasses.replace(d, reverse=reverse, merge_mode="concat"), "mindspore")
        return f"layer {name!r} ({cls}): {'; '.join(found)}" if found else ""

    def recurrent(
        self, name: str, cls: str, m: Any, x: _Value, lengths: Optional[str], init: Optional[List[_Value]]
    ) -> List[_Value]:
        where = f"layer {name!r} ({cls})"
        reason = self.cannot_hold(name, cls, m)
        if reason:
            raise PortError(f"MindSpore cannot hold {reason}")
        bidi = cls == "Bidirectional"
        fw = m.forward_layer if bidi else m
        sides = [m.forward_layer, m.backward_layer] if bidi else [m]
        for s in sides:
            if getattr(s, "stateful", False):
                raise PortError(f"{where}: stateful=True (state kept across calls) has no MindSpore equivalent")
            if getattr(s, "time_major", False):
                raise PortError(f"{where}: time_major=True is not written")
        kind = type(fw).__name__
        if bidi:
            if type(m.backward_layer).__name__ != kind or int(m.backward_layer.units) != int(fw.units):
                raise PortError(
                    f"{where}: forward and backward layers differ; MindSpore's bidirectional Cell holds one"
                )
            if fw.go_backwards or not m.backward_layer.go_backwards:
                raise PortError(f"{where}: go_backwards on the forward layer is not written")
        units = int(fw.units)
        width = int(fw.cell.kernel.shape[0])
        bias = fw.cell.bias is not None
        extra = ""
        if kind == "SimpleRNN":
            act = str(getattr(fw.cell.activation, "name", "tanh"))
            extra = f', nonlinearity="{act}"'
        ctor = (
            f"nn.{_MS_CELL[kind]}({width}, {units}, has_bias={bias}, batch_first=True"
            + (", bidirectional=True" if bidi else "")
            + f"{extra})"
        )
        a, new = self.attr(m, name, ctor)
        if new:
            self.params.update({f"{a}.{k}": v for k, v in _recurrent_params(kind, sides).items()})
        self.layers.append((name, cls, ctor.split("(")[0] + (" + seq_length" if lengths else "")))
        v = x.var
        lengths = self.need(lengths)
        go_back = bool(getattr(m, "go_backwards", False)) and not bidi
        if go_back:
            xin = self.fresh(f"{name}_reversed")
            if lengths:
                self.emit(f"{xin} = ops.reverse_sequence({v}, {lengths}, 1, 0)  # go_backwards within each length")
            else:
                self.emit(f"{xin} = ops.flip({v}, (1,))  # go_backwards")
            v = xin
        args = [v]
        if init:
            hx = self.fresh(f"{name}_hx")
            states = [s.var for s in init]
            n = 2 if kind == "LSTM" else 1
            if bidi:
                if len(states) != 2 * n:
                    raise PortError(f"{where}: initial_state holds {len(states)} tensors; expected {2 * n}")
                per = [f"ops.stack(({states[i]}, {states[i + n]}))" for i in range(n)]
            else:
                if len(states) != n:
                    raise PortError(f"{where}: initial_state holds {len(states)} tensors; expected {n}")
                per = [f"ops.expand_dims({s}, 0)" for s in states]
            self.emit(f"{hx} = {'(' + ', '.join(per) + ')' if n == 2 else per[0]}")
            args.append(hx)
        if lengths:
            args.append(f"seq_length={lengths}")
        seq, state = self.fresh(f"{name}_seq"), self.fresh(f"{name}_state")
        self.emit(f"{seq}, {state} = self.{a}({', '.join(args)})")
        hn = f"{state}[0]" if kind == "LSTM" else state
        cn = f"{state}[1]" if kind == "LSTM" else None
        dirs = 2 if bidi else 1
        ret_seq = bool(getattr(m, "return_sequences", False))
        ret_state = bool(getattr(m, "return_state", False))
        carry = bool(ret_seq and lengths and not bidi and not go_back and not getattr(m, "zero_output_for_mask", False))
        hs, cs = [], []
        if ret_state or not ret_seq or carry:  # the final states are read: h_n (and c_n) per direction
            for k in range(dirs):
                h = self.fresh(f"{name}_h" + ("_backward" if k else ""))
                self.emit(f"{h} = {hn}[{k}]")
                hs.append(h)
                if cn and ret_state:
                    c = self.fresh(f"{name}_c" + ("_backward" if k else ""))
                    self.emit(f"{c} = {cn}[{k}]")
                    cs.append(c)
        out_lengths = lengths if ret_seq else None
        if ret_seq and go_back and lengths:
            self.emit(f"{seq} = ops.flip(ops.reverse_sequence({seq}, {lengths}, 1, 0), (1,))  # Keras's order")
        elif carry:  # Keras repeats the last valid output past each length
            self.emit(f"{seq} = keep_last_valid({seq}, {hs[0]}, {lengths})")
        states = [s for pair in zip(hs, cs) for s in pair] if cs else list(hs)
        if not bidi:
            out = seq if ret_seq else hs[0]
            outs = [_v(out, out_lengths)]
        else:
            merge = getattr(m, "merge_mode", "concat")
            if ret_seq and merge == "concat":
                a_ = b_ = seq
            elif ret_seq:
                a_, b_ = self.fresh(f"{name}_forward"), self.fresh(f"{name}_backward")
                self.emit(f"{a_}, {b_} = ops.split({seq}, {units}, -1)")
            else:
                a_, b_ = hs[0], hs[1]
            if merge == "concat" and ret_seq:
                outs = [_v(seq, out_lengths)]
            elif merge == "concat":
                res = self.fresh(f"{name}_out")
                self.emit(f"{res} = ops.concat(({a_}, {b_}), -1)")
                outs = [_v(res, out_lengths)]
            elif merge is None:
                outs = [_v(a_, out_lengths), _v(b_, out_lengths)]
            else:
                res = self.fresh(f"{name}_out")
                expr = {"sum": f"{a_} + {b_}", "mul": f"{a_} * {b_}", "ave": f"({a_} + {b_}) / 2"}.get(str(merge))
                if expr is None:
                    raise PortError(f"{where}: merge_mode {merge!r} is not written")
                self.emit(f"{res} = {expr}")
                outs = [_v(res, out_lengths)]
        if ret_state:
            outs += [_v(s) for s in states]
        return outs


_BUILTINS = frozenset(dir(builtins))
_MS_DTYPES = {"bool": "bool_", "float32": "float32", "int32": "int32", "int64": "int64", "float16": "float16"}


def _ms_dtype(name: Any, where: str) -> str:
    key = str((name.get("config") or {}).get("name") if isinstance(name, dict) else name)
    if key not in _MS_DTYPES:
        raise PortError(f"op node {where!r}: dtype {name!r} is not written")
    return f"mindspore.{_MS_DTYPES[key]}"


def _cell_class() -> Any:
    from ..mindspore.nn import Cell

    return Cell


def _one(v: Any) -> int:
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def _act_of(m: Any) -> Any:
    for key in ("activation_name", "activation"):
        a = getattr(m, key, None)
        if isinstance(a, str):
            return a
        if a is not None and getattr(a, "name", None):
            return a.name
    cfg = getattr(m, "keras_config", None) or {}
    return cfg.get("activation", "linear")


def _recurrent_params(kind: str, sides: Sequence[Any]) -> Dict[str, np.ndarray]:
    from ..weights.family import gru_from_keras, recurrent_to_torch_state_dict, rnn_from_keras
    from ..weights.layouts import from_keras

    dirs = []
    for s in sides:
        c = s.cell
        k, r = c.kernel.detach(), c.recurrent_kernel.detach()
        b = None if c.bias is None else c.bias.detach()
        if kind == "LSTM":
            dirs.append(from_keras(k, r, b))
        elif kind == "GRU":
            dirs.append(gru_from_keras(k, r, b, reset_after=True))
        else:
            dirs.append(rnn_from_keras(k, r, b))
    state = recurrent_to_torch_state_dict([dirs])
    return {k: _np(v) for k, v in state.items()}


# ------------------------------------------------------------------------------------------------


def _input_ranks(model: Any, xs: List[torch.Tensor]) -> Tuple[Dict[int, int], Any]:
    """Run ``model`` on ``xs``: ``({id(layer module): rank of its first input}, the predictions)``."""
    ranks: Dict[int, int] = {}
    handles = []
    for _, key, _ in model.entries:
        mod = model.modules_by_name[key]

        def hook(mod_: Any, inputs: Any, _id: int = id(mod)) -> None:
            first = inputs[0] if inputs else None
            if isinstance(first, (list, tuple)):
                first = first[0] if first else None
            if isinstance(first, torch.Tensor) and _id not in ranks:
                ranks[_id] = first.dim()

        handles.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            want = model(*xs)
    finally:
        for h in handles:
            h.remove()
    return ranks, want


def port_mindspore(path: str, seed: int = 0) -> MindSporePort:
    """Generate the MindSpore port of the Keras file ``path`` in memory (source and checkpoint arrays);
    :func:`write_port_mindspore` writes and verifies it. Raises :class:`PortError` naming what MindSpore
    cannot hold."""
    from .. import __version__
    from .files import read_keras_file
    from .load import load_model

    model = load_model(path)
    kf = read_keras_file(path)
    try:
        model_config, version, generation, fmt = kf.model_config, kf.version, kf.generation, kf.format
    finally:
        kf.close()
    specs = _input_specs(model, model_config)
    xs, lengths = padded_batch(specs, seed)
    ranks, want = _input_ranks(model, xs)
    gen = _Gen(model, generation, ranks)
    args, outs = gen.run()
    cls = _class_name(str(getattr(model, "name", "model")))
    maker = f"Keras {version}" if version else ("Keras 3" if generation == 3 else "Keras 2 / tf_keras")
    shapes = ", ".join(f"{n} {_shape_text(s)} {dt}" for n, s, dt, _ in specs)
    ret = (
        outs[0].var
        if len(outs) == 1 and getattr(model, "single_output", True)
        else ("[" + ", ".join(o.var for o in outs) + "]")
    )
    lines = [
        f'"""MindSpore port of the Keras model {os.path.basename(path)} ({maker}),',
        f"written by `lstm-bridge port --to mindspore` (lstm-bridge {__version__}).",
        "",
        f"Inputs: {shapes} (token ids: integers; padded rows end in 0 ids / all-mask_value steps).",
        f"build() returns the Cell; load(path=None) the Cell with {CKPT_FILE} (beside this file) loaded.",
        '"""',
        "",
        "import os",
        "",
        "import mindspore",
        "from mindspore import nn, ops",
        _HELPERS,
        "",
        f"class {cls}(nn.Cell):",
        "    def __init__(self):",
        "        super().__init__()",
        *(gen.init or ["        pass"]),
        "",
        f"    def construct(self, {', '.join(args)}):",
        *gen.body,
        f"        return {ret}",
        "",
        "",
        "def build():",
        f'    """The {cls} Cell in inference mode (weights as initialised: see load)."""',
        f"    net = {cls}()",
        "    net.set_train(False)",
        "    return net",
        "",
        "",
        "def load(path=None):",
        f'    """The {cls} Cell with its checkpoint ({CKPT_FILE} beside this file unless path is given) loaded."""',
        "    if path is None:",
        f'        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "{CKPT_FILE}")',
        "    net = build()",
        "    param_not_load, _ = mindspore.load_param_into_net(net, mindspore.load_checkpoint(path))",
        "    if param_not_load:",
        '        raise ValueError(f"{path}: expected every parameter of the network; missing {param_not_load}")',
        "    return net",
        "",
    ]
    source = "\n".join(lines)
    return MindSporePort(
        source=source,
        params=gen.params,
        class_name=cls,
        keras_path=os.path.abspath(path),
        keras_format=fmt,
        keras_version=version,
        generation=generation,
        inputs=[(n, s, dt) for n, s, dt, _ in specs],
        lengths=lengths,
        layers=gen.layers,
        reference={"model": model, "inputs": xs, "outputs": want},
    )


def _exec_source(source: str, file: str) -> Dict[str, Any]:
    ns: Dict[str, Any] = {"__file__": file, "__name__": "lstm_bridge_port_mindspore"}
    try:
        exec(compile(rewrite_imports(source), file, "exec"), ns)  # noqa: S102 - our own generated source
    except Exception as exc:
        raise PortError(f"the generated model.py does not run: {type(exc).__name__}: {exc}") from exc
    return ns


def write_checkpoint(p: MindSporePort, path: str) -> None:
    """Build the generated Cell on :mod:`lstm_bridge.mindspore`, fill every parameter from ``p.params`` (names
    must match both ways) and write it with :func:`lstm_bridge.mindspore.save_checkpoint`."""
    from .. import mindspore as ms

    ns = _exec_source(p.source, "<generated model.py>")
    net = ns["build"]()
    own = dict(net.parameters_and_names())
    by_attr: Dict[str, Any] = {}
    for key in p.params:
        cell_path, _, pname = key.rpartition(".")
        cell = net
        for part in cell_path.split("."):
            cell = getattr(cell, part)
        by_attr[key] = getattr(cell, pname)
    ids = {id(v): k for k, v in own.items()}
    missing = sorted(k for k, v in own.items() if id(v) not in {id(t) for t in by_attr.values()})
    if missing:
        raise PortError(f"internal: the generated Cell has parameters no Keras weight fills: {missing}")
    for key, param in by_attr.items():
        arr = p.params[key]
        if tuple(param.shape) != tuple(arr.shape):
            raise PortError(
                f"internal: parameter {ids.get(id(param), key)!r} has shape {tuple(param.shape)}; the Keras weight "
                f"gives {arr.shape}"
            )
        param.set_data(ms.Tensor(arr))
    ms.save_checkpoint(net, path)


def verify(p: MindSporePort, folder: str, tol: float) -> None:
    """Run ``folder/model.py`` (imports rewritten to :mod:`lstm_bridge.mindspore`) with ``load()`` of the written
    checkpoint on the padded batch; compare with ``load_model``: ``|ms - keras| <= tol * (1 + |keras|)``."""
    from .. import mindspore as ms

    file = os.path.join(folder, MODEL_FILE)
    with open(file, encoding="utf-8") as fh:
        ns = _exec_source(fh.read(), file)
    try:
        net = ns["load"](os.path.join(folder, CKPT_FILE))
        inputs = [ms.Tensor(x.numpy()) for x in p.reference["inputs"]]
        with torch.no_grad():
            got = net(*inputs)
    except ValueError:
        raise
    except Exception as exc:
        raise PortError(f"the generated model.py fails on the padded batch: {type(exc).__name__}: {exc}") from exc
    want = p.reference["outputs"]
    got_l = list(got) if isinstance(got, (list, tuple)) else [got]
    want_l = list(want) if isinstance(want, (list, tuple)) else [want]
    worst = 0.0
    for g, w in zip(got_l, want_l):
        g_, w_ = torch.as_tensor(g).double(), torch.as_tensor(w).double()
        if g_.shape != w_.shape:
            raise PortMismatch(f"the MindSpore port returns shape {tuple(g_.shape)}; Keras returns {tuple(w_.shape)}")
        worst = max(worst, float(((g_ - w_).abs() / (1 + w_.abs())).max()) if g_.numel() else 0.0)
    if len(got_l) != len(want_l):
        raise PortMismatch(f"the MindSpore port returns {len(got_l)} outputs; Keras returns {len(want_l)}")
    p.outputs_max_diff = worst
    if not worst <= tol:
        raise PortMismatch(
            f"the MindSpore port differs from lstm_bridge.load_model by {worst:.3g} (scaled, tolerance {tol:g})"
        )


def render_report(p: MindSporePort, tol: float) -> str:
    from .. import __version__

    gen = "Keras 3" if p.generation == 3 else "tf_keras / Keras 2"
    lines = [
        f"# MindSpore port of `{os.path.basename(p.keras_path)}`",
        "",
        f"- Source: `{p.keras_path}` ({'.keras archive' if p.keras_format == 'keras' else 'legacy .h5'}), {gen} "
        f"(written by Keras {p.keras_version or 'unknown'})",
        f"- Written by lstm-bridge {__version__} (`lstm-bridge port --to mindspore`) for MindSpore 2.x",
        f"- Files: `{MODEL_FILE}` (class `{p.class_name}`, a `mindspore.nn.Cell`; `build()`, `load(path=None)`), "
        f"`{CKPT_FILE}` ({len(p.params)} parameters, MindSpore's names and layouts), `{REPORT_FILE}`",
        "",
        "## Layers",
        "",
        "| Keras layer | class | MindSpore |",
        "|---|---|---|",
        *[f"| `{n}` | {c} | {how} |" for n, c, how in p.layers],
        "",
        "## Verification",
        "",
        f"`{MODEL_FILE}` run on lstm-bridge's MindSpore API (imports rewritten to `lstm_bridge.mindspore`), "
        f"`load()` reading `{CKPT_FILE}`, against `lstm_bridge.load_model` of the Keras file on one padded random "
        "batch: "
        + "; ".join(f"input `{n}` {_shape_text(s)} {dt}, lengths {ls}" for (n, s, dt), ls in zip(p.inputs, p.lengths))
        + ".",
        "",
        f"Max scaled difference `|ms - keras| / (1 + |keras|)`: **{p.outputs_max_diff:.3g}** (tolerance {tol:g}: "
        "the margin real MindSpore needs on CPU, whose `ops.tanh` differs from exact tanh by up to 1e-4). The final "
        "predictions are compared, not each layer; this command does not run real MindSpore (lstm-bridge's tests do, "
        "on its golden models).",
        "",
        "## Masks",
        "",
        "Keras masks are MindSpore `seq_length`s computed in `construct` (`right_padded_lengths`): inputs must be "
        "right-padded (token id 0 / all-`mask_value` steps at the end of a row). A row with a masked step before "
        "an unmasked one raises `ValueError` naming the layer that made the mask: MindSpore cannot skip steps in "
        "the middle of a sequence as Keras does.",
        "",
        "## Not carried",
        "",
        "- the training configuration (optimizer, loss, metrics); Dropout / GaussianNoise / GaussianDropout / "
        "AlphaDropout / SpatialDropout1D are identities (Keras draws noise only in training)",
        "- recurrent `dropout` / `recurrent_dropout` (training only), initializers, regularizers, constraints",
        "",
    ]
    return "\n".join(lines)


def write_port_mindspore(
    path: str, out_dir: str, force: bool = False, tol: float = DEFAULT_TOL, seed: int = 0
) -> MindSporePort:
    """Port ``path`` into ``out_dir`` (``model.py``, ``model.ckpt``, ``PORT.md``), verified, atomically.

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder and ``force`` is False.
        PortError: MindSpore cannot hold the model (naming the layer), or the port differs above ``tol``
            (:class:`~lstm_bridge.models.port.PortMismatch`).
    """
    check_out_dir(out_dir, force, path)
    p = port_mindspore(path, seed)

    def fill(tmp: str) -> None:
        with open(os.path.join(tmp, MODEL_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.source)
        write_checkpoint(p, os.path.join(tmp, CKPT_FILE))
        verify(p, tmp, tol)
        p.report = render_report(p, tol)
        with open(os.path.join(tmp, REPORT_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.report)

    write_folder(out_dir, force, fill)
    return p
