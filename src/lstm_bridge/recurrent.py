"""The one typed description of a recurrent layer: cell kind, canonical weights, semantics.

Everything else in the package (the engine, both front ends, :mod:`lstm_bridge.weights`,
:mod:`lstm_bridge.formats`, :mod:`lstm_bridge.convert`, :mod:`lstm_bridge.targets`,
:mod:`lstm_bridge.explain`) speaks in these types. This module imports nothing from the rest of the
package but :mod:`lstm_bridge.activations` (the other half of the vocabulary).

Cell kinds (:class:`CellKind`) and their canonical gate blocks along the ``G*H`` axis (PyTorch order):

========  ===  ==============  ====================================================================
kind      G    gate order      one step (column convention)
========  ===  ==============  ====================================================================
LSTM      4    i, f, g, o      ``i,f,o = σ(z_i,f,o); g = φ_g(z_g); c' = f*c + i*g; h' = o*φ_c(c')``
GRU       3    r, z, n         ``r,z = σ(..); n = φ(W_in x + b_in + r*(W_hn h + b_hn)); h' = (1-z)*n + z*h``
RNN       1    (one block)     ``h' = φ(W_ih x + b_ih + W_hh h + b_hh)``
========  ===  ==============  ====================================================================

The engine runs all three kinds (GRU and RNN on its pure-torch path,
:mod:`lstm_bridge.engine.family_torch`); one call takes weights of one kind only.

Canonical weights (one :class:`DirectionWeights` per layer and direction):

=========  ===========  ==========================================
name       shape        meaning
=========  ===========  ==========================================
``w_ih``   ``(G*H, I)`` input projection (PyTorch/MindSpore layout)
``w_hh``   ``(G*H, H)`` recurrent projection
``b_ih``   ``(G*H,)``   input bias, or ``None``
``b_hh``   ``(G*H,)``   recurrent bias, or ``None`` (a Keras bias is ``b_ih``)
=========  ===========  ==========================================

One LSTM step (σ = ``gate``, φ_g = ``candidate``, φ_c = ``cell`` activation)::

    z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          split into z_i, z_f, z_g, z_o
    i, f, o = σ(z_i), σ(z_f), σ(z_o);   g = φ_g(z_g)
    c_t = f * c_{t-1} + i * g;          h_t = o * φ_c(c_t)

Masked steps (``valid[t, b] == False``) leave the state unchanged; the step's output is either the
previous output in processing order (``MaskedOutput.CARRY``, Keras; the first "previous" is 0) or 0
(``MaskedOutput.ZERO``, Keras ``zero_output_for_mask`` and MindSpore ``seq_length``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch

from . import activations as _act

Tensor = torch.Tensor
_Dtype = torch.dtype  # (inside DirectionWeights the name ``torch`` is its method)
#: a weight array: NumPy or torch (one :class:`DirectionWeights` never mixes them)
Array = Union[np.ndarray, torch.Tensor]

__all__ = [
    "Array",
    "CellActivations",
    "CellKind",
    "DirectionWeights",
    "DropoutMasks",
    "LayerSemantics",
    "MaskedOutput",
    "RecurrentLayer",
]


class CellKind(enum.Enum):
    """The recurrent cell of a layer; :attr:`gate_count` is ``G``, the number of ``H``-blocks of its weights."""

    LSTM = "LSTM"  # 4 blocks: i, f, g, o
    GRU = "GRU"  # 3 blocks: r, z, n (PyTorch order)
    RNN = "RNN"  # 1 block (Keras SimpleRNN, MindSpore/PyTorch RNN)

    @property
    def gate_count(self) -> int:
        """``G``: 4 for LSTM, 3 for GRU, 1 for RNN."""
        return _GATE_COUNT[self]

    @property
    def gates(self) -> Tuple[str, ...]:
        """The canonical gate order along the ``G*H`` axis (``()`` names no blocks for RNN)."""
        return _GATES[self]


_GATE_COUNT = {CellKind.LSTM: 4, CellKind.GRU: 3, CellKind.RNN: 1}
_GATES = {CellKind.LSTM: ("i", "f", "g", "o"), CellKind.GRU: ("r", "z", "n"), CellKind.RNN: ()}


class MaskedOutput(enum.Enum):
    """What a masked step emits."""

    CARRY = "carry"  # the previous output in processing order (0 before the first valid step)
    ZERO = "zero"  # exact zeros


@dataclass(frozen=True)
class CellActivations:
    """Activations of one cell: ``gate`` for i, f, o (GRU: r, z); ``candidate`` for g (GRU: n; RNN: the
    one activation); ``cell`` for φ(c_t) (LSTM only)."""

    gate: Callable[[Tensor], Tensor] = _act.sigmoid
    candidate: Callable[[Tensor], Tensor] = _act.tanh
    cell: Callable[[Tensor], Tensor] = _act.tanh

    @property
    def is_standard(self) -> bool:
        """True for exact sigmoid / tanh / tanh: what ``torch.nn.LSTM`` computes."""
        return _act.is_exact_sigmoid(self.gate) and _act.is_exact_tanh(self.candidate) and _act.is_exact_tanh(self.cell)


# --- small helpers that work for NumPy and torch alike -------------------------------------------


def _is_torch(a: Any) -> bool:
    return isinstance(a, torch.Tensor)


def _shape(a: Any) -> Tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def _copy(a: Any) -> Array:
    return a.clone() if isinstance(a, torch.Tensor) else np.array(a, copy=True)


def _blocks(g: int) -> str:
    return "H" if g == 1 else f"{g}H"


@dataclass
class DirectionWeights:
    """Canonical weights of one (layer, direction) of a ``kind`` cell; see the module docstring.

    Attributes:
        w_ih: ``(G*H, I)`` input projection.
        w_hh: ``(G*H, H)`` recurrent projection.
        b_ih: ``(G*H,)`` input bias, or ``None`` (no bias at all when both are None).
        b_hh: ``(G*H,)`` recurrent bias, or ``None``. A Keras bias is held as ``b_ih`` with ``b_hh = 0``.
        kind: the cell (``G`` = ``kind.gate_count``; gate order i, f, g, o for LSTM).

    Arrays are NumPy or torch (not mixed); :meth:`validate` checks shapes and is called on construction.
    ``weights.LSTMWeights`` and ``engine.DirectionWeights`` are this class.
    """

    w_ih: Any
    w_hh: Any
    b_ih: Optional[Any] = None
    b_hh: Optional[Any] = None
    kind: CellKind = CellKind.LSTM

    def __post_init__(self) -> None:
        self.validate()

    @property
    def hidden_size(self) -> int:
        """H."""
        h: int = self.w_hh.shape[1]
        return h

    @property
    def input_size(self) -> int:
        """I."""
        i: int = self.w_ih.shape[1]
        return i

    @property
    def has_bias(self) -> bool:
        return self.b_ih is not None or self.b_hh is not None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the expected and received shapes when they do not fit together, and
        ``TypeError`` for a mix of NumPy and torch arrays."""
        g = _GATE_COUNT[self.kind]
        hh = tuple(self.w_hh.shape)
        if len(hh) != 2 or hh[0] != g * hh[1]:
            raise ValueError(f"w_hh must be ({_blocks(g)}, H); received shape {_shape(self.w_hh)}")
        gh = g * hh[1]
        ih = tuple(self.w_ih.shape)
        if len(ih) != 2 or ih[0] != gh:
            raise ValueError(f"w_ih must be ({_blocks(g)}, I) = ({gh}, I); received shape {_shape(self.w_ih)}")
        torch_in = isinstance(self.w_ih, torch.Tensor)
        for name, b in (("b_ih", self.b_ih), ("b_hh", self.b_hh)):
            if b is not None:
                if tuple(b.shape) != (gh,):
                    raise ValueError(f"{name} must be ({_blocks(g)},) = ({gh},); received shape {_shape(b)}")
                if isinstance(b, torch.Tensor) != torch_in:
                    self._mixed()
        if isinstance(self.w_hh, torch.Tensor) != torch_in:
            self._mixed()

    def _mixed(self) -> None:
        raise TypeError(
            f"{self.kind.value} weight arrays (w_ih, w_hh, b_ih, b_hh) must all be NumPy or all be "
            "torch tensors; received a mix"
        )

    def bias_sum(self) -> Optional[Array]:
        """``b_ih + b_hh`` (the one Keras/ONNX-free bias), or None without bias."""
        if self.b_ih is None and self.b_hh is None:
            return None
        # An all-zero half is skipped rather than added so that -0.0 entries survive bit-exactly.
        if self.b_hh is None or not bool((self.b_hh != 0).any()):
            only = self.b_ih if self.b_ih is not None else self.b_hh
            return _copy(only)
        if self.b_ih is None or not bool((self.b_ih != 0).any()):
            return _copy(self.b_hh)
        if _is_torch(self.b_ih) and self.b_ih.dtype in (torch.float16, torch.bfloat16):
            return self.b_ih.float() + self.b_hh.float()  # a float16 sum would lose up to ~1 ulp of 1e-3
        if not _is_torch(self.b_ih) and np.asarray(self.b_ih).dtype == np.float16:
            return self.b_ih.astype(np.float32) + self.b_hh.astype(np.float32)
        return self.b_ih + self.b_hh

    def _arrays(self) -> Tuple[Any, Any, Any, Any]:
        return self.w_ih, self.w_hh, self.b_ih, self.b_hh

    def numpy(self) -> DirectionWeights:
        """A copy with NumPy arrays."""

        def conv(a: Any) -> Any:
            if a is None:
                return None
            return a.detach().cpu().numpy().copy() if _is_torch(a) else np.array(a, copy=True)

        w_ih, w_hh, b_ih, b_hh = (conv(a) for a in self._arrays())
        return DirectionWeights(w_ih, w_hh, b_ih, b_hh, self.kind)

    def torch(self, dtype: Optional[_Dtype] = None) -> DirectionWeights:
        """A copy with torch tensors (optionally cast to ``dtype``)."""

        def conv(a: Any) -> Any:
            if a is None:
                return None
            t = a.detach().clone() if _is_torch(a) else torch.from_numpy(np.array(a, copy=True))
            return t.to(dtype) if dtype is not None else t

        w_ih, w_hh, b_ih, b_hh = (conv(a) for a in self._arrays())
        return DirectionWeights(w_ih, w_hh, b_ih, b_hh, self.kind)

    def to(self, dtype: _Dtype) -> DirectionWeights:
        """The same torch tensors cast to ``dtype`` (no copy where they already have it): what a runner
        feeds the engine. The arrays must be torch tensors."""

        def conv(a: Any) -> Any:
            return None if a is None else a.to(dtype)

        w_ih, w_hh, b_ih, b_hh = (conv(a) for a in self._arrays())
        return DirectionWeights(w_ih, w_hh, b_ih, b_hh, self.kind)

    def equal(self, other: DirectionWeights) -> bool:
        """Bit-exact equality of the kind and every array (shape, dtype and values)."""
        if self.kind is not other.kind:
            return False
        a, b = self.numpy(), other.numpy()
        for x, y in zip(a._arrays(), b._arrays()):
            if (x is None) != (y is None):
                return False
            if x is not None and (x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes()):
                return False
        return True


