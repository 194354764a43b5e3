"""The engine's vocabulary, defined once in :mod:`lstm_bridge.recurrent` and re-exported here.

Canonical weights (one :class:`DirectionWeights` per layer and direction, gate order **i, f, g, o**
for an LSTM), :class:`CellActivations`, the masked-output rule :class:`MaskedOutput`,
:class:`DropoutMasks` and :class:`LayerSemantics`: see :mod:`lstm_bridge.recurrent` for the shapes,
the step equations and the masking rule.
"""

from __future__ import annotations

from ..recurrent import CellActivations, CellKind, DirectionWeights, DropoutMasks, LayerSemantics, MaskedOutput

__all__ = ["CellActivations", "CellKind", "DirectionWeights", "DropoutMasks", "LayerSemantics", "MaskedOutput"]
