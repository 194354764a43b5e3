"""The participants a benchmark row times: ours, ``torch.nn.LSTM`` (``GRU`` / ``RNN`` for the family rows),
optional TF/Keras and MindSpore, and the ``torch.mm`` sgemm ceiling; each is a ``Workload`` with ``forward()``
and ``train()``.

The LSTM rows' TF/Keras and MindSpore participants run in this process (when importable here). The recurrent
family rows' framework participants run in a process of their own (:mod:`lstm_bridge.bench.framework_worker`),
each with the interpreter that has the framework: ``keras3-tf`` (Keras 3, TensorFlow backend), ``keras3-torch``
(Keras 3, torch backend) and ``mindspore``. The interpreter is ``$LSTM_BRIDGE_BENCH_KERAS_PYTHON`` /
``$LSTM_BRIDGE_BENCH_MS_PYTHON``, else this one when it can import the framework, else the repository's
``.golden-venvs/tf`` / ``.golden-venvs/ms`` (what ``make golden`` uses); ``keras3-torch`` borrows this
process's torch when the Keras interpreter has none. The worker times each call itself (:class:`CallTime`),
so the pipe's round trip is not counted.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .configs import FAMILY_VARIANTS, MS_FRONT_END, Config, FamilyVariant, Inputs, keras_options


@dataclasses.dataclass
class Workload:
    """Something to time: ``forward()`` (inference) and ``train()`` (forward + backward of the output sum).

    ``zero_grad()`` drops gradients (the memory probe calls it before measuring); ``path()`` says which
    engine path ran last (``"native"``/``"torch"`` for ours, the library's name for the others);
    ``module``: the torch module timed (ours and the torch baseline; None for the other participants).
    """

    name: str
    forward: Callable[[], object]  # (a worker participant returns its own CallTime)
    train: Callable[[], object]
    zero_grad: Callable[[], None]
    path: Callable[[], Optional[str]]
    module: Optional[torch.nn.Module] = None


def _torch_module_workload(
    name: str,
    module: torch.nn.Module,
    call: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    path: Callable[[], Optional[str]],
) -> Workload:
    def zero_grad() -> None:
        for p in module.parameters():
            p.grad = None

    def forward() -> None:
        with torch.no_grad():
            call(x)

    def train() -> None:
        zero_grad()
        call(x).sum().backward()

    return Workload(name, forward, train, zero_grad, path, module)


def _ours_family(cfg: Config, spec: FamilyVariant, data: Inputs) -> Workload:
    """A GRU / simple-RNN row of ours: Keras ``GRU``/``SimpleRNN`` (stacked, optionally ``Bidirectional``)
    or MindSpore ``GRU``/``RNN``, all ``return_sequences`` / batch-first ``(B, T, D*H)``."""
    from .. import keras as K, mindspore as M
    from ..engine import backend

    options = dict(spec.options)
    bidirectional = cfg.directions(spec.name) == 2
    if spec.front_end == "mindspore":
        net_class = M.GRU if spec.cell == "gru" else M.RNN
        if spec.cell == "rnn":
            options["nonlinearity"] = spec.nonlinearity
        net = net_class(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional, **options)
        lengths = data.lengths if spec.seq_length else None

        def call_ms(x: torch.Tensor) -> torch.Tensor:
            return net(x, seq_length=lengths)[0]

        return _torch_module_workload("ours", net, call_ms, data.x, lambda: backend.last_used)
    layer_class = K.GRU if spec.cell == "gru" else K.SimpleRNN
    if spec.cell == "rnn":
        options.setdefault("activation", spec.nonlinearity)
    layers = []
    for _ in range(cfg.layers):
        layer = layer_class(cfg.H, return_sequences=True, **options)
        layers.append(K.Bidirectional(layer) if bidirectional else layer)
    stack = torch.nn.ModuleList(layers)
    mask = data.mask if spec.mask else None
    training = True if spec.training else None

    def call_keras(x: torch.Tensor) -> torch.Tensor:
        y = x
        for lay in stack:
            y = lay(y, mask=mask, training=training)
        return y

    with torch.no_grad():
        call_keras(data.x)  # Keras layers build on their first call: create the parameters now
    return _torch_module_workload("ours", stack, call_keras, data.x, lambda: backend.last_used)


def _ours(cfg: Config, variant: str, data: Inputs) -> Workload:
    from .. import keras as K, mindspore as M
    from ..engine import backend

    if variant in FAMILY_VARIANTS:
        return _ours_family(cfg, FAMILY_VARIANTS[variant], data)
    bidirectional = cfg.directions(variant) == 2
    if variant in MS_FRONT_END:
        numerics = "mindspore-cpu-bits" if variant == "ms_bits" else "mindspore-cpu"
        net = M.LSTM(
            cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional, numerics=numerics
        )
        lengths = data.lengths if variant == "seq_length" else None

        def call_ms(x: torch.Tensor) -> torch.Tensor:
            return net(x, seq_length=lengths)[0]

        return _torch_module_workload("ours", net, call_ms, data.x, lambda: backend.last_used)
    layers = []
    for _ in range(cfg.layers):
        layer = K.LSTM(cfg.H, return_sequences=True, **keras_options(variant))
        layers.append(K.Bidirectional(layer) if bidirectional else layer)
    stack = torch.nn.ModuleList(layers)
    mask = data.mask if variant == "mask" else None
    training = True if variant == "recurrent_dropout" else None

    def call_keras(x: torch.Tensor) -> torch.Tensor:
        y = x
        for lay in stack:
            y = lay(y, mask=mask, training=training)
        return y

    with torch.no_grad():
        call_keras(data.x)  # Keras layers build on their first call: create the parameters now
    return _torch_module_workload("ours", stack, call_keras, data.x, lambda: backend.last_used)


def _reference(cfg: Config, variant: str, data: Inputs) -> Workload:
    """The torch module's standard layer of the same size: ``torch.nn.LSTM``, or ``torch.nn.GRU`` /
    ``torch.nn.RNN(nonlinearity=...)`` for the family rows (see ``configs.baseline``)."""
    bidirectional = cfg.directions(variant) == 2
    spec = FAMILY_VARIANTS.get(variant)
    ref: torch.nn.Module
    if spec is None:
        ref = torch.nn.LSTM(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional)
    elif spec.cell == "gru":
        ref = torch.nn.GRU(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional)
    else:
        ref = torch.nn.RNN(
            cfg.I,
            cfg.H,
            num_layers=cfg.layers,
            nonlinearity=spec.nonlinearity,
            batch_first=True,
            bidirectional=bidirectional,
        )
    return _torch_module_workload("torch", ref, lambda x: ref(x)[0], data.x, lambda: "oneDNN/aten")


# Variants each optional framework can express (the others are left out of its column).
_TF_VARIANTS = ("standard", "hard_sigmoid", "mask", "recurrent_dropout", "go_backwards", "bidirectional")
_MS_VARIANTS = ("standard", "ms_standard", "ms_bits", "seq_length", "bidirectional")


def _tensorflow(cfg: Config, variant: str, data: Inputs, threads: int) -> Optional[Workload]:
    """Real TF/Keras (``tf.function``), or None when the variant has no Keras form. Raises ImportError."""
    if variant not in _TF_VARIANTS:
        return None
    import tensorflow as tf  # noqa: WPS433 (optional, never a dependency)

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by an earlier workload: the setting stands
        pass
    keras = tf.keras
    bidirectional = cfg.directions(variant) == 2
    layers = []
    for _ in range(cfg.layers):
        layer = keras.layers.LSTM(cfg.H, return_sequences=True, **keras_options(variant))
        layers.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
    x = tf.constant(data.x.numpy())
    mask = tf.constant(data.mask.numpy()) if variant == "mask" else None
    training = variant == "recurrent_dropout"

    def call():
        y = x
        for lay in layers:
            y = lay(y, mask=mask, training=training)
        return y

    call()  # build the variables eagerly
    variables = [v for lay in layers for v in lay.trainable_variables]
    fwd = tf.function(call)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(call())
        return tape.gradient(loss, variables)

    def forward() -> None:
        fwd()

    def train() -> None:
        step()

    label = f"tf {tf.__version__} / keras {getattr(keras, '__version__', '?')}"
    return Workload("tensorflow", forward, train, lambda: None, lambda: label)


def _mindspore(cfg: Config, variant: str, data: Inputs) -> Optional[Workload]:
    """Real MindSpore ``nn.LSTM`` in graph mode (default runtime threads), or None. Raises ImportError."""
    if variant not in _MS_VARIANTS:
        return None
    import mindspore as ms  # noqa: WPS433 (optional, never a dependency)
    from mindspore import nn

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    net = nn.LSTM(
        cfg.I, cfg.H, num_layers=cfg.layers, has_bias=True, batch_first=True, bidirectional=cfg.directions(variant) == 2
    )
    x = ms.Tensor(data.x.numpy())
    seq = ms.Tensor(data.lengths.numpy()) if variant == "seq_length" else None

    class Forward(nn.Cell):
        def __init__(self, inner, lengths):
            super().__init__()
            self.inner = inner
            self.lengths = lengths

        def construct(self, inp):
            if self.lengths is None:
                out, _ = self.inner(inp)
            else:
                out, _ = self.inner(inp, seq_length=self.lengths)
            return out

    class Loss(Forward):
        def construct(self, inp):
            return super().construct(inp).sum()

    fwd = Forward(net, seq)
    grad_fn = ms.value_and_grad(Loss(net, seq), None, net.trainable_params())

    def forward() -> None:
        fwd(x).asnumpy()  # synchronise

    def train() -> None:
        loss, _ = grad_fn(x)
        loss.asnumpy()  # synchronise

    return Workload("mindspore", forward, train, lambda: None, lambda: f"mindspore {ms.__version__} graph")


# --- the recurrent family's framework participants, each in a process of its own -------------------------


class CallTime(float):
    """A participant's own measurement of one call, in seconds (a worker process times its call itself):
    :func:`lstm_bridge.bench.timing.measure` takes it instead of timing the call from outside."""


#: child-process frameworks of the family rows -> the modules their interpreter must import
CHILD_FRAMEWORKS: Dict[str, Tuple[str, ...]] = {
    "keras3-tf": ("keras", "tensorflow"),
    "keras3-torch": ("keras", "torch"),
    "mindspore": ("mindspore",),
}
#: the family variants each child framework expresses (Keras 3: the Keras rows; MindSpore: its nn.GRU / nn.RNN
#: rows). Keras 3's ``hard_sigmoid`` is relu6(x + 3) / 6, not the Keras-2 function of our row: same work.
_CHILD_VARIANTS: Dict[str, Tuple[str, ...]] = {
    "keras3-tf": tuple(n for n, v in FAMILY_VARIANTS.items() if v.front_end == "keras"),
    "keras3-torch": tuple(n for n, v in FAMILY_VARIANTS.items() if v.front_end == "keras"),
    "mindspore": tuple(n for n, v in FAMILY_VARIANTS.items() if v.front_end == "mindspore"),
}
_PYTHON_ENV = {
    "keras3-tf": "LSTM_BRIDGE_BENCH_KERAS_PYTHON",
    "keras3-torch": "LSTM_BRIDGE_BENCH_KERAS_PYTHON",
    "mindspore": "LSTM_BRIDGE_BENCH_MS_PYTHON",
}
_GOLDEN_VENV = {"keras3-tf": "tf", "keras3-torch": "tf", "mindspore": "ms"}
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "framework_worker.py")


def _torch_site() -> str:
    """The directory this process imports torch from (lent to a Keras interpreter without torch)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(torch.__file__)))


