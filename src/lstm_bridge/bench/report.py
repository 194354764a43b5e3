"""The report of a run: ``results.md`` (markdown table) and ``results.png`` (a bar chart of the ratios)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .configs import LSTM_BASELINE, Config
from .participants import SGEMM


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


TABLE_HEADER = (
    "| config | variant | path (fwd/train) | fwd ms ours | fwd ms torch | fwd ratio | train ms ours | "
    "train ms torch | train ratio | spread (ratio min–max: fwd; train) | GFLOP/s (fwd/train) | "
    "% ceiling (fwd/train) | memory ratio |"
)
# the recurrent-family rows: the same columns plus the torch module each row is compared with
FAMILY_TABLE_HEADER = TABLE_HEADER.replace("| variant |", "| variant | baseline |", 1)


def row_baseline(row: Dict[str, Any]) -> str:
    """The torch module a row was compared with (results written before the family rows: torch.nn.LSTM)."""
    return str(row.get("baseline", LSTM_BASELINE))


def _cells(row: Dict[str, Any], with_baseline: bool) -> List[str]:
    f, t = row["forward"], row["train"]
    fr, tr = f["ratio"]["ours"], t["ratio"]["ours"]
    mem = row.get("memory", {}).get("ratio")
    head = [row["config"]["name"], row["variant"]] + ([row_baseline(row)] if with_baseline else [])
    return head + [
        f"{row['path']['forward']}/{row['path']['train']}",
        _ms(f["median_s"]["ours"]),
        _ms(f["median_s"]["torch"]),
        f"{fr['median']:.2f}",
        _ms(t["median_s"]["ours"]),
        _ms(t["median_s"]["torch"]),
        f"{tr['median']:.2f}",
        f"{fr['min']:.2f}–{fr['max']:.2f}; {tr['min']:.2f}–{tr['max']:.2f}",
        f"{row['gflops']['forward']['ours']:.3g}/{row['gflops']['train']['ours']:.3g}",
        f"{100 * row['ceiling_share']['forward']:.0f}/{100 * row['ceiling_share']['train']:.0f}",
        "n/a" if mem is None else f"{mem:.2f}",
    ]


def render_markdown(results: Dict[str, Any]) -> str:
    """The markdown report: metadata, the main table, optional framework columns and notes."""
    meta = results.get("meta", {})
    lines = ["# lstm-bridge benchmark", ""]
    if meta:
        lines.append(f"- command: `{meta.get('command', '')}`")
        lines.append(
            f"- {meta.get('date', '')}; torch {meta.get('torch', '')}, Python {meta.get('python', '')}; "
            f"CPU {meta.get('cpu', '')} ({meta.get('cpu_count', '')} logical), "
            f"`torch.set_num_threads({meta.get('threads', '')})`"
        )
        lines.append(
            f"- engine: LSTM_BRIDGE_BACKEND={meta.get('backend_requested', '')}, native kernel {meta.get('native', '')}"
        )
        lines.append(f"- memory: {meta.get('memory_method', '')}")
        loads = [v for v in (meta.get("load_start"), meta.get("load_end")) if v is not None]
        if loads:
            busy = max(loads) > max(1, (meta.get("cpu_count") or 1) - 0.5)
            elapsed = meta.get("elapsed_s")
            lines.append(
                (f"- wall time {elapsed / 60:.1f} min; " if elapsed else "- ")
                + f"machine load (1-min average) at start/end: {meta.get('load_start')}/{meta.get('load_end')}"
                + (
                    " — **the machine was busy with other work: timings are inflated and noisy; compare "
                    "ratios only, and look at the spread**"
                    if busy
                    else ""
                )
            )
    plan = results.get("plan", {})
    lines.append(
        f"- timing: {plan.get('passes')} passes per row; a pass = calibrated rounds (~"
        f"{plan.get('target_s', 0) * 1e3:.0f} ms for the slower side) calling ours and the torch module "
        "alternately, keeping each side's median; ms = median of the per-pass medians; ratio = median of "
        "the per-pass ratios ours/torch.nn.LSTM (same size, standard semantics; GRU/RNN rows: ours/the row's "
        "baseline, torch.nn.GRU or torch.nn.RNN); spread = their min–max"
    )
    lines.append(
        "- forward = inference under `torch.no_grad()`; train = forward + backward of `output.sum()`; "
        "GFLOP/s counts GEMM work (4/3/1 gate blocks for LSTM/GRU/RNN; train = 3x forward); "
        "% ceiling = share of the sgemm ceiling measured "
        "in the same forward passes (one float32 (T·B, I+H)@(I+H, 4H) product per round, oneDNN's matmul where "
        "torch has it, else `torch.mm`; rows without it: the config's ceiling below)"
    )
    seen = {row["config"]["name"]: Config(**row["config"]).label() for row in results["rows"]}
    lines.append("- configs (T,B,I,H): " + "; ".join(seen.values()))
    glob = results.get("global_ceiling")
    ceil = ", ".join(f"{k} {v['gflops']:.1f}" for k, v in results.get("ceilings", {}).items())
    lines.append(
        f"- sgemm ceilings measured once per config (GFLOP/s): {ceil}"
        + (f"; large square {tuple(glob['shape'])}: {glob['gflops']:.1f}" if glob else "")
    )
    lstm_rows = [row for row in results["rows"] if row_baseline(row) == LSTM_BASELINE]
    family_rows = [row for row in results["rows"] if row_baseline(row) != LSTM_BASELINE]
    if lstm_rows or not family_rows:
        lines += ["", TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
        lines += ["| " + " | ".join(_cells(row, False)) + " |" for row in lstm_rows]
    if family_rows:
        lines += [
            "",
            "## Recurrent family (GRU / simple RNN; ratio to the baseline's standard layer of the same size, "
            "timed in the same passes; 'torch' columns = that baseline)",
            "",
            FAMILY_TABLE_HEADER,
            "|" + "---|" * FAMILY_TABLE_HEADER.count(" | ") + "---|",
        ]
        lines += ["| " + " | ".join(_cells(row, True)) + " |" for row in family_rows]
    extra = [
        (row, name)
        for row in results["rows"]
        for name in row["forward"]["median_s"]
        if name not in ("ours", "torch", SGEMM)
    ]
    if extra:
        lines += [
            "",
            "## Other frameworks (same passes; ratio to the row's torch module: torch.nn.LSTM, GRU or RNN; "
            "min-max over the passes)",
            "",
            "| config | variant | framework | fwd ms | fwd ratio | train ms | train ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for row, name in extra:
            fwd, trn = row["forward"]["ratio"][name], row["train"]["ratio"][name]
            lines.append(
                f"| {row['config']['name']} | {row['variant']} | {row['forward']['paths'][name]} | "
                f"{_ms(row['forward']['median_s'][name])} | {fwd['median']:.2f} ({fwd['min']:.2f}-{fwd['max']:.2f}) | "
                f"{_ms(row['train']['median_s'][name])} | {trn['median']:.2f} ({trn['min']:.2f}-{trn['max']:.2f}) |"
            )
    if results.get("framework_errors"):
        lines += ["", "Framework errors:"] + [f"- {k}: {v}" for k, v in results["framework_errors"].items()]
    if results.get("chart_note"):
        lines += ["", results["chart_note"]]
    return "\n".join(lines) + "\n"


def write_chart(results: Dict[str, Any], path: str) -> Optional[str]:
    """A bar chart of the forward and train ratios (PNG); returns a note instead when matplotlib is missing."""
    try:
        import matplotlib  # noqa: WPS433 (optional)
    except ImportError:
        return "results.png skipped: matplotlib is not importable (pip install matplotlib to get the chart)."
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    labels = [f"{r['config']['name']}\n{r['variant']}" for r in rows]
    fwd = [r["forward"]["ratio"]["ours"]["median"] for r in rows]
    trn = [r["train"]["ratio"]["ours"]["median"] for r in rows]
    fwd_err = [
        [v - r["forward"]["ratio"]["ours"]["min"] for v, r in zip(fwd, rows)],
        [r["forward"]["ratio"]["ours"]["max"] - v for v, r in zip(fwd, rows)],
    ]
    trn_err = [
        [v - r["train"]["ratio"]["ours"]["min"] for v, r in zip(trn, rows)],
        [r["train"]["ratio"]["ours"]["max"] - v for v, r in zip(trn, rows)],
    ]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(rows) + 2), 5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], fwd, 0.4, yerr=fwd_err, label="forward", capsize=2)
    ax.bar([x + 0.2 for x in xs], trn, 0.4, yerr=trn_err, label="train step", capsize=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.15, color="red", linewidth=0.8, linestyle="--", label="1.15x target (variants)")
    if max(r["max"] for row in rows for r in (row["forward"]["ratio"]["ours"], row["train"]["ratio"]["ours"])) > 4:
        ax.set_yscale("log")  # noisy or far-off rows would flatten everything else
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("time / torch baseline (same run)")
    ax.set_title("lstm-bridge vs torch.nn.LSTM/GRU/RNN (median of per-pass ratios, bars: min-max)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
