"""Probe the real frameworks for the recurrent family (GRU, SimpleRNN, MindSpore GRU/RNN).

Regenerates the measurements quoted in ``docs/spec/keras_gru_simplernn.md`` and
``docs/spec/mindspore_gru_rnn.md`` and records the small reference cases in ``tests/fixtures/family/``.
Each subcommand runs in the interpreter that has the framework:

    export TF_CPP_MIN_LOG_LEVEL=3 CUDA_VISIBLE_DEVICES=
    TF_USE_LEGACY_KERAS=1 .golden-venvs/tf/bin/python tools/probe_family.py tfkeras
    .golden-venvs/tf/bin/python tools/probe_family.py keras3
    .golden-venvs/ms/bin/python tools/probe_family.py mindspore

Every subcommand prints one line per measurement (``label: value``) and, with ``--record``, writes the
fixtures (``tests/fixtures/family/<case>.npz``). A fixture holds ``x`` and the call's inputs, the weights
(``w:<i>`` in ``layer.get_weights()`` order for Keras, ``param:<name>`` for MindSpore), the outputs
(``out:<i>``) and ``config`` (a JSON string describing the call). The oracle (``tests/oracle.py``, NumPy
only) is imported here to measure the frameworks against it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "family"
sys.path.insert(0, str(ROOT / "tests"))
import oracle as R  # noqa: E402  (NumPy only; importable from every framework venv)

RECORD = "--record" in sys.argv


def _maxdiff(a: Any, b: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape} != {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _say(label: str, value: Any) -> None:
    if isinstance(value, float):
        value = f"{value:.3g}"
    print(f"{label}: {value}", flush=True)


def _save(name: str, arrays: Dict[str, np.ndarray], config: Dict[str, Any]) -> None:
    if not RECORD:
        return
    FIX.mkdir(parents=True, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["config"] = np.array(json.dumps(config, sort_keys=True))
    np.savez_compressed(FIX / f"{name}.npz", **payload)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# =============================================================================================
# Keras (tf_keras 2.21 and Keras 3.15.1): shared driver
# =============================================================================================


def _keras_cases(generation: str) -> List[Dict[str, Any]]:
    """The recorded cases. ``layer`` is gru / gru_v1 / simple_rnn / bidirectional_gru."""
    hs = "hard_sigmoid"
    holes = [[1, 0, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]]
    right = [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    cases: List[Dict[str, Any]] = []
    if generation == "tfkeras":
        cases += [
            dict(name="tk_gru_default_h0", layer="gru", kw=dict(return_sequences=True, return_state=True), h0=True),
            dict(name="tk_gru_v1_defaults", layer="gru_v1", kw=dict(return_sequences=True, return_state=True)),
            dict(
                name="tk_gru_hs_reset_after_mask_holes",
                layer="gru",
                kw=dict(recurrent_activation=hs, return_sequences=True, return_state=True),
                mask=holes,
                h0=True,
            ),
            dict(
                name="tk_gru_reset_before_hs_backwards_mask",
                layer="gru",
                kw=dict(
                    reset_after=False,
                    recurrent_activation=hs,
                    go_backwards=True,
                    return_sequences=True,
                    return_state=True,
                ),
                mask=right,
                h0=True,
            ),
            dict(
                name="tk_gru_reset_before_zero_output_last",
                layer="gru",
                kw=dict(reset_after=False, return_state=True, zero_output_for_mask=True),
                mask=right,
            ),
            dict(
                name="tk_simplernn_mask_backwards",
                layer="simple_rnn",
                kw=dict(go_backwards=True, return_sequences=True, return_state=True),
                mask=holes,
                h0=True,
            ),
            dict(
                name="tk_bidirectional_gru_mask", layer="bidirectional_gru", kw=dict(return_sequences=True), mask=right
            ),
            dict(
                name="tk_gru_dropout_impl1",
                layer="gru",
                kw=dict(dropout=0.3, recurrent_dropout=0.4, implementation=1, return_sequences=True),
                training=True,
            ),
        ]
    else:
        cases += [
            dict(
                name="k3_gru_hs_mask_h0",
                layer="gru",
                kw=dict(recurrent_activation=hs, return_sequences=True, return_state=True),
                mask=holes,
                h0=True,
            ),
            dict(
                name="k3_gru_reset_before_backwards",
                layer="gru",
                kw=dict(reset_after=False, go_backwards=True, return_sequences=True, return_state=True),
            ),
            dict(
                name="k3_simplernn_relu_mask_h0",
                layer="simple_rnn",
                kw=dict(activation="relu", return_sequences=True, return_state=True),
                mask=right,
                h0=True,
            ),
        ]
    return cases


def _keras_layer(mod: Any, generation: str, case: Dict[str, Any], units: int) -> Any:
    layers = mod.layers
    kw = dict(case["kw"])
    if case["layer"] == "gru":
        return layers.GRU(units, **kw)
    if case["layer"] == "gru_v1":
        from tf_keras.src.layers.rnn import gru_v1

        return gru_v1.GRU(units, **kw)
    if case["layer"] == "simple_rnn":
        return layers.SimpleRNN(units, **kw)
    if case["layer"] == "bidirectional_gru":
        return layers.Bidirectional(layers.GRU(units, **kw))
    raise ValueError(case["layer"])


def _keras_run(generation: str) -> None:
    import tensorflow as tf

    if generation == "tfkeras":
        import tf_keras as mod
    else:
        import keras as mod
    _say(f"{generation} version", mod.__version__)
    B, T, F, u = 3, 5, 3, 4
    for idx, case in enumerate(_keras_cases(generation)):
        rng = _rng(100 + idx)
        x = rng.normal(size=(B, T, F)).astype(np.float32)
        layer = _keras_layer(mod, generation, case, u)
        layer.build((B, T, F))
        weights = [(rng.normal(size=w.shape) * 0.7).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        call_kw: Dict[str, Any] = {}
        arrays: Dict[str, np.ndarray] = {"x": x}
        if "mask" in case:
            arrays["mask"] = np.array(case["mask"], dtype=bool)
            call_kw["mask"] = tf.constant(arrays["mask"])
        if case.get("h0"):
            arrays["h0"] = (rng.normal(size=(B, u)) * 0.5).astype(np.float32)
            call_kw["initial_state"] = [tf.constant(arrays["h0"])]
        if case.get("training"):
            call_kw["training"] = True
        outs = layer(tf.constant(x), **call_kw)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        for i, w in enumerate(weights):
            arrays[f"w:{i}"] = w
        for i, o in enumerate(outs):
            arrays[f"out:{i}"] = np.asarray(o)
        cell = layer.forward_layer.cell if case["layer"] == "bidirectional_gru" else layer.cell
        config = dict(
            generation=generation,
            layer=case["layer"],
            kw=case["kw"],
            units=u,
            activation=getattr(cell.activation, "__name__", str(cell.activation)),
            recurrent_activation=getattr(getattr(cell, "recurrent_activation", None), "__name__", None),
            reset_after=getattr(cell, "reset_after", None),
            implementation=getattr(cell, "implementation", None),
            weight_shapes=[list(w.shape) for w in weights],
        )
        if case.get("training"):
            # tf_keras caches the per-call dropout masks on the cell: read back the ones this call used
            dp = cell.get_dropout_mask_for_cell(tf.constant(x[:, 0]), True, count=3)
            rdp = cell.get_recurrent_dropout_mask_for_cell(tf.constant(np.zeros((B, u), np.float32)), True, count=3)
            arrays["input_masks"] = np.stack([np.asarray(m) for m in dp])
            arrays["recurrent_masks"] = np.stack([np.asarray(m) for m in rdp])
            _say(
                f"{case['name']} dropout masks (input, recurrent)",
                f"{arrays['input_masks'].shape}, {arrays['recurrent_masks'].shape}",
            )
        ref = _keras_oracle(arrays, config)
        diffs = [_maxdiff(a, b) for a, b in zip(outs, ref)]
        _say(
            f"{case['name']} config",
            json.dumps(
                {
                    k: config[k]
                    for k in ("activation", "recurrent_activation", "reset_after", "implementation", "weight_shapes")
                }
            ),
        )
        _say(f"{case['name']} outputs", [list(np.asarray(o).shape) for o in outs])
        _say(f"{case['name']} max|framework - oracle float64|", max(diffs))
        _save(case["name"], arrays, config)


def _keras_oracle(arrays: Dict[str, np.ndarray], config: Dict[str, Any]) -> List[np.ndarray]:
    """The oracle's answer for a recorded Keras case (also used by tests/test_oracle_family.py)."""
    kw = dict(config["kw"])
    kw.pop("dropout", None)
    kw.pop("recurrent_dropout", None)
    kw.pop("implementation", None)
    for key in ("activation", "recurrent_activation", "reset_after"):  # resolved values come from config
        kw.pop(key, None)
    gen = config["generation"]
    rec_act = config.get("recurrent_activation")
    if rec_act == "hard_sigmoid":
        rec_act = "hard_sigmoid" if gen == "tfkeras" else "hard_sigmoid_keras3"
    common: Dict[str, Any] = dict(mask=arrays.get("mask"))
    if "h0" in arrays:
        common["initial_state"] = [arrays["h0"]]
    w = [arrays[f"w:{i}"] for i in range(len(config["weight_shapes"]))]
    layer = config["layer"]
    if layer in ("gru", "gru_v1"):
        out = R.keras_gru(
            arrays["x"],
            w[0],
            w[1],
            w[2] if len(w) > 2 else None,
            reset_after=config["reset_after"],
            activation=config["activation"],
            recurrent_activation=rec_act,
            input_masks=arrays.get("input_masks"),
            recurrent_masks=arrays.get("recurrent_masks"),
            **common,
            **kw,
        )
    elif layer == "simple_rnn":
        out = R.keras_simple_rnn(
            arrays["x"], w[0], w[1], w[2] if len(w) > 2 else None, activation=config["activation"], **common, **kw
        )
    elif layer == "bidirectional_gru":
        out = R.keras_bidirectional_family(
            "gru",
            arrays["x"],
            w[:3],
            w[3:],
            reset_after=config["reset_after"],
            activation=config["activation"],
            recurrent_activation=rec_act,
            mask=arrays.get("mask"),
            **kw,
        )
    else:
        raise ValueError(layer)
    return list(out) if isinstance(out, list) else [out]


