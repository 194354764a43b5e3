"""``lstm-bridge verify A B``: max |difference| of two files' recurrent (LSTM, GRU, simple-RNN) outputs and
states on random inputs."""

from __future__ import annotations

import argparse
import os
from typing import Any, List

from ._common import EXIT_INPUT, EXIT_OK, EXIT_VERIFY, CliError, Output, chain_of, fmt_float, load_model

HELP = "compare the LSTM / GRU / simple-RNN layers of two files on random inputs (exit 1 above the tolerance)"
DESCRIPTION = (
    HELP
    + """.

Both files' recurrent layers (LSTM, GRU, simple RNN; in order, or the one named by --layer) are run on the
same random inputs and initial states with their own semantics (activations as each file means them,
directions, a GRU's reset_after form); the max |difference| of every direction's output sequence and of
the final h and c (0 for GRU / RNN layers, which have no c) is reported per layer.
Whole Keras models (A a .keras / .h5 model file holding layers besides recurrent ones, and B another such
file, the folder `lstm-bridge port` wrote from A, or A's .onnx whole-model export): the final predictions
and every layer's outputs (by layer name; an .onnx gives its predictions only) on a padded batch
(right-padded, lengths drawn per row from --seed); A runs with lstm_bridge.load_model, B as a Keras file,
the port's model.py load(), or onnxruntime.
Exit codes: 0 within --tol, 1 above it or when the LSTMs do not have the same structure, 3 when a file
cannot be read."""
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("a", help="first model file")
    p.add_argument("b", help="second model file")
    p.add_argument("--tol", type=float, default=1e-5, help="largest accepted |difference| (default 1e-5)")
    p.add_argument("--layer", default=None, help="compare only the LSTM layer with this name (in both files)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the inputs (default 0)")
    p.set_defaults(run=run)


def compare_files(mf_a: Any, mf_b: Any, path_a: str, path_b: str, layer: Any = None, seed: int = 0) -> List[Any]:
    """Per-layer :class:`lstm_bridge.convert.LayerDiff` of two loaded files (CliError(1) on a mismatch)."""
    from ..convert import compare_chains

    chain_a = chain_of(mf_a, layer, path_a)
    chain_b = chain_of(mf_b, layer, path_b)
    try:
        return compare_chains(chain_a, chain_b, seed=seed)
    except ValueError as exc:
        raise CliError(
            EXIT_VERIFY, f"the recurrent layers of {path_a} and {path_b} differ in structure: {exc}"
        ) from exc


def run(args: argparse.Namespace, out: Output) -> int:
    if not args.tol >= 0:
        raise CliError(2, f"--tol must be >= 0; received {args.tol}")
    if args.layer is None and _whole_models(args.a, args.b):
        return _verify_whole_models(args, out)  # models/verify.py: predictions and every layer
    mf_a = load_model(args.a)
    mf_b = load_model(args.b)
    diffs = compare_files(mf_a, mf_b, args.a, args.b, args.layer, args.seed)
    rows = [(d.name, fmt_float(d.output), fmt_float(d.h), fmt_float(d.c)) for d in diffs]
    out.table(f"max |difference|: {args.a} vs {args.b}", ("layer", "output", "h", "c"), rows)
    worst = max(d.worst for d in diffs)
    if worst <= args.tol:
        out.line(f"OK: max |difference| {fmt_float(worst)} <= tol {args.tol:g}")
        return EXIT_OK
    out.line(f"FAILED: max |difference| {fmt_float(worst)} > tol {args.tol:g}")
    return EXIT_VERIFY


def _whole_models(a: str, b: str) -> bool:
    from ..models.onnx_export import is_whole_model
    from ..models.verify import describe_b

    # a Keras model file against its port folder or .onnx export, or two whole-model files; two files of
    # recurrent layers (or one of them) keep the recurrent-layer comparison
    if not os.path.isfile(a) or not is_whole_model(a):
        return False
    return describe_b(b) in ("port", "onnx") or (os.path.isfile(b) and is_whole_model(b))


def _verify_whole_models(args: argparse.Namespace, out: Output) -> int:
    from ..models.verify import ModelMismatch, compare_models

    if not os.path.exists(args.b):
        raise CliError(EXIT_INPUT, f"{args.b}: no such file or folder")
    try:
        res = compare_models(args.a, args.b, seed=args.seed)
    except ModelMismatch as exc:
        raise CliError(EXIT_VERIFY, f"{args.a} and {args.b} are not the same model: {exc}") from exc
    except (ValueError, OSError, KeyError, NotImplementedError) as exc:
        raise CliError(EXIT_INPUT, f"cannot compare {args.a} with {args.b}: {exc}") from exc
    rows = [(f"output {i}", fmt_float(d)) for i, d in enumerate(res.outputs)]
    rows += [(f"layer {name}", fmt_float(d)) for name, d in res.layers.items()]
    out.table(f"max |difference|: {args.a} vs {args.b} ({res.kind})", ("tensor", "max |difference|"), rows)
    out.line(f"padded batch (seed {args.seed}): lengths per row {res.lengths}")
    if res.worst <= args.tol:
        out.line(f"OK: max |difference| {fmt_float(res.worst)} <= tol {args.tol:g}")
        return EXIT_OK
    out.line(f"FAILED: max |difference| {fmt_float(res.worst)} > tol {args.tol:g}")
    return EXIT_VERIFY
