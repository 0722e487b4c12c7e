"""NumPy's advanced indexing beyond the first dim (`x[:, idx]`, `x[rows, cols]`,
`x[..., mask]`, index arrays that broadcast, `None` and slices among them), reads and writes.
The bindings call `advanced` when a tuple key holds an index array; everything else they
index themselves.

The positions a key selects are found by indexing `arange(numel).reshape(shape)` with the
same key in NumPy: NumPy's rules (broadcasting of index arrays, where the result's dims go,
negative indices, bool masks) come for free, and the values are then one gather of the
flattened tensor (`index_select`, differentiable, on either device) or one write into it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._core import OutOfRangeError, Tensor

# positions are built on the host: beyond this many elements a key's position table would
# cost more memory than it is worth (int64, 8 bytes each)
MAX_ELEMENTS = 1 << 27

_READ = object()


def _positions(t: Tensor, key: tuple) -> np.ndarray:
    items = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.cpu().numpy()
        elif isinstance(k, list):
            k = np.asarray(k)
        items.append(k)
    n = t.numel()
    if n > MAX_ELEMENTS:
        raise OutOfRangeError(
            f"index: advanced indexing beyond the first dim of a tensor of {n} elements is not supported "
            f"(at most {MAX_ELEMENTS}); index the first dim, or reshape"
        )
    try:
        return np.arange(n, dtype=np.int64).reshape(tuple(t.shape))[tuple(items)]
    except IndexError as e:
        raise OutOfRangeError(f"index: {e} (tensor of shape {tuple(t.shape)})") from None


def advanced(t: Tensor, key: tuple, value: Any = _READ) -> Tensor | None:
    """`t[key]` (a new tensor, differentiable), or `t[key] = value` in place."""
    pos = _positions(t, key)
    flat_pos = _core.from_numpy(np.ascontiguousarray(pos.reshape(-1)))
    if value is _READ:
        return t.reshape(-1).index_select(0, flat_pos).reshape(*pos.shape)
    if not t.is_contiguous():
        raise OutOfRangeError(
            "index: advanced index assignment needs a contiguous tensor; call .contiguous() first"
        )
    if isinstance(value, Tensor):
        value = value.expand(*pos.shape).reshape(-1) if pos.ndim else value.reshape(-1)
    flat = t.view(-1)
    flat[flat_pos] = value
    return None
