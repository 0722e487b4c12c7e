"""PyTorch's ``torch.backends`` switches, so scripts that read or set them run unchanged.

ferrograd has one GPU backend (WGSL compute shaders through wgpu, the device named "gpu", or
"cuda" as PyTorch scripts write it) and no CUDA, cuDNN or Metal (MPS) backend. The queries
answer that truthfully (``mps.is_available()`` and ``cudnn.is_available()`` are False); the
switches scripts set (``cudnn.benchmark``, ``cudnn.deterministic``,
``cuda.matmul.allow_tf32``, ...) are accepted and have no effect: ferrograd's kernels give
the same results run after run, and its float32 matmul never rounds through TF32.

>>> import ferrograd as fg
>>> fg.backends.mps.is_available()
False
>>> fg.backends.cudnn.benchmark = True  # accepted, no effect
"""

from __future__ import annotations

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
