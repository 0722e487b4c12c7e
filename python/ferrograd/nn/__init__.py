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


class MSELoss(_Loss):
    """Mean squared error (see `ferrograd.losses.mse`)."""

    kind = "mse"

    def forward(self, pred, target):
        return _losses.mse(pred, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits (see `ferrograd.losses.cross_entropy`)."""

    kind = "cross_entropy"

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        return _losses.cross_entropy(logits, target, self.label_smoothing, self.reduction)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "label_smoothing": self.label_smoothing}


class NLLLoss(_Loss):
    """Negative log-likelihood of int64 labels under log-probabilities (a LogSoftmax output)."""

    def forward(self, log_probs, target):
        return functional.nll_loss(log_probs, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, pred, target):
        return functional.l1_loss(pred, target, self.reduction)


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
    "NLLLoss",
    "L1Loss",
    "init",
    "utils",
    "functional",
    "to_config",
    "from_config",
]
