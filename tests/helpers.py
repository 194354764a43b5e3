"""Shared test helpers (imported as ``helpers`` by the test modules; ``conftest.py`` keeps fixtures and hooks).

* ``FIXTURES``: ``tests/fixtures`` (files written by the real frameworks).
* ``uneven`` / ``keras_weights``: random weights with a different scale per gate block (constant or
  evenly scaled weights hide gate-order bugs).
* ``max_abs``: ``max |a - b|`` in float64 over tensors or arrays of the same shape.
* ``flat_tensors`` / ``assert_same_bits``: a layer's return (a tensor or nested tuples/lists of them) as a flat
  list, and two such returns compared bit for bit (dtype, shape and values).
* ``run_fresh``: a Python snippet in a new interpreter (the default backend) that must exit 0 printing ``ok``.
* ``MAX_ERRORS``: family -> max ``|front end - oracle|`` seen in this run (filled by ``test_engine_matrix``,
  printed by the ``conftest.py`` terminal-summary hook).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from typing import Dict, List

import numpy as np
import torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
MAX_ERRORS: Dict[str, float] = {}


def run_fresh(code: str, timeout: float = 600) -> None:
    """Run ``code`` with ``python -c`` in a new process (``LSTM_BRIDGE_BACKEND`` unset: the default backend) and
    assert it exits 0 having printed ``ok``; its stderr's tail is the failure message."""
    env = {k: v for k, v in os.environ.items() if k != "LSTM_BRIDGE_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]


def uneven(rng: np.random.Generator, shape, scale: float = 0.5) -> np.ndarray:
    """Uniform weights with a different scale per gate block along the last ``4u`` (or first ``4H``) axis."""
    return (rng.uniform(-scale, scale, shape) * rng.uniform(0.5, 1.5, shape)).astype(np.float32)


def keras_weights(rng: np.random.Generator, input_dim: int, units: int, use_bias: bool = True) -> List[np.ndarray]:
    """``[kernel (I,4u), recurrent_kernel (u,4u), bias (4u,)]`` with per-gate scales."""
    gate_scale = np.repeat(rng.uniform(0.3, 1.2, 4), units).astype(np.float32)
    w = [uneven(rng, (input_dim, 4 * units)) * gate_scale, uneven(rng, (units, 4 * units)) * gate_scale]
    if use_bias:
        w.append(uneven(rng, (4 * units,)) * gate_scale)
    return w


def max_abs(a, b) -> float:
    """``max |a - b|`` in float64 (0.0 for empty arrays); the shapes must match."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def require_native_kernel() -> None:
    """Build (or load) the native kernel, whatever ``LSTM_BRIDGE_BACKEND`` says; skip the caller's tests when
    this machine has no toolchain, fail them when the build fails although the toolchain is present."""
    import os

    import pytest

    from lstm_bridge.engine import native
    from lstm_bridge.engine.native import build

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


def flat_tensors(result) -> List[torch.Tensor]:
    """A tensor, or nested tuples/lists of tensors, as a flat list in order."""
    if isinstance(result, torch.Tensor):
        return [result]
    out: List[torch.Tensor] = []
    for r in result:
        out.extend(flat_tensors(r))
    return out


def assert_same_bits(a, b) -> None:
    """Two layer returns hold the same tensors bit for bit: same count, dtypes, shapes and values."""
    a, b = flat_tensors(a), flat_tensors(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
