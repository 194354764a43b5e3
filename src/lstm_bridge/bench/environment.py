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


#: --frameworks names -> participants (``keras3`` is both Keras 3 backends)
_FRAMEWORK_NAMES = {
    "tf": ["tensorflow"],
    "tensorflow": ["tensorflow"],
    "ms": ["mindspore"],
    "mindspore": ["mindspore"],
    "keras3": ["keras3-tf", "keras3-torch"],
    "keras3-tf": ["keras3-tf"],
    "keras3-torch": ["keras3-torch"],
}


def available_frameworks(requested: str) -> List[str]:
    """The framework participants of a run. ``auto``: TF/Keras and MindSpore importable here (LSTM rows) and
    the family rows' worker frameworks whose interpreter is found (:func:`participants.child_python`); an
    explicit list keeps every name, so a missing framework is recorded row by row (never dropped silently)."""
    from .participants import CHILD_FRAMEWORKS, child_python

    if requested == "none":
        return []
    if requested == "auto":
        found = [w for w in ("tensorflow", "mindspore") if importable(w)]
        found += [w for w in CHILD_FRAMEWORKS if w not in found and child_python(w) is not None]
        return found
    parts = [p.strip() for p in requested.split(",") if p.strip()]
    unknown = [p for p in parts if p not in _FRAMEWORK_NAMES]
    if unknown:
        raise ValueError(
            f"--frameworks takes auto, none or a list of {', '.join(_FRAMEWORK_NAMES)}; received {unknown}"
        )
    return list(dict.fromkeys(w for p in parts for w in _FRAMEWORK_NAMES[p]))


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
