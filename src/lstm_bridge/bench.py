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
  hard_sigmoid    ``keras.LSTM(..., recurrent_activation="hard_sigmoid")``
  mask            ``keras.LSTM`` called with a ``(B, T)`` mask with ~20% random holes
  seq_length      ``mindspore.LSTM`` with ``seq_length`` drawn in ``[T/2, T]`` (one row full)
  recurrent_dropout ``keras.LSTM(..., recurrent_dropout=0.25)`` called with ``training=True``
  go_backwards    ``keras.LSTM(..., go_backwards=True)``
  bidirectional   ``keras.Bidirectional(keras.LSTM(...))`` (merge ``concat``)
  ============== ==========================================================================

  On a multi-layer or bidirectional config the Keras variants are a stack of
  ``Bidirectional(LSTM(..., <option>))`` layers (the mask is given to every layer).
* **Reference**: ``torch.nn.LSTM(I, H, num_layers, batch_first=True, bidirectional=...)`` of the same
  size (bidirectional for the ``bidirectional`` variant), standard semantics.
* **Modes**: ``forward`` (under ``torch.no_grad()``, i.e. inference) and ``train`` (forward + backward
  of ``output.sum()`` with respect to the parameters; gradients are reset to ``None`` before each step).
* **Timing**: per (config, variant, mode), each participant is warmed up, then ``passes`` passes are
  run. A pass is ``reps`` rounds, each calling every participant once in alternating order (ours, torch /
  torch, ours, ...), and keeps each participant's median call time; ``reps`` is calibrated so the slowest
  participant spends about ``--target-ms`` per pass. Reported: the median of
  the per-pass medians, the ratio of each pass (ours / torch, measured back to back) and the median
  and range (spread) of these per-pass ratios. TensorFlow/Keras and MindSpore, when importable, join
  the same passes as extra participants (never required: an ``ImportError`` just leaves them out).
