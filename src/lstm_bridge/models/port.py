"""``lstm-bridge port``: a Keras full-model file as readable PyTorch source, its weights and a report.

:func:`port` loads the file with :func:`lstm_bridge.load_model`, generates ``model.py`` (one
``torch.nn.Module`` class; one attribute per Keras layer, named after it, built from the layer catalogue
:mod:`lstm_bridge.models.layers` with the layer's Keras config; a ``forward`` that runs the Keras graph call
by call, masks included), fills the generated module with the loaded weights (``state_dict``: torch-native
names and layouts, see :mod:`lstm_bridge.models`) and verifies it: the generated source is imported from the
written folder, ``load()`` reads the written ``weights.safetensors``, and every layer's output and the final
predictions are compared with :func:`~lstm_bridge.load_model`'s on a padded random batch (per-row lengths,
token ids 0 / all-zero steps after them). :func:`write_port` writes the three files into a temporary folder
beside ``OUT_DIR`` and moves it into place only when the check passed: ``OUT_DIR`` is never half-written.

The generated ``model.py`` imports only ``torch`` and ``lstm_bridge``; ``build()`` returns the module (eval
mode), ``load(path=None)`` the module with ``weights.safetensors`` (beside ``model.py`` unless ``path`` is
given) loaded through :func:`load_weights`.

Keras 3 saves the mask its ``Embedding(mask_zero=True)`` computes as a ``NotEqual`` op node of the graph; the
generated forward writes it as ``tokens != 0``. Other op nodes are refused (:class:`PortError`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import keyword
import math
import os
import re
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ["PortError", "PortMismatch", "Port", "port", "write_port", "load_weights", "padded_batch", "LayerDiff"]

#: a random batch of this many rows (row 0 full length, the others right-padded)
BATCH = 4
#: the time steps of an input whose time dimension the model leaves open
DEFAULT_STEPS = 7
#: the file names written into OUT_DIR
MODEL_FILE, WEIGHTS_FILE, REPORT_FILE = "model.py", "weights.safetensors", "PORT.md"
#: constructor arguments a catalogue layer takes for weight shapes that depend on its input
SHAPE_ARGS = ("in_features", "in_channels", "num_features", "normalized_shape")
_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
#: classes whose output can carry a mask when their input carries none
_MASK_SOURCES = ("Embedding", "Masking", "TimeDistributed")
#: config keys never written into the generated source (they do not change what the layer computes once its
#: weights are loaded, or they only describe how Keras built it)
_DROP = frozenset(
    {
        "name",
        "module",
        "registered_name",
        "build_config",
        "batch_input_shape",
        "batch_shape",
        "input_shape",
        "input_length",
        "batch_size",
        "seed",
        "autocast",
        "quantization_config",
        "input_dim_",
    }
)


class PortError(ValueError):
    """The model cannot be ported: says why."""


class PortMismatch(PortError):
    """The generated module does not reproduce :func:`load_model` within the tolerance (nothing written)."""


@dataclasses.dataclass
class LayerDiff:
    """One layer's outputs, generated module vs ``load_model``: max |difference| over its calls."""

    name: str
    keras_class: str
    calls: int
    max_abs_diff: float


@dataclasses.dataclass
class Port:
    """What :func:`port` produced: the source, the weights, the verification."""

    source: str
    state_dict: Dict[str, torch.Tensor]
    class_name: str
    keras_path: str
    keras_format: str
    keras_version: Optional[str]
    generation: int
    inputs: List[Tuple[str, Tuple[Optional[int], ...], str]]
    layers: List[LayerDiff]
    outputs_max_abs_diff: float
    lengths: List[List[int]]
    report: str = ""
    #: the reference side of the verification: the loaded model, the batch, attribute -> loaded module,
    #: id(loaded module) -> its recorded outputs per call
    reference: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


# ------------------------------------------------------------------------------------------------
# Runtime helper of the generated model.py


def load_weights(module: torch.nn.Module, path: Optional[str] = None, beside: Optional[str] = None) -> torch.nn.Module:
    """Load a ``weights.safetensors`` into ``module`` (strict: every name and shape must match) and return
    it in eval mode. ``path`` defaults to ``weights.safetensors`` in the folder of ``beside`` (the generated
    ``model.py`` passes its ``__file__``)."""
    if path is None:
        if beside is None:
            raise ValueError("load_weights: expected a path, or beside=<the model.py file>; received neither")
        path = os.path.join(os.path.dirname(os.path.abspath(beside)), WEIGHTS_FILE)
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError("weights.safetensors needs the safetensors package: pip install safetensors") from exc
    state = load_file(os.fspath(path))
    missing, unexpected = _strict_diff(module, state)
    if missing or unexpected:
        raise ValueError(
            f"{path}: expected the weights of {type(module).__name__} (missing {missing[:8]}, unexpected "
            f"{unexpected[:8]})"
        )
    module.load_state_dict(state, strict=True)
    return module.eval()


def _strict_diff(module: torch.nn.Module, state: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    own = set(module.state_dict())
    return sorted(own - set(state)), sorted(set(state) - own)


# ------------------------------------------------------------------------------------------------
# Source generation


def _lit(v: Any) -> str:
    """A Python literal for a JSON value (double-quoted strings, exact floats)."""
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return f'float("{v}")'
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_lit(x) for x in v)
        return (
            f"({inner},)"
            if isinstance(v, tuple) and len(v) == 1
            else (f"({inner})" if isinstance(v, tuple) else f"[{inner}]")
        )
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_lit(str(k))}: {_lit(x)}" for k, x in v.items()) + "}"
    raise PortError(f"cannot write the config value {v!r:.80} (a {type(v).__name__}) as Python source")


