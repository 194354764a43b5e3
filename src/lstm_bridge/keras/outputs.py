"""Keras's output rules for recurrent layers, in one place (docs/spec/keras_lstm.md §3-§6).

The engine returns, per direction, the ``(T, B, u)`` outputs in *original* time order (position t is
the output computed at input step t, whichever way the direction ran). Keras presents them so:

* one layer (``LSTM``): without ``return_sequences`` the output is the last *processed* step's
  (``x[0]``'s for ``go_backwards``); with it, the sequence in *processing order* (a ``go_backwards``
  layer's sequence is not flipped back);
* two directions (``Bidirectional``): each half as its layer returns it, then the backward half's
  sequence is flipped along time (a plain full reverse), whatever its direction - so a wrapped
  ``go_backwards`` layer gives two reversed halves, exactly as tf_keras and Keras 3 do;
* ``merge_mode``: ``"concat"`` (last axis), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (both halves);
* states: ``[h, c]`` per direction, forward's then backward's: ``[h_f, c_f, h_b, c_b]`` (GRU and
  SimpleRNN carry h only: ``[h_f, h_b]``);
* several results: a list in tf_keras (``keras_version`` 2), a tuple in Keras 3.

``keras.LSTM`` / ``GRU`` / ``SimpleRNN``, ``keras.Bidirectional`` and the converter's chain runner
(:mod:`lstm_bridge.convert.chain`) all call these functions.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, TypeVar, Union

import torch

__all__ = [
    "MERGE_MODES",
    "check_merge_mode",
    "direction_output",
    "flip_back",
    "merge",
    "merge_shapes",
    "merged_outputs",
    "pack",
    "state_list",
]

#: Keras's merge modes for two directions; ``None`` returns both halves.
MERGE_MODES: Tuple[Optional[str], ...] = ("concat", "sum", "mul", "ave", None)

T = TypeVar("T")


def check_merge_mode(merge_mode: Optional[str]) -> None:
    """Raise Keras's ValueError unless ``merge_mode`` is one of :data:`MERGE_MODES`."""
    if merge_mode not in MERGE_MODES:
        raise ValueError(
            f"Invalid merge mode. Received: {merge_mode!r}. "
            f"Merge mode should be one of {{'sum', 'mul', 'ave', 'concat', None}}"
        )


def direction_output(
    seq: torch.Tensor, *, reverse: bool, return_sequences: bool, processing_order: Optional[bool] = None
) -> torch.Tensor:
    """One direction's output as its Keras layer returns it, time-major.

    Args:
        seq: ``(T, B, u)`` engine outputs in original time order.
        reverse: whether the direction ran from the last step to the first (``go_backwards``).
        return_sequences: the whole sequence ``(T, B, u)``, else the last processed step ``(B, u)``.
        processing_order: whether the sequence comes back in processing order (default: ``reverse``,
            as a Keras layer returns it).
    """
    if return_sequences:
        flip = reverse if processing_order is None else processing_order
        return seq.flip(0) if flip else seq
    return seq[0] if reverse else seq[-1]


def flip_back(y_backward: torch.Tensor, time_axis: int) -> torch.Tensor:
    """``Bidirectional``: the backward half's returned sequence reversed along ``time_axis``."""
    return y_backward.flip(time_axis)


def merge(y_forward: torch.Tensor, y_backward: torch.Tensor, merge_mode: Optional[str]) -> List[torch.Tensor]:
    """The two halves merged along the last axis (``[merged]``), or ``[y_f, y_b]`` for ``None``."""
    check_merge_mode(merge_mode)
    if merge_mode == "concat":
        return [torch.cat([y_forward, y_backward], dim=-1)]
    if merge_mode == "sum":
        return [y_forward + y_backward]
    if merge_mode == "mul":
        return [y_forward * y_backward]
    if merge_mode == "ave":
        return [(y_forward + y_backward) / 2]
    return [y_forward, y_backward]


def merge_shapes(shape: Tuple[Optional[int], ...], merge_mode: Optional[str]) -> List[Tuple[Optional[int], ...]]:
    """The shapes :func:`merge` gives for two halves of ``shape``: the last axis doubled for ``"concat"``,
    two outputs for ``None``, else ``shape``."""
    check_merge_mode(merge_mode)
    if merge_mode == "concat":
        last = shape[-1]
        return [shape[:-1] + (None if last is None else last * 2,)]
    if merge_mode is None:
        return [shape, shape]
    return [shape]


def merged_outputs(
    seqs: Sequence[torch.Tensor],
    reverse: Sequence[bool],
    *,
    return_sequences: bool,
    merge_mode: Optional[str],
    processing_order: Optional[bool] = None,
) -> List[torch.Tensor]:
    """A whole Keras layer's outputs (time-major) from its directions' engine outputs.

    Args:
        seqs: one ``(T, B, u)`` original-time output per direction (1: ``LSTM``; 2: ``Bidirectional``,
            forward half first).
        reverse: per direction, whether it ran backwards.
        processing_order: one direction only: whether its sequence is returned in processing order
            (default: ``reverse[0]``). Ignored for two directions (each half as its layer returns it).

    Returns:
        ``[output]``, or ``[y_f, y_b]`` for two directions with ``merge_mode=None``.
    """
    if len(seqs) != len(reverse) or len(seqs) not in (1, 2):
        raise ValueError(
            f"expected 1 or 2 directions with one reverse flag each; received {len(seqs)} "
            f"outputs and {len(reverse)} flags"
        )
    if len(seqs) == 1:
        return [
            direction_output(
                seqs[0], reverse=reverse[0], return_sequences=return_sequences, processing_order=processing_order
            )
        ]
    y_f, y_b = (direction_output(s, reverse=r, return_sequences=return_sequences) for s, r in zip(seqs, reverse))
    if return_sequences:
        y_b = flip_back(y_b, 0)
    return merge(y_f, y_b, merge_mode)


def state_list(hs: Sequence[torch.Tensor], cs: Optional[Sequence[torch.Tensor]]) -> List[torch.Tensor]:
    """Keras's state order: ``[h, c]`` per direction, in direction order (``[h_f, c_f, h_b, c_b]``); the
    one-state kinds (GRU, SimpleRNN: ``cs`` None) ``[h_f, h_b]``."""
    if cs is None:
        return list(hs)
    if len(hs) != len(cs):
        raise ValueError(f"expected one c per h; received {len(hs)} h and {len(cs)} c")
    return [s for h, c in zip(hs, cs) for s in (h, c)]


def pack(results: Sequence[T], keras_version: int) -> Union[List[T], Tuple[T, ...]]:
    """Several results (tensors, or their shapes) as the generation returns them: a tuple in Keras 3, a
    list in tf_keras."""
    return tuple(results) if keras_version >= 3 else list(results)
