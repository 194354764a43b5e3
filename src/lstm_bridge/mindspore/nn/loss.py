"""``nn.SoftmaxCrossEntropyWithLogits``, ``nn.CrossEntropyLoss``, ``nn.MSELoss`` (MindSpore 2.10).

``SoftmaxCrossEntropyWithLogits(sparse=False, reduction='none')``: logits ``(N, C)``; labels one-hot/probabilities
``(N, C)``, or class ids ``(N,)`` with ``sparse=True``; returns ``(N,)`` (or the mean / sum).
``CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)``: torch's
``cross_entropy`` (same definition). ``MSELoss(reduction='mean')``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..common.tensor import plain
from .cell import Cell

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str, cell: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"For '{cell}', the 'reduction' must be in {list(_REDUCTIONS)}, but got {reduction}.")
    return reduction


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class SoftmaxCrossEntropyWithLogits(Cell):
    _plain_inputs = True

    def __init__(self, sparse: bool = False, reduction: str = "none"):
        super().__init__()
        self.sparse = sparse
        self.reduction = _check_reduction(reduction, "SoftmaxCrossEntropyWithLogits")

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        log_p = torch.log_softmax(logits, dim=-1)
        if self.sparse:
            loss = -log_p.gather(-1, labels.long().unsqueeze(-1)).squeeze(-1)
        else:
            loss = -(labels.to(log_p.dtype) * log_p).sum(-1)
        return _reduce(loss, self.reduction)


class CrossEntropyLoss(Cell):
    _plain_inputs = True

    def __init__(
        self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
    ):
        super().__init__()
        self.weight = None if weight is None else plain(weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction, "CrossEntropyLoss")
        self.label_smoothing = label_smoothing

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        target = labels if labels.is_floating_point() else labels.long()
        return F.cross_entropy(
            logits,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class MSELoss(Cell):
    _plain_inputs = True

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, "MSELoss")

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        return _reduce((logits - labels) ** 2, self.reduction)


class L1Loss(Cell):
    """``nn.L1Loss(reduction='mean')``: ``|logits - labels|``."""

    _plain_inputs = True

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, "L1Loss")

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        return _reduce((logits - labels).abs(), self.reduction)


class NLLLoss(Cell):
    """``nn.NLLLoss(weight=None, ignore_index=-100, reduction='mean')`` over log-probabilities ``(N, C)``."""

    _plain_inputs = True

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.weight = None if weight is None else plain(weight)
        self.ignore_index = ignore_index
        self.reduction = _check_reduction(reduction, "NLLLoss")

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        return F.nll_loss(logits, labels.long(), self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(Cell):
    """``nn.BCELoss(weight=None, reduction='mean')`` over probabilities."""

    _plain_inputs = True

    def __init__(self, weight: Any = None, reduction: str = "mean"):
        super().__init__()
        self.weight = None if weight is None else plain(weight)
        self.reduction = _check_reduction(reduction, "BCELoss")

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        return F.binary_cross_entropy(logits, labels, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(Cell):
    """``nn.BCEWithLogitsLoss(reduction='mean', weight=None, pos_weight=None)``."""

    _plain_inputs = True

    def __init__(self, reduction: str = "mean", weight: Any = None, pos_weight: Any = None):
        super().__init__()
        self.reduction = _check_reduction(reduction, "BCEWithLogitsLoss")
        self.weight = None if weight is None else plain(weight)
        self.pos_weight = None if pos_weight is None else plain(pos_weight)

    def construct(self, logits: torch.Tensor, labels: torch.Tensor) -> Any:
        return F.binary_cross_entropy_with_logits(
            logits, labels, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )
