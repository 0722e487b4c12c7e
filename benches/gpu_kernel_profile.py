"""Per-kernel cost on the GPU at the Standard network's training shapes: each op is queued
`n` times back to back and the batch is timed to its read-back, so a figure is the larger of
the host's recording cost and the GPU's execution time for one op (microseconds).

    python benches/gpu_kernel_profile.py [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ferrograd as fg


def per_op(fn, n: int = 200) -> float:
    out = fn()
    out.reshape(-1)[0].item()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            out = fn()
        out.reshape(-1)[0].item()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=int, default=512)
    args = ap.parse_args()
    b, w = args.batch, args.width
    d = "gpu"
    x = fg.randn(b, 784, device=d)
    h = fg.randn(b, w, device=d)
    w1 = fg.randn(w, 784, device=d)
    w2 = fg.randn(w, w, device=d)
    bias = fg.randn(w, device=d)
    g = fg.randn(b, w, device=d)
    logits = fg.randn(b, 10, device=d, requires_grad=True)
    labels = fg.tensor(np.random.randint(0, 10, b))
    bn = fg.nn.BatchNorm1d(w).to(d)
    hr = fg.randn(b, w, device=d, requires_grad=True)
    lin = fg.nn.Linear(w, w).to(d)
    opt = fg.optim.Adam(lin.parameters(), lr=1e-3)
    for p in lin.parameters():
        p.grad = fg.randn(*p.shape, device=d)
    idx = fg.randperm(4 * b)[:b]
    big = fg.randn(4 * b, 784, device=d)

    def bn_fwd_bwd():
        y = bn(hr)
        y.backward(g)
        return y

    def xent():
        loss = fg.losses.cross_entropy(logits, labels)
        loss.backward()
        return loss

    def adam():
        opt.step()
        return lin.weight

    cases = [
        (f"linear fwd ({b}x784 @ 784x{w}) +bias", lambda: fg.linear(x, w1, bias)),
        (f"linear fwd ({b}x{w} @ {w}x{w}) +bias", lambda: fg.linear(h, w2, bias)),
        (f"dW = g^T x ({w}x{b} @ {b}x784)", lambda: g.T @ x),
        (f"dx = g W ({b}x{w} @ {w}x{w})", lambda: g @ w2),
        ("relu", lambda: h.relu()),
        ("a + b", lambda: h + g),
        ("sum over batch (bias grad)", lambda: g.sum(0)),
        ("dropout p=0.2", lambda: fg._core.dropout(h, 0.2, True)),
        ("batchnorm fwd+bwd", bn_fwd_bwd),
        ("cross-entropy fwd+bwd", xent),
        (f"adam step ({w}x{w} + {w})", adam),
        (f"gather {b} rows of 784", lambda: big[idx]),
    ]
    print(f"GPU: {fg._core.gpu_info()[0]}; batch {b}, width {w}")
    for name, fn in cases:
        s0 = fg._core.gpu_stats()["dispatches"]
        fn()
        k = fg._core.gpu_stats()["dispatches"] - s0
        print(f"{name:<40}{per_op(fn):>10.1f} us  ({k} dispatches)")


if __name__ == "__main__":
    main()
