"""The package's one-way doors (``docs/architecture.md``), checked on the source with :mod:`ast`.

Every ``import`` / ``from ... import`` in ``src/lstm_bridge`` counts, wherever it stands (module level,
inside a function, under ``if TYPE_CHECKING``), and so do ``importlib.import_module`` and
``formats.register_lazy`` calls with a literal module path: an import hidden in a function still makes
a cycle. Each room may import only the rooms listed in :data:`MAY_IMPORT`; the few places where the code
reaches through a closed door today are listed, with the reason, in :data:`EXCEPTIONS` - and an
exception that no longer occurs fails the test too, so the list only shrinks.

The last test checks that every file path ``docs/architecture.md`` names exists.
"""

from __future__ import annotations

import ast
import pathlib
import re
from typing import Dict, FrozenSet, Iterator, List, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "src" / "lstm_bridge"
PACKAGE = "lstm_bridge"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: room -> the rooms it may import (besides itself). Rooms are the first component of a module's
#: name inside the package; "(root)" is ``lstm_bridge/__init__.py``, which holds ``__version__`` and
#: otherwise imports submodules only lazily (``__getattr__``).
MAY_IMPORT: Dict[str, FrozenSet[str]] = {
    # the vocabulary
    "activations": frozenset(),
    "recurrent": frozenset({"activations"}),
    # input checks shared by the two front ends (NumPy/torch in, float tensor out)
    "_tensors": frozenset(),
    # running layers over canonical weights
    # (targets: the ONNX translation of the native custom op asks it what ONNX holds)
    "engine": frozenset({"recurrent", "activations", "targets"}),
    # foreign weight layouts <-> canonical
    "weights": frozenset({"recurrent", "activations"}),
    # the one expressibility rule; the format writers ask it, so it sits below formats
    "targets": frozenset({"recurrent", "activations"}),
    # file readers / writers and the neutral ModelFile
    "formats": frozenset({"recurrent", "activations", "weights", "targets", "(root)"}),
    # the two front ends (never each other, never formats)
    "keras": frozenset({"recurrent", "activations", "engine", "weights", "_tensors"}),
    "mindspore": frozenset({"recurrent", "activations", "engine", "weights", "_tensors"}),
    # library services above the front ends (never each other)
    "convert": frozenset({"recurrent", "activations", "engine", "weights", "targets", "formats", "keras", "mindspore"}),
    "explain": frozenset({"recurrent", "activations", "engine", "weights", "targets", "formats", "keras", "mindspore"}),
    "io": frozenset({"recurrent", "activations", "engine", "weights", "targets", "formats", "keras", "mindspore"}),
    # ``import lstm_bridge.ops`` registers the engine's custom ops (before torch.export.load of a saved program)
    "ops": frozenset({"engine"}),
    # whole Keras models (load_model, the layer catalogue): above the front ends, below the CLI
    "models": frozenset(
        {
            "recurrent",
            "activations",
            "engine",
            "weights",
            "targets",
            "formats",
            "keras",
            "mindspore",
            "_tensors",
            "(root)",
        }
    ),
    # tools: nothing in the library imports them; only the CLI imports the demo and the benchmark
    "demo": frozenset(
        {"recurrent", "activations", "engine", "weights", "targets", "formats", "keras", "mindspore", "_tensors"}
    ),
    "bench": frozenset(
        {"recurrent", "activations", "engine", "weights", "targets", "formats", "keras", "mindspore", "_tensors"}
    ),
    "cli": frozenset(
        {
            "recurrent",
            "activations",
            "engine",
            "weights",
            "targets",
            "formats",
            "keras",
            "mindspore",
            "convert",
            "explain",
            "io",
            "models",
            "demo",
            "bench",
            "(root)",
        }
    ),
    # the package's facade: ``lstm_bridge.keras`` etc. are imported on first attribute access
    # (``__getattr__``); the other rooms may take only ``__version__`` from it (checked below)
    "(root)": frozenset(
        {
            "activations",
            "recurrent",
            "engine",
            "weights",
            "targets",
            "formats",
            "keras",
            "mindspore",
            "convert",
            "explain",
            "io",
            "models",
            "demo",
            "bench",
            "cli",
            "ops",
        }
    ),
}

