"""The shape of PyTorch's MNIST example (a two-convolution network, Adadelta, StepLR) on the
bundled MNIST sample, with `torch` replaced by ferrograd:

    python examples/train_cnn.py [--epochs 4] [--device cpu|gpu] [--limit 8000]

Trains on the first 8,000 digits and reports accuracy on the last 2,000 after each epoch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ferrograd as fg
import ferrograd.nn as nn
import ferrograd.nn.functional as F
from ferrograd.data import load_mnist
from ferrograd.optim.lr_scheduler import StepLR
from ferrograd.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    """conv 1->32 (3x3), conv 32->64 (3x3), max pool 2, dropout, 9216->128, dropout, 128->10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = fg.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--test-batch-size", type=int, default=1000, help="lower it where the GPU's largest binding is small"
    )
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--gamma", type=float, default=0.7)
    p.add_argument("--device", default="cuda" if fg.cuda.is_available() else "cpu")
    p.add_argument("--limit", type=int, default=8000, help="training samples (the rest validate)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    fg.manual_seed(args.seed)
    x, y = load_mnist()
    x = ((x.reshape(-1, 1, 28, 28) - 0.1307) / 0.3081).astype(np.float32)  # the example's normalization
    train = TensorDataset(fg.tensor(x[: args.limit]), fg.tensor(y[: args.limit]))
    test = TensorDataset(fg.tensor(x[args.limit :]), fg.tensor(y[args.limit :]))
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test, batch_size=args.test_batch_size)

    model = Net().to(args.device)
    optimizer = fg.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for data, target in train_loader:
            data, target = data.to(args.device), target.to(args.device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - t0
        model.eval()
        test_loss, correct = 0.0, 0
        with fg.no_grad():
            for data, target in test_loader:
                data, target = data.to(args.device), target.to(args.device)
                output = model(data)
                test_loss += F.nll_loss(output, target, reduction="sum").item()
                correct += int((output.argmax(dim=1) == target).sum().item())
        n = len(test)
        print(
            f"Epoch {epoch}: train {seconds:.1f}s ({args.limit / seconds:,.0f} samples/s), "
            f"test loss {test_loss / n:.4f}, accuracy {correct}/{n} ({100.0 * correct / n:.2f}%)",
            flush=True,
        )
        scheduler.step()


if __name__ == "__main__":
    main()
