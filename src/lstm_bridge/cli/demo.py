"""``lstm-bridge demo``: the seed's example in both APIs and their parity (``lstm_bridge.demo.main``)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import Output

HELP = "run the demo: the seed's MindSpore example, its Keras twin, and their parity"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ". Exit code 0 when every parity check passes.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from .. import demo  # lazily: it builds layers

    return int(demo.main() or 0)
