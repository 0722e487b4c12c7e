"""`DistributedDataParallel`: one model replicated on every rank, gradients averaged across
ranks during the backward pass, in buckets of flat buffers."""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from .. import _core, _mpi
from .._core import Tensor
from ..autograd import no_grad, queue_callback
from ..nn import Module


class _Bucket:
    """Parameters whose gradients are reduced together, as one flat host buffer."""

    def __init__(self, index: int, params: list[tuple[int, Tensor]]):
        self.index, self.params = index, params
        self.sizes = [p.numel() for _, p in params]
        wide = params[0][1].dtype == _core.dtype.float64
        self.buffer: np.ndarray = np.zeros(sum(self.sizes), dtype=np.float64 if wide else np.float32)
        self.request: Any = None

    def pack(self) -> None:
        """Copies the parameters' gradients (zeros where there is none) into the buffer."""
        at = 0
        for (_, p), n in zip(self.params, self.sizes):
            g = p.grad
            if g is None:
                self.buffer[at : at + n] = 0
            else:
                self.buffer[at : at + n] = g.detach().cpu().numpy().reshape(-1)
            at += n

    def unpack(self, scale: float) -> None:
        """Writes the reduced buffer, times `scale`, back as the parameters' gradients (in
        place where a gradient exists)."""
        np.multiply(self.buffer, scale, out=self.buffer)
        at = 0
        for (_, p), n in zip(self.params, self.sizes):
            g = _core.from_numpy(self.buffer[at : at + n].reshape(tuple(p.shape)))
            if p.grad is not None:
                with no_grad():
                    p.grad.copy_(g)
            else:
                p.grad = g.to(p.device, p.dtype, copy=True)
            at += n


