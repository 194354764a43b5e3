"""The recurrent family in files: which cell a layer entry holds, and a Keras GRU / SimpleRNN entry's arrays
as canonical weights (issue 11 item 5).

The cell of an entry (:func:`entry_cell`): ``"LSTM"``, ``"GRU"`` or ``"RNN"`` (the
:class:`~lstm_bridge.recurrent.CellKind` values), or None for a layer that is not recurrent.

==================================  ======  ==================================================================
entry kind (class in the file)       cell    weights (:mod:`lstm_bridge.weights.family` does the permutations)
==================================  ======  ==================================================================
Keras ``LSTM``, ``CuDNNLSTM``        LSTM    :mod:`lstm_bridge.weights.layouts`
Keras ``GRU`` (tf_keras, Keras 3)    GRU     ``kernel (I, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (2, 3u)``
                                             (reset_after=True) or ``(3u,)`` (reset_after=False), z, r, h
TF1 ``CuDNNGRU``                     GRU     ``bias (6u,)``, cuDNN's raw blocks; reset-after, sigmoid/tanh
Keras 1 ``GRU``                      GRU     9 arrays ``W_z, U_z, b_z, ...``; reset-before
Keras ``SimpleRNN``                  RNN     ``kernel (I, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)``
``Bidirectional`` of any of these    its     ``forward/...`` then ``backward/...``
state dict ``weight_ih_l0 ...``      by G    ``weight_hh_l0`` is ``(G·H, H)``: G = 4 LSTM, 3 GRU, 1 RNN
state dict ``weight_ih``, ...        by G    a cell (``LSTMCell``, ``GRUCell``, ``RNNCell``)
==================================  ======  ==================================================================

A Keras GRU's form is its config's ``reset_after``; a config without the key is Keras < 2.1.3 / TF 1.x, whose
GRU is the reset-before form; a weights-only file (no config) says it by its bias shape (``(2, 3u)`` after,
``(3u,)`` before; no bias: Keras's default ``True``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import weights as _w
from ..recurrent import CellKind, DirectionWeights
from ..weights import family as _family

__all__ = [
    "KERAS_CELLS",
    "CELL_CLASSES",
    "entry_cell",
    "keras_inner_class",
    "keras_direction",
    "keras_reset_after",
    "state_dict_cell",
    "cell_entry_kind",
]

#: Keras (and TF1) layer class -> cell kind value
KERAS_CELLS: Dict[str, str] = {
    "LSTM": "LSTM",
    "CuDNNLSTM": "LSTM",
    "LSTMV1": "LSTM",
    "GRU": "GRU",
    "GRUV1": "GRU",
    "CuDNNGRU": "GRU",
    "SimpleRNN": "RNN",
}
#: an entry kind of a state-dict file -> cell kind value (``LSTM``/``GRU``/``RNN`` stacks and their cells)
CELL_CLASSES: Dict[str, str] = {
    "LSTM": "LSTM",
    "GRU": "GRU",
    "RNN": "RNN",
    "SimpleRNN": "RNN",
    "LSTMCell": "LSTM",
    "GRUCell": "GRU",
    "RNNCell": "RNN",
}
_BY_GATES = {4: "LSTM", 3: "GRU", 1: "RNN"}


def keras_inner_class(config: Any) -> Optional[str]:
    """The class name a Bidirectional config wraps (``config["layer"]["class_name"]``), or None."""
    inner = config.get("layer") if isinstance(config, dict) else None
    cls = inner.get("class_name") if isinstance(inner, dict) else None
    return str(cls) if cls is not None else None


def _gates_of(arrays: List[Any]) -> Optional[int]:
    """G of Keras-layout arrays ``kernel, recurrent_kernel(, bias)``: ``recurrent_kernel (u, G·u)``."""
    if len(arrays) < 2:
        return None
    shape = np.shape(arrays[1])
    if len(shape) != 2 or shape[0] == 0 or shape[1] % shape[0]:
        return None
    g = shape[1] // shape[0]
    return g if g in _BY_GATES else None


def entry_cell(entry: Any) -> Optional[str]:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"``: the cell a layer entry holds (a Bidirectional: the wrapped
    layer's, from its config or, in a weights-only file, from the shapes); None when not recurrent."""
    kind = str(entry.kind)
    if kind.startswith("Bidirectional(") and kind.endswith(")"):
        return KERAS_CELLS.get(kind[len("Bidirectional(") : -1])
    if kind == "Bidirectional":
        cls = keras_inner_class(entry.config)
        if cls is not None:
            return KERAS_CELLS.get(cls)
        arrays = list(entry.weights.values())
        g = _gates_of(arrays[: len(arrays) // 2]) if arrays else None
        return _BY_GATES.get(g, "LSTM") if g is not None else "LSTM"
    return KERAS_CELLS.get(kind) or CELL_CLASSES.get(kind)


def keras_reset_after(config: Dict[str, Any], arrays: List[Any], has_config: bool) -> bool:
    """The GRU form of a Keras GRU entry: its config's ``reset_after``; a config without it is Keras < 2.1.3
    / TF 1.x (reset-before); no config at all: the bias shape (``(2, 3u)`` after, ``(3u,)`` before)."""
    if "reset_after" in config:
        return bool(config["reset_after"])
    if has_config:
        return False
    if len(arrays) == 3:
        return np.ndim(arrays[2]) == 2
    return True


def keras_direction(
    cell: str, arrays: List[np.ndarray], reset_after: bool, where: str
) -> Tuple[DirectionWeights, bool]:
    """One direction's Keras arrays -> (canonical weights, the GRU form they hold).

    GRU: ``kernel, recurrent_kernel[, bias]`` (``reset_after`` says the form), a CuDNNGRU ``bias (6u,)``
    (reset-after whatever the config says), or Keras 1's 9 arrays (reset-before). RNN: SimpleRNN's arrays.

    Raises:
        ValueError: arrays of another count or shape, naming ``where``.
    """
    if cell == "LSTM":
        raise ValueError(f"{where}: keras_direction handles GRU and SimpleRNN; LSTM entries go through model.py")
    try:
        if cell == "RNN":
            if len(arrays) not in (2, 3):
                raise ValueError(f"a Keras SimpleRNN has 2 or 3 weight arrays; found {len(arrays)}")
            return _family.rnn_from_keras(*arrays), True
        if len(arrays) == 9:
            return _family.gru_from_keras1(arrays), False
        if is_cudnn_gru(arrays):
            return _family.gru_from_cudnn(arrays[0], arrays[1], arrays[2]), True
        if len(arrays) not in (2, 3):
            raise ValueError(f"a Keras GRU has 2 or 3 weight arrays (9 for Keras 1); found {len(arrays)}")
        bias = arrays[2] if len(arrays) == 3 else None
        return _family.gru_from_keras(arrays[0], arrays[1], bias, reset_after=reset_after), bool(reset_after)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def is_cudnn_gru(arrays: List[Any]) -> bool:
    """A CuDNNGRU's arrays (``bias (6u,)``)."""
    if len(arrays) != 3 or np.ndim(arrays[2]) != 1 or np.ndim(arrays[1]) != 2:
        return False
    return bool(np.shape(arrays[2])[0] == 2 * np.shape(arrays[1])[1])


def state_dict_cell(weights: Dict[str, Any], cell: bool) -> str:
    """The cell kind of a grouped state-dict entry, from ``weight_hh[_l0]`` ``(G·H, H)``: ``"GRU"`` for G = 3,
    ``"RNN"`` for G = 1, else ``"LSTM"`` (G = 4, and anything malformed: the LSTM codec then says what is
    wrong with it, naming the keys)."""
    w = weights.get("weight_hh" if cell else "weight_hh_l0")
    shape: Tuple[int, ...] = tuple(np.shape(w)) if w is not None else ()
    if len(shape) != 2 or shape[1] == 0 or shape[0] % shape[1]:
        return "LSTM"
    return _BY_GATES.get(shape[0] // shape[1], "LSTM")


def cell_entry_kind(cell: str, is_cell: bool) -> str:
    """The entry kind of a state-dict entry of ``cell``: ``LSTM``/``GRU``/``RNN``, or ``<kind>Cell``."""
    return f"{cell}Cell" if is_cell else cell


def torch_layers(weights: Dict[str, Any], cell: str) -> List[List[DirectionWeights]]:
    """A grouped state-dict entry's canonical ``layers[l][d]`` (LSTM, GRU or RNN)."""
    if cell == "LSTM":
        return _w.from_torch_state_dict(weights)
    return _family.recurrent_from_torch_state_dict(weights, CellKind(cell))


def torch_cell(weights: Dict[str, Any], cell: str) -> DirectionWeights:
    """A grouped state-dict cell entry's canonical weights."""
    if cell == "LSTM":
        return _w.LSTMWeights(
            weights["weight_ih"], weights["weight_hh"], weights.get("bias_ih"), weights.get("bias_hh")
        )
    return _family.cell_from_torch_state_dict(weights, CellKind(cell))