def _ident(name: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", str(name)) or "layer"
    if s[0].isdigit():
        s = "_" + s
    return s


def _class_name(model_name: str) -> str:
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", model_name) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "KerasModel"
    if name[0].isdigit():
        name = "Model" + name
    return name if name not in ("Module", "KerasModel", "torch") else name + "Port"


def _clean_config(cfg: Dict[str, Any], cls: str) -> Dict[str, Any]:
    """The config keys that decide what a layer computes (see :data:`_DROP`; initializers; regularizers and
    constraints that are None; defaults that say nothing: ``trainable=True``, ``sparse=False``, ...)."""
    out: Dict[str, Any] = {}
    for k, v in cfg.items():
        if k in _DROP or k.endswith("_initializer"):
            continue
        if k == "dtype" and cls != "InputLayer":
            continue
        if k == "dtype" and isinstance(v, dict):  # Keras 3 DTypePolicy
            v = (v.get("config") or {}).get("name", "float32")
        if (k.endswith(("_regularizer", "_constraint")) or k in ("activity_regularizer",)) and v is None:
            continue
        if (k, v) in (("trainable", True), ("sparse", False), ("ragged", False), ("optional", False)):
            continue
        if k in ("layer", "backward_layer") and isinstance(v, dict) and "class_name" in v:
            v = {"class_name": v["class_name"], "config": _clean_config(dict(v.get("config") or {}), v["class_name"])}
        out[k] = v
    return out


def _drop_defaults(cfg: Dict[str, Any], cls: str) -> Dict[str, Any]:
    """``cfg`` without the values that equal the catalogue class's own constructor defaults (the generated
    call then means the same), nested layer configs included."""
    klass = _catalogue().get(cls)
    try:
        params = inspect.signature(klass).parameters if klass is not None else {}
    except (TypeError, ValueError):  # pragma: no cover
        params = {}
    out: Dict[str, Any] = {}
    for k, v in cfg.items():
        if k in ("layer", "backward_layer") and isinstance(v, dict) and "class_name" in v:
            v = {"class_name": v["class_name"], "config": _drop_defaults(dict(v.get("config") or {}), v["class_name"])}
        p = params.get(k)
        default = p.default if p is not None else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and type(default) is type(v) and default == v:
            continue
        out[k] = v
    required = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k in out]
    return {**{k: out[k] for k in required}, **{k: v for k, v in out.items() if k not in required}}


