"""ferrograd's Python-side error classes, in a module with no dependencies of its own, so
every layer (configs in `nn`, checkpoints in `io`) raises the same class.

The engine's errors (`ShapeError`, `DTypeError`, `DeviceError`, `InternalError`) come from
`ferrograd._core` and are exported as `fg.ShapeError`, ...; `CheckpointError` is also
`ferrograd.io.CheckpointError`.
"""

from __future__ import annotations


class CheckpointError(ValueError):
    """A file that is not a valid ferrograd/safetensors checkpoint, or does not fit the model."""


__all__ = ["CheckpointError"]
