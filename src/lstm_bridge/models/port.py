"""``lstm-bridge port``: a Keras full-model file as readable PyTorch source, its weights and a report.

:func:`port` loads the file with :func:`lstm_bridge.load_model`, generates ``model.py`` (one
``torch.nn.Module`` class; one attribute per Keras layer, named after it, built from the layer catalogue
:mod:`lstm_bridge.models.layers` with the layer's Keras config; a ``forward`` that runs the Keras graph call
by call, masks included), fills the generated module with the loaded weights (``state_dict``: torch-native
names and layouts, see :mod:`lstm_bridge.models`) and verifies it: the generated source is imported from the
written folder, ``load()`` reads the written ``weights.safetensors``, and every layer's output and the final
predictions are compared with :func:`~lstm_bridge.load_model`'s on a padded random batch (per-row lengths,
token ids 0 / all-zero steps after them). :func:`write_port` writes the three files into a temporary folder
beside ``OUT_DIR`` and moves it into place only when the check passed: ``OUT_DIR`` is never half-written.

The generated ``model.py`` imports only ``torch`` and ``lstm_bridge``; ``build()`` returns the module (eval
mode), ``load(path=None)`` the module with ``weights.safetensors`` (beside ``model.py`` unless ``path`` is
given) loaded through :func:`load_weights`.

The source itself is :mod:`lstm_bridge.models.port_source`'s (:func:`generate_source`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .port_source import PortError, PortMismatch, generate_source

__all__ = ["PortError", "PortMismatch", "Port", "port", "write_port", "load_weights", "padded_batch", "LayerDiff"]

#: a random batch of this many rows (row 0 full length, the others right-padded)
BATCH = 4
#: the time steps of an input whose time dimension the model leaves open
DEFAULT_STEPS = 7
#: the file names written into OUT_DIR
MODEL_FILE, WEIGHTS_FILE, REPORT_FILE = "model.py", "weights.safetensors", "PORT.md"


@dataclasses.dataclass
class LayerDiff:
    """One layer's outputs, generated module vs ``load_model``: max |difference| over its calls."""

    name: str
    keras_class: str
    calls: int
    max_abs_diff: float


@dataclasses.dataclass
class Port:
    """What :func:`port` produced: the source, the weights, the verification."""

    source: str
    state_dict: Dict[str, torch.Tensor]
    class_name: str
    keras_path: str
    keras_format: str
    keras_version: Optional[str]
    generation: int
    inputs: List[Tuple[str, Tuple[Optional[int], ...], str]]
    layers: List[LayerDiff]
    outputs_max_abs_diff: float
    lengths: List[List[int]]
    report: str = ""
    #: the reference side of the verification: the loaded model, the batch, attribute -> loaded module,
    #: id(loaded module) -> its recorded outputs per call
    reference: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


# ------------------------------------------------------------------------------------------------
# Runtime helper of the generated model.py


def load_weights(module: torch.nn.Module, path: Optional[str] = None, beside: Optional[str] = None) -> torch.nn.Module:
    """Load a ``weights.safetensors`` into ``module`` (strict: every name and shape must match) and return
    it in eval mode. ``path`` defaults to ``weights.safetensors`` in the folder of ``beside`` (the generated
    ``model.py`` passes its ``__file__``)."""
    if path is None:
        if beside is None:
            raise ValueError("load_weights: expected a path, or beside=<the model.py file>; received neither")
        path = os.path.join(os.path.dirname(os.path.abspath(beside)), WEIGHTS_FILE)
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError("weights.safetensors needs the safetensors package: pip install safetensors") from exc
    state = load_file(os.fspath(path))
    missing, unexpected = _strict_diff(module, state)
    if missing or unexpected:
        raise ValueError(
            f"{path}: expected the weights of {type(module).__name__} (missing {missing[:8]}, unexpected "
            f"{unexpected[:8]})"
        )
    module.load_state_dict(state, strict=True)
    return module.eval()


