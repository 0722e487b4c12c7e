#!/usr/bin/env python
"""Engine benchmark: ferrograd vs NumPy (and PyTorch when installed), from one run.

Prints one table:

* matmul throughput in GFLOP/s (float32, m x k x n = 1024x1024x1024 and 128x784x512), with one
  thread and with all threads for every library;
* per-op overhead in microseconds of a tiny ``a + b`` on 4-element float32 tensors, without
  and with ``requires_grad``;
* a tiny ``(x * 2).sum().backward()`` on a 4-element tensor, in microseconds.

Every figure is the minimum over repeats of ``timeit`` (the least disturbed run). NumPy's BLAS
thread count is set with threadpoolctl when it can be imported; otherwise NumPy's matmuls run in
a child process started with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set, and
the count the BLAS library then reports is printed.

    python benches/bench_engine.py            # full run
    python benches/bench_engine.py --quick    # smoke run, a few seconds
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import functools
import json
import operator
import os
import platform
import subprocess
import sys
import timeit
from typing import Any, Callable

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

MATMUL_SHAPES = [(1024, 1024, 1024), (128, 784, 512)]  # (m, k, n)
BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


# ------------------------------------------------------------------------------- timing


def best_seconds(fn: Callable[[], Any], repeat: int, min_time: float) -> float:
    """Seconds per call: min over `repeat` rounds of a loop that lasts at least `min_time`."""
    fn()  # warm up (allocations, thread pool start, lazy init)
    timer = timeit.Timer(fn)
    number = 1
    while True:  # like Timer.autorange, but with our own target time
        t = timer.timeit(number)
        if t >= min_time:
            break
        number = max(number * 2, int(number * min_time / max(t, 1e-9) * 1.1))
    return min(timer.repeat(repeat=repeat, number=number)) / number


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.mm_repeat = 2 if quick else 7
        self.mm_min_time = 0.02 if quick else 0.2
        self.op_repeat = 3 if quick else 9
        self.op_min_time = 0.01 if quick else 0.1


def gflops(m: int, k: int, n: int, seconds: float) -> float:
    return 2.0 * m * k * n / seconds / 1e9


def operands(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)


# ------------------------------------------------------------------------------- machine


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------- NumPy's BLAS


def _blas_get_threads_ctypes() -> int | None:
    """The thread count OpenBLAS reports, read through ctypes (None when unknown)."""
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.rsplit(" ", 1)[-1].strip()
                if "blas" in os.path.basename(p).lower() and ".so" in p:
                    paths.add(p)
    except OSError:
        return None
    names = (
        "openblas_get_num_threads",
        "openblas_get_num_threads64_",
        "scipy_openblas_get_num_threads",
        "scipy_openblas_get_num_threads64_",
    )
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown"


def numpy_matmul_inprocess(shapes, s: Settings) -> dict[str, float]:
    out = {}
    for m, k, n in shapes:
        a, b = operands(m, k, n)
        out[f"{m}x{k}x{n}"] = gflops(
            m, k, n, best_seconds(functools.partial(operator.matmul, a, b), s.mm_repeat, s.mm_min_time)
        )
    return out


class NumpyThreads:
    """Runs NumPy matmuls with a given BLAS thread count; reports the count actually used."""

    def __init__(self) -> None:
        try:
            import threadpoolctl  # type: ignore[import-not-found, unused-ignore]

            self.tpc: Any = threadpoolctl
            self.method = "threadpoolctl"
        except ImportError:
            self.tpc = None
            self.method = "subprocess with " + "/".join(BLAS_ENV_VARS[:2]) + " set"

    def default_threads(self) -> str:
        if self.tpc is not None:
            counts = {i["num_threads"] for i in self.tpc.threadpool_info() if i.get("user_api") == "blas"}
            return ",".join(map(str, sorted(counts))) or "?"
        n = _blas_get_threads_ctypes()
        return str(n) if n is not None else "?"

    def matmul(self, threads: int, s: Settings) -> tuple[dict[str, float], str]:
        if self.tpc is not None:
            with self.tpc.threadpool_limits(limits=threads, user_api="blas"):
                used = {i["num_threads"] for i in self.tpc.threadpool_info() if i.get("user_api") == "blas"}
                res = numpy_matmul_inprocess(MATMUL_SHAPES, s)
            return res, ",".join(map(str, sorted(used))) or "?"
        env = dict(os.environ)
        for v in BLAS_ENV_VARS:
            env[v] = str(threads)
        cmd = [sys.executable, os.path.abspath(__file__), "--numpy-worker"] + (["--quick"] if s.quick else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"NumPy worker failed:\n{proc.stderr}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        used = data["threads"]
        return data["gflops"], (str(used) if used is not None else f"{threads} (env, unverified)")


def numpy_worker(s: Settings) -> None:
    """Child-process entry: the BLAS thread count comes from the environment."""
    res = numpy_matmul_inprocess(MATMUL_SHAPES, s)
    print(json.dumps({"threads": _blas_get_threads_ctypes(), "gflops": res}))


# ------------------------------------------------------------------------------- ferrograd


def fg_matmul(fg: Any, threads: int, s: Settings) -> tuple[dict[str, float], int]:
    prev = fg.get_num_threads()
    fg.set_num_threads(threads)
    try:
        used = fg.get_num_threads()
        out = {}
        for m, k, n in MATMUL_SHAPES:
            a_np, b_np = operands(m, k, n)
            a, b = fg.from_numpy(a_np), fg.from_numpy(b_np)
            sec = best_seconds(functools.partial(operator.matmul, a, b), s.mm_repeat, s.mm_min_time)
            out[f"{m}x{k}x{n}"] = gflops(m, k, n, sec)
            # check that we timed a correct product (after timing, so NumPy's BLAS threads are idle)
            np.testing.assert_allclose((a @ b).numpy(), a_np @ b_np, rtol=1e-3, atol=1e-3 * np.sqrt(k))
        return out, used
    finally:
        fg.set_num_threads(prev)


def fg_micro(fg: Any, s: Settings) -> dict[str, float]:
    vals = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    a, b = fg.from_numpy(vals), fg.from_numpy(vals[::-1].copy())
    ga = fg.from_numpy(vals).requires_grad_(True)
    gb = fg.from_numpy(vals[::-1].copy()).requires_grad_(True)
    x = fg.from_numpy(vals).requires_grad_(True)
    return {
        "add": best_seconds(lambda: a + b, s.op_repeat, s.op_min_time) * 1e6,
        "add_grad": best_seconds(lambda: ga + gb, s.op_repeat, s.op_min_time) * 1e6,
        "backward": best_seconds(lambda: (x * 2).sum().backward(), s.op_repeat, s.op_min_time) * 1e6,
    }


def numpy_micro(s: Settings) -> dict[str, float]:
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    b = a[::-1].copy()
    return {"add": best_seconds(lambda: a + b, s.op_repeat, s.op_min_time) * 1e6}


# ------------------------------------------------------------------------------- PyTorch


def torch_all(torch: Any, all_threads: int, s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {"matmul": {}, "threads": {}}
    prev = torch.get_num_threads()
    try:
        for label, th in (("1", 1), ("all", all_threads)):
            torch.set_num_threads(th)
            out["threads"][label] = torch.get_num_threads()
            res = {}
            for m, k, n in MATMUL_SHAPES:
                a_np, b_np = operands(m, k, n)
                a, b = torch.from_numpy(a_np), torch.from_numpy(b_np)
                res[f"{m}x{k}x{n}"] = gflops(
                    m,
                    k,
                    n,
                    best_seconds(functools.partial(operator.matmul, a, b), s.mm_repeat, s.mm_min_time),
                )
            out["matmul"][label] = res
    finally:
        torch.set_num_threads(prev)
    vals = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    a, b = torch.from_numpy(vals.copy()), torch.from_numpy(vals[::-1].copy())
    ga, gb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    x = torch.from_numpy(vals.copy()).requires_grad_(True)
    out["add"] = best_seconds(lambda: a + b, s.op_repeat, s.op_min_time) * 1e6
    out["add_grad"] = best_seconds(lambda: ga + gb, s.op_repeat, s.op_min_time) * 1e6
    out["backward"] = best_seconds(lambda: (x * 2).sum().backward(), s.op_repeat, s.op_min_time) * 1e6
    return out


# ------------------------------------------------------------------------------- table


def speedup(fg_val: float | None, other: float | None, higher_is_better: bool) -> str:
    """ferrograd's speed relative to `other`: > 1 means ferrograd is faster."""
    if fg_val is None or other is None or fg_val <= 0 or other <= 0:
        return "-"
    r = fg_val / other if higher_is_better else other / fg_val
    return f"{r:.2f}x"


