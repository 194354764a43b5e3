"""MindSpore's checkpoint verbs on lstm-bridge (issue 14 item 3) against files real MindSpore 2.10 wrote
(tests/golden/mindspore_api/checkpoint/, written by MindSpore's save_checkpoint: a Cell with ``append_dict`` and
``crc_check``, a wrapper Cell, a list of name/data dicts). The behaviours asserted are those MindSpore showed on
the same files: returned types, the prefix retry of ``load_param_into_net``, ``filter_prefix`` /
``specify_prefix``, dtype conversion unless ``strict_load``, RuntimeError on a shape mismatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ms_api import GOLDEN

FILES = GOLDEN / "checkpoint"


def _net():
    import lstm_bridge.mindspore.nn as nn

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(3, 2)
            self.rnn = nn.GRU(2, 3)

    return Net()


NET_NAMES = [
    "dense.weight",
    "dense.bias",
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
]


def test_load_checkpoint_returns_parameters_and_strings_as_mindspore():
    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import Parameter

    params = ms.load_checkpoint(str(FILES / "net_append_crc.ckpt"))
    assert list(params) == NET_NAMES + ["epoch_num", "lr", "tag"]
    assert all(isinstance(params[k], Parameter) and params[k].name == k for k in NET_NAMES)
    assert params["epoch_num"].dtype == torch.int64 and int(params["epoch_num"]) == 3
    assert params["lr"].dtype == torch.float32 and float(params["lr"].asnumpy()) == 0.5
    assert params["tag"] == "abc"
    assert params["lr"].shape == () and params["epoch_num"].shape == ()  # scalars stay 0-d


def test_save_checkpoint_writes_mindspores_bytes_with_append_dict_and_crc(tmp_path):
    import lstm_bridge.mindspore as ms

    net = _net()
    assert ms.load_param_into_net(net, ms.load_checkpoint(str(FILES / "net_append_crc.ckpt"))) == (
        [],
        ["epoch_num", "lr", "tag"],
    )
    ms.save_checkpoint(
        net, str(tmp_path / "x.ckpt"), append_dict={"epoch_num": 3, "lr": 0.5, "tag": "abc"}, crc_check=True
    )
    assert (tmp_path / "x.ckpt").read_bytes() == (FILES / "net_append_crc.ckpt").read_bytes()


def test_save_checkpoint_of_a_list_of_name_data_dicts(tmp_path):
    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import Tensor

    items = [
        {"name": "a", "data": Tensor(np.arange(4, dtype=np.int32))},
        {"name": "b", "data": Tensor(np.ones((2, 2), np.float16))},
    ]
    ms.save_checkpoint(items, str(tmp_path / "l.ckpt"))
    assert (tmp_path / "l.ckpt").read_bytes() == (FILES / "list.ckpt").read_bytes()
    loaded = ms.load_checkpoint(str(FILES / "list.ckpt"))
    assert loaded["a"].dtype == torch.int32 and loaded["b"].dtype == torch.float16


def test_a_wrappers_checkpoint_loads_into_the_bare_network_by_mindspores_prefix_retry():
    import lstm_bridge.mindspore as ms

    params = ms.load_checkpoint(str(FILES / "wrapped.ckpt"))
    net = _net()
    not_loaded, unused = ms.load_param_into_net(net, params)
    assert not_loaded == []
    assert unused == ["backbone." + n for n in NET_NAMES] + ["head.weight", "head.bias"]  # as MindSpore reports
    np.testing.assert_array_equal(net.dense.weight.asnumpy(), params["backbone.dense.weight"].asnumpy())
    assert ms.load_param_into_net(_net(), params, strict_load=True)[0] == NET_NAMES  # no retry when strict


def test_filter_and_specify_prefix():
    import lstm_bridge.mindspore as ms

    path = str(FILES / "wrapped.ckpt")
    assert list(ms.load_checkpoint(path, filter_prefix=["head", "backbone.rnn"])) == [
        "backbone.dense.weight",
        "backbone.dense.bias",
    ]
    assert list(ms.load_checkpoint(path, specify_prefix="backbone.rnn")) == ["backbone." + n for n in NET_NAMES[2:]]
    assert list(ms.load_checkpoint(path, choice_func=lambda n: n.startswith("head"))) == ["head.weight", "head.bias"]
    with pytest.raises(ValueError, match="can not be set at the same time"):
        ms.load_checkpoint(path, filter_prefix="head", specify_prefix="backbone")


def test_dtype_converts_unless_strict_and_shapes_must_match():
    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import Parameter, Tensor

    full = ms.load_checkpoint(str(FILES / "net_append_crc.ckpt"))
    half = {k: Parameter(Tensor(full[k].asnumpy().astype(np.float16)), name=k) for k in NET_NAMES}
    net = _net()
    assert ms.load_param_into_net(net, half) == ([], [])
    assert net.dense.weight.dtype == torch.float32
    with pytest.raises(RuntimeError, match="should have the same type"):
        ms.load_param_into_net(_net(), half, strict_load=True)
    bad = {"dense.weight": Parameter(Tensor(np.ones((2, 4), np.float32)), name="dense.weight")}
    with pytest.raises(RuntimeError, match=r"same shape .* \(2, 3\) in the argument 'net' and shape \(2, 4\)"):
        ms.load_param_into_net(_net(), bad)


def test_load_checkpoint_with_net_loads_it():
    import lstm_bridge.mindspore as ms

    net = _net()
    params = ms.load_checkpoint(str(FILES / "net_append_crc.ckpt"), net=net)
    np.testing.assert_array_equal(net.rnn.weight_hh_l0.asnumpy(), params["rnn.weight_hh_l0"].asnumpy())


def test_corrupt_and_wrong_arguments_are_refused(tmp_path):
    import lstm_bridge.mindspore as ms
    from lstm_bridge.formats.model import FormatError

    data = (FILES / "net_append_crc.ckpt").read_bytes()
    (tmp_path / "flipped.ckpt").write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    with pytest.raises(FormatError, match="CRC mismatch"):
        ms.load_checkpoint(str(tmp_path / "flipped.ckpt"))
    (tmp_path / "short.ckpt").write_bytes(data[:50])
    with pytest.raises(FormatError):
        ms.load_checkpoint(str(tmp_path / "short.ckpt"))
    with pytest.raises(TypeError, match="must be Cell, list or dict"):
        ms.save_checkpoint(42, str(tmp_path / "n.ckpt"))
    with pytest.raises(TypeError, match="'parameter_dict' should be a dict"):
        ms.load_param_into_net(_net(), [1, 2])
