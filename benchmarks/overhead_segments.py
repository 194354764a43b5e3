"""Where the per-call time of a tiny planned LSTM call goes: each layer of the call path timed on its own.

Run: ``.venv/bin/python benchmarks/overhead_segments.py`` (CPU time, one thread, min/median of 7 runs of
1000 calls; T=1, B=1, I=H=8, inference under ``torch.no_grad()``). Within each group a row includes the rows
above it, so the differences are the cost of one layer of the call path (docs/benchmarks.md, "Compiled and
exported programs, and per-call overhead"):

* Keras ``LSTM(8, recurrent_activation="hard_sigmoid")``: the kernel's recurrence on a prepared projection
  (``ext.forward``), then the native entry (``function.infer``: the projection GEMM and the kernel), the call
  plan (``LayerPlan.run``), the whole Keras call;
* MindSpore ``LSTM(8, 8, batch_first=True)`` with ``seq_length`` (the native kernel, MindSpore's CPU
  activations, a step mask): the kernel, the native entry, the layer plan (``LayerPlan.run_one``: the bias
  sum ``b_ih + b_hh`` and the ``(1, B, H)`` state views), the net's planned call (``_planned``: the plan
  key, the ``seq_length`` mask) and the whole call (``LSTM.__call__``);
* MindSpore without ``seq_length`` (standard LSTM: oneDNN's ``torch.lstm``, MindSpore's bits): bare
  ``torch.lstm``, then the MindSpore call; ``torch.nn.LSTM`` for reference.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, Tuple

import torch

import lstm_bridge.keras as K
import lstm_bridge.mindspore as M
from lstm_bridge.engine import MaskedOutput, callplan
from lstm_bridge.engine.native import checks, function


def timed(fn: Callable[[], Any], calls: int = 1000) -> Tuple[float, float]:
    """(min, median) microseconds per call over 7 runs of ``calls`` calls (CPU time of this process)."""
    for _ in range(100):
        fn()
    runs = []
    for _ in range(7):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        runs.append((time.process_time() - t0) / calls * 1e6)
    return min(runs), statistics.median(runs)


def _kernel(plan: Any, xp: torch.Tensor, w_hh: torch.Tensor, h0: torch.Tensor, valid: Any) -> Callable[[], Any]:
    masks = function.kernel_masks(valid, [None], [None])
    rec = masks.recurrent_args(plan)
    kernel_valid = masks.valid_arg()
    bias = [plan.empty()]
    return lambda: plan.ext.forward(plan.cfg, xp, [w_hh], [h0], [h0], kernel_valid, rec, bias)


def _infer(plan: Any, xt: torch.Tensor, w: Any, h0: torch.Tensor, valid: Any) -> Callable[[], Any]:
    masks = function.kernel_masks(valid, [None], [None])
    rec = masks.recurrent_args(plan)
    kernel_valid = masks.valid_arg()
    bias = [function.kernel_bias(plan, w.b_ih, w.b_hh)]
    return lambda: function.infer(plan, xt, (w.w_ih,), [w.w_hh], bias, [h0], [h0], kernel_valid, rec)


def _plan_of(semantics: Any) -> Any:
    """The native ``Plan`` of a one-direction, H=8 float32 inference call with these semantics."""
    acts = semantics.activations
    ids = [int(checks.native_activation_id(f) or 0) for f in (acts.gate, acts.candidate, acts.cell)]
    carry = semantics.masked_output is MaskedOutput.CARRY
    return function.make_plan([8], [False], ids, carry, torch.float32, False)


def main() -> None:
    torch.set_num_threads(1)
    x = torch.randn(1, 1, 8)
    xt = x.transpose(0, 1)
    xp = torch.randn(1, 1, 32)
    lengths = torch.tensor([1], dtype=torch.int32)
    keras = K.LSTM(8, recurrent_activation="hard_sigmoid")
    ms = M.LSTM(8, 8, batch_first=True)
    reference = torch.nn.LSTM(8, 8, batch_first=True)
    rows: Dict[str, Callable[[], Any]] = {}
    with torch.no_grad():
        keras(x)
        keras(x)  # planned from here on
        ms(x, seq_length=lengths)
        ms(x, seq_length=lengths)
        ms(x)
        ms(x)

        k_entry = callplan.PlanSlot.of(keras).entry
        assert k_entry is not None and k_entry[1] is not None, "the Keras call was not planned"
        k_plan, k_weights, k_h0, k_c0 = k_entry[1], k_entry[2], k_entry[3], k_entry[4]
        w = k_weights[0]
        kp = _plan_of(keras.prepare(x).semantics)
        rows["keras: kernel (ext.forward)"] = _kernel(kp, xp, w.w_hh, k_h0[0], None)
        rows["keras: + projection (function.infer)"] = _infer(kp, xt, w, k_h0[0], None)
        rows["keras: + call plan (LayerPlan.run)"] = lambda: k_plan.run(xt, k_weights, k_h0, k_c0, None)
        rows["keras: call"] = lambda: keras(x)

        mp = _plan_of(ms._semantics(True, torch.float32))
        m_w = ms.layer_weights(torch.float32)[0][0]
        valid = torch.ones(1, 1, dtype=torch.bool)
        zeros = torch.zeros(1, 8)
        rows["mindspore seq_length: kernel (ext.forward)"] = _kernel(mp, xp, m_w.w_hh, zeros, valid)
        rows["mindspore seq_length: + projection (function.infer)"] = _infer(mp, xt, m_w, zeros, valid)
        m_plan = callplan.plan_layer(
            xt, [m_w], [zeros], [zeros], reverse=[False], valid=valid, semantics=ms._semantics(True, torch.float32)
        )
        assert m_plan is not None and m_plan.run_one is not None, "the MindSpore layer was not planned"
        run_one, m_states, byte_valid = m_plan.run_one, [zeros], valid.to(torch.uint8)
        rows["mindspore seq_length: + layer plan (LayerPlan.run_one)"] = lambda: run_one(
            xt, m_states, m_states, byte_valid
        )
        rows["mindspore seq_length: + planned call (_planned)"] = lambda: ms._planned(x, lengths)
        rows["mindspore seq_length: call"] = lambda: ms(x, seq_length=lengths)

        params = list(ms.parameters())
        hx = (torch.zeros(1, 1, 8), torch.zeros(1, 1, 8))
        rows["mindspore: torch.lstm (oneDNN)"] = lambda: torch.lstm(xt, hx, params, True, 1, 0.0, False, False, False)
        rows["mindspore: call"] = lambda: ms(x)
        rows["torch.nn.LSTM call"] = lambda: reference(x)
        for name, fn in rows.items():
            best, median = timed(fn)
            print(f"{name:56s} min {best:7.1f} us   median {median:7.1f} us")


if __name__ == "__main__":
    main()
