"""``nn.BatchNorm1d``, ``nn.BatchNorm2d`` and ``nn.LayerNorm`` (MindSpore 2.10).

BatchNorm parameters, in MindSpore's order and names: ``moving_mean`` ("mean" until a parent Cell renames it),
``moving_variance`` ("variance"), ``gamma``, ``beta``; the moving statistics do not require grad.
MindSpore's ``momentum`` (default 0.9) weighs the *old* statistic: ``moving = momentum * moving + (1 - momentum)
* batch`` (torch's ``momentum`` is ``1 - that``). ``use_batch_statistics``: None = batch statistics in training,
moving ones in inference; True / False = always batch / always moving.
``BatchNorm1d``: x ``(N, C)`` or ``(N, C, L)``; ``BatchNorm2d``: ``(N, C, H, W)`` (``data_format="NCHW"``).

``LayerNorm(normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-7)``: normalises over the
axes from ``begin_norm_axis`` on; ``gamma``/``beta`` have ``normalized_shape`` and apply from ``begin_params_axis``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from ..common import dtype as mstype
from ..common.initializer import initializer
from ..common.tensor import Parameter
from .cell import Cell


class _BatchNorm(Cell):
    _plain_inputs = True
    _ranks: Sequence[int] = (2, 3, 4)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.9,
        affine: bool = True,
        gamma_init: Any = "ones",
        beta_init: Any = "zeros",
        moving_mean_init: Any = "zeros",
        moving_var_init: Any = "ones",
        use_batch_statistics: Optional[bool] = None,
        data_format: str = "NCHW",
        dtype: Any = mstype.float32,
    ):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"For '{name}', the 'num_features' must be a positive int, but got {num_features!r}.")
        if not 0 <= momentum <= 1:
            raise ValueError(f"For '{name}', the 'momentum' must be a number in range [0, 1], but got {momentum}.")
        if use_batch_statistics is not None and not isinstance(use_batch_statistics, bool):
            raise ValueError(
                f"For '{name}', the 'use_batch_statistics' must be a boolean value or None, but got "
                f"{use_batch_statistics}."
            )
        if data_format != "NCHW":
            raise ValueError(f"For '{name}', lstm-bridge supports data_format='NCHW' only; received {data_format!r}")
        self.num_features, self.eps, self.affine = num_features, eps, affine
        self.momentum = 1.0 - momentum  # MindSpore stores it this way too
        self.use_batch_statistics = use_batch_statistics
        self.moving_mean = Parameter(
            initializer(moving_mean_init, num_features, dtype), name="mean", requires_grad=False
        )
        self.moving_variance = Parameter(
            initializer(moving_var_init, num_features, dtype), name="variance", requires_grad=False
        )
        self.gamma = Parameter(initializer(gamma_init, num_features, dtype), name="gamma", requires_grad=affine)
        self.beta = Parameter(initializer(beta_init, num_features, dtype), name="beta", requires_grad=affine)

    def construct(self, x: torch.Tensor) -> Any:
        name = type(self).__name__
        if x.dim() not in self._ranks:
            raise ValueError(
                f"For '{name}', the input must have rank in {list(self._ranks)}; received shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"For '{name}', the channel axis (1) of x must have num_features={self.num_features}; received "
                f"shape {tuple(x.shape)}"
            )
        batch_stats = self.training if self.use_batch_statistics is None else self.use_batch_statistics
        if batch_stats:
            return F.batch_norm(
                x,
                self.moving_mean.data,
                self.moving_variance.data,
                self.gamma.to(x.dtype),
                self.beta.to(x.dtype),
                training=True,
                momentum=self.momentum,
                eps=self.eps,
            )
        return F.batch_norm(
            x,
            self.moving_mean.to(x.dtype),
            self.moving_variance.to(x.dtype),
            self.gamma.to(x.dtype),
            self.beta.to(x.dtype),
            training=False,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, eps={self.eps}, momentum={1.0 - self.momentum}"


class BatchNorm1d(_BatchNorm):
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    _ranks = (4,)


class LayerNorm(Cell):
    """``nn.LayerNorm(normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, gamma_init='ones',
    beta_init='zeros', epsilon=1e-7, dtype=mstype.float32)``."""

    _plain_inputs = True

    def __init__(
        self,
        normalized_shape: Any,
        begin_norm_axis: int = -1,
        begin_params_axis: int = -1,
        gamma_init: Any = "ones",
        beta_init: Any = "zeros",
        epsilon: float = 1e-7,
        dtype: Any = mstype.float32,
    ):
        super().__init__()
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(
                f"For 'LayerNorm', the type of 'normalized_shape' must be tuple or list, but got "
                f"{type(normalized_shape).__name__}"
            )
        self.normalized_shape = tuple(normalized_shape)
        self.begin_norm_axis, self.begin_params_axis, self.epsilon = begin_norm_axis, begin_params_axis, epsilon
        self.gamma = Parameter(initializer(gamma_init, self.normalized_shape, dtype), name="gamma")
        self.beta = Parameter(initializer(beta_init, self.normalized_shape, dtype), name="beta")

    def construct(self, x: torch.Tensor) -> Any:
        rank = x.dim()
        norm_axis = self.begin_norm_axis % rank
        params_axis = self.begin_params_axis % rank
        if tuple(x.shape[params_axis:]) != self.normalized_shape:
            raise ValueError(
                f"For 'LayerNorm', x.shape[begin_params_axis:] must be normalized_shape={self.normalized_shape}; "
                f"received x of shape {tuple(x.shape)}"
            )
        dims = tuple(range(norm_axis, rank))
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.epsilon)
        return y * self.gamma.to(x.dtype) + self.beta.to(x.dtype)
