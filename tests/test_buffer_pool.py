"""The kernel's buffer pool (buffer_pool.cpp, native/pool.py): freed large blocks come back for the next
tensor of about their size, only once nothing holds them; the limit, its environment variable, release,
resizing, and that pooling changes no result."""

from __future__ import annotations

import threading

import pytest
import torch

from lstm_bridge import keras
from lstm_bridge.engine import native
from lstm_bridge.engine.native import pool

from helpers import require_native_kernel

POOL_MIN_BYTES = 256 << 10  # buffer_pool.h kPoolMinBytes


@pytest.fixture(scope="module", autouse=True)
def _kernel():
    require_native_kernel()


@pytest.fixture(autouse=True)
def _clean_pool():
    """Each test starts with an empty pool at the default limit (whatever LSTM_BRIDGE_POOL_MIB says), and leaves
    it empty at the environment's limit."""
    ext = native.module()
    native.release_workspace()
    ext.pool_set_limit(pool.DEFAULT_MIB << 20)
    yield
    ext.pool_set_limit(pool.limit_bytes_from_env())
    native.release_workspace()


def _stats() -> dict:
    s = pool.stats()
    assert s is not None
    return s


def test_a_freed_block_comes_back_only_when_nothing_holds_it():
    """A large product's block is handed out again once the tensor dies; never while the tensor, a view of it
    or its storage is alive (their values stay), and the values are always the product's."""
    ext = native.module()
    M, K, N = 2000, 3, 512  # 4 MB of float32
    gen = torch.Generator().manual_seed(6)
    a, w = torch.randn(M, K, generator=gen), torch.randn(N, K, generator=gen)
    first = ext.matmul_nt(a, w)
    ptr = first.data_ptr()
    del first
    assert _stats()["cached_blocks"] == 1
    again = ext.matmul_nt(a * 2, w)
    assert again.data_ptr() == ptr  # the freed block again
    assert _stats()["cached_blocks"] == 0
    torch.testing.assert_close(again, (a * 2) @ w.t())
    for hold in (lambda t: t, lambda t: t[7:9], lambda t: t.untyped_storage()):
        held, ptr = hold(again), again.data_ptr()
        copy = again.clone()
        del again
        again = ext.matmul_nt(a, w)
        assert again.data_ptr() != ptr  # a result, view or storage still alive keeps its block
        kept = held if torch.is_tensor(held) else torch.empty(0).set_(held).view(M, N)
        assert torch.equal(kept, copy if kept.numel() == copy.numel() else copy[7:9])  # untouched
        del held, kept
        torch.testing.assert_close(again, a @ w.t())


def test_best_fit_takes_a_block_at_most_a_quarter_larger():
    ext = native.module()
    block = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))  # 4 MB
    ptr = block.data_ptr()
    del block
    too_small_a_request = ext.matmul_nt(torch.randn(500, 2), torch.randn(1000, 2))  # 2 MB: would waste half
    assert too_small_a_request.data_ptr() != ptr
    close = ext.matmul_nt(torch.randn(850, 2), torch.randn(1000, 2))  # 3.4 MB: within a quarter
    assert close.data_ptr() == ptr


def test_small_tensors_bypass_the_pool():
    ext = native.module()
    before = _stats()
    small = ext.matmul_nt(torch.randn(10, 3), torch.randn(20, 3))  # 800 bytes
    assert small.numel() * 4 < POOL_MIN_BYTES
    del small
    after = _stats()
    assert (after["fresh"], after["reused"], after["cached_blocks"]) == (
        before["fresh"],
        before["reused"],
        before["cached_blocks"],
    )


