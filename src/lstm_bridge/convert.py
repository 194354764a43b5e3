"""Keras layer(s) <-> MindSpore ``LSTM`` <-> ``torch.nn.LSTM``, with identical outputs.

The mapping (spec keras §1, DESIGN.md): per (layer, direction), ``weight_ih = kernel.T (4H, I)``,
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

import os
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import activations as _act, targets as _targets
from .targets import UNSUPPORTED
from .weights import LSTMWeights, from_keras, from_torch_state_dict, to_keras, to_torch_state_dict

__all__ = [
    "LSTMStack",
    "keras_to_mindspore",
    "mindspore_to_keras",
    "to_torch",
    "from_torch",
    "stack_from",
    "run_keras_stack",
    "keras_mask_to_seq_length",
    "Chain",
    "ChainLayer",
    "ChainResult",
    "chain_from",
    "chain_from_model_file",
    "chain_from_lstm_layers",
    "run_chain",
    "standard_violations",
    "LayerDiff",
    "compare_chains",
    "pair_layers",
]

Tensor = torch.Tensor


@dataclass
class LSTMStack:
    """The neutral form every conversion goes through: a PyTorch/MindSpore-style stack.

    ``layers[l][d]``: canonical :class:`~lstm_bridge.weights.LSTMWeights` (torch tensors) of layer
    ``l``, direction ``d`` (0 forward, 1 reverse), gate order i, f, g, o. ``batch_first`` says whether
    inputs are ``(B, T, I)``; ``dropout`` is MindSpore/PyTorch's between-layer dropout (training only).
    """

    layers: List[List[LSTMWeights]]
    batch_first: bool = False
    dropout: float = 0.0

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

    def state_dict(self) -> dict:
        """PyTorch / MindSpore parameter names -> tensors (copies), MindSpore's order."""
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
                    raise ValueError(f"layer {l} direction {d} has hidden size {w.hidden_size}; expected {H} "
                                     "(one LSTM has one hidden_size)")
                if w.input_size != expected_in:
                    raise ValueError(f"layer {l} direction {d} has input size {w.input_size}; expected "
                                     f"{expected_in} ({'input_size' if l == 0 else 'D*H of the previous layer'})")
                if w.has_bias != self.has_bias:
                    raise ValueError("every layer and direction must agree on having a bias; "
                                     f"layer {l} direction {d} has_bias={w.has_bias}")


# --- Keras side ---------------------------------------------------------------------------------

def _keras_classes():
    from .keras import LSTM, Bidirectional
    return LSTM, Bidirectional


def _layer_name(layer: Any) -> str:
    return f"{type(layer).__name__} {getattr(layer, 'name', '?')!r}"


def _check_keras_lstm(layer: Any) -> None:
    """Raise ValueError for a Keras LSTM that is not built; warn that dropout is not carried. (What a
    standard LSTM can express is :func:`lstm_bridge.targets.check_expressible`'s to say.)"""
    name = _layer_name(layer)
    cell = layer.cell
    if not layer.built:
        raise ValueError(f"{name} is not built: its input size is unknown; call it once or build(input_shape) "
                         "before converting")
    if cell.dropout or cell.recurrent_dropout:
        warnings.warn(f"{name}: dropout={cell.dropout}, recurrent_dropout={cell.recurrent_dropout} act only in "
                      "training and are not carried over; inference outputs are identical", UserWarning,
                      stacklevel=4)


def _keras_directions(layer: Any) -> Tuple[List[LSTMWeights], Any]:
    """Canonical directions of one Keras LSTM or Bidirectional, and the layer that sets the options."""
    LSTM, Bidirectional = _keras_classes()
    if not isinstance(layer, (LSTM, Bidirectional)):
        raise TypeError(f"expected an lstm_bridge.keras.LSTM or Bidirectional; received {type(layer).__name__}")
    _targets.check_expressible(layer, "mindspore")
    if isinstance(layer, Bidirectional):
        fwd, bwd = layer.forward_layer, layer.backward_layer
        _check_keras_lstm(fwd)
        _check_keras_lstm(bwd)
        return [from_keras(*fwd.get_weights()), from_keras(*bwd.get_weights())], fwd
    _check_keras_lstm(layer)
    return [from_keras(*layer.get_weights())], layer


