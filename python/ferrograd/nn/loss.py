"""Every loss, in one home: the functions and the `Module` classes.

Where users look for them, they are re-exported:

- PyTorch's functional names in `ferrograd.nn.functional` (`F.cross_entropy`, `F.nll_loss`,
  `F.mse_loss`, `F.l1_loss`, `F.huber_loss`, `F.smooth_l1_loss`, `F.binary_cross_entropy`
  from probabilities, `F.binary_cross_entropy_with_logits`);
- PyTorch's classes in `ferrograd.nn` (`nn.CrossEntropyLoss`, `nn.MSELoss`, ...);
- Keras's names in `ferrograd.losses`, which `fit(loss=...)` resolves: `mse`,
  `cross_entropy` (this module's `softmax_cross_entropy`) and `binary_cross_entropy` (this
  module's `sigmoid_binary_cross_entropy`, from logits).

The two families differ where their namesakes do: PyTorch's `cross_entropy` takes class
`weight` and `ignore_index` (its third argument is `weight`), Keras's takes
`label_smoothing` third; PyTorch's `binary_cross_entropy` takes probabilities, Keras's
(`ferrograd.losses.binary_cross_entropy`) logits. Classification losses on logits are
computed stably in Rust.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, TypeVar

import numpy as np

from .. import _core
from .._core import ArgumentError, DTypeError, OutOfRangeError, ShapeError, Tensor
from ..amp import full_precision
from ..autograd import Function
from .assorted import pairwise_distance
from .module import Module

_F = TypeVar("_F", bound=Callable[..., Any])


# ---- the forms `fit` and `ferrograd.losses` use (logits in; arrays accepted as targets) ----

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(v: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "sum":
        return v.sum()
    if reduction == "none":
        return v
    raise ArgumentError(f"{op}: reduction must be one of {_REDUCTIONS}, got '{reduction}'")


def mse(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error, (pred - target)^2 averaged (or summed) over every element.

    >>> fg.losses.mse(fg.tensor([1.0, 2.0]), fg.tensor([1.0, 4.0])).item()
    2.0
    """
    if not isinstance(target, Tensor):
        target = _core.from_numpy(__import__("numpy").asarray(target, dtype="float32"))
    pred, target = full_precision(pred), full_precision(target)  # float32 under autocast
    if tuple(pred.shape) != tuple(target.shape):
        if pred.ndim == 2 and pred.shape[1] == 1 and target.ndim == 1 and target.shape[0] == pred.shape[0]:
            target = target.reshape(-1, 1)
        else:
            raise ShapeError(
                f"mse: prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}"
            )
    d = pred - target
    return _reduce(d * d, reduction, "mse")


