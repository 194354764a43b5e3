"""MindSpore golden cases: the option matrix (framework-free) and the real-MindSpore runner.

``build_cases()`` returns ``[(case, arrays)]``; ``run_case(case, arrays, ms)`` runs one in MindSpore 2.x
(CPU, PyNative) and returns the outputs and, when asked, the gradients of ``sum_k sum(w_k * out_k)``
with respect to the inputs, ``hx`` and every trainable parameter.

Case schema::

    {"id", "family", "tags", "flavour": "mindspore", "kind": "LSTM" | "LSTMCell",
     "config": {constructor kwargs of lstm_bridge.mindspore.LSTM / LSTMCell (dropout is always 0.0)},
     "params": {MindSpore parameter name: key},          # load_state_dict input
     "x": key,                                           # (T, B, I), or (B, T, I) with batch_first
     "hx": [h0 key, c0 key] | null,                      # (L*D, B, H) each; LSTMCell: (B, H), required
     "seq_length": key | null,                           # (B,) int32
     "approx_activations": bool,                         # MindSpore's CPU path used its approximate
                                                         # Sigmoid/Tanh (seq_length given, or LSTMCell)
     "outputs": [output, h_n, c_n keys],                 # LSTMCell: [stack of h_t (T, B, H), h_T, c_T]
     "grad": null | {"proj": [keys], "x": key, "hx": [keys] | null, "params": {name: key}}}

``LSTMCell`` cases run the cell over ``x[t]`` for t = 0..T-1 (x is ``(T, B, I)``) from ``hx``.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from golden_common import gate_scaled, projection_weights, rng_for, uniform32

Case = Dict[str, Any]
Arrays = Dict[str, np.ndarray]


def _param_shapes(cfg: Dict[str, Any]) -> List[Tuple[str, Tuple[int, ...]]]:
    """MindSpore's parameter names and shapes in ``parameters_and_names()`` order (spec §2.2)."""
    H = cfg["hidden_size"]
    if "num_layers" not in cfg:  # LSTMCell
        out = [("weight_ih", (4 * H, cfg["input_size"])), ("weight_hh", (4 * H, H))]
        if cfg.get("has_bias", True):
            out += [("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))]
        return out
    D = 2 if cfg.get("bidirectional", False) else 1
    sufs = ["", "_reverse"][:D]
    groups: Dict[str, List[Tuple[str, Tuple[int, ...]]]] = {
        "weight_ih": [],
        "weight_hh": [],
        "bias_ih": [],
        "bias_hh": [],
    }
    for layer in range(cfg.get("num_layers", 1)):
        in_l = cfg["input_size"] if layer == 0 else D * H
        for s in sufs:
            groups["weight_ih"].append((f"weight_ih_l{layer}{s}", (4 * H, in_l)))
            groups["weight_hh"].append((f"weight_hh_l{layer}{s}", (4 * H, H)))
            groups["bias_ih"].append((f"bias_ih_l{layer}{s}", (4 * H,)))
            groups["bias_hh"].append((f"bias_hh_l{layer}{s}", (4 * H,)))
    order = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cfg.get("has_bias", True) else [])
    return [p for g in order for p in groups[g]]


def _lengths(rng: np.random.RandomState, kind: str, B: int, T: int) -> np.ndarray:
    if kind == "full":
        return np.full((B,), T, dtype=np.int32)
    if kind == "zeros":
        return np.zeros((B,), dtype=np.int32)
    if kind == "over":  # > T: a unidirectional net treats it as T (spec §4)
        lens = rng.randint(0, T + 1, size=B).astype(np.int32)
        lens[0] = T + 2
        return lens
    if kind == "mixed":  # one full row, one empty row (when B >= 2), the rest random, unsorted
        lens = rng.randint(1, T + 1, size=B).astype(np.int32)
        lens[rng.randint(0, B)] = T
        if B >= 2:
            idx = rng.randint(0, B)
            while lens[idx] == T and (lens == T).sum() == 1:
                idx = (idx + 1) % B
            lens[idx] = 0
        return lens
    raise ValueError(f"unknown seq_length kind {kind!r}")


def make_case(
    cid: str,
    family: str,
    kind: str,
    cfg: Dict[str, Any],
    *,
    B: int,
    T: int,
    hx: bool,
    seq: Optional[str],
    tags: List[str],
    grad: bool,
    weight_scale: float = 1.0,
) -> Tuple[Case, Arrays]:
    """One case: random uneven parameters (times ``weight_scale``), input, ``hx`` and lengths from ``cid``.

    ``seq`` is a length pattern (``"mixed"``, ``"full"``, ``"zeros"``, ``"over"``) or None.
    """
    rng = rng_for(cid)
    arrays: Arrays = {}
    H = cfg["hidden_size"]
    bf = cfg.get("batch_first", False)
    x_shape = (B, T, cfg["input_size"]) if bf else (T, B, cfg["input_size"])
    arrays[f"{cid}/x"] = uniform32(rng, -1.5, 1.5, x_shape)
    params = {}
    for name, shape in _param_shapes(cfg):
        key = f"{cid}/p/{name}"
        arrays[key] = (gate_scaled(rng, shape, H, axis=0) * np.float32(weight_scale)).astype(np.float32)
        params[name] = key
    hx_keys = None
    if hx:
        rows = (cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional", False) else 1),) if kind == "LSTM" else ()
        hx_keys = []
        for name, amp in (("h0", 1.0), ("c0", 2.0)):
            key = f"{cid}/{name}"
            arrays[key] = uniform32(rng, -amp, amp, rows + (B, H))
            hx_keys.append(key)
    seq_key = None
    if seq is not None:
        seq_key = f"{cid}/seq_length"
        arrays[seq_key] = _lengths(rng, seq, B, T)
    case: Case = {
        "id": cid,
        "family": family,
        "tags": sorted(set(tags)),
        "flavour": "mindspore",
        "kind": kind,
        "config": cfg,
        "params": params,
        "x": f"{cid}/x",
        "hx": hx_keys,
        "seq_length": seq_key,
        "approx_activations": kind == "LSTMCell" or seq is not None,
        "grad": {} if grad else None,
    }
    return case, arrays


def build_cases() -> List[Tuple[Case, Arrays]]:
    """The MindSpore option matrix; framework-free."""
    items: List[Tuple[Case, Arrays]] = []
    counter = itertools.count()
    coin = rng_for("mindspore", "gradients")  # about half of the cases carry gradients
    pick = rng_for("mindspore", "matrix")

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
        weight_scale: float = 1.0,
        force_grad: bool = False,
    ) -> None:
        grad = bool(coin.rand() < 0.5) or force_grad
        items.append(
            make_case(
                f"ms-{next(counter):04d}",
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
        return (int(pick.randint(1, 5)), int(pick.randint(1, 8)), int(pick.randint(1, 6)), int(pick.randint(1, 7)))

    # 1. The matrix: layers x bidirectional x batch_first x has_bias x (hx, seq_length).
    modes = [(False, None), (True, None), (False, "mixed"), (True, "mixed")]
    for L, bi, bf, bias in itertools.product([1, 2, 3], [False, True], [False, True], [True, False]):
        for hx, seq in modes:
            B, T, I, H = dims()
            if seq is not None:
                B = max(B, 2)
                T = max(T, 2)
            cfg = {
                "input_size": I,
                "hidden_size": H,
                "num_layers": L,
                "has_bias": bias,
                "batch_first": bf,
                "bidirectional": bi,
            }
            family = "lstm/seq_length" if seq else "lstm/fused"
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
            add(family, "LSTM", cfg, B=B, T=T, hx=hx, seq=seq, tags=tags)

    # 2. seq_length edge cases: all zero, all full (not the same numbers as None), > T (unidirectional).
    for i, (seq, bi) in enumerate(
        [
            ("zeros", False),
            ("zeros", True),
            ("full", False),
            ("full", True),
            ("full", True),
            ("full", False),
            ("over", False),
            ("over", False),
        ]
    ):
        B, T, I, H = dims()
        L = 1 + i % 3
        cfg = {
            "input_size": I,
            "hidden_size": H,
            "num_layers": L,
            "has_bias": True,
            "batch_first": bool(i % 2),
            "bidirectional": bi,
        }
        add(
            f"lstm/seq_length_{seq}",
            "LSTM",
            cfg,
            B=B,
            T=max(T, 2),
            hx=bool(i % 3 != 1),
            seq=seq,
            tags=[f"seq_length:{seq}", f"num_layers:{L}", f"bidirectional:{bi}".lower()],
            force_grad=i % 2 == 0,
        )

    # Large weights (x4): pre-activations reach MindSpore's Tanh cut at +-5, where its approximation is worst.
    for i in range(6):
        B, T, I, H = dims()
        L = 1 + i % 2
        cfg = {
            "input_size": I,
            "hidden_size": H,
            "num_layers": L,
            "has_bias": True,
            "batch_first": False,
            "bidirectional": bool(i % 3 == 0),
        }
        add(
            "lstm/seq_length_large_weights",
            "LSTM",
            cfg,
            B=max(B, 2),
            T=max(T, 4),
            hx=True,
            seq="mixed",
            tags=["large_weights", "seq_length:mixed", f"num_layers:{L}"],
            weight_scale=4.0,
            force_grad=i < 4,
        )

    # 3. LSTMCell unrolled by hand.
    for i in range(12):
        B, T, I, H = dims()
        cfg = {"input_size": I, "hidden_size": H, "has_bias": bool(i % 4 != 3)}
        add("cell", "LSTMCell", cfg, B=B, T=max(T, 1), hx=True, seq=None, tags=["cell"])
    for _ in range(3):
        B, T, I, H = dims()
        cfg = {"input_size": I, "hidden_size": H, "has_bias": True}
        add(
            "cell_large_weights",
            "LSTMCell",
            cfg,
            B=B,
            T=max(T, 3),
            hx=True,
            seq=None,
            tags=["cell", "large_weights"],
            weight_scale=4.0,
            force_grad=True,
        )
    return items


# --------------------------------------------------------------------------------------------------
# Real-framework side (needs MindSpore).


def run_case(case: Case, arrays: Arrays, ms: Any) -> Arrays:
    """Run one case in MindSpore; returns ``{key: array}`` and fills ``case["outputs"]`` / ``case["grad"]``."""
    from mindspore import Parameter, Tensor, nn, ops

    cid = case["id"]
    cfg = case["config"]
    if case["kind"] == "LSTM":
        net = nn.LSTM(
            cfg["input_size"],
            cfg["hidden_size"],
            num_layers=cfg["num_layers"],
            has_bias=cfg["has_bias"],
            batch_first=cfg["batch_first"],
            dropout=0.0,
            bidirectional=cfg["bidirectional"],
        )
    else:
        net = nn.LSTMCell(cfg["input_size"], cfg["hidden_size"], has_bias=cfg["has_bias"])
    net.set_train(False)
    expected_names = [n for n, _ in _param_shapes(cfg)]
    got_names = [p.name for p in net.trainable_params()]
    if got_names != expected_names:
        raise AssertionError(f"{cid}: MindSpore parameter order {got_names} != expected {expected_names}")
    pdict = {name: Parameter(Tensor(arrays[key]), name=name) for name, key in case["params"].items()}
    not_loaded, _ = ms.load_param_into_net(net, pdict, strict_load=True)
    if not_loaded:
        raise AssertionError(f"{cid}: parameters not loaded: {not_loaded}")
    for p in net.trainable_params():
        if not np.array_equal(p.asnumpy(), arrays[case["params"][p.name]]):
            raise AssertionError(f"{cid}: parameter {p.name} did not load exactly")

    x = Tensor(arrays[case["x"]])
    hx = tuple(Tensor(arrays[k]) for k in case["hx"]) if case["hx"] else None
    seq = Tensor(arrays[case["seq_length"]]) if case["seq_length"] else None

    def forward(x_: Any, *hx_: Any) -> List[Any]:
        if case["kind"] == "LSTMCell":
            h, c = hx_
            hs = []
            for t in range(x_.shape[0]):
                h, c = net(x_[t], (h, c))
                hs.append(h)
            return [ops.stack(hs, axis=0), h, c]
        out, (hn, cn) = net(x_, tuple(hx_) if hx_ else None, seq)
        return [out, hn, cn]

    outs = forward(x, *(hx or ()))
    result: Arrays = {}
    keys = []
    outs_np = [o.asnumpy().astype(np.float32) for o in outs]
    for i, o in enumerate(outs_np):
        key = f"{cid}/out{i}"
        result[key] = o
        keys.append(key)
    case["outputs"] = keys
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
        n_in = 1 + (2 if hx else 0)
        positions = tuple(range(n_in)) if n_in > 1 else 0
        g_inputs, g_params = ms.grad(loss_fn, grad_position=positions, weights=params)(x, *(hx or ()))
        if n_in == 1:
            g_inputs = (g_inputs,)
        g: Dict[str, Any] = {"proj": [], "hx": None, "params": {}}
        for i, w in enumerate(proj):
            key = f"{cid}/proj{i}"
            result[key] = w
            g["proj"].append(key)
        result[f"{cid}/grad/x"] = g_inputs[0].asnumpy().astype(np.float32)
        g["x"] = f"{cid}/grad/x"
        if hx:
            g["hx"] = []
            for name, v in zip(("h0", "c0"), g_inputs[1:]):
                key = f"{cid}/grad/{name}"
                result[key] = v.asnumpy().astype(np.float32)
                g["hx"].append(key)
        for p, v in zip(params, g_params):
            key = f"{cid}/grad/p/{p.name}"
            result[key] = v.asnumpy().astype(np.float32)
            g["params"][p.name] = key
        case["grad"] = g
    return result