def _shape_args(module: Any) -> Dict[str, Any]:
    """The input-dependent constructor arguments of a catalogue layer, read off the loaded module."""
    out: Dict[str, Any] = {}
    try:
        params = inspect.signature(type(module).__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return out
    for name in SHAPE_ARGS:
        if name in params and getattr(module, name, None) is not None:
            v = getattr(module, name)
            out[name] = list(v) if isinstance(v, (tuple, torch.Size)) else int(v) if isinstance(v, int) else v
    return out


def _recurrent_input_width(module: Any) -> Optional[int]:
    """The input width of a built recurrent front-end layer (Bidirectional: its forward layer's)."""
    layer = getattr(module, "forward_layer", None) or module
    kernel = getattr(getattr(layer, "cell", None), "kernel", None)
    return None if kernel is None else int(kernel.shape[0])


def _call_source(head: str, kwargs: List[Tuple[str, str]], indent: str) -> str:
    one = f"{head}(" + ", ".join(f"{k}={v}" for k, v in kwargs) + ")"
    if len(indent) + len(one) <= 116:
        return indent + one
    lines = [f"{indent}{head}("] + [f"{indent}    {k}={v}," for k, v in kwargs] + [f"{indent})"]
    return "\n".join(lines)


class _Gen:
    """Walks a loaded :class:`~lstm_bridge.models.graph.KerasModel` (nested models inlined) and writes the
    generated class: attributes in model order, then the forward call by call.

    Mask rules (those of ``KerasModel._run_call``, which the verification holds the source to): a call's mask
    is the ``mask`` its Keras 3 node records, else (Keras 3) None when the call has a second tensor argument
    or a tensor keyword (``initial_state``), else the mask that came with its first input; its output masks
    are ``compute_mask(input, mask of the first input)`` in Keras 3 and ``compute_mask(input, mask)`` in
    tf_keras."""

    def __init__(self, generation: int, outputs_seen: Dict[int, List[int]], mask_shapes: Dict[int, List[int]]):
        self.generation = generation
        self.outputs_seen = outputs_seen  # id(module) -> number of outputs per call, in call order
        self.mask_shapes = mask_shapes  # id(module) -> per call: -1 one mask, else the length of the list
        self.attrs: Dict[int, str] = {}  # id(module) -> attribute
        self.attr_modules: Dict[str, Any] = {}
        self.attr_names: set = set(dir(torch.nn.Module))
        self.init_lines: List[str] = []
        self.body: List[str] = []
        self.names: set = {"self", "torch", "layers", "port", "Optional", "build", "load"}
        self.calls_done: Dict[int, int] = {}
        self.top: Any = None  # the outermost model (its inputs keep the forward's parameter names)

    # --- names -----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A new local variable name."""
        name = _ident(base)
        while keyword.iskeyword(name) or name in self.names:
            name += "_"
        self.names.add(name)
        return name

    # --- attributes ------------------------------------------------------------------------------
    def attribute(self, module: Any, name: str, cls: str, entry: Optional[Dict[str, Any]]) -> str:
        if id(module) in self.attrs:
            return self.attrs[id(module)]
        attr = _ident(name)
        while keyword.iskeyword(attr) or attr in self.attr_names:
            attr += "_"
        self.attr_names.add(attr)
        self.attrs[id(module)] = attr
        self.attr_modules[attr] = module
        cfg = _clean_config(dict((entry or {}).get("config") or {}), cls)
        if cls == "InputLayer" and entry is None:
            cfg = {"dtype": getattr(module, "input_dtype", "float32")}
        if cls == "TimeDistributed" and isinstance(cfg.get("layer"), dict):
            inner = dict(cfg["layer"])
            inner["config"] = {**inner["config"], **_shape_args(module.layer)}
            cfg["layer"] = inner
        cfg.update(_shape_args(module))
        cfg = _drop_defaults(cfg, cls)
        kwargs = [(k, _lit(v)) for k, v in cfg.items()]
        kwargs.append(("name", _lit(name)))
        kwargs.append(("keras_version", str(self.generation)))
        self.init_lines.append(_call_source(f"self.{attr} = layers.{cls}", kwargs, " " * 8))
        if cls in _RECURRENT or cls == "Bidirectional":
            width = _recurrent_input_width(module)
            if width is not None:
                self.init_lines.append(f"        self.{attr}.build((None, None, {width}))")
        return attr

    # --- graph -----------------------------------------------------------------------------------
    def graph(self, model: Any, config: Dict[str, Any], inputs: List[Tuple[str, Any]]) -> List[Tuple[str, Any]]:
        """Emit ``model``'s calls; ``inputs`` are ``(variable, mask source or None)`` per model input;
        returns the same for its outputs."""
        entries = {str(e.get("name") or (e.get("config") or {}).get("name")): e for e in config.get("layers") or []}
        values: Dict[Tuple[str, int], List[Tuple[str, Any]]] = {}
        for ref, (var, m) in zip(model.inputs, inputs):
            module = model.module(ref.layer)
            attr = self.attribute(module, ref.layer, "InputLayer", entries.get(ref.layer))
            out = var if model is self.top else self.fresh(ref.layer)  # a nested model's input: a new name
            self.body.append(f"        {out} = self.{attr}({var})")
            values[(ref.layer, 0)] = [(out, m)]
        classes = {n: c for n, _, c in model.entries}
        for name, k in model.order:
            call = model._calls[name][k]
            values[(name, k)] = self.call(model, name, classes[name], call, values, entries.get(name))
        return [values[(r[0], r[1])][r[2]] for r in model.outputs]

    def call(self, model: Any, name: str, cls: str, call: Any, values: Dict, entry: Optional[Dict]) -> List:
        from .graph import KerasModel, KerasOp, TensorRef

        def var(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return values[(v[0], v[1])][v[2]][0]
            if isinstance(v, list):
                return [var(x) for x in v]
            return _Const(v)

        def msk(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return values[(v[0], v[1])][v[2]][1]
            if isinstance(v, list):
                ms = [msk(x) for x in v]
                return ms if any(m is not None for m in ms) else None
            return None

        module = model.module(name)
        kwargs = dict(call.kwargs)
        kwargs.pop("training", None)
        if isinstance(module, KerasOp):
            out = self.fresh(name)
            expr = _op_source(module, [_src(var(a)) for a in call.args], name)
            self.body.append(f"        {out} = {expr}")
            return [(out, None)]
        x = var(call.args[0])
        previous = msk(call.args[0])
        if "mask" in kwargs:
            recorded = kwargs.pop("mask")
            mask = previous if recorded is None else var(recorded)
        elif self.generation >= 3 and (len(call.args) > 1 or _has_ref(kwargs, TensorRef)):
            mask = None  # Keras 3 fills the mask in only when the call has one tensor argument
        else:
            mask = previous
        if isinstance(module, KerasModel):
            xs = x if isinstance(x, list) else [x]
            ms = mask if isinstance(mask, list) else [mask] * len(xs)
            self.body.append(f"        # nested model {name!r}")
            return self.graph(module, dict((entry or {}).get("config") or {}), list(zip(xs, ms)))
        if cls not in _catalogue():
            raise PortError(f"layer {name!r} of class {cls!r}: no catalogue layer to write it with")
        attr = self.attribute(module, name, cls, entry)
        k = self.calls_done.get(id(module), 0)
        self.calls_done[id(module)] = k + 1
        seen = self.outputs_seen.get(id(module), [])
        n_out = seen[k] if k < len(seen) else 1
        initial_state = kwargs.pop("initial_state", None)
        if kwargs or len(call.args) > 1:
            raise PortError(
                f"layer {name!r} is called with {len(call.args)} positional arguments and keywords {sorted(kwargs)}; "
                "expected one input, mask and initial_state"
            )
        recurrent = cls in _RECURRENT or cls == "Bidirectional"
        args = [_src(x)] if (recurrent or not isinstance(x, list)) else [_src(v) for v in x]
        if mask is not None:
            args.append(f"mask={_src(mask)}")
        if initial_state is not None:
            args.append(f"initial_state={_src(var(initial_state))}")
        base = name if len(seen) <= 1 else f"{name}_{k}"
        outs = [self.fresh(base if i == 0 else f"{base}_{i}") for i in range(n_out)]
        self.body.append(_assign(outs, f"self.{attr}", args))
        out_in = previous if self.generation >= 3 else mask
        if out_in is None and cls not in _MASK_SOURCES:
            return [(o, None) for o in outs]
        # compute_mask gives one mask (the first output's) or a list that Keras zips with the outputs: outputs
        # past its end carry none (the reference run recorded which, per call)
        shapes = self.mask_shapes.get(id(module), [])
        given = shapes[k] if k < len(shapes) else -1
        n_masks = 1 if given < 0 else given
        mask_vars: List[Any] = [self.fresh(f"{o}_mask") for o in outs[:n_masks]]
        targets = list(mask_vars) + ["_"] * max(0, n_masks - len(outs))
        if given == 1:
            targets = [f"({targets[0]},)"]
        in_mask = "None" if out_in is None else _src(out_in)
        if n_masks:
            self.body.append(_assign(targets, f"self.{attr}.compute_mask", [_src(x), in_mask]))
        mask_vars += [None] * (len(outs) - len(mask_vars))
        return list(zip(outs, mask_vars))


def _assign(targets: List[str], callee: str, args: List[str]) -> str:
    """``a, b = callee(args)`` in the forward, one argument per line when it would be long."""
    one = f"        {', '.join(targets)} = {callee}({', '.join(args)})"
    if len(one) <= 116:
        return one
    return "\n".join(
        [f"        {', '.join(targets)} = {callee}("] + [f"            {a}," for a in args] + ["        )"]
    )


class _Const:
    """A constant argument of a call (written as a literal)."""

    def __init__(self, value: Any):
        self.value = value


def _src(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_src(x) for x in v) + "]"
    if isinstance(v, _Const):
        return _lit(v.value)
    return str(v)


def _has_ref(v: Any, ref_type: Any) -> bool:
    if isinstance(v, ref_type):
        return True
    if isinstance(v, (list, tuple)) and not isinstance(v, ref_type):
        return any(_has_ref(x, ref_type) for x in v)
    if isinstance(v, dict):
        return any(_has_ref(x, ref_type) for x in v.values())
    return False


def _torch_dtype(name: Any) -> str:
    from .graph import _bool_dtype

    return str(_bool_dtype(name))


def _op_source(module: Any, args: List[str], name: str) -> str:
    """One line of torch for a Keras 3 op node (what ``KerasOp.forward`` computes)."""
    op, c = module.op, module.config
    a = args[0] if args else ""
    if op in ("NotEqual", "Equal"):
        b = args[1] if len(args) > 1 else "0"
        return f"{a} {'!=' if op == 'NotEqual' else '=='} {b}  # a mask Keras 3 saved as an op node"
    if op in ("Any", "All"):
        fn = "torch.any" if op == "Any" else "torch.all"
        axis, keep = c.get("axis"), bool(c.get("keepdims", False))
        if axis is None:
            if keep:
                return f"{fn}({a}.bool()).reshape([1] * {a}.dim())"
            return f"{fn}({a}.bool())"
        expr = f"{a}.bool()"
        axes = axis if isinstance(axis, list) else [axis]
        if len(axes) > 1 and any(int(x) < 0 for x in axes):
            raise PortError(f"op {name!r}: {op} over several negative axes {axes} is not written")
        for ax in sorted((int(x) for x in axes), reverse=True):
            expr = f"{fn}({expr}, dim={ax}{', keepdim=True' if keep else ''})"
        return expr
    if op == "LogicalOr":
        return f"torch.logical_or({a}, {args[1]})"
    if op == "LogicalAnd":
        return f"torch.logical_and({a}, {args[1]})"
    if op == "LogicalNot":
        return f"torch.logical_not({a})"
    if op == "ExpandDims":
        return f"{a}.unsqueeze({int(c.get('axis', -1))})"
    if op == "Squeeze":
        return f"{a}.squeeze()" if c.get("axis") is None else f"{a}.squeeze({int(c['axis'])})"
    if op in ("ZerosLike", "OnesLike"):
        fn = "torch.zeros" if op == "ZerosLike" else "torch.ones"
        dtype = _torch_dtype(c.get("dtype")) if c.get("dtype") is not None else f"{a}.dtype"
        return f"{fn}({a}.shape, dtype={dtype})"
    if op == "Cast":
        return f"{a}.to({_torch_dtype(c.get('dtype'))})"
    if op == "Concatenate":
        return f"torch.cat({a}, dim={int(c.get('axis', 0))})"
    raise PortError(f"op node {name!r} ({op}): no source to write it with")


def _catalogue() -> Dict[str, Any]:
    from .layers import CATALOGUE

    return CATALOGUE


def _entry_config(model_config: Dict[str, Any]) -> Dict[str, Any]:
    return dict(model_config.get("config") or {})


def generate_source(
    model: Any,
    model_config: Dict[str, Any],
    generation: int,
    header: str,
    outputs_seen: Dict[int, List[int]],
    mask_shapes: Dict[int, List[int]],
) -> Tuple[str, str, Dict[str, Any]]:
    """``(source, class name, {attribute: loaded module})`` of the generated ``model.py``; ``outputs_seen`` and
    ``mask_shapes`` (per module, per call: the number of outputs, and -1 for one mask or the length of the
    mask list ``compute_mask`` gave) come from running the loaded model once."""
    gen = _Gen(generation, outputs_seen, mask_shapes)
    gen.top = model
    inputs = [(gen.fresh(ref.layer), None) for ref in model.inputs]
    params = [v for v, _ in inputs]
    outs = gen.graph(model, _entry_config(model_config), inputs)
    for attr, m in gen.attr_modules.items():  # layers Keras does not train (trainable=False, or in such a model)
        ps = list(m.parameters())
        if ps and not any(p.requires_grad for p in ps):
            gen.init_lines.append(f"        self.{attr}.requires_grad_(False)  # not trainable in Keras")
    # the mask lines whose variables are never read again are noise: drop them
    body = _drop_unused_masks(gen.body, [v for v, _ in outs])
    ret = outs[0][0] if model.single_output else "[" + ", ".join(v for v, _ in outs) + "]"
    cls = _class_name(model.name)
    sig = ", ".join(["self"] + [f"{p}: torch.Tensor" for p in params])
    keras_style: List[str] = []
    if len(params) > 1:  # model([a, b]) as in Keras, besides model(a, b)
        sig = ", ".join(["self", f"{params[0]}: Any"] + [f"{p}: Optional[torch.Tensor] = None" for p in params[1:]])
        keras_style = [
            f"        if isinstance({params[0]}, (list, tuple)):  # Keras style: model([{', '.join(params)}])",
            f"            {', '.join(params)} = {params[0]}",
        ]
    lines = [
        f'"""{header}"""',
        "",
        "from typing import Any, Optional" if len(params) > 1 else "from typing import Optional",
        "",
        "import torch",
        "",
        "from lstm_bridge.models import layers, port",
        "",
        "",
        f"class {cls}(torch.nn.Module):",
        f'    """Keras model {model.name!r}: one attribute per Keras layer; ``forward({", ".join(params)})`` returns',
        "    what Keras's ``model.predict`` returns; Dropout-family layers act as in Keras training after",
        '    ``train()``."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *gen.init_lines,
        "",
        f"    def forward({sig}):",
        *keras_style,
        *body,
        f"        return {ret}",
        "",
        "",
        f"def build() -> {cls}:",
        f'    """A new {cls} in eval mode (weights not loaded: see ``load``)."""',
        f"    return {cls}().eval()",
        "",
        "",
        f"def load(path: Optional[str] = None) -> {cls}:",
        '    """``build()`` with the weights of ``path`` (default: weights.safetensors beside this file)."""',
        "    return port.load_weights(build(), path, beside=__file__)",
        "",
    ]
    return "\n".join(lines), cls, dict(gen.attr_modules)


def _blank_unused(lhs: str, used: set) -> str:
    """``lhs`` with every name not in ``used`` written ``_``."""

    def blank(m: re.Match[str]) -> str:
        return m.group(0) if m.group(0) in used else "_"

    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", blank, lhs)


def _drop_unused_masks(body: List[str], returned: List[str]) -> List[str]:
    """Drop ``compute_mask`` lines whose masks are never read again; write ``_`` for the unread ones of
    several."""
    out = list(body)
    changed = True
    while changed:
        changed = False
        for i, line in enumerate(out):
            if ".compute_mask(" not in line:
                continue
            lhs, rhs = line.split(" = ", 1)
            targets = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", lhs)
            later = "\n".join(out[i + 1 :])
            used = {t for t in targets if t != "_" and re.search(rf"\b{re.escape(t)}\b", later)}
            if not used:
                out.pop(i)
                changed = True
                break
            if any(t != "_" and t not in used for t in targets):
                new_lhs = _blank_unused(lhs, used)
                out[i] = f"{new_lhs} = {rhs}"
                changed = True
    return out


# ------------------------------------------------------------------------------------------------
# The padded batch, recording, comparing


def _input_specs(
    model: Any, model_config: Dict[str, Any]
) -> List[Tuple[str, Tuple[Optional[int], ...], str, Optional[int]]]:
    """``(name, shape with None for open dims, dtype, vocabulary or None)`` per model input."""
    from .layers.embedding import Embedding

    specs = []
    for ref in model.inputs:
        module = model.module(ref.layer)
        entry = _find_entry(model_config, ref.layer) or {}
        cfg = entry.get("config") or {}
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        dtype = str(getattr(module, "input_dtype", "float32"))
        vocab = None
        for name, k in model.order:
            call = model._calls[name][k]
            if any(r[0] == ref.layer for r in _refs(call.args[:1])):
                m = model.module(name)
                dim = int(getattr(m, "input_dim", 0) or 0) if isinstance(m, Embedding) else 0
                if dim:
                    vocab = dim if vocab is None else min(vocab, dim)
        if shape is None:  # a Sequential without InputLayer: take the first layer's recorded input shape
            first = (model_config.get("config") or {}).get("layers") or [{}]
            c0 = first[0].get("config") or {}
            shape = c0.get("batch_input_shape") or c0.get("batch_shape") or [None, None]
            if "int" in dtype and len(shape) > 2:
                shape = shape[:2]
        specs.append((ref.layer, tuple(None if d is None else int(d) for d in shape), dtype, vocab))
    return specs


def _find_entry(model_config: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    for e in (model_config.get("config") or {}).get("layers") or []:
        if (e.get("name") or (e.get("config") or {}).get("name")) == name:
            return e
    return None


def _refs(v: Any) -> List[Any]:
    """The TensorRefs in a call's (nested) arguments."""
    from .graph import TensorRef

    if isinstance(v, TensorRef):
        return [v]
    if isinstance(v, (list, tuple)):
        return [r for x in v for r in _refs(x)]
    return []


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    dims = ["batch" if i == 0 and d is None else ("time" if d is None else str(d)) for i, d in enumerate(shape)]
    return "(" + ", ".join(dims) + ")"


def _flat(v: Any) -> List[Any]:
    if isinstance(v, (list, tuple)):
        return [y for x in v for y in _flat(x)]
    return [v]


def padded_batch(
    specs: Sequence[Tuple[str, Tuple[Optional[int], ...], str, Optional[int]]], seed: int = 0
) -> Tuple[List[torch.Tensor], List[List[int]]]:
    """A random batch per input: ``BATCH`` rows, row 0 full, the others right-padded to a drawn length
    (token ids in ``[1, vocab)`` then 0 for an input an Embedding reads, in the input's dtype; float steps
    then all zeros). Returns ``(inputs, lengths)``."""
    g = torch.Generator().manual_seed(seed)
    xs, all_lengths = [], []
    for _, shape, dtype, vocab in specs:
        dims = [BATCH] + [DEFAULT_STEPS if d is None else d for d in shape[1:]]
        steps = dims[1] if len(dims) > 1 else 1
        lengths = [steps] + [int(torch.randint(1, max(steps, 2), (1,), generator=g)) for _ in range(BATCH - 1)]
        if "int" in dtype or vocab is not None:  # token ids (an Embedding reads a float input as ids too)
            x = torch.randint(1, max(int(vocab or 10), 2), dims, generator=g)
            x = x.to(torch.int32 if dtype == "int32" else torch.int64 if "int" in dtype else torch.float32)
        else:
            x = torch.randn(dims, generator=g)
        if len(dims) > 1:
            for b, n in enumerate(lengths):
                x[b, n:] = 0
        xs.append(x)
        all_lengths.append(lengths)
    return xs, all_lengths


def _record(modules: Dict[str, Any]) -> Tuple[Dict[str, List[List[torch.Tensor]]], List[Any]]:
    """Forward hooks that record every call's outputs (flattened) per attribute name."""
    seen: Dict[str, List[List[torch.Tensor]]] = {n: [] for n in modules}
    handles = []
    for n, m in modules.items():

        def hook(_m: Any, _inp: Any, out: Any, n: str = n) -> None:
            seen[n].append([t.detach().clone() for t in _flat(out) if isinstance(t, torch.Tensor)])

        handles.append(m.register_forward_hook(hook))
    return seen, handles


def _recording(fn: Any, shapes: List[int]) -> Any:
    """``fn`` (a bound ``compute_mask``) that also appends -1 (one mask) or the length of its list to ``shapes``."""

    def compute_mask(inputs: Any, mask: Any = None) -> Any:
        result = fn(inputs, mask)
        shapes.append(len(result) if isinstance(result, (list, tuple)) else -1)
        return result

    return compute_mask


def _max_diff(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        if tuple(x.shape) != tuple(y.shape):
            return float("inf")
        if x.numel():
            d = (x.double() - y.double()).abs()
            d = torch.where(torch.isnan(x.double()) & torch.isnan(y.double()), torch.zeros_like(d), d)
            worst = max(worst, float(d.max()))
    return worst


def _all_modules(model: Any) -> List[Tuple[str, Any, str]]:
    """``(keras name, module, class)`` of every layer, nested models' included (not the models)."""
    from .graph import KerasModel

    out = []
    for name, key, cls in model.entries:
        m = model.modules_by_name[key]
        if isinstance(m, KerasModel):
            out += _all_modules(m)
        elif isinstance(m, torch.nn.Module) and cls not in ("NotEqual",):
            out.append((name, m, cls))
    return out


def _import_source(path: str, tag: str) -> Any:
    name = f"lstm_bridge_port_{tag}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise PortError(f"cannot import the generated {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


# ------------------------------------------------------------------------------------------------
# port / write_port


def port(path: str, seed: int = 0) -> Port:
    """Generate the port of the Keras file ``path`` in memory (source and state dict) and the reference
    outputs; :func:`write_port` writes and verifies it."""
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
    mods = {f"{name}#{id(m)}": m for name, m, _ in _all_modules(model)}
    seen, handles = _record(mods)
    mask_shapes: Dict[int, List[int]] = {id(m): [] for m in mods.values()}
    masked = [m for m in mods.values() if hasattr(m, "compute_mask")]  # not the Keras 3 op nodes
    for m in masked:
        m.compute_mask = _recording(m.compute_mask, mask_shapes[id(m)])
    try:
        with torch.no_grad():
            model(*xs)
    finally:
        for h in handles:
            h.remove()
        for m in masked:
            del m.compute_mask  # the instance attribute: the class's method again
    outputs_seen = {id(m): [len(o) for o in seen[k]] for k, m in mods.items()}
    maker = f"Keras {version}" if version else ("Keras 3" if generation == 3 else "Keras 2 / tf_keras")
    kind = ".keras archive" if fmt == "keras" else "legacy .h5"
    shapes = ", ".join(f"{n} {_shape_text(s)} {dt}" for n, s, dt, _ in specs)
    header = (
        f"PyTorch port of the Keras model {os.path.basename(path)} ({maker}, {kind}),\n"
        f"written by `lstm-bridge port` (lstm-bridge {__version__}).\n\n"
        f"Inputs: {shapes}.\n"
        "build() returns the module; load(path=None) the module with weights.safetensors (beside this file) loaded.\n"
    )
    source, cls, attr_modules = generate_source(model, model_config, generation, header, outputs_seen, mask_shapes)
    ns: Dict[str, Any] = {"__file__": "<generated>"}
    try:
        exec(compile(source, "<generated model.py>", "exec"), ns)  # noqa: S102 - our own generated source
        built = ns["build"]()
    except Exception as exc:
        raise PortError(f"the generated model.py does not build: {type(exc).__name__}: {exc}") from exc
    for attr, m in attr_modules.items():
        target = getattr(built, attr)
        missing, unexpected = _strict_diff(target, m.state_dict())
        if missing or unexpected:
            raise PortError(
                f"layer {attr!r}: the generated module's weights {sorted(target.state_dict())} do not match the loaded "
                f"layer's {sorted(m.state_dict())}"
            )
        target.load_state_dict(m.state_dict(), strict=True)
        mine = [p.requires_grad for p in target.parameters()]
        theirs = [p.requires_grad for p in m.parameters()]
        if mine != theirs:
            raise PortError(f"layer {attr!r}: trainable parameters {mine} differ from load_model's {theirs}")
    state = {k: v.detach().contiguous().clone() for k, v in built.state_dict().items()}
    ref_layers = {}
    for k, m in mods.items():
        ref_layers[id(m)] = seen[k]
    return Port(
        source=source,
        state_dict=state,
        class_name=cls,
        keras_path=os.path.abspath(path),
        keras_format=fmt,
        keras_version=version,
        generation=generation,
        inputs=[(n, s, dt) for n, s, dt, _ in specs],
        layers=[],
        outputs_max_abs_diff=float("nan"),
        lengths=lengths,
        reference={"model": model, "inputs": xs, "modules": attr_modules, "outputs": ref_layers},
    )


def verify(p: Port, folder: str, tol: float) -> None:
    """Import ``folder/model.py``, ``load()`` its weights, compare with ``load_model`` layer by layer and on
    the final predictions; fills ``p.layers`` and ``p.outputs_max_abs_diff``; PortError above ``tol``."""
    mod = _import_source(os.path.join(folder, MODEL_FILE), os.path.basename(folder).replace(".", "_").replace("-", "_"))
    loaded = mod.load(os.path.join(folder, WEIGHTS_FILE))
    ref = p.reference
    attr_modules: Dict[str, Any] = ref["modules"]
    gen_mods = {a: getattr(loaded, a) for a in attr_modules}
    seen, handles = _record(gen_mods)
    try:
        with torch.no_grad():
            got = loaded(*ref["inputs"])
            want = ref["model"](*ref["inputs"])
    finally:
        for h in handles:
            h.remove()
    diffs = []
    for attr, m in attr_modules.items():
        theirs = ref["outputs"].get(id(m), [])
        mine = seen[attr]
        worst = (
            float("inf") if len(theirs) != len(mine) else max([_max_diff(a, b) for a, b in zip(mine, theirs)] or [0.0])
        )
        diffs.append(LayerDiff(attr, type(m).__name__, len(mine), worst))
    p.layers = diffs
    p.outputs_max_abs_diff = _max_diff(_flat(got), _flat(want))
    bad = [d for d in diffs if not d.max_abs_diff <= tol]
    if bad or not p.outputs_max_abs_diff <= tol:
        what = ", ".join(f"{d.name} {d.max_abs_diff:.3g}" for d in bad) or "final outputs"
        raise PortMismatch(
            f"the generated module differs from lstm_bridge.load_model above --tol {tol:g}: {what} "
            f"(final outputs {p.outputs_max_abs_diff:.3g})"
        )


def render_report(p: Port, tol: float) -> str:
    """PORT.md."""
    from .. import __version__

    gen = "Keras 3" if p.generation == 3 else "tf_keras / Keras 2"
    fmt = ".keras archive" if p.keras_format == "keras" else "legacy .h5"
    lines = [
        f"# Port of `{os.path.basename(p.keras_path)}`",
        "",
        f"- Source: `{p.keras_path}` ({fmt})",
        f"- Keras generation: {gen} (file written by Keras {p.keras_version or 'unknown'}); the generated layers "
        f"use `keras_version={p.generation}`, i.e. this generation's numerics (hard_sigmoid, gelu, ...)",
        f"- Written by lstm-bridge {__version__} (`lstm-bridge port`), torch {torch.__version__}",
        f"- Files: `{MODEL_FILE}` (class `{p.class_name}`; `build()`, `load(path=None)`), `{WEIGHTS_FILE}` "
        f"({len(p.state_dict)} tensors, torch-native names and layouts), `{REPORT_FILE}`",
        "",
        "## Verification",
        "",
        f"The generated module (imported from `{MODEL_FILE}`, weights read back from `{WEIGHTS_FILE}`) against "
        f"`lstm_bridge.load_model` on one padded random batch of {BATCH} rows "
        + "; ".join(f"input `{n}` {_shape_text(s)} {dt}, lengths {ls}" for (n, s, dt), ls in zip(p.inputs, p.lengths))
        + " (token ids 0 / all-zero steps after each row's length). Tolerance "
        f"{tol:g}.",
        "",
        f"Final predictions: max |difference| **{p.outputs_max_abs_diff:.3g}**.",
        "",
        "| layer (attribute) | class | calls | max abs difference of its outputs |",
        "|---|---|---|---|",
    ]
    for d in p.layers:
        lines.append(f"| `{d.name}` | {d.keras_class} | {d.calls} | {d.max_abs_diff:.3g} |")
    lines += [
        "",
        "`lstm_bridge.load_model` itself is checked against the real Keras on golden models in lstm-bridge's test "
        "suite (tests/test_models_golden.py); this report compares the port with it.",
        "",
        "## Not carried",
        "",
        "- the training configuration (`compile()`: optimizer and its state, loss, metrics) - a Keras file's "
        "`training_config` / optimizer weights are not read; choose a torch optimizer and loss",
        "- initializers (the weights are loaded; a layer re-initialised in PyTorch uses torch's defaults)",
        "- the dtype policy (everything runs in float32); Keras's `name_scope`s and build shapes",
        "",
    ]
    return "\n".join(lines)


def _save_safetensors(state: Dict[str, torch.Tensor], path: str, meta: Dict[str, str]) -> None:
    """Write ``state`` as safetensors with ordinary permissions (``0666`` minus the umask)."""
    try:
        from safetensors.torch import save
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError("weights.safetensors needs the safetensors package: pip install safetensors") from exc
    data = save({k: v.contiguous() for k, v in state.items()}, metadata=meta)
    with open(path, "wb") as fh:
        fh.write(data)


def check_out_dir(out_dir: str, force: bool, source: Optional[str] = None) -> None:
    """Refuse an ``out_dir`` that is a file, a non-empty folder without ``force``, or (even with ``force``) a
    folder that holds the ``source`` file or the current directory: replacing it would delete them.

    Raises:
        NotADirectoryError: ``out_dir`` is a file.
        FileExistsError: ``out_dir`` is a non-empty folder and ``force`` is False, or holds ``source`` / the
            current directory.
        FileNotFoundError: the parent folder of ``out_dir`` does not exist.
    """
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir}: exists and is not a directory; expected a folder to write into")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not force:
            raise FileExistsError(f"{out_dir}: exists and is not empty; pass --force to replace it")
        real = os.path.realpath(out_dir)
        for what, inside in (("the input file", source), ("the current directory", os.getcwd())):
            if inside and (os.path.realpath(inside) + os.sep).startswith(real + os.sep):
                raise FileExistsError(
                    f"{out_dir}: holds {what}; --force would delete it - write the port to another folder"
                )
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{out_dir}: directory {parent!r} does not exist")


def write_port(path: str, out_dir: str, force: bool = False, tol: float = 1e-5, seed: int = 0) -> Port:
    """Port ``path`` into ``out_dir`` (``model.py``, ``weights.safetensors``, ``PORT.md``), verified, atomically.

    The files are written into a fresh hidden folder beside ``out_dir``, verified there (the source imported,
    the weights read back, every layer compared with ``load_model``), and only then moved into place: a new or
    empty ``out_dir`` by one ``rename``; an existing one (``force``) is first moved aside and removed after.
    Any failure or interruption removes the temporary folder and leaves ``out_dir`` as it was.

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder and ``force`` is False.
        PortError: the model cannot be ported or the port does not reproduce ``load_model`` within ``tol``.
    """
    from ..formats import atomic

    check_out_dir(out_dir, force, path)
    p = port(path, seed)
    base = os.path.abspath(out_dir).rstrip(os.sep)
    tmp = None
    try:
        with atomic.signals_deferred():
            tmp = atomic.temp_name(base, suffix="", tag="lstm-bridge-port-")
            os.mkdir(tmp)
        with open(os.path.join(tmp, MODEL_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.source)
        _save_safetensors(
            p.state_dict,
            os.path.join(tmp, WEIGHTS_FILE),
            {"source": os.path.basename(path), "keras_version": str(p.keras_version), "class": p.class_name},
        )
        verify(p, tmp, tol)
        p.report = render_report(p, tol)
        with open(os.path.join(tmp, REPORT_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.report)
        pycache = os.path.join(tmp, "__pycache__")
        if os.path.isdir(pycache):
            shutil.rmtree(pycache, ignore_errors=True)
        _move_into_place(tmp, base, force)
        tmp = None
    finally:
        if tmp is not None:
            with atomic.signals_deferred():
                shutil.rmtree(tmp, ignore_errors=True)
    return p


def _move_into_place(tmp: str, out_dir: str, force: bool) -> None:
    from ..formats import atomic

    with atomic.signals_deferred():
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            if not force:
                raise FileExistsError(f"{out_dir}: exists and is not empty; pass --force to replace it")
            old = atomic.temp_name(out_dir, suffix="", tag="lstm-bridge-old-")
            os.rename(out_dir, old)
            try:
                os.rename(tmp, out_dir)
            except OSError:
                os.rename(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return
        try:
            os.rename(tmp, out_dir)  # a missing or empty out_dir: one step
        except OSError:
            if os.path.isdir(out_dir) and not os.listdir(out_dir):
                os.rmdir(out_dir)
                os.rename(tmp, out_dir)
            else:
                raise
