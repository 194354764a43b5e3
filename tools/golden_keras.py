"""Keras golden cases: the option matrix (framework-free) and the real-Keras runner.

``build_cases(flavour)`` returns ``[(case, arrays)]`` where ``case`` is the JSON description of one call
in terms of OUR public API (``lstm_bridge.keras``) and ``arrays`` holds its inputs and weights.
``run_case(case, arrays, K, tf)`` runs it in the real framework (``K`` is the Keras module: tf_keras's
``tf.keras`` with ``TF_USE_LEGACY_KERAS=1``, or Keras 3) and returns the outputs and, when
``case["grad"]`` asks for them, the gradients of ``sum_k sum(w_k * out_k)``.

Case schema (``kind == "layers"``)::

    {"id", "family", "tags", "flavour", "keras_version", "kind": "layers",
     "x": key, "mask": key | null, "training": false,
     "layers": [{"class": "LSTM" | "v1.LSTM" | "Bidirectional",
                 "config": {LSTM constructor kwargs},          # Bidirectional: the wrapped layer's
                 "merge_mode": str | null,                     # Bidirectional only
                 "backward_config": {...} | absent,            # Bidirectional(backward_layer=LSTM(**cfg))
                 "weights": [keys, get_weights() order],
                 "initial_state": [keys] | null}],
     "outputs": [keys, in the order the last layer returns them (flattened list)],
     "grad": null | {"proj": [keys, one per output], "x": key,
                     "initial_state": [keys, all layers' initial states in order],
                     "weights": [keys, all layers' trainable_weights in order]}}

The mask is passed to every layer of a stack (Keras propagates it unchanged through LSTMs that return
sequences). ``kind == "cell"`` cases run ``LSTMCell`` over ``x[:, t]`` for t = 0..T-1 starting from
``initial_state`` and return ``[stack(h_t, axis=1), h_T, c_T]``. With ``time_major`` the input is
``(T, B, F)`` and the mask ``(T, B)`` (what tf_keras expects).

``kind == "calls"`` cases call ONE layer several times in a row (the stateful rules: tf_keras continues
from non-zero stored states and ignores ``initial_state``, Keras 3 always takes it)::

    {..., "kind": "calls", "layers": [one layer spec, "initial_state": null],
     "calls": [{"x": key, "mask": key | null, "initial_state": [h, c keys] | null,
                "reset_states": bool (reset_states() before this call)}],
     "outputs": [per call: the call's flattened result, then the layer's stored states h, c],
     "grad": null}

The runner builds the layer with the first call's shape, sets the weights and calls ``reset_states()``
before the first call.

``activation_names(K)`` probes ``K.activations.get`` with :data:`ACTIVATION_PROBES` and returns which
names the generation accepts (and the function each resolves to) and the error text of those it rejects;
``tools/make_golden.py`` stores it as ``activation_names`` in ``<flavour>.json``.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from golden_common import gate_scaled, make_mask, projection_weights, rng_for, uniform32

Case = Dict[str, Any]
Arrays = Dict[str, np.ndarray]

_K2_ACTS = ["tanh", "relu", "softsign", "linear", "elu", "selu", "softplus", "sigmoid", "hard_sigmoid"]
_K2_RECURRENT = ["sigmoid", "hard_sigmoid", "tanh", "softsign", "linear"]

#: Every name ``tf_keras.activations.get`` 2.21 accepts (``activation_names`` checks it against the real one).
TF_KERAS_ACTIVATIONS = [
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
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "tanh",
]
#: Every name ``keras.activations.get`` 3.15.1 accepts.
KERAS3_ACTIVATIONS = [
    "celu",
    "elu",
    "exponential",
    "gelu",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
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
    "silu",
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
    "threshold",
]
#: Keras 3 names that cannot be an LSTM gate activation (glu halves the width, threshold needs two more
#: arguments): no LSTM case; lstm-bridge raises NotImplementedError for them.
KERAS3_NOT_GATES = ["glu", "threshold"]
#: Names probed by ``activation_names``: both generations' names, lstm-bridge's own serialised names
#: (no Keras knows them) and a made-up one.
ACTIVATION_PROBES = sorted(
    set(TF_KERAS_ACTIVATIONS) | set(KERAS3_ACTIVATIONS) | {"gelu_tanh", "hard_sigmoid_keras3", "not_an_activation"}
)


def _lstm_config(units: int, **kw: Any) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {"units": units}
    cfg.update(kw)
    return cfg


class _Builder:
    """Accumulates cases with sequential ids and deterministic data."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.kv = 2 if flavour == "tf_keras" else 3
        self.prefix = "k2" if self.kv == 2 else "k3"
        self.counter = itertools.count()
        self.items: List[Tuple[Case, Arrays]] = []

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
        tags: Optional[List[str]] = None,
    ) -> None:
        cid = f"{self.prefix}-{next(self.counter):04d}"
        rng = rng_for(cid)
        arrays: Arrays = {}
        if mask == "mixed":
            batch = 4  # one row of each style
        elif mask in ("right", "left", "fully_masked_row"):
            batch = max(batch, 2)  # row 0 is full; the other rows carry the padding
        if mask != "none":
            steps = max(steps, 3)
        x = uniform32(rng, -1.5, 1.5, (steps, batch, features) if time_major else (batch, steps, features))
        arrays[f"{cid}/x"] = x
        m = make_mask(rng, mask, batch, steps)
        if m is not None:
            arrays[f"{cid}/mask"] = m.T.copy() if time_major else m
        in_dim = features
        out_layers = []
        for li, spec in enumerate(layers):
            entry: Dict[str, Any] = {"class": spec["class"], "config": spec["config"]}
            subs = [spec["config"]]
            if spec["class"] == "Bidirectional":
                entry["merge_mode"] = spec.get("merge_mode", "concat")
                if "backward_config" in spec:
                    entry["backward_config"] = spec["backward_config"]
                    subs.append(spec["backward_config"])
                else:
                    subs.append(spec["config"])
            keys: List[str] = []
            for si, cfg in enumerate(subs):
                keys += _draw_cell_weights(rng, arrays, f"{cid}/L{li}/{si}", in_dim, cfg)
            entry["weights"] = keys
            entry["initial_state"] = None
            if spec.get("initial_state"):
                st: List[str] = []
                for si, cfg in enumerate(subs):
                    u = cfg["units"]
                    for name, amp in (("h0", 1.0), ("c0", 2.0)):
                        key = f"{cid}/L{li}/{si}/{name}"
                        arrays[key] = uniform32(rng, -amp, amp, (batch, u))
                        st.append(key)
                entry["initial_state"] = st
            out_layers.append(entry)
            if spec["class"] == "Bidirectional":
                mm = entry["merge_mode"]
                in_dim = sum(c["units"] for c in subs) if mm == "concat" else subs[0]["units"]
            else:
                in_dim = spec["config"]["units"]
        case: Case = {
            "id": cid,
            "family": family,
            "tags": sorted(set(tags or [])),
            "flavour": self.flavour,
            "keras_version": self.kv,
            "kind": "layers",
            "x": f"{cid}/x",
            "mask": f"{cid}/mask" if m is not None else None,
            "training": False,
            "layers": out_layers,
            "grad": {} if grad else None,
        }
        self.items.append((case, arrays))

    def add_cell(
        self, family: str, config: Dict[str, Any], *, batch: int, steps: int, features: int, grad: bool
    ) -> None:
        cid = f"{self.prefix}-{next(self.counter):04d}"
        rng = rng_for(cid)
        u = config["units"]
        arrays: Arrays = {f"{cid}/x": uniform32(rng, -1.5, 1.5, (batch, steps, features))}
        keys = _draw_cell_weights(rng, arrays, f"{cid}/L0/0", features, config)
        st = []
        for name, amp in (("h0", 1.0), ("c0", 2.0)):
            key = f"{cid}/L0/0/{name}"
            arrays[key] = uniform32(rng, -amp, amp, (batch, u))
            st.append(key)
        case: Case = {
            "id": cid,
            "family": family,
            "tags": ["cell"],
            "flavour": self.flavour,
            "keras_version": self.kv,
            "kind": "cell",
            "x": f"{cid}/x",
            "mask": None,
            "training": False,
            "layers": [{"class": "LSTMCell", "config": config, "weights": keys, "initial_state": st}],
            "grad": {} if grad else None,
        }
        self.items.append((case, arrays))

    def add_calls(
        self,
        family: str,
        config: Dict[str, Any],
        calls: List[Dict[str, Any]],
        *,
        batch: int,
        steps: int,
        features: int,
        tags: List[str],
    ) -> None:
        """One layer called once per entry of ``calls`` (``{"initial_state": bool, "mask": kind,
        "reset_states": bool}``), each call with fresh inputs and, when asked, fresh initial states."""
        cid = f"{self.prefix}-{next(self.counter):04d}"
        rng = rng_for(cid)
        u = config["units"]
        arrays: Arrays = {}
        keys = _draw_cell_weights(rng, arrays, f"{cid}/L0/0", features, config)
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
                entry["initial_state"] = []
                for name, amp in (("h0", 1.0), ("c0", 2.0)):
                    key = f"{cid}/call{ci}/{name}"
                    arrays[key] = uniform32(rng, -amp, amp, (batch, u))
                    entry["initial_state"].append(key)
            out_calls.append(entry)
        case: Case = {
            "id": cid,
            "family": family,
            "tags": sorted(set(tags)),
            "flavour": self.flavour,
            "keras_version": self.kv,
            "kind": "calls",
            "x": out_calls[0]["x"],
            "mask": None,
            "training": False,
            "layers": [{"class": "LSTM", "config": config, "weights": keys, "initial_state": None}],
            "calls": out_calls,
            "grad": None,
        }
        self.items.append((case, arrays))


