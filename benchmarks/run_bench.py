#!/usr/bin/env python
"""Run the lstm-bridge benchmark suite from a checkout (same as ``python -m lstm_bridge.bench``).

Usage::

    python benchmarks/run_bench.py --out bench-results            # the full run (~5-10 min on 2 cores)
    python benchmarks/run_bench.py --configs medium --variants standard,mask --passes 5
    python benchmarks/run_bench.py --help

Works without installing the package: ``src/`` is put on ``sys.path`` when ``lstm_bridge`` is not
importable. All options are documented in ``benchmarks/README.md`` and ``lstm_bridge.bench``.
"""

from __future__ import annotations

import os
import sys

try:
    import lstm_bridge  # noqa: F401
except ImportError:  # a plain checkout: use its src/ layout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))

from lstm_bridge.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
