"""Every golden whole Keras model (tests/golden/models/, real tf_keras 2.21 and Keras 3.15.1 files written by
tools/golden_models.py) loads with ``lstm_bridge.load_model`` and reproduces Keras's predictions and every
top-level layer's outputs on the stored padded batches, within ``|ours - Keras| <= 1e-5 * (1 + |Keras|)``."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
import torch

import golden_data as gd

CASES = gd.model_cases()


def test_the_golden_models_exist_and_cover_the_catalogue():
    from lstm_bridge.models import CATALOGUE

    assert len(CASES) >= 29, "run `make golden-models`"
    for flavour in gd.MODEL_FLAVOURS:
        meta, _ = gd.load_models(flavour)
        uncovered = [c for c in meta["catalogue"] if not meta["covered"].get(c)]
        assert uncovered == [], f"{flavour}: catalogue classes no golden model covers: {uncovered}"
        assert sorted(meta["catalogue"]) == sorted(CATALOGUE), "the golden catalogue is load_model's catalogue"


@pytest.mark.parametrize("flavour,model_id,fmt", CASES, ids=["/".join(c) for c in CASES])
def test_load_model_reproduces_keras(flavour, model_id, fmt):
    from lstm_bridge import load_model

    entry, arrays = gd.model_entry(flavour, model_id)
    model = load_model(gd.model_path(flavour, model_id, fmt))
    assert not model.training, "load_model returns the module in eval mode"
    got = gd.run_model(model, entry, arrays)
    gd.check_model_outputs(got, entry, arrays, f"{flavour}/{model_id}.{fmt}")


def _leaf_calls(model: Any) -> Dict[str, Any]:
    """Keras layer name -> loaded module, for the top-level layers that are modules run by __call__."""
    from lstm_bridge.models.graph import KerasModel

    out = {}
    for name, key, _cls in model.entries:
        m = model.modules_by_name[key]
        if not isinstance(m, KerasModel):
            out[name] = m
    return out


@pytest.mark.parametrize("flavour,model_id,fmt", CASES, ids=["/".join(c) for c in CASES])
def test_every_layer_output_matches_keras(flavour, model_id, fmt):
    """Per-layer outputs (the golden ``layer_outputs``: ``name`` or ``name@k`` for the k-th call of a shared
    layer), recorded with forward hooks in the order the graph runs the calls."""
    from lstm_bridge import load_model

    entry, arrays = gd.model_entry(flavour, model_id)
    model = load_model(gd.model_path(flavour, model_id, fmt))
    leaves = _leaf_calls(model)
    seen: Dict[str, List[List[torch.Tensor]]] = {n: [] for n in leaves}
    handles = []
    for n, m in leaves.items():

        def hook(_m, _i, out, n=n):
            flat = list(out) if isinstance(out, (list, tuple)) else [out]
            seen[n].append([t.detach() for t in flat])

        handles.append(m.register_forward_hook(hook))
    try:
        gd.run_model(model, entry, arrays)
    finally:
        for h in handles:
            h.remove()
    order = {n: [k for name, k in model.order if name == n] for n in leaves}
    checked = 0
    for key, npz_keys in entry["layer_outputs"].items():
        name, _, call = key.partition("@")
        if name not in leaves:
            continue  # a nested model: its layers run inside it
        k = int(call or 0)
        fired = order[name].index(k)
        outs = seen[name][fired]
        assert len(outs) == len(npz_keys), f"{key}: {len(outs)} outputs; Keras has {len(npz_keys)}"
        for t, npz_key in zip(outs, npz_keys):
            err = gd.model_error(t.numpy(), arrays[npz_key])
            assert err <= gd.MODEL_TOL, f"{flavour}/{model_id}.{fmt} layer {key}: {err:.3g} from Keras"
            checked += 1
    assert checked >= len(entry["layers"]) - 1


def test_golden_inputs_are_padded_batches():
    """The stored batches really are padded (a test against unpadded data would not see a mask bug)."""
    for flavour in gd.MODEL_FLAVOURS:
        meta, arrays = gd.load_models(flavour)
        for entry in meta["models"]:
            for spec in entry["inputs"]:
                x, lengths = arrays[spec["key"]], arrays[spec["lengths"]]
                assert (lengths < x.shape[1]).sum() >= 3, f"{entry['id']}: most rows must be padded"
                for row, n in zip(x, lengths):
                    assert not np.any(row[n:]), f"{entry['id']}: padding must be zeros"
