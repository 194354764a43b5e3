"""bfloat16 rows (issue 12 item 4): ``python -m lstm_bridge.bench.bf16``.

For each (config, variant, mode) four participants run interleaved in one process (round by round, the
order alternating, so machine load hits them alike), all through the public front ends exactly as the
main bench builds them (:func:`.participants.build_workload`):

* ``ours f32``: the layer in float32 (the engine's default path);
* ``ours bf16``: the same layer under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (the engine's default
  path for a bf16 call: the native kernel's bf16 layer, or oneDNN's bf16 LSTM where the policy sends the
  standard LSTM);
* ``torch f32`` / ``torch bf16``: ``torch.nn.LSTM`` of the same size, without and under the same autocast.

Reported per row: the median time of each (per call, over ``--samples`` rounds), ``bf16 speed-up`` = ours
f32 / ours bf16, ``vs torch bf16`` = ours bf16 / torch bf16 (median of the per-round ratios, with their
min–max), and ``max |bf16 - f32|`` of the forward output. Timing uses this process's CPU time by default
(``--clock wall`` for elapsed time): on a machine shared with other jobs the wall clock mostly measures
preemption. Targets (issue 12): speed-up >= 1.6 on medium and large, <= 1.1x torch's bf16 time, error
<= 3e-2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import torch

from .configs import CONFIGS, LSTM_VARIANTS, MS_FRONT_END, QUICK_CONFIGS, Config, Inputs, make_inputs, select_configs
from .participants import Workload, build_workload

__all__ = ["main", "measure_row"]

CLOCKS: Dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
PARTICIPANTS = ("ours f32", "ours bf16", "torch f32", "torch bf16")
DEFAULT_CONFIGS = ("small", "medium", "large", "long", "medium_2l_bidir")
DEFAULT_VARIANTS = ("standard", "hard_sigmoid", "mask", "seq_length", "bidirectional")


def _calls(ours: Workload, ref: Workload, mode: str) -> Dict[str, Callable[[], None]]:
    def run(w: Workload, bf16: bool) -> Callable[[], None]:
        fn = getattr(w, mode)

        def call() -> None:
            w.zero_grad()
            if bf16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    fn()
            else:
                fn()

        return call

    return {
        "ours f32": run(ours, False),
        "ours bf16": run(ours, True),
        "torch f32": run(ref, False),
        "torch bf16": run(ref, True),
    }


def _output(ours: Workload, variant: str, data: Inputs) -> Optional[torch.Tensor]:
    """ours' forward output on the row's input (as :func:`.participants.build_workload` calls it); None
    for recurrent dropout (random masks per call)."""
    module = ours.module
    if module is None or variant == "recurrent_dropout":
        return None
    with torch.no_grad():
        if variant in MS_FRONT_END:
            lengths = data.lengths if variant == "seq_length" else None
            return module(data.x, seq_length=lengths)[0]
        y = data.x
        mask = data.mask if variant == "mask" else None
        for layer in module.children():  # a ModuleList of Keras layers, in order
            y = layer(y, mask=mask)
        return y


def _forward_error(ours: Workload, variant: str, data: Inputs) -> Optional[float]:
    """max |ours' output under bf16 autocast - its float32 output| (None where not comparable)."""
    ref = _output(ours, variant, data)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = _output(ours, variant, data)
    if ref is None or got is None:
        return None
    return float((got.float() - ref.float()).abs().max())


