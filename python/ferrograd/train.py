"""The training layer: Keras's loop (`fit`, `evaluate`, `predict`, the progress log and
`History`) and `Model`, the `Module` with Keras's methods.

>>> model = fg.models.standard(784, 10)
>>> history = fg.train.fit(model, x, y, epochs=5, batch_size=128, validation_split=0.2)
Train on 8000 samples, validate on 2000 samples
Epoch 1/5
8000/8000 [==============================] - 1s - loss: 0.3383 - acc: 0.8993 - val_loss: ...

This layer sits above `nn` (which never imports it), so `nn.Module` is PyTorch's plain
module. Keras's methods (`compile`, `fit`, `evaluate`, `predict`, `save`) come from here:

- `Model`: subclass it instead of `nn.Module` for a custom model that has them;
- `nn.Sequential`, and so every builder of `ferrograd.models`: importing this module (which
  `import ferrograd` does) gives the class `Model`'s methods (`_install`, at the end);
- any module: `fg.train.fit(model, x, y, ...)`, `fg.train.evaluate`, `fg.train.predict`,
  `fg.save(model, path)`.

Calling them as methods of another `nn.Module` (a custom subclass of it, or a layer) still
works for now, with a DeprecationWarning: `_install` puts deprecated forwarding methods on
`nn.Module`, which a later release removes.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import math
import signal
import sys
import threading
import time
import warnings
from typing import Any

import numpy as np

from . import _core, _mpi
from . import io as _io
from . import losses as _losses
from . import optim as _optim
from ._core import ShapeError, Tensor
from ._modelinfo import device_of, logit_model
from .amp import GradScaler, autocast
from .autograd import no_grad
from .callbacks import Callback
from .data import Table
from .diagnostics import TrainingMonitor
from .distributed import DistributedDataParallel, DistributedSampler
from .nn import BatchNorm1d, Module, Sequential, Standardizer


class History:
    """Per-epoch logs of a `fit` call: `history.history["val_acc"][-1]`, `history.epoch`.

    With `fit(..., monitor=True)` (or a `diagnostics.TrainingMonitor` among the callbacks),
    `history.history` also has the monitor's per-epoch figures (`selu_mean_max_dev`,
    `selu_var_max_dev`, `dead_max`, `grad_norm_min`, `grad_norm_max`, `grad_norm_ratio`,
    `problems`: those that apply, see `Diagnosis.figures`), and `history.monitor` one dict
    per epoch with the per-layer rows and problems (`Diagnosis.to_dict()` and `epoch`)."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.interrupted = False
        self.monitor: list[dict[str, Any]] = []

    def _add(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def plot(self, path: str) -> str:
        """Saves loss and accuracy curves (train and validation) to `path` with matplotlib."""
        try:
            import matplotlib  # type: ignore[import-not-found]  # noqa: PLC0415

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # type: ignore[import-not-found]  # noqa: PLC0415
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, which is not installed: pip install matplotlib"
            ) from None
        metrics = [m for m in ("acc", "mae") if m in self.history]
        fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(5 * (1 + len(metrics)), 4))
        axes = np.atleast_1d(axes)
        epochs = [e + 1 for e in self.epoch]
        for ax, key in zip(axes, ["loss", *metrics]):
            ax.plot(epochs, self.history[key], marker="o", label=f"train {key}")
            if "val_" + key in self.history:
                ax.plot(epochs, self.history["val_" + key], marker="o", label=f"validation {key}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


class ProgressBar:
    """Keras's progress log: a live bar on a terminal, one line per epoch otherwise."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.width = total, width
        self.stream = stream or sys.stdout
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last = 0.0

    @staticmethod
    def fmt_logs(logs: dict) -> str:
        """Keras's ` - name: value` list."""
        return "".join(f" - {k}: {v:.4f}" for k, v in logs.items())

    def _bar(self, seen: int) -> str:
        done = int(self.width * seen / max(self.total, 1))
        if seen >= self.total:
            return "=" * self.width
        return "=" * max(done - 1, 0) + ">" + "." * (self.width - max(done, 1))

    def due(self) -> bool:
        """Whether `update` would redraw now (a live bar, redrawn at most ten times a second)."""
        return self.live and time.perf_counter() - self.last >= 0.1

    def update(self, seen: int, logs: dict) -> None:
        """Redraws the live bar (at most ten times a second; never when not on a TTY)."""
        now = time.perf_counter()
        if not self.live or now - self.last < 0.1:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / max(seen, 1) * (self.total - seen)
        n = len(str(self.total))
        self.stream.write(
            f"\r{seen:>{n}}/{self.total} [{self._bar(seen)}] - ETA: {eta:.0f}s{self.fmt_logs(logs)}"
        )
        self.stream.flush()

    def finish(self, seen: int, logs: dict) -> None:
        """Writes the epoch's final line."""
        secs = time.perf_counter() - self.start
        n = len(str(self.total))
        line = f"{seen:>{n}}/{self.total} [{self._bar(seen)}] - {secs:.0f}s{self.fmt_logs(logs)}"
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.live else line + "\n")
        self.stream.flush()


