"""``lstm-bridge port IN OUT_DIR`` (lstm_bridge.models.port): every golden Keras model ported to PyTorch
source reproduces Keras's predictions; the source is readable and self-contained; the folder is written
atomically, only after verification, never over a non-empty OUT_DIR without --force."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from lstm_bridge.cli import main

import golden_data as gd

CASES = gd.model_cases()
ROOT = Path(__file__).resolve().parent.parent


def _import(folder: Path, tag: str):
    spec = importlib.util.spec_from_file_location(f"ported_{tag}", folder / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("flavour,model_id,fmt", CASES, ids=["/".join(c) for c in CASES])
def test_ported_model_reproduces_keras(flavour, model_id, fmt, tmp_path, capsys):
    out = tmp_path / "port"
    src = gd.model_path(flavour, model_id, fmt)
    assert main(["port", str(src), str(out)]) == 0, capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["PORT.md", "model.py", "weights.safetensors"]
    mod = _import(out, f"{flavour}_{model_id}_{fmt}")
    entry, arrays = gd.model_entry(flavour, model_id)
    model = mod.load()
    assert not model.training
    gd.check_model_outputs(gd.run_model(model, entry, arrays), entry, arrays, f"port of {src.name}")
    if len(entry["inputs"]) > 1:  # Keras's list form too
        got = [o.detach().numpy() for o in gd._flatten(model(gd.model_inputs(entry, arrays)))]
        gd.check_model_outputs(got, entry, arrays, f"port of {src.name}, inputs as one list")
    # one attribute per Keras layer, named after it
    names = {layer["name"] for layer in entry["layers"] if layer["class"] not in ("Functional", "Sequential")}
    assert names <= set(dict(model.named_children())), names - set(dict(model.named_children()))


def test_generated_source_imports_only_torch_and_lstm_bridge(tmp_path, capsys):
    for flavour, model_id in (("keras3", "merge_graph"), ("tf_keras", "seq2seq")):
        out = tmp_path / f"{flavour}_{model_id}"
        assert main(["port", str(gd.model_path(flavour, model_id, "keras")), str(out)]) == 0
        tree = ast.parse((out / "model.py").read_text())
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots.add((node.module or "").split(".")[0])
        assert roots <= {"torch", "lstm_bridge", "typing"}, roots
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
        funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert len(classes) == 1 and {"build", "load"} <= funcs
        # build() without weights, then load_state_dict of the written file: torch-native names
        mod = _import(out, f"src_{flavour}_{model_id}")
        built = mod.build()
        from safetensors.torch import load_file

        state = load_file(str(out / "weights.safetensors"))
        assert set(state) == set(built.state_dict())
        built.load_state_dict(state)


def test_weights_have_torch_native_names_and_layouts(tmp_path, capsys):
    src = gd.model_path("tf_keras", "conv_norm_lstm", "h5")
    out = tmp_path / "p"
    assert main(["port", str(src), str(out)]) == 0
    from safetensors.torch import load_file

    state = load_file(str(out / "weights.safetensors"))
    assert state["dense.weight"].shape == (2, 4)  # Linear: (out, in); Keras kernel is (4, 2)
    assert state["conv_causal.weight"].shape == (5, 3, 3)  # Conv1d: (out, in, k)
    assert {"batchnorm.running_mean", "batchnorm.running_var", "batchnorm.weight", "batchnorm.bias"} <= set(state)
    emb = load_file(str(_port(tmp_path, "keras3", "embed_bilstm") / "weights.safetensors"))
    assert emb["embedding.weight"].shape == (30, 6)


def _port(tmp_path, flavour, model_id, fmt="keras"):
    out = tmp_path / f"{flavour}_{model_id}_{fmt}"
    assert main(["port", str(gd.model_path(flavour, model_id, fmt)), str(out)]) == 0
    return out


def test_port_md_reports_per_layer_differences_and_what_is_not_carried(tmp_path, capsys):
    out = _port(tmp_path, "keras3", "seq2seq")
    text = (out / "PORT.md").read_text()
    assert "seq2seq.keras" in text and "Keras 3" in text and "3.15.1" in text
    for layer in ("encoder_embedding", "encoder_lstm", "decoder_lstm", "decoder_dense"):
        assert f"| `{layer}` |" in text
    assert "optimizer" in text and "training configuration" in text
    assert "lengths [7," in text  # a padded batch, lengths drawn per row


def test_ported_module_fine_tunes(tmp_path, capsys):
    """The port is an ordinary torch module: train() enables the dropout family, gradients reach every
    parameter, an optimizer step changes the predictions."""
    mod = _import(_port(tmp_path, "tf_keras", "embed_bilstm"), "ft")
    entry, arrays = gd.model_entry("tf_keras", "embed_bilstm")
    model = mod.load()
    x = gd.model_inputs(entry, arrays)
    before = model(*x).detach()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = torch.nn.functional.nll_loss(torch.log(model(*x)), torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and all(torch.isfinite(g).all() for g in grads)
    opt.step()
    model.eval()
    assert not torch.allclose(model(*x), before)


def test_refuses_a_non_empty_out_dir_without_force_and_replaces_it_with_force(tmp_path, capsys):
    src = str(gd.model_path("keras3", "embed_bilstm", "keras"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["port", src, str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"]
    assert main(["port", src, str(out), "--force"]) == 0
    assert sorted(os.listdir(out)) == ["PORT.md", "model.py", "weights.safetensors"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["port", src, str(empty)]) == 0  # an empty folder is fine
    (tmp_path / "afile").write_text("x")
    assert main(["port", src, str(tmp_path / "afile")]) == 2
    assert main(["port", src, str(tmp_path / "missing" / "out")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "empty", "out"]  # no temporary folder left


def test_failed_verification_writes_nothing(tmp_path, capsys, monkeypatch):
    """A generated module that differs from load_model: exit 1, no OUT_DIR, no temporary folder."""
    from lstm_bridge.models import port as P

    real = P.generate_source

    def broken(*args, **kwargs):
        source, cls, mods = real(*args, **kwargs)
        return source.replace("        return ", "        return 1.5 * ", 1), cls, mods  # one output: scaled

    monkeypatch.setattr(P, "generate_source", broken)
    out = tmp_path / "out"
    code = main(["port", str(gd.model_path("tf_keras", "lstm_hard_td", "h5")), str(out)])
    assert code == 1, capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_interrupted_port_leaves_out_dir_untouched(tmp_path, capsys, monkeypatch):
    from lstm_bridge.models import port as P

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "verify", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main(["port", str(gd.model_path("keras3", "embed_bilstm", "keras")), str(out), "--force"]) == 130
    assert os.listdir(out) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _with_layer_class(src: Path, dst: Path, layer: str, new_class: str) -> None:
    """A copy of a .keras archive whose layer ``layer`` claims class ``new_class`` (built by the test)."""
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    cfg = json.loads(members["config.json"])
    for entry in cfg["config"]["layers"]:
        if entry["config"].get("name") == layer:
            entry["class_name"] = new_class
    members["config.json"] = json.dumps(cfg).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    dst.write_bytes(buf.getvalue())


def test_layer_outside_the_catalogue_is_refused_naming_it(tmp_path, capsys):
    bad = tmp_path / "lambda.keras"
    _with_layer_class(gd.model_path("keras3", "embed_bilstm", "keras"), bad, "dense", "Lambda")
    out = tmp_path / "out"
    assert main(["port", str(bad), str(out)]) == 3
    err = capsys.readouterr().err
    assert "'dense'" in err and "Lambda" in err
    assert not out.exists()


def test_bad_inputs(tmp_path, capsys):
    assert main(["port", str(tmp_path / "nope.keras"), str(tmp_path / "o")]) == 3
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    assert main(["port", str(junk), str(tmp_path / "o")]) == 3
    assert not (tmp_path / "o").exists()


def test_console_script_end_to_end(tmp_path):
    out = tmp_path / "ported"
    exe = Path(sys.executable).with_name("lstm-bridge")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lstm_bridge.cli"]
    res = subprocess.run(
        cmd + ["port", str(gd.model_path("tf_keras", "masking_gru_rnn", "h5")), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "OK: max |difference|" in res.stdout
    # the generated module runs in a fresh interpreter on its own
    script = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import model; m = model.load(); "
        "print(tuple(m(torch.randn(2, 7, 3)).shape))"
    )
    res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "(2, 2)"


def test_layer_names_that_are_not_python_names(tmp_path, capsys):
    """Keywords, the generated module's own names and characters Python does not allow: the attributes and
    variables are made safe and distinct, the port still reproduces Keras."""
    src = gd.model_path("tf_keras", "embed_bilstm", "keras")
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    cfg = json.loads(members["config.json"])
    renames = {"tokens": "layers", "embedding": "class", "bilstm": "bi lstm/1", "lstm": "torch", "dense": "self"}
    for entry in cfg["config"]["layers"]:
        entry["config"]["name"] = renames.get(entry["config"]["name"], entry["config"]["name"])
    members["config.json"] = json.dumps(cfg).encode()
    odd = tmp_path / "odd.keras"
    with zipfile.ZipFile(odd, "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    out = tmp_path / "port"
    assert main(["port", str(odd), str(out)]) == 0, capsys.readouterr().err
    model = _import(out, "odd").load()
    assert {"layers", "class_", "bi_lstm_1", "torch", "self"} <= set(dict(model.named_children()))
    entry, arrays = gd.model_entry("tf_keras", "embed_bilstm")
    gd.check_model_outputs(gd.run_model(model, entry, arrays), entry, arrays, "renamed layers")


def test_force_never_replaces_a_folder_holding_the_input_or_the_current_directory(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    src = work / "model.keras"
    src.write_bytes(gd.model_path("keras3", "embed_bilstm", "keras").read_bytes())
    assert main(["port", str(src), str(work), "--force"]) == 2
    assert "holds the input file" in capsys.readouterr().err
    monkeypatch.chdir(work)
    other = tmp_path / "other.keras"
    other.write_bytes(src.read_bytes())
    assert main(["port", str(other), ".", "--force"]) == 2
    assert "holds the current directory" in capsys.readouterr().err
    assert main(["port", str(other), str(tmp_path), "--force"]) == 2
    assert sorted(os.listdir(work)) == ["model.keras"] and src.exists()


def test_layers_keras_does_not_train_stay_frozen(tmp_path, capsys):
    """``trainable: false`` in the Keras config: the port's parameters of that layer do not require grad, as
    load_model's (so fine-tuning updates what Keras would)."""
    src = gd.model_path("keras3", "embed_bilstm", "keras")
    frozen = tmp_path / "frozen.keras"
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    cfg = json.loads(members["config.json"])
    for entry in cfg["config"]["layers"]:
        if entry["config"]["name"] == "embedding":
            entry["config"]["trainable"] = False
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(frozen, "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    out = tmp_path / "port"
    assert main(["port", str(frozen), str(out)]) == 0, capsys.readouterr().err
    model = _import(out, "frozen").load()
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    assert flags["embedding.weight"] is False
    assert all(v for n, v in flags.items() if not n.startswith("embedding."))


def test_porting_twice_writes_the_same_files(tmp_path, capsys):
    """The generated source and weights depend on the model file only (PORT.md names the paths)."""
    src = str(gd.model_path("tf_keras", "merge_graph", "h5"))
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["port", src, str(out)]) == 0, capsys.readouterr().err
    for name in ("model.py", "weights.safetensors"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
