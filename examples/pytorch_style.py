"""PyTorch's MNIST example, line for line, in ferrograd (an MLP: ferrograd has no
convolutions). Every call below is the PyTorch one with `torch` spelled `fg`:
nn.Module subclass, F.relu / F.log_softmax / F.nll_loss, TensorDataset + DataLoader,
Adam with a StepLR schedule, `model.eval()` under `no_grad`, argmax accuracy, and a
state-dict checkpoint.

    python examples/pytorch_style.py [--device cuda] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import ferrograd as fg
import ferrograd.nn as nn
import ferrograd.nn.functional as F
from ferrograd.data import DataLoader, TensorDataset
from ferrograd.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = fg.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, device, loader, optimizer):
    """One epoch; returns the last batch's loss."""
    model.train()
    loss = None
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
    return loss.item()


def test(model, device, loader):
    """(mean loss, accuracy) on `loader`."""
    model.eval()
    test_loss, correct = 0.0, 0
    with fg.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(loader.dataset)
    return test_loss / n, correct / n


def main(device: str = "cpu", epochs: int = 3, samples: int = 10000, verbose: bool = True):
    """Trains on 80% of `samples` bundled digits; returns [(last loss, test loss, accuracy)]."""
    fg.manual_seed(1)
    device = fg.device(device)
    x, y = fg.data.load_mnist()
    x = x[:samples].reshape(-1, 1, 28, 28)  # images, as torchvision gives them
    split = samples * 4 // 5
    train_ds = TensorDataset(fg.tensor(x[:split]), fg.tensor(y[:split]))
    test_ds = TensorDataset(fg.tensor(x[split:samples]), fg.tensor(y[split:samples]))
    train_loader = DataLoader(train_ds, batch_size=64, shuffle=True, num_workers=1, pin_memory=True)
    test_loader = DataLoader(test_ds, batch_size=1000)
    model = Net().to(device)
    optimizer = fg.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    history = []
    for epoch in range(1, epochs + 1):
        last = train(model, device, train_loader, optimizer)
        test_loss, acc = test(model, device, test_loader)
        history.append((last, test_loss, acc))
        if verbose:
            print(f"Epoch {epoch}: train loss {last:.4f}, test loss {test_loss:.4f}, accuracy {acc:.4f}")
        scheduler.step()
    path = os.path.join(tempfile.mkdtemp(), "mnist_mlp.safetensors")
    fg.save(model.state_dict(), path)
    restored = Net()
    restored.load_state_dict(fg.load(path))
    return history


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help='"cpu", "cuda" or "gpu"')
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    main(args.device, args.epochs)
