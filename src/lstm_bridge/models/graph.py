"""A Keras model config as a graph of layer calls, run on torch: :class:`KerasModel`.

Sequential models are a chain; functional models (``Functional`` / ``Model``) a graph of *calls*: each
layer entry lists its calls (``inbound_nodes``), each naming its input tensors as ``(layer, call,
output index)``. A layer called several times (a shared layer) is one module run once per call; a nested
model is a :class:`KerasModel` run as a layer. Calls run in an order computed once (inputs first).

Two config dialects: tf_keras's ``[[name, node, index, kwargs], ...]`` per call (several entries: the
layer takes a list), and Keras 3's ``{"args": [...], "kwargs": {...}}`` with ``__keras_tensor__`` entries.
Node numbers of a nested functional model count its own first node in tf_keras (``node - 1`` is the call);
Keras 3 counts it in ``output_layers`` only (a nested ``Functional``, not a ``Sequential``).

Masks: every call's output masks come from the layer's ``compute_mask`` on the mask it received: the
``mask`` a Keras 3 file records for the call (the ``NotEqual`` op its Embedding(mask_zero) left in the
graph computes it), else the masks propagated with its input tensors. ``training`` recorded in a file is
ignored: the module's ``train()`` / ``eval()`` mode decides, as ``model(x, training=...)`` does in Keras.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from .layers import UnsupportedLayerError, layer_from_config
from .layers.base import WeightSlot
from .layers.catalogue import check_builtin
from .layers.core import InputLayer

__all__ = ["KerasModel", "TensorRef", "model_from_config", "MODEL_CLASSES"]

MODEL_CLASSES = ("Functional", "Model", "Sequential")


class TensorRef(NamedTuple):
    """Output ``output`` of call ``call`` of layer ``layer``."""

    layer: str
    call: int
    output: int


class Call(NamedTuple):
    layer: str
    args: Any  # nested lists of TensorRef and constants; args[0] is the layer's input
    kwargs: Dict[str, Any]


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name) or "_"


def model_from_config(entry: Dict[str, Any], keras_version: int, where: str = "model") -> KerasModel:
    """A :class:`KerasModel` from a model entry ``{"class_name": "Functional" | "Sequential", "config"}``."""
    cls = str(entry.get("class_name", ""))
    if cls not in MODEL_CLASSES:
        raise UnsupportedLayerError(f"{where}: expected a Functional or Sequential model; received class {cls!r}")
    return KerasModel(entry.get("config") or {}, keras_version, cls, where)


def _bool_dtype(name: Any) -> torch.dtype:
    table = {
        "bool": torch.bool,
        "float32": torch.float32,
        "float64": torch.float64,
        "int32": torch.int32,
        "int64": torch.int64,
    }
    if name is None:
        return torch.float32
    if str(name) not in table:
        raise UnsupportedLayerError(f"Keras op dtype {name!r} is not supported; expected one of {sorted(table)}")
    return table[str(name)]


class KerasOp(torch.nn.Module):
    """A Keras 3 functional op node (``keras.src.ops``) that a layer's mask computation leaves in a saved
    graph: ``NotEqual``, ``Equal``, ``Any``, ``All``, ``LogicalOr``, ``LogicalAnd``, ``LogicalNot``,
    ``ExpandDims``, ``Squeeze``, ``ZerosLike``, ``OnesLike``, ``Cast``, ``Concatenate``. Other ops are
    refused (they are user code)."""

    OPS = (
        "NotEqual",
        "Equal",
        "Any",
        "All",
        "LogicalOr",
        "LogicalAnd",
        "LogicalNot",
        "ExpandDims",
        "Squeeze",
        "ZerosLike",
        "OnesLike",
        "Cast",
        "Concatenate",
    )

    def __init__(self, op: str, config: Dict[str, Any]):
        super().__init__()
        self.op = op
        self.config = {k: v for k, v in config.items() if k != "name"}
        self.name = str(config.get("name", op))

    def forward(self, *args: Any) -> torch.Tensor:
        op, c = self.op, self.config
        a = args[0]
        if op in ("NotEqual", "Equal"):
            b = args[1] if len(args) > 1 else 0
            return (a != b) if op == "NotEqual" else (a == b)
        if op in ("Any", "All"):
            axis = c.get("axis")
            keep = bool(c.get("keepdims", False))
            t = a.bool()
            if axis is None:
                r = torch.any(t) if op == "Any" else torch.all(t)
                return r.reshape([1] * t.dim()) if keep else r
            axes = sorted((int(x) % t.dim() for x in (axis if isinstance(axis, list) else [axis])), reverse=True)
            for ax in axes:
                t = torch.any(t, dim=ax, keepdim=keep) if op == "Any" else torch.all(t, dim=ax, keepdim=keep)
            return t
        if op in ("LogicalOr", "LogicalAnd"):
            return torch.logical_or(a, args[1]) if op == "LogicalOr" else torch.logical_and(a, args[1])
        if op == "LogicalNot":
            return torch.logical_not(a)
        if op == "ExpandDims":
            axis = c.get("axis", -1)
            return a.unsqueeze(int(axis) if int(axis) >= 0 else a.dim() + 1 + int(axis))
        if op == "Squeeze":
            axis = c.get("axis")
            return a.squeeze() if axis is None else a.squeeze(int(axis))
        if op in ("ZerosLike", "OnesLike"):
            dtype = _bool_dtype(c.get("dtype")) if c.get("dtype") is not None else a.dtype
            make = torch.zeros if op == "ZerosLike" else torch.ones
            return make(a.shape, dtype=dtype, device=a.device)
        if op == "Cast":
            return a.to(_bool_dtype(c.get("dtype")))
        if op == "Concatenate":
            return torch.cat(list(a), dim=int(c.get("axis", 0)))
        raise UnsupportedLayerError(f"Keras op {op!r} is not supported")


def _is_op(entry: Dict[str, Any]) -> bool:
    """A Keras 3 op node: ``module`` ``keras.src.ops...``; in a Keras 3 ``.h5`` (no module key) a known op
    class whose config has no ``trainable`` key (layers always have one)."""
    cls = str(entry.get("class_name", ""))
    module = entry.get("module")
    if isinstance(module, str):
        return module.startswith("keras.src.ops")
    cfg = entry.get("config")
    return cls in KerasOp.OPS and isinstance(cfg, dict) and "trainable" not in cfg


class KerasModel(torch.nn.Module):
    """A Keras Sequential or functional model. ``forward(*inputs)`` takes the inputs in the model's order
    and returns one tensor, or a list for several outputs; :meth:`run` also takes and returns masks."""

    def __init__(self, config: Dict[str, Any], keras_version: int, class_name: str = "Functional", where: str = ""):
        super().__init__()
        if not isinstance(config, dict):
            raise ValueError(f"{where or 'model'}: the model config must be a JSON object")
        self.keras_version = int(keras_version)
        self.name = str(config.get("name") or class_name.lower())
        self.class_name = class_name
        self.where = f"{where} > {self.name}" if where else f"model {self.name!r}"
        self.keras_trainable = bool(config.get("trainable", True))
        #: where the model came from (load_model fills it: path, format, keras_version, generation)
        self.source: Dict[str, Any] = {}
        self.modules_by_name = torch.nn.ModuleDict()
        self.entries: List[Tuple[str, str, str]] = []  # (keras name, module key, class name), model order
        self._calls: Dict[str, List[Call]] = {}
        entries = config.get("layers")
        if not isinstance(entries, list):
            raise ValueError(f"{self.where}: expected a 'layers' list in the model config")
        if class_name == "Sequential":
            self._sequential(entries)
        else:
            self._functional(config, entries)
        self.order = self._schedule()
        self.train(False)

    # --- building --------------------------------------------------------------------------------
    def _add(self, entry: Dict[str, Any]) -> str:
        if not isinstance(entry, dict):
            raise ValueError(f"{self.where}: each layer entry must be a JSON object")
        cls = str(entry.get("class_name", ""))
        raw_cfg = entry.get("config")
        cfg: Dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
        name = str(entry.get("name") or cfg.get("name") or f"{cls.lower()}_{len(self.entries)}")
        if any(n == name for n, _, _ in self.entries):
            raise ValueError(f"{self.where}: two layers are named {name!r}")
        module: torch.nn.Module
        if cls in MODEL_CLASSES and str(entry.get("module", "keras")).split(".")[0] in ("keras", "tf_keras"):
            module = model_from_config(entry, self.keras_version, self.where)
        elif _is_op(entry):
            if cls not in KerasOp.OPS:
                raise UnsupportedLayerError(
                    f"{self.where}: op node {name!r} of class {cls!r} (a keras.ops call in the model) is not "
                    f"supported; expected one of {list(KerasOp.OPS)}"
                )
            module = KerasOp(cls, cfg)
        else:
            try:
                check_builtin(entry, self.where)
            except UnsupportedLayerError:
                raise
            module = layer_from_config(entry, self.keras_version, self.where)
            if getattr(module, "name", None) != name:
                setattr(module, "name", name)  # noqa: B010 - a Module attribute, not a submodule
        key = _safe(name)
        # a Keras name may be a ModuleDict / Module attribute ('forward', 'training', 'to', 'keys', ...), which
        # add_module refuses: such a key gets a '_' suffix (entries keep the Keras name)
        while key in self.modules_by_name or hasattr(self.modules_by_name, key):
            key += "_"
        self.modules_by_name[key] = module
        self.entries.append((name, key, cls))
        return name

    def _sequential(self, entries: List[Any]) -> None:
        prev: Optional[TensorRef] = None
        if not entries or not (isinstance(entries[0], dict) and entries[0].get("class_name") == "InputLayer"):
            # no InputLayer in the config (built from input_shape=): token ids for an Embedding, else floats
            first = entries[0] if entries and isinstance(entries[0], dict) else {}
            dtype = "int64" if first.get("class_name") == "Embedding" else "float32"
            name = self._add({"class_name": "InputLayer", "config": {"name": "input", "dtype": dtype}})
            self._calls[name] = []
            self.inputs = [TensorRef(name, 0, 0)]
            prev = self.inputs[0]
        for entry in entries:
            name = self._add(entry)
            if entry.get("class_name") == "InputLayer":
                self._calls[name] = []
                self.inputs = [TensorRef(name, 0, 0)]
            else:
                if prev is None:
                    raise ValueError(f"{self.where}: layer {name!r} has no input")
                self._calls[name] = [Call(name, [prev], {})]
            prev = TensorRef(name, 0, 0)
        assert prev is not None
        self.outputs = [prev]
        self.single_output = True

    def _functional(self, config: Dict[str, Any], entries: List[Any]) -> None:
        for entry in entries:
            self._add(entry)
        names = {n for n, _, _ in self.entries}
        classes = {n: c for n, _, c in self.entries}
        for (name, _, _), entry in zip(self.entries, entries):
            nodes = entry.get("inbound_nodes") or []
            if not isinstance(nodes, list):
                raise ValueError(f"{self.where}: layer {name!r}: inbound_nodes must be a list")
            self._calls[name] = [self._parse_node(name, node, names, classes) for node in nodes]
        self.inputs = self._refs(config.get("input_layers"), "input_layers", names, classes)
        self.outputs = self._refs(config.get("output_layers"), "output_layers", names, classes)
        # one output: a tensor, as model.predict returns it in both generations (also for outputs=[y])
        self.single_output = len(self.outputs) == 1
        for ref in self.inputs:
            if classes.get(ref.layer) != "InputLayer":
                raise ValueError(f"{self.where}: model input {ref.layer!r} is not an InputLayer")

    def _ref(self, raw: Any, names: set, classes: Dict[str, str], where: str) -> TensorRef:
        if not (isinstance(raw, (list, tuple)) and len(raw) >= 3 and isinstance(raw[0], str)):
            raise ValueError(f"{self.where}: {where}: expected [layer, node, index]; received {raw!r:.200}")
        layer, node, index = raw[0], int(raw[1]), int(raw[2])
        if layer not in names:
            raise ValueError(f"{self.where}: {where} names layer {layer!r}, which the model does not have")
        if self.keras_version < 3 and classes.get(layer) in ("Functional", "Model", "Sequential"):
            node -= 1  # tf_keras counts a nested model's own first node
        elif where == "output_layers" and classes.get(layer) in ("Functional", "Model"):
            # Keras 3 numbers a nested Functional's nodes from 1 in output_layers only (Functional.get_config's
            # node_reindexing_map; functional_from_config's get_tensor subtracts 1); call arguments count from 0
            node -= 1
        return TensorRef(layer, max(node, 0), index)

    def _refs(self, raw: Any, what: str, names: set, classes: Dict[str, str]) -> List[TensorRef]:
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{self.where}: the model config has no {what}")
        if isinstance(raw[0], str):
            raw = [raw]
        refs = []
        for r in raw:
            ref = self._ref(r, names, classes, what)
            refs.append(TensorRef(ref.layer, ref.call, ref.output))
        if what == "input_layers":  # inputs are InputLayer outputs: no node shift
            refs = [TensorRef(r.layer, 0, 0) for r in refs]
        return refs

    def _parse_node(self, name: str, node: Any, names: set, classes: Dict[str, str]) -> Call:
        if isinstance(node, dict):  # Keras 3
            args = self._k3_value(node.get("args", []), names, classes, name)
            k3_kwargs = self._k3_value(node.get("kwargs", {}) or {}, names, classes, name)
            if not isinstance(args, list) or not args or not isinstance(k3_kwargs, dict):
                raise ValueError(f"{self.where}: layer {name!r}: a call with no arguments")
            return Call(name, args, dict(k3_kwargs))
        if not isinstance(node, list) or not node:
            raise ValueError(f"{self.where}: layer {name!r}: malformed inbound node {node!r:.200}")
        refs = [self._ref(t, names, classes, f"layer {name!r}") for t in node]
        kwargs: Dict[str, Any] = {}
        if isinstance(node[0], list) and len(node[0]) > 3 and isinstance(node[0][3], dict):
            kwargs = self._k2_kwargs(node[0][3], names, classes, name)
        first: Any = refs[0] if len(refs) == 1 else refs
        return Call(name, [first], kwargs)

    def _k2_kwargs(self, raw: Dict[str, Any], names: set, classes: Dict[str, str], name: str) -> Dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and v[0] in names:
                return self._ref(v, names, classes, f"layer {name!r}")
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        return {k: conv(v) for k, v in raw.items()}

    def _k3_value(self, v: Any, names: set, classes: Dict[str, str], name: str) -> Any:
        if isinstance(v, dict):
            if v.get("class_name") == "__keras_tensor__":
                hist = (v.get("config") or {}).get("keras_history")
                return self._ref(hist, names, classes, f"layer {name!r}")
            return {k: self._k3_value(x, names, classes, name) for k, x in v.items()}
        if isinstance(v, list):
            return [self._k3_value(x, names, classes, name) for x in v]
        return v

    def _schedule(self) -> List[Tuple[str, int]]:
        """Every call, each after the calls whose outputs it reads (inputs count as done)."""
        done = {(r.layer, 0) for r in self.inputs}
        pending = [(n, k) for n, calls in self._calls.items() for k in range(len(calls))]
        order: List[Tuple[str, int]] = []
        while pending:
            rest = []
            for n, k in pending:
                deps = {(r.layer, r.call) for r in _refs_in(self._calls[n][k])}
                if deps <= done:
                    order.append((n, k))
                    done.add((n, k))
                else:
                    rest.append((n, k))
            if len(rest) == len(pending):
                missing = sorted(
                    {f"{r.layer}[{r.call}]" for n, k in rest for r in _refs_in(self._calls[n][k])}
                    - {f"{a}[{b}]" for a, b in done}
                )
                raise ValueError(
                    f"{self.where}: calls that can never run (their inputs {missing[:10]} are never computed)"
                )
            pending = rest
        for ref in self.outputs:
            if (ref.layer, ref.call) not in done:
                raise ValueError(f"{self.where}: output {ref.layer!r} call {ref.call} is never computed")
        return order

    # --- weights ---------------------------------------------------------------------------------
    def module(self, name: str) -> Any:
        for n, key, _ in self.entries:
            if n == name:
                return self.modules_by_name[key]
        raise KeyError(name)

    def weighted_layers(self) -> List[Tuple[str, Any]]:
        """``(name, module)`` of the layers that own weights, in model order."""
        out = []
        for name, key, _ in self.entries:
            m: Any = self.modules_by_name[key]
            if hasattr(m, "keras_weight_slots") and m.keras_weight_slots():
                out.append((name, m))
        return out

    def keras_weight_slots(self) -> List[WeightSlot]:
        slots: List[WeightSlot] = []
        for name, m in self.weighted_layers():
            slots += [WeightSlot((f"{name}/{n}", t and self.keras_trainable)) for n, t in m.keras_weight_slots()]
        return slots

    def _assign(self, arrays: List[Any]) -> None:
        """Arrays in slot order (layer by layer, nested models recursively) into the layers."""
        total = len(self.keras_weight_slots())
        if len(arrays) != total:
            raise ValueError(f"{self.where}: expected {total} weight arrays; received {len(arrays)}")
        i = 0
        for _, m in self.weighted_layers():
            n = len(m.keras_weight_slots())
            if isinstance(m, KerasModel):
                m._assign(arrays[i : i + n])
            else:
                m.load_keras_weights(arrays[i : i + n])
            i += n

    def _from_trainable_first(self, arrays: List[Any]) -> List[Any]:
        """Reorder arrays stored trainable-first (every trainable weight in layer order, then the others)
        into slot order."""
        slots = self.keras_weight_slots()
        if len(arrays) != len(slots):
            raise ValueError(f"{self.where}: expected {len(slots)} weight arrays; received {len(arrays)}")
        order = [i for i, (_, t) in enumerate(slots) if t] + [i for i, (_, t) in enumerate(slots) if not t]
        out: List[Any] = [None] * len(slots)
        for i, a in zip(order, arrays):
            out[i] = a
        return out

    def load_keras_weights(self, arrays: Sequence[Any]) -> None:
        """The model's weights in its generation's ``get_weights()`` order: layer by layer in Keras 3; every
        trainable weight, then the non-trainable ones, in tf_keras (``Layer.weights``)."""
        arrays = list(arrays)
        self._assign(arrays if self.keras_version >= 3 else self._from_trainable_first(arrays))

    def load_legacy_weights(self, arrays: Sequence[Any]) -> None:
        """A nested model's weights as a legacy ``.h5`` stores them (both generations): every trainable
        weight (layer order), then every non-trainable one."""
        self._assign(self._from_trainable_first(list(arrays)))

    def freeze_untrainable(self, frozen: bool = False) -> None:
        """``requires_grad`` off for the parameters of layers Keras marks ``trainable: false`` (and of every
        layer of an untrainable model), so fine-tuning in torch updates what Keras would update."""
        frozen = frozen or not self.keras_trainable
        for _, key, _ in self.entries:
            m: Any = self.modules_by_name[key]
            if isinstance(m, KerasModel):
                m.freeze_untrainable(frozen)
            elif frozen or not getattr(m, "keras_trainable", getattr(m, "trainable", True)):
                for p in m.parameters():
                    p.requires_grad_(False)

    # --- running ---------------------------------------------------------------------------------
    def forward(self, *inputs: Any) -> Any:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) and len(self.inputs) > 1:
            inputs = tuple(inputs[0])
        outputs, _ = self.run(list(inputs), None, None)
        return outputs[0] if self.single_output else outputs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * len(xs)
        _, out = self.run(xs, masks, None)
        return out[0] if len(out) == 1 else out

    def run(
        self, inputs: List[Any], masks: Optional[List[Any]], training: Optional[bool]
    ) -> Tuple[List[torch.Tensor], List[Optional[torch.Tensor]]]:
        """Run the graph: ``(outputs, their masks)`` for ``inputs`` (and their ``masks``) in model order."""
        if len(inputs) != len(self.inputs):
            raise ValueError(
                f"{self.where} expects {len(self.inputs)} input(s) {[r.layer for r in self.inputs]}; received "
                f"{len(inputs)}"
            )
        values: Dict[Tuple[str, int], Tuple[List[Any], List[Any]]] = {}
        for i, ref in enumerate(self.inputs):
            layer = self.module(ref.layer)
            assert isinstance(layer, InputLayer)
            m = None if masks is None else masks[i]
            values[(ref.layer, 0)] = ([layer(inputs[i])], [m])
        for name, k in self.order:
            values[(name, k)] = self._run_call(self._calls[name][k], values, training)
        outs = [values[(r.layer, r.call)][0][r.output] for r in self.outputs]
        out_masks = [values[(r.layer, r.call)][1][r.output] for r in self.outputs]
        return outs, out_masks

    def _run_call(
        self, call: Call, values: Dict[Tuple[str, int], Tuple[List[Any], List[Any]]], training: Optional[bool]
    ) -> Tuple[List[Any], List[Any]]:
        def val(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return values[(v.layer, v.call)][0][v.output]
            if isinstance(v, list):
                return [val(x) for x in v]
            if isinstance(v, dict):
                return {k: val(x) for k, x in v.items()}
            return v

        def msk(v: Any) -> Any:
            if isinstance(v, TensorRef):
                return values[(v.layer, v.call)][1][v.output]
            if isinstance(v, list):
                return [msk(x) for x in v]
            return None

        module: Any = self.module(call.layer)
        kwargs = dict(call.kwargs)
        kwargs.pop("training", None)
        if isinstance(module, KerasOp):
            return [module(*[val(a) for a in call.args])], [None]
        x = val(call.args[0])
        previous = msk(call.args[0])  # the masks that came with the first argument
        if "mask" in kwargs:
            recorded = kwargs.pop("mask")
            mask = None if recorded is None else val(recorded)
            if recorded is None:
                mask = previous
        elif self.keras_version >= 3 and (len(call.args) > 1 or _refs_in(Call(call.layer, [], kwargs))):
            mask = None  # Keras 3 fills the mask in only when the call has one tensor argument
        else:
            mask = previous
        if isinstance(module, KerasModel):
            xs = x if isinstance(x, list) else [x]
            ms = mask if isinstance(mask, list) else [mask] * len(xs)
            outs, out_masks = module.run(xs, ms, training)
            return outs, out_masks
        extra = [val(a) for a in call.args[1:]]
        initial_state = kwargs.pop("initial_state", None)
        if kwargs:
            raise UnsupportedLayerError(
                f"{self.where}: layer {call.layer!r} is called with arguments {sorted(kwargs)}; expected only "
                "mask, training and initial_state"
            )
        if extra:
            raise UnsupportedLayerError(
                f"{self.where}: layer {call.layer!r} is called with {len(extra) + 1} positional arguments; expected 1"
            )
        if initial_state is not None:
            out = module(x, mask=mask, training=training, initial_state=val(initial_state))
        elif isinstance(x, list) and not hasattr(module, "cell") and not hasattr(module, "forward_layer"):
            out = module(*x, mask=mask, training=training)
        else:
            out = module(x, mask=mask, training=training)
        # Keras 3 sets the output masks from the first argument's own masks (not a recorded mask argument)
        out_mask = module.compute_mask(x, previous if self.keras_version >= 3 else mask)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        # Keras zips the outputs with the masks compute_mask gives: outputs past them carry none
        out_masks = list(out_mask) if isinstance(out_mask, (list, tuple)) else [out_mask]
        out_masks = (out_masks + [None] * len(outs))[: len(outs)]
        return outs, out_masks


def _refs_in(call: Call) -> List[TensorRef]:
    found: List[TensorRef] = []

    def walk(v: Any) -> None:
        if isinstance(v, TensorRef):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(call.args)
    walk(call.kwargs)
    return found


def as_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
