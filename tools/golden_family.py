#!/usr/bin/env python3
"""Golden cases for the recurrent family (issue 11): Keras ``GRU`` / ``SimpleRNN`` (and their cells and
``Bidirectional``) from real tf_keras 2.21 and Keras 3.15.1, MindSpore ``nn.GRU`` / ``nn.RNN`` (and
``GRUCell`` / ``RNNCell``) from real MindSpore 2.10, on the CPU.

Usage::

    python3 tools/golden_family.py                   # all three flavours, each in its golden venv (subprocess)
    python3 tools/golden_family.py --only keras3     # one flavour
    <venv python> tools/golden_family.py --flavour tf_keras --out tests/golden   # what the driver runs

``make golden-family`` runs the first form. The environments, settings (one CPU thread, oneDNN rewrites off,
fixed seeds) and the per-flavour interpreters are those of ``tools/make_golden.py`` (imported from there);
every random draw comes from ``golden_common.rng_for(case id)``, so a rerun gives byte-identical files.

Files: ``tests/golden/family_<flavour>.json`` and ``family_<flavour>.npz`` (float32 data, bool masks, int32
``seq_length``; arrays keyed ``<case id>/<name>``). The JSON has ``format``, ``flavour``, ``generator``,
``versions``, ``settings``, ``n_cases``, ``n_grad_cases`` and ``cases``. Each case is described **in terms
of lstm-bridge's public API** (``lstm_bridge.keras`` / ``lstm_bridge.mindspore``).

Keras case schema (``flavour`` ``"tf_keras"`` or ``"keras3"``; ``keras_version`` 2 or 3)::

    {"id", "family", "tags", "flavour", "keras_version", "kind": "layers" | "cell" | "calls",
     "x": key, "mask": key | null, "training": false,
     "layers": [{"class": "GRU" | "v1.GRU" | "SimpleRNN" | "Bidirectional" | "GRUCell" | "SimpleRNNCell",
                 "wrapped": "GRU" | "v1.GRU" | "SimpleRNN",   # Bidirectional only: the wrapped layer's class
                 "config": {constructor kwargs of that class}, # Bidirectional: the wrapped layer's
                 "merge_mode": "concat" | "sum" | "mul" | "ave" | null,   # Bidirectional only
                 "weights": [keys, get_weights() order: kernel, recurrent_kernel[, bias]; Bidirectional:
                             forward then backward],
                 "initial_state": [keys: h0 (B, u); Bidirectional: h_fwd, h_bwd] | null}],
     "outputs": [keys, the flattened result of the last layer],
     "grad": null | {"proj": [keys, one per output], "x": key,
                     "initial_state": [keys, every layer's initial states in order],
                     "weights": [keys, every layer's trainable weights in order]}}

Weights in Keras layout: GRU ``kernel (F, 3u)``, ``recurrent_kernel (u, 3u)``, column blocks **z, r, h**;
``bias (2, 3u)`` (input row, recurrent row) with ``reset_after=True`` (the default of ``GRU``), ``(3u,)``
with ``reset_after=False`` (the default of ``v1.GRU``, tf_keras's ``gru_v1.GRU`` = TF 1.15's ``GRU``);
SimpleRNN ``kernel (F, u)``, ``recurrent_kernel (u, u)``, ``bias (u,)``. A config leaves out what the
case means to take from the generation's defaults (tagged ``defaults``). ``"hard_sigmoid"`` means the
generation's own function (tf_keras: ``clip(0.2x + 0.5, 0, 1)``, Keras 3: ``relu6(x + 3) / 6``).
The mask goes to every layer of a stack. ``time_major`` (tf_keras only): x ``(T, B, F)``, mask ``(T, B)``.

``kind == "cell"``: ``GRUCell`` / ``SimpleRNNCell`` called on ``x[:, t]`` for t = 0..T-1 from
``[h0]``; outputs ``[stack(h_t, axis=1) (B, T, u), h_T]``.

``kind == "calls"``: one stateful layer called once per entry of ``calls`` (tf_keras uses
``initial_state`` only while the stored state is all zeros; Keras 3 always takes it)::

    "calls": [{"x": key, "mask": key | null, "initial_state": [h0 key] | null, "reset_states": bool}],
    "outputs": [per call: the call's flattened result, then the layer's stored state h], "grad": null

The runner builds the layer with the first call's shape, sets the weights, calls ``reset_states()``.

MindSpore case schema (``flavour`` ``"mindspore"``)::

    {"id", "family", "tags", "flavour": "mindspore", "kind": "GRU" | "RNN" | "GRUCell" | "RNNCell",
     "config": {constructor kwargs of lstm_bridge.mindspore.<kind>: input_size, hidden_size, has_bias,
                (GRU/RNN) num_layers, batch_first, bidirectional, (RNN/RNNCell) nonlinearity},
     "params": {MindSpore parameter name: key},     # load_state_dict input (gate blocks r, z, n)
     "x": key,                                      # (T, B, I), (B, T, I) with batch_first
     "hx": key | null,                              # ONE tensor (L*D, B, H); cells (B, H), required
     "seq_length": key | null,                      # (B,) int32
     "approx_activations": bool,                    # MindSpore's approximate CPU Sigmoid/Tanh were used
                                                    # (every GRU and tanh path, with or without seq_length)
     "outputs": [output key, h_n key],              # cells: [stack of h_t (T, B, H), h_T]
     "grad": null | {"proj": [keys], "x": key, "hx": key | null, "params": {name: key}}}

Cells run over ``x[t]`` for t = 0..T-1 (x ``(T, B, I)``) from ``hx``.

Gradients (about 45 % of the cases) are those of ``sum_k sum(w_k * out_k)`` over every returned tensor
``out_k`` with fixed random ``w_k`` (``proj<k>``), w.r.t. the input, the initial states and every trainable
weight, as computed by the real framework (``tf.GradientTape`` / ``mindspore.grad``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from golden_common import FORMAT_VERSION, make_mask, projection_weights, rng_for, uniform32, write_json, write_npz  # noqa: E402

Case = Dict[str, Any]
Arrays = Dict[str, np.ndarray]
FLAVOURS = ("tf_keras", "keras3", "mindspore")
MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def gate_scaled(rng: np.random.RandomState, shape: Sequence[int], units: int, axis: int, gates: int) -> np.ndarray:
    """``uniform(-0.5, 0.5)`` times a random scale in ``[0.4, 2.0)`` per gate block along ``axis``
    (``gates * units`` long), so a gate-order mistake cannot cancel out."""
    w = rng.uniform(-0.5, 0.5, size=tuple(shape))
    per = np.repeat(rng.uniform(0.4, 2.0, size=gates), units)
    w = w * per.reshape((1,) * axis + (-1,) + (1,) * (len(shape) - axis - 1))
    return w.astype(np.float32)


# ==================================================================================================
# Keras: the option matrix (framework-free)


def _base_class(spec: Dict[str, Any]) -> str:
    return spec["wrapped"] if spec["class"] == "Bidirectional" else spec["class"]


def _keras_weight_shapes(cls: str, in_dim: int, cfg: Dict[str, Any]) -> List[Tuple[str, Tuple[int, ...]]]:
    """Keras weight names and shapes of one GRU / SimpleRNN (cell) in ``get_weights()`` order."""
    u = cfg["units"]
    if cls in ("SimpleRNN", "SimpleRNNCell"):
        out = [("kernel", (in_dim, u)), ("recurrent_kernel", (u, u))]
        if cfg.get("use_bias", True):
            out.append(("bias", (u,)))
        return out
    reset_after = cfg.get("reset_after", cls != "v1.GRU")
    out = [("kernel", (in_dim, 3 * u)), ("recurrent_kernel", (u, 3 * u))]
    if cfg.get("use_bias", True):
        out.append(("bias", (2, 3 * u) if reset_after else (3 * u,)))
    return out


class _KerasBuilder:
    """Accumulates Keras family cases with sequential ids and data drawn from the case id."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.kv = 2 if flavour == "tf_keras" else 3
        self.prefix = "fk2" if self.kv == 2 else "fk3"
        self.counter = itertools.count()
        self.items: List[Tuple[Case, Arrays]] = []

    def _cid(self) -> str:
        return f"{self.prefix}-{next(self.counter):04d}"

    def _weights(
        self, rng: np.random.RandomState, arrays: Arrays, prefix: str, cls: str, in_dim: int, cfg: Dict[str, Any]
    ) -> List[str]:
        gates = 1 if cls.startswith("SimpleRNN") else 3
        keys = []
        for name, shape in _keras_weight_shapes(cls, in_dim, cfg):
            key = f"{prefix}/{name}"
            arrays[key] = gate_scaled(rng, shape, cfg["units"], len(shape) - 1, gates)
            keys.append(key)
        return keys

    def add(
        self,
        family: str,
        layers: List[Dict[str, Any]],
        *,
        batch: int,
        steps: int,
        features: int,
        mask: str = "none",
        grad: bool = False,
        time_major: bool = False,
        tags: Sequence[str] = (),
    ) -> None:
        cid = self._cid()
        rng = rng_for(cid)
        arrays: Arrays = {}
        if mask == "mixed":
            batch = 4
        elif mask in ("right", "left", "fully_masked_row"):
            batch = max(batch, 2)
        if mask != "none":
            steps = max(steps, 3)
        arrays[f"{cid}/x"] = uniform32(
            rng, -1.5, 1.5, (steps, batch, features) if time_major else (batch, steps, features)
        )
        m = make_mask(rng, mask, batch, steps)
        if m is not None:
            arrays[f"{cid}/mask"] = m.T.copy() if time_major else m
        in_dim = features
        out_layers = []
        for li, spec in enumerate(layers):
            entry: Dict[str, Any] = {"class": spec["class"], "config": spec["config"]}
            base = _base_class(spec)
            n_sub = 1
            if spec["class"] == "Bidirectional":
                entry["wrapped"] = spec["wrapped"]
                entry["merge_mode"] = spec.get("merge_mode", "concat")
                n_sub = 2
            keys: List[str] = []
            for si in range(n_sub):
                keys += self._weights(rng, arrays, f"{cid}/L{li}/{si}", base, in_dim, spec["config"])
            entry["weights"] = keys
            entry["initial_state"] = None
            if spec.get("initial_state"):
                entry["initial_state"] = []
                for si in range(n_sub):
                    key = f"{cid}/L{li}/{si}/h0"
                    arrays[key] = uniform32(rng, -1.0, 1.0, (batch, spec["config"]["units"]))
                    entry["initial_state"].append(key)
            out_layers.append(entry)
            u = spec["config"]["units"]
            in_dim = 2 * u if (spec["class"] == "Bidirectional" and entry["merge_mode"] == "concat") else u
        self.items.append(
            (
                {
                    "id": cid,
                    "family": family,
                    "tags": sorted(set(tags) | ({f"mask:{mask}"} if mask != "none" else set())),
                    "flavour": self.flavour,
                    "keras_version": self.kv,
                    "kind": "layers",
                    "x": f"{cid}/x",
                    "mask": f"{cid}/mask" if m is not None else None,
                    "training": False,
                    "layers": out_layers,
                    "grad": {} if grad else None,
                },
                arrays,
            )
        )

    def add_cell(
        self,
        family: str,
        cls: str,
        config: Dict[str, Any],
        *,
        batch: int,
        steps: int,
        features: int,
        grad: bool,
        tags: Sequence[str] = (),
    ) -> None:
        cid = self._cid()
        rng = rng_for(cid)
        arrays: Arrays = {f"{cid}/x": uniform32(rng, -1.5, 1.5, (batch, steps, features))}
        keys = self._weights(rng, arrays, f"{cid}/L0/0", cls, features, config)
        arrays[f"{cid}/L0/0/h0"] = uniform32(rng, -1.0, 1.0, (batch, config["units"]))
        self.items.append(
            (
                {
                    "id": cid,
                    "family": family,
                    "tags": sorted(set(tags) | {"cell"}),
                    "flavour": self.flavour,
                    "keras_version": self.kv,
                    "kind": "cell",
                    "x": f"{cid}/x",
                    "mask": None,
                    "training": False,
                    "layers": [{"class": cls, "config": config, "weights": keys, "initial_state": [f"{cid}/L0/0/h0"]}],
                    "grad": {} if grad else None,
                },
                arrays,
            )
        )

    def add_calls(
        self,
        family: str,
        cls: str,
        config: Dict[str, Any],
        calls: List[Dict[str, Any]],
        *,
        batch: int,
        steps: int,
        features: int,
        tags: Sequence[str],
    ) -> None:
        cid = self._cid()
        rng = rng_for(cid)
        arrays: Arrays = {}
        keys = self._weights(rng, arrays, f"{cid}/L0/0", cls, features, config)
        out_calls = []
        for ci, call in enumerate(calls):
            x_key = f"{cid}/call{ci}/x"
            arrays[x_key] = uniform32(rng, -1.5, 1.5, (batch, steps, features))
            entry: Dict[str, Any] = {
                "x": x_key,
                "mask": None,
                "initial_state": None,
                "reset_states": bool(call.get("reset_states", False)),
            }
            m = make_mask(rng, call.get("mask", "none"), batch, steps)
            if m is not None:
                entry["mask"] = f"{cid}/call{ci}/mask"
                arrays[entry["mask"]] = m
            if call.get("initial_state"):
                key = f"{cid}/call{ci}/h0"
                arrays[key] = uniform32(rng, -1.0, 1.0, (batch, config["units"]))
                entry["initial_state"] = [key]
            out_calls.append(entry)
        self.items.append(
            (
                {
                    "id": cid,
                    "family": family,
                    "tags": sorted(set(tags) | {"stateful"}),
                    "flavour": self.flavour,
                    "keras_version": self.kv,
                    "kind": "calls",
                    "x": out_calls[0]["x"],
                    "mask": None,
                    "training": False,
                    "layers": [{"class": cls, "config": config, "weights": keys, "initial_state": None}],
                    "calls": out_calls,
                    "grad": None,
                },
                arrays,
            )
        )


