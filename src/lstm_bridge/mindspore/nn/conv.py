"""``nn.Conv1d``, ``nn.Conv2d``, ``nn.MaxPool1d/2d``, ``nn.AvgPool1d/2d`` (MindSpore 2.10, NCHW / NCL).

Weights: ``Conv2d`` ``(out, in/group, kh, kw)``; ``Conv1d`` ``(out, in/group, 1, k)`` (MindSpore computes a 1-D
convolution as a 2-D one over a unit height, and stores it so); ``bias (out,)`` only with ``has_bias=True``
(default False). ``pad_mode``: ``"same"`` (default for convolutions; output ``ceil(in / stride)``, the
padding split with the smaller half first), ``"valid"`` (no padding), ``"pad"`` (``padding``: an int, or
``(top, bottom, left, right)`` for 2-D, ``(left, right)`` for 1-D). Default weight init HeUniform(sqrt(5)).
Pooling: ``kernel_size=1, stride=1, pad_mode="valid"``; ``"same"`` pads as the convolutions do (max: with
-inf; average: the padded cells are not counted).
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..common import dtype as mstype
from ..common.initializer import HeUniform, Uniform, initializer
from ..common.tensor import Parameter
from .cell import Cell

_PAD_MODES = ("same", "valid", "pad")


def _pair(value: Any, n: int, name: str, cell: str) -> Tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"For '{cell}', '{name}' must be an int or a tuple of {n} ints; received {value!r}")


def _check_pad_mode(pad_mode: str, cell: str) -> str:
    if not isinstance(pad_mode, str) or pad_mode.lower() not in _PAD_MODES:
        raise ValueError(f"For '{cell}', the 'pad_mode' must be one of {list(_PAD_MODES)}; received {pad_mode!r}")
    return pad_mode.lower()


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """``(before, after)`` of MindSpore's/TensorFlow's "same": output ``ceil(size / stride)``."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return total // 2, total - total // 2


def _explicit_padding(padding: Any, dims: int, cell: str) -> List[int]:
    """``[before_0, after_0, before_1, after_1, ...]`` from MindSpore's ``padding``."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        if padding < 0:
            raise ValueError(f"For '{cell}', the 'padding' must be >= 0; received {padding}")
        return [padding] * (2 * dims)
    if isinstance(padding, (tuple, list)) and len(padding) == 2 * dims:
        return [int(p) for p in padding]
    raise ValueError(f"For '{cell}', the 'padding' must be an int or a tuple of {2 * dims} ints; received {padding!r}")


class _Conv(Cell):
    _plain_inputs = True
    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        pad_mode: str = "same",
        padding: Any = 0,
        dilation: Any = 1,
        group: int = 1,
        has_bias: bool = False,
        weight_init: Any = None,
        bias_init: Any = None,
        data_format: str = "NCHW",
        dtype: Any = mstype.float32,
    ):
        super().__init__()
        name = type(self).__name__
        n = self._dims
        self.in_channels, self.out_channels, self.group, self.has_bias = in_channels, out_channels, group, has_bias
        if in_channels % group or out_channels % group:
            raise ValueError(
                f"For '{name}', in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by group ({group})"
            )
        self.kernel_size = _pair(kernel_size, n, "kernel_size", name)
        self.stride = _pair(stride, n, "stride", name)
        self.dilation = _pair(dilation, n, "dilation", name)
        self.pad_mode = _check_pad_mode(pad_mode, name)
        if self.pad_mode != "pad" and padding not in (0, (0,) * 2 * n):
            raise ValueError(
                f"For '{name}', the 'padding' must be 0 when pad_mode is '{self.pad_mode}'; received {padding!r}"
            )
        self.padding = padding
        self._explicit = _explicit_padding(padding, n, name)
        if data_format != "NCHW":
            raise ValueError(f"For '{name}', lstm-bridge supports data_format='NCHW' only; received {data_format!r}")
        shape = [out_channels, in_channels // group] + ([1] if n == 1 else []) + list(self.kernel_size)
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = Parameter(initializer(weight_init, shape, dtype), name="weight")
        self.bias: Optional[Parameter] = None
        if has_bias:
            if bias_init is None:
                fan_in = (in_channels // group) * int(torch.tensor(self.kernel_size).prod())
                bias_init = Uniform(scale=1 / math.sqrt(fan_in))
            self.bias = Parameter(initializer(bias_init, [out_channels], dtype), name="bias")

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad the spatial axes of x (last n) as pad_mode says; F.pad takes the last axis first."""
        n = self._dims
        if self.pad_mode == "valid":
            return x
        if self.pad_mode == "same":
            pads: List[int] = []
            for i in range(n):
                pads += list(same_padding(x.shape[-n + i], self.kernel_size[i], self.stride[i], self.dilation[i]))
        else:
            pads = self._explicit
        flat: List[int] = []
        for i in reversed(range(n)):
            flat += [pads[2 * i], pads[2 * i + 1]]
        return F.pad(x, flat) if any(flat) else x

    def construct(self, x: torch.Tensor) -> Any:
        n = self._dims
        name = type(self).__name__
        if x.dim() != n + 2 or x.shape[1] != self.in_channels:
            layout = "(N, C, L)" if n == 1 else "(N, C, H, W)"
            raise ValueError(
                f"For '{name}', x must be {layout} with C = in_channels = {self.in_channels}; received {tuple(x.shape)}"
            )
        x = self._pad(x)
        w = self.weight.to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        if n == 1:
            out = F.conv2d(x.unsqueeze(2), w, b, (1, self.stride[0]), 0, (1, self.dilation[0]), self.group)
            return out.squeeze(2)
        return F.conv2d(x, w, b, self.stride, 0, self.dilation, self.group)


