"""ONNX export of any lstm-bridge recurrent layer: one ONNX ``LSTM`` / ``GRU`` / ``RNN`` node per layer, chained.

What is exported (built with the ``onnx`` helpers, checked with ``onnx.checker``):

* the recurrent chain of a :class:`~lstm_bridge.formats.ModelFile` (all its recurrent entries in order, or
  the one named by ``layer=``), a Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` / ``Bidirectional`` of one, or a
  list of them (the kinds may mix), a ``lstm_bridge.mindspore`` ``LSTM`` / ``GRU`` / ``RNN``, or a
  ``torch.nn.LSTM`` / ``GRU`` / ``RNN``. Other layers of a file (Embedding, Dense, ...) are not part of the
  graph; they are listed in the returned report's ``skipped``. Cells (one step) are refused.
* LSTM weights: ``W [D, 4H, I]``, ``R [D, 4H, H]``, ``B [D, 8H]`` (``Wb ‖ Rb``), gate order **i, o, f, c**
  (:func:`lstm_bridge.weights.to_onnx`). GRU: ``W [D, 3H, I]``, ``R [D, 3H, H]``, ``B [D, 6H]``, gate order
  **z, r, h** (:func:`lstm_bridge.weights.family.gru_to_onnx`) with ``linear_before_reset=1`` for the
  reset-after form (PyTorch, MindSpore, Keras ``reset_after=True``) and ``0`` for Keras ``reset_after=False``
  (TF 1.x / ``v1.GRU``; its one bias row is ``Wb``, ``Rb = 0``). RNN: ``W [D, H, I]``, ``R [D, H, H]``,
  ``B [D, 2H]``. ``direction`` forward / reverse / bidirectional.
* activations per direction (LSTM ``[f, g, h]``; GRU ``[f, g]`` = gates, candidate; RNN ``[f]`` = its one
  activation): sigmoid -> ``Sigmoid``, tanh -> ``Tanh``, relu -> ``Relu``, linear -> ``Affine(1, 0)``,
  softsign, softplus, elu(1), leaky_relu(0.2), Keras 2 ``hard_sigmoid`` -> ``HardSigmoid(0.2, 0.5)``, Keras 3
  ``hard_sigmoid`` -> ``HardSigmoid(1/6, 0.5)`` (equal to ``relu6(x+3)/6`` within 3e-8); onnxruntime's CPU
  LSTM/GRU/RNN honour every one (``activation_alpha``/``beta`` included; tests/test_onnx_family.py). Any
  other activation (selu, gelu, swish, exponential, relu6, ...) raises ``FormatError`` naming the layer.
  MindSpore ``GRU``/``RNN`` nets export their true math whatever their ``numerics``: MindSpore's own CPU
  kernels (approximate sigmoid/tanh) differ from the graph by up to ~1.1e-4, as they differ from
  ``torch.nn.GRU``/``RNN`` (docs/spec/mindspore_gru_rnn.md §3).

Graph interface (``B`` batch, ``T`` time, both symbolic):

=============  ==============================================================================
input          ``input``: Keras ``(B, T, F)`` (``(T, B, F)`` with time_major); MindSpore / PyTorch
               ``(T, B, I)`` (``(B, T, I)`` with batch_first)
               ``seq_length`` ``(B,)`` int32, only with ``lengths=True``: right-padding lengths
               (MindSpore ``seq_length``; a Keras right-padded mask is ``arange(T) < seq_length``)
               ``h0`` ``(N, B, H)``, only with ``initial_state=True``: one row per (layer,
               direction), MindSpore's ``hx`` (Keras ``initial_state`` rows in order); ``c0``
               ``(N_c, B, H)`` beside it when the chain has LSTM layers: one row per (LSTM layer,
               direction)
outputs        Keras: ``output`` (``output_forward``, ``output_backward`` for ``merge_mode=None``),
               then the last layer's ``h`` (and ``c`` for an LSTM; ``h_forward``, ``c_forward``,
               ``h_backward``, ``c_backward`` for Bidirectional), each ``(B, H)``; MindSpore:
               ``output``, ``h_n`` (``(L*D, B, H)``) and, with LSTM layers, ``c_n`` (``(N_c, B, H)``);
               ``h_n.<net>`` / ``c_n.<net>`` per net of a file whose nets differ in hidden size
=============  ==============================================================================

Keras ``go_backwards`` (outside Bidirectional) is a ``reverse`` node whose sequence is flipped back to
processing order. With ``lengths=True`` ONNX writes zeros at padded steps and reverses only the valid
prefix: the same as MindSpore's ``seq_length`` (whose CPU kernels, unlike this graph, use approximate
sigmoid/tanh: expect ~1e-4 from real MindSpore there) and as Keras right-padded masks, except a plain
Keras layer that returns sequences and repeats its last output at padded steps
(``zero_output_for_mask=False``), which raises ``FormatError``. A row with ``seq_length`` 0 returns its
initial state as the final state (as MindSpore and our engine do; a bare ONNX node would return zeros).
``stateful`` layers raise. What the graph would have to guess is refused: the ``nonlinearity`` of an
``nn.RNN`` read from a ``.ckpt`` / ``.pt`` / ``.safetensors`` (state dicts do not record it; export the net
itself), and the order of the layers of a weights-only Keras file holding several (pick one with ``layer=``).

``load`` is not provided (ONNX import is out of scope): it raises ``NotImplementedError``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import __version__
from ..targets import ONNX_ACTIVATIONS, check_expressible, check_model, lengths_violations
from ..weights import to_onnx
from ..weights.family import gru_to_onnx, rnn_to_onnx
from .common import SaveReport, atomic_output, check_output_path, head_bytes
from .model import FormatError

NAME = "onnx"
SUFFIXES = (".onnx",)
OPSET = 17
IR_VERSION = 8

__all__ = ["NAME", "SUFFIXES", "build_model", "save", "load", "detect", "verify", "ACTIVATIONS"]

#: lstm-bridge activation name -> (ONNX activation name, alpha or None, beta or None): what the ONNX
#: target can hold, owned by :mod:`lstm_bridge.targets`
ACTIVATIONS: Dict[str, Tuple[str, Optional[float], Optional[float]]] = ONNX_ACTIVATIONS


def _onnx():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise NotImplementedError("ONNX export needs the 'onnx' package: pip install 'lstm-bridge[onnx]'") from exc
    return onnx, TensorProto, helper, numpy_helper


def detect(path_or_head: Any) -> bool:
    """An ONNX ModelProto starts with field 1 (ir_version, varint): byte ``0x08``, and uses ``.onnx``."""
    name = os.fspath(path_or_head) if isinstance(path_or_head, (str, os.PathLike)) else ""
    head = head_bytes(path_or_head, 2)
    return name.lower().endswith(".onnx") and head[:1] == b"\x08"


def load(path: Any) -> Any:
    """Not provided: lstm-bridge exports ONNX but does not import it."""
    raise NotImplementedError(
        f"{os.fspath(path)}: reading ONNX files is not supported (lstm-bridge exports "
        "ONNX only); convert from the original Keras/MindSpore/PyTorch file instead"
    )


class _Graph:
    """A tiny node/initializer accumulator with unique names."""

    def __init__(self) -> None:
        _, self.TP, self.helper, self.numpy_helper = _onnx()
        self.nodes: List[Any] = []
        self.inits: List[Any] = []
        self._n = 0
        self._lazy: Dict[str, np.ndarray] = {}

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, value: np.ndarray, base: str) -> str:
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), n))
        return n

    def lazy_const(self, value: np.ndarray, base: str) -> str:
        """A constant's name; the initializer is only added if a node uses it."""
        self._lazy[base] = np.asarray(value)
        return base

    def finish(self) -> None:
        used = {i for n in self.nodes for i in n.input}
        for base, value in self._lazy.items():
            if base in used:
                self.inits.append(self.numpy_helper.from_array(value, base))

    def node(
        self,
        op: str,
        inputs: Sequence[str],
        n_out: int = 1,
        base: Optional[str] = None,
        outputs: Optional[Sequence[str]] = None,
        **attrs: Any,
    ) -> List[str]:
        outs = list(outputs) if outputs is not None else [self.name(base or op.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, list(inputs), outs, name=self.name("n_" + op), **attrs))
        return outs


