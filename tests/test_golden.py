"""Golden parity: every case in ``tests/golden/`` (produced by the real tf_keras 2.21, Keras 3.15.1 and
MindSpore 2.10 on CPU, see ``tools/make_golden.py``) run through lstm_bridge's PUBLIC front ends only.

Loading, the runners, the comparison and the tolerances live in ``tests/golden_data.py`` (the one
golden loader, shared with ``tests/test_live.py`` and ``tools/parity_report.py``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch

import golden_data as gd
from golden_data import FLAVOURS, GOLDEN, load_flavour


def _case_params() -> List[Any]:
    params = []
    for flavour in FLAVOURS:
        if not gd.available(flavour):
            params.append(pytest.param(flavour, None, id=f"{flavour}-MISSING"))
            continue
        for case in gd.cases(flavour):
            params.append(pytest.param(flavour, case["id"], id=f"{case['id']}-{case['family']}"))
    return params


def _case(flavour: str, case_id: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    if case_id is None:
        pytest.fail(f"tests/golden/{flavour}.json is missing: run `make golden`")
    return gd.case(flavour, case_id)


def _check(case: Dict[str, Any], errors: Dict[str, Any], tol_f: float, tol_g: float) -> None:
    bad = gd.over_tolerance(case, errors, tol_f, tol_g)
    if bad:
        pytest.fail(
            f"{case['id']} {case['family']} {case['tags']} differs from the real framework:\n  " + "\n  ".join(bad)
        )


# ------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("flavour,case_id", _case_params())
def test_golden_case(flavour: str, case_id: Optional[str]) -> None:
    case, arrays = _case(flavour, case_id)
    got = gd.run_case(case, arrays)
    errors = gd.compare(case, arrays, got)
    if case.get("grad") is not None:
        assert got["grads"] is not None and errors["grads"], f"{case_id}: no gradients were compared"
    _check(case, errors, *gd.tolerances(case))


def _fused_params() -> List[Any]:
    if not gd.available("mindspore"):
        return [pytest.param(None, id="mindspore-MISSING")]
    meta, _ = load_flavour("mindspore")
    return [pytest.param(c["id"], id=c["id"]) for c in meta["cases"] if c["family"] == "lstm/fused"]


@pytest.mark.parametrize("case_id", _fused_params())
def test_golden_mindspore_fused_path_is_bit_exact(case_id: Optional[str]) -> None:
    """MindSpore's CPU LSTM without seq_length is oneDNN's LSTM primitive in its training kind, in inference
    too; ``numerics="mindspore-cpu-bits"`` routes it there at every size, under ``torch.no_grad()`` and
    with grad enabled, so the outputs match bit for bit. (The default numerics run it on whichever of
    the kernel and oneDNN's inference kind is faster: ``test_golden_case`` holds those to the tolerances.)"""
    case, arrays = _case("mindspore", case_id)
    inference = {**case, "grad": None}  # (no gradient asked: the call runs under inference rules)
    with torch.no_grad():
        got = gd.run_case(inference, arrays, numerics="mindspore-cpu-bits")
    errors = gd.compare(inference, arrays, got)
    assert all(v == 0.0 for v in errors["forward"].values()), (case_id, "no_grad", errors["forward"])
    errors = gd.compare(case, arrays, gd.run_case(case, arrays, numerics="mindspore-cpu-bits"))
    assert all(v == 0.0 for v in errors["forward"].values()), (case_id, "grad enabled", errors["forward"])
    with torch.inference_mode():
        got = gd.run_case(inference, arrays, numerics="mindspore-cpu-bits")
    errors = gd.compare(inference, arrays, got)
    assert all(v == 0.0 for v in errors["forward"].values()), (case_id, "inference_mode", errors["forward"])


def test_golden_mindspore_fused_default_numerics_in_inference() -> None:
    """The default numerics in inference (``torch.no_grad()``): within the golden tolerance of MindSpore on
    every fused case, whichever path ran."""
    if not gd.available("mindspore"):
        pytest.fail("tests/golden/mindspore.json is missing: run `make golden`")
    meta, _ = load_flavour("mindspore")
    for meta_case in meta["cases"]:
        if meta_case["family"] != "lstm/fused":
            continue
        case, arrays = _case("mindspore", meta_case["id"])
        inference = {**case, "grad": None}
        with torch.no_grad():
            errors = gd.compare(inference, arrays, gd.run_case(inference, arrays))
        _check(inference, errors, *gd.tolerances(case))


def _approx_params() -> List[Any]:
    if not gd.available("mindspore"):
        return [pytest.param(None, id="mindspore-MISSING")]
    meta, _ = load_flavour("mindspore")
    return [pytest.param(c["id"], id=f"{c['id']}-{c['family']}") for c in meta["cases"] if c["approx_activations"]]


@pytest.mark.parametrize("case_id", _approx_params())
def test_golden_mindspore_exact_numerics(case_id: Optional[str]) -> None:
    """MindSpore's seq_length path and LSTMCell with ``numerics="exact"`` (true sigmoid/tanh): within 2e-4."""
    case, arrays = _case("mindspore", case_id)
    got = gd.run_mindspore_case(case, arrays, numerics="exact")
    _check(case, gd.compare(case, arrays, got), *gd.tolerances(case, "exact"))


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
    for fam in [
        "tf_keras:lstm/matrix",
        "keras3:lstm/matrix",
        "tf_keras:lstm/time_major",
        "tf_keras:v1/defaults",
        "tf_keras:bidirectional/merge_modes",
        "keras3:bidirectional/merge_modes",
        "tf_keras:stacked",
        "keras3:stacked",
        "mindspore:lstm/fused",
        "mindspore:lstm/seq_length",
        "mindspore:cell",
        "mindspore:lstm/seq_length_zeros",
        "mindspore:lstm/seq_length_full",
        "tf_keras:lstm/activation_names",
        "keras3:lstm/activation_names",
        "tf_keras:lstm/stateful_initial_state",
        "keras3:lstm/stateful_initial_state",
    ]:
        assert fam in families, fam
    for flavour in ("tf_keras", "keras3"):
        for mask in ("right", "left", "holes", "fully_masked_row", "mixed"):
            assert f"{flavour}:mask:{mask}" in tags, (flavour, mask)
        for mm in ("concat", "sum", "mul", "ave", "None"):
            assert f"{flavour}:merge_mode:{mm}" in tags, (flavour, mm)
        assert f"{flavour}:recurrent_activation:hard_sigmoid" in tags
    size = sum(p.stat().st_size for p in GOLDEN.iterdir() if p.is_file())
    assert size < 20 * 2**20, f"tests/golden is {size / 2**20:.1f} MiB; the budget is 20 MiB"


_KERAS_FLAVOURS = [("tf_keras", 2), ("keras3", 3)]


@pytest.mark.parametrize("flavour,kv", _KERAS_FLAVOURS)
def test_activation_names_are_the_real_frameworks(flavour: str, kv: int) -> None:
    """Each generation accepts exactly the names the real ``keras.activations.get`` accepted when the
    goldens were made, and rejects the others with Keras's own error text (tf_keras: celu, hard_silu,
    hard_tanh ... are Keras 3 names)."""
    from lstm_bridge import activations as A
    from lstm_bridge.keras import LSTM

    record = load_flavour(flavour)[0]["activation_names"]
    ours = A.KERAS2_NAMES if kv == 2 else A.KERAS3_NAMES
    not_gates = set(A.KERAS3_UNSUPPORTED) if kv == 3 else set()
    assert set(record["accepted"]) == set(ours) | not_gates
    for name in record["accepted"]:
        if name in not_gates:
            with pytest.raises(NotImplementedError, match=name):
                A.get(name, keras_version=kv)
        else:
            assert isinstance(A.get(name, keras_version=kv), A.Activation), name
    for name, error in record["rejected"].items():
        if name in A.OWN_NAMES:  # lstm-bridge's own serialised names resolve in every generation
            assert A.get(name, keras_version=kv).name == name
            continue
        keras_text = error.split(": ", 1)[1]
        with pytest.raises(ValueError) as info:
            A.get(name, keras_version=kv)
        assert str(info.value).startswith(keras_text), (str(info.value), keras_text)
        with pytest.raises(ValueError, match="activation"):
            LSTM(2, activation=name, keras_version=kv)


@pytest.mark.parametrize("flavour,kv", _KERAS_FLAVOURS)
def test_every_gate_activation_name_has_golden_cases(flavour: str, kv: int) -> None:
    """Every name the generation accepts (bar glu/threshold) is recorded as `activation` and as
    `recurrent_activation` of a real-framework LSTM (run by test_golden_case)."""
    from lstm_bridge import activations as A

    record = load_flavour(flavour)[0]["activation_names"]
    tags = {t for c in gd.cases(flavour, "lstm/activation_names") for t in c["tags"]}
    for name in record["accepted"]:
        if kv == 3 and name in A.KERAS3_UNSUPPORTED:
            continue
        assert f"activation:{name}" in tags and f"recurrent_activation:{name}" in tags, name


def meta_versions_ok() -> bool:
    """The pinned framework versions of issue 3 generated the files."""
    want = {
        "tf_keras": {"tensorflow": "2.21.0", "tf_keras": "2.21.0"},
        "keras3": {"tensorflow": "2.21.0", "keras": "3.15.1"},
        "mindspore": {"mindspore": "2.10.0"},
    }
    for flavour, pins in want.items():
        versions = load_flavour(flavour)[0]["versions"]
        for name, version in pins.items():
            assert versions.get(name) == version, (flavour, name, versions.get(name), version)
    return True
