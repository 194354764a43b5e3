"""Smoke tests of the benchmark suite (the ``lstm_bridge.bench`` subpackage): structure and finiteness, not timings."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from lstm_bridge import bench
from lstm_bridge.cli import main as cli_main

QUICK_CONFIGS = ("small", "medium_2l_bidir")  # one plain and one 2-layer bidirectional config


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = bench.main(
        [
            "--quick",
            "--configs",
            ",".join(QUICK_CONFIGS),
            "--progress",
            "none",
            "--no-memory",
            "--frameworks",
            "none",
            "--out",
            str(out),
        ]
    )
    return code, out


def test_quick_run_writes_every_row_with_finite_ratios(quick_run):
    code, out = quick_run
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    got = [(r["config"]["name"], r["variant"]) for r in results["rows"]]
    assert got == [(c, v) for c in QUICK_CONFIGS for v in bench.DEFAULT_VARIANTS]
    for row in results["rows"]:
        for mode in ("forward", "train"):
            ratio = row[mode]["ratio"]["ours"]
            assert len(ratio["per_pass"]) == results["plan"]["passes"] == 1
            for key in ("median", "min", "max"):
                assert math.isfinite(ratio[key]) and ratio[key] > 0, (row["variant"], mode, ratio)
            assert ratio["min"] <= ratio["median"] <= ratio["max"]
            # the ratio is the quotient of the two timings of the same pass
            ours, ref = row[mode]["passes"]["ours"][0], row[mode]["passes"]["torch"][0]
            assert ratio["per_pass"][0] == pytest.approx(ours / ref)
            assert row["path"][mode] in ("native", "torch"), row["path"]
            assert math.isfinite(row["gflops"][mode]["ours"]) and row["gflops"][mode]["ours"] > 0
        assert row["memory"]["ratio"] is None  # --no-memory
        # the ceiling GEMM ran in the same forward passes, and is not reported as a competitor
        assert len(row["forward"]["passes"]["sgemm"]) == 1 and row["ceiling_gflops"] > 0
        assert "sgemm" not in row["forward"]["ratio"] and "sgemm" not in row["train"]["passes"]
        assert row["ceiling_share"]["forward"] == pytest.approx(
            row["gflops"]["forward"]["ours"] / row["ceiling_gflops"]
        )
    for name in QUICK_CONFIGS:
        assert results["ceilings"][name]["gflops"] > 0


def test_quick_run_markdown_table(quick_run):
    _, out = quick_run
    md = (out / "results.md").read_text()
    lines = md.splitlines()
    header = lines.index(bench.TABLE_HEADER)
    columns = bench.TABLE_HEADER.count("|") - 1
    assert lines[header + 1].count("|") - 1 == columns
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    assert len(rows) == len(QUICK_CONFIGS) * len(bench.DEFAULT_VARIANTS)
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == columns
        assert cells[0] in QUICK_CONFIGS and cells[1] in bench.VARIANTS
        for index in (5, 8):  # fwd ratio, train ratio
            assert math.isfinite(float(cells[index])) and float(cells[index]) > 0
        assert cells[-1] == "n/a"
    assert "python -m lstm_bridge.bench --quick" in md
    # the chart exists, or the report says why it does not
    assert (out / "results.png").exists() or "matplotlib is not importable" in md


def test_flop_count_follows_the_gemm_shapes():
    medium = bench.CONFIGS["medium"]
    T, B, I, H = 100, 32, 128, 256
    assert medium.forward_flops("standard") == 2 * T * B * 4 * H * (I + H)
    assert medium.forward_flops("bidirectional") == 2 * medium.forward_flops("standard")
    stacked = bench.CONFIGS["medium_2l_bidir"]
    layer0 = 2 * (2 * T * B * 4 * H * (I + H))
    layer1 = 2 * (2 * T * B * 4 * H * (2 * H + H))
    assert stacked.forward_flops("mask") == layer0 + layer1


def test_workloads_compute_the_variant_they_name():
    full = bench.make_inputs(bench.CONFIGS["small"])
    holes = 1.0 - float(full.mask.float().mean())
    assert 0.1 < holes < 0.3  # ~20% masked steps, scattered
    assert int(full.lengths.max()) == 50 and int(full.lengths.min()) >= 25
    assert int(full.lengths.min()) < 50  # lengths really vary
    cfg = bench.QUICK_CONFIGS["small"]
    data = bench.make_inputs(cfg)
    from lstm_bridge.engine import backend

    for variant in ("hard_sigmoid", "mask", "seq_length", "recurrent_dropout"):
        work = bench.build_workload("ours", cfg, variant, data)
        work.train()
        assert backend.last_used in ("native", "torch")
    ref = bench.build_workload("torch", cfg, "bidirectional", data)
    assert ref is not None and ref.path() == "oneDNN/aten"


def test_usage_errors_name_what_was_expected(capsys):
    assert bench.main(["--variants", "standard,nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "hard_sigmoid" in err
    assert bench.main(["--configs", "huge"]) == 2
    assert "medium_2l_bidir" in capsys.readouterr().err
    assert bench.main(["--passes", "0", "--quick"]) == 2


def test_cli_subcommand_forwards_to_the_suite(tmp_path):
    code = cli_main(
        [
            "bench",
            "--quick",
            "--configs",
            "small",
            "--variants",
            "mask",
            "--progress",
            "none",
            "--no-memory",
            "--frameworks",
            "none",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["config"]["name"], r["variant"]) for r in rows] == [("small", "mask")]


@pytest.mark.skipif(bench.MemoryProbe.supported() is not None, reason=str(bench.MemoryProbe.supported()))
def test_memory_probe_sees_at_least_the_activations():
    cfg = bench.Config("probe", T=50, B=16, I=32, H=64)
    probe = bench.MemoryProbe(timeout_s=120)
    try:
        task = {
            "config": {"name": cfg.name, "T": cfg.T, "B": cfg.B, "I": cfg.I, "H": cfg.H},
            "variant": "mask",
            "threads": 1,
            "seed": 0,
        }
        ours = probe.measure(dict(task, impl="ours"))
        ref = probe.measure(dict(task, impl="torch"))
    finally:
        probe.close()
    # a train step keeps at least the (T, B, 4H) float32 gates for backward
    floor = cfg.T * cfg.B * 4 * cfg.H * 4
    assert ours.get("peak_bytes", 0) >= floor, ours
    assert ref.get("peak_bytes", 0) >= floor, ref
    assert ours["path"] in ("native", "torch")


def test_render_redraws_the_report_from_json(quick_run, tmp_path, capsys):
    _, out = quick_run
    assert bench.main(["--render", str(out / "results.json"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").read_text() == (out / "results.md").read_text()
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert bench.main(["--render", str(tmp_path / "bad.json")]) == 2
    assert "without 'rows'" in capsys.readouterr().err


def test_compare_script_reads_two_runs(quick_run, capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    _, out = quick_run
    results = str(out / "results.json")
    assert compare.main([results, results]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 2 * len(QUICK_CONFIGS) * len(bench.DEFAULT_VARIANTS)
    assert all(line.endswith("+0.0%") for line in lines[1:])  # a run compared with itself


def test_a_framework_that_fails_to_run_a_case_is_recorded_not_fatal(monkeypatch):
    """An optional participant that builds but fails at its first call (as MindSpore's graph compiler
    does on T = 500 with seq_length) becomes a framework error; the row is still measured."""
    real = bench.build_workload

    def fake(impl, cfg, variant, data, threads=2):
        if impl == "mindspore":

            def boom() -> None:
                raise RuntimeError("Exceed function call depth limit 1000\nsecond line")

            return bench.Workload("mindspore", boom, boom, lambda: None, lambda: "mindspore")
        return real(impl, cfg, variant, data, threads)

    monkeypatch.setattr(bench.runner, "build_workload", fake)  # the name the runner calls
    cfg = bench.QUICK_CONFIGS["small"]
    results = bench.run(
        [cfg],
        ["hard_sigmoid"],
        plan=bench.TimingPlan(passes=1, target_s=0.001, min_reps=1),
        threads=1,
        memory=False,
        frameworks=["mindspore"],
        progress="none",
        global_ceiling=None,
    )
    assert results["framework_errors"] == {
        f"mindspore:{cfg.name}:hard_sigmoid": "RuntimeError: Exceed function call depth limit 1000"
    }
    (row,) = results["rows"]
    assert set(row["forward"]["ratio"]) == {"ours"}


FAMILY_BASELINES = {
    "gru_standard": "torch.nn.GRU",
    "gru_hard_sigmoid": "torch.nn.GRU",
    "gru_mask": "torch.nn.GRU",
    "gru_reset_after_false": "torch.nn.GRU",
    "gru_recurrent_dropout": "torch.nn.GRU",
    "gru_bidirectional": "torch.nn.GRU",
    "rnn_standard": "torch.nn.RNN(nonlinearity='tanh')",
    "rnn_mask": "torch.nn.RNN(nonlinearity='tanh')",
    "ms_gru_exact": "torch.nn.GRU",
    "ms_gru_standard": "torch.nn.GRU",
    "ms_gru_seq_length": "torch.nn.GRU",
    "ms_rnn_relu": "torch.nn.RNN(nonlinearity='relu')",
}


@pytest.fixture(scope="module")
def family_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_family")
    argv = ["--quick", "--configs", "small", "--variants", "family", "--passes", "1", "--progress", "none"]
    code = bench.main(argv + ["--no-memory", "--frameworks", "none", "--out", str(out)])
    return code, out


def test_family_rows_are_timed_against_the_matching_torch_module(family_run):
    code, out = family_run
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in results["rows"]] == list(FAMILY_BASELINES) == list(bench.FAMILY_VARIANTS)
    for row in results["rows"]:
        assert row["baseline"] == FAMILY_BASELINES[row["variant"]]
        for mode in ("forward", "train"):
            ratio = row[mode]["ratio"]["ours"]
            assert len(ratio["per_pass"]) == 1
            assert math.isfinite(ratio["median"]) and ratio["median"] > 0, (row["variant"], mode, ratio)
            ours, ref = row[mode]["passes"]["ours"][0], row[mode]["passes"]["torch"][0]
            assert ratio["per_pass"][0] == pytest.approx(ours / ref)
            assert row["path"][mode] in ("native", "torch"), row["path"]
    # the markdown puts them in their own table, with the baseline named per row (no LSTM table: no LSTM rows)
    lines = (out / "results.md").read_text().splitlines()
    assert bench.TABLE_HEADER not in lines
    header = lines.index(bench.FAMILY_TABLE_HEADER)
    rows = [line for line in lines[header + 2 :] if line.startswith("| ")]
    assert len(rows) == len(FAMILY_BASELINES)
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == bench.FAMILY_TABLE_HEADER.count("|") - 1
        assert cells[2] == FAMILY_BASELINES[cells[1]]
        for index in (6, 9):  # fwd ratio, train ratio
            assert math.isfinite(float(cells[index])) and float(cells[index]) > 0


def test_family_workloads_build_the_layers_they_name():
    from lstm_bridge import keras as K, mindspore as M

    cfg = bench.QUICK_CONFIGS["small"]
    data = bench.make_inputs(cfg)
    for variant, spec in bench.FAMILY_VARIANTS.items():
        ref = bench.build_workload("torch", cfg, variant, data).module
        assert type(ref) is (torch.nn.GRU if spec.cell == "gru" else torch.nn.RNN), variant
        assert ref.bidirectional == (variant == "gru_bidirectional"), variant
        if spec.cell == "rnn":
            assert ref.nonlinearity == ("relu" if variant == "ms_rnn_relu" else "tanh")
        ours = bench.build_workload("ours", cfg, variant, data).module
        if spec.front_end == "mindspore":
            assert type(ours) is (M.GRU if spec.cell == "gru" else M.RNN), variant
            assert ours.numerics == ("exact" if variant == "ms_gru_exact" else "mindspore-cpu"), variant
            continue
        (layer,) = ours
        if variant == "gru_bidirectional":
            assert isinstance(layer, K.Bidirectional)
            layer = layer.forward_layer
        assert type(layer) is (K.GRU if spec.cell == "gru" else K.SimpleRNN), variant
        config = layer.get_config()
        assert config.get("reset_after", True) == (variant != "gru_reset_after_false")
        assert config.get("recurrent_activation", "sigmoid") == (
            "hard_sigmoid" if variant == "gru_hard_sigmoid" else "sigmoid"
        )
        assert config["recurrent_dropout"] == (0.25 if variant == "gru_recurrent_dropout" else 0.0)


def test_family_flops_count_their_gate_blocks():
    medium = bench.CONFIGS["medium"]
    lstm = medium.forward_flops("standard")
    assert medium.forward_flops("gru_standard") == lstm * 3 / 4
    assert medium.forward_flops("ms_rnn_relu") == lstm / 4
    assert medium.forward_flops("gru_bidirectional") == 2 * medium.forward_flops("gru_standard")
    assert medium.directions("gru_bidirectional") == 2 and medium.directions("gru_mask") == 1


def test_family_group_and_old_results_without_baseline(quick_run, tmp_path, capsys):
    # --variants accepts the groups; an unknown name lists them
    assert bench.main(["--variants", "gru_nope"]) == 2
    assert "'family'" in capsys.readouterr().err
    # results written before the baseline field render as torch.nn.LSTM rows, unchanged
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    assert {row["baseline"] for row in results["rows"]} == {"torch.nn.LSTM"}
    for row in results["rows"]:
        del row["baseline"]
    (tmp_path / "old.json").write_text(json.dumps(results))
    assert bench.main(["--render", str(tmp_path / "old.json"), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "results.md").read_text()
    assert bench.TABLE_HEADER in md.splitlines() and bench.FAMILY_TABLE_HEADER not in md
    assert md == (out / "results.md").read_text()


# --- the family rows' framework participants in worker processes ------------------------------------------

_FAKE_MINDSPORE = {
    "__init__.py": """
