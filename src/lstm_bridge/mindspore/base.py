"""``RecurrentNet``: what ``mindspore.nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` (2.x) share (MindSpore's
``_RNNBase``; docs/spec/mindspore_lstm.md §1-§5 and docs/spec/mindspore_gru_rnn.md §1-§5).

Shapes (``L = num_layers``, ``D = 2 if bidirectional else 1``, ``G`` = 4 LSTM / 3 GRU / 1 RNN)::

    x            (T, B, I)            (B, T, I) with batch_first
    hx           LSTM: (h0, c0), each (L*D, B, H);  GRU/RNN: one tensor (L*D, B, H) -- also with batch_first
    seq_length   (B,)                 int32/int64
    output       (T, B, D*H)          (B, T, D*H) with batch_first; features [forward | reverse]
    h_n (, c_n)  (L*D, B, H)          row l*D + d (layer-major, 0 = forward, 1 = reverse)

Parameters (MindSpore 2.x names, also PyTorch's), registered in MindSpore's checkpoint order (all
``weight_ih``, then ``weight_hh``, ``bias_ih``, ``bias_hh``; within each ``l0, l0_reverse, l1, ...``)::

    weight_ih_l{l}{_reverse}  (G*H, I or D*H)    weight_hh_l{l}{_reverse}  (G*H, H)
    bias_ih_l{l}{_reverse}    (G*H,)             bias_hh_l{l}{_reverse}    (G*H,)

``seq_length``: outputs after a row's length are exactly 0, the final states are those after its last
valid step (the initial ones for length 0), and the reverse direction reverses only the valid prefix.
A subclass names its kind (:attr:`kind`, :attr:`cell_name`) and says how ``hx`` is read
(:meth:`_initial_states`), which activations run (:meth:`_semantics`) and what is returned (:meth:`_result`).

:class:`CellBase` is the same for the one-step cells (``nn.LSTMCell``, ``nn.GRUCell``, ``nn.RNNCell``:
parameters ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``, ``bias_ih``/``bias_hh (G*H,)``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch

from .._tensors import as_float, as_tensor, cast, check_shape
from ..engine import (
    CellKind,
    DirectionWeights,
    LayerSemantics,
    callplan as _callplan,
    check_allocation,
    lengths_to_valid,
    run_stack,
    trainplan as _trainplan,
)
from ..engine.callplan import autocast_state as _autocast_state, backend_request as _backend_request, plan_layer
from ..engine.guards import allocation_errors, check_range, tracing
from ._checks import (
    NUMERICS as NUMERICS,  # re-exported: the accepted numerics values
    HxRowsError,
    KernelRuntimeError,
    NotATensorError,
    check_bool,
    check_dtype_arg,
    check_numerics,
    check_positive_int,
    load_strict,
)

_PLANNED_DTYPES = (torch.float32, torch.float64)
#: the longest sequence whose ``seq_length`` mask a planned call reads from a ``(T, T + 1)`` table (64 KiB)
_MAX_TABLE_STEPS = 256


class _PlannedLengths(NamedTuple):
    """What a planned call builds its ``(T, B)`` ``seq_length`` mask from: ``shape`` ``(B,)``, ``steps``
    ``arange(T)`` as a ``(T, 1)`` int64 column, ``table`` the ``(T, T + 1)`` uint8 ``t < l`` table (None:
    a long sequence, or a layer plan that takes only bool masks), ``byte`` whether every layer plan takes
    the native kernel's uint8 mask (:attr:`~lstm_bridge.engine.callplan.LayerPlan.byte_mask`)."""

    shape: torch.Size
    steps: torch.Tensor
    table: Optional[torch.Tensor]
    byte: bool


_PlannedRun = Callable[["RecurrentNet", torch.Tensor, Any], Any]


