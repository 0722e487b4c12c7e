"""Keras's callbacks, with Keras's signatures and `logs` dicts: `Callback`, `History`,
`EarlyStopping`, `ModelCheckpoint`, `ReduceLROnPlateau`, `CSVLogger`,
`LearningRateScheduler`, `LambdaCallback`, `TerminateOnNaN`.

`fit` calls, on every callback: `set_params`, `set_model`, `on_train_begin(logs)`,
`on_epoch_begin(epoch, logs)`, `on_train_batch_begin(batch, logs)`,
`on_train_batch_end(batch, logs)` (which call `on_batch_begin`/`on_batch_end` unless
overridden), `on_epoch_end(epoch, logs)` with the epoch's loss, metrics and val_* values,
and `on_train_end(logs)`; `evaluate` calls the `on_test_*` hooks and `predict` the
`on_predict_*` ones. A callback sets `self.model.stop_training = True` to stop.

ferrograd's own callbacks (`ferrograd.callbacks`) work in `fit` too.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import train as _train


class Callback:
    """Base class: override the hooks you need. `self.model` is the model being trained and
    `self.params` holds `epochs`, `steps` and `verbose`."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The model the callback is attached to."""
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model

    def set_params(self, params: dict) -> None:
        """Receives the training parameters (`epochs`, `steps`, `verbose`)."""
        self.params = params

    def set_model(self, model) -> None:
        """Receives the model."""
        self._model = model

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before training."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after training, with the last epoch's logs."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of each epoch with its logs (loss, metrics, val_*)."""

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each training batch (what `on_train_batch_begin` calls)."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each training batch with the running logs."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each training batch."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each training batch with the running logs."""
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Called at the start of `evaluate` (and of each validation)."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """Called at the end of `evaluate` with its logs."""

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each evaluation batch."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each evaluation batch."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Called at the start of `predict`."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Called at the end of `predict`."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each prediction batch."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each prediction batch."""


def _overrides(cb, *names: str) -> bool:
    """Whether `cb` has its own version of any hook in `names` (so a loop must call it)."""
    for name in names:
        mine = getattr(type(cb), name, None)
        if mine is not None and mine is not getattr(Callback, name, None):
            return True
    return False


