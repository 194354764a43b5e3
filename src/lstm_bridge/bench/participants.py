"""The participants a benchmark row times: ours, ``torch.nn.LSTM``, optional TF/Keras and MindSpore,
and the ``torch.mm`` sgemm ceiling; each is a ``Workload`` with ``forward()`` and ``train()``."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

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
    forward: Callable[[], None]
    train: Callable[[], None]
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
        net = M.LSTM(cfg.I, cfg.H, num_layers=cfg.layers, batch_first=True, bidirectional=bidirectional)
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


def build_workload(impl: str, cfg: Config, variant: str, data: Inputs, threads: int = 2) -> Optional[Workload]:
    """``impl`` = ``"ours"`` | ``"torch"`` | ``"tensorflow"`` | ``"mindspore"``; None if it cannot express
    ``variant``."""
    if impl == "ours":
        return _ours(cfg, variant, data)
    if impl == "torch":
        return _reference(cfg, variant, data)
    if impl == "tensorflow":
        return _tensorflow(cfg, variant, data, threads)
    if impl == "mindspore":
        return _mindspore(cfg, variant, data)
    raise ValueError(f"impl must be one of ours, torch, tensorflow, mindspore; received {impl!r}")


SGEMM = "sgemm"


def gemm_workload(m: int, k: int, n: int) -> Tuple[Workload, float]:
    """``torch.mm((m, k), (k, n))`` float32 as a timing participant, and its FLOPs ``2 m k n``."""
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(m, k, generator=gen)
    b = torch.randn(k, n, generator=gen)

    def call() -> None:
        torch.mm(a, b)

    return Workload(SGEMM, call, call, lambda: None, lambda: "torch.mm"), 2.0 * m * k * n
