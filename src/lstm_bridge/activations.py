"""Activation functions, resolved by name the way Keras 2 / TF 1.x (and, on request, Keras 3) do.

Every built-in is an :class:`Activation`: a named, picklable callable on torch tensors. The name is
what ``get_config`` writes and what the native kernel dispatches on; any other Python callable is
accepted too and simply runs on the portable torch path.

Two functions share the name ``"hard_sigmoid"`` (docs/spec/keras_lstm.md §2.2):

* :data:`hard_sigmoid_keras2` — ``clip(0.2 x + 0.5, 0, 1)``: TF 1.x, tf.keras 2.x, tf_keras, Keras 2.
* :data:`hard_sigmoid_keras3` — ``relu6(x + 3) / 6``: Keras 3 (and ``tf.keras`` in TF >= 2.16).

``get("hard_sigmoid")`` gives the Keras 2 one; ``get("hard_sigmoid", keras_version=3)`` (what a file or
config written by Keras 3 asks for) gives the Keras 3 one. ``serialize`` writes an unambiguous name
(``"hard_sigmoid_keras3"``) for the Keras 3 function so that our own configs round-trip.

``"gelu"`` is the exact erf form in both generations (``keras.activations.gelu(x, approximate=False)``);
the tanh approximation has no Keras name and serialises as our own ``"gelu_tanh"``.

Each generation accepts its own names (checked against the real frameworks, ``tests/golden/*.json``
``activation_names``): tf_keras 2.x the 18 of :data:`KERAS2_NAMES`, Keras 3 the 30 of
:data:`KERAS3_NAMES` (its ``glu`` and ``threshold`` cannot be gate activations: NotImplementedError).
``sparsemax`` follows Keras 3's TF backend step for step, including its threshold
``tau = (sum of the supported cumulative sums - 1) / k``. ``get(name, keras_version=2)`` rejects the
Keras-3-only names (``celu``,
``hard_silu``, ...) with tf_keras's own error text. Our serialised names (``hard_sigmoid_keras3``,
``gelu_tanh``, ``ms_cpu_sigmoid``, ``ms_cpu_tanh``) resolve under either generation.

MindSpore's CPU kernels approximate ``Sigmoid`` and ``Tanh`` (docs/spec/mindspore_lstm.md §3); :data:`ms_cpu_sigmoid`
and :data:`ms_cpu_tanh` emulate them bit for bit in float32.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
ActivationLike = Union[str, Callable[[Tensor], Tensor], None]

__all__ = [
    "Activation",
    "KERAS2_NAMES",
    "KERAS3_NAMES",
    "by_name",
    "get",
    "keras_name",
    "serialize",
    "sigmoid",
    "tanh",
    "linear",
    "relu",
    "hard_sigmoid_keras2",
    "hard_sigmoid_keras3",
    "ms_cpu_sigmoid",
    "ms_cpu_tanh",
]


class Activation:
    """A named elementwise activation ``fn(x) -> y`` on torch tensors.

    ``name`` is the serialised name (unique per function); ``native_id`` is the code the native CPU
    kernel uses for it, or ``None`` when only the torch path can run it.
    """

    __slots__ = ("name", "fn", "native_id")

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor], native_id: Optional[int] = None):
        self.name = name
        self.fn = fn
        self.native_id = native_id

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"<activation {self.name}>"

    def __reduce__(self):  # pickle/deepcopy by name: built-ins are singletons
        return (_by_name, (self.name,))


def _hard_sigmoid_k2(x: Tensor) -> Tensor:
    # Bit-exact with Keras 2: t = x*0.2; t = t + 0.5; clip.
    return torch.clamp(x * 0.2 + 0.5, 0.0, 1.0)


def _hard_sigmoid_k3(x: Tensor) -> Tensor:
    # Bit-exact with Keras 3: relu6(x + 3) / 6 (a division, not a multiplication by 1/6).
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def _softsign(x: Tensor) -> Tensor:
    return x / (1.0 + torch.abs(x))


def _selu(x: Tensor) -> Tensor:
    return F.selu(x)


def _exponential(x: Tensor) -> Tensor:
    return torch.exp(x)


def _swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def _mish(x: Tensor) -> Tensor:
    return x * torch.tanh(F.softplus(x))


def _linear(x: Tensor) -> Tensor:
    return x


def _relu6(x: Tensor) -> Tensor:
    return torch.clamp(x, 0.0, 6.0)


def _leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def _gelu_exact(x: Tensor) -> Tensor:
    return F.gelu(x)


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def _softmax(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=-1)


def _log_softmax(x: Tensor) -> Tensor:
    return torch.log_softmax(x, dim=-1)


def _hard_silu(x: Tensor) -> Tensor:
    return x * _hard_sigmoid_k3(x)


def _hard_tanh(x: Tensor) -> Tensor:
    return torch.clamp(x, -1.0, 1.0)


def _log_sigmoid(x: Tensor) -> Tensor:
    return F.logsigmoid(x)


def _celu(x: Tensor) -> Tensor:
    return F.celu(x, alpha=1.0)


def _tanh_shrink(x: Tensor) -> Tensor:
    return x - torch.tanh(x)


def _soft_shrink(x: Tensor) -> Tensor:
    return F.softshrink(x, 0.5)


def _hard_shrink(x: Tensor) -> Tensor:
    return F.hardshrink(x, 0.5)


def _squareplus(x: Tensor) -> Tensor:
    return (x + torch.sqrt(x * x + 4.0)) / 2.0


def _sparse_plus(x: Tensor) -> Tensor:
    return torch.where(x <= -1.0, torch.zeros_like(x), torch.where(x >= 1.0, x, (x + 1.0) ** 2 / 4.0))


def _sparse_sigmoid(x: Tensor) -> Tensor:
    return torch.clamp(0.5 * (x + 1.0), 0.0, 1.0)


def _sparsemax(x: Tensor) -> Tensor:
    """Keras 3's ``sparsemax(x, axis=-1)`` (Martins et al. 2016), step for step as its TF backend does:
    ``max(x - tau, 0)`` with ``tau`` from the sorted cumulative sums over the last axis."""
    srt = torch.sort(x, dim=-1, descending=True).values
    csum = torch.cumsum(srt, dim=-1)
    r = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    support = srt - (csum - 1.0) / r > 0
    k = support.to(x.dtype).sum(dim=-1, keepdim=True)
    tau = (torch.where(support, csum, torch.zeros_like(csum)).sum(dim=-1, keepdim=True) - 1.0) / k
    return torch.clamp(x - tau, min=0.0)


# --- MindSpore CPU float32 Sigmoid / Tanh emulation (docs/spec/mindspore_lstm.md §3) -------------------------


def _fma32(a: Tensor, b, c) -> Tensor:
    """float32 fused multiply-add: exact float64 product-sum, one rounding to float32."""
    return (a.double() * b + c).float()


def _ms_tanh_forward(x: Tensor) -> Tensor:
    x32 = x.float()
    s = x32 * x32
    a = _fma32(_fma32(s + 378.0, s, 17325.0), s, 135135.0) * x32
    b = _fma32(_fma32(_fma32(torch.full_like(s, 28.0), s, 3150.0), s, 62370.0), s, 135135.0)
    y = a / b
    y = torch.where(x32 > 5.0, torch.ones_like(y), y)
    y = torch.where(x32 < -5.0, -torch.ones_like(y), y)
    return y.to(x.dtype)


def _f32(value: float) -> float:
    """A constant as the float32 the MindSpore kernel holds."""
    return float(torch.tensor(value, dtype=torch.float32))


_LOG2E, _LN2 = _f32(1.44269504088896341), _f32(0.693147)
_POLY = (_f32(1.0 / 120.0), _f32(1.0 / 24.0), _f32(1.0 / 6.0), 0.5, 1.0, 1.0)


def _ms_sigmoid_forward(x: Tensor) -> Tensor:
    x32 = x.float()
    arg = torch.clamp(-x32, -87.3365478515625, 88.72283935546875)
    k = torch.floor(_fma32(arg, _LOG2E, 0.5))
    d = _fma32(-k, _LN2, arg)
    p = _fma32(d, _POLY[0], _POLY[1])
    for c in _POLY[2:]:
        p = _fma32(d, p, c)
    # 2^k as 2^(k-1) * 2: (k+127)<<23 would overflow to inf at k = 128, the kernel stays finite
    half = ((k.to(torch.int32) + 126) << 23).view(torch.float32)
    e = (p * half) * 2.0
    return (1.0 / (1.0 + e)).to(x.dtype)


class _MsSigmoid(torch.autograd.Function):
    # MindSpore's SigmoidGrad uses the output: dy * y * (1 - y).
    @staticmethod
    def forward(ctx, x):
        y = _ms_sigmoid_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * y * (1.0 - y)


class _MsTanh(torch.autograd.Function):
    # MindSpore's TanhGrad uses the output: dy * (1 - y^2).
    @staticmethod
    def forward(ctx, x):
        y = _ms_tanh_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1.0 - y * y)


# --- registry ----------------------------------------------------------------------------------

# native ids are part of the contract with engine/native/lstm.h (keep in sync).
sigmoid = Activation("sigmoid", torch.sigmoid, 0)
tanh = Activation("tanh", torch.tanh, 1)
hard_sigmoid_keras2 = Activation("hard_sigmoid", _hard_sigmoid_k2, 2)
hard_sigmoid_keras3 = Activation("hard_sigmoid_keras3", _hard_sigmoid_k3, 3)
relu = Activation("relu", torch.relu, 4)
linear = Activation("linear", _linear, 5)
softsign = Activation("softsign", _softsign, 6)
ms_cpu_sigmoid = Activation("ms_cpu_sigmoid", _MsSigmoid.apply, 7)
ms_cpu_tanh = Activation("ms_cpu_tanh", _MsTanh.apply, 8)

_BUILTINS: Dict[str, Activation] = {
    a.name: a
    for a in [
        sigmoid,
        tanh,
        hard_sigmoid_keras2,
        hard_sigmoid_keras3,
        relu,
        linear,
        softsign,
        ms_cpu_sigmoid,
        ms_cpu_tanh,
        Activation("elu", F.elu),
        Activation("selu", _selu),
        Activation("softplus", F.softplus),
        Activation("exponential", _exponential),
        Activation("swish", _swish),
        Activation("mish", _mish),
        Activation("relu6", _relu6),
        Activation("leaky_relu", _leaky_relu),
        Activation("gelu", _gelu_exact),
        Activation("gelu_tanh", _gelu_tanh),
        Activation("softmax", _softmax),
        Activation("log_softmax", _log_softmax),
        Activation("hard_silu", _hard_silu),
        Activation("hard_tanh", _hard_tanh),
        Activation("log_sigmoid", _log_sigmoid),
        Activation("celu", _celu),
        Activation("tanh_shrink", _tanh_shrink),
        Activation("soft_shrink", _soft_shrink),
        Activation("hard_shrink", _hard_shrink),
        Activation("squareplus", _squareplus),
        Activation("sparse_plus", _sparse_plus),
        Activation("sparse_sigmoid", _sparse_sigmoid),
        Activation("sparsemax", _sparsemax),
    ]
}

# Names each Keras generation accepts and the built-in each means there. Checked against
# ``tf_keras.activations.get`` 2.21 and ``keras.activations.get`` 3.15.1 (tools/golden_keras.py records
# both lists in tests/golden/<flavour>.json; tests/test_golden.py compares).
KERAS2_NAMES: Dict[str, str] = {
    **{
        n: n
        for n in (
            "elu",
            "exponential",
            "gelu",
            "hard_sigmoid",
            "leaky_relu",
            "linear",
            "log_softmax",
            "mish",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "softmax",
            "softplus",
            "softsign",
            "swish",
            "tanh",
        )
    },
    "silu": "swish",
}
KERAS3_NAMES: Dict[str, str] = {
    **{
        n: n
        for n in (
            "celu",
            "elu",
            "exponential",
            "gelu",
            "hard_shrink",
            "hard_silu",
            "hard_tanh",
            "leaky_relu",
            "linear",
            "log_sigmoid",
            "log_softmax",
            "mish",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "soft_shrink",
            "softmax",
            "softplus",
            "softsign",
            "sparse_plus",
            "sparse_sigmoid",
            "sparsemax",
            "squareplus",
            "swish",
            "tanh",
            "tanh_shrink",
        )
    },
    "hard_sigmoid": "hard_sigmoid_keras3",
    "hard_swish": "hard_silu",
    "silu": "swish",
}
#: Keras 3 names that Keras accepts but that cannot be an LSTM gate activation here.
KERAS3_UNSUPPORTED: Dict[str, str] = {
    "glu": "halves the gate width (Keras only runs it when units == 2, by broadcasting)",
    "threshold": "needs the extra arguments threshold and default_value (Keras fails when the cell calls it)",
}
#: Our own serialised names: unambiguous, so every generation resolves them (configs round-trip).
OWN_NAMES = ("hard_sigmoid_keras3", "gelu_tanh", "ms_cpu_sigmoid", "ms_cpu_tanh")


def _unknown(identifier: str, keras_version: int) -> ValueError:
    """Keras's own error text for an unknown name, then what this generation accepts."""
    if keras_version >= 3:
        head = f"Could not interpret activation function identifier: {identifier}"
        names = sorted(KERAS3_NAMES)
        hint = ""
    else:
        head = f"Unknown activation function '{identifier}' cannot be deserialized."
        names = sorted(KERAS2_NAMES)
        hint = (
            f" {identifier!r} is a Keras 3 name: pass keras_version=3 for a Keras 3 layer."
            if identifier in KERAS3_NAMES or identifier in KERAS3_UNSUPPORTED
            else ""
        )
    gen = "Keras 3" if keras_version >= 3 else "tf_keras 2.x"
    return ValueError(f"{head} (expected one of the {gen} names {names}; received {identifier!r}).{hint}")