@dataclass
class DropoutMasks:
    """Multiplicative dropout masks (already scaled by 1/(1-rate)), reused at every time step.

    ``inputs``: ``(G, B, I)`` applied to x_t; ``recurrent``: ``(G, B, H)`` applied to h_{t-1}.
    ``G`` is 1 (one mask shared by every gate) or the kind's gate count, one per gate in canonical
    order: 4 (i, f, g, o) for LSTM, 3 (r, z, n) for GRU; 1 only for RNN. Either may be ``None``.
    """

    inputs: Optional[Tensor] = None
    recurrent: Optional[Tensor] = None

    def is_empty(self) -> bool:
        return self.inputs is None and self.recurrent is None


@dataclass(frozen=True)
class LayerSemantics:
    """How one (bi)directional layer runs on the engine, apart from its weights and inputs.

    ``activations``: LSTM as :class:`CellActivations`; GRU: ``gate`` = r/z, ``candidate`` = n; RNN:
    ``candidate`` = its one activation. ``reset_after`` (GRU only): the reset gate multiplies
    ``W_hn h + b_hn`` (True: PyTorch, MindSpore, Keras TF2) or ``h`` before the product (False: Keras
    <= 2.3 / TF 1.x). ``mindspore_cpu`` (GRU/RNN only): MindSpore 2.10's CPU op order (each bias on its own
    product, ``h' = n + z * (h - n)``; within ~5e-7 of MindSpore with its emulated activations).
    ``mindspore_matmul`` (with ``mindspore_cpu``): also MindSpore's MatMul summation order
    (``family_torch``'s ``ms_matmul=True``): bit for bit with MindSpore for float32 and a batch >= 2, but
    ~20-70x slower than torch's GEMM. The activations stay those of ``activations``.
    """

    activations: CellActivations = CellActivations()
    masked_output: MaskedOutput = MaskedOutput.CARRY
    # Keep the bits of a framework that computes exactly-standard layers with oneDNN's LSTM primitive in its
    # training kind (MindSpore's fused CPU path, in inference too): such float32 layers then always take
    # oneDNN (torch.lstm, under grad mode, which selects that kind), never the native kernel.
    onednn_bits: bool = False
    reset_after: bool = True
    mindspore_cpu: bool = False
    mindspore_matmul: bool = False


