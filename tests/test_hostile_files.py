"""Hostile and broken files (issue 9): every file here is built by the test itself (h5py, zipfile, struct,
torch.save), never shipped. Readers must refuse with :class:`FormatError` naming the file (and the
dataset / tensor / entry), read nothing outside the file, stay within bounded memory, and never block on a
FIFO; files that would load and crash a later step are refused at load time.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
import torch

import lstm_bridge
from lstm_bridge.formats import FormatError, get_format, mindspore_ckpt as ck

from helpers import FIXTURES

K = FIXTURES / "keras"
MIB = 1024 * 1024

# (fixture, path of the Embedding weights inside its HDF5 image)
H5_FILES = {
    "h5": (K / "tfkeras_emb_lstm_dense.h5", "model_weights/embedding/embedding/embeddings:0"),
    "weights.h5": (K / "keras3_emb_lstm_dense.weights.h5", "layers/embedding/vars/0"),
    "keras": (K / "keras3_emb_lstm_dense.keras", "layers/embedding/vars/0"),
}
SECRET = np.full((20, 8), 1234.5, dtype="<f4")  # what a hostile file would smuggle in as the Embedding


def _no_hang(fn, fifos=(), timeout=20.0):
    """Run ``fn()`` in a thread; if it blocks (e.g. opened a FIFO), unblock it by opening the FIFOs for
    writing, and fail. Returns what ``fn`` raised (or None)."""
    box = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        deadline = time.monotonic() + 10
        while t.is_alive() and time.monotonic() < deadline:  # a reader may reopen the FIFO: keep unblocking
            for f in fifos:
                try:
                    os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            t.join(0.05)
        pytest.fail(f"{fn} blocked (a FIFO was opened for reading)")
    return box.get("exc")


_RUNNER = r"""
import json, sys
import lstm_bridge
from lstm_bridge.formats import get_format
out = []
for fmt, path in json.loads(sys.argv[1]):
    load = lstm_bridge.load if fmt == "io" else get_format(fmt).load
    try:
        load(path)
        out.append(["loaded", ""])
    except Exception as exc:
        out.append([type(exc).__name__, str(exc)])
    if fmt != "io":
        get_format(fmt).detect(path)