#: (importing module, imported module) pairs that go through a closed door today, each with its reason
#: and the fix that would remove it. Module names are relative to ``lstm_bridge``.
EXCEPTIONS: Dict[Tuple[str, str], str] = {
    # The ONNX exporter builds its graph from a convert.Chain (chain_from / chain_from_model_file) and
    # its verify() runs convert.run_chain. Fix: the export from modules/files (build_model, verify)
    # belongs in convert/, with formats/onnx.py writing a list of RecurrentLayer.
    ("formats.onnx", "convert"): "ONNX export starts from a convert.Chain",
    # targets.describe() recognises the Keras front-end classes with isinstance (function-level import).
    # Fix: duck typing, as describe() already does for chains and a ModelFile's LSTM layers.
    ("targets", "keras"): "describe() isinstance-checks keras.LSTM / Bidirectional / LSTMCell",
    # targets._keras() asks the Keras planner for each generation's activation naming rule
    # (target_activation) and model_violations() asks can_copy_config (function-level imports).
    # Fix: move the naming rule into targets (keras_plan would import it from there).
    ("targets", "formats.keras_plan"): "the Keras activation naming rule lives in the planner",
    # targets.check_model() raises formats.FormatError (function-level import). Fix: the writers raise
    # FormatError from targets.model_violations(), or FormatError moves to the vocabulary.
    ("targets", "formats.model"): "check_model() raises FormatError",
}

#: single-module doors: (importing module, imported module) pairs allowed although the rooms' table closes
#: them, each a deliberate design decision (unlike EXCEPTIONS, which are debts to pay off).
MODULE_DOORS: Dict[Tuple[str, str], str] = {
    # MindSpore's checkpoint verbs (load_checkpoint / save_checkpoint) read and write .ckpt bytes: the one
    # codec lives in formats/mindspore_ckpt.py, and the write is atomic through formats/atomic.py. Only this
    # module of the front end may use them; the rest of mindspore/ stays below formats/.
    ("mindspore.checkpoint", "formats.mindspore_ckpt"): "the .ckpt codec behind MindSpore's checkpoint verbs",
    ("mindspore.checkpoint", "formats.atomic"): "save_checkpoint writes atomically",
}

#: import names that are the test suite's or the tools', never the library's
TEST_AND_TOOL_MODULES = frozenset(
    {
        "tests",
        "tools",
        "oracle",
        "conftest",
        "helpers",
        "golden_data",
        "golden_common",
        "golden_keras",
        "golden_ms",
        "golden_family",
        "make_golden",
    }
)


def _module_name(path: pathlib.Path) -> str:
    """``engine/native/plan.py`` -> ``engine.native.plan``; ``engine/__init__.py`` -> ``engine``."""
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = _modules()


def room(module: str) -> str:
    """The room of a module name relative to the package (``""`` is the package root)."""
    return module.split(".")[0] if module else "(root)"


def _resolve(target: str, alias: str) -> str:
    """``from <target> import <alias>``: the submodule when ``alias`` is one, else ``target``."""
    sub = f"{target}.{alias}" if target else alias
    return sub if sub in MODULES else target


def _strip_package(name: str) -> str:
    """``lstm_bridge.x.y`` -> ``x.y``; ``lstm_bridge`` -> ``""``."""
    return name[len(PACKAGE) + 1 :] if name.startswith(PACKAGE + ".") else ""


def _literal_module(node: ast.Call) -> Iterator[str]:
    """Module paths named by string literals in ``importlib.import_module`` / ``register_lazy`` calls."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    index = {"import_module": 0, "register_lazy": 1}.get(name)
    if index is not None and len(node.args) > index:
        arg = node.args[index]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield arg.value


def imports_of(module: str) -> List[Tuple[str, str, int]]:
    """``(imported module, imported name, line)`` for every package-internal import of ``module``
    (module names relative to the package; the name is the ``from ... import`` name, else "")."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: List[Tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                    found.append((_strip_package(a.name), "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                up = node.level - 1
                if up > len(base):
                    raise AssertionError(f"{module}:{node.lineno}: relative import above the package")
                base = base[: len(base) - up]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                target = _strip_package(node.module)
            else:
                continue
            for a in node.names:
                found.append((_resolve(target, a.name), a.name, node.lineno))
        elif isinstance(node, ast.Call):
            for literal in _literal_module(node):
                if literal.startswith(PACKAGE + "."):
                    found.append((_strip_package(literal), "", node.lineno))
                elif literal.startswith("."):  # import_module(".io", __name__): relative to this package
                    found.append((f"{package}{literal}" if package else literal[1:], "", node.lineno))
    return found


def _foreign_imports(module: str) -> Iterator[Tuple[str, str, int]]:
    """The imports of ``module`` that leave its own room."""
    for target, name, line in imports_of(module):
        if room(target) != room(module):
            yield target, name, line


def test_every_module_belongs_to_a_room_of_the_table():
    unknown = sorted({room(m) for m in MODULES} - set(MAY_IMPORT))
    assert not unknown, f"rooms missing from MAY_IMPORT (and docs/architecture.md): {unknown}"


def test_the_doors_are_one_way():
    """No two rooms may import each other (else the table would not be a layering)."""
    both = sorted(
        (a, b)
        for a, doors in MAY_IMPORT.items()
        for b in doors
        if a < b and a in MAY_IMPORT.get(b, ()) and "(root)" not in (a, b)
    )
    assert not both, f"rooms allowed to import each other: {both}"


