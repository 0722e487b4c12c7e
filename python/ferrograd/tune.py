"""Hyperparameter tuning: the learning-rate search and the tuning recipe.

>>> search = fg.tune.learning_rate(lambda: fg.models.standard(20, 4, width=64), x, y, epochs=3)
>>> search.best_lr
0.004
>>> result = fg.tune.recipe(x, y, architecture="standard", time_budget=120)
>>> result.model, result.config["lr"], print(result.report)

**The learning-rate search** (`learning_rate`) starts at 0.001 and doubles the rate while the
deciding metric (`metric`, "val_loss" by default) improves, stopping after `patience`
doublings in a row without improvement or at the first diverged trial; when no doubling beat
0.001 it halves from there by the same rule. Every trial builds the model afresh with the
same seed (so the same initial weights) and trains it with the same data order for the same
budget (`epochs`), so trials differ only in the rate; it is judged on the metric after its
last epoch. A trial is abandoned as *diverged* when a loss (training or validation, checked
after every epoch) is NaN or infinite, or above `divergence_factor` times the untrained
model's validation loss ("a loss well above its start"). A diverged rate is never returned.

**The recipe** (`recipe`) runs the seven steps as one call:

1. width: the smallest width whose parameter count is at least `param_margin` times the
   number of training samples ("slightly more parameters than samples"); the depth is fixed
   for the whole recipe (`depth`: 2 hidden layers for "standard", 2 residual blocks of 2
   layers for "residual", 4 hidden layers for "selu"), and capacity grows by width only;
2. no regularization: no batchnorm, no dropout;
3. the learning-rate search above, on that network (at most `lr_trials` trials);
4. the width doubles until the network overfits (or `max_width`, or growth stalls); when an
   overfitting rule fires, `overfit_patience` more doublings confirm it first (a wider
   network that beats the best metric so far means the signal was noise, and growth goes on);
5. batchnorm is added at that width, and the width doubles again at most `bn_growth` times
   until it overfits again (skipped for "selu": self-normalizing networks use no batchnorm);
6. dropout is added: `dropout_rates` in turn (0.2 then 0.3; AlphaDropout 0.05 then 0.1 for
   "selu") until the network no longer overfits or the metric gets worse;
7. the verdict on the best trial (by `metric`): well tuned, overfit or underfit.

Recipe trials use early stopping: each trains for at most `epochs` epochs and stops when the
metric has not improved for `stop_patience` epochs, keeping the best epoch's weights, whose
figures (loss, val_loss, accuracies) the trial records.

**The rules**, each a keyword argument (defaults are the module constants below); every
printed decision names the rule that fired and its numbers:

- overfit, *val_rise*: within a trial, the metric stopped improving for `stop_patience`
  epochs and its last value is worse than its best by more than `rise_tolerance`
  (relative), while the training loss still fell by more than `min_improvement` (relative).
  While the width grows (steps 4 and 5) it counts only when the doubling did not improve the
  metric by more than `min_improvement`, and not at the starting width: early stopping
  already keeps the best epoch, so overfitting in time alone is no reason to stop growing
  while capacity still helps;
- overfit, *gap*: at the best epoch, (val_loss - train_loss) / val_loss > `overfit_gap`, where
  `train_loss` is measured as val_loss is (eval mode, the kept weights) on as many training
  samples as there are validation samples; while the
  width grows it too counts only when the doubling did not improve the metric by more than
  `min_improvement` (a gap alone did not mean that more capacity stops helping: on the
  bundled MNIST sample the gap passed 25% at width 44 while doubling kept improving
  val_loss; the final verdict applies it as is);
- overfit, *capacity*: a wider network's best val_loss is worse than the narrower one's by
  more than `rise_tolerance` (relative) while its training loss is lower (checked during
  the growth of step 4);
- underfit: (val_loss - train_loss) / val_loss < `underfit_gap` (the training loss is not better
  than the validation loss), or no overfitting rule fires;
- growth stalls: `growth_patience` doublings in a row improve neither the metric nor the
  training loss by more than `min_improvement` (relative): capacity is not the limit.

Both functions append each finished trial to a JSON-lines file (`log=`); rerun with the same
file and settings and the trials found there are not run again, so an interrupted search
(Ctrl-C, a crash) resumes where it stopped. `time_budget` (seconds) is checked before every
trial: a trial is started only when the time left exceeds the last trial's duration (the
first trial always runs to its end); a later trial still running when the time runs out is
cut between two batches, is shown as cut, does not count and is not logged (a rerun with
the same log and more time trains it in full). The per-trial budget is `epochs`, or
`steps` optimizer steps. Trials run on `device` (the builder's choice when None).

Problems: integer labels train with softmax cross-entropy ("cross_entropy"), float targets
with MSE ("mse", no output activation), and `loss="binary_cross_entropy"` takes 0/1 targets
(the recipe's networks then end in a Sigmoid).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Union, cast

import numpy as np

from . import _core, nn
from . import losses as _losses
from . import models as _models
from . import optim as _optim
from . import train as _train
from .callbacks import Callback, EarlyStopping
from .nn import Module

__all__ = [
    "learning_rate",
    "recipe",
    "build",
    "LRSearch",
    "RecipeResult",
    "START_LR",
    "DIVERGENCE_FACTOR",
    "PATIENCE",
    "OVERFIT_GAP",
    "UNDERFIT_GAP",
    "RISE_TOLERANCE",
    "MIN_IMPROVEMENT",
    "GROWTH_PATIENCE",
    "OVERFIT_PATIENCE",
    "PARAM_MARGIN",
    "AUTO_STEPS",
]

START_LR = 0.001
"""Where the learning-rate search starts ("start at 0.001, then double or halve")."""

DIVERGENCE_FACTOR = 2.0
"""A trial is abandoned as diverged when a loss exceeds this many times the untrained
model's validation loss (or is NaN/inf): "a loss well above its start"."""

PATIENCE = 2
"""Doublings (or halvings) in a row without improving the metric that end the search."""

OVERFIT_GAP = 0.25
"""Overfit when (val_loss - train_loss) / val_loss exceeds this at the best epoch."""

UNDERFIT_GAP = 0.0
"""Underfit when (val_loss - train_loss) / val_loss is below this: training not better than
validation."""

RISE_TOLERANCE = 0.02
"""Relative worsening of the validation figure that counts as rising: within a trial, from its
best epoch to its last (the *val_rise* rule); between trials, from a narrower network's best
val_loss to a wider one's (the *capacity* rule)."""

MIN_IMPROVEMENT = 0.01
"""Relative change that counts as an improvement (or a fall of the training loss)."""

OVERFIT_PATIENCE = 1
"""While the width grows (step 4), doublings tried after an overfitting rule fires before the
recipe concludes: the signal stands unless one of them beats the best metric so far by
`MIN_IMPROVEMENT` (measured on the MNIST sample: a SELU net's doubling from 22 to 44 lost to
its predecessor by chance and ended the growth at width 44)."""

GROWTH_PATIENCE = 2
"""Width doublings in a row that improve neither the metric nor the training loss by
`MIN_IMPROVEMENT` before the recipe stops growing: capacity is not the limit."""

