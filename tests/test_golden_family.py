"""Golden cases of the recurrent family (issue 11): ``tests/golden/family_<flavour>.{json,npz}``, produced by
real tf_keras 2.21, Keras 3.15.1 and MindSpore 2.10 on the CPU (``tools/golden_family.py``,
``make golden-family``).

Two tiers:

* **Oracle** (runs today): every case through the float64 NumPy oracle (``tests/oracle.py``, written from
  the specs): Keras forward within 1e-5 (``|oracle - framework| <= tol * max(1, |framework|)``); MindSpore
  forward within 1e-6 with the oracle's emulated CPU numerics (``numerics="mindspore-cpu"``) and within
  2e-4 with exact math for ordinary weights. Gradients: the framework's stored gradient of each tensor,
  dotted with a random direction, against a central finite difference of the float64 oracle's loss along
  that direction (one directional derivative per tensor: x, every initial state, every weight).
* **Front end** (skipped until ``lstm_bridge.keras`` has ``GRU``/``SimpleRNN``/... and
  ``lstm_bridge.mindspore`` has ``GRU``/``RNN``/...): every case through the public front ends with
  ``tests/golden_data.py`` and its tolerances, forward and gradients; one test per family.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pytest

import golden_data as gd
import oracle as R

FLAVOURS = gd.FLAVOURS
KERAS_FORWARD_TOL = 1e-5
MS_EMULATED_TOL = gd.MS_CPU_FORWARD_TOL  # 1e-6
MS_EXACT_TOL = gd.MS_APPROX_TOL  # 2e-4, ordinary weights
# Directional finite differences (see directional_errors); measured maxima 2026-11-27: Keras 1.7e-7,
# MindSpore 7.6e-7 (ordinary weights) and 1.2e-4 (weights x3, where MindSpore differentiates its
# approximate Sigmoid/Tanh while the oracle differentiates exact math). A 0.1 % error in one gradient
# tensor gives about 3e-5.
KERAS_FD_TOL = 1e-5
MS_FD_TOL = 1e-5
MS_FD_TOL_LARGE = 1e-3
NPZ_LIMIT = int(1.5 * 1024 * 1024)

Arrays = Mapping[str, np.ndarray]
Case = Dict[str, Any]


def _params(select: Optional[Callable[[Case], bool]] = None, flavours: Sequence[str] = FLAVOURS) -> List[Any]:
    out = []
    for flavour in flavours:
        if not gd.family_available(flavour):
            out.append(pytest.param(flavour, None, id=f"family_{flavour}-MISSING"))
            continue
        for c in gd.family_cases(flavour):
            if select is None or select(c):
                out.append(pytest.param(flavour, c["id"], id=f"{c['id']}-{c['family']}"))
    return out


def _case(flavour: str, case_id: Optional[str]) -> Tuple[Case, Arrays]:
    if case_id is None:
        pytest.fail(f"tests/golden/family_{flavour}.json is missing: run `make golden-family`")
    return gd.family_case(flavour, case_id)


# ------------------------------------------------------------------------------------------------
# The oracle side: a case -> its outputs, from the float64 reference, with the arrays looked up through
# ``get`` (so that the finite differences can perturb any input).

Getter = Callable[[str], np.ndarray]


def _act(name: Optional[str], keras_version: int) -> Optional[str]:
    """The oracle name of a Keras activation name in the given generation (Keras 3's hard_sigmoid differs)."""
    if name == "hard_sigmoid" and keras_version == 3:
        return "hard_sigmoid_keras3"
    return name


def _keras_kwargs(cls: str, cfg: Mapping[str, Any], kv: int) -> Dict[str, Any]:
    """The oracle keyword arguments of a GRU / v1.GRU / SimpleRNN config with the class's defaults."""
    if cls.startswith("SimpleRNN"):
        return {"activation": _act(cfg.get("activation", "tanh"), kv)}
    v1 = cls == "v1.GRU"
    return {
        "activation": _act(cfg.get("activation", "tanh"), kv),
        "recurrent_activation": _act(cfg.get("recurrent_activation", "hard_sigmoid" if v1 else "sigmoid"), kv),
        "reset_after": cfg.get("reset_after", not v1),
    }


def _split(keys: Sequence[str], get: Getter) -> List[Optional[np.ndarray]]:
    w: List[Optional[np.ndarray]] = [get(k) for k in keys]
    return w if len(w) == 3 else w + [None]


def _keras_layer(
    spec: Mapping[str, Any],
    x: np.ndarray,
    mask: Optional[np.ndarray],
    init: Optional[List[np.ndarray]],
    kv: int,
    get: Getter,
    time_major: bool,
) -> List[np.ndarray]:
    cfg = spec["config"]
    common = dict(
        return_sequences=cfg.get("return_sequences", False),
        return_state=cfg.get("return_state", False),
        mask=mask,
        time_major=time_major,
    )
    if spec["class"] == "Bidirectional":
        base = spec["wrapped"]
        n = len(spec["weights"]) // 2
        out = R.keras_bidirectional_family(
            "simple_rnn" if base == "SimpleRNN" else "gru",
            x,
            _split(spec["weights"][:n], get),
            _split(spec["weights"][n:], get),
            merge_mode=spec["merge_mode"],
            initial_state=init,
            **common,
            **_keras_kwargs(base, cfg, kv),
        )
    else:
        fn = R.keras_simple_rnn if spec["class"] == "SimpleRNN" else R.keras_gru
        k, r, b = _split(spec["weights"], get)
        out = fn(
            x,
            k,
            r,
            b,
            initial_state=init,
            go_backwards=cfg.get("go_backwards", False),
            zero_output_for_mask=cfg.get("zero_output_for_mask", False),
            **common,
            **_keras_kwargs(spec["class"], cfg, kv),
        )
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def _keras_oracle(case: Case, get: Getter) -> List[np.ndarray]:
    kv = case["keras_version"]
    if case["kind"] == "calls":
        return _keras_calls_oracle(case, get)
    x = get(case["x"])
    if case["kind"] == "cell":
        spec = case["layers"][0]
        k, r, b = _split(spec["weights"], get)
        h = get(spec["initial_state"][0])
        hs = []
        for t in range(x.shape[1]):
            if spec["class"] == "GRUCell":
                h = R.keras_gru_cell(x[:, t], h, k, r, b, **_keras_kwargs("GRU", spec["config"], kv))
            else:
                h = R.keras_simple_rnn_cell(x[:, t], h, k, r, b, **_keras_kwargs("SimpleRNN", spec["config"], kv))
            hs.append(h)
        return [np.stack(hs, axis=1), h]
    mask = get(case["mask"]) if case["mask"] else None
    y: List[np.ndarray] = [x]
    for spec in case["layers"]:
        init = [get(k) for k in spec["initial_state"]] if spec["initial_state"] else None
        y = _keras_layer(spec, y[0], mask, init, kv, get, spec["config"].get("time_major", False))
    return y


def _keras_calls_oracle(case: Case, get: Getter) -> List[np.ndarray]:
    """A stateful layer called in a row: each call starts from the stored state; ``initial_state``
    overrides it always in Keras 3, in tf_keras only while the stored state is all zeros."""
    spec = case["layers"][0]
    kv = case["keras_version"]
    u = spec["config"]["units"]
    stored: Optional[np.ndarray] = None
    outs: List[np.ndarray] = []
    for call in case["calls"]:
        x = get(call["x"])
        if stored is None or call["reset_states"]:
            stored = np.zeros((x.shape[0], u))
        h0 = stored
        if call["initial_state"] and (kv == 3 or not np.any(stored)):
            h0 = get(call["initial_state"][0])
        cfg = dict(spec["config"], return_state=True)
        res = _keras_layer(
            {**spec, "config": cfg}, x, get(call["mask"]) if call["mask"] else None, [h0], kv, get, False
        )
        stored = res[-1]
        outs += (res if spec["config"].get("return_state") else res[:-1]) + [stored]
    return outs


def _ms_oracle(case: Case, get: Getter, numerics: str) -> List[np.ndarray]:
    cfg = case["config"]
    params = {name: get(key) for name, key in case["params"].items()}
    x = get(case["x"])
    hx = get(case["hx"]) if case["hx"] else None
    if case["kind"].endswith("Cell"):
        h = hx
        hs = []
        for t in range(x.shape[0]):
            if case["kind"] == "GRUCell":
                h = R.mindspore_gru_cell(x[t], h, params, numerics=numerics)
            else:
                h = R.mindspore_rnn_cell(x[t], h, params, nonlinearity=cfg["nonlinearity"], numerics=numerics)
            hs.append(h)
        return [np.stack(hs, axis=0), h]
    kw = dict(
        num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"],
        batch_first=cfg["batch_first"],
        hx=hx,
        seq_length=get(case["seq_length"]) if case["seq_length"] else None,
        numerics=numerics,
    )
    if case["kind"] == "GRU":
        return list(R.mindspore_gru(x, params, **kw))
    return list(R.mindspore_rnn(x, params, nonlinearity=cfg["nonlinearity"], **kw))


def oracle_outputs(
    case: Case, arrays: Arrays, numerics: str = "exact", overrides: Optional[Mapping[str, np.ndarray]] = None
) -> List[np.ndarray]:
    """The oracle's outputs of a family case, in the order of ``case["outputs"]``; ``overrides`` replaces
    stored inputs by key (float64)."""
    over = overrides or {}

    def get(key: str) -> np.ndarray:
        if key in over:
            return over[key]
        a = arrays[key]
        return a.astype(np.float64) if a.dtype == np.float32 else a

    if case["flavour"] == "mindspore":
        return _ms_oracle(case, get, numerics)
    return _keras_oracle(case, get)


def _errors(case: Case, arrays: Arrays, got: List[np.ndarray]) -> Dict[str, float]:
    assert len(got) == len(case["outputs"]), (
        f"{case['id']}: oracle gives {len(got)} outputs, golden has {len(case['outputs'])}"
    )
    return {k: gd.scaled_error(np.asarray(g), arrays[k]) for k, g in zip(case["outputs"], got)}


def _grad_pairs(case: Case) -> List[Tuple[str, str]]:
    """(input key, stored gradient key) for every differentiated tensor of a case."""
    g = case["grad"]
    if case["flavour"] == "mindspore":
        pairs = [(case["x"], g["x"])] + ([(case["hx"], g["hx"])] if case["hx"] else [])
        return pairs + [(case["params"][n], k) for n, k in g["params"].items()]
    states = [k for spec in case["layers"] if spec["initial_state"] for k in spec["initial_state"]]
    weights = [k for spec in case["layers"] for k in spec["weights"]]
    return [(case["x"], g["x"])] + list(zip(states, g["initial_state"])) + list(zip(weights, g["weights"]))


# ------------------------------------------------------------------------------------------------
# The files


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_family_file_counts_and_sizes(flavour: str) -> None:
    """Each flavour's family file exists, is small, lists what it says, and carries gradients for at least a third."""
    if not gd.family_available(flavour):
        pytest.fail(f"tests/golden/family_{flavour}.json is missing: run `make golden-family`")
    meta, arrays = gd.load_family(flavour)
    assert meta["flavour"] == flavour and meta["generator"] == "tools/golden_family.py"
    assert meta["n_cases"] == len(meta["cases"]) >= 80
    n_grad = sum(1 for c in meta["cases"] if c["grad"] is not None)
    assert meta["n_grad_cases"] == n_grad and 3 * n_grad >= len(meta["cases"]), (n_grad, len(meta["cases"]))
    assert (gd.GOLDEN / f"family_{flavour}.npz").stat().st_size < NPZ_LIMIT
    for c in meta["cases"]:
        for key in c["outputs"]:
            assert arrays[key].dtype == np.float32, key


def test_family_total_cases() -> None:
    """At least 250 family cases in all, at least a third with gradients (issue 11)."""
    metas = [gd.load_family(f)[0] for f in FLAVOURS if gd.family_available(f)]
    assert len(metas) == len(FLAVOURS), "a family golden file is missing: run `make golden-family`"
    total = sum(m["n_cases"] for m in metas)
    grads = sum(m["n_grad_cases"] for m in metas)
    assert total >= 250 and 3 * grads >= total, (total, grads)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_family_inputs_are_the_generators(flavour: str) -> None:
    """The stored cases are exactly what tools/golden_family.py builds (descriptions, inputs, weights)."""
    if not gd.family_available(flavour):
        pytest.fail(f"tests/golden/family_{flavour}.json is missing: run `make golden-family`")
    gen = gd.generator_module("golden_family")
    built = gen.build_ms_cases() if flavour == "mindspore" else gen.build_keras_cases(flavour)
    meta, arrays = gd.load_family(flavour)
    assert [c["id"] for c, _ in built] == [c["id"] for c in meta["cases"]]
    for (want, want_arrays), got in zip(built, meta["cases"]):
        for field in want:
            if field not in ("outputs", "grad"):
                assert got[field] == want[field], (got["id"], field)
        for key, value in want_arrays.items():
            assert np.array_equal(arrays[key], value), key


# ------------------------------------------------------------------------------------------------
# The oracle tier


@pytest.mark.parametrize("flavour,case_id", _params(flavours=("tf_keras", "keras3")))
def test_family_keras_oracle_forward(flavour: str, case_id: Optional[str]) -> None:
    """The float64 oracle reproduces every Keras family case within 1e-5."""
    case, arrays = _case(flavour, case_id)
    errs = _errors(case, arrays, oracle_outputs(case, arrays))
    bad = {k: v for k, v in errs.items() if not v <= KERAS_FORWARD_TOL}
    assert not bad, f"{case_id} {case['family']} {case['tags']}: oracle vs framework {bad}"


@pytest.mark.parametrize("flavour,case_id", _params(flavours=("mindspore",)))
def test_family_mindspore_oracle_forward(flavour: str, case_id: Optional[str]) -> None:
    """The oracle with MindSpore's emulated CPU numerics reproduces every case within 1e-6; exact math
    within 2e-4 for ordinary weights (the large-weight cases are where exact math drifts further)."""
    case, arrays = _case(flavour, case_id)
    emulated = _errors(case, arrays, oracle_outputs(case, arrays, "mindspore-cpu"))
    bad = {k: v for k, v in emulated.items() if not v <= MS_EMULATED_TOL}
    assert not bad, f"{case_id} {case['family']} {case['tags']}: emulated oracle vs MindSpore {bad}"
    if "large_weights" not in case["tags"]:
        exact = _errors(case, arrays, oracle_outputs(case, arrays, "exact"))
        bad = {k: v for k, v in exact.items() if not v <= MS_EXACT_TOL}
        assert not bad, f"{case_id} {case['family']} {case['tags']}: exact oracle vs MindSpore {bad}"


def directional_errors(case: Case, arrays: Arrays, eps: float = 1e-6) -> Dict[str, float]:
    """Per gradient tensor: ``|<g, d> - FD_d(loss)| / sum(max(1, |g|) * |d|)`` for a random direction d,
    with the loss ``sum_k sum(proj_k * out_k)`` of the float64 oracle (exact numerics) and a central
    difference of step ``eps``. The normalisation makes it comparable with the elementwise gradient
    tolerance of tests/golden_data.py."""
    proj = [arrays[k].astype(np.float64) for k in case["grad"]["proj"]]

    def loss(overrides: Dict[str, np.ndarray]) -> float:
        outs = oracle_outputs(case, arrays, "exact", overrides)
        return float(sum(np.sum(w * o) for w, o in zip(proj, outs)))

    rng = np.random.RandomState(zlib.crc32(case["id"].encode()) & 0x7FFFFFFF)
    errs: Dict[str, float] = {}
    for src, gkey in _grad_pairs(case):
        base = arrays[src].astype(np.float64)
        g = arrays[gkey].astype(np.float64)
        assert g.shape == base.shape, f"{gkey}: gradient shape {g.shape}, input shape {base.shape}"
        d = rng.standard_normal(base.shape)
        fd = (loss({src: base + eps * d}) - loss({src: base - eps * d})) / (2 * eps)
        errs[gkey] = abs(fd - float(np.sum(g * d))) / max(float(np.sum(np.maximum(1.0, np.abs(g)) * np.abs(d))), 1e-30)
    return errs


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: c["grad"] is not None))
def test_family_gradients_match_oracle_finite_differences(flavour: str, case_id: Optional[str]) -> None:
    """Every stored gradient (x, initial states, every weight) agrees with the float64 oracle's
    directional finite difference."""
    case, arrays = _case(flavour, case_id)
    tol = KERAS_FD_TOL
    if flavour == "mindspore":
        tol = MS_FD_TOL_LARGE if "large_weights" in case["tags"] else MS_FD_TOL
    errs = directional_errors(case, arrays)
    bad = {k: v for k, v in errs.items() if not v <= tol}
    assert not bad, f"{case_id} {case['family']} {case['tags']}: gradient vs oracle finite difference {bad}"


