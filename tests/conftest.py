"""pytest fixtures and hooks only; shared helper functions live in ``helpers.py`` (import them from there)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import MAX_ERRORS


def pytest_terminal_summary(terminalreporter):
    if MAX_ERRORS:
        terminalreporter.write_line("max |error| vs the NumPy float64 reference, per family:")
        for key in sorted(MAX_ERRORS):
            terminalreporter.write_line(f"  {key:<40} {MAX_ERRORS[key]:.3e}")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that sets ``torch.set_num_threads`` (the bench CLI does) must not leak it into later tests: the
    engine's path policy reads the thread count (``backend.NATIVE_STANDARD_TRAIN_MIN_THREADS``)."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