PARAM_MARGIN = 1.1
"""Step 1's starting width: the smallest whose parameter count is at least this many times the
number of training samples."""

AUTO_STEPS = 1000
"""With `epochs=None`, each trial trains for about this many optimizer steps, as whole epochs
between `AUTO_MIN_EPOCHS` and `AUTO_MAX_EPOCHS` (20 epochs of 800 samples in batches of 32;
4 epochs of 8,000; 2 of 48,000)."""

AUTO_MIN_EPOCHS = 2
AUTO_MAX_EPOCHS = 20

STOP_PATIENCE = 3
"""Recipe trials stop when the metric has not improved for this many epochs."""

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


class LRSearch:
    """The learning-rate search's result: `best_lr`, `trials` (dicts: lr, loss, val_loss, the
    accuracies or MAEs, score, diverged, reason, seconds, ...), `print(search)` for the table,
    `plot(path)` and `to_dict()`. `best_lr` is None only when every trial diverged."""

    def __init__(self, best_lr: float | None, trials: list[dict], metric: str, settings: dict, why: str):
        self.best_lr, self.trials, self.metric, self.settings = best_lr, trials, metric, settings
        self.stopped_because = why
        self.interrupted = False

    @property
    def best(self) -> dict | None:
        """The best trial (None when every trial diverged)."""
        return next((t for t in self.trials if t["lr"] == self.best_lr), None)

    def table(self) -> str:
        """The trials as a text table, in the order of the learning rate."""
        cols = ["lr", "loss", "val_loss"] + [
            c for c in ("acc", "val_acc", "mae", "val_mae") if any(c in t for t in self.trials)
        ]
        rows = [[*cols, "diverged", "seconds", ""]]
        for t in sorted(self.trials, key=lambda t: t["lr"]):
            mark = "<- best" if t["lr"] == self.best_lr else (t.get("reason") or "")
            if t.get("cut"):
                mark = f"cut: {t['cut']}"
            rows.append(
                [_fmt(t.get(c, "")) for c in cols]
                + ["yes" if t["diverged"] else "no", f"{t['seconds']:.2f}", mark]
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        lines = [
            "  ".join(c.rjust(w) for c, w in zip(r[:-1], widths)) + ("  " + r[-1] if r[-1] else "")
            for r in rows
        ]
        best = "none (every trial diverged)" if self.best_lr is None else f"{self.best_lr:g}"
        lines.append(f"best lr: {best} (by {self.metric}); search ended: {self.stopped_because}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"LRSearch(best_lr={self.best_lr}, metric={self.metric!r}, trials={len(self.trials)})"

    def to_dict(self) -> dict:
        """A dict of plain values: best_lr, metric, settings, stopped_because, trials (floats
        may be NaN or inf; `strict_json` spells them for strict JSON)."""
        return {
            "best_lr": self.best_lr,
            "metric": self.metric,
            "settings": dict(self.settings),
            "stopped_because": self.stopped_because,
            "trials": [dict(t) for t in self.trials],
        }

    def plot(self, path: str | os.PathLike) -> str:
        """Loss and validation loss against the learning rate (log axis), diverged trials
        marked. Uses matplotlib when installed; without it, a path ending in ".svg" is
        written by a built-in SVG writer and any other raises ImportError."""
        ts = sorted(self.trials, key=lambda t: t["lr"])
        ok = [t for t in ts if not t["diverged"]]
        series = [
            ("loss", [t["lr"] for t in ok], [t.get("loss", math.nan) for t in ok]),
            ("val_loss", [t["lr"] for t in ok], [t.get("val_loss", math.nan) for t in ok]),
        ]
        marks = [t["lr"] for t in ts if t["diverged"]]
        return _plot(
            os.fspath(path),
            "learning-rate search",
            "learning rate (log2)",
            "loss",
            series,
            True,
            marks,
            self.best_lr,
        )


def learning_rate(
    build: Builder,
    x: Any,
    y: Any,
    *,
    build_kwargs: dict | None = None,
    loss: str | None = None,
    optimizer: OptimizerSpec = "adam",
    start: float = START_LR,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    max_trials: int | None = 12,
    time_budget: float | None = None,
    seed: int = 0,
    validation_split: float = 0.2,
    validation_data: Any = None,
    metric: str = "val_loss",
    patience: int = PATIENCE,
    divergence_factor: float = DIVERGENCE_FACTOR,
    min_lr: float = 1e-7,
    device: str | None = None,
    log: str | os.PathLike | None = None,
    verbose: int = 1,
    stream: IO[str] | None = None,
) -> LRSearch:
    """Searches the learning rate by doubling and halving from `start` (0.001).

    - `build`: a callable returning a fresh model (`lambda: fg.models.standard(20, 4)`), a
      builder of `ferrograd.models` (called as `build(in_features, out_features,
      **build_kwargs)`), or an architecture name ("standard", "residual", "selu").
    - `optimizer`: "adam" (default), "sgd", "momentum", "nesterov" (SGD with Nesterov
      momentum 0.9), "rmsprop", "adamw", or a callable `(params, lr=...) -> Optimizer`.
    - `loss`: None picks "cross_entropy" for integer labels and "mse" for float targets;
      give "binary_cross_entropy" for 0/1 targets.
    - Budget: `epochs` per trial, or `steps` (optimizer steps per trial; None for both:
      about `AUTO_STEPS` steps as whole epochs), `max_trials`, `time_budget` (seconds: a
      trial starts only when the time left exceeds the last trial's duration, and a running
      trial other than the first is cut when the time runs out; a cut trial does not count).
    - `metric`: what decides ("val_loss"; "val_acc" and other accuracies are maximized).
    - `patience`, `divergence_factor`: the rules (see the module docstring); `min_lr` ends
      the halving.
    - `log`: a JSON-lines file; trials already in it (same settings) are not run again.

    Every trial starts from `fg.manual_seed(seed)`: the same initial weights, the same data
    order. Returns an `LRSearch`; its `best_lr` is never a diverged rate.
    """
    problem = _Problem(x, y, loss, validation_split, validation_data)
    make, build_desc = _maker(build, build_kwargs, problem)
    opt_name, opt = _optimizer(optimizer)
    epochs = _auto_epochs(epochs, problem.n_train, batch_size, steps)
    out = stream or sys.stdout
    say = (lambda s: (out.write(s + "\n"), out.flush())) if verbose else (lambda s: None)
    clock = _Clock(max_trials, time_budget)
    per_trial = f"{steps} steps" if steps is not None else f"{epochs} epochs"
    say(
        f"learning-rate search: {build_desc}, {opt_name}, {problem.loss}, {per_trial} on "
        f"{problem.n_train} samples (batch {batch_size}) per trial, judged on {metric}"
    )
    result = _search(
        make,
        problem,
        opt,
        opt_name,
        build_desc,
        clock,
        _Log(log),
        say,
        start=start,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        metric=metric,
        patience=patience,
        divergence_factor=divergence_factor,
        min_lr=min_lr,
        device=device,
        steps=steps,
    )
    if verbose:
        say(result.table())
    return result


def _maker(build: Builder, kwargs: dict | None, problem: _Problem) -> tuple[Callable[[], Module], str]:
    kw = dict(kwargs or {})
    if isinstance(build, str):
        if build not in _models.ARCHITECTURES:
            raise ValueError(
                f"tune: unknown architecture {build!r} (choose from {sorted(_models.ARCHITECTURES)})"
            )
        build = cast(Callable[..., Module], _models.ARCHITECTURES[build])
    if build in _models.ARCHITECTURES.values():
        fn: Callable[..., Module] = build
        kw.setdefault("head", problem.head)

        def make() -> Module:
            return fn(problem.n_in, problem.n_out, **kw)

        return (
            make,
            f"{fn.__name__}({problem.n_in}, {problem.n_out}{''.join(f', {k}={v!r}' for k, v in kw.items())})",
        )
    if not callable(build):
        raise TypeError(
            f"tune: build must be a callable returning a model or an architecture name, got {build!r}"
        )
    fn2 = build

    def make2() -> Module:
        return fn2(**kw)

    return make2, getattr(build, "__qualname__", repr(build))


def _search(
    make: Callable[[], Module],
    problem: _Problem,
    opt: Callable[..., _optim.Optimizer],
    opt_name: str,
    build_desc: str,
    clock: _Clock,
    log: _Log,
    say: Callable[[str], Any],
    *,
    start: float,
    epochs: int,
    batch_size: int,
    seed: int,
    metric: str,
    patience: int,
    divergence_factor: float,
    min_lr: float,
    device: str | None,
    steps: int | None = None,
    stage: str | None = None,
) -> LRSearch:
    if not (start > 0 and math.isfinite(start)):
        raise ValueError(f"tune: start must be a positive learning rate, got {start}")
    if patience < 1:
        raise ValueError(f"tune: patience must be >= 1, got {patience}")
    _core.manual_seed(seed)
    probe = make()  # the architecture, for the log's settings key
    settings = {
        "search": "learning_rate",
        "model": str(probe),
        "params": _count(probe),
        "build": build_desc,
        "optimizer": opt_name,
        "loss": problem.loss,
        "epochs": epochs,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "metric": metric,
        "divergence_factor": divergence_factor,
        "data": problem.fingerprint(),
        "device": device,
    }
    key = _key(settings)
    trials: list[dict] = []
    interrupted = False

    def trial(lr: float) -> dict | None:
        nonlocal interrupted
        if interrupted or not clock.can_run():
            return None
        got, _, interrupted = _logged_trial(
            log,
            key,
            repr(lr),
            clock,
            lambda: _run(
                make,
                problem,
                opt,
                lr,
                epochs=epochs,
                steps=steps,
                deadline=clock.deadline(),
                batch_size=batch_size,
                seed=seed,
                device=device,
                divergence_factor=divergence_factor,
                metric=metric,
                stop_patience=None,
            ),
        )
        if got is None:
            return None
        rec = got
        if stage:
            rec["stage"] = stage
        trials.append(rec)
        if rec.get("cut"):
            say(f"  lr {lr:g}: cut ({rec['cut']}); not counted")
            return None
        if rec["diverged"]:
            say(f"  lr {lr:g}: diverged, abandoned ({rec['reason']})")
        else:
            figs = " ".join(
                f"{k} {rec[k]:.4g}" for k in ("loss", "val_loss", "val_acc", "val_mae") if k in rec
            )
            src = ", from the log" if rec.get("resumed") else ""
            say(f"  lr {lr:g}: {figs} ({rec['seconds']:.2f}s{src})")
        return rec

    best: dict | None = None
    why = ""
    # up: double while the metric improves (patience misses in a row end it), or until a diverged trial
    lr, misses = start, 0
    while True:
        rec = trial(lr)
        if rec is None:
            why = clock.why
            break
        if rec["diverged"]:
            why = f"lr {lr:g} diverged ({rec['reason']})"
            break
        if best is None or _better(rec["score"], best["score"], metric):
            best, misses = rec, 0
        else:
            misses += 1
            if misses >= patience:
                why = f"{misses} doublings without improving {metric} (patience={patience})"
                break
        lr *= 2
    # down: when no doubling beat the start, halve by the same rule
    if (best is None or best["lr"] == start) and not interrupted:
        lr, misses = start / 2, 0
        while lr >= min_lr:
            rec = trial(lr)
            if rec is None:
                why = clock.why
                break
            if not rec["diverged"] and (best is None or _better(rec["score"], best["score"], metric)):
                best, misses = rec, 0
            elif best is not None:
                misses += 1
                if misses >= patience:
                    why = f"{misses} halvings without improving {metric} (patience={patience})"
                    break
            lr /= 2
        else:
            why = f"reached min_lr={min_lr:g}"
    result = LRSearch(None if best is None else best["lr"], trials, metric, settings, why)
    result.interrupted = interrupted
    return result


# ---------------------------------------------------------------------------- the recipe


def _residual_without_batchnorm(
    in_features: int, out_features: int, width: int, blocks: int, dropout: float = 0.0, head: str = "linear"
) -> nn.Sequential:
    """`models.residual` without BatchNorm (the recipe's steps 1-4): Linear -> ReLU, then
    `blocks` residual blocks of (Linear -> ReLU -> Dropout) x 2, then the output layer."""
    layers: list[Module] = [nn.Linear(in_features, width), nn.ReLU()]
    for _ in range(blocks):
        body: list[Module] = []
        for _ in range(2):
            body += [nn.Linear(width, width), nn.ReLU()]
            if dropout > 0:
                body.append(nn.Dropout(dropout))
        layers.append(nn.Residual(nn.Sequential(*body)))
    layers.append(nn.Linear(width, out_features))
    return _models._head(layers, head)


def build(config: dict) -> Module:
    """A fresh (untrained) model from a recipe's `config` (its architecture and arguments).

    >>> model = fg.tune.build(result.config)
    """
    arch, kw = config["architecture"], dict(config["kwargs"])
    n_in, n_out = config["in_features"], config["out_features"]
    if arch == "standard":
        return _models.standard(n_in, n_out, **kw)
    if arch == "residual":
        if kw.pop("batchnorm"):
            return _models.residual(n_in, n_out, layers_per_block=2, **kw)
        return _residual_without_batchnorm(n_in, n_out, **kw)
    if arch in ("selu", "self_normalizing"):
        return _models.self_normalizing(n_in, n_out, **kw)
    raise ValueError(f"tune: unknown architecture {arch!r} (choose from standard, residual, selu)")


def _kwargs(arch: str, width: int, depth: int, batchnorm: bool, dropout: float, head: str) -> dict:
    if arch == "standard":
        return {"width": width, "depth": depth, "dropout": dropout, "batchnorm": batchnorm, "head": head}
    if arch == "residual":
        return {"width": width, "blocks": depth, "dropout": dropout, "batchnorm": batchnorm, "head": head}
    return {"width": width, "depth": depth, "alpha_dropout": dropout, "head": head}


def _plain_params(arch: str, n_in: int, n_out: int, width: int, depth: int) -> int:
    """Parameters of the unregularized network (no batchnorm), in closed form."""
    hidden = depth - 1 if arch != "residual" else 2 * depth
    return n_in * width + width + hidden * (width * width + width) + width * n_out + n_out


def _start_width(arch: str, n_in: int, n_out: int, depth: int, n_train: int, margin: float) -> int:
    w = 1
    while _plain_params(arch, n_in, n_out, w, depth) < margin * n_train:
        w += 1
    return w


class RecipeResult:
    """The recipe's result: `model` (trained, best weights), `config` (builder, arguments,
    optimizer, lr, loss, budget; `fg.tune.build(config)` rebuilds it), `trials` (every trial,
    with its stage and decision), `verdict`, `report` (Markdown), `lr_search`, `plot(path)`."""

    def __init__(
        self,
        model: Module,
        config: dict,
        trials: list[dict],
        report: str,
        verdict: str,
        lr_search: LRSearch,
    ):
        self.model, self.config, self.trials = model, config, trials
        self.report, self.verdict, self.lr_search = report, verdict, lr_search
        self.interrupted = False

    def __str__(self) -> str:
        return self.report

    def __repr__(self) -> str:
        return f"RecipeResult(config={self.config!r}, trials={len(self.trials)}, verdict={self.verdict!r})"

    def to_dict(self) -> dict:
        """A dict of plain values: config, verdict, trials, report (floats may be NaN or inf;
        `strict_json` spells them for strict JSON)."""
        return {
            "config": dict(self.config),
            "verdict": self.verdict,
            "trials": [dict(t) for t in self.trials],
            "report": self.report,
        }

    def plot(self, path: str | os.PathLike) -> str:
        """Loss and val_loss of every trial in order (matplotlib when installed; otherwise a
        built-in SVG writer for a ".svg" path, ImportError for any other)."""
        ts = [t for t in self.trials if not t["diverged"]]
        idx = [float(i + 1) for i in range(len(ts))]
        series = [
            ("loss", idx, [t.get("loss", math.nan) for t in ts]),
            ("val_loss", idx, [t.get("val_loss", math.nan) for t in ts]),
        ]
        return _plot(os.fspath(path), "tuning recipe", "trial", "loss", series, False, [], None)


def recipe(
    x: Any,
    y: Any,
    architecture: str = "standard",
    *,
    loss: str | None = None,
    optimizer: OptimizerSpec = "adam",
    depth: int | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    max_trials: int | None = 30,
    time_budget: float | None = None,
    seed: int = 0,
    validation_split: float = 0.2,
    validation_data: Any = None,
    metric: str = "val_loss",
    lr_trials: int = 8,
    patience: int = PATIENCE,
    stop_patience: int = STOP_PATIENCE,
    divergence_factor: float = DIVERGENCE_FACTOR,
    overfit_gap: float = OVERFIT_GAP,
    underfit_gap: float = UNDERFIT_GAP,
    rise_tolerance: float = RISE_TOLERANCE,
    min_improvement: float = MIN_IMPROVEMENT,
    growth_patience: int = GROWTH_PATIENCE,
    overfit_patience: int = OVERFIT_PATIENCE,
    param_margin: float = PARAM_MARGIN,
    max_width: int = 2048,
    bn_growth: int = 2,
    dropout_rates: Sequence[float] | None = None,
    device: str | None = None,
    log: str | os.PathLike | None = None,
    verbose: int = 1,
    stream: IO[str] | None = None,
) -> RecipeResult:
    """The tuning recipe's seven steps as one call (see the module docstring for the steps
    and the rules); returns a `RecipeResult`.

    - `architecture`: "standard", "residual" or "selu"; `depth` (None: 2 hidden layers,
      2 residual blocks, 4 SELU layers) stays fixed while the width grows.
    - Budget: `epochs` per trial, or `steps` (optimizer steps per trial; None for both:
      about `AUTO_STEPS` steps as whole epochs); trials stop early after `stop_patience`
      epochs without improvement. `max_trials` (all trials, the learning-rate search's
      `lr_trials` included), `time_budget` (seconds; the learning-rate search may use a third
      of it; a trial starts only when the time left exceeds the last trial's duration, and a
      running trial is cut when the time runs out: it does not count, and the recipe ends
      with the best trial so far).
    - `metric` decides (default "val_loss"); `optimizer` and `loss` as in `learning_rate`.
    - Rules: `overfit_gap`, `underfit_gap`, `rise_tolerance`, `min_improvement`,
      `growth_patience`, `overfit_patience`, `param_margin`, `max_width`, `bn_growth`, `dropout_rates`,
      `patience` and `divergence_factor` (the learning-rate search's).
    - `log`: a JSON-lines file; trials already there (same settings) are not run again.
    """
    arch = "selu" if architecture == "self_normalizing" else architecture
    if arch not in _DEPTH:
        raise ValueError(
            f"recipe: architecture must be 'standard', 'residual' or 'selu', got {architecture!r}"
        )
    problem = _Problem(x, y, loss, validation_split, validation_data)
    opt_name, opt = _optimizer(optimizer)
    r = _Recipe(
        problem=problem,
        arch=arch,
        opt_name=opt_name,
        opt=opt,
        depth=_DEPTH[arch] if depth is None else depth,
        epochs=_auto_epochs(epochs, problem.n_train, batch_size, steps),
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        metric=metric,
        rates=tuple(dropout_rates) if dropout_rates is not None else _DROPOUT[arch],
        lr_trials=lr_trials,
        patience=patience,
        stop_patience=stop_patience,
        divergence_factor=divergence_factor,
        overfit_gap=overfit_gap,
        underfit_gap=underfit_gap,
        rise_tolerance=rise_tolerance,
        min_improvement=min_improvement,
        growth_patience=growth_patience,
        overfit_patience=overfit_patience,
        param_margin=param_margin,
        max_width=max_width,
        bn_growth=bn_growth,
        device=device,
        clock=_Clock(max_trials, time_budget),
        tlog=_Log(log),
        verbose=verbose,
        out=stream or sys.stdout,
    )
    r.say(
        f"tuning recipe: {arch} network, {problem.n_train} training and {problem.xv.shape[0]} validation "
        f"samples, {problem.loss}, {opt_name}; each trial: up to "
        + (f"{steps} steps" if steps is not None else f"{epochs if epochs is not None else r.epochs} epochs")
        + f" (batch {batch_size}), early stop after {stop_patience} epochs without improving {metric}"
    )
    width = r.start()
    lr = r.learning_rate(width)
    width, over_at = r.grow(width, lr)
    width, last = r.batchnorm(width, over_at, lr)
    base, first_drop, use_bn = r.dropout(width, last, lr)
    r.dropout_grow(base, first_drop, use_bn, lr)
    r.retune_lr()
    return r.verdict()


@dataclass
class _Recipe:
    """The recipe between its stages: the problem, the budget, the rules and the trials so
    far. `recipe()` calls the stages in order; each prints its decisions through `say`."""

    problem: _Problem
    arch: str
    opt_name: str
    opt: Callable[..., _optim.Optimizer]
    depth: int
    epochs: int
    steps: int | None
    batch_size: int
    seed: int
    metric: str
    rates: tuple[float, ...]
    lr_trials: int
    patience: int
    stop_patience: int
    divergence_factor: float
    overfit_gap: float
    underfit_gap: float
    rise_tolerance: float
    min_improvement: float
    growth_patience: int
    overfit_patience: int
    param_margin: float
    max_width: int
    bn_growth: int
    device: str | None
    clock: _Clock
    tlog: _Log
    verbose: int
    out: IO[str]
    lines: list[str] = field(default_factory=list)
    trials: list[dict] = field(default_factory=list)
    models_held: dict[str, Module] = field(default_factory=dict)
    interrupted: bool = False
    search: LRSearch | None = None

    def __post_init__(self) -> None:
        self.key = _key(
            {
                "search": "recipe",
                "architecture": self.arch,
                "depth": self.depth,
                "optimizer": self.opt_name,
                "loss": self.problem.loss,
                "epochs": self.epochs,
                "steps": self.steps,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "metric": self.metric,
                "stop_patience": self.stop_patience,
                "data": self.problem.fingerprint(),
                "device": self.device,
            }
        )

    # ------------------------------------------------------------ printing and one trial

    def say(self, s: str) -> None:
        """One line of the path taken: printed (when verbose) and kept for the report."""
        self.lines.append(s)
        if self.verbose:
            self.out.write(s + "\n")
            self.out.flush()

    def config_of(self, width: int, bn: bool, p: float, lr: float) -> dict:
        """The config of one network of the recipe (what `build` takes)."""
        builder = {
            "standard": "ferrograd.models.standard",
            "residual": "ferrograd.models.residual" if bn else "ferrograd.tune._residual_without_batchnorm",
            "selu": "ferrograd.models.self_normalizing",
        }[self.arch]
        return {
            "architecture": self.arch,
            "builder": builder,
            "in_features": self.problem.n_in,
            "out_features": self.problem.n_out,
            "kwargs": _kwargs(self.arch, width, self.depth, bn, p, self.problem.head),
            "optimizer": self.opt_name,
            "lr": lr,
            "loss": self.problem.loss,
            "metric": self.metric,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "device": self.device,
        }

    def describe(self, t: dict) -> str:
        reg = [] if not t["batchnorm"] else ["batchnorm"]
        if t["dropout"]:
            reg.append(("alpha_dropout" if self.arch == "selu" else "dropout") + f" {t['dropout']:g}")
        return f"width {t['width']} ({t['params']} params), " + (", ".join(reg) or "no regularization")

    @staticmethod
    def figures(t: dict) -> str:
        keys = (
            "loss",
            "train_loss",
            "val_loss",
            "acc",
            "train_acc",
            "val_acc",
            "mae",
            "train_mae",
            "val_mae",
        )
        figs = [f"{k} {t[k]:.4g}" for k in keys if k in t]
        return ", ".join(figs) + f" (best epoch {t['best_epoch']}/{t['epochs']}, {t['seconds']:.1f}s)"

    def train(self, cfg: dict, deadline: float | None) -> tuple[dict, Module, bool]:
        """Trains the network of `cfg` under the recipe's budget and rules (a `_run`)."""
        return _run(
            lambda: build(cfg),
            self.problem,
            self.opt,
            cfg["lr"],
            epochs=self.epochs,
            steps=self.steps,
            deadline=deadline,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            divergence_factor=self.divergence_factor,
            metric=self.metric,
            stop_patience=self.stop_patience,
        )

    def run(self, stage: str, width: int, bn: bool, p: float, lr: float) -> dict | None:
        """One trial (or its record from the log); None when the budget (or Ctrl-C) ends
        the recipe, a cut trial included."""
        if self.interrupted or not self.clock.can_run():
            return None
        cfg = self.config_of(width, bn, p, lr)
        tid = json.dumps({"kwargs": cfg["kwargs"], "lr": lr}, sort_keys=True)
        rec, model, self.interrupted = _logged_trial(
            self.tlog,
            self.key,
            tid,
            self.clock,
            lambda: self.train(cfg, self.clock.deadline()),
            {"width": width, "batchnorm": bn, "dropout": p, "config": cfg},
        )
        if rec is None:
            return None
        rec.update(stage=stage, id=tid)
        self.trials.append(rec)
        if rec.get("cut"):
            rec["decision"] = f"cut ({rec['cut']}); not counted"
            self.say(f"{stage}: {self.describe(rec)}: {rec['decision']}")
            return None
        if model is not None:
            self.models_held[tid] = model
        return rec

    def finished(self) -> list[dict]:
        """The recipe's counted trials: not diverged, not cut, not the learning-rate search's."""
        return [t for t in self.trials if not t["diverged"] and not t.get("cut") and t.get("id") is not None]

    def best_of(self, ts: list[dict]) -> dict:
        best = ts[0]
        for t in ts[1:]:
            if _better(t["score"], best["score"], self.metric):
                best = t
        return best

    def stop_line(self, stage: str) -> None:
        self.say(f"{stage}: budget: {self.clock.why}; stopping here")

    def decide(self, t: dict, text: str) -> None:
        t["decision"] = text
        self.say(f"{t['stage']}: {self.describe(t)}: {self.figures(t)}; {text}")

    # ------------------------------------------------------------ the rules

    @staticmethod
    def gap(t: dict) -> float:
        """(val_loss - train_loss) / val_loss, the training loss measured as the validation
        loss is (`train_loss`; the running `loss` for records without it)."""
        v = t.get("val_loss", math.nan)
        return (v - t.get("train_loss", t.get("loss", math.nan))) / abs(v) if v else math.nan

    def overfit(self, t: dict, prev: dict | None, growing: bool = False) -> str | None:
        """The first overfitting rule that fires, with its numbers; None when none does. While
        `growing`, val_rise and gap count only when the doubling from `prev` did not improve the metric
        by more than min_improvement (early stopping already keeps the best epoch)."""
        if t["diverged"]:
            return None
        metric, tol, mi = self.metric, self.rise_tolerance, self.min_improvement
        h = t.get("history", {})
        tr, va = h.get("loss", []), h.get(metric, [])
        b = t["best_epoch"] - 1
        helped = growing and (prev is None or _better(t["score"], prev["score"], metric, mi))
        if len(va) - 1 - b >= self.stop_patience and len(tr) == len(va) and not helped:
            fell = (tr[b] - tr[-1]) / abs(tr[b]) if tr[b] else 0.0
            rose = abs(va[-1] - va[b]) / abs(va[b]) if va[b] else 0.0
            if fell > mi and _better(va[b], va[-1], metric, tol):
                return (
                    f"rule val_rise: {metric} went from {va[b]:.4g} at epoch {b + 1} to {va[-1]:.4g} at "
                    f"epoch {len(va)} ({rose:.1%} worse > rise_tolerance {tol:.0%}) while loss "
                    f"fell from {tr[b]:.4g} to {tr[-1]:.4g} "
                    f"({fell:.0%} > min_improvement {mi:.0%})"
                )
        g = self.gap(t)
        if math.isfinite(g) and g > self.overfit_gap and not helped:
            return (
                f"rule gap: (val_loss {t['val_loss']:.4g} - train_loss "
                f"{t.get('train_loss', t['loss']):.4g}) / val_loss = "
                f"{g:.0%} > overfit_gap {self.overfit_gap:.0%}"
            )
        if prev is not None and not prev["diverged"] and "val_loss" in t and "val_loss" in prev:
            rise = (t["val_loss"] - prev["val_loss"]) / abs(prev["val_loss"])
            if rise > tol and t["loss"] < prev["loss"]:
                return (
                    f"rule capacity: val_loss rose from {prev['val_loss']:.4g} to {t['val_loss']:.4g} "
                    f"(+{rise:.0%} > rise_tolerance {tol:.0%}) while loss fell from "
                    f"{prev['loss']:.4g} to {t['loss']:.4g}"
                )
        return None

    def fit_state(self, t: dict) -> str:
        """Why no overfitting rule fired, in words (the gap and the metric's trend)."""
        metric, tol = self.metric, self.rise_tolerance
        g = self.gap(t)
        va = t.get("history", {}).get(metric, [])
        b = t["best_epoch"] - 1
        if t["best_epoch"] == len(va):
            trend = f"{metric} still improving at epoch {len(va)}"
        elif _better(va[b], va[-1], metric, tol):
            trend = (
                f"{metric} worsened from {va[b]:.4g} to {va[-1]:.4g} after epoch {b + 1}, which counts "
                "only when a doubling does not help (rule val_rise while growing); early stopping kept "
                f"epoch {b + 1}"
            )
        else:
            trend = (
                f"{metric} {va[-1]:.4g} at epoch {len(va)}, within rise_tolerance {tol:.0%} "
                f"of its best {va[t['best_epoch'] - 1]:.4g}"
            )
        if math.isfinite(g) and g > self.overfit_gap:
            # only reached while growing, when the doubling helped (see `overfit`)
            return (
                f"gap {g:.0%} > overfit_gap {self.overfit_gap:.0%}, which counts only when a doubling does "
                f"not help (rule gap while growing; this one improved {metric}), {trend}"
            )
        return f"gap {g:.0%} <= overfit_gap {self.overfit_gap:.0%}, {trend}"

    # ------------------------------------------------------------ the stages

    def start(self) -> int:
        """Steps 1-2: the starting width, no regularization."""
        p = self.problem
        width = _start_width(self.arch, p.n_in, p.n_out, self.depth, p.n_train, self.param_margin)
        params = _plain_params(self.arch, p.n_in, p.n_out, width, self.depth)
        depth_word = {"standard": "hidden layers", "residual": "residual blocks", "selu": "SELU layers"}[
            self.arch
        ]
        self.say(
            f"1 start: width {width}, {self.depth} {depth_word}: {params} parameters >= param_margin "
            f"{self.param_margin:g} x {p.n_train} training samples (the smallest such width)"
        )
        self.say("2 no regularization: no batchnorm, no dropout")
        return width

    def learning_rate(self, width: int) -> float:
        """Step 3: the learning-rate search on the starting network, with at most `lr_trials`
        trials and a third of the time budget."""
        clock = self.clock
        lr_clock = _Clock(
            self.lr_trials if clock.max_trials is None else max(1, min(self.lr_trials, clock.max_trials - 1)),
            None if clock.time_budget is None else clock.time_budget / 3,
        )
        out = self.out
        quiet: Callable[[str], Any] = (
            (lambda s: (out.write(s + "\n"), out.flush())) if self.verbose >= 2 else (lambda s: None)
        )
        start_cfg = self.config_of(width, False, 0.0, START_LR)
        search = _search(
            lambda: build(start_cfg),
            self.problem,
            self.opt,
            self.opt_name,
            json.dumps(start_cfg["kwargs"], sort_keys=True),
            lr_clock,
            self.tlog,
            quiet,
            start=START_LR,
            epochs=self.epochs,
            steps=self.steps,
            batch_size=self.batch_size,
            seed=self.seed,
            metric=self.metric,
            patience=self.patience,
            divergence_factor=self.divergence_factor,
            min_lr=1e-7,
            device=self.device,
            stage="3 learning rate",
        )
        self.search = search
        clock.trials += len(search.trials)
        if search.trials:
            clock.last_seconds = search.trials[-1]["seconds"]
        for t in search.trials:
            t.update(width=width, batchnorm=False, dropout=0.0, id=None)
            self.trials.append(t)
        if search.interrupted:
            self.interrupted = True
        if search.best_lr is None:
            raise RuntimeError("recipe: every learning rate tried diverged:\n" + search.table())
        lr = search.best_lr
        b = search.best or {}
        tried = ", ".join(
            f"{t['lr']:g}" + (" (diverged)" if t["diverged"] else " (cut)" if t.get("cut") else "")
            for t in search.trials
        )
        self.say(
            f"3 learning rate: tried {tried} with {self.opt_name}; "
            f"best lr {lr:g} ({self.metric} {b.get('score', math.nan):.4g}); "
            f"search ended: {search.stopped_because}"
        )
        return lr

    def grow(self, width: int, lr: float) -> tuple[int, dict | None]:
        """Step 4: double the width until the network overfits (or growth stalls, or
        `max_width`). Returns the width reached and the trial there."""
        metric, mi = self.metric, self.min_improvement
        prev: dict | None = None
        current = self.run("4 grow", width, False, 0.0, lr)
        over_at: dict | None = None
        stalls = 0
        nxt = "adding batchnorm" if self.arch != "selu" else "adding dropout"
        signal: dict | None = None  # the trial where an overfitting rule fired, while confirming
        confirms = 0
        best: dict | None = None  # the best growth trial so far
        while current is not None:
            if current["diverged"]:
                self.decide(
                    current, f"diverged at lr {lr:g} ({current['reason']}); keeping the previous width"
                )
                over_at = signal or prev
                break
            if signal is not None and best is not None:
                if not _better(current["score"], best["score"], metric, mi):
                    over_at = signal
                    self.decide(
                        current,
                        f"{metric} {current['score']:.4g} does not beat the best so far "
                        f"({best['score']:.4g} at width {best['width']}) by min_improvement {mi:.0%}: "
                        f"overfitting confirmed from width {signal['width']}; {nxt}",
                    )
                    break
                self.say(
                    f"4 grow: the overfitting signal at width {signal['width']} was noise: width "
                    f"{current['width']} beats the best {metric} so far ({best['score']:.4g})"
                )
                signal, confirms = None, 0
            if best is None or _better(current["score"], best["score"], metric):
                best = current
            why = self.overfit(current, prev, growing=True)
            if why and confirms < self.overfit_patience and current["width"] * 2 <= self.max_width:
                # one trial's verdict is noisy (a doubling may lose to its predecessor by chance):
                # look one doubling further before concluding (rule overfit_patience)
                signal, confirms = signal or current, confirms + 1
                self.decide(
                    current,
                    f"overfitting signal at width {current['width']} ({why}); confirming with width "
                    f"{current['width'] * 2} (rule overfit_patience={self.overfit_patience})",
                )
                prev, current = current, self.run("4 grow", current["width"] * 2, False, 0.0, lr)
                continue
            if why:
                over_at = signal or current
                self.decide(current, f"overfitting at width {over_at['width']} ({why}); {nxt}")
                break
            if prev is not None:
                improved = _better(current["score"], prev["score"], metric, mi) or (
                    current["loss"] < prev["loss"] * (1 - mi)
                )
                stalls = 0 if improved else stalls + 1
            if stalls >= self.growth_patience:
                self.decide(
                    current,
                    f"growth stalled: {stalls} doublings improved neither {metric} nor loss by "
                    f"min_improvement {mi:.0%} (rule growth_patience={self.growth_patience}): "
                    "capacity is not the limit",
                )
                over_at = current
                break
            if current["width"] * 2 > self.max_width:
                self.decide(
                    current,
                    f"underfitting ({self.fit_state(current)}) but width {current['width'] * 2} "
                    f"> max_width {self.max_width}",
                )
                over_at = current
                break
            self.decide(
                current,
                f"underfitting: no overfitting rule fired ({self.fit_state(current)}); "
                f"doubling width to {current['width'] * 2}",
            )
            prev, current = current, self.run("4 grow", current["width"] * 2, False, 0.0, lr)
        if current is None:
            self.stop_line("4 grow")
            over_at = over_at or signal
        return (over_at or prev or {"width": width})["width"], over_at

    def batchnorm(self, width: int, over_at: dict | None, lr: float) -> tuple[int, dict | None]:
        """Step 5: batchnorm at the width reached, then a bit more capacity (at most
        `bn_growth` doublings) until it overfits again. Skipped for SELU networks."""
        if self.arch == "selu":
            self.say(
                "5 batchnorm: skipped: self-normalizing networks keep their activations normalized with SELU"
            )
            return width, over_at
        if over_at is None or self.interrupted:
            return width, over_at
        last = over_at
        bn = self.run("5 batchnorm", width, True, 0.0, lr)
        if bn is None:
            self.stop_line("5 batchnorm")
        grown = 0
        bn_prev: dict | None = None
        while bn is not None:
            if bn["diverged"]:
                self.decide(bn, f"diverged at lr {lr:g} ({bn['reason']}); keeping the previous network")
                break
            last = bn
            why = self.overfit(bn, bn_prev, growing=bn_prev is not None)
            if why:
                self.decide(bn, f"overfitting with batchnorm at width {bn['width']} ({why}); adding dropout")
                break
            if grown >= self.bn_growth or bn["width"] * 2 > self.max_width:
                limit = (
                    f"bn_growth={self.bn_growth}"
                    if grown >= self.bn_growth
                    else f"max_width {self.max_width}"
                )
                self.decide(
                    bn, f"no overfitting rule fired ({self.fit_state(bn)}), {limit} reached; adding dropout"
                )
                break
            self.decide(
                bn,
                f"no overfitting rule fired with batchnorm ({self.fit_state(bn)}); "
                f"doubling width to {bn['width'] * 2}",
            )
            grown += 1
            bn_prev, bn = bn, self.run("5 batchnorm", bn["width"] * 2, True, 0.0, lr)
            if bn is None:
                self.stop_line("5 batchnorm")
        return last["width"], last

    def dropout(self, width: int, last: dict | None, lr: float) -> tuple[dict | None, dict | None, bool]:
        """Step 6: dropout at `dropout_rates` in turn until the network no longer overfits
        or the metric gets worse. Returns (the trial it builds on, the first dropout trial,
        batchnorm on)."""
        metric = self.metric
        use_bn = self.arch != "selu" and last is not None and last["batchnorm"]
        base = last
        first_drop: dict | None = None
        if base is None or self.interrupted:
            return base, first_drop, use_bn
        name = "alpha_dropout" if self.arch == "selu" else "dropout"
        for p in self.rates:
            d = self.run("6 dropout", width, use_bn, p, lr)
            if d is None:
                self.stop_line("6 dropout")
                break
            first_drop = first_drop or d
            why = self.overfit(d, None)
            if not _better(d["score"], base["score"], metric):
                self.decide(
                    d,
                    f"{metric} went from {base['score']:.4g} to {d['score']:.4g} with {name} {p:g}: "
                    "not better; stopping here",
                )
                break
            if why:
                self.decide(d, f"better, but still overfitting ({why}); trying more dropout")
                base = d
                continue
            self.decide(
                d,
                f"{metric} improved from {base['score']:.4g} to {d['score']:.4g} "
                "and no overfitting rule fired",
            )
            break
        return base, first_drop, use_bn

    def dropout_grow(self, base: dict | None, first_drop: dict | None, use_bn: bool, lr: float) -> None:
        """Step 6, continued: more capacity with dropout on, while a doubling improves the
        metric by more than min_improvement (at most `bn_growth` doublings). Measured on the
        MNIST sample, the recipe otherwise ended at the width chosen without dropout."""
        grow_from = base if (base is not None and base.get("dropout", 0.0) > 0) else first_drop
        if grow_from is None or grow_from["diverged"] or self.interrupted:
            return
        metric, mi = self.metric, self.min_improvement
        cur = grow_from
        for _ in range(self.bn_growth):
            if cur["width"] * 2 > self.max_width:
                self.say(
                    f"6 dropout, grow: width {cur['width'] * 2} > max_width {self.max_width}; stopping here"
                )
                break
            nxt = self.run("6 dropout, grow", cur["width"] * 2, use_bn, cur["dropout"], lr)
            if nxt is None:
                self.stop_line("6 dropout, grow")
                break
            if nxt["diverged"] or not _better(nxt["score"], cur["score"], metric, mi):
                self.decide(
                    nxt,
                    f"{metric} {nxt['score']:.4g} against {cur['score']:.4g} at width {cur['width']}: "
                    f"doubling with dropout did not improve it by min_improvement {mi:.0%}; stopping here",
                )
                break
            self.decide(
                nxt,
                f"{metric} improved from {cur['score']:.4g} to {nxt['score']:.4g} "
                "with dropout on: doubling again",
            )
            cur = nxt

    def retune_lr(self) -> None:
        """Step 6, last: the learning rate again, on the best network so far (step 3 tuned it
        on the smallest; the best rate moves with capacity and regularization): halve, then
        double, while a step improves the metric by more than min_improvement."""
        done = self.finished()
        if not done or self.interrupted:
            return
        metric, mi = self.metric, self.min_improvement
        top = self.best_of(done)
        cur = top
        for factor in (0.5, 2.0):
            tr: dict | None = None
            while True:
                new_lr = cur["lr"] * factor
                tr = self.run("6 learning rate", top["width"], top["batchnorm"], top["dropout"], new_lr)
                if tr is None:
                    self.stop_line("6 learning rate")
                    break
                if tr["diverged"] or not _better(tr["score"], cur["score"], metric, mi):
                    self.decide(
                        tr,
                        f"lr {new_lr:g}: {metric} {tr['score']:.4g} does not improve on {cur['score']:.4g} "
                        f"at lr {cur['lr']:g} by min_improvement {mi:.0%}",
                    )
                    break
                self.decide(
                    tr, f"lr {new_lr:g} improved {metric} from {cur['score']:.4g} to {tr['score']:.4g}"
                )
                cur = tr
            if cur is not top or tr is None:
                break  # halving helped (or the budget ran out): no need to try doubling

    def verdict(self) -> RecipeResult:
        """Step 7: the verdict on the best trial, its model (trained again when it came from
        the log) and the report."""
        pool = self.finished() or [t for t in self.trials if not t["diverged"] and not t.get("cut")]
        best = self.best_of(pool)
        g = self.gap(best)
        if math.isfinite(g) and g > self.overfit_gap:
            verdict = "overfit"
            why = f"gap {g:.0%} > overfit_gap {self.overfit_gap:.0%}: not enough regularization"
        elif math.isfinite(g) and g < self.underfit_gap:
            verdict = "underfit"
            why = (
                f"gap {g:.0%} < underfit_gap {self.underfit_gap:.0%} (training not better than validation): "
                "too few parameters or too much regularization"
            )
        else:
            verdict = "well tuned"
            why = (
                "training better than validation but comparable: "
                f"gap {g:.0%} in [{self.underfit_gap:.0%}, {self.overfit_gap:.0%}]"
            )
        cfg = best.get("config") or self.config_of(
            best["width"], best["batchnorm"], best["dropout"], best["lr"]
        )
        self.say(
            f"7 verdict: best trial ({best['stage']}): {self.describe(best)}, lr {best['lr']:g}: "
            f"{self.figures(best)}; {verdict}: {why}"
        )
        model = self.models_held.get(best.get("id") or "")
        if model is None:  # from the log (or the learning-rate search): train it again, deterministically
            model = self.train(cfg, None)[1]
        model.eval()
        config = dict(cfg)
        config["params"] = best["params"]
        config["best_epoch"] = best["best_epoch"]
        report = _report(
            self.arch, self.problem, config, self.trials, self.lines, verdict, why, self.metric, self.clock
        )
        assert self.search is not None
        result = RecipeResult(model, config, self.trials, report, verdict, self.search)
        result.interrupted = self.interrupted
        return result


def _report(
    arch: str,
    problem: _Problem,
    config: dict,
    trials: list[dict],
    lines: list[str],
    verdict: str,
    why: str,
    metric: str,
    clock: _Clock,
) -> str:
    kw = ", ".join(f"{k}={v!r}" for k, v in config["kwargs"].items())
    out = [
        f"# Tuning recipe: {arch}",
        "",
        f"{problem.n_train} training and {problem.xv.shape[0]} validation samples, loss {problem.loss}, "
        f"decided on {metric}; {len(trials)} trials in {clock.elapsed():.1f}s.",
        "",
        f"**Result**: `{config['builder']}({config['in_features']}, {config['out_features']}, {kw})`, "
        f"{config['params']} parameters, {config['optimizer']} at lr {config['lr']:g}. **{verdict}**: {why}.",
        "",
        "## Path taken",
        "",
    ]
    out += [f"- {line}" for line in lines]
    out += ["", "## Trials", "", "| stage | width | batchnorm | dropout | lr | loss | val_loss | diverged |"]
    out.append("|---|---|---|---|---|---|---|---|")
    for t in trials:
        out.append(
            f"| {t.get('stage', '')} | {t.get('width', '')} | {t.get('batchnorm', '')} "
            f"| {t.get('dropout', '')} "
            f"| {t['lr']:g} | {_fmt(t.get('loss', math.nan))} | {_fmt(t.get('val_loss', math.nan))} "
            f"| {'yes' if t['diverged'] else 'no'} |"
        )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- plots


def _plot(
    path: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[tuple[str, list[float], list[float]]],
    logx: bool,
    marks: list[float],
    best: float | None,
) -> str:
    try:
        import matplotlib  # type: ignore[import-not-found]  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        if path.lower().endswith(".svg"):
            return _svg(path, title, xlabel, ylabel, series, logx, marks, best)
        raise ImportError(
            "plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or give a path ending in .svg for the built-in SVG writer)"
        ) from None
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o", label=label)
    for m in marks:
        ax.axvline(m, color="red", alpha=0.4, linestyle=":")
    if best is not None:
        ax.axvline(best, color="green", alpha=0.5)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _svg(
    path: str,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[tuple[str, list[float], list[float]]],
    logx: bool,
    marks: list[float],
    best: float | None,
) -> str:
    """A dependency-free line chart: one polyline per series, dashed red lines at `marks`
    (diverged rates), a green line at `best`."""
    w, h, m = 640, 400, 60
    fx = (lambda v: math.log2(v)) if logx else (lambda v: v)
    pts = [(fx(a), b) for _, xs, ys in series for a, b in zip(xs, ys) if math.isfinite(b)]
    xs_all = [p[0] for p in pts] + [fx(v) for v in marks] + ([fx(best)] if best is not None else [])
    ys_all = [p[1] for p in pts]
    x0, x1 = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    y0, y1 = (min(ys_all), max(ys_all)) if ys_all else (0.0, 1.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(v: float) -> float:
        return m + (v - x0) / (x1 - x0) * (w - 2 * m)

    def py(v: float) -> float:
        return h - m - (v - y0) / (y1 - y0) * (h - 2 * m)

    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{e(title)}</text>',
        f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
        f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
        f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">{e(xlabel)}</text>',
        f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" '
        f'text-anchor="middle">{e(ylabel)}</text>',
    ]
    for i in range(5):
        xv, yv = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        xt = f"{2**xv:.3g}" if logx else f"{xv:.3g}"
        parts.append(f'<text x="{px(xv):.1f}" y="{h - m + 16}" text-anchor="middle">{xt}</text>')
        parts.append(f'<text x="{m - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    for v in marks:
        parts.append(
            f'<line x1="{px(fx(v)):.1f}" y1="{m}" x2="{px(fx(v)):.1f}" y2="{h - m}" '
            'stroke="red" stroke-dasharray="4"/>'
        )
    if best is not None:
        parts.append(
            f'<line x1="{px(fx(best)):.1f}" y1="{m}" x2="{px(fx(best)):.1f}" y2="{h - m}" stroke="green"/>'
        )
    for k, (label, xs, ys) in enumerate(series):
        c = colors[k % len(colors)]
        p = [(px(fx(a)), py(b)) for a, b in zip(xs, ys) if math.isfinite(b)]
        if p:
            parts.append(
                f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                + " ".join(f"{a:.1f},{b:.1f}" for a, b in p)
                + '"/>'
            )
            parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>' for a, b in p]
        parts.append(f'<text x="{w - m - 80}" y="{m + 16 * k}" fill="{c}">{e(label)}</text>')
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path
