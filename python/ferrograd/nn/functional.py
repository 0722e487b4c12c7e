"""The functional forms of the layers and losses (`ferrograd.nn.functional`), named and
shaped as `torch.nn.functional`, so `import ferrograd.nn.functional as F` reads as usual."""

from __future__ import annotations

from .. import _core
from .. import losses as _losses
from .._core import Tensor
from ..losses import _reduce


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return x.relu()


def selu(x: Tensor) -> Tensor:
    """Scaled exponential linear unit."""
    return x.selu()


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha (e^x - 1)."""
    return x.elu(alpha)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return x.leaky_relu(negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), exact or (`approximate="tanh"`) tanh-approximated."""
    return x.gelu(approximate)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x)."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along `dim`."""
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along `dim`, computed stably."""
    return x.log_softmax(dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    return _core.linear(x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p)
    when `training` (the identity otherwise)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    return _core.dropout(x, p, training)


def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """Dropout that keeps SELU activations' mean and variance (the identity unless training)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"alpha_dropout: p must be in [0, 1], got {p}")
    return _core.alpha_dropout(x, p, training)


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot rows of `labels` (num_classes < 0: the largest label + 1)."""
    return _core.one_hot(labels, num_classes)


def cross_entropy(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    target: Tensor,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy from logits (N, C) and int64 labels (N,) or probabilities (N, C)."""
    return _losses.cross_entropy(input, target, label_smoothing, reduction)


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of int64 labels (N,) under log-probabilities (N, C) (a
    log_softmax output): -input[i, target[i]], reduced."""
    if input.ndim != 2 or tuple(target.shape) != (input.shape[0],):
        raise _core.ShapeError(
            f"nll_loss: expected log-probabilities (N, C) and labels (N,), got {tuple(input.shape)} "
            f"and {tuple(target.shape)}"
        )
    picked = (input * _core.one_hot(target, input.shape[1]).type_as(input)).sum(1)
    return _reduce(-picked, reduction, "nll_loss")


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error."""
    return _losses.mse(input, target, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean absolute error."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"l1_loss: input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
        )
    return _reduce((input - target.detach()).abs(), reduction, "l1_loss")


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
) -> Tensor:
    """Sigmoid binary cross-entropy from logits, computed stably."""
    return _losses.binary_cross_entropy(input, target, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Binary cross-entropy from probabilities in [0, 1]; each log is clamped at -100, as
    PyTorch's. Prefer `binary_cross_entropy_with_logits`, which is stable."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"binary_cross_entropy: input shape {tuple(input.shape)} differs from target shape "
            f"{tuple(target.shape)}"
        )
    t = target.detach()
    log_p = input.log().clamp(min=-100.0)
    log_q = (1.0 - input).log().clamp(min=-100.0)
    return _reduce(-(t * log_p + (1.0 - t) * log_q), reduction, "binary_cross_entropy")


__all__ = [
    "relu",
    "selu",
    "elu",
    "leaky_relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "dropout",
    "alpha_dropout",
    "one_hot",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
]