def ms_uniform(shape: Tuple[int, ...], bound: float, dtype: torch.dtype) -> torch.Tensor:
    """MindSpore's initial weights: ``np.random.uniform(-bound, bound)`` from NumPy's global RNG, as float32."""
    return torch.from_numpy(np.random.uniform(-bound, bound, shape).astype(np.float32)).to(dtype)


class RecurrentNet(torch.nn.Module):
    """The common body of :class:`~lstm_bridge.mindspore.LSTM`, :class:`~lstm_bridge.mindspore.GRU` and
    :class:`~lstm_bridge.mindspore.RNN`: argument checks, parameters, ``seq_length``, dropout between layers,
    the engine call. Starts in eval mode like a MindSpore Cell."""

    kind: CellKind = CellKind.LSTM
    cell_name: str = "LSTM"  # the class name MindSpore's messages use

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
        numerics: str = "mindspore-cpu",
    ):
        super().__init__()
        name = self.cell_name
        check_positive_int(input_size, "input_size", name)
        check_positive_int(hidden_size, "hidden_size", name)
        check_positive_int(num_layers, "num_layers", name)
        check_bool(has_bias, "has_bias", name)
        check_bool(batch_first, "batch_first", name)
        check_bool(bidirectional, "bidirectional", name)
        if isinstance(dropout, bool) or not isinstance(dropout, float):
            hint = float(dropout) if isinstance(dropout, int) else 0.0
            raise TypeError(
                f"For '{name}', the type of 'dropout' must be 'float', but got "
                f"'{type(dropout).__name__}' (write {hint!r})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"For '{name}', the 'dropout' must be a number in range [0, 1) representing the "
                f"probability of an element being zeroed, but got {dropout}."
            )
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
        gh = self.kind.gate_count * hidden_size
        drawn: Dict[str, torch.Tensor] = {}
        with allocation_errors(what):
            for layer in range(num_layers):  # MindSpore's draw order: per layer, per direction, w_ih w_hh b_ih b_hh
                in_size = input_size if layer == 0 else hidden_size * self.num_directions
                for suffix in self._suffixes(layer):
                    drawn["weight_ih" + suffix] = ms_uniform((gh, in_size), bound, param_dtype)
                    drawn["weight_hh" + suffix] = ms_uniform((gh, hidden_size), bound, param_dtype)
                    if has_bias:
                        drawn["bias_ih" + suffix] = ms_uniform((gh,), bound, param_dtype)
                        drawn["bias_hh" + suffix] = ms_uniform((gh,), bound, param_dtype)
        for group in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):  # checkpoint order
            for layer in range(num_layers):
                for suffix in self._suffixes(layer):
                    if group + suffix in drawn:
                        self.register_parameter(group + suffix, torch.nn.Parameter(drawn[group + suffix]))
        self.train(False)

    def _suffixes(self, layer: int) -> List[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def _call_repr(self) -> str:
        return f"{self.cell_name}({self.extra_repr()})"

    def _parameter_count(self) -> int:
        """Values in all parameters: per layer and direction ``G*H * (in_l + H)`` (+ ``2*G*H`` with biases)."""
        H, D, G = self.hidden_size, self.num_directions, self.kind.gate_count
        bias = 2 * G * H if self.has_bias else 0
        first = D * (G * H * (self.input_size + H) + bias)
        return first + (self.num_layers - 1) * D * (G * H * (H * D + H) + bias)  # closed form: L may be huge

    def set_train(self, mode: bool = True) -> RecurrentNet:
        """MindSpore's name for ``train(mode)``: dropout between layers applies only in training."""
        return self.train(mode)

    def trainable_params(self) -> List[torch.nn.Parameter]:
        return list(self.parameters())

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
            f"has_bias={self.has_bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
            f"bidirectional={self.bidirectional}"
        )

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load MindSpore/PyTorch-named tensors; with ``strict`` (default) missing, unexpected or
        mis-shaped entries raise ``ValueError`` listing them."""
        return load_strict(self, super().load_state_dict, state_dict, strict, assign)

    def layer_weights(self, dtype: torch.dtype) -> List[List[DirectionWeights]]:
        """Canonical weights ``[layer][direction]`` of this net's kind, cast to ``dtype`` (differentiable views).

        Without grad mode (inference) the result is kept for the next call while the parameters are the same
        objects at the same version (``load_state_dict`` and optimizer steps change it): per-call overhead."""
        if torch.is_grad_enabled() or tracing():
            return self._layer_weights(dtype)
        key: List[Any] = [dtype]  # (one flat list: this runs on every inference call)
        for p in self._parameters.values():
            if p is not None:
                # a cast is a copy of the values (a write through .data keeps the version): never kept; and
                # weights created under torch.inference_mode have no version counter
                if p.dtype != dtype or p.is_inference():
                    return self._layer_weights(dtype)
                key += (id(p), p._version)
        cached = self.__dict__.get("_inference_weights")
        if cached is not None and cached[0] == key:
            layers: List[List[DirectionWeights]] = cached[1]
            return layers
        layers = self._layer_weights(dtype)
        self.__dict__["_inference_weights"] = (key, layers)
        return layers

    def _layer_weights(self, dtype: torch.dtype) -> List[List[DirectionWeights]]:
        params = self._parameters  # registered on this module itself (no walk over submodules)

        def cast(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return t if t is None or t.dtype == dtype else t.to(dtype)

        layers = []
        for layer in range(self.num_layers):
            dirs = []
            for suffix in self._suffixes(layer):
                dirs.append(
                    DirectionWeights(
                        w_ih=cast(params["weight_ih" + suffix]),
                        w_hh=cast(params["weight_hh" + suffix]),
                        b_ih=cast(params.get("bias_ih" + suffix)),
                        b_hh=cast(params.get("bias_hh" + suffix)),
                        kind=self.kind,
                    )
                )
            layers.append(dirs)
        return layers

    # --- call ------------------------------------------------------------------------------------
    def _state_rows(self) -> int:
        return self.num_layers * self.num_directions

    def _state_hint(self, batch: int) -> str:
        """The expected state shape, for error messages only: formatting ``batch`` while ``torch.compile``
        traces makes it specialise the batch size (a recompile per batch), so callers format it on failure."""
        return f" (num_layers*num_directions={self._state_rows()}, batch={batch}, hidden_size={self.hidden_size})"

    def _check_state_shape(self, t: torch.Tensor, label: str, batch: int) -> None:
        """A given initial state ``t`` must be ``(num_layers*D, batch, hidden_size)``: fewer rows raise
        :class:`HxRowsError` (MindSpore's IndexError fetching the missing row), any other shape
        ``ValueError``; ``label`` names the tensor (``"hx h0"``, ``"For 'GRU', hx"``)."""
        rows = self._state_rows()
        expected = (rows, batch, self.hidden_size)
        hint = functools.partial(self._state_hint, batch)  # (formatted on failure only)
        if t.dim() == 3 and t.shape[0] < rows:
            raise HxRowsError(
                f"{label} must have shape {expected}{hint()}; received {tuple(t.shape)} "
                f"(only {t.shape[0]} of {rows} rows)"
            )
        check_shape(t, expected, label, hint)

    def _initial_states(
        self, hx: Any, batch: int, in_dtype: torch.dtype, compute: torch.dtype
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(h0, c0)`` ``(L*D, B, H)`` in ``compute`` from a given ``hx`` (c0 None for GRU/RNN)."""
        raise NotImplementedError

    def _semantics(self, with_lengths: bool, compute: torch.dtype) -> LayerSemantics:
        """The engine semantics of a call (with or without ``seq_length``) in ``compute`` dtype."""
        raise NotImplementedError

    def _result(self, out: torch.Tensor, h_n: torch.Tensor, c_n: Optional[torch.Tensor]) -> Any:
        """What ``forward`` returns (already in the input's dtype and layout)."""
        raise NotImplementedError

    def _check_lengths(self, seq_length: Any, batch: int, steps: int) -> torch.Tensor:
        name = self.cell_name
        if not isinstance(seq_length, (torch.Tensor, np.ndarray)):
            raise NotATensorError(
                f"For '{name}', 'seq_length' must be a (batch,) int32/int64 tensor; received "
                f"{type(seq_length).__name__}"
            )
        lengths = as_tensor(seq_length, "seq_length")
        if lengths.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"For '{name}', the 'seq_length' should be one of [int32, int64], but got {lengths.dtype}")
        if lengths.dim() == 1 and lengths.shape[0] != batch:
            raise ValueError(
                f"For '{name}' batch size of x and seq_length must be equal, but got {batch} of x and "
                f"{lengths.shape[0]} of seq_length (seq_length must have shape ({batch},))"
            )
        check_shape(lengths, (batch,), "seq_length", lambda: f" (batch size of x is {batch})")
        if self.bidirectional and tracing():  # the value check runs inside the recorded graph
            checked: torch.Tensor = check_range(
                cast(lengths, torch.int64),
                0,
                steps,
                f"For '{name}' (bidirectional), seq_length must be in [0, {{high}}] (the number of time steps); "
                "received seq_length[{index}] = {value}",
            )
            return checked
        if self.bidirectional:
            bad = ((lengths < 0) | (lengths > steps)).nonzero()
            if bad.numel():
                index = int(bad[0, 0])
                raise KernelRuntimeError(
                    f"For '{name}' (bidirectional), seq_length must be in [0, {steps}] (the "
                    f"number of time steps); received seq_length[{index}] = "
                    f"{int(lengths[index])}"
                )
        # A unidirectional MindSpore net treats lengths > T as T and negative lengths as 0: what every use of the
        # result, the mask t < length (lengths_to_valid, _checked_valid), gives unclamped (and for int32 too).
        return lengths

    def forward(self, x: Any, hx: Any = None, seq_length: Any = None) -> Any:
        """Run the stack; see the module docstring for shapes and the seq_length rule."""
        if hx is None and type(x) is torch.Tensor:
            if _callplan.plannable():
                return self._planned(x, seq_length)
            if _trainplan.plannable():
                return self._planned_training(x, seq_length)
        return self._forward(x, hx, seq_length)

    def _planned_training(self, x: torch.Tensor, seq_length: Any) -> Any:
        """A recorded (grad mode) call through the net's cached training plan
        (:mod:`lstm_bridge.engine.trainplan`, one per layer): the first call of a signature - input
        shape/dtype/device and ``requires_grad``, backend, ``seq_length`` presence, train mode, the parameter
        objects and their ``requires_grad`` - runs :meth:`_forward` (every check and error) and plans the next
        ones, which check ``seq_length`` as :meth:`_forward` does and run each layer's kernel autograd Function.
        Planned: LSTM nets whose layers the full path ran on the native kernel (``seq_length``; the standard
        layer with ``numerics="mindspore-cpu-bits"`` keeps oneDNN), no dropout between layers, no cast."""
        params = tuple(self._parameters.values())
        key = (
            x.shape, x.dtype, x.device, _backend_request(), x.requires_grad, seq_length is None,
            self.training and self.dropout > 0, self.batch_first, *params,
            *[p is not None and p.requires_grad for p in params],
        )  # fmt: skip
        slot = self.__dict__.get("_train_plan")
        if slot is None:
            slot = self.__dict__["_train_plan"] = _callplan.PlanSlot()  # (copies and pickles start empty)
        cached = slot.entry
        if cached is None or not _trainplan.same_key(cached[0], key):
            result = self._forward(x, None, seq_length)
            slot.entry = (key, self._training_plan(x, seq_length is not None))
            return result
        run = cached[1]
        if run is None:
            return self._forward(x, None, seq_length)
        return run(self, x, seq_length)

    def _training_plan(self, x: torch.Tensor, with_lengths: bool) -> Optional[Callable[..., Any]]:
        """The planned recorded call of a signature :meth:`_forward` has just run (None: not planned): the
        layers' training plans on the Parameters themselves and zero initial states."""
        if self.kind is not CellKind.LSTM or x.dtype not in _PLANNED_DTYPES or x.numel() == 0:
            return None
        if (self.training and self.dropout > 0) or any(
            p is not None and p.dtype != x.dtype for p in self._parameters.values()
        ):
            return None
        layers = self._layer_weights(x.dtype)  # (no cast: the Parameters themselves, read on every call)
        xt = x.transpose(0, 1) if self.batch_first else x
        T, B = xt.shape[0], xt.shape[1]
        D, H = self.num_directions, self.hidden_size
        valid = xt.new_ones((T, B), dtype=torch.bool) if with_lengths else None
        zeros = [xt.new_zeros(B, H)] * D
        semantics = self._semantics(with_lengths, x.dtype)
        none: List[Any] = [None] * D
        plans = []
        layer_in = xt
        for dirs in layers:
            plan = _trainplan.plan_training_layer(
                layer_in, dirs, zeros, zeros, reverse=[False, True][:D], valid=valid, semantics=semantics, dropout=none
            )
            if plan is None:
                return None
            plans.append(plan)
            layer_in = xt.new_empty(T, B, D * H)
        batch_first = self.batch_first

        def run(net: RecurrentNet, x: torch.Tensor, seq_length: Any) -> Any:
            xt = x.transpose(0, 1) if batch_first else x
            valid = None if seq_length is None else lengths_to_valid(net._check_lengths(seq_length, B, T), T)
            out, h_n, c_n = xt, [], []
            for plan, dirs in zip(plans, layers):  # (what run_stack does over the layers)
                outs, hs, cs = plan.run(out, dirs, zeros, zeros, valid, none)
                out = outs[0] if D == 1 else torch.cat(outs, dim=-1)
                h_n.extend(hs)
                c_n.extend(cs)
            if batch_first:
                out = out.transpose(0, 1)
            return net._result(out, torch.stack(h_n), torch.stack(c_n))

        return run

    def _apply(self, *args: Any, **kwargs: Any) -> Any:
        """``Module._apply`` (``.to``, ``.double()``, ``.float()``, ...), forgetting the cached weight views and
        call plans first: a conversion changes the parameters' dtype (or device) in place, keeping their
        identity and version, which is all that those caches' keys read."""
        self.__dict__.pop("_inference_weights", None)
        self.__dict__.pop("_call_plan", None)
        self.__dict__.pop("_train_plan", None)
        return super()._apply(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _planned(self, x: torch.Tensor, seq_length: Any) -> Any:
        """An inference call through the net's cached call plans (:mod:`lstm_bridge.engine.callplan`, one per
        layer): the first call of a signature - input shape/dtype/device, backend, ``seq_length`` presence,
        train mode, the parameter objects - runs :meth:`_forward` (every check and error) and plans the next
        ones, which skip to the engine's selected kernels. ``seq_length``'s values are checked on every call.

        The plan keeps the layers' weight views (the Parameters themselves: only planned when no cast is
        needed, so their current values are read on every call) and is keyed on the Parameters' identity;
        :meth:`_apply` drops it when a conversion changes their dtype in place."""
        dropping = self.training and self.dropout > 0  # (dropout between layers: never planned, see _plan)
        key = (
            x.shape, x.dtype, x.device, _backend_request(), _autocast_state(), seq_length is None, dropping,
            self.batch_first, *map(id, self._parameters.values()),
        )  # fmt: skip
        slot = self.__dict__.get("_call_plan") or _callplan.PlanSlot.of(self)
        cached = slot.entry
        if (cached is None or cached[0] != key) and (cached := slot.recall(key)) is None:
            result = self._forward(x, None, seq_length)
            # (the Parameters kept alive with the plan: the key holds their ids)
            params = tuple(self._parameters.values())
            slot.keep((key, self._plan(x, seq_length is not None), params), params)
            return result
        run = cached[1]
        if run is None:
            return self._forward(x, None, seq_length)
        return run(self, x, seq_length)

    def _checked_valid(self, seq_length: Any, lengths: _PlannedLengths) -> torch.Tensor:
        """A planned call's ``(T, B)`` step mask from ``seq_length`` through :meth:`_check_lengths`: its
        errors, or a unidirectional net's clamping to ``[0, T]`` (what ``lengths_to_valid`` gives); bool, or
        viewed as uint8 (the kernel's own form) when every layer plan takes that (``lengths.byte``).

        :meth:`_planned` reads a ``(B,)`` tensor's mask from the plan's ``(T, T + 1)`` uint8 table (column
        ``l`` is ``t < l``: the same 0/1 values, in the kernel's own form) in one ``index_select``, which
        raises for any index dtype but int32/int64 and for a length outside ``[0, T]``; such a call, like any
        other argument, comes here."""
        steps = lengths.steps
        valid = steps < self._check_lengths(seq_length, lengths.shape[0], steps.shape[0])
        return valid.view(torch.uint8) if lengths.byte else valid

    def _plan(self, x: torch.Tensor, with_lengths: bool) -> Optional[_PlannedRun]:
        """The planned call of a signature that :meth:`_forward` has just run (None: not planned), from the
        per-layer plans, the layers' weights (the Parameters themselves), the zero initial states per
        direction and what the ``seq_length`` mask is built from (:func:`_planned_run`)."""
        if self.kind is not CellKind.LSTM or x.dtype not in _PLANNED_DTYPES or x.numel() == 0:
            return None  # (16-bit inputs compute in float32: not planned)
        if self.training and self.dropout > 0:
            return None
        if self.num_layers > 1 and _autocast_state():
            return None  # (under autocast the layers after the first take the first's bfloat16 output)
        if any(p is not None and p.dtype != x.dtype for p in self._parameters.values()):
            return None  # (a cast copies values per call: the full path)
        layers = self._layer_weights(x.dtype)
        xt = x.transpose(0, 1) if self.batch_first else x
        T, B = xt.shape[0], xt.shape[1]
        D = self.num_directions
        valid = xt.new_ones((T, B), dtype=torch.bool) if with_lengths else None
        zeros = [xt.new_zeros(B, self.hidden_size)] * D
        semantics = self._semantics(with_lengths, x.dtype)
        plans = []
        layer_in = xt
        for dirs in layers:
            plan = plan_layer(layer_in, dirs, zeros, zeros, reverse=[False, True][:D], valid=valid, semantics=semantics)
            if plan is None:
                return None
            plans.append(plan)
            layer_in = xt.new_empty(T, B, D * self.hidden_size)
        steps = torch.arange(T, device=xt.device).unsqueeze(1)
        byte = all(p.byte_mask for p in plans)  # (the kernel's mask form: a one-layer run_one takes only that)
        table = None
        if byte and T <= _MAX_TABLE_STEPS:
            table = (steps < torch.arange(T + 1, device=xt.device)).to(torch.uint8)  # [t, l] = t < l
        # batch_first's two transposes, unless T = B = 1: swapping two dimensions of size 1 is the identity
        # (same shape and strides; a one-step, one-sample streaming call skips 1.4 us of views)
        swap = self.batch_first and (T, B) != (1, 1)
        return _planned_run(plans, layers, zeros, _PlannedLengths(torch.Size([B]), steps, table, byte), swap)

    def _forward(self, x: Any, hx: Any, seq_length: Any) -> Any:
        name = self.cell_name
        x = as_float(x, "x")
        if x.dim() != 3:
            layout = "(batch, time, input_size)" if self.batch_first else "(time, batch, input_size)"
            raise ValueError(
                f"For '{name}', the x_shape.size() must be equal to 3: x must be 3-D {layout}; "
                f"received shape {tuple(x.shape)}"
            )
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"For '{name}', the x_shape[2] (input_size) must be equal to {self.input_size}, but got {x.shape[2]}"
            )
        in_dtype = x.dtype
        compute = torch.float32 if in_dtype in (torch.float16, torch.bfloat16) else in_dtype
        xt = cast(x.transpose(0, 1) if self.batch_first else x, compute)
        T, B = xt.shape[0], xt.shape[1]
        if T == 0:  # MindSpore 2.10: LSTM RuntimeError "could not execute a primitive"; GRU/RNN ValueError (Stack)
            raise KernelRuntimeError(
                f"For '{name}', x must have at least one time step; received x of shape {tuple(x.shape)} (T = 0)"
            )
        if hx is None:
            rows = self._state_rows()
            check_allocation(
                lambda: f"the default initial state of shape ({rows}, {B}, {self.hidden_size})",
                rows * B * self.hidden_size,
                xt.dtype,
            )
            h0 = xt.new_zeros(rows, B, self.hidden_size)
            c0: Optional[torch.Tensor] = h0 if self.kind is CellKind.LSTM else None
        else:
            h0, c0 = self._initial_states(hx, B, in_dtype, compute)
        valid = None
        if seq_length is not None:
            valid = lengths_to_valid(self._check_lengths(seq_length, B, T), T)
        between = self.dropout_op if self.training and self.dropout > 0 else None
        out, h_n, c_n = run_stack(
            xt,
            self.layer_weights(compute),
            h0,
            c0,
            valid=valid,
            semantics=self._semantics(seq_length is not None, compute),
            between_layers=between,
        )
        if self.batch_first:
            out = out.transpose(0, 1)
        # under CPU autocast the engine returns the autocast dtype, as torch.nn.LSTM does: kept (not cast back)
        res = out.dtype if in_dtype == torch.float32 and out.dtype in (torch.bfloat16, torch.float16) else in_dtype
        return self._result(cast(out, res), cast(h_n, res), None if c_n is None else cast(c_n, res))


