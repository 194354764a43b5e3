"""The ``lstm-bridge`` command line: ``convert``, ``port``, ``inspect``, ``verify``, ``explain``, ``demo``, ``bench``.

``main(argv=None) -> int`` is the console script (``lstm-bridge = "lstm_bridge.cli:main"``); it
returns the exit code instead of exiting, so tests call ``main([...])`` directly. Exit codes: 0
success, 1 verification failed, 2 usage error, 3 bad or unsupported input file or an I/O error writing
OUT, 128 + signal number when interrupted (130 SIGINT, 143 SIGTERM). Each subcommand lives in its own
module with ``add_parser(subparsers)`` and ``run(args, out) -> int``. While a command runs, SIGTERM
and SIGHUP raise an exception as SIGINT does (so temporary files are removed on every exit path), and
a signal is never swallowed: one that library code caught still ends the run with 128 + signum.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable, List, Optional, Sequence

from .. import __version__
from . import (
    _signals,
    bench as _bench,
    convert as _convert,
    demo as _demo,
    explain as _explain,
    inspect as _inspect,
    port as _port,
    verify as _verify,
)
from ._common import EXIT_CODES_HELP, EXIT_INPUT, EXIT_OK, EXIT_USAGE, EXIT_VERIFY, CliError, Output, os_reason

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_VERIFY", "EXIT_USAGE", "EXIT_INPUT"]

_COMMANDS = (_convert, _port, _inspect, _verify, _explain, _demo, _bench)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lstm-bridge",
        description="Move LSTM weights losslessly between Keras, MindSpore, PyTorch and ONNX, prove the numbers "
        "match, and explain how the two APIs correspond.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lstm-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args_list: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["bench"] and args_list[1:2] not in (["-h"], ["--help"]):
        # everything after "bench" belongs to the benchmark suite's own parser
        # (its own handlers: worker processes forked from here must keep the default SIGTERM)
        return _run_safely("bench", lambda: _bench.delegate(args_list[1:]))
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse: --help/--version exit 0, errors exit 2
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    out = Output()
    return _run_interruptible(args.command, lambda: args.run(args, out))


def _run_interruptible(command: str, fn: Callable[[], int]) -> int:
    """``_run_safely`` with SIGINT/SIGTERM/SIGHUP raising exceptions; a signal recorded during the run
    (even one whose exception library code swallowed) makes the exit code ``128 + signum``."""
    code = EXIT_OK
    with _signals.signals_as_exceptions():
        try:
            code = _run_safely(command, fn)
        except (KeyboardInterrupt, _signals.Terminated):  # arrived after the command returned
            pass
    signum = _signals.received()
    if signum is not None and code != _signals.exit_code(signum):
        print(f"lstm-bridge {command}: interrupted by {_signals.signal_name(signum)}", file=sys.stderr)
        code = _signals.exit_code(signum)
    return code


def _run_safely(command: str, fn: Callable[[], int]) -> int:
    try:
        return int(fn())
    except CliError as exc:
        print(f"lstm-bridge {command}: error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"lstm-bridge {command}: interrupted by SIGINT", file=sys.stderr)
        return _signals.exit_code(signal.SIGINT)
    except _signals.Terminated as exc:
        print(f"lstm-bridge {command}: {exc}", file=sys.stderr)
        return _signals.exit_code(exc.signum)
    except OSError as exc:  # an I/O failure no command turned into a message: one line, never a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"lstm-bridge {command}: error: {where}{os_reason(exc) or exc}", file=sys.stderr)
        return EXIT_INPUT
