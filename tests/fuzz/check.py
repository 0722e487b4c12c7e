"""What a call is expected to do, and the comparison of what it did against that.

An op's reference returns an ``Expect``: a value (``TV`` for a tensor or NumPy array, ``PV``
for a Python value, ``SV`` for a tuple of them), an exception of given classes, or anything
that is not a crash. ``judge`` turns a call's outcome into a list of problems.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

import ferrograd as fg

# The exception classes ferrograd documents (README "Errors", _core.pyi, test_errors.py).
ALLOWED: tuple[type[BaseException], ...] = (
    fg.ShapeError,
    fg.DTypeError,
    fg.DeviceError,
    IndexError,
    ValueError,
    TypeError,
    MemoryError,
)

FMAX = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
DEFAULT_TOL = {"float32": (3e-5, 1e-6), "float64": (1e-9, 1e-12)}


@dataclass
class TV:
    """An expected tensor (or, with ``ndarray``, NumPy array) result.

    ``arr`` holds the expected values (float64 for float results, so the comparison sees
    the exact value before rounding); None checks shape and dtype only. ``amb`` marks
    positions where any value is accepted (order-dependent overflow and the like).
    ``alias`` is the index of an input tensor the result must share storage with (a view).
    """

    arr: np.ndarray | None
    dtypes: tuple[str, ...]
    rtol: float | None = None
    atol: Any = None
    amb: np.ndarray | None = None
    alias: int | None = None
    device: str | None = None
    ndarray: bool = False
    shape: tuple | None = None
    check: Callable[[Any], str | None] | None = None


@dataclass
class PV:
    """An expected Python value (a number, a nested list, a string); ``types`` are the
    acceptable types of the value (and of the leaves of a list); ``value`` None with
    ``anyvalue`` checks the type only."""

    value: Any
    types: tuple[type, ...] = ()
    anyvalue: bool = False


@dataclass
class SV:
    """An expected tuple (or named tuple) of results."""

    items: list


@dataclass
class Expect:
    """The expected outcome of a call.

    ``kind`` is "value", "raise" or "any". A "value" with ``either`` also accepts an
    exception of ``classes``; "raise" needs one of ``classes``; "any" accepts a value or
    an exception of ``classes``. ``extra`` widens ``classes`` (OverflowError for a Python
    int that does not fit in 64 bits, say).
    """

    kind: str
    value: Any = None
    either: bool = False
    classes: tuple = ALLOWED
    extra: tuple = ()
    note: str = ""


def value(v, either: bool = False, **kw) -> Expect:
    """An Expect for a value (``kw`` go to Expect)."""
    return Expect("value", v, either=either, **kw)


def raises(*classes, note: str = "") -> Expect:
    """An Expect for an exception of ``classes`` (all documented classes when none)."""
    return Expect("raise", classes=tuple(classes) or ALLOWED, note=note)


def anything(note: str = "") -> Expect:
    """An Expect that accepts any value or a documented exception."""
    return Expect("any", note=note)


def dtype_name(t) -> str:
    """``"float32"`` for ``fg.float32`` and so on."""
    return str(t.dtype).split(".")[-1]


def exc_name(e: BaseException) -> str:
    """``module.Class`` of an exception, without the builtins module."""
    mod = type(e).__module__
    return type(e).__name__ if mod == "builtins" else f"{mod}.{type(e).__name__}"


# Classes that stand in for each other when a call is wrong in several ways at once (an
# out-of-range dim and a bad size: either complaint is right).
FAMILIES = ((ValueError, IndexError, MemoryError, OverflowError), (TypeError,), (fg.DeviceError,))


def _same_family(e: BaseException, classes: tuple) -> bool:
    """Whether ``e`` is one of ``classes`` or in a family with one of them."""
    if isinstance(e, classes):
        return True
    for fam in FAMILIES:
        if isinstance(e, fam) and any(issubclass(c, fam) for c in classes):
            return not isinstance(e, TypeError) or any(issubclass(c, TypeError) for c in classes)
    return False


def classify_exception(e: BaseException, exp: Expect) -> tuple[str, str] | None:
    """A problem (kind, detail) for an exception raised by a call, or None when it is fine."""
    msg = f"{exc_name(e)}: {str(e)[:300]}"
    if "Panic" in type(e).__name__ or isinstance(e, getattr(fg, "InternalError", ())):
        return ("panic", msg)  # a Rust panic, whatever class PyO3 gives it
    if not isinstance(e, Exception):
        return ("base-exception", msg)
    if isinstance(e, RuntimeError) and "internal error" in str(e):
        return ("internal-error", msg)
    allowed = ALLOWED + exp.extra + tuple(exp.classes)
    if not isinstance(e, allowed):
        return ("wrong-exception", msg)
    if exp.kind == "value" and not exp.either:
        return ("rejected-valid", msg + (f" [{exp.note}]" if exp.note else ""))
    if not _same_family(e, tuple(exp.classes) + exp.extra):
        want = "/".join(c.__name__ for c in exp.classes)
        return ("wrong-class", f"{msg} (expected {want}{'; ' + exp.note if exp.note else ''})")
    return None


# ---------------------------------------------------------------------------- values


def _float_problems(act: np.ndarray, exp: np.ndarray, dtype: str, tv: TV) -> list[tuple[str, str]]:
    """Compares float results: NaN positions, infinities (with sign), then finite values."""
    fmax = FMAX.get(dtype, FMAX["float64"])
    rtol, atol = DEFAULT_TOL.get(dtype, DEFAULT_TOL["float64"])
    rtol = tv.rtol if tv.rtol is not None else rtol
    atol = tv.atol if tv.atol is not None else atol
    with np.errstate(all="ignore"):
        e64 = np.asarray(exp, dtype=np.float64)
        a64 = np.asarray(act, dtype=np.float64)
        # the expected value rounded to the result dtype decides overflow to infinity
        e_r = e64.astype(np.float32).astype(np.float64) if dtype == "float32" else e64
        amb = np.zeros(e64.shape, bool) if tv.amb is None else np.broadcast_to(tv.amb, e64.shape).copy()
        amb |= np.isfinite(e64) & (np.abs(e64) > fmax * (1 - 8 * rtol))
        en, an = np.isnan(e_r), np.isnan(a64)
        ei, ai = np.isinf(e_r), np.isinf(a64)
        nan_bad = (en != an) & ~amb
        inf_bad = (ei | ai) & ~(en | an) & (e_r != a64) & ~amb
        fin = ~(en | an | ei | ai) & ~amb
        tol = np.broadcast_to(np.asarray(atol, dtype=np.float64), e64.shape) + rtol * np.abs(e64)
        val_bad = fin & ~(np.abs(a64 - e64) <= tol)
    out = []
    for kind, bad in (("nan", nan_bad), ("inf", inf_bad), ("value", val_bad)):
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            out.append(
                (
                    f"mismatch-{kind}",
                    f"{int(bad.sum())} of {bad.size} elements differ, first at {idx}: got "
                    f"{a64[idx]!r}, expected {e64[idx]!r}",
                )
            )
    return out


def _array_problems(act: np.ndarray, tv: TV, dtype: str) -> list[tuple[str, str]]:
    """Compares an array read back from a result with ``tv.arr``."""
    exp = np.asarray(tv.arr)
    if act.shape != exp.shape:
        return [("shape", f"read back shape {act.shape}, expected {exp.shape}")]
    if act.size == 0:
        return []
    if dtype in ("int64", "bool") and exp.dtype.kind in "bi" and tv.amb is None:
        bad = act.astype(np.int64) != exp.astype(np.int64)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return [
                (
                    "mismatch-value",
                    f"{int(bad.sum())} of {bad.size} elements differ, first at {idx}: got "
                    f"{act[idx]!r}, expected {exp[idx]!r}",
                )
            ]
        return []
    return _float_problems(act, exp, dtype if dtype.startswith("float") else "float64", tv)


def tensor_problems(res: Any, tv: TV, inputs: list) -> list[tuple[str, str]]:
    """Problems of a tensor (or array) result against ``tv``; ``inputs`` are the call's
    tensors, for the alias check."""
    if tv.ndarray:
        if not isinstance(res, np.ndarray):
            return [("type", f"got {type(res).__name__}, expected numpy.ndarray")]
        dtype = {"b": "bool", "i": "int64"}.get(res.dtype.kind, str(res.dtype))
        if dtype not in tv.dtypes:
            return [("dtype", f"got {res.dtype}, expected {'/'.join(tv.dtypes)}")]
        return _array_problems(res, tv, dtype) if tv.arr is not None else []
    if not isinstance(res, fg.Tensor):
        return [("type", f"got {type(res).__name__}, expected a Tensor")]
    out = []
    dtype = dtype_name(res)
    if dtype not in tv.dtypes:
        out.append(("dtype", f"got {dtype}, expected {'/'.join(tv.dtypes)}"))
    want_shape = tuple(tv.arr.shape) if tv.arr is not None else tv.shape
    if want_shape is not None and tuple(res.shape) != tuple(want_shape):
        return out + [("shape", f"got {tuple(res.shape)}, expected {tuple(want_shape)}")]
    if tv.device is not None and res.device != tv.device:
        out.append(("device", f"result on {res.device}, expected {tv.device}"))
    if tv.alias is not None and res.numel() > 0:
        shares = res.shares_storage(inputs[tv.alias])
        if not shares:
            out.append(("alias", "the result does not share storage with its input (a view was expected)"))
    if tv.check is not None:
        msg = tv.check(res)
        if msg:
            out.append(("property", msg))
    if out or res.numel() > 10_000_000:
        return out
    try:
        act = res.numpy()
    except BaseException as e:  # noqa: BLE001  (a panic is a BaseException)
        if tv.arr is None and isinstance(e, ALLOWED) and "Panic" not in type(e).__name__:
            return out  # an empty tensor with a dim NumPy cannot hold: refusing is fine
        return [("readback", f".numpy() raised {exc_name(e)}: {str(e)[:200]}")]
    if tv.arr is None:
        if act.shape != tuple(res.shape):
            return [("readback", f".numpy() gave shape {act.shape} for a tensor of shape {tuple(res.shape)}")]
        return out
    return _array_problems(act, tv, dtype)


def _same_py(a: Any, b: Any, types: tuple) -> bool:
    """Whether Python values are equal, NaN equal to NaN, leaves of the right types."""
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(_same_py(x, y, types) for x, y in zip(a, b))
    if types and not isinstance(a, types):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and type(a) is type(b)
    if isinstance(b, float) and isinstance(a, (int, float)):
        if math.isnan(b):
            return isinstance(a, float) and math.isnan(a)
        return a == b or (math.isfinite(b) and abs(a - b) <= 1e-6 * abs(b))
    return a == b


def python_problems(res: Any, pv: PV) -> list[tuple[str, str]]:
    """Problems of a Python-value result against ``pv``."""
    if pv.anyvalue:
        if pv.types and not isinstance(res, pv.types):
            return [("type", f"got {type(res).__name__}, expected {'/'.join(t.__name__ for t in pv.types)}")]
        return []
    if not _same_py(res, pv.value, pv.types):
        return [("mismatch-value", f"got {str(res)[:200]!s}, expected {str(pv.value)[:200]!s}")]
    return []


def value_problems(res: Any, v: Any, inputs: list) -> list[tuple[str, str]]:
    """Problems of a result against an expected TV, PV or SV."""
    if isinstance(v, TV):
        return tensor_problems(res, v, inputs)
    if isinstance(v, PV):
        return python_problems(res, v)
    if not isinstance(res, tuple):
        return [("type", f"got {type(res).__name__}, expected a tuple")]
    if len(res) != len(v.items):
        return [("shape", f"got {len(res)} results, expected {len(v.items)}")]
    out = []
    for i, (r, item) in enumerate(zip(res, v.items)):
        out += [(k, f"item {i}: {m}") for k, m in value_problems(r, item, inputs)]
    return out


def judge(outcome: tuple[str, Any], exp: Expect, inputs: list) -> list[tuple[str, str]]:
    """Problems of a call's ``outcome`` (("ok", result) or ("exc", exception))."""
    status, obj = outcome
    if status == "exc":
        p = classify_exception(obj, exp)
        return [p] if p else []
    if exp.kind == "raise":
        want = "/".join(c.__name__ for c in exp.classes)
        shown = f"{type(obj).__name__}"
        if isinstance(obj, fg.Tensor):
            shown = f"tensor of shape {tuple(obj.shape)}, {dtype_name(obj)}"
            if obj.numel() <= 8:
                try:
                    shown += f": {obj.numpy().tolist()}"
                except BaseException:  # noqa: BLE001
                    pass
        note = f" ({exp.note})" if exp.note else ""
        return [("accepted-invalid", f"returned {shown}; expected {want}{note}")]
    if exp.kind == "any":
        return []
    return value_problems(obj, exp.value, inputs)


