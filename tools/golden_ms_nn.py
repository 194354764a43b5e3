"""Record MindSpore 2.10's nn Cells, ops and Tensor methods for tests/test_mindspore_nn.py and
tests/test_mindspore_ops.py (issue 14 items 1-3).

    python3 tools/golden_ms_nn.py           # re-runs itself with .golden-venvs/ms/bin/python
    .golden-venvs/ms/bin/python tools/golden_ms_nn.py --out tests/golden/mindspore_api

The cases are tests/fixtures/mindspore_api/cases.py (expressions, evaluated here in real MindSpore and in the
tests on lstm-bridge). For each Cell case: the Cell is built (seeded), its parameters replaced by random values
(``variance`` entries positive), saved with ``mindspore.save_checkpoint`` as ``cells/<id>.ckpt``, then called;
the outputs (and, for training cases, the parameters afterwards) go to ``cells.npz`` and their structure and
dtypes to ``cells.json``. Op cases: ``ops.npz`` / ``ops.json``; an expression MindSpore refuses is recorded with
its error type. Deterministic: fixed seeds, CPU, one thread.
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


def flatten(obj, leaves):
    """Structure string of ``obj`` (T tensor, A ndarray, i int, f float, b bool, s str, (...) sequence) and its
    leaves appended to ``leaves`` as NumPy arrays."""
    import numpy as np

    if hasattr(obj, "asnumpy"):
        leaves.append(np.asarray(obj.asnumpy()))
        return "T"
    if isinstance(obj, np.ndarray):
        leaves.append(obj)
        return "A"
    if isinstance(obj, bool):
        leaves.append(np.asarray(obj))
        return "b"
    if isinstance(obj, int):
        leaves.append(np.asarray(obj, dtype=np.int64))
        return "i"
    if isinstance(obj, float):
        leaves.append(np.asarray(obj, dtype=np.float64))
        return "f"
    if isinstance(obj, (tuple, list)):
        return "(" + ",".join(flatten(v, leaves) for v in obj) + ")"
    if obj is None:
        return "N"
    raise TypeError(f"cannot record a {type(obj).__name__}")


def namespace(ms, nn, ops, P, F, Tensor, Parameter, mstype, np, arrays):
    import mindspore.numpy as mnp

    ns = dict(ms=ms, nn=nn, ops=ops, P=P, F=F, mnp=mnp, Tensor=Tensor, Parameter=Parameter, mstype=mstype, np=np)
    ns.update({k: Tensor(v) for k, v in arrays.items()})
    return ns


def randomize(cell, seed):
    """Replace every float parameter by seeded random values (``variance`` ones in [0.5, 2))."""
    import numpy as np

    rng = np.random.RandomState(seed)
    for name, p in cell.parameters_and_names():
        shape = tuple(p.shape)
        if "variance" in name:
            values = rng.uniform(0.5, 2.0, shape)
        else:
            values = rng.uniform(-0.5, 0.5, shape)
        p.set_data(_tensor(values, p.dtype))


def _tensor(values, dtype):
    from mindspore import Tensor

    return Tensor(values, dtype)


def record(out):
    sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "mindspore_api"))
    import cases
    import mindspore as ms
    import mindspore.common.dtype as mstype
    import mindspore.nn as nn
    import numpy as np
    from mindspore import Parameter, Tensor, ops
    from mindspore.ops import functional as F, operations as P

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    arrays = cases.inputs()
    os.makedirs(os.path.join(out, "cells"), exist_ok=True)
    meta = {"mindspore": ms.__version__, "cells": {}, "ops": {}}
    store = {}
    for k, (case_id, ctor, call, train) in enumerate(cases.CELL_CASES):
        ms.set_seed(cases.SEED + k)
        ns = namespace(ms, nn, ops, P, F, Tensor, Parameter, mstype, np, arrays)
        cell = eval(ctor, ns)
        randomize(cell, cases.SEED + k)
        ckpt = os.path.join(out, "cells", case_id + ".ckpt")
        ms.save_checkpoint(cell, ckpt)
        cell.set_train(train)
        ns["cell"] = cell
        leaves = []
        structure = flatten(eval(call, ns), leaves)
        entry = {"structure": structure, "dtypes": [str(a.dtype) for a in leaves], "params": []}
        if train:
            for name, p in cell.parameters_dict().items():
                entry["params"].append(name)
                leaves.append(p.asnumpy())
        for i, a in enumerate(leaves):
            store[f"cells/{case_id}/{i}"] = a
        entry["names"] = [n for n in cell.parameters_dict()]
        meta["cells"][case_id] = entry
    for case_id, expr in cases.OP_CASES:
        ns = namespace(ms, nn, ops, P, F, Tensor, Parameter, mstype, np, arrays)
        leaves = []
        try:
            structure = flatten(eval(expr, ns), leaves)  # (MindSpore may fail only when the values are read)
        except Exception as exc:  # recorded: the test expects lstm-bridge to refuse it too
            message = str(exc)
            no_kernel = any(
                m in message for m in ("Unsupported op", "unregistered", "Create kernelmod", "not supported on")
            )
            meta["ops"][case_id] = {"error": type(exc).__name__, "message": message[:300], "no_cpu_kernel": no_kernel}
            continue
        meta["ops"][case_id] = {"structure": structure, "dtypes": [str(a.dtype) for a in leaves]}
        for i, a in enumerate(leaves):
            store[f"ops/{case_id}/{i}"] = a
    np.savez_compressed(os.path.join(out, "nn_ops.npz"), **store)
    with open(os.path.join(out, "nn_ops.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"golden_ms_nn: {len(meta['cells'])} cells, {len(meta['ops'])} ops -> {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    try:
        import mindspore  # noqa: F401
    except ImportError:
        if not os.path.exists(MS_PYTHON):
            sys.exit(f"golden_ms_nn: MindSpore is not importable and {MS_PYTHON} does not exist (make golden-envs)")
        env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_v="3")
        sys.exit(subprocess.call([MS_PYTHON, os.path.abspath(__file__), "--out", args.out], env=env))
    record(args.out)


if __name__ == "__main__":
    main()
