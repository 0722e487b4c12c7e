"""`ferrograd.autograd.functional`: PyTorch's ``torch.autograd.functional`` (vjp, jvp,
jacobian, hessian, vhp, hvp) over ``grad(..., create_graph=...)``.

Each takes a function of tensors and its inputs (a Tensor or a tuple of them) and returns
results of the same structure, as PyTorch's: a Tensor where a Tensor was given, tuples where
tuples were. Inputs are differentiated as copies that require grad (the caller's tensors are
untouched); with ``create_graph=True`` the results keep a graph back to inputs that require
grad, so they can be differentiated again. An input the output does not depend on gets
zeros, or a RuntimeError with ``strict=True``. Reverse mode only: ``jvp`` uses the
double-vjp identity; ``vectorize=True`` is accepted (the rows are computed one by one,
the same values) and the forward-mode strategies are refused.
"""

from __future__ import annotations

import sys
from typing import Callable

from . import autograd as _autograd
from ._core import Tensor, stack
from ._creation import zeros, zeros_like
from .autograd import enable_grad, grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(x, what: str, fn_name: str) -> tuple[bool, tuple]:
    """(was a tuple, the tensors as a tuple), checking each is a Tensor."""
    is_tuple = isinstance(x, (tuple, list))
    items = tuple(x) if is_tuple else (x,)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{fn_name}: the {what} must be a Tensor or a tuple of Tensors, "
                f"but item {i} is a {type(t).__name__}"
            )
    return is_tuple, items


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    # with create_graph, an input that requires grad stays connected to its graph through a
    # view; otherwise a detached copy is differentiated
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))
        else:
            out.append(t.detach().requires_grad_())
    return tuple(out)


def _finish(items, create_graph: bool) -> tuple:
    return tuple(t if create_graph or t is None else t.detach() for t in items)


