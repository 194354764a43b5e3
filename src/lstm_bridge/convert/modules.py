"""Module conversion: Keras layer(s) <-> MindSpore ``LSTM`` <-> ``torch.nn.LSTM``, with identical outputs; the
same for the recurrent family: Keras ``GRU`` (``reset_after=True``) <-> MindSpore ``GRU`` <-> ``torch.nn.GRU``
and Keras ``SimpleRNN`` (tanh / relu) <-> MindSpore ``RNN`` <-> ``torch.nn.RNN`` (a Keras GRU's z, r, h blocks
become r, z, n and its bias ``(2, 3u)`` the two bias vectors: :mod:`lstm_bridge.weights.family`).

The mapping (docs/spec/keras_lstm.md §1, DESIGN.md): per (layer, direction), ``weight_ih = kernel.T (4H, I)``,
``weight_hh = recurrent_kernel.T (4H, H)``, ``bias_ih = bias``, ``bias_hh = 0``; back to Keras,
``bias = bias_ih + bias_hh``. Gate order i, f, g, o everywhere (the permutations themselves live in
:mod:`lstm_bridge.weights`). Keras -> MindSpore -> PyTorch -> Keras is bit-exact on the weights.

What maps to what:

==========================================  ===========================================================
Keras                                       MindSpore ``LSTM`` / ``torch.nn.LSTM``
==========================================  ===========================================================
``LSTM(u)``                                 ``LSTM(I, u)``, ``batch_first = not time_major``
``Bidirectional(LSTM(u))`` (concat)         ``LSTM(I, u, bidirectional=True)``
``[l_0, ..., l_{L-1}]`` (a stack)            ``LSTM(I, u, num_layers=L)``; every layer but the last must
                                            return sequences
Keras output (``return_sequences``)         ``output`` (the last layer's)
Keras output (not ``return_sequences``)     ``output[:, -1]`` / ``output[-1]``; Bidirectional:
                                            ``concat(h_n[-2], h_n[-1])``
Keras states ``[h, c]`` / ``[h_f, c_f, h_b, c_b]``  ``h_n[-1], c_n[-1]`` / ``h_n[-2], c_n[-2], h_n[-1], c_n[-1]``
==========================================  ===========================================================

Semantics the target cannot express raise ``ValueError`` with the reason, as decided by
:mod:`lstm_bridge.targets` (the one rule of what can be expressed where): a gate activation other than sigmoid (e.g.
``hard_sigmoid``) or a candidate/cell activation other than tanh, ``go_backwards`` outside
``Bidirectional``, ``stateful``, a non-concat ``merge_mode``, ``return_sequences=False`` in the
middle of a stack, mixed directions/units/bias/``time_major`` in a stack, or a layer that is not
built yet (its input size is unknown). Keras ``dropout``/``recurrent_dropout`` act only in training
and are not carried (a ``UserWarning`` says so).

:func:`keras_mask_to_seq_length` turns a right-padded Keras mask into MindSpore ``seq_length`` and
refuses masks with holes or left padding.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import targets as _targets
from ..recurrent import CellKind, DirectionWeights
from ..targets import UNSUPPORTED
from ..weights import family as _family, from_keras, from_torch_state_dict, to_keras, to_torch_state_dict

__all__ = [
    "LSTMStack",
    "keras_to_mindspore",
    "mindspore_to_keras",
    "to_torch",
    "from_torch",
    "stack_from",
    "run_keras_stack",
    "keras_mask_to_seq_length",
]

Tensor = torch.Tensor


@dataclass
class LSTMStack:
    """The neutral form every conversion goes through: a PyTorch/MindSpore-style stack.

    ``layers[l][d]``: canonical :class:`~lstm_bridge.recurrent.DirectionWeights` (torch tensors) of layer
    ``l``, direction ``d`` (0 forward, 1 reverse), gate order i, f, g, o. ``batch_first`` says whether
    inputs are ``(B, T, I)``; ``dropout`` is MindSpore/PyTorch's between-layer dropout (training only).
    """

    layers: List[List[DirectionWeights]]
    batch_first: bool = False
    dropout: float = 0.0
    nonlinearity: str = "tanh"

    @property
    def kind(self) -> CellKind:
        """The cell kind of the stack (every layer's weights have it): LSTM, GRU (reset-after) or RNN."""
        return self.layers[0][0].kind

    @property
    def input_size(self) -> int:
        return self.layers[0][0].input_size

    @property
    def hidden_size(self) -> int:
        return self.layers[0][0].hidden_size

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def bidirectional(self) -> bool:
        return len(self.layers[0]) == 2

    @property
    def has_bias(self) -> bool:
        return self.layers[0][0].has_bias

    def state_dict(self) -> Dict[str, Any]:
        """PyTorch / MindSpore parameter names -> tensors (copies), MindSpore's order."""
        if self.kind is not CellKind.LSTM:
            return _family.recurrent_to_torch_state_dict(self.layers)
        return to_torch_state_dict(self.layers)

    def validate(self) -> None:
        """Check that the stack is one consistent ``LSTM(I, H, L, bias, ..., bidirectional)``."""
        D = len(self.layers[0])
        H = self.hidden_size
        for l, dirs in enumerate(self.layers):
            if len(dirs) != D:
                raise ValueError(f"layer {l} has {len(dirs)} directions; layer 0 has {D}")
            expected_in = self.input_size if l == 0 else D * H
            for d, w in enumerate(dirs):
                if w.hidden_size != H:
                    raise ValueError(
                        f"layer {l} direction {d} has hidden size {w.hidden_size}; expected {H} "
                        "(one LSTM has one hidden_size)"
                    )
                if w.input_size != expected_in:
                    raise ValueError(
                        f"layer {l} direction {d} has input size {w.input_size}; expected "
                        f"{expected_in} ({'input_size' if l == 0 else 'D*H of the previous layer'})"
                    )
                if w.has_bias != self.has_bias:
                    raise ValueError(
                        "every layer and direction must agree on having a bias; "
                        f"layer {l} direction {d} has_bias={w.has_bias}"
                    )


# --- Keras side ---------------------------------------------------------------------------------


def _keras_classes():
    from ..keras import LSTM, Bidirectional

    return LSTM, Bidirectional


def _keras_recurrent_classes() -> Tuple[Any, ...]:
    """The Keras layer classes a stack may hold: LSTM, GRU, SimpleRNN and Bidirectional."""
    from ..keras import GRU, LSTM, Bidirectional, SimpleRNN

    return (LSTM, GRU, SimpleRNN, Bidirectional)


def _keras_weights(layer: Any) -> DirectionWeights:
    """One built Keras LSTM / GRU / SimpleRNN layer's weights, canonical (copies)."""
    arrays = layer.get_weights()
    kind = getattr(layer.cell, "kind", CellKind.LSTM)
    bias = arrays[2] if len(arrays) > 2 else None
    if kind is CellKind.GRU:
        return _family.gru_from_keras(arrays[0], arrays[1], bias, reset_after=layer.cell.reset_after)
    if kind is CellKind.RNN:
        return _family.rnn_from_keras(arrays[0], arrays[1], bias)
    return from_keras(*arrays)


def _to_keras_arrays(w: DirectionWeights) -> List[Any]:
    if w.kind is CellKind.GRU:
        return _family.gru_to_keras(w, reset_after=True)
    if w.kind is CellKind.RNN:
        return _family.rnn_to_keras(w)
    return to_keras(w)


def _layer_name(layer: Any) -> str:
    return f"{type(layer).__name__} {getattr(layer, 'name', '?')!r}"


def _check_keras_lstm(layer: Any) -> None:
    """Raise ValueError for a Keras LSTM that is not built; warn that dropout is not carried. (What a
    standard LSTM can express is :func:`lstm_bridge.targets.check_expressible`'s to say.)"""
    name = _layer_name(layer)
    cell = layer.cell
    if not layer.built:
        raise ValueError(
            f"{name} is not built: its input size is unknown; call it once or build(input_shape) before converting"
        )
    if cell.dropout or cell.recurrent_dropout:
        warnings.warn(
            f"{name}: dropout={cell.dropout}, recurrent_dropout={cell.recurrent_dropout} act only in "
            "training and are not carried over; inference outputs are identical",
            UserWarning,
            stacklevel=4,
        )


def _keras_directions(layer: Any) -> Tuple[List[DirectionWeights], Any]:
    """Canonical directions of one Keras LSTM or Bidirectional, and the layer that sets the options."""
    LSTM, Bidirectional = _keras_classes()
    if not isinstance(layer, _keras_recurrent_classes()):
        raise TypeError(
            f"expected an lstm_bridge.keras.LSTM, GRU, SimpleRNN or Bidirectional; received {type(layer).__name__}"
        )
    if isinstance(layer, Bidirectional):
        fwd, bwd = layer.forward_layer, layer.backward_layer
        _check_keras_lstm(fwd)
        _check_keras_lstm(bwd)
        _targets.check_expressible(layer, "mindspore")
        return [_keras_weights(fwd), _keras_weights(bwd)], fwd
    _check_keras_lstm(layer)
    _targets.check_expressible(layer, "mindspore")
    return [_keras_weights(layer)], layer


def _as_layer_list(layers: Any) -> List[Any]:
    if isinstance(layers, (list, tuple)):
        if not layers:
            raise ValueError("expected at least one Keras layer; received an empty sequence")
        return list(layers)
    return [layers]


def _stack_from_keras(layers: Any) -> LSTMStack:
    items = _as_layer_list(layers)
    stack: List[List[DirectionWeights]] = []
    options = []
    for index, layer in enumerate(items):
        dirs, opts = _keras_directions(layer)
        if index < len(items) - 1 and not layer.return_sequences:
            raise ValueError(
                f"{_layer_name(layer)} (layer {index} of {len(items)}): " + UNSUPPORTED["middle_return_sequences"]
            )
        stack.append([d.torch() for d in dirs])
        options.append(opts)
    kinds = {d[0].kind for d in stack}
    if len(kinds) > 1:
        desc = ", ".join(type(o).__name__ for o in options)
        raise ValueError(
            f"a stack must hold one cell kind to become one MindSpore / PyTorch module; got {desc} "
            "(convert each kind separately)"
        )
    if len({len(d) for d in stack}) > 1 or len({opt.units for opt in options}) > 1:
        desc = ", ".join(f"{'Bidirectional' if len(d) == 2 else 'LSTM'}({o.units})" for d, o in zip(stack, options))
        raise ValueError(UNSUPPORTED["mixed_stack"].format(value=desc))
    if len({bool(opt.time_major) for opt in options}) > 1:
        raise ValueError(UNSUPPORTED["time_major_mismatch"].format(value=[o.time_major for o in options]))
    result = LSTMStack(stack, batch_first=not options[0].time_major)
    if result.kind is CellKind.RNN:
        result.nonlinearity = getattr(options[0].cell.activation, "name", "tanh")
    result.validate()
    return result


def _keras_layers_from_stack(
    stack: LSTMStack, *, return_sequences: bool, return_state: bool, time_major: bool, keras_version: int
) -> List[Any]:
    from ..keras import GRU, SimpleRNN

    LSTM, Bidirectional = _keras_classes()
    out = []
    for l, dirs in enumerate(stack.layers):
        seq = True if l < stack.num_layers - 1 else return_sequences
        kwargs: Dict[str, Any] = dict(
            use_bias=stack.has_bias,
            return_sequences=seq,
            return_state=return_state,
            time_major=time_major,
            keras_version=keras_version,
        )
        layer: Any
        if stack.kind is CellKind.GRU:
            layer = GRU(stack.hidden_size, reset_after=True, **kwargs)
        elif stack.kind is CellKind.RNN:
            layer = SimpleRNN(stack.hidden_size, activation=stack.nonlinearity, **kwargs)
        else:
            layer = LSTM(stack.hidden_size, **kwargs)
        if len(dirs) == 2:
            layer = Bidirectional(layer)
            weights = _to_keras_arrays(dirs[0].numpy()) + _to_keras_arrays(dirs[1].numpy())
        else:
            weights = _to_keras_arrays(dirs[0].numpy())
        layer.set_weights(weights)
        out.append(layer)
    return out


# --- MindSpore / torch side ---------------------------------------------------------------------


def _stack_from_module(module: Any) -> LSTMStack:
    """From ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` or ``lstm_bridge.mindspore.LSTM`` / ``GRU`` / ``RNN``
    (MindSpore = PyTorch parameter names)."""
    nonlinearity = "tanh"
    if isinstance(module, (torch.nn.GRU, torch.nn.RNN)):
        kind = CellKind.GRU if isinstance(module, torch.nn.GRU) else CellKind.RNN
        nonlinearity = "relu" if module.mode == "RNN_RELU" else "tanh"
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        layers = _family.recurrent_from_torch_state_dict(state, kind)
        stack = LSTMStack(
            [[w.torch() for w in dirs] for dirs in layers],
            bool(module.batch_first),
            float(module.dropout),
            nonlinearity,
        )
        stack.validate()
        return stack
    if isinstance(module, torch.nn.LSTM):
        if module.proj_size:
            raise ValueError(
                f"torch.nn.LSTM with proj_size={module.proj_size} has no Keras or MindSpore "
                "equivalent (neither projects h)"
            )
        batch_first, dropout = bool(module.batch_first), float(module.dropout)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    else:
        missing = [a for a in ("hidden_size", "num_layers", "batch_first", "bidirectional") if not hasattr(module, a)]
        if missing or not hasattr(module, "state_dict"):
            raise TypeError(
                f"expected a torch.nn.LSTM or lstm_bridge.mindspore.LSTM; received "
                f"{type(module).__name__} (missing {missing or ['state_dict']})"
            )
        batch_first, dropout = bool(module.batch_first), float(getattr(module, "dropout", 0.0))
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        nonlinearity = str(getattr(module, "nonlinearity", "tanh"))
    cls = type(module).__name__
    if cls in ("GRU", "RNN"):  # lstm_bridge.mindspore.GRU / RNN
        layers = _family.recurrent_from_torch_state_dict(state, CellKind(cls))
    else:
        layers = from_torch_state_dict(state)
    stack = LSTMStack(
        [[w.torch() for w in dirs] for dirs in layers],
        batch_first=batch_first,
        dropout=dropout,
        nonlinearity=nonlinearity,
    )
    stack.validate()
    return stack


def stack_from(obj: Any) -> LSTMStack:
    """The :class:`LSTMStack` of any supported object: a Keras LSTM/Bidirectional or a list of them,
    a ``lstm_bridge.mindspore.LSTM``, a ``torch.nn.LSTM``, or an :class:`LSTMStack` (returned as is).

    Raises:
        ValueError: a Keras semantic a standard stack cannot express (see the module docstring).
        TypeError: an object of another type.
    """
    if isinstance(obj, LSTMStack):
        return obj
    classes = _keras_recurrent_classes()
    if isinstance(obj, classes) or (
        isinstance(obj, (list, tuple)) and obj and all(isinstance(o, classes) for o in obj)
    ):
        return _stack_from_keras(obj)
    if isinstance(obj, (list, tuple)):
        kinds = sorted({type(o).__name__ for o in obj})
        raise TypeError(f"a stack must be a list of lstm_bridge.keras LSTM/Bidirectional layers; received {kinds}")
    return _stack_from_module(obj)


def _mindspore_from_stack(stack: LSTMStack) -> Any:
    from ..mindspore import GRU as MsGRU, LSTM as MsLSTM, RNN as MsRNN

    args = (stack.input_size, stack.hidden_size)
    kwargs: Dict[str, Any] = dict(
        num_layers=stack.num_layers,
        has_bias=stack.has_bias,
        batch_first=stack.batch_first,
        dropout=float(stack.dropout),
        bidirectional=stack.bidirectional,
    )
    net: Any
    if stack.kind is CellKind.GRU:
        net = MsGRU(*args, **kwargs)
    elif stack.kind is CellKind.RNN:
        net = MsRNN(*args, nonlinearity=stack.nonlinearity, **kwargs)
    else:
        net = MsLSTM(*args, **kwargs)
    _load_exact(net, stack.state_dict())
    return net


def _load_exact(module: torch.nn.Module, state: Dict[str, Any]) -> None:
    """``load_state_dict`` that keeps the source dtype's bits (copies into the existing Parameters)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"state dict does not fit {type(module).__name__}: missing {missing}, unexpected {unexpected}")
    for key, value in state.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(f"{key}: expected shape {tuple(own[key].shape)}; received {tuple(value.shape)}")
    module.load_state_dict(state, strict=True)


# --- public API ---------------------------------------------------------------------------------


def keras_to_mindspore(layers: Any) -> Any:
    """A Keras ``LSTM``, ``Bidirectional(LSTM)``, or a stack (list) of them -> ``lstm_bridge.mindspore.LSTM``.

    The result has ``input_size`` = the first layer's input dim, ``hidden_size`` = units,
    ``num_layers`` = the stack depth, ``bidirectional`` for Bidirectional layers and
    ``batch_first = not time_major``. Its ``output`` equals the last Keras layer's sequence output
    (see the module docstring for ``return_sequences=False`` and the states).

    Raises:
        ValueError: with the reason when the Keras semantics cannot be expressed (module docstring).
    """
    return _mindspore_from_stack(_stack_from_keras(layers))


def mindspore_to_keras(
    lstm: Any,
    *,
    return_sequences: bool = True,
    return_state: bool = True,
    time_major: bool = False,
    keras_version: int = 2,
) -> List[Any]:
    """A ``lstm_bridge.mindspore.LSTM`` (or ``torch.nn.LSTM``) -> a list of Keras layers, one per layer.

    Each layer is ``LSTM(H, use_bias=has_bias)`` (wrapped in ``Bidirectional`` when bidirectional);
    every layer but the last returns sequences, the last one ``return_sequences``. With
    ``return_state`` (default) each layer also returns its states, so :func:`run_keras_stack` can
    rebuild ``(h_n, c_n)``. ``time_major=False`` (default) gives batch-major Keras layers (Keras 3 has
    no time_major): transpose MindSpore's ``(T, B, I)`` input when its ``batch_first`` is False.
    ``bias = bias_ih + bias_hh``. MindSpore's between-layer ``dropout`` (training only) is not carried:
    add ``Dropout`` layers between the returned layers if you train.
    """
    stack = _stack_from_module(lstm)
    if stack.dropout:
        warnings.warn(
            f"dropout={stack.dropout} between layers acts only in training and is not carried over; "
            "inference outputs are identical",
            UserWarning,
            stacklevel=2,
        )
    return _keras_layers_from_stack(
        stack,
        return_sequences=return_sequences,
        return_state=return_state,
        time_major=time_major,
        keras_version=keras_version,
    )


def to_torch(obj: Any) -> Any:
    """Keras layer(s) (as :func:`keras_to_mindspore`) or a MindSpore LSTM / GRU / RNN -> ``torch.nn.LSTM`` /
    ``GRU`` / ``RNN`` with the same weights (``bias=has_bias``, ``batch_first``, ``bidirectional``,
    ``dropout``, an RNN's ``nonlinearity``). MindSpore's parameter names are PyTorch's, so this is a plain
    state-dict copy.

    Raises:
        ValueError: as :func:`keras_to_mindspore`.
    """
    stack = stack_from(obj)
    first = stack.layers[0][0].w_ih
    kwargs: Dict[str, Any] = dict(
        num_layers=stack.num_layers,
        bias=stack.has_bias,
        batch_first=stack.batch_first,
        dropout=float(stack.dropout),
        bidirectional=stack.bidirectional,
        dtype=first.dtype,
    )
    net: torch.nn.RNNBase
    if stack.kind is CellKind.GRU:
        net = torch.nn.GRU(stack.input_size, stack.hidden_size, **kwargs)
    elif stack.kind is CellKind.RNN:
        net = torch.nn.RNN(stack.input_size, stack.hidden_size, nonlinearity=stack.nonlinearity, **kwargs)
    else:
        net = torch.nn.LSTM(stack.input_size, stack.hidden_size, **kwargs)
    _load_exact(net, stack.state_dict())
    net.eval()
    return net


def from_torch(nn_lstm: torch.nn.LSTM, api: str = "mindspore", **keras_options: Any) -> Any:
    """``torch.nn.LSTM`` -> ``lstm_bridge.mindspore.LSTM`` (``api="mindspore"``) or a list of Keras layers
    (``api="keras"``; ``keras_options`` as :func:`mindspore_to_keras`).

    Raises:
        ValueError: ``proj_size > 0`` or an unknown ``api``.
    """
    if not isinstance(nn_lstm, (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)):
        raise TypeError(f"expected a torch.nn.LSTM, GRU or RNN; received {type(nn_lstm).__name__}")
    if api == "mindspore":
        if keras_options:
            raise TypeError(f"keras options {sorted(keras_options)} given with api='mindspore'")
        return _mindspore_from_stack(_stack_from_module(nn_lstm))
    if api == "keras":
        return mindspore_to_keras(nn_lstm, **keras_options)
    raise ValueError(f"api must be 'mindspore' or 'keras'; received {api!r}")


def run_keras_stack(
    layers: Sequence[Any],
    x: Any,
    *,
    mask: Any = None,
    hx: Any = None,
    training: Optional[bool] = None,
) -> Tuple[Tensor, Any]:
    """Run a list of Keras layers (as :func:`mindspore_to_keras` returns) and give MindSpore's returns.

    Args:
        layers: Keras LSTM / Bidirectional(concat) layers, each with ``return_state=True``.
        x: the Keras input, ``(B, T, F)`` (``(T, B, F)`` with time_major).
        mask: optional Keras mask for every layer.
        hx: optional MindSpore-style ``(h0, c0)``, each ``(L*D, B, H)`` (GRU / SimpleRNN layers: ``h0`` alone).

    Returns:
        ``output, (h_n, c_n)``: the last layer's output and the stacked final states ``(L*D, B, H)``,
        row ``layer*D + direction``; for GRU / SimpleRNN layers ``output, h_n`` (MindSpore's ``nn.GRU`` /
        ``nn.RNN`` returns).
    """
    LSTM, Bidirectional = _keras_classes()
    y: Any = x
    hs: List[Tensor] = []
    cs: List[Tensor] = []
    row = 0
    for index, layer in enumerate(layers):
        if not layer.return_state:
            raise ValueError(f"{_layer_name(layer)} (layer {index}) must have return_state=True to give (h_n, c_n)")
        D = 2 if isinstance(layer, Bidirectional) else 1
        inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
        one_state = getattr(inner.cell, "kind", CellKind.LSTM) is not CellKind.LSTM
        init = None
        if hx is not None:
            parts = [hx] if one_state else list(hx)
            parts = [torch.as_tensor(np.asarray(t)) if not isinstance(t, Tensor) else t for t in parts]
            init = [t[r] for r in range(row, row + D) for t in parts]
        res = layer(y, mask=mask, training=training, initial_state=init)
        y = res[0]
        states = res[1:]
        for d in range(D):
            if one_state:
                hs.append(states[d])
            else:
                hs.append(states[2 * d])
                cs.append(states[2 * d + 1])
        row += D
    if not cs:
        return y, torch.stack(hs)
    return y, (torch.stack(hs), torch.stack(cs))


def keras_mask_to_seq_length(mask: Any) -> Tensor:
    """A Keras ``(B, T)`` mask (non-zero = keep) -> MindSpore ``seq_length`` ``(B,)`` int32
    (:func:`lstm_bridge.targets.mask_lengths`: only right padding has a ``seq_length``).

    Raises:
        ValueError: a row with holes or left padding.
    """
    return _targets.mask_lengths(mask)