def measure_row(cfg: Config, variant: str, mode: str, samples: int, clock: Callable[[], float]) -> Dict[str, Any]:
    """Time the four participants of one row (``cfg``: a bench config or a size of one's own); returns the
    medians, ratios and the forward error."""
    data = make_inputs(cfg)
    ours = build_workload("ours", cfg, variant, data)
    ref = build_workload("torch", cfg, variant, data)
    assert ours is not None and ref is not None
    calls = _calls(ours, ref, mode)
    for fn in calls.values():  # warm up (first-call initialisation, kernel build, calibration)
        fn()
        fn()
    times: Dict[str, List[float]] = {n: [] for n in calls}
    names = list(calls)
    for r in range(samples):
        for n in names if r % 2 == 0 else list(reversed(names)):
            t0 = clock()
            calls[n]()
            times[n].append(clock() - t0)

    def ratio(a: str, b: str) -> Dict[str, float]:
        rs = [x / y for x, y in zip(times[a], times[b]) if y > 0]
        return {"median": statistics.median(rs), "min": min(rs), "max": max(rs)} if rs else {}

    return {
        "config": cfg.name,
        "variant": variant,
        "mode": mode,
        "samples": samples,
        "ms": {n: 1e3 * statistics.median(v) for n, v in times.items()},
        "speedup": ratio("ours f32", "ours bf16"),
        "vs_torch_bf16": ratio("ours bf16", "torch bf16"),
        "torch_speedup": ratio("torch f32", "torch bf16"),
        "error": _forward_error(ours, variant, data) if mode == "forward" else None,
    }


def render(rows: List[Dict[str, Any]], header: List[str]) -> str:
    lines = header + [
        "",
        "| config | variant | mode | ms ours f32 | ms ours bf16 | ms torch f32 | ms torch bf16 | bf16 speed-up "
        "(ours f32 / ours bf16) | ours bf16 / torch bf16 | torch's own speed-up | max abs(bf16 - f32) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(r: Dict[str, float]) -> str:
        return f"{r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})" if r else "n/a"

    for row in rows:
        ms = row["ms"]
        err = "" if row["error"] is None else f"{row['error']:.2e}"
        lines.append(
            f"| {row['config']} | {row['variant']} | {row['mode']} | {ms['ours f32']:.3g} | {ms['ours bf16']:.3g} | "
            f"{ms['torch f32']:.3g} | {ms['torch bf16']:.3g} | {fmt(row['speedup'])} | {fmt(row['vs_torch_bf16'])} | "
            f"{fmt(row['torch_speedup'])} | {err} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lstm_bridge.bench.bf16", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=None, help=f"comma-separated configs (default {','.join(DEFAULT_CONFIGS)})")
    p.add_argument(
        "--shape",
        action="append",
        default=None,
        metavar="T,B,I,H[,L][,bidir]",
        help="a size of your own (repeatable); alone it replaces the default configs, with --configs it adds to them",
    )
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, of {LSTM_VARIANTS}")
    p.add_argument("--modes", default="forward,train", help="forward, train or both")
    p.add_argument("--samples", type=int, default=15, help="interleaved rounds per row (default 15)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="cpu", help="cpu (process CPU time, default) or wall")
    p.add_argument("--quick", action="store_true", help="toy sizes, 2 samples: a smoke test, not a measurement")
    p.add_argument("--out", help="write bf16.md and bf16.json into this directory")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    samples = 2 if args.quick else args.samples
    try:
        configs = select_configs(args.configs, args.shape, QUICK_CONFIGS if args.quick else CONFIGS, DEFAULT_CONFIGS)
    except ValueError as exc:
        p.error(str(exc))
    rows = []
    for c in configs:
        for v in args.variants.split(","):
            if v not in LSTM_VARIANTS:
                p.error(f"variant must be one of {LSTM_VARIANTS}; received {v!r}")
            for m in args.modes.split(","):
                row = measure_row(c, v, m, samples, CLOCKS[args.clock])
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = [
        "# lstm-bridge bfloat16 rows",
        "",
        f"- command: `python -m lstm_bridge.bench.bf16 {' '.join(argv if argv is not None else sys.argv[1:])}`",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}; "
        f"{args.threads} threads; clock: {args.clock}; {samples} interleaved rounds per row; load (1-min) {load:.1f}",
        "- ratios: median of the per-round ratios (min–max); ms: medians",
    ]
    text = render(rows, header)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bf16.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "bf16.json"), "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