def _as_layer_list(layers: Any) -> List[Any]:
    if isinstance(layers, (list, tuple)):
        if not layers:
            raise ValueError("expected at least one Keras layer; received an empty sequence")
        return list(layers)
    return [layers]


def _stack_from_keras(layers: Any) -> LSTMStack:
    items = _as_layer_list(layers)
    stack: List[List[LSTMWeights]] = []
    options = []
    for index, layer in enumerate(items):
        dirs, opts = _keras_directions(layer)
        if index < len(items) - 1 and not layer.return_sequences:
            raise ValueError(f"{_layer_name(layer)} (layer {index} of {len(items)}): "
                             + UNSUPPORTED["middle_return_sequences"])
        stack.append([d.torch() for d in dirs])
        options.append(opts)
    if len({len(d) for d in stack}) > 1 or len({opt.units for opt in options}) > 1:
        desc = ", ".join(f"{'Bidirectional' if len(d) == 2 else 'LSTM'}({o.units})" for d, o in zip(stack, options))
        raise ValueError(UNSUPPORTED["mixed_stack"].format(value=desc))
    if len({bool(opt.time_major) for opt in options}) > 1:
        raise ValueError(UNSUPPORTED["time_major_mismatch"].format(value=[o.time_major for o in options]))
    result = LSTMStack(stack, batch_first=not options[0].time_major)
    result.validate()
    return result


def _keras_layers_from_stack(stack: LSTMStack, *, return_sequences: bool, return_state: bool,
                             time_major: bool, keras_version: int) -> List[Any]:
    LSTM, Bidirectional = _keras_classes()
    out = []
    for l, dirs in enumerate(stack.layers):
        seq = True if l < stack.num_layers - 1 else return_sequences
        kwargs = dict(use_bias=stack.has_bias, return_sequences=seq, return_state=return_state,
                      time_major=time_major, keras_version=keras_version)
        layer = LSTM(stack.hidden_size, **kwargs)
        if len(dirs) == 2:
            layer = Bidirectional(layer)
            weights = to_keras(dirs[0].numpy()) + to_keras(dirs[1].numpy())
        else:
            weights = to_keras(dirs[0].numpy())
        layer.set_weights(weights)
        out.append(layer)
    return out


# --- MindSpore / torch side ---------------------------------------------------------------------

def _stack_from_module(module: Any) -> LSTMStack:
    """From ``torch.nn.LSTM`` or ``lstm_bridge.mindspore.LSTM`` (MindSpore = PyTorch parameter names)."""
    if isinstance(module, torch.nn.LSTM):
        if module.proj_size:
            raise ValueError(f"torch.nn.LSTM with proj_size={module.proj_size} has no Keras or MindSpore "
                             "equivalent (neither projects h)")
        batch_first, dropout = bool(module.batch_first), float(module.dropout)
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    else:
        missing = [a for a in ("hidden_size", "num_layers", "batch_first", "bidirectional") if not hasattr(module, a)]
        if missing or not hasattr(module, "state_dict"):
            raise TypeError(f"expected a torch.nn.LSTM or lstm_bridge.mindspore.LSTM; received "
                            f"{type(module).__name__} (missing {missing or ['state_dict']})")
        batch_first, dropout = bool(module.batch_first), float(getattr(module, "dropout", 0.0))
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    layers = from_torch_state_dict(state)
    stack = LSTMStack([[w.torch() for w in dirs] for dirs in layers], batch_first=batch_first, dropout=dropout)
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
    LSTM, Bidirectional = _keras_classes()
    if isinstance(obj, (LSTM, Bidirectional)) or (
            isinstance(obj, (list, tuple)) and obj and all(isinstance(o, (LSTM, Bidirectional)) for o in obj)):
        return _stack_from_keras(obj)
    if isinstance(obj, (list, tuple)):
        kinds = sorted({type(o).__name__ for o in obj})
        raise TypeError(f"a stack must be a list of lstm_bridge.keras LSTM/Bidirectional layers; received {kinds}")
    return _stack_from_module(obj)


