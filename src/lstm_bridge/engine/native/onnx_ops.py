"""The native custom ops in ONNX: one standard ``LSTM`` / ``GRU`` / ``RNN`` node per direction (dynamo exporter).

``torch.onnx.export(..., dynamo=True)`` finds this translation by itself: it is added to onnxscript's
torchlib registry as soon as that registry is imported (:func:`install`, run when the op is defined).
:data:`TRANSLATIONS` gives the same as a ``custom_translation_table`` for an explicit call.

Per direction ``d`` the node gets ``W [1, 4H, I]`` / ``R [1, 4H, H]`` with the gate blocks reordered from
i, f, g, o to ONNX's i, o, f, c, ``B [1, 8H]`` (``b_ih`` then ``b_hh``, zeros where absent), the initial
states ``[1, B, H]``, ``direction`` forward or reverse, and the activations of :data:`lstm_bridge.targets.
ONNX_ACTIVATIONS` (Keras 2 ``hard_sigmoid`` is ``HardSigmoid(0.2, 0.5)`` exactly; MindSpore's emulated CPU
sigmoid/tanh export as the true functions, as every MindSpore net does: ``formats/onnx.py``).

A step mask becomes ``sequence_lens`` (valid steps per row) when masked steps emit zeros (MindSpore's
``seq_length`` rule, whose masks are right padding by construction). What ONNX's ``LSTM`` cannot hold
raises :class:`ValueError` naming it and why: the Keras rule that repeats the previous output on masked
steps, dropout masks (training), and activations outside the operator's list.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any, Callable, Dict, List, Sequence

import torch

__all__ = [
    "TRANSLATIONS",
    "install",
    "register",
    "translate_check_range",
    "translate_family_layer",
    "translate_lstm_layer",
]

# the kernel's activation ids (lstm.h enum Act) -> lstm_bridge.activations names
_ACT_NAMES = {
    0: "sigmoid",
    1: "tanh",
    2: "hard_sigmoid",
    3: "hard_sigmoid_keras3",
    4: "relu",
    5: "linear",
    6: "softsign",
    7: "sigmoid",  # ms_cpu_sigmoid: exported as its true function (see the module docstring)
    8: "tanh",  # ms_cpu_tanh
}
_registered = False


def _onnx_activation(act_id: int, role: str) -> Any:
    from ...targets import ONNX_ACTIVATIONS, UNSUPPORTED

    name = _ACT_NAMES.get(int(act_id), f"activation id {act_id}")
    if name not in ONNX_ACTIVATIONS:
        supported = ", ".join(sorted(ONNX_ACTIVATIONS))
        raise ValueError(UNSUPPORTED["onnx_activation"].format(which=role, value=name, supported=supported))
    return ONNX_ACTIVATIONS[name]


def _refuse_masks(has_mask: Sequence[int], valid: Any, carry: bool, cell: str) -> None:
    if any(has_mask):
        raise ValueError(
            f"a {cell} layer with dropout masks (training mode) has no ONNX equivalent: the ONNX {cell} operator "
            "has no dropout; export the model in eval mode (model.eval(), training=False)"
        )
    if valid is not None and carry:
        raise ValueError(
            f"a Keras mask whose masked steps repeat the previous output has no ONNX {cell} equivalent: the "
            "operator takes per-row lengths (sequence_lens) and emits zeros after them; export with "
            "zero_output_for_mask=True and right-padded masks, or convert the layer with "
            "lstm_bridge.save(..., lengths=True) and feed seq_length"
        )


def _lengths(op: Any, valid: Any) -> Any:
    """``sequence_lens (B,)`` int32: the valid steps per row (the masks that reach here are right padding)."""
    if valid is None:
        return None
    return op.Cast(op.ReduceSum(op.Cast(valid, to=6), op.Constant(value_ints=[0]), keepdims=0), to=6)


def _static_hidden(w_hh: Any) -> int:
    """The hidden size from ``w_hh``'s static shape (the ONNX RNN operators take it as an attribute)."""
    shape = getattr(w_hh, "shape", None)
    if shape is None or len(shape) != 2 or not isinstance(shape[1], int):
        raise ValueError("a recurrent layer's hidden size must be static for ONNX export")
    return int(shape[1])


def _reorder(op: Any, t: Any, axis: int) -> Any:
    """Gate blocks i, f, g, o along ``axis`` -> ONNX's i, o, f, c."""
    i, f, g, o = op.Split(t, num_outputs=4, axis=axis)
    return op.Concat(i, o, f, g, axis=axis)


