"""``torch.backends.cudnn``: NVIDIA's cuDNN library, which ferrograd does not use.

``is_available()`` is False and ``version()`` None. The switches scripts set for speed or
reproducibility (``enabled``, ``benchmark``, ``deterministic``, ``allow_tf32``) are plain
attributes here, with PyTorch's defaults: setting them is accepted and changes nothing.
ferrograd is deterministic by construction (its GPU matmul, when it times kernels, only
chooses among kernels that give identical results), so ``deterministic = True`` holds
whatever it is set to, and ``benchmark`` has nothing to tune.

>>> import ferrograd.backends.cudnn as cudnn
>>> cudnn.benchmark = True  # accepted, no effect
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["enabled", "benchmark", "deterministic", "allow_tf32", "is_available", "version", "flags"]

enabled: bool = True  # no effect: there is no cuDNN to enable
benchmark: bool = False  # no effect: nothing to autotune through cuDNN
deterministic: bool = False  # no effect: ferrograd's results are deterministic regardless
allow_tf32: bool = True  # no effect: no TF32 arithmetic anywhere


def is_available() -> bool:
    """Whether cuDNN can be used: never, ferrograd has no cuDNN backend (False)."""
    return False


def version() -> int | None:
    """cuDNN's version: None, as PyTorch answers where cuDNN is absent."""
    return None


@contextlib.contextmanager
def flags(
    enabled: bool = False, benchmark: bool = False, deterministic: bool = False, allow_tf32: bool = True
) -> Iterator[None]:
    """Sets the four switches inside a ``with`` block and restores them after, as PyTorch's
    ``torch.backends.cudnn.flags``; like the switches themselves, it changes no result."""
    names = ("enabled", "benchmark", "deterministic", "allow_tf32")
    here = globals()
    saved = {k: here[k] for k in names}
    here.update(enabled=enabled, benchmark=benchmark, deterministic=deterministic, allow_tf32=allow_tf32)
    try:
        yield
    finally:
        here.update(saved)
