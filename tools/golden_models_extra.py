#!/usr/bin/env python3
"""Small golden WHOLE Keras models for two ``load_model`` regressions, recorded with the real Keras.

Usage::

    python3 tools/golden_models_extra.py         # both generations, each in the TF golden venv (subprocess)
    <venv python> tools/golden_models_extra.py --flavour keras3 --out tests/golden/models_extra

Models (see :data:`MODELS`):

* ``nested_twice``: a nested functional model with two inputs called twice, its FIRST call a model output.
  Keras 3 writes that output as ``["inner", 1, 0]`` (``output_layers`` number a nested Functional's nodes
  from 1) while call arguments name it ``["inner", 0, 0]``; tf_keras numbers both from 1.
* ``attr_names``: layers named ``to``, ``forward``, ``training``, ``state_dict`` (torch.nn.Module
  attribute names; Keras allows any name).

Each generation writes ``<flavour>/<id>.keras`` (zip rewritten byte-stable as ``tools/golden_models.py``
does), ``<flavour>/<id>.h5`` and ``<flavour>.npz`` with ``<id>/in<k>`` (right-padded batches, the
helpers of ``tools/golden_models.py``: same seeds, B = 5, T = 7) and ``<id>/out<k>`` (Keras's
``model(inputs, training=False)``, flattened in output order). Reruns give identical ``.keras`` and
``.npz`` bytes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

import golden_models as G  # noqa: E402  (the seeds, inputs, weights and zip normalisation of the main set)

OUT_DEFAULT = G.ROOT / "tests" / "golden" / "models_extra"


def m_nested_twice(K: Any) -> Any:
    """inner = Model([a, b], Add(Dense(a), Dense(b))); outputs [inner(x, y), LSTM(inner(y, x)), inner(y, x)]."""
    L = K.layers
    a = K.Input((G.STEPS, 4), name="a")
    b = K.Input((G.STEPS, 4), name="b")
    inner = K.Model([a, b], L.Add()([L.Dense(3)(a), L.Dense(3, use_bias=False)(b)]), name="inner")
    x = K.Input((G.STEPS, 4), name="x")
    y = K.Input((G.STEPS, 4), name="y")
    o1 = inner([x, y])
    o2 = inner([y, x])
    z = L.LSTM(3, name="lstm")(o2)
    return K.Model([x, y], [o1, z, o2], name="nested_twice")


def m_attr_names(K: Any) -> Any:
    """Embedding 'to' (mask_zero) -> LSTM 'forward' -> Dense 'training' -> GRU 'state_dict' -> Dense 'keys'."""
    L = K.layers
    t = K.Input((G.STEPS,), dtype="int32", name="tokens")
    h = L.Embedding(12, 4, mask_zero=True, name="to")(t)
    h = L.LSTM(5, return_sequences=True, name="forward")(h)
    h = L.Dense(4, activation="tanh", name="training")(h)
    h = L.GRU(3, name="state_dict")(h)
    return K.Model(t, L.Dense(2, activation="softmax", name="keys")(h), name="attr_names")


MODELS: Dict[str, Callable[[Any], Any]] = {"nested_twice": m_nested_twice, "attr_names": m_attr_names}


def generate(flavour: str, out: Path) -> None:
    import numpy as np

    if flavour == "tf_keras":
        import tensorflow as tf
        import tf_keras as K
    else:
        import keras as K
        import tensorflow as tf
    tf.random.set_seed(0)
    K.utils.set_random_seed(0)
    (out / flavour).mkdir(parents=True, exist_ok=True)
    arrays: Dict[str, Any] = {}
    for model_id, build in MODELS.items():
        model = build(K)
        G.randomise_weights(model_id, model)
        inputs = G.make_inputs(model_id, model)
        xs = [tf.constant(x) for _, x, _, _ in inputs]
        preds = G._flat(model(xs if len(xs) > 1 else xs[0], training=False))
        for k, (_, x, _, _) in enumerate(inputs):
            arrays[f"{model_id}/in{k}"] = x
        for k, p in enumerate(preds):
            arrays[f"{model_id}/out{k}"] = np.asarray(p, dtype=np.float32)
        for fmt in ("keras", "h5"):
            path = out / flavour / f"{model_id}.{fmt}"
            if path.exists():
                path.unlink()
            model.save(str(path))
            if fmt == "keras":
                G._normalise_keras_zip(path)
        print(f"{flavour}/{model_id}: {len(inputs)} input(s), {len(preds)} output(s)")
    with open(out / f"{flavour}.npz", "wb") as fh:
        np.savez(fh, **{k: arrays[k] for k in sorted(arrays)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flavour", choices=sorted(G.FLAVOURS))
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = ap.parse_args()
    if args.flavour:
        generate(args.flavour, args.out)
        return 0
    python = G.ROOT / ".golden-venvs" / "tf" / "bin" / "python"
    for flavour, env in G.FLAVOURS.items():
        full = {**os.environ, **G.COMMON_ENV, **env}
        cmd = [str(python), __file__, "--flavour", flavour, "--out", str(args.out)]
        if subprocess.run(cmd, env=full).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