class Conv2d(_Conv):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, pad_mode='same', padding=0, dilation=1,
    group=1, has_bias=False, weight_init=None, bias_init=None, data_format='NCHW', dtype=mstype.float32)``."""

    _dims = 2


class Conv1d(_Conv):
    """``nn.Conv1d(in_channels, out_channels, kernel_size, stride=1, pad_mode='same', padding=0, dilation=1,
    group=1, has_bias=False, weight_init=None, bias_init=None, dtype=mstype.float32)``; weight ``(out, in, 1, k)``."""

    _dims = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        pad_mode: str = "same",
        padding: Any = 0,
        dilation: int = 1,
        group: int = 1,
        has_bias: bool = False,
        weight_init: Any = None,
        bias_init: Any = None,
        dtype: Any = mstype.float32,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            pad_mode,
            padding,
            dilation,
            group,
            has_bias,
            weight_init,
            bias_init,
            "NCHW",
            dtype,
        )


class _Pool(Cell):
    _plain_inputs = True
    _dims = 2
    _max = True

    def __init__(
        self,
        kernel_size: Any = 1,
        stride: Any = 1,
        pad_mode: str = "valid",
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        super().__init__()
        name = type(self).__name__
        n = self._dims
        self.kernel_size = _pair(kernel_size, n, "kernel_size", name)
        self.stride = _pair(stride, n, "stride", name)
        self.pad_mode = _check_pad_mode(pad_mode, name)
        self.padding = (
            _pair(padding, n, "padding", name)
            if not isinstance(padding, (tuple, list)) or len(padding) == n
            else padding
        )
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def construct(self, x: torch.Tensor) -> Any:
        n = self._dims
        squeeze = False
        if x.dim() == n + 1:  # unbatched
            x, squeeze = x.unsqueeze(0), True
        if x.dim() != n + 2:
            raise ValueError(f"For '{type(self).__name__}', x must have rank {n + 2}; received shape {tuple(x.shape)}")
        if n == 1:
            x = x.unsqueeze(2)
        k = (1,) * (2 - n) + self.kernel_size
        s = (1,) * (2 - n) + self.stride
        if self.pad_mode == "same":
            pads: List[int] = []
            for i in reversed(range(2)):
                pads += list(same_padding(x.shape[2 + i], k[i], s[i]))
            if self._max:
                out = F.max_pool2d(F.pad(x, pads, value=-float("inf")), k, s)
            else:
                total = F.avg_pool2d(F.pad(x, pads), k, s, divisor_override=1)
                ones = F.pad(torch.ones_like(x[:1, :1]), pads)
                out = total / F.avg_pool2d(ones, k, s, divisor_override=1)
        else:
            p = (0,) * (2 - n) + (tuple(self.padding) if self.pad_mode == "pad" else (0,) * n)
            if self._max:
                out = F.max_pool2d(x, k, s, p, ceil_mode=self.ceil_mode)
            else:
                out = F.avg_pool2d(x, k, s, p, ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)
        if n == 1:
            out = out.squeeze(2)
        return out.squeeze(0) if squeeze else out


class MaxPool2d(_Pool):
    """``nn.MaxPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0, dilation=1, return_indices=False,
    ceil_mode=False, data_format='NCHW')``."""

    def __init__(
        self,
        kernel_size: Any = 1,
        stride: Any = 1,
        pad_mode: str = "valid",
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        data_format: str = "NCHW",
    ):
        if dilation not in (1, (1, 1)) or return_indices:
            raise ValueError("For 'MaxPool2d', lstm-bridge supports dilation=1 and return_indices=False only")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode)


class MaxPool1d(_Pool):
    """``nn.MaxPool1d(kernel_size=1, stride=1, pad_mode='valid', padding=0, dilation=1, return_indices=False,
    ceil_mode=False)``; x ``(N, C, L)``."""

    _dims = 1

    def __init__(
        self,
        kernel_size: Any = 1,
        stride: Any = 1,
        pad_mode: str = "valid",
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        if dilation not in (1, (1,)) or return_indices:
            raise ValueError("For 'MaxPool1d', lstm-bridge supports dilation=1 and return_indices=False only")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode)


class AvgPool2d(_Pool):
    """``nn.AvgPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None, data_format='NCHW')``."""

    _max = False

    def __init__(
        self,
        kernel_size: Any = 1,
        stride: Any = 1,
        pad_mode: str = "valid",
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Any = None,
        data_format: str = "NCHW",
    ):
        if divisor_override is not None:
            raise ValueError("For 'AvgPool2d', lstm-bridge supports divisor_override=None only")
        super().__init__(kernel_size, stride, pad_mode, padding, ceil_mode, count_include_pad)


class AvgPool1d(_Pool):
    """``nn.AvgPool1d(kernel_size=1, stride=1, pad_mode='valid', padding=0, ceil_mode=False,
    count_include_pad=True)``; x ``(N, C, L)``."""

    _dims = 1
    _max = False
