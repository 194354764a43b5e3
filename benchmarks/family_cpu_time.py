"""The recurrent-family bench rows timed with this process's CPU time, for a machine shared with other jobs.

Run: ``.venv/bin/python benchmarks/family_cpu_time.py --configs small,medium --variants family --samples 5``.

Each row builds the same two workloads as ``python -m lstm_bridge.bench`` (``bench.participants``: ours =
the Keras / MindSpore front end, torch = the row's baseline module, ``torch.nn.GRU`` or ``torch.nn.RNN``),
then takes ``--samples`` interleaved samples of each (order alternating; a sample = the mean CPU time of
enough calls for ~50 ms of the baseline). ms = median sample; ratio = median of the per-sample ratios
ours/torch, with their min-max. The clock is ``time.process_time`` (all of this process's threads), so time
spent preempted by other jobs is not counted; with ``--threads 1`` it is each side's compute time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List, Tuple

import torch

from lstm_bridge.bench import participants
from lstm_bridge.bench.configs import CONFIGS, FAMILY_VARIANTS, make_inputs


def _mean_cpu(f: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        f()
    return (time.process_time() - start) / calls


def _pair(ours: Callable[[], object], ref: Callable[[], object], samples: int) -> Tuple[float, float, List[float]]:
    ours()
    ref()
    calls = max(1, int(0.05 / max(1e-5, _mean_cpu(ref, 1))))
    t_ours: List[float] = []
    t_ref: List[float] = []
    ratios: List[float] = []
    for s in range(samples):
        order = [(ours, t_ours), (ref, t_ref)] if s % 2 == 0 else [(ref, t_ref), (ours, t_ours)]
        for f, acc in order:
            acc.append(_mean_cpu(f, calls))
        ratios.append(t_ours[-1] / t_ref[-1])
    return statistics.median(t_ours) * 1e3, statistics.median(t_ref) * 1e3, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="small,medium")
    parser.add_argument("--variants", default="family", help="comma-separated family variants, or 'family'")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = list(FAMILY_VARIANTS) if args.variants == "family" else args.variants.split(",")
    print(
        "| config | variant | path | fwd ms ours | fwd ms torch | fwd ratio (min-max) | train ms ours "
        "| train ms torch | train ratio (min-max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        data = make_inputs(cfg)
        for variant in variants:
            ours = participants.build_workload("ours", cfg, variant, data, args.threads)
            ref = participants.build_workload("torch", cfg, variant, data, args.threads)
            assert ours is not None and ref is not None
            cells = []
            for mode in ("forward", "train"):
                a, b, ratios = _pair(getattr(ours, mode), getattr(ref, mode), args.samples)
                cells += [
                    f"{a:.3g}",
                    f"{b:.3g}",
                    f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
                ]
            print(f"| {name} | {variant} | {ours.path()} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
