"""Long mutation fuzz of every file reader (not part of the test suite; the suite runs a short one).

Mutates the real-framework files under ``tests/fixtures`` (plus generated ``.pt``/``.safetensors``):
truncation, bit flips (more often in the first 4 KiB, where HDF5 keeps its metadata), splices, 0xff runs,
boundary integers, duplicated runs, and for ``.keras`` structure-aware edits of ``config.json`` values
(``2**200``, ``1e999``, wrong types). Each file goes through ``lstm_bridge.load`` and the format's own
reader in a worker process (killed and counted as a hang after 60 s); a file that loads also goes
through what ``verify``/``convert`` do next (chain, run, save). Every outcome other than FormatError,
"loaded", or a ValueError refusal in a later step is a bug; those files are kept in OUTDIR.

Usage: python tools/fuzz_formats.py SECONDS OUTDIR [SEED]   (prints and writes OUTDIR/report.json)
"""

import collections
import io
import json
import os
import pathlib
import random
import sys
import time
import traceback
import zipfile

import torch

from lstm_bridge import io as lio
from lstm_bridge.formats import FormatError, get_format

FIX = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"
seconds, outdir = float(sys.argv[1]), pathlib.Path(sys.argv[2])
outdir.mkdir(parents=True, exist_ok=True)
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 9)

#: the format whose own reader each seed's suffix names
READERS = {
    ".h5": "keras-h5",
    ".weights.h5": "keras-weights-h5",
    ".keras": "keras",
    ".ckpt": "mindspore-ckpt",
    ".pt": "torch",
    ".safetensors": "safetensors",
}


def torch_bytes(bi):
    torch.manual_seed(0)
    b = io.BytesIO()
    torch.save(torch.nn.LSTM(3, 4, 2, bidirectional=bi).state_dict(), b)
    return b.getvalue()


def st_bytes(bi):
    from safetensors.torch import save

    torch.manual_seed(0)
    return save(torch.nn.LSTM(3, 4, 2, bidirectional=bi).state_dict(), metadata={"format": "pt"})


seeds = []
for p in sorted(FIX.glob("keras/*")):
    if p.suffix in (".h5", ".keras"):
        seeds.append((p.name, p.read_bytes()))
for p in sorted(FIX.glob("mindspore/*.ckpt")):
    seeds.append((p.name, p.read_bytes()))
for bi in (False, True):
    seeds.append((f"lstm{bi}.pt", torch_bytes(bi)))
    seeds.append((f"lstm{bi}.safetensors", st_bytes(bi)))


def suffix(name):
    return ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]


def mutate(data: bytes) -> bytes:
    d = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        n = len(d)
        if n == 0:
            break
        k = rng.choice(["truncate", "flip", "flip_head", "splice", "ff", "int", "dup"])
        if k == "truncate":
            del d[rng.randrange(n) :]
        elif k == "flip":
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(n)
                d[i] ^= 1 << rng.randrange(8)
        elif k == "flip_head":
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(min(n, 4096))
                d[i] ^= 1 << rng.randrange(8)
        elif k == "splice":
            i = rng.randrange(n + 1)
            j = min(n, i + rng.randint(0, 64))
            d[i:j] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        elif k == "ff":
            i = rng.randrange(n)
            d[i : i + rng.randint(1, 16)] = b"\xff" * rng.randint(1, 16)
        elif k == "int":
            i = rng.randrange(max(1, n - 8))
            d[i : i + 8] = rng.choice([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]).to_bytes(8, "little")
        else:
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 256))
            d[i:i] = d[i:j]
    return bytes(d)


