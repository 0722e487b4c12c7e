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


class MultiStepLR(LRScheduler):
    """Multiplies the learning rate by `gamma` at each epoch in `milestones`."""

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1):
        super().__init__(optimizer)
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma

    def step(self) -> None:
        """Advances the schedule by one epoch and sets the new learning rate."""
        self.last_epoch += 1
        k = sum(1 for m in self.milestones if m <= self.last_epoch)
        self._set([b * self.gamma**k for b in self.base_lrs])


class ExponentialLR(LRScheduler):
    """Multiplies the learning rate by `gamma` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        super().__init__(optimizer)
        self.gamma = gamma

    def step(self) -> None:
        """Advances the schedule by one epoch and sets the new learning rate."""
        self.last_epoch += 1
        self._set([b * self.gamma**self.last_epoch for b in self.base_lrs])


class LambdaLR(LRScheduler):
    """The base rate times `lr_lambda(epoch)` (one function, or one per parameter group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda):
        super().__init__(optimizer)
        n = len(optimizer.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"LambdaLR: {len(fns)} functions for {n} parameter groups")
        self.lr_lambdas = fns
        self._set([b * f(0) for b, f in zip(self.base_lrs, fns)])

    def step(self) -> None:
        """Advances the schedule by one epoch and sets the new learning rate."""
        self.last_epoch += 1
        self._set([b * f(self.last_epoch) for b, f in zip(self.base_lrs, self.lr_lambdas)])

    def state_dict(self) -> dict:
        """The schedule's progress, without the functions (they are code, as in PyTorch)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


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


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), as PyTorch's: call `step()` after every batch. The
    rate warms up from ``max_lr / div_factor`` to `max_lr` over the first `pct_start` of
    `total_steps` (or ``epochs * steps_per_epoch``), then anneals to ``initial /
    final_div_factor``; with `cycle_momentum`, SGD's momentum or Adam's first beta moves the
    opposite way, between `max_momentum` and `base_momentum`. `three_phase` comes back down
    to the initial rate before the final anneal."""

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        super().__init__(optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be > 0, got {total_steps}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        groups = optimizer.param_groups
        n = len(groups)

        def per_group(v, name):
            vs = list(v) if isinstance(v, (list, tuple)) else [v] * n
            if len(vs) != n:
                raise ValueError(f"OneCycleLR: {len(vs)} values of {name} for {n} parameter groups")
            return [float(x) for x in vs]

        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum
        self.max_lrs = per_group(max_lr, "max_lr")
        self.initial_lrs = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [i / final_div_factor for i in self.initial_lrs]
        self.base_momenta = per_group(base_momentum, "base_momentum")
        self.max_momenta = per_group(max_momentum, "max_momentum")
        if cycle_momentum and not all(g.get("momentum", 0) or "betas" in g for g in groups):
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
        # (last step of the phase, rate from/to, momentum from/to): keys into the lists above
        if three_phase:
            self.phases = [
                (pct_start * total_steps - 1, "initial_lrs", "max_lrs", "max_momenta", "base_momenta"),
                (2 * pct_start * total_steps - 2, "max_lrs", "initial_lrs", "base_momenta", "max_momenta"),
                (total_steps - 1, "initial_lrs", "min_lrs", "max_momenta", "max_momenta"),
            ]
        else:
            self.phases = [
                (pct_start * total_steps - 1, "initial_lrs", "max_lrs", "max_momenta", "base_momenta"),
                (total_steps - 1, "max_lrs", "min_lrs", "base_momenta", "max_momenta"),
            ]
        self.last_epoch = -1
        self.step()

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def step(self) -> None:
        """Advances one batch and sets the new rate (and momentum)."""
        self.last_epoch += 1
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {t} times with total_steps={self.total_steps}; "
                "make total_steps (or epochs * steps_per_epoch) cover every step"
            )
        for i, g in enumerate(self.optimizer.param_groups):
            start = 0.0
            for j, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
                if t <= end or j == len(self.phases) - 1:
                    pct = (t - start) / (end - start) if end > start else 1.0
                    g["lr"] = self._anneal(getattr(self, lr0)[i], getattr(self, lr1)[i], pct)
                    if self.cycle_momentum:
                        m = self._anneal(getattr(self, m0)[i], getattr(self, m1)[i], pct)
                        if "betas" in g:
                            g["betas"] = (m, *tuple(g["betas"])[1:])
                        else:
                            g["momentum"] = m
                    break
                start = end


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
