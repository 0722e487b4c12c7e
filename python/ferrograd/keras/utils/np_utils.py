"""Keras 2's `keras.utils.np_utils`: `to_categorical` and `normalize` on NumPy arrays."""

from __future__ import annotations

import numpy as np


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """One-hot encodes integer class labels: (N,) -> (N, num_classes) (a trailing dim of 1
    is dropped first). `num_classes` defaults to max(y) + 1.

    >>> to_categorical([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    arr = np.asarray(y.numpy() if hasattr(y, "numpy") and not isinstance(y, np.ndarray) else y)
    if arr.size and not np.all(np.isfinite(arr.astype(np.float64))):
        raise ValueError("to_categorical: labels contain NaN or inf")
    labels = arr.astype(np.int64)
    if arr.size and np.any(labels != arr):
        raise ValueError("to_categorical: labels must be integers")
    shape = labels.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    labels = labels.reshape(-1)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    num_classes = int(num_classes)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"to_categorical: labels must be in [0, {num_classes}), got values from {labels.min()} to "
            f"{labels.max()}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out.reshape((*shape, num_classes))


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """`x` divided by its L`order` norm along `axis` (zero norms left as they are)."""
    arr = np.asarray(x, dtype=np.float32)
    norm = np.atleast_1d(np.linalg.norm(arr, order, axis))
    norm[norm == 0] = 1
    return arr / np.expand_dims(norm, axis)
