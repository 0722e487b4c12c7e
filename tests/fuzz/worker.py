"""The fuzzer's child process: runs call descriptions and judges them.

Reads one JSON object per line on stdin, ``{"i": n, "d": description}``, and writes one
line per call on stdout, ``{"i": n, "problems": [{"dev", "kind", "sub", "detail"}, ...]}``.
Run as ``python -m fuzz.worker`` with ``tests/`` on the path. The address space is limited
(``FERROGRAD_FUZZ_RLIMIT_GB``, default 4) so an attempt to allocate gigabytes fails at once
instead of swapping; a crash of this process is the parent's evidence of an abort.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import resource
import sys
import traceback
from dataclasses import replace
from typing import Any


def _limit_memory() -> None:
    """Caps the address space (wgpu on lavapipe reserves about 1 GiB of it; 4 GiB is
    measured to leave room for it and for every legitimate call)."""
    gb = float(os.environ.get("FERROGRAD_FUZZ_RLIMIT_GB", "4"))
    if gb > 0:
        lim = int(gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


_limit_memory()

import numpy as np  # noqa: E402

import ferrograd as fg  # noqa: E402
import ferrograd.nn.functional as F  # noqa: E402, N812

from .check import ALLOWED, SV, TV, Expect, anything, judge, tensor_problems, twin_expect  # noqa: E402
from .ops import OPS, Bad, NdArg, Op  # noqa: E402
from .spec import (  # noqa: E402
    HUGE_NUMEL,
    apply_view,
    desc_tensors,
    ints_in,
    layout,
    numel,
    stored_array,
    with_device,
)

BINOPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
    "@": lambda a, b: a @ b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
}
BUILTINS = {
    "repr": repr,
    "str": str,
    "float": float,
    "int": int,
    "bool": bool,
    "len": len,
    "format": format,
    "np.asarray": np.asarray,
    "pickle": lambda x: pickle.loads(pickle.dumps(x)),
    "deepcopy": copy.deepcopy,
}
FG_DTYPES = {"bool": fg.bool_, "int64": fg.int64, "float32": fg.float32, "float64": fg.float64}


class Built:
    """The ferrograd side of a call's arguments: tensors in description order, with the
    stored tensors they view (for the in-place checks)."""

    def __init__(self):
        self.tensors: list = []
        self.stored: list = []
        self.specs: list = []


def decode(v: Any, side: str, built: Built | None):
    """An encoded value as an object: ``side`` "fg" builds tensors, "np" NumPy arrays."""
    if isinstance(v, list):
        return [decode(x, side, built) for x in v]
    if not isinstance(v, dict):
        return v
    ((tag, body),) = v.items()
    if tag == "T":
        arr = stored_array(body)
        if side == "np":
            return apply_view(arr, body, "np")
        t = fg.from_numpy(arr)
        if body["dev"] == "gpu":
            t = t.to("gpu")
        view = apply_view(t, body, "fg")
        built.tensors.append(view)
        built.stored.append(t)
        built.specs.append(body)
        return view
    if tag == "list":
        return [decode(x, side, built) for x in body]
    if tag == "tuple":
        return tuple(decode(x, side, built) for x in body)
    if tag == "slice":
        return slice(*[decode(x, side, built) for x in body])
    if tag == "ellipsis":
        return Ellipsis
    if tag == "dtype":
        return FG_DTYPES[body] if side == "fg" else body
    if tag == "nd":
        arr = stored_array(body)
        return arr if side == "fg" else NdArg(arr)
    return object()


def call(op: Op, args: list, kw: dict):
    """Makes the call an op describes on decoded ferrograd arguments."""
    form, target = op.form, op.target
    if form in ("method", "inplace"):
        return getattr(args[0], target)(*args[1:], **kw)
    if form == "func":
        mod, name = target.split(".", 1)
        return getattr({"fg": fg, "F": F}[mod], name)(*args, **kw)
    if form == "binop":
        return BINOPS[target](args[0], args[1])
    if form == "unop":
        return {"-": lambda x: -x, "~": lambda x: ~x}[target](args[0])
    if form == "getitem":
        return args[0][args[1]]
    if form == "setitem":
        args[0][args[1]] = args[2]
        return args[0]
    if form == "attr":
        return getattr(args[0], target)
    if form == "builtin":
        return BUILTINS[target](*args, **kw)
    raise ValueError(f"unknown form {form}")


def execute(desc: dict) -> tuple[tuple[str, Any], Built]:
    """Builds a description's arguments and makes the call: (("ok", result) or ("exc",
    exception), the built arguments). Building is part of the call: a view that cannot be
    made is that call's outcome."""
    built = Built()
    fg.manual_seed(0)
    try:
        args = decode(desc["args"], "fg", built)
        kw = {k: decode(v, "fg", built) for k, v in desc["kw"].items()}
        return ("ok", call(OPS[desc["op"]], args, kw)), built
    except BaseException as e:  # noqa: BLE001  (panics are BaseExceptions; they are the point)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return ("exc", e), built


