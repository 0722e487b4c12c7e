"""Data-parallel training across processes and machines, on MPI (through mpi4py).

The same script runs as one process (`python train.py`) and as many (`mpirun -n 4 python
train.py`, `srun ...`): `init()` finds the launcher's environment and joins its world, or
makes a world of one process without importing mpi4py (an optional dependency).

>>> import ferrograd as fg
>>> fg.distributed.init()
>>> model = fg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
>>> model = fg.distributed.DistributedDataParallel(model)
>>> sampler = fg.distributed.DistributedSampler(dataset, seed=0)
>>> if fg.distributed.is_main(): print("only once")

`fit` runs data-parallel by itself once `init()` has found several processes: see
`ferrograd.train.fit`.
"""

from __future__ import annotations

from .._mpi import all_gather, all_reduce, barrier, broadcast, init
from .._mpi import ensure as _ensure
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler

__all__ = [
    "init",
    "is_initialized",
    "rank",
    "world_size",
    "is_main",
    "barrier",
    "all_reduce",
    "broadcast",
    "all_gather",
    "DistributedDataParallel",
    "DistributedSampler",
]


def is_initialized() -> bool:
    """Whether `init()` has run (or a collective has initialized the world)."""
    from .._mpi import WORLD  # noqa: PLC0415

    return WORLD.initialized


def rank() -> int:
    """This process's rank in the world (0 in a single process)."""
    return _ensure().rank


def world_size() -> int:
    """The number of processes in the world (1 without a launcher)."""
    return _ensure().size


def is_main() -> bool:
    """Whether this is rank 0: the process that prints and writes files."""
    return _ensure().rank == 0
