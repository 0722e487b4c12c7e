"""Split-K on and off, at the products of a training step.

A 128-row batch through a 512-wide layer gives a 128 x 512 output: 16 workgroups of 64x64
on a GPU with 132 SMs (H100). Split-K cuts k into parts with their own workgroups and adds
them in a second pass. This times each product of a Standard network's step (784-512-512,
batch 128 and 512: forward A B^T, input gradient A B, weight gradient A^T B) with split-K
off and on, from one run.

    python benches/gpu_split_k.py [--reps 200]
"""

from __future__ import annotations

import argparse
import time

import ferrograd as fg

# (m, k, n, layout) of a Standard step's products, Linear weights stored (out, in)
SHAPES = [
    (128, 784, 512, "nt"),  # forward, layer 1
    (128, 512, 512, "nt"),  # forward, layer 2
    (128, 512, 512, "nn"),  # input gradient, layer 2
    (512, 128, 784, "tn"),  # weight gradient, layer 1 (k = batch: never split)
    (512, 784, 512, "nt"),  # forward, layer 1, batch 512
]


def gflops(m: int, k: int, n: int, layout: str, reps: int) -> float:
    a = fg.randn(*((k, m) if layout[0] == "t" else (m, k)), device="gpu")
    b = fg.randn(*((n, k) if layout[1] == "t" else (k, n)), device="gpu")
    a = a.T if layout[0] == "t" else a
    b = b.T if layout[1] == "t" else b
    best = float("inf")
    for _ in range(4):  # the first round compiles
        fg.gpu.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        fg.gpu.synchronize()
        best = min(best, time.perf_counter() - t0)
    del c
    return 2 * m * k * n * reps / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    if not fg.gpu.is_available():
        raise SystemExit("no GPU adapter")
    default = fg.gpu.matmul_split_k()
    settings = sorted({1, 2, 4, 8, 16, default})
    print(
        f"GPU: {fg.gpu.info()['name']}; kernel {fg.gpu.matmul_kernel()};"
        f" GFLOP/s, {args.reps} products per timing"
    )
    print(f"split-K up to (1: off; the default is {default})")
    print(f"{'m x k x n':<16}{'layout':>7}" + "".join(f"{s:>10}" for s in settings) + f"{'default/off':>13}")
    for m, k, n, layout in SHAPES:
        row = {}
        for s in settings:
            fg.gpu.matmul_split_k(s)
            row[s] = gflops(m, k, n, layout, args.reps)
        cells = "".join(f"{row[s]:>10,.1f}" for s in settings)
        print(f"{f'{m}x{k}x{n}':<16}{layout:>7}{cells}{row[default] / row[1]:>12.2f}x", flush=True)
    fg.gpu.matmul_split_k(default)


if __name__ == "__main__":
    main()