def test_release_workspace_and_a_zero_limit_keep_nothing():
    ext = native.module()
    for _ in range(2):  # each result dies at once: the second call takes the first one's block
        ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    assert _stats()["cached_bytes"] >= 4_000_000
    native.release_workspace()
    assert _stats()["cached_bytes"] == 0 and _stats()["cached_blocks"] == 0
    ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    assert _stats()["cached_blocks"] == 1
    ext.pool_set_limit(0)  # lowering the limit lets go of what is over it
    assert _stats()["cached_blocks"] == 0 and _stats()["limit_bytes"] == 0
    ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    assert _stats()["cached_blocks"] == 0  # pooling off: every block goes back at once


def test_the_limit_bounds_what_is_kept():
    ext = native.module()
    ext.pool_set_limit(6 << 20)
    a = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    b = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    del a, b  # 2 x 4 MB freed: only one fits under 6 MiB
    s = _stats()
    assert s["cached_blocks"] == 1 and s["cached_bytes"] <= 6 << 20


def test_environment_limit(monkeypatch):
    monkeypatch.delenv(pool.ENV, raising=False)
    assert pool.limit_bytes_from_env() == pool.DEFAULT_MIB << 20
    monkeypatch.setenv(pool.ENV, "0")
    assert pool.limit_bytes_from_env() == 0
    monkeypatch.setenv(pool.ENV, " 64 ")
    assert pool.limit_bytes_from_env() == 64 << 20
    for bad in ("-1", "1.5", "lots"):
        monkeypatch.setenv(pool.ENV, bad)
        with pytest.raises(ValueError, match=r"LSTM_BRIDGE_POOL_MIB must be a whole number of MiB >= 0.*" + bad):
            pool.limit_bytes_from_env()


def test_a_pooled_tensor_resizes_like_any_other():
    ext = native.module()
    out = ext.matmul_nt(torch.ones(1000, 2), torch.ones(1000, 2))
    out.resize_(3000, 1000)  # a larger storage: a new block from the pool
    assert out.shape == (3000, 1000)
    assert torch.equal(out[:1000], torch.full((1000, 1000), 2.0))
    out.fill_(1.5)
    assert out.sum().item() == 1.5 * 3000 * 1000


def test_a_block_freed_on_another_thread_comes_back():
    ext = native.module()
    holder = [ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))]
    ptr = holder[0].data_ptr()
    t = threading.Thread(target=holder.clear)
    t.start()
    t.join()
    assert _stats()["cached_blocks"] == 1
    assert ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2)).data_ptr() == ptr


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16"])
def test_training_steps_reuse_blocks_and_pooling_changes_no_result(autocast):
    """A second identical training step takes its large tensors from the pool, and the results (outputs and
    every gradient) are the same bits as with pooling off."""
    ext = native.module()
    torch.manual_seed(0)
    layer = keras.LSTM(64, return_sequences=True, recurrent_activation="hard_sigmoid")  # the kernel's path
    x = torch.randn(8, 300, 32)

    def step():
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(x)
        y.float().square().mean().backward()
        return [y.detach().clone()] + [p.grad.clone() for p in layer.parameters()]

    pooled = step()
    before = _stats()["reused"]
    again = step()
    assert _stats()["reused"] > before
    ext.pool_set_limit(0)
    native.release_workspace()
    plain = step()
    for got, ref, ref2 in zip(pooled, plain, again):
        assert torch.equal(got, ref) and torch.equal(got, ref2)