# ---------------------------------------------------------------------------- the GPU twin


def _tv_from_result(res: Any, ref: Any, scale: float) -> Any:
    """A TV/PV/SV that asks for ``res`` (the CPU result), with the reference's tolerances
    widened by ``scale`` and its ambiguous positions."""
    if isinstance(res, tuple):
        refs = ref.items if isinstance(ref, SV) and len(ref.items) == len(res) else [None] * len(res)
        return SV([_tv_from_result(r, x, scale) for r, x in zip(res, refs)])
    if isinstance(res, fg.Tensor):
        dtype = dtype_name(res)
        arr = res.numpy() if res.numel() <= 10_000_000 else None
        r = ref if isinstance(ref, TV) else None
        rtol, atol = DEFAULT_TOL.get(dtype, (0.0, 0.0))
        rtol = max(5e-4, (r.rtol or rtol) * scale) if dtype.startswith("float") else 0.0
        base_atol = r.atol if (r is not None and r.atol is not None) else atol
        atol = np.maximum(np.asarray(base_atol, dtype=np.float64) * scale, 1e-5)
        dev = None
        if r is not None and r.device is not None:
            dev = r.device
        elif dtype in ("float32", "bool"):
            dev = "gpu"
        elif dtype == "int64":
            dev = "cpu"
        amb = r.amb if r is not None else None
        if arr is not None and dtype.startswith("float"):
            arr = arr.astype(np.float64)
        return TV(arr, (dtype,), rtol=rtol, atol=atol, amb=amb, device=dev, alias=r.alias if r else None)
    if isinstance(res, np.ndarray):
        return TV(res, (ref.dtypes if isinstance(ref, TV) else (str(res.dtype),)), ndarray=True)
    if isinstance(res, float):
        return PV(res, (float,))
    if isinstance(res, str):
        return PV(None, (str,), anyvalue=True)
    if isinstance(res, list):
        leaf = res
        while isinstance(leaf, list) and leaf:
            leaf = leaf[0]
        return PV(res, () if isinstance(leaf, list) else (type(leaf),))
    return PV(res, (type(res),))


