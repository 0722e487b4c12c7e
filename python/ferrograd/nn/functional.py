"""The functional forms of the layers and losses (`ferrograd.nn.functional`), named and
shaped as `torch.nn.functional`, so `import ferrograd.nn.functional as F` reads as usual.

The loss functions are defined in `ferrograd.nn.loss` (every loss's home) and re-exported
here."""

from __future__ import annotations

from .. import _core
from .._core import ArgumentError, Tensor
from .assorted import (
    adaptive_avg_pool1d,
    cosine_similarity,
    dropout1d,
    glu,
    group_norm,
    hardshrink,
    instance_norm,
    pairwise_distance,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    softshrink,
    tanhshrink,
    threshold,
)
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    ctc_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from .spatial import (
    _softmax_dim,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose2d,
    dropout2d,
    embedding,
    embedding_bag,
    interpolate,
    layer_norm,
    max_pool1d,
    max_pool2d,
    max_unpool1d,
    max_unpool2d,
    normalize,
    pad,
    scaled_dot_product_attention,
    softmin,
)


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


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's)."""
    return x.softplus(beta, threshold)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (`inplace`: as `relu`)."""
    return x.silu()


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)) (`inplace`: as `relu`)."""
    return x.mish()


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (`inplace`: as `relu`)."""
    return x.hardswish()


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6 (`inplace`: as `relu`)."""
    return x.hardsigmoid()


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6) (`inplace`: as `relu`)."""
    return x.relu6()


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped into [min_val, max_val]; min_val > max_val is a ValueError (`inplace`: as `relu`)."""
    return x.hardtanh(min_val, max_val)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably."""
    return x.logsigmoid()


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x.softsign()


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1)); alpha 0 is a ValueError (`inplace`: as `relu`)."""
    return x.celu(alpha)


def softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """Softmax along `dim` (None: PyTorch's implicit, deprecated choice, with its warning);
    `dtype` casts the input first, as PyTorch's."""
    if dtype is not None:
        x = x.to(dtype)
    return x.softmax(_softmax_dim("softmax", dim, x.ndim))


def log_softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """log(softmax(x)) along `dim`, computed stably (None: as `softmax`); `dtype` casts the
    input first."""
    if dtype is not None:
        x = x.to(dtype)
    return x.log_softmax(_softmax_dim("log_softmax", dim, x.ndim))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight of shape (out_features, in_features)."""
    return _core.linear(x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p)
    when `training` (the identity otherwise). `inplace`: as `relu`."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout: p must be in [0, 1], got {p}")
    return _core.dropout(x, p, training)


def alpha_dropout(x: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """Dropout that keeps SELU activations' mean and variance (the identity unless training)."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"alpha_dropout: p must be in [0, 1], got {p}")
    return _core.alpha_dropout(x, p, training)


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot rows of `labels` (num_classes < 0: the largest label + 1)."""
    return _core.one_hot(labels, num_classes)


__all__ = [
    "max_unpool1d",
    "max_unpool2d",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
    "poisson_nll_loss",
    "ctc_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "group_norm",
    "instance_norm",
    "adaptive_avg_pool1d",
    "dropout1d",
    "cosine_similarity",
    "pairwise_distance",
    "glu",
    "threshold",
    "hardshrink",
    "softshrink",
    "tanhshrink",
    "prelu",
    "pixel_shuffle",
    "pixel_unshuffle",
    "batch_norm",
    "layer_norm",
    "embedding",
    "embedding_bag",
    "normalize",
    "softmin",
    "scaled_dot_product_attention",
    "kl_div",
    "cosine_embedding_loss",
    "margin_ranking_loss",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "pad",
    "dropout2d",
    "interpolate",
    "relu",
    "huber_loss",
    "smooth_l1_loss",
    "selu",
    "elu",
    "leaky_relu",
    "gelu",
    "sigmoid",
    "tanh",
    "softplus",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "relu6",
    "hardtanh",
    "logsigmoid",
    "softsign",
    "celu",
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