def _activation_roles(layer: Any) -> Tuple[str, ...]:
    """The activations of one node of ``layer``'s operator, in ONNX order: LSTM ``[f, g, h]`` = gate,
    candidate, cell output; GRU ``[f, g]`` = gate (z, r), candidate (h); RNN ``[f]`` = its one activation."""
    kind = _kind(layer)
    if kind == "LSTM":
        return (layer.gate, layer.candidate, layer.candidate)
    if kind == "GRU":
        return (layer.gate, layer.candidate)
    return (layer.candidate,)


def _kind(layer: Any) -> str:
    """The ONNX operator of a chain layer: ``"LSTM"``, ``"GRU"`` or ``"RNN"`` (its cell kind)."""
    return str(getattr(getattr(layer, "kind", None), "value", "LSTM"))


def _activation_attrs(layer: Any) -> Dict[str, Any]:
    names, alphas, betas = [], [], []
    op = _kind(layer)
    for act in _activation_roles(layer):
        if act not in ACTIVATIONS:
            raise FormatError(
                None,
                f"layer {layer.name!r}: activation {act!r} has no ONNX {op} equivalent "
                f"(supported: {sorted(ACTIVATIONS)})",
            )
        onnx_name, alpha, beta = ACTIVATIONS[act]
        names.append(onnx_name)
        if alpha is not None:
            alphas.append(float(alpha))
        if beta is not None:
            betas.append(float(beta))
    D = len(layer.directions)
    attrs: Dict[str, Any] = {"activations": names * D}
    if alphas:
        attrs["activation_alpha"] = alphas * D
    if betas:
        attrs["activation_beta"] = betas * D
    if op == "GRU":  # 1: r multiplies (R_h h + Rb_h) (reset_after=True, PyTorch); 0: r multiplies h first
        attrs["linear_before_reset"] = 1 if layer.reset_after else 0
    return attrs


