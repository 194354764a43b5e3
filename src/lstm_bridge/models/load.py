"""``lstm_bridge.load_model(path)``: a Keras full-model file as a ``torch.nn.Module`` (:class:`KerasModel`).

The model config becomes a :class:`~lstm_bridge.models.graph.KerasModel` of catalogue layers (each refused
layer named with its class), then every layer's weights are read from the file and loaded in Keras's
order: a ``.keras`` archive by walking its object tree (:mod:`.files`), a legacy ``.h5`` by layer name (a
nested model's list split trainable-first, as Keras saves it).
"""

from __future__ import annotations

from typing import Any, List

import numpy as np

from ..formats.common import PathLike
from ..formats.model import FormatError
from .files import KerasFile, child, counter_keys, legacy_arrays, read_keras_file, vars_of
from .graph import MODEL_CLASSES, KerasModel, model_from_config
from .layers import Bidirectional, TimeDistributed
from .layers.recurrent import RECURRENT_CLASSES

__all__ = ["load_model"]


def load_model(path: PathLike) -> KerasModel:
    """Load a Keras full-model file (``.keras``: Keras 3 or tf_keras; legacy ``.h5``: Keras 2.x, tf_keras,
    Keras 3) as a ``torch.nn.Module`` in eval mode.

    ``model(*inputs)`` takes the Keras inputs in order (NumPy or torch; integer token ids for an Embedding)
    and returns what Keras's ``model.predict`` returns (one tensor; a list for several outputs).

    Raises:
        FormatError: a file that is not a readable Keras full-model file (weights-only files included).
        UnsupportedLayerError: a layer outside the catalogue (``Lambda``, custom classes), named with its class.
        ValueError: a config or weights that do not fit together (naming the layer).
    """
    kf = read_keras_file(path)
    try:
        config = kf.model_config
        cls = str(config.get("class_name", ""))
        if cls not in MODEL_CLASSES:
            raise FormatError(kf.path, f"expected a Functional or Sequential model config; found class {cls!r}")
        try:
            model = model_from_config(config, kf.generation, f"{kf.path}")
        except (KeyError, IndexError, AttributeError, TypeError, RecursionError) as exc:
            raise FormatError(kf.path, f"malformed model config ({type(exc).__name__}: {exc})") from None
        try:
            if kf.format == "keras":
                _load_archive_weights(kf, model, child(kf.h5, "layers"))
            else:
                _load_legacy_weights(kf, model)
        except FormatError:
            raise
        except (ValueError, TypeError) as exc:
            raise FormatError(kf.path, f"weights do not fit the model: {exc}") from None
    finally:
        kf.close()
    model.freeze_untrainable()
    model.source = {"path": kf.path, "format": kf.format, "keras_version": kf.version, "generation": kf.generation}
    return model.eval()


# --- .keras: the object tree -------------------------------------------------------------------------


def _load_archive_weights(kf: KerasFile, model: KerasModel, layers_group: Any) -> None:
    real = [(n, key, c) for n, key, c in model.entries if c not in ("NotEqual",)]
    keys = counter_keys([c for _, _, c in real])
    for (name, key, _), h5key in zip(real, keys):
        module: Any = model.modules_by_name[key]
        group = child(layers_group, h5key)
        _load_object(kf, module, group, f"layers/{h5key} ({name!r})")


def _load_object(kf: KerasFile, module: Any, group: Any, where: str) -> None:
    if isinstance(module, KerasModel):
        _load_archive_weights(kf, module, child(group, "layers"))
        return
    if not hasattr(module, "keras_weight_slots"):
        return
    expected = len(module.keras_weight_slots())
    if expected == 0:
        return
    if group is None:
        raise FormatError(kf.path, f"{where}: the weights file has no group for this layer; expected {expected} arrays")
    arrays: List[np.ndarray]
    if isinstance(module, Bidirectional):
        arrays = []
        for side in ("forward_layer", "backward_layer"):
            sub = child(group, side)
            arrays += vars_of(kf, child(sub, "cell")) + vars_of(kf, sub)
    elif type(module).__name__ in RECURRENT_CLASSES and hasattr(module, "cell"):
        arrays = vars_of(kf, child(group, "cell")) + vars_of(kf, group)
    elif isinstance(module, TimeDistributed):
        _load_object(kf, module.layer, child(group, "layer"), f"{where}/layer")
        return
    else:
        arrays = vars_of(kf, group)
    if len(arrays) != expected:
        raise FormatError(
            kf.path,
            f"{where}: expected {expected} weight arrays {[n for n, _ in module.keras_weight_slots()]}; "
            f"the file holds {len(arrays)}",
        )
    module.load_keras_weights(arrays)


# --- legacy .h5: groups by layer name ----------------------------------------------------------------


def _load_legacy_weights(kf: KerasFile, model: KerasModel) -> None:
    for name, module in model.weighted_layers():
        arrays = legacy_arrays(kf, name)
        expected = len(module.keras_weight_slots())
        if len(arrays) != expected:
            raise FormatError(
                kf.path, f"layer {name!r}: expected {expected} weight arrays; the file's group holds {len(arrays)}"
            )
        if isinstance(module, KerasModel):
            module.load_legacy_weights(arrays)
        else:
            module.load_keras_weights(arrays)