def reference(desc: dict) -> tuple[Expect, list]:
    """The Expect of a description (and harness problems met computing it)."""
    specs = [t["T"] for t in desc_tensors(desc)]
    extra: tuple = ()
    big_ints = [v for v in ints_in([desc["args"], list(desc["kw"].values())], []) if abs(v) > 2**63 - 1]
    if big_ints:
        extra = (OverflowError,)
    if desc.get("mut"):
        # a "wrong" value may still be a valid one (None for a default, 1.5 for a float
        # argument), so the call may go on to refuse its data as the unmutated call would:
        # OverflowError for a value beyond int64 (fg.tensor([[1e39]], dtype=fg.int64, device=None))
        return Expect("any", note="wrong argument type", extra=(OverflowError,)), []
    if any(numel(s["shape"]) > HUGE_NUMEL for s in specs):
        return Expect("any", note="huge expanded input", extra=extra), []
    try:
        args = decode(desc["args"], "np", None)
        kw = {k: decode(v, "np", None) for k, v in desc["kw"].items()}
        with np.errstate(all="ignore"):
            exp = OPS[desc["op"]].ref(args, kw)
    except Bad as b:
        exp = b.exp
    except MemoryError:
        exp = anything(note="the reference ran out of memory")
    except Exception:  # noqa: BLE001  (a bug of the harness: report it, judge nothing)
        tb = traceback.format_exc(limit=4)
        return Expect("any", extra=extra), [("harness", "reference", tb[-900:])]
    if extra:  # refusing an int that does not fit in 64 bits is always fine
        exp.extra = tuple(set(exp.extra) | set(extra))
        exp.classes = ALLOWED
        exp.either = exp.either or exp.kind == "value"
    op = OPS[desc["op"]]
    if op.form in ("inplace", "setitem") and specs and layout(specs[0])[0] != list(specs[0]["shape"]):
        exp.either = exp.either or exp.kind == "value"  # writing into an expanded view may be refused
    return exp, []


def _base_problems(exp: Expect, built: Built) -> list:
    """After an in-place op on a view: the stored tensor must hold the new values."""
    if (
        exp.kind != "value"
        or not isinstance(exp.value, TV)
        or exp.value.arr is None
        or exp.value.amb is not None
    ):
        return []
    spec, stored = built.specs[0], built.stored[0]
    pre, _ = layout(spec)
    if pre != list(spec["shape"]) or spec["view"] == "contig":
        return []  # an expanded view reads its stored data; a contiguous one is its storage
    base = stored_array(spec).copy()
    with np.errstate(all="ignore"):
        apply_view(base, spec, "np")[...] = np.asarray(exp.value.arr).astype(base.dtype)
    want = TV(
        base.astype(np.float64) if base.dtype.kind == "f" else base,
        exp.value.dtypes,
        rtol=exp.value.rtol,
        atol=None if np.ndim(exp.value.atol) else exp.value.atol,
    )
    return [(k, "storage under the view: " + m) for k, m in tensor_problems(stored, want, [])]


def inplace_problems(op: Op, outcome, exp: Expect, built: Built) -> list:
    """In-place ops return their tensor and write through views into its storage."""
    if op.form not in ("inplace", "setitem") or outcome[0] != "ok" or not built.tensors:
        return []
    out = []
    if op.form == "inplace" and outcome[1] is not built.tensors[0]:
        out.append(("property", "the in-place op did not return its tensor"))
    return out + _base_problems(exp, built)


def evaluate(desc: dict, dev: str) -> tuple[Expect, tuple, list]:
    """Runs a description and judges it against NumPy: (Expect, outcome, problems)."""
    exp, problems = reference(desc)
    outcome, built = execute(desc)
    op = OPS[desc["op"]]
    problems = list(problems) + judge(outcome, exp, built.tensors) + inplace_problems(op, outcome, exp, built)
    return exp, outcome, [(dev,) + p for p in problems]


def gpu_tolerance(exp: Expect) -> Expect:
    """``exp`` with float tolerances widened to what the GPU's float32 kernels are held to."""

    def widen(v):
        if isinstance(v, TV):
            atol = None if v.atol is None else np.asarray(v.atol) * 8
            return replace(v, rtol=max((v.rtol or 0) * 8, 5e-4), atol=atol, device=None)
        if isinstance(v, SV):
            return SV([widen(x) for x in v.items])
        return v

    return replace(exp, value=widen(exp.value))


def is_gpu(desc: dict) -> bool:
    """Whether a description puts anything on the GPU."""
    return any(t["T"]["dev"] == "gpu" for t in desc_tensors(desc)) or desc["kw"].get("device") == "gpu"


# Ops that README documents as taking host int64/bool operands next to GPU floats.
HOST_OPERANDS_OK = {"add", "sub", "mul", "truediv", "pow", "maximum", "minimum", "logical_and", "logical_or"}
HOST_OPERANDS_OK |= {"logical_xor", "and", "or", "xor"} | {
    f"cmp_{c}" for c in ("eq", "ne", "lt", "le", "gt", "ge")
}