def build_model(
    obj: Any,
    *,
    layer: Optional[str] = None,
    lengths: bool = False,
    initial_state: bool = False,
    batch_first: Optional[bool] = None,
    dtype: Any = np.float32,
) -> Tuple[Any, Any]:
    """Build (do not write) the ONNX model of ``obj``'s recurrent chain (LSTM, GRU and RNN nodes).

    Args:
        obj: a ModelFile, Keras layer(s), a MindSpore LSTM / GRU / RNN, a torch.nn.LSTM / GRU / RNN, or a
            :class:`lstm_bridge.convert.Chain`.
        layer: for a ModelFile, the one LSTM entry to export (default: all, chained).
        lengths: add the ``seq_length`` input (see the module docstring for when this is exact).
        initial_state: add the ``h0`` (and, with LSTM layers, ``c0``) inputs.
        batch_first: override the input layout (default: the source's).
        dtype: float32 (default) or float64 weights and tensors.

    Returns:
        ``(model, chain)``: the checked ``onnx.ModelProto`` and the :class:`~lstm_bridge.convert.Chain`
        it computes.

    Raises:
        FormatError: a semantic the ONNX operators cannot express, naming the layer and why.
    """
    chain = _checked_chain(obj, layer, lengths, batch_first)
    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.float32, np.float64):
        raise FormatError(None, f"ONNX export dtype must be float32 or float64; received {np_dtype}")
    if lengths:
        problems = lengths_violations(chain)
        if problems:
            raise FormatError(None, "; ".join(problems))
    g = _Graph()
    elem = g.TP.FLOAT if np_dtype == np.float32 else g.TP.DOUBLE
    inputs, x, seq_lens = _graph_inputs(g, chain, elem, lengths, initial_state)
    # ONNX gives zeros as the final state of a row with sequence_lens 0; MindSpore (and a fully masked Keras
    # row) gives its initial state back: with both inputs, such rows take h0 / c0
    empty_rows = _empty_rows(g, seq_lens) if lengths and initial_state else ""
    idx0, idx1 = g.lazy_const(np.array(0, np.int64), "index0"), g.lazy_const(np.array(1, np.int64), "index1")
    reshape_seq = g.lazy_const(np.array([0, 0, -1], np.int64), "shape_t_b_feat")
    y_h_all: List[str] = []
    y_c_all: List[str] = []
    row = c_row = 0
    final_outputs: List[Tuple[str, str, list]] = []  # (tensor, output name, shape)
    for index, lay in enumerate(chain.layers):
        D = len(lay.directions)
        is_lstm = _kind(lay) == "LSTM"
        h_in, c_in = _initial_slices(g, row, c_row if is_lstm else None, D, initial_state)
        outs = _recurrent_node(g, lay, x, seq_lens, h_in, c_in, np_dtype)
        Y, Y_h = outs[0], outs[1]
        Y_c = outs[2] if is_lstm else ""
        if empty_rows:
            Y_h = g.node("Where", [empty_rows, h_in, Y_h], base="h_last")[0]
            if is_lstm:
                Y_c = g.node("Where", [empty_rows, c_in, Y_c], base="c_last")[0]
        y_h_all.append(Y_h)
        if is_lstm:
            y_c_all.append(Y_c)
            c_row += D
        row += D
        merged = _layer_output(g, lay, Y, Y_h, (idx0, idx1), reshape_seq, np_dtype)
        x = merged[0]
        if index == len(chain.layers) - 1:
            final_outputs += _last_layer_outputs(g, chain, lay, merged, Y_h, Y_c, (idx0, idx1))
    if chain.api != "keras":  # MindSpore / PyTorch: the stacked final states of every layer (c: LSTM layers)
        ys_c = iter(y_c_all)
        for suffix, indices in _state_groups(chain):
            group = [chain.layers[i] for i in indices]
            H = group[0].hidden_size
            hs = [y_h_all[i] for i in indices]
            cs = [next(ys_c) for l in group if _kind(l) == "LSTM"]
            rows = sum(len(l.directions) for l in group)
            h_n = g.node("Concat", hs, base="h_n", axis=0)[0] if len(hs) > 1 else hs[0]
            final_outputs.append((h_n, "h_n" + suffix, [rows, "batch", H]))
            if cs:
                c_n = g.node("Concat", cs, base="c_n", axis=0)[0] if len(cs) > 1 else cs[0]
                c_rows = sum(len(l.directions) for l in group if _kind(l) == "LSTM")
                final_outputs.append((c_n, "c_n" + suffix, [c_rows, "batch", H]))
    return _finish_model(g, chain, inputs, final_outputs, elem, lengths), chain


