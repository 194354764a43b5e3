"""Reduced-precision calls: when an LSTM layer runs its GEMMs in bfloat16 (or float16).

A layer call is *reduced* when its input is bfloat16/float16, or when it is float32 and CPU autocast is
enabled with a 16-bit dtype (``torch.autocast("cpu", dtype=torch.bfloat16)``). Both engine paths then
compute alike (docs/benchmarks.md, "bfloat16"):

* every GEMM (input projection, recurrent step, and in backward ``dx``, ``dW_ih``, ``dW_hh`` and the
  per-step ``dh``) takes operands rounded to the 16-bit dtype and accumulates in float32;
* the pre-activations, gates, cell state ``c_t`` and hidden state ``h_t`` between steps stay float32;
* the outputs ``(out, h_n, c_n)`` are returned in the 16-bit dtype, as ``torch.nn.LSTM`` does under
  the same autocast (it returns bfloat16 for all three);
* the native kernel's bf16 layer computes ``sigmoid`` and ``tanh`` with a rational approximation (Eigen's /
  XLA's fast float tanh, |error| < 3e-7, below bfloat16's resolution) and writes its outputs and ``dZ``
  (rounded once for the GEMMs that read it, with the bias gradient summed in float32) in bfloat16.

A float64 input is never reduced (autocast leaves float64 alone too). With autocast off and a float32
input nothing here applies: the float32 paths run unchanged, bit for bit.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["REDUCED", "reduced_dtype"]

REDUCED = (torch.bfloat16, torch.float16)
"""The 16-bit dtypes a call can be reduced to."""


def reduced_dtype(x: torch.Tensor) -> Optional[torch.dtype]:
    """The 16-bit GEMM dtype of a layer call on ``x``, or None for a full-precision call.

    ``x.dtype`` itself when it is bfloat16/float16; the autocast dtype when ``x`` is float32 and autocast
    is enabled for ``x``'s device type with a 16-bit dtype; else None.
    """
    if x.dtype in REDUCED:
        return x.dtype
    if x.dtype != torch.float32:
        return None
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return None
    dtype = torch.get_autocast_dtype(device)
    return dtype if dtype in REDUCED else None
