"""Keras's names for the losses, and `get`, which resolves `fit(loss=...)`.

- `mse`: mean squared error (regression);
- `cross_entropy`: softmax cross-entropy from logits, with int64 labels or probabilities;
- `binary_cross_entropy`: sigmoid binary cross-entropy from logits.

Classification losses take logits and are computed stably in Rust. Every loss is defined in
`ferrograd.nn.loss` (PyTorch's names are `ferrograd.nn.functional` and the `nn.*Loss`
classes); this module re-exports Keras's and names them for `fit` and `compile`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._core import ArgumentError
from .nn.loss import _REDUCTIONS as _REDUCTIONS
from .nn.loss import _reduce as _reduce
from .nn.loss import mse
from .nn.loss import sigmoid_binary_cross_entropy as binary_cross_entropy
from .nn.loss import softmax_cross_entropy as cross_entropy

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
        raise ArgumentError(f"unknown loss '{loss}' (choose from {sorted(LOSSES)})")
    fn: Callable[..., Any] = LOSSES[loss]
    return get(fn)[0], fn