print(json.dumps(out))
"""


def _load_elsewhere(cases, timeout=120):
    """``[(exception type name, message)]`` of loading each ``(format name or "io", path)`` in a child
    process, which is killed (and the test failed) if it blocks: h5py holds the GIL while HDF5 opens a
    file, so a FIFO opened by HDF5 would hang this process for good."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    try:
        run = subprocess.run(
            [sys.executable, "-c", _RUNNER, json.dumps(cases)], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {cases} blocked for {timeout} s (a FIFO was opened for reading)")
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _hostile_h5(kind: str, tmp_path, edit) -> str:
    """A copy of the ``kind`` fixture whose HDF5 image was changed by ``edit(h5py.File, dataset path)``."""
    src, ds_path = H5_FILES[kind]
    out = tmp_path / f"hostile.{kind}"
    if kind != "keras":
        shutil.copy(src, out)
        with h5py.File(out, "a") as f:
            edit(f, ds_path)
        return str(out)
    inner = tmp_path / "inner.h5"
    with zipfile.ZipFile(src) as z:
        inner.write_bytes(z.read("model.weights.h5"))
        members = {n: z.read(n) for n in z.namelist() if n != "model.weights.h5"}
    with h5py.File(inner, "a") as f:
        edit(f, ds_path)
    with zipfile.ZipFile(out, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
        z.writestr("model.weights.h5", inner.read_bytes())
    return str(out)


def _other_h5(tmp_path) -> str:
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=SECRET)
    return str(p)


def _assert_refused(path, *needles, load=lstm_bridge.load):
    with pytest.raises(FormatError) as info:
        load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    for n in needles:
        assert n in msg, msg
    return msg


# --- HDF5: nothing outside the file -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(H5_FILES))
def test_hdf5_external_raw_storage_is_refused(kind, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(SECRET.tobytes())

    def edit(f, ds):
        del f[ds]
        f.create_dataset(ds, shape=(20, 8), dtype="<f4", external=[(str(secret), 0, SECRET.nbytes)])

    p = _hostile_h5(kind, tmp_path, edit)
    msg = _assert_refused(p, "external raw storage", H5_FILES[kind][1])
    assert str(secret) in msg and "1234.5" not in msg
    with pytest.raises(FormatError):
        get_format({"h5": "keras-h5", "weights.h5": "keras-weights-h5", "keras": "keras"}[kind]).load(p)


@pytest.mark.parametrize("kind", sorted(H5_FILES))
def test_hdf5_external_link_is_refused(kind, tmp_path):
    other = _other_h5(tmp_path)

    def edit(f, ds):
        del f[ds]
        f[ds] = h5py.ExternalLink(other, "/x")

    _assert_refused(_hostile_h5(kind, tmp_path, edit), "external link", H5_FILES[kind][1])


@pytest.mark.parametrize("kind", sorted(H5_FILES))
def test_hdf5_virtual_dataset_is_refused(kind, tmp_path):
    other = _other_h5(tmp_path)

    def edit(f, ds):
        del f[ds]
        layout = h5py.VirtualLayout(shape=(20, 8), dtype="<f4")
        layout[:] = h5py.VirtualSource(other, "x", shape=(20, 8))
        f.create_virtual_dataset(ds, layout)

    _assert_refused(_hostile_h5(kind, tmp_path, edit), "virtual dataset", H5_FILES[kind][1])


@pytest.mark.parametrize("kind", ["h5", "weights.h5"])
def test_hdf5_soft_link_is_refused(kind, tmp_path):
    def edit(f, ds):
        del f[ds]
        f[ds] = h5py.SoftLink("/elsewhere")

    _assert_refused(_hostile_h5(kind, tmp_path, edit), "soft link", H5_FILES[kind][1])


def test_hdf5_pointing_at_a_fifo_does_not_hang(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    cases = []
    for kind in sorted(H5_FILES):
        for how in ("external_link", "external_storage"):

            def edit(f, ds, how=how):
                del f[ds]
                if how == "external_link":
                    f[ds] = h5py.ExternalLink(fifo, "/x")
                else:
                    f.create_dataset(ds, shape=(20, 8), dtype="<f4", external=[(fifo, 0, SECRET.nbytes)])

            d = tmp_path / f"{kind}_{how}"
            d.mkdir()
            cases.append(("io", _hostile_h5(kind, d, edit)))
    for (_, path), (exc, msg) in zip(cases, _load_elsewhere(cases)):
        assert exc == "FormatError" and fifo in msg and msg.startswith(path), (path, exc, msg)


@pytest.mark.parametrize("corruption", ["object_size", "collection_size"])
def test_hdf5_corrupt_global_heap_is_refused_not_spun_on(corruption, tmp_path):
    """Found by the long fuzz: one corrupted size in a global heap (where variable-length strings such as
    keras_version live) made HDF5 2.0 loop forever on a zero-size free-space object."""
    fixture = (
        "tfkeras_bilstm_stacked_weights_legacy.h5"
        if corruption == "object_size"
        else "keras3_emb_lstm_dense.weights.h5"
    )
    data = bytearray((K / fixture).read_bytes())
    if corruption == "object_size":
        i = data.index(b"\x06" + bytes(7) + b"2.21.0")  # the heap object's size (6), then the string
        data[i : i + 8] = (1030).to_bytes(8, "little")
    else:
        i = data.index(b"GCOL\x01\x00\x00\x00") + 8  # the collection's size: 1 KiB more than it holds
        data[i : i + 8] = (int.from_bytes(data[i : i + 8], "little") + 1024).to_bytes(8, "little")
    p = tmp_path / ("heap.h5" if corruption == "object_size" else "heap.weights.h5")
    p.write_bytes(bytes(data))
    [(exc, msg)] = _load_elsewhere([("io", str(p))], timeout=60)
    assert exc == "FormatError" and "corrupt HDF5 global heap" in msg, (exc, msg)


def test_hdf5_corrupt_attribute_type_is_refused_not_crashed_on(tmp_path):
    """Found by the long fuzz: a vlen-string attribute whose type byte became a vlen sequence of an
    invalid base type made HDF5 segfault on read; attributes must be strings or numbers."""
    data = bytearray((K / "tfkeras_bilstm_stacked.h5").read_bytes())
    i = data.index(b"backend\x00") + 8  # the attribute's datatype: version 1 / class 9 (vlen), then its bits
    assert data[i] == 0x19 and data[i + 1] == 0x01
    data[i + 1] = 0x09
    p = tmp_path / "attr.h5"
    p.write_bytes(bytes(data))
    [(exc, msg)] = _load_elsewhere([("keras-h5", str(p))], timeout=60)
    assert exc == "FormatError" and "attribute 'backend' has HDF5 type" in msg, (exc, msg)


# --- HDF5: memory budgeted by what the file holds -------------------------------------------------------


def test_hdf5_weight_listed_many_times_is_refused(tmp_path):
    def edit(f, ds):
        grp = f["model_weights/lstm"]
        grp.attrs["weight_names"] = np.array(["lstm/lstm_cell/kernel:0"] * 1000, dtype=h5py.string_dtype())

    _assert_refused(_hostile_h5("h5", tmp_path, edit), "more than once", "lstm/lstm_cell/kernel:0")


def test_hdf5_compressed_dataset_declaring_far_more_than_the_file_is_refused(tmp_path):
    """A gzip dataset declaring 100 MB in a ~150 KB file (the old per-dataset bound allowed 1024x)."""

    def edit(f, ds):
        del f[ds]
        f.create_dataset(ds, shape=(20, 1_250_000), dtype="<f4", compression="gzip", chunks=(1, 65536))
        f.create_dataset("padding", data=np.frombuffer(np.random.default_rng(0).bytes(100_000), dtype="u1"))

    p = _hostile_h5("h5", tmp_path, edit)
    assert os.path.getsize(p) * 1024 > 100_000_000  # within the old bound
    tracemalloc.start()
    try:
        _assert_refused(p, "may declare at most", "embeddings:0")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, peak


def test_hdf5_big_endian_weights_load_in_native_byte_order(tmp_path):
    def edit(f, ds):
        def swap(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                attrs = dict(obj.attrs)
                parent, leaf = obj.parent, name.rsplit("/", 1)[-1]
                del parent[leaf]
                new = parent.create_dataset(leaf, data=data.astype(data.dtype.newbyteorder(">")))
                new.attrs.update(attrs)

        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            swap(n, f[n])

    p = _hostile_h5("h5", tmp_path, edit)
    with h5py.File(p) as f:
        assert f[H5_FILES["h5"][1]].dtype.byteorder == ">"
    mf, ref = lstm_bridge.load(p), lstm_bridge.load(H5_FILES["h5"][0])
    for e, r in zip(mf.layers, ref.layers):
        for (k, a), b in zip(e.weights.items(), r.weights.values()):
            assert a.dtype.isnative, (e.name, k, a.dtype)
            np.testing.assert_array_equal(a, b)
    layer = mf.lstm_layers()[0]
    torch.from_numpy(layer.weights[0][0].w_ih)  # torch refuses non-native arrays


# --- .keras: zip and JSON bombs ------------------------------------------------------------------------


def _keras_with(tmp_path, **members) -> str:
    src = H5_FILES["keras"][0]
    out = tmp_path / "bomb.keras"
    with zipfile.ZipFile(src) as z:
        base = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for n in base:
            data = members.get(n, base[n])
            if callable(data):
                with z.open(n, "w", force_zip64=True) as fh:
                    data(fh)
            else:
                z.writestr(n, data)
    return str(out)


def test_keras_zip_bomb_is_refused_without_inflating(tmp_path):
    def zeros(fh):
        block = bytes(MIB)
        for _ in range(100):
            fh.write(block)

    p = _keras_with(tmp_path, **{"model.weights.h5": zeros})
    assert os.path.getsize(p) < 1 * MIB
    tracemalloc.start()
    try:
        _assert_refused(p, "model.weights.h5", "above the limit")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, peak


def test_keras_json_bomb_is_refused(tmp_path):
    big = b"[" + b"0," * (10 * MIB) + b"0]"  # 20 MB of JSON: within the old 64 MB bound
    _assert_refused(_keras_with(tmp_path, **{"config.json": big}), "config.json", "above the limit")
    many = b"[" + b"0," * (3 * MIB) + b"0]"  # 6 MB, 3M values
    _assert_refused(_keras_with(tmp_path, **{"config.json": many}), "config.json", "JSON values")


def test_keras_deeply_nested_json_is_refused(tmp_path):
    deep = '{"a": ' * 500 + "1" + "}" * 500
    _assert_refused(_keras_with(tmp_path, **{"config.json": deep}), "config.json", "nests deeper than")


def test_h5_deeply_nested_model_config_is_refused(tmp_path):
    p = tmp_path / "deep.h5"
    shutil.copy(H5_FILES["h5"][0], p)
    with h5py.File(p, "a") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["deep"] = json.loads("[" * 500 + "]" * 500)
        f.attrs["model_config"] = json.dumps(cfg)
    _assert_refused(str(p), "model_config", "nests deeper than")


def test_h5_model_config_is_bounded_before_parsing(tmp_path):
    p = tmp_path / "many.h5"
    shutil.copy(H5_FILES["h5"][0], p)
    with h5py.File(p, "a") as f:
        cfg = f.attrs["model_config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
        f.attrs["model_config"] = cfg[:-1] + ', "junk": [' + "0," * 2_500_000 + "0]}"
    _assert_refused(str(p), "model_config", "JSON values, above the limit")


# --- safetensors ----------------------------------------------------------------------------------------


def _st_file(tmp_path, header, data: bytes = b"", name="x.safetensors") -> str:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    p = tmp_path / name
    p.write_bytes(struct.pack("<Q", len(h)) + h + data)
    return str(p)


def test_safetensors_header_above_the_spec_bound_is_refused(tmp_path):
    p = tmp_path / "big.safetensors"
    with open(p, "wb") as fh:
        fh.write(struct.pack("<Q", 110_000_000) + b"{")
        fh.truncate(120_000_000)  # sparse: the header "fits" in the file
    tracemalloc.start()
    try:
        _assert_refused(str(p), "above the format's limit of 100000000", load=get_format("safetensors").load)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, peak


def test_safetensors_header_is_bounded_before_parsing(tmp_path):
    """A 28 MB header of 14M JSON values (the old reader parsed it: ~1 GB of Python objects)."""
    header = b'{"w": {"dtype": "F32", "shape": [' + b"1," * 14_000_000 + b'1], "data_offsets": [0, 4]}}'
    p = _st_file(tmp_path, header, bytes(4))
    tracemalloc.start()
    try:
        _assert_refused(p, "JSON values, above the limit")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(header), peak


W = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("meta", [{"key_order": 5}, {"source_version": {"a": [1]}}, ["x"], "text"])
def test_safetensors_untrusted_metadata_is_refused(meta, tmp_path):
    _assert_refused(_st_file(tmp_path, {"__metadata__": meta, "w": W}, bytes(8)), "__metadata__")


def test_safetensors_deeply_nested_metadata_is_refused(tmp_path):
    header = (
        b'{"__metadata__": '
        + b'{"a": ' * 100_000
        + b'"x"'
        + b"}" * 100_000
        + b', "w": '
        + json.dumps(W).encode()
        + b"}"
    )
    _assert_refused(_st_file(tmp_path, header, bytes(8)), "nests too deeply")


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_safetensors_float8_is_refused(dtype, tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "f8.safetensors"
    save_file({"lstm.weight_ih_l0": torch.zeros(8, 2).to(dtype)}, str(p))
    _assert_refused(str(p), "lstm.weight_ih_l0", "F8_")


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F32", "shape": [2**200], "data_offsets": [0, 8]},
        {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]},
        {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**70]},
        {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]},
        "not an object",
    ],
)
def test_safetensors_bad_entries_are_refused(entry, tmp_path):
    _assert_refused(_st_file(tmp_path, {"w": entry}, bytes(8)), "'w'")


def test_safetensors_reader_matches_the_library(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    p = tmp_path / "ok.safetensors"
    lstm_bridge.save(lstm, p)
    mf, ref = lstm_bridge.load(p), load_file(str(p))
    got = {k: v for e in mf.layers for k, v in ((e.attrs["prefix"] + n, a) for n, a in e.weights.items())}
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k].numpy()) for k in ref)


