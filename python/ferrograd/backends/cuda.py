"""``torch.backends.cuda``: ``is_built()`` and the ``matmul`` precision switches.

ferrograd's "cuda" is its wgpu GPU backend (``fg.cuda`` is ``fg.gpu``), so ``is_built()``
says whether this build has that backend; whether a GPU is usable now is
``fg.cuda.is_available()``. ``matmul.allow_tf32`` and its siblings are accepted and have no
effect: ferrograd's float32 matmul always multiplies in float32.

>>> import ferrograd as fg
>>> fg.backends.cuda.matmul.allow_tf32 = True  # accepted, no effect
"""

from __future__ import annotations

from .. import _core
from .._core import DeviceError

__all__ = ["is_built", "matmul"]


def is_built() -> bool:
    """Whether this build of ferrograd has its GPU backend (the device "gpu", also named
    "cuda"): True for the wheels, False for a CPU-only build. It does not mean a GPU is
    present: that is ``fg.cuda.is_available()``."""
    try:
        _core.gpu_matmul_kernels()  # a constant list in GPU builds; it starts no device
    except DeviceError:
        return False
    return True


class _MatmulFlags:
    """``torch.backends.cuda.matmul``: the precision switches scripts set. Each is accepted
    and has no effect (float32 products are computed in float32); a name PyTorch does not
    have raises AttributeError, so a typo is not silently ignored."""

    __slots__ = (
        "allow_tf32",
        "allow_fp16_reduced_precision_reduction",
        "allow_bf16_reduced_precision_reduction",
    )

    def __init__(self) -> None:
        self.allow_tf32 = False  # PyTorch's default since 1.12
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self) -> str:
        flags = ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__)
        return f"matmul({flags}; no effect in ferrograd)"


matmul = _MatmulFlags()
