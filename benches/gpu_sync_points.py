"""Where a hand-written GPU training loop waits for the GPU: read-backs per step.

Each idiom below is a step of a PyTorch-style loop written by a user (not `fit`). A step
that reads something back (a submit plus a wait) stalls the host until the GPU catches up,
so a GPU loop should read back only what the user asks for (`loss.item()`). For each idiom
this prints the read-backs a step makes and the host time a step takes (recording, plus
any wait for a read-back; the queued work is finished before each step), or the error the
library raised.

    python benches/gpu_sync_points.py [--steps 50] [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ferrograd as fg


def idioms(batch: int):
    r = np.random.default_rng(0)
    x = fg.tensor(r.standard_normal((batch, 256)).astype(np.float32)).to("gpu")
    w = fg.tensor(r.standard_normal((256, 256)).astype(np.float32) * 0.05).to("gpu").requires_grad_()
    picks = fg.tensor(r.integers(0, batch, batch))

    def masked_relu():
        h = x @ w
        y = h * (h > 0).float()  # a hand-written relu
        y.sum().backward()

    def mask_arithmetic():
        h = x @ w
        y = h + (h > 0) * 2.0
        y.sum().backward()

    def where_leaky():
        h = x @ w
        y = fg.where(h > 0, h, h * 0.01)
        y.sum().backward()

    def masked_fill():
        h = x @ w
        y = h.masked_fill(h < 0, 0.0)
        y.sum().backward()

    def gather_backward():
        h = x @ w
        y = h[picks]  # repeated rows, as a sampled mini-batch of features
        y.sum().backward()

    def sgd_in_place():
        (x @ w).sum().backward()
        with fg.no_grad():
            w.add_(w.grad, alpha=-1e-3)
        w.grad = None

    def clip_and_step():
        (x @ w).sum().backward()
        fg.nn.utils.clip_grad_norm_([w], 1.0)
        with fg.no_grad():
            w.add_(w.grad, alpha=-1e-3)
        w.grad = None

    return {
        "h * (h > 0).float()": masked_relu,
        "h + (h > 0) * 2.0": mask_arithmetic,
        "where(h > 0, h, 0.01 h)": where_leaky,
        "h.masked_fill(h < 0, 0)": masked_fill,
        "h[idx] backward": gather_backward,
        "w.add_(w.grad) (SGD)": sgd_in_place,
        "clip_grad_norm_ + SGD": clip_and_step,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if not fg.gpu_available():
        raise SystemExit("no GPU adapter")
    info = fg._core.gpu_info()
    print(f"GPU: {info[0]} ({info[1]}), batch {args.batch}, {args.steps} steps")
    print(f"{'idiom':<26}{'read-backs/step':>16}{'host us/step':>14}")
    for name, step in idioms(args.batch).items():
        try:
            step()  # warm-up (compiles)
            reads, host = 0, 0.0
            for _ in range(args.steps):
                # each step starts with nothing queued, so none of its submits is a flush of
                # a full encoder (256 commands): every one is a read-back the step waited for
                fg._core.gpu_synchronize()
                s0 = fg._core.gpu_stats()["submits"]
                t0 = time.perf_counter()
                step()
                host += time.perf_counter() - t0
                reads += fg._core.gpu_stats()["submits"] - s0
            fg._core.gpu_synchronize()
            print(f"{name:<26}{reads / args.steps:>16.2f}{host / args.steps * 1e6:>14,.0f}")
        except Exception as e:  # noqa: BLE001  (report what the library raised)
            print(f"{name:<26}  {type(e).__name__}: {str(e)[:70]}")


if __name__ == "__main__":
    main()
