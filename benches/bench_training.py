"""Training throughput (samples/s) of the three architectures, ferrograd beside PyTorch,
against the GEMM limit, with peak memory against what training needs.

One epoch over the 8,000-sample training split of the bundled MNIST sample, batch 128,
Adam lr 0.001, after a short warm-up, at each thread count given. PyTorch runs in the same
process when `import torch` works, or in another interpreter given with --torch-python.

For each network it prints:
- samples/s of ferrograd and PyTorch and their ratio;
- the GEMM limit: the samples/s the step's matrix products alone allow, timed in the same
  run on the step's exact shapes and layouts (forward x W^T, weight gradient dY^T x, input
  gradient dY W, none for the first layer), taking per shape the faster of ferrograd's and
  PyTorch's sgemm (the machine's reach), and the fraction of that limit each library reaches;
- peak RSS during training (each network in a fresh process) against the bytes training
  needs: parameters, their gradients and Adam's two moments (16 bytes per parameter), plus
  the activations the backward pass needs (`saved_activation_bytes`).

    python benches/bench_training.py --threads 1,2
    python benches/bench_training.py --threads 1,2 --torch-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs

BATCH = 128
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


def gemm_shapes(arch: str) -> list[tuple[int, int, int, str]]:
    """(m, k, n, layout) of each matrix product in one training step of `arch` at BATCH:
    "nt" is x W^T (forward), "tn" dY^T x (weight gradient), "nn" dY W (input gradient, none
    for the first layer, whose input is data)."""
    from ferrograd import nn
    from ferrograd.cli import build

    shapes = []
    for i, m in enumerate(x for x in build(arch, 784, 10).modules() if type(x) is nn.Linear):
        k, n = m.in_features, m.out_features
        shapes.append((BATCH, k, n, "nt"))
        shapes.append((n, BATCH, k, "tn"))
        if i > 0:
            shapes.append((BATCH, n, k, "nn"))
    return shapes


def _time_gemms(shapes, make, mm, reps: int = 30) -> list[float]:
    """Median seconds of each product in `shapes`, with operands from `make(rows, cols)`."""
    out = []
    for m, k, n, layout in shapes:
        a = make(k, m).T if layout == "tn" else make(m, k)
        b = make(n, k).T if layout == "nt" else make(k, n)
        for _ in range(3):
            mm(a, b)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            mm(a, b)
            ts.append(time.perf_counter() - t0)
        out.append(float(np.median(ts)))
    return out


def gemm_times_ferrograd(threads: int) -> dict[str, list[float]]:
    import ferrograd as fg

    fg.set_num_threads(threads)
    rng = np.random.default_rng(0)
    make = lambda r, c: fg.tensor(rng.standard_normal((r, c), dtype=np.float32))  # noqa: E731
    return {a: _time_gemms(gemm_shapes(a), make, lambda a, b: (a @ b).numpy()) for a in ARCHS}


def gemm_times_torch(threads: int, shapes: dict[str, list]) -> dict[str, list[float]]:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    make = lambda r, c: torch.randn(r, c)  # noqa: E731
    return {a: _time_gemms([tuple(s) for s in shapes[a]], make, torch.matmul) for a in ARCHS}


def saved_activation_bytes(model, batch: int = BATCH) -> int:
    """Bytes of what a step must keep from the forward pass for the backward pass, at
    float32: each Linear's input, each BatchNorm's normalized output, each ReLU/SELU's
    output, each (Alpha)Dropout's mask at one byte per element, and the batch's logits
    and softmax; and the data batch itself (gathered per step)."""
    from ferrograd import nn

    widths: list[tuple[str, int]] = []
    hooks = []
    for m in model.modules():
        if type(m) in (nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.SELU, nn.Dropout, nn.AlphaDropout):
            hooks.append(
                m.register_forward_hook(
                    lambda mod, i, o: widths.append((type(mod).__name__, i[0].shape[-1], o.shape[-1]))
                )
            )
    import ferrograd as fg

    model.eval()
    with fg.no_grad():
        logits = model(fg.zeros(1, 784))
    model.train()
    for h in hooks:
        h.remove()
    per_row = 784 * 4 + 2 * logits.shape[-1] * 4  # the data row; logits and softmax
    for name, w_in, w_out in widths:
        per_row += w_in * 4 if name == "Linear" else w_out if "Dropout" in name else w_out * 4
    return per_row * batch


def _vm(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(arch: str, threads: int) -> dict[str, int]:
    """Peak RSS growth while `arch` trains one epoch (run in a fresh process): the process
    is first warmed by a shallower network of the same layer types and widths (so the
    library's code pages, each thread's gemm buffers and the interpreter's caches are in),
    then what it freed is returned to the system (malloc_trim) and the peak is reset to the
    current RSS (/proc/self/clear_refs), and the network is built and trained."""
    import ferrograd as fg
    from ferrograd.cli import build
    from ferrograd.data import load_mnist

    fg.set_num_threads(threads)
    x, y = load_mnist()
    xt, yt = fg.tensor(x[:8000]), fg.tensor(y[:8000])

    def train(m, steps):
        opt = fg.optim.Adam(m.parameters(), lr=1e-3)
        m.train()
        n = 8000 - 8000 % BATCH
        for i in range(steps):
            s = (i * BATCH) % n
            idx = fg.arange(s, s + BATCH)
            loss = fg.losses.cross_entropy(m(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    small = {
        "standard": fg.models.standard(784, 10, depth=1),
        "residual": fg.models.residual(784, 10, blocks=1),
        "selu": fg.models.self_normalizing(784, 10, depth=2),
    }[arch]
    train(small, 3)
    del small
    fg.cpu.empty_cache()
    # what the warm-up freed goes back to the system, so the network cannot reuse it unseen
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (the peak) to the current RSS
    base = _vm("VmRSS")
    fg.manual_seed(0)
    model = build(arch, 784, 10)
    n_params = sum(p.numel() for p in model.parameters())
    train(model, 8000 // BATCH)
    return {
        "peak_growth": _vm("VmHWM") - base,
        "state": 16 * n_params,
        "activations": saved_activation_bytes(model),
        "cached": fg.cpu.memory_stats()["cached_bytes"],
    }


def memory(arch: str, threads: int) -> dict[str, int]:
    r = subprocess.run(
        [sys.executable, __file__, "--memory-child", arch, "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def _torch_in_subprocess(py: str, x, y, threads: int, epochs: int, shapes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, x=x, y=y)
        with open(os.path.join(tmp, "shapes.json"), "w") as f:
            json.dump(shapes, f)
        r = subprocess.run(
            [py, __file__, "--torch-only", path, "--threads", str(threads), "--epochs", str(epochs)],
            capture_output=True,
            text=True,
        )
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--torch-python", default=None, help="interpreter with torch installed (separate venv)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS runs")
    ap.add_argument("--torch-only", default=None, help=argparse.SUPPRESS)  # internal: data file
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)  # internal: an arch
    args = ap.parse_args()
    threads_list = [int(t) for t in str(args.threads).split(",")]
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, threads_list[0])))
        return
    if args.torch_only:
        d = np.load(args.torch_only)
        with open(os.path.join(os.path.dirname(args.torch_only), "shapes.json")) as f:
            shapes = json.load(f)
        t = threads_list[0]
        print(
            json.dumps(
                {"samples": bench_torch(d["x"], d["y"], t, args.epochs), "gemm": gemm_times_torch(t, shapes)}
            )
        )
        return
    from ferrograd.data import load_mnist

    x, y = load_mnist()
    x, y = x[:8000], y[:8000]
    shapes = {a: gemm_shapes(a) for a in ARCHS}
    in_process = False
    try:
        import torch

        in_process, torch_note = True, f"torch {torch.__version__}"
    except ImportError:
        torch_note = "not installed"
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); batch {BATCH}, Adam; PyTorch: ", end="")
    for threads in threads_list:
        fg_res = bench_ferrograd(x, y, threads, args.epochs)
        fg_gemm = gemm_times_ferrograd(threads)
        torch_res = torch_gemm = None
        if in_process:
            torch_res, torch_gemm = bench_torch(x, y, threads, args.epochs), gemm_times_torch(threads, shapes)
        elif args.torch_python:
            try:
                r = _torch_in_subprocess(args.torch_python, x, y, threads, args.epochs, shapes)
                torch_res, torch_gemm = r["samples"], r["gemm"]
                v = subprocess.run(
                    [args.torch_python, "-c", "import torch; print(torch.__version__)"],
                    capture_output=True,
                    text=True,
                )
                torch_note = f"torch {v.stdout.strip()} (separate interpreter)"
            except RuntimeError as e:
                torch_note = f"failed: {e}"
        if threads == threads_list[0]:
            print(torch_note)
        print(f"\n{threads} thread(s)")
        print(
            f"{'network':<10}{'ferrograd':>11}{'PyTorch':>10}{'ratio':>7}"
            f"{'fg GEMM':>9}{'GEMM':>7}{'GEMM limit':>12}{'fg frac':>9}{'torch frac':>11}"
        )
        for arch in ARCHS:
            best = (
                fg_gemm[arch]
                if torch_gemm is None
                else [min(a, b) for a, b in zip(fg_gemm[arch], torch_gemm[arch])]
            )
            flops = sum(2 * m * k * n for m, k, n, _ in shapes[arch])
            limit = BATCH / sum(best)
            t = torch_res.get(arch) if torch_res else None
            print(
                f"{arch:<10}{fg_res[arch]:>11,.0f}"
                + (f"{t:>10,.0f}{fg_res[arch] / t:>6.2f}x" if t else f"{'-':>10}{'-':>7}")
                + f"{flops / sum(fg_gemm[arch]) / 1e9:>9.0f}{flops / sum(best) / 1e9:>7.0f}"
                + f"{limit:>12,.0f}{fg_res[arch] / limit:>9.2f}"
                + (f"{t / limit:>11.2f}" if t else f"{'-':>11}")
            )
    if args.no_memory:
        return
    print("\npeak RSS growth while training (MB), against state (16 B/parameter) + saved activations")
    print(f"{'network':<10}{'threads':>8}{'peak':>9}{'needed':>9}{'state':>9}{'activ.':>9}{'ratio':>7}")
    for threads in threads_list:
        for arch in ARCHS:
            r = memory(arch, threads)
            need = r["state"] + r["activations"]
            mb = lambda b: f"{b / 1e6:>9.1f}"  # noqa: E731
            print(
                f"{arch:<10}{threads:>8}{mb(r['peak_growth'])}{mb(need)}"
                f"{mb(r['state'])}{mb(r['activations'])}{r['peak_growth'] / need:>7.2f}"
            )


if __name__ == "__main__":
    main()