def _keras_facts(generation: str) -> None:
    """Defaults, hard_sigmoid, return_state, dropout mask counts."""
    if generation == "tfkeras":
        import tf_keras as mod
        from tf_keras.src.layers.rnn import gru_v1
    else:
        import keras as mod

        gru_v1 = None
    g = mod.layers.GRU(4)
    cfg = g.get_config()
    _say(
        f"{generation} GRU defaults",
        json.dumps(
            {k: cfg.get(k) for k in ("activation", "recurrent_activation", "reset_after", "implementation", "use_bias")}
        ),
    )
    s = mod.layers.SimpleRNN(4).get_config()
    _say(f"{generation} SimpleRNN defaults", json.dumps({k: s.get(k) for k in ("activation", "use_bias")}))
    if gru_v1 is not None:
        v1 = gru_v1.GRU(4).get_config()
        _say(
            "tfkeras gru_v1.GRU defaults",
            json.dumps({k: v1.get(k) for k in ("activation", "recurrent_activation", "reset_after", "implementation")}),
        )
    for ra in (True, False):
        layer = mod.layers.GRU(4, reset_after=ra)
        layer.build((2, 5, 3))
        _say(f"{generation} GRU(reset_after={ra}) weight shapes", [list(w.shape) for w in layer.get_weights()])
    import tensorflow as tf

    hs = mod.activations.get("hard_sigmoid")
    xs = np.array([-3, -2.5, -1, 0, 1, 2.5, 3], dtype=np.float32)
    _say(f"{generation} hard_sigmoid({xs.tolist()})", np.asarray(hs(tf.constant(xs))).round(7).tolist())
    cell = mod.layers.GRUCell(4, dropout=0.5, recurrent_dropout=0.5)
    _say(f"{generation} GRUCell(recurrent_dropout>0).implementation", cell.implementation)
    x = tf.constant(np.ones((2, 5, 3), np.float32))
    for name, layer in (
        ("GRU", mod.layers.GRU(4, return_state=True)),
        ("SimpleRNN", mod.layers.SimpleRNN(4, return_state=True)),
        ("Bidirectional(GRU)", mod.layers.Bidirectional(mod.layers.GRU(4, return_state=True))),
        (
            "Bidirectional(SimpleRNN, merge_mode=None)",
            mod.layers.Bidirectional(mod.layers.SimpleRNN(4, return_state=True), merge_mode=None),
        ),
    ):
        out = layer(x)
        _say(f"{generation} {name} return_state", f"{type(out).__name__} of shapes {[list(o.shape) for o in out]}")
    nb = mod.layers.GRU(4, use_bias=False)
    nb.build((2, 5, 3))
    _say(f"{generation} GRU(use_bias=False) weight shapes", [list(w.shape) for w in nb.get_weights()])
    for impl in (1, 2):
        try:
            g = mod.layers.GRU(4, dropout=0.3, implementation=impl)
            g(x, training=True)
            _say(f"{generation} GRU(dropout=0.3, implementation={impl}) training=True", "runs")
        except Exception as e:  # noqa: BLE001 - recording what the framework raises
            _say(
                f"{generation} GRU(dropout=0.3, implementation={impl}) training=True",
                f"{type(e).__name__}: {str(e).splitlines()[0][:150]}",
            )
    sc = mod.layers.SimpleRNNCell(4, dropout=0.5, recurrent_dropout=0.5)
    sl = mod.layers.RNN(sc)
    sl(x, training=True)
    if generation == "tfkeras":
        m = sc.get_dropout_mask_for_cell(x[:, 0], True)
        _say("tfkeras SimpleRNNCell dropout mask", f"{type(m).__name__} {list(m.shape)}")
        fast = mod.layers.GRU(4, dropout=0.5)
        _say("tfkeras GRU(dropout) fast-path eligible (_could_use_gpu_kernel)", fast._could_use_gpu_kernel)
        fast(x, training=True)
        dm = fast.get_dropout_mask_for_cell(x, True, count=3)
        _say(
            "tfkeras GRU fast path: dropout masks drawn from the (B,T,F) input",
            f"{len(dm)} x {list(dm[0].shape)}; only [0] is applied",
        )


