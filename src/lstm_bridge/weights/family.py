"""Every foreign GRU and simple-RNN weight layout, as a named permutation of the one canonical layout.

The LSTM's layouts live in :mod:`lstm_bridge.weights.layouts`; this module does the same for the other two
members of the family (:class:`lstm_bridge.recurrent.CellKind` ``GRU`` and ``RNN``), and holds the
generic PyTorch / MindSpore state-dict codec (any gate count: 1, 3 or 4).

Canonical weights of one (layer, direction) (one :class:`lstm_bridge.recurrent.DirectionWeights` with
``kind`` GRU or RNN; ``I`` = input size, ``H`` = hidden size = Keras ``units``)::

    GRU  (gate order r, z, n):  w_ih (3H, I)  w_hh (3H, H)  b_ih (3H,) or None  b_hh (3H,) or None
    RNN  (one block):           w_ih (H, I)   w_hh (H, H)   b_ih (H,)  or None  b_hh (H,)  or None

The two GRU forms (a property of the layer, not of the arrays; column convention, σ = sigmoid)::

    r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
    reset_after=True  (PyTorch, MindSpore, cuDNN, Keras TF2 default, ONNX linear_before_reset=1):
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    reset_after=False (Keras <= 2.3 / TF 1.x / Keras 1, ONNX linear_before_reset=0):
        n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)        <- b_hn OUTSIDE r ⊙ (…), as ONNX defines it
    both: h' = (1 − z) ⊙ n + z ⊙ h

So in the reset-before form every recurrent bias (``b_hn`` included) adds to its input bias: Keras's one
bias row is ``b_ih`` with ``b_hh = 0``, and writing to Keras folds ``b_ih + b_hh`` exactly (in real
arithmetic; bit for bit when ``b_hh`` is 0, as it is for anything read from Keras). In the reset-after
form ``b_hn`` sits inside ``r ⊙ (…)`` and can never be folded into ``b_in``. The forms are different
functions: no weights make one compute the other (:func:`check_gru_form` refuses the change).

Foreign layouts handled here (and nowhere else in the code base):

=======================  ===========================================================================  ===========
layout                   arrays                                                                       gate order
=======================  ===========================================================================  ===========
Keras GRU, reset_after   ``kernel (I, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (2, 3u)`` =         z, r, h
                         [input row, recurrent row]
Keras GRU, reset_before  ``kernel``, ``recurrent_kernel`` as above, ``bias (3u,)`` (input side)       z, r, h
Keras SimpleRNN          ``kernel (I, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)`` (input side)   –
MindSpore = torch        ``weight_ih_l{k}[_reverse] (G·H, I)``, ``weight_hh_…``, ``bias_ih_…``,       r, z, n
                         ``bias_hh_…`` (G = 3 GRU, 1 RNN, 4 LSTM)
ONNX ``GRU``             ``W [D, 3H, I]``, ``R [D, 3H, H]``, ``B [D, 6H]`` (= Wb ‖ Rb); the form is   z, r, h
                         the node's ``linear_before_reset`` (1 = reset_after, 0 = reset_before)
ONNX ``RNN``             ``W [D, H, I]``, ``R [D, H, H]``, ``B [D, 2H]`` (= Wb ‖ Rb)                  –
TF1 ``CuDNNGRU`` (read)  ``kernel (I, 3u)``: each gate block holds cuDNN's raw ``(u, I)`` matrix in   z, r, h
                         C order; ``recurrent_kernel (u, 3u)``: each block is cuDNN's ``(u, u)`` =
                         the Keras block transposed; ``bias (6u,)`` = input z, r, h ‖ recurrent
                         z, r, h. Reset-after form.
Keras 1 GRU (read)       9 arrays ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h``; reset-before form  z, r, h
TF1 ``GRUCell``          ``gates/kernel (I+H, 2H)`` (rows x ‖ h), ``gates/bias (2H,)``,               r, u(=z); c
                         ``candidate/kernel (I+H, H)`` (rows x ‖ r⊙h), ``candidate/bias (H,)``;
                         reset-before form (``tf.compat.v1.nn.rnn_cell``)
TF1 ``BasicRNNCell``     ``kernel (I+H, H)`` (rows x ‖ h), ``bias (H,)``                              –
=======================  ===========================================================================  ===========

A Keras/ONNX block index ``k`` maps to canonical blocks by ``_CANON_FROM_ZRH = (1, 0, 2)`` (an
involution: the same permutation goes back). Every function accepts NumPy arrays or torch tensors and
returns the same kind; none mutates its arguments (results are copies).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, cast

import numpy as np
import torch

from ..recurrent import Array, CellKind, DirectionWeights
from .layouts import UnsupportedLayoutError, directions_from_groups

__all__ = [
    "GATES_GRU",
    "GATES_GRU_KERAS",
    "GATES_GRU_ONNX",
    "check_gru_form",
    "gru_from_keras",
    "gru_to_keras",
    "rnn_from_keras",
    "rnn_to_keras",
    "recurrent_to_torch_state_dict",
    "recurrent_from_torch_state_dict",
    "cell_to_torch_state_dict",
    "cell_from_torch_state_dict",
    "gru_to_onnx",
    "gru_from_onnx",
    "rnn_to_onnx",
    "rnn_from_onnx",
    "gru_from_cudnn",
    "gru_from_keras1",
    "gru_from_tf1",
    "gru_to_tf1",
    "rnn_from_tf1",
    "rnn_to_tf1",
]

#: canonical GRU gate order (PyTorch / MindSpore / cuDNN): reset, update, new (candidate)
GATES_GRU = ("r", "z", "n")
#: Keras GRU gate order (update, reset, candidate)
GATES_GRU_KERAS = ("z", "r", "h")
#: ONNX ``GRU`` gate order (the same as Keras)
GATES_GRU_ONNX = ("z", "r", "h")
# canonical block k = foreign (Keras/ONNX/CuDNNGRU) block _CANON_FROM_ZRH[k], and vice versa (an involution)
_CANON_FROM_ZRH = (1, 0, 2)


# --- small array helpers (NumPy and torch alike) -------------------------------------------------


def _shape(a: Any) -> Tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def _is_torch(a: Any) -> bool:
    return isinstance(a, torch.Tensor)


def _copy(a: Array) -> Array:
    return a.detach().clone() if isinstance(a, torch.Tensor) else np.array(a, copy=True)


def _transpose(a: Array) -> Array:
    return a.t().contiguous() if isinstance(a, torch.Tensor) else np.ascontiguousarray(np.asarray(a).T)


def _zeros_like(a: Array) -> Array:
    return torch.zeros_like(a) if isinstance(a, torch.Tensor) else np.zeros_like(a)


def _concat(parts: Sequence[Array], axis: int = 0) -> Array:
    if _is_torch(parts[0]):
        return torch.cat(cast(List[torch.Tensor], list(parts)), dim=axis)
    return np.concatenate([np.asarray(p) for p in parts], axis=axis)


def _stack(parts: Sequence[Array]) -> Array:
    if _is_torch(parts[0]):
        return torch.stack(cast(List[torch.Tensor], list(parts)), dim=0)
    return np.stack([np.asarray(p) for p in parts], axis=0)


def _blocks(a: Array, axis: int, n: int) -> List[Array]:
    size = _shape(a)[axis]
    if size % n:
        raise ValueError(f"axis {axis} of an array of shape {_shape(a)} is not divisible into {n} gate blocks")
    h = size // n
    if isinstance(a, torch.Tensor):
        return [a.narrow(axis, k * h, h) for k in range(n)]
    arr = np.asarray(a)
    index: List[Any] = [slice(None)] * arr.ndim
    out: List[Array] = []
    for k in range(n):
        index[axis] = slice(k * h, (k + 1) * h)
        out.append(arr[tuple(index)])
    return out


def _zrh_swap(a: Array, axis: int = 0) -> Array:
    """Swap the first two of three gate blocks along ``axis``: z, r, h <-> r, z, n (a copy)."""
    b = _blocks(a, axis, 3)
    return _concat([b[k] for k in _CANON_FROM_ZRH], axis=axis)


def _kind_of(kind: Any) -> CellKind:
    if isinstance(kind, CellKind):
        return kind
    try:
        return CellKind(str(kind).upper())
    except ValueError:
        raise ValueError(f"expected a cell kind LSTM, GRU or RNN; received {kind!r}") from None


def _check_kind(w: DirectionWeights, kind: CellKind, where: str) -> None:
    if w.kind is not kind:
        raise ValueError(f"{where} expects {kind.value} weights; received {w.kind.value} weights")


# --- the GRU forms ---------------------------------------------------------------------------------


def check_gru_form(source_reset_after: bool, target_reset_after: bool, target: str = "the target") -> None:
    """Refuse a change of GRU form with the reason (raise :class:`UnsupportedLayoutError`).

    ``reset_after=True`` (``r ⊙ (W_hn h + b_hn)``) and ``reset_after=False`` (``W_hn (r ⊙ h) + b_hn``)
    are different functions; no weights of one form reproduce the other in general (they agree only
    when every unit's reset gate is the same, docs/spec/keras_gru_simplernn.md §1.2). ``torch.nn.GRU``,
    MindSpore ``nn.GRU`` and ``CuDNNGRU`` hold only the reset-after form; call this with
    ``target_reset_after=True`` for them.
    """
    if bool(source_reset_after) == bool(target_reset_after):
        return
    src = (
        "reset_after=True (reset applied after the recurrent matmul, b_hn inside r ⊙ (W_hn h + b_hn))"
        if source_reset_after
        else "reset_after=False (reset applied to h before the matmul: W_hn (r ⊙ h))"
    )
    dst = "reset_after=True" if target_reset_after else "reset_after=False"
    raise UnsupportedLayoutError(
        f"cannot express a GRU of the form {src} in {target}, which computes {dst}: the two forms are "
        "different functions and no choice of weights turns one into the other; expected a source of "
        f"the form {dst}"
    )


# --- Keras GRU ------------------------------------------------------------------------------------


def gru_from_keras(
    kernel: Array, recurrent_kernel: Array, bias: Optional[Array] = None, reset_after: bool = True
) -> DirectionWeights:
    """Keras ``GRU`` weights -> canonical GRU weights (of the same form).

    ====================  ========================  ==================================================
    Keras                 shape                     canonical
    ====================  ========================  ==================================================
    ``kernel``            ``(I, 3u)``, z | r | h    ``w_ih = kernel[:, P].T``   (P = r, z, h columns)
    ``recurrent_kernel``  ``(u, 3u)``, z | r | h    ``w_hh = recurrent_kernel[:, P].T``
    ``bias`` (after)      ``(2, 3u)``               ``b_ih = bias[0][P]``, ``b_hh = bias[1][P]``
    ``bias`` (before)     ``(3u,)``                 ``b_ih = bias[P]``, ``b_hh = 0`` (Keras adds it to x·W)
    no bias               –                         ``b_ih = b_hh = None``
    ====================  ========================  ==================================================

    Exact (a permutation and a transpose): ``gru_to_keras`` gives the arrays back bit for bit.

    Raises:
        ValueError: shapes that do not fit (naming the expected and the received shape), e.g. a
            ``(3u,)`` bias with ``reset_after=True``.
    """
    k_shape, r_shape = _shape(kernel), _shape(recurrent_kernel)
    if len(r_shape) != 2 or r_shape[1] != 3 * r_shape[0]:
        raise ValueError(f"Keras GRU recurrent_kernel must be (units, 3*units); received shape {r_shape}")
    u = r_shape[0]
    if len(k_shape) != 2 or k_shape[1] != 3 * u:
        raise ValueError(f"Keras GRU kernel must be (input_dim, {3 * u}); received shape {k_shape}")
    b_ih = b_hh = None
    if bias is not None:
        expected = (2, 3 * u) if reset_after else (3 * u,)
        if _shape(bias) != expected:
            raise ValueError(
                f"Keras GRU bias with reset_after={bool(reset_after)} must be {expected}; received "
                f"shape {_shape(bias)}"
                + (" (a (2, 3u) bias belongs to reset_after=True, a (3u,) one to reset_after=False)")
            )
        if reset_after:
            b_ih, b_hh = _zrh_swap(bias[0]), _zrh_swap(bias[1])
        else:
            b_ih = _zrh_swap(bias)
            b_hh = _zeros_like(b_ih)
    w_ih = _transpose(_zrh_swap(kernel, axis=1))
    w_hh = _transpose(_zrh_swap(recurrent_kernel, axis=1))
    return DirectionWeights(w_ih, w_hh, b_ih, b_hh, CellKind.GRU)


def gru_to_keras(w: DirectionWeights, reset_after: bool = True) -> List[Array]:
    """Canonical GRU weights of the form ``reset_after`` -> Keras ``[kernel, recurrent_kernel(, bias)]``.

    ``reset_after=True``: ``bias (2, 3u)`` = ``[b_ih, b_hh]`` permuted to z, r, h (exact; missing halves
    are zeros). ``reset_after=False``: ``bias (3u,)`` = ``b_ih + b_hh`` permuted: in the reset-before form
    every recurrent bias, ``b_hn`` included, adds to the input bias (ONNX ``linear_before_reset=0``), so the
    fold is exact in real arithmetic and bit-exact when ``b_hh`` is 0 (anything read from Keras). No bias
    entry when the weights have none. The weights must already be of the form asked for: call
    :func:`check_gru_form` first when they come from a reset-after source (PyTorch, MindSpore, cuDNN).
    """
    _check_kind(w, CellKind.GRU, "gru_to_keras")
    out = [_zrh_swap(_transpose(w.w_ih), axis=1), _zrh_swap(_transpose(w.w_hh), axis=1)]
    if not w.has_bias:
        return out
    if reset_after:
        either: Any = w.b_ih if w.b_ih is not None else w.b_hh
        b_ih = w.b_ih if w.b_ih is not None else _zeros_like(either)
        b_hh = w.b_hh if w.b_hh is not None else _zeros_like(either)
        out.append(_stack([_zrh_swap(b_ih), _zrh_swap(b_hh)]))
    else:
        bias = w.bias_sum()
        assert bias is not None  # has_bias
        out.append(_zrh_swap(bias))
    return out


# --- Keras SimpleRNN ------------------------------------------------------------------------------


def rnn_from_keras(kernel: Array, recurrent_kernel: Array, bias: Optional[Array] = None) -> DirectionWeights:
    """Keras ``SimpleRNN`` ``kernel (I, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)`` -> canonical RNN
    weights: ``w_ih = kernel.T``, ``w_hh = recurrent_kernel.T``, ``b_ih = bias``, ``b_hh = 0`` (Keras adds
    its bias to ``x·W`` before ``h·U``). Exact."""
    k_shape, r_shape = _shape(kernel), _shape(recurrent_kernel)
    if len(r_shape) != 2 or r_shape[0] != r_shape[1]:
        raise ValueError(f"Keras SimpleRNN recurrent_kernel must be (units, units); received shape {r_shape}")
    u = r_shape[0]
    if len(k_shape) != 2 or k_shape[1] != u:
        raise ValueError(f"Keras SimpleRNN kernel must be (input_dim, {u}); received shape {k_shape}")
    if bias is not None and _shape(bias) != (u,):
        raise ValueError(f"Keras SimpleRNN bias must be ({u},); received shape {_shape(bias)}")
    b_ih = _copy(bias) if bias is not None else None
    b_hh = _zeros_like(bias) if bias is not None else None
    return DirectionWeights(_transpose(kernel), _transpose(recurrent_kernel), b_ih, b_hh, CellKind.RNN)


def rnn_to_keras(w: DirectionWeights) -> List[Array]:
    """Canonical RNN weights -> Keras ``[kernel (I, u), recurrent_kernel (u, u)(, bias (u,))]``;
    ``bias = b_ih + b_hh`` (exact in real arithmetic: both add outside the activation; bit-exact when
    one half is 0)."""
    _check_kind(w, CellKind.RNN, "rnn_to_keras")
    out = [_transpose(w.w_ih), _transpose(w.w_hh)]
    bias = w.bias_sum()
    if bias is not None:
        out.append(bias)
    return out


# --- PyTorch / MindSpore state dicts (any gate count) ---------------------------------------------


def recurrent_to_torch_state_dict(layers: Sequence[Sequence[DirectionWeights]], prefix: str = "") -> Dict[str, Array]:
    """Canonical ``layers[l][d]`` (d = 0 forward, 1 reverse; any one cell kind) -> a ``torch.nn.GRU`` /
    ``RNN`` / ``LSTM`` = MindSpore ``nn.GRU`` / ``RNN`` / ``LSTM`` state dict.

    Keys ``prefix + weight_ih_l{k}[_reverse]`` ``(G·H, in)``, ``weight_hh_…`` ``(G·H, H)``, ``bias_ih_…``,
    ``bias_hh_…`` ``(G·H,)``, in MindSpore's ``parameters_and_names`` order (all ``weight_ih``, all
    ``weight_hh``, all ``bias_ih``, all ``bias_hh``; each ``l0, l0_reverse, l1, …``). The canonical layout
    is the torch one, so this is copying; a missing bias half becomes zeros. For a GRU the weights must
    be of the reset-after form (the only one these modules compute; see :func:`check_gru_form`).
    """
    if not layers or not layers[0]:
        raise ValueError("recurrent_to_torch_state_dict needs at least one layer with one direction")
    kind = layers[0][0].kind
    has_bias = layers[0][0].has_bias
    groups: Dict[str, Dict[str, Array]] = {"weight_ih": {}, "weight_hh": {}, "bias_ih": {}, "bias_hh": {}}
    for l, dirs in enumerate(layers):
        if len(dirs) not in (1, 2):
            raise ValueError(f"layer {l} must have 1 or 2 directions; received {len(dirs)}")
        for d, w in enumerate(dirs):
            if w.kind is not kind:
                raise ValueError(
                    f"all layers must hold one cell kind; layer 0 is {kind.value}, layer {l} "
                    f"direction {d} is {w.kind.value}"
                )
            if w.has_bias != has_bias:
                raise ValueError("all (layer, direction) weights must agree on having biases")
            suffix = f"_l{l}" + ("_reverse" if d else "")
            groups["weight_ih"][f"weight_ih{suffix}"] = _copy(w.w_ih)
            groups["weight_hh"][f"weight_hh{suffix}"] = _copy(w.w_hh)
            if has_bias:
                either: Any = w.b_ih if w.b_ih is not None else w.b_hh
                for name, b in (("bias_ih", w.b_ih), ("bias_hh", w.b_hh)):
                    groups[name][f"{name}{suffix}"] = _copy(b) if b is not None else _zeros_like(either)
    return {prefix + k: v for g in groups.values() for k, v in g.items()}


_TORCH_KEY = re.compile(r"^(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_KIND_BY_GATES = {1: CellKind.RNN, 3: CellKind.GRU, 4: CellKind.LSTM}


def recurrent_from_torch_state_dict(
    state: Mapping[str, Array], kind: Any = None, prefix: str = ""
) -> List[List[DirectionWeights]]:
    """A ``torch.nn.GRU`` / ``RNN`` / ``LSTM`` (= MindSpore 2.x ``nn.GRU`` / ``RNN`` / ``LSTM``) state dict
    -> canonical ``layers[l][d]`` of ``kind``.

    ``kind``: ``CellKind`` or its name (``"GRU"``, ``"RNN"``, ``"LSTM"``); ``None`` infers it from
    ``weight_hh_l0``'s rows / columns (G = 1, 3 or 4) — pass it when you know it. Strict: layers
    numbered 0..L-1 without gaps, the same directions in every layer, and no foreign keys.

    Raises:
        ValueError: missing or unexpected keys, or shapes that do not fit the kind, naming them.
    """
    found: Dict[Tuple[int, int], Dict[str, Array]] = {}
    unexpected = []
    for key, value in state.items():
        m = _TORCH_KEY.match(key[len(prefix) :]) if key.startswith(prefix) else None
        if m is None:
            unexpected.append(key)
            continue
        found.setdefault((int(m.group("layer")), 1 if m.group("rev") else 0), {})[m.group("kind")] = value
    if unexpected:
        raise ValueError(
            f"unexpected keys for a recurrent state dict with prefix {prefix!r}: {unexpected}; "
            "expected weight_ih_l{k}[_reverse], weight_hh_…, bias_ih_…, bias_hh_…"
        )
    if not found:
        raise ValueError(f"no recurrent weights (weight_ih_l0, ...) with prefix {prefix!r} in the state dict")
    if kind is None:
        first = found.get((0, 0), {}).get("weight_hh")
        if first is None:
            raise ValueError(f"missing key {prefix}weight_hh_l0 in the recurrent state dict")
        rows, cols = _shape(first)
        if cols == 0 or rows % cols or rows // cols not in _KIND_BY_GATES:
            raise ValueError(
                f"{prefix}weight_hh_l0 must be (G*H, H) with G = 1 (RNN), 3 (GRU) or 4 (LSTM); "
                f"received shape {(rows, cols)}"
            )
        cell = _KIND_BY_GATES[rows // cols]
    else:
        cell = _kind_of(kind)
    return directions_from_groups(found, prefix, cell)


def cell_to_torch_state_dict(w: DirectionWeights, prefix: str = "") -> Dict[str, Array]:
    """Canonical weights of one cell -> a ``torch.nn.GRUCell`` / ``RNNCell`` / ``LSTMCell`` = MindSpore
    ``nn.GRUCell`` / ``RNNCell`` / ``LSTMCell`` state dict: ``weight_ih``, ``weight_hh`` (then ``bias_ih``,
    ``bias_hh`` when the weights have a bias; a missing half becomes zeros). Copies."""
    out: Dict[str, Array] = {prefix + "weight_ih": _copy(w.w_ih), prefix + "weight_hh": _copy(w.w_hh)}
    if w.has_bias:
        either: Any = w.b_ih if w.b_ih is not None else w.b_hh
        for name, b in (("bias_ih", w.b_ih), ("bias_hh", w.b_hh)):
            out[prefix + name] = _copy(b) if b is not None else _zeros_like(either)
    return out


def cell_from_torch_state_dict(state: Mapping[str, Array], kind: Any, prefix: str = "") -> DirectionWeights:
    """A ``torch.nn.GRUCell`` / ``RNNCell`` / ``LSTMCell`` (= MindSpore 2.x cell) state dict (keys
    ``prefix + weight_ih``, ``weight_hh``[, ``bias_ih``, ``bias_hh``]) -> canonical weights of ``kind``
    (``CellKind`` or its name). Strict: any other key is refused, naming it.
    """
    cell = _kind_of(kind)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    found = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix) :] in names}
    unexpected = [k for k in state if not (k.startswith(prefix) and k[len(prefix) :] in names)]
    if unexpected:
        raise ValueError(
            f"unexpected keys for a {cell.value} cell state dict with prefix {prefix!r}: {unexpected}; "
            "expected weight_ih, weight_hh, bias_ih, bias_hh"
        )
    missing = [prefix + n for n in names[:2] if n not in found]
    if missing:
        raise ValueError(f"missing keys {missing} in the {cell.value} cell state dict")
    if ("bias_ih" in found) != ("bias_hh" in found):
        raise ValueError(
            f"{prefix}bias_ih and {prefix}bias_hh must both be present or both absent; found {sorted(found)}"
        )
    try:
        return DirectionWeights(
            _copy(found["weight_ih"]),
            _copy(found["weight_hh"]),
            _copy(found["bias_ih"]) if "bias_ih" in found else None,
            _copy(found["bias_hh"]) if "bias_hh" in found else None,
            cell,
        )
    except ValueError as e:
        raise ValueError(f"{prefix}* ({cell.value} cell): {e}") from None


# --- ONNX -----------------------------------------------------------------------------------------


def _to_onnx(directions: Sequence[DirectionWeights], kind: CellKind, op: str) -> Tuple[Array, Array, Array]:
    if len(directions) not in (1, 2):
        raise ValueError(f"ONNX {op} takes 1 or 2 directions; received {len(directions)}")
    perm = _zrh_swap if kind is CellKind.GRU else _copy
    ws, rs, bs = [], [], []
    for w in directions:
        _check_kind(w, kind, f"ONNX {op}")
        ws.append(perm(w.w_ih))
        rs.append(perm(w.w_hh))
        zero = _zeros_like(w.w_hh[:, 0])
        b_ih = w.b_ih if w.b_ih is not None else zero
        b_hh = w.b_hh if w.b_hh is not None else zero
        bs.append(_concat([perm(b_ih), perm(b_hh)]))
    return _stack(ws), _stack(rs), _stack(bs)


def _from_onnx(W: Array, R: Array, B: Optional[Array], kind: CellKind, op: str) -> List[DirectionWeights]:
    g = kind.gate_count
    w_shape, r_shape = _shape(W), _shape(R)
    if len(r_shape) != 3 or r_shape[1] != g * r_shape[2]:
        raise ValueError(f"ONNX {op} R must be [D, {g if g > 1 else ''}H, H]; received shape {r_shape}")
    d, gh, _ = r_shape
    if len(w_shape) != 3 or w_shape[:2] != (d, gh):
        raise ValueError(f"ONNX {op} W must be [{d}, {gh}, I]; received shape {w_shape}")
    if B is not None and _shape(B) != (d, 2 * gh):
        raise ValueError(f"ONNX {op} B must be [{d}, {2 * gh}]; received shape {_shape(B)}")
    perm = _zrh_swap if kind is CellKind.GRU else _copy
    out = []
    for k in range(d):
        b_ih = b_hh = None
        if B is not None:
            b_ih, b_hh = perm(B[k][:gh]), perm(B[k][gh:])
        out.append(DirectionWeights(perm(W[k]), perm(R[k]), b_ih, b_hh, kind))
    return out


def gru_to_onnx(directions: Sequence[DirectionWeights]) -> Tuple[Array, Array, Array]:
    """Canonical GRU directions of one layer (forward[, reverse]) -> ONNX ``GRU`` inputs ``W [D, 3H, I]``,
    ``R [D, 3H, H]``, ``B [D, 6H]`` (= ``Wb ‖ Rb``), gate order **z, r, h**. Exact (a permutation);
    missing biases become zeros (ONNX's default).

    The arrays are the same for both forms; the node's attribute says which: ``linear_before_reset=1``
    for reset-after weights (PyTorch, MindSpore, Keras ``reset_after=True``), ``0`` for reset-before ones
    (Keras ``reset_after=False``, whose folded bias sits in ``Wb`` with ``Rb = 0``)."""
    return _to_onnx(directions, CellKind.GRU, "GRU")


def gru_from_onnx(W: Array, R: Array, B: Optional[Array] = None) -> List[DirectionWeights]:
    """ONNX ``GRU`` ``W [D, 3H, I]``, ``R [D, 3H, H]``, ``B [D, 6H]`` (z, r, h; ``Wb ‖ Rb``) -> canonical
    directions ``[forward(, reverse)]`` of the form the node's ``linear_before_reset`` names (1 ->
    reset-after, 0 -> reset-before, where ``Rb_h`` adds outside ``r``). Exact."""
    return _from_onnx(W, R, B, CellKind.GRU, "GRU")


def rnn_to_onnx(directions: Sequence[DirectionWeights]) -> Tuple[Array, Array, Array]:
    """Canonical RNN directions -> ONNX ``RNN`` ``W [D, H, I]``, ``R [D, H, H]``, ``B [D, 2H]``
    (= ``Wb ‖ Rb``; zeros when absent). Exact (copies). The activation is the node's attribute
    (``activations=["Tanh"]`` default, ``"Relu"`` for ``nonlinearity="relu"``)."""
    return _to_onnx(directions, CellKind.RNN, "RNN")


def rnn_from_onnx(W: Array, R: Array, B: Optional[Array] = None) -> List[DirectionWeights]:
    """ONNX ``RNN`` ``W [D, H, I]``, ``R [D, H, H]``, ``B [D, 2H]`` -> canonical RNN directions. Exact."""
    return _from_onnx(W, R, B, CellKind.RNN, "RNN")


# --- legacy readers -------------------------------------------------------------------------------


def gru_from_cudnn(kernel: Array, recurrent_kernel: Array, bias: Array) -> DirectionWeights:
    """TF 1.x ``CuDNNGRU`` (``tf.compat.v1.keras.layers.CuDNNGRU``) weights -> canonical, reset-after form.

    Source-level definition (tf_keras ``layers/rnn/cudnn_gru.py``: the layer hands cuDNN, with
    ``canonical_to_params(..., transpose_weights=False)``, each stored block flattened in C order):

    =====================  ==============  =====================================================
    CuDNNGRU               shape           canonical (P = r, z, h blocks of the stored z, r, h)
    =====================  ==============  =====================================================
    ``kernel``             ``(I, 3u)``     block g of ``w_ih`` = ``kernel[:, g].reshape(u, I)``
    ``recurrent_kernel``   ``(u, 3u)``     block g of ``w_hh`` = ``recurrent_kernel[:, g]`` as is
    ``bias[:3u]``          ``(6u,)``       ``b_ih`` = ``bias[:3u][P]``  (cuDNN's input biases)
    ``bias[3u:]``                          ``b_hh`` = ``bias[3u:][P]``  (recurrent; inside r ⊙ (…))
    =====================  ==============  =====================================================

    The same as tf_keras's legacy HDF5 loader (``_convert_rnn_weights``: kernel blocks
    ``k.T.reshape(k.shape, order="F")``, recurrent blocks ``k.T``, bias reshaped to ``(2, 3u)``) followed by
    :func:`gru_from_keras` with ``reset_after=True``. Exact (a reshuffle).
    """
    k_shape, r_shape, b_shape = _shape(kernel), _shape(recurrent_kernel), _shape(bias)
    if len(r_shape) != 2 or r_shape[1] != 3 * r_shape[0]:
        raise ValueError(f"CuDNNGRU recurrent_kernel must be (units, 3*units); received shape {r_shape}")
    u = r_shape[0]
    if len(k_shape) != 2 or k_shape[1] != 3 * u:
        raise ValueError(f"CuDNNGRU kernel must be (input_dim, {3 * u}); received shape {k_shape}")
    if b_shape != (6 * u,):
        raise ValueError(
            f"CuDNNGRU bias must be (6*units,) = ({6 * u},); received shape {b_shape}"
            + (" (that is a Keras GRU bias, not a CuDNNGRU one)" if b_shape in ((2, 3 * u), (3 * u,)) else "")
        )
    i_dim = k_shape[0]
    k_blocks = _blocks(kernel, 1, 3)
    r_blocks = _blocks(recurrent_kernel, 1, 3)
    w_ih = _concat([k_blocks[g].reshape(u, i_dim) for g in _CANON_FROM_ZRH])
    w_hh = _concat([_copy(r_blocks[g]) for g in _CANON_FROM_ZRH])
    if isinstance(w_ih, torch.Tensor) and isinstance(w_hh, torch.Tensor):
        w_ih, w_hh = w_ih.contiguous(), w_hh.contiguous()
    else:
        w_ih, w_hh = np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh)
    b_ih, b_hh = _zrh_swap(bias[: 3 * u]), _zrh_swap(bias[3 * u :])
    return DirectionWeights(w_ih, w_hh, b_ih, b_hh, CellKind.GRU)


def gru_from_keras1(arrays: Sequence[Array]) -> DirectionWeights:
    """Keras 1 ``GRU`` weights (9 arrays ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h``, each ``W (I, u)``,
    ``U (u, u)``, ``b (u,)``) -> canonical, **reset-before** form (Keras 1's GRU applies r to h before the
    matmul). The tf_keras legacy loader concatenates them into a Keras 2 ``GRU(reset_after=False)``
    (``saving/legacy/hdf5_format.py``, ``original_keras_version == "1"``); so does this. Exact."""
    if len(arrays) != 9:
        raise ValueError(f"a Keras 1 GRU has 9 weight arrays (W, U, b for gates z, r, h); received {len(arrays)}")
    kernel = _concat([arrays[0], arrays[3], arrays[6]], axis=1)
    rec = _concat([arrays[1], arrays[4], arrays[7]], axis=1)
    bias = _concat([arrays[2], arrays[5], arrays[8]], axis=0)
    return gru_from_keras(kernel, rec, bias, reset_after=False)


# --- TF 1.x graph-mode cells (tf.compat.v1.nn.rnn_cell) ----------------------------------------------


def gru_from_tf1(
    gates_kernel: Array, gates_bias: Optional[Array], candidate_kernel: Array, candidate_bias: Optional[Array]
) -> DirectionWeights:
    """TF 1.x ``tf.compat.v1.nn.rnn_cell.GRUCell`` variables -> canonical GRU weights, **reset-before** form.

    The cell computes ``[r, u] = σ([x, h]·gates/kernel + gates/bias)``, ``c = tanh([x, r ⊙ h]·candidate/kernel
    + candidate/bias)``, ``h' = u ⊙ h + (1 − u) ⊙ c`` (tf_keras ``layers/rnn/legacy_cells.py``); its ``u`` is
    the update gate z. With ``H = candidate_kernel.shape[1]`` and ``I = rows − H``:

    ======================  ==========================================================
    TF1                     canonical
    ======================  ==========================================================
    ``gates/kernel``        ``w_ih[r; z] = gates_kernel[:I].T``, ``w_hh[r; z] = gates_kernel[I:].T``
    ``candidate/kernel``    ``w_ih[n] = candidate_kernel[:I].T``, ``w_hh[n] = candidate_kernel[I:].T``
    ``gates/bias``          ``b_ih[r; z]``;  ``candidate/bias``: ``b_ih[n]``; ``b_hh = 0``
    ======================  ==========================================================

    A reshuffle (exact); TF adds ``x`` and ``h`` products in one matmul, the canonical form in two, which
    is the same in real arithmetic. Both biases or neither (``None``) must be given.
    """
    c_shape, g_shape = _shape(candidate_kernel), _shape(gates_kernel)
    if len(c_shape) != 2 or c_shape[0] <= c_shape[1]:
        raise ValueError(f"TF1 GRUCell candidate/kernel must be (input_size + H, H); received shape {c_shape}")
    h = c_shape[1]
    i = c_shape[0] - h
    if g_shape != (i + h, 2 * h):
        raise ValueError(f"TF1 GRUCell gates/kernel must be ({i + h}, {2 * h}); received shape {g_shape}")
    if (gates_bias is None) != (candidate_bias is None):
        raise ValueError("TF1 GRUCell: gates/bias and candidate/bias must both be given or both be None")
    if gates_bias is not None and _shape(gates_bias) != (2 * h,):
        raise ValueError(f"TF1 GRUCell gates/bias must be ({2 * h},); received shape {_shape(gates_bias)}")
    if candidate_bias is not None and _shape(candidate_bias) != (h,):
        raise ValueError(f"TF1 GRUCell candidate/bias must be ({h},); received shape {_shape(candidate_bias)}")
    w_ih = _concat([_transpose(gates_kernel[:i]), _transpose(candidate_kernel[:i])])
    w_hh = _concat([_transpose(gates_kernel[i:]), _transpose(candidate_kernel[i:])])
    b_ih = b_hh = None
    if gates_bias is not None and candidate_bias is not None:
        b_ih = _concat([gates_bias, candidate_bias])
        b_hh = _zeros_like(b_ih)
    return DirectionWeights(w_ih, w_hh, b_ih, b_hh, CellKind.GRU)


def gru_to_tf1(w: DirectionWeights) -> List[Array]:
    """Canonical reset-before GRU weights -> TF1 ``GRUCell`` ``[gates/kernel, gates/bias, candidate/kernel,
    candidate/bias]`` (the inverse of :func:`gru_from_tf1`; biases are ``b_ih + b_hh``, exact in real
    arithmetic in this form, bit-exact when ``b_hh`` is 0; zeros when the weights have none, since the cell
    always has biases). Reset-after weights must be refused first (:func:`check_gru_form`)."""
    _check_kind(w, CellKind.GRU, "gru_to_tf1")
    h = w.hidden_size
    gates_kernel = _concat([_transpose(w.w_ih[: 2 * h]), _transpose(w.w_hh[: 2 * h])])
    candidate_kernel = _concat([_transpose(w.w_ih[2 * h :]), _transpose(w.w_hh[2 * h :])])
    bias = w.bias_sum()
    if bias is None:
        bias = _zeros_like(w.w_hh[:, 0])
    return [gates_kernel, _copy(bias[: 2 * h]), candidate_kernel, _copy(bias[2 * h :])]


def rnn_from_tf1(kernel: Array, bias: Optional[Array], input_size: int) -> DirectionWeights:
    """TF 1.x ``BasicRNNCell`` ``kernel (I+H, H)`` (rows x then h), ``bias (H,)`` -> canonical RNN weights
    (``h' = tanh([x, h]·kernel + bias)``): ``w_ih = kernel[:I].T``, ``w_hh = kernel[I:].T``, ``b_ih = bias``,
    ``b_hh = 0``. ``input_size`` = I (the kernel alone cannot tell I from H). Exact."""
    shape = _shape(kernel)
    h = shape[1] if len(shape) == 2 else -1
    if len(shape) != 2 or shape[0] != input_size + h:
        raise ValueError(
            f"TF1 BasicRNNCell kernel must be (input_size + H, H) = ({input_size} + H, H); received shape {shape}"
        )
    if bias is not None and _shape(bias) != (h,):
        raise ValueError(f"TF1 BasicRNNCell bias must be ({h},); received shape {_shape(bias)}")
    b_ih = _copy(bias) if bias is not None else None
    b_hh = _zeros_like(bias) if bias is not None else None
    return DirectionWeights(_transpose(kernel[:input_size]), _transpose(kernel[input_size:]), b_ih, b_hh, CellKind.RNN)


def rnn_to_tf1(w: DirectionWeights) -> List[Array]:
    """Canonical RNN weights -> TF1 ``BasicRNNCell`` ``[kernel (I+H, H), bias (H,)]`` (``b_ih + b_hh``;
    zeros without bias, since the cell always has one)."""
    _check_kind(w, CellKind.RNN, "rnn_to_tf1")
    bias = w.bias_sum()
    if bias is None:
        bias = _zeros_like(w.w_hh[:, 0])
    return [_concat([_transpose(w.w_ih), _transpose(w.w_hh)]), bias]
