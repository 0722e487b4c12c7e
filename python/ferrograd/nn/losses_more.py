"""More of PyTorch's losses, composed from ops on both devices, with their formulas from
PyTorch's documentation: hinge embedding, soft margin, multi-label soft margin, multi-class
margin, triplet margin, Poisson and Gaussian negative log-likelihood; functions (in
`nn.functional`) and classes (in `nn`)."""

from __future__ import annotations

import math

from .. import _core
from .._core import ArgumentError, ShapeError, Tensor
from .assorted import pairwise_distance
from .loss import _Loss, _reduce, _tensor_args


def _same_shape(op: str, a: Tensor, b: Tensor) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"{op}: input shape {tuple(a.shape)} differs from target shape {tuple(b.shape)}")


@_tensor_args
def hinge_embedding_loss(
    input: Tensor, target: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:  # noqa: A002
    """x where target is 1, max(0, margin - x) where it is -1, as PyTorch's."""
    _same_shape("hinge_embedding_loss", input, target)
    zero = _core.full([], 0.0, input.dtype).to(input.device)
    t = target.to(input.device)
    per = input.masked_fill(t != 1, zero) + (margin - input).clamp(min=0.0).masked_fill(t != -1, zero)
    return _reduce(per, reduction, "hinge_embedding_loss")


@_tensor_args
def soft_margin_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """log(1 + exp(-target x)) per element (targets +-1), as PyTorch's."""
    _same_shape("soft_margin_loss", input, target)
    return _reduce((-target * input).softplus(), reduction, "soft_margin_loss")


@_tensor_args
def multilabel_soft_margin_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-(1 / C) sum_c w_c [y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)] per sample of
    (N, C), as PyTorch's."""
    _same_shape("multilabel_soft_margin_loss", input, target)
    per = -(target * input.logsigmoid() + (1.0 - target) * (-input).logsigmoid())
    if weight is not None:
        per = per * weight.to(per.device, per.dtype)
    c = input.shape[-1] if input.ndim else 1
    return _reduce(per.sum(-1) / float(c) if input.ndim else per, reduction, "multilabel_soft_margin_loss")


def multi_margin_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """The multi-class hinge loss of (N, C) scores and int64 labels (N,), as PyTorch's:
    sum over i != y of max(0, margin - x[y] + x[i])^p (times weight[y]), divided by C."""
    op = "multi_margin_loss"
    if p not in (1, 2):
        raise ArgumentError(f"{op}: p must be 1 or 2, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1)
    if t.dtype != _core.dtype.int64 or t.shape[0] != x.shape[0]:
        raise ShapeError(
            f"{op}: expected int64 labels (N,) for scores {tuple(input.shape)}, "
            f"got {target.dtype} {tuple(target.shape)}"
        )
    n, c = x.shape
    picked = x.take_along_dim(t.reshape(-1, 1).to(x.device), 1)  # x[y], (N, 1)
    hinge = (margin - picked + x).clamp(min=0.0)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * weight.to(x.device, x.dtype).index_select(0, t).reshape(-1, 1)
    own = _core.from_numpy(__import__("numpy").eye(c, dtype=bool)).to(x.device).index_select(0, t)
    per = hinge.masked_fill(own, _core.full([], 0.0, hinge.dtype).to(hinge.device)).sum(1) / float(c)
    if input.ndim == 1:
        per = per.reshape(())
    return _reduce(per, reduction, op)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with d the pairwise p-norm distance, as PyTorch's;
    `swap` uses min(d(a, n), d(p, n)) as the negative's distance."""
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0.0), reduction, "triplet_margin_loss")


@_tensor_args
def poisson_nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood, as PyTorch's: exp(x) - t x with `log_input`, else
    x - t log(x + eps); `full` adds Stirling's t log t - t + 0.5 log(2 pi t) where t > 1."""
    per = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        big = target > 1
        safe = target.masked_fill(~big, _core.full([], 1.0, target.dtype).to(target.device))
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        per = per + stirling.masked_fill(~big, _core.full([], 0.0, stirling.dtype).to(stirling.device))
    return _reduce(per, reduction, "poisson_nll_loss")


