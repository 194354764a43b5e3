#!/usr/bin/env python3
"""Write ``docs/parity.md``: how closely lstm-bridge matches the real frameworks on ``tests/golden/``.

Runs every golden case through the public front ends (the runners of ``tests/golden_data.py``) and
tabulates, per family of options and per option tag: the number of cases, how many carry gradients,
the largest forward and gradient errors, and how many cases exceed the test tolerances. MindSpore
cases that used MindSpore's approximate CPU activations are also run with ``numerics="exact"``.

Errors are ``max |ours - theirs| / max(1, |theirs|)`` (absolute below 1, relative above), the quantity
the tests bound. Usage (from the repository root, with the project's environment)::

    .venv/bin/python tools/parity_report.py [--out docs/parity.md] [--make-golden-seconds 185]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent


def _golden_data() -> Any:
    """``tests/golden_data.py``, the one golden loader (shared with the golden and live tests)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module("golden_data")


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "–"
    if v == 0.0:
        return "0"
    return f"{v:.1e}"


class _Agg:
    def __init__(self) -> None:
        self.n = 0
        self.n_grad = 0
        self.fwd = 0.0
        self.grad: Optional[float] = None
        self.fail = 0

    def add(self, fwd: float, grad: Optional[float], failed: bool) -> None:
        self.n += 1
        self.fwd = max(self.fwd, fwd)
        if grad is not None:
            self.n_grad += 1
            self.grad = grad if self.grad is None else max(self.grad, grad)
        self.fail += int(failed)

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.n} | {self.n_grad} | {_fmt(self.fwd)} | {_fmt(self.grad)} | "
            f"{self.fail if self.fail else 0} |"
        )


HEADER = (
    "| {} | cases | with gradients | max forward error | max gradient error | over tolerance |\n"
    "|---|---:|---:|---:|---:|---:|"
)