def is_mixed(desc: dict) -> bool:
    """Whether tensors sit on both devices in a way that may be refused (DeviceError):
    float tensors on both, or, outside the documented elementwise ops, any tensors."""
    ts = [t["T"] for t in desc_tensors(desc)]
    if desc["op"] not in HOST_OPERANDS_OK:
        return len({t["dev"] for t in ts}) > 1
    devs = {t["dev"] for t in ts if t["dtype"] in ("float32", "float64") or t["dev"] == "gpu"}
    return len(devs) > 1


def run_desc(desc: dict) -> list:
    """All problems of one description: against NumPy on the CPU and, for a GPU call,
    against the same call on the CPU."""
    if not is_gpu(desc):
        return evaluate(desc, "cpu")[2]
    exp, cpu_outcome, problems = evaluate(with_device(desc, "cpu"), "cpu")
    if problems and exp.kind == "value":
        gexp = gpu_tolerance(exp)  # the CPU is wrong: hold the GPU to NumPy instead
    else:
        gexp = twin_expect(cpu_outcome, exp, is_mixed(desc))
    gexp = flush_subnormals(desc, gexp)
    outcome, built = execute(desc)
    op = OPS[desc["op"]]
    gp = judge(outcome, gexp, built.tensors) + inplace_problems(op, outcome, gexp, built)
    return problems + [("gpu",) + p for p in gp]


# Ops whose result is elementwise over their broadcast tensor arguments.
ELEMENTWISE = {"neg", "negop", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "selu", "elu"}
ELEMENTWISE |= {"leaky_relu", "gelu", "sign", "square", "reciprocal", "rsqrt", "clamp", "clamp_", "where"}
ELEMENTWISE |= {"add", "sub", "mul", "truediv", "pow", "maximum", "minimum", "masked_fill", "masked_fill_"}
ELEMENTWISE |= {"add_", "sub_", "mul_", "div_", "float", "long", "bool", "to_dtype", "type_dtype", "copy_"}
# Ops with a singularity at 0 inside a reduction: one flushed input changes the whole result.
SINGULAR = {"binary_cross_entropy", "norm"}


def flush_subnormals(desc: dict, exp: Expect) -> Expect:
    """NOTES: GPU arithmetic may flush subnormal inputs (and lavapipe's log clamps them to
    the smallest normal), so results that depend on a subnormal GPU input are not compared
    with the CPU's: per element for elementwise ops, entirely for SINGULAR ones."""
    if exp.kind != "value" or not isinstance(exp.value, TV) or exp.value.arr is None:
        return exp
    masks = []
    for t in desc_tensors(desc):
        spec = t["T"]
        if spec["dev"] != "gpu" or spec["dtype"] != "float32" or numel(spec["shape"]) > HUGE_NUMEL:
            continue
        v = apply_view(stored_array(spec), spec, "np")
        masks.append((v != 0) & (np.abs(v) < np.finfo(np.float32).tiny))
    if not any(m.any() for m in masks):
        return exp
    shape = np.shape(exp.value.arr)
    if desc["op"] in ELEMENTWISE:
        try:
            sub = np.zeros(shape, bool)
            for m in masks:
                sub = sub | np.broadcast_to(m, shape)
        except ValueError:
            sub = np.ones(shape, bool)
    elif desc["op"] in SINGULAR:
        sub = np.ones(shape, bool)
    else:
        return exp
    amb = sub if exp.value.amb is None else (np.broadcast_to(exp.value.amb, shape) | sub)
    return replace(exp, value=replace(exp.value, amb=amb))


def _sub(kind: str, detail: str, desc: dict) -> str:
    """The part of a problem's signature that separates distinct bugs of one kind."""
    if kind in (
        "panic",
        "internal-error",
        "wrong-exception",
        "rejected-valid",
        "wrong-class",
        "base-exception",
    ):
        return detail.split(":", 1)[0]
    if kind == "accepted-invalid":
        return detail.rsplit("(", 1)[-1].rstrip(")") if detail.endswith(")") else ""
    dts = sorted({t["T"]["dtype"] for t in desc_tensors(desc)})
    return ",".join(dts)


def main() -> None:
    """The request loop."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the protocol
    np.seterr(all="ignore")
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        desc = msg["d"]
        try:
            problems = run_desc(desc)
        except Exception:  # noqa: BLE001  (a harness bug; the call itself was judged safely)
            problems = [("cpu", "harness", "worker", traceback.format_exc(limit=6)[-900:])]
        out = [
            {
                "dev": p[0],
                "kind": p[1],
                "sub": p[2] if p[1] == "harness" else _sub(p[1], p[2], desc),
                "detail": p[-1],
            }
            for p in problems
        ]
        proto.write(json.dumps({"i": msg["i"], "problems": out}) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
