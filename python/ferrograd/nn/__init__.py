"""Layers and modules (`ferrograd.nn`), PyTorch-shaped.

`nn` is the layer below training: it imports nothing of `train`, `io`, `callbacks`,
`models` or `optim` (tests/test_layering.py checks it). Its modules: `module` (`Module`),
`layers`, `loss` (every loss function and class; re-exported here and in `functional`),
`functional`, `init`, `utils` and `config` (`to_config`/`from_config`, the layer
`REGISTRY`)."""

from __future__ import annotations

from . import config, functional, init, loss, utils
from .config import from_config, to_config
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
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, Parameter

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
    "loss",
    "config",
    "to_config",
    "from_config",
]
