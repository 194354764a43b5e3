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


def test_traced_table_gains_the_aoti_column_only_when_measured():
    def stats(v: float) -> dict:
        return {"median": v, "min": v, "max": v, "samples": 1}

    row = {
        "config": "small (50,16,32,64)",
        "case": "keras hard_sigmoid + mask",
        "forward": {"eager": stats(1e-3), "compiled": stats(1.4e-3), "exported": stats(1.5e-3)},
        "train": {"eager": stats(2e-3), "compiled": stats(2.4e-3)},
        "compile_forward_s": 1.0,
        "compile_train_s": 0.5,
        "export_s": 0.2,
        "aoti_compile_s": None,
    }
    plain = traced.render({"traced": [row]})
    assert "AOTInductor" not in plain and "1.40x" in plain and "1.50x" in plain
    row["forward"]["aoti"] = stats(1.1e-3)
    row["aoti_compile_s"] = 9.5
    text = traced.render({"traced": [row]})
    header, rule = text.splitlines()[:2]
    assert "AOTInductor package ms (x eager)" in header and header.count("|") == rule.count("|")
    forward = next(line for line in text.splitlines() if "| forward |" in line)
    train = next(line for line in text.splitlines() if "| train |" in line)
    assert "1.10x" in forward and forward.count("|") == header.count("|")
    assert train.count("|") == header.count("|") and "| - |" in train  # no exported or AOTI training rows
    assert "| 9.5 |" in text


def test_traced_bench_takes_shapes_and_refuses_unknown_configs(capsys):
    """--shape times a size of one's own (one layer, one direction); an unknown config or a stacked shape is a
    usage error naming what is expected (was: a KeyError traceback)."""
    with pytest.raises(SystemExit):
        traced.main(["--configs", "huge"])
    assert "expected one of small" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        traced.main(["--shape", "6,3,4,8,2"])
    assert "one-layer, one-direction" in capsys.readouterr().err
    from lstm_bridge.bench.configs import parse_shape

    assert parse_shape("6,3,4,8").label() == "(6,3,4,8)"