def _grads(outputs, inputs, grad_outputs, create_graph, strict, fn_name, what="input"):
    """The vector-Jacobian products of `outputs` (seeded by `grad_outputs`) for each input;
    zeros for an input the outputs do not reach (a RuntimeError when strict)."""
    live = [i for i, o in enumerate(outputs) if o.requires_grad]
    if live:
        got = grad(
            [outputs[i] for i in live],
            list(inputs),
            [grad_outputs[i] for i in live],
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
        )
    else:
        got = (None,) * len(inputs)
    res = []
    for i, (g, t) in enumerate(zip(got, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"{fn_name}: the output of the function is independent of {what} {i}, "
                    "which is not allowed in strict mode"
                )
            g = zeros_like(t)
        res.append(g)
    return tuple(res)


def _check_v(v, outputs, fn_name: str, what: str) -> tuple:
    if v is None:
        if any(o.numel() != 1 for o in outputs):
            raise RuntimeError(
                f"{fn_name}: v can be omitted only when the {what} of the function has one element; pass v"
            )
        return tuple(None for _ in outputs)
    _, vs = _as_tuple(v, "v", fn_name)
    if len(vs) != len(outputs):
        raise RuntimeError(f"{fn_name}: v has {len(vs)} tensors but there are {len(outputs)} {what}s")
    for i, (a, o) in enumerate(zip(vs, outputs)):
        if tuple(a.shape) != tuple(o.shape):
            raise RuntimeError(
                f"{fn_name}: entry {i} of v has shape {tuple(a.shape)}, the {what} has shape {tuple(o.shape)}"
            )
    return vs


def _call(func: Callable, inputs: tuple, fn_name: str) -> tuple[bool, tuple]:
    out = func(*inputs)
    return _as_tuple(out, "output", fn_name)


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product of `func` at `inputs` with
    `v` (shaped as the output; may be omitted for a one-element output)."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "vjp")
        vs = _check_v(v, outs, "vjp", "output")
        res = _grads(outs, ins, vs, create_graph, strict, "vjp")
    outs = _finish(outs, create_graph)
    res = _finish(res, create_graph)
    return (outs if out_tuple else outs[0]), (res if in_tuple else res[0])


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``: the Jacobian-vector product, by the double-vjp identity
    (PyTorch's own reverse-mode method): the vjp with a dummy vector u is linear in u, and
    its vjp with `v` is J v."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "jvp")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "jvp")
        vs = _check_v(v, ins, "jvp", "input")
        vs = tuple(zeros_like(t) + 1 if a is None else a for a, t in zip(vs, ins))
        dummies = tuple(zeros_like(o).requires_grad_() for o in outs)
        g = _grads(outs, ins, dummies, True, strict, "jvp")
        res = _grads(g, dummies, vs, create_graph, strict, "jvp", what="output")
    outs = _finish(outs, create_graph)
    res = _finish(res, create_graph)
    return (outs if out_tuple else outs[0]), (res if out_tuple else res[0])


def _refuse(vectorize: bool, strategy: str, fn_name: str) -> None:
    # vectorize only changes how PyTorch batches the rows (vmap): the values are the same,
    # and here the rows are taken one by one either way
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"{fn_name}: strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}")
    if strategy == "forward-mode" and not vectorize:
        raise ValueError(f"{fn_name}: strategy='forward-mode' needs vectorize=True (as PyTorch's)")
    if strategy == "forward-mode":
        raise NotImplementedError(
            f"{fn_name}: strategy='forward-mode' is not supported (no forward-mode autograd); "
            "use 'reverse-mode', which gives the same Jacobian"
        )


def jacobian(
    func: Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """The Jacobian of `func` at `inputs`: for an output of shape O and an input of shape
    I, a tensor of shape O + I; nested tuples (output, then input) where tuples were given.
    One backward pass per output element."""
    _refuse(vectorize, strategy, "jacobian")
    in_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        out_tuple, outs = _call(func, ins, "jacobian")
        per_out = []
        for o in outs:
            rows: list[list] = [[] for _ in ins]
            flat = o.reshape(-1)
            for k in range(flat.numel()):
                got = _grads((flat[k],), ins, (None,), create_graph, strict, "jacobian")
                for j, g in enumerate(got):
                    rows[j].append(g)
            blocks = []
            for j, t in enumerate(ins):
                shape = tuple(o.shape) + tuple(t.shape)
                if rows[j]:
                    blocks.append(stack(rows[j], 0).reshape(shape))
                else:  # an output with no elements
                    blocks.append(zeros(shape, dtype=t.dtype, device=t.device))
            per_out.append(tuple(_finish(blocks, create_graph)))
    per_out = [b if in_tuple else b[0] for b in per_out]
    return tuple(per_out) if out_tuple else per_out[0]


def hessian(
    func: Callable,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar `func` at `inputs`: shape I + I for one input, a tuple of
    tuples of blocks (i, j) of shape Ii + Ij for several."""
    _refuse(vectorize, outer_jacobian_strategy, "hessian")
    in_tuple, ins = _as_tuple(inputs, "inputs", "hessian")

    def scalar(*args):
        out = func(*args)
        if isinstance(out, (tuple, list)) or not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("hessian: the function must return a single one-element Tensor")
        return out

    def gradient(*args):
        with enable_grad():
            out = scalar(*args)
            g = _grads((out.reshape(()),), args, (None,), True, strict, "hessian")
            return g if in_tuple else g[0]

    res = jacobian(gradient, ins if in_tuple else ins[0], create_graph=create_graph, strict=strict)
    return res


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)`` for a scalar `func` (H its Hessian at `inputs`)."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "vhp")
    with enable_grad():
        ins = _prepare(ins, create_graph)
        _, outs = _call(func, ins, "vhp")
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError("vhp: the function must return a single one-element Tensor")
        vs = _check_v(v, ins, "vhp", "input")
        g = _grads((outs[0].reshape(()),), ins, (None,), True, strict, "vhp")
        res = _grads(g, ins, vs, create_graph, strict, "vhp")
    out = _finish(outs, create_graph)[0]
    res = _finish(res, create_graph)
    return out, (res if in_tuple else res[0])


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a scalar `func`; H is symmetric for a twice continuously
    differentiable function, so this is ``vhp`` (PyTorch computes it with a double vjp)."""
    return vhp(func, inputs, v, create_graph=create_graph, strict=strict)


# fg.autograd.functional, and importable as ferrograd.autograd.functional (PyTorch's path);
# bound from here because this module sits above autograd
_autograd.functional = sys.modules[__name__]  # type: ignore[attr-defined]
sys.modules[_autograd.__name__ + ".functional"] = sys.modules[__name__]
