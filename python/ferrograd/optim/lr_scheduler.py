"""Learning-rate schedules (`ferrograd.optim.lr_scheduler`, PyTorch's module name): call
`step()` once per epoch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Optimizer


class LRScheduler:
    """Base of the schedules: call `step()` once per epoch."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0

    def get_last_lr(self) -> list[float]:
        """The current learning rate of each parameter group."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def _set(self, lrs) -> None:
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr

    def state_dict(self) -> dict:
        """The schedule's progress (for checkpoints), without the optimizer."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, sd: dict) -> None:
        """Restores `state_dict()` output."""
        self.__dict__.update(sd)


class StepLR(LRScheduler):
    """Multiplies the learning rate by `gamma` every `step_size` epochs (step decay)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def step(self) -> None:
        """Advances the schedule by one epoch and sets the new learning rate."""
        self.last_epoch += 1
        k = self.last_epoch // self.step_size
        self._set([b * self.gamma**k for b in self.base_lrs])


class CosineAnnealingLR(LRScheduler):
    """Cosine decay from the base rate to `eta_min` over `T_max` epochs."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803
        super().__init__(optimizer)
        self.T_max, self.eta_min = T_max, eta_min

    def step(self) -> None:
        """Advances the schedule by one epoch and sets the new learning rate."""
        self.last_epoch += 1
        # PyTorch's closed form: past T_max the rate rises again (a cosine period)
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        self._set([self.eta_min + (b - self.eta_min) * c for b in self.base_lrs])


class ReduceLROnPlateau(LRScheduler):
    """Multiplies the learning rate by `factor` when `metric` stops improving for `patience`
    epochs (mode 'min' for losses, 'max' for accuracies)."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
        cooldown: int = 0,
    ):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got '{mode}'")
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.min_lr, self.cooldown = threshold, min_lr, cooldown
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.cooldown_left = 0

    def _better(self, v: float) -> bool:
        # PyTorch's relative threshold (threshold_mode="rel")
        if self.mode == "min":
            return v < self.best * (1 - self.threshold)
        return v > self.best * (1 + self.threshold)

    def step(self, metric: float) -> None:
        """Records this epoch's `metric`; lowers the learning rate after `patience` epochs
        without improvement."""
        self.last_epoch += 1
        v = float(metric)
        if self._better(v):
            self.best, self.bad_epochs = v, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            self._set([max(g["lr"] * self.factor, self.min_lr) for g in self.optimizer.param_groups])
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