* **GFLOP/s**: GEMM work only: forward ``sum over layers and directions of 2 * T * B * 4H * (I_l + H)``;
  a train step counts 3x the forward (forward, input/hidden gradients, weight gradients).
  **% ceiling** divides by the sgemm ceiling measured *in the same forward passes*: a third
  participant, ``torch.mm`` ``(T*B, I+H) @ (I+H, 4H)`` (a layer's GEMM work as one large GEMM), runs
  in every forward round, so load on the machine hits the ceiling and the LSTM alike (per pass:
  our GFLOP/s / its GFLOP/s; the train share uses the median ceiling). Each config's ceiling is
  also measured once up front (best of 3 batches) and listed.
* **Memory** (train step): measured in a forked child of a helper process (a fresh heap per
  measurement; glibc's mmap threshold pinned at 64 KiB so freed buffers go back to the OS and are not
  reused silently). The child builds the workload, runs two warm-up steps, drops the gradients, resets
  the kernel's RSS high-water mark (``/proc/self/clear_refs`` = 5) and runs one train step; the peak is
  ``VmHWM`` after the step minus ``VmRSS`` before it (activations, workspaces, gradients and outputs).
  Linux only (elsewhere the column reads n/a). ``tracemalloc`` cannot see torch's allocations and
  ``ru_maxrss`` cannot be reset, hence this method.

Outputs with ``--out DIR``: ``results.md`` (the table), ``results.json`` (every per-pass number),
``results.png`` (a bar chart of the ratios; only when matplotlib is importable, otherwise a note).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import gc
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

__all__ = ["Config", "CONFIGS", "QUICK_CONFIGS", "VARIANTS", "DEFAULT_VARIANTS", "Workload", "build_workload",
           "run", "render_markdown", "main"]


# --- configurations and variants ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """One benchmark size: ``T`` steps, batch ``B``, input size ``I``, hidden size ``H``, stacked layers,
    and whether the config itself is bidirectional (every variant then runs on both directions)."""

    name: str
    T: int
    B: int
    I: int  # noqa: E741 (the issue's name)
    H: int
    layers: int = 1
    bidirectional: bool = False

    def directions(self, variant: str) -> int:
        """2 when this config or the variant is bidirectional, else 1."""
        return 2 if (self.bidirectional or variant == "bidirectional") else 1

    def forward_flops(self, variant: str) -> float:
        """GEMM FLOPs of one forward: ``sum_l D * T * B * 2 * 4H * (I_l + H)``, ``I_l = I`` then ``D*H``."""
        D = self.directions(variant)
        total = 0.0
        for layer in range(self.layers):
            in_size = self.I if layer == 0 else D * self.H
            total += D * self.T * self.B * 2.0 * 4 * self.H * (in_size + self.H)
        return total

    def label(self) -> str:
        """``"name (T,B,I,H[, L layers][, bidirectional])"``."""
        extra = f", {self.layers} layers" if self.layers > 1 else ""
        extra += ", bidirectional" if self.bidirectional else ""
        return f"{self.name} ({self.T},{self.B},{self.I},{self.H}{extra})"


CONFIGS: Dict[str, Config] = {c.name: c for c in (
    Config("small", 50, 16, 32, 64),
    Config("medium", 100, 32, 128, 256),
    Config("large", 100, 64, 512, 512),
    Config("long", 500, 8, 64, 128),
    Config("medium_2l_bidir", 100, 32, 128, 256, layers=2, bidirectional=True),
)}
# --quick: the same structure at toy sizes (for smoke tests; timings are meaningless).
QUICK_CONFIGS: Dict[str, Config] = {c.name: c for c in (
    Config("small", 4, 2, 3, 4),
    Config("medium", 5, 3, 4, 6),
    Config("large", 4, 4, 6, 8),
    Config("long", 12, 2, 3, 4),
    Config("medium_2l_bidir", 5, 3, 4, 6, layers=2, bidirectional=True),
)}
CONFIG_ALIASES = {"bidir": "medium_2l_bidir", "medium-2l-bidir": "medium_2l_bidir", "2l_bidir": "medium_2l_bidir"}

VARIANTS: Tuple[str, ...] = ("standard", "ms_standard", "hard_sigmoid", "mask", "seq_length", "recurrent_dropout",
                             "go_backwards", "bidirectional")
DEFAULT_VARIANTS: Tuple[str, ...] = VARIANTS
VARIANT_ALIASES = {"keras_mask": "mask", "masking": "mask", "bidir": "bidirectional",
                   "bidirectional_concat": "bidirectional", "dropout": "recurrent_dropout",
                   "hard-sigmoid": "hard_sigmoid", "seq-length": "seq_length", "go-backwards": "go_backwards",
                   "mindspore": "ms_standard"}
_MS_FRONT_END = ("ms_standard", "seq_length")
RECURRENT_DROPOUT = 0.25
MASK_HOLES = 0.2


def _keras_options(variant: str) -> Dict[str, Any]:
    """Keras LSTM keyword arguments of a Keras-front-end variant."""
    return {"hard_sigmoid": {"recurrent_activation": "hard_sigmoid"},
            "recurrent_dropout": {"recurrent_dropout": RECURRENT_DROPOUT},
            "go_backwards": {"go_backwards": True}}.get(variant, {})


@dataclasses.dataclass
class Inputs:
    """The data of one config: ``x (B, T, I)`` float32, ``mask (B, T)`` bool (holes), ``lengths (B,)`` int32."""

    x: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor


def make_inputs(cfg: Config, seed: int = 0) -> Inputs:
    """Deterministic inputs for ``cfg``; the mask has ~20% holes, lengths lie in ``[T/2, T]`` with row 0 full."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.B, cfg.T, cfg.I, generator=gen)
    mask = torch.rand(cfg.B, cfg.T, generator=gen) >= MASK_HOLES
    lengths = torch.randint(max(1, cfg.T // 2), cfg.T + 1, (cfg.B,), generator=gen, dtype=torch.int32)
    lengths[0] = cfg.T
    return Inputs(x, mask, lengths)


# --- workloads -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Workload:
    """Something to time: ``forward()`` (inference) and ``train()`` (forward + backward of the output sum).

    ``zero_grad()`` drops gradients (the memory probe calls it before measuring); ``path()`` says which
    engine path ran last (``"native"``/``"torch"`` for ours, the library's name for the others).
    """

    name: str
    forward: Callable[[], None]
    train: Callable[[], None]
    zero_grad: Callable[[], None]
    path: Callable[[], Optional[str]]


def _torch_module_workload(name: str, module: torch.nn.Module, call: Callable[[torch.Tensor], torch.Tensor],
                           x: torch.Tensor, path: Callable[[], Optional[str]]) -> Workload:
    def zero_grad() -> None:
        for p in module.parameters():
            p.grad = None

    def forward() -> None:
        with torch.no_grad():
            call(x)

    def train() -> None:
        zero_grad()
        call(x).sum().backward()

    return Workload(name, forward, train, zero_grad, path)


def _ours(cfg: Config, variant: str, data: Inputs) -> Workload:
    from . import keras as K
    from . import mindspore as M
    from .engine import backend

    bidirectional = cfg.directions(variant) == 2
    if variant in _MS_FRONT_END:
        net = M.LSTM(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional)
        lengths = data.lengths if variant == "seq_length" else None

        def call_ms(x: torch.Tensor) -> torch.Tensor:
            return net(x, seq_length=lengths)[0]

        return _torch_module_workload("ours", net, call_ms, data.x, lambda: backend.last_used)
    layers = []
    for _ in range(cfg.layers):
        layer = K.LSTM(cfg.H, return_sequences=True, **_keras_options(variant))
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
    ref = torch.nn.LSTM(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True,
                        bidirectional=cfg.directions(variant) == 2)
    return _torch_module_workload("torch", ref, lambda x: ref(x)[0], data.x, lambda: "oneDNN/aten")


# Variants each optional framework can express (the others are left out of its column).
_TF_VARIANTS = ("standard", "hard_sigmoid", "mask", "recurrent_dropout", "go_backwards", "bidirectional")
_MS_VARIANTS = ("standard", "ms_standard", "seq_length", "bidirectional")


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
        layer = keras.layers.LSTM(cfg.H, return_sequences=True, **_keras_options(variant))
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
    net = nn.LSTM(cfg.I, cfg.H, num_layers=cfg.layers, has_bias=True, batch_first=True,
                  bidirectional=cfg.directions(variant) == 2)
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


def build_workload(impl: str, cfg: Config, variant: str, data: Inputs, threads: int = 2) -> Optional[Workload]:
    """``impl`` = ``"ours"`` | ``"torch"`` | ``"tensorflow"`` | ``"mindspore"``; None if it cannot express ``variant``."""
    if impl == "ours":
        return _ours(cfg, variant, data)
    if impl == "torch":
        return _reference(cfg, variant, data)
    if impl == "tensorflow":
        return _tensorflow(cfg, variant, data, threads)
    if impl == "mindspore":
        return _mindspore(cfg, variant, data)
    raise ValueError(f"impl must be one of ours, torch, tensorflow, mindspore; received {impl!r}")


# --- timing ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TimingPlan:
    """``passes`` A/B passes of ``min_reps..max_reps`` rounds, ~``target_s`` for the slowest participant."""

    passes: int = 3
    target_s: float = 0.1
    min_reps: int = 2
    max_reps: int = 40
    warmup: int = 1


def _call_time(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _calibrate(fn: Callable[[], None], plan: TimingPlan) -> float:
    """Warm ``fn`` up (first-call initialisation, kernel loading) and return the time of one more call."""
    for _ in range(plan.warmup):
        fn()
    return _call_time(fn)


def _reps(seconds: float, plan: TimingPlan) -> int:
    return max(plan.min_reps, min(plan.max_reps, int(math.ceil(plan.target_s / max(seconds, 1e-7)))))


def _one_pass(fn: Callable[[], None], reps: int) -> float:
    return statistics.median(_call_time(fn) for _ in range(reps))


def _summary(values: Sequence[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(participants: Dict[str, Workload], mode: str, plan: TimingPlan) -> Dict[str, Any]:
    """Interleaved passes of every participant for ``mode`` (``"forward"`` or ``"train"``).

    A pass runs ``reps`` rounds; a round calls each participant once, the order alternating from round
    to round (A B, B A, ...), so a burst of machine load hits both sides of a pair alike. Each pass
    keeps the median call time per participant; ``reps`` makes the slowest participant's share of a
    pass last about ``plan.target_s``.

    Returns ``{"passes": {name: [per-pass median seconds]}, "median_s": {name: median of those},
    "reps": n, "paths": {name: path}, "ratio": {name: {"per_pass": [...], "median", "min", "max"}}}``;
    ratios are to ``"torch"`` in the same pass.
    """
    names = list(participants)
    fns = {n: getattr(participants[n], mode) for n in names}
    reps = _reps(max(_calibrate(fns[n], plan) for n in names), plan)
    paths = {n: participants[n].path() for n in names}
    passes: Dict[str, List[float]] = {n: [] for n in names}
    for k in range(plan.passes):
        gc.collect()
        samples: Dict[str, List[float]] = {n: [] for n in names}
        for r in range(reps):
            for n in (names if (k * reps + r) % 2 == 0 else names[::-1]):
                samples[n].append(_call_time(fns[n]))
        for n in names:
            passes[n].append(statistics.median(samples[n]))
    ratio = {}
    for n in names:
        if n == "torch":
            continue
        per_pass = [a / b for a, b in zip(passes[n], passes["torch"])]
        ratio[n] = {"per_pass": per_pass, **_summary(per_pass)}
    return {"passes": passes, "reps": reps, "paths": paths, "ratio": ratio,
            "median_s": {n: statistics.median(passes[n]) for n in names}}


_SGEMM = "sgemm"


def _gemm_workload(m: int, k: int, n: int) -> Tuple[Workload, float]:
    """``torch.mm((m, k), (k, n))`` float32 as a timing participant, and its FLOPs ``2 m k n``."""
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(m, k, generator=gen)
    b = torch.randn(k, n, generator=gen)

    def call() -> None:
        torch.mm(a, b)

    return Workload(_SGEMM, call, call, lambda: None, lambda: "torch.mm"), 2.0 * m * k * n


def sgemm_ceiling(m: int, k: int, n: int, plan: TimingPlan) -> Dict[str, float]:
    """GFLOP/s of ``torch.mm((m, k), (k, n))`` float32: best of 3 batch medians (~``target_s`` each)."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(m, k, generator=gen)
    b = torch.randn(k, n, generator=gen)
    fn = lambda: torch.mm(a, b)  # noqa: E731
    reps = _reps(_calibrate(fn, plan), plan)
    best = min(_one_pass(fn, reps) for _ in range(3))
    return {"shape": [m, k, n], "seconds": best, "gflops": 2.0 * m * k * n / best / 1e9}


# --- memory ------------------------------------------------------------------------------------------
def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key} line")


def _measure_memory_here(task: Dict[str, Any]) -> Dict[str, Any]:
    """In a fresh (forked) process: peak RSS increase of one train step of ``task``'s workload."""
    torch.set_num_threads(int(task["threads"]))
    cfg = Config(**task["config"])
    data = make_inputs(cfg, int(task.get("seed", 0)))
    work = build_workload(task["impl"], cfg, task["variant"], data, int(task["threads"]))
    if work is None:
        return {"error": f"{task['impl']} cannot express variant {task['variant']!r}"}
    work.train()
    work.train()
    work.zero_grad()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    before = _proc_status_kb("VmRSS")
    work.train()
    peak = _proc_status_kb("VmHWM")
    return {"peak_bytes": max(0, peak - before) * 1024, "rss_before_bytes": before * 1024, "path": work.path()}


def _memory_worker_main() -> None:  # pragma: no cover - runs in the helper subprocess
    """Helper process: reads JSON tasks (one a line) on stdin, forks a child per task, prints JSON results.

    The front ends (and the native kernel, if any) are imported here once, before any fork; no parallel
    region has run in this process, so each child starts its own thread pool cleanly.
    """
    from . import keras, mindspore  # noqa: F401 (pre-import for the children)

    _native_state()
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                result = _measure_memory_here(task)
            except BaseException as exc:  # reported to the parent as this task's error, never swallowed
                result = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(w, json.dumps(result).encode())
            os.close(w)
            os._exit(0)
        os.close(w)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        payload = b"".join(chunks)
        result = json.loads(payload) if payload else {"error": f"memory probe child died (wait status {status})"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


class MemoryProbe:
    """The helper subprocess of the memory measurement (see the module docstring); Linux only."""

    def __init__(self, timeout_s: float = 300.0):
        self.timeout_s = timeout_s
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = tempfile.TemporaryFile()

    @staticmethod
    def supported() -> Optional[str]:
        """None when the method works here, else why not."""
        if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
            return f"needs Linux /proc and fork (platform {sys.platform})"
        if not os.path.exists("/proc/self/clear_refs"):
            return "/proc/self/clear_refs is missing"
        return None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # fixed threshold: no dynamic growth, frees go back to the OS
        env["MALLOC_TRIM_THRESHOLD_"] = "131072"
        src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return subprocess.Popen([sys.executable, "-c", "from lstm_bridge.bench import _memory_worker_main as m; m()"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                                text=True, bufsize=1)

    def measure(self, task: Dict[str, Any]) -> Dict[str, Any]:
        """Run one task ``{"impl", "config": Config fields, "variant", "threads", "seed"}``."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(task) + "\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], self.timeout_s)
        line = self._proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            return {"error": f"memory probe gave no answer within {self.timeout_s:.0f} s: {self._stderr_tail()}"}
        return json.loads(line)

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-400:].strip() or "no stderr"

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None


# --- progress ----------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar on a terminal, else plain lines on stderr (or nothing)."""

    def __init__(self, total: int, style: str):
        self.total, self.done = total, 0
        self._bar = None
        self.style = style
        if style == "auto":
            self.style = "rich" if sys.stderr.isatty() and _importable("rich") else "plain"
        if self.style == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("benchmark", total=total)

    def start(self, what: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=what)
        elif self.style == "plain":
            print(f"[{self.done + 1}/{self.total}] {what} ...", file=sys.stderr, flush=True)

    def finish(self, summary: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
            self._bar.console.print(summary)
        elif self.style == "plain":
            print(f"    {summary}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --- the run -------------------------------------------------------------------------------------------
def _frameworks(requested: str) -> List[str]:
    if requested == "none":
        return []
    wanted = ["tensorflow", "mindspore"] if requested == "auto" else [
        {"tf": "tensorflow", "ms": "mindspore"}.get(p.strip(), p.strip()) for p in requested.split(",") if p.strip()]
    unknown = [w for w in wanted if w not in ("tensorflow", "mindspore")]
    if unknown:
        raise ValueError(f"--frameworks takes auto, none or a list of tf, ms; received {unknown}")
    return [w for w in wanted if _importable(w)]


def _native_state() -> str:
    """Whether the native kernel can run (building it now, outside any timing, if it is not cached)."""
    from .engine import backend

    if backend.requested() == "torch":
        return "disabled (LSTM_BRIDGE_BACKEND=torch)"
    try:
        from .engine import native
    except ImportError as exc:
        return f"not installed ({exc})"
    return "available" if native.available() else f"unavailable ({native.error()})"


def _meta(args: argparse.Namespace, threads: int) -> Dict[str, Any]:
    from .engine import backend

    native_state = _native_state()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m lstm_bridge.bench " + " ".join(args.argv), "torch": torch.__version__,
            "python": platform.python_version(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "threads": threads, "backend_requested": backend.requested(), "native": native_state,
            "mkldnn": bool(torch.backends.mkldnn.is_available()), "quick": bool(args.quick),
            "load_start": _loadavg()}


def _loadavg() -> Optional[float]:
    """The 1-minute load average (None where the OS has none): other work on the machine skews timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def run(configs: Sequence[Config], variants: Sequence[str], *, plan: TimingPlan, threads: int = 2,
        memory: bool = True, frameworks: Sequence[str] = (), progress: str = "auto",
        global_ceiling: Optional[Tuple[int, int, int]] = (1536, 1536, 1536),
        meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run the benchmark and return the results dict (what ``results.json`` holds).

    ``rows`` has one entry per (config, variant) with ``forward``/``train`` from :func:`measure`,
    ``gflops``, ``ceiling_share``, ``memory`` and ``path``.
    """
    torch.set_num_threads(threads)
    started = time.perf_counter()
    probe_problem = MemoryProbe.supported() if memory else "disabled (--no-memory)"
    probe = MemoryProbe() if probe_problem is None else None
    n_memory = 2 * len(configs) * len(variants) if probe else 0
    bar = _Progress(len(configs) * len(variants) + len(configs) + n_memory + (1 if global_ceiling else 0), progress)
    results: Dict[str, Any] = {"meta": dict(meta or {}), "plan": dataclasses.asdict(plan), "ceilings": {},
                               "rows": [], "frameworks": list(frameworks), "framework_errors": {}}
    results["meta"]["memory_method"] = probe_problem or (
        "peak RSS increase of one train step in a forked child (VmHWM reset via /proc/self/clear_refs)")
    try:
        if global_ceiling:
            bar.start(f"sgemm ceiling {global_ceiling}")
            results["global_ceiling"] = sgemm_ceiling(*global_ceiling, plan)
            bar.finish(f"sgemm {global_ceiling}: {results['global_ceiling']['gflops']:.1f} GFLOP/s")
        torch_memory: Dict[Tuple[str, int], Dict[str, Any]] = {}
        for cfg in configs:
            bar.start(f"{cfg.name}: sgemm ceiling")
            ceiling = sgemm_ceiling(cfg.T * cfg.B, cfg.I + cfg.H, 4 * cfg.H, plan)
            results["ceilings"][cfg.name] = ceiling
            bar.finish(f"{cfg.name}: ceiling {ceiling['gflops']:.1f} GFLOP/s")
            gemm, gemm_flops = _gemm_workload(*ceiling["shape"])
            data = make_inputs(cfg)
            for variant in variants:
                bar.start(f"{cfg.name} / {variant}")
                participants: Dict[str, Workload] = {"ours": build_workload("ours", cfg, variant, data, threads),
                                                     "torch": build_workload("torch", cfg, variant, data, threads)}
                for fw in frameworks:
                    key = f"{fw}:{cfg.name}:{variant}"
                    try:
                        work = build_workload(fw, cfg, variant, data, threads)
                    except ImportError as exc:
                        results["framework_errors"][key] = f"ImportError: {exc}"
                        continue
                    except Exception as exc:  # an optional comparison must not sink the run; recorded visibly
                        results["framework_errors"][key] = f"{type(exc).__name__}: {exc}"
                        continue
                    if work is None:
                        continue
                    try:  # one call per mode first: a framework that cannot run this case (e.g. MindSpore's
                        # graph compiler on T = 500 with seq_length) is recorded, and the run goes on
                        work.forward()
                        work.train()
                    except Exception as exc:  # noqa: BLE001 (any failure of an optional comparison)
                        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
                        results["framework_errors"][key] = f"{type(exc).__name__}: {first_line}"
                        continue
                    participants[fw] = work
                row: Dict[str, Any] = {"config": dataclasses.asdict(cfg), "variant": variant}
                for mode in ("forward", "train"):
                    # the ceiling GEMM joins the forward rounds, so it sees the same machine as ours
                    row[mode] = measure(dict(participants, sgemm=gemm) if mode == "forward" else participants,
                                        mode, plan)
                row["forward"]["ratio"].pop(_SGEMM, None)
                flops = {"forward": cfg.forward_flops(variant), "train": 3.0 * cfg.forward_flops(variant)}
                row["flops"] = flops
                row["gflops"] = {m: {n: flops[m] / s / 1e9 for n, s in row[m]["median_s"].items() if n != _SGEMM}
                                 for m in ("forward", "train")}
                per_pass_ceiling = [gemm_flops / t / 1e9 for t in row["forward"]["passes"][_SGEMM]]
                row["ceiling_gflops"] = statistics.median(per_pass_ceiling)
                row["ceiling_share"] = {
                    "forward": statistics.median(flops["forward"] / t / 1e9 / c for t, c in
                                                 zip(row["forward"]["passes"]["ours"], per_pass_ceiling)),
                    "train": row["gflops"]["train"]["ours"] / row["ceiling_gflops"]}
                row["path"] = {m: row[m]["paths"]["ours"] for m in ("forward", "train")}
                del participants
                bar.finish(f"{cfg.name} / {variant}: forward {row['forward']['ratio']['ours']['median']:.2f}x, "
                           f"train {row['train']['ratio']['ours']['median']:.2f}x torch.nn.LSTM "
                           f"(path {row['path']['forward']}/{row['path']['train']})")
                results["rows"].append(row)
                if probe is not None:
                    task = {"config": dataclasses.asdict(cfg), "variant": variant, "threads": threads, "seed": 0}
                    bar.start(f"{cfg.name} / {variant}: memory")
                    ours_mem = probe.measure(dict(task, impl="ours"))
                    bar.finish(_memory_line("ours", ours_mem))
                    ref_key = (cfg.name, cfg.directions(variant))
                    bar.start(f"{cfg.name} / torch (D={ref_key[1]}): memory")
                    if ref_key not in torch_memory:
                        torch_memory[ref_key] = probe.measure(dict(task, impl="torch"))
                    bar.finish(_memory_line("torch", torch_memory[ref_key]))
                    ref_mem = torch_memory[ref_key]
                    ratio = None
                    if ours_mem.get("peak_bytes") and ref_mem.get("peak_bytes"):
                        ratio = ours_mem["peak_bytes"] / ref_mem["peak_bytes"]
                    row["memory"] = {"ours": ours_mem, "torch": ref_mem, "ratio": ratio}
                else:
                    row["memory"] = {"ratio": None, "note": probe_problem}
    finally:
        bar.close()
        if probe is not None:
            probe.close()
    results["meta"]["load_end"] = _loadavg()
    results["meta"]["elapsed_s"] = round(time.perf_counter() - started, 1)
    return results


def _memory_line(who: str, result: Dict[str, Any]) -> str:
    if "peak_bytes" in result:
        return f"{who}: train-step peak +{result['peak_bytes'] / 2**20:.1f} MiB"
    return f"{who}: memory n/a ({result.get('error')})"


# --- reporting -------------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


TABLE_HEADER = ("| config | variant | path (fwd/train) | fwd ms ours | fwd ms torch | fwd ratio | train ms ours | "
                "train ms torch | train ratio | spread (ratio min–max: fwd; train) | GFLOP/s (fwd/train) | "
                "% ceiling (fwd/train) | memory ratio |")


def render_markdown(results: Dict[str, Any]) -> str:
    """The markdown report: metadata, the main table, optional framework columns and notes."""
    meta = results.get("meta", {})
    lines = ["# lstm-bridge benchmark", ""]
    if meta:
        lines.append(f"- command: `{meta.get('command', '')}`")
        lines.append(f"- {meta.get('date', '')}; torch {meta.get('torch', '')}, Python {meta.get('python', '')}; "
                     f"CPU {meta.get('cpu', '')} ({meta.get('cpu_count', '')} logical), "
                     f"`torch.set_num_threads({meta.get('threads', '')})`")
        lines.append(f"- engine: LSTM_BRIDGE_BACKEND={meta.get('backend_requested', '')}, native kernel "
                     f"{meta.get('native', '')}")
        lines.append(f"- memory: {meta.get('memory_method', '')}")
        loads = [v for v in (meta.get("load_start"), meta.get("load_end")) if v is not None]
        if loads:
            busy = max(loads) > max(1, (meta.get("cpu_count") or 1) - 0.5)
            elapsed = meta.get("elapsed_s")
            lines.append((f"- wall time {elapsed / 60:.1f} min; " if elapsed else "- ")
                         + f"machine load (1-min average) at start/end: {meta.get('load_start')}/{meta.get('load_end')}"
                         + (" — **the machine was busy with other work: timings are inflated and noisy; compare "
                            "ratios only, and look at the spread**" if busy else ""))
    plan = results.get("plan", {})
    lines.append(f"- timing: {plan.get('passes')} passes per row; a pass = calibrated rounds (~"
                 f"{plan.get('target_s', 0) * 1e3:.0f} ms for the slower side) calling ours and torch.nn.LSTM "
                 "alternately, keeping each side's median; ms = median of the per-pass medians; ratio = median of "
                 "the per-pass ratios ours/torch.nn.LSTM (same size, standard semantics); spread = their min–max")
    lines.append("- forward = inference under `torch.no_grad()`; train = forward + backward of `output.sum()`; "
                 "GFLOP/s counts GEMM work (train = 3x forward); % ceiling = share of the sgemm ceiling measured "
                 "in the same forward passes (one `torch.mm` (T·B, I+H)@(I+H, 4H) per round; rows without it: the "
                 "config's ceiling below)")
    seen = {row["config"]["name"]: Config(**row["config"]).label() for row in results["rows"]}
    lines.append("- configs (T,B,I,H): " + "; ".join(seen.values()))
    glob = results.get("global_ceiling")
    ceil = ", ".join(f"{k} {v['gflops']:.1f}" for k, v in results.get("ceilings", {}).items())
    lines.append(f"- sgemm ceilings measured once per config (GFLOP/s): {ceil}" + (
        f"; large square {tuple(glob['shape'])}: {glob['gflops']:.1f}" if glob else ""))
    lines += ["", TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for row in results["rows"]:
        f, t = row["forward"], row["train"]
        fr, tr = f["ratio"]["ours"], t["ratio"]["ours"]
        mem = row.get("memory", {}).get("ratio")
        cells = [row["config"]["name"], row["variant"], f"{row['path']['forward']}/{row['path']['train']}",
                 _ms(f["median_s"]["ours"]), _ms(f["median_s"]["torch"]), f"{fr['median']:.2f}",
                 _ms(t["median_s"]["ours"]), _ms(t["median_s"]["torch"]), f"{tr['median']:.2f}",
                 f"{fr['min']:.2f}–{fr['max']:.2f}; {tr['min']:.2f}–{tr['max']:.2f}",
                 f"{row['gflops']['forward']['ours']:.3g}/{row['gflops']['train']['ours']:.3g}",
                 f"{100 * row['ceiling_share']['forward']:.0f}/{100 * row['ceiling_share']['train']:.0f}",
                 "n/a" if mem is None else f"{mem:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    extra = [(row, name) for row in results["rows"] for name in row["forward"]["median_s"]
             if name not in ("ours", "torch", _SGEMM)]
    if extra:
        lines += ["", "## Other frameworks (same passes; ratio to torch.nn.LSTM)", "",
                  "| config | variant | framework | fwd ms | fwd ratio | train ms | train ratio |",
                  "|---|---|---|---|---|---|---|"]
        for row, name in extra:
            lines.append(f"| {row['config']['name']} | {row['variant']} | {row['forward']['paths'][name]} | "
                         f"{_ms(row['forward']['median_s'][name])} | {row['forward']['ratio'][name]['median']:.2f} | "
                         f"{_ms(row['train']['median_s'][name])} | {row['train']['ratio'][name]['median']:.2f} |")
    if results.get("framework_errors"):
        lines += ["", "Framework errors:"] + [f"- {k}: {v}" for k, v in results["framework_errors"].items()]
    if results.get("chart_note"):
        lines += ["", results["chart_note"]]
    return "\n".join(lines) + "\n"


def write_chart(results: Dict[str, Any], path: str) -> Optional[str]:
    """A bar chart of the forward and train ratios (PNG); returns a note instead when matplotlib is missing."""
    try:
        import matplotlib  # noqa: WPS433 (optional)
    except ImportError:
        return "results.png skipped: matplotlib is not importable (pip install matplotlib to get the chart)."
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    labels = [f"{r['config']['name']}\n{r['variant']}" for r in rows]
    fwd = [r["forward"]["ratio"]["ours"]["median"] for r in rows]
    trn = [r["train"]["ratio"]["ours"]["median"] for r in rows]
    fwd_err = [[v - r["forward"]["ratio"]["ours"]["min"] for v, r in zip(fwd, rows)],
               [r["forward"]["ratio"]["ours"]["max"] - v for v, r in zip(fwd, rows)]]
    trn_err = [[v - r["train"]["ratio"]["ours"]["min"] for v, r in zip(trn, rows)],
               [r["train"]["ratio"]["ours"]["max"] - v for v, r in zip(trn, rows)]]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(rows) + 2), 5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], fwd, 0.4, yerr=fwd_err, label="forward", capsize=2)
    ax.bar([x + 0.2 for x in xs], trn, 0.4, yerr=trn_err, label="train step", capsize=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(1.15, color="red", linewidth=0.8, linestyle="--", label="1.15x target (variants)")
    if max(r["max"] for row in rows for r in (row["forward"]["ratio"]["ours"], row["train"]["ratio"]["ours"])) > 4:
        ax.set_yscale("log")  # noisy or far-off rows would flatten everything else
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("time / torch.nn.LSTM (same run)")
    ax.set_title("lstm-bridge vs torch.nn.LSTM (median of per-pass ratios, bars: min-max)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --- command line ------------------------------------------------------------------------------------
def _pick(text: Optional[str], known: Dict[str, Any] | Sequence[str], aliases: Dict[str, str], what: str,
          default: Iterable[str]) -> List[str]:
    if text is None:
        return list(default)
    out = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name == "all":
            out.extend(known)
            continue
        name = aliases.get(name, name)
        if name not in known:
            raise ValueError(f"unknown {what} {part.strip()!r}; expected one of {', '.join(known)} (or 'all')")
        out.append(name)
    if not out:
        raise ValueError(f"--{what}s is empty; expected a comma-separated list of {', '.join(known)}")
    return list(dict.fromkeys(out))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lstm_bridge.bench`` / ``lstm-bridge bench``."""
    p = argparse.ArgumentParser(prog="lstm-bridge bench", description=(
        "Time every LSTM variant of lstm-bridge against torch.nn.LSTM of the same size, interleaved in one "
        "process (plus TensorFlow/MindSpore when importable). See the lstm_bridge.bench docstring for the method."))
    p.add_argument("--configs", help=f"comma-separated, default all: {', '.join(CONFIGS)}")
    p.add_argument("--variants", help=f"comma-separated, default all: {', '.join(VARIANTS)}")
    p.add_argument("--passes", type=int, default=None, help="interleaved passes per pair (default 3; 1 with --quick)")
    p.add_argument("--target-ms", type=float, default=None,
                   help="approximate duration of one pass of one participant (default 100; 2 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default 2; 1 with --quick, where spinning thread pools only add noise)")
    p.add_argument("--quick", action="store_true", help="toy sizes and one pass: a smoke test, not a measurement")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                   help="measure train-step peak memory (default on; off with --quick)")
    p.add_argument("--frameworks", default="auto",
                   help="also time TF/Keras and MindSpore: auto (when importable), none, or tf,ms")
    p.add_argument("--backend", choices=("auto", "native", "torch"), default=None,
                   help="set LSTM_BRIDGE_BACKEND for this run (default: the environment's)")
    p.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto")
    p.add_argument("--out", help="directory for results.md, results.json and results.png")
    p.add_argument("--render", metavar="RESULTS_JSON",
                   help="measure nothing: re-render results.md/results.png (into --out, default beside the file) "
                        "from an earlier results.json")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 2 usage error). Prints the table on stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    args.argv = argv
    if args.render:
        return _render_only(args.render, args.out)
    table = QUICK_CONFIGS if args.quick else CONFIGS
    try:
        configs = [table[n] for n in _pick(args.configs, table, CONFIG_ALIASES, "config", table)]
        variants = _pick(args.variants, VARIANTS, VARIANT_ALIASES, "variant", DEFAULT_VARIANTS)
        frameworks = _frameworks(args.frameworks)
        if args.threads is None:
            args.threads = 1 if args.quick else 2
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1; received {args.threads}")
        passes = args.passes if args.passes is not None else (1 if args.quick else 3)
        if passes < 1:
            raise ValueError(f"--passes must be >= 1; received {passes}")
    except ValueError as exc:
        print(f"lstm-bridge bench: error: {exc}", file=sys.stderr)
        return 2
    target = (args.target_ms if args.target_ms is not None else (2.0 if args.quick else 100.0)) / 1e3
    plan = TimingPlan(passes=passes, target_s=target, min_reps=1 if args.quick else 2,
                      max_reps=3 if args.quick else 40)
    memory = args.memory if args.memory is not None else not args.quick
    saved_backend = os.environ.get("LSTM_BRIDGE_BACKEND")
    if args.backend is not None:
        os.environ["LSTM_BRIDGE_BACKEND"] = args.backend
    try:
        torch.set_num_threads(args.threads)
        results = run(configs, variants, plan=plan, threads=args.threads, memory=memory, frameworks=frameworks,
                      progress=args.progress, global_ceiling=(64, 64, 64) if args.quick else (1536, 1536, 1536),
                      meta=_meta(args, args.threads))
    finally:
        if args.backend is not None:
            if saved_backend is None:
                os.environ.pop("LSTM_BRIDGE_BACKEND", None)
            else:
                os.environ["LSTM_BRIDGE_BACKEND"] = saved_backend
    if args.out:
        _write(results, args.out, with_json=True)
    print(render_markdown(results), end="")
    return 0


def _write(results: Dict[str, Any], out: str, with_json: bool) -> None:
    os.makedirs(out, exist_ok=True)
    results["chart_note"] = write_chart(results, os.path.join(out, "results.png"))
    if with_json:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(render_markdown(results))


def _render_only(path: str, out: Optional[str]) -> int:
    try:
        with open(path) as f:
            results = json.load(f)
        if not isinstance(results, dict) or "rows" not in results:
            raise ValueError(f"expected a results.json written by lstm_bridge.bench (with 'rows'); received "
                             f"{type(results).__name__} without 'rows'")
    except (OSError, ValueError) as exc:
        print(f"lstm-bridge bench: error: cannot render {path}: {exc}", file=sys.stderr)
        return 2
    _write(results, out or os.path.dirname(os.path.abspath(path)), with_json=False)
    print(render_markdown(results), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