def _as_tensor(a, dtype=None) -> Tensor:
    if isinstance(a, Tensor):
        return a if dtype is None or a.dtype == dtype else a.to(dtype)
    arr = np.asarray(a)
    if dtype is None:
        dtype = _core.dtype.int64 if np.issubdtype(arr.dtype, np.integer) else _core.dtype.float32
    np_dtype = {
        _core.dtype.int64: np.int64,
        _core.dtype.float32: np.float32,
        _core.dtype.float64: np.float64,
    }[dtype]
    return _core.from_numpy(np.ascontiguousarray(arr, dtype=np_dtype))


def _prepare_targets(y, kind: str) -> Tensor:
    if kind == "cross_entropy":
        t = _as_tensor(y)
        return t if t.dtype == _core.dtype.int64 or t.ndim == 2 else t.to(_core.dtype.int64)
    return _as_tensor(y, _core.dtype.float32)


def _to_model(t: Tensor, device: str) -> Tensor:
    # int64 labels stay on the CPU: the GPU backend holds float32 tensors
    if device == "cpu" or t.dtype != _core.dtype.float32:
        return t
    return t.to(device)


def _metric_name(kind: str) -> str | None:
    return {"cross_entropy": "acc", "binary_cross_entropy": "acc", "mse": "mae"}.get(kind)


def _metric(kind: str, out: Tensor, y: Tensor) -> float:
    """Sum (not mean) of the per-sample metric over the batch."""
    with no_grad():
        if kind == "cross_entropy":
            labels = y if y.dtype == _core.dtype.int64 else y.argmax(dim=1)
            return float((out.argmax(dim=1) == labels).sum().item())
        if kind == "binary_cross_entropy":
            yy = y.reshape(*out.shape) if y.ndim != out.ndim else y
            return float(((out > 0.0) == (yy > 0.5)).float().mean().item()) * out.shape[0]
        if kind == "mse":
            yy = y.reshape(*out.shape) if y.ndim != out.ndim else y
            return float((out - yy).abs().mean().item()) * out.shape[0]
    return float("nan")


def _running_logs(
    total: float,
    metric: float,
    dev_loss: Tensor | None,
    dev_hits: Tensor | None,
    seen: int,
    metric_name: str | None,
) -> dict:
    """The epoch's running means; sums kept on the device (lazy mode) are read here."""
    tot = total + (dev_loss.item() if dev_loss is not None else 0.0)
    met = metric + (dev_hits.item() if dev_hits is not None else 0.0)
    logs = {"loss": tot / max(seen, 1)}
    if metric_name:
        logs[metric_name] = met / max(seen, 1)
    return logs


def _batches(n: int, batch_size: int, order: Tensor | None, drop_single: bool):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if drop_single and stop - start == 1 and start > 0:
            return  # a batch of one cannot be batch-normalized in training
        if order is None:
            yield slice(start, stop)
        else:
            yield order[start:stop]


