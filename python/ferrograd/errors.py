"""ferrograd's Python-side error classes, in a module with no dependencies of its own, so
every layer (configs in `nn`, checkpoints in `io`) raises the same class.

The engine's errors (`ShapeError`, `DTypeError`, `DeviceError`, `InternalError`) come from
`ferrograd._core` and are exported as `fg.ShapeError`, ...; `CheckpointError` is also
`ferrograd.io.CheckpointError`; `IntegerDivisionError` is `fg.IntegerDivisionError`.
`TrainingWarning` is the category of the warnings of
`ferrograd.diagnostics` (`fg.diagnose`, `fit(monitor=True)`), exported as
`fg.TrainingWarning`.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A file that is not a valid ferrograd/safetensors checkpoint, or does not fit the model."""


class IntegerDivisionError(ZeroDivisionError, RuntimeError):
    """An integer division, floor division or remainder by zero: Python's ZeroDivisionError,
    and the RuntimeError PyTorch raises there, so either `except` clause catches it."""


class TrainingWarning(UserWarning):
    """A problem that keeps a network from training well, found by `ferrograd.diagnose` or
    `fit(..., monitor=True)`: a SELU network that is not self-normalizing, dead ReLU units,
    vanishing or exploding gradients. Each message names its fix. Being a warning category
    of its own, it can be silenced or made an error without touching other warnings:

    >>> warnings.simplefilter("ignore", fg.TrainingWarning)   # or "error" to raise it
    """


__all__ = ["CheckpointError", "IntegerDivisionError", "TrainingWarning"]
