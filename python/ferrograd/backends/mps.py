"""``torch.backends.mps``: Apple's Metal Performance Shaders device "mps", which ferrograd
does not have. Both queries answer False, so ``"mps" if fg.backends.mps.is_available() else
"cpu"`` picks the CPU; on a Mac, ferrograd's own GPU device is "gpu", when
``fg.gpu.is_available()`` says so.
"""

from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """Whether tensors can be placed on "mps": never, ferrograd has no MPS device (False)."""
    return False


def is_built() -> bool:
    """Whether this build has an MPS backend: it has none (False)."""
    return False
