"""What the training layer and the diagnostics both ask of a model: where it lives, and the
model without its final probability layer (the losses take logits). Below both, so
`train` (which uses the diagnostics' monitor) and `diagnostics` need not import each other."""

from __future__ import annotations

from .nn import Module, Sequential, Sigmoid, Softmax


def logit_model(model: Module, kind: str) -> Module:
    """The model without a final Softmax/Sigmoid, so classification losses get logits."""
    if isinstance(model, Sequential) and len(model) > 1:
        last = model[-1]
        if (kind == "cross_entropy" and isinstance(last, Softmax)) or (
            kind == "binary_cross_entropy" and isinstance(last, Sigmoid)
        ):
            return model[:-1]
    return model


def device_of(model: Module) -> str:
    """Where the model's parameters live ("cpu" for a model without any)."""
    for p in model.parameters():
        return p.device
    return "cpu"
