"""Training callbacks, Keras-shaped: early stopping, checkpoints, LR on plateau, CSV logs,
TensorBoard."""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from . import io as _io
from .optim import ReduceLROnPlateau as _Plateau


class Callback:
    """Base class: override the hooks you need. `self.model` and `self.optimizer` are set
    by `fit` before training starts."""

    model: Any = None
    optimizer: Any = None
    # True for a callback that writes files: under MPI only rank 0 runs it (see `fit`)
    main_process_only: bool = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch (or an early stop), with the last epoch's logs."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called before each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called after each epoch with its logs (loss, metrics, val_* when validating)."""

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before each batch (0-based within the epoch). Setting
        `self.model.stop_training = True` here ends training before the batch runs; unlike
        `on_batch_end`, it costs no read-back on a GPU."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each batch with the running logs. Overriding it makes `fit` on a GPU
        read the loss back every batch."""


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        if mode == "auto":
            mode = "max" if ("acc" in monitor) else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'min', 'max' or 'auto', got '{mode}'")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def _value(self, logs: dict | None):
        if not logs or self.monitor not in logs:
            raise KeyError(
                f"{type(self).__name__}: metric '{self.monitor}' is not in the logs "
                f"(available: {sorted(logs or {})}); use validation data for val_* metrics"
            )
        return float(logs[self.monitor])

    def _improved(self, v: float) -> bool:
        if self.mode == "min":
            return v < self.best - self.min_delta
        return v > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops training when `monitor` has not improved for `patience` epochs; with
    `restore_best` the weights of the best epoch are put back at the end."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = False,
    ):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.restore_best = patience, restore_best
        self.wait, self.stopped_epoch, self.best_state, self.best_epoch = 0, None, None, None

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch = 0, None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        v = self._value(logs)
        if self._improved(v):
            self.best, self.wait, self.best_epoch = v, 0, epoch
            if self.restore_best:
                self.best_state = {k: t.clone().detach() for k, t in self.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)


class ModelCheckpoint(_Monitor):
    """Saves the model (and optimizer state) after each epoch, or only when `monitor`
    improves with `save_best_only`. `path` may contain `{epoch}`. Writes are atomic. Under
    MPI only rank 0 writes (every rank holds the same weights)."""

    main_process_only = True

    def __init__(
        self,
        path: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        save_optimizer: bool = True,
    ):
        super().__init__(monitor, mode)
        self.path, self.save_best_only, self.save_optimizer = path, save_best_only, save_optimizer

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            v = self._value(logs)
            if not self._improved(v):
                return
            self.best = v
        path = str(self.path).format(epoch=epoch + 1, **{k: v for k, v in (logs or {}).items()})
        _io.save(self.model, path, optimizer=self.optimizer if self.save_optimizer else None)


class ReduceLROnPlateau(_Monitor):
    """Multiplies the optimizer's learning rate by `factor` after `patience` epochs without
    improvement of `monitor` (never below `min_lr`)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        min_lr: float = 0.0,
        mode: str = "auto",
        verbose: int = 0,
    ):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.factor, self.patience, self.min_lr, self.verbose = factor, patience, min_lr, verbose
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        v = self._value(logs)
        if self._improved(v):
            self.best, self.wait = v, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if new < old:
                self.optimizer.lr = new
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new:.4g}.")
            self.wait = 0


class CSVLogger(Callback):
    """Appends one row per epoch (epoch, then every logged value) to a CSV file (under MPI,
    rank 0 only)."""

    main_process_only = True

    def __init__(self, path: str, append: bool = False):
        self.path, self.append = path, append
        self._keys = None

    def on_train_begin(self, logs=None):
        if not self.append and os.path.exists(self.path):
            os.remove(self.path)
        self._keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        else:
            new = False
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["epoch", *self._keys])
            w.writerow([epoch + 1, *[f"{logs.get(k, float('nan')):.6g}" for k in self._keys]])


class LearningRateScheduler(Callback):
    """Steps an `optim` schedule (StepLR, CosineAnnealingLR, ReduceLROnPlateau) each epoch."""

    def __init__(self, schedule, monitor: str = "val_loss"):
        self.schedule, self.monitor = schedule, monitor

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(self.schedule, _Plateau):
            self.schedule.step((logs or {})[self.monitor])
        else:
            self.schedule.step()


class TensorBoard(Callback):
    """Writes training to TensorBoard event files in `log_dir` (Keras's callback), through
    `tensorboardX` (``pip install tensorboardX``; ``tensorboard --logdir <log_dir>`` shows
    them): each epoch's logs as scalars (``epoch_loss``, ``epoch_acc``, ``epoch_val_loss``,
    ...) and the learning rate (``epoch_learning_rate``); with ``update_freq="batch"`` (or
    every `update_freq` batches) the running ``batch_*`` values too, which on a GPU reads
    the loss back each time; every `histogram_freq` epochs (0: never) a histogram of each
    weight and of its gradient; with `write_graph`, the model's structure as text. Under
    MPI only rank 0 writes."""

    main_process_only = True

    def __new__(cls, *args, **kwargs):
        # batch-level logging only where asked: overriding on_batch_end makes fit on a GPU
        # read the loss back every batch
        update_freq = kwargs.get("update_freq", args[3] if len(args) > 3 else "epoch")
        if cls is TensorBoard and update_freq != "epoch":
            cls = _TensorBoardBatches
        return super().__new__(cls)

    def __init__(
        self, log_dir: str = "logs", histogram_freq: int = 0, write_graph: bool = True, update_freq="epoch"
    ):
        if (
            update_freq != "epoch"
            and update_freq != "batch"
            and not (isinstance(update_freq, int) and update_freq > 0)
        ):
            raise ValueError(
                f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, got {update_freq!r}"
            )
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be an int >= 0, got {histogram_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writer: Any = None
        self._step = 0

    def on_train_begin(self, logs=None):
        try:
            from tensorboardX import SummaryWriter  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("fg.callbacks.TensorBoard needs tensorboardX: pip install tensorboardX") from e
        self._writer = SummaryWriter(logdir=self.log_dir)
        if self.write_graph and self.model is not None:
            self._writer.add_text("model", "```\n" + repr(self.model) + "\n```", 0)

    def on_epoch_end(self, epoch, logs=None):
        w = self._writer
        if w is None:
            return
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                w.add_scalar(f"epoch_{k}", float(v), epoch)
        groups = getattr(self.optimizer, "param_groups", None)
        if groups:
            w.add_scalar("epoch_learning_rate", float(groups[0]["lr"]), epoch)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0 and self.model is not None:
            for name, p in self.model.named_parameters():
                w.add_histogram(name, p.detach().cpu().float().numpy(), epoch)
                if p.grad is not None:
                    w.add_histogram(f"{name}/grad", p.grad.detach().cpu().float().numpy(), epoch)
        w.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _TensorBoardBatches(TensorBoard):
    """TensorBoard with the running batch values written every `update_freq` batches."""

    def on_batch_end(self, batch, logs=None):
        self._step += 1
        if self._writer is None or self._step % self.update_freq:
            return
        for k, v in (logs or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._writer.add_scalar(f"batch_{k}", float(v), self._step)
