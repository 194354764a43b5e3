"""Shared pieces of the ``lstm-bridge`` subcommands: exit codes, errors, output, loading."""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import Any, List, Optional, Sequence

#: success
EXIT_OK = 0
#: verification failed: a difference above the tolerance
EXIT_VERIFY = 1
#: usage error: bad arguments, an output that exists without --force, an output that is an input
EXIT_USAGE = 2
#: bad or unsupported input file (unreadable, corrupt, encrypted, unknown format, inexpressible semantics),
#: or an I/O error reading IN or writing OUT (read-only directory, disk full, ...)
EXIT_INPUT = 3
#: an I/O error reading or writing a file: the same code as a bad input
EXIT_IO = EXIT_INPUT
#: interrupted: ``128 + signal number`` (SIGINT 130, SIGTERM 143, SIGHUP 129)
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES_HELP = """exit codes:
  0  success
  1  verification failed (a difference above the tolerance)
  2  usage error (bad arguments, existing output without --force, output = input)
  3  bad or unsupported input file (unreadable, corrupt, encrypted, unknown format,
     or semantics the target cannot express), or an I/O error writing OUT
     (read-only directory, disk full, ...)
  130/143  interrupted by SIGINT (Ctrl-C) / SIGTERM (128 + signal number); OUT untouched"""


class CliError(Exception):
    """Raised inside a subcommand: ``main`` prints ``message`` to stderr and exits with ``code``."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Output:
    """Prints to stdout, with ``rich`` tables when it is installed (plain text otherwise)."""

    def __init__(self, stream: Any = None):
        self.stream = stream if stream is not None else sys.stdout
        try:
            from rich.console import Console

            self.console: Any = Console(
                file=self.stream, highlight=False, soft_wrap=True, width=None if self.stream.isatty() else 120
            )
        except ImportError:  # pragma: no cover - rich is optional
            self.console = None

    def line(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, markup=False)
        else:
            print(text, file=self.stream)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.console is not None:
            from rich.table import Table

            t = Table(title=title, title_justify="left")
            for c in columns:
                t.add_column(c, overflow="fold")
            for r in rows:
                t.add_row(*[str(v) for v in r])
            self.console.print(t)
            return
        widths = [
            max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c)) for i, c in enumerate(columns)
        ]
        print(title, file=self.stream)
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)), file=self.stream)
        for r in rows:
            print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)), file=self.stream)


def load_model(path: str) -> Any:
    """``lstm_bridge.io.load(path)``, with every input problem turned into ``CliError(EXIT_INPUT)``."""
    if not os.path.lexists(path):  # a symlink loop or dangling link: load() says which
        raise CliError(EXIT_INPUT, f"{path}: no such file")
    if os.path.isdir(path):
        raise CliError(EXIT_INPUT, f"{path}: is a directory; expected a model file")
    from ..io import load

    try:
        return load(path)
    except NotImplementedError as exc:
        raise CliError(
            EXIT_INPUT, f"unsupported: {exc}" if os.fspath(path) in str(exc) else f"{path}: unsupported: {exc}"
        ) from exc
    except (ValueError, OSError, KeyError, EOFError) as exc:  # FormatError is a ValueError
        raise CliError(EXIT_INPUT, f"{exc}" if os.fspath(path) in str(exc) else f"{path}: {exc}") from exc


#: ``os.strerror`` texts searched for in the messages of writers that wrap an OS error in their own
#: exception type (torch's RuntimeError "file write failed", safetensors' IoError, HDF5's "errno = 28")
_OS_ERRNOS = tuple(
    getattr(errno, n)
    for n in (
        "ENOSPC",
        "EDQUOT",
        "EFBIG",
        "EROFS",
        "EACCES",
        "EPERM",
        "EIO",
        "ENOENT",
        "ENOTDIR",
        "EISDIR",
        "EMFILE",
        "ENAMETOOLONG",
    )
    if hasattr(errno, n)
)
_ERRNO_IN_TEXT = re.compile(r"(?:errno\s*=\s*|\[Errno\s+|Os\s*\{\s*code:\s*)(\d+)")


def os_reason(exc: BaseException) -> Optional[str]:
    """The operating-system reason behind ``exc`` (``"No space left on device"``), or None when it is not
    an I/O failure: an ``OSError`` in ``exc`` or its causes, an errno number in its text, or a known
    ``strerror`` text inside the message of a writer's own exception type."""
    seen = set()
    e: Optional[BaseException] = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno or e.strerror):
            return os.strerror(e.errno) if e.errno else str(e.strerror).splitlines()[0]
        e = e.__cause__ or e.__context__
    text = str(exc)
    m = _ERRNO_IN_TEXT.search(text)
    if m and int(m.group(1)) in _OS_ERRNOS:
        return os.strerror(int(m.group(1)))
    for code in _OS_ERRNOS:
        if os.strerror(code).lower() in text.lower():
            return os.strerror(code)
    if "file write failed" in text or "StorageFull" in text:
        return "write failed (the disk may be full)"
    return None


def chain_of(mf: Any, layer: Optional[str], path: str, strict: bool = False) -> Any:
    """The LSTM chain of a loaded file (``CliError(EXIT_INPUT)`` when it has none). ``strict`` also
    requires the layers to feed each other (needed to run the chain end to end, not to compare it)."""
    from ..convert import chain_from_model_file

    try:
        return chain_from_model_file(mf, layer, validate=strict)
    except ValueError as exc:
        unknown = "no LSTM layer" in str(exc) or "no recurrent layer" in str(exc)
        code = EXIT_USAGE if layer is not None and unknown else EXIT_INPUT
        raise CliError(code, f"{path}: {exc}") from exc


def fmt_float(v: float) -> str:
    return f"{v:.3g}"


def names(items: List[Any]) -> str:
    return ", ".join(repr(i) for i in items) if items else "(none)"
