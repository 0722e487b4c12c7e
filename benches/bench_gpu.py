"""CPU and GPU side by side from one run: matmul GFLOP/s (256, 1024, 4096 square, and the
transposed layouts the backward uses at the largest size), the per-op dispatch overhead,
and training samples/s of the three architectures at each batch size; plus PyTorch on the
same devices when it is installed (CUDA for the GPU column).

    python benches/bench_gpu.py            # everything (4096 matmul included)
    python benches/bench_gpu.py --quick    # small sizes, for lavapipe or a smoke run
    python benches/bench_gpu.py --batch 128,1024 --epochs 2
    python benches/bench_gpu.py --sweep --only-matmul --no-cpu --no-torch   # every GPU matmul kernel

The GPU matmul kernel is chosen as the library does by default ("auto": the first product of
each large shape times every kernel and keeps the fastest; the choices are printed after the
table), unless `--matmul-kernel NAME` fixes one. `--sweep` adds a table of every kernel at
the largest sizes and each operand layout.

GPU timings end with a read-back of one element so that queued work is finished. Training
runs `--epochs` passes over the 8,000-sample training split (Adam, lr 0.001), after a
warm-up, in a plain loop (no per-batch read-back), as bench_training.py does on the CPU.
Each GPU training row is followed by the same steps replayed from a captured step
(`fg.gpu.graph`), and by mixed precision (float16 autocast with a GradScaler, which decides
on the device), eager and replayed (issue 18's bars: Standard at batch 128, 400,000 samples/s
in float32 and 1,000,000 in mixed precision on an H100); `--no-mixed` leaves those out.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

import ferrograd as fg

ARCHS = ["standard", "residual", "selu"]


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


def fg_matmul(n: int, device: str, layout: str = "nn", mkn: tuple[int, int, int] | None = None) -> float:
    """GFLOP/s of an n x n x n product (or m x k x n with `mkn`) in `layout` (a "t" stores
    that operand transposed)."""
    m, k, n = mkn or (n, n, n)
    a = fg.randn(*((k, m) if layout[0] == "t" else (m, k)), device=device)
    b = fg.randn(*((n, k) if layout[1] == "t" else (k, n)), device=device)
    a = a.T if layout[0] == "t" else a
    b = b.T if layout[1] == "t" else b
    flops = 2 * m * k * n
    if device == "gpu":  # enough products per timing that one wait is noise
        reps = max(10, min(500, int(2e10 // flops)))
    else:
        reps = 3 if flops >= 2 * 2048**3 else 10

    def run():
        c = None
        for _ in range(reps):
            c = a @ b
        sync(c)

    return flops * reps / best(run, repeat=3) / 1e9


def shape_of(size: str) -> tuple[int, int, int]:
    """(m, k, n) of "1024" (square) or "128x784x512"."""
    dims = [int(v) for v in size.lower().split("x")]
    if len(dims) == 1:
        return dims[0], dims[0], dims[0]
    if len(dims) != 3:
        raise SystemExit(f"--sweep-sizes: {size!r} is neither N nor MxKxN")
    return dims[0], dims[1], dims[2]


def sweep(sizes: list[str], layouts) -> None:
    """GFLOP/s of every GPU matmul kernel at each size ("1024" square, or "MxKxN" such as a
    training step's 128x784x512) and layout (one fixed kernel at a time)."""
    names = fg._core.gpu_matmul_kernels()
    before = fg._core.gpu_matmul_kernel()
    cols = [(n, lay) for n in sizes for lay in layouts]
    width = max(12, max(len(n) for n in sizes) + 5)
    head = f"{'kernel':<16}" + "".join(f"{f'{n} {lay}':>{width}}" for n, lay in cols)
    print("GPU matmul kernels, GFLOP/s (nn: A B, nt: A B^T, tn: A^T B)")
    print(head)
    print("-" * len(head))
    for name in names:
        fg._core.gpu_matmul_kernel(name)
        row = [fg_matmul(0, "gpu", lay, shape_of(n)) for n, lay in cols]
        print(f"{name:<16}" + "".join(f"{v:>{width},.1f}" for v in row), flush=True)
    fg._core.gpu_matmul_kernel(before)
    print()


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


def fg_training(
    arch: str,
    device: str,
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    epochs: int,
    graph: bool = False,
    mixed: bool = False,
):
    """samples/s, and GPU dispatches per step (None on the CPU); `graph`: each step a replay
    of a captured one (fg.gpu.graph), the batch copied into its static inputs; `mixed`:
    float16 autocast and a GradScaler (the GPU's mixed precision)."""
    from ferrograd.cli import build

    fg.manual_seed(0)
    m = build(arch, 784, 10).to(device)
    m.train()
    opt = fg.optim.Adam(m.parameters(), lr=1e-3)
    scaler = fg.GradScaler("gpu", enabled=mixed)
    xt = fg.tensor(x, device=device)
    yt = fg.tensor(y)

    def train(xb, yb):
        with fg.autocast("gpu", dtype=fg.float16, enabled=mixed):
            loss = fg.losses.cross_entropy(m(xb), yb)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    def step(idx):
        return train(xt[idx], yt[idx])

    for i in range(3):  # warm-up (starts wrap around: --quick has 1,024 samples)
        s = i * batch % max(1, x.shape[0] - batch + 1)
        step(slice(s, s + batch))
    step(slice(0, batch)).item()
    if graph:
        sx, sy = xt[:batch].clone(), yt[:batch].clone()
        opt.zero_grad()
        g = fg.gpu.Graph()
        with fg.gpu.graph(g):
            static_loss = train(sx, sy)

        def step(idx):  # noqa: F811
            sx.copy_(xt[idx])
            sy.copy_(yt[idx])
            g.replay()
            return static_loss

    n = x.shape[0] - x.shape[0] % batch
    stats0 = fg._core.gpu_stats() if device == "gpu" else None
    t0 = time.perf_counter()
    steps = 0
    loss = None
    for _ in range(epochs):
        order = fg.randperm(n)
        for s in range(0, n, batch):
            loss = step(order[s : s + batch])
            steps += 1
    loss.item()
    rate = epochs * n / (time.perf_counter() - t0)
    per_step = None
    if stats0 is not None:
        per_step = (fg._core.gpu_stats()["dispatches"] - stats0["dispatches"]) / steps
    return rate, per_step


def torch_matmul(sizes, layouts) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    out = {}
    devs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devs:
        key = "gpu" if dev == "cuda" else "cpu"
        for n, lay in [(n, "nn") for n in sizes] + [(sizes[-1], lay) for lay in layouts]:
            a = torch.randn(n, n, device=dev)
            b = torch.randn(n, n, device=dev)
            a = a.T if lay[0] == "t" else a
            b = b.T if lay[1] == "t" else b

            def run(a=a, b=b, dev=dev):
                c = a @ b
                if dev == "cuda":
                    torch.cuda.synchronize()
                return c

            out[("matmul", n, lay, key)] = 2 * n**3 / best(run, repeat=3) / 1e9
    return out


def torch_training(x, y, batch: int, epochs: int) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    from bench_training import bench_torch

    out = {}
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        r = bench_torch(x, y, 0, epochs, device=dev, batch=batch)
        for arch, v in r.items():
            out[(arch, "gpu" if dev == "cuda" else "cpu")] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", default="128,512", help="training batch sizes, comma-separated")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument(
        "--no-graph", action="store_true", help="skip the GPU training rows replaying a captured step"
    )
    ap.add_argument("--no-cpu-training", action="store_true", help="skip ferrograd's CPU training column")
    ap.add_argument("--no-mixed", action="store_true", help="skip the GPU mixed-precision training rows")
    ap.add_argument("--only-matmul", action="store_true", help="the matmul rows alone")
    ap.add_argument("--no-cpu", action="store_true", help="the gpu column alone")
    ap.add_argument("--matmul-kernel", help='a GPU matmul kernel for the whole run (default "auto")')
    ap.add_argument("--matmul-split-k", type=int, help="the most parts a GPU matmul splits k into (1: off)")
    ap.add_argument("--sweep", action="store_true", help="every GPU matmul kernel at each size and layout")
    ap.add_argument(
        "--sweep-sizes", default="1024,4096", help="sizes for --sweep, comma-separated: N (square) or MxKxN"
    )
    args = ap.parse_args()
    sizes = [256] if args.quick else [256, 1024, 4096]
    layouts = [] if args.quick else ["nt", "tn"]
    batches = [int(b) for b in args.batch.split(",")]
    gpu = fg.gpu_available()
    gpu_name = fg._core.gpu_info()[0] if gpu else "none"
    torch_note = "not installed"
    if not args.no_torch:
        try:
            import torch

            torch_note = f"torch {torch.__version__}" + (
                f", CUDA on {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
            )
        except ImportError:
            pass
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores, {fg.get_num_threads()} threads)")
    print(f"GPU: {gpu_name}; PyTorch: {torch_note}")
    devices = ([] if args.no_cpu else ["cpu"]) + (["gpu"] if gpu else [])
    if gpu and args.matmul_kernel:
        fg._core.gpu_matmul_kernel(args.matmul_kernel)
    if gpu and args.matmul_split_k:
        fg.gpu.matmul_split_k(args.matmul_split_k)
    if gpu:
        print(f"GPU matmul kernel: {fg._core.gpu_matmul_kernel()}, split-K up to {fg.gpu.matmul_split_k()}")
    if gpu and args.sweep:
        sweep(args.sweep_sizes.split(","), ["nn", "nt", "tn"])
    x, y = fg.data.load_mnist()
    x, y = x[:8000], y[:8000]
    if args.quick:
        x, y = x[:1024], y[:1024]
    rows = []
    tm = {} if args.no_torch else torch_matmul(sizes, layouts)
    for n, lay in [(n, "nn") for n in sizes] + [(sizes[-1], lay) for lay in layouts]:
        r = {d: fg_matmul(n, d, lay) for d in devices}
        name = f"matmul {n}^3 GFLOP/s" + ("" if lay == "nn" else f" ({'A^T B' if lay == 'tn' else 'A B^T'})")
        rows.append((name, r, {d: tm.get(("matmul", n, lay, d)) for d in devices}))
    if not args.only_matmul:
        rows.append(("a + b dispatch (us)", {d: fg_overhead(d) for d in devices}, {}))
    notes = []
    for batch in [] if args.only_matmul else batches:
        tt = {} if args.no_torch else torch_training(x, y, batch, args.epochs)
        for arch in ARCHS:
            r = {}
            for d in devices:
                if d == "cpu" and args.no_cpu_training:
                    continue
                r[d], per_step = fg_training(arch, d, x, y, batch, args.epochs)
                if per_step is not None:
                    notes.append(f"{arch} batch {batch}: {per_step:.0f} gpu dispatches per step")
            rows.append((f"train {arch} b{batch} samples/s", r, {d: tt.get((arch, d)) for d in devices}))
            if gpu and not args.no_graph:
                rate, _ = fg_training(arch, "gpu", x, y, batch, args.epochs, graph=True)
                rows.append(("  replayed (fg.gpu.graph)", {"gpu": rate}, {}))
            if gpu and not args.no_mixed:
                rate, per_step = fg_training(arch, "gpu", x, y, batch, args.epochs, mixed=True)
                rows.append(("  mixed precision", {"gpu": rate}, {}))
                notes.append(f"{arch} batch {batch} mixed: {per_step:.0f} gpu dispatches per step")
                if not args.no_graph:
                    rate, _ = fg_training(arch, "gpu", x, y, batch, args.epochs, graph=True, mixed=True)
                    rows.append(("  mixed, replayed", {"gpu": rate}, {}))
    head = f"{'benchmark':<34}{'cpu':>12}{'gpu':>12}{'gpu/cpu':>9}{'torch cpu':>12}{'torch gpu':>12}"
    print(head)
    print("-" * len(head))
    for name, r, t in rows:
        c, g = r.get("cpu"), r.get("gpu")
        ratio = f"{g / c:>8.2f}x" if (c and g) else f"{'-':>9}"
        if "dispatch" in name and c and g:
            ratio = f"{c / g:>8.2f}x"  # lower is better
        fmt = lambda v: f"{v:>12,.1f}" if v else f"{'-':>12}"  # noqa: E731
        print(f"{name:<34}{fmt(c)}{fmt(g)}{ratio}{fmt(t.get('cpu'))}{fmt(t.get('gpu'))}")
    for line in notes:
        print(line)
    for (lay, m, n, k), chosen, times in fg._core.gpu_matmul_tuning() if gpu else []:
        by_speed = sorted((t, name) for name, t in times if t == t)
        ranked = ", ".join(f"{name} {2 * m * n * k / t / 1e9:,.0f}" for t, name in by_speed)
        ranked += "".join(f", {name} REJECTED (wrong result)" for name, t in times if t != t)
        print(f"auto chose {chosen} for {lay} {m}x{k}x{n} (GFLOP/s while tuning: {ranked})")


if __name__ == "__main__":
    main()