def _state_groups(chain: Any) -> List[Tuple[str, List[int]]]:
    """How a MindSpore/PyTorch chain's final states are returned, as (output-name suffix, layer indices): one
    ``h_n`` (``c_n``) over every layer when they share a hidden size; else one per net of the file
    (``h_n.<name>``: the layers ``<name>.l<k>`` of one stacked entry), as each net returns its own."""
    if len({l.hidden_size for l in chain.layers}) == 1:
        return [("", list(range(len(chain.layers))))]
    groups: Dict[str, List[int]] = {}
    for index, lay in enumerate(chain.layers):
        base, dot, tail = lay.name.rpartition(".l")
        key = base if dot and tail.isdigit() else lay.name
        groups.setdefault(key, []).append(index)
    return [(f".{key}", indices) for key, indices in groups.items()]


def _cell_state_rows(chain: Any) -> int:
    """Rows of ``c0`` / ``c_n``: one per (LSTM layer, direction); GRU and RNN layers have no cell state."""
    return sum(len(l.directions) for l in chain.layers if _kind(l) == "LSTM")


def _empty_rows(g: _Graph, seq_lens: str) -> str:
    """``(1, B, 1)`` bool: the rows whose ``seq_length`` is 0."""
    zero = g.const(np.array(0, np.int32), "zero_length")
    empty = g.node("Equal", [seq_lens, zero], base="empty_row")[0]
    shape = g.const(np.array([1, -1, 1], np.int64), "shape_1_b_1")
    return g.node("Reshape", [empty, shape], base="empty_rows")[0]


def _checked_chain(obj: Any, layer: Optional[str], lengths: bool, batch_first: Optional[bool]) -> Any:
    """The :class:`~lstm_bridge.convert.Chain` of ``obj`` after :mod:`lstm_bridge.targets` said an ONNX
    graph can hold it (masks included); a copy in the ``batch_first`` layout when given."""
    import dataclasses

    from ..convert import chain_from, chain_from_model_file

    is_file = hasattr(obj, "lstm_layers")
    try:
        # what an ONNX graph cannot hold (lstm_bridge.targets), masks included: refused up front
        if is_file:
            check_model(obj, "onnx", layer=layer, lengths=lengths)
            guesses = _unrecorded_semantics(obj, layer)
            if guesses:
                raise FormatError(getattr(obj, "path", None), "; ".join(guesses))
        elif not isinstance(obj, (list, tuple)) or obj:
            check_expressible(obj, "onnx")
        chain = chain_from_model_file(obj, layer) if is_file else chain_from(obj)
    except FormatError:
        raise
    except ValueError as exc:
        raise FormatError(getattr(obj, "path", None), str(exc)) from exc
    if batch_first is not None:  # a copy: the caller's chain is not changed
        chain = dataclasses.replace(chain, batch_first=bool(batch_first))
    return chain


def _records_topology(kind: str, cfg: Any) -> bool:
    """Whether a Keras entry's file recorded its config (a weights-only file records no ``return_sequences``)."""
    cfg = cfg if isinstance(cfg, dict) else {}
    inner = cfg.get("layer", {}).get("config", {}) if kind == "Bidirectional" else cfg
    return isinstance(inner, dict) and "return_sequences" in inner


