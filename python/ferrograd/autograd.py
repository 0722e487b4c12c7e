"""Grad mode switches and `gradcheck`, the finite-difference check of derivative rules."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Callable

import numpy as np

from . import _core
from ._core import Tensor
from ._creation import tensor, zeros


class _GradMode:
    """Base of the grad-mode context managers; also usable as decorators."""

    _enabled = True

    def __enter__(self):
        self._prev = _core.set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _core.set_grad_enabled(self._prev)
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801  (PyTorch's name)
    """Context manager and decorator that stops ops from recording the autograd graph.

    >>> with fg.no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    _enabled = False


inference_mode = no_grad  # PyTorch's faster no_grad; the same thing here


class enable_grad(_GradMode):  # noqa: N801
    """Context manager and decorator that turns graph recording back on."""

    _enabled = True


class set_grad_enabled:  # noqa: N801
    """Sets grad mode; works as a plain call or as a context manager."""

    def __init__(self, mode: bool):
        self._prev = _core.set_grad_enabled(bool(mode))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _core.set_grad_enabled(self._prev)
        return False


class GradcheckError(RuntimeError):
    """Raised by `gradcheck` when analytic and numerical gradients disagree."""


def _jacobian_numerical(fn, inputs, i, eps):
    base = [x.detach() for x in inputs]
    x0 = inputs[i].numpy().astype(np.float64)
    cols = []
    with no_grad():
        for k in range(x0.size):
            outs = []
            for sign in (1.0, -1.0):
                xp = x0.copy().reshape(-1)
                xp[k] += sign * eps
                args = list(base)
                args[i] = tensor(xp.reshape(x0.shape), dtype=inputs[i].dtype)
                outs.append(np.asarray(fn(*args).numpy(), dtype=np.float64).reshape(-1))
            cols.append((outs[0] - outs[1]) / (2 * eps))
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0))


def gradcheck(
    fn: Callable,
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Checks the gradients of `fn` at `inputs` against central finite differences.

    Every input that requires grad must be float64. The full Jacobian is compared, one
    backward per output element, so keep the inputs small.

    >>> x = fg.randn(3, 4, dtype=fg.float64, requires_grad=True)
    >>> fg.autograd.gradcheck(lambda x: x.tanh().sum(), (x,))
    True
    """
    inputs = tuple(inputs)
    for j, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != _core.dtype.float64:
            raise ValueError(f"gradcheck: input {j} requires grad but is {x.dtype!r}; use float64")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError("gradcheck: fn must return a Tensor")
    n_out = out.numel()
    checked = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    analytic = {j: np.zeros((n_out, inputs[j].numel())) for j in checked}
    for r in range(n_out):
        for j in checked:
            inputs[j].grad = None
        out = fn(*inputs)
        if not out.requires_grad:
            break  # fn does not depend on the inputs: analytic Jacobian is zero
        seed = zeros(n_out, dtype=out.dtype)
        seed_np = np.zeros(n_out)
        seed_np[r] = 1.0
        seed = Tensor.reshape(_core.from_numpy(seed_np.astype(np.float64)).to(out.dtype), list(out.shape))
        out.backward(seed)
        for j in checked:
            g = inputs[j].grad
            if g is not None:
                analytic[j][r] = g.numpy().reshape(-1)
    for j in checked:
        inputs[j].grad = None
        num = _jacobian_numerical(fn, inputs, j, eps)
        if not np.allclose(analytic[j], num, atol=atol, rtol=rtol, equal_nan=True):
            diff = np.abs(analytic[j] - num)
            k = np.unravel_index(np.nanargmax(diff), diff.shape)
            msg = (
                f"gradcheck: Jacobian mismatch for input {j} at (output {k[0]}, element {k[1]}): "
                f"analytic {analytic[j][k]:.8g} vs numerical {num[k]:.8g} (max abs diff {diff[k]:.3g})"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def backward(tensors, grad_tensors=None, retain_graph: bool = False) -> None:
    """Runs backward from one tensor or several (summing their contributions)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors] if grad_tensors is not None else None
    grad_tensors = grad_tensors or [None] * len(tensors)
    for t, g in zip(tensors, grad_tensors):
        t.backward(g, retain_graph=retain_graph)