def gaussian_nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood 0.5 (log var + (x - t)^2 / var) (+ 0.5 log 2 pi with
    `full`), as PyTorch's: `var` of the input's shape, or without its last dim (or that dim
    1), or a number; clamped at `eps` for the value only (its gradient passes unchanged)."""
    op = "gaussian_nll_loss"
    if not isinstance(var, Tensor):
        var = _core.full([], float(var), input.dtype).to(input.device)
    if tuple(var.shape) != tuple(input.shape):
        if input.ndim and tuple(var.shape) == tuple(input.shape[:-1]):
            var = var.unsqueeze(-1)
        elif not (var.ndim == 0 or (input.ndim and tuple(var.shape) == (*input.shape[:-1], 1))):
            raise ShapeError(f"{op}: var of shape {tuple(var.shape)} does not fit input {tuple(input.shape)}")
    if bool((var < 0).any().item()):
        raise ArgumentError(f"{op}: var has negative entries")
    v = var + (var.clamp(min=eps) - var).detach()  # clamped value, identity gradient
    per = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        per = per + 0.5 * math.log(2 * math.pi)
    return _reduce(per, reduction, op)


# ---- classes ------------------------------------------------------------------------


class HingeEmbeddingLoss(_Loss):
    """x where target is 1, max(0, margin - x) where it is -1."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input, target):  # noqa: A002
        return hinge_embedding_loss(input, target, self.margin, self.reduction)

    def get_config(self) -> dict:
        return {"margin": self.margin, "reduction": self.reduction}


class SoftMarginLoss(_Loss):
    """log(1 + exp(-target x))."""

    def forward(self, input, target):  # noqa: A002
        return soft_margin_loss(input, target, self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """Per-class sigmoid cross-entropy averaged over the classes (see the function)."""

    def __init__(self, weight: Tensor | None = None, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input, target):  # noqa: A002
        return multilabel_soft_margin_loss(input, target, self.weight, self.reduction)

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError(
                "MultiLabelSoftMarginLoss with weight has no config; rebuild it in code"
            )
        return {"reduction": self.reduction}


class MultiMarginLoss(_Loss):
    """The multi-class hinge loss (see `multi_margin_loss`)."""

    def __init__(
        self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None, reduction: str = "mean"
    ):
        super().__init__(reduction)
        if p not in (1, 2):
            raise ArgumentError(f"MultiMarginLoss: p must be 1 or 2, got {p}")
        self.p, self.margin, self.weight = int(p), float(margin), weight

    def forward(self, input, target):  # noqa: A002
        return multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError("MultiMarginLoss with weight has no config; rebuild it in code")
        return {"p": self.p, "margin": self.margin, "reduction": self.reduction}


class TripletMarginLoss(_Loss):
    """max(d(a, p) - d(a, n) + margin, 0) (see `triplet_margin_loss`)."""

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        self.margin, self.norm, self.eps, self.swap = float(margin), float(p), float(eps), bool(swap)

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(
            anchor, positive, negative, self.margin, self.norm, self.eps, self.swap, self.reduction
        )

    def get_config(self) -> dict:
        return {
            "margin": self.margin,
            "p": self.norm,
            "eps": self.eps,
            "swap": self.swap,
            "reduction": self.reduction,
        }


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood (see `poisson_nll_loss`)."""

    def __init__(
        self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"
    ):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = bool(log_input), bool(full), float(eps)

    def forward(self, input, target):  # noqa: A002
        return poisson_nll_loss(input, target, self.log_input, self.full, self.eps, self.reduction)

    def get_config(self) -> dict:
        return {"log_input": self.log_input, "full": self.full, "eps": self.eps, "reduction": self.reduction}


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood with a predicted variance (see `gaussian_nll_loss`)."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = bool(full), float(eps)

    def forward(self, input, target, var):  # noqa: A002
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)

    def get_config(self) -> dict:
        return {"full": self.full, "eps": self.eps, "reduction": self.reduction}
