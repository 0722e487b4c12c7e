"""Named tuples that ops return, as ``torch.return_types``: ``Tensor.max(dim)`` and
``Tensor.min(dim)`` along one int dim give ``(values, indices)``, so PyTorch's
``_, pred = out.max(1)`` and ``out.max(dim=1).indices`` work unchanged; so do ``sort`` and
``topk``."""

from __future__ import annotations

from typing import NamedTuple

from ._core import Tensor

__all__ = ["max", "min", "sort", "topk", "median", "kthvalue", "cummax", "cummin", "mode", "aminmax"]


class max(NamedTuple):  # noqa: N801, A001 (PyTorch's names)
    """The maxima along a dim and their indices (int64; the first one among ties)."""

    values: Tensor
    indices: Tensor


class min(NamedTuple):  # noqa: N801, A001
    """The minima along a dim and their indices (int64; the first one among ties)."""

    values: Tensor
    indices: Tensor


class sort(NamedTuple):  # noqa: N801
    """Sorted values and the indices they came from (int64)."""

    values: Tensor
    indices: Tensor


class topk(NamedTuple):  # noqa: N801
    """The k largest (or smallest) values and their indices (int64)."""

    values: Tensor
    indices: Tensor


class median(NamedTuple):  # noqa: N801
    """The (lower) medians along a dim and their indices (int64)."""

    values: Tensor
    indices: Tensor


class kthvalue(NamedTuple):  # noqa: N801
    """The k-th smallest values along a dim and their indices (int64)."""

    values: Tensor
    indices: Tensor


class cummax(NamedTuple):  # noqa: N801
    """Running maxima along a dim and their indices (int64)."""

    values: Tensor
    indices: Tensor


class cummin(NamedTuple):  # noqa: N801
    """Running minima along a dim and their indices (int64)."""

    values: Tensor
    indices: Tensor


class mode(NamedTuple):  # noqa: N801
    """The most frequent values along a dim and the index of each one's last occurrence."""

    values: Tensor
    indices: Tensor


class aminmax(NamedTuple):  # noqa: N801
    """The minimum and the maximum."""

    min: Tensor
    max: Tensor