def _unrecorded_semantics(mf: Any, layer: Optional[str]) -> List[str]:
    """What the graph would have to guess about a file (empty when nothing): the ``nonlinearity`` (tanh or relu)
    of an RNN in a MindSpore / PyTorch state dict, which does not record it, and the order of the layers of a
    weights-only Keras file holding several (``.weights.h5`` stores them by name, not by model order)."""
    entries = mf.recurrent_entries() if hasattr(mf, "recurrent_entries") else mf.lstm_layers()
    entries = [e for e in entries if (layer is None or e.name == layer) and not str(e.kind).endswith("Cell")]
    configs = {e.name: e.config if isinstance(e.config, dict) else {} for e in mf.layers}
    out = []
    if mf.framework != "keras":
        for e in entries:
            if getattr(e, "cell", "LSTM") == "RNN" and "nonlinearity" not in configs.get(e.name, {}):
                out.append(
                    f"RNN {e.name!r}: a {mf.framework} state dict does not record nn.RNN's nonlinearity (tanh or "
                    "relu), and the ONNX RNN node must name it; build the net (lstm_bridge.mindspore.RNN(..., "
                    "nonlinearity=...) or torch.nn.RNN), load these weights into it and export the net"
                )
    elif len(entries) > 1 and not all(_records_topology(e.kind, configs.get(e.name)) for e in entries):
        out.append(
            f"a weights-only Keras file records neither the order of its layers nor their return_sequences "
            f"({[e.name for e in entries]} is the file's storage order), so a graph chaining them would be a "
            "guess; export one layer (layer=NAME, lstm-bridge convert --layer NAME) or the full model file "
            "(.keras / .h5)"
        )
    return out


def _graph_inputs(g: _Graph, chain: Any, elem: int, lengths: bool, initial_state: bool) -> Tuple[List[Any], str, str]:
    """The graph inputs (``input``, then ``seq_length``, ``h0`` and, with LSTM layers, ``c0``, as asked), the
    time-major input tensor the first node reads, and the ``seq_length`` name (``""`` without lengths)."""
    helper, TP = g.helper, g.TP
    inputs = []
    feat = chain.input_size
    x_shape = ["batch", "time", feat] if chain.batch_first else ["time", "batch", feat]
    inputs.append(helper.make_tensor_value_info("input", elem, x_shape))
    x = "input"
    if chain.batch_first:
        x = g.node("Transpose", [x], base="x_time_major", perm=[1, 0, 2])[0]
    seq_lens = ""
    if lengths:
        inputs.append(helper.make_tensor_value_info("seq_length", TP.INT32, ["batch"]))
        seq_lens = "seq_length"
    N = chain.num_states
    H_all = {lay.hidden_size for lay in chain.layers}
    if initial_state:
        if len(H_all) != 1:
            raise FormatError(None, f"initial_state inputs need one hidden size for every layer; found {sorted(H_all)}")
        H = H_all.pop()
        inputs.append(helper.make_tensor_value_info("h0", elem, [N, "batch", H]))
        n_c = _cell_state_rows(chain)
        if n_c:
            inputs.append(helper.make_tensor_value_info("c0", elem, [n_c, "batch", H]))
    return inputs, x, seq_lens


def _initial_slices(g: _Graph, row: int, c_row: Optional[int], D: int, initial_state: bool) -> Tuple[str, str]:
    """The node's initial states: rows ``row:row+D`` of ``h0`` and (LSTM, ``c_row`` given) ``c_row:c_row+D``
    of ``c0``; ``("", "")`` without ``initial_state``."""
    if not initial_state:
        return "", ""
    axes0 = g.const(np.array([0], np.int64), "axes")

    def rows(source: str, start: int, base: str) -> str:
        starts = g.const(np.array([start], np.int64), "start")
        ends = g.const(np.array([start + D], np.int64), "end")
        return g.node("Slice", [source, starts, ends, axes0], base=base)[0]

    h_in = rows("h0", row, "h_init")
    c_in = rows("c0", c_row, "c_init") if c_row is not None else ""
    return h_in, c_in


def _recurrent_node(g: _Graph, lay: Any, x: str, seq_lens: str, h_in: str, c_in: str, np_dtype: np.dtype) -> List[str]:
    """One ONNX ``LSTM`` / ``GRU`` / ``RNN`` node (the layer's cell kind) for chain layer ``lay`` reading
    ``x``, started from ``h_in`` (and ``c_in``) when given. Returns its ``Y, Y_h`` (and ``Y_c`` for LSTM)."""
    op = _kind(lay)
    D = len(lay.directions)
    if D == 1:
        direction = "reverse" if lay.reverse[0] else "forward"
    elif list(lay.reverse) == [False, True]:
        direction = "bidirectional"
    else:
        raise FormatError(
            None,
            f"layer {lay.name!r}: directions with reverse flags {lay.reverse} (a wrapped "
            f"go_backwards layer inside Bidirectional) have no ONNX {op} equivalent",
        )
    dirs = [w.numpy() for w in lay.directions]
    if op == "GRU":
        W, R, Bias = gru_to_onnx(dirs)
    elif op == "RNN":
        W, R, Bias = rnn_to_onnx(dirs)
    else:
        W, R, Bias = to_onnx(dirs)
    has_bias = lay.directions[0].has_bias
    w_name = g.const(np.asarray(W, np_dtype), f"{lay.name}_W")
    r_name = g.const(np.asarray(R, np_dtype), f"{lay.name}_R")
    b_name = g.const(np.asarray(Bias, np_dtype), f"{lay.name}_B") if has_bias else ""
    node_inputs = [x, w_name, r_name, b_name, seq_lens, h_in] + ([c_in] if op == "LSTM" else [])
    while node_inputs[-1] == "":  # optional inputs left out at the end
        node_inputs.pop()
    return g.node(
        op,
        node_inputs,
        n_out=3 if op == "LSTM" else 2,
        base=f"{lay.name}_{op.lower()}",
        hidden_size=lay.hidden_size,
        direction=direction,
        **_activation_attrs(lay),
    )


