"""``lstm-bridge bench [ARGS...]``: the benchmark suite (``lstm_bridge.bench.main(argv)``)."""

from __future__ import annotations

import argparse
from typing import Any, List

from ._common import EXIT_USAGE, CliError, Output

HELP = (
    "run the benchmarks; every argument after 'bench' goes to the benchmark suite "
    "(its own options: lstm-bridge bench -- --help)"
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help=HELP, description=HELP)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark suite")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> int:
    return delegate(list(args.bench_args))


def delegate(argv: List[str]) -> int:
    """Call ``lstm_bridge.bench.main(argv)`` (a leading ``--`` is dropped)."""
    try:
        from .. import bench
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("lstm_bridge.bench"):
            raise CliError(EXIT_USAGE, "the benchmark suite (lstm_bridge.bench) is not installed") from exc
        raise
    argv = list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return int(bench.main(argv) or 0)
