"""Host time of a GPU training step, eager against a captured graph's replay (issue 18's
"at most 1 us of host time per recorded dispatch"): the three networks at one batch size,
Adam, cross-entropy. Each figure is the median over `--steps` of the time the call takes
with the GPU idle before it (a `synchronize` first) and its work submitted at the end, so
it is host time: Python, autograd, recording and submission for an eager step; encoding
and submission for a replay. (That a replay gives
the eager step's bits is tests/test_gpu_graph.py's business.)

With `--precision mixed` the steps run under float16 autocast with a GradScaler, which
decides on the device (nothing read back), and a third column times the same eager step
with the decision made on the host instead (the flag read back each step, as before stop
22): that one includes waiting for the GPU to finish the step's backward.

    python benches/gpu_graph.py [--batch 128] [--steps 20] [--precision float32|mixed]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import ferrograd as fg
import ferrograd.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precision", choices=("float32", "mixed"), default="float32")
    args = ap.parse_args()
    from ferrograd.cli import build

    mixed = args.precision == "mixed"
    print(f"adapter: {fg.gpu.info()['name']}, batch {args.batch}, {args.precision}")
    cols = ("dispatches", "eager us", "replay us", "eager/disp", "replay/disp")
    if mixed:
        cols += ("host-decided",)
    print(f"{'network':10s} " + " ".join(f"{c:>11s}" for c in cols))
    rng = np.random.default_rng(0)
    for arch in ("standard", "residual", "selu"):
        fg.manual_seed(0)
        model = build(arch, 784, 10).to("gpu")
        opt = fg.optim.Adam(model.parameters(), lr=1e-3)
        scaler = fg.GradScaler("gpu", enabled=mixed)
        sx = fg.tensor(rng.standard_normal((args.batch, 784)).astype(np.float32), device="gpu")
        sy = fg.tensor(rng.integers(0, 10, args.batch))

        def step(model=model, opt=opt, scaler=scaler, sx=sx, sy=sy):
            opt.zero_grad()
            with fg.autocast("gpu", dtype=fg.float16, enabled=mixed):
                loss = F.cross_entropy(model(sx), sy)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss

        for _ in range(3):
            step().item()

        def timed(fn):
            out = []
            for _ in range(args.steps):
                fg.gpu.synchronize()
                t = time.perf_counter()
                fn()
                fg._core.gpu_flush()  # the submission is host work too
                out.append(time.perf_counter() - t)
            fg.gpu.synchronize()
            return statistics.median(out) * 1e6

        eager = timed(step)
        host_decided = ""
        if mixed:
            opt._gated = False  # the scaler reads its flag back and decides on the host
            host_decided = f" {timed(step):11.0f}"
            opt._gated = True
        opt.zero_grad()
        g = fg.gpu.Graph()
        with fg.gpu.graph(g):
            step()
        replay = timed(g.replay)
        n = g.dispatches
        print(
            f"{arch:10s} {n:11d} {eager:11.0f} {replay:11.0f} {eager / n:11.2f} {replay / n:11.2f}"
            + host_decided
        )


if __name__ == "__main__":
    main()
