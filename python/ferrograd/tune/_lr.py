"""The learning-rate search: doubling and halving from 0.001 (`learning_rate`, `LRSearch`)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import IO, Any, cast

from .. import _core
from .. import models as _models
from .. import optim as _optim
from ..nn import Module
from . import _trial
from ._report import _plot
from ._rules import DIVERGENCE_FACTOR, PATIENCE, START_LR
from ._trial import (
    Builder,
    OptimizerSpec,
    _auto_epochs,
    _better,
    _Clock,
    _count,
    _fmt,
    _key,
    _Log,
    _logged_trial,
    _optimizer,
    _Problem,
)


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
            lambda: _trial._run(
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
