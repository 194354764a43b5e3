"""What the run finds on this machine: optional frameworks, the native kernel's state, the load,
and the metadata block of ``results.json``."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import os
import platform
from typing import Any, Dict, List, Optional

import torch


def importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def available_frameworks(requested: str) -> List[str]:
    if requested == "none":
        return []
    wanted = (
        ["tensorflow", "mindspore"]
        if requested == "auto"
        else [
            {"tf": "tensorflow", "ms": "mindspore"}.get(p.strip(), p.strip()) for p in requested.split(",") if p.strip()
        ]
    )
    unknown = [w for w in wanted if w not in ("tensorflow", "mindspore")]
    if unknown:
        raise ValueError(f"--frameworks takes auto, none or a list of tf, ms; received {unknown}")
    return [w for w in wanted if importable(w)]


def describe_native() -> str:
    """Whether the native kernel can run (building it now, outside any timing, if it is not cached)."""
    from ..engine import backend

    if backend.requested() == "torch":
        return "disabled (LSTM_BRIDGE_BACKEND=torch)"
    try:
        from ..engine import native
    except ImportError as exc:
        return f"not installed ({exc})"
    return "available" if native.available() else f"unavailable ({native.error()})"


def run_metadata(args: argparse.Namespace, threads: int) -> Dict[str, Any]:
    from ..engine import backend

    native_state = describe_native()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m lstm_bridge.bench " + " ".join(args.argv),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "backend_requested": backend.requested(),
        "native": native_state,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "quick": bool(args.quick),
        "load_start": loadavg(),
    }


def loadavg() -> Optional[float]:
    """The 1-minute load average (None where the OS has none): other work on the machine skews timings."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None