def softmax_cross_entropy(
    logits: Tensor, target: Tensor, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Softmax cross-entropy from logits (N, C): Keras's form, `ferrograd.losses.cross_entropy`
    (what `fit(loss="cross_entropy")` computes).

    `target` is either int64 class labels (N,) or float class probabilities (N, C). As
    PyTorch's, the classes are dimension 1 of (N, C, d1, ...) logits (labels (N, d1, ...),
    probabilities shaped as the logits) and dimension 0 of unbatched (C,) logits. The
    log-softmax is fused and shifted by the row maximum, so large logits are safe.
    `label_smoothing` mixes the target with the uniform distribution, as PyTorch's. A
    probability target that requires grad gets its gradient (soft targets from another
    network train that way).
    """
    if target.dtype == _core.dtype.int64:
        flat, tflat, back = _classes_last(logits, target, "cross_entropy")
        out = _core.cross_entropy(flat, tflat, label_smoothing, reduction)
        return back(out) if reduction == "none" else out
    if not target.dtype.is_floating_point:
        raise DTypeError(
            f"cross_entropy: target must be int64 labels or float probabilities, got {target.dtype!r}"
        )
    if tuple(target.shape) != tuple(logits.shape):
        raise ShapeError(
            f"cross_entropy: probability target shape {tuple(target.shape)} "
            f"differs from logits {tuple(logits.shape)}"
        )
    cdim = 1 if logits.ndim >= 2 else 0
    p = target
    if label_smoothing:
        c = logits.shape[cdim]
        p = p * (1.0 - label_smoothing) + label_smoothing / c
    per_sample = -(p * logits.log_softmax(dim=cdim)).sum(dim=cdim)
    return _reduce(per_sample, reduction, "cross_entropy")


def _classes_last(logits: Tensor, target: Tensor, op: str):
    """(N, C, d1, ...) logits and (N, d1, ...) labels as (M, C) and (M,), with a function that
    shapes a per-sample result back as the labels; (N, C) and (C,) as they are."""
    if logits.ndim == 2:
        return logits, target, lambda t: t
    if logits.ndim == 1:
        if target.ndim != 0:
            raise ShapeError(
                f"{op}: unbatched logits ({logits.shape[0]},) take a 0-d label, got {tuple(target.shape)}"
            )
        return logits.reshape(1, -1), target.reshape(1), lambda t: t.reshape(())
    n, c = logits.shape[0], logits.shape[1]
    rest = tuple(logits.shape[2:])
    if tuple(target.shape) != (n, *rest):
        raise ShapeError(
            f"{op}: logits of shape {tuple(logits.shape)} (classes along dim 1) take labels of shape "
            f"{(n, *rest)}, got {tuple(target.shape)}"
        )
    perm = [0, *range(2, logits.ndim), 1]
    shape = tuple(target.shape)
    return logits.permute(*perm).reshape(-1, c), target.reshape(-1), lambda t: t.reshape(*shape)


def sigmoid_binary_cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Sigmoid binary cross-entropy from logits, computed stably; targets in [0, 1]. Keras's
    form, `ferrograd.losses.binary_cross_entropy`: (N,) targets fit an (N, 1) output."""
    if tuple(target.shape) != tuple(logits.shape):
        if logits.ndim == 2 and logits.shape[1] == 1 and target.ndim == 1:
            target = target.reshape(-1, 1)
    if not target.requires_grad:
        return _core.binary_cross_entropy_with_logits(logits, target, reduction)
    # a target that requires grad: d/dt = -logit; the fused kernel gives none, so the term
    # -logit * (t - t.detach()) (zero in value) carries it
    per = _core.binary_cross_entropy_with_logits(logits, target.detach(), "none")
    per = per - logits.detach() * (target - target.detach())
    return _reduce(per, reduction, "binary_cross_entropy_with_logits")


# ---- PyTorch's functional forms (`ferrograd.nn.functional`) ----------------------------


def _tensor_args(fn: _F, cast_input: bool = True) -> _F:
    """Refuses a loss whose input or target is not a Tensor with a TypeError naming the
    loss, as PyTorch's (not an AttributeError from deep inside). Under autocast the
    arguments are cast to float32 (PyTorch's float32 list), the input only where
    `cast_input` (cross_entropy's engine ops read half logits and compute in float32 by
    themselves, without a cast pass first)."""

    @functools.wraps(fn)
    def checked(input, target, *args, **kwargs):  # noqa: A002
        for name, v in (("input", input), ("target", target)):
            if not isinstance(v, Tensor):
                raise TypeError(f"{fn.__name__}: {name} must be a Tensor, got {type(v).__name__}")
        if cast_input:
            input = full_precision(input)  # noqa: A001
        return fn(input, full_precision(target), *args, **kwargs)

    return checked  # type: ignore[return-value]


@functools.partial(_tensor_args, cast_input=False)
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
    if weight is not None and isinstance(target, Tensor) and target.dtype.is_floating_point:
        return _weighted_soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    if weight is None and not _has_ignored(target, ignore_index):
        return softmax_cross_entropy(input, target, label_smoothing, reduction)
    logp = input.log_softmax(1 if input.ndim > 1 else 0)
    if not label_smoothing:
        return nll_loss(logp, target, weight, ignore_index, reduction)
    if target.dtype != _core.dtype.int64:
        raise ArgumentError("cross_entropy: weight and ignore_index go with int64 class labels")
    # PyTorch's rule: (1 - e) * the weighted NLL + e / C * the weighted sum of -log p over the
    # classes, both zero on ignored rows; "mean" divides both by the summed label weights
    flat, tflat, back = _classes_last(logp, target, "cross_entropy")
    c = flat.shape[1]
    keep = tflat != ignore_index
    w = _core.full([c], 1.0, flat.dtype).to(flat.device) if weight is None else weight.detach().type_as(flat)
    smooth = -(flat * w).sum(1)
    smooth = smooth.masked_fill(~keep.to(smooth.device), _core.full([], 0.0, smooth.dtype).to(smooth.device))
    nll = nll_loss(flat, tflat, weight, ignore_index, "none")
    eps = float(label_smoothing)
    per = nll * (1.0 - eps) + smooth * (eps / c)
    if reduction == "mean":
        safe = tflat.masked_fill(~keep, 0)
        denom = (w[safe] * keep.type_as(flat).to(flat.device)).sum()
        return per.sum() / denom
    if reduction == "none":
        return back(per)
    return _reduce(per, reduction, "cross_entropy")


