"""``LSTM``: ``mindspore.nn.LSTM`` (2.x) as a torch Module (spec mindspore §1-§5).

Shapes (``L = num_layers``, ``D = 2 if bidirectional else 1``)::

    x            (T, B, I)            (B, T, I) with batch_first
    hx           (h0, c0)             a tuple, each (L*D, B, H) -- also with batch_first
    seq_length   (B,)                 int32/int64
    output       (T, B, D*H)          (B, T, D*H) with batch_first; features [forward | reverse]
    h_n, c_n     (L*D, B, H)          row l*D + d (layer-major, 0 = forward, 1 = reverse)

Parameters (MindSpore 2.x names, also PyTorch's), registered in MindSpore's checkpoint order (all
``weight_ih``, then ``weight_hh``, ``bias_ih``, ``bias_hh``; within each ``l0, l0_reverse, l1, ...``)::

    weight_ih_l{l}{_reverse}  (4H, I or D*H)    weight_hh_l{l}{_reverse}  (4H, H)
    bias_ih_l{l}{_reverse}    (4H,)             bias_hh_l{l}{_reverse}    (4H,)

Gate order i, f, g, o. ``seq_length``: outputs after a row's length are exactly 0, ``h_n``/``c_n`` are the
state after its last valid step (``h0``/``c0`` for length 0), and the reverse direction reverses only
the valid prefix (PyTorch's packed-sequence semantics).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import activations as _act
from .._tensors import as_float, as_tensor, check_shape
from ..engine import (CellActivations, DirectionWeights, LayerSemantics, MaskedOutput, check_allocation,
                      lengths_to_valid, run_stack)
from ..engine.guards import allocation_errors
from ._checks import (HxRowsError, KernelRuntimeError, NotATensorError, check_bool, check_dtype_arg,
                      check_numerics, check_positive_int, load_strict)

NUMERICS = ("exact", "mindspore-cpu")


def ms_uniform(shape, bound: float, dtype: torch.dtype) -> torch.Tensor:
    """MindSpore's initial weights: ``np.random.uniform(-bound, bound)`` from NumPy's global RNG, as float32."""
    return torch.from_numpy(np.random.uniform(-bound, bound, shape).astype(np.float32)).to(dtype)


def approximate_activations() -> CellActivations:
    """MindSpore's CPU float32 ``Sigmoid``/``Tanh`` (seq_length path and LSTMCell), bit for bit."""
    return CellActivations(gate=_act.ms_cpu_sigmoid, candidate=_act.ms_cpu_tanh, cell=_act.ms_cpu_tanh)