def activation_names(w: Any, t: Any) -> None:
    """The ``activation_names`` record of each Keras flavour next to what ``lstm_bridge.activations``
    resolves for that generation."""
    from lstm_bridge import activations as A

    w("## Activation names")
    w("")
    w("Every name probed with the real `keras.activations.get` when the goldens were made, and what")
    w("`lstm_bridge.activations.get(name, keras_version=...)` does with it. Each name the generation accepts")
    w("(bar Keras 3's `glu` and `threshold`) is also a golden case as `activation` and as `recurrent_activation`")
    w("(family `lstm/activation_names`, above). The rejected columns leave out lstm-bridge's own serialised")
    w(f"names ({', '.join(f'`{n}`' for n in A.OWN_NAMES)}), which every generation of lstm-bridge resolves.")
    w("")
    w(
        "| flavour | accepted by Keras | resolved by lstm-bridge | NotImplementedError (not a gate) | "
        "rejected by Keras | rejected by lstm-bridge with Keras's text |"
    )
    w("|---|---|---:|---|---:|---:|")
    for flavour, kv in (("tf_keras", 2), ("keras3", 3)):
        record = t.load_flavour(flavour)[0].get("activation_names")
        if not record:
            continue
        resolved, not_gates, same_error = [], [], 0
        for name in record["accepted"]:
            try:
                A.get(name, keras_version=kv)
                resolved.append(name)
            except NotImplementedError:
                not_gates.append(name)
            except ValueError:
                pass
        foreign = {n: e for n, e in record["rejected"].items() if n not in A.OWN_NAMES}
        for name, error in foreign.items():
            try:
                A.get(name, keras_version=kv)
            except ValueError as exc:
                same_error += str(exc).startswith(error.split(": ", 1)[1])
        w(
            f"| {flavour} | {len(record['accepted'])}: {', '.join(sorted(record['accepted']))} | {len(resolved)} | "
            f"{', '.join(sorted(not_gates)) or '–'} | {len(foreign)} | {same_error} |"
        )
    w("")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "parity.md"))
    ap.add_argument(
        "--make-golden-seconds",
        type=float,
        default=None,
        help="wall time of the last generation (tools/make_golden.py), to quote in the report",
    )
    ap.add_argument(
        "--envs-seconds",
        type=float,
        default=None,
        help="wall time of creating the golden environments from scratch, to quote in the report",
    )
    args = ap.parse_args(argv)
    t = _golden_data()
    t0 = time.time()
    by_family: Dict[str, _Agg] = defaultdict(_Agg)
    by_tag: Dict[str, _Agg] = defaultdict(_Agg)
    by_flavour: Dict[str, _Agg] = defaultdict(_Agg)
    ms_exact: Dict[str, _Agg] = defaultdict(_Agg)
    failures: List[str] = []
    versions: Dict[str, Dict[str, str]] = {}
    settings: Dict[str, Dict[str, str]] = {}
    for flavour in t.FLAVOURS:
        meta, arrays = t.load_flavour(flavour)
        versions[flavour] = meta["versions"]
        settings[flavour] = meta.get("settings", {})
        for case in meta["cases"]:
            got = t.run_case(case, arrays)
            err = t.compare(case, arrays, got)
            tol_f, tol_g = t.tolerances(case)
            failed = not (err["max_forward"] <= tol_f and (err["max_grad"] is None or err["max_grad"] <= tol_g))
            if failed:
                failures.append(
                    f"`{case['id']}` ({flavour} {case['family']}): forward {_fmt(err['max_forward'])}, "
                    f"gradient {_fmt(err['max_grad'])}"
                )
            by_family[f"{flavour} | {case['family']}"].add(err["max_forward"], err["max_grad"], failed)
            by_flavour[flavour].add(err["max_forward"], err["max_grad"], failed)
            for tag in case["tags"]:
                by_tag[f"{flavour} | {tag}"].add(err["max_forward"], err["max_grad"], failed)
            if flavour == "mindspore" and case.get("approx_activations"):
                got2 = t.run_mindspore_case(case, arrays, numerics="exact")
                err2 = t.compare(case, arrays, got2)
                tf2, tg2 = t.tolerances(case, "exact")
                failed2 = not (err2["max_forward"] <= tf2 and (err2["max_grad"] is None or err2["max_grad"] <= tg2))
                ms_exact[case["family"]].add(err2["max_forward"], err2["max_grad"], failed2)
                if failed2:
                    failures.append(
                        f'`{case["id"]}` (mindspore {case["family"]}, numerics="exact"): forward '
                        f"{_fmt(err2['max_forward'])}, gradient {_fmt(err2['max_grad'])}"
                    )
    elapsed = time.time() - t0

    lines: List[str] = []
    w = lines.append
    w("# Parity with the real frameworks")
    w("")
    w("Written by `tools/parity_report.py` from `tests/golden/` (regenerate the data with `make golden`, the report")
    w("with `.venv/bin/python tools/parity_report.py`). Every case runs through lstm-bridge's public front ends")
    w("(`lstm_bridge.keras.LSTM/Bidirectional/LSTMCell/v1.LSTM`, `lstm_bridge.mindspore.LSTM/LSTMCell`) and is")
    w("compared with what the real framework computed on CPU. Gradients are those of a fixed random projection")
    w("`sum_k sum(w_k * out_k)` of every returned tensor, with respect to the inputs, the initial states and every")
    w("weight (`tf.GradientTape`; `mindspore.grad` with `weights=net.trainable_params()`).")
    w("")
    w("Error = `max |ours - theirs| / max(1, |theirs|)` (absolute below 1, relative above). Test tolerances:")
    w(f"forward {t.FORWARD_TOL:g}, gradients {t.GRAD_TOL:g}; MindSpore cases computed by its approximate CPU")
    w(f"Sigmoid/Tanh (`seq_length` given, `LSTMCell`): {t.MS_CPU_FORWARD_TOL:g} (forward) / {t.MS_CPU_GRAD_TOL:g}")
    w(
        '(gradients) with the default `numerics="mindspore-cpu"`, which emulates them, and '
        f'{t.MS_APPROX_TOL:g} with `numerics="exact"`.'
    )
    w("")
    w("## Framework versions")
    w("")
    w("| flavour | versions | generation settings |")
    w("|---|---|---|")
    for flavour in t.FLAVOURS:
        v = ", ".join(f"{k} {val}" for k, val in sorted(versions[flavour].items()))
        s = ", ".join(f"{k}={val}" for k, val in sorted(settings[flavour].items()))
        w(f"| {flavour} | {v} | {s} |")
    w("")
    if args.make_golden_seconds is not None:
        w(
            f"Regenerating all three flavours (`tools/make_golden.py`) took {args.make_golden_seconds:.0f} s on the "
            f"shared 2-core development machine"
            + (
                f"; creating the two environments from scratch (`make golden-envs`) "
                f"took {args.envs_seconds:.0f} s more."
                if args.envs_seconds
                else "."
            )
            + " A fresh regeneration reproduced every file byte for byte."
        )
        w("")
    w("## Summary")
    w("")
    w(HEADER.format("flavour"))
    total = _Agg()
    for flavour in t.FLAVOURS:
        a = by_flavour[flavour]
        w(a.row(flavour))
        total.n += a.n
        total.n_grad += a.n_grad
        total.fwd = max(total.fwd, a.fwd)
        total.grad = a.grad if total.grad is None else max(total.grad, a.grad or 0.0)
        total.fail += a.fail
    w(total.row("**all**"))
    w("")

    def table(title: str, key_columns: str, rows: Dict[str, _Agg]) -> None:
        w(f"## {title}")
        w("")
        header = HEADER.format(key_columns)
        w(header.replace("|---|", "|---|---|", 1) if " | " in key_columns else header)
        for key in sorted(rows):
            w(rows[key].row(key))
        w("")

    table("Per family", "flavour | family", by_family)
    table('MindSpore approximate-activation cases with `numerics="exact"`', "family", ms_exact)
    table("Per option", "flavour | option", by_tag)
    activation_names(w, t)
    w("## Cases over tolerance")
    w("")
    if failures:
        for f in failures:
            w(f"- {f}")
    else:
        w("None.")
    w("")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print(
        f"wrote {args.out}: {total.n} cases ({total.n_grad} with gradients), {len(failures)} over tolerance, "
        f"max forward {_fmt(total.fwd)}, max gradient {_fmt(total.grad)} ({elapsed:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
