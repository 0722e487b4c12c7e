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

The table's rows are tensor methods as well: at the end, one loop over `_core.unary_ops()`
gives `Tensor` a method `x.name(...)` for each public row it lacks (never replacing one
the engine defines): the function of this file's row, so its parameters carry PyTorch's
names, or, for a row this file does not have yet, the engine's op under the table's names,
wrapped so that its first parameter is `self`.
PyTorch's aliases (`arcsin`, ..., `fix`) are functions and methods too. Their stubs are in
`_core.pyi` (tests/test_stubs.py checks that every method `Tensor` has is declared).
"""

import inspect as _inspect
from collections.abc import Callable as _Callable
from typing import Any as _Any

from . import _core
from ._core import ArgumentError as _ArgumentError
from ._core import Tensor as _Tensor
from ._creation import _t as _operand

# The public names, in order (the package adds them to `fg.__all__`).
_NAMES: list = []


def _make(name: str, doc: str, params: dict, check: _Callable | None = None) -> _Callable[..., _Tensor]:
    """The function `name(x, *params)`: `x.name(*params)`, or `_core.unary(x, name, *params)`
    where `Tensor` has no method `name`. `params` gives the extra arguments' names and
    defaults, in order; `check(*values)`, if given, vets their values first (it raises)."""
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
        if check is not None:
            check(*values)
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


def _elementwise(
    name: str, doc: str, _check: _Callable | None = None, **params: object
) -> _Callable[..., _Tensor]:
    """A row of the table: the function `_make` builds, exported as `fg.<name>` (`_check`:
    `_make`'s `check`)."""
    _NAMES.append(name)
    return _make(name, doc, params, _check)


def _alias(name: str, fn: _Callable[..., _Tensor]) -> _Callable[..., _Tensor]:
    """PyTorch's other name for `fn` (`arcsin` for `asin`): a function called `name` that
    calls `fn`, with its signature, exported as `fg.<name>`."""
    _NAMES.append(name)

    def call(*args, **kwargs):
        return fn(*args, **kwargs)

    alias: _Any = call
    alias.__name__ = alias.__qualname__ = name
    alias.__doc__ = f"Alias of `{fn.__name__}`: {fn.__doc__}"
    alias.__signature__ = _inspect.signature(fn)
    return alias


def _celu_alpha(alpha) -> None:
    if alpha == 0:
        raise _ArgumentError("celu: alpha cannot be 0 (the op divides by it)")


def _hardtanh_bounds(min_val, max_val) -> None:
    if min_val > max_val:
        raise _ArgumentError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")


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
sign = _elementwise("sign", "-1, 0 or 1 by each element's sign (0 for NaN, as PyTorch); not differentiable.")
# trigonometric and hyperbolic
sin = _elementwise("sin", "Sine.")
cos = _elementwise("cos", "Cosine.")
tan = _elementwise("tan", "Tangent.")
asin = _elementwise("asin", "Arcsine (NaN outside [-1, 1]).")
acos = _elementwise("acos", "Arccosine (NaN outside [-1, 1]).")
atan = _elementwise("atan", "Arctangent.")
sinh = _elementwise("sinh", "Hyperbolic sine.")
cosh = _elementwise("cosh", "Hyperbolic cosine.")
asinh = _elementwise("asinh", "Inverse hyperbolic sine.")
acosh = _elementwise("acosh", "Inverse hyperbolic cosine (NaN below 1).")
atanh = _elementwise("atanh", "Inverse hyperbolic tangent (NaN outside [-1, 1]).")
# exponentials, logarithms, erf
erf = _elementwise("erf", "The error function.")
exp2 = _elementwise("exp2", "2 ** x.")
log2 = _elementwise("log2", "Logarithm base 2.")
log10 = _elementwise("log10", "Logarithm base 10.")
log1p = _elementwise("log1p", "log(1 + x), accurate for small x.")
expm1 = _elementwise("expm1", "e ** x - 1, accurate for small x.")
# rounding: zero gradient; an int64 tensor gives an int64 copy
floor = _elementwise("floor", "Rounds down (zero gradient; int64 stays int64).")
ceil = _elementwise("ceil", "Rounds up (zero gradient; int64 stays int64).")
_round = _make("round", "Rounds half to even (zero gradient; int64 stays int64).", {})
trunc = _elementwise("trunc", "Rounds toward zero (zero gradient; int64 stays int64).")
frac = _elementwise("frac", "x - trunc(x): the fractional part, with x's sign (gradient 1).")
# activations (PyTorch's parameter names)
softplus = _elementwise(
    "softplus", "log(1 + e^(beta x)) / beta; x itself where beta x > threshold.", beta=1.0, threshold=20.0
)
silu = _elementwise("silu", "x * sigmoid(x) (swish).")
mish = _elementwise("mish", "x * tanh(softplus(x)).")
hardswish = _elementwise("hardswish", "x * relu6(x + 3) / 6.")
hardsigmoid = _elementwise("hardsigmoid", "relu6(x + 3) / 6.")
relu6 = _elementwise("relu6", "min(max(x, 0), 6).")
hardtanh = _elementwise(
    "hardtanh", "x clamped into [min_val, max_val].", _hardtanh_bounds, min_val=-1.0, max_val=1.0
)
logsigmoid = _elementwise("logsigmoid", "log(sigmoid(x)), computed stably.")
softsign = _elementwise("softsign", "x / (1 + |x|).")
celu = _elementwise(
    "celu", "max(0, x) + min(0, alpha (e^(x / alpha) - 1)); alpha != 0.", _celu_alpha, alpha=1.0
)

# ---- PyTorch's aliases -------------------------------------------------------------------
arcsin = _alias("arcsin", asin)
arccos = _alias("arccos", acos)
arctan = _alias("arctan", atan)
arcsinh = _alias("arcsinh", asinh)
arccosh = _alias("arccosh", acosh)
arctanh = _alias("arctanh", atanh)
fix = _alias("fix", trunc)

# ---- the others --------------------------------------------------------------------------
clip = clamp  # PyTorch's alias


def neg(x: _Tensor) -> _Tensor:
    """-x."""
    return -x


def logical_not(x: _Tensor) -> _Tensor:
    """Elementwise `not x` (zero is true): a bool tensor."""
    return _operand(x).logical_not()


def round(x: _Tensor, decimals: int = 0) -> _Tensor:  # noqa: A001
    """Rounds half to even (0.5 -> 0, 1.5 -> 2, as PyTorch and NumPy); zero gradient; an int64
    tensor gives an int64 copy.

    `decimals` rounds to that many decimal places, as PyTorch does it: `round(x * 10**d) /
    10**d`, or `round(x / 10**-d) * 10**-d` for d < 0 (so the result is the float nearest
    the decimal, and 10**d past the float range gives inf or NaN). An int64 tensor takes
    decimals >= 0 only (a copy); decimals < 0 on it raises NotImplementedError."""
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError(f"round: decimals must be an int, got {type(decimals).__name__}")
    if decimals == 0:
        return _round(x)
    if x.dtype == _core.dtype.int64:
        if decimals > 0:
            return _round(x)
        raise NotImplementedError("round: decimals < 0 on an int64 tensor")
    if decimals > 0:
        scale = 10.0**decimals
        return _round(x * scale) / scale
    scale = 10.0**-decimals
    return _round(x / scale) * scale


_NAMES += ["clip", "neg", "logical_not", "round"]

# ---- the methods -------------------------------------------------------------------------
# Rows reached under another name rather than as a method of their own.
_SPELLED_OTHERWISE = {"gelu_tanh": 'gelu(x, approximate="tanh")'}
_ALIASES = {"arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "fix"}


def _method(name: str, fn: _Callable[..., _Tensor]) -> _Callable[..., _Tensor]:
    """`fn` as the method `Tensor.<name>`: `x.name(...)` calls `fn(x, ...)`. It has `fn`'s
    docstring and signature, the first parameter renamed `self` (as `_core.pyi` declares
    it, which mypy.stubtest checks), and `__wrapped__` is `fn`."""

    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    sig = _inspect.signature(fn)
    first, *rest = sig.parameters.values()
    m: _Any = method
    m.__name__ = name
    m.__qualname__ = f"Tensor.{name}"
    m.__doc__ = fn.__doc__
    m.__wrapped__ = fn
    m.__signature__ = sig.replace(parameters=[first.replace(name="self"), *rest])
    return m


def _install_methods() -> None:
    """Gives `Tensor` a method for each public row of the engine's table it lacks, and
    PyTorch's aliases: this file's function of that name (so `x.softplus(beta=2.0)` has
    PyTorch's names), or for a row this file lacks, `_core.unary` under the table's names,
    each as `_method` makes it. A method the engine defines stays."""
    here = globals()
    for name, _code, params in _core.unary_ops():
        if name.startswith("_") or name in _SPELLED_OTHERWISE or hasattr(_Tensor, name):
            continue
        if name in _NAMES:
            fn = here[name]
        else:
            fn = _make(name, f"The engine's elementwise op {name!r}.", dict(params))
        setattr(_Tensor, name, _method(name, fn))
    for name in sorted(_ALIASES):
        if not hasattr(_Tensor, name):
            setattr(_Tensor, name, _method(name, here[name]))


_install_methods()
