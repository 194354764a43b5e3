#!/usr/bin/env python3
"""Write ``docs/parity.md``: how closely lstm-bridge matches the real frameworks on ``tests/golden/``.

Runs every golden case through the public front ends (the runners of ``tests/golden_data.py``) and
tabulates, per family of options and per option tag: the number of cases, how many carry gradients,
the largest forward and gradient errors, and how many cases exceed the test tolerances. MindSpore
cases that used MindSpore's approximate CPU activations are also run with ``numerics="exact"``.

The recurrent family (``tests/golden/family_<flavour>.*``: Keras GRU / v1.GRU / SimpleRNN, their cells,
Bidirectional of each and stacks; MindSpore GRU / RNN tanh and relu and their cells) gets its own sections
(:func:`family_sections`), tabulated per flavour, per layer and per family, with the tolerance of each row;
every MindSpore family case runs under the default numerics and again under ``numerics="exact"``.

Errors are ``max |ours - theirs| / max(1, |theirs|)`` (absolute below 1, relative above), the quantity
the tests bound. Usage (from the repository root, with the project's environment)::

    .venv/bin/python tools/parity_report.py [--out docs/parity.md] [--make-golden-seconds 185] [--family-limit N]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, cast

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


FAMILY_HEADER = (
    "| flavour | {} | cases | with gradients | max forward error | max gradient error | tolerance (forward / "
    "gradient) | over tolerance |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|"
)
#: The rows of the per-layer table, in order: ``(flavour, layer)`` (see :func:`family_layer`).
FAMILY_LAYERS: Dict[str, Tuple[str, ...]] = {
    "tf_keras": (
        "GRU",
        "v1.GRU",
        "SimpleRNN",
        "Bidirectional(GRU)",
        "Bidirectional(v1.GRU)",
        "Bidirectional(SimpleRNN)",
        "GRUCell",
        "SimpleRNNCell",
        "stack",
    ),
    "keras3": (
        "GRU",
        "SimpleRNN",
        "Bidirectional(GRU)",
        "Bidirectional(SimpleRNN)",
        "GRUCell",
        "SimpleRNNCell",
        "stack",
    ),
    "mindspore": ("GRU", "RNN tanh", "RNN relu", "GRUCell", "RNNCell tanh", "RNNCell relu"),
}
EXACT = 'numerics="exact"'


UNBOUNDED = "large weights"  # the row suffix of the cases held to no tolerance (see :func:`family_tolerances`)


def family_tolerances(t: Any, case: Mapping[str, Any], numerics: Optional[str]) -> Optional[Tuple[float, float]]:
    """``(forward, gradient)`` tolerance of a family case, or None where the test suite bounds nothing:
    the MindSpore cases with weights scaled up (tag ``large_weights``) whose real kernel used the approximate
    CPU Sigmoid/Tanh, run with ``numerics="exact"``. There exact math and MindSpore's approximation can part
    by more than 2e-4 (``tests/test_golden_family.py`` exempts the same cases from its exact-math oracle check);
    the default numerics, which emulate the approximation, are bounded on them as on every case."""
    if numerics == "exact" and case.get("approx_activations") and "large_weights" in case["tags"]:
        return None
    return cast(Tuple[float, float], t.tolerances(case, numerics))


class _TolAgg(_Agg):
    """An :class:`_Agg` that also records the ``(forward, gradient)`` tolerances its cases were held to
    (None: not bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self.tols: Set[Optional[Tuple[float, float]]] = set()

    def add_case(self, fwd: float, grad: Optional[float], failed: bool, tols: Optional[Tuple[float, float]]) -> None:
        self.add(fwd, grad, failed)
        self.tols.add(tols)

    def tol_row(self, label: str) -> str:
        bounded = sorted(tol for tol in self.tols if tol is not None)
        tol = ", ".join([f"{f:g} / {g:g}" for f, g in bounded] + (["not bounded"] if None in self.tols else []))
        return f"| {label} | {self.n} | {self.n_grad} | {_fmt(self.fwd)} | {_fmt(self.grad)} | {tol} | {self.fail} |"


def family_layer(case: Mapping[str, Any]) -> str:
    """The row of :data:`FAMILY_LAYERS` a family case belongs to: the Keras layer class
    (``Bidirectional(<wrapped>)`` for a wrapper, ``stack`` for several layers) or the MindSpore kind with its
    nonlinearity (``"RNN relu"``)."""
    if case["flavour"] == "mindspore":
        kind = case["kind"]
        if kind.startswith("RNN"):
            return f"{kind} {case['config'].get('nonlinearity', 'tanh')}"
        return str(kind)
    layers = case["layers"]
    if len(layers) > 1:
        return "stack"
    spec = layers[0]
    if spec["class"] == "Bidirectional":
        return f"Bidirectional({spec['wrapped']})"
    return str(spec["class"])


class FamilyResults:
    """Aggregates of the recurrent-family goldens. Keys: ``by_flavour[flavour label]``,
    ``by_layer[(flavour label, layer)]``, ``by_family[(flavour label, family)]``, where the flavour label is
    the flavour, or ``'mindspore, numerics="exact"'`` for the MindSpore reruns; ``missing`` lists the
    flavours without files and ``failures`` describes every case over tolerance."""

    def __init__(self) -> None:
        self.by_flavour: Dict[str, _TolAgg] = defaultdict(_TolAgg)
        self.by_layer: Dict[Tuple[str, str], _TolAgg] = defaultdict(_TolAgg)
        self.by_family: Dict[Tuple[str, str], _TolAgg] = defaultdict(_TolAgg)
        self.missing: List[str] = []
        self.failures: List[str] = []
        self.versions: Dict[str, Tuple[Dict[str, str], Dict[str, str]]] = {}

    def add(self, t: Any, case: Mapping[str, Any], arrays: Any, numerics: Optional[str] = None) -> None:
        """Run one family case through the front ends (``numerics`` for MindSpore; None: its default) and
        record its errors against the real framework."""
        got = t.run_case(case, arrays, numerics)
        err = t.compare(case, arrays, got)
        tols = family_tolerances(t, case, numerics)
        bad: List[str] = [] if tols is None else t.over_tolerance(case, err, *tols)
        if case.get("grad") is not None and not err["grads"]:
            bad.append("no gradients were compared")
        label = case["flavour"] if numerics is None else f"{case['flavour']}, {EXACT}"
        if bad:
            self.failures.append(f"`{case['id']}` ({label} {case['family']}): " + "; ".join(bad))
        row = (err["max_forward"], err["max_grad"], bool(bad), tols)
        suffix = "" if tols is not None else f" ({UNBOUNDED})"
        self.by_flavour[label].add_case(*row)
        self.by_layer[(label, family_layer(case) + suffix)].add_case(*row)
        family = case["family"] if "large_weights" in case["family"] else case["family"] + suffix
        self.by_family[(label, family)].add_case(*row)


def run_family(t: Any, flavours: Optional[Sequence[str]] = None, limit: Optional[int] = None) -> FamilyResults:
    """Run the recurrent-family goldens of ``flavours`` (default: all three) through the front ends; every
    MindSpore case twice (default numerics, then ``numerics="exact"``). ``limit`` keeps the first ``limit``
    cases of each family (a quick subset; None: every case)."""
    res = FamilyResults()
    for flavour in t.FLAVOURS if flavours is None else flavours:
        if not t.family_available(flavour):
            res.missing.append(flavour)
            continue
        meta, arrays = t.load_family(flavour)
        res.versions[flavour] = (meta["versions"], meta.get("settings", {}))
        taken: Dict[str, int] = defaultdict(int)
        for case in meta["cases"]:
            if limit is not None and taken[case["family"]] >= limit:
                continue
            taken[case["family"]] += 1
            res.add(t, case, arrays)
            if flavour == "mindspore":
                res.add(t, case, arrays, numerics="exact")
    return res


def _layer_order(key: Tuple[str, str]) -> Tuple[int, int, int, str]:
    label, layer = key
    flavour = label.split(",")[0]
    order = FAMILY_LAYERS.get(flavour, ())
    base = layer.replace(f" ({UNBOUNDED})", "")
    return (
        list(FAMILY_LAYERS).index(flavour) if flavour in FAMILY_LAYERS else len(FAMILY_LAYERS),
        order.index(base) if base in order else len(order),
        int(label != flavour),
        layer,
    )


def family_sections(w: Callable[[str], None], t: Any, res: FamilyResults) -> None:
    """The recurrent family's sections of ``docs/parity.md``."""
    w("## Recurrent family")
    w("")
    w("The same comparison for `tests/golden/family_<flavour>.{json,npz}` (`tools/golden_family.py`, part of")
    w("`make golden`), through `lstm_bridge.keras.GRU/v1.GRU/SimpleRNN/GRUCell/SimpleRNNCell/Bidirectional` and")
    w("`lstm_bridge.mindspore.GRU/RNN/GRUCell/RNNCell`, with the loader and tolerances of `tests/golden_data.py`")
    w("(`tests/test_golden_family.py` asserts them). MindSpore's `GRU`, `GRUCell` and its tanh `RNN`/`RNNCell`")
    w("run its approximate CPU Sigmoid/Tanh, so they are held to the `mindspore-cpu` tolerances with the default")
    w(f"numerics; every MindSpore case is also run with `{EXACT}` (rows `mindspore, {EXACT}`). The")
    w(f"reruns with weights scaled up (rows marked `({UNBOUNDED})`) are held to no tolerance: there exact math")
    w("and MindSpore's approximate Sigmoid/Tanh can part by more than 2e-4, so their errors measure the")
    w("approximation rather than lstm-bridge (`tests/test_golden_family.py` exempts the same cases from its")
    w("exact-math oracle check); the default numerics, which emulate the approximation, bound them as every case.")
    w("")
    same = [
        f
        for f, (v, s) in res.versions.items()
        if t.available(f) and (v, s) == (t.load_flavour(f)[0]["versions"], t.load_flavour(f)[0].get("settings", {}))
    ]
    if same:
        w(f"Framework versions and generation settings as above ({', '.join(same)}).")
    for f, (v, s) in res.versions.items():
        if f not in same:
            versions = ", ".join(f"{k} {val}" for k, val in sorted(v.items()))
            env = ", ".join(f"{k}={val}" for k, val in sorted(s.items()))
            w(f"- {f}: {versions}; {env}")
    for f in res.missing:
        w(f"- {f}: `tests/golden/family_{f}.json` is missing (`make golden-family` writes it).")
    w("")
    w("### Family summary")
    w("")
    w(
        FAMILY_HEADER.format("numerics")
        .replace("| flavour | numerics |", "| flavour |")
        .replace("|---|---|", "|---|", 1)
    )
    total = _TolAgg()
    for label in sorted(res.by_flavour, key=lambda k: _layer_order((k, ""))):
        a = res.by_flavour[label]
        w(a.tol_row(label))
        if label != label.split(",")[0]:
            continue  # the MindSpore reruns are the same cases: **all** counts each case once
        total.n += a.n
        total.n_grad += a.n_grad
        total.fwd = max(total.fwd, a.fwd)
        if a.grad is not None:
            total.grad = a.grad if total.grad is None else max(total.grad, a.grad)
        total.fail += a.fail
        total.tols |= a.tols
    w(total.tol_row("**all**"))
    w("")
    w("### Family per layer")
    w("")
    w(FAMILY_HEADER.format("layer"))
    for key in sorted(res.by_layer, key=_layer_order):
        w(res.by_layer[key].tol_row(" | ".join(key)))
    w("")
    w("### Family per case family")
    w("")
    w(FAMILY_HEADER.format("family"))
    for key in sorted(res.by_family, key=lambda k: (_layer_order((k[0], ""))[0], k[0], k[1])):
        w(res.by_family[key].tol_row(" | ".join(key)))
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
    ap.add_argument(
        "--family-limit",
        type=int,
        default=None,
        help="run only the first N recurrent-family cases of each family (a quick check; default: every case)",
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
    family = run_family(t, limit=args.family_limit)
    failures += family.failures
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
    family_sections(w, t, family)
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
    n_family = sum(a.n for label, a in family.by_flavour.items() if "," not in label)
    print(
        f"wrote {args.out}: {total.n} cases ({total.n_grad} with gradients) and {n_family} recurrent-family "
        f"cases, {len(failures)} over tolerance, max forward {_fmt(total.fwd)}, max gradient {_fmt(total.grad)} "
        f"({elapsed:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
