"""Conv2d training throughput (samples/s): PyTorch's MNIST example network, ferrograd beside
PyTorch, at one thread and at all threads.

The network of `examples/train_cnn.py` (conv 1->32 and 32->64, 3x3; max pool 2; dropout;
9216->128->10; log-softmax and NLL), Adadelta lr 1.0, batch 64, over the first 4,000 digits
of the bundled MNIST sample after a warm-up. PyTorch runs in this process when `import
torch` works, or in another interpreter given with --torch-python (a separate venv).

    python benches/bench_cnn.py
    python benches/bench_cnn.py --torch-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

BATCH = 64


def bench_ferrograd(x, y, threads: int) -> float:
    """ferrograd samples/s of one pass over x at `threads` threads."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
    from train_cnn import Net

    import ferrograd as fg
    import ferrograd.nn.functional as F

    fg.set_num_threads(threads)
    fg.manual_seed(0)
    net = Net()
    opt = fg.optim.Adadelta(net.parameters(), lr=1.0)
    xt, yt = fg.tensor(x), fg.tensor(y)
    net.train()

    def step(s: int) -> None:
        opt.zero_grad()
        F.nll_loss(net(xt[s : s + BATCH]), yt[s : s + BATCH]).backward()
        opt.step()

    for s in range(0, 3 * BATCH, BATCH):  # warm-up: kernels, the host buffer cache
        step(s)
    n = x.shape[0] - x.shape[0] % BATCH
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        step(s)
    return n / (time.perf_counter() - t0)


def bench_torch(x, y, threads: int) -> float:
    """PyTorch samples/s of the same network and loop."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, t):
            t = F.relu(self.conv2(F.relu(self.conv1(t))))
            t = self.dropout1(F.max_pool2d(t, 2))
            t = self.dropout2(F.relu(self.fc1(torch.flatten(t, 1))))
            return F.log_softmax(self.fc2(t), dim=1)

    net = Net()
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()

    def step(s: int) -> None:
        opt.zero_grad()
        F.nll_loss(net(xt[s : s + BATCH]), yt[s : s + BATCH]).backward()
        opt.step()

    for s in range(0, 3 * BATCH, BATCH):
        step(s)
    n = x.shape[0] - x.shape[0] % BATCH
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        step(s)
    return n / (time.perf_counter() - t0)


def torch_in(python: str | None, x, y, threads: int) -> tuple[float | None, str]:
    """PyTorch's figure from this process or from `python`, and what ran it."""
    try:
        import torch

        return bench_torch(x, y, threads), f"torch {torch.__version__}"
    except ImportError:
        if not python:
            return None, "not installed (give --torch-python)"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, x=x, y=y)
        cmd = [python, __file__, "--torch-only", path, "--threads", str(threads)]
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["samples_per_s"], f"torch {out['version']} (separate interpreter)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="default: 1 and all cores")
    ap.add_argument("--torch-python", default=None, help="interpreter with torch installed (separate venv)")
    ap.add_argument("--torch-only", default=None, help=argparse.SUPPRESS)  # internal: a subprocess's data
    args = ap.parse_args()
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    if args.torch_only:
        import torch

        d = np.load(args.torch_only)
        rate = bench_torch(d["x"], d["y"], threads[0])
        print(json.dumps({"samples_per_s": rate, "version": torch.__version__}))
        return
    from ferrograd.data import load_mnist

    x, y = load_mnist()
    x = ((x[: args.samples].reshape(-1, 1, 28, 28) - 0.1307) / 0.3081).astype(np.float32)
    y = y[: args.samples].astype(np.int64)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); batch {BATCH}, Adadelta, {len(x)} samples")
    print(f"{'threads':<9}{'ferrograd':>12}{'PyTorch':>12}{'ratio':>9}   (samples/s)")
    for t in threads:
        mine = bench_ferrograd(x, y, t)
        theirs, note = torch_in(args.torch_python, x, y, t)
        ts = f"{theirs:>12,.0f}" if theirs else f"{'-':>12}"
        ratio = f"{mine / theirs:>8.2f}x" if theirs else f"{'-':>9}"
        print(f"{t:<9}{mine:>12,.0f}{ts}{ratio}   PyTorch: {note}")


if __name__ == "__main__":
    main()
