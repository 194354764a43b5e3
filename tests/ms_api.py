"""Shared by tests/test_mindspore_nn.py, test_mindspore_ops.py, test_mindspore_checkpoint.py and
test_mindspore_nets.py: the recorded MindSpore 2.10 results (tests/golden/mindspore_api, written by
tools/golden_ms_nn.py and tools/golden_ms_nets.py), the case fixtures, and the namespace the case expressions
are evaluated in on lstm-bridge."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import sys
import types
from typing import Any, Dict, List

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "mindspore_api"
FIXTURES = ROOT / "tests" / "fixtures" / "mindspore_api"


def load_cases() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("ms_api_cases", FIXTURES / "cases.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden(name: str = "nn_ops") -> Dict[str, Any]:
    with open(GOLDEN / f"{name}.json", encoding="utf-8") as fh:
        meta: Dict[str, Any] = json.load(fh)
    with np.load(GOLDEN / f"{name}.npz") as data:
        meta["arrays"] = {k: data[k] for k in data.files}
    return meta


def leaves_of(meta: Dict[str, Any], prefix: str) -> List[np.ndarray]:
    arrays = meta["arrays"]
    out = []
    i = 0
    while f"{prefix}/{i}" in arrays:
        out.append(arrays[f"{prefix}/{i}"])
        i += 1
    return out


def flatten(obj: Any, leaves: List[np.ndarray]) -> str:
    """The structure string tools/golden_ms_nn.py records (T tensor, A ndarray, i int, ...)."""
    if hasattr(obj, "asnumpy"):
        leaves.append(np.asarray(obj.asnumpy()))
        return "T"
    if isinstance(obj, np.ndarray):
        leaves.append(obj)
        return "A"
    if isinstance(obj, bool):
        leaves.append(np.asarray(obj))
        return "b"
    if isinstance(obj, int):
        leaves.append(np.asarray(obj, dtype=np.int64))
        return "i"
    if isinstance(obj, float):
        leaves.append(np.asarray(obj, dtype=np.float64))
        return "f"
    if isinstance(obj, (tuple, list)):
        return "(" + ",".join(flatten(v, leaves) for v in obj) + ")"
    if obj is None:
        return "N"
    raise TypeError(f"cannot compare a {type(obj).__name__}")


def namespace(arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """``ms``, ``nn``, ``ops``, ``P``, ``F``, ``mnp``, ``Tensor``, ``Parameter``, ``mstype``, ``np`` from lstm-bridge
    and the inputs as Tensors: what the case expressions see."""
    import lstm_bridge.mindspore as ms
    import lstm_bridge.mindspore.common.dtype as mstype
    import lstm_bridge.mindspore.nn as nn
    import lstm_bridge.mindspore.numpy as mnp
    from lstm_bridge.mindspore import Parameter, Tensor, ops
    from lstm_bridge.mindspore.ops import functional as F, operations as P

    ns: Dict[str, Any] = dict(
        ms=ms, nn=nn, ops=ops, P=P, F=F, mnp=mnp, Tensor=Tensor, Parameter=Parameter, mstype=mstype, np=np
    )
    ns.update({k: Tensor(v) for k, v in arrays.items()})
    return ns


_IMPORT = re.compile(r"^(\s*)(import|from)(\s+)mindspore\b", re.M)


def rewrite_imports(source: str) -> str:
    """MindSpore network source with only its imports changed: ``import mindspore...`` / ``from mindspore...``
    -> ``lstm_bridge.mindspore...``."""
    return _IMPORT.sub(r"\1\2\3lstm_bridge.mindspore", source)


def import_rewritten(path: pathlib.Path, name: str) -> types.ModuleType:
    """Execute ``path``'s source, imports rewritten, as module ``name``."""
    code = compile(rewrite_imports(path.read_text(encoding="utf-8")), str(path), "exec")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module
