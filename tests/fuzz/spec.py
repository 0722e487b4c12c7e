"""Call descriptions: what they hold, how they become objects, and how they print as Python.

A description is JSON data, so the parent can send it to the worker and print it back::

    {"op": "sum", "args": [{"T": {...}}], "kw": {"dim": 0}}

Arguments are plain JSON values (ints of any size, floats including NaN and infinities,
bools, strings, None) or one-key dicts that stand for other objects:

- ``{"T": spec}``: a tensor (see ``tensor_spec``), built from NumPy data and then viewed;
- ``{"list": [...]}``, ``{"tuple": [...]}``: sequences of values;
- ``{"slice": [start, stop, step]}``, ``{"ellipsis": 1}``: index items;
- ``{"dtype": name}``: a ferrograd dtype (``np.dtype`` on the reference side);
- ``{"nd": spec}``: a NumPy array with a tensor spec's data (a wrong type for most ops);
- ``{"object": 1}``: a bare ``object()``, a wrong type for everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DTYPES = ("bool", "int64", "float32", "float64")
NP_DTYPE = {"bool": np.bool_, "int64": np.int64, "float32": np.float32, "float64": np.float64}
RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}

# A dim above this is never allocated: the tensor is a size-1 dim expanded to it.
BIG_DIM = 1 << 20
# Tensors with more elements are never read back or given to NumPy.
HUGE_NUMEL = 10_000_000
# Arrays up to this many elements are printed as literals in a reproduction.
LITERAL_NUMEL = 48

SPECIAL_F = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, math.nan, math.inf, -math.inf, 1e-40, 3e38, -3e38, 1e-7]
SPECIAL_F64 = [0.0, -0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 5e-324, 1e308, -1e308, 1e-300]
SPECIAL_I = [0, 1, -1, 2, 7, 2**62, -(2**62), 2**63 - 1, -(2**63), 2**31]
HUGE_F32 = [1e30, -1e30, 1e38, -1e38, 3e38, -3e38, 3.4e38]
HUGE_F64 = [1e300, -1e300, 1e308, -1.7e308]


def tensor_spec(shape, dtype="float32", fill="normal", view="contig", seed=0, dev="cpu") -> dict:
    """A tensor argument: logical ``shape``, ``dtype``, ``fill`` kind, ``view`` kind, data
    ``seed`` and device. ``view`` is how the tensor is laid out: ``contig``, ``T`` (last two
    dims transposed), ``slice`` (every other element), ``expand`` (even dims broadcast from
    size 1) or ``perm`` (all dims reversed); dims above ``BIG_DIM`` are always expanded."""
    return {"T": {"shape": list(shape), "dtype": dtype, "fill": fill, "view": view, "seed": seed, "dev": dev}}


def numel(shape) -> int:
    """The number of elements of ``shape`` (Python ints, no overflow)."""
    return math.prod(shape) if shape else 1


def make_array(shape, dtype: str, fill, seed: int) -> np.ndarray:
    """Deterministic data of ``shape`` and ``dtype`` for a fill kind; the same arguments
    always give the same array (reproductions of large tensors call this)."""
    rng = np.random.default_rng(seed)
    n = numel(shape)
    kind = fill[0] if isinstance(fill, list) else fill
    if dtype == "bool":
        if kind == "zeros":
            return np.zeros(shape, np.bool_)
        return (rng.random(n) < 0.5).reshape(shape)
    if dtype == "int64":
        if kind == "range":
            vals = rng.integers(fill[1], fill[2], n) if fill[2] > fill[1] else np.full(n, fill[1])
        elif kind == "special":
            vals = rng.choice(np.array(SPECIAL_I, dtype=np.int64), n)
        elif kind == "huge":
            vals = rng.integers(-(2**62), 2**62, n) * rng.choice([1, 2], n)
        elif kind == "ties":
            vals = rng.integers(-2, 3, n)
        elif kind == "pos":
            vals = rng.integers(1, 6, n)
        elif kind == "zeros":
            vals = np.zeros(n)
        else:
            vals = rng.integers(-5, 6, n)
        return np.asarray(vals, dtype=np.int64).reshape(shape)
    f64 = dtype == "float64"
    base = rng.standard_normal(n) * 3.0
    if kind == "range":
        vals = rng.uniform(fill[1], fill[2], n)
    elif kind == "special":
        vals = rng.choice(np.array(SPECIAL_F64 if f64 else SPECIAL_F), n)
    elif kind == "nan":
        vals = np.where(rng.random(n) < 0.3, np.nan, base)
    elif kind == "inf":
        vals = np.where(rng.random(n) < 0.3, rng.choice([np.inf, -np.inf], n), base)
    elif kind == "huge":
        vals = np.where(rng.random(n) < 0.6, rng.choice(HUGE_F64 if f64 else HUGE_F32, n), base)
    elif kind == "ties":
        vals = rng.integers(-2, 3, n).astype(np.float64)
    elif kind == "pos":
        vals = np.abs(base) + 1e-3
    elif kind == "prob":
        vals = np.where(rng.random(n) < 0.2, rng.choice([0.0, 1.0], n), rng.random(n))
    elif kind == "zeros":
        vals = np.zeros(n)
    else:
        vals = base
    return np.asarray(vals, dtype=NP_DTYPE[dtype]).reshape(shape)


def layout(spec: dict) -> tuple[list[int], list[int]]:
    """(shape before the final expand, shape of the stored array) for a tensor spec."""
    shape, view = list(spec["shape"]), spec["view"]
    pre = [1 if (s > BIG_DIM or (view == "expand" and i % 2 == 0)) else s for i, s in enumerate(shape)]
    nd = len(pre)
    if view == "T" and nd >= 2:
        stored = pre[:-2] + [pre[-1], pre[-2]]
    elif view == "slice":
        stored = [2 * s + 1 for s in pre]
    elif view == "perm":
        stored = pre[::-1]
    else:
        stored = pre
    return pre, stored


def apply_view(x, spec: dict, lib: str):
    """Applies a spec's view to ``x``, the stored array (``lib`` "np") or tensor ("fg")."""
    shape, view = list(spec["shape"]), spec["view"]
    pre, _ = layout(spec)
    nd = len(pre)
    if view == "T" and nd >= 2:
        x = np.swapaxes(x, nd - 2, nd - 1) if lib == "np" else x.transpose(nd - 2, nd - 1)
    elif view == "slice" and nd:
        x = x[(slice(1, None, 2),) * nd]
    elif view == "perm" and nd >= 2:
        order = list(range(nd))[::-1]
        x = np.transpose(x, order) if lib == "np" else x.permute(*order)
    if pre != shape:
        x = np.broadcast_to(x, shape) if lib == "np" else x.expand(*shape)
    return x