def _by_name(name: str) -> Activation:
    return _BUILTINS[name]


def by_name(name: str) -> Activation:
    """The built-in whose serialised name (:attr:`Activation.name`) is ``name``, whatever the Keras
    generation: for names lstm-bridge itself resolved and recorded (``"celu"``, ``"hard_sigmoid_keras3"``,
    ``"ms_cpu_tanh"`` ...), not for names read from a user's Keras config (use :func:`get`).

    Raises:
        ValueError: no built-in has that name.
    """
    if not isinstance(name, str) or name not in _BUILTINS:
        raise ValueError(f"unknown activation {name!r}; expected one of the built-in names {sorted(_BUILTINS)}")
    return _BUILTINS[name]


def get(identifier: ActivationLike, keras_version: int = 2) -> Callable[[Tensor], Tensor]:
    """Resolve an activation like ``keras.activations.get``.

    Args:
        identifier: a name, ``None`` (linear), an :class:`Activation`, or any callable on tensors.
        keras_version: 2 (TF 1.x / tf.keras 2.x / tf_keras; the default) or 3 (Keras 3): which names
            exist (:data:`KERAS2_NAMES`, :data:`KERAS3_NAMES`) and what ambiguous ones mean, chiefly
            ``"hard_sigmoid"``.

    Raises:
        ValueError: a name this generation does not know, with Keras's own error text first and the
            accepted names after it.
        NotImplementedError: a Keras 3 name that cannot be a gate activation (``glu``, ``threshold``).
    """
    if identifier is None:
        return linear
    if isinstance(identifier, Activation) or (callable(identifier) and not isinstance(identifier, str)):
        return identifier
    if isinstance(identifier, dict):  # Keras 3 serialises some functions as {"class_name": ..., "config": ...}
        name = identifier.get("config", identifier.get("class_name"))
        if isinstance(name, dict):
            name = name.get("name")
        return get(name, keras_version)
    if not isinstance(identifier, str):
        raise TypeError(f"activation must be a name, None or a callable; received {identifier!r}")
    if identifier in OWN_NAMES:
        return _BUILTINS[identifier]
    if keras_version >= 3:
        if identifier in KERAS3_UNSUPPORTED:
            raise NotImplementedError(
                f"activation {identifier!r} {KERAS3_UNSUPPORTED[identifier]}; it cannot be an LSTM gate activation here"
            )
        table = KERAS3_NAMES
    else:
        table = KERAS2_NAMES
    if identifier not in table:
        raise _unknown(identifier, keras_version)
    return _BUILTINS[table[identifier]]


