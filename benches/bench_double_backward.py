"""Higher-order gradients beside PyTorch: a WGAN-GP critic step and a Hessian-vector product.

The same code runs on both libraries (their APIs agree here), one after the other:

- critic: 784-512-512-1 with LeakyReLU(0.2), batch 64 real + 64 generated, Adam; the loss
  is D(fake) - D(real) + 10 (|grad_x D(x_hat)| - 1)^2 on interpolates x_hat, so each step
  runs a create_graph backward and a backward through it;
- hvp: H v of a 784-256-10 tanh network's cross-entropy with respect to its weights
  (grad with create_graph, then grad of (g . v)), batch 128.

Steps per second, the median of `--rounds` timed runs of `--steps` steps after a warm-up,
at `--threads` threads each. PyTorch runs in this interpreter when `import torch` works,
else in the one given with --torch-python.

    python benches/bench_double_backward.py --threads 1 --torch-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from _common import cpu_model


def run(lib: str, threads: int, steps: int, rounds: int) -> dict[str, float]:
    if lib == "torch":
        import torch as T
    else:
        import ferrograd as T
    T.set_num_threads(threads)
    T.manual_seed(0)
    nn = T.nn
    critic = nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 512), nn.LeakyReLU(0.2), nn.Linear(512, 1)
    )
    opt = T.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.9))
    real, fake = T.rand(64, 784), T.rand(64, 784)

    def critic_step():
        eps = T.rand(64, 1)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
        (g,) = T.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
        loss = critic(fake).mean() - critic(real).mean() + 10 * gp
        opt.zero_grad()
        loss.backward()
        opt.step()

    net = nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 10))
    params = list(net.parameters())
    x, y = T.rand(128, 784), T.randint(0, 10, (128,))
    vs = [T.randn(*p.shape) for p in params]

    def hvp_step():
        loss = nn.functional.cross_entropy(net(x), y)
        gs = T.autograd.grad(loss, params, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(gs, vs))
        T.autograd.grad(dot, params)

    out = {}
    for name, step in (("critic", critic_step), ("hvp", hvp_step)):
        for _ in range(3):
            step()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times.append((time.perf_counter() - t0) / steps)
        out[name] = 1.0 / statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--torch-python", default=None, help="interpreter with torch installed")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)  # internal: one library
    args = ap.parse_args()
    if args.only:
        print(json.dumps(run(args.only, args.threads, args.steps, args.rounds)))
        return
    fg_r = run("fg", args.threads, args.steps, args.rounds)
    torch_r = None
    try:
        import torch  # noqa: F401

        torch_r = run("torch", args.threads, args.steps, args.rounds)
    except ImportError:
        if args.torch_python:
            cmd = [args.torch_python, __file__, "--only", "torch", "--threads", str(args.threads)]
            cmd += ["--steps", str(args.steps), "--rounds", str(args.rounds)]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            torch_r = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"{cpu_model()}, {args.threads} thread(s), steps/s (median of {args.rounds} x {args.steps})")
    print(f"{'workload':10} {'ferrograd':>10} {'PyTorch':>10} {'ratio':>7}")
    for k in fg_r:
        t = torch_r[k] if torch_r else float("nan")
        print(f"{k:10} {fg_r[k]:10.1f} {t:10.1f} {fg_r[k] / t:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
