"""Data sets: an IDX reader, the MNIST sample bundled with the package, the full MNIST and
Fashion-MNIST from their official files, and tables from CSV files (`read_csv`).

The bundled sample is the official MNIST test set (10,000 digits) by Yann LeCun, Corinna
Cortes and Christopher J.C. Burges, distributed under CC BY-SA 3.0.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from ._creation import tensor
from .nn.preprocessing import Standardizer

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


def _find(folder: Path, stem: str, op: str = "load_mnist", where: str = "") -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"{op}: no {stem}[.gz] in {folder}{where}")


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


_FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (data/fashion)"


def load_fashion_mnist(path: str | os.PathLike, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando; 28 x 28 grey images of 10 kinds of clothing) from a folder
    holding its official files: images as float32 in [0, 1] of shape (N, 784), labels as
    int64. `kind` is "train" (60,000) or "t10k" (10,000). Nothing is downloaded: put
    `{kind}-images-idx3-ubyte.gz` and `{kind}-labels-idx1-ubyte.gz` (or unzipped) from
    the project's repository in `path`; the full MNIST is `load_mnist(path, "train")`."""
    if kind not in ("train", "t10k"):
        raise ValueError(f"load_fashion_mnist: kind must be 'train' or 't10k', got {kind!r}")
    folder = Path(path)
    hint = f"; download them from {_FASHION_URL} and put them there (nothing is downloaded at run time)"
    images = read_idx(_find(folder, f"{kind}-images-idx3-ubyte", "load_fashion_mnist", hint))
    labels = read_idx(_find(folder, f"{kind}-labels-idx1-ubyte", "load_fashion_mnist", hint))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_fashion_mnist: {images.shape[0]} images but {labels.shape[0]} labels")
    return images.reshape(images.shape[0], -1).astype(np.float32) / 255.0, labels.astype(np.int64)


class Table(np.ndarray):
    """The float32 feature matrix `read_csv` returns: a NumPy array that also knows its
    columns. `columns` names each column (a one-hot column is ``"name=level"``), `numeric`
    lists the columns that came from numeric fields (NaN where the field was empty), and
    `categories` maps each categorical field to its levels. `standardizer()` gives the
    `ferrograd.nn.Standardizer` of the numeric columns, unadapted; `fit` adapts it on the
    training split and puts it in front of the model."""

    columns: list[str]
    numeric: list[int]
    categories: dict[str, list[str]]

    def __new__(
        cls, data: np.ndarray, columns: list[str], numeric: list[int], categories: dict[str, list[str]]
    ):
        obj = np.asarray(data, dtype=np.float32).view(cls)
        obj.columns, obj.numeric, obj.categories = list(columns), list(numeric), dict(categories)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.columns = getattr(obj, "columns", [])
        self.numeric = getattr(obj, "numeric", [])
        self.categories = getattr(obj, "categories", {})

    def standardizer(self) -> Standardizer:
        """A `ferrograd.nn.Standardizer` for these columns (the numeric ones), not adapted."""
        return Standardizer(self.shape[1], columns=self.numeric)


def _number(s: str) -> float | None:
    """The float a CSV field holds, NaN for an empty one, None for text."""
    s = s.strip()
    if s == "" or s.lower() in ("nan", "na", "null"):
        return math.nan
    try:
        return float(s)
    except ValueError:
        return None


def _read_fields(path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    """The header and the columns of a CSV file as strings: through pandas when it is
    installed (its parser handles quoting and encodings the widest), else the csv module."""
    try:
        import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        pd = None
    if pd is not None:
        df = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False)
        return [str(c) for c in df.columns], [df[c].tolist() for c in df.columns]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        raise ValueError(f"read_csv: {path} is empty")
    header, body = rows[0], [r for r in rows[1:] if r]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"read_csv: {path} line {i + 2} has {len(r)} fields, the header {len(header)}")
    return header, [[r[j] for r in body] for j in range(len(header))]


def read_csv(
    path: str | os.PathLike,
    target: str,
    categorical: list[str] | None = None,
    delimiter: str = ",",
) -> tuple[Table, np.ndarray]:
    """A CSV file with a header row as (features, targets) for `fit`.

    Fields that all read as numbers (empty ones are missing: NaN) are numeric columns; the
    others, and those named in `categorical`, are one-hot encoded, one column per level in
    sorted order (a missing field is all zeros). The features come back as a `Table`
    (float32): `fit` puts a `ferrograd.nn.Standardizer` of its numeric columns in front of
    the model, adapted to the training split only, so the model takes raw rows afterwards
    and keeps the statistics when saved. The target column gives int64 class indices when
    it is text or integers (text levels in sorted order: `Table.categories[target]`), else
    float32 values. Reads through pandas when it is installed, the csv module otherwise.
    """
    header, cols = _read_fields(path, delimiter)
    if target not in header:
        raise KeyError(f"read_csv: no column {target!r} in {path} (columns: {header})")
    forced = set(categorical or [])
    unknown = forced - set(header)
    if unknown:
        raise KeyError(f"read_csv: categorical names columns not in {path}: {sorted(unknown)}")
    out: list[np.ndarray] = []
    names: list[str] = []
    numeric: list[int] = []
    categories: dict[str, list[str]] = {}
    y: np.ndarray | None = None
    for name, field in zip(header, cols):
        values = [_number(s) for s in field]
        is_numeric = name not in forced and all(v is not None for v in values)
        if name == target:
            if is_numeric:
                arr = np.array(values, dtype=np.float64)
                if np.isnan(arr).any():
                    raise ValueError(f"read_csv: the target {target!r} has missing values")
                whole = np.all(arr == np.round(arr))
                y = arr.astype(np.int64) if whole else arr.astype(np.float32)
            else:
                levels = sorted({s.strip() for s in field})
                categories[name] = levels
                index = {v: i for i, v in enumerate(levels)}
                y = np.array([index[s.strip()] for s in field], dtype=np.int64)
            continue
        if is_numeric:
            numeric.append(len(names))
            names.append(name)
            out.append(np.array(values, dtype=np.float32))
        else:
            levels = sorted({s.strip() for s in field if s.strip() != ""})
            categories[name] = levels
            text = [s.strip() for s in field]
            for level in levels:
                names.append(f"{name}={level}")
                out.append(np.array([t == level for t in text], dtype=np.float32))
    assert y is not None
    n = len(y)
    data = np.stack(out, axis=1) if out else np.zeros((n, 0), np.float32)
    return Table(data, names, numeric, categories), y


class ArrayDataset:
    """Samples from equal-length arrays or tensors: `ds[i]` is a tuple of the i-th rows.

    >>> ds = ArrayDataset(x, y)
    >>> n, (first_x, first_y) = len(ds), ds[0]
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