# ------------------------------------------------------------------------------------------------
# The front-end tier: runs once lstm_bridge's front ends have the family (issue 11, items 2 and 3)


def _keras_names(case: Case) -> List[str]:
    names = set()
    for spec in case["layers"]:
        names.add(spec["class"])
        if spec["class"] == "Bidirectional":
            names.add(spec["wrapped"])
    return sorted(names)


def _require(module: str, names: Sequence[str]) -> Any:
    """Skip unless ``module`` has every name (``"v1.GRU"``: ``module.v1.GRU``)."""
    mod = pytest.importorskip(module)
    missing = []
    for name in names:
        obj: Any = mod
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.append(name)
    if missing:
        pytest.skip(f"{module} has no {', '.join(missing)} yet (issue 11 front ends)")
    return mod


def _keras_group(case: Case) -> str:
    if case["family"] == "stacked":
        return "stacked"
    return "simple_rnn" if all(n.startswith("SimpleRNN") or n == "Bidirectional" for n in _keras_names(case)) else "gru"


def _run_front_end(flavour: str, case_id: Optional[str]) -> None:
    case, arrays = _case(flavour, case_id)
    if flavour == "mindspore":
        _require("lstm_bridge.mindspore", [case["kind"]])
    else:
        _require("lstm_bridge.keras", _keras_names(case))
    got = gd.run_case(case, arrays)
    errors = gd.compare(case, arrays, got)
    if case.get("grad") is not None:
        assert got["grads"] is not None and errors["grads"], f"{case_id}: no gradients were compared"
    bad = gd.over_tolerance(case, errors, *gd.tolerances(case))
    assert not bad, f"{case_id} {case['family']} {case['tags']} differs from the real framework:\n  " + "\n  ".join(bad)