def _take(t: Tensor, idx) -> Tensor:
    return t[idx]


def evaluate(model: Module, x, y, loss="cross_entropy", batch_size: int = 256, verbose: int = 0) -> dict:
    """Loss and metric (accuracy or MAE) of `model` on (x, y) in eval mode.

    >>> fg.train.evaluate(model, x_test, y_test)
    {'loss': 0.21, 'acc': 0.94}
    """
    kind, loss_fn = _losses.get(loss)
    device = device_of(model)
    xt, yt = _to_model(_as_tensor(x), device), _to_model(_prepare_targets(y, kind), device)
    return _evaluate(model, logit_model(model, kind), xt, yt, kind, loss_fn, batch_size)


def _evaluate(model, logit_model, xt, yt, kind, loss_fn, batch_size) -> dict:
    was_training = model.training
    model.eval()
    n = xt.shape[0]
    total, metric = 0.0, 0.0
    try:
        with no_grad():
            for sl in _batches(n, batch_size, None, False):
                xb, yb = xt[sl], yt[sl]
                out = logit_model(xb)
                total += float(loss_fn(out, yb).item()) * xb.shape[0]
                metric += _metric(kind, out, yb)
    finally:
        model.train(was_training)
    logs = {"loss": total / max(n, 1)}
    name = _metric_name(kind)
    if name:
        logs[name] = metric / max(n, 1)
    return logs


def _standardize_inputs(model: Module, table: Table | None, x_train: Tensor, device: str) -> None:
    """Adapts a model's leading `Standardizer` to the training rows when it has not been
    adapted yet; for features from `read_csv` (a `Table`) without one, puts their
    standardizer first (adapted): from then on the model takes raw rows, and saving it keeps
    the statistics. The rows are the training split's only, never the validation rows."""
    first = model[0] if isinstance(model, Sequential) and len(model) else None
    if isinstance(first, Standardizer):
        if not first.is_adapted:
            first.adapt(x_train)
        return
    if table is None:
        return
    if not isinstance(model, Sequential):
        raise TypeError(
            f"fit: features from read_csv need their Standardizer in front of the model, which fit puts "
            f"first in a Sequential; this model is a {type(model).__name__}: put "
            f"fg.nn.Standardizer({table.shape[1]}, columns=x.numeric) in it yourself"
        )
    std = table.standardizer()
    std.adapt(x_train)
    model.insert(0, std.to(device))


def predict(model: Module, x, batch_size: int = 256) -> np.ndarray:
    """Model outputs for `x` in eval mode, as a NumPy array."""
    xt = _to_model(_as_tensor(x), device_of(model))
    was_training = model.training
    model.eval()
    outs = []
    try:
        with no_grad():
            for sl in _batches(xt.shape[0], batch_size, None, False):
                outs.append(model(xt[sl]).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0,))


class _Interrupt:
    """Turns Ctrl-C into a flag checked after each batch (main thread only). Not under MPI
    (`enabled=False`): one rank stopping alone would leave the others waiting in their next
    reduction, so there Ctrl-C raises and the job is aborted as a whole."""

    def __init__(self, enabled: bool = True) -> None:
        self.hit = False
        self.prev = None
        self.enabled = enabled

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            self.prev = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)
        return False


class _Sized:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


def _global(logs: dict, counts: dict) -> dict:
    """Exact global averages of an epoch's figures: each rank's sums and counts, reduced."""
    keys = list(logs)  # the same order on every rank (fit builds them alike)
    sums = _mpi.allreduce_sums([logs[k] * counts[k] for k in keys] + [float(counts[k]) for k in keys])
    m = len(keys)
    return {k: sums[i] / max(sums[m + i], 1.0) for i, k in enumerate(keys)}