def twin_expect(cpu_outcome: tuple[str, Any], ref: Expect, mixed: bool) -> Expect:
    """What a GPU call must do given the same call's CPU outcome; ``mixed`` says that some
    float tensors stayed on the CPU, which may be refused with DeviceError."""
    status, obj = cpu_outcome
    if status == "exc":  # the GPU may refuse with the CPU's class (OverflowError for int(inf))
        same = (type(obj),) if isinstance(obj, Exception) and isinstance(obj, tuple(ref.classes)) else ()
        return replace(raises(), extra=tuple(ref.extra) + same)
    try:
        v = _tv_from_result(obj, ref.value if ref.kind == "value" else None, 8.0)
    except BaseException:  # noqa: BLE001  (the CPU result cannot be read: compare nothing)
        return anything()
    if mixed:
        return value(_no_device(v), either=True, classes=(fg.DeviceError,), note="mixed devices")
    if ref.kind == "any":  # NumPy could not judge (huge or wrong-typed inputs): a refusal is fine
        return value(v, either=True, extra=ref.extra)
    if _has_float64(v):  # documented: the GPU backend refuses float64 ("call .float() first")
        return value(v, either=True, classes=(fg.DTypeError, fg.DeviceError), note="float64 on the gpu")
    return value(v, extra=ref.extra)


def _no_device(v):
    """``v`` without device expectations (a mixed-device call's result may live on either)."""
    if isinstance(v, SV):
        return SV([_no_device(x) for x in v.items])
    return replace(v, device=None) if isinstance(v, TV) else v


def _has_float64(v) -> bool:
    if isinstance(v, SV):
        return any(_has_float64(x) for x in v.items)
    return isinstance(v, TV) and "float64" in v.dtypes


__all__ = [
    "ALLOWED",
    "TV",
    "PV",
    "SV",
    "Expect",
    "value",
    "raises",
    "anything",
    "judge",
    "twin_expect",
]
