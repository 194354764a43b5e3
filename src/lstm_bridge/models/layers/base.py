"""What every catalogue layer shares (:class:`KerasLayer`): the Keras config values it was built from, its
generation (``keras_version`` 2 = tf_keras / Keras 2, 3 = Keras 3), the weight slots in Keras's
``get_weights()`` order, ``load_keras_weights`` and the default mask rule.

Conventions (the contract of :mod:`lstm_bridge.models`): inputs are batch-major torch tensors as Keras
takes them (``(batch, ..., channels)``); masks are boolean ``(batch, time)`` tensors or None.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ... import activations as _act

__all__ = ["KerasLayer", "WeightSlot", "as_float", "activation_fn", "config_error", "IGNORED_KEYS"]

#: config keys that never change what a layer computes at inference (initializers, regularizers,
#: constraints, shapes used only to build) - accepted and dropped by every constructor
IGNORED_KEYS = frozenset(
    {
        "name",
        "trainable",
        "dtype",
        "batch_input_shape",
        "batch_shape",
        "input_shape",
        "input_dim",
        "input_length",
        "batch_size",
        "build_config",
        "activity_regularizer",
        "kernel_regularizer",
        "bias_regularizer",
        "embeddings_regularizer",
        "beta_regularizer",
        "gamma_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "embeddings_constraint",
        "beta_constraint",
        "gamma_constraint",
        "kernel_initializer",
        "bias_initializer",
        "embeddings_initializer",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
        "seed",
        "quantization_config",
        "lora_rank",
        "lora_alpha",
        "sparse",
        "autocast",
    }
)


class WeightSlot(Tuple[str, bool]):
    """``(keras name, trainable kind)`` of one array of ``get_weights()``; the trainable kind decides the
    order of a nested model's legacy ``.h5`` weights (all trainable ones first, then the others)."""


def config_error(layer: str, key: str, expected: str, received: Any) -> ValueError:
    return ValueError(f"layer {layer}: {key} must be {expected}; received {received!r}")


def activation_fn(name: Any, keras_version: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation a config names, as the generation reads it (``"hard_sigmoid"``, ``"gelu"``, ...)."""
    return _act.get(name, keras_version)


def as_float(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Keras casts a float layer's integer / bool / float64 inputs to the layer's dtype (float32)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    return x if x.dtype == dtype else x.to(dtype)


class KerasLayer(torch.nn.Module):
    """Base of every catalogue layer that is not a recurrent front-end layer.

    Subclasses set :attr:`slots` (the Keras weights, ``get_weights()`` order) and implement
    :meth:`_load` (arrays -> torch parameters), ``forward(*inputs, mask=None, training=None)`` and, when
    the mask changes, :meth:`compute_mask`. ``supports_masking`` False: the output carries no mask
    (Keras 3 drops it with a warning; tf_keras refuses to build such a model).
    """

    supports_masking = True
    keras_class = ""

    def __init__(self, *, name: Optional[str] = None, trainable: Any = True, keras_version: int = 3, **config: Any):
        super().__init__()
        if keras_version not in (2, 3):
            raise ValueError(f"keras_version must be 2 (tf_keras) or 3 (Keras 3); received {keras_version!r}")
        self.keras_version = int(keras_version)
        self.name = name or type(self).__name__.lower()
        self.keras_trainable = bool(trainable)
        unknown = sorted(k for k in config if k not in IGNORED_KEYS)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: unsupported config keys {unknown}; expected only the "
                "keys the real Keras layer has"
            )
        q = config.get("quantization_config")
        if q:
            raise ValueError(f"{type(self).__name__} {self.name!r}: quantized layers are not supported ({q!r})")
        if config.get("lora_rank"):
            raise ValueError(f"{type(self).__name__} {self.name!r}: LoRA-enabled layers are not supported")
        self.slots: List[WeightSlot] = []
        self.train(False)

    # --- weights ---------------------------------------------------------------------------------
    def keras_weight_slots(self) -> List[WeightSlot]:
        """``(name, trainable)`` per array of Keras's ``get_weights()``."""
        return [WeightSlot((n, t and self.keras_trainable)) for n, t in self.slots]

    def load_keras_weights(self, arrays: Sequence[Any]) -> None:
        """Set the weights from Keras's ``get_weights()`` list (Keras layouts: ``kernel (in, out)``, ...).

        Raises:
            ValueError: a wrong number of arrays or a wrong shape (naming the layer and the weight).
        """
        arrays = [np.asarray(a) for a in arrays]
        if len(arrays) != len(self.slots):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: expected {len(self.slots)} weight arrays "
                f"{[n for n, _ in self.slots]}; received {len(arrays)}"
            )
        with torch.no_grad():
            self._load(arrays)

    def _load(self, arrays: List[np.ndarray]) -> None:
        """Copy Keras arrays into the torch parameters (called under no_grad with the right count)."""

    def _check_shape(self, what: str, array: np.ndarray, expected: Tuple[int, ...]) -> torch.Tensor:
        if tuple(array.shape) != tuple(expected):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: weight {what} must have shape {tuple(expected)}; "
                f"received {tuple(array.shape)}"
            )
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)

    # --- masks -----------------------------------------------------------------------------------
    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras's ``compute_mask``: layers that support masking pass the mask through; others drop it."""
        return mask if self.supports_masking else None

    def _training(self, training: Optional[bool]) -> bool:
        return self.training if training is None else bool(training)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, keras_version={self.keras_version}"


def expect_rank(layer: KerasLayer, x: torch.Tensor, ranks: Sequence[int], what: str = "input") -> None:
    if x.dim() not in ranks:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: expected a {what} of rank {' or '.join(map(str, ranks))}; "
            f"received shape {tuple(x.shape)}"
        )


def pop_options(config: Dict[str, Any], defaults: Dict[str, Any]) -> Dict[str, Any]:
    """Take the layer's own options out of ``config`` (with Keras's defaults)."""
    return {k: config.pop(k, v) for k, v in defaults.items()}