class _GraphSteps:
    """fit's GPU training step as replays of captured steps (``fg.gpu.graph``): a replay
    gives the eager step's bits without its Python and autograd host time. A step of a new
    (batch shape, learning rate) runs eagerly first (the warm-up that creates optimizer
    state); its second occurrence is captured into static copies of the batch and replayed,
    and later ones refill those copies and replay. A capture that fails (a loss or optimizer
    a replay could not repeat) runs nothing and leaves every later step eager; while a
    module has a forward hook (Python a replay would not call) steps run eagerly."""

    KEEP = 2  # graphs kept: the full batches' and the last short one's (at one learning rate)

    def __init__(self, eager, opt, model: Module) -> None:
        self.eager = eager
        self.opt = opt
        # a forward hook is Python a replay would not call: hooked steps run eagerly
        self.modules = list(model.modules())
        self.graphs: dict[tuple, tuple] = {}
        self.warm: set[tuple] = set()
        self.off = False

    def __call__(self, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        if self.off or any("_hooks" in m.__dict__ for m in self.modules):
            return self.eager(xb, yb)
        lrs = tuple(g["lr"] for g in self.opt.param_groups)
        key = (tuple(xb.shape), str(xb.dtype), tuple(yb.shape), str(yb.dtype), yb.device, lrs)
        kept = self.graphs.get(key)
        if kept is not None:
            g, sx, sy, output, loss = kept
            sx.copy_(xb)
            sy.copy_(yb)
            g.replay()
            return output, loss
        if key not in self.warm:
            self.warm.add(key)
            return self.eager(xb, yb)
        return self._capture(key, xb, yb)

    def _capture(self, key: tuple, xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        from ._graphs import Graph, graph

        if len(self.graphs) >= self.KEEP:
            self.graphs.pop(next(iter(self.graphs)))
        sx, sy = xb.clone(), yb.clone()
        rng = _core.get_rng_state()
        g = Graph()
        try:
            with graph(g):
                output, loss = self.eager(sx, sy)
        except Exception:
            # nothing ran (the capture put the step counts back; the stream too, here)
            _core.set_rng_state(rng)
            self.off = True
            return self.eager(xb, yb)
        self.graphs[key] = (g, sx, sy, output, loss)
        g.replay()
        return output, loss


def fit(
    model: Module,
    x,
    y,
    loss="cross_entropy",
    optimizer="adam",
    lr: float | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data=None,
    shuffle: bool = True,
    callbacks: list[Callback] | None = None,
    verbose: int = 1,
    stream=None,
    monitor: bool = False,
    precision: str = "float32",
    capture: bool | str = "auto",
) -> History:
    """Trains `model` on (x, y) and returns a `History`.

    - `loss`: "cross_entropy" (integer labels or probabilities; the model gives logits, or
      ends in Softmax), "binary_cross_entropy" (logits or a final Sigmoid), "mse", or a
      callable `loss(output, target)`.
    - `optimizer`: "adam" (default, lr 0.001), "sgd", "rmsprop", "adamw", or an optimizer
      instance; `lr` overrides its learning rate.
    - `validation_split` holds out the last fraction of (x, y) before shuffling, as Keras
      does; `validation_data=(x_val, y_val)` gives the set explicitly.
    - Ctrl-C stops after the current batch; the model and history stay usable.
    - `monitor=True` diagnoses the model after each epoch on the first 256 training samples
      (`ferrograd.diagnostics.TrainingMonitor`, run before the other callbacks): per-epoch
      figures in `history.history` (`selu_var_max_dev`, `dead_max`, `grad_norm_ratio`, ...)
      and per-layer rows in `history.monitor`; each problem found (a SELU network drifting
      from mean 0 / variance 1, a broken self-normalizing setup before training, dead ReLU
      units, vanishing or exploding gradients) is warned once as a `ferrograd.TrainingWarning`.
    - Features from `ferrograd.data.read_csv` (a `Table`): a `Standardizer` of their
      numeric columns, adapted to the training split alone, is put in front of the model
      (once), so the model takes raw rows from then on (in `predict`, and after `fg.load`);
      a model that already starts with an unadapted `Standardizer` has it adapted. x may
      also be a pandas DataFrame or anything with `__array__`.
    - `precision="mixed"` trains with automatic mixed precision (`ferrograd.amp`): each
      batch's forward pass and loss run under `autocast` (float16 on the GPU with a
      `GradScaler` that scales the loss and skips steps with inf/NaN gradients; bfloat16 on
      the CPU, which needs no scaling); the weights, their gradients and the optimizer stay
      float32, and validation runs in float32. "float32" (the default) trains as before.
    - `capture` ("auto", the default): on the GPU (float32 or mixed precision) and on one
      process, each training batch of a shape (and learning rate) seen before runs as a
      replay of a captured step (`fg.gpu.graph`), which gives the eager step's bits without
      its Python and autograd host time; where a step cannot be captured (a loss or
      optimizer a replay could not repeat) fit trains eagerly. `False` always trains
      eagerly.

    Under `mpirun`/`srun` (several processes; see `ferrograd.distributed`) it trains
    data-parallel by itself: `batch_size` is the global batch, split evenly across the ranks
    (a multiple of their number); each epoch every rank takes its share of one order drawn
    alike on every rank (`DistributedSampler`, padded to equal shares); gradients are
    averaged (`DistributedDataParallel`, unless the model already is one). The logged loss,
    metric and validation figures are exact global averages (sums and counts reduced), so
    the History, EarlyStopping and ReduceLROnPlateau are the same on every rank. Only rank 0
    prints and runs the callbacks that write files (ModelCheckpoint, CSVLogger). Ctrl-C on
    the launcher stops every rank.
    """
    world = _mpi.ensure()
    dist = world.size > 1
    if precision not in ("float32", "mixed"):
        raise ValueError(f"fit: precision must be 'float32' or 'mixed', got {precision!r}")
    if capture not in ("auto", True, False):
        raise ValueError(f"fit: capture must be 'auto', True or False, got {capture!r}")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    kind, loss_fn = _losses.get(loss)
    table = x if isinstance(x, Table) else None
    xt, yt = _as_tensor(x), _prepare_targets(y, kind)
    if xt.shape[0] != yt.shape[0]:
        raise ShapeError(f"fit: x has {xt.shape[0]} samples but y has {yt.shape[0]}")
    xv: Tensor | None
    yv: Tensor | None
    if validation_data is not None:
        xv, yv = _as_tensor(validation_data[0]), _prepare_targets(validation_data[1], kind)
    elif validation_split > 0:
        n_val = int(math.floor(xt.shape[0] * validation_split))
        n_tr = xt.shape[0] - n_val
        xv, yv = xt[n_tr:], yt[n_tr:]
        xt, yt = xt[:n_tr], yt[:n_tr]
    else:
        xv = yv = None
    device = device_of(model)
    ddp: DistributedDataParallel | None = None
    local_batch = batch_size
    n_val_global = 0
    order_seed = 0
    if dist:
        if batch_size % world.size:
            raise ValueError(
                f"fit: under MPI batch_size is the global batch, split across the {world.size} ranks: "
                f"it must be a multiple of {world.size}, got {batch_size}"
            )
        local_batch = batch_size // world.size
        # drawn before DDP reseeds each rank's generator: the same on every rank
        order_seed = int(_core.randint(0, 2**31, []).item())
        if not any(isinstance(m, DistributedDataParallel) for m in model.modules()):
            ddp = DistributedDataParallel(model)
        if xv is not None and yv is not None:  # each rank evaluates its own share
            n_val_global = xv.shape[0]
            xv, yv = xv[world.rank :: world.size], yv[world.rank :: world.size]
        verbose = verbose if world.rank == 0 else 0
        callbacks = [
            cb for cb in (callbacks or []) if world.rank == 0 or not getattr(cb, "main_process_only", False)
        ]
    _standardize_inputs(model, table, xt, device)
    xt, yt = _to_model(xt, device), _to_model(yt, device)
    if xv is not None and yv is not None:
        xv, yv = _to_model(xv, device), _to_model(yv, device)
    opt = _optim.get(optimizer, model.parameters(), lr)
    mixed = precision == "mixed"
    amp_device = "cpu" if device == "cpu" else "gpu"
    # float16 (the GPU's) needs loss scaling; bfloat16 (the CPU's) keeps float32's range
    scaler = GradScaler(amp_device, enabled=mixed and amp_device == "gpu")
    in_precision = autocast(amp_device) if mixed else contextlib.nullcontext()
    keras: Any = model  # Keras's attributes (optimizer, history, stop_training), on any Module
    keras.optimizer = opt
    train_model = logit_model(model, kind)
    has_bn = any(isinstance(m, BatchNorm1d) for m in model.modules())
    callbacks = list(callbacks or [])
    if monitor:
        callbacks.insert(0, TrainingMonitor(xt[:256], yt[:256], loss=loss))
    for cb in callbacks:
        cb.model, cb.optimizer = model, opt
    history = History()
    keras.history = history
    n = xt.shape[0]
    out = stream or sys.stdout
    if verbose:
        n_val = n_val_global if dist and xv is not None else (xv.shape[0] if xv is not None else 0)
        val = f", validate on {n_val} samples" if xv is not None else ""
        out.write(f"Train on {n} samples{val}\n")
    keras.stop_training = False
    metric_name = _metric_name(kind)
    # On a GPU the running loss and accuracy stay on the device and are read back only when
    # the bar redraws and at the end of an epoch: a read-back every batch would make the
    # host wait for the GPU each step. Callbacks that want every batch's logs force it.
    lazy = device != "cpu" and not any(type(cb).on_batch_end is not Callback.on_batch_end for cb in callbacks)
    for cb in callbacks:
        cb.on_train_begin()
    sampler = DistributedSampler(_Sized(n), shuffle=shuffle, seed=order_seed) if dist else None

    def eager_step(xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        with in_precision:
            output = train_model(xb)
            loss_t = loss_fn(output, yb)
        opt.zero_grad()
        scaler.scale(loss_t).backward()
        scaler.step(opt)
        scaler.update()
        return output, loss_t

    # DDP all-reduces on the host, which a replay would not repeat (the GradScaler decides
    # on the device for SGD, Adam and Adadelta; with another optimizer it reads the flag
    # back, which refuses the capture and leaves the steps eager)
    graphs = capture is not False and device != "cpu" and not dist
    step = _GraphSteps(eager_step, opt, model) if graphs else eager_step

    def shown(seen: int) -> int:  # the progress bar counts the whole world's samples
        return min(seen * world.size, n) if dist else seen

    try:
        with _Interrupt(enabled=not dist) as interrupt:
            for epoch in range(epochs):
                if verbose:
                    out.write(f"Epoch {epoch + 1}/{epochs}\n")
                    out.flush()
                for cb in callbacks:
                    cb.on_epoch_begin(epoch)
                model.train()
                bar = ProgressBar(n, out) if verbose == 1 else None
                order: Tensor | None
                if sampler is not None:  # this rank's share of one order drawn alike on every rank
                    sampler.set_epoch(epoch)
                    order = _core.from_numpy(sampler.indices())
                    n_epoch = len(sampler)
                else:
                    order = _core.randperm(n) if shuffle else None
                    n_epoch = n
                seen, total, metric = 0, 0.0, 0.0
                dev_loss: Tensor | None = None  # lazy mode: sums kept on the device
                dev_hits: Tensor | None = None

                for b, idx in enumerate(_batches(n_epoch, local_batch, order, has_bn)):
                    for cb in callbacks:
                        cb.on_batch_begin(b)
                    if keras.stop_training:
                        break  # as Keras: a callback may end training between two batches
                    xb, yb = xt[idx], yt[idx]
                    output, loss_t = step(xb, yb)
                    k = xb.shape[0]
                    seen += k
                    if lazy:
                        with no_grad():
                            part = loss_t.detach() * float(k)
                            dev_loss = part if dev_loss is None else dev_loss + part
                            if kind == "cross_entropy" and yb.dtype == _core.dtype.int64:
                                hits = _core.correct_count(output, yb)
                                dev_hits = hits if dev_hits is None else dev_hits + hits
                            elif metric_name:
                                metric += _metric(kind, output, yb)
                        if bar and bar.due():
                            bar.update(
                                shown(seen),
                                _running_logs(total, metric, dev_loss, dev_hits, seen, metric_name),
                            )
                    else:
                        total += float(loss_t.item()) * k
                        if metric_name:
                            metric += _metric(kind, output, yb)
                        logs = _running_logs(total, metric, dev_loss, dev_hits, seen, metric_name)
                        if bar:
                            bar.update(shown(seen), logs)
                        for cb in callbacks:
                            cb.on_batch_end(b, logs)
                    if interrupt.hit or keras.stop_training:
                        break
                if not seen and keras.stop_training:
                    break  # stopped before this epoch's first batch: nothing to log
                logs = (
                    _running_logs(total, metric, dev_loss, dev_hits, seen, metric_name)
                    if seen
                    else {"loss": float("nan")}
                )
                if dist:
                    logs = _global(logs, dict.fromkeys(logs, seen))
                    for m in model.modules():  # one model in eval: rank 0's running statistics
                        if isinstance(m, DistributedDataParallel):
                            m.sync_buffers()
                    if ddp is not None:
                        ddp.sync_buffers()
                if xv is not None and not interrupt.hit:
                    v = _evaluate(model, train_model, xv, yv, kind, loss_fn, max(batch_size, 256))
                    if dist:
                        v = _global(v, dict.fromkeys(v, xv.shape[0]))
                    logs.update({"val_" + k: val for k, val in v.items()})
                if bar:
                    bar.finish(shown(seen), logs)
                elif verbose == 2:
                    out.write(f"{seen}/{n_epoch} - {ProgressBar.fmt_logs(logs)[3:]}\n")
                history._add(epoch, logs)
                if interrupt.hit:
                    history.interrupted = True
                    if verbose:
                        out.write(
                            "Interrupted: stopped after the current batch; the model keeps its weights.\n"
                        )
                    break
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
                if keras.stop_training:
                    break
    finally:
        if ddp is not None:
            ddp.remove_hooks()
    for cb in callbacks:
        cb.on_train_end()
    return history


# ---------------------------------------------------------------------------------- Model


class Model(Module):
    """A `Module` with Keras's methods: `compile`, `fit`, `evaluate`, `predict` and `save`.

    Subclass it instead of `nn.Module` to give a custom model these methods; it is otherwise
    an ordinary module (`forward`, parameters, `state_dict`, `.to(...)`). `nn.Sequential`,
    and so every model `ferrograd.models` builds, has the same methods; any other module
    trains with `fg.train.fit(model, x, y, ...)`.

    >>> class Net(fg.train.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = fg.nn.Linear(784, 128), fg.nn.Linear(128, 10)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).relu())
    >>> net = Net()
    >>> net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> history = net.fit(x, y, epochs=5, validation_split=0.2)

    A subclass is not one of ferrograd's layers: `save` stores its weights, and its
    architecture too when it defines `get_config()` (loading that takes
    `custom_objects={"Net": Net}`).
    """

    # Keras's attributes, set by `fit` (on any module it trains)
    optimizer: Any
    history: History
    stop_training: bool

    def compile(
        self, optimizer="adam", loss="cross_entropy", metrics=None, lr: builtins.float | None = None
    ) -> None:
        """Keras's compile: the optimizer (a name or an instance), loss and learning rate that
        `fit` and `evaluate` use when they are not given. A named optimizer is created at the
        first `fit` and kept by later ones, so its state carries over as in Keras (it is
        created anew if the parameters changed, e.g. after `.to("gpu")`). `metrics` may name
        "accuracy" ("acc"), which classification losses report anyway."""
        _losses.get(loss)  # an unknown loss fails here, not at fit
        for m in metrics or []:
            if m not in ("accuracy", "acc"):
                raise ValueError(f"compile: unknown metric {m!r}; classification reports accuracy itself")
        object.__setattr__(self, "_compiled", {"optimizer": optimizer, "loss": loss, "lr": lr})

    def _compiled_optimizer(self):
        """The optimizer `compile` asked for, created (or recreated) for the current parameters."""
        c = self.__dict__["_compiled"]
        spec = c["optimizer"]
        if not isinstance(spec, str):
            return spec
        params = list(self.parameters())
        held = self.__dict__.get("_compiled_opt")
        if held is None or [id(p) for g in held.param_groups for p in g["params"]] != [id(p) for p in params]:
            held = _optim.get(spec, params, c["lr"])
            object.__setattr__(self, "_compiled_opt", held)
        return held

    def fit(self, x, y, **kwargs) -> History:
        """Trains this model and returns its `History`; the arguments are `ferrograd.train.fit`'s.
        Those not given come from `compile`, when it was called."""
        if "_compiled" in self.__dict__:
            kwargs.setdefault("loss", self.__dict__["_compiled"]["loss"])
            if "optimizer" not in kwargs:
                kwargs["optimizer"] = Model._compiled_optimizer(self)
        return fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs) -> dict:
        """Loss and metric on (x, y); see `ferrograd.train.evaluate` (the loss from `compile`
        when not given)."""
        if "_compiled" in self.__dict__:
            kwargs.setdefault("loss", self.__dict__["_compiled"]["loss"])
        return evaluate(self, x, y, **kwargs)

    def predict(self, x, **kwargs) -> np.ndarray:
        """Model outputs for x in eval mode; see `ferrograd.train.predict`."""
        return predict(self, x, **kwargs)

    def save(self, path, optimizer=None) -> None:
        """Saves weights, architecture config and optionally optimizer state (safetensors);
        see `ferrograd.save`."""
        _io.save(self, path, optimizer=optimizer)


# What `_install` gives `nn.Sequential`, and forwards (deprecated) from `nn.Module`.
KERAS_METHODS = ("compile", "fit", "evaluate", "predict", "save")

# For each deprecated method on a plain module: the way that stays.
_INSTEAD = {
    "compile": (
        "subclass ferrograd.train.Model or call ferrograd.train.fit(model, ...) with loss= and optimizer="
    ),
    "fit": "subclass ferrograd.train.Model or call ferrograd.train.fit(model, ...)",
    "evaluate": "subclass ferrograd.train.Model or call ferrograd.train.evaluate(model, ...)",
    "predict": "subclass ferrograd.train.Model or call ferrograd.train.predict(model, ...)",
    "save": "subclass ferrograd.train.Model or call ferrograd.save(model, ...)",
}


def _deprecated(name: str):
    """`Model`'s method `name` for any `nn.Module`, with a DeprecationWarning."""
    method = Model.__dict__[name]

    @functools.wraps(method)
    def forward_to_model(self, *args, **kwargs):
        warnings.warn(
            f"{type(self).__name__}.{name}(): Keras's methods on a plain nn.Module are deprecated; "
            f"{_INSTEAD[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return method(self, *args, **kwargs)

    forward_to_model.__doc__ = (
        f"Deprecated on a plain nn.Module ({_INSTEAD[name]}); works as `Model.{name}`.\n\n"
        + (method.__doc__ or "")
    )
    return forward_to_model


def _install() -> None:
    """Gives `nn.Sequential` `Model`'s methods, and every other `nn.Module` deprecated
    forwarding ones. `nn` does not import the training layer (it sits below it), so the
    training layer adds them; `import ferrograd` imports this module, so they are always
    there. A subclass's own methods of these names win, as with any inherited method."""
    for name in (*KERAS_METHODS, "_compiled_optimizer"):
        setattr(Sequential, name, Model.__dict__[name])
    for name in KERAS_METHODS:
        setattr(Module, name, _deprecated(name))


_install()
