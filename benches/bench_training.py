"""Training throughput (samples/s) of the three architectures, ferrograd beside PyTorch.

One epoch over the 8,000-sample training split of the bundled MNIST sample, batch 128,
Adam lr 0.001, after a short warm-up. PyTorch runs in the same process when `import torch`
works, or in another interpreter given with --torch-python (for a separate venv).

    python benches/bench_training.py --threads 1
    python benches/bench_training.py --threads 1 --torch-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

ARCHS = ["standard", "residual", "selu"]


def bench_ferrograd(x, y, threads: int, epochs: int) -> dict[str, float]:
    import ferrograd as fg

    fg.set_num_threads(threads)
    out = {}
    for arch in ARCHS:
        fg.manual_seed(0)
        from ferrograd.cli import build

        m = build(arch, 784, 10)
        opt = fg.optim.Adam(m.parameters(), lr=1e-3)
        xt, yt = fg.tensor(x), fg.tensor(y)
        m.train()

        def step(idx, m=m, opt=opt, xt=xt, yt=yt):
            loss = fg.losses.cross_entropy(m(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        for i in range(5):  # warm-up
            step(slice(i * 128, (i + 1) * 128))
        n = x.shape[0]
        t0 = time.perf_counter()
        for _ in range(epochs):
            order = fg.randperm(n)
            for s in range(0, n, 128):
                step(order[s : s + 128])
        out[arch] = epochs * n / (time.perf_counter() - t0)
    return out


def bench_torch(x, y, threads: int, epochs: int, device: str = "cpu", batch: int = 128) -> dict[str, float]:
    """PyTorch samples/s of the same three networks; `device` "cuda" runs them on the GPU."""
    import torch
    from torch import nn

    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)

    def standard():
        layers, n_in = [], 784
        for _ in range(2):
            layers += [nn.Linear(n_in, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Dropout(0.2)]
            n_in = 512
        return nn.Sequential(*layers, nn.Linear(512, 10))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(
                *[
                    m
                    for _ in range(2)
                    for m in (nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.1))
                ]
            )

        def forward(self, t):
            return t + self.f(t)

    def residual():
        return nn.Sequential(
            nn.Linear(784, 256),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            *[Block() for _ in range(10)],
            nn.Linear(256, 10),
        )

    def selu():
        layers, n_in = [], 784
        for _ in range(8):
            lin = nn.Linear(n_in, 256)
            nn.init.kaiming_normal_(lin.weight, nonlinearity="linear")
            nn.init.zeros_(lin.bias)
            layers += [lin, nn.SELU(), nn.AlphaDropout(0.05)]
            n_in = 256
        return nn.Sequential(*layers, nn.Linear(256, 10))

    out = {}
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    for arch, build in zip(ARCHS, (standard, residual, selu)):
        m = build().to(device)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lossf = nn.CrossEntropyLoss()
        m.train()

        def step(idx, m=m, opt=opt, lossf=lossf):
            loss = lossf(m(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

        for i in range(5):
            step(slice(i * batch, (i + 1) * batch))
        n = x.shape[0] - x.shape[0] % batch
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(n, device=device)
            for s in range(0, n, batch):
                step(order[s : s + batch])
        if device != "cpu":
            torch.cuda.synchronize()
        out[arch] = epochs * n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--torch-python", default=None, help="interpreter with torch installed (separate venv)")
    ap.add_argument(
        "--torch-only", default=None, help=argparse.SUPPRESS
    )  # internal: data file for a subprocess
    args = ap.parse_args()
    if args.torch_only:
        d = np.load(args.torch_only)
        print(json.dumps(bench_torch(d["x"], d["y"], args.threads, args.epochs)))
        return
    from ferrograd.data import load_mnist

    x, y = load_mnist()
    x, y = x[:8000], y[:8000]
    fg_res = bench_ferrograd(x, y, args.threads, args.epochs)
    torch_res, torch_note = None, "not installed"
    try:
        import torch

        torch_res, torch_note = bench_torch(x, y, args.threads, args.epochs), f"torch {torch.__version__}"
    except ImportError:
        if args.torch_python:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "data.npz")
                np.savez(path, x=x, y=y)
                r = subprocess.run(
                    [
                        args.torch_python,
                        __file__,
                        "--torch-only",
                        path,
                        "--threads",
                        str(args.threads),
                        "--epochs",
                        str(args.epochs),
                    ],
                    capture_output=True,
                    text=True,
                )
                if r.returncode == 0:
                    torch_res = json.loads(r.stdout.strip().splitlines()[-1])
                    v = subprocess.run(
                        [args.torch_python, "-c", "import torch; print(torch.__version__)"],
                        capture_output=True,
                        text=True,
                    ).stdout.strip()
                    torch_note = f"torch {v} (separate interpreter)"
                else:
                    torch_note = "failed: " + r.stderr.strip().splitlines()[-1]
    print(
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); threads: {args.threads}; PyTorch: {torch_note}"
    )
    print(f"{'architecture':<14}{'ferrograd':>14}{'PyTorch':>14}{'ratio':>9}   (samples/s, batch 128, Adam)")
    for arch in ARCHS:
        t = torch_res.get(arch) if torch_res else None
        ts = f"{t:>14,.0f}" if t else f"{'-':>14}"
        ratio = f"{fg_res[arch] / t:>8.2f}x" if t else f"{'-':>9}"
        print(f"{arch:<14}{fg_res[arch]:>14,.0f}{ts}{ratio}")


if __name__ == "__main__":
    main()
