"""Data sets: an IDX reader and the MNIST sample bundled with the package.

The bundled sample is the official MNIST test set (10,000 digits) by Yann LeCun, Corinna
Cortes and Christopher J.C. Burges, distributed under CC BY-SA 3.0.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from . import _core
from ._creation import tensor

_BUNDLED = Path(__file__).parent / "datasets" / "mnist"
_IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (raw or gzip-compressed) into a NumPy array.

    Raises ValueError for a file that is not IDX or is truncated.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"read_idx: {path} is truncated (header)")
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header < need:
        raise ValueError(f"read_idx: {path} is truncated: {len(data) - header} of {need} data bytes")
    return np.frombuffer(data, dtype=dtype, count=need // dtype.itemsize, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"load_mnist: no {stem}[.gz] in {folder}")


def load_mnist(path: str | os.PathLike | None = None, kind: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images as float32 in [0, 1] of shape (N, 784) and labels as int64 of shape (N,).

    With no `path`, reads the 10,000-digit sample that ships inside the package; otherwise
    reads `{kind}-images-idx3-ubyte[.gz]` and `{kind}-labels-idx1-ubyte[.gz]` from `path`.

    >>> x, y = load_mnist()
    >>> x.shape, y.shape
    ((10000, 784), (10000,))
    """
    folder = Path(path) if path is not None else _BUNDLED
    images = read_idx(_find(folder, f"{kind}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{kind}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: {images.shape[0]} images but {labels.shape[0]} labels")
    x = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0
    return x, labels.astype(np.int64)


class ArrayDataset:
    """Samples from equal-length arrays or tensors: `ds[i]` is a tuple of the i-th rows.

    >>> ds = ArrayDataset(x, y)
    >>> len(ds), ds[0][1]
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset: give at least one array")
        self.tensors = [a if hasattr(a, "grad_fn") else tensor(a) for a in arrays]
        n = self.tensors[0].shape[0]
        for i, t in enumerate(self.tensors):
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError(
                    f"ArrayDataset: array {i} has {t.shape[0] if t.ndim else 0} rows, expected {n}"
                )
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


TensorDataset = ArrayDataset  # PyTorch's name


class DataLoader:
    """Mini-batches of an `ArrayDataset`, optionally shuffled with a seed.

    Each epoch (each `iter()`) draws a new order: from the global generator, or from
    `seed + epoch` when `seed` is given, so runs repeat exactly.

    >>> for xb, yb in DataLoader(ArrayDataset(x, y), batch_size=128, shuffle=True, seed=0):
    ...     ...
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int = 32,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        sampler=None,
    ):
        """`num_workers` and `pin_memory` are accepted so PyTorch scripts run unchanged, and
        have nothing to do: the data is in memory (or on the GPU) and a batch is one gather.
        `sampler` (e.g. `ferrograd.distributed.DistributedSampler`) gives the indices of each
        epoch in order, instead of `shuffle`."""
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive (as PyTorch's)")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.drop_last, self.seed, self.epoch = drop_last, seed, 0
        self.sampler = sampler

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = None
        if self.sampler is not None:
            picks = self.sampler.indices() if hasattr(self.sampler, "indices") else list(self.sampler)
            order = tensor(np.asarray(picks, dtype=np.int64)) if len(picks) else None
            n = len(picks)
            if order is None:
                return
        elif self.shuffle:
            if self.seed is not None:
                saved = _core.get_rng_state()
                _core.manual_seed(self.seed + self.epoch)
                order = _core.randperm(n)
                _core.set_rng_state(saved)
            else:
                order = _core.randperm(n)
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                return
            idx = order[start:stop] if order is not None else slice(start, stop)
            yield tuple(t[idx] for t in self.dataset.tensors)
