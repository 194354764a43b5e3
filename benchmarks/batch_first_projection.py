"""The input projection reading a batch-first input's time-major view in place, against the copy it replaced.

    .venv/bin/python benchmarks/batch_first_projection.py            # forward, the default shapes
    .venv/bin/python benchmarks/batch_first_projection.py --train    # training steps
    .venv/bin/python benchmarks/batch_first_projection.py --shapes 200,8,128,256 50,4,16,128

A Keras ``LSTM(recurrent_activation="hard_sigmoid")`` with a mask (the native kernel on every shape) is timed in one
process three ways, interleaved round by round with the order alternating: as it runs (``in place``), with the
projection's input reshaped to ``(T*B, I)`` first (``copy``: the path before stop 23, emulated by wrapping the
projection functions), and ``torch.nn.LSTM`` of the same size. Prints per shape ``(T, B, I, H)`` the median ms of
each and the ratio in place / copy.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch

from lstm_bridge import keras as K
from lstm_bridge.engine.native import function, projection

SHAPES = [(50, 16, 32, 64), (100, 32, 128, 256), (100, 64, 256, 512), (500, 8, 64, 128), (200, 8, 128, 256)]


def _copying(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a 3-D first tensor argument reshaped to 2-D first (the copy of the old path)."""

    def wrapped(ext: Any, a: torch.Tensor, *rest: Any) -> Any:
        return fn(ext, a.reshape(-1, a.shape[-1]) if a.dim() == 3 else a, *rest)

    return wrapped


def measure(shape: Tuple[int, int, int, int], train: bool, rounds: int) -> str:
    T, B, I, H = shape
    torch.manual_seed(0)
    x = torch.randn(B, T, I)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[: B // 2, T - T // 4 :] = False
    layer = K.LSTM(H, recurrent_activation="hard_sigmoid", return_sequences=True)
    ref = torch.nn.LSTM(I, H, batch_first=True)
    in_place = (function.matmul_nt, projection.mm_nt)
    copy = (_copying(function.matmul_nt), _copying(projection.mm_nt))

    def ours(fns: Tuple[Callable[..., Any], Callable[..., Any]]) -> Callable[[], None]:
        def call() -> None:
            function.matmul_nt, projection.mm_nt = fns  # type: ignore[assignment]
            if train:
                xg = x.clone().requires_grad_(True)
                layer(xg, mask=mask).square().mean().backward()
            else:
                with torch.no_grad():
                    layer(x, mask=mask)

        return call

    def theirs() -> None:
        if train:
            xg = x.clone().requires_grad_(True)
            ref(xg)[0].square().mean().backward()
        else:
            with torch.no_grad():
                ref(x)

    calls: Dict[str, Callable[[], None]] = {"in place": ours(in_place), "copy": ours(copy), "torch": theirs}
    try:
        for f in calls.values():
            for _ in range(3):
                f()
        t0 = time.perf_counter()
        theirs()
        n = max(1, int(0.05 / (time.perf_counter() - t0)))
        times: Dict[str, List[float]] = {k: [] for k in calls}
        for r in range(rounds):
            for k in list(calls) if r % 2 == 0 else list(reversed(list(calls))):
                t0 = time.perf_counter()
                for _ in range(n):
                    calls[k]()
                times[k].append((time.perf_counter() - t0) / n)
    finally:
        function.matmul_nt, projection.mm_nt = in_place  # type: ignore[assignment]
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return (
        f"{shape}: in place {med['in place']:.3f} ms, copy {med['copy']:.3f} ms, torch.nn.LSTM {med['torch']:.3f} ms; "
        f"in place / copy {med['in place'] / med['copy']:.3f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", action="store_true", help="training steps (forward + backward) instead of inference")
    p.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default 21)")
    p.add_argument("--shapes", nargs="*", default=None, help="T,B,I,H shapes (default: five)")
    a = p.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in a.shapes] if a.shapes else SHAPES
    print(f"{'training' if a.train else 'forward'}, {torch.get_num_threads()} threads, {a.rounds} rounds")
    for s in shapes:
        if len(s) != 4:
            p.error(f"a shape is T,B,I,H; received {s}")
        print(measure((s[0], s[1], s[2], s[3]), a.train, a.rounds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
