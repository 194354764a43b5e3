"""Training steps with and without the kernel's buffer pool (``buffer_pool.cpp``), in one process.

The pool is switched per round with ``pool_set_limit`` (512 MiB on, 0 off: every block handed back at once, as
before the pool), rounds alternating, so both see the same machine state. Per case: the median step time of
each, the median of the per-round ratios (pool / no pool, with min-max) and the minor page faults per step.
Each case runs in a fresh process of its own with only our model in it, as a training loop of one model does:
whether glibc faults pages in depends on the process's history (after a larger model ran, or with other
workloads interleaved, e.g. ``torch.nn.LSTM`` in the bench, its heap and thresholds have grown and neither
side faults much).

Run: ``.venv/bin/python benchmarks/buffer_pool.py [--threads N] [--rounds R]`` (``--case K``: only case K, here).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, List, Tuple

import torch

from lstm_bridge import keras as K, mindspore as M
from lstm_bridge.engine import native

CONFIGS = {
    "small": (50, 16, 32, 64),
    "medium": (100, 32, 128, 256),
    "large": (100, 64, 512, 512),
    "long": (1000, 16, 64, 128),
}
CASES: Tuple[Tuple[str, str, bool], ...] = (  # (config, model, bf16 autocast)
    ("small", "lstm", False),
    ("medium", "lstm", False),
    ("medium", "lstm", True),
    ("medium", "bidirectional", False),
    ("medium", "bidirectional", True),
    ("large", "lstm", False),
    ("large", "lstm", True),
    ("long", "lstm", False),
    ("medium", "gru", False),
    ("medium", "mindspore 2-layer bidirectional", False),
)


def _model(kind: str, I: int, H: int) -> torch.nn.Module:  # noqa: E741
    if kind == "lstm":
        return K.LSTM(H, return_sequences=True)
    if kind == "bidirectional":
        return K.Bidirectional(K.LSTM(H, return_sequences=True))
    if kind == "gru":
        return K.GRU(H, return_sequences=True)
    return M.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)


def _step(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = model(x)
        (y[0] if isinstance(y, tuple) else y).float().sum().backward()

    return step


def measure(config: str, kind: str, bf16: bool, rounds: int) -> str:
    ext = native.module()
    T, B, I, H = CONFIGS[config]
    x = torch.randn(B, T, I)
    model = _model(kind, I, H)
    with torch.no_grad():
        model(x)  # built
    step = _step(model, x, bf16)
    t0 = time.perf_counter()
    step()
    calls = max(1, int(0.3 / max(time.perf_counter() - t0, 1e-4)))
    times: dict = {True: [], False: []}
    faults: dict = {True: [], False: []}
    for r in range(2 * rounds):
        on = r % 2 == 0
        ext.pool_set_limit(512 << 20 if on else 0)
        step()
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        times[on].append((time.perf_counter() - t0) / calls)
        faults[on].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / calls)
    ext.pool_set_limit(512 << 20)
    ratios: List[float] = [a / b for a, b in zip(times[True], times[False])]
    return (
        f"{config:6s} {kind:31s} {'bf16' if bf16 else 'f32 '}  pool {1e3 * statistics.median(times[True]):8.2f} ms  "
        f"no pool {1e3 * statistics.median(times[False]):8.2f} ms  pool/no pool {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})  faults/step {statistics.median(faults[True]):.0f} / "
        f"{statistics.median(faults[False]):.0f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=6, help="rounds per side (alternating)")
    p.add_argument("--case", type=int, default=None, help="run only this case (index into CASES) in this process")
    a = p.parse_args()
    if a.case is None:
        print(f"torch {torch.__version__}, {a.threads} threads, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        for k in range(len(CASES)):
            argv = [sys.executable, __file__, "--threads", str(a.threads), "--rounds", str(a.rounds), "--case", str(k)]
            subprocess.run(argv, check=True)
        return
    torch.set_num_threads(a.threads)
    if not native.available():
        raise SystemExit(f"the native kernel is unavailable: {native.error()}")
    print(measure(*CASES[a.case], rounds=a.rounds), flush=True)


if __name__ == "__main__":
    main()
