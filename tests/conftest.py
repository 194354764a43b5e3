"""Shared test helpers: random uneven weights (constant weights hide gate-order bugs) and fixtures."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
MAX_ERRORS: dict = {}  # family -> max |front end - reference| seen in this run (test_engine_matrix)


def pytest_terminal_summary(terminalreporter):
    if MAX_ERRORS:
        terminalreporter.write_line("max |error| vs the NumPy float64 reference, per family:")
        for key in sorted(MAX_ERRORS):
            terminalreporter.write_line(f"  {key:<40} {MAX_ERRORS[key]:.3e}")


def uneven(rng: np.random.Generator, shape, scale: float = 0.5) -> np.ndarray:
    """Uniform weights with a different scale per gate block along the last ``4u`` (or first ``4H``) axis."""
    return (rng.uniform(-scale, scale, shape) * rng.uniform(0.5, 1.5, shape)).astype(np.float32)


def keras_weights(rng: np.random.Generator, input_dim: int, units: int, use_bias: bool = True):
    """``[kernel (I,4u), recurrent_kernel (u,4u), bias (4u,)]`` with per-gate scales."""
    gate_scale = np.repeat(rng.uniform(0.3, 1.2, 4), units).astype(np.float32)
    w = [uneven(rng, (input_dim, 4 * units)) * gate_scale, uneven(rng, (units, 4 * units)) * gate_scale]
    if use_bias:
        w.append(uneven(rng, (4 * units,)) * gate_scale)
    return w


def max_abs(a, b) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