class LSTM(torch.nn.Module):
    """``mindspore.nn.LSTM(input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``; ``forward(x, hx=None, seq_length=None) -> output, (h_n, c_n)``.

    Like a MindSpore Cell it starts in eval mode; ``set_train(True)`` (or ``.train()``) enables the
    dropout between layers. Extra arguments: ``dtype`` (parameter dtype, as MindSpore 2.x) and
    ``numerics``: ``"mindspore-cpu"`` (default: what MindSpore's CPU kernels compute — exact sigmoid/tanh
    on the fused path, its approximate float32 Sigmoid/Tanh on the seq_length path, emulated bit for
    bit; spec mindspore §3) or ``"exact"`` (true sigmoid/tanh everywhere, as MindSpore's GPU kernels;
    within ~2e-4 of the CPU seq_length path, more with large weights).

    Example (the seed's corrected call)::

        >>> import torch; from lstm_bridge.mindspore import LSTM
        >>> net = LSTM(10, 16, 1, has_bias=True, batch_first=True, bidirectional=True)
        >>> x = torch.ones(3, 5, 10); h0 = torch.ones(2, 3, 16); c0 = torch.ones(2, 3, 16)
        >>> output, (hn, cn) = net(x, (h0, c0))
        >>> tuple(output.shape), tuple(hn.shape)
        ((3, 5, 32), (2, 3, 16))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, has_bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, numerics: str = "mindspore-cpu"):
        super().__init__()
        check_positive_int(input_size, "input_size")
        check_positive_int(hidden_size, "hidden_size")
        check_positive_int(num_layers, "num_layers")
        check_bool(has_bias, "has_bias")
        check_bool(batch_first, "batch_first")
        check_bool(bidirectional, "bidirectional")
        if isinstance(dropout, bool) or not isinstance(dropout, float):
            raise TypeError(f"For 'LSTM', the type of 'dropout' must be 'float', but got "
                            f"'{type(dropout).__name__}' (write {float(dropout) if isinstance(dropout, int) else 0.0!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"For 'LSTM', the 'dropout' must be a number in range [0, 1) representing the "
                             f"probability of an element being zeroed, but got {dropout}.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.has_bias, self.batch_first, self.bidirectional = has_bias, batch_first, bidirectional
        self.dropout = dropout
        self.numerics = check_numerics(numerics)
        self.num_directions = 2 if bidirectional else 1
        param_dtype = check_dtype_arg(dtype)
        self.dropout_op = torch.nn.Dropout(p=dropout)
        bound = 1.0 / math.sqrt(hidden_size)
        what = f"the parameters of {self._call_repr()}"
        check_allocation(what, self._parameter_count(), param_dtype)
        drawn: Dict[str, torch.Tensor] = {}
        with allocation_errors(what):
            for layer in range(num_layers):  # MindSpore's draw order: per layer, per direction, w_ih w_hh b_ih b_hh
                in_size = input_size if layer == 0 else hidden_size * self.num_directions
                for suffix in self._suffixes(layer):
                    drawn["weight_ih" + suffix] = ms_uniform((4 * hidden_size, in_size), bound, param_dtype)
                    drawn["weight_hh" + suffix] = ms_uniform((4 * hidden_size, hidden_size), bound, param_dtype)
                    if has_bias:
                        drawn["bias_ih" + suffix] = ms_uniform((4 * hidden_size,), bound, param_dtype)
                        drawn["bias_hh" + suffix] = ms_uniform((4 * hidden_size,), bound, param_dtype)
        for group in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):  # checkpoint order
            for layer in range(num_layers):
                for suffix in self._suffixes(layer):
                    if group + suffix in drawn:
                        self.register_parameter(group + suffix, torch.nn.Parameter(drawn[group + suffix]))
        self.train(False)

    def _suffixes(self, layer: int) -> List[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _call_repr(self) -> str:
        return f"LSTM({self.extra_repr()})"

    def _parameter_count(self) -> int:
        """Values in all parameters: per layer and direction ``4H * (in_l + H)`` (+ ``8H`` with biases)."""
        H, D = self.hidden_size, self.num_directions
        bias = 8 * H if self.has_bias else 0
        first = D * (4 * H * (self.input_size + H) + bias)
        return first + (self.num_layers - 1) * D * (4 * H * (H * D + H) + bias)  # closed form: L may be huge

    def set_train(self, mode: bool = True) -> "LSTM":
        """MindSpore's name for ``train(mode)``: dropout between layers applies only in training."""
        return self.train(mode)

    def trainable_params(self) -> List[torch.nn.Parameter]:
        return list(self.parameters())

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"has_bias={self.has_bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}")

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load MindSpore/PyTorch-named tensors; with ``strict`` (default) missing, unexpected or
        mis-shaped entries raise ``ValueError`` listing them."""
        return load_strict(self, super().load_state_dict, state_dict, strict, assign)

    def layer_weights(self, dtype: torch.dtype) -> List[List[DirectionWeights]]:
        """Canonical weights ``[layer][direction]`` cast to ``dtype`` (differentiable views)."""
        params = self._parameters  # registered on this module itself (no walk over submodules)

        def cast(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return t if t is None or t.dtype == dtype else t.to(dtype)

        layers = []
        for layer in range(self.num_layers):
            dirs = []
            for suffix in self._suffixes(layer):
                dirs.append(DirectionWeights(
                    w_ih=cast(params["weight_ih" + suffix]), w_hh=cast(params["weight_hh" + suffix]),
                    b_ih=cast(params.get("bias_ih" + suffix)), b_hh=cast(params.get("bias_hh" + suffix))))
            layers.append(dirs)
        return layers

    # --- call ------------------------------------------------------------------------------------
    def _check_hx(self, hx: Any, batch: int, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = self.num_layers * self.num_directions
        expected = (rows, batch, self.hidden_size)
        if not isinstance(hx, tuple):
            raise TypeError(f"For 'LSTM', the 'hx' must be a tuple (h0, c0) of tensors of shape {expected}, "
                            f"but got '{type(hx).__name__}'")
        if len(hx) != 2:
            raise TypeError(f"For 'LSTM', the length of 'hx' must be '2' (h0, c0), but got '{len(hx)}'")
        out = []
        for name, value in zip(("h0", "c0"), hx):
            t = as_tensor(value, f"hx {name}")
            if t.dtype != dtype:
                raise TypeError(f"For 'LSTM', the type of hx {name} should be the same as x's: expected {dtype}, "
                                f"received {t.dtype}")
            hint = (f" (num_layers*num_directions={rows}, batch={batch}, hidden_size={self.hidden_size})")
            if t.dim() == 3 and t.shape[0] < rows:  # MindSpore: IndexError fetching the missing row
                raise HxRowsError(f"hx {name} must have shape {expected}{hint}; received {tuple(t.shape)} "
                                  f"(only {t.shape[0]} of {rows} rows)")
            check_shape(t, expected, f"hx {name}", hint)
            out.append(t)
        return out[0], out[1]

    def _check_lengths(self, seq_length: Any, batch: int, steps: int) -> torch.Tensor:
        if not isinstance(seq_length, (torch.Tensor, np.ndarray)):
            raise NotATensorError(f"For 'LSTM', 'seq_length' must be a (batch,) int32/int64 tensor; received "
                                  f"{type(seq_length).__name__}")
        lengths = as_tensor(seq_length, "seq_length")
        if lengths.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"For 'LSTM', the 'seq_length' should be one of [int32, int64], but got {lengths.dtype}")
        if lengths.dim() == 1 and lengths.shape[0] != batch:
            raise ValueError(f"For 'LSTM' batch size of x and seq_length must be equal, but got {batch} of x and "
                             f"{lengths.shape[0]} of seq_length (seq_length must have shape ({batch},))")
        check_shape(lengths, (batch,), "seq_length", f" (batch size of x is {batch})")
        lengths = lengths.to(torch.int64)
        if self.bidirectional:
            bad = ((lengths < 0) | (lengths > steps)).nonzero()
            if bad.numel():
                index = int(bad[0, 0])
                raise KernelRuntimeError(f"For 'LSTM' (bidirectional), seq_length must be in [0, {steps}] (the number "
                                         f"of time steps); received seq_length[{index}] = {int(lengths[index])}")
        # a unidirectional MindSpore net treats lengths > T as T and negative lengths as 0
        return lengths.clamp(0, steps)

    def forward(self, x: Any, hx: Optional[Tuple[Any, Any]] = None, seq_length: Any = None
                ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """``output, (h_n, c_n)``; see the module docstring for shapes and the seq_length rule."""
        x = as_float(x, "x")
        if x.dim() != 3:
            layout = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
            raise ValueError(f"For 'LSTM', the x_shape.size() must be equal to 3: x must be 3-D {layout}; "
                             f"received shape {tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"For 'LSTM', the x_shape[2] (input_size) must be equal to {self.input_size}, but got "
                             f"{x.shape[2]}")
        in_dtype = x.dtype
        compute = torch.float32 if in_dtype in (torch.float16, torch.bfloat16) else in_dtype
        xt = (x.transpose(0, 1) if self.batch_first else x).to(compute)
        T, B = xt.shape[0], xt.shape[1]
        if T == 0:  # MindSpore 2.10: RuntimeError "could not execute a primitive" (ValueError with seq_length)
            raise KernelRuntimeError(f"For 'LSTM', x must have at least one time step; received x of shape "
                                     f"{tuple(x.shape)} (T = 0)")
        rows = self.num_layers * self.num_directions
        if hx is None:
            check_allocation(f"the default initial state of shape ({rows}, {B}, {self.hidden_size})",
                             rows * B * self.hidden_size, xt.dtype)
            h0 = c0 = xt.new_zeros(rows, B, self.hidden_size)
        else:
            h0, c0 = self._check_hx(hx, B, in_dtype)
            h0, c0 = h0.to(compute), c0.to(compute)
        valid = None
        acts = CellActivations()
        if seq_length is not None:
            valid = lengths_to_valid(self._check_lengths(seq_length, B, T), T)
            if self.numerics == "mindspore-cpu" and compute == torch.float32:
                acts = approximate_activations()
        between = self.dropout_op if self.training and self.dropout > 0 else None
        out, h_n, c_n = run_stack(xt, self.layer_weights(compute), h0, c0, valid=valid,
                                  semantics=LayerSemantics(acts, MaskedOutput.ZERO,
                                                           onednn_bits=self.numerics == "mindspore-cpu"),
                                  between_layers=between)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out.to(in_dtype), (h_n.to(in_dtype), c_n.to(in_dtype))


Hx = Union[Tuple[torch.Tensor, torch.Tensor], None]
