"""``lstm-bridge port IN OUT_DIR --to mindspore`` (issue 14 item 5): the golden Keras models
(tests/golden/models/, real tf_keras / Keras 3 files with Keras's recorded predictions) ported to MindSpore source
+ checkpoint by :mod:`lstm_bridge.models.port_mindspore`.

* what MindSpore can hold ports, and the emitted model.py, run on lstm_bridge.mindspore (imports rewritten), loads
  its model.ckpt with MindSpore's verbs and reproduces Keras's recorded predictions within ``MS_TOL`` (2e-4
  scaled: MindSpore's CPU sigmoid / tanh); rows whose Masking mask has holes are refused at run time naming the
  layer, and the other rows are compared;
* what it cannot hold is refused naming the layer and why;
* live tier: the emitted model.py runs in real MindSpore 2.10 (.golden-venvs/ms, a subprocess) with Keras's
  predictions within ``MS_TOL``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import golden_data as gd

pytest.importorskip("torch")

MS_TOL = 2e-4
MS_PYTHON = gd.ROOT / ".golden-venvs" / "ms" / "bin" / "python"

#: golden model id -> what the refusal must name (everything else must port)
REFUSED = {
    "lstm_hard_td": ("layer 'lstm' (LSTM)", "recurrent_activation='hard_sigmoid"),
    "masking_gru_rnn": ("layer 'bigru_before' (Bidirectional)", "reset_after=False"),
    "td_embed_stack": ("layer 'gru_before' (GRU)", "reset_after=False"),
}


def _refusal(flavour, model_id):
    """What the refusal of this golden model must name, or None when it must port (the same in both
    generations)."""
    return REFUSED.get(model_id)


#: one file format per model is enough for the port (both formats are read by the same load_model)
CASES = [c for c in gd.model_cases() if c[2] == "keras"]


def _holes(x: np.ndarray) -> np.ndarray:
    """Per row: an all-zero step before a non-zero one (Masking(0.0) masks it in the middle)."""
    if x.ndim < 3:
        return np.zeros(x.shape[0], bool)
    zero = ~np.any(x != 0, axis=-1)
    later = np.flip(np.cumsum(np.flip(~zero, 1), 1), 1) > 0  # a non-zero step at or after t
    return np.any(zero[:, :-1] & later[:, 1:], axis=1)


def _rows(entry, arrays):
    xs = [arrays[spec["key"]] for spec in entry["inputs"]]
    bad = np.zeros(xs[0].shape[0], bool)
    for spec, x in zip(entry["inputs"], xs):
        if spec.get("holes"):
            bad |= _holes(x)
    return xs, ~bad


def _import(folder, tag):
    from lstm_bridge.models.port_mindspore import rewrite_imports

    path = os.path.join(folder, "model.py")
    with open(path, encoding="utf-8") as fh:
        source = rewrite_imports(fh.read())
    spec = importlib.util.spec_from_loader(f"ms_port_{tag}", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__file__ = path
    exec(compile(source, path, "exec"), mod.__dict__)  # noqa: S102 - the generated file
    return mod


def _port(tmp_path, flavour, model_id):
    from lstm_bridge.models.port_mindspore import write_port_mindspore

    out = tmp_path / f"{flavour}_{model_id}"
    return write_port_mindspore(str(gd.model_path(flavour, model_id, "keras")), str(out)), out


@pytest.mark.parametrize("flavour,model_id,fmt", CASES)
def test_golden_model_ports_or_is_refused(tmp_path, flavour, model_id, fmt):
    from lstm_bridge.mindspore import Tensor
    from lstm_bridge.models.port import PortError

    if _refusal(flavour, model_id):
        layer, why = _refusal(flavour, model_id)
        with pytest.raises(PortError) as info:
            _port(tmp_path, flavour, model_id)
        assert layer in str(info.value) and why in str(info.value), str(info.value)
        assert not (tmp_path / f"{flavour}_{model_id}").exists()
        return
    p, out = _port(tmp_path, flavour, model_id)
    assert sorted(os.listdir(out)) == ["PORT.md", "model.ckpt", "model.py"]
    source = (out / "model.py").read_text()
    assert "import mindspore" in source and "lstm_bridge" not in source and "torch" not in source
    assert p.outputs_max_diff <= MS_TOL
    entry, arrays = gd.model_entry(flavour, model_id)
    xs, keep = _rows(entry, arrays)
    net = _import(str(out), f"{flavour}_{model_id}").load()
    if not keep.all():  # a hole in a Masking mask: refused at run time, naming the layer
        # the Masking layer's mask, or (Keras 3) the mask ops it saved: x != 0.0, any over the features
        names = r"(Masking 'masking'|op nodes, \(x != 0\.0\)\.any\(axis=-1)"
        with pytest.raises(ValueError, match=f"{names}.*right-padded"):
            net(*[Tensor(x) for x in xs])
    got = net(*[Tensor(x[keep]) for x in xs])
    got_l = got if isinstance(got, list) else [got]
    errs = [gd.model_error(g.asnumpy(), arrays[k][keep]) for g, k in zip(got_l, entry["outputs"])]
    assert len(got_l) == len(entry["outputs"])
    assert max(errs) <= MS_TOL, errs


def test_port_refuses_a_non_empty_out_dir_and_writes_nothing_on_refusal(tmp_path):
    from lstm_bridge.models.port_mindspore import write_port_mindspore

    src = str(gd.model_path("keras3", "float_token_input", "keras"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="--force"):
        write_port_mindspore(src, str(out))
    assert os.listdir(out) == ["keep.txt"]
    write_port_mindspore(src, str(out), force=True)
    assert sorted(os.listdir(out)) == ["PORT.md", "model.ckpt", "model.py"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_checkpoint_holds_mindspore_names_and_layouts(tmp_path):
    import lstm_bridge.mindspore as ms

    p, out = _port(tmp_path, "keras3", "embed_bilstm")
    ckpt = ms.load_checkpoint(str(out / "model.ckpt"))
    shapes = {k: tuple(v.shape) for k, v in ckpt.items()}
    assert shapes["embedding.embedding_table"] == (30, 6)
    assert shapes["bilstm.weight_ih_l0"] == (20, 6) and shapes["bilstm.weight_hh_l0_reverse"] == (20, 5)
    assert shapes["dense.weight"] == (3, 4)  # (out, in)
    assert "seq_length=" in (out / "model.py").read_text()


def test_cli_port_to_mindspore(tmp_path):
    from lstm_bridge.cli import main

    src = str(gd.model_path("tf_keras", "seq2seq", "h5"))
    assert main(["port", src, str(tmp_path / "ms"), "--to", "mindspore"]) == 0
    assert sorted(os.listdir(tmp_path / "ms")) == ["PORT.md", "model.ckpt", "model.py"]
    bad = str(gd.model_path("tf_keras", "td_embed_stack", "keras"))
    assert main(["port", bad, str(tmp_path / "no"), "--to", "mindspore"]) == 3
    assert not (tmp_path / "no").exists()


def _activation_cases():
    """(Keras name, generation, expression key) for every written activation."""
    from lstm_bridge.models.port_mindspore import ACTIVATIONS

    out = []
    for key in sorted(ACTIVATIONS):
        for gen in (2, 3):
            name = "hard_sigmoid" if key.startswith("hard_sigmoid") else key
            if key.startswith("hard_sigmoid") and key != f"hard_sigmoid_keras{gen}":
                continue
            out.append((name, gen, key))
    return out


ACT_X = np.linspace(-7.0, 7.0, 57, dtype=np.float32).reshape(3, 19)


def _catalogue_activation(name, gen):
    import torch

    from lstm_bridge.models.layers import CATALOGUE

    layer = CATALOGUE["Activation"](activation=name, keras_version=gen)
    with torch.no_grad():
        return layer(torch.from_numpy(ACT_X)).numpy()


@pytest.mark.parametrize("name,gen,key", _activation_cases())
def test_written_activations_match_the_catalogue(name, gen, key):
    import lstm_bridge.mindspore as mindspore
    from lstm_bridge.mindspore import ops
    from lstm_bridge.models.port_mindspore import ACTIVATIONS

    got = eval(ACTIVATIONS[key].format(x="x"), {"ops": ops, "x": mindspore.Tensor(ACT_X)})  # noqa: S307
    np.testing.assert_allclose(np.asarray(got), _catalogue_activation(name, gen), rtol=1e-6, atol=1e-6)


_MS_RUNNER = r"""
import importlib.util, json, sys
import numpy as np
import mindspore
mindspore.set_context(mode=mindspore.PYNATIVE_MODE, device_target="CPU")
jobs = json.load(open(sys.argv[1]))
for job in jobs:
    spec = importlib.util.spec_from_file_location("port_" + job["tag"], job["model"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.load()
    with np.load(job["inputs"]) as data:
        xs = [mindspore.Tensor(data[f"in{i}"]) for i in range(len(data.files))]
    if job.get("holes"):  # the full batch has a hole in a Masking mask: construct must refuse it
        with np.load(job["holes"]) as data:
            full = [mindspore.Tensor(data[f"in{i}"]) for i in range(len(data.files))]
        try:
            net(*full)
            job["refused"] = ""
        except ValueError as exc:
            job["refused"] = str(exc)
        json.dump({"refused": job["refused"]}, open(job["outputs"] + ".json", "w"))
    out = net(*xs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    np.savez(job["outputs"], **{f"out{i}": o.asnumpy() for i, o in enumerate(outs)})
    print(job["tag"], "ran in MindSpore", mindspore.__version__)
acts = json.load(open(sys.argv[2]))
x = mindspore.Tensor(np.load(sys.argv[3]))
from mindspore import ops
np.savez(sys.argv[4], **{k: eval(expr, {"ops": ops, "x": x}).asnumpy() for k, expr in acts.items()})
"""


@pytest.mark.live
@pytest.mark.skipif(not MS_PYTHON.exists(), reason="the MindSpore golden environment (.golden-venvs/ms) is absent")
def test_ported_models_run_in_real_mindspore(tmp_path):
    jobs, expected = [], {}
    for flavour, model_id, _ in CASES:
        if _refusal(flavour, model_id):
            continue
        _, out = _port(tmp_path, flavour, model_id)
        entry, arrays = gd.model_entry(flavour, model_id)
        xs, keep = _rows(entry, arrays)
        tag = f"{flavour}_{model_id}"
        np.savez(tmp_path / f"{tag}_in.npz", **{f"in{i}": x[keep] for i, x in enumerate(xs)})
        job = {
            "tag": tag,
            "model": str(out / "model.py"),
            "inputs": str(tmp_path / f"{tag}_in.npz"),
            "outputs": str(tmp_path / f"{tag}_out.npz"),
        }
        if not keep.all():
            np.savez(tmp_path / f"{tag}_full.npz", **{f"in{i}": x for i, x in enumerate(xs)})
            job["holes"] = str(tmp_path / f"{tag}_full.npz")
        jobs.append(job)
        expected[tag] = [arrays[k][keep] for k in entry["outputs"]]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "runner.py").write_text(_MS_RUNNER)
    from lstm_bridge.models.port_mindspore import ACTIVATIONS

    (tmp_path / "acts.json").write_text(json.dumps({k: v.format(x="x") for k, v in ACTIVATIONS.items()}))
    np.save(tmp_path / "act_x.npy", ACT_X)
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_v="3", PYTHONPATH="")
    done = subprocess.run(
        [str(MS_PYTHON), str(tmp_path / "runner.py"), str(tmp_path / "jobs.json")]
        + [str(tmp_path / n) for n in ("acts.json", "act_x.npy", "acts_out.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    errors = {}
    for job in jobs:
        with np.load(job["outputs"]) as data:
            got = [data[f"out{i}"] for i in range(len(data.files))]
        want = expected[job["tag"]]
        assert len(got) == len(want), job["tag"]
        errors[job["tag"]] = max(gd.model_error(g, w) for g, w in zip(got, want))
        if job.get("holes"):
            refused = json.loads(open(job["outputs"] + ".json").read())["refused"]
            assert "right-padded" in refused, f"{job['tag']}: real MindSpore ran a mask with holes: {refused!r}"
    print("max scaled |real MindSpore - Keras| per model:", json.dumps(errors, indent=1), file=sys.stderr)
    bad = {k: v for k, v in errors.items() if not v <= MS_TOL}
    assert not bad, bad
    # every written activation in real MindSpore (its CPU tanh / sigmoid are approximations: measured 1e-4)
    act_errors = {}
    with np.load(tmp_path / "acts_out.npz") as data:
        for name, gen, key in _activation_cases():
            act_errors[f"{key} (keras {gen})"] = gd.model_error(data[key], _catalogue_activation(name, gen))
    print("max scaled |real MindSpore - catalogue| per activation:", json.dumps(act_errors, indent=1), file=sys.stderr)
    bad = {k: v for k, v in act_errors.items() if not v <= MS_TOL}
    assert not bad, bad


TF_PYTHON = gd.ROOT / ".golden-venvs" / "tf" / "bin" / "python"

#: a Keras model built in the test (both generations): go_backwards with return_sequences over a mask (LSTM, GRU),
#: SimpleRNN(relu) with return_state, Bidirectional(GRU, ave), masked GlobalAveragePooling1D, Dense(hard_sigmoid)
_KERAS_MAKER = r"""
import os, sys, numpy as np
gen, folder = sys.argv[1], sys.argv[2]
if gen == "2":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
else:
    import keras
L = keras.layers
inp = keras.Input((6, 3))
m = L.Masking(0.0)(inp)
a = L.LSTM(4, go_backwards=True, return_sequences=True)(m)
b = L.GRU(3, go_backwards=True, return_sequences=True)(a)
c, h = L.SimpleRNN(5, return_sequences=True, return_state=True, activation="relu")(b)
d = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="ave")(c)
f = L.Concatenate()([L.GlobalAveragePooling1D()(d), h])
model = keras.Model(inp, L.Dense(2, activation="hard_sigmoid")(f))
rng = np.random.RandomState(0)
model.set_weights([rng.randn(*w.shape).astype("float32") * 0.5 for w in model.get_weights()])
x = rng.randn(4, 6, 3).astype("float32")
for i, n in enumerate([6, 2, 4, 1]):
    x[i, n:] = 0
np.save(os.path.join(folder, "x.npy"), x)
np.save(os.path.join(folder, "y.npy"), model.predict(x, verbose=0))
model.save(os.path.join(folder, "model.keras"))
"""


@pytest.mark.live
@pytest.mark.skipif(
    not (MS_PYTHON.exists() and TF_PYTHON.exists()), reason="the golden environments (.golden-venvs/tf, ms) are absent"
)
@pytest.mark.parametrize("gen", ["2", "3"])
def test_go_backwards_model_built_in_keras_runs_in_real_mindspore(tmp_path, gen):
    from lstm_bridge.models.port_mindspore import write_port_mindspore

    (tmp_path / "make.py").write_text(_KERAS_MAKER)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH="", OMP_NUM_THREADS="1")
    made = subprocess.run(
        [str(TF_PYTHON), str(tmp_path / "make.py"), gen, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    p = write_port_mindspore(str(tmp_path / "model.keras"), str(tmp_path / "port"))
    assert p.outputs_max_diff <= MS_TOL
    runner = (
        "import importlib.util, sys, numpy as np, mindspore\n"
        "spec = importlib.util.spec_from_file_location('port', sys.argv[1])\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "np.save(sys.argv[3], mod.load()(mindspore.Tensor(np.load(sys.argv[2]))).asnumpy())\n"
    )
    (tmp_path / "run.py").write_text(runner)
    args = [str(tmp_path / "port" / "model.py"), str(tmp_path / "x.npy"), str(tmp_path / "ms.npy")]
    ran = subprocess.run(
        [str(MS_PYTHON), str(tmp_path / "run.py"), *args], env=dict(env, GLOG_v="3"), capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    err = gd.model_error(np.load(tmp_path / "ms.npy"), np.load(tmp_path / "y.npy"))
    print(f"Keras generation {gen}: max scaled |real MindSpore - Keras| {err:.3g}", file=sys.stderr)
    assert err <= MS_TOL
