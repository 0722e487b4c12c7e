"""`torch.utils.data`'s names, from `ferrograd.data`."""

from ..data import ArrayDataset, DataLoader, TensorDataset

__all__ = ["ArrayDataset", "DataLoader", "TensorDataset"]