def _weighted_soft_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor,
    reduction: str,
    label_smoothing: float,
) -> Tensor:
    """Cross-entropy against class probabilities with per-class `weight`, as PyTorch's:
    -sum_c weight_c y_c log p_c per sample (y smoothed toward 1/C first), and "mean" divides
    by the number of samples (not by the weights, as it does for labels)."""
    cdim = 1 if input.ndim > 1 else 0
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(
            f"cross_entropy: probability targets of shape {tuple(target.shape)} must match the "
            f"input's {tuple(input.shape)}"
        )
    c = input.shape[cdim]
    if not isinstance(weight, Tensor) or tuple(weight.shape) != (c,):
        got = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ShapeError(f"cross_entropy: weight must have shape ({c},) (one per class), got {got}")
    logp = full_precision(input).log_softmax(cdim)
    y = full_precision(target).type_as(logp)
    if label_smoothing:
        y = y * (1.0 - float(label_smoothing)) + float(label_smoothing) / c
    view = [1] * input.ndim
    view[cdim] = c
    per = -(logp * y * weight.reshape(*view).to(logp.device, logp.dtype)).sum(cdim)
    return _reduce(per, reduction, "cross_entropy")


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
    by the summed weights, and labels equal to `ignore_index` are left out, as PyTorch's.
    (N, C, d1, ...) inputs take (N, d1, ...) labels (classes along dim 1); (C,) takes a 0-d
    label."""
    if input.ndim != 2 and target.dtype == _core.dtype.int64 and input.ndim >= 1:
        flat, tflat, back = _classes_last(input, target, "nll_loss")
        out = nll_loss(flat, tflat, weight, ignore_index, reduction)
        return back(out) if reduction == "none" else out
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
        raise OutOfRangeError(f"nll_loss: labels must be in [0, {c}) or ignore_index, got {lo}..{hi}")
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
    return mse(input, target, reduction)


@_tensor_args
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean absolute error."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"l1_loss: input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
        )
    return _reduce((input - target).abs(), reduction, "l1_loss")


@_tensor_args
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), for d = input - target."""
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"huber_loss: input shape {tuple(input.shape)} differs from target shape {tuple(target.shape)}"
        )
    if delta <= 0:
        raise ArgumentError(f"huber_loss: delta must be > 0, got {delta}")
    d = (input - target).abs()
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
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid binary cross-entropy from logits, computed stably, as PyTorch's: `weight`
    rescales each element's loss, `pos_weight` (broadcast along the last dim, one per class)
    the positive term: pos_weight y softplus(-x) + (1 - y) softplus(x)."""
    if isinstance(weight, str):  # the earlier signature's third argument was the reduction
        weight, reduction = None, weight
    if weight is None and pos_weight is None:
        return sigmoid_binary_cross_entropy(input, target, reduction)
    t = target.type_as(input)
    pos = (-input).softplus() * t
    if pos_weight is not None:
        pos = pos * pos_weight
    per = pos + input.softplus() * (1.0 - t)
    if weight is not None:
        per = per * weight
    return _reduce(per, reduction, "binary_cross_entropy_with_logits")


@_tensor_args
def binary_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy from probabilities in [0, 1]; each log is clamped at -100, as
    PyTorch's; `weight` (broadcast to the input) rescales each element's loss before the
    reduction. Prefer `binary_cross_entropy_with_logits`, which is stable."""
    if isinstance(weight, str):  # the earlier signature's third argument was the reduction
        weight, reduction = None, weight
    if tuple(input.shape) != tuple(target.shape):
        raise _core.ShapeError(
            f"binary_cross_entropy: input shape {tuple(input.shape)} differs from target shape "
            f"{tuple(target.shape)}"
        )
    if input.numel() and bool(((input < 0) | (input > 1)).any().item()):
        raise ArgumentError(
            "binary_cross_entropy: every input must be a probability in [0, 1]; "
            "for logits use binary_cross_entropy_with_logits"
        )
    loss = _Bce.apply(input, target)
    if weight is not None:
        if not isinstance(weight, Tensor):
            weight = _core.from_numpy(__import__("numpy").asarray(weight, dtype="float32"))
        try:
            _np_broadcast(tuple(weight.shape), tuple(loss.shape))
        except ValueError:
            raise ShapeError(
                f"binary_cross_entropy: weight of shape {tuple(weight.shape)} does not broadcast to "
                f"the input's {tuple(loss.shape)}"
            ) from None
        loss = loss * weight.to(loss.device, loss.dtype)
    return _reduce(loss, reduction, "binary_cross_entropy")


