"""MindSpore .ckpt: every real fixture reads to the npz parameters; rewrites are byte-identical to MindSpore's."""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict

import numpy as np
import pytest
import torch

from lstm_bridge.formats import FormatError, mindspore_ckpt as ck

from helpers import FIXTURES

MS = FIXTURES / "mindspore"

# ckpt file -> the npz whose `param:<name>` arrays it holds
CKPT_NPZ = {
    "lstm_small.ckpt": "lstm_small_io.npz",
    "lstm_small_crc.ckpt": "lstm_small_io.npz",
    "lstm_small_append.ckpt": "lstm_small_io.npz",
    "lstm_2layer_bi.ckpt": "lstm_2layer_bi_io.npz",
    "written_by_ckpt_io_2layer_bi.ckpt": "lstm_2layer_bi_io.npz",
    "written_by_ckpt_io_2layer_bi_crc.ckpt": "lstm_2layer_bi_io.npz",
    "written_by_ckpt_io_2layer_bi_sliced.ckpt": "lstm_2layer_bi_io.npz",
    "embed_lstm_dense.ckpt": "embed_lstm_dense_io.npz",
    "lstmcell.ckpt": "lstmcell_io.npz",
    "lstm_64x32_unsliced.ckpt": "lstm_64x32_io.npz",
    "lstm_64x32_sliced.ckpt": "lstm_64x32_io.npz",
    "lstm_64x32_sliced_async.ckpt": "lstm_64x32_io.npz",
}


def _params(npz_name):
    d = np.load(MS / npz_name)
    return OrderedDict((k[len("param:") :], d[k]) for k in d.files if k.startswith("param:"))


@pytest.mark.parametrize("name", sorted(CKPT_NPZ))
def test_every_fixture_reads_to_the_npz_parameters(name):
    tensors, facts = ck.read_tensors(MS / name)
    params = _params(CKPT_NPZ[name])
    assert list(tensors)[: len(params)] == list(params), "entry order must be MindSpore's parameters_and_names"
    for k, v in params.items():
        assert tensors[k].dtype == np.float32 and tensors[k].shape == v.shape
        np.testing.assert_array_equal(tensors[k], v)
    assert facts["crc"] == name.endswith("_crc.ckpt")
    assert bool(facts["sliced"]) == ("_sliced" in name)


def test_fp16_fixture():
    tensors, facts = ck.read_tensors(MS / "lstm_small_fp16.ckpt")
    for k, v in _params("lstm_small_io.npz").items():
        assert tensors[k].dtype == np.float16
        np.testing.assert_array_equal(tensors[k], v.astype(np.float16))
    assert facts["types"]["weight_ih_l0"] == "Float16"


def test_append_dict_extras_and_scalars():
    mf = ck.load(MS / "lstm_small_append.ckpt")
    extras = [e for e in mf.layers if e.kind == "Tensor"][0].weights
    assert extras["epoch_num"].dtype == np.int64 and extras["epoch_num"].shape == () and extras["epoch_num"] == 3
    assert extras["lr"].dtype == np.float32 and extras["lr"] == np.float32(0.125)
    assert extras["flag"].dtype == np.bool_ and bool(extras["flag"]) is True
    assert str(extras["note"]) == "hello"


@pytest.mark.parametrize(
    "name",
    [
        "lstm_small.ckpt",
        "lstm_small_append.ckpt",
        "lstm_small_fp16.ckpt",
        "lstmcell.ckpt",
        "embed_lstm_dense.ckpt",
        "lstm_2layer_bi.ckpt",
        "lstm_64x32_unsliced.ckpt",
    ],
)
def test_rewrite_is_byte_identical(tmp_path, name):
    mf = ck.load(MS / name)
    out = tmp_path / name
    report = ck.save(mf, out)
    assert out.read_bytes() == (MS / name).read_bytes()
    assert report.skipped == {}
    assert os.listdir(tmp_path) == [name], "no temporary file may be left behind"


