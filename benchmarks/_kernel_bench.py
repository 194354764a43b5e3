"""What the kernel micro-benchmarks here share: the ``--threads`` option, torch's thread count, the clock
(this process's CPU time on one thread, else the wall clock) and the loaded native kernel."""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Tuple

import torch

from lstm_bridge.engine.native import loader


def setup(description: str, default_threads: int) -> Tuple[Any, Callable[[], float], int]:
    """Parse ``--threads``, set torch's thread count and load the kernel: ``(ext, clock, threads)``; exits
    naming the reason when the kernel is not available."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=default_threads)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    if not loader.available():
        raise SystemExit(f"the native kernel is not available: {loader.error()}")
    return loader.module(), clock, args.threads
