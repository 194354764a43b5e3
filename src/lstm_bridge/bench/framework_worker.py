"""A benchmark participant in its own process: Keras 3 (TensorFlow or torch backend) or MindSpore timing one
GRU / simple-RNN workload, driven over its stdin/stdout by :mod:`lstm_bridge.bench.participants`.

Run as a script by another interpreter (the one that has the framework: ``python framework_worker.py``); it
imports only the standard library, NumPy and the framework (never ``lstm_bridge``), so the framework's
environment needs nothing of ours. A separate process per framework is what lets Keras 3 run on two backends
in one benchmark (``KERAS_BACKEND`` is read once, at ``import keras``) and keeps each framework's thread
pools out of the benchmark process.

Protocol (one line each way, UTF-8):

1. the parent sends the spec as JSON: ``framework`` (``"keras3-tf"`` | ``"keras3-torch"`` | ``"mindspore"``),
   ``cell`` (``"gru"`` | ``"rnn"``), ``layers``, ``H``, ``bidirectional``, ``options`` (layer keyword
   arguments), ``mask``, ``training``, ``seq_length``, ``threads``, ``data`` (an ``.npz`` with ``x (B, T, I)``
   float32, ``mask (B, T)`` bool, ``lengths (B,)`` int32);
2. the worker builds the layers, runs one forward and one train step, and answers
   ``{"ok": true, "label": "..."}`` or ``{"ok": false, "error": "..."}``;
3. then for each ``f`` (forward) or ``t`` (train step) line it runs one call and answers the call's own
   duration in seconds (``time.perf_counter`` around the call, the synchronising read included); ``q`` ends it.

A train step is the forward pass and the gradients of ``sum(output)`` with respect to every trainable weight.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Dict, Tuple


def _keras(spec: Dict[str, Any], data: Any) -> Tuple[Callable[[], None], Callable[[], None], str]:
    backend = "tensorflow" if spec["framework"] == "keras3-tf" else "torch"
    os.environ["KERAS_BACKEND"] = backend
    threads = int(spec["threads"])
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    else:
        import torch

        torch.set_num_threads(threads)
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(f"KERAS_BACKEND={backend} but keras runs on {keras.backend.backend()}")
    cls = keras.layers.GRU if spec["cell"] == "gru" else keras.layers.SimpleRNN
    layers = []
    for _ in range(int(spec["layers"])):
        layer = cls(int(spec["H"]), return_sequences=True, **spec["options"])
        layers.append(keras.layers.Bidirectional(layer) if spec["bidirectional"] else layer)
    training = bool(spec["training"])
    label = f"keras {keras.__version__} / "
    if backend == "tensorflow":
        x = tf.constant(data["x"])
        mask = tf.constant(data["mask"]) if spec["mask"] else None

        def call() -> Any:
            y = x
            for lay in layers:
                y = lay(y, mask=mask, training=training)
            return y

        call()  # build the variables eagerly
        variables = [v.value for lay in layers for v in lay.trainable_weights]
        fwd = tf.function(call)

        @tf.function
        def step() -> Any:
            with tf.GradientTape() as tape:
                tape.watch(variables)
                loss = tf.reduce_sum(call())
            return tape.gradient(loss, variables)

        def forward() -> None:
            fwd().numpy()

        def train() -> None:
            [g.numpy() for g in step() if g is not None]

        if not variables or any(g is None for g in step()):  # a train step must reach every weight
            raise RuntimeError("the GradientTape gives no gradient for some Keras weights")
        return forward, train, label + f"tf {tf.__version__} (tf.function)"
    xt = torch.from_numpy(data["x"])
    mask_t = torch.from_numpy(data["mask"]) if spec["mask"] else None

    def call_t() -> Any:
        y = xt
        for lay in layers:
            y = lay(y, mask=mask_t, training=training)
        return y

    with torch.no_grad():
        call_t()  # build
    params = [v.value for lay in layers for v in lay.trainable_weights]

    def forward_t() -> None:
        with torch.no_grad():
            call_t()

    def train_t() -> None:
        for p in params:
            p.grad = None
        call_t().sum().backward()

    train_t()
    if not params or any(p.grad is None for p in params):  # a train step must reach every weight
        raise RuntimeError("backward() gives no gradient for some Keras weights")
    return forward_t, train_t, label + f"torch {torch.__version__} (eager)"


def _mindspore(spec: Dict[str, Any], data: Any) -> Tuple[Callable[[], None], Callable[[], None], str]:
    import mindspore as ms
    from mindspore import nn

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")  # default runtime threads, as the LSTM rows
    opts = dict(spec["options"])
    opts.pop("numerics", None)  # lstm-bridge's option: MindSpore computes its own numerics
    kw = dict(num_layers=int(spec["layers"]), has_bias=True, batch_first=True, bidirectional=spec["bidirectional"])
    I, H = int(data["x"].shape[2]), int(spec["H"])
    if spec["cell"] == "gru":
        net = nn.GRU(I, H, **kw, **opts)
    else:
        net = nn.RNN(I, H, **kw, nonlinearity=spec.get("nonlinearity", "tanh"), **opts)
    x = ms.Tensor(data["x"])
    lengths = ms.Tensor(data["lengths"]) if spec["seq_length"] else None

    class Forward(nn.Cell):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def construct(self, inp: Any) -> Any:
            if lengths is None:
                out, _ = self.inner(inp)
            else:
                out, _ = self.inner(inp, seq_length=lengths)
            return out

    class Loss(Forward):
        def construct(self, inp: Any) -> Any:
            return super().construct(inp).sum()

    fwd = Forward(net)
    grad_fn = ms.value_and_grad(Loss(net), None, net.trainable_params())

    def forward() -> None:
        fwd(x).asnumpy()  # synchronise

    def train() -> None:
        loss, _ = grad_fn(x)
        loss.asnumpy()

    return forward, train, f"mindspore {ms.__version__} (graph, default threads)"


def _answer(obj: Any) -> None:
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    sys.stdout.flush()


def main() -> int:
    extra = os.environ.get("LSTM_BRIDGE_WORKER_EXTRA_PATH")
    if extra:  # e.g. the parent's torch: after the framework's own packages, so its NumPy stays first
        sys.path.extend(p for p in extra.split(os.pathsep) if p)
    import numpy as np

    spec = json.loads(sys.stdin.readline())
    try:
        with np.load(spec["data"]) as z:
            data = {k: z[k] for k in z.files}
        build = _mindspore if spec["framework"] == "mindspore" else _keras
        forward, train, label = build(spec, data)
        forward()
        train()
    except Exception as exc:  # noqa: BLE001 (reported to the parent, which records it)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        _answer({"ok": False, "error": f"{type(exc).__name__}: {first}"})
        return 1
    _answer({"ok": True, "label": label})
    calls = {"f": forward, "t": train}
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "q":
            break
        fn = calls[cmd]
        t0 = time.perf_counter()
        fn()
        _answer(repr(time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
