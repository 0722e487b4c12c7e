"""The GPU backend's controls, as ``torch.cuda`` gives them for CUDA.

GPU work is queued and runs while Python goes on; ``synchronize()`` waits for it (time a GPU
section between two calls). The matmul picks among several kernels that give identical
results: by default ("auto") the first product of each large shape times them all and keeps
the fastest.

>>> import ferrograd as fg
>>> if fg.gpu.is_available():
...     fg.gpu.synchronize()
"""

from __future__ import annotations

from typing import Any

from . import _core
from ._core import DeviceError as DeviceError  # fg.gpu.DeviceError, as before
from ._device import gpu_available
from ._graphs import Graph, graph
from ._verify import VerifyReport, VerifyRow, verify
from .amp import cuda_amp as amp

__all__ = [
    "is_available",
    "info",
    "synchronize",
    "stats",
    "memory_allocated",
    "memory_reserved",
    "empty_cache",
    "pool_limit",
    "matmul_kernel",
    "matmul_kernels",
    "matmul_split_k",
    "manual_seed",
    "manual_seed_all",
    "matmul_tuning",
    "verify",
    "VerifyReport",
    "VerifyRow",
    "amp",
    "Graph",
    "CUDAGraph",
    "graph",
]

CUDAGraph = Graph  # PyTorch's name (fg.cuda.CUDAGraph)


def is_available() -> bool:
    """Whether tensors can be placed on "gpu" on this machine: a hardware adapter exists.

    A software emulation of a GPU (Mesa's lavapipe/llvmpipe, Vulkan device type "Cpu") does
    not count: it runs the shaders on the CPU, far slower than ferrograd's CPU path, so the
    usual ``"cuda" if fg.cuda.is_available() else "cpu"`` must not pick it. Set
    ``FERROGRAD_ALLOW_SOFTWARE_GPU=1`` in the environment (before the first GPU use) to
    use one anyway, as the test suite and CI do. ``fg.devices()`` lists software adapters
    with ``"software": True``."""
    return gpu_available()


def info() -> dict[str, Any]:
    """The adapter in use: ``{"name", "backend", "type", "features"}``; DeviceError when
    there is none. ``features`` lists the capabilities that decide which kernels an adapter
    could run, by WebGPU's names: "shader-f16" (half-precision arithmetic in shaders),
    "subgroups", "timestamp-query", "shader-f64"."""
    name, backend, kind, features = _core.gpu_info()
    return {"name": name, "backend": backend, "type": kind, "features": list(features)}


def synchronize() -> None:
    """Submits the queued GPU work and waits until it has finished."""
    _core.gpu_synchronize()


def memory_allocated() -> int:
    """Bytes of GPU memory held by live tensors (buffers are rounded up to powers of two),
    as ``torch.cuda.memory_allocated``."""
    return _core.gpu_memory()[0]


def memory_reserved() -> int:
    """Bytes of GPU memory ferrograd holds: live tensors' buffers plus the free ones its
    pool keeps for reuse, as ``torch.cuda.memory_reserved``."""
    return _core.gpu_memory()[1]


def empty_cache() -> None:
    """Gives the pool's free buffers back to the driver, as ``torch.cuda.empty_cache``
    (live tensors keep theirs). The pool also empties itself, once, when the device runs
    out of memory, before an allocation is refused with MemoryError.

    >>> fg.gpu.empty_cache(); fg.gpu.memory_reserved() == fg.gpu.memory_allocated()
    True
    """
    _core.gpu_empty_cache()


def pool_limit(limit: int | None = None) -> int:
    """The most bytes of free buffers the pool keeps (default 1 GiB); a buffer freed
    beyond it goes back to the driver. Given `limit`, sets it first (0 keeps nothing free:
    every tensor gets a new buffer, slower but lean) and trims the pool to it."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"pool_limit: expected a byte count >= 0, got {limit!r}")
    return _core.gpu_pool_limit(limit)


def stats() -> dict[str, Any]:
    """Runtime counters: buffers created, dispatches recorded, submissions, bytes read back
    to the host, the compiled
    kernel variants and the largest storage binding (bytes)."""
    return _core.gpu_stats()


def matmul_kernel(name: str | None = None, tune_min_flops: float | None = None) -> str:
    """Returns how the matmul kernel is chosen ("auto" or a kernel name); with `name`, sets it
    and returns the previous setting. `tune_min_flops` (2mnk) sets the smallest product that
    "auto" times (default 2**31); smaller ones use the first kernel of ``matmul_kernels()``.
    The environment variable FERROGRAD_MATMUL_KERNEL sets the starting value."""
    return _core.gpu_matmul_kernel(name, tune_min_flops)


def manual_seed(seed: int) -> None:
    """Seeds the generator, as ``torch.cuda.manual_seed``: ferrograd has one generator for
    both devices (the same seed gives the same dropout masks on the CPU and the GPU), so
    this is ``ferrograd.manual_seed``."""
    _core.manual_seed(seed)


manual_seed_all = manual_seed


def matmul_split_k(max_splits: int | None = None) -> int:
    """Returns the most parts a matmul splits its inner dimension k into (1: never); with
    `max_splits`, sets it and returns the previous setting. A product whose output has few
    tiles (a 128-row batch through a 512-wide layer: 16 workgroups) leaves most of a large
    GPU idle; split-K gives each part of k its own workgroups and adds the parts in a fixed
    order (the result depends only on the shape, not on timing): on Vulkan the workgroup
    that finishes a tile's last part does it in the same dispatch, elsewhere a second pass
    does. Default 16."""
    return _core.gpu_matmul_split_k(max_splits)


def matmul_kernels() -> list[str]:
    """The matmul kernels by name, the default for small products first."""
    return _core.gpu_matmul_kernels()


def matmul_tuning() -> list[dict[str, Any]]:
    """What "auto" measured, one entry per shape: ``layout`` ("kn", "kk", "mn", "mk": which
    dimension of A, then of B, is contiguous), ``m``, ``n``, ``k``, the ``chosen`` kernel and
    ``gflops`` per kernel (NaN for one rejected because its result differed)."""
    out = []
    for (layout, m, n, k), chosen, times in _core.gpu_matmul_tuning():
        flops = 2.0 * m * n * k
        gflops = {name: (flops / t / 1e9 if t == t else float("nan")) for name, t in times}
        out.append({"layout": layout, "m": m, "n": n, "k": k, "chosen": chosen, "gflops": gflops})
    return out
