"""Who should compute the large GEMMs around the native recurrences (``engine/native/gemm.py``): MKL's sgemm
(``torch.mm``), the kernel's micro-kernel (``ext.matmul_nt``) or oneDNN's matmul
(``torch.ops.mkldnn._linear_pointwise``), on the benchmark configs' shapes.

Run: ``.venv/bin/python benchmarks/gemm_routing.py [--threads N]`` (CPU time with one thread, else the
wall clock; best of 7 runs). Roles, for ``x (T*B, I)``, ``W_ih (S, I)``, ``dZ (T*B, S)``:

* projection ``x @ W_ih.T`` and ``dx = dZ @ W_ih`` (``gemm.mm_nt`` / ``gemm.mm_nn``);
* weight gradient ``dW_ih = dZ.T @ x`` (``gemm.mm_tn``; ``dW_hh`` has the same shape with ``I = H``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import torch

from _kernel_bench import setup

SHAPES = {  # config: (T*B, I, S = 4H * directions)
    "small": (800, 32, 256),
    "medium": (3200, 128, 1024),
    "large": (6400, 512, 2048),
    "long": (4000, 64, 512),
    "medium_2l_bidir layer 2": (3200, 512, 2048),
}


def best_ms(fn: Callable[[], object], clock: Callable[[], float], runs: int = 7) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best * 1e3


def _roles(ext: Any, x: torch.Tensor, w: torch.Tensor, dz: torch.Tensor) -> Dict[str, Dict[str, Callable[[], object]]]:
    onednn = torch.ops.mkldnn._linear_pointwise
    return {
        "x @ W_ih.T": {
            "mkl": lambda: torch.mm(x, w.t()),
            "kernel": lambda: ext.matmul_nt(x, w),
            "onednn": lambda: onednn(x, w, None, "none", [], ""),
        },
        "dZ @ W_ih": {
            "mkl": lambda: torch.mm(dz, w),
            "kernel": lambda: ext.matmul_nt(dz, w.t()),
            "onednn": lambda: onednn(dz, w.t(), None, "none", [], ""),
        },
        "dZ.T @ x": {
            "mkl": lambda: torch.mm(dz.t(), x),
            "kernel": lambda: ext.matmul_nt(dz.t(), x.t()),
            "onednn": lambda: onednn(x.t(), dz.t(), None, "none", [], "").t().contiguous(),
        },
    }


def main() -> None:
    ext, clock, threads = setup(__doc__.splitlines()[0], default_threads=1)
    print(f"threads {threads}; GFLOP/s (ms); best of 7")
    print("| shape | role | MKL torch.mm | micro-kernel | oneDNN |")
    print("|---|---|---|---|---|")
    for name, (rows, inputs, width) in SHAPES.items():
        x, w, dz = torch.randn(rows, inputs), torch.randn(width, inputs), torch.randn(rows, width)
        flop = 2.0 * rows * inputs * width
        roles = _roles(ext, x, w, dz)
        for role, impls in roles.items():
            cells = []
            for impl in ("mkl", "kernel", "onednn"):
                ms = best_ms(impls[impl], clock)
                cells.append(f"{flop / ms / 1e6:.0f} ({ms:.2f})")
            print(f"| {name} ({rows}x{inputs}x{width}) | {role} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
