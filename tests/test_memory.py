"""Memory: a training loop reaches a steady state (CPU and GPU), and the GPU buffer pool can
give memory back (`fg.gpu.empty_cache`, `memory_allocated`/`memory_reserved`, `pool_limit`)."""

import gc
import os

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn

needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _training_step(device):
    model = nn.Sequential(
        nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)
    ).to(device)
    opt = fg.optim.Adam(model.parameters(), lr=1e-3)
    x = fg.randn(32, 64, device=device)
    y = fg.randint(0, 10, (32,))

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


@needs_proc
def test_training_memory_reaches_a_steady_state(device):
    """After warm-up, 1,500 more steps of a BN/dropout network with Adam grow the process
    by less than 16 MiB (a leak of one step's graph, ~100 KB, would add ~150 MiB), and on
    the GPU the pool holds exactly as much after 1,500 steps as after 500."""
    step = _training_step(device)
    for _ in range(200):
        step()
    if device == "gpu":
        fg.gpu.synchronize()
    gc.collect()
    rss0 = _rss_bytes()
    reserved = []
    for i in range(1500):
        loss = step()
        if i in (499, 1499):
            reserved.append(fg.gpu.memory_reserved() if device == "gpu" else 0)
    assert np.isfinite(loss.item())
    gc.collect()
    grown = _rss_bytes() - rss0
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 1,500 steps"
    assert reserved[1] == reserved[0], f"the GPU pool grew from {reserved[0]} to {reserved[1]} bytes"


@pytest.fixture
def gpu():
    """Skips without a GPU adapter (a failure under FERROGRAD_REQUIRE_GPU=1); restores the
    pool limit a test changes."""
    if not fg.gpu_available():
        if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
            pytest.fail("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found")
        pytest.skip("no GPU adapter")
    limit = fg.gpu.pool_limit()
    yield
    fg.gpu.pool_limit(limit)


def test_empty_cache_gives_free_buffers_back(gpu):
    gc.collect()  # tensors of earlier tests
    fg.gpu.empty_cache()
    base = fg.gpu.memory_allocated()
    assert fg.gpu.memory_reserved() == base  # nothing free after empty_cache
    xs = [fg.ones(1 << 18, device="gpu") * 2 for _ in range(8)]  # 1 MiB each
    held = fg.gpu.memory_allocated() - base
    assert held >= 8 * 2**20
    del xs
    gc.collect()
    assert fg.gpu.memory_allocated() == base
    assert fg.gpu.memory_reserved() >= base + 8 * 2**20  # kept in the pool for reuse
    fg.gpu.empty_cache()
    assert fg.gpu.memory_reserved() == base
    # the device still works after its buffers and bind groups were dropped
    a = fg.arange(6.0, device="gpu").reshape(2, 3)
    assert (a @ a.T).tolist() == [[5.0, 14.0], [14.0, 50.0]]


def test_pool_limit_caps_free_buffers(gpu):
    gc.collect()
    fg.gpu.empty_cache()
    assert fg.gpu.pool_limit(2**20) == 2**20
    base = fg.gpu.memory_allocated()
    xs = [fg.ones(1 << 18, device="gpu") + 1 for _ in range(8)]
    del xs
    gc.collect()
    assert fg.gpu.memory_reserved() - base <= 2**20
    fg.gpu.pool_limit(0)
    assert fg.gpu.memory_reserved() == fg.gpu.memory_allocated()
    for _ in range(3):  # every tensor gets a fresh buffer, and results stay right
        assert (fg.ones(1000, device="gpu") + 1).sum().item() == 2000.0
    with pytest.raises(ValueError, match="pool_limit"):
        fg.gpu.pool_limit(-1)


def test_host_cache_serves_a_steady_training_loop_without_new_memory():
    """Large host buffers (an im2col matrix, activations) come from the cache once the
    loop is warm: no block is mapped afresh per step, and the process does not grow."""
    fg.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 13 * 13, 10)
    )
    opt = fg.optim.Adam(net.parameters())
    x, y = fg.randn(64, 1, 28, 28), fg.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    before = fg.cpu.memory_stats()
    for _ in range(5):
        step()
    after = fg.cpu.memory_stats()
    assert after["cache_hits"] > before["cache_hits"]  # the step has large buffers
    assert after["cache_misses"] == before["cache_misses"]
    assert after["cached_bytes"] == before["cached_bytes"]


@pytest.mark.parametrize("arch", ["standard", "residual", "selu"])
def test_steady_training_step_takes_no_new_blocks_for_the_three_networks(arch):
    """Issue 17's allocation count: once warm, a training step of each of the three
    networks (the CLI's sizes, batch 128, Adam) takes no block of 128 KiB or more from the
    system (activations, gradients, gemm's packing buffers all come from the host cache),
    and the cache neither grows nor shrinks. (Smaller blocks, under 128 KiB, are glibc's.)"""
    from ferrograd.cli import build

    fg.manual_seed(0)
    model = build(arch, 784, 10)
    opt = fg.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    x, y = fg.randn(128, 784), fg.randint(0, 10, (128,))

    def step():
        loss = fg.losses.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    before = fg.cpu.memory_stats()
    for _ in range(3):
        step()
    after = fg.cpu.memory_stats()
    hits = after["cache_hits"] - before["cache_hits"]
    assert hits >= 3 * 10, f"{arch}: only {hits} large blocks in 3 steps"  # the step has them
    assert after["cache_misses"] == before["cache_misses"], f"{arch}: new blocks in a steady step"
    assert after["cached_bytes"] == before["cached_bytes"]


def test_host_cache_limit_and_empty_cache():
    old = fg.cpu.cache_limit()
    try:
        fg.cpu.cache_limit(0)
        assert fg.cpu.memory_stats()["cached_bytes"] == 0
        misses = fg.cpu.memory_stats()["cache_misses"]
        for _ in range(3):
            fg.ones(1 << 20).sum()  # 4 MiB each, freed at once
        assert fg.cpu.memory_stats()["cache_misses"] >= misses + 3  # nothing kept to reuse
        fg.cpu.cache_limit(64 << 20)
        fg.ones(1 << 20)
        assert 0 < fg.cpu.memory_stats()["cached_bytes"] <= 64 << 20
        fg.cpu.empty_cache()
        assert fg.cpu.memory_stats()["cached_bytes"] == 0
    finally:
        fg.cpu.cache_limit(old)
    with pytest.raises(ValueError, match="byte count"):
        fg.cpu.cache_limit(-1)
