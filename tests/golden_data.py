"""The one golden loader: read ``tests/golden/``, run a case through lstm_bridge's PUBLIC front ends,
compare with what the real framework computed.

Used by ``tests/test_golden.py`` (every stored case), ``tests/test_live.py`` (fresh random cases run
side by side with the real frameworks) and ``tools/parity_report.py`` (``docs/parity.md``). pytest puts
``tests/`` on ``sys.path`` (rootdir ``conftest.py``, prepend import mode), so tests ``import golden_data``;
the report adds ``tests/`` itself. The case schemas are those of the generator,
``tools/golden_keras.py`` and ``tools/golden_ms.py`` (:func:`generator_module` imports them); the recurrent
family's files (``family_<flavour>.*``, :func:`load_family`) those of ``tools/golden_family.py``; the whole
Keras models (``models/<flavour>.*``, :func:`load_models`, :func:`model_cases`) those of ``tools/golden_models.py``.

Tolerances (``|ours - theirs| <= tol * max(1, |theirs|)``, i.e. absolute for small values and relative
for large ones):

* forward outputs 1e-5, gradients 1e-4 (float32);
* MindSpore cases whose real kernel used MindSpore's approximate CPU Sigmoid/Tanh (``seq_length`` given,
  or ``LSTMCell``): ``MS_CPU_FORWARD_TOL`` / ``MS_CPU_GRAD_TOL`` with the default
  ``numerics="mindspore-cpu"`` (which emulates those activations), and 2e-4 with ``numerics="exact"``.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
TOOLS = ROOT / "tools"
FLAVOURS = ("tf_keras", "keras3", "mindspore")

FORWARD_TOL = 1e-5
GRAD_TOL = 1e-4
MS_APPROX_TOL = 2e-4  # approximate-activation MindSpore cases under numerics="exact" (forward and gradients)
MS_CPU_FORWARD_TOL = 1e-6  # the same cases with the default numerics="mindspore-cpu"
MS_CPU_GRAD_TOL = 1e-5

Case = Dict[str, Any]
Arrays = Dict[str, np.ndarray]
Result = Dict[str, Any]  # {"outputs": [np arrays], "grads": {golden key: np array} | None}


# ------------------------------------------------------------------------------------------------
# Loading


def available(flavour: str, folder: str = str(GOLDEN)) -> bool:
    """Whether ``<folder>/<flavour>.json`` exists (``make golden`` writes it)."""
    return (Path(folder) / f"{flavour}.json").exists()


@functools.cache
def load_flavour(flavour: str, folder: str = str(GOLDEN)) -> Tuple[Dict[str, Any], Arrays]:
    """``(meta, arrays)`` for one flavour: the parsed ``<flavour>.json`` and every array of its ``.npz``."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}; received {flavour!r}")
    base = Path(folder)
    with open(base / f"{flavour}.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    with np.load(base / f"{flavour}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def cases(flavour: str, family: Optional[str] = None) -> List[Case]:
    """The stored cases of ``flavour`` (only those of ``family`` when given)."""
    meta, _ = load_flavour(flavour)
    return [c for c in meta["cases"] if family is None or c["family"] == family]


def case(flavour: str, case_id: str) -> Tuple[Case, Arrays]:
    """``(case, arrays)`` for one stored case id."""
    meta, arrays = load_flavour(flavour)
    for c in meta["cases"]:
        if c["id"] == case_id:
            return c, arrays
    raise KeyError(f"{flavour} has no golden case {case_id!r}")


def generator_module(name: str) -> Any:
    """Import one of the generator's framework-free modules (``golden_common``, ``golden_keras``,
    ``golden_ms``) from ``tools/``."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module(name)


# ------------------------------------------------------------------------------------------------
# Our side, through the public front ends only


def _flatten(result: Any) -> List[torch.Tensor]:
    if isinstance(result, (list, tuple)):
        out: List[torch.Tensor] = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


def _keras_config(config: Mapping[str, Any], keras_version: int) -> Dict[str, Any]:
    """Constructor kwargs for our layer: the case's, plus the generation (``keras_version``) that
    decides what activation names mean and which rules apply (e.g. stateful + initial_state)."""
    cfg = dict(config)
    cfg["keras_version"] = keras_version
    return cfg


def _keras_layer(spec: Mapping[str, Any], keras_version: int) -> Any:
    from lstm_bridge import keras as kb

    cfg = _keras_config(spec["config"], keras_version)
    cls = spec["class"]
    if cls in FAMILY_KERAS_CLASSES:  # the recurrent family (tools/golden_family.py)
        return _family_keras_layer(kb, cls, spec, cfg, keras_version)
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
        if "wrapped" in spec:  # a family case: Bidirectional(GRU / v1.GRU / SimpleRNN)
            return kb.Bidirectional(_family_wrapped(kb, spec, keras_version), **kw)
        return kb.Bidirectional(kb.LSTM(**cfg), **kw)
    raise ValueError(f"unknown layer class {cls!r} in golden case")


def _project_and_grad(outs: List[torch.Tensor], proj: List[np.ndarray], wrt: List[torch.Tensor]) -> List[np.ndarray]:
    """Gradients of ``sum_k sum(proj_k * out_k)`` w.r.t. ``wrt`` (zeros where unused)."""
    if len(proj) != len(outs):
        raise AssertionError(f"{len(outs)} outputs but {len(proj)} projection weights")
    loss = sum((torch.from_numpy(w).to(o.dtype) * o).sum() for w, o in zip(proj, outs))
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [np.zeros(tuple(t.shape), np.float32) if g is None else g.detach().numpy() for g, t in zip(grads, wrt)]


def _run_keras_calls(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Result:
    """``kind == "calls"``: one layer called several times in a row (stateful rules); the outputs are,
    per call, the call's flattened result and then the layer's stored ``states``."""
    layer = _keras_layer(case["layers"][0], case["keras_version"])
    outs: List[torch.Tensor] = []
    with torch.no_grad():
        for i, call in enumerate(case["calls"]):
            if call.get("reset_states"):
                layer.reset_states()
            x = torch.from_numpy(arrays[call["x"]])
            if i == 0:
                layer.build(tuple(x.shape))
                layer.set_weights([arrays[k] for k in case["layers"][0]["weights"]])
            kw: Dict[str, Any] = {"training": False}
            if call.get("mask"):
                kw["mask"] = torch.from_numpy(arrays[call["mask"]])
            if call.get("initial_state"):
                kw["initial_state"] = [torch.from_numpy(arrays[k]) for k in call["initial_state"]]
            outs += _flatten(layer(x, **kw))
            outs += [s.clone() for s in layer.states]
    return {"outputs": [o.detach().numpy() for o in outs], "grads": None}


def run_keras_case(case: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Result:
    """Run one Keras golden case through ``lstm_bridge.keras`` (schema: ``tools/golden_keras.py``)."""
    if case["kind"] == "calls":
        return _run_keras_calls(case, arrays)
    kv = case["keras_version"]
    want_grad = case.get("grad") is not None
    layers = [_keras_layer(spec, kv) for spec in case["layers"]]
    for layer, spec in zip(layers, case["layers"]):
        layer.set_weights([arrays[k] for k in spec["weights"]])
    x = torch.tensor(arrays[case["x"]], requires_grad=want_grad)
    states = [
        [torch.tensor(arrays[k], requires_grad=want_grad) for k in spec["initial_state"]]
        if spec["initial_state"]
        else None
        for spec in case["layers"]
    ]
    if case["kind"] == "cell":
        cell = layers[0]
        st: Any = states[0]
        hs = []
        for t in range(x.shape[1]):
            h, st = cell(x[:, t], st, training=False)
            hs.append(h)
        outs = [torch.stack(hs, dim=1), *st]  # LSTMCell: h_T, c_T; GRUCell / SimpleRNNCell: h_T
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
            raise AssertionError(
                f"{case['id']}: {len(flat_states)} states / {len(params)} trainable weights, golden "
                f"has {len(g['initial_state'])} / {len(g['weights'])}"
            )
        grads = _project_and_grad(outs, [arrays[k] for k in g["proj"]], [x] + flat_states + params)
        result["grads"] = dict(zip(keys, grads))
    return result


def run_mindspore_case(
    case: Mapping[str, Any], arrays: Mapping[str, np.ndarray], numerics: Optional[str] = None
) -> Result:
    """Run one MindSpore golden case through ``lstm_bridge.mindspore`` (schema: ``tools/golden_ms.py``;
    family cases: ``tools/golden_family.py``)."""
    if case["kind"] in FAMILY_MS_KINDS:
        return run_family_mindspore_case(case, arrays, numerics)
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
# The recurrent family (issue 11): tests/golden/family_<flavour>.{json,npz}, written by
# tools/golden_family.py (schemas at its top). Keras family cases run through run_keras_case (the
# classes below), MindSpore ones through run_family_mindspore_case; the tolerances are those above.

FAMILY_KERAS_CLASSES = ("GRU", "v1.GRU", "SimpleRNN", "GRUCell", "SimpleRNNCell")
FAMILY_MS_KINDS = ("GRU", "RNN", "GRUCell", "RNNCell")


def family_available(flavour: str, folder: str = str(GOLDEN)) -> bool:
    """Whether ``<folder>/family_<flavour>.json`` exists (``make golden-family`` writes it)."""
    return (Path(folder) / f"family_{flavour}.json").exists()


@functools.cache
def load_family(flavour: str, folder: str = str(GOLDEN)) -> Tuple[Dict[str, Any], Arrays]:
    """``(meta, arrays)`` of ``family_<flavour>.json`` / ``.npz``."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}; received {flavour!r}")
    base = Path(folder)
    with open(base / f"family_{flavour}.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    with np.load(base / f"family_{flavour}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def family_cases(flavour: str, family: Optional[str] = None) -> List[Case]:
    """The stored family cases of ``flavour`` (only those whose family starts with ``family`` when given,
    e.g. ``"gru"`` or ``"bidirectional/simple_rnn"``)."""
    meta, _ = load_family(flavour)
    return [c for c in meta["cases"] if family is None or c["family"].startswith(family)]


def family_case(flavour: str, case_id: str) -> Tuple[Case, Arrays]:
    """``(case, arrays)`` for one stored family case id."""
    meta, arrays = load_family(flavour)
    for c in meta["cases"]:
        if c["id"] == case_id:
            return c, arrays
    raise KeyError(f"family_{flavour} has no golden case {case_id!r}")


def _family_keras_layer(kb: Any, cls: str, spec: Mapping[str, Any], cfg: Dict[str, Any], keras_version: int) -> Any:
    if cls == "v1.GRU":
        return kb.v1.GRU(**cfg)
    return getattr(kb, cls)(**cfg)


def _family_wrapped(kb: Any, spec: Mapping[str, Any], keras_version: int) -> Any:
    """The layer a family ``Bidirectional`` spec wraps (``spec["wrapped"]``: GRU, v1.GRU or SimpleRNN)."""
    return _family_keras_layer(kb, spec["wrapped"], spec, _keras_config(spec["config"], keras_version), keras_version)


def run_family_mindspore_case(
    case: Mapping[str, Any], arrays: Mapping[str, np.ndarray], numerics: Optional[str] = None
) -> Result:
    """Run one MindSpore family case (``GRU``, ``RNN``, ``GRUCell``, ``RNNCell``) through
    ``lstm_bridge.mindspore``: ``output, h_n = net(x, hx, seq_length)`` (hx ONE tensor); cells
    ``h = cell(x[t], h)`` for every step, outputs ``[stack(h_t), h_T]``."""
    from lstm_bridge import mindspore as msb

    cfg = dict(case["config"])
    if numerics is not None:
        cfg["numerics"] = numerics
    net = getattr(msb, case["kind"])(**cfg)
    net.load_state_dict({name: torch.from_numpy(arrays[key].copy()) for name, key in case["params"].items()})
    want_grad = case.get("grad") is not None
    x = torch.tensor(arrays[case["x"]], requires_grad=want_grad)
    hx = torch.tensor(arrays[case["hx"]], requires_grad=want_grad) if case["hx"] else None
    if case["kind"].endswith("Cell"):
        h = hx
        hs = []
        for t in range(x.shape[0]):
            h = net(x[t], h)
            hs.append(h)
        outs = [torch.stack(hs, dim=0), h]
    else:
        seq = torch.from_numpy(arrays[case["seq_length"]]) if case["seq_length"] else None
        out, hn = net(x, hx, seq)
        outs = [out, hn]
    result: Result = {"outputs": [o.detach().numpy() for o in outs], "grads": None}
    if want_grad and "proj" in case["grad"]:
        g = case["grad"]
        named = dict(net.named_parameters())
        names = list(g["params"])
        wrt = [x] + ([hx] if hx is not None else []) + [named[n] for n in names]
        keys = [g["x"]] + ([g["hx"]] if hx is not None else []) + [g["params"][n] for n in names]
        grads = _project_and_grad(outs, [arrays[k] for k in g["proj"]], wrt)
        result["grads"] = dict(zip(keys, grads))
    return result


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
    return {
        "forward": fwd,
        "grads": grads,
        "max_forward": max(fwd.values()) if fwd else 0.0,
        "max_grad": max(grads.values()) if grads else None,
    }


def tolerances(case: Mapping[str, Any], numerics: Optional[str] = None) -> Tuple[float, float]:
    """``(forward, gradient)`` tolerance for a case under the given MindSpore numerics (None: the
    front end's default, ``"mindspore-cpu"``)."""
    if case["flavour"] == "mindspore" and case.get("approx_activations"):
        if numerics == "exact":
            return MS_APPROX_TOL, MS_APPROX_TOL
        return MS_CPU_FORWARD_TOL, MS_CPU_GRAD_TOL
    return FORWARD_TOL, GRAD_TOL


def over_tolerance(case: Mapping[str, Any], errors: Mapping[str, Any], tol_f: float, tol_g: float) -> List[str]:
    """One line per output or gradient whose error exceeds its tolerance (empty: the case passes)."""
    bad = [f"output {k}: {v:.3g} > {tol_f:g}" for k, v in errors["forward"].items() if not v <= tol_f]
    bad += [f"gradient {k}: {v:.3g} > {tol_g:g}" for k, v in errors["grads"].items() if not v <= tol_g]
    return bad


def check(case: Mapping[str, Any], errors: Mapping[str, Any], tol_f: float, tol_g: float) -> None:
    """Raise AssertionError naming the case and every tensor over tolerance."""
    bad = over_tolerance(case, errors, tol_f, tol_g)
    if bad:
        desc = json.dumps({k: case[k] for k in ("family", "tags") if k in case})
        raise AssertionError(f"{case['id']} {desc} differs from the real framework:\n  " + "\n  ".join(bad))


# ------------------------------------------------------------------------------------------------
# Whole Keras models (issue 13 item 6): tests/golden/models/, written by tools/golden_models.py (schema
# at its top): real tf_keras / Keras 3 model files (.keras, .h5), padded input batches, Keras's predictions
# and every top-level layer's outputs. Tolerance: |ours - Keras| <= MODEL_TOL * (1 + |Keras|).

MODELS_DIR = GOLDEN / "models"
MODEL_FLAVOURS = ("tf_keras", "keras3")
MODEL_TOL = 1e-5


def models_available(flavour: str, folder: str = str(MODELS_DIR)) -> bool:
    """Whether ``<folder>/<flavour>.json`` exists (``make golden-models`` writes it)."""
    return (Path(folder) / f"{flavour}.json").exists()


@functools.cache
def load_models(flavour: str, folder: str = str(MODELS_DIR)) -> Tuple[Dict[str, Any], Arrays]:
    """``(index, arrays)`` of ``models/<flavour>.json`` / ``.npz``."""
    if flavour not in MODEL_FLAVOURS:
        raise ValueError(f"flavour must be one of {MODEL_FLAVOURS}; received {flavour!r}")
    base = Path(folder)
    with open(base / f"{flavour}.json", encoding="utf-8") as fh:
        meta = json.load(fh)
    with np.load(base / f"{flavour}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def model_cases(flavour: Optional[str] = None) -> List[Tuple[str, str, str]]:
    """``[(flavour, model id, file format)]`` for every stored model file (``format`` is ``"keras"`` or
    ``"h5"``), for ``pytest.mark.parametrize``."""
    out = []
    for fl in MODEL_FLAVOURS if flavour is None else (flavour,):
        if not models_available(fl):
            continue
        meta, _ = load_models(fl)
        for entry in meta["models"]:
            out.extend((fl, entry["id"], fmt) for fmt in sorted(entry["files"]))
    return out


def model_entry(flavour: str, model_id: str) -> Tuple[Case, Arrays]:
    """``(index entry, arrays)`` of one stored model."""
    meta, arrays = load_models(flavour)
    for entry in meta["models"]:
        if entry["id"] == model_id:
            return entry, arrays
    raise KeyError(f"models/{flavour} has no golden model {model_id!r}")


def model_path(flavour: str, model_id: str, fmt: str) -> Path:
    """The stored model file (``fmt`` ``"keras"`` or ``"h5"``)."""
    entry, _ = model_entry(flavour, model_id)
    if fmt not in entry["files"]:
        raise KeyError(f"models/{flavour}/{model_id} has no {fmt!r} file")
    return MODELS_DIR / entry["files"][fmt]


def model_inputs(entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> List[torch.Tensor]:
    """The padded input batches, in Keras's input order (int32 token ids, float32 features)."""
    return [torch.from_numpy(arrays[spec["key"]].copy()) for spec in entry["inputs"]]


def run_model(module: Any, entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> List[np.ndarray]:
    """``module(*inputs)`` under ``torch.no_grad()``, flattened in Keras's output order, as NumPy."""
    with torch.no_grad():
        result = module(*model_inputs(entry, arrays))
    return [o.detach().numpy() for o in _flatten(result)]


def model_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """``max |a - e| / (1 + |e|)`` (within ``MODEL_TOL``: ``|a - e| <= tol + tol * |e|``); inf on a shape
    mismatch."""
    if tuple(actual.shape) != tuple(expected.shape):
        return float("inf")
    if actual.size == 0:
        return 0.0
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    return float(np.max(np.abs(a - e) / (1.0 + np.abs(e))))


def check_model_outputs(
    got: List[np.ndarray], entry: Mapping[str, Any], arrays: Mapping[str, np.ndarray], what: str
) -> float:
    """Assert that ``got`` reproduces Keras's predictions within ``MODEL_TOL``; returns the largest error."""
    keys = entry["outputs"]
    if len(got) != len(keys):
        raise AssertionError(f"{what}: {len(got)} outputs; Keras returns {len(keys)}")
    errs = {k: model_error(g, arrays[k]) for k, g in zip(keys, got)}
    bad = {k: v for k, v in errs.items() if not v <= MODEL_TOL}
    if bad:
        shapes = {k: (tuple(g.shape), tuple(arrays[k].shape)) for k, g in zip(keys, got)}
        raise AssertionError(f"{what}: differs from Keras (error, tolerance {MODEL_TOL:g}): {bad}; shapes {shapes}")
    return max(errs.values())