def _wait(pid: int, timeout_s: float) -> int:
    """The child's wait status; a child still running after ``timeout_s`` (deadlocked) is killed: status -1."""
    import os
    import signal
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_uses_the_pool():
    """A child forked while the pool holds blocks, and while another thread churns it, allocates and frees
    through it. (The pool holds its lock across fork; without that, about 1 fork in 300 left a child waiting
    forever on the lock taken at fork time: too rare for four forks to catch, hence the per-child timeout.)"""
    import os

    ext = native.module()
    ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))  # a cached block to inherit
    stop = threading.Event()
    # Inputs made up front: the churning thread takes no other lock than the pool's (torch's random generator
    # has its own, which a child forked while the thread held it would inherit taken - not ours to test).
    churn_a, churn_w = torch.randn(300, 2), torch.randn(300, 2)
    a, w = torch.randn(1000, 2), torch.randn(1000, 2)

    def churn() -> None:
        while not stop.is_set():
            ext.matmul_nt(churn_a, churn_w)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        pids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:  # the child: one thread (libgomp's pool does not survive fork), the pool as inherited
                code = 1
                try:
                    torch.set_num_threads(1)
                    for _ in range(3):
                        ok = torch.allclose(ext.matmul_nt(a, w), a @ w.t(), atol=1e-5)
                    code = 0 if ok and pool.stats()["reused"] > 0 else 2
                finally:
                    os._exit(code)
            pids.append(pid)
        codes = [_wait(pid, timeout_s=60.0) for pid in pids]
    finally:
        stop.set()
        worker.join()
    assert codes == [0, 0, 0, 0]


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16"])
def test_inference_projections_come_back_and_never_alias_results(autocast):
    """An inference call's projection (1 MiB here) goes back to the pool when the call ends and the next call
    takes it again; a result is never that block, so earlier results stay intact; the values equal pooling
    off; a training call's projection (its gates) stays with autograd until backward."""
    ext = native.module()
    torch.manual_seed(1)
    layer = keras.LSTM(64, return_sequences=True, recurrent_activation="hard_sigmoid")
    x = torch.randn(16, 64, 32)

    def infer(inp: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return layer(inp)

    infer(x)
    assert _stats()["cached_bytes"] >= 64 * 16 * 256 * 4  # the projection's block, back in the pool
    before = _stats()["reused"]
    first = infer(x)
    copy = first.clone()
    second = infer(x * 2)
    assert _stats()["reused"] >= before + 2
    assert torch.equal(first, copy) and not torch.equal(first, second)  # the earlier result untouched
    ext.pool_set_limit(0)
    native.release_workspace()
    assert torch.equal(infer(x), first)
    ext.pool_set_limit(pool.DEFAULT_MIB << 20)

    def grads(between: bool) -> list:
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = layer(x)
        if between:
            infer(x * 3)  # would overwrite the training call's gates were their block handed out while alive
        y.float().sum().backward()
        return [p.grad.clone() for p in layer.parameters()]

    for got, ref in zip(grads(True), grads(False)):
        assert torch.equal(got, ref)


def test_of_equal_blocks_the_last_freed_comes_back_first():
    """(the one likeliest still in cache)"""
    ext = native.module()
    a = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    b = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    first, last = a.data_ptr(), b.data_ptr()
    del a
    del b
    assert ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2)).data_ptr() == last
    assert ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2)).data_ptr() == last  # freed again at once
    held = ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2))
    assert held.data_ptr() == last
    assert ext.matmul_nt(torch.randn(1000, 2), torch.randn(1000, 2)).data_ptr() == first


def test_a_pooled_tensor_shares_saves_and_views_like_any_other(tmp_path):
    """``share_memory_`` moves it into shared memory (its block back to the pool), a NumPy view keeps its block
    alive, ``torch.save`` / ``torch.load`` round-trip it."""
    ext = native.module()
    a, w = torch.randn(1000, 2), torch.randn(1000, 2)
    shared = ext.matmul_nt(a, w)
    ptr = shared.data_ptr()
    shared.share_memory_()
    assert shared.is_shared() and shared.data_ptr() != ptr
    assert _stats()["cached_blocks"] == 1  # the block it left
    torch.testing.assert_close(shared, a @ w.t())
    viewed = ext.matmul_nt(a, w)
    array = viewed.numpy()
    ptr = viewed.data_ptr()
    del viewed
    assert ext.matmul_nt(a, w).data_ptr() != ptr  # the array still holds the block
    torch.testing.assert_close(torch.from_numpy(array), a @ w.t())
    torch.save(shared, tmp_path / "t.pt")
    assert torch.equal(torch.load(tmp_path / "t.pt"), shared)