def _mindspore_from_stack(stack: LSTMStack) -> Any:
    from .mindspore import LSTM as MsLSTM
    net = MsLSTM(stack.input_size, stack.hidden_size, num_layers=stack.num_layers, has_bias=stack.has_bias,
                 batch_first=stack.batch_first, dropout=float(stack.dropout), bidirectional=stack.bidirectional)
    _load_exact(net, stack.state_dict())
    return net


def _load_exact(module: torch.nn.Module, state: dict) -> None:
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


def mindspore_to_keras(lstm: Any, *, return_sequences: bool = True, return_state: bool = True,
                       time_major: bool = False, keras_version: int = 2) -> List[Any]:
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
        warnings.warn(f"dropout={stack.dropout} between layers acts only in training and is not carried over; "
                      "inference outputs are identical", UserWarning, stacklevel=2)
    return _keras_layers_from_stack(stack, return_sequences=return_sequences, return_state=return_state,
                                    time_major=time_major, keras_version=keras_version)


def to_torch(obj: Any) -> torch.nn.LSTM:
    """Keras layer(s) (as :func:`keras_to_mindspore`) or a MindSpore LSTM -> ``torch.nn.LSTM`` with the
    same weights (``bias=has_bias``, ``batch_first``, ``bidirectional``, ``dropout``). MindSpore's
    parameter names are PyTorch's, so this is a plain state-dict copy.

    Raises:
        ValueError: as :func:`keras_to_mindspore`.
    """
    stack = stack_from(obj)
    first = stack.layers[0][0].w_ih
    net = torch.nn.LSTM(stack.input_size, stack.hidden_size, num_layers=stack.num_layers, bias=stack.has_bias,
                        batch_first=stack.batch_first, dropout=float(stack.dropout),
                        bidirectional=stack.bidirectional, dtype=first.dtype)
    _load_exact(net, stack.state_dict())
    net.eval()
    return net


def from_torch(nn_lstm: torch.nn.LSTM, api: str = "mindspore", **keras_options: Any) -> Any:
    """``torch.nn.LSTM`` -> ``lstm_bridge.mindspore.LSTM`` (``api="mindspore"``) or a list of Keras layers
    (``api="keras"``; ``keras_options`` as :func:`mindspore_to_keras`).

    Raises:
        ValueError: ``proj_size > 0`` or an unknown ``api``.
    """
    if not isinstance(nn_lstm, torch.nn.LSTM):
        raise TypeError(f"expected a torch.nn.LSTM; received {type(nn_lstm).__name__}")
    if api == "mindspore":
        if keras_options:
            raise TypeError(f"keras options {sorted(keras_options)} given with api='mindspore'")
        return _mindspore_from_stack(_stack_from_module(nn_lstm))
    if api == "keras":
        return mindspore_to_keras(nn_lstm, **keras_options)
    raise ValueError(f"api must be 'mindspore' or 'keras'; received {api!r}")