def build_keras_cases(flavour: str) -> List[Tuple[Case, Arrays]]:
    """The Keras family option matrix for ``flavour`` (``"tf_keras"`` or ``"keras3"``); framework-free."""
    if flavour not in ("tf_keras", "keras3"):
        raise ValueError(f"flavour must be 'tf_keras' or 'keras3'; received {flavour!r}")
    b = _KerasBuilder(flavour)
    k2 = flavour == "tf_keras"
    pick = rng_for("family-" + flavour, "matrix")
    coin = rng_for("family-" + flavour, "gradients")

    def grad_now() -> bool:
        return bool(coin.rand() < 0.45)

    def dims() -> Tuple[int, int, int, int]:  # B, T, F, units
        return (int(pick.randint(1, 5)), int(pick.randint(2, 7)), int(pick.randint(1, 6)), int(pick.randint(1, 6)))

    def flags(rs: bool, rst: bool, gb: bool = False, init: bool = False) -> List[str]:
        return (
            (["return_sequences"] if rs else [])
            + (["return_state"] if rst else [])
            + (["go_backwards"] if gb else [])
            + (["initial_state"] if init else [])
        )

    masks = ["none", "right", "left", "holes", "fully_masked_row", "mixed"]

    # 1. GRU core matrix: mask x go_backwards x (return_sequences, return_state); reset_after, the
    #    recurrent activation (sigmoid / the generation's hard_sigmoid) and implementation cycle.
    for i, (mask, gb, outs) in enumerate(
        itertools.product(masks, [False, True], [(False, False), (True, True), (True, False), (False, True)])
    ):
        if (i % 4) >= 2 and i % 3:  # 4 x 6 x 2 = 48 combinations; keep about two thirds
            continue
        B, T, F, u = dims()
        rs, rst = outs
        ra = bool(i % 2)
        rec = ["sigmoid", "hard_sigmoid"][(i // 2) % 2]
        impl = 1 + (i // 3) % 2
        init = bool(pick.randint(0, 2))
        cfg = {
            "units": u,
            "reset_after": ra,
            "recurrent_activation": rec,
            "implementation": impl,
            "return_sequences": rs,
            "return_state": rst,
            "go_backwards": gb,
        }
        b.add(
            "gru/matrix",
            [{"class": "GRU", "config": cfg, "initial_state": init}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=[f"reset_after:{ra}".lower(), f"recurrent_activation:{rec}", f"implementation:{impl}"]
            + flags(rs, rst, gb, init),
        )

    # 2. GRU options: activations, use_bias=False, unroll, zero_output_for_mask, defaults.
    for i, (act, rec) in enumerate(
        [
            ("relu", "sigmoid"),
            ("softsign", "hard_sigmoid"),
            ("linear", "sigmoid"),
            ("elu", "hard_sigmoid"),
            ("sigmoid", "tanh"),
        ]
    ):
        B, T, F, u = dims()
        mask = ["none", "holes", "right", "mixed", "left"][i]
        cfg = {
            "units": u,
            "activation": act,
            "recurrent_activation": rec,
            "reset_after": bool(i % 2 == 0),
            "return_sequences": bool(i % 2),
            "return_state": bool(i % 3 == 0),
        }
        b.add(
            "gru/activations",
            [{"class": "GRU", "config": cfg, "initial_state": bool(i % 2)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=[f"activation:{act}", f"recurrent_activation:{rec}"],
        )
    for i in range(4):
        B, T, F, u = dims()
        cfg = {
            "units": u,
            "use_bias": False,
            "reset_after": bool(i % 2),
            "implementation": 1 + i // 2,
            "recurrent_activation": ["sigmoid", "hard_sigmoid"][i // 2],
            "return_sequences": True,
            "return_state": bool(i % 2),
            "go_backwards": i == 3,
        }
        b.add(
            "gru/no_bias",
            [{"class": "GRU", "config": cfg, "initial_state": bool(i % 2 == 0)}],
            batch=B,
            steps=T,
            features=F,
            mask=["none", "left", "fully_masked_row", "holes"][i],
            grad=grad_now(),
            tags=["use_bias:false", f"reset_after:{bool(i % 2)}".lower()],
        )
    for i in range(3):
        B, T, F, u = dims()
        cfg = {
            "units": u,
            "unroll": True,
            "reset_after": bool(i != 1),
            "return_sequences": bool(i % 2 == 0),
            "return_state": True,
            "go_backwards": i == 2,
        }
        b.add(
            "gru/unroll",
            [{"class": "GRU", "config": cfg, "initial_state": bool(i % 2)}],
            batch=B,
            steps=T,
            features=F,
            mask=["none", "right", "mixed"][i],
            grad=grad_now(),
            tags=["unroll"],
        )
    for i in range(3):
        B, T, F, u = dims()
        cfg = {
            "units": u,
            "zero_output_for_mask": True,
            "reset_after": bool(i != 0),
            "return_sequences": bool(i != 1),
            "go_backwards": i == 2,
        }
        b.add(
            "gru/zero_output_for_mask",
            [{"class": "GRU", "config": cfg, "initial_state": True}],
            batch=B,
            steps=T,
            features=F,
            mask=["right", "left", "mixed"][i],
            grad=grad_now(),
            tags=["zero_output_for_mask"],
        )
    for i in range(2):  # the generation's defaults (reset_after True, sigmoid, implementation 2)
        B, T, F, u = dims()
        cfg = {"units": u, "return_sequences": bool(i), "return_state": bool(i)}
        b.add(
            "gru/defaults",
            [{"class": "GRU", "config": cfg, "initial_state": bool(i)}],
            batch=B,
            steps=T,
            features=F,
            mask=["none", "holes"][i],
            grad=True,
            tags=["defaults"],
        )

    # 3. time_major (tf_keras only; Keras 3 rejects the keyword), GRU and SimpleRNN.
    if k2:
        for i in range(4):
            B, T, F, u = dims()
            cls = "GRU" if i < 3 else "SimpleRNN"
            cfg: Dict[str, Any] = {
                "units": u,
                "time_major": True,
                "return_sequences": bool(i % 2 == 0),
                "return_state": bool(i != 2),
                "go_backwards": i == 1,
            }
            if cls == "GRU":
                cfg["reset_after"] = bool(i != 1)
            fam = "gru" if cls == "GRU" else "simple_rnn"
            b.add(
                f"{fam}/time_major",
                [{"class": cls, "config": cfg, "initial_state": bool(i % 2)}],
                batch=B,
                steps=T,
                features=F,
                mask=["none", "right", "holes", "mixed"][i],
                time_major=True,
                grad=grad_now(),
                tags=["time_major"],
            )

    # 4. tf_keras v1.GRU (= TF 1.15's GRU): its defaults hard_sigmoid, reset_after False, implementation 1.
    if k2:
        for i in range(6):
            B, T, F, u = dims()
            cfg = {
                "units": u,
                "return_sequences": bool(i % 2),
                "return_state": bool(i % 3 == 0),
                "go_backwards": i in (2, 5),
            }
            tags = ["v1", "defaults"]
            if i == 4:
                cfg.update(reset_after=True, recurrent_activation="sigmoid")
                tags = ["v1", "reset_after:true"]
            b.add(
                "gru/v1",
                [{"class": "v1.GRU", "config": cfg, "initial_state": bool(i % 2 == 0)}],
                batch=B,
                steps=T,
                features=F,
                mask=masks[i],
                grad=grad_now(),
                tags=tags,
            )

    # 5. SimpleRNN: activations x masks x go_backwards, use_bias=False.
    acts = ["tanh", "relu", "softsign", "linear", "sigmoid", "elu", "tanh", "relu", "hard_sigmoid", "tanh"]
    for i, act in enumerate(acts):
        B, T, F, u = dims()
        mask = masks[i % 6]
        rs, rst = [(True, True), (False, False), (True, False), (False, True)][i % 4]
        gb = bool((i // 2) % 2)
        cfg = {"units": u, "activation": act, "return_sequences": rs, "return_state": rst, "go_backwards": gb}
        if i == 0:
            cfg = {"units": u, "return_sequences": True, "return_state": True}  # defaults (tanh)
        init = bool(i % 3 != 1)
        b.add(
            "simple_rnn/matrix",
            [{"class": "SimpleRNN", "config": cfg, "initial_state": init}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=[f"activation:{act}"] + flags(rs, rst, gb, init),
        )
    for i in range(2):
        B, T, F, u = dims()
        cfg = {
            "units": u,
            "use_bias": False,
            "activation": ["tanh", "relu"][i],
            "return_sequences": True,
            "unroll": bool(i),
        }
        b.add(
            "simple_rnn/no_bias",
            [{"class": "SimpleRNN", "config": cfg, "initial_state": True}],
            batch=B,
            steps=T,
            features=F,
            mask=["none", "right"][i],
            grad=grad_now(),
            tags=["use_bias:false"],
        )

    # 6. Bidirectional of each, every merge mode, with and without sequences / states / masks.
    for wrapped in ("GRU", "SimpleRNN"):
        for i, mm in enumerate(MERGE_MODES):
            for rs in (True, False):
                if wrapped == "SimpleRNN" and rs != bool(i % 2):
                    continue
                B, T, F, u = dims()
                rst = bool((i + rs) % 2)
                cfg: Dict[str, Any] = {"units": u, "return_sequences": rs, "return_state": rst}
                if wrapped == "GRU":
                    cfg.update(
                        reset_after=bool(i % 2 == 0 or rs),
                        recurrent_activation=["sigmoid", "hard_sigmoid"][(i + 1) % 2],
                    )
                else:
                    cfg.update(activation=["tanh", "relu"][i % 2])
                mask = masks[(i + 2 * rs) % 6]
                init = bool((i + rs) % 3 != 0)
                b.add(
                    f"bidirectional/{wrapped.lower()}",
                    [
                        {
                            "class": "Bidirectional",
                            "wrapped": wrapped,
                            "merge_mode": mm,
                            "config": cfg,
                            "initial_state": init,
                        }
                    ],
                    batch=B,
                    steps=T,
                    features=F,
                    mask=mask,
                    grad=grad_now() or i % 2 == 0,
                    tags=[f"merge_mode:{mm}"] + flags(rs, rst, False, init),
                )
    if k2:
        for i in range(2):
            B, T, F, u = dims()
            cfg = {"units": u, "return_sequences": bool(i), "return_state": True}
            b.add(
                "bidirectional/v1_gru",
                [
                    {
                        "class": "Bidirectional",
                        "wrapped": "v1.GRU",
                        "merge_mode": "concat",
                        "config": cfg,
                        "initial_state": bool(i),
                    }
                ],
                batch=B,
                steps=T,
                features=F,
                mask=["holes", "right"][i],
                grad=grad_now(),
                tags=["v1", "defaults"],
            )

    # 7. Stacks (layers returning sequences; the mask reaches every layer).
    for i in range(5 if k2 else 4):
        B, T, F, u = dims()
        mask = ["none", "right", "holes", "mixed", "left"][i]
        layers = []
        for d in range(2 + i % 2):
            last = d == 1 + i % 2
            uu = int(pick.randint(1, 6))
            rs = True if not last else bool(pick.randint(0, 2))
            kind = ["GRU", "SimpleRNN", "Bidirectional"][(d + i) % 3]
            if kind == "Bidirectional":
                wr = ["GRU", "SimpleRNN"][i % 2]
                layers.append(
                    {
                        "class": "Bidirectional",
                        "wrapped": wr,
                        "merge_mode": ["concat", "sum", "ave"][i % 3],
                        "config": {"units": uu, "return_sequences": rs},
                        "initial_state": bool(i % 2),
                    }
                )
            elif kind == "GRU":
                gcfg = {
                    "units": uu,
                    "return_sequences": rs,
                    "reset_after": bool(pick.randint(0, 2)),
                    "recurrent_activation": "hard_sigmoid" if i % 2 else "sigmoid",
                }
                layers.append({"class": "GRU", "config": gcfg, "initial_state": bool(pick.randint(0, 2))})
            else:
                layers.append(
                    {
                        "class": "SimpleRNN",
                        "config": {"units": uu, "return_sequences": rs, "activation": ["tanh", "relu"][d % 2]},
                        "initial_state": bool(pick.randint(0, 2)),
                    }
                )
        b.add(
            "stacked", layers, batch=B, steps=T, features=F, mask=mask, grad=grad_now(), tags=[f"depth:{len(layers)}"]
        )

    # 8. Cells unrolled by hand.
    for i in range(4):
        B, T, F, u = dims()
        cfg = {
            "units": u,
            "reset_after": bool(i % 2 == 0),
            "use_bias": i != 3,
            "recurrent_activation": ["sigmoid", "hard_sigmoid"][i // 2],
            "implementation": 1 + i % 2,
        }
        b.add_cell(
            "gru_cell",
            "GRUCell",
            cfg,
            batch=B,
            steps=T,
            features=F,
            grad=grad_now(),
            tags=[f"reset_after:{bool(i % 2 == 0)}".lower()],
        )
    for i in range(3):
        B, T, F, u = dims()
        cfg = {"units": u, "activation": ["tanh", "relu", "softsign"][i], "use_bias": i != 2}
        b.add_cell("simple_rnn_cell", "SimpleRNNCell", cfg, batch=B, steps=T, features=F, grad=grad_now() or i == 1)

    # 9. Stateful call sequences (with and without initial_state, reset_states() between).
    seqs = [
        ("init_then_init", "GRU", [{"initial_state": True}, {"initial_state": True}], {}),
        ("none_then_init", "GRU", [{}, {"initial_state": True}], {"reset_after": False}),
        ("reset_then_init", "GRU", [{"initial_state": True}, {"initial_state": True, "reset_states": True}], {}),
        (
            "go_backwards_mask",
            "GRU",
            [{"initial_state": True, "mask": "right"}, {"mask": "holes"}],
            {"go_backwards": True, "recurrent_activation": "hard_sigmoid"},
        ),
        ("init_none_init", "SimpleRNN", [{"initial_state": True}, {}, {"initial_state": True}], {}),
        ("last_output", "SimpleRNN", [{}, {"initial_state": True}], {"return_sequences": False, "activation": "relu"}),
    ]
    for label, cls, calls, extra in seqs:
        cfg = {"units": 3, "stateful": True, "return_sequences": True, "return_state": True}
        cfg.update(extra)
        b.add_calls(
            f"{cls.lower() if cls == 'GRU' else 'simple_rnn'}/stateful",
            cls,
            cfg,
            calls,
            batch=2,
            steps=4,
            features=3,
            tags=[f"calls:{label}"],
        )
    return b.items


# ==================================================================================================
# MindSpore: the option matrix (framework-free)


def ms_param_shapes(kind: str, cfg: Dict[str, Any]) -> List[Tuple[str, Tuple[int, ...]]]:
    """MindSpore parameter names and shapes in ``trainable_params()`` order (mindspore_gru_rnn.md §2.1)."""
    G = 3 if kind.startswith("GRU") else 1
    H = cfg["hidden_size"]
    if kind in ("GRUCell", "RNNCell"):
        out = [("weight_ih", (G * H, cfg["input_size"])), ("weight_hh", (G * H, H))]
        if cfg.get("has_bias", True):
            out += [("bias_ih", (G * H,)), ("bias_hh", (G * H,))]
        return out
    D = 2 if cfg.get("bidirectional", False) else 1
    groups: Dict[str, List[Tuple[str, Tuple[int, ...]]]] = {
        "weight_ih": [],
        "weight_hh": [],
        "bias_ih": [],
        "bias_hh": [],
    }
    for layer in range(cfg.get("num_layers", 1)):
        in_l = cfg["input_size"] if layer == 0 else D * H
        for s in ["", "_reverse"][:D]:
            groups["weight_ih"].append((f"weight_ih_l{layer}{s}", (G * H, in_l)))
            groups["weight_hh"].append((f"weight_hh_l{layer}{s}", (G * H, H)))
            groups["bias_ih"].append((f"bias_ih_l{layer}{s}", (G * H,)))
            groups["bias_hh"].append((f"bias_hh_l{layer}{s}", (G * H,)))
    order = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cfg.get("has_bias", True) else [])
    return [p for g in order for p in groups[g]]


def _ms_lengths(rng: np.random.RandomState, kind: str, B: int, T: int) -> np.ndarray:
    """seq_length patterns: ``full`` (all T), ``zeros``, ``over`` (> T in row 0; unidirectional only),
    ``mixed`` (one full row, one empty row when B >= 2, the rest random, unsorted)."""
    if kind == "full":
        return np.full((B,), T, dtype=np.int32)
    if kind == "zeros":
        return np.zeros((B,), dtype=np.int32)
    if kind == "over":
        lens = rng.randint(0, T + 1, size=B).astype(np.int32)
        lens[0] = T + 2
        return lens
    if kind == "mixed":
        lens = rng.randint(1, T + 1, size=B).astype(np.int32)
        lens[rng.randint(0, B)] = T
        if B >= 2:
            idx = int(rng.randint(0, B))
            if lens[idx] == T and (lens == T).sum() == 1:
                idx = (idx + 1) % B
            lens[idx] = 0
        return lens
    raise ValueError(f"unknown seq_length kind {kind!r}; expected full, zeros, over or mixed")


def make_ms_case(
    cid: str,
    family: str,
    kind: str,
    cfg: Dict[str, Any],
    *,
    B: int,
    T: int,
    hx: bool,
    seq: Optional[str],
    tags: Sequence[str],
    grad: bool,
    weight_scale: float = 1.0,
) -> Tuple[Case, Arrays]:
    """One MindSpore case with parameters, input, ``hx`` and lengths drawn from ``cid``."""
    rng = rng_for(cid)
    arrays: Arrays = {}
    H = cfg["hidden_size"]
    G = 3 if kind.startswith("GRU") else 1
    bf = cfg.get("batch_first", False)
    arrays[f"{cid}/x"] = uniform32(rng, -1.5, 1.5, (B, T, cfg["input_size"]) if bf else (T, B, cfg["input_size"]))
    params = {}
    for name, shape in ms_param_shapes(kind, cfg):
        key = f"{cid}/p/{name}"
        arrays[key] = (gate_scaled(rng, shape, H, 0, G) * np.float32(weight_scale)).astype(np.float32)
        params[name] = key
    hx_key = None
    if hx:
        rows = () if kind.endswith("Cell") else (cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1),)
        hx_key = f"{cid}/hx"
        arrays[hx_key] = uniform32(rng, -1.0, 1.0, rows + (B, H))
    seq_key = None
    if seq is not None:
        seq_key = f"{cid}/seq_length"
        arrays[seq_key] = _ms_lengths(rng, seq, B, T)
    relu = cfg.get("nonlinearity", "tanh") == "relu"
    return {
        "id": cid,
        "family": family,
        "tags": sorted(set(tags)),
        "flavour": "mindspore",
        "kind": kind,
        "config": cfg,
        "params": params,
        "x": f"{cid}/x",
        "hx": hx_key,
        "seq_length": seq_key,
        "approx_activations": not relu,
        "grad": {} if grad else None,
    }, arrays


def build_ms_cases() -> List[Tuple[Case, Arrays]]:
    """The MindSpore family option matrix; framework-free."""
    items: List[Tuple[Case, Arrays]] = []
    counter = itertools.count()
    coin = rng_for("family-mindspore", "gradients")
    pick = rng_for("family-mindspore", "matrix")

    def add(
        family: str,
        kind: str,
        cfg: Dict[str, Any],
        *,
        B: int,
        T: int,
        hx: bool,
        seq: Optional[str],
        tags: List[str],
        force_grad: bool = False,
        weight_scale: float = 1.0,
    ) -> None:
        grad = bool(coin.rand() < 0.45) or force_grad
        items.append(
            make_ms_case(
                f"fms-{next(counter):04d}",
                family,
                kind,
                cfg,
                B=B,
                T=T,
                hx=hx,
                seq=seq,
                tags=tags,
                grad=grad,
                weight_scale=weight_scale,
            )
        )

    def dims() -> Tuple[int, int, int, int]:
        return (int(pick.randint(1, 5)), int(pick.randint(1, 7)), int(pick.randint(1, 6)), int(pick.randint(1, 6)))

    nets = [("GRU", None), ("RNN", "tanh"), ("RNN", "relu")]
    # 1. layers x bidirectional x (hx, seq_length) per net; batch_first and has_bias cycle.
    modes = [(False, None), (True, None), (False, "mixed"), (True, "mixed")]
    for n, ((kind, nl), L, bi) in enumerate(itertools.product(nets, [1, 2, 3], [False, True])):
        for j, (hx, seq) in enumerate(modes):
            B, T, I, H = dims()
            if seq is not None:
                B, T = max(B, 2), max(T, 2)
            bf = bool((n + j) % 2)
            bias = (n + j) % 3 != 2
            cfg: Dict[str, Any] = {
                "input_size": I,
                "hidden_size": H,
                "num_layers": L,
                "has_bias": bias,
                "batch_first": bf,
                "bidirectional": bi,
            }
            if nl is not None:
                cfg["nonlinearity"] = nl
            name = kind.lower() + (f"_{nl}" if nl else "")
            tags = (
                [
                    f"num_layers:{L}",
                    f"bidirectional:{bi}".lower(),
                    f"batch_first:{bf}".lower(),
                    f"has_bias:{bias}".lower(),
                ]
                + (["hx"] if hx else [])
                + ([f"seq_length:{seq}"] if seq else [])
            )
            add(f"{name}/{'seq_length' if seq else 'plain'}", kind, cfg, B=B, T=T, hx=hx, seq=seq, tags=tags)

    # 2. seq_length edge cases per net: all zero, all full (bitwise the same as None for these nets),
    #    > T (unidirectional only); large weights (x3) where the CPU approximations are worst.
    for kind, nl in nets:
        name = kind.lower() + (f"_{nl}" if nl else "")
        for i, (seq, bi) in enumerate(
            [("zeros", False), ("zeros", True), ("full", True), ("full", False), ("over", False)]
        ):
            B, T, I, H = dims()
            L = 1 + i % 2
            cfg = {
                "input_size": I,
                "hidden_size": H,
                "num_layers": L,
                "has_bias": True,
                "batch_first": bool(i % 2),
                "bidirectional": bi,
            }
            if nl is not None:
                cfg["nonlinearity"] = nl
            add(
                f"{name}/seq_length_{seq}",
                kind,
                cfg,
                B=max(B, 2),
                T=max(T, 2),
                hx=i != 3,
                seq=seq,
                tags=[f"seq_length:{seq}", f"num_layers:{L}", f"bidirectional:{bi}".lower()],
                force_grad=i % 2 == 0,
            )
        B, T, I, H = dims()
        cfg = {
            "input_size": I,
            "hidden_size": H,
            "num_layers": 2,
            "has_bias": True,
            "batch_first": False,
            "bidirectional": True,
        }
        if nl is not None:
            cfg["nonlinearity"] = nl
        add(
            f"{name}/large_weights",
            kind,
            cfg,
            B=max(B, 2),
            T=max(T, 3),
            hx=True,
            seq="mixed",
            tags=["large_weights", "seq_length:mixed"],
            weight_scale=3.0 if nl != "relu" else 1.5,
            force_grad=True,
        )

    # 3. Cells unrolled by hand.
    for i, (kind, nl) in enumerate([("GRUCell", None)] * 5 + [("RNNCell", "tanh")] * 4 + [("RNNCell", "relu")] * 3):
        B, T, I, H = dims()
        cfg = {"input_size": I, "hidden_size": H, "has_bias": i % 4 != 3}
        if nl is not None:
            cfg["nonlinearity"] = nl
        name = "gru_cell" if kind == "GRUCell" else f"rnn_cell_{nl}"
        large = i in (4, 8)
        add(
            name,
            kind,
            cfg,
            B=B,
            T=max(T, 2),
            hx=True,
            seq=None,
            tags=["cell"] + (["large_weights"] if large else []),
            weight_scale=3.0 if large else 1.0,
        )
    return items


# ==================================================================================================
# Real-framework runners (imported lazily)


def _flatten(result: Any) -> List[Any]:
    if isinstance(result, (list, tuple)):
        out: List[Any] = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


def _keras_class(name: str, K: Any, tf: Any) -> Any:
    if name == "v1.GRU":
        cls = tf.compat.v1.keras.layers.GRU
        if not cls.__module__.endswith("gru_v1"):
            raise RuntimeError(f"expected tf_keras's gru_v1.GRU, got {cls.__module__}")
        return cls
    return getattr(K.layers, name)


def _make_keras_layer(spec: Dict[str, Any], K: Any, tf: Any) -> Any:
    if spec["class"] == "Bidirectional":
        return K.layers.Bidirectional(
            _keras_class(spec["wrapped"], K, tf)(**spec["config"]), merge_mode=spec["merge_mode"]
        )
    return _keras_class(spec["class"], K, tf)(**spec["config"])


def _keras_variables(layer: Any, spec: Dict[str, Any]) -> List[Any]:
    if spec["class"] == "Bidirectional":
        return list(layer.forward_layer.trainable_weights) + list(layer.backward_layer.trainable_weights)
    return list(layer.trainable_weights)


def run_keras_case(case: Case, arrays: Arrays, K: Any, tf: Any) -> Arrays:
    """Run one Keras family case in the real framework; fills ``case["outputs"]`` / ``case["grad"]``."""
    if case["kind"] == "calls":
        return _run_keras_calls(case, arrays, K, tf)
    cid = case["id"]
    x = tf.constant(arrays[case["x"]])
    mask = tf.constant(arrays[case["mask"]]) if case["mask"] else None
    layers = [_make_keras_layer(spec, K, tf) for spec in case["layers"]]
    states = [
        [tf.constant(arrays[k]) for k in spec["initial_state"]] if spec["initial_state"] else None
        for spec in case["layers"]
    ]

    def forward() -> List[Any]:
        if case["kind"] == "cell":
            st = states[0]
            hs = []
            for t in range(x.shape[1]):
                h, st = layers[0](x[:, t], st, training=False)
                hs.append(h)
            return [tf.stack(hs, axis=1), st[0]]
        y = x
        for layer, st in zip(layers, states):
            kw: Dict[str, Any] = {"training": False}
            if mask is not None:
                kw["mask"] = mask
            if st is not None:
                kw["initial_state"] = st
            y = layer(y, **kw)
        return _flatten(y)

    forward()  # builds every layer
    for layer, spec in zip(layers, case["layers"]):
        layer.set_weights([arrays[k] for k in spec["weights"]])
        got = layer.get_weights()
        if len(got) != len(spec["weights"]) or not all(
            np.array_equal(g, arrays[k]) for g, k in zip(got, spec["weights"])
        ):
            raise AssertionError(f"{cid}: set_weights did not round-trip")
        if not all(
            np.array_equal(np.asarray(v.numpy()), arrays[k])
            for v, k in zip(_keras_variables(layer, spec), spec["weights"])
        ):
            raise AssertionError(f"{cid}: trainable variable order differs from get_weights order")

    result: Arrays = {}
    want_grad = case["grad"] is not None
    watched = [s for st in states if st for s in st]
    with tf.GradientTape() as tape:
        if want_grad:
            tape.watch(x)
            for s in watched:
                tape.watch(s)
        outs = forward()
        outs_np = [np.asarray(o.numpy(), dtype=np.float32) for o in outs]
        if want_grad:
            proj = projection_weights(cid, [o.shape for o in outs_np])
            loss = tf.add_n([tf.reduce_sum(tf.constant(w) * o) for w, o in zip(proj, outs)])
    case["outputs"] = []
    for i, o in enumerate(outs_np):
        result[f"{cid}/out{i}"] = o
        case["outputs"].append(f"{cid}/out{i}")
    if want_grad:
        variables = [v for layer, spec in zip(layers, case["layers"]) for v in _keras_variables(layer, spec)]
        grads = tape.gradient(loss, [x] + watched + variables)
        g: Dict[str, Any] = {"proj": [], "initial_state": [], "weights": []}
        for i, w in enumerate(proj):
            result[f"{cid}/proj{i}"] = w
            g["proj"].append(f"{cid}/proj{i}")

        def store(src_key: str, value: Any) -> str:
            key = f"{cid}/grad/" + src_key.split("/", 1)[1].replace("/", "_")
            result[key] = (
                np.zeros_like(arrays[src_key])
                if value is None
                else np.asarray(tf.convert_to_tensor(value).numpy(), dtype=np.float32)
            )
            return key

        g["x"] = store(case["x"], grads[0])
        state_keys = [k for spec in case["layers"] if spec["initial_state"] for k in spec["initial_state"]]
        g["initial_state"] = [store(k, grads[1 + i]) for i, k in enumerate(state_keys)]
        weight_keys = [k for spec in case["layers"] for k in spec["weights"]]
        g["weights"] = [store(k, grads[1 + len(watched) + i]) for i, k in enumerate(weight_keys)]
        case["grad"] = g
    return result


def _run_keras_calls(case: Case, arrays: Arrays, K: Any, tf: Any) -> Arrays:
    cid = case["id"]
    spec = case["layers"][0]
    layer = _make_keras_layer(spec, K, tf)
    layer(tf.zeros(arrays[case["calls"][0]["x"]].shape, tf.float32), training=False)
    layer.set_weights([arrays[k] for k in spec["weights"]])
    if not all(np.array_equal(g, arrays[k]) for g, k in zip(layer.get_weights(), spec["weights"])):
        raise AssertionError(f"{cid}: set_weights did not round-trip")
    layer.reset_states()
    result: Arrays = {}
    case["outputs"] = []
    for ci, call in enumerate(case["calls"]):
        if call["reset_states"]:
            layer.reset_states()
        kw: Dict[str, Any] = {"training": False}
        if call["mask"]:
            kw["mask"] = tf.constant(arrays[call["mask"]])
        if call["initial_state"]:
            kw["initial_state"] = [tf.constant(arrays[k]) for k in call["initial_state"]]
        outs = _flatten(layer(tf.constant(arrays[call["x"]]), **kw)) + list(layer.states)
        for oi, o in enumerate(outs):
            key = f"{cid}/call{ci}/out{oi}"
            result[key] = np.asarray(tf.convert_to_tensor(o).numpy(), dtype=np.float32)
            case["outputs"].append(key)
    return result


def run_ms_case(case: Case, arrays: Arrays, ms: Any) -> Arrays:
    """Run one MindSpore family case; fills ``case["outputs"]`` / ``case["grad"]``."""
    from mindspore import Parameter, Tensor, nn, ops

    cid = case["id"]
    cfg = dict(case["config"])
    kind = case["kind"]
    if kind in ("GRU", "RNN"):
        extra = {"nonlinearity": cfg["nonlinearity"]} if kind == "RNN" else {}
        net = getattr(nn, kind)(
            cfg["input_size"],
            cfg["hidden_size"],
            num_layers=cfg["num_layers"],
            has_bias=cfg["has_bias"],
            batch_first=cfg["batch_first"],
            dropout=0.0,
            bidirectional=cfg["bidirectional"],
            **extra,
        )
    else:
        extra = {"nonlinearity": cfg["nonlinearity"]} if kind == "RNNCell" else {}
        net = getattr(nn, kind)(cfg["input_size"], cfg["hidden_size"], has_bias=cfg["has_bias"], **extra)
    net.set_train(False)
    expected = [n for n, _ in ms_param_shapes(kind, cfg)]
    got = [p.name for p in net.trainable_params()]
    if got != expected:
        raise AssertionError(f"{cid}: MindSpore parameter order {got} != expected {expected}")
    pdict = {name: Parameter(Tensor(arrays[key]), name=name) for name, key in case["params"].items()}
    not_loaded, _ = ms.load_param_into_net(net, pdict, strict_load=True)
    if not_loaded:
        raise AssertionError(f"{cid}: parameters not loaded: {not_loaded}")
    for p in net.trainable_params():
        if not np.array_equal(p.asnumpy(), arrays[case["params"][p.name]]):
            raise AssertionError(f"{cid}: parameter {p.name} did not load exactly")
    x = Tensor(arrays[case["x"]])
    hx = Tensor(arrays[case["hx"]]) if case["hx"] else None
    seq = Tensor(arrays[case["seq_length"]]) if case["seq_length"] else None

    def forward(x_: Any, *hx_: Any) -> List[Any]:
        if kind.endswith("Cell"):
            h = hx_[0]
            hs = []
            for t in range(x_.shape[0]):
                h = net(x_[t], h)
                hs.append(h)
            return [ops.stack(hs, axis=0), h]
        out, hn = net(x_, hx_[0] if hx_ else None, seq)
        return [out, hn]

    hx_args = (hx,) if hx is not None else ()
    outs_np = [o.asnumpy().astype(np.float32) for o in forward(x, *hx_args)]
    result: Arrays = {}
    case["outputs"] = []
    for i, o in enumerate(outs_np):
        result[f"{cid}/out{i}"] = o
        case["outputs"].append(f"{cid}/out{i}")
    if case["grad"] is not None:
        proj = projection_weights(cid, [o.shape for o in outs_np])
        proj_t = [Tensor(w) for w in proj]

        def loss_fn(x_: Any, *hx_: Any) -> Any:
            ys = forward(x_, *hx_)
            total = (ys[0] * proj_t[0]).sum()
            for y, w in zip(ys[1:], proj_t[1:]):
                total = total + (y * w).sum()
            return total

        params = net.trainable_params()
        positions = (0, 1) if hx_args else 0
        g_in, g_params = ms.grad(loss_fn, grad_position=positions, weights=params)(x, *hx_args)
        if not hx_args:
            g_in = (g_in,)
        g: Dict[str, Any] = {"proj": [], "hx": None, "params": {}}
        for i, w in enumerate(proj):
            result[f"{cid}/proj{i}"] = w
            g["proj"].append(f"{cid}/proj{i}")
        result[f"{cid}/grad/x"] = g_in[0].asnumpy().astype(np.float32)
        g["x"] = f"{cid}/grad/x"
        if hx_args:
            result[f"{cid}/grad/hx"] = g_in[1].asnumpy().astype(np.float32)
            g["hx"] = f"{cid}/grad/hx"
        for p, v in zip(params, g_params):
            key = f"{cid}/grad/p/{p.name}"
            result[key] = v.asnumpy().astype(np.float32)
            g["params"][p.name] = key
        case["grad"] = g
    return result


# ==================================================================================================
# Generation and the driver


def generate(flavour: str, out_dir: Path) -> None:
    """Inside the flavour's environment: build the cases, run them, write ``family_<flavour>.{json,npz}``."""
    import make_golden

    np.random.seed(0)
    t0 = time.time()
    versions: Dict[str, str] = {"numpy": np.__version__, "python": sys.version.split()[0]}
    if flavour in ("tf_keras", "keras3"):
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.random.set_seed(0)
        if flavour == "tf_keras":
            import tf_keras

            K = tf.keras
            if not K.layers.GRU.__module__.startswith("tf_keras"):
                raise RuntimeError(f"expected tf_keras's GRU with TF_USE_LEGACY_KERAS=1, got {K.layers.GRU.__module__}")
            versions.update(tensorflow=tf.__version__, tf_keras=tf_keras.__version__)
        else:
            import keras as K

            if not K.__version__.startswith("3."):
                raise RuntimeError(f"expected Keras 3, got {K.__version__}")
            K.utils.set_random_seed(0)
            versions.update(tensorflow=tf.__version__, keras=K.__version__, keras_backend=K.backend.backend())
        items = build_keras_cases(flavour)

        def run(case: Case, arrays: Arrays) -> Arrays:
            return run_keras_case(case, arrays, K, tf)
    elif flavour == "mindspore":
        import mindspore as ms

        ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
        ms.set_seed(0)
        versions.update(mindspore=ms.__version__)
        items = build_ms_cases()

        def run(case: Case, arrays: Arrays) -> Arrays:
            return run_ms_case(case, arrays, ms)
    else:
        raise SystemExit(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")

    name = f"family_{flavour}"
    all_arrays: Arrays = {}
    cases: List[Case] = []
    print(f"[{name}] {len(items)} cases with {versions}", flush=True)
    for i, (case, arrays) in enumerate(items, 1):
        try:
            produced = run(case, arrays)
        except Exception as exc:  # name the case, then fail: a golden set must be complete
            raise RuntimeError(f"[{name}] case {case['id']} ({case['family']}) failed: {exc}") from exc
        for k in list(arrays) + list(produced):
            if k in all_arrays:
                raise RuntimeError(f"duplicate array key {k}")
        all_arrays.update(arrays)
        all_arrays.update(produced)
        cases.append(case)
        make_golden._progress(name, i, len(items), case["id"], t0)
    for k, v in all_arrays.items():
        if v.dtype == np.float64:
            raise RuntimeError(f"{k}: float64 array; everything must be float32")
    out_dir.mkdir(parents=True, exist_ok=True)
    n_grad = sum(1 for c in cases if c["grad"] is not None)
    write_npz(str(out_dir / f"{name}.npz"), all_arrays)
    write_json(
        str(out_dir / f"{name}.json"),
        {
            "format": FORMAT_VERSION,
            "flavour": flavour,
            "generator": "tools/golden_family.py",
            "versions": versions,
            "settings": {
                k: v
                for k, v in sorted({**make_golden.COMMON_ENV, **make_golden.FLAVOURS[flavour][1]}.items())
                if k not in ("PYTHONWARNINGS", "GLOG_v")
            },
            "n_cases": len(cases),
            "n_grad_cases": n_grad,
            "cases": cases,
        },
    )
    print(f"[{name}] wrote {len(cases)} cases ({n_grad} with gradients) in {time.time() - t0:.1f}s", flush=True)


def drive(flavours: List[str], out_dir: Path) -> int:
    """Run each flavour in its own golden environment (subprocess), as ``tools/make_golden.py`` does."""
    import make_golden

    t_all = time.time()
    for flavour in flavours:
        venv, extra = make_golden.FLAVOURS[flavour]
        py = ROOT / venv / "bin" / "python"
        if not py.exists():
            print(f"missing {py}: run `make golden-envs` (it creates the golden environments)", file=sys.stderr)
            return 2
        env = dict(os.environ)
        env.update(make_golden.COMMON_ENV)
        env.update(extra)
        env.pop("PYTHONPATH", None)
        t0 = time.time()
        rc = subprocess.call(
            [str(py), str(Path(__file__).resolve()), "--flavour", flavour, "--out", str(out_dir)],
            env=env,
            cwd=str(ROOT),
        )
        if rc != 0:
            print(f"[family_{flavour}] generator failed with exit code {rc}", file=sys.stderr)
            return rc
        print(f"[family_{flavour}] done in {time.time() - t0:.1f}s", flush=True)
    print(f"family goldens done in {time.time() - t_all:.1f}s", flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flavour", choices=FLAVOURS, help="generate one flavour in THIS interpreter")
    ap.add_argument("--only", choices=FLAVOURS, action="append", help="driver: restrict to flavour(s)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "golden"), help="output folder (default tests/golden)")
    args = ap.parse_args(argv)
    if args.flavour:
        generate(args.flavour, Path(args.out))
        return 0
    return drive(args.only or list(FLAVOURS), Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
