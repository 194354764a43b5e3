"""What ``mindspore.nn.GRU``/``nn.RNN`` and ``nn.GRUCell``/``nn.RNNCell`` (2.x) share: one state tensor and
MindSpore's CPU numerics for them (docs/spec/mindspore_gru_rnn.md §1-§5, §7).

On CPU MindSpore has no fused kernel for these cells: every path (with and without ``seq_length``, and the
cells) is a loop of ``MatMul``/``Sigmoid``/``Tanh``/``Mul``/``Add`` ops with its approximate float32
Sigmoid and Tanh (docs/spec/mindspore_gru_rnn.md §3). ``numerics="mindspore-cpu"`` (default) emulates them
for float32 inputs: the
activations :data:`lstm_bridge.activations.ms_cpu_sigmoid`/:data:`~lstm_bridge.activations.ms_cpu_tanh`,
the op order ``gi = x W_ih^T + b_ih``, ``gh = h W_hh^T + b_hh``, ``h' = n + z·(h − n)``, with torch's GEMM
(within ~5e-7 of MindSpore). ``numerics="mindspore-cpu-bits"`` also sums the products in MindSpore's MatMul
order: bit for bit for batch >= 2 (a batch of 1 is MindSpore's GEMV, whose order is unknown: last-bit
differences there), at ~20-70x the time. ``numerics="exact"`` is true math, as ``torch.nn.GRU``/``torch.nn.RNN``.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

from .. import activations as _act
from .._tensors import as_tensor, cast, check_shape
from ..engine import (
    CellActivations,
    CellKind,
    LayerSemantics,
    MaskedOutput,
    run_layer,
)
from .base import CellBase, RecurrentNet

NONLINEARITIES = ("tanh", "relu")
_HALF = (torch.float16, torch.bfloat16)


def family_semantics(numerics: str, compute: torch.dtype, nonlinearity: str = "tanh") -> LayerSemantics:
    """The engine semantics of a MindSpore GRU/RNN step: the emulated CPU activations, op order and MatMul
    order for float32 with ``numerics="mindspore-cpu"``; true math otherwise. Masked steps emit 0."""
    emulate = numerics.startswith("mindspore-cpu") and compute == torch.float32
    gate = _act.ms_cpu_sigmoid if emulate else _act.sigmoid
    tanh = _act.ms_cpu_tanh if emulate else _act.tanh
    candidate = _act.relu if nonlinearity == "relu" else tanh
    return LayerSemantics(
        CellActivations(gate=gate, candidate=candidate, cell=candidate),
        MaskedOutput.ZERO,
        mindspore_cpu=numerics.startswith("mindspore-cpu"),
        mindspore_matmul=numerics == "mindspore-cpu-bits",
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "").capitalize()


class OneStateNet(RecurrentNet):
    """``RecurrentNet`` with MindSpore's GRU/RNN call: ``output, h_n = net(x, hx=None, seq_length=None)``,
    ``hx`` and ``h_n`` one tensor ``(num_layers*D, B, H)``."""

    nonlinearity: str = "tanh"

    def _initial_states(
        self, hx: Any, batch: int, in_dtype: torch.dtype, compute: torch.dtype
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        name = self.cell_name
        rows = self._state_rows()
        expected = (rows, batch, self.hidden_size)
        if not isinstance(hx, (torch.Tensor, np.ndarray)):
            raise TypeError(
                f"For '{name}', the 'h' must be a Tensor of shape {expected} (one tensor, not a tuple "
                f"as for LSTM), but got '{type(hx).__name__}'"
            )
        t = as_tensor(hx, "hx")
        if in_dtype not in (torch.float32, torch.float16):
            raise TypeError(
                f"For '{name}', the element of 'x' must be one of Float32, Float16 when hx is given, "
                f"but got {_dtype_name(in_dtype)}."
            )
        if t.dtype != in_dtype:
            raise TypeError(
                f"For '{name}', the type of 'hx' should be same as 'x', but got 'x' with type "
                f"{_dtype_name(in_dtype)} and 'hx' with type {_dtype_name(t.dtype)}."
            )
        self._check_state_shape(t, f"For '{name}', hx", batch)
        return cast(t, compute), None

    def _semantics(self, with_lengths: bool, compute: torch.dtype) -> LayerSemantics:
        return family_semantics(self.numerics, compute, self.nonlinearity)  # the same with or without lengths

    def _result(
        self, out: torch.Tensor, h_n: torch.Tensor, c_n: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return out, h_n

    def forward(self, x: Any, hx: Any = None, seq_length: Any = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``output, h_n``: x ``(T, B, I)`` (``(B, T, I)`` with batch_first), hx ``(num_layers*D, B, H)`` or
        None, seq_length ``(B,)`` int32/int64 or None."""
        result: Tuple[torch.Tensor, torch.Tensor] = super().forward(x, hx, seq_length)
        return result