def run_keras_stack(layers: Sequence[Any], x: Any, *, mask: Any = None, hx: Optional[Tuple[Any, Any]] = None,
                    training: Optional[bool] = None) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    """Run a list of Keras layers (as :func:`mindspore_to_keras` returns) and give MindSpore's returns.

    Args:
        layers: Keras LSTM / Bidirectional(concat) layers, each with ``return_state=True``.
        x: the Keras input, ``(B, T, F)`` (``(T, B, F)`` with time_major).
        mask: optional Keras mask for every layer.
        hx: optional MindSpore-style ``(h0, c0)``, each ``(L*D, B, H)``.

    Returns:
        ``output, (h_n, c_n)``: the last layer's output and the stacked final states ``(L*D, B, H)``,
        row ``layer*D + direction``.
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
        init = None
        if hx is not None:
            h0, c0 = (torch.as_tensor(np.asarray(s)) if not isinstance(s, Tensor) else s for s in hx)
            init = [t for r in range(row, row + D) for t in (h0[r], c0[r])]
        res = layer(y, mask=mask, training=training, initial_state=init)
        y = res[0]
        states = res[1:]
        for d in range(D):
            hs.append(states[2 * d])
            cs.append(states[2 * d + 1])
        row += D
    return y, (torch.stack(hs), torch.stack(cs))


def keras_mask_to_seq_length(mask: Any) -> Tensor:
    """A Keras ``(B, T)`` mask (non-zero = keep) -> MindSpore ``seq_length`` ``(B,)`` int32
    (:func:`lstm_bridge.targets.mask_lengths`: only right padding has a ``seq_length``).

    Raises:
        ValueError: a row with holes or left padding.
    """
    return _targets.mask_lengths(mask)


# --- chains: the LSTM part of a file or module, with its exact semantics -----------------------

@dataclass
class ChainLayer:
    """One (bi)directional LSTM layer of a :class:`Chain`, with the semantics it runs with.

    ``directions``: canonical weights, forward first (gate order i, f, g, o); ``reverse[d]``: whether
    direction ``d`` runs from the last step to the first; ``gate``/``candidate``: activation names
    (:mod:`lstm_bridge.activations`; ``candidate`` is also the cell-output activation);
    ``processing_order``: a Keras ``go_backwards`` layer returns its sequence in processing order
    (not flipped back); ``merge_mode``: how two directions combine (``concat``, ``sum``, ``mul``,
    ``ave`` or ``None``); ``return_sequences``; ``zero_output_for_mask``: masked steps emit 0 instead
    of repeating the previous output (Keras; MindSpore ``seq_length`` always emits 0).
    """

    name: str
    directions: List[LSTMWeights]
    reverse: List[bool]
    gate: str = "sigmoid"
    candidate: str = "tanh"
    processing_order: bool = False
    merge_mode: Optional[str] = "concat"
    return_sequences: bool = True
    zero_output_for_mask: bool = False

    @property
    def hidden_size(self) -> int:
        return self.directions[0].hidden_size

    @property
    def input_size(self) -> int:
        return self.directions[0].input_size

    @property
    def output_size(self) -> int:
        D = len(self.directions)
        return D * self.hidden_size if (self.merge_mode == "concat" and D == 2) else self.hidden_size


@dataclass
class Chain:
    """LSTM layers run one after the other, with the API (``"keras"`` or ``"mindspore"``) whose return
    conventions apply, and the input layout (``batch_first``: ``(B, T, I)``; else ``(T, B, I)``)."""

    layers: List[ChainLayer]
    api: str
    batch_first: bool
    name: str = ""

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def num_states(self) -> int:
        """Rows of the stacked ``(h_n, c_n)``: the sum of every layer's directions."""
        return sum(len(l.directions) for l in self.layers)

    def validate(self) -> None:
        for index, layer in enumerate(self.layers):
            if index and layer.input_size != self.layers[index - 1].output_size:
                raise ValueError(f"chain {self.name!r}: layer {layer.name!r} takes {layer.input_size} features but "
                                 f"the previous layer gives {self.layers[index - 1].output_size}")
            if index < len(self.layers) - 1 and not layer.return_sequences:
                raise ValueError(f"chain {self.name!r}: layer {layer.name!r}: "
                                 + UNSUPPORTED["middle_return_sequences"])
            if index < len(self.layers) - 1 and layer.merge_mode is None and len(layer.directions) == 2:
                raise ValueError(f"chain {self.name!r}: layer {layer.name!r} has merge_mode=None (two outputs) "
                                 "and cannot feed another layer")
            if len(layer.directions) != len(layer.reverse) or len(layer.directions) not in (1, 2):
                raise ValueError(f"chain {self.name!r}: layer {layer.name!r} needs 1 or 2 directions with one "
                                 f"reverse flag each; received {len(layer.directions)} and {len(layer.reverse)}")


def _name_of(fn: Any) -> str:
    return getattr(fn, "name", None) or repr(fn)


