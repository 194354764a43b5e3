"""Probe real MindSpore's fused CPU LSTM at the bench's sizes against ``lstm_bridge.mindspore.LSTM``.

The golden fused cases (``tests/golden/mindspore.json``) are small; this probe checks the claim of
``docs/spec/mindspore_lstm.md`` §2.1 at the sizes users run: MindSpore computes oneDNN's training kind in
inference, ``numerics="mindspore-cpu-bits"`` reproduces it bit for bit under ``torch.no_grad()`` and with grad
enabled, and the default numerics are within float32 rounding. Two steps, each in the interpreter that has
its framework (nothing is written to the repository)::

    .golden-venvs/ms/bin/python tools/probe_ms_fused.py record /tmp/ms_fused.npz
    .venv/bin/python tools/probe_ms_fused.py compare /tmp/ms_fused.npz

``compare`` prints one line per (shape, numerics): the largest |difference| of output, h_n and c_n under
``torch.no_grad()`` and with grad enabled.
"""

from __future__ import annotations

import sys
from typing import Dict, List, Tuple

import numpy as np

# (T, B, I, H, bidirectional, layers): the bench's medium, large and small (2-layer bidirectional), and the
# shape sweep's (30, 64, 256, 128)
SHAPES: List[Tuple[int, int, int, int, bool, int]] = [
    (100, 32, 128, 256, False, 1),
    (100, 64, 512, 512, False, 1),
    (30, 64, 256, 128, False, 1),
    (50, 16, 32, 64, True, 2),
]


def _key(shape: Tuple[int, int, int, int, bool, int]) -> str:
    T, B, I, H, bidir, layers = shape  # noqa: E741
    return f"{T}_{B}_{I}_{H}_{int(bidir)}_{layers}"


def record(path: str) -> None:
    """Run MindSpore (CPU, PyNative, ``set_train(False)``) on seeded inputs; save inputs, weights, outputs."""
    import mindspore as ms
    from mindspore import Tensor, nn

    ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    arrays: Dict[str, np.ndarray] = {}
    for shape in SHAPES:
        T, B, I, H, bidir, layers = shape  # noqa: E741
        net = nn.LSTM(I, H, num_layers=layers, has_bias=True, batch_first=True, bidirectional=bidir)
        net.set_train(False)
        x = rng.standard_normal((B, T, I)).astype(np.float32)
        y, (h, c) = net(Tensor(x))
        key = _key(shape)
        arrays.update({f"{key}/x": x, f"{key}/y": y.asnumpy(), f"{key}/h": h.asnumpy(), f"{key}/c": c.asnumpy()})
        for p in net.trainable_params():
            arrays[f"{key}/p/{p.name}"] = p.asnumpy()
    np.savez(path, **arrays)  # type: ignore[arg-type]
    print(f"recorded {len(SHAPES)} shapes with MindSpore {ms.__version__} -> {path}")


def compare(path: str) -> None:
    """Load the recording (plain arrays, ``allow_pickle=False``) and run lstm_bridge on it."""
    import torch

    from lstm_bridge import mindspore as M

    data = np.load(path, allow_pickle=False)
    for shape in SHAPES:
        T, B, I, H, bidir, layers = shape  # noqa: E741
        key = _key(shape)
        weights = {k.split("/p/")[1]: torch.from_numpy(data[k]) for k in data.files if k.startswith(f"{key}/p/")}
        x = torch.from_numpy(data[f"{key}/x"])
        want = [torch.from_numpy(data[f"{key}/{n}"]) for n in ("y", "h", "c")]
        for numerics in ("mindspore-cpu-bits", "mindspore-cpu"):
            net = M.LSTM(I, H, num_layers=layers, batch_first=True, bidirectional=bidir, numerics=numerics)
            net.load_state_dict(weights)
            line = []
            for grad in (False, True):
                with torch.set_grad_enabled(grad):
                    y, (h, c) = net(x)
                err = max(float((got.detach() - ref).abs().max()) for got, ref in zip((y, h, c), want))
                line.append(f"{'grad' if grad else 'no_grad'} {err:.2e}")
            print(f"(T, B, I, H) = {(T, B, I, H)} bidirectional={bidir} layers={layers} {numerics}: {', '.join(line)}")


def main(argv: List[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "compare"):
        print(__doc__)
        return 2
    (record if argv[0] == "record" else compare)(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
