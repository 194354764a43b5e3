"""``lstm-bridge convert IN OUT``: convert a model file's LSTM weights to another format, verified.

Steps: check the output path (never an input, never an existing file or symlink without ``--force``),
load the input, check that the target can express its semantics, write to a temporary file beside OUT
(created with mode ``0666``, the kernel applies the umask), reload it and compare the LSTM outputs and
states with the input's on random inputs, and only then move it onto OUT in one step: without
``--force`` OUT is claimed atomically (a hard link that fails if anything appeared there meanwhile), with
``--force`` it is replaced (``os.replace``). Every exit path (an error, Ctrl-C, SIGTERM) removes the
temporary file: no partial output is ever left behind, and an interrupted run never touches OUT.
Errors name OUT, never the temporary file; write failures (read-only directory, disk full) are one line
with the OS reason and exit 3.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import re
from typing import Any, Iterator, List, Optional

from ..formats import atomic
from . import _signals
from ._common import (
    EXIT_INPUT,
    EXIT_IO,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY,
    CliError,
    Output,
    chain_of,
    fmt_float,
    load_model,
    os_reason,
)

HELP = "convert a model file (Keras .h5/.keras/.weights.h5, MindSpore .ckpt, .pt, .safetensors, .onnx), verified"
DESCRIPTION = """Convert the LSTM weights of IN into OUT, in the format given by --to or by OUT's suffix:

  keras-h5 (.h5)  keras-weights-h5 (.weights.h5)  keras (.keras)  mindspore-ckpt (.ckpt)
  torch (.pt/.pth)  safetensors (.safetensors)  onnx (.onnx, export only)

The output is written atomically (a temporary file beside OUT, then a rename), never over an input
file, and never over an existing OUT (a dangling symlink counts) unless --force is given; of two runs
racing for one new OUT exactly one wins. An interrupted run (Ctrl-C, SIGTERM) removes its temporary
file, leaves OUT untouched and exits 130 / 143. Before it reports success the written
file is reloaded and its LSTM outputs and states are compared with IN's on random inputs (ONNX: run
with onnxruntime); above --tol the output is removed and the exit code is 1. Layers beside the LSTMs
(Embedding, Dense, ...) are carried where the target format can hold them; the others are listed.
Semantics a MindSpore/PyTorch file cannot express (hard_sigmoid, go_backwards alone, a non-concat
merge_mode, ...) are refused with the reason (exit 3); so is a file that cannot be written (read-only
directory, disk full), in one line with the reason.

A MindSpore .ckpt (or a .pt/.safetensors state dict) does not record whether its LSTM takes batch-major
input: for --to onnx say it with --batch-first (input (B, T, I)) or --time-major ((T, B, I)); without
either the source's own layout is kept (MindSpore/PyTorch default: time-major)."""

#: input files at least this large get a progress bar (``--progress auto``)
PROGRESS_BYTES = 32 * 1024 * 1024


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "convert", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", metavar="IN", help="the model file to read")
    p.add_argument("output", metavar="OUT", help="the file to write")
    p.add_argument("--to", metavar="FORMAT", default=None, help="output format name (default: from OUT's suffix)")
    p.add_argument("--layer", metavar="NAME", default=None, help="convert only the LSTM layer with this name")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists (never an input file)")
    p.add_argument("--tol", type=float, default=1e-5, help="verification tolerance (default 1e-5)")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help=f"progress bar: auto shows it for inputs >= {PROGRESS_BYTES >> 20} MiB",
    )
    p.add_argument(
        "--rnn-nonlinearity",
        choices=("tanh", "relu"),
        default=None,
        help="the nonlinearity of the RNN layers of a MindSpore / PyTorch state dict (.ckpt / .pt / .safetensors "
        "record none); needed to write them to a Keras or ONNX file",
    )
    p.add_argument(
        "--right-padded",
        action="store_true",
        help="ONNX of a whole Keras model: state that every input row is right-padded, so a mask (Embedding "
        "mask_zero / Masking) that reaches a recurrent layer becomes sequence_lens computed in the graph (rows "
        "that are not right-padded give NaN); without it such a model is refused",
    )
    layout = p.add_mutually_exclusive_group()
    layout.add_argument(
        "--batch-first",
        dest="batch_first",
        action="store_const",
        const=True,
        default=None,
        help="ONNX only: the graph input is (B, T, I) (for files that do not record it, e.g. .ckpt)",
    )
    layout.add_argument(
        "--time-major",
        dest="batch_first",
        action="store_const",
        const=False,
        help="ONNX only: the graph input is (T, B, I)",
    )
    p.set_defaults(run=run)