class DistributedDataParallel(Module):
    """Data-parallel training on MPI, in PyTorch's spirit: `module` (available as `.module`)
    runs on every rank on that rank's share of each batch; calls go to it.

    - At construction the parameters and buffers are broadcast from rank 0, so every rank
      starts from the same weights.
    - During `backward()`, gradients are averaged across ranks in buckets of about
      `bucket_cap_mb` MB of flat buffers (one MPI call per bucket, not per parameter). A
      bucket's reduction starts (non-blocking `Iallreduce`) as soon as the gradients of all
      its parameters are final, while backward goes on for earlier layers; buckets start in
      a fixed order (the reverse of `parameters()`), so the result does not depend on timing.
      The backward pass waits for all of them before it returns: the optimizer step sees the
      averaged gradients. A parameter without a gradient on some rank counts as zeros there.
    - `no_sync()`: a context in which backward keeps gradients local (accumulation); the
      first backward after it averages the accumulated gradients.
    - Dropout and other random draws differ between ranks after construction (each rank's
      generator is reseeded from one draw of the shared one and its rank), reproducibly.
    - `comm_seconds`: the time spent packing, reducing and unpacking gradients so far.

    In a single process it only forwards to `module`.

    >>> fg.distributed.init()
    >>> model = fg.distributed.DistributedDataParallel(model)
    """

    comm_seconds: float
    broadcast_buffers: bool
    _world: Any
    _sync: bool
    _pass: dict | None
    _params: list[Tensor]
    _buckets: list[_Bucket]
    _where: dict[int, int]
    _handles: list[Any]

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        broadcast_buffers: bool = True,
        find_unused_parameters: bool = False,
        device_ids=None,
        output_device=None,
    ):
        """`device_ids`, `output_device` and `find_unused_parameters` are accepted for
        PyTorch's signature: one process drives one device, and unused parameters are
        always handled (their gradient counts as zeros)."""
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        world = _mpi.ensure()
        self._world = world
        self.comm_seconds = 0.0
        self._sync = True
        self._pass = None
        params = [p for p in module.parameters() if p.requires_grad]
        self._params = params
        if world.size == 1:
            self._buckets = []
            self._handles = []
            return
        self._broadcast_state(broadcast_buffers)
        _reseed_per_rank(world.rank)
        # buckets in the order gradients become final (the last layers first); the first is
        # small (1 MB, as PyTorch's) so that its reduction starts early in backward
        buckets: list[_Bucket] = []
        cap = min(bucket_cap_mb, 1.0) * 1e6
        cur: list[tuple[int, Tensor]] = []
        size = 0.0
        for i in reversed(range(len(params))):
            p = params[i]
            nbytes = p.numel() * (8 if p.dtype == _core.dtype.float64 else 4)
            if cur and (size + nbytes > cap or p.dtype != cur[0][1].dtype):
                buckets.append(_Bucket(len(buckets), cur))
                cur, size = [], 0.0
                cap = bucket_cap_mb * 1e6
            cur.append((i, p))
            size += nbytes
        if cur:
            buckets.append(_Bucket(len(buckets), cur))
        self._buckets = buckets
        where = {}
        for b in buckets:
            for i, _ in b.params:
                where[i] = b.index
        self._where = where
        handles = [p.register_post_accumulate_grad_hook(self._hook(i)) for i, p in enumerate(params)]
        self._handles = handles

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.training and self._world.size > 1:
            self.sync_buffers()
        return self.module(*args, **kwargs)

    def sync_buffers(self) -> None:
        """Copies rank 0's buffers (BatchNorm's running statistics) to every rank, as
        PyTorch's DDP does before each forward in training with `broadcast_buffers`: each
        rank's own updates would otherwise leave the ranks with different models in eval."""
        if self._world.size > 1:
            _broadcast_flat(self._world, [b for _, b in self.module.named_buffers()])

    def remove_hooks(self) -> None:
        """Stops averaging gradients (unregisters the hooks on the parameters); `fit` calls
        it on the wrapper it made when training ends."""
        for h in self._handles:
            h.remove()
        self._handles = []

    @contextmanager
    def no_sync(self):
        """Backward passes inside keep their gradients local (gradient accumulation)."""
        prev = self._sync
        self._sync = False
        try:
            yield
        finally:
            self._sync = prev

    # ------------------------------------------------------------ the reduction

    def _broadcast_state(self, buffers: bool) -> None:
        tensors = list(self._params) + ([b for _, b in self.module.named_buffers()] if buffers else [])
        _broadcast_flat(self._world, tensors)

    def _hook(self, i: int):
        def hook(_t: Tensor) -> None:
            if not self._sync:
                return
            t0 = time.perf_counter()
            state = self._pass
            if state is None:
                state = {"ready": [0] * len(self._buckets), "next": 0}
                self._pass = state
                queue_callback(self._finish)
            b = self._where[i]
            state["ready"][b] += 1
            self._launch_ready(state, final=False)
            self.comm_seconds = self.comm_seconds + time.perf_counter() - t0

        return hook

    def _launch_ready(self, state: dict, final: bool) -> None:
        """Starts, in bucket order, every bucket whose gradients are all final (`final`:
        every remaining bucket, the end of the pass)."""
        mpi = self._world.mpi
        while state["next"] < len(self._buckets):
            b = self._buckets[state["next"]]
            if not final and state["ready"][b.index] < len(b.params):
                break
            b.pack()
            b.request = self._world.comm.Iallreduce(mpi.IN_PLACE, b.buffer, op=mpi.SUM)
            state["next"] += 1
        # give the library a chance to progress the reductions already started
        started = [b.request for b in self._buckets[: state["next"]] if b.request is not None]
        if started:
            mpi.Request.Testall(started)

    def _finish(self) -> None:
        t0 = time.perf_counter()
        state = self._pass
        self._pass = None
        if state is None:
            return
        self._launch_ready(state, final=True)
        self._world.mpi.Request.Waitall([b.request for b in self._buckets])
        scale = 1.0 / self._world.size
        for b in self._buckets:
            b.request = None
            b.unpack(scale)
        self.comm_seconds = self.comm_seconds + time.perf_counter() - t0


def _broadcast_flat(world: Any, tensors: list[Tensor]) -> None:
    """Rank 0's values of `tensors`, one broadcast per dtype (flat buffers)."""
    for dt in (_core.dtype.float32, _core.dtype.float64, _core.dtype.int64):
        group = [t for t in tensors if t.dtype == dt]
        if not group:
            continue
        flat = np.concatenate([t.detach().cpu().numpy().reshape(-1) for t in group])
        world.comm.Bcast(flat, root=0)
        at = 0
        with no_grad():
            for t in group:
                n = t.numel()
                t.copy_(_core.from_numpy(flat[at : at + n].reshape(tuple(t.shape)).copy()).to(t.device))
                at += n


def _reseed_per_rank(rank: int) -> None:
    """Reseeds the generator from one draw of it (the same on every rank when the ranks
    were seeded alike) and the rank: random streams (dropout) differ between ranks and are
    reproducible from the seed."""
    base = int(_core.randint(0, 2**62, []).item())
    digest = hashlib.sha256(f"{base}:{rank}".encode()).digest()
    _core.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