class CellBase(torch.nn.Module):
    """The common body of MindSpore's one-step cells: argument checks, parameters (drawn as MindSpore's
    ``Uniform(1/sqrt(H))``, from NumPy's global RNG), eval mode at start, ``set_train``, strict
    ``load_state_dict``. Subclasses name :attr:`kind` and :attr:`cell_name` and define ``forward``."""

    kind: CellKind = CellKind.LSTM
    cell_name: str = "LSTMCell"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        has_bias: bool = True,
        dtype: Any = None,
        numerics: str = "mindspore-cpu",
    ):
        super().__init__()
        name = self.cell_name
        check_positive_int(input_size, "input_size", name)
        check_positive_int(hidden_size, "hidden_size", name)
        check_bool(has_bias, "has_bias", name)
        self.input_size, self.hidden_size, self.has_bias = input_size, hidden_size, has_bias
        self.numerics = check_numerics(numerics)
        dtype = check_dtype_arg(dtype)
        gh = self.kind.gate_count * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        what = f"the parameters of {name}(input_size={input_size}, hidden_size={hidden_size}, has_bias={has_bias})"
        check_allocation(what, gh * (input_size + hidden_size + (2 if has_bias else 0)), dtype)
        with allocation_errors(what):
            self.weight_ih = torch.nn.Parameter(ms_uniform((gh, input_size), bound, dtype))
            self.weight_hh = torch.nn.Parameter(ms_uniform((gh, hidden_size), bound, dtype))
            if has_bias:
                self.bias_ih = torch.nn.Parameter(ms_uniform((gh,), bound, dtype))
                self.bias_hh = torch.nn.Parameter(ms_uniform((gh,), bound, dtype))
            else:
                self.register_parameter("bias_ih", None)
                self.register_parameter("bias_hh", None)
        self.train(False)

    def set_train(self, mode: bool = True) -> CellBase:
        """MindSpore's name for ``train(mode)``."""
        return self.train(mode)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load ``weight_ih``/``weight_hh``/``bias_ih``/``bias_hh``; strict mismatches raise ``ValueError``."""
        return load_strict(self, super().load_state_dict, state_dict, strict, assign)

    def cell_weights(self, dtype: torch.dtype) -> DirectionWeights:
        """The canonical weights of this cell's kind, cast to ``dtype`` (differentiable)."""
        return DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, kind=self.kind).to(dtype)