def _layer_output(
    g: _Graph, lay: Any, Y: str, Y_h: str, index: Tuple[str, str], reshape_seq: str, np_dtype: np.dtype
) -> List[str]:
    """What chain layer ``lay`` gives the next one: its merged sequence ``(T, B, F)`` (in processing order
    for a one-direction layer that keeps it) or last output ``(B, F)``; two tensors for
    ``merge_mode=None``."""
    D = len(lay.directions)
    if not lay.return_sequences:
        lasts = [g.node("Gather", [Y_h, idx], base="y_last", axis=0)[0] for idx in index[:D]]
        if D == 1:
            return [lasts[0]]
        if lay.merge_mode == "concat":
            return [g.node("Concat", lasts, base="y_concat", axis=-1)[0]]
        return _merge(g, lasts, lay.merge_mode, np_dtype)
    if D == 1 or lay.merge_mode == "concat":
        t = g.node("Transpose", [Y], base="y_tbdh", perm=[0, 2, 1, 3])[0]
        seq = g.node("Reshape", [t, reshape_seq], base="y_seq")[0]
        if D == 1 and lay.processing_order:
            starts = g.const(np.array([-1], np.int64), "start")
            ends = g.const(np.array([np.iinfo(np.int64).min], np.int64), "end")
            axes0 = g.const(np.array([0], np.int64), "axes")
            steps = g.const(np.array([-1], np.int64), "steps")
            seq = g.node("Slice", [seq, starts, ends, axes0, steps], base="y_processing_order")[0]
        return [seq]
    halves = [g.node("Gather", [Y, idx], base="y_dir", axis=1)[0] for idx in index]
    return _merge(g, halves, lay.merge_mode, np_dtype)


def _last_layer_outputs(
    g: _Graph, chain: Any, lay: Any, merged: List[str], Y_h: str, Y_c: str, index: Tuple[str, str]
) -> List[Tuple[str, str, list]]:
    """The graph outputs of the last layer: ``output`` (or ``output_forward``/``output_backward``) in the
    chain's layout and, for Keras chains, its states ``h`` (and ``c`` for an LSTM; per direction)."""
    out: List[Tuple[str, str, list]] = []
    D, H = len(lay.directions), lay.hidden_size
    seq_out = lay.return_sequences
    names = ["output"] if len(merged) == 1 else ["output_forward", "output_backward"]
    width = lay.output_size if len(merged) == 1 else H
    for tensor, out_name in zip(merged, names):
        if seq_out and chain.batch_first:
            tensor = g.node("Transpose", [tensor], base="y_batch_major", perm=[1, 0, 2])[0]
        shape = (
            (["batch", "time", width] if chain.batch_first else ["time", "batch", width])
            if seq_out
            else ["batch", width]
        )
        out.append((tensor, out_name, shape))
    if chain.api == "keras":
        suffixes = [""] if D == 1 else ["_forward", "_backward"]
        for d, suffix in enumerate(suffixes):
            out.append((g.node("Gather", [Y_h, index[d]], base="h", axis=0)[0], "h" + suffix, ["batch", H]))
            if Y_c:  # LSTM: [h, c] per direction; GRU / SimpleRNN: [h]
                out.append((g.node("Gather", [Y_c, index[d]], base="c", axis=0)[0], "c" + suffix, ["batch", H]))
    return out


