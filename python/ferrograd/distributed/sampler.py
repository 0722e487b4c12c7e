"""`DistributedSampler`: each rank's share of a data set, every sample once per epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import _mpi


class DistributedSampler:
    """The indices of one rank's share of `dataset` (anything with `len`), as PyTorch's
    ``torch.utils.data.DistributedSampler``.

    Every rank draws the same order (a permutation seeded by `seed + epoch` when `shuffle`,
    else 0..n-1), so the shares are disjoint; rank r takes positions r, r + R, r + 2R, ...
    of it (R ranks). When n is not a multiple of R, `drop_last=False` (the default) pads the
    order with its own first entries up to the next multiple, so a few samples are seen
    twice in that epoch and every rank gets ceil(n / R) indices; `drop_last=True` drops the
    last n mod R entries of the order instead, and every rank gets floor(n / R). Call
    `set_epoch(e)` before each epoch for a new order, as with PyTorch's (`fit` does).

    >>> sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    >>> loader = fg.data.DataLoader(dataset, batch_size=64, sampler=sampler)
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        world = _mpi.ensure()
        self.num_replicas = world.size if num_replicas is None else num_replicas
        self.rank = world.rank if rank is None else rank
        if not (isinstance(self.num_replicas, int) and self.num_replicas >= 1):
            raise ValueError(
                f"DistributedSampler: num_replicas must be an int >= 1, got {self.num_replicas!r}"
            )
        if not (isinstance(self.rank, int) and 0 <= self.rank < self.num_replicas):
            raise ValueError(
                f"DistributedSampler: rank must be an int in [0, {self.num_replicas}), got {self.rank!r}"
            )
        self.dataset, self.shuffle, self.seed, self.drop_last = dataset, shuffle, int(seed), drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, which seeds the next order (`seed + epoch`)."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch (int64)."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[: self.total_size]
        elif self.total_size > n and n > 0:
            reps = -(-(self.total_size - n) // n)
            order = np.concatenate([order, np.tile(order, reps)[: self.total_size - n]])
        return order[self.rank : self.total_size : self.num_replicas].astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(int(i) for i in self.indices())

    def __len__(self) -> int:
        return self.num_samples
