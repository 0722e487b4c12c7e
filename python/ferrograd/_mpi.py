"""The process group: detection of an MPI launch, mpi4py's communicator, and the tensor
collectives on it (through host NumPy buffers). A process started without a launcher is a
world of one, and mpi4py is never imported for it."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import numpy as np

from . import _core
from ._core import Tensor
from .autograd import no_grad

# environment variables an MPI launcher sets in each process it starts: Open MPI's, the
# PMI/PMIx ones (MPICH, Intel MPI, srun), MVAPICH's
_LAUNCHER_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_LAUNCHER_RANK = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")

_MISSING = (
    "ferrograd.distributed: this process was started by an MPI launcher ({var}={val}) but "
    "mpi4py is not installed. Install it in this environment: `pip install mpi4py` (with an "
    "MPI installed, e.g. `apt-get install openmpi-bin libopenmpi-dev`), or `pip install "
    "ferrograd[mpi]`"
)


class _World:
    comm: Any = None  # mpi4py's COMM_WORLD when size > 1
    mpi: Any = None  # the mpi4py.MPI module when size > 1
    rank = 0
    size = 1
    initialized = False


WORLD = _World()


def launched_by_mpi() -> tuple[str, str] | None:
    """The launcher variable that says this process is one of several, or None."""
    for var in _LAUNCHER_SIZE:
        val = os.environ.get(var)
        if val and val.isdigit() and int(val) > 1:
            return var, val
    for var in _LAUNCHER_RANK:  # srun with PMIx may set only the rank
        if os.environ.get(var) not in (None, "", "0") or var == "PMIX_RANK" and var in os.environ:
            return var, os.environ[var]
    return None


def init(abort_on_exception: bool = True) -> None:
    """Joins the process group: under `mpirun`/`srun` (several processes) through mpi4py's
    COMM_WORLD, otherwise a world of one process with nothing imported. Idempotent.

    With `abort_on_exception` (the default) an exception that reaches the top of any rank
    prints its traceback with the rank and calls MPI_Abort, so the other ranks stop at once
    instead of waiting forever in their next collective (Ctrl-C on the launcher reaches
    every rank as KeyboardInterrupt and ends the same way)."""
    if WORLD.initialized:
        return
    found = launched_by_mpi()
    if found is None:
        WORLD.initialized = True
        return
    try:
        from mpi4py import MPI  # noqa: PLC0415  (optional dependency, imported only under MPI)
    except ImportError as e:
        raise ImportError(_MISSING.format(var=found[0], val=found[1])) from e
    comm = MPI.COMM_WORLD
    WORLD.mpi, WORLD.comm = MPI, comm
    WORLD.rank, WORLD.size = comm.Get_rank(), comm.Get_size()
    WORLD.initialized = True
    if WORLD.size > 1 and abort_on_exception:
        _install_abort_hook()


def _install_abort_hook() -> None:
    previous = sys.excepthook

    def hook(kind, value, tb):
        sys.stderr.write(f"ferrograd.distributed: rank {WORLD.rank} of {WORLD.size} failed:\n")
        traceback.print_exception(kind, value, tb)
        sys.stderr.flush()
        if WORLD.comm is not None:
            WORLD.comm.Abort(1)
        previous(kind, value, tb)

    sys.excepthook = hook


def ensure() -> _World:
    """The world, initialized on first use."""
    if not WORLD.initialized:
        init()
    return WORLD


# ---------------------------------------------------------------------------- collectives

_OPS = ("sum", "mean", "max", "min", "prod")


def _host(t: Tensor) -> np.ndarray:
    """A contiguous host copy of `t`'s values."""
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _store(t: Tensor, a: np.ndarray) -> None:
    with no_grad():
        t.copy_(_core.from_numpy(a).to(t.device))


def allreduce_array(a: np.ndarray, op: str = "sum") -> np.ndarray:
    """`a` reduced element-wise across ranks (in place; returned)."""
    w = ensure()
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    if w.size > 1:
        mpi_op = {
            "sum": w.mpi.SUM,
            "mean": w.mpi.SUM,
            "max": w.mpi.MAX,
            "min": w.mpi.MIN,
            "prod": w.mpi.PROD,
        }[op]
        w.comm.Allreduce(w.mpi.IN_PLACE, a, op=mpi_op)
    if op == "mean":
        a /= w.size
    return a


def allgather_array(a: np.ndarray) -> np.ndarray:
    """Every rank's `a` (the same shape on every rank), stacked in rank order."""
    w = ensure()
    a = np.ascontiguousarray(a)
    if w.size == 1:
        return a[None].copy()
    out = np.empty((w.size,) + a.shape, dtype=a.dtype)
    w.comm.Allgather(a, out)
    return out


def all_reduce(tensor: Tensor, op: str = "sum") -> Tensor:
    """Reduces `tensor` across ranks in place (PyTorch's `dist.all_reduce`): "sum" (the
    default), "mean", "max", "min" or "prod"; returns it. A GPU tensor goes through the host.
    Does not record the graph."""
    a = allreduce_array(_host(tensor).copy(), op)
    _store(tensor, a)
    return tensor


def broadcast(tensor: Tensor, src: int = 0) -> Tensor:
    """Copies rank `src`'s `tensor` into every rank's `tensor` (in place; returned)."""
    w = ensure()
    _check_rank(src, "broadcast")
    if w.size > 1:
        a = _host(tensor).copy()
        w.comm.Bcast(a, root=src)
        _store(tensor, a)
    return tensor


def all_gather(tensor: Tensor) -> list[Tensor]:
    """Every rank's `tensor` (the same shape on every rank), in rank order."""
    w = ensure()
    a = _host(tensor)
    if w.size == 1:
        return [tensor.detach().clone()]
    out = np.empty((w.size,) + a.shape, dtype=a.dtype)
    w.comm.Allgather(a, out)
    return [_core.from_numpy(np.ascontiguousarray(out[r])).to(tensor.device) for r in range(w.size)]


def barrier() -> None:
    """Waits until every rank reaches this point."""
    w = ensure()
    if w.size > 1:
        w.comm.Barrier()


def _check_rank(r: int, op: str) -> None:
    if not (isinstance(r, int) and 0 <= r < WORLD.size):
        raise ValueError(f"{op}: rank must be an int in [0, {WORLD.size}), got {r!r}")


def allreduce_sums(values: list[float]) -> list[float]:
    """Sums of a few numbers across ranks, in float64 (training figures: sums and counts)."""
    a = np.asarray(values, dtype=np.float64)
    return [float(v) for v in allreduce_array(a, "sum")]
