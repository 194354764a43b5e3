"""How the native kernel's forward scales from 1 to 2 threads, against torch.nn.LSTM (oneDNN).

    .venv/bin/python benchmarks/thread_scaling.py 100 32 128 256 2     # T B I H threads

Prints the best of 7 forward passes (inference) of a Keras LSTM with hard_sigmoid gates (the native
path), of torch.nn.LSTM of the same size, and of the input-projection GEMM alone.
"""

import sys
import time

import torch


def best_ms(fn, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    T, B, I, H, threads = (int(v) for v in sys.argv[1:6])
    torch.set_num_threads(threads)
    from lstm_bridge.keras import LSTM

    x = torch.randn(B, T, I)
    ours = LSTM(H, recurrent_activation="hard_sigmoid", return_sequences=True)
    ours.build((B, T, I))
    ref = torch.nn.LSTM(I, H, batch_first=True)
    w = torch.randn(I, 4 * H)
    with torch.no_grad():
        ours(x)
        a, b = best_ms(lambda: ours(x)), best_ms(lambda: ref(x))
        c = best_ms(lambda: x.reshape(-1, I) @ w)
    print(
        f"threads {threads}: ours {a:.1f} ms, torch.nn.LSTM {b:.1f} ms, ratio {a / b:.2f}; input projection {c:.1f} ms"
    )


if __name__ == "__main__":
    main()
