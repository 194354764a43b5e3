"""MindSpore's checkpoint verbs on PyTorch: ``load_checkpoint``, ``load_param_into_net``, ``save_checkpoint``.

The ``.ckpt`` bytes are read and written by :mod:`lstm_bridge.formats.mindspore_ckpt` (bounded, streaming,
no MindSpore needed; the writer reproduces MindSpore 2.10's bytes). The rules are MindSpore 2.10's
(``mindspore/train/serialization.py``):

* ``load_checkpoint(path, net=None, strict_load=False, filter_prefix=None, specify_prefix=None,
  choice_func=None, crc_check=False)`` -> ``{name: Parameter}`` in file order (``requires_grad=True``; string
  entries of ``append_dict`` come back as ``str``); with ``net``, also ``load_param_into_net(net, ...)``.
* ``load_param_into_net(net, parameter_dict, strict_load=False)`` -> ``(param_not_load, ckpt_not_load)``: each
  parameter of ``net`` is matched by its MindSpore name (``net.parameters_dict()``); a shape mismatch raises
  ``RuntimeError``; a dtype mismatch converts within floats or within ints unless ``strict_load``, else raises;
  with ``strict_load=False`` names still missing are retried under one common prefix of the checkpoint's
  names (MindSpore's "remove parameter prefix name" step: a checkpoint of ``WithLossCell`` loads into the
  bare network).
* ``save_checkpoint(save_obj, ckpt_file_name, append_dict=None, choice_func=None, crc_check=False)``:
  ``save_obj`` a Cell (its parameters by MindSpore name, in ``parameters_and_names`` order), a dict
  ``{name: tensor}`` or a list of ``{"name": ..., "data": ...}``; ``.ckpt`` is appended to a name without it.
  The file is written atomically.
"""

from __future__ import annotations

import os
import zlib
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..formats import mindspore_ckpt as _ckpt
from ..formats.atomic import atomic_output
from .common.tensor import Parameter, plain

_FLOATS = (torch.float16, torch.float32, torch.float64, torch.bfloat16)
_INTS = (torch.int8, torch.int16, torch.int32, torch.int64)


def _prefixes(value: Any, what: str) -> Tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(p, str) and p for p in items):
        raise TypeError(f"For 'load_checkpoint', {what} must be a non-empty str or a list of them; received {value!r}")
    return tuple(items)


def _as_tensor(values: np.ndarray, ttype: str) -> torch.Tensor:
    if ttype == "BFloat16":
        return torch.from_numpy(np.array(values, order="C").view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.array(values, order="C"))  # (np.ascontiguousarray makes 0-d arrays 1-d)


def load_checkpoint(
    ckpt_file_name: Union[str, os.PathLike[str]],
    net: Any = None,
    strict_load: bool = False,
    filter_prefix: Any = None,
    dec_key: Any = None,
    dec_mode: str = "AES-GCM",
    specify_prefix: Any = None,
    choice_func: Optional[Callable[[str], bool]] = None,
    crc_check: bool = False,
    **kwargs: Any,
) -> OrderedDict[str, Any]:
    """The checkpoint's entries as ``{name: Parameter}`` (see the module docstring)."""
    if dec_key is not None:
        raise ValueError("For 'load_checkpoint', encrypted checkpoints are not supported: decrypt with MindSpore first")
    if filter_prefix is not None and specify_prefix is not None:
        raise ValueError("For 'load_checkpoint', 'filter_prefix' and 'specify_prefix' can not be set at the same time.")
    skip = _prefixes(filter_prefix, "filter_prefix")
    keep = _prefixes(specify_prefix, "specify_prefix")
    tensors, facts = _ckpt.read_tensors(ckpt_file_name, verify_crc=True)
    types: Dict[str, str] = facts["types"]
    out: OrderedDict[str, Any] = OrderedDict()
    for name, values in tensors.items():
        if skip and name.startswith(skip):
            continue
        if keep and not name.startswith(keep):
            continue
        if choice_func is not None and not choice_func(name):
            continue
        if types.get(name) == "str":
            out[name] = str(values)
            continue
        out[name] = Parameter(_as_tensor(values, types.get(name, "")), name=name, requires_grad=True)
    if net is not None:
        load_param_into_net(net, out, strict_load)
    return out


def _net_parameters(net: Any) -> List[Tuple[str, torch.nn.Parameter]]:
    """``(MindSpore name, parameter)`` of ``net``, each once, in ``parameters_and_names`` order."""
    if hasattr(net, "parameters_dict"):
        return list(net.parameters_dict().items())
    if isinstance(net, torch.nn.Module):
        return [(n, p) for n, p in net.named_parameters()]
    raise TypeError(f"For 'load_param_into_net', 'net' must be a Cell; received {type(net).__name__}")


def _update(name: str, param: torch.nn.Parameter, new: Any, strict_load: bool) -> None:
    t = plain(new) if isinstance(new, torch.Tensor) else torch.as_tensor(np.asarray(new))
    if tuple(t.shape) != tuple(param.shape):
        raise RuntimeError(
            f"For 'load_param_into_net', {name} in the argument 'net' should have the same shape as {name} in the "
            f"argument 'parameter_dict'. But got its shape {tuple(param.shape)} in the argument 'net' and shape "
            f"{tuple(t.shape)} in the argument 'parameter_dict'."
        )
    if t.dtype != param.dtype:
        both = {t.dtype, param.dtype}
        if strict_load or not (both <= set(_FLOATS) or both <= set(_INTS)):
            raise RuntimeError(
                f"For 'load_param_into_net', {name} in the argument 'net' should have the same type as {name} in "
                f"the argument 'parameter_dict'. but got its type {param.dtype} in the argument 'net' and type "
                f"{t.dtype} in the argument 'parameter_dict'."
            )
    with torch.no_grad():
        param.copy_(t.to(param.dtype))