def test_each_room_imports_only_through_its_doors():
    broken: List[str] = []
    seen: Set[Tuple[str, str]] = set()
    for module in MODULES:
        for target, name, line in _foreign_imports(module):
            if room(target) == "(root)":
                if name != "__version__":
                    broken.append(
                        f"{module}:{line} imports {name or 'lstm_bridge'} from the package root "
                        "(only __version__ may be imported from there)"
                    )
                    continue
            if room(target) in MAY_IMPORT[room(module)]:
                continue
            if (module, target) in EXCEPTIONS:
                seen.add((module, target))
                continue
            if (module, target) in MODULE_DOORS:
                continue
            broken.append(
                f"{module}:{line} imports {target or 'lstm_bridge'}"
                f"{'.' + name if name and target + '.' + name not in MODULES else ''}; "
                f"room {room(module)!r} may import only {sorted(MAY_IMPORT[room(module)])}"
            )
    assert not broken, "imports through closed doors (docs/architecture.md):\n" + "\n".join(broken)


def test_every_listed_exception_still_occurs():
    """An exception that the code no longer needs must leave the list (the list only shrinks)."""
    occurring = {(m, t) for m in MODULES for t, _, _ in _foreign_imports(m)}
    stale = sorted(set(EXCEPTIONS) - occurring)
    assert not stale, f"EXCEPTIONS entries that no longer occur (remove them): {stale}"


@pytest.mark.parametrize("vocabulary", ["recurrent", "activations"])
def test_the_vocabulary_imports_nothing_else_from_the_package(vocabulary):
    others = sorted({t for t, _, _ in imports_of(vocabulary)} - {"activations", "recurrent"})
    assert not others, f"{vocabulary}.py imports {others}; the vocabulary imports nothing else from the package"


@pytest.mark.parametrize("tool", ["cli", "bench", "demo"])
def test_only_the_cli_imports_the_tools(tool):
    importers = sorted(
        {m for m in MODULES for t, _, _ in imports_of(m) if room(t) == tool and room(m) not in (tool, "cli")}
    )
    assert not importers, f"{importers} import {tool}; only the CLI (and {tool} itself) may"


def test_the_library_never_imports_the_tests_or_the_tools():
    offenders: List[str] = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: List[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call):
                names = list(_literal_module(node))
            offenders += [
                f"{module}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in TEST_AND_TOOL_MODULES
            ]
    assert not offenders, "the package must not import test or tool code (tests/oracle.py ...):\n" + "\n".join(
        offenders
    )


def test_the_import_parser_sees_what_it_must():
    """The checks above are only as good as the parser: a few imports known to exist are found."""
    assert ("engine.backend", "backend") in [(t, n) for t, n, _ in imports_of("engine")]  # from . import backend
    assert any(t == "recurrent" for t, _, _ in imports_of("engine.semantics"))  # from ..recurrent import ...
    assert any(t == "" and n == "__version__" for t, n, _ in imports_of("cli"))  # from .. import __version__
    lazy = {t for t, _, _ in imports_of("formats")}
    assert {"formats.onnx", "formats.keras_h5", "formats.torch_pt"} <= lazy  # register_lazy(..., "lstm_bridge...")
    assert "io" in {t for t, _, _ in imports_of("")}  # the root's importlib.import_module(".io", __name__)
    assert any(t == "formats.keras_plan" for t, _, _ in imports_of("targets"))  # a function-level import


# --- docs/architecture.md names only files that exist ---------------------------------------------------

_PATHLIKE = re.compile(r"^[\w.\-/]+(?:\.(?:py|md|mk|txt|json|npz|cpp|toml)|/)$")


def _named_paths(text: str) -> Set[str]:
    names = set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"\]\(([^)\s#]+)", text))
    return {n for n in names if _PATHLIKE.match(n) and not n.startswith(("http", "lstm_bridge."))}


def _exists(name: str) -> bool:
    """A path relative to the repository, to ``src/lstm_bridge``, to ``docs/``, or (a bare file name) a file
    of the package."""
    for base in (ROOT, PACKAGE_DIR, ARCHITECTURE.parent):
        if (base / name).exists():
            return True
    return "/" not in name and any(PACKAGE_DIR.rglob(name))


def test_every_path_named_in_the_architecture_page_exists():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = _named_paths(text)
    assert len(named) >= 40, f"the page should name the files it describes; found {sorted(named)}"
    missing = sorted(n for n in named if not _exists(n))
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_architecture_page_lists_every_room():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rooms = sorted(r for r in MAY_IMPORT if r != "(root)")
    absent = [r for r in rooms if f"`{r}" not in text]
    assert not absent, f"rooms of the doors table missing from docs/architecture.md: {absent}"