class CallbackList:
    """Calls each hook on every callback; Keras's and ferrograd's callbacks alike (the
    latter get `model` and `optimizer` attributes and the hooks they define)."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(model)
            else:
                cb.model = model
            if hasattr(cb, "set_params"):
                cb.set_params(params)
            if not isinstance(cb, Callback):  # ferrograd.callbacks.Callback
                cb.optimizer = getattr(model, "optimizer", None)
        self.batch_hooks = any(
            _overrides(cb, "on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")
            if isinstance(cb, Callback)
            else callable(getattr(cb, "on_batch_end", None))
            for cb in self.callbacks
        )

    def call(self, hook: str, *args) -> None:
        """Calls `hook(*args)` on every callback that has it."""
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is None and hook == "on_train_batch_end":
                fn = getattr(cb, "on_batch_end", None)
            if fn is not None:
                fn(*args)


class History(Callback, _train.History):
    """Records each epoch's logs: `history.history["val_accuracy"]`, `history.epoch`. `fit`
    returns one (and sets `model.history` to it)."""

    def __init__(self) -> None:
        Callback.__init__(self)
        _train.History.__init__(self)

    def on_train_begin(self, logs=None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        if self.model is not None:
            self.model.history = self


class _Monitoring(Callback):
    """A callback that watches one logged quantity (`monitor`) for improvement."""

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline=None, min_delta: float = 0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3
            )
            mode = "auto"
        self.monitor, self.mode = monitor, mode
        self.best = baseline
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self._greater: bool | None = None

    def _direction(self) -> bool:
        """True when larger values of `monitor` are better."""
        if self._greater is None:
            if self.mode != "auto":
                self._greater = self.mode == "max"
            else:
                name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
                found = None
                if name == "loss":
                    found = False
                for m in getattr(self.model, "metrics", None) or []:
                    if getattr(m, "name", None) == name and hasattr(m, "_direction"):
                        found = m._direction == "up"
                if found is None:  # Keras 2's rule for names it cannot look up
                    found = (
                        "acc" in name or name.startswith("fmeasure") or name in ("auc", "precision", "recall")
                    )
                self._greater = found
        return self._greater

    def _is_improvement(self, current: float, reference) -> bool:
        if reference is None:
            return True
        if self._direction():
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def _value(self, logs: dict | None, what: str):
        v = (logs or {}).get(self.monitor)
        if v is None:
            warnings.warn(
                f"{what} conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(list((logs or {}).keys()))}",
                stacklevel=3,
            )
            return None
        return float(v)


class EarlyStopping(_Monitoring):
    """Stops training when `monitor` has not improved (by more than `min_delta`) for
    `patience` epochs; `restore_best_weights` puts back the best epoch's weights at the end;
    `baseline` is a value to beat; `start_from_epoch` skips the first epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline=None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__(monitor, mode, None, min_delta)
        self.patience, self.verbose, self.baseline = int(patience), verbose, baseline
        self.restore_best_weights, self.start_from_epoch = bool(restore_best_weights), int(start_from_epoch)
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0

    def on_train_begin(self, logs=None) -> None:
        self.wait, self.stopped_epoch, self.best, self.best_weights, self.best_epoch = 0, 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None) -> None:
        current = self._value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitoring):
    """Saves the model (or with `save_weights_only` its weights) after each epoch, or only
    when `monitor` improves with `save_best_only`. `filepath` may hold `{epoch:02d}` and
    log names (`{val_loss:.2f}`). `save_freq` an int saves every that many batches."""

    def __init__(
        self,
        filepath,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        initial_value_threshold=None,
        period: int | None = None,
        options=None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer values"
            )
        self.filepath, self.verbose = os.fspath(filepath), verbose
        self.save_best_only, self.save_weights_only = bool(save_best_only), bool(save_weights_only)
        self.save_freq, self.period = save_freq, int(period or 1)
        self._batches, self._epoch = 0, 0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.save_freq == "epoch":
            return
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            self._save(self._epoch, dict(logs or {}, batch=batch + 1))

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.save_freq == "epoch" and (epoch + 1) % self.period == 0:
            self._save(epoch, logs or {})

    def _save(self, epoch: int, logs: dict) -> None:
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}'
            ) from None
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            else:
                best = "None" if self.best is None else f"{self.best:.5f}"
                if not self._is_improvement(float(current), self.best):
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
                    return
                if self.verbose > 0:
                    print(
                        f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {float(current):.5f}, "
                        f"saving model to {path}"
                    )
                self.best = float(current)
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitoring):
    """Multiplies the learning rate by `factor` when `monitor` has not improved (by more
    than `min_delta`) for `patience` epochs, then waits `cooldown` epochs; never below
    `min_lr`. Adds `learning_rate` to the epoch's logs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs,
    ):
        if "epsilon" in kwargs:  # Keras 2's old name of min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected arguments {sorted(kwargs)}")
        super().__init__(monitor, mode, None, min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.cooldown_counter, self.wait = 0, 0

    def on_train_begin(self, logs=None) -> None:
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = self._value(logs, "Learning rate reduction")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    opt.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Writes each epoch's logs as a CSV row (`epoch` first, 0-based as Keras's, then the
    log names sorted); `append` continues an existing file."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self.keys: list[str] | None = None
        self._file: Any = None
        self._writer: Any = None
        self._header = True

    def on_train_begin(self, logs=None) -> None:
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self._header = not bool(f.readline())
            mode = "a"
        else:
            mode, self._header = "w", True
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = open(self.filename, mode, newline="")  # noqa: SIM115  (closed at train end)
        self._writer, self.keys = None, None

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch to `schedule(epoch, lr)` (or
    `schedule(epoch)`, Keras's older form); adds `learning_rate` to the epoch's logs."""

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None) -> None:
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:  # the old one-argument form
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, np.floating)) and not (
            isinstance(lr, int) and not isinstance(lr, bool)
        ):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr}")
        opt.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class LambdaCallback(Callback):
    """A callback from functions: `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`."""

    def __init__(self, **hooks: Callable):
        super().__init__()
        for name, fn in hooks.items():
            if name == "on_batch_begin":
                name = "on_train_batch_begin"
            elif name == "on_batch_end":
                name = "on_train_batch_end"
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class ProgbarLogger(Callback):
    """Accepted for scripts that pass it: `fit` prints its progress log itself (`verbose`)."""


__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "CSVLogger",
    "LearningRateScheduler",
    "LambdaCallback",
    "TerminateOnNaN",
    "ProgbarLogger",
]