# --- PyTorch .pt ----------------------------------------------------------------------------------------


def _pt(tmp_path, value, key="lstm.weight_ih_l0") -> str:
    p = tmp_path / "x.pt"
    torch.save({key: value}, str(p))
    return str(p)


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: torch.empty(8, 2, device="meta"), "meta"),
        (lambda: torch.eye(8, 2).to_sparse(), "sparse"),
        (lambda: torch.quantize_per_tensor(torch.ones(8, 2), 0.1, 0, torch.qint8), "quantized"),
        (lambda: torch.zeros(8, 2).to(torch.float8_e4m3fn), "float8_e4m3fn"),
        (lambda: torch.zeros(8, 2, dtype=torch.complex64), "complex64"),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pt_exotic_tensors_are_refused(make, needle, tmp_path):
    _assert_refused(_pt(tmp_path, make()), "lstm.weight_ih_l0", needle)


def test_pt_stride_zero_view_cannot_amplify_memory(tmp_path):
    p = _pt(tmp_path, torch.zeros(1).expand(2**25), key="big")  # 128 MB of view over a 4-byte storage
    assert os.path.getsize(p) < 4096
    _assert_refused(p, "'big'", "more data than")


def test_pt_integer_outside_int64_is_refused(tmp_path):
    _assert_refused(_pt(tmp_path, 2**200, key="epoch"), "'epoch'", "outside int64")


