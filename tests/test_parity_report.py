"""``tools/parity_report.py`` (``docs/parity.md``): the recurrent-family sections (issue 11 item 4).

The report runs every golden case through the public front ends; here on a subset (the first case of each
family, ``--family-limit 1``) so that the test stays fast, plus checks of the committed ``docs/parity.md``
against the family golden files and of the tolerance bookkeeping with a deliberately wrong result.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import pytest

import golden_data as gd

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report() -> Any:
    """``tools/parity_report.py`` as a module."""
    spec = importlib.util.spec_from_file_location("parity_report", ROOT / "tools" / "parity_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _need_family() -> None:
    missing = [f for f in gd.FLAVOURS if not gd.family_available(f)]
    if missing:
        pytest.fail(f"tests/golden/family_{missing[0]}.json is missing: run `make golden-family`")


def _section(text: str, title: str) -> str:
    """The text of the markdown section ``title`` (up to the next heading of the same or a higher level)."""
    level = title.split(" ", 1)[0]
    start = text.index(title + "\n")
    rest = text[start + len(title) + 1 :]
    ends = [m.start() for m in re.finditer("^#{1," + str(len(level)) + "} ", rest, re.M)]
    return rest[: ends[0]] if ends else rest


def _rows(section: str) -> Dict[Tuple[str, ...], List[str]]:
    """Markdown table rows of a section: ``{(key columns...): [the other cells]}`` (the two key columns of the
    per-layer / per-family tables, one for the summary)."""
    rows: Dict[Tuple[str, ...], List[str]] = {}
    header: List[str] = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
            continue
        n_keys = header.index("cases")
        rows[tuple(cells[:n_keys])] = cells[n_keys:]
    return rows


def _expected_layers(report: Any) -> Dict[Tuple[str, str], int]:
    """``(flavour label, layer)`` -> number of golden cases, from the family files themselves."""
    want: Dict[Tuple[str, str], int] = {}
    for flavour in gd.FLAVOURS:
        for case in gd.family_cases(flavour):
            layer = report.family_layer(case)
            labels = [flavour] + ([f"{flavour}, {report.EXACT}"] if flavour == "mindspore" else [])
            for label in labels:
                suffix = ""
                if label != flavour and report.family_tolerances(gd, case, "exact") is None:
                    suffix = f" ({report.UNBOUNDED})"
                want[(label, layer + suffix)] = want.get((label, layer + suffix), 0) + 1
    return want


def test_family_layers_cover_every_golden_case(report: Any) -> None:
    """Every family case maps to one of the listed layers, and every listed layer has cases in its flavour."""
    _need_family()
    for flavour in gd.FLAVOURS:
        seen = {report.family_layer(c) for c in gd.family_cases(flavour)}
        assert seen == set(report.FAMILY_LAYERS[flavour]), (flavour, seen ^ set(report.FAMILY_LAYERS[flavour]))


def test_report_family_sections_subset(report: Any, tmp_path: Path) -> None:
    """The generated report (first case of each family) has the family sections after the LSTM ones: every
    flavour (and MindSpore's exact rerun) in the summary, every layer of every flavour, every case family,
    with a tolerance and 0 over tolerance, and no case in "Cases over tolerance"."""
    _need_family()
    out = tmp_path / "parity.md"
    assert report.main(["--out", str(out), "--family-limit", "1"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.index("## Per family\n") < text.index("## Recurrent family\n") < text.index("## Cases over tolerance\n")
    summary = _rows(_section(text, "### Family summary"))
    assert set(summary) == {(f,) for f in gd.FLAVOURS} | {(f"mindspore, {report.EXACT}",), ("**all**",)}
    per_family = _rows(_section(text, "### Family per case family"))
    families = {(f, c["family"]) for f in gd.FLAVOURS for c in gd.family_cases(f)}
    assert {(f, fam) for (f, fam) in per_family if "," not in f} == families
    for key, cells in per_family.items():
        assert int(cells[0]) == 1, (key, cells)  # the limit: one case per family
    layers = _rows(_section(text, "### Family per layer"))
    assert {(f, layer) for f, layer in layers if "," not in f} == {
        (f, layer) for f in gd.FLAVOURS for layer in report.FAMILY_LAYERS[f]
    }
    for table in (summary, layers, per_family):
        for key, cells in table.items():
            assert cells[-1] == "0", f"{key}: {cells[-1]} over tolerance"
            assert cells[-2] and cells[-2] != "–", key
    assert _section(text, "## Cases over tolerance").strip() == "None."


def test_committed_parity_md_reports_every_family_case() -> None:
    """``docs/parity.md`` as committed reports the family goldens as they are: every (flavour, layer) row with
    the number of cases in the files (MindSpore also under numerics="exact"), and 0 over tolerance."""
    _need_family()
    spec = importlib.util.spec_from_file_location("parity_report_doc", ROOT / "tools" / "parity_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "parity.md").read_text(encoding="utf-8")
    layers = _rows(_section(text, "### Family per layer"))
    want = _expected_layers(module)
    assert {k: int(v[0]) for k, v in layers.items()} == want
    assert all(cells[-1] == "0" for cells in layers.values())
    summary = _rows(_section(text, "### Family summary"))
    assert int(summary[("**all**",)][0]) == sum(len(gd.family_cases(f)) for f in gd.FLAVOURS)
    assert summary[("**all**",)][-1] == "0"


def test_family_tolerances_follow_the_test_suite(report: Any) -> None:
    """Default numerics: golden_data's tolerances on every case; numerics="exact": 2e-4 on the approximate-
    activation cases, none on those of them with large weights, the plain tolerances on ReLU RNNs."""
    _need_family()
    for case in gd.family_cases("mindspore"):
        assert report.family_tolerances(gd, case, None) == gd.tolerances(case)
        exact = report.family_tolerances(gd, case, "exact")
        if case["approx_activations"] and "large_weights" in case["tags"]:
            assert exact is None, case["id"]
        else:
            assert exact == gd.tolerances(case, "exact"), case["id"]
    for flavour in ("tf_keras", "keras3"):
        case = gd.family_cases(flavour)[0]
        assert report.family_tolerances(gd, case, None) == (gd.FORWARD_TOL, gd.GRAD_TOL)


class _Perturbed:
    """``golden_data`` with every output of ``run_case`` shifted by ``delta`` (a wrong implementation)."""

    def __init__(self, delta: float) -> None:
        self.delta = delta

    def __getattr__(self, name: str) -> Any:
        return getattr(gd, name)

    def run_case(self, case: Mapping[str, Any], arrays: Any, numerics: Any = None) -> Dict[str, Any]:
        got = gd.run_case(case, arrays, numerics)
        got["outputs"] = [o + np.float32(self.delta) for o in got["outputs"]]
        return got


def test_family_case_over_tolerance_is_reported(report: Any) -> None:
    """A result off by 1e-3 counts as over tolerance in every table and is listed with its case id; a
    large-weight exact rerun is listed under its own row and never counted."""
    _need_family()
    case = next(c for c in gd.family_cases("mindspore") if c["family"] == "rnn_tanh/large_weights")
    _, arrays = gd.load_family("mindspore")
    res = report.FamilyResults()
    res.add(_Perturbed(1e-3), case, arrays)
    res.add(_Perturbed(1e-3), case, arrays, numerics="exact")
    assert res.by_flavour["mindspore"].fail == 1
    assert res.by_layer[("mindspore", "RNN tanh")].fail == 1
    assert res.by_family[("mindspore", "rnn_tanh/large_weights")].fail == 1
    exact = f"mindspore, {report.EXACT}"
    assert res.by_layer[(exact, f"RNN tanh ({report.UNBOUNDED})")].fail == 0
    assert res.by_layer[(exact, f"RNN tanh ({report.UNBOUNDED})")].fwd >= 1e-3
    assert len(res.failures) == 1 and case["id"] in res.failures[0] and "> 1e-06" in res.failures[0]
    row = res.by_layer[("mindspore", "RNN tanh")].tol_row("mindspore | RNN tanh")
    assert row.endswith("| 1e-06 / 1e-05 | 1 |"), row