def test_rewrite_with_crc_and_slices_matches_mindspore(tmp_path):
    mf = ck.load(MS / "lstm_2layer_bi.ckpt")
    ck.save(mf, tmp_path / "crc.ckpt", crc=True)
    assert (tmp_path / "crc.ckpt").read_bytes() == (MS / "written_by_ckpt_io_2layer_bi_crc.ckpt").read_bytes()
    mf = ck.load(MS / "lstm_64x32_unsliced.ckpt")
    ck.save(mf, tmp_path / "sliced.ckpt", slice_bytes=8192)  # SLICE_SIZE monkey-patched to 8 KiB in the fixture
    assert (tmp_path / "sliced.ckpt").read_bytes() == (MS / "lstm_64x32_sliced.ckpt").read_bytes()


def test_slices_are_element_aligned(tmp_path):
    mf = ck.load(MS / "lstm_64x32_unsliced.ckpt")
    ck.save(mf, tmp_path / "odd.ckpt", slice_bytes=1001)
    data = (tmp_path / "odd.ckpt").read_bytes()
    pieces = []
    for _, value in ck._records("odd", data, len(data)):
        pieces.append((value.tag, len(value.tensor.tensor_content)))
    assert all(n % 4 == 0 and n <= 1001 for _, n in pieces)
    assert sum(1 for t, _ in pieces if t == "weight_ih_l0") == -(-32768 // 1000)
    again, facts = ck.read_tensors(tmp_path / "odd.ckpt")
    orig, _ = ck.read_tensors(MS / "lstm_64x32_unsliced.ckpt")
    assert all(np.array_equal(again[k], orig[k]) for k in orig)
    assert "weight_ih_l0" in facts["sliced"]


@pytest.mark.parametrize("mode", ["AES-GCM", "AES-CBC"])
def test_encrypted_checkpoint_is_refused_clearly(mode):
    with pytest.raises(FormatError, match=f"encrypted checkpoint \\({mode}\\): decrypt it with MindSpore first"):
        ck.load(MS / f"lstm_small_encrypted_{mode}.ckpt")
    assert ck.detect(MS / f"lstm_small_encrypted_{mode}.ckpt")


def test_crc_mismatch_is_an_error(tmp_path):
    data = bytearray((MS / "lstm_small_crc.ckpt").read_bytes())
    data[100] ^= 0x01
    p = tmp_path / "bad.ckpt"
    p.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="CRC mismatch"):
        ck.load(p)


def test_truncated_checkpoint_names_the_file_and_problem(tmp_path):
    p = tmp_path / "cut.ckpt"
    p.write_bytes((MS / "lstm_small.ckpt").read_bytes()[:300])
    with pytest.raises(FormatError, match=r"cut\.ckpt: truncated checkpoint: entry at byte \d+ declares"):
        ck.load(p)


def test_hostile_dims_are_checked_before_allocation(tmp_path):
    # dims claim 2^40 elements but the content is 16 bytes: refused without allocating
    data = ck._entry_bytes("w", [1 << 20, 1 << 20], "Float32", b"\0" * 16)
    p = tmp_path / "huge.ckpt"
    p.write_bytes(data)
    with pytest.raises(FormatError, match=r"entry 'w': dims \[1048576, 1048576\] of Float32 need 4398046511104 bytes"):
        ck.load(p)


def test_lstm_layers_reproduce_mindspore_outputs():
    mf = ck.load(MS / "lstm_2layer_bi.ckpt")
    (layer,) = mf.lstm_layers()
    assert (layer.num_layers, layer.bidirectional, layer.input_size, layer.hidden_size) == (2, True, 6, 5)
    io = np.load(MS / "lstm_2layer_bi_io.npz")
    net = torch.nn.LSTM(6, 5, 2, batch_first=True, bidirectional=True)
    from lstm_bridge.weights import to_torch_state_dict

    net.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(layer.weights).items()})
    with torch.no_grad():
        out, (hn, cn) = net(torch.from_numpy(io["x"]))
    np.testing.assert_allclose(out.numpy(), io["out_nohx"], atol=1e-6)
    np.testing.assert_allclose(hn.numpy(), io["hn_nohx"], atol=1e-6)


