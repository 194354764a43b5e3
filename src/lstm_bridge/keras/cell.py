"""``LSTMCell``: the Keras LSTM cell — its weights, config, regularizers, constraints and dropout.

Weights, exactly Keras's order and shapes (``u = units``, gate blocks i, f, c, o along ``4u``)::

    kernel            (input_dim, 4u)    x_t @ kernel
    recurrent_kernel  (u, 4u)            h_{t-1} @ recurrent_kernel
    bias              (4u,)              absent when use_bias=False

They are ``torch.nn.Parameter`` objects, so optimizers, regularizers and constraints see exactly what
Keras sees. The engine reads them as canonical weights (``w_ih = kernel.T``, ``b_ih = bias``,
``b_hh = None``) without copying.

Example::

    >>> import torch; from lstm_bridge.keras import LSTMCell
    >>> cell = LSTMCell(4)
    >>> h, (h, c) = cell(torch.zeros(2, 3), [torch.zeros(2, 4), torch.zeros(2, 4)])
    >>> tuple(h.shape)
    (2, 4)
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, cast

import numpy as np
import torch

from .._tensors import as_float, check_shape
from ..engine import CellActivations, DirectionWeights, DropoutMasks, LayerSemantics, run_layer
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
    table = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
             "mixed_float16": torch.float32, "mixed_bfloat16": torch.float32}
    if str(dtype) not in table:
        raise ValueError(f"dtype must be one of {sorted(table)}; received {dtype!r}")
    return table[str(dtype)]


def dropout_mask(rate: float, count: int, shape: Sequence[int], like: torch.Tensor,
                 generator: Optional[torch.Generator]) -> Optional[torch.Tensor]:
    """``count`` inverted-dropout masks of ``shape``: 0 or 1/(1-rate), stacked to ``(count, *shape)``."""
    if rate <= 0.0 or rate >= 1.0:  # Keras 3 applies dropout only for 0 < rate < 1
        return None
    keep = 1.0 - rate
    draw = torch.rand((count, *shape), generator=generator, dtype=torch.float32).to(like.device)
    return (draw < keep).to(like.dtype) / keep


class LSTMCell(torch.nn.Module):
    """Keras ``LSTMCell(units, ...)``: one step, ``cell(inputs, states, training=None) -> (h, [h, c])``.

    Arguments are Keras's (see ``tf.keras.layers.LSTMCell``). ``keras_version`` (2 or 3) chooses what
    ambiguous activation names mean (``"hard_sigmoid"``); any callable is accepted as an activation.
    Like a Keras layer, the module starts in inference mode: dropout applies when ``training=True``
    is passed, or after ``.train()`` when ``training`` is left as None.
    """

    # Set from the declared cell options (keras/options.py: one parse per option).
    units: int
    activation: Callable[[torch.Tensor], torch.Tensor]
    recurrent_activation: Callable[[torch.Tensor], torch.Tensor]
    use_bias: bool
    kernel_initializer: Any
    recurrent_initializer: Any
    bias_initializer: Any
    unit_forget_bias: bool
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
        self._configure(_options.declared(locals(), "cell"), name=name, trainable=trainable, dtype=dtype,
                        keras_version=keras_version)

    #: TF 1.15 keeps ``implementation=2`` with recurrent dropout; Keras 2/3 force implementation 1.
    _keeps_implementation_with_recurrent_dropout = False

    def _configure(self, values: Dict[str, Any], *, name: Optional[str], trainable: bool, dtype: Any,
                   keras_version: int) -> None:
        """The one initialiser behind every cell signature: each declared cell option (keras/options.py)
        validated and stored under its name, then the state derived from them."""
        self.keras_version = keras_version
        # units and implementation first (their errors come before the others', as they always have)
        for opt in sorted(_options.CELL_OPTIONS, key=lambda o: o.name not in ("units", "implementation")):
            setattr(self, opt.name, opt.parse(values[opt.name], opt.name, keras_version))
        self._inits = [_initializers.get(values[key])
                       for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer")]
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

    @staticmethod
    def _default_name() -> str:
        return "lstm_cell"

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

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Create the weights for inputs whose last dimension is the feature size."""
        input_dim = input_shape[-1]
        if input_dim is None or isinstance(input_dim, bool) or int(input_dim) <= 0:
            raise ValueError(f"the last dimension of the input must be a positive size; received {tuple(input_shape)}")
        u = self.units
        check_allocation(f"LSTM cell {self.name!r} (units={u}, input_dim={int(input_dim)})",
                         [(int(input_dim), 4 * u), (u, 4 * u)], self.dtype_)
        self.input_dim = int(input_dim)
        dtype = self.dtype_
        # a seeded initializer draws from its own generator, one per weight (initializers.generator_for)
        g_kernel, g_recurrent, gen = (_initializers.generator_for(init, role, self._generator) for init, role in
                                      zip(self._inits, ("kernel", "recurrent_kernel", "bias")))
        kernel = _initializers.call(self._inits[0], (self.input_dim, 4 * u), dtype, g_kernel)
        recurrent = _initializers.call(self._inits[1], (u, 4 * u), dtype, g_recurrent)
        self.kernel = torch.nn.Parameter(kernel, requires_grad=self.trainable)
        self.recurrent_kernel = torch.nn.Parameter(recurrent, requires_grad=self.trainable)
        if self.use_bias:
            if self.unit_forget_bias:
                init = self._inits[2]
                bias = torch.cat([_initializers.call(init, (u,), dtype, gen), torch.ones(u, dtype=dtype),
                                  _initializers.call(init, (2 * u,), dtype, gen)])
            else:
                bias = _initializers.call(self._inits[2], (4 * u,), dtype, gen)
            self.bias = torch.nn.Parameter(bias, requires_grad=self.trainable)

    def _ensure_built(self, input_dim: int) -> None:
        if not self.built:
            self.build((None, input_dim))
        elif input_dim != self.input_dim:
            raise ValueError(f"Input 0 of layer {self.name!r} is incompatible with the layer: expected last dimension "
                             f"{self.input_dim}, received {input_dim}")

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

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str, local_metadata: Dict[str, Any],
                              strict: bool, missing_keys: List[str], unexpected_keys: List[str],
                              error_msgs: List[str]) -> None:
        # An unbuilt layer builds itself from the state dict's kernel shape, as it would on its first call.
        kernel = state_dict.get(prefix + "kernel")
        if not self.built and isinstance(kernel, torch.Tensor) and kernel.dim() == 2:
            if kernel.shape[1] != 4 * self.units:
                error_msgs.append(f"size mismatch for {prefix}kernel: expected (input_dim, {4 * self.units}); "
                                  f"received {tuple(kernel.shape)}")
                return
            self.build((None, int(kernel.shape[0])))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def expected_weight_shapes(self, input_dim: int) -> List[Tuple[int, ...]]:
        u = self.units
        shapes: List[Tuple[int, ...]] = [(input_dim, 4 * u), (u, 4 * u)]
        return shapes + [(4 * u,)] if self.use_bias else shapes

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set ``[kernel (I,4u), recurrent_kernel (u,4u), bias (4u,)]`` in place (builds if needed)."""
        weights = list(weights)
        if not weights and not self.built:
            return  # Keras: an unbuilt layer has no weights, so [] is a no-op
        n = 3 if self.use_bias else 2
        if len(weights) != n:
            raise ValueError(f"layer {self.name!r} expects {n} weights "
                             f"({'kernel, recurrent_kernel, bias' if self.use_bias else 'kernel, recurrent_kernel'}); "
                             f"received {len(weights)}")
        arrays = [np.asarray(w) for w in weights]
        if arrays[0].ndim != 2:
            raise ValueError(f"kernel must be 2-D (input_dim, {4 * self.units}); received shape {arrays[0].shape}")
        input_dim = int(self.input_dim) if self.input_dim is not None else int(arrays[0].shape[0])
        for label, arr, shape in zip(("kernel", "recurrent_kernel", "bias"), arrays,
                                     self.expected_weight_shapes(input_dim)):
            if tuple(arr.shape) != shape:
                raise ValueError(f"{label} of layer {self.name!r} must have shape {shape}; received {tuple(arr.shape)}")
        self._ensure_built(input_dim)
        with torch.no_grad():
            for p, arr in zip(self.weights, arrays):
                p.copy_(torch.from_numpy(np.array(arr, copy=True)).to(p.dtype))

    def direction_weights(self, dtype: Optional[torch.dtype] = None) -> DirectionWeights:
        """Canonical engine weights: views of the Parameters (autograd flows back to them)."""
        def to(t: Optional[torch.Tensor]) -> torch.Tensor:
            t = cast(torch.Tensor, t)  # built: the weights exist
            return t if dtype is None else t.to(dtype)

        return DirectionWeights(w_ih=to(self.kernel).t(), w_hh=to(self.recurrent_kernel).t(),
                                b_ih=None if self.bias is None else to(self.bias), b_hh=None)

    def cell_activations(self) -> CellActivations:
        return CellActivations(gate=self.recurrent_activation, candidate=self.activation, cell=self.activation)

    # --- regularizers, constraints, dropout ----------------------------------------------------------
    def weight_losses(self) -> List[torch.Tensor]:
        pairs = ((self.kernel_regularizer, self.kernel), (self.recurrent_regularizer, self.recurrent_kernel),
                 (self.bias_regularizer, self.bias))
        return [reg(p) for reg, p in pairs if reg is not None and p is not None]

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project the weights onto their constraints in place, as Keras's optimizer does after a step."""
        pairs = ((self.kernel_constraint, self.kernel), (self.recurrent_constraint, self.recurrent_kernel),
                 (self.bias_constraint, self.bias))
        for constraint, p in pairs:
            if constraint is not None and p is not None:
                p.copy_(constraint(p))

    def resolve_training(self, training: Optional[bool]) -> bool:
        return self.training if training is None else bool(training)

    def dropout_masks(self, batch: int, like: torch.Tensor, training: bool) -> Optional[DropoutMasks]:
        """Masks for one call, reused at every step: 4 per gate with implementation=1, else 1 shared."""
        if not training or (self.dropout == 0.0 and self.recurrent_dropout == 0.0):
            return None
        for name, rate in (("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)):
            if rate >= 1.0 and self.keras_version < 3:
                raise ValueError(f"{name} of layer {self.name!r} must be a float in the range [0, 1) when training "
                                 f"(tf_keras refuses it); received {name}={rate}")
        count = 4 if self.implementation == 1 else 1
        return DropoutMasks(
            inputs=dropout_mask(self.dropout, count, (batch, cast(int, self.input_dim)), like, self._generator),
            recurrent=dropout_mask(self.recurrent_dropout, self._recurrent_mask_count(), (batch, self.units),
                                   like, self._generator),
        )

    def _recurrent_mask_count(self) -> int:
        return 4  # Keras 2/3: recurrent dropout always uses implementation 1, one mask per gate

    # --- config ------------------------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        """Every constructor argument (``LSTMCell.from_config(cell.get_config())`` rebuilds it): ``name``,
        ``trainable``, ``dtype``, then each declared cell option (keras/options.py) in Keras's order."""
        config: Dict[str, Any] = {"name": self.name, "trainable": self.trainable,
                                  "dtype": str(self.dtype_).replace("torch.", "")}
        for opt in _options.CELL_OPTIONS:
            config[opt.name] = opt.serialize(getattr(self, opt.name))
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> LSTMCell:
        config = dict(config)
        config.setdefault("keras_version", keras_version or config_keras_version(config))
        return cls(**config)

    # --- call ------------------------------------------------------------------------------------
    def forward(self, inputs: Any, states: Sequence[Any],
                training: Optional[bool] = None) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """One step. ``inputs (B, input_dim)``, ``states [h (B, u), c (B, u)]`` -> ``(h, [h, c])``."""
        x = as_float(inputs, "inputs", self.kernel.dtype if self.kernel is not None else self.dtype_)
        if x.dim() != 2:
            raise ValueError(f"LSTMCell inputs must be 2-D (batch, features); received shape {tuple(x.shape)}")
        self._ensure_built(x.shape[1])
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise ValueError(f"LSTMCell states must be a list [h, c]; received {type(states).__name__}"
                             + (f" of length {len(states)}" if isinstance(states, (list, tuple)) else ""))
        B = x.shape[0]
        h0 = as_float(states[0], "states[0] (h)", x.dtype)
        c0 = as_float(states[1], "states[1] (c)", x.dtype)
        check_shape(h0, (B, self.units), "states[0] (h)")
        check_shape(c0, (B, self.units), "states[1] (c)")
        drop = self.dropout_masks(B, x, self.resolve_training(training))
        outs, hs, cs = run_layer(x.unsqueeze(0), [self.direction_weights()], [h0], [c0], reverse=[False],
                                 semantics=LayerSemantics(self.cell_activations()), dropout=[drop])
        return hs[0], [hs[0], cs[0]]


# Larger single allocations are refused up front (torch would raise a bare RuntimeError or crash).
_MAX_ELEMENTS = 2 ** 40


def check_allocation(where: str, shapes: Sequence[Sequence[int]], dtype: torch.dtype) -> None:
    """Raise MemoryError naming the sizes when ``shapes`` of ``dtype`` cannot be allocated."""
    item = torch.empty((), dtype=dtype).element_size()
    total = sum(int(np.prod([int(d) for d in shape], dtype=object)) for shape in shapes)
    if total > _MAX_ELEMENTS:
        raise MemoryError(f"{where} needs {total} elements ({total * item / 2 ** 30:.3g} GiB) for shapes "
                          f"{[tuple(int(d) for d in s) for s in shapes]}; that is more than can be allocated")


@contextlib.contextmanager
def allocation_errors(what: str) -> Iterator[None]:
    """Turn torch's allocation failures (a bare RuntimeError or MemoryError) into a MemoryError naming
    ``what`` was being done with which sizes."""
    try:
        yield
    except RuntimeError as e:
        text = str(e).lower()
        if "alloc" in text or "out of memory" in text or "numel" in text or "overflow" in text:
            raise MemoryError(f"{what}: out of memory ({str(e).splitlines()[0]})") from e
        raise


def config_keras_version(config: Dict[str, Any]) -> int:
    """Guess which Keras wrote a layer config: Keras 3 configs have no ``time_major``/``implementation``
    and store the dtype as a DTypePolicy dict and initializers with a ``module`` key."""
    if isinstance(config.get("dtype"), dict):
        return 3
    init = config.get("kernel_initializer")
    if isinstance(init, dict) and "module" in init:
        return 3
    return 2
