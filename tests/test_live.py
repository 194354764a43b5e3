"""Live parity: random configurations run side by side in the real framework and in lstm-bridge.

Marked ``live``: excluded from ``make test``; ``make test-live`` runs this file inside the golden
environments (``.golden-venvs/``, see ``tools/golden.mk``) three times — tf_keras
(``TF_USE_LEGACY_KERAS=1``), Keras 3, and MindSpore — with lstm-bridge installed there ``--no-deps``.
Each test skips cleanly when its framework is not importable.

Every draw builds a case with the generator's own builders (``tools/golden_keras.py``,
``tools/golden_ms.py``), runs it in the real framework (outputs and gradients of a random projection),
then through our public front ends (the runners of ``tests/golden_data.py``, the one golden loader) at
the golden tolerances.
``LSTM_BRIDGE_LIVE_N`` (default 40) sets the number of draws per flavour and ``LSTM_BRIDGE_LIVE_SEED``
(default 0) their first seed, so a failure is reproducible from its test id.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import golden_data as gd

pytestmark = pytest.mark.live

N_DRAWS = int(os.environ.get("LSTM_BRIDGE_LIVE_N", "40"))
FIRST_SEED = int(os.environ.get("LSTM_BRIDGE_LIVE_SEED", "0"))
SEEDS = list(range(FIRST_SEED, FIRST_SEED + N_DRAWS))


def _keras_flavour() -> str:
    return "tf_keras" if os.environ.get("TF_USE_LEGACY_KERAS", "0").lower() in ("1", "true") else "keras3"


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------------------------------------
# Random draws (framework-free)


def random_keras_case(flavour: str, seed: int) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """One random Keras configuration: a layer, a Bidirectional, a 2-layer stack or a cell."""
    gk = gd.generator_module("golden_keras")
    gc = gd.generator_module("golden_common")
    MASK_KINDS, rng_for = gc.MASK_KINDS, gc.rng_for

    k2 = flavour == "tf_keras"
    r = rng_for(f"live-{flavour}", str(seed))
    b = gk._Builder(flavour)
    b.prefix = f"live-{flavour}-{seed}"
    B, T, F = int(r.randint(1, 5)), int(r.randint(1, 8)), int(r.randint(1, 6))
    # Every gate-capable name of the generation as the candidate activation, but exponential and log_softmax;
    # as the gate only those bounded by 1 in magnitude. Random draws with an unbounded gate (exponential,
    # selu, squareplus, ...) or those two candidates grow without bound and end in float32 overflow, or in
    # gradients near 1e4 where both frameworks' float32 results are 5e-3 from the float64 value (measured:
    # a Keras 3 stack with a log_softmax candidate): noise, not semantics. The golden cases lstm/activation_names
    # cover every name in both roles at scales that stay finite.
    names = [
        n
        for n in (gk.TF_KERAS_ACTIVATIONS if k2 else gk.KERAS3_ACTIVATIONS)
        if n not in gk.KERAS3_NOT_GATES and n not in ("exponential", "log_softmax")
    ]
    bounded = {"sigmoid", "hard_sigmoid", "tanh", "softsign", "softmax", "hard_tanh", "sparse_sigmoid", "sparsemax"}
    acts = ["tanh", "tanh", "relu", "softsign", "linear", "elu", "sigmoid", "hard_sigmoid"] + names
    recs = ["sigmoid", "hard_sigmoid", "sigmoid", "hard_sigmoid", "tanh", "softsign"] + [
        n for n in names if n in bounded
    ]

    def lstm_cfg(rs: bool, rst: bool, go_backwards: bool = False) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {
            "units": int(r.randint(1, 7)),
            "activation": acts[r.randint(len(acts))],
            "recurrent_activation": recs[r.randint(len(recs))],
            "return_sequences": rs,
            "return_state": rst,
            "go_backwards": go_backwards,
        }
        if r.rand() < 0.2:
            cfg["use_bias"] = False
        if r.rand() < 0.2:
            cfg["implementation"] = 1
        return cfg

    kind = r.choice(["lstm", "lstm", "bidirectional", "stack", "cell"] + (["v1"] if k2 else []))
    mask = str(r.choice(MASK_KINDS))
    grad = bool(r.rand() < 0.7)
    rs, rst = bool(r.rand() < 0.5), bool(r.rand() < 0.5)
    if kind == "cell":
        cfg = lstm_cfg(False, False)
        for k in ("return_sequences", "return_state", "go_backwards"):
            cfg.pop(k)
        b.add_cell("live/cell", cfg, batch=B, steps=max(T, 1), features=F, grad=grad)
    elif kind in ("lstm", "v1"):
        cfg = lstm_cfg(rs, rst, bool(r.rand() < 0.5))
        time_major = k2 and kind == "lstm" and r.rand() < 0.2
        if time_major:
            cfg["time_major"] = True
        if r.rand() < 0.2:
            cfg["unroll"] = True
        if kind == "v1":
            cfg = {k: v for k, v in cfg.items() if k not in ("activation", "recurrent_activation", "implementation")}
        b.add(
            f"live/{kind}",
            [{"class": "LSTM" if kind == "lstm" else "v1.LSTM", "config": cfg, "initial_state": bool(r.rand() < 0.5)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad,
            time_major=time_major,
        )
    elif kind == "bidirectional":
        cfg = lstm_cfg(rs, rst)
        mm = [None, "concat", "sum", "mul", "ave"][r.randint(5)]
        b.add(
            "live/bidirectional",
            [{"class": "Bidirectional", "config": cfg, "merge_mode": mm, "initial_state": bool(r.rand() < 0.5)}],
            batch=B,
            steps=T,
            features=F,
            mask=mask,
            grad=grad,
        )
    else:
        first = {
            "class": "LSTM",
            "config": lstm_cfg(True, False, bool(r.rand() < 0.5)),
            "initial_state": bool(r.rand() < 0.5),
        }
        second = (
            {
                "class": "Bidirectional",
                "config": lstm_cfg(rs, rst),
                "merge_mode": "concat",
                "initial_state": bool(r.rand() < 0.5),
            }
            if r.rand() < 0.5
            else {
                "class": "LSTM",
                "config": lstm_cfg(rs, rst, bool(r.rand() < 0.5)),
                "initial_state": bool(r.rand() < 0.5),
            }
        )
        b.add("live/stack", [first, second], batch=B, steps=T, features=F, mask=mask, grad=grad)
    return b.items[-1]


def random_mindspore_case(seed: int) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """One random MindSpore configuration: an ``LSTM`` (1-3 layers, every flag, hx, seq_length) or a cell."""
    gm = gd.generator_module("golden_ms")
    rng_for = gd.generator_module("golden_common").rng_for

    r = rng_for("live-mindspore", str(seed))
    B, T, I, H = int(r.randint(1, 5)), int(r.randint(1, 8)), int(r.randint(1, 6)), int(r.randint(1, 7))
    cid = f"live-ms-{seed}"
    grad = bool(r.rand() < 0.7)
    scale = float(r.choice([1.0, 1.0, 2.0, 4.0]))
    if r.rand() < 0.15:
        cfg = {"input_size": I, "hidden_size": H, "has_bias": bool(r.rand() < 0.8)}
        return gm.make_case(
            cid, "live/cell", "LSTMCell", cfg, B=B, T=T, hx=True, seq=None, tags=["cell"], grad=grad, weight_scale=scale
        )
    bi = bool(r.rand() < 0.5)
    cfg = {
        "input_size": I,
        "hidden_size": H,
        "num_layers": int(r.randint(1, 4)),
        "has_bias": bool(r.rand() < 0.8),
        "batch_first": bool(r.rand() < 0.5),
        "bidirectional": bi,
    }
    seq = [None, "mixed", "mixed", "full", "zeros"][r.randint(5)]
    if seq is not None:
        B = max(B, 2) if seq == "mixed" else B
        if not bi and r.rand() < 0.2:
            seq = "over"
    return gm.make_case(
        cid,
        "live/lstm",
        "LSTM",
        cfg,
        B=B,
        T=T,
        hx=bool(r.rand() < 0.5),
        seq=seq,
        tags=[],
        grad=grad,
        weight_scale=scale,
    )


# ------------------------------------------------------------------------------------------------
# Real frameworks (imported only when a live test runs)


def _keras_modules() -> Tuple[Any, Any]:
    if not _available("tensorflow"):
        pytest.skip("TensorFlow is not importable (make test-live runs this inside .golden-venvs/tf)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    if _keras_flavour() == "tf_keras":
        if not tf.keras.layers.LSTM.__module__.startswith("tf_keras"):
            pytest.skip("TF_USE_LEGACY_KERAS=1 was set after TensorFlow picked Keras 3 in this process")
        return tf.keras, tf
    import keras

    return keras, tf


def _mindspore() -> Any:
    if not _available("mindspore"):
        pytest.skip("MindSpore is not importable (make test-live runs this inside .golden-venvs/ms)")
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    return ms


def _check_side_by_side(case: Dict[str, Any], arrays: Dict[str, np.ndarray], numerics: Any = None) -> None:
    got = gd.run_case(case, arrays, numerics)
    errors = gd.compare(case, arrays, got)
    if case.get("grad") is not None:
        assert errors["grads"], f"{case['id']}: no gradients were compared"
    gd.check(case, errors, *gd.tolerances(case, numerics))


@pytest.mark.parametrize("seed", SEEDS)
def test_live_keras(seed: int) -> None:
    K, tf = _keras_modules()
    gk = gd.generator_module("golden_keras")

    flavour = _keras_flavour()
    case, arrays = random_keras_case(flavour, seed)
    arrays.update(gk.run_case(case, arrays, K, tf))
    _check_side_by_side(case, arrays)


@pytest.mark.parametrize("seed", SEEDS)
def test_live_mindspore(seed: int) -> None:
    ms = _mindspore()
    gm = gd.generator_module("golden_ms")

    case, arrays = random_mindspore_case(seed)
    arrays.update(gm.run_case(case, arrays, ms))
    if case["approx_activations"]:  # the emulation first: its failure is the more telling one
        _check_side_by_side(case, arrays, "mindspore-cpu")
    _check_side_by_side(case, arrays)


def test_live_draws_are_valid() -> None:
    """The random draws themselves (no framework needed): deterministic per seed, well-formed."""
    a, arr_a = random_keras_case("tf_keras", 3)
    b, arr_b = random_keras_case("tf_keras", 3)
    assert a == b and sorted(arr_a) == sorted(arr_b)
    assert all(np.array_equal(arr_a[k], arr_b[k]) for k in arr_a)
    m, arr_m = random_mindspore_case(5)
    assert m["id"] == "live-ms-5" and m["x"] in arr_m
    kinds: List[str] = [random_keras_case("keras3", s)[0]["family"] for s in range(30)]
    assert len(set(kinds)) >= 3, kinds
