"""Importing this module registers lstm-bridge's custom operators without building the kernel.

``torch.ops.lstm_bridge.lstm_layer``, ``lstm_layer_backward``, ``family_layer``, ``family_layer_backward``
and ``check_range`` are what a compiled, exported or traced program of lstm-bridge layers holds. A process
that has called a layer has them already; one that only loads a saved program needs them first::

    import torch
    import lstm_bridge.ops  # registers the ops (~40 ms once torch is imported; builds nothing)

    program = torch.export.load("model.pt2").module()

(``import lstm_bridge`` alone does not register them: it stays cheap and does not import torch. Importing a
front end - ``lstm_bridge.keras``, ``lstm_bridge.mindspore`` - or ``lstm_bridge.models`` registers them too, with
their translations for the dynamo ONNX exporter.) The kernel itself is built or loaded on the program's first
call, as for an eager layer.
"""

from __future__ import annotations

from .engine import native as _native  # noqa: F401  (importing the native package defines the ops)

__all__: list[str] = []
