"""Real GRU / SimpleRNN model files from the real frameworks, with inputs and outputs (issue 11 item 5).

Writes ``tests/fixtures/family_files/<name>.<suffix>`` and ``<name>.npz`` (``x``: the input, ``y``: what the
framework computed on it) for ``tests/test_formats_family.py``. Small on purpose (units <= 4, T = 5, B = 2).

Run (what ``make golden-family-files`` does; each flavour in its own environment)::

    TF_USE_LEGACY_KERAS=1 .golden-venvs/tf/bin/python tools/golden_family_files.py tf_keras
    .golden-venvs/tf/bin/python tools/golden_family_files.py keras3
    .golden-venvs/ms/bin/python tools/golden_family_files.py mindspore

Files (each one model; ``y`` the model's output on ``x``):

* ``tk_family`` (tf_keras 2.21): ``GRU(4, reset_after=False, recurrent_activation="hard_sigmoid")`` ->
  ``Bidirectional(SimpleRNN(3, activation="relu"))`` -> ``Bidirectional(GRU(2))`` as a full ``.h5``, a legacy
  weights-only ``_weights.h5`` and a ``.weights.h5``.
* ``tk_cudnn_gru`` (TF 1.x's ``tf.compat.v1.keras.layers.CuDNNGRU(4)``, still built and saved by TF 2.21 on a
  CPU; it runs on a GPU only, so ``y`` is tf_keras's own reading of the file: a ``GRU(4, reset_after=True,
  recurrent_activation="sigmoid")`` model that ``load_weights`` the CuDNNGRU file through tf_keras's legacy
  converter (``_convert_rnn_weights``), which is what TF defines those weights to compute).
* ``tk_cudnn_lstm``: the same for ``tf.compat.v1.keras.layers.CuDNNLSTM(3)`` (an ``LSTM(3)`` reads it).
* ``k3_family`` (Keras 3.15): ``LSTM(4)`` -> ``GRU(3, recurrent_activation="hard_sigmoid")`` ->
  ``Bidirectional(GRU(2, reset_after=False))`` -> ``SimpleRNN(3, go_backwards=True)`` as ``.keras``, a legacy
  ``.h5`` and a ``.weights.h5``.
* ``ms_family`` (MindSpore 2.10): a Cell holding ``nn.GRU(3, 4, num_layers=2, bidirectional=True,
  batch_first=True)`` and ``nn.RNN(8, 3, nonlinearity="relu", batch_first=True)``, saved with
  ``save_checkpoint``; ``y`` the RNN's output on the GRU's output, ``y_gru`` the GRU's (CPU kernels).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "family_files"
T, B, I = 5, 2, 3


def _x(seed: int) -> np.ndarray:
    return np.random.RandomState(seed).uniform(-1.5, 1.5, (B, T, I)).astype(np.float32)


def _randomize(model, seed: int) -> None:
    """Weights with biases that matter (Keras initialises biases to 0)."""
    rng = np.random.RandomState(seed)
    model.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype(np.float32) for w in model.get_weights()])


def tf_keras() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    L = keras.layers
    inp = keras.Input((T, I))
    h = L.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True, name="gru_before")(inp)
    h = L.Bidirectional(L.SimpleRNN(3, activation="relu", return_sequences=True), name="bi_rnn")(h)
    h = L.Bidirectional(L.GRU(2), name="bi_gru")(h)
    m = keras.Model(inp, h, name="tk_family")
    _randomize(m, 1)
    x = _x(2)
    y = m.predict(x, verbose=0)
    m.save(OUT / "tk_family.h5")
    m.save_weights(OUT / "tk_family_weights.h5")
    m.save_weights(OUT / "tk_family.weights.h5")
    np.savez(OUT / "tk_family.npz", x=x, y=y)

    cudnn = tf.compat.v1.keras.layers.CuDNNGRU
    c = tf.compat.v1.keras.Sequential([tf.compat.v1.keras.Input((T, I)), cudnn(4, name="cudnn_gru")], name="cudnn")
    _randomize(c, 3)
    c.save(OUT / "tk_cudnn_gru.h5")
    gru = L.GRU(4, reset_after=True, recurrent_activation="sigmoid", name="cudnn_gru")
    g = keras.Sequential([keras.Input((T, I)), gru])
    g.load_weights(OUT / "tk_cudnn_gru.h5")  # tf_keras converts the CuDNNGRU weights (_convert_rnn_weights)
    x = _x(4)
    np.savez(OUT / "tk_cudnn_gru.npz", x=x, y=g.predict(x, verbose=0))

    cl = tf.compat.v1.keras.Sequential(
        [tf.compat.v1.keras.Input((T, I)), tf.compat.v1.keras.layers.CuDNNLSTM(3, name="cudnn_lstm")], name="cudnn2"
    )
    _randomize(cl, 9)
    cl.save(OUT / "tk_cudnn_lstm.h5")
    lstm = keras.Sequential([keras.Input((T, I)), L.LSTM(3, name="cudnn_lstm")])
    lstm.load_weights(OUT / "tk_cudnn_lstm.h5")  # the same legacy conversion for CuDNNLSTM
    x = _x(10)
    np.savez(OUT / "tk_cudnn_lstm.npz", x=x, y=lstm.predict(x, verbose=0))


def keras3() -> None:
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((T, I))
    h = L.LSTM(4, return_sequences=True, name="lstm")(inp)
    h = L.GRU(3, recurrent_activation="hard_sigmoid", return_sequences=True, name="gru_hs")(h)
    h = L.Bidirectional(L.GRU(2, reset_after=False, return_sequences=True), name="bi_gru_before")(h)
    h = L.SimpleRNN(3, go_backwards=True, name="rnn_back")(h)
    m = keras.Model(inp, h, name="k3_family")
    _randomize(m, 5)
    x = _x(6)
    y = np.asarray(m.predict(x, verbose=0))
    m.save(OUT / "k3_family.keras")
    m.save(OUT / "k3_family.h5")
    m.save_weights(OUT / "k3_family.weights.h5")
    np.savez(OUT / "k3_family.npz", x=x, y=y)


def mindspore() -> None:
    import mindspore as ms
    from mindspore import nn

    ms.set_seed(0)
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")

    class Net(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(I, 4, num_layers=2, bidirectional=True, batch_first=True)
            self.rnn = nn.RNN(8, 3, nonlinearity="relu", batch_first=True)

        def construct(self, x):
            g, _ = self.gru(x)
            y, _ = self.rnn(g)
            return g, y

    net = Net()
    rng = np.random.RandomState(7)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(rng.uniform(-0.6, 0.6, p.shape).astype(np.float32)))
    x = _x(8)
    g, y = net(ms.Tensor(x))
    ms.save_checkpoint(net, str(OUT / "ms_family.ckpt"))
    np.savez(OUT / "ms_family.npz", x=x, y=y.asnumpy(), y_gru=g.asnumpy())


def main(argv: list) -> int:
    if len(argv) != 1 or argv[0] not in ("tf_keras", "keras3", "mindspore"):
        print("usage: golden_family_files.py tf_keras|keras3|mindspore", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    {"tf_keras": tf_keras, "keras3": keras3, "mindspore": mindspore}[argv[0]]()
    print(f"wrote {argv[0]} files to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
