"""``mindspore.ops.composite`` (``C`` in model-zoo code): MindSpore's graph-composition and gradient helpers
(``GradOperation``, ``MultitypeFuncGraph``, ``HyperMap``, ...) drive training, which lstm-bridge leaves to torch
(``loss.backward()`` and a ``torch.optim`` optimizer over ``net.trainable_params()``).

The module exists so that a network file importing it (``from mindspore.ops import composite as C``, typically for
a training wrapper next to the network) still imports; every name raises
:class:`~lstm_bridge.mindspore.ops.UnsupportedError` when it is used, naming it.
"""

from typing import Any

__all__: "list[str]" = []


def __getattr__(name: str) -> Any:
    from ._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore.ops.composite", name, ["(none: train with torch)"])