def stored_array(spec: dict) -> np.ndarray:
    """The stored data of a tensor spec (before any view)."""
    _, stored = layout(spec)
    return make_array(stored, spec["dtype"], spec["fill"], spec["seed"])


# ---------------------------------------------------------------------------- rendering


def _array_code(arr: np.ndarray, spec: dict) -> str:
    """Python source that rebuilds ``arr`` (a stored array) exactly."""
    npdt = f"np.{spec['dtype'] if spec['dtype'] != 'bool' else 'bool_'}"
    if arr.size <= LITERAL_NUMEL:
        flat = arr.reshape(-1).tolist()
        code = f"np.array({flat!r}, dtype={npdt})"
        return code if arr.ndim == 1 else f"{code}.reshape({tuple(arr.shape)!r})"
    _, stored = layout(spec)
    return f"make_array({stored!r}, {spec['dtype']!r}, {spec['fill']!r}, {spec['seed']})"


def tensor_code(spec: dict) -> str:
    """Python source that builds the tensor of a spec, view included."""
    code = f"fg.from_numpy({_array_code(stored_array(spec), spec)})"
    if spec["dev"] == "gpu":
        code += '.to("gpu")'
    shape, view = list(spec["shape"]), spec["view"]
    pre, _ = layout(spec)
    nd = len(pre)
    if view == "T" and nd >= 2:
        code += f".transpose({nd - 2}, {nd - 1})"
    elif view == "slice" and nd:
        code += "[" + ", ".join(["1::2"] * nd) + "]"
    elif view == "perm" and nd >= 2:
        code += f".permute({', '.join(str(i) for i in range(nd)[::-1])})"
    if pre != shape:
        code += f".expand({', '.join(str(s) for s in shape)})"
    return code


def value_code(v: Any, names: dict) -> str:
    """Python source for an encoded value; tensors refer to the names in ``names``."""
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else '-float("inf")'
        return repr(v)
    if not isinstance(v, dict):
        return repr(v)
    ((tag, body),) = v.items()
    if tag == "T":
        return names[id(v)]
    if tag == "list":
        return "[" + ", ".join(value_code(x, names) for x in body) + "]"
    if tag == "tuple":
        inner = ", ".join(value_code(x, names) for x in body)
        return f"({inner},)" if len(body) == 1 else f"({inner})"
    if tag == "slice":
        return f"slice({', '.join(value_code(x, names) for x in body)})"
    if tag == "ellipsis":
        return "..."
    if tag == "dtype":
        return f"fg.{body if body != 'bool' else 'bool_'}"
    if tag == "nd":
        return _array_code(stored_array(body), body)
    return "object()"


def tensors_in(v: Any, out: list) -> list:
    """All tensor specs inside an encoded value, in order (appended to ``out``)."""
    if isinstance(v, dict):
        ((tag, body),) = v.items()
        if tag == "T":
            out.append(v)
        elif tag in ("list", "tuple"):
            for x in body:
                tensors_in(x, out)
    elif isinstance(v, list):
        for x in v:
            tensors_in(x, out)
    return out


def ints_in(v: Any, out: list) -> list:
    """All Python ints inside an encoded value except tensor data (appended to ``out``)."""
    if isinstance(v, bool):
        return out
    if isinstance(v, int):
        out.append(v)
    elif isinstance(v, dict):
        ((tag, body),) = v.items()
        if tag in ("list", "tuple", "slice"):
            for x in body:
                ints_in(x, out)
    elif isinstance(v, list):
        for x in v:
            ints_in(x, out)
    return out


def desc_tensors(desc: dict) -> list:
    """The tensor specs of a description, args then keyword values."""
    out: list = []
    tensors_in(desc["args"], out)
    tensors_in(list(desc["kw"].values()), out)
    return out


def desc_size(desc: dict) -> int:
    """A size for choosing the smallest of several failing descriptions."""
    elems = sum(min(numel(t["T"]["shape"]), 10**6) for t in desc_tensors(desc))
    return elems * 4 + len(repr(desc))


def with_device(desc: dict, dev: str) -> dict:
    """A copy of ``desc`` with every tensor (and a ``device=`` keyword) on ``dev``."""

    def conv(v):
        if isinstance(v, dict):
            ((tag, body),) = v.items()
            if tag == "T":
                return {"T": dict(body, dev=dev)}
            if tag in ("list", "tuple"):
                return {tag: [conv(x) for x in body]}
            return v
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    out = dict(desc, args=conv(desc["args"]), kw={k: conv(x) for k, x in desc["kw"].items()})
    if "device" in out["kw"] and out["kw"]["device"] in ("cpu", "gpu"):
        out["kw"]["device"] = dev
    return out
