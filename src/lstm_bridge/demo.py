"""``lstm-bridge demo``: the seed's code example in both APIs, and their parity.

The seed (MindSpore r1.10, "Function Differences with tf.keras.layers.LSTM") builds
``nn.LSTM(10, 16, 1, bidirectional=True)`` on ``x = ones(5, 3, 10)`` (time-major) and calls it with h0 and
c0 of shape (1, 3, 16) — wrong for a bidirectional net (real MindSpore 2.10 dies with an unrelated
IndexError). This demo shows our error, the corrected call, the same network in the Keras API with the
weights copied by the seed's mapping (``kernel = W_ih.T``, ``recurrent_kernel = W_hh.T``,
``bias = b_ih + b_hh``), and the max |difference| of outputs and states; then ``torch.nn.LSTM``.
"""

from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np
import torch


def _line(text: str = "") -> None:
    print(text)


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


def main(argv: Optional[List[str]] = None, out: Callable[[str], None] = _line) -> int:
    """Run the demo; returns 0 when every parity check is within 1e-5."""
    from .keras import LSTM as KerasLSTM, Bidirectional
    from .mindspore import LSTM as MindSporeLSTM

    np.random.seed(0)
    torch.manual_seed(0)
    out("lstm-bridge demo: the seed's example in the MindSpore and the Keras API, on one engine")
    out("")
    out("[MindSpore API]  net = LSTM(10, 16, 1, bidirectional=True)")
    net = MindSporeLSTM(10, 16, 1, bidirectional=True)
    x = torch.ones(5, 3, 10)
    wrong = torch.ones(1, 3, 16)
    out("  x = ones(5, 3, 10)  (time, batch, features); h0 = c0 = ones(1, 3, 16)   # the seed's h0")
    try:
        net(x, (wrong, wrong))
        out("  !! the wrong h0 was accepted")
        return 1
    except ValueError as exc:
        out(f"  net(x, (h0, c0)) -> ValueError: {exc}")
    h0 = torch.ones(2, 3, 16)
    c0 = torch.ones(2, 3, 16)
    out("  corrected: h0 = c0 = ones(2, 3, 16)              # (num_layers * num_directions, batch, hidden)")
    output, (hn, cn) = net(x, (h0, c0))
    out(f"  output {tuple(output.shape)}   hn {tuple(hn.shape)}   cn {tuple(cn.shape)}")
    out("")

    out("[Keras API]  Bidirectional(LSTM(16, return_sequences=True, return_state=True))")
    layer = Bidirectional(KerasLSTM(16, return_sequences=True, return_state=True))
    layer.build((3, 5, 10))
    x_keras = x.transpose(0, 1).numpy()  # Keras is batch-major: (3, 5, 10)
    params = dict(net.named_parameters())
    weights = []
    for suffix in ("_l0", "_l0_reverse"):
        w_ih, w_hh = params["weight_ih" + suffix], params["weight_hh" + suffix]
        bias = params["bias_ih" + suffix] + params["bias_hh" + suffix]
        weights += [w_ih.detach().numpy().T, w_hh.detach().numpy().T, bias.detach().numpy()]
    layer.set_weights(weights)
    out("  weights copied by the seed's mapping: kernel = W_ih.T, recurrent_kernel = W_hh.T, bias = b_ih + b_hh")
    k_out, h_f, c_f, h_b, c_b = layer(x_keras, initial_state=[h0[0], c0[0], h0[1], c0[1]])
    out("  layer(x.transpose(0, 1), initial_state=[h0[0], c0[0], h0[1], c0[1]])")
    out(f"  output {tuple(k_out.shape)}   h_f/c_f/h_b/c_b {tuple(h_f.shape)} each")
    out("  MindSpore output = Keras output transposed to time-major; hn[0], hn[1] = Keras h_f, h_b;")
    out("  the output's last axis is [forward | backward] in both")
    diffs = {
        "output": _maxdiff(output, k_out.transpose(0, 1)),
        "h (fwd, bwd)": max(_maxdiff(hn[0], h_f), _maxdiff(hn[1], h_b)),
        "c (fwd, bwd)": max(_maxdiff(cn[0], c_f), _maxdiff(cn[1], c_b)),
    }
    out("")
    out("[torch.nn.LSTM]  same state_dict, loaded directly (MindSpore's names are PyTorch's)")
    ref = torch.nn.LSTM(10, 16, 1, bidirectional=True)
    ref.load_state_dict(net.state_dict())
    t_out, (t_hn, t_cn) = ref(x, (h0, c0))
    diffs["torch output"] = _maxdiff(output, t_out)
    diffs["torch hn, cn"] = max(_maxdiff(hn, t_hn), _maxdiff(cn, t_cn))
    out("")
    out("max |difference| (MindSpore API vs Keras API vs torch.nn.LSTM):")
    for name, value in diffs.items():
        out(f"  {name:<14} {value:.3e}")
    ok = all(v <= 1e-5 for v in diffs.values())
    out("")
    out("parity: OK (all within 1e-5)" if ok else "parity: FAILED (above 1e-5)")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
