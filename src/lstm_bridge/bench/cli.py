"""The command line of the suite: ``python -m lstm_bridge.bench`` / ``lstm-bridge bench``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

import torch

from .configs import (
    CONFIGS,
    DEFAULT_VARIANTS,
    QUICK_CONFIGS,
    VARIANT_ALIASES,
    VARIANT_GROUPS,
    VARIANTS,
    pick_names,
    select_configs,
)
from .environment import available_frameworks, run_metadata
from .report import render_markdown, write_chart
from .runner import run
from .timing import TimingPlan


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lstm_bridge.bench`` / ``lstm-bridge bench``."""
    p = argparse.ArgumentParser(
        prog="lstm-bridge bench",
        description=(
            "Time every LSTM variant of lstm-bridge against torch.nn.LSTM of the same size (GRU/RNN rows against "
            "torch.nn.GRU/torch.nn.RNN), interleaved in one process (plus TensorFlow/MindSpore when importable). "
            "See the lstm_bridge.bench docstring for the method."
        ),
        epilog=(
            "Two more tables have their own commands: python -m lstm_bridge.bench.bf16 (bfloat16 against float32 "
            "and against torch.nn.LSTM under the same autocast, with the error) and python -m "
            "lstm_bridge.bench.traced (torch.compile / torch.export / AOTInductor against eager, and the per-call "
            "overhead of a tiny layer); both take --configs, --shape and --help."
        ),
    )
    p.add_argument("--configs", help=f"comma-separated, default all: {', '.join(CONFIGS)}")
    p.add_argument(
        "--shape",
        action="append",
        default=None,
        metavar="T,B,I,H[,L][,bidir]",
        help="a size of your own (repeatable): time steps, batch, input and hidden size, optionally stacked layers "
        "and 'bidir'; alone it replaces the default configs, with --configs it adds to them",
    )
    p.add_argument(
        "--variants",
        help=f"comma-separated: {', '.join(VARIANTS)}; groups 'lstm' (the default), 'family' (the GRU/RNN rows, "
        "each against torch.nn.GRU / torch.nn.RNN), 'all'",
    )
    p.add_argument("--passes", type=int, default=None, help="interleaved passes per pair (default 3; 1 with --quick)")
    p.add_argument(
        "--target-ms",
        type=float,
        default=None,
        help="approximate duration of one pass of one participant (default 100; 2 with --quick)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default 2; 1 with --quick, where spinning thread pools only add noise)",
    )
    p.add_argument("--quick", action="store_true", help="toy sizes and one pass: a smoke test, not a measurement")
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure train-step peak memory (default on; off with --quick)",
    )
    p.add_argument(
        "--frameworks",
        default="auto",
        help="also time TF/Keras and MindSpore: auto (when found), none, or a list of tf, ms, keras3-tf, keras3-torch, "
        "keras3 (the family rows run Keras 3 and MindSpore in worker processes: lstm_bridge.bench.participants)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "native", "torch"),
        default=None,
        help="set LSTM_BRIDGE_BACKEND for this run (default: the environment's)",
    )
    p.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto")
    p.add_argument("--out", help="directory for results.md, results.json and results.png")
    p.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="measure nothing: re-render results.md/results.png (into --out, default beside the file) "
        "from an earlier results.json",
    )
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 2 usage error). Prints the table on stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    args.argv = argv
    if args.render:
        return _render_only(args.render, args.out)
    table = QUICK_CONFIGS if args.quick else CONFIGS
    try:
        configs = select_configs(args.configs, args.shape, table, list(table))
        variants = pick_names(args.variants, VARIANTS, VARIANT_ALIASES, "variant", DEFAULT_VARIANTS, VARIANT_GROUPS)
        frameworks = available_frameworks(args.frameworks)
        if args.threads is None:
            args.threads = 1 if args.quick else 2
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1; received {args.threads}")
        passes = args.passes if args.passes is not None else (1 if args.quick else 3)
        if passes < 1:
            raise ValueError(f"--passes must be >= 1; received {passes}")
    except ValueError as exc:
        print(f"lstm-bridge bench: error: {exc}", file=sys.stderr)
        return 2
    target = (args.target_ms if args.target_ms is not None else (2.0 if args.quick else 100.0)) / 1e3
    plan = TimingPlan(passes=passes, target_s=target, min_reps=1 if args.quick else 2, max_reps=3 if args.quick else 40)
    memory = args.memory if args.memory is not None else not args.quick
    saved_backend = os.environ.get("LSTM_BRIDGE_BACKEND")
    if args.backend is not None:
        os.environ["LSTM_BRIDGE_BACKEND"] = args.backend
    try:
        torch.set_num_threads(args.threads)
        results = run(
            configs,
            variants,
            plan=plan,
            threads=args.threads,
            memory=memory,
            frameworks=frameworks,
            progress=args.progress,
            global_ceiling=(64, 64, 64) if args.quick else (1536, 1536, 1536),
            meta=run_metadata(args, args.threads),
        )
    finally:
        if args.backend is not None:
            if saved_backend is None:
                os.environ.pop("LSTM_BRIDGE_BACKEND", None)
            else:
                os.environ["LSTM_BRIDGE_BACKEND"] = saved_backend
    if args.out:
        _write(results, args.out, with_json=True)
    print(render_markdown(results), end="")
    return 0


def _write(results: Dict[str, Any], out: str, with_json: bool) -> None:
    os.makedirs(out, exist_ok=True)
    results["chart_note"] = write_chart(results, os.path.join(out, "results.png"))
    if with_json:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(render_markdown(results))


def _render_only(path: str, out: Optional[str]) -> int:
    try:
        with open(path) as f:
            results = json.load(f)
        if not isinstance(results, dict) or "rows" not in results:
            raise ValueError(
                f"expected a results.json written by lstm_bridge.bench (with 'rows'); received "
                f"{type(results).__name__} without 'rows'"
            )
    except (OSError, ValueError) as exc:
        print(f"lstm-bridge bench: error: cannot render {path}: {exc}", file=sys.stderr)
        return 2
    _write(results, out or os.path.dirname(os.path.abspath(path)), with_json=False)
    print(render_markdown(results), end="")
    return 0