def _output_format(out_path: str, to: Optional[str]) -> str:
    from .. import formats

    if to is not None:
        if to not in formats.available():
            raise CliError(EXIT_USAGE, f"unknown --to format {to!r}; known formats: {formats.available()}")
        return to
    try:
        return formats.format_for_suffix(out_path)
    except NotImplementedError as exc:
        raise CliError(EXIT_USAGE, f"{exc}; name the format with --to") from exc


def _check_paths(src: str, dst: str, force: bool) -> None:
    if not os.path.exists(src):
        raise CliError(EXIT_INPUT, f"{src}: no such file")
    same = os.path.realpath(src) == os.path.realpath(dst)
    if os.path.lexists(dst):  # a dangling symlink is something at OUT too
        with contextlib.suppress(OSError):
            same = same or os.path.samefile(src, dst)
        if same:
            raise CliError(
                EXIT_USAGE, f"refusing to overwrite the input file {src!r} with the output; write to another path"
            )
        if os.path.isdir(dst):
            raise CliError(EXIT_USAGE, f"{dst}: is a directory; expected a file path")
        if not force:
            raise CliError(EXIT_USAGE, f"{dst}: already exists; pass --force to replace it")
    elif same:
        raise CliError(EXIT_USAGE, f"refusing to overwrite the input file {src!r}")
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise CliError(EXIT_USAGE, f"{dst}: directory {parent!r} does not exist")


def _temp_suffix(dst: str, fmt: str) -> str:
    """``dst``'s format suffix (``.weights.h5`` too), kept by the temporary file so writers see the format."""
    from .. import formats

    low = dst.lower()
    suffixes = formats._SUFFIXES.get(fmt, ())  # the registry's declared suffixes
    return max((s for s in suffixes if low.endswith(s)), key=len, default=suffixes[0] if suffixes else "")


def _temp_tag() -> str:
    """The temporary file's tag: ``.OUT.lstm-bridge-<pid>-<random><suffix>``."""
    return f"lstm-bridge-{os.getpid()}-"


def _scrub(message: str, tmp: Optional[str], dst: str) -> str:
    """``message`` with every mention of the temporary file replaced by OUT: errors name the file the
    user asked for."""
    if not tmp:
        return message
    pattern = re.compile("(?:" + re.escape(os.path.dirname(tmp) + os.sep) + ")?" + re.escape(os.path.basename(tmp)))
    return pattern.sub(lambda m: dst, message)


class _Steps:
    """A rich progress bar over the conversion steps, or nothing."""

    def __init__(self, enabled: bool, total: int, out: Output):
        self.progress: Any = None
        if enabled and out.console is not None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=out.console, transient=False
            )
            self.task = self.progress.add_task("convert", total=total)

    @contextlib.contextmanager
    def running(self) -> Iterator[_Steps]:
        if self.progress is None:
            yield self
            return
        with self.progress:
            yield self

    def step(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description, advance=1)


def _select_layer(mf: Any, layer: Optional[str], src: str) -> Any:
    if layer is None:
        return mf
    picked = [e for e in mf.layers if e.name == layer]
    if not picked:
        raise CliError(EXIT_USAGE, f"{src}: no layer {layer!r}; layers: {[e.name for e in mf.layers]}")
    if picked[0].kind not in ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"):
        raise CliError(
            EXIT_USAGE, f"{src}: layer {layer!r} is a {picked[0].kind}, not an LSTM, GRU or simple-RNN layer"
        )
    return dataclasses.replace(mf, layers=picked, model_config=None)


def _save(mf: Any, path: str, fmt: str, layer: Optional[str], dst: str, batch_first: Optional[bool] = None) -> Any:
    """``lstm_bridge.save`` into the temporary file ``path``; failures become CliError naming ``dst``:
    an OS failure (read-only directory, disk full; also when a writer wraps it in its own exception type)
    is ``cannot write OUT: <reason>`` (exit 3), a model the target cannot hold is ``cannot write FMT: ...``
    (exit 3)."""
    from .. import io as lb_io

    options: dict = {}
    if fmt == "onnx":
        options["layer"] = layer
        if batch_first is not None:
            options["batch_first"] = batch_first
    try:
        return lb_io.save(mf, path, format=fmt, **options)
    except Exception as exc:  # noqa: BLE001 - sorted below; anything else is re-raised
        reason = os_reason(exc)
        if reason is not None:
            raise CliError(EXIT_IO, f"cannot write {dst}: {reason}") from exc
        if isinstance(exc, (NotImplementedError, ValueError)):  # FormatError / UnsupportedLayoutError
            raise CliError(EXIT_INPUT, _scrub(f"cannot write {fmt}: {exc}", path, dst)) from exc
        # a writer library's own error type without an OS reason in it (torch's "unexpected pos" after a
        # failed write, ...): still one line naming OUT, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        reason = _likely_write_reason(path) or f"{type(exc).__name__}: {first}"
        raise CliError(EXIT_IO, _scrub(f"cannot write {dst}: {reason}", path, dst)) from exc


