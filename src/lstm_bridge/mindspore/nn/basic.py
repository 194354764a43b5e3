"""``nn.Dense``, ``nn.Dropout``, ``nn.Flatten``, ``nn.Embedding``, ``nn.Identity`` (MindSpore 2.10).

Shapes and parameters::

    Dense(in_channels, out_channels)      x (*, in) -> (*, out); weight (out, in), bias (out,)
                                          defaults: HeUniform(sqrt(5)) weight, Uniform(1/sqrt(in)) bias
    Embedding(vocab_size, embedding_size) ids (*) int -> (*, embedding_size); embedding_table (vocab, size),
                                          Normal(0.01) by default, row padding_idx zeroed at construction
    Dropout(keep_prob=0.5, p=None)        p (drop rate) wins over keep_prob; identity unless training
    Flatten(start_dim=1, end_dim=-1)
"""

from __future__ import annotations

import math
from typing import Any, List, Optional

import torch
import torch.nn.functional as F

from ..common import dtype as mstype
from ..common.initializer import HeUniform, Uniform, initializer
from ..common.tensor import Parameter
from .activation import resolve_activation
from .cell import Cell


def _positive_int(value: Any, name: str, cell: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"For '{cell}', the '{name}' must be a positive int, but got {value!r}.")
    return value


class Dense(Cell):
    """``nn.Dense(in_channels, out_channels, weight_init=None, bias_init=None, has_bias=True, activation=None,
    dtype=mstype.float32)``."""

    _plain_inputs = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        weight_init: Any = None,
        bias_init: Any = None,
        has_bias: bool = True,
        activation: Any = None,
        dtype: Any = mstype.float32,
    ):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Dense")
        self.out_channels = _positive_int(out_channels, "out_channels", "Dense")
        self.has_bias = has_bias
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, [out_channels, in_channels], dtype), name="weight")
        self.bias: Optional[Parameter] = None
        if has_bias:
            if bias_init is None:
                bias_init = Uniform(scale=1 / math.sqrt(in_channels))
            self.bias = Parameter(initializer(bias_init, [out_channels], dtype), name="bias")
        self.activation = resolve_activation(activation, "Dense")
        self.activation_flag = self.activation is not None

    def construct(self, x: torch.Tensor) -> Any:
        if x.shape[-1] != self.in_channels:
            raise ValueError(
                f"For 'Dense', the last dimension of x must be in_channels={self.in_channels}; "
                f"received x of shape {tuple(x.shape)}"
            )
        w = self.weight if self.weight.dtype == x.dtype else self.weight.to(x.dtype)
        b = None if self.bias is None else (self.bias if self.bias.dtype == x.dtype else self.bias.to(x.dtype))
        if x.dtype in (torch.float16, torch.bfloat16):
            # MindSpore: MatMul rounds its product to the half dtype, then BiasAdd adds in that dtype
            out = torch.matmul(x.float(), w.float().t()).to(x.dtype)
            if b is not None:
                out = (out.float() + b.float()).to(x.dtype)
        else:
            out = F.linear(x, w, b)
        if self.activation is not None:
            out = self.activation(out)
        return out

    def extra_repr(self) -> str:
        return f"input_channels={self.in_channels}, output_channels={self.out_channels}, has_bias={self.has_bias}"


class Dropout(Cell):
    """``nn.Dropout(keep_prob=0.5, p=None, dtype=mstype.float32)``: drops with rate ``p`` (else
    ``1 - keep_prob``) and scales by ``1/(1-p)``, in training only."""

    _plain_inputs = True

    def __init__(self, keep_prob: float = 0.5, p: Optional[float] = None, dtype: Any = mstype.float32):
        super().__init__()
        if p is None:
            if isinstance(keep_prob, bool) or not isinstance(keep_prob, float):
                raise TypeError(f"For 'Dropout', the 'keep_prob' must be float, but got {type(keep_prob).__name__}")
            if not 0 < keep_prob <= 1:
                raise ValueError(
                    f"For 'Dropout', the 'keep_prob' must be a number in range (0, 1], but got {keep_prob}."
                )
            rate = 1.0 - keep_prob
        else:
            if isinstance(p, bool) or not isinstance(p, (float, int)):
                raise TypeError(f"For 'Dropout', the 'p' must be float, but got {type(p).__name__}")
            if not 0 <= p < 1:
                raise ValueError(f"For 'Dropout', the 'p' must be a number in range [0, 1), but got {p}.")
            rate = float(p)
        self.p, self.keep_prob, self._rate = p, keep_prob, rate

    def construct(self, x: torch.Tensor) -> Any:
        if not self.training or self._rate == 0:
            return x
        return F.dropout(x, self._rate, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}" if self.p is not None else f"keep_prob={self.keep_prob}"


