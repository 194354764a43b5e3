"""``lstm-bridge port IN OUT_DIR``: a whole Keras model as readable PyTorch source, its weights and a report.

The work is :func:`lstm_bridge.models.port.write_port`: ``model.py`` (one ``torch.nn.Module`` class, one
attribute per Keras layer, a forward that reads like the Keras graph), ``weights.safetensors`` (torch-native
names and layouts) and ``PORT.md`` (source, generation, per-layer differences, what was not carried), written
into a temporary folder beside OUT_DIR, verified there against ``lstm_bridge.load_model`` and only then moved
into place. Exit codes: 0 ported; 1 the port differs from ``load_model`` above ``--tol`` (nothing written);
2 usage (OUT_DIR exists and is not empty without ``--force``, OUT_DIR is a file, its parent is missing);
3 the input cannot be read or holds a layer outside the catalogue, or OUT_DIR cannot be written.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._common import EXIT_INPUT, EXIT_IO, EXIT_OK, EXIT_USAGE, EXIT_VERIFY, CliError, Output, fmt_float, os_reason

HELP = "port a whole Keras model (.keras / .h5) to readable PyTorch source and weights, verified"
DESCRIPTION = """Port the Keras full-model file IN (.keras from Keras 3 or tf_keras; legacy .h5) into OUT_DIR:

  OUT_DIR/model.py             PyTorch source importing only torch and lstm_bridge: one nn.Module class,
                               one attribute per Keras layer; build() and load(path=None)
  OUT_DIR/weights.safetensors  the weights, torch-native names and layouts (Linear weight (out, in), ...)
  OUT_DIR/PORT.md              source file and Keras version, per-layer max |difference| against
                               lstm_bridge.load_model on a padded random batch, what was not carried

Nothing is written unless the generated module, imported from the written files, reproduces
lstm_bridge.load_model layer by layer within --tol. OUT_DIR must be new or empty unless --force is given
(then it is replaced as a whole); it is never left half-written, also when interrupted."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("port", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="the Keras model file (.keras or .h5)")
    p.add_argument("output", metavar="OUT_DIR", help="the folder to write (new or empty unless --force)")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT_DIR")
    p.add_argument(
        "--to",
        choices=("torch", "mindspore"),
        default="torch",
        help="torch: model.py + weights.safetensors (default); mindspore: MindSpore source (nn.Cell) + model.ckpt",
    )
    p.add_argument(
        "--tol", type=float, default=None, help="verification tolerance (default 1e-5; 2e-4 scaled with --to mindspore)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the padded random batch (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..formats.model import FormatError
    from ..models import UnsupportedLayerError
    from ..models.port import PortError, PortMismatch, check_out_dir, write_port

    src, dst = args.input, args.output
    if args.tol is None:
        args.tol = 2e-4 if getattr(args, "to", "torch") == "mindspore" else 1e-5
    if not os.path.lexists(src):
        raise CliError(EXIT_INPUT, f"{src}: no such file")
    if os.path.isdir(src):
        raise CliError(EXIT_INPUT, f"{src}: is a directory; expected a Keras model file (.keras or .h5)")
    if not args.tol >= 0:
        raise CliError(EXIT_USAGE, f"--tol must be a non-negative number; received {args.tol}")
    try:
        check_out_dir(dst, args.force, src)
    except (FileExistsError, NotADirectoryError, FileNotFoundError) as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    if getattr(args, "to", "torch") == "mindspore":
        return _run_mindspore(args, out)
    try:
        p = write_port(src, dst, force=args.force, tol=args.tol, seed=args.seed)
    except PortMismatch as exc:
        raise CliError(EXIT_VERIFY, f"{exc}; nothing written") from None
    except (FormatError, UnsupportedLayerError, PortError) as exc:
        raise CliError(EXIT_INPUT, _naming(src, exc)) from None
    except FileExistsError as exc:  # OUT_DIR filled up while we worked
        raise CliError(EXIT_USAGE, str(exc)) from None
    except OSError as exc:
        raise CliError(EXIT_IO, f"cannot write {dst}: {os_reason(exc) or exc}") from None
    except (ValueError, NotImplementedError) as exc:
        raise CliError(EXIT_INPUT, _naming(src, exc)) from None
    worst = max((d.max_abs_diff for d in p.layers), default=0.0)
    gen = "Keras 3" if p.generation == 3 else "tf_keras / Keras 2"
    maker = f"Keras {p.keras_version}" if p.keras_version else gen
    out.line(f"ported {src} ({maker}) -> {dst}")
    out.line(f"  model.py             class {p.class_name}, {len(p.layers)} layers (build(), load(path=None))")
    out.line(f"  weights.safetensors  {len(p.state_dict)} tensors")
    out.line("  PORT.md              per-layer differences, what was not carried")
    out.line(
        f"OK: max |difference| against lstm_bridge.load_model: predictions {fmt_float(p.outputs_max_abs_diff)}, "
        f"worst layer {fmt_float(worst)} (tol {args.tol:g})"
    )
    return EXIT_OK


def _naming(src: str, exc: BaseException) -> str:
    """The error text, starting with the input's path unless it already names it."""
    text = str(exc)
    return text if text.startswith((src, os.path.abspath(src))) else f"{src}: {text}"


def _run_mindspore(args: argparse.Namespace, out: Output) -> int:
    """``--to mindspore``: :func:`lstm_bridge.models.port_mindspore.write_port_mindspore` (same exit codes)."""
    from ..formats.model import FormatError
    from ..models import UnsupportedLayerError
    from ..models.port_mindspore import PortError, PortMismatch, write_port_mindspore

    src, dst = args.input, args.output
    try:
        p = write_port_mindspore(src, dst, force=args.force, tol=args.tol, seed=args.seed)
    except PortMismatch as exc:
        raise CliError(EXIT_VERIFY, f"{exc}; nothing written") from None
    except (FormatError, UnsupportedLayerError, PortError) as exc:
        raise CliError(EXIT_INPUT, _naming(src, exc)) from None
    except FileExistsError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    except OSError as exc:
        raise CliError(EXIT_IO, f"cannot write {dst}: {os_reason(exc) or exc}") from None
    except (ValueError, NotImplementedError) as exc:
        raise CliError(EXIT_INPUT, _naming(src, exc)) from None
    out.line(f"ported {src} -> {dst} (MindSpore)")
    out.line(f"  model.py    class {p.class_name} (mindspore.nn.Cell; build(), load(path=None))")
    out.line(f"  model.ckpt  {len(p.params)} parameters (MindSpore names and layouts)")
    out.line("  PORT.md     layers, masks as seq_length, what was not carried")
    out.line(
        f"OK: max scaled |difference| against lstm_bridge.load_model on lstm_bridge.mindspore: "
        f"{fmt_float(p.outputs_max_diff)} (tol {args.tol:g})"
    )
    return EXIT_OK