def keras_name(fn: Callable[[Tensor], Tensor], keras_version: int) -> str:
    """The name Keras generation ``keras_version`` reads as ``fn``: the inverse of :func:`get`.

    Raises:
        ValueError: ``fn`` has no name in that generation (e.g. the tanh-approximated gelu anywhere,
            ``celu`` for tf_keras, the Keras 2 ``hard_sigmoid`` for Keras 3, any custom callable).
    """
    table = KERAS3_NAMES if keras_version >= 3 else KERAS2_NAMES
    for name, builtin in table.items():
        if name not in ("silu", "hard_swish") and _BUILTINS[builtin] is fn:
            return name
    what = fn.name if isinstance(fn, Activation) else repr(fn)
    gen = "Keras 3" if keras_version >= 3 else "tf_keras 2.x"
    raise ValueError(f"activation {what!r} has no {gen} name (expected one of {sorted(table)})")


def serialize(fn: Callable[[Tensor], Tensor]) -> Union[str, Callable[[Tensor], Tensor]]:
    """The config value for an activation: its name for built-ins, the callable itself otherwise."""
    if isinstance(fn, Activation):
        return fn.name
    return fn


def is_exact_sigmoid(fn: Callable) -> bool:
    return fn is sigmoid or fn is torch.sigmoid


def is_exact_tanh(fn: Callable) -> bool:
    return fn is tanh or fn is torch.tanh
