"""One trial and its bookkeeping: the problem (data, loss, split), the budget's clock, the
JSON-lines log, and `_run`, which trains one fresh model under the rules."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any, Union

import numpy as np

from .. import _core
from .. import losses as _losses
from .. import optim as _optim
from .. import train as _train
from ..callbacks import Callback, EarlyStopping
from ..nn import Module
from ._rules import AUTO_MAX_EPOCHS, AUTO_MIN_EPOCHS, AUTO_STEPS

# The budget's clock, one name so tests can drive the time budget with a fake clock.
_now = time.perf_counter

# the recipe's fixed depth per architecture (capacity grows by width only)
_DEPTH = {"standard": 2, "residual": 2, "selu": 4}
# dropout rates of step 6, tried in turn
_DROPOUT = {"standard": (0.2, 0.3), "residual": (0.2, 0.3), "selu": (0.05, 0.1)}

Builder = Union[str, Callable[..., Module]]
OptimizerSpec = Union[str, Callable[..., _optim.Optimizer]]


# ---------------------------------------------------------------------------- the problem


def _np(a: Any) -> np.ndarray:
    return a.numpy() if isinstance(a, _core.Tensor) else np.asarray(a)


class _Problem:
    """The data, split once (so every trial sees the same train and validation sets), and
    what the loss makes of it: kind, output width and head."""

    def __init__(self, x: Any, y: Any, loss: str | None, validation_split: float, validation_data: Any):
        x, y = _np(x), _np(y)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"tune: x has {x.shape[0]} samples but y has {y.shape[0]}")
        if loss is None:
            loss = "cross_entropy" if np.issubdtype(y.dtype, np.integer) else "mse"
        kind, _ = _losses.get(loss)
        if kind not in ("cross_entropy", "binary_cross_entropy", "mse"):
            raise ValueError(f"tune: loss must be cross_entropy, binary_cross_entropy or mse, got {loss!r}")
        self.loss, self.kind = loss, kind
        if validation_data is not None:
            xv, yv = _np(validation_data[0]), _np(validation_data[1])
        elif 0.0 < validation_split < 1.0:
            n_val = int(math.floor(x.shape[0] * validation_split))
            if n_val < 1:
                raise ValueError(f"tune: validation_split={validation_split} leaves no validation sample")
            n_tr = x.shape[0] - n_val
            x, xv, y, yv = x[:n_tr], x[n_tr:], y[:n_tr], y[n_tr:]
        else:
            raise ValueError(
                "tune: trials are judged on validation data: give validation_split or validation_data"
            )
        self.x, self.xv = x.astype(np.float32), _np(xv).astype(np.float32).reshape(-1, *x.shape[1:])
        self.y, self.yv = self._targets(y), self._targets(yv)
        self.n_in = int(np.prod(x.shape[1:]))
        if kind == "cross_entropy":
            self.n_out = (
                int(self.y.shape[1]) if self.y.ndim == 2 else int(max(self.y.max(), self.yv.max())) + 1
            )
            self.head = "linear"
        else:
            self.n_out = int(self.y.shape[1])
            self.head = "sigmoid" if kind == "binary_cross_entropy" else "linear"

    def _targets(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "cross_entropy":
            return y.astype(np.int64) if y.ndim == 1 else y.astype(np.float32)
        y = y.astype(np.float32)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    @property
    def n_train(self) -> int:
        return int(self.x.shape[0])

    def fingerprint(self) -> str:
        h = hashlib.sha1()
        for a in (self.x, self.y, self.xv, self.yv):
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def _auto_epochs(epochs: int | None, n_train: int, batch_size: int, steps: int | None = None) -> int:
    """Epochs per trial: `epochs`, or enough whole epochs to hold `steps` optimizer steps
    (the trial then stops at the step), or about `AUTO_STEPS` steps' worth."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    if steps is not None:
        if epochs is not None:
            raise ValueError(
                f"tune: give epochs= or steps= for the trial budget, not both ({epochs}, {steps})"
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"tune: steps must be an int >= 1, got {steps!r}")
        return math.ceil(steps / per_epoch)
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"tune: epochs must be >= 1, got {epochs}")
        return epochs
    return int(min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, math.ceil(AUTO_STEPS / per_epoch))))


def _optimizer(spec: OptimizerSpec) -> tuple[str, Callable[..., _optim.Optimizer]]:
    """(name, factory(params, lr=...)). Names: those of `ferrograd.optim.OPTIMIZERS`, plus
    "momentum" (SGD, momentum 0.9) and "nesterov" (SGD, Nesterov momentum 0.9)."""
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or repr(spec)
        return name, spec
    key = str(spec).lower()
    if key == "nesterov":
        return key, lambda params, lr: _optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    if key == "momentum":
        return key, lambda params, lr: _optim.SGD(params, lr=lr, momentum=0.9)
    if key not in _optim.OPTIMIZERS:
        raise ValueError(
            f"tune: unknown optimizer {spec!r} (choose from "
            f"{sorted([*_optim.OPTIMIZERS, 'momentum', 'nesterov'])}, "
            "or give a callable (params, lr=...) -> Optimizer)"
        )
    cls = _optim.OPTIMIZERS[key]
    return key, lambda params, lr: cls(params, lr=lr)


