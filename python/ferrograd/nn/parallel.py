"""PyTorch's `torch.nn.parallel` names: `DistributedDataParallel` (defined in
`ferrograd.distributed`, which sits above `nn`: resolved on first use, so importing `nn`
never imports the distributed layer)."""

from __future__ import annotations

from typing import Any

__all__ = ["DistributedDataParallel"]  # noqa: F822  (resolved by __getattr__)


def __getattr__(name: str) -> Any:
    if name == "DistributedDataParallel":
        from ..distributed import DistributedDataParallel  # noqa: PLC0415

        return DistributedDataParallel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