def _can_import(python: str, modules: Tuple[str, ...], extra_path: str) -> bool:
    code = (
        "import importlib.util, os, sys; sys.path.extend(p for p in sys.argv[1].split(os.pathsep) if p); "
        "sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[2:]) else 1)"
    )
    try:
        done = subprocess.run([python, "-c", code, extra_path, *modules], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def child_python(framework: str) -> Optional[Tuple[str, str]]:
    """``(interpreter, extra sys.path)`` that runs ``framework``'s worker, or None when none is found (see the
    module docstring for the search order)."""
    modules = CHILD_FRAMEWORKS[framework]
    explicit = os.environ.get(_PYTHON_ENV[framework])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
    golden = os.path.join(root, ".golden-venvs", _GOLDEN_VENV[framework], "bin", "python")
    candidates = [explicit] if explicit else [sys.executable, golden]
    for python in candidates:
        if not python or not os.path.exists(python):
            continue
        for extra in ("", _torch_site()) if "torch" in modules else ("",):
            if _can_import(python, modules, extra):
                return python, extra
    return None


class _Worker:
    """One framework worker process (:mod:`lstm_bridge.bench.framework_worker`) and its pipes."""

    def __init__(self, framework: str, spec: Dict[str, Any], data: Inputs) -> None:
        found = child_python(framework)
        if found is None:
            raise ImportError(
                f"no Python that imports {' and '.join(CHILD_FRAMEWORKS[framework])} was found for {framework} "
                f"(set {_PYTHON_ENV[framework]})"
            )
        python, extra = found
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", LSTM_BRIDGE_WORKER_EXTRA_PATH=extra)
        self._log = tempfile.TemporaryFile()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "inputs.npz")
            np.savez(path, x=data.x.numpy(), mask=data.mask.numpy(), lengths=data.lengths.numpy())
            self.proc = subprocess.Popen(
                [python, _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=env,
                text=True,
                bufsize=1,
            )
            answer = json.loads(self._exchange(json.dumps(dict(spec, data=path))))
        if not answer.get("ok"):
            self.close()
            raise RuntimeError(answer.get("error", "the worker failed"))
        self.label = str(answer["label"])

    def _exchange(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        reply = self.proc.stdout.readline()
        if not reply:
            self._log.seek(0)
            tail = self._log.read().decode(errors="replace").strip().splitlines()[-3:]
            code = self.proc.wait()
            raise RuntimeError(f"the worker exited with code {code}: {' | '.join(tail)[:400]}")
        return reply.strip()

    def call(self, command: str) -> CallTime:
        return CallTime(float(self._exchange(command)))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("q\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, AssertionError):
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


def _child_framework(framework: str, cfg: Config, variant: str, data: Inputs, threads: int) -> Optional[Workload]:
    """A family row's ``framework`` participant in its own process, or None when it cannot express ``variant``.
    Raises ImportError when no interpreter has the framework."""
    if variant not in _CHILD_VARIANTS[framework]:
        return None
    spec_v = FAMILY_VARIANTS[variant]
    options = dict(spec_v.options)
    if spec_v.cell == "rnn" and framework != "mindspore":
        options.setdefault("activation", spec_v.nonlinearity)
    spec = {
        "framework": framework,
        "cell": spec_v.cell,
        "layers": cfg.layers,
        "H": cfg.H,
        "bidirectional": cfg.directions(variant) == 2,
        "options": options,
        "mask": spec_v.mask,
        "training": spec_v.training,
        "seq_length": spec_v.seq_length,
        "nonlinearity": spec_v.nonlinearity,
        "threads": threads,
    }
    worker = _Worker(framework, spec, data)
    workers: List[_Worker] = [worker]  # the closures keep the process alive as long as the workload
    return Workload(
        framework,
        lambda: workers[0].call("f"),
        lambda: workers[0].call("t"),
        lambda: None,
        lambda: workers[0].label,
    )


def build_workload(impl: str, cfg: Config, variant: str, data: Inputs, threads: int = 2) -> Optional[Workload]:
    """``impl`` = ``"ours"`` | ``"torch"`` | ``"tensorflow"`` | ``"mindspore"`` | ``"keras3-tf"`` |
    ``"keras3-torch"``; None if it cannot express ``variant``. The family rows' frameworks run in worker
    processes (:data:`CHILD_FRAMEWORKS`)."""
    if impl == "ours":
        return _ours(cfg, variant, data)
    if impl == "torch":
        return _reference(cfg, variant, data)
    if impl in CHILD_FRAMEWORKS and variant in FAMILY_VARIANTS:
        return _child_framework(impl, cfg, variant, data, threads)
    if impl == "tensorflow":
        return _tensorflow(cfg, variant, data, threads)
    if impl == "mindspore":
        return _mindspore(cfg, variant, data)
    if impl in CHILD_FRAMEWORKS:  # keras3-tf / keras3-torch: family rows only
        return None
    raise ValueError(
        f"impl must be one of ours, torch, tensorflow, mindspore, keras3-tf, keras3-torch; received {impl!r}"
    )


SGEMM = "sgemm"


def gemm_workload(m: int, k: int, n: int) -> Tuple[Workload, float]:
    """A float32 ``(m, k) @ (k, n)`` product as a timing participant, and its FLOPs ``2 m k n``: oneDNN's
    matmul where this torch has it (``torch.ops.mkldnn._linear_pointwise``), else ``torch.mm``. Not
    ``torch.mm`` first: on CPUs where MKL's sgemm runs without AVX-512 (AMD) it is about half the machine's
    GEMM speed, and a ceiling that both oneDNN's LSTM and our kernel exceed measures nothing."""
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(m, k, generator=gen)
    b = torch.randn(k, n, generator=gen)
    linear = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None  # type: ignore[no-untyped-call]
    if linear is not None:
        w = b.t().contiguous()  # (n, k): the weight layout oneDNN's linear takes

        def call() -> None:
            linear(a, w, None, "none", [], "")

        name = "oneDNN matmul"
    else:

        def call() -> None:
            torch.mm(a, b)

        name = "torch.mm"
    return Workload(SGEMM, call, call, lambda: None, lambda: name), 2.0 * m * k * n