def _higher_is_better(metric: str) -> bool:
    return "acc" in metric


def _better(a: float, b: float, metric: str, min_delta: float = 0.0) -> bool:
    """Whether score `a` beats `b` by more than `min_delta` (relative)."""
    if not math.isfinite(a):
        return False
    if not math.isfinite(b):
        return True
    if _higher_is_better(metric):
        return a > b + abs(b) * min_delta
    return a < b - abs(b) * min_delta


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    return str(v)


def _count(model: Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


class _Clock:
    """The budget: trials left and time left (a trial starts only when the time left exceeds
    the last trial's duration)."""

    def __init__(self, max_trials: int | None, time_budget: float | None):
        self.max_trials, self.time_budget = max_trials, time_budget
        self.start = _now()
        self.trials = 0
        self.last_seconds = 0.0
        self.why = ""

    def elapsed(self) -> float:
        return _now() - self.start

    def deadline(self) -> float | None:
        """When a running trial is cut (`_now()` units): the end of the time
        budget, except for the first trial, which always runs to its end."""
        if self.time_budget is None or not self.trials:
            return None
        return self.start + self.time_budget

    def can_run(self) -> bool:
        if self.max_trials is not None and self.trials >= self.max_trials:
            self.why = f"max_trials={self.max_trials} reached"
            return False
        if self.time_budget is not None and self.trials:
            left = self.time_budget - self.elapsed()
            if left < self.last_seconds:
                self.why = (
                    f"time_budget={self.time_budget:g}s: {max(left, 0):.1f}s left, "
                    f"the last trial took {self.last_seconds:.1f}s"
                )
                return False
        return True

    def ran(self, seconds: float) -> None:
        self.trials += 1
        self.last_seconds = seconds


def strict_json(obj: Any) -> Any:
    """`obj` with every non-finite float spelled `{"float": "nan" | "inf" | "-inf"}`, as the
    checkpoints spell them, so it is strict JSON (`json.dumps(..., allow_nan=False)`)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def _from_strict(obj: Any) -> Any:
    """`strict_json`'s inverse."""
    if isinstance(obj, dict):
        if set(obj) == {"float"} and obj["float"] in ("nan", "inf", "-inf"):
            return float(obj["float"])
        return {k: _from_strict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_strict(v) for v in obj]
    return obj


class _Log:
    """The JSON-lines trial log: one object per finished trial, with its search's settings
    key, so a rerun with the same settings finds it."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else os.fspath(path)
        self.found: dict[tuple[str, str], dict] = {}
        if self.path and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                        self.found[(row["key"], row["id"])] = _from_strict(row["trial"])
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut short by a crash: that trial runs again

    def get(self, key: str, trial_id: str) -> dict | None:
        t = self.found.get((key, trial_id))
        return dict(t) if t is not None else None

    def add(self, key: str, trial_id: str, trial: dict) -> None:
        self.found[(key, trial_id)] = trial
        if not self.path:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            row = {"key": key, "id": trial_id, "trial": strict_json(trial)}
            f.write(json.dumps(row, allow_nan=False) + "\n")
            f.flush()


def _key(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- one trial


class _Watch(Callback):
    """Abandons a diverging trial after the epoch where a loss turns NaN/inf or exceeds
    `limit`."""

    def __init__(self, limit: float, divergence_factor: float, start: float):
        self.limit, self.factor, self.start = limit, divergence_factor, start
        self.reason: str | None = None
        self.epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        for k in ("loss", "val_loss"):
            v = (logs or {}).get(k)
            if v is None:
                continue
            if not math.isfinite(v):
                self.reason = f"{k} is {v} at epoch {epoch + 1}"
            elif v > self.limit:
                self.reason = (
                    f"{k} {v:.4g} > divergence_factor {self.factor:g} x start {self.start:.4g} "
                    f"at epoch {epoch + 1}"
                )
            if self.reason:
                self.model.stop_training = True
                return


class _Limit(Callback):
    """Ends a trial after `steps` optimizer steps, or between two batches once `deadline`
    (in `_now()` units) has passed: the time budget cuts a running trial."""

    def __init__(self, steps: int | None, deadline: float | None):
        self.steps, self.deadline = steps, deadline
        self.count = 0
        self.cut: str | None = None

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.steps is not None and self.count >= self.steps:
            self.model.stop_training = True
        elif self.deadline is not None and _now() > self.deadline:
            self.cut = f"the time budget ran out after {self.count} steps"
            self.model.stop_training = True
        else:
            self.count += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.steps is not None and self.count >= self.steps:
            self.model.stop_training = True


def _run(
    make: Callable[[], Module],
    problem: _Problem,
    opt: Callable[..., _optim.Optimizer],
    lr: float,
    *,
    epochs: int,
    steps: int | None = None,
    deadline: float | None = None,
    batch_size: int,
    seed: int,
    device: str | None,
    divergence_factor: float,
    metric: str,
    stop_patience: int | None,
) -> tuple[dict, Module, bool]:
    """Trains one fresh model for `epochs` epochs (or `steps` optimizer steps), cut short
    when `deadline` passes; returns (record, model, interrupted). With `stop_patience`, stops
    early and keeps the best epoch's weights and figures; else the last epoch's. A cut
    trial's record says why under "cut"."""
    t0 = _now()
    _core.manual_seed(seed)  # the same initial weights and the same data order every trial
    model = make()
    if not isinstance(model, Module):
        raise TypeError(f"tune: the builder returned {type(model).__name__}, not an nn.Module")
    if device is not None:
        model.to(device)
    start = _train.evaluate(model, problem.xv, problem.yv, loss=problem.loss)["loss"]
    limit = divergence_factor * start if math.isfinite(start) else math.inf
    watch = _Watch(limit, divergence_factor, start)
    limit_cb = _Limit(steps, deadline)
    callbacks: list[Callback] = [watch, limit_cb]
    stopper = None
    if stop_patience is not None:
        stopper = EarlyStopping(monitor=metric, patience=stop_patience, restore_best=True)
        callbacks.append(stopper)
    optimizer = opt(model.parameters(), lr=lr)
    hist = _train.fit(
        model,
        problem.x,
        problem.y,
        loss=problem.loss,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(problem.xv, problem.yv),
        callbacks=callbacks,
        verbose=0,
    )
    seconds = _now() - t0
    h = hist.history
    n_run = len(h.get("loss", []))
    diverged = watch.reason is not None
    at = n_run - 1
    if stopper is not None and stopper.best_epoch is not None and not diverged:
        at = stopper.best_epoch
    rec: dict[str, Any] = {"lr": lr}
    for k in ("loss", "val_loss", "acc", "val_acc", "mae", "val_mae"):
        if k in h and h[k]:
            rec[k] = float(h[k][at])
    if not diverged:
        # the training figures measured as the validation ones are (eval mode: no dropout,
        # batchnorm's running statistics, the kept weights), on as many training samples:
        # `loss` is the running mean over an epoch with dropout on, above the network's
        # actual training error, so a dropout network would look underfit by it
        n_eval = min(problem.n_train, int(problem.xv.shape[0]))
        ev = _train.evaluate(model, problem.x[:n_eval], problem.y[:n_eval], loss=problem.loss)
        for key, v in ev.items():
            rec["train_" + key] = float(v)
    rec.update(
        score=float(h[metric][at]) if metric in h and h[metric] else math.nan,
        diverged=diverged,
        reason=watch.reason,
        start_loss=float(start),
        epochs=n_run,
        steps=limit_cb.count,
        cut=limit_cb.cut,
        best_epoch=at + 1,
        seconds=round(seconds, 4),
        params=_count(model),
    )
    if stop_patience is not None:
        rec["history"] = {k: [float(v) for v in vs] for k, vs in h.items()}
    return rec, model, hist.interrupted


# ---------------------------------------------------------------------------- the LR search


def _logged_trial(
    log: _Log,
    key: str,
    tid: str,
    clock: _Clock,
    train: Callable[[], tuple[dict, Any, bool]],
    fields: dict | None = None,
) -> tuple[dict | None, Any, bool]:
    """One trial of a search: read back from the log when an earlier run finished it, else
    trained by `train` (a `_run` call), given `fields`, and appended to the log. Returns
    (record, trained model or None when read back, interrupted); the record is None when
    Ctrl-C stopped the training."""
    rec = log.get(key, tid)
    if rec is not None:
        clock.trials += 1
        rec["resumed"] = True
        return rec, None, False
    rec, model, interrupted = train()
    if interrupted:
        clock.why = "interrupted (Ctrl-C); rerun with the same log= to resume"
        return None, None, True
    clock.ran(rec["seconds"])
    if rec.get("cut"):
        # not logged: with more time, a rerun with the same log= trains it in full
        clock.why = f"time_budget={clock.time_budget:g}s: {rec['cut']}; the cut trial does not count"
        rec.update(fields or {})
        return rec, model, False
    rec.update(fields or {})
    log.add(key, tid, rec)
    return rec, model, False