class Flatten(Cell):
    """``nn.Flatten(start_dim=1, end_dim=-1)``."""

    _plain_inputs = True

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def construct(self, x: torch.Tensor) -> Any:
        if x.dim() == 0:
            return x.reshape(1)
        return torch.flatten(x, self.start_dim, self.end_dim)


class Identity(Cell):
    _plain_inputs = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def construct(self, x: Any) -> Any:
        return x


class Embedding(Cell):
    """``nn.Embedding(vocab_size, embedding_size, use_one_hot=False, embedding_table='normal',
    dtype=mstype.float32, padding_idx=None)``; ids of any integer dtype and shape ``(*)`` -> ``(*, size)``."""

    _plain_inputs = True

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        use_one_hot: bool = False,
        embedding_table: Any = "normal",
        dtype: Any = mstype.float32,
        padding_idx: Optional[int] = None,
    ):
        super().__init__()
        self.vocab_size = _positive_int(vocab_size, "vocab_size", "Embedding")
        self.embedding_size = _positive_int(embedding_size, "embedding_size", "Embedding")
        self.use_one_hot = use_one_hot
        self.dtype = dtype
        if padding_idx is not None and not (isinstance(padding_idx, int) and 0 <= padding_idx < vocab_size):
            raise ValueError(
                f"For 'Embedding', the 'padding_idx' must be an int in range [0, {vocab_size}), but got {padding_idx}."
            )
        self.padding_idx = padding_idx
        table: torch.Tensor = initializer(embedding_table, [vocab_size, embedding_size], mstype.float32)
        if padding_idx is not None:
            table = table.clone()
            table[padding_idx] = 0
        self.embedding_table = Parameter(table, name="embedding_table")

    def construct(self, ids: torch.Tensor) -> Any:
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"For 'Embedding', the ids must be an integer tensor; received {ids.dtype}")
        ids = ids.long()
        bad = (ids < 0) | (ids >= self.vocab_size)
        if bool(bad.any()):
            raise ValueError(f"For 'Embedding', ids must be in [0, {self.vocab_size}); received {int(ids[bad][0])}")
        return F.embedding(ids, self.embedding_table)

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}, use_one_hot={self.use_one_hot}, "
            f"padding_idx={self.padding_idx}"
        )


class Pad(Cell):
    """``nn.Pad(paddings, mode='CONSTANT')``: ``paddings[i] = (before, after)`` for axis ``i``; ``"CONSTANT"``
    (zeros), ``"REFLECT"`` or ``"SYMMETRIC"`` (edge repeated)."""

    _plain_inputs = True

    def __init__(self, paddings: Any, mode: str = "CONSTANT"):
        super().__init__()
        if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
            raise ValueError(f"For 'Pad', the 'mode' must be CONSTANT, REFLECT or SYMMETRIC; received {mode!r}")
        self.paddings = tuple(tuple(int(v) for v in p) for p in paddings)
        self.mode = mode

    def construct(self, x: torch.Tensor) -> Any:
        if len(self.paddings) != x.dim():
            raise ValueError(f"For 'Pad', paddings must have one (before, after) pair per axis of x {tuple(x.shape)}")
        if self.mode == "CONSTANT":
            flat: List[int] = []
            for before, after in reversed(self.paddings):
                flat += [before, after]
            return F.pad(x, flat)
        out = x
        for axis, (before, after) in enumerate(self.paddings):
            if not before and not after:
                continue
            n = out.shape[axis]
            skip = 1 if self.mode == "REFLECT" else 0  # REFLECT leaves the edge out, SYMMETRIC repeats it
            head = out.narrow(axis, skip, before).flip(axis) if before else None
            tail = out.narrow(axis, n - after - skip, after).flip(axis) if after else None
            out = torch.cat([p for p in (head, out, tail) if p is not None], dim=axis)
        return out
