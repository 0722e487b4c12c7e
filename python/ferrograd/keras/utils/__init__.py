"""Keras's `keras.utils` for dense-network scripts: `to_categorical` (also under Keras 2's
`keras.utils.np_utils`), `normalize`, `set_random_seed`, `custom_object_scope`."""

from __future__ import annotations

import random

import numpy as np

from ... import _core
from .._scope import CustomObjectScope, custom_object_scope
from . import np_utils
from .np_utils import normalize, to_categorical


def set_random_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global generator and ferrograd's (weights, dropout
    masks and shuffling), as Keras's does for its backends."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"set_random_seed: seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _core.manual_seed(seed)


__all__ = [
    "to_categorical",
    "normalize",
    "np_utils",
    "set_random_seed",
    "custom_object_scope",
    "CustomObjectScope",
]