def chain_from_lstm_layers(entries: Sequence[Any], *, api: str, batch_first: Optional[bool] = None,
                           name: str = "", validate: bool = True) -> Chain:
    """A :class:`Chain` from :class:`lstm_bridge.formats.LSTMLayer` entries (``ModelFile.lstm_layers()``),
    in order. Keras entries give one chain layer each; a MindSpore/PyTorch stack gives one per layer.

    An LSTMCell entry gives a one-direction layer with the cell's weights (a cell repeated over time).

    Raises:
        ValueError: entries that do not chain.
    """
    layers: List[ChainLayer] = []
    bf = batch_first
    for e in entries:
        sem = e.semantics or {}
        if e.kind == "LSTMCell":
            # One step of a cell, repeated over time, is a forward LSTM layer with the same weights: that
            # is how a cell's file content is compared. MindSpore's LSTMCell computes sigmoid/tanh with its
            # approximate CPU kernels (ms_cpu_*): the kernel's numerics (up to 1e-4), not another function
            # (lstm_bridge.targets treats them as standard), so the chain runs the exact functions.
            gate = {"ms_cpu_sigmoid": "sigmoid"}.get(sem.get("recurrent_activation", "sigmoid"),
                                                     sem.get("recurrent_activation", "sigmoid"))
            cand = {"ms_cpu_tanh": "tanh"}.get(sem.get("activation", "tanh"), sem.get("activation", "tanh"))
            layers.append(ChainLayer(e.name, [w.torch() for w in e.weights[0]], [False], gate, cand, False,
                                     "concat", True, True))
            if bf is None and sem.get("batch_first") is not None:
                bf = bool(sem["batch_first"])
            continue
        if sem.get("keras_version") is not None:  # a Keras entry (formats.model._keras_semantics)
            dirs = [w.torch() for w in e.weights[0]]
            go_back = bool(sem.get("go_backwards", False))
            rs = bool(sem.get("return_sequences", False))
            gate, cand = sem.get("recurrent_activation", "sigmoid"), sem.get("activation", "tanh")
            if e.kind == "Bidirectional":
                back = sem.get("backward_semantics") or {}
                for key in ("recurrent_activation", "activation"):
                    if back and back.get(key, sem.get(key)) != sem.get(key):
                        raise ValueError(f"{e.name!r}: the backward layer's {key} {back.get(key)!r} differs from the "
                                         f"forward layer's {sem.get(key)!r}; not supported")
                # TK flips a wrapped go_backwards layer: the "forward" half then runs backwards.
                layer = ChainLayer(e.name, dirs, [go_back, not go_back], gate, cand, False,
                                   sem.get("merge_mode", "concat"), rs, zero_output_for_mask=rs)
            else:
                layer = ChainLayer(e.name, dirs, [go_back], gate, cand, go_back, "concat", rs,
                                   bool(sem.get("zero_output_for_mask", False)))
            if sem.get("stateful") and validate:  # comparing weights is fine; running a chain is not
                raise ValueError(f"{e.name!r}: " + UNSUPPORTED["stateful"])
            layers.append(layer)
            if bf is None:
                bf = not bool(sem.get("time_major", False))
        else:
            for l, dirs in enumerate(e.weights):
                layers.append(ChainLayer(f"{e.name}.l{l}" if e.name else f"l{l}", [w.torch() for w in dirs],
                                         [False, True][:len(dirs)], "sigmoid", "tanh", False, "concat", True, True))
            if bf is None and sem.get("batch_first") is not None:
                bf = bool(sem["batch_first"])
    if not layers:
        raise ValueError(f"no LSTM layers to run in {name or 'the model'}")
    chain = Chain(layers, api, bool(bf) if bf is not None else api == "keras", name)
    if validate:
        chain.validate()
    return chain


