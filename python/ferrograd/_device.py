"""Devices: `fg.devices()`, `fg.device` (PyTorch's `torch.device`) and `fg.gpu_available()`."""

from __future__ import annotations

from . import _core
from ._core import DeviceError, Tensor


def _check_device(device) -> None:
    if device is None or device == "cpu":
        return
    Tensor.to(_core.zeros([], None), device)  # raises DeviceError with the reason


def devices() -> list[dict]:
    """The compute devices: the CPU, then each GPU adapter wgpu finds, software ones too.

    `"software": True` marks an emulation of a GPU on the CPU (Vulkan device type "Cpu":
    Mesa's lavapipe/llvmpipe): it is listed but is not "the GPU" unless the environment
    variable `FERROGRAD_ALLOW_SOFTWARE_GPU=1` opts in (see `ferrograd.gpu.is_available`).

    >>> fg.devices()[0]
    {'name': 'cpu', 'backend': 'cpu', 'type': 'Cpu', 'software': False}
    """
    return [
        {"name": n, "backend": b, "type": t, "software": b != "cpu" and t == "Cpu"}
        for n, b, t in _core.devices()
    ]


class device(str):  # noqa: N801  (PyTorch's name)
    """A device, as `torch.device`: a string equal to its canonical name ("cpu" or "gpu"),
    so it goes wherever a device name does (`.to(dev)`, `device=dev`, `t.device == dev`),
    with PyTorch's `type` (the name as written: "cuda" for "cuda:0") and `index` (None
    unless written). "cuda", "cuda:0" and "gpu:0" name the one GPU; a GPU name raises
    DeviceError where there is none.

    >>> dev = fg.device("cuda" if fg.cuda.is_available() else "cpu")
    """

    type: str
    # PyTorch's attribute; it hides str.index (a search method no device code needs)
    index: int | None  # type: ignore[assignment]

    def __new__(cls, name: str, index: int | None = None) -> device:
        if not isinstance(name, str):
            raise TypeError(f"device: expected a device name, got {type(name).__name__}")
        _check_device(name)  # unknown names and absent GPUs raise here
        kind, _, idx = name.partition(":")
        self = super().__new__(cls, "cpu" if kind == "cpu" else "gpu")
        self.type = kind
        self.index = int(idx) if idx else index
        return self

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"


def gpu_available() -> bool:
    """Whether tensors can be placed on "gpu" on this machine (``fg.gpu.is_available()``,
    which says what counts: a software emulation needs ``FERROGRAD_ALLOW_SOFTWARE_GPU=1``)."""
    try:
        _core.gpu_info()
    except DeviceError:
        return False
    return True