def _likely_write_reason(path: str) -> Optional[str]:
    """Why writing ``path`` probably failed when the writer's error does not say: a full file system or
    the process's file-size limit (``ulimit -f``); None when neither holds."""
    with contextlib.suppress(OSError, AttributeError):
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        if st.f_bavail == 0:
            return os.strerror(errno.ENOSPC)
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            return f"{os.strerror(errno.EFBIG)} (the file size limit, ulimit -f, is {soft} bytes)"
    return None


def _rnn_entries(mf: Any) -> List[Any]:
    """The simple-RNN entries of a MindSpore / PyTorch state-dict file (whose nonlinearity it does not record)."""
    if getattr(mf, "framework", None) not in ("mindspore", "torch"):
        return []
    return [e for e in mf.layers if e.kind in ("RNN", "RNNCell")]


def _set_rnn_nonlinearity(mf: Any, value: Optional[str]) -> None:
    """``--rnn-nonlinearity``: what the state dict's RNN layers compute (an entry that says it keeps it)."""
    if value is None:
        return
    for e in _rnn_entries(mf):
        if "nonlinearity" not in e.config:
            e.config = dict(e.config, nonlinearity=value)


def _carry_rnn_nonlinearity(mf: Any, written: Any, dst: str, notes: List[str]) -> None:
    """A state dict written from RNN layers whose nonlinearity is known does not record it either: verify it
    with the source's nonlinearity, and say what the net that loads it must use."""
    source = {e.name: e.config.get("nonlinearity") for e in mf.layers if e.kind in ("RNN", "RNNCell", "SimpleRNN")}
    for e in _rnn_entries(written):
        value = source.get(e.name)
        if value is None and mf.framework == "keras":
            known = [x for x in mf.recurrent_entries() if x.cell == "RNN" and x.name == e.name]
            value = known[0].semantics.get("activation") if known else None
        if value is not None and "nonlinearity" not in e.config:
            e.config = dict(e.config, nonlinearity=value)
            if value != "tanh":
                notes.append(
                    f"{dst} does not record nonlinearity: build the RNN {e.name!r} with nonlinearity={value!r}"
                )


def _verify(
    mf: Any,
    tmp: str,
    fmt: str,
    layer: Optional[str],
    src: str,
    dst: str,
    notes: List[str],
    batch_first: Optional[bool] = None,
) -> List[Any]:
    """Per-layer differences between ``mf`` and the written file ``tmp`` (``notes`` gets what the user must
    know, e.g. semantics a weights-only file does not record). ``batch_first``: the layout the ONNX
    graph was written with (None: the source's)."""
    from .. import convert as conv

    LayerDiff, compare_chains, pair_layers = conv.LayerDiff, conv.compare_chains, conv.pair_layers
    if fmt == "onnx":
        from ..formats import onnx as onnx_format

        chain = conv.chain_from_model_file(mf, layer)
        if batch_first is not None:
            chain.batch_first = bool(batch_first)  # feed the graph in the layout it was written with
        diff = onnx_format.verify(tmp, chain)
        return [LayerDiff("onnx graph (all outputs)", diff, diff, diff)]
    from ..io import load

    try:
        written = load(tmp)
    except (ValueError, OSError, NotImplementedError) as exc:
        raise CliError(EXIT_VERIFY, _scrub(f"the written file could not be read back: {exc}", tmp, dst)) from exc
    _carry_rnn_nonlinearity(mf, written, dst, notes)
    chain_src = chain_of(mf, layer, src)
    chain_out = chain_of(written, layer if fmt.startswith("keras") else None, dst)
    try:
        pairs = pair_layers(chain_src, chain_out)
        if getattr(written, "meta", {}).get("weights_only"):
            # A weights-only file records no activations or directions: the weights are what must match,
            # run with the input's semantics; say what the reader has to supply.
            for a, b in pairs:
                if (a.gate, a.candidate, a.reverse) != (b.gate, b.candidate, b.reverse):
                    notes.append(
                        f"{dst} is weights-only: layer {a.name!r} needs gate={a.gate}, "
                        f"candidate={a.candidate}, reverse={a.reverse} from the model that loads it"
                    )
                    b.gate, b.candidate, b.reverse = a.gate, a.candidate, list(a.reverse)
        diffs = compare_chains(chain_src, chain_out)
    except ValueError as exc:
        raise CliError(
            EXIT_VERIFY, f"the written file's LSTMs do not match the input's: {exc}; {dst} was not written"
        ) from exc
    meaning = [
        f"layer {a.name!r}: the input means gate={a.gate}, candidate={a.candidate}, reverse={a.reverse} "
        f"but {dst} means gate={b.gate}, candidate={b.candidate}, reverse={b.reverse}"
        for a, b in pairs
        if (a.gate, a.candidate, a.reverse) != (b.gate, b.candidate, b.reverse)
    ]
    if meaning and max(d.worst for d in diffs) > 0:
        raise CliError(
            EXIT_VERIFY,
            "verification failed: the written file changes the semantics ("
            + "; ".join(meaning)
            + "); the target format cannot record them. "
            + dst
            + " was not written",
        )
    return diffs