import json, os
import numpy as np
from . import nn
__version__ = "0-fake"
GRAPH_MODE = 0
def set_context(**kw):
    pass
class Tensor:
    def __init__(self, a):
        self.a = np.asarray(a)
    def asnumpy(self):
        return self.a
    def sum(self):
        return Tensor(self.a.sum())
def value_and_grad(fn, grad_position, weights):
    return lambda x: (fn(x), [])
""",
    "nn.py": """
import json, os
import numpy as np
class Cell:
    def __init__(self):
        pass
    def __call__(self, *args, **kw):
        return self.construct(*args, **kw)
class GRU(Cell):
    def __init__(self, input_size, hidden_size, **kw):
        self.hidden_size = hidden_size
        with open(os.environ["FAKE_MS_LOG"], "a") as f:
            f.write(json.dumps(dict(kw, cls=type(self).__name__, input_size=input_size)) + "\\n")
    def construct(self, x, seq_length=None):
        from . import Tensor
        with open(os.environ["FAKE_MS_LOG"], "a") as f:
            f.write(json.dumps({"call": seq_length is not None}) + "\\n")
        return Tensor(np.zeros(x.a.shape[:2] + (self.hidden_size,))), None
    def trainable_params(self):
        return []
class RNN(GRU):
    pass
""",
}


def test_a_worker_process_framework_runs_the_row_and_times_its_own_calls(monkeypatch, tmp_path):
    """The worker protocol end to end with a stand-in ``mindspore`` package (the real one is not in this venv):
    the spec reaches the framework (sizes, bidirectional, nonlinearity, seq_length), each call is timed by the
    worker (CallTime, taken by measure instead of the pipe's round trip), and the process ends with the row."""
    from lstm_bridge.bench import participants as P

    pkg = tmp_path / "site" / "mindspore"
    pkg.mkdir(parents=True)
    for name, text in _FAKE_MINDSPORE.items():
        (pkg / name).write_text(text)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_MS_LOG", str(log))
    monkeypatch.setattr(P, "child_python", lambda fw: (sys.executable, str(tmp_path / "site")))
    cfg = bench.QUICK_CONFIGS["small"]
    data = bench.make_inputs(cfg)
    work = P.build_workload("mindspore", cfg, "ms_rnn_relu", data, threads=1)
    assert work is not None and work.path() == "mindspore 0-fake (graph, default threads)"
    t = work.forward()
    assert isinstance(t, P.CallTime) and 0 <= t < 1
    built = json.loads(log.read_text().splitlines()[0])
    assert built == {
        "cls": "RNN",
        "input_size": cfg.I,
        "num_layers": 1,
        "has_bias": True,
        "batch_first": True,
        "bidirectional": False,
        "nonlinearity": "relu",
    }
    seq = P.build_workload("mindspore", cfg, "ms_gru_seq_length", data, threads=1)
    seq.train()
    assert json.loads(log.read_text().splitlines()[-1]) == {"call": True}
    # measure() takes the worker's own time: a worker call that reports 0.25 s counts 0.25 s
    slow = bench.Workload("w", lambda: P.CallTime(0.25), lambda: P.CallTime(0.25), lambda: None, lambda: "w")
    fast = bench.Workload("torch", lambda: None, lambda: None, lambda: None, lambda: "t")
    timed = bench.timing.measure({"w": slow, "torch": fast}, "forward", bench.TimingPlan(passes=1, min_reps=1))
    assert timed["median_s"]["w"] == 0.25
    proc = work.forward.__closure__[0].cell_contents[0].proc  # the worker process ends with its workload
    del work
    assert proc.wait(timeout=30) == 0


def test_worker_frameworks_missing_or_failing_are_recorded_per_row(monkeypatch):
    from lstm_bridge.bench import participants as P
    from lstm_bridge.bench.environment import available_frameworks

    assert available_frameworks("keras3,ms") == ["keras3-tf", "keras3-torch", "mindspore"]
    with pytest.raises(ValueError, match="keras3-torch"):
        available_frameworks("keras4")
    cfg = bench.QUICK_CONFIGS["small"]
    monkeypatch.setattr(P, "child_python", lambda fw: None if fw == "keras3-tf" else (sys.executable, ""))
    results = bench.run(
        [cfg],
        ["gru_standard", "standard"],
        plan=bench.TimingPlan(passes=1, target_s=0.001, min_reps=1),
        threads=1,
        memory=False,
        frameworks=["keras3-tf", "keras3-torch"],
        progress="none",
        global_ceiling=None,
    )
    errors = results["framework_errors"]
    assert errors[f"keras3-tf:{cfg.name}:gru_standard"].startswith("ImportError: no Python that imports keras")
    # this venv has no keras: the worker says so, the row goes on without it
    assert "ModuleNotFoundError" in errors[f"keras3-torch:{cfg.name}:gru_standard"]
    assert not any(k.endswith(":standard") for k in errors)  # Keras 3 workers take family rows only
    assert all(set(r["forward"]["ratio"]) == {"ours"} for r in results["rows"])


@pytest.mark.live
@pytest.mark.parametrize(
    "framework, variant",
    [("keras3-tf", "gru_mask"), ("keras3-torch", "rnn_standard"), ("mindspore", "ms_gru_seq_length")],
)
def test_real_worker_frameworks(framework, variant):
    """Keras 3 on both backends and MindSpore 2.10 (the golden venvs, or $LSTM_BRIDGE_BENCH_*_PYTHON)."""
    from lstm_bridge.bench import participants as P

    if P.child_python(framework) is None:
        pytest.skip(f"no interpreter with {framework}")
    cfg = bench.QUICK_CONFIGS["small"]
    work = P.build_workload(framework, cfg, variant, bench.make_inputs(cfg), threads=1)
    assert work is not None and isinstance(work.forward(), P.CallTime) and isinstance(work.train(), P.CallTime)
    assert ("torch" in work.path()) == (framework == "keras3-torch")


def test_shapes_of_ones_own_are_timed_alone_or_beside_the_configs(tmp_path, capsys):
    from lstm_bridge.bench.configs import parse_shape

    cfg = parse_shape(" 12, 3, 4, 5 ,2, Bidir")
    assert (cfg.T, cfg.B, cfg.I, cfg.H, cfg.layers, cfg.bidirectional) == (12, 3, 4, 5, 2, True)
    assert parse_shape("6,2,3,4").layers == 1 and not parse_shape("6,2,3,4").bidirectional
    for bad in ("6,2,3", "6,2,3,x", "6,0,3,4", "6,2,3,4,1,2"):
        with pytest.raises(ValueError, match=r"T,B,I,H\[,layers\]\[,bidir\]"):
            parse_shape(bad)
    common = ["--quick", "--variants", "standard", "--progress", "none", "--no-memory", "--frameworks", "none"]
    assert bench.main([*common, "--shape", "6,2,3,4", "--out", str(tmp_path / "a")]) == 0
    rows = json.loads((tmp_path / "a" / "results.json").read_text())["rows"]
    assert {r["config"]["name"] for r in rows} == {"6,2,3,4"}
    assert bench.main([*common, "--configs", "small", "--shape", "5,2,3,4,2,bidir", "--out", str(tmp_path / "b")]) == 0
    rows = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    assert {r["config"]["name"] for r in rows} == {"small", "5,2,3,4,2,bidir"}
    capsys.readouterr()
    assert bench.main([*common, "--shape", "6,2,3"]) == 2
    assert "T,B,I,H" in capsys.readouterr().err


def test_the_suite_help_points_to_the_bf16_and_traced_tables(capsys):
    """The suite's ``--help`` names the two other bench commands (issue 12's bf16 and compiled/exported rows),
    and each of them answers ``--help`` with its own options."""
    from lstm_bridge.bench import bf16, cli as bench_cli, traced

    text = bench_cli.build_parser().format_help()
    assert "python -m lstm_bridge.bench.bf16" in text and "python -m lstm_bridge.bench.traced" in text
    for module in (bf16, traced):
        with pytest.raises(SystemExit) as exit_info:
            module.main(["--help"])
        assert exit_info.value.code == 0
        assert "--shape" in capsys.readouterr().out
