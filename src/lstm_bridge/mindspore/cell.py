"""``LSTMCell``: ``mindspore.nn.LSTMCell`` (2.x) as a torch Module (docs/spec/mindspore_lstm.md §7).

``cell(x, (h0, c0)) -> (h, c)`` with ``x (B, I)`` and ``h0, c0, h, c (B, H)``; ``hx`` is required.
Parameters ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih (4H,)``, ``bias_hh (4H,)`` (gate
order i, f, g, o) — the names of MindSpore and of ``torch.nn.LSTMCell``. MindSpore does not cast:
``x`` must have the parameters' dtype.

MindSpore's CPU ``LSTMCell`` always runs its approximate float32 Sigmoid/Tanh (docs/spec/mindspore_lstm.md §3), so
the default ``numerics="mindspore-cpu"`` emulates them bit for bit for float32 inputs (other dtypes
compute exactly); ``numerics="exact"`` uses true sigmoid/tanh (what MindSpore's GPU path computes).
"""

from __future__ import annotations

from typing import Any, Tuple

import torch

from .._tensors import as_float, as_tensor, check_shape
from ..engine import CellActivations, DirectionWeights, LayerSemantics, run_layer
from .base import CellBase
from .lstm import approximate_activations


class LSTMCell(CellBase):
    """``mindspore.nn.LSTMCell(input_size, hidden_size, has_bias=True)``; starts in eval mode."""

    _OLD_KEYWORDS = ("batch_size", "dropout", "bidirectional", "batch_first")  # nn.LSTMCell before 1.6

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        has_bias: bool = True,
        dtype: Any = None,
        *old_args: Any,
        numerics: str = "mindspore-cpu",
        **old_kwargs: Any,
    ):
        old = sorted(k for k in old_kwargs if k in self._OLD_KEYWORDS)
        if old_args or old:
            raise ValueError(
                f"The arguments of `nn.LSTMCell` from old MindSpore version(<1.6) are detected "
                f"({len(old_args)} extra positional argument(s), keywords {old}): LSTMCell(input_size, "
                f"hidden_size, has_bias=True, dtype=None) is one cell step; for a single LSTM layer "
                f"use lstm_bridge.mindspore.LSTM"
            )
        if old_kwargs:
            raise TypeError(f"LSTMCell.__init__() got an unexpected keyword argument '{sorted(old_kwargs)[0]}'")
        super().__init__(input_size, hidden_size, has_bias, dtype, numerics)

    def forward(self, x: Any, hx: Tuple[Any, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x (B, I)``, ``hx = (h0, c0)`` each ``(B, H)`` -> ``(h, c)``."""
        x = as_float(x, "x")
        if x.dim() != 2:
            raise ValueError(
                f"For 'LSTMCell', MatMul inputs should have the same dimension size and equal to 2: "
                f"x must be 2-D (batch, input_size={self.input_size}); received shape {tuple(x.shape)}"
            )
        if x.dtype != self.weight_ih.dtype:
            raise TypeError(
                f"For 'LSTMCell', x must have the parameters' dtype {self.weight_ih.dtype} (MindSpore "
                f"does not cast); received {x.dtype}"
            )
        check_shape(x, (None, self.input_size), "x", f" (batch, input_size={self.input_size})")
        if not isinstance(hx, tuple):
            raise TypeError(
                f"For 'LSTMCell', the 'hx' must be a tuple (h0, c0) of (batch, hidden_size="
                f"{self.hidden_size}) tensors, but got '{type(hx).__name__}'"
            )
        if len(hx) != 2:
            raise TypeError(f"For 'LSTMCell', the length of 'hx' must be '2' (h0, c0), but got '{len(hx)}'")
        B = x.shape[0]
        h0, c0 = (as_tensor(v, n) for v, n in zip(hx, ("h0", "c0")))
        for name, t in (("h0", h0), ("c0", c0)):
            if t.dtype != x.dtype:
                raise TypeError(f"For 'LSTMCell', {name} must have dtype {x.dtype}; received {t.dtype}")
            check_shape(t, (B, self.hidden_size), f"hx {name}", f" (batch, hidden_size={self.hidden_size})")
        emulate = self.numerics.startswith("mindspore-cpu") and x.dtype == torch.float32
        acts = approximate_activations() if emulate else CellActivations()
        weights = DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)  # (no cast: as before)
        _, hs, cs = run_layer(x.unsqueeze(0), [weights], [h0], [c0], reverse=[False], semantics=LayerSemantics(acts))
        return hs[0], cs[0]