def fmt(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            + " |"
        )

    print(line(header))
    print(
        "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    )
    for r in rows:
        print(line(r))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer and shorter repeats")
    ap.add_argument("--threads", type=int, default=None, help="thread count for the 'all threads' rows")
    ap.add_argument("--numpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    s = Settings(args.quick)

    if args.numpy_worker:
        numpy_worker(s)
        return 0

    import ferrograd as fg

    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        torch = None

    all_threads = args.threads or max(cpu_count(), fg.get_num_threads())
    npt = NumpyThreads()

    print(
        f"ferrograd engine benchmark{' (--quick)' if s.quick else ''} - {datetime.date.today().isoformat()}"
    )
    print(f"CPU:        {cpu_model()} ({cpu_count()} usable cores, {platform.machine()})")
    print(f"Load avg:   {load_average()} (1/5/15 min; figures are noisy when this is not near 0)")
    print(f"Python:     {platform.python_version()}  NumPy {np.__version__} ({blas_name()})")
    print(f"ferrograd:  {getattr(fg, '__version__', '?')}, default threads {fg.get_num_threads()}")
    print(f"NumPy BLAS: default threads {npt.default_threads()}; thread control via {npt.method}")
    tver = f"{torch.__version__}, default threads {torch.get_num_threads()}" if torch else "not installed"
    print(f"PyTorch:    {tver}")
    print(f"'all threads' = {all_threads}; times are min over repeats; speedup > 1 means ferrograd is faster")
    print()

    fg_mm = {lbl: fg_matmul(fg, th, s) for lbl, th in (("1", 1), ("all", all_threads))}
    fg_us = fg_micro(fg, s)
    np_mm = {lbl: npt.matmul(th, s) for lbl, th in (("1", 1), ("all", all_threads))}
    np_us = numpy_micro(s)
    t = torch_all(torch, all_threads, s) if torch else None

    header = ["benchmark", "threads fg/np/torch", "ferrograd", "NumPy", "fg vs NumPy"]
    header += ["PyTorch", "fg vs PyTorch"] if t else ["PyTorch"]
    rows: list[list[str]] = []

    def add_row(
        name: str, threads: str, f: float | None, n: float | None, tv: float | None, hib: bool
    ) -> None:
        digits = 1 if hib else 2
        r = [name, threads, fmt(f, digits), fmt(n, digits), speedup(f, n, hib)]
        r += [fmt(tv, digits), speedup(f, tv, hib)] if t else ["not installed"]
        rows.append(r)

    for m, k, n in MATMUL_SHAPES:
        key = f"{m}x{k}x{n}"
        for lbl in ("1", "all"):
            fres, fth = fg_mm[lbl]
            nres, nth = np_mm[lbl]
            tv = t["matmul"][lbl][key] if t else None
            tth = str(t["threads"][lbl]) if t else "-"
            add_row(f"matmul f32 {key} GFLOP/s", f"{fth}/{nth}/{tth}", fres[key], nres[key], tv, True)
    add_row("a + b, 4 x f32 (us)", "-", fg_us["add"], np_us["add"], t["add"] if t else None, False)
    add_row("a + b, requires_grad (us)", "-", fg_us["add_grad"], None, t["add_grad"] if t else None, False)
    add_row("(x*2).sum().backward() (us)", "-", fg_us["backward"], None, t["backward"] if t else None, False)
    print_table(rows, header)
    print()
    print("GFLOP/s: higher is better (2*m*k*n flops per product, m x k x n). us: lower is better.")
    print("The fair matmul comparison is 1 thread vs 1 thread; NumPy's default BLAS uses every core.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
