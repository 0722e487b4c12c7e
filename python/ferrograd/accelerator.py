"""PyTorch 2.6's ``torch.accelerator``: the machine's accelerator, whatever its kind, so one
line picks the device:

>>> import ferrograd as fg
>>> device = fg.accelerator.current_accelerator() if fg.accelerator.is_available() else "cpu"

ferrograd has one accelerator, its GPU device "gpu"; every answer comes from
``fg.gpu.is_available()``, the same probe ``fg.cuda.is_available()`` uses.
"""

from __future__ import annotations

from . import gpu
from ._device import device

__all__ = [
    "is_available",
    "current_accelerator",
    "device_count",
    "current_device_index",
    "set_device_index",
    "synchronize",
]


def is_available() -> bool:
    """Whether an accelerator can be used now: ``fg.gpu.is_available()``."""
    return gpu.is_available()


def device_count() -> int:
    """How many accelerators there are: 1 when the GPU is available (ferrograd uses one
    adapter), else 0."""
    return 1 if gpu.is_available() else 0


def current_accelerator(check_available: bool = False) -> device | None:
    """The accelerator as a device, ``fg.device("gpu")`` (its ``type`` is "gpu", a name
    ``.to()`` takes), or None when there is none. `check_available` is PyTorch's argument;
    the answer is always checked here, so it changes nothing."""
    return device("gpu") if gpu.is_available() else None


def current_device_index() -> int:
    """The index of the accelerator in use: 0, the only one. RuntimeError when there is
    none, as PyTorch."""
    if not gpu.is_available():
        raise RuntimeError("accelerator: no accelerator is available (fg.gpu.is_available() is False)")
    return 0


def set_device_index(index) -> None:
    """Selects the accelerator by index: only 0 exists (or a device naming it, such as
    "cuda:0"); anything else raises ValueError, and RuntimeError when there is none."""
    current_device_index()  # raises when there is no accelerator
    if isinstance(index, str):
        dev = device(index)  # DeviceError for an unknown name
        ok = dev == "gpu" and dev.index in (None, 0)
    else:
        ok = isinstance(index, int) and not isinstance(index, bool) and index == 0
    if not ok:
        raise ValueError(f"accelerator: there is one accelerator, index 0; got {index!r:.40}")


def synchronize(device_index=None) -> None:
    """Waits until the queued GPU work has finished (``fg.gpu.synchronize()``); nothing to
    wait for when there is no accelerator. `device_index`, if given, must name the one
    accelerator (see `set_device_index`)."""
    if not gpu.is_available():
        return
    if device_index is not None:
        set_device_index(device_index)
    gpu.synchronize()
