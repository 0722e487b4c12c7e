"""Automatic mixed precision, as ``torch.amp``: `autocast` and `GradScaler`.

Under ``fg.autocast("gpu")`` the matrix products on that device (``@``, ``matmul``, ``mm``,
``bmm``, ``F.linear`` and ``nn.Linear``, convolutions) cast their float32 operands to float16
(bfloat16 with ``dtype=fg.bfloat16``, the default on the CPU) and compute there, while
softmax, log_softmax, the losses, batch norm and sums cast half inputs to float32, as
PyTorch's autocast lists do. Float64 tensors are left alone. The casts are ordinary
differentiable casts: the parameters stay float32 (the "master weights") and get float32
gradients, so any optimizer works unchanged.

Float16 gradients of small losses underflow; `GradScaler` multiplies the loss by a large
scale before ``backward``, divides the gradients by it before the optimizer step, skips
steps whose gradients hold inf or NaN (lowering the scale), and raises the scale again
after ``growth_interval`` clean steps::

    scaler = fg.GradScaler()
    for x, y in batches:
        opt.zero_grad()
        with fg.autocast("gpu", dtype=fg.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

On the GPU the scaler keeps its scale on the device, as PyTorch's does: the gradients are
unscaled and checked by one multi-tensor kernel, SGD, Adam(W) and Adadelta skip their own
step where it found inf or NaN (their kernels read the flag; Adam's bias corrections leave
the skipped steps out), and ``update`` moves the scale in a kernel too. So a mixed-precision
step reads nothing back and can be captured (``fg.gpu.graph``); ``get_scale()`` and
``state_dict()`` read the scale when asked. Other optimizers (or parameters without a
gradient) read the flag back once a step and skip on the host.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import numpy as np

from . import _core
from ._core import Tensor

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype"]

_F = TypeVar("_F", bound=Callable[..., Any])

_HALVES = (_core.dtype.float16, _core.dtype.bfloat16)
_F32_MAX = float(np.finfo(np.float32).max)


def _on(t: Tensor, device: str) -> Tensor:
    """`t` on `device` (itself when already there: `to` would copy)."""
    return t if t.device == device else t.to(device)


def _f32(values: list) -> Tensor:
    """A float32 host tensor of `values`."""
    return _core.from_numpy(np.array(values, np.float32))


def _device_type(device_type: str) -> str:
    """ "cpu", or "gpu" for PyTorch's "cuda" and ferrograd's "gpu"/"wgpu"."""
    if not isinstance(device_type, str):
        raise TypeError(f"autocast: device_type must be a str, got {type(device_type).__name__}")
    d = device_type.split(":")[0]
    if d == "cpu":
        return "cpu"
    if d in ("gpu", "cuda", "wgpu"):
        return "gpu"
    raise ValueError(f"autocast: device_type must be 'cpu', 'gpu' or 'cuda', got {device_type!r}")


def is_autocast_enabled(device_type: str = "gpu") -> bool:
    """Whether autocast is on for `device_type` on this thread."""
    return _core.autocast_dtype(_device_type(device_type)) is not None


def get_autocast_dtype(device_type: str = "gpu"):
    """The dtype autocast lowers products to on `device_type` (its default when off:
    float16 on the GPU, bfloat16 on the CPU, as PyTorch's)."""
    dev = _device_type(device_type)
    return _core.autocast_dtype(dev) or (_core.dtype.float16 if dev == "gpu" else _core.dtype.bfloat16)


def full_precision(t: Tensor) -> Tensor:
    """`t` cast to float32 when it is a half and autocast is on for its device: the inputs of
    the float32 ops written in Python (the losses)."""
    if isinstance(t, Tensor) and t.dtype in _HALVES and _core.autocast_dtype(t.device) is not None:
        return t.float()
    return t


class autocast:
    """A context manager (and decorator) that runs the products inside it in half precision
    on one device, as ``torch.autocast(device_type, dtype=None, enabled=True)``.

    `device_type` is "gpu" (or PyTorch's "cuda") or "cpu"; `dtype` float16 or bfloat16
    (default float16 on the GPU, bfloat16 on the CPU). ``enabled=False`` turns autocast off
    inside an autocast region. Autocast is per thread and nests; leaving restores the
    previous state. Run ``backward`` outside the region, as PyTorch recommends (its ops
    take the dtypes the forward chose either way).
    """

    def __init__(self, device_type: str = "gpu", dtype=None, enabled: bool = True, cache_enabled=None):
        self.device = _device_type(device_type)
        if dtype is None:
            dtype = _core.dtype.float16 if self.device == "gpu" else _core.dtype.bfloat16
        if dtype not in _HALVES:
            raise ValueError(f"autocast: dtype must be float16 or bfloat16, got {dtype}")
        self.fast_dtype = dtype
        self.enabled = bool(enabled)
        self._prev: list = []

    def __enter__(self) -> autocast:
        self._prev.append(_core.set_autocast(self.device, self.fast_dtype if self.enabled else None))
        return self

    def __exit__(self, *exc) -> None:
        _core.set_autocast(self.device, self._prev.pop())

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapped  # type: ignore[return-value]


_READY, _UNSCALED, _STEPPED = 0, 1, 2


class GradScaler:
    """Dynamic loss scaling for float16 training, as ``torch.amp.GradScaler``.

    `scale(loss)` multiplies by the current scale (``init_scale``, 2**16 by default);
    `step(optimizer)` divides the gradients by it (unless `unscale_` already did, e.g. to
    clip them) and runs ``optimizer.step()`` only when every gradient is finite; `update()`
    then multiplies the scale by ``backoff_factor`` (0.5) after a skipped step, or by
    ``growth_factor`` (2.0) after ``growth_interval`` (2000) steps in a row without one.
    With ``enabled=False`` every method passes through, so one script serves both
    precisions. The parameters and their gradients stay float32 (the master weights).
    """

    def __init__(
        self,
        device: str = "gpu",
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ):
        self.device = _device_type(device)
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if not (isinstance(growth_interval, int) and growth_interval > 0):
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got {growth_interval}")
        if not init_scale > 0:
            raise ValueError(f"GradScaler: init_scale must be > 0, got {init_scale}")
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0
        self._enabled = bool(enabled)
        self._per_optimizer: dict[int, dict] = {}
        # on the GPU, the scale lives there: float32 (scale, 1 / scale, clean steps in a row,
        # unused), made at the first scale() of a GPU tensor; then `_scale` and
        # `_growth_tracker` are stale and the device holds the truth
        self._state_t: Tensor | None = None
        self._scale_view: Tensor | None = None

    def is_enabled(self) -> bool:
        """Whether scaling is on (``enabled`` at construction)."""
        return self._enabled

    def get_scale(self) -> float:
        """The current scale (1.0 when disabled; a read-back when it lives on the GPU)."""
        if not self._enabled:
            return 1.0
        self._sync_host()
        return self._scale

    def _sync_host(self) -> None:
        """Brings the host's copy of a scale kept on the device up to date (a read-back)."""
        if self._state_t is not None:
            scale, _, tracker, _ = self._state_t.tolist()
            self._scale, self._growth_tracker = float(scale), int(tracker)

    def _on_device(self, device: str) -> bool:
        """Whether the scale lives on the GPU, moving it there at the first GPU tensor."""
        if self._state_t is None and device != "cpu":
            from . import _graphs

            if _graphs.capturing is not None:
                raise RuntimeError(
                    "GradScaler: its first step must not be inside a captured GPU step (it moves the "
                    "scale to the device); run one step before capturing"
                )
            values = [self._scale, 1.0 / self._scale, float(self._growth_tracker), 0.0]
            self._state_t = _f32(values).to(device)
            self._scale_view = self._state_t[0]
        return self._state_t is not None

    def get_growth_factor(self) -> float:
        """The factor the scale grows by after `growth_interval` clean steps."""
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        """The factor the scale shrinks by after a step with inf/NaN gradients."""
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        """Clean steps in a row before the scale grows."""
        return self._growth_interval

    def scale(self, outputs):
        """`outputs` (a tensor, or a list/tuple of them, nested) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._on_device(outputs.device):
                assert self._scale_view is not None
                return outputs * _on(self._scale_view, outputs.device)
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(
            f"GradScaler.scale: expected a Tensor or a list/tuple of them, got {type(outputs).__name__}"
        )

    def _state(self, optimizer) -> dict:
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _READY, "found_inf": False})

    def unscale_(self, optimizer) -> None:
        """Divides `optimizer`'s gradients by the scale in place (once between updates), and
        notes whether any holds inf or NaN; call it before clipping gradients."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["stage"] == _UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if st["stage"] == _STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        state = self._state_t
        inv = 1.0 / self._scale  # (on the device: element 1 of the state)
        # on the GPU, all at once (a multi-tensor kernel: a few dispatches, not five a tensor):
        # a 0-d float32 flag, 1.0 where a gradient held inf or NaN
        found = _core._unscale_grads(grads, inv, state)
        grad_mode = _core.set_grad_enabled(False)  # (autograd.no_grad, which imports this module)
        try:
            bad = None  # otherwise, one tensor at a time: the count of inf and NaN
            for g in grads if found is None else []:
                g.mul_(inv if state is None else _on(state[1], g.device))
                # counted on the gradient's device
                nonfinite = (~g.isfinite()).sum()
                bad = nonfinite if bad is None else bad + nonfinite.to(bad.device)
            if found is None:
                found = (bad > 0).to(_core.dtype.float32) if bad is not None else None
            if state is None:  # the host decides: read back once
                st["found_inf"] = found is not None and float(found.item()) > 0
            else:  # the device decides: the flag beside the scale, nothing read
                st["found_inf"] = _on(found, state.device) if found is not None else state[3] * 0.0
        finally:
            _core.set_grad_enabled(grad_mode)
        st["stage"] = _UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscales `optimizer`'s gradients (unless `unscale_` did) and runs its ``step``
        when they are all finite; otherwise skips it. Returns what ``step`` returned, or
        None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._state(optimizer)
        if st["stage"] == _STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == _READY:
            self.unscale_(optimizer)
        st["stage"] = _STEPPED
        found = st["found_inf"]
        if isinstance(found, Tensor):
            # the kernels skip the step themselves where the flag is set (no read-back);
            # otherwise read it and decide here
            gated = getattr(optimizer, "_gated_step", None)
            if not (args or kwargs) and gated is not None and gated(found):
                return None
            found = bool(found.item())
        if found:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adjusts the scale after this iteration's steps (or sets `new_scale`): backoff
        after a skipped step, growth after `growth_interval` clean ones."""
        if not self._enabled:
            return
        if self._state_t is not None:
            self._update_on_device(new_scale)
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
        else:
            checked = [s for s in self._per_optimizer.values() if s["stage"] != _READY]
            if not checked:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(s["found_inf"] for s in checked):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    # a scale past float32's range stays where it is (PyTorch keeps a float32 scale)
                    if self._scale * self._growth_factor <= _F32_MAX:
                        self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer.clear()

    def _update_on_device(self, new_scale) -> None:
        """`update` of a scale kept on the GPU: one kernel, nothing read back."""
        state = self._state_t
        assert state is not None
        grad_mode = _core.set_grad_enabled(False)
        try:
            if new_scale is not None:
                v = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
                state[0:2].copy_(_f32([v, 1.0 / v]).to(state.device))
            else:
                founds = [s["found_inf"] for s in self._per_optimizer.values() if s["stage"] != _READY]
                if not founds:
                    raise AssertionError("No inf checks were recorded prior to update.")
                found = founds[0]
                for f in founds[1:]:
                    found = found + f
                done = _core._amp_update_scale(
                    state, found, self._growth_factor, self._backoff_factor, self._growth_interval
                )
                if not done:
                    raise RuntimeError("GradScaler.update: the device has no kernel for the scale's update")
        finally:
            _core.set_grad_enabled(grad_mode)
        self._per_optimizer.clear()

    def state_dict(self) -> dict:
        """The scale and its schedule, for checkpoints (empty when disabled, as PyTorch's)."""
        if not self._enabled:
            return {}
        self._sync_host()
        return {
            "scale": self._scale,
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores `state_dict()` output."""
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError(
                "GradScaler.load_state_dict: the state dict is empty (saved from a disabled scaler?)"
            )
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
        if self._state_t is not None:  # in place: a captured step reads this buffer
            values = [self._scale, 1.0 / self._scale, float(self._growth_tracker), 0.0]
            self._state_t.copy_(_f32(values).to(self._state_t.device))


class _CudaAmp:
    """``torch.cuda.amp``'s older spellings (the device fixed to the GPU), for scripts that
    still write ``torch.cuda.amp.autocast()`` and ``torch.cuda.amp.GradScaler()``."""

    @staticmethod
    def autocast(enabled: bool = True, dtype=None, cache_enabled=None) -> autocast:
        """``torch.cuda.amp.autocast``: `autocast("gpu", ...)`."""
        return autocast("gpu", dtype, enabled)

    class GradScaler(GradScaler):
        """``torch.cuda.amp.GradScaler``: `GradScaler("gpu", ...)`."""

        def __init__(
            self,
            init_scale: float = 2.0**16,
            growth_factor: float = 2.0,
            backoff_factor: float = 0.5,
            growth_interval: int = 2000,
            enabled: bool = True,
        ):
            super().__init__("gpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


cuda_amp = _CudaAmp()
