"""Activation functions, resolved by name the way Keras 2 / TF 1.x (and, on request, Keras 3) do.

Every built-in is an :class:`Activation`: a named, picklable callable on torch tensors. The name is
what ``get_config`` writes and what the native kernel dispatches on; any other Python callable is
accepted too and simply runs on the portable torch path.

Two functions share the name ``"hard_sigmoid"`` (spec §2.2):

* :data:`hard_sigmoid_keras2` — ``clip(0.2 x + 0.5, 0, 1)``: TF 1.x, tf.keras 2.x, tf_keras, Keras 2.
* :data:`hard_sigmoid_keras3` — ``relu6(x + 3) / 6``: Keras 3 (and ``tf.keras`` in TF >= 2.16).

``get("hard_sigmoid")`` gives the Keras 2 one; ``get("hard_sigmoid", keras_version=3)`` (what a file or
config written by Keras 3 asks for) gives the Keras 3 one. ``serialize`` writes an unambiguous name
(``"hard_sigmoid_keras3"``) for the Keras 3 function so that our own configs round-trip.

MindSpore's CPU kernels approximate ``Sigmoid`` and ``Tanh`` (spec mindspore §3); :data:`ms_cpu_sigmoid`
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
    "get",
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


# --- MindSpore CPU float32 Sigmoid / Tanh emulation (spec mindspore §3) -------------------------

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
    ]
}

# Names each Keras generation accepts (spec §2.3) and what they mean there.
_KERAS2_ALIASES = {"silu": "swish", "hard_sigmoid": "hard_sigmoid"}
_KERAS2_NAMES = {
    "elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid",
    "softmax", "softplus", "softsign", "swish", "tanh", "silu", "relu6", "log_softmax", "leaky_relu",
}
_KERAS3_ALIASES = {
    "hard_sigmoid": "hard_sigmoid_keras3",
    "hard_swish": "hard_silu",
    "silu": "swish",
    "gelu": "gelu_tanh",  # keras 3's gelu defaults to approximate=True
}
_KERAS3_UNSUPPORTED = {"glu": "halves the gate width", "sparsemax": "is not elementwise",
                       "threshold": "needs extra arguments"}


def _by_name(name: str) -> Activation:
    return _BUILTINS[name]


def get(identifier: ActivationLike, keras_version: int = 2) -> Callable[[Tensor], Tensor]:
    """Resolve an activation like ``keras.activations.get``.

    Args:
        identifier: a name, ``None`` (linear), an :class:`Activation`, or any callable on tensors.
        keras_version: 2 (TF 1.x / tf.keras 2.x / tf_keras; the default) or 3 (Keras 3). Only
            changes what ambiguous names mean, chiefly ``"hard_sigmoid"``.

    Raises:
        ValueError: an unknown name, naming the accepted ones.
        NotImplementedError: a Keras 3 name that is not elementwise over the gate (``glu``, ...).
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
    name = identifier
    if name in _BUILTINS and name not in _KERAS2_ALIASES and name not in _KERAS3_ALIASES:
        return _BUILTINS[name]
    if keras_version >= 3:
        if name in _KERAS3_UNSUPPORTED:
            raise NotImplementedError(
                f"activation {name!r} {_KERAS3_UNSUPPORTED[name]}; it cannot be an LSTM gate activation here")
        name = _KERAS3_ALIASES.get(name, name)
    else:
        if name not in _KERAS2_NAMES:
            raise ValueError(
                f"Unknown activation function: {identifier!r} (Keras 2 names: {sorted(_KERAS2_NAMES)}; "
                "pass keras_version=3 for Keras 3 names)")
        name = _KERAS2_ALIASES.get(name, name)
    if name not in _BUILTINS:
        raise ValueError(f"Unknown activation function: {identifier!r}")
    return _BUILTINS[name]


def serialize(fn: Callable[[Tensor], Tensor]) -> Union[str, Callable[[Tensor], Tensor]]:
    """The config value for an activation: its name for built-ins, the callable itself otherwise."""
    if isinstance(fn, Activation):
        return fn.name
    return fn


def is_exact_sigmoid(fn: Callable) -> bool:
    return fn is sigmoid or fn is torch.sigmoid


def is_exact_tanh(fn: Callable) -> bool:
    return fn is tanh or fn is torch.tanh

