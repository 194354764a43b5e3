"""Where the per-call time of a tiny Keras LSTM goes: each layer of the call path timed on its own.

Run: ``.venv/bin/python benchmarks/overhead_segments.py`` (CPU time, one thread, min/median of 7 runs of
1000 calls; T=1, B=1, I=H=8, inference). Each row includes the rows above it: the differences are the cost
of one layer of the call path (docs/benchmarks.md, "Compiled and exported programs, and per-call overhead").
"""

from __future__ import annotations

import statistics
import time

import torch

import lstm_bridge.keras as K
import lstm_bridge.mindspore as M
from lstm_bridge.engine import native, run_layer
from lstm_bridge.engine.native import function
from lstm_bridge.engine.native.plan import LayerArgs


def timed(fn, calls: int = 1000):
    for _ in range(100):
        fn()
    runs = []
    for _ in range(7):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        runs.append((time.process_time() - t0) / calls * 1e6)
    return min(runs), statistics.median(runs)


def main() -> None:
    torch.set_num_threads(1)
    x = torch.randn(1, 1, 8)
    layer = K.LSTM(8, recurrent_activation="hard_sigmoid")
    layer(x)
    ms = M.LSTM(8, 8, batch_first=True)
    reference = torch.nn.LSTM(8, 8, batch_first=True)
    lengths = torch.tensor([1], dtype=torch.int32)
    with torch.no_grad():
        call = layer.prepare(x)
        weights = [layer.cell.direction_weights()]
        w = weights[0]
        sem = call.semantics
        plan = function.make_plan([8], [False], [2, 1, 1], True, torch.float32, False)
        args = LayerArgs(call.xt, (w.w_ih,), (w.w_hh,), (w.b_ih,), (w.b_hh,), (call.h0,), (call.c0,))
        masks = function.kernel_masks(None, [None], [None])
        xp = torch.randn(1, 1, 32)
        rows = {
            "kernel (ext.forward)": lambda: plan.ext.forward(
                plan.cfg,
                xp,
                [w.w_hh],
                [call.h0],
                [call.c0],
                masks.valid_arg(),
                masks.recurrent_args(plan),
                [plan.empty()],
            ),  # fmt: skip
            "+ projection (function._run_forward)": lambda: function._run_forward(plan, args, masks),
            "function.apply": lambda: function.apply(plan, args, masks),
            "+ shape checks, plan (native.run_layer_checked)": lambda: native.run_layer_checked(
                call.xt, weights, [call.h0], [call.c0], reverse=[False], valid=None, semantics=sem, dropout=[None]
            ),
            "+ guards, selection (engine.run_layer)": lambda: run_layer(
                call.xt, weights, [call.h0], [call.c0], reverse=[False], valid=None, semantics=sem, dropout=[None]
            ),
            "+ run_directions (keras layer.run)": lambda: layer.run(call),
            "keras layer.prepare alone": lambda: layer.prepare(x),
            "keras call": lambda: layer(x),
            "mindspore call": lambda: ms(x),
            "mindspore call with seq_length": lambda: ms(x, seq_length=lengths),
            "torch.nn.LSTM call": lambda: reference(x),
        }
        for name, fn in rows.items():
            best, median = timed(fn)
            print(f"{name:48s} min {best:7.1f} us   median {median:7.1f} us")


if __name__ == "__main__":
    main()