def chain_from_model_file(mf: Any, layer: Optional[str] = None, validate: bool = True) -> Chain:
    """The LSTM chain of a :class:`~lstm_bridge.formats.ModelFile`: all its LSTM entries in order (they
    must feed each other), or just the entry named ``layer``. Keras layers whose file records no
    ``return_sequences`` (weights-only files) run as full sequences. ``validate=False`` skips the check that
    the layers feed each other (enough for :func:`compare_chains`, which runs each layer on its own;
    weights-only files record no ``return_sequences``).

    Raises:
        ValueError: no LSTM entry, an unknown ``layer`` (naming the available ones), or entries that
            do not chain (then name one with ``layer``).
    """
    entries = mf.lstm_layers()
    entries = [e for e in entries if e.kind != "LSTMCell"] or entries
    if layer is not None:
        picked = [e for e in entries if e.name == layer]
        if not picked:
            raise ValueError(f"no LSTM layer {layer!r} in {mf.path or 'the model'}; LSTM layers: "
                             f"{[e.name for e in entries]}")
        entries = picked
    if not entries:
        raise ValueError(f"{mf.path or 'the model'} has no LSTM layer (layers: {[e.name for e in mf.layers]})")
    api = "keras" if mf.framework == "keras" else "mindspore"
    if api == "keras":
        # Weights-only Keras files record no return_sequences: run such layers as full sequences.
        configs = {e.name: e.config or {} for e in mf.layers}
        for e in entries:
            cfg = configs.get(e.name, {})
            inner = cfg.get("layer", {}).get("config", {}) if e.kind == "Bidirectional" else cfg
            if "return_sequences" not in inner and e.semantics is not None:
                e.semantics = dict(e.semantics, return_sequences=True, return_sequences_unknown=True)
    try:
        return chain_from_lstm_layers(entries, api=api, name=os.path.basename(mf.path or ""), validate=validate)
    except ValueError as exc:
        if layer is None and len(entries) > 1:
            raise ValueError(f"{exc}; pick one LSTM layer with --layer (one of {[e.name for e in entries]})") from exc
        raise


def chain_from(obj: Any) -> Chain:
    """The :class:`Chain` of a ModelFile, a Keras layer / list of layers (any semantics, including
    hard_sigmoid and go_backwards), a ``lstm_bridge.mindspore.LSTM`` or a ``torch.nn.LSTM``."""
    if isinstance(obj, Chain):
        return obj
    if hasattr(obj, "lstm_layers") and hasattr(obj, "framework"):
        return chain_from_model_file(obj)
    LSTM, Bidirectional = _keras_classes()
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    if items and all(isinstance(o, (LSTM, Bidirectional)) for o in items):
        layers = []
        for layer in items:
            if isinstance(layer, Bidirectional):
                fwd, bwd = layer.forward_layer, layer.backward_layer
                if not fwd.built:
                    raise ValueError(f"{_layer_name(layer)} is not built; call it once before exporting")
                for a in ("activation", "recurrent_activation"):
                    if _name_of(getattr(fwd.cell, a)) != _name_of(getattr(bwd.cell, a)):
                        raise ValueError(f"{_layer_name(layer)}: forward and backward {a} differ; not supported")
                layers.append(ChainLayer(layer.name, [from_keras(*fwd.get_weights()).torch(),
                                                      from_keras(*bwd.get_weights()).torch()],
                                         [fwd.go_backwards, bwd.go_backwards], _name_of(fwd.cell.recurrent_activation),
                                         _name_of(fwd.cell.activation), False, layer.merge_mode,
                                         layer.return_sequences, layer.return_sequences))
            else:
                if not layer.built:
                    raise ValueError(f"{_layer_name(layer)} is not built; call it once before exporting")
                if layer.stateful:
                    raise ValueError(f"{_layer_name(layer)}: " + UNSUPPORTED["stateful"])
                layers.append(ChainLayer(layer.name, [from_keras(*layer.get_weights()).torch()], [layer.go_backwards],
                                         _name_of(layer.cell.recurrent_activation), _name_of(layer.cell.activation),
                                         layer.go_backwards, "concat", layer.return_sequences,
                                         layer.zero_output_for_mask))
        chain = Chain(layers, "keras", not items[0].time_major if hasattr(items[0], "time_major") else True)
        chain.validate()
        return chain
    stack = stack_from(obj)
    layers = [ChainLayer(f"l{l}", dirs, [False, True][:len(dirs)], zero_output_for_mask=True)
              for l, dirs in enumerate(stack.layers)]
    return Chain(layers, "mindspore", stack.batch_first)