def test_grouping_prefixes_cells_and_extras(tmp_path):
    rng = np.random.default_rng(0)
    tensors = OrderedDict()
    for l in range(2):
        for k, shape in (
            ("weight_ih", (8, 3 if l == 0 else 2)),
            ("weight_hh", (8, 2)),
            ("bias_ih", (8,)),
            ("bias_hh", (8,)),
        ):
            tensors[f"encoder.rnn.{k}_l{l}"] = rng.normal(size=shape).astype(np.float32)
    for k, shape in (("weight_ih", (8, 3)), ("weight_hh", (8, 2))):
        tensors[f"seq.1.{k}"] = rng.normal(size=shape).astype(np.float32)
    tensors["head.weight"] = rng.normal(size=(4, 2)).astype(np.float32)
    tensors["step"] = np.array(7, dtype=np.int64)
    p = tmp_path / "net.ckpt"
    p.write_bytes(ck.encode_tensors(tensors))
    mf = ck.load(p)
    kinds = [(e.name, e.kind) for e in mf.layers]
    assert kinds == [("encoder.rnn", "LSTM"), ("seq.1", "LSTMCell"), ("head", "Dense"), ("", "Tensor")]
    lstm, cell = mf.lstm_layers()
    assert lstm.num_layers == 2 and not lstm.bidirectional and not cell.has_bias
    ck.save(mf, tmp_path / "again.ckpt")
    assert (tmp_path / "again.ckpt").read_bytes() == p.read_bytes()


def test_old_flat_weight_layout_is_refused(tmp_path):
    p = tmp_path / "old.ckpt"
    p.write_bytes(ck.encode_tensors(OrderedDict(weight=np.zeros((448, 1, 1), np.float32))))
    with pytest.raises(FormatError, match="unsupported layout.*r1.5"):
        ck.load(p)


def test_writer_never_overwrites_its_input_and_leaves_nothing_on_failure(tmp_path):
    src = tmp_path / "in.ckpt"
    shutil.copy(MS / "lstm_small.ckpt", src)
    mf = ck.load(src)
    with pytest.raises(FormatError, match="refusing to overwrite the input"):
        ck.save(mf, src)
    assert src.read_bytes() == (MS / "lstm_small.ckpt").read_bytes()
    mf.layers[0].weights["weight_ih_l0"] = np.zeros((16, 3), np.complex64)  # no MindSpore type
    with pytest.raises(FormatError, match="complex64 has no MindSpore checkpoint type"):
        ck.save(mf, tmp_path / "out.ckpt")
    assert sorted(os.listdir(tmp_path)) == ["in.ckpt"]


def test_schema_comes_from_the_proto_file():
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto()
    ck.FILE_DESCRIPTOR.CopyToProto(proto)
    tensor = [m for m in proto.message_type if m.name == "TensorProto"][0]
    fields = {f.name: (f.number, f.label) for f in tensor.field}
    assert fields == {"dims": (1, 3), "tensor_type": (2, 2), "tensor_content": (3, 2)}  # 3 repeated, 2 required
    value = ck.CheckpointValue.DESCRIPTOR
    assert [o.name for o in value.oneofs] == ["value"]
    assert {f.name for f in value.oneofs[0].fields} == {"tensor", "maptensor"}


def test_dtypes_scalars_and_1x_scalar_dims(tmp_path):
    tensors = OrderedDict(
        [
            ("f64", np.arange(6, dtype=np.float64).reshape(2, 3)),
            ("i32", np.array([-1, 2], np.int32)),
            ("u8", np.array([255], np.uint8)),
            ("b", np.array([True, False])),
            ("s", np.array("héllo")),
            ("scalar", np.array(1.5, np.float32)),
        ]
    )
    p = tmp_path / "t.ckpt"
    p.write_bytes(ck.encode_tensors(tensors) + ck._entry_bytes("old_scalar", [0], "Int64", (9).to_bytes(8, "little")))
    got, facts = ck.read_tensors(p)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k
    assert got["old_scalar"].shape == () and got["old_scalar"] == 9  # r1.x wrote scalars with dims [0]
    assert facts["types"]["f64"] == "Float64" and facts["types"]["s"] == "str"