def load_param_into_net(
    net: Any, parameter_dict: Dict[str, Any], strict_load: bool = False, remove_redundancy: bool = False
) -> Tuple[List[str], List[str]]:
    """Copy ``parameter_dict``'s values into ``net``'s parameters by MindSpore name; returns
    ``(param_not_load, ckpt_not_load)``: the net's names not found, the dict's names not used."""
    if not isinstance(parameter_dict, dict):
        raise TypeError(
            f"For 'load_param_into_net', the argument 'parameter_dict' should be a dict, but got "
            f"{type(parameter_dict).__name__}."
        )
    if not isinstance(strict_load, bool):
        raise TypeError(f"For 'load_param_into_net', strict_load must be a bool; received {strict_load!r}")
    params = _net_parameters(net)
    param_not_load: List[str] = []
    ckpt_not_load = list(parameter_dict)
    for name, param in params:
        if name in parameter_dict:
            value = parameter_dict[name]
            if isinstance(value, str):
                continue
            _update(name, param, value, strict_load)
            ckpt_not_load.remove(name)
        else:
            param_not_load.append(name)
    if param_not_load and not strict_load:
        _load_with_prefix(params, parameter_dict, param_not_load, strict_load)
    return param_not_load, ckpt_not_load


def _load_with_prefix(
    params: Sequence[Tuple[str, torch.nn.Parameter]],
    parameter_dict: Dict[str, Any],
    param_not_load: List[str],
    strict_load: bool,
) -> None:
    """MindSpore's ``_load_dismatch_prefix_params``: find a prefix such that ``prefix + name`` is in the dict
    for a missing name, load every missing parameter found under it, and repeat while that helps. (As in
    MindSpore, the entries loaded this way stay in ``ckpt_not_load``.)"""
    prefix = ""
    longest = param_not_load[0]
    while prefix != longest and param_not_load:
        prefix = longest
        for missing in param_not_load:
            for dict_name in parameter_dict:
                if dict_name.endswith(missing):
                    prefix = dict_name[: -len(missing)]
                    break
            if prefix != longest:
                break
        if prefix != longest:
            for name, param in params:
                candidate = prefix + name
                if name in param_not_load and candidate in parameter_dict:
                    _update(name, param, parameter_dict[candidate], strict_load)
                    param_not_load.remove(name)


def _entries(save_obj: Any) -> OrderedDict[str, Any]:
    if isinstance(save_obj, torch.nn.Module):
        return OrderedDict(_net_parameters(save_obj))
    if isinstance(save_obj, dict):
        return OrderedDict(save_obj.items())
    if isinstance(save_obj, list):
        out: OrderedDict[str, Any] = OrderedDict()
        for item in save_obj:
            if not isinstance(item, dict) or set(item) != {"name", "data"}:
                raise TypeError(
                    "For 'save_checkpoint', a list save_obj must hold dicts {'name': str, 'data': Tensor}; "
                    f"received {item!r}"
                )
            out[item["name"]] = item["data"]
        return out
    raise TypeError(
        "For 'save_checkpoint', the parameter 'save_obj' must be Cell, list or dict; received "
        f"{type(save_obj).__name__}"
    )


def _as_array(name: str, value: Any, types: Dict[str, str]) -> Any:
    if isinstance(value, str):
        return np.array(value)
    if isinstance(value, bool):
        return np.array(value)
    if isinstance(value, int):
        return np.array(value, dtype=np.int64)
    if isinstance(value, float):
        return np.array(value, dtype=np.float32)
    if isinstance(value, torch.Tensor):
        t = plain(value).detach().cpu()
        if t.dtype == torch.bfloat16:
            types[name] = "BFloat16"
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()
    return np.asarray(value)


def save_checkpoint(
    save_obj: Any,
    ckpt_file_name: Union[str, os.PathLike[str]],
    integrated_save: bool = True,
    async_save: bool = False,
    append_dict: Optional[Dict[str, Any]] = None,
    enc_key: Any = None,
    enc_mode: str = "AES-GCM",
    choice_func: Optional[Callable[[str], bool]] = None,
    crc_check: bool = False,
    format: str = "ckpt",  # noqa: A002 (MindSpore's name)
    **kwargs: Any,
) -> None:
    """Write ``save_obj`` as a MindSpore 2.x ``.ckpt`` file (see the module docstring)."""
    if enc_key is not None:
        raise ValueError("For 'save_checkpoint', encryption is not supported by lstm-bridge")
    if format != "ckpt":
        raise ValueError(f"For 'save_checkpoint', lstm-bridge writes format='ckpt' only; received {format!r}")
    path = os.fspath(ckpt_file_name)
    if not path.endswith(".ckpt"):
        path += ".ckpt"
    entries = _entries(save_obj)
    if choice_func is not None:
        entries = OrderedDict((k, v) for k, v in entries.items() if choice_func(k))
    for key, value in (append_dict or {}).items():
        entries[key] = value
    types: Dict[str, str] = {}
    arrays: OrderedDict[str, Any] = OrderedDict((k, _as_array(k, v, types)) for k, v in entries.items())
    data = _ckpt.encode_tensors(arrays, types=types)
    if crc_check:
        data += _ckpt.CRC_MAGIC + (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(10, "big")
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


__all__ = ["load_checkpoint", "load_param_into_net", "save_checkpoint"]
