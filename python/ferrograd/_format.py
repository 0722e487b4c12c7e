"""Printing tensors the way NumPy prints arrays, with PyTorch's decorations."""

from __future__ import annotations

import numpy as np

_DEFAULT_DTYPES = ("float32", "int64", "bool")


def tensor_repr(t) -> str:
    """The `repr` of a tensor: values as NumPy shows them, then dtype and autograd state."""
    # NumPy has no bfloat16: its values print through float32 (exactly, it is a prefix)
    a = t.detach().float().numpy() if str(t.dtype).endswith("bfloat16") else t.numpy()
    prefix = "tensor("
    if a.size == 0:
        body = "[]"
    else:
        body = np.array2string(
            a, separator=", ", prefix=prefix, threshold=1000, edgeitems=3, precision=4, suppress_small=False
        )
    extras = []
    if a.size == 0 and a.shape != (0,):
        extras.append(f"size={tuple(a.shape)}")
    name = str(t.dtype).split(".")[-1]
    if name not in _DEFAULT_DTYPES:
        extras.append(f"dtype={t.dtype!r}")
    fn = t.grad_fn
    if fn is not None:
        extras.append(f"grad_fn={fn!r}")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    tail = "".join(", " + e for e in extras)
    return f"{prefix}{body}{tail})"
