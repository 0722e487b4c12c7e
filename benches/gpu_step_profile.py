"""Where a GPU training step's time goes: host time spent recording each phase (forward,
backward, optimizer), against the step time with the GPU in the loop. If the recording
times add up to the step time, the host is the bottleneck; if not, the GPU is.

    python benches/gpu_step_profile.py [--arch standard] [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ferrograd as fg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="standard")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--matmul-split-k", type=int, help="the most parts a GPU matmul splits k into (1: off)")
    args = ap.parse_args()
    if args.matmul_split_k:
        fg.gpu.matmul_split_k(args.matmul_split_k)
    from ferrograd.cli import build

    x, y = fg.data.load_mnist()
    x, y = x[:8000], y[:8000]
    fg.manual_seed(0)
    m = build(args.arch, 784, 10).to("gpu")
    opt = fg.optim.Adam(m.parameters(), lr=1e-3)
    xt, yt = fg.tensor(x, device="gpu"), fg.tensor(y)
    b = args.batch
    phases = {"index": 0.0, "forward+loss": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(i, timed):
        t0 = time.perf_counter()
        idx = order[(i * b) % (8000 - b) : (i * b) % (8000 - b) + b]
        xb, yb = xt[idx], yt[idx]
        t1 = time.perf_counter()
        loss = fg.losses.cross_entropy(m(xb), yb)
        t2 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if timed:
            for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k] += v
        return loss

    order = fg.randperm(8000)
    for i in range(5):
        step(i, False).item()
    fg._core.gpu_profile(reset=True)  # drop the warm-up's kernels (None when not profiling)
    s0 = fg._core.gpu_stats()
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step(i, True)
    t_rec = time.perf_counter() - t0
    loss.item()
    t_all = time.perf_counter() - t0
    s1 = fg._core.gpu_stats()
    n = args.steps
    split = fg.gpu.matmul_split_k()
    print(f"{args.arch} batch {b} on {fg._core.gpu_info()[0]}: {n} steps, matmul split-K up to {split}")
    for k, v in phases.items():
        print(f"  host {k:<14}{v / n * 1e6:>9.1f} us/step")
    print(f"  host total          {t_rec / n * 1e6:>9.1f} us/step")
    print(f"  wall incl. GPU      {t_all / n * 1e6:>9.1f} us/step  ({n * b / t_all:,.0f} samples/s)")
    print(
        f"  dispatches {(s1['dispatches'] - s0['dispatches']) / n:.0f}/step, "
        f"submits {(s1['submits'] - s0['submits']) / n:.2f}/step, "
        f"buffers created {s1['buffers_created'] - s0['buffers_created']}"
    )
    prof = fg._core.gpu_profile()
    if prof is not None:  # FERROGRAD_GPU_PROFILE=1: GPU time per kernel over the timed steps
        total = sum(us for name, _, us in prof)
        print(f"  GPU time per step by kernel (timestamps), total {total / n:.1f} us:")
        for name, count, us in prof:
            print(f"    {name:<16}{count / n:>6.1f} x {us / max(count, 1):>8.1f} us = {us / n:>8.1f} us/step")
        # the same steps, waiting for the GPU after each: the latency of one step
    t0 = time.perf_counter()
    for i in range(20):
        step(i, False).item()
    print(f"  synced per step     {(time.perf_counter() - t0) / 20 * 1e6:>9.1f} us/step")


if __name__ == "__main__":
    np.random.seed(0)
    main()
