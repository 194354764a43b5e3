"""What the package ships and where its facts live: the version in one place, no test oracle inside the
library, and documentation links (``docs/``) that resolve inside a clone."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib
import re

import pytest

import lstm_bridge

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = pathlib.Path(lstm_bridge.__file__).resolve().parent


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_is_defined_once_in_the_package():
    project = _pyproject()
    assert "version" not in project["project"], "pyproject.toml must not repeat __version__"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lstm_bridge.__version__"}
    assert importlib.metadata.version("lstm-bridge") == lstm_bridge.__version__


def test_the_test_oracle_is_not_shipped():
    assert importlib.util.find_spec("lstm_bridge.engine.reference") is None
    assert not list(PACKAGE.rglob("reference.py")) and not list(PACKAGE.rglob("oracle.py"))
    assert (ROOT / "tests" / "oracle.py").is_file()


_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")))
def test_docs_links_resolve_inside_the_repository(page):
    path = ROOT / page
    broken = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        if not resolved.exists() or ROOT not in resolved.parents:
            broken.append(target)
    assert not broken, f"{page}: expected links to files inside the repository; received {broken}"


def test_specs_are_in_the_repository():
    for name in ("keras_lstm.md", "mindspore_lstm.md"):
        text = (ROOT / "docs" / "spec" / name).read_text(encoding="utf-8")
        assert "## 4." in text and "../../tests/fixtures/" in text, name


def test_spec_citations_in_the_package_resolve_to_a_section() -> None:
    """Every ``docs/spec/<file>.md §N`` cited in src/ names a spec in the repository and a heading ``N.`` in it."""
    repo = pathlib.Path(__file__).resolve().parents[1]
    cited = set()
    for path in (repo / "src").rglob("*.py"):
        cited.update(re.findall(r"docs/spec/([a-z_]+\.md) §([0-9]+(?:\.[0-9]+)*)", path.read_text()))
    assert cited, "no spec citation found in src/"
    missing = []
    for name, section in sorted(cited):
        spec = repo / "docs" / "spec" / name
        headings = re.findall(r"^#+\s+([0-9]+(?:\.[0-9]+)*)\.?\s", spec.read_text(), re.M) if spec.exists() else []
        if section not in headings:
            missing.append(f"{name} §{section}")
    assert not missing, f"citations without a matching spec section: {missing}"
