"""The Keras recurrent cells — ``LSTMCell``, ``GRUCell``, ``SimpleRNNCell`` — their weights, config,
regularizers, constraints and dropout; one generic :class:`RecurrentCell` over the cell kind, with thin
public subclasses that keep Keras's explicit signatures.

Weights, exactly Keras's order and shapes (``u = units``)::

    kind        kernel          recurrent_kernel  bias                                   blocks
    LSTM        (input_dim, 4u) (u, 4u)           (4u,)                                  i, f, c, o
    GRU         (input_dim, 3u) (u, 3u)           (2, 3u) reset_after, else (3u,)        z, r, h
    SimpleRNN   (input_dim, u)  (u, u)            (u,)                                   -

``x_t @ kernel``, ``h_{t-1} @ recurrent_kernel``; no bias when use_bias=False. They are
``torch.nn.Parameter`` objects, so optimizers, regularizers and constraints see exactly what Keras sees.
The engine reads them as canonical weights: LSTM / SimpleRNN ``w_ih = kernel.T``, ``b_ih = bias``,
``b_hh = None`` (views, no copy); GRU with the column blocks permuted to PyTorch's r, z, n and the bias
rows as ``b_ih`` / ``b_hh`` (``reset_after=False``: ``b_ih`` only), differentiable back to the Parameters.

Example::

    >>> import torch; from lstm_bridge.keras import LSTMCell
    >>> cell = LSTMCell(4)
    >>> h, (h, c) = cell(torch.zeros(2, 3), [torch.zeros(2, 4), torch.zeros(2, 4)])
    >>> tuple(h.shape)
    (2, 4)
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
import torch

from .. import activations as _act
from .._tensors import as_float, check_shape
from ..engine import CellActivations, CellKind, DirectionWeights, DropoutMasks, LayerSemantics, run_layer
from ..engine.guards import check_allocation, tracing
from . import initializers as _initializers, options as _options

_name_counters: Dict[str, itertools.count[int]] = {}


def unique_name(base: str) -> str:
    """Keras-style automatic names: ``lstm``, ``lstm_1``, ``lstm_2``, ..."""
    n = next(_name_counters.setdefault(base, itertools.count()))
    return base if n == 0 else f"{base}_{n}"


def resolve_dtype(dtype: Any) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy config
        dtype = (dtype.get("config") or {}).get("name", "float32")
    table = {
        "float32": torch.float32,
        "float64": torch.float64,
        "float16": torch.float16,
        "mixed_float16": torch.float32,
        "mixed_bfloat16": torch.float32,
    }
    if str(dtype) not in table:
        raise ValueError(f"dtype must be one of {sorted(table)}; received {dtype!r}")
    return table[str(dtype)]


def dropout_mask(
    rate: float, count: int, shape: Sequence[int], like: torch.Tensor, generator: Optional[torch.Generator]
) -> Optional[torch.Tensor]:
    """``count`` inverted-dropout masks of ``shape``: 0 or 1/(1-rate), stacked to ``(count, *shape)``."""
    if rate <= 0.0 or rate >= 1.0:  # Keras 3 applies dropout only for 0 < rate < 1
        return None
    keep = 1.0 - rate
    if generator is not None and tracing():
        raise RuntimeError(
            "a layer with a dropout seed draws its dropout masks from its own torch.Generator, which "
            "torch.compile / torch.export cannot record: construct the layer without seed= (torch.manual_seed "
            "seeds the masks then), or call it eagerly or with training=False"
        )
    # (no generator argument without one: torch.rand's generator overload refuses the symbolic sizes of a
    # torch.compile trace, so a compiled training call with dropout would fail)
    size = (count, *shape)
    draw = (
        torch.rand(size, dtype=torch.float32)
        if generator is None
        else torch.rand(size, generator=generator, dtype=torch.float32)
    ).to(like.device)
    if like.dtype == torch.float32:  # the same values in place: no bool and no second float32 tensor
        return draw.lt_(keep).div_(keep)
    return (draw < keep).to(like.dtype) / keep


#: Keras's GRU column blocks are z, r, h; the engine's (PyTorch's) r, z, n: canonical block k is Keras block
#: ``_GRU_ORDER[k]``.
_GRU_ORDER = (1, 0, 2)
#: The state names per kind, for messages.
_STATE_NAMES = {CellKind.LSTM: ("h", "c"), CellKind.GRU: ("h",), CellKind.RNN: ("h",)}


def state_names(kind: CellKind) -> Tuple[str, ...]:
    """The names of a cell's states: ``("h", "c")`` for LSTM, ``("h",)`` for GRU and SimpleRNN."""
    return _STATE_NAMES[kind]


