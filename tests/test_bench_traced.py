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


def test_floor_table_gives_torchs_own_per_call_cost_of_compiled_and_exported_programs():
    """The trivial-module rows: eager, compiled and exported forward, eager and compiled training step, and the
    difference to eager (what a traced program pays whatever its graph holds)."""
    from lstm_bridge.bench.configs import QUICK_CONFIGS

    floor = traced.measure_floor(QUICK_CONFIGS["small"], samples=1, calls=1)
    assert set(floor["forward"]) == {"eager", "compiled", "exported"} and set(floor["train"]) == {"eager", "compiled"}
    text = traced.render({"floor": floor})
    assert "Torch's own per-call cost" in text
    assert "| forward |" in text and "| train |" in text and " us)" in text
