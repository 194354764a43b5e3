#!/usr/bin/env python3
"""Regenerate ``tests/golden/`` from the real frameworks (issue 3).

Usage::

    python3 tools/make_golden.py                 # all flavours, each in its own golden venv (subprocess)
    python3 tools/make_golden.py --only keras3   # one flavour
    <venv python> tools/make_golden.py --flavour tf_keras --out tests/golden   # what the driver runs

Without ``--flavour`` this is a standard-library-only driver: it starts one subprocess per framework
flavour with the interpreter of that flavour's isolated environment (``.golden-venvs/tf`` for
``tf_keras`` and ``keras3``, ``.golden-venvs/ms`` for ``mindspore``; ``make golden`` creates them from
``tools/golden-requirements-*.txt``). ``tf_keras`` runs with ``TF_USE_LEGACY_KERAS=1``, ``keras3``
without it. Every process is forced onto the CPU with one thread, oneDNN graph rewrites off and fixed
seeds, so regenerating gives byte-identical files on the same kind of CPU.

Each flavour writes ``tests/golden/<flavour>.npz`` (float32 arrays, bool masks, int32 lengths, keyed
``<case id>/<name>``) and ``tests/golden/<flavour>.json`` (framework versions and, per case, its
constructor arguments and call in terms of lstm_bridge's public API; schemas in
``tools/golden_keras.py`` and ``tools/golden_ms.py``; the Keras flavours also record
``activation_names``: which activation names the generation accepts and its error text for the others).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).resolve().parent
FLAVOURS = {
    "tf_keras": (".golden-venvs/tf", {"TF_USE_LEGACY_KERAS": "1"}),
    "keras3": (".golden-venvs/tf", {"TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow"}),
    "mindspore": (".golden-venvs/ms", {}),
}
# Single-threaded, CPU-only, quiet, reproducible.
COMMON_ENV = {
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_DETERMINISTIC_OPS": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "GLOG_v": "3",
    "PYTHONWARNINGS": "ignore",
}


def _progress(flavour: str, i: int, n: int, cid: str, t0: float) -> None:
    if i == n or i % 25 == 0:
        print(f"[{flavour}] {i}/{n} cases ({cid}), {time.time() - t0:.1f}s", flush=True)


def generate(flavour: str, out_dir: Path) -> None:
    """Run inside the flavour's environment: build the cases, run them, write the two files."""
    import numpy as np

    sys.path.insert(0, str(TOOLS))
    from golden_common import FORMAT_VERSION, write_json, write_npz

    np.random.seed(0)
    t0 = time.time()
    versions: Dict[str, str] = {"numpy": np.__version__, "python": sys.version.split()[0]}
    extra: Dict[str, Any] = {}  # flavour-specific records beside the cases (Keras: activation_names)
    if flavour in ("tf_keras", "keras3"):
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.random.set_seed(0)
        if flavour == "tf_keras":
            import tf_keras

            K = tf.keras
            if not K.layers.LSTM.__module__.startswith("tf_keras"):
                raise RuntimeError(
                    f"expected tf_keras's LSTM with TF_USE_LEGACY_KERAS=1, got {K.layers.LSTM.__module__}"
                )
            versions.update(tensorflow=tf.__version__, tf_keras=tf_keras.__version__)
        else:
            import keras as K

            if not K.__version__.startswith("3."):
                raise RuntimeError(f"expected Keras 3, got {K.__version__}")
            K.utils.set_random_seed(0)
            versions.update(tensorflow=tf.__version__, keras=K.__version__, keras_backend=K.backend.backend())
        import golden_keras as mod

        items = mod.build_cases(flavour)
        extra["activation_names"] = mod.activation_names(K)

        def run(case: Dict[str, Any], arrays: Dict[str, Any]) -> Dict[str, Any]:
            return mod.run_case(case, arrays, K, tf)
    elif flavour == "mindspore":
        import mindspore as ms

        ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
        ms.set_seed(0)
        versions.update(mindspore=ms.__version__)
        import golden_ms as mod

        items = mod.build_cases()

        def run(case: Dict[str, Any], arrays: Dict[str, Any]) -> Dict[str, Any]:
            return mod.run_case(case, arrays, ms)
    else:
        raise SystemExit(f"unknown flavour {flavour!r}; expected one of {sorted(FLAVOURS)}")

    all_arrays: Dict[str, Any] = {}
    cases: List[Dict[str, Any]] = []
    print(f"[{flavour}] {len(items)} cases with {versions}", flush=True)
    for i, (case, arrays) in enumerate(items, 1):
        try:
            produced = run(case, arrays)
        except Exception as exc:  # name the case, then fail: a golden set must be complete
            raise RuntimeError(f"[{flavour}] case {case['id']} ({case['family']}) failed: {exc}") from exc
        for k in list(arrays) + list(produced):
            if k in all_arrays:
                raise RuntimeError(f"duplicate array key {k}")
        all_arrays.update(arrays)
        all_arrays.update(produced)
        cases.append(case)
        _progress(flavour, i, len(items), case["id"], t0)
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, v in all_arrays.items():
        if v.dtype == np.float64:
            raise RuntimeError(f"{k}: float64 array; everything must be float32")
    write_npz(str(out_dir / f"{flavour}.npz"), all_arrays)
    write_json(
        str(out_dir / f"{flavour}.json"),
        {
            "format": FORMAT_VERSION,
            "flavour": flavour,
            "generator": "tools/make_golden.py",
            "versions": versions,
            "settings": {
                k: v
                for k, v in sorted({**COMMON_ENV, **FLAVOURS[flavour][1]}.items())
                if k not in ("PYTHONWARNINGS", "GLOG_v")
            },
            "n_cases": len(cases),
            "n_grad_cases": sum(1 for c in cases if c["grad"] is not None),
            "cases": cases,
            **extra,
        },
    )
    n_grad = sum(1 for c in cases if c["grad"] is not None)
    print(f"[{flavour}] wrote {len(cases)} cases ({n_grad} with gradients) in {time.time() - t0:.1f}s", flush=True)


def drive(flavours: List[str], out_dir: Path) -> int:
    """Run each flavour's generator in its own environment (subprocess)."""
    t_all = time.time()
    for flavour in flavours:
        venv, extra = FLAVOURS[flavour]
        py = ROOT / venv / "bin" / "python"
        if not py.exists():
            print(f"missing {py}: run `make golden` (it creates the golden environments)", file=sys.stderr)
            return 2
        env = dict(os.environ)
        env.update(COMMON_ENV)
        env.update(extra)
        env.pop("PYTHONPATH", None)
        t0 = time.time()
        rc = subprocess.call(
            [str(py), str(Path(__file__).resolve()), "--flavour", flavour, "--out", str(out_dir)],
            env=env,
            cwd=str(ROOT),
        )
        if rc != 0:
            print(f"[{flavour}] generator failed with exit code {rc}", file=sys.stderr)
            return rc
        print(f"[{flavour}] done in {time.time() - t0:.1f}s", flush=True)
    print(f"all flavours done in {time.time() - t_all:.1f}s", flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flavour", choices=sorted(FLAVOURS), help="generate one flavour in THIS interpreter")
    ap.add_argument("--only", choices=sorted(FLAVOURS), action="append", help="driver: restrict to flavour(s)")
    ap.add_argument("--out", default=str(ROOT / "tests" / "golden"), help="output folder (default tests/golden)")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    if args.flavour:
        generate(args.flavour, out_dir)
        return 0
    return drive(args.only or list(FLAVOURS), out_dir)


if __name__ == "__main__":
    sys.exit(main())