def translate_lstm_layer(
    x: Any,
    w_ih: Sequence[Any],
    w_hh: Sequence[Any],
    b_ih: Sequence[Any],
    b_hh: Sequence[Any],
    has_bias: Sequence[int],
    h0: Sequence[Any],
    c0: Sequence[Any],
    valid: Any,
    in_masks: Sequence[Any],
    rec_masks: Sequence[Any],
    has_mask: Sequence[int],
    reverse: Sequence[int],
    acts: Sequence[int],
    carry: bool,
    save: bool,
) -> List[Any]:
    """The ONNX graph of one ``lstm_bridge::lstm_layer`` call (onnxscript, trace-only): the op's flat outputs."""
    from onnxscript import opset18

    op: Any = opset18  # the opset's stubs type every value as one of its dtypes

    D = len(w_hh)
    _refuse_masks(has_mask, valid, carry, "LSTM")
    names = []
    for role, act_id in (("recurrent_activation", acts[0]), ("activation", acts[1]), ("activation", acts[2])):
        names.append(_onnx_activation(act_id, role))
    activations = [n[0] for n in names]
    alphas = [n[1] if n[1] is not None else 0.0 for n in names]
    betas = [n[2] if n[2] is not None else 0.0 for n in names]
    lens = _lengths(op, valid)
    outs, hns, cns = [], [], []
    bias_ih = iter(b_ih)
    bias_hh = iter(b_hh)
    zero_axis = op.Constant(value_ints=[0])
    for d in range(D):
        W = op.Unsqueeze(_reorder(op, w_ih[d], 0), zero_axis)
        R = op.Unsqueeze(_reorder(op, w_hh[d], 0), zero_axis)
        parts = []
        for present, it in ((has_bias[d], bias_ih), (has_bias[D + d], bias_hh)):
            if present:
                parts.append(_reorder(op, next(it), 0))
            else:
                parts.append(op.Mul(op.ReduceSum(w_hh[d], op.Constant(value_ints=[1]), keepdims=0), 0.0))
        Bias = op.Unsqueeze(op.Concat(*parts, axis=0), zero_axis)
        H = _static_hidden(w_hh[d])
        Y, Y_h, Y_c = op.LSTM(
            x,
            W,
            R,
            Bias,
            lens,
            op.Unsqueeze(h0[d], zero_axis),
            op.Unsqueeze(c0[d], zero_axis),
            activations=activations,
            activation_alpha=alphas,
            activation_beta=betas,
            direction="reverse" if reverse[d] else "forward",
            hidden_size=H,
        )
        outs.append(op.Squeeze(Y, op.Constant(value_ints=[1])))
        hns.append(op.Squeeze(Y_h, zero_axis))
        cns.append(op.Squeeze(Y_c, zero_axis))
    # what backward would read (only when the export recorded autograd): unused by the graph
    if save:
        gates = op.Concat(*[o for o in outs for _ in range(4)], axis=2)  # (T, B, S)
        extra = [gates] + [op.Identity(o) for o in outs] * 2
    else:
        extra = [op.CastLike(op.Constant(value_floats=[]), x)]  # the (0,) placeholder
    return [*outs, *hns, *cns, *extra]


def translate_family_layer(
    x: Any,
    w_ih: Sequence[Any],
    w_hh: Sequence[Any],
    b_ih: Sequence[Any],
    b_hh: Sequence[Any],
    has_bias: Sequence[int],
    h0: Sequence[Any],
    valid: Any,
    in_masks: Sequence[Any],
    rec_masks: Sequence[Any],
    has_mask: Sequence[int],
    reverse: Sequence[int],
    form: int,
    acts: Sequence[int],
    carry: bool,
    ms_order: bool,
    save: bool,
) -> List[Any]:
    """``lstm_bridge::family_layer`` as one standard ONNX ``GRU`` (gate blocks r, z, n reordered to z, r, h;
    ``linear_before_reset`` = reset_after) or ``RNN`` node per direction; the same refusals as the LSTM's."""
    from onnxscript import opset18

    op: Any = opset18
    D = len(w_hh)
    cell = "RNN" if form == 0 else "GRU"
    _refuse_masks(has_mask, valid, carry, cell)
    roles = (("activation", acts[1]),) if form == 0 else (("recurrent_activation", acts[0]), ("activation", acts[1]))
    names = [_onnx_activation(a, role) for role, a in roles]
    attrs: Dict[str, Any] = {
        "activations": [n[0] for n in names],
        "activation_alpha": [n[1] if n[1] is not None else 0.0 for n in names],
        "activation_beta": [n[2] if n[2] is not None else 0.0 for n in names],
    }
    if form != 0:
        attrs["linear_before_reset"] = 1 if form == 1 else 0
    lens = _lengths(op, valid)
    zero_axis = op.Constant(value_ints=[0])
    bias_ih, bias_hh = iter(b_ih), iter(b_hh)
    outs, hns = [], []

    def reorder(t: Any) -> Any:
        if form == 0:
            return t
        r, z, n = op.Split(t, num_outputs=3, axis=0)
        return op.Concat(z, r, n, axis=0)

    for d in range(D):
        H = _static_hidden(w_hh[d])
        parts = []
        for present, it in ((has_bias[d], bias_ih), (has_bias[D + d], bias_hh)):
            parts.append(
                reorder(next(it))
                if present
                else op.Mul(op.ReduceSum(w_hh[d], op.Constant(value_ints=[1]), keepdims=0), 0.0)
            )
        node = op.GRU if form != 0 else op.RNN
        Y, Y_h = node(
            x,
            op.Unsqueeze(reorder(w_ih[d]), zero_axis),
            op.Unsqueeze(reorder(w_hh[d]), zero_axis),
            op.Unsqueeze(op.Concat(*parts, axis=0), zero_axis),
            lens,
            op.Unsqueeze(h0[d], zero_axis),
            direction="reverse" if reverse[d] else "forward",
            hidden_size=H,
            **attrs,
        )
        outs.append(op.Squeeze(Y, op.Constant(value_ints=[1])))
        hns.append(op.Squeeze(Y_h, zero_axis))
    if save:
        gates = op.Concat(*[o for o in outs for _ in range(1 if form == 0 else 3)], axis=2)
        extra = [gates] + [op.Identity(o) for o in outs] * (1 if form == 0 else 2)
    else:
        extra = [op.CastLike(op.Constant(value_floats=[]), x)]
    return [*outs, *hns, *extra]


