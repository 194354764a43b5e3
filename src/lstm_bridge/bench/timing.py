"""Interleaved A/B timing: calibrated passes of rounds that call every participant in alternating order,
and the sgemm ceiling; see the package docstring for the method."""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence

from .participants import CallTime, Workload, gemm_workload


@dataclasses.dataclass(frozen=True)
class TimingPlan:
    """``passes`` A/B passes of ``min_reps..max_reps`` rounds, ~``target_s`` for the slowest participant."""

    passes: int = 3
    target_s: float = 0.1
    min_reps: int = 2
    max_reps: int = 40
    warmup: int = 1


def _call_time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    # a worker process's own measurement of its call (participants.CallTime): the pipe's round trip left out
    return float(out) if isinstance(out, CallTime) else elapsed


def _calibrate(fn: Callable[[], object], plan: TimingPlan) -> float:
    """Warm ``fn`` up (first-call initialisation, kernel loading) and return the time of one more call."""
    for _ in range(plan.warmup):
        fn()
    return _call_time(fn)


def _reps(seconds: float, plan: TimingPlan) -> int:
    return max(plan.min_reps, min(plan.max_reps, int(math.ceil(plan.target_s / max(seconds, 1e-7)))))


def _one_pass(fn: Callable[[], object], reps: int) -> float:
    return statistics.median(_call_time(fn) for _ in range(reps))


def _summary(values: Sequence[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(participants: Dict[str, Workload], mode: str, plan: TimingPlan) -> Dict[str, Any]:
    """Interleaved passes of every participant for ``mode`` (``"forward"`` or ``"train"``).

    A pass runs ``reps`` rounds; a round calls each participant once, the order alternating from round
    to round (A B, B A, ...), so a burst of machine load hits both sides of a pair alike. Each pass
    keeps the median call time per participant; ``reps`` makes the slowest participant's share of a
    pass last about ``plan.target_s``.

    Returns ``{"passes": {name: [per-pass median seconds]}, "median_s": {name: median of those},
    "reps": n, "paths": {name: path}, "ratio": {name: {"per_pass": [...], "median", "min", "max"}}}``;
    ratios are to ``"torch"`` in the same pass.
    """
    names = list(participants)
    fns = {n: getattr(participants[n], mode) for n in names}
    reps = _reps(max(_calibrate(fns[n], plan) for n in names), plan)
    paths = {n: participants[n].path() for n in names}
    passes: Dict[str, List[float]] = {n: [] for n in names}
    for k in range(plan.passes):
        gc.collect()
        samples: Dict[str, List[float]] = {n: [] for n in names}
        for r in range(reps):
            for n in names if (k * reps + r) % 2 == 0 else names[::-1]:
                samples[n].append(_call_time(fns[n]))
        for n in names:
            passes[n].append(statistics.median(samples[n]))
    ratio = {}
    for n in names:
        if n == "torch":
            continue
        per_pass = [a / b for a, b in zip(passes[n], passes["torch"])]
        ratio[n] = {"per_pass": per_pass, **_summary(per_pass)}
    return {
        "passes": passes,
        "reps": reps,
        "paths": paths,
        "ratio": ratio,
        "median_s": {n: statistics.median(passes[n]) for n in names},
    }


def sgemm_ceiling(m: int, k: int, n: int, plan: TimingPlan) -> Dict[str, Any]:
    """GFLOP/s of a float32 ``(m, k) @ (k, n)`` (the ceiling participant's product: oneDNN's matmul where
    torch has it, else ``torch.mm``; see ``participants.gemm_workload``): best of 3 batch medians
    (~``target_s`` each)."""
    workload, _ = gemm_workload(m, k, n)
    fn = workload.forward
    reps = _reps(_calibrate(fn, plan), plan)
    best = min(_one_pass(fn, reps) for _ in range(3))
    return {"shape": [m, k, n], "seconds": best, "gflops": 2.0 * m * k * n / best / 1e9}