def _draw_cell_weights(
    rng: np.random.RandomState, arrays: Arrays, prefix: str, in_dim: int, config: Dict[str, Any]
) -> List[str]:
    """Draw one LSTM cell's Keras weights (kernel, recurrent_kernel[, bias]) into ``arrays`` under
    ``prefix/<name>``, in that order (the fixtures' RNG stream depends on it); returns the keys."""
    u = config["units"]
    names = [("kernel", (in_dim, 4 * u)), ("recurrent_kernel", (u, 4 * u))]
    if config.get("use_bias", True):
        names.append(("bias", (4 * u,)))
    keys = []
    for name, shape in names:
        key = f"{prefix}/{name}"
        arrays[key] = gate_scaled(rng, shape, u, axis=len(shape) - 1)
        keys.append(key)
    return keys


def build_cases(flavour: str) -> List[Tuple[Case, Arrays]]:
    """The Keras option matrix for ``flavour`` (``"tf_keras"`` or ``"keras3"``); framework-free."""
    if flavour not in ("tf_keras", "keras3"):
        raise ValueError(f"flavour must be 'tf_keras' or 'keras3', got {flavour!r}")
    b = _Builder(flavour)
    k2 = flavour == "tf_keras"
    pick = rng_for(flavour, "matrix")  # option sampling, independent of the data draws
    coin = rng_for(flavour, "gradients")

    def grad_now() -> bool:  # about half of the cases carry gradients, independent of the option pattern
        return bool(coin.rand() < 0.5)

    def dims() -> Tuple[int, int, int, int]:  # B, T, F, units (add() enlarges B and T for masks)
        return (int(pick.randint(1, 5)), int(pick.randint(1, 8)), int(pick.randint(1, 6)), int(pick.randint(1, 7)))

    # 1. The core matrix: mask kind x go_backwards x return_sequences x return_state.
    for mask, gb, rs, rst in itertools.product(
        ["none", "right", "left", "holes", "fully_masked_row", "mixed"], [False, True], [False, True], [False, True]
    ):
        B, T, F, u = dims()
        if mask in ("mixed",):
            B = 4
        if mask != "none":
            T = max(T, 3)
        rec = ["sigmoid", "hard_sigmoid"][int(pick.randint(0, 2))]
        init = bool(pick.randint(0, 2))
        cfg = _lstm_config(
            u, activation="tanh", recurrent_activation=rec, return_sequences=rs, return_state=rst, go_backwards=gb
        )
        tags = (
            [f"mask:{mask}", f"recurrent_activation:{rec}"]
            + (["go_backwards"] if gb else [])
            + (["return_sequences"] if rs else [])
            + (["return_state"] if rst else [])
            + (["initial_state"] if init else [])
        )
        b.add(
            "lstm/matrix",
            [{"class": "LSTM", "config": cfg, "initial_state": init}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=tags,
        )

    # 2. Activations (each flavour's own resolution of the names, incl. hard_sigmoid).
    acts = _K2_ACTS
    recs = _K2_RECURRENT
    n_act = 16 if k2 else 14
    for i in range(n_act):
        B, T, F, u = dims()
        act = acts[i % len(acts)]
        rec = recs[i % len(recs)] if i % 3 else "hard_sigmoid"
        mask = ["none", "right", "holes", "mixed"][i % 4]
        if mask == "mixed":
            B = 4
        T = max(T, 3)
        cfg = _lstm_config(
            u,
            activation=act,
            recurrent_activation=rec,
            return_sequences=bool(i % 2),
            go_backwards=bool((i // 2) % 2),
            return_state=bool((i // 4) % 2),
        )
        b.add(
            "lstm/activations",
            [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 3 == 0)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=[f"activation:{act}", f"recurrent_activation:{rec}", f"mask:{mask}"],
        )

    # 3. use_bias=False, implementation=1, unroll.
    for i in range(6 if k2 else 4):
        B, T, F, u = dims()
        mask = ["none", "left", "fully_masked_row"][i % 3]
        T = max(T, 2)
        cfg = _lstm_config(
            u,
            use_bias=False,
            recurrent_activation=["sigmoid", "hard_sigmoid"][i % 2],
            return_sequences=bool(i % 2),
            return_state=True,
            go_backwards=bool(i // 3),
        )
        b.add(
            "lstm/no_bias",
            [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 2)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=["use_bias:false", f"mask:{mask}"],
        )
    for i in range(6 if k2 else 4):
        B, T, F, u = dims()
        mask = ["none", "holes", "mixed"][i % 3]
        if mask == "mixed":
            B = 4
        T = max(T, 3)
        cfg = _lstm_config(
            u,
            implementation=1,
            recurrent_activation=["hard_sigmoid", "sigmoid"][i % 2],
            return_sequences=bool(i % 2),
            go_backwards=bool(i // 3),
        )
        b.add(
            "lstm/implementation1",
            [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 2 == 0)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=["implementation:1", f"mask:{mask}"],
        )
    for i in range(8 if k2 else 6):
        B, T, F, u = dims()
        mask = ["none", "right", "left", "mixed"][i % 4]
        if mask == "mixed":
            B = 4
        T = max(T, 3)
        cfg = _lstm_config(
            u,
            unroll=True,
            recurrent_activation=["sigmoid", "hard_sigmoid"][i % 2],
            return_sequences=bool((i // 2) % 2),
            return_state=bool(i % 3 == 0),
            go_backwards=bool(i // 4),
        )
        b.add(
            "lstm/unroll",
            [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 2)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=["unroll", f"mask:{mask}"],
        )

    # 4. time_major (tf_keras only: Keras 3 rejects the keyword).
    if k2:
        for i in range(8):
            B, T, F, u = dims()
            mask = ["none", "right", "holes", "fully_masked_row"][i % 4]
            T = max(T, 3)
            cfg = _lstm_config(
                u,
                time_major=True,
                return_sequences=bool(i % 2),
                return_state=bool((i // 2) % 2),
                go_backwards=bool(i // 4),
                recurrent_activation=["sigmoid", "hard_sigmoid"][i % 2],
            )
            b.add(
                "lstm/time_major",
                [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 3 == 0)}],
                batch=B,
                steps=T,
                features=F,
                mask=mask,
                grad=grad_now(),
                time_major=True,
                tags=["time_major", f"mask:{mask}"],
            )
        # 5. The TF 1.15 signature: tf.compat.v1.keras.layers.LSTM with its own defaults (hard_sigmoid, impl 1).
        for i in range(10):
            B, T, F, u = dims()
            mask = ["none", "right", "left", "holes", "mixed"][i % 5]
            if mask == "mixed":
                B = 4
            T = max(T, 3)
            cfg = _lstm_config(
                u, return_sequences=bool(i % 2), return_state=bool((i // 2) % 2), go_backwards=bool(i >= 5)
            )
            b.add(
                "v1/defaults",
                [{"class": "v1.LSTM", "config": cfg, "initial_state": bool(i % 3 == 0)}],
                batch=B,
                steps=T,
                features=F,
                mask=mask,
                grad=grad_now(),
                tags=["v1", f"mask:{mask}"],
            )

    # 6. Bidirectional: every merge mode x masks x return_sequences, with states.
    for mm, mask, rs in itertools.product(
        ["concat", "sum", "mul", "ave", None],
        ["none", "right", "left", "holes", "mixed"] if k2 else ["none", "right", "holes", "mixed"],
        [False, True],
    ):
        B, T, F, u = dims()
        if mask == "mixed":
            B = 4
        if mask != "none":
            T = max(T, 3)
        rst = bool(pick.randint(0, 2))
        init = bool(pick.randint(0, 2))
        rec = ["sigmoid", "hard_sigmoid"][int(pick.randint(0, 2))]
        cfg = _lstm_config(u, recurrent_activation=rec, return_sequences=rs, return_state=rst)
        tags = (
            [f"merge_mode:{mm}", f"mask:{mask}", f"recurrent_activation:{rec}"]
            + (["return_sequences"] if rs else [])
            + (["return_state"] if rst else [])
            + (["initial_state"] if init else [])
        )
        b.add(
            "bidirectional/merge_modes",
            [{"class": "Bidirectional", "config": cfg, "merge_mode": mm, "initial_state": init}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=tags,
        )
    # Explicit backward_layer with its own units / activations.
    for i in range(4 if k2 else 3):
        B, T, F, u = dims()
        ub = int(pick.randint(1, 7))
        mask = ["none", "right", "mixed", "holes"][i % 4]
        if mask == "mixed":
            B = 4
        T = max(T, 3)
        rs = bool(i % 2)
        cfg = _lstm_config(u, return_sequences=rs, return_state=bool(i >= 2))
        bcfg = _lstm_config(
            ub,
            return_sequences=rs,
            return_state=bool(i >= 2),
            go_backwards=True,
            activation="softsign",
            recurrent_activation="hard_sigmoid",
        )
        b.add(
            "bidirectional/backward_layer",
            [
                {
                    "class": "Bidirectional",
                    "config": cfg,
                    "merge_mode": "concat",
                    "backward_config": bcfg,
                    "initial_state": bool(i % 2 == 0),
                }
            ],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=["backward_layer", f"mask:{mask}"],
        )
    # Bidirectional + mask + unroll: both frameworks zero the backward half with the un-reversed mask (spec §6).
    for i in range(4 if k2 else 3):
        B, T, F, u = dims()
        mask = ["right", "left", "holes", "mixed"][i]
        T = max(T, 3)
        cfg = _lstm_config(u, unroll=True, return_sequences=True)
        b.add(
            "bidirectional/unroll_mask",
            [{"class": "Bidirectional", "config": cfg, "merge_mode": "concat", "initial_state": False}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=["unroll", f"mask:{mask}"],
        )

    # 7. Stacks: LSTM/Bidirectional layers returning sequences, the mask propagated to every layer.
    for i in range(12 if k2 else 8):
        B, T, F, u = dims()
        mask = ["none", "right", "left", "holes", "mixed", "fully_masked_row"][i % 6]
        if mask == "mixed":
            B = 4
        T = max(T, 3)
        depth = 2 + (i % 2)
        layers = []
        for d in range(depth):
            last = d == depth - 1
            uu = int(pick.randint(1, 7))
            rec = ["sigmoid", "hard_sigmoid"][int(pick.randint(0, 2))]
            rs = True if not last else bool(pick.randint(0, 2))
            rst = last and bool(pick.randint(0, 2))
            if (d + i) % 3 == 1:
                mm = ["concat", "sum", "ave", "mul"][int(pick.randint(0, 4))]
                layers.append(
                    {
                        "class": "Bidirectional",
                        "merge_mode": mm,
                        "config": _lstm_config(uu, recurrent_activation=rec, return_sequences=rs, return_state=rst),
                        "initial_state": bool(pick.randint(0, 2)),
                    }
                )
            else:
                layers.append(
                    {
                        "class": "LSTM",
                        "config": _lstm_config(
                            uu,
                            recurrent_activation=rec,
                            return_sequences=rs,
                            return_state=rst,
                            go_backwards=bool(pick.randint(0, 2)),
                        ),
                        "initial_state": bool(pick.randint(0, 2)),
                    }
                )
        b.add(
            "stacked",
            layers,
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now(),
            tags=[f"depth:{depth}", f"mask:{mask}"],
        )

    # 8. LSTMCell unrolled by hand.
    for i in range(8 if k2 else 6):
        B, T, F, u = dims()
        cfg = _lstm_config(
            u,
            activation=["tanh", "softsign", "relu"][i % 3],
            recurrent_activation=["sigmoid", "hard_sigmoid"][i % 2],
            use_bias=bool(i != 3),
        )
        b.add_cell("cell", cfg, batch=B, steps=max(T, 2), features=F, grad=grad_now())

    # 9. zero_output_for_mask=True on a plain LSTM (the flag Bidirectional sets), with and without unroll:
    # unroll + go_backwards + zero_output_for_mask zeroes with the un-reversed mask in both frameworks.
    for i in range(8 if k2 else 6):
        B, T, F, u = dims()
        mask = ["right", "left", "holes", "mixed"][i % 4]
        gb = bool((i // 2) % 2)
        unroll = bool(i % 2)
        cfg = _lstm_config(
            u,
            return_sequences=bool(i != 4),
            return_state=bool(i % 3 == 0),
            go_backwards=gb,
            unroll=unroll,
            zero_output_for_mask=True,
            recurrent_activation=["sigmoid", "hard_sigmoid"][(i // 4) % 2],
        )
        tags = (
            ["zero_output_for_mask", f"mask:{mask}"] + (["go_backwards"] if gb else []) + (["unroll"] if unroll else [])
        )
        b.add(
            "lstm/zero_output_for_mask",
            [{"class": "LSTM", "config": cfg, "initial_state": bool(i % 2 == 0)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad_now() or i % 2 == 1,
            tags=tags,
        )

    # 10. Every activation name of the generation, once as `activation` (gates sigmoid) and once as
    # `recurrent_activation` (candidate tanh), with gradients (issue 9: Keras's gelu is the exact erf form).
    for name in TF_KERAS_ACTIVATIONS if k2 else KERAS3_ACTIVATIONS:
        if name in KERAS3_NOT_GATES:
            continue
        for role in ("activation", "recurrent_activation"):
            cfg = _lstm_config(
                3,
                activation=name if role == "activation" else "tanh",
                recurrent_activation=name if role == "recurrent_activation" else "sigmoid",
                return_sequences=True,
                return_state=True,
            )
            b.add(
                "lstm/activation_names",
                [{"class": "LSTM", "config": cfg, "initial_state": True}],
                batch=2,
                steps=4,
                features=3,
                grad=True,
                tags=[f"{role}:{name}"],
            )
            if name == "exponential" and role == "activation":
                # h = o * exp(c) overflows float32 within a step at the usual scales: a tenth of the inputs,
                # weights and states keeps every value finite.
                arrays = b.items[-1][1]
                for key in arrays:
                    arrays[key] = (arrays[key] * np.float32(0.1)).astype(np.float32)

    # 11. Stateful layer called several times with and without initial_state (issue 9): tf_keras continues
    # from non-zero stored states and ignores initial_state; Keras 3 always takes it.
    sequences = [
        ("init_then_init", [{"initial_state": True}, {"initial_state": True}], {}),
        ("none_then_init", [{}, {"initial_state": True}], {}),
        ("reset_then_init", [{"initial_state": True}, {"initial_state": True, "reset_states": True}], {}),
        ("init_none_init", [{"initial_state": True}, {}, {"initial_state": True}], {"return_state": False}),
        (
            "last_output",
            [{"initial_state": True}, {"initial_state": True}],
            {"return_sequences": False, "return_state": False},
        ),
        (
            "go_backwards_mask",
            [{"initial_state": True, "mask": "right"}, {"initial_state": True, "mask": "holes"}],
            {"go_backwards": True},
        ),
    ]
    for label, calls, extra in sequences:
        cfg = _lstm_config(3, stateful=True, return_sequences=True, return_state=True)
        cfg.update(extra)
        b.add_calls(
            "lstm/stateful_initial_state", cfg, calls, batch=2, steps=4, features=3, tags=["stateful", f"calls:{label}"]
        )
    return b.items


def activation_names(K: Any) -> Dict[str, Any]:
    """Which of :data:`ACTIVATION_PROBES` ``K.activations.get`` accepts (name -> the resolved
    function's ``__name__``) and rejects (name -> the error text); raises when the accepted set is not
    this generation's list above (the framework changed: update the lists)."""
    accepted: Dict[str, str] = {}
    rejected: Dict[str, str] = {}
    for name in ACTIVATION_PROBES:
        try:
            fn = K.activations.get(name)
        except Exception as exc:  # what Keras raises is part of the record
            rejected[name] = f"{type(exc).__name__}: {exc}"
        else:
            accepted[name] = getattr(fn, "__name__", repr(fn))
    legacy = not str(getattr(K, "__version__", "2")).startswith("3.")  # tf.keras of tf_keras has no __version__
    want = TF_KERAS_ACTIVATIONS if legacy else KERAS3_ACTIVATIONS
    if sorted(accepted) != sorted(want):
        raise RuntimeError(f"Keras {K.__version__} accepts {sorted(accepted)}; the generator lists {sorted(want)}")
    return {"accepted": accepted, "rejected": rejected}


# --------------------------------------------------------------------------------------------------
# Real-framework side (needs TensorFlow / Keras; imported lazily by the caller).


def _flatten(result: Any) -> List[Any]:
    if isinstance(result, (list, tuple)):
        out: List[Any] = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


def _make_layer(spec: Dict[str, Any], K: Any, tf: Any) -> Any:
    cls = spec["class"]
    if cls == "LSTM":
        return K.layers.LSTM(**spec["config"])
    if cls == "v1.LSTM":
        return tf.compat.v1.keras.layers.LSTM(**spec["config"])
    if cls == "LSTMCell":
        return K.layers.LSTMCell(**spec["config"])
    if cls == "Bidirectional":
        kw: Dict[str, Any] = {"merge_mode": spec["merge_mode"]}
        if "backward_config" in spec:
            kw["backward_layer"] = K.layers.LSTM(**spec["backward_config"])
        return K.layers.Bidirectional(K.layers.LSTM(**spec["config"]), **kw)
    raise ValueError(f"unknown layer class {cls!r}")


def _variables(layer: Any, spec: Dict[str, Any]) -> List[Any]:
    """The trainable variables in ``get_weights()`` order (forward, then backward)."""
    if spec["class"] == "Bidirectional":
        return list(layer.forward_layer.trainable_weights) + list(layer.backward_layer.trainable_weights)
    return list(layer.trainable_weights)


def run_case(case: Case, arrays: Arrays, K: Any, tf: Any) -> Arrays:
    """Run one case in the real Keras; returns ``{key: array}`` for outputs (and gradients) and fills
    ``case["outputs"]`` / ``case["grad"]`` with their keys."""
    if case["kind"] == "calls":
        return _run_calls(case, arrays, K, tf)
    cid = case["id"]
    x = tf.constant(arrays[case["x"]])
    mask = tf.constant(arrays[case["mask"]]) if case["mask"] else None
    layers = [_make_layer(spec, K, tf) for spec in case["layers"]]
    states = [
        [tf.constant(arrays[k]) for k in spec["initial_state"]] if spec["initial_state"] else None
        for spec in case["layers"]
    ]

    def forward() -> List[Any]:
        if case["kind"] == "cell":
            cell = layers[0]
            st = states[0]
            hs = []
            for t in range(x.shape[1]):
                h, st = cell(x[:, t], st, training=False)
                hs.append(h)
            return [tf.stack(hs, axis=1), st[0], st[1]]
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
        var_vals = [np.asarray(v.numpy()) for v in _variables(layer, spec)]
        if not all(np.array_equal(v, arrays[k]) for v, k in zip(var_vals, spec["weights"])):
            raise AssertionError(f"{cid}: trainable variable order differs from get_weights order")

    result: Arrays = {}
    want_grad = case["grad"] is not None
    with tf.GradientTape(persistent=False) as tape:
        watched_states = [s for st in states if st for s in st]
        if want_grad:
            tape.watch(x)
            for s in watched_states:
                tape.watch(s)
        outs = forward()
        outs_np = [np.asarray(o.numpy(), dtype=np.float32) for o in outs]
        if want_grad:
            proj = projection_weights(cid, [o.shape for o in outs_np])
            loss = tf.add_n([tf.reduce_sum(tf.constant(w) * o) for w, o in zip(proj, outs)])
    keys = []
    for i, o in enumerate(outs_np):
        key = f"{cid}/out{i}"
        result[key] = o
        keys.append(key)
    case["outputs"] = keys
    if want_grad:
        variables = [v for layer, spec in zip(layers, case["layers"]) for v in _variables(layer, spec)]
        grads = tape.gradient(loss, [x] + watched_states + variables)
        g: Dict[str, Any] = {"proj": [], "initial_state": [], "weights": []}
        for i, w in enumerate(proj):
            key = f"{cid}/proj{i}"
            result[key] = w
            g["proj"].append(key)

        def store(name: str, value: Any, like: np.ndarray) -> str:
            key = f"{cid}/grad/{name}"
            result[key] = (
                np.zeros_like(like)
                if value is None
                else np.asarray(tf.convert_to_tensor(value).numpy(), dtype=np.float32)
            )
            return key

        g["x"] = store("x", grads[0], arrays[case["x"]])
        n_s = len(watched_states)
        all_state_keys = [k for spec in case["layers"] if spec["initial_state"] for k in spec["initial_state"]]
        for i, k in enumerate(all_state_keys):
            g["initial_state"].append(store(k.split("/", 1)[1].replace("/", "_"), grads[1 + i], arrays[k]))
        all_weight_keys = [k for spec in case["layers"] for k in spec["weights"]]
        for i, k in enumerate(all_weight_keys):
            g["weights"].append(store(k.split("/", 1)[1].replace("/", "_"), grads[1 + n_s + i], arrays[k]))
        case["grad"] = g
    return result


def _run_calls(case: Case, arrays: Arrays, K: Any, tf: Any) -> Arrays:
    """``kind == "calls"``: build, set the weights, ``reset_states()``, then the calls in order."""
    cid = case["id"]
    spec = case["layers"][0]
    layer = _make_layer(spec, K, tf)
    first = arrays[case["calls"][0]["x"]]
    layer(tf.zeros(first.shape, tf.float32), training=False)  # builds (stateful: with this batch size)
    layer.set_weights([arrays[k] for k in spec["weights"]])
    if not all(np.array_equal(g, arrays[k]) for g, k in zip(layer.get_weights(), spec["weights"])):
        raise AssertionError(f"{cid}: set_weights did not round-trip")
    layer.reset_states()
    result: Arrays = {}
    keys: List[str] = []
    for ci, call in enumerate(case["calls"]):
        if call["reset_states"]:
            layer.reset_states()
        kw: Dict[str, Any] = {"training": False}
        if call["mask"]:
            kw["mask"] = tf.constant(arrays[call["mask"]])
        if call["initial_state"]:
            kw["initial_state"] = [tf.constant(arrays[k]) for k in call["initial_state"]]
        outs = _flatten(layer(tf.constant(arrays[call["x"]]), **kw))
        outs += list(layer.states)
        for oi, o in enumerate(outs):
            key = f"{cid}/call{ci}/out{oi}"
            result[key] = np.asarray(tf.convert_to_tensor(o).numpy(), dtype=np.float32)
            keys.append(key)
    case["outputs"] = keys
    return result
