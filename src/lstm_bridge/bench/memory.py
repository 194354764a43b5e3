"""Train-step peak memory, measured in a forked child of a helper process (Linux only); see the
package docstring for the method."""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
import tempfile
from typing import Any, Dict, Optional

import torch

from .configs import Config, make_inputs
from .environment import describe_native
from .participants import build_workload


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key} line")


def _measure_memory_here(task: Dict[str, Any]) -> Dict[str, Any]:
    """In a fresh (forked) process: peak RSS increase of one train step of ``task``'s workload."""
    torch.set_num_threads(int(task["threads"]))
    cfg = Config(**task["config"])
    data = make_inputs(cfg, int(task.get("seed", 0)))
    work = build_workload(task["impl"], cfg, task["variant"], data, int(task["threads"]))
    if work is None:
        return {"error": f"{task['impl']} cannot express variant {task['variant']!r}"}
    work.train()
    work.train()
    work.zero_grad()
    gc.collect()
    from ..engine import native

    native.release_workspace()  # the kernel's pool starts empty: the step's own peak, not the warm-up's blocks
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    before = _proc_status_kb("VmRSS")
    work.train()
    peak = _proc_status_kb("VmHWM")
    return {"peak_bytes": max(0, peak - before) * 1024, "rss_before_bytes": before * 1024, "path": work.path()}


def worker_main() -> None:  # pragma: no cover - runs in the helper subprocess
    """Helper process: reads JSON tasks (one a line) on stdin, forks a child per task, prints JSON results.

    The front ends (and the native kernel, if any) are imported here once, before any fork; no parallel
    region has run in this process, so each child starts its own thread pool cleanly.
    """
    from .. import keras, mindspore  # noqa: F401 (pre-import for the children)

    describe_native()
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                result = _measure_memory_here(task)
            except BaseException as exc:  # reported to the parent as this task's error, never swallowed
                result = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(w, json.dumps(result).encode())
            os.close(w)
            os._exit(0)
        os.close(w)
        chunks = []
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        payload = b"".join(chunks)
        result = json.loads(payload) if payload else {"error": f"memory probe child died (wait status {status})"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


class MemoryProbe:
    """The helper subprocess of the memory measurement (see the module docstring); Linux only."""

    def __init__(self, timeout_s: float = 300.0):
        self.timeout_s = timeout_s
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = tempfile.TemporaryFile()

    @staticmethod
    def supported() -> Optional[str]:
        """None when the method works here, else why not."""
        if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
            return f"needs Linux /proc and fork (platform {sys.platform})"
        if not os.path.exists("/proc/self/clear_refs"):
            return "/proc/self/clear_refs is missing"
        return None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # fixed threshold: no dynamic growth, frees go back to the OS
        env["MALLOC_TRIM_THRESHOLD_"] = "131072"
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../src
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return subprocess.Popen(
            [sys.executable, "-c", "from lstm_bridge.bench.memory import worker_main as m; m()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            bufsize=1,
        )

    def measure(self, task: Dict[str, Any]) -> Dict[str, Any]:
        """Run one task ``{"impl", "config": Config fields, "variant", "threads", "seed"}``."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(task) + "\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], self.timeout_s)
        line = self._proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            return {"error": f"memory probe gave no answer within {self.timeout_s:.0f} s: {self._stderr_tail()}"}
        return json.loads(line)

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-400:].strip() or "no stderr"

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None and self._proc.stdin is not None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
