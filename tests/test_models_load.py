"""``lstm_bridge.load_model`` on real Keras model files (``tests/golden/models``, written by
``tools/golden_models.py`` from tf_keras 2.21 and Keras 3.15.1, ``.keras`` and ``.h5``): predictions within
1e-5 (+ 1e-5 relative) on padded batches; refusals of layers outside the catalogue, named with their class."""

from __future__ import annotations

import json
import pathlib
import zipfile
from typing import Any, Dict

import numpy as np
import pytest
import torch

import lstm_bridge
from lstm_bridge.formats import FormatError
from lstm_bridge.models import UnsupportedLayerError

import golden_data as g

CASES = g.model_cases()


@pytest.mark.skipif(not CASES, reason="tests/golden/models not present")
@pytest.mark.parametrize("flavour,model_id,fmt", CASES)
def test_load_model_reproduces_keras(flavour: str, model_id: str, fmt: str) -> None:
    entry, arrays = g.model_entry(flavour, model_id)
    model = lstm_bridge.load_model(g.model_path(flavour, model_id, fmt))
    assert isinstance(model, torch.nn.Module) and not model.training
    got = g.run_model(model, entry, arrays)
    g.check_model_outputs(got, entry, arrays, f"{flavour}/{model_id}.{fmt}")


def _archive_with(src: pathlib.Path, dst: pathlib.Path, edit: Any) -> None:
    """A copy of a ``.keras`` archive whose config.json went through ``edit`` (written by the test)."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def _first(config: Dict[str, Any], cls: str) -> Dict[str, Any]:
    return next(l for l in config["config"]["layers"] if l["class_name"] == cls)


def _source(flavour: str = "keras3", model_id: str = "embed_bilstm") -> pathlib.Path:
    if not CASES:
        pytest.skip("tests/golden/models not present")
    return pathlib.Path(g.model_path(flavour, model_id, "keras"))


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_a_lambda_layer_is_refused_naming_layer_and_class(tmp_path: pathlib.Path, flavour: str) -> None:
    def edit(config: Dict[str, Any]) -> None:
        layer = _first(config, "Dense")
        layer["class_name"] = "Lambda"
        layer["config"] = {"name": layer["config"]["name"], "function": {"class_name": "__lambda__", "config": {}}}

    path = tmp_path / "lambda.keras"
    _archive_with(_source(flavour), path, edit)
    with pytest.raises(UnsupportedLayerError, match=r"of class 'Lambda'.*never run"):
        lstm_bridge.load_model(path)


def test_a_custom_class_borrowing_a_catalogue_name_is_refused(tmp_path: pathlib.Path) -> None:
    def edit(config: Dict[str, Any]) -> None:
        layer = _first(config, "Dense")
        layer["module"] = "my_project.layers"
        layer["registered_name"] = "my_project>Dense"

    path = tmp_path / "custom.keras"
    _archive_with(_source(), path, edit)
    with pytest.raises(UnsupportedLayerError, match=r"of class 'Dense' is a custom class \(my_project>Dense\)"):
        lstm_bridge.load_model(path)


def test_an_unknown_class_is_refused(tmp_path: pathlib.Path) -> None:
    def edit(config: Dict[str, Any]) -> None:
        _first(config, "Dense")["class_name"] = "MultiHeadAttention"

    path = tmp_path / "mha.keras"
    _archive_with(_source(), path, edit)
    with pytest.raises(UnsupportedLayerError, match="'MultiHeadAttention' is not in the catalogue"):
        lstm_bridge.load_model(path)


def test_a_weights_only_file_is_refused(tmp_path: pathlib.Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        f.create_group("dense").attrs["weight_names"] = np.array([b"dense/kernel:0"])
        f["dense"].create_dataset("dense/kernel:0", data=np.zeros((2, 2), np.float32))
    with pytest.raises(FormatError, match="weights-only"):
        lstm_bridge.load_model(path)


def test_not_a_keras_file_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "x.keras"
    path.write_bytes(b"hello world")
    with pytest.raises(FormatError, match="expected a Keras full-model file"):
        lstm_bridge.load_model(path)


def test_weights_that_do_not_fit_name_the_layer(tmp_path: pathlib.Path) -> None:
    def edit(config: Dict[str, Any]) -> None:
        _first(config, "Dense")["config"]["units"] += 1

    path = tmp_path / "units.keras"
    _archive_with(_source(), path, edit)
    with pytest.raises(FormatError, match="Dense"):
        lstm_bridge.load_model(path)


@pytest.mark.skipif(not CASES, reason="tests/golden/models not present")
def test_train_mode_turns_dropout_on_and_eval_restores_predictions() -> None:
    flavour, model_id = "keras3", "shapes_dropouts"
    entry, arrays = g.model_entry(flavour, model_id)
    model = lstm_bridge.load_model(g.model_path(flavour, model_id, "keras"))
    inputs = g.model_inputs(entry, arrays)
    with torch.no_grad():
        a = model(*inputs)
        model.train()
        torch.manual_seed(0)
        b = model(*inputs)
        model.eval()
        c = model(*inputs)
    flat = lambda r: r[0] if isinstance(r, list) else r  # noqa: E731
    assert not torch.allclose(flat(a), flat(b))
    torch.testing.assert_close(flat(a), flat(c), rtol=0, atol=0)


def test_mask_propagation_through_a_graph_built_from_config() -> None:
    """Embedding(mask_zero) -> LSTM(return_sequences) -> GlobalAveragePooling1D: the pooled mean covers the
    unmasked steps only; the same model without mask_zero averages every step."""
    from lstm_bridge.models.graph import model_from_config

    def config(mask_zero: bool) -> Dict[str, Any]:
        return {
            "class_name": "Sequential",
            "config": {
                "name": "s",
                "layers": [
                    {"class_name": "InputLayer", "config": {"name": "ids", "dtype": "int32", "batch_shape": [None, 4]}},
                    {
                        "class_name": "Embedding",
                        "config": {"name": "e", "input_dim": 5, "output_dim": 2, "mask_zero": mask_zero},
                    },
                    {"class_name": "Dense", "config": {"name": "d", "units": 1, "use_bias": False}},
                    {"class_name": "GlobalAveragePooling1D", "config": {"name": "p"}},
                ],
            },
        }

    ids = torch.tensor([[1, 2, 0, 0]])
    results = []
    for mz in (True, False):
        m = model_from_config(config(mz), 3)
        m.module("e").load_keras_weights([np.arange(10, dtype=np.float32).reshape(5, 2)])
        m.module("d").load_keras_weights([np.ones((2, 1), np.float32)])
        with torch.no_grad():
            results.append(float(m(ids)))
    # rows of the embedding: 1 -> (2, 3), 2 -> (4, 5), 0 -> (0, 1); Dense sums them: 5, 9, 1, 1
    assert results == [pytest.approx(7.0), pytest.approx(4.0)]


def test_a_graph_whose_calls_can_never_run_is_refused() -> None:
    """Two layers that read each other's output (a cycle in a hostile config) are refused by name."""
    from lstm_bridge.models.graph import model_from_config

    def dense(name: str, source: str) -> Dict[str, Any]:
        return {
            "class_name": "Dense",
            "name": name,
            "config": {"name": name, "units": 2},
            "inbound_nodes": [[[source, 0, 0, {}]]],
        }

    config = {
        "class_name": "Functional",
        "config": {
            "name": "cyclic",
            "layers": [
                {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
                dense("a", "b"),
                dense("b", "a"),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["b", 0, 0]],
        },
    }
    with pytest.raises(ValueError, match=r"can never run .*a\[0\]"):
        model_from_config(config, 2)


def test_mutated_configs_fail_with_format_or_value_errors(tmp_path: pathlib.Path) -> None:
    """A short mutation fuzz of real configs (keys deleted, values replaced by other JSON types): every
    failure is a FormatError or ValueError (UnsupportedLayerError included), never a crash of another type."""
    import random

    sources = [pathlib.Path(g.model_path(fl, mid, "keras")) for fl, mid, fmt in CASES if fmt == "keras"]
    if not sources:
        pytest.skip("tests/golden/models not present")
    rnd = random.Random(13)

    def mutate(v: Any) -> None:
        if isinstance(v, dict) and v:
            k = rnd.choice(list(v))
            r = rnd.random()
            if r < 0.2:
                del v[k]
            elif r < 0.4:
                v[k] = rnd.choice([None, 1, "x", [], {}, -1, 1e9, [["x", 0, 0]]])
            else:
                mutate(v[k])
        elif isinstance(v, list) and v:
            i = rnd.randrange(len(v))
            r = rnd.random()
            if r < 0.2:
                del v[i]
            elif r < 0.4:
                v[i] = rnd.choice([None, 1, "x", [], {}, -5, 99])
            else:
                mutate(v[i])

    for n in range(60):
        path = tmp_path / f"m{n}.keras"
        _archive_with(rnd.choice(sources), path, lambda c: [mutate(c) for _ in range(rnd.randint(1, 3))])
        try:
            lstm_bridge.load_model(path)
        except (FormatError, ValueError, NotImplementedError):
            pass


def test_a_layer_config_missing_a_required_value_names_the_layer(tmp_path: pathlib.Path) -> None:
    def edit(config: Dict[str, Any]) -> None:
        del _first(config, "Dense")["config"]["units"]

    path = tmp_path / "nounits.keras"
    _archive_with(_source(), path, edit)
    with pytest.raises(ValueError, match=r"of class 'Dense': bad config .*units"):
        lstm_bridge.load_model(path)


def test_a_mixed_precision_layer_is_refused(tmp_path: pathlib.Path) -> None:
    """Keras would compute it in float16; the catalogue computes in float32: refused, not approximated."""

    def edit(config: Dict[str, Any]) -> None:
        policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
        _first(config, "Dense")["config"]["dtype"] = policy

    path = tmp_path / "mixed.keras"
    _archive_with(_source(), path, edit)
    with pytest.raises(UnsupportedLayerError, match="computes in dtype 'mixed_float16'"):
        lstm_bridge.load_model(path)


@pytest.mark.parametrize("gen", [2, 3])
def test_one_output_in_a_list_is_returned_as_a_tensor_as_predict_does(gen: int) -> None:
    from lstm_bridge.models.graph import model_from_config

    config = {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 2},
                    "inbound_nodes": [[["x", 0, 0, {}]]],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }
    model = model_from_config(config, gen)
    model.module("d").load_keras_weights([np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
    with torch.no_grad():
        y = model(torch.ones(1, 3))
    assert isinstance(y, torch.Tensor) and y.tolist() == [[3.0, 3.0]]


def test_fine_tuning_updates_what_keras_would(tmp_path: pathlib.Path) -> None:
    """Gradients reach every trainable parameter; a layer Keras marks trainable=false gets none."""

    def edit(config: Dict[str, Any]) -> None:
        _first(config, "Dense")["config"]["trainable"] = False

    path = tmp_path / "frozen.keras"
    _archive_with(_source(), path, edit)
    entry, arrays = g.model_entry("keras3", "embed_bilstm")
    model = lstm_bridge.load_model(path)
    model.train()
    out = model(*g.model_inputs(entry, arrays))
    (out[0] if isinstance(out, list) else out).sum().backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(".weight" in n or ".bias" in n for n in frozen)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable)


@pytest.mark.parametrize("name", ["keras3_emb_lstm_dense.keras", "tfkeras_emb_lstm_dense.h5"])
def test_a_loaded_embedding_model_compiles_and_exports_whole(name: str) -> None:
    """Embedding -> masked LSTM -> Dense: ``torch.compile(fullgraph=True)`` without a recompile per batch size and
    ``torch.export`` with dynamic batch and time reproduce Keras; an index out of range raises from both (the
    Embedding's value check is a registered op there, not a Python branch on tensor values)."""
    from torch.export import Dim

    folder = pathlib.Path(__file__).parent / "fixtures" / "keras"
    stem = name.rsplit(".", 1)[0]
    x = torch.from_numpy(np.load(folder / f"{stem}_input.npy"))
    want = torch.from_numpy(np.load(folder / f"{stem}_output.npy"))
    model = lstm_bridge.load_model(folder / name)
    other = torch.cat([x, x[:1]])[:, :4].contiguous()  # another batch size and length
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    exported = torch.export.export(model, (x,), dynamic_shapes=(({0: Dim("B", min=2), 1: Dim("T", min=2)},),))
    program = exported.module()
    bad = x.clone()
    bad[1, 2] = 10**6
    with torch.no_grad():
        for run in (compiled, program):
            torch.testing.assert_close(run(x), want, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(run(other), model(other), rtol=1e-5, atol=1e-6)
            with pytest.raises(RuntimeError, match=r"indices must be in \[0, 20\); received 1000000"):
                run(bad)
        torch.compiler.set_stance("fail_on_recompile")
        try:
            third = torch.cat([x, x, x])[:, :5].contiguous()
            torch.testing.assert_close(compiled(third), model(third), rtol=1e-5, atol=1e-6)
        finally:
            torch.compiler.set_stance("default")
    with pytest.raises(IndexError, match=r"indices must be in \[0, 20\); received values in \[0, 1000000\]"):
        model(bad)


@pytest.mark.skipif(not CASES, reason="tests/golden/models not present")
@pytest.mark.parametrize("model_id", ["merge_graph", "seq2seq", "masked_conv"])
def test_golden_models_compile_whole_and_export_with_a_dynamic_batch(model_id: str) -> None:
    """Several inputs and outputs, merges, encoder states feeding a decoder, Conv1D with masks: fullgraph
    compile and an export with a dynamic batch reproduce the eager model (Keras 3 files)."""
    from torch.export import Dim

    entry, arrays = g.model_entry("keras3", model_id)
    model = lstm_bridge.load_model(g.model_path("keras3", model_id, "keras"))
    inputs = g.model_inputs(entry, arrays)
    with torch.no_grad():
        want = g.run_model(model, entry, arrays)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        dims = (tuple({0: Dim("B", min=2)} for _ in inputs),)
        program = torch.export.export(model, tuple(inputs), dynamic_shapes=dims).module()
        for run in (compiled, program):
            got = g.run_model(run, entry, arrays)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        bigger = [torch.cat([t, t[:2]]) for t in inputs]
        for a, b in zip(g._flatten(program(*bigger)), g._flatten(model(*bigger))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
