"""Signals as exceptions for the CLI: SIGTERM/SIGHUP raise :class:`Terminated`, SIGINT ``KeyboardInterrupt``.

Python's default SIGTERM kills the process on the spot, so ``finally`` blocks (which remove temporary
files) never run. While :func:`signals_as_exceptions` is active each of these signals raises in the
main thread instead, and every one received is also *recorded*: a library that catches and drops the
exception (a ``__del__``, a C callback) cannot make the run forget it. :func:`raise_if_interrupted`
re-raises a recorded signal (``convert`` calls it right before it moves OUT into place), and ``main``
turns a recorded signal into exit ``128 + signum`` (130 SIGINT, 143 SIGTERM, 129 SIGHUP) even when the
command returned normally.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Dict, Iterator, List, Optional

from ..formats.atomic import signals_deferred

__all__ = ["Terminated", "signals_as_exceptions", "received", "raise_if_interrupted", "exit_code", "signal_name"]

_HANDLED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
_received: List[int] = []


class Terminated(BaseException):
    """A SIGTERM/SIGHUP turned into an exception (a ``BaseException``, like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal_name(signum)}")
        self.signum = signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The shell's exit status for a run ended by ``signum``: ``128 + signum``."""
    return 128 + int(signum)


def _raise_for(signum: int) -> None:
    if signum == getattr(signal, "SIGINT", None):
        raise KeyboardInterrupt
    raise Terminated(signum)


def _handler(signum: int, frame: Any) -> None:
    _received.append(signum)
    _raise_for(signum)


def received() -> Optional[int]:
    """The first signal recorded since :func:`signals_as_exceptions` started, or None."""
    return _received[0] if _received else None


def raise_if_interrupted() -> None:
    """Raise the exception of a recorded signal (KeyboardInterrupt / Terminated), if any."""
    if _received:
        _raise_for(_received[0])


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Install the raising, recording handlers for SIGINT/SIGTERM/SIGHUP for the body and restore the
    previous ones afterwards. A signal whose handler is ``SIG_IGN`` (``nohup``, a background job) stays
    ignored. Outside the main thread (where handlers cannot be set) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    del _received[:]
    previous: Dict[int, Any] = {}
    try:
        for signum in _HANDLED:
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN:
                continue
            previous[signum] = old
            signal.signal(signum, _handler)
        yield
    finally:
        with signals_deferred():
            for signum, old in previous.items():
                with contextlib.suppress(ValueError, TypeError, OSError):
                    signal.signal(signum, old if old is not None else signal.SIG_DFL)
            # one that arrived while we restored is consumed and recorded, not re-raised outside the run
            pending = set(signal.sigpending()) & set(previous) if hasattr(signal, "sigpending") else set()
            for signum in pending:
                with contextlib.suppress(OSError, ValueError):
                    if signal.sigtimedwait([signum], 0) is not None:
                        _received.append(signum)
