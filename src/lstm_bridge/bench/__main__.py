"""``python -m lstm_bridge.bench [ARGS...]``: run the benchmark suite (see ``lstm_bridge.bench``)."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