def _finish_model(
    g: _Graph, chain: Any, inputs: List[Any], final_outputs: List[Tuple[str, str, list]], elem: int, lengths: bool
) -> Any:
    """The graph's named outputs, the ModelProto (opset, IR version, doc string, properties), checked by
    ``onnx.checker``."""
    onnx, _, helper, _ = _onnx()
    outputs = []
    for tensor, out_name, shape in final_outputs:
        g.node("Identity", [tensor], outputs=[out_name])
        outputs.append(helper.make_tensor_value_info(out_name, elem, shape))
    g.finish()
    graph = helper.make_graph(g.nodes, chain.name or "lstm_bridge", inputs, outputs, initializer=g.inits)
    model = helper.make_model(
        graph, producer_name="lstm-bridge", producer_version=__version__, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    model.doc_string = f"lstm-bridge export of a {chain.api} recurrent chain: layers " + ", ".join(
        f"{l.name} ({_kind(l)}, D={len(l.directions)}, H={l.hidden_size}, gate={l.gate}, "
        f"candidate={l.candidate}, reverse={l.reverse}, merge={l.merge_mode}, "
        f"return_sequences={l.return_sequences}" + (f", reset_after={l.reset_after})" if _kind(l) == "GRU" else ")")
        for l in chain.layers
    )
    helper.set_model_props(
        model,
        {
            "lstm_bridge.api": chain.api,
            "lstm_bridge.batch_first": str(chain.batch_first),
            "lstm_bridge.lengths": str(bool(lengths)),
        },
    )
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug on our side: say so plainly
        raise FormatError(None, f"internal error: the generated ONNX graph fails onnx.checker: {exc}") from exc
    return model


def _merge(g: _Graph, halves: List[str], mode: Optional[str], np_dtype: np.dtype) -> List[str]:
    if mode == "concat":
        return [g.node("Concat", halves, base="y_concat", axis=-1)[0]]
    if mode == "sum":
        return [g.node("Add", halves, base="y_sum")[0]]
    if mode == "mul":
        return [g.node("Mul", halves, base="y_mul")[0]]
    if mode == "ave":
        s = g.node("Add", halves, base="y_sum")[0]
        two = g.const(np.array(2.0, np_dtype), "two")
        return [g.node("Div", [s, two], base="y_ave")[0]]
    if mode is None:
        return list(halves)
    raise FormatError(None, f"unknown merge_mode {mode!r}")


def save(
    obj: Any,
    path: Any,
    *,
    layer: Optional[str] = None,
    lengths: bool = False,
    initial_state: bool = False,
    batch_first: Optional[bool] = None,
    verify: bool = False,
    tol: float = 1e-5,
    **_ignored: Any,
) -> SaveReport:
    """Write ``obj``'s recurrent chain as an ONNX model to ``path`` (atomically: temp file + rename).

    Options as :func:`build_model`; with ``verify=True`` the written file is run with onnxruntime on
    random inputs and compared with the lstm-bridge engine (``max |diff| <= tol`` or FormatError, and
    the file is removed).

    Returns:
        a :class:`~lstm_bridge.formats.SaveReport`: ``written`` the exported LSTM layers, ``skipped``
        every other layer of a ModelFile with the reason.
    """
    p = check_output_path(path, obj)
    model, chain = build_model(obj, layer=layer, lengths=lengths, initial_state=initial_state, batch_first=batch_first)
    with atomic_output(p) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(model.SerializeToString())
        if verify:
            diff = _verify_file(tmp, chain, lengths=lengths, initial_state=initial_state)
            if not diff <= tol:
                raise FormatError(
                    p,
                    f"onnxruntime output differs from the lstm-bridge engine by {diff:.3g} "
                    f"(tolerance {tol:g}); file not written",
                )
    report = SaveReport(path=p, format=NAME, written=[l.name for l in chain.layers])
    if hasattr(obj, "layers") and hasattr(obj, "lstm_layers"):
        entries = obj.recurrent_entries() if hasattr(obj, "recurrent_entries") else obj.lstm_layers()
        names = [l.name for l in chain.layers]
        # the entries the chain holds (a stacked MindSpore/PyTorch entry gives layers "<name>.l<k>")
        exported = [e.name for e in entries if any(n == e.name or n.startswith(f"{e.name}.l") for n in names)]
        recurrent = {e.name for e in entries}
        report.written = exported
        for e in obj.layers:
            if e.name in exported:
                continue
            if e.weights or e.name in recurrent:
                if layer is not None and e.name in recurrent and not str(e.kind).endswith("Cell"):
                    why = "not the selected layer"
                elif str(e.kind).endswith("Cell"):
                    why = f"a {e.kind} (one step) is not exported: the ONNX recurrent operators run sequences"
                else:
                    why = f"{e.kind} layers are not part of the ONNX export (the graph holds the recurrent chain)"
                report.skipped[e.name] = why
    return report


def _random_feeds(
    chain: Any, *, lengths: bool, initial_state: bool, batch: int = 3, steps: int = 7, seed: int = 0
) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, batch, chain.input_size)).astype(np.float32)
    feeds = {"input": x.transpose(1, 0, 2).copy() if chain.batch_first else x}
    if lengths:
        feeds["seq_length"] = np.array([steps] + [int(v) for v in rng.integers(1, steps + 1, batch - 1)], np.int32)
    if initial_state:
        H = chain.layers[0].hidden_size
        feeds["h0"] = (0.5 * rng.standard_normal((chain.num_states, batch, H))).astype(np.float32)
        if _cell_state_rows(chain):
            feeds["c0"] = (0.5 * rng.standard_normal((_cell_state_rows(chain), batch, H))).astype(np.float32)
    return feeds


