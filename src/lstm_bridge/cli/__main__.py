"""``python -m lstm_bridge.cli``: the same as the ``lstm-bridge`` console script."""

import sys

from . import main

sys.exit(main())
