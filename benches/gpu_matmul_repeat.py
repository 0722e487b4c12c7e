"""The 4096 float32 matmul, measured again and again: is it reliably fast?

Issue 4's bar for a lent H100 is "WGSL fp32 matmul at 4096 reaches at least 15 TFLOP/s",
and single runs of the first kernel straddled it (14.5-17.4). This runs `--rounds` rounds,
each timing `--reps` back-to-back products after one synchronize, with the library's
default kernel choice ("auto": the first product tunes) or `--matmul-kernel NAME`, and
prints every round plus min/median/max, next to PyTorch (cuBLAS fp32, TF32 off) timed the
same way when CUDA is there. `--dtype float16` times half operands instead (float32
accumulation): on tensor cores where the adapter offers them (`"tensor-cores"` in
`fg.gpu.info()["features"]`, matmul_coop.wgsl), beside cuBLAS half precision; issue 18's
bar is 300 TFLOP/s at 8192.

    python benches/gpu_matmul_repeat.py [--n 4096] [--rounds 15] [--reps 10] [--dtype float16]
"""

from __future__ import annotations

import argparse
import statistics
import time

import ferrograd as fg


def rounds_of(run, rounds: int) -> list[float]:
    run()  # warm-up: compiles, and "auto" tunes on its first product
    out = []
    for _ in range(rounds):
        out.append(run())
    return out


def ferrograd_round(n: int, reps: int, half: bool = False):
    a = fg.randn(n, n, device="gpu")
    b = fg.randn(n, n, device="gpu")
    if half:
        a, b = a.half(), b.half()

    def run() -> float:
        fg.gpu.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        fg.gpu.synchronize()
        del c
        return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12

    return run


def torch_round(n: int, reps: int, half: bool = False):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 against fp32
    dtype = torch.float16 if half else torch.float32
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)

    def run() -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        torch.cuda.synchronize()
        return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12

    return run


def summary(name: str, v: list[float]) -> str:
    return (
        f"{name:<22} min {min(v):7.2f}  median {statistics.median(v):7.2f}  max {max(v):7.2f} TFLOP/s"
        f"  over {len(v)} rounds"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--matmul-kernel", default=None, help='fix a kernel (default "auto")')
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = ap.parse_args()
    half = args.dtype == "float16"
    if not fg.gpu.is_available():
        raise SystemExit("no GPU adapter")
    if args.matmul_kernel:
        fg.gpu.matmul_kernel(args.matmul_kernel)
    info = fg.gpu.info()
    print(f"{args.n}^3 {args.dtype} matmul on {info['name']}, {args.reps} products per round")
    ours = rounds_of(ferrograd_round(args.n, args.reps, half), args.rounds)
    chosen = [e["chosen"] for e in fg.gpu.matmul_tuning() if e["m"] == e["n"] == e["k"] == args.n]
    kernel = args.matmul_kernel or (f"auto -> {chosen[0]}" if chosen else "auto (untuned)")
    if half:
        coop = [k for k in fg.gpu.stats()["pipelines"] if k.startswith("matmul_coop")]
        kernel = f"tensor cores ({coop[0]})" if coop else f"float32 kernels ({kernel}), no tensor cores"
    print("ferrograd rounds:", " ".join(f"{v:.2f}" for v in ours))
    print(summary(f"ferrograd {kernel}", ours))
    t = torch_round(args.n, args.reps, half)
    if t is not None:
        theirs = rounds_of(t, args.rounds)
        print(summary(f"cuBLAS {'fp16' if half else 'fp32'} (torch)", theirs))
        print(f"ferrograd / cuBLAS (medians): {statistics.median(ours) / statistics.median(theirs):.2f}")


if __name__ == "__main__":
    main()