def mutate_keras(data: bytes) -> bytes:
    """Structure-aware: mutate config.json text or the inner HDF5, rezip."""
    z = zipfile.ZipFile(io.BytesIO(data))
    members = {n: z.read(n) for n in z.namelist()}
    target = rng.choice(list(members))
    if target.endswith(".json") and rng.random() < 0.5:
        try:
            cfg = json.loads(members[target])

            def walk(v):
                if isinstance(v, dict) and v:
                    k = rng.choice(list(v))
                    if rng.random() < 0.3:
                        v[k] = rng.choice([None, 0, -1, 2**200, 1e999, "x", [], {}, [1, 2], True, 2**31])
                    else:
                        walk(v[k])
                elif isinstance(v, list) and v:
                    i = rng.randrange(len(v))
                    if rng.random() < 0.3:
                        v[i] = rng.choice([None, 0, 2**200, "x", {}, []])
                    else:
                        walk(v[i])

            walk(cfg)
            members[target] = json.dumps(cfg).encode()
        except Exception:
            members[target] = mutate(members[target])
    else:
        members[target] = mutate(members[target])
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as out:
        for n, v in members.items():
            out.writestr(n, v)
    return b.getvalue()


def check_one(name, p):
    """Outcome keys of loading ``p`` with io.load and the format's reader, plus later steps."""
    keys, traces = [], []
    loaders = [("io.load", lio.load)]
    try:
        loaders.append(("reader", get_format(READERS[suffix(name)]).load))
    except KeyError:
        pass
    for lname, fn in loaders:
        try:
            mf = fn(str(p))
            mf.lstm_layers()
            key = "loaded"
            if lname == "io.load":
                try:
                    from lstm_bridge.convert import chain_from_model_file, compare_chains

                    chain = chain_from_model_file(mf, validate=False)
                    compare_chains(chain, chain, batch=2, steps=3)
                    lio.save(mf, str(p.parent / "out.safetensors"))
                    keys.append("later ok")
                except (ValueError, NotImplementedError):
                    keys.append("later refused")
                except BaseException as e:
                    keys.append("later CRASH:" + type(e).__name__)
                    traces.append(traceback.format_exc()[-1500:])
        except FormatError as e:
            key = "FormatError" if str(e).startswith(f"{p}: ") else "FormatError-unnamed"
        except BaseException as e:
            key = type(e).__name__
            traces.append(traceback.format_exc()[-1500:])
        keys.append(key)
    return keys, traces


def worker(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(check_one(*msg))


if __name__ == "__main__":
    import multiprocessing as mp

    ctx = mp.get_context("fork")

    def start():
        a, b = ctx.Pipe()
        w = ctx.Process(target=worker, args=(b,), daemon=True)
        w.start()
        return w, a

    w, conn = start()
    outcomes = collections.Counter()
    per_fmt = collections.Counter()
    bugs = []
    t0 = time.time()
    n = 0
    path_dir = outdir / "work"
    path_dir.mkdir(exist_ok=True)
    while time.time() - t0 < seconds:
        name, data = rng.choice(seeds)
        mutated = mutate_keras(data) if name.endswith(".keras") and rng.random() < 0.6 else mutate(data)
        p = path_dir / f"f{n % 2}{suffix(name)}"
        p.write_bytes(mutated)
        n += 1
        conn.send((name, p))
        try:
            ready = conn.poll(60)
            keys, traces = conn.recv() if ready else (None, None)
        except EOFError:  # the worker died (a segfault in a C library): keep the file, start a new one
            w.join()
            keys, traces = [f"WORKER DIED (exit {w.exitcode})"], ["crash"]
            w, conn = start()
            ready = True
        if not ready:
            w.kill()
            w.join()
            w, conn = start()
            keys, traces = ["HANG(>60s)"], ["hang"]
        for key in keys:
            outcomes[key] += 1
            per_fmt[(suffix(name), key)] += 1
        if any(k not in ("loaded", "FormatError", "later ok", "later refused") for k in keys) and (
            len(bugs) < 50 or any(k.startswith(("HANG", "WORKER")) for k in keys)
        ):
            k = len(bugs)
            (outdir / f"bug{k}{suffix(name)}").write_bytes(mutated)
            bugs.append({"file": f"bug{k}{suffix(name)}", "seed": name, "outcomes": keys, "traces": traces})
    conn.send(None)
    report = {
        "files_tried": n,
        "seconds": round(time.time() - t0, 1),
        "outcomes": dict(outcomes),
        "per_format": {f"{a} {b}": c for (a, b), c in sorted(per_fmt.items())},
        "bugs": bugs,
    }
    (outdir / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "bugs"}, indent=1))
    print(len(bugs), "bugs")
