"""``RNN`` and ``RNNCell``: ``mindspore.nn.RNN`` / ``nn.RNNCell`` (2.x) as torch Modules
(docs/spec/mindspore_gru_rnn.md).

``output, h_n = RNN(..., nonlinearity="tanh")(x, hx=None, seq_length=None)``: shapes, parameter names and
the ``seq_length`` rule are those of :mod:`.base` with ``G = 1``; ``hx``/``h_n`` are one tensor
``(num_layers*D, B, H)``. One step: ``h' = φ((x W_ih^T + b_ih) + (h W_hh^T + b_hh))`` with φ = tanh or relu.

``nonlinearity`` is keyword-only for ``RNN`` (MindSpore pops it from ``**kwargs``: an 8th positional
argument is ``dtype`` there) and the 4th positional argument of ``RNNCell``. ``numerics``: see
:mod:`.family` (ReLU is exact in both).
"""

from __future__ import annotations

from typing import Any

from ..engine import CellKind
from .family import FamilyCell, OneStateNet, check_nonlinearity

__all__ = ["RNN", "RNNCell"]


class RNN(OneStateNet):
    """``mindspore.nn.RNN(input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype=None, *, nonlinearity="tanh", numerics="mindspore-cpu")``;
    ``forward(x, hx=None, seq_length=None) -> output, h_n``."""

    kind = CellKind.RNN
    cell_name = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        has_bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        *,
        nonlinearity: str = "tanh",
        numerics: str = "mindspore-cpu",
    ):
        self.nonlinearity = check_nonlinearity(nonlinearity, "RNN")  # (a plain attribute: set before Module init)
        super().__init__(
            input_size, hidden_size, num_layers, has_bias, batch_first, dropout, bidirectional, dtype, numerics
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class RNNCell(FamilyCell):
    """``mindspore.nn.RNNCell(input_size, hidden_size, has_bias=True, nonlinearity="tanh", dtype=None,
    numerics="mindspore-cpu")``; ``forward(x, hx) -> h`` with x ``(B, I)``, hx and h ``(B, H)``."""

    kind = CellKind.RNN
    cell_name = "RNNCell"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        has_bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = None,
        numerics: str = "mindspore-cpu",
    ):
        super().__init__(input_size, hidden_size, has_bias, dtype, numerics)
        self.nonlinearity = check_nonlinearity(nonlinearity, "RNNCell", cell_message=True)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
