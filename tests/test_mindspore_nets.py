"""Model-zoo-shaped MindSpore networks on lstm-bridge (issue 14 item 6): the source of
tests/fixtures/mindspore_api/nets.py (SentimentNet, TextRCNN with a BiGRU, CRNN, a GRU seq2seq with attention,
DeepSpeech2) runs with only its imports rewritten, loads the checkpoint real MindSpore 2.10 wrote with
``load_checkpoint`` / ``load_param_into_net`` (nothing left unloaded) and reproduces MindSpore's logits within
1e-4, with and without ``seq_length``; saved again, the checkpoint is byte for byte MindSpore's."""

from __future__ import annotations

import numpy as np
import pytest

from ms_api import FIXTURES, GOLDEN, golden, import_rewritten, rewrite_imports

RECORDED = golden("nets")
NET_IDS = sorted(RECORDED["nets"])
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def nets():
    return import_rewritten(FIXTURES / "nets.py", "ms_api_nets_on_lstm_bridge")


def _loaded(nets, net_id):
    import lstm_bridge.mindspore as ms

    build, _, _ = nets.NETS[net_id]
    net = build()
    params = ms.load_checkpoint(str(GOLDEN / "nets" / f"{net_id}.ckpt"))
    return net, ms.load_param_into_net(net, params)


def test_only_the_imports_are_rewritten():
    source = (FIXTURES / "nets.py").read_text(encoding="utf-8")
    rewritten = rewrite_imports(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), rewritten.splitlines()) if a != b]
    assert changed and all(a.lstrip().startswith(("import mindspore", "from mindspore")) for a, _ in changed)
    assert "import lstm_bridge.mindspore.nn as nn" in rewritten


@pytest.mark.parametrize("net_id", NET_IDS)
def test_network_reproduces_mindspore(nets, net_id):
    from lstm_bridge.mindspore import Tensor

    net, (param_not_load, ckpt_not_load) = _loaded(nets, net_id)
    assert (param_not_load, ckpt_not_load) == ([], [])
    expected_names = [n for n, _ in RECORDED["nets"][net_id]["parameters"]]
    assert list(net.parameters_dict()) == expected_names
    arrays = RECORDED["arrays"]
    inputs = [Tensor(arrays[f"{net_id}/input{i}"]) for i in range(RECORDED["nets"][net_id]["inputs"])]
    lengths = Tensor(arrays[f"{net_id}/seq_length"])
    for key, kwargs in (("logits", {}), ("logits_seq", {"seq_length": lengths})):
        ours = net(*inputs, **kwargs).asnumpy()
        theirs = arrays[f"{net_id}/{key}"]
        assert ours.shape == theirs.shape
        diff = float(np.max(np.abs(ours - theirs)))
        assert diff <= TOLERANCE, f"{net_id} {key}: max |ours - MindSpore| = {diff:.3g}"


@pytest.mark.parametrize("net_id", NET_IDS)
def test_saved_checkpoint_is_mindspores_bytes(nets, net_id, tmp_path):
    import lstm_bridge.mindspore as ms

    net, _ = _loaded(nets, net_id)
    ms.save_checkpoint(net, str(tmp_path / "ours"))  # MindSpore appends .ckpt
    assert (tmp_path / "ours.ckpt").read_bytes() == (GOLDEN / "nets" / f"{net_id}.ckpt").read_bytes()


# --- the model zoo's own files, verbatim ------------------------------------------------------------------------
ZOO_IDS = sorted(RECORDED["zoo"])
#: textrcnn runs in float16 (its Dense layers under to_float(float16), its recurrences in float16 element-wise ops):
#: MindSpore and torch agree there to float16's precision, not 1e-4
ZOO_TOLERANCE = {"zoo_textrcnn_gru": 2e-3, "zoo_textrcnn_vanilla": 2e-3}


@pytest.fixture(scope="module")
def zoo():
    modules = {
        name: import_rewritten(FIXTURES / "zoo" / f"{name}.py", f"ms_api_zoo_{name}")
        for name in ("lstm", "crnn", "deepspeech2", "textrcnn")
    }
    modules["builders"] = import_rewritten(FIXTURES / "zoo_builders.py", "ms_api_zoo_builders")
    return modules


def _flatten(value):
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _flatten(v)]
    return [value.asnumpy()]


@pytest.mark.parametrize("net_id", ZOO_IDS)
def test_model_zoo_file_runs_with_only_its_imports_changed(zoo, net_id):
    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import Parameter, Tensor

    build, _ = zoo["builders"].builders(zoo, Tensor)[net_id]
    net = build()
    meta = RECORDED["zoo"][net_id]
    assert [[n, list(p.shape)] for n, p in net.parameters_dict().items()] == [[n, s] for n, s, _ in meta["parameters"]]
    values = {
        n: Parameter(Tensor(zoo["builders"].parameter_values(n, tuple(s))).astype(np.dtype(d)), name=n)
        for n, s, d in meta["parameters"]
    }
    assert ms.load_param_into_net(net, values) == ([], [])
    arrays = RECORDED["arrays"]
    inputs = [Tensor(arrays[f"zoo/{net_id}/input{i}"]) for i in range(meta["inputs"])]
    ours = _flatten(net(*inputs))
    assert [str(a.dtype) for a in ours] == meta["outputs"]
    for i, a in enumerate(ours):
        theirs = arrays[f"zoo/{net_id}/output{i}"]
        assert a.shape == theirs.shape
        diff = float(np.max(np.abs(a.astype(np.float64) - theirs.astype(np.float64))))
        assert diff <= ZOO_TOLERANCE.get(net_id, TOLERANCE), f"{net_id} output {i}: max |ours - MindSpore| = {diff:.3g}"
