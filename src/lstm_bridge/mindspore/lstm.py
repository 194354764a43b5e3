"""``LSTM``: ``mindspore.nn.LSTM`` (2.x) as a torch Module (docs/spec/mindspore_lstm.md §1-§5).

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

from typing import Any, Optional, Tuple, Union

import torch
import torch.nn.modules.module as _torch_module

from .. import activations as _act
from .._tensors import as_tensor, cast
from ..engine import (
    CellActivations,
    CellKind,
    LayerSemantics,
    MaskedOutput,
    callplan as _callplan,
    trainplan as _trainplan,
)
from .base import NUMERICS, RecurrentNet, ms_uniform

__all__ = ["LSTM", "NUMERICS", "approximate_activations", "ms_uniform"]


def approximate_activations() -> CellActivations:
    """MindSpore's CPU float32 ``Sigmoid``/``Tanh`` (seq_length path and LSTMCell), bit for bit."""
    return CellActivations(gate=_act.ms_cpu_sigmoid, candidate=_act.ms_cpu_tanh, cell=_act.ms_cpu_tanh)


# (emulated CPU activations, oneDNN's bits) -> the call's semantics, built once: no per-call objects, and
# torch.compile sees module constants instead of objects it would have to build
_SEMANTICS = {
    (approx, onednn): LayerSemantics(
        approximate_activations() if approx else CellActivations(), MaskedOutput.ZERO, onednn_bits=onednn
    )
    for approx in (False, True)
    for onednn in (False, True)
}


# What ``nn.Module.__call__`` reads before it calls ``forward`` (torch's own module globals: the global hooks);
# where this torch lacks one of them, every call goes through ``nn.Module.__call__`` (see LSTM.__call__)
_MODULE_CALL = getattr(torch.nn.Module, "_wrapped_call_impl", None)
_GLOBAL_HOOKS = tuple(
    getattr(_torch_module, name, None)
    for name in (
        "_global_forward_pre_hooks",
        "_global_forward_hooks",
        "_global_backward_pre_hooks",
        "_global_backward_hooks",
    )
)
_SHORTCUT = _MODULE_CALL is not None and all(isinstance(hooks, dict) for hooks in _GLOBAL_HOOKS)
_G_FORWARD_PRE, _G_FORWARD, _G_BACKWARD_PRE, _G_BACKWARD = _GLOBAL_HOOKS if _SHORTCUT else ({}, {}, {}, {})


