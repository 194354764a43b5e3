"""Shared, framework-free helpers for the golden-fixture generator (``tools/make_golden.py``).

Only the standard library and NumPy are used here, so this module runs unchanged inside every golden
environment (``.golden-venvs/tf`` with NumPy 2, ``.golden-venvs/ms`` with NumPy 1.26) and inside the
project's own test environment (``tests/test_live.py`` imports it).

Determinism: every random draw comes from ``numpy.random.RandomState`` (the legacy generator, whose
streams NumPy guarantees to be stable across versions), seeded from a CRC32 of the case id, so a case's
inputs and weights depend on nothing but its id. ``write_npz`` writes a zip with fixed timestamps and
sorted members, so regenerating gives byte-identical files for identical arrays.

Conventions of the stored data (see ``tests/golden/README.md``):

* every float array is float32; masks are bool; ``seq_length`` is int32;
* an array is stored under ``"<case id>/<name>"`` in the flavour's ``.npz``;
* Keras weights are in Keras layout (``kernel (I, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``,
  gate blocks i, f, c, o); MindSpore weights under their MindSpore/PyTorch names and layouts
  (``weight_ih_l0 (4H, I)`` ...).
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

FORMAT_VERSION = 1

#: Mask layouts of the option matrix; each describes a (B, T) bool mask, True = keep.
MASK_KINDS = ("none", "right", "left", "holes", "fully_masked_row", "mixed")


def rng_for(case_id: str, salt: str = "") -> np.random.RandomState:
    """A ``RandomState`` that depends only on ``case_id`` (and ``salt``)."""
    return np.random.RandomState(zlib.crc32(f"{case_id}|{salt}".encode()) & 0x7FFFFFFF)


def uniform32(rng: np.random.RandomState, low: float, high: float, shape: Sequence[int]) -> np.ndarray:
    """float32 uniform draws in ``[low, high)``."""
    return rng.uniform(low, high, size=tuple(shape)).astype(np.float32)


def gate_scaled(rng: np.random.RandomState, shape: Sequence[int], units: int, axis: int) -> np.ndarray:
    """Random uneven LSTM weights: ``uniform(-0.5, 0.5)`` times a random scale per gate block.

    ``axis`` is the ``4 * units`` axis (1 for Keras ``(I, 4u)``, 0 for MindSpore ``(4H, I)``). Each of the
    four gate blocks gets its own scale in ``[0.4, 2.0)``, so a gate-order mistake cannot cancel out.
    """
    w = rng.uniform(-0.5, 0.5, size=tuple(shape))
    scales = rng.uniform(0.4, 2.0, size=4)
    per = np.repeat(scales, units)
    if axis == 0:
        w = w * per.reshape((-1,) + (1,) * (len(shape) - 1))
    else:
        w = w * per.reshape((1,) * axis + (-1,) + (1,) * (len(shape) - axis - 1))
    return w.astype(np.float32)


def make_mask(rng: np.random.RandomState, kind: str, batch: int, steps: int) -> Optional[np.ndarray]:
    """A ``(batch, steps)`` bool mask of the given kind (``MASK_KINDS``), or None for ``"none"``.

    * ``right``: every row is a valid prefix (lengths drawn in ``[1, T]``, row 0 is full).
    * ``left``: every row is a valid suffix (left padding), row 0 is full.
    * ``holes``: isolated masked steps inside the sequence (never the whole row).
    * ``fully_masked_row``: row 1 (or the only row) entirely masked, the others random right padding.
    * ``mixed``: one row of each: full, right padded, left padded, holes, fully masked (cycled).
    """
    if kind == "none":
        return None
    m = np.ones((batch, steps), dtype=bool)

    def right(row: int, length: int) -> None:
        m[row, length:] = False

    def left(row: int, length: int) -> None:
        m[row, : steps - length] = False

    def holes(row: int) -> None:
        while True:
            r = rng.rand(steps) < 0.4
            if r.any() and not r.all():
                break
        m[row, r] = False

    if kind == "right":
        for b in range(1, batch):
            right(b, int(rng.randint(1, steps + 1)))
    elif kind == "left":
        for b in range(1, batch):
            left(b, int(rng.randint(1, steps + 1)))
    elif kind == "holes":
        for b in range(batch):
            holes(b)
    elif kind == "fully_masked_row":
        target = 1 if batch > 1 else 0
        for b in range(batch):
            if b == target:
                m[b, :] = False
            else:
                right(b, int(rng.randint(1, steps + 1)))
    elif kind == "mixed":
        order = ["full", "right", "left", "holes", "empty"]
        start = int(rng.randint(0, len(order)))
        for b in range(batch):
            style = order[(start + b) % len(order)]
            if style == "right":
                right(b, int(rng.randint(1, steps)))
            elif style == "left":
                left(b, int(rng.randint(1, steps)))
            elif style == "holes":
                holes(b)
            elif style == "empty":
                m[b, :] = False
    else:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")
    return m


def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a deflated ``.npz`` with sorted members and fixed timestamps (reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def write_json(path: str, obj: object) -> None:
    """Deterministic JSON (sorted keys, fixed indentation, trailing newline)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")


def projection_weights(case_id: str, shapes: Iterable[Sequence[int]]) -> List[np.ndarray]:
    """The fixed random weights ``w_k`` of the loss ``sum_k sum(w_k * out_k)`` used for gradients."""
    rng = rng_for(case_id, "projection")
    return [uniform32(rng, -1.0, 1.0, s) for s in shapes]
