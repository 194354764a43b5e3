"""``lstm-bridge convert / inspect / verify / explain`` on GRU and SimpleRNN files (issue 11 item 5), on the real
tf_keras / Keras 3 / MindSpore files of ``tests/fixtures/family_files``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_bridge import explain as ex, load
from lstm_bridge.cli import main

F = Path(__file__).parent / "fixtures" / "family_files"


@pytest.mark.parametrize(
    "src, out",
    [
        ("ms_family.ckpt", "m.keras"),
        ("tk_cudnn_gru.h5", "c.ckpt"),
        ("k3_family.keras", "k.h5"),
        ("tk_family.h5", "t.h5"),
    ],
)
def test_convert_writes_family_files_and_verifies_them(tmp_path, capsys, src, out):
    assert main(["convert", "--rnn-nonlinearity", "relu", str(F / src), str(tmp_path / out)]) == 0
    text = capsys.readouterr().out
    assert "OK: max |difference| 0" in text
    cells = [e.cell for e in load(tmp_path / out).recurrent_entries()]
    assert cells == [e.cell for e in load(F / src).recurrent_entries()] or src == "ms_family.ckpt"


def test_convert_refuses_what_the_target_cannot_hold_and_names_the_module(tmp_path, capsys):
    code = main(["convert", str(F / "tk_family.h5"), str(tmp_path / "t.pt")])
    err = capsys.readouterr().err
    assert code == 3
    assert "reset_after=False" in err and "torch.nn.GRU" in err and "lstm_bridge.keras.GRU" in err
    assert list(tmp_path.iterdir()) == []


def test_convert_a_stacked_checkpoint_gru_to_keras_runs_the_same(tmp_path, capsys):
    """A 2-layer bidirectional nn.GRU becomes two Keras Bidirectional(GRU(reset_after=True)) layers."""
    assert main(["convert", str(F / "ms_family.ckpt"), str(tmp_path / "m.h5")]) == 3  # the RNN: tanh or relu?
    assert "--rnn-nonlinearity" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
    assert main(["convert", "--rnn-nonlinearity", "relu", str(F / "ms_family.ckpt"), str(tmp_path / "m.h5")]) == 0
    capsys.readouterr()
    entries = load(tmp_path / "m.h5").recurrent_entries()
    assert [(e.kind, e.cell, e.reset_after) for e in entries][:2] == [("Bidirectional", "GRU", True)] * 2
    assert entries[2].semantics["activation"] == "relu"
    assert main(["convert", str(tmp_path / "m.h5"), str(tmp_path / "back.ckpt")]) == 0
    assert "nonlinearity='relu'" in capsys.readouterr().out  # a .ckpt does not record it: the note says so


def test_inspect_names_the_cell_and_the_gru_form(capsys):
    assert main(["inspect", "--json", str(F / "tk_family.h5")]) == 0
    info = json.loads(capsys.readouterr().out)
    rec = {item["name"]: item["recurrent"] for item in info["layers"] if "recurrent" in item}
    assert rec["gru_before"]["cell"] == "GRU" and rec["gru_before"]["semantics"]["reset_after"] is False
    assert rec["bi_rnn"]["cell"] == "RNN" and rec["bi_rnn"]["semantics"]["activation"] == "relu"
    assert rec["bi_gru"]["bidirectional"] is True and rec["bi_gru"]["semantics"]["reset_after"] is True
    assert "gates z, r, h" in info["gate_layout"] and "SimpleRNN" in info["gate_layout"]
    assert main(["inspect", str(F / "ms_family.ckpt")]) == 0
    text = capsys.readouterr().out
    assert "recurrent semantics" in text and "gates r, z, n" in text


def test_verify_compares_family_files(tmp_path, capsys):
    assert main(["verify", str(F / "k3_family.keras"), str(F / "k3_family.h5")]) == 0
    assert "OK" in capsys.readouterr().out
    # a GRU whose weights changed is caught
    mf = load(F / "k3_family.keras")
    e = mf.entry("gru_hs")
    e.weights["kernel"] = e.weights["kernel"] + np.float32(0.01)
    from lstm_bridge import save

    save(mf, tmp_path / "changed.keras")
    assert main(["verify", str(F / "k3_family.keras"), str(tmp_path / "changed.keras")]) == 1


def test_explain_a_reset_before_gru_says_why_and_what_carries_it():
    expl = ex.explain("tf.keras.layers.GRU(64, reset_after=False)")
    assert not expl.expressible
    assert any("reset_after=False" in b and "mindspore.nn.GRU" in b for b in expl.blocking)
    assert any("lstm_bridge.keras.GRU" in n for n in expl.notes)
    v1 = ex.explain("tf.compat.v1.keras.layers.GRU(8)")  # TF 1.15 defaults: hard_sigmoid, reset_after=False
    assert len(v1.blocking) == 2
    ok = ex.explain("tf.keras.layers.GRU(16, return_state=True)")
    assert ok.expressible and ok.target is not None and ok.target.startswith("mindspore.nn.GRU(")
    assert any("z, r, h -> MindSpore r, z, n" in r for r in ok.rearrange)


def test_explain_the_simple_rnn_and_mindspore_family(capsys):
    assert not ex.explain("tf.keras.layers.SimpleRNN(4, activation='softsign')").expressible
    bi = ex.explain("keras.layers.Bidirectional(keras.layers.SimpleRNN(4, activation='relu'))")
    assert bi.target is not None and "nonlinearity='relu'" in bi.target and "bidirectional=True" in bi.target
    rnn = ex.explain("mindspore.nn.RNN(3, 4, nonlinearity='relu')")
    assert rnn.target is not None and "SimpleRNN(4, activation='relu'" in rnn.target
    gru = ex.explain("nn.GRU(10, 16, 2, bidirectional=True)")
    assert gru.target is not None and gru.target.count("Bidirectional(tf.keras.layers.GRU(16, reset_after=True") == 2
    with pytest.raises(ex.ExplainError, match="unknown keyword"):
        ex.explain("tf.keras.layers.SimpleRNN(4, recurrent_activation='sigmoid')")
    assert main(["explain", "tf.keras.layers.GRU(64, reset_after=False)"]) == 0
    assert "NOT expressible" in capsys.readouterr().out
