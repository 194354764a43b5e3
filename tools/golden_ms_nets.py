"""Record real MindSpore 2.10 networks in model-zoo shapes for tests/test_mindspore_nets.py (issue 14 item 6).

    python3 tools/golden_ms_nets.py         # re-runs itself with .golden-venvs/ms/bin/python
    .golden-venvs/ms/bin/python tools/golden_ms_nets.py --out tests/golden/mindspore_api

The networks are tests/fixtures/mindspore_api/nets.py (MindSpore source, ``import mindspore ...``). For each:
the network is built (seeded; BatchNorm moving statistics set to random values so they matter), saved with
``mindspore.save_checkpoint`` as ``nets/<id>.ckpt``, and run in inference mode on seeded inputs without and with
``seq_length``; inputs and logits go to ``nets.npz``, parameter names and shapes to ``nets.json``. The model zoo's
own files (tests/fixtures/mindspore_api/zoo, verbatim) are run too, with seeded parameters (``zoo`` entries).

    .golden-venvs/ms/bin/python tools/golden_ms_nets.py --check DIR

loads ``DIR/<id>.ckpt`` (written by lstm-bridge's ``save_checkpoint``) into each real MindSpore network with
``load_checkpoint`` / ``load_param_into_net`` and writes ``DIR/check.npz``: the logits on the recorded inputs (with
and without ``seq_length``) and what was left unloaded (tests/test_mindspore_nets_live.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MS_PYTHON = os.path.join(ROOT, ".golden-venvs", "ms", "bin", "python")
OUT = os.path.join(ROOT, "tests", "golden", "mindspore_api")
SEED = 1411


def record(out):
    sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "mindspore_api"))
    import mindspore as ms
    import nets
    import numpy as np
    from mindspore import Tensor

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    os.makedirs(os.path.join(out, "nets"), exist_ok=True)
    meta = {"mindspore": ms.__version__, "nets": {}}
    store = {}
    for k, (net_id, (build, make_inputs, lengths)) in enumerate(sorted(nets.NETS.items())):
        ms.set_seed(SEED + k)
        net = build()
        rng = np.random.RandomState(SEED + k)
        for name, p in net.parameters_and_names():
            if "moving_mean" in name:
                p.set_data(Tensor(rng.uniform(-0.3, 0.3, p.shape).astype(np.float32)))
            elif "moving_variance" in name:
                p.set_data(Tensor(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
        ms.save_checkpoint(net, os.path.join(out, "nets", net_id + ".ckpt"))
        net.set_train(False)
        inputs = make_inputs(rng)
        for i, a in enumerate(inputs):
            store[f"{net_id}/input{i}"] = a
        store[f"{net_id}/seq_length"] = lengths
        tensors = [Tensor(a) for a in inputs]
        store[f"{net_id}/logits"] = net(*tensors).asnumpy()
        store[f"{net_id}/logits_seq"] = net(*tensors, seq_length=Tensor(lengths)).asnumpy()
        meta["nets"][net_id] = {
            "class": type(net).__name__,
            "inputs": len(inputs),
            "parameters": [[n, list(p.shape)] for n, p in net.parameters_dict().items()],
        }
    record_zoo(out, meta, store)
    np.savez_compressed(os.path.join(out, "nets.npz"), **store)
    with open(os.path.join(out, "nets.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"golden_ms_nets: {len(meta['nets'])} networks -> {out}")


def zoo_modules():
    """The verbatim model-zoo files of tests/fixtures/mindspore_api/zoo, imported (real MindSpore)."""
    import importlib.util

    fixtures = os.path.join(ROOT, "tests", "fixtures", "mindspore_api")
    modules = {}
    for name in ("lstm", "crnn", "deepspeech2", "textrcnn", "builders"):
        path = os.path.join(fixtures, "zoo_builders.py" if name == "builders" else os.path.join("zoo", name + ".py"))
        spec = importlib.util.spec_from_file_location(f"zoo_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules


def flatten_outputs(value):
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in flatten_outputs(v)]
    return [value.asnumpy()]


def record_zoo(out, meta, store):
    """The model zoo's own files (verbatim), their parameters set to ``builders.parameter_values`` (too large to keep
    as checkpoints), run without seq_length (the zoo's constructs take none); outputs into ``store``."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    modules = zoo_modules()
    values = modules["builders"].parameter_values
    meta["zoo"] = {}
    for k, (net_id, (build, make_inputs)) in enumerate(sorted(modules["builders"].builders(modules, Tensor).items())):
        ms.set_seed(SEED + 100 + k)
        np.random.seed(SEED + 100 + k)
        net = build()
        for name, p in net.parameters_dict().items():
            p.set_data(Tensor(values(name, tuple(p.shape))).astype(p.dtype))
        net.set_train(False)
        inputs = make_inputs(np.random.RandomState(SEED + 100 + k))
        for i, a in enumerate(inputs):
            store[f"zoo/{net_id}/input{i}"] = a
        outputs = flatten_outputs(net(*[Tensor(a) for a in inputs]))
        for i, a in enumerate(outputs):
            store[f"zoo/{net_id}/output{i}"] = a
        meta["zoo"][net_id] = {
            "inputs": len(inputs),
            "outputs": [str(a.dtype) for a in outputs],
            "parameters": [[n, list(p.shape), str(p.asnumpy().dtype)] for n, p in net.parameters_dict().items()],
        }


def check(directory):
    """Load lstm-bridge's checkpoints into the real networks; logits and unloaded names to check.npz."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "mindspore_api"))
    import mindspore as ms
    import nets
    import numpy as np
    from mindspore import Tensor

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    with np.load(os.path.join(OUT, "nets.npz")) as data:
        recorded = {k: data[k] for k in data.files}
    store = {}
    for net_id, (build, _, _) in sorted(nets.NETS.items()):
        path = os.path.join(directory, net_id + ".ckpt")
        if not os.path.exists(path):
            continue
        net = build()
        not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(path))
        store[f"{net_id}/unloaded"] = np.array(not_loaded + unused, dtype=str)
        net.set_train(False)
        inputs = [Tensor(recorded[k]) for k in sorted(recorded) if k.startswith(f"{net_id}/input")]
        store[f"{net_id}/logits"] = net(*inputs).asnumpy()
        store[f"{net_id}/logits_seq"] = net(*inputs, seq_length=Tensor(recorded[f"{net_id}/seq_length"])).asnumpy()
    np.savez(os.path.join(directory, "check.npz"), **store)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--check", metavar="DIR", help="load lstm-bridge's DIR/<id>.ckpt into the real networks")
    args = parser.parse_args(argv)
    try:
        import mindspore  # noqa: F401
    except ImportError:
        if not os.path.exists(MS_PYTHON):
            sys.exit(f"golden_ms_nets: MindSpore is not importable and {MS_PYTHON} does not exist (make golden-envs)")
        env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_v="3")
        extra = ["--check", args.check] if args.check else ["--out", args.out]
        sys.exit(subprocess.call([MS_PYTHON, os.path.abspath(__file__), *extra], env=env))
    if args.check:
        check(args.check)
    else:
        record(args.out)


if __name__ == "__main__":
    main()
