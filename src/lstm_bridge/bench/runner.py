"""One benchmark run: every (config, variant) row, timed and (optionally) memory-probed."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .configs import Config, baseline, make_inputs
from .environment import loadavg
from .memory import MemoryProbe
from .participants import SGEMM, Workload, build_workload, gemm_workload
from .progress import ProgressReporter
from .timing import TimingPlan, measure, sgemm_ceiling


def run(
    configs: Sequence[Config],
    variants: Sequence[str],
    *,
    plan: TimingPlan,
    threads: int = 2,
    memory: bool = True,
    frameworks: Sequence[str] = (),
    progress: str = "auto",
    global_ceiling: Optional[Tuple[int, int, int]] = (1536, 1536, 1536),
    meta: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Run the benchmark and return the results dict (what ``results.json`` holds).

    ``rows`` has one entry per (config, variant) with ``forward``/``train`` from :func:`measure`,
    ``gflops``, ``ceiling_share``, ``memory`` and ``path``.
    """
    torch.set_num_threads(threads)
    started = time.perf_counter()
    probe_problem = MemoryProbe.supported() if memory else "disabled (--no-memory)"
    probe = MemoryProbe() if probe_problem is None else None
    n_memory = 2 * len(configs) * len(variants) if probe else 0
    steps = len(configs) * len(variants) + len(configs) + n_memory + (1 if global_ceiling else 0)
    bar = ProgressReporter(steps, progress)
    results: Dict[str, Any] = {
        "meta": dict(meta or {}),
        "plan": dataclasses.asdict(plan),
        "ceilings": {},
        "rows": [],
        "frameworks": list(frameworks),
        "framework_errors": {},
    }
    results["meta"]["memory_method"] = probe_problem or (
        "peak RSS increase of one train step in a forked child (VmHWM reset via /proc/self/clear_refs)"
    )
    try:
        if global_ceiling:
            bar.start(f"sgemm ceiling {global_ceiling}")
            results["global_ceiling"] = sgemm_ceiling(*global_ceiling, plan)
            bar.finish(f"sgemm {global_ceiling}: {results['global_ceiling']['gflops']:.1f} GFLOP/s")
        torch_memory: Dict[Tuple[str, int, str], Dict[str, Any]] = {}
        for cfg in configs:
            bar.start(f"{cfg.name}: sgemm ceiling")
            ceiling = sgemm_ceiling(cfg.T * cfg.B, cfg.I + cfg.H, 4 * cfg.H, plan)
            results["ceilings"][cfg.name] = ceiling
            bar.finish(f"{cfg.name}: ceiling {ceiling['gflops']:.1f} GFLOP/s")
            gemm, gemm_flops = gemm_workload(*ceiling["shape"])
            data = make_inputs(cfg)
            for variant in variants:
                bar.start(f"{cfg.name} / {variant}")
                ours = build_workload("ours", cfg, variant, data, threads)
                ref = build_workload("torch", cfg, variant, data, threads)
                assert ours is not None and ref is not None  # both express every variant
                participants: Dict[str, Workload] = {"ours": ours, "torch": ref}
                for fw in frameworks:
                    key = f"{fw}:{cfg.name}:{variant}"
                    try:
                        work = build_workload(fw, cfg, variant, data, threads)
                    except ImportError as exc:
                        results["framework_errors"][key] = f"ImportError: {exc}"
                        continue
                    except Exception as exc:  # an optional comparison must not sink the run; recorded visibly
                        results["framework_errors"][key] = f"{type(exc).__name__}: {exc}"
                        continue
                    if work is None:
                        continue
                    try:  # one call per mode first: a framework that cannot run this case (e.g. MindSpore's
                        # graph compiler on T = 500 with seq_length) is recorded, and the run goes on
                        work.forward()
                        work.train()
                    except Exception as exc:  # noqa: BLE001 (any failure of an optional comparison)
                        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
                        results["framework_errors"][key] = f"{type(exc).__name__}: {first_line}"
                        continue
                    participants[fw] = work
                row: Dict[str, Any] = {
                    "config": dataclasses.asdict(cfg),
                    "variant": variant,
                    "baseline": baseline(variant),
                }
                for mode in ("forward", "train"):
                    # the ceiling GEMM joins the forward rounds, so it sees the same machine as ours
                    row[mode] = measure(
                        dict(participants, sgemm=gemm) if mode == "forward" else participants, mode, plan
                    )
                row["forward"]["ratio"].pop(SGEMM, None)
                flops = {"forward": cfg.forward_flops(variant), "train": 3.0 * cfg.forward_flops(variant)}
                row["flops"] = flops
                row["gflops"] = {
                    m: {n: flops[m] / s / 1e9 for n, s in row[m]["median_s"].items() if n != SGEMM}
                    for m in ("forward", "train")
                }
                per_pass_ceiling = [gemm_flops / t / 1e9 for t in row["forward"]["passes"][SGEMM]]
                row["ceiling_gflops"] = statistics.median(per_pass_ceiling)
                row["ceiling_share"] = {
                    "forward": statistics.median(
                        flops["forward"] / t / 1e9 / c
                        for t, c in zip(row["forward"]["passes"]["ours"], per_pass_ceiling)
                    ),
                    "train": row["gflops"]["train"]["ours"] / row["ceiling_gflops"],
                }
                row["path"] = {m: row[m]["paths"]["ours"] for m in ("forward", "train")}
                del participants, ours, ref
                bar.finish(
                    f"{cfg.name} / {variant}: forward {row['forward']['ratio']['ours']['median']:.2f}x, "
                    f"train {row['train']['ratio']['ours']['median']:.2f}x {row['baseline']} "
                    f"(path {row['path']['forward']}/{row['path']['train']})"
                )
                results["rows"].append(row)
                if probe is not None:
                    task = {"config": dataclasses.asdict(cfg), "variant": variant, "threads": threads, "seed": 0}
                    bar.start(f"{cfg.name} / {variant}: memory")
                    ours_mem = probe.measure(dict(task, impl="ours"))
                    bar.finish(_memory_line("ours", ours_mem))
                    ref_key = (cfg.name, cfg.directions(variant), row["baseline"])
                    bar.start(f"{cfg.name} / {ref_key[2]} (D={ref_key[1]}): memory")
                    if ref_key not in torch_memory:
                        torch_memory[ref_key] = probe.measure(dict(task, impl="torch"))
                    bar.finish(_memory_line("torch", torch_memory[ref_key]))
                    ref_mem = torch_memory[ref_key]
                    ratio = None
                    if ours_mem.get("peak_bytes") and ref_mem.get("peak_bytes"):
                        ratio = ours_mem["peak_bytes"] / ref_mem["peak_bytes"]
                    row["memory"] = {"ours": ours_mem, "torch": ref_mem, "ratio": ratio}
                else:
                    row["memory"] = {"ratio": None, "note": probe_problem}
    finally:
        bar.close()
        if probe is not None:
            probe.close()
    results["meta"]["load_end"] = loadavg()
    results["meta"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    return results


def _memory_line(who: str, result: Dict[str, Any]) -> str:
    if "peak_bytes" in result:
        return f"{who}: train-step peak +{result['peak_bytes'] / 2**20:.1f} MiB"
    return f"{who}: memory n/a ({result.get('error')})"
