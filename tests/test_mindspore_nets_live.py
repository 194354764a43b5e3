"""Checkpoints written by lstm-bridge's ``save_checkpoint`` load into the real MindSpore 2.10 networks (issue 14
item 3, "ours loads in real MindSpore"): each model-zoo network of tests/fixtures/mindspore_api/nets.py is built
here (imports rewritten), given new parameter values, saved; tools/golden_ms_nets.py --check then loads the files
in real MindSpore (.golden-venvs/ms) with nothing left unloaded and its logits equal ours within 1e-4.

Live tier (``make test-live`` / ``pytest -m live``): needs the MindSpore golden environment."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from ms_api import FIXTURES, GOLDEN, ROOT, golden, import_rewritten

pytestmark = pytest.mark.live
MS_PYTHON = ROOT / ".golden-venvs" / "ms" / "bin" / "python"


@pytest.mark.skipif(not MS_PYTHON.exists(), reason="the MindSpore golden environment (.golden-venvs/ms) is absent")
def test_our_checkpoints_run_in_real_mindspore(tmp_path):
    pytest.importorskip("torch")
    import torch

    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import Tensor

    nets = import_rewritten(FIXTURES / "nets.py", "ms_api_nets_live")
    recorded = golden("nets")
    arrays = recorded["arrays"]
    ours = {}
    for k, (net_id, (build, _, _)) in enumerate(sorted(nets.NETS.items())):
        net = build()
        ms.load_param_into_net(net, ms.load_checkpoint(str(GOLDEN / "nets" / f"{net_id}.ckpt")))
        gen = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for p in net.get_parameters():
                if p.is_floating_point():
                    p.mul_(1.25).add_(0.05 * torch.rand(p.shape, generator=gen))
        ms.save_checkpoint(net, str(tmp_path / f"{net_id}.ckpt"))
        inputs = [Tensor(arrays[f"{net_id}/input{i}"]) for i in range(recorded["nets"][net_id]["inputs"])]
        ours[f"{net_id}/logits"] = net(*inputs).asnumpy()
        ours[f"{net_id}/logits_seq"] = net(*inputs, seq_length=Tensor(arrays[f"{net_id}/seq_length"])).asnumpy()
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_v="3")
    done = subprocess.run(
        [str(MS_PYTHON), str(ROOT / "tools" / "golden_ms_nets.py"), "--check", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(tmp_path / "check.npz") as data:
        theirs = {k: data[k] for k in data.files}
    for net_id in sorted(nets.NETS):
        assert list(theirs[f"{net_id}/unloaded"]) == [], f"{net_id}: MindSpore left {theirs[f'{net_id}/unloaded']}"
        for key in ("logits", "logits_seq"):
            diff = float(np.max(np.abs(ours[f"{net_id}/{key}"] - theirs[f"{net_id}/{key}"])))
            assert diff <= 1e-4, f"{net_id} {key}: max |ours - MindSpore| = {diff:.3g}"
