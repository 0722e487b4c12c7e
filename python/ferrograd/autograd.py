"""Grad mode switches, `gradcheck` (the finite-difference check of derivative rules),
`backward` and `grad` (one pass from several outputs; gradients returned rather than
accumulated), and derivative rules written in Python: `Function` (PyTorch's
`torch.autograd.Function`) and `queue_callback` (run something when the backward pass in
progress ends)."""

from __future__ import annotations

import functools
import sys as _sys
import types as _types
from collections.abc import Sequence
from typing import Callable

import numpy as np

from . import _core
from ._core import Tensor
from ._creation import tensor, zeros, zeros_like


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


def gradgradcheck(
    fn: Callable,
    inputs: Sequence,
    grad_outputs=None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Checks the second derivatives of `fn` at `inputs` (``torch.autograd.gradgradcheck``):
    the first-order gradients, computed with ``grad(..., create_graph=True)`` and seeded by
    `grad_outputs` (random float64 values requiring grad when None), are checked by
    `gradcheck` against central differences, with respect to the inputs and to the seeds.

    >>> x = fg.randn(3, dtype=fg.float64, requires_grad=True)
    >>> fg.autograd.gradgradcheck(lambda x: (x * x.sin()).sum(), (x,))
    True
    """
    inputs = tuple(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError("gradgradcheck: fn must return a Tensor")
    if grad_outputs is None:
        seed = np.random.default_rng(0).standard_normal(tuple(out.shape))
        grad_outputs = tensor(seed, dtype=out.dtype, requires_grad=True)
    n = len(inputs)
    diff = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradgradcheck: no input requires grad")

    def first(*args):
        # gradcheck's numerical pass calls this under no_grad with plain copies: those are
        # made differentiable here, so each perturbed point gets its own first derivative
        ins = list(args[:n])
        with enable_grad():
            for j in diff:
                if not ins[j].requires_grad:
                    ins[j] = ins[j].detach().requires_grad_()
            go = args[n]
            got = grad(fn(*ins), [ins[j] for j in diff], go, create_graph=True, allow_unused=True)
            parts = [(g if g is not None else zeros_like(ins[j])).reshape(-1) for g, j in zip(got, diff)]
            return _core.cat(parts, 0)

    return gradcheck(
        first, inputs + (grad_outputs,), eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception
    )


def _as_list(x, what: str) -> list:
    if isinstance(x, Tensor):
        return [x]
    if x is None:
        return []
    items = list(x)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: item {i} is a {type(t).__name__}, not a Tensor")
    return items


def _seeds(grads, n: int, what: str) -> list:
    if grads is None:
        return [None] * n
    grads = [grads] if isinstance(grads, Tensor) else list(grads)
    if len(grads) != n:
        raise ValueError(f"{what}: got {len(grads)} gradients for {n} tensors")
    for i, g in enumerate(grads):
        if g is not None and not isinstance(g, Tensor):
            raise TypeError(f"{what}: gradient {i} is a {type(g).__name__}, not a Tensor or None")
    return grads


def backward(
    tensors,
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs=None,
) -> None:
    """Runs one backward pass from a tensor or several, as ``torch.autograd.backward``:
    gradients flowing into shared parts of the graph are summed first, so the graph is
    walked once. With `inputs`, only those tensors' ``.grad`` is accumulated. With
    `create_graph`, the gradients keep a graph of their own (for higher-order derivatives;
    `retain_graph` then defaults to True)."""
    roots = _as_list(tensors, "backward")
    seeds = _seeds(grad_tensors, len(roots), "backward")
    targets = None if inputs is None else _as_list(inputs, "backward(inputs=)")
    retain = create_graph if retain_graph is None else retain_graph
    _core._backward_many(roots, seeds, bool(retain), targets, bool(create_graph))


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as ``torch.autograd.grad``:
    returned as a tuple (one per input) instead of accumulated into ``.grad``.

    `grad_outputs` seeds each output (None: 1, for a one-element output). An input the
    outputs do not depend on raises, unless `allow_unused` (then its entry is None, or
    zeros with `materialize_grads`). Hooks registered on the tensors run as in `backward`.
    With `create_graph`, the gradients returned carry their own graph, so they can be
    differentiated again (a gradient penalty, a Hessian-vector product); `retain_graph` then
    defaults to True; only a custom Function marked `once_differentiable` refuses it.
    With `is_grads_batched`, each seed has a leading batch dim and the result one too: the
    gradients for each seed along it (PyTorch vectorizes that with vmap; here one pass per
    seed, the same values).

    >>> x = fg.tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = fg.autograd.grad((x * x).sum(), x)     # 2x, and x.grad stays None
    """
    del only_inputs  # deprecated in PyTorch, always True
    if is_grads_batched:
        return _grad_batched(
            outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads
        )
    outs = _as_list(outputs, "grad(outputs)")
    ins = _as_list(inputs, "grad(inputs)")
    if not outs or not ins:
        raise ValueError("grad: outputs and inputs must each name at least one tensor")
    seeds = _seeds(grad_outputs, len(outs), "grad")
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("grad: materialize_grads=True needs allow_unused to be True or None")
    retain = create_graph if retain_graph is None else retain_graph
    got = _core._grad(outs, seeds, ins, bool(retain), bool(allow_unused), bool(create_graph))
    if materialize_grads:
        got = [g if g is not None else zeros_like(t) for g, t in zip(got, ins)]
    return tuple(got)


def _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize):
    """`grad(..., is_grads_batched=True)`: one pass per entry of the seeds' leading dim, the
    results stacked along a new leading dim."""
    outs = _as_list(outputs, "grad(outputs)")
    seeds = _seeds(grad_outputs, len(outs), "grad")
    if any(s is None for s in seeds):
        raise ValueError("grad: is_grads_batched=True needs a batched seed for every output")
    sizes = {s.shape[0] if s.ndim else None for s in seeds}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"grad: is_grads_batched=True needs seeds with one leading batch dim, got shapes "
            f"{[tuple(s.shape) for s in seeds]}"
        )
    (n,) = sizes
    ins = _as_list(inputs, "grad(inputs)")
    rows = []
    for b in range(n):
        keep = True if b < n - 1 else retain_graph
        rows.append(
            grad(
                outs,
                ins,
                [s[b] for s in seeds],
                retain_graph=keep if keep is not None else create_graph,
                create_graph=create_graph,
                allow_unused=allow_unused,
                materialize_grads=materialize,
            )
        )
    result = []
    for j, t in enumerate(ins):
        col = [r[j] for r in rows]
        if all(g is None for g in col):
            result.append(None)
        else:
            col = [g if g is not None else zeros_like(t) for g in col]
            result.append(_core.stack(col, 0))
    return tuple(result)


