"""Fuzz every reader with byte mutations of real files: truncation, bit flips, random splices.

Only :class:`lstm_bridge.formats.FormatError` may escape a reader (never IndexError, KeyError, a
protobuf/h5py/zip error, a MemoryError from a hostile size, ...), and a file that loads must survive what
``verify`` does next (or be refused with a ValueError). Runs are derandomized and bounded; a longer run:
``LSTM_BRIDGE_FUZZ_EXAMPLES=2000 LSTM_BRIDGE_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import io as _io
import os
import pathlib

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from lstm_bridge import io
from lstm_bridge.formats import FormatError, get_format

from helpers import FIXTURES

EXAMPLES = int(os.environ.get("LSTM_BRIDGE_FUZZ_EXAMPLES", "60"))


def _torch_bytes(module: type = torch.nn.LSTM) -> bytes:
    torch.manual_seed(0)
    buf = _io.BytesIO()
    torch.save(module(2, 2).state_dict(), buf)
    return buf.getvalue()


def _safetensors_bytes(module: type = torch.nn.LSTM) -> bytes:
    from safetensors.torch import save

    torch.manual_seed(0)
    return save(module(2, 2).state_dict())


FAMILY = FIXTURES / "family_files"  # real GRU / SimpleRNN files (issue 11)


SEEDS = {
    "mindspore-ckpt": [
        FIXTURES / "mindspore" / "lstm_small_crc.ckpt",
        FIXTURES / "mindspore" / "lstm_small_append.ckpt",
        FIXTURES / "mindspore" / "written_by_ckpt_io_2layer_bi_sliced.ckpt",
        FAMILY / "ms_family.ckpt",
    ],
    "keras-h5": [
        FIXTURES / "keras" / "tfkeras_lstm_hard_sigmoid.h5",
        FIXTURES / "keras" / "tfkeras_emb_lstm_dense_weights_legacy.h5",
        FIXTURES / "keras" / "tfkeras_bilstm_stacked.h5",
        FAMILY / "tk_family.h5",
        FAMILY / "tk_cudnn_gru.h5",
    ],
    "keras-weights-h5": [FIXTURES / "keras" / "keras3_lstm_hard_sigmoid.weights.h5", FAMILY / "k3_family.weights.h5"],
    "keras": [FIXTURES / "keras" / "keras3_lstm_hard_sigmoid.keras", FAMILY / "k3_family.keras"],
    "torch": [_torch_bytes, lambda: _torch_bytes(torch.nn.GRU)],
    "safetensors": [_safetensors_bytes, lambda: _safetensors_bytes(torch.nn.RNN)],
}
SUFFIX = {
    "mindspore-ckpt": ".ckpt",
    "keras-h5": ".h5",
    "keras-weights-h5": ".weights.h5",
    "keras": ".keras",
    "torch": ".pt",
    "safetensors": ".safetensors",
}


def _seed_bytes(seed) -> bytes:
    return seed() if callable(seed) else pathlib.Path(seed).read_bytes()


@st.composite
def mutated(draw, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "splice", "zero_run"]))
        n = len(data)
        if n == 0:
            break
        if kind == "truncate":
            del data[draw(st.integers(0, n - 1)) :]
        elif kind == "flip":
            for _ in range(draw(st.integers(1, 8))):
                i = draw(st.integers(0, n - 1))
                data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "splice":
            i = draw(st.integers(0, n))
            j = draw(st.integers(i, min(n, i + 64)))
            data[i:j] = draw(st.binary(min_size=0, max_size=64))
        else:
            i = draw(st.integers(0, n - 1))
            data[i : i + draw(st.integers(1, 32))] = b"\xff" * 8
    return bytes(data)


def _later_steps(mf) -> None:
    """What ``verify``/``convert`` do with a loaded file: it must run or be refused with a ValueError
    (FormatError is one), never crash (zero sizes, absurd sizes, non-layer entries are refused at load)."""
    from lstm_bridge.convert import chain_from_model_file, compare_chains

    try:
        chain = chain_from_model_file(mf, validate=False)
    except (ValueError, NotImplementedError):
        return
    try:
        compare_chains(chain, chain, batch=2, steps=2)
    except NotImplementedError:  # e.g. a custom activation named in a mutated config
        pass


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_readers_only_raise_format_error(fmt, tmp_path_factory):
    seeds = [_seed_bytes(s) for s in SEEDS[fmt]]
    reader = get_format(fmt)
    directory = tmp_path_factory.mktemp(fmt.replace("-", "_"))
    path = directory / f"fuzz{SUFFIX[fmt]}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=os.environ.get("LSTM_BRIDGE_FUZZ_RANDOM") is None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data):
        original = data.draw(st.sampled_from(seeds))
        path.write_bytes(data.draw(mutated(original)))
        for load in (reader.load, io.load):
            try:
                mf = load(path)
            except FormatError as exc:
                assert str(exc).startswith(f"{path}: "), f"the error must name the file first: {exc}"
            else:
                _later_steps(mf)
        reader.detect(path)  # detection never raises

    run()