class RecurrentCell(torch.nn.Module):
    """A Keras recurrent cell of one kind (:attr:`kind`): one step,
    ``cell(inputs, states, training=None) -> (h, new_states)``.

    The public classes (:class:`LSTMCell`, :class:`GRUCell`, :class:`SimpleRNNCell`) only declare Keras's
    signature; everything else is here, driven by the option declarations of
    :mod:`lstm_bridge.keras.options` for the kind. ``keras_version`` (2 or 3) chooses what ambiguous
    activation names mean (``"hard_sigmoid"``); any callable is accepted as an activation. Like a Keras
    layer, the module starts in inference mode: dropout applies when ``training=True`` is passed, or after
    ``.train()`` when ``training`` is left as None.
    """

    kind: ClassVar[CellKind] = CellKind.LSTM
    # Set from the declared cell options (keras/options.py: one parse per option; the kind's only).
    units: int
    activation: Callable[[torch.Tensor], torch.Tensor]
    recurrent_activation: Callable[[torch.Tensor], torch.Tensor]
    use_bias: bool
    kernel_initializer: Any
    recurrent_initializer: Any
    bias_initializer: Any
    unit_forget_bias: bool
    reset_after: bool
    kernel_regularizer: Optional[Callable[[torch.Tensor], torch.Tensor]]
    recurrent_regularizer: Optional[Callable[[torch.Tensor], torch.Tensor]]
    bias_regularizer: Optional[Callable[[torch.Tensor], torch.Tensor]]
    kernel_constraint: Optional[Callable[[torch.Tensor], torch.Tensor]]
    recurrent_constraint: Optional[Callable[[torch.Tensor], torch.Tensor]]
    bias_constraint: Optional[Callable[[torch.Tensor], torch.Tensor]]
    dropout: float
    recurrent_dropout: float
    implementation: int
    seed: Optional[int]

    #: TF 1.15 keeps ``implementation=2`` with recurrent dropout; Keras 2/3 force implementation 1.
    _keeps_implementation_with_recurrent_dropout = False

    def _configure(
        self, values: Dict[str, Any], *, name: Optional[str], trainable: bool, dtype: Any, keras_version: int
    ) -> None:
        """The one initialiser behind every cell signature: each declared cell option of the kind
        (keras/options.py) validated and stored under its name, then the state derived from them."""
        self.keras_version = keras_version
        opts = _options.cell_options(self.kind)
        # units and implementation first (their errors come before the others', as they always have)
        for opt in sorted(opts, key=lambda o: o.name not in ("units", "implementation")):
            setattr(self, opt.name, opt.parse(values[opt.name], opt.name, keras_version))
        if self.kind is CellKind.RNN:
            self.implementation = 1  # SimpleRNN has one matmul per operand: no implementation argument
        self._inits = [
            _initializers.get(values[key])
            for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer")
        ]
        if self.recurrent_dropout > 0 and not self._keeps_implementation_with_recurrent_dropout:
            self.implementation = 1  # Keras (2 and 3) forces implementation 1 when recurrent_dropout is used.
        self.name = name or unique_name(self._default_name())
        self._trainable = bool(trainable)
        self.dtype_ = resolve_dtype(dtype)
        self._generator: Optional[torch.Generator] = None
        if self.seed is not None:
            self._generator = torch.Generator().manual_seed(int(self.seed))
        self.input_dim: Optional[int] = None
        self.kernel: Optional[torch.nn.Parameter] = None
        self.recurrent_kernel: Optional[torch.nn.Parameter] = None
        self.bias: Optional[torch.nn.Parameter] = None
        self.train(False)

    @classmethod
    def _default_name(cls) -> str:
        return {CellKind.LSTM: "lstm_cell", CellKind.GRU: "gru_cell", CellKind.RNN: "simple_rnn_cell"}[cls.kind]

    @property
    def state_size(self) -> Union[int, List[int]]:
        """Keras's ``state_size``: ``[u, u]`` for LSTM, ``u`` for GRU and SimpleRNN."""
        return [self.units, self.units] if self.kind is CellKind.LSTM else self.units

    @property
    def n_states(self) -> int:
        """How many state tensors the cell carries: 2 (h, c) for LSTM, 1 (h) otherwise."""
        return len(_STATE_NAMES[self.kind])

    @property
    def _width(self) -> int:
        """``G*u``: the columns of kernel and recurrent_kernel."""
        return self.kind.gate_count * self.units

    # --- building and weights ------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.kernel is not None

    @property
    def trainable(self) -> bool:
        """Keras's ``trainable``; setting it (also after building) switches ``requires_grad``."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in (self.kernel, self.recurrent_kernel, self.bias):
            if p is not None:
                p.requires_grad_(self._trainable)

    def _bias_shape(self) -> Tuple[int, ...]:
        if self.kind is CellKind.GRU and self.reset_after:
            return (2, self._width)
        return (self._width,)

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Create the weights for inputs whose last dimension is the feature size."""
        input_dim = input_shape[-1]
        if input_dim is None or isinstance(input_dim, bool) or int(input_dim) <= 0:
            raise ValueError(f"the last dimension of the input must be a positive size; received {tuple(input_shape)}")
        u, width = self.units, self._width
        shapes = self.expected_weight_shapes(int(input_dim))
        check_allocation(
            lambda: (
                f"the weights of {self.kind.value} cell {self.name!r} (units={u}, input_dim={int(input_dim)}: "
                f"shapes {shapes})"
            ),
            sum(math.prod(shape) for shape in shapes),
            self.dtype_,
        )
        self.input_dim = int(input_dim)
        dtype = self.dtype_
        # a seeded initializer draws from its own generator, one per weight (initializers.generator_for)
        g_kernel, g_recurrent, gen = (
            _initializers.generator_for(init, role, self._generator)
            for init, role in zip(self._inits, ("kernel", "recurrent_kernel", "bias"))
        )
        kernel = _initializers.call(self._inits[0], (self.input_dim, width), dtype, g_kernel)
        recurrent = _initializers.call(self._inits[1], (u, width), dtype, g_recurrent)
        if self.kind is CellKind.LSTM:
            # Keras's shapes over torch's row-major (4u, input_dim) / (4u, u) storage: the engine's
            # ``w_ih = kernel.T`` / ``w_hh = recurrent_kernel.T`` are then contiguous, so torch's oneDNN
            # LSTM reads them without a transposing copy per call (and their gradients need none either).
            kernel, recurrent = kernel.t().contiguous().t(), recurrent.t().contiguous().t()
        self.kernel = torch.nn.Parameter(kernel, requires_grad=self.trainable)
        self.recurrent_kernel = torch.nn.Parameter(recurrent, requires_grad=self.trainable)
        if self.use_bias:
            if self.kind is CellKind.LSTM and self.unit_forget_bias:
                init = self._inits[2]
                bias = torch.cat(
                    [
                        _initializers.call(init, (u,), dtype, gen),
                        torch.ones(u, dtype=dtype),
                        _initializers.call(init, (2 * u,), dtype, gen),
                    ]
                )
            else:
                bias = _initializers.call(self._inits[2], self._bias_shape(), dtype, gen)
            self.bias = torch.nn.Parameter(bias, requires_grad=self.trainable)

    def _ensure_built(self, input_dim: int) -> None:
        if not self.built:
            self.build((None, input_dim))
        elif input_dim != self.input_dim:
            raise ValueError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: expected last dimension "
                f"{self.input_dim}, received {input_dim}"
            )

    @property
    def weights(self) -> List[torch.nn.Parameter]:
        """``[kernel, recurrent_kernel, bias]`` (no bias when use_bias=False): the Parameters themselves."""
        if not self.built:
            return []
        return [p for p in (self.kernel, self.recurrent_kernel, self.bias) if p is not None]

    @property
    def trainable_weights(self) -> List[torch.nn.Parameter]:
        """:attr:`weights` when ``trainable``, else ``[]`` (Keras's split)."""
        return self.weights if self._trainable else []

    @property
    def non_trainable_weights(self) -> List[torch.nn.Parameter]:
        return [] if self._trainable else self.weights

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the weights as NumPy arrays, in Keras order and shapes (``[]`` before building)."""
        return [p.detach().cpu().numpy().copy() for p in self.weights]

    def _load_from_state_dict(
        self,
        state_dict: Dict[str, Any],
        prefix: str,
        local_metadata: Dict[str, Any],
        strict: bool,
        missing_keys: List[str],
        unexpected_keys: List[str],
        error_msgs: List[str],
    ) -> None:
        # An unbuilt layer builds itself from the state dict's kernel shape, as it would on its first call.
        kernel = state_dict.get(prefix + "kernel")
        if not self.built and isinstance(kernel, torch.Tensor) and kernel.dim() == 2:
            if kernel.shape[1] != self._width:
                error_msgs.append(
                    f"size mismatch for {prefix}kernel: expected (input_dim, {self._width}); "
                    f"received {tuple(kernel.shape)}"
                )
                return
            self.build((None, int(kernel.shape[0])))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def expected_weight_shapes(self, input_dim: int) -> List[Tuple[int, ...]]:
        """Keras's weight shapes for ``input_dim`` features: kernel, recurrent_kernel (and bias)."""
        shapes: List[Tuple[int, ...]] = [(input_dim, self._width), (self.units, self._width)]
        return shapes + [self._bias_shape()] if self.use_bias else shapes

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set ``[kernel, recurrent_kernel, bias]`` (Keras's shapes, see the module docstring) in place
        (builds if needed)."""
        weights = list(weights)
        if not weights and not self.built:
            return  # Keras: an unbuilt layer has no weights, so [] is a no-op
        n = 3 if self.use_bias else 2
        if len(weights) != n:
            raise ValueError(
                f"layer {self.name!r} expects {n} weights "
                f"({'kernel, recurrent_kernel, bias' if self.use_bias else 'kernel, recurrent_kernel'}); "
                f"received {len(weights)}"
            )
        arrays = [np.asarray(w) for w in weights]
        if arrays[0].ndim != 2:
            raise ValueError(f"kernel must be 2-D (input_dim, {self._width}); received shape {arrays[0].shape}")
        input_dim = int(self.input_dim) if self.input_dim is not None else int(arrays[0].shape[0])
        for label, arr, shape in zip(
            ("kernel", "recurrent_kernel", "bias"), arrays, self.expected_weight_shapes(input_dim)
        ):
            if tuple(arr.shape) != shape:
                hint = ""
                if label == "bias" and self.kind is CellKind.GRU:
                    hint = (
                        " (a (2, 3u) bias is reset_after=True's, a (3u,) bias reset_after=False's; this "
                        f"layer has reset_after={self.reset_after})"
                    )
                raise ValueError(
                    f"{label} of layer {self.name!r} must have shape {shape}; received {tuple(arr.shape)}{hint}"
                )
        self._ensure_built(input_dim)
        with torch.no_grad():
            for p, arr in zip(self.weights, arrays):
                p.copy_(torch.from_numpy(np.array(arr, copy=True)).to(p.dtype))

    def direction_weights(self, dtype: Optional[torch.dtype] = None) -> DirectionWeights:
        """Canonical engine weights, differentiable back to the Parameters: LSTM / SimpleRNN views of them;
        GRU with Keras's z, r, h blocks permuted to r, z, n (``reset_after``: bias row 0 is ``b_ih``, row 1
        ``b_hh``; else the bias is ``b_ih`` and ``b_hh`` is None).

        Without grad mode (inference) an LSTM's / SimpleRNN's views are kept for the next call while the
        Parameters are the same objects at the same version over the same memory (an optimizer step,
        ``set_weights``, ``p.data = ...`` or ``.double()`` changes one of these): per-call overhead. Only views
        are kept, so a write through ``p.data`` (no version change) is read; GRU's permuted copies and dtype
        casts are made per call."""
        if torch.is_grad_enabled() or tracing() or self.kind is CellKind.GRU:
            return self._direction_weights(dtype)
        registered = self._parameters  # (read directly: Module.__getattr__ costs ~0.5 us per name)
        kernel, recurrent = registered.get("kernel"), registered.get("recurrent_kernel")
        bias = registered.get("bias")
        if kernel is None or recurrent is None or kernel.is_inference():  # not built / no version counter
            return self._direction_weights(dtype)  # (weights created under torch.inference_mode)
        if dtype is not None and dtype != kernel.dtype:
            return self._direction_weights(dtype)  # (a cast: copies, which a .data write would leave stale)
        key = (
            dtype,
            id(kernel),
            kernel._version,
            kernel.data_ptr(),
            id(recurrent),
            recurrent._version,
            recurrent.data_ptr(),
            id(bias),
            None if bias is None else bias._version,
            None if bias is None else bias.data_ptr(),
        )
        cached = self.__dict__.get("_inference_weights")
        if cached is not None and cached[0] == key:
            weights: DirectionWeights = cached[1]
            return weights
        weights = self._direction_weights(dtype)
        self.__dict__["_inference_weights"] = (key, weights)
        return weights

    def _apply(self, *args: Any, **kwargs: Any) -> Any:
        """``Module._apply`` (``.to``, ``.double()``, ...), forgetting the cached inference weights first (a
        conversion swaps the Parameters' data in place: same objects, same versions)."""
        self.__dict__.pop("_inference_weights", None)
        return super()._apply(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _direction_weights(self, dtype: Optional[torch.dtype]) -> DirectionWeights:

        def to(t: Optional[torch.Tensor]) -> torch.Tensor:
            t = cast(torch.Tensor, t)  # built: the weights exist
            return t if dtype is None else t.to(dtype)

        kernel, recurrent = to(self.kernel), to(self.recurrent_kernel)
        bias = None if self.bias is None else to(self.bias)
        if self.kind is not CellKind.GRU:
            return DirectionWeights(w_ih=kernel.t(), w_hh=recurrent.t(), b_ih=bias, b_hh=None, kind=self.kind)

        def perm(t: torch.Tensor) -> torch.Tensor:  # the last axis's z, r, h blocks as r, z, n
            blocks = torch.split(t, self.units, dim=-1)
            return torch.cat([blocks[k] for k in _GRU_ORDER], dim=-1)

        b_ih = b_hh = None
        if bias is not None:
            b_ih, b_hh = (perm(bias[0]), perm(bias[1])) if self.reset_after else (perm(bias), None)
        return DirectionWeights(
            w_ih=perm(kernel).t(), w_hh=perm(recurrent).t(), b_ih=b_ih, b_hh=b_hh, kind=CellKind.GRU
        )

    def cell_activations(self) -> CellActivations:
        """The engine's activations: LSTM and GRU gates take ``recurrent_activation``, the candidate (and
        the LSTM's cell output) ``activation``; SimpleRNN's one activation is the candidate."""
        if self.kind is CellKind.RNN:  # (the unused gate given too: torch.compile cannot build a default)
            return CellActivations(gate=_act.sigmoid, candidate=self.activation, cell=self.activation)
        return CellActivations(gate=self.recurrent_activation, candidate=self.activation, cell=self.activation)

    def semantics(self, masked_output: Any = None) -> LayerSemantics:
        """The engine's :class:`LayerSemantics` for this cell (``reset_after`` for GRU)."""
        kw: Dict[str, Any] = {} if masked_output is None else {"masked_output": masked_output}
        if self.kind is CellKind.GRU:
            kw["reset_after"] = self.reset_after
        return LayerSemantics(self.cell_activations(), **kw)

    # --- regularizers, constraints, dropout ----------------------------------------------------------
    def weight_losses(self) -> List[torch.Tensor]:
        pairs = (
            (self.kernel_regularizer, self.kernel),
            (self.recurrent_regularizer, self.recurrent_kernel),
            (self.bias_regularizer, self.bias),
        )
        return [reg(p) for reg, p in pairs if reg is not None and p is not None]

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project the weights onto their constraints in place, as Keras's optimizer does after a step."""
        pairs = (
            (self.kernel_constraint, self.kernel),
            (self.recurrent_constraint, self.recurrent_kernel),
            (self.bias_constraint, self.bias),
        )
        for constraint, p in pairs:
            if constraint is not None and p is not None:
                p.copy_(constraint(p))

    def resolve_training(self, training: Optional[bool]) -> bool:
        return self.training if training is None else bool(training)

    def _input_mask_count(self) -> int:
        """Input dropout masks per call: one per gate with implementation 1 (LSTM 4, GRU 3), else 1."""
        return self.kind.gate_count if self.implementation == 1 else 1

    def _recurrent_mask_count(self) -> int:
        # Keras 2/3: recurrent dropout always uses implementation 1, one mask per gate (SimpleRNN: 1)
        return self.kind.gate_count

    def dropout_masks(self, batch: int, like: torch.Tensor, training: bool) -> Optional[DropoutMasks]:
        """Masks for one call, reused at every step: one per gate with implementation=1 (LSTM 4 in i, f,
        g, o order; GRU 3, drawn in Keras's z, r, h order and handed over in the engine's r, z, n),
        else 1 shared; SimpleRNN 1."""
        if not training or (self.dropout == 0.0 and self.recurrent_dropout == 0.0):
            return None
        for name, rate in (("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)):
            if rate >= 1.0 and self.keras_version < 3:
                raise ValueError(
                    f"{name} of layer {self.name!r} must be a float in the range [0, 1) when training "
                    f"(tf_keras refuses it); received {name}={rate}"
                )
        inputs = dropout_mask(
            self.dropout, self._input_mask_count(), (batch, cast(int, self.input_dim)), like, self._generator
        )
        recurrent = dropout_mask(
            self.recurrent_dropout, self._recurrent_mask_count(), (batch, self.units), like, self._generator
        )
        if self.kind is CellKind.GRU:
            inputs, recurrent = (
                m[list(_GRU_ORDER)] if m is not None and m.shape[0] == 3 else m for m in (inputs, recurrent)
            )
        return DropoutMasks(inputs=inputs, recurrent=recurrent)

    # --- config ------------------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Every constructor argument (``cls.from_config(cell.get_config())`` rebuilds it): ``name``,
        ``trainable``, ``dtype``, then each declared cell option of the kind (keras/options.py) in
        Keras's order."""
        config: Dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": str(self.dtype_).replace("torch.", ""),
        }
        for opt in _options.cell_options(self.kind):
            config[opt.name] = opt.serialize(getattr(self, opt.name))
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> Any:
        config = dict(config)
        config.setdefault("keras_version", keras_version or config_keras_version(config))
        if cls.kind is CellKind.RNN:
            config.pop("implementation", None)  # tf_keras's SimpleRNN.from_config drops it too
        return cls(**config)

    # --- call ------------------------------------------------------------------------------------
    def forward(self, inputs: Any, states: Any, training: Optional[bool] = None) -> Tuple[torch.Tensor, Any]:
        """One step. ``inputs (B, input_dim)``; ``states`` ``[h, c]`` (LSTM) or ``[h]`` (GRU, SimpleRNN;
        also a bare ``h`` tensor, then the new state comes back bare, as in Keras), each ``(B, u)``
        -> ``(h, new_states)``."""
        cls_name = type(self).__name__
        x = as_float(inputs, "inputs", self.kernel.dtype if self.kernel is not None else self.dtype_)
        if x.dim() != 2:
            raise ValueError(f"{cls_name} inputs must be 2-D (batch, features); received shape {tuple(x.shape)}")
        self._ensure_built(x.shape[1])
        names = _STATE_NAMES[self.kind]
        bare = self.n_states == 1 and not isinstance(states, (list, tuple))
        if bare:
            states = [states]
        if not isinstance(states, (list, tuple)) or len(states) != len(names):
            raise ValueError(
                f"{cls_name} states must be a list [{', '.join(names)}]; received "
                f"{type(states).__name__}" + (f" of length {len(states)}" if isinstance(states, (list, tuple)) else "")
            )
        B = x.shape[0]
        values = [as_float(s, f"states[{i}] ({n})", x.dtype) for i, (s, n) in enumerate(zip(states, names))]
        for i, (v, n) in enumerate(zip(values, names)):
            check_shape(v, (B, self.units), f"states[{i}] ({n})")
        drop = self.dropout_masks(B, x, self.resolve_training(training))
        c0 = [values[1]] if self.kind is CellKind.LSTM else None
        _, hs, cs = run_layer(
            x.unsqueeze(0),
            [self.direction_weights()],
            [values[0]],
            c0,
            reverse=[False],
            semantics=self.semantics(),
            dropout=[drop],
        )
        if self.kind is CellKind.LSTM:
            return hs[0], [hs[0], cs[0]]
        return hs[0], (hs[0] if bare else [hs[0]])


class LSTMCell(RecurrentCell):
    """Keras ``LSTMCell(units, ...)``: one step, ``cell(inputs, [h, c], training=None) -> (h, [h, c])``.

    Arguments are Keras's (see ``tf.keras.layers.LSTMCell``); see :class:`RecurrentCell`.
    """

    kind = CellKind.LSTM

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 2,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        trainable: bool = True,
        dtype: Any = None,
        keras_version: int = 2,
    ):
        super().__init__()
        self._configure(
            _options.declared(locals(), "cell"),
            name=name,
            trainable=trainable,
            dtype=dtype,
            keras_version=keras_version,
        )


class GRUCell(RecurrentCell):
    """Keras ``GRUCell(units, ...)``: one step, ``cell(inputs, [h], training=None) -> (h, [h])``
    (a bare ``h`` in, a bare ``h`` out).

    Weights ``kernel (I, 3u)``, ``recurrent_kernel (u, 3u)``, ``bias (2, 3u)`` (``reset_after=True``: input
    row, recurrent row) or ``(3u,)`` (``reset_after=False``), column blocks z, r, h as Keras stores them
    (docs/spec/keras_gru_simplernn.md §1). ``implementation=1`` draws 3 dropout masks per kind (z, r, h).
    """

    kind = CellKind.GRU

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: int = 2,
        reset_after: bool = True,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        trainable: bool = True,
        dtype: Any = None,
        keras_version: int = 2,
    ):
        super().__init__()
        self._configure(
            _options.declared(locals(), "cell"),
            name=name,
            trainable=trainable,
            dtype=dtype,
            keras_version=keras_version,
        )


class SimpleRNNCell(RecurrentCell):
    """Keras ``SimpleRNNCell(units, ...)``: ``h' = activation(x @ kernel + bias + h @ recurrent_kernel)``;
    ``cell(inputs, [h], training=None) -> (h', [h'])`` (a bare ``h`` in, a bare ``h'`` out).

    Weights ``kernel (I, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)``; one dropout mask per kind.
    ``activation=None`` is linear.
    """

    kind = CellKind.RNN

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: Optional[int] = None,
        name: Optional[str] = None,
        trainable: bool = True,
        dtype: Any = None,
        keras_version: int = 2,
    ):
        super().__init__()
        self._configure(
            _options.declared(locals(), "cell"),
            name=name,
            trainable=trainable,
            dtype=dtype,
            keras_version=keras_version,
        )


def config_keras_version(config: Dict[str, Any]) -> int:
    """Guess which Keras wrote a layer config: Keras 3 stores the dtype as a DTypePolicy dict (3.x before
    the policies: a string, but every recurrent layer and cell config has a ``seed``). tf_keras 2.13+ also
    writes initializers with a ``module`` key (measured on tf_keras 2.21: ``LSTM``/``GRU``/``SimpleRNN``
    and their cells), so that key alone does not mark Keras 3; tf_keras configs never carry ``seed``."""
    if isinstance(config.get("dtype"), dict):
        return 3
    init = config.get("kernel_initializer")
    if isinstance(init, dict) and "module" in init and "seed" in config and "time_major" not in config:
        return 3
    return 2
