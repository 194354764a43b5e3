"""The weight gradients of a native LSTM layer: the kernel's ``gate_weight_grad`` against oneDNN's products.

``dW_hh (4H, H)`` has gate block ``q = dZ_q^T (h_prev * m_q)`` (``m_q``: Keras's per-gate recurrent dropout
masks under ``implementation=1``, one shared mask, or none) and ``dW_ih (4H, I)`` the same with ``x`` and
the input masks. Before ``gate_weight_grad`` they were oneDNN products (``gemm.mm_tn``): one ``dZ^T h`` without
masks, four column-block products of ``M = N = H`` over ``K = T*B`` rows (plus four masked copies of
``h_prev``) with per-gate masks. Run: ``.venv/bin/python benchmarks/weight_grads.py [--threads N]`` (the
wall clock, best of 15 interleaved rounds of 3 calls; one thread: CPU time). Prints microseconds per call.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

import torch

from _kernel_bench import setup
from lstm_bridge.engine.native.gemm import mm_tn

SHAPES: Tuple[Tuple[int, int, int, int], ...] = (  # (T, B, I, H): the bench configs, then others
    (50, 16, 32, 64),
    (100, 32, 128, 256),
    (100, 64, 512, 512),
    (500, 8, 64, 128),
    (30, 64, 256, 128),
    (64, 8, 300, 300),
    (10, 256, 32, 128),
    (100, 128, 64, 64),
    (100, 32, 512, 128),
)


def best_us(fns: Dict[str, Callable[[], object]], clock: Callable[[], float], rounds: int = 15) -> Dict[str, float]:
    """Each callable's best time per call over ``rounds`` interleaved rounds of 3 calls."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            for _ in range(3):
                fn()
            best[name] = min(best[name], (clock() - start) / 3 * 1e6)
    return best


def _calls(ext: Any, T: int, B: int, I: int, H: int) -> Dict[str, Callable[[], object]]:  # noqa: E741
    """The six products of one shape: per-gate masked ``dW_hh``, plain ``dW_hh`` and ``dW_ih``, each by oneDNN
    (``gemm.mm_tn``, as before) and by the kernel. ``x`` arrives batch-first, as a Keras layer's does."""
    rows = T * B
    dz, h = torch.randn(rows, 4 * H), torch.randn(T, B, H)
    x2 = torch.randn(B, T, I).transpose(0, 1).reshape(rows, I)
    m = (torch.rand(4, B, H) > 0.25).float() / 0.75
    none = torch.empty(0)
    gates = [slice(q * H, (q + 1) * H) for q in range(4)]
    return {
        "masked_onednn": lambda: torch.cat([mm_tn(dz[:, g], (h * m[q]).reshape(rows, H)) for q, g in enumerate(gates)]),
        "masked_kernel": lambda: ext.gate_weight_grad(dz, 0, 4, H, h, m),
        "hh_onednn": lambda: mm_tn(dz, h.reshape(rows, H)),
        "hh_kernel": lambda: ext.gate_weight_grad(dz, 0, 4, H, h, none),
        "ih_onednn": lambda: mm_tn(dz, x2),
        "ih_kernel": lambda: ext.gate_weight_grad(dz, 0, 4, H, x2, none),
    }


def main() -> None:
    ext, clock, threads = setup(__doc__.splitlines()[0], default_threads=2)
    print(f"threads {threads}; microseconds per call (best of 15 rounds)")
    print(
        "| (T, B, I, H) | dW_hh per-gate masks: oneDNN x4 / kernel | dW_hh: oneDNN / kernel | dW_ih: oneDNN / kernel |"
    )
    print("|---|---|---|---|")
    for T, B, I, H in SHAPES:
        t = best_us(_calls(ext, T, B, I, H), clock)
        cells = [f"{t[a + '_onednn']:.0f} / {t[a + '_kernel']:.0f}" for a in ("masked", "hh", "ih")]
        print(f"| ({T}, {B}, {I}, {H}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