class LSTM(RecurrentNet):
    """``mindspore.nn.LSTM(input_size, hidden_size, num_layers=1, has_bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``; ``forward(x, hx=None, seq_length=None) -> output, (h_n, c_n)``.

    Like a MindSpore Cell it starts in eval mode; ``set_train(True)`` (or ``.train()``) enables the
    dropout between layers. Extra arguments: ``dtype`` (parameter dtype, as MindSpore 2.x) and
    ``numerics``: ``"mindspore-cpu"`` (default: what MindSpore's CPU kernels compute — exact sigmoid/tanh
    on the fused path, its approximate float32 Sigmoid/Tanh on the seq_length path, emulated bit for
    bit; docs/spec/mindspore_lstm.md §3), ``"mindspore-cpu-bits"`` (the same, and the fused path bit for
    bit: see below) or ``"exact"`` (true sigmoid/tanh everywhere, as MindSpore's GPU kernels; within ~2e-4
    of the CPU seq_length path, more with large weights).

    The fused (no ``seq_length``) float32 layer: MindSpore's CPU kernel is oneDNN's LSTM primitive in its
    training kind, in inference too. By default it runs where a standard layer is fastest (the native
    kernel, or in inference oneDNN's inference kind above batch*hidden 2048 while one direction's gates take
    under 30 MiB: ``engine/backend.py``), within float32
    rounding of MindSpore (<= 1.2e-7 on the golden cases, <= 6.3e-7 at the bench's sizes).
    ``numerics="mindspore-cpu-bits"`` runs oneDNN's training kind in inference and training, bit for bit, at
    that kind's cost (~2x oneDNN's inference time on medium sizes; ``torch.lstm`` selects it under grad
    mode, so an inference call runs under grad mode on detached inputs). Those bits are an eager property:
    ``torch.compile`` and ``torch.export`` record every layer the kernel can run as its registered op
    (oneDNN's ``torch.lstm`` has no fake kernel), so a compiled or exported ``"mindspore-cpu-bits"`` layer is
    within float32 rounding of eager, not equal.

    Example (the seed's corrected call)::

        >>> import torch; from lstm_bridge.mindspore import LSTM
        >>> net = LSTM(10, 16, 1, has_bias=True, batch_first=True, bidirectional=True)
        >>> x = torch.ones(3, 5, 10); h0 = torch.ones(2, 3, 16); c0 = torch.ones(2, 3, 16)
        >>> output, (hn, cn) = net(x, (h0, c0))
        >>> tuple(output.shape), tuple(hn.shape)
        ((3, 5, 32), (2, 3, 16))
    """

    kind = CellKind.LSTM
    cell_name = "LSTM"

    def _check_hx(self, hx: Any, batch: int, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        rows = self._state_rows()
        expected = (rows, batch, self.hidden_size)
        if not isinstance(hx, tuple):
            raise TypeError(
                f"For 'LSTM', the 'hx' must be a tuple (h0, c0) of tensors of shape {expected}, "
                f"but got '{type(hx).__name__}'"
            )
        if len(hx) != 2:
            raise TypeError(f"For 'LSTM', the length of 'hx' must be '2' (h0, c0), but got '{len(hx)}'")
        out = []
        for name, value in zip(("h0", "c0"), hx):
            t = as_tensor(value, f"hx {name}")
            if t.dtype != dtype:
                raise TypeError(
                    f"For 'LSTM', the type of hx {name} should be the same as x's: expected {dtype}, received {t.dtype}"
                )
            self._check_state_shape(t, f"hx {name}", batch)
            out.append(t)
        return out[0], out[1]

    def _initial_states(
        self, hx: Any, batch: int, in_dtype: torch.dtype, compute: torch.dtype
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        h0, c0 = self._check_hx(hx, batch, in_dtype)
        return cast(h0, compute), cast(c0, compute)

    def _semantics(self, with_lengths: bool, compute: torch.dtype) -> LayerSemantics:
        ms_cpu = self.numerics.startswith("mindspore-cpu")
        return _SEMANTICS[(with_lengths and ms_cpu and compute == torch.float32, self.numerics == "mindspore-cpu-bits")]

    def _result(
        self, out: torch.Tensor, h_n: torch.Tensor, c_n: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        assert c_n is not None
        return out, (h_n, c_n)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``nn.Module.__call__``, except that a planned inference call - ``net(x)`` or ``net(x,
        seq_length=...)`` - goes straight to :meth:`_planned` when ``nn.Module.__call__`` would only call
        ``forward`` with those arguments: no hooks (the module's or global), not ``Module.compile()``d,
        ``LSTM.forward`` itself (not a subclass's, not one set on the class or the instance),
        ``nn.Module.__call__`` not replaced (``torch.fx`` tracing patches it) and a call that may be planned
        (no grad mode, no tracing: :func:`lstm_bridge.engine.callplan.plannable`). Its ~1 us of
        argument passing is a tenth of a one-step call's overhead."""
        if (
            len(args) == 1
            and type(self).forward is _FORWARD
            and type(args[0]) is torch.Tensor
            and (not kwargs or (len(kwargs) == 1 and "seq_length" in kwargs))
            and _SHORTCUT
            and torch.nn.Module.__call__ is _MODULE_CALL
            and self._compiled_call_impl is None
            and "forward" not in self.__dict__
            and not (
                self._forward_pre_hooks or self._forward_hooks or self._backward_pre_hooks or self._backward_hooks
                or _G_FORWARD_PRE or _G_FORWARD or _G_BACKWARD_PRE or _G_BACKWARD
            )
            and _callplan.plannable()
        ):  # fmt: skip
            return self._planned(args[0], kwargs.get("seq_length"))
        return torch.nn.Module.__call__(self, *args, **kwargs)

    def forward(
        self, x: Any, hx: Optional[Tuple[Any, Any]] = None, seq_length: Any = None
    ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """``output, (h_n, c_n)``; see the module docstring for shapes and the seq_length rule."""
        # (RecurrentNet.forward written out: this runs on every call)
        result: Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]
        if hx is None and type(x) is torch.Tensor and _callplan.plannable():
            result = self._planned(x, seq_length)
        elif hx is None and type(x) is torch.Tensor and _trainplan.plannable():
            result = self._planned_training(x, seq_length)
        else:
            result = self._forward(x, hx, seq_length)
        return result


Hx = Union[Tuple[torch.Tensor, torch.Tensor], None]


_FORWARD = LSTM.forward  # (LSTM.__call__'s shortcut stands for nn.Module.__call__ -> this forward only)