@dataclass
class ChainResult:
    """What a chain returns, time-major: ``outputs`` (one tensor, or two for Keras ``merge_mode=None``;
    ``(T, B, X)`` sequences or ``(B, X)`` last outputs), and the final states ``h``, ``c``: one ``(B, H_l)``
    tensor per (layer, direction) in order (``h_n``/``c_n`` stack them to ``(N, B, H)`` when every layer
    has the same H). Keras states ``[h, c]`` / ``[h_f, c_f, h_b, c_b]`` of the last layer are the last
    1 or 2 entries."""

    outputs: List[Tensor]
    h: List[Tensor]
    c: List[Tensor]

    @property
    def h_n(self) -> Tensor:
        return torch.stack(self.h)

    @property
    def c_n(self) -> Tensor:
        return torch.stack(self.c)


def run_chain(chain: Chain, x: Tensor, *, lengths: Optional[Tensor] = None, h0: Optional[Tensor] = None,
              c0: Optional[Tensor] = None) -> ChainResult:
    """Run ``chain`` on the lstm-bridge engine.

    Args:
        x: ``(T, B, I)`` time-major (whatever the chain's own layout).
        lengths: ``(B,)`` right-padding lengths (MindSpore ``seq_length``; a Keras right-padded mask).
        h0, c0: ``(N, B, H)`` initial states, one row per (layer, direction); zeros when None.
    """
    from .engine import LayerSemantics, MaskedOutput, lengths_to_valid, run_layer
    from .engine.semantics import CellActivations, DirectionWeights

    T, B = x.shape[0], x.shape[1]
    valid = lengths_to_valid(lengths, T) if lengths is not None else None
    y = x
    hs: List[Tensor] = []
    cs: List[Tensor] = []
    row = 0
    outputs: List[Tensor] = []
    for layer in chain.layers:
        D = len(layer.directions)
        H = layer.hidden_size
        gate = _act.by_name(layer.gate)
        cand = _act.by_name(layer.candidate)
        rule = MaskedOutput.ZERO if (layer.zero_output_for_mask or chain.api == "mindspore") else MaskedOutput.CARRY
        sem = LayerSemantics(CellActivations(gate=gate, candidate=cand, cell=cand), rule)
        dirs = [DirectionWeights(w.w_ih.to(x.dtype), w.w_hh.to(x.dtype),
                                 None if w.b_ih is None else w.b_ih.to(x.dtype),
                                 None if w.b_hh is None else w.b_hh.to(x.dtype)) for w in layer.directions]
        zeros = x.new_zeros(B, H)
        h_init = [h0[row + d] if h0 is not None else zeros for d in range(D)]
        c_init = [c0[row + d] if c0 is not None else zeros for d in range(D)]
        outs, h_last, c_last = run_layer(y, dirs, h_init, c_init, reverse=list(layer.reverse), valid=valid,
                                         semantics=sem)
        hs.extend(h_last)
        cs.extend(c_last)
        row += D
        if layer.return_sequences:
            seqs = [o.flip(0) if (layer.processing_order and D == 1) else o for o in outs]
        else:
            # the last processed step's output: at t = 0 for a reverse direction
            seqs = [o[0] if rev else o[-1] for o, rev in zip(outs, layer.reverse)]
        if D == 1:
            merged: List[Tensor] = [seqs[0]]
        elif layer.merge_mode == "concat":
            merged = [torch.cat(seqs, dim=-1)]
        elif layer.merge_mode == "sum":
            merged = [seqs[0] + seqs[1]]
        elif layer.merge_mode == "mul":
            merged = [seqs[0] * seqs[1]]
        elif layer.merge_mode == "ave":
            merged = [(seqs[0] + seqs[1]) / 2]
        elif layer.merge_mode is None:
            merged = list(seqs)
        else:
            raise ValueError(f"layer {layer.name!r}: unknown merge_mode {layer.merge_mode!r}")
        outputs = merged
        y = merged[0]
    return ChainResult(outputs, hs, cs)


# --- checks and comparisons used by the CLI -----------------------------------------------------

