"""Golden parity: every case in ``tests/golden/`` (produced by the real tf_keras 2.21, Keras 3.15.1 and
MindSpore 2.10 on CPU, see ``tools/make_golden.py``) run through lstm_bridge's PUBLIC front ends only.

Tolerances (``|ours - theirs| <= tol * max(1, |theirs|)``, i.e. absolute for small values and relative
for large ones):

* forward outputs 1e-5, gradients 1e-4 (float32);
* MindSpore cases whose real kernel used MindSpore's approximate CPU Sigmoid/Tanh (``seq_length`` given,
  or ``LSTMCell``): ``MS_CPU_FORWARD_TOL`` / ``MS_CPU_GRAD_TOL`` with the default
  ``numerics="mindspore-cpu"`` (which emulates those activations), and 2e-4 with ``numerics="exact"``.

The runners here (:func:`run_keras_case`, :func:`run_mindspore_case`) are also used by
``tests/test_live.py`` and ``tools/parity_report.py``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import pytest
import torch

GOLDEN = Path(__file__).resolve().parent / "golden"
FLAVOURS = ("tf_keras", "keras3", "mindspore")

FORWARD_TOL = 1e-5
GRAD_TOL = 1e-4
MS_APPROX_TOL = 2e-4  # approximate-activation MindSpore cases under numerics="exact" (forward and gradients)
MS_CPU_FORWARD_TOL = 1e-6  # the same cases with the default numerics="mindspore-cpu"
MS_CPU_GRAD_TOL = 1e-5


# ------------------------------------------------------------------------------------------------
# Loading

@functools.lru_cache(maxsize=None)
def load_flavour(flavour: str, folder: str = str(GOLDEN)) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """``(meta, arrays)`` for one flavour: the parsed ``<flavour>.json`` and every array of its ``.npz``."""
    base = Path(folder)
    with open(base / f"{flavour}.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    with np.load(base / f"{flavour}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def _case_params() -> List[Any]:
    params = []
    for flavour in FLAVOURS:
        if not (GOLDEN / f"{flavour}.json").exists():
            params.append(pytest.param(flavour, None, id=f"{flavour}-MISSING"))
            continue
        meta, _ = load_flavour(flavour)
        for case in meta["cases"]:
            params.append(pytest.param(flavour, case["id"], id=f"{case['id']}-{case['family']}"))
    return params


def _case(flavour: str, case_id: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    if case_id is None:
        pytest.fail(f"tests/golden/{flavour}.json is missing: run `make golden`")
    meta, arrays = load_flavour(flavour)
    for case in meta["cases"]:
        if case["id"] == case_id:
            return case, arrays
    raise KeyError(case_id)


# ------------------------------------------------------------------------------------------------
# Our side, through the public front ends only

Result = Dict[str, Any]  # {"outputs": [np arrays], "grads": {golden key: np array} | None}


def _flatten(result: Any) -> List[torch.Tensor]:
    if isinstance(result, (list, tuple)):
        out: List[torch.Tensor] = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


def _keras_config(config: Mapping[str, Any], keras_version: int) -> Dict[str, Any]:
    """Constructor kwargs for our layer; Keras 3 activation names resolve the Keras 3 way."""
    from lstm_bridge import activations

    cfg = dict(config)
    if keras_version == 3:
        for key in ("activation", "recurrent_activation"):
            if isinstance(cfg.get(key), str):
                cfg[key] = activations.get(cfg[key], keras_version=3)
    return cfg


def _keras_layer(spec: Mapping[str, Any], keras_version: int) -> Any:
    from lstm_bridge import keras as kb

    cfg = _keras_config(spec["config"], keras_version)
    cls = spec["class"]
    if cls == "LSTM":
        return kb.LSTM(**cfg)
    if cls == "v1.LSTM":
        return kb.v1.LSTM(**cfg)
    if cls == "LSTMCell":
        return kb.LSTMCell(**cfg)
    if cls == "Bidirectional":
        kw: Dict[str, Any] = {"merge_mode": spec["merge_mode"]}
        if "backward_config" in spec:
            kw["backward_layer"] = kb.LSTM(**_keras_config(spec["backward_config"], keras_version))
        return kb.Bidirectional(kb.LSTM(**cfg), **kw)
    raise ValueError(f"unknown layer class {cls!r} in golden case")


def _project_and_grad(outs: List[torch.Tensor], proj: List[np.ndarray], wrt: List[torch.Tensor]) -> List[np.ndarray]:
    """Gradients of ``sum_k sum(proj_k * out_k)`` w.r.t. ``wrt`` (zeros where unused)."""
    if len(proj) != len(outs):
        raise AssertionError(f"{len(outs)} outputs but {len(proj)} projection weights")
    loss = sum((torch.from_numpy(w).to(o.dtype) * o).sum() for w, o in zip(proj, outs))
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [np.zeros(tuple(t.shape), np.float32) if g is None else g.detach().numpy() for g, t in zip(grads, wrt)]


def run_keras_case(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Result:
    """Run one Keras golden case through ``lstm_bridge.keras`` (schema: ``tools/golden_keras.py``)."""
    kv = case["keras_version"]
    want_grad = case.get("grad") is not None
    layers = [_keras_layer(spec, kv) for spec in case["layers"]]
    for layer, spec in zip(layers, case["layers"]):
        layer.set_weights([arrays[k] for k in spec["weights"]])
    x = torch.tensor(arrays[case["x"]], requires_grad=want_grad)
    states = [[torch.tensor(arrays[k], requires_grad=want_grad) for k in spec["initial_state"]]
              if spec["initial_state"] else None for spec in case["layers"]]
    if case["kind"] == "cell":
        cell = layers[0]
        st: Any = states[0]
        hs = []
        for t in range(x.shape[1]):
            h, st = cell(x[:, t], st, training=False)
            hs.append(h)
        outs = [torch.stack(hs, dim=1), st[0], st[1]]
    else:
        mask = torch.from_numpy(arrays[case["mask"]]) if case["mask"] else None
        y: Any = x
        for layer, st in zip(layers, states):
            kw: Dict[str, Any] = {"training": False}
            if mask is not None:
                kw["mask"] = mask
            if st is not None:
                kw["initial_state"] = st
            y = layer(y, **kw)
        outs = _flatten(y)
    result: Result = {"outputs": [o.detach().numpy() for o in outs], "grads": None}
    if want_grad and "proj" in case["grad"]:
        g = case["grad"]
        flat_states = [s for st in states if st for s in st]
        params = [p for layer in layers for p in layer.trainable_weights]
        keys = [g["x"]] + list(g["initial_state"]) + list(g["weights"])
        if len(flat_states) != len(g["initial_state"]) or len(params) != len(g["weights"]):
            raise AssertionError(f"{case['id']}: {len(flat_states)} states / {len(params)} trainable weights, golden "
                                 f"has {len(g['initial_state'])} / {len(g['weights'])}")
        grads = _project_and_grad(outs, [arrays[k] for k in g["proj"]], [x] + flat_states + params)
        result["grads"] = dict(zip(keys, grads))
    return result


def run_mindspore_case(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                       numerics: Optional[str] = None) -> Result:
    """Run one MindSpore golden case through ``lstm_bridge.mindspore`` (schema: ``tools/golden_ms.py``)."""
    from lstm_bridge import mindspore as msb

    cfg = dict(case["config"])
    if numerics is not None:
        cfg["numerics"] = numerics
    net = msb.LSTM(**cfg) if case["kind"] == "LSTM" else msb.LSTMCell(**cfg)
    net.load_state_dict({name: torch.from_numpy(arrays[key].copy()) for name, key in case["params"].items()})
    want_grad = case.get("grad") is not None
    x = torch.tensor(arrays[case["x"]], requires_grad=want_grad)
    hx = tuple(torch.tensor(arrays[k], requires_grad=want_grad) for k in case["hx"]) if case["hx"] else None
    if case["kind"] == "LSTMCell":
        h, c = hx
        hs = []
        for t in range(x.shape[0]):
            h, c = net(x[t], (h, c))
            hs.append(h)
        outs = [torch.stack(hs, dim=0), h, c]
    else:
        seq = torch.from_numpy(arrays[case["seq_length"]]) if case["seq_length"] else None
        out, (hn, cn) = net(x, hx, seq)
        outs = [out, hn, cn]
    result: Result = {"outputs": [o.detach().numpy() for o in outs], "grads": None}
    if want_grad and "proj" in case["grad"]:
        g = case["grad"]
        named = dict(net.named_parameters())
        names = list(g["params"])
        wrt = [x] + (list(hx) if hx else []) + [named[n] for n in names]
        keys = [g["x"]] + (list(g["hx"]) if hx else []) + [g["params"][n] for n in names]
        grads = _project_and_grad(outs, [arrays[k] for k in g["proj"]], wrt)
        result["grads"] = dict(zip(keys, grads))
    return result


def run_case(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray], numerics: Optional[str] = None) -> Result:
    """Dispatch on the case's flavour."""
    if case["flavour"] == "mindspore":
        return run_mindspore_case(case, arrays, numerics)
    return run_keras_case(case, arrays)