# --- MindSpore .ckpt ------------------------------------------------------------------------------------


def test_ckpt_non_utf8_tag_is_a_format_error(tmp_path):
    good = ck._entry_bytes("w", [2], "Float32", np.zeros(2, np.float32).tobytes())
    p = tmp_path / "bad.ckpt"
    p.write_bytes(good.replace(b"\x0a\x01w", b"\x0a\x01\xff"))
    _assert_refused(str(p), "not valid UTF-8")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


@pytest.mark.parametrize("shape", ["zeros", "declared_content"])
def test_ckpt_sparse_gigabyte_file_fails_fast_in_bounded_memory(shape, tmp_path):
    size = 2**30
    p = tmp_path / "sparse.ckpt"
    if shape == "zeros":  # one entry declaring the whole file, its tag, then a hole (detection accepts it)
        head = b"\x0a" + _varint(size - 6) + b"\x0a\x01w"
    else:  # a well-formed entry whose tensor_content declares 1 GiB for dims [1]
        n = size - 64
        tensor = b"\x08\x01" + b"\x12\x07Float32" + b"\x1a" + _varint(n)
        value = b"\x0a\x01w" + b"\x12" + _varint(len(tensor) + n) + tensor
        head = b"\x0a" + _varint(len(value) + n) + value
        size = len(head) + n
    with open(p, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    tracemalloc.start()
    try:
        _assert_refused(str(p), "ckpt")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB, peak


def test_ckpt_streaming_reader_matches_the_protobuf_records():
    for f in sorted((FIXTURES / "mindspore").glob("*.ckpt")):
        if "encrypted" in f.name:
            continue
        tensors, facts = ck.read_tensors(f)
        data = f.read_bytes()
        end = len(data) - 17 if facts["crc"] else len(data)
        parts = {}
        for _, v in ck._records(str(f), data, end):
            prev = parts.get(v.tag)
            parts[v.tag] = (
                (prev or b"") + v.tensor.tensor_content
                if prev is not None and v.tag in facts["sliced"]
                else v.tensor.tensor_content
            )
        assert list(tensors) == list(parts), f
        for k, a in tensors.items():
            if a.dtype.kind != "U":
                assert a.tobytes() == parts[k], (f, k)


# --- files that load and then crash a later step --------------------------------------------------------


@pytest.mark.parametrize(
    "sd,needle",
    [
        ({"weight_ih_l0": torch.zeros(0, 3), "weight_hh_l0": torch.zeros(0, 0)}, "hidden size"),
        ({"weight_ih_l0": torch.zeros(8, 0), "weight_hh_l0": torch.zeros(8, 2)}, "input size"),
    ],
)
def test_lstm_with_a_zero_size_is_refused_at_load(sd, needle, tmp_path):
    p = tmp_path / "zero.pt"
    torch.save(sd, str(p))
    _assert_refused(str(p), needle)


def _edit_config(path, edit):
    with h5py.File(path, "a") as f:
        cfg = json.loads(f.attrs["model_config"])
        edit(cfg["config"]["layers"])
        f.attrs["model_config"] = json.dumps(cfg)


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda layers: layers[2]["config"].__setitem__("units", 2**200), "units"),
        (lambda layers: layers[2]["config"].__setitem__("units", 17), "units=17"),
        (lambda layers: layers[1]["config"].__setitem__("input_dim", 2**200), "input_dim"),
        (lambda layers: layers[0]["config"].__setitem__("batch_input_shape", [None, 2**200]), "batch_input_shape"),
        (lambda layers: layers[2]["config"].__setitem__("name", [1, 2, 3]), "'name' must be a string"),
    ],
)
def test_keras_config_sizes_and_names_are_checked_at_load(edit, needle, tmp_path):
    p = tmp_path / "m.h5"
    shutil.copy(H5_FILES["h5"][0], p)
    with h5py.File(p) as f:
        classes = [l["class_name"] for l in json.loads(f.attrs["model_config"])["config"]["layers"]]
    assert classes[:3] == ["InputLayer", "Embedding", "LSTM"], classes
    _edit_config(p, edit)
    _assert_refused(str(p), needle)