@contextlib.contextmanager
def _output_file(dst: str, fmt: str, force: bool) -> Iterator[str]:
    """The one temporary file of the run, beside OUT (:func:`~lstm_bridge.formats.atomic.atomic_output`):
    created first (a directory that refuses files fails before IN is read), moved onto OUT when the body
    succeeds, removed on every exit path. The move runs with signals held back, after a check that no
    signal was received during the run (even one whose exception library code swallowed): an interrupted
    run never touches OUT. Its OS errors become CliError naming OUT."""
    stage = "create"
    try:
        with atomic.atomic_output(
            dst,
            _temp_suffix(dst, fmt),
            exclusive=not force,
            tag=_temp_tag(),
            before_commit=_signals.raise_if_interrupted,
        ) as tmp:
            stage = "run"
            yield tmp
            stage = "commit"
    except OSError as exc:
        if stage == "create":
            directory = os.path.dirname(os.path.abspath(dst))
            raise CliError(
                EXIT_IO, f"cannot write {dst}: cannot create a file in {directory}: {os_reason(exc) or exc}"
            ) from None
        if stage == "commit" and isinstance(exc, FileExistsError):
            raise CliError(
                EXIT_USAGE, f"{dst}: already exists (created while this conversion ran); pass --force to replace it"
            ) from None
        if stage == "commit":
            raise CliError(EXIT_IO, f"cannot write {dst}: {os_reason(exc) or exc}") from None
        raise


def _check_target(mf: Any, fmt: str, layer: Optional[str], src: str) -> None:
    """CliError listing why ``fmt`` cannot hold ``mf`` (MindSpore/PyTorch/ONNX targets; the Keras writers
    check their own generation's dialect), asked of :mod:`lstm_bridge.targets`, the writers' rule too."""
    from .. import targets

    target = targets.FORMAT_TARGETS.get(fmt)
    if target not in ("mindspore", "torch", "onnx"):
        return
    problems = targets.model_violations(mf, target, layer=layer if fmt == "onnx" else None)
    if problems:
        refused = [d.cell for d in targets.describe_model_file(mf) if targets.reasons(d, target)]
        hint = "\n" + targets.exact_module_hint(refused or ["LSTM"]) if mf.framework == "keras" else ""
        raise CliError(EXIT_INPUT, f"{src} cannot be expressed as {fmt}:\n  - " + "\n  - ".join(problems) + hint)