def translate_check_range(values: Any, low: int, high: int, message: str) -> Any:
    """``lstm_bridge::check_range`` in ONNX: the values as int64. ONNX has no assertion: out-of-range
    lengths are not refused by the graph (onnxruntime's LSTM checks ``sequence_lens`` against ``T``)."""
    from onnxscript import opset18

    op: Any = opset18  # the opset's stubs type every value as one of its dtypes

    return op.Cast(values, to=7)


def register() -> bool:
    """Add the translation to onnxscript's torchlib registry (once); False without onnxscript."""
    global _registered
    if _registered:
        return True
    try:
        from onnxscript.function_libs.torch_lib.registration import torch_op
    except ImportError:
        return False
    _registered = True
    torch_op("lstm_bridge::lstm_layer", trace_only=True)(translate_lstm_layer)
    torch_op("lstm_bridge::check_range", trace_only=True)(translate_check_range)
    torch_op("lstm_bridge::family_layer", trace_only=True)(translate_family_layer)
    return True


_REGISTRY_MODULE = "onnxscript.function_libs.torch_lib.registration"


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Runs ``callback`` right after module ``name`` is first imported.

    ``torch.onnx.export(..., dynamo=True)`` builds its function registry from onnxscript's before it
    captures the model, so registering when the op is traced would come one export too late; importing
    onnxscript (or torch.onnx, for the legacy exporter's refusal) up front would cost every
    ``import lstm_bridge`` that import."""

    def __init__(self, name: str, callback: Callable[[], object]) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # one shot; the real finders locate the module
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        callback = self.callback

        def exec_then_register(module: Any) -> None:
            exec_module(module)
            callback()

        loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def _on_import(name: str, callback: Callable[[], object]) -> None:
    """``callback()`` now when module ``name`` is loaded, else as soon as it is."""
    if name in sys.modules:
        callback()
    elif not any(isinstance(f, _RegisterOnImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport(name, callback))


_LEGACY_REGISTRY_MODULE = "torch.onnx"  # (its registry module is imported halfway through torch.onnx's own import)
_LEGACY_OPSET = 7  # the legacy exporter's lowest opset: the refusal covers every opset it exports


def _refuse_legacy_export(g: Any, *args: Any) -> Any:
    raise RuntimeError(
        "the TorchScript-based ONNX exporter (torch.onnx.export(..., dynamo=False)) cannot translate "
        "lstm_bridge's recurrent ops: export with dynamo=True (torch's default), which writes standard ONNX "
        "LSTM / GRU / RNN nodes, or save the weights with lstm_bridge.save(..., format='onnx')"
    )


def register_legacy_refusal() -> None:
    """Make the legacy exporter refuse the ops naming the exporter that translates them (without it, its
    error is an unrecognised namespace)."""
    from torch.onnx import register_custom_op_symbolic

    for name in ("lstm_layer", "family_layer", "check_range"):
        register_custom_op_symbolic(f"lstm_bridge::{name}", _refuse_legacy_export, _LEGACY_OPSET)


def install() -> None:
    """Make ``torch.onnx.export(..., dynamo=True)`` translate the ops by itself, and the legacy exporter refuse
    them with the remedy: registered now when the registry modules are loaded, else as soon as they are."""
    _on_import(_REGISTRY_MODULE, register)
    _on_import(_LEGACY_REGISTRY_MODULE, register_legacy_refusal)


def _table() -> Dict[Any, Any]:
    return {
        torch.ops.lstm_bridge.lstm_layer.default: translate_lstm_layer,
        torch.ops.lstm_bridge.check_range.default: translate_check_range,
        torch.ops.lstm_bridge.family_layer.default: translate_family_layer,
    }


TRANSLATIONS = _table
"""``TRANSLATIONS()``: ``{op: translation}`` for ``torch.onnx.export(..., custom_translation_table=...)``."""
