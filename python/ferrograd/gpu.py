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
from ._core import DeviceError

__all__ = [
    "is_available",
    "info",
    "synchronize",
    "stats",
    "matmul_kernel",
    "matmul_kernels",
    "matmul_split_k",
    "manual_seed",
    "manual_seed_all",
    "matmul_tuning",
]


def is_available() -> bool:
    """Whether tensors can be placed on "gpu" on this machine."""
    try:
        _core.gpu_info()
    except DeviceError:
        return False
    return True


def info() -> dict[str, str]:
    """The adapter in use: ``{"name", "backend", "type"}``; DeviceError when there is none."""
    name, backend, kind = _core.gpu_info()
    return {"name": name, "backend": backend, "type": kind}


def synchronize() -> None:
    """Submits the queued GPU work and waits until it has finished."""
    _core.gpu_synchronize()


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
    GPU idle; split-K gives each part of k its own workgroups and adds the parts in a second
    pass, in a fixed order (the result depends only on the shape, not on timing). Default 16."""
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