def test_one_dimensional_embedding_is_refused(tmp_path):
    def edit(f, ds):
        del f[ds]
        f.create_dataset(ds, data=np.zeros(160, np.float32))

    _assert_refused(_hostile_h5("h5", tmp_path, edit), "Embedding", "2-D")


def test_bidirectional_wrapping_a_non_layer_is_refused(tmp_path):
    p = tmp_path / "bi.h5"
    shutil.copy(K / "tfkeras_bilstm_stacked.h5", p)

    def edit(layers):
        bi = next(l for l in layers if l["class_name"] == "Bidirectional")
        bi["config"]["layer"] = "not a layer"

    _edit_config(p, edit)
    _assert_refused(str(p), "Bidirectional", "'layer' must be a layer config")


def test_int_array_layer_name_is_refused(tmp_path):
    def edit(f, ds):
        f["layers/lstm/vars"].attrs["name"] = np.arange(3)

    _assert_refused(_hostile_h5("weights.h5", tmp_path, edit), "layers/lstm/vars", "must be a string")


# --- paths that are not regular files -------------------------------------------------------------------


def test_directory_is_not_reported_missing(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        lstm_bridge.load(tmp_path)


def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = str(tmp_path / "model.h5")
    os.mkfifo(fifo)
    exc = _no_hang(lambda: lstm_bridge.load(fifo), [fifo])
    assert isinstance(exc, FormatError) and "is a FIFO (named pipe), expected a regular file" in str(exc), exc


def test_every_reader_refuses_a_fifo_without_blocking(tmp_path):
    fifo = str(tmp_path / "model.bin")
    os.mkfifo(fifo)
    fmts = ["keras-h5", "keras-weights-h5", "keras", "mindspore-ckpt", "torch", "safetensors"]
    for fmt, (exc, msg) in zip(fmts, _load_elsewhere([(f, fifo) for f in fmts])):
        assert exc == "FormatError" and "is a FIFO (named pipe), expected a regular file" in msg, (fmt, exc, msg)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_character_device_is_refused():
    with pytest.raises(FormatError, match="/dev/zero: is a character device, expected a regular file"):
        lstm_bridge.load("/dev/zero")


def test_symlink_loop_and_dangling_link_are_named(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    os.symlink(b, a)
    os.symlink(a, b)
    with pytest.raises(FormatError, match="symlink loop"):
        lstm_bridge.load(a)
    d = tmp_path / "dangling.h5"
    os.symlink(tmp_path / "gone.h5", d)
    with pytest.raises(FileNotFoundError, match="dangling symlink"):
        lstm_bridge.load(d)
    with pytest.raises(FileNotFoundError, match="no such file"):
        lstm_bridge.load(tmp_path / "missing.h5")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_permission_error(tmp_path):
    p = tmp_path / "locked.h5"
    shutil.copy(H5_FILES["h5"][0], p)
    p.chmod(0)
    with pytest.raises(PermissionError, match="not readable"):
        lstm_bridge.load(p)


def test_cli_names_a_symlink_loop(tmp_path, capsys):
    from lstm_bridge.cli import main

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    os.symlink(b, a)
    os.symlink(a, b)
    assert main(["inspect", str(a)]) == 3
    assert "symlink loop" in capsys.readouterr().err
