"""Every foreign LSTM weight layout, as a named permutation of the one canonical layout.

Canonical weights of one (layer, direction), gate order **i, f, g, o** along the ``4H`` axis
(PyTorch / MindSpore layout; ``I`` = input size, ``H`` = hidden size)::

    w_ih (4H, I)    w_hh (4H, H)    b_ih (4H,) or None    b_hh (4H,) or None

Foreign layouts handled here (and nowhere else in the code base):

==================  =====================================================================  ============
layout              arrays                                                                 gate order
==================  =====================================================================  ============
Keras (TK/K3/TF1)   ``kernel (I, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``       i, f, c, o
MindSpore = torch   ``weight_ih_l{k}[_reverse] (4H, I)``, ``weight_hh_...``, two biases      i, f, g, o
ONNX ``LSTM``       ``W [D, 4H, I]``, ``R [D, 4H, H]``, ``B [D, 8H]`` (= Wb ‖ Rb)           i, o, f, c
TF1 ``CuDNNLSTM``   kernel ``(I, 4u)`` in cuDNN raw order, recurrent transposed, bias 8u    i, f, c, o
Keras 1             12 arrays ``W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o``  i, c, f, o
==================  =====================================================================  ============

Keras has one bias: reading gives ``b_ih = bias, b_hh = 0``; writing gives ``bias = b_ih + b_hh``
(exact when ``b_hh`` is 0, so Keras -> canonical -> Keras is bit-exact; a MindSpore pair of biases
is summed once, in float32, like MindSpore's own CPU kernel does).

All functions accept NumPy arrays or torch tensors and return the same kind as their input; no
function mutates its arguments.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch

from ..recurrent import Array, CellKind, DirectionWeights

__all__ = [
    "DirectionWeights",
    "LSTMWeights",
    "UnsupportedLayoutError",
    "GATES_CANONICAL",
    "GATES_ONNX",
    "to_keras",
    "from_keras",
    "to_torch_state_dict",
    "from_torch_state_dict",
    "torch_param_names",
    "to_onnx",
    "from_onnx",
    "from_cudnn_lstm",
    "from_keras1",
    "check_mindspore_layout",
]

#: canonical gate order along the 4H axis (i = input, f = forget, g = candidate, o = output)
GATES_CANONICAL = ("i", "f", "g", "o")
#: ONNX ``LSTM`` gate order (its "c" is our "g")
GATES_ONNX = ("i", "o", "f", "g")
# index of each ONNX block in the canonical order: ONNX = canonical[[0, 3, 1, 2]]
_ONNX_FROM_CANON = (0, 3, 1, 2)
_CANON_FROM_ONNX = (0, 2, 3, 1)


class UnsupportedLayoutError(ValueError):
    """A weight layout this library recognises but cannot (or does not) convert; the message says which."""


# --- small array helpers that work for numpy and torch alike --------------------------------------


def _is_torch(a: Any) -> bool:
    return isinstance(a, torch.Tensor)


def _transpose(a: Array) -> Array:
    return a.t().contiguous() if isinstance(a, torch.Tensor) else np.ascontiguousarray(a.T)


def _concat(parts: Sequence[Array], axis: int = 0) -> Array:
    if _is_torch(parts[0]):
        return torch.cat(cast(List[torch.Tensor], list(parts)), dim=axis)
    return np.concatenate(list(parts), axis=axis)


def _stack(parts: Sequence[Array]) -> Array:
    if _is_torch(parts[0]):
        return torch.stack(cast(List[torch.Tensor], list(parts)), dim=0)
    return np.stack(list(parts), axis=0)


def _zeros_like(a: Array) -> Array:
    return torch.zeros_like(a) if isinstance(a, torch.Tensor) else np.zeros_like(a)


def _copy(a: Array) -> Array:
    return a.clone() if isinstance(a, torch.Tensor) else np.array(a, copy=True)


def _numpy(a: Array) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _shape(a: Array) -> Tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def _gate_blocks(a: Array, axis: int, n: int = 4) -> List[Array]:
    size = _shape(a)[axis]
    if size % n:
        raise ValueError(f"axis {axis} of an array of shape {_shape(a)} is not divisible into {n} gate blocks")
    h = size // n
    if isinstance(a, torch.Tensor):
        return [a.narrow(axis, k * h, h) for k in range(n)]
    index = [slice(None)] * a.ndim
    out: List[Array] = []
    for k in range(n):
        index[axis] = slice(k * h, (k + 1) * h)
        out.append(a[tuple(index)])
    return out


def _reorder_gates(a: Array, order: Sequence[int], axis: int = 0) -> Array:
    """Blocks ``order[0], order[1], ...`` of ``a`` along ``axis`` (4 equal gate blocks), concatenated."""
    blocks = _gate_blocks(a, axis)
    return _concat([blocks[k] for k in order], axis=axis)


# --- canonical weights ---------------------------------------------------------------------------

#: Canonical weights of one (layer, direction): :class:`lstm_bridge.recurrent.DirectionWeights` itself
#: (``w_ih (4H, I)``, ``w_hh (4H, H)``, ``b_ih``, ``b_hh``; gate order i, f, g, o for an LSTM). The one
#: record the engine, the front ends and the file formats share; this name is kept for compatibility.
LSTMWeights = DirectionWeights


# --- Keras ----------------------------------------------------------------------------------------


def from_keras(kernel: Array, recurrent_kernel: Array, bias: Optional[Array] = None) -> LSTMWeights:
    """Keras ``kernel (I, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)`` -> canonical.

    Gate order is the same (i, f, c, o); the kernels are transposed. ``b_ih = bias``, ``b_hh = 0``.
    """
    k_shape, r_shape = _shape(kernel), _shape(recurrent_kernel)
    if len(r_shape) != 2 or r_shape[1] != 4 * r_shape[0]:
        raise ValueError(f"Keras recurrent_kernel must be (units, 4*units); received shape {r_shape}")
    if len(k_shape) != 2 or k_shape[1] != r_shape[1]:
        raise ValueError(f"Keras kernel must be (input_dim, {r_shape[1]}); received shape {k_shape}")
    if bias is not None and _shape(bias) != (r_shape[1],):
        raise ValueError(f"Keras bias must be ({r_shape[1]},); received shape {_shape(bias)}")
    b_ih = _copy(bias) if bias is not None else None
    b_hh = _zeros_like(bias) if bias is not None else None
    return LSTMWeights(_transpose(kernel), _transpose(recurrent_kernel), b_ih, b_hh)


def to_keras(w: LSTMWeights) -> List[Array]:
    """Canonical -> Keras ``[kernel (I, 4u), recurrent_kernel (u, 4u), bias (4u,)]`` (no bias entry
    when the weights have none). ``bias = b_ih + b_hh``."""
    out = [_transpose(w.w_ih), _transpose(w.w_hh)]
    b = w.bias_sum()
    if b is not None:
        out.append(b)
    return out


# --- MindSpore / PyTorch --------------------------------------------------------------------------


def torch_param_names(layer: int, reverse: bool = False, has_bias: bool = True, cell: bool = False) -> List[str]:
    """The PyTorch (= MindSpore 2.x) names of one (layer, direction):
    ``weight_ih_l{k}[_reverse], weight_hh_..., bias_ih_..., bias_hh_...``; for an ``LSTMCell``
    (``cell=True``): ``weight_ih, weight_hh, bias_ih, bias_hh``."""
    suffix = "" if cell else f"_l{layer}" + ("_reverse" if reverse else "")
    names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
    if has_bias:
        names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
    return names


def to_torch_state_dict(layers: Sequence[Sequence[LSTMWeights]], prefix: str = "") -> Dict[str, Array]:
    """Canonical ``layers[l][d]`` (d = 0 forward, 1 reverse) -> a ``torch.nn.LSTM`` / ``mindspore.nn.LSTM``
    state dict, keys in MindSpore's ``parameters_and_names`` order (all ``weight_ih``, then all
    ``weight_hh``, ``bias_ih``, ``bias_hh``; within each ``l0, l0_reverse, l1, ...``). The arrays are
    copies; the layout is the canonical one (no permutation needed)."""
    if not layers:
        raise ValueError("to_torch_state_dict needs at least one layer")
    has_bias = layers[0][0].has_bias
    groups: Dict[str, Dict[str, Array]] = {"weight_ih": {}, "weight_hh": {}, "bias_ih": {}, "bias_hh": {}}
    for l, dirs in enumerate(layers):
        if len(dirs) not in (1, 2):
            raise ValueError(f"layer {l} must have 1 or 2 directions; received {len(dirs)}")
        for d, w in enumerate(dirs):
            if w.has_bias != has_bias:
                raise ValueError("all (layer, direction) weights must agree on having biases")
            suffix = f"_l{l}" + ("_reverse" if d else "")
            groups["weight_ih"][f"weight_ih{suffix}"] = _copy(w.w_ih)
            groups["weight_hh"][f"weight_hh{suffix}"] = _copy(w.w_hh)
            if has_bias:
                either: Any = w.b_ih if w.b_ih is not None else w.b_hh  # has_bias: one is not None
                groups["bias_ih"][f"bias_ih{suffix}"] = _copy(w.b_ih) if w.b_ih is not None else _zeros_like(either)
                groups["bias_hh"][f"bias_hh{suffix}"] = _copy(w.b_hh) if w.b_hh is not None else _zeros_like(either)
    out: Dict[str, Array] = {}
    for g in groups.values():
        for k, v in g.items():
            out[prefix + k] = v
    return out


_TORCH_KEY = re.compile(
    r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>\d+)"
    r"(?P<rev>_reverse)?$"
)


def from_torch_state_dict(state: Mapping[str, Array], prefix: str = "") -> List[List[LSTMWeights]]:
    """A ``torch.nn.LSTM`` / ``mindspore.nn.LSTM`` state dict (keys ``prefix + weight_ih_l{k}[_reverse]``,
    ...) -> canonical ``layers[l][d]``. Layers must be numbered 0..L-1 without gaps, every layer must
    have the same directions, and keys that do not belong to the LSTM are rejected (strict).

    Raises:
        UnsupportedLayoutError: MindSpore <= r1.5's flat ``weight`` or Ascend ``weight_fw``/``bias_bw``.
        ValueError: missing or unexpected keys, or shapes that do not fit, naming them.
    """
    check_mindspore_layout(state)
    found: Dict[Tuple[int, int], Dict[str, Array]] = {}
    unexpected = []
    for key, value in state.items():
        if not key.startswith(prefix):
            unexpected.append(key)
            continue
        m = _TORCH_KEY.match(key[len(prefix) :])
        if not m or m.group("prefix"):
            unexpected.append(key)
            continue
        found.setdefault((int(m.group("layer")), 1 if m.group("rev") else 0), {})[m.group("kind")] = value
    if unexpected:
        raise ValueError(f"unexpected keys for an LSTM state dict with prefix {prefix!r}: {unexpected}")
    if not found:
        raise ValueError(f"no LSTM weights (weight_ih_l0, ...) with prefix {prefix!r} in the state dict")
    return directions_from_groups(found, prefix, CellKind.LSTM)


def directions_from_groups(
    found: Mapping[Tuple[int, int], Mapping[str, Array]], prefix: str, kind: CellKind
) -> List[List[DirectionWeights]]:
    """Canonical ``layers[l][d]`` of ``kind`` from a state dict's tensors grouped by (layer, direction):
    ``found[(l, d)] = {"weight_ih": ..., "weight_hh": ..., ["bias_ih": ..., "bias_hh": ...]}`` (copies).
    Layers must be numbered 0..L-1 without gaps and have the same directions; both biases or neither.

    Raises:
        ValueError: a missing weight, a lone bias, or shapes that do not fit ``kind``, naming the keys.
    """
    n_layers = max(l for l, _ in found) + 1
    n_dirs = max(d for _, d in found) + 1
    layers: List[List[DirectionWeights]] = []
    for l in range(n_layers):
        dirs = []
        for d in range(n_dirs):
            entry = found.get((l, d), {})
            suffix = f"_l{l}" + ("_reverse" if d else "")
            if "weight_ih" not in entry or "weight_hh" not in entry:
                raise ValueError(
                    f"missing keys {prefix}weight_ih{suffix} / {prefix}weight_hh{suffix} in the {kind.value} state dict"
                )
            if ("bias_ih" in entry) != ("bias_hh" in entry):
                raise ValueError(
                    f"layer {l} direction {d}: bias_ih{suffix} and bias_hh{suffix} must both be "
                    f"present or both absent; found {sorted(entry)}"
                )
            try:
                dirs.append(
                    DirectionWeights(
                        _copy(entry["weight_ih"]),
                        _copy(entry["weight_hh"]),
                        _copy(entry["bias_ih"]) if "bias_ih" in entry else None,
                        _copy(entry["bias_hh"]) if "bias_hh" in entry else None,
                        kind,
                    )
                )
            except ValueError as e:
                raise ValueError(f"{prefix}*{suffix} ({kind.value}): {e}") from None
        layers.append(dirs)
    return layers


def check_mindspore_layout(keys: Union[Iterable[str], Mapping[str, Any]]) -> None:
    """Raise :class:`UnsupportedLayoutError` for the MindSpore <= r1.5 layouts (docs/spec/mindspore_lstm.md §9):
    a flat fused ``weight`` Parameter of shape ``(N, 1, 1)`` (CPU/GPU ``nn.LSTM``) or Ascend
    ``weight_fw{l}``/``weight_bw{l}``/``bias_fw{l}``/``bias_bw{l}`` (float16, DynamicRNN gate order).

    ``keys`` may be a mapping ``name -> array`` (then a ``weight`` is flagged by its ``(N, 1, 1)`` shape)
    or just names (then a ``weight`` directly under an ``lstm``/``rnn`` attribute is flagged).
    """
    shapes = (
        {k: _shape(v) if hasattr(v, "shape") else None for k, v in keys.items()}
        if isinstance(keys, Mapping)
        else {k: None for k in keys}
    )
    for key, shape in shapes.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "weight":
            owner = prefix.rsplit(".", 1)[-1].lower()
            flat = (
                (len(shape) == 3 and shape[1:] == (1, 1)) if shape is not None else ("lstm" in owner or "rnn" in owner)
            )
            if flat:
                raise UnsupportedLayoutError(
                    f"unsupported layout: {key!r} looks like MindSpore <= r1.5's flat fused LSTM 'weight' "
                    "(one (N,1,1) Parameter for the CPU/GPU P.LSTM kernel); re-save it with MindSpore >= 1.6, "
                    "whose nn.LSTM stores weight_ih_l{k}/weight_hh_l{k}/bias_ih_l{k}/bias_hh_l{k}"
                )
        if re.fullmatch(r"(weight|bias)_(fw|bw)\d+", leaf):
            raise UnsupportedLayoutError(
                f"unsupported layout: {key!r} is MindSpore <= r1.5's Ascend DynamicRNN layout "
                "(weight_fw/bw (in+H, 4H), gate order i, g, f, o, float16); re-save it with MindSpore >= 1.6"
            )


# --- ONNX -----------------------------------------------------------------------------------------


def to_onnx(directions: Sequence[LSTMWeights]) -> Tuple[Array, Array, Array]:
    """Canonical directions of one layer (forward[, reverse]) -> ONNX ``LSTM`` inputs
    ``W [D, 4H, I]``, ``R [D, 4H, H]``, ``B [D, 8H]`` (= ``Wb ‖ Rb``), gate order **i, o, f, c**.
    Missing biases become zeros (ONNX's own default)."""
    if len(directions) not in (1, 2):
        raise ValueError(f"ONNX LSTM takes 1 or 2 directions; received {len(directions)}")
    ws, rs, bs = [], [], []
    for w in directions:
        ws.append(_reorder_gates(w.w_ih, _ONNX_FROM_CANON))
        rs.append(_reorder_gates(w.w_hh, _ONNX_FROM_CANON))
        zero = _zeros_like(w.w_hh[:, 0])
        b_ih = w.b_ih if w.b_ih is not None else zero
        b_hh = w.b_hh if w.b_hh is not None else zero
        bs.append(_concat([_reorder_gates(b_ih, _ONNX_FROM_CANON), _reorder_gates(b_hh, _ONNX_FROM_CANON)]))
    return _stack(ws), _stack(rs), _stack(bs)


def from_onnx(W: Array, R: Array, B: Optional[Array] = None) -> List[LSTMWeights]:
    """ONNX ``W [D, 4H, I]``, ``R [D, 4H, H]``, ``B [D, 8H]`` (gate order i, o, f, c) -> canonical
    directions ``[forward(, reverse)]``."""
    w_shape, r_shape = _shape(W), _shape(R)
    if len(r_shape) != 3 or r_shape[1] != 4 * r_shape[2]:
        raise ValueError(f"ONNX R must be [D, 4H, H]; received shape {r_shape}")
    d, four_h, _ = r_shape
    if len(w_shape) != 3 or w_shape[:2] != (d, four_h):
        raise ValueError(f"ONNX W must be [{d}, {four_h}, I]; received shape {w_shape}")
    if B is not None and _shape(B) != (d, 2 * four_h):
        raise ValueError(f"ONNX B must be [{d}, {2 * four_h}]; received shape {_shape(B)}")
    out = []
    for k in range(d):
        b_ih = b_hh = None
        if B is not None:
            b_ih = _reorder_gates(B[k][:four_h], _CANON_FROM_ONNX)
            b_hh = _reorder_gates(B[k][four_h:], _CANON_FROM_ONNX)
        out.append(
            LSTMWeights(_reorder_gates(W[k], _CANON_FROM_ONNX), _reorder_gates(R[k], _CANON_FROM_ONNX), b_ih, b_hh)
        )
    return out


# --- legacy readers -------------------------------------------------------------------------------


def from_cudnn_lstm(kernel: Array, recurrent_kernel: Array, bias: Array) -> LSTMWeights:
    """TF 1.x ``CuDNNLSTM`` legacy weights -> canonical (the conversion tf_keras's legacy loader does,
    docs/spec/keras_lstm.md §7.6).

    ``kernel (I, 4u)``: each gate block ``k (I, u)`` holds the cuDNN raw matrix, so the Keras block is
    ``k.T.reshape((I, u), order="F")``; ``recurrent_kernel (u, 4u)``: each gate block is transposed;
    ``bias (8u,)``: input biases (i, f, c, o) then recurrent biases, summed. Gate order i, f, c, o.
    The result keeps the two bias halves apart (``b_ih`` = first, ``b_hh`` = second half), which sums
    to the Keras bias.
    """
    k_shape, r_shape, b_shape = _shape(kernel), _shape(recurrent_kernel), _shape(bias)
    if len(r_shape) != 2 or r_shape[1] != 4 * r_shape[0]:
        raise ValueError(f"CuDNNLSTM recurrent_kernel must be (units, 4*units); received {r_shape}")
    u = r_shape[0]
    if len(k_shape) != 2 or k_shape[1] != 4 * u:
        raise ValueError(f"CuDNNLSTM kernel must be (input_dim, {4 * u}); received {k_shape}")
    if b_shape != (8 * u,):
        raise ValueError(f"CuDNNLSTM bias must be (8*units,) = ({8 * u},); received {b_shape}")
    torch_in = _is_torch(kernel)
    k, r, b = _numpy(kernel), _numpy(recurrent_kernel), _numpy(bias)
    i_dim = k_shape[0]
    k_blocks = [np.asarray(blk).T.reshape((i_dim, u), order="F") for blk in _gate_blocks(k, 1)]
    r_blocks = [np.asarray(blk).T for blk in _gate_blocks(r, 1)]
    keras_kernel = np.concatenate(k_blocks, axis=1)
    keras_rec = np.concatenate(r_blocks, axis=1)
    w = LSTMWeights(
        np.ascontiguousarray(keras_kernel.T),
        np.ascontiguousarray(keras_rec.T),
        np.array(b[: 4 * u], copy=True),
        np.array(b[4 * u :], copy=True),
    )
    return w.torch() if torch_in else w


def from_keras1(arrays: Sequence[Array]) -> LSTMWeights:
    """Keras 1 LSTM weights (12 arrays, gate-wise in the order i, c, f, o, each ``W (I, u)``,
    ``U (u, u)``, ``b (u,)``) -> canonical (docs/spec/keras_lstm.md §7.6)."""
    if len(arrays) != 12:
        raise ValueError(f"a Keras 1 LSTM has 12 weight arrays (W, U, b for gates i, c, f, o); received {len(arrays)}")
    per_gate = {g: arrays[3 * n : 3 * n + 3] for n, g in enumerate(("i", "c", "f", "o"))}
    order = ("i", "f", "c", "o")
    kernel = _concat([per_gate[g][0] for g in order], axis=1)
    rec = _concat([per_gate[g][1] for g in order], axis=1)
    bias = _concat([per_gate[g][2] for g in order], axis=0)
    return from_keras(kernel, rec, bias)
