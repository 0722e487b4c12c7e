"""Preprocessing layers: `Standardizer`, which standardizes table columns inside the model,
so a saved model takes raw rows (Keras's `Normalization` layer, with missing values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _core
from .._core import ShapeError, Tensor
from .module import Module

__all__ = ["Standardizer"]


class Standardizer(Module):
    """Standardizes the chosen columns of (N, num_features) rows: ``(x - mean) / std`` with
    statistics learned by `adapt` (from the training rows only), then a missing value (NaN)
    becomes 0, the column's mean. Other columns (one-hot categories) pass through, their
    NaNs made 0 too. The statistics are buffers, so they are saved with the model and
    `fg.load` gives a model that takes raw rows.

    >>> s = fg.nn.Standardizer(3, columns=[0, 2])
    >>> s.adapt(np.array([[1.0, 1.0, 10.0], [3.0, 0.0, float("nan")]]))
    >>> s(fg.tensor([[2.0, 1.0, float("nan")]])).tolist()
    [[0.0, 1.0, 0.0]]
    """

    mean: Tensor
    std: Tensor
    adapted: Tensor

    def __init__(self, num_features: int, columns: Sequence[int] | None = None):
        super().__init__()
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"Standardizer: num_features must be a positive int, got {num_features!r}")
        cols = list(range(num_features)) if columns is None else [int(c) for c in columns]
        if any(c < 0 or c >= num_features for c in cols) or len(set(cols)) != len(cols):
            raise ValueError(
                f"Standardizer: columns must be distinct indices below {num_features}, got {cols}"
            )
        self.num_features = num_features
        self.columns = sorted(cols)
        self.register_buffer("mean", _core.zeros([num_features], None))
        self.register_buffer("std", _core.full([num_features], 1.0, None))
        # 1 once adapt has run: a loaded model is adapted, a fresh one is not
        self.register_buffer("adapted", _core.zeros([1], None))

    @property
    def is_adapted(self) -> bool:
        """Whether `adapt` has set the statistics (also true for a loaded, adapted layer)."""
        return float(self.adapted.item()) > 0

    def adapt(self, x) -> None:
        """Learns each chosen column's mean and standard deviation (population, ignoring
        missing values) from the rows of `x` (a Tensor, an array, or anything with
        ``__array__``); a column with one value (or none) gets std 1."""
        a = x.cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.num_features:
            raise ShapeError(
                f"Standardizer.adapt: expected rows of {self.num_features} features, got shape {a.shape}"
            )
        mean = np.zeros(self.num_features)
        std = np.ones(self.num_features)
        sub = a[:, self.columns].astype(np.float64)
        seen = (~np.isnan(sub)).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(seen > 0, np.nansum(sub, 0) / np.maximum(seen, 1), 0.0)
            v = np.where(seen > 0, np.nansum((sub - m) ** 2, 0) / np.maximum(seen, 1), 0.0)
        s = np.sqrt(v)
        mean[self.columns] = m
        std[self.columns] = np.where(s > 0, s, 1.0)
        # in place: the buffers keep their device and every reference to them
        self.mean.copy_(_core.from_numpy(mean.astype(np.float32)))
        self.std.copy_(_core.from_numpy(std.astype(np.float32)))
        self.adapted.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.num_features:
            raise ShapeError(
                f"Standardizer: expected rows of {self.num_features} features, got shape {tuple(x.shape)}"
            )
        z = (x - self.mean) / self.std
        return z.masked_fill(z.isnan().to(z.device), 0.0)  # (comparisons come back on the host)

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "columns": list(self.columns)}

    @classmethod
    def state_shapes(cls, num_features, columns=None) -> dict[str, tuple[int, ...]]:
        return {"mean": (num_features,), "std": (num_features,), "adapted": (1,)}

    def extra_repr(self) -> str:
        return f"{self.num_features}, columns={self.columns}"