def standard_violations(chain: Chain) -> List[str]:
    """Why ``chain`` cannot be a standard ``mindspore.nn.LSTM`` / ``torch.nn.LSTM`` stack (empty if it can):
    :func:`lstm_bridge.targets.violations` for the ``mindspore`` target.

    Presentation differences (``return_sequences=False`` on the last layer, the Keras state list) are
    fine: the weights and the recurrence are what a file carries.
    """
    return _targets.violations(chain, "mindspore")


@dataclass
class LayerDiff:
    """Max |difference| of one chain layer's per-direction outputs and final states."""

    name: str
    output: float
    h: float
    c: float

    @property
    def worst(self) -> float:
        return max(self.output, self.h, self.c)


def compare_chains(a: Chain, b: Chain, *, seed: int = 0, batch: int = 3, steps: int = 6) -> List[LayerDiff]:
    """Run every layer of ``a`` and ``b`` on the same random input and initial states (float32, one input
    per layer of that layer's width) and return the max |difference| per layer of the per-direction
    output sequences and final states. Presentation (return_sequences, merge mode, state list) is not
    compared: it is not stored in weight files; the recurrence, weights, directions and activations are.

    Raises:
        ValueError: the chains do not have the same structure (layers, directions, sizes), saying where.
    """
    from .engine import LayerSemantics, MaskedOutput, run_layer
    from .engine.semantics import CellActivations, DirectionWeights

    gen = torch.Generator().manual_seed(seed)
    diffs: List[LayerDiff] = []
    for la, lb in pair_layers(a, b):
        shape_a = (len(la.directions), la.input_size, la.hidden_size)
        shape_b = (len(lb.directions), lb.input_size, lb.hidden_size)
        if shape_a != shape_b:
            raise ValueError(f"layer {la.name!r} vs {lb.name!r}: (directions, input, hidden) {shape_a} vs {shape_b}")
        D, I, H = shape_a
        x = torch.randn(steps, batch, I, generator=gen)
        h0 = [0.5 * torch.randn(batch, H, generator=gen) for _ in range(D)]
        c0 = [0.5 * torch.randn(batch, H, generator=gen) for _ in range(D)]
        results = []
        for layer in (la, lb):
            gate, cand = _act.by_name(layer.gate), _act.by_name(layer.candidate)
            sem = LayerSemantics(CellActivations(gate=gate, candidate=cand, cell=cand), MaskedOutput.CARRY)
            dirs = [DirectionWeights(*(None if t is None else torch.as_tensor(np.asarray(t) if not isinstance(t, Tensor)
                                                                               else t).float()
                                       for t in (w.w_ih, w.w_hh, w.b_ih, w.b_hh))) for w in layer.directions]
            with torch.no_grad():
                results.append(run_layer(x, dirs, h0, c0, reverse=list(layer.reverse), semantics=sem))
        (oa, ha, ca), (ob, hb, cb) = results

        def md(p: List[Tensor], q: List[Tensor]) -> float:
            return max(float((s - t).abs().max()) for s, t in zip(p, q))

        diffs.append(LayerDiff(la.name if la.name == lb.name else f"{la.name} / {lb.name}",
                               md(oa, ob), md(ha, hb), md(ca, cb)))
    return diffs


def pair_layers(a: Chain, b: Chain) -> List[Tuple[ChainLayer, ChainLayer]]:
    """The layers of two chains matched up: by name when both have the same unique names (files such as
    ``.weights.h5`` do not keep the model order), else by position.

    Raises:
        ValueError: different numbers of layers.
    """
    if len(a.layers) != len(b.layers):
        raise ValueError(f"different number of LSTM layers: {len(a.layers)} ({[l.name for l in a.layers]}) vs "
                         f"{len(b.layers)} ({[l.name for l in b.layers]})")
    names_a = [l.name for l in a.layers]
    names_b = [l.name for l in b.layers]
    if sorted(names_a) == sorted(names_b) and len(set(names_a)) == len(names_a):
        by_name = {l.name: l for l in b.layers}
        return [(l, by_name[l.name]) for l in a.layers]
    return list(zip(a.layers, b.layers))
