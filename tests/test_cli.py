"""The lstm-bridge CLI end to end (``main([...])``) on the real fixture files, and lstm_bridge.explain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from lstm_bridge import explain as ex
from lstm_bridge.cli import main
from lstm_bridge.io import load

from helpers import FIXTURES

KERAS = FIXTURES / "keras"
MS = FIXTURES / "mindspore"


def _lstm_weights(path):
    """Canonical LSTM weights of a file as NumPy arrays, per entry, layer and direction."""
    out = []
    for entry in load(path).lstm_layers():
        for dirs in entry.weights:
            for w in dirs:
                w = w.numpy()
                out.append([w.w_ih, w.w_hh, w.bias_sum()])
    return out


def _bit_equal(a, b) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for wa, wb in zip(a, b)
        for x, y in zip(wa, wb)
    )


def _files(directory: Path):
    return sorted(p.name for p in directory.iterdir())


# --- help and the installed script ------------------------------------------------------------------


def test_help_everywhere(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "exit codes" in top and "3  bad or unsupported input file" in top
    for cmd, needle in [
        ("convert", "atomically"),
        ("inspect", "hard_sigmoid"),
        ("verify", "--tol"),
        ("explain", "nothing is evaluated"),
        ("demo", "parity"),
        ("bench", "benchmarks"),
    ]:
        assert main([cmd, "--help"]) == 0
        assert needle in capsys.readouterr().out, cmd
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["convert", "only-one-arg"]) == 2


def test_installed_console_script():
    script = Path(sys.executable).parent / "lstm-bridge"
    exe = str(script) if script.exists() else shutil.which("lstm-bridge")
    assert exe, "the lstm-bridge console script is not installed (pip install -e .)"
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "convert" in res.stdout and "explain" in res.stdout


# --- convert in every direction -----------------------------------------------------------------------


def test_keras_h5_ckpt_pt_safetensors_keras_round_trip(tmp_path, capsys):
    src = KERAS / "tfkeras_bilstm_stacked.h5"
    chain = [tmp_path / "a.ckpt", tmp_path / "b.pt", tmp_path / "c.safetensors", tmp_path / "d.h5"]
    prev = src
    for out in chain:
        assert main(["convert", str(prev), str(out)]) == 0, capsys.readouterr().err
        text = capsys.readouterr().out
        assert "OK: max |difference|" in text and out.exists()
        prev = out
    # the LSTM weights survive Keras -> MindSpore -> PyTorch -> safetensors -> Keras bit for bit
    assert _bit_equal(_lstm_weights(src), _lstm_weights(tmp_path / "d.h5"))
    assert main(["verify", str(src), str(tmp_path / "d.h5")]) == 0
    assert "max |difference|" in capsys.readouterr().out
    assert _files(tmp_path) == ["a.ckpt", "b.pt", "c.safetensors", "d.h5"]  # no temp files left


@pytest.mark.parametrize(
    "src,targets",
    [
        # (the .onnx from the full y.keras: a weights-only file records no layer order to chain)
        (KERAS / "keras3_bilstm_stacked.keras", ["x.ckpt", "y.keras", "w.onnx", "z.weights.h5"]),
        (KERAS / "tfkeras_emb_lstm_dense.keras", ["x.safetensors", "y.h5", "z.ckpt"]),
        (KERAS / "keras3_emb_lstm_dense.weights.h5", ["x.ckpt", "y.pt"]),
        (KERAS / "tfkeras_emb_lstm_dense_weights_legacy.h5", ["x.pt", "y.keras"]),
        (MS / "lstm_2layer_bi.ckpt", ["x.keras", "y.h5", "z.pt", "w.ckpt", "v.onnx"]),
        (MS / "embed_lstm_dense.ckpt", ["x.h5", "y.safetensors", "z.weights.h5"]),
        (MS / "lstm_64x32_sliced.ckpt", ["x.pt", "y.keras"]),
        (MS / "lstm_small_crc.ckpt", ["x.h5", "y.ckpt"]),
    ],
)
def test_convert_chains_verify_against_the_source(src, targets, tmp_path, capsys):
    prev = src
    for name in targets:
        out = tmp_path / name
        code = main(["convert", str(prev), str(out)])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        if not name.endswith(".onnx"):
            prev = out
    # every intermediate file's LSTMs agree with the source's
    for name in targets:
        if name.endswith(".onnx"):
            continue
        assert main(["verify", str(src), str(tmp_path / name), "--tol", "1e-6"]) == 0, name
    capsys.readouterr()
    assert _files(tmp_path) == sorted(targets)


def test_layers_that_cannot_be_carried_are_listed(tmp_path, capsys):
    assert main(["convert", str(MS / "embed_lstm_dense.ckpt"), str(tmp_path / "e.keras")]) == 0
    out = capsys.readouterr().out
    assert "not carried: 'embedding'" in out and "not carried: 'dense'" in out
    assert main(["convert", str(MS / "embed_lstm_dense.ckpt"), str(tmp_path / "e.pt")]) == 0
    state = torch.load(tmp_path / "e.pt", weights_only=True)
    assert "embedding.embedding_table" in state and "dense.weight" in state  # carried through by name


def test_layer_selection(tmp_path, capsys):
    out = tmp_path / "one.pt"
    assert main(["convert", str(KERAS / "tfkeras_bilstm_stacked.h5"), str(out), "--layer", "lstm_1"]) == 0
    entries = [e.name for e in load(out).lstm_layers()]
    assert entries == ["lstm_1"]
    assert main(["convert", str(KERAS / "tfkeras_bilstm_stacked.h5"), str(tmp_path / "n.pt"), "--layer", "nope"]) == 2
    assert "no layer 'nope'" in capsys.readouterr().err
    assert main(["convert", str(KERAS / "tfkeras_bilstm_stacked.h5"), str(tmp_path / "n.pt"), "--layer", "dense"]) == 2


# --- refusals and exit codes --------------------------------------------------------------------------


def test_refuses_to_overwrite_without_force_and_never_overwrites_input(tmp_path, capsys):
    src = tmp_path / "in.ckpt"
    shutil.copy(MS / "lstm_small.ckpt", src)
    original = src.read_bytes()
    out = tmp_path / "out.pt"
    out.write_bytes(b"keep me")
    assert main(["convert", str(src), str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["convert", str(src), str(out), "--force"]) == 0
    assert out.read_bytes() != b"keep me" and load(out).framework == "torch"
    # the output is an input: refused, with or without --force, by path or through a link
    assert main(["convert", str(src), str(src), "--to", "mindspore-ckpt", "--force"]) == 2
    link = tmp_path / "link.ckpt"
    link.symlink_to(src)
    assert main(["convert", str(src), str(link), "--force"]) == 2
    assert "refusing to overwrite the input" in capsys.readouterr().err
    assert src.read_bytes() == original


def test_exit_codes_for_bad_input_and_usage(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing.ckpt"), str(tmp_path / "o.pt")]) == 3
    assert main(["convert", str(MS / "lstm_small_encrypted_AES-GCM.ckpt"), str(tmp_path / "o.pt")]) == 3
    assert "decrypt it with MindSpore first" in capsys.readouterr().err
    truncated = tmp_path / "t.ckpt"
    truncated.write_bytes((MS / "lstm_small.ckpt").read_bytes()[:150])
    assert main(["convert", str(truncated), str(tmp_path / "o.pt")]) == 3
    assert main(["inspect", str(truncated)]) == 3
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.xyz")]) == 2
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.pt"), "--to", "tensorflow"]) == 2
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "nodir" / "o.pt")]) == 2
    # semantics the target cannot express: refused with the reason, nothing written
    assert main(["convert", str(KERAS / "tfkeras_lstm_hard_sigmoid.h5"), str(tmp_path / "hs.ckpt")]) == 3
    err = capsys.readouterr().err
    assert "hard_sigmoid" in err and "clip(0.2x + 0.5, 0, 1)" in err
    assert _files(tmp_path) == ["t.ckpt"]


def test_weights_only_target_keeps_weights_and_says_what_is_not_recorded(tmp_path, capsys):
    src = KERAS / "keras3_lstm_hard_sigmoid.keras"
    out = tmp_path / "hs.weights.h5"
    assert main(["convert", str(src), str(out)]) == 0
    text = capsys.readouterr().out
    assert "weights-only" in text and "gate=hard_sigmoid_keras3" in text
    assert _bit_equal(_lstm_weights(src), _lstm_weights(out))


def test_semantics_changed_by_a_writer_fail_verification(tmp_path, capsys, monkeypatch):
    import lstm_bridge.convert as conv

    real = conv.chain_from_model_file

    def forget_activation(mf, layer=None, validate=True):
        chain = real(mf, layer, validate)
        if os.path.basename(str(mf.path)).startswith(".out.h5"):
            for l in chain.layers:
                l.gate = "sigmoid"  # as if the writer had dropped recurrent_activation
        return chain

    monkeypatch.setattr(conv, "chain_from_model_file", forget_activation)
    assert main(["convert", str(KERAS / "tfkeras_lstm_hard_sigmoid.h5"), str(tmp_path / "out.h5")]) == 1
    assert "changes the semantics" in capsys.readouterr().err
    assert _files(tmp_path) == []


def test_failed_verification_leaves_no_output(tmp_path, capsys, monkeypatch):
    import lstm_bridge.convert as conv

    def broken(a, b, **kw):
        return [conv.LayerDiff("simulated", 0.5, 0.0, 0.0)]

    monkeypatch.setattr(conv, "compare_chains", broken)
    out = tmp_path / "o.keras"
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 1
    assert "verification failed" in capsys.readouterr().err
    assert _files(tmp_path) == []
    # an existing output stays untouched when --force conversion fails
    out.write_bytes(b"old")
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out), "--force"]) == 1
    assert out.read_bytes() == b"old" and _files(tmp_path) == ["o.keras"]


def test_failed_write_leaves_no_partial_output(tmp_path, capsys, monkeypatch):
    import lstm_bridge.io as lb_io
    from lstm_bridge.formats import FormatError

    def half_write(obj, path, format=None, **kw):
        with open(path, "wb") as fh:
            fh.write(b"\x0a\x10partial")
        raise FormatError(path, "simulated failure in the middle of writing")

    monkeypatch.setattr(lb_io, "save", half_write)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.pt")]) == 3
    assert "simulated failure" in capsys.readouterr().err
    assert _files(tmp_path) == []


def test_progress_bar_runs(tmp_path, capsys):
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.pt"), "--progress", "always"]) == 0
    assert "OK" in capsys.readouterr().out


# --- inspect / verify ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,meaning,gate",
    [
        ("tfkeras_lstm_hard_sigmoid.h5", "clip(0.2*x+0.5, 0, 1)", "hard_sigmoid"),
        ("keras3_lstm_hard_sigmoid.keras", "relu6(x+3)/6", "hard_sigmoid_keras3"),
    ],
)
def test_inspect_keras_hard_sigmoid(name, meaning, gate, capsys):
    assert main(["inspect", str(KERAS / name)]) == 0
    text = capsys.readouterr().out
    assert "framework: keras" in text and meaning in text and "i, f, c, o" in text
    assert main(["inspect", str(KERAS / name), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    lstm = [l for l in info["layers"] if "lstm" in l][0]
    assert lstm["lstm"]["semantics"]["recurrent_activation"] == gate
    assert lstm["weights"]["kernel"]["shape"][1] == 4 * lstm["lstm"]["hidden_size"]


def test_inspect_mindspore(capsys):
    assert main(["inspect", str(MS / "lstm_2layer_bi.ckpt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["framework"] == "mindspore" and "i, f, g, o" in info["gate_layout"]
    (entry,) = [l for l in info["layers"] if "lstm" in l]
    assert entry["lstm"]["num_layers"] == 2 and entry["lstm"]["bidirectional"] is True
    assert entry["weights"]["weight_ih_l1_reverse"]["shape"] == [20, 10]


def test_verify_detects_a_perturbed_weight(tmp_path, capsys):
    base = tmp_path / "base.pt"
    assert main(["convert", str(MS / "lstm_2layer_bi.ckpt"), str(base)]) == 0
    state = torch.load(base, weights_only=True)
    state["weight_hh_l1_reverse"] = state["weight_hh_l1_reverse"] + 1e-3
    torch.save(state, tmp_path / "bad.pt")
    capsys.readouterr()
    assert main(["verify", str(base), str(tmp_path / "bad.pt")]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["verify", str(base), str(tmp_path / "bad.pt"), "--tol", "0.1"]) == 0
    assert main(["verify", str(MS / "lstm_small.ckpt"), str(base)]) == 1  # different structure
    assert main(["verify", str(base), str(tmp_path / "missing.pt")]) == 3


# --- explain --------------------------------------------------------------------------------------------


def test_explain_keras_to_mindspore(capsys):
    assert main(["explain", "tf.keras.layers.LSTM(16, return_sequences=True, return_state=True)"]) == 0
    text = capsys.readouterr().out
    assert "mindspore.nn.LSTM(input_size=F, hidden_size=16, num_layers=1, has_bias=True, batch_first=True" in text
    assert "[h, c] = [h_n[-1], c_n[-1]]" in text
    e = ex.explain("tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(8, return_state=True))")
    assert e.expressible and "bidirectional=True" in e.target
    assert any("h_n[-2], c_n[-2], h_n[-1], c_n[-1]" in r for r in e.rearrange)
    assert any("concat(h_n[-2], h_n[-1])" in r for r in e.rearrange)
    assert ex.explain("tf.keras.layers.LSTM(4, unroll=True, time_major=True)").target.endswith(
        "batch_first=False, bidirectional=False)"
    )


@pytest.mark.parametrize(
    "call,reason",
    [
        ("tf.keras.layers.LSTM(4, recurrent_activation='hard_sigmoid')", "hard-code sigmoid"),
        ("tf.compat.v1.keras.layers.LSTM(4)", "the TF 1.15 default"),
        ("tf.keras.layers.LSTM(4, go_backwards=True)", "go_backwards=True alone"),
        ("tf.keras.layers.LSTM(4, stateful=True)", "keeps no state between calls"),
        ("tf.keras.layers.LSTM(4, activation='relu')", "hard-code tanh"),
        ("tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(4), merge_mode='sum')", "always concatenates"),
    ],
)
def test_explain_not_expressible(call, reason):
    e = ex.explain(call)
    assert not e.expressible and e.target is None
    assert any(reason in b for b in e.blocking), e.blocking


def test_explain_mindspore_to_keras(capsys):
    call = "mindspore.nn.LSTM(10, 16, 2, bidirectional=True, batch_first=True)"
    assert main(["explain", call, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["expressible"] and info["target"].count("tf.keras.layers.Bidirectional(") == 2
    assert any("(4, B, 16)" in r for r in info["rearrange"])
    e = ex.explain("nn.LSTM(3, 5, dropout=0.5, num_layers=3)")
    assert e.target.count("Dropout(0.5)") == 2 and any("transpose" in r for r in e.rearrange)
    assert "LSTMCell(4, use_bias=False)" in ex.explain("mindspore.nn.LSTMCell(3, 4, False)").target


@pytest.mark.parametrize(
    "text",
    [
        "tf.keras.layers.LSTM(__import__('os').system('echo pwned'))",
        "tf.keras.layers.LSTM(units=n)",
        "tf.keras.layers.LSTM(*args)",
        "import os",
        "torch.nn.GRU(3, 4)",
    ],
)
def test_explain_never_evaluates(text, capsys):
    with pytest.raises(ex.ExplainError):
        ex.explain(text)
    assert main(["explain", text]) == 2
    assert "pwned" not in capsys.readouterr().out


def test_explain_table_is_data():
    table = ex.markdown_table()
    assert table.count("\n") == len(ex.KERAS_RULES) + 1
    assert "| go_backwards |" in table and "hard_sigmoid" in table
    assert ex.markdown_table(ex.MINDSPORE_RULES).count("| ") > len(ex.MINDSPORE_RULES)


# --- delegation -----------------------------------------------------------------------------------------


def test_demo_and_bench_delegate(monkeypatch):
    import lstm_bridge.demo as demo

    calls = []
    monkeypatch.setattr(demo, "main", lambda *a, **k: calls.append("demo") or 0)
    assert main(["demo"]) == 0 and calls == ["demo"]
    fake = types.ModuleType("lstm_bridge.bench")
    fake.main = lambda argv: calls.append(list(argv)) or 0
    monkeypatch.setitem(sys.modules, "lstm_bridge.bench", fake)
    import lstm_bridge

    monkeypatch.setattr(lstm_bridge, "bench", fake, raising=False)
    assert main(["bench", "--quick", "--sizes", "8"]) == 0
    assert calls[-1] == ["--quick", "--sizes", "8"]


def test_explain_parser_only_raises_explain_error():
    from hypothesis import given, settings, strategies as st

    pieces = st.sampled_from(
        [
            "tf.keras.layers.LSTM",
            "mindspore.nn.LSTM",
            "Bidirectional",
            "(",
            ")",
            ",",
            "=",
            "16",
            "'hard_sigmoid'",
            "True",
            "units",
            "x",
            "[",
            "]",
            "{",
            "}",
            "*",
            "**",
            "lambda",
            " ",
            "\x00",
            "'",
            "1e400",
            "-",
            "go_backwards",
            "return_state",
        ]
    )

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(pieces, max_size=20).map("".join))
    def check(text):
        try:
            e = ex.explain(text)
        except ex.ExplainError:
            return
        assert isinstance(ex.format_explanation(e), str)

    check()
    with pytest.raises(ex.ExplainError):
        ex.explain("tf.keras.layers.LSTM(" * 5000)
    assert "input_size=8" in ex.explain("tf.keras.layers.LSTM(16, input_shape=(10, 8))").target
    with pytest.raises(ex.ExplainError, match="num_layers"):
        ex.explain("nn.LSTM(3, 4, 1000000)")


# --- write failures, atomic claims, modes (issue 9: CLI, signals, races) ----------------------------------


def _run_cli_limited(args, cwd, fsize=None, umask=None):
    """The CLI in a subprocess, optionally with a file-size limit (writes beyond it fail with EFBIG, a real
    OS write failure inside every writer library) or another umask."""
    import resource

    def limits():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "lstm_bridge.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        preexec_fn=limits,
        timeout=300,
    )


@pytest.mark.parametrize("target", ["o.pt", "o.safetensors", "o.ckpt", "o.keras", "o.onnx", "o.h5", "o.weights.h5"])
def test_a_failed_write_is_one_line_with_the_os_reason_and_exit_3(tmp_path, target):
    res = _run_cli_limited(["convert", MS / "lstm_64x32_unsliced.ckpt", target], tmp_path, fsize=4096)
    assert res.returncode == 3, res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"lstm-bridge convert: error: cannot write {target}: File too large"), lines
    assert list(tmp_path.iterdir()) == []


def test_disk_full_inside_a_writer_library_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import lstm_bridge.formats.torch_pt as torch_pt

    def full(obj, path, *a, **k):
        Path(path).write_bytes(b"PK\x03\x04 partial")
        raise RuntimeError(
            f"[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
            f"data/0: file write failed; errno = {errno.ENOSPC}"
        )

    monkeypatch.setattr(torch_pt.torch, "save", full)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.pt")]) == 3
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"lstm-bridge convert: error: cannot write {tmp_path / 'o.pt'}: No space left on device"
    ]
    assert _files(tmp_path) == []

    def full_os(obj, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch_pt.torch, "save", full_os)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "o.pt")]) == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and "lstm-bridge-" not in err and _files(tmp_path) == []


def test_a_read_only_directory_is_one_line_naming_out(tmp_path, capsys, monkeypatch):
    import errno

    import lstm_bridge.formats.atomic as atomic

    out = tmp_path / "ro" / "o.pt"
    out.parent.mkdir()

    def refuse(name):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)

    monkeypatch.setattr(atomic, "create_new", refuse)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert err == (
        f"lstm-bridge convert: error: cannot write {out}: cannot create a file in {out.parent}: Read-only file system"
    )
    monkeypatch.undo()
    if os.geteuid() != 0:  # permissions do not stop root: the real thing where it can be shown
        out.parent.chmod(0o555)
        try:
            assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 3
            assert "Permission denied" in capsys.readouterr().err
        finally:
            out.parent.chmod(0o755)
    assert _files(out.parent) == []


@pytest.mark.parametrize(
    "src,suffix",
    [
        (KERAS / "tfkeras_bilstm_stacked.h5", ".ckpt"),
        (KERAS / "tfkeras_bilstm_stacked.h5", ".pt"),
        (MS / "lstm_2layer_bi.ckpt", ".keras"),
        (MS / "lstm_2layer_bi.ckpt", ".h5"),
        (MS / "lstm_2layer_bi.ckpt", ".weights.h5"),
        (MS / "lstm_2layer_bi.ckpt", ".safetensors"),
        (MS / "lstm_2layer_bi.ckpt", ".onnx"),
    ],
)
def test_convert_writes_one_temporary_file_and_computes_each_lstm_layer_once(
    src, suffix, tmp_path, capsys, monkeypatch
):
    """One temporary file in OUT's directory (the writer writes into the CLI's own, no nested temporary
    file), and each ModelFile (the input, the written file read back) converts each LSTM entry once."""
    import collections

    import lstm_bridge.convert as conv
    import lstm_bridge.formats.atomic as atomic
    from lstm_bridge.formats import model as model_mod

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"o{suffix}"
    created, hidden_while_verifying = [], []
    real_create, real_compare, real_convert = atomic.create_new, conv.compare_chains, model_mod._to_lstm_layer
    computed = collections.Counter()

    def create_new(name):
        created.append(name)
        return real_create(name)

    def compare_chains(*a, **k):
        hidden_while_verifying.append(sorted(p.name for p in out_dir.iterdir() if p.name.startswith(".")))
        return real_compare(*a, **k)

    def to_lstm_layer(mf, e):
        computed[(id(mf), e.name)] += 1
        return real_convert(mf, e)

    monkeypatch.setattr(atomic, "create_new", create_new)
    monkeypatch.setattr(conv, "compare_chains", compare_chains)
    monkeypatch.setattr(model_mod, "_to_lstm_layer", to_lstm_layer)
    assert main(["convert", str(src), str(out)]) == 0, capsys.readouterr().err
    assert [os.path.dirname(n) for n in created] == [str(out_dir)], created
    if suffix != ".onnx":  # (onnxruntime runs the graph: no chain comparison to watch)
        assert [len(h) for h in hidden_while_verifying] == [1], hidden_while_verifying
    assert _files(out_dir) == [out.name]
    assert computed and set(computed.values()) == {1}, computed


def test_a_dangling_symlink_at_out_counts_as_existing(tmp_path, capsys):
    out = tmp_path / "o.pt"
    out.symlink_to(tmp_path / "nowhere.pt")
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.is_symlink() and not (tmp_path / "nowhere.pt").exists()
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out), "--force"]) == 0
    # the link itself is replaced, its target never created
    assert not out.is_symlink() and load(out).framework == "torch" and not (tmp_path / "nowhere.pt").exists()


def test_out_created_while_converting_is_not_replaced(tmp_path, capsys, monkeypatch):
    import lstm_bridge.convert as conv

    out = tmp_path / "o.pt"
    real = conv.compare_chains

    def someone_else_writes_out(*a, **k):
        out.write_bytes(b"another process")
        return real(*a, **k)

    monkeypatch.setattr(conv, "compare_chains", someone_else_writes_out)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and str(out) in err
    assert out.read_bytes() == b"another process" and _files(tmp_path) == ["o.pt"]
    # with --force the run replaces it
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out), "--force"]) == 0
    assert load(out).framework == "torch" and _files(tmp_path) == ["o.pt"]


def test_errors_about_the_written_file_name_out_not_the_temporary_file(tmp_path, capsys, monkeypatch):
    import lstm_bridge.io as lb_io
    from lstm_bridge.formats import FormatError

    real = lb_io.load

    def unreadable_output(path, *a, **k):
        if os.path.basename(str(path)).startswith("."):
            raise FormatError(path, "simulated: truncated after writing")
        return real(path, *a, **k)

    monkeypatch.setattr(lb_io, "load", unreadable_output)
    out = tmp_path / "o.safetensors"
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out}: simulated: truncated after writing" in err
    assert "lstm-bridge-" not in err and ".tmp" not in err
    assert _files(tmp_path) == []


def test_output_mode_follows_the_umask_without_umask_calls(tmp_path):
    src_root = Path(__file__).resolve().parents[1] / "src" / "lstm_bridge"
    offenders = [str(p) for p in src_root.rglob("*.py") if "os.umask(" in p.read_text()]
    assert offenders == []  # the umask is process-wide: reading it means setting it (a race with threads)
    res = _run_cli_limited(["convert", MS / "lstm_small.ckpt", "o.keras"], tmp_path, umask=0o027)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.keras").stat().st_mode & 0o777 == 0o640
    res = _run_cli_limited(["convert", MS / "lstm_small.ckpt", "p.pt"], tmp_path, umask=0o002)
    assert (tmp_path / "p.pt").stat().st_mode & 0o777 == 0o664


def test_batch_first_and_time_major_reach_save_for_onnx(tmp_path, capsys, monkeypatch):
    import lstm_bridge.io as lb_io

    seen = []
    real = lb_io.save

    def spy(obj, path, format=None, **options):
        seen.append((format, options.get("batch_first", "absent")))
        return real(obj, path, format=format, **options)

    monkeypatch.setattr(lb_io, "save", spy)
    pytest.importorskip("onnxruntime")
    import onnx

    for flag, expected, first_dim in (
        ("--batch-first", True, "batch"),
        ("--time-major", False, "time"),
        (None, "absent", "time"),
    ):
        out = tmp_path / f"o{len(seen)}.onnx"
        assert main(["convert", str(MS / "lstm_small.ckpt"), str(out)] + ([flag] if flag else [])) == 0, (
            capsys.readouterr().err
        )
        assert seen[-1] == ("onnx", expected)
        dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == first_dim  # the graph takes the layout asked for (and was verified with it)
    assert main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "x.pt"), "--batch-first"]) == 2
    assert "ONNX output only" in capsys.readouterr().err
    assert (
        main(["convert", str(MS / "lstm_small.ckpt"), str(tmp_path / "y.onnx"), "--batch-first", "--time-major"]) == 2
    )


def test_inspect_shows_masking_and_every_layer_activation(tmp_path, capsys):
    import zipfile

    assert main(["inspect", str(KERAS / "tfkeras_emb_lstm_dense.h5")]) == 0
    text = capsys.readouterr().out
    assert "keras generation: 2" in text and "masking: embedding (mask_zero=True)" in text
    assert "activation=linear" in text and "recurrent_activation=sigmoid" in text
    # a Keras 3 file with a Masking layer (made from a fixture by editing its config)
    src = KERAS / "keras3_lstm_hard_sigmoid.keras"
    dst = tmp_path / "masked.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                cfg = json.loads(data)
                cfg["config"]["layers"].insert(
                    1,
                    {
                        "module": "keras.layers",
                        "class_name": "Masking",
                        "config": {"name": "pad_mask", "mask_value": -1.0},
                        "name": "pad_mask",
                        "inbound_nodes": [],
                    },
                )
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    assert main(["inspect", str(dst), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    by_name = {l["name"]: l for l in info["layers"]}
    assert info["keras_generation"] == 3
    assert by_name["pad_mask"]["kind"] == "Masking" and by_name["pad_mask"]["details"] == {"mask_value": -1.0}
    assert by_name["lstm_hs"]["details"] == {"activation": "tanh", "recurrent_activation": "hard_sigmoid_keras3"}
    assert main(["inspect", str(dst)]) == 0
    assert "masking: pad_mask (mask_value=-1.0)" in capsys.readouterr().out
