"""The functional forms of the layers and losses (`ferrograd.nn.functional`), named and
shaped as `torch.nn.functional`, so `import ferrograd.nn.functional as F` reads as usual."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from .. import _core
from .. import losses as _losses
from .._core import Tensor
from ..losses import _reduce

_F = TypeVar("_F", bound=Callable[..., Any])


def _tensor_args(fn: _F) -> _F:
    """Refuses a loss whose input or target is not a Tensor with a TypeError naming the
    loss, as PyTorch's (not an AttributeError from deep inside)."""

    @functools.wraps(fn)
    def checked(input, target, *args, **kwargs):  # noqa: A002
        for name, v in (("input", input), ("target", target)):
            if not isinstance(v, Tensor):
                raise TypeError(f"{fn.__name__}: {name} must be a Tensor, got {type(v).__name__}")
        return fn(input, target, *args, **kwargs)

    return checked  # type: ignore[return-value]


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). `inplace` is accepted and computes out of place (use the result)."""
    return x.relu()


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """Scaled exponential linear unit (`inplace`: as `relu`)."""
    return x.selu()


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e^x - 1) (`inplace`: as `relu`)."""
    return x.elu(alpha)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x (`inplace`: as `relu`)."""
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


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p)
    when `training` (the identity otherwise). `inplace`: as `relu`."""
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


@_tensor_args
def cross_entropy(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy from logits (N, C) and int64 labels (N,) or probabilities (N, C).

    As PyTorch's: `weight` (C,) scales each class's terms and "mean" divides by the summed
    weights of the labels; labels equal to `ignore_index` add nothing (and count nothing in
    the mean)."""
    if weight is None and not _has_ignored(target, ignore_index):
        return _losses.cross_entropy(input, target, label_smoothing, reduction)
    if label_smoothing:
        raise ValueError("cross_entropy: label_smoothing with weight or ignored labels is not supported")
    return nll_loss(input.log_softmax(1), target, weight, ignore_index, reduction)


def _has_ignored(target: Tensor, ignore_index: int) -> bool:
    """Whether int64 labels hold `ignore_index` (never true of probability targets)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
    return target.dtype == _core.dtype.int64 and bool((target == ignore_index).any().item())


@_tensor_args
def nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of int64 labels (N,) under log-probabilities (N, C) (a
    log_softmax output): -weight[t] * input[i, t] for t = target[i], reduced; "mean" divides
    by the summed weights, and labels equal to `ignore_index` are left out, as PyTorch's."""
    if input.ndim != 2 or tuple(target.shape) != (input.shape[0],):
        raise _core.ShapeError(
            f"nll_loss: expected log-probabilities (N, C) and labels (N,), got {tuple(input.shape)} "
            f"and {tuple(target.shape)}"
        )
    c = input.shape[1]
    _has_ignored(target, ignore_index)  # (checks ignore_index)
    keep = target != ignore_index
    safe = target.masked_fill(~keep, 0) if _has_ignored(target, ignore_index) else target
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(
            f"nll_loss: weight must be a Tensor of shape ({c},) or None, got {type(weight).__name__}"
        )
    if weight is not None and tuple(weight.shape) != (c,):
        raise _core.ShapeError(f"nll_loss: weight must have shape ({c},), got {tuple(weight.shape)}")
    lo, hi = (int(safe.amin().item()), int(safe.amax().item())) if safe.numel() else (0, 0)
    if lo < 0 or hi >= c:
        raise IndexError(f"nll_loss: labels must be in [0, {c}) or ignore_index, got {lo}..{hi}")
    # pick each row's entry (a one-hot product would give -inf * 0 = NaN for a -inf
    # log-probability of another class), and zero ignored rows before weighting them
    picked = -input.gather(1, safe.reshape(-1, 1)).reshape(-1)
    picked = picked.masked_fill(~keep.to(picked.device), 0.0)
    w = keep.type_as(input)  # per-sample weight: 0 for ignored labels
    if weight is not None:
        w = w * weight.detach().type_as(input)[safe]
    picked = picked * w
    if reduction == "mean":
        return picked.sum() / w.sum()
    return _reduce(picked, reduction, "nll_loss")


@_tensor_args
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error."""
    return _losses.mse(input, target, reduction)


@_tensor_args
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean absolute error."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"l1_loss: input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
        )
    return _reduce((input - target.detach()).abs(), reduction, "l1_loss")


@_tensor_args
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), for d = input - target."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"huber_loss: input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
        )
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    d = (input - target.detach()).abs()
    quad = d.clamp(max=delta)  # the quadratic part; the rest is linear
    return _reduce(0.5 * quad * quad + delta * (d - quad), reduction, "huber_loss")


@_tensor_args
def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """Huber loss divided by `beta` (PyTorch's SmoothL1Loss; `beta` 0 is the L1 loss)."""
    if beta == 0:
        return l1_loss(input, target, reduction)
    return huber_loss(input, target, reduction, beta) / beta


@_tensor_args
def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
) -> Tensor:
    """Sigmoid binary cross-entropy from logits, computed stably."""
    return _losses.binary_cross_entropy(input, target, reduction)


@_tensor_args
def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Binary cross-entropy from probabilities in [0, 1]; each log is clamped at -100, as
    PyTorch's. Prefer `binary_cross_entropy_with_logits`, which is stable."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"binary_cross_entropy: input shape {tuple(input.shape)} differs from target shape "
            f"{tuple(target.shape)}"
        )
    if input.numel() and bool(((input < 0) | (input > 1)).any().item()):
        raise ValueError(
            "binary_cross_entropy: every input must be a probability in [0, 1]; "
            "for logits use binary_cross_entropy_with_logits"
        )
    t = target.detach()
    log_p = input.log().clamp(min=-100.0)
    log_q = (1.0 - input).log().clamp(min=-100.0)
    return _reduce(-(t * log_p + (1.0 - t) * log_q), reduction, "binary_cross_entropy")


__all__ = [
    "relu",
    "huber_loss",
    "smooth_l1_loss",
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
