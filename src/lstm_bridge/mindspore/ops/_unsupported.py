"""The error for a MindSpore name outside lstm-bridge's subset."""

from __future__ import annotations

from typing import Iterable


class UnsupportedError(AttributeError, NotImplementedError):
    """A MindSpore op or Cell that lstm-bridge does not implement. An ``AttributeError`` (so ``hasattr`` and
    ``getattr(mod, name, default)`` behave) and a ``NotImplementedError``."""


def unsupported(module: str, name: str, known: Iterable[str]) -> AttributeError:
    """The error for ``module.name``: dunder lookups get a plain AttributeError, other names say the op is
    outside the subset and list it."""
    if name.startswith("__") and name.endswith("__"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return UnsupportedError(
        f"{module}.{name} is outside the MindSpore subset lstm-bridge implements (expected one of: "
        f"{', '.join(sorted(known))}); write it with torch in the network's construct or as a Cell, see "
        f"docs/porting-mindspore.md"
    )
