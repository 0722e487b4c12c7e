"""PyTorch's `torch.utils` paths: `ferrograd.utils.data` holds `ferrograd.data`'s datasets
and loader, so `from ferrograd.utils.data import DataLoader, TensorDataset` works."""

from . import data

__all__ = ["data"]