def _np_broadcast(a: tuple, b: tuple) -> None:
    """Raises ValueError unless `a` broadcasts to `b` (the result keeps b's shape)."""
    import numpy as np  # noqa: PLC0415

    if np.broadcast_shapes(a, b) != b:
        raise ValueError


class _Bce(Function):
    """Pointwise binary cross-entropy with PyTorch's rules at 0 and 1: each log clamped at
    -100, the input's gradient (p - t) / max(p (1 - p), 1e-12), so a probability of
    exactly 0 or 1 gives a finite one (the composed clamp(log p) gave 0 * inf = NaN), and
    the target's log(1 - p) - log(p), unclamped (infinite at 0 and 1, as PyTorch's)."""

    @staticmethod
    def forward(ctx, p, t):
        log_p, log_q = p.log(), (1.0 - p).log()
        ctx.save_for_backward(p, t, log_p, log_q)
        return -(t * log_p.clamp(min=-100.0) + (1.0 - t) * log_q.clamp(min=-100.0))

    @staticmethod
    def backward(ctx, g):
        p, t, log_p, log_q = ctx.saved_tensors
        dp = g * (p - t) / (p * (1.0 - p)).clamp(min=1e-12)
        return dp, g * (log_q - log_p)


@_tensor_args
def kl_div(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """KL divergence with `input` log-probabilities: target (log target - input) pointwise
    (0 where target is 0), or exp(target) (target - input) with `log_target`, as PyTorch's;
    "batchmean" divides the sum by the batch size (KL's mathematical definition), "mean" by
    the number of elements."""
    if log_target:
        point = target.exp() * (target - input)
    else:
        safe = target.masked_fill(target <= 0, _core.full([], 1.0, target.dtype).to(target.device))
        point = (target * (safe.log() - input)).masked_fill(
            target == 0, _core.full([], 0.0, input.dtype).to(input.device)
        )
    if reduction == "batchmean":
        return point.sum() / float(input.shape[0] if input.ndim else 1)
    return _reduce(point, reduction, "kl_div")


@_tensor_args
def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """1 - cos(x1, x2) where target = 1, max(0, cos(x1, x2) - margin) where target = -1, as
    PyTorch's (cosine along the last dim, norms clamped at 1e-8)."""
    eps = 1e-8
    n1 = (input1 * input1).sum(-1).clamp(min=eps * eps).sqrt()
    n2 = (input2 * input2).sum(-1).clamp(min=eps * eps).sqrt()
    cos = (input1 * input2).sum(-1) / (n1 * n2)
    pos = 1.0 - cos
    neg = (cos - margin).clamp(min=0.0)
    t = target.to(cos.device)
    zero = _core.full([], 0.0, cos.dtype).to(cos.device)
    per = pos.masked_fill(t != 1, zero) + neg.masked_fill(t != -1, zero)
    return _reduce(per, reduction, "cosine_embedding_loss")


@_tensor_args
def margin_ranking_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """max(0, -target (x1 - x2) + margin), as PyTorch's."""
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0.0), reduction, "margin_ranking_loss")


