"""``mindspore.ops.primitive``: ``Primitive``, and the decorators network code uses for graph compilation.

Execution here is eager, so ``constexpr`` (a function evaluated at compile time on constant arguments) and
``prim_attr_register`` (records a custom primitive's ``__init__`` arguments) leave the function as it is: calling
it computes the same value.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from .operations import Primitive, PrimitiveWithInfer


def constexpr(
    fn: Optional[Callable[..., Any]] = None,
    get_instance: bool = True,
    name: Optional[str] = None,
    reuse_result: bool = True,
    check: bool = True,
) -> Any:
    """``@constexpr`` or ``@constexpr(check=False)``: the function itself (eager execution)."""
    if fn is None:
        return lambda f: f
    return fn


def prim_attr_register(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``@prim_attr_register`` on a custom primitive's ``__init__``: the ``__init__`` itself."""
    return fn


__all__ = ["Primitive", "PrimitiveWithInfer", "constexpr", "prim_attr_register"]
