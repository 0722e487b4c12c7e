"""Trains a small MLP on the bundled MNIST sample with a plain ferrograd loop.

Everything here uses the engine directly (tensors, autograd, in-place updates), so it doubles
as a check that the engine can train a real network. The same script trains on a GPU with
one change, as in PyTorch: `python examples/train_mnist.py --device gpu`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import ferrograd as fg
from ferrograd.data import load_mnist


def init_linear(n_in: int, n_out: int, device: str = "cpu") -> tuple[fg.Tensor, fg.Tensor]:
    """He-normal weights (out, in) and zero biases, as leaves that require grad."""
    w = (fg.randn(n_out, n_in) * float(np.sqrt(2.0 / n_in))).to(device).requires_grad_()
    b = fg.zeros(n_out, device=device, requires_grad=True)
    return w, b


def forward(params, x: fg.Tensor) -> fg.Tensor:
    w1, b1, w2, b2, w3, b3 = params
    h = fg.linear(x, w1, b1).relu()
    h = fg.linear(h, w2, b2).relu()
    return fg.linear(h, w3, b3)


def cross_entropy(logits: fg.Tensor, y: fg.Tensor) -> fg.Tensor:
    """Mean negative log-likelihood of integer labels under softmax(logits)."""
    picked = logits.log_softmax(dim=1) * fg.one_hot(y, logits.shape[1]).type_as(logits)
    return -picked.sum() / logits.shape[0]


def main(
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 0.05,
    momentum: float = 0.9,
    device: str = "cpu",
    samples: int = 10000,
) -> float:
    """Trains on the first 80% of `samples` digits, validates on the rest; returns val_acc."""
    fg.manual_seed(0)
    x_all, y_all = load_mnist()
    split = samples * 4 // 5
    x_tr, y_tr = fg.tensor(x_all[:split]).to(device), fg.tensor(y_all[:split]).to(device)
    x_va, y_va = fg.tensor(x_all[split:samples]).to(device), fg.tensor(y_all[split:samples]).to(device)
    params = [*init_linear(784, 256, device), *init_linear(256, 128, device), *init_linear(128, 10, device)]
    velocity = [fg.zeros_like(p) for p in params]
    n = x_tr.shape[0]
    print(f"Train on {n} samples, validate on {x_va.shape[0]} samples")
    val_acc = 0.0
    for epoch in range(1, epochs + 1):
        print(f"Epoch {epoch}/{epochs}")
        start = time.perf_counter()
        order = fg.randperm(n)
        total_loss, correct = 0.0, 0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            xb, yb = x_tr[idx], y_tr[idx]
            logits = forward(params, xb)
            loss = cross_entropy(logits, yb)
            for p in params:
                p.grad = None
            loss.backward()
            with fg.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(momentum).add_(p.grad)  # SGD with momentum, as torch.optim.SGD
                    p.add_(v, alpha=-lr)
            total_loss += loss.item() * xb.shape[0]
            correct += int((logits.argmax(dim=1) == yb).sum().item())
        with fg.no_grad():
            val_logits = forward(params, x_va)
            val_loss = cross_entropy(val_logits, y_va).item()
            val_acc = (val_logits.argmax(dim=1) == y_va).float().mean().item()
        secs = time.perf_counter() - start
        bar = "=" * 30
        print(
            f"{n}/{n} [{bar}] - {secs:.0f}s - loss: {total_loss / n:.4f} - acc: {correct / n:.4f}"
            f" - val_loss: {val_loss:.4f} - val_acc: {val_acc:.4f}"
        )
        sys.stdout.flush()
    return val_acc


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help='"cpu" or "gpu"')
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=10000, help="digits to use (80%% train, 20%% validation)")
    args = ap.parse_args()
    main(epochs=args.epochs, device=args.device, samples=args.samples)
