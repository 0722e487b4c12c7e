"""CPU and GPU side by side from one run: matmul GFLOP/s (256, 1024, 4096 square), the
per-op dispatch overhead, and training samples/s of the three architectures; plus
PyTorch on the same devices when it is installed (CUDA for the GPU column).

    python benches/bench_gpu.py            # everything (4096 matmul included)
    python benches/bench_gpu.py --quick    # small sizes, for lavapipe or a smoke run

GPU timings include a read-back of one element so that queued work is finished.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

import ferrograd as fg


def best(fn, repeat: int = 5, number: int = 1) -> float:
    fn()  # warm-up (compiles pipelines on the GPU)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def sync(t) -> None:
    t.reshape(-1)[0].item()  # forces the queued GPU work to finish


def fg_matmul(n: int, device: str) -> float:
    a = fg.randn(n, n, device=device)
    b = fg.randn(n, n, device=device)
    reps = 3 if n >= 2048 else 10

    def run():
        c = None
        for _ in range(reps):
            c = a @ b
        sync(c)

    return 2 * n**3 * reps / best(run, repeat=3) / 1e9


def fg_overhead(device: str) -> float:
    a = fg.ones(4, device=device)
    b = fg.ones(4, device=device)
    n = 2000

    def run():
        c = a
        for _ in range(n):
            c = a + b
        sync(c)

    return best(run, repeat=3) / n * 1e6


def fg_training(arch: str, device: str, steps: int, x: np.ndarray, y: np.ndarray) -> float:
    from ferrograd.cli import build

    fg.manual_seed(0)
    m = build(arch, 784, 10).to(device)
    opt = fg.optim.Adam(m.parameters(), lr=1e-3)
    xt = fg.tensor(x, device=device)
    yt = fg.tensor(y)

    def step(i):
        s = (i * 128) % (x.shape[0] - 128)
        loss = fg.losses.cross_entropy(m(xt[s : s + 128]), yt[s : s + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step(0)
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(i)
    loss.item()
    return steps * 128 / (time.perf_counter() - t0)


def torch_figures(sizes, archs, steps, x, y) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    out = {}
    devs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devs:
        key = "gpu" if dev == "cuda" else "cpu"
        for n in sizes:
            a = torch.randn(n, n, device=dev)
            b = torch.randn(n, n, device=dev)

            def run(a=a, b=b, dev=dev):
                c = a @ b
                if dev == "cuda":
                    torch.cuda.synchronize()
                return c

            out[("matmul", n, key)] = 2 * n**3 / best(run, repeat=3) / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [256] if args.quick else [256, 1024, 4096]
    steps = 3 if args.quick else 30
    gpu = fg.gpu_available()
    gpu_name = fg._core.gpu_info()[0] if gpu else "none"
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores, {fg.get_num_threads()} threads)")
    print(f"GPU: {gpu_name}")
    devices = ["cpu"] + (["gpu"] if gpu else [])
    x, y = fg.data.load_mnist()
    rows = []
    torch_res = torch_figures(sizes, [], steps, x, y)
    for n in sizes:
        r = {d: fg_matmul(n, d) for d in devices}
        rows.append((f"matmul {n}^3 GFLOP/s", r, {d: torch_res.get(("matmul", n, d)) for d in devices}))
    rows.append(("a + b dispatch (us)", {d: fg_overhead(d) for d in devices}, {}))
    for arch in ["standard", "residual", "selu"]:
        r = {d: fg_training(arch, d, steps, x, y) for d in devices}
        rows.append((f"train {arch} samples/s", r, {}))
    head = f"{'benchmark':<28}{'cpu':>12}{'gpu':>12}{'gpu/cpu':>9}{'torch cpu':>12}{'torch gpu':>12}"
    print(head)
    print("-" * len(head))
    for name, r, t in rows:
        c, g = r.get("cpu"), r.get("gpu")
        ratio = f"{g / c:>8.2f}x" if (c and g) else f"{'-':>9}"
        if "dispatch" in name and c and g:
            ratio = f"{c / g:>8.2f}x"  # lower is better
        fmt = lambda v: f"{v:>12,.1f}" if v else f"{'-':>12}"  # noqa: E731
        print(f"{name:<28}{fmt(c)}{fmt(g)}{ratio}{fmt(t.get('cpu'))}{fmt(t.get('gpu'))}")


if __name__ == "__main__":
    main()
