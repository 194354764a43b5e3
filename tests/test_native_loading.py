"""Loading the native kernel safely: several threads, several processes, platforms without ``fcntl``.

The compiler is the one thing these tests replace: ``build._compile`` becomes a stand-in "link" that
writes the real, already built library into the staging directory it is given in two halves with a
pause between (a slow linker), so a reader that looked at the final path mid-build would see a short
file. Everything else (cache layout, lock, staging, rename, import) is the real code. The kernel
itself is built once per session by the ``real_library`` fixture (a cache hit normally).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path
from typing import List

import pytest
import torch

from lstm_bridge import activations as A
from lstm_bridge.engine import backend, native, run_layer
from lstm_bridge.engine.native import build, filelock, loader
from lstm_bridge.engine.semantics import CellActivations, DirectionWeights, LayerSemantics

from helpers import run_fresh

SEMANTICS = LayerSemantics(CellActivations(A.hard_sigmoid_keras2, A.tanh, A.tanh))

# Stand-in for the compiler, for subprocesses: installed by the code under test's own seam.
FAKE_COMPILE = r"""
import os, sys, time
from pathlib import Path
from lstm_bridge.engine.native import build

def _fake_compile(name, directory, verbose):
    with open(os.environ["LB_TEST_COMPILE_LOG"], "a") as log:
        log.write(f"{os.getpid()} {directory}\n")
    data = Path(os.environ["LB_TEST_REAL_SO"]).read_bytes()
    target = Path(directory) / f"{name}.so"
    with open(target, "wb") as out:
        out.write(data[: len(data) // 2])
        out.flush()
        wait_for = os.environ.get("LB_TEST_WAIT_FOR")
        deadline = time.monotonic() + 120
        while wait_for and not os.path.exists(wait_for) and time.monotonic() < deadline:
            time.sleep(0.05)  # hold the link open until the other process has arrived
        time.sleep(float(os.environ.get("LB_TEST_LINK_SECONDS", "1")))
        out.write(data[len(data) // 2:])
    return build._import_built(target, name)

build._compile = _fake_compile
"""

RUN_ONE_LAYER = r"""
import os
import torch
from lstm_bridge import activations as A
from lstm_bridge.engine import backend, run_layer
from lstm_bridge.engine.semantics import CellActivations, DirectionWeights, LayerSemantics
x = torch.randn(4, 2, 3)
w = DirectionWeights(torch.randn(8, 3), torch.randn(8, 2))
z = torch.zeros(2, 2)
if os.environ.get("LB_TEST_ARRIVED"):
    open(os.environ["LB_TEST_ARRIVED"], "w").close()  # imports done: this process now looks at the cache
run_layer(x, [w], [z], [z], reverse=[False], semantics=LayerSemantics(CellActivations(A.relu)))
assert backend.last_used == "native", backend.last_used
print("RAN", backend.last_used)
"""


@pytest.fixture(scope="module")
def real_library() -> Path:
    """The kernel built for this machine in the default cache (built now if missing)."""
    saved = os.environ.pop("LSTM_BRIDGE_BACKEND", None)
    try:
        ok = native.available()
    finally:
        if saved is not None:
            os.environ["LSTM_BRIDGE_BACKEND"] = saved
    if not ok:
        problem = build.toolchain_problem()
        if problem:
            pytest.skip(f"native kernel cannot be built here: {problem}")
        pytest.fail(f"native kernel failed to build although the toolchain is present: {native.error()}")
    return build.library_path(build.module_name())


def _case():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 4, generator=gen)
    w = DirectionWeights(
        torch.randn(12, 4, generator=gen), torch.randn(12, 3, generator=gen), torch.randn(12, generator=gen), None
    )
    h = torch.randn(3, 3, generator=gen)
    return x, [w], [h], [h.clone()]


def _fresh_loader(monkeypatch) -> List[int]:
    """Forget this process's loaded kernel; build.load then takes 0.3 s (a slow import) and counts calls."""
    real = native.module()
    assert real is not None
    calls: List[int] = []

    def slow_load(verbose: bool = False):
        calls.append(threading.get_ident())
        time.sleep(0.3)
        return real, False

    monkeypatch.setattr(loader, "_module", None)
    monkeypatch.setattr(loader, "_tried", False)
    monkeypatch.setattr(loader, "_error", None)
    monkeypatch.setattr(backend, "_warned", False)
    monkeypatch.setattr(build, "load", slow_load)
    return calls


@pytest.mark.parametrize("mode", ["auto", "native"])
def test_first_calls_from_many_threads_all_run_native(real_library, monkeypatch, mode):
    """Eight threads make the process's first native call at once: all get the kernel's results
    (no "kernel unavailable: unknown reason", no fallback warning), and the kernel loads once."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "torch")
    x, dirs, h0, c0 = _case()
    want = run_layer(x, dirs, h0, c0, reverse=[False], semantics=SEMANTICS)[0][0]
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", mode)
    calls = _fresh_loader(monkeypatch)
    n = 8
    barrier = threading.Barrier(n)
    results: List[object] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = run_layer(x, dirs, h0, c0, reverse=[False], semantics=SEMANTICS)[0][0]
        except Exception as exc:  # noqa: BLE001 (reported below, per thread)
            results[i] = exc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    errors = [r for r in results if not isinstance(r, torch.Tensor)]
    assert not errors, errors
    assert [str(w.message) for w in caught if "native" in str(w.message)] == []
    assert len(calls) == 1
    assert backend.last_used == "native"
    for r in results:
        torch.testing.assert_close(r, want, rtol=1e-5, atol=1e-5)


def test_a_failed_load_is_shared_by_all_waiting_threads(real_library, monkeypatch):
    """The outcome of the one load is what every concurrent caller sees, failure included (with its reason)."""
    monkeypatch.setenv("LSTM_BRIDGE_BACKEND", "auto")
    _fresh_loader(monkeypatch)
    calls: List[int] = []

    def failing_load(verbose: bool = False):
        calls.append(1)
        time.sleep(0.2)
        raise RuntimeError("no C++ compiler ('c++' not found on PATH)")

    monkeypatch.setattr(build, "load", failing_load)
    answers: List[object] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        answers.append((native.available(), native.error()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reason = "native kernel build/load failed: no C++ compiler ('c++' not found on PATH)"
    assert answers == [(False, reason)] * 4
    assert len(calls) == 1


def test_the_final_library_path_only_ever_holds_a_complete_file(real_library, monkeypatch, tmp_path):
    """While a (slow) build links, the final path does not exist; then it appears whole, by rename.
    A loader that finds the final path therefore never imports a short file."""
    data = real_library.read_bytes()
    monkeypatch.setenv("LSTM_BRIDGE_CACHE", str(tmp_path / "cache"))
    name = build.module_name()
    final = build.library_path(name)
    assert str(final).startswith(str(tmp_path))
    mid_link = threading.Event()
    finish = threading.Event()

    def slow_compile(name_: str, directory: Path, verbose: bool) -> object:
        target = directory / f"{name_}.so"
        with open(target, "wb") as out:
            out.write(data[: len(data) // 2])
            out.flush()
            mid_link.set()
            finish.wait(10)
            out.write(data[len(data) // 2 :])
        return types.SimpleNamespace(built_in=str(directory))

    monkeypatch.setattr(build, "_compile", slow_compile)
    monkeypatch.setattr(build, "toolchain_problem", lambda: "")
    box: List[object] = []
    builder = threading.Thread(target=lambda: box.append(build.load()))
    builder.start()
    assert mid_link.wait(10)
    seen_mid_link = sorted(p.name for p in final.parent.iterdir())
    final_exists_mid_link = final.exists()
    finish.set()
    builder.join(10)
    assert not final_exists_mid_link, seen_mid_link
    module, built_now = box[0]
    assert built_now is True
    assert module.built_in != str(final.parent)  # linked elsewhere (a staging directory) ...
    assert final.read_bytes() == data  # ... and installed whole
    assert sorted(p.name for p in final.parent.iterdir()) == ["build.lock", final.name]  # staging removed


def _subprocess_env(tmp_path: Path, real_library: Path, **extra: str) -> dict:
    env = dict(
        os.environ,
        LSTM_BRIDGE_CACHE=str(tmp_path / "cache"),
        LSTM_BRIDGE_BACKEND="auto",
        LB_TEST_REAL_SO=str(real_library),
        LB_TEST_COMPILE_LOG=str(tmp_path / "compile.log"),
    )
    env.update(extra)
    return env


def test_two_processes_building_into_an_empty_cache_both_succeed(real_library, tmp_path):
    """Process A starts building into an empty cache and holds its link open until process B has
    arrived (B's imports done, about to look at the cache). Both run the kernel; it was compiled once
    (B found no library, waited on the lock, then imported A's finished one)."""
    arrived = tmp_path / "b-arrived"
    env_a = _subprocess_env(tmp_path, real_library, LB_TEST_LINK_SECONDS="2", LB_TEST_WAIT_FOR=str(arrived))
    env_b = _subprocess_env(tmp_path, real_library, LB_TEST_ARRIVED=str(arrived))
    code = FAKE_COMPILE + RUN_ONE_LAYER
    a = subprocess.Popen(
        [sys.executable, "-c", code], env=env_a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "compile.log"
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline and a.poll() is None:
        time.sleep(0.05)
    assert log.exists(), "process A never started its build"
    b = subprocess.Popen(
        [sys.executable, "-c", code], env=env_b, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out_a, err_a = a.communicate(timeout=180)
    out_b, err_b = b.communicate(timeout=180)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    assert "RAN native" in out_a and "RAN native" in out_b
    assert len(log.read_text().splitlines()) == 1  # compiled once
    assert "building native kernel" in err_a and "building native kernel" not in err_b
    final = tmp_path / "cache" / real_library.parent.name / real_library.name
    assert final.read_bytes() == real_library.read_bytes()


def test_without_fcntl_the_kernel_still_loads_with_a_visible_warning(real_library, tmp_path):
    """A platform where neither fcntl nor msvcrt imports: importing the package and selecting the
    backend work, the first build runs under an in-process lock and says so (RuntimeWarning)."""
    code = (
        "import sys, warnings\n"
        "sys.modules['fcntl'] = None\n"
        "sys.modules['msvcrt'] = None\n"
        "warnings.simplefilter('always')\n" + FAKE_COMPILE + "from lstm_bridge.engine.native import filelock\n"
        "assert filelock.KIND == 'none', filelock.KIND\n" + RUN_ONE_LAYER
    )
    env = _subprocess_env(tmp_path, real_library, LB_TEST_LINK_SECONDS="0")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "RAN native" in proc.stdout
    assert "RuntimeWarning: lstm-bridge: no inter-process file lock on this platform" in proc.stderr
    assert "native CPU kernel unavailable" not in proc.stderr


class _FakeMsvcrt(types.ModuleType):
    """msvcrt.locking's contract (one byte at the file position; LK_NBLCK raises OSError while held)."""

    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.calls: List[tuple] = []
        self.held = False

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((mode, nbytes, os.lseek(fd, 0, os.SEEK_CUR)))
        if mode == self.LK_NBLCK:
            if self.held:
                raise OSError(36, "Resource deadlock avoided")
            self.held = True
        elif mode == self.LK_UNLCK:
            self.held = False


def test_without_fcntl_msvcrt_locks_the_build(monkeypatch, tmp_path):
    """Where fcntl is missing and msvcrt exists (Windows), the lock is msvcrt's byte lock, polled."""
    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    try:
        importlib.reload(filelock)
        assert filelock.KIND == "msvcrt"
        fake.held = True  # another process holds it: the first attempts fail, then it is released
        threading.Timer(0.5, lambda: setattr(fake, "held", False)).start()
        with filelock.exclusive(tmp_path / "build.lock"):
            assert fake.held
        assert not fake.held
        modes = [c[0] for c in fake.calls]
        assert modes.count(_FakeMsvcrt.LK_NBLCK) >= 2 and modes[-1] == _FakeMsvcrt.LK_UNLCK
        assert all(c[1] == 1 and c[2] == 0 for c in fake.calls)
    finally:
        monkeypatch.undo()
        importlib.reload(filelock)
    if os.name == "posix":
        assert filelock.KIND == "fcntl"


def test_available_carries_dynamos_constant_marker_without_importing_dynamo():
    """``loader.available`` is marked as ``torch.compiler.assume_constant_result`` marks a function (dynamo
    calls it instead of tracing a build under a lock) without that decorator's import of ``torch._dynamo``
    (~0.9 s): importing the ops leaves dynamo unloaded."""

    def probe() -> bool:
        return True

    marks = dict(vars(torch.compiler.assume_constant_result(probe)))
    assert marks and all(getattr(loader.available, k, None) == v for k, v in marks.items())
    code = "import sys, torch, lstm_bridge.ops\nassert 'torch._dynamo' not in sys.modules\nprint('ok')\n"
    run_fresh(code, timeout=300)
