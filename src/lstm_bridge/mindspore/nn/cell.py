"""``mindspore.nn.Cell``, ``SequentialCell`` and ``CellList`` on ``torch.nn.Module``.

A Cell's ``construct`` is its forward. Parameter names follow MindSpore 2.10 (checked with
``tools/golden_ms_nn.py``): a :class:`Parameter` taken as an attribute gets the attribute name unless it was
given one; a Cell taken as an attribute of a Cell with ``auto_prefix=True`` renames every parameter below it to
``<attribute>.<path inside that cell>``; the last renaming wins (a Cell held twice keeps the names of the
holder attached last). ``parameters_dict()`` (and checkpoints) use these names; ``parameters_and_names()`` the
structural paths (which agree unless a top-level parameter was named explicitly or a Cell is held twice).

Cells start in inference mode (``training == False``) as MindSpore's do; ``set_train(True)`` switches the
Cell and all below it. ``construct`` of a network's own Cell receives :class:`Tensor` arguments (torch tensors
are wrapped), so MindSpore's Tensor methods apply; the built-in Cells compute on plain torch tensors.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from ..common import dtype as mstype
from ..common.tensor import PARAMETER_NAME_DEFAULT, Parameter, ParameterTuple, plain, wrap


def _cast_inputs(args: Tuple[Any, ...], dtype: torch.dtype) -> Tuple[Any, ...]:
    def cast(v: Any) -> Any:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.to(dtype)
        if isinstance(v, (tuple, list)):
            return type(v)(cast(x) for x in v)
        return v

    return tuple(cast(a) for a in args)


class Cell(torch.nn.Module):
    """``mindspore.nn.Cell(auto_prefix=True, flags=None)``: define ``construct``; call the Cell to run it."""

    #: built-in Cells take plain torch tensors in ``construct`` (MindSpore's Tensor methods differ from torch's)
    _plain_inputs = False

    def __init__(self, auto_prefix: bool = True, flags: Optional[Dict[str, Any]] = None):
        super().__init__()
        self._auto_prefix = auto_prefix
        self._cast_type: Optional[torch.dtype] = None
        self._flags = dict(flags or {})
        self.train(False)

    # --- MindSpore's naming ----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ParameterTuple) and "_parameters" in self.__dict__:
            for param in value:  # each member under its own name, as MindSpore registers them
                if "." in param.name:
                    raise KeyError(
                        f"For '{type(self).__name__}', a ParameterTuple member's name must not contain '.'; "
                        f"received {param.name!r}"
                    )
                self.register_parameter(param.name, param)
        if isinstance(value, Parameter) and value.name == PARAMETER_NAME_DEFAULT:
            value.name = name
        elif isinstance(value, Cell) and self.__dict__.get("_auto_prefix", True) and "_modules" in self.__dict__:
            value.update_parameters_name(name + ".")
        super().__setattr__(name, value)

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        """Rename every parameter below this Cell ``prefix + <its path here>`` (MindSpore's rule)."""
        for path, param in self.parameters_and_names(expand=recurse):
            if isinstance(param, Parameter):
                param.name = prefix + path

    def insert_child_to_cell(self, child_name: str, child_cell: torch.nn.Module) -> None:
        setattr(self, child_name, child_cell)

    def insert_param_to_cell(self, param_name: str, param: Any, check_name_contain_dot: bool = True) -> None:
        if check_name_contain_dot and "." in param_name:
            raise KeyError(
                f"For 'insert_param_to_cell', the parameter name must not contain '.'; received {param_name!r}"
            )
        setattr(self, param_name, param)

    # --- calling ----------------------------------------------------------------------------------
    def construct(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define construct()")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            raise NotImplementedError(
                f"torch.compile / torch.export cannot record {type(self).__name__}, a Cell of the MindSpore network "
                "API: its Tensor is a torch.Tensor subclass that they do not trace (dynamo refuses its as_subclass "
                "conversions). Compile or export the recurrent layers themselves (lstm_bridge.mindspore.LSTM / GRU "
                "/ RNN take plain torch tensors), record the network with torch.jit.trace, or run it eagerly"
            )
        if self._cast_type is not None:
            args = _cast_inputs(args, self._cast_type)
            kwargs = dict(zip(kwargs, _cast_inputs(tuple(kwargs.values()), self._cast_type)))
        convert = plain if self._plain_inputs else wrap
        args = tuple(convert(a) for a in args)
        kwargs = {k: convert(v) for k, v in kwargs.items()}
        return wrap(self.construct(*args, **kwargs))

    def to_float(self, dst_type: Any) -> Cell:
        """Cast the floating inputs of this Cell and every Cell below it to ``dst_type`` (MindSpore's mixed
        precision; the built-in Cells then compute in that dtype)."""
        dtype = mstype.to_torch_dtype(dst_type)
        if dtype not in (torch.float16, torch.float32, torch.bfloat16):
            raise ValueError(f"For 'to_float', dst_type must be float16, float32 or bfloat16; received {dst_type}")
        for cell in self.modules():
            if isinstance(cell, Cell):
                cell._cast_type = dtype
        return self

    # --- MindSpore's accessors ----------------------------------------------------------------------
    def set_train(self, mode: bool = True) -> Cell:
        self.train(mode)
        return self

    def set_grad(self, requires_grad: bool = True) -> Cell:
        return self

    def parameters_and_names(self, name_prefix: str = "", expand: bool = True) -> Iterator[Tuple[str, Any]]:
        """``(structural path, parameter)``, each parameter once, in MindSpore's order (own, then children)."""
        return self.named_parameters(prefix=name_prefix, recurse=expand)

    def get_parameters(self, expand: bool = True) -> Iterator[Any]:
        for _, param in self.parameters_and_names(expand=expand):
            yield param

    def trainable_params(self, recurse: bool = True) -> List[Any]:
        return [p for p in self.get_parameters(recurse) if p.requires_grad]

    def untrainable_params(self, recurse: bool = True) -> List[Any]:
        return [p for p in self.get_parameters(recurse) if not p.requires_grad]

    def parameters_dict(self, recurse: bool = True) -> OrderedDict[str, Any]:
        """``param.name -> Parameter`` (the names checkpoints use)."""
        return OrderedDict((_name(path, p), p) for path, p in self.parameters_and_names(expand=recurse))

    def cells_and_names(self, cells: Any = None, name_prefix: str = "") -> Iterator[Tuple[str, torch.nn.Module]]:
        yield from self.named_modules(prefix=name_prefix)

    def cells(self) -> Iterator[torch.nn.Module]:
        return self.children()

    def name_cells(self) -> OrderedDict[str, torch.nn.Module]:
        return OrderedDict(self.named_children())

    def init_parameters_data(self, auto_parallel_mode: bool = False) -> Dict[str, Any]:
        """MindSpore's deferred initialisation: parameters here hold their values from the start."""
        return {}

    def get_flags(self) -> Dict[str, Any]:
        return dict(self._flags)

    def add_flags(self, **flags: Any) -> Cell:
        self._flags.update(flags)
        return self

    def _children(self) -> List[torch.nn.Module]:
        return [m for m in self._modules.values() if m is not None]

    @property
    def cls_name(self) -> str:
        return type(self).__name__


def _name(path: str, param: Any) -> str:
    return param.name if isinstance(param, Parameter) else path


class SequentialCell(Cell):
    """``SequentialCell(*args)``: Cells (or one list / OrderedDict of them) run in order; names ``"0"``, ``"1"``
    ... (or the dict's keys)."""

    def __init__(self, *args: Any):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, cell in args[0].items():
                self.insert_child_to_cell(name, cell)
        elif len(args) == 1 and isinstance(args[0], (list, tuple)):
            for i, cell in enumerate(args[0]):
                self.insert_child_to_cell(str(i), cell)
        else:
            for i, cell in enumerate(args):
                self.insert_child_to_cell(str(i), cell)
        for cell in self._modules.values():
            if not isinstance(cell, torch.nn.Module):
                raise TypeError(f"For 'SequentialCell', each element must be a Cell; received {type(cell).__name__}")

    def __getitem__(self, index: Any) -> Any:
        cells = self._children()
        if isinstance(index, slice):
            return SequentialCell(cells[index])
        return cells[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[torch.nn.Module]:
        return iter(self._children())

    def append(self, cell: torch.nn.Module) -> SequentialCell:
        self.insert_child_to_cell(str(len(self)), cell)
        return self

    def construct(self, input_data: Any) -> Any:
        for cell in self._children():
            input_data = cell(input_data)
        return input_data


class CellList(Cell):
    """``CellList(cells)``: a list of Cells named ``"0"``, ``"1"`` ... (not callable itself)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(auto_prefix=kwargs.get("auto_prefix", True))
        if args:
            self.extend(args[0])

    def __getitem__(self, index: Any) -> Any:
        cells = self._children()
        if isinstance(index, slice):
            return CellList(cells[index])
        return cells[index]

    def __setitem__(self, index: int, cell: torch.nn.Module) -> None:
        self.insert_child_to_cell(str(index % len(self)), cell)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[torch.nn.Module]:
        return iter(self._children())

    def append(self, cell: torch.nn.Module) -> CellList:
        self.insert_child_to_cell(str(len(self)), cell)
        return self

    def extend(self, cells: Any) -> CellList:
        for cell in cells:
            self.append(cell)
        return self

    def insert(self, index: int, cell: torch.nn.Module) -> None:
        cells = self._children()
        cells.insert(index, cell)
        self._modules.clear()
        for i, c in enumerate(cells):
            self.insert_child_to_cell(str(i), c)

    def construct(self, *inputs: Any) -> Any:
        raise NotImplementedError("CellList is a list of Cells: call its elements, not the list")