@dataclass
class RecurrentLayer:
    """One (bi)directional recurrent layer with the semantics it runs with (a converter chain's layer).

    Attributes:
        name: the layer's name (for messages and pairing).
        directions: canonical weights per direction, forward first (:class:`DirectionWeights`).
        reverse: per direction, whether it runs from the last step to the first.
        gate, candidate: resolved activation names (:func:`lstm_bridge.activations.by_name`);
            ``candidate`` is also the cell-output activation.
        processing_order: a Keras ``go_backwards`` layer returns its sequence in processing order
            (not flipped back).
        merge_mode: how two directions combine (``concat``, ``sum``, ``mul``, ``ave`` or ``None``).
        return_sequences: the whole sequence (else the last processed step).
        zero_output_for_mask: masked steps emit 0 instead of repeating the previous output (Keras
            ``zero_output_for_mask``; MindSpore ``seq_length`` always emits 0): :attr:`masked_output`.
        kind: the cell kind (every direction's weights have it).
        stateful: Keras ``stateful`` (states carried between calls).
        keras_version: the Keras generation whose names were used (2 or 3); None for MindSpore / PyTorch.
        reset_after: the GRU form (ignored for other kinds); see :class:`LayerSemantics`.
    """

    name: str
    directions: List[DirectionWeights]
    reverse: List[bool]
    gate: str = "sigmoid"
    candidate: str = "tanh"
    processing_order: bool = False
    merge_mode: Optional[str] = "concat"
    return_sequences: bool = True
    zero_output_for_mask: bool = False
    kind: CellKind = CellKind.LSTM
    stateful: bool = False
    keras_version: Optional[int] = None
    reset_after: bool = True

    @property
    def hidden_size(self) -> int:
        return self.directions[0].hidden_size

    @property
    def input_size(self) -> int:
        return self.directions[0].input_size

    @property
    def output_size(self) -> int:
        D = len(self.directions)
        return D * self.hidden_size if (self.merge_mode == "concat" and D == 2) else self.hidden_size

    @property
    def masked_output(self) -> MaskedOutput:
        """The layer's own masked-step rule: ZERO with ``zero_output_for_mask``, else CARRY."""
        return MaskedOutput.ZERO if self.zero_output_for_mask else MaskedOutput.CARRY

    def activations(self) -> CellActivations:
        """The named activations resolved (the candidate is also the cell activation)."""
        cand = _act.by_name(self.candidate)
        return CellActivations(gate=_act.by_name(self.gate), candidate=cand, cell=cand)

    def semantics(self, masked_output: Optional[MaskedOutput] = None) -> LayerSemantics:
        """The engine's :class:`LayerSemantics` of this layer; ``masked_output`` overrides the layer's own
        rule (a MindSpore-convention runner always writes zeros at padded steps)."""
        return LayerSemantics(
            self.activations(),
            self.masked_output if masked_output is None else masked_output,
            reset_after=self.reset_after,
        )
