"""Losses: MSE for regression; cross-entropy (softmax) and binary cross-entropy (sigmoid)
for classification. Classification losses take logits and are computed stably in Rust."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _core
from ._core import DTypeError, ShapeError, Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(v: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "sum":
        return v.sum()
    if reduction == "none":
        return v
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got '{reduction}'")


def mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error, (pred - target)^2 averaged (or summed) over every element.

    >>> fg.losses.mse(fg.tensor([1.0, 2.0]), fg.tensor([1.0, 4.0])).item()
    2.0
    """
    if not isinstance(target, Tensor):
        target = _core.from_numpy(__import__("numpy").asarray(target, dtype="float32"))
    if tuple(pred.shape) != tuple(target.shape):
        if pred.ndim == 2 and pred.shape[1] == 1 and target.ndim == 1 and target.shape[0] == pred.shape[0]:
            target = target.reshape(-1, 1)
        else:
            raise ShapeError(
                f"mse: prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}"
            )
    d = pred - target.detach()
    return _reduce(d * d, reduction, "mse")


def cross_entropy(
    logits: Tensor, target: Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Softmax cross-entropy from logits (N, C).

    `target` is either int64 class labels (N,) or float class probabilities (N, C). The
    log-softmax is fused and shifted by the row maximum, so large logits are safe.
    `label_smoothing` mixes the target with the uniform distribution, as PyTorch's.
    """
    if target.dtype == _core.dtype.int64:
        return _core.cross_entropy(logits, target, label_smoothing, reduction)
    if not target.dtype.is_floating_point:
        raise DTypeError(
            f"cross_entropy: target must be int64 labels or float probabilities, got {target.dtype!r}"
        )
    if tuple(target.shape) != tuple(logits.shape):
        raise ShapeError(
            f"cross_entropy: probability target shape {tuple(target.shape)} "
            f"differs from logits {tuple(logits.shape)}"
        )
    p = target.detach()
    if label_smoothing:
        c = logits.shape[-1]
        p = p * (1.0 - label_smoothing) + label_smoothing / c
    per_sample = -(p * logits.log_softmax(dim=-1)).sum(dim=-1)
    return _reduce(per_sample, reduction, "cross_entropy")


def binary_cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Sigmoid binary cross-entropy from logits, computed stably; targets in [0, 1]."""
    if tuple(target.shape) != tuple(logits.shape):
        if logits.ndim == 2 and logits.shape[1] == 1 and target.ndim == 1:
            target = target.reshape(-1, 1)
    return _core.binary_cross_entropy_with_logits(logits, target, reduction)


LOSSES: dict[str, Callable[..., Any]] = {
    "mse": mse,
    "mean_squared_error": mse,
    "cross_entropy": cross_entropy,
    "categorical_crossentropy": cross_entropy,
    "sparse_categorical_crossentropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_crossentropy": binary_cross_entropy,
}


def get(loss) -> tuple[str, Callable[..., Any]]:
    """Resolves a loss given by name or as a callable; returns (kind, fn)."""
    if callable(loss):
        kind = {mse: "mse", cross_entropy: "cross_entropy", binary_cross_entropy: "binary_cross_entropy"}.get(
            loss
        )
        if kind is None and hasattr(loss, "kind"):
            kind = loss.kind
        return kind or "custom", loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss '{loss}' (choose from {sorted(LOSSES)})")
    fn: Callable[..., Any] = LOSSES[loss]
    return get(fn)[0], fn
