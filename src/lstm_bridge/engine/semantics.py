"""The engine's vocabulary: canonical weights and the semantics of one LSTM layer.

Canonical weights (one :class:`DirectionWeights` per layer and direction), gate order **i, f, g, o**
along the ``4H`` axis:

=========  ===========  ==========================================
name       shape        meaning
=========  ===========  ==========================================
``w_ih``   ``(4H, I)``  input projection (PyTorch/MindSpore layout)
``w_hh``   ``(4H, H)``  recurrent projection
``b_ih``   ``(4H,)``    input bias, or ``None``
``b_hh``   ``(4H,)``    recurrent bias, or ``None`` (a Keras bias is ``b_ih``)
=========  ===========  ==========================================

One step (column convention; σ = ``gate``, φ_g = ``candidate``, φ_c = ``cell`` activation)::

    z = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          split into z_i, z_f, z_g, z_o
    i, f, o = σ(z_i), σ(z_f), σ(z_o);   g = φ_g(z_g)
    c_t = f * c_{t-1} + i * g;          h_t = o * φ_c(c_t)

Masked steps (``valid[t, b] == False``) leave (h, c) unchanged; the step's output is either the
previous output in processing order (``MaskedOutput.CARRY``, Keras; the first "previous" is 0) or 0
(``MaskedOutput.ZERO``, Keras ``zero_output_for_mask`` and MindSpore ``seq_length``).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .. import activations as _act

Tensor = torch.Tensor


class MaskedOutput(enum.Enum):
    """What a masked step emits."""

    CARRY = "carry"  # the previous output in processing order (0 before the first valid step)
    ZERO = "zero"  # exact zeros


@dataclass(frozen=True)
class CellActivations:
    """Activations of one LSTM cell: ``gate`` for i, f, o; ``candidate`` for g; ``cell`` for φ(c_t)."""

    gate: Callable[[Tensor], Tensor] = _act.sigmoid
    candidate: Callable[[Tensor], Tensor] = _act.tanh
    cell: Callable[[Tensor], Tensor] = _act.tanh

    @property
    def is_standard(self) -> bool:
        """True for exact sigmoid / tanh / tanh: what ``torch.nn.LSTM`` computes."""
        return (_act.is_exact_sigmoid(self.gate) and _act.is_exact_tanh(self.candidate)
                and _act.is_exact_tanh(self.cell))


@dataclass
class DirectionWeights:
    """Canonical weights of one (layer, direction); see the module docstring for the layout."""

    w_ih: Tensor
    w_hh: Tensor
    b_ih: Optional[Tensor] = None
    b_hh: Optional[Tensor] = None

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]


@dataclass
class DropoutMasks:
    """Multiplicative dropout masks (already scaled by 1/(1-rate)), reused at every time step.

    ``inputs``: ``(G, B, I)`` applied to x_t; ``recurrent``: ``(G, B, H)`` applied to h_{t-1}.
    ``G`` is 1 (one mask shared by the four gates) or 4 (one per gate, in i, f, g, o order).
    Either may be ``None``.
    """

    inputs: Optional[Tensor] = None
    recurrent: Optional[Tensor] = None

    def is_empty(self) -> bool:
        return self.inputs is None and self.recurrent is None


@dataclass(frozen=True)
class LayerSemantics:
    """How one (bi)directional layer runs, apart from its weights and inputs."""

    activations: CellActivations = CellActivations()
    masked_output: MaskedOutput = MaskedOutput.CARRY
    # The framework computes exactly-standard layers with oneDNN's LSTM primitive (MindSpore's fused CPU
    # path): such layers then always take oneDNN (torch.lstm), whose bits match, never the native kernel.
    onednn_bits: bool = False
