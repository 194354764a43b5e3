"""``mindspore.context`` / ``mindspore.set_context``: the settings a network's source reads.

Execution is always eager on torch; ``set_context`` records the values it is given (``mode``,
``device_target``, ...) so that ``get_context("device_target")`` returns them, as model-zoo code branches on
it. The default ``device_target`` is ``"CPU"`` (what lstm-bridge's numerics reproduce).
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

GRAPH_MODE = 0
PYNATIVE_MODE = 1

_SETTINGS: Dict[str, Any] = {"mode": PYNATIVE_MODE, "device_target": "CPU", "device_id": 0}


def set_context(**kwargs: Any) -> None:
    _SETTINGS.update(kwargs)


def get_context(attr_key: str) -> Any:
    if attr_key not in _SETTINGS:
        raise ValueError(f"For 'get_context', the key {attr_key!r} has not been set; set keys: {sorted(_SETTINGS)}")
    return _SETTINGS[attr_key]


def set_seed(seed: int) -> None:
    """Seed NumPy's global generator (the initialisers draw from it) and torch's."""
    np.random.seed(seed)
    torch.manual_seed(seed)


def jit(function: Any = None, **options: Any) -> Any:
    """``@mindspore.jit`` (graph compilation): execution is eager here, so the function is returned as it is."""
    if function is None:
        return lambda f: f
    return function