def _engine_c0(chain: Any, c0: np.ndarray) -> np.ndarray:
    """The graph's ``c0`` (one row per LSTM (layer, direction)) as ``run_chain`` takes it (one row per
    (layer, direction); GRU / RNN rows are not read)."""
    rows, k = [], 0
    for lay in chain.layers:
        for _ in lay.directions:
            if _kind(lay) == "LSTM":
                rows.append(c0[k])
                k += 1
            else:
                rows.append(np.zeros_like(c0[0]))
    return np.stack(rows)


def verify(
    path: Any, obj: Any, *, layer: Optional[str] = None, lengths: bool = False, initial_state: bool = False
) -> float:
    """Max |difference| between onnxruntime on the file ``path`` and the lstm-bridge engine on ``obj``'s
    chain, over every output, on random inputs (needs ``onnxruntime``)."""
    from ..convert import chain_from, chain_from_model_file

    chain = chain_from_model_file(obj, layer) if hasattr(obj, "lstm_layers") else chain_from(obj)
    return _verify_file(os.fspath(path), chain, lengths=lengths, initial_state=initial_state)


def _verify_file(path: str, chain: Any, *, lengths: bool, initial_state: bool) -> float:
    import torch

    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise NotImplementedError("verifying an ONNX file needs onnxruntime: pip install 'lstm-bridge[onnx]'") from exc
    from ..convert import run_chain

    feeds = _random_feeds(chain, lengths=lengths, initial_state=initial_state)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, feeds)))
    x = torch.from_numpy(feeds["input"])
    if chain.batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        res = run_chain(
            chain,
            x.contiguous(),
            lengths=torch.from_numpy(feeds["seq_length"]) if lengths else None,
            h0=torch.from_numpy(feeds["h0"]) if initial_state else None,
            c0=torch.from_numpy(_engine_c0(chain, feeds["c0"])) if "c0" in feeds else None,
        )
    expected = expected_outputs(chain, res)
    worst = 0.0
    for name, value in expected.items():
        if name not in got:
            raise FormatError(path, f"ONNX output {name!r} is missing; outputs: {names}")
        if got[name].shape != value.shape:
            raise FormatError(path, f"ONNX output {name!r} has shape {got[name].shape}; expected {value.shape}")
        worst = max(worst, float(np.max(np.abs(got[name].astype(np.float64) - value.astype(np.float64)), initial=0.0)))
    return worst


def expected_outputs(chain: Any, res: Any) -> Dict[str, np.ndarray]:
    """The exported graph's outputs by name, computed from a :class:`~lstm_bridge.convert.ChainResult`."""
    last = chain.layers[-1]
    out: Dict[str, np.ndarray] = {}
    names = ["output"] if len(res.outputs) == 1 else ["output_forward", "output_backward"]
    for name, t in zip(names, res.outputs):
        if last.return_sequences and chain.batch_first:
            t = t.transpose(0, 1)
        out[name] = t.detach().numpy()
    if chain.api == "keras":
        D = len(last.directions)
        suffixes = [""] if D == 1 else ["_forward", "_backward"]
        for d, suffix in enumerate(suffixes):
            out["h" + suffix] = res.h[len(res.h) - D + d].detach().numpy()
            if _kind(last) == "LSTM":
                out["c" + suffix] = res.c[len(res.c) - D + d].detach().numpy()
    else:
        h_rows, c_rows = iter(res.h), iter(res.c)
        for suffix, indices in _state_groups(chain):
            group = [chain.layers[i] for i in indices]
            hs = [next(h_rows) for l in group for _ in l.directions]
            cs = [next(c_rows) for l in group if _kind(l) == "LSTM" for _ in l.directions]
            out["h_n" + suffix] = _stack_states(hs)
            if cs:  # (the LSTM layers' rows)
                out["c_n" + suffix] = _stack_states(cs)
    return out


def _stack_states(tensors: List[Any]) -> np.ndarray:
    """``(N, B, H)`` NumPy from a list of ``(B, H)`` tensors."""
    return np.stack([t.detach().numpy() for t in tensors])