def _strict_diff(module: torch.nn.Module, state: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    own = set(module.state_dict())
    return sorted(own - set(state)), sorted(set(state) - own)


# ------------------------------------------------------------------------------------------------
# The padded batch, recording, comparing


def _input_specs(
    model: Any, model_config: Dict[str, Any]
) -> List[Tuple[str, Tuple[Optional[int], ...], str, Optional[int]]]:
    """``(name, shape with None for open dims, dtype, vocabulary or None)`` per model input."""
    from .layers.embedding import Embedding

    specs = []
    for ref in model.inputs:
        module = model.module(ref.layer)
        entry = _find_entry(model_config, ref.layer) or {}
        cfg = entry.get("config") or {}
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        dtype = str(getattr(module, "input_dtype", "float32"))
        vocab = None
        for name, k in model.order:
            call = model._calls[name][k]
            if any(r[0] == ref.layer for r in _refs(call.args[:1])):
                m = model.module(name)
                dim = int(getattr(m, "input_dim", 0) or 0) if isinstance(m, Embedding) else 0
                if dim:
                    vocab = dim if vocab is None else min(vocab, dim)
        if shape is None:  # a Sequential without InputLayer: take the first layer's recorded input shape
            first = (model_config.get("config") or {}).get("layers") or [{}]
            c0 = first[0].get("config") or {}
            shape = c0.get("batch_input_shape") or c0.get("batch_shape") or [None, None]
            if "int" in dtype and len(shape) > 2:
                shape = shape[:2]
        specs.append((ref.layer, tuple(None if d is None else int(d) for d in shape), dtype, vocab))
    return specs


def _find_entry(model_config: Dict[str, Any], name: str) -> Optional[Dict[str, Any]]:
    for e in (model_config.get("config") or {}).get("layers") or []:
        if (e.get("name") or (e.get("config") or {}).get("name")) == name:
            return e
    return None


def _refs(v: Any) -> List[Any]:
    """The TensorRefs in a call's (nested) arguments."""
    from .graph import TensorRef

    if isinstance(v, TensorRef):
        return [v]
    if isinstance(v, (list, tuple)):
        return [r for x in v for r in _refs(x)]
    return []


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    dims = ["batch" if i == 0 and d is None else ("time" if d is None else str(d)) for i, d in enumerate(shape)]
    return "(" + ", ".join(dims) + ")"


def _flat(v: Any) -> List[Any]:
    if isinstance(v, (list, tuple)):
        return [y for x in v for y in _flat(x)]
    return [v]


def padded_batch(
    specs: Sequence[Tuple[str, Tuple[Optional[int], ...], str, Optional[int]]], seed: int = 0
) -> Tuple[List[torch.Tensor], List[List[int]]]:
    """A random batch per input: ``BATCH`` rows, row 0 full, the others right-padded to a drawn length
    (token ids in ``[1, vocab)`` then 0 for an input an Embedding reads, in the input's dtype; float steps
    then all zeros). Returns ``(inputs, lengths)``."""
    g = torch.Generator().manual_seed(seed)
    xs, all_lengths = [], []
    for _, shape, dtype, vocab in specs:
        dims = [BATCH] + [DEFAULT_STEPS if d is None else d for d in shape[1:]]
        steps = dims[1] if len(dims) > 1 else 1
        lengths = [steps] + [int(torch.randint(1, max(steps, 2), (1,), generator=g)) for _ in range(BATCH - 1)]
        if "int" in dtype or vocab is not None:  # token ids (an Embedding reads a float input as ids too)
            x = torch.randint(1, max(int(vocab or 10), 2), dims, generator=g)
            x = x.to(torch.int32 if dtype == "int32" else torch.int64 if "int" in dtype else torch.float32)
        else:
            x = torch.randn(dims, generator=g)
        if len(dims) > 1:
            for b, n in enumerate(lengths):
                x[b, n:] = 0
        xs.append(x)
        all_lengths.append(lengths)
    return xs, all_lengths


def _record(modules: Dict[str, Any]) -> Tuple[Dict[str, List[List[torch.Tensor]]], List[Any]]:
    """Forward hooks that record every call's outputs (flattened) per attribute name."""
    seen: Dict[str, List[List[torch.Tensor]]] = {n: [] for n in modules}
    handles = []
    for n, m in modules.items():

        def hook(_m: Any, _inp: Any, out: Any, n: str = n) -> None:
            seen[n].append([t.detach().clone() for t in _flat(out) if isinstance(t, torch.Tensor)])

        handles.append(m.register_forward_hook(hook))
    return seen, handles


def _recording(fn: Any, shapes: List[int]) -> Any:
    """``fn`` (a bound ``compute_mask``) that also appends -1 (one mask) or the length of its list to ``shapes``."""

    def compute_mask(inputs: Any, mask: Any = None) -> Any:
        result = fn(inputs, mask)
        shapes.append(len(result) if isinstance(result, (list, tuple)) else -1)
        return result

    return compute_mask


def _max_diff(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        if tuple(x.shape) != tuple(y.shape):
            return float("inf")
        if x.numel():
            d = (x.double() - y.double()).abs()
            d = torch.where(torch.isnan(x.double()) & torch.isnan(y.double()), torch.zeros_like(d), d)
            worst = max(worst, float(d.max()))
    return worst


def _all_modules(model: Any) -> List[Tuple[str, Any, str]]:
    """``(keras name, module, class)`` of every layer, nested models' included (not the models)."""
    from .graph import KerasModel

    out = []
    for name, key, cls in model.entries:
        m = model.modules_by_name[key]
        if isinstance(m, KerasModel):
            out += _all_modules(m)
        elif isinstance(m, torch.nn.Module) and cls not in ("NotEqual",):
            out.append((name, m, cls))
    return out


def _import_source(path: str, tag: str) -> Any:
    name = f"lstm_bridge_port_{tag}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise PortError(f"cannot import the generated {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return mod


# ------------------------------------------------------------------------------------------------
# port / write_port


def port(path: str, seed: int = 0) -> Port:
    """Generate the port of the Keras file ``path`` in memory (source and state dict) and the reference
    outputs; :func:`write_port` writes and verifies it."""
    from .. import __version__
    from .files import read_keras_file
    from .load import load_model

    model = load_model(path)
    kf = read_keras_file(path)
    try:
        model_config, version, generation, fmt = kf.model_config, kf.version, kf.generation, kf.format
    finally:
        kf.close()
    specs = _input_specs(model, model_config)
    xs, lengths = padded_batch(specs, seed)
    mods = {f"{name}#{id(m)}": m for name, m, _ in _all_modules(model)}
    seen, handles = _record(mods)
    mask_shapes: Dict[int, List[int]] = {id(m): [] for m in mods.values()}
    masked = [m for m in mods.values() if hasattr(m, "compute_mask")]  # not the Keras 3 op nodes
    for m in masked:
        m.compute_mask = _recording(m.compute_mask, mask_shapes[id(m)])
    try:
        with torch.no_grad():
            model(*xs)
    finally:
        for h in handles:
            h.remove()
        for m in masked:
            del m.compute_mask  # the instance attribute: the class's method again
    outputs_seen = {id(m): [len(o) for o in seen[k]] for k, m in mods.items()}
    maker = f"Keras {version}" if version else ("Keras 3" if generation == 3 else "Keras 2 / tf_keras")
    kind = ".keras archive" if fmt == "keras" else "legacy .h5"
    shapes = ", ".join(f"{n} {_shape_text(s)} {dt}" for n, s, dt, _ in specs)
    header = (
        f"PyTorch port of the Keras model {os.path.basename(path)} ({maker}, {kind}),\n"
        f"written by `lstm-bridge port` (lstm-bridge {__version__}).\n\n"
        f"Inputs: {shapes}.\n"
        "build() returns the module; load(path=None) the module with weights.safetensors (beside this file) loaded.\n"
    )
    source, cls, attr_modules = generate_source(model, model_config, generation, header, outputs_seen, mask_shapes)
    ns: Dict[str, Any] = {"__file__": "<generated>"}
    try:
        exec(compile(source, "<generated model.py>", "exec"), ns)  # noqa: S102 - our own generated source
        built = ns["build"]()
    except Exception as exc:
        raise PortError(f"the generated model.py does not build: {type(exc).__name__}: {exc}") from exc
    for attr, m in attr_modules.items():
        target = getattr(built, attr)
        missing, unexpected = _strict_diff(target, m.state_dict())
        if missing or unexpected:
            raise PortError(
                f"layer {attr!r}: the generated module's weights {sorted(target.state_dict())} do not match the loaded "
                f"layer's {sorted(m.state_dict())}"
            )
        target.load_state_dict(m.state_dict(), strict=True)
        mine = [p.requires_grad for p in target.parameters()]
        theirs = [p.requires_grad for p in m.parameters()]
        if mine != theirs:
            raise PortError(f"layer {attr!r}: trainable parameters {mine} differ from load_model's {theirs}")
    state = {k: v.detach().contiguous().clone() for k, v in built.state_dict().items()}
    ref_layers = {}
    for k, m in mods.items():
        ref_layers[id(m)] = seen[k]
    return Port(
        source=source,
        state_dict=state,
        class_name=cls,
        keras_path=os.path.abspath(path),
        keras_format=fmt,
        keras_version=version,
        generation=generation,
        inputs=[(n, s, dt) for n, s, dt, _ in specs],
        layers=[],
        outputs_max_abs_diff=float("nan"),
        lengths=lengths,
        reference={"model": model, "inputs": xs, "modules": attr_modules, "outputs": ref_layers},
    )


def verify(p: Port, folder: str, tol: float) -> None:
    """Import ``folder/model.py``, ``load()`` its weights, compare with ``load_model`` layer by layer and on
    the final predictions; fills ``p.layers`` and ``p.outputs_max_abs_diff``; PortError above ``tol``."""
    mod = _import_source(os.path.join(folder, MODEL_FILE), os.path.basename(folder).replace(".", "_").replace("-", "_"))
    loaded = mod.load(os.path.join(folder, WEIGHTS_FILE))
    ref = p.reference
    attr_modules: Dict[str, Any] = ref["modules"]
    gen_mods = {a: getattr(loaded, a) for a in attr_modules}
    seen, handles = _record(gen_mods)
    try:
        with torch.no_grad():
            got = loaded(*ref["inputs"])
            want = ref["model"](*ref["inputs"])
    finally:
        for h in handles:
            h.remove()
    diffs = []
    for attr, m in attr_modules.items():
        theirs = ref["outputs"].get(id(m), [])
        mine = seen[attr]
        worst = (
            float("inf") if len(theirs) != len(mine) else max([_max_diff(a, b) for a, b in zip(mine, theirs)] or [0.0])
        )
        diffs.append(LayerDiff(attr, type(m).__name__, len(mine), worst))
    p.layers = diffs
    p.outputs_max_abs_diff = _max_diff(_flat(got), _flat(want))
    bad = [d for d in diffs if not d.max_abs_diff <= tol]
    if bad or not p.outputs_max_abs_diff <= tol:
        what = ", ".join(f"{d.name} {d.max_abs_diff:.3g}" for d in bad) or "final outputs"
        raise PortMismatch(
            f"the generated module differs from lstm_bridge.load_model above --tol {tol:g}: {what} "
            f"(final outputs {p.outputs_max_abs_diff:.3g})"
        )


def render_report(p: Port, tol: float) -> str:
    """PORT.md."""
    from .. import __version__

    gen = "Keras 3" if p.generation == 3 else "tf_keras / Keras 2"
    fmt = ".keras archive" if p.keras_format == "keras" else "legacy .h5"
    lines = [
        f"# Port of `{os.path.basename(p.keras_path)}`",
        "",
        f"- Source: `{p.keras_path}` ({fmt})",
        f"- Keras generation: {gen} (file written by Keras {p.keras_version or 'unknown'}); the generated layers "
        f"use `keras_version={p.generation}`, i.e. this generation's numerics (hard_sigmoid, gelu, ...)",
        f"- Written by lstm-bridge {__version__} (`lstm-bridge port`), torch {torch.__version__}",
        f"- Files: `{MODEL_FILE}` (class `{p.class_name}`; `build()`, `load(path=None)`), `{WEIGHTS_FILE}` "
        f"({len(p.state_dict)} tensors, torch-native names and layouts), `{REPORT_FILE}`",
        "",
        "## Verification",
        "",
        f"The generated module (imported from `{MODEL_FILE}`, weights read back from `{WEIGHTS_FILE}`) against "
        f"`lstm_bridge.load_model` on one padded random batch of {BATCH} rows "
        + "; ".join(f"input `{n}` {_shape_text(s)} {dt}, lengths {ls}" for (n, s, dt), ls in zip(p.inputs, p.lengths))
        + " (token ids 0 / all-zero steps after each row's length). Tolerance "
        f"{tol:g}.",
        "",
        f"Final predictions: max |difference| **{p.outputs_max_abs_diff:.3g}**.",
        "",
        "| layer (attribute) | class | calls | max abs difference of its outputs |",
        "|---|---|---|---|",
    ]
    for d in p.layers:
        lines.append(f"| `{d.name}` | {d.keras_class} | {d.calls} | {d.max_abs_diff:.3g} |")
    lines += [
        "",
        "`lstm_bridge.load_model` itself is checked against the real Keras on golden models in lstm-bridge's test "
        "suite (tests/test_models_golden.py); this report compares the port with it.",
        "",
        "## Not carried",
        "",
        "- the training configuration (`compile()`: optimizer and its state, loss, metrics) - a Keras file's "
        "`training_config` / optimizer weights are not read; choose a torch optimizer and loss",
        "- initializers (the weights are loaded; a layer re-initialised in PyTorch uses torch's defaults)",
        "- the dtype policy (everything runs in float32); Keras's `name_scope`s and build shapes",
        "",
    ]
    return "\n".join(lines)


def _save_safetensors(state: Dict[str, torch.Tensor], path: str, meta: Dict[str, str]) -> None:
    """Write ``state`` as safetensors with ordinary permissions (``0666`` minus the umask)."""
    try:
        from safetensors.torch import save
    except ImportError as exc:  # pragma: no cover - optional extra
        raise NotImplementedError("weights.safetensors needs the safetensors package: pip install safetensors") from exc
    data = save({k: v.contiguous() for k, v in state.items()}, metadata=meta)
    with open(path, "wb") as fh:
        fh.write(data)


def check_out_dir(out_dir: str, force: bool, source: Optional[str] = None) -> None:
    """Refuse an ``out_dir`` that is a file, a non-empty folder without ``force``, or (even with ``force``) a
    folder that holds the ``source`` file or the current directory: replacing it would delete them.

    Raises:
        NotADirectoryError: ``out_dir`` is a file.
        FileExistsError: ``out_dir`` is a non-empty folder and ``force`` is False, or holds ``source`` / the
            current directory.
        FileNotFoundError: the parent folder of ``out_dir`` does not exist.
    """
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir}: exists and is not a directory; expected a folder to write into")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not force:
            raise FileExistsError(f"{out_dir}: exists and is not empty; pass --force to replace it")
        real = os.path.realpath(out_dir)
        for what, inside in (("the input file", source), ("the current directory", os.getcwd())):
            if inside and (os.path.realpath(inside) + os.sep).startswith(real + os.sep):
                raise FileExistsError(
                    f"{out_dir}: holds {what}; --force would delete it - write the port to another folder"
                )
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{out_dir}: directory {parent!r} does not exist")


def write_port(path: str, out_dir: str, force: bool = False, tol: float = 1e-5, seed: int = 0) -> Port:
    """Port ``path`` into ``out_dir`` (``model.py``, ``weights.safetensors``, ``PORT.md``), verified, atomically.

    The files are written into a fresh hidden folder beside ``out_dir``, verified there (the source imported,
    the weights read back, every layer compared with ``load_model``), and only then moved into place: a new or
    empty ``out_dir`` by one ``rename``; an existing one (``force``) is first moved aside and removed after.
    Any failure or interruption removes the temporary folder and leaves ``out_dir`` as it was.

    Raises:
        FileExistsError: ``out_dir`` is a non-empty folder and ``force`` is False.
        PortError: the model cannot be ported or the port does not reproduce ``load_model`` within ``tol``.
    """
    check_out_dir(out_dir, force, path)
    p = port(path, seed)

    def fill(tmp: str) -> None:
        with open(os.path.join(tmp, MODEL_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.source)
        _save_safetensors(
            p.state_dict,
            os.path.join(tmp, WEIGHTS_FILE),
            {  # one key: safetensors writes several in a per-process random order (files would differ by run)
                "lstm_bridge.port": json.dumps(
                    {"source": os.path.basename(path), "keras_version": p.keras_version, "class": p.class_name},
                    sort_keys=True,
                )
            },
        )
        verify(p, tmp, tol)
        p.report = render_report(p, tol)
        with open(os.path.join(tmp, REPORT_FILE), "w", encoding="utf-8") as fh:
            fh.write(p.report)

    write_folder(out_dir, force, fill)
    return p


def write_folder(out_dir: str, force: bool, fill: Callable[[str], None]) -> None:
    """Write a port folder atomically: ``fill(tmp)`` writes (and verifies) the files in a fresh hidden folder
    beside ``out_dir``; then its ``__pycache__`` is dropped and it is moved into place. Any failure or
    interruption removes the temporary folder and leaves ``out_dir`` as it was."""
    from ..formats import atomic

    base = os.path.abspath(out_dir).rstrip(os.sep)
    tmp = None
    try:
        with atomic.signals_deferred():
            tmp = atomic.temp_name(base, suffix="", tag="lstm-bridge-port-")
            os.mkdir(tmp)
        fill(tmp)
        pycache = os.path.join(tmp, "__pycache__")
        if os.path.isdir(pycache):
            shutil.rmtree(pycache, ignore_errors=True)
        _move_into_place(tmp, base, force)
        tmp = None
    finally:
        if tmp is not None:
            with atomic.signals_deferred():
                shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: str, out_dir: str, force: bool) -> None:
    from ..formats import atomic

    with atomic.signals_deferred():
        if os.path.isdir(out_dir) and os.listdir(out_dir):
            if not force:
                raise FileExistsError(f"{out_dir}: exists and is not empty; pass --force to replace it")
            old = atomic.temp_name(out_dir, suffix="", tag="lstm-bridge-old-")
            os.rename(out_dir, old)
            try:
                os.rename(tmp, out_dir)
            except OSError:
                os.rename(old, out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return
        try:
            os.rename(tmp, out_dir)  # a missing or empty out_dir: one step
        except OSError:
            if os.path.isdir(out_dir) and not os.listdir(out_dir):
                os.rmdir(out_dir)
                os.rename(tmp, out_dir)
            else:
                raise
