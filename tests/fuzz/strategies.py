"""Hypothesis strategies that draw call descriptions for every op in ``ops.OPS``.

Most draws are valid calls (so values get compared); a fair share are invalid on purpose:
dims out of range, shapes that do not fit, negative and huge sizes, NaN and infinite
numbers, Python ints beyond 64 bits, and (``WRONG_TYPE_PCT`` of calls) a wrong Python type
in place of one argument.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from hypothesis import strategies as st

from .ops import OPS
from .spec import tensor_spec

nan, inf = math.nan, math.inf

WRONG_TYPE_PCT = 4
SMALL_DIMS = [0, 1, 1, 2, 2, 2, 3, 3, 4, 5, 7]
HUGE_SIZES = [2**33, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, 10**30]
NEG_SIZES = [-1, -2, -(2**62), -(2**63), -(2**64)]
NUMBERS = [0, 1, -1, 2, 3, 0.5, -2.5, 1e-3, True, False, nan, inf, -inf, 2**31, 2**62, 2**63, 2**70]
NUMBERS += [-(2**70), 1e300, -0.0, 1e38, 7, -3]
WRONG = [None, "a", {"list": [1, 2]}, {"object": 1}, 1.5, True, {"tuple": []}]
FILLS = ["normal"] * 5 + ["special", "special", "nan", "inf", "huge", "ties", "zeros"]
VIEWS = ["contig"] * 4 + ["T", "slice", "expand", "perm"]


class G:
    """Draw helpers over hypothesis's ``draw`` for one call on device ``dev``."""

    def __init__(self, draw, dev: str):
        self.draw = draw
        self.dev = dev

    def int(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        return self.draw(st.integers(lo, hi))

    def pick(self, seq):
        """One element of ``seq``."""
        return self.draw(st.sampled_from(list(seq)))

    def chance(self, pct: int) -> bool:
        """True with probability ``pct`` percent."""
        return self.int(0, 99) < pct

    def size(self) -> int:
        """One dim size, mostly small."""
        if self.chance(2):
            return self.pick([16, 33, 64])
        return self.pick(SMALL_DIMS)

    def shape(self, lo: int = 0, hi: int = 4, big: bool = True) -> list[int]:
        """A shape with lo..hi dims; rarely a large one (threaded kernels) or one with an
        expanded dim of 2**33 or more elements."""
        if big and self.chance(2) and hi >= 1:
            return self.pick([[70000], [257, 300], [3, 40000]])[: max(hi, 1)]
        nd = self.int(lo, hi)
        shape = [self.size() for _ in range(nd)]
        if big and nd and self.chance(2):
            shape[self.int(0, nd - 1)] = self.pick([2**33, 2**40])
        return shape

    def dtype(self, choices=None) -> str:
        """A dtype; on the GPU mostly float32 (the backend's dtype) and never float64."""
        if choices is None:
            if self.dev == "gpu":
                choices = ["float32"] * 6 + ["bool", "int64"]
            else:
                choices = ["float32"] * 4 + ["float64"] * 2 + ["int64"] * 2 + ["bool"]
        elif self.dev == "gpu" and "float64" in choices and len(choices) > 1:
            choices = [c for c in choices if c != "float64"] or ["float32"]
        return self.pick(choices)

    def tensor(self, shape=None, dtypes=None, fill=None, view=None) -> dict:
        """An encoded tensor argument."""
        shape = self.shape() if shape is None else list(shape)
        d = self.dtype(dtypes)
        fill = self.pick(FILLS) if fill is None else fill
        view = self.pick(VIEWS) if view is None else view
        dev = self.dev if d in ("float32", "bool") else "cpu"
        if dev == "gpu" and self.chance(4):
            dev = "cpu"  # a host float next to GPU tensors: refused (DeviceError) or computed right
        return tensor_spec(shape, d, fill, view, self.int(0, 2**31), dev)

    def number(self):
        """A Python number, from ordinary to hostile."""
        return self.pick(NUMBERS)

    def dim(self, nd: int, extra: int = 0):
        """A dim index for a tensor of ``nd`` dims, mostly valid."""
        n = max(nd + extra, 1)
        if self.chance(8):
            return self.pick([n, -n - 1, 2**62, 2**64, -(2**63) - 1])
        return self.int(-n, n - 1)

    def dims(self, nd: int):
        """A reduction's ``dim``: None, an int, a tuple or list, sometimes empty or repeated."""
        k = self.int(0, 9)
        if k < 3:
            return None
        if k < 7 or nd == 0:
            return self.dim(nd)
        ds = self.draw(st.permutations(list(range(nd))))[: self.int(0, nd)]
        if self.chance(15) and ds:
            ds = ds + [ds[0] - nd]  # the same dim twice
        return {"tuple": ds} if self.chance(60) else {"list": ds}

    def broadcast_shape(self, shape: list[int]) -> list[int]:
        """A shape that broadcasts against ``shape`` (sometimes one that does not)."""
        if self.chance(8):
            return [s + 1 for s in shape] or [2]
        out = [1 if self.chance(30) else s for s in shape]
        if out and self.chance(30):
            out = out[self.int(0, len(out)) :]
        if self.chance(10):
            out = [self.pick([1, 2])] + out
        return out

    def sizes(self):
        """The size arguments of a creation call (varargs or one tuple/list)."""
        nd = self.int(0, 4)
        out: list[Any] = [self.size() for _ in range(nd)]
        if nd and self.chance(25):
            out[self.int(0, nd - 1)] = self.pick(HUGE_SIZES + NEG_SIZES)
        if self.chance(40):
            return [{"tuple": out} if self.chance(50) else {"list": out}]
        return out

    def device_kw(self, kw: dict) -> dict:
        """Adds ``device="gpu"`` to a creation call's keywords when drawing for the GPU."""
        if self.dev == "gpu":
            kw["device"] = "gpu"
        return kw


GENS: dict[str, Callable[[G], tuple[list, dict]]] = {}


def gen(*names: str):
    """Registers the decorated generator for ``names``."""

    def deco(fn):
        for n in names:
            GENS[n] = fn
        return fn

    return deco


# ---------------------------------------------------------------------------- creation


@gen("zeros", "ones", "rand", "randn")
def _g_zeros(g: G):
    kw: dict = {}
    if g.chance(40):
        kw["dtype"] = {"dtype": g.dtype()}
    return g.sizes(), g.device_kw(kw)


@gen("full")
def _g_full(g: G):
    sz = g.sizes()
    size = sz[0] if len(sz) == 1 and isinstance(sz[0], dict) else {"list": sz}
    if g.chance(20):
        size = g.pick([3, 0, -1, 2**40])
    kw = {"dtype": {"dtype": g.dtype()}} if g.chance(40) else {}
    return [size, g.pick(NUMBERS + [2**62 + 1, 2**53 + 1, -(2**63)])], g.device_kw(kw)


@gen("arange")
def _g_arange(g: G):
    pool = [0, 1, 2, 3, 5, 10, -4, 0.5, 2.5, -1.5, 0.1, 1e-3, nan, inf, 2**62, 2**62 + 1, 2**63, 1e20]
    n = g.int(1, 3)
    args = [g.pick(pool) for _ in range(n)]
    kw = {"dtype": {"dtype": g.dtype()}} if g.chance(25) else {}
    return args, g.device_kw(kw)


@gen("linspace")
def _g_linspace(g: G):
    steps = g.pick([0, 1, 2, 5, 50, -1, 2**40, 2**63])
    kw = {"dtype": {"dtype": g.pick(["float32", "float64"])}} if g.chance(30) else {}
    return [g.pick([0.0, 1.0, -3.5, 1e30]), g.pick([1.0, 0.0, 2.5, -1e30]), steps], g.device_kw(kw)


@gen("eye")
def _g_eye(g: G):
    pool = [0, 1, 2, 3, 5, -1, 2**40, 2**63]
    args = [g.pick(pool)] + ([g.pick(pool + [None])] if g.chance(60) else [])
    kw = {"dtype": {"dtype": g.dtype()}} if g.chance(30) else {}
    return args, g.device_kw(kw)


@gen("randint")
def _g_randint(g: G):
    lo = g.pick([0, -5, 3, -(2**63), 2**62, -(2**70)])
    hi = g.pick([1, 5, 10, 0, 2**63 - 1, 2**63, 2**70])
    sz = g.sizes()
    size = sz[0] if len(sz) == 1 and isinstance(sz[0], dict) else {"tuple": sz}
    return [lo, hi], {"size": size}


@gen("randperm")
def _g_randperm(g: G):
    return [g.pick([0, 1, 2, 5, 100, -1, -(2**63), 2**33, 2**40, 2**62, 2**63, 2**64])], {}


@gen("tensor")
def _g_tensor(g: G):
    shape = [g.int(0, 3) for _ in range(g.int(0, 3))]
    kind = g.pick(["float", "int", "bool", "mixed", "hostile"])
    pools = {
        "float": [0.5, -1.0, 2.0, nan, inf, 1e39, -0.0],
        "int": [0, 1, -3, 2**62 + 1, 2**63 - 1],
        "bool": [True, False],
        "mixed": [1, 2.5, True],
        "hostile": [2**63, 2**70, -(2**64), 1, "a", None],
    }

    def build(dims):
        if not dims:
            return g.pick(pools[kind])
        return {"list": [build(dims[1:]) for _ in range(dims[0])]}

    data = build(shape)
    if shape and g.chance(10) and isinstance(data, dict) and data["list"]:
        data["list"][0] = build(shape[1:] + [1])  # ragged
    kw = {"dtype": {"dtype": g.dtype(["float32", "float64", "int64", "bool"])}} if g.chance(30) else {}
    return [data], g.device_kw(kw)


# ---------------------------------------------------------------------------- views


def _reshape_target(g: G, shape: list[int]) -> list:
    n = math.prod(shape)
    opts = [[n], [-1], list(reversed(shape)), [1] + shape + [1], [g.size(), -1], [g.size(), g.size()]]
    if n == 0:
        opts += [[0, 2**62], [-1, 1, 2**62], [0, -1], [2**40, 0, 2**40]]
    if len(shape) >= 2:
        opts.append([shape[0] * shape[1]] + shape[2:])
        opts.append(shape[:-2] + [-1])
    t = list(g.pick(opts))
    if g.chance(5):
        t.append(g.pick([-2, 2**63, 0]))
    return t


def _shape_args(g: G, target: list) -> list:
    if g.chance(40):
        return [{"tuple": target} if g.chance(50) else {"list": target}]
    return target


@gen("reshape", "view")
def _g_reshape(g: G):
    x = g.tensor()
    return [x] + _shape_args(g, _reshape_target(g, x["T"]["shape"])), {}


@gen("transpose")
def _g_transpose(g: G):
    x = g.tensor()
    nd = len(x["T"]["shape"])
    return [x, g.dim(nd), g.dim(nd)], {}


@gen("permute")
def _g_permute(g: G):
    x = g.tensor()
    nd = len(x["T"]["shape"])
    perm = g.draw(st.permutations(list(range(nd))))
    perm = [p - nd if g.chance(20) else p for p in perm]
    if g.chance(10):
        perm = perm[:-1] if perm else [0]
    elif g.chance(10) and nd >= 2:
        perm[0] = perm[1]
    return [x] + _shape_args(g, perm), {}


@gen("expand")
def _g_expand(g: G):
    shape = [g.pick([1, 1, 2, 3, 0]) for _ in range(g.int(0, 3))]
    x = g.tensor(shape=shape)
    sizes = []
    for s in shape:
        if s == 1:
            sizes.append(g.pick([1, 3, 0, -1, 2**40, 2**62, 2**63]))
        else:
            sizes.append(g.pick([s, s, -1, s + 1, -2]))
    lead = [g.pick([2, 1, 0, 2**33, -1]) for _ in range(g.int(0, 2))]
    return [x] + _shape_args(g, lead + sizes), {}


@gen("narrow")
def _g_narrow(g: G):
    x = g.tensor()
    shape = x["T"]["shape"]
    nd = len(shape)
    d = g.dim(nd)
    size = shape[d] if isinstance(d, int) and -nd <= d < nd and nd else 3
    start = g.pick([0, 1, size, size // 2, -1, -size - 1, 2**62, 2**63])
    length = g.pick([0, 1, size, max(size - 1, 0), -1, 2**62])
    return [x, d, start, length], {}


@gen("unsqueeze")
def _g_unsqueeze(g: G):
    x = g.tensor()
    return [x, g.dim(len(x["T"]["shape"]), extra=1)], {}


@gen("squeeze")
def _g_squeeze(g: G):
    x = g.tensor(shape=[g.pick([1, 1, 2, 0]) for _ in range(g.int(0, 4))])
    if g.chance(40):
        return [x], {}
    return [x, g.dim(len(x["T"]["shape"]))], {}


@gen("flatten")
def _g_flatten(g: G):
    x = g.tensor()
    nd = len(x["T"]["shape"])
    args = [x]
    if g.chance(70):
        args.append(g.dim(nd))
        if g.chance(70):
            args.append(g.dim(nd))
    return args, {}


@gen("split", "chunk")
def _g_split(g: G):
    x = g.tensor()
    shape = x["T"]["shape"]
    nd = len(shape)
    d = g.dim(nd) if g.chance(70) else 0
    size = shape[d] if isinstance(d, int) and -nd <= d < nd and nd else 3
    if g.chance(30):
        parts = [g.int(0, size) for _ in range(g.int(1, 3))]
        parts.append(size - sum(parts) if g.chance(70) else g.int(-1, 3))
        what: Any = {"list": parts}
    else:
        what = g.pick([1, 2, 3, 0, -1, 2**40, 2**63])
    return [x, what, d], {}


@gen("unbind")
def _g_unbind(g: G):
    x = g.tensor(shape=g.shape(0, 3, big=False))
    return [x] + ([g.dim(len(x["T"]["shape"]))] if g.chance(70) else []), {}


@gen("t", "T", "contiguous", "clone", "numpy", "asarray", "tolist", "repr", "str", "pickle")
@gen("deepcopy", "cpu", "len")
def _g_self(g: G):
    return [g.tensor()], {}


@gen("repeat")
def _g_repeat(g: G):
    x = g.tensor(shape=g.shape(0, 3, big=False))
    nd = len(x["T"]["shape"])
    reps = [g.pick([1, 2, 3, 0]) for _ in range(nd + g.int(0, 2))]
    if reps and g.chance(10):
        reps[0] = g.pick([-1, 2**40, 2**63])
    if g.chance(5) and reps:
        reps = reps[1:]
    return [x] + _shape_args(g, reps), {}


# ---------------------------------------------------------------------------- indexing


def _index_item(g: G, size: int):
    k = g.int(0, 9)
    if k < 4:
        return g.pick([0, 1, size - 1, -1, -size, size, -size - 1, 2**62, 2**63])
    if k < 7:
        vals = [None, 0, 1, 2, -1, -3, size, 2**62]
        step = g.pick([None, None, 1, 2, 3, 0, -1])
        return {"slice": [g.pick(vals), g.pick(vals), step]}
    if k < 8:
        return None
    if k < 9:
        return {"ellipsis": 1}
    return g.pick([1.0, True])


def _index_key(g: G, shape: list[int]):
    nd = len(shape)
    k = g.int(0, 9)
    if k < 5 or nd == 0:
        n = g.int(1, nd + 1) if nd else g.int(1, 2)
        items = [_index_item(g, shape[i] if i < nd else 1) for i in range(n)]
        return items[0] if len(items) == 1 and g.chance(50) else {"tuple": items}
    size = shape[0]
    if k < 7:
        lo, hi = (-size, size) if g.chance(85) else (-size - 2, size + 2)
        idx_shape = g.pick([[3], [0], [2, 2], [1], []])
        idx = tensor_spec(
            idx_shape, "int64", ["range", lo, max(hi, lo + 1)], "contig", g.int(0, 2**31), "cpu"
        )
        if g.chance(20):
            return {"list": [g.int(-size, max(size - 1, -size)) for _ in range(g.int(0, 3))]}
        return idx
    lead = g.int(1, nd)
    mshape = shape[:lead] if g.chance(85) else [s + 1 for s in shape[:lead]]
    mask = tensor_spec(mshape, "bool", "normal", g.pick(["contig", "T", "slice"]), g.int(0, 2**31), g.dev)
    if g.chance(20) and lead == 1:
        return {"list": [g.pick([True, False]) for _ in range(mshape[0])]}
    return mask


@gen("getitem")
def _g_getitem(g: G):
    x = g.tensor(shape=g.shape(0, 4))
    return [x, _index_key(g, x["T"]["shape"])], {}


@gen("setitem")
def _g_setitem(g: G):
    x = g.tensor(shape=g.shape(0, 3, big=False))
    shape = x["T"]["shape"]
    key = _index_key(g, shape)
    if g.chance(60):
        v: Any = g.number()
    else:
        vshape = g.pick([[], [1], shape[-1:]])
        v = g.tensor(shape=vshape, dtypes=[x["T"]["dtype"]] * 4 + ["float32", "int64"])
    return [x, key, v], {}


# ---------------------------------------------------------------------------- elementwise


@gen("neg", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "selu", "sign", "square")
@gen("reciprocal", "rsqrt", "isnan", "isinf", "isfinite", "logical_not", "invert", "negop")
@gen("float", "double", "long", "bool")
def _g_unary(g: G):
    return [g.tensor()], {}


@gen("elu")
def _g_elu(g: G):
    kw = {"alpha": g.pick([1.0, 0.5, 2.0, 0.0, -1.0, nan, inf])} if g.chance(50) else {}
    return [g.tensor()], kw


@gen("leaky_relu")
def _g_leaky(g: G):
    kw = {"negative_slope": g.pick([0.01, 0.2, 0.0, -0.5, 1.0, nan, inf])} if g.chance(50) else {}
    return [g.tensor()], kw


@gen("gelu")
def _g_gelu(g: G):
    return [g.tensor()] + ([g.pick(["none", "tanh", "tanh", "bogus"])] if g.chance(60) else []), {}


@gen("clamp", "clamp_")
def _g_clamp(g: G):
    pool = [None, 0, 1, -1, 0.5, -0.5, 2.5, nan, inf, -inf, 2**62, 1e39, True]
    lo, hi = g.pick(pool), g.pick(pool)
    if g.chance(50):
        return [g.tensor(), lo, hi], {}
    kw = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None or g.chance(30)}
    return [g.tensor()], kw


@gen("to_dtype", "type_dtype")
def _g_to_dtype(g: G):
    return [g.tensor(), {"dtype": g.dtype(["float32", "float64", "int64", "bool"])}], {}


def _operand(g: G, shape: list[int], dtypes=None):
    if g.chance(35):
        return g.number()
    return g.tensor(shape=g.broadcast_shape(shape), dtypes=dtypes)


@gen("add", "sub", "mul", "truediv", "pow", "maximum", "minimum")
@gen("cmp_eq", "cmp_ne", "cmp_lt", "cmp_le", "cmp_gt", "cmp_ge")
def _g_binary(g: G):
    x = g.tensor()
    y = _operand(g, x["T"]["shape"])
    if not isinstance(y, dict) and g.chance(40):
        return [y, x], {}  # a number on the left: the reflected operator
    return [x, y], {}


@gen("logical_and", "logical_or", "logical_xor")
def _g_logical(g: G):
    x = g.tensor()
    return [x, _operand(g, x["T"]["shape"])], {}


@gen("and", "or", "xor")
def _g_bitwise(g: G):
    dts = ["int64", "int64", "bool", "bool", "float32"]
    x = g.tensor(dtypes=dts)
    y = _operand(g, x["T"]["shape"], dtypes=dts)
    return ([y, x] if not isinstance(y, dict) and g.chance(40) else [x, y]), {}


@gen("where")
def _g_where(g: G):
    x = g.tensor()
    shape = x["T"]["shape"]
    cond = g.tensor(shape=g.broadcast_shape(shape), dtypes=["bool"] * 5 + ["int64", "float32"])
    y = _operand(g, shape)
    a, b = (x, y) if g.chance(50) else (y, x)
    if g.chance(10):
        a = g.number()
    return [cond, a, b], {}


@gen("masked_fill", "masked_fill_")
def _g_masked_fill(g: G):
    x = g.tensor()
    shape = x["T"]["shape"]
    mask = g.tensor(shape=g.broadcast_shape(shape), dtypes=["bool"] * 6 + ["int64"])
    v = g.number() if g.chance(80) else g.tensor(shape=g.pick([[], [1], [2]]))
    return [x, mask, v], {}


# ---------------------------------------------------------------------------- reductions


@gen("sum", "mean", "amax", "amin", "max", "min", "any", "all", "logsumexp")
def _g_reduce(g: G):
    x = g.tensor()
    nd = len(x["T"]["shape"])
    kw: dict = {}
    if g.chance(80):
        kw["dim"] = g.dims(nd)
        if kw["dim"] is None and g.chance(50):
            del kw["dim"]
    if g.chance(40):
        kw["keepdim"] = g.pick([True, False])
    if g.chance(30) and "dim" in kw:
        return [x, kw.pop("dim")] + ([kw.pop("keepdim")] if "keepdim" in kw else []), {}
    return [x], kw


@gen("var", "std")
def _g_var(g: G):
    args, kw = _g_reduce(g)
    if g.chance(60):
        kw["correction"] = g.pick([0, 1, 2, 0.5, 10, -1])
    return args[:2], kw | ({"keepdim": args[2]} if len(args) > 2 else {})


@gen("argmax", "argmin")
def _g_argmax(g: G):
    x = g.tensor()
    nd = len(x["T"]["shape"])
    kw: dict = {}
    if g.chance(70):
        kw["dim"] = g.dim(nd) if g.chance(85) else None
    if g.chance(40):
        kw["keepdim"] = g.pick([True, False])
    return [x], kw


@gen("softmax", "log_softmax")
def _g_softmax(g: G):
    x = g.tensor()
    if g.chance(20):
        x = g.tensor(shape=[g.pick([1, 2, 3])] * 2, fill=g.pick(["huge", "special"]))
    nd = len(x["T"]["shape"])
    return [x, g.dim(nd)] if g.chance(70) else [x], {}


@gen("norm")
def _g_norm(g: G):
    x = g.tensor(dtypes=["float32", "float32", "float64", "int64"])
    nd = len(x["T"]["shape"])
    kw: dict = {"p": g.pick([None, 2, "fro", 1, inf, -inf, 0, 3, 0.5])} if g.chance(70) else {}
    if g.chance(60):
        kw["dim"] = g.dims(nd)
    if g.chance(30):
        kw["keepdim"] = True
    return [x], kw


# ---------------------------------------------------------------------------- matmul


def _mm_dim(g: G) -> int:
    return g.pick([0, 1, 2, 3, 5, 8, 17, 33])


def _mm_dtypes(g: G):
    return ["float32"] * 6 + ["float64", "int64", "bool"]


@gen("matmul")
def _g_matmul(g: G):
    m, k, n = _mm_dim(g), _mm_dim(g), _mm_dim(g)
    ka = k if g.chance(92) else k + 1
    a_shape = [ka] if g.chance(20) else [m, ka]
    b_shape = [k] if g.chance(20) else [k, n]
    if g.chance(30):
        batch = [g.pick([1, 2, 3])]
        a_shape = batch + a_shape if len(a_shape) == 2 else a_shape
        b_shape = (g.broadcast_shape(batch) if g.chance(50) else []) + b_shape
    if g.chance(3):
        a_shape = []
    fill = g.pick(["normal"] * 4 + ["nan", "inf", "huge", "special"])
    return [g.tensor(a_shape, _mm_dtypes(g), fill), g.tensor(b_shape, _mm_dtypes(g), fill)], {}


@gen("mm", "bmm", "mv", "dot", "outer")
def _g_mm(g: G):
    m, k, n = _mm_dim(g), _mm_dim(g), _mm_dim(g)
    b = g.pick([1, 2, 3])
    opn = g.pick(["mm", "bmm", "mv", "dot", "outer"])  # shapes for some op; often a mismatch
    shapes = {
        "mm": ([m, k], [k, n]),
        "bmm": ([b, m, k], [b, k, n]),
        "mv": ([m, k], [k]),
        "dot": ([k], [k]),
        "outer": ([m], [n]),
    }[opn]
    fill = g.pick(["normal"] * 4 + ["nan", "inf", "huge", "special"])
    return [g.tensor(shapes[0], _mm_dtypes(g), fill), g.tensor(shapes[1], _mm_dtypes(g), fill)], {}


@gen("linear")
def _g_linear(g: G):
    n, i, o = _mm_dim(g), _mm_dim(g), _mm_dim(g)
    lead = [n] if g.chance(80) else [g.pick([1, 2]), n]
    x = g.tensor(lead + [i], _mm_dtypes(g))
    w = g.tensor([o, i if g.chance(92) else i + 1], _mm_dtypes(g))
    args = [x, w]
    kw: dict = {}
    if g.chance(60):
        args.append(g.tensor([o if g.chance(92) else o + 1], _mm_dtypes(g)))
    if g.chance(40):
        kw["activation"] = g.pick(["relu", "selu", "tanh", "sigmoid", "elu", "leaky_relu", "bogus"])
        if g.chance(40):
            kw["alpha"] = g.pick([0.5, 2.0, 0.0, -1.0, nan])
    return args, kw


# ---------------------------------------------------------------------------- joining


@gen("cat", "stack")
def _g_join(g: G):
    shape = g.shape(0, 3, big=False)
    nd = len(shape)
    ts = []
    for _ in range(g.int(1, 3)):
        s = list(shape)
        if nd and g.chance(50):
            s[0] = g.pick([0, 1, 2, 3])
        if g.chance(5):
            s = g.pick([[0], [2], []])
        ts.append(g.tensor(shape=s))
    if g.chance(3):
        ts = []
    return [{"list": ts}], ({"dim": g.dim(nd, extra=1)} if g.chance(60) else {})


# ---------------------------------------------------------------------------- in place


def _g_inplace(g: G, alpha: bool):
    x = g.tensor(shape=g.shape(0, 3))
    y = _operand(g, x["T"]["shape"])
    kw = {"alpha": g.pick([1, 2, -1.0, 0.5, nan])} if alpha and g.chance(25) else {}
    return [x, y], kw


gen("add_", "sub_")(lambda g: _g_inplace(g, True))
gen("mul_", "div_")(lambda g: _g_inplace(g, False))


@gen("fill_")
def _g_fill_(g: G):
    x = g.tensor(shape=g.shape(0, 3))
    v = g.number() if g.chance(80) else g.tensor(shape=g.pick([[], [], [2]]))
    return [x, v], {}


@gen("zero_")
def _g_zero_(g: G):
    return [g.tensor(shape=g.shape(0, 3))], {}


@gen("copy_")
def _g_copy_(g: G):
    x = g.tensor(shape=g.shape(0, 3))
    return [x, g.tensor(shape=g.broadcast_shape(x["T"]["shape"]))], {}


# ---------------------------------------------------------------------------- conversions


def _scalarish(g: G) -> dict:
    return g.tensor(shape=g.pick([[], [], [1], [1, 1], [2], [0]]))


@gen("item", "py_float", "py_int", "py_bool")
def _g_item(g: G):
    return [_scalarish(g)], {}


@gen("format")
def _g_format(g: G):
    return [_scalarish(g), g.pick([".3f", "", "g", ".2e"])], {}


# ---------------------------------------------------------------------------- losses


def _labels(g: G, n: int, c: int, ignore: int) -> dict:
    lo, hi = g.pick([(0, c), (0, c), (0, c), (-1, c + 1), (ignore, ignore + 1)])
    return tensor_spec([n], "int64", ["range", lo, max(hi, lo + 1)], "contig", g.int(0, 2**31), "cpu")


def _g_ce(g: G, smoothing: bool):
    n, c = g.pick([0, 1, 2, 5, 8]), g.pick([1, 2, 3, 10])
    x = g.tensor([n, c], ["float32", "float32", "float64"], g.pick(["normal"] * 4 + ["nan", "huge", "ties"]))
    kw: dict = {}
    ignore = -100
    if g.chance(20):
        ignore = g.pick([0, 1, -1])
        kw["ignore_index"] = ignore
    if g.chance(80):
        t = _labels(g, n if g.chance(95) else n + 1, c, ignore)
    else:
        t = g.tensor([n, c], ["float32"], "prob")
    if g.chance(50):
        kw["reduction"] = g.pick(["mean", "sum", "none", "bogus"])
    if g.chance(20):
        kw["weight"] = g.tensor([c], ["float32"], "pos", "contig")
    if smoothing and g.chance(20):
        kw["label_smoothing"] = g.pick([0.1, 0.5, 1.0])
    return [x, t], kw


gen("cross_entropy")(lambda g: _g_ce(g, True))
gen("nll_loss")(lambda g: _g_ce(g, False))


@gen("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss")
def _g_pairloss(g: G):
    shape = g.shape(0, 3, big=False)
    x = g.tensor(
        shape, ["float32", "float32", "float64"], g.pick(["prob", "prob", "normal", "nan", "special"])
    )
    tshape = shape if g.chance(90) else g.broadcast_shape(shape)
    t = g.tensor(tshape, ["float32", "float32", "float64", "int64"], g.pick(["prob", "prob", "normal"]))
    kw = {"reduction": g.pick(["mean", "sum", "none", "bogus"])} if g.chance(50) else {}
    return [x, t], kw


# ---------------------------------------------------------------------------- the top level


def _mutate(g: G, name: str, args: list, kw: dict) -> bool:
    """Replaces one argument by a wrong type (never the tensor a method is called on)."""
    first = 1 if OPS[name].form in ("method", "inplace", "attr", "getitem", "setitem", "builtin") else 0
    tensors = [i for i, a in enumerate(args) if isinstance(a, dict) and "T" in a]
    only = tensors[0] if len(tensors) == 1 else None  # without it the call is not ferrograd's
    slots = [("a", i) for i in range(first, len(args)) if i != only] + [("k", k) for k in kw]
    if not slots:
        return False
    where, key = g.pick(slots)
    bad = g.pick(WRONG + [{"nd": tensor_spec([2], "float32", "normal", "contig", 0, "cpu")["T"]}])
    if where == "a":
        args[key] = bad
    else:
        kw[key] = bad
    return True


def calls(gpu: bool, names: list[str] | None = None) -> st.SearchStrategy[dict]:
    """A strategy for one call description; ``gpu`` lets a third of the calls use the GPU."""
    pool = sorted(names or OPS)
    missing = [n for n in pool if n not in GENS]
    if missing:
        raise RuntimeError(f"no generator for ops {missing}")

    @st.composite
    def one(draw) -> dict:
        name = draw(st.sampled_from(pool))
        dev = "gpu" if gpu and draw(st.integers(0, 99)) < 35 else "cpu"
        g = G(draw, dev)
        args, kw = GENS[name](g)
        desc = {"op": name, "args": args, "kw": kw}
        if g.chance(WRONG_TYPE_PCT) and _mutate(g, name, args, kw):
            desc["mut"] = True
        return desc

    return one()
