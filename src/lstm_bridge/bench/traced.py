"""Traced-program rows and per-call overhead: ``python -m lstm_bridge.bench.traced``.

Two tables, each timed in one process with the participants interleaved (round by round, the order
alternating) so machine load hits every participant alike:

* **compiled / exported vs eager** (issue 12 item 4): a Keras ``LSTM(recurrent_activation="hard_sigmoid")``
  with a mask and a MindSpore ``LSTM`` with ``seq_length`` (both on the native kernel's custom op), each
  run eagerly, as ``torch.compile(fullgraph=True)`` (inductor) and as ``torch.export.export(...).module()``
  (dynamic batch and time); forward under ``torch.no_grad()`` and a training step (forward + backward,
  eager vs compiled). Compile and export times are recorded (the first compiled call includes compiling).
  ``--aoti`` adds the exported program compiled by AOTInductor (``torch._inductor.aoti_compile_and_package``,
  loaded with ``aoti_load_package``: no dynamo or Python wrappers per call; forward only).
  A trivial module with the same inputs, timed the same way, gives torch's own per-call cost of a compiled
  and an exported program (:func:`measure_floor`).
* **per-call overhead**: tiny layers (T=1, B=1, I=H=8) of ``lstm_bridge.keras.LSTM`` and
  ``lstm_bridge.mindspore.LSTM`` against ``torch.nn.LSTM`` and against the bare kernel call
  (``ext.forward`` on a prepared projection), in inference on one thread; a batch of calls per sample,
  median / min / max of the per-call times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

from .. import keras as K, mindspore as M
from .configs import CONFIGS, QUICK_CONFIGS, Config, select_configs

__all__ = ["main", "measure_floor", "measure_overhead", "measure_traced"]

Call = Callable[[], object]


SAMPLE_S = 0.02
"""The traced tables' least time per sample (seconds): a short call is timed as a run of calls in a row."""

CLOCKS: Dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: Callable[[], float] = time.process_time
"""``cpu`` (default): this process's CPU time, all its threads - on a machine shared with other jobs the wall
clock mostly measures preemption; ``wall``: elapsed time."""


def _per_call(fn: Call, calls: int) -> float:
    t0 = _clock()
    for _ in range(calls):
        fn()
    return (_clock() - t0) / calls


def _interleaved(
    participants: Dict[str, Call], samples: int, calls: int, min_sample_s: float = 0.0
) -> Dict[str, Dict[str, float]]:
    """``samples`` rounds; each round times ``calls`` calls of every participant, order alternating.

    ``min_sample_s``: at least that much time per sample - ``calls`` grows to fit the first participant's
    time per call - so a sample of a short call is a run of calls in a row (warm caches, as a model called in
    a loop runs) rather than 3 calls between other participants' calls."""
    names = list(participants)
    for fn in participants.values():  # warm up: first-call initialisation, kernel loading
        for _ in range(3):
            fn()
    if min_sample_s > 0:
        one = _per_call(participants[names[0]], 1)
        calls = max(calls, min(1000, int(min_sample_s / max(one, 1e-7)) + 1))
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(samples):
        for n in names if r % 2 == 0 else reversed(names):
            times[n].append(_per_call(participants[n], calls))
    return {
        n: {"median": statistics.median(v), "min": min(v), "max": max(v), "samples": len(v)} for n, v in times.items()
    }


# --- per-call overhead ---------------------------------------------------------------------------------------


def _kernel_call(H: int, x: torch.Tensor) -> Call:
    """The bare kernel forward of one direction (projection prepared once): what no front end can avoid."""
    from ..engine import native
    from ..engine.native import function

    if not native.available():
        raise RuntimeError("the native kernel is unavailable: " + str(native.error()))
    plan = function.make_plan([H], [False], [0, 1, 1], True, x.dtype, False)
    T, B, _ = x.shape
    xp = torch.randn(T, B, 4 * H)
    w_hh = torch.randn(4 * H, H)
    h0 = torch.zeros(B, H)
    empty = plan.empty()
    valid = torch.empty(0)

    def call() -> object:
        return plan.ext.forward(plan.cfg, xp, [w_hh], [h0], [h0], valid, [empty], [empty])

    return call


