"""``GRU`` and ``GRUCell``: ``mindspore.nn.GRU`` / ``nn.GRUCell`` (2.x) as torch Modules (spec
mindspore_gru_rnn).

``output, h_n = GRU(...)(x, hx=None, seq_length=None)``: shapes, parameter names and the ``seq_length`` rule
are those of :mod:`.base` with ``G = 3`` (gate blocks **r, z, n**, PyTorch's order); ``hx``/``h_n`` are
one tensor ``(num_layers*D, B, H)``. One step (MindSpore's op order, docs/spec/mindspore_gru_rnn.md §2.2)::

    gi = x W_ih^T + b_ih        gh = h W_hh^T + b_hh        (split into r, z, n blocks)
    r = σ(gi_r + gh_r)          z = σ(gi_z + gh_z)          n = tanh(gi_n + r * gh_n)
    h' = n + z * (h - n)

``numerics``: see :mod:`.family` (``"mindspore-cpu"``, the default, emulates MindSpore's CPU kernels;
``"exact"`` equals ``torch.nn.GRU``).
"""

from __future__ import annotations

from ..engine import CellKind
from .family import FamilyCell, OneStateNet

__all__ = ["GRU", "GRUCell"]


class GRU(OneStateNet):
    """``mindspore.nn.GRU(input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, dtype=None, numerics="mindspore-cpu")``;
    ``forward(x, hx=None, seq_length=None) -> output, h_n``.

    Example::

        >>> import torch; from lstm_bridge.mindspore import GRU
        >>> net = GRU(10, 16, 2, batch_first=True, bidirectional=True)
        >>> output, h_n = net(torch.ones(3, 5, 10), torch.zeros(4, 3, 16))
        >>> tuple(output.shape), tuple(h_n.shape)
        ((3, 5, 32), (4, 3, 16))
    """

    kind = CellKind.GRU
    cell_name = "GRU"


class GRUCell(FamilyCell):
    """``mindspore.nn.GRUCell(input_size, hidden_size, has_bias=True, dtype=None, numerics="mindspore-cpu")``;
    ``forward(x, hx) -> h`` with x ``(B, I)``, hx and h ``(B, H)``."""

    kind = CellKind.GRU
    cell_name = "GRUCell"
