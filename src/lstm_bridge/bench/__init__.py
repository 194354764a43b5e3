"""The lstm-bridge benchmark suite: every LSTM variant against ``torch.nn.LSTM`` in the same process.

``python -m lstm_bridge.bench [--configs ...] [--variants ...] [--out DIR]`` (also ``lstm-bridge bench``).

What is measured (issue 5):

* **Configs** ``(T, B, I, H)``: ``small`` 50,16,32,64; ``medium`` 100,32,128,256; ``large``
  100,64,512,512; ``long`` 500,8,64,128; ``medium_2l_bidir`` = medium with 2 layers, bidirectional.
* **Variants**, all through the public front ends (so whichever engine path is active is measured;
  the path that ran, ``lstm_bridge.engine.backend.last_used``, is reported per row):

  ============== ==========================================================================
  standard        ``keras.LSTM(H, return_sequences=True)`` (sigmoid/tanh)
  ms_standard     ``mindspore.LSTM(I, H, num_layers, batch_first=True, bidirectional)``
  ms_bits         the same with ``numerics="mindspore-cpu-bits"`` (not in the default run)
  hard_sigmoid    ``keras.LSTM(..., recurrent_activation="hard_sigmoid")``
  mask            ``keras.LSTM`` called with a ``(B, T)`` mask with ~20% random holes
  seq_length      ``mindspore.LSTM`` with ``seq_length`` drawn in ``[T/2, T]`` (one row full)
  recurrent_dropout ``keras.LSTM(..., recurrent_dropout=0.25)`` called with ``training=True``
  go_backwards    ``keras.LSTM(..., go_backwards=True)``
  bidirectional   ``keras.Bidirectional(keras.LSTM(...))`` (merge ``concat``)
  ============== ==========================================================================

  On a multi-layer or bidirectional config the Keras variants are a stack of
  ``Bidirectional(LSTM(..., <option>))`` layers (the mask is given to every layer).
* **Recurrent-family variants** (not in the default run; ``--variants family`` selects them all), each
  compared with the matching torch module's standard layer instead of ``torch.nn.LSTM`` (the row's
  ``baseline`` in ``results.json``; older results without it read as ``torch.nn.LSTM``):

  ===================== ===================================================================
  gru_standard          ``keras.GRU(H, return_sequences=True)`` vs ``torch.nn.GRU``
  gru_hard_sigmoid      ``keras.GRU(..., recurrent_activation="hard_sigmoid")``
  gru_mask              ``keras.GRU`` called with the ``(B, T)`` mask with holes
  gru_reset_after_false ``keras.GRU(..., reset_after=False)`` (no torch equivalent; vs ``torch.nn.GRU``)
  gru_recurrent_dropout ``keras.GRU(..., recurrent_dropout=0.25)`` called with ``training=True``
  gru_bidirectional     ``keras.Bidirectional(keras.GRU(...))`` vs a bidirectional ``torch.nn.GRU``
  rnn_standard          ``keras.SimpleRNN(H, return_sequences=True)`` vs ``torch.nn.RNN(nonlinearity="tanh")``
  rnn_mask              ``keras.SimpleRNN`` called with the mask with holes
  ms_gru_exact          ``mindspore.GRU(..., numerics="exact")`` vs ``torch.nn.GRU``
  ms_gru_standard       ``mindspore.GRU(...)`` (default ``numerics="mindspore-cpu"``)
  ms_gru_seq_length     ``mindspore.GRU(...)`` (default numerics) with ``seq_length``
  ms_rnn_relu           ``mindspore.RNN(..., nonlinearity="relu")`` (default numerics) vs
                        ``torch.nn.RNN(nonlinearity="relu")``
  ===================== ===================================================================

* **Reference**: ``torch.nn.LSTM(I, H, num_layers, batch_first=True, bidirectional=...)`` of the same
  size (bidirectional for the ``bidirectional`` variant), standard semantics; ``torch.nn.GRU`` /
  ``torch.nn.RNN`` for the family rows.
* **Modes**: ``forward`` (under ``torch.no_grad()``, i.e. inference) and ``train`` (forward + backward
  of ``output.sum()`` with respect to the parameters; gradients are reset to ``None`` before each step).
* **Timing**: per (config, variant, mode), each participant is warmed up, then ``passes`` passes are
  run. A pass is ``reps`` rounds, each calling every participant once in alternating order (ours, torch /
  torch, ours, ...), and keeps each participant's median call time; ``reps`` is calibrated so the slowest
  participant spends about ``--target-ms`` per pass. Reported: the median of
  the per-pass medians, the ratio of each pass (ours / torch, measured back to back) and the median
  and range (spread) of these per-pass ratios. TensorFlow/Keras and MindSpore, when importable, join
  the same passes as extra participants (never required: an ``ImportError`` just leaves them out).
* **GFLOP/s**: GEMM work only: forward ``sum over layers and directions of 2 * T * B * G*H * (I_l + H)``
  (``G`` gate blocks: 4 LSTM, 3 GRU, 1 simple RNN);
  a train step counts 3x the forward (forward, input/hidden gradients, weight gradients).
  **% ceiling** divides by the sgemm ceiling measured *in the same forward passes*: a third
  participant, ``(T*B, I+H) @ (I+H, 4H)`` in float32 (a layer's GEMM work as one large GEMM; oneDNN's
  matmul where torch has it, else ``torch.mm``, whose MKL runs without AVX-512 on AMD CPUs), runs
  in every forward round, so load on the machine hits the ceiling and the LSTM alike (per pass:
  our GFLOP/s / its GFLOP/s; the train share uses the median ceiling). Each config's ceiling is
  also measured once up front (best of 3 batches) and listed.
* **Memory** (train step): measured in a forked child of a helper process (a fresh heap per
  measurement; glibc's mmap threshold pinned at 64 KiB so freed buffers go back to the OS and are not
  reused silently). The child builds the workload, runs two warm-up steps, drops the gradients, empties
  the native kernel's buffer pool (so the step's blocks are its own), resets the kernel's RSS high-water
  mark (``/proc/self/clear_refs`` = 5) and runs one train step; the peak is
  ``VmHWM`` after the step minus ``VmRSS`` before it (activations, workspaces, gradients and outputs).
  Linux only (elsewhere the column reads n/a). ``tracemalloc`` cannot see torch's allocations and
  ``ru_maxrss`` cannot be reset, hence this method.

Outputs with ``--out DIR``: ``results.md`` (the table), ``results.json`` (every per-pass number),
``results.png`` (a bar chart of the ratios; only when matplotlib is importable, otherwise a note).

Modules (one job each): ``configs`` (sizes, variants, inputs), ``participants`` (the workloads timed:
ours, torch, TF/Keras, MindSpore, the sgemm ceiling), ``timing`` (interleaved passes), ``memory`` (the
forked peak-RSS probe), ``environment`` (optional frameworks, native kernel state, run metadata),
``progress``, ``runner`` (one run: every row), ``report`` (markdown and chart), ``cli`` (``main``).
"""

from __future__ import annotations

from .cli import build_parser, main
from .configs import (
    CONFIGS,
    DEFAULT_VARIANTS,
    FAMILY_VARIANTS,
    QUICK_CONFIGS,
    VARIANTS,
    Config,
    FamilyVariant,
    Inputs,
    make_inputs,
)
from .memory import MemoryProbe
from .participants import Workload, build_workload
from .report import FAMILY_TABLE_HEADER, TABLE_HEADER, render_markdown, write_chart
from .runner import run
from .timing import TimingPlan, measure, sgemm_ceiling

__all__ = [
    "Config",
    "CONFIGS",
    "QUICK_CONFIGS",
    "VARIANTS",
    "DEFAULT_VARIANTS",
    "FAMILY_VARIANTS",
    "FamilyVariant",
    "Workload",
    "build_workload",
    "run",
    "render_markdown",
    "main",
    "build_parser",
    "Inputs",
    "make_inputs",
    "MemoryProbe",
    "TABLE_HEADER",
    "FAMILY_TABLE_HEADER",
    "TimingPlan",
    "measure",
    "sgemm_ceiling",
    "write_chart",
]
