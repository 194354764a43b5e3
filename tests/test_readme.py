"""The README's difference table is executable: every code cell runs and its assertions hold."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _table_cells():
    text = README.read_text()
    table = text.split("## The seed's difference table, executable", 1)[1].split("\n\n| difference", 1)[1]
    rows = [line for line in table.split("\n\n", 1)[0].splitlines() if line.startswith("| ") and "---" not in line]
    cells = []
    for row in rows:
        name, keras_cell, ms_cell = [c.strip() for c in row.strip("|").split(" | ")]
        for api, cell in (("keras", keras_cell), ("mindspore", ms_cell)):
            code = re.findall(r"`([^`]+)`", cell)
            assert code, f"row {name!r} has no {api} snippet"
            cells.append(pytest.param(code[0], id=f"{name}-{api}"))
    return cells


@pytest.mark.parametrize("snippet", _table_cells())
def test_readme_difference_table_cell_runs(snippet):
    from lstm_bridge import keras, mindspore

    x = np.ones((3, 5, 10), np.float32)
    namespace = {"np": np, "keras": keras, "mindspore": mindspore, "x": x, "xt": x.transpose(1, 0, 2).copy()}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
