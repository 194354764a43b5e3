"""``python -m lstm_bridge.bench.traced``: the per-call overhead table (quick smoke run; timings meaningless)."""

from __future__ import annotations

import pytest

from lstm_bridge.bench import traced
from lstm_bridge.engine import native


def test_overhead_table_names_every_participant(capsys):
    if not native.available():
        pytest.skip("native kernel unavailable: " + str(native.error()))
    assert traced.main(["--quick", "--only", "overhead", "--clock", "wall"]) == 0
    out = capsys.readouterr().out
    for name in ("kernel only (ext.forward)", "torch.nn.LSTM", "keras.LSTM hard_sigmoid", "mindspore.LSTM seq_length"):
        assert f"| {name} |" in out
    assert "over kernel us" in out and "wall clock" in out
