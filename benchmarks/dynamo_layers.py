"""What each layer of a compiled call costs: eager, the op alone, the captured graph, dynamo, inductor.

Run: ``.venv/bin/python benchmarks/dynamo_layers.py [config ...] [--guards]`` (default ``small medium``; wall
clock, 2 threads, inference under ``torch.no_grad()``, the participants interleaved round by round). The case is
the traced bench's Keras ``LSTM(recurrent_activation="hard_sigmoid")`` with a mask (``bench.traced``):

* ``eager``: the module as it is;
* ``op``: ``torch.ops.lstm_bridge.lstm_layer`` called directly with the arguments the compiled graph passes;
* ``graph``: the FX graph dynamo captured (``fullgraph=True``), called without dynamo;
* ``dynamo``: the same graph behind dynamo (a backend that returns it): guards, the transformed frame;
* ``inductor``: ``torch.compile(fullgraph=True)``;
* ``one-op``: a module whose forward is the compiled graph's computation written out (no front end),
  compiled: the floor of a compiled call of the op.

``--guards`` times instead, in alternating processes (one compiled module per process: several compiled
variants of one module would share dynamo's cache entries), the compiled module with its guards and with
``torch.compiler.skip_all_guards_unsafe``: an upper bound for what trimming the traced path's guards can save.
docs/benchmarks.md, "Compiled and exported programs", stop 25.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

import torch

from lstm_bridge.bench import traced
from lstm_bridge.bench.configs import CONFIGS

CASE = "keras hard_sigmoid + mask"


def interleaved(participants: Dict[str, Callable[[], Any]], rounds: int, calls: int) -> Dict[str, List[float]]:
    """Per participant, ``rounds`` samples of the mean wall time of ``calls`` calls (us), order alternating."""
    for fn in participants.values():
        for _ in range(5):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in participants}
    items = list(participants.items())
    for r in range(rounds):
        for name, fn in items if r % 2 else reversed(items):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - t0) / calls * 1e6)
    return times


class _OneOp(torch.nn.Module):
    """The compiled graph's computation written as one module with no front end: the floor of a compiled
    call of the op (dynamo, its guards on this module and the wrappers, the zero states, the op)."""

    def __init__(self, kernel: torch.Tensor, recurrent: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.kernel, self.recurrent, self.bias = kernel, recurrent, bias

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        xt = x.transpose(0, 1)
        zeros = xt.new_zeros(x.shape[0], self.recurrent.shape[0])
        flags = ([1, 0], [0, 0], [0], [2, 1, 1])  # bias b_ih only; no dropout; forward; hard_sigmoid, tanh, tanh
        out = torch.ops.lstm_bridge.lstm_layer(
            xt, [self.kernel.t()], [self.recurrent.t()], [self.bias], [], flags[0], [zeros], [zeros],
            mask.t().contiguous(), [], [], flags[1], flags[2], flags[3], True, False,
        )  # fmt: skip
        return out[0].transpose(0, 1)


def _calls(config: str) -> int:
    return 300 if CONFIGS[config].T * CONFIGS[config].B * CONFIGS[config].H < 10**6 else 10


def layers(config: str) -> None:
    torch._dynamo.reset()  # a config's graph is captured static (an earlier config's sizes would make it dynamic)
    module, (x, mask), _ = traced._case(CASE, CONFIGS[config])
    captured: Dict[str, Any] = {}

    def capture(gm: torch.fx.GraphModule, example: Any) -> Any:
        captured["graph"] = gm
        return gm.forward

    with torch.no_grad():
        behind_dynamo = torch.compile(module, fullgraph=True, backend=capture)
        behind_dynamo(x, mask)
        graph = captured["graph"]
        params = dict(module.named_parameters())
        # the graph's inputs: x, the cell's kernel, the mask, its recurrent kernel and bias (dynamo's order)
        graph_args = (
            x,
            params["layer.cell.kernel"],
            mask,
            params["layer.cell.recurrent_kernel"],
            params["layer.cell.bias"],
        )
        B, H = x.shape[0], params["layer.cell.recurrent_kernel"].shape[0]
        h0, c0, valid = torch.zeros(B, H), torch.zeros(B, H), mask.t().contiguous()
        op = torch.ops.lstm_bridge.lstm_layer.default
        kernel, recurrent, bias = (
            params["layer.cell.kernel"],
            params["layer.cell.recurrent_kernel"],
            params["layer.cell.bias"],
        )

        def op_alone() -> Any:
            xt = x.transpose(0, 1)
            return op(
                xt,
                [kernel.t()],
                [recurrent.t()],
                [bias],
                [],
                [1, 0],
                [h0],
                [c0],
                valid,
                [],
                [],
                [0, 0],
                [0],
                [2, 1, 1],
                True,
                False,
            )

        # (dynamo keeps its cache on forward's code object: both compiled participants share it, the hit first)
        inductor = torch.compile(module, fullgraph=True)
        inductor(x, mask)
        one_op = torch.compile(_OneOp(kernel, recurrent, bias), fullgraph=True)
        if not torch.equal(one_op(x, mask), module(x, mask)):
            raise AssertionError("the one-op module does not compute the Keras layer")
        times = interleaved(
            {
                "eager": lambda: module(x, mask),
                "op": op_alone,
                "graph": lambda: graph(*graph_args),
                "dynamo": lambda: behind_dynamo(x, mask),
                "inductor": lambda: inductor(x, mask),
                "one-op": lambda: one_op(x, mask),
            },
            rounds=15,
            calls=_calls(config),
        )
    print(f"{config} {tuple(x.shape)}: median (min) us per call")
    for name, values in times.items():
        print(f"  {name:9s} {statistics.median(values):9.1f} ({min(values):.1f})")


def guards_child(config: str, which: str) -> None:
    module, (x, mask), _ = traced._case(CASE, CONFIGS[config])
    options = {"guard_filter_fn": torch.compiler.skip_all_guards_unsafe} if which == "none" else {}
    with torch.no_grad():
        compiled = torch.compile(module, fullgraph=True, options=options)
        compiled(x, mask)
        times = interleaved({"eager": lambda: module(x, mask), which: lambda: compiled(x, mask)}, 25, _calls(config))
    ratios = [c / e for c, e in zip(times[which], times["eager"])]
    print(f"  guards={which:8s} compiled / eager: median {statistics.median(ratios):.3f} (min {min(ratios):.3f})")


def main(argv: List[str]) -> None:
    torch.set_num_threads(2)
    if argv[:1] == ["--child"]:
        guards_child(argv[1], argv[2])
        return
    configs = [a for a in argv if not a.startswith("--")] or ["small", "medium"]
    for config in configs:
        if "--guards" in argv:
            print(f"{config}: compiled with and without guards, alternating processes")
            for which in ("default", "none") * 3:
                subprocess.run([sys.executable, __file__, "--child", config, which], check=True)
        else:
            layers(config)


if __name__ == "__main__":
    main(sys.argv[1:])
