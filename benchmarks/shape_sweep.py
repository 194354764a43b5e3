"""The standard Keras LSTM against torch.nn.LSTM over assorted shapes (the bench's five configs are not the only
ones users have): forward (inference) and a training step, interleaved round by round, medians.

    .venv/bin/python benchmarks/shape_sweep.py            # 2 threads, wall clock
    .venv/bin/python benchmarks/shape_sweep.py 1          # 1 thread
    .venv/bin/python benchmarks/shape_sweep.py 2 100,16,128,256 20,128,64,128   # these shapes (T,B,I,H) instead

Prints per shape ``(T, B, I, H)`` the forward and training ms of both sides, their ratio (ours / torch) and the
path the forward took (``native`` kernel or ``torch``: oneDNN's ``torch.lstm``; training runs the kernel).
"""

import sys
import time

import torch

SHAPES = [
    (20, 1, 32, 32),
    (50, 4, 16, 128),
    (100, 128, 64, 64),
    (30, 64, 256, 128),
    (200, 16, 64, 256),
    (64, 8, 300, 300),
    (10, 256, 32, 128),
    (100, 32, 512, 128),
    (400, 4, 32, 64),
    (100, 16, 64, 1024),
]


def interleaved_medians(ours, theirs, budget_s: float = 0.6):
    """Median seconds of each side over rounds that call both (about ``budget_s`` in all)."""
    for _ in range(2):
        ours()
        theirs()
    start = time.perf_counter()
    ours()
    theirs()
    rounds = max(3, min(200, int(budget_s / max(time.perf_counter() - start, 1e-6))))
    a, b = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        theirs()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    a.sort()
    b.sort()
    return a[rounds // 2], b[rounds // 2]


def measure(T: int, B: int, I: int, H: int) -> str:
    """One shape's line."""
    from lstm_bridge.engine import backend
    from lstm_bridge.keras import LSTM

    x = torch.randn(B, T, I)
    xg = x.clone().requires_grad_(True)
    ours, ref = LSTM(H, return_sequences=True), torch.nn.LSTM(I, H, batch_first=True)
    with torch.no_grad():
        ours(x)

    def fwd_ours() -> None:
        with torch.no_grad():
            ours(x)

    def fwd_ref() -> None:
        with torch.no_grad():
            ref(x)

    fo, fr = interleaved_medians(fwd_ours, fwd_ref)
    path = backend.last_used
    to, tr = interleaved_medians(lambda: ours(xg).sum().backward(), lambda: ref(xg)[0].sum().backward())
    return (
        f"T={T:4d} B={B:4d} I={I:4d} H={H:5d}  fwd {fo * 1e3:8.3f}/{fr * 1e3:8.3f} = {fo / fr:.2f} ({path})  "
        f"train {to * 1e3:8.3f}/{tr * 1e3:8.3f} = {to / tr:.2f} ({backend.last_used})"
    )


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    shapes = [tuple(int(v) for v in arg.split(",")) for arg in sys.argv[2:]] or SHAPES
    for shape in shapes:
        if len(shape) != 4:
            raise SystemExit(f"a shape is T,B,I,H; received {shape}")
        print(measure(*shape), flush=True)


if __name__ == "__main__":
    main()
