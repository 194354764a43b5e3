"""``lstm-bridge convert`` under SIGINT / SIGTERM and races: temporary files never survive, an interrupted run
never touches OUT and always exits 128 + signum, and of two runs racing for one new OUT exactly one wins.

Each case runs the real CLI in a subprocess. A small driver script imports ``lstm_bridge.cli`` and wraps one
step of the conversion (the writer, the verification, the final move) so that it announces itself on stdout
and then sleeps: the test sends the signal while the run is exactly there. One case uses no hook at all: a
generated ~24 MB model and a signal sent as soon as the temporary file appears.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import FIXTURES

SRC = FIXTURES / "mindspore" / "lstm_small.ckpt"

DRIVER = textwrap.dedent("""
    import os, sys, time
    hook, ready_dir = sys.argv[1], sys.argv[2]
    argv = sys.argv[3:]

    def announce(name):
        print("AT " + name, flush=True)

    def wait_for_peers():
        open(os.path.join(ready_dir, "ready-%d" % os.getpid()), "w").close()
        deadline = time.time() + 60
        while len([n for n in os.listdir(ready_dir) if n.startswith("ready-")]) < 2 and time.time() < deadline:
            time.sleep(0.01)

    import lstm_bridge.convert as conv
    import lstm_bridge.formats.atomic as atomic
    import torch
    if hook == "write":                       # inside the writer, after the bytes are on disk
        real_save = torch.save
        def slow_save(*a, **k):
            real_save(*a, **k)
            announce("write")
            time.sleep(60)
        torch.save = slow_save
    elif hook in ("verify", "swallow"):        # during the verification of the written file
        real_compare = conv.compare_chains
        def slow_compare(*a, **k):
            announce(hook)
            if hook == "swallow":               # library code that catches and drops the interrupt
                try:
                    time.sleep(60)
                except BaseException:
                    pass
            else:
                time.sleep(60)
            return real_compare(*a, **k)
        conv.compare_chains = slow_compare
    elif hook == "commit":                     # right before OUT is moved into place
        real_commit = atomic.commit
        def slow_commit(*a, **k):
            announce("commit")
            # signals are blocked around the move, so this sleep is not interrupted: it only has to outlast
            # the test's send_signal (which follows the announcement at once)
            time.sleep(5)
            return real_commit(*a, **k)
        atomic.commit = slow_commit
    elif hook == "race":                       # both runs verified, then both go for OUT at once
        real_compare = conv.compare_chains
        def synced(*a, **k):
            wait_for_peers()
            return real_compare(*a, **k)
        conv.compare_chains = synced
    from lstm_bridge.cli import main
    sys.exit(main(argv))
""")


def _driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return path


def _start(driver: Path, hook: str, ready: Path, argv, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(driver), hook, str(ready), *map(str, argv)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() == marker:
            return
    proc.kill()
    out, err = proc.communicate()
    raise AssertionError(f"the run never reached {marker!r}; rc={proc.returncode}\nstdout:{out}\nstderr:{err}")


def _hidden(directory: Path):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(
    "hook,sig,existing",
    [
        ("write", signal.SIGTERM, False),
        ("write", signal.SIGINT, True),
        ("verify", signal.SIGTERM, True),
        ("commit", signal.SIGTERM, False),
        ("commit", signal.SIGINT, True),
        ("swallow", signal.SIGINT, True),
        ("swallow", signal.SIGTERM, False),
    ],
)
def test_interrupt_removes_temp_files_and_leaves_out_untouched(tmp_path, hook, sig, existing):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ready = tmp_path / "ready"
    ready.mkdir()
    out = out_dir / "o.pt"
    if existing:
        out.write_bytes(b"previous OUT")
    argv = ["convert", SRC, out] + (["--force"] if existing else [])
    proc = _start(_driver(tmp_path), hook, ready, argv, tmp_path)
    _wait_for_line(proc, f"AT {hook}")
    assert _hidden(out_dir), "the run should be holding a temporary file at this point"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "Traceback" not in err and f"interrupted by {signal.Signals(sig).name}" in err, err
    assert _hidden(out_dir) == [], "a temporary file was left behind"
    if existing:
        assert out.read_bytes() == b"previous OUT"
    else:
        assert not os.path.lexists(out)


def test_sigterm_on_a_large_real_conversion_leaves_nothing_behind(tmp_path):
    """No hook: a ~24 MB PyTorch file, SIGTERM as soon as the temporary file shows up."""
    import torch

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(768, 768, num_layers=2)
    src = tmp_path / "big.pt"
    torch.save(lstm.state_dict(), src)
    assert src.stat().st_size > 20 * 2**20
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "big.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstm_bridge.cli", "convert", str(src), str(out), "--progress", "never"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not _hidden(out_dir) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the conversion ended before its temporary file was seen"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err)
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_two_converts_racing_for_one_new_out_exactly_one_wins(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ready = tmp_path / "ready"
    ready.mkdir()
    out = out_dir / "o.pt"
    driver = _driver(tmp_path)
    procs = [_start(driver, "race", ready, ["convert", SRC, out], tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=180), p.communicate()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    errs = "".join(e for _, (_, e) in results)
    assert codes == [0, 2], (codes, errs)
    assert "already exists" in errs and "--force" in errs
    assert sorted(p.name for p in out_dir.iterdir()) == ["o.pt"]
    from lstm_bridge.io import load

    assert load(out).framework == "torch"


def test_a_swallowed_interrupt_still_fails_the_run_in_process(tmp_path, capsys, monkeypatch):
    """In-process: library code that catches the KeyboardInterrupt cannot make ``main`` forget the signal."""
    import lstm_bridge.convert as conv
    from lstm_bridge.cli import main

    real = conv.compare_chains

    def swallow(*a, **k):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            pass
        return real(*a, **k)

    monkeypatch.setattr(conv, "compare_chains", swallow)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out = tmp_path / "o.pt"
    assert main(["convert", str(SRC), str(out)]) == 130
    assert "interrupted by SIGINT" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    # the handlers are put back once the command has run
    assert {s: signal.getsignal(s) for s in before} == before


def test_atomic_output_claims_exclusively_and_cleans_up_on_interrupts(tmp_path):
    from lstm_bridge.formats.atomic import atomic_output, commit, create_temp

    target = tmp_path / "t.bin"
    target.symlink_to(tmp_path / "missing")  # dangling: still "exists" for an exclusive claim
    with pytest.raises(FileExistsError):
        with atomic_output(target, exclusive=True) as tmp:
            Path(tmp).write_bytes(b"new")
    assert target.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "u.bin") as tmp:
            Path(tmp).write_bytes(b"half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    with atomic_output(tmp_path / "v.bin", exclusive=True) as tmp:
        Path(tmp).write_bytes(b"v")
    assert (tmp_path / "v.bin").read_bytes() == b"v"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin", "v.bin"]
    # commit(replace=False) never replaces; replace=True replaces the link itself, not its target
    tmp = create_temp(target)
    with pytest.raises(FileExistsError):
        commit(tmp, tmp_path / "v.bin", replace=False)
    commit(tmp, target, replace=True)
    assert not target.is_symlink() and not (tmp_path / "missing").exists()
