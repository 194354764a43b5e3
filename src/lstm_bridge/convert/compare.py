"""Comparison of two chains layer by layer (what ``lstm-bridge verify`` and ``convert`` check); the layers may
be LSTM, GRU or simple-RNN layers (a GRU's / RNN's ``c`` difference is 0: it has no cell state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch

from ..recurrent import MaskedOutput, RecurrentLayer
from .chain import Chain

__all__ = ["LayerDiff", "compare_chains", "pair_layers"]

Tensor = torch.Tensor


@dataclass
class LayerDiff:
    """Max |difference| of one chain layer's per-direction outputs and final states."""

    name: str
    output: float
    h: float
    c: float

    @property
    def worst(self) -> float:
        return max(self.output, self.h, self.c)


def compare_chains(a: Chain, b: Chain, *, seed: int = 0, batch: int = 3, steps: int = 6) -> List[LayerDiff]:
    """Run every layer of ``a`` and ``b`` on the same random input and initial states (float32, one input
    per layer of that layer's width) and return the max |difference| per layer of the per-direction
    output sequences and final states. Presentation (return_sequences, merge mode, state list) is not
    compared: it is not stored in weight files; the recurrence, weights, directions and activations are.

    Raises:
        ValueError: the chains do not have the same structure (layers, directions, sizes), saying where.
    """
    from ..engine import run_layer

    gen = torch.Generator().manual_seed(seed)
    diffs: List[LayerDiff] = []
    for la, lb in pair_layers(a, b):
        shape_a = (la.kind.value, len(la.directions), la.input_size, la.hidden_size)
        shape_b = (lb.kind.value, len(lb.directions), lb.input_size, lb.hidden_size)
        if shape_a != shape_b:
            raise ValueError(
                f"layer {la.name!r} vs {lb.name!r}: (cell, directions, input, hidden) {shape_a} vs {shape_b}"
            )
        _, D, I, H = shape_a
        x = torch.randn(steps, batch, I, generator=gen)
        h0 = [0.5 * torch.randn(batch, H, generator=gen) for _ in range(D)]
        c0 = [0.5 * torch.randn(batch, H, generator=gen) for _ in range(D)]
        results = []
        for layer in (la, lb):
            sem = layer.semantics(MaskedOutput.CARRY)
            dirs = [w.torch(torch.float32) for w in layer.directions]
            with torch.no_grad():
                results.append(run_layer(x, dirs, h0, c0, reverse=list(layer.reverse), semantics=sem))
        (oa, ha, ca), (ob, hb, cb) = results

        def md(p: List[Tensor], q: List[Tensor]) -> float:
            # (a GRU / RNN has no cell state: its c lists are empty)
            return max((float((s - t).abs().max()) for s, t in zip(p, q)), default=0.0)

        diffs.append(
            LayerDiff(la.name if la.name == lb.name else f"{la.name} / {lb.name}", md(oa, ob), md(ha, hb), md(ca, cb))
        )
    return diffs


def pair_layers(a: Chain, b: Chain) -> List[Tuple[RecurrentLayer, RecurrentLayer]]:
    """The layers of two chains matched up: by name when both have the same unique names (files such as
    ``.weights.h5`` do not keep the model order), else by position.

    Raises:
        ValueError: different numbers of layers.
    """
    if len(a.layers) != len(b.layers):
        raise ValueError(
            f"different number of LSTM layers: {len(a.layers)} ({[l.name for l in a.layers]}) vs "
            f"{len(b.layers)} ({[l.name for l in b.layers]})"
        )
    names_a = [l.name for l in a.layers]
    names_b = [l.name for l in b.layers]
    if sorted(names_a) == sorted(names_b) and len(set(names_a)) == len(names_a):
        by_name = {l.name: l for l in b.layers}
        return [(l, by_name[l.name]) for l in a.layers]
    return list(zip(a.layers, b.layers))
