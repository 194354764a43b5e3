"""NumPy float64 reference ("oracle") for the Keras and MindSpore LSTM layers and the recurrent family
(Keras GRU/SimpleRNN, MindSpore GRU/RNN; docs/spec/keras_gru_simplernn.md, docs/spec/mindspore_gru_rnn.md).

This module is written from the behaviour specs (``docs/spec/keras_lstm.md``,
``docs/spec/mindspore_lstm.md``), independently of the engine. It lives under ``tests/`` (the package does
not ship it); the tests import it as ``oracle``. It is deliberately slow and simple: plain Python loops
over time (and, for Keras, over the batch), one obvious formula per line, so that tests can compare every
fast path and front end against it.

Conventions
-----------
* Gate order is **i, f, g(c), o** along every ``4H`` axis (Keras and MindSpore/PyTorch agree).
* Keras layout: ``kernel (F, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``; row vectors,
  ``z = x_t·W + h·U + b``.
* MindSpore/PyTorch layout: ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh``
  ``(4H,)``; ``z = x_t·W_ih^T + h·W_hh^T + b_ih + b_hh``.
* One step: ``i, f, o = σ(z_i), σ(z_f), σ(z_o)``; ``g = φ(z_g)``; ``c_t = f*c + i*g``;
  ``h_t = o*φ(c_t)``.
* Everything is computed and returned in float64, except ``numerics="mindspore-cpu"`` paths, which
  compute in float32 exactly as MindSpore's CPU kernels do (values returned as float64 arrays).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "np_activation",
    "ms_cpu_sigmoid",
    "ms_cpu_tanh",
    "ms_cpu_matmul_nt",
    "keras_lstm",
    "keras_bidirectional",
    "mindspore_lstm",
    "mindspore_lstm_cell",
    "keras_gru",
    "keras_gru_cell",
    "keras_simple_rnn",
    "keras_simple_rnn_cell",
    "keras_bidirectional_family",
    "keras_gru_to_torch",
    "mindspore_gru",
    "mindspore_rnn",
    "mindspore_gru_cell",
    "mindspore_rnn_cell",
]

NpFn = Callable[[np.ndarray], np.ndarray]
ActivationSpec = Union[str, None, Callable[..., Any]]


# --------------------------------------------------------------------------------------------
# Activations (float64 unless stated)
# --------------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Stable logistic: e = exp(-|x|) never overflows.
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def _elu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _hard_sigmoid_keras2(x: np.ndarray) -> np.ndarray:
    return np.clip(0.2 * np.asarray(x, dtype=np.float64) + 0.5, 0.0, 1.0)


def _hard_sigmoid_keras3(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.float64) + 3.0, 0.0, 6.0) / 6.0


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def _f64(fn: NpFn) -> NpFn:
    def wrapped(x: np.ndarray) -> np.ndarray:
        return fn(np.asarray(x, dtype=np.float64))

    wrapped.__name__ = getattr(fn, "__name__", "activation")
    return wrapped


# --- MindSpore CPU float32 Sigmoid / Tanh (docs/spec/mindspore_lstm.md §3) --------------------------------

_F32 = np.float32


def _fma32(a: np.ndarray, b: Any, c: Any) -> np.ndarray:
    """float32 fused multiply-add ``a*b + c``: all operands float32, the product and sum formed in
    float64 (the product of two float32 is exact there), then one rounding to float32."""
    a64 = np.asarray(a, dtype=_F32).astype(np.float64)
    b64 = np.asarray(b, dtype=_F32).astype(np.float64)
    c64 = np.asarray(c, dtype=_F32).astype(np.float64)
    return (a64 * b64 + c64).astype(_F32)


def ms_cpu_tanh(x: np.ndarray) -> np.ndarray:
    """MindSpore 2.10 CPU float32 ``Tanh``: Padé(7,6) with a hard cut at ±5 (docs/spec/mindspore_lstm.md §3).

    ``x`` is rounded to float32 first; the result is float32 (it can exceed 1 in magnitude, e.g.
    ``tanh(5.0) = 1.0000098``).
    """
    x = np.asarray(x, dtype=_F32)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x * x
        a = _fma32(_fma32(s + _F32(378.0), s, 17325.0), s, 135135.0) * x
        b = _fma32(_fma32(_fma32(np.full_like(s, 28.0), s, 3150.0), s, 62370.0), s, 135135.0)
        y = (a / b).astype(_F32)
    y = np.where(x > _F32(5.0), _F32(1.0), y)
    y = np.where(x < _F32(-5.0), _F32(-1.0), y)
    return y.astype(_F32)


def ms_cpu_sigmoid(x: np.ndarray) -> np.ndarray:
    """MindSpore 2.10 CPU float32 ``Sigmoid`` = ``1 / (1 + exp(-x))`` with MindSpore's polynomial
    ``exp`` (docs/spec/mindspore_lstm.md §3): clamp the exponent's argument, ``k = floor(arg*log2e + 0.5)``,
    ``d = arg - k*ln2``, a degree-5 polynomial of d, times ``2^k`` built from exponent bits.

    float32 in, float32 out. Every FMA has float32 operands **including the constants** (they are
    float32 SIMD registers in MindSpore's kernel) and one rounding. ``2^k`` is applied as
    ``(p * 2^(k-1)) * 2`` so that ``k = 128`` (x < -88.38) stays finite as on real hardware.

    Checked against real MindSpore 2.10 (x86-64 AVX-512) on a 740 001-point float32 grid over
    [-100, 100]: bit-exact. (With float64 constants 190 005 points differ by 1-2 ulp.) Outputs below
    FLT_MIN (x < -87.34) are subnormal here; a MindSpore process with flush-to-zero returns 0 there.
    """
    x = np.asarray(x, dtype=_F32)
    arg = np.clip(-x, _F32(-87.3365478515625), _F32(88.72283935546875)).astype(_F32)
    k = np.floor(_fma32(arg, 1.44269504088896341, 0.5)).astype(_F32)
    d = _fma32(-k, 0.693147, arg)
    p = _fma32(d, 1.0 / 120.0, 1.0 / 24.0)
    for c in (1.0 / 6.0, 0.5, 1.0, 1.0):
        p = _fma32(d, p, c)
    with np.errstate(invalid="ignore"):  # NaN input: k is NaN, its int cast is garbage, result stays NaN
        k_int = k.astype(np.int32)
    half_pow2 = ((k_int + np.int32(126)) << np.int32(23)).astype(np.int32).view(_F32)  # 2^(k-1)
    with np.errstate(over="ignore"):
        e = ((p * half_pow2).astype(_F32) * _F32(2.0)).astype(_F32)
        return (_F32(1.0) / (_F32(1.0) + e)).astype(_F32)


_NAMED: Dict[str, NpFn] = {
    "sigmoid": _sigmoid,
    "tanh": _f64(np.tanh),
    "hard_sigmoid": _hard_sigmoid_keras2,  # Keras 2 family (TF 1.x, tf.keras 2.x, tf_keras)
    "hard_sigmoid_keras2": _hard_sigmoid_keras2,
    "hard_sigmoid_keras3": _hard_sigmoid_keras3,
    "relu": _f64(lambda x: np.maximum(x, 0.0)),
    "linear": _f64(lambda x: x),
    "softsign": _f64(lambda x: x / (1.0 + np.abs(x))),
    "elu": _elu,
    "selu": _selu,
    "softplus": _softplus,
    "exponential": _f64(np.exp),
    "swish": _f64(lambda x: x * _sigmoid(x)),
    "silu": _f64(lambda x: x * _sigmoid(x)),
    "mish": _f64(lambda x: x * np.tanh(_softplus(x))),
    "relu6": _f64(lambda x: np.clip(x, 0.0, 6.0)),
    "leaky_relu": _f64(lambda x: np.where(x >= 0, x, 0.2 * x)),
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "hard_silu": _f64(lambda x: x * _hard_sigmoid_keras3(x)),
    "hard_swish": _f64(lambda x: x * _hard_sigmoid_keras3(x)),
    "hard_tanh": _f64(lambda x: np.clip(x, -1.0, 1.0)),
    "log_sigmoid": _f64(lambda x: -_softplus(-x)),
    "celu": _f64(lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))),
    "tanh_shrink": _f64(lambda x: x - np.tanh(x)),
    "soft_shrink": _f64(lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0))),
    "hard_shrink": _f64(lambda x: np.where(np.abs(x) > 0.5, x, 0.0)),
    "squareplus": _f64(lambda x: (x + np.sqrt(x * x + 4.0)) / 2.0),
    "sparse_plus": _f64(lambda x: np.where(x <= -1.0, 0.0, np.where(x >= 1.0, x, (x + 1.0) ** 2 / 4.0))),
    "sparse_sigmoid": _f64(lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0)),
    "ms_cpu_sigmoid": ms_cpu_sigmoid,
    "ms_cpu_tanh": ms_cpu_tanh,
}


def np_activation(name_or_callable: ActivationSpec) -> NpFn:
    """Resolve an activation to a NumPy callable ``f(ndarray) -> ndarray``.

    Accepts a name (``"hard_sigmoid"`` is the **Keras 2** ``clip(0.2x+0.5, 0, 1)``; the Keras 3 one is
    ``"hard_sigmoid_keras3"`` = ``clip(x+3, 0, 6)/6``; ``gelu`` is the exact erf form), ``None``
    (linear), an :class:`lstm_bridge.activations.Activation` (mapped by its ``.name`` to the NumPy
    twin, never by calling its torch function), or a callable on NumPy arrays (returned as is).

    Raises:
        ValueError: unknown name (the message lists the known ones).
        TypeError: anything else.
    """
    if name_or_callable is None:
        return _NAMED["linear"]
    if isinstance(name_or_callable, str):
        if name_or_callable not in _NAMED:
            raise ValueError(f"unknown activation {name_or_callable!r}; expected one of {sorted(_NAMED)} or a callable")
        return _NAMED[name_or_callable]
    name = getattr(name_or_callable, "name", None)
    if type(name_or_callable).__name__ == "Activation" and isinstance(name, str):
        if name not in _NAMED:
            raise ValueError(f"Activation {name!r} has no NumPy twin here; expected one of {sorted(_NAMED)}")
        return _NAMED[name]
    if callable(name_or_callable):
        return name_or_callable
    raise TypeError(f"activation must be a name, None or a callable; received {name_or_callable!r}")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _arr(a: Any, what: str, ndim: Optional[int] = None, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{what} must be {ndim}-D; received shape {out.shape}")
    return out


def _check_shape(a: np.ndarray, expected: Tuple[int, ...], what: str) -> None:
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{what} must have shape {tuple(expected)}; received {tuple(a.shape)}")


# --------------------------------------------------------------------------------------------
# Keras
# --------------------------------------------------------------------------------------------


def _keras_gate_masks(masks: Optional[Any], batch: int, width: int, what: str) -> Optional[List[np.ndarray]]:
    """``(G, B, width)`` with G in {1, 4} -> four ``(B, width)`` masks (one per gate i, f, c, o)."""
    if masks is None:
        return None
    m = _arr(masks, what, ndim=3)
    if m.shape[0] not in (1, 4) or m.shape[1:] != (batch, width):
        raise ValueError(f"{what} must have shape (1 or 4, {batch}, {width}); received {m.shape}")
    return [m[0]] * 4 if m.shape[0] == 1 else [m[g] for g in range(4)]


def keras_lstm(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Optional[Any] = None,
    *,
    activation: ActivationSpec = "tanh",
    recurrent_activation: ActivationSpec = "sigmoid",
    mask: Optional[Any] = None,
    initial_state: Optional[Sequence[Any]] = None,
    go_backwards: bool = False,
    return_sequences: bool = False,
    return_state: bool = False,
    zero_output_for_mask: bool = False,
    time_major: bool = False,
    input_masks: Optional[Any] = None,
    recurrent_masks: Optional[Any] = None,
) -> Union[np.ndarray, List[np.ndarray]]:
    """Reference Keras ``LSTM`` layer (generic CPU path; docs/spec/keras_lstm.md §1, §3, §4, §5), float64.

    Args:
        x: ``(B, T, F)``, or ``(T, B, F)`` with ``time_major``.
        kernel: ``(F, 4u)``; recurrent_kernel ``(u, 4u)``; bias ``(4u,)`` or None. Gates i, f, c, o.
        activation: φ, used for the candidate and for ``φ(c_t)``. recurrent_activation: σ (i, f, o).
            Names resolve through :func:`np_activation` (``"hard_sigmoid"`` = Keras 2).
        mask: ``(B, T)`` (``(T, B)`` with ``time_major``), bool or float, non-zero = keep.
        initial_state: ``[h0, c0]``, each ``(B, u)``; zeros by default.
        go_backwards: process x[T-1] .. x[0]; the returned sequence stays in processing order.
        zero_output_for_mask: masked steps emit 0 instead of the previous output.
        input_masks: ``(G, B, F)``, G = 1 (shared) or 4 (per gate i, f, c, o): multiplies ``x_t``
            at every step (already scaled by 1/(1-rate)). recurrent_masks: ``(G, B, u)`` for ``h_{t-1}``.

    Masking (docs/spec/keras_lstm.md §4): at processing step k on time t, ``(h', c') = cell(x_t, h, c)``; if
    ``mask[b, t]`` the state becomes ``(h', c')`` and ``y_k = h'``; otherwise the state is unchanged
    and ``y_k = y_{k-1}`` (``y_{-1} = 0``), or 0 with ``zero_output_for_mask``.

    Returns:
        The output, ``(B, u)`` (the last processing step's ``y``) or ``(B, T, u)`` with
        ``return_sequences`` (``(T, B, u)`` with ``time_major``); with ``return_state`` the list
        ``[output, h, c]``, h and c ``(B, u)``.
    """
    xs = _arr(x, "x", ndim=3)
    if time_major:
        xs = xs.transpose(1, 0, 2)
    B, T, F = xs.shape
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    _check_shape(W, (F, 4 * u), "kernel")
    _check_shape(U, (u, 4 * u), "recurrent_kernel")
    b = None
    if bias is not None:
        b = _arr(bias, "bias", ndim=1)
        _check_shape(b, (4 * u,), "bias")
    sig = np_activation(recurrent_activation)
    phi = np_activation(activation)

    if mask is None:
        keep = np.ones((B, T), dtype=bool)
    else:
        keep = np.array(mask) != 0
        if time_major:
            keep = keep.T
        _check_shape(keep, (B, T), "mask (batch-major view)")

    if initial_state is None:
        h0 = np.zeros((B, u))
        c0 = np.zeros((B, u))
    else:
        if len(initial_state) != 2:
            raise ValueError(f"initial_state must be [h0, c0]; received {len(initial_state)} tensors")
        h0 = _arr(initial_state[0], "initial_state[0]", ndim=2)
        c0 = _arr(initial_state[1], "initial_state[1]", ndim=2)
        _check_shape(h0, (B, u), "initial_state[0] (h0)")
        _check_shape(c0, (B, u), "initial_state[1] (c0)")

    in_m = _keras_gate_masks(input_masks, B, F, "input_masks")
    rec_m = _keras_gate_masks(recurrent_masks, B, u, "recurrent_masks")

    order = list(range(T - 1, -1, -1)) if go_backwards else list(range(T))
    ys = np.zeros((B, T, u))
    h_out = np.zeros((B, u))
    c_out = np.zeros((B, u))
    for bi in range(B):
        h = h0[bi].copy()
        c = c0[bi].copy()
        y_prev = np.zeros(u)
        for k, t in enumerate(order):
            z = np.zeros(4 * u)
            for g in range(4):
                cols = slice(g * u, (g + 1) * u)
                xg = xs[bi, t] * in_m[g][bi] if in_m is not None else xs[bi, t]
                hg = h * rec_m[g][bi] if rec_m is not None else h
                z[cols] = xg @ W[:, cols] + hg @ U[:, cols]
                if b is not None:
                    z[cols] = z[cols] + b[cols]
            i_g = sig(z[0:u])
            f_g = sig(z[u : 2 * u])
            g_g = phi(z[2 * u : 3 * u])
            o_g = sig(z[3 * u : 4 * u])
            c_new = f_g * c + i_g * g_g
            h_new = o_g * phi(c_new)
            if keep[bi, t]:
                h, c = h_new, c_new
                y = h_new
            else:
                y = np.zeros(u) if zero_output_for_mask else y_prev
            ys[bi, k] = y
            y_prev = y
        h_out[bi] = h
        c_out[bi] = c

    if return_sequences:
        out = ys.transpose(1, 0, 2) if time_major else ys
    else:
        out = ys[:, T - 1] if T > 0 else np.zeros((B, u))
    out = np.ascontiguousarray(out)
    if return_state:
        return [out, h_out, c_out]
    return out


def _split_keras_weights(w: Sequence[Any], what: str) -> Tuple[Any, Any, Optional[Any]]:
    if len(w) == 2:
        return w[0], w[1], None
    if len(w) == 3:
        return w[0], w[1], w[2]
    raise ValueError(f"{what} must be [kernel, recurrent_kernel, bias-or-None]; received {len(w)} arrays")


def keras_bidirectional(
    x: Any,
    forward_weights: Sequence[Any],
    backward_weights: Sequence[Any],
    *,
    merge_mode: Optional[str] = "concat",
    return_sequences: bool = False,
    return_state: bool = False,
    mask: Optional[Any] = None,
    initial_state: Optional[Sequence[Any]] = None,
    activation: ActivationSpec = "tanh",
    recurrent_activation: ActivationSpec = "sigmoid",
    backward_activation: Optional[ActivationSpec] = None,
    backward_recurrent_activation: Optional[ActivationSpec] = None,
    time_major: bool = False,
) -> Union[np.ndarray, List[np.ndarray]]:
    """Reference Keras ``Bidirectional(LSTM)`` (docs/spec/keras_lstm.md §6), float64.

    Args:
        x: ``(B, T, F)`` (``(T, B, F)`` with ``time_major``).
        forward_weights / backward_weights: ``[kernel (F,4u), recurrent_kernel (u,4u), bias (4u,) or None]``.
        merge_mode: ``"concat"``, ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (outputs kept apart).
        mask: ``(B, T)`` (``(T, B)`` with ``time_major``), the same for both directions.
        initial_state: ``[h_f, c_f, h_b, c_b]``, each ``(B, u)``.
        backward_activation / backward_recurrent_activation: the backward layer's, if different.

    Both halves run with ``zero_output_for_mask = return_sequences``; the backward half runs with
    ``go_backwards`` and, with ``return_sequences``, its output is flipped back with a plain full
    reverse along time.

    Returns:
        merged output (or ``[y_f, y_b]`` with ``merge_mode=None``); with ``return_state``
        ``[merged, h_f, c_f, h_b, c_b]`` (``[y_f, y_b, h_f, c_f, h_b, c_b]`` with None).
    """
    if merge_mode not in ("concat", "sum", "mul", "ave", None):
        raise ValueError(f"merge_mode must be one of 'concat', 'sum', 'mul', 'ave', None; received {merge_mode!r}")
    fk, fr, fb = _split_keras_weights(forward_weights, "forward_weights")
    bk, br, bb = _split_keras_weights(backward_weights, "backward_weights")
    init_f = init_b = None
    if initial_state is not None:
        if len(initial_state) != 4:
            raise ValueError(f"initial_state must be [h_f, c_f, h_b, c_b]; received {len(initial_state)} tensors")
        init_f = list(initial_state[:2])
        init_b = list(initial_state[2:])
    common = dict(
        mask=mask,
        return_sequences=return_sequences,
        return_state=True,
        zero_output_for_mask=return_sequences,
        time_major=time_major,
    )
    y_f, h_f, c_f = keras_lstm(
        x,
        fk,
        fr,
        fb,
        activation=activation,
        recurrent_activation=recurrent_activation,
        initial_state=init_f,
        go_backwards=False,
        **common,
    )
    y_b, h_b, c_b = keras_lstm(
        x,
        bk,
        br,
        bb,
        activation=activation if backward_activation is None else backward_activation,
        recurrent_activation=(
            recurrent_activation if backward_recurrent_activation is None else backward_recurrent_activation
        ),
        initial_state=init_b,
        go_backwards=True,
        **common,
    )
    if return_sequences:
        y_b = np.ascontiguousarray(np.flip(y_b, axis=0 if time_major else 1))
    if merge_mode is None:
        outs: List[np.ndarray] = [y_f, y_b]
    elif merge_mode == "concat":
        outs = [np.concatenate([y_f, y_b], axis=-1)]
    elif merge_mode == "sum":
        outs = [y_f + y_b]
    elif merge_mode == "mul":
        outs = [y_f * y_b]
    else:
        outs = [(y_f + y_b) / 2.0]
    if return_state:
        return outs + [h_f, c_f, h_b, c_b]
    return outs if merge_mode is None else outs[0]


# --------------------------------------------------------------------------------------------
# MindSpore
# --------------------------------------------------------------------------------------------

_NUMERICS = ("exact", "mindspore-cpu")


def _ms_cell(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    sig: NpFn,
    tanh: NpFn,
    dtype: Any,
) -> Tuple[np.ndarray, np.ndarray]:
    """One MindSpore/PyTorch step for the whole batch in ``dtype``.

    x ``(B, I)``, h, c ``(B, H)``, w_ih ``(4H, I)``, w_hh ``(4H, H)``, biases ``(4H,)`` or None.
    Gates ``((x·W_ih^T + h·W_hh^T) + b_ih) + b_hh`` in that order (MindSpore's op order), each op
    rounded to ``dtype``.
    """
    H = w_hh.shape[1]
    gates = (x @ w_ih.T).astype(dtype) + (h @ w_hh.T).astype(dtype)
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    gates = gates.astype(dtype)
    i = sig(gates[:, 0:H]).astype(dtype)
    f = sig(gates[:, H : 2 * H]).astype(dtype)
    g = tanh(gates[:, 2 * H : 3 * H]).astype(dtype)
    o = sig(gates[:, 3 * H : 4 * H]).astype(dtype)
    c_new = ((f * c).astype(dtype) + (i * g).astype(dtype)).astype(dtype)
    h_new = (o * tanh(c_new).astype(dtype)).astype(dtype)
    return h_new, c_new


def _numerics_fns(numerics: str) -> Tuple[NpFn, NpFn, Any]:
    if numerics not in _NUMERICS:
        raise ValueError(f"numerics must be one of {_NUMERICS}; received {numerics!r}")
    if numerics == "mindspore-cpu":
        return ms_cpu_sigmoid, ms_cpu_tanh, np.float32
    return _NAMED["sigmoid"], _NAMED["tanh"], np.float64


def _ms_direction(
    x: np.ndarray,
    lengths: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    w: Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]],
    reverse: bool,
    sig: NpFn,
    tanh: NpFn,
    dtype: Any,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction of one layer (docs/spec/mindspore_lstm.md §4).

    x ``(T, B, I)``; lengths ``(B,)`` in [0, T]; h0, c0 ``(B, H)``. The reverse direction reverses
    each row's valid prefix only (position t < L_b <-> L_b-1-t; padding stays), runs forward, and
    maps its outputs back the same way. Steps t >= L_b keep the state and output exact zeros.
    Returns output ``(T, B, H)``, h_n ``(B, H)``, c_n ``(B, H)``.
    """
    T, B, _ = x.shape
    w_ih, w_hh, b_ih, b_hh = w
    H = w_hh.shape[1]

    def src(t: int, b: int) -> int:  # the time index that processing step t of row b reads
        if reverse and t < lengths[b]:
            return int(lengths[b]) - 1 - t
        return t

    h = h0.astype(dtype).copy()
    c = c0.astype(dtype).copy()
    out = np.zeros((T, B, H), dtype=dtype)
    for t in range(T):
        x_t = np.stack([x[src(t, b), b] for b in range(B)]).astype(dtype) if B else x[t]
        h_new, c_new = _ms_cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh, sig, tanh, dtype)
        for b in range(B):
            if t < lengths[b]:
                h[b] = h_new[b]
                c[b] = c_new[b]
                out[src(t, b), b] = h_new[b]
    return out, h, c


def mindspore_lstm(
    x: Any,
    params: Mapping[str, Any],
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    hx: Optional[Tuple[Any, Any]] = None,
    seq_length: Optional[Any] = None,
    numerics: str = "exact",
) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Reference ``mindspore.nn.LSTM`` forward, eval mode, no dropout (docs/spec/mindspore_lstm.md §1.2, §2.1, §4, §5).

    Args:
        x: ``(T, B, I)``, or ``(B, T, I)`` with ``batch_first``.
        params: MindSpore/PyTorch names ``weight_ih_l{l}{s}`` ``(4H, in_l)``, ``weight_hh_l{l}{s}``
            ``(4H, H)``, optional ``bias_ih_l{l}{s}``, ``bias_hh_l{l}{s}`` ``(4H,)``, s in
            {"", "_reverse"}; in_0 = I, in_l = D*H. Gate order i, f, g, o.
        hx: ``(h0, c0)``, each ``(L*D, B, H)`` (also with batch_first), row ``layer*D + direction``.
        seq_length: ``(B,)`` ints. Padded outputs are exactly 0; h_n/c_n are the state after each
            row's last valid step (h0/c0 for length 0); the reverse direction reverses only the
            valid prefix. Unidirectional nets clamp lengths to [0, T]; bidirectional ones reject
            lengths outside it (ValueError, as MindSpore's RuntimeError).
        numerics: ``"exact"`` (float64, exact sigmoid/tanh) or ``"mindspore-cpu"``: with
            ``seq_length`` given, float32 math with MindSpore's approximate CPU Sigmoid/Tanh
            (what its seq_length path computes); without seq_length MindSpore's fused kernel is
            exact, so this falls back to ``"exact"``.

    Returns:
        ``(output, (h_n, c_n))``: output ``(T, B, D*H)`` (``(B, T, D*H)`` with batch_first),
        last axis [forward | reverse]; h_n, c_n ``(L*D, B, H)``. All float64.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1; received {num_layers!r}")
    sig, tanh, dtype = _numerics_fns(numerics)
    if seq_length is None:
        sig, tanh, dtype = _numerics_fns("exact")
    xs = _arr(x, "x", ndim=3)
    if batch_first:
        xs = xs.transpose(1, 0, 2)
    T, B, _ = xs.shape
    D = 2 if bidirectional else 1

    def get(name: str) -> Optional[np.ndarray]:
        if name not in params:
            return None
        return _arr(params[name], f"params[{name!r}]", dtype=dtype)

    if "weight_hh_l0" not in params:
        raise KeyError(
            f"params must hold 'weight_hh_l0' (and the other MindSpore names); received keys {sorted(params)}"
        )
    H = np.shape(params["weight_hh_l0"])[1]

    if seq_length is None:
        lengths = np.full(B, T, dtype=np.int64)
    else:
        lengths = np.array(seq_length).astype(np.int64).reshape(-1)
        if lengths.shape != (B,):
            raise ValueError(f"seq_length must have shape ({B},) (the batch size of x); received {lengths.shape}")
        if bidirectional:
            for b, L in enumerate(lengths):
                if L < 0 or L > T:
                    raise ValueError(f"Invalid seq_lengths[{b}]: {L} (a bidirectional LSTM needs 0 <= length <= T={T})")
        lengths = np.clip(lengths, 0, T)

    if hx is None:
        h0_all = np.zeros((num_layers * D, B, H))
        c0_all = np.zeros((num_layers * D, B, H))
    else:
        if len(hx) != 2:
            raise ValueError(f"hx must be a tuple (h0, c0); received {len(hx)} items")
        h0_all = _arr(hx[0], "hx[0] (h0)", ndim=3)
        c0_all = _arr(hx[1], "hx[1] (c0)", ndim=3)
        _check_shape(h0_all, (num_layers * D, B, H), "hx[0] (h0)")
        _check_shape(c0_all, (num_layers * D, B, H), "hx[1] (c0)")

    layer_in = xs.astype(dtype)
    h_n = np.zeros((num_layers * D, B, H))
    c_n = np.zeros((num_layers * D, B, H))
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d == 1 else "")
            w_ih, w_hh = get("weight_ih" + s), get("weight_hh" + s)
            if w_ih is None or w_hh is None:
                raise KeyError(f"params is missing 'weight_ih{s}' or 'weight_hh{s}'; received keys {sorted(params)}")
            in_size = layer_in.shape[2]
            _check_shape(w_ih, (4 * H, in_size), f"params['weight_ih{s}']")
            _check_shape(w_hh, (4 * H, H), f"params['weight_hh{s}']")
            b_ih, b_hh = get("bias_ih" + s), get("bias_hh" + s)
            for nm, bv in (("bias_ih", b_ih), ("bias_hh", b_hh)):
                if bv is not None:
                    _check_shape(bv, (4 * H,), f"params['{nm}{s}']")
            row = layer * D + d
            o, h, c = _ms_direction(
                layer_in,
                lengths,
                h0_all[row],
                c0_all[row],
                (w_ih, w_hh, b_ih, b_hh),
                reverse=(d == 1),
                sig=sig,
                tanh=tanh,
                dtype=dtype,
            )
            outs.append(o)
            h_n[row] = h
            c_n[row] = c
        layer_in = np.concatenate(outs, axis=2).astype(dtype)
    output = layer_in.astype(np.float64)
    if batch_first:
        output = output.transpose(1, 0, 2)
    return np.ascontiguousarray(output), (h_n, c_n)


def mindspore_lstm_cell(
    x: Any,
    hx: Tuple[Any, Any],
    params: Mapping[str, Any],
    *,
    numerics: str = "exact",
) -> Tuple[np.ndarray, np.ndarray]:
    """Reference ``mindspore.nn.LSTMCell`` step (docs/spec/mindspore_lstm.md §7).

    Args:
        x: ``(B, I)``; hx: ``(h0, c0)`` each ``(B, H)``.
        params: ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, optional ``bias_ih``, ``bias_hh (4H,)``.
        numerics: ``"exact"`` (float64) or ``"mindspore-cpu"`` (float32 with MindSpore's approximate
            CPU Sigmoid/Tanh, which real MindSpore LSTMCell uses on CPU).

    Returns:
        ``(h, c)``, each ``(B, H)``, float64 arrays.
    """
    sig, tanh, dtype = _numerics_fns(numerics)
    xs = _arr(x, "x", ndim=2)
    if len(hx) != 2:
        raise ValueError(f"hx must be (h0, c0); received {len(hx)} items")
    h0 = _arr(hx[0], "hx[0] (h0)", ndim=2)
    c0 = _arr(hx[1], "hx[1] (c0)", ndim=2)
    for key in ("weight_ih", "weight_hh"):
        if key not in params:
            raise KeyError(f"params must hold {key!r}; received keys {sorted(params)}")
    w_ih = _arr(params["weight_ih"], "weight_ih", ndim=2, dtype=dtype)
    w_hh = _arr(params["weight_hh"], "weight_hh", ndim=2, dtype=dtype)
    H = w_hh.shape[1]
    B, I = xs.shape
    _check_shape(w_ih, (4 * H, I), "params['weight_ih']")
    _check_shape(w_hh, (4 * H, H), "params['weight_hh']")
    _check_shape(h0, (B, H), "hx[0] (h0)")
    _check_shape(c0, (B, H), "hx[1] (c0)")
    b_ih = _arr(params["bias_ih"], "bias_ih", dtype=dtype) if "bias_ih" in params else None
    b_hh = _arr(params["bias_hh"], "bias_hh", dtype=dtype) if "bias_hh" in params else None
    h, c = _ms_cell(xs.astype(dtype), h0.astype(dtype), c0.astype(dtype), w_ih, w_hh, b_ih, b_hh, sig, tanh, dtype)
    return h.astype(np.float64), c.astype(np.float64)


# ============================================================================================
# The recurrent family: GRU and the simple RNN
# (docs/spec/keras_gru_simplernn.md, docs/spec/mindspore_gru_rnn.md)
# ============================================================================================


def _keras_family_masks(
    masks: Optional[Any], batch: int, width: int, gates: int, what: str
) -> Optional[List[np.ndarray]]:
    """``(G, B, width)`` with G in {1, gates} (or a 2-D ``(B, width)`` = one shared mask) -> ``gates`` masks."""
    if masks is None:
        return None
    m = _arr(masks, what)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] not in (1, gates) or m.shape[1:] != (batch, width):
        raise ValueError(
            f"{what} must have shape (1 or {gates}, {batch}, {width}) or ({batch}, {width}); received {m.shape}"
        )
    return [m[0]] * gates if m.shape[0] == 1 else [m[g] for g in range(gates)]


def _keras_single_state(initial_state: Optional[Any], batch: int, u: int) -> np.ndarray:
    """``initial_state`` of a one-state layer (GRU, SimpleRNN): ``[h0]``, ``(h0,)`` or a bare ``(B, u)`` array."""
    if initial_state is None:
        return np.zeros((batch, u))
    if isinstance(initial_state, (list, tuple)):
        if len(initial_state) != 1:
            raise ValueError(f"initial_state must be [h0] (one state); received {len(initial_state)} tensors")
        initial_state = initial_state[0]
    h0 = _arr(initial_state, "initial_state[0] (h0)", ndim=2)
    _check_shape(h0, (batch, u), "initial_state[0] (h0)")
    return h0


def _keras_keep(mask: Optional[Any], B: int, T: int, time_major: bool) -> np.ndarray:
    if mask is None:
        return np.ones((B, T), dtype=bool)
    keep = np.array(mask) != 0
    if time_major:
        keep = keep.T
    _check_shape(keep, (B, T), "mask (batch-major view)")
    return keep


def _keras_run_one_state(
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    xs: np.ndarray,
    h0: np.ndarray,
    keep: np.ndarray,
    go_backwards: bool,
    zero_output_for_mask: bool,
) -> Tuple[np.ndarray, np.ndarray]:
    """Keras ``backend.rnn`` masking rule for a one-state cell (docs/spec/keras_gru_simplernn.md §4).

    xs ``(B, T, F)``, h0 ``(B, u)``, keep ``(B, T)`` bool. ``step(x_t (B,F), h (B,u)) -> h' (B,u)``.
    Returns ``(ys (B, T, u) in processing order, h_T (B, u))``.
    """
    B, T, _ = xs.shape
    u = h0.shape[1]
    order = list(range(T - 1, -1, -1)) if go_backwards else list(range(T))
    ys = np.zeros((B, T, u))
    h = h0.copy()
    y_prev = np.zeros((B, u))
    for k, t in enumerate(order):
        h_new = step(xs[:, t], h)
        kt = keep[:, t][:, None]
        h = np.where(kt, h_new, h)
        y = np.where(kt, h_new, 0.0 if zero_output_for_mask else y_prev)
        ys[:, k] = y
        y_prev = y
    return ys, h


def _keras_finish(
    ys: np.ndarray, h: np.ndarray, T: int, return_sequences: bool, return_state: bool, time_major: bool
) -> Union[np.ndarray, List[np.ndarray]]:
    B, _, u = ys.shape
    if return_sequences:
        out = ys.transpose(1, 0, 2) if time_major else ys
    else:
        out = ys[:, T - 1] if T > 0 else np.zeros((B, u))
    out = np.ascontiguousarray(out)
    return [out, h] if return_state else out


def _keras_gru_biases(
    bias: Optional[Any], u: int, reset_after: bool
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(input bias (3u,), recurrent bias (3u,) or None). reset_after: bias (2, 3u) = [input row, recurrent row]."""
    if bias is None:
        return None, None
    b = _arr(bias, "bias")
    if reset_after:
        _check_shape(b, (2, 3 * u), "bias (reset_after=True: [input row, recurrent row])")
        return b[0], b[1]
    _check_shape(b, (3 * u,), "bias (reset_after=False)")
    return b, None


def keras_gru_cell(
    x: Any,
    h: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Optional[Any] = None,
    *,
    reset_after: bool = True,
    activation: ActivationSpec = "tanh",
    recurrent_activation: ActivationSpec = "sigmoid",
    input_masks: Optional[Any] = None,
    recurrent_masks: Optional[Any] = None,
) -> np.ndarray:
    """One Keras ``GRUCell`` step (docs/spec/keras_gru_simplernn.md §1), float64.

    Args:
        x: ``(B, F)``; h: ``(B, u)``.
        kernel: ``(F, 3u)``, recurrent_kernel ``(u, 3u)``, column blocks **z, r, h**.
        bias: ``(2, 3u)`` (row 0 input bias, row 1 recurrent bias) with ``reset_after``, else ``(3u,)``; or None.
        reset_after: True: ``hh = φ(x·W_h + b_h + r ⊙ (h·U_h + b'_h))``; False: ``hh = φ(x·W_h + b_h + (r ⊙ h)·U_h)``.
        input_masks: ``(G, B, F)``, G = 1 (one shared mask, implementation 2) or 3 (per gate z, r, h,
            implementation 1); already scaled by 1/(1-rate). recurrent_masks: ``(G, B, u)`` on h_{t-1}
            inside the matmuls only (the final mix uses the undropped h).

    Returns:
        ``h_t = z ⊙ h + (1 − z) ⊙ hh``, ``(B, u)``.
    """
    xs = _arr(x, "x", ndim=2)
    hs = _arr(h, "h", ndim=2)
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    B, F = xs.shape
    _check_shape(W, (F, 3 * u), "kernel")
    _check_shape(U, (u, 3 * u), "recurrent_kernel")
    _check_shape(hs, (B, u), "h")
    b_in, b_rec = _keras_gru_biases(bias, u, reset_after)
    in_m = _keras_family_masks(input_masks, B, F, 3, "input_masks")
    rec_m = _keras_family_masks(recurrent_masks, B, u, 3, "recurrent_masks")
    return _keras_gru_step(
        xs,
        hs,
        W,
        U,
        b_in,
        b_rec,
        reset_after,
        np_activation(recurrent_activation),
        np_activation(activation),
        in_m,
        rec_m,
    )


def _keras_gru_step(
    x: np.ndarray,
    h: np.ndarray,
    W: np.ndarray,
    U: np.ndarray,
    b_in: Optional[np.ndarray],
    b_rec: Optional[np.ndarray],
    reset_after: bool,
    sig: NpFn,
    phi: NpFn,
    in_m: Optional[List[np.ndarray]],
    rec_m: Optional[List[np.ndarray]],
) -> np.ndarray:
    u = U.shape[0]
    blk = [slice(0, u), slice(u, 2 * u), slice(2 * u, 3 * u)]  # z, r, h
    xg = [x * in_m[g] if in_m is not None else x for g in range(3)]
    hg = [h * rec_m[g] if rec_m is not None else h for g in range(3)]
    x_proj = [xg[g] @ W[:, blk[g]] + (b_in[blk[g]] if b_in is not None else 0.0) for g in range(3)]
    rec_z = hg[0] @ U[:, blk[0]] + (b_rec[blk[0]] if b_rec is not None else 0.0)
    rec_r = hg[1] @ U[:, blk[1]] + (b_rec[blk[1]] if b_rec is not None else 0.0)
    z = sig(x_proj[0] + rec_z)
    r = sig(x_proj[1] + rec_r)
    if reset_after:
        rec_h = r * (hg[2] @ U[:, blk[2]] + (b_rec[blk[2]] if b_rec is not None else 0.0))
    else:
        rec_h = (r * hg[2]) @ U[:, blk[2]]
    hh = phi(x_proj[2] + rec_h)
    return z * h + (1.0 - z) * hh


def keras_gru(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Optional[Any] = None,
    *,
    reset_after: bool = True,
    activation: ActivationSpec = "tanh",
    recurrent_activation: ActivationSpec = "sigmoid",
    mask: Optional[Any] = None,
    initial_state: Optional[Any] = None,
    go_backwards: bool = False,
    return_sequences: bool = False,
    return_state: bool = False,
    zero_output_for_mask: bool = False,
    time_major: bool = False,
    input_masks: Optional[Any] = None,
    recurrent_masks: Optional[Any] = None,
) -> Union[np.ndarray, List[np.ndarray]]:
    """Reference Keras ``GRU`` layer (generic path; docs/spec/keras_gru_simplernn.md §1-§5), float64.

    Args:
        x: ``(B, T, F)`` (``(T, B, F)`` with ``time_major``).
        kernel ``(F, 3u)``, recurrent_kernel ``(u, 3u)``, bias as in :func:`keras_gru_cell`. Gates z, r, h.
        reset_after: the GRU form (TF2/Keras 3 default True; TF 1.15 ``v1.GRU`` default False).
        activation / recurrent_activation: names resolve through :func:`np_activation`
            (``"hard_sigmoid"`` = the Keras 2 one, ``"hard_sigmoid_keras3"`` the Keras 3 one).
        mask: ``(B, T)`` (``(T, B)`` with ``time_major``), non-zero = keep. Masked steps keep h and emit
            the previous output (0 before any valid step), or 0 with ``zero_output_for_mask``.
        initial_state: ``[h0]`` or ``h0``, ``(B, u)``; zeros by default.
        go_backwards: process x[T-1] .. x[0]; the returned sequence stays in processing order.
        input_masks / recurrent_masks: dropout masks, see :func:`keras_gru_cell`; reused at every step.

    Returns:
        output ``(B, u)`` or ``(B, T, u)`` (``(T, B, u)`` with time_major); with ``return_state``
        ``[output, h]``.
    """
    xs = _arr(x, "x", ndim=3)
    if time_major:
        xs = xs.transpose(1, 0, 2)
    B, T, F = xs.shape
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    _check_shape(W, (F, 3 * u), "kernel")
    _check_shape(U, (u, 3 * u), "recurrent_kernel")
    b_in, b_rec = _keras_gru_biases(bias, u, reset_after)
    sig = np_activation(recurrent_activation)
    phi = np_activation(activation)
    keep = _keras_keep(mask, B, T, time_major)
    h0 = _keras_single_state(initial_state, B, u)
    in_m = _keras_family_masks(input_masks, B, F, 3, "input_masks")
    rec_m = _keras_family_masks(recurrent_masks, B, u, 3, "recurrent_masks")

    def step(x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return _keras_gru_step(x_t, h, W, U, b_in, b_rec, reset_after, sig, phi, in_m, rec_m)

    ys, h = _keras_run_one_state(step, xs, h0, keep, go_backwards, zero_output_for_mask)
    return _keras_finish(ys, h, T, return_sequences, return_state, time_major)


def keras_simple_rnn_cell(
    x: Any,
    h: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Optional[Any] = None,
    *,
    activation: ActivationSpec = "tanh",
    input_mask: Optional[Any] = None,
    recurrent_mask: Optional[Any] = None,
) -> np.ndarray:
    """One Keras ``SimpleRNNCell`` step: ``φ((x ⊙ m_x)·W + b + (h ⊙ m_h)·U)`` (docs/spec/keras_gru_simplernn.md §1.3).

    x ``(B, F)``, h ``(B, u)``, kernel ``(F, u)``, recurrent_kernel ``(u, u)``, bias ``(u,)`` or None;
    input_mask ``(B, F)`` / recurrent_mask ``(B, u)`` (one mask each; already scaled). Returns ``(B, u)``.
    """
    xs = _arr(x, "x", ndim=2)
    hs = _arr(h, "h", ndim=2)
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    B, F = xs.shape
    _check_shape(W, (F, u), "kernel")
    _check_shape(U, (u, u), "recurrent_kernel")
    _check_shape(hs, (B, u), "h")
    b = None
    if bias is not None:
        b = _arr(bias, "bias", ndim=1)
        _check_shape(b, (u,), "bias")
    in_m = _keras_family_masks(input_mask, B, F, 1, "input_mask")
    rec_m = _keras_family_masks(recurrent_mask, B, u, 1, "recurrent_mask")
    return _keras_simple_step(xs, hs, W, U, b, np_activation(activation), in_m, rec_m)


def _keras_simple_step(
    x: np.ndarray,
    h: np.ndarray,
    W: np.ndarray,
    U: np.ndarray,
    b: Optional[np.ndarray],
    phi: NpFn,
    in_m: Optional[List[np.ndarray]],
    rec_m: Optional[List[np.ndarray]],
) -> np.ndarray:
    xd = x * in_m[0] if in_m is not None else x
    hd = h * rec_m[0] if rec_m is not None else h
    pre = xd @ W
    if b is not None:
        pre = pre + b
    return phi(pre + hd @ U)


def keras_simple_rnn(
    x: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Optional[Any] = None,
    *,
    activation: ActivationSpec = "tanh",
    mask: Optional[Any] = None,
    initial_state: Optional[Any] = None,
    go_backwards: bool = False,
    return_sequences: bool = False,
    return_state: bool = False,
    zero_output_for_mask: bool = False,
    time_major: bool = False,
    input_mask: Optional[Any] = None,
    recurrent_mask: Optional[Any] = None,
) -> Union[np.ndarray, List[np.ndarray]]:
    """Reference Keras ``SimpleRNN`` layer (docs/spec/keras_gru_simplernn.md §1.3, §3-§5), float64.

    ``h_t = φ(x_t·W + b + h_{t-1}·U)``; kernel ``(F, u)``, recurrent_kernel ``(u, u)``, bias ``(u,)``.
    Masks, go_backwards, initial_state (``[h0]`` or ``h0``) and the return values as in :func:`keras_gru`
    (``[output, h]`` with ``return_state``). input_mask ``(B, F)`` / recurrent_mask ``(B, u)``: the
    dropout masks (one each, reused at every step).
    """
    xs = _arr(x, "x", ndim=3)
    if time_major:
        xs = xs.transpose(1, 0, 2)
    B, T, F = xs.shape
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    _check_shape(W, (F, u), "kernel")
    _check_shape(U, (u, u), "recurrent_kernel")
    b = None
    if bias is not None:
        b = _arr(bias, "bias", ndim=1)
        _check_shape(b, (u,), "bias")
    phi = np_activation(activation)
    keep = _keras_keep(mask, B, T, time_major)
    h0 = _keras_single_state(initial_state, B, u)
    in_m = _keras_family_masks(input_mask, B, F, 1, "input_mask")
    rec_m = _keras_family_masks(recurrent_mask, B, u, 1, "recurrent_mask")

    def step(x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return _keras_simple_step(x_t, h, W, U, b, phi, in_m, rec_m)

    ys, h = _keras_run_one_state(step, xs, h0, keep, go_backwards, zero_output_for_mask)
    return _keras_finish(ys, h, T, return_sequences, return_state, time_major)


def keras_bidirectional_family(
    layer: str,
    x: Any,
    forward_weights: Sequence[Any],
    backward_weights: Sequence[Any],
    *,
    merge_mode: Optional[str] = "concat",
    return_sequences: bool = False,
    return_state: bool = False,
    mask: Optional[Any] = None,
    initial_state: Optional[Sequence[Any]] = None,
    time_major: bool = False,
    **layer_kwargs: Any,
) -> Union[np.ndarray, List[np.ndarray]]:
    """Reference Keras ``Bidirectional(GRU)`` / ``Bidirectional(SimpleRNN)`` (docs/spec/keras_gru_simplernn.md §6).

    Args:
        layer: ``"gru"`` or ``"simple_rnn"``.
        forward_weights / backward_weights: ``[kernel, recurrent_kernel, bias-or-None]`` of each half.
        initial_state: ``[h_f, h_b]``.
        layer_kwargs: passed to both halves (``reset_after``, activations, ...).

    The same rules as for ``Bidirectional(LSTM)``: both halves get ``zero_output_for_mask =
    return_sequences``; the backward half runs with go_backwards and (return_sequences) is flipped
    back with a full reverse. Returns the merged output (``[y_f, y_b]`` for merge_mode None); with
    ``return_state`` ``[merged, h_f, h_b]`` (``[y_f, y_b, h_f, h_b]``).
    """
    fns: Dict[str, Callable[..., Any]] = {"gru": keras_gru, "simple_rnn": keras_simple_rnn}
    if layer not in fns:
        raise ValueError(f"layer must be 'gru' or 'simple_rnn'; received {layer!r}")
    if merge_mode not in ("concat", "sum", "mul", "ave", None):
        raise ValueError(f"merge_mode must be one of 'concat', 'sum', 'mul', 'ave', None; received {merge_mode!r}")
    fn = fns[layer]
    fk, fr, fb = _split_keras_weights(forward_weights, "forward_weights")
    bk, br, bb = _split_keras_weights(backward_weights, "backward_weights")
    init_f = init_b = None
    if initial_state is not None:
        if len(initial_state) != 2:
            raise ValueError(f"initial_state must be [h_f, h_b]; received {len(initial_state)} tensors")
        init_f, init_b = [initial_state[0]], [initial_state[1]]
    common = dict(
        mask=mask,
        return_sequences=return_sequences,
        return_state=True,
        zero_output_for_mask=return_sequences,
        time_major=time_major,
        **layer_kwargs,
    )
    y_f, h_f = fn(x, fk, fr, fb, initial_state=init_f, go_backwards=False, **common)
    y_b, h_b = fn(x, bk, br, bb, initial_state=init_b, go_backwards=True, **common)
    if return_sequences:
        y_b = np.ascontiguousarray(np.flip(y_b, axis=0 if time_major else 1))
    if merge_mode is None:
        outs: List[np.ndarray] = [y_f, y_b]
    elif merge_mode == "concat":
        outs = [np.concatenate([y_f, y_b], axis=-1)]
    elif merge_mode == "sum":
        outs = [y_f + y_b]
    elif merge_mode == "mul":
        outs = [y_f * y_b]
    else:
        outs = [(y_f + y_b) / 2.0]
    if return_state:
        return outs + [h_f, h_b]
    return outs if merge_mode is None else outs[0]


def keras_gru_to_torch(kernel: Any, recurrent_kernel: Any, bias: Optional[Any]) -> Dict[str, np.ndarray]:
    """Keras GRU weights (``reset_after=True``) -> ``torch.nn.GRU`` / MindSpore ``nn.GRU`` layer-0 names.

    Gate blocks z, r, h (Keras) -> r, z, n (PyTorch/MindSpore); ``bias[0]`` (input row) -> ``bias_ih``,
    ``bias[1]`` (recurrent row) -> ``bias_hh`` (docs/spec/mindspore_gru_rnn.md §6). A bias-free layer
    gets zero biases. ``reset_after=False`` weights (bias ``(3u,)``) have no such equivalent.
    """
    W = _arr(kernel, "kernel", ndim=2)
    U = _arr(recurrent_kernel, "recurrent_kernel", ndim=2)
    u = U.shape[0]
    perm = np.r_[u : 2 * u, 0:u, 2 * u : 3 * u]
    out = {"weight_ih_l0": np.ascontiguousarray(W[:, perm].T), "weight_hh_l0": np.ascontiguousarray(U[:, perm].T)}
    if bias is None:
        out["bias_ih_l0"] = np.zeros(3 * u)
        out["bias_hh_l0"] = np.zeros(3 * u)
    else:
        b = _arr(bias, "bias")
        if b.shape != (2, 3 * u):
            raise ValueError(
                f"only reset_after=True GRUs (bias (2, {3 * u})) map onto torch.nn.GRU; "
                f"received bias of shape {b.shape} (reset_after=False has no PyTorch equivalent)"
            )
        out["bias_ih_l0"] = b[0][perm]
        out["bias_hh_l0"] = b[1][perm]
    return out


# --- MindSpore nn.GRU / nn.RNN -------------------------------------------------------------------

_MS_MODES = ("GRU", "RNN_TANH", "RNN_RELU")


def ms_cpu_matmul_nt(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """MindSpore 2.10 CPU float32 ``MatMul(transpose_b=True)``: ``a @ w.T`` with its summation order
    (docs/spec/mindspore_gru_rnn.md §3.3), a ``(B, K)``, w ``(N, K)``, float32 in and out.

    Measured rule (x86-64 AVX-512): for B >= 2, K <= 8: one float32 FMA chain over k = 0..K-1;
    K >= 9: 16 FMA accumulators (lane = k mod 16), then a halving tree (lane i + lane i+8, +4, +2, +1).
    For B == 1 MindSpore takes another kernel whose order is not known: NumPy's float32 product is
    returned there (last-bit differences).
    """
    a = np.asarray(a, dtype=_F32)
    w = np.asarray(w, dtype=_F32)
    B, K = a.shape
    if B == 1:
        return (a @ w.T).astype(_F32)
    lanes = 1 if K <= 8 else 16
    acc = [np.zeros((B, w.shape[0]), dtype=_F32) for _ in range(lanes)]
    for k in range(K):
        acc[k % lanes] = _fma32(a[:, k : k + 1], w[:, k][None, :], acc[k % lanes])
    while len(acc) > 1:
        half = len(acc) // 2
        acc = [(acc[i] + acc[i + half]).astype(_F32) for i in range(half)]
    return acc[0]


def _ms_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The gate product ``a @ w.T`` (w untransposed, ``(N, K)``): exact float64 for ``"exact"``, MindSpore's
    CPU float32 summation order (:func:`ms_cpu_matmul_nt`) for ``"mindspore-cpu"``. A module-level
    function so that tools/probe_family.py can swap in MindSpore's own MatMul.
    """
    if a.dtype == np.float64:
        return a @ w.T
    return ms_cpu_matmul_nt(a, w)


def _ms_family_cell(
    mode: str,
    x: np.ndarray,
    h: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray],
    b_hh: Optional[np.ndarray],
    sig: NpFn,
    tanh: NpFn,
    dtype: Any,
) -> np.ndarray:
    """One MindSpore ``_gru_cell`` / ``_rnn_tanh_cell`` / ``_rnn_relu_cell`` step in ``dtype``
    (docs/spec/mindspore_gru_rnn.md §2), every op rounded to ``dtype`` in MindSpore's order:

    ``gi = x·W_ih^T + b_ih``, ``gh = h·W_hh^T + b_hh`` (split r, z, n for GRU);
    GRU: ``r = σ(gi_r + gh_r)``, ``z = σ(gi_z + gh_z)``, ``n = tanh(gi_n + r·gh_n)``, ``h' = n + z·(h − n)``;
    RNN: ``h' = act(gi + gh)``.
    """
    H = w_hh.shape[1]
    gi = _ms_matmul(x, w_ih).astype(dtype)
    gh = _ms_matmul(h, w_hh).astype(dtype)
    if b_ih is not None:
        gi = (gi + b_ih).astype(dtype)
    if b_hh is not None:
        gh = (gh + b_hh).astype(dtype)
    if mode == "RNN_TANH":
        return tanh((gi + gh).astype(dtype)).astype(dtype)
    if mode == "RNN_RELU":
        return np.maximum((gi + gh).astype(dtype), 0).astype(dtype)
    r = sig((gi[:, 0:H] + gh[:, 0:H]).astype(dtype)).astype(dtype)
    z = sig((gi[:, H : 2 * H] + gh[:, H : 2 * H]).astype(dtype)).astype(dtype)
    n = tanh((gi[:, 2 * H :] + (r * gh[:, 2 * H :]).astype(dtype)).astype(dtype)).astype(dtype)
    return (n + (z * (h - n).astype(dtype)).astype(dtype)).astype(dtype)


def _ms_family_numerics(numerics: str) -> Tuple[NpFn, NpFn, Any]:
    # Unlike nn.LSTM, nn.GRU / nn.RNN on CPU always run the op-by-op loop: "mindspore-cpu" applies
    # with and without seq_length (docs/spec/mindspore_gru_rnn.md §3).
    return _numerics_fns(numerics)


def _ms_family_direction(
    mode: str,
    x: np.ndarray,
    lengths: Optional[np.ndarray],
    h0: np.ndarray,
    w: Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]],
    reverse: bool,
    sig: NpFn,
    tanh: NpFn,
    dtype: Any,
) -> Tuple[np.ndarray, np.ndarray]:
    """One direction of one layer. x ``(T, B, I)``; lengths ``(B,)`` in [0, T] or None (= all T).

    Reverse: each row's valid prefix is reversed (``ReverseSequence``; the whole sequence without
    seq_length), run forward, and mapped back. Steps ``t >= L_b`` keep h and output exact zeros.
    Returns output ``(T, B, H)`` and h_n ``(B, H)``.
    """
    T, B, _ = x.shape
    H = w[1].shape[1]
    L = np.full(B, T, dtype=np.int64) if lengths is None else lengths

    def src(t: int, b: int) -> int:
        return int(L[b]) - 1 - t if (reverse and t < L[b]) else t

    h = h0.astype(dtype).copy()
    out = np.zeros((T, B, H), dtype=dtype)
    for t in range(T):
        x_t = np.stack([x[src(t, b), b] for b in range(B)]).astype(dtype) if B else x[t]
        h_new = _ms_family_cell(mode, x_t, h, w[0], w[1], w[2], w[3], sig, tanh, dtype)
        for b in range(B):
            if t < L[b]:
                h[b] = h_new[b]
                out[src(t, b), b] = h_new[b]
    return out, h


def _mindspore_family(
    mode: str,
    x: Any,
    params: Mapping[str, Any],
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    hx: Optional[Any],
    seq_length: Optional[Any],
    numerics: str,
) -> Tuple[np.ndarray, np.ndarray]:
    if mode not in _MS_MODES:
        raise ValueError(f"mode must be one of {_MS_MODES}; received {mode!r}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1; received {num_layers!r}")
    sig, tanh, dtype = _ms_family_numerics(numerics)
    gates = 3 if mode == "GRU" else 1
    xs = _arr(x, "x", ndim=3)
    if batch_first:
        xs = xs.transpose(1, 0, 2)
    T, B, _ = xs.shape
    D = 2 if bidirectional else 1
    if "weight_hh_l0" not in params:
        raise KeyError(
            f"params must hold 'weight_hh_l0' (and the other MindSpore names); received keys {sorted(params)}"
        )
    H = np.shape(params["weight_hh_l0"])[1]

    lengths: Optional[np.ndarray] = None
    if seq_length is not None:
        lengths = np.array(seq_length).astype(np.int64).reshape(-1)
        if lengths.shape != (B,):
            raise ValueError(f"seq_length must have shape ({B},) (the batch size of x); received {lengths.shape}")
        if bidirectional:
            for b, Lb in enumerate(lengths):
                if Lb < 0 or Lb > T:
                    raise ValueError(f"Invalid seq_lengths[{b}]: {Lb} (a bidirectional net needs 0 <= length <= T={T})")
        lengths = np.clip(lengths, 0, T)

    if hx is None:
        h0_all = np.zeros((num_layers * D, B, H))
    else:
        h0_all = _arr(hx, "hx", ndim=3)
        _check_shape(h0_all, (num_layers * D, B, H), "hx")

    def get(name: str) -> Optional[np.ndarray]:
        return _arr(params[name], f"params[{name!r}]", dtype=dtype) if name in params else None

    layer_in = xs.astype(dtype)
    h_n = np.zeros((num_layers * D, B, H))
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            s = f"_l{layer}" + ("_reverse" if d == 1 else "")
            w_ih, w_hh = get("weight_ih" + s), get("weight_hh" + s)
            if w_ih is None or w_hh is None:
                raise KeyError(f"params is missing 'weight_ih{s}' or 'weight_hh{s}'; received keys {sorted(params)}")
            _check_shape(w_ih, (gates * H, layer_in.shape[2]), f"params['weight_ih{s}']")
            _check_shape(w_hh, (gates * H, H), f"params['weight_hh{s}']")
            b_ih, b_hh = get("bias_ih" + s), get("bias_hh" + s)
            for nm, bv in (("bias_ih", b_ih), ("bias_hh", b_hh)):
                if bv is not None:
                    _check_shape(bv, (gates * H,), f"params['{nm}{s}']")
            row = layer * D + d
            o, h = _ms_family_direction(
                mode,
                layer_in,
                lengths,
                h0_all[row],
                (w_ih, w_hh, b_ih, b_hh),
                reverse=(d == 1),
                sig=sig,
                tanh=tanh,
                dtype=dtype,
            )
            outs.append(o)
            h_n[row] = h
        layer_in = np.concatenate(outs, axis=2).astype(dtype)
    output = layer_in.astype(np.float64)
    if batch_first:
        output = output.transpose(1, 0, 2)
    return np.ascontiguousarray(output), h_n


def mindspore_gru(
    x: Any,
    params: Mapping[str, Any],
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    hx: Optional[Any] = None,
    seq_length: Optional[Any] = None,
    numerics: str = "exact",
) -> Tuple[np.ndarray, np.ndarray]:
    """Reference ``mindspore.nn.GRU`` forward, eval mode (docs/spec/mindspore_gru_rnn.md §1-§5).

    Args:
        x: ``(T, B, I)`` (``(B, T, I)`` with batch_first).
        params: ``weight_ih_l{l}{s}`` ``(3H, in_l)``, ``weight_hh_l{l}{s}`` ``(3H, H)``, optional
            ``bias_ih_l{l}{s}`` / ``bias_hh_l{l}{s}`` ``(3H,)``; gate blocks **r, z, n** (PyTorch's).
        hx: one Tensor ``(L*D, B, H)`` (also with batch_first), row ``layer*D + direction``.
        seq_length: ``(B,)``; the LSTM rule: zeros after the length, the reverse direction reverses only
            the valid prefix, h_n is the state after the last valid step (h0 for length 0).
        numerics: ``"exact"`` (float64) or ``"mindspore-cpu"``: float32 with MindSpore's approximate
            CPU Sigmoid/Tanh, which its CPU GRU uses **with and without** seq_length.

    Returns:
        ``(output, h_n)``: output ``(T, B, D*H)`` (``(B, T, D*H)`` with batch_first), h_n ``(L*D, B, H)``.
    """
    return _mindspore_family("GRU", x, params, num_layers, bidirectional, batch_first, hx, seq_length, numerics)


def mindspore_rnn(
    x: Any,
    params: Mapping[str, Any],
    *,
    nonlinearity: str = "tanh",
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    hx: Optional[Any] = None,
    seq_length: Optional[Any] = None,
    numerics: str = "exact",
) -> Tuple[np.ndarray, np.ndarray]:
    """Reference ``mindspore.nn.RNN`` forward (docs/spec/mindspore_gru_rnn.md §1-§5):
    ``h' = act(x·W_ih^T + b_ih + h·W_hh^T + b_hh)``, act ``"tanh"`` or ``"relu"``; weights ``(H, in_l)``,
    ``(H, H)``, biases ``(H,)``. Arguments and return value as :func:`mindspore_gru`; with
    ``"mindspore-cpu"`` only tanh is approximated (ReLU is exact).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; received {nonlinearity!r}")
    mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
    return _mindspore_family(mode, x, params, num_layers, bidirectional, batch_first, hx, seq_length, numerics)


def _ms_family_cell_call(mode: str, x: Any, hx: Any, params: Mapping[str, Any], numerics: str) -> np.ndarray:
    sig, tanh, dtype = _ms_family_numerics(numerics)
    gates = 3 if mode == "GRU" else 1
    xs = _arr(x, "x", ndim=2)
    h0 = _arr(hx, "hx", ndim=2)
    for key in ("weight_ih", "weight_hh"):
        if key not in params:
            raise KeyError(f"params must hold {key!r}; received keys {sorted(params)}")
    w_ih = _arr(params["weight_ih"], "weight_ih", ndim=2, dtype=dtype)
    w_hh = _arr(params["weight_hh"], "weight_hh", ndim=2, dtype=dtype)
    H = w_hh.shape[1]
    B, I = xs.shape
    _check_shape(w_ih, (gates * H, I), "params['weight_ih']")
    _check_shape(w_hh, (gates * H, H), "params['weight_hh']")
    _check_shape(h0, (B, H), "hx")
    b_ih = _arr(params["bias_ih"], "bias_ih", dtype=dtype) if "bias_ih" in params else None
    b_hh = _arr(params["bias_hh"], "bias_hh", dtype=dtype) if "bias_hh" in params else None
    h = _ms_family_cell(mode, xs.astype(dtype), h0.astype(dtype), w_ih, w_hh, b_ih, b_hh, sig, tanh, dtype)
    return h.astype(np.float64)


def mindspore_gru_cell(x: Any, hx: Any, params: Mapping[str, Any], *, numerics: str = "exact") -> np.ndarray:
    """Reference ``mindspore.nn.GRUCell`` step (docs/spec/mindspore_gru_rnn.md §7): x ``(B, I)``, hx ``(B, H)``,
    params ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, optional ``bias_ih``/``bias_hh (3H,)``. Returns ``(B, H)``."""
    return _ms_family_cell_call("GRU", x, hx, params, numerics)


def mindspore_rnn_cell(
    x: Any, hx: Any, params: Mapping[str, Any], *, nonlinearity: str = "tanh", numerics: str = "exact"
) -> np.ndarray:
    """Reference ``mindspore.nn.RNNCell`` step (docs/spec/mindspore_gru_rnn.md §7); weights ``(H, I)``, ``(H, H)``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; received {nonlinearity!r}")
    return _ms_family_cell_call("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", x, hx, params, numerics)