def measure_overhead(samples: int = 15, calls: int = 300) -> Dict[str, Any]:
    """Per-call times (seconds) of tiny layers, inference; see the module docstring."""
    T, B, I, H = 1, 1, 8, 8
    x = torch.randn(B, T, I)
    lengths = torch.tensor([T], dtype=torch.int32)
    torch_lstm = torch.nn.LSTM(I, H, batch_first=True)
    k_std = K.LSTM(H)
    k_hs = K.LSTM(H, recurrent_activation="hard_sigmoid")
    ms = M.LSTM(I, H, batch_first=True)
    for layer in (k_std, k_hs):
        layer(x)
    participants: Dict[str, Call] = {
        "kernel only (ext.forward)": _kernel_call(H, x.transpose(0, 1)),
        "torch.nn.LSTM": lambda: torch_lstm(x),
        "keras.LSTM": lambda: k_std(x),
        "keras.LSTM hard_sigmoid": lambda: k_hs(x),
        "mindspore.LSTM": lambda: ms(x),
        "mindspore.LSTM seq_length": lambda: ms(x, seq_length=lengths),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-call overhead, not threading: one thread for every participant
    try:
        with torch.no_grad():
            rows = _interleaved(participants, samples, calls)
    finally:
        torch.set_num_threads(threads)
    return {"shape": {"T": T, "B": B, "I": I, "H": H}, "threads": 1, "rows": rows}


# --- compiled / exported vs eager --------------------------------------------------------------------------


class _KerasMasked(torch.nn.Module):
    def __init__(self, H: int):
        super().__init__()
        self.layer = K.LSTM(H, recurrent_activation="hard_sigmoid", return_sequences=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Any:
        return self.layer(x, mask=mask)


class _MsLengths(torch.nn.Module):
    def __init__(self, I: int, H: int):  # noqa: E741
        super().__init__()
        self.net = M.LSTM(I, H, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Any:
        return self.net(x, seq_length=lengths)[0]


def _case(name: str, c: Config) -> Tuple[torch.nn.Module, Tuple[torch.Tensor, ...], Any]:
    from torch.export import Dim

    g = torch.Generator().manual_seed(0)
    x = torch.randn(c.B, c.T, c.I, generator=g)
    B, T = Dim("B", min=2), Dim("T", min=2)
    if name == "keras hard_sigmoid + mask":
        mask = torch.ones(c.B, c.T, dtype=torch.bool)
        mask[: c.B // 2, c.T - c.T // 4 :] = False
        m: torch.nn.Module = _KerasMasked(c.H)
        args: Tuple[torch.Tensor, ...] = (x, mask)
        dyn: Any = ({0: B, 1: T}, {0: B, 1: T})
    else:
        lengths = torch.full((c.B,), c.T, dtype=torch.int32)
        lengths[: c.B // 2] = c.T - c.T // 4
        m = _MsLengths(c.I, c.H)
        args = (x, lengths)
        dyn = ({0: B, 1: T}, {0: B})
    m(*args)  # built
    return m, args, dyn


def _loss(out: Any) -> torch.Tensor:
    t = out[0] if isinstance(out, (list, tuple)) else out
    return t.float().square().mean()


def _aoti_runner(program: Any, folder: str) -> Tuple[Call, float]:
    """An AOTInductor package of ``program`` (C++ compiled, then loaded) and its compile time in seconds."""
    import os

    t0 = time.perf_counter()
    package = torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(folder, "program.pt2"))
    runner = torch._inductor.aoti_load_package(package)
    return runner, time.perf_counter() - t0


def _measure_case(name: str, c: Config, samples: int, calls: int, aoti: bool = False) -> Dict[str, Any]:
    import tempfile

    torch._dynamo.reset()
    m, args, dyn = _case(name, c)
    with torch.no_grad(), tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        compiled = torch.compile(m, fullgraph=True)
        compiled(*args)
        compile_fwd_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        program = torch.export.export(m, args, dynamic_shapes=dyn)
        exported = program.module()
        export_s = time.perf_counter() - t0
        for a, b in zip(torch.utils._pytree.tree_leaves(compiled(*args)), torch.utils._pytree.tree_leaves(m(*args))):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        forward = {"eager": lambda: m(*args), "compiled": lambda: compiled(*args), "exported": lambda: exported(*args)}
        aoti_s = None
        if aoti:
            runner, aoti_s = _aoti_runner(program, folder)
            for a, b in zip(torch.utils._pytree.tree_leaves(runner(*args)), torch.utils._pytree.tree_leaves(m(*args))):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            forward["aoti"] = lambda: runner(*args)
        fwd = _interleaved(forward, samples, calls, SAMPLE_S)
    torch._dynamo.reset()
    compiled_train = torch.compile(m, fullgraph=True)
    t0 = time.perf_counter()
    _loss(compiled_train(*args)).backward()
    compile_train_s = time.perf_counter() - t0

    def step(f: Callable[..., Any]) -> object:
        loss = _loss(f(*args))
        loss.backward()
        return loss

    train = _interleaved(
        {"eager": lambda: step(m), "compiled": lambda: step(compiled_train)}, samples, max(1, calls // 2), SAMPLE_S
    )
    return {
        "config": c.label(),
        "case": name,
        "forward": fwd,
        "train": train,
        "compile_forward_s": compile_fwd_s,
        "compile_train_s": compile_train_s,
        "export_s": export_s,
        "aoti_compile_s": aoti_s,
    }


def measure_traced(
    configs: Sequence[Config], samples: int = 7, calls: int = 3, aoti: bool = False
) -> List[Dict[str, Any]]:
    """Eager vs compiled vs exported rows (seconds per call) with compile/export times; see the module docstring.
    ``aoti``: also the exported program as an AOTInductor package (forward only; needs a C++ compiler)."""
    return [
        _measure_case(name, c, samples, calls, aoti)
        for c in configs
        for name in ("keras hard_sigmoid + mask", "mindspore seq_length")
    ]


class _Floor(torch.nn.Module):
    """One op (``x * w``, nothing for inductor to fuse) behind the Keras case's signature ``(x, mask)``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * self.w


def measure_floor(c: Config, samples: int = 7, calls: int = 3) -> Dict[str, Any]:
    """Torch's own per-call cost of a compiled and an exported program: :class:`_Floor` on the Keras case's
    inputs (config ``c``), eager vs ``torch.compile(fullgraph=True)`` vs ``torch.export.export(...).module()``
    (dynamic B and T), forward under ``torch.no_grad()`` and a training step; what a traced program of any
    model pays on top of its graph (dynamo's frame and guards, the AOT autograd wrapper, the exported
    module's input checks and pytree flattening)."""
    from torch.export import Dim

    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(c.B, c.T, c.I, generator=g)
    mask = torch.ones(c.B, c.T, dtype=torch.bool)
    m = _Floor()
    B, T = Dim("B", min=2), Dim("T", min=2)
    with torch.no_grad():
        compiled = torch.compile(m, fullgraph=True)
        compiled(x, mask)
        exported = torch.export.export(m, (x, mask), dynamic_shapes=({0: B, 1: T}, {0: B, 1: T})).module()
        fwd = _interleaved(
            {"eager": lambda: m(x, mask), "compiled": lambda: compiled(x, mask), "exported": lambda: exported(x, mask)},
            samples,
            calls,
            SAMPLE_S,
        )
    torch._dynamo.reset()
    compiled_train = torch.compile(m, fullgraph=True)
    _loss(compiled_train(x, mask)).backward()

    def step(f: Callable[..., Any]) -> object:
        loss = _loss(f(x, mask))
        loss.backward()
        return loss

    train = _interleaved({"eager": lambda: step(m), "compiled": lambda: step(compiled_train)}, samples, calls, SAMPLE_S)
    return {"config": c.label(), "forward": fwd, "train": train}


# --- report --------------------------------------------------------------------------------------------------


def _us(v: float) -> str:
    return f"{v * 1e6:.1f}"


def _ms(v: float) -> str:
    return f"{v * 1e3:.2f}"


def _signed_us(v: float) -> str:
    return f"{v * 1e6:+.0f} us"


def render(result: Dict[str, Any]) -> str:
    lines: List[str] = []
    if "traced" in result:
        with_aoti = any(r.get("aoti_compile_s") is not None for r in result["traced"])
        aoti_head = " AOTInductor package ms (x eager) |" if with_aoti else ""
        lines += [
            "| config | case | mode | eager ms | compiled ms (x eager) | exported ms (x eager) |"
            + aoti_head
            + " spread (min-max ms) |",
            "|---|---|---|---|---|---|---|" + ("---|" if with_aoti else ""),
        ]

        def versus(t: Dict[str, Any], k: str) -> str:
            if k not in t:
                return "-"
            v, e = t[k]["median"], t["eager"]["median"]
            return f"{_ms(v)} ({v / e:.2f}x; min {t[k]['min'] / t['eager']['min']:.2f}x; {_signed_us(v - e)})"

        for r in result["traced"]:
            for mode in ("forward", "train"):
                t = r[mode]
                spread = "; ".join(f"{k} {_ms(v['min'])}-{_ms(v['max'])}" for k, v in t.items())
                cells = [versus(t, "compiled"), versus(t, "exported")] + ([versus(t, "aoti")] if with_aoti else [])
                lines.append(
                    f"| {r['config']} | {r['case']} | {mode} | {_ms(t['eager']['median'])} | "
                    + " | ".join(cells)
                    + f" | {spread} |"
                )
        lines += [
            "",
            "| config | case | compile (forward) s | compile (train) s | export s |"
            + (" AOTInductor compile s |" if with_aoti else ""),
            "|---|---|---|---|---|" + ("---|" if with_aoti else ""),
        ]
        for r in result["traced"]:
            aoti_s = r.get("aoti_compile_s")
            lines.append(
                f"| {r['config']} | {r['case']} | {r['compile_forward_s']:.1f} | {r['compile_train_s']:.1f} | "
                f"{r['export_s']:.1f} |" + (f" {aoti_s:.1f} |" if with_aoti and aoti_s is not None else "")
            )
        lines.append("")
    if "floor" in result:
        f = result["floor"]
        lines += [
            f"Torch's own per-call cost (a one-op module, x * w, on the {f['config']} inputs (x, mask)):",
            "",
            "| mode | eager us | compiled us (over eager) | exported us (over eager) |",
            "|---|---|---|---|",
        ]
        for mode in ("forward", "train"):
            t = f[mode]
            e = t["eager"]["median"]
            cells = [
                f"{_us(t[k]['median'])} ({_signed_us(t[k]['median'] - e)})" if k in t else "-"
                for k in ("compiled", "exported")
            ]
            lines.append(f"| {mode} | {_us(e)} | {cells[0]} | {cells[1]} |")
        lines.append("")
    if "overhead" in result:
        rows = result["overhead"]["rows"]
        kernel = rows["kernel only (ext.forward)"]["median"]
        base = rows["torch.nn.LSTM"]["median"]
        lines += [
            "| participant (T=1,B=1,I=H=8, inference) | median us | min-max us | over kernel us | over torch.nn.LSTM |",
            "|---|---|---|---|---|",
        ]
        for name, v in rows.items():
            lines.append(
                f"| {name} | {_us(v['median'])} | {_us(v['min'])}-{_us(v['max'])} | {_us(v['median'] - kernel)} | "
                f"{_us(v['median'] - base)} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lstm_bridge.bench.traced", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=None, help="comma-separated bench configs (default: small)")
    p.add_argument(
        "--shape",
        action="append",
        default=None,
        metavar="T,B,I,H",
        help="a size of your own (repeatable, one layer, one direction); alone it replaces the default config, "
        "with --configs it adds to it",
    )
    p.add_argument("--only", choices=("traced", "overhead"), default=None, help="one table only")
    p.add_argument("--samples", type=int, default=7, help="interleaved samples per participant")
    p.add_argument("--quick", action="store_true", help="toy sizes and few samples (smoke test)")
    p.add_argument("--json", default=None, help="also write the raw numbers here")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="cpu", help="cpu: process CPU time (default); wall")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the traced table")
    p.add_argument(
        "--aoti",
        action="store_true",
        help="also time the exported program as an AOTInductor package (forward; compiles C++, ~10 s a case)",
    )
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    global _clock
    _clock = CLOCKS[a.clock]
    table = QUICK_CONFIGS if a.quick else CONFIGS
    try:
        configs = select_configs(a.configs, a.shape, table, ["small"])
    except ValueError as exc:
        p.error(str(exc))
    shapes = configs[len(configs) - len(a.shape or []) :]  # (select_configs puts them last)
    if any(c.layers != 1 or c.bidirectional for c in shapes):
        p.error("--shape here is T,B,I,H: the traced cases are one-layer, one-direction layers")
    samples = 2 if a.quick else a.samples
    global SAMPLE_S
    SAMPLE_S = 0.0 if a.quick else SAMPLE_S
    result: Dict[str, Any] = {"command": " ".join(["python -m lstm_bridge.bench.traced", *(argv or sys.argv[1:])])}
    result["time_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["threads"] = torch.get_num_threads()
    result["clock"] = a.clock
    if a.only in (None, "traced"):
        result["traced"] = measure_traced(configs, samples=samples, calls=1 if a.quick else 3, aoti=a.aoti)
        result["floor"] = measure_floor(configs[0], samples=samples, calls=1 if a.quick else 3)
    if a.only in (None, "overhead"):
        result["overhead"] = measure_overhead(samples=samples * 2, calls=20 if a.quick else 300)
    print(f"{result['command']} - {result['time_utc']}, {result['threads']} threads, {a.clock} clock\n")
    print(render(result))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