def run(args: argparse.Namespace, out: Output) -> int:
    src, dst = args.input, args.output
    if not args.tol >= 0:
        raise CliError(EXIT_USAGE, f"--tol must be >= 0; received {args.tol}")
    fmt = _output_format(dst, args.to)
    batch_first = getattr(args, "batch_first", None)
    if batch_first is not None and fmt != "onnx":
        raise CliError(EXIT_USAGE, f"--batch-first / --time-major apply to ONNX output only; OUT is {fmt}")
    _check_paths(src, dst, args.force)
    big = os.path.getsize(src) >= PROGRESS_BYTES
    steps = _Steps(args.progress == "always" or (args.progress == "auto" and big), 4, out)
    tmp: Optional[str] = None
    try:
        with _output_file(dst, fmt, args.force) as tmp:
            if fmt == "onnx" and args.layer is None and _whole_keras_model(src):
                return _whole_model_onnx(src, tmp, dst, args, out)  # models/onnx_export.py: every layer
            with steps.running():
                steps.step(f"reading {os.path.basename(src)}")
                mf = _select_layer(load_model(src), args.layer, src)
                _set_rnn_nonlinearity(mf, getattr(args, "rnn_nonlinearity", None))
                if fmt == "onnx":
                    chain_of(mf, args.layer, src, strict=True)  # the graph runs the layers end to end
                _check_target(mf, fmt, args.layer, src)
                steps.step(f"writing {fmt}")
                with atomic.writing_into(tmp):  # the writer writes into our temporary file: one file, one move
                    report = _save(mf, tmp, fmt, None if fmt != "onnx" else args.layer, dst, batch_first)
                steps.step("verifying")
                notes: List[str] = []
                diffs = _verify(mf, tmp, fmt, None if fmt == "onnx" else args.layer, src, dst, notes, batch_first)
                worst = max(d.worst for d in diffs)
                if not worst <= args.tol:
                    rows = [(d.name, fmt_float(d.output), fmt_float(d.h), fmt_float(d.c)) for d in diffs]
                    out.table("verification (max |difference|)", ("layer", "output", "h", "c"), rows)
                    raise CliError(
                        EXIT_VERIFY,
                        f"verification failed: max |difference| {fmt_float(worst)} > tol "
                        f"{args.tol:g}; {dst} was not written",
                    )
                steps.step("done")
            _report(out, diffs, report, notes)  # then OUT is moved into place (the last step)
    except CliError as exc:
        exc.message = _scrub(exc.message, tmp, dst)
        raise
    out.line(f"wrote {dst} ({fmt}) from {src}: layers {_written(report)}")
    out.line(f"OK: max |difference| {fmt_float(worst)} <= tol {args.tol:g}")
    return EXIT_OK


def _whole_keras_model(src: str) -> bool:
    from ..models.onnx_export import is_whole_model

    return is_whole_model(src)


def _whole_model_onnx(src: str, tmp: str, dst: str, args: argparse.Namespace, out: Output) -> int:
    """``convert model.keras model.onnx`` of a whole Keras model (:func:`lstm_bridge.models.onnx_export.export_onnx`):
    every layer in the graph, verified with onnxruntime against ``load_model`` before OUT is moved into place."""
    from ..models.onnx_export import ExportMismatch, export_onnx

    try:
        report = export_onnx(src, tmp, right_padded=bool(getattr(args, "right_padded", False)), tol=args.tol)
    except ExportMismatch as exc:
        raise CliError(EXIT_VERIFY, _scrub(f"{exc}", tmp, dst)) from exc
    except (ValueError, OSError, NotImplementedError) as exc:  # ExportError / FormatError / UnsupportedLayerError
        raise CliError(
            EXIT_INPUT,
            _scrub(
                f"{src} cannot be exported as a whole model to onnx: {exc}\n(--layer NAME exports one recurrent "
                "layer on its own)",
                tmp,
                dst,
            ),
        ) from exc
    for m in report.masks:
        out.line(f"mask as sequence_lens (inputs stated right-padded): {m}")
    out.line(f"wrote {dst} (onnx, whole model) from {src}: inputs {report.inputs}, outputs {report.outputs}")
    out.line(
        f"OK: max |difference| {fmt_float(report.max_abs_diff)} <= tol {args.tol:g} (onnxruntime vs load_model, "
        f"padded batch, lengths {report.lengths})"
    )
    return EXIT_OK


def _written(report: Any) -> str:
    written = list(getattr(report, "written", []) or [])
    return ", ".join(repr(w) if w else "(root)" for w in written) or "(all)"


def _report(out: Output, diffs: List[Any], report: Any, notes: List[str]) -> None:
    """What the run found, printed before OUT is moved into place (the verification table, what was not
    carried, notes); the ``wrote``/``OK`` lines follow only once OUT is there."""
    rows = [(d.name, fmt_float(d.output), fmt_float(d.h), fmt_float(d.c)) for d in diffs]
    out.table("verification (max |difference| on random inputs)", ("layer", "output", "h", "c"), rows)
    skipped = dict(getattr(report, "skipped", {}) or {})
    for name, why in skipped.items():
        out.line(f"not carried: {name!r}: {why}")
    for note in notes:
        out.line(f"note: {note}")