# ---------------------------------------------------------------------------- custom rules


def queue_callback(callback: Callable[[], object]) -> None:
    """Queues `callback()` to run when the backward pass in progress finishes, after every
    gradient is accumulated (PyTorch's ``Variable._execution_engine.queue_callback``). Only
    from inside a backward pass, i.e. from a hook; elsewhere a RuntimeError."""
    _core.queue_callback(callback)


class FunctionCtx:
    """What `Function.forward` and `Function.backward` share: `save_for_backward(*tensors)`
    and `saved_tensors`, `needs_input_grad` (one bool per argument of `apply`), and any
    attribute set on it."""

    needs_input_grad: tuple[bool, ...] = ()
    _saved: tuple = ()
    _versions: tuple = ()

    def save_for_backward(self, *tensors) -> None:
        """Keeps tensors (or None) for `backward` as `ctx.saved_tensors`."""
        self._saved = tensors
        self._versions = tuple(t._version if isinstance(t, Tensor) else None for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        """The tensors `save_for_backward` kept; a RuntimeError if one was modified in place
        since (its gradient would be computed from the wrong values), as PyTorch's."""
        for i, (t, v) in enumerate(zip(self._saved, self._versions)):
            if v is not None and t._version != v:
                raise RuntimeError(
                    "one of the tensors needed for gradient computation has been modified by an "
                    f"in-place operation: saved tensor {i} of shape {tuple(t.shape)} is at version "
                    f"{t._version}; expected version {v}"
                )
        return self._saved


class Function:
    """A differentiable operation written in Python, as PyTorch's ``torch.autograd.Function``:
    subclass it with static `forward(ctx, *args)` (runs without recording the graph) and
    `backward(ctx, grad_output)` (returns one gradient, or None, per argument of `forward`),
    then call `MyFn.apply(*args)`. One tensor output.

    >>> class Square(fg.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * g
    >>> Square.apply(fg.tensor([3.0], requires_grad=True)).sum().backward()
    """

    @staticmethod
    def forward(ctx: FunctionCtx, *args, **kwargs):
        """The computation (override): returns one Tensor."""
        raise NotImplementedError("Function subclasses define a static forward(ctx, *args)")

    @staticmethod
    def backward(ctx: FunctionCtx, grad_output):
        """The derivative rule (override): one gradient (or None) per argument of `forward`."""
        raise NotImplementedError("Function subclasses define a static backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Runs `forward` and records `backward` as its derivative rule."""
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return one Tensor, got {type(out).__name__}")
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        if not (_core.is_grad_enabled() and any(args[i].requires_grad for i in positions)):
            return out
        n_args = len(args)

        def rule(grad):
            grads = cls.backward(ctx, grad)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != n_args:
                raise ValueError(
                    f"{cls.__name__}.backward returned {len(grads)} gradients for "
                    f"{n_args} arguments of forward"
                )
            return [grads[i] for i in positions]

        once = getattr(cls.backward, "_once_differentiable", False)
        name = cls.__name__ + "Backward"
        return _core._custom_grad_fn(out, [args[i] for i in positions], rule, name, not once)


def once_differentiable(backward: Callable) -> Callable:
    """Marks a `Function.backward` as not differentiable itself (PyTorch's
    ``torch.autograd.function.once_differentiable``): it runs under no_grad, and a
    ``create_graph=True`` pass that reaches the function raises a RuntimeError instead of
    treating its gradient as a constant. For a backward written with NumPy or in place.

    >>> class Cube(fg.autograd.Function):
    ...     @staticmethod
    ...     @fg.autograd.once_differentiable
    ...     def backward(ctx, g): ...
    """

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        with no_grad():
            return backward(ctx, *grads)

    wrapper._once_differentiable = True  # type: ignore[attr-defined]
    return wrapper


# PyTorch's `torch.autograd.function` module, for `from ... .function import once_differentiable`
function = _types.ModuleType(__name__ + ".function", "Custom autograd functions (PyTorch's spelling).")
function.Function = Function  # type: ignore[attr-defined]
function.FunctionCtx = FunctionCtx  # type: ignore[attr-defined]
function.once_differentiable = once_differentiable  # type: ignore[attr-defined]
_sys.modules[function.__name__] = function