def run_tfkeras() -> None:
    _keras_facts("tfkeras")
    _keras_run("tfkeras")


def run_keras3() -> None:
    _keras_facts("keras3")
    _keras_run("keras3")


# =============================================================================================
# MindSpore 2.10
# =============================================================================================


def _ms_params(net: Any) -> Dict[str, np.ndarray]:
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def _ms_set(net: Any, rng: np.random.Generator, scale: float) -> Dict[str, np.ndarray]:
    import mindspore as ms

    for p in net.get_parameters():
        p.set_data(ms.Tensor((rng.uniform(-1, 1, size=p.shape) * scale).astype(np.float32)))
    return _ms_params(net)


def _ms_compare(
    kind: str, o_ms: Any, h_ms: Any, x: np.ndarray, params: Dict[str, np.ndarray], kw: Dict[str, Any]
) -> Dict[str, float]:
    fn = R.mindspore_gru if kind == "gru" else R.mindspore_rnn
    res = {}
    for numerics in ("exact", "mindspore-cpu"):
        o, h = fn(x, params, numerics=numerics, **kw)
        res[numerics] = max(_maxdiff(o_ms, o), _maxdiff(h_ms, h))
    return res


def run_mindspore() -> None:
    import mindspore as ms
    from mindspore import nn, ops

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    _say("mindspore version", ms.__version__)

    # --- 1. numerics: exact math vs the emulated CPU Sigmoid/Tanh, with and without seq_length -----------
    T, B, I, H = 6, 3, 5, 8
    worst = {}
    for kind, extra in (("gru", {}), ("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"})):
        for scale in (0.3, 1.0, 3.0):
            for nl, bi in ((1, False), (2, True)):
                rng = _rng(7)
                cls = nn.GRU if kind == "gru" else nn.RNN
                net = cls(I, H, nl, bidirectional=bi, **extra)
                params = _ms_set(net, rng, scale)
                x = rng.normal(size=(T, B, I)).astype(np.float32)
                kw = dict(num_layers=nl, bidirectional=bi, **({"nonlinearity": extra["nonlinearity"]} if extra else {}))
                o, h = net(ms.Tensor(x))
                d0 = _ms_compare(kind, o.asnumpy(), h.asnumpy(), x, params, kw)
                sl = np.array([6, 4, 1], dtype=np.int32)
                o2, h2 = net(ms.Tensor(x), None, ms.Tensor(sl))
                d1 = _ms_compare(kind, o2.asnumpy(), h2.asnumpy(), x, params, dict(kw, seq_length=sl))
                full = np.full(B, T, dtype=np.int32)
                o3, h3 = net(ms.Tensor(x), None, ms.Tensor(full))
                same = bool(np.array_equal(o3.asnumpy(), o.asnumpy()) and np.array_equal(h3.asnumpy(), h.asnumpy()))
                label = f"{kind}{'/' + extra['nonlinearity'] if extra else ''} scale={scale} L={nl} bi={bi}"
                _say(
                    f"MS {label} no seq_length: max|MS-exact|, max|MS-emulated| (max|output|)",
                    f"{d0['exact']:.3g}, {d0['mindspore-cpu']:.3g} ({float(np.max(np.abs(o.asnumpy()))):.3g})",
                )
                _say(
                    f"MS {label} seq_length=[6,4,1]: max|MS-exact|, max|MS-emulated|",
                    f"{d1['exact']:.3g}, {d1['mindspore-cpu']:.3g}",
                )
                _say(f"MS {label} seq_length=[T]*B bitwise equal to None", same)
                key = kind + ("/" + extra["nonlinearity"] if extra else "")
                w = worst.setdefault(key, [0.0, 0.0])
                w[0] = max(w[0], d0["exact"], d1["exact"])
                w[1] = max(w[1], d0["mindspore-cpu"], d1["mindspore-cpu"])
    for key, (e, m) in worst.items():
        _say(f"MS {key} worst over the grid: max|MS-exact|, max|MS-emulated|", f"{e:.3g}, {m:.3g}")

    # the MatMul summation order: MindSpore's MatMul(False, True) against the oracle's model of it
    for B2 in (1, 2, 3, 8):
        bad = []
        for K2 in (5, 8, 9, 12, 16, 17, 33, 64, 100):
            rng = _rng(K2)
            a = rng.normal(size=(B2, K2)).astype(np.float32)
            w = rng.uniform(-1.5, 1.5, size=(24, K2)).astype(np.float32)
            got = ops.MatMul(False, True)(ms.Tensor(a), ms.Tensor(w)).asnumpy()
            n_diff = int(np.sum(got != R.ms_cpu_matmul_nt(a, w)))
            n_numpy = int(np.sum(got != (a @ w.T)))
            bad.append(f"K={K2}: {n_diff}/{got.size} (numpy {n_numpy})")
        _say(f"MS MatMul(False, True) B={B2}: elements differing from oracle.ms_cpu_matmul_nt", "; ".join(bad))

    # single layers, weights x1.5: how the emulation drifts with the reduction length
    for I2, H2 in ((5, 8), (16, 8), (64, 8), (5, 64), (64, 64)):
        for kind in ("gru", "rnn"):
            rng = _rng(5)
            net = (nn.GRU if kind == "gru" else nn.RNN)(I2, H2)
            params = _ms_set(net, rng, 1.5)
            x = rng.normal(size=(4, 3, I2)).astype(np.float32)
            o, h = net(ms.Tensor(x))
            d = _ms_compare(kind, o.asnumpy(), h.asnumpy(), x, params, {})
            model_matmul = R._ms_matmul
            R._ms_matmul = lambda a, w: (a @ w.T).astype(a.dtype)  # NumPy's float32 GEMM instead
            try:
                d_np = _ms_compare(kind, o.asnumpy(), h.asnumpy(), x, params, {})
            finally:
                R._ms_matmul = model_matmul
            _say(
                f"MS {kind} I={I2} H={H2} weights x1.5: max|MS-exact|, max|MS-emulated|, "
                "max|MS-emulated with NumPy GEMM| (max|output|)",
                f"{d['exact']:.3g}, {d['mindspore-cpu']:.3g}, {d_np['mindspore-cpu']:.3g} "
                f"({float(np.max(np.abs(o.asnumpy()))):.8g})",
            )

    # the remaining differences are MatMul rounding only: with MindSpore's own MatMul in the emulation
    # the whole layer is bit-exact (also for long reductions, stacks, bidirectional, seq_length)
    mm = ops.MatMul(False, True)  # what rnn_cells.py calls: x @ W^T with W untransposed (another kernel than
    numpy_matmul = R._ms_matmul  # MatMul() on a transposed copy, which rounds differently)
    R._ms_matmul = lambda a, w: mm(
        ms.Tensor(np.ascontiguousarray(a, np.float32)), ms.Tensor(np.ascontiguousarray(w, np.float32))
    ).asnumpy()
    try:
        worst_own = 0.0
        n_cases = 0
        for I2, H2, nl, bi in ((64, 64, 1, False), (16, 32, 2, True), (5, 8, 2, True)):
            for kind, extra in (("gru", {}), ("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"})):
                rng = _rng(5)
                net = (nn.GRU if kind == "gru" else nn.RNN)(I2, H2, nl, bidirectional=bi, **extra)
                params = _ms_set(net, rng, 1.5)
                x = rng.normal(size=(6, 3, I2)).astype(np.float32)
                for sl in (None, np.array([6, 3, 1], np.int32)):
                    o, h = net(ms.Tensor(x), None, None if sl is None else ms.Tensor(sl))
                    fn = R.mindspore_gru if kind == "gru" else R.mindspore_rnn
                    ro, rh = fn(
                        x, params, num_layers=nl, bidirectional=bi, seq_length=sl, numerics="mindspore-cpu", **extra
                    )
                    worst_own = max(worst_own, _maxdiff(o.asnumpy(), ro), _maxdiff(h.asnumpy(), rh))
                    n_cases += 1
        _say(
            f"MS emulation with MindSpore's own MatMul, {n_cases} cases (I,H up to 64, weights x1.5, "
            "stacks, bi, seq_length): max|MS - emulated|",
            worst_own,
        )
    finally:
        R._ms_matmul = numpy_matmul

    # torch-style default init (uniform(+-1/sqrt(H))), longer sequence
    rng = _rng(11)
    for kind in ("gru", "rnn"):
        net = (nn.GRU if kind == "gru" else nn.RNN)(16, 32, 2, bidirectional=True)
        params = _ms_set(net, rng, 1 / np.sqrt(32))
        x = rng.normal(size=(50, 4, 16)).astype(np.float32)
        o, h = net(ms.Tensor(x))
        d = _ms_compare(kind, o.asnumpy(), h.asnumpy(), x, params, dict(num_layers=2, bidirectional=True))
        _say(
            f"MS {kind} default-scale init, T=50 H=32 2-layer bi: max|MS-exact|, max|MS-emulated|",
            f"{d['exact']:.3g}, {d['mindspore-cpu']:.3g}",
        )

    # --- 2. seq_length rule -------------------------------------------------------------------------------
    rng = _rng(3)
    net = nn.GRU(2, 3, 1, bidirectional=True)
    params = _ms_set(net, rng, 0.8)
    x = rng.normal(size=(4, 3, 2)).astype(np.float32)
    h0 = rng.normal(size=(2, 3, 3)).astype(np.float32)
    sl = np.array([4, 2, 0], dtype=np.int32)
    o, h = net(ms.Tensor(x), ms.Tensor(h0), ms.Tensor(sl))
    o, h = o.asnumpy(), h.asnumpy()
    _say(
        "MS GRU seq_length [4,2,0]: outputs after length all exactly 0",
        bool(np.all(o[2:, 1] == 0) and np.all(o[:, 2] == 0)),
    )
    _say("MS GRU seq_length 0: h_n == h0 (both directions)", bool(np.array_equal(h[:, 2], h0[:, 2])))
    ref_o, ref_h = R.mindspore_gru(x, params, bidirectional=True, hx=h0, seq_length=sl, numerics="mindspore-cpu")
    _say("MS GRU bi seq_length+hx vs oracle(mindspore-cpu): max diff", max(_maxdiff(o, ref_o), _maxdiff(h, ref_h)))
    flip_o, _ = R.mindspore_gru(x[::-1].copy(), params, bidirectional=True, hx=h0, numerics="mindspore-cpu")
    _say(
        "MS GRU bi seq_length reverse half vs full-flip model (row of length 2): max diff",
        _maxdiff(o[:2, 1, 3:], flip_o[::-1][:2, 1, 3:]),
    )
    for bad in ([5, 2, 1], [-1, 2, 1]):
        for bi in (False, True):
            try:
                n2 = nn.GRU(2, 3, 1, bidirectional=bi)
                out, hn = n2(ms.Tensor(x), None, ms.Tensor(np.array(bad, np.int32)))
                _say(f"MS GRU bi={bi} seq_length={bad}", f"accepted; output shape {out.shape}")
            except Exception as e:  # noqa: BLE001 - recording what MindSpore raises
                _say(f"MS GRU bi={bi} seq_length={bad}", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")

    # --- 3. hx and argument rules -------------------------------------------------------------------------
    net = nn.GRU(2, 3, 2)
    xs = ms.Tensor(np.ones((4, 3, 2), np.float32))
    probes = {
        "hx tuple": lambda: net(xs, (ms.Tensor(np.zeros((2, 3, 3), np.float32)),)),
        "hx (1,3,3) for 2 layers": lambda: net(xs, ms.Tensor(np.zeros((1, 3, 3), np.float32))),
        "hx float16": lambda: net(xs, ms.Tensor(np.zeros((2, 3, 3), np.float16))),
        "hx batch 1": lambda: net(xs, ms.Tensor(np.zeros((2, 1, 3), np.float32))),
        "x float64 without hx": lambda: net(ms.Tensor(np.ones((4, 3, 2)))),
        "RNN(nonlinearity='sigmoid')": lambda: nn.RNN(2, 3, nonlinearity="sigmoid"),
        "RNN(2, 3, 1, True, False, 0.0, False, 'relu') positional": lambda: nn.RNN(
            2, 3, 1, True, False, 0.0, False, "relu"
        ),
        "GRU dropout=0 (int)": lambda: nn.GRU(2, 3, dropout=0),
        "GRUCell 1-D x": lambda: nn.GRUCell(2, 3)(
            ms.Tensor(np.ones(2, np.float32)), ms.Tensor(np.zeros(3, np.float32))
        ),
        "GRUCell hx tuple": lambda: nn.GRUCell(2, 3)(
            ms.Tensor(np.ones((1, 2), np.float32)), (ms.Tensor(np.zeros((1, 3), np.float32)),)
        ),
    }
    for label, fn in probes.items():
        try:
            r = fn()
            if isinstance(r, tuple):
                desc = ", ".join(f"{t.shape} {t.dtype}" for t in r)
            else:
                desc = type(r).__name__
            _say(f"MS {label}", f"accepted -> {desc}")
        except Exception as e:  # noqa: BLE001
            _say(f"MS {label}", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    g = nn.GRU(5, 4, 2, bidirectional=True, has_bias=True)
    _say("MS GRU(5,4,2,bi) parameters", [(p.name, tuple(p.shape)) for p in g.get_parameters()])
    r = nn.RNN(5, 4)
    _say("MS RNN(5,4) parameters", [(p.name, tuple(p.shape)) for p in r.get_parameters()])
    gc = nn.GRUCell(5, 4)
    _say("MS GRUCell(5,4) parameters", [(p.name, tuple(p.shape)) for p in gc.get_parameters()])

    # --- 4. recorded cases ---------------------------------------------------------------------------------
    cases = [
        dict(
            name="ms_gru_2layer_bi_batch_first_seq_hx",
            cls="GRU",
            I=3,
            H=4,
            kw=dict(num_layers=2, bidirectional=True, batch_first=True),
            seq_length=[5, 3, 0],
            hx=True,
            scale=1.0,
        ),
        dict(name="ms_gru_plain_scale3", cls="GRU", I=3, H=4, kw=dict(num_layers=1), scale=3.0),
        dict(
            name="ms_rnn_tanh_bi_seq",
            cls="RNN",
            I=3,
            H=4,
            kw=dict(num_layers=1, bidirectional=True),
            seq_length=[5, 2, 4],
            hx=True,
            scale=2.0,
            nonlinearity="tanh",
        ),
        dict(
            name="ms_rnn_relu_2layer",
            cls="RNN",
            I=3,
            H=4,
            kw=dict(num_layers=2, has_bias=False),
            scale=1.0,
            nonlinearity="relu",
        ),
        dict(
            name="ms_gru_wide_bi_seq",
            cls="GRU",
            I=20,
            H=16,
            kw=dict(num_layers=1, bidirectional=True),
            seq_length=[5, 4, 2],
            scale=0.5,
        ),
    ]
    for idx, c in enumerate(cases):
        rng = _rng(300 + idx)
        extra = {"nonlinearity": c["nonlinearity"]} if "nonlinearity" in c else {}
        net = getattr(nn, c["cls"])(c["I"], c["H"], **c["kw"], **extra)
        params = _ms_set(net, rng, c["scale"])
        L = c["kw"].get("num_layers", 1)
        D = 2 if c["kw"].get("bidirectional") else 1
        Tn, Bn = 5, 3
        shape = (Bn, Tn, c["I"]) if c["kw"].get("batch_first") else (Tn, Bn, c["I"])
        x = rng.normal(size=shape).astype(np.float32)
        arrays: Dict[str, np.ndarray] = {"x": x}
        hx = None
        if c.get("hx"):
            arrays["hx"] = (rng.normal(size=(L * D, Bn, c["H"])) * 0.5).astype(np.float32)
            hx = ms.Tensor(arrays["hx"])
        sl = None
        if "seq_length" in c:
            arrays["seq_length"] = np.array(c["seq_length"], dtype=np.int32)
            sl = ms.Tensor(arrays["seq_length"])
        o, h = net(ms.Tensor(x), hx, sl)
        arrays["out:0"], arrays["out:1"] = o.asnumpy(), h.asnumpy()
        for k, v in params.items():
            arrays[f"param:{k}"] = v
        config = dict(cls=c["cls"], kw=dict(c["kw"], **extra), input_size=c["I"], hidden_size=c["H"])
        fn = R.mindspore_gru if c["cls"] == "GRU" else R.mindspore_rnn
        okw = {k: v for k, v in config["kw"].items() if k != "has_bias"}
        for numerics in ("exact", "mindspore-cpu"):
            ro, rh = fn(x, params, hx=arrays.get("hx"), seq_length=arrays.get("seq_length"), numerics=numerics, **okw)
            _say(f"{c['name']} max|MS - oracle {numerics}|", max(_maxdiff(o.asnumpy(), ro), _maxdiff(h.asnumpy(), rh)))
        _save(c["name"], arrays, config)

    # cells, unrolled over 5 steps
    for kind in ("GRUCell", "RNNCell"):
        rng = _rng(400 if kind == "GRUCell" else 401)
        cell = getattr(nn, kind)(3, 4)
        params = _ms_set(cell, rng, 2.0)
        xs_ = rng.normal(size=(5, 2, 3)).astype(np.float32)
        h = (rng.normal(size=(2, 4)) * 0.5).astype(np.float32)
        arrays = {"x": xs_, "hx": h}
        hs_ms, hs_em, hs_ex = [], [], []
        hm = ms.Tensor(h)
        he = h.astype(np.float64)
        hx_ = h.astype(np.float64)
        fn = R.mindspore_gru_cell if kind == "GRUCell" else R.mindspore_rnn_cell
        for t in range(5):
            hm = cell(ms.Tensor(xs_[t]), hm)
            hs_ms.append(hm.asnumpy())
            he = fn(xs_[t], he, params, numerics="mindspore-cpu")
            hx_ = fn(xs_[t], hx_, params)
            hs_em.append(he)
            hs_ex.append(hx_)
        arrays["out:0"] = np.stack(hs_ms)
        for k, v in params.items():
            arrays[f"param:{k}"] = v
        _say(
            f"ms_{kind.lower()} (5 steps, weights x2) max|MS - exact|, max|MS - emulated|",
            f"{_maxdiff(hs_ms, hs_ex):.3g}, {_maxdiff(hs_ms, hs_em):.3g}",
        )
        _save(f"ms_{kind.lower()}_unrolled", arrays, dict(cls=kind, kw={}, input_size=3, hidden_size=4))


def main(argv: List[str]) -> int:
    cmds = {"tfkeras": run_tfkeras, "keras3": run_keras3, "mindspore": run_mindspore}
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1 or args[0] not in cmds:
        print(f"usage: probe_family.py {{{'|'.join(cmds)}}} [--record]; received {argv}", file=sys.stderr)
        return 2
    if args[0] == "tfkeras" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        print("tfkeras needs TF_USE_LEGACY_KERAS=1 in the environment", file=sys.stderr)
        return 2
    cmds[args[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