class FamilyCell(CellBase):
    """``mindspore.nn.GRUCell``/``nn.RNNCell``: ``h = cell(x, hx)``, x ``(B, I)``, hx ``(B, H)`` (required;
    a batch-1 hx is broadcast over x's batch, as MindSpore does). Parameters ``weight_ih (G*H, I)``,
    ``weight_hh (G*H, H)``, ``bias_ih``/``bias_hh (G*H,)``. x and hx must be float32 or float16 and have
    the parameters' dtype (MindSpore does not cast). Starts in eval mode."""

    kind: CellKind = CellKind.GRU
    cell_name: str = "GRUCell"
    nonlinearity: str = "tanh"

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, has_bias={self.has_bias}"

    def _checked(self, value: Any, what: str) -> torch.Tensor:
        name = self.cell_name
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            raise TypeError(f"For '{name}', the '{what}' must be a Tensor, but got '{type(value).__name__}'")
        t = as_tensor(value, what)
        if t.dtype not in (torch.float32, torch.float16):
            raise TypeError(
                f"For '{name}', the '{what}' should be one of [float32, float16], but got "
                f"'{str(t.dtype).replace('torch.', '')}'"
            )
        if t.dtype != self.weight_ih.dtype:
            raise TypeError(
                f"For '{name}', {what} must have the parameters' dtype {self.weight_ih.dtype} "
                f"(MindSpore does not cast); received {t.dtype}"
            )
        return t

    def forward(self, x: Any, hx: Any) -> torch.Tensor:
        """One step: x ``(B, I)``, hx ``(B, H)`` (or ``(1, H)``) -> h ``(B, H)``."""
        name = self.cell_name
        x = self._checked(x, "x")
        hx = self._checked(hx, "hx")
        if x.dim() != 2 or hx.dim() != 2:
            raise ValueError(
                f"For '{name}', MatMul inputs should have the same dimension size and equal to 2: "
                f"x must be (batch, input_size={self.input_size}) and hx (batch, hidden_size="
                f"{self.hidden_size}); received x {tuple(x.shape)}, hx {tuple(hx.shape)}"
            )
        check_shape(x, (None, self.input_size), f"For '{name}', x", f" (batch, input_size={self.input_size})")
        B = x.shape[0]
        if hx.shape[0] == 1 and B != 1 and hx.shape[1] == self.hidden_size:
            hx = hx.expand(B, self.hidden_size)  # MindSpore's op-by-op cell broadcasts a batch-1 state
        check_shape(hx, (B, self.hidden_size), f"For '{name}', hx", f" (batch, hidden_size={self.hidden_size})")
        compute = torch.float32 if x.dtype in _HALF else x.dtype
        _, hs, _ = run_layer(
            cast(x.unsqueeze(0), compute),
            [self.cell_weights(compute)],
            [cast(hx, compute)],
            None,
            reverse=[False],
            semantics=family_semantics(self.numerics, compute, self.nonlinearity),
        )
        return cast(hs[0], x.dtype)


def check_nonlinearity(value: Any, cell: str, cell_message: bool = False) -> str:
    """``"tanh"`` or ``"relu"``; MindSpore's ValueError text (nn.RNN's, or nn.RNNCell's with ``cell_message``)."""
    if cell_message:
        if not isinstance(value, str):
            raise TypeError(
                f"For '{cell}', the type of 'nonlinearity' should be 'str', but got '{type(value).__name__}'"
            )
        if value not in NONLINEARITIES:
            raise ValueError(
                f"For '{cell}', the 'nonlinearity' must be str and must be in "
                f"'{list(NONLINEARITIES)}', but got '{value}'."
            )
        return value
    if value not in NONLINEARITIES:
        raise ValueError(f"For '{cell}', the 'nonlinearity' must be in ['tanh', 'relu'], but got {value}.")
    return str(value)