def _planned_run(
    plans: List[_callplan.LayerPlan],
    layers: List[List[DirectionWeights]],
    zeros: List[torch.Tensor],
    lengths: _PlannedLengths,
    swap: bool,
) -> _PlannedRun:
    """A net's planned call ``run(net, x, seq_length) -> output, (h_n, c_n)`` (LSTM only): the layer plans
    on the planned weights and zero states, ``x`` and the output transposed when ``swap``, the step mask
    from ``seq_length`` read from ``lengths.table`` by one ``index_select`` when it is a ``(B,)`` tensor
    (``index_select`` raises for an index dtype but int32/int64 and for a length outside ``[0, T]``: such a
    call, and any other ``seq_length``, goes through :meth:`RecurrentNet._checked_valid`, with its errors).
    Everything is bound here, at plan time: this runs on every planned call."""
    table, shape, tensor = lengths.table, lengths.shape, torch.Tensor
    select = None if table is None else table.index_select  # (the bound method: 0.06 us fewer than the function)
    one = plans[0].run_one if len(plans) == 1 else None

    def mask(net: RecurrentNet, seq_length: Any) -> Optional[torch.Tensor]:
        if seq_length is None:
            return None
        if select is not None and type(seq_length) is tensor and seq_length.shape == shape:
            try:
                return select(1, seq_length)
            except (RuntimeError, IndexError):
                pass  # (_checked_valid raises, or clamps)
        return net._checked_valid(seq_length, lengths)

    if one is not None:  # one layer, one direction on the native kernel's lean entry (mask() written out)

        def run_one(net: RecurrentNet, x: torch.Tensor, seq_length: Any) -> Any:
            xt = x.transpose(0, 1) if swap else x
            if seq_length is None:
                valid = None
            elif select is not None and type(seq_length) is tensor and seq_length.shape == shape:
                try:
                    valid = select(1, seq_length)
                except (RuntimeError, IndexError):
                    valid = net._checked_valid(seq_length, lengths)
            else:
                valid = net._checked_valid(seq_length, lengths)
            out, h_n, c_n = one(xt, zeros, zeros, valid)
            return (out.transpose(0, 1) if swap else out), (h_n, c_n)  # (what LSTM._result returns)

        return run_one

    def run_layers(net: RecurrentNet, x: torch.Tensor, seq_length: Any) -> Any:
        xt = x.transpose(0, 1) if swap else x
        valid = mask(net, seq_length)
        if len(plans) == 1:  # (one layer: its stacked states are the net's)
            out, h_n, c_n = plans[0].run_stacked(xt, layers[0], zeros, zeros, valid)
        else:
            out, hs, cs = xt, [], []
            for plan, dirs in zip(plans, layers):
                out, h_l, c_l = plan.run_stacked(out, dirs, zeros, zeros, valid)
                hs.append(h_l)
                cs.append(c_l)
            h_n, c_n = torch.cat(hs), torch.cat(cs)
        return (out.transpose(0, 1) if swap else out), (h_n, c_n)

    return run_layers
