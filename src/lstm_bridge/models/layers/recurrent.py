"""The recurrent layers of a model are :mod:`lstm_bridge.keras`'s own (``LSTM``, ``GRU``, ``SimpleRNN``,
``Bidirectional``), with their per-generation numerics and their parameter names (``cell.kernel``,
``cell.recurrent_kernel``, ``cell.bias``; ``forward_layer.cell.kernel``, ... for Bidirectional). These
subclasses add the catalogue contract: ``load_keras_weights`` (``get_weights()`` order), the weight slots
and Keras's ``compute_mask``: with ``return_sequences`` the input mask, else None; with ``return_state``
one mask per output (the states' are None). ``Bidirectional(layer=..., backward_layer=...)`` also takes
the nested ``{"class_name", "config"}`` dicts of a Keras file.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Type, Union

import numpy as np
import torch

from ... import keras as _keras
from .base import WeightSlot

__all__ = ["LSTM", "GRU", "SimpleRNN", "Bidirectional", "RECURRENT_CLASSES"]


def _first_mask(mask: Any) -> Any:
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask


def _n_weights(layer: _keras.Recurrent) -> int:
    return 3 if layer.cell.use_bias else 2


def _build_from(layer: Any, arrays: List[np.ndarray], what: str) -> None:
    if not arrays or np.asarray(arrays[0]).ndim != 2:
        raise ValueError(
            f"{what} {layer.name!r}: expected [kernel (input, gates*units), recurrent_kernel, bias]; received "
            f"{[tuple(np.asarray(a).shape) for a in arrays]}"
        )
    if not layer.built:
        layer.build((None, None, int(np.asarray(arrays[0]).shape[0])))


class _RecurrentContract:
    """The catalogue contract on a front-end recurrent layer."""

    keras_version: int
    return_sequences: bool
    return_state: bool
    name: str

    def _n_states(self) -> int:
        raise NotImplementedError

    def keras_weight_slots(self) -> List[WeightSlot]:
        names = [w for w in ("kernel", "recurrent_kernel", "bias")]
        return [WeightSlot((n, bool(self.trainable))) for n in names[: self._count()]]  # type: ignore[attr-defined]

    def _count(self) -> int:
        raise NotImplementedError

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        m = _first_mask(mask)
        out = m if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * self._n_states()
        return out


class _Layer(_RecurrentContract):
    cell: Any

    def _n_states(self) -> int:
        return int(self.cell.n_states)

    def _count(self) -> int:
        return 3 if self.cell.use_bias else 2

    def load_keras_weights(self, arrays: Sequence[Any]) -> None:
        """``[kernel, recurrent_kernel, bias]`` in Keras's shapes (no bias when ``use_bias=False``)."""
        arrays = [np.asarray(a) for a in arrays]
        _build_from(self, arrays, type(self).__name__)
        self.set_weights(arrays)  # type: ignore[attr-defined]


class LSTM(_Layer, _keras.LSTM):
    keras_class = "LSTM"


class GRU(_Layer, _keras.GRU):
    keras_class = "GRU"


class SimpleRNN(_Layer, _keras.SimpleRNN):
    keras_class = "SimpleRNN"


RECURRENT_CLASSES: Dict[str, Type[Any]] = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}


def recurrent_from_config(entry: Any, keras_version: int, where: str) -> Any:
    """A catalogue recurrent layer from a nested ``{"class_name", "config"}`` (or a module, kept)."""
    if isinstance(entry, torch.nn.Module):
        return entry
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ValueError(f"{where}: expected a nested layer config {{'class_name', 'config'}}; received {entry!r:.200}")
    cls = RECURRENT_CLASSES.get(str(entry["class_name"]))
    if cls is None:
        raise ValueError(f"{where}: wraps a {entry['class_name']!r} layer; expected one of {sorted(RECURRENT_CLASSES)}")
    return cls.from_config(dict(entry.get("config") or {}), keras_version)


class Bidirectional(_RecurrentContract, _keras.Bidirectional):
    """Keras ``Bidirectional(layer, merge_mode="concat", backward_layer=None)``; ``layer`` /
    ``backward_layer`` are front-end layers or nested Keras configs."""

    keras_class = "Bidirectional"

    def __init__(
        self,
        layer: Union[Dict[str, Any], _keras.Recurrent],
        merge_mode: Optional[str] = "concat",
        weights: Optional[Sequence[Any]] = None,
        backward_layer: Union[None, Dict[str, Any], _keras.Recurrent] = None,
        keras_version: Optional[int] = None,
        **kwargs: Any,
    ):
        gen = int(keras_version or 3)
        fw = recurrent_from_config(layer, gen, "Bidirectional")
        bw = None if backward_layer is None else recurrent_from_config(backward_layer, gen, "Bidirectional")
        kwargs.pop("dtype", None)
        kwargs = {k: v for k, v in kwargs.items() if k in ("name", "trainable", "input_shape", "batch_input_shape")}
        super().__init__(fw, merge_mode=merge_mode, weights=weights, backward_layer=bw, **kwargs)

    @classmethod
    def from_config(cls, config: Dict[str, Any], keras_version: Optional[int] = None) -> Bidirectional:
        return cls(**dict(config), keras_version=keras_version)

    def _n_states(self) -> int:
        return 2 * int(self.forward_layer.cell.n_states)

    def _count(self) -> int:
        return _n_weights(self.forward_layer) + _n_weights(self.backward_layer)

    def keras_weight_slots(self) -> List[WeightSlot]:
        names = ["kernel", "recurrent_kernel", "bias"]
        out = []
        for side in (self.forward_layer, self.backward_layer):
            out += [WeightSlot((f"{side.name}/{n}", bool(self.trainable))) for n in names[: _n_weights(side)]]
        return out

    def load_keras_weights(self, arrays: Sequence[Any]) -> None:
        """Forward's ``[kernel, recurrent_kernel, bias]``, then backward's."""
        arrays = [np.asarray(a) for a in arrays]
        _build_from(self, arrays, "Bidirectional")
        self.set_weights(arrays)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """tf_keras: the output mask(s), then None per state with ``return_state``; Keras 3 leaves the states
        out unless the layer is stateful (its ``self.states`` is None otherwise), and the outputs zip with
        the masks it gives, so the states carry no mask either way."""
        m = _first_mask(mask)
        out = m if self.return_sequences else None
        outs = [out] if self.merge_mode is not None else [out, out]
        if self.return_state and (self.keras_version < 3 or self.stateful):
            return outs + [None] * self._n_states()
        return outs[0] if len(outs) == 1 else outs
