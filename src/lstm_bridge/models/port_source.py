"""The source of a ported ``model.py`` (``lstm-bridge port``, :mod:`lstm_bridge.models.port`).

:func:`generate_source` walks a model loaded by :func:`lstm_bridge.load_model` (a
:class:`~lstm_bridge.models.graph.KerasModel`) and writes one ``torch.nn.Module`` class: an attribute per Keras
layer, named after it (made a safe, distinct Python name), built from :mod:`lstm_bridge.models.layers` with the
layer's Keras config (values equal to the class's defaults, initializers and build shapes left out; the
input-dependent sizes such as ``in_features`` added), and a ``forward`` that runs the Keras graph call by call:
shared layers are one attribute called again, nested models are inlined, masks follow Keras's rules (those of
``KerasModel._run_call``), and the mask op nodes a Keras 3 graph saves (``NotEqual``, ``Any``, ``LogicalOr``,
``ExpandDims``, ...) become one line of torch each. Mask lines whose result is never read are left out.
"""

from __future__ import annotations

import inspect
import json
import keyword
import math
import re
from typing import Any, Dict, List, Optional, Tuple

import torch

__all__ = ["PortError", "PortMismatch", "generate_source", "SHAPE_ARGS"]

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
    }
)


class PortError(ValueError):
    """The model cannot be ported: says why."""


class PortMismatch(PortError):
    """The generated module does not reproduce :func:`load_model` within the tolerance (nothing written)."""


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
        # taken: the Module's names, instance attributes included ('training', '_modules', ...)
        self.attr_names: set = set(dir(torch.nn.Module)) | set(vars(torch.nn.Module()))
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
