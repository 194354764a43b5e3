#!/usr/bin/env python
"""Compare two benchmark runs (``results.json`` of ``lstm_bridge.bench``), e.g. before/after a kernel change.

Usage::

    python benchmarks/compare.py OLD/results.json NEW/results.json [--threshold 0.05]

For every (config, variant, mode) present in both runs it prints the median ratio to torch.nn.LSTM of
each run (ratios, not milliseconds: each ratio was measured against torch in its own run, so it is
the number that survives a change of machine load) and flags changes larger than ``--threshold``
(relative) that also fall outside the other run's per-pass ratio range. Exit code 0; 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Tuple

Key = Tuple[str, str, str]


def ratios(path: str) -> Dict[Key, Dict[str, float]]:
    """``(config, variant, mode) -> {"median", "min", "max"}`` of the ours/torch ratio in a results.json."""
    with open(path) as f:
        results: Dict[str, Any] = json.load(f)
    if "rows" not in results:
        raise ValueError(
            f"{path}: expected a results.json of lstm_bridge.bench (with 'rows'); found keys {sorted(results)[:8]}"
        )
    out: Dict[Key, Dict[str, float]] = {}
    for row in results["rows"]:
        for mode in ("forward", "train"):
            out[(row["config"]["name"], row["variant"], mode)] = row[mode]["ratio"]["ours"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--threshold", type=float, default=0.05, help="relative change worth flagging (default 0.05)")
    args = p.parse_args(argv)
    try:
        old, new = ratios(args.old), ratios(args.new)
    except (OSError, ValueError, KeyError) as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return 2
    common = [k for k in old if k in new]
    if not common:
        print("compare: the two runs share no (config, variant, mode)", file=sys.stderr)
        return 2
    print(f"{'config':<16} {'variant':<18} {'mode':<8} {'old':>6} {'new':>6} {'change':>8}")
    for key in common:
        a, b = old[key], new[key]
        change = b["median"] / a["median"] - 1.0
        outside = b["median"] > a["max"] or b["median"] < a["min"]
        flag = ""
        if abs(change) > args.threshold and outside:
            flag = "  slower" if change > 0 else "  faster"
        print(f"{key[0]:<16} {key[1]:<18} {key[2]:<8} {a['median']:6.2f} {b['median']:6.2f} {change:+7.1%}{flag}")
    only = sorted(set(old) ^ set(new))
    if only:
        print(f"({len(only)} rows only in one run, not compared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