# ------------------------------------------------------------------------------------------------
# Comparison

def scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |a - e| / max(1, |e|)``; inf on a shape mismatch."""
    if tuple(actual.shape) != tuple(expected.shape):
        return float("inf")
    if actual.size == 0:
        return 0.0
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e) / np.maximum(1.0, np.abs(e))))


def compare(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray], got: Result) -> Dict[str, Any]:
    """Per-tensor scaled errors: ``{"forward": {key: err}, "grads": {key: err}, "max_forward", "max_grad"}``."""
    fwd: Dict[str, float] = {}
    expected_keys = case["outputs"]
    if len(got["outputs"]) != len(expected_keys):
        fwd["<number of outputs>"] = float("inf")
    for key, arr in zip(expected_keys, got["outputs"]):
        fwd[key] = scaled_error(arr, arrays[key])
    grads: Dict[str, float] = {}
    if got["grads"] is not None:
        for key, arr in got["grads"].items():
            grads[key] = scaled_error(arr, arrays[key])
    return {"forward": fwd, "grads": grads, "max_forward": max(fwd.values()) if fwd else 0.0,
            "max_grad": max(grads.values()) if grads else None}


def tolerances(case: Mapping[str, Any], numerics: Optional[str] = None) -> Tuple[float, float]:
    """``(forward, gradient)`` tolerance for a case under the given MindSpore numerics (None: the
    front end's default, ``"mindspore-cpu"``)."""
    if case["flavour"] == "mindspore" and case.get("approx_activations"):
        if numerics == "exact":
            return MS_APPROX_TOL, MS_APPROX_TOL
        return MS_CPU_FORWARD_TOL, MS_CPU_GRAD_TOL
    return FORWARD_TOL, GRAD_TOL


def _check(case: Mapping[str, Any], errors: Mapping[str, Any], tol_f: float, tol_g: float) -> None:
    bad = [f"output {k}: {v:.3g} > {tol_f:g}" for k, v in errors["forward"].items() if not v <= tol_f]
    bad += [f"gradient {k}: {v:.3g} > {tol_g:g}" for k, v in errors["grads"].items() if not v <= tol_g]
    if bad:
        desc = json.dumps({k: case[k] for k in ("family", "tags") if k in case})
        pytest.fail(f"{case['id']} {desc} differs from the real framework:\n  " + "\n  ".join(bad))


# ------------------------------------------------------------------------------------------------
# Tests

@pytest.mark.parametrize("flavour,case_id", _case_params())
def test_golden_case(flavour: str, case_id: Optional[str]) -> None:
    case, arrays = _case(flavour, case_id)
    got = run_case(case, arrays)
    errors = compare(case, arrays, got)
    if case.get("grad") is not None:
        assert got["grads"] is not None and errors["grads"], f"{case_id}: no gradients were compared"
    _check(case, errors, *tolerances(case))


def _fused_params() -> List[Any]:
    if not (GOLDEN / "mindspore.json").exists():
        return [pytest.param(None, id="mindspore-MISSING")]
    meta, _ = load_flavour("mindspore")
    return [pytest.param(c["id"], id=c["id"]) for c in meta["cases"] if c["family"] == "lstm/fused"]


@pytest.mark.parametrize("case_id", _fused_params())
def test_golden_mindspore_fused_path_is_bit_exact(case_id: Optional[str]) -> None:
    """MindSpore's CPU LSTM without seq_length is oneDNN's LSTM primitive; lstm_bridge.mindspore.LSTM
    routes it to oneDNN at every size (never to the native kernel), so the outputs match bit for bit."""
    case, arrays = _case("mindspore", case_id)
    errors = compare(case, arrays, run_case(case, arrays))
    assert all(v == 0.0 for v in errors["forward"].values()), (case_id, errors["forward"])


def _approx_params() -> List[Any]:
    if not (GOLDEN / "mindspore.json").exists():
        return [pytest.param(None, id="mindspore-MISSING")]
    meta, _ = load_flavour("mindspore")
    return [pytest.param(c["id"], id=f"{c['id']}-{c['family']}") for c in meta["cases"] if c["approx_activations"]]


@pytest.mark.parametrize("case_id", _approx_params())
def test_golden_mindspore_exact_numerics(case_id: Optional[str]) -> None:
    """MindSpore's seq_length path and LSTMCell with ``numerics="exact"`` (true sigmoid/tanh): within 2e-4."""
    case, arrays = _case("mindspore", case_id)
    got = run_mindspore_case(case, arrays, numerics="exact")
    _check(case, compare(case, arrays, got), *tolerances(case, "exact"))


def test_golden_inventory() -> None:
    """The golden set covers the matrix the issue asks for, with gradients and versions recorded."""
    total = grads = 0
    families = set()
    tags = set()
    for flavour in FLAVOURS:
        meta, arrays = load_flavour(flavour)
        assert meta["flavour"] == flavour
        assert meta["versions"], f"{flavour}: framework versions not recorded"
        cases = meta["cases"]
        assert meta["n_cases"] == len(cases)
        total += len(cases)
        grads += sum(1 for c in cases if c["grad"] is not None)
        families |= {f"{flavour}:{c['family']}" for c in cases}
        tags |= {f"{flavour}:{t}" for c in cases for t in c["tags"]}
        for c in cases:
            for key in c["outputs"]:
                assert arrays[key].dtype == np.float32, key
    assert meta_versions_ok()
    assert total >= 300, total
    assert grads * 3 >= total, (grads, total)
    for fam in ["tf_keras:lstm/matrix", "keras3:lstm/matrix", "tf_keras:lstm/time_major", "tf_keras:v1/defaults",
                "tf_keras:bidirectional/merge_modes", "keras3:bidirectional/merge_modes", "tf_keras:stacked",
                "keras3:stacked", "mindspore:lstm/fused", "mindspore:lstm/seq_length", "mindspore:cell",
                "mindspore:lstm/seq_length_zeros", "mindspore:lstm/seq_length_full"]:
        assert fam in families, fam
    for flavour in ("tf_keras", "keras3"):
        for mask in ("right", "left", "holes", "fully_masked_row", "mixed"):
            assert f"{flavour}:mask:{mask}" in tags, (flavour, mask)
        for mm in ("concat", "sum", "mul", "ave", "None"):
            assert f"{flavour}:merge_mode:{mm}" in tags, (flavour, mm)
        assert f"{flavour}:recurrent_activation:hard_sigmoid" in tags
    size = sum(p.stat().st_size for p in GOLDEN.iterdir() if p.is_file())
    assert size < 20 * 2**20, f"tests/golden is {size / 2**20:.1f} MiB; the budget is 20 MiB"


def meta_versions_ok() -> bool:
    """The pinned framework versions of issue 3 generated the files."""
    want = {"tf_keras": {"tensorflow": "2.21.0", "tf_keras": "2.21.0"},
            "keras3": {"tensorflow": "2.21.0", "keras": "3.15.1"},
            "mindspore": {"mindspore": "2.10.0"}}
    for flavour, pins in want.items():
        versions = load_flavour(flavour)[0]["versions"]
        for name, version in pins.items():
            assert versions.get(name) == version, (flavour, name, versions.get(name), version)
    return True
