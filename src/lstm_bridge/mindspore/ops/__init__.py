"""``mindspore.ops`` on PyTorch: the primitives (:mod:`.operations`, ``P``) and functions (:mod:`.functional`,
``F``) that model-zoo recurrent networks call (docs/porting-mindspore.md lists them and the networks).

``from lstm_bridge.mindspore import ops`` / ``from lstm_bridge.mindspore.ops import operations as P`` /
``from lstm_bridge.mindspore.ops import functional as F``. A name outside the subset raises
:class:`UnsupportedError` (an ``AttributeError`` and ``NotImplementedError``) naming it.
"""

from typing import Any

from ..common.tensor import Tensor as Tensor
from . import composite as composite, functional as functional, operations as operations, primitive as primitive
from ._unsupported import UnsupportedError as UnsupportedError
from .functional import *  # noqa: F401,F403 (the functional forms: ops.concat, ops.transpose, ...)
from .functional import NAMES as _FUNCTIONS
from .operations import *  # noqa: F401,F403 (the primitives: ops.Concat, ops.Transpose, ...)
from .operations import NAMES as _PRIMITIVES, Primitive as Primitive
from .primitive import constexpr as constexpr, prim_attr_register as prim_attr_register

__all__ = sorted(
    set(_FUNCTIONS)
    | set(_PRIMITIVES)
    | {
        "Primitive",
        "Tensor",
        "UnsupportedError",
        "composite",
        "constexpr",
        "functional",
        "operations",
        "prim_attr_register",
        "primitive",
    }
)


def __getattr__(name: str) -> Any:
    from ._unsupported import unsupported

    raise unsupported("lstm_bridge.mindspore.ops", name, set(_FUNCTIONS) | set(_PRIMITIVES))
