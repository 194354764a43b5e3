"""Building the native kernel (``lstm.cpp``) with ``torch.utils.cpp_extension``, and importing it.

The extension is compiled once per (source, flags, torch and Python version) and cached under
``$LSTM_BRIDGE_CACHE`` (default ``~/.cache/lstm_bridge/native``) as ``<name>/<name>.so``. Building
prints one line on stderr.

Concurrency: the build compiles and links in a private staging directory and installs the finished
library with one atomic rename, so the final path only ever holds a complete file and a process that
finds it may import it without any lock. A file lock (:mod:`.filelock`) around the build keeps
concurrent processes from compiling the same kernel twice: the second one waits, then imports the
installed library. Thread safety within a process is :mod:`.loader`'s job.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import List, Tuple

import torch

from . import filelock

HERE = Path(__file__).resolve().parent
SOURCES = ("lstm.cpp", "family.cpp", "buffer_pool.cpp")
HEADERS = ("lstm.h", "kernel_common.h", "family.h", "buffer_pool.h")

# Compile flags per ATen CPU capability: the at::vec types follow CPU_CAPABILITY_*.
_ARCH_FLAGS = {
    "AVX512": [
        "-DCPU_CAPABILITY=AVX512",
        "-DCPU_CAPABILITY_AVX512",
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
        "-mavx512dq",
        "-mavx2",
        "-mfma",
        "-mf16c",
    ],
    "AVX2": ["-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2", "-mavx2", "-mfma", "-mf16c"],
}
# -ffp-contract=off: no silent FMA contraction, so pointwise results round like the torch path.
_COMMON_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-std=c++17"]


def cache_root() -> Path:
    """Where built kernels live: ``$LSTM_BRIDGE_CACHE`` or ``~/.cache/lstm_bridge/native``."""
    env = os.environ.get("LSTM_BRIDGE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lstm_bridge" / "native"


def _capability() -> str:
    cap = torch.backends.cpu.get_cpu_capability()
    return cap if cap in _ARCH_FLAGS else "DEFAULT"


def capability() -> str:
    """The ATen CPU capability the kernel is compiled for: ``"AVX512"``, ``"AVX2"`` or ``"DEFAULT"``."""
    return _capability()


def mkl_packed_gemm() -> bool:
    """True when libtorch_cpu exports MKL's packed-GEMM API (torch built with MKL, e.g. x86 wheels)."""
    if not torch.backends.mkl.is_available():  # type: ignore[no-untyped-call]
        return False
    library = Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"
    if not library.exists():
        return False
    try:
        handle = ctypes.CDLL(str(library))
    except OSError:
        return False
    return all(hasattr(handle, s) for s in ("cblas_sgemm_pack_get_size", "cblas_sgemm_pack", "cblas_sgemm_compute"))


def openmp_flags() -> List[str]:
    """``-fopenmp`` when torch's ATen runs on OpenMP, else nothing.

    ``at::parallel_for`` is a header template: compiled without ``-fopenmp`` it silently runs every item
    on the calling thread. The link resolves ``libgomp.so.1`` by soname, so at run time the kernel shares
    the OpenMP runtime (and ``torch.set_num_threads``) of the libgomp torch already loaded.
    """
    return ["-fopenmp"] if torch.backends.openmp.is_available() else []  # type: ignore[no-untyped-call]


def sleef_tanh_u35() -> bool:
    """True when libtorch_cpu exports Sleef's 3.5-ulp float32 tanh for this build's vector width."""
    symbol = {"AVX512": "Sleef_tanhf16_u35avx512f", "AVX2": "Sleef_tanhf8_u35avx2"}.get(_capability())
    if symbol is None:
        return False
    library = Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"
    if not library.exists():
        return False
    try:
        return hasattr(ctypes.CDLL(str(library)), symbol)
    except OSError:
        return False


def compile_flags() -> List[str]:
    """The C++ flags used for this machine's build."""
    cap = _capability()
    flags = _COMMON_FLAGS + _ARCH_FLAGS.get(cap, ["-DCPU_CAPABILITY=DEFAULT"]) + openmp_flags()
    if mkl_packed_gemm():
        flags.append("-DLSTM_BRIDGE_MKL_PACKED")
    if sleef_tanh_u35():
        flags.append("-DLSTM_BRIDGE_SLEEF_TANH_U35")
    return flags


def module_name() -> str:
    """Extension name: a digest of sources, flags and torch version, so any change rebuilds."""
    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update((HERE / name).read_bytes())
    digest.update(" ".join(compile_flags()).encode())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    return "lstm_bridge_native_" + digest.hexdigest()[:16]


def toolchain_problem() -> str:
    """Why a build cannot even start (no ninja, no C++ compiler), or '' when it can."""
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return "ninja is not installed (pip install ninja)"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} not found on PATH)"
    return ""


def library_path(name: str) -> Path:
    """Where the finished kernel ``name`` lives; only ever written by an atomic rename."""
    return cache_root() / name / f"{name}.so"


def _import_built(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the native kernel from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(name: str, directory: Path, verbose: bool) -> ModuleType:
    """Compile and link the kernel into ``directory`` (ninja, objects, ``<name>.so``) and import it."""
    from torch.utils import cpp_extension

    module: ModuleType = cpp_extension.load(
        name=name,
        sources=[str(HERE / s) for s in SOURCES],
        extra_cflags=compile_flags(),
        extra_include_paths=[str(HERE)],
        extra_ldflags=openmp_flags(),
        build_directory=str(directory),
        verbose=verbose,
    )
    return module


def _remove_stale_staging(build_dir: Path) -> None:
    """Staging directories left by killed builds (only called with the inter-process lock held)."""
    if filelock.KIND == "none":  # without a real lock another process may be using one right now
        return
    for stale in build_dir.glob("staging-*"):
        shutil.rmtree(stale, ignore_errors=True)


def load(verbose: bool = False) -> Tuple[ModuleType, bool]:
    """Import the kernel, building it first when it is not cached; returns ``(module, built_now)``.

    Safe to call from several processes at once; not from several threads of one process at once
    (:mod:`.loader` serialises those).

    Raises:
        RuntimeError: the toolchain is missing or compilation failed (the compiler's message included).
        ImportError, OSError: the cached library exists but cannot be imported.
    """
    name = module_name()
    library = library_path(name)
    if library.exists():  # complete by construction: installed by rename
        return _import_built(library, name), False
    problem = toolchain_problem()
    if problem:
        raise RuntimeError(problem)
    build_dir = library.parent
    build_dir.mkdir(parents=True, exist_ok=True)
    with filelock.exclusive(build_dir / "build.lock"):  # another process may be building: wait for it
        if library.exists():
            return _import_built(library, name), False
        _remove_stale_staging(build_dir)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=build_dir))
        try:
            print("lstm-bridge: building native kernel (once, ~1 min)...", file=sys.stderr, flush=True)
            module = _compile(name, staging, verbose)
            os.replace(staging / library.name, library)  # atomic: loaders see no file or a whole one
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print(f"lstm-bridge: native kernel built in {build_dir}", file=sys.stderr, flush=True)
        return module, True
