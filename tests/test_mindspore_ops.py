"""lstm_bridge.mindspore.ops and Tensor methods against MindSpore 2.10 (issue 14 item 2): every expression of
tests/fixtures/mindspore_api/cases.py OP_CASES, recorded by tools/golden_ms_nn.py, gives the same structure,
dtypes and values here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ms_api import flatten, golden, leaves_of, load_cases, namespace

CASES = load_cases()
GOLDEN = golden()


@pytest.mark.parametrize("case_id,expr", CASES.OP_CASES, ids=[c[0] for c in CASES.OP_CASES])
def test_op_matches_mindspore(case_id, expr):
    meta = GOLDEN["ops"][case_id]
    ns = namespace(CASES.inputs())
    if meta.get("no_cpu_kernel"):  # MindSpore 2.10 has no CPU kernel for it; lstm-bridge computes it with torch
        assert isinstance(eval(expr, ns), torch.Tensor)
        return
    if "error" in meta:
        with pytest.raises((ValueError, TypeError, RuntimeError, IndexError)):
            eval(expr, ns)
        return
    leaves: list = []
    structure = flatten(eval(expr, ns), leaves)
    assert structure == meta["structure"], f"{expr}: structure {structure}, MindSpore {meta['structure']}"
    assert [str(a.dtype) for a in leaves] == meta["dtypes"], f"{expr}: dtypes"
    for ours, theirs in zip(leaves, leaves_of(GOLDEN, f"ops/{case_id}")):
        assert ours.shape == theirs.shape, f"{expr}: shape {ours.shape}, MindSpore {theirs.shape}"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=expr)


def test_results_are_mindspore_tensors_with_its_methods():
    from lstm_bridge.mindspore import Tensor, ops

    out = ops.concat((Tensor(np.ones((2, 3), np.float32)), torch.zeros(1, 3)))
    assert isinstance(out, Tensor) and isinstance(out, torch.Tensor)
    assert out.asnumpy().shape == (3, 3)
    assert (out + 1).asnumpy().sum() == 15  # torch operators keep the Tensor type


def test_an_op_outside_the_subset_raises_naming_it():
    from lstm_bridge.mindspore import ops
    from lstm_bridge.mindspore.ops import UnsupportedError, operations

    with pytest.raises(UnsupportedError, match=r"ops\.DynamicRNN is outside the MindSpore subset"):
        ops.DynamicRNN  # noqa: B018
    with pytest.raises(AttributeError, match=r"operations\.CTCLoss"):
        operations.CTCLoss  # noqa: B018
    assert not hasattr(ops, "DynamicGRUV2")
    import lstm_bridge.mindspore.nn as nn

    with pytest.raises(UnsupportedError, match=r"nn\.Conv3d"):
        nn.Conv3d  # noqa: B018


def test_split_refuses_an_uneven_output_num():
    from lstm_bridge.mindspore import Tensor
    from lstm_bridge.mindspore.ops import operations as P

    with pytest.raises(ValueError, match="divisible by output_num = 4"):
        P.Split(1, 4)(Tensor(np.ones((2, 6), np.float32)))


def test_graph_compilation_decorators_leave_functions_as_they_are():
    """``@constexpr`` / ``@ops.constexpr(check=False)``, ``@prim_attr_register`` and ``@ms.jit`` compile for MindSpore's
    graph mode; execution here is eager, so the decorated function computes the same value."""
    import lstm_bridge.mindspore as ms
    from lstm_bridge.mindspore import ops
    from lstm_bridge.mindspore.ops.primitive import constexpr, prim_attr_register

    @constexpr
    def steps(shape):
        return shape[0] - 1

    @ops.constexpr(check=False)
    def double(n):
        return 2 * n

    @ms.jit
    def add_one(x):
        return x + 1

    class Scale(ops.Primitive):
        @prim_attr_register
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor

        def __call__(self, x):
            return x * self.factor

    assert steps((5, 3)) == 4 and double(3) == 6
    assert float(add_one(torch.ones(1)).sum()) == 2.0
    assert float(Scale(3.0)(torch.ones(1)).sum()) == 3.0