_KERAS = ("tf_keras", "keras3")


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: _keras_group(c) == "gru", _KERAS))
def test_front_end_keras_gru(flavour: str, case_id: Optional[str]) -> None:
    """lstm_bridge.keras GRU / v1.GRU / GRUCell / Bidirectional(GRU) against the real Keras."""
    _run_front_end(flavour, case_id)


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: _keras_group(c) == "simple_rnn", _KERAS))
def test_front_end_keras_simple_rnn(flavour: str, case_id: Optional[str]) -> None:
    """lstm_bridge.keras SimpleRNN / SimpleRNNCell / Bidirectional(SimpleRNN) against the real Keras."""
    _run_front_end(flavour, case_id)


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: _keras_group(c) == "stacked", _KERAS))
def test_front_end_keras_family_stacks(flavour: str, case_id: Optional[str]) -> None:
    """Stacks mixing GRU, SimpleRNN and Bidirectional, the mask reaching every layer."""
    _run_front_end(flavour, case_id)


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: c["kind"] in ("GRU", "GRUCell"), ("mindspore",)))
def test_front_end_mindspore_gru(flavour: str, case_id: Optional[str]) -> None:
    """lstm_bridge.mindspore GRU / GRUCell (default numerics "mindspore-cpu") against real MindSpore."""
    _run_front_end(flavour, case_id)


@pytest.mark.parametrize("flavour,case_id", _params(lambda c: c["kind"] in ("RNN", "RNNCell"), ("mindspore",)))
def test_front_end_mindspore_rnn(flavour: str, case_id: Optional[str]) -> None:
    """lstm_bridge.mindspore RNN / RNNCell (tanh and relu) against real MindSpore."""
    _run_front_end(flavour, case_id)
