"""Chains: the recurrent layers of a file or module run one after the other, with their exact semantics.

A :class:`Chain` is a list of :class:`~lstm_bridge.recurrent.RecurrentLayer` (``ChainLayer`` is its
older name) with the API whose return conventions apply. :func:`chain_from`,
:func:`chain_from_model_file` and :func:`chain_from_lstm_layers` build one from a Keras layer list, a
MindSpore/PyTorch module or a :class:`~lstm_bridge.formats.ModelFile`; :func:`run_chain` runs it on
the engine (each layer's :meth:`~lstm_bridge.recurrent.RecurrentLayer.semantics`), and
:func:`keras_outputs` turns one layer's per-direction outputs into what the layer returns.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import torch

from .. import targets as _targets
from ..keras import outputs as _keras_outputs
from ..recurrent import MaskedOutput, RecurrentLayer
from ..targets import UNSUPPORTED
from ..weights import from_keras
from .modules import _keras_classes, _layer_name, stack_from

__all__ = [
    "Chain",
    "ChainLayer",
    "ChainResult",
    "chain_from",
    "chain_from_model_file",
    "chain_from_lstm_layers",
    "keras_outputs",
    "run_chain",
    "standard_violations",
]

Tensor = torch.Tensor

#: The older name of :class:`~lstm_bridge.recurrent.RecurrentLayer` (one layer of a :class:`Chain`).
ChainLayer = RecurrentLayer


@dataclass
class Chain:
    """LSTM layers run one after the other, with the API (``"keras"`` or ``"mindspore"``) whose return
    conventions apply, and the input layout (``batch_first``: ``(B, T, I)``; else ``(T, B, I)``)."""

    layers: List[RecurrentLayer]
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
                raise ValueError(
                    f"chain {self.name!r}: layer {layer.name!r} takes {layer.input_size} features but "
                    f"the previous layer gives {self.layers[index - 1].output_size}"
                )
            if index < len(self.layers) - 1 and not layer.return_sequences:
                raise ValueError(
                    f"chain {self.name!r}: layer {layer.name!r}: " + UNSUPPORTED["middle_return_sequences"]
                )
            if index < len(self.layers) - 1 and layer.merge_mode is None and len(layer.directions) == 2:
                raise ValueError(
                    f"chain {self.name!r}: layer {layer.name!r} has merge_mode=None (two outputs) "
                    "and cannot feed another layer"
                )
            if len(layer.directions) != len(layer.reverse) or len(layer.directions) not in (1, 2):
                raise ValueError(
                    f"chain {self.name!r}: layer {layer.name!r} needs 1 or 2 directions with one "
                    f"reverse flag each; received {len(layer.directions)} and {len(layer.reverse)}"
                )


def _name_of(fn: Any) -> str:
    return getattr(fn, "name", None) or repr(fn)


def chain_from_lstm_layers(
    entries: Sequence[Any], *, api: str, batch_first: Optional[bool] = None, name: str = "", validate: bool = True
) -> Chain:
    """A :class:`Chain` from :class:`lstm_bridge.formats.LSTMLayer` entries (``ModelFile.lstm_layers()``),
    in order. Keras entries give one chain layer each; a MindSpore/PyTorch stack gives one per layer.

    An LSTMCell entry gives a one-direction layer with the cell's weights (a cell repeated over time).

    Raises:
        ValueError: entries that do not chain.
    """
    layers: List[RecurrentLayer] = []
    bf = batch_first
    for e in entries:
        sem = e.semantics or {}
        made = e.recurrent_layers()  # the entry's typed layers (formats.LSTMLayer.recurrent_layers)
        if not e.kind.endswith("Cell") and sem.get("keras_version") is not None:  # a Keras entry
            if sem.get("stateful") and validate:  # comparing weights is fine; running a chain is not
                raise ValueError(f"{e.name!r}: " + UNSUPPORTED["stateful"])
            if bf is None:
                bf = not bool(sem.get("time_major", False))
        elif bf is None and sem.get("batch_first") is not None:
            bf = bool(sem["batch_first"])
        layers.extend(made)
    if not layers:
        raise ValueError(f"no recurrent layers to run in {name or 'the model'}")
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
    entries = mf.recurrent_entries() if hasattr(mf, "recurrent_entries") else mf.lstm_layers()
    entries = [e for e in entries if not e.kind.endswith("Cell")] or entries
    if layer is not None:
        picked = [e for e in entries if e.name == layer]
        if not picked:
            raise ValueError(
                f"no recurrent layer {layer!r} in {mf.path or 'the model'}; recurrent layers: "
                f"{[e.name for e in entries]}"
            )
        entries = picked
    if not entries:
        raise ValueError(
            f"{mf.path or 'the model'} has no LSTM, GRU or simple-RNN layer (layers: {[e.name for e in mf.layers]})"
        )
    api = "keras" if mf.framework == "keras" else "mindspore"
    if api == "keras":
        # Weights-only Keras files record no return_sequences: run such layers as full sequences.
        # (copies: the entries ModelFile.lstm_layers() returns are shared and read-only)
        configs = {e.name: e.config or {} for e in mf.layers}
        for index, e in enumerate(entries):
            cfg = configs.get(e.name, {})
            inner = cfg.get("layer", {}).get("config", {}) if e.kind == "Bidirectional" else cfg
            if "return_sequences" not in inner and e.semantics is not None:
                entries[index] = dataclasses.replace(
                    e, semantics=dict(e.semantics, return_sequences=True, return_sequences_unknown=True)
                )
    try:
        return chain_from_lstm_layers(entries, api=api, name=os.path.basename(mf.path or ""), validate=validate)
    except ValueError as exc:
        if layer is None and len(entries) > 1:
            raise ValueError(
                f"{exc}; pick one recurrent layer with --layer (one of {[e.name for e in entries]})"
            ) from exc
        raise


def chain_from(obj: Any) -> Chain:
    """The :class:`Chain` of a ModelFile, a Keras layer / list of layers (any semantics, including
    hard_sigmoid and go_backwards; ``GRU``, ``SimpleRNN`` and ``LSTM`` may mix), a
    ``lstm_bridge.mindspore.LSTM`` / ``GRU`` / ``RNN`` or a ``torch.nn.LSTM`` / ``GRU`` / ``RNN``."""
    if isinstance(obj, Chain):
        return obj
    if hasattr(obj, "lstm_layers") and hasattr(obj, "framework"):
        return chain_from_model_file(obj)
    LSTM, Bidirectional = _keras_classes()
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    family = _family_chain(items)
    if family is not None:
        return family
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
                layers.append(
                    RecurrentLayer(
                        layer.name,
                        [from_keras(*fwd.get_weights()).torch(), from_keras(*bwd.get_weights()).torch()],
                        [fwd.go_backwards, bwd.go_backwards],
                        _name_of(fwd.cell.recurrent_activation),
                        _name_of(fwd.cell.activation),
                        merge_mode=layer.merge_mode,
                        return_sequences=layer.return_sequences,
                        zero_output_for_mask=layer.return_sequences,
                        stateful=bool(fwd.stateful or bwd.stateful),
                        keras_version=getattr(fwd, "keras_version", None),
                    )
                )
            else:
                if not layer.built:
                    raise ValueError(f"{_layer_name(layer)} is not built; call it once before exporting")
                if layer.stateful:
                    raise ValueError(f"{_layer_name(layer)}: " + UNSUPPORTED["stateful"])
                layers.append(
                    RecurrentLayer(
                        layer.name,
                        [from_keras(*layer.get_weights()).torch()],
                        [layer.go_backwards],
                        _name_of(layer.cell.recurrent_activation),
                        _name_of(layer.cell.activation),
                        processing_order=layer.go_backwards,
                        return_sequences=layer.return_sequences,
                        zero_output_for_mask=layer.zero_output_for_mask,
                        keras_version=getattr(layer, "keras_version", None),
                    )
                )
        chain = Chain(layers, "keras", not items[0].time_major if hasattr(items[0], "time_major") else True)
        chain.validate()
        return chain
    stack = stack_from(obj)
    layers = [
        RecurrentLayer(f"l{l}", dirs, [False, True][: len(dirs)], zero_output_for_mask=True)
        for l, dirs in enumerate(stack.layers)
    ]
    return Chain(layers, "mindspore", stack.batch_first)


# --- the recurrent family (GRU / simple RNN) as modules ------------------------------------------------


def _keras_family_layer(layer: Any) -> RecurrentLayer:
    """One Keras ``GRU`` / ``SimpleRNN`` / ``LSTM`` or ``Bidirectional`` of one as a :class:`RecurrentLayer`
    (canonical weights from the cells' ``direction_weights``: the GRU's z, r, h blocks as r, z, n)."""
    from ..keras import Bidirectional

    bidi = isinstance(layer, Bidirectional)
    halves = [layer.forward_layer, layer.backward_layer] if bidi else [layer]
    for half in halves:
        if not half.built:
            raise ValueError(f"{_layer_name(layer)} is not built; call it once before exporting")
    if not bidi and layer.stateful:
        raise ValueError(f"{_layer_name(layer)}: " + UNSUPPORTED["stateful"])
    cell = halves[0].cell
    for a in ("activation", "recurrent_activation", "reset_after"):
        if hasattr(cell, a) and _name_of(getattr(cell, a)) != _name_of(getattr(halves[-1].cell, a)):
            raise ValueError(f"{_layer_name(layer)}: forward and backward {a} differ; not supported")
    return RecurrentLayer(
        layer.name,
        [h.cell.direction_weights().torch() for h in halves],
        [bool(h.go_backwards) for h in halves],
        _name_of(cell.recurrent_activation) if hasattr(cell, "recurrent_activation") else "sigmoid",
        _name_of(cell.activation),
        processing_order=not bidi and bool(layer.go_backwards),
        merge_mode=layer.merge_mode if bidi else "concat",
        return_sequences=bool(layer.return_sequences),
        zero_output_for_mask=bool(layer.return_sequences) if bidi else bool(layer.zero_output_for_mask),
        kind=cell.kind,
        stateful=any(bool(h.stateful) for h in halves),
        keras_version=getattr(halves[0], "keras_version", None),
        reset_after=bool(getattr(cell, "reset_after", True)),
    )


def _family_chain(items: Sequence[Any]) -> Optional[Chain]:
    """The chain of Keras layers of which at least one is a ``GRU`` / ``SimpleRNN`` (or wraps one), of a
    ``lstm_bridge.mindspore.GRU`` / ``RNN`` or of a ``torch.nn.GRU`` / ``RNN``; None for anything else (the
    LSTM paths handle it). MindSpore nets are described by their true math (sigmoid / tanh / relu), whatever
    their ``numerics``: the emulated CPU activations are how MindSpore computes it, not what it means."""
    from ..keras import GRU, LSTM, Bidirectional, SimpleRNN
    from ..mindspore import GRU as MsGRU, RNN as MsRNN
    from ..recurrent import CellKind
    from ..weights.family import recurrent_from_torch_state_dict

    keras_types = (GRU, SimpleRNN, LSTM, Bidirectional)
    if items and all(isinstance(o, keras_types) for o in items):
        inner = [o.forward_layer if isinstance(o, Bidirectional) else o for o in items]
        if not any(isinstance(o, (GRU, SimpleRNN)) for o in inner):
            return None
        layers = [_keras_family_layer(o) for o in items]
        first = inner[0]
        chain = Chain(layers, "keras", not bool(getattr(first, "time_major", False)))
        chain.validate()
        return chain
    if len(items) != 1 or not isinstance(items[0], (MsGRU, MsRNN, torch.nn.GRU, torch.nn.RNN)):
        return None
    net = items[0]
    kind = CellKind.GRU if isinstance(net, (MsGRU, torch.nn.GRU)) else CellKind.RNN
    relu = getattr(net, "nonlinearity", "tanh") == "relu"
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    stack = recurrent_from_torch_state_dict(state, kind)
    layers = [
        RecurrentLayer(
            f"l{l}",
            [w.torch() for w in dirs],
            [False, True][: len(dirs)],
            candidate="relu" if relu else "tanh",
            zero_output_for_mask=True,
            kind=kind,
        )
        for l, dirs in enumerate(stack)
    ]
    return Chain(layers, "mindspore", bool(net.batch_first))


def keras_outputs(layer: RecurrentLayer, outs: Sequence[Tensor]) -> List[Tensor]:
    """What ``layer`` returns, from the engine's per-direction outputs ``outs[d]`` ``(T, B, H)`` (indexed by
    original time): the Keras output rules, which a MindSpore/PyTorch layer (return_sequences, concat)
    also follows.

    * ``return_sequences``: the sequence, in processing order for a one-direction ``go_backwards`` layer
      (Keras does not flip it back); else the last processed step's output (``t = 0`` for a reverse
      direction), ``(B, H)``.
    * two directions: the second half's sequence is flipped back along time (Keras's ``Bidirectional``),
      so a wrapped ``go_backwards`` layer (``reverse = [True, False]``) gives two reversed halves, as Keras
      does; they merge by ``merge_mode``: ``concat`` (forward features first), ``sum``, ``mul``, ``ave``,
      or ``None`` (both returned).

    Returns:
        one tensor, or two for ``merge_mode=None``.

    Raises:
        ValueError: an unknown ``merge_mode``.
    """
    # The rules themselves live once, in lstm_bridge.keras.outputs (keras.LSTM / Bidirectional call them too).
    if len(outs) == 2 and layer.merge_mode not in _keras_outputs.MERGE_MODES:
        raise ValueError(
            f"layer {layer.name!r}: unknown merge_mode {layer.merge_mode!r}; expected one of "
            f"{list(_keras_outputs.MERGE_MODES)}"
        )
    return _keras_outputs.merged_outputs(
        list(outs),
        list(layer.reverse),
        return_sequences=layer.return_sequences,
        merge_mode=layer.merge_mode,
        processing_order=layer.processing_order,
    )


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


def run_chain(
    chain: Chain,
    x: Tensor,
    *,
    lengths: Optional[Tensor] = None,
    h0: Optional[Tensor] = None,
    c0: Optional[Tensor] = None,
) -> ChainResult:
    """Run ``chain`` on the lstm-bridge engine.

    Args:
        x: ``(T, B, I)`` time-major (whatever the chain's own layout).
        lengths: ``(B,)`` right-padding lengths (MindSpore ``seq_length``; a Keras right-padded mask).
        h0, c0: ``(N, B, H)`` initial states, one row per (layer, direction); zeros when None.
    """
    from ..engine import lengths_to_valid, run_layer

    T, B = x.shape[0], x.shape[1]
    valid = lengths_to_valid(lengths, T) if lengths is not None else None
    # MindSpore seq_length always writes zeros at padded steps; a Keras layer follows its own rule
    rule = MaskedOutput.ZERO if chain.api == "mindspore" else None
    y = x
    hs: List[Tensor] = []
    cs: List[Tensor] = []
    row = 0
    outputs: List[Tensor] = []
    for layer in chain.layers:
        D = len(layer.directions)
        H = layer.hidden_size
        dirs = [w.to(x.dtype) for w in layer.directions]
        zeros = x.new_zeros(B, H)
        h_init = [h0[row + d] if h0 is not None else zeros for d in range(D)]
        c_init = [c0[row + d] if c0 is not None else zeros for d in range(D)]
        outs, h_last, c_last = run_layer(
            y, dirs, h_init, c_init, reverse=list(layer.reverse), valid=valid, semantics=layer.semantics(rule)
        )
        hs.extend(h_last)
        cs.extend(c_last)
        row += D
        outputs = keras_outputs(layer, outs)
        y = outputs[0]
    return ChainResult(outputs, hs, cs)


def standard_violations(chain: Chain) -> List[str]:
    """Why ``chain`` cannot be a standard ``mindspore.nn.LSTM`` / ``torch.nn.LSTM`` stack (empty if it can):
    :func:`lstm_bridge.targets.violations` for the ``mindspore`` target.

    Presentation differences (``return_sequences=False`` on the last layer, the Keras state list) are
    fine: the weights and the recurrence are what a file carries.
    """
    return _targets.violations(chain, "mindspore")
