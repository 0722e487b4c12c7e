"""The elementwise functions: `fg.exp(x)`, `fg.relu(x)`, `fg.elu(x, alpha)`, `fg.clamp(x, min,
max)`, ...

Most are mechanical, and each of those is one row of the table below:

    name = _elementwise("name", "docstring", param=default, ...)

makes `fg.name(x, param=default, ...)` (its name, docstring and signature) and adds it to the
package's exports. The function calls the tensor method `x.name(param, ...)` where `Tensor`
has one, and otherwise the engine's op table, `_core.unary(x, "name", param, ...)` (its rows
are `_core.unary_ops()`; parameters in the same order). To add a function, add its row.

A row is an assignment rather than a name in a loop so that type checkers see the function.
The package star-imports this module, so every public name here is exported as `fg.<name>`:
keep helpers and imports private (a leading underscore). No `from __future__` import either,
as it would bind the name `annotations`.
"""

import inspect as _inspect
from collections.abc import Callable as _Callable
from typing import Any as _Any

from . import _core
from ._core import Tensor as _Tensor
from ._creation import _t as _operand

# The public names, in order (the package adds them to `fg.__all__`).
_NAMES: list = []


def _make(name: str, doc: str, params: dict) -> _Callable[..., _Tensor]:
    """The function `name(x, *params)`: `x.name(*params)`, or `_core.unary(x, name, *params)`
    where `Tensor` has no method `name`. `params` gives the extra arguments' names and
    defaults, in order."""
    names = tuple(params)

    if hasattr(_Tensor, name):

        def apply(x, *values):
            return getattr(x, name)(*values)

    else:

        def apply(x, *values):
            return _core.unary(x, name, *values)

    def op(x, *args, **kwargs):
        if len(args) > len(names):
            raise TypeError(
                f"{name}() takes from 1 to {len(names) + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        for k in names[: len(args)]:
            if k in kwargs:
                raise TypeError(f"{name}() got multiple values for argument '{k}'")
        values = list(args) + [kwargs.pop(k, params[k]) for k in names[len(args) :]]
        if kwargs:
            raise TypeError(f"{name}() got an unexpected keyword argument '{next(iter(kwargs))}'")
        return apply(x, *values)

    def op_of_x(x):  # (no parameters: the common case, without the argument handling)
        return apply(x)

    fn: _Any = op if names else op_of_x
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    kind = _inspect.Parameter.POSITIONAL_OR_KEYWORD
    fn.__signature__ = _inspect.Signature(
        [_inspect.Parameter("x", kind, annotation="Tensor")]
        + [_inspect.Parameter(k, kind, default=d) for k, d in params.items()],
        return_annotation="Tensor",
    )
    return fn


def _elementwise(name: str, doc: str, **params: object) -> _Callable[..., _Tensor]:
    """A row of the table: the function `_make` builds, exported as `fg.<name>`."""
    _NAMES.append(name)
    return _make(name, doc, params)


# ---- the table: fg.name(x, ...) is x.name(...), or _core.unary(x, "name", ...) -----------
exp = _elementwise("exp", "e ** x.")
log = _elementwise("log", "Natural logarithm.")
sqrt = _elementwise("sqrt", "Square root.")
abs = _elementwise("abs", "Absolute value.")  # noqa: A001
tanh = _elementwise("tanh", "Hyperbolic tangent.")
sigmoid = _elementwise("sigmoid", "Logistic sigmoid.")
relu = _elementwise("relu", "max(x, 0).")
selu = _elementwise("selu", "Scaled exponential linear unit.")
elu = _elementwise("elu", "Exponential linear unit.", alpha=1.0)
leaky_relu = _elementwise("leaky_relu", "Leaky ReLU.", negative_slope=0.01)
gelu = _elementwise(
    "gelu", 'Gaussian error linear unit (exact, or `approximate="tanh"`).', approximate="none"
)
clamp = _elementwise("clamp", "Clamps into [min, max].", min=None, max=None)
isnan = _elementwise("isnan", "Whether each element is NaN: a bool tensor.")
isinf = _elementwise("isinf", "Whether each element is +-infinity: a bool tensor.")
isfinite = _elementwise("isfinite", "Whether each element is finite: a bool tensor.")
sign = _elementwise("sign", "-1, 0 or 1 by each element's sign (NaN stays NaN); not differentiable.")

# ---- the others --------------------------------------------------------------------------
clip = clamp  # PyTorch's alias


def neg(x: _Tensor) -> _Tensor:
    """-x."""
    return -x


def logical_not(x: _Tensor) -> _Tensor:
    """Elementwise `not x` (zero is true): a bool tensor."""
    return _operand(x).logical_not()


_NAMES += ["clip", "neg", "logical_not"]