# ---- PyTorch's classes (`ferrograd.nn`) ------------------------------------------------


class _Loss(Module):
    kind = "custom"

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def get_config(self) -> dict:
        return {"reduction": self.reduction}

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """Nothing: losses hold no tensors (class weights are not saved in a config)."""
        return {}


class MSELoss(_Loss):
    """Mean squared error (see `mse`)."""

    kind = "mse"

    def forward(self, pred, target):
        return mse(pred, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits (see `cross_entropy`, PyTorch's functional form);
    `weight` and `ignore_index` as PyTorch's."""

    kind = "cross_entropy"

    def __init__(
        self,
        weight=None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        if isinstance(weight, str):  # ferrograd's earlier order: the reduction came first
            reduction, weight = weight, None
        super().__init__(reduction)
        self.label_smoothing = label_smoothing
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, logits, target):
        return cross_entropy(
            logits, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError("CrossEntropyLoss with class weights has no config; rebuild it in code")
        return {
            "reduction": self.reduction,
            "label_smoothing": self.label_smoothing,
            "ignore_index": self.ignore_index,
        }


class NLLLoss(_Loss):
    """Negative log-likelihood of int64 labels under log-probabilities (a LogSoftmax output);
    `weight` and `ignore_index` as PyTorch's."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, log_probs, target):
        return nll_loss(log_probs, target, self.weight, self.ignore_index, self.reduction)

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError("NLLLoss with class weights has no config; rebuild it in code")
        return {"reduction": self.reduction, "ignore_index": self.ignore_index}


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, pred, target):
        return l1_loss(pred, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy from probabilities (see `binary_cross_entropy`); `weight`
    rescales each element's loss."""

    def __init__(self, weight=None, reduction: str = "mean"):
        if isinstance(weight, str):  # the earlier signature took the reduction first
            weight, reduction = None, weight
        super().__init__(reduction)
        self.weight = weight

    def forward(self, probs, target):
        return binary_cross_entropy(probs, target, self.weight, self.reduction)

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError("BCELoss with weight has no config; rebuild it in code")
        return {"reduction": self.reduction}


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), for d = pred - target."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, pred, target):
        return huber_loss(pred, target, self.reduction, self.delta)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "delta": self.delta}


class SmoothL1Loss(_Loss):
    """Huber loss divided by `beta`: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, pred, target):
        return smooth_l1_loss(pred, target, self.reduction, self.beta)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "beta": self.beta}


class BCEWithLogitsLoss(_Loss):
    """Sigmoid binary cross-entropy from logits (see `binary_cross_entropy_with_logits`)."""

    kind = "binary_cross_entropy"

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        if isinstance(weight, str):  # the earlier signature took the reduction first
            weight, reduction = None, weight
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, logits, target):
        if self.weight is None and self.pos_weight is None:
            return sigmoid_binary_cross_entropy(logits, target, self.reduction)
        return binary_cross_entropy_with_logits(logits, target, self.weight, self.reduction, self.pos_weight)

    def get_config(self) -> dict:
        if self.weight is not None or self.pos_weight is not None:
            raise NotImplementedError(
                "BCEWithLogitsLoss with weight or pos_weight has no config; rebuild it in code"
            )
        return {"reduction": self.reduction}


__all__ = [
    "mse",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "MSELoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "L1Loss",
    "BCELoss",
    "HuberLoss",
    "SmoothL1Loss",
    "BCEWithLogitsLoss",
]


class KLDivLoss(_Loss):
    """KL divergence with log-probability inputs (see `kl_div`)."""

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):  # noqa: A002
        return kl_div(input, target, self.reduction, self.log_target)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "log_target": self.log_target}


class CosineEmbeddingLoss(_Loss):
    """1 - cos for similar pairs, max(0, cos - margin) for dissimilar ones."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "margin": self.margin}


class MarginRankingLoss(_Loss):
    """max(0, -target (x1 - x2) + margin)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, self.margin, self.reduction)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "margin": self.margin}


# ---- more of PyTorch's losses: hinge embedding, soft margin, multi-label soft margin,
# multi-class margin, triplet margin, Poisson and Gaussian negative log-likelihood -----


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


# ---- more of PyTorch's loss classes ----------------------------------------------------


def _logaddexp3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """log(e^a + e^b + e^c), -inf where all three are, with finite gradients there too (the
    unreachable states of a CTC lattice must not turn the gradient into NaN)."""
    m = a.maximum(b).maximum(c)
    dead = m == float("-inf")
    zero = _core.full([], 0.0, m.dtype).to(m.device)
    m = m.masked_fill(dead, zero)
    total = (a - m).exp() + (b - m).exp() + (c - m).exp()
    one = _core.full([], 1.0, m.dtype).to(m.device)
    out = total.masked_fill(dead, one).log() + m
    return out.masked_fill(dead, _core.full([], float("-inf"), m.dtype).to(m.device))


def _shift(x: Tensor, k: int) -> Tensor:
    """x (N, S) moved k places right along S, -inf coming in."""
    fill = _core.full([x.shape[0], k], float("-inf"), x.dtype).to(x.device)
    return _core.cat([fill, x[:, : x.shape[1] - k]], 1)


def _lengths(op: str, v: Any, n: int, what: str) -> list[int]:
    out = [int(i) for i in (v.cpu().tolist() if isinstance(v, Tensor) else v)]
    if len(out) != n or any(i < 0 for i in out):
        raise ArgumentError(f"{op}: {what} must hold {n} non-negative lengths, got {out}")
    return out


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist temporal classification loss, as `torch.nn.functional.ctc_loss`: the
    negative log-likelihood of each target sequence summed over its alignments with the
    frames of `log_probs` (T, N, C) (log-softmax outputs; (T, C) for one sequence), by the
    forward algorithm in log space. `targets` are (N, S) padded or 1-D concatenated, class
    indices other than `blank`; `input_lengths` and `target_lengths` give each sequence's
    frames and labels. "mean" divides each loss by its target length (at least 1), then
    averages; an impossible alignment gives inf (0, with zero gradient, under
    `zero_infinity`). Differentiable in `log_probs`, on either device."""
    op = "ctc_loss"
    if (
        not isinstance(log_probs, Tensor)
        or log_probs.ndim not in (2, 3)
        or not log_probs.dtype.is_floating_point
    ):
        got = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ShapeError(f"{op}: log_probs must be a float tensor (T, N, C) or (T, C), got {got}")
    unbatched = log_probs.ndim == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        if isinstance(targets, Tensor) and targets.ndim == 1:
            targets = targets.unsqueeze(0)
        input_lengths = (
            [int(input_lengths)] if not isinstance(input_lengths, (list, tuple, Tensor)) else input_lengths
        )
        target_lengths = (
            [int(target_lengths)] if not isinstance(target_lengths, (list, tuple, Tensor)) else target_lengths
        )
        if isinstance(input_lengths, Tensor) and input_lengths.ndim == 0:
            input_lengths = [int(input_lengths.item())]
        if isinstance(target_lengths, Tensor) and target_lengths.ndim == 0:
            target_lengths = [int(target_lengths.item())]
    t_max, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise ArgumentError(f"{op}: blank must be a class index in [0, {c}), got {blank}")
    ins = _lengths(op, input_lengths, n, "input_lengths")
    tls = _lengths(op, target_lengths, n, "target_lengths")
    if any(i > t_max for i in ins):
        raise ArgumentError(f"{op}: an input length exceeds the {t_max} frames of log_probs: {ins}")
    if not isinstance(targets, Tensor) or targets.dtype.is_floating_point:
        raise DTypeError(f"{op}: targets must be an integer tensor")
    flat = targets.cpu().long().tolist()
    if targets.ndim == 1:  # concatenated
        if sum(tls) != len(flat):
            raise ArgumentError(
                f"{op}: 1-D targets hold {len(flat)} labels, target_lengths sum to {sum(tls)}"
            )
        seqs, at = [], 0
        for k in tls:
            seqs.append(flat[at : at + k])
            at += k
    elif targets.ndim == 2 and targets.shape[0] == n:
        if any(k > targets.shape[1] for k in tls):
            raise ArgumentError(f"{op}: a target length exceeds the {targets.shape[1]} columns of targets")
        seqs = [row[:k] for row, k in zip(flat, tls)]
    else:
        raise ShapeError(f"{op}: targets must be (N, S) or 1-D concatenated, got {tuple(targets.shape)}")
    if any(lab == blank or not 0 <= lab < c for seq in seqs for lab in seq):
        raise OutOfRangeError(
            f"{op}: target labels must be class indices in [0, {c}) other than blank {blank}"
        )
    width = 2 * max(tls, default=0) + 1
    # the extended labels (blank, l1, blank, l2, ..., blank), and where a state may skip
    # the blank before it (l_s differs from l_(s-2))
    ext = [[blank] * width for _ in range(n)]
    skip = [[False] * width for _ in range(n)]
    for i, seq in enumerate(seqs):
        for j, lab in enumerate(seq):
            ext[i][2 * j + 1] = lab
            skip[i][2 * j + 1] = j > 0 and seq[j - 1] != lab
    dev = log_probs.device
    index = _core.from_numpy(np.array(ext)).long()
    can_skip = _core.from_numpy(np.array(skip)).to(dev)
    neg_inf = _core.full([], float("-inf"), log_probs.dtype).to(dev)
    starts = _core.from_numpy(np.array([[s < 2 for s in range(width)] for _ in range(n)])).to(dev)
    alpha = log_probs[0].gather(1, index).masked_fill(~starts, neg_inf)
    for t in range(1, t_max):
        live = [t < i for i in ins]
        if not any(live):
            break
        emit = log_probs[t].gather(1, index)
        step = _logaddexp3(alpha, _shift(alpha, 1), _shift(alpha, 2).masked_fill(~can_skip, neg_inf)) + emit
        # a sequence past its last frame keeps its alphas
        alpha = _core.where(_core.from_numpy(np.array(live)).reshape(n, 1).to(dev), step, alpha)
    ends = _core.from_numpy(np.array([2 * k for k in tls])).long().reshape(n, 1)
    last = alpha.gather(1, ends)
    before = alpha.gather(1, (ends - 1).clamp(min=0))
    has_label = _core.from_numpy(np.array([k > 0 for k in tls])).reshape(n, 1).to(dev)
    ll = _logaddexp3(last, before.masked_fill(~has_label, neg_inf), neg_inf.expand(n, 1))
    loss = -ll.reshape(n)
    if any(i == 0 for i in ins):  # no frames: only an empty target is possible, at log 1
        empty = _core.from_numpy(np.array([i == 0 for i in ins])).to(dev)
        none = _core.from_numpy(np.array([float(k) for k in tls])).to(log_probs.dtype).to(dev)
        loss = loss.masked_fill(empty, _core.full([], 0.0, loss.dtype).to(dev)) + (
            none.masked_fill(none > 0, _core.full([], float("inf"), loss.dtype).to(dev))
        ).masked_fill(~empty, _core.full([], 0.0, loss.dtype).to(dev))
    if zero_infinity:
        loss = loss.masked_fill(loss == float("inf"), _core.full([], 0.0, loss.dtype).to(dev))
    if reduction == "mean":
        per_label = _core.from_numpy(np.array([float(max(k, 1)) for k in tls])).to(loss.dtype).to(dev)
        out = (loss / per_label).mean()
    elif reduction in ("sum", "none"):
        out = _reduce(loss, reduction, op)
    else:
        raise ArgumentError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return out.squeeze(0) if unbatched and reduction == "none" else out


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


class CTCLoss(_Loss):
    """Connectionist temporal classification loss (see `ctc_loss`):
    `forward(log_probs, targets, input_lengths, target_lengths)`."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction)
        self.blank, self.zero_infinity = int(blank), bool(zero_infinity)

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(
            log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction, self.zero_infinity
        )

    def get_config(self) -> dict:
        return {"blank": self.blank, "reduction": self.reduction, "zero_infinity": self.zero_infinity}


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood with a predicted variance (see `gaussian_nll_loss`)."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = bool(full), float(eps)

    def forward(self, input, target, var):  # noqa: A002
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)

    def get_config(self) -> dict:
        return {"full": self.full, "eps": self.eps, "reduction": self.reduction}
