"""``lstm-bridge explain "<layer call>"``: the equivalent call on the other side, or why there is none."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import EXIT_OK, EXIT_USAGE, CliError, Output

HELP = "explain a Keras or MindSpore LSTM, GRU or simple-RNN call in terms of the other framework"
DESCRIPTION = """Explain one layer call, e.g.

  lstm-bridge explain "tf.keras.layers.LSTM(16, return_sequences=True, return_state=True)"
  lstm-bridge explain "mindspore.nn.LSTM(10, 16, 2, bidirectional=True, batch_first=True)"
  lstm-bridge explain "tf.keras.layers.GRU(64, reset_after=False)"
  lstm-bridge explain "mindspore.nn.RNN(10, 16, nonlinearity='relu')"

The call is parsed with Python's ast module (literal arguments only; nothing is evaluated). The
answer gives the equivalent call on the other side, how inputs, outputs, states and weights must be
rearranged, and, when there is no equivalent (hard_sigmoid, go_backwards alone, stateful, a GRU's
reset_after=False, a SimpleRNN activation other than tanh/relu, ...), why.
Exit code 0 whether or not the call is expressible; 2 when the text is not an LSTM, GRU or RNN call."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("call", help='the layer call, quoted, e.g. "tf.keras.layers.LSTM(16)"')
    p.add_argument(
        "--keras-version",
        type=int,
        choices=(2, 3),
        default=None,
        help="which Keras 'hard_sigmoid' is meant (2: clip(0.2x+0.5, 0, 1); 3: relu6(x+3)/6)",
    )
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..explain import ExplainError, explain, format_explanation

    try:
        expl = explain(args.call, keras_version=args.keras_version)
    except ExplainError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from exc
    if args.json:
        out.line(
            json.dumps(
                {
                    "source": expl.source.framework,
                    "expressible": expl.expressible,
                    "target": expl.target,
                    "blocking": expl.blocking,
                    "rearrange": expl.rearrange,
                    "notes": expl.notes,
                },
                indent=2,
            )
        )
    else:
        out.line(format_explanation(expl))
    return EXIT_OK
