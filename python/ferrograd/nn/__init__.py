"""Layers and modules (`ferrograd.nn`), PyTorch-shaped."""

from __future__ import annotations

from .. import losses as _losses
from . import functional, init, utils
from .layers import (
    ELU,
    GELU,
    SELU,
    AlphaDropout,
    BatchNorm1d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ModuleDict,
    ModuleList,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import Module, Parameter, from_config, to_config


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
    """Mean squared error (see `ferrograd.losses.mse`)."""

    kind = "mse"

    def forward(self, pred, target):
        return _losses.mse(pred, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits (see `ferrograd.losses.cross_entropy`); `weight`
    and `ignore_index` as PyTorch's (see `functional.cross_entropy`)."""

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
        return functional.cross_entropy(
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
        return functional.nll_loss(log_probs, target, self.weight, self.ignore_index, self.reduction)

    def get_config(self) -> dict:
        if self.weight is not None:
            raise NotImplementedError("NLLLoss with class weights has no config; rebuild it in code")
        return {"reduction": self.reduction, "ignore_index": self.ignore_index}


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, pred, target):
        return functional.l1_loss(pred, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy from probabilities (see `functional.binary_cross_entropy`)."""

    def forward(self, probs, target):
        return functional.binary_cross_entropy(probs, target, self.reduction)


class HuberLoss(_Loss):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), for d = pred - target."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, pred, target):
        return functional.huber_loss(pred, target, self.reduction, self.delta)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "delta": self.delta}


class SmoothL1Loss(_Loss):
    """Huber loss divided by `beta`: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, pred, target):
        return functional.smooth_l1_loss(pred, target, self.reduction, self.beta)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "beta": self.beta}


class BCEWithLogitsLoss(_Loss):
    """Sigmoid binary cross-entropy from logits (see `ferrograd.losses.binary_cross_entropy`)."""

    kind = "binary_cross_entropy"

    def forward(self, logits, target):
        return _losses.binary_cross_entropy(logits, target, self.reduction)


__all__ = [
    "Module",
    "Parameter",
    "Linear",
    "BatchNorm1d",
    "Dropout",
    "AlphaDropout",
    "ReLU",
    "SELU",
    "ELU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Identity",
    "LeakyReLU",
    "GELU",
    "LogSoftmax",
    "Flatten",
    "ModuleDict",
    "ModuleList",
    "Sequential",
    "Residual",
    "MSELoss",
    "CrossEntropyLoss",
    "BCEWithLogitsLoss",
    "BCELoss",
    "HuberLoss",
    "SmoothL1Loss",
    "NLLLoss",
    "L1Loss",
    "init",
    "utils",
    "functional",
    "to_config",
    "from_config",
]
